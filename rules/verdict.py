"""How one sample, then all of a target's latest samples, become a status.

A sample gives a verdict for its probe: "up", "down" or "error" (the probe could not tell). A
line's status is then read from the verdicts of all its probes and its firing checks; a device's
from its own verdicts. The tables in the functions below are the whole policy:

line:   parent device down -> UNREACHABLE; only the modem's ICMP down while a head-end row of
        the line is up (in sync) on a head-end that answers (that probe, and ping) -> CPE
        (customer premises: the modem is off or unplugged, the network is fine); any probe down
        -> DOWN; no probe up -> UNKNOWN; a check fires -> DEGRADED; else OK.
device: every probe down -> DOWN; some down or erroring while another answers -> UNKNOWN (alive,
        but we cannot see it properly: AUTH_FAILURE is a misconfiguration, not an outage);
        no data -> UNKNOWN; a check fires (ICMP loss, latency) -> DEGRADED; else OK.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from monitord.model import Outcome, Sample, Status
from rules.checks import RuleSet

Verdict = tuple[Literal["up", "down", "error"], str]

_PROBE_DOWN = (Outcome.TIMEOUT, Outcome.UNREACHABLE)


def technology(probe: str) -> str:
    """The rule set a probe's samples feed: "snmp:adsl" -> "adsl", "icmp" -> "icmp"."""
    return probe.removeprefix("snmp:")


def verdict(sample: Sample, rules: RuleSet) -> Verdict:
    """What this one sample says about its target.

    A line is down when its modem does not answer ICMP, when its row is missing on a device that
    answered (NOT_FOUND), or when a `down` rule says so (oper_up 0, cm_status not registered).
    An SNMP timeout reported for a line row tells nothing about the line itself, nor does a
    device without the profile's table (NO_TABLE): that is a wrong profile, said on the device.
    """
    outcome, probe = sample.outcome, sample.probe
    if outcome is Outcome.OK:
        for rule in rules.downs:
            value = sample.values.get(rule.metric)
            reason = None if value is None else rule.down(value)
            if reason:
                return "down", f"{probe}: {reason}"
        return "up", ""
    is_line = sample.target.level == "line"
    if outcome is Outcome.NOT_FOUND and is_line:
        return "down", f"{probe}: no row on the device"
    if outcome in _PROBE_DOWN and (not is_line or probe == "icmp"):
        return "down", f"{probe}: {outcome.value}"
    if outcome is Outcome.NO_TABLE:
        return "error", f"{probe}: {sample.detail or outcome.value}"
    return "error", f"{probe}: {outcome.value}"


def feed_values(sample: Sample, judged: Verdict) -> Mapping[str, float]:
    """The values the checks see: the sample's metrics when the probe says up, plus `up` (1 or
    0) for the flap rules whenever the probe could tell."""
    if judged[0] == "error":
        return {}
    up = {"up": 1.0 if judged[0] == "up" else 0.0}
    return {**sample.values, **up} if judged[0] == "up" else up


def agent_missed(sample: Sample, verdicts: Mapping[str, Verdict]) -> bool:
    """An SNMP agent that did not answer while another probe (the ping) says its device is up.
    Busy agents miss polls now and then: fed to the flap rule as changes, two misses in a few
    minutes made a DSLAM whose every line was fine "flapping", an incident of no lines."""
    return (
        sample.outcome in _PROBE_DOWN
        and sample.probe != "icmp"
        and any(kind == "up" for probe, (kind, _) in verdicts.items() if probe != sample.probe)
    )


def line_status(
    verdicts: Mapping[str, Verdict],
    firing: tuple[str, ...],
    device_down: str | None,
    head_end: Mapping[str, Verdict] | None = None,
) -> tuple[Status, tuple[str, ...]]:
    """`head_end`: the device's own verdicts, which say whether a line row is fresh (the device
    answered that probe, and its ping if it is pinged) rather than the last one read before the
    head-end went quiet."""
    if device_down is not None:
        return Status.UNREACHABLE, (f"device {device_down} down",)
    downs = sorted(reason for kind, reason in verdicts.values() if kind == "down")
    if downs:
        answered = head_end or {}
        if len(downs) == 1 and verdicts.get("icmp", ("up", ""))[0] == "down" and answered.get("icmp", ("up", ""))[0] != "down":
            synced = sorted(
                probe
                for probe, (kind, _) in verdicts.items()
                if probe != "icmp" and kind == "up" and answered.get(probe, ("error", ""))[0] == "up"
            )
            if synced:
                return Status.CPE, (downs[0], f"{synced[0]}: line in sync on the head-end")
        return Status.DOWN, tuple(downs)
    if not any(kind == "up" for kind, _ in verdicts.values()):
        return Status.UNKNOWN, tuple(sorted(r for _, r in verdicts.values())) or ("no data",)
    if firing:
        return Status.DEGRADED, firing
    return Status.OK, ()


def device_status(verdicts: Mapping[str, Verdict], firing: tuple[str, ...]) -> tuple[Status, tuple[str, ...]]:
    if not verdicts:
        return Status.UNKNOWN, ("no data",)
    kinds = [kind for kind, _ in verdicts.values()]
    troubles = tuple(sorted(reason for kind, reason in verdicts.values() if kind != "up"))
    if all(kind == "down" for kind in kinds):
        return Status.DOWN, troubles
    if troubles:
        return Status.UNKNOWN, troubles
    if firing:
        return Status.DEGRADED, firing
    return Status.OK, ()
