"""The web console over plain HTTP against the shared daemon (tests/http_fixtures.py): signing in
and out, and every bad request of issue 16 refused with nothing changed (no audit entry, no
acknowledgement, no silence): no session, a forged or expired one, a cross-site form, a
helpdesk user's NOC action, a 10 kB or SQL-looking lookup, and too many wrong passwords."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from html import escape

import aiohttp
import pytest
from aiohttp import web

from lab.isp import console_password
from monitord import http
from monitord.config.model import ConsoleConfig
from monitord.console import COOKIE, STATE, add_console
from monitord.console_pages import BoardRow, Viewer, board_rows
from monitord.demo import console_greeting, find_incident, until
from monitord.model import IncidentKind, NodeRef
from tests.http_fixtures import Api

pytest_plugins = ["tests.http_fixtures"]
on_daemon_loop = pytest.mark.asyncio(loop_scope="session")


@dataclass(slots=True)
class Browser:
    """A client with its cookie jar, as a browser would hold the session."""

    http: aiohttp.ClientSession
    url: str
    csrf: str = ""

    async def get(self, path: str, **kwargs: object) -> tuple[int, str]:
        async with self.http.get(self.url + path, allow_redirects=False, **kwargs) as response:  # type: ignore[arg-type]
            return response.status, await response.text()

    async def post(self, path: str, form: dict[str, str], **kwargs: object) -> tuple[int, str, str | None]:
        async with self.http.post(self.url + path, data=form, allow_redirects=False, **kwargs) as response:  # type: ignore[arg-type]
            return response.status, await response.text(), response.headers.get("Location")


@asynccontextmanager
async def browsing(api: Api) -> AsyncIterator[Browser]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield Browser(http, api.url)


async def sign_in(browser: Browser, api: Api, user: str) -> None:
    status, _, location = await browser.post("/console/login", {"user": user, "password": console_password(api.root, user)})
    assert (status, location) == (303, "/console")
    status, board = await browser.get("/console")
    assert status == 200, board
    found = re.search(r'name="csrf" value="([^"]+)"', board)
    assert found is not None
    browser.csrf = found[1]


def audit_count(api: Api) -> int:
    return len(api.daemon.store.audit(10_000))


@on_daemon_loop
async def test_sign_in_and_out_are_audited(api: Api) -> None:
    async with browsing(api) as browser:
        assert (await browser.get("/console"))[0] == 303  # not signed in: to the sign-in page
        before = audit_count(api)
        await sign_in(browser, api, "noc")
        cookie = next(c for c in browser.http.cookie_jar if c.key == COOKIE)
        assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/console"
        status, _, location = await browser.post("/console/logout", {"csrf": browser.csrf})
        assert (status, location) == (303, "/console/login")
        assert (await browser.get("/console"))[0] == 303  # the session is gone
    latest = api.daemon.store.audit(2)
    assert [(e.actor, e.action) for e in latest] == [("noc", "sign_out"), ("noc", "sign_in")]
    assert audit_count(api) == before + 2


@on_daemon_loop
async def test_the_demo_greeting_signs_in(api: Api) -> None:
    """`monitord demo` opens with the console's URL and a user to sign in with (issue 16 item 5)."""
    greeting = console_greeting(api.daemon.http_port, api.root)
    found = re.search(r"(http://\S+/console) \(sign in as (\w+), password (\S+);", greeting)
    assert found is not None, greeting
    url, user, password = found.groups()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http_session:
        async with http_session.post(url + "/login", data={"user": user, "password": password}) as response:
            assert response.status == 200 and str(response.url) == url and 'id="board"' in await response.text()


@on_daemon_loop
async def test_wrong_password_and_unknown_user(api: Api) -> None:
    async with browsing(api) as browser:
        before = audit_count(api)
        status, page, _ = await browser.post("/console/login", {"user": "noc", "password": "wrong"})
        assert status == 401 and "Kullanıcı adı ya da parola yanlış" in page
        status, page, _ = await browser.post(
            "/console/login", {"user": "nobody", "password": "wrong"}, headers={"Accept-Language": "en"}
        )
        assert status == 401 and "Wrong user name or password" in page
        assert (await browser.get("/console"))[0] == 303 and audit_count(api) == before


