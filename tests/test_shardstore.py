"""Pollers' leases, fencing and batches on a real PostgreSQL (monitord/shardstore.py), and the
correlator's cursor written with its steps (monitord/store.py `commit_step(through=...)`)."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from monitord import batches
from monitord.model import NodeRef, Outcome, Sample, StateServer
from monitord.shardstore import BatchReader, Fenced, ShardLeases
from monitord.store import NotLeader, Store

SAMPLES = [
    Sample(NodeRef("device", "ist-dslam-01"), "icmp", 1_700_000_000.25, Outcome.TIMEOUT, detail="no echo reply"),
    Sample(NodeRef("line", "ARZ-0001"), "snmp:adsl", 1_700_000_001.5, Outcome.OK, {"snr_margin_down_db": 7.5}),
]


def sql(server: StateServer, statement: str) -> list[tuple[object, ...]]:
    with psycopg.connect(server.url, autocommit=True) as db:
        cursor = db.execute(statement)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
def leases(pg_database: StateServer):
    Store.open(pg_database).close()  # the schema
    made: list[ShardLeases] = []

    def make(name: str, lease: float = 30.0) -> ShardLeases:
        made.append(ShardLeases(pg_database, name, lease))
        return made[-1]

    yield make
    for lease in made:
        lease.close()


def test_batches_round_trip_exactly() -> None:
    assert batches.load(batches.dump(SAMPLES)) == SAMPLES
    assert batches.load(batches.dump([])) == []
    with pytest.raises(ValueError):
        batches.load('[["planet", "x", "icmp", 1, "ok", {}, ""]]')


def test_two_pollers_split_the_shards_and_a_joiner_gets_its_share(leases, pg_database) -> None:
    a, b = leases("a"), leases("b")
    first = a.round(["x", "y"])
    assert sorted(first.shards) == ["x", "y"] and set(first.shards.values()) == {1}
    assert b.round(["x", "y"]).shards == {}  # nothing free: a holds both, and lets one go at its next round
    released = a.round(["x", "y"]).released
    assert len(released) == 1
    joined = b.round(["x", "y"])
    assert list(joined.shards) == list(released) and joined.shards[released[0]] == 2  # a claim raises the epoch
    assert sorted(sql(pg_database, "SELECT shard, owner FROM shards")) == sorted(
        [(released[0], "b"), (({"x", "y"} - set(released)).pop(), "a")]
    )


def test_a_batch_of_a_poller_that_lost_its_shard_is_refused_and_writes_nothing(leases, pg_database) -> None:
    a, b = leases("a"), leases("b")
    held = a.round(["x"]).shards
    assert a.write("x", held["x"], batches.dump(SAMPLES)) == 1
    sql(pg_database, "UPDATE shards SET expires_at = 0")  # a was cut off and its lease ran out
    sql(pg_database, "DELETE FROM pollers WHERE name = 'a'")
    taken = b.round(["x"]).shards
    assert taken == {"x": held["x"] + 1}
    with pytest.raises(Fenced, match="held by b at epoch 2"):
        a.write("x", held["x"], batches.dump(SAMPLES))
    assert b.write("x", taken["x"], batches.dump(SAMPLES[:1])) == 2
    assert sql(pg_database, "SELECT seq, shard, epoch FROM sample_batches ORDER BY seq") == [(1, "x", 1), (2, "x", 2)]
    a_again = a.round(["x"])  # back: it sees b's lease and claims nothing
    assert a_again.shards == {} and a_again.taken == ()


def test_a_clean_stop_frees_the_shards_at_once(leases, pg_database) -> None:
    a, b = leases("a"), leases("b")
    a.round(["x", "y"])
    a.leave()
    assert sorted(b.round(["x", "y"]).shards) == ["x", "y"]
    assert sql(pg_database, "SELECT name FROM pollers") == [("b",)]


def test_the_reader_reads_after_a_cursor_and_the_cursor_moves_only_with_a_committed_step(leases, pg_database) -> None:
    a = leases("a")
    epoch = a.round(["x"]).shards["x"]
    for n in range(3):
        a.write("x", epoch, batches.dump(SAMPLES[n % 2 :]))
    reader = BatchReader(pg_database)
    store = Store.open(pg_database)
    try:
        assert [seq for seq, _, _ in reader.after(0, 10)] == [1, 2, 3]
        assert [seq for seq, _, _ in reader.after(1, 1)] == [2]
        assert store.batch_cursor() == 0
        store.commit_step(None, [], [], 1.0, through=2)
        assert store.batch_cursor() == 2
        store.commit_step(None, [], [], 2.0, through=1)  # never backwards
        assert store.batch_cursor() == 2
        store.lead(5)  # not the epoch: the step is refused, and the cursor with it
        with pytest.raises(NotLeader):
            store.commit_step(None, [], [], 3.0, through=3)
        assert store.batch_cursor() == 2
        assert reader.prune() == 2
        assert [seq for seq, _, _ in reader.after(0, 10)] == [3]
    finally:
        store.close()
        reader.close()


async def test_a_claim_waits_for_a_batch_in_flight_and_that_batch_commits_first(leases, pg_database) -> None:
    """The batch's transaction holds its shard's row FOR SHARE: a claim's UPDATE waits for it, so
    a batch is either in before the claim or refused after it, never written under a lost lease."""
    a, b = leases("a"), leases("b")
    epoch = a.round(["x"]).shards["x"]
    sql(pg_database, "UPDATE shards SET expires_at = 0")  # a's lease ran out with its batch in flight
    sql(pg_database, "DELETE FROM pollers")
    batch = psycopg.connect(pg_database.url)
    try:
        assert batch.execute("SELECT owner, epoch FROM shards WHERE shard = 'x' FOR SHARE").fetchone() == ("a", epoch)
        claiming = asyncio.create_task(asyncio.to_thread(b.round, ["x"]))
        await asyncio.sleep(1.5)
        assert not claiming.done()
        batch.execute("INSERT INTO sample_batches (shard, epoch, samples, written_at) VALUES ('x', %s, '[]', 0)", (epoch,))
        batch.commit()
        assert (await asyncio.wait_for(claiming, 10)).shards == {"x": epoch + 1}
    finally:
        batch.close()
    assert sql(pg_database, "SELECT shard, epoch FROM sample_batches") == [("x", epoch)]
