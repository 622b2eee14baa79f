"""A dark exchange at the shipped settings (ICMP 30 s, settle 60 s): nothing while the lab is
healthy, then one ticket counting every subscriber of the exchange and the first SMS within
45 s of the fault, each subscriber told once, and no growth comments after the ticket.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from lab.detection import Detection, shipped_defaults
from lab.world import NOC_EMAIL, start_world, stop_world
from monitord.model import NodeRef
from tests.blocks import own_base


@pytest.mark.xdist_group("lab-world-1")  # see LAB_WORLDS in tests/conftest.py
async def test_a_dark_exchange_at_default_settings_is_one_full_ticket_within_45_s(tmp_path):
    world = await start_world(tmp_path, base=own_base(140), regions=1, exchanges_per_region=2, dslams_per_exchange=3)
    shipped_defaults(world.config)
    try:
        run = await Detection.start(world)
        await run.all_ok()
        await asyncio.sleep(10)
        assert (run.daemon.open_incidents(), world.tickets.tickets, world.twilio.messages) == ([], {}, [])  # healthy: nothing

        topology = run.daemon.config.topology
        exchange = sorted(topology.exchanges)[0]
        devices = {d.id for d in topology.devices.values() if d.exchange == exchange}
        assert len([d for d in devices if topology.devices[d].kind == "dslam"]) == 3
        behind = {i for i, line in topology.lines.items() if line.device in devices}
        timing = await run.measure("exchange", exchange)
        assert timing.to_ticket < 45 and timing.to_first_sms < 45, timing

        outage = timing.incident
        phones = {topology.lines[i].phone for i in behind if topology.lines[i].phone}
        await asyncio.sleep(20)  # the rest of the SMS, and any growth there would be
        tickets = list(world.tickets.tickets.values())
        assert len(tickets) == 1, [(t.tracking, [(e.action, e.subject) for e in t.history]) for t in tickets]
        [ticket] = tickets
        assert ticket.tracking == outage.tracking and outage.root == NodeRef("exchange", exchange)
        assert [(e.action, e.subject) for e in ticket.history] == [
            ("create", f"[{outage.tracking}] Kesinti: {topology.exchanges[exchange].name} - {len(behind)} abone")
        ]
        assert f"arkasında kesik hat: {len(behind)}/{len(behind)}" in ticket.history[0].body
        sms = Counter(m.to for m in world.twilio.messages)
        assert len(sms) == len(phones) and set(sms.values()) == {1}
        assert all(outage.tracking in m.body for m in world.twilio.messages)
        assert sum(NOC_EMAIL in m.rcpt_tos for m in world.smtp.messages) == 1
        assert [i.tracking for i in run.daemon.open_incidents()] == [outage.tracking]
        await run.close()
    finally:
        await stop_world(world)
