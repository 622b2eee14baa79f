"""The HTTP API on the daemon's loop: health, incidents, subscriber status and /metrics (read-only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitord.model import Incident, LineState, NodeRef

if TYPE_CHECKING:
    from monitord.daemon import Daemon

DAEMON = web.AppKey("daemon", object)


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


def _daemon(request: web.Request) -> Daemon:
    return request.app[DAEMON]  # type: ignore[return-value]


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    is_ready = _daemon(request).ready.is_set()
    return web.json_response({"ready": is_ready}, status=200 if is_ready else 503)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(_daemon(request).registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def incidents(request: web.Request) -> web.Response:
    return web.json_response([incident_json(i) for i in _daemon(request).open_incidents()])


async def incident(request: web.Request) -> web.Response:
    tracking = request.match_info["tracking"]
    found = _daemon(request).store.incident(tracking)
    if found is None:
        raise web.HTTPNotFound(text=f"no incident {tracking}")
    return web.json_response(incident_json(found))


async def subscriber(request: web.Request) -> web.Response:
    d = _daemon(request)
    line = d.config.topology.lines.get(request.match_info["id"])
    if line is None:
        raise web.HTTPNotFound(text="no such subscriber")
    open_for_line = [incident_json(i) for i in d.open_incidents() if line.id in i.affected]
    chain = d.config.topology.ancestors(NodeRef("line", line.id))
    return web.json_response(
        {
            "id": line.id,
            "device": line.device,
            "state": state_json(d.engine.line_state(line.id)),
            "device_state": state_json(d.engine.node_state(chain[0])),
            "incidents": open_for_line,
        }
    )


def make_app(daemon: Daemon) -> web.Application:
    app = web.Application()
    app[DAEMON] = daemon
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/incidents", incidents)
    app.router.add_get("/api/incidents/{tracking}", incident)
    app.router.add_get("/api/subscribers/{id}", subscriber)
    return app
