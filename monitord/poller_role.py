"""`monitord run --role poller`: one of several pollers on a PostgreSQL state, each polling the
devices of the shards it holds by lease and writing their samples, in batches, for the
correlator (`--role correlator`, monitord/correlator_role.py) to judge. A line's sample that
changes nothing its rules see is left out (rules/changes.py); the lines a reload changed are
written again when the correlator leader reloads too (it may not have known them before), and
every line once every `cluster.resend` in any case.
The line quality roll-ups of its shards' lines are its own to keep: it writes their 5-minute rows
(monitord/line_history.py), so no reading has to reach the correlator for them.

A shard is an exchange (or a region: `cluster.shard_by`). Every `cluster.lease` / 3 seconds the
poller renews its leases and claims or lets go of shards (monitord/shards.py decides,
monitord/shardstore.py's UPDATEs settle races); a poller that died has its shards taken over
by the others once its leases run out, and one that joins is given its share. A shard taken is
polled at once (`Scheduler.poll_now`), not at its jobs' next turn, and so is a device of its
shards the correlator asks a second look at (monitord/rechecks.py).

Nothing on the event loop waits on the database: the probes' samples are only appended to their
shard's batch, and the leases and the batches are written from a thread of the poller's own
(one session: a round and a batch never run at once). A batch is written every
`cluster.batch_every` seconds, or as soon as `cluster.batch_samples` wait; the database
refusing keeps it for the next try, a shard lost (`Fenced`: another poller holds it under a
newer epoch) drops it, since the new holder polls that shard now. A poller that cannot renew
within its lease stops polling its shards: they are someone else's by then.

Its HTTP listener (a thread of its own, monitord/http_server.py) answers /health, /ready and
/metrics (its role and shards) and forwards the NOC API to the correlator leader
(monitord/forward.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import psycopg
from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitord import batches, sdnotify
from monitord.clock import AnchoredClock
from monitord.config import Config, ConfigError, load_config, log_rejected
from monitord.daemon import needs_restart
from monitord.database import StoreError, one_line
from monitord.forward import ForwardCollector, Forwarder, forwarding_app, metrics_handler
from monitord.http_server import HttpServer
from monitord.line_history import LineHistory
from monitord.metrics import RoleCollector
from monitord.model import Sample, StateServer, Topology
from monitord.noc_metrics import LevelFamilies, build_info, poll_failures, snmp_counts
from monitord.pipeline import building_in_a_thread
from monitord.polling import PollingJobs, snmp_client
from monitord.rechecks import RecheckListener
from monitord.shardstore import Fenced, Held, ShardLeases
from monitord.signals import on_signals
from monitord.store import Store
from probes.icmp import Pinger
from probes.scheduler import Job, Scheduler
from rules.changes import Signer, Unchanged

log = logging.getLogger("monitord")

KEPT_BATCHES = 20  # while the database refuses, a shard keeps its newest batch_samples x this samples


class Poller:
    """The one writer of this poller's shards (`held`: shard -> epoch) and of their waiting samples."""

    def __init__(self, config: Config, server: StateServer) -> None:
        self.config = config
        self.name = f"{socket.gethostname()}/{os.getpid()}"
        self.cluster = config.cluster
        self.leases = ShardLeases(server, self.name, self.cluster.lease)
        self.clock = AnchoredClock()
        self.probes = PollingJobs(self.clock)
        self.held: dict[str, int] = {}
        self.waiting: dict[str, list[Sample]] = {}
        self.written_at: dict[str, float] = {}  # shard -> wall time of its last batch written
        self.results: Counter[str] = Counter()  # batches: written, fenced, failed; samples: dropped; rechecked
        self.left_out: Counter[str] = Counter()  # line samples not written as unchanged, by probe
        self.unchanged = _unchanged(config, config.cluster.resend)
        self.correlator_reloads: int | None = None  # as the last lease round read them
        self.passed_over: dict[str, int] = {}  # shard -> its batches the correlator could not read, as last read
        # what this poller's reloads changed since the correlator leader last reloaded: lines new or
        # changed (their samples may have reached a correlator that did not know them), and rules
        self.unseen_lines: set[str] = set()
        self.unseen_rules = False
        self.lines: LineHistory | None = None  # its shards' line quality roll-ups, while it runs
        self.scheduler: Scheduler | None = None
        self._jobs: list[Job] = []
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="monitord-shards")
        self._full = asyncio.Event()  # a shard's batch reached batch_samples
        self.shard_of, self._line_device = _shards(config)

    async def _db(self, call: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, call, *args)

    async def run(self, stop: asyncio.Event) -> int:
        """0 once stopped, 1 when it cannot start."""
        config = self.config
        try:
            store = Store.open(config.state)  # the schema brought up to date
        except StoreError as error:
            log.error("cannot start: %s", error)
            return 1
        async with contextlib.AsyncExitStack() as opened:
            opened.callback(store.close)
            opened.callback(self._thread.shutdown)
            self.lines = LineHistory(store, lambda: self.config, self.clock, merges=False)
            self.lines.start()
            opened.push_async_callback(self.lines.stop)  # the period in progress written
            snmp = self.probes.snmp = snmp_client(config.snmp)
            opened.callback(snmp.close)
            pinger = self.probes.pinger = await Pinger.open()
            opened.push_async_callback(pinger.close)
            polling = config.polling
            self._jobs = self.probes.jobs(config)
            self.scheduler = Scheduler(
                [],
                self._sink,
                max_in_flight=polling.max_in_flight,
                per_device_in_flight=polling.per_device_in_flight,
                jitter=polling.jitter,
                job_timeout=config.job_timeout,
            )
            registry = CollectorRegistry()
            registry.register(RoleCollector("poller"))
            registry.register(PollerCollector(self))
            forwarder = Forwarder(self.leases.server, self.name)
            registry.register(ForwardCollector(forwarder))
            server = HttpServer([(poller_app(self, registry, forwarder), config.http.host, config.http.port)])
            ports = await server.start()
            opened.push_async_callback(server.stop)
            log.info("poller %s: listening on http://%s:%d", self.name, config.http.host, ports[0])
            async with asyncio.TaskGroup() as tasks:
                polls = tasks.create_task(self.scheduler.run_forever())
                leasing = tasks.create_task(self._leasing())
                writing = tasks.create_task(self._writing())
                listening = tasks.create_task(RecheckListener(self.leases.server).run(self._recheck))
                sdnotify.notify("READY=1", f"STATUS=poller {self.name}: claiming shards")
                await stop.wait()
                sdnotify.notify("STOPPING=1", "STATUS=stopping")
                leasing.cancel()
                listening.cancel()
                self.scheduler.stop()
                await polls
                writing.cancel()
            await self._flush()
            with contextlib.suppress(psycopg.Error):
                await self._db(self.leases.leave)
            await self._db(self.leases.close)
        log.info("poller %s stopped; its shards are free", self.name)
        return 0

    async def reload(self, path: str) -> bool:
        """SIGHUP: the new inventory, profiles and intervals polled from now on (read and checked
        in a thread, as `--role all` does); an invalid config is logged and the running one kept."""
        sdnotify.reloading()
        try:
            try:
                config, jobs, changed = await asyncio.to_thread(self._prepare, path, self.config)
            except ConfigError as error:
                log_rejected(error)
                return False
            old, self.config = self.config, config
            if config.rules != old.rules:
                self.unchanged = _unchanged(config, self.cluster.resend)  # other rules see other changes
                self.unseen_rules = True
            self.unseen_lines |= changed
            self.probes.forget(old.topology.devices.keys() - config.topology.devices.keys())
            self._jobs = jobs
            self.shard_of, self._line_device = _shards(config, self.cluster.shard_by)
            self.unchanged.forget_lines(self._shards_of(changed))
            if self.scheduler is not None:
                self.scheduler.replace_jobs(job for job in jobs if self.shard_of.get(job.device) in self.held)
            later = needs_restart(old, config) + (["cluster"] if config.cluster != old.cluster else [])
            if later:
                log.warning("reloaded, but changes to %s take effect at the next restart", ", ".join(later))
            log.info("reloaded %s: %d devices, %d lines", path, len(config.topology.devices), len(config.topology.lines))
            return True
        finally:
            sdnotify.notify("READY=1", f"STATUS=poller {self.name}: polling shards {', '.join(sorted(self.held)) or 'none'}")

    def _prepare(self, path: str, old: Config) -> tuple[Config, list[Job], set[str]]:
        with building_in_a_thread():
            config = load_config(path)
            return config, self.probes.jobs(config), changed_lines(old.topology, config.topology)

    # --- leases ------------------------------------------------------------------------------

    async def _leasing(self) -> None:
        every, renewed, failing = self.cluster.lease / 3, time.monotonic(), False
        while True:
            started = time.monotonic()
            try:
                async with asyncio.timeout(every * 1.5):
                    held = await self._db(self.leases.round, set(self.shard_of.values()))
            except (TimeoutError, psycopg.Error) as error:
                if not failing:
                    log.error("cannot renew the shards' leases (%s)", one_line(error) if str(error) else "no answer")
                failing = True
                if self.held and time.monotonic() - renewed > self.cluster.lease:
                    log.error("the leases of %s ran out: no longer polling them", ", ".join(sorted(self.held)))
                    self._hold({})
            else:
                if failing:
                    log.warning("leases renewed again")
                renewed, failing = started, False
                self._report(held)
                self._follow_correlator(held)
                self._hold(held.shards)
            await asyncio.sleep(max(0.0, every - (time.monotonic() - started)))

    def _report(self, held: Held) -> None:
        for shard in held.taken:
            log.info("poller %s took shard %s (epoch %d); %d pollers live", self.name, shard, held.shards[shard], held.live)
        for shard in held.released:
            log.info("poller %s let go of shard %s for another poller", self.name, shard)

    def _follow_correlator(self, held: Held) -> None:
        """What the correlator may have missed is written again: the lines of a shard one of
        whose batches it could not read, and what this poller's reloads changed before the
        leader's own reload (`_follow_reloads`)."""
        for shard, count in held.passed_over.items():
            if shard in held.shards and count != self.passed_over.get(shard, count):
                log.warning("the correlator could not read a batch of shard %s: writing each of its lines again", shard)
                self.unchanged.forget(shard)
        self.passed_over = held.passed_over
        self._follow_reloads(held.reloads)

    def _follow_reloads(self, reloads: int) -> None:
        """The correlator leader reloaded its config: what this poller's own reloads changed
        since its last one may have reached it before it knew of it, and what it then left out
        as unchanged never would. So those lines' next samples (every line's, if the rules
        changed) are written again; the others are not, lest each reload of a large inventory
        send the correlator every line at once."""
        if self.correlator_reloads is not None and reloads != self.correlator_reloads:
            if self.unseen_rules:
                self.unchanged.forget()
            else:
                self.unchanged.forget_lines(self._shards_of(self.unseen_lines))
            what = "every line" if self.unseen_rules else f"the {len(self.unseen_lines)} lines changed since its last reload"
            log.info("the correlator reloaded its config: writing the next sample of %s again", what)
            self.unseen_lines, self.unseen_rules = set(), False
        self.correlator_reloads = reloads

    def _shards_of(self, lines: set[str]) -> dict[str, str]:
        return {line: self.shard_of.get(self._line_device.get(line, ""), "") for line in lines}

    def _hold(self, shards: dict[str, int]) -> None:
        """Poll exactly the devices of `shards` from now on; a shard newly held is polled at once."""
        before, self.held = set(self.held), dict(shards)
        for shard in before - shards.keys():
            self.waiting.pop(shard, None)
            self.unchanged.forget(shard)
        if before == shards.keys() or self.scheduler is None:
            return
        self.scheduler.replace_jobs(job for job in self._jobs if self.shard_of.get(job.device) in shards)
        new = shards.keys() - before
        for device, shard in self.shard_of.items():
            if shard in new:
                self.scheduler.poll_now(device)
        sdnotify.notify(f"STATUS=poller {self.name}: polling shards {', '.join(sorted(shards)) or 'none'}")

    def _recheck(self, devices: list[str]) -> None:
        """The correlator wants a second look at these devices: those of our shards are polled now."""
        for device in devices:
            if self.shard_of.get(device) in self.held and self.scheduler is not None:
                self.scheduler.poll_now(device)
                self.results["rechecked"] += 1

    # --- batches -----------------------------------------------------------------------------

    async def _sink(self, samples: list[Sample]) -> None:
        """The scheduler's: never waits (the samples wait for the writer in their shard's batch,
        the roll-ups' thread adds them up)."""
        mine = []
        for sample in samples:
            node = sample.target
            device = node.id if node.level == "device" else self._line_device.get(node.id, "")
            shard = self.shard_of.get(device)
            if shard not in self.held:
                continue
            mine.append(sample)
            if not self.unchanged.new(shard, sample):
                self.left_out[sample.probe] += 1
                continue
            waiting = self.waiting.setdefault(shard, [])
            waiting.append(sample)
            if len(waiting) >= self.cluster.batch_samples:
                self._full.set()
        if self.lines is not None:
            self.lines.take(mine)

    async def _writing(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.cluster.batch_every):
                    await self._full.wait()
            self._full.clear()
            await self._flush()
            self.unchanged.expire(time.monotonic())

    async def _flush(self) -> None:
        for shard in [s for s, waiting in self.waiting.items() if waiting]:
            # while an earlier write waited, `_hold` may have dropped this shard's samples (a lease
            # ran out, a batch was Fenced): nothing of it to write then
            samples, epoch = self.waiting.pop(shard, []), self.held.get(shard)
            if not samples or epoch is None:
                continue
            try:
                seq = await self._db(self._write, shard, epoch, samples)
            except Fenced as error:
                self.results["fenced"] += 1
                log.error("batch of shard %s refused: %s; no longer polling it", shard, error)
                self._hold({s: e for s, e in self.held.items() if s != shard})
            except psycopg.Error as error:
                self.results["failed"] += 1
                log.error("cannot write a batch of shard %s (%s); kept for the next try", shard, one_line(error))
                kept = samples + self.waiting.get(shard, [])
                limit = self.cluster.batch_samples * KEPT_BATCHES
                if len(kept) > limit:
                    self.results["dropped_samples"] += len(kept) - limit
                    self.unchanged.forget(shard)  # a change let go must be written again
                self.waiting[shard] = kept[-limit:]
            else:
                self.results["written"] += 1
                self.written_at[shard] = time.time()
                log.debug("shard %s: batch %d, %d samples", shard, seq, len(samples))

    def _write(self, shard: str, epoch: int, samples: list[Sample]) -> int:
        """In the thread: the batch encoded and inserted (monitord/shardstore.py fences it)."""
        return self.leases.write(shard, epoch, batches.dump(samples))


