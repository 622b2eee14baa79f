"""Field dispatch: which incidents need a truck, and the ticket that sends it. Pure.

A fault monitord can see but nobody can fix from the NOC gets, besides its incident's ticket, a
dispatch ticket of its own (in RT, the field team's queue). Which faults those are is read from
what the probes say, by three signatures (docs/decisions.md, "Field dispatch"):

cable: an outage rooted at a cabinet, a head-end device or a cable upstream segment whose
       head-ends all answer (ICMP and SNMP up, `Status.OK` or `DEGRADED`): the lines are down
       but the equipment that feeds them is alive, so the copper, coax or fibre between them is cut.
drop:  one line's own outage (root `line`, status DOWN, not CPE) whose port says so on a head-end
       that answers (a `down` rule of its profile: not in sync, cable modem not registered) and,
       when the line has a modem address, whose modem is silent too: the drop wire or the
       socket at the subscriber's, not the network and not a modem switched off (that is CPE).
site:  an outage rooted at a device or a cabinet whose head-ends are all silent (every probe
       down) while another device of the same exchange answers: the way to the exchange works,
       so the site has no power or its equipment failed. Without another device answering, the
       transport to the exchange is as likely: that is the NOC's, not a truck's.

Outages rooted at an exchange or a region, degradations, silent modems (CPE) and maintenance
overruns are never dispatched: they are the NOC's or the customer's, or already planned work.

Only an incident open (not recovering) for `delay` is dispatched (`due_dispatches`, called on
every notice tick): a DSLAM that reboots, a line that retrains or a power cut the UPS rides out
clears in minutes, and a truck sent for it is an hour of a team's time for nothing. The ticket
is keyed `<tracking>/dispatch/create` (one per incident, across restarts and reopenings) and
tagged with its own tracking value, `<tracking>/saha` (DISPATCH_SUFFIX), so the incident's ticket
and the dispatch ticket are never taken for each other. It is resolved, with a comment, when the
incident is (`dispatch_closures`).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from monitord.model import Incident, IncidentKind, Language, Line, LineState, NodeRef, Notification, Phase, Status, Topology
from notices.plan import Planned, PlanSettings, _Planner, key_millis, notification
from notices.templates import Rendered, mask_phone
from rules.engine import IncidentChange

DISPATCH_SUFFIX = "/saha"
"""A dispatch ticket's tracking value is its incident's number with this suffix."""
DISPATCH_LIST_MAX = 50  # subscribers listed with their addresses in one dispatch ticket; the rest are counted
NO_ROW = "no row on the device"  # a port without a row is a provisioning question, not a cable

Signature = Literal["cable", "drop", "site"]
StateOf = Callable[[NodeRef], LineState]  # the engine's `node_state`

SIGNATURE_NAMES: Mapping[Language, Mapping[Signature, str]] = {
    "tr": {
        "cable": "Kablo arızası (kabin/santral ile abone arası)",
        "drop": "Abone hattı arızası (dış hat ya da bina içi kablo)",
        "site": "Sahada enerji ya da donanım arızası",
    },
    "en": {
        "cable": "Cable fault (between cabinet or exchange and subscribers)",
        "drop": "Subscriber line fault (drop wire or in-house cabling)",
        "site": "Power or hardware failure at the site",
    },
}
_ANSWERS = (Status.OK, Status.DEGRADED)


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    queue: str | None = None  # the RT queue of the field team; None: the notifier's (a webhook)
    delay: float = 600.0


@dataclass(frozen=True, slots=True)
class Finding:
    """Why an incident needs the field: its signature and the probe data it rests on."""

    signature: Signature
    facts: tuple[str, ...]


def dispatch_tracking(tracking: str) -> str:
    return tracking + DISPATCH_SUFFIX


def dispatched_incident(tracking: str) -> str | None:
    """The incident a dispatch ticket's tracking value belongs to; None for any other value."""
    base = tracking.removesuffix(DISPATCH_SUFFIX)
    return base if base != tracking and base else None


def dispatch_key(tracking: str) -> str:
    return f"{tracking}/dispatch/create"


def head_ends(root: NodeRef, topology: Topology) -> tuple[str, ...]:
    """The devices an outage rooted at a device, a cabinet or a cable segment is about."""
    if root.level == "device":
        return (root.id,) if root.id in topology.devices else ()
    if root.level == "segment":
        return tuple(sorted({line.device for line in topology.lines.values() if line.segment == root.id}))
    if root.level == "cabinet":
        return tuple(sorted(d.id for d in topology.devices.values() if d.cabinet == root.id))
    return ()


