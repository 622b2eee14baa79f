"""Small topologies and sample makers for the rules tests."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from monitord.config.rules import parse_rules
from monitord.model import Device, Exchange, Line, NodeRef, Outcome, Region, Sample, Topology
from rules.config import RulesConfig
from rules.engine import Engine, Step

T0 = 1_790_000_000.0  # 2026-09-21, UTC


def topology(layout: dict[str, dict[str, list[int]]], cabinets: dict[str, str] | None = None) -> Topology:
    """{exchange: {device: [lines...]}} in one region "r"; lines are named <device>-<n>."""
    cabinets = cabinets or {}
    exchanges = {x: Exchange(x, x.title(), "r") for x in layout}
    devices = {
        d: Device(d, "dslam", x, "127.0.0.1", None, ("adsl",), cabinet=cabinets.get(d))
        for x, devs in layout.items()
        for d in devs
    }
    lines = {
        f"{d}-{n}": Line(f"{d}-{n}", f"Subscriber {d}-{n}", d)
        for devs in layout.values()
        for d, ports in devs.items()
        for n in ports
    }
    return Topology({"r": Region("r", "Region")}, exchanges, devices, lines)


def rules(**correlation: Any) -> RulesConfig:
    base = parse_rules(None)
    return replace(base, correlation=replace(base.correlation, **correlation)) if correlation else base


def line(line_id: str, outcome: Outcome = Outcome.OK, at: float = T0, probe: str = "snmp:adsl", **values: float) -> Sample:
    if outcome is Outcome.OK and not values:
        values = {"snr_margin_down_db": 12.0}
    return Sample(NodeRef("line", line_id), probe, at, outcome, values)


def device(device_id: str, outcome: Outcome = Outcome.OK, at: float = T0, probe: str = "snmp:adsl") -> Sample:
    return Sample(NodeRef("device", device_id), probe, at, outcome, {})


def dead(device_id: str, at: float = T0) -> list[Sample]:
    """A device silent to both SNMP and ICMP."""
    return [device(device_id, Outcome.TIMEOUT, at), device(device_id, Outcome.TIMEOUT, at, "icmp")]


def healthy(topo: Topology, at: float = T0) -> list[Sample]:
    """One good poll of everything."""
    return [device(d, at=at) for d in topo.devices] + [line(i, at=at) for i in topo.lines]


def changes(step: Step) -> list[tuple[str, str, str]]:
    """(change, tracking, root) of each incident change: compact for asserts."""
    return [(c.change, c.incident.tracking, str(c.incident.root)) for c in step.incidents]


def engine(topo: Topology, config: RulesConfig | None = None) -> Engine:
    e = Engine(topo, config or rules(), "ARZ")
    e.observe(healthy(topo), T0)
    return e


def canonical(snapshot: dict[str, Any]) -> dict[str, Any]:
    """An engine snapshot with its lists in a fixed order: restored from the store's rows, an
    engine meets its targets in key order, not in the order it first saw them (and the order of
    timers due at the same time does not matter)."""
    snapshot = json.loads(json.dumps(snapshot))
    return {
        **snapshot,
        "targets": sorted(snapshot["targets"], key=lambda t: t["key"]),
        "incidents": sorted(snapshot["incidents"], key=lambda i: i["tracking"]),
        "timers": sorted(snapshot["timers"]),
    }
