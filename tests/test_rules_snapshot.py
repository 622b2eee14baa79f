"""A snapshot the engine saved before it was split into parts (commit 4be85de, format version 1)
restores: the same state comes back, and the engine goes on exactly as the old one did.

tests/rules_snapshot_v1.json holds that snapshot, taken after `before` ran on the old engine,
and what `after` returned when the old engine went on from there (an open device outage that
recovers, a resolved line incident that reopens, a line fault about to settle, a maintenance
window that overruns: a timer of every kind).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from monitord.model import IncidentKind, MaintenanceWindow, NodeRef, Outcome, Phase
from monitord.store import Store, migrate
from rules.engine import Engine
from rules.judge import Fault
from rules.lifecycle import TRANSITIONS, Event, Tracked, transition
from rules.nodes import Level, NodeKey
from tests.rules_fixtures import T0, canonical, changes, dead, device, engine, line, rules, topology

FIXTURE = Path(__file__).with_name("rules_snapshot_v1.json")
TOPO = topology({"x": {"d1": [0, 1, 2], "d2": [0, 1]}, "y": {"d3": [0, 1]}})
WINDOW = MaintenanceWindow("mw-1", (NodeRef("device", "d2"),), T0 + 50, T0 + 5000, "upgrade", 60)


def before(e: Engine) -> list[tuple[str, str, str]]:
    out = changes(e.set_maintenance([WINDOW], T0 + 5))
    out += changes(e.observe(dead("d1", T0 + 10), T0 + 10))
    out += changes(e.observe([line("d3-0", Outcome.NOT_FOUND, T0 + 20)], T0 + 20))
    for t in range(60, 400, 30):
        out += changes(e.tick(T0 + t))
    out += changes(e.observe([line("d3-0", at=T0 + 200)], T0 + 200))
    for t in range(400, 1600, 40):
        out += changes(e.tick(T0 + t))
    out += changes(e.observe([line("d3-1", Outcome.NOT_FOUND, T0 + 1570)], T0 + 1570))
    return out


def after(e: Engine) -> list[list[str]]:
    out = changes(e.observe([device("d1", at=T0 + 1700), device("d1", at=T0 + 1700, probe="icmp")], T0 + 1700))
    out += changes(e.observe([line(f"d1-{n}", at=T0 + 1705) for n in range(3)], T0 + 1705))
    out += changes(e.observe(dead("d2", T0 + 4000), T0 + 4000))
    out += changes(e.observe([line("d3-0", Outcome.NOT_FOUND, T0 + 4100)], T0 + 4100))
    for t in range(1800, 9000, 250):
        out += changes(e.tick(T0 + t))
    out += [("overran", ",".join(sorted(e.overran())), "")]
    out += [("open", i.tracking, str(i.root)) for i in e.incidents()]
    return [list(change) for change in out]


def saved() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return loaded


def test_an_old_snapshot_restores_the_same_state() -> None:
    old = saved()["snapshot"]
    again = Engine.restore(TOPO, rules(), "ARZ", old).snapshot()
    assert {**again, "timers": sorted(again["timers"])} == {**old, "timers": sorted(old["timers"])}
    assert {kind for _, kind, _ in old["timers"]} == {"t", "i", "m"}


def test_an_old_snapshot_goes_on_as_the_old_engine_did() -> None:
    restored = Engine.restore(TOPO, rules(), "ARZ", saved()["snapshot"])
    assert after(restored) == saved()["after"]


def test_a_state_file_holding_the_old_document_is_restored_once_then_kept_in_rows(tmp_path: Path) -> None:
    """Schema 7 kept the engine as one document (engine_state): it is restored from it once; the
    first commit writes every row and drops the document, and the rows restore the same engine."""
    path = tmp_path / "v7.db"
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db, target=7)
    db.execute("INSERT INTO engine_state VALUES (1, ?, ?)", (json.dumps(saved()["snapshot"]), T0))
    db.close()
    store = Store.open(path)
    try:
        old = store.load_engine()
        assert old is not None and not old.rows
        engine = Engine.restore(TOPO, rules(), "ARZ", old.snapshot, stored=old.rows)
        rows = engine.changes()
        assert len(rows.targets) == len(old.snapshot["targets"]) and len(rows.incidents) == len(old.snapshot["incidents"])
        store.commit_step(rows, [], [], T0 + 1600)
        engine.written()
        assert store._db.execute("SELECT count(*) FROM engine_state").fetchone()[0] == 0
        now = store.load_engine()
        assert now is not None and now.rows and canonical(now.snapshot) == canonical(saved()["snapshot"])
    finally:
        store.close()
    assert after(Engine.restore(TOPO, rules(), "ARZ", now.snapshot, stored=True)) == saved()["after"]


def test_the_scenario_still_leads_to_that_snapshot() -> None:
    """The fixture's first half, run on today's engine, saves what the old one saved."""
    e = engine(TOPO)
    assert [c[0] for c in before(e)] == ["opened", "opened", "recovering", "resolved"]
    now = json.loads(json.dumps(e.snapshot()))
    old = saved()["snapshot"]
    assert {**now, "timers": sorted(now["timers"])} == {**old, "timers": sorted(old["timers"])}


def test_every_incident_kind_is_a_fault_kind() -> None:
    assert [Fault(kind.value).kind() for kind in IncidentKind] == list(IncidentKind)


def test_node_keys_sort_and_read_as_their_spelling() -> None:
    spelled = ["device:a", "device:a-b", "exchange:x", "line:a", "line:a-1", "region:r"]
    keys = [NodeKey.parse(text) for text in reversed(spelled)]
    assert [str(key) for key in sorted(keys)] == spelled
    assert NodeKey.of(NodeRef("cabinet", "c1")) == NodeKey(Level.CABINET, "c1")
    assert NodeKey(Level.LINE, "l1").ref() == NodeRef("line", "l1")
    with pytest.raises(ValueError):
        NodeKey.parse("street:s1")


@pytest.mark.parametrize("phase", list(Phase))
@pytest.mark.parametrize("event", list(Event))
def test_the_lifecycle_moves_only_along_its_table(phase: Phase, event: Event) -> None:
    inc = Tracked("ARZ-2026-000001", Fault.OUTAGE, NodeKey(Level.LINE, "l1"), phase, T0, T0, set())
    inc.failing.add(inc.root)
    goes_to = TRANSITIONS.get((phase, event))
    if goes_to is None:
        with pytest.raises(AssertionError, match="no transition"):
            transition(inc, event, T0 + 1)
        assert inc.phase is phase
        return
    transition(inc, event, T0 + 1)
    assert inc.phase is goes_to
    assert inc.resolved_at == (T0 + 1 if goes_to is Phase.RESOLVED else None)
    assert inc.failing == (set() if goes_to is Phase.RESOLVED else {inc.root})
