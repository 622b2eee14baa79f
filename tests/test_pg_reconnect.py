"""The PostgreSQL store across a restart of the server (issue 15 item 3), against a real local
cluster (tests/pg_fixtures.py `pg_crashable`): every session is replaced at its next use, a
commit a crash may have lost is never called durable, and the daemon and a notifier worker
catch up with nothing lost and nothing sent twice. And over a link that goes silent, a session
gives up within seconds."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from lab.isp import build_sample_isp, write_config
from lab.twilio import TwilioLab
from lab.world import FAST_RULES
from monitord.channels import build_notifiers, deliver
from monitord.config import load_config
from monitord.daemon import Daemon
from monitord.model import Phase, Secret, StateServer
from monitord.outbox import ChannelPolicy, Outbox
from monitord.pipeline import WRITE_RETRY
from monitord.store import LeaseLost, Store
from notifiers.sms import TwilioSms
from tests.ops_fixtures import short_dir  # noqa: F401  (fixture)
from tests.outbox_fixtures import FAST, queue, sms, twilio, twilio_section  # noqa: F401  (fixture)
from tests.pg_fixtures import PgCluster
from tests.pg_partition import Link, pg_link  # noqa: F401  (fixture)
from tests.test_faults_state import START, Clock, device_down, device_up, dslam_with_sms_lines

ROOT = Path(__file__).resolve().parent.parent
SILENT_LINK_CLIENT = r"""
import sys, time
from monitord.model import StateServer
from monitord.store import Store
store = Store.open(StateServer(sys.argv[1]))
store.incident("ARZ-2026-000001")
print("ready", flush=True)
sys.stdin.readline()  # the link is cut now
started = time.monotonic()
try:
    store.incident("ARZ-2026-000001")
    print("answered", flush=True)
except store.errors as error:
    print(f"failed after {time.monotonic() - started:.1f} s: {type(error).__name__}", flush=True)
"""


async def restart(pg: PgCluster) -> None:
    """What an operator's `pg_ctl restart -m fast` does: every session ends, the WAL is flushed."""
    await asyncio.to_thread(pg.ctl, "restart", "-m", "fast")


