"""The tracking listener (issue 12 item 2), over HTTP: pages and JSON for known numbers, kind
pages for unknown and hostile ones, a 429 per client address, and nothing of the NOC API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
import pytest_asyncio

from monitord.config.model import TrackingConfig
from monitord.demo import until
from monitord.model import Incident, IncidentKind, Status
from monitord.stages import StageChange
from monitord.track_http import client_address
from notices.plan import place
from tests.ops_fixtures import wait_async
from tests.test_http import documented
from tests.track_fixtures import OPENED, private_values, serving

if TYPE_CHECKING:
    from tests.http_fixtures import Api

pytest_plugins = ["tests.http_fixtures"]

OPEN_LIMIT = TrackingConfig("127.0.0.1", 0, rate=1000.0, burst=1000)


@pytest_asyncio.fixture
async def url(tmp_path: Path) -> AsyncIterator[str]:
    async with serving(tmp_path, OPEN_LIMIT) as base:
        yield base


async def test_a_stage_the_helpdesk_set_is_shown_until_the_engine_resolves(tmp_path: Path) -> None:
    helpdesk = [
        StageChange("ARZ-2026-000123", "field_team", "helpdesk", "ayse", OPENED + 700),  # open
        StageChange("ARZ-2026-000125", "at_exchange", "helpdesk", "ayse", OPENED + 700),  # resolved by the engine
    ]
    async with serving(tmp_path, OPEN_LIMIT, stages=helpdesk) as base:
        _, page, _ = await get(base, "/track/ARZ-2026-000123")
        _, body, _ = await get(base, "/track/ARZ-2026-000123.json?lang=en")
        _, resolved, _ = await get(base, "/track/ARZ-2026-000125.json")
    assert 'id="stage">Saha ekibinde<' in page and '<li aria-current="step">Saha ekibinde</li>' in page
    assert json.loads(body)["stage"] == {"id": "field_team", "name": "With the field team", "final": False}
    assert json.loads(resolved)["stage"]["id"] == "resolved"


async def get(url: str, path: str, method: str = "GET", **kwargs: Any) -> tuple[int, str, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, url + path, **kwargs) as response:
            return response.status, await response.text(), response.headers


def kind(status: int, body: str, headers: Any) -> None:
    """A page a person can read, never a traceback or the API's JSON."""
    assert headers["Content-Type"].startswith("text/html"), (status, body[:200])
    assert "<!doctype html>" in body and "Traceback" not in body and '"error"' not in body


async def test_a_known_number_in_both_languages(url: str) -> None:
    status, body, headers = await get(url, "/track/ARZ-2026-000123")
    assert status == 200 and 'id="stage">Arıza tespit edildi<' in body
    assert "Beşiktaş Santrali bölgesinde internet hizmeti kesintisi" in body
    assert headers["Content-Security-Policy"].startswith("default-src 'none'") and headers["Cache-Control"] == "no-store"
    _, english, _ = await get(url, "/track/ARZ-2026-000124", headers={"Accept-Language": "de-DE,en-GB;q=0.8,tr;q=0.5"})
    assert 'id="stage">Verifying the repair<' in english
    _, asked, _ = await get(url, "/track/arz-2026-000125?lang=en", headers={"Accept-Language": "tr"})
    assert 'id="stage">Resolved<' in asked and "ARZ-2026-000125" in asked
    assert not [v for v in private_values() if v in body + english + asked]


@pytest.mark.parametrize(
    ("accept_language", "query", "expected"),
    [
        ("tr-TR,tr;q=0.9,en-US;q=0.8,en;q=0.7", "", "tr"),
        ("en-US,en;q=0.9", "", "en"),
        ("de-DE,de;q=0.9", "", "tr"),  # neither: Turkish
        ("en;q=0.2, tr;q=0.8", "", "tr"),
        ("en;q=0", "", "tr"),
        ("*", "", "tr"),
        ("en;q=banana," * 300, "", "en"),  # malformed weights count as 1; only the first 200 characters are read
        ("en", "?lang=tr", "tr"),
        ("tr", "?lang=EN", "en"),
        ("en", "?lang=fr", "en"),
    ],
)
async def test_the_language(url: str, accept_language: str, query: str, expected: str) -> None:
    status, text, headers = await get(url, f"/track/ARZ-2026-000123.json{query}", headers={"Accept-Language": accept_language})
    assert status == 200 and json.loads(text)["language"] == expected
    assert "Accept-Language" in headers["Vary"]


