"""The API cannot hurt monitoring or customers (issue 9, items 17-19): a storm of clients leaves
polling on schedule, /metrics is rendered once per interval, diagnose and personal data need the
token, hostile requests and windows get a 400 naming what is wrong, and responses are strict JSON.

Most tests talk to the shared daemon of tests/http_fixtures.py, watching the simulated ISP.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from lab.api_load import LoopLag, swarm_process
from lab.isp import build_sample_isp
from monitord.config import ConfigError, HttpConfig, load_config
from monitord.daemon import Daemon
from monitord.demo import until
from monitord.diagnose import Clients
from monitord.exposition import FRESH_FOR, RENDER_SHARE, Exposition
from monitord.http import DIAGNOSE_AT_ONCE, DIAGNOSE_BURST, DIAGNOSE_RATE, STRICT_JSON, make_app
from monitord.http_server import CpuShare
from monitord.model import Status
from probes.scheduler import Scheduler
from tests.blocks import own_base

if TYPE_CHECKING:
    from tests.http_fixtures import Api

pytest_plugins = ["tests.http_fixtures"]
on_daemon_loop = pytest.mark.asyncio(loop_scope="session")

LOAD_CLIENTS = int(os.environ.get("MONITORD_API_LOAD_CLIENTS", "100"))  # bench/api_load.py runs 500


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat(timespec="seconds")


def strict(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


async def raw_call(api: Api, method: str, path: str, **kwargs: Any) -> tuple[int, str, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, api.url + path, **kwargs) as response:
            return response.status, await response.text(), response.headers


# --- 17: load ----------------------------------------------------------------------------------


async def start_lags(scheduler: Scheduler, since: float, into: dict[tuple[str, float], float]) -> None:
    """How late each poll started after `since` against its slot, from the jobs' stats read every
    50 ms (a job starts at most every 1.6 s at the lab's 2 s interval, so no start is missed)."""
    while True:
        for key, stats in scheduler.stats.items():
            if stats.last_started is not None and stats.last_started >= since and stats.lag is not None:
                into[(key, stats.last_started)] = stats.lag
        await asyncio.sleep(0.05)


@on_daemon_loop
async def test_polling_keeps_its_schedule_while_clients_hammer_the_api(api: Api) -> None:
    """LOAD_CLIENTS clients on /metrics, /api/* and diagnose for 8 s, from a process of their own.

    On schedule: every poll starts on its slot and the loop never stalls. Slots skipped while a
    device still answers the last poll are not the API's doing: on a machine busy with other
    work, the lab's agents answered a DSLAM's poll in 1-4 s, and as many slots were skipped in 8 s
    without the clients (14) as with them (13)."""
    daemon, scheduler = api.daemon, api.daemon.scheduler
    assert scheduler is not None
    topology = api.topology
    # every line up; those of a DSLAM other tests took down often may be flapping (Api.dslams)
    up = {Status.OK, Status.DEGRADED}
    await until(lambda: all(daemon.line_state(i).status in up for i in topology.lines), 60, "every line up")
    ok = [i for i in topology.lines if daemon.line_state(i).status is Status.OK]
    assert len(ok) > len(topology.lines) / 2, "most lines ok"
    incidents = {i.tracking for i in daemon.store.incidents(open_only=False)}
    sms = len(api.world.twilio.messages)
    lag, lags = LoopLag(), dict[tuple[str, float], float]()
    lag.start()
    watch = asyncio.create_task(start_lags(scheduler, time.monotonic(), lags))
    try:
        result = await swarm_process(api.url, LOAD_CLIENTS, 8.0, "mixed", sorted(topology.lines)[:20], api.token, nice=10)
        await asyncio.sleep(2.5)  # the polls that ran under the load come in
    finally:
        watch.cancel()
        await lag.stop()
    assert result.by_path["/metrics"] > 100 and result.by_path["/api/subscribers/{line}"] > 50, result
    assert set(result.statuses) <= {"200", "429"}, result.statuses
    assert len(lags) >= len(scheduler.stats) * 2, f"{len(lags)} polls started for {len(scheduler.stats)} jobs in 10 s"
    late = sorted((round(by, 3), job) for (job, _), by in lags.items() if by > 0.5)
    assert late == [], f"polls started late against their slots: {late}"
    assert {i.tracking for i in daemon.store.incidents(open_only=False)} == incidents
    assert len(api.world.twilio.messages) == sms
    assert [daemon.line_state(i) for i in ok if daemon.line_state(i).status is not Status.OK] == []
    assert lag.worst < 0.5, f"the daemon's loop stalled {lag.worst * 1000:.0f} ms"


class CountingCollector(Collector):
    def __init__(self) -> None:
        self.renders = 0

    def collect(self) -> Iterator[GaugeMetricFamily]:
        self.renders += 1
        yield GaugeMetricFamily("test_renders", "Renders of the exposition.", value=self.renders)


@on_daemon_loop
async def test_metrics_are_rendered_once_however_many_clients_ask(api: Api) -> None:
    counting = CountingCollector()
    api.daemon.registry.register(counting)
    try:
        async with aiohttp.ClientSession() as session:

            async def scrape() -> str:
                async with session.get(api.url + "/metrics") as response:
                    assert response.status == 200
                    return await response.text()

            bodies = await asyncio.gather(*(scrape() for _ in range(200)))
    finally:
        api.daemon.registry.unregister(counting)
    assert counting.renders <= 2, f"{counting.renders} renders for 200 scrapes"
    assert all("monitord_lines{" in body for body in bodies)


async def test_exposition_is_fresh_for_a_while_and_longer_when_rendering_is_costly() -> None:
    now = [100.0]
    registry = CollectorRegistry()
    costly = CountingCollector()
    registry.register(costly)
    exposition = Exposition(registry, clock=lambda: now[0])
    assert exposition.fresh() is None
    body = await exposition.refresh()
    assert b"test_renders 1.0" in body and exposition.fresh() is body
    now[0] += FRESH_FOR
    assert exposition.fresh() is None

    class Slow(CountingCollector):
        def collect(self) -> Iterator[GaugeMetricFamily]:
            now[0] += 0.5  # a rendering that costs 0.5 s
            yield from super().collect()

    registry.unregister(costly)
    registry.register(Slow())
    body = await exposition.refresh()
    now[0] += RENDER_SHARE * 0.5 - 0.01
    assert exposition.fresh() is body
    now[0] += 0.02
    assert exposition.fresh() is None


async def test_a_stale_exposition_is_let_go() -> None:
    """Not kept between scrapes: the body is dropped once it may no longer be served."""
    registry = CollectorRegistry()
    registry.register(CountingCollector())
    exposition = Exposition(registry)
    await exposition.refresh()
    assert exposition._rendering[0]
    await asyncio.sleep(FRESH_FOR + 0.2)
    assert exposition._rendering[0] == b""


def test_cpu_share_paces_what_is_used_beyond_the_share() -> None:
    share = CpuShare(share=0.25, credit=0.05)
    assert share.delay(0.0, 0.0) == 0.0
    assert share.delay(1.0, 0.2) == 0.0  # 0.2 s of CPU in 1 s: within a quarter
    assert share.delay(1.1, 0.5) == pytest.approx((0.3 - 0.025 - 0.05) / 0.25)  # over: wait it out
    assert share.delay(10.0, 0.5) == 0.0  # idle time earns only a small credit
    assert share.delay(10.0, 0.56) == pytest.approx(0.01 / 0.25)


@on_daemon_loop
async def test_diagnose_is_rate_limited_and_bounded(api: Api) -> None:
    """On an app of its own (its own limits), so the other tests' diagnoses are not counted."""
    assert api.daemon.probes.snmp is not None and api.daemon.probes.pinger is not None
    runner = web.AppRunner(make_app(api.daemon, Clients(api.daemon.probes.snmp, api.daemon.probes.pinger)))
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/subscribers/{min(api.topology.lines)}/diagnose"
        bearer = {"Authorization": f"Bearer {api.token}"}
        async with aiohttp.ClientSession() as session:

            async def ask() -> tuple[int, str | None]:
                async with session.get(url, headers=bearer) as response:
                    await response.read()
                    return response.status, response.headers.get("Retry-After")

            started = time.monotonic()
            at_once = Counter(await asyncio.gather(*(ask() for _ in range(40))))
            assert at_once[(200, None)] <= DIAGNOSE_AT_ONCE and at_once[(429, "1")] >= 40 - DIAGNOSE_AT_ONCE, at_once
            in_fours: Counter[tuple[int, str | None]] = Counter()
            for _ in range(15):
                in_fours.update(await asyncio.gather(*(ask() for _ in range(DIAGNOSE_AT_ONCE))))
            allowed = DIAGNOSE_BURST + DIAGNOSE_RATE * (time.monotonic() - started) + 1
            assert set(in_fours) == {(200, None), (429, "1")}, in_fours
            assert at_once[(200, None)] + in_fours[(200, None)] <= allowed, (at_once, in_fours)
    finally:
        await runner.cleanup()


@on_daemon_loop
async def test_long_urls_and_big_requests_are_refused_without_tracebacks(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        async with aiohttp.ClientSession() as session:

            async def long_url() -> int:
                async with session.get(api.url + "/api/subscribers/" + "A" * 9000) as response:
                    return response.status

            statuses = await asyncio.gather(*(long_url() for _ in range(200)))
            async with session.get(api.url + "/health", headers={"X-Padding": "p" * 9000}) as response:
                assert response.status in (400, 431)
        status, text, _ = await raw_call(
            api,
            "POST",
            "/api/maintenance",
            data=b"{" + b" " * 300_000 + b"}",
            headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"},
        )
    assert set(statuses) <= {400, 414}, Counter(statuses)
    assert status == 413 and "error" in strict(text)
    logged = [r for r in caplog.records if r.name.startswith(("aiohttp", "monitord"))]
    assert not [r for r in logged if r.exc_info or r.levelno >= logging.WARNING], logged[:3]
    assert sum(len(r.getMessage()) for r in logged) < 200 * 400


# --- 18: personal data --------------------------------------------------------------------------


@on_daemon_loop
async def test_names_and_phones_need_the_token(api: Api) -> None:
    line_id = min(api.topology.lines)
    line = api.topology.lines[line_id]
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": api.token}):
        status, text, _ = await raw_call(api, "GET", f"/api/subscribers/{line_id}", headers=headers)
        body = strict(text)
        assert status == 200 and body["id"] == line_id and body["state"]["status"]
        assert (body["name"], body["phone"]) == (None, None)
        assert line.name not in text and line.phone[-4:] not in text
    status, text, _ = await raw_call(api, "GET", f"/api/subscribers/{line_id}", headers={"Authorization": f"Bearer {api.token}"})
    assert strict(text)["name"] == line.name
    status, text, headers = await raw_call(api, "GET", f"/api/subscribers/{line_id}/diagnose")
    assert (status, strict(text)) == (401, {"error": "a valid bearer token is required"})


@on_daemon_loop
async def test_diagnose_is_refused_when_no_token_is_configured(api: Api, tmp_path: Path) -> None:
    bare = Daemon(replace(load_config(api.world.config), http=HttpConfig(), state_file=tmp_path / "bare.db"))
    runner = web.AppRunner(make_app(bare))
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/subscribers/{min(api.topology.lines)}/diagnose"
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, headers={"Authorization": f"Bearer {api.token}"}) as response,
        ):
            assert (response.status, await response.json()) == (
                403,
                {"error": "live diagnoses are disabled: no http.token is configured"},
            )
    finally:
        await runner.cleanup()
        bare.store.close()


