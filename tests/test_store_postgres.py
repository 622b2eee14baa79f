"""The PostgreSQL store (issue 15): what differs from SQLite's, against real local clusters
(tests/pg_fixtures.py). What the engines share, every store and outbox test, runs against both
through the `store` fixture (tests/outbox_fixtures.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
import pytest

from lab.isp import build_sample_isp, write_config
from lab.twilio import TwilioLab
from lab.world import FAST_RULES
from monitord.config import load_config
from monitord.daemon import Daemon
from monitord.database import StoreError
from monitord.model import Phase, Secret, StateServer
from monitord.pgstore import migrate_postgres, postgres_insert, postgres_session, postgres_sql
from monitord.store import _SUPERSEDE, PG_MIGRATIONS, Store
from tests.outbox_fixtures import queue, sms, twilio, twilio_section, version_before  # noqa: F401  (fixture)
from tests.pg_fixtures import GUARDED_ROLE, PgCluster, free_port
from tests.test_faults_state import START, Clock, deliver, device_down, device_up, dslam_with_sms_lines


def test_statements_are_written_once_and_translated_for_postgresql() -> None:
    translated = postgres_sql(_SUPERSEDE)
    assert "INDEXED BY" in _SUPERSEDE and "INDEXED BY" not in translated
    assert "?" not in translated and "$1" in translated and "$2" in translated and _SUPERSEDE.count("?") == 2
    assert (
        postgres_sql("SELECT greatest(?, 1) WHERE x LIKE 'a%' AND y = ?") == "SELECT greatest($1, 1) WHERE x LIKE 'a%' AND y = $2"
    )
    assert postgres_insert("INSERT INTO t VALUES (?, ?, FALSE) ON CONFLICT DO NOTHING", 2) == (
        "INSERT INTO t VALUES ($1, $2, FALSE), ($3, $4, FALSE) ON CONFLICT DO NOTHING"
    )
    assert postgres_insert("UPDATE t SET a = ?", 2) is None


def test_superseding_looks_up_each_new_notice_in_outbox_waiting_whatever_the_statistics(pg_database: StateServer) -> None:
    """Left to its statistics (none yet, or taken while the outbox was small), PostgreSQL's
    planner walked the channel's every waiting item per new notice: 9 s a step at 30,000."""
    store = Store.open(pg_database)
    try:
        for step in range(3):
            queue(store, [sms(i, to=f"+90532{step}{i:06d}") for i in range(2000)], now=1_780_000_000.0 + step)
        for statistics in ("none", "analyzed"):
            if statistics == "analyzed":
                store._db.execute("ANALYZE outbox")
            plan = "\n".join(r[0] for r in store._db.execute("EXPLAIN " + store._db.texts[_SUPERSEDE], (4000, 4000)))
            older = plan[plan.index("Subquery Scan on older") :]
            assert "Index Scan using outbox_waiting" in older and "Seq Scan" not in plan, plan
            assert "outbox_backlog" not in plan and "outbox_due" not in plan, plan
    finally:
        store.close()


def test_the_sessions_commit_without_waiting_and_the_worker_flushes(pg_database: StateServer) -> None:
    store = Store.open(pg_database)
    try:
        assert store._db.execute("SHOW synchronous_commit").fetchone()[0] == "off"
        assert store._sync.synchronous_commit == "on"
    finally:
        store.close()


def test_a_database_from_a_newer_monitord_is_refused(pg_database: StateServer) -> None:
    Store.open(pg_database).close()
    with psycopg.connect(pg_database.url, autocommit=True) as db:
        db.execute("UPDATE schema_version SET version = %s", (len(PG_MIGRATIONS) + 1,))
    newer = rf"schema version {len(PG_MIGRATIONS) + 1} is newer than this monitord supports \({len(PG_MIGRATIONS)}\)"
    with pytest.raises(StoreError, match=newer) as refused:
        Store.open(pg_database)
    assert str(refused.value).startswith(f"{pg_database.url}: ")


def test_opening_again_keeps_the_rows_and_the_schema_version(pg_database: StateServer) -> None:
    store = Store.open(pg_database)
    queue(store, [sms(1)])
    store.close()
    store = Store.open(pg_database)
    try:
        assert [i.notification for i in store.items()] == [sms(1)]
    finally:
        store.close()
    with psycopg.connect(pg_database.url) as db:
        assert db.execute("SELECT version FROM schema_version").fetchone() == (len(PG_MIGRATIONS),)


def test_a_database_of_the_previous_schema_gains_the_leaders_address_and_keeps_its_epoch(pg_database: StateServer) -> None:
    db = postgres_session(pg_database)
    try:
        migrate_postgres(db, PG_MIGRATIONS, target=version_before(PG_MIGRATIONS, "ADD COLUMN advertise"))
        db.execute("UPDATE correlator_leader SET epoch = 4, holder = 'noc-1/77'")
    finally:
        db.close()
    Store.open(pg_database).close()
    with psycopg.connect(pg_database.url) as db:
        assert db.execute("SELECT version FROM schema_version").fetchone() == (len(PG_MIGRATIONS),)
        assert db.execute("SELECT epoch, holder, advertise FROM correlator_leader").fetchall() == [(4, "noc-1/77", None)]


