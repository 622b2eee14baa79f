"""The engine's state in rows: what `changes()` hands the store after each step, applied to a
table, always adds up to `snapshot()`, and a step hands over only the targets it changed."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings

from monitord.model import Outcome
from rules.engine import Engine
from rules.snapshot import assemble
from tests.depth import examples
from tests.rules_fixtures import T0, canonical, dead, healthy, line, rules, topology
from tests.test_rules_properties import RULES, scenarios


class Table:
    """What a store keeps: the head and one row per target and per incident, JSON round-tripped."""

    def __init__(self) -> None:
        self.head: dict[str, Any] = {}
        self.targets: dict[str, Any] = {}
        self.incidents: dict[str, Any] = {}
        self.members: dict[str, dict[str, int]] = {}  # by tracking number: node key -> bits

    def take(self, engine: Engine) -> None:
        c = engine.changes()
        members = {t: (m.whole, m.changed) for t, m in c.members.items()}
        rows = json.loads(json.dumps([c.head, dict(c.targets), c.incidents, members]))
        engine.written()
        self.head = rows[0]
        for table, changed in ((self.targets, rows[1]), (self.incidents, rows[2])):
            for key, record in changed.items():
                if record is None:
                    table.pop(key, None)
                else:
                    table[key] = record
        for tracking, record in rows[2].items():
            if record is None:
                self.members.pop(tracking, None)
        for tracking, (whole, changed) in rows[3].items():
            kept = {} if whole else self.members.get(tracking, {})
            kept.update(changed)
            self.members[tracking] = {key: bits for key, bits in kept.items() if bits}

    def snapshot(self) -> dict[str, Any]:
        members = {t: list(rows.items()) for t, rows in self.members.items()}
        return assemble(self.head, self.targets.values(), self.incidents.values(), members)


def differences(saved: dict[str, Any], live: dict[str, Any]) -> list[str]:
    """Where the rows and the engine disagree, for the failure message."""
    saved, live = canonical(saved), canonical(live)
    found = [
        f"{part}: {saved[part]} != {live[part]}"
        for part in live
        if part not in ("targets", "incidents") and saved[part] != live[part]
    ]
    for part, key in (("targets", "key"), ("incidents", "tracking")):
        rows, now = ({r[key]: r for r in snap[part]} for snap in (saved, live))
        found += [f"{k}: {rows.get(k)} != {now.get(k)}" for k in sorted(rows.keys() | now.keys()) if rows.get(k) != now.get(k)]
    return found


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_the_rows_written_after_each_step_add_up_to_the_snapshot(scenario) -> None:
    topo, events, cut, _ = scenario
    engine, table = Engine(topo, RULES, "ARZ"), Table()
    for i, (now, batch) in enumerate(events):
        engine.observe(batch, now) if batch else engine.tick(now)
        if i % 3 != 1:  # and when some steps were not written (the store refused them)
            table.take(engine)
            assert not differences(table.snapshot(), engine.snapshot()), f"after step {i}"
    table.take(engine)
    resumed = Engine.restore(topo, RULES, "ARZ", table.snapshot(), stored=True)
    assert canonical(resumed.snapshot()) == canonical(engine.snapshot())
    assert resumed.changes().targets == {} and resumed.changes().incidents == {}, "rows just read are clean"


def test_a_step_hands_over_only_the_targets_it_changed() -> None:
    topo = topology({"x1": {"d1": list(range(10)), "d2": list(range(10))}})
    engine = Engine(topo, rules(), "ARZ")
    engine.observe(healthy(topo), T0)
    assert len(engine.changes().targets) == 22, "every line and device judged for the first time"
    engine.written()
    engine.observe(healthy(topo, T0 + 60), T0 + 60)
    assert engine.changes().targets == {}, "the same verdicts again change nothing"
    engine.observe([line("d1-3", Outcome.TIMEOUT, T0 + 120)], T0 + 120)
    rows = engine.changes()
    assert set(rows.targets) == {"line:d1-3"} and rows.incidents == {}
    engine.written()
    engine.observe(dead("d2", T0 + 180), T0 + 180)
    engine.tick(T0 + 600)
    rows = engine.changes()
    assert {"device:d2"} <= set(rows.targets) <= {"device:d2", "line:d1-3"} | {f"line:d2-{n}" for n in range(10)}
    assert [i["root"] for i in rows.incidents.values()] == ["device:d2"]
    assert all(rows.targets[k] is not None for k in rows.targets)


def test_targets_gone_from_the_topology_are_rows_to_delete() -> None:
    topo = topology({"x1": {"d1": [0, 1], "d2": [0, 1]}})
    engine = Engine(topo, rules(), "ARZ")
    engine.observe(healthy(topo), T0)
    engine.written()
    engine.set_topology(topology({"x1": {"d1": [0, 1]}}), T0 + 60)
    rows = engine.changes()
    assert {k for k, v in rows.targets.items() if v is None} == {"device:d2", "line:d2-0", "line:d2-1"}


def test_an_incident_hands_over_only_the_member_rows_that_changed() -> None:
    topo = topology({"x1": {"d1": list(range(10)), "d2": list(range(10))}})
    engine = Engine(topo, rules(), "ARZ")
    engine.observe(healthy(topo), T0)
    engine.observe(dead("d2", T0 + 60), T0 + 60)
    engine.tick(T0 + 600)
    rows = engine.changes()
    ((tracking, members),) = rows.members.items()
    assert members.whole and len(members.changed) == 11, "a new incident: its device and its 10 lines"
    assert "members" not in rows.incidents[tracking], "the record leaves its members to their rows"
    engine.written()
    engine.observe([*dead("d2", T0 + 660), line("d2-3", Outcome.TIMEOUT, T0 + 660, probe="icmp")], T0 + 660)
    rows = engine.changes()
    assert tracking in rows.incidents and rows.members == {}, "touched, the same members failing: no member row"
    engine.written()
    engine.observe(healthy(topo, T0 + 720), T0 + 720)
    rows = engine.changes()
    assert tracking in rows.incidents and not rows.members[tracking].whole
    assert set(rows.members[tracking].changed) <= {"device:d2"} | {f"line:d2-{n}" for n in range(10)}
