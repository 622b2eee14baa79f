"""Sweep thousands of loopback addresses with monitord and with Debian's fping, in one run.

    .venv/bin/python bench/icmp_sweep.py [--hosts 10000] [--silent 0] [--rounds 5] [--scapy]
    .venv/bin/python bench/icmp_sweep.py --daemon-lines 1000032 [--ports 48]

Runs in a network namespace of its own (re-executed under `unshare --net`, so as root): no
other program's pings reach its raw sockets, and `--silent` addresses (127.200.0.0/16) are
dropped by an nftables rule there, as a dead region's modems would be. Every other address in
127.1.0.0/16 answers on `lo`, so the sweep measures the prober, not a network. Rounds alternate
between the two and the median is reported. fping runs as `fping -q -c1 -t 500 -r0 -i 0 -f
<file>`: its wall time includes starting the process (a few ms), monitord's includes opening its
sockets and building the results. monitord uses its daemon defaults (raw socket, as many echoes
in flight as its receive buffer holds) and fping's timeout, 500 ms. CPU is user + system time
of the prober, also printed apart (the system share includes, on loopback, the kernel answering
the echoes in the prober's own context).

`--scapy` also times building one echo request with scapy and with `struct`, the measurement
behind probes/icmp.py's choice of `struct`.

`--daemon-lines N` instead runs the daemon's own ICMP jobs (monitord/polling.py: a sweep per
DSLAM of its address and its modems', `polling.icmp_count` echoes, samples built) once over an
inventory of N modems on DSLAMs of `--ports` ports, through bench/capacity.py's `run_round` (at
most `polling.max_in_flight` jobs at once), as capacity.py's ICMP stage does without its hour of
loading and walking, `--rounds` times; it prints each round's CPU-seconds (user and system) and
the RSS before and after each.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.capacity import device_address, modem_address, rss_mb, run_round, write_inventory
from lab.fast_snmpd import enter_own_netns
from monitord.config import load_config
from monitord.model import Device, Line, Topology
from monitord.polling import PollingJobs
from probes.icmp import Pinger

SILENT = "127.200.0.0/16"


@dataclass(frozen=True, slots=True)
class Run:
    wall: float
    user: float
    system: float
    answered: int

    @property
    def cpu(self) -> float:
        return self.user + self.system


def addresses(count: int, prefix: str = "127.1") -> list[str]:
    return [f"{prefix}.{i // 250}.{i % 250 + 1}" for i in range(count)]


def silence(network: str) -> None:
    """Loopback up, and echo requests to `network` dropped, in this process's own namespace."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    rules = (
        "add table inet bench\n"
        "add chain inet bench input { type filter hook input priority 0; policy accept; }\n"
        f"add rule inet bench input ip daddr {network} icmp type echo-request drop\n"
    )
    subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True)


def cpu(who: int) -> tuple[float, float]:
    usage = resource.getrusage(who)
    return usage.ru_utime, usage.ru_stime


