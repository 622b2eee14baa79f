"""Stages in the store (issue 12): the engine's stage written with each step, the helpdesk's
recorded once per change with who and when, the history pruned with its incident; both engines."""

from __future__ import annotations

from dataclasses import replace

from monitord.model import Phase
from monitord.stages import DEFAULT_TABLE, StageChange
from monitord.store import Store
from tests.outbox_fixtures import store  # noqa: F401  (fixture)
from tests.test_store import NOW, incident

TRACKING = "ARZ-2026-000123"


def test_engine_and_helpdesk_stages_are_history_rows(store: Store) -> None:
    store.commit_step(None, [incident()], [], NOW)
    store.commit_step(None, [replace(incident(), updated_at=NOW + 60)], [], NOW + 60)  # still detected: no new row
    assert store.helpdesk_stage(TRACKING) is None
    assert store.set_stage(StageChange(TRACKING, "field_team", "helpdesk", "ayse", NOW + 90))
    assert not store.set_stage(StageChange(TRACKING, "field_team", "helpdesk", "mehmet", NOW + 95))  # the same stage again
    assert store.helpdesk_stage(TRACKING) == "field_team"
    shown = DEFAULT_TABLE.current(incident(), store.helpdesk_stage(TRACKING))
    assert shown.id == "field_team"
    store.commit_step(None, [incident(Phase.RECOVERING)], [], NOW + 120)
    resolved = incident(Phase.RESOLVED, resolved_at=NOW + 300)
    store.commit_step(None, [resolved], [], NOW + 300)
    assert DEFAULT_TABLE.current(resolved, store.helpdesk_stage(TRACKING)).id == "resolved"  # the engine's resolution wins
    assert [(c.stage, c.source, c.actor, c.at) for c in store.stage_history(TRACKING)] == [
        ("detected", "engine", "monitord", NOW),
        ("field_team", "helpdesk", "ayse", NOW + 90),
        ("recovering", "engine", "monitord", NOW + 120),
        ("resolved", "engine", "monitord", NOW + 300),
    ]
    assert store.prune(NOW, NOW, NOW + 301) == 1
    assert store.stage_history(TRACKING) == []


def test_the_helpdesk_cursor_is_kept(store: Store) -> None:
    assert store.cursor("rt") is None
    store.put_cursor("rt", "2026-12-04 10:00:00")
    store.put_cursor("rt", "2026-12-04 10:05:00")
    assert store.cursor("rt") == "2026-12-04 10:05:00"
