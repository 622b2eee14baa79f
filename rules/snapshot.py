"""The engine's state as JSON-safe data, and back (format version 1).

Nodes are spelled "level:id", kinds and phases by their values, timers as [when, kind, key]
with `TimerKind` values; counts and qualifications are not saved, they follow from the rest.
Keys a snapshot may lack were added after version 1 shipped: `issued` (per-year counters; the
older `year` and `seq` are read), `overran`, and a target's `downs`, `suspected`, `confirmed`,
`muted` (only when true: its incident was closed by hand while it failed, `Book.close`).

Saved as rows (`Rows`), the same document comes in parts, so a step writes only what it changed:
one record per target (with its own wake-up times, `wake`, without its incident, which its
membership says), one per incident without its
members, one per incident member (`MemberRows`: whether it fails or waits, as bits), and the
`head` (numbering, maintenance, the other timers), small whatever the inventory. A step that
adds 48 lines to a 12,528-line incident writes 48 member rows, not the 12,528 again: the
members as last written (`State.saved_members`) are compared as sets, in C. `assemble` puts the
parts back into the document `load` reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from monitord.model import MaintenanceWindow, Phase, Status
from rules.checks import shared
from rules.judge import NEVER_FAILED, Device, Fault, Target
from rules.lifecycle import Tracked
from rules.nodes import DEVICE, NodeKey
from rules.state import State
from rules.timers import TimerKind

SNAPSHOT_VERSION = 1
MEMBER, FAILING, WAITING = 1, 2, 4  # a member row's bits: in `members`, `failing`, `waiting`
_KIND_ORDER = {TimerKind.TARGET.value: 0, TimerKind.WINDOW.value: 1, TimerKind.FORGET.value: 2}  # as `Timers.dump`


@dataclass(frozen=True, slots=True)
class Rows:
    """What changed since the rows were last written: the head (always whole), and records by
    target key and tracking number; None deletes the row. A target's record is made when it is
    read (`TargetRecords`), so take the rows before the engine steps again."""

    head: dict[str, Any]
    targets: Mapping[str, dict[str, Any] | None]
    incidents: dict[str, dict[str, Any] | None]  # a deleted incident's member rows go with it
    members: dict[str, MemberRows] = field(default_factory=dict)  # by tracking number


@dataclass(frozen=True, slots=True)
class MemberRows:
    """An incident's member rows to write: by node key, its bits (0 deletes the row); `whole`:
    these are all its rows, any other row it has is to delete (its rows as written are not known)."""

    whole: bool
    changed: dict[str, int]


class TargetRecords(Mapping[str, dict[str, Any] | None]):
    """The records of the changed targets by key, each made as it is read and then let go: a
    step that changed every line (a reload of the rules, the first polls after a start) would
    otherwise hold 100,000 records, about 2 KB each, at once while the store writes them. Nor
    are the keys spelled out until read: the store's writer thread reads them (a step that
    changed every line would spend a sixth of a second on the event loop naming them)."""

    __slots__ = ("_keys", "_named", "_s")

    def __init__(self, s: State, keys: set[NodeKey]) -> None:
        self._s = s
        self._keys = keys
        self._named: dict[str, NodeKey] | None = None  # made at the first lookup by name

    def record(self, key: NodeKey) -> dict[str, Any] | None:
        target = self._s.targets.get(key)
        if target is None:
            return None
        return {**_dump_target(target, with_incident=False), **_muted(self._s, key), "wake": self._s.timers.of(key)}

    def __getitem__(self, name: str) -> dict[str, Any] | None:
        if self._named is None:
            self._named = {str(key): key for key in self._keys}
        return self.record(self._named[name])

    def items(self) -> Iterator[tuple[str, dict[str, Any] | None]]:  # type: ignore[override]
        return ((str(key), self.record(key)) for key in self._keys)

    def __iter__(self) -> Iterator[str]:
        return (str(key) for key in self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def dump(s: State) -> dict[str, Any]:
    return {
        **_head(s, s.timers.dump()),
        "targets": [{**_dump_target(t), **_muted(s, t.key)} for t in s.targets.values()],
        "incidents": [_dump_incident(i) for i in s.book.incidents.values()],
    }


def rows(s: State) -> Rows:
    """The head and the records of the dirty targets and incidents, and the member rows of the
    dirty incidents that differ from those last written."""
    incidents: dict[str, dict[str, Any] | None] = {}
    members: dict[str, MemberRows] = {}
    for tracking in s.dirty_incidents:
        inc = s.book.incidents.get(tracking)
        if inc is None:
            incidents[tracking] = None
            continue
        incidents[tracking] = _dump_incident(inc, with_members=False)
        saved = s.saved_members.get(tracking)
        if saved is None:
            members[tracking] = MemberRows(True, _bits(inc, inc.members | inc.failing | inc.waiting))
            continue
        was_members, was_failing, was_waiting = saved
        changed = (inc.members ^ was_members) | (inc.failing ^ was_failing) | (inc.waiting ^ was_waiting)
        if changed:
            members[tracking] = MemberRows(False, _bits(inc, changed))
    return Rows(_head(s, s.timers.dump(targets=False)), TargetRecords(s, s.dirty | s.timers.changed), incidents, members)


def saved_members(inc: Tracked) -> tuple[frozenset[NodeKey], frozenset[NodeKey], frozenset[NodeKey]]:
    """An incident's member sets as the store now holds them (`State.saved_members`)."""
    return frozenset(inc.members), frozenset(inc.failing), frozenset(inc.waiting)


