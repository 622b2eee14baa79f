"""Per-target judging: what a line's or device's probes and checks say, and the fault it has.

Targets
    Lines and devices are *targets*. Each keeps the latest verdict per probe and the state of
    each check (rules/checks.py), and has a base status (rules/verdict.py): OK, DEGRADED, DOWN,
    UNREACHABLE (its device is down: the device is the outage, not its lines) or UNKNOWN. Inside
    a maintenance window (plus grace) the status shown is MAINTENANCE and no incident forms.
    A sample's probe names the rule set that judges it: "snmp:adsl" -> `technologies.adsl`,
    "icmp" -> `technologies.icmp`, so a device's profiles choose its lines' rules.

Faults
    A target's fault is the incident kind its status calls for: OUTAGE (DOWN, UNREACHABLE),
    DEGRADATION (DEGRADED), CPE (CPE) or OVERRUN (still down when a maintenance window closed).
    A fault that moves between down and degraded on a line of its own is one fault: it settles
    from when it began (`same_fault`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from monitord.model import IncidentKind, LineState, Sample, Status
from rules.checks import SHARED_IDS, Check, RuleSet, State
from rules.config import RulesConfig
from rules.nodes import LINE, NodeKey
from rules.verdict import Verdict, agent_missed, device_status, feed_values, line_status, technology, verdict


class Fault(enum.StrEnum):
    """A target's fault, and the kind of incident it makes: `IncidentKind` inside the engine.
    A str enum hashes in C, a plain one by a Python call; a step over 50,000 faults hashes kinds
    a few hundred thousand times."""

    OUTAGE = "outage"
    DEGRADATION = "degradation"
    OVERRUN = "overrun"
    CPE = "cpe"

    def kind(self) -> IncidentKind:
        return _KINDS[self]


_KINDS = {fault: IncidentKind(fault.value) for fault in Fault}  # tests/test_rules_engine.py checks the other way
OUTAGE, DEGRADATION, OVERRUN, CPE = Fault.OUTAGE, Fault.DEGRADATION, Fault.OVERRUN, Fault.CPE
FAULT_CLASS = {
    Status.DOWN: OUTAGE,
    Status.UNREACHABLE: OUTAGE,
    Status.DEGRADED: DEGRADATION,
    Status.CPE: CPE,
}
_UP = (Status.OK, Status.DEGRADED)
NEVER_FAILED: Mapping[Fault, float] = MappingProxyType({})  # one empty `last_fault` for every target that never failed
NO_VERDICTS: Mapping[str, Verdict] = MappingProxyType({})
NO_CHECKS: Mapping[str, State] = MappingProxyType({})
# Distinct sets of verdicts kept for sharing at most: they are few (the probes of a technology
# times the reasons they give), and the bound keeps odd reasons from piling up.
_VERDICT_SETS = 4096


@dataclass(slots=True, eq=False)
class Target:
    """A line or device: what its probes said, its checks, and where that leaves it. Compared
    and hashed as itself, so a step passes targets around rather than looking nodes up."""

    key: NodeKey
    chain: tuple[NodeKey, ...]  # the nodes above it, farthest first (`Inventory.chain`)
    # probe -> verdict and check name -> state: replaced, never changed in place, so targets
    # with equal ones share one mapping (`Judge.share_verdicts`, `Judge.share_checks`)
    verdicts: Mapping[str, Verdict] = field(default_factory=lambda: NO_VERDICTS)
    checks: Mapping[str, State] = field(default_factory=lambda: NO_CHECKS)
    firing: tuple[str, ...] = ()  # reasons of the checks that fire
    check_due: float | None = None  # when a check could next fire or clear without a sample
    base: Status = Status.UNKNOWN
    status: Status = Status.UNKNOWN
    reasons: tuple[str, ...] = ("no data",)
    since: float = 0.0
    fault: Fault | None = None
    fault_since: float = 0.0
    overrun: bool = False
    # kind -> when it last ended; replaced, never changed in place (most targets share NEVER_FAILED)
    last_fault: Mapping[Fault, float] = field(default_factory=lambda: NEVER_FAILED)
    counted: frozenset[Fault] = frozenset()
    incident: str | None = None
    up_since: float | None = None  # OK or DEGRADED since
    ok_since: float | None = None

    # What only a device keeps (`Device`): a line reads these, and saves 32 bytes without them.
    @property
    def downs(self) -> int:
        return 0

    @property
    def suspected(self) -> float | None:
        return None

    @property
    def confirmed(self) -> float | None:
        return None


@dataclass(slots=True, eq=False)
class Device(Target):
    """A device's target: it also counts its down samples, for a confirmed outage."""

    downs: int = 0  # down samples since any of its probes last said up
    suspected: float | None = None  # since when one of its probes says down
    confirmed: float | None = None  # when its outage was confirmed by a second look


