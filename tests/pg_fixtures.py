"""The store tests' throw-away PostgreSQL 15 clusters (lab/postgres.py): one per session, a fresh
database per test, and a crashable cluster of its own for the crash tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.postgres import CRASHABLE, FAST, GUARDED_ROLE, PGBIN, PgCluster, free_port, running_cluster  # noqa: F401
from monitord.model import StateServer


@pytest.fixture(scope="session")
def pg() -> Iterator[PgCluster]:
    with running_cluster(FAST) as cluster:
        yield cluster


@pytest.fixture
def pg_database(pg: PgCluster) -> Iterator[StateServer]:
    """A fresh database of the session's cluster, dropped after the test."""
    server = pg.new_database()
    yield server
    pg.admin(f"DROP DATABASE {server.url.rpartition('/')[2]} WITH (FORCE)")


@pytest.fixture
def pg_crashable() -> Iterator[PgCluster]:
    with running_cluster(CRASHABLE) as cluster:
        yield cluster
