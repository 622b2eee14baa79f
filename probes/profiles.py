"""Line profiles as data: which table columns to walk and how to turn their cells into metrics.

A profile (monitord/builtin/profiles/<name>.yaml, read by probes/profile_files.py) names numeric
OIDs, how each row index is parsed, how a row maps to an inventory line, and how raw values become
natural units. A vendor table needs a YAML file, not code. Decoding is pure; `poll_device` is the
only function here that does I/O.

    raw varbinds --decode()--> cells --RateTracker--> values --combine()--> rows per line key
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from monitord.model import Device, Line, NodeRef, Outcome, Sample
from probes.snmp import Oid, SnmpClient, Target, Varbind, format_oid

SYS_UPTIME: Oid = (1, 3, 6, 1, 2, 1, 1, 3, 0)

Kind = Literal["gauge", "counter"]
Combine = Literal["min", "max", "sum"]
Match = Literal["port", "mac", "device"]

INTEGER_TAGS = frozenset({2, 65, 66, 67, 70})
COUNTER_BITS = {65: 32, 70: 64}
COMBINE: dict[str, Callable[[list[float]], float]] = {"min": min, "max": max, "sum": sum}
AGGREGATE: dict[str, Callable[[list[float]], float]] = {"min": min, "max": max, "any_nonzero": lambda values: float(any(values))}
CONVERT = {"mw_to_dbm": lambda mw: 10 * math.log10(mw) if mw > 0 else None}


@dataclass(frozen=True, slots=True)
class IndexPart:
    """One piece of a row index: `port` (1 sub-id, the line key), `mac` (6 sub-ids, the line key),
    `row` (1 sub-id, not a key) or a label (1 sub-id named through `labels`, e.g. band)."""

    kind: Literal["port", "mac", "row", "label"]
    name: str = ""
    labels: Mapping[int, str] = field(default_factory=dict)

    @property
    def width(self) -> int:
        return 6 if self.kind == "mac" else 1


@dataclass(frozen=True, slots=True)
class Column:
    name: str  # metric name, may hold {label} placeholders
    oid: Oid
    kind: Kind = "gauge"
    scale: float = 1.0
    unavailable: frozenset[int] = frozenset()
    map: Mapping[int, float] | None = None
    convert: str | None = None
    combine: Combine | None = None  # when several rows fold into one line; default min / sum
    interval: str = "line"
    fallback: Oid | None = None  # a 32-bit counter to read where this (64-bit) one is not served

    @property
    def folding(self) -> Combine:
        return self.combine or ("sum" if self.kind == "counter" else "min")


@dataclass(frozen=True, slots=True)
class Table:
    index: tuple[IndexPart, ...]
    columns: tuple[Column, ...]
    key_oid: Oid | None = None  # a MAC column giving the line key of rows indexed by `row`
    join: bool = False  # only adds values to lines found in the other tables (e.g. ifOperStatus)


@dataclass(frozen=True, slots=True)
class Aggregate:
    """`name` = worst (`fn`) of the metrics in `of` that the row has, e.g. the worst band; or,
    with `any_nonzero`, 1 if any of them is not 0 and 0 if all are (DSL equipment out of sync
    reports 0 for margin, attenuation and rates rather than "no value")."""

    name: str
    fn: Literal["min", "max", "any_nonzero"]
    of: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    description: str
    match: Match
    tables: tuple[Table, ...]
    aggregates: tuple[Aggregate, ...] = ()
    max_repetitions: int = 25
    traps: Mapping[Oid, str] = field(default_factory=dict)  # vendor notification OID -> what it means

    def columns(self, intervals: Iterable[str] | None = None) -> tuple[Column, ...]:
        wanted = None if intervals is None else set(intervals)
        return tuple(column for table in self.tables for column in table.columns if wanted is None or column.interval in wanted)

    def walk_oids(self, intervals: Iterable[str] | None = None, *, fallbacks: bool = False) -> tuple[Oid, ...]:
        """The columns to walk, led by the MAC key column of each table that has one walked;
        with `fallbacks`, a column's fallback instead of the column where it has one."""
        walked = self.columns(intervals)
        oids = tuple((fallbacks and column.fallback) or column.oid for column in walked)
        keys = tuple(t.key_oid for t in self.tables if t.key_oid and any(c in walked for c in t.columns))
        return tuple(dict.fromkeys(keys + oids))

    @property
    def intervals(self) -> frozenset[str]:
        return frozenset(column.interval for column in self.columns())


