"""A gateway that keeps failing (5xx, 429, refused) takes the channel down: one probe at a time
instead of a backoff clock per notice, one log line when it fails and one when it works again,
then the backlog drains at the channel's rate. Real peer: the local Twilio."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from lab.twilio import TwilioLab
from monitord.channels import channel_policies
from monitord.config import load_config
from monitord.daemon import Daemon
from monitord.demo import until
from monitord.model import ChannelHold
from monitord.outbox import ChannelPolicy, Outbox
from monitord.restart import needs_restart
from monitord.store import Store
from tests.outbox_fixtures import FAST, queue, sms, sms_for, store, twilio  # noqa: F401  (fixtures)
from tests.test_config import BASE, ENV, line_of, problems_of, write
from tests.test_outbox_hold import held_metric, stop


async def test_a_twilio_outage_probes_one_notice_at_a_time_and_the_backlog_drains_at_the_rate(
    store: Store, twilio: TwilioLab
) -> None:
    """200 outage SMS at 100/s meet 3 s of HTTP 500: Twilio sees a handful of attempts, not one
    clock per notice, and the last SMS goes out within backlog / rate (+ a probe, + slack) of recovery."""
    count, rate = 200, 100.0
    policy = ChannelPolicy(concurrency=8, rate=rate, settle=0.5, outage_probe=0.5)  # backoff: 5 s doubling up to 60 s
    items = [sms(i) for i in range(count)]
    recovered = twilio.fail_for(3.0)
    queue(store, items)
    box = Outbox(store, {"sms": sms_for(twilio)}, {"sms": policy}, rng=random.Random(11))
    runner = asyncio.create_task(box.run())
    await asyncio.sleep(recovered - time.time())
    during = sum(twilio.requests.values())
    await until(lambda: store.depth() == 0, 20, "the backlog")
    await stop(box, runner)

    assert Counter(m.body for m in twilio.messages) == Counter(n.body for n in items)  # each exactly once
    assert store.counts() == {("sms", "sent"): count}
    assert during <= policy.concurrency + 3.0 / policy.outage_probe + 2
    last = max(m.at for m in twilio.messages)
    assert last - recovered <= count / rate + policy.outage_probe + 1.5


async def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends_with_counts(
    store: Store, twilio: TwilioLab, caplog: pytest.LogCaptureFixture
) -> None:
    items = [sms(i) for i in range(30)]
    queue(store, items)
    policy = replace(FAST, outage_probe=0.2)
    recovered = twilio.fail_for(1.5, status=503)
    box = Outbox(store, {"sms": sms_for(twilio)}, {"sms": policy}, rng=random.Random(4))
    with caplog.at_level(logging.DEBUG, logger="monitord.outbox"):
        runner = asyncio.create_task(box.run())
        await until(lambda: box.holds, 5, "the channel down")
        assert box.holds["sms"].cause == "unavailable" and held_metric(box, store)[("sms", "unavailable")] == 1
        await asyncio.sleep(recovered - time.time())
        await until(lambda: store.depth() == 0, 5, "the backlog")
        await stop(box, runner)

    assert Counter(m.body for m in twilio.messages) == Counter(n.body for n in items)
    assert held_metric(box, store) == {("sms", ""): 0} and not box.holds
    failed = box.counts["sms"].failed
    assert failed >= policy.down_after + 1
    lines = [r.getMessage() for r in caplog.records]
    [down] = [line for line in lines if line.startswith("channel sms down")]
    assert f"{policy.down_after} attempts in a row failed" in down and "HTTP 503" in down
    assert "30 notices wait, one is tried every 0.2s" in down
    [back] = [line for line in lines if line.startswith("channel sms works again")]
    assert re.search(rf"after [12]s down: {failed} attempts failed, 29 notices go out now at 1000/s", back), back
    assert len(lines) == 2 and twilio.auth_token not in down + back
    assert not any(r.levelno < logging.WARNING for r in caplog.records)


async def test_a_notice_waiting_out_a_long_backoff_goes_with_the_backlog_when_the_gateway_recovers(
    store: Store, twilio: TwilioLab
) -> None:
    """A notice that failed alone earlier waits up to max_backoff; once the channel was down and
    works again, it is due with the rest (after `settle`, for the look-up)."""
    now = time.time()
    queue(store, [sms(0)], now=now)
    [early] = store.items()
    store.claim(early.id, now)
    store.mark_retry(early.id, "twilio HTTP 503", now + 60.0)
    queue(store, [sms(i) for i in range(1, 11)], now=now)
    recovered = twilio.fail_for(1.0)
    box = Outbox(store, {"sms": sms_for(twilio)}, {"sms": replace(FAST, max_backoff=60.0, settle=0.3)}, rng=random.Random(8))
    runner = asyncio.create_task(box.run())
    await until(lambda: store.depth() == 0, 5, "every notice, the long-waiting one too")
    await stop(box, runner)
    assert Counter(m.body for m in twilio.messages) == Counter(sms(i).body for i in range(11))
    assert max(m.at for m in twilio.messages) - recovered < 1.5


async def test_a_few_failures_in_a_row_do_not_take_the_channel_down(store: Store, twilio: TwilioLab) -> None:
    items = [sms(i) for i in range(10)]
    queue(store, items)
    twilio.fail_next(FAST.down_after - 1, status=500)
    box = Outbox(store, {"sms": sms_for(twilio)}, {"sms": replace(FAST, concurrency=1, outage_probe=60.0)}, rng=random.Random(2))
    runner = asyncio.create_task(box.run())
    await until(lambda: store.depth() == 0, 5, "the notices, without a 60 s probe")
    await stop(box, runner)
    assert Counter(m.body for m in twilio.messages) == Counter(n.body for n in items)


def test_retry_settings_per_channel_reach_the_outbox_and_need_a_restart(tmp_path: Path) -> None:
    tuned = BASE.replace(
        '    quiet_hours: "22:00-08:00"\n',
        '    quiet_hours: "22:00-08:00"\n    retry: {max_backoff: 30s, probe_every: 2s}\n',
    )
    config = load_config(write(tmp_path, tuned), ENV)
    assert (config.notifiers.sms.retry.max_backoff, config.notifiers.sms.retry.probe_every) == (30.0, 2.0)
    daemon = Daemon(config)
    try:
        policies = channel_policies(daemon.config)
    finally:
        daemon.store.close()
    assert (policies["sms"].max_backoff, policies["sms"].outage_probe) == (30.0, 2.0)
    assert (policies["email"].max_backoff, policies["email"].outage_probe) == (60.0, 5.0)  # the defaults
    assert (policies["ticket"].max_backoff, policies["ticket"].outage_probe) == (60.0, 5.0)
    assert needs_restart(load_config(write(tmp_path), ENV), config) == ["notifier channels, SMS rate, hold_probe and retry"]


def test_sms_in_flight_follows_the_rate_unless_set(tmp_path: Path) -> None:
    """500 SMS/s through a gateway that answers in 150 ms needs 75 in flight; 4 would cap it at 27/s."""

    def sms_policy(settings: str) -> ChannelPolicy:
        text = BASE.replace('    quiet_hours: "22:00-08:00"\n', f'    quiet_hours: "22:00-08:00"\n{settings}')
        daemon = Daemon(load_config(write(tmp_path, text), ENV))
        try:
            return channel_policies(daemon.config)["sms"]
        finally:
            daemon.store.close()

    assert sms_policy("").concurrency == 4  # the default rate, 1/s
    assert sms_policy("    rate: 500\n").concurrency == 125
    assert sms_policy("    rate: 500\n    in_flight: 40\n").concurrency == 40


@pytest.mark.parametrize(
    ("retry", "key"),
    [
        ("{probe_every: 0s}", "notifiers.sms.retry.probe_every"),
        ("{max_backof: 30s}", "notifiers.sms.retry.max_backof"),
    ],
)
def test_a_bad_retry_setting_is_named_with_its_place(tmp_path: Path, retry: str, key: str) -> None:
    bad = BASE.replace('    quiet_hours: "22:00-08:00"\n', f'    quiet_hours: "22:00-08:00"\n    retry: {retry}\n')
    [problem] = problems_of(write(tmp_path, bad))
    assert (problem.key, problem.line) == (key, line_of(bad, "retry:"))


async def test_a_token_refused_while_the_gateway_was_down_turns_into_a_credentials_hold_told_once(
    store: Store, twilio: TwilioLab
) -> None:
    """No NOC alert for the outage itself; one when the probe finds the token refused."""
    queue(store, [sms(i) for i in range(5)])
    twilio.fail_for(0.5, status=502)
    seen: list[ChannelHold] = []
    box = Outbox(
        store,
        {"sms": sms_for(twilio)},
        {"sms": replace(FAST, outage_probe=0.2, probe_every=0.2)},
        rng=random.Random(9),
        on_hold=lambda hold: seen.append(hold) or [],
    )
    runner = asyncio.create_task(box.run())
    await until(lambda: box.holds, 5, "the channel down")
    assert box.holds["sms"].cause == "unavailable" and seen == []
    twilio.auth_token = "rotated-at-twilio"
    await until(lambda: box.holds["sms"].cause == "credentials", 5, "the credentials hold")
    await stop(box, runner)
    assert [(h.cause, h.released) for h in seen] == [("credentials", False)] and twilio.messages == []
