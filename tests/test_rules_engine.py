"""The engine, scenario by scenario: outages, regions, lifecycle, maintenance, restarts."""

from __future__ import annotations

import json
import re

from monitord.model import IncidentKind, MaintenanceWindow, NodeRef, Outcome, Phase, Status
from rules.engine import Engine
from tests.rules_fixtures import T0, changes, dead, device, engine, healthy, line, rules, topology

TWO_DSLAMS = topology({"x": {"d1": list(range(10)), "d2": list(range(10))}, "y": {"d3": list(range(10))}})


def status(e: Engine, node: str) -> Status:
    level, _, ident = node.partition(":")
    return e.node_state(NodeRef(level, ident)).status  # type: ignore[arg-type]


def test_single_line_lifecycle_and_tracking_number() -> None:
    e = engine(TWO_DSLAMS)
    step = e.observe([line("d1-0", Outcome.NOT_FOUND, T0 + 60)], T0 + 60)
    assert [(s.node.id, s.status) for s in step.states] == [("d1-0", Status.DOWN)]
    assert step.recheck == ("d1",)  # poll the parent now, before the fault settles
    assert step.incidents == ()
    assert e.tick(T0 + 119).incidents == ()
    opened = e.tick(T0 + 120)
    assert changes(opened) == [("opened", "ARZ-2026-000001", "line:d1-0")]
    incident = opened.incidents[0].incident
    assert re.fullmatch(r"ARZ-\d{4}-\d{6}", incident.tracking)
    assert (incident.kind, incident.phase, incident.affected) == (IncidentKind.OUTAGE, Phase.OPEN, frozenset({"d1-0"}))
    assert incident.evidence == ("line:d1-0: snmp:adsl: no row on the device",)

    assert changes(e.observe([line("d1-0", at=T0 + 180)], T0 + 180)) == [("recovering", "ARZ-2026-000001", "line:d1-0")]
    assert e.tick(T0 + 180 + 599).incidents == ()  # not yet verified good for `stable`
    resolved = e.tick(T0 + 180 + 600)
    assert changes(resolved) == [("resolved", "ARZ-2026-000001", "line:d1-0")]
    assert resolved.incidents[0].incident.affected == frozenset({"d1-0"})  # who to tell it is back
    assert e.incidents() == []

    e.observe([line("d1-0", Outcome.NOT_FOUND, T0 + 1000)], T0 + 1000)
    assert changes(e.tick(T0 + 1060)) == [("reopened", "ARZ-2026-000001", "line:d1-0")]
    e.observe([line("d1-0", at=T0 + 1100)], T0 + 1100)
    e.tick(T0 + 1700)
    assert e.incident("ARZ-2026-000001").phase is Phase.RESOLVED
    e.tick(T0 + 1700 + 3600)  # the reopen window has passed: forgotten
    assert e.incident("ARZ-2026-000001") is None
    e.observe([line("d1-0", Outcome.NOT_FOUND, T0 + 6000)], T0 + 6000)
    assert changes(e.tick(T0 + 6060)) == [("opened", "ARZ-2026-000002", "line:d1-0")]


def test_a_brief_blip_inside_settle_opens_nothing() -> None:
    e = engine(TWO_DSLAMS)
    e.observe([line("d1-0", Outcome.NOT_FOUND, T0 + 60)], T0 + 60)
    e.observe([line("d1-0", at=T0 + 90)], T0 + 90)
    assert e.tick(T0 + 1000).incidents == ()


def test_dead_device_is_one_incident_and_its_lines_are_unreachable() -> None:
    e = engine(TWO_DSLAMS)
    step = e.observe(dead("d3", T0 + 60), T0 + 60)
    assert status(e, "device:d3") is Status.DOWN
    assert {s.node.id: s.status for s in step.states if s.node.level == "line"} == {
        f"d3-{n}": Status.UNREACHABLE for n in range(10)
    }
    assert changes(e.tick(T0 + 120)) == [("opened", "ARZ-2026-000001", "device:d3")]
    (incident,) = e.incidents()
    assert incident.affected == frozenset(f"d3-{n}" for n in range(10))
    assert incident.evidence[0] == "device:d3: icmp: timeout; snmp:adsl: timeout"


