"""Line quality over time in the API's words (docs/openapi.yaml): the span a subscriber's
series is asked for, the series as a small chart takes it, and the flapping and drifting lines
as JSON. Pure, as monitord/silences_api.py is; the handlers are monitord/http.py's, beside the
other routes (they share its error handling and its hop to the daemon's loop).

The roll-ups are read and decoded on their own thread (monitord/line_history.py); only what
lives on the daemon's loop is read there: the flap counts (`Flaps`, fed by the pipeline's
steps) and the status of the few lines found drifting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from monitord.config.problems import Invalid
from monitord.config.values import integer, number, timestamp
from monitord.line_history import MAX_POINTS
from monitord.rollups import FIVE_MINUTES, HOUR, STEPS, Point
from monitord.trends import FLAP_WINDOW, Drift, Flapping

DEFAULT_SPAN = {FIVE_MINUTES: 86400.0, HOUR: 7 * 86400.0}  # without `since`: the last day, or week
LIST_MAX = 1000  # lines listed at most; `total` says how many there were


class BadQuery(ValueError):
    """The parameter at fault and why: a 400 in the API."""


def parse_span(query: Mapping[str, str], zone: str, now: float) -> tuple[str, float, float]:
    """`step` (5m or 1h), `since` and `until` (ISO dates and times; default the last day of
    5-minute periods, the last week of hours, up to now), at most MAX_POINTS periods."""
    step = query.get("step", "5m")
    if step not in STEPS:
        raise BadQuery(f"step: expected 5m or 1h, not {step!r}")
    tz = ZoneInfo(zone)
    until = _check("until", timestamp(tz), query["until"]) if "until" in query else now
    since = _check("since", timestamp(tz), query["since"]) if "since" in query else until - DEFAULT_SPAN[STEPS[step]]
    if since >= until:
        raise BadQuery("until: expected after since")
    if (until - since) / STEPS[step] > MAX_POINTS:
        raise BadQuery(f"since: at most {MAX_POINTS} periods of {step} at once; ask for a shorter span, or step=1h")
    return step, since, until


def parse_at_least(raw: str | None, default: int) -> int:
    """`?min=`: times gone bad, 2 to 1000."""
    return default if raw is None else int(_check("min", integer(2, 1000), _integer(raw)))


def parse_margin(raw: str | None, default: float) -> float:
    """`?margin=`: in the level's unit, 0.1 to 100."""
    return default if raw is None else float(_check("margin", number(0.1, 100.0), _number(raw)))


def _check(name: str, check: Any, value: Any) -> Any:
    try:
        return check(value)
    except Invalid as problem:
        raise BadQuery(f"{name}: {problem.message}" + (f" ({problem.hint})" if problem.hint else "")) from None


def _shown(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def series_json(points: Sequence[tuple[int, Point]]) -> dict[str, Any]:
    """Periods as one list of starts, and per metric lists of min, avg and max beside it
    (null where the line had no reading of it): what a small chart takes as it is."""
    metrics = list(dict.fromkeys(metric for _, point in points for metric in point))
    series: dict[str, dict[str, list[float | None]]] = {m: {"min": [], "avg": [], "max": []} for m in metrics}
    for _, point in points:
        for metric, columns in series.items():
            lo, avg, hi = point.get(metric, (None, None, None))
            columns["min"].append(_shown(lo))
            columns["avg"].append(_shown(avg))
            columns["max"].append(_shown(hi))
    return {"at": [start for start, _ in points], "series": series}


def flapping_json(found: Sequence[Flapping], devices: Mapping[str, str], at_least: int) -> dict[str, Any]:
    lines = [{"subscriber": f.line, "device": devices.get(f.line), "changes": f.changes, "last": f.last} for f in found]
    return {"window_s": FLAP_WINDOW, "min_changes": at_least, "total": len(lines), "lines": lines[:LIST_MAX]}


def drifting_json(found: Sequence[Drift], margin: float) -> dict[str, Any]:
    lines = [
        {
            "subscriber": d.line,
            "device": d.device,
            "metric": d.metric,
            "average": round(d.average, 2),
            "threshold": d.threshold,
            "op": d.op,
            "headroom": d.headroom,
        }
        for d in found
    ]
    return {"margin": margin, "total": len(lines), "lines": lines[:LIST_MAX]}


def _integer(value: object) -> object:
    """A query's text as the integer it spells, else as it is (for the check to refuse)."""
    return int(value) if isinstance(value, str) and value.lstrip("-").isdigit() else value


def _number(value: object) -> object:
    """A query's text as the finite number it spells, else as it is (for the check to refuse)."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return number if math.isfinite(number) else value
    return value
