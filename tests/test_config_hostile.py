"""Hostile and absurd configuration: whatever `check` accepts, `run` can run (issue 9, items 8-11)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from monitord.config import load_config
from monitord.config.rules import RulesConfigError, parse_rules
from monitord.duration import DurationError, parse_duration
from tests.test_config import BASE, CSV, ENV, line_of, problems_of, write

REPO = Path(__file__).resolve().parent.parent


def _cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitord.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **ENV},
    )


# --- 8. durations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "old, new, key, fragment",
    [
        ("timeout: 2s", "timeout: .nan", "snmp.timeout", "nan is not a duration"),
        ("timeout: 2s", "timeout: .inf", "snmp.timeout", "inf is longer than allowed (hint: use 10ms to 10m)"),
        ("timeout: 2s", "timeout: 0.0001", "snmp.timeout", "0.0001 is shorter than allowed (hint: use 10ms to 10m)"),
        ("timeout: 2s", "timeout: 0", "snmp.timeout", "0 is shorter than allowed"),
        (
            "icmp_interval: 30s",
            "icmp_interval: 1.0e-9",
            "polling.icmp_interval",
            "1e-09 is shorter than allowed (hint: use 100ms to 1d)",
        ),
        (
            "icmp_interval: 30s",
            "icmp_interval: 99999999999999d",
            "polling.icmp_interval",
            "'99999999999999d' is longer than allowed",
        ),
        (
            "icmp_interval: 30s",
            "icmp_interval: 1" + "0" * 400,
            "polling.icmp_interval",
            "more than 20 digits is longer than allowed",
        ),
        ("icmp_interval: 30s", "icmp_interval: -.inf", "polling.icmp_interval", "-inf is not a duration: it is negative"),
        (
            "icmp_interval: 30s",
            "icmp_interval: 5 m",
            "polling.icmp_interval",
            "'5 m' is not a duration: no spaces inside a duration (hint: write 5m)",
        ),
        ("settle: 60s", "settle: .nan", "rules.settle", "nan is not a duration"),
        ("settle: 60s", "settle: 5 m", "rules.settle", "no spaces inside a duration"),
        ("settle: 60s", "settle: 2d", "rules.settle", "'2d' is longer than allowed (hint: use 0s to 1d)"),
        (
            '    reason: Yazılım güncellemesi\n',
            '    reason: Yazılım güncellemesi\n    grace: .nan\n',
            "maintenance[0].grace",
            "nan is not a duration",
        ),
        (
            '    quiet_hours: "22:00-08:00"\n',
            '    quiet_hours: "22:00-08:00"\n    update_after: 1ms\n',
            "notifiers.sms.update_after",
            "'1ms' is shorter than allowed (hint: use 1m to 30d)",
        ),
    ],
)
def test_absurd_durations_are_refused_at_their_line(tmp_path: Path, old: str, new: str, key: str, fragment: str) -> None:
    assert BASE.count(old) == 1
    edited = BASE.replace(old, new)
    [problem] = problems_of(write(tmp_path, edited))
    assert (problem.key, problem.line) == (key, line_of(edited, new.strip().splitlines()[-1]))
    assert fragment in str(problem)


def test_one_grammar_for_rules_and_the_rest(tmp_path: Path) -> None:
    edited = BASE.replace("timeout: 2s", "timeout: 1m30s").replace("settle: 60s", "settle: 1h30m")
    config = load_config(write(tmp_path, edited), ENV)
    assert config.snmp.timeout == 90.0 and config.rules.settle == 5400.0


@pytest.mark.parametrize("value", ["5 m", " 5 m ", "1h 30m"])
def test_spaces_inside_are_refused_everywhere_saying_so(value: str) -> None:
    with pytest.raises(DurationError, match="no spaces inside"):
        parse_duration(value)
    with pytest.raises(RulesConfigError, match="no spaces inside"):
        parse_rules({"stable": value})


@pytest.mark.parametrize(
    "rule, fragment",
    [
        ({"kind": "flap", "window": "0s", "above": 3, "clear": 1}, "shorter than allowed"),
        ({"kind": "flap", "window": float("nan"), "above": 3, "clear": 1}, "not a duration"),
        ({"metric": "m", "above": 3, "for": float("inf")}, "longer than allowed"),
        ({"metric": "m", "above": 3, "per": 1e-9}, "shorter than allowed"),
        ({"kind": "drift", "metric": "m", "drop": 3, "baseline": "1000d"}, "longer than allowed"),
    ],
)
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


# --- 11. secret files and YAML alias bombs -----------------------------------------------------

TOKEN = "file: secrets/api.token"
BOMB = "".join(f"x{n}: &x{n} [{', '.join([f'*x{n - 1}'] * 10) if n else ', '.join(['lol'] * 10)}]\n" for n in range(10))


@pytest.mark.parametrize(
    "target, fragment",
    [
        ("/dev/zero", "not a regular file (a device, FIFO or socket)"),
        ("fifo", "not a regular file (a device, FIFO or socket)"),
        ("big", "larger than 64 KiB"),
    ],
)
def test_secret_files_are_regular_and_small(tmp_path: Path, target: str, fragment: str) -> None:
    """/dev/zero was read until the kernel killed `check` (93 s); a FIFO hung it for ever."""
    os_fifo = tmp_path / "secrets" / "fifo"
    path = write(tmp_path, BASE.replace(TOKEN, f"file: {target if target.startswith('/') else 'secrets/' + target}"))
    os.mkfifo(os_fifo)
    (tmp_path / "secrets" / "big").write_text("x" * (64 * 1024 + 1))
    done = _cli("check", str(path), timeout=20)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    [line] = [line for line in done.stderr.splitlines() if "http.token.file" in line]
    assert line.startswith(f"{path}:{line_of(BASE, TOKEN)}: http.token.file: cannot read secret file") and fragment in line


def test_inventory_and_config_that_are_not_files_fail_fast(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "subs.fifo")
    path = write(tmp_path, BASE.replace("csv: subs.csv", "csv: subs.fifo"))
    [problem] = problems_of(path)
    assert problem.key == "subscribers.csv" and "not a regular file" in problem.message
    os.mkfifo(tmp_path / "config.fifo")
    done = _cli("check", str(tmp_path / "config.fifo"), timeout=20)
    assert done.returncode == 1 and "cannot read the file: not a regular file" in done.stderr


def test_alias_bomb_in_the_config_is_refused_at_once(tmp_path: Path) -> None:
    """A billion laughs took 33 s and 2.5 GB before it was refused."""
    edited = BASE + BOMB.replace("\nx", "\n  x").replace("x0:", "bomb:\n  x0:", 1)
    path = write(tmp_path, edited)
    done = _cli("check", str(path), timeout=20)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    found = re.search(r"config\.yaml:(\d+): YAML syntax error: aliases expand to more than 100,000 values", done.stderr)
    assert found and line_of(edited, "  x1:") <= int(found.group(1)) <= line_of(edited, "  x9:"), done.stderr


def test_alias_bomb_in_a_line_profile_is_refused(tmp_path: Path) -> None:
    from probes.profile_files import ProfileError, load_profiles

    (tmp_path / "bomb.yaml").write_text("name: bomb\n" + BOMB)
    with pytest.raises(ProfileError, match=r"bomb.yaml:6: aliases expand to more than 100,000 values"):
        load_profiles([tmp_path])


def test_yaml_nested_too_deep_or_a_huge_number_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    for extra, fragment in (
        ("deep: " + "[" * 200 + "]" * 200 + "\n", "nested more than 64 levels deep"),
        ("huge: " + "9" * 5000 + "\n", "4300 digits"),
    ):
        [problem] = problems_of(write(tmp_path, BASE + extra))
        assert fragment in problem.message


# --- 9. inventory cross-references -------------------------------------------------------------

CMTS_ROW = "100003,Ali Çelik,5441234567,,tr,cmts-1,,00:1A:2B:3C:4D:5E,127.0.11.1"


@pytest.mark.parametrize(
    "file, old, new, key, at, fragment",
    [
        (
            "subs.csv",
            "127.0.11.1",
            "127.0.10.4",
            "modem",
            "100003",
            "modem 127.0.10.4 is the address of device 'rtr-1' (hint: a modem and a head-end never share an address)",
        ),
        (
            "subs.csv",
            CMTS_ROW,
            CMTS_ROW + "\n100004,Veli Can,,,tr,rtr-1,,,127.0.11.1",
            "modem",
            "100004",
            "modem 127.0.11.1 is already the modem of subscriber '100003' (hint: first given at {dir}/subs.csv:4)",
        ),
        (
            "subs.csv",
            CMTS_ROW,
            CMTS_ROW + "\n100004,Veli Can,,,tr,rtr-1,,,::ffff:127.0.11.1",
            "modem",
            "100004",
            "'::ffff:127.0.11.1' is an IPv4-mapped IPv6 address (hint: write it as 127.0.11.1)",
        ),
        ("subs.csv", "127.0.11.1", "fe80::1%eth0", "modem", "100003", "'fe80::1%eth0' has a zone (%eth0)"),
        ("subs.csv", "Ali Çelik", "Ali\x00Çelik", "name", "100003", "contains the control character U+0000"),
        ("subs.csv", "en,olt-1,7", "en,olt-1,99999999999999999999", "port", "100002", "out of range"),
        ("subs.csv", "en,olt-1,7", "en,olt-1," + "9" * 5000, "port", "100002", "out of range"),
        ("subs.csv", "en,olt-1,7", "en,olt-1,²", "port", "100002", "expected an integer, got '²'"),
        (
            "config.yaml",
            "address: 127.0.10.4",
            "address: ::ffff:127.0.10.1",
            "topology.regions[0].exchanges[1].devices[1].address",
            "::ffff:127.0.10.1",
            "IPv4-mapped IPv6 address (hint: write it as 127.0.10.1)",
        ),
        (
            "config.yaml",
            "address: 127.0.10.4",
            "address: fe80::1%eth0",
            "topology.regions[0].exchanges[1].devices[1].address",
            "fe80::1%eth0",
            "has a zone (%eth0)",
        ),
        (
            "config.yaml",
            "address: 127.0.10.4",
            "address: 0.0.0.0",
            "topology.regions[0].exchanges[1].devices[1].address",
            "0.0.0.0",
            "is not the address of one host",
        ),
        (
            "config.yaml",
            "      name: Eczane\n",
            '      name: "Eczane\\0"\n',
            "subscribers.lines[0].name",
            "Eczane",
            "contains the control character U+0000",
        ),
        (
            "config.yaml",
            "file: secrets/api.token",
            'file: "secrets/api\\0.token"',
            "http.token.file",
            "api\\0.token",
            "contains the control character U+0000",
        ),
        (
            "config.yaml",
            "      email: eczane@example.com\n",
            "      email: eczane@example.com\n      modem: 127.0.10.1\n",
            "subscribers.lines[0].modem",
            "modem: 127.0.10.1",
            "modem 127.0.10.1 is the address of device 'dslam-1'",
        ),
    ],
)
def test_inventory_cross_references(tmp_path: Path, file: str, old: str, new: str, key: str, at: str, fragment: str) -> None:
    original = CSV if file == "subs.csv" else BASE
    assert original.count(old) == 1
    edited = original.replace(old, new)
    path = write(tmp_path, edited if file == "config.yaml" else BASE, edited if file == "subs.csv" else CSV)
    [problem] = problems_of(path)
    assert (problem.file, problem.key) == (str(tmp_path / file), key)
    assert problem.line == line_of(edited, at)
    assert fragment.format(dir=tmp_path) in str(problem)


# --- 10. phone numbers an SMS can reach ---------------------------------------------------------

JOHN = "100002,John Smith,+44 7911 123456"


@pytest.mark.parametrize(
    "written, reason",
    [
        ("0212 555 12 34", "is a landline"),
        ("0 850 123 45 67", "is a VoIP number"),
        ("+44 909 879 0000", "is a premium-rate number"),
        ("0511 123 45 67", "is not in use in its country's numbering plan"),
    ],
)
def test_a_number_no_sms_can_reach_is_a_problem_at_its_csv_line(tmp_path: Path, written: str, reason: str) -> None:
    """`0212...` and `0850...` became SMS recipients, dead letters in the middle of an outage."""
    subscribers = CSV.replace(JOHN, f"100002,John Smith,{written}")
    [problem] = problems_of(write(tmp_path, BASE, subscribers))
    assert (problem.file, problem.line, problem.key) == (str(tmp_path / "subs.csv"), 3, "phone")
    assert str(problem).endswith(
        f"'{written}' {reason}: no SMS can reach it "
        "(hint: give a mobile number, leave it empty, or set notifiers.sms.non_mobile: skip)"
    )


def test_skip_makes_it_a_warning_and_the_line_gets_no_sms(tmp_path: Path) -> None:
    config_text = BASE.replace('    quiet_hours: "22:00-08:00"\n', '    quiet_hours: "22:00-08:00"\n    non_mobile: skip\n')
    path = write(tmp_path, config_text, CSV.replace(JOHN, "100002,John Smith,0212 555 12 34"))
    config = load_config(path, ENV)
    assert config.topology.lines["100002"].phone is None
    assert config.topology.lines["100001"].phone == "+905321234567"
    [warning] = config.warnings
    assert str(warning) == f"{tmp_path / 'subs.csv'}:3: phone: '0212 555 12 34' is a landline: this line gets no SMS"
    done = _cli("check", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"warning: {warning}\n" and done.stdout.endswith("4 subscriber lines\n")


def test_numbers_without_a_country_code_are_read_in_the_configured_region(tmp_path: Path) -> None:
    config_text = BASE.replace("  csv: subs.csv\n", "  csv: subs.csv\n  phone_region: DE\n")
    subscribers = CSV.replace("0532 123 45 67", "0151 23456789").replace("5441234567", "+90 544 123 45 67")
    config = load_config(write(tmp_path, config_text.replace("0532 555 12 34", "0176 12345678"), subscribers), ENV)
    lines = config.topology.lines
    assert (lines["100001"].phone, lines["100003"].phone, lines["900001"].phone) == (
        "+4915123456789",
        "+905441234567",
        "+4917612345678",
    )
    [problem] = problems_of(write(tmp_path, config_text.replace("phone_region: DE", "phone_region: XX")))
    assert problem.key == "subscribers.phone_region" and "'XX' is not a country code" in problem.message


# --- any key, any hostile value: a problem, never an exception ---------------------------------

HOSTILE_YAML = (".nan", "9" * 30, "2026-13-45", '"\\0"', "{a: 1}", '"fe80::1%eth0"')
HOSTILE_CELLS = ("\0", "9" * 5000, "²", "nan", "fe80::1%eth0", "\u202e")


def test_hostile_values_anywhere_are_problems_not_exceptions(tmp_path: Path) -> None:
    """Every `key: value` line of the test config and every CSV cell, in turn, gets each hostile
    value; load_config must answer with ConfigError (or a config) every time. Before, a date like
    2026-13-45 anywhere, or a 5000-digit or '²' port cell, escaped as ValueError."""
    from monitord.config import ConfigError

    edits: list[tuple[str, str]] = []
    lines = BASE.splitlines()
    for index, line in enumerate(lines):
        if (found := re.match(r"^(\s*(?:- )?[a-z_]+: )(.+)$", line)) is not None:
            edits += [
                ("\n".join(lines[:index] + [found.group(1) + value] + lines[index + 1 :]) + "\n", CSV) for value in HOSTILE_YAML
            ]
    rows = CSV.splitlines()
    for index in range(1, len(rows)):
        cells = rows[index].split(",")
        for column in range(len(cells)):
            for value in HOSTILE_CELLS:
                edited = ",".join(cells[:column] + [value] + cells[column + 1 :])
                edits.append((BASE, "\n".join(rows[:index] + [edited] + rows[index + 1 :]) + "\n"))
    assert len(edits) > 400
    for config_text, subscribers in edits:
        try:
            load_config(write(tmp_path, config_text, subscribers), ENV)
        except ConfigError:
            pass