class Cell(NamedTuple):
    """One decoded table cell in natural units (counters still raw, with their width in bits).

    A NamedTuple, not a frozen dataclass: one is built per value polled, and a frozen dataclass
    costs 0.67 µs to build where this costs about a third of that."""

    key: str
    name: str
    value: float
    column: Column
    ident: str  # the cell's OID, to follow a counter from poll to poll
    bits: int = 0


@dataclass(frozen=True, slots=True)
class Decoded:
    cells: tuple[Cell, ...]
    keys: frozenset[str]  # every line key with at least one row, even if all its values were unusable
    skipped: int  # cells of the wrong type, unparsable indexes, unmapped enum values
    served: bool  # the agent served some value of the profile's tables (joins aside)


# --- decoding (pure) -------------------------------------------------------------------------


def decode(profile: Profile, varbinds: Iterable[Varbind]) -> Decoded:
    """Raw varbinds of a walk -> cells keyed by line. Bad cells are counted, never raised."""
    by_oid = {column.oid: (table, column, format_oid(column.oid)) for table in profile.tables for column in table.columns}
    by_oid.update(
        {c.fallback: (t, c, format_oid(c.fallback)) for t in profile.tables for c in t.columns if c.fallback is not None}
    )
    key_tables = {table.key_oid: table for table in profile.tables if table.key_oid}
    lengths = sorted({len(oid) for oid in (*by_oid, *key_tables)}, reverse=True)
    row_keys: dict[tuple[Oid, Oid], str] = {}
    pending: list[tuple[Table, Column, str, Oid, Varbind]] = []  # the column's OID as text, formatted once
    registered = [*by_oid, *key_tables]
    final = {  # column prefixes that no longer one extends: a match on them needs no other look-up
        prefix
        for prefix in by_oid
        if prefix not in key_tables and not any(len(o) > len(prefix) and o[: len(prefix)] == prefix for o in registered)
    }
    skipped = 0
    same: Oid = ()  # the final prefix the previous varbind matched: walks answer a column in runs
    same_column: tuple[Table, Column, str] | None = None
    for varbind in varbinds:
        if same_column and varbind.oid[: len(same)] == same:
            pending.append((*same_column, varbind.oid[len(same) :], varbind))
            continue
        same_column = None
        for length in lengths:
            prefix = varbind.oid[:length]
            if prefix in key_tables:
                mac = _mac(varbind.value)
                if mac is None:
                    skipped += 1
                else:
                    row_keys[(prefix, varbind.oid[length:])] = mac
                break
            if prefix in by_oid:
                table, column, text = by_oid[prefix]
                pending.append((table, column, text, varbind.oid[length:], varbind))
                if prefix in final:
                    same, same_column = prefix, by_oid[prefix]
                break
    cells: list[Cell] = []
    keys: set[str] = set()
    rows: dict[tuple[int, Oid], tuple[str, dict[str, str]] | None] = {}  # each row's index parsed once
    for table, column, text, index, varbind in pending:
        row = (id(table), index)
        parsed = rows[row] if row in rows else rows.setdefault(row, parse_index(table.index, index))
        if parsed is None:
            skipped += 1
            continue
        key, labels = parsed
        if table.key_oid is not None:
            found = row_keys.get((table.key_oid, index))
            if found is None:
                skipped += 1
                continue
            key = found
        if not table.join:
            keys.add(key)
        if varbind.tag not in INTEGER_TAGS or not isinstance(varbind.value, int):
            skipped += 1
            continue
        if column.kind == "counter" and varbind.tag not in COUNTER_BITS:
            skipped += 1
            continue
        if varbind.value in column.unavailable:
            continue
        value = natural(column, varbind.value)
        if value is None:
            if column.map is not None:
                skipped += 1
            continue
        try:
            name = column.name.format_map(labels)
        except KeyError:
            skipped += 1
            continue
        ident = f"{text}.{format_oid(index)}" if index else text
        cells.append(Cell(key, name, value, column, ident, COUNTER_BITS.get(varbind.tag, 0)))
    served = bool(row_keys) or any(not table.join for table, *_ in pending)
    return Decoded(tuple(cells), frozenset(keys), skipped, served)


