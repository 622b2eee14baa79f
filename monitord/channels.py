"""The notifier channels a config asks for, and how the outbox paces and retries each."""

from __future__ import annotations

from dataclasses import replace

from monitord.config import Config
from monitord.config.model import SmsConfig
from monitord.outbox import ChannelPolicy
from notifiers.base import Notifier


def build_notifiers(config: Config) -> dict[str, Notifier]:
    """An explicit registry: channel -> notifier, from the config's notifiers section."""
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
            built["ticket"] = RequestTracker(t.url, t.queue or "General", token=t.token, username=t.username, password=t.password)
        else:
            built["ticket"] = WebhookTickets(t.url, t.token, t.body_template)
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
    sections = {"sms": n.sms, "email": n.email, "ticket": n.tickets}
    policies = {
        channel: ChannelPolicy(
            probe_every=n.hold_probe, max_backoff=section.retry.max_backoff, outage_probe=section.retry.probe_every
        )
        for channel, section in sections.items()
        if section is not None
    }
    if n.sms:
        policies["sms"] = replace(policies["sms"], rate=n.sms.rate, concurrency=n.sms.sends_in_flight)
    return policies
