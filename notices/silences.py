"""Silences: the NOC mutes its own notifications about a scope for a time; pure, like notices/plan.py.

A silence matches an incident when the incident's root is one of its `nodes` or below one (a
region, exchange, cabinet, device or a single line; none given: any root) and every matcher
holds: `region`, `exchange` and `device` against the ids of the root's place, `kind` against the
incident's kind. While it is active (start <= now < end), the NOC-side items of the incidents it
matches are held: tickets, NOC e-mail (`noc-*`) and Alertmanager pushes. Customer SMS and e-mail
are never touched: a silence is the NOC's, and customers hear of planned work through
maintenance windows (which also hide the alerts), of faults as usual.

Held, not dropped: each item is queued with `not_before = SILENCED` and the store keeps it apart
(`silenced_items`), in order. When no silence matches its incident any more (the last one expired
or was ended early), `release` decides at once:
- the incident is still open: everything held goes out, in order (the ticket is opened, the NOC
  e-mail sent, the alert pushed), so an expired silence over a still-failing target lets its
  incident through at once;
- it was resolved meanwhile: what the NOC had heard of on that channel before the silence
  (the opening item was queued) gets the rest, so a ticket opened before it is also closed;
  what it never heard of is dropped: there is nothing to close.

Alertmanager: a silenced incident is not pushed (its pushes are held with the ticket), rather
than pushed with a `silenced` label. Labels are an alert's identity in Alertmanager, so a label
added for the silence and removed after it would make two alerts of one incident; and pushing
it would page the on-call rota that the silence is meant to spare. The periodic re-pushes of an
alert (`/alert/refresh/`) are dropped, not held: the next one after the silence renews it. A NOC
that silences in Alertmanager itself can go on doing so: that mutes only what Alertmanager sends.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from monitord.model import SILENCED, Incident, Notification, Phase, Silence, Topology
from notices.plan import Planned

MATCHER_LABELS = ("region", "exchange", "device", "kind")


def incident_labels(incident: Incident, topology: Topology) -> dict[str, str]:
    """What matchers see of an incident: its kind, and the ids of its root's region, exchange and device."""
    found = {"kind": incident.kind.value}
    try:
        chain = (incident.root, *topology.ancestors(incident.root))
    except KeyError:  # a root gone from the inventory: only its kind is known
        return found
    for node in chain:
        if node.level in ("region", "exchange", "device"):
            found.setdefault(node.level, node.id)
    return found


def covers(silence: Silence, incident: Incident, topology: Topology) -> bool:
    """Whether `silence` matches `incident`, whatever the time."""
    labels = incident_labels(incident, topology)
    if any(labels.get(label) != value for label, value in silence.matchers):
        return False
    if not silence.nodes:
        return True
    try:
        chain = {incident.root, *topology.ancestors(incident.root)}
    except KeyError:
        chain = {incident.root}
    return not chain.isdisjoint(silence.nodes)


def active(silences: Iterable[Silence], now: float) -> list[Silence]:
    return [s for s in silences if s.start <= now < s.end]


def silence_of(incident: Incident, live: Iterable[Silence], topology: Topology) -> Silence | None:
    """The first of the active silences `live` that matches `incident`, if any."""
    return next((s for s in live if covers(s, incident, topology)), None)


def noc_side(item: Notification) -> bool:
    """Staff's items, which a silence holds; customers' SMS and e-mail are never held."""
    return item.channel in ("ticket", "alert") or (item.channel == "email" and item.action.startswith("noc-"))


def hold_silenced(
    planned: Iterable[Planned],
    silences: Sequence[Silence],
    topology: Topology,
    now: float,
    incident_of: Callable[[str], Incident | None],
) -> tuple[list[Planned], Counter[str]]:
    """`planned` with the NOC-side items of silenced incidents held (`not_before = SILENCED`) and
    their alert re-pushes dropped; and how many items were suppressed, per channel."""
    live = active(silences, now)
    if not live:
        return list(planned), Counter()
    out: list[Planned] = []
    suppressed: Counter[str] = Counter()
    muted: dict[str, bool] = {}
    for item, not_before in planned:
        tracking = item.incident
        if tracking is None or item.error is not None or not noc_side(item):
            out.append((item, not_before))
            continue
        if tracking not in muted:
            incident = incident_of(tracking)
            muted[tracking] = incident is not None and silence_of(incident, live, topology) is not None
        if not muted[tracking]:
            out.append((item, not_before))
            continue
        suppressed[item.channel] += 1
        if "/alert/refresh/" not in item.key:
            out.append((item, SILENCED))
    return out, suppressed


def opening_key(item: Notification) -> str:
    """The key of the item that first told the NOC of `item`'s incident on its channel."""
    if item.channel == "ticket":
        return f"{item.incident}/ticket/create"
    if item.channel == "alert":
        return f"{item.incident}/alert/opened"
    return f"{item.incident}/email/{item.recipient}/noc-opened"


@dataclass(frozen=True, slots=True)
class Release:
    send: list[Notification]  # queued now, in the order they were held
    drop: list[Notification]  # forgotten: their incident ended unheard of


def release(
    held: Sequence[Notification],
    silences: Sequence[Silence],
    topology: Topology,
    now: float,
    incident_of: Callable[[str], Incident | None],
    told: Callable[[str], bool],
) -> Release:
    """What to do with the held items (oldest first) whose incidents no active silence matches
    any more (see the module docstring); the others stay held. `told(key)`: whether an item with
    that key was queued (and not dropped)."""
    live = active(silences, now)
    send: list[Notification] = []
    drop: list[Notification] = []
    for item in held:
        incident = incident_of(item.incident or "")
        if incident is None:
            drop.append(item)  # pruned from the store: nothing left to tell about
        elif silence_of(incident, live, topology) is not None:
            continue
        elif incident.phase is not Phase.RESOLVED or told(opening_key(item)):
            send.append(item)
        else:
            drop.append(item)
    return Release(send, drop)
