"""Cable upstream segments as a topology level between the CMTS and its modems (docs/decisions.md):
a segment's modems failing are one incident at the segment, and a noisy upstream channel (the
segment's own line on the CMTS) makes its degraded modems one incident there too (the engine fed
samples, no clock); and the inventory's `segment` column, checked as the config loader checks
the others."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from monitord.config import load_config
from monitord.model import Device, Exchange, IncidentKind, Line, NodeRef, Outcome, Region, Sample, Status, Topology
from rules.engine import Engine
from rules.nodes import Inventory, Level, NodeKey
from tests.rules_fixtures import T0, changes, engine, rules
from tests.test_config import BASE, ENV, line_of, problems_of, write

MODEMS = 6  # per segment


def cable_plant() -> Topology:
    """A CMTS with two upstream segments (fn-1, fn-2), each with its upstream channel line (a port
    on the CMTS, no MAC) and six modems, and two modems on no segment; a DSLAM beside it."""
    devices = {
        "c1": Device("c1", "cmts", "x", "127.0.0.1", None, ("docsis-cmts", "docsis-upstream")),
        "d1": Device("d1", "dslam", "x", "127.0.0.2", None, ("adsl",)),
    }
    lines = [Line(f"d1-{n}", f"DSL {n}", "d1", port=n) for n in range(6)]
    for segment in (1, 2):
        lines.append(Line(f"us-{segment}", f"Upstream {segment}", "c1", port=1000 + segment, segment=f"fn-{segment}"))
        for n in range(MODEMS):
            mac = f"00:1d:cf:00:0{segment}:{n:02x}"
            lines.append(Line(f"m{segment}-{n}", f"Modem {segment}-{n}", "c1", mac=mac, segment=f"fn-{segment}"))
    lines += [Line(f"m0-{n}", f"Modem 0-{n}", "c1", mac=f"00:1d:cf:00:00:{n:02x}") for n in range(2)]
    return Topology({"r": Region("r", "Region")}, {"x": Exchange("x", "X", "r")}, devices, {ln.id: ln for ln in lines})


def modem(line_id: str, at: float, cm_status: float = 8.0, snr: float = 32.0) -> Sample:
    return Sample(NodeRef("line", line_id), "snmp:docsis-cmts", at, Outcome.OK, {"cm_status": cm_status, "us_snr_db": snr})


def channel(line_id: str, at: float, snr: float) -> Sample:
    values = {"us_snr_db": snr, "oper_up": 1.0, "in_use": 1.0}
    return Sample(NodeRef("line", line_id), "snmp:docsis-upstream", at, Outcome.OK, values)


def status(e: Engine, node: str) -> Status:
    level, _, ident = node.partition(":")
    return e.node_state(NodeRef(level, ident)).status  # type: ignore[arg-type]


def test_a_segment_sits_between_its_cmts_and_its_lines() -> None:
    topo = cable_plant()
    assert topo.ancestors(NodeRef("line", "m1-0")) == (
        NodeRef("segment", "fn-1"),
        NodeRef("device", "c1"),
        NodeRef("exchange", "x"),
        NodeRef("region", "r"),
    )
    assert topo.ancestors(NodeRef("segment", "fn-2"))[0] == NodeRef("device", "c1")
    assert topo.ancestors(NodeRef("line", "m0-1"))[0] == NodeRef("device", "c1")
    inventory = Inventory.of(topo)
    segment = NodeKey(Level.SEGMENT, "fn-1")
    assert inventory.total[segment] == MODEMS + 1
    assert inventory.total[NodeKey(Level.DEVICE, "c1")] == 2 * (MODEMS + 1) + 2
    assert inventory.channels == {
        segment: (NodeKey(Level.LINE, "us-1"),),
        NodeKey(Level.SEGMENT, "fn-2"): (NodeKey(Level.LINE, "us-2"),),
    }


def test_a_segments_modems_failing_are_one_incident_at_the_segment() -> None:
    """Five of fn-1's seven lines go offline: one outage at segment:fn-1 listing them, not five,
    and not the CMTS's (5 of its 14 lines); fn-2's modems and the CMTS's others untouched."""
    e = engine(cable_plant())
    offline = [f"m1-{n}" for n in range(5)]
    e.observe([modem(line_id, T0 + 60, cm_status=2.0) for line_id in offline], T0 + 60)
    opened = e.tick(T0 + 130)
    assert [(change, root) for change, _, root in changes(opened)] == [("opened", "segment:fn-1")]
    (incident,) = e.incidents()
    assert incident.kind is IncidentKind.OUTAGE and incident.affected == frozenset(offline)
    assert status(e, "segment:fn-1") is Status.DOWN
    assert status(e, "device:c1") is Status.OK and status(e, "segment:fn-2") is Status.OK
    assert all(status(e, f"line:m2-{n}") is Status.OK for n in range(MODEMS))


