"""`--role correlator` in process on a real PostgreSQL (monitord/correlator_role.py,
monitord/feed.py): the pollers' batches fed to the engine, the cursor written with each step
and only with it, and a new leader reading on from exactly the cursor its restored state has."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psycopg
import pytest

from lab.isp import build_sample_isp, write_config
from lab.world import FAST_RULES
from monitord import batches
from monitord.cli import main as cli
from monitord.config import Config, load_config
from monitord.correlator_role import Correlator
from monitord.feed import GATHER
from monitord.model import StateServer
from monitord.shardstore import ShardLeases
from monitord.store import Store
from tests.test_faults_state import START, Clock, device_down, device_up, dslam_with_sms_lines


def sql(server: StateServer, statement: str) -> list[tuple[object, ...]]:
    with psycopg.connect(server.url, autocommit=True) as db:
        cursor = db.execute(statement)
        return cursor.fetchall() if cursor.description else []


def one_shard(
    tmp_path: Path, pg_database: StateServer, base: str
) -> tuple[Config, str, list[str], ShardLeases, dict[str, int], str]:
    """The sample ISP on PostgreSQL, a DSLAM with SMS lines and its lines, and a poller holding its
    shard (the epochs it holds, the shard)."""
    isp = build_sample_isp(tmp_path, base=base)
    write_config(tmp_path, rules=FAST_RULES, state=pg_database.url, state_file=None)
    config = load_config(isp.config)
    dslam, _ = dslam_with_sms_lines(config)
    every = sorted(i for i, line in config.topology.lines.items() if line.device == dslam)
    Store.open(pg_database).close()
    poller = ShardLeases(pg_database, "p", 30.0)
    epoch = poller.round([config.topology.devices[dslam].exchange]).shards
    shard = next(iter(epoch))
    return config, dslam, every, poller, epoch, shard


async def test_batches_are_applied_once_across_a_change_of_leader(tmp_path: Path, pg_database: StateServer) -> None:
    config, dslam, every, poller, epoch, shard = one_shard(tmp_path, pg_database, "127.6.46")
    for samples in (device_up(dslam, every, START), device_up(dslam, every, START + 2), device_down(dslam, START + 20)):
        poller.write(shard, epoch[shard], batches.dump(samples))
    sql(pg_database, "UPDATE correlator_leader SET epoch = 1")

    clock = Clock()
    first = Correlator(config, clock=clock, epoch=1)
    try:
        assert first.pipeline.through == 0
        seq, samples = await first.feed.read(0)
        assert seq == 3 and len(samples) > 2 * len(every)  # all three batches, in one step
        await first.pipeline.ingest(samples[: -len(device_down(dslam, START + 20))], through=2)  # as if it read two
        assert sql(pg_database, "SELECT seq FROM correlator_cursor") == [(2,)]
        assert sql(pg_database, "SELECT count(*) FROM engine_targets")[0][0] > 0  # in the same transaction
        sql(pg_database, "UPDATE correlator_leader SET epoch = 2")  # a standby took over: the next step is refused
        clock.now = START + 20
        await first.pipeline.ingest(device_down(dslam, START + 20), through=3)
        assert first.pipeline.deposed.is_set()
        assert sql(pg_database, "SELECT seq FROM correlator_cursor") == [(2,)], "a refused step moves no cursor"
    finally:
        first.feed.close()
        first.store.close()

    second = Correlator(config, clock=clock, epoch=2)  # the new leader restores what was committed
    try:
        assert second.pipeline.through == 2
        seq, samples = await second.feed.read(second.pipeline.through)
        assert seq == 3 and samples == device_down(dslam, START + 20)  # the one batch not yet applied, once
        await second.pipeline.ingest(samples, through=seq)
        assert sql(pg_database, "SELECT seq FROM correlator_cursor") == [(3,)]
        clock.now = START + 40
        await second.pipeline.ingest([], through=3)  # nothing new: nothing written, nothing moves
        assert sql(pg_database, "SELECT seq FROM correlator_cursor") == [(3,)]
    finally:
        second.feed.close()
        second.store.close()
        poller.close()


@pytest.mark.parametrize("role", ["poller", "correlator"])
def test_the_cluster_roles_refuse_a_state_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], role: str) -> None:
    isp = build_sample_isp(tmp_path, base="127.6.47")
    assert cli(["run", "--role", role, str(isp.config)]) == 2
    err = capsys.readouterr().err
    assert f"--role {role}" in err and "state: postgresql://" in err


async def test_a_batch_that_cannot_be_read_is_passed_over_and_the_next_ones_applied(
    tmp_path: Path, pg_database: StateServer, caplog
) -> None:
    """A poller of another version, a row written by hand: retried forever, one bad row would
    stop the correlator, and with it the monitoring of every shard."""
    config, dslam, every, poller, epoch, shard = one_shard(tmp_path, pg_database, "127.6.47")
    poller.write(shard, epoch[shard], batches.dump(device_up(dslam, every, START)))
    bad = ['{"not": "a batch"}', "[[1, 2]]", '[["line", "x", "icmp", 1.0, "ok", [1], ""]]', "[" * 100_000, "not json"]
    with psycopg.connect(pg_database.url, autocommit=True) as db:
        for text in bad:
            db.execute("INSERT INTO sample_batches (shard, epoch, samples, written_at) VALUES (%s, 1, %s, 0)", (shard, text))
    poller.write(shard, epoch[shard], batches.dump(device_down(dslam, START + 20)))
    sql(pg_database, "UPDATE correlator_leader SET epoch = 1")

    correlator = Correlator(config, clock=Clock(), epoch=1)
    try:
        seq, samples = await correlator.feed.read(0)
        assert seq == 2 + len(bad)
        assert samples == [*device_up(dslam, every, START), *device_down(dslam, START + 20)]
        assert correlator.feed.malformed == len(bad) and correlator.feed.errors == 0
        logged = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
        assert [m.split()[2] for m in logged] == [str(n) for n in range(2, 2 + len(bad))]
        # the shard's poller learns of it at its next round, and writes each line's next sample again
        assert poller.round([shard]).passed_over == {shard: len(bad)}
    finally:
        correlator.feed.close()
        correlator.store.close()


async def test_batches_that_arrive_just_after_a_read_that_caught_up_make_one_step(
    tmp_path: Path, pg_database: StateServer
) -> None:
    """A hundred shards' pollers commit a batch each a second: read one by one, each would be a
    step and a commit of its own. After a read that took all there was, the feed waits GATHER."""
    config, dslam, every, poller, epoch, shard = one_shard(tmp_path, pg_database, "127.6.48")
    poller.write(shard, epoch[shard], batches.dump(device_up(dslam, every, START)))
    sql(pg_database, "UPDATE correlator_leader SET epoch = 1")
    correlator = Correlator(config, clock=Clock(), epoch=1)
    try:
        assert (await correlator.feed.read(0))[0] == 1  # all there was
        reading = asyncio.create_task(correlator.feed.read(1))
        started = time.monotonic()
        for n in range(3):  # one every 50 ms, within GATHER of that read
            await asyncio.sleep(0.05)
            poller.write(shard, epoch[shard], batches.dump(device_up(dslam, every, START + 1 + n)))
        seq, samples = await reading
        assert seq == 4 and len(samples) == 3 * len(device_up(dslam, every, START))  # one read, so one step
        assert time.monotonic() - started < GATHER + 1.0
    finally:
        correlator.feed.close()
        correlator.store.close()
        poller.close()
