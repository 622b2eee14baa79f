"""The PostgreSQL store's durability, off the event loop: the store's commits do not wait for the
server's WAL flush, and a worker thread makes them durable with one synchronous commit of its
own (the same group commit as monitord/walsync.py, the same rule: what leaves the process waits
for `await store.durable()` first).

What the store's sessions do (the loop's and the step writer's, monitord/store.py):
`synchronous_commit = off`. A COMMIT returns once the commit record is in the server's WAL
buffers, before the WAL is flushed.

Why that is safe (PostgreSQL 15 documentation, "Asynchronous Commit", wal-async-commit.html):

* "The risk that is taken by using asynchronous commit is of data loss, not data corruption":
  after a crash the server "will recover by replaying WAL up to the last record that was
  flushed", and "the transactions are replayed in commit order". The WAL is one sequential log,
  so once a record is flushed every record before it is too.
* A synchronous commit returns only after "the transaction's WAL records [are] flushed to
  permanent storage". `PgSync` commits, from a connection of its own with
  `synchronous_commit = on`, a transaction that updates one row (`wal_flushes`): its commit
  record comes after the commit record of every transaction the loop committed before it began,
  so when it returns those are flushed too (group commit: one flush covers every commit made
  while the one before it was running).
* It must write a row: a transaction that wrote no WAL commits asynchronously whatever
  `synchronous_commit` says (src/backend/access/transam/xact.c, `RecordTransactionCommit`), and
  so does one that wrote only to an unlogged or temporary table.
* `synchronous_commit = on` also waits for the synchronous standbys the operator configured.

What a crash of the server (or of its machine) can lose: the commits after the last flush that
returned, none of which has had an effect outside the database, as with SQLite
(monitord/walsync.py says what each lost commit means after a restart).

A flush that fails (the server restarted or crashed, the session broke, or the server refused
the write) may follow a crash that lost asynchronous commits the daemon had counted on. A clean
restart (`pg_ctl restart -m fast`, systemd's stop) flushes the WAL at shutdown and loses
nothing, but the daemon cannot tell one from a crash. So the commits made before the failure are
fenced off (monitord/walsync.py `GroupSync._fence`): `durable()` raises for them (a
psycopg.OperationalError, which pauses delivery like a refused write: the outbox sends none of
the items those commits claimed, and claims them again once they are reconciled), and they are
never called durable. Then the worker opens a new session (trying again every RECONNECT_EVERY
seconds) and the store's sessions are replaced at their next use (monitord/pgstore.py `Postgres`).

Which later commits a flush vouches for: only those made on sessions opened after the flushing
session was (`epoch`). A session lives as long as the server does, so if the server restarted
between such a commit and the flush, the flush fails; if it did not, the commit is in the WAL
before the flush's commit record. A commit made on an older session (one in flight at the
failure) may have been made before the restart: it is fenced off too.

What a crash of the server can still lose while monitord runs on: a step the pipeline committed
in the last instants before the crash (its notices, the incident rows it changed). The daemon's
memory is then ahead of the database until the next start, which reloads from it and decides
again from the next samples (as after a power loss with SQLite). A clean restart of the server
loses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import psycopg

from monitord.walsync import GroupSync

log = logging.getLogger(__name__)

FLUSH = "UPDATE wal_flushes SET flushes = flushes + 1"


RECONNECT_EVERY = 1.0  # seconds between attempts to open a new session after a failed flush


class PgSync(GroupSync):
    """Made by `Store.open` once the schema is there; `connect()` opens the worker's connection."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], where: str) -> None:
        self._connect = connect
        self._db = self._session()
        self._where = where
        super().__init__("monitord-pgsync")

    @property
    def synchronous_commit(self) -> str:
        """The worker connection's setting ('on'), for tests."""
        row = self._db.execute("SHOW synchronous_commit").fetchone()
        return str(row[0]) if row else ""

    def finish(self) -> None:
        self._db.close()

    def _session(self) -> psycopg.Connection[Any]:
        connection = self._connect()
        connection.execute("SET synchronous_commit = on")
        return connection

    def _flush(self) -> None:
        self._db.execute(FLUSH)

    def _resume(self, error: Exception) -> bool:
        """Fence off what was committed so far, open a new session (until it opens, or the store
        closes), then fence off what older sessions committed meanwhile: from then on the
        store's sessions open under the new `epoch`."""
        self._fence(error)
        self._db.close()
        while True:
            try:
                self._db = self._session()
                break
            except psycopg.Error as refused:
                log.warning("%s: cannot reconnect to make commits durable (%s)", self._where, " ".join(str(refused).split()))
            with self._state:
                if self._closing or self._state.wait_for(lambda: self._closing, RECONNECT_EVERY):
                    return False
        with self._state:
            self.epoch += 1
        self._fence(error)
        log.warning("%s: reconnected; commits made before it are not sent on", self._where)
        return True

    def _failure(self, error: Exception) -> psycopg.OperationalError:
        why = " ".join(str(error).split())
        return psycopg.OperationalError(
            f"{self._where}: commits may have been lost ({why}); what they claimed is not sent, and is reconciled"
        )
