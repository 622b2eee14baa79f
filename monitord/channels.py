"""The notifiers and their pacing, from the config's notifiers section (one explicit registry),
and the loop that keeps their outbox delivering through refused writes and lost leases."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace

from monitord.config import Config
from monitord.config.model import AlertmanagerConfig, EmailConfig, SmsConfig, TicketConfig
from monitord.outbox import ChannelPolicy, Outbox
from monitord.pipeline import WRITE_RETRY, WRITE_RETRY_MAX
from monitord.store import LeaseLost
from notifiers.base import Notifier

log = logging.getLogger("monitord")

ALERT_RATE = 50.0  # Alertmanager pushes per second: waves 20 ms apart (at 10/s a push waited up to 100 ms for its wave: bench/alertmanager.py)


def channel_sections(config: Config) -> dict[str, SmsConfig | EmailConfig | TicketConfig | AlertmanagerConfig | None]:
    """Each outbox channel's config section (None: not configured)."""
    n = config.notifiers
    return {"sms": n.sms, "email": n.email, "ticket": n.tickets, "alert": n.alertmanager}


def build_notifiers(config: Config) -> dict[str, Notifier]:
    """An explicit registry: channel -> notifier, from the config's notifiers section."""
    from notifiers.alertmanager import AlertmanagerAlerts
    from notifiers.email import SmtpEmail
    from notifiers.rt import RequestTracker
    from notifiers.webhook import WebhookTickets

    n = config.notifiers
    built: dict[str, Notifier] = {}
    if n.sms:
        built["sms"] = _sms(n.sms)
    if n.email:
        e = n.email
        built["email"] = SmtpEmail(
            e.host, e.port, from_=e.from_, starttls=e.starttls, tls=e.tls, username=e.username, password=e.password
        )
    if n.tickets:
        t = n.tickets
        if t.kind == "rt":
            built["ticket"] = RequestTracker(
                t.url, t.queue or "General", token=t.token, username=t.username, password=t.password, routed=n.routed_queues
            )
        else:
            built["ticket"] = WebhookTickets(t.url, t.token, t.body_template)
    if n.alertmanager:
        a = n.alertmanager
        built["alert"] = AlertmanagerAlerts(
            a.url, resend=a.resend, timeout=a.timeout, token=a.token, username=a.username, password=a.password
        )
    return built


def _sms(sms: SmsConfig) -> Notifier:
    from notifiers.sms import TwilioSms
    from notifiers.sms_http import Gateway, GatewayAuth, HttpSms

    if sms.kind == "twilio":
        assert sms.account_sid and sms.auth_token and sms.from_  # load_config requires them for twilio
        return TwilioSms(sms.account_sid, sms.auth_token, sms.from_, sms.base_url)
    assert sms.url and sms.sender  # load_config requires them for http
    secret = sms.token if sms.auth == "bearer" else sms.password
    auth = GatewayAuth(sms.auth, sms.username, secret)  # type: ignore[arg-type]  # choice_of checked it
    gateway = Gateway(sms.url, sms.sender, sms.encoding, sms.body, sms.fields, sms.params, sms.reference, auth)  # type: ignore[arg-type]
    return HttpSms(gateway)


def channel_policies(config: Config) -> dict[str, ChannelPolicy]:
    n = config.notifiers
    sections = channel_sections(config)
    policies = {
        channel: ChannelPolicy(
            probe_every=n.hold_probe, max_backoff=section.retry.max_backoff, outage_probe=section.retry.probe_every
        )
        for channel, section in sections.items()
        if section is not None
    }
    if n.sms:
        policies["sms"] = replace(policies["sms"], rate=n.sms.rate, concurrency=n.sms.sends_in_flight)
    if n.alertmanager:
        policies["alert"] = replace(policies["alert"], rate=ALERT_RATE)
    return policies


async def deliver(outbox: Outbox, stop: asyncio.Event) -> None:
    """Run the outbox until `stop`; when the state refuses one of its writes (a full disk), or
    one of several workers lost its lease (LeaseLost), start it again after a pause instead of
    letting the error stop the process. An item whose `sent` mark was refused stays `sending`
    and is reconciled with the peer, as after a crash."""
    pause = WRITE_RETRY
    while True:
        why = None
        try:
            await outbox.run()
        except* outbox.store_errors as errors:
            why = f"the state file refused a write ({errors.exceptions[0]})"
        except* LeaseLost as errors:
            why = str(errors.exceptions[0])
        if why is None or stop.is_set():
            return
        log.error("delivery paused: %s; trying again in %.0f s", why, pause)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(pause):
                await stop.wait()
        if stop.is_set():
            return
        pause = min(WRITE_RETRY_MAX, pause * 2)
