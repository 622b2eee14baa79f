"""The engine's steps written from a thread of their own, so that no commit holds the event loop.

A regional fault's step writes thousands of target and member rows and queues a thousand
notices in one transaction: a quarter of a second of CPU, and a COMMIT that appends megabytes
to the WAL. Made on the loop, that is a stall of every poll, trap and request in flight
(bench/endurance.py traced its worst ones there); made here, the loop polls on meanwhile and
only takes turns with the thread for the interpreter (the daemon's switch interval is 1 ms).

Two rules keep it exact:

* The engine does not step while its rows are written: the records of the changed targets are
  made from the engine's state as the thread writes them (rules/snapshot.py `TargetRecords`),
  so `Pipeline` awaits each commit before its next step.
* Nothing else writes while the thread does: the store's `turn` (an asyncio.Lock) is held for
  the thread's transaction, and every write made on the loop's connection (the outbox's marks,
  pruning, maintenance windows) takes it too. So SQLite never makes the loop wait out the
  thread's transaction on its busy handler, and the loop's reads see the last commit (WAL).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from monitord.model import Incident, Notification
from rules.snapshot import Rows


class CommitStep(Protocol):
    """`Store.commit_step`."""

    def __call__(
        self,
        engine: Rows | None,
        incidents: Sequence[Incident],
        notifications: Sequence[tuple[Notification, float | None]],
        now: float,
        on_dead: Callable[[Notification], None] | None = None,
        through: int | None = None,
    ) -> int: ...


class StepWriter:
    """`Store.commit_step` of a connection of its own (`Store.writer()`), run in one thread."""

    def __init__(self, commit_step: CommitStep, close_connection: Callable[[], None], turn: asyncio.Lock) -> None:
        self._commit_step = commit_step
        self._close_connection = close_connection
        self._turn = turn
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="monitord-steps")

    async def commit_step(
        self,
        engine: Rows | None,
        incidents: Iterable[Incident],
        notifications: Iterable[tuple[Notification, float | None]],
        now: float,
        through: int | None = None,
    ) -> tuple[int, list[Notification]]:
        """As `Store.commit_step`; also returns the notifications filed dead on arrival (for the
        caller to count on the loop, where the outbox lives)."""
        dead: list[Notification] = []
        write = functools.partial(
            self._commit_step, engine, list(incidents), list(notifications), now, dead.append, through=through
        )
        async with self._turn:
            done = asyncio.get_running_loop().run_in_executor(self._thread, write)
            try:
                queued = await asyncio.shield(done)
            except asyncio.CancelledError:
                await asyncio.wait([done])  # the turn, and the engine, wait for the transaction's end
                raise
        return queued, dead

    def close(self) -> None:
        """Once no step is being written (the pipeline has stopped)."""
        self._thread.shutdown()
        self._close_connection()
