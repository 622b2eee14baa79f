"""The daemon: config, probes, rules, store, outbox and HTTP wired under one TaskGroup.

One writer per piece of state: only `Daemon._commit` feeds the rules engine and writes its
step to the store, on the event loop thread, so the engine, the store and the outbox never race.

A step the store cannot take (a full disk, an I/O error) is not lost and does not stop
monitoring: the engine has moved on, so what the step decided (line states, incidents, notices)
is kept in memory, in order, as `Unwritten`, and written before anything newer in one
transaction, with a fresh snapshot, at the first commit that succeeds (tried after WRITE_RETRY
seconds, then less often up to WRITE_RETRY_MAX, since each try costs a snapshot). The store is
then exactly where it would have been had every step been written; until then /health and
/ready say why, and so do the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sqlite3
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from prometheus_client import CollectorRegistry

from monitord import sdnotify
from monitord.clock import AnchoredClock
from monitord.config import Config, ConfigError, load_config
from monitord.metrics import Exposition, duration_bucket
from monitord.model import (
    Device,
    Incident,
    IncidentKind,
    LineState,
    MaintenanceWindow,
    NodeRef,
    Notification,
    Outcome,
    Sample,
)
from monitord.outbox import ChannelPolicy, Outbox, masked
from monitord.store import START_AFRESH, Store, StoreError
from notices.maintenance import due_maintenance_notices
from notices.plan import Planned, PlanSettings, due_cpe_notices, due_updates, hold_notices, plan_step
from notices.throttle import CommentThrottle
from notifiers.base import Notifier
from probes.icmp import Pinger, to_sample
from probes.profiles import (
    SYS_UPTIME,
    Profile,
    RateTracker,
    line_key,
    poll_device,
)
from probes.scheduler import Job, Poll, Scheduler
from probes.snmp import SnmpClient, Target
from probes.traps import Limits, TrapReceiver, senders
from rules.config import RulesConfig
from rules.engine import Engine, Step

log = logging.getLogger("monitord")

TICK = 1.0  # how often time-driven rules (durations, settle, stable periods) are evaluated
SNAPSHOT_EVERY = 30.0  # at most this often when only line states changed; see `Daemon._commit`
LOGGED_LINES = 20  # line state changes logged one by one per step; the rest as one summary
NOTICES = 30.0  # how often update and maintenance notices are looked for
WRITE_RETRY = 5.0  # while the store refuses writes, the first wait before a step tries again,
WRITE_RETRY_MAX = 60.0  # doubled per failure up to this: each try saves the whole snapshot
PRUNE_EVERY = 600.0  # how often history older than `retention` is pruned
PRUNE_BATCH = 500  # rows per transaction: each a few milliseconds, with polls running in between
SWITCH_INTERVAL = 0.001  # the longest the HTTP thread keeps the interpreter from the polling loop


def build_notifiers(config: Config) -> dict[str, Notifier]:
    """An explicit registry: channel -> notifier, from the config's notifiers section."""
    from notifiers.email import SmtpEmail
    from notifiers.rt import RequestTracker
    from notifiers.sms import TwilioSms
    from notifiers.webhook import WebhookTickets

    n = config.notifiers
    built: dict[str, Notifier] = {}
    if n.sms:
        built["sms"] = TwilioSms(n.sms.account_sid, n.sms.auth_token, n.sms.from_, n.sms.base_url)
    if n.email:
        e = n.email
        built["email"] = SmtpEmail(
            e.host, e.port, from_=e.from_, starttls=e.starttls, tls=e.tls, username=e.username, password=e.password
        )
    if n.tickets:
        t = n.tickets
        if t.kind == "rt":
            built["ticket"] = RequestTracker(t.url, t.queue or "General", token=t.token, username=t.username, password=t.password)
        else:
            built["ticket"] = WebhookTickets(t.url, t.token, t.body_template)
    return built


