"""The rules engine: samples in, line states and incidents out. Pure: no I/O, no clock.

The daemon feeds it `observe(samples, now)` after each poll and `tick(now)` as time passes; both
return a `Step`: the line and device states that changed, the incident changes, and the devices
worth polling right away. Everything it knows fits in `snapshot()`, and `restore()` resumes
exactly where it stopped (same numbers, nothing announced twice). The same state in rows:
`changes()` gives the records of the targets and incidents changed since the store last took
them (`written()`), so a step saves what it changed, never the whole engine.

The parts, each with its own account of the model:
    rules/judge.py        a line's or device's status and fault, from its probes and checks
    rules/correlate.py    the failing lines each node counts, and whether it qualifies
    rules/placement.py    which incident a settled fault goes to, and when; merges
    rules/lifecycle.py    the incident lifecycle as one table, the changes told, numbering
    rules/maintenance.py  planned windows, and what overran them
    rules/timers.py       when to look again without a sample
    rules/snapshot.py     the state as JSON-safe data
    rules/nodes.py        typed node keys and the topology's indexes
    rules/state.py        all of the above that one engine holds, shared by its parts

A fault must *settle* (`settle`) before it is assigned to an incident. Meanwhile, when a line
goes down or its modem silent, the step asks for its device to be polled again (`Step.recheck`;
so does a device that stops being down, for its lines), so a dead DSLAM is seen as one dead
DSLAM whatever order the probes answered in. Waiting out `settle` makes a dark exchange a minute
late, so when a device's first probe says down, the step asks for it and every device of its
exchange to be polled at once; a device that goes down is rechecked again.

Cost
    A step works on the targets that changed, never on every line (a reload's too): timers
    are kept per time (faults that settle together wake together), line counts are carried up
    the topology once per device, and the regional root is found once per (kind, device) per
    round. So a cycle with 50,000 failing lines stays well under a second (bench/correlate.py).

Determinism
    Samples within one call are applied per target (the latest `at` wins, ties broken by
    content), statuses are judged after all samples are in, and groups are numbered in sorted
    order, so the order of samples inside a call never changes the result.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from monitord.model import Incident, LineState, MaintenanceWindow, NodeRef, Phase, Sample, Status, Topology
from rules import snapshot as snapshots
from rules.config import RulesConfig
from rules.correlate import KINDS, Counts
from rules.judge import CPE, DEGRADATION, NEVER_FAILED, Device, Fault, Judge, Target, count_downs, sample_order, suspect
from rules.lifecycle import ACTIVE, Book, Change, Closure, Event, IncidentChange, Records, public
from rules.nodes import DEVICE, LINE, Inventory, NodeKey, Reshape, device_of
from rules.placement import correlate, node_qualifies, recount, settles_at
from rules.state import State
from rules.tally import LineCounts
from rules.timers import Timers

__all__ = ["Change", "Closure", "Engine", "IncidentChange", "Step"]

_SILENT = (Status.DOWN, Status.CPE)  # a line gone quiet: is its head-end still there?


@dataclass(frozen=True, slots=True)
class Step:
    states: tuple[LineState, ...] = ()  # changed line and device states
    incidents: tuple[IncidentChange, ...] = ()
    recheck: tuple[str, ...] = ()  # device ids worth polling now


class Engine:
    def __init__(self, topology: Topology, rules: RulesConfig, tracking_prefix: str, timezone: str = "UTC") -> None:
        timers = Timers()
        inventory = Inventory.of(topology)
        book = Book(tracking_prefix, timezone, rules.stable, rules.reopen_window, timers)
        self._s = State(
            rules=rules, judge=Judge(rules), inventory=inventory, counts=Counts(inventory, book.muted), book=book, timers=timers
        )
        self._suspected: set[Target] = set()  # devices whose first probe said down in this call
        self._restored = False  # restored onto a topology that lacks nodes it names: the next step reconciles
        self._s.tally.recount(inventory, self._s.targets, inventory.lines_of)

    # --- public API ---------------------------------------------------------------------------

    def observe(self, samples: Iterable[Sample], now: float) -> Step:
        """Ingest one batch (e.g. one device poll)."""
        s = self._s
        latest: dict[tuple[Target, str], Sample] = {}
        for sample in samples:
            target = self._known(sample.target)
            if target is None:
                continue
            other = latest.get((target, sample.probe))
            if other is None or sample_order(sample) > sample_order(other):
                latest[target, sample.probe] = sample
        judge, wake = self._due(now)
        said: dict[Device, list[str]] = {}  # what each device's probes said in this batch
        suspect_before: dict[Device, bool] = {}  # and whether it was suspected before
        for (target, probe), sample in latest.items():
            if isinstance(target, Device) and target not in said:
                said[target], suspect_before[target] = [], suspect(target)
            held, checks = target.verdicts, target.checks  # replaced when they change, never changed in place
            if s.judge.apply(target, sample, probe, now):
                judge.add(target)
            # checks by value: a check may return a new state equal to the old one
            if held is not target.verdicts or (
                checks is not target.checks and list(checks.values()) != list(target.checks.values())
            ):
                s.dirty.add(target.key)  # before `_step` looks
            if isinstance(target, Device):
                said[target].append(target.verdicts[probe][0])
        for area in {s.inventory.area(device.key) for device in said if s.asked.pop(device.key, None) is not None}:
            wake.update(_waiting(s, area))  # a fault there may have waited for this answer (`gather`)
        for device, verdicts in said.items():
            counted = device.downs, device.suspected
            newly, rejudge = count_downs(device, verdicts, suspect_before[device], now)
            if (device.downs, device.suspected) != counted:
                s.dirty.add(device.key)
            if newly:
                self._suspected.add(device)
            if rejudge:
                judge.add(device)
        return self._step(now, judge, wake)

    def tick(self, now: float) -> Step:
        """Let time pass: `for` holds, settle, stable and correlation windows, maintenance edges."""
        return self._step(now, *self._due(now))

    def set_maintenance(self, windows: Sequence[MaintenanceWindow], now: float) -> Step:
        """Replace the planned windows; the targets of windows that changed are judged again."""
        s = self._s
        touched, wake = self._due(now)
        changed, pending = s.maintenance.replace(windows, s.targets.values(), now)
        for window in pending:
            s.timers.window(window.start, window.id)
            s.timers.window(window.end + window.grace, window.id)
        return self._step(now, touched | changed, wake)

    def closable(self, tracking: str) -> bool:
        """Whether `close` would close it: an unresolved incident."""
        inc = self._s.book.incidents.get(tracking)
        return inc is not None and inc.phase is not Phase.RESOLVED

    def close(self, tracking: str, closure: Closure, now: float) -> Step | None:
        """The NOC closes an unresolved incident by hand (`Book.close`); None when there is none."""
        records: Records = {}
        muted = self._s.book.close(tracking, closure, self._s.targets, now, records)
        return None if muted is None else self._step(now, *self._due(now), records, recount(self._s, muted))

    def reshape(self, topology: Topology) -> Reshape:
        """What `topology` would change, for `set_topology`. Reads only the engine's inventory,
        which a reload replaces and never mutates: a caller may run it off the event loop, as
        long as no other reload swaps the topology meanwhile (`set_topology` then works it out
        again)."""
        return Reshape.between(self._s.inventory, Inventory.of(topology))

    def rebased(self, change: Reshape) -> Reshape:
        """`change` as it applies to this engine's inventory: worked out again if it was worked
        out against another (an engine rebuilt under new rules has one of its own)."""
        return change if change.before is self._s.inventory else Reshape.between(self._s.inventory, change.after)

    def set_topology(self, topology: Topology | Reshape, now: float) -> Step:
        """Reload: removed lines leave their incidents; incidents left empty or rootless close.

        Only what changed is looked at again: the lines and devices that moved are judged
        again, those gone leave, the nodes whose counts or totals changed qualify again, and
        the faults of the regions where counts moved and the members of the incidents that
        close are placed again. The rest keep their state."""
        s = self._s
        change = self.reshape(topology) if isinstance(topology, Topology) else self.rebased(topology)
        judge, wake = self._due(now)
        records: Records = {}
        moved = {s.targets[key] for key in change.moved if key in s.targets}
        gone = [s.targets.pop(key) for key in change.gone if key in s.targets]
        changed: dict[Fault, set[NodeKey]] = {kind: set(change.resized) for kind in KINDS}
        s.counts.rehome([*moved, *gone], change.gone, change.after, changed)
        s.inventory = change.after
        for target in gone:
            s.dirty.add(target.key)
            judge.discard(target)
            wake.discard(target)
        for target in moved:
            target.chain = change.after.chain[target.key]
        s.tally.recount(s.inventory, s.targets, _recounted(change))
        released = self._depart(now, records)
        return self._step(now, judge | moved | released, wake | self._faults_under(change.areas), records, changed)

    def overran(self) -> frozenset[str]:
        """Lines still down when a maintenance window in force closed."""
        return self._s.maintenance.all_overran()

    def reserve(self, year: int, last: int) -> None:
        """Numbers up to `last` of `year` are taken (the store's record): never issue them."""
        self._s.book.reserve(year, last)

    def line_state(self, line_id: str) -> LineState:
        return self.node_state(NodeRef("line", line_id))

    def node_state(self, node: NodeRef) -> LineState:
        """Lines and devices as judged; cabinets, exchanges and regions from their incidents."""
        book, key = self._s.book, NodeKey.of(node)
        target = self._s.targets.get(key)
        if target is not None:
            return LineState(node, target.status, target.since, target.reasons)
        if node.level in ("line", "device"):
            return LineState(node, Status.UNKNOWN, 0.0, ("no data",))
        rooted = [book.incidents[t] for (_, root), t in sorted(book.open.items(), key=_index_order) if root == key]
        active = sorted((i for i in rooted if i.phase in ACTIVE), key=lambda i: (i.kind is DEGRADATION, i.opened_at))
        if not active:
            return LineState(node, Status.OK, 0.0)
        status = Status.DEGRADED if active[0].kind is DEGRADATION else Status.DOWN
        return LineState(node, status, active[0].opened_at, active[0].evidence)

    def line_counts(self) -> dict[str, LineCounts]:
        """Each device's lines by status, in `rules.tally.STATUSES` order (a line with no data
        yet is unknown): a copy of the counts kept as statuses change, one entry per device."""
        return dict(self._s.tally.by_device)

    def targets_known(self) -> int:
        """The lines and devices the engine keeps a state for (made with their first sample)."""
        return len(self._s.targets)

    def open_count(self) -> int:
        """How many incidents are unresolved."""
        return len(self._s.book.open)

    def incidents(self) -> list[Incident]:
        """Unresolved incidents, in order of their tracking numbers."""
        book = self._s.book
        return [public(book.incidents[t]) for t in sorted(book.open.values())]

    def incident(self, tracking: str) -> Incident | None:
        """Any incident still remembered: unresolved, or resolved within the reopen window."""
        inc = self._s.book.incidents.get(tracking)
        return None if inc is None else public(inc)

    def snapshot(self) -> dict[str, Any]:
        """All state, JSON-safe; the counts and qualifications follow from it and are rebuilt."""
        return snapshots.dump(self._s)

    def changes(self) -> snapshots.Rows:
        """The rows changed since `written()`: the same state as `snapshot()`, in parts."""
        return snapshots.rows(self._s)

    def written(self) -> None:
        """The store took the rows of the last `changes()` (no step in between)."""
        s = self._s
        for tracking in s.dirty_incidents:
            inc = s.book.incidents.get(tracking)
            if inc is None:
                s.saved_members.pop(tracking, None)
            else:
                s.saved_members[tracking] = snapshots.saved_members(inc)
        self._s.dirty.clear()
        self._s.dirty_incidents.clear()
        self._s.timers.changed.clear()

    @classmethod
    def restore(
        cls,
        topology: Topology,
        rules: RulesConfig,
        tracking_prefix: str,
        snapshot: Mapping[str, Any],
        timezone: str = "UTC",
        *,
        stored: bool = False,
    ) -> Engine:
        """`stored`: the snapshot was assembled from the store's rows, so only the rows of
        targets gone from the topology are to write (delete); otherwise all of them are.

        The topology may have changed while the daemon was down: when the saved state names
        nodes it lacks, the first step settles that as a reload would (`_step`; the saved state
        does not say where a line was, so it judges nothing again)."""
        engine = cls(topology, rules, tracking_prefix, timezone)
        s = engine._s
        dropped = snapshots.load(s, snapshot)
        s.dirty = set(dropped)
        s.timers.changed.clear()  # as loaded
        if stored:
            s.saved_members = {t: snapshots.saved_members(inc) for t, inc in s.book.incidents.items()}
        else:
            s.dirty.update(s.targets)
            s.dirty_incidents.update(s.book.incidents)
        engine._count_all()
        engine._restored = bool(dropped) or any(
            not {inc.root, *inc.members} <= s.inventory.chain.keys()
            for inc in s.book.incidents.values()
            if inc.phase is not Phase.RESOLVED
        )
        return engine

    # --- one step ------------------------------------------------------------------------------

    def _count_all(self) -> None:
        """Rebuild the counts and qualifications, which follow from the targets and incidents."""
        s = self._s
        s.counts = Counts(s.inventory, s.book.muted)
        changed: dict[Fault, set[NodeKey]] = {kind: set() for kind in KINDS}
        for target in s.targets.values():
            target.counted = frozenset()
            s.counts.recount(target, changed)
        s.tally.recount(s.inventory, s.targets, s.inventory.lines_of)
        s.counts.requalify({kind: set(s.inventory.total) for kind in KINDS}, lambda node, kind: node_qualifies(s, node, kind))

    def _depart(self, now: float, records: Records) -> set[Target]:
        """Members gone from the topology (their targets are) leave their incidents; incidents
        left empty or rootless close ("removed"). Returns the members they release. A reload
        calls it, and the first step after a restore."""
        s, book = self._s, self._s.book
        released: set[Target] = set()
        for inc in [i for i in book.incidents.values() if i.phase is not Phase.RESOLVED]:
            for key in [k for k in inc.members if k not in s.targets]:
                book.record(records, inc.tracking).removed.add(key)
                book.leave(inc, key)
            if inc.root not in s.inventory.chain or not inc.members:
                record = book.record(records, inc.tracking)
                record.removed_from_topology = True
                record.removed |= inc.members
                for key in inc.members:
                    s.targets[key].incident = None
                    released.add(s.targets[key])
                book.resolve(inc, Event.REMOVED, now)
        return released

    def _faults_under(self, areas: Iterable[NodeKey]) -> set[Target]:
        """The targets counted for a fault under these nodes: where a reload moved counts, the
        root a fault belongs to may move although no node flipped (`Counts.regional` narrows
        by the failing lines each node holds), so they are placed again."""
        s = self._s
        devices = {device for area in areas for device in s.inventory.devices_under.get(area, ())}
        found = set().union(*(s.counts.behind(kind, devices) for kind in KINDS))
        found.update(t for t in map(s.targets.get, devices) if t is not None and t.fault is not None)
        return found

    def _due(self, now: float) -> tuple[set[Target], set[Target]]:
        """Pop the timers that are due. Returns the targets to judge again (a check is due, a
        maintenance edge) and those only to wake (settle, stable, correlation window)."""
        s = self._s
        due = s.timers.pop_due(now)
        judge: set[Target] = set()
        wake: set[Target] = set()
        for key in due.targets:
            target = s.targets.get(key)
            if target is not None:
                (judge if target.check_due is not None and target.check_due <= now else wake).add(target)
        for window_id in due.windows:
            edged = s.maintenance.edge(window_id, s.targets.values(), now)
            s.dirty.update(t.key for t in edged)  # their `overrun` marks
            judge |= edged
        for tracking in due.incidents:
            s.book.forget(tracking, now)
        s.dirty_incidents.update(due.incidents)
        return judge, wake

    def _step(
        self,
        now: float,
        judge: set[Target],
        wake: set[Target],
        records: Records | None = None,
        changed: dict[Fault, set[NodeKey]] | None = None,
    ) -> Step:
        """Judge what changed, recount, correlate, advance the incidents, plan the next wake-ups.
        `changed`: nodes to qualify again whatever the targets do (a reload's)."""
        s, book = self._s, self._s.book
        records = {} if records is None else records
        changed = {kind: set() for kind in KINDS} if changed is None else changed
        if self._restored:  # as a reload from the saved topology, which it cannot tell: any count may have moved
            self._restored = False
            judge |= self._depart(now, records)
            wake |= self._faults_under(node for node in s.inventory.total if not s.inventory.chain[node])
            for kind in KINDS:
                changed[kind].update(s.inventory.total)
        before = {t: snapshots.fingerprint(t) for t in judge | wake}
        states: dict[NodeKey, LineState] = {}
        recheck: set[str] = set()
        for device in sorted((t for t in judge if t.key.level is DEVICE), key=_by_key):
            was_down = device.base is Status.DOWN
            if self._judge(device, now, states):
                if was_down or device.confirmed is None:
                    recheck.add(device.key.id)
                judge.update(s.target(line) for line in s.inventory.lines_of[device.key])
        for device in self._suspected:
            near = s.inventory.devices_under[s.inventory.area(device.key)]
            recheck.update(key.id for key in near)
            for key in near:
                if key != device.key and s.asked.get(key, -math.inf) + s.rules.gather <= now:
                    s.asked[key] = now
        self._suspected.clear()
        touched = judge | wake
        window = s.rules.correlation.window
        for target in touched:
            if target in judge and target.key.level is LINE:
                was = target.base
                self._judge(target, now, states)
                if target.base in _SILENT and was not in _SILENT:
                    recheck.add(device_of(target.chain).id)
            if target.last_fault:
                target.last_fault = {k: t for k, t in target.last_fault.items() if t + window > now} or NEVER_FAILED
            s.counts.recount(target, changed)
            if target.incident is not None:
                inc = book.incidents[target.incident]
                if inc.root == target.key and inc.root.level is LINE:
                    book.follow(inc, target, now, records)
                book.classify(inc, target, now)
                book.record(records, target.incident)
        reassess = set(touched)
        while reassess or any(changed.values()):
            touched |= correlate(s, now, reassess, changed, records)
            changed = book.advance_all(now, records, s.targets)
            reassess = set()
        for target in touched:
            self._plan(target, now)
        changes = tuple(states[key] for key in sorted(states))
        incidents = book.emit(now, records, s.targets, s.inventory.total)
        self._mark(touched, before, records)
        return Step(changes, incidents, tuple(sorted(recheck)))

    def _mark(self, touched: set[Target], before: dict[Target, tuple[Any, ...]], records: Records) -> None:
        """Dirty: the targets a step changed (`before`: as they were when it began), and the
        incidents it changed; a target that only joined, left, or was released from an
        incident is written as the incident's member rows, not as its own row."""
        s = self._s
        s.dirty.update(t.key for t in touched if before.get(t) != snapshots.fingerprint(t))
        s.dirty_incidents.update(records)

    def _judge(self, target: Target, now: float, states: dict[NodeKey, LineState]) -> bool:
        """Judge a target again; True when its down-ness changed (a device's lines follow)."""
        s = self._s
        line = target.key.level is LINE
        device = s.targets.get(device_of(target.chain)) if line else None
        was = target.status
        flipped, state = s.judge.judge(target, device, s.maintenance.window_of(target, now), now)
        if state is not None:
            states[target.key] = state
            if line and target.status is not was:
                s.tally.move(device_of(target.chain), was, target.status)
        return flipped

    def _plan(self, target: Target, now: float) -> None:
        """Wake this target at the next time it could change without a new sample."""
        rules = self._s.rules
        times = [] if target.check_due is None else [target.check_due]
        if target.fault is not None:
            times += (target.fault_since + rules.settle, settles_at(self._s, target))
        if target.fault is CPE:
            times.append(target.fault_since + rules.cpe_hold)
        if target.last_fault:
            window = rules.correlation.window
            times.extend(ended + window for ended in target.last_fault.values())
        if target.incident is not None:
            times.extend(t + rules.stable for t in (target.ok_since, target.up_since) if t is not None)
        self._s.timers.wake(target.key, _earliest_after(times, now))

    def _known(self, node: NodeRef) -> Target | None:
        """The target a sample is about, if it is a line or device of the topology."""
        s = self._s
        key = NodeKey.of(node)
        target = s.targets.get(key)
        if target is None and key.level in (LINE, DEVICE) and key in s.inventory.chain:
            target = s.target(key)
        return target


def _recounted(change: Reshape) -> set[NodeKey]:
    """The devices whose lines a reload changed: those that came, went or changed size, and
    those a line moved from or to (a swap keeps both sizes)."""
    devices = {node for node in change.resized if node.level is DEVICE}
    for key in change.moved | change.gone:
        if key.level is LINE:
            devices.update(device_of(inv.chain[key]) for inv in (change.before, change.after) if key in inv.chain)
    return devices


def _earliest_after(times: Iterable[float], now: float) -> float:
    """The earliest of `times` later than `now`, or infinity."""
    earliest = math.inf
    for when in times:
        if now < when < earliest:
            earliest = when
    return earliest


def _by_key(target: Target) -> NodeKey:
    return target.key


def _index_order(item: tuple[tuple[Fault, NodeKey], str]) -> tuple[str, NodeKey]:
    (kind, root), _ = item
    return kind.value, root


def _waiting(s: State, area: NodeKey) -> Iterable[Target]:
    """The devices of an exchange whose fault is not in an incident yet."""
    for key in s.inventory.devices_under[area]:
        target = s.targets.get(key)
        if target is not None and target.fault is not None and target.incident is None:
            yield target
