"""The configuration file's layout, written once: one pydantic model per section.

Each field names its key, the parser of values.py that reads it (so every reader gives the same
messages), its default and its description. config/schema.json is generated from the models
(`python -m monitord.config.schema`), and unknown keys are refused against them.

Sections whose values stand alone (http, snmp, polling, metrics, retention, traps, notifiers,
and rules, whose models are in rules.py) are validated by their model, and `explain` maps
pydantic's error locations back to file:line. The topology, subscriber lines, maintenance windows and the top-level keys are
walked item by item (`Decoder.mapping`, `Decoder.field`, with the parsers declared here),
because their cross-references need the parts of an item that are right when another part is
not: a device with a bad address still declares its id, so the lines on it are not reported a
second time. A subscriber line and a row of the CSV file are read by the same `check_line`.

Longer than the other modules on purpose: it is the whole file's layout, one model per section,
which `SECTION_KEYS` and the generated schema read in one place; split by section, a key's
spelling, default and description would be looked up across files.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import time
from typing import Annotated, Any, Literal

from pydantic import Field

from monitord import duration as durations
from monitord.config import values
from monitord.config.cluster import Cluster
from monitord.config.console import Console
from monitord.config.fields import (
    BOOLEAN,
    DURATION,
    ID,
    STRING,
    Flag,
    Id,
    Interval,
    Kept,
    Listen,
    MaybeId,
    MaybeText,
    Parsed,
    Positive,
    Secret,
    Section,
    Text,
    Timeout,
    choice_of,
    int_range,
    lowered_choice,
    rate_range,
    section_keys,
    shared,
)
from monitord.config.model import (
    LINE_FIELDS,
    AlertmanagerConfig,
    CpeNotices,
    DispatchConfig,
    EmailConfig,
    HistoryConfig,
    MetricsConfig,
    NotifiersConfig,
    PollingConfig,
    RetentionConfig,
    RetryConfig,
    SmsConfig,
    SnmpSettings,
    TicketConfig,
    TrapsConfig,
)
from monitord.config.rules import RulesSection
from monitord.config.stages import StageItem, StageSync
from monitord.config.tracking import Tracking
from monitord.model import DEVICE_KINDS, DeviceKind, Language, NodeRef


class Http(Section):
    """HTTP API and /metrics"""

    listen: Annotated[tuple[str, int] | None, Parsed(STRING, values.listen)] = Field(
        default=None,
        description="host:port, e.g. 127.0.0.1:9177 or [::1]:9177 (port 0: any free port); a non-loopback address needs http.token",
    )
    token: Secret = Field(default=None, description="Bearer token for state-changing calls")


class SnmpAuth(Section):
    """One set of SNMP credentials"""

    version: Annotated[Literal["1", "2c", "3"], Parsed({"enum": ["1", "2c", "3", 1, 3]}, values.snmp_version)]
    community: Secret = Field(default=None, description="v1/v2c community")
    user: Annotated[str | None, Parsed(STRING, values.text)] = Field(default=None, description="v3 user name")
    auth_protocol: Annotated[
        Literal["md5", "sha", "sha256", "sha512"] | None, lowered_choice("md5", "sha", "sha256", "sha512")
    ] = None
    auth_key: Secret = Field(default=None, description="v3 authentication passphrase, at least 8 characters")
    priv_protocol: Annotated[Literal["des", "aes", "aes256"] | None, lowered_choice("des", "aes", "aes256")] = None
    priv_key: Secret = Field(default=None, description="v3 privacy passphrase, at least 8 characters")


class Snmp(Section):
    """SNMP settings and credentials"""

    timeout: Timeout = Field(default=values.default_of(SnmpSettings, "timeout"), description="Per request")
    retries: Annotated[int, int_range(0, 10)] = Field(
        default=values.default_of(SnmpSettings, "retries"), description="Retries after a timeout"
    )
    auths: dict[Annotated[Any, Parsed(ID)], SnmpAuth] = Field(
        default={}, description="How to talk to agents, by name", json_schema_extra={"propertyNames": {"x-shared": "id"}}
    )
    walk_timeout: Positive = Field(
        default=values.default_of(SnmpSettings, "walk_timeout"),
        description="A table walk still going after this ends with agent_error (default 30s)",
    )
    walk_max_requests: Annotated[int, int_range(1, 1_000_000)] = Field(
        default=values.default_of(SnmpSettings, "walk_max_requests"),
        description="A table walk that needs more requests ends with agent_error (default 5000)",
    )


class Polling(Section):
    """How often and how hard to poll"""

    icmp_interval: Interval = Field(
        default=values.default_of(PollingConfig, "icmp_interval"), description="Ping every device and reachable modem"
    )
    line_interval: Interval = Field(default=values.default_of(PollingConfig, "line_interval"), description="Walk the line tables")
    optical_interval: Interval = Field(
        default=values.default_of(PollingConfig, "optical_interval"), description="GPON optical levels"
    )
    jitter: Annotated[float, Parsed({"type": "number", "minimum": 0, "exclusiveMaximum": 1}, values.number(0.0, 1.0))] = Field(
        default=values.default_of(PollingConfig, "jitter"), description="Fraction of the interval"
    )
    max_in_flight: Annotated[int, int_range(1, 100_000)] = Field(
        default=values.default_of(PollingConfig, "max_in_flight"), description="Requests in flight, all devices together"
    )
    per_device_in_flight: Annotated[int, int_range(1, 64)] = Field(
        default=values.default_of(PollingConfig, "per_device_in_flight"),
        description="SNMP requests in flight per device (pings do not count: they do not load its agent)",
    )
    icmp_timeout: Timeout = Field(default=values.default_of(PollingConfig, "icmp_timeout"), description="Wait for an echo reply")
    icmp_count: Annotated[int, int_range(1, 20)] = Field(
        default=values.default_of(PollingConfig, "icmp_count"), description="Echo requests per round"
    )
    job_timeout: Annotated[float | None, Parsed(DURATION, values.duration(durations.TIMEOUT))] = Field(
        default=None,
        description="Cancel a poll still running after this; it counts as a timeout "
        "(default: snmp.walk_timeout plus 3 SNMP requests with their retries)",
    )


class Metrics(Section):
    """Prometheus /metrics: line counts are per region, exchange and device; per-line series are optional"""

    per_line: Flag = Field(
        default=values.default_of(MetricsConfig, "per_line"),
        description="Also export monitord_line_state, one series per subscriber line (default false)",
    )
    per_line_limit: Annotated[int, int_range(1, 1_000_000)] = Field(
        default=values.default_of(MetricsConfig, "per_line_limit"),
        description="Export at most this many lines, in id order (default 10000); "
        "the rest are counted in monitord_line_series_dropped",
    )
    listen: Annotated[tuple[str, int] | None, Parsed(STRING, values.listen)] = Field(
        default=None,
        description="host:port of a listener serving only /metrics (e.g. 0.0.0.0:9178), "
        "so the API on http.listen can stay private; /metrics stays on http.listen too",
    )
    ticket_link: Annotated[str | None, Parsed(STRING, values.text)] = Field(
        default=None,
        description="The ticket's address in monitord_open_incident's ticket label, which Grafana's incident "
        "annotations link to; {tracking} is the tracking number",
    )


class Retention(Section):
    """How long finished history is kept; older rows are pruned in small batches (each 7d to 36500d)"""

    sent: Kept = Field(
        default=values.default_of(RetentionConfig, "sent"),
        description="Delivered notifications, from when they were sent (default 30d)",
    )
    dead: Kept = Field(
        default=values.default_of(RetentionConfig, "dead"), description="Dead letters, from when they were queued (default 90d)"
    )
    resolved_incidents: Kept = Field(
        default=values.default_of(RetentionConfig, "resolved_incidents"),
        description="Resolved incidents, from when they were resolved (default 90d)",
    )


class History(Section):
    """Line quality over time: 5-minute and hourly min/avg/max of each line's metrics, and the lists of flapping and drifting lines"""

    five_minutes: Annotated[float, Parsed(DURATION, values.duration(durations.FIVE_MINUTE_ROLLUPS))] = Field(
        default=values.default_of(HistoryConfig, "five_minutes"), description="How long 5-minute roll-ups are kept (default 7d)"
    )
    hourly: Annotated[float, Parsed(DURATION, values.duration(durations.HOURLY_ROLLUPS))] = Field(
        default=values.default_of(HistoryConfig, "hourly"), description="How long hourly roll-ups are kept (default 90d)"
    )
    metrics: list[Id] = Field(
        default=list(values.default_of(HistoryConfig, "metrics")),
        description="The metrics kept, as the line profiles name them (e.g. snr_margin_down_db); [] keeps none",
    )
    drift_margin: Annotated[float, Parsed({"type": "number", "exclusiveMinimum": 0}, values.number(0.1, 100.0))] = Field(
        default=values.default_of(HistoryConfig, "drift_margin"),
        description="A line still OK whose hourly average is this close to a threshold (in its unit, dB) is drifting (default 3)",
    )
    flap_changes: Annotated[int, int_range(2, 1000)] = Field(
        default=values.default_of(HistoryConfig, "flap_changes"),
        description="A line that went bad this many times in 24 h is flapping (default 3)",
    )