def test_probe_order_does_not_decide_the_outcome() -> None:
    """Lines reported down first, the dead DSLAM seen a little later: still one device incident."""
    e = engine(TWO_DSLAMS)
    step = e.observe([line(f"d3-{n}", Outcome.TIMEOUT, T0 + 60, probe="icmp") for n in range(10)], T0 + 60)
    assert step.recheck == ("d3",)
    e.observe(dead("d3", T0 + 80), T0 + 80)
    assert changes(e.tick(T0 + 200)) == [("opened", "ARZ-2026-000001", "device:d3")]


def test_auth_failure_is_not_an_outage() -> None:
    e = engine(TWO_DSLAMS)
    e.observe([device("d3", Outcome.AUTH_FAILURE, T0 + 60), device("d3", Outcome.TIMEOUT, T0 + 60, "icmp")], T0 + 60)
    state = e.node_state(NodeRef("device", "d3"))
    assert state.status is Status.UNKNOWN and "snmp:adsl: auth_failure" in state.reasons
    assert status(e, "line:d3-0") is Status.OK
    assert e.tick(T0 + 600).incidents == ()


def test_regional_incident_promotes_line_incidents_without_duplicates() -> None:
    topo = topology({"x": {f"d{i}": [0, 1] for i in range(5)}}, cabinets={f"d{i}": "k1" for i in range(4)})
    e = engine(topo, rules(min_count=4, min_fraction=0.5, close_count=2, close_fraction=0.2))
    e.observe([line("d0-0", Outcome.NOT_FOUND, T0 + 60), line("d1-0", Outcome.NOT_FOUND, T0 + 60)], T0 + 60)
    first = e.tick(T0 + 120)
    assert sorted(c[2] for c in changes(first)) == ["line:d0-0", "line:d1-0"]
    replaced = sorted(c.incident.tracking for c in first.incidents)

    fresh = [line("d2-0", Outcome.NOT_FOUND, T0 + 130), line("d3-1", Outcome.NOT_FOUND, T0 + 130)]
    promoted = e.observe(fresh, T0 + 130)  # 4 of the cabinet's 8 lines count now: it qualifies at once
    (wider,) = [c.incident.tracking for c in promoted.incidents if c.change == "promoted"]
    assert [(c.change, str(c.incident.root), c.replaces, c.merged_into) for c in promoted.incidents] == [
        ("merged", "line:d0-0", (), wider),
        ("merged", "line:d1-0", (), wider),
        ("promoted", "cabinet:k1", tuple(replaced), None),
    ]
    merged = [c.incident for c in promoted.incidents if c.change == "merged"]
    assert [(i.phase, i.resolved_at, i.evidence[-1]) for i in merged] == [(Phase.RESOLVED, T0 + 130, f"merged into {wider}")] * 2
    assert e.tick(T0 + 190).incidents[0].added == frozenset({"d2-0", "d3-1"})  # joined when settled
    (incident,) = e.incidents()
    assert incident.affected == frozenset({"d0-0", "d1-0", "d2-0", "d3-1"})
    assert incident.evidence == ("4/8 lines down behind cabinet:k1",)
    assert all(e.incident(t) is None for t in replaced)
    assert status(e, "cabinet:k1") is Status.DOWN and status(e, "exchange:x") is Status.OK


def test_regional_incident_grows_shrinks_and_keeps_its_number() -> None:
    topo = topology({"x": {"d0": list(range(10))}})
    e = engine(topo, rules(min_count=4, min_fraction=0.4, close_count=2, close_fraction=0.2))
    e.observe([line(f"d0-{n}", Outcome.NOT_FOUND, T0 + 60) for n in range(5)], T0 + 60)
    ((change, tracking, root),) = changes(e.tick(T0 + 120))
    assert (change, root) == ("opened", "device:d0")
    e.observe([line("d0-5", Outcome.NOT_FOUND, T0 + 130)], T0 + 130)
    grew = e.tick(T0 + 190)
    assert [(c.change, c.added) for c in grew.incidents] == [("grew", frozenset({"d0-5"}))]
    e.observe([line("d0-0", at=T0 + 200)], T0 + 200)
    shrank = e.tick(T0 + 800)
    assert [(c.change, c.incident.tracking, c.removed) for c in shrank.incidents] == [("shrank", tracking, frozenset({"d0-0"}))]


