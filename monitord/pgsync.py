"""The PostgreSQL store's durability, off the event loop: the loop's commits do not wait for the
server's WAL flush, and a worker thread makes them durable with one synchronous commit of its
own (the same group commit as monitord/walsync.py, the same rule: what leaves the process waits
for `await store.durable()` first).

What the loop's connection does (monitord/store.py): `synchronous_commit = off`. Its COMMIT
returns once the commit record is in the server's WAL buffers, before the WAL is flushed.

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

A flush that fails (the server went away, restarted, or refused the write) may follow a crash
that lost asynchronous commits the daemon had counted on: nothing is called durable after it,
`durable()` raises from then on (a psycopg.Error, which pauses delivery like a refused write), and
monitord must be restarted to go on from what the database holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from monitord.walsync import GroupSync

FLUSH = "UPDATE wal_flushes SET flushes = flushes + 1"


class PgSync(GroupSync):
    """Made by `Store.open` once the schema is there; `connect()` opens the worker's connection."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], where: str) -> None:
        self._db = connect()
        self._db.execute("SET synchronous_commit = on")
        self._where = where
        super().__init__("monitord-pgsync")

    @property
    def synchronous_commit(self) -> str:
        """The worker connection's setting ('on'), for tests."""
        row = self._db.execute("SHOW synchronous_commit").fetchone()
        return str(row[0]) if row else ""

    def finish(self) -> None:
        self._db.close()

    def _flush(self) -> None:
        self._db.execute(FLUSH)

    def _failure(self, error: Exception) -> psycopg.OperationalError:
        why = " ".join(str(error).split())
        return psycopg.OperationalError(
            f"{self._where}: cannot make commits durable ({why}); nothing more is sent until monitord restarts"
        )
