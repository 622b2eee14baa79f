"""Table-driven cases for every rule kind and for the verdict tables."""

from __future__ import annotations

import pytest

from monitord.model import NodeRef, Outcome, Sample, Status
from rules.checks import DownUnless, Drift, Flap, RuleSet, Threshold
from rules.verdict import device_status, feed_values, line_status, verdict


def run(check, feeds: list[tuple[float, float]], at: float | None = None):
    """Feed (time, value) pairs, then optionally let time pass to `at`; return the state."""
    state = check.initial()
    for now, value in feeds:
        state = check.feed(state, value, now)
    return state if at is None else check.elapse(state, at)


SNR = Threshold("snr", "snr_margin_down_db", "at_most", 6.0, 8.0)
DS_SNR = Threshold("ds_snr", "ds_snr_db", "below", 30.0, 32.0)
TX = Threshold("tx", "us_tx_power_dbmv", "above", 52.0, 50.0)
ATLEAST = Threshold("a", "x", "at_least", 10.0, 10.0)
HOLD = Threshold("loss", "loss", "above", 0.2, 0.05, hold=120.0)
RESYNCS = Threshold("resyncs", "resyncs_per_s", "above", 2.0, 0.5, per=900.0, per_label="15m")


@pytest.mark.parametrize(
    ("check", "feeds", "at", "fires"),
    [
        (SNR, [(0, 6.0)], None, True),  # at_most is inclusive
        (SNR, [(0, 6.1)], None, False),
        (DS_SNR, [(0, 30.0)], None, False),  # below is strict
        (DS_SNR, [(0, 29.9)], None, True),
        (TX, [(0, 52.0)], None, False),
        (TX, [(0, 52.1)], None, True),
        (ATLEAST, [(0, 10.0)], None, True),
        (SNR, [(0, 5.0), (60, 7.0)], None, True),  # hysteresis: 7 is not yet back above 8
        (SNR, [(0, 5.0), (60, 8.0)], None, False),
        (DS_SNR, [(0, 29.0), (60, 31.0)], None, True),
        (DS_SNR, [(0, 29.0), (60, 32.0)], None, False),
        (TX, [(0, 53.0), (60, 51.0)], None, True),
        (TX, [(0, 53.0), (60, 50.0)], None, False),
        (HOLD, [(0, 0.5)], None, False),  # `for`: pending only
        (HOLD, [(0, 0.5), (60, 0.5)], None, False),
        (HOLD, [(0, 0.5), (60, 0.5), (120, 0.5)], None, True),
        (HOLD, [(0, 0.5)], 119.0, False),  # time alone completes the hold
        (HOLD, [(0, 0.5)], 120.0, True),
        (HOLD, [(0, 0.5), (60, 0.1), (120, 0.5)], 200.0, False),  # a good sample restarts it
        (RESYNCS, [(0, 2.0 / 900)], None, False),  # 2 per 15 minutes is not above 2
        (RESYNCS, [(0, 3.0 / 900)], None, True),
        (RESYNCS, [(0, 3.0 / 900), (60, 1.0 / 900)], None, True),  # 1 > clear 0.5
        (RESYNCS, [(0, 3.0 / 900), (60, 0.4 / 900)], None, False),
    ],
)
def test_threshold(check: Threshold, feeds, at, fires: bool) -> None:
    assert (check.firing(run(check, feeds, at)) is not None) is fires


def test_threshold_reason_and_due() -> None:
    state = run(HOLD, [(10, 0.5)])
    assert HOLD.due(state) == 130.0
    assert HOLD.firing(HOLD.elapse(state, 130.0)) == "loss 0.5 > 0.2"
    assert RESYNCS.firing(run(RESYNCS, [(0, 4.0 / 900)])) == "resyncs_per_s per 15m 4 > 2"
    assert SNR.firing(run(SNR, [(0, 4.2)])) == "snr_margin_down_db 4.2 <= 6"


