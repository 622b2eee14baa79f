"""The incident lifecycle in one table, the change each step reports, and tracking numbers.

    opened -> (grew | shrank | promoted | severity)* -> recovering -> resolved, with reopened
    from recovering or from resolved within `reopen_window`, or -> merged (absorbed by a parent).

`TRANSITIONS` is every phase an incident may move to and why (h11 keeps its state machine the
same way); `transition` is the only code that sets a phase. `change_of` is the one change a
step reports for an incident, from the phase it started the step in and what the step did.

An incident that absorbs others in a step reports "promoted" even when it also reopened: the
planner needs the merged numbers (`replaces`), and tells a reopen from the incident as last
committed. Each absorbed incident ends in the same step with its own change, "merged"
(`merged_into` names the parent, `affected` its lines that went there): the engine alone says
an incident ended, then forgets it (a merged incident never reopens). An incident is active
while a member still has its fault. A member that recovered stays (so it is told when the whole
incident is resolved) until it has been good for `stable`; then it leaves an active incident
("shrank"), or, when no member fails any more and all are verified, the incident resolves.

Severity: a line's own incident is one incident whether the line is down or degraded: a
flapping line (down, up but flapping, down again) keeps one tracking number. Its kind is its
severity: it becomes OUTAGE as soon as the line is down, and DEGRADATION only once the line has
been up (degraded) for `stable`, so a flapping line stays an outage until it settles
("severity", `was` names the kind before); an incident whose line was down meanwhile opens as
OUTAGE.

Tracking numbers are `<PREFIX>-<YEAR>-<6 digits>`, numbered per year of the configured time
zone, with one counter per year: a clock stepped back across new year goes on with that year's
sequence instead of starting it again. `reserve` raises a counter to what the store has already
issued, so a lost or older snapshot never issues a number twice.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from monitord.model import Incident, IncidentKind, Phase
from rules.judge import CPE, DEGRADATION, OUTAGE, OVERRUN, Fault, Target, fails
from rules.nodes import DEVICE, LINE, NodeKey, line_ids
from rules.timers import Timers

Change = Literal[
    "opened",
    "grew",
    "shrank",
    "promoted",
    "merged",
    "recovering",
    "resolved",
    "reopened",
    "closed_removed",
    "severity",
    "closed",
]
Group = tuple[Fault, NodeKey]  # an incident's (kind, root): one unresolved incident each

ACTIVE = (Phase.OPEN, Phase.UPDATED)
SEVERITIES = {OUTAGE: DEGRADATION, DEGRADATION: OUTAGE}  # a line's own incident moves between these
_WORDS = {OUTAGE: "down", DEGRADATION: "degraded", OVERRUN: "still down after maintenance", CPE: "modem silent"}


class Event(enum.Enum):
    REOPEN = "a fault returns to its resolved incident within the reopen window"
    CHANGED = "members came or left, or one fails again while it recovers"
    RECOVERED = "no member has the fault any more"
    VERIFIED = "every member has been good for `stable`"
    MERGED = "a parent incident absorbed it"
    EMPTIED = "its last member moved to another incident"
    REMOVED = "its root or all its members left the topology"
    CLOSED = "the NOC closed it by hand (`Book.close`)"


_UNRESOLVED = (Phase.OPEN, Phase.UPDATED, Phase.RECOVERING)
TRANSITIONS: dict[tuple[Phase, Event], Phase] = {
    (Phase.RESOLVED, Event.REOPEN): Phase.UPDATED,
    **{(phase, Event.CHANGED): Phase.UPDATED for phase in _UNRESOLVED},
    **{(phase, Event.RECOVERED): Phase.RECOVERING for phase in ACTIVE},
    (Phase.RECOVERING, Event.VERIFIED): Phase.RESOLVED,
    **{
        (phase, end): Phase.RESOLVED
        for phase in _UNRESOLVED
        for end in (Event.MERGED, Event.EMPTIED, Event.REMOVED, Event.CLOSED)
    },
}


@dataclass(slots=True)
class Tracked:
    """An incident as the engine keeps it (`Incident` is what it tells)."""

    tracking: str
    kind: Fault
    root: NodeKey
    phase: Phase
    opened_at: float
    updated_at: float
    members: set[NodeKey]
    evidence: tuple[str, ...] = ()
    resolved_at: float | None = None
    failing: set[NodeKey] = field(default_factory=set)  # members with the incident's fault
    waiting: set[NodeKey] = field(default_factory=set)  # members not yet verified good for `stable`


def transition(inc: Tracked, event: Event, now: float) -> None:
    """Move an incident along `TRANSITIONS`; any other move is a bug."""
    phase = TRANSITIONS.get((inc.phase, event))
    if phase is None:
        raise AssertionError(f"{inc.tracking}: no transition from {inc.phase.value} on {event.name}")
    inc.phase = phase
    inc.resolved_at = now if phase is Phase.RESOLVED else None
    if phase is Phase.RESOLVED:
        inc.failing, inc.waiting = set(), set()


@dataclass(slots=True)
class Record:
    """What happened to one incident during one step."""

    before: Phase | None  # None: opened in this step
    added: set[NodeKey] = field(default_factory=set)
    removed: set[NodeKey] = field(default_factory=set)
    replaces: list[str] = field(default_factory=list)
    removed_from_topology: bool = False
    merged_into: str | None = None
    was: Fault | None = None  # the kind before a severity change in this step
    closed: Closure | None = None  # closed by hand in this step


@dataclass(frozen=True, slots=True)
class Closure:
    """A close by hand: who, why, and the lines still failing then (muted, told nothing)."""

    by: str
    reason: str
    muted: frozenset[str] = frozenset()


def change_of(record: Record, phase: Phase, kind: Fault) -> Change | None:
    """The one change a step reports for an incident, from the phase it started in and the
    phase it ends in, first match wins."""
    if record.removed_from_topology:
        return "closed_removed"
    if record.merged_into is not None:
        return "merged"
    if record.closed is not None:
        return "closed"
    if record.before is None:
        return "promoted" if record.replaces else "opened"
    if phase is Phase.RESOLVED:
        return None if record.before is Phase.RESOLVED else "resolved"
    if record.replaces:
        return "promoted"
    if record.before in (Phase.RECOVERING, Phase.RESOLVED) and phase in ACTIVE:
        return "reopened"
    if phase is Phase.RECOVERING and record.before is not Phase.RECOVERING:
        return "recovering"
    if record.was is not None and record.was != kind:
        return "severity"
    if record.added - record.removed:
        return "grew"
    if record.removed - record.added:
        return "shrank"
    return None


@dataclass(frozen=True, slots=True)
class IncidentChange:
    incident: Incident
    change: Change
    added: frozenset[str] = frozenset()  # line ids
    removed: frozenset[str] = frozenset()
    replaces: tuple[str, ...] = ()  # tracking numbers merged into this incident
    merged_into: str | None = None  # "merged": the incident that absorbed this one
    was: IncidentKind | None = None  # "severity": the kind before
    closed: Closure | None = None  # "closed": who closed it by hand, why, and the lines muted


Records = dict[str, Record]  # by tracking number, for one step


class Book:
    """The incidents the engine remembers, indexed by (kind, root), and the numbers issued."""

    def __init__(self, prefix: str, timezone: str, stable: float, reopen_window: float, timers: Timers) -> None:
        self._prefix = prefix
        self._tz = ZoneInfo(timezone)
        self._stable = stable
        self._reopen_window = reopen_window
        self._timers = timers
        self.incidents: dict[str, Tracked] = {}
        self.open: dict[Group, str] = {}  # unresolved incidents by (kind, root)
        self.closed: dict[Group, str] = {}  # resolved, still reopenable
        self.issued: dict[int, int] = {}  # year -> last sequence number issued
        self.muted: set[NodeKey] = set()  # still failing when their incident was closed by hand, until they recover

    def add(self, inc: Tracked) -> None:
        self.incidents[inc.tracking] = inc
        index = self.closed if inc.phase is Phase.RESOLVED else self.open
        index[(inc.kind, inc.root)] = inc.tracking

    def reserve(self, year: int, last: int) -> None:
        self.issued[year] = max(self.issued.get(year, 0), last)

    def record(self, records: Records, tracking: str) -> Record:
        found = records.get(tracking)
        if found is None:
            found = records[tracking] = Record(before=self.incidents[tracking].phase)
        return found

    def incident_for(self, group: Group, now: float, records: Records) -> Tracked:
        """The unresolved incident of this (kind, root), the resolved one reopened, or a new one."""
        kind, root = group
        if root.level is LINE and kind in SEVERITIES and group not in self.open and group not in self.closed:
            other = (SEVERITIES[kind], root)
            sibling = self.open.get(other) or self.closed.get(other)
            if sibling is not None:
                self.rekey(self.incidents[sibling], kind, records)
        tracking = self.open.get(group)
        if tracking is not None:
            return self.incidents[tracking]
        tracking = self.closed.pop(group, None)
        if tracking is not None:
            self.record(records, tracking)
            inc = self.incidents[tracking]
            transition(inc, Event.REOPEN, now)
            inc.members = set()
        else:
            tracking = self._number(now)
            inc = self.incidents[tracking] = Tracked(tracking, kind, root, Phase.OPEN, now, now, set())
            records[tracking] = Record(before=None)
        self.open[group] = tracking
        return inc

    def follow(self, inc: Tracked, target: Target, now: float, records: Records) -> None:
        """A line's own incident takes the line's severity: outage at once, degradation only once
        the line has been up for `stable` (a flapping line stays one outage)."""
        if inc.kind is DEGRADATION and target.fault is OUTAGE:
            self.rekey(inc, OUTAGE, records)
        elif (
            inc.kind is OUTAGE
            and target.fault is DEGRADATION
            and target.up_since is not None
            and now - target.up_since >= self._stable
        ):
            self.rekey(inc, DEGRADATION, records)

    def rekey(self, inc: Tracked, kind: Fault, records: Records) -> None:
        """Change an incident's severity in place: same number, indexed under its new kind."""
        index = self.closed if inc.phase is Phase.RESOLVED else self.open
        if (kind, inc.root) in index:
            return
        record = self.record(records, inc.tracking)
        record.was = inc.kind if record.was is None else record.was
        del index[(inc.kind, inc.root)]
        inc.kind = kind
        index[(kind, inc.root)] = inc.tracking

    def classify(self, inc: Tracked, target: Target, now: float) -> None:
        """A member is failing (it has the incident's fault, or is its line, down or degraded),
        waiting, or verified good."""
        key = target.key
        inc.failing.discard(key)
        inc.waiting.discard(key)
        own = key == inc.root and key.level is LINE and target.fault in SEVERITIES and SEVERITIES.get(inc.kind) == target.fault
        if fails(target.fault, inc.kind) or own:
            inc.failing.add(key)
            return
        since = target.ok_since if inc.kind is DEGRADATION else target.up_since
        if since is None or now - since < self._stable:
            inc.waiting.add(key)

    def leave(self, inc: Tracked, key: NodeKey) -> None:
        inc.members.discard(key)
        inc.failing.discard(key)
        inc.waiting.discard(key)

    def merge(self, old: Tracked, heir: Tracked, records: Records, targets: Mapping[NodeKey, Target], now: float) -> set[Target]:
        """`heir`, at or above `old`'s root, takes all of `old`'s members, which it returns; `old`
        ends "merged" (or is dropped if it opened in this step and was never announced)."""
        moved: set[Target] = set()
        for key in old.members:
            target = targets[key]
            moved.add(target)
            heir.members.add(key)
            target.incident = heir.tracking
            self.classify(heir, target, now)
        heir_record = self.record(records, heir.tracking)
        heir_record.added |= old.members
        heir_record.replaces.append(old.tracking)
        del self.open[(old.kind, old.root)]
        old_record = records[old.tracking]
        if old_record.before is None:
            del records[old.tracking], self.incidents[old.tracking]
            return moved
        in_heir = old.members | old_record.removed  # those a reload removed are gone from `targets`
        old.members = {k for k in in_heir if k in targets and targets[k].incident == heir.tracking}
        old_record.added, old_record.removed = set(), set()
        old_record.merged_into = heir.tracking
        transition(old, Event.MERGED, now)
        return moved

    def advance_all(self, now: float, records: Records, targets: Mapping[NodeKey, Target]) -> dict[Fault, set[NodeKey]]:
        """Move each touched incident along its lifecycle; returns the roots that resolved."""
        resolved: dict[Fault, set[NodeKey]] = {kind: set() for kind in Fault}
        for tracking in sorted(records):
            inc = self.incidents[tracking]
            resolves = inc.phase is not Phase.RESOLVED and self._advance(inc, records[tracking], targets, now)
            if resolves and inc.root.level is not LINE:
                resolved[inc.kind].add(inc.root)
        return resolved

    def _advance(self, inc: Tracked, record: Record, targets: Mapping[NodeKey, Target], now: float) -> bool:
        """One lifecycle step for an unresolved incident; True when it resolved."""
        if inc.failing:
            verified = inc.members - inc.failing - inc.waiting
            for key in verified:
                targets[key].incident = None
            inc.members -= verified
            record.removed |= verified
            if inc.phase is Phase.RECOVERING or (
                record.before is not None and (record.added or record.removed or record.replaces)
            ):
                transition(inc, Event.CHANGED, now)
        elif inc.phase in ACTIVE:
            transition(inc, Event.RECOVERED, now)
        if inc.phase is not Phase.RECOVERING or inc.waiting:
            return False
        for key in inc.members:
            targets[key].incident = None
        self.resolve(inc, Event.VERIFIED, now)
        return True

    def resolve(self, inc: Tracked, event: Event, now: float) -> None:
        transition(inc, event, now)
        self.open.pop((inc.kind, inc.root), None)
        self.closed[(inc.kind, inc.root)] = inc.tracking
        self._timers.forget(now + self._reopen_window, inc.tracking)

    def close(
        self, tracking: str, closure: Closure, targets: Mapping[NodeKey, Target], now: float, records: Records
    ) -> set[NodeKey] | None:
        """The NOC closes an unresolved incident by hand: it resolves at once ("closed") and is
        forgotten (never reopened: a later fault opens a new one), and its members that still
        have a fault are muted, placed in no incident until they recover (`unmute`). Returns
        those; None: no such unresolved incident."""
        inc = self.incidents.get(tracking)
        if inc is None or inc.phase is Phase.RESOLVED:
            return None
        muted = {key for key in inc.members if targets[key].fault is not None}
        for key in inc.members:
            targets[key].incident = None
        self.muted |= muted
        self.record(records, tracking).closed = Closure(closure.by, closure.reason, line_ids(muted))
        transition(inc, Event.CLOSED, now)
        del self.open[(inc.kind, inc.root)]
        return muted

    def unmute(self, touched: Iterable[Target]) -> set[Target]:
        """Muted targets among `touched` that have recovered (no fault): placed again from their
        next fault on. Returns them (their rows change)."""
        recovered = {t for t in touched if t.fault is None and t.key in self.muted}
        self.muted -= {t.key for t in recovered}
        return recovered

    def forget(self, tracking: str, now: float) -> None:
        """Drop a resolved incident once its reopen window has passed."""
        inc = self.incidents.get(tracking)
        if inc is not None and inc.phase is Phase.RESOLVED and (inc.resolved_at or 0.0) + self._reopen_window <= now:
            del self.incidents[tracking]
            if self.closed.get((inc.kind, inc.root)) == tracking:
                del self.closed[(inc.kind, inc.root)]

    def emit(
        self, now: float, records: Records, targets: Mapping[NodeKey, Target], total: Mapping[NodeKey, int]
    ) -> tuple[IncidentChange, ...]:
        changes = []
        for tracking in sorted(records):
            record, inc = records[tracking], self.incidents[tracking]
            change = change_of(record, inc.phase, inc.kind)
            if change is None:
                continue
            inc.updated_at = now
            if record.merged_into is not None:
                inc.evidence = (*inc.evidence, f"merged into {record.merged_into}")
                del self.incidents[tracking]
            elif record.closed is not None:
                inc.evidence = (*inc.evidence, f"closed by hand by {record.closed.by}: {record.closed.reason}")
                del self.incidents[tracking]
            else:
                inc.evidence = _evidence(inc, targets.get(inc.root), total.get(inc.root, 0))
            added, removed = record.added - record.removed, record.removed - record.added
            was = record.was.kind() if record.was is not None and record.was != inc.kind else None
            changes.append(
                IncidentChange(
                    public(inc),
                    change,
                    line_ids(added),
                    line_ids(removed),
                    tuple(record.replaces),
                    record.merged_into,
                    was,
                    record.closed,
                )
            )
        return tuple(changes)

    def _number(self, now: float) -> str:
        year = datetime.fromtimestamp(now, self._tz).year
        seq = self.issued[year] = self.issued.get(year, 0) + 1
        return f"{self._prefix}-{year}-{seq:06d}"