class PollerCollector(Collector):
    """monitord_poller_shards, monitord_shard_epoch, monitord_shard_last_batch_seconds, monitord_batches_total,
    monitord_poller_dropped_samples_total, monitord_poller_unchanged_samples_total,
    monitord_poller_rechecks_total; and what the poller's own polls saw, as a daemon exports it
    (monitord/noc_metrics.py): failed polls, SNMP datagrams, the line levels of the shards it holds
    (a shard it lost is another poller's to report). Collected in the HTTP server's thread: the
    summaries of the levels never run on the polling loop."""

    def __init__(self, poller: Poller) -> None:
        self.poller = poller
        self._levels = LevelFamilies()

    def collect(self) -> Iterator[Metric]:
        held, now = dict(self.poller.held), time.time()
        shards = GaugeMetricFamily("monitord_poller_shards", "Shards this poller holds by lease and polls.")
        shards.add_metric([], len(held))
        epoch = GaugeMetricFamily(
            "monitord_shard_epoch", "The epoch this poller claimed each shard it holds with.", labels=["shard"]
        )
        age = GaugeMetricFamily(
            "monitord_shard_last_batch_seconds", "Seconds since this poller last wrote a batch of the shard.", labels=["shard"]
        )
        for shard, number in sorted(held.items()):
            epoch.add_metric([shard], number)
            if shard in self.poller.written_at:
                age.add_metric([shard], now - self.poller.written_at[shard])
        total = CounterMetricFamily(
            "monitord_batches", "Batches of samples: written, fenced (the shard was lost), failed (kept).", labels=["result"]
        )
        for result in ("written", "fenced", "failed"):
            total.add_metric([result], self.poller.results[result])
        dropped = CounterMetricFamily(
            "monitord_poller_dropped_samples", "Samples let go, the oldest first, while the database refused their batches."
        )
        dropped.add_metric([], self.poller.results["dropped_samples"])
        unchanged = CounterMetricFamily(
            "monitord_poller_unchanged_samples",
            "Line samples not written, by probe: they changed nothing the line's rules see (rules/changes.py).",
            labels=["probe"],
        )
        for probe, n in sorted(dict(self.poller.left_out).items()):
            unchanged.add_metric([probe], n)
        rechecked = CounterMetricFamily(
            "monitord_poller_rechecks", "Devices of this poller's shards polled at once because the correlator asked."
        )
        rechecked.add_metric([], self.poller.results["rechecked"])
        yield from (shards, epoch, age, total, dropped, unchanged, rechecked)
        yield from self._polls(held)

    def _polls(self, held: dict[str, int]) -> Iterator[Metric]:
        poller, probes = self.poller, self.poller.probes
        # dict(...) first: a copy in one C call, while the polling loop goes on changing them
        yield poll_failures(Counter(dict(probes.stats.failures)))
        yield from snmp_counts(
            {kind: replace(counts) for kind, counts in dict(probes.snmp.counts if probes.snmp else {}).items()}
        )
        ours = {key: kept for key, kept in dict(probes.quality).items() if poller.shard_of.get(kept[0]) in held}
        yield from self._levels.collect(ours, dict(probes.job_classes), poller.config.topology)
        yield build_info()


