"""A real Prometheus scraping a real daemon on the simulated ISP, and promtool on what we ship.

Prometheus scrapes the daemon every second and evaluates prometheus/alerts.yml; the test reads
the daemon's state back through Prometheus's HTTP API and waits for it to equal the daemon's
own view. Every metric the Grafana dashboard and the alert rules use must be one the daemon
exports (`up` is the one series Prometheus adds for each target itself), and every query of the
dashboard (panels, annotations, variables) must parse in promtool and return series from that
Prometheus once the simulated ISP has had an outage.

Grafana itself cannot run here. The dashboard is validated against Grafana's dashboard schema
as Grafana publishes it (CUE, kinds/dashboard/dashboard_kind.cue), translated to JSON Schema
in tests/fixtures/grafana/dashboard.schema.json (its source and what was left out are named there).
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest
import yaml
from prometheus_client import CollectorRegistry

from lab.world import World, start_world, stop_world
from monitord.config import load_config
from monitord.daemon import Daemon
from monitord.demo import until
from monitord.model import Status
from notifiers.sms import sms_segments
from tests.blocks import own_base

REPO = Path(__file__).resolve().parent.parent
ALERTS = REPO / "prometheus" / "alerts.yml"
DASHBOARD = REPO / "grafana" / "monitord-noc.json"
DASHBOARD_SCHEMA = REPO / "tests" / "fixtures" / "grafana" / "dashboard.schema.json"
SYNTHESIZED = {"up"}  # added by Prometheus for every target, not exported by the daemon

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are not functions,
    aggregations, keywords, label names in by/on/... lists, or inside matchers and ranges."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][\w:]*", expr):
        if match.group() not in PROMQL_WORDS and not expr[match.end() :].lstrip().startswith("("):
            names.add(match.group())
    return names


def dashboard_queries() -> dict[str, str]:
    """Where in the dashboard -> its PromQL: panel targets, annotations, and the series selector
    of each variable's label_values()."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries = {f"panel {p['id']} {p['title']} {t['refId']}": t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])}
    for annotation in dashboard["annotations"]["list"]:
        if "expr" in annotation:
            queries[f"annotation {annotation['name']}"] = annotation["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            selector = re.fullmatch(r"label_values\((.+), *(\w+)\)", variable["definition"])
            assert selector is not None, variable["definition"]
            queries[f"variable {variable['name']}"] = selector.group(1)
    return queries


def dashboard_exprs() -> list[str]:
    return list(dashboard_queries().values())


GRAFANA_VALUES = {"$__rate_interval": "1m", "$level": "snr_margin_down_db"}  # the rest: All (".*")


def as_grafana_sends(expr: str) -> str:
    """The query as Grafana sends it with every variable at its default."""
    for variable, value in GRAFANA_VALUES.items():
        expr = expr.replace(variable, value)
    return re.sub(r"\$\w+", ".*", expr)


def rule_exprs() -> list[str]:
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], input=stdin, capture_output=True, text=True, cwd=REPO, timeout=60)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- what we ship, checked without a daemon ------------------------------------------------------


def test_metric_names_are_read_from_promql() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (probe, le) (rate(a_bucket{instance=~"$x", s="b c"}[$__rate_interval])))'
        ' / on (instance) group_left (exchange) b > bool 1e3 unless c offset 5m'
    )
    assert metric_names(expr) == {"a_bucket", "b", "c"}


def test_promtool_accepts_the_rules_their_unit_tests_and_the_example_config() -> None:
    for args in (
        ("check", "rules", str(ALERTS)),
        ("test", "rules", "prometheus/alerts_test.yml"),
        ("check", "config", "prometheus/prometheus.yml"),
    ):
        done = promtool(*args)
        assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}"
    assert "SUCCESS: 9 rules found" in promtool("check", "rules", str(ALERTS)).stdout


