"""What the engine runs on: the checked `rules:` section (timers, correlation, a RuleSet per
technology). monitord/config/rules.py reads it from the config file and the bundled defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rules.checks import RuleSet


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
