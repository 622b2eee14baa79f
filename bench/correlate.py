"""How long the rules engine takes when half the network fails at once.

100,000 lines on 2,000 DSLAMs (50 lines each, 10 per street cabinet, 10 cabinets per exchange,
20 exchanges in 4 regions). After one healthy poll, 10 exchanges fail together: in 5 the uplink
is cut (every DSLAM times out, 25,000 lines unreachable), in 5 the DSLAMs answer but every line
row is gone (25,000 lines down). Measured, in CPU seconds (time.process_time):

- observe: judging the failing poll (all 2,000 device samples and 75,000 line samples);
- correlate: the tick after the settle window, when 50,000 settled faults become 10 incidents.

Memory: tracemalloc peak over the failing cycle (a separate run, since tracing slows Python
down) and the process's peak RSS. Goal: under 1 s of CPU for the cycle.

    .venv/bin/python bench/correlate.py
"""

from __future__ import annotations

import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitord.model import Device, Exchange, Line, NodeRef, Outcome, Region, Sample, Topology  # noqa: E402
from rules.config import parse_rules  # noqa: E402
from rules.engine import Engine, Step  # noqa: E402

REGIONS, EXCHANGES, CABINETS, DSLAMS, PORTS = 4, 20, 10, 10, 50
T0 = 1_800_000_000.0
HEALTHY = {"snr_margin_down_db": 12.0, "snr_margin_up_db": 11.0, "attenuation_down_db": 30.0, "resyncs_per_s": 0.0}


def topology() -> Topology:
    regions = {f"r{r}": Region(f"r{r}", f"Region {r}") for r in range(REGIONS)}
    exchanges = {f"x{x}": Exchange(f"x{x}", f"Exchange {x}", f"r{x % REGIONS}") for x in range(EXCHANGES)}
    devices: dict[str, Device] = {}
    lines: dict[str, Line] = {}
    for x in range(EXCHANGES):
        for c in range(CABINETS):
            for d in range(DSLAMS):
                device = f"x{x}-c{c}-d{d}"
                devices[device] = Device(device, "dslam", f"x{x}", "127.0.0.1", None, ("adsl",), cabinet=f"x{x}-c{c}")
                for p in range(PORTS):
                    lines[f"{device}-p{p}"] = Line(f"{device}-p{p}", "subscriber", device, port=p)
    return Topology(regions, exchanges, devices, lines)


def poll(topo: Topology, at: float, cut: set[str], gone: set[str]) -> list[Sample]:
    """One poll of every DSLAM: exchanges in `cut` time out, in `gone` have no line rows."""
    samples = []
    for device in topo.devices.values():
        node = NodeRef("device", device.id)
        if device.exchange in cut:
            samples.append(Sample(node, "snmp:adsl", at, Outcome.TIMEOUT))
            samples.append(Sample(node, "icmp", at, Outcome.TIMEOUT))
            continue
        samples.append(Sample(node, "snmp:adsl", at, Outcome.OK, {"uptime_s": 86400.0}))
        samples.append(Sample(node, "icmp", at, Outcome.OK, {"rtt_ms": 2.0, "loss": 0.0}))
    for line in topo.lines.values():
        exchange = topo.devices[line.device].exchange
        if exchange in cut:
            continue
        outcome = Outcome.NOT_FOUND if exchange in gone else Outcome.OK
        values = {} if exchange in gone else HEALTHY
        samples.append(Sample(NodeRef("line", line.id), "snmp:adsl", at, outcome, values))
    return samples


def cpu(call: Callable[[], Step]) -> tuple[float, Step]:
    start = time.process_time()
    step = call()
    return time.process_time() - start, step


def main() -> None:
    topo = topology()
    rules = parse_rules(None)
    cut, gone = {f"x{x}" for x in range(0, 5)}, {f"x{x}" for x in range(5, 10)}
    healthy, failing = poll(topo, T0, set(), set()), poll(topo, T0 + 60, cut, gone)
    settle = T0 + 60 + rules.settle

    engine = Engine(topo, rules, "ARZ")
    warm, _ = cpu(lambda: engine.observe(healthy, T0))
    observe, step = cpu(lambda: engine.observe(failing, T0 + 60))
    correlate, result = cpu(lambda: engine.tick(settle))
    opened = [c for c in result.incidents if c.change == "opened"]
    affected = sum(len(c.incident.affected) for c in opened)

    engine = Engine(topo, rules, "ARZ")
    engine.observe(healthy, T0)
    tracemalloc.start()
    engine.observe(failing, T0 + 60)
    engine.tick(settle)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"lines {len(topo.lines)}, devices {len(topo.devices)}, failing lines {affected}")
    print(f"healthy first poll (not the goal): {warm:.3f} s CPU")
    print(f"failing poll, observe: {observe:.3f} s CPU, {len(step.states)} state changes, {len(step.recheck)} rechecks")
    print(
        f"settle tick, correlate: {correlate:.3f} s CPU, {len(opened)} incidents opened at "
        f"{sorted({str(c.incident.root) for c in opened})[:3]}..."
    )
    print(f"failing cycle total: {observe + correlate:.3f} s CPU (goal < 1 s)")
    print(f"tracemalloc peak during the failing cycle: {peak / 2**20:.1f} MiB; peak RSS: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
