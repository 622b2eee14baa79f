"""Hostile and absurd configuration: whatever `check` accepts, `run` can run (issue 9, items 8-11)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitord.config import load_config
from monitord.duration import DurationError, parse_duration
from rules.config import RulesConfigError, parse_rules
from tests.test_config import BASE, ENV, line_of, problems_of, write

REPO = Path(__file__).resolve().parent.parent


def _cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitord.cli", *args], capture_output=True, text=True,
                           timeout=timeout, cwd=REPO, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **ENV})


# --- 8. durations ------------------------------------------------------------------------------


@pytest.mark.parametrize("old, new, key, fragment", [
    ("timeout: 2s", "timeout: .nan", "snmp.timeout", "nan is not a duration"),
    ("timeout: 2s", "timeout: .inf", "snmp.timeout", "inf is longer than allowed (hint: use 10ms to 10m)"),
    ("timeout: 2s", "timeout: 0.0001", "snmp.timeout", "0.0001 is shorter than allowed (hint: use 10ms to 10m)"),
    ("timeout: 2s", "timeout: 0", "snmp.timeout", "0 is shorter than allowed"),
    ("icmp_interval: 30s", "icmp_interval: 1.0e-9", "polling.icmp_interval", "1e-09 is shorter than allowed (hint: use 1s to 1d)"),
    ("icmp_interval: 30s", "icmp_interval: 99999999999999d", "polling.icmp_interval", "'99999999999999d' is longer than allowed"),
    ("icmp_interval: 30s", "icmp_interval: 1" + "0" * 400, "polling.icmp_interval", "more than 20 digits is longer than allowed"),
    ("icmp_interval: 30s", "icmp_interval: -.inf", "polling.icmp_interval", "-inf is not a duration: it is negative"),
    ("icmp_interval: 30s", "icmp_interval: 5 m", "polling.icmp_interval", "'5 m' is not a duration: no spaces inside a duration (hint: write 5m)"),
    ("settle: 60s", "settle: .nan", "rules.settle", "nan is not a duration"),
    ("settle: 60s", "settle: 5 m", "rules.settle", "no spaces inside a duration"),
    ("settle: 60s", "settle: 2d", "rules.settle", "'2d' is longer than allowed (hint: use 0s to 1d)"),
    ('    reason: Yazılım güncellemesi\n', '    reason: Yazılım güncellemesi\n    grace: .nan\n', "maintenance[0].grace", "nan is not a duration"),
    ('    quiet_hours: "22:00-08:00"\n', '    quiet_hours: "22:00-08:00"\n    update_after: 1ms\n', "notifiers.sms.update_after", "'1ms' is shorter than allowed (hint: use 1m to 30d)"),
])
def test_absurd_durations_are_refused_at_their_line(tmp_path: Path, old: str, new: str, key: str, fragment: str) -> None:
    assert BASE.count(old) == 1
    edited = BASE.replace(old, new)
    [problem] = problems_of(write(tmp_path, edited))
    assert (problem.key, problem.line) == (key, line_of(edited, new.strip().splitlines()[-1]))
    assert fragment in str(problem)


def test_one_grammar_for_rules_and_the_rest(tmp_path: Path) -> None:
    edited = BASE.replace("timeout: 2s", "timeout: 1m30s").replace("settle: 60s", "settle: 1h30m")
    config = load_config(write(tmp_path, edited), ENV)
    assert config.snmp.timeout == 90.0 and config.rules["settle"] == "1h30m"
    assert parse_rules(config.rules).settle == 5400.0


@pytest.mark.parametrize("value", ["5 m", " 5 m ", "1h 30m"])
def test_spaces_inside_are_refused_everywhere_saying_so(value: str) -> None:
    with pytest.raises(DurationError, match="no spaces inside"):
        parse_duration(value)
    with pytest.raises(RulesConfigError, match="no spaces inside"):
        parse_rules({"stable": value})


@pytest.mark.parametrize("rule, fragment", [
    ({"kind": "flap", "window": "0s", "above": 3, "clear": 1}, "shorter than allowed"),
    ({"kind": "flap", "window": float("nan"), "above": 3, "clear": 1}, "not a duration"),
    ({"metric": "m", "above": 3, "for": float("inf")}, "longer than allowed"),
    ({"metric": "m", "above": 3, "per": 1e-9}, "shorter than allowed"),
    ({"kind": "drift", "metric": "m", "drop": 3, "baseline": "1000d"}, "longer than allowed"),
])
def test_rule_durations_have_bounds(rule: dict[str, object], fragment: str) -> None:
    with pytest.raises(RulesConfigError, match=fragment):
        parse_rules({"technologies": {"adsl": {"x": rule}}})


def test_check_refuses_what_run_cannot_run(tmp_path: Path) -> None:
    """`.nan` passed `check` and crashed `run`; `1.0e-9` busy-looped it past SIGTERM."""
    path = write(tmp_path, BASE.replace("timeout: 2s", "timeout: .nan").replace("icmp_interval: 30s", "icmp_interval: 1.0e-9"))
    for command in ("check", "run"):
        done = _cli(command, str(path))
        assert done.returncode == 1, done
        assert f"{path}:{line_of(BASE, 'timeout: 2s')}: snmp.timeout: nan is not a duration" in done.stderr
        assert "polling.icmp_interval: 1e-09 is shorter than allowed" in done.stderr
        assert "Traceback" not in done.stderr
