"""What the Store (monitord/store.py) asks of a database engine, either SQLite's or PostgreSQL's
(monitord/pgstore.py), and how a failure of either is told to the operator: apart from both, so
that the store loads PostgreSQL's module only where the state is there."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol


class StoreError(Exception):
    """The state cannot be used (e.g. written by a newer monitord); the message names the file
    or the database (never its password) and what to do, in one line."""

    @classmethod
    def of(cls, where: object, error: Exception) -> StoreError:
        """What a database error at start-up means for the operator (never the data it was reading)."""
        if isinstance(error, sqlite3.Error):
            code = (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF
            what = SQLITE_FAULTS.get(code)
            if what is not None:
                return cls(f"{where}: {what.format(folder=Path(str(where)).parent)}")
        sqlstate = getattr(error, "sqlstate", None)  # psycopg's errors carry one
        if sqlstate in _PG_FAULTS:
            return cls(f"{where}: {_PG_FAULTS[sqlstate]} ({one_line(error)})")
        return cls(f"{where}: {one_line(error)}")


def one_line(error: Exception) -> str:
    """An error's message on one line, without PostgreSQL's DETAIL, which quotes the row (a
    customer's phone number in an outbox key): only the primary message, as SQLite gives."""
    primary = getattr(getattr(error, "diag", None), "message_primary", None)
    return " ".join((primary or str(error)).split())


START_AFRESH = (
    "restore it from a backup, or move it aside to start with no saved state (open incidents and queued messages are then lost)"
)
SQLITE_FAULTS = {
    26: f"is not a SQLite database; {START_AFRESH}",  # SQLITE_NOTADB
    11: f"is damaged (corrupted pages); {START_AFRESH}",  # SQLITE_CORRUPT
    13: "the disk is full; free space on the file system holding {folder}",  # SQLITE_FULL
    10: "disk I/O error (full or failing disk?); free space on or repair the file system holding {folder}",  # SQLITE_IOERR
    14: "cannot be opened; {folder} must be a folder monitord can write in (systemd: StateDirectory=)",  # SQLITE_CANTOPEN
    8: "is read-only; monitord must be able to write it and {folder} (for its -wal and -shm files)",  # SQLITE_READONLY
    3: "permission denied; monitord must be able to write it and {folder}",  # SQLITE_PERM
    5: "is locked by another process; is another monitord running with this state_file?",  # SQLITE_BUSY
}
_PG_FAULTS = {  # by SQLSTATE
    "3D000": "the database does not exist; create it, owned by monitord's role (createdb -O ROLE NAME)",
    "28P01": "the server refused the password; check state_password (or PGPASSFILE) and the role",
    "28000": "the server refused the login; allow monitord's role from this host in pg_hba.conf",
    "42501": "permission denied; monitord's role must be allowed to create its tables in the database and own them",
    "53100": "the server's disk is full; free space where PostgreSQL keeps its data",
    "25006": "the server is read-only (a standby?); point state at the primary",
}


def refuse_newer(version: int, supported: int) -> None:
    if version > supported:
        raise StoreError(
            f"schema version {version} is newer than this monitord supports "
            f"({supported}); upgrade monitord or restore a matching backup"
        )


class Cursor(Protocol):
    """What the Store reads from a statement, the same from either engine's cursor."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Database(Protocol):
    """A connection, either engine (the loop's, or the writer thread's): statements in the one
    text the Store writes. `epoch`: PgSync's when the session opened (SQLite's is always 0,
    monitord/pgsync.py). `errors`: what its engine raises (sqlite3's or psycopg's)."""

    epoch: int
    errors: tuple[type[Exception], ...]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        """Returns how many rows the statements changed in all."""
        ...

    def transaction(self) -> AbstractContextManager[Any]: ...

    def reopen(self) -> Database: ...

    def close(self) -> None: ...