def rows(server: StateServer, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(server.url) as db:
        return db.execute(sql).fetchall()


async def durable_again(store: Store, write: int) -> int:
    """Write and wait for durability until it is vouched for (the first tries after a restart
    are fenced off); returns how many tries it took."""
    for tries in range(1, 11):
        try:
            queue(store, [sms(write * 100 + tries)])
            await store.durable()
            return tries
        except store.errors:
            await asyncio.sleep(0.2)
    raise AssertionError("durable() never returned after the restart")


async def test_every_session_reconnects_after_a_restart_and_durability_resumes(pg_crashable: PgCluster) -> None:
    server = pg_crashable.new_database()
    store = Store.open(server)
    try:
        writer = store.writer()
        assert queue(store, [sms(1)]) == 1
        await store.durable()
        await restart(pg_crashable)

        with pytest.raises(psycopg.OperationalError):  # the statement that met the break fails, as before
            queue(store, [sms(2)])
        with pytest.raises(psycopg.OperationalError):
            await writer.commit_step(None, [], [(sms(3), None)], START)
        assert await durable_again(store, 4) > 1  # the first commits after it are fenced off, not vouched for
        assert (await writer.commit_step(None, [], [(sms(5), None)], START))[0] == 1  # the step writer's session too
        await store.durable()
        assert store._db.execute("SHOW synchronous_commit").fetchone()[0] == "off"  # set up as the first
        assert store._sync.synchronous_commit == "on"
    finally:
        store.close()
    keys = [k for (k,) in rows(server, "SELECT key FROM outbox ORDER BY id")]
    assert keys[0] == sms(1).key and sms(2).key not in keys and sms(3).key not in keys and sms(5).key in keys
    assert len(keys) == len(set(keys))


async def test_a_commit_the_crash_lost_is_never_called_durable(pg_crashable: PgCluster) -> None:
    """The worker's flush is held (its row locked) while a commit sits in the WAL buffers (the
    WAL writer waits 10 s); the server crashes and loses it. `durable()` raises for it, even once
    the worker flushes again on a new session; what is committed later is durable."""
    pg = pg_crashable
    server = pg.new_database()
    store = Store.open(server)
    try:
        queue(store, [sms(1)])
        await store.durable()
        holder = psycopg.connect(server.url)
        holder.execute("SELECT * FROM wal_flushes FOR UPDATE")
        queue(store, [sms(2)])  # committed, not flushed
        waiting = asyncio.create_task(store.durable())
        await asyncio.sleep(0.3)
        assert not waiting.done()
        pg.crash()
        holder.close()
        with pytest.raises(psycopg.OperationalError, match="may have been lost"):
            await waiting
        await asyncio.to_thread(pg.start)
        with pytest.raises(psycopg.OperationalError):
            await store.durable()  # nothing committed since: still the lost commit's
        await durable_again(store, 3)
    finally:
        store.close()
    keys = {k for (k,) in rows(server, "SELECT key FROM outbox")}
    assert sms(1).key in keys and sms(2).key not in keys, "the crash was to lose the unflushed commit"


async def test_the_daemon_catches_up_after_a_restart_with_each_sms_sent_once(
    tmp_path: Path, pg_crashable: PgCluster, twilio: TwilioLab
) -> None:
    """An outage is open and its SMS queued when PostgreSQL restarts; a second DSLAM dies right
    after. Its step is refused, kept, written at the retry (/health: failing, then ok), and the
    outbox, whose first waves meet the restart, sends every SMS of both outages once."""
    server = pg_crashable.new_database()
    isp = build_sample_isp(tmp_path, base="127.6.42")
    write_config(tmp_path, {"sms": twilio_section(tmp_path, twilio)}, rules=FAST_RULES, state=server.url, state_file=None)
    config = load_config(isp.config)
    first, second = dslam_with_sms_lines(config), dslam_with_sms_lines(config, skip=1)
    every = {d: sorted(i for i, line in config.topology.lines.items() if line.device == d) for d in (first[0], second[0])}
    phones = {config.topology.lines[i].phone for i in [*first[1], *second[1]]}
    clock = Clock()
    daemon = Daemon(config, clock=clock)
    try:
        await daemon.pipeline.ingest([s for d, lines in every.items() for s in device_up(d, lines, START)])
        clock.now = START + 20
        await daemon.pipeline.ingest(device_down(first[0], clock.now))
        for offset in range(21, 28):  # past the 3 s an area's outage SMS is held (notices/plan.py merge_hold)
            clock.now = START + offset
            await daemon.pipeline.tick()
        assert daemon.store.depth("sms") == len(first[1])
        await restart(pg_crashable)

        await daemon.pipeline.ingest(device_down(second[0], clock.now))
        assert daemon.unwritten is not None  # /health says failing
        for offset in range(28, 28 + int(WRITE_RETRY) + 8):
            clock.now = START + offset
            await daemon.pipeline.tick()
        assert daemon.unwritten is None  # written at the retry: /health is ok again

        outbox = Outbox(daemon.store, build_notifiers(config), {c: FAST for c in daemon.pipeline.channels}, clock=clock)
        stop = asyncio.Event()
        runner = asyncio.create_task(deliver(outbox, stop))
        async with asyncio.timeout(40):
            while rows(server, "SELECT count(*) FROM outbox WHERE status != 'sent'") != [(0,)]:
                await asyncio.sleep(0.1)
        stop.set()
        await outbox.stop(timeout=2.0)
        await runner
        incidents = daemon.open_incidents()
    finally:
        daemon.store.close()

    assert Counter(m.to for m in twilio.messages) == Counter(phones)  # every outage SMS, once
    assert sorted(str(i.root) for i in incidents) == sorted(f"device:{d}" for d in every)
    assert sorted(rows(server, "SELECT tracking, phase FROM incidents")) == sorted(
        (i.tracking, Phase.OPEN.value) for i in incidents
    )
    sent = rows(server, "SELECT key, status, peer_ref FROM outbox WHERE channel = 'sms'")
    assert len(sent) == len(phones) and {s for _, s, _ in sent} == {"sent"}
    assert sorted(str(r) for *_, r in sent) == sorted(m.sid for m in twilio.messages)


async def test_a_notifier_worker_survives_a_restart_and_sends_nothing_twice(pg_crashable: PgCluster, twilio: TwilioLab) -> None:
    """A worker (`--role notifier`: `deliver` of an Outbox with a lease) is halfway through 60
    SMS when PostgreSQL restarts: its sends in flight lose their marks, its lease may lapse; it
    enlists anew, the items it had claimed are reconciled with Twilio, and each SMS goes once."""
    server = pg_crashable.new_database()
    store = Store.open(server)
    items = [sms(i) for i in range(60)]
    assert queue(store, items) == 60
    twilio.delay = 0.05
    policy = ChannelPolicy(concurrency=4, rate=40.0, base_backoff=0.05, max_backoff=0.5, settle=0.1)
    notifier = TwilioSms(
        twilio.account_sid, Secret(twilio.auth_token, "env:TWILIO_AUTH_TOKEN"), "+908501234567", twilio.base_url, timeout=2.0
    )
    outbox = Outbox(store, {"sms": notifier}, {"sms": policy}, lease_term=1.0)
    stop = asyncio.Event()
    runner = asyncio.create_task(deliver(outbox, stop))
    try:
        async with asyncio.timeout(50):
            while len(twilio.messages) < 20:
                await asyncio.sleep(0.02)
            await restart(pg_crashable)
            at_restart = len(twilio.messages)
            while rows(server, "SELECT count(*) FROM outbox WHERE status != 'sent'") != [(0,)]:
                await asyncio.sleep(0.1)
        stop.set()
        await outbox.stop(timeout=2.0)
        await runner
    finally:
        store.close()
    assert at_restart < 60  # the restart landed during the delivery
    assert Counter(m.body for m in twilio.messages) == Counter(n.body for n in items)  # exactly once each
    workers = rows(server, "SELECT count(DISTINCT claimed_by) FROM outbox")
    assert workers[0][0] >= 2  # the worker enlisted anew after the restart


TERM = 4.0


async def test_a_lease_renewed_before_a_crash_is_not_sent_under_and_lapses_while_the_server_is_down(
    pg_crashable: PgCluster,
) -> None:
    """A renewal committed but not flushed when the server crashes may be lost: the worker holds
    its lease no more by its own clock, and once the server is back, past the last renewal that
    survived, the lease is gone (LeaseLost): the worker enlists anew."""
    pg = pg_crashable
    server = pg.new_database()
    store = Store.open(server)
    try:
        store.enlist(term=TERM)
        await store.durable()
        holder = psycopg.connect(server.url)
        holder.execute("SELECT * FROM wal_flushes FOR UPDATE")  # the worker's flush waits
        renewed = time.monotonic()
        store.reclaim(START)  # renewed, not flushed
        assert store.lease_holds()
        pg.crash()
        holder.close()
        async with asyncio.timeout(10):
            while store.lease_holds():  # the flush fails: the renewal may be lost
                await asyncio.sleep(0.05)
        assert time.monotonic() < renewed + TERM  # by its own clock it held: the fence ended it
        await asyncio.to_thread(pg.start)
        await asyncio.sleep(TERM + 0.5)  # past the term of the lease as the server kept it
        with pytest.raises(LeaseLost):  # on a new session (the worker's epoch moved on: the broken one is not used)
            store.reclaim(START)
        assert not store.lease_holds()
        store.enlist(term=TERM)  # a new worker, on the new session
        store.reclaim(START)
        assert store.lease_holds()
    finally:
        store.close()


def test_a_session_over_a_link_gone_silent_fails_within_seconds(pg_link: Link, pg_database: StateServer) -> None:
    """Every session carries libpq's keepalives and TCP_USER_TIMEOUT (monitord/pgstore.py
    CLIENT_KEEPALIVES): over a link that drops every packet, a statement fails in about ten
    seconds instead of waiting out TCP's retransmissions (about fifteen minutes, which held a stop
    that waits for the roll-up writer's thread). The store runs in the link's network namespace
    and reaches PostgreSQL over TCP there: libpq ignores these settings on a Unix socket."""
    url = f"postgresql://postgres@127.0.0.1:{pg_link.hop}/{pg_database.url.rpartition('/')[2]}"
    command = ["ip", "netns", "exec", pg_link.namespace, sys.executable, "-c", SILENT_LINK_CLIENT, url]
    client = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert client.stdout is not None and client.stdout.readline().strip() == "ready"
        pg_link.cut()
        said, _ = client.communicate("cut\n", timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError("a statement over the silent link still hung after 60 s") from None
    finally:
        client.kill()
        client.wait()
    assert said.startswith("failed after"), said
    assert float(said.split()[2]) < 25, said
