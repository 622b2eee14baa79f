"""The scheduler in real time with short intervals (tens of milliseconds)."""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise

from monitord.model import NodeRef, Outcome, Sample
from probes.scheduler import Job, Scheduler


@dataclass
class Probe:
    """A fake device poll that records when it ran and how many ran at once."""

    device: str
    duration: float = 0.0
    outcome: Outcome = Outcome.OK
    starts: list[float] = field(default_factory=list)
    dues: list[float] = field(default_factory=list)  # the slots it ran for, from the stats
    running: int = 0
    most: int = 0
    watch: tuple[Scheduler, str] | None = None

    async def __call__(self) -> list[Sample]:
        self.starts.append(time.monotonic())
        if self.watch:
            scheduler, key = self.watch
            stats = scheduler.stats[key]
            self.dues.append(stats.last_started - stats.lag)
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(self.duration)
        finally:
            self.running -= 1
        return [Sample(NodeRef("device", self.device), "test", time.time(), self.outcome)]


class Sink:
    def __init__(self) -> None:
        self.samples: list[Sample] = []

    async def __call__(self, samples: list[Sample]) -> None:
        self.samples.extend(samples)


async def run_for(scheduler: Scheduler, seconds: float) -> None:
    async with asyncio.TaskGroup() as tg:
        tg.create_task(scheduler.run_forever())
        await asyncio.sleep(seconds)
        scheduler.stop()


def gaps(starts: Iterable[float]) -> list[float]:
    starts = list(starts)
    return [b - a for a, b in pairwise(starts)]


async def test_each_probe_class_keeps_its_interval() -> None:
    fast, slow = Probe("a"), Probe("b")
    jobs = [Job("a/icmp", "a", "icmp", 0.05, fast), Job("b/line", "b", "line", 0.12, slow)]
    sink = Sink()
    scheduler = Scheduler(jobs, sink, jitter=0.0)
    fast.watch, slow.watch = (scheduler, "a/icmp"), (scheduler, "b/line")
    await run_for(scheduler, 0.62)
    assert 11 <= len(fast.starts) + scheduler.skipped["icmp"] <= 13
    assert 5 <= len(slow.starts) + scheduler.skipped["line"] <= 6
    for probe, interval in ((fast, 0.05), (slow, 0.12)):
        slots = [g / interval for g in gaps(probe.dues)]
        assert all(abs(n - round(n)) < 1e-6 and round(n) >= 1 for n in slots), slots
        assert 0.8 * interval <= statistics.median(gaps(probe.starts)) <= 1.2 * interval
    ran = len(fast.starts) + len(slow.starts)
    assert ran - 2 <= len(sink.samples) <= ran  # stop() may cancel the runs in flight
    stats = scheduler.stats["a/icmp"]
    assert stats.last_started is not None and abs(stats.last_started - fast.starts[-1]) < 0.01
    assert stats.lag is not None and 0 <= stats.lag < 0.05
    assert stats.backoff == 1


async def test_first_runs_are_spread_over_the_interval() -> None:
    probes = [Probe(f"d{i}") for i in range(400)]
    jobs = [Job(f"d{i}", f"d{i}", "icmp", 0.6, p) for i, p in enumerate(probes)]
    started = time.monotonic()
    await run_for(Scheduler(jobs, Sink(), rng=random.Random(7)), 0.65)
    firsts = [p.starts[0] - started for p in probes if p.starts]
    assert len(firsts) >= 0.98 * len(probes)
    assert max(firsts) - min(firsts) > 0.5
    per_tenth = Counter(min(int(t / 0.06), 9) for t in firsts)
    assert all(15 <= per_tenth[b] <= 65 for b in range(10)), per_tenth


async def test_the_jobs_waiting_for_their_slot_cost_the_gc_nothing() -> None:
    """Each job waits in the scheduler's heap for its slot, up to an interval (minutes): what the
    heap holds is numbers, which the GC stops tracking, so its full passes (which hold the event
    loop) do not walk one entry per job; every job still runs in its slot."""
    probes = [Probe(f"d{i}") for i in range(50)]
    scheduler = Scheduler([Job(f"d{i}", f"d{i}", "icmp", 0.1, p) for i, p in enumerate(probes)], Sink(), jitter=0.0)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(scheduler.run_forever())
        await asyncio.sleep(0.25)
        gc.collect()
        assert len(scheduler._heap) == len(probes)
        assert not any(gc.is_tracked(entry) for entry in scheduler._heap)
        scheduler.stop()
    assert all(len(p.starts) >= 2 for p in probes), "every job ran in its slots"


