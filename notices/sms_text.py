"""What an SMS says and what it costs at its longest, for the planner and for `monitord check`.

A customer SMS gets the same values as an e-mail, with names cut to SMS_NAME_MAX characters at
a word boundary (`short`) and, for a gateway without the Turkish tables, the Turkish letters
written in plain Latin (`transliterate`). Free text of unbounded length (a maintenance reason)
has no place in an SMS: its templates do not get it.

`worst_cost` renders a template with the values that cost most: the inventory's longest names
(by characters, and by letters outside the GSM-7 default alphabet, which cost more under the
shift tables and force UCS-2 without them), the longest tracking number the prefix gives, and
the longest dates. It is what `check` compares with the segment budget.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import product
from typing import Any
from zoneinfo import ZoneInfo

from monitord.model import Language
from notices.segments import DEFAULT_ALPHABET, Cost, Encoding, cost, transliterate
from notices.templates import Templates, format_time, format_window, render, short

CANDIDATES = 3  # names tried per ranking: the longest, and the costliest in GSM-7 septets
TRACKING_DIGITS = "-2026-999999"  # what rules/lifecycle.py appends to the prefix: -<year>-<6 digits>


def sms_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values an SMS template gets: names cut to fit, no free text."""
    out = {k: v for k, v in values.items() if k != "reason"}
    for key in ("area", "name"):
        if key in out:
            out[key] = short(str(out[key]))
    return out


def sms_body(text: str, transliterated: bool) -> str:
    return transliterate(text) if transliterated else text


def _heaviest(names: Iterable[str]) -> list[str]:
    """The names that cost most once cut: the longest, and those with most letters the GSM-7
    default alphabet lacks (two septets under the single shift table, UCS-2 without it)."""
    cut = {short(n) for n in names if n}
    longest = heapq.nlargest(CANDIDATES, cut, key=lambda n: (len(n), n))
    costly = heapq.nlargest(CANDIDATES, cut, key=lambda n: (len(n) + sum(c not in DEFAULT_ALPHABET for c in n), n))
    return sorted(set(longest) | set(costly)) or ["-"]


@dataclass(frozen=True, slots=True)
class Worst:
    """The costliest rendering of one SMS template in one language."""

    cost: Cost
    text: str


def worst_values(
    areas: Iterable[str],
    names: Iterable[str],
    tracking_prefix: str,
    tz: ZoneInfo,
    language: Language,
    stages: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Candidate value sets whose renderings include the costliest of every SMS template.
    `stages`: the names (in `language`) of the stages that send `sms.stage`, never cut."""
    tracking = tracking_prefix + TRACKING_DIGITS
    latest = datetime(2026, 12, 31, 23, 59, tzinfo=tz).timestamp()
    window = format_window(datetime(2026, 12, 30, 23, 0, tzinfo=tz).timestamp(), latest, tz, language)
    common = {"tracking": tracking, "into": tracking, "start": format_time(latest, tz, language), "window": window}
    stage_names = sorted(set(stages)) or ["-"]
    return [
        {**common, "area": a, "name": n, "stage": st} for a, n, st in product(_heaviest(areas), _heaviest(names), stage_names)
    ]


def worst_cost(
    name: str,
    language: Language,
    templates: Templates,
    candidates: Sequence[Mapping[str, Any]],
    encoding: Encoding,
    transliterated: bool,
) -> Worst:
    """The most segments (then units) template `name` costs over `candidates`; raises TemplateError."""
    found = []
    for values in candidates:
        text = sms_body(render(name, language, values, templates).body, transliterated)
        found.append(Worst(cost(text, encoding), text))
    return max(found, key=lambda w: (w.cost.segments, w.cost.units))
