"""Line quality over time through the API (issue 13 item 4), on the shared daemon polling the lab:
a subscriber's series from its real readings, the flapping and drifting lists, and bad input."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from monitord.model import LineState, NodeRef, Status
from monitord.rollups import HOUR, Table, pack, period_start
from tests.test_http import documented

if TYPE_CHECKING:
    from tests.http_fixtures import Api

pytest_plugins = ["tests.http_fixtures"]
on_daemon_loop = pytest.mark.asyncio(loop_scope="session")  # the loop the shared daemon runs on

SNR = "snr_margin_down_db"  # the adsl rules' at_most 6 dB (monitord/builtin/rules/default.yaml)


def dsl_lines(api: Api) -> list[str]:
    """The lines of the last ADSL DSLAM: the tests that fault one take the first
    (tests/test_http.py), and a DSLAM back from a fault is polled again only after a while."""
    dslam = max(d.id for d in api.topology.devices.values() if "adsl" in d.profiles)
    return api.lines_of(dslam)


async def polled_quality(api: Api, line: str) -> tuple[int, Any]:
    """The line's quality once its device's walk is in a written period: the period in progress
    is written as a stop writes it (`flush`), the device polled again if it had not been yet."""
    for _ in range(20):
        await api.daemon.line_history.flush()
        status, body = await api.call("GET", f"/api/subscribers/{line}/quality")
        if status != 200 or body["at"]:
            return status, body
        assert api.daemon.scheduler is not None
        api.daemon.scheduler.poll_now(api.topology.lines[line].device)
        await asyncio.sleep(1)
    raise AssertionError(f"no roll-up of {line} written")


async def drifting_row(api: Api) -> tuple[str, str]:
    """An hourly row, the latest, of the DSLAM: its first line 1 dB above the SNR
    margin's threshold, the others far from it. Returns (drifting line, a line that is not)."""
    lines = tuple(dsl_lines(api))
    device = api.topology.lines[lines[0]].device
    averages: list[float | None] = [7.0] + [20.0] * (len(lines) - 1)
    # the next hour: no hour over has this start, so no real row (merged once an hour is over)
    # takes its place, even when the hour turns while the test runs
    hour = period_start(api.daemon.clock(), HOUR) + HOUR
    await api.daemon.line_history.write([pack(device, HOUR, hour, Table(lines, {SNR: (averages, averages, averages)}))])
    return lines[0], lines[1]


@on_daemon_loop
async def test_a_subscribers_line_quality_is_read_from_its_roll_ups(api: Api) -> None:
    line = dsl_lines(api)[0]
    status, body = await polled_quality(api, line)
    assert status == 200, body
    documented("/api/subscribers/{id}/quality", "get", status, body)
    assert body["subscriber"] == line and body["step"] == "5m" and body["device"] == api.topology.lines[line].device
    assert len(body["at"]) >= 1 and all(at % 300 == 0 for at in body["at"])
    snr = body["series"][SNR]
    assert len(snr["avg"]) == len(body["at"]) and all(lo <= avg <= hi for lo, avg, hi in zip(snr["min"], snr["avg"], snr["max"]))
    status, hourly = await api.call(
        "GET", f"/api/subscribers/{line}/quality?step=1h&since=2026-01-01T00:00&until=2026-01-02T00:00"
    )
    assert status == 200 and hourly["at"] == [] and hourly["series"] == {}


@on_daemon_loop
@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("?step=10m", "step: expected 5m or 1h"),
        ("?since=2026-12-02T00:00&until=2026-12-01T00:00", "until: expected after since"),
        ("?since=2026-01-01T00:00&until=2026-03-01T00:00", "since: at most 5000 periods of 5m"),
        ("?since=yesterday", "since:"),
    ],
)
async def test_bad_spans_are_refused(api: Api, query: str, why: str) -> None:
    status, body = await api.call("GET", f"/api/subscribers/{dsl_lines(api)[0]}/quality{query}")
    assert status == 400 and body["error"].startswith(why), body
    documented("/api/subscribers/{id}/quality", "get", status, body)


@on_daemon_loop
async def test_an_unknown_subscriber_has_no_quality(api: Api) -> None:
    status, body = await api.call("GET", "/api/subscribers/nobody/quality")
    assert status == 404 and body == {"error": "no subscriber 'nobody'"}


def flaps_of(api: Api, line: str, now: float) -> int:
    """How often the line went bad in the window so far."""
    return next((f.changes for f in api.daemon.line_history.flaps.flapping(now, 1) if f.line == line), 0)


def record_flaps(api: Api, line: str, times: list[float]) -> None:
    """The engine's changes of `line`: OK first (whatever other tests left it in), then down and
    OK again in turn at `times`."""
    node = NodeRef("line", line)
    states = [Status.OK] + [Status.DOWN, Status.OK] * (len(times) // 2)
    api.daemon.line_history.flaps.record([LineState(node, s, at) for s, at in zip(states, [times[0] - 1, *times], strict=True)])


@on_daemon_loop
async def test_a_line_that_went_bad_three_times_today_is_flapping(api: Api) -> None:
    line = dsl_lines(api)[-1]
    now = api.daemon.clock()
    before = flaps_of(api, line, now)  # the shared daemon's other tests fault this DSLAM too
    record_flaps(api, line, [now - 3000 + 300 * k for k in range(6)])
    status, body = await api.call("GET", "/api/lines/flapping")
    assert status == 200, body
    documented("/api/lines/flapping", "get", status, body)
    device = api.topology.lines[line].device
    assert body["min_changes"] == 3
    assert {"subscriber": line, "device": device, "changes": before + 3, "last": now - 1800} in body["lines"]
    status, body = await api.call("GET", f"/api/lines/flapping?min={before + 4}")
    assert status == 200 and line not in [f["subscriber"] for f in body["lines"]]
    for bad in ("1", "x", "1001"):
        status, body = await api.call("GET", f"/api/lines/flapping?min={bad}")
        assert status == 400 and body["error"].startswith("min:"), body


@on_daemon_loop
async def test_a_line_still_ok_near_its_threshold_is_drifting(api: Api) -> None:
    near, far = await drifting_row(api)
    assert api.daemon.line_state(near).status is Status.OK
    status, body = await api.call("GET", "/api/lines/drifting")
    assert status == 200, body
    documented("/api/lines/drifting", "get", status, body)
    found = [d for d in body["lines"] if d["subscriber"] == near]
    assert found == [
        {
            "subscriber": near,
            "device": api.topology.lines[near].device,
            "metric": SNR,
            "average": 7.0,
            "threshold": 6.0,
            "op": "at_most",
            "headroom": 1.0,
        }
    ]
    assert far not in [d["subscriber"] for d in body["lines"]]
    status, body = await api.call("GET", "/api/lines/drifting?margin=0.5")
    assert status == 200 and near not in [d["subscriber"] for d in body["lines"]]
    for bad in ("0", "nan", "x", "1000"):
        status, body = await api.call("GET", f"/api/lines/drifting?margin={bad}")
        assert status == 400 and body["error"].startswith("margin:"), body