def configured_channels(config: Config) -> frozenset[str]:
    """Notices are queued only for channels that have a notifier: nothing would ever send the rest."""
    n = config.notifiers
    return frozenset(c for c, on in (("sms", n.sms), ("email", n.email), ("ticket", n.tickets)) if on)


def plan_settings(config: Config) -> PlanSettings:
    sms, email = config.notifiers.sms, config.notifiers.email
    return PlanSettings(
        timezone=config.timezone,
        quiet_hours=sms.quiet_hours if sms else None,
        update_after=sms.update_after if sms else 7200.0,
        notify_degradation=sms.notify_degradation if sms else False,
        noc_emails=email.noc if email else (),
        cpe_customers=config.notifiers.cpe.customers,
        cpe_ticket=config.notifiers.cpe.ticket,
        cpe_noc=config.notifiers.cpe.noc,
    )


def _log_states(states: Iterable[LineState]) -> None:
    """Each device's new state, the first LOGGED_LINES lines' one by one, the rest counted in
    one summary: a regional outage changes tens of thousands of lines in one step, and a journal
    flooded with them would rate-limit away the lines that matter."""
    skipped: Counter[str] = Counter()
    lines = 0
    for state in states:
        if state.node.level == "line":
            lines += 1
            if lines > LOGGED_LINES:
                skipped[state.status.value] += 1
                continue
        reasons = f" ({'; '.join(state.reasons)})" if state.reasons else ""
        log.info("%s is %s%s", state.node, state.status.value, reasons)
    if skipped:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(skipped.items()))
        log.info("and %d more lines changed state: %s", sum(skipped.values()), counts)


@dataclass(slots=True)
class Unwritten:
    """What steps decided while the store refused to write, merged in order: the latest state per
    node and per incident, and every notice once (by key), in the order they were planned."""

    error: str
    since: float
    failures: int = 1
    states: dict[NodeRef, LineState] = field(default_factory=dict)
    incidents: dict[str, Incident] = field(default_factory=dict)
    planned: dict[str, Planned] = field(default_factory=dict)

    def add(self, states: Iterable[LineState], incidents: Iterable[Incident], planned: Iterable[Planned]) -> None:
        self.states.update((s.node, s) for s in states)
        self.incidents.update((i.tracking, i) for i in incidents)
        for item in planned:
            self.planned.setdefault(item[0].key, item)


@dataclass(slots=True)
class ProbeStats:
    """Per device and probe: how polls ended and how long they took, for metrics."""

    outcomes: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (device, probe, outcome) -> polls
    seconds: defaultdict[tuple[str, str], float] = field(
        default_factory=lambda: defaultdict(float)
    )  # (device, probe) -> seconds spent
    polls: Counter[tuple[str, str]] = field(default_factory=Counter)  # (device, probe) -> polls
    durations: Counter[tuple[str, float]] = field(default_factory=Counter)  # (probe, bucket bound) -> polls


