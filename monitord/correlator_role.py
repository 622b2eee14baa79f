"""`monitord run --role correlator`: the daemon of `--role all` on a PostgreSQL state (one
leads, the others stand by: monitord/standby.py, monitord/leader.py), but polling nothing: its
engine is fed by the pollers' batches (`--role poller`, monitord/feed.py says how each batch is
applied exactly once). What it decides, it writes and delivers as the single process does; its
API answers as that one's does, and `diagnose` still probes from here. The line quality
roll-ups' 5-minute rows are the pollers'; it makes the hourly rows from them. The devices its steps
want polled at once are the pollers' to poll (monitord/rechecks.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitord.config import Config
from monitord.daemon import Daemon
from monitord.feed import BatchFeed
from monitord.polling import PollingJobs
from monitord.rechecks import RecheckSender
from probes.scheduler import Job


class NoPolling(PollingJobs):
    """The correlator's polling jobs: none (its samples come from the pollers)."""

    __slots__ = ()

    def jobs(self, config: Config) -> list[Job]:
        self.job_classes, self.class_intervals = {}, {}
        return []


class Correlator(Daemon):
    """The daemon with the pollers' batches in place of its own polls."""

    def __init__(
        self,
        config: Config,
        *,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] | None = None,
        epoch: int | None = None,
    ) -> None:
        super().__init__(config, registry=registry, clock=clock, epoch=epoch)
        assert config.state_server is not None  # the command line refuses a state_file
        self.probes = NoPolling(self.clock)
        self.feed = BatchFeed(config.state_server)
        self.rechecks = RecheckSender(config.state_server)
        self.pipeline.follow(self.store.batch_cursor())
        self.pipeline.lines.fed = False  # the pollers roll up their own samples (monitord/line_history.py)
        self.registry.register(FeedCollector(self))

    async def run(self, stop: asyncio.Event) -> None:
        """The daemon's run, with the feed running while it does: started once the daemon is
        ready, ended before it stops (so no step follows its last)."""
        halt = asyncio.Event()
        running = asyncio.create_task(super().run(halt))
        feeding: asyncio.Task[None] | None = None
        try:
            started = asyncio.create_task(self.ready.wait())
            await asyncio.wait({running, started}, return_when=asyncio.FIRST_COMPLETED)
            started.cancel()
            if not running.done():
                feeding = asyncio.create_task(self._feed())
                stopping = asyncio.create_task(stop.wait())
                await asyncio.wait({running, feeding, stopping}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
        finally:
            if feeding is not None:
                feeding.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await feeding
            halt.set()
            try:
                await running
            finally:
                self.feed.close()
                self.rechecks.close()
        if feeding is not None and not feeding.cancelled() and feeding.exception() is not None:
            raise feeding.exception()  # type: ignore[misc]

    def _recheck(self, device: str) -> None:
        """Polled at once by the poller that holds its shard (monitord/rechecks.py)."""
        self.rechecks.ask(device)

    async def _feed(self) -> None:
        pipeline = self.pipeline
        while not pipeline.deposed.is_set():
            seq, samples = await self.feed.read(pipeline.through or 0)
            await pipeline.ingest(samples, through=seq)


class FeedCollector(Collector):
    """What the correlator has read of the pollers' batches, and how far its saved state goes."""

    def __init__(self, correlator: Correlator) -> None:
        self.correlator = correlator

    def collect(self) -> Iterator[Metric]:
        feed = self.correlator.feed
        total = CounterMetricFamily("monitord_batches", "Batches of samples read from the pollers.", labels=["result"])
        total.add_metric(["read"], feed.batches)
        total.add_metric(["read_error"], feed.errors)
        total.add_metric(["malformed"], feed.malformed)
        yield total
        cursor = GaugeMetricFamily("monitord_correlator_batch_seq", "The last pollers' batch this correlator's engine took.")
        cursor.add_metric([], self.correlator.pipeline.through or 0)
        yield cursor
        rechecks = self.correlator.rechecks
        asked = CounterMetricFamily(
            "monitord_rechecks", "Devices the pollers were asked to poll at once; failed: NOTIFYs refused.", labels=["result"]
        )
        asked.add_metric(["sent"], rechecks.sent)
        asked.add_metric(["failed"], rechecks.failed)
        yield asked
