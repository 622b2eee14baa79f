"""Where a settled fault goes: which incident, when, and which incidents merge.

Customer premises
    A line whose modem is silent while its head-end, answering, shows its row in sync is CPE
    (rules/verdict.py). Its fault waits `cpe_hold` (not `settle`) and then opens a `cpe`
    incident at the line, never above it. A silent modem still counts as an outage at every
    node above it, so many silent modems behind one device or cabinet are that node's outage
    after `settle`; and a cpe member fails for the outage incident it is in: a line's own
    outage stays open until the modem answers; a wider one keeps it while its node qualifies,
    then the line moves to a `cpe` incident of its own at once (docs/decisions.md).

Confirming a device outage
    A device's outage is *confirmed* when all its probes say down and one of them has said so
    twice since the device last answered anything: it then settles at once, and so do the lines
    it made unreachable. A settled fault that would open an incident, or move to a new wider
    one, still waits while a device of its exchange, suspected (a probe says down) or asked for
    a recheck less than `gather` ago, has not settled or answered: those rechecks answer within
    a few seconds, and the incident then opens with the whole outage instead of growing after
    its ticket (a device confirmed before its siblings' first answers came back would otherwise
    open alone, and be merged into its exchange's incident moments later). A fault moving down
    to a narrower root never waits: its wider root no longer qualifies for it (or holds nothing
    more), and kept open meanwhile, an exchange incident would claim the whole exchange on the
    evidence of one device. When an incident opens, every fault of its exchange that is ready
    is placed with it in the same step.

Closed by hand
    The NOC may close an incident whose members still fail (`Book.close`): those members are
    muted until they recover once: placed nowhere, and counted for no wider fault (a dark DSLAM
    the NOC closed does not make one more failing line of its exchange an exchange outage). A
    fault after that opens a new incident.

Promotion
    One incident per (kind, root): lines behind a regional fault attach to it, and when a parent
    starts to qualify its children's incidents are merged into one at the parent ("promoted",
    `replaces` lists the merged numbers; rules/lifecycle.py).
"""

from __future__ import annotations

from monitord.model import Status
from rules.correlate import KINDS, qualifies
from rules.judge import CPE, DEGRADATION, OUTAGE, Fault, Target, fails
from rules.lifecycle import SEVERITIES, Event, Group, Records, severity
from rules.nodes import DEVICE, LINE, SEGMENT, NodeKey, device_of
from rules.state import State


def correlate(s: State, now: float, reassess: set[Target], changed: dict[Fault, set[NodeKey]], records: Records) -> set[Target]:
    """Requalify the nodes whose inputs changed and move settled faults to their roots, until
    nothing flips any more. Returns the targets that moved."""
    moved: set[Target] = set()
    if s.book.muted:
        for target in s.book.unmute(reassess):
            s.dirty.add(target.key)
            s.counts.recount(target, changed)  # it counts again (the faults it had within the window)
    while reassess or any(changed.values()):
        for kind, nodes in s.counts.requalify(changed, lambda node, kind: node_qualifies(s, node, kind)).items():
            devices = {d for node in nodes for d in s.inventory.devices_under.get(node, ())}
            behind = s.counts.behind(kind, devices)
            behind.update(t for t in map(s.targets.get, devices) if t is not None)
            reassess.update(t for t in behind if fails(t.fault, kind))
        groups: dict[Group, list[Target]] = {}
        roots: dict[Group, NodeKey | None] = {}
        near: dict[NodeKey, float | None] = {}
        for target in reassess:
            group = _root(s, target, now, roots, near)
            if group is None:
                continue
            if group[0] is DEGRADATION:
                group = severity(target, group)
            root = group[1]
            current = s.book.incidents[target.incident] if target.incident else None
            own = current is not None and current.root == root == target.key and root.level is LINE
            if current is not None and own and current.kind in SEVERITIES:
                continue  # its own incident: `Book.follow` keeps the severity
            if current is None or (current.kind, current.root) != group:
                groups.setdefault(group, []).append(target)
        changed, merged = _move(s, groups, now, records)
        moved.update(t for targets in groups.values() for t in targets)
        moved |= merged
        reassess = {s.targets[r] for _, r in groups if r.level is DEVICE and r in s.targets} - moved
        for kind, root in groups:
            tracking = s.book.open.get((kind, root))
            if tracking is not None and tracking in records and records[tracking].before is None:
                reassess |= _ready_around(s, kind, root, tracking)
    return moved


