"""The generic HTTP SMS gateway notifier against lab/sms_gateway.py on loopback, and through the outbox."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import AsyncIterator

import pytest

from lab.sms_gateway import SmsGateway
from monitord.model import Notification, Secret
from monitord.outbox import Outbox
from monitord.store import Store
from notifiers.base import ChannelError, DeliveryError
from notifiers.sms_http import Gateway, GatewayAuth, HttpSms
from tests.outbox_fixtures import FAST, drain, store  # noqa: F401  (fixtures)

PASSWORD = "gw-pass-4f9a1c"
FIELDS = {"to": "gsmno", "from": "msgheader", "text": "message", "username": "usercode", "password": "password"}
TEXT = "Bölgenizde (Yenimahalle Santrali) internet arızası var, ekiplerimiz çalışıyor. Takip no: ARZ-2026-000123"


def sms(n: int, body: str = TEXT) -> Notification:
    return Notification(f"ARZ-2026-000123/sms/+9053200000{n:02d}/outage", "sms", f"+9053200000{n:02d}", "outage", "", body)


def gateway(url: str, *, body: str = "form", auth: str = "fields", password: str = PASSWORD) -> HttpSms:
    return HttpSms(
        Gateway(
            url,
            "ISPNET",
            body=body,  # type: ignore[arg-type]
            fields=FIELDS,
            params={"encoding": "TR"},
            auth=GatewayAuth(auth, "isp-user", Secret(password, "env:GW")),  # type: ignore[arg-type]
        ),
        timeout=5,
    )


@pytest.fixture
async def lab() -> AsyncIterator[SmsGateway]:
    async with SmsGateway(username="isp-user", password=PASSWORD) as g:
        yield g


@pytest.mark.parametrize(("body", "auth"), [("form", "fields"), ("json", "fields"), ("form", "basic"), ("json", "basic")])
async def test_the_gateway_gets_its_own_field_names(lab: SmsGateway, body: str, auth: str) -> None:
    notifier = gateway(lab.url, body=body, auth=auth)
    ref = await notifier.send(sms(1))
    await notifier.close()
    [got] = lab.messages
    assert ref == "GW000001"
    assert got.content_type == ("application/json" if body == "json" else "application/x-www-form-urlencoded")
    expected = {"gsmno": "+905320000001", "msgheader": "ISPNET", "message": TEXT, "encoding": "TR"}
    if auth == "fields":
        expected |= {"usercode": "isp-user", "password": PASSWORD}
        assert got.authorization is None
    else:
        assert got.authorization is not None and got.authorization.startswith("Basic ")
    assert got.fields == expected
    assert got.segments == 1, "with the Turkish shift tables the 106-character Turkish text is one segment"


async def test_refused_credentials_hold_the_channel_and_are_never_quoted(lab: SmsGateway) -> None:
    notifier = gateway(lab.url, password="wrong-secret-77")
    with pytest.raises(ChannelError) as caught:
        await notifier.send(sms(1))
    await notifier.close()
    assert caught.value.cause == caught.value.kind == "credentials" and "check the gateway credentials" in caught.value.reason
    assert "wrong-secret-77" not in caught.value.reason and "<redacted>" in caught.value.reason  # the lab echoes it
    assert lab.messages == []


async def test_statuses_say_whether_to_retry(lab: SmsGateway) -> None:
    notifier = gateway(lab.url)
    lab.fail_next(503, retry_after="7")
    with pytest.raises(DeliveryError) as busy:
        await notifier.send(sms(1))
    assert busy.value.retryable and busy.value.retry_after == 7 and busy.value.kind == "server_error"
    with pytest.raises(DeliveryError) as refused:
        await notifier.send(sms(2, body=""))  # the lab refuses an empty message: 400
    assert not refused.value.retryable and "HTTP 400" in refused.value.reason and refused.value.kind == "rejected"
    await notifier.close()
    closed = HttpSms(Gateway(f"http://127.0.0.1:{lab.port + 1 if lab.port < 65535 else 1}/sms", "ISPNET"), timeout=2)
    with pytest.raises(DeliveryError) as unreachable:
        await closed.send(sms(3))
    await closed.close()
    assert unreachable.value.retryable and unreachable.value.kind == "unreachable"


async def test_a_plain_text_answer_is_the_reference(lab: SmsGateway) -> None:
    notifier = HttpSms(
        Gateway(
            lab.url, "ISPNET", reference="nonesuch", fields=FIELDS, auth=GatewayAuth("basic", "isp-user", Secret(PASSWORD, "t"))
        )
    )
    ref = await notifier.send(sms(1))
    await notifier.close()
    assert ref.startswith("{") and '"GW000001"' in ref  # no such key: the whole answer


async def test_twenty_notices_through_the_outbox_cost_twenty_segments(
    lab: SmsGateway,
    store: Store,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    items = [sms(n) for n in range(20)]
    store.commit_step(None, [], [(n, None) for n in items], time.time())
    lab.fail_next(500, count=2)
    box = Outbox(store, {"sms": gateway(lab.url)}, {"sms": FAST}, rng=random.Random(3))
    with caplog.at_level(logging.DEBUG):
        await drain(box, store, timeout=20, done=lambda: store.depth("sms") == 0)
    assert sorted(m.fields["gsmno"] for m in lab.messages) == sorted(n.recipient for n in items)
    assert box.counts["sms"].segments == sum(m.segments for m in lab.messages) == 20
    assert PASSWORD not in caplog.text
