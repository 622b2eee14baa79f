"""Faults of the channel, not of the message: refused credentials hold a channel until a reload
fixes them, and steps of the wall clock move no notice's age or retry timer (the outbox runs on
the daemon's anchored clock). Real peers: the local Twilio, aiosmtpd and the webhook helpdesk."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from dataclasses import replace
from types import SimpleNamespace

import pytest

from lab.smtp import SmtpSink
from lab.tickets import TicketDesk
from lab.twilio import TwilioLab
from monitord.clock import AnchoredClock
from monitord.config.templates import builtin_templates
from monitord.demo import until
from monitord.metrics import DaemonCollector
from monitord.model import ChannelHold, Notification, Secret
from monitord.outbox import Outbox
from monitord.store import Store
from notices.holds import hold_notices
from notices.plan import PlanSettings
from notifiers.email import SmtpEmail
from notifiers.webhook import WebhookTickets
from tests.outbox_fixtures import FAST, queue, sms, sms_for, store, twilio  # noqa: F401  (fixtures)

NOC = "noc@isp.example"
HELD = replace(FAST, probe_every=0.3)


class SteppedWall:
    """The host's wall clock as NTP or an operator may step it: `time.time` is patched to real
    time plus `step`, since a test cannot step the host's clock."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.step = 0.0
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() + self.step)


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> SteppedWall:
    return SteppedWall(monkeypatch)


def alerts(seen: list[ChannelHold]):  # type: ignore[no-untyped-def]
    def on_hold(hold: ChannelHold) -> list[tuple[Notification, float | None]]:
        seen.append(hold)
        return hold_notices(hold, PlanSettings(templates=builtin_templates(), noc_emails=(NOC,), language="en"), HELD.probe_every)

    return on_hold


def mail(i: int) -> Notification:
    to = f"abone{i}@example.com"
    return Notification(f"ARZ-2026-000007/email/{to}/outage", "email", to, "outage", "Kesinti", f"Arıza ({i})", "ARZ-2026-000007")


def held_metric(box: Outbox, store: Store) -> dict[tuple[str, str], float]:
    view = SimpleNamespace(clock=time.time, delivery=box.delivery)
    [family] = [m for m in DaemonCollector._outbox(view) if m.name == "monitord_channel_held"]  # type: ignore[arg-type]
    return {(s.labels["channel"], s.labels["reason"]): s.value for s in family.samples}


async def stop(box: Outbox, runner: asyncio.Task[None]) -> None:
    await box.stop(timeout=2)
    await runner


async def test_a_rejected_twilio_token_holds_sms_until_a_reload_then_each_goes_once(
    store: Store, twilio: TwilioLab, caplog: pytest.LogCaptureFixture
) -> None:
    """20 outage SMS meet a 401: none is dead-lettered nor aged out (max_age is shorter than the
    hold), Twilio sees one probe per `probe_every`, the NOC gets one e-mail; the reload's token
    sends all 20 exactly once, and the NOC hears that the channel works again."""
    items = [sms(i) for i in range(20)]
    queue(store, items)
    policy = replace(HELD, max_age=1.0)
    seen: list[ChannelHold] = []
    async with SmtpSink() as smtp:
        noc_mail = SmtpEmail(smtp.host, smtp.port, from_="monitord@isp.example", starttls=False, timeout=5)
        box = Outbox(
            store,
            {"sms": sms_for(twilio, token="rotated-away"), "email": noc_mail},
            {"sms": policy, "email": FAST},
            rng=random.Random(3),
            on_hold=alerts(seen),
        )
        with caplog.at_level(logging.INFO, logger="monitord.outbox"):
            started = time.monotonic()
            runner = asyncio.create_task(box.run())
            await until(lambda: smtp.messages, 5, "the NOC e-mail")
            await asyncio.sleep(1.6)
            assert box.holds["sms"].cause == "credentials" and held_metric(box, store)[("sms", "credentials")] == 1
            assert twilio.messages == [] and store.counts() == {("sms", "pending"): 20, ("email", "sent"): 1}
            probes = (time.monotonic() - started) / policy.probe_every
            assert policy.concurrency + 2 <= sum(twilio.requests.values()) <= policy.concurrency + probes + 1
            box.replace_notifiers({"sms": sms_for(twilio)})
            await until(lambda: store.depth() == 0 and len(smtp.messages) == 2, 5, "the held SMS and the NOC's all-clear")
            await stop(box, runner)

    assert Counter(m.body for m in twilio.messages) == Counter(n.body for n in items)  # each exactly once
    assert store.counts() == {("sms", "sent"): 20, ("email", "sent"): 2} and box.counts["sms"].dead == 0
    assert held_metric(box, store) == {("sms", ""): 0, ("email", ""): 0}
    held, released = (m.message["Subject"] for m in smtp.messages)
    assert held == "[monitord] sms channel held: credentials refused" and released == "[monitord] sms channel works again"
    assert [m.rcpt_tos for m in smtp.messages] == [(NOC,), (NOC,)]
    assert [h.released for h in seen] == [False, True] and seen[0].waiting == 20
    lines = [r.getMessage() for r in caplog.records]
    assert len([line for line in lines if line.startswith("channel sms held")]) == 1
    [done] = [line for line in lines if line.startswith("channel sms released")]
    assert "19 notices go out now" in done  # the 20th was the probe that went through
    assert not any("dead letter" in line for line in lines)
    assert all("rotated-away" not in line and twilio.auth_token not in line for line in lines)


