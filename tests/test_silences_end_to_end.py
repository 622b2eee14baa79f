"""A silence over a failing DSLAM, on the lab: its customers get their outage SMS, the NOC gets no
ticket and no e-mail; the held items outlive a restart; when the last silence over it expires
by itself with the DSLAM still down, the ticket and the NOC e-mail go out at once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest

from lab.world import NOC_EMAIL, World, start_world, stop_world
from monitord.config import load_config
from monitord.demo import find_incident, until
from monitord.model import IncidentKind, NodeRef, Silence, Status
from tests.blocks import own_base
from tests.test_end_to_end import line_count, scrape, started


def noc_mail_about(world: World, tracking: str) -> int:
    return sum(NOC_EMAIL in m.rcpt_tos and tracking in str(m.message["Subject"]) for m in world.smtp.messages)


@pytest.mark.xdist_group("lab-world-1")  # see LAB_WORLDS in tests/conftest.py
async def test_a_silenced_failing_dslam_holds_the_noc_side_until_the_silence_expires(tmp_path: Path) -> None:
    world = await start_world(tmp_path, base=own_base(50))  # no other test run uses it
    try:
        topo = load_config(world.config).topology
        daemon, stop, task = await started(world.config)
        await until(lambda: line_count(daemon, Status.OK) == len(topo.lines), 60, "all lines ok")
        dslam = min((d for d in topo.devices.values() if d.kind == "dslam"), key=lambda d: d.id)
        root = NodeRef("device", dslam.id)
        phones = {line.phone for line in topo.lines.values() if line.device == dslam.id and line.phone}
        now = time.time()
        long = Silence("silence-long", (root,), (), now - 1, now + 3600, "ayse.noc", "flapping since the storm", now)
        await daemon.add_silence(long)
        world.faults.silence(*world.isp.addresses_under("device", dslam.id))

        outage = await until(lambda: find_incident(daemon, root, IncidentKind.OUTAGE), 60, "the outage")
        await until(lambda: {m.to for m in world.twilio.messages} >= phones, 30, "the customers' outage SMS, silence or not")
        await asyncio.sleep(3)  # time for a ticket or a NOC e-mail to (wrongly) go out
        assert outage.tracking not in world.tickets.tickets
        assert noc_mail_about(world, outage.tracking) == 0
        held = {(n.channel, n.action) for n in daemon.store.held_items() if n.incident == outage.tracking}
        assert {("ticket", "create"), ("email", "noc-opened")} <= held
        metrics = await scrape(daemon)
        assert "monitord_silences_active 1.0" in metrics
        assert 'monitord_notifications_suppressed_total{channel="ticket"}' in metrics

        stop.set()
        await task
        daemon, stop, task = await started(world.config)
        assert [s.id for s in daemon.silences()] == ["silence-long"]
        assert {(n.channel, n.action) for n in daemon.store.held_items() if n.incident == outage.tracking} == held
        now = time.time()
        exchange = (NodeRef("exchange", dslam.exchange),)
        short = Silence(
            "silence-short", exchange, (("kind", "outage"),), now - 1, now + 6, "mehmet.noc", "until the crew calls", now
        )
        await daemon.add_silence(short)
        assert await daemon.expire_silence("silence-long", "ayse.noc")  # the short one still holds it
        await asyncio.sleep(2)
        assert outage.tracking not in world.tickets.tickets and noc_mail_about(world, outage.tracking) == 0

        await until(lambda: outage.tracking in world.tickets.tickets, short.end - time.time() + 10, "the held ticket")
        ticket_after = time.time() - short.end
        await until(lambda: noc_mail_about(world, outage.tracking) == 1, 10, "the held NOC e-mail")
        print(f"held ticket delivered {ticket_after:.2f} s after the silence's end")
        assert ticket_after < 5.0, "at once: the next tick (1 s) releases it, then one delivery"
        assert daemon.node_state(root).status is Status.DOWN, "still failing when it was let through"
        assert world.tickets.tickets[outage.tracking].history[0].action == "create"
        assert daemon.store.held_items() == []
        sms = Counter(m.to for m in world.twilio.messages if outage.tracking in m.body)
        assert set(sms) == phones and set(sms.values()) == {1}, "the release tells the customers nothing again"
        stop.set()
        await task
    finally:
        await stop_world(world)
