"""docs/line-quality.md against the default rules: every rule in its tables exists with that
metric and level, and every default threshold is in its table."""

from __future__ import annotations

import re
from pathlib import Path

from monitord.config.rules import parse_rules
from rules.checks import Threshold

DOC = Path(__file__).resolve().parent.parent / "docs" / "line-quality.md"
RULES = parse_rules(None)
ROW = re.compile(r"^\| ([a-z0-9, -]+) \| (\w+) \| (\w+) \| `(\w+) \[?([^`\]]+)\]?`")


def table_rows() -> list[tuple[list[str], str, str, str, str]]:
    """(technologies, rule, metric, op, level) of every threshold and down-rule row of the doc."""
    found = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            techs, rule, metric, op, level = match.groups()
            found.append(([t.strip() for t in techs.split(",")], rule, metric, op, level))
    return found


def test_every_documented_rule_is_a_default_rule_with_that_metric_and_level() -> None:
    rows = table_rows()
    assert len(rows) >= 48  # 41 thresholds, 7 down-rule rows
    for techs, name, metric, op, level in rows:
        for tech in techs:
            rules = RULES.ruleset(tech)
            rule = next((r for r in (*rules.downs, *rules.checks) if r.name == name), None)
            assert rule is not None, f"{tech}.{name} is in the doc, not in the default rules"
            assert rule.metric == metric, (tech, name)
            if op == "unless":
                assert rule.values == {float(v) for v in level.split(",")}, (tech, name)  # type: ignore[union-attr]
            else:
                assert isinstance(rule, Threshold) and (rule.op, rule.level) == (op, float(level)), (tech, name)


def test_every_default_threshold_is_documented() -> None:
    documented = {(tech, name) for techs, name, *_ in table_rows() for tech in techs}
    for tech in RULES.technologies:
        if tech == "adsl-wholedb":  # the adsl rules unchanged, as the doc says
            assert RULES.ruleset(tech) == RULES.ruleset("adsl")
            continue
        for rule in RULES.ruleset(tech).checks:
            if isinstance(rule, Threshold):
                assert (tech, rule.name) in documented, f"{tech}.{rule.name} is missing from {DOC.name}"