def test_unchanged_state_is_the_same_object() -> None:
    """The engine skips judging a target again when its checks hand back the same state."""
    healthy = SNR.feed(SNR.initial(), 12.0, 0)
    assert SNR.feed(healthy, 11.5, 60) is healthy
    firing = SNR.feed(healthy, 4.0, 60)
    assert SNR.feed(firing, 4.5, 120) is firing
    flap = FLAP.feed(FLAP.initial(), 1.0, 0)
    assert FLAP.feed(flap, 1.0, 60) is flap


FLAP = Flap("flapping", window=900.0, above=3.0, clear=1.0)


@pytest.mark.parametrize(
    ("ups", "at", "fires"),
    [
        ([1, 0, 1, 0], None, False),  # three changes: not above 3
        ([1, 0, 1, 0, 1], None, True),  # four quick changes
        ([1, 1, 1, 1, 1, 1], None, False),  # steady: no changes at all
        ([1, 0, 1, 0, 1], 240 + 600, True),  # score 3.63 * e^(-600/900) = 1.86, above clear
        ([1, 0, 1, 0, 1], 240 + 1200, False),  # 3.63 * e^(-1200/900) = 0.96: cleared
    ],
)
def test_flap(ups: list[int], at: float | None, fires: bool) -> None:
    state = run(FLAP, [(60.0 * i, float(u)) for i, u in enumerate(ups)], at)
    assert (FLAP.firing(state) is not None) is fires


def test_flap_changes_far_apart_do_not_add_up() -> None:
    state = run(FLAP, [(3600.0 * i, float(i % 2)) for i in range(10)])
    assert FLAP.firing(state) is None


def test_flap_due_is_when_the_score_reaches_clear() -> None:
    state = run(FLAP, [(60.0 * i, float(i % 2)) for i in range(5)])
    due = FLAP.due(state)
    assert due is not None
    assert FLAP.firing(FLAP.elapse(state, due - 1)) is not None
    assert FLAP.firing(FLAP.elapse(state, due + 1e-6)) is None


DRIFT = Drift("drift", "snr_margin_down_db", "drop", 6.0, 3.0, baseline=86400.0)
RISE = Drift("es", "errored_seconds_per_s", "rise", 60.0, 30.0, baseline=3600.0, per=900.0)
DAY = 86400.0


@pytest.mark.parametrize(
    ("check", "feeds", "fires"),
    [
        (DRIFT, [(0, 14.0), (3600, 6.0)], False),  # baseline not warm yet
        (DRIFT, [(0, 14.0), (DAY, 14.0), (DAY + 60, 7.5)], True),  # 6.5 dB below its own norm
        (DRIFT, [(0, 14.0), (DAY, 14.0), (DAY + 60, 8.5)], False),  # 5.5 dB: within
        (DRIFT, [(0, 14.0), (DAY, 14.0), (DAY + 60, 7.0), (DAY + 120, 10.0)], True),  # 4 below: not cleared
        (DRIFT, [(0, 14.0), (DAY, 14.0), (DAY + 60, 7.0), (DAY + 120, 11.5)], False),  # within clear 3
        (RISE, [(0, 0.0), (3600, 0.0), (3660, 70 / 900)], True),  # 70 errored s per 15m, norm 0
        (RISE, [(0, 0.1), (3600, 0.1), (3660, 0.15)], False),  # 135 vs 90 per 15m: within 60
    ],
)
def test_drift(check: Drift, feeds, fires: bool) -> None:
    assert (check.firing(run(check, feeds)) is not None) is fires


def test_drift_baseline_freezes_while_firing() -> None:
    state = run(DRIFT, [(0, 14.0), (DAY, 14.0)] + [(DAY + 60 * i, 7.0) for i in range(1, 500)])
    assert DRIFT.firing(state) is not None
    assert state[0] == pytest.approx(14.0)


@pytest.mark.parametrize(("value", "down"), [(6, False), (8, False), (2, True), (7, True)])
def test_down_unless(value: float, down: bool) -> None:
    rule = DownUnless("online", "cm_status", frozenset({6.0, 8.0, 9.0}))
    assert (rule.down(value) is not None) is down


CMTS = RuleSet(downs=(DownUnless("online", "cm_status", frozenset({6.0, 8.0})),))
LINE, DEVICE = NodeRef("line", "l1"), NodeRef("device", "d1")


