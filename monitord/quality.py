"""Line quality per device for the metrics: percentiles of a level (SNR margin, attenuation,
optical power) over a device's lines, and how many lines are out of spec, with no series per line.

A level is a metric a `Threshold` check of the line's rule set watches without a `per` scale,
named in dB (`_db`, `_dbm`, `_dbmv`): counters and flags are left out. A poll keeps its lines'
latest readings of those levels as one packed array per metric (`readings`, 8 bytes a line);
sorting them into percentiles and counting the lines past the threshold's level (`summarize`)
is left to whoever formats /metrics, in a worker thread, once per poll of the device.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from monitord.model import Outcome, Sample
from rules.checks import RuleSet, Threshold

LEVEL_UNITS = ("_db", "_dbm", "_dbmv")
QUANTILES = (0.1, 0.5, 0.9)


def level_limits(ruleset: RuleSet) -> dict[str, tuple[Threshold, ...]]:
    """Metric -> the thresholds that watch it, for the levels among a rule set's checks."""
    limits: dict[str, tuple[Threshold, ...]] = {}
    for check in ruleset.checks:
        if isinstance(check, Threshold) and check.per == 1.0 and check.metric.endswith(LEVEL_UNITS):
            limits[check.metric] = (*limits.get(check.metric, ()), check)
    return limits


@dataclass(frozen=True, slots=True, eq=False)
class Readings:
    """One poll's readings of one level on a device's lines. Compared by identity: a new poll
    is a new object, which is what tells the metrics to summarize the device again."""

    metric: str
    values: array[float]
    limits: tuple[Threshold, ...]


def readings(samples: Iterable[Sample], limits: Mapping[str, tuple[Threshold, ...]]) -> tuple[Readings, ...]:
    """The levels read on the lines of one poll (lines that answered, with a value)."""
    values = {metric: array("d") for metric in limits}
    for sample in samples:
        if sample.target.level == "line" and sample.outcome is Outcome.OK:
            for metric, kept in values.items():
                value = sample.values.get(metric)
                if value is not None:
                    kept.append(value)
    return tuple(Readings(metric, kept, limits[metric]) for metric, kept in values.items() if kept)


@dataclass(frozen=True, slots=True)
class Summary:
    quantiles: tuple[float, ...]  # at QUANTILES
    lines: int  # lines with a reading
    out_of_spec: int  # lines on the bad side of any of the metric's thresholds


def quantile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank quantile of sorted values: a value some line really has."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def out_of_spec(ordered: Sequence[float], limits: Iterable[Threshold]) -> int:
    """Sorted values on the bad side of any threshold's level (its hold aside): the low ones
    are a prefix, the high ones a suffix, found by bisection."""
    low = high = 0
    for limit in limits:
        if limit.op == "below":
            low = max(low, bisect_left(ordered, limit.level))
        elif limit.op == "at_most":
            low = max(low, bisect_right(ordered, limit.level))
        elif limit.op == "above":
            high = max(high, len(ordered) - bisect_right(ordered, limit.level))
        else:
            high = max(high, len(ordered) - bisect_left(ordered, limit.level))
    return min(len(ordered), low + high)


def summarize(kept: Readings) -> Summary:
    ordered = sorted(kept.values)
    return Summary(tuple(quantile(ordered, q) for q in QUANTILES), len(ordered), out_of_spec(ordered, kept.limits))
