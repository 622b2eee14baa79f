"""One correlator leader among several `monitord run` processes on one PostgreSQL state (issue 15).

Two guards, because one is not enough. The leader holds a session-level advisory lock on a
session of its own, which the server lets go the moment that session ends (the process killed,
its link gone), and a standby that tries the lock every CHECK_EVERY seconds then takes it. But a
lock held by one session fences none of the process's other sessions (the step writer commits
on its own), and a leader whose lock session broke learns of it only at its next check. So each
takeover also raises an epoch, the one row of `correlator_leader`, and every step's transaction
reads that row FOR SHARE and aborts when it moved on (monitord/store.py `Store.lead`,
`NotLeader`): the takeover's UPDATE waits for a step in flight to commit, and no step of the old
leader commits after it. As with the outbox's leases, the server's rows decide, not a process's
belief.

The lock's session has its own thread (a check that hangs on a dead link holds no event loop)
and TCP keepalives on both ends (monitord/pgstore.py SERVER_KEEPALIVES and CLIENT_KEEPALIVES, as
every session of the store has), so that a link that went silent ends it, and with it the lock,
within about ten seconds rather than the system's two hours. Its commits are synchronous: an
epoch raised is never lost to a crash of the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg

from monitord.database import one_line
from monitord.model import StateServer
from monitord.pgstore import postgres_session

log = logging.getLogger("monitord")

LEADER_LOCK = 0x6D6F6E63  # pg_advisory_lock key of the correlator's leadership
CHECK_EVERY = 1.0  # seconds between a standby's tries of the lock, and between a leader's checks of it
CHECK_TIMEOUT = 5.0  # a leader whose check goes unanswered this long stops leading
_TAKE_OVER = """UPDATE correlator_leader SET epoch = epoch + 1, holder = $1, advertise = NULL,
    since = extract(epoch FROM clock_timestamp()) RETURNING epoch"""
_ADVERTISE = "UPDATE correlator_leader SET advertise = $1 WHERE epoch = $2"
_RELOADED = "UPDATE correlator_leader SET reloads = reloads + 1 WHERE epoch = $1"


class Leadership:
    """This process's claim to lead: `acquire` waits for the lock and raises the epoch, `lost`
    returns once the claim is gone, `step_down` lets the lock go. `holder` names this process
    in the `correlator_leader` row, for operators."""

    def __init__(self, server: StateServer, holder: str) -> None:
        self.server = server
        self.holder = holder
        self.epoch: int | None = None  # while leading: the epoch this process took over with
        self._session: psycopg.Connection[Any] | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="monitord-leader")

    async def try_once(self) -> int | None:
        """Take the lead now if no one holds it: the new epoch, else None."""
        self.epoch = await self._in_thread(self._try)
        return self.epoch

    async def acquire(self, stop: asyncio.Event) -> int | None:
        """Wait until this process leads (the new epoch) or `stop` is set (None)."""
        while not stop.is_set():
            if await self.try_once() is not None:
                return self.epoch
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CHECK_EVERY):
                    await stop.wait()
        return None

    async def lost(self) -> str:
        """Return, saying why, once this process may no longer lead: its lock's session broke
        or went unanswered for CHECK_TIMEOUT, or the epoch moved on (someone took over)."""
        while True:
            await asyncio.sleep(CHECK_EVERY)
            try:
                async with asyncio.timeout(CHECK_TIMEOUT):
                    epoch = await self._in_thread(self._current)
            except TimeoutError:
                return f"the lock's session did not answer within {CHECK_TIMEOUT:.0f} s"
            except psycopg.Error as error:
                return f"the lock's session broke ({one_line(error)})"
            if epoch != self.epoch:
                return f"the epoch moved on to {epoch} (this process took the lead at {self.epoch})"

    async def advertise(self, url: str | None) -> bool:
        """Name where this leader's API is reached, for the other nodes to forward to
        (monitord/forward.py); under its own epoch only, so a deposed leader names nothing.
        Whether the row took it."""
        epoch = self.epoch
        if epoch is None:
            return False
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                written = await self._in_thread(lambda: self._connected().execute(_ADVERTISE, (url, epoch)).rowcount)
        except (TimeoutError, psycopg.Error) as error:
            log.warning(
                "cannot advertise this leader's API (%s); the other nodes answer 503 meanwhile", one_line(error) or "no answer"
            )
            return False
        return bool(written)

    async def reloaded(self) -> None:
        """Count a reload of the leader's config, under its own epoch: the pollers then write
        again the lines their own reloads changed, which it may not have known before
        (monitord/poller_role.py `_follow_reloads`)."""
        epoch = self.epoch
        if epoch is None:
            return
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                await self._in_thread(lambda: self._connected().execute(_RELOADED, (epoch,)))
        except (TimeoutError, psycopg.Error) as error:
            log.warning(
                "cannot tell the pollers of this reload (%s): what they left out is written again within cluster.resend",
                one_line(error) or "no answer",
            )

    def step_down(self) -> None:
        """Let the lock go (the session is closed, after a check still running in its thread)."""
        self.epoch = None
        self._thread.submit(self._close)

    def close(self) -> None:
        self.step_down()
        self._thread.shutdown()

    async def _in_thread(self, call: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, call)

    def _connected(self) -> psycopg.Connection[Any]:
        if self._session is None or self._session.closed or self._session.broken:
            self._close()
            session = postgres_session(self.server)
            session.execute("SET synchronous_commit = on")
            self._session = session
        return self._session

    def _try(self) -> int | None:
        """In the thread: the lock, and then the epoch raised; None if another session holds it
        or the server cannot be reached (tried again later)."""
        try:
            session = self._connected()
            taken = session.execute("SELECT pg_try_advisory_lock($1)", (LEADER_LOCK,)).fetchone()
            if not (taken and taken[0]):
                return None
            with session.transaction():
                row = session.execute(_TAKE_OVER, (self.holder,)).fetchone()
        except psycopg.Error as error:
            log.warning("cannot try the correlator lock (%s); trying again in %.0f s", one_line(error), CHECK_EVERY)
            self._close()
            return None
        assert row is not None  # the migration inserted the one row
        return int(row[0])

    def _current(self) -> int:
        """In the thread: the epoch as the lock's session reads it (psycopg.Error if it broke)."""
        if self._session is None:
            raise psycopg.OperationalError("no session holds the lock")
        row = self._session.execute("SELECT epoch FROM correlator_leader").fetchone()
        return int(row[0]) if row else -1

    def _close(self) -> None:
        if self._session is not None:
            with contextlib.suppress(psycopg.Error):
                self._session.close()
            self._session = None
