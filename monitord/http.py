"""The HTTP API, for the helpdesk and for scripts (docs/openapi.yaml).

Reading status is open; names and phone numbers are shown only to a caller with
`Authorization: Bearer <token>` matching `http.token`, and changing state (maintenance windows,
silences, stages, acknowledgements, owners and notes) or a live diagnosis needs it: without a configured token they are refused, never open by default.
Every error is JSON, `{"error": "..."}`; bad input names the field at fault. Responses are strict
JSON (no NaN or Infinity).

With a `console:` section the same listener serves the web console under /console (HTML pages
for people, signed in with a session: monitord/console.py, added by the daemon to this app).

The API cannot hurt monitoring: it is served on a thread and event loop of its own
(monitord/http_server.py); a handler that reads the daemon's state, through its `View`
(monitord/view.py), hops to the daemon's loop, at most `DAEMON_LOOP_SLOTS` at a time. /metrics
is served from bytes rendered at most once per `exposition.Exposition` age, and `diagnose`
(live SNMP and ICMP) is rate limited and bounded in concurrency.

Longer than the other modules on purpose: every route's handler, its input checks and what it
masks of personal data sit together here, in the order of docs/openapi.yaml, so the API's
contract is reviewed in one place (the server, pacing and /metrics cache are apart).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from monitord.config import (
    Invalid,
    identifier,
    node_ref,
    parse_duration,
    text,
    timestamp,
)
from monitord.database import one_line
from monitord.diagnose import Clients, Diagnosis, Ping, Row, covering, diagnose
from monitord.history import REPORT_MAX, PastIncident, report_csv, touched_csv
from monitord.http_server import paced
from monitord.incident_actions import MAX_NOTE, TEXT_FIELDS, Refusal, event_json, parse_event, workflow_json
from monitord.model import (
    EventAction,
    Incident,
    Line,
    LineState,
    MaintenanceWindow,
    NodeRef,
    Phase,
    Status,
    Topology,
)
from monitord.quality_api import BadQuery, drifting_json, flapping_json, parse_at_least, parse_margin, parse_span, series_json
from monitord.ratelimit import TokenBucket
from monitord.rollups import STEPS
from monitord.silences_api import MAX_COMMENT, BadSilence, parse_silence, silence_json
from monitord.stages import Part, Stage, line_back
from monitord.store import StoredWindow
from monitord.trends import Drift
from notices.templates import mask_phone

if TYPE_CHECKING:
    from monitord.view import Controls

log = logging.getLogger("monitord.http")
T = TypeVar("T")

DAEMON = web.AppKey("daemon", object)
CLIENTS = web.AppKey("clients", object)
WINDOW_FIELDS = ("id", "scope", "start", "end", "reason", "grace")

MAX_SCOPE = 200  # nodes in one window's scope (after removing repeats)
MAX_WINDOW = 31 * 86400.0  # from start to end: longer work is planned as several windows
MAX_AHEAD = 366 * 86400.0  # how far ahead a window may start
MAX_GRACE = 86400.0
MAX_REASON = 500  # characters

MAX_BODY = 256 * 1024  # bytes of a request body (client_max_size): a 400 names a too-long scope before that
DAEMON_LOOP_SLOTS = 8  # handlers running on the daemon's loop at once; the rest wait
DAEMON_LOOP_WAIT = 5.0  # seconds a request waits for a slot before a 503
DIAGNOSE_AT_ONCE = 4  # live diagnoses in flight; more get a 429
DIAGNOSE_RATE = 2.0  # diagnoses per second, sustained
DIAGNOSE_BURST = 20

STRICT_JSON = functools.partial(json.dumps, allow_nan=False)


class ApiError(Exception):
    """Turned into `{"error": message}` with `status` by the error middleware."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


# --- JSON views (pure) -------------------------------------------------------------------------


def incident_json(incident: Incident) -> dict[str, Any]:
    return {
        "tracking": incident.tracking,
        "kind": incident.kind.value,
        "root": str(incident.root),
        "phase": incident.phase.value,
        "opened_at": incident.opened_at,
        "updated_at": incident.updated_at,
        "resolved_at": incident.resolved_at,
        "affected": sorted(incident.affected),
        "evidence": list(incident.evidence),
    }


