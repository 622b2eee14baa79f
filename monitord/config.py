"""Reading and checking the configuration file and the subscriber inventory.

The steps follow Alertmanager's `Load`: defaults (the dataclass fields), strict decoding (unknown
and duplicate keys are errors), section checks, then cross-references between sections. Nothing
stops at the first problem: `load_config` raises one `ConfigError` listing every problem with
its file, line and key path, so `monitord check` can show an operator all of them at once.
Secrets are only ever named by where they live (`{env: NAME}`, `{file: path}`), never echoed.
"""

from __future__ import annotations

import csv
import difflib
import io
import ipaddress
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from monitord import duration as durations
from monitord.builtin import PROFILES_DIR
from monitord.files import CONFIG_LIMIT, INVENTORY_LIMIT, SECRET_LIMIT, read_regular_file, read_regular_text
from monitord.model import (
    DEVICE_KINDS,
    Device,
    Exchange,
    Line,
    MaintenanceWindow,
    NodeRef,
    Region,
    Secret,
    SnmpAuth,
    Topology,
)
from monitord.phone import known_region, normalize_email, normalize_phone, sms_unreachable
from monitord.yamlload import Document, KeyPath, YamlSyntaxError, load_yaml
from rules.config import RulesConfigError, parse_rules

T = TypeVar("T")

BUILTIN_PROFILES: tuple[str, ...] = ("adsl", "vdsl2", "docsis-cm", "docsis-cmts", "if-mib", "gpon-axos")
LINE_FIELDS: tuple[str, ...] = (
    "id",
    "name",
    "phone",
    "email",
    "language",
    "device",
    "port",
    "mac",
    "modem",
    "sms_opt_out",
    "prefer_email",
)
REQUIRED_LINE_FIELDS: tuple[str, ...] = ("id", "name", "device")
NODE_LEVELS: tuple[str, ...] = ("region", "exchange", "cabinet", "device", "line")
SECRET_HINT = "use {env: NAME} or {file: path}"

SECTION_KEYS: Mapping[str, tuple[str, ...]] = {
    "": (
        "state_file",
        "tracking_prefix",
        "timezone",
        "profiles_dir",
        "http",
        "snmp",
        "polling",
        "topology",
        "subscribers",
        "rules",
        "notifiers",
        "maintenance",
        "metrics",
        "retention",
        "traps",
    ),
    "http": ("listen", "token"),
    "metrics": ("per_line", "per_line_limit", "listen"),
    "retention": ("sent", "dead", "resolved_incidents"),
    "traps": ("listen", "sender_rate", "sender_burst", "rate", "burst"),
    "snmp": ("timeout", "retries", "auths", "walk_timeout", "walk_max_requests"),
    "snmp.auths.*": ("version", "community", "user", "auth_protocol", "auth_key", "priv_protocol", "priv_key"),
    "polling": (
        "icmp_interval",
        "line_interval",
        "optical_interval",
        "jitter",
        "max_in_flight",
        "per_device_in_flight",
        "icmp_timeout",
        "icmp_count",
        "job_timeout",
    ),
    "topology": ("regions",),
    "topology.regions[]": ("id", "name", "exchanges"),
    "topology.regions[].exchanges[]": ("id", "name", "devices"),
    "topology.regions[].exchanges[].devices[]": ("id", "kind", "address", "port", "snmp", "profiles", "cabinet"),
    "subscribers": ("csv", "lines", "phone_region"),
    "subscribers.lines[]": LINE_FIELDS,
    "notifiers": ("sms", "email", "tickets", "hold_probe", "cpe"),
    "notifiers.cpe": ("customers", "ticket", "noc"),
    "notifiers.sms": (
        "kind",
        "account_sid",
        "auth_token",
        "from",
        "base_url",
        "rate",
        "quiet_hours",
        "update_after",
        "notify_degradation",
        "non_mobile",
        "retry",
    ),
    "notifiers.email": ("host", "port", "starttls", "tls", "username", "password", "from", "noc", "retry"),
    "notifiers.tickets": ("kind", "url", "queue", "token", "username", "password", "body_template", "retry", "comment_every"),
    **{f"notifiers.{channel}.retry": ("max_backoff", "probe_every") for channel in ("sms", "email", "tickets")},
    "maintenance[]": ("id", "scope", "start", "end", "reason", "grace"),
}
"""The keys each section accepts (`[]`: every list item, `*`: every mapping value)."""


# --- the result ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpConfig:
    host: str = "127.0.0.1"
    port: int = 9177
    token: Secret | None = None  # bearer token for state-changing calls


@dataclass(frozen=True, slots=True)
class SnmpSettings:
    timeout: float = 2.0
    retries: int = 1
    auths: Mapping[str, SnmpAuth] = field(default_factory=dict)
    walk_timeout: float = 30.0  # a walk still going after this ends with AGENT_ERROR
    walk_max_requests: int = 5_000


