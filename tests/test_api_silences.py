"""Silences through the API and the CLI of the shared running daemon (tests/http_fixtures.py):
their life cycle behind the token, the metrics, and bad input refused with the field at fault
and nothing stored."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from tests.test_cli import monitord, token_file
from tests.test_http import documented, iso

if TYPE_CHECKING:
    from tests.http_fixtures import Api

pytest_plugins = ["tests.http_fixtures"]
on_daemon_loop = pytest.mark.asyncio(loop_scope="session")  # the loop the shared daemon runs on


def dslam(api: Api) -> str:
    return api.dslams()[0]


def body_for(api: Api, **changes: Any) -> dict[str, Any]:
    return {
        "nodes": [f"device:{dslam(api)}"],
        "end": iso(timedelta(hours=1)),
        "author": "ayse.noc",
        "comment": "flapping since the storm",
    } | changes


async def metrics_with(api: Api, needle: str) -> str | None:
    """/metrics once it shows `needle` (it is rendered at most every 2 s: the last may predate the change)."""
    status, text = await api.call("GET", "/metrics")
    return text if status == 200 and needle in text else None


async def until_async(probe: Callable[[], Awaitable[str | None]], timeout: float, what: str) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    while (found := await probe()) is None:
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)
    return found


async def kept(api: Api) -> list[str]:
    status, listed = await api.call("GET", "/api/silences?all=1")
    assert status == 200
    return [s["id"] for s in listed]


@on_daemon_loop
async def test_a_silence_s_life_cycle(api: Api) -> None:
    region = sorted(api.topology.regions)[0]
    body = body_for(api, id="silence-api-1", matchers={"region": region, "kind": "outage"}, duration="2h", end=None)
    for token in (None, "wrong-token"):
        status, refused = await api.call("POST", "/api/silences", json=body, token=token)
        documented("/api/silences", "post", status, refused)
        assert status == 401
    status, created = await api.call("POST", "/api/silences", json=body, token=api.token)
    documented("/api/silences", "post", status, created)
    try:
        assert status == 201, created
        assert created | {"start": None, "end": None, "created_at": None} == {
            "id": "silence-api-1",
            "nodes": [f"device:{dslam(api)}"],
            "matchers": {"kind": "outage", "region": region},
            "start": None,
            "end": None,
            "created_at": None,
            "author": "ayse.noc",
            "comment": "flapping since the storm",
            "state": "active",
            "expired_by": None,
        }
        status, listed = await api.call("GET", "/api/silences")
        documented("/api/silences", "get", status, listed)
        assert created in listed
        status, again = await api.call("POST", "/api/silences", json=body, token=api.token)
        assert (status, again) == (409, {"error": "id: a silence 'silence-api-1' already exists"})
        metrics = await until_async(lambda: metrics_with(api, "monitord_silences_active 1.0"), 10, "a fresh rendering")
        assert "# TYPE monitord_notifications_suppressed_total counter" in metrics
    finally:
        status, expired = await api.call("DELETE", "/api/silences/silence-api-1?by=mehmet.noc", token=api.token)
    documented("/api/silences/{id}", "delete", status, expired)
    assert (status, expired) == (200, {"id": "silence-api-1", "expired": True, "by": "mehmet.noc"})
    assert "silence-api-1" not in [s["id"] for s in (await api.call("GET", "/api/silences"))[1]]
    ended = next(s for s in (await api.call("GET", "/api/silences?all=1"))[1] if s["id"] == "silence-api-1")
    assert (ended["state"], ended["expired_by"]) == ("expired", "mehmet.noc")
    status, body = await api.call("DELETE", "/api/silences/silence-api-1", token=api.token)
    documented("/api/silences/{id}", "delete", status, body)
    assert (status, body) == (404, {"error": "no active or planned silence 'silence-api-1'"})


BAD_SILENCES: list[tuple[dict[str, Any] | bytes, str]] = [
    (b"{not json", "body: not valid JSON"),
    ({"nodes": [], "matchers": {}}, "matchers: a silence needs nodes or matchers"),
    ({"nodes": None}, "matchers: a silence needs nodes or matchers"),
    ({"nodes": [], "matchers": {"colour": "red"}}, "matchers.colour: unknown label; known: region, exchange, device, kind"),
    ({"nodes": [], "matchers": {"region": "nowhere"}}, "matchers.region: no region 'nowhere'"),
    ({"nodes": [], "matchers": {"kind": "fire"}}, "matchers.kind: no kind 'fire' (one of cpe, degradation, outage, overrun)"),
    ({"nodes": [], "matchers": {"region": ""}}, "matchers.region: expected a non-empty string"),
    ({"nodes": [], "matchers": "region=marmara"}, "matchers: expected an object"),
    ({"nodes": ["device:nowhere"]}, "nodes[0]: no device 'nowhere' in the inventory"),
    ({"nodes": ["street:x"]}, "nodes[0]: 'street' is not a topology level"),
    ({"start": iso(timedelta(hours=2))}, "end: the silence ends before it starts"),
    ({"start": iso(timedelta(hours=-3)), "end": iso(timedelta(hours=-2))}, "end: already past"),
    ({"end": None}, "end: required (or duration, e.g. 2h)"),
    ({"duration": "2h"}, "duration: give end or duration, not both"),
    ({"end": iso(timedelta(days=40))}, "end: a silence lasts at most 31 days"),
    ({"author": ""}, "author: required"),
    ({"comment": None}, "comment: required"),
    ({"comment": "x" * 2001}, "comment: at most 2000 characters, not 2001"),
    ({"comment": "x" * 1_000_000}, "body: larger than 256 KiB; a comment is at most 2000 characters"),
    ({"colour": "red"}, "colour: unknown field"),
]


@on_daemon_loop
@pytest.mark.parametrize(
    ("changes", "message"), BAD_SILENCES, ids=[m.split(":")[0] + str(n) for n, (_, m) in enumerate(BAD_SILENCES)]
)
async def test_bad_silences_are_refused_and_change_nothing(api: Api, changes: dict[str, Any] | bytes, message: str) -> None:
    before = await kept(api)
    if isinstance(changes, bytes):
        sent: dict[str, Any] = {"data": changes, "headers": {"Content-Type": "application/json"}}
    else:
        sent = {"json": body_for(api, **changes)}
    status, answer = await api.call("POST", "/api/silences", token=api.token, **sent)
    documented("/api/silences", "post", status, answer)
    assert status == 400 and answer["error"].startswith(message), answer
    assert await kept(api) == before


@on_daemon_loop
async def test_the_cli_adds_lists_and_expires_a_silence(api: Api) -> None:
    device = dslam(api)
    tokens = ["--url", api.url, "--token-file", token_file(api)]
    what = ["--node", f"device:{device}", "--match", "kind=outage", "--for", "30m", "--author", "ayse.noc"]
    refused = await monitord("silences", "add", *what, "--comment", "storm", "--url", api.url)
    assert refused.code == 1 and "401 a valid bearer token is required" in refused.err
    bad = await monitord("silences", "add", *what, "--comment", "storm", "--match", "colour", *tokens)
    assert bad.code == 1 and "--match 'colour': expected LABEL=VALUE" in bad.err
    added = await monitord("silences", "add", *what, "--comment", "storm", "--id", "silence-cli-1", *tokens, "--json")
    assert added.code == 0, added.err
    assert added.json()["matchers"] == {"kind": "outage"} and added.json()["state"] == "active"
    try:
        table = await monitord("silences", "list", "--url", api.url)
        header, *rows = table.out.splitlines()
        assert header.split() == ["ID", "SCOPE", "START", "END", "STATE", "AUTHOR", "COMMENT"]
        assert any(r.startswith("silence-cli-1") and f"device:{device},kind=outage" in r and "storm" in r for r in rows)
    finally:
        expired = await monitord("silences", "expire", "silence-cli-1", "--by", "mehmet.noc", *tokens)
    assert (expired.code, expired.out) == (0, "expired silence-cli-1\n")
    listed = await monitord("silences", "list", "--url", api.url, "--json")
    assert "silence-cli-1" not in [s["id"] for s in listed.json()]
