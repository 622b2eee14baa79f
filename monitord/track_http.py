"""GET /track/<number>: the customers' tracking page and its JSON form, on a listener of its own.

The listener (`tracking.listen`) serves nothing else, so it can face the internet while the NOC
API stays private; it shares the API's HTTP thread, CPU pacing and request bounds
(monitord/http_server.py). Every answer is a page for a person (or, asked for JSON, an object
for the ISP's app and IVR): an unknown or malformed number, a client over its rate or a bug get
a kind page with the right status, never a traceback. A number that cannot be one is refused
before anything is read; one that can costs one lookup by primary key on the daemon's loop, at
most `LOOKUP_SLOTS` at a time. What is shown is monitord/track_page.py's `TrackView`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from aiohttp import web

from monitord.config.model import TrackingConfig
from monitord.http_server import OPTIONS, paced
from monitord.model import Incident, Language, Topology
from monitord.ratelimit import TokenBucket
from monitord.sms_inbound import MAX_FORM, SMS_PATH, inbound_handler
from monitord.stages import StageTable
from monitord.track_page import (
    Problem,
    TrackView,
    merged_into,
    normalize,
    number_pattern,
    problem_text,
    public_view,
    render_page,
    render_problem,
    view_json,
)

log = logging.getLogger("monitord.track")
T = TypeVar("T")

MAX_BODY = 1024  # a GET carries no body worth reading
MAX_LINE = 16 * 1024  # bytes of the request line: a 10 kB number pasted by mistake still gets a kind page
LOOKUP_SLOTS = 4  # lookups on the daemon's loop at once; the NOC API's slots are its own
LOOKUP_WAIT = 5.0  # seconds a request waits for a slot before a kind 503
MAX_MERGES = 3  # merges followed from the number asked for to the incident shown
MAX_CLIENTS = 10_000  # client addresses remembered for rate limiting; the oldest half is forgotten beyond
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Vary": "Accept, Accept-Language",  # the same URL answers HTML or JSON, Turkish or English
}


class TrackConfig(Protocol):
    @property
    def tracking_prefix(self) -> str: ...
    @property
    def timezone(self) -> str: ...
    @property
    def topology(self) -> Topology: ...
    @property
    def stages(self) -> StageTable: ...


class TrackSource(Protocol):
    """What the tracking page reads of the daemon (`Daemon` is one)."""

    @property
    def config(self) -> TrackConfig: ...
    @property
    def loop(self) -> asyncio.AbstractEventLoop | None: ...
    async def between_steps(self) -> None: ...
    def incident(self, tracking: str) -> Incident | None: ...
    def helpdesk_stage(self, tracking: str) -> str | None: ...


Found = tuple[Incident, str | None]  # an incident and the stage the helpdesk set for it


@dataclass(slots=True)
class Gates:
    """The app's rate limits and slots, made on the loop that serves it."""

    settings: TrackingConfig
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(LOOKUP_SLOTS))
    clients: dict[str, TokenBucket] = field(default_factory=dict)

    def allow(self, client: str, now: float) -> bool:
        bucket = self.clients.get(client)
        if bucket is None:
            if len(self.clients) >= MAX_CLIENTS:
                for old in list(self.clients)[: MAX_CLIENTS // 2]:
                    del self.clients[old]
            bucket = self.clients[client] = TokenBucket(self.settings.rate, self.settings.burst, now)
        return bucket.take(now)


SOURCE = web.AppKey("source", object)
GATES = web.AppKey("gates", Gates)
SETTINGS = web.AppKey("settings", TrackingConfig)


class Refusal(Exception):
    def __init__(self, status: int, problem: Problem, number: str | None = None, headers: Mapping[str, str] | None = None):
        super().__init__(problem)
        self.status = status
        self.problem = problem
        self.number = number
        self.headers = dict(headers or {})


def _source(request: web.Request) -> TrackSource:
    return request.app[SOURCE]  # type: ignore[return-value]


def client_address(remote: str | None, forwarded: str | None, trusted: tuple[str, ...]) -> str:
    """The address a client is limited by: the peer, or behind a trusted proxy the last address
    of X-Forwarded-For that no trusted proxy added (the rest of the header is the client's to forge)."""
    address = remote or "-"
    if address in trusted and forwarded:
        for hop in reversed([h.strip() for h in forwarded.split(",")]):
            try:
                hop = str(ipaddress.ip_address(hop))
            except ValueError:
                break
            address = hop
            if hop not in trusted:
                break
    return address


def language(request: web.Request) -> Language:
    """`?lang=en|tr`, else the first of tr and en in Accept-Language by weight, else Turkish."""
    asked = request.query.get("lang", "").lower()
    if asked in ("tr", "en"):
        return asked  # type: ignore[return-value]
    best: tuple[float, Language] = (0.0, "tr")
    for n, part in enumerate(request.headers.get("Accept-Language", "")[:200].split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in ("tr", "en"):
            continue
        weight = 1.0
        if m := re.fullmatch(r"\s*q=([01](?:\.\d{0,3})?)\s*", params):
            weight = float(m[1])
        weight -= n * 1e-6  # the earlier of equal weights wins
        if weight > best[0]:
            best = (weight, primary)  # type: ignore[assignment]
    return best[1]


def wants_json(request: web.Request, suffix: bool) -> bool:
    if suffix:
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def _answer(request: web.Request, status: int, page: str, body: dict[str, Any], headers: Mapping[str, str] = {}) -> web.Response:
    if wants_json(request, request.path.endswith(".json")):
        return web.Response(
            text=json.dumps(body, ensure_ascii=False, allow_nan=False),
            status=status,
            content_type="application/json",
            headers={**HEADERS, **headers},
        )
    return web.Response(text=page, status=status, content_type="text/html", headers={**HEADERS, **headers})


async def on_loop(request: web.Request, work: Callable[[], Coroutine[Any, Any, T]], number: str | None = None) -> T:
    """`work` run on the daemon's loop, where its state lives, at most LOOKUP_SLOTS at a time."""
    loop = _source(request).loop
    if loop is None or loop is asyncio.get_running_loop():
        return await work()
    slots = request.app[GATES].slots
    try:
        async with asyncio.timeout(LOOKUP_WAIT):
            await slots.acquire()
    except TimeoutError:
        raise Refusal(503, "failed", number, {"Retry-After": "5"}) from None
    try:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work(), loop))
    finally:
        slots.release()


