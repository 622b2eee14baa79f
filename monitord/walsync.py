"""The store's durability, off the event loop: commits are written without waiting for the disk,
then made durable by a worker thread (`GroupSync`); for SQLite (`WalSync`) it fsyncs the WAL and
checkpoints it. PostgreSQL's worker is monitord/pgsync.py.

What the store's connections do (the loop's and the step writer's, monitord/store.py): WAL mode,
`synchronous = OFF`, `wal_autocheckpoint = 0`. A COMMIT appends the transaction's frames to the -wal file with
write(2) and returns: it neither fsyncs nor checkpoints, so it never waits on the disk.

Why that is safe (SQLite: wal.html, pragma.html#pragma_synchronous, fileformat2.html#walformat,
c3ref/wal_checkpoint_v2.html):

* A process crash (kill -9) loses nothing: the written frames are in the kernel's page cache,
  which outlives the process, and the next open recovers the WAL as always.
* Each WAL frame carries the WAL's salt and a checksum chained over every frame before it, and
  recovery keeps the longest run of valid frames up to its last commit frame. Whichever pages
  reach the disk before an OS crash or power loss, the file reopens as of one commit: never torn.
* Durability is explicit: after commits, `WalSync` fsyncs the -wal file in its thread, one fsync
  at a time, each covering every commit written before it began (group commit). os.fsync on a
  descriptor of the -wal file flushes its data and inode, as SQLite's own sync does; the
  directory entry of the WAL was synced by SQLite itself when the store opened with
  `synchronous = FULL` and made its first write. `durable()` returns once every commit made
  before the call is on disk.
* Checkpoints run in the same thread from a connection of their own with `synchronous = FULL`:
  a checkpoint's syncs follow the checkpointing connection's flags, so the WAL is synced before
  any page is copied into the database file, and the database file is synced before the WAL may
  be reused. PASSIVE mode copies what no reader still needs and never invokes the busy handler:
  it never waits on, nor holds up, the store's reads and writes.
* At close the store's connections go back to `synchronous = FULL` and close first, then a
  TRUNCATE checkpoint from the checkpointing connection, the last one open, empties the WAL.

What power loss (or an OS crash) can lose: the commits after the last fsync that completed,
none of which has had an effect outside the file, because everything that leaves the process
waits for `durable()` first: the outbox sends an item only once its claim is durable, and the
claim was committed after the step that queued the item and after the step that issued the
tracking number it quotes (monitord/outbox.py). After the restart the file is as of an earlier
commit: a lost claim leaves its item pending (it was never sent: it goes out once, later); a
lost step is decided again from the next samples, and any tracking number it had issued was
never quoted in a message, so issuing it again is seen by no customer or helpdesk; a lost
`sent` mark leaves its item `sending`, reconciled with the peer as after kill -9.

An fsync that fails (EIO) may have dropped the pages it could not write: nothing can be called
durable after it, so `durable()` raises from then on (an sqlite3.Error, which pauses delivery
like a refused write) and the daemon must be restarted to recover from the file on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CHECKPOINT_EVERY = 1.0  # seconds between checkpoints while commits come (SQLite's own waits for 1,000 pages)


@dataclass(slots=True)
class SyncCounts:
    """What the worker has done (read by tests)."""

    syncs: int = 0
    checkpoints: int = 0


class GroupSync:
    """Group commit in a thread of its own: `committed()` after each COMMIT of the store's
    connections, `await durable()` before an effect that depends on what was committed. One
    `_flush` at a time makes durable every commit made before it began; what flushing means is
    the engine's (`WalSync` here, `PgSync` in monitord/pgsync.py). A flush that fails leaves
    nothing known durable: `durable()` raises `_failure()` from then on, unless the engine can
    `_resume` (PgSync, on a new session): then only the commits made so far are fenced off
    (`_fence`: `durable()` raises for them), and later ones can be flushed."""

    def __init__(self, thread_name: str) -> None:
        self._state = threading.Condition()
        self._written = 0  # commits made by the store's connections
        self._durable = 0  # of those, how many are known to be on disk
        self._failed: Exception | None = None
        self._fenced = 0  # commits up to this one may be lost (a fence): never called durable
        self._fenced_by: Exception | None = None
        self.fences = 0  # how many fences so far (a lease renewed before one may be lost: monitord/store.py)
        self.epoch = 0  # sessions opened before the flushing session's epoch cannot be vouched for (PgSync)
        self._closing = False
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.counts = SyncCounts()
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self._thread.start()

    def committed(self, epoch: int = 0) -> None:
        """A COMMIT returned on the loop: have it synced (costs a lock and a notify, no I/O).
        `epoch`: `self.epoch` when the committing session opened; an older one's commit may
        have been made on a server that has since restarted, so it is fenced off at once."""
        with self._state:
            self._written += 1
            self._state.notify()
            stale = epoch < self.epoch
        if stale and self._fenced_by is not None:
            self._fence(self._fenced_by)

    async def durable(self) -> None:
        """Return once every commit made before this call is on disk."""
        with self._state:
            if self._failed is not None:
                raise self._failure(self._failed)
            if self._fenced_by is not None and self._written <= self._fenced:
                raise self._failure(self._fenced_by)
            if self._durable >= self._written:
                return
            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.append((self._written, loop, future))
        await future

    def close(self) -> None:
        """Sync what is left and stop the thread (called at shutdown: it waits on the disk)."""
        with self._state:
            self._closing = True
            self._state.notify()
        self._thread.join()

    def finish(self) -> None:
        """Once the store's connections are closed: let go of what the flushes used."""

    def _flush(self) -> None:
        """Make every commit written so far durable (in the thread); raise if it cannot."""
        raise NotImplementedError

    def _flushed(self, target: int) -> None:
        """After a flush that made `target` commits durable (in the thread)."""

    def _failure(self, error: Exception) -> Exception:
        """What `durable()` raises once a flush failed with `error`."""
        raise NotImplementedError

    def _resume(self, error: Exception) -> bool:
        """After a flush failed with `error` (in the thread): whether later commits can still be
        made durable (having fenced off the earlier ones), or nothing can from now on."""
        return False

    def _run(self) -> None:
        while True:
            with self._state:
                while self._durable == self._written and not self._closing:
                    self._state.wait()
                if self._durable == self._written or self._failed is not None:
                    return
                target = self._written
            try:
                self._flush()
            except Exception as error:  # whatever it was, nothing made so far is known durable
                log.error("cannot make the state durable: %s", self._failure(error))
                if self._resume(error):
                    continue
                self._fail(error)
                return
            self._synced(target)
            self._flushed(target)

    def _fence(self, error: Exception) -> None:
        """The commits made so far may be lost: they are never called durable (nor flushed:
        a later flush vouches for none of them), and whoever waits for them hears `error`."""
        with self._state:
            self._fenced = self._durable = self._written
            self._fenced_by = error
            self.fences += 1
            failing = [w for w in self._waiters if w[0] <= self._fenced]
            self._waiters = [w for w in self._waiters if w[0] > self._fenced]
        _wake(failing, self._failure(error))

    def _synced(self, target: int) -> None:
        with self._state:
            self._durable = max(self._durable, target)
            self.counts.syncs += 1
            ready = [w for w in self._waiters if w[0] <= target]
            self._waiters = [w for w in self._waiters if w[0] > target]
        _wake(ready, None)

    def _fail(self, error: Exception) -> None:
        with self._state:
            self._failed = error
            waiting, self._waiters = self._waiters, []
        _wake(waiting, self._failure(error))