def test_a_noisy_upstream_is_one_degradation_at_its_segment() -> None:
    """The channel's SNR falls below 25 dB and two of its modems' upstream SNR with it: three
    failing lines are too few for a segment by count, but the channel's own fault is the
    segment's, so it is one incident at segment:fn-1 with the channel and those two modems."""
    e = engine(cable_plant())
    noisy = ["m1-0", "m1-1"]
    for at in (T0 + 60, T0 + 120, T0 + 180):
        e.observe([channel("us-1", at, 18.0), *(modem(m, at, snr=19.0) for m in noisy), channel("us-2", at, 31.0)], at)
    e.tick(T0 + 200)
    step = e.tick(T0 + 260)
    assert [(change, root) for change, _, root in changes(step)] == [("opened", "segment:fn-1")]
    (incident,) = e.incidents()
    assert incident.kind is IncidentKind.DEGRADATION
    assert incident.affected == frozenset({"us-1", *noisy})
    assert status(e, "segment:fn-2") is Status.OK and status(e, "line:us-2") is Status.OK


def test_a_lone_degraded_modem_stays_its_own_incident() -> None:
    """A segment is no incident for one modem of its seven while its channel is clean."""
    e = engine(cable_plant())
    for at in (T0 + 60, T0 + 120, T0 + 180):
        e.observe([channel("us-1", at, 31.0), modem("m1-3", at, snr=19.0)], at)
    e.tick(T0 + 200)
    step = e.tick(T0 + 260)
    assert [(change, root) for change, _, root in changes(step)] == [("opened", "line:m1-3")]


def test_a_reload_that_adds_segments_promotes_the_modems_incidents() -> None:
    """Five modems down on a CMTS without segments are five line incidents (5 of its 14 lines);
    the inventory then says they share fn-1: one incident at the segment, the five merged into it."""
    topo = cable_plant()
    flat = replace(topo, lines={key: replace(ln, segment=None) for key, ln in topo.lines.items()})
    e = engine(flat)
    offline = [f"m1-{n}" for n in range(5)]
    e.observe([modem(line_id, T0 + 60, cm_status=2.0) for line_id in offline], T0 + 60)
    assert [root for _, _, root in changes(e.tick(T0 + 130))] == [f"line:{line_id}" for line_id in offline]
    step = e.set_topology(topo, T0 + 140)
    assert [(change, root) for change, _, root in changes(step)][-1] == ("promoted", "segment:fn-1")
    assert [(str(i.root), i.affected) for i in e.incidents()] == [("segment:fn-1", frozenset(offline))]


