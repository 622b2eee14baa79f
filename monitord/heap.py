"""Freed heap memory handed back to the system (glibc's `malloc_trim`).

glibc keeps what the daemon frees inside its arenas, for the next allocation to reuse, and
returns only what lies at an arena's very top. A regional fault makes and lets go of thousands
of samples, incidents, notices and SQL rows at once: at 100,000 lines 30-60 MB of free chunks
then stayed resident between bursts (docs/benchmarks.md, "The whole daemon's memory").
`malloc_trim(0)` hands every free page back: 5-7 ms at 100,000 lines, called from a worker
thread every TRIM_EVERY seconds. A C library without it (musl) is left alone. The number of
arenas is the systemd unit's `MALLOC_ARENA_MAX`.
"""

from __future__ import annotations

import asyncio
import ctypes
import time
from collections.abc import Callable

TRIM_EVERY = 30.0  # seconds


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)  # the process's own C library
    except OSError:
        return None


_MALLOC_TRIM = _malloc_trim()


def trim() -> bool:
    """Hand the heap's free pages back to the system; False where the C library has no way to."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


class Trimmer:
    """`trim` in a worker thread, at most every `every` seconds."""

    def __init__(self, every: float = TRIM_EVERY, clock: Callable[[], float] = time.monotonic) -> None:
        self._every = every
        self._clock = clock
        self._next = clock() + every
        self.trims = 0

    async def trim_if_due(self) -> None:
        if self._clock() < self._next:
            return
        self._next = self._clock() + self._every
        if await asyncio.to_thread(trim):
            self.trims += 1