async def _lookup(request: web.Request, tracking: str) -> Found | None:
    """Two reads by key (the incident, its helpdesk stage), where the daemon's state lives."""
    source = _source(request)

    async def found() -> Found | None:
        await source.between_steps()  # the engine's lock then free: it does not hold the loop
        incident = source.incident(tracking)
        return None if incident is None else (incident, source.helpdesk_stage(tracking))

    return await on_loop(request, found, tracking)


async def track(request: web.Request) -> web.Response:
    config = _source(request).config
    raw = request.match_info["number"]
    if raw.endswith(".json"):
        raw = raw[: -len(".json")]
    pattern = number_pattern(config.tracking_prefix)
    tracking = normalize(raw, pattern)
    if tracking is None:
        raise Refusal(404, "malformed")
    found = await _lookup(request, tracking)
    if found is None:
        raise Refusal(404, "not_found", tracking)
    asked = found[0]
    for _ in range(MAX_MERGES):  # a number merged into a wider incident shows that one
        into = merged_into(found[0])
        wider = await _lookup(request, into) if into is not None and normalize(into, pattern) == into else None
        if wider is None:
            break
        found = wider
    incident, helpdesk = found
    lang, zone = language(request), ZoneInfo(config.timezone)
    view: TrackView = public_view(incident, config.topology, asked, config.stages, helpdesk)
    return _answer(request, 200, render_page(view, zone, lang), view_json(view, zone, lang))


def _refused(request: web.Request, refusal: Refusal) -> web.Response:
    lang, prefix = language(request), _source(request).config.tracking_prefix
    page = render_problem(refusal.problem, lang, prefix, refusal.number)
    body = {"error": refusal.problem, "message": problem_text(refusal.problem, lang, prefix)}
    return _answer(request, refusal.status, page, body, refusal.headers)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _kind(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Rate limit first; then every failure is a page a customer can read."""
    if request.path == SMS_PATH and request.method == "POST":  # Twilio's, signed: for a program, not limited per address
        try:
            return await handler(request)
        except Refusal as busy:  # no lookup slot in time: Twilio may try again
            return web.Response(status=busy.status, text="busy, try again\n", headers=busy.headers)
    try:
        settings = request.app[SETTINGS]
        client = client_address(request.remote, request.headers.get("X-Forwarded-For"), settings.trusted_proxies)
        if not request.app[GATES].allow(client, time.monotonic()):
            raise Refusal(429, "limited", None, {"Retry-After": str(max(1, round(1 / settings.rate)))})
        return await handler(request)
    except Refusal as refusal:
        return _refused(request, refusal)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        kept = {k: v for k, v in error.headers.items() if k == "Allow"}
        return _refused(request, Refusal(error.status, "malformed", None, kept))  # another path or method
    except Exception:  # a bug: logged with its traceback, never shown
        log.exception("%s %s failed", request.method, request.path[:100])
        return _refused(request, Refusal(500, "failed"))


def make_tracking_app(source: TrackSource, settings: TrackingConfig) -> web.Application:
    """GET /track/<number>, /track/<number>.json and, with `public_url`, Twilio's POST
    /sms/inbound (monitord/sms_inbound.py): nothing else is served on this listener."""
    inbound = settings.public_url is not None
    app = web.Application(middlewares=[_kind, paced], client_max_size=MAX_FORM if inbound else MAX_BODY)
    app[SOURCE] = source
    app[SETTINGS] = settings
    app[OPTIONS] = {"max_line_size": MAX_LINE}

    async def gates(app: web.Application) -> None:
        app[GATES] = Gates(settings)

    app.on_startup.append(gates)
    app.router.add_get("/track/{number}", track, allow_head=False)
    if settings.public_url is not None:
        handle = inbound_handler(settings.public_url, _source, on_loop)  # type: ignore[arg-type]
        app.router.add_post(SMS_PATH, handle)
    return app
