"""Every node answers the NOC API (issue 15, monitord/forward.py): a standby correlator, a
poller and a notifier worker (with `cluster.notifier_listen`) forward it to the leader, which
advertises where its API listens in PostgreSQL. Real `monitord run --role` processes on a real
local PostgreSQL (tests/pg_fixtures.py); observed from outside, over HTTP and in the database."""

from __future__ import annotations

import signal
import socket
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from lab.isp import build_sample_isp, write_config
from lab.world import FAST_RULES
from monitord.config import load_config
from monitord.demo import until
from monitord.forward import ANSWERED_BY, FORWARDED_BY, Forwarder, advertised_url, end_to_end, forwarding_app
from monitord.http import MAX_BODY
from monitord.model import StateServer
from tests.ops_fixtures import DaemonProcess, daemons, short_dir, wait_async  # noqa: F401
from tests.pg_fixtures import free_port
from tests.test_leader_failover import LISTENING, follow

TAKEOVER_BOUND = 45.0  # seconds from the kill to the new leader's API through a poller: loose, the machine is shared


def sql(server: StateServer, statement: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(server.url, autocommit=True) as db:
        cursor = db.execute(statement)
        return cursor.fetchall() if cursor.description else []


def holder(daemon: DaemonProcess) -> str:
    return f"{socket.gethostname()}/{daemon.proc.pid}"


async def call(
    daemon: DaemonProcess, method: str, path: str, *, token: str | None = None, **options: Any
) -> tuple[int, CIMultiDict[str], Any]:
    """(status, headers, JSON body or text) of one request to the process's latest listener."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(options.pop("headers", {}))
    async with aiohttp.ClientSession() as session:
        async with session.request(method, f"http://127.0.0.1:{daemon.port}{path}", headers=headers, **options) as answer:
            body = await answer.json() if answer.content_type == "application/json" else await answer.text()
            return answer.status, CIMultiDict(answer.headers), body


async def median_ms(daemon: DaemonProcess) -> float:
    """Milliseconds a GET /api/incidents takes on one kept-alive connection, the median of 30."""
    took = []
    async with aiohttp.ClientSession() as session:
        for _ in range(30):
            started = time.perf_counter()
            async with session.get(f"http://127.0.0.1:{daemon.port}/api/incidents") as answer:
                assert answer.status == 200
                await answer.read()
            took.append((time.perf_counter() - started) * 1000)
    return statistics.median(took)


def window(exchange: str, window_id: str) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(hours=1)
    return {
        "id": window_id,
        "scope": [f"exchange:{exchange}"],
        "start": start.isoformat(),
        "end": (start + timedelta(hours=2)).isoformat(),
    }


def test_a_proxy_drops_hop_by_hop_headers_and_those_the_connection_header_names() -> None:
    given = CIMultiDict(
        [
            ("Authorization", "Bearer abc"),
            ("Connection", "keep-alive, X-Secret-Hop"),
            ("Keep-Alive", "timeout=5"),
            ("X-Secret-Hop", "1"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "h2c"),
            ("Accept", "application/json"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
        ]
    )
    assert list(end_to_end(given).items()) == [
        ("Authorization", "Bearer abc"),
        ("Accept", "application/json"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
    ]


def test_the_advertised_address_is_the_setting_else_the_bound_address_else_the_machines_name() -> None:
    assert advertised_url("https://noc-1.example/monitord", "0.0.0.0", 9177, "noc-1") == "https://noc-1.example/monitord"
    assert advertised_url(None, "10.0.0.5", 41234, "noc-1") == "http://10.0.0.5:41234"
    assert advertised_url(None, "fd00::5", 9177, "noc-1") == "http://[fd00::5]:9177"
    assert advertised_url(None, "0.0.0.0", 9177, "noc-1.example") == "http://noc-1.example:9177"
    assert advertised_url(None, "::", 9177, "") is None


async def test_a_node_that_cannot_ask_the_database_who_leads_answers_503_with_retry_after() -> None:
    forwarder = Forwarder(StateServer(f"postgresql://monitord@127.0.0.1:{free_port()}/monitord"), "poller-1/812")
    async with TestServer(forwarding_app({}, forwarder)) as server, aiohttp.ClientSession() as session:
        async with session.post(server.make_url("/api/maintenance"), json={}) as answer:
            assert answer.status == 503 and answer.headers["Retry-After"] == "2"
            body = await answer.json()
    assert body["node"] == "poller-1/812"
    assert body["error"].startswith("this node cannot read which node leads from the database (")
    assert forwarder.results == {"no_database": 1}


async def test_a_standby_and_a_poller_answer_the_api_as_the_leader_does_and_follow_a_takeover(
    tmp_path: Path, daemons, pg_database: StateServer
) -> None:
    isp = build_sample_isp(tmp_path, base="127.6.88")
    write_config(
        tmp_path,
        rules=FAST_RULES,
        state=pg_database.url,
        state_file=None,
        cluster={"lease": "3s", "notifier_listen": "127.0.0.1:0"},
    )
    token = (tmp_path / "secrets" / "api.token").read_text(encoding="utf-8").strip()
    exchanges = sorted(load_config(isp.config).topology.exchanges)

    poller = await daemons(isp.config, "--role", "poller")
    status, headers, body = await call(poller, "GET", "/api/incidents")
    assert status == 503 and headers["Retry-After"] and "no node leads" in body["error"], body

    notifier = await daemons(isp.config, "--role", "notifier")
    leader = await daemons(isp.config, "--role", "correlator")
    standby = await daemons(isp.config, "--role", "correlator")
    assert "standing by" in standby.log() and "standing by" not in leader.log()
    await until(lambda: "advertised this leader's API" in leader.log(), 30, "the leader to advertise its API")
    assert sql(pg_database, "SELECT epoch, holder, advertise FROM correlator_leader") == [
        (1, holder(leader), f"http://127.0.0.1:{leader.port}")
    ]

    # reads: the same answer from every node, saying who answered and who passed it on
    direct = await call(leader, "GET", "/api/incidents?all=1")
    assert direct[0] == 200 and FORWARDED_BY not in direct[1]
    for node in (standby, poller, notifier):
        status, headers, body = await call(node, "GET", "/api/incidents?all=1")
        assert (status, body) == (direct[0], direct[2])
        assert headers[ANSWERED_BY] == holder(leader) and headers[FORWARDED_BY] == holder(node)
    print(
        f"GET /api/incidents, median of 30: {await median_ms(leader):.1f} ms direct, {await median_ms(poller):.1f} ms via a poller"
    )

    # changes: behind the leader's token check, made once, seen from every node
    for node, window_id in ((standby, "mw-through-standby"), (poller, "mw-through-poller")):
        status, headers, body = await call(node, "POST", "/api/maintenance", token=token, json=window(exchanges[0], window_id))
        assert status == 201 and body["id"] == window_id and headers["Location"] == f"/api/maintenance/{window_id}", body
    listed = await call(leader, "GET", "/api/maintenance")
    assert {w["id"] for w in listed[2]} == {"mw-through-standby", "mw-through-poller"}
    assert [(await call(node, "GET", "/api/maintenance"))[2] for node in (standby, poller)] == [listed[2], listed[2]]

    refused = await call(leader, "POST", "/api/maintenance", token="wrong", json=window(exchanges[1], "mw-refused"))
    assert refused[0] == 401
    for node in (standby, poller, notifier):
        status, headers, body = await call(
            node, "POST", "/api/maintenance", token="wrong", json=window(exchanges[1], "mw-refused")
        )
        assert (status, body) == (401, refused[2]) and headers["WWW-Authenticate"] == refused[1]["WWW-Authenticate"]
    assert len((await call(leader, "GET", "/api/maintenance"))[2]) == 2

    # bounded and loop-free: a body over the limit is refused at the node, a forwarded request never forwarded again
    status, _, body = await call(poller, "POST", "/api/maintenance", token=token, data=b"x" * (MAX_BODY + 1))
    assert status == 413 and body["error"] == f"body: at most {MAX_BODY} bytes"
    status, headers, body = await call(standby, "GET", "/api/incidents", headers={FORWARDED_BY: "elsewhere/1"})
    assert status == 503 and headers["Retry-After"] and "elsewhere/1 forwarded this request" in body["error"]

    # /health and /metrics stay the node's own: its role, and a poller's shards
    status, _, health = await call(poller, "GET", "/health")
    assert status == 200 and health["role"] == "poller"

    async def all_shards() -> bool:
        return (await call(poller, "GET", "/health"))[2]["shards"] == exchanges

    await wait_async(all_shards, 30, "the only poller to hold every shard")
    _, _, metrics = await call(poller, "GET", "/metrics")
    assert 'monitord_role{role="poller"} 1.0' in metrics
    assert all(f'monitord_shard_epoch{{shard="{shard}"}}' in metrics for shard in exchanges), metrics
    assert 'monitord_api_forwarded_total{result="too_large"} 1.0' in metrics
    _, _, metrics = await call(standby, "GET", "/metrics")
    assert 'monitord_role{role="correlator"} 1.0' in metrics and "monitord_correlator_leader 0.0" in metrics
    assert 'monitord_api_forwarded_total{result="loop"} 1.0' in metrics
    _, _, metrics = await call(notifier, "GET", "/metrics")
    assert 'monitord_role{role="notifier"} 1.0' in metrics
    assert 'monitord_api_forwarded_total{result="answered"} 2.0' in metrics

    # a takeover: the poller's requests go to the new leader
    leader.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    assert leader.proc.wait(timeout=10) == -signal.SIGKILL

    async def the_new_leader_answers() -> bool:
        status, headers, _ = await call(poller, "GET", "/api/incidents")
        return status == 200 and headers[ANSWERED_BY] == holder(standby)

    await wait_async(the_new_leader_answers, TAKEOVER_BOUND, "the new leader to answer through the poller")
    print(f"the new leader answered through the poller {time.monotonic() - killed:.1f} s after the kill -9")
    await until(lambda: len(LISTENING.findall(standby.log())) == 2, 10, "the new leader's API")
    follow(standby)
    assert sql(pg_database, "SELECT epoch, holder, advertise FROM correlator_leader") == [
        (2, holder(standby), f"http://127.0.0.1:{standby.port}")
    ]
    assert (await call(poller, "GET", "/api/maintenance"))[2] == listed[2]  # what the first leader committed

    # no leader left: the address it advertised answers nothing, and the poller says so
    assert await standby.stop() == 0
    status, headers, body = await call(poller, "GET", "/api/incidents")
    assert status == 503 and headers["Retry-After"] == "2", body
    assert body["error"].startswith(f"the correlator leader {holder(standby)} at http://127.0.0.1:{standby.port} did not answer")
    assert await poller.stop() == 0 and await notifier.stop() == 0
