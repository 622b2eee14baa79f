"""Drains a state file's SMS outbox into a Twilio endpoint; the crash test SIGKILLs it at will.

    outbox_crash_child.py STATE_FILE BASE_URL ACCOUNT_SID  (auth token in $TWILIO_AUTH_TOKEN)

Prints "ready <items left sending by the previous run>" once the store is open, exits 0 when
nothing is left to deliver.
"""

from __future__ import annotations

import asyncio
import os
import sys

from monitord.model import Secret
from monitord.outbox import ChannelPolicy, Outbox
from monitord.store import Store
from notifiers.sms import TwilioSms

POLICY = ChannelPolicy(concurrency=8, rate=200, base_backoff=0.05, max_backoff=0.5, settle=0.1)


async def main(state_file: str, base_url: str, account_sid: str) -> None:
    store = Store.open(state_file)
    print("ready", store.counts().get(("sms", "sending"), 0), flush=True)
    token = Secret(os.environ["TWILIO_AUTH_TOKEN"], "env:TWILIO_AUTH_TOKEN")
    notifier = TwilioSms(account_sid, token, "+908501234567", base_url, timeout=2.0)
    outbox = Outbox(store, {"sms": notifier}, {"sms": POLICY})
    runner = asyncio.create_task(outbox.run())
    while store.depth():
        await asyncio.sleep(0.02)
    await outbox.stop(timeout=2.0)
    await runner
    store.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
