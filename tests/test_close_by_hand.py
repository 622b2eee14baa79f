"""Closing an incident by hand (issue 13 item 1): the engine's side. The incident resolves at once
("closed") with who and why; members still failing are muted until they recover once, so the
closed incident neither reopens nor gives way to a new one while the fault lasts; restarts keep it."""

from __future__ import annotations

import json

from monitord.model import Outcome, Phase
from rules.engine import Closure, Engine
from tests.rules_fixtures import T0, changes, dead, device, engine, line, rules, topology

TWO_DSLAMS = topology({"x": {"d1": list(range(10)), "d2": list(range(10))}, "y": {"d3": list(range(10))}})
TRACKING = "ARZ-2026-000001"


def _down_line(e: Engine) -> None:
    e.observe([line("d1-0", Outcome.NOT_FOUND, T0 + 60)], T0 + 60)
    assert changes(e.tick(T0 + 120)) == [("opened", TRACKING, "line:d1-0")]


def test_closing_a_failing_line_resolves_it_and_mutes_the_line_until_it_recovers() -> None:
    e = engine(TWO_DSLAMS)
    _down_line(e)
    step = e.close(TRACKING, Closure("ayse", "customer moved out, line to be ceased"), T0 + 200)
    assert step is not None and changes(step) == [("closed", TRACKING, "line:d1-0")]
    (change,) = step.incidents
    assert change.incident.phase is Phase.RESOLVED and change.incident.resolved_at == T0 + 200
    assert change.closed == Closure("ayse", "customer moved out, line to be ceased", frozenset({"d1-0"}))
    assert change.incident.evidence[-1] == "closed by hand by ayse: customer moved out, line to be ceased"
    assert e.incidents() == [] and e.incident(TRACKING) is None  # forgotten: it never reopens

    for minute in range(4, 30):  # the line still fails: nothing opens again
        now = T0 + 60 * minute
        assert e.observe([line("d1-0", Outcome.NOT_FOUND, now)], now).incidents == ()
        assert e.tick(now + 30).incidents == ()
    assert e.close(TRACKING, Closure("ayse", "again"), T0 + 1900) is None  # no longer open

    e.observe([line("d1-0", at=T0 + 2000)], T0 + 2000)  # recovered once: unmuted
    e.observe([line("d1-0", Outcome.NOT_FOUND, T0 + 2100)], T0 + 2100)
    assert changes(e.tick(T0 + 2160)) == [("opened", "ARZ-2026-000002", "line:d1-0")]  # a new number


def test_closing_a_recovering_incident_mutes_nothing() -> None:
    e = engine(TWO_DSLAMS)
    _down_line(e)
    e.observe([line("d1-0", at=T0 + 180)], T0 + 180)  # recovering, not yet verified
    step = e.close(TRACKING, Closure("ayse", "verified by phone"), T0 + 200)
    assert step is not None and step.incidents[0].closed == Closure("ayse", "verified by phone", frozenset())
    e.observe([line("d1-0", Outcome.NOT_FOUND, T0 + 300)], T0 + 300)
    assert changes(e.tick(T0 + 360)) == [("opened", "ARZ-2026-000002", "line:d1-0")]


def test_a_closed_device_incident_stays_closed_while_the_device_is_dead_and_other_faults_still_open() -> None:
    e = engine(TWO_DSLAMS)
    e.observe(dead("d1", T0 + 60), T0 + 60)
    assert changes(e.tick(T0 + 120)) == [("opened", TRACKING, "device:d1")]
    step = e.close(TRACKING, Closure("mehmet", "DSLAM decommissioned"), T0 + 130)
    assert step is not None and len(step.incidents[0].closed.muted) == 10  # type: ignore[union-attr]
    for minute in range(3, 20):
        now = T0 + 60 * minute
        assert e.observe(dead("d1", now), now).incidents == ()
        assert e.tick(now + 30).incidents == ()
    e.observe([line("d3-3", Outcome.NOT_FOUND, T0 + 1300)], T0 + 1300)  # another fault is news
    assert changes(e.tick(T0 + 1360)) == [("opened", "ARZ-2026-000002", "line:d3-3")]


def test_restarts_keep_the_mute_from_the_snapshot_and_from_the_rows() -> None:
    e = engine(TWO_DSLAMS)
    _down_line(e)
    assert e.close(TRACKING, Closure("ayse", "ceased"), T0 + 200) is not None
    rows = e.changes()
    assert rows.targets["line:d1-0"]["muted"] is True  # type: ignore[index]
    assert rows.incidents[TRACKING] is None  # the engine forgets it; the store keeps it resolved
    assert "muted" not in (rows.targets.get("line:d1-1") or {})
    document = json.loads(json.dumps(e.snapshot()))
    for resumed in (Engine.restore(TWO_DSLAMS, rules(), "ARZ", document), _from_rows(e)):
        for minute in range(4, 15):
            now = T0 + 60 * minute
            assert resumed.observe([line("d1-0", Outcome.NOT_FOUND, now)], now).incidents == ()
            assert resumed.tick(now + 30).incidents == ()
        resumed.observe([line("d1-0", at=T0 + 1000), device("d1", at=T0 + 1000)], T0 + 1000)
        assert "muted" not in (resumed.changes().targets["line:d1-0"] or {})  # its row says it is unmuted
        resumed.observe([line("d1-0", Outcome.NOT_FOUND, T0 + 1100)], T0 + 1100)
        assert changes(resumed.tick(T0 + 1160)) == [("opened", "ARZ-2026-000002", "line:d1-0")]


def _from_rows(e: Engine) -> Engine:
    """An engine resumed from the rows a store holds (every target's record, as `assemble` reads)."""
    from rules.snapshot import TargetRecords, _head, assemble

    s = e._s
    records = TargetRecords(s, set(s.targets))
    targets = [dict(r) for _, r in records.items() if r is not None]
    document = assemble(_head(s, s.timers.dump(targets=False)), targets, [])
    return Engine.restore(TWO_DSLAMS, rules(), "ARZ", json.loads(json.dumps(document)), stored=True)