def state_json(state: LineState) -> dict[str, Any]:
    return {"node": str(state.node), "status": state.status.value, "since": state.since, "reasons": list(state.reasons)}


def line_json(line_id: str, line: Line | None, personal: bool) -> dict[str, Any]:
    """`personal` False (no valid token): the subscriber's name and phone are left out (null)."""
    shown = line if personal else None
    phone = shown.phone if shown else None
    return {"id": line_id, "name": shown.name if shown else None, "phone": mask_phone(phone) if phone else None}


def window_json(stored: StoredWindow, zone: str, now: float) -> dict[str, Any]:
    w = stored.window
    return {
        "id": w.id,
        "scope": [str(node) for node in w.scope],
        "start": _iso(w.start, zone),
        "end": _iso(w.end, zone),
        "reason": w.reason,
        "grace": w.grace,
        "source": stored.source,
        "active": w.start <= now < w.end + w.grace,
    }


def ping_json(ping: Ping | None) -> dict[str, Any] | None:
    if ping is None:
        return None
    return {
        "address": ping.address,
        "outcome": ping.outcome.value,
        "sent": ping.sent,
        "received": ping.received,
        "rtt_ms": ping.rtt_ms,
        "detail": ping.detail,
    }


def row_json(row: Row) -> dict[str, Any]:
    return {
        "profile": row.profile,
        "outcome": row.outcome.value,
        "values": {k: round(v, 4) for k, v in row.values.items()},
        "down": list(row.down),
        "degraded": list(row.degraded),
        "detail": row.detail,
    }


def diagnosis_json(diagnosis: Diagnosis) -> dict[str, Any]:
    f, v = diagnosis.facts, diagnosis.verdict
    return {
        "subscriber": f.line.id,
        "cause": v.cause,
        "summary": v.summary,
        "tracking": v.tracking,
        "evidence": list(v.evidence),
        "problems": list(v.problems),
        "at": f.at,
        "timings_ms": dict(diagnosis.timings_ms),
        "modem": ping_json(f.modem),
        "head_end": {"device": f.device.id, "ping": ping_json(f.head_end), "rows": [row_json(r) for r in f.rows]},
        "line_state": state_json(f.line_state),
        "device_state": state_json(f.device_state),
        "incidents": [i.tracking for i in f.incidents],
        "maintenance": [w.id for w in f.windows],
    }


def _iso(at: float, zone: str) -> str:
    return datetime.fromtimestamp(at, ZoneInfo(zone)).isoformat(timespec="seconds")


# --- input (pure) ------------------------------------------------------------------------------


def parse_window(body: Any, topology: Topology, zone: str, default_grace: float, now: float) -> MaintenanceWindow:
    """A maintenance window from a POSTed JSON object; ApiError 400 naming the first bad field."""
    if not isinstance(body, dict):
        raise ApiError(400, "body: expected a JSON object with scope, start and end")
    unknown = sorted(set(body) - set(WINDOW_FIELDS))
    if unknown:
        raise ApiError(400, f"{unknown[0]}: unknown field; known: {', '.join(WINDOW_FIELDS)}")
    for name in ("scope", "start", "end"):
        if body.get(name) in (None, "", []):
            raise ApiError(400, f"{name}: required")
    if not isinstance(body["scope"], list):
        raise ApiError(400, "scope: expected a list like [\"exchange:sisli\"]")
    if len(body["scope"]) > MAX_SCOPE:
        raise ApiError(400, f"scope: at most {MAX_SCOPE} nodes; cover a wider node (exchange, region) instead")
    nodes = (_field(f"scope[{n}]", lambda v: _known(node_ref(v), topology), v) for n, v in enumerate(body["scope"]))
    scope = tuple(dict.fromkeys(nodes))
    start = _field("start", timestamp(ZoneInfo(zone)), body["start"])
    end = _field("end", timestamp(ZoneInfo(zone)), body["end"])
    if end <= start:
        raise ApiError(400, "end: the window ends before it starts")
    if end <= now:
        raise ApiError(400, "end: already past")
    if end - start > MAX_WINDOW:
        raise ApiError(400, f"end: a window lasts at most {MAX_WINDOW / 86400:g} days; plan longer work as several windows")
    if start - now > MAX_AHEAD:
        raise ApiError(400, f"start: at most {MAX_AHEAD / 86400:g} days ahead")
    reason = _field("reason", text, body["reason"]) if body.get("reason") else ""
    if len(reason) > MAX_REASON:
        raise ApiError(400, f"reason: at most {MAX_REASON} characters")
    grace = _field("grace", parse_duration, body["grace"]) if body.get("grace") is not None else default_grace
    if not (math.isfinite(grace) and grace <= MAX_GRACE):
        raise ApiError(400, f"grace: {body.get('grace')!r} is not a duration of at most {MAX_GRACE / 3600:g}h")
    if body.get("id") is not None:
        window_id = _field("id", identifier, body["id"])
    else:
        window_id = f"mw-{datetime.fromtimestamp(start, ZoneInfo(zone)):%Y%m%d-%H%M}-{secrets.token_hex(2)}"
    return MaintenanceWindow(window_id, scope, start, end, reason, grace)


