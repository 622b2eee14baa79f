"""The text exposition of a metrics registry, served many times from one rendering.

Collecting reads live state, so it runs on the daemon's loop; formatting the text runs in a
worker thread, so a scrape never holds polling for long. A new rendering is made at most every
`max(FRESH_FOR, RENDER_SHARE x its last cost)` seconds, however many clients ask.

The families with a series per device (line counts, polls, poll durations: 300,000 series at a
million lines) are `CachedFamily`: collecting only copies their figures (a few ms at a million
lines), and their text is kept between renderings line by line, a line formatted again only
when its figures changed. A scrape then costs what changed since the last one, not what the
inventory holds. The text is the same, byte for byte, as prometheus_client's `generate_latest`
(tests/test_metrics.py compares them); `registry.collect()` still gives every family's samples.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

FRESH_FOR = 2.0  # seconds a rendering is served before the next scrape renders again
RENDER_SHARE = 20  # ...and at least this many times its own cost: rendering takes at most 5% of the loop

K = TypeVar("K", bound=tuple[str, ...])  # label values: sorted as the families are
V = TypeVar("V")


class Collected(Collector):
    """Families already collected, in the registry's shape for `generate_latest`."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> list[Metric]:
        return self._families


def sample_line(sample: Sample) -> str:
    """One sample as `generate_latest` writes it (legacy names, no timestamp: all ours)."""
    value = floatToGoString(sample.value)
    if not sample.labels:
        return f"{sample.name} {value}\n"
    labels = ",".join(f'{name}="{_escape(v)}"' for name, v in sorted(sample.labels.items()))
    return f"{sample.name}{{{labels}}} {value}\n"


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


class SeriesText(Generic[K, V]):
    """One family's text, kept between renderings: per key (e.g. a device), its figures and its
    formatted lines. The keys whose figures changed are found by comparing the two mappings'
    items as sets (in C, a few ms for 60,000 keys) and only they are formatted again; the order
    is sorted again only when the keys changed. `samples` turns a key's figures into samples.
    Figures must be hashable."""

    def __init__(self, samples: Callable[[K, V], list[Sample]]) -> None:
        self.samples = samples
        self._figures: dict[K, V] = {}  # as last formatted
        self._lines: dict[K, bytes] = {}
        self._order: list[K] = []
        self._lock = threading.Lock()  # two listeners' renderings may overlap

    def text(self, figures: Mapping[K, V]) -> bytes:
        with self._lock:
            kept, lines = self._figures, self._lines
            if figures.keys() != kept.keys():
                self._order = sorted(figures)
                for gone in kept.keys() - figures.keys():
                    del kept[gone], lines[gone]
            for key, value in figures.items() - kept.items():
                lines[key] = "".join(map(sample_line, self.samples(key, value))).encode()
                kept[key] = value
            return b"".join(map(lines.__getitem__, self._order))


class CachedFamily(Metric, Generic[K, V]):
    """A family whose figures were copied on the loop and whose text `SeriesText` keeps.
    `figures` is called where the family is formatted (the worker thread), so it may finish
    the work (e.g. join two copies); its samples are made only when read (tests)."""

    def __init__(
        self, name: str, documentation: str, typ: str, series: SeriesText[K, V], figures: Callable[[], Mapping[K, V]]
    ) -> None:
        self.name, self.documentation, self.type, self.unit = name, documentation, typ, ""
        self._series = series
        self._figures = figures

    @property
    def samples(self) -> list[Sample]:  # type: ignore[override]
        figures = self._figures()
        return [sample for key in sorted(figures) for sample in self._series.samples(key, figures[key])]

    def text(self) -> bytes:
        """HELP, TYPE and the sample lines."""
        return generate_latest(Collected([Metric(self.name, self.documentation, self.type)])) + self._series.text(self._figures())


def render(families: Iterable[Metric]) -> bytes:
    """The text of collected families: each `CachedFamily` from its kept lines, the rest by
    prometheus_client."""
    parts = []
    plain: list[Metric] = []
    for family in families:
        if isinstance(family, CachedFamily):
            parts.append(generate_latest(Collected(plain)))
            parts.append(family.text())
            plain = []
        else:
            plain.append(family)
    parts.append(generate_latest(Collected(plain)))
    return b"".join(parts)


class Exposition:
    """The last rendering, served while fresh and let go once stale: at 100,000 lines it is 6 MB,
    which kept between a Prometheus's scrapes (15 s or more apart) would be memory for nothing."""

    def __init__(self, registry: CollectorRegistry, clock: Callable[[], float] = time.monotonic) -> None:
        self._registry = registry
        self._clock = clock
        self._rendering: tuple[bytes, float] = (b"", float("-inf"))  # the body, and until when it is served

    def fresh(self) -> bytes | None:
        """The last rendering while it may be served; None: render again. (One read of one
        attribute: a rendering let go meanwhile is never half seen by another thread.)"""
        body, expires = self._rendering
        return body if self._clock() < expires else None

    async def refresh(self) -> bytes:
        started = self._clock()
        collected = list(self._registry.collect())
        body = await asyncio.to_thread(render, collected)
        ended = self._clock()
        rendering = self._rendering = (body, ended + max(FRESH_FOR, RENDER_SHARE * (ended - started)))
        asyncio.get_running_loop().call_later(rendering[1] - ended, self._let_go, rendering)
        return body

    def _let_go(self, rendering: tuple[bytes, float]) -> None:
        if self._rendering is rendering:
            self._rendering = (b"", float("-inf"))
