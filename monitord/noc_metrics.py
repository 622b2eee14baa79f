"""The NOC dashboard's own families: build info, line quality per device, open incidents for
Grafana's annotations, failed polls by reason, SNMP datagrams per device class, and the
customers' answers after a repair per region.

None has a series per subscriber line. Line quality is per device and level (monitord/quality.py);
an open incident has a series only when it is rooted above a line (a device, cabinet, exchange
or region: at most the nodes of the inventory, and only while it is open); a line's own incident
(one silent modem, one noisy line) is counted in `monitord_incidents_open`, never named.
"""

from __future__ import annotations

import importlib.metadata
import platform
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cache, partial

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.samples import Sample

from monitord.exposition import CachedFamily, SeriesText
from monitord.model import Incident, NodeRef, Topology
from monitord.quality import QUANTILES, Readings, Summary, summarize
from notices.inbound import SCORES
from probes.snmp import SnmpCounts

PREFIX = "monitord"
Place = tuple[str, str, str, str]  # region, exchange, device, metric


def build_info() -> GaugeMetricFamily:
    info = GaugeMetricFamily(
        f"{PREFIX}_build_info",
        "1, labelled with the versions running: monitord, Python and pysnmp.",
        labels=["version", "python", "pysnmp"],
    )
    info.add_metric([_version("monitord"), platform.python_version(), _version("pysnmp")], 1)
    return info


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class Summaries:
    """Each device's levels summarized once per poll of it, where /metrics is formatted (a
    worker thread): a summary is kept as long as the poll's `Readings` are the latest."""

    def __init__(self) -> None:
        # Two mappings, not one of (readings, summary) pairs: a pair per device and level lives a
        # poll long, into the GC's oldest generation, and every full pass walks it.
        self._readings: dict[Place, Readings] = {}  # what each summary was made of
        self._summaries: dict[Place, Summary] = {}
        self._lock = threading.Lock()  # two listeners' renderings may overlap

    def of(self, latest: Mapping[Place, Readings]) -> dict[Place, Summary]:
        with self._lock:
            summaries: dict[Place, Summary] = {}
            for place, readings in latest.items():
                summary = self._summaries.get(place)
                if summary is None or self._readings.get(place) is not readings:
                    summary = summarize(readings)
                summaries[place] = summary
            self._readings, self._summaries = dict(latest), summaries
            return summaries


def places(
    quality: Mapping[str, tuple[str, tuple[Readings, ...]]], jobs: Mapping[str, object], topology: Topology
) -> dict[Place, Readings]:
    """Per device and level, the latest readings of the jobs still scheduled (a reload may have
    dropped some); two profiles of a device reading one level: the later job's, by key."""
    found: dict[Place, Readings] = {}
    for key in sorted(quality.keys() & jobs.keys()):
        device_id, levels = quality[key]
        device = topology.devices.get(device_id)
        if device is None:
            continue
        region = topology.exchanges[device.exchange].region
        for readings in levels:
            found[(region, device.exchange, device_id, readings.metric)] = readings
    return found


def _labels(place: Place) -> dict[str, str]:
    return dict(zip(("region", "exchange", "device", "metric"), place, strict=True))


def _level_samples(place: Place, summary: Summary) -> list[Sample]:
    name, labels = f"{PREFIX}_line_level", _labels(place)
    return [Sample(name, {**labels, "percentile": f"{100 * q:g}"}, v) for q, v in zip(QUANTILES, summary.quantiles, strict=True)]


def _count_sample(name: str, field: str, place: Place, summary: Summary) -> list[Sample]:
    return [Sample(name, _labels(place), getattr(summary, field))]


LEVEL_FAMILIES = (  # name, help, the samples of one device's level
    (
        f"{PREFIX}_line_level",
        "The 10th, 50th and 90th percentile (nearest rank) of a level over a device's lines, as last polled: SNR "
        "margin, attenuation, optical or RF power; the unit is the metric label's suffix (dB, dBm, dBmV). Not a "
        "summary: 'percentile', not 'quantile', as promtool asks of a gauge.",
        _level_samples,
    ),
    (
        f"{PREFIX}_line_level_lines",
        "Lines of the device with a reading of the level in its last poll.",
        partial(_count_sample, f"{PREFIX}_line_level_lines", "lines"),
    ),
    (
        f"{PREFIX}_line_level_out_of_spec",
        "Lines whose last reading is on the bad side of a threshold of their rules (the hold aside).",
        partial(_count_sample, f"{PREFIX}_line_level_out_of_spec", "out_of_spec"),
    ),
)


