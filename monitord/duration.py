"""The one duration grammar of every config file: `rules:` and the rest read durations alike.

A duration is a YAML number of seconds (90, 1.5) or units written together without spaces:
`250ms`, `30s`, `5m`, `2h`, `1d`, `1h30m`. Spaces inside (`5 m`) are refused with a message that
says so, rather than guessed at. NaN, infinity and negative values are never durations; each field
then has its own bounds (`Bounds`), because a 1 ns poll interval busy-loops the daemon and a
3-million-year one never polls.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

_GRAMMAR = re.compile(r"(?:\d{1,15}(?:\.\d{1,9})?(?:ms|d|h|m|s))+")
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
HINT = "write 30s, 5m, 2h, 1d or 1h30m"


class DurationError(ValueError):
    """A value that is not a usable duration; `hint` says what to write instead."""

    def __init__(self, message: str, hint: str | None = HINT) -> None:
        super().__init__(message if hint is None else f"{message} (hint: {hint})")
        self.message = message
        self.hint = hint


@dataclass(frozen=True, slots=True)
class Bounds:
    """Inclusive limits for one kind of duration, in seconds."""

    low: float
    high: float

    def check(self, seconds: float, shown: str) -> float:
        if not self.low <= seconds <= self.high:
            side = "shorter" if seconds < self.low else "longer"
            raise DurationError(f"{shown} is {side} than allowed", f"use {self}")
        return seconds

    def __str__(self) -> str:
        return f"{format_duration(self.low)} to {format_duration(self.high)}"


INTERVAL = Bounds(0.1, 86_400.0)  # how often something is polled (tests poll every 0.5 s)
TIMEOUT = Bounds(0.01, 600.0)  # how long one request may take
HOLD = Bounds(0.0, 86_400.0)  # waits that may be zero: settle, stable, `for`, grace
WINDOW = Bounds(1.0, 30 * 86_400.0)  # spans a rule looks back over
REMINDER = Bounds(60.0, 30 * 86_400.0)  # how long before a customer is told again
POSITIVE = Bounds(0.01, 86_400.0)  # a key without bounds of its own
FIVE_MINUTE_ROLLUPS = Bounds(86_400.0, 90 * 86_400.0)  # how long line quality's 5-minute roll-ups are kept
HOURLY_ROLLUPS = Bounds(86_400.0, 3650 * 86_400.0)  # ... and its hourly ones
ANY = Bounds(0.0, 365 * 86_400.0)  # the grammar's own limit: a year


def parse_duration(value: Any, bounds: Bounds = ANY) -> float:
    """`value` in seconds, if it is a duration within `bounds`; DurationError otherwise."""
    shown = _shown(value)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise DurationError(f"{shown} is not a duration")
    if isinstance(value, str):
        written = value.strip()
        if _GRAMMAR.fullmatch(written) is None:
            if _GRAMMAR.fullmatch("".join(written.split())):
                raise DurationError(
                    f"{shown} is not a duration: no spaces inside a duration", f"write {''.join(written.split())}"
                )
            raise DurationError(f"{shown} is not a duration")
        seconds = sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(written))
    else:
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
        if math.isnan(seconds):
            raise DurationError(f"{shown} is not a duration")
        if seconds < 0:
            raise DurationError(f"{shown} is not a duration: it is negative", "durations are 0 or more")
    if math.isinf(seconds):
        raise DurationError(f"{shown} is longer than allowed", f"use {bounds}")
    return bounds.check(seconds, shown)


def format_duration(seconds: float) -> str:
    """The shortest way to write `seconds` in the grammar above (10ms, 1s, 1d)."""
    for unit in ("d", "h", "m", "s"):
        if seconds >= _UNITS[unit] and (seconds / _UNITS[unit]).is_integer():
            return f"{int(seconds / _UNITS[unit])}{unit}"
    if seconds == 0:
        return "0s"
    return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        return "a number of more than 20 digits"
    return repr(value)
