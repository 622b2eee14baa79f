"""How many subscriber lines one 2-core machine watches, part by part: CPU share and RSS.

    .venv/bin/python bench/capacity.py [--lines 100032] [--line-interval 60] [--icmp-interval 30]
        [--lab-devices 100] [--agent-processes 2] [--own-environment]
    e.g. a million lines, line tables every 300 s and ICMP every 60 s:
    .venv/bin/python bench/capacity.py --lines 1000032 --line-interval 300 --icmp-interval 60 --minutes 1

One run, one process, the daemon's own code paths, under the environment systemd/monitord.service
gives the daemon (its `Environment=`: glibc's arenas and mmap threshold) unless `--own-environment`:

1. Memory. The inventory (`--lines` / `--ports` DSLAMs, 8 regions, 128 exchanges, a cabinet per
   DSLAM, a modem address per line) is written as config.yaml + subscribers.csv and loaded with
   `load_config`; `Daemon(config)` builds the rules engine, store and profiles and
   `daemon.probes.jobs(config)` the probe jobs (the inventory load: CPU and wall timed). RSS is
   read after each stage; after a GC pass and `malloc_trim` where a stage has settled, as the
   daemon hands free heap pages back every 30 s (monitord/heap.py). The GC runs with the
   daemon's thresholds (monitord/gcfreeze.py).
2. Rate state. Every DSLAM is served by lab/table_agent.py (`--agent-processes` processes, one
   loopback address per DSLAM, adsl + IF-MIB tables), and the daemon's SNMP jobs walk every one
   of them once: the rate state of the full inventory (each counter's last reading) is then in
   memory, as in a running daemon, and counted in RSS from there on.
3. Rules. After every line's first samples (`first_samples`: the first and last few devices
   one by one and timed, the rest in bulk), simulated minutes of the whole inventory go through
   `daemon.pipeline.ingest` (one batch per device poll: adsl and if-mib every line interval, ICMP
   every ICMP interval, the devices' slots spread over the interval as the scheduler spreads them)
   and `daemon.pipeline.tick` once a second, on a fake clock. A healthy network, every value
   good: the steady state. Then one device poll whose 48 lines change state is timed: the commit
   path of every fault.
4. Polls. The SNMP jobs of `--lab-devices` DSLAMs run again (counters now turn into rates, as in
   steady state), at most `--snmp-in-flight` devices at once; every device's ICMP job (3 echoes
   to the device and each of its modems, all on loopback) then runs once, under the daemon's
   in-flight limits.
5. Prometheus scrapes of /metrics, every 15 s of the simulated minutes (prometheus/prometheus.yml
   scrapes every 15 s), each poll counted for the metrics as `PollingJobs` counts it: collecting
   and formatting as the daemon does (`render(registry.collect())`), after one first scrape.
6. cProfile of an SNMP round over `--profile-devices` devices, own time grouped by package.

CPU is `time.process_time()` of this process (the responders' CPU is not counted). The report
gives each part's CPU-seconds per 60 s and share of two cores at the configured intervals, the
total against `--goal`, and RSS after every stage with the peak (ru_maxrss).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import csv
import gc
import os
import pstats
import random
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
UNIT = ROOT / "systemd" / "monitord.service"

from lab.isp import ASCII, FIRST_NAMES, MOBILE_PREFIXES, SURNAMES  # noqa: E402
from lab.table_agent import TableAgents, start_table_agents  # noqa: E402
from monitord.config import PollingConfig, load_config  # noqa: E402
from monitord.daemon import Daemon  # noqa: E402
from monitord.exposition import render  # noqa: E402
from monitord.gcfreeze import thresholds  # noqa: E402
from monitord.heap import trim  # noqa: E402
from monitord.metrics import register  # noqa: E402
from monitord.model import NodeRef, Outcome, Sample  # noqa: E402
from probes.icmp import Pinger  # noqa: E402
from probes.scheduler import Job  # noqa: E402
from probes.snmp import SnmpClient  # noqa: E402

REGIONS, EXCHANGES = 8, 16  # per region
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


def unit_environment(unit: Path = UNIT) -> dict[str, str]:
    """The variables the shipped unit's `Environment=` lines set (the allocator's settings, read
    by glibc as the process starts)."""
    found = {}
    for row in unit.read_text(encoding="utf-8").splitlines():
        if row.startswith("Environment="):
            for assignment in row.removeprefix("Environment=").split():
                name, value = assignment.split("=", 1)
                found[name] = value
    return found


def under_unit_environment() -> None:
    """Start this bench again under the unit's environment, unless it runs there already."""
    wanted = unit_environment()
    if any(os.environ.get(name) != value for name, value in wanted.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **wanted})