def test_a_non_loopback_api_without_a_token_is_refused(tmp_path: Path) -> None:
    build_sample_isp(tmp_path, base="127.0.77", extra={"http": {"listen": "0.0.0.0:9177", "token": None}})
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path / "config.yaml")
    [problem] = raised.value.problems
    assert problem.key == "http.listen" and "0.0.0.0 is not a loopback address and no http.token is set" in problem.message
    assert problem.line is not None and "metrics.listen" in (problem.hint or "")
    build_sample_isp(tmp_path, base="127.0.77", extra={"http": {"listen": "0.0.0.0:9177"}})  # with its token
    assert load_config(tmp_path / "config.yaml").http.host == "0.0.0.0"


def test_retention_is_configured_within_bounds(tmp_path: Path) -> None:
    build_sample_isp(tmp_path, base="127.0.77")
    assert load_config(tmp_path / "config.yaml").retention.sent == 30 * 86400
    build_sample_isp(
        tmp_path, base="127.0.77", extra={"retention": {"sent": "1h", "dead": "10d", "resolved_incidents": math.nan}}
    )
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path / "config.yaml")
    assert [p.key for p in raised.value.problems] == ["retention.sent", "retention.resolved_incidents"]
    assert raised.value.problems[0].message == "'1h' is out of range"