class Judge:
    """The rule sets and checks, indexed for judging one target at a time.

    It also keeps one mapping per distinct set of verdicts, and per set of check states that
    are all shared tuples: 100,000 healthy lines then hold one of each between them rather
    than two dicts a line (about 500 bytes)."""

    def __init__(self, rules: RulesConfig) -> None:
        self._rules = rules
        self._feeds: dict[str, tuple[tuple[str, Check], ...]] = {
            tech: tuple((f"{tech}/{check.name}", check) for check in rs.checks) for tech, rs in rules.technologies.items()
        }
        self.checks: dict[str, Check] = {name: check for feeds in self._feeds.values() for name, check in feeds}
        self._probes: dict[str, tuple[RuleSet, tuple[tuple[str, Check], ...]]] = {}
        self._verdict_sets: dict[tuple[tuple[str, Verdict], ...], Mapping[str, Verdict]] = {}
        # keyed by the states' identities: only the shared tuples, which live as long as the module
        self._check_sets: dict[tuple[tuple[str, int], ...], Mapping[str, State]] = {}

    def share_verdicts(self, verdicts: dict[str, Verdict]) -> Mapping[str, Verdict]:
        """The one mapping kept for these verdicts (in this order), or `verdicts` itself."""
        key = tuple(verdicts.items())
        found = self._verdict_sets.get(key)
        if found is None and len(self._verdict_sets) < _VERDICT_SETS:
            found = self._verdict_sets[key] = verdicts
        return verdicts if found is None else found

    def share_checks(self, checks: dict[str, State]) -> Mapping[str, State]:
        """The one mapping kept for these states (in this order) when every one is a shared
        tuple, or `checks` itself."""
        ids = tuple(map(id, checks.values()))
        if not SHARED_IDS.issuperset(ids):
            return checks
        return self._check_sets.setdefault(tuple(zip(checks, ids)), checks)

    def apply(self, target: Target, sample: Sample, probe: str, now: float) -> bool:
        """Take one sample in; True when the target must be judged again. The cached answers of
        the checks are refreshed only when a check's own answer moved."""
        ruleset, feeds = self._probe(probe)
        judged = verdict(sample, ruleset)
        changed = target.verdicts.get(probe) != judged
        if changed:
            target.verdicts = self.share_verdicts({**target.verdicts, probe: judged})
        changed = changed or target.status is Status.UNKNOWN
        if feeds:
            values = {} if agent_missed(sample, target.verdicts) else feed_values(sample, judged)
            checks = target.checks
            fed: dict[str, State] | None = None  # the new states, once one differs
            stale = False
            for name, check in feeds:
                value = values.get(check.metric)
                if value is not None:
                    state = checks.get(name)
                    old = check.initial() if state is None else state
                    new = check.feed(old, value, now)
                    if new is not state:
                        if fed is None:
                            fed = dict(checks)
                        fed[name] = new
                        stale = stale or check.firing(new) != check.firing(old) or check.due(new) != check.due(old)
            if fed is not None:
                target.checks = self.share_checks(fed)
            if stale:
                firing, due = target.firing, target.check_due
                self.refresh(target)
                changed = changed or firing != target.firing or due != target.check_due
        return changed

    def refresh(self, target: Target) -> None:
        """Cache what the checks say, so judging a target does not have to ask them."""
        firing, due = [], []
        for name, state in target.checks.items():
            check = self.checks[name]
            reason = check.firing(state)
            if reason:
                firing.append(reason)
            when = check.due(state)
            if when is not None:
                due.append(when)
        target.firing = tuple(sorted(firing))
        target.check_due = min(due, default=None)

    def judge(self, target: Target, device: Target | None, window: str | None, now: float) -> tuple[bool, LineState | None]:
        """Judge a target again, a line with its `device`, inside maintenance `window` or none.
        Returns whether its down-ness changed (a device's lines follow) and its new state, if any."""
        if target.check_due is not None and target.check_due <= now:
            elapsed = {name: self.checks[name].elapse(state, now) for name, state in target.checks.items()}
            if any(elapsed[name] is not state for name, state in target.checks.items()):
                target.checks = self.share_checks(elapsed)
            self.refresh(target)
        if isinstance(target, Device):
            base, reasons = device_status(target.verdicts, target.firing)
            confirmed = base is Status.DOWN and target.downs > len(target.verdicts)
            target.confirmed = (target.confirmed or now) if confirmed else None
        else:
            down = device.key.id if device is not None and device.base is Status.DOWN else None
            base, reasons = line_status(target.verdicts, target.firing, down, device.verdicts if device else None)
        was_down = target.base is Status.DOWN
        old_class = FAULT_CLASS.get(target.base)
        fault_class = FAULT_CLASS.get(base)
        same = same_fault(target, target.base, base)
        target.base = base
        if fault_class is not None and fault_class != old_class and not same:
            target.fault_since = now
        if fault_class is not OUTAGE:
            target.overrun = False
        status = base
        if window is not None:
            status, reasons = Status.MAINTENANCE, (f"maintenance {window}", *reasons)
        old_fault = target.fault
        if window is not None or fault_class is None:
            target.fault = None
        else:
            target.fault = OVERRUN if fault_class is OUTAGE and target.overrun else fault_class
        if old_fault is not None and old_fault != target.fault:
            target.last_fault = {**target.last_fault, old_fault: now}
        if status in _UP:
            target.up_since = now if target.up_since is None else target.up_since
        else:
            target.up_since = None
        if status is Status.OK:
            target.ok_since = now if target.ok_since is None else target.ok_since
        else:
            target.ok_since = None
        told = None
        if status is not target.status or reasons != target.reasons:
            if status is not target.status:
                target.since = now
            target.status, target.reasons = status, reasons
            told = LineState(target.key.ref(), status, target.since, reasons)
        return was_down != (base is Status.DOWN), told

    def _probe(self, probe: str) -> tuple[RuleSet, tuple[tuple[str, Check], ...]]:
        """The rule set that judges a probe's samples and the checks they feed (kept per probe)."""
        found = self._probes.get(probe)
        if found is None:
            tech = technology(probe)
            found = self._probes[probe] = (self._rules.ruleset(tech), self._feeds.get(tech, ()))
        return found