def _field(name: str, check: Any, value: Any) -> Any:
    try:
        return check(value)
    except Invalid as problem:
        raise ApiError(400, f"{name}: {problem.message}" + (f" ({problem.hint})" if problem.hint else "")) from None


def _known(node: NodeRef, topology: Topology) -> NodeRef:
    known = {
        "region": topology.regions,
        "exchange": topology.exchanges,
        "cabinet": {d.cabinet for d in topology.devices.values() if d.cabinet},
        "device": topology.devices,
        "segment": {line.segment for line in topology.lines.values() if line.segment},
        "line": topology.lines,
    }[node.level]
    if node.id not in known:
        raise Invalid(f"no {node.level} {node.id!r} in the inventory")
    return node


# --- limits (pure) -----------------------------------------------------------------------------


@dataclass(slots=True)
class Limits:
    """One app's gates, made on the loop that serves it (asyncio primitives belong to one loop)."""

    daemon_loop: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(DAEMON_LOOP_SLOTS))
    render: asyncio.Lock = field(default_factory=asyncio.Lock)
    diagnoses: int = 0
    diagnose_rate: TokenBucket = field(default_factory=lambda: TokenBucket(DIAGNOSE_RATE, DIAGNOSE_BURST, time.monotonic()))


LIMITS = web.AppKey("limits", Limits)


# --- handlers ----------------------------------------------------------------------------------


def _daemon(request: web.Request) -> Controls:
    return request.app[DAEMON]  # type: ignore[return-value]


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers, dumps=STRICT_JSON)


async def _on_daemon_loop(request: web.Request, call: Callable[[], Awaitable[T]]) -> T:
    """Run `call` where the daemon's state lives, waiting for one of the app's slots there, and
    there for the rules' thread to end its step (`View.between_steps`)."""
    d = _daemon(request)

    async def between_steps() -> T:
        await d.between_steps()
        return await call()

    loop = d.loop
    if loop is None or loop is asyncio.get_running_loop():
        return await between_steps()
    try:
        async with asyncio.timeout(DAEMON_LOOP_WAIT):
            await request.app[LIMITS].daemon_loop.acquire()
    except TimeoutError:
        raise ApiError(503, "busy: too many requests at once; retry shortly", {"Retry-After": "1"}) from None
    try:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(between_steps(), loop))
    finally:
        request.app[LIMITS].daemon_loop.release()


def on_daemon_loop(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A handler that reads the daemon's state: its body is read here, the rest runs over there."""

    @functools.wraps(handler)
    async def hop(request: web.Request) -> web.StreamResponse:
        if request.can_read_body:
            await request.read()
        return await _on_daemon_loop(request, lambda: handler(request))

    return hop


def _authorized(request: web.Request) -> bool:
    token = _daemon(request).config.http.token
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return (
        token is not None and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.reveal().encode())
    )


