"""Line levels per device (monitord/quality.py): which checks give levels, what a poll keeps,
and percentiles and out-of-spec counts checked against the definitions they implement."""

from __future__ import annotations

import math
import operator
from array import array

from hypothesis import given
from hypothesis import strategies as st

from monitord.model import NodeRef, Outcome, Sample
from monitord.noc_metrics import Summaries
from monitord.quality import QUANTILES, Readings, level_limits, out_of_spec, quantile, readings, summarize
from rules.checks import Drift, Flap, RuleSet, Threshold

MARGIN = Threshold("snr_margin_down", "snr_margin_down_db", "at_most", 6.0, 8.0, hold=120.0)
ATTENUATION = Threshold("attenuation_down", "attenuation_down_db", "above", 60.0, 58.0)
RULES = RuleSet(
    checks=(
        MARGIN,
        ATTENUATION,
        Threshold("resyncs", "resyncs_per_s", "above", 2.0, 0.5, per=900.0, per_label="15m"),
        Threshold("errored_15m", "errored_seconds_last_15m", "above", 90.0, 30.0),
        Flap("flapping", 900.0, 3.0, 1.0),
        Drift("snr_drift", "snr_margin_down_db", "drop", 6.0, 3.0, 86400.0),
    )
)
OPS = {"below": operator.lt, "at_most": operator.le, "above": operator.gt, "at_least": operator.ge}


def test_levels_are_the_thresholds_on_decibels_without_a_rate() -> None:
    assert level_limits(RULES) == {"snr_margin_down_db": (MARGIN,), "attenuation_down_db": (ATTENUATION,)}


def test_a_poll_keeps_the_levels_of_the_lines_that_answered() -> None:
    def line(n: int, outcome: Outcome, **values: float) -> Sample:
        return Sample(NodeRef("line", f"s{n}"), "snmp:adsl", 0.0, outcome, values)

    samples = [
        Sample(NodeRef("device", "dslam-1"), "snmp:adsl", 0.0, Outcome.OK, {"uptime_s": 5.0, "snr_margin_down_db": 99.0}),
        line(1, Outcome.OK, snr_margin_down_db=12.5, attenuation_down_db=30.0, resyncs_per_s=0.1),
        line(2, Outcome.OK, snr_margin_down_db=4.0),
        line(3, Outcome.NOT_FOUND, snr_margin_down_db=1.0),
        line(4, Outcome.OK),
    ]
    kept = {r.metric: (list(r.values), r.limits) for r in readings(samples, level_limits(RULES))}
    assert kept == {"snr_margin_down_db": ([12.5, 4.0], (MARGIN,)), "attenuation_down_db": ([30.0], (ATTENUATION,))}
    assert readings(samples[:1], level_limits(RULES)) == ()


def test_summary_of_a_dslam() -> None:
    (margins,) = readings(
        [Sample(NodeRef("line", f"s{n}"), "snmp:adsl", 0.0, Outcome.OK, {"snr_margin_down_db": float(n)}) for n in range(1, 11)],
        {"snr_margin_down_db": (MARGIN,)},
    )
    summary = summarize(margins)
    assert summary.quantiles == (1.0, 5.0, 9.0)
    assert (summary.lines, summary.out_of_spec) == (10, 6)  # 1..6 dB are at most 6


@given(st.lists(st.floats(-50, 80, allow_nan=False), min_size=1, max_size=200), st.sampled_from(QUANTILES))
def test_quantile_is_the_nearest_rank(values: list[float], q: float) -> None:
    ordered = sorted(values)
    rank = math.ceil(q * len(ordered))  # the smallest value with at least q of the values at or below it
    assert quantile(ordered, q) == ordered[rank - 1]
    assert sum(v <= quantile(ordered, q) for v in ordered) >= q * len(ordered)


@given(
    st.lists(st.integers(-20, 80).map(float), max_size=200),
    st.lists(st.tuples(st.sampled_from(sorted(OPS)), st.integers(-20, 80).map(float)), min_size=1, max_size=3),
)
def test_out_of_spec_counts_each_line_past_any_threshold_once(values: list[float], limits: list[tuple[str, float]]) -> None:
    thresholds = [Threshold("t", "x_db", op, level, level) for op, level in limits]  # type: ignore[arg-type]
    expected = sum(any(OPS[t.op](v, t.level) for t in thresholds) for v in values)
    assert out_of_spec(sorted(values), thresholds) == expected


def test_a_devices_levels_are_summarized_once_per_poll_of_it() -> None:
    """/metrics summarizes a device's levels again only when a new poll replaced its readings;
    a device no longer polled drops out."""
    first = Readings("snr_margin_down_db", array("d", [9.0, 7.0, 5.0]), (MARGIN,))
    other = Readings("snr_margin_down_db", array("d", [12.0]), (MARGIN,))
    summaries = Summaries()
    a, b = ("r", "x", "dslam-1", "snr_margin_down_db"), ("r", "x", "dslam-2", "snr_margin_down_db")
    before = summaries.of({a: first, b: other})
    assert before[a] == summarize(first) and before[a].out_of_spec == 1
    again = summaries.of({a: first, b: other})
    assert again[a] is before[a] and again[b] is before[b], "nothing new: the same summaries"
    polled = Readings("snr_margin_down_db", array("d", [4.0, 3.0]), (MARGIN,))
    after = summaries.of({a: polled})
    assert after == {a: summarize(polled)} and after[a].out_of_spec == 2
