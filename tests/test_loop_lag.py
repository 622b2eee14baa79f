"""The event loop is never held for long: a reload reads its files in a worker thread, and the
loop's lag is measured and exported (`monitord_event_loop_lag_seconds`)."""

from __future__ import annotations

import asyncio
import gc
import re
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

import monitord.daemon
import monitord.gcfreeze
from monitord.config import Config
from monitord.daemon import Daemon
from monitord.demo import until
from monitord.looplag import LoopLag
from rules.engine import Engine
from tests.test_metrics import sample_config

T = TypeVar("T")


async def test_a_stall_is_noted_and_forgotten_two_windows_later() -> None:
    lag = LoopLag(every=0.01, window=0.3)
    task = asyncio.create_task(lag.run())
    try:
        await asyncio.sleep(0.05)
        time.sleep(0.2)  # the loop held
        await asyncio.sleep(0.05)
        assert 0.15 < lag.worst() < 0.5
        await asyncio.sleep(0.7)
        assert lag.worst() < 0.1, "a stall more than two windows ago is no longer reported"
    finally:
        task.cancel()


def busy_load(real, seconds: float):
    """load_config after `seconds` of pure-Python CPU work, holding the GIL as parsing does."""

    def load(path: str | Path) -> Config:
        busy(seconds)
        return real(path)

    return load


async def test_a_reload_reads_its_files_off_the_loop_and_the_lag_is_exported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = sample_config(tmp_path)
    registry = CollectorRegistry()
    daemon = Daemon(config, registry=registry)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        await until(lambda: daemon.ready.is_set() or task.done(), 30, "the daemon to start")
        monkeypatch.setattr(monitord.daemon, "load_config", busy_load(monitord.daemon.load_config, 1.0))
        loop = asyncio.get_running_loop()
        began = loop.time()
        reloaded, ticks = await ticks_during(daemon.reload(tmp_path / "config.yaml"))
        took = loop.time() - began
        assert reloaded and took >= 1.0 and ticks >= 20, f"the loop ran {ticks} times in a {took:.1f} s reload"
        assert daemon.config.topology.lines.keys() == config.topology.lines.keys()
        await asyncio.sleep(0.2)
        exported = re.search(r"^monitord_event_loop_lag_seconds (\S+)$", generate_latest(registry).decode(), re.M)
        assert exported and float(exported[1]) == daemon.lag.worst() < 0.5

        time.sleep(0.6)  # a stall on the loop
        await asyncio.sleep(0.2)
        assert registry.get_sample_value("monitord_event_loop_lag_seconds") >= 0.5
    finally:
        stop.set()
        await task


async def test_while_it_runs_the_collector_waits_longer_between_passes(tmp_path: Path) -> None:
    """The daemon's GC thresholds (monitord/gcfreeze.py THRESHOLDS) hold while it runs, and the
    process's own come back when it stops (tests and benches run daemons in one process)."""
    own = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # CPython's defaults, whatever a daemon run alongside left
    daemon = Daemon(sample_config(tmp_path))
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        await until(lambda: daemon.ready.is_set() or task.done(), 30, "the daemon to start")
        assert gc.get_threshold() == monitord.gcfreeze.THRESHOLDS != (700, 10, 10)
    finally:
        stop.set()
        await task
        after = gc.get_threshold()
        gc.set_threshold(*own)
    assert after == (700, 10, 10)


async def test_new_rules_rebuild_the_engine_off_the_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reload that changes the rules rebuilds the engine from its snapshot in a worker thread
    (seconds at 100,000 lines) while the pipeline holds its steps; the loop runs meanwhile."""
    config = sample_config(tmp_path)
    daemon = Daemon(config)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        await until(lambda: daemon.ready.is_set() or task.done(), 30, "the daemon to start")
        path = tmp_path / "config.yaml"
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        raw.setdefault("rules", {})["settle"] = "7s"
        path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
        restore = Engine.restore
        monkeypatch.setattr(Engine, "restore", staticmethod(lambda *args, **kwargs: busy(1.0) or restore(*args, **kwargs)))
        before = daemon.pipeline.engine
        reloaded, ticks = await ticks_during(daemon.reload(path))
        assert reloaded and ticks >= 20, f"the loop ran {ticks} times while the engine was rebuilt"
        assert daemon.pipeline.engine is not before and daemon.config.rules.settle == 7.0
    finally:
        stop.set()
        await task


async def ticks_during(work: Awaitable[T]) -> tuple[T, int]:
    """What `work` returns, and how many 10 ms sleeps the loop finished meanwhile."""
    ticks = 0

    async def count() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    counter = asyncio.create_task(count())
    try:
        return await work, ticks
    finally:
        counter.cancel()


def busy(seconds: float) -> None:
    """Pure-Python CPU work, holding the GIL as parsing a config or building the engine does."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def in_reach(thing: object) -> bool:
    """Whether the GC's passes walk `thing` (tracked, and not frozen)."""
    return any(o is thing for o in gc.get_objects())


def test_the_rate_state_of_a_first_round_of_walks_is_frozen_too(tmp_path: Path) -> None:
    """The first walk of each device makes its rate state, up to a line interval after the start
    froze the rest: once enough of it is new, it is frozen as the engine's targets are, so the
    GC's full passes (which hold the loop) stop walking it."""
    daemon = Daemon(sample_config(tmp_path))
    try:
        daemon.freezer.freeze()
        assert not daemon.freezer.freeze_if_grown(), "nothing new: no freeze"
        rates, column = daemon.probes.rates, (1, 3, 6, 1, 2, 1, 10, 94, 1, 1, 3, 1, 1)
        for device in range(monitord.gcfreeze.MINIMUM + 1):
            rates.rates(f"d{device}", column, [(1,)], [5], [32], 1_780_000_000.0)
        kept = rates._counters["d0"][column]
        assert in_reach(kept), "new rate state is in the GC's reach"
        assert daemon.freezer.freeze_if_grown(), "the rate state grew: frozen again"
        assert not in_reach(kept)
    finally:
        gc.unfreeze()
        daemon.store.close()


def test_the_last_of_a_growth_too_small_to_freeze_is_frozen_once_it_settles() -> None:
    """The first walks' last few percent of rate state stay below the growth that freezes: once
    nothing more has been added for SETTLED seconds, they are frozen too, and only then."""
    now = [0.0]
    made: list[object] = []
    freezer = monitord.gcfreeze.Freezer(lambda: len(made), lambda: now[0])
    try:
        freezer.freeze()
        made += [[device] for device in range(10)]  # far below MINIMUM
        assert not freezer.freeze_if_grown(), "still growing, as far as it knows"
        now[0] += monitord.gcfreeze.SETTLED / 2
        made.append(["one more"])
        assert not freezer.freeze_if_grown(), "it grew again: the wait starts over"
        now[0] += monitord.gcfreeze.SETTLED - 1
        assert not freezer.freeze_if_grown()
        assert in_reach(made[0])
        now[0] += 1
        assert freezer.freeze_if_grown(), "settled: frozen"
        assert not in_reach(made[0]) and not in_reach(made[-1])
        now[0] += 10 * monitord.gcfreeze.SETTLED
        assert not freezer.freeze_if_grown(), "nothing new since: no freeze"
    finally:
        gc.unfreeze()