async def test_limits_hold_globally_and_per_device() -> None:
    probes = [Probe(f"dev{i % 4}", duration=0.03) for i in range(24)]
    jobs = [Job(f"job{i}", p.device, "line", 0.05, p) for i, p in enumerate(probes)]
    seen = {"global": 0, "most": 0}
    per_device: dict[str, int] = defaultdict(int)
    most_per_device: dict[str, int] = defaultdict(int)

    def counted(probe: Probe):
        async def run() -> list[Sample]:
            seen["global"] += 1
            per_device[probe.device] += 1
            seen["most"] = max(seen["most"], seen["global"])
            most_per_device[probe.device] = max(most_per_device[probe.device], per_device[probe.device])
            try:
                return await probe()
            finally:
                seen["global"] -= 1
                per_device[probe.device] -= 1

        return run

    jobs = [Job(j.key, j.device, j.probe_class, j.interval, counted(p)) for j, p in zip(jobs, probes)]
    scheduler = Scheduler(jobs, Sink(), max_in_flight=3, per_device_in_flight=1)
    await run_for(scheduler, 0.5)
    assert seen["most"] == 3
    assert set(most_per_device.values()) == {1}
    assert sum(len(p.starts) for p in probes) >= 0.5 / 0.03 * 3 * 0.5
    assert max(s.lag for s in scheduler.stats.values() if s.lag is not None) > 0.02
    assert scheduler.skipped["line"] > 0


async def test_a_ping_never_waits_behind_its_devices_slow_walks() -> None:
    """The device's slots protect its SNMP agent; its ping, answered by the forwarding plane,
    starts on its own slots while slow walks hold them all."""
    walks = [Probe("dslam", duration=0.4) for _ in range(2)]
    ping = Probe("dslam")
    jobs = [Job(f"walk{i}", "dslam", "line", 0.5, walk) for i, walk in enumerate(walks)]
    jobs.append(Job("ping", "dslam", "icmp", 0.05, ping, asks_agent=False))
    scheduler = Scheduler(jobs, Sink(), per_device_in_flight=1, jitter=0.0, rng=random.Random(31))  # walks from 6 and 56 ms
    ping.watch = (scheduler, "ping")
    await run_for(scheduler, 0.6)
    assert max(walk.most for walk in walks) == 1 and sum(len(walk.starts) for walk in walks) >= 1, "the walks share one slot"
    assert len(ping.starts) >= 8  # of 12 slots; 4 when it waited for the walks' slot
    late = [round(start - due, 3) for start, due in zip(ping.starts, ping.dues) if start - due > 0.2]
    assert late == [], f"the ping started late: {late}"  # up to a walk's 0.4 s when it waited


async def test_overrunning_job_is_skipped_and_counted() -> None:
    slow = Probe("dslam", duration=0.17)
    scheduler = Scheduler([Job("dslam/line", "dslam", "line", 0.05, slow)], Sink(), jitter=0.0)
    await run_for(scheduler, 0.5)
    assert slow.most == 1
    assert 2 <= len(slow.starts) <= 3
    assert scheduler.skipped["line"] >= 6
    assert scheduler.skipped["icmp"] == 0
    assert 0.16 <= scheduler.stats["dslam/line"].last_duration <= 0.2


async def test_silent_device_is_checked_each_interval_and_fully_polled_rarely() -> None:
    full = Probe("olt", outcome=Outcome.TIMEOUT)
    check = Probe("olt", outcome=Outcome.TIMEOUT)
    sink = Sink()
    job = Job("olt", "olt", "line", 0.04, full, check)
    scheduler = Scheduler([job], sink, jitter=0.0, max_backoff=4)
    full.watch = check.watch = (scheduler, "olt")
    async with asyncio.TaskGroup() as tg:
        tg.create_task(scheduler.run_forever())
        await asyncio.sleep(0.8)
        silent_full, silent_dues = len(full.dues), sorted(full.dues + check.dues)
        silent_backoff, silent_skipped = scheduler.stats["olt"].backoff, scheduler.skipped["line"]
        full.outcome = check.outcome = Outcome.OK
        revived = time.monotonic()
        await asyncio.sleep(0.2)
        scheduler.stop()
    # slots 0 2 6 10 14 18 full, the others checked: every slot polled once, one in four fully
    assert 18 <= len(silent_dues) + silent_skipped <= 21
    assert silent_full <= 7
    slots = [round(g / 0.04) for g in gaps(silent_dues)]
    assert min(slots) == 1 and sum(n - 1 for n in slots) <= silent_skipped
    assert silent_backoff == 4
    recovered = [due for due, t in zip(full.dues, full.starts) if t >= revived]
    assert recovered[0] - revived <= 0.04 + 1e-3
    assert len(recovered) >= 3
    assert scheduler.stats["olt"].backoff == 1
    assert sink.samples[-1].outcome is Outcome.OK