async def test_a_hold_alert_that_cannot_be_built_is_dead_on_arrival_and_counted_by_the_outbox(
    store: Store,  # noqa: F811
    twilio: TwilioLab,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The outbox queues the NOC's hold alerts itself: one whose template failed is filed dead,
    logged once and counted by the outbox, the one writer of the delivery counters."""
    queue(store, [sms(1)])
    broken = "template email.channel_held: no value for {kanal}"

    def on_hold(hold: ChannelHold) -> list[tuple[Notification, float | None]]:
        return [(replace(n, error=broken), nb) for n, nb in alerts([])(hold)]

    async with SmtpSink() as smtp:
        noc_mail = SmtpEmail(smtp.host, smtp.port, from_="monitord@isp.example", starttls=False, timeout=5)
        box = Outbox(store, {"sms": sms_for(twilio, token="rotated-away"), "email": noc_mail}, {"sms": HELD}, on_hold=on_hold)
        with caplog.at_level(logging.WARNING, logger="monitord.outbox"):
            runner = asyncio.create_task(box.run())
            await until(lambda: "sms" in box.holds and box.counts["email"].dead, 5, "the held channel's broken alert")
            await asyncio.sleep(0.2)
            await stop(box, runner)
    assert smtp.messages == [] and store.counts()[("email", "dead")] == 1 and box.counts["email"].dead == 1
    [dead] = [r.getMessage() for r in caplog.records if "on arrival" in r.getMessage()]
    assert dead.startswith("dead letter on arrival: email ") and dead.endswith(f": {broken}")


async def test_an_smtp_auth_failure_holds_email_and_opens_a_ticket_until_the_password_is_fixed(store: Store) -> None:
    items = [mail(i) for i in range(5)]
    queue(store, items)
    async with SmtpSink(starttls=True, username="noc", password="right-password") as smtp, TicketDesk() as desk:

        def client(password: str) -> SmtpEmail:
            return SmtpEmail(
                smtp.host,
                smtp.port,
                from_="monitord@isp.example",
                starttls=True,
                username="noc",
                password=Secret(password, "env:SMTP"),
                tls_context=smtp.client_tls_context(),
                timeout=5,
            )

        box = Outbox(
            store,
            {"email": client("expired-password"), "ticket": WebhookTickets(desk.url, timeout=5)},
            {"email": HELD, "ticket": FAST},
            rng=random.Random(5),
            on_hold=alerts([]),
        )
        started = time.monotonic()
        runner = asyncio.create_task(box.run())
        await until(lambda: desk.tickets, 5, "the NOC's ticket")
        await asyncio.sleep(1.0)
        assert box.holds["email"].cause == "credentials" and smtp.messages == []
        probes = (time.monotonic() - started) / HELD.probe_every
        assert smtp.auth_failures > 0 and box.counts["email"].held <= HELD.concurrency + probes + 1
        statuses = [i.status for i in store.items(channel="email")]
        assert set(statuses) <= {"pending", "sending"} and statuses.count("sending") <= 1  # at most the hold's probe in flight
        box.replace_notifiers({"email": client("right-password")})
        await until(lambda: store.depth() == 0, 5, "the held e-mail")
        await stop(box, runner)

    assert Counter(m.rcpt_tos[0] for m in smtp.messages) == Counter(n.recipient for n in items)
    [ticket] = desk.tickets.values()
    assert [e.action for e in ticket.history] == ["create", "resolve"] and ticket.status == "resolved"
    assert "535" in ticket.history[0].body and "right-password" not in ticket.history[0].body
    assert store.counts() == {("email", "sent"): 5, ("ticket", "sent"): 2}


async def test_a_forward_wall_clock_step_of_six_hours_dead_letters_nothing(
    store: Store,
    twilio: TwilioLab,
    wall: SteppedWall,
) -> None:
    """Notices waiting for a retry when the wall clock jumps 6 h ahead, and one queued after the
    jump, all go out once the endpoint is back; none is filed as older than max_age (1 h)."""
    clock = AnchoredClock()
    waiting = [sms(i) for i in range(10)]
    await twilio.down()
    queue(store, waiting, now=clock())
    policy = replace(FAST, max_age=3600.0, down_after=1_000)  # per-item retries, no outage hold
    box = Outbox(store, {"sms": sms_for(twilio)}, {"sms": policy}, clock=clock, rng=random.Random(1))
    runner = asyncio.create_task(box.run())
    await until(lambda: box.counts["sms"].failed >= 10, 5, "every notice to fail once")
    wall.step = 6 * 3600.0
    later = sms(99)
    queue(store, [later], now=clock())
    await twilio.up()
    await until(lambda: store.depth() == 0, 5, "the notices to go out")
    await stop(box, runner)
    assert store.counts() == {("sms", "sent"): 11}
    assert Counter(m.body for m in twilio.messages) == Counter(n.body for n in [*waiting, later])


async def test_a_backward_wall_clock_step_of_three_hours_stalls_no_retry(
    store: Store,
    twilio: TwilioLab,
    wall: SteppedWall,
) -> None:
    """Retries due within a second when the wall clock jumps 3 h back go out within seconds."""
    clock = AnchoredClock()
    items = [sms(i) for i in range(5)]
    queue(store, items, now=clock())
    twilio.fail_next(5, status=503)
    policy = replace(FAST, base_backoff=1.0, max_backoff=1.0, down_after=1_000)
    box = Outbox(store, {"sms": sms_for(twilio)}, {"sms": policy}, clock=clock, rng=random.Random(2))
    runner = asyncio.create_task(box.run())
    await until(lambda: box.counts["sms"].failed >= 5, 5, "every notice to fail once")
    wall.step = -3 * 3600.0
    await until(lambda: store.depth() == 0, 5, "the retries, due within a second")
    await stop(box, runner)
    assert Counter(m.body for m in twilio.messages) == Counter(n.body for n in items)


async def test_after_a_backward_wall_step_a_lost_answer_is_still_found_not_resent(
    store: Store,
    twilio: TwilioLab,
    wall: SteppedWall,
) -> None:
    """Our anchored clock runs 3 h ahead of the wall after the step, so Twilio dates the messages
    3 h earlier than our first attempts: the look-up before a re-send must reach back that far."""
    clock = AnchoredClock()
    wall.step = -3 * 3600.0
    items = [sms(i) for i in range(4)]
    queue(store, items, now=clock())
    twilio.delay = 0.5  # accepted, but the answer comes after our timeout
    policy = replace(FAST, concurrency=4, rate=1000, base_backoff=0.05, settle=0.6, outage_probe=0.1, down_after=1_000)
    box = Outbox(store, {"sms": sms_for(twilio, timeout=0.2)}, {"sms": policy}, clock=clock, rng=random.Random(3))
    runner = asyncio.create_task(box.run())
    await until(lambda: store.depth() == 0, 10, "every SMS settled")
    await stop(box, runner)
    assert Counter(m.body for m in twilio.messages) == Counter(n.body for n in items)  # none sent twice
    assert box.counts["sms"].adopted == 4


async def test_a_reload_probes_a_held_channel_at_once_even_when_the_fix_was_at_the_peer(store: Store, twilio: TwilioLab) -> None:
    items = [sms(i) for i in range(3)]
    queue(store, items)
    token, twilio.auth_token = twilio.auth_token, "being-rotated"
    box = Outbox(store, {"sms": sms_for(twilio, token=token)}, {"sms": replace(FAST, probe_every=600.0)}, rng=random.Random(6))
    runner = asyncio.create_task(box.run())
    await until(lambda: box.holds, 5, "the hold")
    twilio.auth_token = token  # the rotation was undone at Twilio
    box.probe_held()
    await until(lambda: store.depth() == 0, 5, "the held SMS, long before the next probe")
    await stop(box, runner)
    assert Counter(m.body for m in twilio.messages) == Counter(n.body for n in items) and not box.holds
