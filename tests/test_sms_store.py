"""Inbound SMS in the store (issue 12 item 3), both engines: a MessageSid is taken once, the
last opt-out or opt-in counts, and an opted-out phone is queued no SMS but replies."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from monitord.model import Notification
from monitord.store import MIGRATIONS, InboundRecord, Store, migrate
from tests.outbox_fixtures import store, version_before  # noqa: F401  (fixture)

PHONE, OTHER = "+905321112233", "+905324445566"
SID = "SM" + "a" * 32
NOW = 1_800_000_000.0


def reply(key: str, to: str = PHONE) -> tuple[Notification, None]:
    return Notification(key, "sms", to, "reply", "", "Tamam"), None


def notice(key: str, to: str = PHONE) -> tuple[Notification, None]:
    return Notification(key, "sms", to, "outage", "", "Arıza var", f"ARZ-2026-{key}"), None  # an incident each


def test_a_message_is_taken_once_with_its_effects(store: Store) -> None:
    assert store.record_inbound(InboundRecord(SID, PHONE, "opt_out", NOW), True, [reply("in/1")], NOW)
    assert not store.record_inbound(InboundRecord(SID, PHONE, "opt_in", NOW + 1), False, [reply("in/2")], NOW + 1)
    assert store.inbound(SID) == InboundRecord(SID, PHONE, "opt_out", NOW)
    assert store.sms_opt_outs() == {PHONE}
    assert [i.notification.key for i in store.items("sms")] == ["in/1"]


def test_an_opt_out_stops_what_waits_and_what_comes_but_replies(store: Store) -> None:
    store.commit_step(None, [], [notice("n/1"), notice("n/other", OTHER)], NOW)
    store.record_inbound(InboundRecord(SID, PHONE, "opt_out", NOW), True, [reply("in/1")], NOW)
    store.commit_step(None, [], [notice("n/2"), notice("n/other2", OTHER), reply("in/late")], NOW + 1)
    status = {i.notification.key: (i.status, i.last_error) for i in store.items("sms")}
    opted = ("dead", "the subscriber opted out of SMS by SMS")
    assert status == {
        "n/1": opted,
        "n/other": ("pending", None),
        "in/1": ("pending", None),
        "n/2": opted,
        "n/other2": ("pending", None),
        "in/late": ("pending", None),
    }
    store.record_inbound(InboundRecord("SM" + "b" * 32, PHONE, "opt_in", NOW + 2), False, [], NOW + 2)
    assert store.sms_opt_outs() == frozenset()
    store.commit_step(None, [], [notice("n/3")], NOW + 3)
    assert store.items("sms", "pending")[-1].notification.key == "n/3"


def test_a_reply_that_could_not_be_written_is_filed_dead(store: Store) -> None:
    broken = Notification("in/broken", "sms", PHONE, "reply", "", "", error="template sms.help: no such template")
    assert store.record_inbound(InboundRecord(SID, PHONE, "unknown", NOW), None, [(broken, None)], NOW)
    [item] = store.items("sms")
    assert (item.status, item.last_error) == ("dead", "template sms.help: no such template")


def test_messages_are_forgotten_with_the_sent_history(store: Store) -> None:
    store.record_inbound(InboundRecord(SID, PHONE, "unknown", NOW), None, [], NOW)
    store.record_inbound(InboundRecord("SM" + "c" * 32, PHONE, "unknown", NOW + 100), None, [], NOW + 100)
    assert store.prune(NOW + 50, NOW + 50, NOW + 50) == 1
    assert store.inbound(SID) is None and store.inbound("SM" + "c" * 32) is not None
    assert store.sms_opt_outs() == frozenset()


def test_a_state_file_of_the_version_before_migrates(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    migrate(db, version_before(MIGRATIONS, "CREATE TABLE sms_answers"))
    db.close()
    s = Store.open(path)
    try:
        assert s.record_inbound(InboundRecord(SID, PHONE, "opt_out", NOW), True, [], NOW)
        assert s.sms_opt_outs() == {PHONE}
    finally:
        s.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_a_replay_after_a_restart_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = Store.open(path)
    assert first.record_inbound(InboundRecord(SID, PHONE, "opt_out", NOW), True, [reply("in/1")], NOW)
    first.close()
    again = Store.open(path)
    try:
        assert not again.record_inbound(InboundRecord(SID, PHONE, "opt_in", NOW + 60), False, [reply("in/2")], NOW + 60)
        assert again.sms_opt_outs() == {PHONE} and [i.notification.key for i in again.items("sms")] == ["in/1"]
    finally:
        again.close()
