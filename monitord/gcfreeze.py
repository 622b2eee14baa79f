"""State that lives for the whole run, kept out of the GC's full passes (`gc.freeze`).

A first start (or new lines) makes a target per line with its first samples, and the rate state
of each device's columns at its first walk (a line interval later), after the start froze the
rest: left to the GC, every full pass walks them again, a quarter of a second and more on the
loop for 100,000 targets (bench/regional_steps.py), 40 ms for the rate state of 2,000 DSLAMs
(bench/stall_trace.py). Freezing at every 5% of growth left the last few percent out (5,254 rate
columns, their arrays and 1,500 targets in a census at 100,000 lines, a sixth of what each full
pass walked): once the growth has stopped for SETTLED seconds, what it made is frozen too.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

GROWTH, MINIMUM = 1.05, 1000  # freeze again once 5% and 1,000 more of the lasting state are known
SETTLED = 120.0  # ... or once any more is known and none has been added for this many seconds


class Freezer:
    """Freezes everything alive now, and again once the lasting state has grown enough, or has
    grown and then settled."""

    def __init__(self, lasting: Callable[[], int], clock: Callable[[], float] = time.monotonic) -> None:
        self._lasting = lasting  # how much lasting state is known (engine targets, rate columns)
        self._clock = clock
        self._frozen = 0  # how much was known at the last freeze
        self._known = 0  # ... at the last look
        self._known_since = clock()  # ... unchanged since

    def freeze(self) -> None:
        gc.freeze()
        self._frozen = self._known = self._lasting()
        self._known_since = self._clock()

    def freeze_if_grown(self) -> bool:
        known, now = self._lasting(), self._clock()
        if known != self._known:
            self._known, self._known_since = known, now
        grown = known >= self._frozen * GROWTH + MINIMUM
        settled = known > self._frozen and now - self._known_since >= SETTLED
        if not (grown or settled):
            return False
        self.freeze()
        return True
