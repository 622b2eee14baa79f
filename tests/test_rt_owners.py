"""Ownership and status both ways between monitord and a real Request Tracker (issue 13 item 1):
an owner set or given back in RT is recorded as the incident's (source helpdesk, by RT's last
updater), and so is a ticket the helpdesk resolves while its incident is open; an owner,
acknowledgement or close made in monitord reaches the ticket through outbox items; and a change
that came from RT, or monitord's own read back, is never recorded or sent twice."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from rt_fixtures import comments, new_tracking, rt, rt_server, ticket_item  # noqa: F401  (fixtures)

from lab.rt import RtServer
from monitord.config.model import StageSyncConfig
from monitord.config.templates import builtin_templates
from monitord.incident_actions import current_owner, ticket_ended
from monitord.model import IncidentEvent, Notification, Phase
from monitord.rtsync import StageSync, ticket_state
from monitord.stages import DEFAULT_TABLE
from monitord.store import Store
from notices.plan import PlanSettings, plan, workflow_ticket
from notifiers.rt import RequestTracker, marker
from rules.engine import Closure, IncidentChange
from tests.track_fixtures import OUTAGE, topology

SETTINGS = PlanSettings(templates=builtin_templates(), language="en")


def test_a_tickets_owner_and_status_as_the_sync_reads_them() -> None:
    fields = [{"name": "Tracking Number", "values": ["ARZ-2026-000123"]}]
    ticket = {
        "Owner": {"id": "ayse"},
        "Status": "stalled",
        "LastUpdatedBy": {"id": "mehmet"},
        "LastUpdated": "2026-12-04T18:42:00Z",
    }
    found = ticket_state({**ticket, "CustomFields": fields})
    assert found is not None
    assert (found.tracking, found.owner, found.status, found.actor) == ("ARZ-2026-000123", "ayse", "stalled", "mehmet")
    assert ticket_state({**ticket, "Owner": {"id": "Nobody"}, "CustomFields": fields}).owner == ""  # type: ignore[union-attr]
    assert ticket_state({**ticket, "CustomFields": []}) is None  # not one of monitord's tickets
    assert ticket_state({**ticket, "LastUpdated": "dün", "CustomFields": fields}) is None


async def _deliver(store: Store, rt: RequestTracker, sent: set[str]) -> list[Notification]:
    """What the outbox would do: send each queued ticket item not sent yet (twice: a retry), and mark it sent."""
    items = [i for i in store.items("ticket") if i.notification.key not in sent]
    for item in items:
        ref = await rt.send(item.notification)
        assert await rt.send(item.notification) == ref
        store.mark_sent(item.id, ref, time.time())
        sent.add(item.notification.key)
    return [i.notification for i in items]


async def test_owners_acknowledgement_and_close_both_ways_without_echo(
    rt: RequestTracker,  # noqa: F811
    rt_server: RtServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    tracking = new_tracking()
    store = Store.open(tmp_path / "state.db")
    now = time.time()
    incident = replace(OUTAGE, tracking=tracking, opened_at=now - 60, updated_at=now - 60)
    store.commit_step(None, [incident], [], now)
    ticket_id = await rt.send(ticket_item(tracking, "create"))
    client = RequestTracker(rt_server.url, rt_server.queue, token=rt_server.token)
    sync = StageSync(client, StageSyncConfig(), DEFAULT_TABLE, store, time.time)
    sent: set[str] = set()

    def noc(action: str, by: str, text: str = "") -> None:
        """The NOC's action as monitord/workflow.py records it: the event and its ticket item."""
        event = IncidentEvent(tracking, action, by, time.time(), text)  # type: ignore[arg-type]
        ticket = workflow_ticket(incident, event, topology(), SETTINGS, time.time(), set_owner=True)
        store.add_incident_event(event, [ticket] if ticket else [], time.time())

    def owners() -> list[tuple[str, str, str]]:
        return [(e.text, e.actor, e.source) for e in store.incident_events(tracking) if e.action == "owner"]

    try:
        rt_server.put(f"ticket/{ticket_id}", {"Owner": "ayse"})  # taken in RT
        assert await sync.poll() == 1
        assert owners() == [("ayse", "monitord", "helpdesk")]  # the lab's helpdesk plays as the API user
        assert await sync.poll() == 0  # read again from the cursor's second: nothing new

        noc("owner", "mehmet", "zeynep")  # no such RT user: a comment says who took it
        (item,) = await _deliver(store, rt, sent)
        assert (item.action, item.subject) == ("owner", "zeynep")
        assert rt_server.get(f"ticket/{ticket_id}")["Owner"]["id"] == "ayse"  # type: ignore[index]
        said = [c for c in comments(rt_server, ticket_id) if marker(item.key) in c]
        assert len(said) == 1 and "zeynep took this incident (set in monitord by mehmet" in said[0]
        assert await sync.poll() == 0, "RT's owner did not change there: nothing recorded"
        assert current_owner(store.incident_events(tracking)).text == "zeynep"  # type: ignore[union-attr]

        noc("owner", "mehmet", "monitord")  # an RT user who may not own the queue's tickets: RT refuses, said in a comment
        (refused,) = await _deliver(store, rt, sent)
        assert rt_server.get(f"ticket/{ticket_id}")["Owner"]["id"] == "ayse"  # type: ignore[index]
        assert sum(marker(refused.key) in c for c in comments(rt_server, ticket_id)) == 1
        assert await sync.poll() == 0

        rt_server.put(f"ticket/{ticket_id}", {"Owner": "Nobody"})  # given back in RT: nobody has it now
        assert rt_server.get(f"ticket/{ticket_id}")["Owner"]["id"] == "Nobody"  # type: ignore[index]
        assert await sync.poll() == 1 and (store.helpdesk_ticket(tracking) or ("?",))[0] == ""
        assert current_owner(store.incident_events(tracking)) is None
        noc("owner", "mehmet", "ayse")  # an RT user who may own the queue's tickets
        await _deliver(store, rt, sent)
        assert rt_server.get(f"ticket/{ticket_id}")["Owner"]["id"] == "ayse"  # type: ignore[index]
        assert await sync.poll() == 0, "monitord's own owner read back is not recorded again"
        assert owners() == [
            ("ayse", "monitord", "helpdesk"),
            ("zeynep", "mehmet", "noc"),
            ("monitord", "mehmet", "noc"),
            ("", "monitord", "helpdesk"),
            ("ayse", "mehmet", "noc"),
        ]

        noc("ack", "mehmet")
        noc("note", "mehmet", "stays in monitord")
        rt_server.put(f"ticket/{ticket_id}", {"Status": "resolved"})  # the helpdesk ends the ticket, the fault goes on
        assert await sync.poll() == 0, "the ack's comment is not in RT yet: the ticket is judged when it is"
        (acked,) = await _deliver(store, rt, sent)
        assert await sync.poll() == 1 and await sync.poll() == 0
        ended = ticket_ended(store.incident_events(tracking))
        assert ended is not None and (ended.text, ended.source) == ("resolved", "helpdesk")
        assert store.incident(tracking).phase is not Phase.RESOLVED  # type: ignore[union-attr]
        assert acked.action == "comment" and acked.key == f"{tracking}/ticket/ack"
        assert sum("Acknowledged in monitord by mehmet" in c for c in comments(rt_server, ticket_id)) == 1
        assert not any("stays in monitord" in c for c in comments(rt_server, ticket_id))

        closed = replace(incident, phase=Phase.RESOLVED, resolved_at=time.time(), updated_at=time.time())
        muted = frozenset(sorted(incident.affected)[:2])
        change = IncidentChange(closed, "closed", closed=Closure("mehmet", "DSLAM replaced, lines moved", muted))
        planned = plan(change, topology(), SETTINGS, time.time(), lambda t: incident)
        store.commit_step(None, [closed], planned, time.time())
        (resolve,) = await _deliver(store, rt, sent)
        assert resolve.action == "resolve"
        assert rt_server.get(f"ticket/{ticket_id}")["Status"] == "resolved"  # type: ignore[index]
        (said_closed,) = [c for c in comments(rt_server, ticket_id) if marker(resolve.key) in c]
        assert "Closed by hand in monitord by mehmet: DSLAM replaced, lines moved" in said_closed
        assert "Lines still failing then: 2" in said_closed
        restored = {n.recipient for n, _ in planned if n.action == "restored"}
        told_lines = {i for i in incident.affected - muted if topology().lines[i].phone or topology().lines[i].email}
        assert len(restored) == len(told_lines) and restored, "restored only to the lines that recovered"
        assert not {topology().lines[i].phone for i in muted} & restored
        rt_server.put(f"ticket/{ticket_id}", {"Owner": "Nobody"})
        rt_server.put(f"ticket/{ticket_id}", {"Owner": "ayse"})
        assert await sync.poll() == 0, "a resolved incident takes no owner"
    finally:
        await client.close()
        store.close()


async def test_rt_down_leaves_an_owner_item_to_retry(rt_server: RtServer) -> None:  # noqa: F811
    tracking = new_tracking()
    down = RequestTracker("http://127.0.0.1:9", rt_server.queue, token=rt_server.token, timeout=2.0)
    item = replace(ticket_item(tracking, "owner"), subject="ayse")
    with pytest.raises(Exception) as failed:
        await down.send(item)
    assert getattr(failed.value, "retryable", False) is True
    await down.close()
