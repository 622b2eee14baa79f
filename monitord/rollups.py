"""Line quality over time (issue 13 item 4), pure: a period's readings of every line kept as
min/avg/max per metric, packed per device into one compact row, and hourly rows made from the
5-minute ones. The thread that feeds, writes and prunes them is monitord/line_history.py.

Memory: `Accumulator` keeps one slot per line that answered in the period, four packed arrays
per metric (min and max as float32, which is all a row keeps of them, the sum as a double, the
count: 20 bytes a line and metric), not an object per reading, and only for the metrics some
line gave: a DSL-only inventory makes no columns for the cable and optical levels (6 of the 13
default metrics, 12 MB at 100,000 lines).
Storage: one row per device and period (`Rollup`), its lines' ids and, per metric read on any
of them, the min, avg and max arrays, zlib-compressed. Levels in dB (`_db`, `_dbm`, `_dbmv`)
are int16 tenths of a dB (±3276.7 dB: every level a line has), everything else (rates,
errors per second) float32; a line without a reading of a metric in the period is a sentinel.
The three arrays of a metric sit side by side, so a line steady over the period (min = avg =
max, the usual case for rates) costs zlib a back-reference rather than twice the bytes.

An hourly row is the merge of the hour's 5-minute rows: min of the mins, max of the maxes, and
the mean of the 5-minute averages (each 5-minute period of a line polled at a steady interval
holds about as many readings, so it weighs the same).
"""

from __future__ import annotations

import math
import struct
import sys
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from monitord.quality import LEVEL_UNITS

FIVE_MINUTES = 300
HOUR = 3600
STEPS = {"5m": FIVE_MINUTES, "1h": HOUR}
NO_LEVEL = -32768  # int16 tenths: no reading in the period
LEVEL_LIMIT = 32767
SWAP = sys.byteorder == "big"  # rows are little-endian on every machine


@dataclass(frozen=True, slots=True)
class Rollup:
    """One device's lines over one period, as stored."""

    device: str
    step: int  # FIVE_MINUTES or HOUR
    start: int  # the period's start, seconds since the epoch, a multiple of `step`
    metrics: tuple[str, ...]  # the metrics read on any of its lines, in the order packed
    data: bytes


Stat = tuple[list[float | None], list[float | None], list[float | None]]  # min, avg, max per line


@dataclass(frozen=True, slots=True)
class Table:
    """A `Rollup` unpacked: per metric, the min, avg and max of each line (None: no reading)."""

    lines: tuple[str, ...]
    stats: Mapping[str, Stat]


def is_level(metric: str) -> bool:
    return metric.endswith(LEVEL_UNITS)


class Accumulator:
    """One period's readings, for the configured metrics only, of every line that gave one."""

    __slots__ = ("_columns", "_lines", "_slot", "metrics", "start", "step")

    def __init__(self, metrics: Sequence[str], start: int, step: int = FIVE_MINUTES) -> None:
        self.metrics = tuple(metrics)
        self.start = start
        self.step = step
        self._slot: dict[str, int] = {}
        self._lines: list[str] = []
        self._columns: dict[str, _Column] = {}  # the metrics read so far: min, max, sum, count per slot

    @property
    def end(self) -> int:
        return self.start + self.step

    def __len__(self) -> int:
        return len(self._lines)

    def add(self, line: str, values: Mapping[str, float]) -> None:
        slot = self._slot.get(line)
        if slot is None:
            slot = self._slot[line] = len(self._lines)
            self._lines.append(line)
            for lo, hi, total, n in self._columns.values():
                lo.append(math.inf)
                hi.append(-math.inf)
                total.append(0.0)
                n.append(0)
        for metric in self.metrics:
            value = values.get(metric)
            if value is None or value != value:  # absent, or NaN
                continue
            column = self._columns.get(metric)
            if column is None:
                column = self._columns[metric] = _column(len(self._lines))
            lo, hi, total, n = column
            if value < lo[slot]:
                lo[slot] = value
            if value > hi[slot]:
                hi[slot] = value
            total[slot] += value
            n[slot] += 1

    def rollups(self, device_of: Callable[[str], str | None]) -> Iterator[Rollup]:
        """One packed row per device (`device_of`: a line's device, None for a line no longer in
        the inventory, left out), lines in id order; made as they are taken, so that the taker
        can pause between devices."""
        by_device: dict[str, list[str]] = {}
        for line in self._lines:
            device = device_of(line)
            if device:
                by_device.setdefault(device, []).append(line)
        for device in sorted(by_device):
            lines = sorted(by_device[device])
            slots = [self._slot[line] for line in lines]
            stats: dict[str, Stat] = {}
            for metric in self.metrics:
                if metric not in self._columns:
                    continue
                lo, hi, total, n = self._columns[metric]
                if any(n[s] for s in slots):
                    stats[metric] = (
                        [lo[s] if n[s] else None for s in slots],
                        [total[s] / n[s] if n[s] else None for s in slots],
                        [hi[s] if n[s] else None for s in slots],
                    )
            if stats:
                yield pack(device, self.step, self.start, Table(tuple(lines), stats))


