"""Field dispatch against a real Request Tracker (issue 12 item 6): the dispatch ticket opens in
the field team's queue with the location, the incident's ticket and the dispatch ticket are never
taken for each other, a field engineer taking the dispatch ticket moves the incident to "field
team", and the dispatch ticket is resolved with the incident."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from dispatch_fixtures import CABINET_SITE, HOME, States, outage, topology
from rt_fixtures import comments, new_tracking, rt_server, ticket_item, tickets_tagged  # noqa: F401  (fixtures)

from lab.rt import FIELD_QUEUE, RtServer
from monitord.config.model import StageSyncConfig
from monitord.config.templates import builtin_templates
from monitord.model import NodeRef, Phase
from monitord.rtsync import StageSync
from monitord.stages import DEFAULT_TABLE
from monitord.store import Store
from notices.dispatch import DispatchSettings, dispatch_closures, due_dispatches
from notices.plan import PlanSettings
from notifiers.rt import RequestTracker
from rules.engine import IncidentChange

SETTINGS = PlanSettings(templates=builtin_templates())
FIELD = DispatchSettings(queue=FIELD_QUEUE, delay=600.0)


def _queue_of(server: RtServer, ticket: dict) -> str:
    return server.get(f"queue/{ticket['Queue']['id']}")["Name"]


async def test_a_dispatch_ticket_lands_in_the_field_queue_and_taking_it_moves_the_stage(
    rt_server: RtServer, tmp_path: Path
) -> None:
    tracking = new_tracking()
    now = time.time()
    incident = replace(
        outage(NodeRef("device", "sisli-dslam-01"), frozenset({"s001", "s002"}), tracking=tracking),
        opened_at=now - 900,
        updated_at=now - 900,
    )
    store = Store.open(tmp_path / "state.db")
    store.commit_step(None, [incident], [], now)
    notifier = RequestTracker(rt_server.url, rt_server.queue, token=rt_server.token, routed=[FIELD_QUEUE])
    client = RequestTracker(rt_server.url, rt_server.queue, token=rt_server.token, routed=[FIELD_QUEUE])
    sync = StageSync(client, StageSyncConfig(), DEFAULT_TABLE, store, time.time, dispatch_stage="field_team")
    try:
        incident_ticket = await notifier.send(ticket_item(tracking, "create"))
        [(item, _)] = due_dispatches([incident], topology(), SETTINGS, FIELD, now, States({}))
        dispatch_ticket = await notifier.send(item)
        assert await notifier.send(item) == dispatch_ticket != incident_ticket, "sent again: the same ticket"

        [ticket] = tickets_tagged(rt_server, f"{tracking}/saha")
        assert str(ticket["id"]) == dispatch_ticket and _queue_of(rt_server, ticket) == FIELD_QUEUE
        assert ticket["Subject"].startswith(f"[{tracking}] Saha: Kablo arızası")
        content = rt_server.get(f"ticket/{dispatch_ticket}/attachments?fields=Content&per_page=1")["items"][0]["Content"]
        for said in ("Kabin: sisli-k12", f"Saha adresi: {CABINET_SITE}", "Saha koordinatı: 41.060200, 28.987700", HOME):
            assert said in content
        [own] = tickets_tagged(rt_server, tracking)
        assert str(own["id"]) == incident_ticket and _queue_of(rt_server, own) == rt_server.queue

        assert await notifier.send(ticket_item(tracking, "comment", 1)) == incident_ticket, "the incident's comment: its ticket"
        assert comments(rt_server, dispatch_ticket) == []

        assert await sync.poll() == 0, "nobody took it yet"
        rt_server.put(f"ticket/{incident_ticket}", {"CustomFields": {"Stage": "santral"}})
        assert await sync.poll() == 1 and store.helpdesk_stage(tracking) == "at_exchange"
        rt_server.put(f"ticket/{dispatch_ticket}", {"Owner": "saha1"})
        assert await sync.poll() == 1
        assert store.helpdesk_stage(tracking) == "field_team"
        assert [(c.stage, c.source, c.actor) for c in store.stage_history(tracking)][-1] == ("field_team", "helpdesk", "saha1")
        await notifier.send(ticket_item(tracking, "comment", 2))  # monitord's own comment updates the incident's ticket
        assert await sync.poll() == 0 and store.helpdesk_stage(tracking) == "field_team", "no flip back to its older stage"

        resolved = replace(incident, phase=Phase.RESOLVED, resolved_at=time.time(), updated_at=time.time())
        [(closing, _)] = dispatch_closures(
            [IncidentChange(resolved, "resolved")], topology(), SETTINGS, FIELD, time.time(), lambda t: True
        )
        assert await notifier.send(closing) == dispatch_ticket
        assert rt_server.get(f"ticket/{dispatch_ticket}")["Status"] == "resolved"
        assert (
            rt_server.get(f"ticket/{incident_ticket}")["Status"] != "resolved"
        ), "the incident's ticket is the engine's to close"
        assert any("Saha kaydı kapatıldı" in c for c in comments(rt_server, dispatch_ticket))
    finally:
        await notifier.close()
        await client.close()
        store.close()
