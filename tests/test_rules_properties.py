"""Hypothesis properties over random topologies and sample streams."""

from __future__ import annotations

import json
import random
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitord.config.rules import parse_rules
from monitord.model import Device, Exchange, Line, NodeRef, Outcome, Phase, Region, Sample, Status, Topology
from rules.engine import Engine, Step
from tests.depth import examples

T0 = 1_790_000_000.0
RULES = replace(
    parse_rules({"settle": 60, "stable": 120, "reopen_window": 300}),
    correlation=replace(
        parse_rules(None).correlation, window=120, min_count=2, min_fraction=0.5, close_count=1, close_fraction=0.25
    ),
)
# A silent modem on a line in sync (CPE) is its own kind and counts as an outage above it.
FAILING = {"outage": (Status.DOWN, Status.UNREACHABLE, Status.CPE), "degradation": (Status.DEGRADED,), "cpe": (Status.CPE,)}
# A line's own incident changes severity instead of ending (a flapping line is one incident):
# an outage holds while the line is down, silent or degraded, a degradation while degraded or down.
OWN = {"outage": FAILING["outage"] + FAILING["degradation"], "degradation": (Status.DOWN, Status.DEGRADED)}
OUTCOMES = [Outcome.OK] * 4 + [Outcome.TIMEOUT, Outcome.NOT_FOUND, Outcome.AUTH_FAILURE, Outcome.UNREACHABLE]


@st.composite
def topologies(draw: st.DrawFn) -> Topology:
    exchanges, devices, lines = {}, {}, {}
    for x in range(draw(st.integers(1, 2))):
        exchanges[f"x{x}"] = Exchange(f"x{x}", f"X{x}", "r")
        for d in range(draw(st.integers(1, 3))):
            cabinet = draw(st.sampled_from([None, f"k{x}"]))
            name = f"x{x}d{d}"
            devices[name] = Device(name, "dslam", f"x{x}", "127.0.0.1", None, ("adsl",), cabinet=cabinet)
            for n in range(draw(st.integers(0, 4))):
                lines[f"{name}-{n}"] = Line(f"{name}-{n}", "s", name)
    return Topology({"r": Region("r", "R")}, exchanges, devices, lines)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Topology, list[tuple[float, list[Sample]]], int, int]:
    topo = draw(topologies())
    targets = [NodeRef("device", d) for d in topo.devices] + [NodeRef("line", i) for i in topo.lines]
    now, events = T0, []
    for _ in range(draw(st.integers(1, 25))):
        now += draw(st.sampled_from([0, 20, 45, 60, 90, 150]))
        batch = []
        for _ in range(draw(st.integers(0, 6))):
            target = draw(st.sampled_from(targets))
            outcome = draw(st.sampled_from(OUTCOMES))
            probe = draw(st.sampled_from(["snmp:adsl", "icmp"]))
            values = {"snr_margin_down_db": draw(st.sampled_from([3.0, 12.0]))} if outcome is Outcome.OK else {}
            batch.append(Sample(target, probe, now - draw(st.sampled_from([0, 5])), outcome, values))
        events.append((now, batch))
    return topo, events, draw(st.integers(0, len(events))), draw(st.integers(0, 2**32))


def run(engine: Engine, events: list[tuple[float, list[Sample]]], check=None) -> list[Step]:
    steps = []
    for now, batch in events:
        step = engine.observe(batch, now) if batch else engine.tick(now)
        if check:
            check(engine, step, now)
        steps.append(step)
    return steps


class Invariants:
    """Checks the engine against an independent reading of the states it reported."""

    def __init__(self, topo: Topology) -> None:
        self.topo = topo
        self.status: dict[str, Status] = {}
        self.ended: dict[tuple[str, str], float] = {}  # (line, kind) -> when that fault last ended

    def under(self, line: str, root: NodeRef) -> bool:
        chain = self.topo.ancestors(NodeRef("line", line))
        return root in chain

    def kinds(self, line: str) -> set[str]:
        status = self.status.get(line)
        return {k for k, statuses in FAILING.items() if status in statuses}

    def __call__(self, engine: Engine, step: Step, now: float) -> None:
        for state in step.states:
            if state.node.level == "line":
                before = self.kinds(state.node.id)
                self.status[state.node.id] = state.status
                for ended in before - self.kinds(state.node.id):
                    self.ended[(state.node.id, ended)] = now
        incidents = engine.incidents()
        seen: set[str] = set()
        c = RULES.correlation
        for incident in incidents:
            assert not incident.affected & seen, "a line in two open incidents"
            seen |= incident.affected
            kind = incident.kind.value
            if incident.root.level == "line" and kind in OWN:
                failing = [i for i in incident.affected if self.status.get(i) in OWN[kind]]
            else:
                failing = [i for i in incident.affected if kind in self.kinds(i)]
            devices = [
                d
                for d in self.topo.devices
                if incident.root in (NodeRef("device", d), *self.topo.ancestors(NodeRef("device", d)))
            ]
            device_down = any(engine.node_state(NodeRef("device", d)).status in FAILING[kind] for d in devices)
            root_down = incident.root.level == "device" and engine.node_state(incident.root).status in FAILING[kind]
            if incident.phase in (Phase.OPEN, Phase.UPDATED):
                assert failing or device_down, f"{incident.tracking} is open without current evidence"
                if incident.root.level != "line" and not root_down:
                    lines = [i for i in self.topo.lines if self.under(i, incident.root)]
                    count = sum(1 for i in lines if kind in self.kinds(i) or self.ended.get((i, kind), -1e18) + c.window > now)
                    assert count >= c.close_count and count >= c.close_fraction * len(
                        lines
                    ), f"{incident.tracking} at {incident.root} below its thresholds: {count}/{len(lines)}"
            else:
                assert incident.phase is Phase.RECOVERING and not failing and not root_down


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_invariants_order_replay_and_restart(scenario) -> None:
    topo, events, cut, seed = scenario
    straight = run(Engine(topo, RULES, "ARZ"), events, Invariants(topo))

    shuffled = [(now, random.Random(seed + i).sample(batch, len(batch))) for i, (now, batch) in enumerate(events)]
    assert run(Engine(topo, RULES, "ARZ"), shuffled) == straight, "the order of samples in a batch mattered"
    assert run(Engine(topo, RULES, "ARZ"), events) == straight, "a replay differed"

    first = Engine(topo, RULES, "ARZ")
    before = run(first, events[:cut])
    resumed = Engine.restore(topo, RULES, "ARZ", json.loads(json.dumps(first.snapshot())))
    assert before + run(resumed, events[cut:]) == straight, "a restart changed the output"


@settings(max_examples=examples(100), deadline=None)
@given(scenarios())
def test_quiet_afterwards_everything_resolves(scenario) -> None:
    """Once every probe says all is well and time passes, no incident is left open."""
    topo, events, _, _ = scenario
    engine = Engine(topo, RULES, "ARZ")
    run(engine, events)
    end = events[-1][0] + 60
    targets = [NodeRef("device", d) for d in topo.devices] + [NodeRef("line", i) for i in topo.lines]
    good = [Sample(t, p, end, Outcome.OK, {"snr_margin_down_db": 12.0}) for t in targets for p in ("snmp:adsl", "icmp")]
    engine.observe(good, end)
    engine.tick(end + 3600)  # flap scores decay; what clears now must still be verified stable
    engine.tick(end + 3600 + RULES.stable)
    assert engine.incidents() == []
    assert all(engine.line_state(i).status is Status.OK for i in topo.lines)
