"""CPU of each pipeline call (engine step, notice planning, commit) while a region goes dark at 100,000 lines.

    PYTHONPATH=. .venv/bin/python bench/regional_steps.py [--devices 2084] [--ports 48] [--seconds 300] [--profile]

The 100,032-line inventory of bench/capacity.py with `notifiers.sms` configured (every
subscriber has a phone, as in bench/endurance.py), every line's first samples, then region-0's
261 DSLAMs and 12,528 modems silent on a simulated clock, polled as the daemon's shipped
defaults would: ICMP every 30 s (the DSLAM and its 48 modems time out), the two SNMP line tables
every 60 s (the DSLAM times out), each device at its own phase, the rechecks a step asks for 4 s
later (2 s timeout, 1 retry), and a tick every second. Each `Pipeline.ingest` and
`Pipeline.tick` is timed in CPU seconds of the loop's thread (`time.thread_time`), which is what it
holds the event loop for on an idle core whatever else the machine runs, and of the rules' thread
where the engine steps (monitord/rules_thread.py). The step's commit is made by the store's
writer thread meanwhile (monitord/stepwriter.py: its CPU is printed apart); the outbox is not
started (sending is not measured here). It first prints the CPU of every line's first samples,
per thread (a first start: every target new, a row each).
`--at-once S`: the dark devices' first polls all come within S seconds (the region fails at
once, as in bench/endurance.py, and one step opens it with every subscriber's notice), not
spread over their intervals.
`--profile`: cProfile of the call that held the loop's thread longest, that thread's and the rules' thread's apart.
`--busy-thread`: a thread runs Python throughout; the wall times then show what the loop thread
waits to win the GIL back after each call that let go of it.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import heapq
import pstats
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import yaml

from bench.capacity import Clock, device_batch, write_inventory
from lab.isp import write_secret
from monitord import rules_thread
from monitord.config import load_config
from monitord.daemon import SWITCH_INTERVAL, Daemon
from monitord.model import NodeRef, Outcome, Sample

ENV = {"BENCH_COMMUNITY": "never-sent"}
ICMP_EVERY, LINES_EVERY, RECHECK_AFTER = 30.0, 60.0, 4.0


def silent_icmp(device: str, lines: list[str], now: float) -> list[Sample]:
    detail = "no reply"
    batch = [Sample(NodeRef("device", device), "icmp", now, Outcome.TIMEOUT, {"loss": 1.0}, detail)]
    return batch + [Sample(NodeRef("line", line), "icmp", now, Outcome.TIMEOUT, {"loss": 1.0}, detail) for line in lines]


def silent_snmp(device: str, now: float) -> list[Sample]:
    node = NodeRef("device", device)
    return [Sample(node, probe, now, Outcome.TIMEOUT, detail="no response") for probe in ("snmp:adsl", "snmp:if-mib")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2084)
    parser.add_argument("--ports", type=int, default=48)
    parser.add_argument("--seconds", type=float, default=300.0, help="simulated seconds of the fault")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--at-once", type=float, metavar="S", help="the dark devices' first polls within S seconds")
    parser.add_argument(
        "--busy-thread", action="store_true", help="another thread runs Python meanwhile, as the HTTP and /metrics threads do"
    )
    args = parser.parse_args()
    rng = random.Random(11)
    with tempfile.TemporaryDirectory(prefix="regional-") as name:
        folder = Path(name)
        path = write_inventory(folder, args.devices, args.ports)
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        raw["notifiers"] = {
            "sms": {
                "kind": "twilio",
                "account_sid": "AC" + "0" * 32,
                "auth_token": write_secret(folder, "twilio.token", "never-sent"),
                "from": "+908502200000",
                "base_url": "http://127.0.0.1:9",
            }
        }
        path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
        config = load_config(path, environ=ENV)
        clock = Clock(time.time())
        daemon = Daemon(config, clock=clock)
        pipeline = daemon.pipeline
        lines_of: dict[str, list[str]] = defaultdict(list)
        for line in config.topology.lines.values():
            lines_of[line.device].append(line.id)
        plan = [(d, lines_of[d]) for d in config.topology.devices]
        loop = asyncio.new_event_loop()
        run = loop.run_until_complete
        first_round = 0.0  # the loop thread's CPU for every line's first samples, as at a first start
        for probe in ("snmp:adsl", "snmp:if-mib", "icmp"):
            clock.now += 1
            batch = [s for d, lines in plan for s in device_batch(probe, d, lines, clock.now, rng)]
            began = time.thread_time()
            run(pipeline.ingest(batch))
            first_round += time.thread_time() - began
        writer = thread_clock("monitord-steps")
        rules = thread_clock("monitord-rules")
        print(
            f"every line's first samples ({len(plan) * 3:,} polls' worth, 3 probes): loop thread {first_round:.2f} s, "
            f"the rules thread {time.clock_gettime(rules):.2f} s, the writer thread (their rows) {time.clock_gettime(writer):.2f} s of CPU"
        )
        clock.now += 31
        run(pipeline.tick())
        gc.freeze()  # as `Daemon.run` does once the engine knows its targets: GC passes skip them
        writer_began = time.clock_gettime(writer)

        dark = [
            d
            for d in config.topology.devices
            if config.topology.exchanges[config.topology.devices[d].exchange].region == "region-0"
        ]
        start = clock.now
        events: list[tuple[float, int, str, str]] = []  # (when, order, what, device)
        for n, d in enumerate(dark):
            heapq.heappush(events, (start + rng.uniform(0, args.at_once or ICMP_EVERY), n, "icmp", d))
            heapq.heappush(events, (start + rng.uniform(0, args.at_once or LINES_EVERY), n, "snmp", d))
        for second in range(1, int(args.seconds) + 1):
            heapq.heappush(events, (start + second, -1, "tick", ""))
        timed: list[tuple[float, str]] = []
        in_rules: list[float] = []  # the same calls' CPU in the rules' thread
        walls: list[float] = []  # the same calls' wall time: CPU plus waits (the disk, the GIL)
        collections: list[float] = []  # wall seconds of each full (oldest generation) collection

        def noted(phase: str, info: dict[str, int]) -> None:
            if info["generation"] == 2:
                collections.append(time.perf_counter() if phase == "start" else time.perf_counter() - collections.pop())

        gc.callbacks.append(noted)
        busy = threading.Event()
        sys.setswitchinterval(SWITCH_INTERVAL)  # as `Daemon.run` sets it
        if args.busy_thread:
            threading.Thread(target=spin, args=(busy,), daemon=True).start()
        slowest: tuple[float, cProfile.Profile | None, cProfile.Profile | None] = (0.0, None, None)
        recheck_at: dict[str, float] = {}
        end = start + args.seconds
        while events and events[0][0] <= end:
            when, order, what, device = heapq.heappop(events)
            clock.now = when
            profiles = (cProfile.Profile(), cProfile.Profile()) if args.profile else None  # the loop's, the rules'
            if profiles is not None:
                profiles[0].enable()
                rules_thread.RULES.submit(profiles[1].enable).result()
            began, wall_began, rules_began = time.thread_time(), time.perf_counter(), time.clock_gettime(rules)
            if what == "tick":
                run(pipeline.tick())
                recheck: tuple[str, ...] = ()
            else:
                batch = silent_icmp(device, lines_of[device], when) if what == "icmp" else silent_snmp(device, when)
                recheck = run(pipeline.ingest(batch)).recheck
            took, wall, rules_took = (
                time.thread_time() - began,
                time.perf_counter() - wall_began,
                time.clock_gettime(rules) - rules_began,
            )
            if profiles is not None:
                rules_thread.RULES.submit(profiles[1].disable).result()
                profiles[0].disable()
                slowest = max(slowest, (took, *profiles), key=lambda three: three[0])
            timed.append((took, f"{what} {device}".strip()))
            in_rules.append(rules_took)
            walls.append(wall)
            if what == "icmp":
                heapq.heappush(events, (when + ICMP_EVERY, order, what, device))
            elif what == "snmp" and device not in recheck_at:
                heapq.heappush(events, (when + LINES_EVERY, order, what, device))
            if what == "recheck":
                del recheck_at[device]
            for other in recheck:
                if other in lines_of and other not in recheck_at and other in dark:
                    recheck_at[other] = when + RECHECK_AFTER
                    heapq.heappush(events, (when + RECHECK_AFTER, len(dark), "recheck", other))
        times = sorted(t for t, _ in timed)
        over = [t for t in times if t > 0.1]
        print(
            f"regional fault, {len(dark)} DSLAMs, {sum(len(lines_of[d]) for d in dark):,} lines, {args.seconds:g} simulated s: "
            f"{len(timed)} calls, CPU {sum(times):.2f} s in all, max {times[-1] * 1000:.0f} ms, "
            f"p99 {times[int(len(times) * 0.99)] * 1000:.1f} ms, median {statistics.median(times) * 1000:.2f} ms, "
            f"{sum(t > 0.05 for t in times)} over 50 ms, {len(over)} over 100 ms ({sum(over):.2f} s)"
        )
        in_rules.sort()
        print(
            f"the rules thread: CPU {sum(in_rules):.2f} s in all, max {in_rules[-1] * 1000:.0f} ms, "
            f"p99 {in_rules[int(len(in_rules) * 0.99)] * 1000:.1f} ms, {sum(t > 0.05 for t in in_rules)} over 50 ms"
        )
        walls.sort()
        print(
            f"wall: {sum(walls):.2f} s in all, max {walls[-1] * 1000:.0f} ms, p99 {walls[int(len(walls) * 0.99)] * 1000:.1f} ms, "
            f"{sum(w > 0.05 for w in walls)} over 50 ms, {sum(w > 0.1 for w in walls)} over 100 ms"
        )
        print(f"the writer thread's CPU (the steps' commits): {time.clock_gettime(writer) - writer_began:.2f} s")
        busy.set()
        gc.callbacks.remove(noted)
        print(
            f"open incidents {len(daemon.open_incidents())}; outbox depth {daemon.store.depth()}; "
            f"{len(collections)} full GC passes, longest {max(collections, default=0.0) * 1000:.0f} ms wall"
        )
        for took, what in sorted(timed, reverse=True)[:8]:
            print(f"  {took * 1000:7.1f} ms  {what}")
        for thread, profiled in (("the loop's thread", slowest[1]), ("the rules' thread", slowest[2])):
            if profiled is not None:
                print(f"slowest call, {thread}:")
                pstats.Stats(profiled).sort_stats("cumulative").print_stats(40)
        daemon.store.close()


def thread_clock(prefix: str) -> int:
    """The CPU clock of the thread whose name starts with `prefix`."""
    return time.pthread_getcpuclockid(next(t.ident for t in threading.enumerate() if t.name.startswith(prefix)))  # type: ignore[arg-type]


def spin(done: threading.Event) -> None:
    """Python that never waits, so every call of the loop thread that lets go of the GIL (SQLite,
    sockets) has to win it back from this thread."""
    while not done.is_set():
        sum(range(1000))


if __name__ == "__main__":
    main()
