"""A subscriber's own stage within an incident (issue 12 item 1): from their line's part in it
and their follow-up ticket (monitord/stages.py `of_subscriber`), the follow-up's stages read
from a ticket (`followup_stage`), stored by incident and line on both engines, and told to that
subscriber alone (`stage_notices` with a line)."""

from __future__ import annotations

from dataclasses import replace
from datetime import time

import pytest

from monitord.config.model import StageSyncConfig
from monitord.config.templates import builtin_templates
from monitord.model import IncidentKind, Notification, Phase, Status
from monitord.rtsync import followup_stage, ticket_stage
from monitord.stages import DEFAULT_STAGES, DEFAULT_TABLE, Part, PartChange, StageTable, line_back
from monitord.store import Store
from notices.confirm import followed_up
from notices.plan import PlanSettings, stage_notices
from tests.outbox_fixtures import store  # noqa: F401  (fixture)
from tests.track_fixtures import LINE_IDS, OPENED, OUTAGE, PHONES, topology

TEXTING = StageTable(tuple(replace(s, sms=s.id in ("field_team", "resolved")) for s in DEFAULT_STAGES))
SYNC = StageSyncConfig(status={"stalled": "at_exchange"}, owner="field_team")
LINE = LINE_IDS[3]


@pytest.mark.parametrize(
    ("incident", "part", "own"),
    [
        ("detected", Part(affected=True, back=False), "detected"),
        ("field_team", Part(affected=True, back=False), "field_team"),  # the incident's stage is theirs
        ("field_team", Part(affected=True, back=True), "recovering"),  # back, the engine holds it for `stable`
        ("recovering", Part(affected=True, back=True), "recovering"),
        ("field_team", Part(affected=False, back=True), "resolved"),  # left the incident, which goes on
        ("resolved", Part(affected=True, back=True), "resolved"),
        ("resolved", Part(affected=False, back=False), "resolved"),  # down again: that is another incident's
        ("resolved", Part(affected=True, back=True, followup="detected"), "detected"),  # they said no
        ("resolved", Part(affected=True, back=True, followup="field_team"), "field_team"),  # up to the probes, not to them
        ("resolved", Part(affected=True, back=True, followup="resolved"), "resolved"),  # ended, and the line is up
        ("resolved", Part(affected=True, back=False, followup="resolved"), "detected"),  # ended, the line still down
        ("field_team", Part(affected=False, back=True, followup="at_exchange"), "at_exchange"),  # a follow-up while it goes on
        ("resolved", Part(affected=True, back=True, followup="taken_out"), "detected"),  # a stage since removed from the table
    ],
)
def test_a_subscribers_stage(incident: str, part: Part, own: str) -> None:
    assert DEFAULT_TABLE.of_subscriber(DEFAULT_TABLE.by_id[incident], part).id == own


@pytest.mark.parametrize(
    ("kind", "status", "back"),
    [
        (IncidentKind.OUTAGE, Status.OK, True),
        (IncidentKind.OUTAGE, Status.DEGRADED, True),  # up: the outage is over for this line
        (IncidentKind.DEGRADATION, Status.DEGRADED, False),
        (IncidentKind.DEGRADATION, Status.OK, True),
        (IncidentKind.OUTAGE, Status.DOWN, False),
        (IncidentKind.OUTAGE, Status.UNREACHABLE, False),
        (IncidentKind.CPE, Status.CPE, False),
        (IncidentKind.OUTAGE, Status.UNKNOWN, False),  # not seen: not told it is back
        (IncidentKind.OUTAGE, Status.MAINTENANCE, False),
    ],
)
def test_a_line_is_back_when_it_no_longer_has_the_incidents_fault(kind: IncidentKind, status: Status, back: bool) -> None:
    assert line_back(kind, status) is back


@pytest.mark.parametrize(
    ("tracking", "part"),
    [("ARZ-2026-000123/BJK000003", ("ARZ-2026-000123", "BJK000003")), ("ARZ-2026-000123", None), ("/BJK1", None), ("A/", None)],
)
def test_a_follow_ups_tracking_value(tracking: str, part: tuple[str, str] | None) -> None:
    assert followed_up(tracking) == part


def ticket(tag: str, stage: str | None = None, status: str = "open", owner: str = "Nobody") -> dict:
    fields = [{"name": "Tracking Number", "values": [tag]}, {"name": "Stage", "values": [stage] if stage else []}]
    return {
        "id": "9",
        "Status": status,
        "Owner": {"id": owner},
        "LastUpdatedBy": {"id": "ayse"},
        "LastUpdated": "2026-12-04T18:42:00Z",
        "CustomFields": fields,
    }


FOLLOWUP = f"ARZ-2026-000123/{LINE}"


