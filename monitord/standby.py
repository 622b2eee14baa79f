"""`monitord run` (role `all`) on a PostgreSQL state: one of several processes, of which one leads
(polls, steps the rules engine, writes incidents and notices) and the others stand by
(monitord/leader.py says how the lead is taken and fenced).

A standby polls nothing and decides nothing: a second engine would open every incident twice.
It delivers the outbox as a `--role notifier` worker does (its lease is its own, the channels'
rates are shared), answers /health, /ready (503) and /metrics saying it stands by, and forwards
every other API call to the leader (monitord/forward.py), since what it would answer (line
states, open incidents) lives in the leader's engine; once leading, it advertises where its own
API listens. When it takes the lead it stops delivering, builds the daemon as a restart
does (the engine restored from the store) and runs it; a leader that loses the lead stops its
daemon the same way and stands by again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitord import sdnotify
from monitord.channels import build_notifiers, channel_policies, deliver
from monitord.clock import AnchoredClock
from monitord.config import Config, ConfigError, load_config, log_rejected
from monitord.daemon import Daemon
from monitord.database import StoreError
from monitord.forward import ForwardCollector, Forwarder, advertised_url, forwarding_app, metrics_handler
from monitord.http_server import HttpServer
from monitord.leader import Leadership
from monitord.metrics import RoleCollector
from monitord.model import StateServer
from monitord.outbox import LEASE_TERM, Outbox
from monitord.settings import plan_settings
from monitord.signals import on_signals
from monitord.store import Store
from notices.holds import hold_notices

log = logging.getLogger("monitord")

UNREACHABLE_RETRY = 5.0  # seconds between tries to stand by again while the database cannot be reached
HANDOVER_GRACE = 2.0  # seconds a standby's sends in flight get when it takes the lead (the rest are reconciled)


class LeaderCollector(Collector):
    """`monitord_correlator_leader` (1 leading, 0 standing by) and the epoch it leads under."""

    def __init__(self, leadership: Leadership) -> None:
        self.leadership = leadership

    def collect(self) -> Iterator[Metric]:
        epoch = self.leadership.epoch
        leader = GaugeMetricFamily(
            "monitord_correlator_leader", "1 while this process leads (polls and decides), 0 while it stands by."
        )
        leader.add_metric([], 0 if epoch is None else 1)
        yield leader
        if epoch is not None:
            term = GaugeMetricFamily("monitord_correlator_epoch", "The epoch this process took the lead with.")
            term.add_metric([], epoch)
            yield term


def standby_app(registry: CollectorRegistry, forwarder: Forwarder | None = None) -> web.Application:
    """What a standby answers; its handlers read nothing but the registry (they run on the HTTP
    thread). The rest goes to the leader through `forwarder`, or is answered 503 without one
    (the `metrics.listen` listener, which serves no API)."""

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "role": "standby"})

    async def ready(_: web.Request) -> web.Response:
        return web.json_response({"ready": False, "role": "standby"}, status=503)

    async def elsewhere(_: web.Request) -> web.Response:
        return web.json_response(
            {"error": "standby: this process does not lead; the leader's API answers (monitord_correlator_leader 1)"}, status=503
        )

    local = {"/health": health, "/ready": ready, "/metrics": metrics_handler(registry)}
    if forwarder is not None:
        return forwarding_app(local, forwarder)
    app = web.Application()
    for path, handler in local.items():
        app.router.add_get(path, handler, allow_head=False)
    app.router.add_route("*", "/{tail:.*}", elsewhere)
    return app


class Member:
    """One `monitord run` among several on `config.state`: stands by and leads in turn until stopped."""

    def __init__(
        self, path: str, config: Config, server: StateServer, role: str = "all", make: Callable[..., Daemon] = Daemon
    ) -> None:
        """`make`: the daemon it runs while it leads (`--role correlator`'s polls nothing)."""
        self.path = path
        self.config = config
        self.role = role
        self.make = make
        self.server = server
        self.leadership = Leadership(server, f"{socket.gethostname()}/{os.getpid()}")
        self.daemon: Daemon | None = None
        self._outbox: Outbox | None = None  # a standby's

    async def run(self, stop: asyncio.Event) -> int:
        """0 once stopped, 1 when the state cannot be used."""
        try:
            Store.open(self.config.state).close()  # the schema brought up to date, the leader's row with it
            while not stop.is_set():
                try:
                    await self._take_turn(stop)
                except StoreError as error:  # the database out of reach since the start (restarting?)
                    self.leadership.step_down()
                    log.error("%s; standing by again in %.0f s", error, UNREACHABLE_RETRY)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(UNREACHABLE_RETRY):
                            await stop.wait()
        except (OSError, StoreError) as error:  # the state refused, the HTTP port taken, no ICMP socket
            log.error("cannot start: %s", error)
            return 1
        finally:
            self.leadership.close()
        return 0

    async def _take_turn(self, stop: asyncio.Event) -> None:
        """Lead at once if no one does, else stand by until this process leads or stops; then lead
        until it stops or loses the lead."""
        epoch = await self.leadership.try_once()
        if epoch is None:
            epoch = await self._stand_by(stop)
        if epoch is None:
            return
        why = await self._lead(epoch, stop)
        self.leadership.step_down()
        if why is not None:
            log.error("no longer the correlator leader: %s; stepping down", why)

    async def _stand_by(self, stop: asyncio.Event) -> int | None:
        """Deliver and answer as a standby until this process takes the lead (its epoch) or stops (None)."""
        config = self.config
        store = Store.open(config.state)
        settings, hold_probe = plan_settings(config), config.notifiers.hold_probe
        outbox = Outbox(
            store,
            build_notifiers(config),
            channel_policies(config),
            clock=AnchoredClock(),
            on_hold=lambda hold: hold_notices(hold, settings, hold_probe),
            lease_term=LEASE_TERM,
        )
        registry = CollectorRegistry()
        registry.register(LeaderCollector(self.leadership))
        registry.register(RoleCollector(self.role))
        forwarder = Forwarder(self.server, self.leadership.holder)
        registry.register(ForwardCollector(forwarder))
        listeners = [(standby_app(registry, forwarder), config.http.host, config.http.port)]
        if config.metrics.listen:
            listeners.append((standby_app(registry), *config.metrics.listen))
        server = HttpServer(listeners)
        self._outbox = outbox
        leaving = asyncio.Event()  # set as the outbox is stopped: `deliver` then ends
        try:
            ports = await server.start()
            log.info("standing by: another process leads; listening on http://%s:%d", config.http.host, ports[0])
            sdnotify.notify("READY=1", "STATUS=standing by: another process leads (polls and decides); delivering")
            runner = asyncio.create_task(deliver(outbox, leaving))
            try:
                return await self.leadership.acquire(stop)
            finally:
                leaving.set()
                await outbox.stop(timeout=HANDOVER_GRACE)
                await runner
        finally:
            self._outbox = None
            await server.stop()
            store.close()

    async def _lead(self, epoch: int, stop: asyncio.Event) -> str | None:
        """Run the daemon under `epoch` until stopped (None) or the lead is lost (why)."""
        log.info("the correlator leader now (epoch %d): restoring the engine from %s", epoch, self.config.state)
        registry = CollectorRegistry()
        registry.register(LeaderCollector(self.leadership))
        registry.register(RoleCollector(self.role))
        daemon = self.daemon = self.make(self.config, registry=registry, epoch=epoch)
        ended = asyncio.Event()
        watch = asyncio.create_task(self._until_deposed(daemon, stop, ended))
        announce = asyncio.create_task(self._advertise(daemon))
        try:
            await daemon.run(ended)
        finally:
            announce.cancel()
            ended.set()
            self.config, self.daemon = daemon.config, None
        return await watch

    async def _advertise(self, daemon: Daemon) -> None:
        """Once the daemon's API listens, name its address for the other nodes to forward to."""
        await daemon.ready.wait()
        http, port = daemon.config.http, daemon.http_port
        assert port is not None  # the daemon is ready: it listens
        url = advertised_url(daemon.config.cluster.advertise, http.host, port, await asyncio.to_thread(socket.getfqdn))
        if await self.leadership.advertise(url):
            log.info("advertised this leader's API to the other nodes at %s", url)

    async def _until_deposed(self, daemon: Daemon, stop: asyncio.Event, ended: asyncio.Event) -> str | None:
        """Set `ended` at `stop` or when the lead is lost; returns why it was lost, if it was."""
        waits: dict[asyncio.Task[object], Callable[[], str | None]] = {
            asyncio.create_task(stop.wait()): lambda: None,
            asyncio.create_task(ended.wait()): lambda: None,
            asyncio.create_task(daemon.pipeline.deposed.wait()): lambda: daemon.pipeline.deposed_by,
        }
        lost = asyncio.create_task(self.leadership.lost())
        waits[lost] = lost.result
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        ended.set()
        return _first_reason(waits[task] for task in done)

    async def reload(self) -> bool:
        """SIGHUP: the leading daemon reloads as always; a standby reads the config it will lead
        with, and delivers with its notifiers' new addresses and credentials at once."""
        if self.daemon is not None:
            reloaded = await self.daemon.reload(self.path)
            if reloaded:
                await self.leadership.reloaded()
            return reloaded
        try:
            self.config = await asyncio.to_thread(load_config, self.path)
        except ConfigError as error:
            log_rejected(error)
            return False
        if self._outbox is not None:
            self._outbox.replace_notifiers(build_notifiers(self.config))
        log.info("reloaded %s: the notifiers' addresses and credentials now, the rest once this process leads", self.path)
        return True


def _first_reason(reasons: Iterator[Callable[[], str | None]]) -> str | None:
    return next((why for why in (reason() for reason in reasons) if why), None)


async def run_member(path: str, config: Config, server: StateServer, role: str = "all") -> int:
    """`monitord run` on a PostgreSQL state: SIGTERM/SIGINT stop, SIGHUP reloads. `role`: all,
    or correlator (polling nothing: fed by the pollers, monitord/correlator_role.py)."""
    make: Callable[..., Daemon] = Daemon
    if role == "correlator":
        from monitord.correlator_role import Correlator

        make = Correlator
    member = Member(path, config, server, role, make)
    return await member.run(on_signals(member.reload))
