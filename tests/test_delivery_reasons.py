"""Why a delivery failed, as the metrics count it: the bounded reason each notifier error carries,
and the `reason` label of monitord_notifications_failed_total and _dead_total, read from the
collector over the real outbox sending to a real local SMS gateway (lab/sms_gateway.py)."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from types import SimpleNamespace
from typing import get_args

import pytest

from lab.sms_gateway import SmsGateway
from monitord.demo import until
from monitord.metrics import DEAD_HELP, FAILED_HELP, DaemonCollector
from monitord.model import ChannelCause, DeadReason, Notification, RetryReason
from monitord.outbox import Outbox
from monitord.store import Store
from notices.templates import mask_phone
from notifiers.base import ChannelError, DeliveryError, connection_failure, http_failure
from tests.outbox_fixtures import FAST, drain, queue, store  # noqa: F401  (fixtures)
from tests.test_outbox_hold import stop
from tests.test_sms_http import gateway, lab, sms  # noqa: F401  (fixtures)

Series = dict[tuple[str, str, str], float]  # (metric, channel, reason) -> value


@pytest.mark.parametrize(
    ("status", "retryable", "kind"),
    [
        (429, True, "rate_limited"),
        (500, True, "server_error"),
        (503, True, "server_error"),
        (401, True, "credentials"),
        (407, True, "credentials"),
        (403, True, "forbidden"),
        (400, False, "rejected"),
        (404, False, "rejected"),
        (422, False, "rejected"),
    ],
)
def test_an_http_status_names_its_reason(status: int, retryable: bool, kind: str) -> None:
    error = http_failure(status, f"HTTP {status}")
    assert (error.retryable, error.kind) == (retryable, kind)
    assert isinstance(error, ChannelError) == (status in (401, 403, 407))


@pytest.mark.parametrize("cause", get_args(ChannelCause))
def test_a_refused_channel_fails_for_its_cause(cause: ChannelCause) -> None:
    assert ChannelError("refused", cause=cause).kind == cause


def test_an_error_without_a_reason_falls_back_on_what_its_retry_says() -> None:
    assert DeliveryError("x", retryable=True).kind == "other"
    assert DeliveryError("x", retryable=False).kind == "rejected"
    assert DeliveryError("x", retryable=True, kind="timeout").kind == "timeout"
    assert connection_failure(TimeoutError()) == "timeout"
    assert connection_failure(ConnectionRefusedError()) == connection_failure(OSError()) == "unreachable"


def test_each_metric_names_every_reason_it_may_show_in_its_help() -> None:
    assert [r for r in get_args(RetryReason) if r not in FAILED_HELP] == []
    assert [r for r in get_args(DeadReason) if r not in DEAD_HELP] == []


def failures(box: Outbox) -> Series:
    view = SimpleNamespace(clock=time.time, delivery=box.delivery)
    return {
        (s.name, s.labels["channel"], s.labels["reason"]): s.value
        for family in DaemonCollector._outbox(view)  # type: ignore[arg-type]
        for s in family.samples
        if family.name in ("monitord_notifications_failed", "monitord_notifications_dead")
    }


def nonzero(series: Series) -> Series:
    return {key: value for key, value in series.items() if value}


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but never listening: a connection to it is refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


async def test_every_reason_is_exported_at_zero_from_the_start(lab: SmsGateway, store: Store) -> None:  # noqa: F811
    box = Outbox(store, {"sms": gateway(lab.url)}, {"sms": FAST})
    series = failures(box)
    assert {r for (name, _, r) in series if name.endswith("failed_total")} == set(get_args(RetryReason))
    assert {r for (name, _, r) in series if name.endswith("dead_total")} == set(get_args(DeadReason))
    assert nonzero(series) == {}


async def test_a_503_is_a_server_error_and_a_400_a_rejected_dead_letter(lab: SmsGateway, store: Store) -> None:  # noqa: F811
    queue(store, [sms(1), sms(2, body="")])  # the lab refuses an empty text with 400
    lab.fail_next(503)
    box = Outbox(store, {"sms": gateway(lab.url)}, {"sms": FAST}, rng=random.Random(5))
    await drain(box, store, timeout=10)
    assert [m.fields["gsmno"] for m in lab.messages] == [sms(1).recipient]
    assert nonzero(failures(box)) == {
        ("monitord_notifications_failed_total", "sms", "server_error"): 1,
        ("monitord_notifications_dead_total", "sms", "rejected"): 1,
    }


async def test_a_refused_connection_is_unreachable(closed_port: int, store: Store) -> None:  # noqa: F811
    queue(store, [sms(1)])
    box = Outbox(store, {"sms": gateway(f"http://127.0.0.1:{closed_port}/sms")}, {"sms": FAST}, rng=random.Random(6))
    runner = asyncio.create_task(box.run())
    await until(lambda: box.counts["sms"].failed >= 2, 10, "two refused attempts")
    await stop(box, runner)
    failed = box.counts["sms"].failed
    assert nonzero(failures(box)) == {("monitord_notifications_failed_total", "sms", "unreachable"): failed}


async def test_a_notice_past_its_max_age_is_an_expired_dead_letter(lab: SmsGateway, store: Store) -> None:  # noqa: F811
    queue(store, [sms(1)], now=time.time() - 120)
    queue(store, [sms(2)])
    box = Outbox(store, {"sms": gateway(lab.url)}, {"sms": replace(FAST, max_age=60.0)})
    await drain(box, store, timeout=10)
    assert [m.fields["gsmno"] for m in lab.messages] == [sms(2).recipient]
    assert nonzero(failures(box)) == {("monitord_notifications_dead_total", "sms", "expired"): 1}
    [dead] = [i for i in store.items() if i.notification.recipient == sms(1).recipient]
    assert dead.attempts == 0


class Broken:
    """A notifier with a bug: the outbox must count it apart from the peer's failures."""

    channel = "sms"

    async def send(self, item: Notification) -> str:
        raise KeyError(item.key)

    async def close(self) -> None:
        pass