@on_daemon_loop
async def test_too_many_wrong_passwords_are_held_off(api: Api) -> None:
    async with browsing(api) as browser:
        statuses = [(await browser.post("/console/login", {"user": "mallory", "password": f"guess{n}"}))[0] for n in range(7)]
    assert statuses == [401] * 5 + [429] * 2


@on_daemon_loop
async def test_requests_without_a_valid_session_change_nothing(api: Api) -> None:
    outage_root, tracking = await open_outage(api)
    try:
        events, audits, silences = len(api.daemon.incident_events(tracking)), audit_count(api), len(api.daemon.silences())
        ack = f"/console/incidents/{tracking}/ack"
        async with browsing(api) as browser:
            status, page, _ = await browser.post(ack, {"csrf": "x"})  # no session
            assert status == 401 and "sign in again" in page
            browser.http.cookie_jar.update_cookies({COOKIE: "forged-session-id"}, aiohttp.client.URL(api.url + "/console"))
            assert (await browser.post(ack, {"csrf": "x"}))[0] == 401
            assert (await browser.get("/console"))[0] == 303
            assert (await browser.get("/console/lookup?q=s1"))[0] == 303

            await sign_in(browser, api, "noc")  # a cross-site post: no token, then the right token from another origin
            status, page, _ = await browser.post(ack, {})
            assert status == 403 and "CSRF" in page
            assert (await browser.post(ack, {"csrf": "0" * 43}))[0] == 403
            evil = {"Origin": "https://evil.example"}
            assert (await browser.post(ack, {"csrf": browser.csrf}, headers=evil))[0] == 403
            assert (await browser.post(ack, {"csrf": browser.csrf}, headers={"Origin": "null"}))[0] == 403
            silence = {"csrf": browser.csrf, "node": str(outage_root), "duration": "1h", "comment": "x"}
            assert (await browser.post("/console/silences", silence, headers=evil))[0] == 403

        async with browsing(api) as helpdesk:
            await sign_in(helpdesk, api, "helpdesk")
            assert 'action="/console/incidents/' not in (await helpdesk.get("/console"))[1]  # no forms offered
            status, page, _ = await helpdesk.post(ack, {"csrf": helpdesk.csrf})
            assert status == 403 and "helpdesk role may not ack" in page
            assert (await helpdesk.post(f"/console/incidents/{tracking}/note", {"csrf": helpdesk.csrf, "note": "x"}))[0] == 403
            silence = {"csrf": helpdesk.csrf, "node": str(outage_root), "duration": "1h", "comment": "x"}
            assert (await helpdesk.post("/console/silences", silence))[0] == 403
        assert len(api.daemon.incident_events(tracking)) == events and len(api.daemon.silences()) == silences
        assert audit_count(api) == audits + 2  # the two sign-ins, nothing else
    finally:
        await restored(api)


@on_daemon_loop
async def test_bad_lookups_are_refused_before_anything_is_read(api: Api) -> None:
    async with browsing(api) as browser:
        await sign_in(browser, api, "helpdesk")
        status, page = await browser.get("/console/lookup?q=" + "1" * 10_000)
        assert status == 400 and "at most 64 characters, not 10,000" in page
        for sql in ("' OR 1=1 --", "s1; DROP TABLE incidents", 's1"'):
            status, page = await browser.get("/console/lookup", params={"q": sql})
            assert status == 400 and "only letters, digits" in page, sql
        status, page = await browser.get("/console/lookup", params={"q": "no-such-subscriber"})
        assert status == 200 and 'id="no-match"' in page


