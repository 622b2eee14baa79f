"""Growth the helpdesk can read: no empty comments, the count in the subject, evidence in Turkish."""

from __future__ import annotations

from dataclasses import replace

from plan_fixtures import TOPOLOGY, Change, at, incident

from monitord.config.templates import builtin_templates
from monitord.model import NodeRef
from notices.plan import PlanSettings, plan
from notices.templates import evidence_lines

T = "ARZ-2026-000123"
DAY = at("2026-12-01 14:00")
ENGINE_EVIDENCE = (
    "exchange:sisli: icmp: timeout",
    "5/5 lines down behind exchange:sisli",
    "devices down: sisli-dslam-01, sisli-dslam-02",
)


def exchange_outage(affected: frozenset[str]):
    return replace(incident(root=NodeRef("exchange", "sisli"), affected=affected, updated=DAY), evidence=ENGINE_EVIDENCE)


def test_a_growth_or_shrink_of_devices_alone_sends_nothing() -> None:
    same = exchange_outage(frozenset({"s1", "s2", "s3", "s4", "s5"}))
    for change in ("grew", "shrank"):
        assert plan(Change(same, change), TOPOLOGY, PlanSettings(templates=builtin_templates()), DAY, {}.get) == []


def test_a_subscriber_with_two_lines_hears_of_an_incident_once_and_that_it_is_over_once() -> None:
    """s5 has s1's phone: joining while s1 is out tells that phone nothing new; s1 leaving while
    s5 is still out is not "restored" for it; the last of its lines leaving is."""
    phone = TOPOLOGY.lines["s1"].phone
    shared = replace(TOPOLOGY, lines={**TOPOLOGY.lines, "s5": replace(TOPOLOGY.lines["s5"], phone=phone)})

    def texted(change: Change, topology=shared) -> list[tuple[str, str]]:
        planned = plan(change, topology, PlanSettings(templates=builtin_templates()), DAY, {}.get)
        return sorted((n.recipient, n.action) for n, _ in planned if n.channel == "sms")

    grew = Change(exchange_outage(frozenset({"s1", "s2", "s5"})), "grew", added=frozenset({"s2", "s5"}))
    assert texted(grew) == [("+905322222222", "outage")]
    assert texted(grew, TOPOLOGY) == [("+905322222222", "outage"), ("+905325555555", "outage")]
    assert texted(Change(exchange_outage(frozenset({"s5"})), "shrank", removed=frozenset({"s1", "s2"}))) == [
        ("+905322222222", "restored")
    ]
    assert texted(Change(exchange_outage(frozenset({"s3"})), "shrank", removed=frozenset({"s5"}))) == [(phone, "restored")]


def test_every_ticket_item_carries_the_current_count_in_its_subject() -> None:
    grown = exchange_outage(frozenset({"s1", "s2", "s3", "s4", "s5"}))
    (comment, _), *_ = plan(
        Change(grown, "grew", added=frozenset({"s5"})), TOPOLOGY, PlanSettings(templates=builtin_templates()), DAY, {}.get
    )
    assert (comment.action, comment.subject) == ("comment", f"[{T}] Kesinti: Şişli Santrali - 5 abone")
    assert comment.body.startswith("Arıza büyüdü: 1 abone eklendi, toplam 5.")


def test_ticket_evidence_is_in_the_tickets_language() -> None:
    opened = exchange_outage(frozenset({"s1", "s2", "s3", "s4", "s5"}))
    (create, _), *_ = plan(Change(opened, "opened"), TOPOLOGY, PlanSettings(templates=builtin_templates()), DAY, {}.get)
    assert (
        "Bulgular:\n- santral sisli: icmp: timeout\n- santral sisli arkasında kesik hat: 5/5\n"
        "- kesik cihazlar: sisli-dslam-01, sisli-dslam-02\n"
    ) in create.body
    (english, _), *_ = plan(
        Change(opened, "opened"), TOPOLOGY, PlanSettings(templates=builtin_templates(), language="en"), DAY, {}.get
    )
    assert "Evidence:\n- exchange:sisli: icmp: timeout\n- 5/5 lines down behind exchange:sisli\n" in english.body


def test_evidence_forms_in_turkish() -> None:
    assert evidence_lines(
        [
            "2/10 lines degraded behind device:d1",
            "3/4 lines still down after maintenance behind cabinet:k1",
            "devices down: a, b, c, d, e and 2 more",
            "merged into ARZ-2026-000001",
            "line:S1: snmp:adsl: no row on the device",
        ],
        "tr",
    ).splitlines() == [
        "- cihaz d1 arkasında kalitesi düşük hat: 2/10",
        "- kabin k1 arkasında bakımdan sonra hâlâ kesik hat: 3/4",
        "- kesik cihazlar: a, b, c, d, e ve 2 tane daha",
        "- ARZ-2026-000001 kaydına birleştirildi",
        "- hat S1: snmp:adsl: no row on the device",
    ]
    assert evidence_lines([], "tr") == "-"
