"""How long the rules engine takes when half the network fails at once.

100,000 lines on 2,000 DSLAMs (50 lines each, 10 per street cabinet, 10 cabinets per exchange,
20 exchanges in 4 regions). After one healthy poll, 10 exchanges fail together: in 5 the uplink
is cut (every DSLAM times out, 25,000 lines unreachable), in 5 the DSLAMs answer but every line
row is gone (25,000 lines down). Measured, in CPU seconds (time.process_time):

- ingest: `observe` of the failing poll (4,000 device samples and 75,000 line samples);
- correlate: the `tick` after the settle window, when 50,000 settled faults become incidents;
- the whole cycle, ingest + correlate. Goal: under 1 s.

Like the daemon, the benchmark calls `gc.freeze()` once the engine's state is loaded, so the
collector does not rescan it. Memory: tracemalloc peak over the failing cycle (a separate run,
since tracing slows Python down) and the process's peak RSS.

    .venv/bin/python bench/correlate.py
"""

from __future__ import annotations

import gc
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitord.config.rules import parse_rules
from monitord.model import Device, Exchange, Line, NodeRef, Outcome, Region, Sample, Topology
from rules.engine import Engine, Step

REGIONS, EXCHANGES, CABINETS, DSLAMS, PORTS = 4, 20, 10, 10, 50
T0 = 1_800_000_000.0
GOAL = 1.0  # s of CPU for the failing cycle (ingest + correlate)
SETTLE = parse_rules(None).settle
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


def loaded(topo: Topology, healthy: list[Sample]) -> Engine:
    """An engine that has seen one good poll: the state a running daemon holds."""
    engine = Engine(topo, parse_rules(None), "ARZ")
    engine.observe(healthy, T0)
    return engine


def timed(topo: Topology, healthy: list[Sample], failing: list[Sample]) -> tuple[float, float, Step]:
    """CPU seconds of ingesting the failing poll and of the tick after settle."""
    engine = loaded(topo, healthy)
    gc.freeze()
    ingest, _ = cpu(lambda: engine.observe(failing, T0 + 60))
    correlate, step = cpu(lambda: engine.tick(T0 + 60 + SETTLE))
    gc.unfreeze()
    return ingest, correlate, step


def traced(topo: Topology, healthy: list[Sample], failing: list[Sample]) -> int:
    """Bytes allocated at the peak of the same cycle."""
    engine = loaded(topo, healthy)
    tracemalloc.start()
    engine.observe(failing, T0 + 60)
    engine.tick(T0 + 60 + SETTLE)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    topo = topology()
    cut, gone = {f"x{x}" for x in range(5)}, {f"x{x}" for x in range(5, 10)}
    healthy, failing = poll(topo, T0, set(), set()), poll(topo, T0 + 60, cut, gone)
    ingest, correlate, step = timed(topo, healthy, failing)
    peak = traced(topo, healthy, failing)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    opened = [c for c in step.incidents if c.change == "opened"]
    affected = sum(len(c.incident.affected) for c in opened)
    total = ingest + correlate
    print(f"lines {len(topo.lines)}, devices {len(topo.devices)}; failing poll: {len(failing)} samples")
    print("gc.freeze() once the engine's state is loaded, as the daemon does")
    print(f"ingest, observe(failing poll): {ingest:.3f} s CPU")
    print(f"correlate, tick after settle:  {correlate:.3f} s CPU")
    roots = ", ".join(sorted(str(c.incident.root) for c in opened))
    print(f"  {len(opened)} incidents opened with {affected} lines: {roots}")
    print(f"whole cycle:                   {total:.3f} s CPU")
    print(f"tracemalloc peak during the cycle: {peak / 2**20:.1f} MiB; process peak RSS: {rss:.0f} MiB")
    print(f"goal, under {GOAL:.0f} s of CPU for the cycle: {'met' if total < GOAL else 'NOT MET'}")


if __name__ == "__main__":
    main()
