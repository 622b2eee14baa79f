"""SNMP polling CPU and bursts, as ratios against a C client on net-snmp's async API in the same run.

    .venv/bin/python bench/snmp_walk.py [--agents 4] [--pairs 250] [--devices 40] [--rounds 5]

Runs in a network namespace of its own (re-executed under `unshare --net`, so as root): veth
pairs there give each of `--agents` net-snmp snmpd instances on 127.0.0.1 an ifTable and
ifXTable of 2 x `--pairs` + 1 rows (lab/fast_snmpd.py). The C client (bench/snmp_anchor.c, built
here by gcc against Debian's libsnmp-dev; this script installs both with apt-get if missing) and
monitord read the same agents and the same OIDs (the five columns of the if-mib profile) with the
same GETBULK walk, max-repetitions 25. Device n is the agent n % `--agents`.

1. CPU per 1,000 values on whole tables: `--devices` walks per round, 10 at once, the clients
   taking turns round by round: the C client; `SnmpClient.walk`; `poll_device` with the if-mib
   profile (a GET of sysUpTime, the walk, profile decoding, rates). Ratios are per round.
2. Bursts, without retries so that a lost reply is a timeout: 5,000 GETs of sysUpTime with 1,000
   in flight, and 100 devices walked at once. Timeouts, `RcvbufErrors` of the namespace's
   /proc/net/snmp before and after, wall time against the C client's. monitord runs twice: with
   its default receive buffer and with the kernel's default (212,992 bytes, what it had before).

`--v3` measures SNMPv3 instead of the bursts: the agents also serve an authPriv user (SHA-1,
AES-128; lab/fast_snmpd.py's `V3_USER`), and each round has every client twice, v2c and v3: the
C client (the same async API, `-3`), `SnmpClient.walk` (v2c through probes/ber.py, v3 through
pysnmp) and `poll_device`, then `--gets` GETs of sysUpTime, 100 in flight, by the C client and
`SnmpClient.get`. Ratios are to the C client's v2c and v3 in the same round. pysnmp's v3 walks
are slow: use fewer devices (`--devices 8`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab.fast_snmpd import (  # noqa: E402
    V3_AUTH,
    V3_AUTH_KEY,
    V3_PRIV_KEY,
    V3_USER,
    Agent,
    add_interfaces,
    enter_own_netns,
    start_snmpd,
)
from lab.snmp import stop_process  # noqa: E402
from monitord.model import Device, Outcome, Secret, SnmpAuth  # noqa: E402
from probes.profile_files import load_profiles  # noqa: E402
from probes.profiles import poll_device  # noqa: E402
from probes.rates import RateTracker  # noqa: E402
from probes.snmp import Oid, Result, SnmpClient, Walked, format_oid, parse_oid  # noqa: E402
from probes.snmpbase import Target  # noqa: E402
from probes.udp import RECEIVE_BUFFER  # noqa: E402

SYS_UPTIME = parse_oid("1.3.6.1.2.1.1.3.0")
PUBLIC = SnmpAuth("bench", "2c", community=Secret("public", "bench"))
V3_GETS_IN_FLIGHT = 100
REPETITIONS = 25
AT_ONCE = 10  # devices walked at once in the CPU rounds
KERNEL_DEFAULT = 212_992  # net.core.rmem_default: the socket's buffer before it was sized


@dataclass(frozen=True)
class Run:
    values: int
    requests: int
    timeouts: int
    errors: int
    wall: float
    cpu: float
    dropped: int = 0  # RcvbufErrors during the run

    @property
    def cpu_per_1000(self) -> float:
        """CPU milliseconds per 1,000 values."""
        return self.cpu / self.values * 1e6 if self.values else float("nan")


R = TypeVar("R", Result, Walked)


class CountingClient(SnmpClient):
    """Counts the values and requests of every GET and walk, for poll_device."""

    values = requests = timeouts = errors = 0

    def _count(self, result: R) -> R:
        self.values += result.count
        self.requests += result.requests
        self.timeouts += result.outcome is Outcome.TIMEOUT
        self.errors += result.outcome not in (Outcome.OK, Outcome.TIMEOUT)
        return result

    async def get(self, target: Target, oids: list[Oid]) -> Result:  # type: ignore[override]
        return self._count(await super().get(target, oids))

    async def walk(self, target: Target, columns: list[Oid], max_repetitions: int = 25) -> Walked:  # type: ignore[override]
        return self._count(await super().walk(target, columns, max_repetitions))


def rcvbuf_errors() -> int:
    """UDP RcvbufErrors of this network namespace: datagrams dropped on a full receive buffer."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines() if line.startswith("Udp:")]
    return int(lines[1][lines[0].index("RcvbufErrors")])