class Traps(Section):
    """SNMP traps and informs (v2c, v3) from inventory devices, each only a reason to recheck its device at once; off when absent"""

    listen: Listen = Field(description="host:port to receive on, e.g. 0.0.0.0:162 or 127.0.0.1:9162 (port 0: any free port)")
    sender_rate: Annotated[float, rate_range(0.001, 10_000.0)] = Field(
        default=values.default_of(TrapsConfig, "sender_rate"),
        description="Datagrams a second examined from one device after its burst (default 0.2)",
    )
    sender_burst: Annotated[int, int_range(1, 100_000)] = Field(
        default=values.default_of(TrapsConfig, "sender_burst"), description="Datagrams one device may send at once (default 5)"
    )
    rate: Annotated[float, rate_range(0.001, 1_000_000.0)] = Field(
        default=values.default_of(TrapsConfig, "rate"),
        description="Datagrams a second examined from all devices together after the burst (default 100)",
    )
    burst: Annotated[int, int_range(1, 1_000_000)] = Field(
        default=values.default_of(TrapsConfig, "burst"),
        description="Datagrams all devices together may send at once (default 500)",
    )


_DEGREES = {"type": ["number", "string"]}


class Device(Section):
    """A head-end device"""

    id: Id
    kind: Annotated[DeviceKind, choice_of(*DEVICE_KINDS)]
    address: Annotated[str, Parsed(shared("ip"), values.host_address)] = Field(description="Management address")
    port: Annotated[int, Parsed(shared("port"), values.integer(1, 65535))] = Field(
        default=161, description="SNMP port, default 161"
    )
    snmp: MaybeId = Field(default=None, description="A name under snmp.auths; omit for ICMP only")
    profiles: list[Id] = Field(
        default=[],
        description="Line profiles: adsl vdsl2 shdsl docsis-cm docsis-cmts if-mib gpon-axos (all: docs/line-quality.md), or profiles_dir/<name>.yaml",
    )
    cabinet: MaybeId = Field(default=None, description="Street cabinet (optional)")
    location: Annotated[str | None, Parsed(STRING, values.place_text)] = Field(
        default=None, description="Street address of its site (its cabinet's, if in one), for dispatch tickets"
    )
    lat: Annotated[float | None, Parsed(_DEGREES, values.latitude)] = Field(default=None, description="Latitude of its site")
    lon: Annotated[float | None, Parsed(_DEGREES, values.longitude)] = Field(default=None, description="Longitude of its site")


