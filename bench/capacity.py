"""How many subscriber lines one 2-core machine watches: measured per-line costs, extrapolated.

    .venv/bin/python bench/capacity.py [--devices 2084] [--ports 48] [--lab-devices 100]

One run, one process, the daemon's own code paths:

1. Memory. A 100,032-line inventory (2,084 DSLAMs x 48 ports, 8 regions, 128 exchanges, a
   cabinet per DSLAM, a modem address per line) is written as config.yaml + subscribers.csv and
   loaded with `load_config`; `Daemon(config)` builds the rules engine, store and profiles and
   `daemon.probes.jobs(config)` the probe jobs. RSS is read after each stage, and after the rules have run.
2. Rules. After every line's first samples (`first_samples`: the first and last few devices
   one by one and timed, the rest in bulk), simulated minutes of the whole inventory go through `daemon.pipeline.ingest` (one batch per device
   poll: adsl and if-mib every `line_interval`, ICMP every `icmp_interval`, the devices' slots
   spread over the interval as the scheduler spreads them) and `daemon.pipeline.tick` once a second, on a
   fake clock. A healthy network, every value good: the steady state. Then one device poll whose
   48 lines change state is timed: the commit path of every fault.
3. Polls. The daemon's SNMP jobs (`PollingJobs.jobs()`, adsl + if-mib, sysUpTime GET + bulk walk)
   run against `--lab-devices` DSLAMs served by one snmpsim process (bench/snmpsim_dslams.py,
   one community per device) after a warm-up round, so counters turn into rates as in steady
   state. snmpsim is a single responder sharing the machine, so at most `--snmp-in-flight`
   devices are polled at once (real DSLAMs answer in parallel; the client's CPU per line is what
   is measured). Every device's ICMP job (3 echoes to the device and each of its modems, all on
   loopback) then runs once, under the daemon's in-flight limits.
4. Prometheus scrapes of /metrics (median of 3; prometheus/prometheus.yml scrapes every 15 s).
5. cProfile of an SNMP round over `--profile-devices` devices, own time grouped by package.

CPU is `time.process_time()` of this process (snmpsim's CPU is not counted). Costs are linear in
lines, so lines that fit = 100,000 x budget / cost.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import csv
import gc
import pstats
import random
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import yaml
from prometheus_client import generate_latest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.snmpsim_dslams import start_snmpsim  # noqa: E402
from lab.isp import ASCII, FIRST_NAMES, MOBILE_PREFIXES, SURNAMES  # noqa: E402
from monitord.config import Config, PollingConfig, load_config  # noqa: E402
from monitord.daemon import Daemon  # noqa: E402
from monitord.metrics import register  # noqa: E402
from monitord.model import NodeRef, Outcome, Sample, Secret, SnmpAuth  # noqa: E402
from probes.icmp import Pinger  # noqa: E402
from probes.scheduler import Job  # noqa: E402
from probes.snmp import SnmpClient  # noqa: E402

REGIONS, EXCHANGES = 8, 16  # per region
SCALE = 100_000  # the goal's line count
BUDGET = 60.0  # 50% of two cores, CPU-seconds per 60 s
RSS_GOAL_MB = 500.0
SCRAPES_PER_MINUTE = 4


# --- inventory ---------------------------------------------------------------------------------


def device_address(n: int, block: int = 20) -> str:
    return f"127.{block}.{n // 250}.{n % 250 + 1}"


def modem_address(n: int, block: int = 64) -> str:
    return f"127.{block + n // 62_500}.{n // 250 % 250}.{n % 250 + 1}"


def write_inventory(
    root: Path,
    devices: int,
    ports: int,
    agent_port: int | None = None,
    polling: dict[str, str] | None = None,
    blocks: tuple[int, int] = (20, 64),
) -> Path:
    """config.yaml + subscribers.csv, written as an operator would, rows streamed to disk.

    `agent_port`: the UDP port the DSLAMs' agents answer on (lab/table_agent.py), else 161.
    `polling`: the config's polling section (intervals), else the defaults. `blocks`: the second
    octets of the DSLAMs' and the modems' loopback addresses, so that runs side by side differ."""
    rng = random.Random(7)
    regions = []
    ids: list[str] = []
    for r in range(REGIONS):
        exchanges = []
        for e in range(EXCHANGES):
            exchanges.append({"id": f"ex-{r}-{e:02d}", "name": f"Santral {r}-{e:02d}", "devices": []})
        regions.append({"id": f"region-{r}", "name": f"Bölge {r}", "exchanges": exchanges})
    for n in range(devices):
        exchange = regions[n % REGIONS]["exchanges"][n // REGIONS % EXCHANGES]
        device_id = f"{exchange['id']}-dslam-{len(exchange['devices']) + 1:02d}"
        exchange["devices"].append(
            {
                "id": device_id,
                "kind": "dslam",
                "address": device_address(n, blocks[0]),
                "snmp": "dslam-v2",
                "profiles": ["adsl", "if-mib"],
                "cabinet": f"{device_id}-k",
                **({"port": agent_port} if agent_port else {}),
            }
        )
        ids.append(device_id)
    config = {
        "state_file": "state/monitord.db",
        "tracking_prefix": "ARZ",
        "timezone": "Europe/Istanbul",
        "http": {"listen": "127.0.0.1:0"},
        "snmp": {
            "timeout": "2s",
            "retries": 1,
            "auths": {"dslam-v2": {"version": "2c", "community": {"env": "BENCH_COMMUNITY"}}},
        },
        **({"polling": polling} if polling else {}),
        "topology": {"regions": regions},
        "subscribers": {"csv": "subscribers.csv"},
    }
    (root / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with open(root / "subscribers.csv", "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(("id", "name", "phone", "email", "language", "device", "port", "mac", "modem"))
        line = 0
        for device_id in ids:
            for port in range(1, ports + 1):
                first, last = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
                phone = f"0{rng.choice(MOBILE_PREFIXES)} {rng.randrange(10**7):07d}"
                email = f"{first.translate(ASCII).lower()}.{line}@example.com.tr" if rng.random() < 0.35 else ""
                writer.writerow(
                    (
                        f"S{100000 + line}",
                        f"{first} {last}",
                        phone,
                        email,
                        "tr",
                        device_id,
                        port,
                        "",
                        modem_address(line, blocks[1]),
                    )
                )
                line += 1
    return root / "config.yaml"


def rss_mb() -> float:
    for row in Path("/proc/self/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- rules: simulated minutes ------------------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def healthy_values(rng: random.Random, probe: str) -> dict[str, float]:
    """A good line's metrics, as the profiles name them; made afresh for every sample, as a poll does."""
    attenuation = rng.uniform(12, 48)
    busy = rng.uniform(0.01, 0.3)
    rate = rng.choice((8_192_000, 16_384_000))
    return {
        "snmp:adsl": lambda: {
            "snr_margin_up_db": round(rng.uniform(9, 18), 1),
            "attenuation_up_db": round(attenuation * 0.55, 1),
            "attainable_rate_down_bps": rate * 1.2,
            "snr_margin_down_db": round(rng.uniform(8.5, 15), 1),
            "attenuation_down_db": round(attenuation, 1),
            "attainable_rate_up_bps": 1_150_000.0,
            "rate_down_bps": rate,
            "rate_up_bps": 1_024_000.0,
            "errored_seconds_per_s": 0.0,
            "resyncs_per_s": 0.0,
            "corrected_blocks_per_s": rng.uniform(0, 3),
            "uncorrectable_blocks_per_s": 0.0,
        },
        "snmp:if-mib": lambda: {
            "oper_up": 1.0,
            "in_errors_per_s": 0.0,
            "out_errors_per_s": 0.0,
            "in_octets_per_s": 128_000 * busy,
            "out_octets_per_s": rate / 8 * busy,
        },
        "icmp": lambda: {"rtt_ms": rng.uniform(4, 25), "loss": 0.0},
    }[probe]()