def poller_app(poller: Poller, registry: CollectorRegistry, forwarder: Forwarder) -> web.Application:
    """/health, /ready and /metrics answered here (on the HTTP thread: they read the registry and
    `poller.held` only); the NOC API forwarded to the correlator leader."""

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "role": "poller", "name": poller.name, "shards": sorted(poller.held)})

    return forwarding_app({"/health": health, "/ready": health, "/metrics": metrics_handler(registry)}, forwarder)


def _unchanged(config: Config, resend: float) -> Unchanged:
    """What this poller leaves out of its batches: nothing the correlator's rules could take."""
    return Unchanged(Signer(config.rules), resend)


def changed_lines(old: Topology, new: Topology) -> set[str]:
    """The lines of `new` that `old` lacks or had otherwise (their own record or their device's)."""
    devices = {d for d, device in new.devices.items() if old.devices.get(d) != device}
    return {i for i, line in new.lines.items() if line.device in devices or old.lines.get(i) != line}


def _shards(config: Config, by: str | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """Each device's shard (by `cluster.shard_by`, or `by` once running: a reload does not
    change what a shard is), and each line's device."""
    topology, by = config.topology, by or config.cluster.shard_by
    shard_of = {
        d.id: (d.exchange if by == "exchange" else topology.exchanges[d.exchange].region) for d in topology.devices.values()
    }
    return shard_of, {line.id: line.device for line in topology.lines.values()}


async def run_poller(path: str, config: Config, server: StateServer) -> int:
    """Until SIGTERM or SIGINT; SIGHUP reloads the config."""
    poller = Poller(config, server)
    return await poller.run(on_signals(lambda: poller.reload(path)))
