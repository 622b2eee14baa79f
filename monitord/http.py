"""The HTTP API on the daemon's loop, for the helpdesk and for scripts (docs/openapi.yaml).

Reading is open; changing state (maintenance windows) needs `Authorization: Bearer <token>`
matching `http.token`, and without a configured token changes are refused: never open by default.
Every error is JSON, `{"error": "..."}`; bad input names the field at fault.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitord.config import (
    Invalid,
    identifier,
    node_ref,
    parse_duration,
    text,
    timestamp,
)
from monitord.diagnose import Diagnosis, Ping, Row, covering, diagnose
from monitord.model import (
    Incident,
    Line,
    LineState,
    MaintenanceWindow,
    NodeRef,
    Topology,
)
from monitord.store import StoredWindow
from notifiers.templates import mask_phone

if TYPE_CHECKING:
    from monitord.daemon import Daemon

log = logging.getLogger("monitord.http")

DAEMON = web.AppKey("daemon", object)
WINDOW_FIELDS = ("id", "scope", "start", "end", "reason", "grace")


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


def line_json(line_id: str, line: Line | None) -> dict[str, Any]:
    phone = line.phone if line else None
    return {"id": line_id, "name": line.name if line else None, "phone": mask_phone(phone) if phone else None}


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
        "address": ping.address, "outcome": ping.outcome.value, "sent": ping.sent, "received": ping.received,
        "rtt_ms": ping.rtt_ms, "detail": ping.detail,
    }


def row_json(row: Row) -> dict[str, Any]:
    return {
        "profile": row.profile, "outcome": row.outcome.value, "values": {k: round(v, 4) for k, v in row.values.items()},
        "down": list(row.down), "degraded": list(row.degraded), "detail": row.detail,
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
    scope = tuple(_field(f"scope[{n}]", lambda v: _known(node_ref(v), topology), v) for n, v in enumerate(body["scope"]))
    start = _field("start", timestamp(ZoneInfo(zone)), body["start"])
    end = _field("end", timestamp(ZoneInfo(zone)), body["end"])
    if end <= start:
        raise ApiError(400, "end: the window ends before it starts")
    if end <= now:
        raise ApiError(400, "end: already past")
    reason = _field("reason", text, body["reason"]) if body.get("reason") else ""
    grace = _field("grace", parse_duration, body["grace"]) if body.get("grace") is not None else default_grace
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
        "line": topology.lines,
    }[node.level]
    if node.id not in known:
        raise Invalid(f"no {node.level} {node.id!r} in the inventory")
    return node


# --- handlers ----------------------------------------------------------------------------------


def _daemon(request: web.Request) -> Daemon:
    return request.app[DAEMON]  # type: ignore[return-value]


def _authorize(request: web.Request) -> None:
    token = _daemon(request).config.http.token
    if token is None:
        raise ApiError(403, "changes through the API are disabled: no http.token is configured")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.reveal().encode()):
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
        return web.json_response({"error": error.message}, status=error.status, headers=error.headers)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        kept = {k: v for k, v in error.headers.items() if k == "Allow"}
        return web.json_response({"error": error.reason.lower()}, status=error.status, headers=kept)
    except Exception:  # a bug: logged with its traceback (redacted), never shown to the caller
        log.exception("%s %s failed", request.method, request.path)
        return web.json_response({"error": "internal error; see the daemon's log"}, status=500)


def _store_fault(daemon: Daemon) -> dict[str, Any] | None:
    """Why the state file is not taking the daemon's decisions, if it is not."""
    unwritten = daemon.unwritten
    if unwritten is None:
        return None
    return {"error": unwritten.error, "since": unwritten.since, "incidents": len(unwritten.incidents),
            "notices": len(unwritten.planned)}


