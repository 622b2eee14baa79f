"""What one /metrics scrape costs at scale: CPU, and how long it holds the event loop.

    .venv/bin/python bench/metrics_scrape.py [--lines 100032] [--scrapes 8] [--profile] [--no-levels]
    e.g. a million lines: .venv/bin/python bench/metrics_scrape.py --lines 1000032

The inventory of bench/capacity.py (`--lines` / 48 DSLAMs, 8 regions, 128 exchanges) is loaded
into a `Daemon` that is not running; every line's first ICMP sample goes through the rules (all
lines OK), and every device is counted as polled once by ICMP and both SNMP profiles
(`PollingJobs` counts, as its jobs do; one device in 50 timing out); the daemon's scheduler is
built with every job (not started: its health figures are read at every scrape). Then `--scrapes` scrapes,
each after the share of a 15 s scrape interval's polls (ICMP every `--icmp-interval`, line
tables every `--line-interval`) and one device's 48 lines going down (or back up): the steady
state between two Prometheus scrapes. Each line-table poll of a device also keeps its lines'
levels, as its SNMP job does (`readings`, monitord/quality.py: SNR margins and attenuation
drawn at random, on samples carrying the adsl profile's 12 values a line); `--no-levels` leaves
them out, to compare. The CPU `readings` takes per poll is reported apart: it is the one part
on the probing path.

A scrape is `Exposition.refresh`, as the HTTP handler calls it, with the worker thread's part
run inline and timed apart: `loop` is what holds the event loop (collecting), `thread` what the
worker thread does (formatting). CPU is `time.process_time()`; the loop's part also as wall
time. The first scrape (nothing cached) is reported apart from the steady ones (median).

The peer: prometheus_client's own instrumented metrics (`Gauge`, `Counter`, `Summary` with
labels) holding the same series, rendered by `generate_latest` in the same run.
Not covered: the HTTP path (aiohttp, the hop to the loop), gzip, and the per-line series
(`metrics.per_line`, off by default).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Summary, generate_latest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.capacity import write_inventory  # noqa: E402
from monitord.config import load_config  # noqa: E402
from monitord.daemon import Daemon  # noqa: E402
from monitord.metrics import register  # noqa: E402
from monitord.model import NodeRef, Outcome, Sample  # noqa: E402
from monitord.quality import level_limits, readings  # noqa: E402
from probes.scheduler import Scheduler  # noqa: E402

SCRAPE_INTERVAL = 15.0  # prometheus/prometheus.yml
T = TypeVar("T")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True, slots=True)
class Scrape:
    loop_cpu: float
    loop_wall: float
    thread_cpu: float
    size: int  # bytes of text
    level_series: int  # monitord_line_level series in it


async def scrape(daemon: Daemon, scheduler: Scheduler) -> Scrape:
    """One `Exposition.refresh`, its worker thread's part run inline and timed apart."""
    thread_cpu = thread_wall = 0.0

    async def inline(fn: Callable[..., T], *args: Any) -> T:
        nonlocal thread_cpu, thread_wall
        cpu, wall = time.process_time(), time.perf_counter()
        result = fn(*args)
        thread_cpu += time.process_time() - cpu
        thread_wall += time.perf_counter() - wall
        return result

    to_thread, asyncio.to_thread = asyncio.to_thread, inline  # type: ignore[assignment]
    daemon.scheduler = scheduler
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        body = await daemon.exposition.refresh()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        asyncio.to_thread = to_thread
        daemon.scheduler = None
    return Scrape(cpu - thread_cpu, wall - thread_wall, thread_cpu, len(body), body.count(b"\nmonitord_line_level"))


