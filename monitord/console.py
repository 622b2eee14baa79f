"""The web console under /console on the API's listener: sign-in, the incident board, subscriber
lookup with the line's quality chart, the network tree, silences and maintenance windows (issue
16). The pages are drawn by monitord/console_pages.py, console_windows.py, console_tree.py and
console_chart.py; the session, CSRF and role checks are monitord/console_http.py's, the
sessions, passwords and roles console_auth.py's.

A page needs a session (else a redirect to the sign-in page); a POST needs a session, the
session's CSRF token in the form and, when the browser sends one, an Origin of this listener;
a change needs the noc role. A refusal is a 401, 403 or 400 page and changes nothing. Every
change, sign-in and sign-out goes to the store's audit log with who, their role and when, and the
change itself is made by the same code the JSON API uses (`Controls.record`, `add_silence`, `parse_window`).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from monitord import http as api
from monitord.config.model import ConsoleConfig
from monitord.console_auth import Session, Sessions, hash_password, verify_password
from monitord.console_chart import Series, chart, pick
from monitord.console_http import (
    COOKIE,
    HEADERS,
    STATE,
    ConsoleState,
    Refused,
    _audit,
    _client,
    _form,
    _html,
    _language,
    _refusal,
    _same_origin,
    _see,
    _session,
    _state,
    _viewer,
    _with_cookie,
    change,
    page,
)
from monitord.console_pages import (
    BOARD_SCRIPT,
    BoardRow,
    Found,
    SilenceRow,
    age,
    board_page,
    board_rows,
    login_page,
    lookup_page,
    silences_page,
    words,
)
from monitord.console_tree import build_tree, tree_page
from monitord.console_windows import FIELDS, WindowRow, maintenance_page
from monitord.http_server import MAX_LINE as SERVER_LINE
from monitord.http_server import OPTIONS
from monitord.incident_actions import Refusal, current_owner, parse_event, ticket_ended
from monitord.model import AuditEntry, EventAction, Language, Line, Topology
from monitord.phone import normalize_phone
from monitord.quality_api import parse_span
from monitord.rollups import STEPS
from monitord.silences_api import BadSilence, parse_silence, silence_json
from monitord.track_page import normalize, number_pattern
from monitord.view import Controls
from notices.plan import place
from rules.tally import LineCounts

MAX_QUERY = 64  # characters of a lookup: a phone number, a subscriber id or a tracking number
QUERY = re.compile(r"[0-9A-Za-z+._ -]+")  # nothing else appears in any of the three
MAX_LINE = 16 * 1024  # bytes of the request line on a listener serving the console: a 10 kB lookup gets a page
MAX_DIAGNOSED = 3  # lines of one lookup diagnosed live (a tracking number's first lines)
MAX_BOARD = 200  # open incidents on the board, latest first
_DUMMY_HASH = hash_password("not a password of anyone's")  # an unknown user costs as much time as a known one


# --- sign-in ------------------------------------------------------------------------------------


async def login_form(request: web.Request) -> web.Response:
    if _session(request) is not None:
        return _with_cookie(request, _see("/console"))
    return _html(login_page(_language(request)))


async def login(request: web.Request) -> web.Response:
    lang, state = _language(request), _state(request)
    if not _same_origin(request):
        return _html(_refusal(Refused(403, "a sign-in from another site: refused"), lang), 403)
    try:
        form = await _form(request)
    except Refused as refused:
        return _html(_refusal(refused, lang), refused.status)
    name, password = form.get("user"), form.get("password")
    if not isinstance(name, str) or not isinstance(password, str):
        return _html(login_page(lang, "bad_login"), 400)
    client = _client(request)
    if not state.logins.allowed(client, name, time.monotonic()):
        return _html(login_page(lang, "limited"), 429, {"Retry-After": "30"})
    user = state.settings.users.get(name)
    stored = user.password if user is not None and user.password else _DUMMY_HASH
    good = await asyncio.to_thread(verify_password, password, stored)
    if user is None or user.password is None or not good:
        state.logins.failed(client, name, time.monotonic())
        return _html(login_page(lang, "bad_login"), 401)
    session = state.sessions.open(user.name, user.role, time.monotonic())
    await _audit(request, session, "sign_in", "", client)
    return _with_cookie(request, _see("/console"), session)


async def _logout(request: web.Request, session: Session, form: Any, lang: Language) -> web.Response:
    _state(request).sessions.close(session.id)
    await _audit(request, session, "sign_out", "")
    response = _see("/console/login")
    response.del_cookie(COOKIE, path="/console")
    return response


# --- the board ----------------------------------------------------------------------------------


async def _rows(request: web.Request, lang: Language) -> list[BoardRow]:
    d = api._daemon(request)

    async def gather() -> list[BoardRow]:
        now, topology = d.clock(), d.config.topology
        rows = []
        for incident in sorted(d.open_incidents(), key=lambda i: -i.opened_at)[:MAX_BOARD]:
            events = d.incident_events(incident.tracking)
            acked = next((e.actor for e in events if e.action == "ack"), None)
            owner, ended = current_owner(events), ticket_ended(events)
            where = place(topology, incident.root)
            root = ", ".join(dict.fromkeys(p for p in (where.label, where.exchange, where.region) if p != "-"))
            stage = d.config.stages.current(incident, d.helpdesk_stage(incident.tracking)).name(lang)
            kind = incident.kind.value
            rows.append(
                BoardRow(
                    incident.tracking,
                    kind,
                    root,
                    len(incident.affected),
                    stage,
                    acked,
                    owner.text if owner else None,
                    age(now - incident.opened_at),
                    (ended.text, ended.actor) if ended else None,
                )
            )
        return rows

    return await api._on_daemon_loop(request, gather)


async def _board(request: web.Request, session: Session, lang: Language) -> web.Response:
    done = words(lang)["done"] if request.query.get("done") == "1" else None
    return _html(board_page(await _rows(request, lang), _viewer(session), lang, done))


async def _board_fragment(request: web.Request, session: Session, lang: Language) -> web.Response:
    return _html(board_rows(await _rows(request, lang), _viewer(session), lang))


async def board_script(request: web.Request) -> web.Response:
    return web.Response(text=BOARD_SCRIPT, content_type="text/javascript", charset="utf-8", headers=HEADERS)


def incident_change(action: EventAction) -> Callable[[web.Request, Session, Any, Language], Awaitable[web.Response]]:
    """Acknowledge, take (an owner: the one typed, else the user) or write a note, as POST
    /api/incidents/{tracking}/ack, /owner and /notes do."""

    async def handler(request: web.Request, session: Session, form: Any, lang: Language) -> web.Response:
        d, tracking = api._daemon(request), request.match_info["tracking"]
        body: dict[str, Any] = {"by": session.user}
        if action == "note":
            body["note"] = form.get("note", "")
        elif action == "owner":
            typed = form.get("owner", "")
            body["owner"] = typed if isinstance(typed, str) and typed.strip() else session.user

        async def record() -> Refusal | None:
            event = parse_event(action, tracking, body, d.clock())
            if isinstance(event, Refusal):
                return event
            if (refused := await d.record(event)) is not None:
                return refused
            await d.audit(AuditEntry(session.user, session.role, event.at, action, tracking, event.text[:200]))
            await d.durable()
            return None

        refused = await api._on_daemon_loop(request, record)
        if refused is not None:
            return _html(_refusal(Refused(refused.status, refused.message), lang), refused.status)
        return _see("/console?done=1")

    return handler


# --- the tree -----------------------------------------------------------------------------------


async def _tree(request: web.Request, session: Session, lang: Language) -> web.Response:
    """Per-device counts copied on the daemon's loop; the tree is built and drawn off it."""
    d = api._daemon(request)

    async def read() -> tuple[Topology, dict[str, LineCounts]]:
        return d.config.topology, d.line_counts()

    topology, counts = await api._on_daemon_loop(request, read)
    response = _html(tree_page(build_tree(topology, counts), _viewer(session), lang))
    # a megabyte of HTML at 100,000 lines (docs/benchmarks.md), mostly repeated markup: gzip,
    # when the browser takes it, sends a thirtieth of it. The page reflects nothing a request sends
    # (BREACH needs that beside the CSRF token), so its compression gives away no secret.
    response.enable_compression()
    return response