def parse_index(parts: tuple[IndexPart, ...], index: Oid) -> tuple[str, dict[str, str]] | None:
    """Row index sub-ids -> (line key, labels), or None if they do not fit the parts."""
    if len(index) != sum(part.width for part in parts):
        return None
    key = ""
    labels: dict[str, str] = {}
    position = 0
    for part in parts:
        ids = index[position : position + part.width]
        position += part.width
        if part.kind == "port":
            key = str(ids[0])
        elif part.kind == "mac":
            if any(i > 255 for i in ids):
                return None
            key = ":".join(f"{i:02x}" for i in ids)
        elif part.kind == "label":
            label = part.labels.get(ids[0])
            if label is None:
                return None
            labels[part.name] = label
    return key, labels


def natural(column: Column, raw: int) -> float | None:
    """A raw integer in the column's natural unit; None if it stands for "no value"."""
    if column.map is not None:
        return column.map.get(raw)
    if column.kind == "counter":
        return float(raw)
    value = raw * column.scale
    if column.convert:
        return CONVERT[column.convert](value)
    return value


def combine(profile: Profile, cells: Iterable[tuple[Cell, float]]) -> dict[str, dict[str, float]]:
    """(cell, final value) pairs -> metric values per line key, folded and aggregated."""
    gathered: dict[str, dict[str, tuple[Column, list[float]]]] = {}  # the first cell's column folds
    for cell, value in cells:
        row = gathered.get(cell.key)
        if row is None:
            row = gathered[cell.key] = {}
        found = row.get(cell.name)
        if found is None:
            row[cell.name] = (cell.column, [value])
        else:
            found[1].append(value)
    rows: dict[str, dict[str, float]] = {}
    for key, metrics in gathered.items():
        combined = {
            name: float(values[0] if len(values) == 1 else COMBINE[column.folding](values))
            for name, (column, values) in metrics.items()
        }
        for aggregate in profile.aggregates:
            present = [combined[name] for name in aggregate.of if name in combined]
            if present:
                combined[aggregate.name] = AGGREGATE[aggregate.fn](present)
        rows[key] = combined
    return rows


def _mac(value: Any) -> str | None:
    if isinstance(value, bytes) and len(value) == 6:
        return ":".join(f"{b:02x}" for b in value)
    return None


# --- counters ---------------------------------------------------------------------------------


class RateTracker:
    """Counters -> per-second rates, remembering the last reading of each cell per device.

    No clock inside: `now` comes from the caller. A counter that went down is a wrap if it is a
    Counter32 that fell by more than half its range, and a reset (no rate this time) otherwise.
    sysUpTime going backwards means the device restarted: all its counters start over.
    """

    def __init__(self) -> None:
        self._counters: dict[str, dict[str, tuple[int, float]]] = {}
        self._uptimes: dict[str, float] = {}

    def uptime(self, device: str, uptime_s: float) -> bool:
        """Record sysUpTime; True if it went backwards (a reboot), forgetting the device's counters."""
        previous = self._uptimes.get(device)
        self._uptimes[device] = uptime_s
        if previous is not None and uptime_s < previous:
            self._counters.pop(device, None)
            return True
        return False

    def rate(self, device: str, cell: str, value: int, bits: int, now: float) -> float | None:
        counters = self._counters.setdefault(device, {})
        previous = counters.get(cell)
        counters[cell] = (value, now)
        if previous is None or now <= previous[1]:
            return None
        last, then = previous
        delta = value - last
        if delta < 0:
            if bits != 32 or last - value <= 2**31:
                return None
            delta += 2**32
        return delta / (now - then)

    def forget(self, device: str) -> None:
        self._counters.pop(device, None)
        self._uptimes.pop(device, None)


# --- polling ----------------------------------------------------------------------------------


def line_key(profile: Profile, line: Line) -> str | None:
    """The key under which `profile` finds `line`'s row, or None if the line cannot match."""
    if profile.match == "port":
        return None if line.port is None else str(line.port)
    if profile.match == "mac":
        return line.mac.lower() if line.mac else None
    return ""