def rss_mb() -> float:
    for row in Path("/proc/self/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


ADSL_VALUES = (  # what the adsl profile reads on a line besides the levels
    "oper_up", "in_sync", "rate_down_bps", "rate_up_bps", "attainable_rate_down_bps", "attenuation_up_db",
    "resyncs_per_s", "errored_seconds_per_s", "los_seconds_per_s",
)  # fmt: skip


@dataclass(slots=True)
class Levels:
    """Each DSLAM's adsl job, and the CPU its polls spent keeping their lines' levels."""

    jobs: dict[str, str]  # device -> its adsl job's key
    lines_of: dict[str, list[str]]
    cpu: float = 0.0
    polls: int = 0

    def poll(self, daemon: Daemon, device: str, rng: random.Random) -> None:
        values = dict.fromkeys(ADSL_VALUES, 1.0)
        samples = [
            Sample(
                NodeRef("line", line),
                "snmp:adsl",
                0.0,
                Outcome.OK,
                {
                    **values,
                    "snr_margin_down_db": rng.gauss(10, 3),
                    "snr_margin_up_db": rng.gauss(12, 3),
                    "attenuation_down_db": rng.uniform(5, 65),
                },
            )
            for line in self.lines_of[device]
        ]
        limits = level_limits(daemon.config.rules.ruleset("adsl"))
        began = time.process_time()
        daemon.probes.quality[self.jobs[device]] = (device, readings(samples, limits))
        self.cpu += time.process_time() - began
        self.polls += 1


def polled(daemon: Daemon, devices: list[str], probes: tuple[str, ...], rng: random.Random, levels: Levels | None = None) -> None:
    """Count one poll of each device by each probe, as `PollingJobs` does when a job ends."""
    topology = daemon.config.topology
    for device in devices:
        for probe in probes:
            outcome = Outcome.TIMEOUT if rng.random() < 0.02 else Outcome.OK
            sample = Sample(NodeRef("device", device), probe, 0.0, outcome, {})
            daemon.probes._count(topology.devices[device], probe, [sample], rng.uniform(0.002, 0.05 if probe == "icmp" else 2.5))
            if probe == "snmp:adsl" and outcome is Outcome.OK and levels is not None:
                levels.poll(daemon, device, rng)


async def first_samples(daemon: Daemon, clock: Clock, lines_of: dict[str, list[str]]) -> None:
    """Every line's first ICMP sample, 64 devices a call."""
    ok = {"rtt_ms": 5.0, "loss": 0.0}
    devices = list(lines_of)
    for k in range(0, len(devices), 64):
        batch = []
        for device in devices[k : k + 64]:
            batch.append(Sample(NodeRef("device", device), "icmp", clock.now, Outcome.OK, ok))
            batch += [Sample(NodeRef("line", line), "icmp", clock.now, Outcome.OK, ok) for line in lines_of[device]]
        await daemon.pipeline.ingest(batch)


async def flip(daemon: Daemon, clock: Clock, device: str, lines: list[str], down: bool) -> None:
    """A device's lines go down (their modems silent) or come back."""
    values = {"rtt_ms": 5.0, "loss": 1.0 if down else 0.0}
    outcome = Outcome.TIMEOUT if down else Outcome.OK
    batch = [Sample(NodeRef("device", device), "icmp", clock.now, Outcome.OK, {"rtt_ms": 1.0, "loss": 0.0})]
    batch += [Sample(NodeRef("line", line), "icmp", clock.now, outcome, values) for line in lines]
    await daemon.pipeline.ingest(batch)


def peer_registry(daemon: Daemon) -> CollectorRegistry:
    """prometheus_client's own metrics holding the same per-device series as the daemon's."""
    registry = CollectorRegistry()
    lines = Gauge("monitord_lines", "Lines.", ["region", "exchange", "device", "state"], registry=registry)
    polls = Counter("monitord_device_polls", "Polls.", ["device", "probe", "outcome"], registry=registry)
    durations = Summary("monitord_device_poll_duration_seconds", "Time.", ["device", "probe"], registry=registry)
    for (region, exchange, device_id, status), n in daemon.status_counts().items():
        lines.labels(region, exchange, device_id, status).set(n)
    stats = daemon.probes.stats
    for (device_id, probe, outcome), n in stats.outcomes.items():
        polls.labels(device_id, probe, outcome).inc(n)
    for (device_id, probe), seconds in stats.seconds.items():
        durations.labels(device_id, probe).observe(seconds)
    return registry


def cpu_of(fn: Callable[[], object]) -> float:
    began = time.process_time()
    fn()
    return time.process_time() - began


async def run(args: argparse.Namespace, folder: Path) -> None:
    devices = -(-args.lines // 48)
    config = load_config(write_inventory(folder, devices, 48), environ={"BENCH_COMMUNITY": "public"})
    clock = Clock(time.time())
    daemon = Daemon(config, clock=clock)
    register(daemon.registry, daemon)
    # the scheduler, not started, set only while scraping (else a recheck would start its jobs):
    # the metrics read every job's health (3 jobs a device)
    scheduler = Scheduler(daemon.probes.jobs(config), lambda samples: None)
    lines_of: dict[str, list[str]] = {device: [] for device in config.topology.devices}
    for line in config.topology.lines.values():
        lines_of[line.device].append(line.id)
    began = time.perf_counter()
    await first_samples(daemon, clock, lines_of)
    rng = random.Random(5)
    device_ids = list(lines_of)
    jobs = {key.split(":")[1]: key for key in daemon.probes.job_classes if key.startswith("snmp:") and ":adsl:" in key}
    levels = None if args.no_levels else Levels(jobs, lines_of)
    polled(daemon, device_ids, ("icmp", "snmp:adsl", "snmp:if-mib"), rng, levels)
    gc.collect()
    gc.freeze()
    print(f"{len(config.topology.lines):,} lines, {devices:,} devices; set up in {time.perf_counter() - began:.0f} s")
    rss_before = rss_mb()

    icmp_share = SCRAPE_INTERVAL / args.icmp_interval
    line_share = SCRAPE_INTERVAL / args.line_interval
    results: list[Scrape] = []
    profile = cProfile.Profile() if args.profile else None
    flipped: str | None = None
    for n in range(args.scrapes):
        if n:  # what happens between two scrapes
            clock.now += SCRAPE_INTERVAL
            polled(daemon, rng.sample(device_ids, round(len(device_ids) * icmp_share)), ("icmp",), rng)
            polled(daemon, rng.sample(device_ids, round(len(device_ids) * line_share)), ("snmp:adsl", "snmp:if-mib"), rng, levels)
            if flipped is None:
                flipped = rng.choice(device_ids)
                await flip(daemon, clock, flipped, lines_of[flipped], down=True)
            else:
                await flip(daemon, clock, flipped, lines_of[flipped], down=False)
                flipped = None
        if profile is not None and n == args.scrapes - 1:
            profile.enable()
        results.append(await scrape(daemon, scheduler))
        if profile is not None and n == args.scrapes - 1:
            profile.disable()

    rss_after = rss_mb()
    peer = peer_registry(daemon)
    peer_cpu = statistics.median(cpu_of(lambda: generate_latest(peer)) for _ in range(3))
    peer_size = len(generate_latest(peer))
    steady = results[1:]
    loop_cpu = statistics.median(s.loop_cpu for s in steady)
    loop_wall = statistics.median(s.loop_wall for s in steady)
    thread_cpu = statistics.median(s.thread_cpu for s in steady)
    first = results[0]
    print(f"text: {first.size:,} bytes (the peer's per-device series alone: {peer_size:,})")
    print(f"{'scrape, CPU-s':36} {'loop':>8} {'thread':>8} {'total':>8} {'loop wall':>10}")
    print(
        f"{'first (nothing cached)':36} {first.loop_cpu:8.3f} {first.thread_cpu:8.3f} "
        f"{first.loop_cpu + first.thread_cpu:8.3f} {first.loop_wall:10.3f}"
    )
    print(
        f"{f'steady, median of {len(steady)}':36} {loop_cpu:8.3f} {thread_cpu:8.3f} {loop_cpu + thread_cpu:8.3f} "
        f"{loop_wall:10.3f}"
    )
    print(f"  each steady scrape, total CPU-s: {', '.join(f'{s.loop_cpu + s.thread_cpu:.3f}' for s in steady)}")
    print(f"  each steady scrape, loop wall s: {', '.join(f'{s.loop_wall:.3f}' for s in steady)}")
    print(f"{'peer: prometheus_client generate_latest':36} {'':8} {'':8} {peer_cpu:8.3f}")
    print(f"steady scrape / peer: {(loop_cpu + thread_cpu) / peer_cpu:.3f}x CPU")
    print(f"CPU-s per 60 s at 4 scrapes a minute: {4 * (loop_cpu + thread_cpu):.2f}")
    print(f"VmRSS {rss_before:,.0f} MB before the first scrape, {rss_after:,.0f} MB after the last (text and what is kept)")
    if levels is not None:
        series = results[-1].level_series
        print(
            f"line levels: {series:,} series; keeping a poll's levels (`readings`, on the probing path): "
            f"{1e6 * levels.cpu / levels.polls:.0f} µs CPU per poll of 48 lines, {levels.polls:,} polls"
        )
    if profile is not None:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
    daemon.store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_032)
    parser.add_argument("--scrapes", type=int, default=8)
    parser.add_argument("--icmp-interval", type=float, default=60.0)
    parser.add_argument("--line-interval", type=float, default=300.0)
    parser.add_argument("--profile", action="store_true", help="cProfile the last scrape")
    parser.add_argument("--no-levels", action="store_true", help="keep no line levels (monitord/quality.py), to compare")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="metrics-scrape-") as folder:
        asyncio.run(run(args, Path(folder)))


if __name__ == "__main__":
    main()
