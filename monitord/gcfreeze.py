"""The GC's passes kept short and rare, as each holds the loop: state that lives for the whole
run kept out of the full passes (`gc.freeze`), and the thresholds the daemon runs with (below).

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# The collector's thresholds while the daemon runs (CPython's: 700, 10, 10). A full pass holds
# the loop from whatever thread runs it (35-120 ms over the 40,000-175,000 objects alive at
# 100,000 lines) and came every 8-10 s: 62-71 in ten minutes of bench/endurance.py. It now waits
# for 100 passes of the middle generation (docs/benchmarks.md, "Eleventh pass"). Young passes
# stay CPython's: every 10,000 new containers instead, a million lines held 511 MiB more and
# spent 8 CPU-s a minute more on its rules in bench/capacity.py ("Thirteenth pass").
THRESHOLDS = (700, 10, 100)
GROWTH, MINIMUM = 1.05, 1000  # freeze again once 5% and 1,000 more of the lasting state are known
SETTLED = 120.0  # ... or once any more is known and none has been added for this many seconds


@contextmanager
def thresholds() -> Iterator[None]:
    """THRESHOLDS while the daemon runs; the process's own again after."""
    before = gc.get_threshold()
    gc.set_threshold(*THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)


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