# --- lookup -------------------------------------------------------------------------------------


def query_problem(query: str) -> str | None:
    """Why a lookup is refused before anything is read, if it is (pure)."""
    if len(query) > MAX_QUERY:
        return f"at most {MAX_QUERY} characters, not {len(query):,}: a phone number, a subscriber id or a tracking number"
    if not QUERY.fullmatch(query):
        return "only letters, digits, spaces and + - _ . : a phone number, a subscriber id or a tracking number"
    return None


async def _lookup(request: web.Request, session: Session, lang: Language) -> web.Response:
    viewer, query = _viewer(session), request.query.get("q", "").strip()
    if not query:
        return _html(lookup_page("", None, viewer, lang))
    if (problem := query_problem(query)) is not None:
        return _html(lookup_page(query[:MAX_QUERY], [], viewer, lang, problem), 400)
    d = api._daemon(request)
    lines = await api._on_daemon_loop(request, lambda: _matching(d, query))
    found: list[Found] = []
    # at once: the lines of a fault's tracking number are often all silent, each diagnosis then
    # waits its whole deadline (4 s), and one after the other they would miss the 5 s of item 1
    diagnoses = await asyncio.gather(*(api.live_diagnosis(request, i) for i in lines[:MAX_DIAGNOSED]), return_exceptions=True)
    for line_id, diagnosis in zip(lines, diagnoses, strict=False):
        if isinstance(diagnosis, api.ApiError):
            return _html(lookup_page(query, found, viewer, lang, diagnosis.message), diagnosis.status)
        if isinstance(diagnosis, BaseException):
            raise diagnosis
        v = diagnosis.verdict
        drawn = chart(await _quality(d, diagnosis.facts.line), d.config.timezone, lang, line_id)
        found.append(Found(line_id, diagnosis.facts.line.name, v.tracking, v.summary, v.cause, tuple(v.evidence), drawn))
    return _html(lookup_page(query, found, viewer, lang))