def _authorize(request: web.Request, what: str = "changes through the API are") -> None:
    if _daemon(request).config.http.token is None:
        raise ApiError(403, f"{what} disabled: no http.token is configured")
    if not _authorized(request):
        raise ApiError(401, "a valid bearer token is required", {"WWW-Authenticate": 'Bearer realm="monitord"'})


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "0")
    if value not in ("0", "1", "true", "false"):
        raise ApiError(400, f"{name}: expected 1 or 0, not {value!r}")
    return value in ("1", "true")


def _line(request: web.Request) -> Line:
    line = _daemon(request).config.topology.lines.get(request.match_info["id"])
    if line is None:
        raise ApiError(404, f"no subscriber {request.match_info['id']!r}")
    return line


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return _json({"error": error.message}, status=error.status, headers=error.headers)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        kept = {k: v for k, v in error.headers.items() if k == "Allow"}
        return _json({"error": error.reason.lower()}, status=error.status, headers=kept)
    except _daemon(request).store_errors as error:  # the store down or locked: say so, as /health does
        log.warning("%s %s: the store did not answer: %s", request.method, request.path, one_line(error))
        return _json({"error": "the state store did not answer; retry shortly"}, status=503, headers={"Retry-After": "5"})
    except Exception:  # a bug: logged with its traceback (redacted), never shown to the caller
        log.exception("%s %s failed", request.method, request.path)
        return _json({"error": "internal error; see the daemon's log"}, status=500)


async def _limits(app: web.Application) -> None:
    app[LIMITS] = Limits()


def _store_fault(daemon: Controls) -> dict[str, Any] | None:
    """Why the state file is not taking the daemon's decisions, if it is not."""
    unwritten = daemon.unwritten
    if unwritten is None:
        return None
    return {
        "error": unwritten.error,
        "since": unwritten.since,
        "incidents": len(unwritten.incidents),
        "notices": len(unwritten.planned),
    }


@on_daemon_loop
async def health(request: web.Request) -> web.Response:
    """503 while the store refuses writes: polling goes on, but nothing decided is durable or sent."""
    fault = _store_fault(_daemon(request))
    if fault is not None:
        return _json({"status": "failing", "store": fault}, status=503)
    return _json({"status": "ok"})


@on_daemon_loop
async def ready(request: web.Request) -> web.Response:
    daemon = _daemon(request)
    is_ready = daemon.ready.is_set() and daemon.unwritten is None
    body: dict[str, Any] = {"ready": is_ready}
    if (fault := _store_fault(daemon)) is not None:
        body["store"] = fault
    return _json(body, status=200 if is_ready else 503)


async def metrics(request: web.Request) -> web.Response:
    """Served from the last rendering; only a stale one goes to the daemon's loop, one at a time."""
    exposition = _daemon(request).exposition
    body = exposition.fresh()
    if body is None:
        async with request.app[LIMITS].render:
            body = exposition.fresh()
            if body is None:
                body = await _on_daemon_loop(request, exposition.refresh)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@on_daemon_loop
async def incidents(request: web.Request) -> web.Response:
    d = _daemon(request)
    found = d.incident_history() if _flag(request, "all") else d.open_incidents()
    return _json([incident_json(i) for i in found])


@on_daemon_loop
async def incident(request: web.Request) -> web.Response:
    d = _daemon(request)
    tracking = request.match_info["tracking"]
    found = d.incident(tracking)
    if found is None:
        raise ApiError(404, f"no incident {tracking!r}")
    lines, personal = d.config.topology.lines, _authorized(request)
    stage = d.config.stages.current(found, d.helpdesk_stage(tracking))
    history = [{"stage": c.stage, "source": c.source, "by": c.actor, "at": c.at} for c in d.stage_history(tracking)]
    return _json(
        {
            **incident_json(found),
            "stage": stage_json(stage),
            "stage_history": history,
            **workflow_json(d.incident_events(tracking), d.config.timezone),
            "lines": [line_json(i, lines.get(i), personal) for i in sorted(found.affected)],
        }
    )


