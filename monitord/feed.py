"""What feeds a `--role correlator`'s engine: the pollers' batches of samples, read in `seq`
order after the cursor its saved state includes (monitord/shardstore.py says why that order is
the order they were committed in).

Exactly once. The leader's pipeline records, with every step it commits, the last batch the
step's engine state includes (`Pipeline.ingest(samples, through=seq)`, `Store.commit_step`),
in the same transaction as the step's incidents and outbox rows. A leader that dies loses only
uncommitted steps; the next one restores the engine from the committed state and reads on from
the committed cursor, so every batch is applied once: never skipped, never twice.

The reading is done in a thread of its own (a database that hangs holds no event loop), woken by
the pollers' NOTIFY or every WAKE_EVERY seconds; the samples are decoded there too. A read that
took every batch there was is followed by a pause of GATHER seconds, so the batches that arrive
meanwhile make one step: a step's commit (the engine's head, the cursor) costs the same for one
batch as for fifty, and the pollers of a hundred shards each commit one a second. A feed that is
behind reads on at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg

from monitord import batches
from monitord.database import one_line
from monitord.model import Sample, StateServer
from monitord.shardstore import BatchReader

log = logging.getLogger("monitord")

WAKE_EVERY = 0.5  # seconds: the longest the feed waits for a NOTIFY before it looks again
BATCHES_PER_READ = 50  # batches taken into one engine step at most
GATHER = 0.25  # seconds between reads once the feed has caught up
PRUNE_EVERY = 30.0  # seconds between deletions of the batches every committed step includes
RETRY = 1.0  # seconds before reading again after the database refused


class BatchFeed:
    """`read(after)`: the next batches after `after`, as (last seq, samples), waiting for some."""

    def __init__(self, server: StateServer) -> None:
        self._reader = BatchReader(server)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="monitord-feed")
        self._pruned_at = time.monotonic()
        self.batches = 0  # read so far
        self.samples = 0
        self.last_seq = 0
        self.errors = 0
        self.malformed = 0  # batches passed over: they could not be read
        self._caught_up_at: float | None = None  # when the last read took all there was

    async def read(self, after: int) -> tuple[int, list[Sample]]:
        """The batches after `after` merged (their last seq, and their samples in order); waits
        until there are some (the database refusing is logged and tried again)."""
        loop = asyncio.get_running_loop()
        if self._caught_up_at is not None:
            await asyncio.sleep(self._caught_up_at + GATHER - time.monotonic())
        while True:
            try:
                got = await loop.run_in_executor(self._thread, self._read, after)
            except psycopg.Error as error:
                self.errors += 1
                log.warning("cannot read the pollers' batches (%s); trying again in %.0f s", one_line(error), RETRY)
                self._reader.close()
                await asyncio.sleep(RETRY)
                continue
            if got is not None:
                return got

    def _read(self, after: int) -> tuple[int, list[Sample]] | None:
        if time.monotonic() - self._pruned_at > PRUNE_EVERY:
            self._pruned_at = time.monotonic()
            self._reader.prune()
        rows = self._reader.after(after, BATCHES_PER_READ)
        if not rows:
            self._reader.wait(WAKE_EVERY)
            return None
        self._caught_up_at = time.monotonic() if len(rows) < BATCHES_PER_READ else None
        samples = [sample for seq, shard, text in rows for sample in self._load(seq, shard, text)]
        self.batches += len(rows)
        self.samples += len(samples)
        self.last_seq = rows[-1][0]
        return rows[-1][0], samples

    def _load(self, seq: int, shard: str, text: str) -> list[Sample]:
        """A batch's samples; none for one that cannot be read (a poller of another version, a
        row written by hand): it is passed over, never retried, so one bad row cannot stop the
        correlator. Its shard's poller is told (`shards.passed_over`) and writes each line's
        next sample again, since it may have left out as unchanged what followed the lost one."""
        try:
            return batches.load(text)
        except (ValueError, RecursionError) as error:
            self.malformed += 1
            log.error("pollers' batch %d of shard %s cannot be read (%s); passed over", seq, shard, str(error)[:200])
            self._reader.pass_over(shard)
            return []

    def close(self) -> None:
        self._thread.submit(self._reader.close)
        self._thread.shutdown()