def install_anchor_tools() -> None:
    """gcc and libsnmp-dev for the C anchor, installed if missing: before the script enters its
    own network namespace, which has no route to the mirrors."""
    missing = [package for tool, package in (("gcc", "gcc"), ("net-snmp-config", "libsnmp-dev")) if shutil.which(tool) is None]
    if missing:
        print(f"installing {' '.join(missing)} for the C anchor (apt-get)", flush=True)
        apt = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=apt)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=apt)


def build_anchor(folder: Path) -> Path:
    """bench/snmp_anchor.c compiled against net-snmp."""
    libs = subprocess.run(["net-snmp-config", "--libs"], check=True, capture_output=True, text=True).stdout.split()
    binary = folder / "snmp_anchor"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(ROOT / "bench" / "snmp_anchor.c"), *libs], check=True)
    return binary


@dataclass(frozen=True)
class Anchor:
    binary: Path
    env: dict[str, str]
    peers: str
    security: tuple[str, ...] = ()  # ("-3", user, auth passphrase, priv passphrase) for SNMPv3

    def run(self, *args: str) -> Run:
        command = [str(self.binary), *self.security, *args]
        done = subprocess.run(command, check=True, capture_output=True, text=True, env=self.env)
        fields = dict(part.split("=") for part in done.stdout.split())
        return Run(
            int(fields["values"]),
            int(fields["requests"]),
            int(fields["timeouts"]),
            int(fields["errors"]),
            float(fields["wall"]),
            float(fields["cpu"]),
        )

    def walk(self, devices: int, at_once: int, columns: list[Oid]) -> Run:
        return self.run("walk", str(devices), str(at_once), str(REPETITIONS), "0", self.peers, *map(format_oid, columns))

    def get(self, requests: int, in_flight: int) -> Run:
        return self.run("get", str(requests), str(in_flight), "0", self.peers, format_oid(SYS_UPTIME))


async def measured(client: CountingClient, work: Callable[[], Awaitable[object]]) -> Run:
    client.values = client.requests = client.timeouts = client.errors = 0
    dropped, started, cpu = rcvbuf_errors(), time.perf_counter(), time.process_time()
    await work()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Run(client.values, client.requests, client.timeouts, client.errors, wall, cpu, rcvbuf_errors() - dropped)


async def gather_limited(limit: int, jobs: Iterable[Awaitable[object]]) -> None:
    """Await every job, at most `limit` at once."""
    gate = asyncio.Semaphore(limit)

    async def one(job: Awaitable[object]) -> None:
        async with gate:
            await job

    await asyncio.gather(*(one(job) for job in jobs))


