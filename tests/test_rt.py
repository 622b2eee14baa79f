"""The ticket notifier against a real Request Tracker 5 on loopback, also while it is down."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import replace

import pytest
from outbox_fixtures import drain, queue, store  # noqa: F401  (fixtures)
from rt_fixtures import comments, new_tracking, rt, rt_server, ticket_item, tickets_tagged  # noqa: F401

from lab.rt import RtServer
from monitord.demo import until
from monitord.model import Notification, Secret
from monitord.outbox import ChannelPolicy, Outbox
from monitord.store import Store
from notifiers.base import ChannelError, DeliveryError
from notifiers.rt import RequestTracker, marker


async def test_create_opens_a_ticket_tagged_with_the_tracking_number(rt: RequestTracker, rt_server: RtServer) -> None:
    tracking = new_tracking()
    ticket_id = await rt.send(ticket_item(tracking, "create", body="Şişli santralinde 120 hat düştü"))

    [ticket] = tickets_tagged(rt_server, tracking)
    assert str(ticket["id"]) == ticket_id
    assert ticket["Subject"] == f"{tracking} Şişli santrali kesinti"
    assert ticket["Status"] == "new"
    assert rt_server.get(f"queue/{ticket['Queue']['id']}")["Name"] == "Network Outages"
    fields = {cf["name"]: cf["values"] for cf in ticket["CustomFields"]}
    assert fields["Tracking Number"] == [tracking]
    first = rt_server.get(f"ticket/{ticket_id}/attachments?fields=Content&per_page=1")
    assert first["items"][0]["Content"] == "Şişli santralinde 120 hat düştü"


async def test_a_routed_ticket_opens_in_its_region_s_queue_and_is_read_back_from_it(rt_server: RtServer) -> None:
    routed = RequestTracker(rt_server.url, rt_server.queue, token=rt_server.token, routed=["Network Outages Marmara"])
    plain = RequestTracker(rt_server.url, rt_server.queue, token=rt_server.token)
    began = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() - 1))
    try:
        marmara, other = new_tracking(), new_tracking()
        ticket_id = await routed.send(replace(ticket_item(marmara, "create"), route="Network Outages Marmara"))
        await routed.send(ticket_item(other, "create"))
        [ticket] = tickets_tagged(rt_server, marmara)
        assert str(ticket["id"]) == ticket_id
        assert rt_server.get(f"queue/{ticket['Queue']['id']}")["Name"] == "Network Outages Marmara"
        assert await routed.send(ticket_item(marmara, "resolve", 1)) == ticket_id  # found by its tracking number, any queue
        seen, _ = await routed.updated_since(began, per_page=100)
        assert {ticket_id, *(str(t["id"]) for t in tickets_tagged(rt_server, other))} <= {str(t["id"]) for t in seen}
        default_only, _ = await plain.updated_since(began, per_page=100)
        assert ticket_id not in {str(t["id"]) for t in default_only}
    finally:
        await routed.close()
        await plain.close()


async def test_create_again_returns_the_same_ticket(rt: RequestTracker, rt_server: RtServer) -> None:
    tracking = new_tracking()
    first = await rt.send(ticket_item(tracking, "create"))
    again = await rt.send(ticket_item(tracking, "create"))
    other = await rt.send(ticket_item(new_tracking(), "create"))

    assert again == first != other
    assert len(tickets_tagged(rt_server, tracking)) == 1


async def test_comments_arrive_in_order_and_only_once(rt: RequestTracker, rt_server: RtServer) -> None:
    tracking = new_tracking()
    ticket_id = await rt.send(ticket_item(tracking, "create"))
    for n in (1, 2, 1, 3, 2):
        assert await rt.send(ticket_item(tracking, "comment", n)) == ticket_id

    stored = comments(rt_server, ticket_id)
    assert [c.splitlines()[0] for c in stored] == [f"comment {n} for {tracking}" for n in (1, 2, 3)]
    assert stored[0].endswith(marker(f"{tracking}/ticket/comment/1"))


async def test_a_key_that_only_matches_as_a_like_pattern_is_still_posted(rt: RequestTracker, rt_server: RtServer) -> None:
    tracking = new_tracking()
    ticket_id = await rt.send(ticket_item(tracking, "create"))
    posted = ticket_item(tracking, "comment", body="first")
    lookalike = ticket_item(tracking, "comment", body="second")
    await rt.send(posted)
    await rt.send(replace(lookalike, key=posted.key.replace("/", "_")))

    assert [c.splitlines()[0] for c in comments(rt_server, ticket_id)] == ["first", "second"]


async def test_a_quote_in_a_tracking_number_cannot_widen_the_search(
    rt: RequestTracker,
) -> None:
    await rt.send(ticket_item(new_tracking(), "create"))
    assert await rt.find("x' OR id>'0") is None


async def test_resolve_then_reopen(rt: RequestTracker, rt_server: RtServer) -> None:
    tracking = new_tracking()
    ticket_id = await rt.send(ticket_item(tracking, "create"))
    assert await rt.send(ticket_item(tracking, "resolve", body="service restored at 14:05")) == ticket_id
    assert rt_server.get(f"ticket/{ticket_id}")["Status"] == "resolved"
    await rt.send(ticket_item(tracking, "resolve", body="service restored at 14:05"))

    assert await rt.send(ticket_item(tracking, "reopen", body="down again")) == ticket_id
    assert rt_server.get(f"ticket/{ticket_id}")["Status"] == "open"
    assert [c.splitlines()[0] for c in comments(rt_server, ticket_id)] == ["service restored at 14:05", "down again"]
    assert (await rt.find(tracking)).status == "open"  # type: ignore[union-attr]


async def test_basic_auth_works_too(rt_server: RtServer) -> None:
    notifier = RequestTracker(rt_server.url, rt_server.queue, username=rt_server.username, password=rt_server.password)
    try:
        tracking = new_tracking()
        ticket_id = await notifier.send(ticket_item(tracking, "create"))
    finally:
        await notifier.close()
    assert [str(t["id"]) for t in tickets_tagged(rt_server, tracking)] == [ticket_id]


async def test_unknown_queue_holds_the_channel(rt_server: RtServer) -> None:
    notifier = RequestTracker(rt_server.url, "No Such Queue", token=rt_server.token)
    try:
        with pytest.raises(DeliveryError) as caught:
            await notifier.send(ticket_item(new_tracking(), "create"))
    finally:
        await notifier.close()
    assert isinstance(caught.value, ChannelError) and caught.value.cause == "forbidden"
    assert "403" in caught.value.reason and "No Such Queue" in caught.value.reason


@pytest.mark.parametrize("credentials", ["token", "password"])
async def test_wrong_credentials_hold_the_channel_and_are_never_shown(rt_server: RtServer, credentials: str) -> None:
    real = rt_server.token.reveal()
    wrong = Secret(real[:-4] + "0000" if credentials == "token" else "not-the-password", "env:RT")
    notifier = (
        RequestTracker(rt_server.url, rt_server.queue, token=wrong)
        if credentials == "token"
        else RequestTracker(rt_server.url, rt_server.queue, username="monitord", password=wrong)
    )
    try:
        with pytest.raises(DeliveryError) as caught:
            await notifier.send(ticket_item(new_tracking(), "create"))
    finally:
        await notifier.close()
    assert isinstance(caught.value, ChannelError) and caught.value.cause == "credentials"
    assert "401" in caught.value.reason
    assert wrong.reveal() not in str(caught.value) and real not in str(caught.value)


async def test_comment_before_its_ticket_exists_is_retryable(rt: RequestTracker) -> None:
    for action in ("comment", "resolve", "reopen"):
        with pytest.raises(DeliveryError) as caught:
            await rt.send(ticket_item(new_tracking(), action))
        assert caught.value.retryable and caught.value.kind == "not_ready"
        assert "no ticket" in caught.value.reason


async def test_unknown_action_is_permanent(rt: RequestTracker) -> None:
    with pytest.raises(DeliveryError) as caught:
        await rt.send(ticket_item(new_tracking(), "escalate"))
    assert not caught.value.retryable


def incident_items(tracking: str, resolved: bool) -> list[Notification]:
    items = [ticket_item(tracking, "create")]
    items += [ticket_item(tracking, "comment", n) for n in (1, 2)]
    if resolved:
        items += [ticket_item(tracking, "resolve"), ticket_item(tracking, "reopen")]
    return items


async def send_in_order(notifier: RequestTracker, items: list[Notification], timeout: float) -> None:
    """A minimal retry loop: items of one incident go out in order, retryable errors wait."""
    pending = list(items)
    deadline = time.monotonic() + timeout
    while pending:
        blocked: set[str] = set()
        for item in list(pending):
            if item.recipient in blocked:
                continue
            try:
                await notifier.send(item)
            except DeliveryError as error:
                assert error.retryable, error.reason
                blocked.add(item.recipient)
            else:
                pending.remove(item)
        assert time.monotonic() < deadline, f"still pending: {[i.key for i in pending]}"


async def test_helpdesk_outage_delays_tickets_but_never_duplicates_them(rt: RequestTracker, rt_server: RtServer) -> None:
    trackings = [new_tracking() for _ in range(3)]
    items = [i for n, t in enumerate(trackings) for i in incident_items(t, resolved=n == 0)]
    rt_server.stop()
    try:
        for item in items:
            with pytest.raises(DeliveryError) as caught:
                await rt.send(item)
            assert caught.value.retryable
            assert "unreachable" in caught.value.reason
            assert rt_server.token.reveal() not in str(caught.value)
    finally:
        rt_server.start()

    await send_in_order(rt, items, timeout=30)
    await send_in_order(rt, items, timeout=30)  # all again, as after a crash before mark-sent

    for n, tracking in enumerate(trackings):
        [ticket] = tickets_tagged(rt_server, tracking)
        expected = ["comment 1", "comment 2"] + (["resolve 0", "reopen 0"] if n == 0 else [])
        got = comments(rt_server, str(ticket["id"]))
        assert [c.splitlines()[0] for c in got] == [f"{e} for {tracking}" for e in expected]
        assert ticket["Status"] == ("open" if n == 0 else "new")


async def test_outbox_delivers_each_ticket_once_across_an_outage_and_a_crash(rt_server: RtServer, store: Store) -> None:
    """Each incident's comment waits for its create, so retries cannot reorder them."""
    trackings = [new_tracking() for _ in range(4)]
    policy = ChannelPolicy(concurrency=4, rate=1000.0, base_backoff=0.1, max_backoff=0.3, settle=0.05, outage_probe=0.1)

    def outbox(notifier: RequestTracker) -> Outbox:
        return Outbox(store, {"ticket": notifier}, {"ticket": policy}, rng=random.Random(3))

    notifier = RequestTracker(rt_server.url, rt_server.queue, token=rt_server.token, timeout=5)
    try:
        queue(store, [ticket_item(t, action, 1) for t in trackings for action in ("create", "comment")])
        # A crash right after the first create reached RT, before it was marked sent:
        [first, *_] = store.due("ticket", time.time(), limit=1)
        store.claim(first.id, time.time())
        await notifier.send(first.notification)

        rt_server.stop()
        try:
            await drain(
                outbox(notifier),
                store,
                timeout=10,
                done=lambda: all(i.attempts >= 2 for i in store.items() if i.notification.action == "create"),
            )
            assert {i.status for i in store.items()} == {"pending"}
            assert {i.notification.action for i in store.items() if i.attempts} == {"create"}
            assert all("unreachable" in (i.last_error or "") for i in store.items() if i.attempts)
        finally:
            rt_server.start()
        await drain(outbox(notifier), store, timeout=20)
    finally:
        await notifier.close()

    assert {i.status for i in store.items()} == {"sent"}
    for tracking in trackings:
        [ticket] = tickets_tagged(rt_server, tracking)
        assert {i.peer_ref for i in store.items() if i.notification.recipient == tracking} == {str(ticket["id"])}
        assert len(comments(rt_server, str(ticket["id"]))) == 1