async def test_an_exception_in_a_notifier_is_a_notifier_bug(store: Store) -> None:  # noqa: F811
    queue(store, [sms(1)])
    box = Outbox(store, {"sms": Broken()}, {"sms": FAST}, rng=random.Random(7))
    runner = asyncio.create_task(box.run())
    await until(lambda: box.counts["sms"].failed >= 1, 10, "the notifier to fail")
    await stop(box, runner)
    assert nonzero(failures(box)) == {("monitord_notifications_failed_total", "sms", "notifier_bug"): box.counts["sms"].failed}


class QuotesTheNumber(Broken):
    """A bug whose message quotes the customer's number, as a gateway's error text often does."""

    async def send(self, item: Notification) -> str:
        return {}[item.recipient]  # type: ignore[no-any-return]


async def test_a_notifier_bug_is_logged_with_its_traceback_once_and_the_number_masked(
    store: Store,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue(store, [sms(1), sms(2), sms(3)])
    box = Outbox(store, {"sms": QuotesTheNumber()}, {"sms": FAST}, rng=random.Random(7))
    with caplog.at_level(logging.ERROR, logger="monitord"):
        runner = asyncio.create_task(box.run())
        await until(lambda: box.counts["sms"].failed >= 6, 10, "every notice to fail twice")
        await stop(box, runner)
    bugs = [r.getMessage() for r in caplog.records if "Traceback (most recent call last)" in r.getMessage()]
    assert len(bugs) == 1, "one traceback for one place, however many notices meet it"
    [told] = bugs
    assert (
        told.startswith("unexpected KeyError in the sms notifier") and "in send" in told and "return {}[item.recipient]" in told
    )
    assert not any(sms(n).recipient in told for n in (1, 2, 3))
    assert any(mask_phone(sms(n).recipient) in told for n in (1, 2, 3)), "the number it quoted, masked"