def _bits(inc: Tracked, keys: Iterable[NodeKey]) -> dict[str, int]:
    members, failing, waiting = inc.members, inc.failing, inc.waiting
    return {str(key): (key in members) * MEMBER | (key in failing) * FAILING | (key in waiting) * WAITING for key in keys}


def assemble(
    head: Mapping[str, Any],
    targets: Iterable[Mapping[str, Any]],
    incidents: Iterable[Mapping[str, Any]],
    members: Mapping[str, Iterable[tuple[str, int]]] | None = None,
) -> dict[str, Any]:
    """The document `load` reads, from saved rows: each target's wake-up times join the head's
    timers, each incident record without members takes its member rows (node key, bits) by
    tracking number, and each target's incident is the unresolved incident it is a member of
    (a target row does not hold it: 2,600 lines moving to a wider incident in one step write
    their member rows, not their records)."""
    members = members or {}
    records: list[Mapping[str, Any]] = []
    owner: dict[str, str] = {}
    for record in incidents:
        if "members" not in record:
            rows = list(members.get(record["tracking"], ()))
            record = {
                **record,
                **{
                    name: sorted(key for key, bits in rows if bits & bit)
                    for name, bit in (("members", MEMBER), ("failing", FAILING), ("waiting", WAITING))
                },
            }
        records.append(record)
        if record.get("phase") != Phase.RESOLVED.value:
            owner.update(dict.fromkeys(record.get("members", ()), record["tracking"]))
    saved: list[dict[str, Any]] = []
    timers = list(head["timers"])
    for record in targets:
        target = dict(record)
        target["incident"] = owner.get(target["key"])
        timers += [[when, TimerKind.TARGET.value, target["key"]] for when in target.pop("wake")]
        saved.append(target)
    timers.sort(key=lambda timer: (timer[0], _KIND_ORDER[timer[1]]))
    return {**head, "timers": timers, "targets": saved, "incidents": records}


def _head(s: State, timers: list[tuple[float, TimerKind, str]]) -> dict[str, Any]:
    return {
        "version": SNAPSHOT_VERSION,
        "issued": {str(year): seq for year, seq in sorted(s.book.issued.items())},
        "expired": sorted(s.maintenance.expired),
        "overran": {i: sorted(lines) for i, lines in sorted(s.maintenance.overran.items())},
        "windows": [
            {
                "id": w.id,
                "scope": [str(n) for n in w.scope],
                "start": w.start,
                "end": w.end,
                "reason": w.reason,
                "grace": w.grace,
            }
            for w in sorted(s.maintenance.windows.values(), key=lambda w: w.id)
        ],
        "timers": [[when, kind.value, key] for when, kind, key in timers],
    }


def load(s: State, snapshot: Mapping[str, Any]) -> set[NodeKey]:
    """Fill a new engine's state from a snapshot; targets no longer in the topology are dropped
    (returned). The caller rebuilds the counts."""
    if snapshot.get("version") != SNAPSHOT_VERSION:
        raise ValueError(f"unsupported rules snapshot version {snapshot.get('version')!r}")
    if "issued" in snapshot:
        s.book.issued = {int(year): int(seq) for year, seq in snapshot["issued"].items()}
    elif snapshot.get("year"):  # written before per-year counters
        s.book.issued = {int(snapshot["year"]): int(snapshot["seq"])}
    s.maintenance.set_windows(
        MaintenanceWindow(
            w["id"], tuple(NodeKey.parse(n).ref() for n in w["scope"]), w["start"], w["end"], w["reason"], w["grace"]
        )
        for w in snapshot["windows"]
    )
    s.maintenance.expired = set(snapshot["expired"])
    s.maintenance.overran = {i: frozenset(lines) for i, lines in snapshot.get("overran", {}).items()}
    dropped: set[NodeKey] = set()
    for raw in snapshot["targets"]:
        key = NodeKey.parse(raw["key"])
        chain = s.inventory.chain.get(key)
        if chain is None:
            dropped.add(key)
            continue
        target = _load_target(raw, s.inventory.own(key), chain)
        if raw.get("muted"):
            s.book.muted.add(target.key)
        target.verdicts = s.judge.share_verdicts({probe: (v[0], v[1]) for probe, v in raw["verdicts"].items()})
        target.checks = s.judge.share_checks({k: shared(tuple(v)) for k, v in raw["checks"].items() if k in s.judge.checks})
        s.judge.refresh(target)
        s.targets[key] = target
    for raw in snapshot["incidents"]:
        s.book.add(_load_incident(raw))
    for when, kind, key in snapshot["timers"]:
        if kind != TimerKind.TARGET.value or NodeKey.parse(key) not in dropped:  # a dropped target's row is deleted
            s.timers.load(when, TimerKind(kind), key)
    return dropped


