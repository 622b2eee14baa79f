"""The NOC's look back (issue 13 item 4): a subscriber's incidents, an incident's subscribers and
a period's report, read from the store on a thread of their own; both engines."""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
import pytest_asyncio

from monitord.database import StoreError
from monitord.history import History, PastIncident, report_csv, touched_csv
from monitord.model import Device, Exchange, Incident, IncidentKind, Line, NodeRef, Phase, Region, StateServer, Topology
from monitord.pgstore import Postgres, migrate_postgres
from monitord.store import MIGRATIONS, PG_MIGRATIONS, Store, migrate
from tests.outbox_fixtures import store, version_before  # noqa: F401  (fixture)
from tests.test_store import NOW, incident

REGIONAL = "ARZ-2026-000123"  # tests.test_store's incident: exchange:sisli, lines s1 and s2
CPE = "ARZ-2026-000124"


def cpe(line: str = "s1", opened_at: float = NOW + 3600) -> Incident:
    return Incident(CPE, IncidentKind.CPE, NodeRef("line", line), Phase.OPEN, opened_at, opened_at, frozenset({line}), ())


@pytest_asyncio.fixture
async def history(store: Store) -> AsyncIterator[History]:  # noqa: F811  (fixture)
    reads = History(store.reader)
    yield reads
    reads.close()


async def test_a_line_lists_every_incident_that_touched_it_latest_first(store: Store, history: History) -> None:  # noqa: F811
    store.commit_step(None, [incident()], [], NOW)
    grown = replace(incident(), affected=frozenset({"s1", "s2", "s3"}), updated_at=NOW + 60)
    store.commit_step(None, [grown], [], NOW + 60)
    shrunk = replace(grown, affected=frozenset({"s1"}), phase=Phase.RESOLVED, resolved_at=NOW + 600)
    store.commit_step(None, [shrunk], [], NOW + 600)
    store.commit_step(None, [cpe()], [], NOW + 3600)

    regional = PastIncident(REGIONAL, "outage", "exchange:sisli", "resolved", NOW, NOW + 600, 3)
    assert await history.of_line("s1") == [PastIncident(CPE, "cpe", "line:s1", "open", NOW + 3600, None, 1), regional]
    assert await history.of_line("s3") == [regional]  # it left the incident, and was touched by it
    assert await history.of_line("s9") == []
    assert [p.tracking for p in await history.of_line("s1", limit=1)] == [CPE]
    assert regional.duration(NOW + 10_000) == 600 and (await history.of_line("s1"))[0].duration(NOW + 3660) == 60

    assert await history.touched(REGIONAL) == ["s1", "s2", "s3"]
    assert await history.touched("ARZ-2026-999999") is None
    assert [p.tracking for p in await history.opened(NOW, NOW + 3600)] == [REGIONAL]  # [since, until)
    assert [p.tracking for p in await history.opened(NOW, NOW + 3601)] == [REGIONAL, CPE]
    assert len(await history.opened(NOW, NOW + 3601, limit=1)) == 2  # one more than asked: the caller refuses

    assert store.prune(NOW, NOW, NOW + 601) == 1  # the regional incident ages out, and its lines with it
    assert await history.of_line("s3") == [] and await history.touched(REGIONAL) is None
    assert [p.tracking for p in await history.of_line("s1")] == [CPE]


async def test_a_step_rolled_back_indexes_nothing(store: Store, history: History) -> None:  # noqa: F811
    store.commit_step(None, [incident()], [], NOW)
    taken = replace(incident(), root=NodeRef("exchange", "kadikoy"))  # the same number, another incident
    with pytest.raises(StoreError, match="already belongs to another incident"):
        store.commit_step(None, [cpe("s7"), taken], [], NOW + 60)
    assert await history.of_line("s7") == []
    store.commit_step(None, [cpe("s7")], [], NOW + 120)  # written again: its line is indexed now
    assert [p.tracking for p in await history.of_line("s7")] == [CPE]


