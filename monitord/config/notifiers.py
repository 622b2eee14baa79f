"""The notifiers section: SMS, e-mail, tickets, and who hears of a silent modem."""

from __future__ import annotations

from typing import Any

from monitord import duration as durations
from monitord.config import layout
from monitord.config.decoder import Decoder
from monitord.config.model import CpeNotices, EmailConfig, NotifiersConfig, RetryConfig, SmsConfig, TicketConfig
from monitord.config.values import (
    account_sid,
    boolean,
    choice,
    default_of,
    duration,
    email,
    integer,
    number,
    parse_duration,
    phone,
    positive_duration,
    quiet_hours,
    text,
    url,
)
from monitord.yamlload import KeyPath


def read_notifiers(d: Decoder, root: dict[Any, Any]) -> NotifiersConfig | None:
    section = d.section(root, (), "notifiers", "notifiers")
    if section is None:
        return None
    before = len(d.problems)
    sms = _sms(d, section) if section.get("sms") is not None else None
    mail = _email(d, section) if section.get("email") is not None else None
    tickets = _tickets(d, section) if section.get("tickets") is not None else None
    hold_probe = d.get(section, ("notifiers",), "hold_probe", positive_duration, default_of(NotifiersConfig, "hold_probe"))
    cpe = _cpe_notices(d, section)
    return NotifiersConfig(sms, mail, tickets, hold_probe, cpe) if len(d.problems) == before else None


def _cpe_notices(d: Decoder, parent: dict[Any, Any]) -> CpeNotices:
    """The defaults when the section is at fault: the problem is reported, the notifiers refused."""
    cpe = d.validated(layout.Cpe, parent.get("cpe"), ("notifiers", "cpe"))
    return CpeNotices() if cpe is None else CpeNotices(**cpe.model_dump())


def _sms(d: Decoder, parent: dict[Any, Any]) -> SmsConfig | None:
    path = ("notifiers", "sms")
    sms = d.section(parent, path[:1], "sms", "notifiers.sms")
    if sms is None:
        return None
    before = len(d.problems)
    d.get(sms, path, "kind", choice(("twilio",)), "twilio")
    values = dict(
        account_sid=d.get(sms, path, "account_sid", account_sid),
        auth_token=d.secret(sms, path, "auth_token", required=True),
        from_=d.get(sms, path, "from", phone),
        base_url=d.get(sms, path, "base_url", url, default_of(SmsConfig, "base_url")),
        rate=d.get(sms, path, "rate", number(0.01, 1000.0), default_of(SmsConfig, "rate")),
        quiet_hours=d.get(sms, path, "quiet_hours", quiet_hours, None),
        update_after=d.get(sms, path, "update_after", duration(durations.REMINDER), default_of(SmsConfig, "update_after")),
        notify_degradation=d.get(sms, path, "notify_degradation", boolean, False),
        non_mobile=d.get(sms, path, "non_mobile", choice(("error", "skip")), "error"),
        retry=_retry(d, sms, path),
    )
    return SmsConfig(**values) if len(d.problems) == before else None


def _email(d: Decoder, parent: dict[Any, Any]) -> EmailConfig | None:
    path = ("notifiers", "email")
    mail = d.section(parent, path[:1], "email", "notifiers.email")
    if mail is None:
        return None
    before = len(d.problems)
    tls = d.get(mail, path, "tls", boolean, False)
    starttls = d.get(mail, path, "starttls", boolean, not tls)
    if tls and starttls:
        d.report(
            path + ("starttls",),
            "starttls and tls cannot both be true",
            "tls: true is implicit TLS (port 465); starttls upgrades a plain connection (587)",
        )
    username = d.get(mail, path, "username", text, None)
    password = d.secret(mail, path, "password")
    if ("username" in mail) != ("password" in mail):
        d.report(
            path + ("password" if "username" in mail else "username",),
            "missing required key",
            "username and password go together",
        )
    noc = tuple(
        address for item_path, raw in d.items(mail, path, "noc") if (address := d.check(raw, item_path, email)) is not None
    )
    values = dict(
        host=d.get(mail, path, "host", text),
        from_=d.get(mail, path, "from", email),
        port=d.get(mail, path, "port", integer(1, 65535), 465 if tls else 587),
        starttls=starttls,
        tls=tls,
        username=username,
        password=password,
        noc=noc,
        retry=_retry(d, mail, path),
    )
    return EmailConfig(**values) if len(d.problems) == before else None


def _tickets(d: Decoder, parent: dict[Any, Any]) -> TicketConfig | None:
    path = ("notifiers", "tickets")
    tickets = d.section(parent, path[:1], "tickets", "notifiers.tickets")
    if tickets is None:
        return None
    before = len(d.problems)
    kind = d.get(tickets, path, "kind", choice(("rt", "webhook")))
    token = d.secret(tickets, path, "token")
    username = d.get(tickets, path, "username", text, None)
    password = d.secret(tickets, path, "password")
    if ("username" in tickets) != ("password" in tickets):
        d.report(
            path + ("password" if "username" in tickets else "username",),
            "missing required key",
            "username and password go together",
        )
    if "token" in tickets and "username" in tickets:
        d.report(path + ("username",), "give either token or username and password, not both")
    queue = d.get(tickets, path, "queue", text, None)
    if kind == "rt":
        if queue is None and "queue" not in tickets:
            d.report(path + ("queue",), "missing required key", "the RT queue new tickets go to")
        if "token" not in tickets and "username" not in tickets:
            d.report(path + ("token",), "missing required key", "RT needs token, or username and password")
        if "body_template" in tickets:
            d.report(path + ("body_template",), "body_template is for kind webhook")
    if kind == "webhook" and "queue" in tickets:
        d.report(path + ("queue",), "queue is for kind rt")
    values = dict(
        kind=kind,
        url=d.get(tickets, path, "url", url),
        queue=queue,
        token=token,
        username=username,
        password=password,
        body_template=d.get(tickets, path, "body_template", text, None),
        retry=_retry(d, tickets, path),
        comment_every=d.get(tickets, path, "comment_every", parse_duration, default_of(TicketConfig, "comment_every")),
    )
    return TicketConfig(**values) if len(d.problems) == before else None


def _retry(d: Decoder, parent: dict[Any, Any], path: KeyPath) -> RetryConfig:
    """The defaults when the section is at fault: the problem is reported, the channel refused."""
    retry = d.validated(layout.Retry, parent.get("retry"), path + ("retry",))
    return RetryConfig() if retry is None else RetryConfig(**retry.model_dump())
