"""The pollers' leases and batches in PostgreSQL (`--role poller`, monitord/poller_role.py), and
the correlator's reading of the batches (monitord/feed.py). Blocking calls on a session of
their own, each made from one thread of its caller's, never on an event loop.

Leases. Each round a poller writes its heartbeat, reads each shard's owner (while its lease
holds, by the server's clock, the one clock all pollers share) and the live pollers, asks
monitord/shards.py `plan` what to do, and then renews, claims and lets go in single UPDATEs
whose WHERE clauses decide races: a claim takes a shard only if it is free or its lease expired,
and raises its epoch; a renewal only extends a lease that still holds.

Fencing. A batch is inserted in a transaction that reads its shard's row FOR SHARE and aborts
(`Fenced`) unless this poller still owns it under the epoch it claimed it with. A claim's
UPDATE waits for such a transaction to end, and any batch begun after the claim sees the new
epoch: a poller that lost its shard (its lease expired while it was cut off, and another took
it) never writes a sample of it again, however late its batch arrives.

Order. The correlator reads batches by `seq` and remembers the last it consumed. A sequence
number is taken at INSERT but becomes visible at COMMIT, so two pollers' batches could become
visible out of order, and a reader that had moved past the later one would skip the earlier.
So batch inserts take a transaction-level advisory lock (BATCH_LOCK) first: one at a time,
numbered in the order they commit. A batch every second or so per poller makes that a queue of a
few milliseconds, not a bottleneck (docs/decisions.md).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

from monitord.model import StateServer
from monitord.pgstore import postgres_session
from monitord.shards import plan

log = logging.getLogger("monitord")

BATCH_LOCK = 0x6D6F6E62  # pg_advisory_xact_lock key: batches are inserted one at a time, in seq order
CHANNEL = "monitord_batches"  # NOTIFY after each batch: the correlator reads at once
_NOW = "extract(epoch FROM clock_timestamp())::float8"


class Fenced(Exception):
    """A batch refused: the poller no longer owns its shard under the epoch it wrote with."""


@dataclass(frozen=True, slots=True)
class Held:
    """After a round: this poller's shards and their epochs, and what changed."""

    shards: dict[str, int]
    taken: tuple[str, ...]
    released: tuple[str, ...]
    live: int
    reloads: int  # the correlator leader's reloads so far (monitord/leader.py `reloaded`)
    passed_over: dict[str, int]  # shard -> its batches the correlator could not read so far


class Session:
    """One session, opened at first use and again after it broke."""

    def __init__(self, server: StateServer) -> None:
        self.server = server
        self._db: psycopg.Connection[Any] | None = None

    def db(self) -> psycopg.Connection[Any]:
        if self._db is None or self._db.closed or self._db.broken:
            self.close()
            self._db = postgres_session(self.server)
        return self._db

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(psycopg.Error):
                self._db.close()
            self._db = None


