"""Prometheus metrics read from live state at scrape time (client_python's custom Collector).

Cardinality is bounded by the inventory's devices, not its lines: line counts are per region,
exchange, device and state, probe series per device and probe. One series per subscriber line
(`monitord_line_state`) is exported only with `metrics: {per_line: true}`, for at most
`per_line_limit` lines (default 10,000) in id order; the lines left out are counted in
`monitord_line_series_dropped`, so a cut-off view is never mistaken for a whole one.
Collecting reads live state on the event loop: the line counts come per device from the engine
(`Engine.line_counts`, about 0.1 s CPU at 100,000 lines on a loaded machine, against 0.45 s one
look-up per line), the text is formatted in a worker thread and scrapes are served from the last
rendering (monitord/exposition.py).

The registry is injected; the global one is never used.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from monitord.model import IncidentKind, Status

if TYPE_CHECKING:
    from monitord.view import PollFigures, ProbeStats, View

PREFIX = "monitord"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, math.inf)
"""Poll durations from one ICMP echo on a LAN to a walk of a 1,000-port DSLAM."""


def duration_bucket(seconds: float) -> float:
    """The histogram bucket (upper bound) a poll of `seconds` falls in."""
    return DURATION_BUCKETS[bisect_left(DURATION_BUCKETS, seconds)]


def cumulative(counts: Counter[float]) -> list[tuple[str, float]]:
    """Per-bucket counts -> Prometheus's cumulative `le` buckets."""
    total = 0.0
    buckets = []
    for bound in DURATION_BUCKETS:
        total += counts[bound]
        buckets.append(("+Inf" if bound == math.inf else repr(bound), total))
    return buckets


@dataclass(slots=True)
class ClassHealth:
    """The worst of one probe class's jobs, as the scheduler last saw them."""

    lag: float = 0.0
    oldest_age: float = 0.0
    backed_off: int = 0
    jobs: int = 0


def class_health(p: PollFigures, now: float, registered: float) -> dict[str, ClassHealth]:
    """Per probe class; a job that never started counts its age from `registered`."""
    assert p.scheduler is not None
    health = {probe_class: ClassHealth() for probe_class in p.class_intervals}
    for key, job in p.scheduler.stats.items():
        h = health.setdefault(p.job_classes.get(key, "unknown"), ClassHealth())
        h.lag = max(h.lag, job.lag or 0.0)
        h.oldest_age = max(h.oldest_age, now - (registered if job.last_started is None else job.last_started))
        h.backed_off += job.backoff > 1
        h.jobs += 1
    return health


