"""Prometheus metrics read from live state at scrape time (client_python's custom Collector).

Cardinality is bounded by the inventory's devices, not its lines: line counts are per region,
exchange, device and state, probe series per device and probe. One series per subscriber line
(`monitord_line_state`) is exported only with `metrics: {per_line: true}`, for at most
`per_line_limit` lines (default 10,000) in id order; the lines left out are counted in
`monitord_line_series_dropped`, so a cut-off view is never mistaken for a whole one.
Collecting reads live state on the event loop, so the per-device families only copy their
figures there: the line counts the engine keeps as statuses change (`Engine.line_counts`, one
entry per device) and the probes' counters. Their text is formatted in a worker thread and kept
between scrapes, a device's lines formatted again only when its figures changed (`CachedFamily`,
monitord/exposition.py): at a million lines a scrape holds the loop a few ms and costs about
what changed since the last one (docs/benchmarks.md, "/metrics at a million lines").

The registry is injected; the global one is never used.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache, partial
from typing import TYPE_CHECKING, get_args

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from monitord.exposition import CachedFamily, SeriesText
from monitord.model import DeadReason, FailureReason, IncidentKind, RetryReason
from monitord.noc_metrics import LevelFamilies, answers, build_info, open_incidents, poll_failures, snmp_counts
from rules.tally import STATUSES, LineCounts

if TYPE_CHECKING:
    from monitord.view import PollFigures, ProbeStats, View
    from probes.scheduler import JobHealth

PREFIX = "monitord"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, math.inf)
"""Poll durations from one ICMP echo on a LAN to a walk of a 1,000-port DSLAM."""


FAILED_HELP = (
    "Delivery attempts that failed and will be retried, by channel and reason: timeout, unreachable (refused, reset, "
    "no DNS name), rate_limited (429), server_error (5xx, SMTP 4xx), not_ready (the ticket to update is not there yet), "
    "bad_answer (an answer that cannot be read), notifier_bug, other. Attempts refused for the channel's credentials "
    "or settings are not counted (monitord_channel_held)."
)
DEAD_HELP = (
    "Notifications dead-lettered (never delivered), by channel and reason: rejected (the peer refused the item: 4xx, "
    "SMTP 5xx), bad_answer, config (the peer lacks a setting the item needs), expired (older than max_age), "
    "template_error (its text could not be built)."
)


def by_reason(
    family: CounterMetricFamily, channel: str, counts: Counter[FailureReason], known: tuple[FailureReason, ...]
) -> None:
    """Every known reason from the start, at 0: `increase()` cannot see a series' first sample."""
    for reason in sorted({*known, *counts}):
        family.add_metric([channel, reason], counts[reason])


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


def class_health(
    jobs: Iterable[JobHealth],
    job_classes: Mapping[str, str],
    classes: Iterable[str],
    now: float,
    registered: float,
) -> dict[str, ClassHealth]:
    """Per probe class (at least `classes`); a job that never started counts its age from `registered`."""
    health = {probe_class: ClassHealth() for probe_class in classes}
    for key, last_started, lag, backoff in jobs:
        h = health.setdefault(job_classes.get(key, "unknown"), ClassHealth())
        h.lag = max(h.lag, lag or 0.0)
        h.oldest_age = max(h.oldest_age, now - (registered if last_started is None else last_started))
        h.backed_off += backoff > 1
        h.jobs += 1
    return health


HEALTH = {  # ClassHealth's fields: the family and its help
    "lag": (f"{PREFIX}_poll_lag_seconds", "Worst lag of a job's last start behind its slot."),
    "oldest_age": (f"{PREFIX}_poll_oldest_age_seconds", "Longest time since a job last started polling."),
    "backed_off": (f"{PREFIX}_polls_backed_off", "Jobs polling a silent device less often."),
    "jobs": (f"{PREFIX}_poll_jobs", "Polling jobs scheduled."),
}


def _line_samples(place: tuple[str, str, str], counts: LineCounts) -> list[Sample]:
    region, exchange, device = place
    name = f"{PREFIX}_lines"
    return [
        Sample(name, {"region": region, "exchange": exchange, "device": device, "state": status.value}, n)
        for status, n in zip(STATUSES, counts, strict=True)
    ]


def _poll_samples(key: tuple[str, str, str], n: int) -> list[Sample]:
    device, probe, outcome = key
    return [Sample(f"{PREFIX}_device_polls_total", {"device": device, "probe": probe, "outcome": outcome}, n)]


def _duration_samples(key: tuple[str, str], figures: tuple[int, float]) -> list[Sample]:
    labels = {"device": key[0], "probe": key[1]}
    name = f"{PREFIX}_device_poll_duration_seconds"
    return [Sample(f"{name}_count", labels, figures[0]), Sample(f"{name}_sum", labels, figures[1])]


def _class_sample(name: str, key: tuple[str], value: float) -> list[Sample]:
    return [Sample(name, {"probe_class": key[0]}, value)]


