"""A growing incident's RT ticket keeps its subject's count current (REST 2.0 PUT Subject)."""

from __future__ import annotations

from dataclasses import replace

from rt_fixtures import comments, new_tracking, rt, rt_server, ticket_item, tickets_tagged  # noqa: F401

from lab.rt import RtServer
from notifiers.rt import RequestTracker


async def test_a_comment_with_a_new_count_updates_the_ticket_subject(rt: RequestTracker, rt_server: RtServer) -> None:
    tracking = new_tracking()
    ticket_id = await rt.send(
        replace(ticket_item(tracking, "create"), subject=f"[{tracking}] Kesinti: Karşıyaka Santrali - 87 abone")
    )
    grew = replace(
        ticket_item(tracking, "comment", 1, "Arıza büyüdü: 161 abone eklendi, toplam 248."),
        subject=f"[{tracking}] Kesinti: Karşıyaka Santrali - 248 abone",
    )
    assert await rt.send(grew) == ticket_id
    assert await rt.send(grew) == ticket_id  # a retry changes nothing more

    [ticket] = tickets_tagged(rt_server, tracking)
    assert ticket["Subject"] == f"[{tracking}] Kesinti: Karşıyaka Santrali - 248 abone"
    assert [c.splitlines()[0] for c in comments(rt_server, ticket_id)] == ["Arıza büyüdü: 161 abone eklendi, toplam 248."]