class Exchange(Section):
    """An exchange (central office)"""

    id: Id
    name: Text = Field(description="Shown in messages")
    devices: list[Device] = Field(default=[])


class Region(Section):
    """A region"""

    id: Id
    name: Text = Field(description="Shown in messages")
    exchanges: list[Exchange] = Field(default=[])


class Topology(Section):
    """Regions, exchanges and devices: listed here, or in a file of their own (`file`)"""

    regions: list[Region] = Field(default=[], description="At least one region, unless file is given")
    file: MaybeText = Field(
        default=None,
        description="A YAML file holding `regions:` instead (e.g. one written by `monitord inventory import netbox`), "
        "relative to this file",
    )


_FLAG = Parsed({"type": ["boolean", "integer", "string"]}, values.flag)


class SubscriberLine(Section):
    """A subscriber line (a row of the CSV file has the same columns, and is read the same way)"""

    id: Id
    name: Text = Field(description="Subscriber name")
    device: Id
    phone: Annotated[Any, Parsed(shared("phone"))] = None  # read with the subscribers' PhonePolicy
    email: Annotated[str | None, Parsed(shared("email"), values.optional(values.email))] = None
    language: Annotated[Language | None, Parsed({"enum": ["tr", "en"]}, values.optional(values.choice(("tr", "en"))))] = None
    port: Annotated[int | None, Parsed({"type": ["integer", "string"]}, values.optional(values.port_index))] = Field(
        default=None, description="Index in the device's line tables"
    )
    mac: Annotated[str | None, Parsed(STRING, values.optional(values.mac_address))] = Field(
        default=None, description="Cable modem MAC address"
    )
    modem: Annotated[str | None, Parsed(shared("ip"), values.optional(values.host_address))] = Field(
        default=None, description="Modem address answering ICMP"
    )
    sms_opt_out: Annotated[bool, _FLAG] = Field(
        default=False, description="The subscriber asked not to be texted (yes/no, true/false, 1/0, evet/hayır; default no)"
    )
    prefer_email: Annotated[bool, _FLAG] = Field(
        default=False, description="Tell this subscriber by e-mail rather than SMS when both are known (default no)"
    )
    serial: Annotated[str | None, Parsed(STRING, values.optional(values.text))] = Field(
        default=None, description="ONU serial number, for OLTs that index ONUs by it (instead of a port)"
    )
    address: Annotated[str | None, Parsed(STRING, values.optional(values.place_text))] = Field(
        default=None, description="Street address, for dispatch tickets"
    )
    lat: Annotated[float | None, Parsed(_DEGREES, values.optional(values.latitude))] = Field(
        default=None, description="Latitude, decimal degrees (with lon)"
    )
    lon: Annotated[float | None, Parsed(_DEGREES, values.optional(values.longitude))] = Field(
        default=None, description="Longitude, decimal degrees (with lat)"
    )
    segment: Annotated[str | None, Parsed(ID, values.optional(values.identifier))] = Field(
        default=None, description="Cable: the upstream segment (fiber node) of a modem or upstream channel line on a cmts"
    )


