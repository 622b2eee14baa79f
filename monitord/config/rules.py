"""The `rules:` section, written once as pydantic models: the bundled defaults
(monitord/builtin/rules/default.yaml) are the models' defaults, the operator's keys override them,
and a rule replaces the default rule of the same name (`name: null` drops it).

```yaml
rules:
  settle: 60s            # a new fault waits this long before it may become an incident
  gather: 10s            # a settled device fault waits at most this long for the devices near it, rechecked
  stable: 10m            # a line must be verified good this long before it counts as restored
  reopen_window: 1h      # a recurrence within this time reopens the resolved incident
  maintenance_grace: 15m # default grace after a maintenance window
  cpe_hold: 15m          # a silent modem on a line in sync waits this long before its incident
  correlation:           # regional incidents (see rules/engine.py)
    window: 5m           # a line counts as failing at a node for this long after it recovers
    min_count: 5         # open when at least this many lines
    min_fraction: 0.5    #   and at least this fraction of the node's lines fail
    close_count: 3       # keep open while at least this many
    close_fraction: 0.3  #   and this fraction still count
  technologies:          # per line profile, plus "icmp"
    adsl:
      snr_margin_down: {metric: snr_margin_down_db, at_most: 5, clear: 8, for: 5m}
      attenuation_down: null               # drop a default rule
```

Rule kinds (`kind:` defaults to threshold), one model each below:

- threshold: `metric`, one of `below` `at_most` `above` `at_least`, optional `clear` (hysteresis,
  on the good side), `for` (hold) and `per` (scale a `*_per_s` rate: `per: 15m`).
- flap: `window`, `above`, `clear` (> 0), optional `metric` (default `up`, the probe verdict).
- drift: `metric`, `drop` or `rise` (distance from the baseline), optional `clear` (default half),
  `baseline` (time constant of the line's own average), optional `per`.
- down: `metric`, `unless` (the values that mean up), e.g. `oper_up` unless [1]; optional `reason`
  (what down means, shown with the value: "not in sync (oper_up 0)").

The result is the pure `rules.config.RulesConfig` the engine runs on.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal, Self

from pydantic import ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from monitord import duration as durations
from monitord.builtin import DEFAULT_RULES
from monitord.config import values
from monitord.config.decoder import explain
from monitord.config.fields import DURATION, STRING, Parsed, Section
from monitord.config.problems import Invalid
from monitord.yamlload import KeyPath, load_yaml
from rules.checks import Check, DownUnless, Drift, Flap, RuleSet, Threshold
from rules.config import Correlation, RulesConfig


def load_default_rules_text() -> str:
    """The bundled defaults, the one rules file monitord ships."""
    return DEFAULT_RULES.read_text(encoding="utf-8")


def _default_document() -> dict[str, Any]:
    document = load_yaml(load_default_rules_text())
    assert not document.duplicates, f"{DEFAULT_RULES}: duplicate keys {document.duplicates}"
    assert isinstance(document.data, dict), f"{DEFAULT_RULES} must be a mapping"
    return document.data


DEFAULTS = _default_document()


class RulesConfigError(Exception):
    """Every problem found, each with its key path inside `rules:`, so the caller can add file:line."""

    def __init__(self, problems: list[tuple[KeyPath, str, str | None]]) -> None:
        self.problems = problems
        super().__init__(
            "; ".join(
                f"rules.{'.'.join(map(str, path))}: {message}" + (f" (hint: {hint})" if hint else "")
                for path, message, hint in problems
            )
        )


def _duration(bounds: durations.Bounds) -> Parsed:
    return Parsed(DURATION, values.duration(bounds))


Hold = Annotated[float, _duration(durations.HOLD)]
Span = Annotated[float, _duration(durations.WINDOW)]
Reopen = Annotated[float, _duration(durations.Bounds(0.0, durations.WINDOW.high))]  # 0s: a recurrence is always new
Per = Annotated[float | None, _duration(durations.INTERVAL)]
Level = Annotated[float | None, Parsed({"type": "number"}, values.finite())]
Size = Annotated[float | None, Parsed({"type": "number", "minimum": 0}, values.finite(0.0))]
Metric = Annotated[str | None, Parsed(STRING, values.text)]
Count = Annotated[int, Parsed({"type": "integer", "minimum": 1}, values.count)]
Fraction = Annotated[float, Parsed({"type": "number", "minimum": 0, "maximum": 1}, values.finite(0.0, 1.0))]


def _bundled(description: str, key: str, within: str | None = None) -> Any:
    """A field whose default is the bundled one (default.yaml), validated like the operator's
    value, and whose description says what it is."""
    value = DEFAULTS[within][key] if within else DEFAULTS[key]
    return Field(default=value, description=f"{description} (default {value})")


def _metric(metric: str | None) -> str:
    if metric is None:
        raise Invalid("missing metric name", "e.g. metric: snr_margin_down_db (docs/contracts.md lists them)", ("metric",))
    return metric


OPS = ("below", "at_most", "above", "at_least")


METRIC = "The sample's metric, e.g. snr_margin_down_db (docs/contracts.md lists them)"


class ThresholdRule(Section):
    """Fires when the metric is on the bad side of its level for `for`; clears once back on the good side of `clear`"""

    model_config = ConfigDict(json_schema_extra={"required": ["metric"]})

    kind: Literal["threshold"] = "threshold"
    metric: Metric = Field(default=None, description=METRIC)
    below: Level = Field(default=None, description="Bad below this level (give exactly one of below, at_most, above, at_least)")
    at_most: Level = Field(default=None, description="Bad at this level or below")
    above: Level = Field(default=None, description="Bad above this level")
    at_least: Level = Field(default=None, description="Bad at this level or above")
    clear: Level = Field(default=None, description="Hysteresis: the level that clears it, on the good side (default: the level)")
    for_: Hold = Field(default=0.0, alias="for", description="Bad this long before it fires (default 0s)")
    per: Per = Field(default=None, description="Scale a *_per_s rate: per 15m compares the count per 15 minutes")

    @model_validator(mode="after")
    def _one_level(self) -> Self:
        _metric(self.metric)
        given = [op for op in OPS if getattr(self, op) is not None]
        if len(given) != 1:
            raise Invalid(f"needs exactly one of: {', '.join(OPS)}")
        op, level = given[0], getattr(self, given[0])
        if self.clear is not None and (self.clear < level if op in ("below", "at_most") else self.clear > level):
            raise Invalid(f"must be on the good side of {op} {level:g}", at=("clear",))
        return self

    def built(self, name: str) -> Threshold:
        op = next(op for op in OPS if getattr(self, op) is not None)
        level = getattr(self, op)
        return Threshold(
            name=name,
            metric=_metric(self.metric),
            op=op,  # type: ignore[arg-type]
            level=level,
            clear=level if self.clear is None else self.clear,
            hold=self.for_,
            per=1.0 if self.per is None else self.per,
            per_label="" if self.per is None else durations.format_duration(self.per),
        )


class FlapRule(Section):
    """Fires when the metric went bad more than `above` times within `window`; clears at `clear` or fewer"""

    kind: Literal["flap"]
    metric: Metric = Field(default="up", description="Default up, the probe's verdict")
    window: Span = Field(description="Counts the times it went bad within this span")
    above: Size = Field(description="Fires when it went bad more than this many times")
    clear: Size = Field(description="Clears at this many times or fewer (above 0, below `above`)")

    @model_validator(mode="after")
    def _clear_below_above(self) -> Self:
        if self.above is None or self.clear is None or not 0 < self.clear < self.above:
            raise Invalid("must be above 0 and below `above`", at=("clear",))
        return self

    def built(self, name: str) -> Flap:
        assert self.above is not None and self.clear is not None
        return Flap(name=name, window=self.window, above=self.above, clear=self.clear, metric=_metric(self.metric))


class DriftRule(Section):
    """Fires when the metric moved `drop` or `rise` away from the line's own average over `baseline`"""

    model_config = ConfigDict(json_schema_extra={"required": ["kind", "metric", "baseline"]})

    kind: Literal["drift"]
    metric: Metric = Field(default=None, description=METRIC)
    drop: Size = Field(default=None, description="Fires this far below the baseline (give drop or rise)")
    rise: Size = Field(default=None, description="Fires this far above the baseline")
    clear: Size = Field(default=None, description="Distance from the baseline that clears it (default half)")
    baseline: Annotated[float | None, _duration(durations.WINDOW)] = Field(
        default=None, description="Time constant of the line's own average"
    )
    per: Per = Field(default=None, description="Scale a *_per_s rate, as for a threshold")

    @model_validator(mode="after")
    def _one_direction(self) -> Self:
        _metric(self.metric)
        if (self.drop is None) == (self.rise is None) or self.baseline is None:
            raise Invalid("needs `baseline` and exactly one of: drop, rise")
        delta = self.drop if self.drop is not None else self.rise
        if self.clear is not None and delta is not None and self.clear > delta:
            raise Invalid(f"must not exceed {'drop' if self.drop is not None else 'rise'}", at=("clear",))
        return self

    def built(self, name: str) -> Drift:
        direction: Literal["drop", "rise"] = "drop" if self.drop is not None else "rise"
        delta = self.drop if self.drop is not None else self.rise
        assert delta is not None and self.baseline is not None
        return Drift(
            name=name,
            metric=_metric(self.metric),
            direction=direction,
            delta=delta,
            clear=delta / 2 if self.clear is None else self.clear,
            baseline=self.baseline,
            per=1.0 if self.per is None else self.per,
        )


