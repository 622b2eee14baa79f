"""Throw-away PostgreSQL 15 clusters on loopback, for the tests (tests/pg_fixtures.py) and
`monitord demo --cluster` (Debian's postgresql, which ./dev.sh installs: 15 on Debian 12).

PostgreSQL refuses to run as root: as root, initdb and pg_ctl run as the package's `postgres`
user, in a folder of /tmp handed to it. FAST skips fsync, which only matters when the machine
itself goes down; CRASHABLE's WAL writer waits 10 s, so that what is not flushed by a commit is
still unflushed when the server is killed.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import psycopg

from monitord.model import StateServer

PGBIN = max(
    Path("/usr/lib/postgresql").glob("*/bin"), key=lambda b: int(b.parent.name), default=Path("/usr/lib/postgresql/15/bin")
)
FAST = {"fsync": "off", "full_page_writes": "off", "shared_buffers": "32MB"}
CRASHABLE = {**FAST, "wal_writer_delay": "10s"}  # a process crash keeps what was written to the kernel: fsync does not matter
GUARDED_ROLE = "guarded"  # the one role that must give a password (scram-sha-256)
_databases = itertools.count()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(*command: str) -> list[str]:
    return (["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []) + list(command)


class PgCluster:
    """One cluster: initdb'd in a fresh folder, listening on 127.0.0.1 at a port the OS chose."""

    def __init__(self, settings: Mapping[str, str]) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="monitord-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.data, self.log, self.port = self.root / "data", self.root / "server.log", free_port()
        initdb = [str(PGBIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        subprocess.run(
            _as_postgres(*initdb, "--locale=C.UTF-8", "--no-sync", "--no-instructions"), check=True, capture_output=True
        )
        conf = {
            **settings,
            "port": str(self.port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.root}'",
        }
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as f:
            f.writelines(f"{key} = {value}\n" for key, value in conf.items())
        (self.data / "pg_hba.conf").write_text(
            f"local all all trust\nhost all {GUARDED_ROLE} 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 trust\n",
            encoding="utf-8",
        )

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres(str(PGBIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", *args),
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        self.ctl("start")

    def crash(self) -> None:
        """As a power cut looks to the server: no checkpoint, no flush (SIGQUIT)."""
        self.ctl("stop", "-m", "immediate")

    def admin(self, sql: str, database: str = "postgres") -> list[tuple[object, ...]]:
        with psycopg.connect(self.url(database), autocommit=True) as db:
            cursor = db.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def new_database(self) -> StateServer:
        name = f"monitord_{next(_databases)}"
        self.admin(f"CREATE DATABASE {name}")
        return StateServer(self.url(name))

    def destroy(self) -> None:
        try:
            self.crash()
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def running_cluster(settings: Mapping[str, str]) -> Iterator[PgCluster]:
    """A cluster started for the block, and stopped and removed after it."""
    cluster = PgCluster(settings)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
