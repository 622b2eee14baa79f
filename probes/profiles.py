"""Line profiles as data: which table columns to walk and how to turn their cells into metrics.

A profile (monitord/builtin/profiles/<name>.yaml, read by probes/profile_files.py) names numeric
OIDs, how each row index is parsed, how a row maps to an inventory line, and how raw values become
natural units. A vendor table needs a YAML file, not code. Decoding is pure; `poll_device` is the
only function here that does I/O.

    a walk's Cells --decode_cells()--> a Run per column --RateTracker--> rates --combine()--> rows per line key

No object is built per value between the walk and the per-line Sample but the values: the walk
decodes in C into a column's cells as parallel lists, a Run holds them so, a column whose cells
all fit is taken whole, and the rate state is arrays per device and column, its arithmetic in C
(issue 11 items 2, 5).

Longer than 500 lines because decoding's fast paths rely on the profile model's invariants and
`poll_device` is their one caller: the model, the decoding and the poll read best together.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Literal, NamedTuple

from monitord.model import Device, Line, NodeRef, Outcome, Sample
from probes.ber import RANGES, Cells, Value
from probes.history import get_rows
from probes.rates import RateTracker
from probes.snmp import Oid, SnmpClient, Varbind, format_oid
from probes.snmpbase import Target

SYS_UPTIME: Oid = (1, 3, 6, 1, 2, 1, 1, 3, 0)

Kind = Literal["gauge", "counter"]
Combine = Literal["min", "max", "sum"]
Match = Literal["port", "mac", "serial", "device"]

INTEGER_TAGS = frozenset({2, 65, 66, 67, 70})
COUNTER_BITS = {65: 32, 70: 64}
MAX_COUNTER = 2**64 - 1  # what probes/ber.py lets through; rate state keeps counters in 64 bits
COMBINE: dict[str, Callable[[list[float]], float]] = {"min": min, "max": max, "sum": sum}
AGGREGATE: dict[str, Callable[[list[float]], float]] = {"min": min, "max": max, "any_nonzero": lambda values: float(any(values))}
CONVERT = {"mw_to_dbm": lambda mw: 10 * math.log10(mw) if mw > 0 else None}
TEXT_UNITS: dict[str, Callable[[float], float | None]] = {
    # the unit of the number a text pattern finds -> the metric's natural unit (power in dBm)
    "dBm": lambda x: x,
    "0.1 dBm": lambda x: x * 0.1,
    "0.01 dBm": lambda x: x * 0.01,
    "mW": CONVERT["mw_to_dbm"],
    "uW": lambda x: CONVERT["mw_to_dbm"](x / 1000),
    "dB": lambda x: x,
    "0.1 dB": lambda x: x * 0.1,
    "1": lambda x: x,
}


@dataclass(frozen=True, slots=True)
class TextNumber:
    """A number inside a text cell (OCTET STRING): the first match of `pattern`'s one group, in
    `unit` (a key of TEXT_UNITS), e.g. `0.03 mW (-14.61 dBm)` with `\\((-?[0-9.]+) dBm\\)` and dBm."""

    pattern: str
    unit: str


@dataclass(frozen=True, slots=True)
class IndexPart:
    """One piece of a row index: `port` (1 sub-id, the line key), `mac` (6 sub-ids, the line key),
    `serial` (a length-prefixed text such as an ONU's serial number, the line key), `row` (1
    sub-id, not a key) or a label (1 sub-id named through `labels`, e.g. band)."""

    kind: Literal["port", "mac", "serial", "row", "label"]
    name: str = ""
    labels: Mapping[int, str] = field(default_factory=dict)

    @property
    def width(self) -> int:
        """Sub-ids taken; a serial's are its length's one and then as many as it says."""
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
    bits: frozenset[int] | None = None  # a BITS cell (OCTET STRING): 1 if any of these bits is set, else 0
    text: TextNumber | None = None  # a number read out of a text cell
    served_as: Literal["octets", "text"] | None = None  # a 64-bit counter in an OCTET STRING: big-endian octets or decimal text

    @property
    def folding(self) -> Combine:
        return self.combine or ("sum" if self.kind == "counter" else "min")


@dataclass(frozen=True, slots=True)
class Table:
    index: tuple[IndexPart, ...]
    columns: tuple[Column, ...]
    key_oid: Oid | None = None  # a MAC column giving the line key of rows indexed by `row`
    join: bool = False  # only adds values to lines found in the other tables (e.g. ifOperStatus)
    get: int | None = None  # a history table indexed port.N: only row N of each polled line, by GET, never walked
    skip_rows: tuple[Oid, frozenset[int]] | None = None  # (column, values): a row whose cell there reads one gives no value


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
        got = {column.oid for table in self.tables if table.get is not None for column in table.columns}
        walked = tuple(column for column in self.columns(intervals) if column.oid not in got)
        oids = tuple((fallbacks and column.fallback) or column.oid for column in walked)
        keys = tuple(t.key_oid for t in self.tables if t.key_oid and any(c in walked for c in t.columns))
        return tuple(dict.fromkeys(keys + oids))

    @property
    def intervals(self) -> frozenset[str]:
        return frozenset(column.interval for column in self.columns())


class Run(NamedTuple):
    """The usable cells of one walked column, in walk order, as parallel lists: no object per
    value. `values` are natural units (counters raw and exact, each `bits` wide: 32 or 64); after
    rates, `poll_device` replaces them with per-second rates, None where there is none yet.

    A NamedTuple: built once per column and poll, read field by field in the hot loops."""

    column: Column
    prefix: Oid  # the OID walked: the column's, or its fallback's
    keys: list[str]
    names: list[str]
    indexes: list[Oid]  # one tuple per row, shared by every column of the row
    values: Sequence[float | None]
    bits: bytes


@dataclass(frozen=True, slots=True)
class Decoded:
    runs: tuple[Run, ...]  # in the order their columns first appear in the walk
    keys: frozenset[str]  # every line key with at least one row, even if all its values were unusable
    skipped: int  # cells of the wrong type, unparsable indexes, unmapped enum values
    served: bool  # the agent served some value of the profile's tables (joins aside)


# --- decoding (pure) -------------------------------------------------------------------------


def decode(profile: Profile, varbinds: Iterable[Varbind]) -> Decoded:
    """Varbinds one by one (a GET's) -> `decode_cells` of them."""
    return decode_cells(profile, cells_of(profile, varbinds))


def cells_of(profile: Profile, varbinds: Iterable[Varbind]) -> list[Cells]:
    """Varbinds one by one -> Cells grouped under the profile's column (or key column) OIDs,
    the longest that names each; varbinds under none are left out."""
    registered = {c.oid for t in profile.tables for c in t.columns}
    registered |= {c.fallback for t in profile.tables for c in t.columns if c.fallback is not None}
    registered |= {t.key_oid for t in profile.tables if t.key_oid}
    lengths = sorted({len(oid) for oid in registered}, reverse=True)
    grouped: dict[Oid, tuple[list[Oid], bytearray, list[Value]]] = {}
    for oid, tag, value in varbinds:
        prefix = next((oid[:length] for length in lengths if oid[:length] in registered), None)
        if prefix is not None:
            bounds = RANGES.get(tag)
            if bounds is not None and not (isinstance(value, int) and bounds[0] <= value <= bounds[1]):
                tag = 0  # not a value of its type: a cell of no usable type, as `Cells` promises
            indexes, tags, values = grouped.get(prefix) or grouped.setdefault(prefix, ([], bytearray(), []))
            indexes.append(oid[len(prefix) :])
            tags.append(tag)
            values.append(value)
    return [Cells(prefix, indexes, bytes(tags), values) for prefix, (indexes, tags, values) in grouped.items()]


def decode_cells(profile: Profile, walked: Iterable[Cells]) -> Decoded:
    """A walk's cells -> usable cells keyed by line, column by column. Bad cells are counted, never raised.

    Each row's index is parsed once per table, and a column whose cells all fit (the usual case)
    is taken whole: the rows of the column before (the walk shares one index tuple per row), a
    check of its tags over their bytes, its values as they came (converted, for gauges). The
    others go cell by cell.
    """
    by_oid = {column.oid: (table, column) for table in profile.tables for column in table.columns}
    by_oid.update({c.fallback: (t, c) for t in profile.tables for c in t.columns if c.fallback is not None})
    key_tables = {table.key_oid: table for table in profile.tables if table.key_oid}
    row_keys: dict[tuple[Oid, Oid], str] = {}
    skipped = 0
    columns = []
    for cells in walked:
        if cells.prefix in key_tables:
            for index, value in zip(cells.indexes, cells.values):
                mac = _mac(value)
                if mac is None:
                    skipped += 1
                else:
                    row_keys[(cells.prefix, index)] = mac
        elif cells.prefix in by_oid:
            columns.append(cells)
    keys: set[str] = set()
    tables: dict[int, _TableRows] = {}
    runs: list[Run] = []
    for cells in columns:
        table, column = by_oid[cells.prefix]
        rows = tables.get(id(table)) or tables.setdefault(id(table), _TableRows(table, row_keys, keys))
        found = rows.of(cells.indexes)
        counter = column.kind == "counter"
        accepted = COUNTER_TAGS if counter else OCTET_STRING_TAGS if column.bits or column.text else INTEGER_TAG_OCTETS
        values: list[Any] = cells.values
        if (
            found.complete
            and not column.served_as
            and not column.unavailable
            and "{" not in column.name
            and not cells.tags.translate(None, accepted)
        ):
            if not counter:
                values = list(map(_converter(column), values))
            if None not in values:
                bits = cells.tags.translate(BITS) if counter else b""
                runs.append(Run(column, cells.prefix, found.keys, [column.name] * len(values), cells.indexes, values, bits))
                continue
        run, unusable = _cell_by_cell(column, cells, found.rows)
        skipped += unusable
        if run.keys:
            runs.append(run)
    served = bool(row_keys) or any(not by_oid[cells.prefix][0].join for cells in columns)
    return Decoded(tuple(runs), frozenset(keys), skipped, served)


COUNTER_TAGS = bytes(COUNTER_BITS)
INTEGER_TAG_OCTETS = bytes(sorted(INTEGER_TAGS))
OCTET_STRING = 4
OCTET_STRING_TAGS = bytes([OCTET_STRING])
BITS = bytes(COUNTER_BITS.get(tag, 0) for tag in range(256))  # a counter's tag -> its width, for bytes.translate


class _Found(NamedTuple):
    rows: list[tuple[str, dict[str, str]] | None]  # per cell: (line key, labels), None if unusable
    keys: list[str]  # per cell, where `complete`
    complete: bool


class _TableRows:
    """The rows of one table in one decode: each index parsed once (`_parsed` keeps them across
    decodes); the cells of a column with the same index list as the column before (a walk's
    columns, mostly) take its rows whole."""

    def __init__(self, table: Table, row_keys: Mapping[tuple[Oid, Oid], str], keys: set[str]) -> None:
        self.table = table
        self.row_keys = row_keys
        self.keys = keys
        self.parsed = _parsed(table.index)
        self.last: tuple[list[Oid], _Found] | None = None

    def of(self, indexes: list[Oid]) -> _Found:
        if self.last is not None and self.last[0] == indexes:  # the same tuples: compared by identity
            return self.last[1]
        parsed, parts = self.parsed, self.table.index
        found = [parsed.get(index, MISSING) for index in indexes]
        if MISSING in found:
            for at, index in enumerate(indexes):
                if found[at] is MISSING:
                    found[at] = parsed[index] = parse_index(parts, index)
        key_oid = self.table.key_oid
        if key_oid is not None:  # the line key is a MAC from the key column, by the same index
            keyed = ((row, self.row_keys.get((key_oid, index))) for row, index in zip(found, indexes))
            found = [None if row is None or key is None else (key, row[1]) for row, key in keyed]
        complete = None not in found
        keys = [row[0] for row in found if row is not None]
        if not self.table.join:
            self.keys.update(keys)
        result = _Found(found, keys if complete else [], complete)
        self.last = (indexes, result)
        return result


MISSING: Any = object()
MAX_PARSED = 2**16
_PARSED: dict[tuple[tuple[str, str, tuple[tuple[int, str], ...]], ...], dict[Oid, tuple[str, dict[str, str]] | None]] = {}
"""Parsed row indexes per index layout, across decodes: DSLAMs share their port numbers, so
this stays small; MAC-indexed rows are per device, so each layout's entries are bounded."""


def _parsed(parts: tuple[IndexPart, ...]) -> dict[Oid, tuple[str, dict[str, str]] | None]:
    layout = tuple((part.kind, part.name, tuple(part.labels.items())) for part in parts)
    found = _PARSED.get(layout)
    if found is None or len(found) > MAX_PARSED:
        found = _PARSED[layout] = {}
    return found


def _cell_by_cell(column: Column, cells: Cells, rows: list[tuple[str, dict[str, str]] | None]) -> tuple[Run, int]:
    """A column's usable cells, one by one, and how many were unusable: the cells of a row that
    does not fit, of a wrong type, unmapped or unlabelled."""
    counter = column.kind == "counter"
    tags = COUNTER_BITS if counter else INTEGER_TAGS
    octets = bool(column.bits) or column.text is not None or column.served_as is not None
    convert = _converter(column)
    labelled = "{" in column.name
    skipped = 0
    run = Run(column, cells.prefix, [], [], [], [], b"")
    values: list[float | None] = []
    bits = bytearray()
    for row, index, tag, raw in zip(rows, cells.indexes, cells.tags, cells.values):
        if row is None:
            skipped += 1
            continue
        if octets:
            if tag != OCTET_STRING or not isinstance(raw, bytes):
                skipped += 1
                continue
        elif tag not in tags or not isinstance(raw, int) or (counter and not 0 <= raw <= MAX_COUNTER):
            skipped += 1
            continue
        if raw in column.unavailable:
            continue
        value = convert(raw)
        if value is None:
            if column.map is not None or column.served_as is not None:
                skipped += 1
            continue
        if labelled:
            try:
                name = column.name.format_map(row[1])
            except KeyError:
                skipped += 1
                continue
        else:
            name = column.name
        run.keys.append(row[0])
        run.names.append(name)
        run.indexes.append(index)
        values.append(value)
        if counter:
            bits.append(64 if octets else COUNTER_BITS[tag])
    return run._replace(values=values, bits=bytes(bits)), skipped


def _converter(column: Column) -> Callable[[Any], float | None]:
    """A raw integer -> the column's natural unit, or None if it stands for "no value"; its
    branches chosen once per column. Counters stay exact integers: a float would round a
    Counter64 above 2**53, and with it the rate. A `bits` column takes the octets of a BITS
    value (bit 0 is the first octet's high bit, RFC 2578 7.1.4; octets left off are bits clear)."""
    if column.bits:
        masks = tuple((bit // 8, 0x80 >> (bit % 8)) for bit in sorted(column.bits))
        return lambda raw: float(any(at < len(raw) and raw[at] & mask for at, mask in masks))
    if column.text is not None:
        return _text_number(column.text)
    if column.map is not None:
        return column.map.get
    if column.served_as is not None:
        return _octet_counter if column.served_as == "octets" else _text_counter
    if column.kind == "counter":
        return int
    if column.convert:
        transform, scale = CONVERT[column.convert], column.scale
        return lambda raw: transform(raw * scale)
    scale = column.scale
    return lambda raw: raw * scale


def _octet_counter(raw: bytes) -> int | None:
    """A Counter64 served as an OCTET STRING of 1 to 8 octets, most significant first."""
    return int.from_bytes(raw, "big") if 0 < len(raw) <= 8 else None


def _text_counter(raw: bytes) -> int | None:
    """A Counter64 served as decimal text ("18446744073709551615" at most)."""
    digits = raw.strip()
    if not digits.isdigit() or len(digits) > 20:
        return None
    value = int(digits)
    return value if value <= MAX_COUNTER else None


def _text_number(text: TextNumber) -> Callable[[bytes], float | None]:
    """Text octets -> the number `text.pattern` finds, in the metric's unit; None where the
    pattern finds none (an empty cell, "N/A", a format the pattern does not describe)."""
    search, to_unit = re.compile(text.pattern).search, TEXT_UNITS[text.unit]

    def number(raw: bytes) -> float | None:
        found = search(raw.decode("utf-8", "replace"))
        if found is None:
            return None
        try:
            value = float(found.group(1))
        except (TypeError, ValueError):  # an optional group that took nothing, or no number after all
            return None
        return to_unit(value) if math.isfinite(value) else None

    return number


def parse_index(parts: tuple[IndexPart, ...], index: Oid) -> tuple[str, dict[str, str]] | None:
    """Row index sub-ids -> (line key, labels), or None if they do not fit the parts."""
    key = ""
    labels: dict[str, str] = {}
    position = 0
    for part in parts:
        width = part.width if part.kind != "serial" or position >= len(index) else 1 + index[position]
        ids = index[position : position + width]
        position += width
        if len(ids) != width:
            return None
        if part.kind == "serial":
            if not all(32 < i < 127 for i in ids[1:]) or width == 1:  # printable text, no spaces, not empty
                return None
            key = bytes(ids[1:]).decode("ascii")
        elif part.kind == "port":
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
    if position != len(index):
        return None
    return key, labels


def combine(profile: Profile, runs: Iterable[Run]) -> dict[str, dict[str, float]]:
    """Runs of final values (None: no value) -> metric values per line key, folded and aggregated.

    Several values of one metric in one line (rows folded into a line, or columns sharing a
    name) fold with the first column that gave the metric its name. A run of one metric, one
    value per line and no gap (the usual column) is taken whole, into a dict per metric."""
    metrics: dict[str, dict[str, float]] = {}  # metric -> line key -> value
    folds: dict[str, Combine] = {}
    several: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        names = run.names
        if not names:
            continue
        name = names[0]
        if (
            name not in metrics
            and names.count(name) == len(names)
            and None not in run.values
            and len(set(run.keys)) == len(names)
        ):
            folds.setdefault(name, run.column.folding)
            metrics[name] = dict(zip(run.keys, map(float, run.values)))  # type: ignore[arg-type]
            continue
        for name in dict.fromkeys(names):
            folds.setdefault(name, run.column.folding)
        for key, name, value in zip(run.keys, names, run.values):
            if value is None:
                continue
            values = metrics.get(name) or metrics.setdefault(name, {})
            if key not in values:
                values[key] = float(value)
            else:
                found = several.get((key, name))
                if found is None:
                    several[(key, name)] = [values[key], float(value)]
                else:
                    found.append(float(value))
    for (key, name), folded in several.items():
        metrics[name][key] = float(COMBINE[folds[name]](folded))
    metric_names = list(metrics)
    columns = list(metrics.values())
    keys = list(columns[0]) if columns else []
    if all(list(values) == keys for values in columns):  # every metric in every line, in one order: the usual table
        rows = {key: dict(zip(metric_names, found)) for key, found in zip(keys, zip(*(values.values() for values in columns)))}
    else:
        rows = {
            key: {name: values[key] for name, values in zip(metric_names, columns) if key in values}
            for key in dict.fromkeys(chain.from_iterable(columns))
        }
    if profile.aggregates:
        for combined in rows.values():
            for aggregate in profile.aggregates:
                present = [combined[name] for name in aggregate.of if name in combined]
                if present:
                    combined[aggregate.name] = AGGREGATE[aggregate.fn](present)
    return rows


def _mac(value: Any) -> str | None:
    if isinstance(value, bytes) and len(value) == 6:
        return ":".join(f"{b:02x}" for b in value)
    return None


# --- polling ----------------------------------------------------------------------------------


def line_key(profile: Profile, line: Line) -> str | None:
    """The key under which `profile` finds `line`'s row, or None if the line cannot match."""
    if profile.match == "port":
        return None if line.port is None else sys.intern(str(line.port))  # "1".."48" on every DSLAM: one string each
    if profile.match == "mac":
        return line.mac.lower() if line.mac else None
    if profile.match == "serial":
        return line.serial
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
    cells = walk.cells
    fallen = [c for c in profile.columns(intervals) if c.fallback and (v1 or not _served(cells, c.oid))]
    names = ", ".join(sorted({c.name for c in fallen}))
    if fallen and not v1:
        extra = await client.walk(target, [c.fallback for c in fallen if c.fallback], profile.max_repetitions)
        if extra.outcome is Outcome.OK:
            cells += extra.cells
        else:
            notes.append(
                f"no 64-bit counters for {names}, and their 32-bit ones failed: {extra.outcome.value} {extra.detail}".rstrip()
            )
            fallen = []
    if any(table.get is not None for table in profile.tables):
        got, note = await get_rows(client, target, profile.tables, lines_by_key, intervals)
        cells = (*cells, *cells_of(profile, got))
        notes += [note] if note else []
    decoded = decode_cells(profile, cells)
    if not decoded.served:
        detail = absent(profile, intervals)
        samples = [Sample(node, probe, now, Outcome.NO_TABLE, values, "; ".join([*notes, detail]))]
        samples += [Sample(NodeRef("line", line), probe, now, Outcome.NO_TABLE, detail=detail) for line in lines_by_key.values()]
        return samples
    if fallen:
        why = "SNMPv1 carries no 64-bit counters" if v1 else "no 64-bit counters on this agent"
        notes.append(f"{names} from 32-bit counters ({why})")
    rows = measure(profile, decoded, device.id, rates, now)
    if decoded.skipped:
        notes.append(f"{decoded.skipped} cells skipped (wrong type or index)")
    if walk.detail:
        notes.append(walk.detail)
    samples = [Sample(node, probe, now, Outcome.OK, values, "; ".join(notes))]
    found = decoded.keys
    samples += [
        Sample(NodeRef("line", line), probe, now, Outcome.OK, rows.get(key, {}))
        if key in found
        else Sample(NodeRef("line", line), probe, now, Outcome.NOT_FOUND, detail=f"no row {key!r}")
        for key, line in lines_by_key.items()
    ]
    return samples


def measure(profile: Profile, decoded: Decoded, device: str, rates: RateTracker, now: float) -> dict[str, dict[str, float]]:
    """Metric values per line key of one decoded walk: counters as rates, column by column."""
    final = []
    for run in decoded.runs:
        if run.column.kind == "counter":
            run = run._replace(values=rates.rates(device, run.prefix, run.indexes, run.values, run.bits, now, run.column.scale))
        final.append(run)
    return combine(profile, final)


def absent(profile: Profile, intervals: Iterable[str] | None = None) -> str:
    """Why an agent that served none of the profile's columns is not N lines without a row."""
    wanted = profile.intervals if intervals is None else set(intervals)
    walked = (c.oid[:-1] for t in profile.tables if not t.join for c in t.columns if c.interval in wanted)
    tables = list(dict.fromkeys(map(format_oid, walked)))
    shown = ", ".join(tables[:2]) + (f" and {len(tables) - 2} more" if len(tables) > 2 else "")
    return f"profile {profile.name}: table{'s' if len(tables) > 1 else ''} {shown} absent on this agent (wrong profile?)"


def _served(cells: Iterable[Cells], column: Oid) -> bool:
    """Whether the walk found any value under `column`."""
    return any(found.prefix == column for found in cells)
