"""The metrics collector over a real Daemon, read back with `registry.get_sample_value`.

The first tests feed the daemon's rules engine samples by hand under a clock the test moves;
the last one runs the daemon against the sample ISP with no SNMP agents behind it, so every
walk times out while ICMP on loopback answers: what the metrics report can be told in advance.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from lab.isp import build_sample_isp
from monitord.config import Config, MetricsConfig, load_config
from monitord.daemon import Daemon
from monitord.demo import until
from monitord.metrics import DURATION_BUCKETS, cumulative, duration_bucket, register
from monitord.model import Device, Exchange, Line, NodeRef, Outcome, Region, Sample, Status, Topology
from monitord.quality import QUANTILES, level_limits, quantile, readings
from tests.blocks import own_base

T0 = 1_780_000_000.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def sample_config(root: Path, **extra: Any) -> Config:
    build_sample_isp(root, base=own_base(30), extra=extra)
    return load_config(root / "config.yaml")


def offline(config: Config) -> tuple[Daemon, CollectorRegistry, Clock]:
    """A daemon that is not running: its engine is fed by hand, its metrics read directly."""
    clock = Clock(T0)
    registry = CollectorRegistry()
    daemon = Daemon(config, registry=registry, clock=clock)
    register(registry, daemon)
    return daemon, registry, clock


def healthy(topology: Topology, at: float) -> list[Sample]:
    devices = [Sample(NodeRef("device", d), probe, at, Outcome.OK) for d in topology.devices for probe in ("icmp", "snmp:adsl")]
    return devices + [Sample(NodeRef("line", i), "snmp:adsl", at, Outcome.OK) for i in topology.lines]


def dead(device: str, at: float) -> list[Sample]:
    return [Sample(NodeRef("device", device), probe, at, Outcome.TIMEOUT) for probe in ("icmp", "snmp:adsl")]


def place(topology: Topology, device: str) -> dict[str, str]:
    exchange = topology.devices[device].exchange
    return {"region": topology.exchanges[exchange].region, "exchange": exchange, "device": device}


def samples_of(registry: CollectorRegistry, name: str) -> list[Any]:
    return [s for family in registry.collect() for s in family.samples if s.name == name]


def test_buckets_are_cumulative_with_inclusive_bounds() -> None:
    assert duration_bucket(0.1) == 0.1
    assert duration_bucket(0.1000001) == 0.25
    assert duration_bucket(1e6) == float("inf")
    counts = {duration_bucket(s): 0 for s in DURATION_BUCKETS}
    for seconds in (0.003, 0.1, 0.2, 7.0, 500.0):
        counts[duration_bucket(seconds)] += 1
    buckets = dict(cumulative(counts))  # type: ignore[arg-type]
    assert (buckets["0.005"], buckets["0.1"], buckets["0.25"], buckets["5.0"], buckets["10.0"], buckets["+Inf"]) == (
        1,
        2,
        3,
        3,
        4,
        5,
    )


def test_line_counts_and_incidents_follow_the_rules(tmp_path: Path) -> None:
    daemon, registry, clock = offline(sample_config(tmp_path))
    try:
        topology = daemon.config.topology
        asyncio.run(daemon.pipeline.ingest(healthy(topology, T0)))
        per_device = {d: sum(line.device == d for line in topology.lines.values()) for d in topology.devices}
        for device, count in per_device.items():
            if count:
                assert registry.get_sample_value("monitord_lines", {**place(topology, device), "state": "ok"}) == count
        assert sum(s.value for s in samples_of(registry, "monitord_lines")) == len(topology.lines)

        dslam = min(d for d in topology.devices if topology.devices[d].kind == "dslam")
        clock.now = T0 + 30
        asyncio.run(daemon.pipeline.ingest(dead(dslam, clock.now)))
        where = place(topology, dslam)
        assert registry.get_sample_value("monitord_lines", {**where, "state": "unreachable"}) == per_device[dslam]
        assert registry.get_sample_value("monitord_lines", {**where, "state": "ok"}) == 0
        assert registry.get_sample_value("monitord_incidents_open", {"kind": "outage"}) == 0

        clock.now = T0 + 600
        asyncio.run(daemon.pipeline.tick())
        (incident,) = daemon.open_incidents()
        assert incident.root == NodeRef("device", dslam)
        assert registry.get_sample_value("monitord_incidents_open", {"kind": "outage"}) == 1
        assert registry.get_sample_value("monitord_incident_lines", {"kind": "outage"}) == per_device[dslam]
        assert registry.get_sample_value("monitord_incidents_open", {"kind": "degradation"}) == 0
        assert samples_of(registry, "monitord_line_state") == []  # per-line series are opt-in
        assert registry.get_sample_value("monitord_start_time_seconds") == T0
        (build,) = samples_of(registry, "monitord_build_info")
        assert build.value == 1 and build.labels["version"] == "0.1.0" and build.labels["python"].startswith("3.")

        (annotation,) = samples_of(registry, "monitord_open_incident")
        assert annotation.labels == {
            "tracking": incident.tracking,
            "kind": "outage",
            "root": f"device:{dslam}",
            **place(topology, dslam),
            "ticket": "",
        }
        daemon.config = dataclasses.replace(daemon.config, metrics=MetricsConfig(ticket_link="https://rt.test/q={tracking}&x"))
        (annotation,) = samples_of(registry, "monitord_open_incident")
        assert annotation.labels["ticket"] == f"https://rt.test/q={incident.tracking}&x"
    finally:
        daemon.store.close()


async def test_the_served_text_is_prometheus_clients_and_follows_every_change(tmp_path: Path) -> None:
    """The exposition keeps the per-device lines between scrapes (monitord/exposition.py): after
    each change, what it serves is byte for byte `generate_latest` over the same registry."""
    daemon, registry, clock = offline(sample_config(tmp_path))
    try:
        topology = daemon.config.topology
        dslam = min(d for d in topology.devices if topology.devices[d].kind == "dslam")
        ok = [Sample(NodeRef("device", dslam), "icmp", T0, Outcome.OK)]
        late = [Sample(NodeRef("device", dslam), "snmp:adsl", T0, Outcome.TIMEOUT)]
        changes = [
            lambda: None,
            lambda: daemon.pipeline.ingest(healthy(topology, T0)),
            lambda: daemon.probes._count(topology.devices[dslam], "icmp", ok, 0.004),
            lambda: daemon.probes._count(topology.devices[dslam], "snmp:adsl", late, 2.0),
            lambda: daemon.pipeline.ingest(dead(dslam, T0 + 30)),
            lambda: daemon.probes._count(topology.devices[dslam], "icmp", ok, 0.1),
        ]
        for change in changes:
            if asyncio.iscoroutine(done := change()):
                await done
            rendered = await daemon.exposition.refresh()
            assert rendered == generate_latest(registry)
        body = rendered.decode()
        assert f'monitord_device_polls_total{{device="{dslam}",outcome="timeout",probe="snmp:adsl"}} 1.0' in body
        assert f'monitord_device_poll_duration_seconds_count{{device="{dslam}",probe="icmp"}} 2.0' in body
        where = place(topology, dslam)
        unreachable = registry.get_sample_value("monitord_lines", {**where, "state": "unreachable"})
        assert unreachable == sum(line.device == dslam for line in topology.lines.values()) > 0
    finally:
        daemon.store.close()


def test_line_levels_are_per_device_with_no_series_per_line(tmp_path: Path) -> None:
    """A walk's readings (as `PollingJobs` keeps them) become percentiles and counts per device
    and level; a job a reload removed no longer shows."""
    daemon, registry, _ = offline(sample_config(tmp_path))
    try:
        config, topology = daemon.config, daemon.config.topology
        daemon.probes.job_classes = {job.key: job.probe_class for job in daemon.probes.jobs(config)}
        dslam = min(d for d in topology.devices if topology.devices[d].kind == "dslam")
        (key,) = [k for k in daemon.probes.job_classes if k.startswith(f"snmp:{dslam}:adsl:")]
        lines = sorted(i for i, line in topology.lines.items() if line.device == dslam)
        margins = [3.0 + 2 * n for n in range(len(lines))]  # 3, 5, 7, ... dB: two lines at most 6 dB
        polled = [
            Sample(NodeRef("line", i), "snmp:adsl", T0, Outcome.OK, {"snr_margin_down_db": m}) for i, m in zip(lines, margins)
        ]
        limits = level_limits(config.rules.ruleset("adsl"))
        daemon.probes.quality[key] = (dslam, readings(polled, limits))

        where = {**place(topology, dslam), "metric": "snr_margin_down_db"}
        ordered = sorted(margins)
        for q in QUANTILES:
            assert registry.get_sample_value("monitord_line_level", {**where, "percentile": f"{100 * q:g}"}) == quantile(
                ordered, q
            )
        assert registry.get_sample_value("monitord_line_level_lines", where) == len(lines)
        assert registry.get_sample_value("monitord_line_level_out_of_spec", where) == 2
        families = ("monitord_line_level", "monitord_line_level_lines", "monitord_line_level_out_of_spec")
        assert all("line" not in s.labels for name in families for s in samples_of(registry, name))

        daemon.probes.job_classes = {}
        assert [s for name in families for s in samples_of(registry, name)] == []
    finally:
        daemon.store.close()


def test_per_line_series_stop_at_the_limit_and_count_the_rest(tmp_path: Path) -> None:
    daemon, registry, clock = offline(sample_config(tmp_path, metrics={"per_line": True, "per_line_limit": 30}))
    try:
        topology = daemon.config.topology
        dslam = min(d for d in topology.devices if topology.devices[d].kind == "dslam")
        asyncio.run(daemon.pipeline.ingest(healthy(topology, T0) + dead(dslam, T0)))
        kept = sorted(topology.lines)[:30]
        series = {s.labels["line"]: s for s in samples_of(registry, "monitord_line_state")}
        assert sorted(series) == kept
        for line_id, sample in series.items():
            device = topology.lines[line_id].device
            expected = Status.UNREACHABLE if device == dslam else Status.OK
            assert sample.labels == {"line": line_id, "device": device, "state": expected.value}
            assert sample.value == 1
        assert registry.get_sample_value("monitord_line_series_dropped") == len(topology.lines) - 30
    finally:
        daemon.store.close()


def test_a_scrape_of_100000_lines_stays_fast(tmp_path: Path) -> None:
    """1,000 DSLAMs of 100 lines: the scrape costs one engine look-up per line."""
    base = sample_config(tmp_path)
    regions = {f"r{r}": Region(f"r{r}", f"Region {r}") for r in range(10)}
    exchanges = {f"x{n}": Exchange(f"x{n}", f"Exchange {n}", f"r{n % 10}") for n in range(100)}
    devices = {f"d{n}": Device(f"d{n}", "dslam", f"x{n % 100}", f"127.1.{n // 250}.{n % 250 + 1}", None) for n in range(1000)}
    lines = {f"s{n:06d}": Line(f"s{n:06d}", "Abone", f"d{n // 100}", port=n % 100) for n in range(100_000)}
    config = dataclasses.replace(base, topology=Topology(regions, exchanges, devices, lines), maintenance=())
    daemon, registry, _ = offline(config)
    try:
        started = time.process_time()  # CPU, not wall: other work on the machine does not count
        text = generate_latest(registry)
        seconds = time.process_time() - started
        assert text.count(b"monitord_lines{") == len(devices) * len(Status)
        assert (
            registry.get_sample_value("monitord_lines", {"region": "r3", "exchange": "x3", "device": "d3", "state": "unknown"})
            == 100
        )
        assert seconds < 2.0, f"a scrape of 100,000 lines took {seconds:.2f} CPU-s"

        daemon.config = dataclasses.replace(config, metrics=MetricsConfig(per_line=True))
        text = generate_latest(registry)
        assert text.count(b"monitord_line_state{") == 10_000
        assert registry.get_sample_value("monitord_line_series_dropped") == 90_000
    finally:
        daemon.store.close()


async def test_probe_and_scheduler_metrics_of_a_daemon_whose_agents_are_silent(tmp_path: Path) -> None:
    """Walks wait out timeout x (retries + 1) = 1 s against a 0.5 s interval: every one skips slots."""
    config = sample_config(
        tmp_path,
        snmp={"timeout": "500ms", "retries": 1},
        polling={"icmp_interval": "1s", "line_interval": "500ms", "icmp_timeout": "500ms", "icmp_count": 1, "jitter": 0.1},
    )
    topology = config.topology
    snmp_devices = {d.id: d for d in topology.devices.values() if d.snmp is not None}
    registry = CollectorRegistry()
    daemon = Daemon(config, registry=registry)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))

    def value(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    try:
        await until(lambda: daemon.ready.is_set() or task.done(), 30, "the daemon to start")
        walks = [(d.id, f"snmp:{p}") for d in snmp_devices.values() for p in d.profiles]
        await until(
            lambda: all(value("monitord_device_polls_total", device=d, probe=p, outcome="timeout") for d, p in walks)
            and all(value("monitord_device_polls_total", device=d, probe="icmp", outcome="ok") for d in topology.devices)
            and value("monitord_polls_skipped_total", probe_class="line") > 0,
            20,
            "every device polled, walks timing out and skipping slots",
        )
        for device, probe in walks:
            assert value("monitord_device_polls_total", device=device, probe=probe, outcome="ok") == 0
            count = value("monitord_device_poll_duration_seconds_count", device=device, probe=probe)
            assert count >= 1
            assert value("monitord_device_poll_duration_seconds_sum", device=device, probe=probe) >= 0.9 * count
        for device in topology.devices:
            assert value("monitord_device_polls_total", device=device, probe="icmp", outcome="timeout") == 0

        adsl = {"probe": "snmp:adsl"}
        total = registry.get_sample_value("monitord_poll_duration_seconds_count", adsl)
        assert total == sum(
            s.value
            for s in samples_of(registry, "monitord_device_poll_duration_seconds_count")
            if s.labels["probe"] == "snmp:adsl"
        )
        assert registry.get_sample_value("monitord_poll_duration_seconds_bucket", {**adsl, "le": "0.5"}) == 0
        assert registry.get_sample_value("monitord_poll_duration_seconds_bucket", {**adsl, "le": "+Inf"}) == total

        jobs_per_class = {"icmp": len(topology.devices), "line": sum(len(d.profiles) for d in snmp_devices.values())}
        for probe_class, jobs in jobs_per_class.items():
            assert value("monitord_poll_jobs", probe_class=probe_class) == jobs
        assert value("monitord_poll_interval_seconds", probe_class="icmp") == 1.0
        assert value("monitord_poll_interval_seconds", probe_class="line") == 0.5
        assert value("monitord_poll_errors_total", probe_class="line") == 0
        await until(
            lambda: value("monitord_polls_backed_off", probe_class="line") == jobs_per_class["line"],
            10,
            "silent walks backing off",
        )
        assert value("monitord_polls_backed_off", probe_class="icmp") == 0
        assert 0 < value("monitord_poll_oldest_age_seconds", probe_class="icmp") < 10

        for kind in {d.kind for d in snmp_devices.values()}:
            # No agent answers: each request is sent twice (retries: 1), then times out. A request
            # still waiting (at most one per job) has sent without timing out yet.
            jobs = sum(len(d.profiles) for d in snmp_devices.values() if d.kind == kind)
            timeouts = value("monitord_snmp_timeouts_total", device_kind=kind)
            retries = value("monitord_snmp_retries_total", device_kind=kind)
            sent = value("monitord_snmp_packets_sent_total", device_kind=kind)
            assert timeouts > 0
            assert timeouts <= retries <= timeouts + jobs
            assert 0 <= sent - retries - timeouts <= jobs
        failures = {
            (s.labels["probe"], s.labels["device_kind"], s.labels["reason"])
            for s in samples_of(registry, "monitord_poll_failures_total")
        }
        assert failures == {(p, topology.devices[d].kind, "timeout") for d, p in walks}  # ICMP answers on loopback
    finally:
        stop.set()
        await task
