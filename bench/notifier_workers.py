"""Several notifier workers (`--role notifier`, issue 15) on one PostgreSQL outbox: throughput
and CPU per SMS with 1, 2 and 4 worker processes at one global rate, against the local Twilio in
a process of its own.

    PYTHONPATH=. .venv/bin/python bench/notifier_workers.py [--sms 3000] [--rate 500] [--workers 1 2 4] [--rounds 1]

Each run queues `--sms` SMS in a fresh database of a throw-away PostgreSQL cluster (default
settings, fsync on) and starts the workers (tests/notifier_worker_child.py, `--concurrency`
sends in flight each, the channel's `--rate` shared through the database). It prints, per worker count: SMS per second
between the first and the last message the lab accepted, as a share of the rate; the workers'
CPU per SMS (startup left out); the PostgreSQL server's CPU per SMS; and the most the lab saw
above the rate in any window (`most_over_rate`, in messages), against the bucket's burst. Ratios
are against the best run of the same invocation.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lab.twilio import TwilioLabProcess
from monitord.pacing import Waves
from monitord.store import Store
from tests.outbox_fixtures import queue, sms
from tests.pg_fixtures import PgCluster
from tests.test_notifier_workers import most_over_rate

ROOT = Path(__file__).resolve().parent.parent
CHILD = ROOT / "tests" / "notifier_worker_child.py"


@dataclass(frozen=True, slots=True)
class Run:
    workers: int
    per_second: float
    worker_cpu_per_sms: float  # seconds, all workers together, startup left out
    server_cpu_per_sms: float
    over_rate: float  # messages above rate * window, the worst window


def server_cpu(cluster: PgCluster) -> float:
    """CPU seconds of the cluster so far: the postmaster's own, its reaped backends' (cutime,
    cstime: the workers' sessions once they closed) and its live children's."""
    tick = os.sysconf("SC_CLK_TCK")
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    live = subprocess.run(["ps", "-o", "pid=", "--ppid", str(postmaster)], capture_output=True, text=True).stdout.split()
    total = 0
    for pid in [postmaster, *map(int, live)]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except FileNotFoundError:
            continue  # ended meanwhile: counted in the postmaster's cutime once reaped
        total += sum(int(f) for f in fields[11:13] + (fields[13:15] if pid == postmaster else []))
    return total / tick


async def one_run(cluster: PgCluster, workers: int, count: int, rate: float, concurrency: int) -> Run:
    server = cluster.new_database()
    store = Store.open(server)
    queue(store, [sms(i) for i in range(count)])
    store.close()
    async with TwilioLabProcess() as lab:
        env = {**os.environ, "TWILIO_AUTH_TOKEN": lab.auth_token, "PYTHONPATH": str(ROOT)}
        children = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                str(CHILD),
                server.url,
                lab.base_url,
                lab.account_sid,
                str(rate),
                stdout=asyncio.subprocess.PIPE,
                env=env,
            )
            for _ in range(workers)
        ]
        started = []
        for child in children:
            assert child.stdout is not None
            started.append(float((await child.stdout.readline()).split()[1]))
        server_before = server_cpu(cluster)
        cpu = 0.0
        for child, at_start in zip(children, started):
            assert child.stdout is not None
            _, _, spent = (await child.stdout.readline()).split()
            cpu += float(spent) - at_start
            await child.wait()
        server_after = server_cpu(cluster)
        report = await lab.finish()
    times = sorted(report.times)
    assert len(times) == count, f"{len(times)} of {count} SMS arrived"
    return Run(
        workers,
        (count - 1) / (times[-1] - times[0]),
        cpu / count,
        (server_after - server_before) / count,
        most_over_rate(times, rate),
    )


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sms", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=32, help="sends in flight per worker")
    args = parser.parse_args()
    print("uptime before:", uptime())
    cluster = PgCluster({})
    cluster.start()
    try:
        runs = [
            await one_run(cluster, n, args.sms, args.rate, args.concurrency) for _ in range(args.rounds) for n in args.workers
        ]
    finally:
        cluster.destroy()
    print("uptime after: ", uptime())
    best = max(r.per_second for r in runs)
    least_cpu = min(r.worker_cpu_per_sms for r in runs)
    burst = Waves.start(args.rate, 0.3, 0.0).burst
    print(
        f"{args.sms} SMS at a shared rate of {args.rate:g}/s (burst {burst:g}), {args.concurrency} in flight per worker; "
        "ratios against the best run here"
    )
    print("| workers | SMS/s | of the rate | vs best | workers' CPU / SMS | vs least | server CPU / SMS | most over the rate |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        print(
            f"| {r.workers} | {r.per_second:.0f} | {r.per_second / args.rate:.0%} | {r.per_second / best:.2f}x "
            f"| {r.worker_cpu_per_sms * 1e3:.2f} ms | {r.worker_cpu_per_sms / least_cpu:.2f}x "
            f"| {r.server_cpu_per_sms * 1e3:.2f} ms | {r.over_rate:.1f} |"
        )


if __name__ == "__main__":
    started = time.monotonic()
    asyncio.run(main())
    print(f"took {time.monotonic() - started:.0f} s")
