"""commit_step of a realistic engine step, SQLite against PostgreSQL in the same run (issue 15 item 1).

    PYTHONPATH=. .venv/bin/python bench/pg_store.py [--steps 300] [--rounds 3] [--targets 100] [--notices 50]

Each step writes what a step of a growing outage writes, in one transaction (as
`Pipeline._write` does): `--targets` changed target rows (about 700-byte JSON records, keys
drawn from 10,000 lines so that most are updates after the first steps), one incident upserted
with its number issued and its `--targets` new member rows, the small head, and `--notices` new
SMS notices. Measured per step, on the loop thread: the wall time of `commit_step` (what it holds
the event loop for) and this process's CPU (`time.process_time`, every thread: SQLite's fsync
worker included); for PostgreSQL also the CPU of the server's two backends (the loop's session
and PgSync's, from /proc/PID/stat, 10 ms ticks, per step over the run). `durable()` is awaited
every 10 steps, as the outbox does before a wave (how long it waits, the loop free meanwhile, is
the last column). The first 20 steps of each store are left out
(psycopg prepares a statement at its 5th run). Rounds alternate the engines on fresh stores, so
a change in the machine's load falls on both.

PostgreSQL: a throw-away 15 cluster (tests/pg_fixtures.py) on 127.0.0.1 with its default
settings (fsync on), in /tmp beside the SQLite file, so both flush to the same disk. Not covered:
a server on another machine (every round trip then costs the network's latency: a step makes
about a dozen), a server shared with other load, and reads (`due`, `backlog`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitord.model import Incident, IncidentKind, NodeRef, Notification, Phase
from monitord.store import Store
from rules.snapshot import MemberRows, Rows
from tests.pg_fixtures import PgCluster

POPULATION = 10_000
WARMUP = 20
NOW = 1_780_000_000.0
TICK = os.sysconf("SC_CLK_TCK")


def record(key: str, step: int) -> dict[str, Any]:
    """A target's record, shaped like rules/snapshot.py's (status, probes, timers), ~700 bytes."""
    return {
        "key": key,
        "status": "unreachable",
        "since": NOW + step,
        "reasons": ["sisli-dslam-01 timeout", "no ICMP reply for 3 polls"],
        "probes": {
            probe: {
                "outcome": "timeout",
                "at": NOW + step,
                "fails": step % 7,
                "values": {"snr_margin_down_db": 11.5, "loss": 1.0},
            }
            for probe in ("icmp", "snmp:adsl", "snmp:if-mib")
        },
        "confirm": {"down": 3, "up": 0, "checks": [NOW + step - 30, NOW + step - 60, NOW + step - 90]},
        "wake": [NOW + step + 60, NOW + step + 120],
    }


def step(n: int, targets: int, notices: int) -> tuple[Rows, Incident, list[tuple[Notification, float | None]]]:
    tracking = f"ARZ-2026-{n // 10 + 1:06d}"  # an incident grows for 10 steps, then the next opens
    keys = [f"line:L{(n * targets + i) % POPULATION:05d}" for i in range(targets)]
    head = {"version": 1, "issued": {"2026": n // 10 + 1}, "timers": [[NOW + n + 90, "i", tracking]]}
    rows = Rows(
        head,
        {k: record(k, n) for k in keys},
        {tracking: {"tracking": tracking, "phase": "open", "kind": "outage", "root": "device:dslam-1", "opened_at": NOW}},
        {tracking: MemberRows(whole=False, changed=dict.fromkeys(keys, 3))},
    )
    incident = Incident(
        tracking,
        IncidentKind.OUTAGE,
        NodeRef("device", "sisli-dslam-01"),
        Phase.OPEN,
        NOW + n // 10 * 10,
        NOW + n,
        frozenset(keys),
        (f"sisli-dslam-01 timeout at step {n}",),
    )
    planned = [
        (
            Notification(
                f"{tracking}/sms/+90532{n:03d}{i:04d}/outage",
                "sms",
                f"+90532{n:03d}{i:04d}",
                "outage",
                "",
                f"Bölgenizde (Şişli) internet arızası var, ekiplerimiz çalışıyor. Takip no: {tracking}",
                tracking,
            ),
            None,
        )
        for i in range(notices)
    ]
    return rows, incident, planned


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


@dataclass
class Figures:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    durable: list[float] = field(default_factory=list)
    server_cpu: float = 0.0
    steps: int = 0


async def run(store: Store, args: argparse.Namespace, figures: Figures, backends: list[int]) -> None:
    server_before = sum(backend_cpu(pid) for pid in backends)
    for n in range(args.steps):
        rows, incident, planned = step(n, args.targets, args.notices)
        cpu, wall = time.process_time(), time.perf_counter()
        store.commit_step(rows, [incident], planned, NOW + n)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if n >= WARMUP:
            figures.wall.append(wall)
            figures.cpu.append(cpu)
        if n % 10 == 9:
            waited = time.perf_counter()
            await store.durable()
            if n >= WARMUP:
                figures.durable.append(time.perf_counter() - waited)
    await store.durable()
    if backends:
        figures.server_cpu += sum(backend_cpu(pid) for pid in backends) - server_before
    figures.steps += args.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--notices", type=int, default=50)
    args = parser.parse_args()
    print("uptime before:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    cluster = PgCluster({"shared_buffers": "128MB"})
    cluster.start()
    figures = {"sqlite": Figures(), "postgresql": Figures()}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-pg-store-") as folder:
            for r in range(args.rounds):
                for engine, fig in figures.items():
                    if engine == "sqlite":
                        store = Store.open(Path(folder) / f"state-{r}.db")
                        backends: list[int] = []
                    else:
                        store = Store.open(cluster.new_database())
                        backends = [store._db.connection.info.backend_pid, store._sync._db.info.backend_pid]  # type: ignore[attr-defined]
                    try:
                        asyncio.run(run(store, args, fig, backends))
                    finally:
                        store.close()
    finally:
        cluster.destroy()
    print("uptime after: ", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    base = figures["sqlite"]
    base_wall, base_cpu = statistics.median(base.wall), statistics.mean(base.cpu)
    print(
        f"{args.targets} targets + 1 incident + {args.notices} notices per step; {args.rounds} rounds x {args.steps} steps per engine"
    )
    print(
        "engine      wall median  wall p95   CPU here/step  server CPU/step  wall vs SQLite  CPU here vs SQLite  durable() median"
    )
    for engine, fig in figures.items():
        wall = statistics.median(fig.wall)
        p95 = statistics.quantiles(fig.wall, n=20)[-1]
        cpu = statistics.mean(fig.cpu)
        server = f"{fig.server_cpu / fig.steps * 1e3:8.2f} ms" if engine == "postgresql" else "       -   "
        print(
            f"{engine:<10} {wall * 1e3:8.2f} ms {p95 * 1e3:8.2f} ms  {cpu * 1e3:8.2f} ms     {server}     "
            f"{wall / base_wall:6.2f}x         {cpu / base_cpu:6.2f}x            {statistics.median(fig.durable) * 1e3:6.2f} ms"
        )


if __name__ == "__main__":
    main()