_Column = tuple["array[float]", "array[float]", "array[float]", "array[int]"]


def _column(lines: int) -> _Column:
    """A metric's min, max, sum and count for `lines` slots, none read yet."""
    return array("f", [math.inf]) * lines, array("f", [-math.inf]) * lines, array("d", [0.0]) * lines, array("I", [0]) * lines


def _encode(metric: str, values: Sequence[float | None]) -> bytes:
    packed: array[int] | array[float]
    if is_level(metric):
        packed = array("h", (NO_LEVEL if v is None else max(-LEVEL_LIMIT, min(LEVEL_LIMIT, round(v * 10))) for v in values))
    else:
        packed = array("f", (math.nan if v is None else v for v in values))
    if SWAP:
        packed.byteswap()
    return packed.tobytes()


def _decode(metric: str, raw: bytes) -> list[float | None]:
    packed = array("h" if is_level(metric) else "f")
    packed.frombytes(raw)
    if SWAP:
        packed.byteswap()
    if is_level(metric):
        return [None if v == NO_LEVEL else v / 10 for v in packed]
    return [None if v != v else v for v in packed]


def pack(device: str, step: int, start: int, table: Table) -> Rollup:
    parts = ["\n".join(table.lines).encode(), b"\0"]
    for metric, stat in table.stats.items():
        parts.extend(_encode(metric, column) for column in stat)
    return Rollup(device, step, start, tuple(table.stats), zlib.compress(b"".join(parts), 1))


def unpack(row: Rollup) -> Table:
    raw = zlib.decompress(row.data)
    names, _, packed = raw.partition(b"\0")
    lines = tuple(names.decode().split("\n"))
    stats: dict[str, Stat] = {}
    at = 0
    for metric in row.metrics:
        width = (2 if is_level(metric) else 4) * len(lines)
        lo, avg, hi = (_decode(metric, packed[at + k * width : at + (k + 1) * width]) for k in range(3))
        stats[metric] = (lo, avg, hi)
        at += 3 * width
    return Table(lines, stats)


Point = dict[str, tuple[float | None, float | None, float | None]]  # metric -> (min, avg, max)


def line_point(row: Rollup, line: str) -> Point | None:
    """One line's (min, avg, max) per metric, read out of the row without unpacking the
    others' (a week of a device's rows for one subscriber's chart); None: no slot for it."""
    names, _, packed = zlib.decompress(row.data).partition(b"\0")
    lines = names.decode().split("\n")
    try:
        i = lines.index(line)
    except ValueError:
        return None
    point: Point = {}
    at = 0
    for metric in row.metrics:
        level = is_level(metric)
        size = 2 if level else 4
        width = size * len(lines)
        raw = [struct.unpack_from("<h" if level else "<f", packed, at + k * width + i * size)[0] for k in range(3)]
        if level:
            lo, avg, hi = (None if v == NO_LEVEL else v / 10 for v in raw)
        else:
            lo, avg, hi = (None if v != v else v for v in raw)
        point[metric] = (lo, avg, hi)
        at += 3 * width
    return point


def merge(device: str, start: int, rows: Iterable[Rollup], step: int = HOUR) -> Rollup | None:
    """The period starting at `start` made of shorter rows of the device: min of the mins, max of
    the maxes, mean of the averages; None when there are none."""
    tables = [unpack(row) for row in rows]
    if not tables:
        return None
    lines = tuple(sorted({line for t in tables for line in t.lines}))
    slot = {line: i for i, line in enumerate(lines)}
    stats: dict[str, Stat] = {}
    for metric in dict.fromkeys(m for t in tables for m in t.stats):
        low: list[float | None] = [None] * len(lines)
        high: list[float | None] = [None] * len(lines)
        total = [0.0] * len(lines)
        counted = [0] * len(lines)
        for t in tables:
            if metric not in t.stats:
                continue
            lo, avg, hi = t.stats[metric]
            where = range(len(lines)) if t.lines == lines else [slot[line] for line in t.lines]
            for i, a, b, c in zip(where, lo, avg, hi, strict=True):
                if b is None:
                    continue
                if low[i] is None or a < low[i]:  # type: ignore[operator]
                    low[i] = a
                if high[i] is None or c > high[i]:  # type: ignore[operator]
                    high[i] = c
                total[i] += b
                counted[i] += 1
        stats[metric] = (low, [s / n if n else None for s, n in zip(total, counted, strict=True)], high)
    return pack(device, step, start, Table(lines, stats))


def period_start(at: float, step: int) -> int:
    return int(at // step) * step
