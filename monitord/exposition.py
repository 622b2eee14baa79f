"""The text exposition of a metrics registry, rendered on the daemon's loop and served many times.

A rendering of 100,000 lines on 1,000 devices takes about 0.25 s on a busy 2-CPU machine (see
monitord/metrics.py), so scrapes are served from the last rendering, and a new one is made at
most every `max(FRESH_FOR, RENDER_SHARE x its last cost)` seconds, however many clients ask.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, generate_latest

FRESH_FOR = 2.0  # seconds a rendering is served before the next scrape renders again
RENDER_SHARE = 20  # ...and at least this many times its own cost: rendering takes at most 5% of the loop


class Exposition:
    def __init__(self, registry: CollectorRegistry, clock: Callable[[], float] = time.monotonic) -> None:
        self._registry = registry
        self._clock = clock
        self.body = b""
        self._expires = float("-inf")

    def stale(self) -> bool:
        return self._clock() >= self._expires

    async def refresh(self) -> None:
        started = self._clock()
        self.body = generate_latest(self._registry)
        ended = self._clock()
        self._expires = ended + max(FRESH_FOR, RENDER_SHARE * (ended - started))