async def health(request: web.Request) -> web.Response:
    """503 while the store refuses writes: polling goes on, but nothing decided is durable or sent."""
    fault = _store_fault(_daemon(request))
    if fault is not None:
        return web.json_response({"status": "failing", "store": fault}, status=503)
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    daemon = _daemon(request)
    is_ready = daemon.ready.is_set() and daemon.unwritten is None
    body: dict[str, Any] = {"ready": is_ready}
    if (fault := _store_fault(daemon)) is not None:
        body["store"] = fault
    return web.json_response(body, status=200 if is_ready else 503)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(_daemon(request).registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def incidents(request: web.Request) -> web.Response:
    d = _daemon(request)
    found = d.store.incidents(open_only=False) if _flag(request, "all") else d.open_incidents()
    return web.json_response([incident_json(i) for i in found])


async def incident(request: web.Request) -> web.Response:
    d = _daemon(request)
    tracking = request.match_info["tracking"]
    found = d.store.incident(tracking)
    if found is None:
        raise ApiError(404, f"no incident {tracking!r}")
    lines = d.config.topology.lines
    return web.json_response({**incident_json(found), "lines": [line_json(i, lines.get(i)) for i in sorted(found.affected)]})


async def subscriber(request: web.Request) -> web.Response:
    d = _daemon(request)
    line = _line(request)
    chain = d.config.topology.ancestors(NodeRef("line", line.id))
    open_for_line = [i for i in d.open_incidents() if line.id in i.affected]
    now = d.clock()
    windows = covering([w.window for w in d.store.maintenance()], line.id, chain, now)
    return web.json_response(
        {
            **line_json(line.id, line),
            "device": line.device,
            "chain": [str(node) for node in chain],
            "state": state_json(d.engine.line_state(line.id)),
            "device_state": state_json(d.engine.node_state(chain[0])),
            "tracking": open_for_line[0].tracking if open_for_line else None,
            "incidents": [incident_json(i) for i in open_for_line],
            "maintenance": [w.id for w in windows],
        }
    )


async def diagnose_subscriber(request: web.Request) -> web.Response:
    return web.json_response(diagnosis_json(await diagnose(_daemon(request), _line(request).id)))


async def maintenance_list(request: web.Request) -> web.Response:
    d = _daemon(request)
    now = d.clock()
    return web.json_response([window_json(w, d.config.timezone, now) for w in d.store.maintenance()])


async def maintenance_add(request: web.Request) -> web.Response:
    _authorize(request)
    d = _daemon(request)
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "body: not valid JSON") from None
    now = d.clock()
    window = parse_window(body, d.config.topology, d.config.timezone, d.rules.maintenance_grace, now)
    if any(w.window.id == window.id for w in d.store.maintenance()):
        raise ApiError(409, f"id: a maintenance window {window.id!r} already exists")
    d.add_maintenance(window)
    shown = window_json(StoredWindow(window, "api", False), d.config.timezone, now)
    return web.json_response(shown, status=201, headers={"Location": f"/api/maintenance/{window.id}"})


async def maintenance_cancel(request: web.Request) -> web.Response:
    _authorize(request)
    d = _daemon(request)
    window_id = request.match_info["id"]
    stored = next((w for w in d.store.maintenance() if w.window.id == window_id), None)
    if stored is None:
        raise ApiError(404, f"no maintenance window {window_id!r}")
    if stored.source == "config":
        raise ApiError(409, f"maintenance window {window_id!r} comes from the config file: remove it there and reload")
    d.cancel_maintenance(window_id)
    return web.json_response({"id": window_id, "cancelled": True})


def make_app(daemon: Daemon) -> web.Application:
    app = web.Application(middlewares=[_errors])
    app[DAEMON] = daemon
    get = app.router.add_get
    get("/health", health, allow_head=False)
    get("/ready", ready, allow_head=False)
    get("/metrics", metrics, allow_head=False)
    get("/api/incidents", incidents, allow_head=False)
    get("/api/incidents/{tracking}", incident, allow_head=False)
    get("/api/subscribers/{id}", subscriber, allow_head=False)
    get("/api/subscribers/{id}/diagnose", diagnose_subscriber, allow_head=False)
    get("/api/maintenance", maintenance_list, allow_head=False)
    app.router.add_post("/api/maintenance", maintenance_add)
    app.router.add_delete("/api/maintenance/{id}", maintenance_cancel)
    return app
