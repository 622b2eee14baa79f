"""Planned maintenance: which targets it hides, and what is still down when it ends.

`Engine.set_maintenance(windows, now)` replaces the planned windows. Targets inside a window's
scope show MAINTENANCE from start to end + grace; at that edge, those still down get the
OVERRUN fault and correlate like outages, into OVERRUN incidents. The lines still down at the
edge are remembered per window (`overran`) for as long as the window is: they are told of the
overrun and then of the restoration, never that the work was completed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from monitord.model import MaintenanceWindow
from rules.judge import FAULT_CLASS, OUTAGE, Target
from rules.nodes import NodeKey, line_ids


@dataclass(slots=True)
class Maintenance:
    windows: dict[str, MaintenanceWindow] = field(default_factory=dict)
    expired: set[str] = field(default_factory=set)  # windows whose end (plus grace) was seen
    overran: dict[str, frozenset[str]] = field(default_factory=dict)  # window id -> lines still down at its edge
    _scopes: dict[str, frozenset[NodeKey]] = field(default_factory=dict)

    def replace(
        self, windows: Sequence[MaintenanceWindow], targets: Collection[Target], now: float
    ) -> tuple[set[Target], list[MaintenanceWindow]]:
        """Take the new windows. Returns the targets in the scope of a window that changed (as it
        was and as it is), and the changed windows still to open or close, whose edges want timers."""
        new = {w.id: w for w in windows}
        changed = {i for i in {*self.windows, *new} if self.windows.get(i) != new.get(i)}
        touched = {t for i in changed if i in self.windows for t in targets if self.in_scope(t, i)}
        self.set_windows(new.values())
        self.expired &= set(new)
        self.overran = {i: lines for i, lines in self.overran.items() if i in new}
        pending = []
        for window in sorted((new[i] for i in changed if i in new), key=lambda w: w.id):
            if window.end + window.grace <= now:
                self.expired.add(window.id)  # never seen open: nothing to suppress or overrun
            else:
                self.expired.discard(window.id)
                pending.append(window)
        touched |= {t for i in changed if i in new for t in targets if self.in_scope(t, i)}
        return touched, pending

    def set_windows(self, windows: Iterable[MaintenanceWindow]) -> None:
        self.windows = {w.id: w for w in windows}
        self._scopes = {w.id: frozenset(NodeKey.of(n) for n in w.scope) for w in self.windows.values()}

    def in_scope(self, target: Target, window_id: str) -> bool:
        scope = self._scopes[window_id]
        return target.key in scope or any(above in scope for above in target.chain)

    def window_of(self, target: Target, now: float) -> str | None:
        """The window that hides `target` now, if any."""
        if not self.windows:
            return None
        for window in sorted(self.windows.values(), key=lambda w: w.id):
            if window.start <= now < window.end + window.grace and self.in_scope(target, window.id):
                return window.id
        return None

    def edge(self, window_id: str, targets: Iterable[Target], now: float) -> set[Target]:
        """A window starts or ends: the targets to judge again; at the end, mark what is still down."""
        window = self.windows.get(window_id)
        if window is None or window.id in self.expired or now < window.start:
            return set()
        scope = {target for target in targets if self.in_scope(target, window.id)}
        if now >= window.end + window.grace:
            self.expired.add(window.id)
            for target in scope:
                target.overrun = FAULT_CLASS.get(target.base) is OUTAGE
            self.overran[window.id] = line_ids(t.key for t in scope if t.overrun)
        return scope

    def all_overran(self) -> frozenset[str]:
        return frozenset().union(*self.overran.values())
