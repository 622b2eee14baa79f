"""What the engine keeps per line, measured: a healthy line's state stays small, and a step that
changed every line is written without holding every record at once (issue 11 item 5: 100,000
lines under 300 MB). Sizes are tracemalloc's, so they do not depend on the machine's load."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from monitord.model import NodeRef, Outcome, Sample, Topology
from monitord.store import Store
from rules.checks import Flap, Threshold
from rules.engine import Engine
from rules.snapshot import Rows
from tests.rules_fixtures import T0, rules, topology

DEVICES, PORTS = 40, 48  # 1,920 lines
PER_LINE = (
    420  # bytes of engine state a healthy line fed by adsl, if-mib and ICMP (351 now; 901 with two dicts a line, 1,355 before)
)
WRITE_PEAK = 400  # bytes per row at the peak of writing every target's row (122 now; 1,494 with every record held)


def layout() -> Topology:
    return topology({f"x{e}": {f"x{e}-d{d}": list(range(PORTS)) for d in range(DEVICES // 4)} for e in range(4)})


def polls(topo: Topology, at: float) -> list[list[Sample]]:
    """One poll of every device by each of its probes, with a healthy line's values."""
    values = {
        "snmp:adsl": {"snr_margin_down_db": 12.3, "snr_margin_up_db": 11.0, "attenuation_down_db": 31.5, "oper_up": 1.0},
        "snmp:if-mib": {"oper_up": 1.0, "in_errors_per_s": 0.0},
        "icmp": {"rtt_ms": 7.5, "loss": 0.0},
    }
    batches = []
    for probe, good in values.items():
        for device in topo.devices:
            lines = [line for line in topo.lines.values() if line.device == device]
            batch = [Sample(NodeRef("device", device), probe, at, Outcome.OK, {"rtt_ms": 1.0, "loss": 0.0})]
            batch += [Sample(NodeRef("line", line.id), probe, at, Outcome.OK, dict(good)) for line in lines]
            batches.append(batch)
    return batches


def traced(build: Callable[[], object]) -> tuple[object, int, int]:
    """What `build` returns, the bytes it still holds and the peak on the way."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        gc.collect()
        now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return kept, now - before, peak - before


def test_a_healthy_lines_state_stays_small() -> None:
    topo, config = layout(), rules()
    batches = [polls(topo, T0 + 60 * minute) for minute in range(2)]

    def run() -> Engine:
        engine = Engine(topo, config, "ARZ")
        for minute in batches:
            for batch in minute:
                engine.observe(batch, batch[0].at)
                engine.written()
        return engine

    engine, kept, _ = traced(run)
    per_line = kept / len(topo.lines)
    assert per_line < PER_LINE, f"{per_line:.0f} bytes of engine state per healthy line"
    assert not any(hasattr(t, "__dict__") for t in engine._s.targets.values()), "targets are slotted"
    restored = Engine.restore(topo, config, "ARZ", engine.snapshot())
    for kept in (engine, restored):
        targets = kept._s.targets.values()
        states = {(type(kept._s.judge.checks[name]), id(state)) for t in targets for name, state in t.checks.items()}
        assert len({i for kind, i in states if kind is Flap}) == 1, "every line that never flapped shares one flap state"
        assert len({i for kind, i in states if kind is Threshold}) == 1, "and one clear threshold state"
        lines = [t for t in targets if t.key.level == "line"]
        assert len({id(t.checks) for t in lines}) == 1, "healthy lines share one mapping of check states"
        assert len({id(t.verdicts) for t in lines}) == 1, "and one of verdicts"
        inventory = kept._s.inventory
        assert all(
            kept._s.targets[key].key is key for keys in inventory.lines_of.values() for key in keys
        ), "a target is keyed by the inventory's own key"
    assert restored.snapshot() == engine.snapshot()


def test_a_step_that_changed_every_line_is_written_one_record_at_a_time(tmp_path: Path) -> None:
    topo = layout()
    engine = Engine(topo, rules(), "ARZ")
    for batch in polls(topo, T0):
        engine.observe(batch, T0)
    store = Store.open(tmp_path / "state.db")
    try:
        count = len(engine.changes().targets)
        assert count == len(topo.lines) + len(topo.devices)

        def write() -> Rows:
            rows = engine.changes()
            store.commit_step(rows, (), (), T0)
            return rows

        rows, _, peak = traced(write)
        assert isinstance(rows, Rows)
        assert peak < WRITE_PEAK * count, f"writing the rows peaked at {peak / count:.0f} bytes per row"
        saved = store.load_engine()
        assert saved is not None and len(saved.snapshot["targets"]) == len(rows.targets)
        record = rows.targets["line:x0-d0-0"]
        assert record is not None and record["status"] == "ok"
        saved_record = {t["key"]: t for t in saved.snapshot["targets"]}["line:x0-d0-0"]
        assert saved_record == {**{k: v for k, v in record.items() if k != "wake"}, "incident": None}  # in no incident
    finally:
        store.close()


def test_the_check_states_of_lines_in_an_outage_cost_the_gc_nothing() -> None:
    """A line whose modem went silent holds check states of its own (its flap state has the
    time of the change), so 100,000 of them in an outage cannot be shared. They are tuples of
    numbers, which the GC stops tracking, and then so does each line's mapping of them, as it
    does the times each line is to wake at for its holds: its full passes, which hold the event
    loop, do not walk them (bench/stall_trace.py)."""
    topo = layout()
    engine = Engine(topo, rules(), "ARZ")
    for batch in polls(topo, T0):
        engine.observe(batch, T0)
    silent = [Sample(NodeRef("line", line), "icmp", T0 + 30, Outcome.TIMEOUT, {"loss": 1.0}) for line in topo.lines]
    engine.observe(silent, T0 + 30)
    gc.collect()
    lines = [t for t in engine._s.targets.values() if t.key.level == "line"]
    assert len({id(t.checks) for t in lines}) == len(lines), "each silent line has check states of its own"
    assert not any(gc.is_tracked(state) for t in lines for state in t.checks.values())
    assert not any(gc.is_tracked(t.checks) for t in lines), "nor are their mappings tracked"
    assert engine._s.timers._whens, "the silent lines wait for their checks' holds"
    assert not any(gc.is_tracked(whens) for whens in engine._s.timers._whens.values()), "nor are the times they wake at"
