"""One correlator leader on one PostgreSQL state (issue 15, monitord/leader.py), against a real
local cluster (tests/pg_fixtures.py): the lock, the epoch that fences the step writer, and a
leader that loses either."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from lab.isp import build_sample_isp, write_config
from lab.world import FAST_RULES
from monitord.config import load_config
from monitord.daemon import Daemon
from monitord.database import StoreError
from monitord.leader import Leadership
from monitord.model import StateServer
from monitord.store import NotLeader, Store
from tests.outbox_fixtures import sms
from tests.test_faults_state import START, Clock, device_down, device_up, dslam_with_sms_lines


def sql(server: StateServer, statement: str) -> list[tuple[object, ...]]:
    with psycopg.connect(server.url, autocommit=True) as db:
        cursor = db.execute(statement)
        return cursor.fetchall() if cursor.description else []


async def test_one_process_takes_the_lead_and_the_next_takes_over_with_a_higher_epoch(pg_database: StateServer) -> None:
    Store.open(pg_database).close()  # the schema
    first, second = Leadership(pg_database, "first"), Leadership(pg_database, "second")
    try:
        assert await first.try_once() == 1
        assert await second.try_once() is None  # the lock is held: it waits
        assert sql(pg_database, "SELECT epoch, holder FROM correlator_leader") == [(1, "first")]
        first.step_down()
        assert await asyncio.wait_for(second.acquire(asyncio.Event()), 15) == 2
        assert sql(pg_database, "SELECT epoch, holder FROM correlator_leader") == [(2, "second")]
    finally:
        first.close()
        second.close()


async def test_a_leader_advertises_its_api_under_its_own_epoch_only_and_a_takeover_clears_it(pg_database: StateServer) -> None:
    """The other nodes forward the API to `advertise` (monitord/forward.py): it must never name a
    process that no longer leads, nor keep the address of the last one."""
    Store.open(pg_database).close()
    first, second = Leadership(pg_database, "first"), Leadership(pg_database, "second")
    try:
        assert await first.try_once() == 1
        await first.advertise("http://127.0.0.1:9001")
        assert sql(pg_database, "SELECT epoch, holder, advertise FROM correlator_leader") == [
            (1, "first", "http://127.0.0.1:9001")
        ]
        sql(pg_database, "UPDATE correlator_leader SET epoch = 2, advertise = NULL")  # as a takeover while it was cut off
        await first.advertise("http://127.0.0.1:9002")
        assert sql(pg_database, "SELECT advertise FROM correlator_leader") == [(None,)]
        sql(pg_database, "UPDATE correlator_leader SET epoch = 1, advertise = 'http://127.0.0.1:9001'")
        first.step_down()
        assert await asyncio.wait_for(second.acquire(asyncio.Event()), 15) == 2
        assert sql(pg_database, "SELECT epoch, holder, advertise FROM correlator_leader") == [(2, "second", None)]
    finally:
        first.close()
        second.close()


async def test_a_leader_whose_lock_session_ends_hears_so_and_a_standby_takes_over(pg_database: StateServer) -> None:
    Store.open(pg_database).close()
    first, second = Leadership(pg_database, "first"), Leadership(pg_database, "second")
    try:
        assert await first.try_once() == 1
        sql(
            pg_database,
            """SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())""",
        )
        assert "broke" in await asyncio.wait_for(first.lost(), 15)
        assert await asyncio.wait_for(second.acquire(asyncio.Event()), 15) == 2
    finally:
        first.close()
        second.close()


async def test_a_leader_hears_that_the_epoch_moved_on(pg_database: StateServer) -> None:
    Store.open(pg_database).close()
    leader = Leadership(pg_database, "leader")
    try:
        assert await leader.try_once() == 1
        lost = asyncio.create_task(leader.lost())
        await asyncio.sleep(2.5)
        assert not lost.done()  # the check passes while the epoch is its own
        sql(pg_database, "UPDATE correlator_leader SET epoch = epoch + 1")
        assert "moved on to 2" in await asyncio.wait_for(lost, 15)
    finally:
        leader.close()


async def test_a_step_after_the_epoch_moved_on_is_refused_and_writes_nothing(pg_database: StateServer) -> None:
    store = Store.open(pg_database)
    try:
        sql(pg_database, "UPDATE correlator_leader SET epoch = 7")
        store.lead(7)
        writer = store.writer()
        assert (await writer.commit_step(None, [], [(sms(1), None)], START))[0] == 1
        sql(pg_database, "UPDATE correlator_leader SET epoch = 8")  # another process took over
        with pytest.raises(NotLeader, match="not 7"):
            await writer.commit_step(None, [], [(sms(2), None)], START)
        assert [k for (k,) in sql(pg_database, "SELECT key FROM outbox")] == [sms(1).key]
    finally:
        store.close()


async def test_the_takeover_waits_for_a_step_in_flight_and_the_step_commits_before_it(pg_database: StateServer) -> None:
    """The step's transaction holds the epoch row FOR SHARE: the takeover's UPDATE waits for its
    commit, so the new leader restores from a store that has it."""
    Store.open(pg_database).close()
    step = psycopg.connect(pg_database.url)
    leadership = Leadership(pg_database, "next")
    try:
        step.execute("SELECT epoch FROM correlator_leader FOR SHARE")  # a step in flight, under epoch 0
        taking = asyncio.create_task(leadership.try_once())
        await asyncio.sleep(1.5)
        assert not taking.done()
        step.execute("INSERT INTO tracking_numbers VALUES ('ARZ', 2026, 5)")
        step.commit()
        assert await asyncio.wait_for(taking, 10) == 1
    finally:
        step.close()
        leadership.close()


def test_sqlite_has_no_leader(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "state.db")
    try:
        with pytest.raises(StoreError, match="needs the state in PostgreSQL"):
            store.lead(1)
    finally:
        store.close()


async def test_a_fenced_leaders_step_is_not_written_and_it_stops_deciding(tmp_path: Path, pg_database: StateServer) -> None:
    """The daemon leads under epoch 1; the epoch moves on under it (a standby took over): the
    outage it then sees is neither written (no incident, no notice) nor decided again."""
    isp = build_sample_isp(tmp_path, base="127.6.44")
    write_config(tmp_path, rules=FAST_RULES, state=pg_database.url, state_file=None)
    config = load_config(isp.config)
    dslam, lines = dslam_with_sms_lines(config)
    every = sorted(i for i, line in config.topology.lines.items() if line.device == dslam)
    Store.open(pg_database).close()
    sql(pg_database, "UPDATE correlator_leader SET epoch = 1")
    clock = Clock()
    daemon = Daemon(config, clock=clock, epoch=1)
    try:
        await daemon.pipeline.ingest(device_up(dslam, every, START))
        assert sql(pg_database, "SELECT count(*) FROM engine_targets")[0][0] > 0  # written while it leads
        sql(pg_database, "UPDATE correlator_leader SET epoch = 2")
        clock.now = START + 20
        await daemon.pipeline.ingest(device_down(dslam, clock.now))
        assert daemon.pipeline.deposed.is_set() and "not 1" in daemon.pipeline.deposed_by
        for offset in range(21, 30):
            clock.now = START + offset
            await daemon.pipeline.tick()
        assert daemon.pipeline.unwritten is None  # not kept for later either
    finally:
        daemon.store.close()
    assert sql(pg_database, "SELECT count(*) FROM incidents") == [(0,)]
    assert sql(pg_database, "SELECT count(*) FROM outbox") == [(0,)]
    assert lines  # the DSLAM had customers to tell
