"""An outage that really grows, on the lab with its webhook helpdesk and Twilio endpoint: each
ticket call in order, the growth comment counting the subscribers it added, the subject the
whole count, each subscriber told once (plus the number change of a merged incident).
"""

from __future__ import annotations

import asyncio

import pytest
from test_end_to_end import started

from lab.isp import write_config
from lab.world import start_world, stop_world
from monitord.demo import find_incident, until
from monitord.model import IncidentKind, NodeRef
from tests.blocks import own_base


@pytest.mark.xdist_group("lab-world-2")  # see LAB_WORLDS in tests/conftest.py
async def test_a_growing_exchange_outage_comments_only_what_changed(tmp_path):
    world = await start_world(
        tmp_path,
        base=own_base(170),
        regions=1,
        exchanges_per_region=1,
        dslams_per_exchange=3,
        with_cmts=False,
    )
    try:
        write_config(
            world.isp.root, {"tickets": {"comment_every": "0s"}}
        )  # every comment at once: test_flapping covers the rate limit
        daemon, stop, task = await started(world.config)
        topology = daemon.config.topology
        d1, d2, d3 = sorted(d for d in topology.devices if topology.devices[d].kind == "dslam")
        exchange = topology.devices[d1].exchange
        behind = {d: {i for i, line in topology.lines.items() if line.device == d} for d in (d1, d2, d3)}
        phones = {d: {topology.lines[i].phone for i in ids if topology.lines[i].phone} for d, ids in behind.items()}
        await until(lambda: all(daemon.line_state(i).status.value == "ok" for i in topology.lines), 60, "all lines ok")

        world.faults.silence(*world.isp.addresses_under("device", d1))
        first = await until(lambda: find_incident(daemon, NodeRef("device", d1), IncidentKind.OUTAGE), 60, "the DSLAM outage")
        await until(
            lambda: first.tracking in world.tickets.tickets and len(world.twilio.messages) >= len(phones[d1]), 30, "its notices"
        )
        world.faults.silence(*world.isp.addresses_under("device", d2))
        root = NodeRef("exchange", exchange)
        wide = await until(lambda: find_incident(daemon, root, IncidentKind.OUTAGE), 60, "the exchange outage")
        await until(lambda: wide.tracking in world.tickets.tickets, 30, "its ticket")
        world.faults.silence(*world.isp.addresses_under("device", d3))
        total = len(behind[d1] | behind[d2] | behind[d3])
        await until(lambda: len(daemon.store.incident(wide.tracking).affected) == total, 60, "the growth")
        await asyncio.sleep(8)  # the growth's notices, and anything more there would be

        name = topology.exchanges[exchange].name
        wide_history = [(e.action, e.subject, e.body.splitlines()[0]) for e in world.tickets.tickets[wide.tracking].history]
        assert wide_history == [
            ("create", f"[{wide.tracking}] Kesinti: {name} - {len(behind[d1] | behind[d2])} abone", f"Takip no: {wide.tracking}"),
            (
                "comment",
                f"[{wide.tracking}] Kesinti: {name} - {len(behind[d1] | behind[d2])} abone",
                f"Bu arıza şu kayıtları kapsıyor: {first.tracking}. Etkilenen abone: {len(behind[d1] | behind[d2])}.",
            ),
            (
                "comment",
                f"[{wide.tracking}] Kesinti: {name} - {total} abone",
                f"Arıza büyüdü: {len(behind[d3])} abone eklendi, toplam {total}.",
            ),
        ]
        assert world.tickets.tickets[wide.tracking].subject == f"[{wide.tracking}] Kesinti: {name} - {total} abone"
        assert [e.action for e in world.tickets.tickets[first.tracking].history] == ["create", "resolve"]
        assert list(world.tickets.tickets) == [first.tracking, wide.tracking]
        told: dict[str, list[tuple[str, ...]]] = {}
        for m in world.twilio.messages:
            told.setdefault(m.to, []).append(tuple(t for t in (first.tracking, wide.tracking) if t in m.body))
        assert told == {  # d1's subscribers: the outage, then its new number; the others: their outage once
            **{to: [(wide.tracking,)] for to in phones[d2] | phones[d3]},
            **{to: [(first.tracking,), (first.tracking, wide.tracking)] for to in phones[d1]},
        }
        stop.set()
        await task
    finally:
        await stop_world(world)