def test_degradation_incident_from_thresholds() -> None:
    e = engine(TWO_DSLAMS)
    step = e.observe([line("d1-3", at=T0 + 60, snr_margin_down_db=4.0)], T0 + 60)
    assert step.states == ()  # `for: 2m`: pending only
    e.observe([line("d1-3", at=T0 + 120, snr_margin_down_db=4.5)], T0 + 120)
    degraded = e.tick(T0 + 180)
    assert [(s.node.id, s.status, s.reasons) for s in degraded.states] == [
        ("d1-3", Status.DEGRADED, ("snr_margin_down_db 4 <= 6",))
    ]
    opened = e.tick(T0 + 240)
    assert [(c.change, c.incident.kind) for c in opened.incidents] == [("opened", IncidentKind.DEGRADATION)]


def test_parent_recovery_does_not_flood_single_line_incidents() -> None:
    """The DSLAM comes back; its modems take a few minutes to resync: still one incident."""
    e = engine(TWO_DSLAMS)
    e.observe(dead("d3", T0 + 60), T0 + 60)
    e.tick(T0 + 120)
    back = [device("d3", at=T0 + 300), device("d3", at=T0 + 300, probe="icmp")]
    step = e.observe(back + [line(f"d3-{n}", Outcome.NOT_FOUND, T0 + 300) for n in range(10)], T0 + 300)
    assert step.recheck == ("d3",)
    assert step.incidents == ()
    opened = []
    for minute in range(1, 10):
        now = T0 + 300 + 60 * minute
        samples = [line(f"d3-{n}", Outcome.NOT_FOUND if n >= minute else Outcome.OK, now) for n in range(10)]
        opened += [c for c in e.observe(samples, now).incidents + e.tick(now).incidents if c.change == "opened"]
    assert opened == []
    (incident,) = e.incidents()
    assert str(incident.root) == "device:d3" and incident.phase is Phase.OPEN


def test_maintenance_suppresses_then_overrun() -> None:
    e = engine(TWO_DSLAMS)
    window = MaintenanceWindow("mw-1", (NodeRef("exchange", "y"),), T0 + 100, T0 + 1000, "upgrade", grace=300)
    assert e.set_maintenance([window], T0 + 50).states == ()
    start = e.tick(T0 + 100)
    assert {s.status for s in start.states} == {Status.MAINTENANCE}
    assert len(start.states) == 11  # d3 and its ten lines
    e.observe(dead("d3", T0 + 200), T0 + 200)
    assert e.tick(T0 + 1299).incidents == ()
    assert e.node_state(NodeRef("line", "d3-0")).reasons == ("maintenance mw-1", "device d3 down")
    overrun = e.tick(T0 + 1300)
    assert changes(overrun) == [("opened", "ARZ-2026-000001", "device:d3")]
    assert overrun.incidents[0].incident.kind is IncidentKind.OVERRUN
    assert status(e, "line:d3-0") is Status.UNREACHABLE


def test_maintenance_window_that_ends_clean_opens_nothing() -> None:
    e = engine(TWO_DSLAMS)
    window = MaintenanceWindow("mw-2", (NodeRef("line", "d1-1"),), T0 + 100, T0 + 200, grace=60)
    e.set_maintenance([window], T0 + 100)
    e.observe([line("d1-1", Outcome.NOT_FOUND, T0 + 120)], T0 + 120)
    assert status(e, "line:d1-1") is Status.MAINTENANCE and status(e, "line:d1-2") is Status.OK
    e.observe([line("d1-1", at=T0 + 180)], T0 + 180)
    assert e.tick(T0 + 2000).incidents == ()


def test_topology_reload_closes_incidents_of_removed_lines() -> None:
    e = engine(TWO_DSLAMS)
    e.observe([line("d1-0", Outcome.NOT_FOUND, T0 + 60)], T0 + 60)
    e.tick(T0 + 120)
    smaller = topology({"x": {"d1": list(range(1, 10)), "d2": list(range(10))}, "y": {"d3": list(range(10))}})
    step = e.set_topology(smaller, T0 + 200)
    assert [(c.change, c.removed) for c in step.incidents] == [("closed_removed", frozenset({"d1-0"}))]
    assert e.incidents() == []


