"""How late the event loop runs what is due: the daemon's measure of a stall.

Polling, the rules, the store, the outbox and the HTTP handlers share one loop, so anything that
holds it (a commit, a reload's swap, a metrics rendering) delays every poll, delivery and answer
behind it. `LoopLag.run` sleeps `every` seconds and notes how much later than asked it woke; the
worst of the last one to two `window`s is exported as `monitord_event_loop_lag_seconds`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(slots=True)
class LoopLag:
    every: float = 0.05
    window: float = 60.0
    _current: float = 0.0  # worst in the window under way
    _previous: float = 0.0  # worst in the window before it
    _since: float = 0.0  # when the window under way began (loop time)

    def worst(self) -> float:
        """The worst lag noted in the last one to two windows, in seconds."""
        return max(self._current, self._previous)

    def note(self, lag: float, now: float) -> None:
        if now - self._since >= self.window:
            self._previous = self._current if now - self._since < 2 * self.window else 0.0
            self._current, self._since = 0.0, now
        self._current = max(self._current, lag)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._since = loop.time()
        while True:
            asked = loop.time() + self.every
            await asyncio.sleep(self.every)
            now = loop.time()
            self.note(max(0.0, now - asked), now)
