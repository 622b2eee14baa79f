"""Counters -> per-second rates: the rate state of every device, kept as arrays.

At a million lines the inventory has about eleven million counter cells, so the state is arrays
per device and column (27 bytes a cell), not an object per cell (186).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from probes import _ber
from probes.snmp import Oid

SHARED_INDEXES = 16_384  # distinct row indexes kept once for every device (a port's, an ifIndex)
_shared: dict[Oid, Oid] = {}


class RateTracker:
    """Counters -> per-second rates, remembering the last reading of each cell per device.

    No clock inside: `now` comes from the caller. A counter that went down is a wrap if it is a
    Counter32 that fell by more than half its range, and a reset (no rate this time) otherwise.
    sysUpTime going backwards means the device restarted: all its counters start over.

    The state is arrays per device and column, not an object per cell: a column's row indexes (one
    tuple per row, shared by the row's columns and by every device with that row: `_share`) and
    the last reading and time of each. A walk that finds the rows of the last one, the usual case,
    is matched positionally; any other takes each cell's reading by index and keeps readings of
    rows not seen this time, at the end, as a dict per cell would.
    """

    def __init__(self) -> None:
        self._counters: dict[str, dict[Oid, _Readings]] = {}  # device -> column OID -> readings
        self._uptimes: dict[str, float] = {}

    def uptime(self, device: str, uptime_s: float) -> bool:
        """Record sysUpTime; True if it went backwards (a reboot), forgetting the device's counters."""
        previous = self._uptimes.get(device)
        self._uptimes[device] = uptime_s
        if previous is not None and uptime_s < previous:
            self._counters.pop(device, None)
            return True
        return False

    def rates(
        self,
        device: str,
        column: Oid,
        indexes: Sequence[Oid],
        values: Sequence[float | None],
        bits: Sequence[int],
        now: float,
        scale: float = 1.0,
    ) -> list[float | None]:
        """Per-second rates, times `scale`, of one column's counters (`values`, exact integers,
        each `bits` wide: 32 or 64) in the rows `indexes` (a list, as `Run` has it) of the OID
        `column`; None where a cell has no earlier reading, no time passed or the counter was
        reset. The arithmetic per cell is in C (probes/_ber.c)."""
        columns = self._counters.get(device)
        if columns is None:
            columns = self._counters[device] = {}
        readings = columns.get(column)
        count = len(indexes)
        counts = cast(Sequence[int], values)  # decode keeps a counter column's values exact integers
        if readings is None or readings.indexes[:count] != indexes:
            readings, previous, times = _merge(readings, indexes, counts, now)
            # Columns of one table have the same rows: one list of them per device, not per column.
            readings.indexes = next((o.indexes for o in columns.values() if o.indexes == readings.indexes), readings.indexes)
            columns[column] = readings
            return _ber.rates(counts, bytes(bits), previous, times, now, scale)
        previous, times = readings.values, _each(readings.times, len(readings.values))
        rates = _ber.rates(counts, bytes(bits), previous, times, now, scale)
        # Overwritten in place: a new array per column and poll would live until the next poll,
        # long enough to reach the GC's oldest generation, whose full passes hold the loop.
        readings.values[:count] = array("Q", counts)
        if count < len(previous):  # rows of earlier walks not seen this time keep their readings
            readings.times = array("d", (now,)) * count + times[count:]
        else:
            readings.times = now
        return rates

    def columns_known(self) -> int:
        """How many device columns have readings (each an object and its arrays, kept for the run)."""
        return sum(map(len, self._counters.values()))

    def forget(self, device: str) -> None:
        self._counters.pop(device, None)
        self._uptimes.pop(device, None)


@dataclass(slots=True)
class _Readings:
    """The last reading of each cell of one column of one device; a time of NaN marks no reading.
    `times` is one number when every cell was read at that time, the usual case (8 bytes a cell
    fewer: about 90 MB at a million lines), else one per cell."""

    indexes: Sequence[Oid]
    values: array[int]
    times: array[float] | float


def _each(times: array[float] | float, count: int) -> array[float]:
    """The time of each of `count` cells (`_Readings.times`)."""
    return times if isinstance(times, array) else array("d", (times,)) * count


def _merge(
    old: _Readings | None, indexes: Sequence[Oid], values: Sequence[int], now: float
) -> tuple[_Readings, array[int], array[float]]:
    """New readings for rows that differ from the last walk's (this walk's rows first, in its
    order, then rows seen before but not now), and each new cell's earlier reading and its time
    (NaN if none); a row found twice in one walk reads the first as its earlier one."""
    earlier: dict[Oid, tuple[int, float]] = {}
    if old is not None:
        earlier = {index: (value, then) for index, value, then in zip(old.indexes, old.values, _each(old.times, len(old.values)))}
    nothing = (0, math.nan)
    previous: list[int] = []
    times: list[float] = []
    latest: dict[Oid, int] = {}
    for index, value in zip(indexes, values):
        reading = earlier.get(index, nothing) if index not in latest else (latest[index], now)
        previous.append(reading[0])
        times.append(reading[1])
        latest[index] = value
    kept = [index for index in earlier if index not in latest]
    readings = _Readings(
        [*map(_share, latest), *kept],
        array("Q", [*latest.values(), *(earlier[index][0] for index in kept)]),
        array("d", [now] * len(latest) + [earlier[index][1] for index in kept]) if kept else now,
    )
    return readings, array("Q", previous), array("d", times)


def _share(index: Oid) -> Oid:
    """The one tuple kept for this row index: 2,084 DSLAMs have the same 48 ports, and a tuple
    (and its int) per device and table weighed about 7 MiB at 100,032 lines (tracemalloc, two
    tables a DSLAM). The first SHARED_INDEXES distinct indexes are kept for the run; later ones
    are not shared."""
    found = _shared.get(index)
    if found is not None:
        return found
    if len(_shared) < SHARED_INDEXES:
        _shared[index] = index
    return index
