"""SIGKILL the delivering process again and again: no SMS lost, none sent twice."""

from __future__ import annotations

import asyncio
import os
import random
import sys
from collections import Counter
from pathlib import Path

from lab.twilio import TwilioLab
from monitord.store import Store
from tests.outbox_fixtures import queue, sms, twilio  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent
CHILD = Path(__file__).with_name("outbox_crash_child.py")


async def test_sigkill_at_random_moments_loses_and_duplicates_nothing(tmp_path: Path, twilio: TwilioLab) -> None:
    state_file = tmp_path / "state.db"
    store = Store.open(state_file)
    items = [sms(i) for i in range(1000)]
    assert queue(store, items) == 1000
    store.close()
    twilio.delay = 0.02  # accepted first, answered later: a kill often lands in between
    env = {
        **os.environ,
        "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    rng = random.Random(20260101)
    kills = interrupted = 0
    async with asyncio.timeout(100):
        while True:
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                str(CHILD),
                str(state_file),
                twilio.base_url,
                twilio.account_sid,
                stdout=asyncio.subprocess.PIPE,
                env=env,
            )
            ready = (await child.stdout.readline()).split()
            interrupted += int(ready[1])
            if kills < 12:
                await asyncio.sleep(rng.uniform(0.02, 0.4))
                if child.returncode is None:
                    child.kill()
                    kills += 1
            if await child.wait() == 0:
                break
            assert child.returncode == -9

    assert kills == 12 and interrupted > 0
    assert Counter(m.body for m in twilio.messages) == Counter(n.body for n in items)  # exactly once each
    store = Store.open(state_file)
    assert store.counts() == {("sms", "sent"): 1000}
    assert sorted(i.peer_ref for i in store.items()) == sorted(m.sid for m in twilio.messages)
    store.close()
