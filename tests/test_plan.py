from __future__ import annotations

from dataclasses import replace
from datetime import time

import pytest
from plan_fixtures import TOPOLOGY, Change, at, incident

from monitord.config.templates import builtin_templates
from monitord.model import Incident, IncidentKind, NodeRef, Phase
from notices.plan import Planned, PlanSettings, due_updates, looked_up, place, plan, plan_step, quiet_began, quiet_until
from rules.engine import Change as ChangeKind

T = "ARZ-2026-000123"
NEW = "ARZ-2026-000130"
DAY, NIGHT, MORNING = at("2026-12-01 14:00"), at("2026-12-01 23:30"), at("2026-12-02 08:00")
SETTINGS = PlanSettings(templates=builtin_templates(), quiet_hours=(time(22, 0), time(8, 0)), noc_emails=("noc@isp.example",))
P1, P2, P3, P5 = "+905321111111", "+905322222222", "cagri@example.com", "+905325555555"


def ms(t: float) -> int:
    return round(t * 1000)


def summary(planned: list[Planned]) -> list[tuple[str, str, str, str, float | None]]:
    return sorted((n.channel, n.recipient, n.action, n.key, nb) for n, nb in planned)


def run(
    change: Change, now: float = DAY, settings: PlanSettings = SETTINGS, known: dict[str, Incident] | None = None
) -> list[Planned]:
    """`plan`, whose lookups must all be named by `looked_up` (the pipeline reads only those)."""
    named = looked_up([change])

    def lookup(tracking: str) -> Incident | None:
        assert tracking in named, f"plan asked for {tracking}; looked_up named {sorted(named)}"
        return (known or {}).get(tracking)

    return plan(change, TOPOLOGY, settings, now, lookup)


def test_opened_outage_creates_ticket_tells_every_reachable_subscriber_and_the_noc() -> None:
    assert summary(run(Change(incident(), "opened"))) == [
        ("email", P3, "outage", f"{T}/email/{P3}/outage", None),
        ("email", "noc@isp.example", "noc-opened", f"{T}/email/noc@isp.example/noc-opened", None),
        ("sms", P1, "outage", f"{T}/sms/{P1}/outage", None),
        ("sms", P2, "outage", f"{T}/sms/{P2}/outage", None),
        ("ticket", T, "create", f"{T}/ticket/create", None),
    ]


def test_opened_texts_are_in_each_subscribers_language_and_the_ticket_is_complete() -> None:
    items = {n.recipient + "/" + n.action: n for n, _ in run(Change(incident(), "opened"))}
    assert items[f"{P1}/outage"].body.startswith("Bölgenizde (Şişli Santrali)")
    assert items[f"{P2}/outage"].body.startswith("There is an internet outage in your area (Şişli Santrali)")
    assert items[f"{P3}/outage"].subject == f"İnternet arızası - takip no {T}"
    assert "Sayın Çağrı Öztürk" in items[f"{P3}/outage"].body
    ticket = items[f"{T}/create"]
    assert ticket.subject == f"[{T}] Kesinti: sisli-dslam-01 (dslam) - 4 abone"
    for part in (
        "İstanbul Avrupa",
        "Şişli Santrali",
        "device:sisli-dslam-01",
        "01.12.2026 13:00",
        "- sisli-dslam-01 icmp timeout",
        "- s1 Ayşe Yılmaz +90532***1111",
        "- s4 Nobody Reachable -",
    ):
        assert part in ticket.body
    assert ticket.incident == T


def test_grew_comments_and_tells_only_the_new_subscribers() -> None:
    grown = incident(affected=frozenset({"s1", "s2", "s3", "s4", "s5"}), updated=DAY)
    planned = run(Change(grown, "grew", added=frozenset({"s5"})))
    assert summary(planned) == [
        ("sms", P5, "outage", f"{T}/sms/{P5}/outage/{ms(DAY)}", None),
        ("ticket", T, "comment", f"{T}/ticket/grew/{ms(DAY)}", None),
    ]
    comment = next(n for n, _ in planned if n.channel == "ticket")
    assert "1 abone eklendi, toplam 5" in comment.body and "s5 Mehmet Demir" in comment.body


@pytest.mark.parametrize(("now", "not_before"), [(DAY, None), (NIGHT, MORNING)])
def test_shrank_comments_and_tells_the_recovered_subscribers_outside_quiet_hours(now: float, not_before: float | None) -> None:
    shrunk = incident(affected=frozenset({"s1", "s3", "s4"}), updated=now)
    assert summary(run(Change(shrunk, "shrank", removed=frozenset({"s2"})), now)) == [
        ("sms", P2, "restored", f"{T}/sms/{P2}/restored/{ms(now)}", not_before),
        ("ticket", T, "comment", f"{T}/ticket/shrank/{ms(now)}", None),
    ]