def severity(target: Target, group: Group) -> Group:
    """The kind a settled fault opens at its root: a line's own incident opens as an outage when
    the line was down during this fault (it flaps), whatever it is at this instant."""
    kind, root = group
    if kind is DEGRADATION and root == target.key and root.level is LINE and OUTAGE in target.last_fault:
        return OUTAGE, root
    return group


def public(inc: Tracked) -> Incident:
    return Incident(
        tracking=inc.tracking,
        kind=inc.kind.kind(),
        root=inc.root.ref(),
        phase=inc.phase,
        opened_at=inc.opened_at,
        updated_at=inc.updated_at,
        affected=line_ids(inc.members),
        evidence=inc.evidence,
        resolved_at=inc.resolved_at,
    )


def _evidence(inc: Tracked, root: Target | None, total: int) -> tuple[str, ...]:
    """Why the incident exists now: the root's own reasons, then what fails behind it."""
    evidence = []
    if root is not None and fails(root.fault, inc.kind):
        evidence.append(f"{inc.root}: {'; '.join(root.reasons)}")
    if inc.root.level is not LINE:
        lines = sum(1 for k in inc.failing if k.level is LINE)
        devices = sorted(k.id for k in inc.failing if k.level is DEVICE and k != inc.root)
        evidence.append(f"{lines}/{total} lines {_WORDS[inc.kind]} behind {inc.root}")
        if devices:
            more = f" and {len(devices) - 5} more" if len(devices) > 5 else ""
            evidence.append(f"devices {_WORDS[inc.kind]}: {', '.join(devices[:5])}{more}")
    return tuple(evidence)
