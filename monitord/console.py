"""The web console under /console on the API's listener: sign-in, the incident board, subscriber
lookup and silences (issue 16; the pages are monitord/console_pages.py, the sessions, passwords
and roles monitord/console_auth.py).

A page needs a session (else a redirect to the sign-in page); a POST needs a session, the
session's CSRF token in the form and, when the browser sends one, an Origin of this listener;
a change needs the noc role. A refusal is a 401, 403 or 400 page and changes nothing. Every
change, sign-in and sign-out goes to the store's audit log with who, their role and when, and the
change itself is made by the same code the JSON API uses (`Controls.record`, `add_silence`).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from monitord import http as api
from monitord.config.model import ConsoleConfig
from monitord.console_auth import (
    LoginLimit,
    Session,
    Sessions,
    allowed,
    csrf_ok,
    hash_password,
    verify_password,
)
from monitord.console_pages import (
    BOARD_SCRIPT,
    BoardRow,
    Found,
    SilenceRow,
    Viewer,
    age,
    board_page,
    board_rows,
    login_page,
    lookup_page,
    silences_page,
    words,
)
from monitord.console_pages import page as render
from monitord.http_server import MAX_LINE as SERVER_LINE
from monitord.http_server import OPTIONS
from monitord.incident_actions import Refusal, current_owner, parse_event, ticket_ended
from monitord.model import AuditEntry, EventAction, Language
from monitord.phone import normalize_phone
from monitord.silences_api import BadSilence, parse_silence, silence_json
from monitord.track_http import client_address, language
from monitord.track_page import normalize, number_pattern
from notices.plan import place

COOKIE = "monitord_console"
LANG_COOKIE = "monitord_console_lang"
MAX_QUERY = 64  # characters of a lookup: a phone number, a subscriber id or a tracking number
QUERY = re.compile(r"[0-9A-Za-z+._ -]+")  # nothing else appears in any of the three
MAX_FORM = 8 * 1024  # bytes of a console form: a note of 2,000 characters fits
NEW_SESSION = web.RequestKey("new_session", Session)  # a session started by this request, for its cookie
MAX_LINE = 16 * 1024  # bytes of the request line on a listener serving the console: a 10 kB lookup gets a page
MAX_DIAGNOSED = 3  # lines of one lookup diagnosed live (a tracking number's first lines)
MAX_BOARD = 200  # open incidents on the board, latest first
_DUMMY_HASH = hash_password("not a password of anyone's")  # an unknown user costs as much time as a known one
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(slots=True)
class ConsoleState:
    settings: ConsoleConfig
    sessions: Sessions
    logins: LoginLimit = field(default_factory=LoginLimit)


STATE = web.AppKey("console", ConsoleState)


class Refused(Exception):
    """A console request turned away: its status and what the page says."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _html(body: str, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        text=body, status=status, content_type="text/html", charset="utf-8", headers={**HEADERS, **(headers or {})}
    )


def _see(location: str) -> web.Response:
    return web.Response(status=303, headers={**HEADERS, "Location": location})


def _language(request: web.Request) -> Language:
    """`?lang=`, else the language last switched to (a cookie), else Accept-Language (monitord/track_http.py)."""
    kept = request.cookies.get(LANG_COOKIE)
    if "lang" not in request.query and kept in ("tr", "en"):
        return kept  # type: ignore[return-value]
    return language(request)


def _state(request: web.Request) -> ConsoleState:
    return request.app[STATE]


def _client(request: web.Request) -> str:
    return client_address(request.remote, request.headers.get("X-Forwarded-For"), _state(request).settings.trusted_proxies)


def _session(request: web.Request) -> Session | None:
    """The request's session: its cookie's, or one opened for the user a trusted proxy names."""
    state, now = _state(request), time.monotonic()
    session = state.sessions.get(request.cookies.get(COOKIE), now)
    settings = state.settings
    proxied = request.headers.get(settings.proxy_header) if settings.proxy_header else None
    if proxied is None or request.remote not in settings.trusted_proxies:
        return session
    if session is not None and session.user == proxied:
        return session
    user = settings.users.get(proxied)
    if user is None:
        return None
    session = state.sessions.open(user.name, user.role, now)
    request[NEW_SESSION] = session
    return session


def _with_cookie(request: web.Request, response: web.Response, session: Session | None = None) -> web.Response:
    session = session or request.get(NEW_SESSION)
    if session is not None:
        settings = _state(request).settings
        response.set_cookie(
            COOKIE,
            session.id,
            path="/console",
            httponly=True,
            samesite="Strict",
            secure=settings.secure_cookie,
            max_age=int(settings.session),
        )
    return response