async def _quality(d: Controls, line: Line) -> Series | None:
    """The line's last day of 5-minute roll-ups, as GET /api/subscribers/{id}/quality reads them."""
    step, since, until = parse_span({}, d.config.timezone, d.clock())
    return pick(await d.line_history.points(line.device, line.id, STEPS[step], since, until))


async def _matching(d: Any, query: str) -> list[str]:
    """The lines a query names: a subscriber id, a tracking number's lines, or a phone's lines."""
    lines = d.config.topology.lines
    if query in lines:
        return [query]
    if (number := normalize(query, number_pattern(d.config.tracking_prefix))) is not None:
        incident = d.incident(number)
        return sorted(incident.affected) if incident is not None else []
    try:
        phone = normalize_phone(query)
    except ValueError:
        return []
    return sorted(i for i, line in lines.items() if line.phone == phone)


# --- silences -----------------------------------------------------------------------------------


async def _silences(
    request: web.Request, session: Session, lang: Language, problem: str | None = None, ok: str | None = None
) -> web.Response:
    d = api._daemon(request)

    async def listed() -> list[SilenceRow]:
        now = d.clock()
        shown = [silence_json(s, d.config.timezone, now) for s in d.silences() if s.end > now]
        return [
            SilenceRow(
                s["id"],
                ", ".join(s["nodes"] + [f"{k}={v}" for k, v in s["matchers"].items()]),
                s["state"],
                s["end"],
                s["author"],
                s["comment"],
            )
            for s in shown
        ]

    rows = await api._on_daemon_loop(request, listed)
    return _html(silences_page(rows, _viewer(session), lang, problem, ok), 400 if problem else 200)


async def _silence_add(request: web.Request, session: Session, form: Any, lang: Language) -> web.Response:
    d = api._daemon(request)
    body = {
        "nodes": [form.get("node", "")],
        "duration": form.get("duration", ""),
        "author": session.user,
        "comment": form.get("comment", ""),
    }

    async def add() -> str | None:
        now = d.clock()
        try:
            silence = parse_silence(body, d.config.topology, d.config.timezone, api._known, now)
        except BadSilence as problem:
            return str(problem)
        await d.add_silence(silence)
        await d.audit(AuditEntry(session.user, session.role, now, "silence", silence.id, ", ".join(map(str, silence.nodes))))
        await d.durable()
        return None

    problem = await api._on_daemon_loop(request, add)
    return await _silences(request, session, lang, problem, None if problem else words(lang)["done"])


async def _silence_expire(request: web.Request, session: Session, form: Any, lang: Language) -> web.Response:
    """End a silence now, as DELETE /api/silences/{id} does, with the user as who ended it."""
    d, silence_id = api._daemon(request), request.match_info["id"]

    async def expire() -> bool:
        if not await d.expire_silence(silence_id, session.user):
            return False
        await d.audit(AuditEntry(session.user, session.role, d.clock(), "expire_silence", silence_id))
        await d.durable()
        return True

    if not await api._on_daemon_loop(request, expire):
        return await _silences(request, session, lang, f"no active or planned silence {silence_id!r}")
    return await _silences(request, session, lang, None, words(lang)["expired"])


# --- maintenance windows ------------------------------------------------------------------------


