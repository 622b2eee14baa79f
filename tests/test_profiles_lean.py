"""The lean poll path (column runs, rate state as arrays) against plain reference logic.

The reference below is the straightforward reading of a profile: one varbind at a time, the
longest registered prefix, a dict per cell for counters, a list per metric for folding. Random
walks over every built-in profile, polled several times with rows coming and going, must give
the same line keys, skip counts and metric values per line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.profile_files import load_profiles
from probes.profiles import AGGREGATE, COMBINE, CONVERT, TEXT_UNITS, Column, Profile, decode, measure
from probes.rates import RateTracker
from probes.snmp import Oid, Varbind
from tests.depth import examples

PROFILES = load_profiles()
RANGES = {2: (-(2**31), 2**31 - 1), 65: (0, 2**32 - 1), 66: (0, 2**32 - 1), 67: (0, 2**32 - 1), 70: (0, 2**64 - 1)}


class Reference:
    """Decode, rates and combine of one profile, one value at a time."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.counters: dict[tuple[Oid, Oid], tuple[int, float]] = {}

    def poll(self, varbinds: list[Varbind], now: float) -> tuple[set[str], int, bool, dict[str, dict[str, float]]]:
        profile = self.profile
        columns: dict[Oid, tuple[Any, Column]] = {}
        for table in profile.tables:
            for column in table.columns:
                columns[column.oid] = (table, column)
                if column.fallback is not None:
                    columns[column.fallback] = (table, column)
        key_columns = {table.key_oid for table in profile.tables if table.key_oid}
        macs: dict[tuple[Oid, Oid], str] = {}
        matched = []
        skipped = 0
        for oid, tag, value in varbinds:
            for length in range(len(oid), -1, -1):
                prefix = oid[:length]
                if prefix in key_columns:
                    if isinstance(value, bytes) and len(value) == 6:
                        macs[(prefix, oid[length:])] = ":".join(f"{b:02x}" for b in value)
                    else:
                        skipped += 1
                    break
                if prefix in columns:
                    matched.append((prefix, oid[length:], tag, value))
                    break
        keys: set[str] = set()
        values: dict[str, dict[str, tuple[Column, list[float]]]] = {}
        for prefix, index, tag, value in matched:
            table, column = columns[prefix]
            row = parse(table.index, index)
            if row is None:
                skipped += 1
                continue
            key, labels = row
            if table.key_oid is not None:
                if (table.key_oid, index) not in macs:
                    skipped += 1
                    continue
                key = macs[(table.key_oid, index)]
            if not table.join:
                keys.add(key)
            counter = column.kind == "counter"
            if column.bits or column.text:
                if tag != 4 or not isinstance(value, bytes):
                    skipped += 1
                    continue
                final = octets(column, value)
                if final is not None:
                    values.setdefault(key, {}).setdefault(column.name, (column, []))[1].append(final)
                continue
            if tag not in RANGES or not isinstance(value, int) or (counter and tag not in (65, 70)):
                skipped += 1
                continue
            if value in column.unavailable:
                continue
            if column.map is not None:
                final = column.map.get(value)
                if final is None:
                    skipped += 1
                    continue
            elif counter:
                final = self.rate(prefix + index, prefix, value, 32 if tag == 65 else 64, now)
            else:
                final = value * column.scale
                if column.convert:
                    final = CONVERT[column.convert](final)
            try:
                name = column.name.format(**labels)
            except KeyError:
                skipped += 1
                continue
            if final is None:
                continue
            if counter:
                final *= column.scale
            values.setdefault(key, {}).setdefault(name, (column, []))[1].append(final)
        rows = {}
        for key, metrics in values.items():
            row = {name: float(COMBINE[column.folding](found)) for name, (column, found) in metrics.items()}
            for aggregate in profile.aggregates:
                present = [row[name] for name in aggregate.of if name in row]
                if present:
                    row[aggregate.name] = AGGREGATE[aggregate.fn](present)
            rows[key] = row
        served = bool(macs) or any(not columns[prefix][0].join for prefix, *_ in matched)
        return keys, skipped, served, rows

    def rate(self, oid: Oid, prefix: Oid, value: int, bits: int, now: float) -> float | None:
        previous = self.counters.get((prefix, oid))
        self.counters[(prefix, oid)] = (value, now)
        if previous is None or previous[1] >= now:
            return None
        delta = value - previous[0]
        if delta < 0:
            if bits == 32 and previous[0] - value > 2**31:
                delta += 2**32
            else:
                return None
        return delta / (now - previous[1])