PROBES = ("snmp:adsl", "snmp:if-mib", "icmp")


def device_batch(
    probe: str, device: str, lines: Iterable[str], now: float, rng: random.Random, **override: float
) -> list[Sample]:
    """What one poll of one device hands to the rules: the device's sample, then its lines'."""
    own = {"uptime_s": 8_000_000.0 + now % 1e6} if probe != "icmp" else {"rtt_ms": 1.0, "loss": 0.0}
    batch = [Sample(NodeRef("device", device), probe, now, Outcome.OK, own)]
    batch += [Sample(NodeRef("line", line), probe, now, Outcome.OK, {**healthy_values(rng, probe), **override}) for line in lines]
    return batch


def ingest(daemon: Daemon, batch: list[Sample]) -> tuple[float, bool]:
    """CPU of one `Pipeline.ingest`, and whether its commit wrote the engine's whole snapshot."""
    before = daemon.pipeline._last_snapshot
    began = time.process_time()
    daemon.pipeline.ingest(batch)
    return time.process_time() - began, daemon.pipeline._last_snapshot != before


def first_samples(
    daemon: Daemon, clock: Clock, plan: list[tuple[str, list[str]]], rng: random.Random, ends: int
) -> tuple[float, float]:
    """Every line's first samples, as at a first start with an empty state file.

    The daemon receives them device by device; each device's first poll turns its lines from
    UNKNOWN to OK. Only the first and the last `ends` devices are fed one by one and timed
    (median CPU-s per device), to show whether the cost grows with the number of lines known;
    the devices between go in one batch. Returns (first, last).
    """

    def one_by_one(part: list[tuple[str, list[str]]]) -> float:
        spent = []
        for device, lines in part:
            clock.now += 1
            spent.append(ingest(daemon, device_batch("snmp:adsl", device, lines, clock.now, rng))[0])
        return statistics.median(spent)

    def bulk(probe: str, part: list[tuple[str, list[str]]]) -> None:
        clock.now += 1
        daemon.pipeline.ingest([s for device, lines in part for s in device_batch(probe, device, lines, clock.now, rng)])

    first = one_by_one(plan[:ends])
    bulk("snmp:adsl", plan[ends:-ends])
    last = one_by_one(plan[-ends:])
    for probe in PROBES[1:]:
        bulk(probe, plan)
    return first, last