async def poll_device(
    client: SnmpClient,
    device: Device,
    profile: Profile,
    lines_by_key: Mapping[str, str],
    now: float,
    *,
    rates: RateTracker,
    intervals: Iterable[str] | None = None,
) -> list[Sample]:
    """One device sample (outcome, uptime_s) plus one sample per inventory line in `lines_by_key`.

    A device that does not answer yields only its own sample; its lines are judged through the
    topology. `intervals` limits the walk to some interval classes (e.g. {"optical"}). An agent
    that serves none of the walked columns has no such table (a wrong profile, not N missing
    rows): the device and every line get NO_TABLE with that reason. A column with a `fallback`
    is read through it over SNMPv1 (no Counter64) and wherever the agent serves none of it.
    """
    probe = f"snmp:{profile.name}"
    node = NodeRef("device", device.id)
    target = Target.of(device)
    answer = await client.get(target, [SYS_UPTIME])
    if answer.outcome is not Outcome.OK:
        return [Sample(node, probe, now, answer.outcome, detail=answer.detail)]
    notes = []
    values: dict[str, float] = {}
    for varbind in answer.varbinds:
        if varbind.tag == 67 and isinstance(varbind.value, int):
            values["uptime_s"] = varbind.value / 100
            if rates.uptime(device.id, values["uptime_s"]):
                notes.append("uptime went backwards: counters restarted")
    v1 = target.auth.version == "1"
    walk = await client.walk(target, profile.walk_oids(intervals, fallbacks=v1), profile.max_repetitions)
    if walk.outcome is not Outcome.OK:
        return [Sample(node, probe, now, walk.outcome, values, walk.detail)]
    varbinds = walk.varbinds
    fallen = [c for c in profile.columns(intervals) if c.fallback and (v1 or not _served(varbinds, c.oid))]
    names = ", ".join(sorted({c.name for c in fallen}))
    if fallen and not v1:
        extra = await client.walk(target, [c.fallback for c in fallen if c.fallback], profile.max_repetitions)
        if extra.outcome is Outcome.OK:
            varbinds += extra.varbinds
        else:
            notes.append(
                f"no 64-bit counters for {names}, and their 32-bit ones failed: {extra.outcome.value} {extra.detail}".rstrip()
            )
            fallen = []
    decoded = decode(profile, varbinds)
    if not decoded.served:
        detail = absent(profile, intervals)
        samples = [Sample(node, probe, now, Outcome.NO_TABLE, values, "; ".join([*notes, detail]))]
        samples += [Sample(NodeRef("line", line), probe, now, Outcome.NO_TABLE, detail=detail) for line in lines_by_key.values()]
        return samples
    if fallen:
        why = "SNMPv1 carries no 64-bit counters" if v1 else "no 64-bit counters on this agent"
        notes.append(f"{names} from 32-bit counters ({why})")
    final: list[tuple[Cell, float]] = []
    for cell in decoded.cells:
        if cell.column.kind == "counter":
            rate = rates.rate(device.id, cell.ident, int(cell.value), cell.bits, now)
            if rate is not None:
                final.append((cell, rate * cell.column.scale))
        else:
            final.append((cell, cell.value))
    rows = combine(profile, final)
    if decoded.skipped:
        notes.append(f"{decoded.skipped} cells skipped (wrong type or index)")
    if walk.detail:
        notes.append(walk.detail)
    samples = [Sample(node, probe, now, Outcome.OK, values, "; ".join(notes))]
    for key, line in lines_by_key.items():
        target_node = NodeRef("line", line)
        if key in decoded.keys:
            samples.append(Sample(target_node, probe, now, Outcome.OK, rows.get(key, {})))
        else:
            samples.append(Sample(target_node, probe, now, Outcome.NOT_FOUND, detail=f"no row {key!r}"))
    return samples


def absent(profile: Profile, intervals: Iterable[str] | None = None) -> str:
    """Why an agent that served none of the profile's columns is not N lines without a row."""
    wanted = profile.intervals if intervals is None else set(intervals)
    walked = (c.oid[:-1] for t in profile.tables if not t.join for c in t.columns if c.interval in wanted)
    tables = list(dict.fromkeys(map(format_oid, walked)))
    shown = ", ".join(tables[:2]) + (f" and {len(tables) - 2} more" if len(tables) > 2 else "")
    return f"profile {profile.name}: table{'s' if len(tables) > 1 else ''} {shown} absent on this agent (wrong profile?)"


def _served(varbinds: Iterable[Varbind], column: Oid) -> bool:
    """Whether any value lies under `column`; walks answer row by row, so a served column shows
    within the first few values and this stops there."""
    width = len(column)
    return any(varbind.oid[:width] == column for varbind in varbinds)