class Subscribers(Section):
    """Subscriber lines: a CSV file and/or inline"""

    csv: MaybeText = Field(
        default=None,
        description="CSV file, header " + ",".join(LINE_FIELDS[:9]) + f"[,{','.join(LINE_FIELDS[9:])}] (the last seven optional)",
    )
    lines: list[SubscriberLine] = Field(default=[])
    phone_region: Annotated[str, Parsed({"type": "string", "pattern": "^[A-Za-z]{2}$"}, values.phone_region)] = Field(
        default="TR", description="ISO 3166 country of numbers written without + or 00 (default TR)"
    )


class Retry(Section):
    """How this channel retries"""

    max_backoff: Positive = Field(
        default=values.default_of(RetryConfig, "max_backoff"),
        description="The longest a notice that fails alone waits before its next attempt (default 60s)",
    )
    probe_every: Positive = Field(
        default=values.default_of(RetryConfig, "probe_every"),
        description="While the peer keeps failing (5xx, 429, refused), one notice is tried this often; the rest wait (default 5s)",
    )


GATEWAY_FIELDS = ("to", "from", "text", "username", "password")


class Sms(Section):
    """SMS through Twilio, or a generic HTTP gateway (kind http)"""

    kind: Annotated[str, choice_of("twilio", "http")] = "twilio"
    account_sid: Annotated[str | None, Parsed({"type": "string", "pattern": "^AC[0-9a-fA-F]{32}$"}, values.account_sid)] = Field(
        default=None, description="Twilio: AC followed by 32 hex digits"
    )
    auth_token: Secret = Field(default=None, description="Twilio auth token")
    from_: Annotated[str | None, Parsed(shared("phone"), values.phone)] = Field(
        default=None, alias="from", description="Twilio: the sending number"
    )
    base_url: Annotated[str, Parsed(shared("url"), values.url)] = values.default_of(SmsConfig, "base_url")
    url: Annotated[str | None, Parsed(shared("url"), values.url)] = Field(default=None, description="http: where to POST")
    sender: MaybeText = Field(default=None, description="http: the sender name or number the gateway shows")
    body: Annotated[str, choice_of("form", "json")] = Field(
        default=values.default_of(SmsConfig, "body"), description="http: form-encoded (default) or JSON"
    )
    fields: dict[Annotated[str, choice_of(*GATEWAY_FIELDS)], Annotated[str, Parsed(STRING, values.text)]] = Field(
        default={}, description="http: the gateway's names for to, from, text (and username, password with auth: fields)"
    )
    params: dict[Annotated[str, Parsed(STRING, values.text)], Annotated[str, Parsed(STRING, values.text)]] = Field(
        default={}, description="http: constant fields the gateway wants, e.g. encoding: TR"
    )
    reference: MaybeText = Field(
        default=values.default_of(SmsConfig, "reference"), description="http: the answer's JSON key with the message id"
    )
    auth: Annotated[str, choice_of("none", "basic", "bearer", "fields")] = Field(
        default=values.default_of(SmsConfig, "auth"),
        description="http: basic (username, password), bearer (token) or fields (username, password in the body)",
    )
    username: MaybeText = Field(default=None, description="http: with auth basic or fields")
    password: Secret = Field(default=None, description="http: with auth basic or fields")
    token: Secret = Field(default=None, description="http: with auth bearer")
    encoding: Annotated[str | None, choice_of("gsm7", "gsm7-turkish", "ucs2")] = Field(
        default=None,
        description="How the gateway encodes texts (notices/segments.py): twilio gsm7; http gsm7-turkish (default), gsm7 or ucs2",
    )
    transliterate: Flag = Field(
        default=values.default_of(SmsConfig, "transliterate"),
        description="Write ş ğ ı İ Ş Ğ ç as s g i I S G c, so texts stay GSM-7 on a gateway without the Turkish tables",
    )
    segments: Annotated[int | None, int_range(1, 10)] = Field(
        default=None,
        description="Refuse SMS texts that cost more segments at their longest (default 1 if Turkish letters stay GSM-7, else 2)",
    )
    rate: Annotated[float, Parsed({"type": "number", "exclusiveMinimum": 0, "maximum": 1000}, values.number(0.01, 1000.0))] = (
        Field(default=values.default_of(SmsConfig, "rate"), description="Messages per second")
    )
    in_flight: Annotated[int | None, int_range(1, 1000)] = Field(
        default=None,
        description="Messages awaiting the gateway's answer at once (default: a quarter second of the rate, at least 4)",
    )
    quiet_hours: Annotated[
        tuple[time, time] | None, Parsed({"type": "string", "pattern": r"^\d{1,2}:\d{2}-\d{1,2}:\d{2}$"}, values.quiet_hours)
    ] = Field(default=None, description='Local time range, e.g. "22:00-08:00"')
    update_after: Annotated[float, Parsed(DURATION, values.duration(durations.REMINDER))] = Field(
        default=values.default_of(SmsConfig, "update_after"), description="Remind subscribers of a long outage (default 2h)"
    )
    confirm_after: Annotated[float | None, Parsed(DURATION, values.duration(durations.HOLD))] = Field(
        default=None,
        description="Ask each subscriber told of a restoration by SMS, this long after it (then after quiet hours), "
        'whether service works ("1: Evet, 2: Hayır"); a "no" opens a follow-up ticket. Off when absent',
    )
    survey: Flag = Field(
        default=values.default_of(SmsConfig, "survey"),
        description='Answer a "yes" to that question with a satisfaction survey, a score of 1 to 5 counted per region '
        "(monitord_survey_responses_total); needs confirm_after (default false)",
    )
    notify_degradation: Flag = Field(
        default=values.default_of(SmsConfig, "notify_degradation"), description="SMS for degraded lines too (default false)"
    )
    non_mobile: Annotated[str, choice_of("error", "skip")] = Field(
        default=values.default_of(SmsConfig, "non_mobile"),
        description="A subscriber number no SMS can reach (landline, premium rate, not in use): "
        "error (default) refuses the config, skip warns and sends that line no SMS",
    )
    retry: Retry = Retry()