def state_change(daemon: Daemon, clock: Clock, device: str, lines: list[str], rng: random.Random) -> tuple[float, bool]:
    """CPU of one device poll whose lines changed state (all ports oper down), e.g. a DSLAM's
    line card failing, and whether it saved the snapshot; the lines come back in the next poll."""
    clock.now += 1
    timed = ingest(daemon, device_batch("snmp:if-mib", device, lines, clock.now, rng, oper_up=0.0))
    clock.now += 1
    ingest(daemon, device_batch("snmp:if-mib", device, lines, clock.now, rng))
    return timed


def simulate_minute(
    daemon: Daemon,
    clock: Clock,
    plan: list[tuple[str, list[str]]],
    rng: random.Random,
    line_interval: float,
    icmp_interval: float,
) -> Counter[str]:
    """60 s of the rules side: every device's polls land in their slots, a tick every second.

    CPU by kind: snmp / icmp (ingest), tick, and snapshot (a call whose commit saved the whole
    engine state, every 30 s without state changes).
    """
    start, count = clock.now, len(plan)
    events: list[tuple[float, str, int]] = []
    for k in range(count):
        events += [(t, probe, k) for probe in PROBES[:2] for t in _slots(k, count, line_interval)]
        events += [(t, "icmp", k) for t in _slots(k, count, icmp_interval)]
    events += [(float(second), "tick", -1) for second in range(1, 61)]
    events.sort()
    cpu: Counter[str] = Counter()
    for offset, kind, k in events:
        clock.now = start + offset
        if kind == "tick":
            before = daemon.pipeline._last_snapshot
            began = time.process_time()
            daemon.pipeline.tick()
            cpu["snapshot" if daemon.pipeline._last_snapshot != before else "tick"] += time.process_time() - began
            continue
        device, lines = plan[k]
        spent, saved = ingest(daemon, device_batch(kind, device, lines, clock.now, rng))
        cpu["snapshot" if saved else "icmp" if kind == "icmp" else "snmp"] += spent
    clock.now = start + 60
    return cpu


