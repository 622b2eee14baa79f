"""The line counts the engine keeps as statuses change (`Engine.line_counts`, rules/tally.py)
equal a full recount after every kind of step: samples, time passing, maintenance windows,
reloads that add, remove and move lines and devices, and restores from a snapshot or the
store's rows."""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitord.config.rules import parse_rules
from monitord.model import Device, Exchange, Line, MaintenanceWindow, NodeRef, Outcome, Region, Sample, Status, Topology
from rules.engine import Engine
from rules.tally import STATUSES
from tests.depth import examples

T0 = 1_790_000_000.0
RULES = parse_rules({"settle": 60, "stable": 120, "reopen_window": 300})
DEVICES = [f"d{n}" for n in range(4)]
LINES = [f"s{n}" for n in range(12)]
OUTCOMES = [Outcome.OK, Outcome.OK, Outcome.TIMEOUT, Outcome.UNREACHABLE]


@st.composite
def topologies(draw: st.DrawFn) -> Topology:
    """Some of the devices, each in one of two exchanges, and some of the lines on any of them."""
    devices = {
        d: Device(d, "dslam", draw(st.sampled_from(["x0", "x1"])), "127.0.0.1", None, ("adsl",))
        for d in draw(st.lists(st.sampled_from(DEVICES), min_size=1, unique=True))
    }
    lines = {i: Line(i, "s", draw(st.sampled_from(sorted(devices)))) for i in draw(st.lists(st.sampled_from(LINES), unique=True))}
    exchanges = {x: Exchange(x, x, "r") for x in ("x0", "x1")}
    return Topology({"r": Region("r", "R")}, exchanges, devices, lines)


def samples(draw: st.DrawFn, now: float) -> list[Sample]:
    batch = []
    for _ in range(draw(st.integers(1, 8))):
        level, ident = draw(st.sampled_from([("device", d) for d in DEVICES] + [("line", i) for i in LINES]))
        outcome = draw(st.sampled_from(OUTCOMES))
        probe = draw(st.sampled_from(["snmp:adsl", "icmp"]))
        values = {"snr_margin_down_db": draw(st.sampled_from([3.0, 12.0]))} if outcome is Outcome.OK and probe != "icmp" else {}
        batch.append(Sample(NodeRef(level, ident), probe, now, outcome, values))
    return batch


def recount(engine: Engine, topology: Topology) -> dict[str, tuple[int, ...]]:
    """Every line looked up one by one, as the metrics did before the engine kept counts."""
    counts: dict[str, Counter[Status]] = {device: Counter() for device in topology.devices}
    for line in topology.lines.values():
        counts[line.device][engine.line_state(line.id).status] += 1
    return {device: tuple(c[s] for s in STATUSES) for device, c in counts.items()}


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_kept_counts_equal_a_full_recount_after_every_step(data: st.DataObject) -> None:
    draw = data.draw
    topology = draw(topologies())
    engine, now = Engine(topology, RULES, "T"), T0
    assert engine.line_counts() == recount(engine, topology)
    for _ in range(draw(st.integers(1, 20))):
        now += draw(st.sampled_from([0, 20, 60, 150, 400]))
        action = draw(st.sampled_from(["observe", "observe", "observe", "tick", "maintenance", "reload", "restore", "rows"]))
        if action == "observe":
            engine.observe(samples(draw, now), now)
        elif action == "tick":
            engine.tick(now)
        elif action == "maintenance":
            scope = draw(st.lists(st.sampled_from([NodeRef("device", d) for d in DEVICES] + [NodeRef("exchange", "x1")])))
            start = now + draw(st.sampled_from([-100, 0, 30]))
            windows = [MaintenanceWindow("w", tuple(scope), start, start + 60, grace=30)] if scope else []
            engine.set_maintenance(windows, now)
        elif action == "reload":
            topology = draw(topologies())
            engine.set_topology(topology, now)
        elif action == "restore":  # a restart from the whole snapshot
            engine = Engine.restore(topology, RULES, "T", engine.snapshot())
        else:  # a restart from the store's rows
            engine = Engine.restore(topology, RULES, "T", engine.snapshot(), stored=True)
        assert engine.line_counts() == recount(engine, topology), action