@pytest.mark.parametrize(
    ("target", "probe", "outcome", "values", "expected"),
    [
        (LINE, "snmp:docsis-cmts", Outcome.OK, {"cm_status": 8.0}, "up"),
        (LINE, "snmp:docsis-cmts", Outcome.OK, {"cm_status": 2.0}, "down"),
        (LINE, "snmp:docsis-cmts", Outcome.OK, {}, "up"),
        (LINE, "snmp:adsl", Outcome.NOT_FOUND, {}, "down"),
        (LINE, "icmp", Outcome.TIMEOUT, {}, "down"),
        (LINE, "icmp", Outcome.UNREACHABLE, {}, "down"),
        (LINE, "snmp:adsl", Outcome.TIMEOUT, {}, "error"),  # a row timeout says nothing of the line
        (LINE, "snmp:adsl", Outcome.AGENT_ERROR, {}, "error"),
        (DEVICE, "snmp:adsl", Outcome.TIMEOUT, {}, "down"),
        (DEVICE, "icmp", Outcome.UNREACHABLE, {}, "down"),
        (DEVICE, "snmp:adsl", Outcome.AUTH_FAILURE, {}, "error"),
        (DEVICE, "snmp:adsl", Outcome.NOT_FOUND, {}, "error"),
    ],
)
def test_verdict(target: NodeRef, probe: str, outcome: Outcome, values, expected: str) -> None:
    assert verdict(Sample(target, probe, 0.0, outcome, values), CMTS)[0] == expected


def test_feed_values() -> None:
    ok = Sample(LINE, "snmp:adsl", 0.0, Outcome.OK, {"snr_margin_down_db": 9.0})
    assert feed_values(ok, ("up", "")) == {"snr_margin_down_db": 9.0, "up": 1.0}
    assert feed_values(ok, ("down", "x")) == {"up": 0.0}
    assert feed_values(ok, ("error", "x")) == {}


UP, DOWN, ERR = ("up", ""), ("down", "icmp: timeout"), ("error", "snmp:adsl: agent_error")


@pytest.mark.parametrize(
    ("verdicts", "firing", "device_down", "status"),
    [
        ({}, (), None, Status.UNKNOWN),
        ({"snmp:adsl": UP}, (), None, Status.OK),
        ({"snmp:adsl": UP}, ("snr low",), None, Status.DEGRADED),
        ({"snmp:adsl": UP, "icmp": DOWN}, (), None, Status.DOWN),  # the modem does not answer
        ({"snmp:adsl": ERR}, (), None, Status.UNKNOWN),
        ({"snmp:adsl": UP}, (), "d1", Status.UNREACHABLE),
        ({"icmp": DOWN}, ("snr low",), "d1", Status.UNREACHABLE),  # the parent is the outage
    ],
)
def test_line_status(verdicts, firing, device_down, status: Status) -> None:
    assert line_status(verdicts, firing, device_down)[0] is status


@pytest.mark.parametrize(
    ("verdicts", "firing", "status"),
    [
        ({}, (), Status.UNKNOWN),
        ({"snmp:adsl": DOWN, "icmp": DOWN}, (), Status.DOWN),
        ({"icmp": DOWN}, (), Status.DOWN),  # one probe fails, the other has no data
        ({"snmp:adsl": DOWN, "icmp": UP}, (), Status.UNKNOWN),  # alive but SNMP is silent
        ({"snmp:adsl": ("error", "snmp:adsl: auth_failure"), "icmp": DOWN}, (), Status.UNKNOWN),
        ({"snmp:adsl": ("error", "snmp:adsl: auth_failure")}, (), Status.UNKNOWN),
        ({"snmp:adsl": UP, "icmp": UP}, (), Status.OK),
        ({"icmp": UP}, ("loss 0.4 > 0.2",), Status.DEGRADED),
    ],
)
def test_device_status(verdicts, firing, status: Status) -> None:
    assert device_status(verdicts, firing)[0] is status


def test_auth_failure_names_the_reason() -> None:
    status, reasons = device_status({"snmp:adsl": ("error", "snmp:adsl: auth_failure")}, ())
    assert status is Status.UNKNOWN and reasons == ("snmp:adsl: auth_failure",)
