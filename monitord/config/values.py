"""Value parsers shared by every config reader: each takes a raw YAML/CSV value and returns
the checked value or raises Invalid, whose message never contains a secret."""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, time, tzinfo
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from monitord import duration as durations
from monitord.config.problems import Invalid
from monitord.model import NodeRef
from monitord.phone import known_region, normalize_email, normalize_phone

T = TypeVar("T")

NODE_LEVELS: tuple[str, ...] = ("region", "exchange", "cabinet", "device", "segment", "line")

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
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MAC_HEX = re.compile(r"[0-9a-f]{12}")
_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_TRACKING_PREFIX = re.compile(r"[A-Z][A-Z0-9]{1,9}")


def shown(value: Any) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    kind = _TYPE_NAMES.get(type(value), type(value).__name__)
    return kind if isinstance(value, (list, dict, type(None))) else f"{kind} ({value!r})"


def wrong_type(expected: str, value: Any) -> Invalid:
    hint = "put it in quotes" if expected == "a string" and isinstance(value, (int, float)) else None
    return Invalid(f"expected {expected}, got {shown(value)}", hint)


def default_of(cls: Any, name: str) -> Any:
    """A dataclass field's default (slots=True dataclasses do not keep it as a class attribute)."""
    return cls.__dataclass_fields__[name].default


def suggest(word: object, choices: Iterable[str], noun: str = "one of") -> str:
    choices = list(choices)
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else f"{noun} {', '.join(choices)}"


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise wrong_type("a string", value)
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
            raise wrong_type("an integer", value)
        if value < low or (high is not None and value > high):
            bound = f"use {low}..{high}" if high is not None else f"use {low} or more"
            raise Invalid(f"{value} is out of range", bound)
        return value

    return check


def number(low: float, high: float | None = None) -> Callable[[Any], float]:
    """A float in [low, high)."""

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong_type("a number", value)
        if value < low or (high is not None and value >= high):
            bound = f"at least {low}" + (f" and below {high}" if high is not None else "")
            raise Invalid(f"{value} is out of range", f"use a number {bound}")
        return float(value)

    return check


def finite(low: float = -math.inf, high: float = math.inf) -> Callable[[Any], float]:
    """A finite number in [low, high] (a rule's level, a fraction of lines)."""

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise wrong_type("a finite number" if isinstance(value, float) else "a number", value)
        if not low <= value <= high:
            raise Invalid(f"{value:g} is not between {low:g} and {high:g}" if high < math.inf else f"{value:g} is below {low:g}")
        return float(value)

    return check


def count(value: Any) -> int:
    """A whole number of lines, 1 or more."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise Invalid(f"expected a whole number of 1 or more, got {shown(value)}")
    return value


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise wrong_type("true or false", value)
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
        raise Invalid(f"{shown(value)} is not yes or no", "write yes/no, true/false, 1/0 or evet/hayır; empty means no")
    return _FLAG_WORDS[value.strip().casefold()]


def choice(options: Sequence[str]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        word = text(value)
        if word not in options:
            raise Invalid(f"{word!r} is not one of {', '.join(options)}", suggest(word, options, "use one of"))
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
        raise Invalid(f"{shown(address)} is not an IP address", "write an IPv4 or IPv6 literal, e.g. 192.0.2.10") from None


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
            f"{name!r} is not a time zone", suggest(name, sorted(available_timezones()), "use an IANA name like")
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


def postgres_url(value: Any) -> str:
    """`state`: a PostgreSQL URL, without a password (secrets are never written inline). The
    value is never quoted back: it may hold one."""
    url = text(value)
    form = "postgresql://USER@HOST:PORT/DATABASE"
    if not url.startswith(("postgresql://", "postgres://")):
        raise Invalid("is not a PostgreSQL URL", f"{form}; for a SQLite file give state_file")
    import psycopg  # only where the state is in PostgreSQL: a SQLite daemon never loads it
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
    except psycopg.Error:
        raise Invalid("is not a valid PostgreSQL URL", f"{form}, special characters percent-encoded") from None
    if "password" in params:
        raise Invalid("must not hold the password", "give it as state_password: {file: path} or {env: NAME}, or in PGPASSFILE")
    return url


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
            raise wrong_type("a date and time like 2026-12-01T01:00:00+03:00", value)
        return (value if value.tzinfo else value.replace(tzinfo=zone)).timestamp()

    return check


def node_ref(value: Any) -> NodeRef:
    ref = text(value)
    level, sep, node = ref.partition(":")
    if not sep or not node:
        raise Invalid(f"{ref!r} is not level:id", f"levels: {', '.join(NODE_LEVELS)}, e.g. exchange:sisli")
    if level not in NODE_LEVELS:
        raise Invalid(f"{level!r} is not a topology level", suggest(level, NODE_LEVELS, "use one of"))
    return NodeRef(level, node)  # type: ignore[arg-type]


RETENTION_MINIMUM = 7 * 86400.0
"""Below a week a pruned notice's key could be planned again (maintenance notices go out up to 48 h ahead)."""