class LevelFamilies:
    """The three line-level families, their text kept between scrapes (`SeriesText`)."""

    def __init__(self) -> None:
        self._summaries = Summaries()
        self._texts = [SeriesText(samples) for _, _, samples in LEVEL_FAMILIES]

    def collect(
        self, quality: Mapping[str, tuple[str, tuple[Readings, ...]]], jobs: Mapping[str, object], topology: Topology
    ) -> Iterator[Metric]:
        """`quality` and `jobs` are copies taken on the loop; the rest runs where the text is made."""
        summaries: Callable[[], dict[Place, Summary]] = cache(lambda: self._summaries.of(places(quality, jobs, topology)))
        for (name, documentation, _), text in zip(LEVEL_FAMILIES, self._texts, strict=True):
            yield CachedFamily(name, documentation, "gauge", text, summaries)


def place_of(topology: Topology, root: NodeRef) -> tuple[str, str, str]:
    """Region, exchange and device of an incident's root ("" above it, or gone from the inventory)."""
    try:
        nodes = (root, *topology.ancestors(root))
    except (KeyError, StopIteration):  # the node left the inventory in a reload, its incident still open
        return "", "", ""
    ids = {node.level: node.id for node in nodes}
    return ids.get("region", ""), ids.get("exchange", ""), ids.get("device", "")


def open_incidents(incidents: list[Incident], topology: Topology, ticket_link: str | None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        f"{PREFIX}_open_incident",
        "1 for each unresolved incident rooted above a line (device, cabinet, exchange, region), for "
        "Grafana's annotations; ticket is metrics.ticket_link with its tracking number.",
        labels=["tracking", "kind", "root", "region", "exchange", "device", "ticket"],
    )
    for incident in incidents:
        if incident.root.level != "line":
            ticket = ticket_link.replace("{tracking}", incident.tracking) if ticket_link else ""
            place = place_of(topology, incident.root)
            family.add_metric([incident.tracking, incident.kind.value, str(incident.root), *place, ticket], 1)
    return family


def poll_failures(failures: Counter[tuple[str, str, str]]) -> CounterMetricFamily:
    family = CounterMetricFamily(
        f"{PREFIX}_poll_failures",
        "Polls a device did not answer well, by probe, device kind and reason: timeout, unreachable, auth_failure, "
        "malformed (undecodable or looping replies), error_status (the agent's), walk_limit (rows, requests or time), "
        "agent_error (any other), not_found, no_table.",
        labels=["probe", "device_kind", "reason"],
    )
    for key in sorted(failures):
        family.add_metric(list(key), failures[key])
    return family


SNMP_FAMILIES = (  # name, help, `SnmpCounts` field
    (f"{PREFIX}_snmp_packets_sent", "SNMP request datagrams sent, resends included, by device kind.", "sent"),
    (f"{PREFIX}_snmp_retries", "SNMP requests sent again after a timeout, by device kind.", "retries"),
    (f"{PREFIX}_snmp_timeouts", "SNMP requests unanswered after every retry, by device kind.", "timeouts"),
)


def snmp_counts(counts: Mapping[str, SnmpCounts]) -> Iterator[Metric]:
    """`counts`: device kind -> the SNMP client's counters."""
    for name, documentation, field in SNMP_FAMILIES:
        family = CounterMetricFamily(name, documentation, labels=["device_kind"])
        for kind in sorted(counts):
            family.add_metric([kind], getattr(counts[kind], field))
        yield family


def answers(tally: Mapping[tuple[str, str], int], regions: Iterable[str]) -> Iterator[Metric]:
    """The answers to "does it work?" and to the survey, counted per region as the store keeps
    them (monitord/sms_inbound.py). Every region of the inventory has its series from the start, at
    0: a counter first seen at 1 would hide its first answer from increase()."""
    confirmations = CounterMetricFamily(
        f"{PREFIX}_repair_confirmations",
        "Answers to the question after a repair, by the subscriber's region: works or not_fixed (a follow-up ticket).",
        labels=["region", "answer"],
    )
    responses = CounterMetricFamily(
        f"{PREFIX}_survey_responses",
        "Satisfaction survey answers, by the subscriber's region and score (1 to 5).",
        labels=["region", "score"],
    )
    points = CounterMetricFamily(
        f"{PREFIX}_survey_score_points",
        "The survey's scores added up, by region: over monitord_survey_responses_total, the mean score.",
        labels=["region"],
    )
    for region in sorted(set(regions) | {region for region, _ in tally}):
        for answer in ("works", "not_fixed"):
            confirmations.add_metric([region, answer], tally.get((region, answer), 0))
        for score in SCORES:
            responses.add_metric([region, score], tally.get((region, score), 0))
        points.add_metric([region], sum(int(score) * tally.get((region, score), 0) for score in SCORES))
    yield from (confirmations, responses, points)
