from __future__ import annotations

import socket
from typing import Any, Literal

import pytest

from lab.smtp import SmtpSink
from monitord.model import Notification, Secret
from notifiers.base import ChannelError, DeliveryError
from notifiers.email import SmtpEmail, message_id

PASSWORD = "s3cret-smtp-pass"
ITEM = Notification(
    "ARZ-2026-000123/email/cagri@example.com/outage",
    "email",
    "cagri@example.com",
    "outage",
    "İnternet arızası - takip no ARZ-2026-000123",
    "Sayın Çağrı Öztürk,\n\nŞişli bölgesinde arıza var.\n",
    "ARZ-2026-000123",
)


def client(sink: SmtpSink, **kw: Any) -> SmtpEmail:
    return SmtpEmail(sink.host, sink.port, from_="monitord@isp.example", timeout=5, **kw)


async def failure(notifier: SmtpEmail) -> DeliveryError:
    with pytest.raises(DeliveryError) as e:
        await notifier.send(ITEM)
    return e.value


async def test_plain_delivery_is_proper_utf8_mime_with_a_key_derived_message_id() -> None:
    async with SmtpSink() as sink:
        ref = await client(sink).send(ITEM)
        assert ref == "OK queued as lab-1"
        [got] = sink.messages
    assert got.rcpt_tos == ("cagri@example.com",) and got.mail_from == "monitord@isp.example"
    msg = got.message
    assert msg["Subject"] == ITEM.subject
    assert msg["Message-ID"] == message_id(ITEM.key, "monitord@isp.example")
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
    assert msg.get_content().replace("\r\n", "\n") == ITEM.body
    assert not got.tls and got.user is None


async def test_the_subject_is_encoded_on_the_wire() -> None:
    async with SmtpSink() as sink:
        await client(sink).send(ITEM)
        raw = sink.messages[0].message.as_bytes(policy=sink.messages[0].message.policy.clone(cte_type="7bit"))
    assert b"=?utf-8?" in raw.lower()


async def test_the_same_notification_gets_the_same_message_id() -> None:
    async with SmtpSink() as sink:
        notifier = client(sink)
        await notifier.send(ITEM)
        await notifier.send(ITEM)
        ids = {m.message["Message-ID"] for m in sink.messages}
    assert len(sink.messages) == 2 and len(ids) == 1


async def test_starttls_and_auth() -> None:
    async with SmtpSink(starttls=True, username="noc", password=PASSWORD) as sink:
        await client(
            sink, starttls=True, username="noc", password=Secret(PASSWORD, "env:SMTP"), tls_context=sink.client_tls_context()
        ).send(ITEM)
        [got] = sink.messages
    assert got.tls and got.user == "noc"


async def test_implicit_tls() -> None:
    async with SmtpSink(tls=True) as sink:
        await client(sink, tls=True, tls_context=sink.client_tls_context()).send(ITEM)
        assert sink.messages[0].tls


@pytest.mark.parametrize(
    ("code", "stage", "retryable"),
    [(421, "data", True), (451, "rcpt", True), (550, "data", False), (550, "rcpt", False), (554, "data", False)],
)
async def test_smtp_replies_decide_whether_to_retry(code: int, stage: Literal["rcpt", "data"], retryable: bool) -> None:
    async with SmtpSink() as sink:
        notifier = client(sink)
        sink.fail_next(code, stage=stage)
        error = await failure(notifier)
        assert error.retryable is retryable and str(code) in error.reason
        assert error.kind == ("server_error" if retryable else "rejected")
        await notifier.send(ITEM)
        assert len(sink.messages) == 1


async def test_wrong_password_holds_the_channel_and_never_shows_the_password() -> None:
    async with SmtpSink(starttls=True, username="noc", password="right-one") as sink:
        error = await failure(
            client(
                sink, starttls=True, username="noc", password=Secret(PASSWORD, "file:/x"), tls_context=sink.client_tls_context()
            )
        )
        assert sink.auth_failures >= 1 and sink.messages == []
    assert isinstance(error, ChannelError) and error.cause == "credentials" and "535" in error.reason
    assert all(PASSWORD not in text for text in (error.reason, str(error), repr(error), repr(error.args)))


async def test_an_untrusted_certificate_holds_the_channel() -> None:
    async with SmtpSink(starttls=True) as sink:
        error = await failure(client(sink, starttls=True))
    assert isinstance(error, ChannelError) and error.cause == "config" and "certificate" in error.reason


async def test_connection_refused_is_retryable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    error = await failure(
        SmtpEmail(
            "127.0.0.1", port, from_="monitord@isp.example", timeout=2, username="noc", password=Secret(PASSWORD, "env:SMTP")
        )
    )
    assert error.retryable and error.kind == "unreachable" and PASSWORD not in error.reason


async def test_auth_without_tls_holds_the_channel() -> None:
    async with SmtpSink(starttls=True, username="noc", password=PASSWORD) as sink:
        error = await failure(client(sink, username="noc", password=Secret(PASSWORD, "env:SMTP")))
    assert isinstance(error, ChannelError) and "AUTH" in error.reason and PASSWORD not in error.reason