def recount(s: State, muted: set[NodeKey]) -> dict[Fault, set[NodeKey]]:
    """Targets just muted (`Book.close`) stop counting; returns the nodes whose counts moved,
    to qualify again. Their rows change: they say they are muted."""
    changed: dict[Fault, set[NodeKey]] = {kind: set() for kind in KINDS}
    for key in muted:
        s.counts.recount(s.targets[key], changed)
    s.dirty |= muted
    return changed


def settles_at(s: State, target: Target) -> float:
    """When a fault may join an incident: after `settle`, or once a recheck confirmed the
    outage of its device (the target itself, or the device that made a line unreachable)."""
    at = target.fault_since + s.rules.settle
    if target.fault is not OUTAGE:
        return at
    is_device = target.key.level is DEVICE
    device = target if is_device else s.targets.get(device_of(target.chain))
    if device is not None and device.confirmed is not None and (is_device or target.base is Status.UNREACHABLE):
        return min(at, max(device.confirmed, target.fault_since))
    return at


def node_qualifies(s: State, node: NodeKey, kind: Fault) -> bool:
    if kind is CPE:
        return False  # many silent modems are an outage, never a wider "cpe"
    if node.level is DEVICE:
        device = s.targets.get(node)
        if device is not None and device.fault is kind and node not in s.book.muted:
            return True
    if node.level is SEGMENT:  # its upstream channel's own fault is the segment's
        for channel in s.inventory.channels.get(node, ()):
            target = s.targets.get(channel)
            if target is not None and target.fault is kind and channel not in s.book.muted:
                return True
    total = s.inventory.total.get(node, 0)
    return qualifies(s.counts.count(kind, node), total, (kind, node) in s.book.open, s.rules.correlation)


def _root(
    s: State, target: Target, now: float, roots: dict[Group, NodeKey | None], near: dict[NodeKey, float | None]
) -> Group | None:
    """The (kind, root) a settled fault belongs to: the regional root of its device
    (`Counts.regional`), or else the target itself. Only a new fault waits for `settle` (or its
    confirmation): a member failing again, or a device whose own node already roots an
    incident of its kind, is placed at once. A fault that would open a new incident (or move
    to a new one not below its own) waits while a device of its exchange was just suspected
    (`_suspects_near`); one narrowing to a root below its incident's moves at once. A line
    walks the same nodes as the other lines of its holder (its device, or its segment), so
    `roots` keeps each (kind, holder) walk for the round, and `near` each device's suspects. A silent modem (`cpe`) joins an outage above it
    while that qualifies and stays in its own line's incident; else it becomes a `cpe`
    incident of its own after `cpe_hold`, or at once when it leaves an outage above it (the
    area is back, this modem is not: it may need switching off and on)."""
    kind = target.fault
    key, book = target.key, s.book
    if kind is None or key in book.muted:  # muted: its incident was closed by hand while it failed
        return None
    current = book.incidents[target.incident] if target.incident else None
    placed = (kind, key) in book.open or (current is not None and fails(kind, current.kind))
    if not placed and now < settles_at(s, target):
        return None
    holder = key if key.level is DEVICE else target.chain[-1]  # its device, or its segment
    device = key if key.level is DEVICE else device_of(target.chain)
    walk = (OUTAGE if kind is CPE else kind, holder)
    if walk in roots:
        regional = roots[walk]
    else:
        regional = roots[walk] = s.counts.regional(walk[0], (*s.inventory.chain[holder], holder))
    group: Group
    if kind is not CPE:
        group = (kind, regional or target.key)
    elif regional is not None:
        group = (OUTAGE, regional)
    elif current is not None and current.root == target.key and fails(kind, current.kind):
        return current.kind, current.root
    elif (current is not None and current.kind is OUTAGE) or now - target.fault_since >= s.rules.cpe_hold:
        group = (CPE, target.key)
    else:
        return None
    root = group[1]
    narrowing = current is not None and current.root in s.inventory.chain.get(root, ())
    moving = not placed or (current is not None and current.root != root and group not in book.open and not narrowing)
    if not moving:
        return group
    if device not in near:
        near[device] = _suspects_near(s, device, now)
    until = near[device]
    if until is None:
        return group
    s.timers.wake(target.key, until)
    return None


