"""How fast the outbox drains one regional outage's SMS into a local Twilio, against its rate limit.

    .venv/bin/python bench/sms_outbox.py [--count 10000] [--rates 200 500] [--concurrency 16]
        [--polling-lines 100032 [--polling-warmup 90]] [--lab process|inline]

Queues `count` outage SMS in one engine step (one incident, distinct numbers), then lets the
outbox deliver them through the real twilio client to lab/twilio.py on 127.0.0.1. The achieved
rate is taken from the times the endpoint accepted the first and the last message.

The endpoint runs in a process of its own (`--lab process`, the default: Twilio is remote in
production), so the CPU per SMS of the bench's process is the daemon's side alone; the
endpoint's CPU is printed beside it. `--lab inline` runs it in the bench's process and loop,
as the bench did before, and prints the sum of both.

With `--polling-lines`, the daemon's polling runs in the same process and loop all along: the
capacity inventory (bench/capacity.py, DSLAMs served by lab/table_agent.py, modems on loopback),
the daemon's own jobs under its `Scheduler` at the shipped intervals, every sample ingested by
its `Pipeline`. The outbox starts after `--polling-warmup` s, so its SMS compete with steady
polling; polls skipped while it drained are reported with the rate. The process's CPU counts
the polling too: its rate over the last 30 s of the warm-up (polling alone) is printed beside
it, with the polls skipped at that rate. On a box that gives the process less CPU than it
asks for, polling and outbox share what it gets: the process's CPU rate is then about the same
with and without the outbox.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.capacity import device_address, write_inventory
from lab.table_agent import start_table_agents
from lab.twilio import TwilioLab, TwilioLabProcess
from monitord.config import load_config
from monitord.daemon import Daemon
from monitord.model import Notification, Sample, Secret
from monitord.outbox import ChannelPolicy, Outbox
from monitord.store import Store
from notifiers.sms import TwilioSms
from probes.icmp import Pinger
from probes.scheduler import Scheduler
from probes.snmp import SnmpClient


@dataclass(frozen=True, slots=True)
class Polling:
    scheduler: Scheduler
    cpu_rate: float  # CPU seconds a second over the end of the warm-up, polling alone
    skipped_rate: float  # polls skipped a second meanwhile


@contextlib.asynccontextmanager
async def polling_load(folder: Path, lines: int, warmup: float) -> AsyncIterator[Polling | None]:
    """The daemon's polling of `lines` lines running in this loop (None: no polling)."""
    if not lines:
        yield None
        return
    ports = 48
    devices = -(-lines // ports)
    agents = start_table_agents(folder, [device_address(n, 30) for n in range(devices)], ports, 2)
    try:
        config = load_config(
            write_inventory(folder, devices, ports, agents.port, blocks=(30, 104)), environ={"BENCH_COMMUNITY": "public"}
        )
        daemon = Daemon(config)
        await daemon.pipeline.start()
        daemon.probes.snmp = SnmpClient(timeout=config.snmp.timeout, retries=config.snmp.retries)
        daemon.probes.pinger = await Pinger.open()

        async def sink(samples: list[Sample]) -> None:
            await daemon.pipeline.ingest(samples)

        polling = config.polling
        scheduler = Scheduler(
            daemon.probes.jobs(config),
            sink,
            max_in_flight=polling.max_in_flight,
            per_device_in_flight=polling.per_device_in_flight,
            jitter=polling.jitter,
            job_timeout=config.job_timeout,
        )
        runner = asyncio.create_task(scheduler.run_forever())
        print(f"polling {len(config.topology.lines):,} lines in this process; {warmup:g} s of warm-up", flush=True)
        await asyncio.sleep(max(0.0, warmup - 30.0))
        alone = min(30.0, warmup)
        cpu, skipped = time.process_time(), sum(scheduler.skipped.values())
        await asyncio.sleep(alone)
        cpu_rate = (time.process_time() - cpu) / alone
        try:
            yield Polling(scheduler, cpu_rate, (sum(scheduler.skipped.values()) - skipped) / alone)
        finally:
            scheduler.stop()
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
            await daemon.probes.pinger.close()
            daemon.probes.snmp.close()
            daemon.store.close()
    finally:
        agents.stop()


def outage_sms(count: int) -> list[tuple[Notification, None]]:
    tracking = "ARZ-2026-000777"
    body = f"Sayın abonemiz, bölgenizde altyapı arızası var. Takip no: {tracking}. Çalışma sürüyor."
    return [
        (Notification(f"{tracking}/sms/+90532{i:07d}/outage", "sms", f"+90532{i:07d}", "outage", "", body, tracking), None)
        for i in range(count)
    ]


async def run(count: int, rate: float, concurrency: int, state_file: Path, lines: int, warmup: float, inline: bool) -> None:
    store = Store.open(state_file)
    started = time.perf_counter()
    queued = store.commit_step(None, [], outage_sms(count), time.time())
    queue_s = time.perf_counter() - started
    polled = state_file.parent / f"polling-{state_file.stem}"
    polled.mkdir()
    lab: TwilioLab | TwilioLabProcess = TwilioLab() if inline else TwilioLabProcess()
    async with lab, polling_load(polled, lines, warmup) as polling:
        skipped = sum(polling.scheduler.skipped.values()) if polling else 0
        notifier = TwilioSms(lab.account_sid, Secret(lab.auth_token, "bench"), "+908501234567", lab.base_url)
        outbox = Outbox(store, {"sms": notifier}, {"sms": ChannelPolicy(concurrency=concurrency, rate=rate)})
        started, cpu = time.perf_counter(), time.process_time()
        runner = asyncio.create_task(outbox.run())
        while store.depth():
            await asyncio.sleep(0.05)
        drain_s, cpu = time.perf_counter() - started, time.process_time() - cpu
        await outbox.stop(timeout=5)
        await runner
        skipped = sum(polling.scheduler.skipped.values()) - skipped if polling else 0
        if isinstance(lab, TwilioLab):
            times, lab_cpu = sorted(m.at for m in lab.messages), None
        else:
            report = await lab.finish()
            times, lab_cpu = sorted(report.times), report.cpu
    achieved = (len(times) - 1) / (times[-1] - times[0])
    counts = outbox.counts["sms"]
    print(
        f"rate {rate:g}/s: {queued} queued in {queue_s * 1000:.0f} ms (one transaction); "
        f"{len(times)} accepted, sent={counts.sent} dead={counts.dead} segments={counts.segments}; "
        f"achieved {achieved:.1f}/s ({achieved / rate:.1%} of configured), drained in {drain_s:.1f} s, "
        + (
            f"CPU {cpu / len(times) * 1000:.2f} ms per SMS (outbox and endpoint in this one process)"
            if lab_cpu is None
            else f"CPU {cpu / len(times) * 1000:.2f} ms per SMS in this process (the outbox), "
            f"the endpoint's process {lab_cpu / len(times) * 1000:.2f} ms (its whole life)"
        )
        + (
            f"; polling {lines:,} lines alongside: {skipped} polls skipped meanwhile "
            f"({polling.skipped_rate * drain_s:.0f} at the warm-up's rate); the process's CPU "
            f"{cpu / drain_s:.2f} CPU-s/s while it drained, {polling.cpu_rate:.2f} polling alone"
            if polling
            else ""
        )
    )
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--rates", type=float, nargs="+", default=[200.0, 500.0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--polling-lines", type=int, default=0, help="poll this many lines in the same process meanwhile")
    parser.add_argument("--polling-warmup", type=float, default=90.0, help="seconds of polling before the outbox starts")
    parser.add_argument("--lab", choices=("process", "inline"), default="process", help="where lab/twilio.py runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for n, rate in enumerate(args.rates):
            asyncio.run(
                run(
                    args.count,
                    rate,
                    args.concurrency,
                    Path(folder) / f"bench-{n}.db",
                    args.polling_lines,
                    args.polling_warmup,
                    args.lab == "inline",
                )
            )


if __name__ == "__main__":
    main()
