"""One of several notifier workers draining a PostgreSQL outbox into a Twilio endpoint; the
workers test (tests/test_notifier_workers.py) SIGKILLs it at will, bench/notifier_workers.py
times it.

    notifier_worker_child.py STATE_URL BASE_URL ACCOUNT_SID RATE [IN_FLIGHT]  (auth token in $TWILIO_AUTH_TOKEN)

Prints "ready <its CPU seconds so far>" once it runs, and when nothing is left to deliver stops and prints
"done <SMS it sent> <its CPU seconds>". RATE is the channel's rate, shared by all the workers;
IN_FLIGHT its sends in flight (8).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from monitord.channels import deliver
from monitord.model import Secret, StateServer
from monitord.outbox import ChannelPolicy, Outbox
from monitord.store import Store
from notifiers.sms import TwilioSms

LEASE_TERM = 1.0  # a killed worker's items go to the others within about this long


async def main(url: str, base_url: str, account_sid: str, rate: float, in_flight: int) -> None:
    store = Store.open(StateServer(url))
    token = Secret(os.environ["TWILIO_AUTH_TOKEN"], "env:TWILIO_AUTH_TOKEN")
    notifier = TwilioSms(account_sid, token, "+908501234567", base_url, timeout=2.0)
    policy = ChannelPolicy(concurrency=in_flight, rate=rate, base_backoff=0.05, max_backoff=0.5, settle=0.1)
    outbox = Outbox(store, {"sms": notifier}, {"sms": policy}, lease_term=LEASE_TERM)
    stop = asyncio.Event()
    runner = asyncio.create_task(deliver(outbox, stop))
    print("ready", time.process_time(), flush=True)
    while store.depth() and not runner.done():
        await asyncio.sleep(0.05)
    stop.set()
    await outbox.stop(timeout=2.0)
    await runner
    print("done", outbox.counts["sms"].sent, time.process_time(), flush=True)
    store.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4], float(sys.argv[4]), int(sys.argv[5]) if len(sys.argv) > 5 else 8))