@on_daemon_loop
async def subscriber(request: web.Request) -> web.Response:
    d = _daemon(request)
    line = _line(request)
    chain = d.config.topology.ancestors(NodeRef("line", line.id))
    open_for_line = [i for i in d.open_incidents() if line.id in i.affected]
    now = d.clock()
    windows = covering([w.window for w in d.maintenance()], line.id, chain, now)
    return _json(
        {
            **line_json(line.id, line, _authorized(request)),
            "device": line.device,
            "chain": [str(node) for node in chain],
            "state": state_json(d.line_state(line.id)),
            "device_state": state_json(d.node_state(NodeRef("device", line.device))),
            "tracking": open_for_line[0].tracking if open_for_line else None,
            "incidents": [incident_json(i) for i in open_for_line],
            "maintenance": [w.id for w in windows],
            "stage": part_json(d, line.id, open_for_line[0] if open_for_line else await _last_incident(d, line.id)),
        }
    )


async def _last_incident(d: Controls, line_id: str) -> Incident | None:
    """The latest incident that touched the line, read off the loop (monitord/history.py), as stored."""
    past = await d.history.of_line(line_id, limit=1)
    return d.incident(past[0].tracking) if past else None


def stage_json(stage: Stage) -> dict[str, str]:
    return {"id": stage.id, "tr": stage.name("tr"), "en": stage.name("en")}


def part_json(d: Controls, line_id: str, incident: Incident | None) -> dict[str, Any] | None:
    """The subscriber's part in `incident` (their open one, else the last that touched them): its
    stage and their own (monitord/stages.py `of_subscriber`)."""
    if incident is None:
        return None
    table = d.config.stages
    stage = table.current(incident, d.helpdesk_stage(incident.tracking))
    back = line_back(incident.kind, d.line_state(line_id).status)
    own = table.of_subscriber(stage, Part(line_id in incident.affected, back, d.helpdesk_stage(incident.tracking, line_id)))
    return {"tracking": incident.tracking, "incident": stage_json(stage), "subscriber": stage_json(own)}


async def diagnose_subscriber(request: web.Request) -> web.StreamResponse:
    """Live SNMP and ICMP from the daemon's own sockets: behind the token, rate limited, few at once."""
    _authorize(request, "live diagnoses are")
    return _json(diagnosis_json(await live_diagnosis(request, _line(request).id)))


async def live_diagnosis(request: web.Request, line_id: str) -> Diagnosis:
    """One line's diagnosis on the daemon's loop, within the app's limits (the API's and the console's)."""
    limits = request.app[LIMITS]
    if limits.diagnoses >= DIAGNOSE_AT_ONCE:
        raise ApiError(429, f"at most {DIAGNOSE_AT_ONCE} diagnoses at once; retry shortly", {"Retry-After": "1"})
    if not limits.diagnose_rate.take(time.monotonic()):
        raise ApiError(429, f"at most {DIAGNOSE_RATE:g} diagnoses per second; retry shortly", {"Retry-After": "1"})
    clients = request.app[CLIENTS]
    assert isinstance(clients, Clients), "the daemon's probes are not running"
    limits.diagnoses += 1
    try:
        return await _on_daemon_loop(request, lambda: diagnose(_daemon(request), clients, line_id))
    finally:
        limits.diagnoses -= 1


@on_daemon_loop
async def maintenance_list(request: web.Request) -> web.Response:
    d = _daemon(request)
    now = d.clock()
    return _json([window_json(w, d.config.timezone, now) for w in d.maintenance()])


@on_daemon_loop
async def maintenance_add(request: web.Request) -> web.Response:
    _authorize(request)
    d = _daemon(request)
    try:
        body = json.loads(await request.read())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "body: not valid JSON") from None
    now = d.clock()
    window = parse_window(body, d.config.topology, d.config.timezone, d.rules.maintenance_grace, now)
    if any(w.window.id == window.id for w in d.maintenance()):
        raise ApiError(409, f"id: a maintenance window {window.id!r} already exists")
    await d.add_maintenance(window)
    await d.durable()  # a 201 promises the window outlives power loss
    shown = window_json(StoredWindow(window, "api", False), d.config.timezone, now)
    return _json(shown, status=201, headers={"Location": f"/api/maintenance/{window.id}"})