@pytest.mark.parametrize(
    ("item", "stage", "actor"),
    [
        (ticket(FOLLOWUP), "detected", "ayse"),  # opened, nobody on it yet
        (ticket(FOLLOWUP, "Saha"), "field_team", "ayse"),
        (ticket(FOLLOWUP, status="stalled"), "at_exchange", "ayse"),
        (ticket(FOLLOWUP, owner="mehmet"), "field_team", "mehmet"),
        (ticket(FOLLOWUP, "Saha", status="resolved"), "resolved", "ayse"),  # ended: whatever its field says
        (ticket(FOLLOWUP, status="rejected", owner="mehmet"), "resolved", "ayse"),
        (ticket("ARZ-2026-000123"), None, None),  # the incident's own ticket
        (ticket("ARZ-2026-000123/saha", "Saha"), None, None),  # a dispatch ticket
        ({**ticket(FOLLOWUP), "LastUpdated": "yesterday"}, None, None),
    ],
)
def test_a_follow_up_tickets_stage(item: dict, stage: str | None, actor: str | None) -> None:
    found = followup_stage(item, DEFAULT_TABLE, SYNC)
    assert (found and found.stage.id, found and found.actor) == (stage, actor)
    assert found is None or (found.tracking, found.line, found.ticket) == ("ARZ-2026-000123", LINE, "9")


def test_a_follow_up_ticket_never_speaks_for_its_incident() -> None:
    assert ticket_stage(ticket(FOLLOWUP, "Saha", owner="mehmet"), DEFAULT_TABLE, SYNC) is None
    dispatched = ticket_stage(ticket("ARZ-2026-000123/saha", "Saha"), DEFAULT_TABLE, SYNC)
    assert dispatched is not None and (dispatched.tracking, dispatched.line) == ("ARZ-2026-000123", None)


def change(stage: str, line: str = LINE, at: float = OPENED + 7200, tracking: str = OUTAGE.tracking) -> PartChange:
    return PartChange(tracking, line, stage, "helpdesk", "ayse", at)


def test_a_follow_ups_stages_are_kept_once_per_change_by_incident_and_line(store: Store) -> None:  # noqa: F811
    resolved = replace(OUTAGE, phase=Phase.RESOLVED, resolved_at=OPENED + 3600)
    store.commit_step(None, [OUTAGE], [], OPENED)
    store.commit_step(None, [resolved], [], OPENED + 3600)
    told = Notification(f"{OUTAGE.tracking}/sms/{PHONES[3]}/stage-{LINE}-field_team", "sms", PHONES[3], "stage", "", "saha")
    assert store.followup_stage(OUTAGE.tracking, LINE) is None
    assert store.set_subscriber_stage(change("detected"))
    assert not store.set_subscriber_stage(change("detected", at=OPENED + 7300))  # read again: nothing new
    assert store.set_subscriber_stage(change("field_team"), [(told, None)], OPENED + 7400)
    assert not store.set_subscriber_stage(change("field_team"), [(replace(told, key="again"), None)], OPENED + 7500)
    assert [i.notification.key for i in store.items("sms")] == [told.key]  # queued with its row, once
    assert not store.set_subscriber_stage(change("detected", line="NOT-IN-IT"))  # a line the incident never touched
    assert not store.set_subscriber_stage(change("detected", tracking="ARZ-2026-999999"))
    assert store.set_subscriber_stage(change("at_exchange", line=LINE_IDS[4]))
    assert [(c.stage, c.actor) for c in store.subscriber_stage_history(OUTAGE.tracking, LINE)] == [
        ("detected", "ayse"),
        ("field_team", "ayse"),
    ]
    assert (store.followup_stage(OUTAGE.tracking, LINE), store.followup_stage(OUTAGE.tracking, LINE_IDS[4])) == (
        "field_team",
        "at_exchange",
    )
    assert store.prune(OPENED + 9000, OPENED + 9000, OPENED + 9000) >= 1
    assert store.subscriber_stage_history(OUTAGE.tracking, LINE) == [] and store.followup_stage(OUTAGE.tracking, LINE) is None


SETTINGS = PlanSettings(templates=builtin_templates(), quiet_hours=(time(22, 0), time(8, 0)))


def test_a_subscribers_own_stage_is_told_to_them_alone_also_after_the_incident_resolved() -> None:
    resolved = replace(OUTAGE, phase=Phase.RESOLVED, resolved_at=OPENED + 3600)
    at_night = OPENED + 8 * 3600  # 23:05 in Istanbul
    told = stage_notices(resolved, TEXTING.by_id["field_team"], topology(), SETTINGS, at_night, LINE)
    assert [(n.recipient, n.action, n.incident) for n, _ in told] == [(PHONES[3], "stage", OUTAGE.tracking)]
    (notice, not_before), *_ = told
    assert notice.key.endswith(f"-{LINE}-field_team") and "Saha ekibinde" in notice.body and OUTAGE.tracking in notice.body
    assert not_before is not None and not_before > at_night  # quiet hours: after 08:00
    assert stage_notices(resolved, TEXTING.by_id["at_exchange"], topology(), SETTINGS, at_night, LINE) == []  # sms off
    assert stage_notices(resolved, TEXTING.by_id["resolved"], topology(), SETTINGS, at_night, LINE) == []  # the engine's
    assert stage_notices(resolved, TEXTING.by_id["field_team"], topology(), SETTINGS, at_night, "NOBODY") == []