class WalSync(GroupSync):
    """Made by `Store.open` once the WAL exists: a flush fsyncs the -wal file, and checkpoints
    follow from a connection of its own."""

    def __init__(self, path: Path, checkpoint_every: float = CHECKPOINT_EVERY) -> None:
        self._wal = Path(f"{path}-wal")
        self._fd = os.open(self._wal, os.O_RDONLY)
        self._checkpointer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._checkpointer.execute("PRAGMA busy_timeout = 5000")  # the TRUNCATE at close only: PASSIVE never waits
        self._checkpointer.execute("PRAGMA synchronous = FULL")
        self._checkpoint_every = checkpoint_every
        self._last_checkpoint = time.monotonic()
        self._checkpointed_at = 0  # commits written when the last checkpoint began
        super().__init__("monitord-walsync")

    @property
    def synchronous(self) -> int:
        """The checkpointing connection's `PRAGMA synchronous` (2: FULL), for tests."""
        return int(self._checkpointer.execute("PRAGMA synchronous").fetchone()[0])

    def close(self) -> None:
        super().close()
        os.close(self._fd)

    def finish(self) -> None:
        """The final checkpoint, once the store's connections are closed: the WAL ends empty. Should
        it fail (a full disk), the WAL, synced by `close`, keeps it all for the next start."""
        try:
            self._checkpointer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as error:
            log.warning("the last checkpoint of the state file failed (%s); its WAL keeps what it holds", error)
        finally:
            self._checkpointer.close()

    def _flush(self) -> None:
        os.fsync(self._fd)

    def _failure(self, error: Exception) -> sqlite3.OperationalError:
        why = error.strerror if isinstance(error, OSError) else str(error)
        return sqlite3.OperationalError(
            f"disk I/O error: fsync of {self._wal} failed ({why}); nothing more is sent until monitord restarts"
        )

    def _flushed(self, target: int) -> None:
        if target > self._checkpointed_at and time.monotonic() - self._last_checkpoint >= self._checkpoint_every:
            self._last_checkpoint, self._checkpointed_at = time.monotonic(), target
            self._checkpoint()

    def _checkpoint(self) -> None:
        try:
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as error:  # the WAL only grows meanwhile: nothing is lost
            log.warning("checkpoint of the state file failed: %s", error)
            return
        self.counts.checkpoints += 1


def _wake(waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]], failure: BaseException | None) -> None:
    """From the worker: hand each waiter's loop its answer (a closed loop has no one waiting)."""
    for _, loop, future in waiters:
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_resolve, future, failure)


def _resolve(future: asyncio.Future[None], failure: BaseException | None) -> None:
    """On the waiter's loop: wake it, unless it stopped waiting (cancelled)."""
    if future.done():
        return
    if failure is None:
        future.set_result(None)
    else:
        future.set_exception(failure)
