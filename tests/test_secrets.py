"""No notifier error and no log line holds a secret, whatever the peer does (Alertmanager's
`AssertNotifyLeaksNoSecret`): each notifier meets its lab peer answering 401 or 500 or gone, and
a hostile peer that echoes back the credentials it was sent, or closes the connection."""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import BasicAuth, web

from lab.smtp import SmtpSink
from lab.tickets import TicketDesk
from lab.twilio import TwilioLab
from monitord import logs
from monitord.model import Notification, Secret
from notifiers.alertmanager import AlertmanagerAlerts
from notifiers.base import DeliveryError, Notifier
from notifiers.email import SmtpEmail
from notifiers.rt import RequestTracker
from notifiers.sms import TwilioSms
from notifiers.webhook import WebhookTickets
from tests.outbox_fixtures import FROM, sms

TOKEN = "tok-S3CRET-9c1e77a0b4"
PASSWORD = "pw-S3CRET-31d8e2"
TICKET = Notification(
    "ARZ-2026-000123/ticket/create/0",
    "ticket",
    "ARZ-2026-000123",
    "create",
    "[ARZ-2026-000123] Kesinti",
    "Şişli Santrali",
    "ARZ-2026-000123",
)
MAIL = Notification(
    "ARZ-2026-000123/email/noc@isp.example/outage",
    "email",
    "noc@isp.example",
    "outage",
    "Kesinti",
    "Şişli Santrali",
    "ARZ-2026-000123",
)


class EchoPeer:
    """A hostile HTTP peer: answers `status` with the credentials it was sent in the body (JSON in
    Twilio's and RT's error shape), or closes the connection without answering."""

    def __init__(self) -> None:
        self.status = 401
        self.close = False
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)

    async def __aenter__(self) -> EchoPeer:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        if self.close:
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        auth = request.headers.get("Authorization", "")
        echoed = auth
        if auth.startswith("Basic "):
            echoed += " " + BasicAuth.decode(auth).password
        said = f"you sent {echoed}"
        return web.json_response({"code": 20003, "message": said, "status": self.status, "error": said}, status=self.status)


def shown(error: DeliveryError) -> str:
    """Everything a failure can put in front of a person: its text, and its log lines (JSON and
    plain, traceback included) as the daemon formats them."""
    out = [error.reason, str(error), repr(error)]
    for inner in (logs.JsonFormatter(), logging.Formatter("%(message)s")):
        record = logging.LogRecord(
            "monitord.outbox",
            logging.WARNING,
            __file__,
            1,
            "delivery failed: %s",
            (error.reason,),
            (type(error), error, error.__traceback__),
        )
        out.append(logs.RedactingFormatter(inner).format(record))
    return "\n".join(out)


async def failures(notifier: Notifier, item: Notification, faults: list[Callable[[], Awaitable[None] | None]]) -> list[str]:
    texts = []
    for fault in faults:
        result = fault()
        if result is not None:
            await result
        with pytest.raises(DeliveryError) as caught:
            await notifier.send(item)
        texts.append(shown(caught.value))
    await notifier.close()
    return texts


def assert_no_secret(texts: list[str], *secrets: str) -> None:
    forms = {*secrets, *(base64.b64encode(s.encode()).decode() for s in secrets)}
    for text in texts:
        for form in forms:
            assert form not in text, text


@pytest.fixture
async def echo() -> AsyncIterator[EchoPeer]:
    async with EchoPeer() as peer:
        yield peer


async def test_sms_failures_never_show_the_auth_token(echo: EchoPeer) -> None:
    async with TwilioLab(auth_token="the-lab-expects-another") as lab:
        texts = await failures(
            TwilioSms(lab.account_sid, Secret(TOKEN, "env:T"), FROM, lab.base_url, timeout=2),
            sms(1),
            [
                lambda: None,  # 401: the lab expects another token
                lambda: setattr(lab, "auth_token", TOKEN) or lab.fail_next(1, 500),
                lab.down,
            ],
        )
    # a status as a word: the port of the refused connection in the third text may hold "401"
    assert [bool(re.search(r"\b401\b", t)) for t in texts] == [True, False, False] and re.search(r"\b500\b", texts[1])
    echoed = TwilioSms("AC" + "0" * 32, Secret(TOKEN, "env:T"), FROM, echo.url, timeout=2)
    texts += await failures(
        echoed, sms(1), [lambda: None, lambda: setattr(echo, "status", 500), lambda: setattr(echo, "close", True)]
    )
    assert "you sent" in texts[3] and "<redacted>" in texts[3]
    assert_no_secret(texts, TOKEN)