async def test_a_wrong_token_holds_the_ticket_channel_until_a_reload_then_each_ticket_once(
    rt_server: RtServer, store: Store
) -> None:
    """Nothing is dead-lettered while RT refuses the token; the reload's token delivers every
    create and comment once, in order."""
    trackings = [new_tracking() for _ in range(3)]
    queue(store, [ticket_item(t, action, 1) for t in trackings for action in ("create", "comment")])
    policy = ChannelPolicy(concurrency=4, rate=1000.0, base_backoff=0.1, max_backoff=0.3, settle=0.05, probe_every=0.3)
    real = rt_server.token.reveal()
    wrong = RequestTracker(rt_server.url, rt_server.queue, token=Secret(real[:-4] + "0000", "env:RT"), timeout=5)
    box = Outbox(store, {"ticket": wrong}, {"ticket": policy}, rng=random.Random(4))
    runner = asyncio.create_task(box.run())
    try:
        await until(lambda: "ticket" in box.holds, 10, "the hold")
        await asyncio.sleep(1.0)
        assert box.holds["ticket"].cause == "credentials"
        assert {i.status for i in store.items()} == {"pending"}
        assert all(tickets_tagged(rt_server, t) == [] for t in trackings)
        box.replace_notifiers({"ticket": RequestTracker(rt_server.url, rt_server.queue, token=rt_server.token, timeout=5)})
        await until(lambda: store.depth() == 0, 20, "the held tickets")
    finally:
        await box.stop(timeout=2)
        await runner

    assert store.counts() == {("ticket", "sent"): 6} and box.counts["ticket"].dead == 0 and not box.holds
    for tracking in trackings:
        [ticket] = tickets_tagged(rt_server, tracking)
        assert [c.splitlines()[0] for c in comments(rt_server, str(ticket["id"]))] == [f"comment 1 for {tracking}"]