def _slots(k: int, count: int, interval: float) -> list[float]:
    """Offsets within the minute of device k's polls: phases spread evenly over the interval."""
    phase = interval * k / count
    return [phase + n * interval for n in range(int(60 // interval) + 1) if phase + n * interval < 60]


# --- polls -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Round:
    wall: float
    cpu: float
    failed_devices: int  # device samples not OK
    answered_lines: int  # line samples OK


async def run_round(jobs: list[Job], max_in_flight: int, per_device: int) -> Round:
    """Every job once, holding a global and a per-device slot as the scheduler does."""
    gate = asyncio.Semaphore(max_in_flight)
    device_gates = {job.device: asyncio.Semaphore(per_device) for job in jobs}

    async def one(job: Job) -> list[Sample]:
        async with gate, device_gates[job.device]:
            return await job.run()

    started, cpu = time.perf_counter(), time.process_time()
    batches = await asyncio.gather(*(one(job) for job in jobs))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    samples = [s for batch in batches for s in batch]
    return Round(
        wall,
        cpu,
        sum(s.outcome is not Outcome.OK for s in samples if s.target.level == "device"),
        sum(s.outcome is Outcome.OK for s in samples if s.target.level == "line"),
    )


def lab_jobs(daemon: Daemon, config: Config, count: int, port: int) -> list[Job]:
    """The daemon's own SNMP jobs for the first `count` DSLAMs, pointed at the snmpsim endpoint.

    snmpsim selects a device by community (bench/snmpsim_dslams.py), so the lab view moves those
    devices to 127.0.0.1:port with their own community; everything else is the daemon's code.
    """
    devices = dict(config.topology.devices)
    moved = list(devices)[:count]
    for n, device_id in enumerate(moved):
        auth = SnmpAuth(f"dslam-{n:03d}", "2c", community=Secret(f"dslam-{n:03d}", "bench"))
        devices[device_id] = replace(devices[device_id], address="127.0.0.1", port=port, snmp=auth)
    jobs = daemon.probes.jobs(replace(config, topology=replace(config.topology, devices=devices)))
    wanted = set(moved)
    return [job for job in jobs if job.device in wanted and job.key.startswith("snmp:")]


# --- profile -----------------------------------------------------------------------------------


def package(filename: str) -> str:
    if filename.startswith(("~", "<")):
        return "builtins (C calls)"
    for name in ("pyasn1", "pysnmp"):
        if f"/{name}/" in filename:
            return name
    if str(ROOT) in filename:
        return "monitord"
    if "/asyncio/" in filename:
        return "asyncio"
    return "other stdlib"


def print_profile(profiler: cProfile.Profile) -> None:
    stats = pstats.Stats(profiler)
    entries = stats.stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in entries.values()) or 1.0
    own: defaultdict[str, float] = defaultdict(float)
    for (filename, _, _), row in entries.items():
        own[package(filename)] += row[2]
    print(
        "  own time by package: " + ", ".join(f"{name} {t / total:.0%}" for name, t in sorted(own.items(), key=lambda i: -i[1]))
    )
    print(f"  {'own %':>6} {'cum %':>6}  function (package)")
    top = sorted(entries.items(), key=lambda item: -item[1][2])[:10]
    for (filename, line, function), row in top:
        where = filename.replace(str(ROOT) + "/", "").split("site-packages/")[-1]
        print(f"  {row[2] / total:6.1%} {row[3] / total:6.1%}  {function} {where}:{line} ({package(filename)})")


# --- main --------------------------------------------------------------------------------------


def per_k(cpu: float, lines: int) -> float:
    return cpu / lines * 1000


def timed(fn: Callable[[], object]) -> float:
    began = time.process_time()
    fn()
    return time.process_time() - began


@dataclass(frozen=True, slots=True)
class Measured:
    lines: int
    devices: int
    polling: PollingConfig
    stages: list[tuple[str, float, float]]  # (after what, VmRSS MB, peak MB so far)
    rules: dict[str, float]  # CPU-s per simulated minute: snmp, icmp (ingest), tick, snapshot
    change: tuple[float, int]  # median CPU-s of 3 device polls that change states, how many saved the snapshot
    first_start: tuple[float, float]  # CPU-s of the first and the last device's first poll
    scrape: float  # CPU-s per /metrics scrape
    snmp: Round
    snmp_lines: int
    icmp: Round
    profile: cProfile.Profile
    profiled_jobs: int


async def measure(args: argparse.Namespace, folder: Path) -> Measured:
    stages = [("imports", rss_mb(), peak_mb())]
    config_path = write_inventory(folder, args.devices, args.ports)
    gc.collect()
    stages.append(("inventory files written", rss_mb(), peak_mb()))
    config = load_config(config_path, environ={"BENCH_COMMUNITY": "never-sent"})
    stages.append(("load_config", rss_mb(), peak_mb()))
    clock = Clock(time.time())
    daemon = Daemon(config, clock=clock)
    jobs = daemon.probes.jobs(config)
    gc.freeze()  # as Daemon.run does once the inventory is built
    stages.append(("Daemon(config) + jobs()", rss_mb(), peak_mb()))
    polling = config.polling

    rng = random.Random(11)
    lines_of: dict[str, list[str]] = defaultdict(list)
    for line in config.topology.lines.values():
        lines_of[line.device].append(line.id)
    plan = [(device, lines_of[device]) for device in config.topology.devices]
    first_start = first_samples(daemon, clock, plan, rng, 3)
    clock.now += 60
    minutes = [
        simulate_minute(daemon, clock, plan, rng, polling.line_interval, polling.icmp_interval) for _ in range(args.minutes)
    ]
    changes = [state_change(daemon, clock, *plan[k], rng) for k in range(3)]
    change = statistics.median(cpu for cpu, _ in changes), sum(saved for _, saved in changes)
    gc.collect()
    stages.append((f"after {args.minutes} simulated minutes of rules", rss_mb(), peak_mb()))
    rules = {kind: statistics.mean(m[kind] for m in minutes) for kind in ("snmp", "icmp", "tick", "snapshot")}
    register(daemon.registry, daemon)
    scrape = statistics.median(timed(lambda: generate_latest(daemon.registry)) for _ in range(3))

    (folder / "snmpsim").mkdir()
    agent, port = start_snmpsim(folder / "snmpsim", args.lab_devices, args.ports)
    daemon.probes.snmp = SnmpClient(timeout=config.snmp.timeout, retries=config.snmp.retries)
    try:
        snmp_jobs = lab_jobs(daemon, config, args.lab_devices, port)
        await run_round(snmp_jobs, args.snmp_in_flight, polling.per_device_in_flight)  # warm-up: rates, agent caches
        snmp = await run_round(snmp_jobs, args.snmp_in_flight, polling.per_device_in_flight)
        profiled = {job.device for job in snmp_jobs[: 2 * args.profile_devices]}
        profiled_jobs = [job for job in snmp_jobs if job.device in profiled]
        profile = cProfile.Profile()
        profile.enable()
        await run_round(profiled_jobs, args.snmp_in_flight, polling.per_device_in_flight)
        profile.disable()
    finally:
        agent.terminate()
        agent.wait(timeout=10)
        daemon.probes.snmp.close()
    stages.append(("after the SNMP rounds", rss_mb(), peak_mb()))

    daemon.probes.pinger = await Pinger.open()
    try:
        icmp = await run_round(
            [job for job in jobs if job.probe_class == "icmp"], polling.max_in_flight, polling.per_device_in_flight
        )
    finally:
        await daemon.probes.pinger.close()
    stages.append(("after the ICMP sweep", rss_mb(), peak_mb()))
    daemon.store.close()
    return Measured(
        len(config.topology.lines),
        len(plan),
        polling,
        stages,
        rules,
        change,
        first_start,
        scrape,
        snmp,
        args.lab_devices * args.ports,
        icmp,
        profile,
        len(profiled_jobs),
    )


def report(m: Measured, args: argparse.Namespace) -> None:
    polling, lines, rules = m.polling, m.lines, m.rules
    print(
        f"inventory: {m.devices:,} DSLAMs x {args.ports} ports = {lines:,} lines; polling line {polling.line_interval:.0f} s, "
        f"icmp {polling.icmp_interval:.0f} s x{polling.icmp_count}, in flight {polling.max_in_flight}/"
        f"{polling.per_device_in_flight} per device"
    )
    snmp_k, icmp_k = per_k(m.snmp.cpu, m.snmp_lines), per_k(m.icmp.cpu, lines)
    print()
    print("Measured costs, CPU-s per 1,000 lines per cycle")
    print(
        f"  SNMP walk+decode, adsl + if-mib   {snmp_k:7.3f}   {m.snmp_lines:,} lab lines, wall {m.snmp.wall:.1f} s, "
        f"{m.snmp.cpu:.1f} CPU-s, {m.snmp.failed_devices} failed device polls, {args.snmp_in_flight} devices in flight"
    )
    print(
        f"  ICMP sweep, {polling.icmp_count} echoes per address    {icmp_k:7.3f}   {lines:,} modems + {m.devices:,} "
        f"devices, wall {m.icmp.wall:.1f} s, {m.icmp.cpu:.1f} CPU-s, {m.icmp.answered_lines:,} lines answered"
    )
    print(
        f"  rules+store ingest, SNMP batches  {per_k(rules['snmp'], lines) * polling.line_interval / 60:7.3f}   "
        f"both profiles, mean of {args.minutes} simulated minutes"
    )
    print(f"  rules+store ingest, ICMP batch    {per_k(rules['icmp'], lines) * polling.icmp_interval / 60:7.3f}")
    print(f"  rules ticks                       {rules['tick']:7.3f} CPU-s per minute (60 ticks, {lines:,} lines)")
    print(f"  engine snapshot saved every 30 s  {rules['snapshot'] / 2:7.3f} CPU-s each ({lines:,} lines)")
    print(f"  /metrics scrape                   {m.scrape:7.3f} CPU-s per scrape, {SCRAPES_PER_MINUTE} per minute")
    print(
        f"  a device poll that changes states {m.change[0]:7.3f} CPU-s (48 lines down; {m.change[1]} of 3 such commits "
        f"saved the whole snapshot)"
    )
    first, last = m.first_start
    print(
        f"  first start, empty state: a device's first poll {first:.3f} CPU-s for the first device, {last:.3f} for the last "
        f"(UNKNOWN -> OK); {m.devices:,} devices ~ "
        f"{m.devices * (first + last) / 2:,.0f} CPU-s before the steady state (estimate; the bench fed the middle in bulk)"
    )

    scale = SCALE / lines
    intervals = (polling.line_interval, 300.0)
    rows: dict[str, list[float]] = defaultdict(list)
    for line_interval in intervals:
        rows["SNMP walk+decode"].append(snmp_k * SCALE / 1000 * 60 / line_interval)
        rows["rules ingest, SNMP"].append(rules["snmp"] * scale * polling.line_interval / line_interval)
        rows["ICMP sweep"].append(icmp_k * SCALE / 1000 * 60 / polling.icmp_interval)
        rows["rules ingest, ICMP"].append(rules["icmp"] * scale)
        rows["rules ticks"].append(rules["tick"] * scale)
        rows["engine snapshots (2 per minute)"].append(rules["snapshot"] * scale)
        rows["/metrics scrapes"].append(m.scrape * SCRAPES_PER_MINUTE * scale)
    totals = [sum(costs[i] for costs in rows.values()) for i in range(len(intervals))]
    fits = [SCALE * BUDGET / total for total in totals]
    print()
    print(f"CPU-seconds per 60 s for {SCALE:,} lines (icmp every {polling.icmp_interval:.0f} s)")
    print(f"  {'':34} " + " ".join(f"{f'line {s:.0f} s':>12}" for s in intervals))
    for name, costs in [*rows.items(), ("total", totals)]:
        print(f"  {name:34} " + " ".join(f"{cost:12.1f}" for cost in costs))
    print(f"  {'share of two cores':34} " + " ".join(f"{total / 120:12.0%}" for total in totals))
    print(f"  {'lines that fit in 50% of 2 cores':34} " + " ".join(f"{fit:12,.0f}" for fit in fits))

    print()
    print(f"RSS with {lines:,} lines, MB          VmRSS  peak so far")
    for name, mb, peak in m.stages:
        print(f"  {name:34} {mb:7.0f} {peak:7.0f}")

    print()
    print(f"Goals: {SCALE:,} lines under 50% of two cores (60 CPU-s per 60 s) and under {RSS_GOAL_MB:.0f} MB RSS")
    for line_interval, total, fit in zip(intervals, totals, fits):
        verdict = "met" if total <= BUDGET else f"MISSED by {total / BUDGET:.2f}x ({total - BUDGET:.0f} CPU-s over)"
        print(f"  CPU at line_interval {line_interval:.0f} s: {total:.0f} CPU-s -> {verdict}; fits {fit:,.0f} lines")
    base = m.stages[0][1]
    for name, mb in (("peak", m.stages[-1][2]), ("steady", m.stages[-1][1])):
        projected = base + (mb - base) * scale
        verdict = "met" if projected <= RSS_GOAL_MB else f"MISSED by {projected / RSS_GOAL_MB:.2f}x"
        print(f"  RSS {name}: {projected:.0f} MB for {SCALE:,} lines -> {verdict}")

    print()
    print(f"Profile: SNMP round over {args.profile_devices} devices ({m.profiled_jobs} jobs), cProfile own time")
    print_profile(m.profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2084, help="DSLAMs in the inventory")
    parser.add_argument("--ports", type=int, default=48)
    parser.add_argument("--lab-devices", type=int, default=100, help="DSLAMs polled over SNMP (snmpsim)")
    parser.add_argument("--snmp-in-flight", type=int, default=16, help="devices polled at once against the one snmpsim")
    parser.add_argument("--profile-devices", type=int, default=25)
    parser.add_argument("--minutes", type=int, default=2, help="simulated steady minutes of rules")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="capacity-") as folder:
        report(asyncio.run(measure(args, Path(folder))), args)
    print(f"\nrun took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
