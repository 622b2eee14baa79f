"""The daemon: config, probes, rules, store, outbox and HTTP wired under one TaskGroup.

`Daemon` builds the parts, starts, stops and reloads them and runs their tasks; the work is
theirs: `Pipeline` (monitord/pipeline.py) is the one writer of each engine step to the store
and the outbox, `PollingJobs` (monitord/polling.py) builds the polling jobs and counts what they
cost. HTTP, metrics and the live diagnosis read it through `View` (monitord/view.py), which it
implements, and never import it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from monitord import model, sdnotify, workflow
from monitord.channels import build_notifiers, channel_policies, deliver
from monitord.clock import AnchoredClock
from monitord.config import Config, ConfigError, load_config, log_rejected
from monitord.database import StoreError
from monitord.diagnose import Clients
from monitord.exposition import Exposition
from monitord.gcfreeze import Freezer, thresholds
from monitord.heap import Trimmer
from monitord.history import History
from monitord.incident_actions import Refusal
from monitord.looplag import LoopLag
from monitord.model import Incident, IncidentEvent, LineState, MaintenanceWindow, NodeRef, Sample, Silence, StateServer
from monitord.outbox import LEASE_TERM, Delivery, Outbox
from monitord.pipeline import (
    Pipeline,
    Unwritten,
    building_in_a_thread,
    resume,
)
from monitord.polling import PollingJobs, snmp_client
from monitord.restart import needs_restart
from monitord.rtsync import stage_sync_for
from monitord.signals import on_signals
from monitord.sms_inbound import InboundSms, SmsDesk
from monitord.stages import Stage, StageChange
from monitord.store import Store, StoredWindow
from monitord.view import PollFigures
from notices.holds import hold_notices
from notices.plan import Planned, PlanSettings, stage_notices
from probes.icmp import Pinger
from probes.profiles import Profile
from probes.scheduler import Job, Scheduler
from rules.config import RulesConfig
from rules.nodes import Reshape
from rules.tally import STATUSES, LineCounts

if TYPE_CHECKING:
    from probes.traps import TrapReceiver

log = logging.getLogger("monitord")

TICK = 1.0  # how often time-driven rules (durations, settle, stable periods) are evaluated
PRUNE_EVERY = 600.0  # how often history older than `retention` is pruned
PRUNE_BATCH = 500  # rows per transaction: each a few milliseconds, with polls running in between
SWITCH_INTERVAL = 0.001  # the longest another thread (HTTP, the store's writer) keeps the interpreter from the loop


class Daemon:
    """Builds the parts and runs them: it alone opens and closes the store, the clients and the
    listeners, sets which config is in force (handing it to the parts on reload) and prunes the
    store's old history. What the rules decide is the pipeline's to write (`daemon.pipeline`),
    what polling costs the polling jobs' to count (`daemon.probes`); the outbox delivers."""

    def __init__(
        self,
        config: Config,
        *,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] | None = None,
        epoch: int | None = None,
    ):
        """`epoch`: the correlator epoch this process took the lead with, among several on one
        PostgreSQL state (monitord/leader.py); its steps are written only while it holds."""
        self.config = config
        self.clock = clock or AnchoredClock()
        self.registry = registry or CollectorRegistry()
        self.store = Store.open(config.state)
        try:
            if epoch is not None:
                self.store.lead(epoch)
            engine = resume(config, self.store)
        except StoreError:
            self.store.close()
            raise
        hold_probe = config.notifiers.hold_probe
        self.outbox = Outbox(
            self.store,
            build_notifiers(config),
            channel_policies(config),
            clock=self.clock,
            on_hold=lambda hold: hold_notices(hold, self.pipeline.settings, hold_probe),
            lease_term=LEASE_TERM if isinstance(config.state, StateServer) else None,  # beside `--role notifier` workers
        )
        self.pipeline = Pipeline(config, engine, self.store, self.outbox, clock=self.clock, recheck=self._recheck)
        self.probes = PollingJobs(self.clock)
        # lengths, read without the engine's lock (monitord/rules_thread.py)
        self.freezer = Freezer(lambda: self.pipeline.engine.targets_known() + self.probes.rates.columns_known())
        self.trimmer = Trimmer()
        self.started = self.clock()
        self.ready = asyncio.Event()
        self.scheduler: Scheduler | None = None
        self.traps: TrapReceiver | None = None
        self.traps_port: int | None = None
        self.http_port: int | None = None
        self.metrics_port: int | None = None
        self.tracking_port: int | None = None
        self.loop: asyncio.AbstractEventLoop | None = None  # where the state lives; HTTP handlers hop here
        self.exposition = Exposition(self.registry)
        self.history = History(self.store.reader)
        self.line_history = self.pipeline.lines  # line quality over time (monitord/line_history.py)
        self.lag = LoopLag()
        self._reloading = asyncio.Lock()  # one reload at a time, in the order the signals came
        self.stage_sync = stage_sync_for(  # the helpdesk's stages read back from RT, told to the customers
            config, self.store, self.clock, self._stage_notices, self.outbox.wake
        )
        self.sms_desk = SmsDesk(self)  # inbound SMS (monitord/sms_inbound.py)

    # --- lifecycle ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Poll, judge, notify and serve until `stop` is set; the store is closed on return.

        A start that fails (no ICMP socket, the HTTP port taken) raises OSError, after closing
        what it had opened.
        """
        from monitord.console import add_console
        from monitord.http import make_app, make_metrics_app
        from monitord.http_server import HttpServer
        from monitord.metrics import register
        from monitord.track_http import make_tracking_app

        config = self.config
        async with contextlib.AsyncExitStack() as opened:
            opened.callback(self.store.close)
            opened.callback(self.history.close)
            await self.pipeline.start()
            self.freezer.freeze()  # the inventory and the engine's state live for the whole run: spare the GC from rescanning them
            snmp = self.probes.snmp = snmp_client(config.snmp)
            opened.callback(snmp.close)
            pinger = self.probes.pinger = await Pinger.open()
            opened.push_async_callback(pinger.close)
            polling = config.polling
            self.scheduler = Scheduler(
                self.probes.jobs(config),
                self._sink,
                max_in_flight=polling.max_in_flight,
                per_device_in_flight=polling.per_device_in_flight,
                jitter=polling.jitter,
                job_timeout=config.job_timeout,
            )
            if config.traps is not None:
                from probes.traps import Limits, TrapReceiver, senders  # pysnmp only where traps are received

                t = config.traps
                self.traps = TrapReceiver(
                    senders(config.topology, config.profiles),
                    Limits(t.sender_rate, t.sender_burst, t.rate, t.burst),
                    self._recheck,  # a correlator's go to the pollers
                )
                opened.callback(self.traps.close)
                self.traps_port = await self.traps.open(t.host, t.port)
                log.info("receiving SNMP traps and informs on %s:%d", t.host, self.traps_port)
            register(self.registry, self)
            self.loop = asyncio.get_running_loop()
            api = make_app(self, Clients(snmp, pinger))
            if config.console is not None:
                add_console(api, config.console)
            listeners = [(api, config.http.host, config.http.port)]
            if config.metrics.listen:
                listeners.append((make_metrics_app(self), *config.metrics.listen))
            if config.tracking:
                listeners.append((make_tracking_app(self, config.tracking), config.tracking.host, config.tracking.port))
            opened.callback(sys.setswitchinterval, sys.getswitchinterval())
            sys.setswitchinterval(SWITCH_INTERVAL)
            opened.enter_context(thresholds())
            server = HttpServer(listeners)
            ports = await server.start()
            opened.push_async_callback(server.stop)
            self.http_port = ports[0]
            log.info("listening on http://%s:%d (metrics at /metrics)", config.http.host, self.http_port)
            if config.metrics.listen:
                self.metrics_port = ports[1]
                log.info("metrics also on http://%s:%d/metrics", config.metrics.listen[0], self.metrics_port)
            if config.tracking:
                self.tracking_port = ports[-1]
                log.info("tracking page on http://%s:%d/track/", config.tracking.host, self.tracking_port)
            if self.stage_sync is not None:
                opened.push_async_callback(self.stage_sync.close)
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.scheduler.run_forever())
                stages = tasks.create_task(self.stage_sync.run()) if self.stage_sync else None
                outbox_task = tasks.create_task(self._deliver(stop))
                ticker = tasks.create_task(self._ticker())
                pruner = tasks.create_task(self._pruner())
                lag = tasks.create_task(self.lag.run())
                self.ready.set()
                sdnotify.notify("READY=1", self._status())
                await stop.wait()
                sdnotify.notify("STOPPING=1", "STATUS=stopping")
                log.info("stopping: polling ends, deliveries in flight finish or stay queued")
                self.scheduler.stop()
                ticker.cancel()
                pruner.cancel()
                lag.cancel()
                stages and stages.cancel()
                await self.outbox.stop(timeout=10.0)
                await outbox_task
                await self.pipeline.stop()
            try:  # stopping because the database went away (a leader's lock session broke): no count
                queued = f"{self.store.depth()} notifications stay"
            except self.store.errors:
                queued = "what the database holds stays"
            log.info("stopped; %s queued for the next start", queued)

    async def _deliver(self, stop: asyncio.Event) -> None:
        await deliver(self.outbox, stop)

    async def _ticker(self) -> None:
        watchdog = sdnotify.watchdog_interval()
        last_ping, last_status = 0.0, ""
        while True:
            await self.pipeline.tick()
            self.freezer.freeze_if_grown()  # new targets and rate columns, made after the start
            await self.trimmer.trim_if_due()
            fields = []
            if watchdog and time.monotonic() - last_ping >= watchdog:
                fields.append("WATCHDOG=1")
                last_ping = time.monotonic()
            if (status := self._status()) != last_status:
                fields.append(status)
                last_status = status
            if fields:
                sdnotify.notify(*fields)
            await asyncio.sleep(TICK)

    async def _pruner(self) -> None:
        while True:
            await asyncio.sleep(PRUNE_EVERY)
            try:
                await self.prune_history()
            except self.store.errors as error:
                log.warning("pruning old history failed, tried again in %.0f s: %s", PRUNE_EVERY, error)

    async def prune_history(self) -> int:
        """History older than `retention`, PRUNE_BATCH rows per transaction with polls in between."""
        retention, now = self.config.retention, self.clock()
        cutoffs = (now - retention.sent, now - retention.dead, now - retention.resolved_incidents)
        removed = 0
        while True:
            async with self.store.turn:  # see monitord/stepwriter.py
                removed += (batch := self.store.prune(*cutoffs, batch=PRUNE_BATCH))
            if batch < PRUNE_BATCH:
                break
            await asyncio.sleep(0.05)
        if removed:
            log.info("pruned %d rows of history older than the retention", removed)
        return removed

    def _status(self) -> str:
        """The one line `systemctl status` shows (every tick: a count, not the incidents' lines)."""
        topology = self.config.topology
        incidents = self.pipeline.engine.open_count()  # a length: no need of the engine's lock
        return f"STATUS=polling {len(topology.devices)} devices, {len(topology.lines)} lines; {incidents} open incidents"

    async def reload(self, path: str | Path) -> bool:
        """SIGHUP: a new config and inventory; incidents, line states and queued messages are kept.

        The files are read, parsed and checked in a worker thread (a 100,000-line inventory
        takes seconds), so the loop goes on polling meanwhile; the new config is swapped in on
        the loop. An invalid config is logged problem by problem and the running one stays in
        force. Lines gone from the inventory leave their incidents, which close
        ("closed_removed") if emptied.
        """
        async with self._reloading:
            return await self._reload(path)

    def _prepare(self, path: str | Path) -> tuple[Config, Reshape, list[Job] | None]:
        """In the worker thread: the new config, what its inventory changes for the rules
        engine (the indexes of 100,000 lines and their comparison take seconds) and the polling
        jobs (a third of a second), so that the swap on the loop handles only what changed."""
        with building_in_a_thread():
            config = load_config(path)
            return config, self.pipeline.engine.reshape(config.topology), self.probes.jobs(config) if self.scheduler else None

    async def _reload(self, path: str | Path) -> bool:
        sdnotify.reloading()
        try:
            try:
                config, reshape, jobs = await asyncio.to_thread(self._prepare, path)
            except ConfigError as error:
                log_rejected(error)
                return False
            old = self.config
            self.config = config
            if config.notifiers != old.notifiers:
                self.outbox.replace_notifiers(build_notifiers(config))
            else:
                self.outbox.probe_held()  # the fix may be at the peer's end
            await self.pipeline.reload(config, reshape)
            if self.stage_sync is not None:
                self.stage_sync.table = config.stages
            self.probes.forget(old.topology.devices.keys() - config.topology.devices.keys())
            if self.scheduler and jobs is not None:
                self.scheduler.replace_jobs(jobs)
            if self.traps:
                from probes.traps import senders

                self.traps.replace_senders(senders(config.topology, config.profiles))
            if later := needs_restart(old, config):
                log.warning("reloaded, but changes to %s take effect at the next restart", ", ".join(later))
            log.info("reloaded %s: %d devices, %d lines", path, len(config.topology.devices), len(config.topology.lines))
            return True
        finally:
            sdnotify.notify("READY=1", self._status())

    async def _sink(self, samples: list[Sample]) -> None:
        await self.pipeline.ingest(samples)

    def _recheck(self, device: str) -> None:
        """A step wants a second look at a device: polled now, while polling runs."""
        if self.scheduler:
            self.scheduler.poll_now(device)

    # --- the View (monitord/view.py) for HTTP, metrics and diagnose --------------------------

    @property
    def rules(self) -> RulesConfig:
        return self.config.rules

    @property
    def profiles(self) -> Mapping[str, Profile]:
        return self.config.profiles

    @property
    def unwritten(self) -> Unwritten | None:
        return self.pipeline.unwritten

    @property
    def store_errors(self) -> tuple[type[Exception], ...]:
        return self.store.errors

    @property
    def write_failures(self) -> int:
        return self.pipeline.write_failures

    # The engine's state, read between the steps the rules' thread makes (monitord/rules_thread.py)

    async def between_steps(self) -> None:
        await self.pipeline.rules_thread.between_steps()

    def open_incidents(self) -> list[Incident]:
        with self.pipeline.rules_thread.lock:
            return self.pipeline.engine.incidents()

    def incident(self, tracking: str) -> Incident | None:
        """As the engine last decided it (what the board shows, maybe not yet written), else as stored."""
        with self.pipeline.rules_thread.lock:
            found = self.pipeline.engine.incident(tracking)
        return found or self.store.incident(tracking)

    async def set_stage(self, incident: Incident, stage: Stage, actor: str, line: str | None = None) -> bool:
        return await workflow.set_stage(self.pipeline, incident, stage, actor, line)

    def touched(self, tracking: str, line: str) -> bool:
        return self.store.touched(tracking, line)

    def _stage_notices(self, incident: Incident, stage: Stage, now: float, line: str | None = None) -> list[Planned]:
        return stage_notices(incident, stage, self.config.topology, self.pipeline.settings, now, line)

    def helpdesk_stage(self, tracking: str, line: str | None = None) -> str | None:
        return self.store.helpdesk_stage(tracking) if line is None else self.store.followup_stage(tracking, line)

    # Inbound SMS (monitord/sms_inbound.py `Desk`, `Inbound`)

    async def inbound_sms(self, message: InboundSms) -> bool:
        return await self.sms_desk.take(message)

    def sms_token(self) -> str | None:
        sms = self.config.notifiers.sms
        return sms.auth_token.reveal() if sms and sms.auth_token else None

    def plan_settings(self) -> PlanSettings:
        return self.pipeline.settings

    def set_sms_opted_out(self, phones: frozenset[str]) -> None:
        self.pipeline.settings = replace(self.pipeline.settings, sms_opted_out=phones)

    def wake_outbox(self) -> None:
        self.outbox.wake()

    def now(self) -> float:
        return self.clock()

    def answer_tally(self) -> Mapping[tuple[str, str], int]:
        return self.sms_desk.tally

    def stage_history(self, tracking: str) -> list[StageChange]:
        return self.store.stage_history(tracking)

    def incident_history(self) -> list[Incident]:
        return self.store.incidents(open_only=False)

    def line_state(self, line_id: str) -> LineState:
        with self.pipeline.rules_thread.lock:
            return self.pipeline.engine.line_state(line_id)

    def node_state(self, node: NodeRef) -> LineState:
        with self.pipeline.rules_thread.lock:
            return self.pipeline.engine.node_state(node)

    def maintenance(self) -> list[StoredWindow]:
        return self.store.maintenance()

    def incident_events(self, tracking: str) -> list[IncidentEvent]:
        return self.store.incident_events(tracking)

    async def record(self, event: IncidentEvent) -> Refusal | None:
        return await workflow.record(self.pipeline, event)

    async def audit(self, entry: model.AuditEntry) -> None:
        async with self.store.turn:
            self.store.add_audit(entry)

    def silences(self) -> list[Silence]:
        return self.store.silences()

    @property
    def suppressed(self) -> Counter[str]:
        return self.pipeline.silencing.suppressed

    def polling(self) -> PollFigures:
        return self.probes.figures(self.scheduler, self.traps)

    def delivery(self) -> Delivery:
        return self.outbox.delivery()

    # Controls: the API's changes, made by the pipeline, their one writer

    async def add_maintenance(self, window: MaintenanceWindow) -> None:
        await self.pipeline.add_maintenance(window)

    async def cancel_maintenance(self, window_id: str) -> bool:
        return await self.pipeline.cancel_maintenance(window_id)

    async def add_silence(self, silence: Silence) -> None:
        await self.pipeline.add_silence(silence)

    async def expire_silence(self, silence_id: str, by: str) -> bool:
        return await self.pipeline.expire_silence(silence_id, by)

    async def durable(self) -> None:
        await self.store.durable()

    def line_counts(self) -> dict[str, LineCounts]:
        with self.pipeline.rules_thread.lock:
            return self.pipeline.engine.line_counts()

    def status_counts(self) -> Counter[tuple[str, str, str, str]]:
        """(region, exchange, device, status) -> number of lines; per device, not per line."""
        topology = self.config.topology
        counts: Counter[tuple[str, str, str, str]] = Counter()
        for device_id, by_status in self.line_counts().items():
            device = topology.devices[device_id]
            region = topology.exchanges[device.exchange].region
            for status, n in zip(STATUSES, by_status, strict=True):
                if n:
                    counts[(region, device.exchange, device_id, status.value)] += n
        return counts


async def run_daemon(path: str, config: Config) -> int:
    """`monitord run`: SIGTERM/SIGINT stop, SIGHUP reloads."""
    try:
        daemon = Daemon(config)
    except StoreError as error:
        log.error("cannot start: %s", error)
        return 1
    stop = on_signals(lambda: daemon.reload(path))
    try:
        await daemon.run(stop)
    except (OSError, StoreError) as error:  # before polling starts: no ICMP socket, the HTTP port taken, ...
        log.error("cannot start: %s", error)
        return 1
    return 0
