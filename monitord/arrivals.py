"""Polls' samples waiting for the engine, stepped in batches by one task, every poll of a batch
told at once.

Each poll waits until the step that took its samples is written (a correlator's cursor, a
poller's batch, never ahead of the store). The polls used to wait for the pipeline's lock, one
by one: each was woken in a loop iteration of its own, only to find a step had taken it, and
woke the next. At 100,000 lines on a slower machine some 1,500 polls and their 75,000 samples
waited in that line, seconds at a time; the GC's full passes over them held the loop for 100 to
600 ms (docs/benchmarks.md, "Sixth pass"). Now the task that steps ends the wait of every poll
it took as soon as their step is written.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from monitord.model import Sample
from rules.engine import Step

Stepper = Callable[[list[Sample], int | None], Awaitable[Step]]


@dataclass(slots=True, eq=False)
class _Arrival:
    samples: list[Sample]
    through: int | None  # a correlator's: the pollers' batch these samples end
    stepped: asyncio.Future[Step]


class Arrivals:
    """`step(samples, through)`: one engine step over the samples of polls taken together, written
    before it returns; called under `lock` (the pipeline's, which its other steps take too), so
    that what arrived while another step held it is taken with it."""

    def __init__(self, step: Stepper, lock: asyncio.Lock, most: int) -> None:
        self._step = step
        self._lock = lock
        self._most = most  # samples per step, unless one poll has more
        self._waiting: deque[_Arrival] = deque()
        self._stepping: asyncio.Task[None] | None = None

    async def add(self, samples: list[Sample], through: int | None) -> Step:
        """The step that took `samples`, once written."""
        arrival = _Arrival(samples, through, asyncio.get_running_loop().create_future())
        self._waiting.append(arrival)
        if self._stepping is None or self._stepping.done():
            self._stepping = asyncio.get_running_loop().create_task(self._step_all())
        return await arrival.stepped

    async def drained(self) -> None:
        """Every poll that arrived is stepped (polling has ended)."""
        if self._stepping is not None:
            await self._stepping

    async def _step_all(self) -> None:
        while self._waiting:
            async with self._lock:
                batch = self._take()
                try:
                    step = await self._step([s for a in batch for s in a.samples], _last_through(batch))
                except asyncio.CancelledError:
                    for arrival in (*batch, *self._waiting):
                        arrival.stepped.cancel()
                    raise
                except Exception as error:  # the polls of this batch hear of it; the next are stepped
                    for arrival in batch:
                        if not arrival.stepped.done():
                            arrival.stepped.set_exception(error)
                    continue
            for arrival in batch:
                if not arrival.stepped.done():  # a poll cancelled meanwhile: its samples were stepped all the same
                    arrival.stepped.set_result(step)

    def _take(self) -> list[_Arrival]:
        """The polls waiting, oldest first, as many as fit in `most` samples (at least one)."""
        batch = [self._waiting.popleft()]
        count = len(batch[0].samples)
        while self._waiting and count + len(self._waiting[0].samples) <= self._most:
            count += len(self._waiting[0].samples)
            batch.append(self._waiting.popleft())
        return batch


def _last_through(batch: list[_Arrival]) -> int | None:
    throughs = [a.through for a in batch if a.through is not None]
    return max(throughs) if throughs else None