def octets(column: Column, value: bytes) -> float | None:
    """A BITS or text cell's value: the bits as a string of 0s and 1s, the text searched."""
    if column.bits:
        flags = "".join(f"{octet:08b}" for octet in value)
        return float(any(bit < len(flags) and flags[bit] == "1" for bit in column.bits))
    assert column.text is not None
    found = re.search(column.text.pattern, value.decode("utf-8", "replace"))
    if found is None or not math.isfinite(float(found.group(1))):
        return None
    return TEXT_UNITS[column.text.unit](float(found.group(1)))


def parse(parts: Any, index: Oid) -> tuple[str, Mapping[str, str]] | None:
    key, labels, ids = "", {}, list(index)
    if parts and parts[0].kind == "serial":  # a length-prefixed serial: printable, no spaces, not empty
        size, text = (ids[0], ids[1 : 1 + ids[0]]) if ids else (0, [])
        if size == 0 or len(text) != size or any(not 33 <= i <= 126 for i in text):
            return None
        key, ids, parts = bytes(text).decode("ascii"), ids[1 + size :], parts[1:]
    if len(ids) != sum(6 if part.kind == "mac" else 1 for part in parts):
        return None
    for part in parts:
        if part.kind == "mac":
            mac, ids = ids[:6], ids[6:]
            if max(mac) > 255:
                return None
            key = ":".join(f"{i:02x}" for i in mac)
            continue
        first = ids.pop(0)
        if part.kind == "port":
            key = str(first)
        elif part.kind == "label":
            if first not in part.labels:
                return None
            labels[part.name] = part.labels[first]
    return key, labels


def walk_of(profile: Profile, draw: Any) -> list[Varbind]:
    """A walk's varbinds: any registered column (fallbacks and MAC keys too), rows from a small
    set so that they repeat from poll to poll, values mostly of the column's own type."""
    oids = [*profile.walk_oids(), *profile.walk_oids(fallbacks=True)]
    kinds = {c.oid: c for c in profile.columns()} | {c.fallback: c for c in profile.columns() if c.fallback}
    label_ids = sorted({i for t in profile.tables for p in t.index for i in p.labels}) or [1]
    row = st.one_of(
        st.tuples(st.integers(1, 6)),
        st.tuples(st.integers(1, 6), st.sampled_from(label_ids)),
        st.tuples(*[st.integers(0, 3)] * 5, st.integers(1, 3)),
        st.lists(st.integers(0, 300), max_size=3).map(tuple),
    )
    varbinds = []
    for prefix in draw(st.lists(st.sampled_from(oids), max_size=12)):
        column = kinds.get(prefix)
        for index in draw(st.lists(row, max_size=6)):
            if column is None:  # a MAC key column
                value: Any = draw(st.one_of(st.binary(min_size=6, max_size=6), st.binary(max_size=8)))
                varbinds.append(Varbind(prefix + index, 4, value))
                continue
            tag = draw(st.sampled_from([65, 70, 2] if column.kind == "counter" else [2, 66, 4]))
            low, high = RANGES.get(tag, (0, 9))
            special = [v for v in (*column.unavailable, *(column.map or {}), 0, 1, 2**31 - 1, 2**32 - 1) if low <= v <= high]
            value = draw(st.one_of(st.integers(low, high), st.sampled_from(special)))
            if tag == 4:  # text, BITS, or neither
                value = draw(st.sampled_from([b"x", b"-290", b" 17 ", b"", b"\x80", b"\x02\x00", b"\x00\x40", b"\xff\xff"]))
            varbinds.append(Varbind(prefix + index, tag, value))
    return varbinds


