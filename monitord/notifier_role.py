"""`monitord run --role notifier`: the outbox alone, one of several workers on one PostgreSQL
state (issue 15). Run as many as the gateways' rates need beside the process that polls and
judges (`--role all`, itself a worker there): each claims due items with FOR UPDATE SKIP LOCKED,
the channels' rates are shared buckets in the database, and a worker that dies leaves its
`sending` items to the others once its lease expires (docs/delivery.md, "Several workers").

No listener by default (a worker often shares its machine with another role, which holds
`http.port`): the leader reports the outbox's backlog (read from the database), and this
worker's own counts show in its STATUS= line (`systemctl status monitord@notifier`). With
`cluster.notifier_listen` it answers /health, /ready and /metrics (`monitord_role`) there and
forwards the NOC API to the correlator leader, as every node does (monitord/forward.py). It speaks sd_notify as the daemon does (READY once
it holds its lease, WATCHDOG from its loop, STOPPING), SIGHUP reloads the notifiers' addresses
and credentials, SIGTERM/SIGINT stop it: sends in flight get 10 s, and what it leaves `sending`
goes back to the others at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Mapping, Sequence

from aiohttp import web
from prometheus_client import CollectorRegistry

from monitord import sdnotify
from monitord.channels import build_notifiers, channel_policies, deliver
from monitord.clock import AnchoredClock
from monitord.config import Config, ConfigError, load_config, log_rejected
from monitord.daemon import needs_restart
from monitord.database import StoreError
from monitord.forward import ForwardCollector, Forwarder, forwarding_app, metrics_handler
from monitord.http_server import HttpServer
from monitord.metrics import RoleCollector
from monitord.model import ChannelHold
from monitord.outbox import LEASE_TERM, DeliveryCounts, Outbox
from monitord.settings import plan_settings
from monitord.signals import on_signals
from monitord.store import Store
from notices.holds import hold_notices
from notices.plan import Planned

log = logging.getLogger("monitord")

TICK = 0.5  # how often READY is looked for, STATUS refreshed and WATCHDOG considered
STOP_GRACE = 10.0  # seconds the sends in flight get after SIGTERM
# What of `needs_restart` concerns a worker that only delivers: not polling, HTTP or traps.
RESTART_PARTS = frozenset({"state_file / state", "notifier channels, SMS rate, hold_probe and retry"})


def status_line(counts: Mapping[str, DeliveryCounts], held: Sequence[str]) -> str:
    """The STATUS= systemctl shows: the channels this worker delivers, what it did with them."""
    if not counts:
        return "STATUS=delivering nothing: no notifier configured"
    channels = ", ".join(sorted(counts))
    sent, failed, dead = (sum(getattr(c, field) for c in counts.values()) for field in ("sent", "failed", "dead"))
    line = f"STATUS=delivering {channels}: {sent} sent, {failed} failed attempts, {dead} dead letters"
    return line + (f"; held: {', '.join(sorted(held))}" if held else "")


class NotifierWorker:
    """One outbox worker and what systemd hears of it; `config` is the one in force (SIGHUP)."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self._settings = plan_settings(config)  # the NOC's hold notices are built from the config in force
        hold_probe = config.notifiers.hold_probe  # as in the daemon: a restart applies it
        self.outbox = Outbox(
            store,
            build_notifiers(config),
            channel_policies(config),
            clock=AnchoredClock(),
            on_hold=lambda hold: self._hold_notices(hold, hold_probe),
            lease_term=LEASE_TERM,
        )
        self.ready = False  # READY=1 sent (the outbox held its lease) and not stopping
        self._reloading = asyncio.Lock()  # one reload at a time, in the order the signals came

    def _hold_notices(self, hold: ChannelHold, hold_probe: float) -> list[Planned]:
        return hold_notices(hold, self._settings, hold_probe)

    def status(self) -> str:
        return status_line(self.outbox.counts, list(self.outbox.holds))

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop`, telling systemd how it goes."""
        log.info("notifier worker delivering %s from %s", ", ".join(sorted(self.outbox.counts)) or "nothing", self.config.state)
        runner = asyncio.create_task(deliver(self.outbox, stop))
        reporter = asyncio.create_task(self._report())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({runner, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        self.ready = False  # a reload finishing meanwhile must not say READY again
        sdnotify.notify("STOPPING=1", f"STATUS=stopping: sends in flight get {STOP_GRACE:.0f} s")
        reporter.cancel()
        await self.outbox.stop(timeout=STOP_GRACE)
        await runner

    async def _report(self) -> None:
        """READY=1 once the outbox holds its lease (a database that is down delays it, and
        systemd's start timeout then restarts the worker), STATUS= when it changes, and
        WATCHDOG=1 every WatchdogSec/2: from a task of the loop, so a hung loop stops the pings."""
        watchdog = sdnotify.watchdog_interval()
        tick = min(TICK, watchdog or TICK)
        last_ping, last_status = 0.0, ""
        while True:
            fields = []
            if not self.ready and self.store.worker is not None:
                self.ready = True
                fields.append("READY=1")
            if watchdog and time.monotonic() - last_ping >= watchdog:
                fields.append("WATCHDOG=1")
                last_ping = time.monotonic()
            if self.ready and (status := self.status()) != last_status:
                fields.append(status)
                last_status = status
            if fields:
                sdnotify.notify(*fields)
            await asyncio.sleep(tick)

    async def reload(self) -> bool:
        """SIGHUP: the config file again, for new notifier addresses and credentials (read and
        checked in a worker thread). An invalid one is logged problem by problem and the
        running one stays in force; the worker never exits on a reload."""
        async with self._reloading:
            if self.ready:
                sdnotify.reloading()
            try:
                return await self._reload()
            finally:
                if self.ready:
                    sdnotify.notify("READY=1", self.status())

    async def _reload(self) -> bool:
        path = self.config.source
        try:
            config = await asyncio.to_thread(load_config, path)
        except ConfigError as error:
            log_rejected(error)
            return False
        old, self.config = self.config, config
        self._settings = plan_settings(config)
        self.outbox.replace_notifiers(build_notifiers(config))  # also probes a held channel: the fix may be in
        if later := [part for part in needs_restart(old, config) if part in RESTART_PARTS]:
            log.warning("reloaded, but changes to %s take effect at the next restart", ", ".join(later))
        log.info("reloaded %s: notifier addresses and credentials", path)
        return True


def notifier_app(worker: NotifierWorker, registry: CollectorRegistry, forwarder: Forwarder) -> web.Application:
    """/health, /ready (200 once the worker holds its lease) and /metrics here, the API forwarded."""

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "role": "notifier", "name": forwarder.node})

    async def ready(_: web.Request) -> web.Response:
        return web.json_response({"ready": worker.ready, "role": "notifier"}, status=200 if worker.ready else 503)

    return forwarding_app({"/health": health, "/ready": ready, "/metrics": metrics_handler(registry)}, forwarder)


async def serving(worker: NotifierWorker, opened: contextlib.AsyncExitStack) -> None:
    """`cluster.notifier_listen`'s listener, stopped with `opened`; none without the setting."""
    config = worker.config
    if config.cluster.notifier_listen is None or config.state_server is None:
        return
    registry = CollectorRegistry()
    registry.register(RoleCollector("notifier"))
    forwarder = Forwarder(config.state_server, f"{socket.gethostname()}/{os.getpid()}")
    registry.register(ForwardCollector(forwarder))
    server = HttpServer([(notifier_app(worker, registry, forwarder), *config.cluster.notifier_listen)])
    port = (await server.start())[0]
    opened.push_async_callback(server.stop)
    log.info("notifier worker %s: listening on http://%s:%d", forwarder.node, config.cluster.notifier_listen[0], port)


async def run_notifier(config: Config) -> int:
    """Deliver the outbox of `config.state` (PostgreSQL: the command line refuses a state_file)
    until SIGTERM or SIGINT, reloading on SIGHUP; 0 once stopped, 1 when it cannot start."""
    try:
        store = Store.open(config.state)
    except StoreError as error:
        log.error("cannot start: %s", error)
        return 1
    try:
        async with contextlib.AsyncExitStack() as opened:
            worker = NotifierWorker(config, store)
            try:
                await serving(worker, opened)
            except OSError as error:  # the listener's port taken
                log.error("cannot start: %s", error)
                return 1
            await worker.run(on_signals(worker.reload))
    finally:
        store.close()
    log.info("notifier worker stopped")
    return 0
