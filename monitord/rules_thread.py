"""The rules engine's steps by polls and ticks, and the notices they plan, made off the event loop.

At 100,000 lines the step that qualifies a region places its 12,000 failing lines in one go
(70-90 ms of CPU), and the outage notices of its 12,500 subscribers are planned after it
(docs/benchmarks.md, "Tenth pass"). Made on the loop, they held every poll, the HTTP API and
/metrics for that long. Made in this thread, the loop runs on: the interpreter passes between
the two every `SWITCH_INTERVAL` (monitord/daemon.py).

The engine is still changed by one step at a time (the pipeline's `_stepping`), and its readers
on the loop take `lock`, which a step holds while it runs. A reader that first awaits
`between_steps` finds the lock free: steps start on the loop, so none starts before its next
await, and it does not hold the loop waiting for one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
# One thread for the process: its pipelines' steps would take turns for the interpreter anyway.
RULES = ThreadPoolExecutor(1, thread_name_prefix="monitord-rules")


class RulesThread:
    """Where a pipeline's engine steps and its notices are planned (`run`), and how the engine's
    readers keep out of their way."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # held by a step: readers of the engine take it too
        self._no_step = asyncio.Event()  # clear while `run` has work in the thread
        self._no_step.set()

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)` run in the thread under `lock`."""

        def locked() -> T:
            with self.lock:
                return work(*args)

        self._no_step.clear()
        done = asyncio.get_running_loop().run_in_executor(RULES, locked)
        try:
            return await asyncio.shield(done)
        except asyncio.CancelledError:
            await asyncio.wait([done])  # the caller's turn, and the engine, wait for the step's end
            raise
        finally:
            self._no_step.set()

    async def between_steps(self) -> None:
        """Returns when nothing runs in the thread."""
        while not self._no_step.is_set():
            await self._no_step.wait()