async def test_job_without_check_is_never_backed_off() -> None:
    dead = Probe("router", outcome=Outcome.UNREACHABLE)
    scheduler = Scheduler([Job("router/icmp", "router", "icmp", 0.04, dead)], Sink(), jitter=0.0)
    await run_for(scheduler, 0.42)
    assert len(dead.starts) >= 7  # about 10 at its interval; backed off (every 2, 4, 8 intervals) 3 or 4
    assert scheduler.stats["router/icmp"].backoff == 1


async def test_exceptions_are_logged_once_and_never_stop_the_scheduler(caplog) -> None:
    calls = Counter()

    async def broken() -> list[Sample]:
        calls["broken"] += 1
        raise RuntimeError("agent sent garbage")

    async def flaky_sink(samples: list[Sample]) -> None:
        calls["sink"] += 1
        raise OSError("disk full")

    healthy = Probe("b")
    jobs = [Job("a", "a", "line", 0.03, broken), Job("b", "b", "icmp", 0.03, healthy)]
    scheduler = Scheduler(jobs, flaky_sink, jitter=0.0)
    with caplog.at_level(logging.INFO, logger="monitord.scheduler"):
        await run_for(scheduler, 0.3)
    assert calls["broken"] >= 8 and len(healthy.starts) >= 8
    assert len(healthy.starts) - 1 <= calls["sink"] <= len(healthy.starts)  # stop() may cut the last
    assert scheduler.errors == Counter({"line": calls["broken"]})
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("job a failed: RuntimeError: agent sent garbage") == 1
    assert messages.count("sink failed: OSError: disk full") == 1


async def test_replace_jobs_keeps_the_timing_of_unchanged_jobs() -> None:
    kept, dropped, added = Probe("a"), Probe("b"), Probe("c")
    kept_again = Probe("a")
    scheduler = Scheduler([Job("a", "a", "line", 0.1, kept), Job("b", "b", "optical", 0.1, dropped)], Sink(), jitter=0.0)
    kept.watch = kept_again.watch = (scheduler, "a")
    async with asyncio.TaskGroup() as tg:
        tg.create_task(scheduler.run_forever())
        await asyncio.sleep(0.35)
        before = scheduler.stats["a"]
        scheduler.replace_jobs([Job("a", "a", "line", 0.1, kept_again), Job("c", "c", "icmp", 0.1, added)])
        assert scheduler.stats["a"] == before
        dropped_runs = len(dropped.starts)
        await asyncio.sleep(0.3)
        scheduler.stop()
    assert len(dropped.starts) == dropped_runs
    assert 3 <= len(kept_again.starts) <= 4 and len(added.starts) >= 2
    slots = [(t - kept.dues[0]) / 0.1 for t in kept_again.dues]
    assert all(abs(n - round(n)) < 1e-6 for n in slots), slots
    assert round(slots[0]) == len(kept.dues) + scheduler.skipped["line"]
    assert set(scheduler.stats) == {"a", "c"}


async def test_stop_cancels_runs_in_flight() -> None:
    hung = Probe("x", duration=30.0)
    scheduler = Scheduler([Job("x", "x", "line", 0.01, hung)], Sink())
    started = time.monotonic()
    await run_for(scheduler, 0.1)
    assert time.monotonic() - started < 0.5
    assert hung.starts and hung.running == 0


