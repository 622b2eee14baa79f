"""How long the rules' commits and a reload hold the event loop at 100,000 lines.

    PYTHONPATH=. .venv/bin/python bench/state_stalls.py [--devices 2084] [--ports 48]

The 100,032-line inventory of bench/capacity.py, every line's first samples, then, each call
timed in CPU seconds of the loop thread (what it holds the loop for: the commit is made by the
store's writer thread meanwhile, monitord/stepwriter.py): a typical device poll (48 healthy lines), a
device poll whose 48 lines go down, a tick 31 s after the last one (the old periodic snapshot),
a regional fault (every DSLAM of one region silent, then ticks until its incidents settle), and
a reload of the unchanged files under asyncio with a task noting every 10 ms how late it woke
(and the loop thread's CPU time in the swap, `Pipeline.reload`, and the longest garbage
collection pass meanwhile: a full one holds the GIL, so the loop, whichever thread runs it),
then a reload whose rules changed (the engine rebuilt from its snapshot).
Runs on the code found on PYTHONPATH, so the same script measures the tree before and after a
change.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import inspect
import os
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import yaml

from bench.capacity import Clock, device_batch, write_inventory
from monitord.config import load_config
from monitord.daemon import SWITCH_INTERVAL, Daemon
from monitord.model import NodeRef, Outcome, Sample

ENV = {"BENCH_COMMUNITY": "never-sent"}


LOOP = asyncio.new_event_loop()


def done(result: object) -> object:
    """A pipeline call's result, run on LOOP where the tree's pipeline is async (older trees' is not)."""
    return LOOP.run_until_complete(result) if inspect.isawaitable(result) else result


def wall(call: Callable[..., object], *args: object) -> float:
    """The loop thread's CPU seconds in one pipeline call."""
    began = time.thread_time()
    done(call(*args))
    return time.thread_time() - began


async def reload_lag(daemon: Daemon, path: Path) -> tuple[float, float, float, float]:
    """Wall time of a reload, the loop's worst lag meanwhile (monitord.looplag's way, inline
    so that the script runs on trees without it), and the CPU time of the swap on the loop
    (`Pipeline.reload`, timed by the loop thread's clock: what the loop does itself, whatever
    the machine's load and the worker thread), and the longest garbage collection meanwhile."""
    loop, worst, swap = asyncio.get_running_loop(), [0.0], [0.0]
    reload = daemon.pipeline.reload

    def timed(*args: object) -> None:  # an older tree's pipeline reloads without awaiting
        began = time.thread_time()
        reload(*args)  # type: ignore[arg-type]
        swap[0] = time.thread_time() - began

    async def timed_async(*args: object) -> None:
        began = time.thread_time()
        await reload(*args)  # type: ignore[arg-type,misc]
        swap[0] = time.thread_time() - began

    daemon.pipeline.reload = timed_async if inspect.iscoroutinefunction(reload) else timed  # type: ignore[assignment]
    collecting, collections = [0.0], [0.0]

    def noted(phase: str, info: dict[str, int]) -> None:
        """The garbage collector's passes: a full one holds the GIL, whichever thread runs it."""
        if phase == "start":
            collecting[0] = time.perf_counter()
        else:
            collections.append(time.perf_counter() - collecting[0])

    gc.callbacks.append(noted)

    async def sample() -> None:
        while True:
            asked = loop.time() + 0.01
            await asyncio.sleep(0.01)
            worst[0] = max(worst[0], loop.time() - asked)

    task = asyncio.create_task(sample())
    await asyncio.sleep(0.05)
    began = time.perf_counter()
    done = daemon.reload(path)
    if inspect.isawaitable(done):  # a reload off the loop
        await done
    took = time.perf_counter() - began
    await asyncio.sleep(0.05)
    task.cancel()
    gc.callbacks.remove(noted)
    return took, worst[0], swap[0], max(collections)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2084)
    parser.add_argument("--ports", type=int, default=48)
    args = parser.parse_args()
    rng = random.Random(11)
    os.environ.update(ENV)  # a reload reads the environment
    sys.setswitchinterval(SWITCH_INTERVAL)  # as `Daemon.run` sets it: the worker threads run Python beside the loop
    with tempfile.TemporaryDirectory(prefix="stalls-") as folder:
        path = write_inventory(Path(folder), args.devices, args.ports)
        began = time.perf_counter()
        config = load_config(path, environ=ENV)
        print(f"load_config                        {time.perf_counter() - began:7.3f} s")
        clock = Clock(time.time())
        daemon = Daemon(config, clock=clock)
        lines_of: dict[str, list[str]] = defaultdict(list)
        for line in config.topology.lines.values():
            lines_of[line.device].append(line.id)
        plan = [(d, lines_of[d]) for d in config.topology.devices]
        for probe in ("snmp:adsl", "snmp:if-mib", "icmp"):
            clock.now += 1
            done(daemon.pipeline.ingest([s for d, lines in plan for s in device_batch(probe, d, lines, clock.now, rng)]))
        clock.now += 31
        print(f"first tick after the first samples {wall(daemon.pipeline.tick):7.3f} s")

        typical = []
        for d, lines in plan[:20]:
            clock.now += 0.5
            typical.append(wall(daemon.pipeline.ingest, device_batch("snmp:adsl", d, lines, clock.now, rng)))
        print(f"typical device poll (48 lines)     {statistics.median(typical):7.4f} s median, {max(typical):.4f} max of 20")
        d, lines = plan[20]
        clock.now += 1
        down = wall(daemon.pipeline.ingest, device_batch("snmp:if-mib", d, lines, clock.now, rng, oper_up=0.0))
        print(f"device poll, 48 lines go down      {down:7.4f} s")
        clock.now += 31
        print(f"tick 31 s later                    {wall(daemon.pipeline.tick):7.4f} s")

        region = config.topology.exchanges[config.topology.devices[plan[0][0]].exchange].region
        dark = [d for d, _ in plan if config.topology.exchanges[config.topology.devices[d].exchange].region == region]
        polls = []
        for d in dark:
            clock.now += 0.01
            silent = [Sample(NodeRef("device", d), p, clock.now, Outcome.TIMEOUT) for p in ("icmp", "snmp:adsl")]
            polls.append(wall(daemon.pipeline.ingest, silent))
        ticks = []
        for _ in range(200):
            clock.now += 1
            ticks.append(wall(daemon.pipeline.tick))
        dark_lines = sum(len(lines_of[d]) for d in dark)
        print(
            f"regional fault: {len(dark)} DSLAMs, {dark_lines:,} lines; polls {max(polls):.3f} s max, "
            f"{sum(polls):.2f} s in all; ticks {max(ticks):.3f} s max; open incidents {len(daemon.open_incidents())}"
        )
        took, worst, swap, collected = LOOP.run_until_complete(reload_lag(daemon, path))
        print(
            f"reload (same files)                {took:7.3f} s, loop's worst lag {worst:.3f} s, "
            f"swap {swap:.3f} s CPU, longest GC pass {collected:.3f} s"
        )
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        raw.setdefault("rules", {})["settle"] = "61s"  # the engine is rebuilt from its snapshot
        path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
        took, worst, swap, collected = LOOP.run_until_complete(reload_lag(daemon, path))
        print(
            f"reload (new rules)                 {took:7.3f} s, loop's worst lag {worst:.3f} s, "
            f"swap {swap:.3f} s CPU, longest GC pass {collected:.3f} s"
        )
        done(daemon.pipeline.stop())
        daemon.store.close()
        began = time.perf_counter()
        again = Daemon(config, clock=clock)
        print(
            f"restart: Daemon(config) resumes    {time.perf_counter() - began:7.3f} s, {len(again.open_incidents())} open incidents"
        )
        again.store.close()


if __name__ == "__main__":
    main()