def test_a_line_that_left_with_restored_and_is_hit_again_hears_of_the_outage_again() -> None:
    """s2 shrank out of T (told "restored"), then failed again and rejoined T."""
    opened = {n.key for n, _ in run(Change(incident(), "opened")) if n.recipient == P2}
    shrunk = incident(affected=frozenset({"s1", "s3", "s4"}), updated=DAY)
    restored = {n.key for n, _ in run(Change(shrunk, "shrank", removed=frozenset({"s2"}))) if n.recipient == P2}
    later = at("2026-12-01 15:00")
    rejoined = run(Change(incident(updated=later), "grew", added=frozenset({"s2"})), later)
    again = [(n.key, n.action) for n, _ in rejoined if n.recipient == P2]
    assert again == [(f"{T}/sms/{P2}/outage/{ms(later)}", "outage")]
    assert len(opened | restored | {k for k, _ in again}) == 3


def test_promotion_opens_the_wider_ticket_closes_the_replaced_and_tells_nobody_twice() -> None:
    old = incident(affected=frozenset({"s1", "s2", "s3", "s4"}))
    wider = incident(
        NEW, root=NodeRef("exchange", "sisli"), affected=frozenset({"s1", "s2", "s3", "s4", "s5"}), opened=DAY, updated=DAY
    )
    planned = run(Change(wider, "promoted", added=wider.affected, replaces=(T,)), known={T: old})
    assert summary(planned) == [
        ("email", "noc@isp.example", "noc-opened", f"{NEW}/email/noc@isp.example/noc-opened", None),
        ("sms", P5, "outage", f"{NEW}/sms/{P5}/outage", DAY + SETTINGS.merge_hold),  # an area's: held
        ("ticket", NEW, "comment", f"{NEW}/ticket/promoted/{ms(DAY)}", None),
        ("ticket", NEW, "create", f"{NEW}/ticket/create", None),
    ]
    by_key = {n.key: n for n, _ in planned}
    assert "Şişli Santrali" in by_key[f"{NEW}/ticket/create"].subject
    assert T in by_key[f"{NEW}/ticket/promoted/{ms(DAY)}"].body


def test_a_merged_incident_resolves_its_ticket_and_tells_its_subscribers_the_new_number() -> None:
    """Told under T, they learn at once (even at night) that T is followed as NEW: the "restored"
    they will get carries a number they were given."""
    told = incident(affected=frozenset({"s1", "s2", "s3"}))
    absorbed = replace(told, phase=Phase.RESOLVED, updated_at=NIGHT, resolved_at=NIGHT, evidence=(f"merged into {NEW}",))
    planned = run(Change(absorbed, "merged", merged_into=NEW), NIGHT, known={T: told})
    assert summary(planned) == [
        ("email", P3, "merged", f"{T}/email/{P3}/merged/{NEW}", None),
        ("sms", P1, "merged", f"{T}/sms/{P1}/merged/{NEW}", None),
        ("sms", P2, "merged", f"{T}/sms/{P2}/merged/{NEW}", None),
        ("ticket", T, "resolve", f"{T}/ticket/merged/{NEW}", None),
    ]
    by_key = {n.key: n for n, _ in planned}
    assert by_key[f"{T}/sms/{P1}/merged/{NEW}"].body == (
        f"Arıza kaydınız {T}, Şişli Santrali genel arızasına bağlandı. Yeni takip no: {NEW}"
    )
    assert by_key[f"{T}/sms/{P2}/merged/{NEW}"].body == (
        f"Your fault {T} is now part of a wider incident in Şişli Santrali. New ref: {NEW}"
    )
    ticket = by_key[f"{T}/ticket/merged/{NEW}"]
    assert NEW in ticket.body and ticket.incident == T


def test_a_merged_degradation_tells_its_subscribers_after_quiet_hours_like_its_opening() -> None:
    told = incident(kind=IncidentKind.DEGRADATION, affected=frozenset({"s1"}))
    absorbed = replace(told, phase=Phase.RESOLVED, updated_at=NIGHT, resolved_at=NIGHT)
    settings = replace(SETTINGS, notify_degradation=True)
    planned = run(Change(absorbed, "merged", merged_into=NEW), NIGHT, settings, known={T: told})
    assert [(n.recipient, nb) for n, nb in planned if n.channel == "sms"] == [(P1, MORNING)]


