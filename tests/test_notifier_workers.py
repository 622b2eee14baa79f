"""Several notifier workers on one PostgreSQL outbox (issue 15), against a real local cluster
(tests/pg_fixtures.py) and the local Twilio: SIGKILL them again and again during a 1,000-SMS
delivery; nothing lost, nothing sent twice, the shared rate held."""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lab.isp import build_sample_isp, write_config
from lab.twilio import TwilioLab
from monitord.cli import main as cli
from monitord.database import StoreError
from monitord.model import StateServer
from monitord.pacing import Grant, Waves, grant
from monitord.store import LeaseLost, Store
from tests.outbox_fixtures import queue, sms, twilio, twilio_section  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent
CHILD = Path(__file__).with_name("notifier_worker_child.py")
RATE = 100.0  # SMS per second, for all the workers together
WORKERS = 3
KILLS = 12
NOW = 1_790_000_000.0


def most_over_rate(times: list[float], rate: float) -> float:
    """The largest count of sends in any window [t_i, t_j] less `rate` times its length: what
    a bucket of `rate` must have held at once to allow them (at most its burst)."""
    worst, lowest = 0.0, float("inf")
    for j, t in enumerate(sorted(times)):
        lowest = min(lowest, j - 1 - rate * t)  # the window may start at this send
        worst = max(worst, j - rate * t - lowest)
    return worst


def test_most_over_rate_finds_a_burst_inside_a_steady_stream() -> None:
    steady = [i / 10 for i in range(100)]  # 10/s
    assert most_over_rate(steady, 10.0) == pytest.approx(1.0)
    assert most_over_rate([*steady, 5.0, 5.0, 5.0, 5.0], 10.0) == pytest.approx(5.0)


@dataclass
class Worker:
    child: asyncio.subprocess.Process
    ready: asyncio.Task[bytes]  # its first line: once read, it delivers


async def spawn(server: StateServer, lab: TwilioLab) -> Worker:
    env = {
        **os.environ,
        "TWILIO_AUTH_TOKEN": lab.auth_token,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), server.url, lab.base_url, lab.account_sid, str(RATE), stdout=asyncio.subprocess.PIPE, env=env
    )
    assert child.stdout is not None
    return Worker(child, asyncio.create_task(child.stdout.readline()))


async def test_sigkilled_workers_lose_nothing_send_nothing_twice_and_hold_the_shared_rate(
    pg_database: StateServer, twilio: TwilioLab
) -> None:
    store = Store.open(pg_database)
    items = [sms(i) for i in range(1000)]
    assert queue(store, items) == 1000
    store.close()
    twilio.delay = 0.02  # accepted first, answered later: a kill often lands in between
    rng = random.Random(20261203)
    kills = 0
    async with asyncio.timeout(120):
        workers = [await spawn(pg_database, twilio) for _ in range(WORKERS)]
        await asyncio.wait([w.ready for w in workers])
        while kills < KILLS:  # a random worker that runs, killed and started again, every 0.1-0.5 s
            await asyncio.sleep(rng.uniform(0.1, 0.5))
            running = [i for i, w in enumerate(workers) if w.ready.done()]
            if not running:
                continue
            i = rng.choice(running)
            assert workers[i].child.returncode is None  # still delivering
            workers[i].child.kill()
            assert await workers[i].child.wait() == -9
            kills += 1
            workers[i] = await spawn(pg_database, twilio)
        delivered_at_last_kill = len(twilio.messages)
        for worker in workers:
            assert await worker.child.wait() == 0

    assert kills == KILLS and delivered_at_last_kill < 1000  # every kill landed during the delivery
    assert Counter(m.body for m in twilio.messages) == Counter(n.body for n in items)  # exactly once each
    store = Store.open(pg_database)
    try:
        assert store.counts() == {("sms", "sent"): 1000}
        sent = store.items()
        assert sorted(i.peer_ref or "" for i in sent) == sorted(m.sid for m in twilio.messages)
        assert any(i.attempts > 1 for i in sent)  # a killed worker's items were taken over and reconciled
        with store_connection(pg_database) as db:
            claimants = db.execute("SELECT count(DISTINCT claimed_by) FROM outbox").fetchone()
        assert claimants is not None and claimants[0] > WORKERS  # the restarted workers delivered too
    finally:
        store.close()
    burst = Waves.start(RATE, 0.3, 0.0).burst
    slack = RATE * 0.3  # a send leaves its worker a little after its token was taken: up to 0.3 s later here
    assert most_over_rate([m.at for m in twilio.messages], RATE) <= burst + slack


def store_connection(server: StateServer) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(server.url)


