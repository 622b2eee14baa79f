"""The `rules:` section: defaults from monitord/builtin/rules/default.yaml, then the operator's overrides.

```yaml
rules:
  settle: 60s            # a new fault waits this long before it may become an incident
  gather: 10s            # a settled device fault waits at most this long for suspected devices near it
  stable: 10m            # a line must be verified good this long before it counts as restored
  reopen_window: 1h      # a recurrence within this time reopens the resolved incident
  maintenance_grace: 15m # default grace after a maintenance window (for the config loader)
  cpe_hold: 15m          # a silent modem on a line in sync waits this long before its incident
  correlation:           # regional incidents (see rules/engine.py)
    window: 5m           # a line counts as failing at a node for this long after it recovers
    min_count: 5         # open when at least this many lines
    min_fraction: 0.5    #   and at least this fraction of the node's lines fail
    close_count: 3       # keep open while at least this many
    close_fraction: 0.3  #   and this fraction still count
  technologies:          # per line profile, plus "icmp"; rules replace defaults by name
    adsl:
      snr_margin_down: {metric: snr_margin_down_db, at_most: 5, clear: 8, for: 5m}
      attenuation_down: null               # drop a default rule
```

Rule kinds (`kind:` defaults to threshold):

- threshold: `metric`, one of `below` `at_most` `above` `at_least`, optional `clear` (hysteresis,
  on the good side), `for` (hold) and `per` (scale a `*_per_s` rate: `per: 15m`).
- flap: `window`, `above`, `clear` (> 0), optional `metric` (default `up`, the probe verdict).
- drift: `metric`, `drop` or `rise` (distance from the baseline), optional `clear` (default half),
  `baseline` (time constant of the line's own average), optional `per`.
- down: `metric`, `unless` (the values that mean up), e.g. `oper_up` unless [1]; optional `reason`
  (what down means, shown with the value: "not in sync (oper_up 0)").
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from monitord.builtin import DEFAULT_RULES
from monitord.duration import ANY, HOLD, INTERVAL, WINDOW, Bounds
from monitord.duration import parse_duration as parse_any_duration
from monitord.yamlload import load_yaml
from rules.checks import OPS, Check, DownUnless, Drift, Flap, RuleSet, Threshold

KeyPath = tuple[str | int, ...]


class RulesConfigError(Exception):
    """Every problem found, each with its key path inside `rules:`, so the caller can add file:line."""

    def __init__(self, problems: list[tuple[KeyPath, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"rules.{'.'.join(map(str, path))}: {msg}" for path, msg in problems))


@dataclass(frozen=True, slots=True)
class Correlation:
    window: float
    min_count: int
    min_fraction: float
    close_count: int
    close_fraction: float


@dataclass(frozen=True, slots=True)
class RulesConfig:
    settle: float
    gather: float
    stable: float
    reopen_window: float
    maintenance_grace: float
    correlation: Correlation
    technologies: Mapping[str, RuleSet]
    cpe_hold: float = 900.0  # the customer switched the modem off: no incident for this long

    def ruleset(self, technology: str) -> RuleSet:
        return self.technologies.get(technology, _EMPTY)


_EMPTY = RuleSet()


def load_default_rules_text() -> str:
    """The bundled defaults: the one file `rules/` reads."""
    return DEFAULT_RULES.read_text(encoding="utf-8")


@cache
def _defaults() -> Mapping[str, Any]:
    document = load_yaml(load_default_rules_text())
    assert not document.duplicates, f"monitord/builtin/rules/default.yaml: duplicate keys {document.duplicates}"
    assert isinstance(document.data, dict), "monitord/builtin/rules/default.yaml must be a mapping"
    return document.data


def parse_rules(data: Mapping[str, Any] | None, defaults: Mapping[str, Any] | None = None) -> RulesConfig:
    """Merge `data` (the raw `rules:` mapping, or None) over the defaults and check it all."""
    base = _defaults() if defaults is None else defaults
    problems: list[tuple[KeyPath, str]] = []
    user: Mapping[str, Any] = {}
    if data is not None and not isinstance(data, Mapping):
        problems.append(((), "must be a mapping"))
    elif data is not None:
        user = data
    config = _Parser(problems).config(base, user)
    if problems or config is None:
        raise RulesConfigError(problems)
    return config


def parse_duration(value: Any, bounds: Bounds = ANY) -> float:
    """`30s`, `5m`, `2h`, `1d`, `1h30m`, `250ms` or a number of seconds: the grammar of the whole config."""
    return parse_any_duration(value, bounds)


_DURATIONS = ("settle", "gather", "stable", "reopen_window", "maintenance_grace", "cpe_hold")
_BOUNDS = {"reopen_window": Bounds(0.0, WINDOW.high)}  # 0: a recurrence is always a new incident
_TOP = (*_DURATIONS, "correlation", "technologies")
_CORRELATION = ("window", "min_count", "min_fraction", "close_count", "close_fraction")
_RULE_KEYS = {
    "threshold": {"kind", "metric", "clear", "for", "per", *OPS},
    "flap": {"kind", "metric", "window", "above", "clear"},
    "drift": {"kind", "metric", "drop", "rise", "clear", "baseline", "per"},
    "down": {"kind", "metric", "unless", "reason"},
}


class _Parser:
    """Collects problems instead of stopping at the first one."""

    def __init__(self, problems: list[tuple[KeyPath, str]]) -> None:
        self.problems = problems

    def fail(self, path: KeyPath, message: str) -> None:
        self.problems.append((path, message))

    def mapping(self, value: Any, path: KeyPath, allowed: Collection[str] | None) -> Mapping[str, Any]:
        """`value` as a mapping; `allowed` None means any key (technology and rule names)."""
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(path, "must be a mapping")
            return {}
        for key in value:
            if allowed is not None and key not in allowed:
                self.fail((*path, key), f"unknown key (expected one of: {', '.join(sorted(allowed))})")
        return value

    def duration(self, value: Any, path: KeyPath, bounds: Bounds = HOLD) -> float:
        try:
            return parse_duration(value, bounds)
        except (ValueError, TypeError) as error:
            self.fail(path, str(error))
            return 0.0

    def number(self, value: Any, path: KeyPath, *, low: float | None = None, high: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(path, f"expected a number, not {value!r}")
            return 0.0
        if (low is not None and value < low) or (high is not None and value > high):
            self.fail(path, f"must be between {low} and {high}" if high is not None else f"must be at least {low}")
        return float(value)

    def count(self, value: Any, path: KeyPath) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        self.fail(path, f"expected a whole number >= 1, not {value!r}")
        return 1

    def config(self, base: Mapping[str, Any], user: Mapping[str, Any]) -> RulesConfig | None:
        self.mapping(user, (), _TOP)
        merged = {key: user.get(key, base.get(key)) for key in _DURATIONS}
        for key, value in merged.items():
            if value is None:
                self.fail((key,), "missing")
        durations = {
            key: self.duration(value, (key,), _BOUNDS.get(key, HOLD)) for key, value in merged.items() if value is not None
        }
        correlation = self.correlation(base.get("correlation") or {}, user.get("correlation"))
        technologies = self.technologies(base.get("technologies") or {}, user.get("technologies"))
        if self.problems or correlation is None:
            return None
        return RulesConfig(correlation=correlation, technologies=technologies, **durations)

    def correlation(self, base: Mapping[str, Any], user: Any) -> Correlation | None:
        given = self.mapping(user, ("correlation",), _CORRELATION)
        merged = {key: given.get(key, base.get(key)) for key in _CORRELATION}
        missing = [key for key, value in merged.items() if value is None]
        for key in missing:
            self.fail(("correlation", key), "missing")
        if missing:
            return None

        def path(key: str) -> KeyPath:
            return ("correlation", key)

        result = Correlation(
            window=self.duration(merged["window"], path("window"), WINDOW),
            min_count=self.count(merged["min_count"], path("min_count")),
            min_fraction=self.number(merged["min_fraction"], path("min_fraction"), low=0, high=1),
            close_count=self.count(merged["close_count"], path("close_count")),
            close_fraction=self.number(merged["close_fraction"], path("close_fraction"), low=0, high=1),
        )
        if result.close_count > result.min_count:
            self.fail(path("close_count"), "must not exceed min_count")
        if result.close_fraction > result.min_fraction:
            self.fail(path("close_fraction"), "must not exceed min_fraction")
        return result

    def technologies(self, base: Mapping[str, Any], user: Any) -> dict[str, RuleSet]:
        given = self.mapping(user, ("technologies",), None)
        result: dict[str, RuleSet] = {}
        for tech in sorted({*base, *given}, key=str):
            path: KeyPath = ("technologies", tech)
            if not isinstance(tech, str):
                self.fail(path, "technology names are strings")
                continue
            rules = dict(self.mapping(base.get(tech), path, None))
            for name, rule in self.mapping(given.get(tech), path, None).items():
                if rule is None:
                    rules.pop(name, None)
                else:
                    rules[name] = rule
            downs: list[DownUnless] = []
            checks: list[Check] = []
            for name in sorted(rules, key=str):
                parsed = self.rule(str(name), rules[name], (*path, name))
                if isinstance(parsed, DownUnless):
                    downs.append(parsed)
                elif parsed is not None:
                    checks.append(parsed)
            result[tech] = RuleSet(tuple(downs), tuple(checks))
        return result

    def rule(self, name: str, raw: Any, path: KeyPath) -> Check | DownUnless | None:
        kind = raw.get("kind", "threshold") if isinstance(raw, Mapping) else "threshold"
        if not isinstance(kind, str) or kind not in _RULE_KEYS:
            self.fail((*path, "kind"), f"unknown rule kind {kind!r} (expected one of: {', '.join(_RULE_KEYS)})")
            return None
        spec = self.mapping(raw, path, _RULE_KEYS[kind])
        before = len(self.problems)
        metric = spec.get("metric", "up" if kind == "flap" else None)
        if not isinstance(metric, str) or not metric:
            self.fail((*path, "metric"), "missing metric name")
        rule = getattr(self, kind)(name, str(metric), spec, path)
        return rule if len(self.problems) == before else None

    def threshold(self, name: str, metric: str, spec: Mapping[str, Any], path: KeyPath) -> Threshold | None:
        ops = [op for op in OPS if op in spec]
        if len(ops) != 1:
            self.fail(path, f"needs exactly one of: {', '.join(OPS)}")
            return None
        op = ops[0]
        level = self.number(spec[op], (*path, op))
        clear = self.number(spec.get("clear", level), (*path, "clear"))
        if (op in ("below", "at_most") and clear < level) or (op in ("above", "at_least") and clear > level):
            self.fail((*path, "clear"), f"must be on the good side of {op} {level:g}")
        per = spec.get("per")
        return Threshold(
            name=name,
            metric=metric,
            op=op,  # type: ignore[arg-type]
            level=level,
            clear=clear,
            hold=self.duration(spec.get("for", 0), (*path, "for")),
            per=self.duration(per, (*path, "per"), INTERVAL) if per is not None else 1.0,
            per_label=str(per) if per is not None else "",
        )

    def flap(self, name: str, metric: str, spec: Mapping[str, Any], path: KeyPath) -> Flap | None:
        missing = [key for key in ("window", "above", "clear") if key not in spec]
        for key in missing:
            self.fail((*path, key), "missing")
        if missing:
            return None
        above = self.number(spec["above"], (*path, "above"), low=0)
        clear = self.number(spec["clear"], (*path, "clear"), low=0)
        if not 0 < clear < above:
            self.fail((*path, "clear"), "must be above 0 and below `above`")
        window = self.duration(spec["window"], (*path, "window"), WINDOW)
        return Flap(name=name, window=window, above=above, clear=clear, metric=metric)

    def drift(self, name: str, metric: str, spec: Mapping[str, Any], path: KeyPath) -> Drift | None:
        directions = [d for d in ("drop", "rise") if d in spec]
        if len(directions) != 1 or "baseline" not in spec:
            self.fail(path, "needs `baseline` and exactly one of: drop, rise")
            return None
        direction = directions[0]
        delta = self.number(spec[direction], (*path, direction), low=0)
        clear = self.number(spec.get("clear", delta / 2), (*path, "clear"), low=0)
        if clear > delta:
            self.fail((*path, "clear"), f"must not exceed {direction}")
        baseline = self.duration(spec["baseline"], (*path, "baseline"), WINDOW)
        per = spec.get("per")
        return Drift(
            name=name,
            metric=metric,
            direction=direction,  # type: ignore[arg-type]
            delta=delta,
            clear=clear,
            baseline=baseline,
            per=self.duration(per, (*path, "per"), INTERVAL) if per is not None else 1.0,
        )

    def down(self, name: str, metric: str, spec: Mapping[str, Any], path: KeyPath) -> DownUnless | None:
        values = spec.get("unless")
        if not isinstance(values, list) or not values:
            self.fail((*path, "unless"), "expected a list of the values that mean up")
            return None
        reason = spec.get("reason", "")
        if not isinstance(reason, str):
            self.fail((*path, "reason"), "expected text")
            reason = ""
        return DownUnless(name, metric, frozenset(self.number(v, (*path, "unless", i)) for i, v in enumerate(values)), reason)
