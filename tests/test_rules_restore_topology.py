"""The store's rows restored onto an edited inventory (the daemon restarted after lines or
devices were removed, added or moved): the lines gone leave their incidents at the first step,
as a reload removing them would have them leave, and nothing crashes afterwards."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitord.model import NodeRef, Phase, Topology
from rules.engine import Engine
from rules.nodes import Inventory, Reshape
from tests.depth import examples
from tests.rules_fixtures import T0, canonical, changes, dead, engine, rules, topology
from tests.test_rules_properties import RULES, Invariants, run
from tests.test_rules_reload import reloads
from tests.test_rules_rows import Table, differences


def saved(e: Engine) -> Table:
    table = Table()
    table.take(e)
    return table


def rows_of_an_open_device_outage(old: Topology) -> Table:
    """The store's rows once device d1 of `old` has been dead long enough to open its outage."""
    e = engine(old)
    e.observe(dead("d1", T0 + 10), T0 + 10)
    assert changes(e.tick(T0 + 400)) == [("opened", "ARZ-2026-000001", "device:d1")]
    return saved(e)


def test_restoring_onto_an_inventory_without_an_open_incident_s_device_then_reloading() -> None:
    """A device outage is open; the daemon restarts with the device and its lines removed and
    is then reloaded: the outage closes "removed" once, as it would had the reload removed them."""
    old = topology({"x": {"d1": [0, 1], "d2": [0, 1]}})
    new = topology({"x": {"d2": [0, 1]}})
    table = rows_of_an_open_device_outage(old)

    reference = Engine.restore(old, rules(), "ARZ", table.snapshot(), stored=True)
    expected = reference.set_topology(new, T0 + 410)
    assert changes(expected) == [("closed_removed", "ARZ-2026-000001", "device:d1")]

    restored = Engine.restore(new, rules(), "ARZ", table.snapshot(), stored=True)
    assert restored.set_topology(new, T0 + 410) == expected
    assert canonical(restored.snapshot()) == canonical(reference.snapshot())
    assert restored.changes() == reference.changes()
    assert restored.incidents() == []


def test_restoring_onto_an_inventory_without_some_members_then_stepping() -> None:
    """Two of an open device outage's lines are gone after the restart: the first step takes
    them out of it (and their rows), as a reload removing them does; the device's outage stays."""
    old = topology({"x": {"d1": [0, 1, 2, 3], "d2": [0, 1]}})
    new = topology({"x": {"d1": [0, 1], "d2": [0, 1]}})
    table = rows_of_an_open_device_outage(old)

    reference = Engine.restore(old, rules(), "ARZ", table.snapshot(), stored=True)
    expected = reference.set_topology(new, T0 + 410)
    restored = Engine.restore(new, rules(), "ARZ", table.snapshot(), stored=True)
    assert restored.tick(T0 + 410) == expected
    assert canonical(restored.snapshot()) == canonical(reference.snapshot())
    assert restored.changes() == reference.changes()
    (incident,) = restored.incidents()
    assert incident.root == NodeRef("device", "d1") and incident.affected == {"d1-0", "d1-1"}
    assert restored.set_topology(new, T0 + 420) == reference.set_topology(new, T0 + 420)


def consistent(e: Engine) -> None:
    """Every unresolved incident's root and members are in the topology, and its members know it."""
    s = e._s
    for inc in s.book.incidents.values():
        if inc.phase is Phase.RESOLVED:
            continue
        assert inc.root in s.inventory.chain, f"{inc.tracking}: root {inc.root} gone"
        for key in inc.members:
            assert key in s.targets and s.targets[key].incident == inc.tracking, f"{inc.tracking}: member {key}"


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reloads(), st.booleans())
def test_rows_restored_onto_an_edited_inventory_then_reloaded_or_stepped(scenario, reload: bool) -> None:
    """Whatever the edit, the restored engine stays consistent and its rows add up. When nothing
    moved and the rows name nodes gone (what tells the engine the inventory changed), the first
    step leaves it as the reload from the old inventory would: the rows do not say where a line
    was, so a moved line is judged again only at its next sample, and the `Invariants` (which
    read the lines' places in the new inventory) hold only then, for the reload too."""
    before, after, history, at, later = scenario
    e, table, seen = Engine(before, RULES, "ARZ"), Table(), Invariants(before)
    run(e, history, seen)
    table.take(e)
    restored = Engine.restore(after, RULES, "ARZ", table.snapshot(), stored=True)
    told = restored._restored
    step = restored.set_topology(after, at) if reload else restored.tick(at)
    consistent(restored)
    if told and not Reshape.between(Inventory.of(before), Inventory.of(after)).moved:
        reference = Engine.restore(before, RULES, "ARZ", table.snapshot(), stored=True)
        assert changes(step) == changes(reference.set_topology(after, at))
        assert restored.incidents() == reference.incidents()
        assert all(restored.line_state(i) == reference.line_state(i) for i in after.lines)
        seen.topo = after
        seen(restored, step, at)
        run(restored, later, lambda engine, step, now: (seen(engine, step, now), consistent(engine)))
    else:
        run(restored, later, lambda engine, step, now: consistent(engine))
    table.take(restored)
    assert not differences(table.snapshot(), restored.snapshot()), "the rows add up to the engine"