def test_a_promotion_that_reopens_a_resolved_incident_reopens_its_ticket_and_skips_those_told_elsewhere() -> None:
    resolved = incident(
        NEW, root=NodeRef("exchange", "sisli"), affected=frozenset({"s1", "s5"}), phase=Phase.RESOLVED, resolved=DAY - 600
    )
    child = incident(affected=frozenset({"s1"}))
    back = incident(NEW, root=NodeRef("exchange", "sisli"), affected=frozenset({"s1", "s5"}), updated=DAY)
    planned = run(Change(back, "promoted", added=frozenset({"s1"}), replaces=(T,)), known={NEW: resolved, T: child})
    assert [(n.channel, n.recipient, n.action) for n, _ in planned if n.channel != "email"] == [
        ("ticket", NEW, "reopen"),
        ("ticket", NEW, "comment"),
        ("sms", P5, "outage"),
    ]
    assert f"{NEW}/sms/{P5}/outage/reopen-{ms(DAY)}" in {n.key for n, _ in planned}


def test_promotion_into_an_existing_incident_repeats_its_create_and_tells_only_the_merged_in() -> None:
    heir = incident(NEW, root=NodeRef("exchange", "sisli"), affected=frozenset({"s1", "s5"}), updated=DAY)
    merged = incident(affected=frozenset({"s1"}))
    planned = run(Change(heir, "promoted", added=frozenset({"s1"}), replaces=(T,)), known={T: merged})
    keys = {n.key for n, _ in planned}
    assert f"{NEW}/ticket/create" in keys  # the store already has it: ignored
    assert not [n for n, _ in planned if n.channel == "sms"]


@pytest.mark.parametrize("known", [{}, {T: incident(kind=IncidentKind.DEGRADATION, affected=frozenset({"s1"}))}])
def test_promotion_over_an_unknown_or_other_kind_incident_tells_everyone(known: dict[str, Incident]) -> None:
    wider = incident(NEW, root=NodeRef("exchange", "sisli"), affected=frozenset({"s1", "s5"}))
    sms = [
        n.recipient
        for n, _ in run(Change(wider, "promoted", added=wider.affected, replaces=(T,)), known=known)
        if n.channel == "sms"
    ]
    assert sorted(sms) == [P1, P5]


def test_lines_moving_to_a_wider_incident_in_one_step_are_neither_restored_nor_told_twice() -> None:
    device = incident(affected=frozenset({"s2", "s3", "s4"}), updated=DAY)
    exchange = incident(NEW, root=NodeRef("exchange", "sisli"), affected=frozenset({"s1", "s5"}), opened=DAY)
    step = [Change(device, "shrank", removed=frozenset({"s1"})), Change(exchange, "opened", added=exchange.affected)]
    customers = [
        (n.recipient, n.action) for n, _ in plan_step(step, TOPOLOGY, SETTINGS, DAY, lambda _: None) if n.channel == "sms"
    ]
    assert customers == [(P5, "outage")]
    alone = [
        (n.recipient, n.action) for n, _ in plan_step(step[:1], TOPOLOGY, SETTINGS, DAY, lambda _: None) if n.channel == "sms"
    ]
    assert alone == [(P1, "restored")]


def test_recovering_only_comments() -> None:
    recovering = incident(phase=Phase.RECOVERING, updated=DAY)
    assert summary(run(Change(recovering, "recovering"))) == [("ticket", T, "comment", f"{T}/ticket/recovering/{ms(DAY)}", None)]


@pytest.mark.parametrize(("now", "not_before"), [(DAY, None), (NIGHT, MORNING)])
def test_resolved_closes_ticket_and_says_restored_to_everyone_told(now: float, not_before: float | None) -> None:
    done = incident(phase=Phase.RESOLVED, updated=now, resolved=now)
    planned = run(Change(done, "resolved"), now)
    r = ms(now)
    assert summary(planned) == [
        ("email", P3, "restored", f"{T}/email/{P3}/restored/{r}", not_before),
        ("email", "noc@isp.example", "noc-resolved", f"{T}/email/noc@isp.example/noc-resolved/{r}", None),
        ("sms", P1, "restored", f"{T}/sms/{P1}/restored/{r}", not_before),
        ("sms", P2, "restored", f"{T}/sms/{P2}/restored/{r}", not_before),
        ("ticket", T, "resolve", f"{T}/ticket/resolve/{r}", None),
    ]