@on_daemon_loop
async def maintenance_cancel(request: web.Request) -> web.Response:
    _authorize(request)
    d = _daemon(request)
    window_id = request.match_info["id"]
    stored = next((w for w in d.maintenance() if w.window.id == window_id), None)
    if stored is None:
        raise ApiError(404, f"no maintenance window {window_id!r}")
    if stored.source == "config":
        raise ApiError(409, f"maintenance window {window_id!r} comes from the config file: remove it there and reload")
    await d.cancel_maintenance(window_id)
    await d.durable()
    return _json({"id": window_id, "cancelled": True})


@on_daemon_loop
async def stage_set(request: web.Request) -> web.Response:
    """The webhook helpdesk's callback: `{"stage": "<id, name or helpdesk word>", "by": "<user>"}`,
    with `"line"` for a subscriber's follow-up ticket (its tag `<tracking>/<line>`): that
    subscriber's stage, also once the incident resolved, and "resolved" when the helpdesk ended it."""
    _authorize(request)
    d = _daemon(request)
    try:
        body = json.loads(await request.read())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "body: not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "body: expected a JSON object with stage and by")
    said, by, line = body.get("stage"), body.get("by", "helpdesk"), body.get("line")
    stage = d.config.stages.from_helpdesk(said) if isinstance(said, str) else None
    if stage is None or (stage.done and line is None):
        raise ApiError(400, f"stage: expected one of {', '.join(s.id for s in d.config.stages.stages if not s.done)}")
    if not isinstance(by, str) or not 0 < len(by) <= 64:
        raise ApiError(400, "by: expected who set it, 1 to 64 characters")
    found = d.incident(request.match_info["tracking"])
    if found is None:
        raise ApiError(404, f"no incident {request.match_info['tracking']!r}")
    if line is not None and (not isinstance(line, str) or not d.touched(found.tracking, line)):
        raise ApiError(400, f"line: not a line of incident {found.tracking}")
    if line is None and found.phase is Phase.RESOLVED:
        raise ApiError(409, f"incident {found.tracking} is resolved: its stage is the engine's")
    changed = await d.set_stage(found, stage, by, line)
    await d.durable()
    return _json({"tracking": found.tracking, "stage": stage.id, "changed": changed} | ({"line": line} if line else {}))


# --- history (read off the daemon's loop: monitord/history.py) ---------------------------------

MAX_REPORT_PERIOD = 366 * 86400.0


def past_json(past: PastIncident, now: float) -> dict[str, Any]:
    """As `incident_json`, with a count of the lines for their list."""
    return {
        "tracking": past.tracking,
        "kind": past.kind,
        "phase": past.phase,
        "root": past.root,
        "opened_at": past.opened_at,
        "resolved_at": past.resolved_at,
        "duration_s": round(past.duration(now)),
        "lines": past.affected,
    }


def _csv(body: str, filename: str) -> web.Response:
    disposition = f'attachment; filename="{filename}"'
    return web.Response(text=body, content_type="text/csv", charset="utf-8", headers={"Content-Disposition": disposition})


async def subscriber_incidents(request: web.Request) -> web.Response:
    """The subscriber's past and open incidents, latest first."""
    d = _daemon(request)
    line = _line(request)
    now = d.clock()
    return _json([past_json(p, now) for p in await d.history.of_line(line.id)])


async def incident_subscribers_csv(request: web.Request) -> web.Response:
    """Every subscriber the incident touched, for the call centre: behind the token (names)."""
    _authorize(request, "subscriber lists are")
    d = _daemon(request)
    tracking = request.match_info["tracking"]
    lines = await d.history.touched(tracking)
    if lines is None:
        raise ApiError(404, f"no incident {tracking!r}")
    return _csv(await asyncio.to_thread(touched_csv, lines, d.config.topology), f"{tracking}-subscribers.csv")