async def cpu_rounds(anchor: Anchor, agents: list[Agent], index: list[int], devices: int, rounds: int) -> dict[str, list[Run]]:
    profile = load_profiles()["if-mib"]
    columns = [column.oid for table in profile.tables for column in table.columns]
    client = CountingClient(timeout=2.0, retries=0)
    rates = RateTracker()
    inventory = [
        Device(f"dev-{n:03d}", "dslam", "bench", "127.0.0.1", PUBLIC, ("if-mib",), agents[n % len(agents)].port)
        for n in range(devices)
    ]

    lines = {device.id: {str(i): f"{device.id}/{i}" for i in index} for device in inventory}

    def walks() -> Awaitable[None]:
        return gather_limited(AT_ONCE, (client.walk(Target.of(device), columns, REPETITIONS) for device in inventory))

    def polls() -> Awaitable[None]:
        now = time.time()
        jobs = (poll_device(client, device, profile, lines[device.id], now, rates=rates) for device in inventory)
        return gather_limited(AT_ONCE, jobs)

    await walks()  # warm-up: sockets, addresses, agents' caches, rate state for the first poll
    await polls()
    runs: dict[str, list[Run]] = {"C async client": [], "SnmpClient.walk": [], "poll_device": []}
    for n in range(rounds):
        order = ["C async client", "SnmpClient.walk", "poll_device"]
        for name in order[n % 3 :] + order[: n % 3]:
            if name == "C async client":
                runs[name].append(anchor.walk(devices, AT_ONCE, columns))
            else:
                runs[name].append(await measured(client, walks if name == "SnmpClient.walk" else polls))
    client.close()
    return runs


async def v3_rounds(
    anchor: Anchor, agents: list[Agent], index: list[int], devices: int, gets: int, rounds: int
) -> dict[str, list[Run]]:
    """Walks, polls and GETs, v2c and v3, by the C client and monitord, taking turns each round."""
    profile = load_profiles()["if-mib"]
    columns = [column.oid for table in profile.tables for column in table.columns]
    # pysnmp's v3 walks take 40 ms of CPU a request: on a loaded box 2 s timed requests out and
    # the 30 s walk budget ended walks; this measures CPU, so neither may cut a walk short.
    client = CountingClient(timeout=10.0, retries=0, walk_timeout=600.0)
    anchor_v3 = Anchor(anchor.binary, anchor.env, anchor.peers, ("-3", V3_USER, V3_AUTH_KEY, V3_PRIV_KEY))
    targets = {"v2c": [Target("127.0.0.1", agent.port, PUBLIC) for agent in agents]}
    targets["v3"] = [Target("127.0.0.1", agent.port, V3_AUTH) for agent in agents]
    inventory = {
        version: [
            Device(f"dev-{n:03d}", "dslam", "bench", "127.0.0.1", auth, ("if-mib",), agents[n % len(agents)].port)
            for n in range(devices)
        ]
        for version, auth in (("v2c", PUBLIC), ("v3", V3_AUTH))
    }
    lines = {device.id: {str(i): f"{device.id}/{i}" for i in index} for device in inventory["v2c"]}
    rates = {"v2c": RateTracker(), "v3": RateTracker()}

    def walks(version: str) -> Callable[[], Awaitable[None]]:
        chosen = targets[version]
        jobs = (client.walk(chosen[n % len(chosen)], columns, REPETITIONS) for n in range(devices))
        return lambda: gather_limited(AT_ONCE, jobs)

    def polls(version: str) -> Callable[[], Awaitable[None]]:
        def run() -> Awaitable[None]:
            now = time.time()
            jobs = (poll_device(client, d, profile, lines[d.id], now, rates=rates[version]) for d in inventory[version])
            return gather_limited(AT_ONCE, jobs)

        return run

    def get_burst(version: str) -> Callable[[], Awaitable[None]]:
        chosen = targets[version]
        jobs = (client.get(chosen[n % len(chosen)], [SYS_UPTIME]) for n in range(gets))
        return lambda: gather_limited(V3_GETS_IN_FLIGHT, jobs)

    async def ours(make: Callable[[], Callable[[], Awaitable[None]]]) -> Run:
        return await measured(client, make())

    async def theirs(run: Callable[[], Run]) -> Run:
        return run()

    work: dict[str, Callable[[], Awaitable[Run]]] = {}
    for version, c_client in (("v2c", anchor), ("v3", anchor_v3)):
        work[f"walk {version}: C async client"] = partial(theirs, partial(c_client.walk, devices, AT_ONCE, columns))
        work[f"walk {version}: SnmpClient.walk"] = partial(ours, partial(walks, version))
        work[f"walk {version}: poll_device"] = partial(ours, partial(polls, version))
        work[f"GET {version}: C async client"] = partial(theirs, partial(c_client.get, gets, V3_GETS_IN_FLIGHT))
        work[f"GET {version}: SnmpClient.get"] = partial(ours, partial(get_burst, version))
    for version in ("v2c", "v3"):  # warm-up: sockets, engine discovery, rate state for the first poll
        await walks(version)()
        await polls(version)()
    runs: dict[str, list[Run]] = {name: [] for name in work}
    order = list(work)
    for n in range(rounds):
        for name in order[n % len(order) :] + order[: n % len(order)]:
            runs[name].append(await work[name]())
    client.close()
    return runs


