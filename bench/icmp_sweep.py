"""Sweep thousands of loopback addresses with monitord and with Debian's fping, in one run.

    .venv/bin/python bench/icmp_sweep.py [--hosts 10000] [--rounds 5] [--scapy]

Every address in 127.1.0.0/16 answers on `lo`, so the sweep measures the prober, not a network.
Rounds alternate between the two and the median is reported. fping runs as
`fping -q -c1 -t 500 -r0 -i 0 -f <file>`: its wall time includes starting the process (a few
ms), monitord's includes opening its sockets and building the results. monitord uses its daemon
defaults (raw socket, 200 echoes in flight, timeout 1 s). CPU is user + system time of the prober.

`--scapy` also times building one echo request with scapy and with `struct`, the measurement
behind probes/icmp.py's choice of `struct`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from probes.icmp import Pinger


@dataclass(frozen=True, slots=True)
class Run:
    wall: float
    cpu: float
    answered: int


def addresses(count: int) -> list[str]:
    return [f"127.1.{i // 250}.{i % 250 + 1}" for i in range(count)]


def cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def fping(path: str) -> Run:
    before, start = cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run(
        ["fping", "-q", "-c1", "-t", "500", "-r0", "-i", "0", "-f", path],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    answered = done.stderr.count("xmt/rcv/%loss = 1/1/0%")
    return Run(wall, cpu(resource.RUSAGE_CHILDREN) - before, answered)


async def monitord(hosts: list[str]) -> Run:
    """Opens its own sockets: an open raw socket receives (and slows) fping's replies too."""
    before, start = cpu(resource.RUSAGE_SELF), time.perf_counter()
    async with await Pinger.open() as pinger:
        results = await pinger.sweep(hosts, count=1, timeout=1.0)
    wall = time.perf_counter() - start
    return Run(wall, cpu(resource.RUSAGE_SELF) - before, sum(r.received for r in results.values()))


def report(name: str, runs: list[Run], hosts: int) -> float:
    wall = statistics.median(r.wall for r in runs)
    rate = hosts / wall
    print(
        f"{name:9} {rate:9,.0f} hosts/s  wall {wall * 1000:6.1f} ms  "
        f"cpu {statistics.median(r.cpu for r in runs) * 1000:6.1f} ms  "
        f"answered {min(r.answered for r in runs)}/{hosts}"
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
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scapy", action="store_true", help="also time packet building")
    args = parser.parse_args()
    if args.scapy:
        scapy_build_cost(200)
    hosts = addresses(args.hosts)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as listing:
        listing.write("\n".join(hosts) + "\n")
        listing.flush()
        await monitord(hosts[:1000])
        ours, theirs = [], []
        for _ in range(args.rounds):
            theirs.append(fping(listing.name))
            ours.append(await monitord(hosts))
    print(f"{args.hosts} loopback hosts, {args.rounds} rounds, median; pid {os.getpid()}")
    ratio = report("monitord", ours, args.hosts) / report("fping", theirs, args.hosts)
    print(f"monitord / fping: {ratio:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