async def test_the_json_form(url: str) -> None:
    status, text, headers = await get(url, "/track/ARZ-2026-000123.json?lang=en")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    body = json.loads(text)
    assert body["stage"] == {"id": "detected", "name": "Fault detected", "final": False}
    assert body["started_at"] == "2026-12-04T15:05:00+03:00" and body["subscribers_about"] == 50
    assert not [v for v in private_values() if v in text]
    _, accepted, _ = await get(url, "/track/ARZ-2026-000123", headers={"Accept": "application/json"})
    assert json.loads(accepted) == {**body, "language": "tr", "stage": {**body["stage"], "name": "Arıza tespit edildi"}} | {
        "affected": "Beşiktaş Santrali bölgesinde internet hizmeti kesintisi"
    }
    status, missing, _ = await get(url, "/track/ARZ-2026-999999.json")
    assert status == 404 and json.loads(missing)["error"] == "not_found"
    documented("/track/{number}", "get", 200, body)
    documented("/track/{number}", "get", 404, json.loads(missing))


async def test_a_merged_number_follows_its_wider_incident(url: str) -> None:
    status, body, _ = await get(url, "/track/ARZ-2026-000127")
    assert status == 200 and 'id="stage">Arıza tespit edildi<' in body and 'id="merged">ARZ-2026-000127 ' in body
    _, text, _ = await get(url, "/track/ARZ-2026-000127.json")
    assert (json.loads(text)["tracking"], json.loads(text)["merged_from"]) == ("ARZ-2026-000123", "ARZ-2026-000127")
    _, text, _ = await get(url, "/track/ARZ-2026-000128.json")  # the wider one is gone: its own, resolved
    assert json.loads(text)["tracking"] == "ARZ-2026-000128" and json.loads(text)["stage"]["id"] == "resolved"


async def test_an_unknown_number_gets_a_kind_404(url: str) -> None:
    status, body, headers = await get(url, "/track/ARZ-2026-999999")
    assert status == 404
    kind(status, body, headers)
    assert "Bu takip numarasıyla bir kayıt bulamadık." in body and "ARZ-2026-999999" in body


@pytest.mark.parametrize(
    "path",
    [
        "/track/ARZ-2026-000123'%20OR%20'1'='1",
        "/track/ARZ-2026-000123%22;DROP%20TABLE%20incidents;--",
        "/track/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/track/ARZ-2026-000123%00",
        "/track/ARZ-2026-%E2%80%AE000123",
        "/track/" + "A" * 3000,
        "/track/",
        "/track/ARZ-2026-000123/../../api/incidents",
    ],
)
async def test_malformed_numbers_get_a_kind_404(url: str, path: str) -> None:
    status, body, headers = await get(url, path)
    assert status == 404
    kind(status, body, headers)
    assert "<script>" not in body and "DROP" not in body and "A" * 50 not in body


async def test_a_10_kb_number_gets_a_kind_page_and_a_longer_line_a_bare_400(url: str) -> None:
    status, body, headers = await get(url, "/track/" + "9" * 10_000)
    assert status == 404
    kind(status, body, headers)
    assert "9" * 20 not in body
    status, body, _ = await get(url, "/track/" + "9" * 20_000)  # past MAX_LINE: aiohttp refuses it before routing
    assert status == 400 and "Traceback" not in body


@pytest.mark.parametrize("path", ["/api/incidents", "/api/incidents/ARZ-2026-000123", "/metrics", "/health", "/"])
async def test_nothing_of_the_noc_api_is_served(url: str, path: str) -> None:
    status, body, headers = await get(url, path)
    assert status == 404
    kind(status, body, headers)


async def test_only_get(url: str) -> None:
    status, body, headers = await get(url, "/track/ARZ-2026-000123", method="POST", data=b"x" * 100)
    assert status == 405 and headers["Allow"] == "GET"
    kind(status, body, headers)


async def test_each_client_address_is_rate_limited(tmp_path: Path) -> None:
    settings = TrackingConfig("127.0.0.1", 0, rate=0.01, burst=3, trusted_proxies=("127.0.0.1",))
    async with serving(tmp_path, settings) as url:
        for _ in range(3):
            assert (await get(url, "/track/ARZ-2026-000123"))[0] == 200
        status, body, headers = await get(url, "/track/ARZ-2026-000123")
        assert status == 429 and int(headers["Retry-After"]) >= 1
        kind(status, body, headers)
        assert "Kısa sürede çok fazla sorgu geldi" in body and "Arıza tespit edildi" not in body
        status, text, _ = await get(url, "/track/ARZ-2026-000123.json")
        assert status == 429 and json.loads(text)["error"] == "limited"
        documented("/track/{number}", "get", 429, json.loads(text))
        behind = {"X-Forwarded-For": "198.51.100.7"}  # another customer, through the trusted proxy
        assert (await get(url, "/track/ARZ-2026-000123", headers=behind))[0] == 200