def print_v3(runs: dict[str, list[Run]]) -> None:
    """Per value and per request, against the C client's v2c and v3 of the same kind in the same round."""
    print("| client | values per round | CPU ms per 1,000 values | CPU µs per request | x C v2c | x C v3 | x monitord v2c |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, rounds in runs.items():
        kind, client = name.split(": ")
        what = kind.split()[0]
        c_v2c, c_v3 = runs[f"{what} v2c: C async client"], runs[f"{what} v3: C async client"]
        own_v2c = runs[f"{what} v2c: {client}"]
        failed = sum(run.timeouts + run.errors for run in rounds)
        note = f" ({failed} failed)" if failed else ""

        def ratios(base: list[Run], rounds: list[Run] = rounds) -> str:
            return spread([run.cpu_per_1000 / other.cpu_per_1000 for run, other in zip(rounds, base, strict=True)])

        per_request = spread([run.cpu / run.requests * 1e6 for run in rounds])
        print(
            f"| {name} | {rounds[0].values:,}{note} | {spread([r.cpu_per_1000 for r in rounds])} | {per_request} "
            f"| {ratios(c_v2c)} | {ratios(c_v3)} | {ratios(own_v2c)} |"
        )


async def bursts(anchor: Anchor, agents: list[Agent], gets: int, in_flight: int, walked: int) -> dict[str, dict[str, Run]]:
    columns = [column.oid for table in load_profiles()["if-mib"].tables for column in table.columns]
    targets = [Target("127.0.0.1", agent.port, PUBLIC) for agent in agents]
    found: dict[str, dict[str, Run]] = {"get": {}, "walk": {}}
    dropped = rcvbuf_errors()
    found["get"]["C async client"] = anchor.get(gets, in_flight)
    found["get"]["C async client"] = _with_dropped(found["get"]["C async client"], rcvbuf_errors() - dropped)
    dropped = rcvbuf_errors()
    found["walk"]["C async client"] = _with_dropped(anchor.walk(walked, walked, columns), rcvbuf_errors() - dropped)
    for name, asked in (
        (f"SnmpClient ({RECEIVE_BUFFER:,} B asked)", RECEIVE_BUFFER),
        (f"SnmpClient ({KERNEL_DEFAULT:,} B, as before)", KERNEL_DEFAULT // 2),
    ):
        found["get"][name], found["walk"][name] = await monitord_bursts(asked, targets, columns, gets, in_flight, walked)
    return found


async def monitord_bursts(
    asked: int, targets: list[Target], columns: list[Oid], gets: int, in_flight: int, walked: int
) -> tuple[Run, Run]:
    """The GET burst and the walk burst on a fresh client asking for an `asked`-byte buffer."""
    client = CountingClient(timeout=2.0, retries=0, receive_buffer=asked)
    await asyncio.gather(*(client.get(target, [SYS_UPTIME]) for target in targets))  # opens the socket
    get_jobs = (client.get(targets[n % len(targets)], [SYS_UPTIME]) for n in range(gets))
    walk_jobs = (client.walk(targets[n % len(targets)], columns, REPETITIONS) for n in range(walked))
    get_run = await measured(client, lambda: gather_limited(in_flight, get_jobs))
    walk_run = await measured(client, lambda: gather_limited(walked, walk_jobs))
    print(f"asked for {asked:,} B: the kernel granted {client.receive_buffers[socket.AF_INET]:,} B", flush=True)
    client.close()
    return get_run, walk_run


def _with_dropped(run: Run, dropped: int) -> Run:
    return Run(run.values, run.requests, run.timeouts, run.errors, run.wall, run.cpu, dropped)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=4, help="snmpd instances")
    parser.add_argument("--pairs", type=int, default=250, help="veth pairs: 2 x pairs + 1 rows per table")
    parser.add_argument("--devices", type=int, default=40, help="device walks per CPU round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--gets", type=int, default=5000)
    parser.add_argument("--in-flight", type=int, default=1000)
    parser.add_argument("--walked", type=int, default=100, help="devices walked at once in the burst")
    parser.add_argument("--v3", action="store_true", help="SNMPv3 against v2c instead of the bursts (see above)")
    args = parser.parse_args()
    install_anchor_tools()
    enter_own_netns()
    print("load before:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), flush=True)
    with tempfile.TemporaryDirectory(prefix="snmp-bench-") as name:
        folder = Path(name)
        anchor_binary = build_anchor(folder)
        (folder / "snmp.conf").write_text(f"clientRecvBuf {RECEIVE_BUFFER}\n")  # the C client's buffer as monitord's
        index = add_interfaces(args.pairs)
        agents = start_snmpd(folder, args.agents, RECEIVE_BUFFER)
        try:
            peers = ",".join(f"udp:127.0.0.1:{agent.port}" for agent in agents)
            env = {**os.environ, "MIBS": "", "SNMPCONFPATH": str(folder), "SNMP_PERSISTENT_DIR": str(folder / "persist")}
            anchor = Anchor(anchor_binary, env, peers)
            print(f"{args.agents} snmpd x {len(index)} interfaces in a private network namespace", flush=True)
            if args.v3:
                v3 = asyncio.run(v3_rounds(anchor, agents, index, args.devices, args.gets, args.rounds))
                print("load after:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
                print(
                    f"\n{args.devices} devices x {len(index)} rows x 5 columns, {args.gets:,} GETs; {args.rounds} rounds, median (range)"
                )
                print_v3(v3)
                return
            runs = asyncio.run(cpu_rounds(anchor, agents, index, args.devices, args.rounds))
            burst = asyncio.run(bursts(anchor, agents, args.gets, args.in_flight, args.walked))
        finally:
            for agent in agents:
                stop_process(agent.process)
    print("load after:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())

    anchor_runs = runs["C async client"]
    print(f"\nCPU per 1,000 values, {args.devices} devices x {len(index)} rows x 5 columns per round, {args.rounds} rounds")
    print("| client | values per round | CPU ms per 1,000 values, median (range) | x the C client, same round |")
    print("|---|---:|---:|---:|")
    for name, rounds in runs.items():
        ratios = [run.cpu_per_1000 / base.cpu_per_1000 for run, base in zip(rounds, anchor_runs, strict=True)]
        failed = sum(run.timeouts + run.errors for run in rounds)
        note = f" ({failed} failed)" if failed else ""
        print(f"| {name} | {rounds[0].values:,}{note} | {spread([r.cpu_per_1000 for r in rounds])} | {spread(ratios)} |")
    for kind, title in (
        ("get", f"{args.gets:,} GETs, {args.in_flight:,} in flight"),
        ("walk", f"{args.walked} devices walked at once"),
    ):
        base = burst[kind]["C async client"]
        print(f"\n{title}, no retries")
        print("| client | values | timeouts | RcvbufErrors | wall s | x C wall | CPU ms per 1,000 values | x C CPU |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, run in burst[kind].items():
            print(
                f"| {name} | {run.values:,} | {run.timeouts} | {run.dropped} | {run.wall:.3f} | {run.wall / base.wall:.1f} "
                f"| {run.cpu_per_1000:.2f} | {run.cpu_per_1000 / base.cpu_per_1000:.1f} |"
            )


if __name__ == "__main__":
    main()