@dataclass(frozen=True, slots=True)
class PollingConfig:
    icmp_interval: float = 30.0
    line_interval: float = 60.0
    optical_interval: float = 3600.0
    jitter: float = 0.1  # fraction of the interval
    max_in_flight: int = 256
    per_device_in_flight: int = 2
    icmp_timeout: float = 1.0
    icmp_count: int = 3
    job_timeout: float | None = None  # None: Config.job_timeout derives it from the SNMP budgets


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Per-line series multiply the scrape by the inventory: off by default, capped when on."""

    per_line: bool = False
    per_line_limit: int = 10_000
    listen: tuple[str, int] | None = None  # a listener of its own for /metrics; None: on http.listen only


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    """How long finished history is kept before it is pruned (seconds)."""

    sent: float = 30 * 86400.0  # delivered notifications, from when they were sent
    dead: float = 90 * 86400.0  # dead letters, from when they were queued
    resolved_incidents: float = 90 * 86400.0  # from when they were resolved


@dataclass(frozen=True, slots=True)
class TrapsConfig:
    """SNMP traps and informs, only ever a reason to recheck their device at once. The rates bound
    the datagrams examined (per sending device and from all together), so a flood costs little."""

    host: str
    port: int
    sender_rate: float = 0.2  # per second from one device: a burst, then one every 5 s
    sender_burst: int = 5
    rate: float = 100.0  # per second from all devices together
    burst: int = 500


@dataclass(frozen=True, slots=True)
class RetryConfig:
    """How a channel retries (`notifiers.<channel>.retry`): a notice that fails alone backs off
    up to `max_backoff`; a peer that keeps failing is probed with one notice every `probe_every`."""

    max_backoff: float = 60.0
    probe_every: float = 5.0


@dataclass(frozen=True, slots=True)
class SmsConfig:
    account_sid: str
    auth_token: Secret
    from_: str  # E.164
    base_url: str = "https://api.twilio.com"
    rate: float = 1.0  # messages per second
    quiet_hours: tuple[time, time] | None = None  # local time in Config.timezone; may wrap midnight
    update_after: float = 7200.0
    notify_degradation: bool = False
    non_mobile: str = "error"  # or "skip": a subscriber number no SMS can reach is a warning, its line gets none
    retry: RetryConfig = RetryConfig()


@dataclass(frozen=True, slots=True)
class EmailConfig:
    host: str
    from_: str
    port: int = 587
    starttls: bool = True
    tls: bool = False
    username: str | None = None
    password: Secret | None = None
    noc: tuple[str, ...] = ()
    retry: RetryConfig = RetryConfig()


@dataclass(frozen=True, slots=True)
class TicketConfig:
    kind: str  # "rt" or "webhook"
    url: str
    queue: str | None = None  # rt only
    token: Secret | None = None
    username: str | None = None  # basic auth, instead of a token
    password: Secret | None = None
    body_template: str | None = None  # webhook only
    retry: RetryConfig = RetryConfig()
    comment_every: float = 600.0  # at most one comment per incident this often (0: no limit)


@dataclass(frozen=True, slots=True)
class CpeNotices:
    """Who hears of a silent modem on a line in sync (the customer's side, docs/decisions.md)."""

    customers: bool = True  # one notice about the modem, outside quiet hours
    ticket: bool = False
    noc: bool = False  # NOC e-mail


@dataclass(frozen=True, slots=True)
class NotifiersConfig:
    sms: SmsConfig | None = None
    email: EmailConfig | None = None
    tickets: TicketConfig | None = None
    hold_probe: float = 60.0  # a channel whose credentials are refused: one item tried this often
    cpe: CpeNotices = CpeNotices()


@dataclass(frozen=True, slots=True)
class Config:
    source: Path
    state_file: Path
    tracking_prefix: str
    timezone: str
    http: HttpConfig
    snmp: SnmpSettings
    polling: PollingConfig
    topology: Topology
    rules: Mapping[str, Any]  # raw `rules:` mapping; rules/ owns its format
    notifiers: NotifiersConfig
    maintenance: tuple[MaintenanceWindow, ...]
    profiles_dir: Path | None = None  # extra line profiles, <name>.yaml, beside the built-in ones
    metrics: MetricsConfig = MetricsConfig()
    retention: RetentionConfig = RetentionConfig()
    traps: TrapsConfig | None = None  # None: no trap receiver
    warnings: tuple[Problem, ...] = ()  # what `check` shows but does not refuse

    @property
    def job_timeout(self) -> float:
        """How long a polling job may run before the scheduler cancels it: as configured, or a
        walk's whole time budget plus three requests with their retries (the liveness check,
        the sysUpTime GET and a walk request sent just before the walk's deadline)."""
        if self.polling.job_timeout is not None:
            return self.polling.job_timeout
        return self.snmp.walk_timeout + 3 * self.snmp.timeout * (self.snmp.retries + 1)


# --- problems --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int | None
    key: str  # dotted path (topology.regions[0].name) or a CSV column
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        out = f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"
        return out if self.hint is None else f"{out} (hint: {self.hint})"


class ConfigError(Exception):
    """Every problem found in a configuration, in the order they were found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(f"{len(problems)} configuration problem(s)")
        self.problems = tuple(problems)

    def __str__(self) -> str:
        return "\n".join(map(str, self.problems))


def format_problems(error: ConfigError) -> str:
    """What `monitord check` prints: one problem per line, then a count."""
    count = len(error.problems)
    return f"{error}\n{count} problem{'' if count == 1 else 's'} found"


def dotted(path: KeyPath) -> str:
    """("topology", "regions", 0, "name") -> "topology.regions[0].name"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# --- pure value checks -----------------------------------------------------------------------


class Invalid(ValueError):
    """A value that cannot be used; `message` never contains a secret."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class _Missing(Invalid):
    def __init__(self) -> None:
        super().__init__("missing required value")


_TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "a mapping",
    datetime: "a date and time",
    date: "a date",
    type(None): "nothing",
}
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MAX_PORT_INDEX = 2**32 - 1  # a row index is one SNMP sub-identifier
_MAC_HEX = re.compile(r"[0-9a-f]{12}")
_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_TRACKING_PREFIX = re.compile(r"[A-Z][A-Z0-9]{1,9}")


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    kind = _TYPE_NAMES.get(type(value), type(value).__name__)
    return kind if isinstance(value, (list, dict, type(None))) else f"{kind} ({value!r})"


def _wrong_type(expected: str, value: Any) -> Invalid:
    hint = "put it in quotes" if expected == "a string" and isinstance(value, (int, float)) else None
    return Invalid(f"expected {expected}, got {_shown(value)}", hint)


def _default(cls: Any, name: str) -> Any:
    """A dataclass field's default (slots=True dataclasses do not keep it as a class attribute)."""
    return cls.__dataclass_fields__[name].default


def _suggest(word: object, choices: Iterable[str], noun: str = "one of") -> str:
    choices = list(choices)
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else f"{noun} {', '.join(choices)}"


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise _wrong_type("a string", value)
    if not value.strip():
        raise Invalid("must not be empty")
    if (control := _CONTROL.search(value)) is not None:
        raise Invalid(
            f"contains the control character U+{ord(control.group()):04X}",
            "a NUL or other invisible character, often pasted by mistake",
        )
    return value.strip()


def identifier(value: Any) -> str:
    name = text(value)
    if _IDENTIFIER.fullmatch(name) is None:
        raise Invalid(f"{name!r} is not a valid id", "use up to 64 letters, digits, '.', '_' and '-'")
    return name


def integer(low: int, high: int | None = None) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong_type("an integer", value)
        if value < low or (high is not None and value > high):
            bound = f"use {low}..{high}" if high is not None else f"use {low} or more"
            raise Invalid(f"{value} is out of range", bound)
        return value

    return check


def number(low: float, high: float | None = None) -> Callable[[Any], float]:
    """A float in [low, high)."""

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _wrong_type("a number", value)
        if value < low or (high is not None and value >= high):
            bound = f"at least {low}" + (f" and below {high}" if high is not None else "")
            raise Invalid(f"{value} is out of range", f"use a number {bound}")
        return float(value)

    return check


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _wrong_type("true or false", value)
    return value


_FLAG_WORDS: Mapping[str, bool] = {
    "yes": True,
    "true": True,
    "1": True,
    "evet": True,
    "no": False,
    "false": False,
    "0": False,
    "hayır": False,
    "hayir": False,
    "": False,
}


def flag(value: Any) -> bool:
    """A yes/no cell as people and spreadsheets write it, in English or Turkish; empty is no."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if not isinstance(value, str) or value.strip().casefold() not in _FLAG_WORDS:
        raise Invalid(f"{_shown(value)} is not yes or no", "write yes/no, true/false, 1/0 or evet/hayır; empty means no")
    return _FLAG_WORDS[value.strip().casefold()]


def choice(options: Sequence[str]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        word = text(value)
        if word not in options:
            raise Invalid(f"{word!r} is not one of {', '.join(options)}", _suggest(word, options, "use one of"))
        return word

    return check


def parse_duration(value: Any) -> float:
    """ "30s", "5m", "2h", "1d", "1h30m", "250ms" or a number of seconds -> seconds (monitord/duration.py)."""
    return duration(durations.ANY)(value)


def duration(bounds: durations.Bounds) -> Callable[[Any], float]:
    """A duration within `bounds` (durations.INTERVAL, TIMEOUT, ...)."""

    def check(value: Any) -> float:
        try:
            return durations.parse_duration(value, bounds)
        except durations.DurationError as error:
            raise Invalid(error.message, error.hint) from None

    return check


def positive_duration(value: Any) -> float:
    """A duration for a key without bounds of its own: 10ms to 1d."""
    return duration(durations.POSITIVE)(value)


def ip_address(value: Any) -> str:
    address = text(value)
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        raise Invalid(f"{address!r} is not an IP address", "write an IPv4 or IPv6 literal, e.g. 192.0.2.10") from None


def host_address(value: Any) -> str:
    """An address monitord can reach and tell apart: one spelling per host, no zone."""
    shown = text(value)
    address = ip_address(shown)
    parsed = ipaddress.ip_address(address)
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.scope_id is not None:
        raise Invalid(
            f"{shown!r} has a zone (%{parsed.scope_id})",
            "use a routed address: a link-local one depends on the interface it is read on",
        )
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        raise Invalid(f"{shown!r} is an IPv4-mapped IPv6 address", f"write it as {parsed.ipv4_mapped}")
    if parsed.is_link_local and parsed.version == 6:
        raise Invalid(f"{shown!r} is link-local", "use a routed address")
    if parsed.is_unspecified or parsed.is_multicast:
        raise Invalid(f"{shown!r} is not the address of one host", "use the device's management address")
    return address


def listen(value: Any) -> tuple[str, int]:
    """ "127.0.0.1:9177" or "[::1]:9177"; port 0 lets the OS choose (tests)."""
    where = text(value)
    host, sep, port = where.rpartition(":")
    if not sep or not port.isdigit():
        raise Invalid(f"{where!r} is not host:port", "e.g. 127.0.0.1:9177 or [::1]:9177")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return ip_address(host), integer(0, 65535)(int(port))


def url(value: Any) -> str:
    address = text(value)
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(f"{address!r} is not an http(s) URL", "e.g. https://rt.isp.example")
    return address.rstrip("/")


def phone(value: Any, region: str = "TR") -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    number_text = text(value)
    try:
        return normalize_phone(number_text, region)
    except ValueError as error:
        raise Invalid(
            f"{number_text!r} is not a phone number: {error}", "write 0532 123 45 67, +90 532 123 45 67 or +<country><number>"
        ) from None


@dataclass(frozen=True, slots=True)
class PhonePolicy:
    """How subscriber numbers are read: `region` for numbers without +, and whether a number no
    SMS can reach (landline, premium rate, not in use) refuses the config or only loses its SMS."""

    region: str = "TR"
    skip_non_mobile: bool = False


def subscriber_phone(value: Any, policy: PhonePolicy) -> tuple[str | None, Invalid | None]:
    """The E.164 number to text, and a warning when `policy` lets a non-mobile number through
    without its SMS; Invalid when the number is refused."""
    if value is None or value == "":
        return None, None
    number = phone(value, policy.region)
    reason = sms_unreachable(number)
    if reason is None:
        return number, None
    shown = repr(text(str(value)))
    if policy.skip_non_mobile:
        return None, Invalid(f"{shown} is {reason}: this line gets no SMS")
    raise Invalid(
        f"{shown} is {reason}: no SMS can reach it", "give a mobile number, leave it empty, or set notifiers.sms.non_mobile: skip"
    )


def phone_region(value: Any) -> str:
    code = text(value).upper()
    if not known_region(code):
        raise Invalid(f"{value!r} is not a country code with a numbering plan", "an ISO 3166 code, e.g. TR, DE, GB")
    return code


def email(value: Any) -> str:
    address = text(value)
    try:
        return normalize_email(address)
    except ValueError as error:
        raise Invalid(f"{address!r} is not an e-mail address: {error}") from None


def mac_address(value: Any) -> str:
    """Any of 00:1A:2B:..., 00-1a-2b-..., 001a.2b3c.4d5e -> "00:1a:2b:3c:4d:5e"."""
    raw = text(value)
    digits = raw.lower().translate(str.maketrans("", "", ":-."))
    if _MAC_HEX.fullmatch(digits) is None:
        raise Invalid(f"{raw!r} is not a MAC address", "e.g. 00:1a:2b:3c:4d:5e")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def time_zone(value: Any) -> str:
    name = text(value)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(
            f"{name!r} is not a time zone", _suggest(name, sorted(available_timezones()), "use an IANA name like")
        ) from None
    return name


def quiet_hours(value: Any) -> tuple[time, time]:
    span = text(value)
    start, sep, end = span.replace(" ", "").partition("-")
    clocks = [_CLOCK.fullmatch(part) for part in (start, end)]
    if not sep or None in clocks:
        raise Invalid(f"{span!r} is not a time range", 'write "22:00-08:00" (it may wrap midnight)')
    first, last = (time(int(m.group(1)), int(m.group(2))) for m in clocks if m is not None)
    if first == last:
        raise Invalid(f"{span!r} starts and ends at the same time")
    return first, last


def account_sid(value: Any) -> str:
    sid = text(value)
    if _ACCOUNT_SID.fullmatch(sid) is None:
        raise Invalid(f"{sid!r} is not a Twilio account SID", "AC followed by 32 hexadecimal digits")
    return sid


def tracking_prefix(value: Any) -> str:
    prefix = text(value)
    if _TRACKING_PREFIX.fullmatch(prefix) is None:
        raise Invalid(f"{prefix!r} is not a tracking prefix", "2 to 10 capital letters or digits, e.g. ARZ")
    return prefix


def timestamp(zone: tzinfo) -> Callable[[Any], float]:
    """An ISO 8601 date and time; without an offset it is read in the configured time zone."""

    def check(value: Any) -> float:
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.strip())
            except ValueError:
                raise Invalid(f"{value!r} is not a date and time", "e.g. 2026-12-01T01:00:00+03:00") from None
        if not isinstance(value, datetime):
            raise _wrong_type("a date and time like 2026-12-01T01:00:00+03:00", value)
        return (value if value.tzinfo else value.replace(tzinfo=zone)).timestamp()

    return check


def node_ref(value: Any) -> NodeRef:
    ref = text(value)
    level, sep, node = ref.partition(":")
    if not sep or not node:
        raise Invalid(f"{ref!r} is not level:id", f"levels: {', '.join(NODE_LEVELS)}, e.g. exchange:sisli")
    if level not in NODE_LEVELS:
        raise Invalid(f"{level!r} is not a topology level", _suggest(level, NODE_LEVELS, "use one of"))
    return NodeRef(level, node)  # type: ignore[arg-type]


def _optional(check: Callable[[Any], T]) -> Callable[[Any], T | None]:
    """For CSV cells: an empty cell means "not given"."""

    def read(value: Any) -> T | None:
        return None if value is None or value == "" else check(value)

    return read


_port_range = integer(0, _MAX_PORT_INDEX)


def _port_index(value: Any) -> int:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        digits = value.strip().lstrip("0") or "0"
        value = int(digits) if len(digits) <= 10 else _MAX_PORT_INDEX + 1
    return _port_range(value)


_LINE_CHECKS: Mapping[str, Callable[[Any], Any]] = {
    "id": identifier,
    "name": text,
    "device": identifier,
    "email": _optional(email),
    "language": _optional(choice(("tr", "en"))),
    "port": _optional(_port_index),
    "mac": _optional(mac_address),
    "modem": _optional(host_address),
    "sms_opt_out": flag,
    "prefer_email": flag,
}


def check_line(
    raw: Mapping[str, Any], phones: PhonePolicy = PhonePolicy()
) -> tuple[dict[str, Any], list[tuple[str, Invalid]], list[tuple[str, Invalid]]]:
    """One subscriber row (CSV cells or an inline mapping) -> the Line's fields that are fine,
    the columns at fault, and warnings about columns let through."""
    values: dict[str, Any] = {}
    faults: list[tuple[str, Invalid]] = []
    warnings: list[tuple[str, Invalid]] = []
    try:
        values["phone"], warning = subscriber_phone(raw.get("phone"), phones)
        if warning is not None:
            warnings.append(("phone", warning))
    except Invalid as invalid:
        faults.append(("phone", invalid))
    for column, check in _LINE_CHECKS.items():
        value = raw.get(column)
        if (value is None or value == "") and column in REQUIRED_LINE_FIELDS:
            faults.append((column, _Missing()))
            continue
        try:
            values[column] = check(value)
        except Invalid as invalid:
            faults.append((column, invalid))
    if "language" in values:
        values["language"] = values["language"] or "tr"
    return values, faults, warnings


# --- decoding with locations -----------------------------------------------------------------

_REQUIRED: Any = object()


class _Decoder:
    """Walks the YAML data, collecting Problems; each section method returns None when at fault."""

    def __init__(self, doc: Document, file: str, base: Path, environ: Mapping[str, str]) -> None:
        self.doc = doc
        self.file = file
        self.base = base
        self.environ = environ
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def report(self, path: KeyPath, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(self.file, self.doc.line(path), dotted(path), message, hint))

    def warn(self, path: KeyPath, message: str) -> None:
        self.warnings.append(Problem(self.file, self.doc.line(path), dotted(path), message))

    def mapping(self, value: Any, path: KeyPath, section: str) -> dict[Any, Any] | None:
        """Strict decoding: a mapping whose keys are all known to `section`."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.report(path, _wrong_type("a mapping", value).message)
            return None
        allowed = SECTION_KEYS[section]
        for key in value:
            if key not in allowed:
                self.report(path + (key,), f"unknown key {key!r}", _suggest(key, allowed, "known keys:"))
        return value

    def section(self, parent: dict[Any, Any], path: KeyPath, key: str, section: str) -> dict[Any, Any] | None:
        return self.mapping(parent.get(key), path + (key,), section)

    def items(self, parent: dict[Any, Any], path: KeyPath, key: str) -> list[tuple[KeyPath, Any]]:
        value = parent.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.report(path + (key,), _wrong_type("a list", value).message, "write one item per '- ' line")
            return []
        return [(path + (key, index), item) for index, item in enumerate(value)]

    def check(self, value: Any, path: KeyPath, check: Callable[[Any], T]) -> T | None:
        try:
            return check(value)
        except Invalid as invalid:
            self.report(path, invalid.message, invalid.hint)
            return None

    def get(self, parent: dict[Any, Any], path: KeyPath, key: str, check: Callable[[Any], T], default: Any = _REQUIRED) -> Any:
        """The checked value of `key`, `default` when it is absent, None when it is at fault."""
        value = parent.get(key)
        if value is None:
            if default is _REQUIRED:
                self.report(path + (key,), "missing required key" if key not in parent else "needs a value")
                return None
            return default
        return self.check(value, path + (key,), check)

    def path(self, parent: dict[Any, Any], path: KeyPath, key: str, default: Any = _REQUIRED) -> Path | None:
        value = self.get(parent, path, key, text, default)
        return None if value is None else self.base / value

    def secret(self, parent: dict[Any, Any], path: KeyPath, key: str, required: bool = False) -> Secret | None:
        """Read `{env: NAME}` or `{file: path}`. Messages name the source, never the value."""
        value = parent.get(key)
        here = path + (key,)
        if value is None:
            if required:
                self.report(here, "missing required key" if key not in parent else "needs a value", SECRET_HINT)
            return None
        if not isinstance(value, dict):
            inline = isinstance(value, (str, int, float))
            self.report(here, "secrets must not be written inline" if inline else "expected a secret", SECRET_HINT)
            return None
        if len(value) != 1 or not {"env", "file"} >= set(value):
            self.report(here, "a secret has exactly one key, env or file", SECRET_HINT)
            return None
        if "env" in value:
            name = value["env"]
            if not isinstance(name, str) or _ENV_NAME.fullmatch(name) is None:
                self.report(here + ("env",), "is not an environment variable name", "letters, digits and _")
                return None
            content = self.environ.get(name)
            if not content:
                state = "not set" if content is None else "empty"
                self.report(here + ("env",), f"environment variable {name} is {state}")
                return None
            return Secret(content, f"env:{name}")
        if not isinstance(value["file"], str) or not value["file"].strip():
            self.report(here + ("file",), "expected a file path")
            return None
        file_name = self.check(value["file"], here + ("file",), text)
        if file_name is None:
            return None
        secret_file = self.base / file_name
        try:
            content = read_regular_text(secret_file, SECRET_LIMIT).strip()
        except OSError as error:
            self.report(here + ("file",), f"cannot read secret file {secret_file}: {error.strerror}")
            return None
        except UnicodeDecodeError:
            self.report(here + ("file",), f"secret file {secret_file} is not UTF-8 text")
            return None
        if not content or "\n" in content:
            self.report(
                here + ("file",),
                f"secret file {secret_file} is {'empty' if not content else 'not one line'}",
                "put only the secret in it",
            )
            return None
        return Secret(content, f"file:{secret_file}")


class _Inventory:
    """What the topology declares, kept even for entries at fault so that references to them
    do not produce a second, misleading "unknown" problem."""

    def __init__(self) -> None:
        self.regions: dict[str, Region] = {}
        self.exchanges: dict[str, Exchange] = {}
        self.devices: dict[str, Device] = {}
        self.lines: dict[str, Line] = {}
        self.declared: dict[str, dict[str, str]] = {level: {} for level in NODE_LEVELS}
        self.device_kinds: dict[str, str] = {}
        self.addresses: dict[str, str] = {}
        self.modems: dict[str, tuple[str, str]] = {}  # address -> (line id, file:line)
        self.line_slots: dict[tuple[str, str, object], str] = {}
        self.all_lines_read = True

    def declare(self, level: str, node: str, where: str) -> str | None:
        """Record `node`; return where it was first declared if this is a duplicate."""
        seen = self.declared[level]
        if node in seen:
            return seen[node]
        seen[node] = where
        return None


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Load and check `path`; raise ConfigError listing every problem found.

    `environ` (default: the process environment) is where `{env: NAME}` secrets are read.
    """
    source = Path(path)
    file = str(source)
    try:
        doc = load_yaml(read_regular_text(source, CONFIG_LIMIT))
    except OSError as error:
        raise ConfigError([Problem(file, None, "", f"cannot read the file: {error.strerror}")]) from None
    except UnicodeDecodeError:
        raise ConfigError([Problem(file, None, "", "is not UTF-8 text")]) from None
    except YamlSyntaxError as error:
        raise ConfigError([Problem(file, error.line, "", f"YAML syntax error: {error.message}")]) from None
    decoder = _Decoder(doc, file, source.parent, os.environ if environ is None else environ)
    for duplicate in doc.duplicates:
        decoder.report(
            duplicate.path,
            f"duplicate key {duplicate.path[-1]!r}",
            f"first given on line {duplicate.first_line}; YAML would silently keep only the last",
        )
    config = _decode(decoder, source)
    if config is None:
        raise ConfigError(decoder.problems)
    return config


def _decode(d: _Decoder, source: Path) -> Config | None:
    root = d.mapping(d.doc.data, (), "")
    if root is None:
        return None
    if not root:
        d.report((), "the file is empty", "start from config/example.yaml")
        return None
    state_file = d.path(root, (), "state_file")
    prefix = d.get(root, (), "tracking_prefix", tracking_prefix)
    zone_name = d.get(root, (), "timezone", time_zone)
    profiles_dir = d.path(root, (), "profiles_dir", None)
    if profiles_dir is not None and not profiles_dir.is_dir():
        d.report(("profiles_dir",), f"{profiles_dir} is not a directory")
        profiles_dir = None
    http = _http(d, root)
    snmp, auth_names = _snmp(d, root)
    polling = _polling(d, root)
    metrics = _metrics(d, root)
    retention = _retention(d, root)
    traps = _traps(d, root)
    inventory = _Inventory()
    _topology(d, root, snmp, auth_names, profiles_dir, inventory)
    _subscribers(d, root, inventory)
    rules = {} if root.get("rules") is None else root["rules"]
    if not isinstance(rules, dict):
        d.report(("rules",), _wrong_type("a mapping", rules).message)
    else:
        try:
            parse_rules(rules)
        except RulesConfigError as error:
            for key_path, message in error.problems:
                d.report(("rules", *key_path), message)
    notifiers = _notifiers(d, root)
    zone = ZoneInfo(zone_name) if zone_name else UTC
    maintenance = _maintenance(d, root, zone, inventory, _default_grace(rules))
    if (
        d.problems
        or state_file is None
        or prefix is None
        or zone_name is None
        or http is None
        or snmp is None
        or polling is None
        or metrics is None
        or retention is None
        or notifiers is None
    ):
        return None
    topology = Topology(inventory.regions, inventory.exchanges, inventory.devices, inventory.lines)
    return Config(
        source,
        state_file,
        prefix,
        zone_name,
        http,
        snmp,
        polling,
        topology,
        rules,
        notifiers,
        maintenance,
        profiles_dir,
        metrics,
        retention,
        traps,
        tuple(d.warnings),
    )


def _http(d: _Decoder, root: dict[Any, Any]) -> HttpConfig | None:
    path = ("http",)
    section = d.section(root, (), "http", "http")
    if section is None:
        return None
    host, port = d.get(section, path, "listen", listen, None) or (_default(HttpConfig, "host"), _default(HttpConfig, "port"))
    before = len(d.problems)
    token = d.secret(section, path, "token")
    if token is None and len(d.problems) == before and not ipaddress.ip_address(host).is_loopback:
        d.report(
            path + ("listen",),
            f"{host} is not a loopback address and no http.token is set: "
            "subscriber data and diagnosis would be open to the network",
            "set http.token, or listen on 127.0.0.1 and put /metrics on metrics.listen",
        )
    return HttpConfig(host, port, token)


def _snmp(d: _Decoder, root: dict[Any, Any]) -> tuple[SnmpSettings | None, set[str] | None]:
    """The settings, and the auth names declared (None if unknowable, so devices do not
    report a second problem for naming one)."""
    path = ("snmp",)
    section = d.section(root, (), "snmp", "snmp")
    if section is None:
        return None, None
    before = len(d.problems)
    timeout = d.get(section, path, "timeout", duration(durations.TIMEOUT), _default(SnmpSettings, "timeout"))
    retries = d.get(section, path, "retries", integer(0, 10), _default(SnmpSettings, "retries"))
    walk_timeout = d.get(section, path, "walk_timeout", positive_duration, _default(SnmpSettings, "walk_timeout"))
    walk_max_requests = d.get(
        section, path, "walk_max_requests", integer(1, 1_000_000), _default(SnmpSettings, "walk_max_requests")
    )
    auths_path = path + ("auths",)
    raw_auths = {} if section.get("auths") is None else section["auths"]
    if not isinstance(raw_auths, dict):
        d.report(auths_path, _wrong_type("a mapping of auth names", raw_auths).message)
        return None, None
    auths = {}
    for name, raw in raw_auths.items():
        auth = _snmp_auth(d, auths_path + (name,), name, raw)
        if auth is not None:
            auths[name] = auth
    if len(d.problems) > before:
        return None, set(raw_auths)
    return SnmpSettings(timeout, retries, auths, walk_timeout, walk_max_requests), set(raw_auths)


def _snmp_auth(d: _Decoder, path: KeyPath, name: Any, raw: Any) -> SnmpAuth | None:
    before = len(d.problems)
    d.check(name, path, identifier)
    auth = d.mapping(raw, path, "snmp.auths.*")
    if auth is None:
        return None
    version = d.get(auth, path, "version", lambda v: choice(("1", "2c", "3"))(str(v) if isinstance(v, int) else v))
    if version in ("1", "2c"):
        for key in ("user", "auth_protocol", "auth_key", "priv_protocol", "priv_key"):
            if key in auth:
                d.report(path + (key,), f"{key} is for SNMPv3, this auth is version {version}")
        community = d.secret(auth, path, "community", required=True)
        return SnmpAuth(name, version, community=community) if len(d.problems) == before else None
    if version is None:
        return None
    if "community" in auth:
        d.report(path + ("community",), "community is for SNMP versions 1 and 2c", "v3 uses user, auth_key, priv_key")
    user = d.get(auth, path, "user", text)
    auth_protocol = d.get(auth, path, "auth_protocol", _lower(choice(("md5", "sha", "sha256", "sha512"))), None)
    priv_protocol = d.get(auth, path, "priv_protocol", _lower(choice(("des", "aes", "aes256"))), None)
    auth_key = _v3_key(d, auth, path, "auth_key", "auth_protocol")
    priv_key = _v3_key(d, auth, path, "priv_key", "priv_protocol")
    if ("priv_protocol" in auth or "priv_key" in auth) and "auth_protocol" not in auth:
        d.report(path + ("auth_protocol",), "privacy needs authentication", "add auth_protocol and auth_key")
    if len(d.problems) > before:
        return None
    return SnmpAuth(
        name, "3", user=user, auth_protocol=auth_protocol, auth_key=auth_key, priv_protocol=priv_protocol, priv_key=priv_key
    )


def _lower(check: Callable[[Any], str]) -> Callable[[Any], str]:
    return lambda value: check(value.lower() if isinstance(value, str) else value)


def _v3_key(d: _Decoder, auth: dict[Any, Any], path: KeyPath, key: str, protocol: str) -> Secret | None:
    """A v3 key comes with its protocol, and net-snmp refuses passphrases under 8 characters."""
    if (key in auth) != (protocol in auth):
        missing = protocol if key in auth else key
        d.report(path + (missing,), f"missing required key ({key} and {protocol} go together)")
        return None
    secret = d.secret(auth, path, key)
    if secret is not None and len(secret.reveal()) < 8:
        d.report(path + (key,), f"{secret.source} is shorter than 8 characters", "SNMPv3 keys need at least 8")
        return None
    return secret


def _polling(d: _Decoder, root: dict[Any, Any]) -> PollingConfig | None:
    path = ("polling",)
    section = d.section(root, (), "polling", "polling")
    if section is None:
        return None
    before = len(d.problems)
    defaults = PollingConfig()
    checks: dict[str, Callable[[Any], Any]] = {
        "icmp_interval": duration(durations.INTERVAL),
        "line_interval": duration(durations.INTERVAL),
        "optical_interval": duration(durations.INTERVAL),
        "jitter": number(0.0, 1.0),
        "max_in_flight": integer(1, 100_000),
        "per_device_in_flight": integer(1, 64),
        "icmp_timeout": duration(durations.TIMEOUT),
        "icmp_count": integer(1, 20),
        "job_timeout": duration(durations.TIMEOUT),
    }
    values = {key: d.get(section, path, key, check, getattr(defaults, key)) for key, check in checks.items()}
    return PollingConfig(**values) if len(d.problems) == before else None


def _metrics(d: _Decoder, root: dict[Any, Any]) -> MetricsConfig | None:
    path = ("metrics",)
    section = d.section(root, (), "metrics", "metrics")
    if section is None:
        return None
    before = len(d.problems)
    per_line = d.get(section, path, "per_line", boolean, _default(MetricsConfig, "per_line"))
    limit = d.get(section, path, "per_line_limit", integer(1, 1_000_000), _default(MetricsConfig, "per_line_limit"))
    where = d.get(section, path, "listen", listen, None)
    return MetricsConfig(per_line, limit, where) if len(d.problems) == before else None


RETENTION_MINIMUM = 7 * 86400.0
"""Below a week a pruned notice's key could be planned again (maintenance notices go out up to 48 h ahead)."""


def retention_period(value: Any) -> float:
    seconds = parse_duration(value)
    if not RETENTION_MINIMUM <= seconds <= 100 * 365 * 86400.0:
        raise Invalid(f"{_shown(value)} is out of range", "keep history from 7d to 36500d")
    return seconds


def _retention(d: _Decoder, root: dict[Any, Any]) -> RetentionConfig | None:
    path = ("retention",)
    section = d.section(root, (), "retention", "retention")
    if section is None:
        return None
    before = len(d.problems)
    defaults = RetentionConfig()
    values = {key: d.get(section, path, key, retention_period, getattr(defaults, key)) for key in SECTION_KEYS["retention"]}
    return RetentionConfig(**values) if len(d.problems) == before else None


def _traps(d: _Decoder, root: dict[Any, Any]) -> TrapsConfig | None:
    if root.get("traps") is None:
        return None
    path = ("traps",)
    section = d.section(root, (), "traps", "traps")
    if section is None:
        return None
    before = len(d.problems)
    address = d.get(section, path, "listen", listen)
    checks: dict[str, Callable[[Any], Any]] = {
        "sender_rate": number(0.001, 10_000.0),
        "sender_burst": integer(1, 100_000),
        "rate": number(0.001, 1_000_000.0),
        "burst": integer(1, 1_000_000),
    }
    values = {key: d.get(section, path, key, check, _default(TrapsConfig, key)) for key, check in checks.items()}
    if len(d.problems) > before or address is None:
        return None
    return TrapsConfig(*address, **values)


def _topology(
    d: _Decoder,
    root: dict[Any, Any],
    snmp: SnmpSettings | None,
    auth_names: set[str] | None,
    profiles_dir: Path | None,
    inv: _Inventory,
) -> None:
    section = d.section(root, (), "topology", "topology")
    if section is None:
        return
    if "topology" not in root:
        d.report(("topology",), "missing required key", "list your regions, exchanges and devices")
        return
    raw_regions = section.get("regions")
    if raw_regions is None or raw_regions == []:
        d.report(("topology", "regions"), "missing required key" if raw_regions is None else "must list a region")
    for region_path, raw_region in d.items(section, ("topology",), "regions"):
        region = d.mapping(raw_region, region_path, "topology.regions[]")
        if region is None:
            continue
        region_id = _declare(d, inv, "region", region, region_path)
        name = d.get(region, region_path, "name", text)
        if region_id and name:
            inv.regions[region_id] = Region(region_id, name)
        for exchange_path, raw_exchange in d.items(region, region_path, "exchanges"):
            exchange = d.mapping(raw_exchange, exchange_path, "topology.regions[].exchanges[]")
            if exchange is None:
                continue
            exchange_id = _declare(d, inv, "exchange", exchange, exchange_path)
            name = d.get(exchange, exchange_path, "name", text)
            if exchange_id and name and region_id:
                inv.exchanges[exchange_id] = Exchange(exchange_id, name, region_id)
            for device_path, raw_device in d.items(exchange, exchange_path, "devices"):
                _device(d, inv, device_path, raw_device, exchange_id, snmp, auth_names, profiles_dir)


def _declare(d: _Decoder, inv: _Inventory, level: str, item: dict[Any, Any], path: KeyPath) -> str | None:
    node = d.get(item, path, "id", identifier)
    if node is None:
        return None
    first = inv.declare(level, node, f"line {d.doc.line(path + ('id',))}")
    if first is not None:
        d.report(path + ("id",), f"duplicate {level} id {node!r}", f"first defined on {first}")
        return None
    return node


def _device(
    d: _Decoder,
    inv: _Inventory,
    path: KeyPath,
    raw: Any,
    exchange_id: str | None,
    snmp: SnmpSettings | None,
    auth_names: set[str] | None,
    profiles_dir: Path | None,
) -> None:
    device = d.mapping(raw, path, "topology.regions[].exchanges[].devices[]")
    if device is None:
        return
    before = len(d.problems)
    device_id = _declare(d, inv, "device", device, path)
    kind = d.get(device, path, "kind", choice(DEVICE_KINDS))
    if device_id and kind:
        inv.device_kinds[device_id] = kind
    address = d.get(device, path, "address", host_address)
    if address is not None:
        other = inv.addresses.setdefault(address, device_id or "?")
        if other != (device_id or "?"):
            d.report(path + ("address",), f"address {address} is already used by device {other!r}")
    port = d.get(device, path, "port", integer(1, 65535), 161)
    auth_name = d.get(device, path, "snmp", identifier, None)
    if auth_name is not None and auth_names is not None and auth_name not in auth_names:
        d.report(
            path + ("snmp",),
            f"unknown snmp auth {auth_name!r}",
            _suggest(auth_name, sorted(auth_names), "define it under snmp.auths; known:"),
        )
    profiles = tuple(_profiles(d, device, path, profiles_dir))
    if profiles and "snmp" not in device:
        d.report(path + ("profiles",), "line profiles are walked over SNMP", "add snmp: <auth name>")
    cabinet = d.get(device, path, "cabinet", identifier, None)
    if cabinet is not None and exchange_id is not None:
        home = inv.declared["cabinet"].setdefault(cabinet, exchange_id)
        if home != exchange_id:
            d.report(
                path + ("cabinet",),
                f"cabinet {cabinet!r} is already in exchange {home!r}",
                "a street cabinet hangs off one exchange",
            )
    if len(d.problems) > before or not (device_id and exchange_id and snmp):
        return
    auth = snmp.auths.get(auth_name) if auth_name else None
    inv.devices[device_id] = Device(device_id, kind, exchange_id, address, auth, profiles, port, cabinet)


def _profiles(d: _Decoder, device: dict[Any, Any], path: KeyPath, profiles_dir: Path | None) -> Iterable[str]:
    for item_path, raw in d.items(device, path, "profiles"):
        name = d.check(raw, item_path, identifier)
        if name is None:
            continue
        folders = (PROFILES_DIR,) if profiles_dir is None else (PROFILES_DIR, profiles_dir)
        if name in BUILTIN_PROFILES or any((folder / f"{name}.yaml").is_file() for folder in folders):
            yield name
            continue
        hint = _suggest(name, BUILTIN_PROFILES, "built-in:")
        if profiles_dir is None:
            hint += "; for your own, set profiles_dir"
        else:
            hint += f"; or add {profiles_dir / (name + '.yaml')}"
        d.report(item_path, f"unknown line profile {name!r}", hint)


def _subscribers(d: _Decoder, root: dict[Any, Any], inv: _Inventory) -> None:
    path = ("subscribers",)
    section = d.section(root, (), "subscribers", "subscribers")
    if section is None:
        return
    phones = PhonePolicy(d.get(section, path, "phone_region", phone_region, "TR") or "TR", _skips_non_mobile(root))
    for line_path, raw in d.items(section, path, "lines"):
        row = d.mapping(raw, line_path, "subscribers.lines[]")
        if row is None:
            continue
        values, faults, warnings = check_line(row, phones)
        for column, invalid in warnings:
            d.warn(line_path + (column,), invalid.message)
        for column, invalid in faults:
            missing = isinstance(invalid, _Missing)
            d.report(line_path + (column,), "missing required key" if missing else invalid.message, invalid.hint)
        for column, message, hint in _place_line(inv, values, not faults, f"{d.file}:{d.doc.line(line_path)}"):
            d.report(line_path + (column,), message, hint)
    csv_file = d.path(section, path, "csv", None)
    if csv_file is not None:
        _read_csv(d, csv_file, inv, phones)


def _skips_non_mobile(root: dict[Any, Any]) -> bool:
    """notifiers.sms.non_mobile, read ahead of its section (which reports it if it is bad)."""
    notifiers = root.get("notifiers")
    sms = notifiers.get("sms") if isinstance(notifiers, dict) else None
    return isinstance(sms, dict) and sms.get("non_mobile") == "skip"


def _place_line(inv: _Inventory, values: dict[str, Any], complete: bool, where: str) -> list[tuple[str, str, str | None]]:
    """Cross-references of one line: unique id, known device, and a free port or MAC on it.

    A row with faulty fields still declares its id, so a maintenance scope naming it is not
    reported as a second, misleading problem."""
    if "id" not in values:
        return []
    first = inv.declare("line", values["id"], where)
    if first is not None:
        return [("id", f"duplicate subscriber id {values['id']!r}", f"first defined at {first}")]
    if not complete:
        return []
    line = Line(**values)
    kind = inv.device_kinds.get(line.device)
    if line.device not in inv.declared["device"]:
        return [("device", f"unknown device {line.device!r}", None)]
    faults: list[tuple[str, str, str | None]] = []
    if kind in ("dslam", "olt") and line.port is None:
        faults.append(("port", f"a line on {kind} {line.device!r} needs its port", None))
    if kind == "cmts" and line.mac is None:
        faults.append(("mac", f"a line on cmts {line.device!r} needs its modem's MAC address", None))
    if line.modem is not None:
        faults += _modem_taken(inv, line, where)
    for column, slot in (("port", line.port), ("mac", line.mac)):
        if slot is not None:
            taken = inv.line_slots.setdefault((line.device, column, slot), line.id)
            if taken != line.id:
                faults.append((column, f"{column} {slot} on {line.device!r} is taken by subscriber {taken!r}", None))
    if not faults:
        inv.lines[line.id] = line
    return faults


def _modem_taken(inv: _Inventory, line: Line, where: str) -> list[tuple[str, str, str | None]]:
    """A modem's address is pinged in its device's ICMP sweep, keyed by address: shared with the
    head-end it would replace the device's own target, shared with another line one is never pinged."""
    device = inv.addresses.get(line.modem or "")
    if device is not None:
        return [
            ("modem", f"modem {line.modem} is the address of device {device!r}", "a modem and a head-end never share an address")
        ]
    first = inv.modems.setdefault(line.modem or "", (line.id, where))
    if first[0] != line.id:
        return [("modem", f"modem {line.modem} is already the modem of subscriber {first[0]!r}", f"first given at {first[1]}")]
    return []


def _read_csv(d: _Decoder, csv_file: Path, inv: _Inventory, phones: PhonePolicy) -> None:
    """Check the subscriber CSV; line numbers in problems are the CSV file's own lines."""
    where = str(csv_file)

    def report(line: int | None, column: str, message: str, hint: str | None = None) -> None:
        d.problems.append(Problem(where, line, column, message, hint))

    inv.all_lines_read = False
    try:
        data = read_regular_file(csv_file, INVENTORY_LIMIT)
    except OSError as error:
        d.report(("subscribers", "csv"), f"cannot read {where}: {error.strerror}")
        return
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        report(data.count(b"\n", 0, error.start) + 1, "", "is not UTF-8 text", "save it as CSV UTF-8")
        return
    reader = csv.reader(io.StringIO(content, newline=""))
    try:
        header = [name.strip() for name in next(reader, [])]
        if not _header_ok(header, report):
            return
        width = len(header)
        end = reader.line_num
        for row in reader:
            line, end = end + 1, reader.line_num  # a quoted cell may span lines: report the first
            if not row or row == [""]:
                continue
            if len(row) != width:
                report(line, "", f"row has {len(row)} fields, the header has {width}")
                continue
            values, faults, warnings = check_line(dict(zip(header, row)), phones)
            for column, invalid in warnings:
                d.warnings.append(Problem(where, line, column, invalid.message))
            for column, invalid in faults:
                report(line, column, invalid.message, invalid.hint)
            for column, message, hint in _place_line(inv, values, not faults, f"{where}:{line}"):
                report(line, column, message, hint)
    except csv.Error as error:
        report(reader.line_num, "", f"CSV syntax error: {error}")
        return
    inv.all_lines_read = True


def _header_ok(header: list[str], report: Callable[..., None]) -> bool:
    ok = True
    if not any(header):
        report(1, "header", "the file is empty", f"the first line names the columns: {','.join(LINE_FIELDS)}")
        return False
    for name in REQUIRED_LINE_FIELDS:
        if name not in header:
            report(1, "header", f"missing column {name!r}", f"columns: {','.join(LINE_FIELDS)}")
            ok = False
    for index, name in enumerate(header):
        if name not in LINE_FIELDS:
            report(1, "header", f"unknown column {name!r}", _suggest(name, LINE_FIELDS, "known columns:"))
            ok = False
        elif name in header[:index]:
            report(1, "header", f"column {name!r} appears twice")
            ok = False
    return ok


def _notifiers(d: _Decoder, root: dict[Any, Any]) -> NotifiersConfig | None:
    section = d.section(root, (), "notifiers", "notifiers")
    if section is None:
        return None
    before = len(d.problems)
    sms = _sms(d, section) if section.get("sms") is not None else None
    mail = _email(d, section) if section.get("email") is not None else None
    tickets = _tickets(d, section) if section.get("tickets") is not None else None
    hold_probe = d.get(section, ("notifiers",), "hold_probe", positive_duration, _default(NotifiersConfig, "hold_probe"))
    cpe = _cpe_notices(d, section)
    return NotifiersConfig(sms, mail, tickets, hold_probe, cpe) if len(d.problems) == before else None


def _cpe_notices(d: _Decoder, parent: dict[Any, Any]) -> CpeNotices:
    path = ("notifiers", "cpe")
    cpe = d.section(parent, path[:1], "cpe", "notifiers.cpe") or {}
    return CpeNotices(
        **{key: d.get(cpe, path, key, boolean, _default(CpeNotices, key)) for key in ("customers", "ticket", "noc")}
    )


def _sms(d: _Decoder, parent: dict[Any, Any]) -> SmsConfig | None:
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
        base_url=d.get(sms, path, "base_url", url, _default(SmsConfig, "base_url")),
        rate=d.get(sms, path, "rate", number(0.01, 1000.0), _default(SmsConfig, "rate")),
        quiet_hours=d.get(sms, path, "quiet_hours", quiet_hours, None),
        update_after=d.get(sms, path, "update_after", duration(durations.REMINDER), _default(SmsConfig, "update_after")),
        notify_degradation=d.get(sms, path, "notify_degradation", boolean, False),
        non_mobile=d.get(sms, path, "non_mobile", choice(("error", "skip")), "error"),
        retry=_retry(d, sms, path),
    )
    return SmsConfig(**values) if len(d.problems) == before else None