class DownRule(Section):
    """The line is down unless the metric reads one of `unless` (e.g. oper_up unless [1])"""

    model_config = ConfigDict(json_schema_extra={"required": ["kind", "metric", "unless"]})

    kind: Literal["down"]
    metric: Metric = Field(default=None, description=METRIC)
    unless: list[Annotated[float, Parsed({"type": "number"}, values.finite())]] = Field(
        default=[], description="The values that mean up"
    )
    reason: Annotated[str, Parsed(STRING, values.text)] = Field(
        default="", description='What down means, shown with the value: "not in sync (oper_up 0)"'
    )

    @model_validator(mode="after")
    def _has_metric_and_values(self) -> Self:
        _metric(self.metric)
        if not self.unless:
            raise Invalid("needs the list of the values that mean up", "e.g. unless: [1]", ("unless",))
        return self

    def built(self, name: str) -> DownUnless:
        return DownUnless(name, _metric(self.metric), frozenset(self.unless), self.reason)


def _kind(raw: Any) -> str:
    """The rule's kind, which picks its model; threshold when not written."""
    kind = raw.get("kind") if isinstance(raw, dict) else None
    return "threshold" if kind is None else str(kind)


AnyRule = ThresholdRule | FlapRule | DriftRule | DownRule
Rule = Annotated[
    Annotated[ThresholdRule, Tag("threshold")]
    | Annotated[FlapRule, Tag("flap")]
    | Annotated[DriftRule, Tag("drift")]
    | Annotated[DownRule, Tag("down")],
    Discriminator(_kind),
]