def rss_mb() -> float:
    for row in Path("/proc/self/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def settled_mb() -> float:
    """RSS once the garbage is collected and the heap's free pages handed back, as the running
    daemon's `Trimmer` does every 30 s."""
    gc.collect()
    trim()
    return rss_mb()


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


LAG_LIMIT = 0.1  # seconds one rules call may hold the event loop (issue 11 item 4)
BULK = 64  # devices per call when first samples are fed in bulk


async def ingest(daemon: Daemon, batch: list[Sample]) -> tuple[float, float]:
    """CPU of one `Pipeline.ingest` (step and commit, all threads), and how long it holds the
    loop: the loop thread's CPU (the commit is made by the store's writer thread meanwhile)."""
    began, held = time.process_time(), time.thread_time()
    await daemon.pipeline.ingest(batch)
    return time.process_time() - began, time.thread_time() - held


async def first_samples(
    daemon: Daemon, clock: Clock, plan: list[tuple[str, list[str]]], rng: random.Random, ends: int
) -> tuple[float, float]:
    """Every line's first samples, as at a first start with an empty state file.

    The daemon receives them device by device; each device's first poll turns its lines from
    UNKNOWN to OK. Only the first and the last `ends` devices are fed one by one and timed
    (median CPU-s per device), to show whether the cost grows with the number of lines known;
    the devices between go in batches of `BULK` devices. Returns (first, last).
    """

    async def one_by_one(part: list[tuple[str, list[str]]]) -> float:
        spent = []
        for device, lines in part:
            clock.now += 1
            spent.append((await ingest(daemon, device_batch("snmp:adsl", device, lines, clock.now, rng)))[0])
        return statistics.median(spent)

    async def bulk(probe: str, part: list[tuple[str, list[str]]]) -> None:
        """Many devices' polls at once, `BULK` devices a call: the daemon never gets more than
        one device's poll in a call, and one list of every line's samples would weigh more than
        the state they leave."""
        clock.now += 1
        for k in range(0, len(part), BULK):
            await daemon.pipeline.ingest(
                [s for device, lines in part[k : k + BULK] for s in device_batch(probe, device, lines, clock.now, rng)]
            )

    first = await one_by_one(plan[:ends])
    await bulk("snmp:adsl", plan[ends:-ends])
    last = await one_by_one(plan[-ends:])
    for probe in PROBES[1:]:
        await bulk(probe, plan)
    return first, last


async def state_change(daemon: Daemon, clock: Clock, device: str, lines: list[str], rng: random.Random) -> tuple[float, float]:
    """CPU and wall time of one device poll whose lines changed state (all ports oper down), e.g.
    a DSLAM's line card failing; the lines come back in the next poll."""
    clock.now += 1
    timed = await ingest(daemon, device_batch("snmp:if-mib", device, lines, clock.now, rng, oper_up=0.0))
    clock.now += 1
    await ingest(daemon, device_batch("snmp:if-mib", device, lines, clock.now, rng))
    return timed


async def simulate_minute(
    daemon: Daemon,
    clock: Clock,
    plan: list[tuple[str, list[str]]],
    rng: random.Random,
    line_interval: float,
    icmp_interval: float,
) -> Counter[str]:
    """60 s of the rules side: every device's polls land in their slots, a tick every second.

    CPU by kind: snmp / icmp (ingest), tick, scrape (/metrics, every poll counted as the jobs
    count it); and `loop`, the longest the loop thread ran one rules call (how long it would
    hold the event loop: its CPU, the commit being the store's writer thread's).
    """
    start, count = clock.now, len(plan)
    events: list[tuple[float, str, int]] = []
    for k in range(count):
        events += [(t, probe, k) for probe in PROBES[:2] for t in _slots(k, count, line_interval)]
        events += [(t, "icmp", k) for t in _slots(k, count, icmp_interval)]
    events += [(float(second), "tick", -1) for second in range(1, 61)]
    events += [(float(second), "scrape", -1) for second in range(60 // SCRAPES_PER_MINUTE, 61, 60 // SCRAPES_PER_MINUTE)]
    events.sort()
    cpu: Counter[str] = Counter()
    for offset, kind, k in events:
        clock.now = start + offset
        if kind == "scrape":
            cpu["scrape"] += timed(lambda: render(daemon.registry.collect()))
            continue
        if kind == "tick":
            began, held = time.process_time(), time.thread_time()
            await daemon.pipeline.tick()
            daemon.freezer.freeze_if_grown()  # as the daemon's ticker does: the targets made since, frozen
            cpu["tick"] += time.process_time() - began
            cpu["loop"] = max(cpu["loop"], time.thread_time() - held)
            continue
        device, lines = plan[k]
        batch = device_batch(kind, device, lines, clock.now, rng)
        spent, held = await ingest(daemon, batch)
        daemon.probes._count(daemon.config.topology.devices[device], kind, batch[:1], 0.05)
        cpu["icmp" if kind == "icmp" else "snmp"] += spent
        cpu["loop"] = max(cpu["loop"], held)
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
    """Every job once, holding a global and a per-device slot as the scheduler does. Each job's
    samples are counted and let go as it ends, as the scheduler hands them on: a round's samples
    all kept (a Sample and its values per line and profile) would weigh more than the daemon."""
    gate = asyncio.Semaphore(max_in_flight)
    device_gates = {job.device: asyncio.Semaphore(per_device) for job in jobs}
    failed = answered = 0

    async def one(job: Job) -> None:
        nonlocal failed, answered
        async with gate, device_gates[job.device]:
            samples = await job.run()
        failed += sum(s.outcome is not Outcome.OK for s in samples if s.target.level == "device")
        answered += sum(s.outcome is Outcome.OK for s in samples if s.target.level == "line")

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(job) for job in jobs))
    return Round(time.perf_counter() - started, time.process_time() - cpu, failed, answered)


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
    load: tuple[float, float]  # CPU-s and wall s of load_config + Daemon(config) + jobs()
    stages: list[tuple[str, float, float]]  # (after what, VmRSS MB, peak MB so far)
    rules: dict[str, float]  # CPU-s per simulated minute: snmp, icmp (ingest), tick; loop: the longest call's wall time
    change: tuple[float, float]  # median CPU-s of 3 device polls that change states, the longest one's wall time
    first_start: tuple[float, float]  # CPU-s of the first and the last device's first poll
    scrape: float  # CPU-s per /metrics scrape (mean)
    first_walk: Round  # every device's first walk: fills the full inventory's rate state
    snmp: Round  # a steady round over --lab-devices, counters turned into rates
    snmp_lines: int
    icmp: Round
    profile: cProfile.Profile
    profiled_jobs: int


async def measure(args: argparse.Namespace, folder: Path) -> Measured:
    devices = -(-args.lines // args.ports)
    stages = [("imports", rss_mb(), peak_mb())]
    agents = start_table_agents(folder, [device_address(n) for n in range(devices)], args.ports, args.agent_processes)
    try:
        return await _measure(args, folder, devices, agents, stages)
    finally:
        agents.stop()


async def _measure(
    args: argparse.Namespace, folder: Path, devices: int, agents: TableAgents, stages: list[tuple[str, float, float]]
) -> Measured:
    polling_section = {"line_interval": f"{args.line_interval:g}s", "icmp_interval": f"{args.icmp_interval:g}s"}
    config_path = write_inventory(folder, devices, args.ports, agents.port, polling_section)
    stages.append(("inventory files written", settled_mb(), peak_mb()))
    began, wall = time.process_time(), time.perf_counter()
    config = load_config(config_path, environ={"BENCH_COMMUNITY": "public"})
    stages.append(("load_config", rss_mb(), peak_mb()))
    clock = Clock(time.time())
    daemon = Daemon(config, clock=clock)
    jobs = daemon.probes.jobs(config)
    load = time.process_time() - began, time.perf_counter() - wall
    daemon.freezer.freeze()  # as Daemon.run does once the inventory is built
    stages.append(("Daemon(config) + jobs()", rss_mb(), peak_mb()))
    polling = config.polling

    # Every device walked once by the daemon's own jobs: the rate state of the whole inventory
    # (a counter's last reading per cell) exists from here on, as in a running daemon.
    snmp_jobs = [job for job in jobs if job.key.startswith("snmp:")]
    daemon.probes.snmp = SnmpClient(timeout=config.snmp.timeout, retries=config.snmp.retries)
    try:
        first_walk = await run_round(snmp_jobs, args.snmp_in_flight, polling.per_device_in_flight)
        stages.append(("every device walked once (rate state)", settled_mb(), peak_mb()))

        rng = random.Random(11)
        lines_of: dict[str, list[str]] = defaultdict(list)
        for line in config.topology.lines.values():
            lines_of[line.device].append(line.id)
        plan = [(device, lines_of[device]) for device in config.topology.devices]
        first_start = await first_samples(daemon, clock, plan, rng, 3)
        clock.now += 60
        register(daemon.registry, daemon)
        render(daemon.registry.collect())  # the first scrape: every line of text formatted
        minutes = [
            await simulate_minute(daemon, clock, plan, rng, polling.line_interval, polling.icmp_interval)
            for _ in range(args.minutes)
        ]
        changes = [await state_change(daemon, clock, *plan[k], rng) for k in range(3)]
        change = statistics.median(cpu for cpu, _ in changes), max(held for _, held in changes)
        stages.append((f"after {args.minutes} simulated minutes of rules", settled_mb(), peak_mb()))
        rules = {kind: statistics.mean(m[kind] for m in minutes) for kind in ("snmp", "icmp", "tick")}
        rules["loop"] = max(m["loop"] for m in minutes)
        scrape = sum(m["scrape"] for m in minutes) / (SCRAPES_PER_MINUTE * len(minutes))

        clock.now = time.time()  # the walks' counters are real time
        lab = set(list(config.topology.devices)[: args.lab_devices])
        lab_jobs = [job for job in snmp_jobs if job.device in lab]
        snmp = await run_round(lab_jobs, args.snmp_in_flight, polling.per_device_in_flight)
        profiled = set(list(lab)[: args.profile_devices])
        profiled_jobs = [job for job in lab_jobs if job.device in profiled]
        profile = cProfile.Profile()
        profile.enable()
        await run_round(profiled_jobs, args.snmp_in_flight, polling.per_device_in_flight)
        profile.disable()
    finally:
        daemon.probes.snmp.close()
    stages.append(("after the SNMP rounds", rss_mb(), peak_mb()))

    daemon.probes.pinger = await Pinger.open()
    try:
        icmp = await run_round(
            [job for job in jobs if job.probe_class == "icmp"], polling.max_in_flight, polling.per_device_in_flight
        )
    finally:
        await daemon.probes.pinger.close()
    stages.append(("after the ICMP sweep", settled_mb(), peak_mb()))
    daemon.store.close()
    return Measured(
        len(config.topology.lines),
        len(plan),
        polling,
        load,
        stages,
        rules,
        change,
        first_start,
        scrape,
        first_walk,
        snmp,
        len(lab) * args.ports,
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
        f"  SNMP walk+decode+rates            {snmp_k:7.3f}   {m.snmp_lines:,} lines of lab/table_agent.py DSLAMs, wall "
        f"{m.snmp.wall:.1f} s, {m.snmp.cpu:.1f} CPU-s, {m.snmp.failed_devices} failed device polls, "
        f"{args.snmp_in_flight} devices in flight"
    )
    print(
        f"  ICMP sweep, {polling.icmp_count} echoes per address    {icmp_k:7.3f}   {lines:,} modems + {m.devices:,} "
        f"devices, wall {m.icmp.wall:.1f} s, {m.icmp.cpu:.1f} CPU-s, {m.icmp.answered_lines:,} lines answered"
    )
    print(
        f"  first walk of every device        {per_k(m.first_walk.cpu, lines):7.3f}   wall {m.first_walk.wall:.1f} s, "
        f"{m.first_walk.failed_devices} failed device polls (no rates yet; fills the rate state)"
    )
    print(f"  inventory load (once)             {m.load[0]:7.1f} CPU-s, {m.load[1]:.1f} s wall: load_config + Daemon + jobs()")
    print(f"  longest rules call on the loop    {rules['loop']:7.3f} s wall (limit {LAG_LIMIT} s; {lines:,} lines)")
    print(
        f"  a device poll that changes states {m.change[0]:7.3f} CPU-s (48 lines down; the longest of 3 held the loop "
        f"{m.change[1]:.3f} s)"
    )
    first, last = m.first_start
    print(
        f"  first start, empty state: a device's first poll {first:.3f} CPU-s for the first device, {last:.3f} for the last "
        f"(UNKNOWN -> OK); {m.devices:,} devices ~ "
        f"{m.devices * (first + last) / 2:,.0f} CPU-s before the steady state (estimate; the bench fed the middle in bulk)"
    )

    parts = {
        "SNMP walk+decode+rates": snmp_k * lines / 1000 * 60 / polling.line_interval,
        "ICMP sweep": icmp_k * lines / 1000 * 60 / polling.icmp_interval,
        "rules ingest, SNMP batches": rules["snmp"],
        "rules ingest, ICMP batches": rules["icmp"],
        "rules ticks": rules["tick"],
        f"/metrics scrapes ({SCRAPES_PER_MINUTE} per minute)": m.scrape * SCRAPES_PER_MINUTE,
    }
    total = sum(parts.values())
    print()
    print(
        f"CPU per 60 s, {lines:,} lines, line tables every {polling.line_interval:.0f} s, ICMP every {polling.icmp_interval:.0f} s"
    )
    print(f"  {'part':38} {'CPU-s':>8} {'of 2 cores':>11}")
    for name, cost in [*parts.items(), ("total", total)]:
        print(f"  {name:38} {cost:8.1f} {cost / 120:11.1%}")
    fit = lines * args.goal * 120 / total
    verdict = "met" if total / 120 <= args.goal else f"MISSED by {total / 120 / args.goal:.2f}x"
    print(f"  goal: under {args.goal:.0%} of two cores -> {verdict}; {fit:,.0f} lines fit in it (costs linear in lines)")

    print()
    print(f"RSS with {lines:,} lines, MB          VmRSS  peak so far")
    for name, mb, peak in m.stages:
        print(f"  {name:44} {mb:7.0f} {peak:7.0f}")
    print(
        f"  steady (after the ICMP sweep, gc and malloc_trim) {m.stages[-1][1]:.0f} MB, peak {m.stages[-1][2]:.0f} MB (ru_maxrss)"
    )

    print()
    print(f"Profile: SNMP round over {args.profile_devices} devices ({m.profiled_jobs} jobs), cProfile own time")
    print_profile(m.profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_032, help="subscriber lines (DSLAMs = lines / ports)")
    parser.add_argument("--ports", type=int, default=48)
    parser.add_argument("--line-interval", type=float, default=60.0, help="polling.line_interval, seconds")
    parser.add_argument("--icmp-interval", type=float, default=30.0, help="polling.icmp_interval, seconds")
    parser.add_argument("--goal", type=float, default=0.6, help="CPU share of two cores to compare with")
    parser.add_argument("--lab-devices", type=int, default=100, help="DSLAMs in the steady SNMP round")
    parser.add_argument("--agent-processes", type=int, default=2, help="lab/table_agent.py processes")
    parser.add_argument("--snmp-in-flight", type=int, default=64, help="devices walked at once")
    parser.add_argument("--profile-devices", type=int, default=25)
    parser.add_argument("--minutes", type=int, default=2, help="simulated steady minutes of rules")
    parser.add_argument("--own-environment", action="store_true", help="not systemd/monitord.service's Environment=")
    args = parser.parse_args()
    if not args.own_environment:
        under_unit_environment()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="capacity-") as folder:
        with thresholds():
            measured = asyncio.run(measure(args, Path(folder)))
        report(measured, args)
    print(f"\nrun took {time.perf_counter() - started:.0f} s")
    held = max(measured.rules["loop"], measured.change[1])
    if held > LAG_LIMIT:
        raise SystemExit(f"a rules call held the event loop {held:.3f} s (limit {LAG_LIMIT} s)")


if __name__ == "__main__":
    main()