class Email(Section):
    """E-mail through an SMTP relay"""

    host: Annotated[str, Parsed(STRING, values.text)] = Field(description="SMTP server")
    port: Annotated[int | None, Parsed(shared("port"), values.integer(1, 65535))] = Field(
        default=None, description="Default 587, or 465 with tls"
    )
    starttls: Annotated[bool | None, Parsed(BOOLEAN, values.boolean)] = Field(
        default=None, description="Upgrade with STARTTLS (default true, unless tls)"
    )
    tls: Flag = Field(default=values.default_of(EmailConfig, "tls"), description="Implicit TLS (port 465)")
    username: Annotated[str | None, Parsed(STRING, values.text)] = Field(default=None, description="SMTP user")
    password: Secret = None
    from_: Annotated[str, Parsed(shared("email"), values.email)] = Field(alias="from")
    noc: list[Annotated[str, Parsed(shared("email"), values.email)]] = Field(default=[], description="Gets every incident")
    retry: Retry = Retry()


class Dispatch(Section):
    """A fault a field team must go to (cut cable, drop wire, a site without power) opens a ticket of its own"""

    queue: Annotated[str | None, Parsed(STRING, values.text)] = Field(
        default=None, description="rt: the field team's queue (required); webhook: none"
    )
    delay: Annotated[float, Parsed(DURATION, values.duration(durations.HOLD))] = Field(
        default=values.default_of(DispatchConfig, "delay"),
        description="How long a fault must last before a truck is sent (default 10m): most that clear by themselves do so sooner",
    )
    stage: Id = Field(
        default=values.default_of(DispatchConfig, "stage"),
        description="The stage of an incident once its dispatch ticket is taken (default field_team)",
    )


