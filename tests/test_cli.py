"""`monitord diagnose|incidents|maintenance` as subprocesses against the shared running daemon."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import socket
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from monitord.model import Incident, IncidentKind, NodeRef, Phase
from tests.test_rollups_api import drifting_row, dsl_lines, flaps_of, polled_quality, record_flaps

if TYPE_CHECKING:
    from tests.http_fixtures import Api

pytest_plugins = ["tests.http_fixtures"]
on_daemon_loop = pytest.mark.asyncio(loop_scope="session")  # the loop the shared daemon runs on


@dataclass(frozen=True, slots=True)
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


async def monitord(*args: str) -> Ran:
    """Run the CLI without blocking the loop the daemon answers on."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitord.cli", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


def token_file(api: Api) -> str:
    path = api.root / "cli.token"
    path.write_text(api.token + "\n", encoding="utf-8")
    return str(path)


@on_daemon_loop
async def test_diagnose(api: Api) -> None:
    line = sorted(api.topology.lines)[0]
    denied = await monitord("diagnose", line, "--url", api.url)
    assert denied.code == 1 and "401 a valid bearer token is required" in denied.err
    token = ("--token-file", token_file(api))
    ran = await monitord("diagnose", line, "--url", api.url, "--json", *token)
    assert ran.code == 0, ran.err
    body = ran.json()
    assert (body["subscriber"], body["cause"]) == (line, "ok")
    table = await monitord("diagnose", line, "--url", api.url, *token)
    assert table.code == 0
    assert table.out.startswith(f"{line}: OK\nNo fault found") and "\n  - modem " in table.out
    missing = await monitord("diagnose", "S-nobody", "--url", api.url, *token)
    assert (missing.code, missing.out) == (1, "")
    assert "404 no subscriber 'S-nobody'" in missing.err


@on_daemon_loop
async def test_incidents(api: Api) -> None:
    ran = await monitord("incidents", "--url", api.url, "--json")
    assert ran.code == 0, ran.err
    assert [i["tracking"] for i in ran.json()] == [i.tracking for i in api.daemon.open_incidents()]
    everything = await monitord("incidents", "--all", "--url", api.url, "--json")
    assert everything.code == 0 and len(everything.json()) == len(api.daemon.store.incidents(open_only=False))
    table = await monitord("incidents", "--url", api.url)
    assert table.code == 0 and (table.out == "no incidents\n" or table.out.split()[:2] == ["TRACKING", "KIND"])


@on_daemon_loop
async def test_history_and_exports(api: Api) -> None:
    line = sorted(api.topology.lines)[-1]
    now = time.time()
    past = Incident(
        "ARZ-2001-000001",
        IncidentKind.CPE,
        NodeRef("line", line),
        Phase.RESOLVED,
        now - 7200,
        now - 3600,
        frozenset({line}),
        (),
        resolved_at=now - 3600,
    )  # a year the engine never numbers in
    async with api.daemon.store.turn:  # as the engine's steps write it
        api.daemon.store.commit_step(None, [past], [], now)
    table = await monitord("history", line, "--url", api.url)
    assert table.code == 0, table.err
    header, *rows = table.out.splitlines()
    assert header.split() == ["TRACKING", "KIND", "ROOT", "PHASE", "OPENED", "RESOLVED", "TOOK", "LINES"]
    assert next(r for r in rows if r.startswith(past.tracking)).split()[-2:] == ["1h00m", "1"]
    assert past.tracking in [i["tracking"] for i in (await monitord("history", line, "--url", api.url, "--json")).json()]

    since, until = (datetime.now(UTC) + timedelta(hours=h) for h in (-3, 1))
    report = await monitord("export", "incidents", "--since", since.isoformat(), "--until", until.isoformat(), "--url", api.url)
    assert report.code == 0, report.err
    assert next(row for row in csv.reader(io.StringIO(report.out)) if row[0] == past.tracking)[7:] == ["3600", "1"]
    denied = await monitord("export", "subscribers", past.tracking, "--url", api.url)
    assert (denied.code, denied.out) == (1, "") and "401" in denied.err
    listed = await monitord("export", "subscribers", past.tracking, "--url", api.url, "--token-file", token_file(api))
    assert listed.code == 0 and [row[0] for row in csv.reader(io.StringIO(listed.out))] == ["subscriber", line]
    backwards = await monitord(
        "export", "incidents", "--since", until.isoformat(), "--until", since.isoformat(), "--url", api.url
    )
    assert backwards.code == 1 and "400 until: expected after since" in backwards.err