def test_snapshot_restore_with_segments_gives_identical_output() -> None:
    """fn-2's modems go offline and fn-1's upstream gets noisy, then both recover: the same
    incident changes whether or not the engine is restored from its snapshot on the way."""
    topo = cable_plant()
    events = []
    for k in range(12):
        at = T0 + 60 * (k + 1)
        noisy = 2 <= k < 8
        samples = [
            channel("us-1", at, 18.0 if noisy else 31.0),
            *(modem(f"m1-{n}", at, snr=19.0 if noisy else 32.0) for n in range(2)),
        ]
        samples += [modem(f"m2-{n}", at, cm_status=2.0 if 3 <= k < 9 else 8.0) for n in range(MODEMS)]
        events.append((at, samples))

    def run(e: Engine, part: list[tuple[float, list[Sample]]]) -> list[list[tuple[str, str, str]]]:
        return [changes(e.observe(samples, at)) + changes(e.tick(at)) for at, samples in part]

    straight = run(engine(topo), events)
    assert [(c, root) for step in straight for c, _, root in step] == [
        ("opened", "segment:fn-2"),
        ("opened", "segment:fn-1"),
        ("recovering", "segment:fn-1"),
        ("recovering", "segment:fn-2"),
    ]
    for cut in (3, 5, 8):
        first = engine(topo)
        before = run(first, events[:cut])
        resumed = Engine.restore(topo, rules(), "ARZ", json.loads(json.dumps(first.snapshot())))
        assert before + run(resumed, events[cut:]) == straight, cut


SEGMENT_CSV = """\
id,name,phone,email,language,device,port,mac,modem,segment
100001,Ayşe Yılmaz,0532 123 45 67,ayse@example.com,tr,dslam-1,1,,,
100002,John Smith,+44 7911 123456,,en,olt-1,7,,,
100003,Ali Çelik,5441234567,,tr,cmts-1,,00:1A:2B:3C:4D:5E,127.0.11.1,fn-1
100004,Upstream 1,,,tr,cmts-1,721433,,,fn-1
"""
SECOND_CMTS = """            - id: cmts-2
              kind: cmts
              address: 127.0.10.9
            - id: rtr-1
"""


def test_the_segment_column_places_modems_and_their_upstream_channel(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE.replace("scope: [exchange:sisli,", "scope: [segment:fn-1,"), SEGMENT_CSV), ENV)
    lines = config.topology.lines
    assert (lines["100003"].segment, lines["100004"].segment, lines["100001"].segment) == ("fn-1", "fn-1", None)
    assert lines["100004"].port == 721433 and lines["100004"].mac is None  # an upstream channel: no MAC needed
    assert config.topology.ancestors(NodeRef("line", "100003"))[:2] == (NodeRef("segment", "fn-1"), NodeRef("device", "cmts-1"))
    assert Inventory.of(config.topology).channels == {NodeKey(Level.SEGMENT, "fn-1"): (NodeKey(Level.LINE, "100004"),)}
    assert config.maintenance[0].scope[0] == NodeRef("segment", "fn-1")


@pytest.mark.parametrize(
    ("old", "new", "config", "fragment"),
    [
        (
            "dslam-1,1,,,",
            "dslam-1,1,,,fn-1",
            BASE,
            "segment 'fn-1' on dslam 'dslam-1' (hint: only lines on a cmts are on an upstream segment)",
        ),
        ("127.0.11.1,fn-1", "127.0.11.1,fn 1", BASE, "'fn 1' is not a valid id"),
        (
            "tr,cmts-1,721433",
            "tr,cmts-2,721433",
            BASE.replace("            - id: rtr-1\n", SECOND_CMTS),
            "segment 'fn-1' is on cmts 'cmts-1', not 'cmts-2' (hint: first given at",
        ),
    ],
    ids=["not on a cmts", "bad id", "on two cmtses"],
)
def test_a_bad_segment_is_named_with_its_file_and_line(tmp_path: Path, old: str, new: str, config: str, fragment: str) -> None:
    edited = SEGMENT_CSV.replace(old, new)
    [problem] = problems_of(write(tmp_path, config, edited))
    assert (problem.file, problem.line, problem.key) == (str(tmp_path / "subs.csv"), line_of(edited, new), "segment")
    assert fragment in str(problem)


def test_a_maintenance_scope_names_a_known_segment(tmp_path: Path) -> None:
    edited = BASE.replace("scope: [exchange:sisli,", "scope: [segment:fn-9,")
    [problem] = problems_of(write(tmp_path, edited, SEGMENT_CSV))
    assert (problem.line, problem.key) == (line_of(edited, "segment:fn-9"), "maintenance[0].scope[0]")
    assert "unknown segment 'fn-9'" in str(problem)
