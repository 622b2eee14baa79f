"""The helpdesk's stages read back from a real Request Tracker (issue 12 item 1): a ticket's
Stage field, its status and its owner set the incident's stage, once per change, and the
tracking page shows it; a follow-up ticket's set its one subscriber's stage; `ticket_stage`
read on its own, and secrets never in what is logged."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from rt_fixtures import new_tracking, rt, rt_server, ticket_item  # noqa: F401  (fixtures)

from lab.rt import RtServer
from monitord.config.model import StageSyncConfig, TrackingConfig
from monitord.config.templates import builtin_templates
from monitord.http_server import HttpServer
from monitord.model import LineState, NodeRef, Phase, Secret, Status
from monitord.rtsync import CURSOR, StageSync, cursor_text, ticket_stage
from monitord.stages import DEFAULT_STAGES, DEFAULT_TABLE, StageTable
from monitord.store import Store
from monitord.track_http import make_tracking_app
from notices.confirm import LineEvidence, followup
from notices.plan import PlanSettings, stage_notices
from notifiers.rt import RequestTracker
from tests.track_fixtures import LINE_IDS, OUTAGE, PHONES, Settings, Source, topology

TEXTING = StageTable(tuple(replace(s, sms=s.id == "field_team") for s in DEFAULT_STAGES))  # field_team texts the customers
SYNC = StageSyncConfig(status={"stalled": "at_exchange"}, owner="field_team")


def item(stage: str | None = None, status: str = "open", owner: str = "Nobody") -> dict:
    fields = [{"name": "Tracking Number", "values": ["ARZ-2026-000123"]}, {"name": "Stage", "values": [stage] if stage else []}]
    return {
        "id": "7",
        "Status": status,
        "Owner": {"id": owner},
        "LastUpdatedBy": {"id": "ayse"},
        "LastUpdated": "2026-12-04T18:42:00Z",
        "CustomFields": fields,
    }


@pytest.mark.parametrize(
    ("ticket", "stage", "actor"),
    [
        (item("Saha"), "field_team", "ayse"),
        (item("Saha", status="stalled"), "field_team", "ayse"),  # the field before the status
        (item("santralde işlemde"), "at_exchange", "ayse"),  # a name, any case
        (item(status="stalled"), "at_exchange", "ayse"),
        (item(owner="mehmet"), "field_team", "mehmet"),  # someone took it
        (item("no such stage"), None, None),
        (item(), None, None),
        ({**item("Saha"), "LastUpdated": "yesterday"}, None, None),  # not RT's: skipped, never a crash
    ],
)
def test_a_tickets_stage(ticket: dict, stage: str | None, actor: str | None) -> None:
    found = ticket_stage(ticket, DEFAULT_TABLE, SYNC)
    assert (found and found.stage.id, found and found.actor) == (stage, actor)
    assert found is None or (found.tracking, found.ticket) == ("ARZ-2026-000123", "7")


async def test_stages_set_in_rt_reach_the_incident_and_the_tracking_page(
    rt: RequestTracker, rt_server: RtServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tracking = new_tracking()
    store = Store.open(tmp_path / "state.db")
    incident = replace(OUTAGE, tracking=tracking, opened_at=time.time() - 60, updated_at=time.time() - 60)
    store.commit_step(None, [incident], [], time.time())
    ticket_id = await rt.send(ticket_item(tracking, "create"))
    client = RequestTracker(rt_server.url, rt_server.queue, token=rt_server.token)
    settings = PlanSettings(templates=builtin_templates())
    wakes: list[bool] = []
    sync = StageSync(
        client,
        SYNC,
        TEXTING,
        store,
        time.time,
        lambda i, st, now, line: stage_notices(i, st, topology(), settings, now, line),
        lambda: wakes.append(True),
    )
    source = Source(Settings(topology()), store, asyncio.get_running_loop())
    server = HttpServer([(make_tracking_app(source, TrackingConfig("127.0.0.1", 0, 1000.0, 1000)), "127.0.0.1", 0)])
    (port,) = await server.start()
    caplog.set_level(logging.DEBUG)
    try:
        rt_server.put(f"ticket/{ticket_id}", {"CustomFields": {"Stage": "Saha"}})
        assert await sync.poll() == 1
        assert store.helpdesk_stage(tracking) == "field_team"
        told = [i.notification for i in store.items() if i.notification.incident == tracking]
        assert len(told) == len(incident.affected) and {n.action for n in told} == {"stage"} and wakes == [True]
        assert all("Saha ekibinde" in n.body and tracking in n.body for n in told if n.channel == "sms")
        assert await sync.poll() == 0  # read again from the cursor's second: nothing new
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/track/{tracking}.json") as response:
                assert json.loads(await response.text())["stage"]["id"] == "field_team"
        rt_server.put(f"ticket/{ticket_id}", {"CustomFields": {"Stage": ""}, "Status": "stalled"})
        assert await sync.poll() == 1
        history = store.stage_history(tracking)
        assert [(c.stage, c.source, c.actor) for c in history] == [
            ("detected", "engine", "monitord"),
            ("field_team", "helpdesk", "monitord"),  # the lab's helpdesk user is the API user
            ("at_exchange", "helpdesk", "monitord"),
        ]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/track/{tracking}") as response:
                assert 'id="stage">Santralde işlemde<' in await response.text()
        store.commit_step(None, [replace(incident, phase=Phase.RESOLVED, resolved_at=time.time())], [], time.time())
        rt_server.put(f"ticket/{ticket_id}", {"CustomFields": {"Stage": "Saha"}})
        assert await sync.poll() == 0  # a resolved incident's stage is the engine's
    finally:
        await server.stop()
        await client.close()
        store.close()
    assert rt_server.token.reveal() not in caplog.text


async def test_a_refused_token_is_retried_and_never_logged(
    rt_server: RtServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store.open(tmp_path / "state.db")
    wrong = Secret("not-the-token-" + rt_server.token.reveal()[:4], "env:RT_TOKEN")
    sync = StageSync(
        RequestTracker(rt_server.url, rt_server.queue, token=wrong),
        replace(SYNC, every=0.1, max_backoff=0.4),
        DEFAULT_TABLE,
        store,
        time.time,
    )
    runner = asyncio.create_task(sync.run())
    try:
        await asyncio.sleep(1.0)
    finally:
        runner.cancel()
        await sync.close()
        store.close()
    assert sync.failing is not None and "401" in sync.failing
    assert caplog.text.count("reading stages from RT failed") == 1  # logged once, not on every poll
    assert wrong.reveal() not in caplog.text


async def test_a_follow_up_tickets_stage_is_its_subscribers_and_told_to_them_alone(
    rt: RequestTracker, rt_server: RtServer, tmp_path: Path
) -> None:
    tracking, now = new_tracking(), time.time()
    store = Store.open(tmp_path / "state.db")
    incident = replace(OUTAGE, tracking=tracking, opened_at=now - 3600, updated_at=now - 3600)
    store.commit_step(None, [incident], [], now - 3600)
    store.commit_step(None, [replace(incident, phase=Phase.RESOLVED, resolved_at=now - 600, updated_at=now - 600)], [], now - 600)
    store.put_cursor(CURSOR, cursor_text(datetime.now(UTC) - timedelta(minutes=1)))
    settings = PlanSettings(templates=builtin_templates())
    await rt.send(ticket_item(tracking, "create"))
    line = topology().lines[LINE_IDS[3]]
    up = LineState(NodeRef("line", line.id), Status.OK, now)  # the probes see it up; the subscriber says no
    child = await rt.send(followup(tracking, LineEvidence(line, "Beşiktaş", up, incident.evidence), settings)[0])
    client = RequestTracker(rt_server.url, rt_server.queue, token=rt_server.token)
    sync = StageSync(
        client,
        SYNC,
        TEXTING,
        store,
        time.time,
        lambda i, st, at, ln: stage_notices(i, st, topology(), settings, at, ln),
    )
    try:
        assert await sync.poll() == 1  # opened, nobody on it yet
        assert store.followup_stage(tracking, line.id) == "detected"
        rt_server.put(f"ticket/{child}", {"CustomFields": {"Stage": "Saha"}})
        assert await sync.poll() == 1
        assert await sync.poll() == 0  # read again from the cursor's second: nothing new
        told = [(i.notification.recipient, i.notification.action) for i in store.items() if i.notification.incident == tracking]
        assert told == [(PHONES[3], "stage")]  # that subscriber only, though the incident is resolved
        rt_server.put(f"ticket/{child}", {"Status": "resolved"})
        assert await sync.poll() == 1
        assert [(c.stage, c.source, c.actor) for c in store.subscriber_stage_history(tracking, line.id)] == [
            ("detected", "helpdesk", "monitord"),
            ("field_team", "helpdesk", "monitord"),
            ("resolved", "helpdesk", "monitord"),
        ]
        assert [c.source for c in store.stage_history(tracking)] == ["engine", "engine"]  # the incident's: untouched
        assert store.helpdesk_stage(tracking) is None
    finally:
        await client.close()
        store.close()
