"""The notifiers section: SMS, e-mail, tickets, and who hears of a silent modem."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from monitord.config import layout
from monitord.config.decoder import Decoder
from monitord.config.model import (
    AlertmanagerConfig,
    CpeNotices,
    DispatchConfig,
    EmailConfig,
    NotifiersConfig,
    RetryConfig,
    SmsConfig,
    StageSyncConfig,
    TicketConfig,
)
from monitord.config.routes import read_routes
from monitord.model import Secret
from monitord.yamlload import KeyPath
from notifiers.webhook import body_template_problem


def read_notifiers(d: Decoder, root: dict[Any, Any], regions: Collection[str]) -> NotifiersConfig | None:
    """Every key and value checked by the model; the rules between keys and the secrets are
    checked on what was written, so they are reported together with any value at fault."""
    path = ("notifiers",)
    raw = root.get("notifiers")
    notifiers = d.validated(layout.Notifiers, raw, path)
    before = len(d.problems)
    section = raw if isinstance(raw, dict) else {}
    sms, mail, tickets, am = (_written(section, key) for key in ("sms", "email", "tickets", "alertmanager"))
    sms_secrets = _sms_rules(d, sms, path + ("sms",)) if sms is not None else None
    mail_password = _email_rules(d, mail, path + ("email",)) if mail is not None else None
    ticket_secrets = _ticket_rules(d, tickets, path + ("tickets",)) if tickets is not None else None
    am_secrets = _alertmanager_rules(d, am, path + ("alertmanager",)) if am is not None else None
    routes = None if notifiers is None else read_routes(d, notifiers, regions)
    if notifiers is None or routes is None or len(d.problems) > before:
        return None
    return NotifiersConfig(
        sms=None if notifiers.sms is None or sms_secrets is None else _sms(notifiers.sms, *sms_secrets),
        email=None if notifiers.email is None else _email(notifiers.email, mail_password),
        tickets=None if notifiers.tickets is None or ticket_secrets is None else _tickets(notifiers.tickets, *ticket_secrets),
        alertmanager=None
        if notifiers.alertmanager is None or am_secrets is None
        else _alertmanager(notifiers.alertmanager, *am_secrets),
        noc_routes=routes.emails,
        ticket_routes=routes.queues,
        hold_probe=notifiers.hold_probe,
        cpe=CpeNotices(**notifiers.cpe.model_dump()),
    )


def _written(section: dict[Any, Any], key: str) -> dict[Any, Any] | None:
    """A channel's mapping as written; None when absent, or not a mapping (the model reports that)."""
    value = section.get(key)
    return value if isinstance(value, dict) else None


def _retry(retry: layout.Retry) -> RetryConfig:
    return RetryConfig(**retry.model_dump())


_TWILIO_ONLY = ("account_sid", "auth_token", "from", "base_url")
_HTTP_ONLY = ("url", "sender", "body", "fields", "params", "reference", "auth", "username", "password", "token")
_SMS_SECRETS = {"basic": "password", "fields": "password", "bearer": "token"}


def _sms_rules(d: Decoder, sms: dict[Any, Any], path: KeyPath) -> tuple[Secret | None, ...] | None:
    """(auth_token, password, token); which keys each kind takes, and the secret its auth needs."""
    before = len(d.problems)
    kind = sms.get("kind", "twilio")
    kind = kind.strip() if isinstance(kind, str) else None
    if kind == "twilio":
        for key in ("account_sid", "from"):
            if key not in sms:
                d.report(path + (key,), "missing required key", "Twilio needs account_sid, auth_token and from")
        _only(d, sms, path, _HTTP_ONLY, "http")
        if sms.get("encoding") not in (None, "gsm7"):
            d.report(path + ("encoding",), "Twilio encodes gsm7 (GSM-7, else UCS-2)", "set transliterate: true for one segment")
        auth_token = d.secret(sms, path, "auth_token", required=True)
        return (auth_token, None, None) if len(d.problems) == before else None
    if kind == "http":
        if sms.get("url") is None:
            d.report(path + ("url",), "missing required key", "where the gateway takes messages")
        if sms.get("sender") is None:
            d.report(path + ("sender",), "missing required key", "the sender name or number the gateway shows")
        _only(d, sms, path, _TWILIO_ONLY, "twilio")
        auth = sms.get("auth", "none")
        needed = _SMS_SECRETS.get(auth) if isinstance(auth, str) else None
        for key in ("password", "token"):
            if key in sms and key != needed:
                d.report(path + (key,), f"{key} is not used with auth: {auth}")
        if needed is not None and sms.get(needed) is None:
            d.report(path + (needed,), "missing required key", f"auth: {auth} needs {needed}")
        if needed == "password" and sms.get("username") is None:
            d.report(path + ("username",), "missing required key", f"auth: {auth} needs username and password")
        password, token = d.secret(sms, path, "password"), d.secret(sms, path, "token")
        return (None, password, token) if len(d.problems) == before else None
    return None  # the model reports the kind


def _only(d: Decoder, written: dict[Any, Any], path: KeyPath, keys: tuple[str, ...], kind: str) -> None:
    for key in keys:
        if key in written:
            d.report(path + (key,), f"{key} is for kind {kind}")