def test_the_dashboard_is_grafana_json_with_the_noc_panels() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    schema = json.loads(DASHBOARD_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in jsonschema.Draft202012Validator(schema).iter_errors(dashboard)]
    assert errors == []
    assert dashboard["schemaVersion"] == 39 and dashboard["uid"] == "monitord-noc"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    for name, label in (("region", "region"), ("exchange", "exchange"), ("device", "device"), ("level", "metric")):
        assert variables[name]["type"] == "query" and variables[name]["definition"].endswith(f", {label})")
    assert "region=~\"$region\"" in variables["exchange"]["definition"]
    assert "exchange=~\"$exchange\"" in variables["device"]["definition"]
    (incidents,) = [a for a in dashboard["annotations"]["list"] if a["name"] == "Incidents"]
    assert "monitord_open_incident" in incidents["expr"] and "{{ticket}}" in incidents["textFormat"]
    used = set().union(*map(metric_names, dashboard_exprs()))
    for needed in (
        "monitord_lines",
        "monitord_open_incident",
        "monitord_build_info",
        "monitord_line_level",
        "monitord_line_level_lines",
        "monitord_line_level_out_of_spec",
        "monitord_poll_failures_total",
        "monitord_snmp_packets_sent_total",
        "monitord_snmp_retries_total",
        "monitord_snmp_timeouts_total",
        "monitord_incidents_open",
        "monitord_device_polls_total",
        "monitord_poll_lag_seconds",
        "monitord_polls_skipped_total",
        "monitord_outbox_depth",
        "monitord_outbox_oldest_age_seconds",
        "monitord_notifications_dead_total",
        "monitord_sms_segments_total",
        "monitord_repair_confirmations_total",
        "monitord_survey_responses_total",
        "monitord_survey_score_points_total",
    ):
        assert needed in used
    assert any("by (channel, reason)" in e and "monitord_notifications_dead_total" in e for e in dashboard_exprs())
    for where, expr in dashboard_queries().items():
        assert "$instance" in expr or where == "variable instance", f"{where} ignores the instance picker"
        if re.search(r"monitord_(lines|line_level\w*|open_incident)\{", expr) and not where.startswith("variable"):
            assert "$region" in expr and "$exchange" in expr and "$device" in expr, f"{where} ignores the place pickers"


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda d: d["panels"][1]["gridPos"].update(w=25), "25 is greater than the maximum of 24"),
        (lambda d: d["panels"][1].update(colour="red"), "'colour' was unexpected"),
        (lambda d: d["templating"]["list"][0].update(hide=3), "3 is not one of [0, 1, 2]"),
        (lambda d: d["annotations"]["list"][-1].pop("iconColor"), "'iconColor' is a required property"),
        (lambda d: d.update(graphTooltip=3), "3 is not one of [0, 1, 2]"),
    ],
)
def test_the_schema_refuses_what_grafana_would(change: Any, complaint: str) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    change(dashboard)
    schema = json.loads(DASHBOARD_SCHEMA.read_text(encoding="utf-8"))
    errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(dashboard)]
    assert any(complaint in message for message in errors) or any(
        complaint in sub.message for e in jsonschema.Draft202012Validator(schema).iter_errors(dashboard) for sub in e.context
    ), errors


def test_promtool_parses_every_query_of_the_dashboard(tmp_path: Path) -> None:
    """Each query, as Grafana sends it, as a recording rule: `promtool check rules` parses them all."""
    queries = dashboard_queries()
    rules = [{"record": f"dashboard:query_{n}", "expr": as_grafana_sends(expr)} for n, expr in enumerate(queries.values())]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")
    done = promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout
    broken = tmp_path / "broken.yml"
    broken.write_text(
        yaml.safe_dump({"groups": [{"name": "x", "rules": [{"record": "x:y", "expr": "sum by (a (b)"}]}]}), encoding="utf-8"
    )
    assert promtool("check", "rules", str(broken)).returncode != 0


# --- a real Prometheus on a real daemon ----------------------------------------------------------