class DaemonCollector(Collector):
    def __init__(self, daemon: View) -> None:
        self.daemon = daemon
        self.registered = time.monotonic()

    def collect(self) -> Iterator[Metric]:
        d = self.daemon
        polling = d.polling()
        yield from self._lines(d)
        yield from self._incidents(d)
        yield from self._probes(polling.probes)
        if polling.scheduler is not None:
            yield from self._scheduler(polling, self.registered)
        yield from self._outbox(d)
        yield from self._store(d)
        lag = GaugeMetricFamily(
            f"{PREFIX}_event_loop_lag_seconds",
            "The worst delay of the event loop in the last one to two minutes (a stall holds every poll and answer).",
        )
        lag.add_metric([], d.lag.worst())
        yield lag
        if polling.traps is not None:
            yield from self._traps(polling.traps.received, polling.traps.dropped)
        start = GaugeMetricFamily(f"{PREFIX}_start_time_seconds", "When the daemon started (Unix time).")
        start.add_metric([], d.started)
        yield start

    @staticmethod
    def _lines(d: View) -> Iterator[Metric]:
        counts = d.status_counts()
        lines = GaugeMetricFamily(
            f"{PREFIX}_lines",
            "Subscriber lines by state, per region, exchange and device.",
            labels=["region", "exchange", "device", "state"],
        )
        for place in sorted({key[:3] for key in counts}):
            for status in Status:
                lines.add_metric([*place, status.value], counts.get((*place, status.value), 0))
        yield lines

        settings = d.config.metrics
        if not settings.per_line:
            return
        topology = d.config.topology
        ids = sorted(topology.lines)
        kept = ids[: settings.per_line_limit]
        per_line = GaugeMetricFamily(
            f"{PREFIX}_line_state",
            "1 for each subscriber line's current state (metrics.per_line).",
            labels=["line", "device", "state"],
        )
        for line_id in kept:
            per_line.add_metric([line_id, topology.lines[line_id].device, d.line_state(line_id).status.value], 1)
        yield per_line
        dropped = GaugeMetricFamily(
            f"{PREFIX}_line_series_dropped",
            "Lines without a monitord_line_state series (over metrics.per_line_limit).",
        )
        dropped.add_metric([], len(ids) - len(kept))
        yield dropped

    @staticmethod
    def _incidents(d: View) -> Iterator[Metric]:
        incidents = GaugeMetricFamily(f"{PREFIX}_incidents_open", "Unresolved incidents by kind.", labels=["kind"])
        affected = GaugeMetricFamily(
            f"{PREFIX}_incident_lines", "Subscriber lines affected by unresolved incidents, by kind.", labels=["kind"]
        )
        open_incidents = d.open_incidents()
        for kind in IncidentKind:
            of_kind = [i for i in open_incidents if i.kind is kind]
            incidents.add_metric([kind.value], len(of_kind))
            affected.add_metric([kind.value], sum(len(i.affected) for i in of_kind))
        yield incidents
        yield affected

    @staticmethod
    def _probes(stats: ProbeStats) -> Iterator[Metric]:
        polls = CounterMetricFamily(
            f"{PREFIX}_device_polls",
            "Polls of a device, by probe and how the device answered.",
            labels=["device", "probe", "outcome"],
        )
        for (device, probe, outcome), n in sorted(stats.outcomes.items()):
            polls.add_metric([device, probe, outcome], n)
        yield polls
        per_device = SummaryMetricFamily(
            f"{PREFIX}_device_poll_duration_seconds",
            "Time spent polling a device, by probe.",
            labels=["device", "probe"],
        )
        seconds_by_probe: defaultdict[str, float] = defaultdict(float)
        for (device, probe), n in sorted(stats.polls.items()):
            per_device.add_metric([device, probe], n, stats.seconds[(device, probe)])
            seconds_by_probe[probe] += stats.seconds[(device, probe)]
        yield per_device
        histogram = HistogramMetricFamily(
            f"{PREFIX}_poll_duration_seconds",
            "How long polls took, by probe.",
            labels=["probe"],
        )
        by_probe: defaultdict[str, Counter[float]] = defaultdict(Counter)
        for (probe, bound), n in stats.durations.items():
            by_probe[probe][bound] += n
        for probe in sorted(by_probe):
            histogram.add_metric([probe], cumulative(by_probe[probe]), seconds_by_probe[probe])
        yield histogram

    @staticmethod
    def _scheduler(p: PollFigures, registered: float) -> Iterator[Metric]:
        s = p.scheduler
        assert s is not None
        skipped = CounterMetricFamily(
            f"{PREFIX}_polls_skipped",
            "Polls skipped because the job's previous run was still going.",
            labels=["probe_class"],
        )
        errors = CounterMetricFamily(
            f"{PREFIX}_poll_errors",
            "Poll runs that raised (a bug, not a silent device).",
            labels=["probe_class"],
        )
        timeouts = CounterMetricFamily(
            f"{PREFIX}_poll_timeouts",
            "Poll runs cancelled after polling.job_timeout.",
            labels=["probe_class"],
        )
        for probe_class in sorted(set(p.class_intervals) | set(s.skipped) | set(s.errors) | set(s.timeouts)):
            skipped.add_metric([probe_class], s.skipped[probe_class])
            errors.add_metric([probe_class], s.errors[probe_class])
            timeouts.add_metric([probe_class], s.timeouts[probe_class])
        yield skipped
        yield errors
        yield timeouts

        health = class_health(p, time.monotonic(), registered)  # the scheduler's clock, as the daemon builds it
        families = {
            "lag": GaugeMetricFamily(
                f"{PREFIX}_poll_lag_seconds", "Worst lag of a job's last start behind its slot.", labels=["probe_class"]
            ),
            "oldest_age": GaugeMetricFamily(
                f"{PREFIX}_poll_oldest_age_seconds", "Longest time since a job last started polling.", labels=["probe_class"]
            ),
            "backed_off": GaugeMetricFamily(
                f"{PREFIX}_polls_backed_off", "Jobs polling a silent device less often.", labels=["probe_class"]
            ),
            "jobs": GaugeMetricFamily(f"{PREFIX}_poll_jobs", "Polling jobs scheduled.", labels=["probe_class"]),
        }
        interval = GaugeMetricFamily(
            f"{PREFIX}_poll_interval_seconds", "Configured interval between polls.", labels=["probe_class"]
        )
        for probe_class, h in sorted(health.items()):
            for name, family in families.items():
                family.add_metric([probe_class], getattr(h, name))
            if probe_class in p.class_intervals:
                interval.add_metric([probe_class], p.class_intervals[probe_class])
        yield from families.values()
        yield interval

    @staticmethod
    def _outbox(d: View) -> Iterator[Metric]:
        now = d.clock()
        depth = GaugeMetricFamily(
            f"{PREFIX}_outbox_depth", "Notifications waiting to be delivered, by channel.", labels=["channel"]
        )
        age = GaugeMetricFamily(
            f"{PREFIX}_outbox_oldest_age_seconds", "Age of the oldest waiting notification, by channel.", labels=["channel"]
        )
        sent = CounterMetricFamily(f"{PREFIX}_notifications_sent", "Notifications delivered, by channel.", labels=["channel"])
        failed = CounterMetricFamily(
            f"{PREFIX}_notifications_failed", "Delivery attempts that failed and will be retried.", labels=["channel"]
        )
        dead = CounterMetricFamily(
            f"{PREFIX}_notifications_dead", "Notifications dead-lettered (never delivered).", labels=["channel"]
        )
        segments = CounterMetricFamily(f"{PREFIX}_sms_segments", "SMS segments sent (what the SMS gateway bills).")
        held = GaugeMetricFamily(
            f"{PREFIX}_channel_held",
            "1 while the peer refuses the channel's credentials or settings (reason: credentials, "
            "forbidden, config) or keeps failing (reason: unavailable: 5xx, 429, refused); nothing but a probe is sent "
            "until it works again.",
            labels=["channel", "reason"],
        )
        delivery = d.delivery()
        holds, counts, backlog = delivery.holds, delivery.counts, delivery.backlog
        for channel in sorted(counts):
            c = counts[channel]
            waiting, since = backlog.get(channel, (0, now))
            depth.add_metric([channel], waiting)
            age.add_metric([channel], max(0.0, now - since))
            sent.add_metric([channel], c.sent)
            failed.add_metric([channel], c.failed)
            dead.add_metric([channel], c.dead)
            hold = holds.get(channel)
            held.add_metric([channel, hold.cause if hold else ""], 1 if hold else 0)
        segments.add_metric([], counts["sms"].segments if "sms" in counts else 0)
        yield from (depth, age, sent, failed, dead, segments, held)

    @staticmethod
    def _store(d: View) -> Iterator[Metric]:
        failures = CounterMetricFamily(
            f"{PREFIX}_store_write_failures", "Engine steps the state file refused to take (e.g. disk full)."
        )
        failures.add_metric([], d.write_failures)
        unwritten = GaugeMetricFamily(
            f"{PREFIX}_store_unwritten", "Decisions kept in memory until the state file takes them, by kind.", labels=["kind"]
        )
        pending = d.unwritten
        unwritten.add_metric(["incidents"], len(pending.incidents) if pending else 0)
        unwritten.add_metric(["notices"], len(pending.planned) if pending else 0)
        yield from (failures, unwritten)

    @staticmethod
    def _traps(received: Counter[str], dropped: Counter[str]) -> Iterator[Metric]:
        accepted = CounterMetricFamily(
            f"{PREFIX}_traps_received", "SNMP notifications accepted (each rechecks its device), by name.", labels=["trap"]
        )
        refused = CounterMetricFamily(
            f"{PREFIX}_traps_dropped", "SNMP notification datagrams dropped, by reason.", labels=["reason"]
        )
        for name in sorted(received):
            accepted.add_metric([name], received[name])
        for reason in sorted(dropped):
            refused.add_metric([reason], dropped[reason])
        yield from (accepted, refused)


def register(registry: CollectorRegistry, daemon: View) -> None:
    registry.register(DaemonCollector(daemon))
