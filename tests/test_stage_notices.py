"""A stage the helpdesk set, told to the incident's customers (issue 12 item 1): only for stages
whose `sms` is on, once per incident, recipient and stage, after quiet hours, in each customer's
language; queued with the stage's history row in one transaction (both engines)."""

from __future__ import annotations

from dataclasses import replace
from datetime import time

from plan_fixtures import TOPOLOGY, at, incident

from monitord.config.templates import builtin_templates
from monitord.model import IncidentKind, NodeRef, Phase
from monitord.stages import DEFAULT_TABLE, StageChange
from monitord.store import Store
from notices.plan import PlanSettings, stage_notices
from notices.segments import segments
from tests.outbox_fixtures import store  # noqa: F401  (fixture)

SETTINGS = PlanSettings(templates=builtin_templates(), quiet_hours=(time(22, 0), time(8, 0)))
FIELD_TEAM = replace(DEFAULT_TABLE.by_id["field_team"], sms=True)
DAY, NIGHT = at("2026-12-01 14:00"), at("2026-12-01 23:30")


def test_each_customer_hears_the_stage_in_their_language_once_per_stage() -> None:
    planned = stage_notices(incident(), FIELD_TEAM, TOPOLOGY, SETTINGS, DAY)
    by_recipient = {n.recipient: (n, not_before) for n, not_before in planned}
    assert set(by_recipient) == {"+905321111111", "+905322222222", "cagri@example.com"}  # s4 has no way to be reached
    tr, _ = by_recipient["+905321111111"]
    assert tr.body == "Şişli Santrali arızası: Saha ekibinde. Ekiplerimiz çalışıyor. Takip no: ARZ-2026-000123"
    assert tr.key == "ARZ-2026-000123/sms/+905321111111/stage-field_team" and tr.action == "stage"
    assert segments(tr.body, "gsm7-turkish") == 1
    en, _ = by_recipient["+905322222222"]
    assert "With the field team" in en.body
    mail, _ = by_recipient["cagri@example.com"]
    assert "Saha ekibinde" in mail.subject and mail.channel == "email"
    assert all(nb is None for _, nb in by_recipient.values())


def test_quiet_hours_and_who_is_not_told() -> None:
    night = stage_notices(incident(), FIELD_TEAM, TOPOLOGY, SETTINGS, NIGHT)
    assert night and {nb for _, nb in night} == {at("2026-12-02 08:00")}
    assert stage_notices(incident(), DEFAULT_TABLE.by_id["field_team"], TOPOLOGY, SETTINGS, DAY) == []  # sms off by default
    assert stage_notices(incident(phase=Phase.RESOLVED), FIELD_TEAM, TOPOLOGY, SETTINGS, DAY) == []
    modem = incident(kind=IncidentKind.CPE, root=NodeRef("line", "s1"), affected=frozenset({"s1"}))
    assert stage_notices(modem, FIELD_TEAM, TOPOLOGY, SETTINGS, DAY) == []


def test_queued_with_the_stage_once(store: Store) -> None:
    opened = incident()
    store.commit_step(None, [opened], [], DAY)
    planned = stage_notices(opened, FIELD_TEAM, TOPOLOGY, SETTINGS, DAY)
    change = StageChange(opened.tracking, "field_team", "helpdesk", "ayse", DAY)
    assert store.set_stage(change, planned, DAY)
    assert not store.set_stage(replace(change, at=DAY + 60), planned, DAY + 60)  # the same stage again: nothing
    store.set_stage(replace(change, stage="at_exchange", at=DAY + 120), [], DAY + 120)
    assert store.set_stage(replace(change, at=DAY + 180), planned, DAY + 180)  # back to the field team: no second SMS
    items = [i for i in store.items() if i.notification.action == "stage"]
    assert sorted(i.notification.recipient for i in items) == ["+905321111111", "+905322222222", "cagri@example.com"]
    assert {i.status for i in items} == {"pending"}
