"""A reload looks again only at what it changed, and ends where judging every target again would.

The reference is the reload as it was before it became incremental (`rejudge_all` below: every
target judged again, the counts rebuilt from scratch, every fault placed again), kept here as
an oracle: on random topologies, histories and edits, both give the same steps and the same
state, then and afterwards. Both start from a history after which judging every target again
changes nothing (a line is judged again when its device goes down or comes back, not each time
one of the device's probes changes its verdict, so a reload judging every target could find news
that is not the reload's).
"""

from __future__ import annotations

import json
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitord.model import Device, Line, NodeRef, Outcome, Sample, Status, Topology
from rules.engine import Engine, Step
from rules.lifecycle import Event, Records
from rules.nodes import Inventory
from tests.depth import examples
from tests.rules_fixtures import T0, canonical, changes, dead, engine, line, rules, topology
from tests.test_rules_properties import OUTCOMES, RULES, run, topologies


def rejudge_all(e: Engine, topo: Topology, now: float) -> Step:
    """The reload judging every target again (the engine's before it went incremental)."""
    s, book = e._s, e._s.book
    _, wake = e._due(now)
    s.inventory = Inventory.of(topo)
    records: Records = {}
    for key in [k for k in s.targets if k not in s.inventory.chain]:
        target = s.targets.pop(key)
        s.dirty.add(key)
        if target.incident is not None:
            inc = book.incidents[target.incident]
            book.record(records, inc.tracking).removed.add(key)
            book.leave(inc, key)
    for target in s.targets.values():
        target.chain = s.inventory.chain[target.key]
    for inc in [i for i in book.incidents.values() if i.phase.value != "resolved"]:
        if inc.root not in s.inventory.chain or not inc.members:
            record = book.record(records, inc.tracking)
            record.removed_from_topology = True
            record.removed |= inc.members
            for key in inc.members:
                s.targets[key].incident = None
            book.resolve(inc, Event.REMOVED, now)
    e._count_all()
    targets = set(s.targets.values())
    return e._step(now, targets, wake & targets, records)


@st.composite
def edits(draw: st.DrawFn, topo: Topology) -> Topology:
    """`topo` with lines and devices removed, added and moved (to another device, cabinet or exchange)."""
    exchanges = list(topo.exchanges)
    devices = dict(topo.devices)
    for name in list(devices):
        action = draw(st.sampled_from(["keep", "keep", "keep", "remove", "cabinet", "exchange"]))
        if action == "remove" and len(devices) > 1:
            del devices[name]
        elif action == "cabinet":
            devices[name] = replace(devices[name], cabinet=draw(st.sampled_from([None, "k0", "k1", "k9"])))
        elif action == "exchange":
            devices[name] = replace(devices[name], exchange=draw(st.sampled_from(exchanges)))
    for n in range(draw(st.integers(0, 2))):
        devices[f"new{n}"] = Device(f"new{n}", "dslam", draw(st.sampled_from(exchanges)), "127.0.0.1", None, ("adsl",))
    names = sorted(devices)
    lines = {}
    for ident, old in topo.lines.items():
        action = draw(st.sampled_from(["keep", "keep", "keep", "remove", "move"]))
        if action == "move":
            lines[ident] = replace(old, device=draw(st.sampled_from(names)))
        elif action == "keep" and old.device in devices:
            lines[ident] = old
    for n in range(draw(st.integers(0, 4))):
        lines[f"added-{n}"] = Line(f"added-{n}", "s", draw(st.sampled_from(names)))
    return replace(topo, devices=devices, lines={i: x for i, x in lines.items() if x.device in devices})


def batches(draw: st.DrawFn, topos: list[Topology], now: float, count: int) -> list[tuple[float, list[Sample]]]:
    named = {(level, i) for t in topos for level, ids in (("device", t.devices), ("line", t.lines)) for i in ids}
    targets = [NodeRef(level, i) for level, i in sorted(named)]
    events = []
    for _ in range(count):
        now += draw(st.sampled_from([0, 20, 45, 60, 90, 150]))
        batch = []
        for _ in range(draw(st.integers(0, 6))):
            outcome = draw(st.sampled_from(OUTCOMES))
            values = {"snr_margin_down_db": draw(st.sampled_from([3.0, 12.0]))} if outcome is Outcome.OK else {}
            batch.append(
                Sample(draw(st.sampled_from(targets)), draw(st.sampled_from(["snmp:adsl", "icmp"])), now, outcome, values)
            )
        events.append((now, batch))
    return events


@st.composite
def reloads(draw: st.DrawFn) -> tuple[Topology, Topology, list, float, list]:
    before = draw(topologies())
    after = draw(edits(before))
    history = batches(draw, [before], T0, draw(st.integers(1, 15)))
    at = history[-1][0] + draw(st.sampled_from([0, 30, 60, 200]))
    return before, after, history, at, batches(draw, [after], at, draw(st.integers(0, 10)))


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reloads())
def test_incremental_reload_matches_judging_every_target_again(scenario) -> None:
    before, after, history, at, later = scenario
    incremental, reference = Engine(before, RULES, "ARZ"), Engine(before, RULES, "ARZ")
    for e in (incremental, reference):
        run(e, history)
        rejudge_all(e, before, history[-1][0])  # the line a device's verdicts left unjudged: see the docstring
    assert incremental.set_topology(after, at) == rejudge_all(reference, after, at)
    assert canonical(incremental.snapshot()) == canonical(reference.snapshot())
    assert run(incremental, later) == run(reference, later)
    assert canonical(incremental.snapshot()) == canonical(reference.snapshot())
    assert incremental.changes() == reference.changes()