def field_signature(
    incident: Incident, topology: Topology, state: StateOf, crowded: Collection[str] = frozenset()
) -> Finding | None:
    """The signature `incident` shows now (module docstring), or None: not the field's.
    `crowded`: devices with more than one line in an outage of its own (`crowded_devices`)."""
    if incident.kind is not IncidentKind.OUTAGE or incident.phase not in (Phase.OPEN, Phase.UPDATED):
        return None
    root = incident.root
    if root.level == "line":
        line = topology.lines.get(root.id)
        return None if line is None or line.device in crowded else _drop(line, state)
    devices = head_ends(root, topology)
    if not devices:
        return None
    states = [state(NodeRef("device", d)) for d in devices]
    if all(s.status in _ANSWERS for s in states):
        return Finding("cable", (*(_said(s) for s in states), f"{len(incident.affected)} lines down behind {root}"))
    if all(s.status is Status.DOWN for s in states):
        return _site(devices, states, topology, state)
    return None


def crowded_devices(incidents: Iterable[Incident], topology: Topology) -> frozenset[str]:
    """Devices with two or more lines down each in an outage of its own: too few for the engine to
    root them higher (`rules.correlation`), too many to be drop wires by chance; more likely one
    cable. Not dispatched as drops: one truck per line would be sent to the same cut."""
    seen: set[str] = set()
    crowded: set[str] = set()
    for incident in incidents:
        line = topology.lines.get(incident.root.id) if incident.root.level == "line" else None
        if line is not None and incident.kind is IncidentKind.OUTAGE and incident.phase is not Phase.RESOLVED:
            (crowded if line.device in seen else seen).add(line.device)
    return frozenset(crowded)


def _drop(line: Line, state: StateOf) -> Finding | None:
    line_state = state(NodeRef("line", line.id))
    if line_state.status is not Status.DOWN:
        return None
    port = [r for r in line_state.reasons if r.startswith("snmp:") and not r.endswith(NO_ROW)]
    modem_silent = any(r.startswith("icmp:") for r in line_state.reasons)
    device = state(NodeRef("device", line.device))
    if not port or (line.modem is not None and not modem_silent) or device.status not in _ANSWERS:
        return None
    modem = [f"modem {line.modem} silent"] if line.modem is not None else []
    return Finding("drop", (_said(device), *(f"port: {r}" for r in port), *modem))


def _site(devices: Sequence[str], states: Sequence[LineState], topology: Topology, state: StateOf) -> Finding | None:
    exchange = topology.devices[devices[0]].exchange
    others = sorted(d.id for d in topology.devices.values() if d.exchange == exchange and d.id not in devices)
    answering = next((d for d in others if state(NodeRef("device", d)).status in _ANSWERS), None)
    if answering is None:
        return None
    return Finding("site", (*(_said(s) for s in states), f"device:{answering} of the same exchange answers"))


def _said(device: LineState) -> str:
    reasons = f" ({'; '.join(device.reasons)})" if device.reasons else ""
    return f"{device.node}: {device.status.value}{reasons}"


class Dispatcher:
    """The dispatch tickets of one daemon. It remembers the incidents whose ticket it planned
    (`planned`, pruned to the open ones), so that a ticket is not rendered again every tick;
    `queued` (the store) knows those planned before a restart: their keys are never queued twice."""

    def __init__(self, settings: DispatchSettings, queued: Callable[[str], bool]) -> None:
        self.settings, self.queued = settings, queued
        self.planned: set[str] = set()

    def due(
        self, incidents: Sequence[Incident], topology: Topology, settings: PlanSettings, now: float, state: StateOf
    ) -> list[Planned]:
        self.planned &= {i.tracking for i in incidents}
        due = due_dispatches(incidents, topology, settings, self.settings, now, state, self.planned)
        self.planned.update(item.incident for item, _ in due if item.incident)
        return due

    def closures(
        self, changes: Sequence[IncidentChange], topology: Topology, settings: PlanSettings, now: float
    ) -> list[Planned]:
        return dispatch_closures(changes, topology, settings, self.settings, now, self._had)

    def _had(self, tracking: str) -> bool:
        return tracking in self.planned or self.queued(dispatch_key(tracking))


def due_dispatches(
    incidents: Iterable[Incident],
    topology: Topology,
    settings: PlanSettings,
    dispatch: DispatchSettings,
    now: float,
    state: StateOf,
    planned: Collection[str] = frozenset(),
) -> list[Planned]:
    """Dispatch tickets for the open `incidents` (all of them: a drop is judged against its
    neighbours) open at least `dispatch.delay` that show a signature, but those in `planned`;
    call it every notice tick (the key has no time in it: one ticket per incident)."""
    incidents = list(incidents)
    crowded = crowded_devices(incidents, topology)
    out: list[Planned] = []
    for incident in incidents:
        if now - incident.opened_at < dispatch.delay or incident.tracking in planned:
            continue
        found = field_signature(incident, topology, state, crowded)
        if found is not None:
            out.append(_create(incident, found, topology, settings, dispatch, now))
    return out


