"""Long work on a worker thread, paced so that the event loop keeps its turns at the interpreter.

The loop and a worker thread share the GIL. While the worker computes, the loop gets the
interpreter back only at the worker's switch interval (1 ms, monitord/daemon.py), and gives
it up again on each of its own system calls (every send, receive and look at its sockets): a
worker busy for half a second can slow a busy loop to a crawl for all of it. A 5-minute period's
close at 100,000 lines held it for up to 740 ms (docs/benchmarks.md, "Sixth pass"). Paced, the
worker rests REST seconds after each WORK seconds of its work: the loop runs alone for that
share of the time, and the work takes that much longer, which a background job can afford.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

WORK = 0.002  # seconds of work between rests
REST = 0.004  # seconds the worker sleeps, the interpreter left to the loop


def paced(
    items: Iterable[T],
    work: float = WORK,
    rest: float = REST,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[T]:
    """`items` as they come, each taken and dealt with before the next; the worker rests between
    two of them once it has worked `work` seconds since its last rest."""
    since = clock()
    for item in items:
        yield item
        if clock() - since >= work:
            sleep(rest)
            since = clock()