async def test_metrics_on_a_listener_of_their_own(tmp_path: Path) -> None:
    """No SNMP agents behind the sample ISP: what matters here is which listener serves what."""
    build_sample_isp(tmp_path, base=own_base(31), extra={"metrics": {"listen": "127.0.0.1:0"}})
    daemon = Daemon(load_config(tmp_path / "config.yaml"))
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        await until(lambda: daemon.ready.is_set() or task.done(), 30, "the daemon to start")
        assert daemon.metrics_port not in (None, daemon.http_port)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{daemon.metrics_port}/metrics") as response:
                assert response.status == 200 and "monitord_lines{" in await response.text()
            for path in ("/api/incidents", f"/api/subscribers/{min(daemon.config.topology.lines)}", "/health"):
                async with session.get(f"http://127.0.0.1:{daemon.metrics_port}{path}") as response:
                    assert response.status == 404
            async with session.get(f"http://127.0.0.1:{daemon.http_port}/metrics") as response:
                assert response.status == 200
    finally:
        stop.set()
        await task


# --- 19: maintenance windows and strict JSON ----------------------------------------------------


def window(**changes: Any) -> dict[str, Any]:
    return {"scope": ["exchange:besiktas"], "start": iso(timedelta(0)), "end": iso(timedelta(hours=1))} | changes


