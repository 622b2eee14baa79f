"""The state file: migrations, the one-transaction engine step, the outbox life cycle."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import psycopg
import pytest

from monitord.database import StoreError
from monitord.model import (
    Incident,
    IncidentKind,
    MaintenanceWindow,
    NodeRef,
    Notification,
    Phase,
)
from monitord.store import MIGRATIONS, SavedEngine, Store, migrate
from rules.snapshot import Rows
from tests.outbox_fixtures import ENGINES, queue, sms, state_at, store  # noqa: F401  (fixture)

NOW = 1_780_000_000.0


def incident(phase: Phase = Phase.OPEN, resolved_at: float | None = None) -> Incident:
    return Incident(
        tracking="ARZ-2026-000123",
        kind=IncidentKind.OUTAGE,
        root=NodeRef("exchange", "sisli"),
        phase=phase,
        opened_at=NOW,
        updated_at=NOW + 5,
        affected=frozenset({"s1", "s2"}),
        evidence=("sisli-dslam-01 timeout",),
        resolved_at=resolved_at,
    )


def test_old_schema_is_migrated_forward_keeping_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db, target=1)
    db.execute(
        "INSERT INTO outbox (key, channel, recipient, action, subject, body, created_at, next_attempt_at) "
        "VALUES ('k', 'sms', '+905321112233', 'outage', '', 'hello', 1, 1)"
    )
    db.close()

    s = Store.open(path)
    [item] = s.items()
    assert (item.notification.key, item.notification.body, item.first_attempt_at) == ("k", "hello", None)
    assert s.claim(item.id, NOW) and s.item(item.id).first_attempt_at == NOW  # the v2 column works
    s.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_state_file_from_a_newer_monitord_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    Store.open(path).close()
    sqlite3.connect(path).execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    newer = rf"schema version {len(MIGRATIONS) + 1} is newer than this monitord supports \({len(MIGRATIONS)}\)"
    with pytest.raises(StoreError, match=newer):
        Store.open(path)


def test_the_unread_line_states_table_is_dropped_and_the_rest_kept(tmp_path: Path) -> None:
    """Version 7 drops `line_states` (a copy of the engine's line states nothing read)."""
    path = tmp_path / "v6.db"
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db, target=6)
    db.execute("INSERT INTO line_states VALUES ('line:s1', 'down', 1, '[]')")
    db.execute("INSERT INTO engine_state VALUES (1, '{\"seq\": 3}', 1)")
    db.close()

    s = Store.open(path)
    assert s.load_engine() == SavedEngine({"seq": 3}, rows=False)
    s.close()
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "line_states" not in tables and {"engine_state", "incidents", "outbox", "maintenance"} <= tables


HEAD = {"version": 1, "issued": {"2026": 123}, "timers": [[NOW + 90, "i", "ARZ-2026-000100"]]}
LINE = {"key": "line:s1", "status": "down"}
TRACKED = {"tracking": "ARZ-2026-000123", "members": ["line:s1"]}


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_step_survives_a_restart(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    path = state_at(engine, request, tmp_path)
    s = Store.open(path)
    rows = Rows(HEAD, {"line:s1": {**LINE, "wake": [NOW + 60, NOW + 120]}}, {"ARZ-2026-000123": TRACKED})
    assert s.commit_step(rows, [incident()], [(sms(1), None)], NOW) == 1
    s.close()

    s = Store.open(path)
    timers = [[NOW + 60, "t", "line:s1"], [NOW + 90, "i", "ARZ-2026-000100"], [NOW + 120, "t", "line:s1"]]
    line = {**LINE, "incident": "ARZ-2026-000123"}  # the unresolved incident it is a member of
    assert s.load_engine() == SavedEngine({**HEAD, "timers": timers, "targets": [line], "incidents": [TRACKED]}, rows=True)
    assert s.incidents() == [incident()] and s.incident("ARZ-2026-000123") == incident()
    assert [i.notification for i in s.items()] == [sms(1)]
    s.close()


def test_an_item_keeps_its_route(store: Store) -> None:
    routed = Notification(
        "ARZ-2026-000123/ticket/create", "ticket", "ARZ-2026-000123", "create", "s", "b", "ARZ-2026-000123", route="Arizalar Ege"
    )
    store.commit_step(None, [], [(routed, None), (sms(1), None)], NOW)
    assert [i.notification.route for i in store.items()] == ["Arizalar Ege", None]


def test_resolved_incidents_are_not_open(store: Store) -> None:
    store.commit_step(None, [incident(Phase.RESOLVED, NOW + 60)], [], NOW)
    assert store.incidents() == []
    assert store.incidents(open_only=False) == [incident(Phase.RESOLVED, NOW + 60)]


def test_a_failing_step_leaves_nothing_behind(store: Store) -> None:
    broken = Notification("k-broken", "sms", None, "outage", "", "x")  # type: ignore[arg-type]
    with pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError)):
        store.commit_step(Rows(HEAD, {}, {}), [incident()], [(sms(1), None), (broken, None)], NOW)
    assert (store.load_engine(), store.incidents(), store.items()) == (None, [], [])
    assert store.commit_step(Rows(HEAD, {}, {}), [], [(sms(1), None)], NOW) == 1


