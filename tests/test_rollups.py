"""Line quality over time (issue 13 item 4): the roll-ups' maths against brute force, their
packing, the flapping and drifting lists, and `LineHistory` on both engines: written off the
loop, merged into hours, pruned, read back, and what a restart keeps."""

from __future__ import annotations

import asyncio
import gc
import math
import random
import sqlite3
import struct
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_asyncio

from monitord.config import HistoryConfig
from monitord.line_history import LATE, OTHERS_WRITE, LineHistory
from monitord.model import Device, Line, LineState, NodeRef, Outcome, Sample, StateServer, Status
from monitord.pgstore import Postgres, migrate_postgres
from monitord.rollups import (
    FIVE_MINUTES,
    HOUR,
    Accumulator,
    Rollup,
    Table,
    line_point,
    merge,
    pack,
    period_start,
    unpack,
)
from monitord.store import MIGRATIONS, PG_MIGRATIONS, Store, migrate
from monitord.trends import FLAP_WINDOW, FLAPS_KEPT, Flaps, drifting
from rules.checks import RuleSet, Threshold
from rules.config import RulesConfig
from tests.outbox_fixtures import store, version_before  # noqa: F401  (fixture)

T0 = 1_767_225_600  # 2026-01-01 00:00 UTC, on an hour
LEVEL, RATE = "snr_margin_down_db", "rate_down_bps"
METRICS = (LEVEL, "attenuation_down_db", RATE, "errored_seconds_per_s")


def tenths(x: float) -> float:
    return round(x * 10) / 10


