"""Walk the line tables of many simulated DSLAMs with monitord and with net-snmp, in one run.

    .venv/bin/python bench/snmp_walk.py [--devices 100] [--ports 48] [--workers 8]

snmpsim serves every DSLAM from one endpoint, one community per device (`dslam-000`...): 100
devices start in seconds, where one engine per loopback address takes about 25 s. Each DSLAM has
`--ports` lines with the columns of the `adsl` and `if-mib` profiles (20 per line).

monitord polls every device with both profiles (one GET of sysUpTime + one multi-column GETBULK
walk per profile, max-repetitions 25, up to 32 devices in flight). net-snmp polls the way LibreNMS
does: one `snmpbulkwalk -Cr25` process per device and table (ifTable, ifXTable, eight ADSL tables)
plus an `snmpget` of sysUpTime, with `--workers` devices polled in parallel. Both run after a
warm-up round, against the same warm agent. The agent is a single Python process and shares the
machine, so wall time is bounded by it; CPU-seconds per 1,000 lines compares the clients.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab.snmp import start_snmpsim as lab_snmpsim  # noqa: E402
from lab.snmp import stop_process  # noqa: E402
from monitord.model import Device, Outcome, Secret, SnmpAuth  # noqa: E402
from probes.profile_files import load_profiles  # noqa: E402
from probes.profiles import RateTracker, poll_device  # noqa: E402
from probes.snmp import Oid, Result, SnmpClient, Target, format_oid  # noqa: E402

ADSL = "1.3.6.1.2.1.10.94.1.1"
TABLES = [
    "1.3.6.1.2.1.2.2.1",  # ifTable
    "1.3.6.1.2.1.31.1.1.1",  # ifXTable
    *(f"{ADSL}.{table}.1" for table in (2, 3, 4, 5, 6, 7, 10, 11)),
]


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    varbinds: int
    failures: int


class CountingClient(SnmpClient):
    """Counts the values the agent sent, for values/s."""

    varbinds = 0

    async def get(self, target: Target, oids: list[Oid]) -> Result:  # type: ignore[override]
        result = await super().get(target, oids)
        self.varbinds += len(result.varbinds)
        return result

    async def walk(self, target: Target, columns: list[Oid], max_repetitions: int = 25) -> Result:  # type: ignore[override]
        result = await super().walk(target, columns, max_repetitions)
        self.varbinds += len(result.varbinds)
        return result


def snmprec(ports: int, seed: int) -> str:
    """One DSLAM with the columns of the adsl and if-mib profiles, sorted by OID."""
    rng = random.Random(seed)
    cells: list[tuple[tuple[int, ...], str]] = [((1, 3, 6, 1, 2, 1, 1, 3, 0), f"67|{rng.randrange(10**6, 10**9)}")]
    columns = {
        "1.3.6.1.2.1.2.2.1.8": lambda: f"2|{rng.choice([1, 1, 1, 2])}",
        "1.3.6.1.2.1.2.2.1.14": lambda: f"65|{rng.randrange(10**4)}",
        "1.3.6.1.2.1.2.2.1.20": lambda: f"65|{rng.randrange(10**4)}",
        "1.3.6.1.2.1.31.1.1.1.6": lambda: f"70|{rng.randrange(10**12)}",
        "1.3.6.1.2.1.31.1.1.1.10": lambda: f"70|{rng.randrange(10**12)}",
        f"{ADSL}.2.1.4": lambda: f"2|{rng.randrange(20, 200)}",
        f"{ADSL}.2.1.5": lambda: f"66|{rng.randrange(50, 600)}",
        f"{ADSL}.2.1.8": lambda: f"66|{rng.randrange(10**6, 2 * 10**7)}",
        f"{ADSL}.3.1.4": lambda: f"2|{rng.randrange(20, 200)}",
        f"{ADSL}.3.1.5": lambda: f"66|{rng.randrange(50, 600)}",
        f"{ADSL}.3.1.8": lambda: f"66|{rng.randrange(10**5, 10**6)}",
        f"{ADSL}.4.1.2": lambda: f"66|{rng.randrange(10**6, 2 * 10**7)}",
        f"{ADSL}.5.1.2": lambda: f"66|{rng.randrange(10**5, 10**6)}",
        f"{ADSL}.6.1.5": lambda: f"65|{rng.randrange(10**3)}",
        f"{ADSL}.6.1.6": lambda: f"65|{rng.randrange(50)}",
        f"{ADSL}.7.1.4": lambda: f"65|{rng.randrange(10**3)}",
        f"{ADSL}.10.1.3": lambda: f"65|{rng.randrange(10**6)}",
        f"{ADSL}.10.1.4": lambda: f"65|{rng.randrange(10**4)}",
        f"{ADSL}.11.1.3": lambda: f"65|{rng.randrange(10**6)}",
        f"{ADSL}.11.1.4": lambda: f"65|{rng.randrange(10**4)}",
    }
    for prefix, value in columns.items():
        base = tuple(int(x) for x in prefix.split("."))
        cells.extend((base + (port,), value()) for port in range(1, ports + 1))
    cells.sort()
    return "".join(f"{format_oid(oid)}|{value}\n" for oid, value in cells)


def start_snmpsim(root: Path, devices: int, ports: int) -> tuple[subprocess.Popen[bytes], int]:
    """`devices` DSLAMs of `ports` lines each in one snmpsim on 127.0.0.1 (community dslam-NNN)."""
    data = root / "data"
    data.mkdir()
    for n in range(devices):
        (data / f"dslam-{n:03d}.snmprec").write_text(snmprec(ports, n))
    return lab_snmpsim(data, root / "cache", "dslam-000", ready_timeout=120)


async def monitord_round(devices: list[Device], ports: int, in_flight: int) -> Run:
    profiles = load_profiles()
    chosen = [profiles["adsl"], profiles["if-mib"]]
    client = CountingClient(timeout=5.0, retries=1)
    rates = RateTracker()
    gate = asyncio.Semaphore(in_flight)
    failures = 0

    async def one(device: Device) -> None:
        nonlocal failures
        lines = {str(port): f"{device.id}/{port}" for port in range(1, ports + 1)}
        async with gate:
            for profile in chosen:
                samples = await poll_device(client, device, profile, lines, time.time(), rates=rates)
                failures += samples[0].outcome is not Outcome.OK

    await asyncio.gather(*(one(device) for device in devices))  # warm-up: targets, agent indexes
    client.varbinds = failures = 0
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(device) for device in devices))
    run = Run(time.perf_counter() - started, time.process_time() - cpu, client.varbinds, failures)
    client.close()
    return run


def netsnmp_round(port: int, devices: int, workers: int) -> Run:
    def poll(n: int) -> tuple[int, int]:
        address = f"127.0.0.1:{port}"
        community = f"dslam-{n:03d}"
        count = failures = 0
        commands = [["snmpget", "-v2c", "-c", community, "-On", "-t", "5", "-r", "1", address, "1.3.6.1.2.1.1.3.0"]]
        commands += [
            ["snmpbulkwalk", "-v2c", "-c", community, "-On", "-Cr25", "-t", "5", "-r", "1", address, table] for table in TABLES
        ]
        for command in commands:
            done = subprocess.run(command, capture_output=True, text=True)
            failures += done.returncode != 0
            count += sum(line.startswith(".") for line in done.stdout.splitlines())
        return count, failures

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(poll, range(devices)))
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(wall, cpu, sum(r[0] for r in results), sum(r[1] for r in results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--ports", type=int, default=48)
    parser.add_argument("--workers", type=int, default=8, help="net-snmp devices polled in parallel")
    parser.add_argument("--in-flight", type=int, default=32, help="monitord devices polled at once")
    args = parser.parse_args()
    if shutil.which("snmpbulkwalk") is None:
        raise SystemExit("net-snmp tools missing: apt-get install snmp")
    with tempfile.TemporaryDirectory(prefix="snmp-bench-") as folder:
        started = time.perf_counter()
        agent, port = start_snmpsim(Path(folder), args.devices, args.ports)
        print(
            f"snmpsim: {args.devices} DSLAMs x {args.ports} ports on 127.0.0.1:{port} (community per device), "
            f"ready in {time.perf_counter() - started:.1f} s"
        )
        try:
            auth = lambda n: SnmpAuth(f"dslam-{n:03d}", "2c", community=Secret(f"dslam-{n:03d}", "bench"))  # noqa: E731
            devices = [
                Device(f"dslam-{n:03d}", "dslam", "bench", "127.0.0.1", auth(n), ("adsl", "if-mib"), port)
                for n in range(args.devices)
            ]
            ours = asyncio.run(monitord_round(devices, args.ports, args.in_flight))
            theirs = netsnmp_round(port, args.devices, args.workers)
        finally:
            stop_process(agent)
    lines = args.devices * args.ports
    print(f"{'client':<34} {'wall s':>8} {'values':>8} {'values/s':>9} {'CPU s/1000 lines':>17} {'failed':>6}")
    for name, run in (("monitord (asyncio, one socket)", ours), (f"net-snmp snmpbulkwalk x{args.workers}", theirs)):
        print(
            f"{name:<34} {run.wall:8.2f} {run.varbinds:8d} {run.varbinds / run.wall:9.0f} "
            f"{run.cpu / lines * 1000:17.3f} {run.failures:6d}"
        )
    print(f"ratio net-snmp/monitord: wall {theirs.wall / ours.wall:.2f}x, client CPU {theirs.cpu / ours.cpu:.2f}x")


if __name__ == "__main__":
    main()