def test_a_step_writes_and_deletes_only_the_rows_it_names(store: Store) -> None:
    other = {"key": "line:s2", "status": "ok"}
    store.commit_step(Rows(HEAD, {"line:s1": {**LINE, "wake": []}, "line:s2": {**other, "wake": []}}, {}), [], [], NOW)
    store.commit_step(Rows(HEAD, {"line:s1": None}, {"ARZ-2026-000123": TRACKED}), [], [], NOW + 1)
    saved = store.load_engine()
    assert saved is not None and (saved.snapshot["targets"], saved.snapshot["incidents"]) == (
        [{**other, "incident": None}],
        [TRACKED],
    )
    store.commit_step(Rows(HEAD, {}, {"ARZ-2026-000123": None}), [], [], NOW + 2)
    saved = store.load_engine()
    assert saved is not None and (saved.snapshot["targets"], saved.snapshot["incidents"]) == ([{**other, "incident": None}], [])


def test_keys_are_queued_once(store: Store) -> None:
    assert queue(store, [sms(1), sms(2)], now=NOW) == 2
    assert queue(store, [sms(2), sms(3)], now=NOW) == 1
    assert queue(store, [sms(4), sms(4)], now=NOW) == 1, "twice in one step: once"
    assert [i.notification.key for i in store.items()] == [sms(n).key for n in (1, 2, 3, 4)]


def test_quiet_hours_delay_the_first_attempt(store: Store) -> None:
    queue(store, [sms(1)], not_before=NOW + 3600, now=NOW)
    assert store.due("sms", NOW + 3599, 10) == [] and store.next_due("sms") == NOW + 3600
    assert [i.notification for i in store.due("sms", NOW + 3600, 10)] == [sms(1)]
    assert store.oldest_age(NOW + 600) == 0.0, "waiting for morning is not a backlog"
    assert store.oldest_age(NOW + 3700) == 100.0


def test_outbox_life_cycle_and_figures(store: Store) -> None:
    queue(store, [sms(1), sms(2), sms(3)], now=NOW)
    one, two, three = (i.id for i in store.due("sms", NOW, 10))
    assert store.claim(one, NOW + 1) and not store.claim(one, NOW + 1)
    assert store.due("sms", NOW + 1, 10)[0].id == two
    store.mark_sent(one, "SM1", NOW + 2)
    store.claim(two, NOW + 1)
    store.mark_retry(two, "twilio HTTP 500", NOW + 30)
    store.mark_dead(three, "twilio HTTP 400 code 21211")
    assert store.counts() == {("sms", "sent"): 1, ("sms", "pending"): 1, ("sms", "dead"): 1}
    assert store.depth() == store.depth("sms") == 1 and store.depth("email") == 0
    assert store.oldest_age(NOW + 40) == 40.0 and store.oldest_age(NOW, "email") == 0.0
    retried = store.item(two)
    assert (retried.attempts, retried.last_error, retried.first_attempt_at) == (1, "twilio HTTP 500", NOW + 1)
    assert store.item(one).peer_ref == "SM1" and store.item(three).status == "dead"


def ticket(tracking: str, n: int) -> Notification:
    return Notification(f"{tracking}/ticket/{n}", "ticket", tracking, "comment", tracking, f"#{n}", tracking)


def test_one_incident_goes_out_in_queue_order_on_ordered_channels(store: Store) -> None:
    a1, b1, a2, a3 = ticket("A", 1), ticket("B", 1), ticket("A", 2), ticket("A", 3)
    loose = Notification("no-incident", "ticket", "C", "create", "", "x")
    queue(store, [sms(1, incident="A"), a1, b1, a2, loose, a3], now=NOW)  # other channels do not count
    id_of = {i.notification: i.id for i in store.items()}

    def due(at: float = NOW) -> list[Notification]:
        return [i.notification for i in store.due("ticket", at, 10, ordered=True)]

    assert due() == [a1, b1, loose]
    assert [i.notification for i in store.due("ticket", NOW, 10)] == [a1, b1, a2, loose, a3]
    store.claim(id_of[a1], NOW)
    assert due() == [b1, loose] and store.next_due("ticket", ordered=True) == NOW
    store.mark_retry(id_of[a1], "HTTP 503", NOW + 30)
    store.mark_sent(id_of[b1], "T2", NOW)
    store.mark_sent(id_of[loose], "T3", NOW)
    assert due() == [] and store.next_due("ticket", ordered=True) == NOW + 30
    assert store.next_due("ticket") == NOW and due(NOW + 30) == [a1]
    store.mark_dead(id_of[a1], "older than max age")  # final: no longer holds the others back
    assert due() == [a2]
    store.claim(id_of[a2], NOW)
    assert due() == [] and store.next_due("ticket", ordered=True) is None
    store.mark_sent(id_of[a2], "T1", NOW)
    assert due() == [a3]


