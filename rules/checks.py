"""The rule kinds, as pure functions of (rule, state, input, now).

A check keeps a small JSON-safe state per target (a tuple of numbers and None, never mutated) and
is fed one value at a time. `feed` takes a new value, `elapse` lets time pass without one, `due`
says when `elapse` could next change the answer, `firing` gives the reason when the rule fires.
Both return the very same state object when nothing that matters changed, which lets the engine
skip judging a healthy line again. Nothing is stored in the rule, so one rule object serves
100,000 lines.

- `Threshold`: below / above / at_most / at_least a level, with a separate clear level
  (hysteresis), a `for` hold and an optional `per` scale that turns a `*_per_s` rate into, say,
  resyncs per 15 minutes.
- `Flap`: changes of the probe's up/down verdict, weighted by age (a change counts 1 when it
  happens and e^-1 one `window` later), so the score decays smoothly and the time it falls below
  the clear level is exact.
- `Drift`: distance from the target's own baseline (an exponentially weighted mean with time
  constant `baseline`), frozen while the rule fires so a slow fault cannot become the norm.
- `DownUnless`: not a degradation but a verdict: the row says the line is down (`oper_up` 0,
  `cm_status` not registered).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

# A tuple, not a list: the GC stops tracking a tuple of numbers, and then a target's mapping of
# them, so the states of 100,000 lines (a unique one per line once it failed) cost its full
# passes nothing; lists would be walked at every pass, holding the event loop.
State: TypeAlias = tuple[float | None, ...]

_OPS: dict[str, tuple[str, Callable[[float, float], bool]]] = {
    "below": ("<", operator.lt),
    "at_most": ("<=", operator.le),
    "above": (">", operator.gt),
    "at_least": (">=", operator.ge),
}
Op = Literal["below", "at_most", "above", "at_least"]
OPS: tuple[str, ...] = tuple(_OPS)


def _g(x: float) -> str:
    return f"{x:.4g}"


@dataclass(frozen=True, slots=True)
class Threshold:
    """Fires when `metric * per` has been on the bad side of `level` for `hold` seconds; clears
    only once it is back on the good side of `clear`. State: (pending_since, first_bad, fired)."""

    name: str
    metric: str
    op: Op
    level: float
    clear: float
    hold: float = 0.0
    per: float = 1.0
    per_label: str = ""

    def _bad(self, x: float) -> bool:
        return _OPS[self.op][1](x, self.level)

    def _cleared(self, x: float) -> bool:
        low = self.op in ("below", "at_most")
        return (x >= self.clear if low else x <= self.clear) and not self._bad(x)

    def side(self, value: float) -> int:
        """Where `value` falls: bad (0), between the levels (1) or cleared (2). `feed` changes
        the state only when this changes, or when time alone would (`elapse`)."""
        x = value * self.per
        return 0 if self._bad(x) else 2 if self._cleared(x) else 1

    def initial(self) -> State:
        return _CLEAR

    def feed(self, state: State, value: float, now: float) -> State:
        pending, first, fired = state
        x = value * self.per
        if fired is not None:
            return _CLEAR if self._cleared(x) else state
        if not self._bad(x):
            return _CLEAR if pending is not None else state
        if pending is None:
            pending, first = now, x
        if now - pending >= self.hold:
            return (pending, first, x)
        return state if state[0] == pending else (pending, first, None)

    def elapse(self, state: State, now: float) -> State:
        pending, first, fired = state
        if fired is None and pending is not None and now - pending >= self.hold:
            return (pending, first, first)
        return state

    def due(self, state: State) -> float | None:
        pending, _, fired = state
        return pending + self.hold if fired is None and pending is not None else None

    def firing(self, state: State) -> str | None:
        fired = state[2]
        if fired is None:
            return None
        unit = f" per {self.per_label}" if self.per_label else ""
        return f"{self.metric}{unit} {_g(fired)} {_OPS[self.op][0]} {_g(self.level)}"


@dataclass(frozen=True, slots=True)
class Flap:
    """Fires when the age-weighted count of up/down changes exceeds `above`; clears at or below
    `clear` (> 0: the score only tends to zero). State: (score, at, last_up, firing(0/1))."""

    name: str
    window: float
    above: float
    clear: float
    metric: str = "up"

    def initial(self) -> State:
        return (0.0, None, None, 0.0)

    def _score(self, state: State, now: float) -> float:
        score, at = state[0] or 0.0, state[1]
        return score if at is None else score * math.exp(-(now - at) / self.window)

    def feed(self, state: State, value: float, now: float) -> State:
        last = state[2]
        if value == last:
            return self.elapse(state, now)
        if last is None:
            if state == _NEVER_CHANGED and value in _FIRST_SEEN:
                return _FIRST_SEEN[value]  # what nearly every line holds: one tuple for all of them
            return (state[0], state[1], value, state[3])
        before = self._score(state, now)
        score = before + 1.0
        firing = score > self.above or (bool(state[3]) and before > self.clear)
        return (score, now, value, float(firing))

    def elapse(self, state: State, now: float) -> State:
        if state[3] and self._score(state, now) <= self.clear:
            return (state[0], state[1], state[2], 0.0)
        return state

    def due(self, state: State) -> float | None:
        score, at = state[0] or 0.0, state[1]
        if not state[3] or at is None:
            return None
        return at + self.window * math.log(score / self.clear)

    def firing(self, state: State) -> str | None:
        return f"flapping: {_g(state[0] or 0.0)} weighted changes > {_g(self.above)}" if state[3] else None


@dataclass(frozen=True, slots=True)
class Drift:
    """Fires when `metric * per` moves more than `delta` away from the target's own baseline in
    `direction`; clears within `clear` of it. The baseline needs one time constant of history
    before the rule may fire. State: (baseline, since, at, fired)."""

    name: str
    metric: str
    direction: Literal["drop", "rise"]
    delta: float
    clear: float
    baseline: float
    per: float = 1.0

    def initial(self) -> State:
        return (None, None, None, None)

    def _deviation(self, base: float, x: float) -> float:
        return base - x if self.direction == "drop" else x - base

    def feed(self, state: State, value: float, now: float) -> State:
        base, since, at, fired = state
        x = value * self.per
        if base is None or since is None or at is None:
            return (x, now, now, None)
        deviation = self._deviation(base, x)
        if fired is not None:
            return (base, since, now, None if deviation <= self.clear else x)
        if now - since >= self.baseline and deviation > self.delta:
            return (base, since, now, x)
        alpha = 1.0 - math.exp(-max(now - at, 0.0) / self.baseline)
        return (base + alpha * (x - base), since, now, None)

    def elapse(self, state: State, now: float) -> State:
        return state

    def due(self, state: State) -> float | None:
        return None

    def firing(self, state: State) -> str | None:
        base, fired = state[0], state[3]
        if fired is None or base is None:
            return None
        word = "below" if self.direction == "drop" else "above"
        return f"{self.metric} {_g(fired)} is {_g(abs(fired - base))} {word} its baseline {_g(base)}"


_CLEAR: State = (None, None, None)
# A flap rule's state once a target's first verdict is in and it never changed since: shared,
# as states are never mutated (100,000 healthy lines hold three of these each).
_NEVER_CHANGED: State = (0.0, None, None, 0.0)
_FIRST_SEEN: dict[float, State] = {up: (0.0, None, up, 0.0) for up in (0.0, 1.0)}
_SHARED = (_CLEAR, *_FIRST_SEEN.values())


def shared(state: State) -> State:
    """The shared tuple equal to `state`, if there is one: a state read back from a snapshot then
    costs no more than one a check returned."""
    return next((common for common in _SHARED if common == state), state)


# The shared tuples by identity: a state that is one of them no other target could tell apart
# (they live as long as the module, so their ids are never reused)
SHARED_IDS = frozenset(map(id, _SHARED))


Check: TypeAlias = Threshold | Flap | Drift


@dataclass(frozen=True, slots=True)
class DownUnless:
    """The row itself says the line is down unless `metric` is one of `values`; `reason` says
    what that means to a person (e.g. "not in sync")."""

    name: str
    metric: str
    values: frozenset[float]
    reason: str = ""

    def down(self, value: float) -> str | None:
        if value in self.values:
            return None
        if self.reason:
            return f"{self.reason} ({self.metric} {_g(value)})"
        return f"{self.metric} {_g(value)} not in {{{', '.join(_g(v) for v in sorted(self.values))}}}"


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The rules of one technology (a line profile name, or "icmp")."""

    downs: tuple[DownUnless, ...] = ()
    checks: tuple[Check, ...] = ()