async def _maintenance(
    request: web.Request,
    session: Session,
    lang: Language,
    problem: tuple[int, str] | None = None,
    ok: str | None = None,
    entered: Mapping[str, str] | None = None,
) -> web.Response:
    d = api._daemon(request)

    async def listed() -> list[WindowRow]:
        now, zone = d.clock(), d.config.timezone
        shown = [(api.window_json(w, zone, now), w.source) for w in d.maintenance() if w.window.end + w.window.grace > now]
        return [
            WindowRow(j["id"], ", ".join(j["scope"]), j["start"], j["end"], j["reason"], j["active"], source == "config")
            for j, source in sorted(shown, key=lambda shown: shown[0]["start"])
        ]

    rows = await api._on_daemon_loop(request, listed)
    status, message = problem or (200, None)
    body = maintenance_page(rows, _viewer(session), lang, d.config.timezone, message, ok, entered)
    return _html(body, status)


async def _maintenance_add(request: web.Request, session: Session, form: Any, lang: Language) -> web.Response:
    """Plan a window through the API's own checks (`parse_window`): its refusal is shown, nothing kept."""
    d = api._daemon(request)
    entered = {name: form.get(name, "") if isinstance(form.get(name), str) else "" for name in FIELDS}
    body = {
        "scope": [node.strip() for node in entered["scope"].split(",") if node.strip()],
        "start": entered["start"],
        "end": entered["end"],
        "reason": entered["reason"],
    }

    async def add() -> None:
        window = api.parse_window(body, d.config.topology, d.config.timezone, d.rules.maintenance_grace, d.clock())
        await d.add_maintenance(window)
        scope = ", ".join(map(str, window.scope))
        await d.audit(AuditEntry(session.user, session.role, d.clock(), "plan_maintenance", window.id, scope))
        await d.durable()

    try:
        await api._on_daemon_loop(request, add)
    except api.ApiError as error:
        return await _maintenance(request, session, lang, (error.status, error.message), None, entered)
    return await _maintenance(request, session, lang, None, words(lang)["done"])


async def _maintenance_cancel(request: web.Request, session: Session, form: Any, lang: Language) -> web.Response:
    """Cancel a window, as DELETE /api/maintenance/{id} does; one from the config file stays."""
    d, window_id = api._daemon(request), request.match_info["id"]

    async def cancel() -> tuple[int, str] | None:
        stored = next((w for w in d.maintenance() if w.window.id == window_id), None)
        if stored is None:
            return 404, f"no maintenance window {window_id!r}"
        if stored.source == "config":
            return 409, f"maintenance window {window_id!r} comes from the config file: remove it there and reload"
        await d.cancel_maintenance(window_id)
        await d.audit(AuditEntry(session.user, session.role, d.clock(), "cancel_maintenance", window_id))
        await d.durable()
        return None

    refused = await api._on_daemon_loop(request, cancel)
    return await _maintenance(request, session, lang, refused, None if refused else words(lang)["cancelled"])


@web.middleware
async def _api_line_limit(request: web.Request, handler: Any) -> web.StreamResponse:
    """The listener takes the console's long request lines; the API's own paths keep the usual limit."""
    if len(request.raw_path) > SERVER_LINE and not request.path.startswith("/console"):
        return web.json_response({"error": f"request line: longer than {SERVER_LINE} bytes"}, status=414)
    return await handler(request)


def add_console(app: web.Application, settings: ConsoleConfig) -> None:
    """The console's routes on the API's app (`make_app`), when the config has a `console:` section."""
    app[OPTIONS] = {"max_line_size": MAX_LINE}  # a 10 kB lookup pasted by mistake gets a page saying so
    app.middlewares.append(_api_line_limit)

    async def start(app: web.Application) -> None:
        app[STATE] = ConsoleState(settings, Sessions(settings.session))

    app.on_startup.append(start)
    get, post = app.router.add_get, app.router.add_post
    get("/console/login", login_form, allow_head=False)
    post("/console/login", login)
    post("/console/logout", change("sign_out", _logout))
    get("/console", page(_board), allow_head=False)
    get("/console/rows", page(_board_fragment), allow_head=False)
    get("/console/board.js", board_script, allow_head=False)
    post("/console/incidents/{tracking}/ack", change("ack", incident_change("ack")))
    post("/console/incidents/{tracking}/owner", change("take", incident_change("owner")))
    post("/console/incidents/{tracking}/note", change("note", incident_change("note")))
    get("/console/lookup", page(_lookup), allow_head=False)
    get("/console/tree", page(_tree), allow_head=False)
    get("/console/silences", page(lambda r, s, lang: _silences(r, s, lang)), allow_head=False)
    post("/console/silences", change("silence", _silence_add))
    post("/console/silences/{id}/expire", change("expire_silence", _silence_expire))
    get("/console/maintenance", page(lambda r, s, lang: _maintenance(r, s, lang)), allow_head=False)
    post("/console/maintenance", change("plan_maintenance", _maintenance_add))
    post("/console/maintenance/{id}/cancel", change("cancel_maintenance", _maintenance_cancel))
