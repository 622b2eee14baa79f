"""One outage SMS per customer when a wider incident absorbs a DSLAM's within seconds.

A DSLAM's outage notice is held `merge_hold` after its incident opened. When the region's (or
exchange's) incident absorbs it within the hold, its customers get the wider incident's outage
notice and no "merged" one, and the store drops the held notice in the same transaction; after
the hold (the notice went out), they get "merged" as before.
"""

from __future__ import annotations

from dataclasses import replace

from plan_fixtures import TOPOLOGY, Change, at, incident

from monitord.config.templates import builtin_templates
from monitord.model import Incident, NodeRef, Phase
from monitord.store import Store
from notices.plan import PlanSettings, plan_step
from tests.outbox_fixtures import store  # noqa: F401  (fixture: both engines)

DSLAM, REGION = "ARZ-2026-000003", "ARZ-2026-000004"
T0 = at("2026-12-01 14:00")
SETTINGS = PlanSettings(templates=builtin_templates())
HOLD = SETTINGS.merge_hold
PHONES = {"+905321111111", "+905322222222"}  # s1, s2 by SMS; s3 by e-mail; s4 unreachable


def step(store: Store, changes: list[Change], now: float) -> None:
    """Plan and commit one engine step, as the pipeline does."""
    planned = plan_step(changes, TOPOLOGY, SETTINGS, now, store.incident)
    store.commit_step(None, [c.incident for c in changes], planned, now)


def deliver(store: Store, now: float) -> None:
    """Send every SMS and e-mail due at `now` (what the outbox would do)."""
    for channel in ("sms", "email"):
        for item in store.due(channel, now, 1000):
            assert store.claim(item.id, now)
            store.mark_sent(item.id, f"ref-{item.id}", now)


def open_dslam(store: Store) -> Incident:
    dslam = incident(DSLAM, opened=T0)
    step(store, [Change(dslam, "opened")], T0)
    return dslam


def merge(store: Store, dslam: Incident, now: float) -> None:
    """The region's incident opens in this step and absorbs the DSLAM's."""
    region = incident(REGION, root=NodeRef("region", "ist-avrupa"), opened=now, affected=dslam.affected | {"s5"})
    ended = replace(dslam, phase=Phase.RESOLVED, updated_at=now, resolved_at=now, evidence=(f"merged into {REGION}",))
    step(
        store,
        [
            Change(ended, "merged", merged_into=REGION),
            Change(region, "promoted", added=region.affected, replaces=(DSLAM,)),
        ],
        now,
    )


def sent_sms(store: Store) -> dict[str, list[tuple[str, str | None]]]:
    heard: dict[str, list[tuple[str, str | None]]] = {}
    for item in sorted(store.items("sms", "sent"), key=lambda i: i.id):
        n = item.notification
        heard.setdefault(n.recipient, []).append((n.action, n.incident))
    return heard


def test_an_area_outage_sms_waits_the_hold_and_nothing_else_does(store: Store) -> None:
    open_dslam(store)
    deliver(store, T0)
    assert sent_sms(store) == {}  # held
    deliver(store, T0 + HOLD)
    assert sent_sms(store) == {phone: [("outage", DSLAM)] for phone in PHONES}
    assert [i.notification.action for i in store.items("ticket", "pending")] == ["create"]  # staff at once


def test_absorbed_within_the_hold_each_customer_gets_one_outage_sms_with_the_regions_number(store: Store) -> None:
    merge(store, open_dslam(store), T0 + 0.8)
    withdrawn = [i for i in store.items(status="dead") if i.notification.incident == DSLAM]
    assert {(i.notification.channel, i.notification.recipient, i.notification.action) for i in withdrawn} == {
        ("sms", "+905321111111", "outage"),
        ("sms", "+905322222222", "outage"),
        ("email", "cagri@example.com", "outage"),
    }
    assert all(i.last_error and i.last_error.startswith(f"withdrawn before it went out: {DSLAM} merged into") for i in withdrawn)
    assert not [i for i in store.items() if i.notification.action == "merged"]
    deliver(store, T0 + 0.8)  # a region's notice is not held: nothing wider absorbs it
    deliver(store, T0 + 0.8 + HOLD)
    assert sent_sms(store) == {phone: [("outage", REGION)] for phone in (*PHONES, "+905325555555")}
    assert [(i.notification.action, i.notification.incident) for i in store.items("email", "sent")] == [("outage", REGION)]


def test_absorbed_after_the_hold_customers_told_get_merged_as_before(store: Store) -> None:
    dslam = open_dslam(store)
    deliver(store, T0 + HOLD)
    merge(store, dslam, T0 + HOLD + 10)
    deliver(store, T0 + HOLD + 10)
    heard = sent_sms(store)
    assert {phone: heard[phone] for phone in PHONES} == {phone: [("outage", DSLAM), ("merged", DSLAM)] for phone in PHONES}
    assert heard["+905325555555"] == [("outage", REGION)]
    assert not [i for i in store.items(status="dead")]
