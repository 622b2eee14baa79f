"""The `rules:` section: bundled defaults, overrides by name, and errors with key paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from monitord.builtin import DEFAULT_RULES
from monitord.config.rules import RulesConfigError, load_default_rules_text, parse_rules
from monitord.duration import parse_duration
from rules.checks import DownUnless, Drift, Flap, Threshold
from tests.test_config import BASE, ENV, line_of, problems_of, write


def rule(config, tech: str, name: str):
    rules = config.ruleset(tech)
    return next(r for r in (*rules.downs, *rules.checks) if r.name == name)


@pytest.mark.parametrize(
    ("tech", "name", "op", "level"),
    [
        ("adsl", "snr_margin_down", "at_most", 6.0),  # DSL SNR margin <= 6 dB
        ("vdsl2", "snr_margin_down", "at_most", 6.0),
        ("docsis-cm", "ds_snr", "below", 30.0),  # DOCSIS downstream SNR < 30 dB
        ("docsis-cm", "ds_power_low", "below", -15.0),  # outside -15..+15 dBmV
        ("docsis-cm", "ds_power_high", "above", 15.0),
        ("docsis-cm", "us_tx_power", "above", 52.0),  # upstream Tx > 52 dBmV
        ("gpon-axos", "onu_rx_low", "below", -27.0),  # GPON Rx below -27 dBm
        ("shdsl", "snr_margin", "at_most", 3.0),  # SHDSL worst endpoint margin <= 3 dB
        ("oneaccess-shdsl", "severely_errored_seconds", "above", 10.0),
        ("icmp", "loss", "above", 0.2),
        ("icmp", "latency", "above", 100.0),
    ],
)
def test_default_thresholds(tech: str, name: str, op: str, level: float) -> None:
    check = rule(parse_rules(None), tech, name)
    assert isinstance(check, Threshold)
    assert (check.op, check.level) == (op, level)


def test_defaults_cover_every_technology_with_sources() -> None:
    config = parse_rules(None)
    assert set(config.technologies) >= {"adsl", "vdsl2", "docsis-cm", "docsis-cmts", "gpon-axos", "if-mib", "icmp"}
    text = load_default_rules_text()
    for source in ("webwhitenoise", "Cisco", "G.984.2", "RFC 4546", "Y.1541", "gacq"):
        assert source in text
    assert isinstance(rule(config, "if-mib", "oper_status"), DownUnless)
    assert isinstance(rule(config, "vdsl2", "snr_margin_drift"), Drift)
    assert isinstance(rule(config, "adsl", "flapping"), Flap)
    assert rule(config, "adsl", "resyncs").per == 900.0
    assert (config.settle, config.stable, config.correlation.min_count) == (60.0, 600.0, 5)


def test_default_file_has_no_duplicate_keys() -> None:
    """PyYAML keeps the last of two equal keys silently; the bundled file must not rely on it."""

    def walk(node: yaml.Node, path: str) -> None:
        if isinstance(node, yaml.MappingNode):
            keys = [k.value for k, _ in node.value]
            assert len(keys) == len(set(keys)), f"duplicate key under {path or 'top'}"
            for k, v in node.value:
                walk(v, f"{path}.{k.value}")

    walk(yaml.compose(DEFAULT_RULES.read_text(encoding="utf-8")), "")


def test_overrides_replace_rules_by_name_and_null_drops() -> None:
    config = parse_rules(
        {
            "settle": "90s",
            "correlation": {"min_count": 10},
            "technologies": {
                "adsl": {
                    "snr_margin_down": {"metric": "snr_margin_down_db", "below": 5, "clear": 7, "for": "5m"},
                    "attenuation_down": None,
                    "crc": {"metric": "crc_per_s", "per": "1h", "above": 100},
                },
                "my-olt": {"rx": {"metric": "onu_rx_power_dbm", "below": -26}},
            },
        }
    )
    snr = rule(config, "adsl", "snr_margin_down")
    assert (snr.op, snr.level, snr.clear, snr.hold) == ("below", 5.0, 7.0, 300.0)
    names = {c.name for c in config.ruleset("adsl").checks}
    assert "attenuation_down" not in names and {"crc", "snr_margin_up"} <= names
    assert rule(config, "adsl", "crc").per == 3600.0
    assert rule(config, "my-olt", "rx").clear == -26.0  # no hysteresis unless asked
    assert config.settle == 90.0
    assert (config.correlation.min_count, config.correlation.close_count) == (10, 3)
    assert config.ruleset("unknown-tech").checks == ()


@pytest.mark.parametrize(
    ("data", "path", "words"),
    [
        ({"setle": "60s"}, ("setle",), "unknown key"),
        ({"settle": "soon"}, ("settle",), "duration"),
        ({"settle": -1}, ("settle",), "duration"),
        ({"correlation": {"min_fraction": 1.5}}, ("correlation", "min_fraction"), "between"),
        ({"correlation": {"close_count": 9}}, ("correlation", "close_count"), "must not exceed"),
        ({"correlation": {"min_count": 0}}, ("correlation", "min_count"), "whole number"),
        ({"correlation": {"windw": "1m"}}, ("correlation", "windw"), "unknown key"),
        ({"technologies": {"adsl": {"x": {"metric": "m"}}}}, ("technologies", "adsl", "x"), "exactly one of"),
        (
            {"technologies": {"adsl": {"x": {"metric": "m", "below": 5, "above": 9}}}},
            ("technologies", "adsl", "x"),
            "exactly one",
        ),
        (
            {"technologies": {"adsl": {"x": {"metric": "m", "below": 5, "clear": 4}}}},
            ("technologies", "adsl", "x", "clear"),
            "good side",
        ),
        (
            {"technologies": {"adsl": {"x": {"metric": "m", "above": "high"}}}},
            ("technologies", "adsl", "x", "above"),
            "number",
        ),
        ({"technologies": {"adsl": {"x": {"below": 5}}}}, ("technologies", "adsl", "x", "metric"), "metric"),
        (
            {"technologies": {"adsl": {"x": {"metric": "m", "below": 5, "colour": 1}}}},
            ("technologies", "adsl", "x", "colour"),
            "unknown key",
        ),
        (
            {"technologies": {"adsl": {"x": {"kind": "magic", "metric": "m"}}}},
            ("technologies", "adsl", "x", "kind"),
            "unknown rule kind",
        ),
        (
            {"technologies": {"adsl": {"f": {"kind": "flap", "window": "5m", "above": 3}}}},
            ("technologies", "adsl", "f", "clear"),
            "missing",
        ),
        (
            {"technologies": {"adsl": {"f": {"kind": "flap", "window": "5m", "above": 3, "clear": 0}}}},
            ("technologies", "adsl", "f", "clear"),
            "above 0",
        ),
        (
            {"technologies": {"adsl": {"d": {"kind": "drift", "metric": "m", "drop": 3}}}},
            ("technologies", "adsl", "d"),
            "baseline",
        ),
        (
            {"technologies": {"adsl": {"o": {"kind": "down", "metric": "oper_up", "unless": 1}}}},
            ("technologies", "adsl", "o", "unless"),
            "list",
        ),
        ({"technologies": {"adsl": ["x"]}}, ("technologies", "adsl"), "mapping"),
        ({"technologies": {5: {}}}, ("technologies", 5), "strings"),
        ({"technologies": {"adsl": {"x": {"kind": ["flap"]}}}}, ("technologies", "adsl", "x", "kind"), "unknown rule kind"),
        (["settle"], (), "mapping"),
    ],
)
def test_errors_name_the_key_path(data, path: tuple, words: str) -> None:
    with pytest.raises(RulesConfigError) as caught:
        parse_rules(data)
    assert any(p == path and words in message for p, message, _hint in caught.value.problems), caught.value.problems


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(RulesConfigError) as caught:
        parse_rules({"settle": "x", "stable": "y", "technologies": {"icmp": {"loss": {"metric": "loss"}}}})
    paths = [p for p, _message, _hint in caught.value.problems]
    assert ("settle",) in paths and ("stable",) in paths and ("technologies", "icmp", "loss") in paths
    assert "rules.settle" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("5m", 300.0), ("2h", 7200.0), ("1d", 86400.0), ("250ms", 0.25), (45, 45.0), (1.5, 1.5)],
)
def test_durations(text, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5 minutes", "", "-5s", True, None, float("nan")])
def test_bad_durations(text) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_a_key_without_a_value_takes_the_default() -> None:
    """As in every other section: `settle:` written empty means the bundled 60s."""
    config = parse_rules({"settle": None, "correlation": {"min_count": None}})
    assert (config.settle, config.correlation.min_count) == (60.0, 5)


@pytest.mark.parametrize(
    ("rule", "key", "message"),
    [
        ("x: {metric: m, below: 5, clear: 4}", "rules.technologies.adsl.x.clear", "must be on the good side of below 5"),
        ("x: {metric: m, below: 5, colour: 1}", "rules.technologies.adsl.x.colour", "unknown key 'colour'"),
        ("x: {kind: magic, metric: m}", "rules.technologies.adsl.x.kind", "unknown rule kind 'magic'"),
        ("o: {kind: down, metric: m, unless: [1, a]}", "rules.technologies.adsl.o.unless[1]", "expected a number, got 'a'"),
        ("f: {kind: flap, window: 5m, above: 3}", "rules.technologies.adsl.f.clear", "missing required key"),
    ],
)
def test_a_rule_problem_names_its_line_and_key(tmp_path: Path, rule: str, key: str, message: str) -> None:
    written = f"  technologies:\n    adsl:\n      {rule}\n"
    text = BASE.replace("  settle: 60s\n", "  settle: 60s\n" + written, 1)
    [problem] = problems_of(write(tmp_path, text), ENV)
    assert (problem.key, problem.line, problem.message) == (key, line_of(text, rule), message)


def test_the_schema_documents_every_rule_kind() -> None:
    """config/schema.json lists the keys of `rules:`, its correlation and each kind of rule."""
    schema = json.loads((Path(__file__).resolve().parents[1] / "config" / "schema.json").read_text(encoding="utf-8"))
    defs = schema["$defs"]
    section = defs[schema["properties"]["rules"]["$ref"].rsplit("/", 1)[1]]
    timers = {"settle", "gather", "stable", "reopen_window", "maintenance_grace", "cpe_hold"}
    assert set(section["properties"]) == timers | {"correlation", "technologies"}
    correlation = defs[section["properties"]["correlation"]["$ref"].rsplit("/", 1)[1]]
    assert set(correlation["properties"]) == {"window", "min_count", "min_fraction", "close_count", "close_fraction"}
    kinds = section["properties"]["technologies"]["additionalProperties"]["additionalProperties"]["oneOf"]
    keys = {
        defs[kind["$ref"].rsplit("/", 1)[1]]["properties"]["kind"]["const"]: set(
            defs[kind["$ref"].rsplit("/", 1)[1]]["properties"]
        )
        for kind in kinds
        if "$ref" in kind
    }
    assert keys == {
        "threshold": {"kind", "metric", "below", "at_most", "above", "at_least", "clear", "for", "per"},
        "flap": {"kind", "metric", "window", "above", "clear"},
        "drift": {"kind", "metric", "drop", "rise", "clear", "baseline", "per"},
        "down": {"kind", "metric", "unless", "reason"},
    }
    assert {"type": "null", "description": "Drops the default rule of this name"} in kinds