async def incidents_report_csv(request: web.Request) -> web.Response:
    """The incidents opened in [since, until), at most a year and REPORT_MAX of them."""
    d = _daemon(request)
    zone = d.config.timezone
    bounds = {}
    for name in ("since", "until"):
        if name not in request.query:
            raise ApiError(400, f"{name}: expected a date and time, e.g. ?since=2026-11-01T00:00&until=2026-12-01T00:00")
        bounds[name] = _field(name, timestamp(ZoneInfo(zone)), request.query[name])
    since, until = bounds["since"], bounds["until"]
    if not 0 < until - since <= MAX_REPORT_PERIOD:
        raise ApiError(400, "until: expected after since, at most 366 days later")
    found = await d.history.opened(since, until)
    if len(found) > REPORT_MAX:
        raise ApiError(400, f"more than {REPORT_MAX:,} incidents opened in the period: ask for a shorter one")
    name = f"incidents-{_iso(since, zone)[:10]}-{_iso(until, zone)[:10]}.csv"
    return _csv(await asyncio.to_thread(report_csv, found, d.config.topology, zone, d.clock()), name)  # a year: seconds of CPU


# --- line quality over time (read off the daemon's loop: monitord/line_history.py) --------------


def _parsed(parse: Callable[[], T]) -> T:
    """A query read by monitord/quality_api.py; what it refuses is a 400."""
    try:
        return parse()
    except BadQuery as problem:
        raise ApiError(400, str(problem)) from None


async def subscriber_quality(request: web.Request) -> web.Response:
    """The line's roll-ups over a span, as series for a small chart."""
    d = _daemon(request)
    line = _line(request)
    step, since, until = _parsed(lambda: parse_span(request.query, d.config.timezone, d.clock()))
    points = await d.line_history.points(line.device, line.id, STEPS[step], since, until)
    body = {"subscriber": line.id, "device": line.device, "step": step, "since": since, "until": until}
    return _json(body | series_json(points))


async def lines_flapping(request: web.Request) -> web.Response:
    """Lines that went bad at least `min` times in 24 h (counted on the daemon's loop)."""
    d = _daemon(request)
    at_least = _parsed(lambda: parse_at_least(request.query.get("min"), d.config.history.flap_changes))

    async def read() -> dict[str, Any]:
        found = d.line_history.flaps.flapping(d.clock(), at_least)
        lines = d.config.topology.lines
        return flapping_json(found, {f.line: lines[f.line].device for f in found if f.line in lines}, at_least)

    return _json(await _on_daemon_loop(request, read))


async def lines_drifting(request: web.Request) -> web.Response:
    """Lines still OK whose latest hourly average is within `margin` of a threshold, nearest first."""
    d = _daemon(request)
    margin = _parsed(lambda: parse_margin(request.query.get("margin"), d.config.history.drift_margin))
    found = await d.line_history.drifting(margin)

    async def still_ok() -> list[Drift]:
        lines = d.config.topology.lines
        return [f for f in found if f.line in lines and d.line_state(f.line).status is Status.OK]

    return _json(drifting_json(await _on_daemon_loop(request, still_ok), margin))


def incident_action(action: EventAction) -> Callable[[web.Request], Awaitable[web.Response]]:
    """POST /api/incidents/{tracking}/ack, /owner, /notes, /close: the NOC's action, recorded with who and when."""
    name, limit = TEXT_FIELDS.get(action, ("note", MAX_NOTE))

    async def handler(request: web.Request) -> web.Response:
        _authorize(request)
        body = await _json_body(request, f"a {name} is at most {limit} characters")
        return await _on_daemon_loop(request, lambda: _record(request, action, body))

    return handler


async def _record(request: web.Request, action: EventAction, body: Any) -> web.Response:
    d = _daemon(request)
    event = parse_event(action, request.match_info["tracking"], body, d.clock())
    if isinstance(event, Refusal):
        raise ApiError(event.status, event.message)
    if (refused := await d.record(event)) is not None:
        raise ApiError(refused.status, refused.message)
    await d.durable()
    return _json(event_json(event, d.config.timezone), status=201)