@on_daemon_loop
async def test_noc_acknowledges_and_silences(api: Api) -> None:
    root, tracking = await open_outage(api)
    try:
        async with browsing(api) as browser:
            await sign_in(browser, api, "noc")
            line = api.lines_of(root.id)[0]
            phone = api.topology.lines[line].phone
            for query in (line, tracking, phone):
                status, page = await browser.get("/console/lookup", params={"q": query or line})
                assert status == 200 and f'id="subscriber-{line}"' in page and "(device)" in page, query
                assert f"<strong>{tracking}</strong>" in page, query
            status, board = await browser.get("/console?lang=en")
            assert status == 200 and f'id="incident-{tracking}"' in board and f'id="ack-{tracking}"' in board
            same = {"Origin": "https://" + api.url.removeprefix("http://")}  # as behind a TLS proxy keeping the Host
            status, _, location = await browser.post(f"/console/incidents/{tracking}/ack", {"csrf": browser.csrf}, headers=same)
            assert (status, location) == (303, "/console?done=1")
            status, page, _ = await browser.post(f"/console/incidents/{tracking}/ack", {"csrf": browser.csrf})
            assert status == 409 and "already acknowledged by noc" in page  # the first acknowledgement stands
            note = {"csrf": browser.csrf, "note": "Ekip yolda <script>"}
            assert (await browser.post(f"/console/incidents/{tracking}/note", note))[0] == 303
            _, board = await browser.get("/console/rows?lang=en")
            assert "acknowledged by noc" in board and "<script>" not in board
            bad = {"csrf": browser.csrf, "node": "device:no-such", "duration": "1h", "comment": "x"}
            status, page, _ = await browser.post("/console/silences", bad)
            assert status == 400 and escape("nodes[0]: no device 'no-such'") in page
            good = {"csrf": browser.csrf, "node": str(root), "duration": "1h", "comment": "works on the DSLAM"}
            status, page, _ = await browser.post("/console/silences", good)
            assert status == 200 and "works on the DSLAM" in page
        silence = next(s for s in api.daemon.silences() if s.comment == "works on the DSLAM")
        assert silence.author == "noc" and silence.nodes == (root,)
        assert [(e.action, e.actor) for e in api.daemon.incident_events(tracking)][:2] == [("ack", "noc"), ("note", "noc")]
        audited = [(e.action, e.target) for e in api.daemon.store.audit(3)]
        assert audited == [("silence", silence.id), ("note", tracking), ("ack", tracking)]
        await api.daemon.expire_silence(silence.id, "test")
    finally:
        await restored(api)


@on_daemon_loop
async def test_noc_takes_an_incident_and_a_helpdesk_user_cannot(api: Api) -> None:
    _, tracking = await open_outage(api)
    owner = f"/console/incidents/{tracking}/owner"
    try:
        async with browsing(api) as helpdesk:
            await sign_in(helpdesk, api, "helpdesk")
            events, audits = len(api.daemon.incident_events(tracking)), audit_count(api)
            status, page, _ = await helpdesk.post(owner, {"csrf": helpdesk.csrf, "owner": "helpdesk"})
            assert status == 403 and "helpdesk role may not take" in page
            assert len(api.daemon.incident_events(tracking)) == events and audit_count(api) == audits
        async with browsing(api) as browser:
            await sign_in(browser, api, "noc")
            _, board = await browser.get("/console?lang=en")
            assert f'id="take-{tracking}"' in board and f'id="owner-{tracking}"' in board
            status, _, location = await browser.post(owner, {"csrf": browser.csrf, "owner": "  "})  # empty: the user
            assert (status, location) == (303, "/console?done=1")
            assert (await browser.post(owner, {"csrf": browser.csrf, "owner": "ayse <b>"}))[0] == 303
            status, page, _ = await browser.post(owner, {"csrf": browser.csrf, "owner": "x" * 65})
            assert status == 400 and "owner: at most 64 characters" in page
            _, board = await browser.get("/console/rows?lang=en")
            assert "Owner: ayse &lt;b&gt;" in board
        taken = [(e.action, e.actor, e.text) for e in api.daemon.incident_events(tracking) if e.action == "owner"]
        assert taken == [("owner", "noc", "noc"), ("owner", "noc", "ayse <b>")]
        audited = [(e.action, e.target, e.detail) for e in api.daemon.store.audit(2)]
        assert audited == [("owner", tracking, "ayse <b>"), ("owner", tracking, "noc")]
    finally:
        await restored(api)


async def open_outage(api: Api) -> tuple[NodeRef, str]:
    """A new outage of a DSLAM silenced in the lab (the caller then awaits `restored`)."""
    root = NodeRef("device", api.dslams()[0])
    await until(lambda: find_incident(api.daemon, root, IncidentKind.OUTAGE) is None, 120, "an earlier test's outage to resolve")
    api.world.faults.silence(*api.world.isp.addresses_under("device", root.id))
    outage = await until(lambda: find_incident(api.daemon, root, IncidentKind.OUTAGE), 30, "the outage")
    return root, outage.tracking


