"""Incidents as Prometheus Alertmanager alerts: a pure function from incident changes to outbox items.

Every incident is one alert, identified (as Alertmanager identifies alerts) by its labels:
`alertname`, `tracking`, `kind`, `severity`, `region`, `exchange`, `device` (empty ones left
out). The NOC's Alertmanager then routes, groups, inhibits and silences them like its other
alerts. Annotations carry what changes while the alert fires: `summary`, `affected` (the
subscriber lines) and `ticket` (a link, when `ticket_link` is configured).

Items go through the outbox on channel "alert", one incident's in the order they were queued
(monitord/outbox.py ORDERED_CHANNELS), so a late re-push never overtakes the resolve. The item's
body is the alert as JSON without `endsAt` while it fires: the notifier sets
`endsAt = push time + 4 x resend` when it sends it (Prometheus' own rule), so a push delayed by
an outage is not stale on arrival. A resolved alert carries `endsAt` = the resolve time.

Keys make pushes idempotent like every other notice: one per change (with the change's instant),
one per `resend` period while the incident is open (`due_refreshes`, called every tick; the
period's number is in the key, so calling again queues nothing new), one for the resolution.
A change of kind (outage <-> degradation) changes the labels, so it is a new alert: the old one
is resolved in the same step.

A monitord silence (notices/silences.py) holds an incident's pushes like its ticket, and skips
its re-pushes, rather than pushing it with a `silenced` label: that module says why.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from monitord.model import Incident, IncidentKind, NodeRef, Notification, Phase, Topology
from notices.plan import Planned, key_millis, place
from rules.engine import IncidentChange

ALERTNAME = "NetworkIncident"
SEVERITY = {
    IncidentKind.OUTAGE: "critical",
    IncidentKind.OVERRUN: "critical",
    IncidentKind.DEGRADATION: "warning",
    IncidentKind.CPE: "info",
}
LEASES = 4  # endsAt is this many resend periods after a push (Prometheus: 4 x resend delay)
_FIRING_CHANGES = ("grew", "shrank", "promoted", "recovering", "reopened")
_ENDING_CHANGES = ("resolved", "merged", "closed_removed", "closed")
_OPEN = (Phase.OPEN, Phase.UPDATED, Phase.RECOVERING)


@dataclass(frozen=True, slots=True)
class AlertSettings:
    resend: float = 60.0  # seconds between pushes of an open incident's alert
    ticket_link: str | None = None  # e.g. "https://rt.example.net/Search/Simple.html?q={tracking}"


def iso(at: float) -> str:
    """An instant as Alertmanager reads it (RFC 3339, UTC)."""
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat()


def _ancestors(topology: Topology, node: NodeRef) -> tuple[NodeRef, ...]:
    try:
        return topology.ancestors(node)
    except (KeyError, StopIteration):  # gone from the inventory
        return ()


def labels(incident: Incident, topology: Topology, kind: IncidentKind | None = None) -> dict[str, str]:
    """The alert's identity: the same for one incident of one kind, whatever else changes."""
    where = place(topology, incident.root)
    root = incident.root
    device = root.id if root.level == "device" else ""
    if root.level == "line" and root.id in topology.lines:
        device = topology.lines[root.id].device
    elif root.level == "segment":  # a cable upstream: the CMTS it hangs off
        device = next((n.id for n in _ancestors(topology, root) if n.level == "device"), "")
    kind = kind or incident.kind
    found = {
        "alertname": ALERTNAME,
        "tracking": incident.tracking,
        "kind": kind.value,
        "severity": SEVERITY[kind],
        "region": where.region,
        "exchange": where.exchange,
        "device": device,
    }
    return {k: v for k, v in found.items() if v and v != "-"}


def alert(
    incident: Incident, topology: Topology, settings: AlertSettings, *, ends: float | None, kind: IncidentKind | None = None
) -> dict[str, object]:
    """The alert as Alertmanager's API v2 takes it; `endsAt` only when it ends (`ends`)."""
    where = place(topology, incident.root)
    kind = kind or incident.kind
    count = len(incident.affected)
    annotations = {
        "summary": f"{kind.value} at {where.label}: {count} subscriber line{'' if count == 1 else 's'} ({incident.tracking})",
        "affected": str(count),
        "root": str(incident.root),
    }
    if settings.ticket_link:
        annotations["ticket"] = settings.ticket_link.replace("{tracking}", incident.tracking)
    body: dict[str, object] = {
        "labels": labels(incident, topology, kind),
        "annotations": annotations,
        "startsAt": iso(incident.opened_at),
    }
    if ends is not None:
        body["endsAt"] = iso(ends)
    return body


def _item(key: str, incident: Incident, topology: Topology, settings: AlertSettings, **how: object) -> Planned:
    body = alert(incident, topology, settings, **how)  # type: ignore[arg-type]
    action = "resolved" if "endsAt" in body else "firing"
    summary = str(body["annotations"]["summary"])  # type: ignore[index]
    return Notification(key, "alert", incident.tracking, action, summary, json.dumps(body), incident.tracking), None


def plan_alerts(changes: Sequence[IncidentChange], topology: Topology, settings: AlertSettings) -> list[Planned]:
    """The pushes one engine step causes: firing on every change of an open incident, resolved when it ends."""
    out: list[Planned] = []
    for change in changes:
        incident, what = change.incident, change.change
        t, stamp = incident.tracking, key_millis(incident.updated_at)
        if what == "opened":
            out.append(_item(f"{t}/alert/opened", incident, topology, settings, ends=None))
        elif what in _FIRING_CHANGES:
            out.append(_item(f"{t}/alert/{what}/{stamp}", incident, topology, settings, ends=None))
        elif what == "severity":
            if change.was is not None and change.was is not incident.kind:
                end = f"{t}/alert/severity-end/{stamp}"
                out.append(_item(end, incident, topology, settings, ends=incident.updated_at, kind=change.was))
            out.append(_item(f"{t}/alert/severity/{stamp}", incident, topology, settings, ends=None))
        elif what in _ENDING_CHANGES:
            at = incident.resolved_at or incident.updated_at
            out.append(_item(f"{t}/alert/{what}/{key_millis(at)}", incident, topology, settings, ends=at))
    return out


def refresh_period(incident: Incident, settings: AlertSettings, now: float) -> int:
    """How many `resend` periods the incident has been open: its refresh push's number."""
    return int(max(0.0, now - incident.opened_at) // settings.resend)


def due_refreshes(
    incidents: Iterable[Incident], topology: Topology, settings: AlertSettings, now: float, pushed: dict[str, int]
) -> list[Planned]:
    """A push of each open incident's alert once per `resend` period, before its endsAt lapses.

    `pushed` (tracking -> period last queued) spares the store the same keys every tick; it is
    only a cache, the keys make the items idempotent. It is updated in place.
    """
    out: list[Planned] = []
    for incident in incidents:
        if incident.phase not in _OPEN:
            continue
        n = refresh_period(incident, settings, now)
        if n >= 1 and pushed.get(incident.tracking) != n:
            pushed[incident.tracking] = n
            out.append(_item(f"{incident.tracking}/alert/refresh/{n}", incident, topology, settings, ends=None))
    return out