def test_reopen_after_resolution_tells_everyone_again_under_new_keys_and_a_second_resolution_too() -> None:
    reopened_at, second_fix = at("2026-12-01 16:00"), at("2026-12-01 17:00")
    resolved = incident(resolved=DAY, updated=DAY, phase=Phase.RESOLVED)
    first = {n.key for n, _ in run(Change(resolved, "resolved"))}
    reopened = incident(updated=reopened_at, phase=Phase.UPDATED)
    assert summary(run(Change(reopened, "reopened"), reopened_at, known={T: resolved})) == [
        ("email", P3, "outage", f"{T}/email/{P3}/outage/reopen-{ms(reopened_at)}", None),
        ("email", "noc@isp.example", "noc-reopened", f"{T}/email/noc@isp.example/noc-reopened/{ms(reopened_at)}", None),
        ("sms", P1, "outage", f"{T}/sms/{P1}/outage/reopen-{ms(reopened_at)}", None),
        ("sms", P2, "outage", f"{T}/sms/{P2}/outage/reopen-{ms(reopened_at)}", None),
        ("ticket", T, "reopen", f"{T}/ticket/reopen/{ms(reopened_at)}", None),
    ]
    second = {n.key for n, _ in run(Change(incident(resolved=second_fix, updated=second_fix, phase=Phase.RESOLVED), "resolved"))}
    assert len(second) == len(first) == 5 and not first & second


def test_reopen_while_recovering_tells_the_helpdesk_but_not_customers_again() -> None:
    """The ticket was never resolved, so it gets a comment, not a reopen."""
    recovering = incident(phase=Phase.RECOVERING)
    planned = run(Change(incident(updated=DAY, phase=Phase.UPDATED), "reopened"), known={T: recovering})
    assert sorted(n.action for n, _ in planned) == ["comment", "noc-reopened"]


def test_closed_removed_only_closes_the_ticket() -> None:
    gone = incident(root=NodeRef("device", "removed-dslam"), updated=DAY)
    planned = run(Change(gone, "closed_removed"))
    assert summary(planned) == [("ticket", T, "resolve", f"{T}/ticket/closed/{ms(DAY)}", None)]
    assert "device:removed-dslam" in planned[0][0].subject


@pytest.mark.parametrize("kind", list(IncidentKind))
@pytest.mark.parametrize(
    "change", ["opened", "grew", "shrank", "promoted", "recovering", "resolved", "reopened", "closed_removed", "severity"]
)
def test_every_change_of_every_kind_plans_and_replays_identically(change: ChangeKind, kind: IncidentKind) -> None:
    c = Change(
        incident(kind=kind, updated=DAY, resolved=DAY),
        change,
        added=frozenset({"s1", "s3"}),
        removed=frozenset({"s2"}),
        replaces=(NEW,),
    )
    settings = replace(SETTINGS, notify_degradation=True, cpe_ticket=True)
    first = run(c, NIGHT, settings)
    assert first == run(c, NIGHT, settings)
    assert len({n.key for n, _ in first}) == len(first) and any(n.channel == "ticket" for n, _ in first)


def test_degradation_tickets_always_but_customers_only_when_enabled_and_not_at_night() -> None:
    degraded = incident(kind=IncidentKind.DEGRADATION)
    quiet = summary(run(Change(degraded, "opened"), NIGHT))
    assert [i[:3] for i in quiet] == [("email", "noc@isp.example", "noc-opened"), ("ticket", T, "create")]
    told = summary(run(Change(degraded, "opened"), NIGHT, replace(SETTINGS, notify_degradation=True)))
    assert ("sms", P1, "degradation", f"{T}/sms/{P1}/degradation", MORNING) in told
    assert ("email", P3, "degradation", f"{T}/email/{P3}/degradation", MORNING) in told
    resolved = run(Change(replace(degraded, phase=Phase.RESOLVED, resolved_at=DAY), "resolved"))
    assert [n.action for n, _ in resolved if n.channel == "sms"] == []


def test_overrun_apology_goes_out_at_once_even_at_night() -> None:
    overrun = incident(kind=IncidentKind.OVERRUN, root=NodeRef("exchange", "sisli"), affected=frozenset({"s1", "s3"}))
    planned = sorted(
        ((n, nb) for n, nb in run(Change(overrun, "opened"), NIGHT) if n.action == "overrun"), key=lambda p: p[0].key
    )
    assert [(n.key, nb) for n, nb in planned] == [(f"{T}/email/{P3}/overrun", None), (f"{T}/sms/{P1}/overrun", None)]
    assert "bakım uzadı" in planned[1][0].body and "Bakım çalışması uzadı" in planned[0][0].subject