def _email(d: _Decoder, parent: dict[Any, Any]) -> EmailConfig | None:
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


def _tickets(d: _Decoder, parent: dict[Any, Any]) -> TicketConfig | None:
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
        comment_every=d.get(tickets, path, "comment_every", parse_duration, _default(TicketConfig, "comment_every")),
    )
    return TicketConfig(**values) if len(d.problems) == before else None


def _retry(d: _Decoder, parent: dict[Any, Any], path: KeyPath) -> RetryConfig:
    retry = d.section(parent, path, "retry", ".".join(map(str, path)) + ".retry") or {}
    here = path + ("retry",)
    return RetryConfig(
        max_backoff=d.get(retry, here, "max_backoff", positive_duration, _default(RetryConfig, "max_backoff")),
        probe_every=d.get(retry, here, "probe_every", positive_duration, _default(RetryConfig, "probe_every")),
    )


def _default_grace(rules: Any) -> float:
    """`rules.maintenance_grace` when the operator set one; rules/ reports it if it is bad."""
    try:
        return parse_duration(rules["maintenance_grace"])
    except (TypeError, KeyError, Invalid):
        return _default(MaintenanceWindow, "grace")


def _maintenance(
    d: _Decoder, root: dict[Any, Any], zone: tzinfo, inv: _Inventory, default_grace: float
) -> tuple[MaintenanceWindow, ...]:
    windows = []
    seen: dict[str, int | None] = {}
    for path, raw in d.items(root, (), "maintenance"):
        item = d.mapping(raw, path, "maintenance[]")
        if item is None:
            continue
        before = len(d.problems)
        window_id = d.get(item, path, "id", identifier)
        if window_id in seen:
            d.report(path + ("id",), f"duplicate maintenance window id {window_id!r}", f"first defined on line {seen[window_id]}")
        elif window_id is not None:
            seen[window_id] = d.doc.line(path + ("id",))
        if item.get("scope") in (None, []):
            d.report(
                path + ("scope",),
                "must name at least one node" if "scope" in item else "missing required key",
                "e.g. [exchange:sisli]",
            )
        scope = tuple(_scope_node(d, inv, scope_path, raw_ref) for scope_path, raw_ref in d.items(item, path, "scope"))
        start = d.get(item, path, "start", timestamp(zone))
        end = d.get(item, path, "end", timestamp(zone))
        if start is not None and end is not None and end <= start:
            d.report(path + ("end",), "the window ends before it starts")
        reason = d.get(item, path, "reason", text, "")
        grace = d.get(item, path, "grace", duration(durations.HOLD), default_grace)
        if len(d.problems) == before:
            known = tuple(ref for ref in scope if ref is not None)
            windows.append(MaintenanceWindow(window_id, known, start, end, reason, grace))
    return tuple(windows)


def _scope_node(d: _Decoder, inv: _Inventory, path: KeyPath, raw: Any) -> NodeRef | None:
    ref = d.check(raw, path, node_ref)
    if ref is None or ref.id in inv.declared[ref.level]:
        return ref
    if ref.level == "line":
        if inv.all_lines_read:
            d.report(path, f"unknown subscriber line {ref.id!r}")
    else:
        d.report(
            path, f"unknown {ref.level} {ref.id!r}", _suggest(ref.id, sorted(inv.declared[ref.level]), f"known {ref.level}s:")
        )
    return None