class Prometheus:
    """A Prometheus server scraping one target every second, with our alert rules loaded."""

    def __init__(self, root: Path, target: str) -> None:
        root.mkdir()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ALERTS)],
            "scrape_configs": [{"job_name": "monitord", "static_configs": [{"targets": [target]}]}],
        }
        (root / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = root / "prometheus.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={root / 'prometheus.yml'}",
                    f"--storage.tsdb.path={root / 'data'}",
                    f"--web.listen-address={self.url.removeprefix('http://')}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.session = aiohttp.ClientSession()

    async def close(self) -> None:
        await self.session.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    async def api(self, path: str, **params: str) -> Any:
        try:
            async with self.session.get(f"{self.url}/api/v1/{path}", params=params) as response:
                if response.status == 503:
                    return None  # starting: its storage not open yet (text/plain "Service Unavailable")
                body = await response.json()
        except aiohttp.ClientConnectionError:
            return None
        assert body["status"] == "success", body
        return body["data"]

    async def query(self, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
        """An instant vector: its labels (without job and instance) -> value."""
        data = await self.api("query", query=expr) or {"result": []}
        return {
            tuple(sorted((k, v) for k, v in s["metric"].items() if k not in ("job", "instance"))): float(s["value"][1])
            for s in data["result"]
        }

    async def value(self, expr: str) -> float | None:
        result = await self.query(expr)
        assert len(result) <= 1, result
        return next(iter(result.values()), None)

    async def until(self, expr: str, expected: Any, timeout: float = 20) -> None:
        """Wait for `expr` to equal `expected` (a value, or a callable giving it now)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            want = expected() if callable(expected) else expected
            got = await self.value(expr)
            if got == want:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{expr}: Prometheus says {got}, the daemon {want}; log in {self.log}")
            await asyncio.sleep(0.5)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    world = await start_world(tmp_path / "isp", base=own_base(40))
    try:
        yield world
    finally:
        await stop_world(world)


@pytest.fixture
async def daemon(world: World) -> AsyncIterator[Daemon]:
    daemon = Daemon(load_config(world.config), registry=CollectorRegistry())
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        await until(lambda: daemon.ready.is_set() or task.done(), 30, "the daemon to start")
        yield daemon
    finally:
        stop.set()
        await task


@pytest.fixture
async def prometheus(tmp_path: Path, daemon: Daemon) -> AsyncIterator[Prometheus]:
    server = Prometheus(tmp_path / "prometheus", f"127.0.0.1:{daemon.http_port}")
    try:
        yield server
    finally:
        await server.close()


def status_count(daemon: Daemon, device: str | None, status: Status) -> int:
    return sum(n for (_, _, d, s), n in daemon.status_counts().items() if s == status.value and device in (None, d))


@pytest.mark.xdist_group("lab-world-1")  # see LAB_WORLDS in tests/conftest.py
async def test_prometheus_sees_what_the_daemon_sees(world: World, daemon: Daemon, prometheus: Prometheus) -> None:
    topology = daemon.config.topology

    async def target_up() -> bool:
        data = await prometheus.api("targets")
        return bool(data) and [t["health"] for t in data["activeTargets"]] == ["up"]

    await until_async(target_up, 30, "Prometheus to scrape the daemon")
    await prometheus.until('sum(monitord_lines{state="ok"})', lambda: status_count(daemon, None, Status.OK), 60)
    await prometheus.until('sum(monitord_lines{state="ok"})', len(topology.lines), 60)
    assert await prometheus.value("sum(monitord_lines)") == len(topology.lines)

    world.tickets.fail_next(503, 1)  # the ticket's first attempt fails and is retried,
    world.tickets.fail_next(422, 1)  # the second is refused for good: a dead letter
    dslam = min(d.id for d in topology.devices.values() if d.kind == "dslam")
    behind = [i for i, line in topology.lines.items() if line.device == dslam]
    world.faults.silence(*world.isp.addresses_under("device", dslam))

    await prometheus.until('monitord_incidents_open{kind="outage"}', 1, 60)
    await prometheus.until('monitord_incident_lines{kind="outage"}', len(behind))
    await prometheus.until(f'monitord_lines{{device="{dslam}", state="unreachable"}}', len(behind))
    await prometheus.until(
        f'monitord_lines{{device="{dslam}", state="unreachable"}}', lambda: status_count(daemon, dslam, Status.UNREACHABLE)
    )
    phones = {topology.lines[i].phone for i in behind if topology.lines[i].phone}
    await until(lambda: len(world.twilio.messages) >= len(phones), 30, "the outage SMS")
    await prometheus.until('monitord_notifications_sent_total{channel="sms"}', lambda: len(world.twilio.messages))
    await prometheus.until("monitord_sms_segments_total", lambda: sum(sms_segments(m.body) for m in world.twilio.messages))
    await prometheus.until('monitord_notifications_failed_total{channel="ticket", reason="server_error"}', 1)
    await prometheus.until('monitord_notifications_dead_total{channel="ticket", reason="rejected"}', 1)
    assert await prometheus.value('sum(monitord_notifications_dead_total{channel="ticket"})') == 1
    assert world.tickets.tickets == {}
    await prometheus.until('sum(monitord_outbox_depth)', lambda: daemon.store.depth())

    async def dead_letter_alert() -> bool:
        data = await prometheus.api("alerts")
        return any(
            a["labels"]["alertname"] == "MonitordDeadLetters" and a["labels"]["channel"] == "ticket" and a["state"] == "firing"
            for a in (data or {"alerts": []})["alerts"]
        )

    await until_async(dead_letter_alert, 20, "MonitordDeadLetters to fire")
    firing = {a["labels"]["alertname"] for a in (await prometheus.api("alerts"))["alerts"]}  # pending ones too
    assert "MonitordDown" not in firing
    if "MonitordPollsStale" in firing:  # the silent DSLAM's job must keep starting (its check): stale only where
        # a loaded machine started every job late (a CI run: 6 s without a start at a 2 s interval)
        late = await prometheus.value("max(max_over_time(monitord_poll_lag_seconds[5m]))")
        assert late is not None and late > 2, f"polls stale while started on time (lag {late} s)"

    await prometheus.until(f'count(monitord_open_incident{{root="device:{dslam}", kind="outage"}})', 1)
    dslams = [d.id for d in topology.devices.values() if d.kind == "dslam" and d.id != dslam]
    for device in dslams:  # every line of an answering DSLAM has its SNR margin read
        lines = sum(line.device == device for line in topology.lines.values())
        await prometheus.until(f'monitord_line_level_lines{{device="{device}", metric="snr_margin_down_db"}}', lines)
    await prometheus.until('sum(monitord_poll_failures_total{probe="snmp:adsl", reason="timeout"}) > bool 0', 1)
    await prometheus.until('sum(monitord_snmp_retries_total{device_kind="dslam"}) > bool 0', 1)
    await prometheus.until("count(monitord_build_info)", 1)
    await asyncio.sleep(3)  # two more scrapes: rate() over the counters that moved last
    for where, expr in dashboard_queries().items():
        data = await prometheus.api("query", query=as_grafana_sends(expr))
        assert data is not None and data["result"], f"{where}: no series for {as_grafana_sends(expr)}"

    exported = {s.name for family in daemon.registry.collect() for s in family.samples}
    stored = set(await prometheus.api("label/__name__/values"))
    for source, exprs in (("dashboard", dashboard_exprs()), ("alerts.yml", rule_exprs())):
        used = set().union(*map(metric_names, exprs))
        assert used - exported - SYNTHESIZED == set(), f"{source} uses metrics the daemon does not export"
        assert used <= stored, f"{source} uses metrics Prometheus never received"

    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{daemon.http_port}/metrics") as response:
            scrape = await response.text()
    lint = promtool("check", "metrics", stdin=scrape)
    assert lint.returncode == 0 and lint.stdout + lint.stderr == "", lint.stdout + lint.stderr


async def until_async(check: Any, timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")
        await asyncio.sleep(0.5)