class ShardLeases(Session):
    """A poller's side: `round` each lease/3 seconds, `write` each batch, `leave` at the end."""

    def __init__(self, server: StateServer, name: str, lease: float) -> None:
        super().__init__(server)
        self.name = name
        self.lease = lease

    def round(self, shard_keys: Iterable[str]) -> Held:
        keys = sorted(set(shard_keys))
        db = self.db()
        db.execute(
            f"INSERT INTO pollers VALUES ($1, {_NOW}) ON CONFLICT (name) DO UPDATE SET heartbeat = excluded.heartbeat",
            (self.name,),
        )
        db.execute("INSERT INTO shards (shard) SELECT unnest($1::text[]) ON CONFLICT (shard) DO NOTHING", (keys,))
        rows = db.execute(
            f"SELECT shard, CASE WHEN expires_at > {_NOW} THEN owner END, passed_over FROM shards WHERE shard = ANY($1)",
            (keys,),
        ).fetchall()
        live = [r[0] for r in db.execute(f"SELECT name FROM pollers WHERE heartbeat > {_NOW} - $1", (self.lease,))]
        step = plan(self.name, keys, live, {r[0]: r[1] for r in rows})
        held: dict[str, int] = {}
        if step.release:
            db.execute(
                "UPDATE shards SET owner = NULL, expires_at = 0 WHERE shard = ANY($1) AND owner = $2",
                (list(step.release), self.name),
            )
        renewed = db.execute(
            f"""UPDATE shards SET expires_at = {_NOW} + $3 WHERE shard = ANY($1) AND owner = $2
                AND expires_at > {_NOW} RETURNING shard, epoch""",
            (list(step.keep), self.name, self.lease),
        ).fetchall()
        held.update((r[0], int(r[1])) for r in renewed)
        taken = db.execute(
            f"""UPDATE shards SET owner = $2, epoch = epoch + 1, expires_at = {_NOW} + $3
                WHERE shard = ANY($1) AND (owner IS NULL OR expires_at <= {_NOW}) RETURNING shard, epoch""",
            (list(step.take), self.name, self.lease),
        ).fetchall()
        held.update((r[0], int(r[1])) for r in taken)
        reloads = db.execute("SELECT reloads FROM correlator_leader").fetchone()
        assert reloads is not None  # the migrations inserted the one row
        live_count = len(set(live) | {self.name})
        passed_over = {r[0]: int(r[2]) for r in rows}
        return Held(held, tuple(sorted(r[0] for r in taken)), step.release, live_count, int(reloads[0]), passed_over)

    def write(self, shard: str, epoch: int, samples: str) -> int:
        """Insert one batch (its `seq`), or Fenced if the shard is no longer this poller's under `epoch`."""
        db = self.db()
        with db.transaction():
            db.execute("SELECT pg_advisory_xact_lock($1)", (BATCH_LOCK,))
            row = db.execute("SELECT owner, epoch FROM shards WHERE shard = $1 FOR SHARE", (shard,)).fetchone()
            if row is None or row[0] != self.name or int(row[1]) != epoch:
                owner = f"{row[0]} at epoch {row[1]}" if row else "no one"
                raise Fenced(f"shard {shard} is held by {owner}, not by {self.name} at epoch {epoch}")
            inserted = db.execute(
                f"INSERT INTO sample_batches (shard, epoch, samples, written_at) VALUES ($1, $2, $3, {_NOW}) RETURNING seq",
                (shard, epoch, samples),
            ).fetchone()
            db.execute(f"NOTIFY {CHANNEL}")
        assert inserted is not None
        return int(inserted[0])

    def leave(self) -> None:
        """A clean stop: this poller's shards are free at once (not at their leases' end)."""
        db = self.db()
        db.execute("UPDATE shards SET owner = NULL, expires_at = 0 WHERE owner = $1", (self.name,))
        db.execute("DELETE FROM pollers WHERE name = $1", (self.name,))


class Listening(Session):
    """A session that LISTENs on `channel` (again on each new connection)."""

    channel = ""

    def __init__(self, server: StateServer) -> None:
        super().__init__(server)
        self._listening: psycopg.Connection[Any] | None = None

    def db(self) -> psycopg.Connection[Any]:
        db = super().db()
        if self._listening is not db:
            db.execute(f"LISTEN {self.channel}")
            self._listening = db
        return db

    def heard(self, timeout: float) -> list[str]:
        """The payloads notified within `timeout` seconds (returns at the first ones)."""
        return [n.payload for n in self.db().notifies(timeout=timeout, stop_after=1)]


class BatchReader(Listening):
    """The correlator's side: the batches after a cursor, woken by the pollers' NOTIFY."""

    channel = CHANNEL

    def after(self, seq: int, limit: int) -> list[tuple[int, str, str]]:
        """The batches after `seq`: (seq, shard, samples)."""
        rows = (
            self.db()
            .execute("SELECT seq, shard, samples FROM sample_batches WHERE seq > $1 ORDER BY seq LIMIT $2", (seq, limit))
            .fetchall()
        )
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    def pass_over(self, shard: str) -> None:
        """Count a batch of `shard` that could not be read: its poller writes what it left out again."""
        self.db().execute("UPDATE shards SET passed_over = passed_over + 1 WHERE shard = $1", (shard,))

    def wait(self, timeout: float) -> None:
        """Until a poller wrote a batch (or already had, unread), at most `timeout` seconds."""
        self.heard(timeout)

    def prune(self) -> int:
        """The batches every committed step already includes."""
        cursor = self.db().execute("DELETE FROM sample_batches WHERE seq <= (SELECT seq FROM correlator_cursor)")
        return cursor.rowcount