class DaemonCollector(Collector):
    def __init__(self, daemon: View) -> None:
        self.daemon = daemon
        self.registered = time.monotonic()
        # the per-device families' text, kept between scrapes (monitord/exposition.py)
        self._line_text = SeriesText(_line_samples)
        self._poll_text = SeriesText(_poll_samples)
        self._duration_text = SeriesText(_duration_samples)
        self._health_text = {field: SeriesText(partial(_class_sample, name)) for field, (name, _) in HEALTH.items()}
        self._levels = LevelFamilies()

    def collect(self) -> Iterator[Metric]:
        d = self.daemon
        polling = d.polling()
        yield from self._lines(d)
        yield from self._incidents(d)
        yield from self._probes(polling.probes)
        yield poll_failures(Counter(polling.probes.failures))
        yield from snmp_counts(polling.snmp)
        yield from self._levels.collect(dict(polling.quality), dict(polling.job_classes), d.config.topology)
        if polling.scheduler is not None:
            yield from self._scheduler(polling, self.registered)
        yield from self._outbox(d)
        yield from self._silences(d)
        yield from answers(d.answer_tally(), d.config.topology.regions)
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
        yield build_info()

    def _lines(self, d: View) -> Iterator[Metric]:
        # one entry per device, copied; the config is replaced on a reload, never changed
        counts, topology = d.line_counts(), d.config.topology

        def by_place() -> dict[tuple[str, str, str], LineCounts]:
            places = {}
            for device_id, by_status in counts.items():
                if any(by_status):  # a device without lines has no series
                    exchange = topology.devices[device_id].exchange
                    places[(topology.exchanges[exchange].region, exchange, device_id)] = by_status
            return places

        yield CachedFamily(
            f"{PREFIX}_lines", "Subscriber lines by state, per region, exchange and device.", "gauge", self._line_text, by_place
        )

        settings = d.config.metrics
        if not settings.per_line:
            return
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
        open_incidents_list = d.open_incidents()
        for kind in IncidentKind:
            of_kind = [i for i in open_incidents_list if i.kind is kind]
            incidents.add_metric([kind.value], len(of_kind))
            affected.add_metric([kind.value], sum(len(i.affected) for i in of_kind))
        yield incidents
        yield affected
        yield open_incidents(open_incidents_list, d.config.topology, d.config.metrics.ticket_link)

    def _probes(self, stats: ProbeStats) -> Iterator[Metric]:
        outcomes, polls, seconds = dict(stats.outcomes), dict(stats.polls), dict(stats.seconds)  # copies, a few ms at 1M lines
        yield CachedFamily(
            f"{PREFIX}_device_polls",
            "Polls of a device, by probe and how the device answered.",
            "counter",
            self._poll_text,
            lambda: outcomes,
        )
        yield CachedFamily(
            f"{PREFIX}_device_poll_duration_seconds",
            "Time spent polling a device, by probe.",
            "summary",
            self._duration_text,
            lambda: {key: (n, seconds[key]) for key, n in polls.items()},
        )
        histogram = HistogramMetricFamily(
            f"{PREFIX}_poll_duration_seconds",
            "How long polls took, by probe.",
            labels=["probe"],
        )
        by_probe: defaultdict[str, Counter[float]] = defaultdict(Counter)
        for (probe, bound), n in stats.durations.items():
            by_probe[probe][bound] += n
        for probe in sorted(by_probe):
            histogram.add_metric([probe], cumulative(by_probe[probe]), stats.probe_seconds[probe])
        yield histogram

    def _scheduler(self, p: PollFigures, registered: float) -> Iterator[Metric]:
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

        # Every job's figures are read in the worker thread (60,000 jobs at a million lines, 0.2 CPU-s):
        # the job list is taken here, on the loop, and the families are worked out once.
        later, now = s.health_later(), time.monotonic()  # the scheduler's clock, as the daemon builds it
        classes = list(p.class_intervals)
        health = cache(lambda: class_health(later(), p.job_classes, classes, now, registered))
        for field_name, (name, documentation) in HEALTH.items():
            yield CachedFamily(
                name,
                documentation,
                "gauge",
                self._health_text[field_name],
                lambda field_name=field_name: {(c,): getattr(h, field_name) for c, h in health().items()},  # type: ignore[misc]
            )
        interval = GaugeMetricFamily(
            f"{PREFIX}_poll_interval_seconds", "Configured interval between polls.", labels=["probe_class"]
        )
        for probe_class in sorted(p.class_intervals):
            interval.add_metric([probe_class], p.class_intervals[probe_class])
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
        failed = CounterMetricFamily(f"{PREFIX}_notifications_failed", FAILED_HELP, labels=["channel", "reason"])
        dead = CounterMetricFamily(f"{PREFIX}_notifications_dead", DEAD_HELP, labels=["channel", "reason"])
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
            by_reason(failed, channel, c.failed_by, get_args(RetryReason))
            by_reason(dead, channel, c.dead_by, get_args(DeadReason))
            hold = holds.get(channel)
            held.add_metric([channel, hold.cause if hold else ""], 1 if hold else 0)
        segments.add_metric([], counts["sms"].segments if "sms" in counts else 0)
        yield from (depth, age, sent, failed, dead, segments, held)

    @staticmethod
    def _silences(d: View) -> Iterator[Metric]:
        now = d.clock()
        live = GaugeMetricFamily(f"{PREFIX}_silences_active", "Silences in force now (the NOC's mutes).")
        live.add_metric([], sum(1 for s in d.silences() if s.start <= now < s.end))
        suppressed = CounterMetricFamily(
            f"{PREFIX}_notifications_suppressed",
            "Tickets, NOC e-mail and Alertmanager pushes a silence held (sent when it ends, if still news) or dropped "
            "(alert re-pushes), by channel.",
            labels=["channel"],
        )
        for channel, n in sorted(d.suppressed.items()):
            suppressed.add_metric([channel], n)
        yield from (live, suppressed)

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


class RoleCollector(Collector):
    """`monitord_role{role="..."} 1`: what this process does among several on one PostgreSQL state."""

    def __init__(self, role: str) -> None:
        self.role = role

    def collect(self) -> Iterator[Metric]:
        role = GaugeMetricFamily(
            "monitord_role", "1, labelled with the role this process runs (monitord run --role).", labels=["role"]
        )
        role.add_metric([self.role], 1)
        yield role
