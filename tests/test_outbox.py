"""The delivery worker against the local Twilio: faults, pacing, quiet hours, dead letters."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.tickets import TicketDesk
from lab.twilio import TwilioLab
from monitord.model import Notification
from monitord.outbox import ChannelPolicy, Outbox, masked
from monitord.pacing import backoff
from monitord.ratelimit import TokenBucket
from monitord.store import Store
from notifiers.sms import sms_segments
from notifiers.webhook import WebhookTickets
from tests.outbox_fixtures import FAST, drain, queue, sms, sms_for, store, twilio  # noqa: F401  (fixtures)


@given(st.integers(1, 100_000), st.floats(0.01, 10), st.floats(0.01, 1000), st.integers(0, 2**32))
def test_backoff_is_full_jitter_under_the_cap(attempts: int, base: float, cap: float, seed: int) -> None:
    delay = backoff(attempts, base, cap, random.Random(seed))
    assert 0.0 <= delay <= cap
    assert attempts > 60 or delay <= base * 2 ** (attempts - 1)


def test_backoff_spreads_over_the_whole_range() -> None:
    rng = random.Random(1)
    delays = [backoff(4, 1.0, 60.0, rng) for _ in range(2000)]
    assert max(delays) > 7.5 and min(delays) < 0.5


@given(st.floats(0.5, 1000), st.floats(1, 20), st.integers(1, 500))
def test_token_bucket_paces_to_the_rate(rate: float, burst: float, n: int) -> None:
    bucket = TokenBucket(rate, burst, now=0.0)
    last = max(bucket.reserve(0.0) for _ in range(n))
    assert last == pytest.approx(max(0.0, (n - burst) / rate))


def outbox(store: Store, lab: TwilioLab, policy: ChannelPolicy = FAST, timeout: float = 2.0) -> Outbox:
    return Outbox(store, {"sms": sms_for(lab, timeout=timeout)}, {"sms": policy}, rng=random.Random(7))


def delivered(lab: TwilioLab) -> Counter[str]:
    return Counter(m.body for m in lab.messages)


async def test_delivers_every_item_once_and_counts_segments(store: Store, twilio: TwilioLab) -> None:
    items = [sms(i) for i in range(20)]
    queue(store, items)
    box = outbox(store, twilio)
    await drain(box, store, timeout=10)
    assert delivered(twilio) == Counter(n.body for n in items)
    assert store.counts() == {("sms", "sent"): 20}
    assert {i.peer_ref for i in store.items()} == {m.sid for m in twilio.messages}
    counts = box.counts["sms"]
    assert (counts.sent, counts.failed, counts.dead) == (20, 0, 0)
    assert counts.segments == sum(sms_segments(n.body) for n in items) == 20


async def test_invalid_number_is_dead_lettered_while_others_go_out(
    store: Store, twilio: TwilioLab, caplog: pytest.LogCaptureFixture
) -> None:
    items = [sms(1), sms(2, to="+15005550001"), sms(3)]
    queue(store, items)
    box = outbox(store, twilio)
    with caplog.at_level(logging.WARNING, logger="monitord.outbox"):
        await drain(box, store, timeout=10)
    assert delivered(twilio) == Counter([sms(1).body, sms(3).body])
    [dead] = store.items(status="dead")
    assert dead.notification == items[1] and dead.attempts == 1 and "code 21211" in dead.last_error
    assert box.counts["sms"].dead == 1
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("dead letter: sms ") and "21211" in line and twilio.auth_token not in line
    assert items[1].key.replace("+15005550001", "+1500***0001") in line
    assert "+15005550001" not in line  # the number is personal data; Twilio's message quotes it


def test_dead_letter_logs_mask_customer_addresses() -> None:
    mail = Notification("T/email/ayse.yilmaz@example.com/outage", "email", "ayse.yilmaz@example.com", "outage", "", "")
    assert (
        masked(f"550 {mail.recipient} unknown ({mail.key})", mail)
        == "550 a***@example.com unknown (T/email/a***@example.com/outage)"
    )
    ticket = Notification("T/ticket/create", "ticket", "ARZ-2026-000001", "create", "", "")
    assert masked("RT has no ticket for ARZ-2026-000001 yet", ticket) == "RT has no ticket for ARZ-2026-000001 yet"


@pytest.mark.parametrize(("status", "retry_after"), [(500, None), (429, 0.3)])
async def test_server_errors_and_throttling_deliver_exactly_once(
    store: Store, twilio: TwilioLab, status: int, retry_after: float | None
) -> None:
    items = [sms(i) for i in range(30)]
    queue(store, items)
    twilio.fail_next(25, status=status, retry_after=retry_after)
    box = outbox(store, twilio, policy=replace(FAST, outage_probe=0.02))  # the channel is down after 3: probed
    started = time.monotonic()
    await drain(box, store, timeout=20)
    assert delivered(twilio) == Counter(n.body for n in items)  # each body exactly once
    assert store.counts() == {("sms", "sent"): 30}
    assert box.counts["sms"].failed == 25  # a failed look-up before a re-send counts too
    if retry_after:
        retried = [i for i in store.items() if i.attempts > 1]
        assert retried and time.monotonic() - started >= retry_after


async def test_endpoint_down_for_a_while_then_everything_once(store: Store, twilio: TwilioLab) -> None:
    items = [sms(i) for i in range(40)]
    await twilio.down()
    queue(store, items)
    box = outbox(store, twilio)
    runner = asyncio.create_task(box.run())
    await asyncio.sleep(0.5)
    assert twilio.messages == [] and box.counts["sms"].failed >= 4
    await twilio.up()
    async with asyncio.timeout(15):
        while store.depth():
            await asyncio.sleep(0.02)
    await box.stop(timeout=2)
    await runner
    assert delivered(twilio) == Counter(n.body for n in items)
    assert store.counts() == {("sms", "sent"): 40}


async def test_lost_answers_are_reconciled_not_resent(store: Store, twilio: TwilioLab) -> None:
    """Twilio accepts the message but answers after our timeout: the retry finds it instead."""
    items = [sms(i) for i in range(6)]
    queue(store, items)
    twilio.delay = 0.5
    box = outbox(
        store,
        twilio,
        timeout=0.2,
        policy=ChannelPolicy(concurrency=6, rate=1000, base_backoff=0.05, settle=0.6, outage_probe=0.1),
    )
    await drain(box, store, timeout=15)
    assert delivered(twilio) == Counter(n.body for n in items)
    assert box.counts["sms"].adopted == 6 and twilio.requests["POST"] == 6
    assert {i.peer_ref for i in store.items()} == {m.sid for m in twilio.messages}


async def test_items_older_than_max_age_are_dead_lettered(store: Store, twilio: TwilioLab) -> None:
    now = time.time()
    queue(store, [sms(1)], now=now - 120)
    queue(store, [sms(2)], now=now - 120, not_before=now - 10)  # quiet hours ended 10 s ago
    queue(store, [sms(3)], now=now)
    box = outbox(store, twilio, policy=ChannelPolicy(rate=1000, max_age=60))
    await drain(box, store, timeout=10)
    assert delivered(twilio) == Counter([sms(2).body, sms(3).body])
    [dead] = store.items(status="dead")
    assert dead.notification == sms(1) and "older than max age 60s" in dead.last_error
    assert dead.attempts == 0 and box.counts["sms"].dead == 1


async def test_rate_limit_is_respected(store: Store, twilio: TwilioLab) -> None:
    items = [sms(i) for i in range(41)]
    queue(store, items)
    box = outbox(store, twilio, policy=ChannelPolicy(concurrency=8, rate=40, catch_up=0.0))
    await drain(box, store, timeout=10)
    times = sorted(m.at for m in twilio.messages)
    rate = (len(times) - 1) / (times[-1] - times[0])
    # The limit is a ceiling (10% for arrival jitter): a loaded machine may send slower.
    assert len(times) == 41 and 20 < rate <= 40 * 1.1


async def test_quiet_hours_hold_items_until_not_before(store: Store, twilio: TwilioLab) -> None:
    now = time.time()
    queue(store, [sms(1)], not_before=now + 0.6, now=now)
    queue(store, [sms(2)], now=now)
    box = outbox(store, twilio)
    await drain(box, store, timeout=10)
    at = {m.body: m.at for m in twilio.messages}
    assert at[sms(2).body] < now + 0.3 and at[sms(1).body] >= now + 0.6


async def test_wake_delivers_items_queued_while_running(store: Store, twilio: TwilioLab) -> None:
    box = outbox(store, twilio)
    runner = asyncio.create_task(box.run())
    await asyncio.sleep(0.1)
    queue(store, [sms(1)])
    box.wake()
    async with asyncio.timeout(1):
        while not twilio.messages:
            await asyncio.sleep(0.01)
    await box.stop(timeout=1)
    await runner
    assert store.counts() == {("sms", "sent"): 1}


async def test_stop_leaves_unfinished_sends_for_the_next_start(store: Store, twilio: TwilioLab) -> None:
    queue(store, [sms(1), sms(2)])
    twilio.delay = 5.0
    box = outbox(store, twilio, timeout=10, policy=ChannelPolicy(concurrency=2, rate=1000, settle=0.05))
    runner = asyncio.create_task(box.run())
    async with asyncio.timeout(2):
        while len(twilio.messages) < 2:
            await asyncio.sleep(0.01)
    await box.stop(timeout=0.1)
    await runner
    assert store.counts() == {("sms", "sending"): 2}

    twilio.delay = 0.0
    again = outbox(store, twilio)
    await drain(again, store, timeout=5)
    assert again.counts["sms"].adopted == 2 and len(twilio.messages) == 2
    assert store.counts() == {("sms", "sent"): 2}


def ticket(tracking: str, action: str, n: int = 0) -> Notification:
    return Notification(
        key=f"{tracking}/ticket/{action}/{n}",
        channel="ticket",
        recipient=tracking,
        action=action,
        subject=f"{tracking} Şişli santrali kesinti",
        body=f"{action} {n}",
        incident=tracking,
    )


async def test_tickets_keep_queue_order_across_a_helpdesk_outage(store: Store) -> None:
    """Jittered retries would let a comment or resolve overtake its create; per incident they wait."""
    trackings = [f"ARZ-2026-{n:06d}" for n in range(1, 6)]
    steps = [[ticket(t, "create") for t in trackings]]
    steps += [[ticket(t, "comment", n) for t in trackings] for n in (1, 2, 3)]
    steps += [[ticket(t, "resolve") for t in trackings]]
    policy = ChannelPolicy(concurrency=4, rate=1000.0, base_backoff=0.02, max_backoff=0.3, settle=0.01, outage_probe=0.05)
    async with TicketDesk() as desk:
        await desk.down()
        box = Outbox(store, {"ticket": WebhookTickets(desk.url, timeout=2)}, {"ticket": policy}, rng=random.Random(5))
        runner = asyncio.create_task(box.run())
        for step in steps:  # one engine step after another, while the helpdesk is away
            queue(store, step)
            box.wake()
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)
        assert box.counts["ticket"].failed >= 10 and store.depth() == 25
        assert {i.notification.action for i in store.items() if i.attempts} == {"create"}
        await desk.up()
        desk.fail_next(503, count=6)
        async with asyncio.timeout(15):
            while store.depth():
                await asyncio.sleep(0.02)
        await box.stop(timeout=2)
        await runner

    assert sorted(desk.tickets) == trackings
    for tracking, t in desk.tickets.items():
        assert [e.key for e in t.history] == [n.key for step in steps for n in step if n.incident == tracking]
        assert t.status == "resolved"
        assert {i.peer_ref for i in store.items() if i.notification.incident == tracking} == {t.id}
    assert len(desk.requests) == 25 + 6  # every item accepted at its first try after the faults
    assert store.counts() == {("ticket", "sent"): 25} and box.counts["ticket"].sent == 25


async def test_unordered_channels_do_not_wait_for_older_items(store: Store, twilio: TwilioLab) -> None:
    first, second = sms(1), sms(2)
    queue(store, [first, second])
    twilio.fail_next(1, status=500)
    box = outbox(store, twilio, policy=ChannelPolicy(concurrency=1, rate=1000, base_backoff=0.5, settle=0.5))
    await drain(box, store, timeout=10)
    assert [m.body for m in twilio.messages] == [second.body, first.body]


def test_a_wave_claims_only_pending_items_and_writes_the_last_waves_answers_with_them(store: Store) -> None:
    queue(store, [sms(i) for i in range(4)])
    first, second, third, fourth = (i.id for i in store.items())
    store.mark_dead(fourth, "refused")
    assert store.claim_wave([first, second], now=100.0) == {first, second}
    claimed = store.claim_wave([second, third, fourth], now=101.0, answered=[(first, "SM1", 101.5)])
    assert claimed == {third}  # the second is sending already, the fourth is dead
    items = {i.id: i for i in store.items()}
    assert (items[first].status, items[first].peer_ref, items[first].sent_at) == ("sent", "SM1", 101.5)
    assert [items[i].status for i in (second, third, fourth)] == ["sending", "sending", "dead"]
    assert (items[second].attempts, items[third].first_attempt_at) == (1, 101.0)


async def test_answers_kept_back_for_the_next_wave_are_not_free_for_a_lookup_to_adopt(store: Store, twilio: TwilioLab) -> None:
    """Two items with the same number and text: one goes out now, the other's earlier attempt
    was lost. Its lookup finds one message, the first's, whose `sent` mark was kept back: that
    mark must be written before the adoption, so the second sends its own instead of taking
    the first's SID."""
    same = sms(1)
    queue(store, [same, replace(same, key=same.key + "/again")])
    first, second = store.items()
    store.claim(second.id, time.time() - 1)  # attempted before, outcome unknown
    store.requeue_sending("sms", time.time() + 0.3)
    box = outbox(store, twilio, policy=replace(FAST, settle=0.3))
    await drain(box, store, timeout=10)
    assert len(twilio.messages) == 2 and store.counts() == {("sms", "sent"): 2}
    assert sorted(i.peer_ref or "" for i in store.items()) == sorted(m.sid for m in twilio.messages)