def fails(fault: Fault | None, kind: Fault) -> bool:
    """Whether a target with `fault` fails for an incident of `kind`: a silent modem leaves its
    customer without service, so it fails for an outage as well."""
    return fault is kind or (fault is CPE and kind is OUTAGE)


def same_fault(target: Target, old: Status, new: Status) -> bool:
    """A line of its own moving between down and degraded has one fault, not a new one: coming
    back degraded, or going down again after an outage that just ended (a flapping line). A line
    behind a dead device (UNREACHABLE) is not one of these."""
    if target.key.level is not LINE:
        return False
    if old is Status.DOWN:
        return new is Status.DEGRADED
    return old is Status.DEGRADED and new is Status.DOWN and OUTAGE in target.last_fault


def suspect(device: Target) -> bool:
    """A device one of whose probes says down: it and its exchange are worth a second look."""
    return any(kind == "down" for kind, _ in device.verdicts.values())


def count_downs(device: Device, verdicts: list[str], was_suspect: bool, now: float) -> tuple[bool, bool]:
    """Keep a device's down samples since it last answered, whatever the order of one batch.
    Returns whether it is newly suspected (recheck it with its exchange) and whether it is down
    and unconfirmed (judge it again)."""
    device.downs = (0 if "up" in verdicts else device.downs) + verdicts.count("down")
    newly = False
    if not suspect(device):
        device.suspected = None
    elif not was_suspect:
        device.suspected = now
        newly = True
    return newly, "down" in verdicts and device.base is Status.DOWN and device.confirmed is None


def sample_order(sample: Sample) -> tuple[Any, ...]:
    """Latest first; ties broken by content, so the order within a batch does not matter."""
    return (sample.at, sample.outcome.value, sorted(sample.values.items()), sample.detail)
