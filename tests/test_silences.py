"""Silences (issue 13): which incidents one matches, what it holds (the NOC's tickets, e-mail and
alerts, never a customer's notice), what goes out when it ends, and the store that keeps both
silences and held items across restarts, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from monitord.config.templates import builtin_templates
from monitord.model import SILENCED, Incident, NodeRef, Notification, Phase, Silence
from monitord.store import MIGRATIONS, Store, migrate
from notices.alerts import AlertSettings, due_refreshes, plan_alerts
from notices.plan import Planned, PlanSettings, plan
from notices.silences import covers, hold_silenced, incident_labels, noc_side, release
from tests.outbox_fixtures import ENGINES, state_at, store, version_before  # noqa: F401  (fixture)
from tests.plan_fixtures import TOPOLOGY, Change, incident

SETTINGS = PlanSettings(noc_emails=("noc@isp.example",), templates=builtin_templates())
OPENED = incident().opened_at
DSLAM = NodeRef("device", "sisli-dslam-01")


def silence(
    *nodes: NodeRef, matchers: tuple[tuple[str, str], ...] = (), start: float = OPENED - 60, end: float = OPENED + 3600
) -> Silence:
    return Silence("silence-1", nodes, matchers, start, end, "ayse.noc", "flapping since the storm", OPENED - 60)


def opened_items(inc: Incident | None = None) -> list[Planned]:
    inc = inc or incident()
    change = Change(inc, "opened")
    return [*plan(change, TOPOLOGY, SETTINGS, OPENED, lambda _: None), *plan_alerts([change], TOPOLOGY, AlertSettings())]


# --- matching ------------------------------------------------------------------------------------


def test_labels_are_the_ids_of_the_root_s_place_and_its_kind() -> None:
    assert incident_labels(incident(), TOPOLOGY) == {
        "kind": "outage",
        "device": "sisli-dslam-01",
        "exchange": "sisli",
        "region": "ist-avrupa",
    }
    assert incident_labels(incident(root=NodeRef("line", "s5")), TOPOLOGY)["device"] == "sisli-dslam-02"
    assert incident_labels(incident(root=NodeRef("device", "gone")), TOPOLOGY) == {"kind": "outage"}


@pytest.mark.parametrize(
    ("nodes", "matchers", "covered"),
    [
        ((DSLAM,), (), True),
        ((NodeRef("exchange", "sisli"),), (), True),  # a node above the root
        ((NodeRef("cabinet", "sisli-k12"),), (), True),
        ((NodeRef("line", "s1"),), (), False),  # a line below the root: the DSLAM's incident is not that line's
        ((NodeRef("device", "sisli-dslam-02"),), (), False),
        ((), (("region", "ist-avrupa"),), True),
        ((), (("region", "ist-anadolu"),), False),
        ((), (("region", "ist-avrupa"), ("kind", "degradation")), False),  # every matcher must hold
        ((), (("exchange", "sisli"), ("kind", "outage")), True),
        ((NodeRef("region", "ist-avrupa"),), (("device", "sisli-dslam-02"),), False),  # nodes and matchers both
    ],
)
def test_which_incidents_a_silence_covers(
    nodes: tuple[NodeRef, ...], matchers: tuple[tuple[str, str], ...], covered: bool
) -> None:
    assert covers(silence(*nodes, matchers=matchers), incident(), TOPOLOGY) is covered


# --- holding -------------------------------------------------------------------------------------


def test_a_silenced_dslam_holds_its_ticket_noc_mail_and_alert_but_never_its_customers_notices() -> None:
    planned = opened_items()
    kept, suppressed = hold_silenced(planned, [silence(DSLAM)], TOPOLOGY, OPENED, lambda _: incident())
    held = [n for n, at in kept if at == SILENCED]
    assert sorted((n.channel, n.action) for n in held) == [("alert", "firing"), ("email", "noc-opened"), ("ticket", "create")]
    customers = [(n, at) for n, at in planned if not noc_side(n)]
    assert customers and [(n, at) for n, at in kept if not noc_side(n)] == customers, "customer notices exactly as planned"
    assert {n.channel for n, _ in customers} == {"sms", "email"}
    assert suppressed == Counter({"ticket": 1, "email": 1, "alert": 1})


def test_nothing_is_held_outside_the_silence_s_time_or_scope() -> None:
    planned = opened_items()
    for muted in (silence(DSLAM, start=OPENED + 10), silence(DSLAM, end=OPENED), silence(NodeRef("device", "kadikoy-olt-01"))):
        assert hold_silenced(planned, [muted], TOPOLOGY, OPENED, lambda _: incident()) == (planned, Counter())


def test_alert_re_pushes_of_a_silenced_incident_are_dropped_not_held() -> None:
    refreshes = due_refreshes([incident()], TOPOLOGY, AlertSettings(resend=60), OPENED + 130, {})
    assert [n.key for n, _ in refreshes] == ["ARZ-2026-000123/alert/refresh/2"]
    kept, suppressed = hold_silenced(refreshes, [silence(DSLAM)], TOPOLOGY, OPENED + 130, lambda _: incident())
    assert kept == [] and suppressed == Counter({"alert": 1})


# --- releasing -----------------------------------------------------------------------------------


def held_of(inc: Incident | None = None) -> list[Notification]:
    kept, _ = hold_silenced(opened_items(inc), [silence(DSLAM)], TOPOLOGY, OPENED, lambda _: inc or incident())
    return [n for n, at in kept if at == SILENCED]


def test_an_expired_silence_over_a_still_failing_dslam_lets_everything_held_through_in_order() -> None:
    held = held_of()
    after = OPENED + 3600
    freed = release(held, [silence(DSLAM)], TOPOLOGY, after, lambda _: incident(), lambda _: False)
    assert (freed.send, freed.drop) == (held, [])


def test_items_stay_held_while_another_silence_still_matches() -> None:
    longer = replace(silence(NodeRef("exchange", "sisli"), end=OPENED + 7200), id="silence-2")
    freed = release(held_of(), [silence(DSLAM), longer], TOPOLOGY, OPENED + 3600, lambda _: incident(), lambda _: False)
    assert (freed.send, freed.drop) == ([], [])


def test_an_incident_resolved_under_the_silence_closes_what_the_noc_had_heard_of_and_drops_the_rest() -> None:
    resolved = incident(phase=Phase.RESOLVED, resolved=OPENED + 600)
    held = held_of()
    told = {"ARZ-2026-000123/ticket/create"}  # the ticket was opened before the silence; e-mail and alert never went
    freed = release(held, [silence(DSLAM)], TOPOLOGY, OPENED + 3600, lambda _: resolved, told.__contains__)
    assert [n.channel for n in freed.send] == ["ticket"]
    assert sorted(n.channel for n in freed.drop) == ["alert", "email"]
    forgotten = release(held, [silence(DSLAM)], TOPOLOGY, OPENED + 3600, lambda _: None, told.__contains__)
    assert (forgotten.send, len(forgotten.drop)) == ([], 3), "an incident pruned from the store: nothing to tell"


# --- the store: both engines ------------------------------------------------------------------------


def test_silences_and_held_items_are_kept_and_released_in_order(store: Store) -> None:  # noqa: F811
    muted = silence(DSLAM, matchers=(("kind", "outage"),))
    store.put_silence(muted)
    held = [replace(n, route="Arizalar Avrupa") if n.channel == "ticket" else n for n in held_of()]  # a routed region's queue
    customer = next(n for n, _ in opened_items() if n.channel == "sms")
    queued = store.commit_step(None, [incident()], [*((n, SILENCED) for n in held), (customer, None)], OPENED)
    assert queued == 1, "the SMS is queued; what the silence holds is not in the outbox"
    assert [i.notification.key for i in store.items()] == [customer.key]
    assert store.held_items() == held
    assert store.silences() == [muted] and store.silences(ended_after=muted.end) == []

    assert not store.was_queued("ARZ-2026-000123/ticket/create")
    assert store.release_held(held[:2], held[2:], OPENED + 3600) == 2
    assert [i.notification for i in store.items()] == [customer, *held[:2]]  # the ticket still routed
    assert store.was_queued("ARZ-2026-000123/ticket/create")
    assert store.held_items() == []

    assert store.expire_silence(muted.id, "mehmet.noc", OPENED)
    assert store.silences() == [replace(muted, end=OPENED, expired_by="mehmet.noc")]
    assert not store.expire_silence(muted.id, "mehmet.noc", OPENED + 1), "already over"


@pytest.mark.parametrize("engine", ENGINES)
def test_silences_and_held_items_survive_a_restart(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    where = state_at(engine, request, tmp_path)
    first = Store.open(where)
    try:
        first.put_silence(silence(DSLAM))
        first.commit_step(None, [incident()], [(n, SILENCED) for n in held_of()], OPENED)
    finally:
        first.close()
    again = Store.open(where)
    try:
        assert again.silences() == [silence(DSLAM)]
        assert again.held_items() == held_of()
    finally:
        again.close()


def test_a_state_file_of_the_version_before_silences_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db, target=version_before(MIGRATIONS, "CREATE TABLE silences"))
    db.close()
    s = Store.open(path)
    try:
        assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        s.put_silence(silence(DSLAM))
        assert s.silences() == [silence(DSLAM)]
    finally:
        s.close()


def test_an_item_that_cannot_be_rendered_is_not_held() -> None:
    broken = Notification(
        "ARZ-2026-000123/ticket/create", "ticket", "ARZ-2026-000123", "create", "", "", "ARZ-2026-000123", "bad"
    )
    kept, suppressed = hold_silenced([(broken, None)], [silence(DSLAM)], TOPOLOGY, OPENED, lambda _: incident())
    assert kept == [(broken, None)] and not suppressed, "a dead letter is filed as usual"
