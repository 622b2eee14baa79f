"""When the engine must look again without a new sample.

Three kinds of timer: a target to wake (a check's `for`, settle, stable, the correlation
window), a maintenance window's edge, and a resolved incident to forget once its reopen window
has passed. Timers are kept per time: a batch of faults that settle together costs one heap
entry, and a target is woken at most once for each earliest time planned.
"""

from __future__ import annotations

import enum
import heapq
import math
from dataclasses import dataclass, field

from rules.nodes import NodeKey


class TimerKind(enum.Enum):
    """The values are how a snapshot spells each kind."""

    TARGET = "t"  # a line or device that may change (key: its node)
    WINDOW = "m"  # a maintenance window starts or ends (key: the window id)
    FORGET = "i"  # a resolved incident leaves the reopen window (key: its tracking number)


@dataclass(slots=True)
class Due:
    """What came due, by kind, in the order it was set."""

    targets: list[NodeKey] = field(default_factory=list)
    windows: list[str] = field(default_factory=list)
    incidents: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Timers:
    _heap: list[float] = field(default_factory=list)  # the times timers are due at, each once
    _at: dict[float, Due] = field(default_factory=dict)
    _planned: dict[NodeKey, float] = field(default_factory=dict)  # a target's earliest wake-up
    # every time a target is woken at: tuples of numbers, which the GC stops tracking (a list per
    # target waiting, 10,000 of them in a census at 100,000 lines, was walked by every full pass)
    _whens: dict[NodeKey, tuple[float, ...]] = field(default_factory=dict)
    # the times a window's edge or an incident's forgetting is due at: few, and in every step's
    # saved head (`dump(targets=False)`), which must not sort the 12,000 wake-up times of a region
    # whose lines all wait out a check's `for`
    _edges: set[float] = field(default_factory=set)
    changed: set[NodeKey] = field(default_factory=set)  # targets whose times changed, until the engine's rows are written

    def of(self, target: NodeKey) -> list[float]:
        """Every time `target` is due to wake, as a target's saved record keeps them."""
        return sorted(self._whens.get(target, ()))

    def wake(self, target: NodeKey, when: float) -> None:
        """Wake `target` at `when`, unless it is already woken earlier."""
        if when < self._planned.get(target, math.inf):
            self._planned[target] = when
            self._batch(when).targets.append(target)
            self._whens[target] = (*self._whens.get(target, ()), when)
            self.changed.add(target)

    def window(self, when: float, window_id: str) -> None:
        self._batch(when).windows.append(window_id)
        self._edges.add(when)

    def forget(self, when: float, tracking: str) -> None:
        self._batch(when).incidents.append(tracking)
        self._edges.add(when)

    def pop_due(self, now: float) -> Due:
        """Everything due at or before `now`, taken off the timers."""
        due = Due()
        while self._heap and self._heap[0] <= now:
            when = heapq.heappop(self._heap)
            batch = self._at.pop(when)
            self._edges.discard(when)
            for target in batch.targets:
                if self._planned.get(target) == when:
                    del self._planned[target]
                self.changed.add(target)
                whens = self._whens.pop(target)
                if len(whens) > 1:
                    i = whens.index(when)
                    self._whens[target] = whens[:i] + whens[i + 1 :]
            due.targets += batch.targets
            due.windows += batch.windows
            due.incidents += batch.incidents
        return due

    def load(self, when: float, kind: TimerKind, key: str) -> None:
        """One timer from a snapshot, kept as it was set."""
        if kind is TimerKind.TARGET:
            node = NodeKey.parse(key)
            self._planned[node] = min(when, self._planned.get(node, math.inf))
            self._batch(when).targets.append(node)
            self._whens[node] = (*self._whens.get(node, ()), when)
        elif kind is TimerKind.WINDOW:
            self.window(when, key)
        else:
            self.forget(when, key)

    def dump(self, targets: bool = True) -> list[tuple[float, TimerKind, str]]:
        """Every timer in time order, keys spelled as in a snapshot; without the targets' own
        (`of`) when `targets` is False."""
        out: list[tuple[float, TimerKind, str]] = []
        for when in sorted(self._at if targets else self._edges):
            batch = self._at[when]
            if targets:
                out += [(when, TimerKind.TARGET, str(node)) for node in batch.targets]
            out += [(when, TimerKind.WINDOW, window_id) for window_id in batch.windows]
            out += [(when, TimerKind.FORGET, tracking) for tracking in batch.incidents]
        return out

    def _batch(self, when: float) -> Due:
        batch = self._at.get(when)
        if batch is None:
            batch = self._at[when] = Due()
            heapq.heappush(self._heap, when)
        return batch
