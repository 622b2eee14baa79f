"""`monitord run --role notifier`: the outbox alone, one of several workers on one PostgreSQL
state (issue 15). Run as many as the gateways' rates need beside the process that polls and
judges (`--role all`, itself a worker there): each claims due items with FOR UPDATE SKIP LOCKED,
the channels' rates are shared buckets in the database, and a worker that dies leaves its
`sending` items to the others once its lease expires (docs/delivery.md, "Several workers").

No HTTP API or /metrics of its own: the `--role all` process reports the outbox's backlog
(read from the database), not this worker's counters. SIGTERM/SIGINT stop it; sends in flight
get 10 s, and what it leaves `sending` goes back to the others at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from monitord.clock import AnchoredClock
from monitord.config import Config
from monitord.daemon import build_notifiers, channel_policies, deliver
from monitord.outbox import LEASE_TERM, Outbox
from monitord.pipeline import plan_settings
from monitord.store import Store, StoreError
from notices.holds import hold_notices

log = logging.getLogger("monitord")


async def run_notifier(config: Config) -> int:
    """Deliver the outbox of `config.state` (PostgreSQL: the command line refuses a state_file)
    until SIGTERM or SIGINT; 0 once stopped, 1 when it cannot start."""
    try:
        store = Store.open(config.state)
    except StoreError as error:
        log.error("cannot start: %s", error)
        return 1
    try:
        settings, hold_probe = plan_settings(config), config.notifiers.hold_probe
        outbox = Outbox(
            store,
            build_notifiers(config),
            channel_policies(config),
            clock=AnchoredClock(),
            on_hold=lambda hold: hold_notices(hold, settings, hold_probe),
            lease_term=LEASE_TERM,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        log.info("notifier worker delivering %s from %s", ", ".join(sorted(channel_policies(config))) or "nothing", config.state)
        runner = asyncio.create_task(deliver(outbox, stop))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({runner, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        await outbox.stop(timeout=10.0)
        await runner
    finally:
        store.close()
    log.info("notifier worker stopped")
    return 0
