"""The rules engine: samples in, line states and incidents out. Pure: no I/O, no clock.

The daemon feeds it `observe(samples, now)` after each poll and `tick(now)` as time passes; both
return a `Step`: the line and device states that changed, the incident changes, and the devices
worth polling right away. Everything it knows fits in `snapshot()`, and `restore()` resumes
exactly where it stopped (same numbers, nothing announced twice).

Targets
    Lines and devices are *targets*. Each keeps the latest verdict per probe and the state of
    each check (rules/checks.py), and has a base status (rules/verdict.py): OK, DEGRADED, DOWN,
    UNREACHABLE (its device is down: the device is the outage, not its lines) or UNKNOWN. Inside
    a maintenance window (plus grace) the status shown is MAINTENANCE and no incident forms.
    A sample's probe names the rule set that judges it: "snmp:adsl" -> `technologies.adsl`,
    "icmp" -> `technologies.icmp`, so a device's profiles choose its lines' rules.

Faults
    A target's fault is the incident kind its status calls for: OUTAGE (DOWN, UNREACHABLE),
    DEGRADATION (DEGRADED), CPE (CPE) or OVERRUN (still down when a maintenance window closed). A fault
    must *settle* (`settle`) before it is assigned to an incident. Meanwhile, when a line goes
    down or its modem silent, the step asks for its device to be polled again (`Step.recheck`;
    so does a device that stops being down, for its lines), so a dead DSLAM is seen as one dead
    DSLAM whatever order the probes answered in.

Customer premises
    A line whose modem is silent while its head-end, answering, shows its row in sync is CPE
    (rules/verdict.py): the customer switched the modem off or unplugged it. Its fault, `cpe`,
    waits `cpe_hold` (not `settle`) and then opens a `cpe` incident at the line, never above it.
    A silent modem still counts as an outage at every node above it, so many silent modems
    behind one device or cabinet are that node's outage after `settle`, as any outage; and a
    cpe member fails for the outage incident it is in (the customer still has no service): a
    line's own outage stays open until the modem answers; a wider one keeps it while its node
    qualifies, then the line moves to a `cpe` incident of its own at once. The whole decision
    table is in docs/decisions.md.

Confirming a device outage
    Waiting out `settle` makes a dark exchange a minute late. So when a device's first probe
    says down, the step asks for it and every device of its exchange to be polled at once; a
    device that goes down is rechecked again. Its outage is *confirmed* when all its probes say
    down and one of them has said so twice since the device last answered anything: it then
    settles at once, and so do the lines it made unreachable. A settled fault that would open
    an incident, or move to a new wider one, still waits while a device of its exchange,
    suspected (a probe says down) less than `gather` ago, has not settled: those rechecks
    answer within a few seconds, and the incident then opens with the whole outage instead of
    growing after its ticket. When an incident opens, every fault of its exchange that is ready
    is placed with it in the same step.

Correlation (as data)
    Every line counts towards each node above it (device, cabinet, exchange, region) for each
    fault kind it has now or had within `correlation.window`. A node *qualifies* for a kind when
    its count and fraction reach `min_count` and `min_fraction`, or, while an incident is already
    rooted there, `close_count` and `close_fraction` (hysteresis). A device with a fault of its
    own qualifies by itself for that kind. A settled fault goes to the farthest qualifying node
    above it, narrowed to the nearest qualifying node that holds the same failing lines and
    devices (a dead DSLAM alone in its exchange is a DSLAM incident), or else to its own line.
    So one incident per (kind, root): lines behind a regional fault attach to it, and when a parent
    starts to qualify its children's incidents are merged into one at the parent ("promoted",
    `replaces` lists the merged numbers). Each absorbed incident ends in the same step with its
    own change, "merged" (`merged_into` names the parent, `affected` its lines that went there):
    the engine alone says an incident ended, then forgets it (a merged incident never reopens).
    Recently failed lines keep counting for `window`, so when a parent recovers the lines still
    resyncing stay with its incident instead of flooding out as single-line incidents.

Severity
    A line's own incident is one incident whether the line is down or degraded: a flapping line
    (down, up but flapping, down again) keeps one tracking number. Its kind is its severity: it
    becomes OUTAGE as soon as the line is down, and DEGRADATION only once the line has been up
    (degraded) for `stable`, so a flapping line stays an outage until it settles ("severity",
    `was` names the kind before). A fault that moves between down and degraded is one fault: it
    settles from when it began, and an incident whose line was down meanwhile opens as OUTAGE.

Lifecycle
    opened -> (grew | shrank | promoted | severity)* -> recovering -> resolved, with reopened from
    recovering or from resolved within `reopen_window`, or -> merged (absorbed by a parent).
    An incident that absorbs others in a step reports "promoted" even when it also reopened:
    the planner needs the merged numbers (`replaces`), and tells a reopen from the incident as
    last committed. An incident is active while a member still has its fault. A member that
    recovered stays (so it is told when the whole incident is resolved) until it has been good
    for `stable`; then it leaves an active incident ("shrank"), or, when no member fails any
    more and all are verified, the incident resolves.
    Tracking numbers are `<PREFIX>-<YEAR>-<6 digits>`, numbered per year of the configured time
    zone, with one counter per year: a clock stepped back across new year goes on with that
    year's sequence instead of starting it again. `reserve` raises a counter to what the store
    has already issued, so a lost or older snapshot never issues a number twice.

Maintenance
    `set_maintenance(windows, now)` replaces the planned windows. Targets inside a window's
    scope show MAINTENANCE from start to end + grace; at that edge, those still down get the
    OVERRUN fault and correlate like outages, into OVERRUN incidents. The lines still down at the
    edge are remembered per window (`overran`) for as long as the window is: they are told of the
    overrun and then of the restoration, never that the work was completed.

Cost
    A step works on the targets that changed, never on every line (a reload excepted): timers
    are kept per time (faults that settle together wake together), line counts are carried up
    the topology once per device, and the regional root is found once per (kind, device) per
    round. So a cycle with 50,000 failing lines stays well under a second (bench/correlate.py).

Determinism
    Samples within one call are applied per target (the latest `at` wins, ties broken by
    content), statuses are judged after all samples are in, and groups are numbered in sorted
    order, so the order of samples inside a call never changes the result.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from monitord.model import (
    Incident,
    IncidentKind,
    LineState,
    MaintenanceWindow,
    NodeRef,
    Phase,
    Sample,
    Status,
    Topology,
)
from rules.checks import Check, RuleSet
from rules.config import RulesConfig
from rules.verdict import Verdict, device_status, feed_values, line_status, technology, verdict

Change = Literal[
    "opened", "grew", "shrank", "promoted", "merged", "recovering", "resolved", "reopened", "closed_removed", "severity"
]
SNAPSHOT_VERSION = 1

_OUTAGE, _DEGRADATION, _OVERRUN, _CPE = (k.value for k in IncidentKind)
_KINDS = (_OUTAGE, _DEGRADATION, _OVERRUN, _CPE)
_FAULT_CLASS = {
    Status.DOWN: _OUTAGE,
    Status.UNREACHABLE: _OUTAGE,
    Status.DEGRADED: _DEGRADATION,
    Status.CPE: _CPE,
}
_SEVERITIES = {_OUTAGE: _DEGRADATION, _DEGRADATION: _OUTAGE}  # a line's own incident moves between these
_UP = (Status.OK, Status.DEGRADED)
_SILENT = (Status.DOWN, Status.CPE)  # a line gone quiet: is its head-end still there?
_ACTIVE = (Phase.OPEN, Phase.UPDATED)
_ALONE: dict[str | None, frozenset[str]] = {
    None: frozenset(),
    **{kind: frozenset((kind,)) for kind in _KINDS},
    _CPE: frozenset((_CPE, _OUTAGE)),
}
_WORDS = {_OUTAGE: "down", _DEGRADATION: "degraded", _OVERRUN: "still down after maintenance", _CPE: "modem silent"}


@dataclass(frozen=True, slots=True)
class IncidentChange:
    incident: Incident
    change: Change
    added: frozenset[str] = frozenset()  # line ids
    removed: frozenset[str] = frozenset()
    replaces: tuple[str, ...] = ()  # tracking numbers merged into this incident
    merged_into: str | None = None  # "merged": the incident that absorbed this one
    was: IncidentKind | None = None  # "severity": the kind before


@dataclass(frozen=True, slots=True)
class Step:
    states: tuple[LineState, ...] = ()  # changed line and device states
    incidents: tuple[IncidentChange, ...] = ()
    recheck: tuple[str, ...] = ()  # device ids worth polling now


# Inside the engine a node is its string "level:id", and a line or device is its `_Target`.
Key = str


def _key(node: NodeRef) -> Key:
    return f"{node.level}:{node.id}"


def _node(key: Key) -> NodeRef:
    level, _, ident = key.partition(":")
    return NodeRef(level, ident)  # type: ignore[arg-type]


@dataclass(slots=True, eq=False)
class _Target:
    """A line or device: what its probes said, its checks, and where that leaves it. Compared
    and hashed as itself, so a step passes targets around rather than looking keys up."""

    key: Key
    chain: tuple[Key, ...]  # the nodes above it, farthest first (`Engine._chain`)
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    checks: dict[str, list[float | None]] = field(default_factory=dict)
    firing: tuple[str, ...] = ()  # reasons of the checks that fire
    check_due: float | None = None  # when a check could next fire or clear without a sample
    base: Status = Status.UNKNOWN
    status: Status = Status.UNKNOWN
    reasons: tuple[str, ...] = ("no data",)
    since: float = 0.0
    fault: str | None = None
    fault_since: float = 0.0
    overrun: bool = False
    last_fault: dict[str, float] = field(default_factory=dict)  # kind -> when it last ended
    counted: frozenset[str] = frozenset()
    incident: str | None = None
    up_since: float | None = None  # OK or DEGRADED since
    ok_since: float | None = None
    downs: int = 0  # a device's down samples since any of its probes last said up
    suspected: float | None = None  # since when one of a device's probes says down
    confirmed: float | None = None  # when a device's outage was confirmed by a second look


@dataclass(slots=True)
class _Incident:
    tracking: str
    kind: str
    root: Key
    phase: Phase
    opened_at: float
    updated_at: float
    members: set[Key]
    evidence: tuple[str, ...] = ()
    resolved_at: float | None = None
    failing: set[Key] = field(default_factory=set)  # members with the incident's fault
    waiting: set[Key] = field(default_factory=set)  # members not yet verified good for `stable`


@dataclass(slots=True)
class _Acc:
    """What happened to one incident during one step."""

    before: Phase | None
    added: set[Key] = field(default_factory=set)
    removed: set[Key] = field(default_factory=set)
    replaces: list[str] = field(default_factory=list)
    removed_from_topology: bool = False
    merged_into: str | None = None
    was: str | None = None  # the kind before a severity change in this step


class Engine:
    def __init__(self, topology: Topology, rules: RulesConfig, tracking_prefix: str, timezone: str = "UTC") -> None:
        self._rules = rules
        self._prefix = tracking_prefix
        self._tz = ZoneInfo(timezone)
        self._feeds: dict[str, tuple[tuple[str, Check], ...]] = {
            tech: tuple((f"{tech}/{check.name}", check) for check in rs.checks) for tech, rs in rules.technologies.items()
        }
        self._checks: dict[str, Check] = {name: check for feeds in self._feeds.values() for name, check in feeds}
        self._probes: dict[str, tuple[RuleSet, tuple[tuple[str, Check], ...]]] = {}
        self._targets: dict[Key, _Target] = {}
        self._incidents: dict[str, _Incident] = {}
        self._open: dict[tuple[str, Key], str] = {}  # unresolved incidents by (kind, root)
        self._closed: dict[tuple[str, Key], str] = {}  # resolved, still reopenable
        self._issued: dict[int, int] = {}  # year -> last sequence number issued
        self._windows: dict[str, MaintenanceWindow] = {}
        self._scopes: dict[str, frozenset[Key]] = {}
        self._expired: set[str] = set()
        self._overran: dict[str, frozenset[str]] = {}  # window id -> lines still down at its edge
        self._heap: list[float] = []  # the times timers are due at, each once
        self._timers: dict[float, list[tuple[str, str]]] = {}  # when -> ("t"|"m"|"i", key), in order set
        self._planned: dict[Key, float] = {}
        self._suspected: set[_Target] = set()  # devices whose first probe said down in this call
        self._index(topology)
        self._count_all()

    # --- public API ---------------------------------------------------------------------------

    def observe(self, samples: Iterable[Sample], now: float) -> Step:
        """Ingest one batch (e.g. one device poll)."""
        latest: dict[tuple[_Target, str], Sample] = {}
        for sample in samples:
            target = self._known(sample.target)
            if target is None:
                continue
            other = latest.get((target, sample.probe))
            if other is None or _order(sample) > _order(other):
                latest[target, sample.probe] = sample
        judge, wake = self._due(now)
        said: dict[_Target, list[str]] = {}  # what each device's probes said in this batch
        suspect: dict[_Target, bool] = {}  # and whether it was suspected before
        for (target, probe), sample in latest.items():
            is_device = target.key.startswith("device:")
            if is_device and target not in said:
                said[target], suspect[target] = [], _suspect(target)
            if self._apply(target, sample, probe, now):
                judge.add(target)
            if is_device:
                said[target].append(target.verdicts[probe][0])
        for device, verdicts in said.items():
            self._count_downs(device, verdicts, suspect[device], judge, now)
        return self._step(now, judge, wake)

    def tick(self, now: float) -> Step:
        """Let time pass: `for` holds, settle, stable and correlation windows, maintenance edges."""
        return self._step(now, *self._due(now))

    def set_maintenance(self, windows: Sequence[MaintenanceWindow], now: float) -> Step:
        """Replace the planned windows; the targets of windows that changed are judged again."""
        touched, wake = self._due(now)
        new = {w.id: w for w in windows}
        changed = {i for i in {*self._windows, *new} if self._windows.get(i) != new.get(i)}
        touched |= {t for i in changed if i in self._windows for t in self._targets.values() if self._in_scope(t, i)}
        self._windows = new
        self._scopes = {w.id: frozenset(_key(n) for n in w.scope) for w in new.values()}
        self._expired &= set(new)
        self._overran = {i: lines for i, lines in self._overran.items() if i in new}
        for window in sorted((new[i] for i in changed if i in new), key=lambda w: w.id):
            if window.end + window.grace <= now:
                self._expired.add(window.id)  # never seen open: nothing to suppress or overrun
            else:
                self._expired.discard(window.id)
                self._schedule(window.start, "m", window.id)
                self._schedule(window.end + window.grace, "m", window.id)
        touched |= {t for i in changed if i in new for t in self._targets.values() if self._in_scope(t, i)}
        return self._step(now, touched, wake)

    def set_topology(self, topology: Topology, now: float) -> Step:
        """Reload: removed lines leave their incidents; incidents left empty or rootless close."""
        _, wake = self._due(now)
        self._index(topology)
        accs: dict[str, _Acc] = {}
        for key in [k for k in self._targets if k not in self._chain]:
            target = self._targets.pop(key)
            if target.incident is not None:
                inc = self._incidents[target.incident]
                self._acc(accs, inc.tracking).removed.add(key)
                inc.members.discard(key)
                inc.failing.discard(key)
                inc.waiting.discard(key)
        for target in self._targets.values():
            target.chain = self._chain[target.key]
        for inc in [i for i in self._incidents.values() if i.phase is not Phase.RESOLVED]:
            if inc.root not in self._chain or not inc.members:
                acc = self._acc(accs, inc.tracking)
                acc.removed_from_topology = True
                acc.removed |= inc.members
                for key in inc.members:
                    self._targets[key].incident = None
                self._resolve(inc, now)
        self._count_all()
        targets = set(self._targets.values())
        return self._step(now, targets, wake & targets, accs)

    def overran(self) -> frozenset[str]:
        """Lines still down when a maintenance window in force closed."""
        return frozenset().union(*self._overran.values())

    def reserve(self, year: int, last: int) -> None:
        """Numbers up to `last` of `year` are taken (the store's record): never issue them."""
        self._issued[year] = max(self._issued.get(year, 0), last)

    def line_state(self, line_id: str) -> LineState:
        return self.node_state(NodeRef("line", line_id))

    def node_state(self, node: NodeRef) -> LineState:
        """Lines and devices as judged; cabinets, exchanges and regions from their incidents."""
        target = self._targets.get(_key(node))
        if target is not None:
            return LineState(node, target.status, target.since, target.reasons)
        if node.level in ("line", "device"):
            return LineState(node, Status.UNKNOWN, 0.0, ("no data",))
        rooted = [self._incidents[t] for (_, root), t in sorted(self._open.items()) if root == _key(node)]
        active = sorted((i for i in rooted if i.phase in _ACTIVE), key=lambda i: (i.kind == _DEGRADATION, i.opened_at))
        if not active:
            return LineState(node, Status.OK, 0.0)
        status = Status.DEGRADED if active[0].kind == _DEGRADATION else Status.DOWN
        return LineState(node, status, active[0].opened_at, active[0].evidence)

    def incidents(self) -> list[Incident]:
        """Unresolved incidents, in order of their tracking numbers."""
        return [self._public(self._incidents[t]) for t in sorted(self._open.values())]

    def incident(self, tracking: str) -> Incident | None:
        """Any incident still remembered: unresolved, or resolved within the reopen window."""
        inc = self._incidents.get(tracking)
        return None if inc is None else self._public(inc)

    def snapshot(self) -> dict[str, Any]:
        """All state, JSON-safe; the counts and qualifications follow from it and are rebuilt."""
        return {
            "version": SNAPSHOT_VERSION,
            "issued": {str(year): seq for year, seq in sorted(self._issued.items())},
            "expired": sorted(self._expired),
            "overran": {i: sorted(lines) for i, lines in sorted(self._overran.items())},
            "windows": [
                {
                    "id": w.id,
                    "scope": [_key(n) for n in w.scope],
                    "start": w.start,
                    "end": w.end,
                    "reason": w.reason,
                    "grace": w.grace,
                }
                for w in sorted(self._windows.values(), key=lambda w: w.id)
            ],
            "targets": [_dump_target(t) for t in self._targets.values()],
            "incidents": [_dump_incident(i) for i in self._incidents.values()],
            "timers": [[when, kind, key] for when in sorted(self._timers) for kind, key in self._timers[when]],
        }

    @classmethod
    def restore(
        cls,
        topology: Topology,
        rules: RulesConfig,
        tracking_prefix: str,
        snapshot: Mapping[str, Any],
        timezone: str = "UTC",
    ) -> Engine:
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported rules snapshot version {snapshot.get('version')!r}")
        engine = cls(topology, rules, tracking_prefix, timezone)
        if "issued" in snapshot:
            engine._issued = {int(year): int(seq) for year, seq in snapshot["issued"].items()}
        elif snapshot.get("year"):  # written before per-year counters
            engine._issued = {int(snapshot["year"]): int(snapshot["seq"])}
        engine._expired = set(snapshot["expired"])
        engine._overran = {i: frozenset(lines) for i, lines in snapshot.get("overran", {}).items()}
        windows = [
            MaintenanceWindow(w["id"], tuple(_node(n) for n in w["scope"]), w["start"], w["end"], w["reason"], w["grace"])
            for w in snapshot["windows"]
        ]
        engine._windows = {w.id: w for w in windows}
        engine._scopes = {w.id: frozenset(_key(n) for n in w.scope) for w in windows}
        for raw in snapshot["targets"]:
            chain = engine._chain.get(raw["key"])
            if chain is not None:
                target = _load_target(raw, chain)
                target.checks = {k: v for k, v in target.checks.items() if k in engine._checks}
                engine._refresh(target)
                engine._targets[target.key] = target
        for raw in snapshot["incidents"]:
            inc = _load_incident(raw)
            engine._incidents[inc.tracking] = inc
            index = engine._closed if inc.phase is Phase.RESOLVED else engine._open
            index[(inc.kind, inc.root)] = inc.tracking
        for when, kind, key in snapshot["timers"]:
            if kind == "t":
                engine._planned[key] = min(when, engine._planned.get(key, math.inf))
            engine._schedule(when, kind, key)
        engine._count_all()
        return engine

    # --- inventory indexes ---------------------------------------------------------------------

    def _index(self, topology: Topology) -> None:
        self._chain: dict[Key, tuple[Key, ...]] = {}  # ancestors, farthest first
        self._lines_of: dict[Key, list[Key]] = {}
        self._devices_under: dict[Key, list[Key]] = {}
        self._total: dict[Key, int] = {}  # lines behind each node
        for device_id in sorted(topology.devices):
            node = NodeRef("device", device_id)
            device = _key(node)
            chain = tuple(_key(n) for n in reversed(topology.ancestors(node)))
            for i, above in enumerate((*chain, device)):
                self._chain[above] = chain[:i]
                self._devices_under.setdefault(above, []).append(device)
                self._total.setdefault(above, 0)
            self._lines_of[device] = []
        for line in topology.lines.values():
            device = f"device:{line.device}"
            if device not in self._lines_of:
                continue
            key = f"line:{line.id}"
            self._chain[key] = chain = (*self._chain[device], device)
            self._lines_of[device].append(key)
            for above in chain:
                self._total[above] += 1

    def _count_all(self) -> None:
        """Rebuild the counts and qualifications, which follow from the targets and incidents."""
        self._behind: dict[str, dict[Key, set[_Target]]] = {kind: {} for kind in _KINDS}  # at each device
        self._count: dict[str, dict[Key, int]] = {kind: {} for kind in _KINDS}  # at each node
        self._devices_failing: dict[str, dict[Key, set[Key]]] = {kind: {} for kind in _KINDS}
        self._qualified: dict[str, set[Key]] = {kind: set() for kind in _KINDS}
        changed: dict[str, set[Key]] = {kind: set() for kind in _KINDS}
        for target in self._targets.values():
            target.counted = frozenset()
            self._recount(target, changed)
        self._requalify({kind: set(self._total) for kind in _KINDS})

    # --- one step ------------------------------------------------------------------------------

    def _due(self, now: float) -> tuple[set[_Target], set[_Target]]:
        """Pop the timers that are due. Returns the targets to judge again (a check is due, a
        maintenance edge) and those only to wake (settle, stable, correlation window)."""
        judge: set[_Target] = set()
        wake: set[_Target] = set()
        while self._heap and self._heap[0] <= now:
            when = heapq.heappop(self._heap)
            for kind, key in self._timers.pop(when):
                if kind == "t":
                    if self._planned.get(key) == when:
                        del self._planned[key]
                    target = self._targets.get(key)
                    if target is not None:
                        due = target.check_due is not None and target.check_due <= now
                        (judge if due else wake).add(target)
                elif kind == "m" and key in self._windows:
                    judge |= self._edge(self._windows[key], now)
                elif kind == "i":
                    self._forget(key, now)
        return judge, wake

    def _apply(self, target: _Target, sample: Sample, probe: str, now: float) -> bool:
        """Take one sample in; True when the target must be judged again. The cached answers of
        the checks are refreshed only when a check's own answer moved."""
        ruleset, feeds = self._probe(probe)
        judged = verdict(sample, ruleset)
        changed = target.verdicts.get(probe) != judged or target.status is Status.UNKNOWN
        target.verdicts[probe] = judged
        if feeds:
            values = feed_values(sample, judged)
            checks = target.checks
            stale = False
            for name, check in feeds:
                value = values.get(check.metric)
                if value is not None:
                    state = checks.get(name)
                    old = check.initial() if state is None else state
                    new = check.feed(old, value, now)
                    if new is not state:
                        checks[name] = new
                        stale = stale or check.firing(new) != check.firing(old) or check.due(new) != check.due(old)
            if stale:
                firing, due = target.firing, target.check_due
                self._refresh(target)
                changed = changed or firing != target.firing or due != target.check_due
        return changed

    def _count_downs(self, device: _Target, verdicts: list[str], was_suspect: bool, judge: set[_Target], now: float) -> None:
        """Keep a device's down samples since it last answered, whatever the order of one batch;
        a device newly suspected is rechecked with its exchange, one down and unconfirmed is judged."""
        device.downs = (0 if "up" in verdicts else device.downs) + verdicts.count("down")
        if not _suspect(device):
            device.suspected = None
        elif not was_suspect:
            device.suspected = now
            self._suspected.add(device)
        if "down" in verdicts and device.base is Status.DOWN and device.confirmed is None:
            judge.add(device)

    def _refresh(self, target: _Target) -> None:
        """Cache what the checks say, so judging a target does not have to ask them."""
        firing, due = [], []
        for name, state in target.checks.items():
            check = self._checks[name]
            reason = check.firing(state)
            if reason:
                firing.append(reason)
            when = check.due(state)
            if when is not None:
                due.append(when)
        target.firing = tuple(sorted(firing))
        target.check_due = min(due, default=None)

    def _step(self, now: float, judge: set[_Target], wake: set[_Target], accs: dict[str, _Acc] | None = None) -> Step:
        """Judge what changed, recount, correlate, advance the incidents, plan the next wake-ups."""
        accs = {} if accs is None else accs
        states: dict[Key, LineState] = {}
        recheck: set[str] = set()
        for device in sorted((t for t in judge if t.key.startswith("device:")), key=_by_key):
            was_down = device.base is Status.DOWN
            if self._judge(device, now, states):
                if was_down or device.confirmed is None:
                    recheck.add(device.key[7:])
                judge.update(self._target(line) for line in self._lines_of[device.key])
        for device in self._suspected:
            recheck.update(key[7:] for key in self._devices_under[self._area(device.key)])
        self._suspected.clear()
        touched = judge | wake
        changed: dict[str, set[Key]] = {kind: set() for kind in _KINDS}
        window = self._rules.correlation.window
        for target in touched:
            if target in judge and target.key.startswith("line:"):
                was = target.base
                self._judge(target, now, states)
                if target.base in _SILENT and was not in _SILENT:
                    recheck.add(target.chain[-1][7:])
            if target.last_fault:
                target.last_fault = {k: t for k, t in target.last_fault.items() if t + window > now}
            self._recount(target, changed)
            if target.incident is not None:
                inc = self._incidents[target.incident]
                if inc.root == target.key and inc.root.startswith("line:"):
                    self._follow(inc, target, now, accs)
                self._classify(inc, target, now)
                self._acc(accs, target.incident)
        reassess = set(touched)
        while reassess or any(changed.values()):
            touched |= self._correlate(now, reassess, changed, accs)
            changed = self._advance_all(now, accs)
            reassess = set()
        for target in touched:
            self._plan(target, now)
        changes = tuple(states[key] for key in sorted(states))  # "device:..." < "line:...", then by id
        return Step(changes, self._emit(now, accs), tuple(sorted(recheck)))

    def _judge(self, target: _Target, now: float, states: dict[Key, LineState]) -> bool:
        """Judge a target again; True when its down-ness changed (a device's lines follow)."""
        key = target.key
        if target.check_due is not None and target.check_due <= now:
            for name, state in target.checks.items():
                target.checks[name] = self._checks[name].elapse(state, now)
            self._refresh(target)
        if key.startswith("line:"):
            device = self._targets.get(target.chain[-1])
            down = device.key[7:] if device is not None and device.base is Status.DOWN else None
            base, reasons = line_status(target.verdicts, target.firing, down, device.verdicts if device else None)
        else:
            base, reasons = device_status(target.verdicts, target.firing)
            confirmed = base is Status.DOWN and target.downs > len(target.verdicts)
            target.confirmed = (target.confirmed or now) if confirmed else None
        was_down = target.base is Status.DOWN
        old_class = _FAULT_CLASS.get(target.base)
        fault_class = _FAULT_CLASS.get(base)
        same_fault = _same_fault(target, target.base, base)
        target.base = base
        if fault_class is not None and fault_class != old_class and not same_fault:
            target.fault_since = now
        if fault_class != _OUTAGE:
            target.overrun = False
        window = self._maintenance_of(target, now) if self._windows else None
        status = base
        if window is not None:
            status, reasons = Status.MAINTENANCE, (f"maintenance {window}", *reasons)
        old_fault = target.fault
        if window is not None or fault_class is None:
            target.fault = None
        else:
            target.fault = _OVERRUN if fault_class == _OUTAGE and target.overrun else fault_class
        if old_fault is not None and old_fault != target.fault:
            target.last_fault[old_fault] = now
        if status in _UP:
            target.up_since = now if target.up_since is None else target.up_since
        else:
            target.up_since = None
        if status is Status.OK:
            target.ok_since = now if target.ok_since is None else target.ok_since
        else:
            target.ok_since = None
        if status is not target.status or reasons != target.reasons:
            if status is not target.status:
                target.since = now
            target.status, target.reasons = status, reasons
            states[key] = LineState(_node(key), status, target.since, reasons)
        return was_down != (base is Status.DOWN)

    # --- correlation ---------------------------------------------------------------------------

    def _recount(self, target: _Target, changed: dict[str, set[Key]]) -> None:
        """Keep `_behind[kind][device]` = the device's lines with that fault now or within the
        correlation window (`_requalify` carries the counts up). A device is not counted: its own
        fault qualifies it by itself."""
        before = target.counted
        fault = target.fault
        if target.key.startswith("device:"):
            target.counted = _ALONE[fault]
            for kind in before ^ target.counted:
                changed[kind].add(target.key)
                for node in (*target.chain, target.key):
                    self._devices_failing[kind].setdefault(node, set()).symmetric_difference_update((target.key,))
            return
        if target.last_fault:
            counted = frozenset(target.last_fault)
            if fault is not None and fault not in counted:
                counted = counted | {fault}
            if _CPE in counted:
                counted = counted | {_OUTAGE}
        else:
            counted = _ALONE[fault]
        if counted == before:
            return
        device = target.chain[-1]
        for kind in before - counted:
            self._behind[kind][device].discard(target)
            changed[kind].add(device)
        for kind in counted - before:
            self._behind[kind].setdefault(device, set()).add(target)
            changed[kind].add(device)
        target.counted = counted

    def _qualifies(self, node: Key, kind: str) -> bool:
        if kind == _CPE:
            return False  # many silent modems are an outage, never a wider "cpe"
        if node.startswith("device:"):
            device = self._targets.get(node)
            if device is not None and device.fault == kind:
                return True
        total = self._total.get(node, 0)
        count = self._count[kind].get(node, 0)
        c = self._rules.correlation
        if (kind, node) in self._open:
            return total > 0 and count >= c.close_count and count >= c.close_fraction * total
        return total > 0 and count >= c.min_count and count >= c.min_fraction * total

    def _requalify(self, nodes: dict[str, set[Key]]) -> dict[str, list[Key]]:
        """Qualify these nodes again, and the nodes above a device whose count moved; returns
        those that flipped, per kind."""
        flipped: dict[str, list[Key]] = {}
        for kind, keys in nodes.items():
            qualified = self._qualified[kind]
            for node in self._carry(kind, keys):
                if self._qualifies(node, kind) != (node in qualified):
                    qualified ^= {node}
                    flipped.setdefault(kind, []).append(node)
        return flipped

    def _carry(self, kind: str, nodes: set[Key]) -> set[Key]:
        """Carry the changed devices' line counts up their chains (once per device, not once per
        line); returns `nodes` and the nodes above a count that moved."""
        counts, behind = self._count[kind], self._behind[kind]
        above: set[Key] = set()
        for device in nodes:
            if device.startswith("device:"):
                moved = len(behind.get(device, ())) - counts.get(device, 0)
                if moved:
                    for node in (*self._chain[device], device):
                        counts[node] = counts.get(node, 0) + moved
                    above.update(self._chain[device])
        return nodes | above

    def _root(
        self, target: _Target, now: float, roots: dict[tuple[str, Key], Key | None], near: dict[Key, float | None]
    ) -> tuple[str, Key] | None:
        """The (kind, root) a settled fault belongs to: the regional root of its device
        (`_regional`), or else the target itself. Only a new fault waits for `settle` (or its
        confirmation): a member failing again, or a device whose own node already roots an
        incident of its kind, is placed at once. A fault that would open a new incident (or move
        to one) waits while a device of its exchange was just suspected (`_suspects_near`). A
        line walks the same nodes as its device, so `roots` keeps each (kind, device) walk for
        the round, and `near` each device's suspects. A silent modem (`cpe`) joins an outage
        above it while that qualifies and stays in its own line's incident; else it becomes a
        `cpe` incident of its own after `cpe_hold`, or at once when it leaves an outage above it
        (the area is back, this modem is not: it may need switching off and on)."""
        kind = target.fault
        if kind is None:
            return None
        current = self._incidents[target.incident] if target.incident else None
        placed = (kind, target.key) in self._open or (current is not None and _fails(kind, current.kind))
        if not placed and now < self._settles_at(target):
            return None
        device = target.key if target.key.startswith("device:") else target.chain[-1]
        area = _OUTAGE if kind == _CPE else kind
        if (area, device) not in roots:
            roots[area, device] = self._regional(area, (*self._chain[device], device))
        regional = roots[area, device]
        if kind != _CPE:
            group = (kind, regional or target.key)
        elif regional is not None:
            group = (_OUTAGE, regional)
        elif current is not None and current.root == target.key and _fails(kind, current.kind):
            return current.kind, current.root
        elif (current is not None and current.kind == _OUTAGE) or now - target.fault_since >= self._rules.cpe_hold:
            group = (_CPE, target.key)
        else:
            return None
        root = group[1]
        moving = not placed or (current is not None and current.root != root and group not in self._open)
        if not moving:
            return group
        if device not in near:
            near[device] = self._suspects_near(device, now)
        until = near[device]
        if until is None:
            return group
        self._wake(target, until)
        return None

    def _settles_at(self, target: _Target) -> float:
        """When a fault may join an incident: after `settle`, or once a recheck confirmed the
        outage of its device (the target itself, or the device that made a line unreachable)."""
        at = target.fault_since + self._rules.settle
        if target.fault != _OUTAGE:
            return at
        is_device = target.key.startswith("device:")
        device = target if is_device else self._targets.get(target.chain[-1])
        if device is not None and device.confirmed is not None and (is_device or target.base is Status.UNREACHABLE):
            return min(at, max(device.confirmed, target.fault_since))
        return at

    def _suspects_near(self, device: Key, now: float) -> float | None:
        """Until when a new incident here waits: while another device of this one's exchange,
        suspected less than `gather` ago, is not yet settled (its recheck is about to answer)."""
        until = None
        for key in self._devices_under[self._area(device)]:
            other = self._targets.get(key)
            if key == device or other is None or other.suspected is None or other.incident is not None:
                continue
            ends = other.suspected + self._rules.gather
            if other.fault is not None:
                ends = min(ends, self._settles_at(other))
            if now < ends:
                until = ends if until is None else max(until, ends)
        return until

    def _area(self, key: Key) -> Key:
        """The exchange a node is in (itself for an exchange or a region): where siblings are rechecked."""
        if key.startswith(("exchange:", "region:")):
            return key
        chain = self._chain[key]
        return next((k for k in reversed(chain) if k.startswith("exchange:")), chain[-1] if chain else key)

    def _ready_around(self, kind: str, root: Key, tracking: str) -> set[_Target]:
        """The faults of this kind in the root's exchange not in its incident: a new incident takes
        those that are ready in the same step, so its first notice counts them."""
        devices = self._devices_under.get(self._area(root), ())
        found = set().union(*(self._behind[kind].get(d, ()) for d in devices))
        found.update(t for t in map(self._targets.get, devices) if t is not None)
        return {t for t in found if t.fault == kind and t.incident != tracking}

    def _regional(self, kind: str, chain: tuple[Key, ...]) -> Key | None:
        """The farthest qualifying node of `chain`, narrowed to the nearest qualifying node that
        still holds all the same failing lines and devices (one dead DSLAM is a DSLAM incident
        even when it is half its exchange)."""
        qualified = self._qualified[kind]
        for i, node in enumerate(chain):
            if node in qualified:
                held = self._held(node, kind)
                for nearer in chain[i + 1 :]:
                    if nearer in qualified and self._held(nearer, kind) == held:
                        node = nearer
                return node
        return None

    def _held(self, node: Key, kind: str) -> tuple[int, int]:
        return self._count[kind].get(node, 0), len(self._devices_failing[kind].get(node, ()))

    def _correlate(self, now: float, reassess: set[_Target], changed: dict[str, set[Key]], accs: dict[str, _Acc]) -> set[_Target]:
        """Requalify the nodes whose inputs changed and move settled faults to their roots, until
        nothing flips any more. Returns the targets that moved."""
        moved: set[_Target] = set()
        while reassess or any(changed.values()):
            for kind, nodes in self._requalify(changed).items():
                devices = {d for node in nodes for d in self._devices_under.get(node, ())}
                behind = set().union(*(self._behind[kind].get(d, ()) for d in devices))
                behind.update(t for t in map(self._targets.get, devices) if t is not None)
                reassess.update(t for t in behind if _fails(t.fault, kind))
            groups: dict[tuple[str, Key], list[_Target]] = {}
            roots: dict[tuple[str, Key], Key | None] = {}
            near: dict[Key, float | None] = {}
            for target in reassess:
                group = self._root(target, now, roots, near)
                if group is None:
                    continue
                kind, root = group
                if kind == _DEGRADATION:
                    group = (self._severity(target, root), root)
                current = self._incidents[target.incident] if target.incident else None
                own = current is not None and current.root == root == target.key and root.startswith("line:")
                if current is not None and own and current.kind in _SEVERITIES:
                    continue  # its own incident: `_follow` keeps the severity
                if current is None or (current.kind, current.root) != group:
                    groups.setdefault(group, []).append(target)
            changed, merged = self._move(groups, now, accs)
            moved.update(t for targets in groups.values() for t in targets)
            moved |= merged
            reassess = {self._targets[r] for _, r in groups if r.startswith("device:") and r in self._targets} - moved
            for kind, root in groups:
                tracking = self._open.get((kind, root))
                if tracking is not None and tracking in accs and accs[tracking].before is None:
                    reassess |= self._ready_around(kind, root, tracking)
        return moved

    def _move(
        self, groups: dict[tuple[str, Key], list[_Target]], now: float, accs: dict[str, _Acc]
    ) -> tuple[dict[str, set[Key]], set[_Target]]:
        """Put each group into its incident (found, reopened or new), then merge the incidents
        whose faults all went to one incident at or above their root ("promoted")."""
        requalify: dict[str, set[Key]] = {kind: set() for kind in _KINDS}
        merged: set[_Target] = set()
        sources: dict[str, set[str]] = {}
        for group in sorted(groups):
            inc = self._incident_for(group, now, accs)
            requalify[group[0]].add(group[1])
            acc = self._acc(accs, inc.tracking)
            for target in groups[group]:
                key = target.key
                if target.incident is not None:
                    old = self._incidents[target.incident]
                    old.members.discard(key)
                    old.failing.discard(key)
                    old.waiting.discard(key)
                    self._acc(accs, old.tracking).removed.add(key)
                    sources.setdefault(old.tracking, set()).add(inc.tracking)
                inc.members.add(key)
                acc.added.add(key)
                target.incident = inc.tracking
                self._classify(inc, target, now)
        for tracking in sorted(sources):
            old = self._incidents[tracking]
            if old.failing:
                continue
            heirs = sources[tracking]
            heir = self._incidents[min(heirs)] if len(heirs) == 1 else None
            if heir is not None and (heir.root == old.root or heir.root in self._chain[old.root]):
                for key in old.members:
                    target = self._targets[key]
                    merged.add(target)
                    heir.members.add(key)
                    target.incident = heir.tracking
                    self._classify(heir, target, now)
                heir_acc = self._acc(accs, heir.tracking)
                heir_acc.added |= old.members
                heir_acc.replaces.append(old.tracking)
                del self._open[(old.kind, old.root)]
                old_acc = accs[old.tracking]
                if old_acc.before is None:  # opened in this step: never announced, nothing to end
                    del accs[old.tracking], self._incidents[old.tracking]
                else:
                    in_heir = old.members | old_acc.removed
                    old.members = {k for k in in_heir if self._targets[k].incident == heir.tracking}
                    old_acc.added, old_acc.removed = set(), set()
                    old_acc.merged_into = heir.tracking
                    old.phase, old.resolved_at = Phase.RESOLVED, now
                    old.failing, old.waiting = set(), set()
                requalify[old.kind].add(old.root)
            elif not old.members:
                self._resolve(old, now)
                requalify[old.kind].add(old.root)
        for keys in requalify.values():
            keys -= {k for k in keys if k.startswith("line:")}
        return requalify, merged

    def _incident_for(self, group: tuple[str, Key], now: float, accs: dict[str, _Acc]) -> _Incident:
        """The unresolved incident of this (kind, root), the resolved one reopened, or a new one."""
        kind, root = group
        if root.startswith("line:") and kind in _SEVERITIES and group not in self._open and group not in self._closed:
            other = (_SEVERITIES[kind], root)
            sibling = self._open.get(other) or self._closed.get(other)
            if sibling is not None:
                self._rekey(self._incidents[sibling], kind, accs)
        tracking = self._open.get(group)
        if tracking is not None:
            return self._incidents[tracking]
        tracking = self._closed.pop(group, None)
        if tracking is not None:
            self._acc(accs, tracking)
            inc = self._incidents[tracking]
            inc.phase, inc.resolved_at, inc.members = Phase.UPDATED, None, set()
        else:
            tracking = self._number(now)
            inc = self._incidents[tracking] = _Incident(tracking, group[0], group[1], Phase.OPEN, now, now, set())
            accs[tracking] = _Acc(before=None)
        self._open[group] = tracking
        return inc

    # --- lifecycle -----------------------------------------------------------------------------

    def _severity(self, target: _Target, root: Key) -> str:
        """The kind a settled fault opens at `root`: a line's own incident opens as an outage when
        the line was down during this fault (it flaps), whatever it is at this instant."""
        if root == target.key and root.startswith("line:") and target.fault == _DEGRADATION and _OUTAGE in target.last_fault:
            return _OUTAGE
        return target.fault  # type: ignore[return-value]

    def _follow(self, inc: _Incident, target: _Target, now: float, accs: dict[str, _Acc]) -> None:
        """A line's own incident takes the line's severity: outage at once, degradation only once
        the line has been up for `stable` (a flapping line stays one outage)."""
        if inc.kind == _DEGRADATION and target.fault == _OUTAGE:
            self._rekey(inc, _OUTAGE, accs)
        elif (
            inc.kind == _OUTAGE
            and target.fault == _DEGRADATION
            and target.up_since is not None
            and now - target.up_since >= self._rules.stable
        ):
            self._rekey(inc, _DEGRADATION, accs)

    def _rekey(self, inc: _Incident, kind: str, accs: dict[str, _Acc]) -> None:
        """Change an incident's severity in place: same number, indexed under its new kind."""
        index = self._closed if inc.phase is Phase.RESOLVED else self._open
        if (kind, inc.root) in index:
            return
        acc = self._acc(accs, inc.tracking)
        acc.was = inc.kind if acc.was is None else acc.was
        del index[(inc.kind, inc.root)]
        inc.kind = kind
        index[(kind, inc.root)] = inc.tracking

    def _classify(self, inc: _Incident, target: _Target, now: float) -> None:
        """A member is failing (it has the incident's fault, or is its line, down or degraded),
        waiting, or verified good."""
        key = target.key
        inc.failing.discard(key)
        inc.waiting.discard(key)
        own = (
            key == inc.root
            and key.startswith("line:")
            and target.fault in _SEVERITIES
            and _SEVERITIES.get(inc.kind) == target.fault
        )
        if _fails(target.fault, inc.kind) or own:
            inc.failing.add(key)
            return
        since = target.ok_since if inc.kind == _DEGRADATION else target.up_since
        if since is None or now - since < self._rules.stable:
            inc.waiting.add(key)

    def _advance_all(self, now: float, accs: dict[str, _Acc]) -> dict[str, set[Key]]:
        """Move each touched incident along its lifecycle; returns the roots that resolved."""
        resolved: dict[str, set[Key]] = {kind: set() for kind in _KINDS}
        for tracking in sorted(accs):
            inc = self._incidents[tracking]
            if inc.phase is not Phase.RESOLVED and self._advance(inc, accs[tracking], now) and not inc.root.startswith("line:"):
                resolved[inc.kind].add(inc.root)
        return resolved

    def _advance(self, inc: _Incident, acc: _Acc, now: float) -> bool:
        """One lifecycle step for an unresolved incident; True when it resolved."""
        if inc.failing:
            verified = inc.members - inc.failing - inc.waiting
            for key in verified:
                self._targets[key].incident = None
            inc.members -= verified
            acc.removed |= verified
            if inc.phase is Phase.RECOVERING or (acc.before is not None and (acc.added or acc.removed or acc.replaces)):
                inc.phase = Phase.UPDATED
        elif inc.phase in _ACTIVE:
            inc.phase = Phase.RECOVERING
        if inc.phase is not Phase.RECOVERING or inc.waiting:
            return False
        for key in inc.members:
            self._targets[key].incident = None
        self._resolve(inc, now)
        return True

    def _resolve(self, inc: _Incident, now: float) -> None:
        inc.phase, inc.resolved_at = Phase.RESOLVED, now
        inc.failing, inc.waiting = set(), set()
        self._open.pop((inc.kind, inc.root), None)
        self._closed[(inc.kind, inc.root)] = inc.tracking
        self._schedule(now + self._rules.reopen_window, "i", inc.tracking)

    def _forget(self, tracking: str, now: float) -> None:
        inc = self._incidents.get(tracking)
        if inc is not None and inc.phase is Phase.RESOLVED and (inc.resolved_at or 0.0) + self._rules.reopen_window <= now:
            del self._incidents[tracking]
            if self._closed.get((inc.kind, inc.root)) == tracking:
                del self._closed[(inc.kind, inc.root)]

    def _emit(self, now: float, accs: dict[str, _Acc]) -> tuple[IncidentChange, ...]:
        changes = []
        for tracking in sorted(accs):
            acc, inc = accs[tracking], self._incidents[tracking]
            change = _change_of(acc, inc.phase, inc.kind)
            if change is None:
                continue
            inc.updated_at = now
            if acc.merged_into is not None:
                inc.evidence = (*inc.evidence, f"merged into {acc.merged_into}")
                del self._incidents[tracking]
            else:
                inc.evidence = self._evidence(inc)
            added, removed = acc.added - acc.removed, acc.removed - acc.added
            was = IncidentKind(acc.was) if acc.was is not None and acc.was != inc.kind else None
            changes.append(
                IncidentChange(
                    self._public(inc), change, _line_ids(added), _line_ids(removed), tuple(acc.replaces), acc.merged_into, was
                )
            )
        return tuple(changes)

    def _evidence(self, inc: _Incident) -> tuple[str, ...]:
        """Why the incident exists now: the root's own reasons, then what fails behind it."""
        evidence = []
        root = self._targets.get(inc.root)
        if root is not None and _fails(root.fault, inc.kind):
            evidence.append(f"{inc.root}: {'; '.join(root.reasons)}")
        if not inc.root.startswith("line:"):
            lines = sum(1 for k in inc.failing if k.startswith("line:"))
            devices = sorted(k[7:] for k in inc.failing if k.startswith("device:") and k != inc.root)
            evidence.append(f"{lines}/{self._total.get(inc.root, 0)} lines {_WORDS[inc.kind]} behind {inc.root}")
            if devices:
                more = f" and {len(devices) - 5} more" if len(devices) > 5 else ""
                evidence.append(f"devices {_WORDS[inc.kind]}: {', '.join(devices[:5])}{more}")
        return tuple(evidence)

    def _number(self, now: float) -> str:
        year = datetime.fromtimestamp(now, self._tz).year
        seq = self._issued[year] = self._issued.get(year, 0) + 1
        return f"{self._prefix}-{year}-{seq:06d}"

    def _public(self, inc: _Incident) -> Incident:
        return Incident(
            tracking=inc.tracking,
            kind=IncidentKind(inc.kind),
            root=_node(inc.root),
            phase=inc.phase,
            opened_at=inc.opened_at,
            updated_at=inc.updated_at,
            affected=_line_ids(inc.members),
            evidence=inc.evidence,
            resolved_at=inc.resolved_at,
        )

    # --- maintenance ---------------------------------------------------------------------------

    def _in_scope(self, target: _Target, window_id: str) -> bool:
        scope = self._scopes[window_id]
        return target.key in scope or any(above in scope for above in target.chain)

    def _maintenance_of(self, target: _Target, now: float) -> str | None:
        for window in sorted(self._windows.values(), key=lambda w: w.id):
            if window.start <= now < window.end + window.grace and self._in_scope(target, window.id):
                return window.id
        return None

    def _edge(self, window: MaintenanceWindow, now: float) -> set[_Target]:
        """A window starts or ends: judge its scope again; at the end, mark what is still down."""
        if window.id in self._expired or now < window.start:
            return set()
        scope = {target for target in self._targets.values() if self._in_scope(target, window.id)}
        if now >= window.end + window.grace:
            self._expired.add(window.id)
            for target in scope:
                target.overrun = _FAULT_CLASS.get(target.base) == _OUTAGE
            self._overran[window.id] = _line_ids(t.key for t in scope if t.overrun)
        return scope

    # --- helpers -------------------------------------------------------------------------------

    def _target(self, key: Key) -> _Target:
        target = self._targets.get(key)
        if target is None:
            target = self._targets[key] = _Target(key, self._chain[key])
        return target

    def _probe(self, probe: str) -> tuple[RuleSet, tuple[tuple[str, Check], ...]]:
        """The rule set that judges a probe's samples and the checks they feed (kept per probe)."""
        found = self._probes.get(probe)
        if found is None:
            tech = technology(probe)
            found = self._probes[probe] = (self._rules.ruleset(tech), self._feeds.get(tech, ()))
        return found

    def _known(self, node: NodeRef) -> _Target | None:
        """The target a sample is about, if it is a line or device of the topology."""
        key = _key(node)
        target = self._targets.get(key)
        if target is None and node.level in ("line", "device") and key in self._chain:
            target = self._target(key)
        return target

    def _acc(self, accs: dict[str, _Acc], tracking: str) -> _Acc:
        acc = accs.get(tracking)
        if acc is None:
            acc = accs[tracking] = _Acc(before=self._incidents[tracking].phase)
        return acc

    def _plan(self, target: _Target, now: float) -> None:
        """Wake this target at the next time it could change without a new sample."""
        times = [] if target.check_due is None else [target.check_due]
        if target.fault is not None:
            times += (target.fault_since + self._rules.settle, self._settles_at(target))
        if target.fault == _CPE:
            times.append(target.fault_since + self._rules.cpe_hold)
        if target.last_fault:
            window = self._rules.correlation.window
            times.extend(ended + window for ended in target.last_fault.values())
        if target.incident is not None:
            times.extend(t + self._rules.stable for t in (target.ok_since, target.up_since) if t is not None)
        self._wake(target, _earliest_after(times, now))

    def _wake(self, target: _Target, when: float) -> None:
        if when < self._planned.get(target.key, math.inf):
            self._planned[target.key] = when
            self._schedule(when, "t", target.key)

    def _schedule(self, when: float, kind: str, key: str) -> None:
        """Timers are kept per time: a batch of faults that settle together costs one heap entry."""
        timers = self._timers.get(when)
        if timers is None:
            timers = self._timers[when] = []
            heapq.heappush(self._heap, when)
        timers.append((kind, key))


def _change_of(acc: _Acc, phase: Phase, kind: str) -> Change | None:
    """The one change a step reports for an incident, from the phase it started in and the
    phase it ends in (h11-style: the whole table in one place)."""
    if acc.removed_from_topology:
        return "closed_removed"
    if acc.merged_into is not None:
        return "merged"
    if acc.before is None:
        return "promoted" if acc.replaces else "opened"
    if phase is Phase.RESOLVED:
        return None if acc.before is Phase.RESOLVED else "resolved"
    if acc.replaces:
        return "promoted"
    if acc.before in (Phase.RECOVERING, Phase.RESOLVED) and phase in _ACTIVE:
        return "reopened"
    if phase is Phase.RECOVERING and acc.before is not Phase.RECOVERING:
        return "recovering"
    if acc.was is not None and acc.was != kind:
        return "severity"
    if acc.added - acc.removed:
        return "grew"
    if acc.removed - acc.added:
        return "shrank"
    return None


def _fails(fault: str | None, kind: str) -> bool:
    """Whether a target with `fault` fails for an incident of `kind`: a silent modem leaves its
    customer without service, so it fails for an outage as well."""
    return fault == kind or (fault == _CPE and kind == _OUTAGE)


def _same_fault(target: _Target, old: Status, new: Status) -> bool:
    """A line of its own moving between down and degraded has one fault, not a new one: coming
    back degraded, or going down again after an outage that just ended (a flapping line). A line
    behind a dead device (UNREACHABLE) is not one of these."""
    if not target.key.startswith("line:"):
        return False
    if old is Status.DOWN:
        return new is Status.DEGRADED
    return old is Status.DEGRADED and new is Status.DOWN and _OUTAGE in target.last_fault


def _earliest_after(times: Iterable[float], now: float) -> float:
    """The earliest of `times` later than `now`, or infinity."""
    earliest = math.inf
    for when in times:
        if now < when < earliest:
            earliest = when
    return earliest


def _suspect(device: _Target) -> bool:
    """A device one of whose probes says down: it and its exchange are worth a second look."""
    return any(kind == "down" for kind, _ in device.verdicts.values())


def _by_key(target: _Target) -> Key:
    return target.key


def _line_ids(keys: Iterable[Key]) -> frozenset[str]:
    return frozenset(k[5:] for k in keys if k.startswith("line:"))


def _order(sample: Sample) -> tuple[Any, ...]:
    """Latest first; ties broken by content, so the order within a batch does not matter."""
    return (sample.at, sample.outcome.value, sorted(sample.values.items()), sample.detail)


def _dump_target(t: _Target) -> dict[str, Any]:
    return {
        "key": t.key,
        "verdicts": {probe: list(v) for probe, v in sorted(t.verdicts.items())},
        "checks": dict(sorted(t.checks.items())),
        "base": t.base.value,
        "status": t.status.value,
        "reasons": list(t.reasons),
        "since": t.since,
        "fault": t.fault,
        "fault_since": t.fault_since,
        "overrun": t.overrun,
        "last_fault": dict(sorted(t.last_fault.items())),
        "incident": t.incident,
        "up_since": t.up_since,
        "ok_since": t.ok_since,
        "downs": t.downs,
        "suspected": t.suspected,
        "confirmed": t.confirmed,
    }


def _load_target(raw: Mapping[str, Any], chain: tuple[Key, ...]) -> _Target:
    return _Target(
        key=raw["key"],
        chain=chain,
        verdicts={probe: (v[0], v[1]) for probe, v in raw["verdicts"].items()},
        checks={name: list(state) for name, state in raw["checks"].items()},
        base=Status(raw["base"]),
        status=Status(raw["status"]),
        reasons=tuple(raw["reasons"]),
        since=raw["since"],
        fault=raw["fault"],
        fault_since=raw["fault_since"],
        overrun=raw["overrun"],
        last_fault=dict(raw["last_fault"]),
        incident=raw["incident"],
        up_since=raw["up_since"],
        ok_since=raw["ok_since"],
        downs=raw.get("downs", 0),
        suspected=raw.get("suspected"),
        confirmed=raw.get("confirmed"),
    )


def _dump_incident(i: _Incident) -> dict[str, Any]:
    return {
        "tracking": i.tracking,
        "kind": i.kind,
        "root": i.root,
        "phase": i.phase.value,
        "opened_at": i.opened_at,
        "updated_at": i.updated_at,
        "members": sorted(i.members),
        "evidence": list(i.evidence),
        "resolved_at": i.resolved_at,
        "failing": sorted(i.failing),
        "waiting": sorted(i.waiting),
    }


def _load_incident(raw: Mapping[str, Any]) -> _Incident:
    return _Incident(
        tracking=raw["tracking"],
        kind=raw["kind"],
        root=raw["root"],
        phase=Phase(raw["phase"]),
        opened_at=raw["opened_at"],
        updated_at=raw["updated_at"],
        members=set(raw["members"]),
        evidence=tuple(raw["evidence"]),
        resolved_at=raw["resolved_at"],
        failing=set(raw["failing"]),
        waiting=set(raw["waiting"]),
    )