def _name(what: str) -> Parsed:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid(f"{what} names are strings, got {values.shown(value)}", "put it in quotes")
        return value

    return Parsed(STRING, check)


class CorrelationSection(Section):
    """Regional incidents: many lines failing at one node at once are one incident (rules/engine.py)"""

    model_config = ConfigDict(validate_default=True)

    window: Span = _bundled("A line still counts as failing at its nodes this long after recovering", "window", "correlation")
    min_count: Count = _bundled("Open when at least this many lines fail at a node", "min_count", "correlation")
    min_fraction: Fraction = _bundled("and they are at least this fraction of the node's lines", "min_fraction", "correlation")
    close_count: Count = _bundled("Keep it open while at least this many still count", "close_count", "correlation")
    close_fraction: Fraction = _bundled("and they are at least this fraction", "close_fraction", "correlation")

    @model_validator(mode="after")
    def _close_within_open(self) -> Self:
        if self.close_count > self.min_count:
            raise Invalid("must not exceed min_count", at=("close_count",))
        if self.close_fraction > self.min_fraction:
            raise Invalid("must not exceed min_fraction", at=("close_fraction",))
        return self


def _null_drops_a_rule(schema: dict[str, Any]) -> None:
    """`name: null` is the way to drop a default rule, so the schema must let editors write it."""
    rules = schema["properties"]["technologies"]["additionalProperties"]["additionalProperties"]
    rules["oneOf"].append({"type": "null", "description": "Drops the default rule of this name"})