class Tickets(Section):
    """Helpdesk tickets"""

    kind: Annotated[str, choice_of("rt", "webhook")]
    url: Annotated[str, Parsed(shared("url"), values.url)]
    queue: Annotated[str | None, Parsed(STRING, values.text)] = Field(default=None, description="RT queue")
    token: Secret = None
    username: Annotated[str | None, Parsed(STRING, values.text)] = Field(
        default=None, description="Basic auth user, instead of a token"
    )
    password: Secret = None
    body_template: Annotated[str | None, Parsed(STRING, values.text)] = Field(default=None, description="Webhook body template")
    retry: Retry = Retry()
    comment_every: Annotated[float, Parsed(DURATION, values.parse_duration)] = Field(
        default=values.default_of(TicketConfig, "comment_every"),
        description="At most one comment per incident this often; what happens meanwhile goes in the next (0s: no limit)",
    )
    stage_sync: StageSync | None = None
    dispatch: Dispatch | None = None


class Alertmanager(Section):
    """Every incident as an alert in the NOC's Prometheus Alertmanager (API v2)"""

    url: Annotated[str, Parsed(shared("url"), values.url)] = Field(description="Alertmanager's base URL, e.g. http://am.noc:9093")
    resend: Positive = Field(
        default=values.default_of(AlertmanagerConfig, "resend"),
        description="An open incident's alert is pushed again this often; each push lasts 4 times this (default 1m)",
    )
    timeout: Timeout = Field(default=values.default_of(AlertmanagerConfig, "timeout"), description="Per push (default 10s)")
    ticket_link: Annotated[str | None, Parsed(STRING, values.text)] = Field(
        default=None, description="The ticket's address for the `ticket` annotation; {tracking} is the tracking number"
    )
    token: Secret = None
    username: Annotated[str | None, Parsed(STRING, values.text)] = Field(
        default=None, description="Basic auth user, instead of a token"
    )
    password: Secret = None
    retry: Retry = Retry()


class Receiver(Section):
    """Who hears of the incidents of the regions routed to it"""

    name: Id
    email: list[Annotated[str, Parsed(shared("email"), values.email)]] = Field(
        default=[], description="NOC e-mail for these regions' incidents, instead of email.noc"
    )
    queue: Annotated[str | None, Parsed(STRING, values.text)] = Field(
        default=None, description="RT queue for these regions' tickets, instead of tickets.queue"
    )


class Route(Section):
    """A region's incidents to a receiver"""

    region: Id = Field(description="A region id of the topology")
    receiver: Id = Field(description="A name under notifiers.receivers")