def test_a_reload_moving_one_line_judges_only_that_line() -> None:
    """A reload moving one line to a device whose lines are down: that line alone is judged
    again and goes unreachable; the other lines keep their states untouched, and the engine
    then is as one that had the new topology all along and saw the same samples."""
    old = topology({"x": {"d1": [0, 1, 2], "d2": [0, 1, 2]}})
    new = replace(old, lines={**old.lines, "d1-0": replace(old.lines["d1-0"], device="d2")})
    e = engine(old)
    e.observe(dead("d2", T0 + 10), T0 + 10)
    e.observe([line("d1-1", Outcome.OK, T0 + 20, snr_margin_down_db=3.0)], T0 + 20)
    since = {i: e.line_state(i) for i in old.lines}
    step = e.set_topology(e.reshape(new), T0 + 30)
    assert [(s.node.id, s.status) for s in step.states] == [("d1-0", Status.UNREACHABLE)]
    assert all(e.line_state(i) == since[i] for i in old.lines if i != "d1-0")

    fresh = engine(new)
    fresh.observe(dead("d2", T0 + 10), T0 + 10)
    fresh.observe([line("d1-1", Outcome.OK, T0 + 20, snr_margin_down_db=3.0)], T0 + 20)
    fresh.tick(T0 + 30)
    for i in new.lines:
        assert e.line_state(i).status is fresh.line_state(i).status, i
    for now in (T0 + 200, T0 + 400):
        assert changes(e.tick(now)) == changes(fresh.tick(now))
    assert [(i.root, i.affected) for i in e.incidents()] == [(i.root, i.affected) for i in fresh.incidents()]


def test_moving_a_line_away_from_an_open_device_outage() -> None:
    """During a device outage, a reload moves one of its lines to a healthy device: it leaves
    the outage's count and is judged by its new device; the incident shrinks once it is good."""
    topo = topology({"x": {"d1": [0, 1, 2], "d2": [0, 1, 2]}})
    e = engine(topo)
    e.observe(dead("d1", T0 + 10), T0 + 10)
    assert changes(e.tick(T0 + 400)) == [("opened", "ARZ-2026-000001", "device:d1")]
    moved = replace(topo, lines={**topo.lines, "d1-2": replace(topo.lines["d1-2"], device="d2")})
    step = e.set_topology(moved, T0 + 410)
    assert [(s.node.id, s.status) for s in step.states] == [("d1-2", Status.OK)]
    e.tick(T0 + 410 + rules().stable + 1)
    (incident,) = e.incidents()
    assert incident.root == NodeRef("device", "d1") and incident.affected == {"d1-0", "d1-1"}


def test_a_reload_removing_and_adding_devices_and_lines() -> None:
    """A device and its lines go (their incident closes), another comes with new lines; the
    totals follow: two lines down of a device that grew from two lines to three are no longer
    enough to make it the root, as for an engine that had the new topology from the start."""
    config = rules(min_count=2, min_fraction=0.7)
    old = topology({"x": {"d1": [0, 1], "d2": [0, 1]}})
    e = engine(old, config)
    e.observe(dead("d1", T0 + 10), T0 + 10)
    assert changes(e.tick(T0 + 400)) == [("opened", "ARZ-2026-000001", "device:d1")]
    new = topology({"x": {"d2": [0, 1, 2], "d3": [0, 1, 2]}})
    step = e.set_topology(new, T0 + 410)
    assert changes(step) == [("closed_removed", "ARZ-2026-000001", "device:d1")]
    assert e.node_state(NodeRef("device", "d1")).status is Status.UNKNOWN
    fresh = engine(new, config)
    for x in (e, fresh):
        x.observe([line(i, at=T0 + 415) for i in new.lines if i not in old.lines], T0 + 415)
        x.observe([line(f"d2-{n}", Outcome.NOT_FOUND, T0 + 420) for n in (0, 1)], T0 + 420)
    roots = {root for _, _, root in changes(e.tick(T0 + 900))}
    assert roots == {root for _, _, root in changes(fresh.tick(T0 + 900))} == {"line:d2-0", "line:d2-1"}


def test_a_reload_off_a_stale_reshape_works_it_out_again() -> None:
    """A reshape worked out against another inventory (the rules changed and rebuilt the
    engine meanwhile) is not trusted: the engine compares against its own."""
    old = topology({"x": {"d1": [0, 1], "d2": [0, 1]}})
    new = topology({"x": {"d1": [0], "d2": [0, 1]}})
    e = engine(old)
    e.observe([line("d1-1", Outcome.NOT_FOUND, T0 + 10)], T0 + 10)
    stale = e.reshape(new)
    rebuilt = Engine.restore(old, RULES, "ARZ", json.loads(json.dumps(e.snapshot())))
    rebuilt.set_topology(stale, T0 + 20)
    assert rebuilt.line_state("d1-1").status is Status.UNKNOWN
    assert rebuilt.changes().targets["line:d1-1"] is None
