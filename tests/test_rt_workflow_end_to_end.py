"""The NOC's work and Request Tracker both ways, through the whole daemon (issue 13 item 1): a real
DSLAM outage, its ticket in the real RT; acknowledged and taken through the API, which the ticket
shows (through the outbox); an owner set or given back in RT comes back as the incident's; a
ticket the helpdesk resolves while the DSLAM is still dark shows on the incident, which stays
open; closed by hand through the API, which resolves the ticket with the reason."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from rt_fixtures import comments, rt_server, tickets_tagged  # noqa: F401  (fixtures)

from lab.isp import write_config, write_secret
from lab.rt import RtServer
from lab.world import start_world, stop_world
from monitord.demo import find_incident, until
from monitord.model import IncidentKind, NodeRef, Phase
from tests.blocks import own_base
from tests.test_end_to_end import started

REASON = "Kart değişti, hatlar yeni karta taşındı"


async def test_ack_owner_and_close_reach_rt_and_rts_owner_comes_back(rt_server: RtServer, tmp_path: Path) -> None:  # noqa: F811
    world = await start_world(tmp_path, regions=1, exchanges_per_region=1, ports_per_dslam=4, base=own_base(74))
    token = (tmp_path / "secrets" / "api.token").read_text().strip()
    rt = {
        "kind": "rt",
        "url": rt_server.url,
        "queue": rt_server.queue,
        "token": write_secret(tmp_path, "rt.token", rt_server.token.reveal()),
    }
    write_config(tmp_path, {"tickets": {**rt, "stage_sync": {"every": "1s"}}})
    daemon, stop, task = await started(world.config)

    async def post(path: str, body: dict) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession() as session:
            async with session.post(f"http://127.0.0.1:{daemon.http_port}{path}", json=body, headers=headers) as response:
                return response.status, await response.json()

    async def shown() -> dict:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{daemon.http_port}{base}") as response:
                assert response.status == 200
                return await response.json()  # type: ignore[no-any-return]

    def read_back() -> tuple[str, str] | None:
        return daemon.store.helpdesk_ticket(outage.tracking)

    def owners() -> list[tuple[str, str, str]]:
        return [(e.text, e.actor, e.source) for e in daemon.incident_events(outage.tracking) if e.action == "owner"]

    try:
        dslam = min(d for d, device in daemon.config.topology.devices.items() if device.kind == "dslam")
        world.faults.silence(*world.isp.addresses_under("device", dslam))
        outage = await until(lambda: find_incident(daemon, NodeRef("device", dslam), IncidentKind.OUTAGE), 60, "the outage")
        ticket = (await until(lambda: tickets_tagged(rt_server, outage.tracking), 30, "its RT ticket"))[0]
        ticket_id = str(ticket["id"])
        base = f"/api/incidents/{outage.tracking}"

        assert (await post(base + "/ack", {"by": "mehmet"}))[0] == 201
        assert (await post(base + "/owner", {"owner": "ayse", "by": "mehmet"}))[0] == 201
        await until(lambda: rt_server.get(f"ticket/{ticket_id}")["Owner"]["id"] == "ayse", 30, "ayse owns the ticket")  # type: ignore[index]
        await until(
            lambda: any("Acknowledged" in c or "üstlenildiği" in c for c in comments(rt_server, ticket_id)), 30, "the ack"
        )
        await until(lambda: (read_back() or ("",))[0] == "ayse", 30, "the sync to read the owner back")
        assert owners() == [("ayse", "mehmet", "noc")], "monitord's own owner, read back, is not recorded again"

        rt_server.put(f"ticket/{ticket_id}", {"Owner": "Nobody"})  # given back in RT, then taken there again
        await until(lambda: len(owners()) == 2, 30, "the sync to see it given back")
        assert (await shown())["owner"] is None
        assert (await post(base + "/owner", {"owner": "zeynep", "by": "mehmet"}))[0] == 201  # not an RT user
        await until(lambda: any("zeynep" in c for c in comments(rt_server, ticket_id)), 30, "the comment naming zeynep")
        rt_server.put(f"ticket/{ticket_id}", {"Owner": "ayse"})
        await until(lambda: len(owners()) == 4, 30, "RT's owner recorded")
        assert owners() == [
            ("ayse", "mehmet", "noc"),
            ("", "monitord", "helpdesk"),
            ("zeynep", "mehmet", "noc"),
            ("ayse", "monitord", "helpdesk"),
        ]

        rt_server.put(f"ticket/{ticket_id}", {"Status": "resolved"})  # the helpdesk ends the ticket: the DSLAM is dark
        await until(lambda: read_back() == ("ayse", "resolved"), 30, "the sync to read the ended ticket")
        page = await shown()
        assert page["phase"] != "resolved" and page["ticket_ended"]["status"] == "resolved", page
        assert page["ticket_ended"]["by"] == "monitord"  # the lab's helpdesk plays as the API user
        rt_server.put(f"ticket/{ticket_id}", {"Status": "open"})  # opened again in RT
        await until(lambda: read_back() == ("ayse", "open"), 30, "the sync to read it opened again")
        assert (await shown())["ticket_ended"] is None
        statuses = [e.text for e in daemon.incident_events(outage.tracking) if e.action == "status"]
        assert statuses == ["resolved", "open"]

        status, closed = await post(base + "/close", {"by": "mehmet", "reason": REASON})
        assert status == 201 and closed["action"] == "close"
        assert daemon.store.incident(outage.tracking).phase is Phase.RESOLVED  # type: ignore[union-attr]
        await until(lambda: rt_server.get(f"ticket/{ticket_id}")["Status"] == "resolved", 30, "the ticket resolved")  # type: ignore[index]
        assert any(REASON in c for c in comments(rt_server, ticket_id))
        assert len(tickets_tagged(rt_server, outage.tracking)) == 1
        actions = [e.action for e in daemon.incident_events(outage.tracking)]
        assert (actions.count("owner"), actions.count("status")) == (4, 2), "nothing echoed: the close's resolve is monitord's"
    finally:
        world.faults.restore_all()
        stop.set()
        await task
        await stop_world(world)
