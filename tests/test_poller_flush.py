"""A poller's flush (monitord/poller_role.py `Poller._flush`) against a real PostgreSQL: a shard
dropped (its lease ran out, a batch of it Fenced) while an earlier shard's batch is being written
is skipped, not a KeyError that ends the poller (what tests/test_poller_partition.py first met)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg

from lab.isp import build_sample_isp, write_config
from monitord.config import load_config
from monitord.model import NodeRef, Outcome, Sample, StateServer
from monitord.poller_role import Poller
from monitord.store import Store

SAMPLE = Sample(NodeRef("device", "any"), "icmp", 1_700_000_000.0, Outcome.TIMEOUT, detail="no echo reply")


async def test_a_shard_dropped_while_an_earlier_batch_is_written_is_skipped(tmp_path: Path, pg_database: StateServer) -> None:
    isp = build_sample_isp(tmp_path, base="127.6.44")
    write_config(tmp_path, state=pg_database.url, state_file=None, cluster={"lease": "30s"})
    Store.open(pg_database).close()  # the schema
    poller = Poller(load_config(isp.config), pg_database)
    try:
        poller.held = dict(poller.leases.round(set(poller.shard_of.values())).shards)  # alone: every shard
        first, second = sorted(poller.held)[:2]
        poller.waiting = {first: [SAMPLE], second: [SAMPLE]}
        with psycopg.connect(pg_database.url) as blocker:  # the first batch's write waits on its shard's row
            blocker.execute("SELECT 1 FROM shards WHERE shard = %s FOR UPDATE", (first,))
            flushing = asyncio.create_task(poller._flush())
            await asyncio.sleep(0.5)
            assert not flushing.done()
            poller._hold({s: e for s, e in poller.held.items() if s != second})  # meanwhile the second's lease ran out
            assert second not in poller.waiting
        await asyncio.wait_for(flushing, 10)  # the first written, the second skipped: no KeyError
        assert poller.results["written"] == 1 and poller.results["fenced"] == 0
        with psycopg.connect(pg_database.url) as db:
            written = db.execute("SELECT shard, count(*) FROM sample_batches GROUP BY shard").fetchall()
        assert written == [(first, 1)]
    finally:
        poller.leases.close()
        poller._thread.shutdown()


async def test_a_writer_woken_as_it_is_cancelled_still_ends(tmp_path: Path, pg_database: StateServer) -> None:
    """A batch filling up in the same turn of the loop as the poller stops: the writer must end.
    On Python 3.11, asyncio.wait_for dropped a cancellation that came as what it awaited finished
    (gh-86296): the writer went on writing, and the poller never exited after SIGTERM."""
    isp = build_sample_isp(tmp_path, base="127.6.45")
    write_config(tmp_path, state=pg_database.url, state_file=None)
    Store.open(pg_database).close()
    poller = Poller(load_config(isp.config), pg_database)
    try:
        writing = asyncio.create_task(poller._writing())
        await asyncio.sleep(0.05)  # waiting for a full batch
        poller._full.set()
        writing.cancel()
        await asyncio.wait({writing}, timeout=5)
        assert writing.cancelled()
    finally:
        poller.leases.close()
        poller._thread.shutdown()