def _sms(sms: layout.Sms, auth_token: Secret | None, password: Secret | None, token: Secret | None) -> SmsConfig:
    values = sms.model_dump(exclude={"auth_token", "password", "token", "retry", "encoding"})
    encoding = sms.encoding or ("gsm7-turkish" if sms.kind == "http" else "gsm7")
    return SmsConfig(
        **values,
        encoding=encoding,  # type: ignore[arg-type]  # choice_of checked it
        auth_token=auth_token,
        password=password,
        token=token,
        retry=_retry(sms.retry),
    )


def _email_rules(d: Decoder, mail: dict[Any, Any], path: KeyPath) -> Secret | None:
    """The password; tls and starttls exclude each other, username and password go together."""
    if mail.get("tls") is True and mail.get("starttls") is True:
        d.report(
            path + ("starttls",),
            "starttls and tls cannot both be true",
            "tls: true is implicit TLS (port 465); starttls upgrades a plain connection (587)",
        )
    password = d.secret(mail, path, "password")
    _together(d, mail, path)
    return password


def _email(mail: layout.Email, password: Secret | None) -> EmailConfig:
    return EmailConfig(
        host=mail.host,
        from_=mail.from_,
        port=mail.port or (465 if mail.tls else 587),
        starttls=not mail.tls if mail.starttls is None else mail.starttls,
        tls=mail.tls,
        username=mail.username,
        password=password,
        noc=tuple(mail.noc),
        retry=_retry(mail.retry),
    )


def _ticket_rules(d: Decoder, tickets: dict[Any, Any], path: KeyPath) -> tuple[Secret | None, Secret | None] | None:
    """The token and password, or None when they cannot be read; which keys each kind takes."""
    before = len(d.problems)
    token = d.secret(tickets, path, "token")
    password = d.secret(tickets, path, "password")
    _together(d, tickets, path)
    if "token" in tickets and "username" in tickets:
        d.report(path + ("username",), "give either token or username and password, not both")
    kind = tickets.get("kind")
    kind = kind.strip() if isinstance(kind, str) else None
    if kind == "rt":
        if tickets.get("queue") is None:
            d.report(path + ("queue",), "missing required key", "the RT queue new tickets go to")
        if "token" not in tickets and "username" not in tickets:
            d.report(path + ("token",), "missing required key", "RT needs token, or username and password")
        if "body_template" in tickets:
            d.report(path + ("body_template",), "body_template is for kind webhook")
    if kind == "webhook" and "stage_sync" in tickets:
        d.report(
            path + ("stage_sync",),
            "is read from RT only",
            "a webhook helpdesk sets a stage with POST /api/incidents/{tracking}/stage",
        )
    if kind == "webhook" and "queue" in tickets:
        d.report(path + ("queue",), "queue is for kind rt")
    _dispatch_rules(d, kind, tickets.get("dispatch"), path + ("dispatch",))
    template = tickets.get("body_template")
    if kind == "webhook" and isinstance(template, str) and (problem := body_template_problem(template)) is not None:
        d.report(path + ("body_template",), problem.removeprefix("webhook body_template: "))
    return (token, password) if len(d.problems) == before else None


def _dispatch_rules(d: Decoder, kind: str | None, dispatch: Any, path: KeyPath) -> None:
    """RT takes dispatch tickets in a queue of their own; a webhook helpdesk routes them itself."""
    if not isinstance(dispatch, dict):
        return
    if kind == "rt" and dispatch.get("queue") is None:
        d.report(path + ("queue",), "missing required key", "the RT queue of the field team, e.g. Saha Ekibi")
    if kind == "webhook" and "queue" in dispatch:
        d.report(path + ("queue",), "queue is for kind rt", "the webhook gets dispatch tickets with action create")


def _together(d: Decoder, written: dict[Any, Any], path: KeyPath) -> None:
    if ("username" in written) != ("password" in written):
        d.report(
            path + ("password" if "username" in written else "username",),
            "missing required key",
            "username and password go together",
        )


def _tickets(tickets: layout.Tickets, token: Secret | None, password: Secret | None) -> TicketConfig:
    values = tickets.model_dump(exclude={"token", "password", "retry", "stage_sync", "dispatch"})
    sync = None if tickets.stage_sync is None else StageSyncConfig(**tickets.stage_sync.model_dump())
    dispatch = None if tickets.dispatch is None else DispatchConfig(**tickets.dispatch.model_dump())
    return TicketConfig(**values, token=token, password=password, retry=_retry(tickets.retry), stage_sync=sync, dispatch=dispatch)


def _alertmanager_rules(d: Decoder, am: dict[Any, Any], path: KeyPath) -> tuple[Secret | None, Secret | None] | None:
    """The token and password, or None when they cannot be read: a token, or a username and password."""
    before = len(d.problems)
    token = d.secret(am, path, "token")
    password = d.secret(am, path, "password")
    _together(d, am, path)
    if "token" in am and "username" in am:
        d.report(path + ("username",), "give either token or username and password, not both")
    link = am.get("ticket_link")
    if isinstance(link, str) and "{tracking}" not in link:
        d.report(path + ("ticket_link",), "ticket_link has no {tracking}", "every incident would link to the same page")
    return (token, password) if len(d.problems) == before else None


def _alertmanager(am: layout.Alertmanager, token: Secret | None, password: Secret | None) -> AlertmanagerConfig:
    values = am.model_dump(exclude={"token", "password", "retry"})
    return AlertmanagerConfig(**values, token=token, password=password, retry=_retry(am.retry))