class RulesSection(Section):
    """When a fault becomes an incident, and the rules that judge each technology's lines; defaults: monitord/builtin/rules/default.yaml"""

    model_config = ConfigDict(validate_default=True, json_schema_extra=_null_drops_a_rule)

    settle: Hold = _bundled("A new fault waits this long before it may become an incident", "settle")
    gather: Hold = _bundled(
        "A settled device fault waits at most this long for the devices near it, rechecked at once, to answer or settle", "gather"
    )
    stable: Hold = _bundled("Verified good this long before a line counts as restored", "stable")
    reopen_window: Reopen = _bundled("A recurrence within this time reopens the resolved incident; 0s: never", "reopen_window")
    maintenance_grace: Hold = _bundled("Alerts stay quiet this long after a maintenance window", "maintenance_grace")
    cpe_hold: Hold = _bundled("A silent modem on a line in sync waits this long before its incident", "cpe_hold")
    correlation: CorrelationSection = CorrelationSection()
    technologies: dict[Annotated[str, _name("technology")], dict[Annotated[str, _name("rule")], Rule | None] | None] = Field(
        default={},
        description="Rules per line profile, plus icmp, by name: a rule replaces the default rule of its name, null drops it",
    )


@cache
def _default_rules() -> dict[str, dict[str, AnyRule]]:
    bundled = RulesSection.model_validate(DEFAULTS)
    return {
        tech: {name: rule for name, rule in (rules or {}).items() if rule is not None}
        for tech, rules in bundled.technologies.items()
    }


def parse_rules(data: Any) -> RulesConfig:
    """`data` (the raw `rules:` mapping, or None) checked and merged over the bundled defaults;
    RulesConfigError lists every problem with its key path inside `rules:`."""
    try:
        given = RulesSection.model_validate({} if data is None else data)
    except ValidationError as error:
        raise RulesConfigError(explain(RulesSection, error)) from None
    technologies = {tech: dict(rules) for tech, rules in _default_rules().items()}
    for tech, overrides in given.technologies.items():
        merged = {**technologies.get(tech, {}), **(overrides or {})}
        technologies[tech] = {name: rule for name, rule in merged.items() if rule is not None}
    return RulesConfig(
        settle=given.settle,
        gather=given.gather,
        stable=given.stable,
        reopen_window=given.reopen_window,
        maintenance_grace=given.maintenance_grace,
        cpe_hold=given.cpe_hold,
        correlation=Correlation(**given.correlation.model_dump()),
        technologies={tech: _ruleset(rules) for tech, rules in sorted(technologies.items())},
    )


def _ruleset(rules: dict[str, AnyRule]) -> RuleSet:
    built = [rules[name].built(name) for name in sorted(rules)]
    downs = tuple(rule for rule in built if isinstance(rule, DownUnless))
    checks: tuple[Check, ...] = tuple(rule for rule in built if not isinstance(rule, DownUnless))
    return RuleSet(downs, checks)