def test_client_addresses_behind_proxies() -> None:
    trusted = ("127.0.0.1", "10.0.0.2")
    assert client_address("127.0.0.1", "203.0.113.9", trusted) == "203.0.113.9"
    assert client_address("127.0.0.1", "1.1.1.1, 203.0.113.9, 10.0.0.2", trusted) == "203.0.113.9"  # the first is forgeable
    assert client_address("192.0.2.5", "203.0.113.9", trusted) == "192.0.2.5"  # not a proxy: its header is ignored
    assert client_address("127.0.0.1", "nonsense", trusted) == "127.0.0.1"


@pytest.mark.asyncio(loop_scope="session")
async def test_the_daemon_serves_a_real_incident_on_its_own_listener(api: Api) -> None:
    """A silent DSLAM's outage, as its customers see it: the stage follows the incident's phase,
    and none of the incident's device, addresses, lines, names or phones are on the page."""
    daemon = api.daemon
    assert daemon.tracking_port is not None and daemon.tracking_port != daemon.http_port
    url = f"http://127.0.0.1:{daemon.tracking_port}"
    dslam = api.dslams()[2]  # one no other test takes down, so its lines end ok, not flapping
    await until(lambda: all(daemon.line_state(i).status is Status.OK for i in api.lines_of(dslam)), 30, f"{dslam}'s lines ok")
    device = api.topology.devices[dslam]
    api.world.faults.silence(*api.world.isp.addresses_under("device", dslam))
    try:
        mine = set(api.lines_of(dslam))

        def found() -> Incident | None:  # at the DSLAM, or at a wider node when the rules place it there
            return next((i for i in daemon.open_incidents() if i.kind is IncidentKind.OUTAGE and mine & i.affected), None)

        outage = await until(found, 30, f"an outage of {dslam}'s lines")
        await until(lambda: daemon.incident(outage.tracking), 30, "the outage written")  # the page reads the store
        status, page, _ = await get(url, f"/track/{outage.tracking}")
        assert status == 200 and 'id="stage">Arıza tespit edildi<' in page
        assert f"{place(api.topology, outage.root).area} bölgesinde internet hizmeti kesintisi" in page
        lines = [api.topology.lines[i] for i in outage.affected]
        private = [dslam, device.address, *(e for e in outage.evidence)]
        private += [v for line in lines for v in (line.id, line.name, line.phone, line.modem, line.mac) if v]
        _, text, _ = await get(url, f"/track/{outage.tracking}.json")
        documented("/track/{number}", "get", 200, json.loads(text))
        assert [v for v in private if v in page or v in text] == []
        assert (await api.call("GET", f"/track/{outage.tracking}"))[0] == 404  # not on the NOC API's listener
    finally:
        api.world.faults.restore_all()
    # the stage follows the repair once every line of the DSLAM is back, also when the outage was
    # merged into a wider incident meanwhile that goes on for other tests' lines
    await until(lambda: not any(mine & i.affected for i in daemon.open_incidents()), 90, "the repair")

    async def stage() -> dict[str, Any]:
        """The page's stage; its own rate limit (a page each 2 s after a burst) is waited out."""
        while True:
            status, text, headers = await get(url, f"/track/{outage.tracking}.json?lang=en")
            if status != 429:
                return dict(json.loads(text)["stage"])
            await asyncio.sleep(float(headers["Retry-After"]))

    # the page reads what the store has committed, which follows the engine by a write on a busy machine
    try:
        await wait_async(lambda: stage_is(stage, "resolved"), 60, "the page to show the repair")
    except TimeoutError as error:  # what the page and the store said instead, for the next one to read
        raise AssertionError((await stage(), daemon.incident(outage.tracking))) from error
    assert await stage() == {"id": "resolved", "name": "Resolved", "final": True}
    await until(lambda: all(daemon.line_state(i).status is Status.OK for i in mine), 60, f"{dslam}'s lines ok")


async def stage_is(stage: Any, wanted: str) -> bool:
    return (await stage())["id"] == wanted
