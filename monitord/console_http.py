"""How a console page or form is served (monitord/console.py and its sibling page modules use it):
the session from the cookie or a trusted proxy, the language, the CSRF, origin and role checks
of every change, the refusal pages and the audit log. The handlers stay in their own modules.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from monitord import http as api
from monitord.config.model import ConsoleConfig
from monitord.console_auth import LoginLimit, Session, Sessions, allowed, csrf_ok
from monitord.console_pages import Viewer, words
from monitord.console_pages import page as render
from monitord.model import AuditEntry, Language
from monitord.track_http import client_address, language

COOKIE = "monitord_console"
LANG_COOKIE = "monitord_console_lang"
MAX_FORM = 8 * 1024  # bytes of a console form: a note of 2,000 characters fits
NEW_SESSION = web.RequestKey("new_session", Session)  # a session started by this request, for its cookie
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
        raise Refused(403, f"the {session.role} role may not {action.replace('_', ' ')}")
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
