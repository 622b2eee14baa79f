"""Prometheus metrics read from live state at scrape time (client_python's custom Collector).

Cardinality is bounded by the inventory's devices, not its lines: line counts are per region,
exchange and device. The registry is injected; the global one is never used.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitord.model import IncidentKind, Status

if TYPE_CHECKING:
    from monitord.daemon import Daemon

PREFIX = "monitord"


class DaemonCollector(Collector):
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def collect(self) -> Iterator[Metric]:
        d = self.daemon
        yield from self._lines(d.status_counts())

        incidents = GaugeMetricFamily(f"{PREFIX}_incidents_open", "Open incidents by kind.", labels=["kind"])
        by_kind = Counter(i.kind.value for i in d.open_incidents())
        for kind in IncidentKind:
            incidents.add_metric([kind.value], by_kind[kind.value])
        yield incidents

        outcomes = CounterMetricFamily(f"{PREFIX}_probe_results", "Device polls by probe and outcome.", labels=["device", "probe", "outcome"])
        for (device, probe, outcome), n in sorted(d.stats.outcomes.items()):
            outcomes.add_metric([device, probe, outcome], n)
        yield outcomes
        seconds = CounterMetricFamily(f"{PREFIX}_probe_seconds", "Time spent polling, by device and probe.", labels=["device", "probe"])
        polls = CounterMetricFamily(f"{PREFIX}_probe_polls", "Polls run, by device and probe.", labels=["device", "probe"])
        for key in sorted(d.stats.polls):
            seconds.add_metric(list(key), d.stats.seconds[key])
            polls.add_metric(list(key), d.stats.polls[key])
        yield seconds
        yield polls

        if d.scheduler is not None:
            yield from self._scheduler(d)
        yield from self._outbox(d)

        up = GaugeMetricFamily(f"{PREFIX}_start_time_seconds", "When the daemon started (Unix time).")
        up.add_metric([], d.started)
        yield up

    @staticmethod
    def _lines(counts: Counter[tuple[str, str, str, str]]) -> Iterator[Metric]:
        lines = GaugeMetricFamily(
            f"{PREFIX}_lines", "Subscriber lines by state, per region, exchange and device.",
            labels=["region", "exchange", "device", "state"],
        )
        devices = sorted({key[:3] for key in counts})
        for place in devices:
            for status in Status:
                lines.add_metric([*place, status.value], counts.get((*place, status.value), 0))
        yield lines

    @staticmethod
    def _scheduler(d: Daemon) -> Iterator[Metric]:
        s = d.scheduler
        skipped = CounterMetricFamily(f"{PREFIX}_polls_skipped", "Polls skipped because the previous one was still running.", labels=["probe_class"])
        for probe_class, n in sorted(s.skipped.items()):
            skipped.add_metric([probe_class], n)
        yield skipped
        lag = GaugeMetricFamily(f"{PREFIX}_poll_lag_seconds", "Worst lag of a poll's start behind its schedule, by probe class.", labels=["probe_class"])
        duration = GaugeMetricFamily(f"{PREFIX}_poll_duration_seconds", "Longest last poll duration, by probe class.", labels=["probe_class"])
        backoff = GaugeMetricFamily(f"{PREFIX}_polls_backed_off", "Jobs polling a silent device less often, by probe class.", labels=["probe_class"])
        worst: dict[str, list[float]] = {}
        for key, stats in s.stats.items():
            entry = worst.setdefault(d.job_classes.get(key, "unknown"), [0.0, 0.0, 0])
            entry[0] = max(entry[0], stats.lag or 0.0)
            entry[1] = max(entry[1], stats.last_duration or 0.0)
            entry[2] += stats.backoff > 1
        for probe_class, (worst_lag, worst_duration, backed_off) in sorted(worst.items()):
            lag.add_metric([probe_class], worst_lag)
            duration.add_metric([probe_class], worst_duration)
            backoff.add_metric([probe_class], backed_off)
        yield lag
        yield duration
        yield backoff

    @staticmethod
    def _outbox(d: Daemon) -> Iterator[Metric]:
        now = time.time()
        depth = GaugeMetricFamily(f"{PREFIX}_outbox_depth", "Notifications waiting to be delivered, by channel.", labels=["channel"])
        age = GaugeMetricFamily(f"{PREFIX}_outbox_oldest_age_seconds", "Age of the oldest waiting notification, by channel.", labels=["channel"])
        channels = sorted(d.outbox.counts) if d.outbox else []
        for channel in channels:
            depth.add_metric([channel], d.store.depth(channel))
            age.add_metric([channel], d.store.oldest_age(now, channel))
        yield depth
        yield age
        sent = CounterMetricFamily(f"{PREFIX}_notifications_sent", "Notifications delivered, by channel.", labels=["channel"])
        failed = CounterMetricFamily(f"{PREFIX}_notifications_failed", "Delivery attempts that failed and will be retried.", labels=["channel"])
        dead = CounterMetricFamily(f"{PREFIX}_notifications_dead", "Notifications dead-lettered (never delivered).", labels=["channel"])
        segments = CounterMetricFamily(f"{PREFIX}_sms_segments", "SMS segments sent (what the SMS gateway bills).")
        for channel in channels:
            c = d.outbox.counts[channel]
            sent.add_metric([channel], c.sent)
            failed.add_metric([channel], c.failed)
            dead.add_metric([channel], c.dead)
            if channel == "sms":
                segments.add_metric([], c.segments)
        yield sent
        yield failed
        yield dead
        yield segments


def register(registry: CollectorRegistry, daemon: Daemon) -> None:
    registry.register(DaemonCollector(daemon))