def _suspects_near(s: State, device: NodeKey, now: float) -> float | None:
    """Until when a new incident here waits: while another device of this one's exchange,
    suspected less than `gather` ago, is not yet settled (its recheck is about to answer), or
    has not answered the recheck it was asked for less than `gather` ago."""
    until = None
    for key in s.inventory.devices_under[s.inventory.area(device)]:
        other = s.targets.get(key)
        if key == device or other is None or other.incident is not None:
            continue
        if other.suspected is not None:
            ends = other.suspected + s.rules.gather
            if other.fault is not None:
                ends = min(ends, settles_at(s, other))
        elif key in s.asked:
            ends = s.asked[key] + s.rules.gather
        else:
            continue
        if now < ends:
            until = ends if until is None else max(until, ends)
    return until


def _ready_around(s: State, kind: Fault, root: NodeKey, tracking: str) -> set[Target]:
    """The faults of this kind in the root's exchange not in its incident: a new incident takes
    those that are ready in the same step, so its first notice counts them."""
    devices = s.inventory.devices_under.get(s.inventory.area(root), ())
    found = s.counts.behind(kind, devices)
    found.update(t for t in map(s.targets.get, devices) if t is not None)
    return {t for t in found if t.fault is kind and t.incident != tracking}


def _move(
    s: State, groups: dict[Group, list[Target]], now: float, records: Records
) -> tuple[dict[Fault, set[NodeKey]], set[Target]]:
    """Put each group into its incident (found, reopened or new), then merge the incidents
    whose faults all went to one incident at or above their root ("promoted")."""
    book = s.book
    requalify: dict[Fault, set[NodeKey]] = {kind: set() for kind in KINDS}
    merged: set[Target] = set()
    sources: dict[str, set[str]] = {}
    for group in sorted(groups, key=_group_order):
        inc = book.incident_for(group, now, records)
        requalify[group[0]].add(group[1])
        record = book.record(records, inc.tracking)
        for target in groups[group]:
            if target.incident is not None:
                old = book.incidents[target.incident]
                book.leave(old, target.key)
                book.record(records, old.tracking).removed.add(target.key)
                sources.setdefault(old.tracking, set()).add(inc.tracking)
            inc.members.add(target.key)
            record.added.add(target.key)
            target.incident = inc.tracking
            book.classify(inc, target, now)
    for tracking in sorted(sources):
        old = book.incidents[tracking]
        if old.failing:
            continue
        heirs = sources[tracking]
        heir = book.incidents[min(heirs)] if len(heirs) == 1 else None
        if heir is not None and (heir.root == old.root or heir.root in s.inventory.chain[old.root]):
            merged |= book.merge(old, heir, records, s.targets, now)
            requalify[old.kind].add(old.root)
        elif not old.members:
            book.resolve(old, Event.EMPTIED, now)
            requalify[old.kind].add(old.root)
    for keys in requalify.values():
        keys -= {k for k in keys if k.level is LINE}
    return requalify, merged


def _group_order(group: Group) -> tuple[str, NodeKey]:
    """Groups in the order of their kind's name, then root: numbers are issued in it."""
    return group[0].value, group[1]