@settings(max_examples=examples(300), deadline=None)
@given(
    profile=st.sampled_from(sorted(PROFILES)),
    data=st.data(),
    steps=st.lists(st.sampled_from([0.0, 7.5, 60.0]), min_size=2, max_size=4),
)
def test_lean_path_equals_reference_logic(profile: str, data: st.DataObject, steps: list[float]) -> None:
    chosen = PROFILES[profile]
    reference = Reference(chosen)
    rates = RateTracker()
    now = 1000.0
    for step in steps:
        now += step
        varbinds = walk_of(chosen, data.draw)
        keys, skipped, served, rows = reference.poll(varbinds, now)
        decoded = decode(chosen, varbinds)
        assert (decoded.keys, decoded.skipped, decoded.served) == (keys, skipped, served)
        got = measure(chosen, decoded, "d", rates, now)
        assert got.keys() == rows.keys()
        for key, row in rows.items():
            assert got[key].keys() == row.keys(), key
            for name, value in row.items():
                assert got[key][name] == pytest.approx(value, rel=1e-12, nan_ok=True) or (
                    math.isinf(value) and got[key][name] == value
                ), (key, name)


def test_rows_that_come_and_go_keep_their_readings() -> None:
    """The array state's slow path: a row missing from one walk rates against its last reading
    when it comes back; new rows and rows in another order are matched by index."""
    column = (1, 3, 6, 1, 2, 1, 2, 2, 1, 14)
    rates = RateTracker()
    assert rates.rates("d", column, [(1,), (2,), (3,)], [10, 20, 30], [32] * 3, 0.0) == [None] * 3
    assert rates.rates("d", column, [(1,), (3,)], [20, 90], [32] * 2, 10.0) == [1.0, 6.0]
    assert rates.rates("d", column, [(2,), (1,), (4,)], [220, 40, 5], [32] * 3, 20.0) == [10.0, 2.0, None]
    assert rates.rates("d", column, [(2,), (1,), (4,)], [320, 40, 5], [32] * 3, 30.0) == [10.0, 0.0, 0.0]
    assert rates.rates("d", column, [(3,)], [190], [32], 40.0) == [pytest.approx(100 / 30)]
    assert rates.rates("d", column, [(1,), (1,)], [50, 60], [32] * 2, 50.0) == [0.5, None]  # the second reads the first


def test_a_walk_of_the_same_rows_leaves_no_new_object_behind() -> None:
    """The usual walk (the rows of the last one) overwrites the readings in place: an object made
    per column and poll would live until the next poll, long enough to reach the GC's oldest
    generation, whose full passes then hold the event loop (bench/stall_trace.py)."""
    column = (1, 3, 6, 1, 2, 1, 2, 2, 1, 14)
    rates = RateTracker()
    rates.rates("d", column, [(1,), (2,)], [10, 20], [32] * 2, 0.0)
    kept = rates._counters["d"][column]
    values, indexes = kept.values, kept.indexes
    assert rates.rates("d", column, [(1,), (2,)], [40, 20], [32] * 2, 10.0) == [3.0, 0.0]
    assert rates.rates("d", column, [(1,), (2,)], [70, 120], [32] * 2, 20.0) == [3.0, 10.0]
    assert rates._counters["d"][column] is kept and kept.values is values and kept.indexes is indexes
    assert list(kept.values) == [70, 120] and kept.times == 20.0


def test_devices_and_polls_share_one_tuple_per_row_index() -> None:
    """Rate state keeps one tuple per distinct row index for every device (2,000 DSLAMs have
    the same 48 ports), not the tuples each walk decoded."""
    column = (1, 3, 6, 1, 2, 1, 2, 2, 1, 14)
    rates = RateTracker()

    def walked(*rows: int) -> list[tuple[int, ...]]:
        return [(row, 7) for row in rows]  # new tuples each call, as a walk decodes them

    rates.rates("a", column, walked(1, 2), [10, 20], [32] * 2, 0.0)
    rates.rates("b", column, walked(2, 1), [10, 20], [32] * 2, 0.0)
    rates.rates("a", column, walked(3, 1), [10, 20], [32] * 2, 10.0)  # rows changed: the slow path
    first, second = (rates._counters[device][column].indexes for device in ("a", "b"))
    assert first == [(3, 7), (1, 7), (2, 7)] and second == [(2, 7), (1, 7)]
    assert first[1] is second[1] and first[2] is second[0]