async def restored(api: Api) -> None:
    """The lab repaired and the DSLAM's outage resolved: the daemon is shared with the other
    tests' outages (Api.dslams: which test breaks which DSLAM), which it would widen."""
    api.world.faults.restore_all()
    root = NodeRef("device", api.dslams()[0])
    await until(lambda: find_incident(api.daemon, root, IncidentKind.OUTAGE) is None, 120, "the outage to resolve")


@asynccontextmanager
async def console_of_its_own(api: Api, settings: ConsoleConfig) -> AsyncIterator[tuple[str, web.Application]]:
    """A listener with the console alone, under other settings, on the shared daemon."""
    app = http._app(api.daemon)
    add_console(app, settings)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", app
    finally:
        await runner.cleanup()


@on_daemon_loop
async def test_an_expired_session_is_refused(api: Api) -> None:
    assert api.daemon.config.console is not None
    async with console_of_its_own(api, replace(api.daemon.config.console, session=1.0)) as (url, app):
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http_session:
            browser = Browser(http_session, url)
            await sign_in(browser, api, "noc")
            kept = next(c.value for c in http_session.cookie_jar if c.key == COOKIE)  # as a browser ignoring max-age would
            events = len(api.daemon.store.audit(10_000))
            await asyncio.sleep(1.2)
        async with aiohttp.ClientSession(headers={"Cookie": f"{COOKIE}={kept}"}) as http_session:
            browser = Browser(http_session, url, browser.csrf)
            form = {"csrf": browser.csrf, "node": "x", "duration": "1h", "comment": "x"}
            status, page, _ = await browser.post("/console/silences", form)
            assert status == 401 and "expired" in page
            assert (await browser.get("/console"))[0] == 303
            assert len(app[STATE].sessions.by_id) == 0 and len(api.daemon.store.audit(10_000)) == events


@on_daemon_loop
async def test_a_trusted_proxy_names_the_user(api: Api) -> None:
    assert api.daemon.config.console is not None
    proxied = replace(api.daemon.config.console, proxy_header="X-Remote-User", trusted_proxies=("127.0.0.1",))
    async with console_of_its_own(api, proxied) as (url, _):
        async with browsing(api) as browser:
            browser.url = url
            status, board = await browser.get("/console", headers={"X-Remote-User": "helpdesk"})
            assert status == 200 and "helpdesk (helpdesk)" in board  # signed in by the proxy, with the user's role
            csrf = re.search(r'name="csrf" value="([^"]+)"', board)
            assert csrf is not None
            denied = await browser.post("/console/silences", {"csrf": csrf[1], "node": "x", "duration": "1h", "comment": "x"})
            assert denied[0] == 403  # the role still counts
            assert (await browser.get("/console/lookup", headers={"X-Remote-User": "mallory"}))[0] == 303  # not a user
    untrusted = replace(proxied, trusted_proxies=("192.0.2.1",))
    async with console_of_its_own(api, untrusted) as (url, _):
        async with browsing(api) as browser:
            browser.url = url
            assert (await browser.get("/console", headers={"X-Remote-User": "noc"}))[0] == 303  # from anyone else: ignored


def test_the_board_warns_of_a_ticket_the_helpdesk_ended_on_an_open_incident() -> None:
    row = BoardRow("ARZ-2026-000123", "outage", "sisli-dslam-01", 48, "Field team", "mehmet", None, "1h 05m")
    viewer = Viewer("ayse", "helpdesk", "", can_change=False)
    assert "ended its ticket" not in board_rows([row], viewer, "en")
    ended = replace(row, ticket_ended=("resolved", "ayse"))
    assert "The helpdesk ended its ticket (resolved, ayse); the fault goes on" in board_rows([ended], viewer, "en")
    assert "Yardım masası kaydı kapattı (resolved, ayse)" in board_rows([ended], viewer, "tr")
    assert "&lt;b&gt;" in board_rows([replace(row, ticket_ended=("resolved", "<b>"))], viewer, "en"), "escaped"