def retention_period(value: Any) -> float:
    seconds = parse_duration(value)
    if not RETENTION_MINIMUM <= seconds <= 100 * 365 * 86400.0:
        raise Invalid(f"{shown(value)} is out of range", "keep history from 7d to 36500d")
    return seconds


def snmp_version(value: Any) -> str:
    """ "1", "2c" or "3"; YAML reads a bare 1 or 3 as a number."""
    return choice(("1", "2c", "3"))(str(value) if isinstance(value, int) and not isinstance(value, bool) else value)


def lowered(check: Callable[[Any], str]) -> Callable[[Any], str]:
    """`check` of the value in lower case: protocol names are written SHA or sha."""
    return lambda value: check(value.lower() if isinstance(value, str) else value)


def optional(check: Callable[[Any], T]) -> Callable[[Any], T | None]:
    """For a subscriber line's optional cells: empty means "not given", as in the CSV file."""

    def read(value: Any) -> T | None:
        return None if value is None or value == "" else check(value)

    return read


_MAX_PORT_INDEX = 2**32 - 1  # a row index is one SNMP sub-identifier
_port_range = integer(0, _MAX_PORT_INDEX)


def port_index(value: Any) -> int:
    """A row index in a device's line tables, as a number or digits (a CSV cell)."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        digits = value.strip().lstrip("0") or "0"
        value = int(digits) if len(digits) <= 10 else _MAX_PORT_INDEX + 1
    return _port_range(value)


PLACE_MAX = 200  # characters of a street address: a field team reads it on a phone


def place_text(value: Any) -> str:
    """A street address (a subscriber's, a device's site): text of at most PLACE_MAX characters,
    since it is copied into every dispatch ticket."""
    said = text(value)
    if len(said) > PLACE_MAX:
        raise Invalid(f"is {len(said)} characters long", f"an address of at most {PLACE_MAX} characters")
    return said


def _degrees(limit: float, what: str) -> Callable[[Any], float]:
    """A latitude or longitude in decimal degrees, as a number or as text (a CSV cell)."""
    bounded = finite(-limit, limit)

    def check(value: Any) -> float:
        if isinstance(value, str):
            try:
                value = float(value.strip()) if len(value) <= 32 else math.nan
            except ValueError:
                raise Invalid(f"{shown(value)} is not a {what}", "decimal degrees, e.g. 41.0082") from None
        try:
            return bounded(value)
        except Invalid as invalid:
            raise Invalid(f"{what} {invalid.message}", f"decimal degrees between -{limit:g} and {limit:g}") from None

    return check


latitude = _degrees(90.0, "latitude")
longitude = _degrees(180.0, "longitude")


def unpaired(missing: str) -> Invalid:
    """A place that gives one of lat and lon without the other."""
    given = "lat" if missing == "lon" else "lon"
    return Invalid(f"{given} is given without {missing}", "a place's coordinates are lat and lon together, in decimal degrees")