def test_grant_takes_whole_tokens_never_lends_and_says_when_the_next_comes() -> None:
    assert grant(0.0, 0.0, 1000.0, 50, rate=10.0, burst=5.0) == Grant(5, 0.0, 0.1)  # full after a long idle, capped
    assert grant(2.5, 10.0, 10.0, 2, rate=10.0, burst=5.0) == Grant(2, 0.5, 0.0)  # enough: no wait
    assert grant(0.5, 10.0, 9.0, 3, rate=10.0, burst=5.0) == Grant(0, 0.5, 0.05)  # a clock read earlier adds nothing


def test_a_worker_whose_lease_expired_claims_and_marks_nothing_after_the_takeover(pg_database: StateServer) -> None:
    first, second = Store.open(pg_database), Store.open(pg_database)
    try:
        queue(first, [sms(i) for i in range(6)], now=NOW)
        first.enlist(term=1.0)
        second.enlist(term=30.0)
        mine, wait = first.claim_due("sms", NOW + 1, 4, rate=1000.0, burst=100.0)
        assert len(mine) == 4 and wait == 0.0 and first.lease_holds()
        theirs, _ = second.claim_due("sms", NOW + 1, 10, rate=1000.0, burst=100.0)
        assert {i.id for i in theirs}.isdisjoint(i.id for i in mine) and len(theirs) == 2
        assert second.reclaim(NOW + 5) == 0  # the first worker's lease still runs
        time.sleep(1.2)
        assert not first.lease_holds()
        assert second.reclaim(NOW + 5) == 4
        first.mark_sent_wave([(i.id, f"SM{i.id}", NOW + 2) for i in mine])  # too late: not its items any more
        first.mark_dead(mine[0].id, "too late")
        assert {i.status for i in second.items() if i.id in {m.id for m in mine}} == {"pending"}
        with pytest.raises(LeaseLost):
            first.claim_due("sms", NOW + 10, 10, rate=1000.0, burst=100.0)
        with pytest.raises(LeaseLost):
            first.reclaim(NOW + 5)
        again, _ = second.claim_due("sms", NOW + 10, 10, rate=1000.0, burst=100.0)
        assert sorted(i.id for i in again) == sorted(i.id for i in mine) and all(i.attempts == 1 for i in again)
        second.leave(NOW + 20)
        assert first.counts() == {("sms", "pending"): 6}
    finally:
        first.close()
        second.close()


def test_the_workers_share_one_bucket_per_channel(pg_database: StateServer) -> None:
    stores = [Store.open(pg_database) for _ in range(3)]
    try:
        queue(stores[0], [sms(i) for i in range(100)], now=NOW)
        for store in stores:
            store.enlist(term=30.0)
        claimed = [store.claim_due("sms", NOW + 1, 100, rate=1.0, burst=5.0) for store in stores]
        assert [len(items) for items, _ in claimed] == [5, 0, 0]  # a slow refill: the first took the burst
        assert all(0.0 < wait <= 1.0 for _, wait in claimed[1:])
    finally:
        for store in stores:
            store.close()


def test_sqlite_keeps_one_outbox_process(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "state.db")
    try:
        with pytest.raises(StoreError, match="several outbox workers need the state in PostgreSQL"):
            store.enlist(term=10.0)
    finally:
        store.close()


def test_the_notifier_role_refuses_a_state_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    isp = build_sample_isp(tmp_path, base="127.6.42")
    assert cli(["run", "--role", "notifier", str(isp.config)]) == 2
    err = capsys.readouterr().err
    assert "--role notifier" in err and "state: postgresql://" in err


async def test_monitord_run_role_notifier_delivers_the_outbox_and_hands_back_its_lease_on_sigterm(
    tmp_path: Path, pg_database: StateServer, twilio: TwilioLab
) -> None:
    isp = build_sample_isp(tmp_path, base="127.6.43")
    sms_section = twilio_section(tmp_path, twilio)
    write_config(tmp_path, {"sms": sms_section}, state=pg_database.url, state_file=None)
    store = Store.open(pg_database)
    items = [sms(i) for i in range(20)]
    queue(store, items)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitord.cli",
        "run",
        "--role",
        "notifier",
        str(isp.config),
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(30):
            while len(twilio.messages) < 20:
                await asyncio.sleep(0.05)
            queue(store, [sms(20)])  # queued by another process: no wake-up, seen within its idle poll
            while len(twilio.messages) < 21:
                await asyncio.sleep(0.05)
            while store.depth():
                await asyncio.sleep(0.05)
        worker.terminate()
        assert await worker.wait() == 0
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
    assert sorted(m.body for m in twilio.messages) == sorted(n.body for n in [*items, sms(20)])
    assert store.counts() == {("sms", "sent"): 21}
    with store_connection(pg_database) as db:
        assert db.execute("SELECT count(*) FROM outbox_workers").fetchone() == (0,)
    store.close()