HOSTILE_WINDOWS = [
    (b'{"scope": ["exchange:besiktas"], "start": "%s", "end": "%s", "grace": NaN}', "grace:"),
    (b'{"scope": ["exchange:besiktas"], "start": "%s", "end": "%s", "grace": Infinity}', "grace:"),
    (window(grace="99999999999999d"), "grace:"),
    (window(grace=1e308), "grace:"),
    (window(end=iso(timedelta(days=365 * 300))), "end: a window lasts at most 31 days"),
    (window(start=iso(timedelta(days=365 * 300)), end=iso(timedelta(days=365 * 300, hours=1))), "start: at most 366 days ahead"),
    (window(scope=["exchange:besiktas"] * 10_000), "scope: at most 200 nodes"),
    (window(reason="x" * 10_000), "reason: at most 500 characters"),
]


@on_daemon_loop
@pytest.mark.parametrize(
    ("body", "message"), HOSTILE_WINDOWS, ids=[f"{m.split(':')[0]}{n}" for n, (_, m) in enumerate(HOSTILE_WINDOWS)]
)
async def test_hostile_windows_get_a_400_naming_the_field(api: Api, body: Any, message: str) -> None:
    bearer = {"Authorization": f"Bearer {api.token}"}
    if isinstance(body, bytes):
        body = body % (iso(timedelta(0)).encode(), iso(timedelta(hours=1)).encode())
        sent: dict[str, Any] = {"data": body, "headers": bearer | {"Content-Type": "application/json"}}
    else:
        sent = {"json": body, "headers": bearer}
    status, text, _ = await raw_call(api, "POST", "/api/maintenance", **sent)
    assert status == 400 and strict(text)["error"].startswith(message), text
    status, text, _ = await raw_call(api, "GET", "/api/maintenance")
    assert [w["id"] for w in strict(text)] == ["mw-config-planned"]


@on_daemon_loop
async def test_a_repeated_scope_is_stored_once(api: Api) -> None:
    bearer = {"Authorization": f"Bearer {api.token}"}
    status, text, _ = await raw_call(
        api,
        "POST",
        "/api/maintenance",
        headers=bearer,
        json=window(id="mw-repeated", scope=["exchange:besiktas"] * 150, grace="1d"),
    )
    try:
        assert status == 201, text
        assert (strict(text)["scope"], strict(text)["grace"]) == (["exchange:besiktas"], 86400.0)
    finally:
        await raw_call(api, "DELETE", "/api/maintenance/mw-repeated", headers=bearer)


def test_responses_never_carry_nan_or_infinity() -> None:
    assert STRICT_JSON({"grace": 900.0}) == '{"grace": 900.0}'
    for bad in (math.inf, -math.inf, math.nan):
        with pytest.raises(ValueError):
            STRICT_JSON({"grace": bad})