def dispatch_closures(
    changes: Sequence[IncidentChange],
    topology: Topology,
    settings: PlanSettings,
    dispatch: DispatchSettings,
    now: float,
    dispatched: Callable[[str], bool],
) -> list[Planned]:
    """The dispatch ticket of an incident that ends (resolved, merged into a wider one, or its
    lines gone from the inventory) is resolved with a comment; `dispatched`: whether an incident
    had one (the store: its create was queued)."""
    ended = ("resolved", "merged", "closed_removed")
    return [
        _closure(c, topology, settings, dispatch, now) for c in changes if c.change in ended and dispatched(c.incident.tracking)
    ]


def _closure(
    change: IncidentChange, topology: Topology, settings: PlanSettings, dispatch: DispatchSettings, now: float
) -> Planned:
    incident = change.incident
    p = _Planner(incident, topology, settings, now)
    if change.change == "merged":
        template, extra = "dispatch.merged", {"into": change.merged_into or "-"}
    else:
        template, extra = "dispatch.resolved", {}
    values = {**p.values, **extra, "subscribers": "-"}
    item = notification(
        f"{incident.tracking}/dispatch/resolve/{key_millis(incident.resolved_at or incident.updated_at)}",
        "ticket",
        dispatch_tracking(incident.tracking),
        "resolve",
        incident.tracking,
        lambda: p.render(template, values),
    )
    return _routed(item, dispatch), None


def _create(
    incident: Incident, found: Finding, topology: Topology, settings: PlanSettings, dispatch: DispatchSettings, now: float
) -> Planned:
    p = _Planner(incident, topology, settings, now)

    def text() -> Rendered:
        values = {
            **p.values,
            **location(incident, topology),
            "signature": SIGNATURE_NAMES[settings.language][found.signature],
            "facts": "\n".join(f"- {f}" for f in found.facts),
            "subscribers": field_list(incident.affected, topology, settings.language),
        }
        return p.render("dispatch.create", values)

    item = notification(
        dispatch_key(incident.tracking), "ticket", dispatch_tracking(incident.tracking), "create", incident.tracking, text
    )
    return _routed(item, dispatch), None


def _routed(item: Notification, dispatch: DispatchSettings) -> Notification:
    return item if dispatch.queue is None else replace(item, route=dispatch.queue)


def location(incident: Incident, topology: Topology) -> dict[str, str]:
    """Where the team goes: the cabinet, the site's address and coordinates (the head-end's,
    else the subscriber's for one line's fault), "-" where the inventory does not say."""
    root = incident.root
    line = topology.lines.get(root.id) if root.level == "line" else None
    devices = (line.device,) if line is not None else head_ends(root, topology)
    sites = [topology.devices[d] for d in devices if d in topology.devices]
    cabinet = root.id if root.level == "cabinet" else next((s.cabinet for s in sites if s.cabinet), None)
    site = next((s for s in sites if s.location or s.lat is not None), None)
    return {
        "cabinet": cabinet or "-",
        "site": site.location or "-" if site else "-",
        "site_coordinates": _coordinates(site.lat, site.lon) if site else "-",
        "address": line.address or "-" if line is not None else "-",
        "coordinates": _coordinates(line.lat, line.lon) if line is not None else "-",
    }


def _coordinates(lat: float | None, lon: float | None) -> str:
    """Decimal degrees and a map link a field team opens on a phone."""
    if lat is None or lon is None:
        return "-"
    return f"{lat:.6f}, {lon:.6f} (https://www.openstreetmap.org/?mlat={lat:.6f}&mlon={lon:.6f}#map=18/{lat:.6f}/{lon:.6f})"


def field_list(ids: Iterable[str], topology: Topology, language: Language) -> str:
    """The first DISPATCH_LIST_MAX subscribers by id with name, address and masked phone; the rest counted."""
    ids = list(ids)
    first = heapq.nsmallest(DISPATCH_LIST_MAX, ids)
    rows = [_field_row(i, topology.lines.get(i)) for i in first]
    if len(ids) > DISPATCH_LIST_MAX:
        more = len(ids) - DISPATCH_LIST_MAX
        rows.append(f"... ve {more} abone daha" if language == "tr" else f"... and {more} more")
    return "\n".join(rows) or "-"


def _field_row(line_id: str, line: Line | None) -> str:
    if line is None:
        return f"- {line_id} ?"
    return f"- {line_id} {line.name}, {line.address or '-'} ({mask_phone(line.phone)})"