async def _json_body(request: web.Request, limit: str) -> Any:
    """The request's JSON, read here rather than by `on_daemon_loop`: a body over MAX_BODY (a
    1 MB comment or note) is a 400 naming the field's `limit`, not aiohttp's bare 413."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(400, f"body: larger than {MAX_BODY // 1024} KiB; {limit}") from None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "body: not valid JSON") from None


@on_daemon_loop
async def silences_list(request: web.Request) -> web.Response:
    """Planned and active silences; `?all=1` adds the expired ones still kept."""
    d, everything = _daemon(request), _flag(request, "all")
    now = d.clock()
    shown = [s for s in d.silences() if everything or s.end > now]
    return _json([silence_json(s, d.config.timezone, now) for s in shown])


async def silence_add(request: web.Request) -> web.Response:
    _authorize(request)
    body = await _json_body(request, f"a comment is at most {MAX_COMMENT} characters")
    return await _on_daemon_loop(request, lambda: _add_silence(request, body))


async def _add_silence(request: web.Request, body: Any) -> web.Response:
    d = _daemon(request)
    now = d.clock()
    try:
        silence = parse_silence(body, d.config.topology, d.config.timezone, _known, now)
    except BadSilence as problem:
        raise ApiError(400, str(problem)) from None
    if any(s.id == silence.id for s in d.silences()):
        raise ApiError(409, f"id: a silence {silence.id!r} already exists")
    await d.add_silence(silence)
    await d.durable()  # a 201 promises the silence outlives power loss
    shown = silence_json(silence, d.config.timezone, now)
    return _json(shown, status=201, headers={"Location": f"/api/silences/{silence.id}"})


@on_daemon_loop
async def silence_expire(request: web.Request) -> web.Response:
    """End a silence now (`?by=<who>`, default "api"): what it held goes out at once."""
    _authorize(request)
    d = _daemon(request)
    silence_id, by = request.match_info["id"], request.query.get("by", "api")
    if not 0 < len(by) <= 64:
        raise ApiError(400, "by: expected who ends it, 1 to 64 characters")
    if not await d.expire_silence(silence_id, by):
        raise ApiError(404, f"no active or planned silence {silence_id!r}")
    await d.durable()
    return _json({"id": silence_id, "expired": True, "by": by})


def _app(daemon: Controls, clients: Clients | None = None) -> web.Application:
    app = web.Application(middlewares=[paced, _errors], client_max_size=MAX_BODY)
    app[DAEMON] = daemon
    app[CLIENTS] = clients
    app.on_startup.append(_limits)
    return app


def make_app(daemon: Controls, clients: Clients | None = None) -> web.Application:
    """The API; live diagnoses look through `clients`, the running daemon's own."""
    app = _app(daemon, clients)
    get = app.router.add_get
    get("/health", health, allow_head=False)
    get("/ready", ready, allow_head=False)
    get("/metrics", metrics, allow_head=False)
    get("/api/incidents", incidents, allow_head=False)
    get("/api/incidents/{tracking}", incident, allow_head=False)
    app.router.add_post("/api/incidents/{tracking}/stage", stage_set)
    get("/api/incidents/{tracking}/subscribers.csv", incident_subscribers_csv, allow_head=False)
    get("/api/reports/incidents.csv", incidents_report_csv, allow_head=False)

    app.router.add_post("/api/incidents/{tracking}/ack", incident_action("ack"))
    app.router.add_post("/api/incidents/{tracking}/owner", incident_action("owner"))
    app.router.add_post("/api/incidents/{tracking}/notes", incident_action("note"))
    app.router.add_post("/api/incidents/{tracking}/close", incident_action("close"))
    get("/api/subscribers/{id}", subscriber, allow_head=False)
    get("/api/subscribers/{id}/incidents", subscriber_incidents, allow_head=False)
    get("/api/subscribers/{id}/diagnose", diagnose_subscriber, allow_head=False)
    get("/api/maintenance", maintenance_list, allow_head=False)
    app.router.add_post("/api/maintenance", maintenance_add)
    app.router.add_delete("/api/maintenance/{id}", maintenance_cancel)
    get("/api/silences", silences_list, allow_head=False)
    app.router.add_post("/api/silences", silence_add)
    app.router.add_delete("/api/silences/{id}", silence_expire)
    get("/api/subscribers/{id}/quality", subscriber_quality, allow_head=False)
    get("/api/lines/flapping", lines_flapping, allow_head=False)
    get("/api/lines/drifting", lines_drifting, allow_head=False)
    return app


def make_metrics_app(daemon: Controls) -> web.Application:
    """`metrics.listen`: /metrics alone, so the API's listener can stay private."""
    app = _app(daemon)
    app.router.add_get("/metrics", metrics, allow_head=False)
    return app