@on_daemon_loop
async def test_quality_flapping_and_drifting(api: Api) -> None:
    line = dsl_lines(api)[0]
    assert (await polled_quality(api, line))[0] == 200  # a written period, as at a stop
    table = await monitord("quality", line, "--url", api.url)
    assert table.code == 0, table.err
    header, *rows = table.out.splitlines()
    assert header.split()[:1] == ["PERIOD"] and "SNR_MARGIN_DOWN_DB" in header.split() and rows
    hourly = await monitord(
        "quality", line, "--step", "1h", "--since", "2026-01-01T00:00", "--until", "2026-01-02T00:00", "--url", api.url
    )
    assert (hourly.code, hourly.out.strip()) == (0, f"no line quality kept for {line} in the period")
    wrong = await monitord("quality", line, "--since", "2026-12-02T00:00", "--until", "2026-12-01T00:00", "--url", api.url)
    assert wrong.code == 1 and "400 until: expected after since" in wrong.err

    now = api.daemon.clock()
    flapping_line = dsl_lines(api)[1]
    times = flaps_of(api, flapping_line, now) + 4  # other tests of the shared daemon fault this DSLAM too
    record_flaps(api, flapping_line, [now - 900 + 100 * k for k in range(8)])
    flapping = await monitord("lines", "flapping", "--min", str(times), "--url", api.url)
    assert flapping.code == 0, flapping.err
    assert flapping.out.splitlines()[0].split() == ["SUBSCRIBER", "DEVICE", "TIMES", "LAST"]
    assert [flapping_line, api.topology.lines[line].device, str(times)] in [r.split()[:3] for r in flapping.out.splitlines()[1:]]

    near, _ = await drifting_row(api)
    drifting = await monitord("lines", "drifting", "--json", "--url", api.url)
    assert drifting.code == 0 and near in [d["subscriber"] for d in drifting.json()["lines"]]
    narrow = await monitord("lines", "drifting", "--margin", "0.5", "--url", api.url)
    assert narrow.code == 0 and near not in narrow.out


@on_daemon_loop
async def test_maintenance_add_list_cancel(api: Api) -> None:
    exchange = sorted(api.topology.exchanges)[1]
    start = datetime.now(UTC) + timedelta(days=2)
    window = ["--scope", f"exchange:{exchange}", "--start", start.isoformat(), "--end", (start + timedelta(hours=2)).isoformat()]
    refused = await monitord("maintenance", "add", *window, "--url", api.url)
    assert refused.code == 1 and "401 a valid bearer token is required" in refused.err

    tokens = ["--url", api.url, "--token-file", token_file(api)]
    added = await monitord("maintenance", "add", *window, "--id", "mw-cli-1", "--reason", "Fiber kesintisi", *tokens, "--json")
    assert added.code == 0, added.err
    assert added.json()["id"] == "mw-cli-1" and added.json()["source"] == "api"
    try:
        listed = await monitord("maintenance", "list", "--url", api.url, "--json")
        assert "mw-cli-1" in [w["id"] for w in listed.json()]
        table = await monitord("maintenance", "list", "--url", api.url)
        header, *rows = table.out.splitlines()
        assert header.split() == ["ID", "SCOPE", "START", "END", "SOURCE", "ACTIVE", "REASON"]
        assert any(r.startswith("mw-cli-1") and f"exchange:{exchange}" in r and "Fiber kesintisi" in r for r in rows)
        again = await monitord("maintenance", "add", *window, "--id", "mw-cli-1", *tokens)
        assert again.code == 1 and "409" in again.err
    finally:
        cancelled = await monitord("maintenance", "cancel", "mw-cli-1", *tokens)
    assert (cancelled.code, cancelled.out) == (0, "cancelled mw-cli-1\n")
    listed = await monitord("maintenance", "list", "--url", api.url, "--json")
    assert "mw-cli-1" not in [w["id"] for w in listed.json()]


@on_daemon_loop
async def test_url_and_token_from_the_config(api: Api, tmp_path: Path) -> None:
    """Only the config's http section is read: listen gives the URL, token the file."""
    port = int(api.url.rsplit(":", 1)[1])
    config = tmp_path / "monitord.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "http": {"listen": f"127.0.0.1:{port}", "token": {"file": "api.token"}},
                "notifiers": {"sms": {"auth_token": {"env": "NOT_SET_IN_THIS_SHELL"}}},
            }
        )
    )
    (tmp_path / "api.token").write_text(api.token + "\n")
    start = datetime.now(UTC) + timedelta(days=3)
    added = await monitord(
        "maintenance",
        "add",
        "--scope",
        f"line:{sorted(api.topology.lines)[0]}",
        "--start",
        start.isoformat(),
        "--end",
        (start + timedelta(hours=1)).isoformat(),
        "--config",
        str(config),
        "--json",
    )
    assert added.code == 0, added.err
    cancelled = await monitord("maintenance", "cancel", added.json()["id"], "--config", str(config))
    assert cancelled.code == 0, cancelled.err

    lab = await monitord("incidents", "--config", str(api.world.config))
    assert lab.code == 1 and "http.listen has port 0" in lab.err and "--url" in lab.err

    config.write_text(f"http:\n  listen: 127.0.0.1:{port}\n  listen: 127.0.0.1:1\n")
    twice = await monitord("incidents", "--config", str(config))
    assert twice.code == 1 and f"{config}:3: duplicate key 'listen' (first given on line 2)" in twice.err


@on_daemon_loop
async def test_daemon_unreachable_and_usage(api: Api) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    ran = await monitord("incidents", "--url", f"http://127.0.0.1:{closed}")
    assert ran.code == 1 and f"cannot reach the daemon at http://127.0.0.1:{closed}" in ran.err
    assert (await monitord("maintenance", "--url", api.url)).code == 2
    assert (await monitord("diagnose")).code == 2
    assert (await monitord("maintenance", "add", "--start", "x", "--end", "y")).code == 2
