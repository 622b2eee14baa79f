"""How fast the outbox drains one regional outage's SMS into a local Twilio, against its rate limit.

    .venv/bin/python bench/sms_outbox.py [--count 10000] [--rates 200 500] [--concurrency 16]

Queues `count` outage SMS in one engine step (one incident, distinct numbers), then lets the
outbox deliver them through the real twilio client to lab/twilio.py on 127.0.0.1. The achieved
rate is taken from the times the endpoint accepted the first and the last message.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from lab.twilio import TwilioLab
from monitord.model import Notification, Secret
from monitord.outbox import ChannelPolicy, Outbox
from monitord.store import Store
from notifiers.sms import TwilioSms


def outage_sms(count: int) -> list[tuple[Notification, None]]:
    tracking = "ARZ-2026-000777"
    body = f"Sayın abonemiz, bölgenizde altyapı arızası var. Takip no: {tracking}. Çalışma sürüyor."
    return [
        (Notification(f"{tracking}/sms/+90532{i:07d}/outage", "sms", f"+90532{i:07d}", "outage", "", body, tracking), None)
        for i in range(count)
    ]


async def run(count: int, rate: float, concurrency: int, state_file: Path) -> None:
    store = Store.open(state_file)
    started = time.perf_counter()
    queued = store.commit_step(None, [], outage_sms(count), time.time())
    queue_s = time.perf_counter() - started
    async with TwilioLab() as lab:
        notifier = TwilioSms(lab.account_sid, Secret(lab.auth_token, "bench"), "+908501234567", lab.base_url)
        outbox = Outbox(store, {"sms": notifier}, {"sms": ChannelPolicy(concurrency=concurrency, rate=rate)})
        started, cpu = time.perf_counter(), time.process_time()
        runner = asyncio.create_task(outbox.run())
        while store.depth():
            await asyncio.sleep(0.05)
        drain_s, cpu = time.perf_counter() - started, time.process_time() - cpu
        await outbox.stop(timeout=5)
        await runner
        times = sorted(m.at for m in lab.messages)
    achieved = (len(times) - 1) / (times[-1] - times[0])
    counts = outbox.counts["sms"]
    print(
        f"rate {rate:g}/s: {queued} queued in {queue_s * 1000:.0f} ms (one transaction); "
        f"{len(times)} accepted, sent={counts.sent} dead={counts.dead} segments={counts.segments}; "
        f"achieved {achieved:.1f}/s ({achieved / rate:.1%} of configured), drained in {drain_s:.1f} s, "
        f"CPU {cpu / len(times) * 1000:.2f} ms per SMS (outbox and endpoint in this one process)"
    )
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--rates", type=float, nargs="+", default=[200.0, 500.0])
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for n, rate in enumerate(args.rates):
            asyncio.run(run(args.count, rate, args.concurrency, Path(folder) / f"bench-{n}.db"))


if __name__ == "__main__":
    main()