def float32(x: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


def stored(metric: str, x: float) -> float:
    """What a value becomes once packed: tenths of a dB for levels, float32 for the rest."""
    return tenths(x) if metric.endswith("_db") else float32(x)


def random_readings(rng: random.Random, lines: int, polls: int) -> list[tuple[str, dict[str, float]]]:
    readings = []
    for _ in range(polls):
        for n in range(lines):
            values = {m: rng.uniform(-5, 60) if m.endswith("_db") else rng.uniform(0, 2e7) for m in METRICS if rng.random() < 0.7}
            readings.append((f"s{n:03d}", values))
    rng.shuffle(readings)
    return readings


@pytest.mark.parametrize("seed", range(8))
def test_a_period_packs_the_min_avg_and_max_of_every_line_and_metric(seed: int) -> None:
    rng = random.Random(seed)
    readings = random_readings(rng, lines=rng.randint(1, 60), polls=rng.randint(1, 6))
    acc = Accumulator(METRICS, T0)
    for line, values in readings:
        acc.add(line, values)
    rows = list(acc.rollups(lambda line: f"d{int(line[1:]) % 3}"))
    seen: dict[str, dict[str, list[float]]] = {}
    for line, values in readings:
        for metric, value in values.items():
            seen.setdefault(line, {}).setdefault(metric, []).append(value)
    found = {}
    for row in rows:
        assert row.step == FIVE_MINUTES and row.start == T0
        table = unpack(row)
        assert list(table.lines) == sorted(table.lines)
        for line in table.lines:
            assert f"d{int(line[1:]) % 3}" == row.device
            found[line] = line_point(row, line)
            for metric, (lo, avg, hi) in found[line].items():
                assert (lo, avg, hi) == tuple(table.stats[metric][k][table.lines.index(line)] for k in range(3))
    assert set(found) == {line for line, values in readings}
    for line, point in found.items():
        for metric in METRICS:
            values = seen[line].get(metric)
            if values is None:
                assert point.get(metric, (None, None, None)) == (None, None, None)
                continue
            expect = (min(values), sum(values) / len(values), max(values))
            got = point[metric]
            assert got == tuple(stored(metric, v) for v in expect)


@pytest.mark.parametrize("seed", range(8))
def test_an_hour_is_the_min_of_the_mins_the_max_of_the_maxes_and_the_mean_of_the_averages(seed: int) -> None:
    rng = random.Random(100 + seed)
    periods = []
    for k in range(rng.randint(1, 12)):
        acc = Accumulator(METRICS, T0 + k * FIVE_MINUTES)
        for line, values in random_readings(rng, lines=rng.randint(1, 20), polls=2):
            acc.add(line, values)
        periods += acc.rollups(lambda line: "d1")
    merged = merge("d1", T0, periods)
    assert merged is not None and merged.step == HOUR and merged.start == T0
    hour = unpack(merged)
    tables = [unpack(p) for p in periods]
    assert set(hour.lines) == {line for t in tables for line in t.lines}
    for line in hour.lines:
        for metric in METRICS:
            parts = [
                tuple(t.stats[metric][k][t.lines.index(line)] for k in range(3))
                for t in tables
                if line in t.lines and metric in t.stats and t.stats[metric][1][t.lines.index(line)] is not None
            ]
            got = tuple(hour.stats[metric][k][hour.lines.index(line)] for k in range(3)) if metric in hour.stats else (None,) * 3
            if not parts:
                assert got == (None, None, None)
                continue
            expect = (min(p[0] for p in parts), sum(p[1] for p in parts) / len(parts), max(p[2] for p in parts))
            assert got == tuple(stored(metric, v) for v in expect)


def test_levels_out_of_int16_are_clamped_and_missing_readings_stay_missing() -> None:
    row = pack("d1", FIVE_MINUTES, T0, Table(("a", "b"), {LEVEL: ([5000.0, None], [-5000.0, None], [0.04, None])}))
    assert unpack(row).stats[LEVEL] == ([3276.7, None], [-3276.7, None], [0.0, None])
    assert line_point(row, "c") is None
    assert merge("d1", T0, []) is None


def test_a_period_keeps_columns_only_for_the_metrics_its_lines_gave() -> None:
    acc = Accumulator(METRICS, T0)
    acc.add("a", {RATE: 1000.0})
    acc.add("b", {RATE: 2000.0})
    acc.add("a", {LEVEL: 7.0, RATE: 3000.0})  # a metric first read after two lines have slots
    assert set(acc._columns) == {LEVEL, RATE}  # no arrays for the two metrics nobody read
    assert sum(array.itemsize for array in acc._columns[RATE]) == 20  # bytes a line: float32 min and max
    (row,) = acc.rollups(lambda line: "d1")
    assert row.metrics == (LEVEL, RATE)  # in the configured order
    assert line_point(row, "a") == {LEVEL: (7.0, 7.0, 7.0), RATE: (1000.0, 2000.0, 3000.0)}
    assert line_point(row, "b") == {LEVEL: (None, None, None), RATE: (2000.0, 2000.0, 2000.0)}


def test_nan_readings_are_ignored() -> None:
    acc = Accumulator((LEVEL,), T0)
    acc.add("a", {LEVEL: math.nan})
    acc.add("a", {LEVEL: 7.0})
    (row,) = acc.rollups(lambda line: "d1")
    assert line_point(row, "a") == {LEVEL: (7.0, 7.0, 7.0)}


def test_lines_no_longer_in_the_inventory_are_left_out() -> None:
    acc = Accumulator((LEVEL,), T0)
    acc.add("gone", {LEVEL: 7.0})
    assert list(acc.rollups(lambda line: None)) == []


# --- flapping and drifting -------------------------------------------------------------------


def state(line: str, status: Status, at: float) -> LineState:
    return LineState(NodeRef("line", line), status, at)


def test_a_line_that_went_bad_again_and_again_is_flapping() -> None:
    flaps = Flaps()
    now = T0 + 86400.0
    changes = []
    for k in range(4):  # down, ok four times for s1; degraded then down (one fault) for s2
        changes += [state("s1", Status.DOWN, now - 3600 * (k + 1)), state("s1", Status.OK, now - 3600 * (k + 1) + 60)]
    changes += [state("s2", Status.DEGRADED, now - 100), state("s2", Status.DOWN, now - 50)]
    changes += [state("s3", Status.DOWN, now - 90000), state("s3", Status.OK, now - 89000)]  # before the window
    changes += [state("s4", Status.UNREACHABLE, now - 10), state("s4", Status.OK, now - 5)]  # its device's fault
    flaps.record(sorted(changes, key=lambda s: s.since))
    found = flaps.flapping(now, at_least=2)
    assert [(f.line, f.changes, f.last) for f in found] == [("s1", 4, now - 3600)]
    assert [f.line for f in flaps.flapping(now, at_least=1)] == ["s1", "s2"]
    assert flaps.flapping(now + 86400, at_least=1) == []  # the window moved past them all


def test_a_line_keeps_its_last_times_gone_bad_only() -> None:
    flaps = Flaps()
    now = T0 + 86400.0
    changes = []
    for k in range(FLAPS_KEPT + 50):
        changes += [state("s1", Status.DOWN, now - 1000 + 2 * k), state("s1", Status.OK, now - 999 + 2 * k)]
    flaps.record(changes)
    (found,) = flaps.flapping(now, at_least=1)
    assert (found.changes, found.last) == (FLAPS_KEPT, now - 1000 + 2 * (FLAPS_KEPT + 49))
    assert [f.changes for f in flaps.flapping(now - 1000 + 2 * (FLAPS_KEPT + 40) + FLAP_WINDOW, at_least=1)] == [10]


def test_a_line_near_its_threshold_but_on_the_good_side_is_drifting() -> None:
    margin_check = Threshold("snr", LEVEL, "at_most", 6.0, 8.0)
    attenuation = Threshold("att", "attenuation_down_db", "above", 60.0, 58.0)
    table = Table(
        ("a", "b", "c", "d"),
        {
            LEVEL: ([7.0, 5.0, 20.0, 6.0], [7.5, 5.5, 20.0, 6.0], [8.0, 6.0, 20.0, 6.0]),
            "attenuation_down_db": ([58.0, None, 10.0, 10.0], [58.5, None, 10.0, 10.0], [59.0, None, 10.0, 10.0]),
        },
    )
    limits = {LEVEL: (margin_check,), "attenuation_down_db": (attenuation,)}
    found = drifting("d1", table, limits, margin=3.0)
    # a: 1.5 dB above 6 (at_most), and 1.5 dB below 60; b is past it; c far; d at it (at_most: bad)
    assert sorted((d.line, d.metric, d.headroom) for d in found) == [("a", "attenuation_down_db", 1.5), ("a", LEVEL, 1.5)]
    assert drifting("d1", table, limits, margin=1.0) == []


# --- LineHistory on both engines ---------------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def config(lines: dict[str, Line], **history: Any) -> Any:
    devices = {line.device: Device(line.device, "dslam", "x1", "127.0.0.1", None, profiles=("adsl",)) for line in lines.values()}
    snr = Threshold("snr_margin_down", LEVEL, "at_most", 6.0, 8.0)
    rules = RulesConfig(0, 0, 0, 0, 0, None, {"adsl": RuleSet(checks=(snr,))})  # type: ignore[arg-type]
    return SimpleNamespace(
        history=HistoryConfig(metrics=METRICS, **history), topology=SimpleNamespace(lines=lines, devices=devices), rules=rules
    )


LINES = {f"s{n}": Line(f"s{n}", f"Abone {n}", f"d{n // 4}") for n in range(8)}


def poll(device: str, at: float, snr: float) -> list[Sample]:
    return [
        Sample(NodeRef("line", line.id), "snmp:adsl", at, Outcome.OK, {LEVEL: snr + n, RATE: 1e6})
        for n, line in enumerate(l for l in LINES.values() if l.device == device)
    ]


@pytest_asyncio.fixture
async def rollups(store: Store) -> AsyncIterator[tuple[LineHistory, Clock, Store]]:  # noqa: F811  (fixture)
    clock = Clock(float(T0))
    history = LineHistory(store, lambda: config(LINES), clock)
    yield history, clock, store
    await history.stop()


async def feed_hour(history: LineHistory, clock: Clock, start: int = T0) -> None:
    """Twelve 5-minute periods, two polls of every device each, SNR rising 1 dB a period."""
    for k in range(12):
        for device in ("d0", "d1"):
            for at in (start + k * FIVE_MINUTES + 10, start + k * FIVE_MINUTES + 160):
                history.take(poll(device, at, 10.0 + k))
        clock.now = start + (k + 1) * FIVE_MINUTES + LATE
        await history.write_due()


def count_rows(store: Store, step: int) -> int:
    db = store.reader()
    try:
        return int(db.execute("SELECT count(*) FROM line_quality WHERE step = ?", (step,)).fetchone()[0])
    finally:
        db.close()


async def test_polls_queued_behind_a_busy_adder_hold_no_samples(rollups: tuple[LineHistory, Clock, Store]) -> None:
    """Polls that wait for the thread adding up their readings leave there tuples of atoms that
    the GC stops tracking, not their samples (which every full pass walked); once the thread is
    free, their readings are added up all the same."""
    history, clock, _ = rollups
    busy = threading.Event()
    history._adder.submit(busy.wait)
    try:
        polls = [poll(device, T0 + 10 + k, 10.0) for k in range(5) for device in ("d0", "d1")]
        for samples in polls:
            history.take(samples)
        kept = [id(sample) for samples in polls for sample in samples]
        del polls, samples
        gc.collect()
        assert not [o for o in gc.get_objects() if id(o) in kept and isinstance(o, Sample)], "no sample waits with its poll"
    finally:
        busy.set()
    clock.now = T0 + FIVE_MINUTES + LATE
    assert await history.write_due() == 2, "a row per device for the period"


async def test_readings_are_added_up_while_the_last_period_is_packed(rollups: tuple[LineHistory, Clock, Store]) -> None:
    """A period's close rests between devices for seconds at 100,000 lines: the polls meanwhile
    are added up into the next period as they come, not queued behind it with their values."""
    history, clock, store = rollups
    for device in ("d0", "d1"):
        history.take(poll(device, T0 + 10, 10.0))
    busy = threading.Event()
    history._thread.submit(busy.wait)  # the packing thread, stuck in a close
    try:
        for device in ("d0", "d1"):
            history.take(poll(device, T0 + FIVE_MINUTES + 10, 12.0))  # the first period closes
        added = await asyncio.get_running_loop().run_in_executor(history._adder, lambda: history._period)
        assert added is not None and added.start == T0 + FIVE_MINUTES and len(added) == len(LINES)
    finally:
        busy.set()
    clock.now = T0 + 2 * FIVE_MINUTES + LATE
    assert await history.write_due() == 4, "both periods written, a row per device each"
    assert count_rows(store, FIVE_MINUTES) == 4
    points = await history.points("d0", "s1", FIVE_MINUTES, T0, T0 + HOUR)
    assert [(at, p[LEVEL][1]) for at, p in points] == [(T0, 11.0), (T0 + FIVE_MINUTES, 13.0)]


async def test_periods_are_written_merged_into_hours_and_read_back(rollups: tuple[LineHistory, Clock, Store]) -> None:
    history, clock, store = rollups
    await feed_hour(history, clock)
    assert count_rows(store, FIVE_MINUTES) == 24  # 12 periods x 2 devices
    assert count_rows(store, HOUR) == 0  # the hour's last period was written only now
    await history.write_due()
    assert count_rows(store, HOUR) == 2
    points = await history.points("d0", "s1", FIVE_MINUTES, T0, T0 + HOUR)
    assert [at for at, _ in points] == [T0 + k * FIVE_MINUTES for k in range(12)]
    assert [p[LEVEL] for _, p in points] == [(11.0 + k, 11.0 + k, 11.0 + k) for k in range(12)]
    ((at, hour),) = await history.points("d0", "s1", HOUR, T0, T0 + HOUR)
    assert at == T0 and hour[LEVEL] == (11.0, 16.5, 22.0) and hour[RATE] == (1e6, 1e6, 1e6)
    assert await history.points("d0", "s5", FIVE_MINUTES, T0, T0 + HOUR) == []  # s5 is on d1


async def test_old_rows_are_pruned_by_their_own_retention(rollups: tuple[LineHistory, Clock, Store]) -> None:
    history, clock, store = rollups
    await feed_hour(history, clock)
    await history.write_due()
    clock.now = T0 + 86400 + 1800  # 5-minute rows kept a day here: the first half hour's are past it
    history._current = lambda: config(LINES, five_minutes=86400.0, hourly=2 * 86400.0)  # type: ignore[method-assign]
    assert await history.prune() == 12
    assert count_rows(store, FIVE_MINUTES) == 12 and count_rows(store, HOUR) == 2
    clock.now = T0 + 3 * 86400
    assert await history.prune() == 14
    assert count_rows(store, HOUR) == 0


async def test_in_a_cluster_the_pollers_write_the_periods_and_the_correlator_merges_the_hours(store: Store) -> None:  # noqa: F811
    """A poller's history writes 5-minute rows only; the correlator's, fed nothing, merges an hour
    once OTHERS_WRITE seconds have passed after it, from the rows the pollers wrote."""
    clock = Clock(float(T0))
    poller = LineHistory(store, lambda: config(LINES), clock, merges=False)
    correlator = LineHistory(store, lambda: config(LINES), clock)
    correlator.fed = False
    try:
        correlator.take(poll("d0", T0 + 10, 100.0))  # not its to add up
        await feed_hour(poller, clock)
        await poller.write_due()
        assert (count_rows(store, FIVE_MINUTES), count_rows(store, HOUR)) == (24, 0)
        clock.now = T0 + HOUR + OTHERS_WRITE - 1
        assert await correlator.write_due() == 0
        clock.now = T0 + HOUR + OTHERS_WRITE
        assert await correlator.write_due() == 2  # d0's and d1's hour
        ((at, hour),) = await correlator.points("d0", "s1", HOUR, T0, T0 + HOUR)
        assert at == T0 and hour[LEVEL] == (11.0, 16.5, 22.0)
        assert correlator.rows_written == 2  # the hours: its own take added no period
    finally:
        await poller.stop()
        await correlator.stop()


async def test_drifting_lines_come_from_the_latest_hour(rollups: tuple[LineHistory, Clock, Store]) -> None:
    history, clock, store = rollups
    for k in range(12):
        for device in ("d0", "d1"):
            history.take(poll(device, T0 + k * FIVE_MINUTES + 10, 7.0))  # s0 7.0, s1 8.0, s2 9.0, s3 10.0
    clock.now = T0 + HOUR + LATE
    await history.write_due()
    await history.write_due()
    found = await history.drifting(margin=3.0)
    assert [(d.line, d.headroom) for d in found] == [("s0", 1.0), ("s4", 1.0), ("s1", 2.0), ("s5", 2.0), ("s2", 3.0), ("s6", 3.0)]


async def test_the_period_in_progress_is_written_at_a_stop_and_lost_in_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    clock = Clock(float(T0))
    store = Store.open(path)
    history = LineHistory(store, lambda: config(LINES), clock)
    await feed_hour(history, clock)  # written
    history.take(poll("d0", T0 + HOUR + 10, 30.0))  # in progress
    await history.stop()
    store.close()

    store = Store.open(path)
    history = LineHistory(store, lambda: config(LINES), clock)
    points = await history.points("d0", "s0", FIVE_MINUTES, T0, T0 + 2 * HOUR)
    assert len(points) == 13 and points[-1] == (T0 + HOUR, {LEVEL: (30.0, 30.0, 30.0), RATE: (1e6, 1e6, 1e6)})
    history.take(poll("d0", T0 + HOUR + 100, 40.0))  # the rest of that period: not kept
    history.take(poll("d0", T0 + HOUR + FIVE_MINUTES + 10, 50.0))  # the next period, in progress at a crash
    clock.now = T0 + HOUR + FIVE_MINUTES + 20
    await history.write_due()
    history._thread.shutdown()  # a crash: no stop
    store.close()

    store = Store.open(path)
    history = LineHistory(store, lambda: config(LINES), clock)
    points = await history.points("d0", "s0", FIVE_MINUTES, T0, T0 + 2 * HOUR)
    assert [at for at, _ in points][-2:] == [T0 + HOUR - FIVE_MINUTES, T0 + HOUR]
    assert points[-1][1][LEVEL] == (30.0, 30.0, 30.0)
    # the hour missed while it was down is rolled up once 5-minute rows are written again
    history.take(poll("d0", T0 + 2 * HOUR + 10, 60.0))
    clock.now = T0 + 2 * HOUR + FIVE_MINUTES + LATE
    await history.write_due()
    await history.write_due()
    assert [at for at, _ in await history.points("d0", "s0", HOUR, T0, T0 + 3 * HOUR)] == [T0, T0 + HOUR]
    await history.stop()
    store.close()


def test_rollup_rows_compare_by_value() -> None:
    row = Rollup("d1", FIVE_MINUTES, T0, (LEVEL,), b"")
    assert row == Rollup("d1", FIVE_MINUTES, T0, (LEVEL,), b"") and period_start(T0 + 299.9, FIVE_MINUTES) == T0


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
async def test_a_state_of_the_schema_before_roll_ups_gains_them(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if engine == "sqlite":
        where: Path | StateServer = tmp_path / "old.db"
        db = sqlite3.connect(where, isolation_level=None)
        migrate(db, target=version_before(MIGRATIONS, "CREATE TABLE line_quality"))
        db.close()
    else:
        where = request.getfixturevalue("pg_database")
        connection = Postgres.connect(where)
        migrate_postgres(connection, PG_MIGRATIONS, target=version_before(PG_MIGRATIONS, "CREATE TABLE line_quality"))
        connection.close()
    store = Store.open(where)
    clock = Clock(float(T0))
    history = LineHistory(store, lambda: config(LINES), clock)
    try:
        history.take(poll("d1", T0 + 10, 9.0))
        assert await history.flush() == 1
        assert await history.points("d1", "s4", FIVE_MINUTES, T0, T0 + HOUR) == [
            (T0, {LEVEL: (9.0, 9.0, 9.0), RATE: (1e6, 1e6, 1e6)})
        ]
    finally:
        await history.stop()
        store.close()