def test_the_password_opens_the_store_and_is_never_in_an_error_or_a_log(pg: PgCluster, caplog: pytest.LogCaptureFixture) -> None:
    right, wrong = "Right-Horse-4417", "Wrong-Staple-9023"
    pg.admin(f"DROP ROLE IF EXISTS {GUARDED_ROLE}")
    pg.admin(f"CREATE ROLE {GUARDED_ROLE} LOGIN PASSWORD '{right}'")
    database = pg.new_database().url.rpartition("/")[2]
    pg.admin(f"ALTER DATABASE {database} OWNER TO {GUARDED_ROLE}")
    url = pg.url(database, user=GUARDED_ROLE)
    closed = f"postgresql://{GUARDED_ROLE}@127.0.0.1:{free_port()}/{database}"
    errors = []
    with caplog.at_level(logging.DEBUG):
        for where in (StateServer(url, Secret(wrong, "env:PG")), StateServer(closed, Secret(wrong, "env:PG")), StateServer(url)):
            with pytest.raises(StoreError) as refused:
                Store.open(where)
            errors.append(str(refused.value))
    assert errors[0].startswith(f"{url}: cannot connect: ") and "password authentication failed" in errors[0]
    assert errors[1].startswith(f"{closed}: cannot connect: ") and "refused" in errors[1]
    assert "\n" not in "".join(errors)
    for leak in (right, wrong):
        assert all(leak not in text for text in [*errors, caplog.text, repr(StateServer(url, Secret(leak, "env:PG")))])

    store = Store.open(StateServer(url, Secret(right, "env:PG")))
    try:
        assert queue(store, [sms(1)]) == 1 and store.depth() == 1
    finally:
        store.close()
    pg.admin(f"DROP DATABASE {database} WITH (FORCE)")
    pg.admin(f"DROP ROLE {GUARDED_ROLE}")


async def test_what_durable_returned_for_survives_a_crash_of_the_server(pg_crashable: PgCluster) -> None:
    """The loop's commits do not wait for the WAL flush (the WAL writer of this cluster waits
    10 s); `durable()` flushes them all, so a crash right after it (no checkpoint, no flush)
    loses none. Once the server is gone every statement raises an error the daemon catches."""
    pg = pg_crashable
    server = pg.new_database()
    store = Store.open(server)
    items = [sms(i) for i in range(20)]
    for item in items:
        queue(store, [item])
    with psycopg.connect(server.url, autocommit=True) as db:
        written = db.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0]
        await store.durable()
        flushed = db.execute("SELECT pg_current_wal_flush_lsn() >= %s::pg_lsn", (written,)).fetchone()[0]
    assert flushed, "durable() returned before the WAL holding the commits was flushed"
    pg.crash()
    with pytest.raises(psycopg.Error):
        queue(store, [sms(99)])
    store.close()

    pg.start()
    store = Store.open(server)
    try:
        assert [i.notification for i in store.items()] == items
    finally:
        store.close()
    assert "database system was interrupted" in pg.log.read_text()


async def test_the_daemon_keeps_an_outage_and_its_notices_in_postgresql(
    tmp_path: Path, pg_database: StateServer, twilio: TwilioLab
) -> None:
    """`state: postgresql://...` in the config: a DSLAM dies, the daemon opens one incident and
    texts its subscribers through the lab's Twilio; the incident, the engine's rows and the sent
    SMS are in PostgreSQL, and a restart resumes from there."""
    isp = build_sample_isp(tmp_path, base="127.6.41")
    sms_section = twilio_section(tmp_path, twilio)
    write_config(tmp_path, {"sms": sms_section}, rules=FAST_RULES, state=pg_database.url, state_file=None)
    config = load_config(isp.config)
    assert config.state == pg_database and config.state_file is None
    dslam, lines = dslam_with_sms_lines(config)
    all_lines = sorted(i for i, line in config.topology.lines.items() if line.device == dslam)
    phones = {config.topology.lines[i].phone for i in lines}
    clock = Clock()
    daemon = Daemon(config, clock=clock)
    try:
        await daemon.pipeline.ingest(device_up(dslam, all_lines, START))
        clock.now = START + 20
        await daemon.pipeline.ingest(device_down(dslam, clock.now))
        for offset in range(21, 28):  # past the 3 s an area's outage SMS is held (notices/plan.py merge_hold)
            clock.now = START + offset
            await daemon.pipeline.tick()
        [incident] = daemon.open_incidents()
        await deliver(daemon, clock)
    finally:
        daemon.store.close()

    assert {m.to for m in twilio.messages} == phones and len(twilio.messages) == len(phones)
    with psycopg.connect(pg_database.url) as db:
        assert db.execute("SELECT tracking, phase, root FROM incidents").fetchall() == [
            (incident.tracking, Phase.OPEN.value, f"device:{dslam}")
        ]
        sent = db.execute("SELECT recipient, status, peer_ref FROM outbox WHERE channel = 'sms'").fetchall()
        assert db.execute("SELECT count(*) FROM engine_targets").fetchone()[0] >= len(all_lines)
    assert {to for to, status, _ in sent if status == "sent"} == phones
    assert {ref for *_, ref in sent} == {m.sid for m in twilio.messages}

    daemon = Daemon(config, clock=clock)
    try:
        assert [i.tracking for i in daemon.open_incidents()] == [incident.tracking]
    finally:
        daemon.store.close()