async def test_webhook_failures_never_show_the_token(echo: EchoPeer) -> None:
    async with TicketDesk(token="the-desk-expects-another") as desk:
        texts = await failures(
            WebhookTickets(desk.url, Secret(TOKEN, "env:T"), timeout=2),
            TICKET,
            [
                lambda: None,
                lambda: desk.fail_next(500),
                desk.stop,
            ],
        )
    assert "401" in texts[0] and "500" in texts[1] and "cannot reach" in texts[2]
    texts += await failures(
        WebhookTickets(echo.url, Secret(TOKEN, "env:T"), timeout=2),
        TICKET,
        [
            lambda: None,
            lambda: setattr(echo, "status", 500),
            lambda: setattr(echo, "close", True),
        ],
    )
    assert "you sent Bearer <redacted>" in texts[3]
    assert_no_secret(texts, TOKEN)


@pytest.mark.parametrize("credentials", ["token", "password"])
async def test_rt_failures_never_show_the_token_or_password(echo: EchoPeer, credentials: str) -> None:
    def notifier() -> RequestTracker:
        if credentials == "token":
            return RequestTracker(echo.url, "General", token=Secret(TOKEN, "env:T"), timeout=2)
        return RequestTracker(echo.url, "General", username="monitord", password=Secret(PASSWORD, "env:P"), timeout=2)

    texts = await failures(
        notifier(),
        TICKET,
        [
            lambda: setattr(echo, "status", 500),
            lambda: setattr(echo, "status", 403),
            lambda: setattr(echo, "close", True),
        ],
    )
    assert "you sent" in texts[0] and "you sent" in texts[1] and "unreachable" in texts[2]
    assert_no_secret(texts, TOKEN, PASSWORD, f"monitord:{PASSWORD}")


async def test_email_failures_never_show_the_password() -> None:
    sink = await SmtpSink(username="monitord", password="the-sink-expects-another").start()
    notifier = SmtpEmail(
        sink.host, sink.port, from_="monitord@isp.example", username="monitord", password=Secret(PASSWORD, "env:P"), timeout=2
    )
    texts = await failures(
        notifier,
        MAIL,
        [
            lambda: None,  # 535: authentication refused
            lambda: setattr(sink, "password", PASSWORD) or sink.fail_next(421),
            lambda: sink.fail_next(554),
            sink.stop,
        ],
    )
    assert "535" in texts[0] and "421" in texts[1] and "554" in texts[2] and "cannot reach" in texts[3]
    assert sink.auth_failures >= 1
    assert_no_secret(texts, PASSWORD, f"\0monitord\0{PASSWORD}")


@pytest.mark.parametrize("credentials", ["token", "password"])
async def test_alertmanager_failures_never_show_the_token_or_password(echo: EchoPeer, credentials: str) -> None:
    secret = (
        {"token": Secret(TOKEN, "env:T")}
        if credentials == "token"
        else {"username": "monitord", "password": Secret(PASSWORD, "env:P")}
    )
    alert = Notification("ARZ-2026-000123/alert/opened", "alert", "ARZ-2026-000123", "firing", "", '{"labels": {"a": "b"}}')
    texts = await failures(
        AlertmanagerAlerts(echo.url, timeout=2, **secret),  # type: ignore[arg-type]
        alert,
        [
            lambda: None,  # 401
            lambda: setattr(echo, "status", 500),
            lambda: setattr(echo, "close", True),
        ],
    )
    assert "you sent <redacted>" in texts[0] and "you sent" in texts[1] and "cannot reach" in texts[2]
    assert_no_secret(texts, TOKEN, PASSWORD, f"monitord:{PASSWORD}")