def _viewer(session: Session) -> Viewer:
    return Viewer(session.user, session.role, session.csrf, allowed(session.role, "ack"))


Page = Callable[[web.Request, Session, Language], Awaitable[web.Response]]


def page(handler: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A GET page: signed in, or sent to the sign-in page."""

    async def serve(request: web.Request) -> web.StreamResponse:
        session = _session(request)
        if session is None:
            return _see("/console/login")
        response = _with_cookie(request, await handler(request, session, _language(request)))
        if request.query.get("lang") in ("tr", "en"):  # the switch is kept for the next pages
            response.set_cookie(LANG_COOKIE, request.query["lang"], path="/console", samesite="Strict", max_age=365 * 86400)
        return response

    return serve


def change(action: str, handler: Callable[[web.Request, Session, Any, Language], Awaitable[web.Response]]) -> Any:
    """A POST that changes something: a session, the same origin, its CSRF token and a role allowed `action`."""

    async def serve(request: web.Request) -> web.StreamResponse:
        lang = _language(request)
        try:
            form = await _form(request)
            session = _checked(request, form, action)
        except Refused as refused:
            return _html(_refusal(refused, lang), refused.status)
        return await handler(request, session, form, lang)

    return serve


async def _form(request: web.Request) -> Any:
    if request.content_length is not None and request.content_length > MAX_FORM:
        raise Refused(400, f"form: larger than {MAX_FORM // 1024} KiB")
    try:
        return await request.post()
    except (ValueError, web.HTTPRequestEntityTooLarge):
        raise Refused(400, "form: not a form this console sent") from None


def _checked(request: web.Request, form: Any, action: str) -> Session:
    session = _session(request)
    if session is None:
        raise Refused(401, "not signed in, or the session expired: sign in again")
    if not _same_origin(request):
        raise Refused(403, "a form from another site: refused")
    if not csrf_ok(session, form.get("csrf") if isinstance(form.get("csrf"), str) else None):
        raise Refused(403, "the form's CSRF token is missing or wrong: reload the page and try again")
    if action != "sign_out" and not allowed(session.role, action):
        raise Refused(403, f"the {session.role} role may not {action}")
    return session


def _same_origin(request: web.Request) -> bool:
    """Whether the browser's Origin (when it sends one) is this console's host, or the host a
    trusted proxy was asked for; the scheme is left out, since behind a TLS proxy it differs."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    hosts = {request.host}
    if request.remote in _state(request).settings.trusted_proxies and "X-Forwarded-Host" in request.headers:
        hosts.add(request.headers["X-Forwarded-Host"])
    return urlsplit(origin).netloc in hosts


def _refusal(refused: Refused, lang: Language) -> str:
    body = f'<section class="card"><p class="error" role="alert" id="message">{escape(refused.message)}</p>'
    body += '<p><a href="/console">/console</a></p></section>'
    return render(lang, words(lang)["console"], body, None)


async def _audit(request: web.Request, session: Session, action: str, target: str, detail: str = "") -> None:
    d = api._daemon(request)

    async def write() -> None:
        await d.audit(AuditEntry(session.user, session.role, d.clock(), action, target, detail[:200]))

    await api._on_daemon_loop(request, write)


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
    """Acknowledge or write a note, as POST /api/incidents/{tracking}/ack and /notes do."""

    async def handler(request: web.Request, session: Session, form: Any, lang: Language) -> web.Response:
        d, tracking = api._daemon(request), request.match_info["tracking"]
        body = {"by": session.user} | ({"note": form.get("note", "")} if action == "note" else {})

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
    for line_id in lines[:MAX_DIAGNOSED]:
        try:
            diagnosis = await api.live_diagnosis(request, line_id)
        except api.ApiError as error:
            return _html(lookup_page(query, found, viewer, lang, error.message), error.status)
        v = diagnosis.verdict
        found.append(Found(line_id, diagnosis.facts.line.name, v.tracking, v.summary, v.cause, tuple(v.evidence)))
    return _html(lookup_page(query, found, viewer, lang))


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
    post("/console/incidents/{tracking}/note", change("note", incident_change("note")))
    get("/console/lookup", page(_lookup), allow_head=False)
    get("/console/silences", page(lambda r, s, lang: _silences(r, s, lang)), allow_head=False)
    post("/console/silences", change("silence", _silence_add))