async def test_a_restart_indexes_the_lines_of_open_incidents_again_without_repeats(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    s = Store.open(path)
    s.commit_step(None, [incident()], [], NOW)
    s.close()
    with reopened(path) as (s, reads):
        s.commit_step(None, [replace(incident(), affected=frozenset({"s1", "s2", "s4"}))], [], NOW + 60)
        assert await reads.touched(REGIONAL) == ["s1", "s2", "s4"]
        assert (await reads.of_line("s1"))[0].affected == 3


@contextmanager
def reopened(where: Path | StateServer) -> Iterator[tuple[Store, History]]:
    """A store opened again, and its history."""
    s = Store.open(where)
    reads = History(s.reader)
    try:
        yield s, reads
    finally:
        reads.close()
        s.close()


INCIDENT_ROW = "INSERT INTO incidents VALUES ({}, 'outage', 'exchange:sisli', 'open', {}, {}, NULL, {}, '[]')"


async def test_incidents_stored_before_the_index_are_indexed_by_the_migration(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db, target=version_before(MIGRATIONS, "CREATE TABLE incident_lines"))
    db.execute(INCIDENT_ROW.format("?", "?", "?", "?"), (REGIONAL, NOW, NOW, '["s1", "s2"]'))
    db.close()
    with reopened(path) as (_, reads):
        assert await reads.touched(REGIONAL) == ["s1", "s2"]
        assert [p.tracking for p in await reads.of_line("s2")] == [REGIONAL]


async def test_postgresql_indexes_the_incidents_stored_before_too(pg_database: StateServer) -> None:
    connection: psycopg.Connection[Any] = Postgres.connect(pg_database)
    migrate_postgres(connection, PG_MIGRATIONS, target=version_before(PG_MIGRATIONS, "CREATE TABLE incident_lines"))
    with connection.transaction():
        connection.execute(INCIDENT_ROW.format("$1", "$2", "$3", "$4"), (REGIONAL, NOW, NOW, '["s1", "s2"]'))
    connection.close()
    with reopened(pg_database) as (_, reads):
        assert await reads.touched(REGIONAL) == ["s1", "s2"]


def small_topology() -> Topology:
    regions = {"istanbul": Region("istanbul", "İstanbul")}
    exchanges = {"sisli": Exchange("sisli", "Şişli", "istanbul")}
    devices = {"d1": Device("d1", "dslam", "sisli", "127.0.0.1", None, cabinet="k7")}
    lines = {"s1": Line("s1", "Ayşe Yılmaz, Şişli", "d1", phone="+905321234567", port=3)}
    return Topology(regions, exchanges, devices, lines)


def test_the_csv_exports_read_in_a_spreadsheet() -> None:
    topology = small_topology()
    rows = list(csv.reader(io.StringIO(touched_csv(["s1", "gone"], topology))))
    assert rows == [
        ["subscriber", "name", "phone", "device", "port", "cabinet", "exchange", "region"],
        ["s1", "Ayşe Yılmaz, Şişli", "+90532***4567", "d1", "3", "k7", "sisli", "istanbul"],  # the comma quoted, not split
        ["gone", "", "", "", "", "", "", ""],
    ]
    past = [
        PastIncident(REGIONAL, "outage", "exchange:sisli", "resolved", NOW, NOW + 5400, 2),
        PastIncident(CPE, "cpe", "cabinet:k7", "open", NOW + 60, None, 1),
        PastIncident("ARZ-2026-000125", "outage", "device:removed", "resolved", NOW, NOW + 60, 4),
    ]
    text = report_csv(past, topology, "Europe/Istanbul", NOW + 120)
    assert text.endswith("\r\n") and "\r\n" in text.rstrip("\r\n")
    assert list(csv.reader(io.StringIO(text))) == [
        ["tracking", "kind", "phase", "root", "region", "opened", "resolved", "duration_s", "lines"],
        [
            REGIONAL,
            "outage",
            "resolved",
            "exchange:sisli",
            "istanbul",
            "2026-05-28T23:26:40+03:00",
            "2026-05-29T00:56:40+03:00",
            "5400",
            "2",
        ],
        [CPE, "cpe", "open", "cabinet:k7", "istanbul", "2026-05-28T23:27:40+03:00", "", "60", "1"],
        [
            "ARZ-2026-000125",
            "outage",
            "resolved",
            "device:removed",
            "",
            "2026-05-28T23:26:40+03:00",
            "2026-05-28T23:27:40+03:00",
            "60",
            "4",
        ],
    ]