def fping(path: str) -> Run:
    before, start = cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run(
        ["fping", "-q", "-c1", "-t", "500", "-r0", "-i", "0", "-f", path],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    answered = done.stderr.count("xmt/rcv/%loss = 1/1/0%")
    after = cpu(resource.RUSAGE_CHILDREN)
    return Run(wall, after[0] - before[0], after[1] - before[1], answered)


async def monitord(hosts: list[str]) -> Run:
    """Opens its own sockets: an open raw socket receives (and slows) fping's replies too."""
    before, start = cpu(resource.RUSAGE_SELF), time.perf_counter()
    async with await Pinger.open() as pinger:
        results = await pinger.sweep(hosts, count=1, timeout=0.5)
    wall = time.perf_counter() - start
    after = cpu(resource.RUSAGE_SELF)
    return Run(wall, after[0] - before[0], after[1] - before[1], sum(r.received for r in results.values()))


async def daemon_round(lines: int, ports: int, rounds: int) -> None:
    """`rounds` ICMP rounds of the daemon's jobs over `lines` modems, every one answering on loopback."""
    with tempfile.TemporaryDirectory() as root:
        config = load_config(write_inventory(Path(root), 1, 1), environ={"BENCH_COMMUNITY": "public"})
    devices = {f"dslam-{n}": Device(f"dslam-{n}", "dslam", "ex", device_address(n), None) for n in range(-(-lines // ports))}
    ids = list(devices)
    topology = Topology(
        {}, {}, devices, {f"S{n}": Line(f"S{n}", "", ids[n // ports], modem=modem_address(n)) for n in range(lines)}
    )
    config = replace(config, topology=topology)
    jobs = PollingJobs(time.time)
    round_jobs = jobs.jobs(config)
    polling = config.polling
    addresses = len(devices) + lines
    print(f"{len(devices):,} DSLAMs x {ports} ports: {addresses:,} addresses x {polling.icmp_count} echoes", flush=True)
    jobs.pinger = await Pinger.open()
    try:
        await run_round(round_jobs[:100], polling.max_in_flight, polling.per_device_in_flight)  # warm-up
        gc.collect()
        print(f"RSS before the first round {rss_mb():.0f} MB")
        for n in range(1, rounds + 1):
            before = resource.getrusage(resource.RUSAGE_SELF)
            done = await run_round(round_jobs, polling.max_in_flight, polling.per_device_in_flight)
            after = resource.getrusage(resource.RUSAGE_SELF)
            user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
            gc.collect()
            print(
                f"round {n}: {done.cpu:.1f} CPU-s (user {user:.1f}, system {system:.1f}), wall {done.wall:.1f} s, "
                f"{done.cpu / (addresses * polling.icmp_count) * 1e6:.1f} µs per echo; "
                f"{done.answered_lines:,} lines answered, {done.failed_devices} DSLAMs not OK; RSS after it (gc) {rss_mb():.0f} MB"
            )
    finally:
        await jobs.pinger.close()


def report(name: str, runs: list[Run], hosts: int, answering: int) -> float:
    wall = statistics.median(r.wall for r in runs)
    rate = hosts / wall
    print(
        f"{name:9} {rate:9,.0f} hosts/s  wall {wall * 1000:6.1f} ms  "
        f"cpu {statistics.median(r.cpu for r in runs) * 1000:6.1f} ms (user {statistics.median(r.user for r in runs) * 1000:5.1f}, "
        f"system {statistics.median(r.system for r in runs) * 1000:5.1f}; {statistics.median(r.cpu for r in runs) / hosts * 1e6:4.1f} µs "
        f"per echo, spread {min(r.cpu for r in runs) * 1000:.0f}-{max(r.cpu for r in runs) * 1000:.0f} ms)  "
        f"answered {min(r.answered for r in runs)}/{answering}"
    )
    return rate


def scapy_build_cost(packets: int) -> None:
    from scapy.layers.inet import ICMP, IP

    start = time.perf_counter()
    for seq in range(packets):
        bytes(IP(dst="127.0.0.1") / ICMP(id=4242, seq=seq) / b"monitord")
    scapy = (time.perf_counter() - start) / packets
    header = struct.Struct("!BBHHH8s")
    start = time.perf_counter()
    for seq in range(packets * 100):
        header.pack(8, 0, 0xFFFF - (1234 + seq) % 0xFFFF, 4242, seq & 0xFFFF, b"monitord")
    plain = (time.perf_counter() - start) / (packets * 100)
    print(f"build one echo request: scapy {scapy * 1e6:.0f} µs, struct {plain * 1e6:.2f} µs")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5, help="sweeps of each prober (with --daemon-lines: ICMP rounds)")
    parser.add_argument("--silent", type=int, default=0, help="addresses that never answer, swept with the others")
    parser.add_argument("--scapy", action="store_true", help="also time packet building")
    parser.add_argument("--daemon-lines", type=int, default=0, help="instead: the daemon's ICMP jobs over this many modems")
    parser.add_argument("--ports", type=int, default=48, help="with --daemon-lines: modems per DSLAM")
    args = parser.parse_args()
    enter_own_netns()
    silence(SILENT)
    print("load before:", Path("/proc/loadavg").read_text().strip(), flush=True)
    if args.daemon_lines:
        await daemon_round(args.daemon_lines, args.ports, args.rounds)
        print("load after:", Path("/proc/loadavg").read_text().strip())
        return
    if args.scapy:
        scapy_build_cost(200)
    hosts = addresses(args.hosts) + addresses(args.silent, "127.200")
    total = len(hosts)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as listing:
        listing.write("\n".join(hosts) + "\n")
        listing.flush()
        await monitord(hosts[:1000])
        ours, theirs = [], []
        for _ in range(args.rounds):
            theirs.append(fping(listing.name))
            ours.append(await monitord(hosts))
    print("load after:", Path("/proc/loadavg").read_text().strip())
    print(f"{args.hosts} loopback hosts and {args.silent} silent ones, {args.rounds} rounds, median; pid {os.getpid()}")
    ratio = report("monitord", ours, total, args.hosts) / report("fping", theirs, total, args.hosts)
    print(f"monitord / fping: {ratio:.2f} (hosts/s)")
    cpu_ratio = statistics.median(r.cpu for r in ours) / statistics.median(r.cpu for r in theirs)
    print(f"monitord / fping: {cpu_ratio:.2f} (CPU per sweep, lower is better)")


if __name__ == "__main__":
    asyncio.run(main())
