"""A poller leaves out the samples that change nothing a line's rules see (rules/changes.py): the
correlator's engine, fed what is left, decides exactly what it decides fed every sample."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitord.config.rules import parse_rules
from monitord.model import Device, Exchange, Line, NodeRef, Outcome, Region, Sample, Topology
from rules.changes import Signer, Unchanged
from rules.engine import Engine, Step
from tests.depth import examples

T0 = 1_790_000_000.0
RULES = replace(
    parse_rules({"settle": 60, "stable": 120, "reopen_window": 300}),
    correlation=replace(
        parse_rules(None).correlation, window=120, min_count=2, min_fraction=0.5, close_count=1, close_fraction=0.25
    ),
)
# Each value on every side of the default levels: ICMP loss 0.2 (clear 0.05) and rtt 100 ms
# (clear 60), ADSL margin 6 dB (clear 8) and resyncs 2 per 15 minutes (clear 0.5)
LOSS, RTT, MARGIN, RESYNCS = (0.0, 0.1, 0.3), (10.0, 80.0, 150.0), (3.0, 7.0, 12.0), (0.0, 0.001, 0.01)
OUTCOMES = [Outcome.OK] * 6 + [Outcome.TIMEOUT, Outcome.NOT_FOUND, Outcome.UNREACHABLE]


def topology(devices: int, lines: int) -> Topology:
    exchange = Exchange("x", "X", "r")
    kit = {
        f"d{d}": Device(f"d{d}", "dslam", "x", "127.0.0.1", None, ("adsl",), cabinet="k" if d else None) for d in range(devices)
    }
    subscribers = {f"d{d}-{n}": Line(f"d{d}-{n}", "s", f"d{d}") for d in range(devices) for n in range(lines)}
    return Topology({"r": Region("r", "R")}, {"x": exchange}, kit, subscribers)


@st.composite
def line_sample(draw: st.DrawFn, line: str, at: float) -> Sample:
    probe = draw(st.sampled_from(["icmp", "snmp:adsl"]))
    outcome = draw(st.sampled_from(OUTCOMES))
    values: dict[str, float] = {}
    if outcome is Outcome.OK and probe == "icmp":
        values = {"loss": draw(st.sampled_from(LOSS)), "rtt_ms": draw(st.sampled_from(RTT))}
    elif outcome is Outcome.OK:
        values = {
            "snr_margin_down_db": draw(st.sampled_from(MARGIN)),
            "resyncs_per_s": draw(st.sampled_from(RESYNCS)),
            "oper_up": draw(st.sampled_from([1.0, 1.0, 1.0, 0.0])),
        }
    return Sample(NodeRef("line", line), probe, at, outcome, values)


@st.composite
def streams(draw: st.DrawFn) -> tuple[Topology, list[tuple[float, list[Sample]]]]:
    topo = topology(draw(st.integers(1, 2)), draw(st.integers(2, 5)))
    now, events = T0, []
    for _ in range(draw(st.integers(1, 40))):
        now += draw(st.sampled_from([0, 20, 45, 60, 90, 150, 400]))
        batch = []
        for i in range(draw(st.integers(0, 8))):
            at = now - 1 + i / 1000  # polls end in the order they are taken
            if draw(st.integers(0, 5)):
                batch.append(draw(line_sample(draw(st.sampled_from(sorted(topo.lines))), at)))
            else:
                outcome = draw(st.sampled_from(OUTCOMES))
                probe = draw(st.sampled_from(["icmp", "snmp:adsl"]))
                batch.append(Sample(NodeRef("device", draw(st.sampled_from(sorted(topo.devices)))), probe, at, outcome, {}))
        events.append((now, batch))
    return topo, events


def seen(step: Step) -> list[Any]:
    """What a step decided, with the figures in reasons left out: a threshold that fired by its
    timer names its first bad value, by a sample that sample's (the one documented difference)."""

    def words(reasons: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(re.sub(r"-?\d+(\.\d+)?(e-?\d+)?", "#", reason) for reason in reasons)

    states = sorted((str(s.node), s.status, s.since, words(s.reasons)) for s in step.states)
    incidents = [
        (c.change, c.incident.tracking, c.incident.kind, str(c.incident.root), c.incident.phase, sorted(c.incident.affected))
        for c in step.incidents
    ]
    return [states, incidents, sorted(step.recheck)]


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_the_engine_decides_the_same_on_the_changed_samples_alone(stream: tuple[Topology, list]) -> None:
    topo, events = stream
    every, changed = Engine(topo, RULES, "ARZ"), Engine(topo, RULES, "ARZ")
    unchanged = Unchanged(Signer(RULES), resend=3600)
    for now, batch in events:
        written = [s for s in batch if unchanged.new("x", s)]
        full = every.observe(batch, now) if batch else every.tick(now)
        thinned = changed.observe(written, now) if batch else changed.tick(now)
        assert seen(thinned) == seen(full)
    for line in topo.lines:
        assert every.line_state(line).status == changed.line_state(line).status


def test_a_healthy_line_is_written_once() -> None:
    unchanged = Unchanged(Signer(RULES), resend=3600)
    polls = [
        Sample(NodeRef("line", "d0-0"), "icmp", T0 + 30 * i, Outcome.OK, {"loss": 0.0, "rtt_ms": 5.0 + i}) for i in range(20)
    ]
    assert [unchanged.new("x", s) for s in polls] == [True] + [False] * 19


def test_what_is_always_written() -> None:
    """Devices (their down samples are counted) and drift rules' technologies; a reading the line
    quality roll-ups keep is not (the pollers roll up their own samples)."""
    unchanged = Unchanged(Signer(parse_rules(None)), resend=3600)
    device = Sample(NodeRef("device", "d0"), "icmp", T0, Outcome.TIMEOUT, {})
    rolled_up = Sample(NodeRef("line", "d0-0"), "snmp:adsl", T0, Outcome.OK, {"snr_margin_down_db": 12.0})
    drifting = Sample(NodeRef("line", "d0-1"), "snmp:vdsl2", T0, Outcome.OK, {"attenuation_down_db": 20.0})
    plain = Sample(NodeRef("line", "d0-2"), "snmp:adsl", T0, Outcome.OK, {"attenuation_down_db": 20.0})
    assert [unchanged.new("x", s) for s in (device, rolled_up, drifting, plain)] == [True] * 4
    again = (device, rolled_up._replace(values={"snr_margin_down_db": 12.5}), drifting, plain)
    assert [unchanged.new("x", s) for s in again] == [True, False, True, False]


def test_a_change_of_side_is_written() -> None:
    """Loss from 0 to 0.1 crosses no level (0.2, clear 0.05)... but it leaves the cleared side."""
    unchanged = Unchanged(Signer(RULES), resend=3600)
    loss = [0.0, 0.01, 0.1, 0.15, 0.3, 0.25, 0.1, 0.04, 0.0]
    polls = [Sample(NodeRef("line", "d0-0"), "icmp", T0 + i, Outcome.OK, {"loss": x, "rtt_ms": 5.0}) for i, x in enumerate(loss)]
    assert [unchanged.new("x", s) for s in polls] == [True, False, True, False, True, False, True, True, False]
    timeout = Sample(NodeRef("line", "d0-0"), "icmp", T0 + 10, Outcome.TIMEOUT, {})
    assert [unchanged.new("x", timeout), unchanged.new("x", timeout)] == [True, False]


def test_forgotten_shards_and_expired_memories_are_written_again() -> None:
    unchanged = Unchanged(Signer(RULES), resend=300)
    poll = Sample(NodeRef("line", "d0-0"), "icmp", T0, Outcome.OK, {"loss": 0.0, "rtt_ms": 5.0})
    other = Sample(NodeRef("line", "d1-0"), "icmp", T0, Outcome.OK, {"loss": 0.0, "rtt_ms": 5.0})
    assert [unchanged.new("a", poll), unchanged.new("b", other)] == [True, True]
    unchanged.forget("a")
    assert [unchanged.new("a", poll), unchanged.new("b", other)] == [True, False]
    unchanged.forget()
    assert [unchanged.new("a", poll), unchanged.new("b", other)] == [True, True]
    # every shard's memory lasts `resend` at most, each from a phase of its own
    written: dict[str, list[int]] = {"a": [], "b": []}
    for second in range(901):
        unchanged.expire(float(second))
        for shard, sample in (("a", poll), ("b", other)):
            if unchanged.new(shard, sample):
                written[shard].append(second)
    for times in written.values():
        assert len(times) == 3 and times[1] - times[0] == times[2] - times[1] == 300
    assert written["a"][0] != written["b"][0]


def test_forgotten_lines_are_written_again_whatever_their_probes_and_no_other_is() -> None:
    unchanged = Unchanged(Signer(RULES), resend=3600)
    echo = Sample(NodeRef("line", "d0-0"), "icmp", T0, Outcome.OK, {"loss": 0.0, "rtt_ms": 5.0})
    row = Sample(NodeRef("line", "d0-0"), "snmp:adsl", T0, Outcome.OK, {"attenuation_down_db": 20.0})
    neighbour = echo._replace(target=NodeRef("line", "d0-1"))
    assert [unchanged.new("a", s) for s in (echo, row, neighbour)] == [True, True, True]
    unchanged.forget_lines({"d0-0": "a", "d9-9": "a", "d8-8": "gone"})
    assert [unchanged.new("a", s) for s in (echo, row, neighbour)] == [True, True, False]
