"""State that lives for the whole run, kept out of the GC's full passes (`gc.freeze`).

A first start (or new lines) makes a target per line with its first samples, and the rate state
of each device's columns at its first walk (a line interval later), after the start froze the
rest: left to the GC, every full pass walks them again, a quarter of a second and more on the
loop for 100,000 targets (bench/regional_steps.py), 40 ms for the rate state of 2,000 DSLAMs
(bench/stall_trace.py).
"""

from __future__ import annotations

import gc
from collections.abc import Callable

GROWTH, MINIMUM = 1.05, 1000  # freeze again once 5% and 1,000 more of the lasting state are known


class Freezer:
    """Freezes everything alive now, and again once the lasting state has grown enough."""

    def __init__(self, lasting: Callable[[], int]) -> None:
        self._lasting = lasting  # how much lasting state is known (engine targets, rate columns)
        self._frozen = 0  # how much was known at the last freeze

    def freeze(self) -> None:
        gc.freeze()
        self._frozen = self._lasting()

    def freeze_if_grown(self) -> bool:
        if self._lasting() < self._frozen * GROWTH + MINIMUM:
            return False
        self.freeze()
        return True