def fingerprint(t: Target) -> tuple[Any, ...]:
    """What a target's row saves of it, cheap to compare: a step that leaves it unchanged
    writes no row (a reload judges every target again and changes few). Its incident is not
    in it: the incident's member rows hold it (`assemble`)."""
    return (
        tuple(t.verdicts.items()),
        tuple(t.checks.values()),  # by value: a check may return a new state equal to the old one
        t.base,
        t.status,
        t.reasons,
        t.since,
        t.fault,
        t.fault_since,
        t.overrun,
        tuple(t.last_fault.items()),
        t.up_since,
        t.ok_since,
        t.downs,
        t.suspected,
        t.confirmed,
    )


def _muted(s: State, key: NodeKey) -> dict[str, bool]:
    """`muted` in a target's record only when it is (`Book.muted`): most never are."""
    return {"muted": True} if key in s.book.muted else {}


def _dump_target(t: Target, with_incident: bool = True) -> dict[str, Any]:
    record = {
        "key": str(t.key),
        "verdicts": {probe: list(v) for probe, v in sorted(t.verdicts.items())},
        "checks": {name: list(state) for name, state in sorted(t.checks.items())},
        "base": t.base.value,
        "status": t.status.value,
        "reasons": list(t.reasons),
        "since": t.since,
        "fault": None if t.fault is None else t.fault.value,
        "fault_since": t.fault_since,
        "overrun": t.overrun,
        "last_fault": dict(sorted((kind.value, at) for kind, at in t.last_fault.items())),
        "up_since": t.up_since,
        "ok_since": t.ok_since,
        "downs": t.downs,
        "suspected": t.suspected,
        "confirmed": t.confirmed,
    }
    if with_incident:
        record["incident"] = t.incident
    return record


def _load_target(raw: Mapping[str, Any], key: NodeKey, chain: tuple[NodeKey, ...]) -> Target:
    """All but the verdicts and checks, which the judge shares (`load`)."""
    target = Device(key, chain) if key.level is DEVICE else Target(key, chain)
    target.base = Status(raw["base"])
    target.status = Status(raw["status"])
    target.reasons = tuple(raw["reasons"])
    target.since = raw["since"]
    target.fault = None if raw["fault"] is None else Fault(raw["fault"])
    target.fault_since = raw["fault_since"]
    target.overrun = raw["overrun"]
    target.last_fault = {Fault(kind): at for kind, at in raw["last_fault"].items()} or NEVER_FAILED
    target.incident = raw["incident"]
    target.up_since = raw["up_since"]
    target.ok_since = raw["ok_since"]
    if isinstance(target, Device):
        target.downs = raw.get("downs", 0)
        target.suspected = raw.get("suspected")
        target.confirmed = raw.get("confirmed")
    return target


def _dump_incident(i: Tracked, with_members: bool = True) -> dict[str, Any]:
    record = {
        "tracking": i.tracking,
        "kind": i.kind.value,
        "root": str(i.root),
        "phase": i.phase.value,
        "opened_at": i.opened_at,
        "updated_at": i.updated_at,
        "evidence": list(i.evidence),
        "resolved_at": i.resolved_at,
    }
    if with_members:
        record["members"] = sorted(str(k) for k in i.members)
        record["failing"] = sorted(str(k) for k in i.failing)
        record["waiting"] = sorted(str(k) for k in i.waiting)
    return record


def _load_incident(raw: Mapping[str, Any]) -> Tracked:
    return Tracked(
        tracking=raw["tracking"],
        kind=Fault(raw["kind"]),
        root=NodeKey.parse(raw["root"]),
        phase=Phase(raw["phase"]),
        opened_at=raw["opened_at"],
        updated_at=raw["updated_at"],
        members={NodeKey.parse(k) for k in raw["members"]},
        evidence=tuple(raw["evidence"]),
        resolved_at=raw["resolved_at"],
        failing={NodeKey.parse(k) for k in raw["failing"]},
        waiting={NodeKey.parse(k) for k in raw["waiting"]},
    )
