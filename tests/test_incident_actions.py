"""The NOC's work on an incident (issue 13 item 1): acknowledge, own, notes, each kept with who
and when; through the API and the CLI of the shared running daemon, on a real DSLAM outage; bad
input and an unknown or resolved incident refused with nothing recorded; the store on both engines."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from monitord.demo import until
from monitord.incident_actions import Refusal, parse_event, refusal
from monitord.model import Incident, IncidentEvent, IncidentKind, Notification, Phase
from monitord.store import Store
from tests.outbox_fixtures import store  # noqa: F401  (fixture)
from tests.plan_fixtures import incident
from tests.test_cli import monitord, token_file
from tests.test_http import documented

if TYPE_CHECKING:
    from tests.http_fixtures import Api

pytest_plugins = ["tests.http_fixtures"]
on_daemon_loop = pytest.mark.asyncio(loop_scope="session")  # the loop the shared daemon runs on
NOW = incident().opened_at + 60


@pytest.mark.parametrize(
    ("action", "body", "message"),
    [
        ("ack", ["ayse"], "body: expected a JSON object with by"),
        ("ack", {}, "by: expected who does it, 1 to 64 characters"),
        ("ack", {"by": "x" * 65}, "by: expected who does it, 1 to 64 characters"),
        ("ack", {"by": "ayse", "owner": "mehmet"}, "owner: unknown field; known: by"),
        ("owner", {"by": "ayse"}, "owner: required, a non-empty string"),
        ("owner", {"by": "ayse", "owner": "  "}, "owner: required, a non-empty string"),
        ("note", {"by": "ayse", "note": "x" * 2001}, "note: at most 2000 characters, not 2001"),
    ],
)
def test_bad_bodies_are_refused_naming_the_field(action: Any, body: Any, message: str) -> None:
    assert parse_event(action, "ARZ-2026-000123", body, NOW) == Refusal(400, message)


def test_who_may_do_what_to_which_incident() -> None:
    ack = IncidentEvent("ARZ-2026-000123", "ack", "ayse", NOW)
    owner = IncidentEvent("ARZ-2026-000123", "owner", "ayse", NOW, "mehmet")
    note = IncidentEvent("ARZ-2026-000123", "note", "ayse", NOW, "card replaced")
    resolved = incident(phase=Phase.RESOLVED, resolved=NOW)
    assert refusal(None, [], ack) == Refusal(404, "no incident 'ARZ-2026-000123'")
    assert refusal(incident(), [], ack) is None and refusal(incident(), [ack], owner) is None
    assert refusal(incident(), [owner, ack], ack) == Refusal(409, "incident ARZ-2026-000123 was already acknowledged by ayse")
    for action in (ack, owner):
        assert refusal(resolved, [], action) == Refusal(
            409, "incident ARZ-2026-000123 is resolved: it can no longer be acknowledged, taken or closed"
        )
    assert refusal(resolved, [ack], note) is None, "a post-mortem note belongs with the incident"


def test_events_are_kept_in_order_and_pruned_with_their_incident(store: Store) -> None:  # noqa: F811
    resolved = incident(phase=Phase.RESOLVED, resolved=NOW)
    store.commit_step(None, [resolved], [], NOW)
    events = [
        IncidentEvent(resolved.tracking, "ack", "ayse", NOW),
        IncidentEvent(resolved.tracking, "owner", "ayse", NOW + 1, "mehmet"),
        IncidentEvent(resolved.tracking, "note", "mehmet", NOW + 2, "Kart değişti"),
    ]
    for event in events:
        store.add_incident_event(event)
    assert store.incident_events(resolved.tracking) == events
    assert store.incident_events("ARZ-2026-999999") == []
    store.prune(NOW, NOW, NOW + 10)
    assert store.incident(resolved.tracking) is None and store.incident_events(resolved.tracking) == []


@on_daemon_loop
async def test_acknowledge_own_and_note_a_real_outage_then_its_resolution(api: Api) -> None:
    status, body = await api.call("POST", "/api/incidents/ARZ-2026-999999/ack", json={"by": "ayse"}, token=api.token)
    documented("/api/incidents/{tracking}/ack", "post", status, body)
    assert (status, body) == (404, {"error": "no incident 'ARZ-2026-999999'"})

    dslam = api.dslams()[-1]
    lines = set(api.lines_of(dslam))

    def its_outage() -> Incident | None:
        """The open outage with the DSLAM's lines: at the DSLAM, or wider while a test before this
        one on the shared daemon left lines that failed within the correlation window."""
        return next((i for i in api.daemon.open_incidents() if i.kind is IncidentKind.OUTAGE and lines <= i.affected), None)

    api.world.faults.silence(*api.world.isp.addresses_under("device", dslam))
    try:
        outage = await until(its_outage, 60, "the outage")
        base = f"/api/incidents/{outage.tracking}"
        assert (await api.call("POST", base + "/ack", json={"by": "ayse"}))[0] == 401
        status, acked = await api.call("POST", base + "/ack", json={"by": "ayse"}, token=api.token)
        documented("/api/incidents/{tracking}/ack", "post", status, acked)
        assert status == 201 and (acked["action"], acked["by"], acked["text"]) == ("ack", "ayse", "")
        status, again = await api.call("POST", base + "/ack", json={"by": "mehmet"}, token=api.token)
        documented("/api/incidents/{tracking}/ack", "post", status, again)
        assert (status, again) == (409, {"error": f"incident {outage.tracking} was already acknowledged by ayse"})
        for owner in ("mehmet", "zeynep"):
            status, owned = await api.call("POST", base + "/owner", json={"owner": owner, "by": "ayse"}, token=api.token)
            documented("/api/incidents/{tracking}/owner", "post", status, owned)
            assert status == 201 and owned["text"] == owner
        refused = [
            ({"note": "x" * 1_000_000, "by": "zeynep"}, "body: larger than 256 KiB; a note is at most 2000 characters"),
            ({"note": "x" * 2001, "by": "zeynep"}, "note: at most 2000 characters, not 2001"),
            ({"note": "", "by": "zeynep"}, "note: required"),
            ({"note": "ok", "by": ""}, "by: expected who does it"),
        ]
        for bad, message in refused:
            status, answer = await api.call("POST", base + "/notes", json=bad, token=api.token)
            documented("/api/incidents/{tracking}/notes", "post", status, answer)
            assert status == 400 and answer["error"].startswith(message), answer
        tokens = ["--url", api.url, "--token-file", token_file(api)]
        noted = await monitord("incident", "note", outage.tracking, "Saha ekibi yolda", "--by", "zeynep", *tokens)
        assert noted.code == 0, noted.err
        assert noted.out.startswith(f"{outage.tracking}: note by zeynep at ")

        status, detail = await api.call("GET", base)
        documented("/api/incidents/{tracking}", "get", status, detail)
        assert detail["acknowledged"]["by"] == "ayse"
        assert (detail["owner"]["name"], detail["owner"]["by"]) == ("zeynep", "ayse")
        assert [(e["action"], e["by"], e["text"]) for e in detail["events"]] == [
            ("ack", "ayse", ""),
            ("owner", "ayse", "mehmet"),
            ("owner", "ayse", "zeynep"),
            ("note", "zeynep", "Saha ekibi yolda"),
        ], "every action once, refused ones not at all"
        shown = await monitord("incident", "show", outage.tracking, "--url", api.url)
        assert shown.code == 0 and "acknowledged by ayse" in shown.out and "owner: zeynep" in shown.out
        assert "zeynep: note Saha ekibi yolda" in shown.out
    finally:
        api.world.faults.restore_all()

    await until(lambda: (i := api.daemon.store.incident(outage.tracking)) and i.phase is Phase.RESOLVED, 90, "resolved")
    status, late = await api.call("POST", base + "/ack", json={"by": "mehmet"}, token=api.token)
    assert (status, late) == (
        409,
        {"error": f"incident {outage.tracking} is resolved: it can no longer be acknowledged, taken or closed"},
    )
    cli = await monitord("incident", "own", outage.tracking, "mehmet", "--by", "ayse", *tokens)
    assert cli.code == 1 and "409" in cli.err
    status, _ = await api.call("POST", base + "/notes", json={"note": "Kart değişti", "by": "mehmet"}, token=api.token)
    assert status == 201
    assert [e.action for e in api.daemon.incident_events(outage.tracking)] == ["ack", "owner", "owner", "note", "note"]


def test_helpdesk_owners_and_an_events_ticket_item_are_kept_on_both_engines(store: Store) -> None:  # noqa: F811
    """Where each action came from, the owner the RT ticket had when last read, and an action's
    ticket item queued with it; pruned with their incident."""
    resolved = incident(phase=Phase.RESOLVED, resolved=NOW)
    tracking = resolved.tracking
    store.commit_step(None, [resolved], [], NOW)
    taken = IncidentEvent(tracking, "owner", "monitord", NOW, "ayse", "helpdesk")
    ended = IncidentEvent(tracking, "status", "ayse", NOW, "resolved", "helpdesk")
    assert store.helpdesk_ticket(tracking) is None
    store.put_helpdesk_ticket(tracking, "ayse", "open", [taken])
    store.put_helpdesk_ticket(tracking, "", "resolved", [ended])
    assert store.helpdesk_ticket(tracking) == ("", "resolved")
    assert not store.ticket_in_flight(tracking)
    item = Notification(f"{tracking}/ticket/ack", "ticket", tracking, "comment", "subject", "Acknowledged by mehmet", tracking)
    acked = IncidentEvent(tracking, "ack", "mehmet", NOW + 1)
    store.add_incident_event(acked, [(item, None)], NOW + 1)
    store.add_incident_event(acked, [(item, None)], NOW + 1)  # the same item again: queued once
    assert store.incident_events(tracking) == [taken, ended, acked, acked]
    assert [i.notification.key for i in store.items("ticket")] == [item.key]
    assert store.ticket_in_flight(tracking), "the ack's comment waits in the outbox"
    store.prune(NOW, NOW, NOW + 10)
    assert store.helpdesk_ticket(tracking) is None and store.incident_events(tracking) == []