def test_interrupted_sends_are_requeued_for_reconciliation(store: Store) -> None:
    queue(store, [sms(1), sms(2)], now=NOW)
    store.claim(1, NOW)
    assert store.requeue_sending("email", NOW + 5) == 0
    assert store.requeue_sending("sms", NOW + 5) == 1
    item = store.item(1)
    assert (item.status, item.next_attempt_at, item.first_attempt_at) == ("pending", NOW + 5, NOW)


def test_a_peer_message_is_credited_to_one_item_only(store: Store) -> None:
    queue(store, [sms(1), sms(2)], now=NOW)
    assert store.adopt(1, ["SMa", "SMb"], NOW) == "SMa"
    assert store.adopt(2, ["SMa"], NOW) is None and store.item(2).status == "pending"
    assert store.adopt(2, ["SMa", "SMb"], NOW) == "SMb"
    assert [(i.status, i.peer_ref) for i in store.items()] == [("sent", "SMa"), ("sent", "SMb")]


def test_maintenance_windows(store: Store) -> None:
    config = MaintenanceWindow("mw-1", (NodeRef("exchange", "sisli"),), NOW, NOW + 3600, "Santral güncellemesi")
    api = MaintenanceWindow("mw-api", (NodeRef("line", "s1"),), NOW, NOW + 60, grace=0.0)
    store.replace_config_maintenance([config])
    store.put_maintenance(api, "api")
    assert [(w.window, w.source) for w in store.maintenance()] == [(config, "config"), (api, "api")]
    assert store.cancel_maintenance("mw-api") and not store.cancel_maintenance("mw-api")
    assert [w.window.id for w in store.maintenance()] == ["mw-1"]
    assert [w.cancelled for w in store.maintenance(include_cancelled=True)] == [False, True]
    store.replace_config_maintenance([])
    assert [w.window.id for w in store.maintenance(include_cancelled=True)] == ["mw-api"]


def customer(action: str, at: int, to: str = "+905321112233", incident: str = "ARZ-2026-000123") -> Notification:
    return Notification(f"{incident}/sms/{to}/{action}/{at}", "sms", to, action, "", f"{action} {at}", incident)


def test_a_newer_customer_notice_supersedes_the_waiting_ones_of_its_incident(store: Store) -> None:
    """At night "still ongoing" and "restored" both wait for 08:00: only "restored" may go."""
    morning = NOW + 3600
    update, other_line, other_incident = (
        customer("update", 1),
        customer("update", 1, to="+905329998877"),
        customer("outage", 1, incident="ARZ-2026-000124"),
    )
    noc = Notification(
        "ARZ-2026-000123/email/noc@isp.example/noc-opened", "email", "noc@isp.example", "noc-opened", "", "", "ARZ-2026-000123"
    )
    store.commit_step(None, [], [(update, morning), (other_line, morning), (other_incident, None), (noc, None)], NOW)
    restored = customer("restored", 2)
    assert store.commit_step(None, [], [(restored, morning)], NOW + 60) == 1
    status = {i.notification.key: (i.status, i.last_error) for i in store.items()}
    assert status[update.key] == ("dead", "superseded by a newer notice of its incident")
    assert {status[n.key][0] for n in (restored, other_line, other_incident, noc)} == {"pending"}

    [sent] = [i for i in store.items() if i.notification == other_line]
    store.claim(sent.id, NOW + 120)
    store.mark_sent(sent.id, "SM1", NOW + 120)
    store.commit_step(None, [], [(customer("restored", 2, to="+905329998877"), None)], NOW + 180)
    assert store.item(sent.id).status == "sent"  # what went out stays as it was

    together = [customer("outage", 3, incident="ARZ-2026-000125"), customer("update", 3, incident="ARZ-2026-000125")]
    store.commit_step(None, [], [(n, None) for n in together], NOW + 240)
    assert {i.status for i in store.items() if i.notification in together} == {"pending"}  # one step: both


def test_incident_members_written_in_the_record_move_to_rows(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    db = sqlite3.connect(path)
    migrate(db, 8)  # before member rows: an incident's record held its members
    members = {"members": ["device:d1", "line:s1", "line:s2"], "failing": ["line:s1"], "waiting": ["line:s2"]}
    legacy = {"tracking": "ARZ-2026-000123", "phase": "open", **members}
    db.execute("INSERT INTO engine_head VALUES (1, ?, ?)", (json.dumps(HEAD), NOW))
    db.execute("INSERT INTO engine_incidents VALUES (?, ?)", ("ARZ-2026-000123", json.dumps(legacy)))
    db.commit()
    db.close()
    s = Store.open(path)
    assert s.load_engine() == SavedEngine({**HEAD, "targets": [], "incidents": [legacy]}, rows=True)
    rows = s._db.execute("SELECT key, bits FROM engine_members ORDER BY key").fetchall()
    assert [tuple(r) for r in rows] == [("device:d1", 1), ("line:s1", 3), ("line:s2", 5)]
    assert "members" not in json.loads(s._db.execute("SELECT record FROM engine_incidents").fetchone()[0])
    s.close()
