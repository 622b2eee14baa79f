"""The text exposition of a metrics registry, served many times from one rendering.

Collecting reads live state, so it runs on the daemon's loop (about 40 ms at 100,000 lines:
the line counts are per device, `Engine.line_counts`); the families it yields are plain values,
and formatting them as text (about 0.15 s at 100,000 lines on 2,084 devices) runs in a worker
thread, so a scrape never holds polling for that long. A new rendering is made at most every
`max(FRESH_FOR, RENDER_SHARE x its last cost)` seconds, however many clients ask.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

FRESH_FOR = 2.0  # seconds a rendering is served before the next scrape renders again
RENDER_SHARE = 20  # ...and at least this many times its own cost: rendering takes at most 5% of the loop


class Collected(Collector):
    """Families already collected, in the registry's shape for `generate_latest`."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> list[Metric]:
        return self._families


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
        collected = Collected(self._registry.collect())
        self.body = await asyncio.to_thread(generate_latest, collected)
        ended = self._clock()
        self._expires = ended + max(FRESH_FOR, RENDER_SHARE * (ended - started))
