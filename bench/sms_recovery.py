"""How soon after a Twilio outage the last SMS of the backlog goes out.

    .venv/bin/python bench/sms_recovery.py [--count 1000] [--rate 100] [--outage 30]
        [--concurrency 4] [--probe-every 5] [--max-backoff 60] [--settle 5] [--down-after 3]

Queues `count` outage SMS in one engine step as lab/twilio.py starts answering HTTP 500 to every
request for `outage` seconds, and lets the outbox deliver them through the real twilio client
with the daemon's default policy for SMS (plus the given settings). Prints how many requests
Twilio saw during the outage, when the last SMS went out after recovery against the goal
(backlog / rate + 10 s), the outbox's two log lines, and that each SMS arrived exactly once.
`--down-after 1000000 --max-backoff 600` approximates the outbox before channels could be down:
every notice on its own backoff clock.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from collections import Counter
from pathlib import Path

from sms_outbox import outage_sms  # bench/ is on sys.path when this script runs

from lab.twilio import TwilioLab
from monitord.model import Secret
from monitord.outbox import ChannelPolicy, Outbox
from monitord.store import Store
from notifiers.sms import TwilioSms


async def run(args: argparse.Namespace, state_file: Path) -> None:
    store = Store.open(state_file)
    policy = ChannelPolicy(
        concurrency=args.concurrency,
        rate=args.rate,
        max_backoff=args.max_backoff,
        settle=args.settle,
        outage_probe=args.probe_every,
        down_after=args.down_after,
    )
    async with TwilioLab() as lab:
        notifier = TwilioSms(lab.account_sid, Secret(lab.auth_token, "bench"), "+908501234567", lab.base_url)
        outbox = Outbox(store, {"sms": notifier}, {"sms": policy})
        recovered = lab.fail_for(args.outage)
        store.commit_step(None, [], outage_sms(args.count), time.time())
        runner = asyncio.create_task(outbox.run())
        await asyncio.sleep(recovered - time.time())
        during = dict(lab.requests)
        while store.depth():
            await asyncio.sleep(0.05)
        await outbox.stop(timeout=5)
        await runner
        times = sorted(m.at for m in lab.messages)
        once = Counter(m.to for m in lab.messages) == Counter(n.recipient for n, _ in outage_sms(args.count))
    last = times[-1] - recovered
    goal = args.count / args.rate + 10.0
    counts = outbox.counts["sms"]
    print(
        f"{args.count} SMS at {args.rate:g}/s, Twilio answering 500 for {args.outage:g} s: "
        f"{during['POST']} POST + {during['GET']} GET during the outage; "
        f"first SMS {times[0] - recovered:.1f} s and last {last:.1f} s after recovery "
        f"(goal {goal:.0f} s: {'met' if last <= goal else 'MISSED'}); "
        f"sent={counts.sent} failed={counts.failed} dead={counts.dead} adopted={counts.adopted}; "
        f"each SMS exactly once: {once}"
    )
    store.close()


def main() -> None:
    defaults = ChannelPolicy()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--outage", type=float, default=30.0, help="seconds of HTTP 500")
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency)
    parser.add_argument("--probe-every", type=float, default=defaults.outage_probe)
    parser.add_argument("--max-backoff", type=float, default=defaults.max_backoff)
    parser.add_argument("--settle", type=float, default=defaults.settle)
    parser.add_argument("--down-after", type=int, default=defaults.down_after)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(run(args, Path(folder) / "bench.db"))


if __name__ == "__main__":
    main()
