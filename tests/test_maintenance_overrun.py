"""A maintenance window over two DSLAMs ends with one of them still down: its customers hear the
advance notice, the overrun apology and the restoration, never "maintenance completed"; the
customers of the DSLAM that came back in time hear the advance notice and the completion.

First the rules engine and the planners (as the daemon calls them), then the daemon on the lab.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

import monitord.pipeline
from lab.world import start_world, stop_world
from monitord.config import load_config
from monitord.config.templates import builtin_templates
from monitord.demo import until
from monitord.model import Incident, IncidentKind, MaintenanceWindow, NodeRef, Phase
from notices.maintenance import due_maintenance_notices
from notices.plan import PlanSettings, plan_step
from tests.blocks import own_base
from tests.rules_fixtures import T0, dead, device, engine, line, rules, topology
from tests.test_end_to_end import started


def alive(device_id: str, at: float) -> list:
    return [device(device_id, at=at), device(device_id, at=at, probe="icmp")]


def test_only_those_back_at_the_end_of_the_window_hear_it_is_complete() -> None:
    topo = topology({"x": {"d1": [0, 1], "d2": [0, 1]}})
    topo = replace(
        topo, lines={i: replace(l, phone=f"+9053200000{n:02d}") for n, (i, l) in enumerate(sorted(topo.lines.items()))}
    )
    e = engine(topo)
    settings = PlanSettings(templates=builtin_templates(), timezone="UTC")
    window = MaintenanceWindow("mw-1", (NodeRef("device", "d1"), NodeRef("device", "d2")), T0 + 100, T0 + 1000, "upgrade", 300)
    committed: dict[str, Incident] = {}
    heard: dict[str, list[str]] = {}
    keys: set[str] = set()

    def commit(step, now: float) -> None:
        open_incidents = e.incidents()
        overrun = e.overran() | {i for inc in open_incidents if inc.kind is IncidentKind.OVERRUN for i in inc.affected}
        planned = plan_step(step.incidents, topo, settings, now, committed.get)
        planned += due_maintenance_notices([window], topo, now, settings, overrun_lines=overrun)
        for item, _ in planned:
            if item.channel == "sms" and item.key not in keys:
                keys.add(item.key)
                heard.setdefault(topo.lines[next(i for i, l in topo.lines.items() if l.phone == item.recipient)].id, []).append(
                    item.action
                )
        committed.update((c.incident.tracking, c.incident) for c in step.incidents)

    commit(e.set_maintenance([window], T0 + 50), T0 + 50)
    for now in range(int(T0) + 60, int(T0) + 4000, 30):
        d1_down = T0 + 200 <= now < T0 + 900
        d2_down = T0 + 200 <= now < T0 + 1600
        samples = [
            *(dead("d1", now) if d1_down else alive("d1", now)),
            *(dead("d2", now) if d2_down else alive("d2", now)),
            *(line(i, at=now) for i in topo.lines if not ((i.startswith("d1") and d1_down) or (i.startswith("d2") and d2_down))),
        ]
        commit(e.observe(samples, now), now)
        commit(e.tick(now + 1), now + 1)

    assert e.overran() == {"d2-0", "d2-1"}
    assert heard == {
        "d1-0": ["maintenance-2h", "maintenance-done"],
        "d1-1": ["maintenance-2h", "maintenance-done"],
        "d2-0": ["maintenance-2h", "overrun", "restored"],
        "d2-1": ["maintenance-2h", "overrun", "restored"],
    }


def test_who_overran_survives_a_restart() -> None:
    topo = topology({"x": {"d1": [0, 1], "d2": [0, 1]}})
    e = engine(topo)
    window = MaintenanceWindow("mw-1", (NodeRef("device", "d2"),), T0 + 100, T0 + 200, "upgrade", 60)
    e.set_maintenance([window], T0 + 50)
    e.observe(dead("d2", T0 + 150), T0 + 150)
    e.tick(T0 + 260)
    assert e.overran() == {"d2-0", "d2-1"}
    again = type(e).restore(topo, rules(), "ARZ", e.snapshot())
    assert again.overran() == {"d2-0", "d2-1"}
    again.set_maintenance([], T0 + 300)
    assert again.overran() == frozenset(), "forgotten with its window"


@pytest.mark.xdist_group("lab-world-2")  # see LAB_WORLDS in tests/conftest.py
async def test_a_maintenance_overrun_end_to_end(tmp_path, monkeypatch):
    """Two DSLAMs in one window; one is back before the end, the other only after it. Exact SMS per
    customer, in order, as the store queued them and as the Twilio endpoint received them."""
    monkeypatch.setattr(monitord.pipeline, "NOTICES", 1.0)  # look for due notices every second, not every 30
    world = await start_world(tmp_path, base=own_base(80))
    try:
        topo = load_config(world.config).topology
        back, late = sorted(d for d, dev in topo.devices.items() if dev.kind == "dslam")[:2]
        phones = {dslam: {l.phone for l in topo.lines.values() if l.device == dslam and l.phone} for dslam in (back, late)}
        daemon, stop, task = await started(world.config)
        await until(lambda: all(daemon.line_state(i).status.value == "ok" for i in topo.lines), 60, "all lines ok")
        start = time.time() + 6
        end = start + 12
        await daemon.add_maintenance(
            MaintenanceWindow(
                "mw-e2e", (NodeRef("device", back), NodeRef("device", late)), start, end, "Yazılım güncellemesi", grace=2.0
            )
        )
        await until(lambda: {m.to for m in world.twilio.messages} >= phones[back] | phones[late], 5, "the advance notices")

        await asyncio.sleep(start + 1 - time.time())
        world.faults.silence(*world.isp.addresses_under("device", back), *world.isp.addresses_under("device", late))
        await asyncio.sleep(end - 5 - time.time())
        world.faults.restore(*world.isp.addresses_under("device", back))

        overrun = await until(
            lambda: next((i for i in daemon.open_incidents() if i.kind is IncidentKind.OVERRUN), None), 40, "the overrun incident"
        )
        await until(
            lambda: {m.to for m in world.twilio.messages if overrun.tracking in m.body} >= phones[late], 20, "overrun SMS"
        )
        world.faults.restore(*world.isp.addresses_under("device", late))
        await until(
            lambda: (i := daemon.store.incident(overrun.tracking)) and i.phase is Phase.RESOLVED, 60, "the overrun resolved"
        )
        await asyncio.sleep(4)  # time for a completion notice to (wrongly) follow the fix

        sent = [item for item in daemon.store.items(channel="sms") if item.status == "sent"]
        heard: dict[str, list[str]] = {}
        for item in sorted(sent, key=lambda i: i.sent_at or 0):
            heard.setdefault(item.notification.recipient, []).append(item.notification.action)
        # On failure, say which incidents there were and their first evidence: a wider one absorbs the
        # overrun and its customers hear "merged" instead of "restored".
        seen = sorted(
            f"{i.tracking} {i.kind.value} {i.root} {i.phase.value} {i.evidence[:3]}"
            for i in daemon.store.incidents(open_only=False)
        )
        assert set(heard) == phones[back] | phones[late], seen
        for phone in phones[back]:
            assert heard[phone] == ["maintenance-2h", "maintenance-done"], (phone, seen)
        for phone in phones[late]:
            assert heard[phone] == ["maintenance-2h", "overrun", "restored"], (phone, seen)
        received: dict[str, list[str]] = {}
        for message in world.twilio.messages:
            received.setdefault(message.to, []).append(message.body)
        bodies = {item.notification.recipient: [] for item in sent}
        for item in sorted(sent, key=lambda i: i.sent_at or 0):
            bodies[item.notification.recipient].append(item.notification.body)
        assert received == bodies, "the SMS endpoint got exactly what the store sent, once each, in order"
        assert all(overrun.tracking in b for phone in phones[late] for b in received[phone][1:])
        stop.set()
        await task
    finally:
        await stop_world(world)