def test_topology_reload_forgets_a_removed_line_whose_timer_is_due() -> None:
    e = engine(TWO_DSLAMS)
    e.observe([line("d1-0", Outcome.NOT_FOUND, T0 + 60)], T0 + 60)  # its fault settles at T0 + 120
    smaller = topology({"x": {"d1": list(range(1, 10)), "d2": list(range(10))}, "y": {"d3": list(range(10))}})
    step = e.set_topology(smaller, T0 + 120)
    assert step.incidents == () and e.incidents() == []
    assert status(e, "line:d1-0") is Status.UNKNOWN


def test_a_reload_that_removes_a_line_of_an_incident_merged_in_the_same_step() -> None:
    """A device outage recovers under maintenance; the reload that removes one of its lines
    also sees the window closed with the device still down: its overrun incident absorbs the
    outage without the removed line (this raised KeyError before)."""
    e = engine(topology({"x": {"d1": [0, 1], "d2": [0, 1]}}))
    e.observe(dead("d1", T0 + 10), T0 + 10)
    assert changes(e.tick(T0 + 400)) == [("opened", "ARZ-2026-000001", "device:d1")]
    window = MaintenanceWindow("mw", (NodeRef("device", "d1"),), T0 + 685, T0 + 985, "upgrade", 60)
    assert changes(e.set_maintenance([window], T0 + 785)) == [("recovering", "ARZ-2026-000001", "device:d1")]
    step = e.set_topology(topology({"x": {"d1": [0], "d2": [0, 1]}}), T0 + 1185)
    merged, promoted = step.incidents
    assert (merged.change, merged.incident.tracking, merged.merged_into, merged.incident.affected) == (
        "merged",
        "ARZ-2026-000001",
        "ARZ-2026-000002",
        {"d1-0"},
    )
    assert (promoted.change, promoted.replaces, promoted.incident.affected) == ("promoted", ("ARZ-2026-000001",), {"d1-0"})
    assert [(i.tracking, i.kind) for i in e.incidents()] == [("ARZ-2026-000002", IncidentKind.OVERRUN)]


def test_tracking_numbers_restart_each_year() -> None:
    e = engine(TWO_DSLAMS)
    new_year = 1798761600.0  # 2027-01-01T00:00:00Z
    e.observe([line("d1-0", Outcome.NOT_FOUND, new_year - 200)], new_year - 200)
    assert [c[1] for c in changes(e.tick(new_year - 100))] == ["ARZ-2026-000001"]
    e.observe([line("d2-0", Outcome.NOT_FOUND, new_year + 10)], new_year + 10)
    assert [c[1] for c in changes(e.tick(new_year + 100))] == ["ARZ-2027-000001"]


def _stream() -> list[tuple[float, list]]:
    """A morning: a DSLAM dies and comes back, a line degrades, another flaps."""
    events: list[tuple[float, list]] = []
    for minute in range(1, 40):
        now = T0 + 60 * minute
        samples = [line("d1-4", Outcome.NOT_FOUND if minute % 2 else Outcome.OK, now)]
        samples += dead("d3", now) if 5 <= minute < 15 else [device("d3", at=now)]
        samples += [line("d2-2", at=now, snr_margin_down_db=3.0 if minute < 25 else 12.0)]
        if minute >= 15:
            samples += [line(f"d3-{n}", Outcome.NOT_FOUND if minute < 17 + n else Outcome.OK, now) for n in range(10)]
        events.append((now, samples))
        events.append((now + 30, []))
    return events


def _run(e: Engine, events: list[tuple[float, list]]) -> list:
    return [e.observe(samples, now) if samples else e.tick(now) for now, samples in events]


def test_snapshot_restore_mid_stream_gives_identical_output() -> None:
    events = _stream()
    straight = _run(engine(TWO_DSLAMS), events)
    assert any(step.incidents for step in straight)
    for cut in (9, 20, 33, 50):
        first = engine(TWO_DSLAMS)
        before = _run(first, events[:cut])
        snapshot = json.loads(json.dumps(first.snapshot()))
        resumed = Engine.restore(TWO_DSLAMS, rules(), "ARZ", snapshot)
        assert before + _run(resumed, events[cut:]) == straight


def test_healthy_poll_is_quiet() -> None:
    e = engine(TWO_DSLAMS)
    step = e.observe(healthy(TWO_DSLAMS, T0 + 60), T0 + 60)
    assert step.states == () and step.incidents == () and step.recheck == ()