def test_outage_at_night_is_urgent() -> None:
    assert all(nb is None for _, nb in run(Change(incident(), "opened"), NIGHT))


def test_sms_opt_out_and_email_preference_choose_the_channel() -> None:
    lines = TOPOLOGY.lines
    topology = replace(
        TOPOLOGY,
        lines={
            **lines,
            "s1": replace(lines["s1"], sms_opt_out=True),  # phone only: nobody to tell
            "s2": replace(lines["s2"], sms_opt_out=True, email="john@example.com"),  # still told, by e-mail
            "s3": replace(lines["s3"], sms_opt_out=True),  # e-mail only: unchanged
            "s4": replace(lines["s4"], phone="+905324444444", email="nobody@example.com", prefer_email=True),
            "s5": replace(lines["s5"], prefer_email=True),  # prefers e-mail but has no address: SMS
        },
    )
    affected = frozenset({"s1", "s2", "s3", "s4", "s5"})
    planned = plan(Change(incident(affected=affected), "opened"), topology, SETTINGS, DAY, {}.get)
    assert sorted((n.channel, n.recipient) for n, _ in planned if n.action == "outage") == [
        ("email", P3),
        ("email", "john@example.com"),
        ("email", "nobody@example.com"),
        ("sms", P5),
    ]
    english = next(n for n, _ in planned if n.recipient == "john@example.com")
    assert english.subject == f"Internet outage - ref {T}" and "Dear John Smith" in english.body


@pytest.mark.parametrize(
    ("local", "until"),
    [
        ("2026-12-01 23:30", "2026-12-02 08:00"),
        ("2026-12-01 03:00", "2026-12-01 08:00"),
        ("2026-12-01 22:00", "2026-12-02 08:00"),
        ("2026-12-01 08:00", None),
        ("2026-12-01 14:00", None),
    ],
)
def test_quiet_hours_across_midnight(local: str, until: str | None) -> None:
    assert quiet_until(at(local), SETTINGS) == (at(until) if until else None)


def test_quiet_hours_within_a_day_and_switched_off() -> None:
    lunch = replace(SETTINGS, quiet_hours=(time(12, 0), time(13, 30)))
    assert quiet_until(at("2026-12-01 12:10"), lunch) == at("2026-12-01 13:30")
    assert quiet_until(at("2026-12-01 13:30"), lunch) is None
    assert quiet_until(at("2026-12-01 03:00"), replace(SETTINGS, quiet_hours=None)) is None
    assert quiet_began(at("2026-12-01 03:00"), SETTINGS) == at("2026-11-30 22:00")
    assert quiet_began(at("2026-12-01 23:00"), SETTINGS) == at("2026-12-01 22:00")
    assert quiet_began(at("2026-12-01 14:00"), SETTINGS) is None


def test_updates_are_due_after_update_after_once_per_subscriber() -> None:
    ongoing = incident()  # opened 13:00, update_after 2 h
    assert due_updates([ongoing], TOPOLOGY, SETTINGS, at("2026-12-01 14:59")) == []
    due = due_updates([ongoing], TOPOLOGY, SETTINGS, at("2026-12-01 15:00"))
    assert summary(due) == [
        ("email", P3, "update", f"{T}/email/{P3}/update", None),
        ("sms", P1, "update", f"{T}/sms/{P1}/update", None),
        ("sms", P2, "update", f"{T}/sms/{P2}/update", None),
    ]
    later = due_updates([ongoing], TOPOLOGY, SETTINGS, NIGHT)
    assert {n.key for n, _ in later} == {n.key for n, _ in due}
    assert {nb for _, nb in later} == {MORNING}


def test_no_updates_for_recovering_resolved_or_degradation() -> None:
    others = [incident(phase=Phase.RECOVERING), incident(phase=Phase.RESOLVED), incident(kind=IncidentKind.DEGRADATION)]
    assert due_updates(others, TOPOLOGY, SETTINGS, NIGHT) == []


def test_place_names_each_root_level() -> None:
    assert place(TOPOLOGY, NodeRef("region", "ist-avrupa")).area == "İstanbul Avrupa"
    cabinet = place(TOPOLOGY, NodeRef("cabinet", "sisli-k12"))
    assert (cabinet.label, cabinet.region, cabinet.exchange, cabinet.area) == (
        "cabinet:sisli-k12",
        "İstanbul Avrupa",
        "Şişli Santrali",
        "Şişli Santrali",
    )
    assert place(TOPOLOGY, NodeRef("line", "s6")).label == "Zeynep Kaya (s6)"
    assert place(TOPOLOGY, NodeRef("line", "gone")).label == "line:gone"
