"""The daemon's clock: wall time read once at start, then carried forward by time.monotonic().

Every duration the daemon keeps (`for` holds, settle, stable, reopen and correlation windows,
maintenance edges, notice timers) is a difference of two readings of this clock, so an NTP step
or an operator's `date -s` never makes a timer fire early, late or twice, and the rules engine's
`now` never goes backwards. The price: the readings drift from the wall by whatever the wall
clock was stepped by since start (slewing, which NTP does for small offsets, moves both alike).
A restart anchors again; timers saved before it are absolute, so a wall clock stepped while the
daemon was down shortens or lengthens the timers then pending, once (docs/operations.md).
"""

from __future__ import annotations

import time


class AnchoredClock:
    """Call it for "now" in Unix seconds, as the rules and the store want it."""

    def __init__(self) -> None:
        self._wall = time.time()
        self._mono = time.monotonic()

    def __call__(self) -> float:
        return self._wall + (time.monotonic() - self._mono)

    def drift(self) -> float:
        """How far the wall clock has been stepped since start (positive: the wall is ahead)."""
        return time.time() - self()
