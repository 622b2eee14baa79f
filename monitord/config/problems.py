"""What a configuration check reports: each problem with its file, line and key path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitord.yamlload import KeyPath


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int | None
    key: str  # dotted path (topology.regions[0].name) or a CSV column
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        out = f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"
        return out if self.hint is None else f"{out} (hint: {self.hint})"


class ConfigError(Exception):
    """Every problem found in a configuration, in the order they were found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(f"{len(problems)} configuration problem(s)")
        self.problems = tuple(problems)

    def __str__(self) -> str:
        return "\n".join(map(str, self.problems))


def format_problems(error: ConfigError) -> str:
    """What `monitord check` prints: one problem per line, then a count."""
    count = len(error.problems)
    return f"{error}\n{count} problem{'' if count == 1 else 's'} found"


def dotted(path: KeyPath) -> str:
    """("topology", "regions", 0, "name") -> "topology.regions[0].name"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class Invalid(ValueError):
    """A value that cannot be used; `message` never contains a secret. `at`: the key, inside the
    value checked, that is at fault (a check of a whole rule blames its `clear`)."""

    def __init__(self, message: str, hint: str | None = None, at: KeyPath = ()) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.at = at


class Missing(Invalid):
    def __init__(self) -> None:
        super().__init__("missing required value")