class Cpe(Section):
    """A silent modem on a line in sync (status cpe): who is told (docs/decisions.md)"""

    customers: Flag = Field(
        default=values.default_of(CpeNotices, "customers"),
        description="One notice about the modem to the customer, outside quiet hours (default true)",
    )
    ticket: Flag = Field(default=values.default_of(CpeNotices, "ticket"), description="Open a ticket for it (default false)")
    noc: Flag = Field(default=values.default_of(CpeNotices, "noc"), description="E-mail the NOC about it (default false)")


class Notifiers(Section):
    """Who gets told, and how"""

    sms: Sms | None = None
    email: Email | None = None
    tickets: Tickets | None = None
    alertmanager: Alertmanager | None = None
    receivers: list[Receiver] = Field(default=[], description="Per-region NOC recipients, named for routes")
    routes: list[Route] = Field(default=[], description="Region -> receiver; regions without a route use email.noc")
    hold_probe: Positive = Field(
        default=values.default_of(NotifiersConfig, "hold_probe"),
        description="While a channel's credentials are refused, one notice is tried this often (default 60s)",
    )
    cpe: Cpe = Cpe()


class MaintenanceWindow(Section):
    """A planned maintenance window"""

    id: Id
    scope: list[
        Annotated[
            NodeRef, Parsed({"type": "string", "pattern": "^(region|exchange|cabinet|device|segment|line):.+$"}, values.node_ref)
        ]
    ] = Field(min_length=1)
    start: Annotated[Any, Parsed(STRING)] = Field(
        description="ISO 8601 date and time, e.g. 2026-12-01T01:00:00+03:00"
    )  # read in the configured time zone
    end: Annotated[Any, Parsed(STRING)] = Field(description="ISO 8601 date and time")
    reason: Text = Field(default="", description="Shown in messages")
    grace: Annotated[float | None, Parsed(DURATION, values.duration(durations.HOLD))] = Field(
        default=None, description="Alerts stay quiet this long after the end (default 15m)"
    )  # None: the rules' maintenance_grace


class ConfigFile(Section):
    """monitord configuration"""

    state_file: MaybeText = Field(
        default=None, description="SQLite file for the engine's state, incidents and the outbox (or give state)"
    )
    state: Annotated[str | None, Parsed(STRING, values.postgres_url)] = Field(
        default=None, description="A PostgreSQL database instead of state_file: postgresql://USER@HOST:PORT/DATABASE"
    )
    state_password: Secret = Field(
        default=None, description="The password of state's role, if the server asks for one (or PGPASSFILE)"
    )
    tracking_prefix: Annotated[str, Parsed({"type": "string", "pattern": "^[A-Z][A-Z0-9]{1,9}$"}, values.tracking_prefix)] = (
        Field(description="Prefix of tracking numbers (ARZ -> ARZ-2026-000123)")
    )
    timezone: Annotated[str, Parsed(STRING, values.time_zone)] = Field(
        description="IANA time zone for quiet hours and message times, e.g. Europe/Istanbul"
    )
    profiles_dir: MaybeText = Field(default=None, description="Folder with extra line profiles <name>.yaml")
    templates_dir: MaybeText = Field(
        default=None,
        description="Folder with tr.yaml / en.yaml: message texts over the built-in ones (monitord/builtin/templates)",
    )
    http: Http = Http()
    snmp: Snmp = Snmp()
    polling: Polling = Polling()
    topology: Topology
    subscribers: Subscribers = Subscribers()
    rules: RulesSection = RulesSection()
    notifiers: Notifiers = Notifiers()
    maintenance: list[MaintenanceWindow] = Field(default=[])
    metrics: Metrics = Metrics()
    retention: Retention = Retention()
    history: History = History()
    traps: Traps | None = None
    cluster: Cluster = Cluster()
    tracking: Tracking | None = None
    console: Console | None = None
    stages: list[StageItem] | None = Field(
        default=None,
        description="The stages customers see an incident in, in order (default: detected, field_team, at_exchange, recovering, resolved)",
    )


SECTION_KEYS: Mapping[str, tuple[str, ...]] = section_keys(ConfigFile)
"""The keys each section accepts (`[]`: every list item, `*`: every mapping value)."""