async def test_poll_now_runs_the_devices_jobs_at_once() -> None:
    asked, other = Probe("dslam-1", duration=0.05), Probe("dslam-2")
    jobs = [Job("icmp:1", "dslam-1", "icmp", 60.0, asked), Job("icmp:2", "dslam-2", "icmp", 60.0, other)]
    seeded = random.Random(3)
    assert min(seeded.uniform(0, 60), seeded.uniform(0, 60)) > 1.0  # both first slots are far off
    scheduler = Scheduler(jobs, Sink(), rng=random.Random(3))
    async with asyncio.TaskGroup() as tg:
        tg.create_task(scheduler.run_forever())
        await asyncio.sleep(0.02)
        asked_at = time.monotonic()
        scheduler.poll_now("dslam-1")
        scheduler.poll_now("dslam-1")
        scheduler.poll_now("nowhere")
        await asyncio.sleep(0.1)
        scheduler.stop()
    assert len(asked.starts) == 1 and asked.starts[0] - asked_at < 0.02
    assert other.starts == []


async def test_a_run_waiting_for_a_slot_survives_its_device_leaving() -> None:
    busy, waiting = Probe("a", duration=0.05), Probe("b")
    jobs = [Job("icmp:a", "a", "icmp", 60.0, busy), Job("icmp:b", "b", "icmp", 60.0, waiting)]
    sink = Sink()
    scheduler = Scheduler(jobs, sink, max_in_flight=1, rng=random.Random(3))
    async with asyncio.TaskGroup() as tg:
        tg.create_task(scheduler.run_forever())
        await asyncio.sleep(0.01)
        scheduler.poll_now("a")
        scheduler.poll_now("b")  # waits for the one global slot
        scheduler.replace_jobs(jobs[:1])
        await asyncio.sleep(0.15)
        scheduler.stop()
    assert len(waiting.starts) == 1 and scheduler.errors["icmp"] == 0
    assert {s.target.id for s in sink.samples} == {"a"}  # a dropped job's samples are not delivered


async def test_a_walk_stuck_on_a_silent_agent_is_cancelled_and_frees_the_device_slot(caplog) -> None:
    """A real agent on loopback answers the first two requests of each walk, then never again,
    and the client would wait 30 s for it: the job is cancelled at job_timeout, counted, logged
    once, its TIMEOUT sample is delivered, and the device's only slot goes to its other job and
    to the next walk."""
    from pysnmp.proto import rfc1902

    from monitord.model import Secret, SnmpAuth
    from probes.snmp import SnmpClient, parse_oid
    from probes.snmpbase import Target
    from tests.snmp_fixtures import start_bad_agent

    column = parse_oid("1.3.6.1.2.1.2.2.1.8")

    def behave(request):
        row = request.oids[0][len(column) :]
        if row and row[0] >= 2:
            return None
        index = (row[0] if row else 0) + 1
        return (0, 0, [(rfc1902.ObjectName(column + (index,)), rfc1902.Integer32(1))])

    agent, port = await start_bad_agent(behave)
    client = SnmpClient(timeout=30.0, retries=0)
    target = Target("127.0.0.1", port, SnmpAuth("v2", "2c", community=Secret("public", "test")))
    walks: list[float] = []

    async def walk() -> list[Sample]:
        walks.append(time.monotonic())
        result = await client.walk(target, [column], max_repetitions=1)
        return [Sample(NodeRef("device", "dslam"), "snmp:test", time.time(), result.outcome)]

    def timed_out(seconds: float) -> list[Sample]:
        return [Sample(NodeRef("device", "dslam"), "snmp:test", time.time(), Outcome.TIMEOUT, detail=f"over {seconds} s")]

    other = Probe("dslam")
    jobs = [Job("walk", "dslam", "line", 0.1, walk, on_timeout=timed_out), Job("ping", "dslam", "icmp", 0.1, other)]
    sink = Sink()
    scheduler = Scheduler(jobs, sink, per_device_in_flight=1, jitter=0.0, job_timeout=0.15)
    try:
        with caplog.at_level(logging.INFO, logger="monitord.scheduler"):
            await run_for(scheduler, 1.2)
    finally:
        client.close()
    assert len(walks) >= 4 and len(agent.seen) >= 3 * len(walks) - 3
    assert scheduler.timeouts["line"] >= len(walks) - 1
    walked = [(s.outcome, s.detail) for s in sink.samples if s.probe == "snmp:test"]
    assert walked == [(Outcome.TIMEOUT, "over 0.15 s")] * scheduler.timeouts["line"]
    assert len(other.starts) >= 2
    assert scheduler.stats["walk"].last_duration < 0.2
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("job walk still running after 0.15 s, cancelled") == 1