class Daemon:
    def __init__(self, config: Config, *, registry: CollectorRegistry | None = None, clock: Callable[[], float] | None = None):
        self.config = config
        self.clock = clock or AnchoredClock()
        self.registry = registry or CollectorRegistry()
        self.rules: RulesConfig = config.rules
        self.profiles: Mapping[str, Profile] = config.profiles
        self.store = Store.open(config.state_file)
        self.engine = self._resume()
        self._reserve_numbers()
        self.settings = plan_settings(config)
        self.channels = configured_channels(config)
        self.comments = CommentThrottle(config.notifiers.tickets.comment_every if config.notifiers.tickets else 0.0)
        self.rates = RateTracker()
        self.stats = ProbeStats()
        self.started = self.clock()
        self.ready = asyncio.Event()
        self._last_snapshot = float("-inf")  # the first commit saves one
        self.snmp: SnmpClient | None = None
        self.pinger: Pinger | None = None
        self.scheduler: Scheduler | None = None
        self.traps: TrapReceiver | None = None
        self.traps_port: int | None = None
        self.outbox: Outbox | None = None
        self.http_port: int | None = None
        self.metrics_port: int | None = None
        self.loop: asyncio.AbstractEventLoop | None = None  # where the state lives; HTTP handlers hop here
        self.exposition = Exposition(self.registry)
        self.job_classes: dict[str, str] = {}
        self.class_intervals: dict[str, float] = {}
        self._next_notices = 0.0
        self._updates_queued: set[str] = set()
        self.unwritten: Unwritten | None = None  # steps the store refused, until it takes them
        self.write_failures = 0
        self._next_write = 0.0

    def _resume(self) -> Engine:
        """The engine as last saved, or a fresh one; StoreError (naming only the error's kind, never
        the snapshot's content) when the saved state cannot be read."""
        config = self.config
        try:
            snapshot = self.store.load_snapshot()
            if not snapshot:
                return Engine(config.topology, self.rules, config.tracking_prefix, config.timezone)
            engine = Engine.restore(config.topology, self.rules, config.tracking_prefix, snapshot, config.timezone)
        except sqlite3.Error as error:
            self.store.close()
            raise StoreError.of(config.state_file, error) from None
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as error:
            self.store.close()
            raise StoreError(
                f"{config.state_file}: the saved engine state cannot be read ({type(error).__name__}); " f"{START_AFRESH}"
            ) from None
        log.info("resumed from %s: %d open incidents", config.state_file, len(engine.incidents()))
        return engine

    # --- the one writer ------------------------------------------------------------------------

    def ingest(self, samples: list[Sample]) -> Step:
        """Feed one poll's samples to the rules and persist what they decided."""
        now = self.clock()
        step = self.engine.observe(samples, now)
        self._commit(step, now)
        return step

    def _commit(self, step: Step, now: float, extra: Iterable[Planned] = ()) -> None:
        """Write one engine step to the store, queue what it decided to say, and log the changes.

        The engine's snapshot (all its state: for 100,000 lines about 50 MiB of JSON, 1.3 s of
        CPU and 2 s on the loop) is saved with every incident change and every queued notice,
        and otherwise at most every SNAPSHOT_EVERY seconds; changed line states alone are cheap
        upserts (a 50-line device poll commits in about 10 ms, the fsync included). That is
        safe because the saved snapshot is never older than the incidents and the outbox: a
        restart resumes at the last incident change, so it never forgets an incident it has
        announced nor issues its tracking number again. What it may lose is the line-level
        progress since (states, `for` holds, settle and stable timers); the first polls after
        the restart observe the lines again, at worst delaying an incident or a resolution.
        """
        pending = self.unwritten
        lookup = self.store.incident if pending is None else self._last_incident
        planned = plan_step(step.incidents, self.config.topology, self.settings, now, lookup)
        planned = self.comments.admit((p for p in (*planned, *extra) if p[0].channel in self.channels), now)
        incidents = [change.incident for change in step.incidents]
        states: Iterable[LineState] = step.states
        if pending is not None:
            pending.add(states, incidents, planned)
            states, incidents, planned = (
                list(pending.states.values()),
                list(pending.incidents.values()),
                list(pending.planned.values()),
            )
        save_snapshot = pending is not None or bool(planned or incidents) or now - self._last_snapshot >= SNAPSHOT_EVERY
        if (save_snapshot or states) and (pending is None or now >= self._next_write):
            self._write(save_snapshot, states, incidents, planned, now)
        _log_states(step.states)
        for change in step.incidents:
            inc = change.incident
            log.info(
                "incident %s %s: %s at %s, %d lines", inc.tracking, change.change, inc.kind.value, inc.root, len(inc.affected)
            )
        if step.recheck and self.scheduler:
            for device in step.recheck:
                self.scheduler.poll_now(device)

    def _write(
        self,
        save_snapshot: bool,
        states: Iterable[LineState],
        incidents: list[Incident],
        planned: list[Planned],
        now: float,
    ) -> None:
        """One transaction for the step (and all the unwritten ones before it), or keep it all for later."""
        states = list(states)
        snapshot = self.engine.snapshot() if save_snapshot else None
        try:
            queued = self.store.commit_step(snapshot, states, incidents, planned, now, self._dead_on_arrival)
        except (sqlite3.Error, StoreError) as error:
            self.write_failures += 1
            failures = 1 if self.unwritten is None else self.unwritten.failures + 1
            self._next_write = now + min(WRITE_RETRY_MAX, WRITE_RETRY * 2 ** (failures - 1))
            if self.unwritten is None:
                self.unwritten = Unwritten(str(error), now)
                self.unwritten.add(states, incidents, planned)
                log.error(
                    "cannot write the state file %s: %s; monitoring goes on, what it decides is kept "
                    "in memory and written once the store takes it",
                    self.config.state_file,
                    error,
                )
            else:
                self.unwritten.error, self.unwritten.failures = str(error), failures
            return
        if self.unwritten is not None:
            log.warning(
                "state file writable again after %.0f s: wrote %d incident changes and %d notices kept meanwhile",
                now - self.unwritten.since,
                len(self.unwritten.incidents),
                len(self.unwritten.planned),
            )
            self.unwritten = None
        if save_snapshot:
            self._last_snapshot = now
        if queued and self.outbox:
            self.outbox.wake()

    def _last_incident(self, tracking: str) -> Incident | None:
        """An incident as last decided: unwritten steps first, then the store."""
        assert self.unwritten is not None
        return self.unwritten.incidents.get(tracking) or self.store.incident(tracking)

    def _reserve_numbers(self) -> None:
        for year, last in self.store.issued(self.config.tracking_prefix).items():
            self.engine.reserve(year, last)

    def _dead_on_arrival(self, item: Notification) -> None:
        """A notice that could not even be built (a template error): logged and counted, never sent."""
        log.warning("dead letter on arrival: %s", masked(f"{item.channel} {item.key}: {item.error}", item))
        if self.outbox and item.channel in self.outbox.counts:
            self.outbox.counts[item.channel].dead += 1

    def tick(self) -> None:
        """Time passes: durations and settle windows every TICK, customer notices every NOTICES."""
        now = self.clock()
        step = self.engine.tick(now)
        extra: list[Planned] = []
        if now >= self._next_notices:
            self._next_notices = now + NOTICES
            extra = self._due_notices(now)
        self._commit(step, now, extra)

    def _due_notices(self, now: float) -> list[Planned]:
        """ "Still ongoing" updates, modem notices kept from quiet hours, and planned-maintenance
        notices that have come due.

        Their keys make them idempotent in the store; `_updates_queued` only spares the store
        from seeing the same thousands of update notices of a large outage every minute.
        """
        open_incidents = self.engine.incidents()
        self._updates_queued &= {i.tracking for i in open_incidents}
        waiting = [i for i in open_incidents if i.tracking not in self._updates_queued]
        due = due_updates(waiting, self.config.topology, self.settings, now)
        due += due_cpe_notices(waiting, self.config.topology, self.settings, now)
        self._updates_queued.update(item.incident for item, _ in due if item.incident)
        overrun = self.engine.overran() | {line for i in open_incidents if i.kind is IncidentKind.OVERRUN for line in i.affected}
        return due + due_maintenance_notices(self._windows(), self.config.topology, now, self.settings, overrun_lines=overrun)

    def _windows(self) -> list[MaintenanceWindow]:
        return [w.window for w in self.store.maintenance()]

    def add_maintenance(self, window: MaintenanceWindow) -> None:
        """A window from the API: stored (it outlives restarts and reloads) and in force at once."""
        now = self.clock()
        self.store.put_maintenance(window, "api")
        self._commit(self.engine.set_maintenance(self._windows(), now), now)

    def cancel_maintenance(self, window_id: str) -> bool:
        """False if no such window is in force or planned."""
        now = self.clock()
        if not self.store.cancel_maintenance(window_id):
            return False
        self._commit(self.engine.set_maintenance(self._windows(), now), now)
        return True

    # --- probes ------------------------------------------------------------------------------

    def jobs(self) -> list[Job]:
        polling = self.config.polling
        topology = self.config.topology
        lines_of: dict[str, list[str]] = {}
        for line in topology.lines.values():
            lines_of.setdefault(line.device, []).append(line.id)
        jobs: list[Job] = []
        for device in topology.devices.values():
            jobs.append(
                Job(
                    f"icmp:{device.id}",
                    device.id,
                    "icmp",
                    polling.icmp_interval,
                    self._icmp_job(device, lines_of.get(device.id, [])),
                )
            )
            if device.snmp is None:
                continue
            for name in device.profiles:
                profile = self.profiles[name]
                keys = {}
                for line_id in lines_of.get(device.id, []):
                    key = line_key(profile, topology.lines[line_id])
                    if key is not None:
                        keys[key] = line_id
                for interval in profile.intervals:
                    seconds = polling.optical_interval if interval == "optical" else polling.line_interval
                    poll, check = self._snmp_job(device, profile, keys, interval)
                    jobs.append(
                        Job(
                            f"snmp:{device.id}:{name}:{interval}",
                            device.id,
                            interval,
                            seconds,
                            poll,
                            check,
                            self._snmp_timed_out(device, profile),
                        )
                    )
        self.job_classes = {job.key: job.probe_class for job in jobs}
        self.class_intervals = {job.probe_class: job.interval for job in jobs}
        return jobs

    def _snmp_job(self, device: Device, profile: Profile, keys: dict[str, str], interval: str) -> tuple[Poll, Poll]:
        """The full table walk, and the one-GET liveness check the scheduler uses while it is silent."""
        probe = f"snmp:{profile.name}"
        target = Target.of(device)

        async def run() -> list[Sample]:
            assert self.snmp is not None
            started = time.perf_counter()
            samples = await poll_device(self.snmp, device, profile, keys, self.clock(), rates=self.rates, intervals={interval})
            self._count(device.id, probe, samples, time.perf_counter() - started)
            return samples

        async def check() -> list[Sample]:
            assert self.snmp is not None
            answer = await self.snmp.get(target, [SYS_UPTIME])
            return [Sample(NodeRef("device", device.id), probe, self.clock(), answer.outcome, detail=answer.detail)]

        return run, check

    def _snmp_timed_out(self, device: Device, profile: Profile) -> Callable[[float], list[Sample]]:
        """The device sample for a walk the scheduler cancelled at polling.job_timeout."""
        node, probe = NodeRef("device", device.id), f"snmp:{profile.name}"

        def samples(seconds: float) -> list[Sample]:
            detail = f"poll still running after {seconds:g} s (polling.job_timeout), cancelled"
            return [Sample(node, probe, self.clock(), Outcome.TIMEOUT, detail=detail)]

        return samples

    def _icmp_job(self, device: Device, line_ids: list[str]) -> Poll:
        lines = self.config.topology.lines
        targets = {device.address: NodeRef("device", device.id)}
        targets.update({modem: NodeRef("line", i) for i in line_ids if (modem := lines[i].modem)})

        async def run() -> list[Sample]:
            assert self.pinger is not None
            polling = self.config.polling
            started = time.perf_counter()
            results = await self.pinger.sweep(list(targets), count=polling.icmp_count, timeout=polling.icmp_timeout)
            now = self.clock()
            samples = [to_sample(results[address], node, now) for address, node in targets.items()]
            self._count(device.id, "icmp", samples[:1], time.perf_counter() - started)
            return samples

        return run

    def _count(self, device: str, probe: str, samples: list[Sample], seconds: float) -> None:
        for sample in samples:
            if sample.target.level == "device":
                self.stats.outcomes[(device, probe, sample.outcome.value)] += 1
        self.stats.seconds[(device, probe)] += seconds
        self.stats.polls[(device, probe)] += 1
        self.stats.durations[(probe, duration_bucket(seconds))] += 1

    async def _sink(self, samples: list[Sample]) -> None:
        self.ingest(samples)

    # --- lifecycle ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Poll, judge, notify and serve until `stop` is set; the store is closed on return.

        A start that fails (no ICMP socket, the HTTP port taken) raises OSError, after closing
        what it had opened.
        """
        from monitord.http import HttpServer, make_app, make_metrics_app
        from monitord.metrics import register

        config = self.config
        async with contextlib.AsyncExitStack() as opened:
            opened.callback(self.store.close)
            try:
                self.store.replace_config_maintenance(config.maintenance)
                now = self.clock()
                self._commit(self.engine.set_maintenance(self._windows(), now), now)
            except sqlite3.Error as error:
                raise StoreError.of(config.state_file, error) from None
            gc.freeze()  # the inventory and the engine's state live for the whole run: spare the GC from rescanning them
            self.snmp = SnmpClient(
                timeout=config.snmp.timeout,
                retries=config.snmp.retries,
                walk_max_requests=config.snmp.walk_max_requests,
                walk_timeout=config.snmp.walk_timeout,
            )
            opened.callback(self.snmp.close)
            self.pinger = await Pinger.open()
            opened.push_async_callback(self.pinger.close)
            self.outbox = Outbox(
                self.store,
                build_notifiers(config),
                self._policies(),
                clock=self.clock,
                on_hold=lambda hold: hold_notices(hold, self.settings, config.notifiers.hold_probe),
            )
            polling = config.polling
            self.scheduler = Scheduler(
                self.jobs(),
                self._sink,
                max_in_flight=polling.max_in_flight,
                per_device_in_flight=polling.per_device_in_flight,
                jitter=polling.jitter,
                job_timeout=config.job_timeout,
            )
            if config.traps is not None:
                t = config.traps
                self.traps = TrapReceiver(
                    senders(config.topology, self.profiles),
                    Limits(t.sender_rate, t.sender_burst, t.rate, t.burst),
                    self.scheduler.poll_now,
                )
                opened.callback(self.traps.close)
                self.traps_port = await self.traps.open(t.host, t.port)
                log.info("receiving SNMP traps and informs on %s:%d", t.host, self.traps_port)
            register(self.registry, self)
            self.loop = asyncio.get_running_loop()
            listeners = [(make_app(self), config.http.host, config.http.port)]
            if config.metrics.listen:
                listeners.append((make_metrics_app(self), *config.metrics.listen))
            opened.callback(sys.setswitchinterval, sys.getswitchinterval())
            sys.setswitchinterval(SWITCH_INTERVAL)
            server = HttpServer(listeners)
            ports = await server.start()
            opened.push_async_callback(server.stop)
            self.http_port = ports[0]
            log.info("listening on http://%s:%d (metrics at /metrics)", config.http.host, self.http_port)
            if config.metrics.listen:
                self.metrics_port = ports[1]
                log.info("metrics also on http://%s:%d/metrics", config.metrics.listen[0], self.metrics_port)
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.scheduler.run_forever())
                outbox_task = tasks.create_task(self._deliver(stop))
                ticker = tasks.create_task(self._ticker())
                pruner = tasks.create_task(self._pruner())
                self.ready.set()
                sdnotify.notify("READY=1", self._status())
                await stop.wait()
                sdnotify.notify("STOPPING=1", "STATUS=stopping")
                log.info("stopping: polling ends, deliveries in flight finish or stay queued")
                self.scheduler.stop()
                ticker.cancel()
                pruner.cancel()
                await self.outbox.stop(timeout=10.0)
                await outbox_task
                now = self.clock()
                self._last_snapshot = float("-inf")  # save what the engine learned since the last snapshot
                self.comments.every = 0.0  # queue the held helpdesk comments: they live in memory only
                self._commit(self.engine.tick(now), now)
                if self.unwritten is not None:
                    log.error(
                        "stopping with the state file still refusing writes (%s): %d incident changes and "
                        "%d notices decided since %.0f s ago are lost",
                        self.unwritten.error,
                        len(self.unwritten.incidents),
                        len(self.unwritten.planned),
                        now - self.unwritten.since,
                    )
            log.info("stopped; %d notifications stay queued for the next start", self.store.depth())

    async def _deliver(self, stop: asyncio.Event) -> None:
        """Run the outbox; when the state file refuses one of its writes (a full disk), start it
        again after a pause instead of letting the error stop the daemon. An item whose `sent`
        mark was refused stays `sending` and is reconciled with the peer, as after a crash."""
        assert self.outbox is not None
        pause = WRITE_RETRY
        while True:
            refused = None
            try:
                await self.outbox.run()
            except* sqlite3.Error as errors:
                refused = errors.exceptions[0]
            if refused is None or stop.is_set():
                return
            log.error("delivery paused: the state file refused a write (%s); trying again in %.0f s", refused, pause)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
            if stop.is_set():
                return
            pause = min(WRITE_RETRY_MAX, pause * 2)

    async def _ticker(self) -> None:
        watchdog = sdnotify.watchdog_interval()
        last_ping, last_status = 0.0, ""
        while True:
            self.tick()
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
            except sqlite3.Error as error:
                log.warning("pruning old history failed, tried again in %.0f s: %s", PRUNE_EVERY, error)

    async def prune_history(self) -> int:
        """History older than `retention`, PRUNE_BATCH rows per transaction with polls in between."""
        retention, now = self.config.retention, self.clock()
        cutoffs = (now - retention.sent, now - retention.dead, now - retention.resolved_incidents)
        removed = 0
        while (batch := self.store.prune(*cutoffs, batch=PRUNE_BATCH)) == PRUNE_BATCH:
            removed += batch
            await asyncio.sleep(0.05)
        removed += batch
        if removed:
            log.info("pruned %d rows of history older than the retention", removed)
        return removed

    def _status(self) -> str:
        """The one line `systemctl status` shows."""
        topology = self.config.topology
        incidents = len(self.engine.incidents())
        return f"STATUS=polling {len(topology.devices)} devices, {len(topology.lines)} lines; {incidents} open incidents"

    def _policies(self) -> dict[str, ChannelPolicy]:
        n = self.config.notifiers
        sections = {"sms": n.sms, "email": n.email, "ticket": n.tickets}
        policies = {
            channel: ChannelPolicy(
                probe_every=n.hold_probe, max_backoff=section.retry.max_backoff, outage_probe=section.retry.probe_every
            )
            for channel, section in sections.items()
            if section is not None
        }
        if n.sms:
            policies["sms"] = replace(policies["sms"], rate=n.sms.rate)
        return policies

    def reload(self, path: str | Path) -> bool:
        """SIGHUP: a new config and inventory; incidents, line states and queued messages are kept.

        An invalid config is logged problem by problem and the running one stays in force. Lines
        gone from the inventory leave their incidents, which close ("closed_removed") if emptied.
        """
        sdnotify.reloading()
        try:
            try:
                config = load_config(path)
            except ConfigError as error:
                for problem in error.problems:
                    log.error("reload rejected: %s", problem)
                log.error("reload rejected: %d problem(s); the running config stays in force", len(error.problems))
                return False
            old, now = self.config, self.clock()
            if config.rules != old.rules or config.tracking_prefix != old.tracking_prefix:
                self.rules = config.rules
                self.engine = Engine.restore(
                    old.topology, self.rules, config.tracking_prefix, self.engine.snapshot(), config.timezone
                )
                self._reserve_numbers()
            self.config = config
            self.profiles = config.profiles
            self.settings = plan_settings(config)
            self.channels = configured_channels(config)
            self.comments.every = config.notifiers.tickets.comment_every if config.notifiers.tickets else 0.0
            self.store.replace_config_maintenance(config.maintenance)
            if self.outbox and config.notifiers != old.notifiers:
                self.outbox.replace_notifiers(build_notifiers(config))
            elif self.outbox:
                self.outbox.probe_held()  # the fix may be at the peer's end
            self._commit(self.engine.set_topology(config.topology, now), now)
            self._commit(self.engine.set_maintenance(self._windows(), now), now)
            for gone in old.topology.devices.keys() - config.topology.devices.keys():
                self.rates.forget(gone)
            if self.scheduler:
                self.scheduler.replace_jobs(self.jobs())
            if self.traps:
                self.traps.replace_senders(senders(config.topology, self.profiles))
            if later := needs_restart(old, config):
                log.warning("reloaded, but changes to %s take effect at the next restart", ", ".join(later))
            log.info("reloaded %s: %d devices, %d lines", path, len(config.topology.devices), len(config.topology.lines))
            return True
        finally:
            sdnotify.notify("READY=1", self._status())

    # --- read-only views for HTTP and metrics -------------------------------------------------

    def open_incidents(self) -> list[Incident]:
        return self.engine.incidents()

    def status_counts(self) -> Counter[tuple[str, str, str, str]]:
        """(region, exchange, device, status) -> number of lines."""
        topology = self.config.topology
        counts: Counter[tuple[str, str, str, str]] = Counter()
        for line in topology.lines.values():
            device = topology.devices[line.device]
            region = topology.exchanges[device.exchange].region
            counts[(region, device.exchange, device.id, self.engine.line_state(line.id).status.value)] += 1
        return counts


def needs_restart(old: Config, new: Config) -> list[str]:
    """What a reload cannot apply: the settings the running sockets, clients and store were built from."""

    def channels(c: Config) -> tuple[object, ...]:
        """Addresses and credentials are reloaded (`Outbox.replace_notifiers`); the channels and pacing are not."""
        retries = tuple(s and s.retry for s in (c.notifiers.sms, c.notifiers.email, c.notifiers.tickets))
        return configured_channels(c), c.notifiers.sms and c.notifiers.sms.rate, c.notifiers.hold_probe, retries

    parts: dict[str, Callable[[Config], object]] = {
        "state_file": lambda c: c.state_file,
        "http": lambda c: c.http,
        "metrics.listen": lambda c: c.metrics.listen,
        "snmp timeout/retries": lambda c: (c.snmp.timeout, c.snmp.retries, c.snmp.walk_timeout, c.snmp.walk_max_requests),
        "polling limits and jitter": lambda c: (
            c.polling.max_in_flight,
            c.polling.per_device_in_flight,
            c.polling.jitter,
            c.polling.job_timeout,
        ),
        "notifier channels, SMS rate, hold_probe and retry": channels,
        "traps": lambda c: c.traps,
    }
    return [name for name, part in parts.items() if part(old) != part(new)]


async def run_daemon(path: str, config: Config) -> int:
    """`monitord run`: SIGTERM/SIGINT stop, SIGHUP reloads (ignored once stopping)."""
    try:
        daemon = Daemon(config)
    except StoreError as error:
        log.error("cannot start: %s", error)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: stop.is_set() or daemon.reload(path))
    try:
        await daemon.run(stop)
    except (OSError, StoreError) as error:  # before polling starts: no ICMP socket, the HTTP port taken, ...
        log.error("cannot start: %s", error)
        return 1
    return 0
