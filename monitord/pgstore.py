"""The state in PostgreSQL: its sessions, schema migrations and keepalives, apart from
monitord/store.py so that a daemon keeping its state in SQLite never loads psycopg (about 10 MB
of its memory, libpq and its TLS libraries included). Every statement is still the Store's."""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from monitord.database import Cursor, StoreError, one_line, refuse_newer
from monitord.model import StateServer
from monitord.pgsync import PgSync

# The server's TCP keepalives for each of monitord's sessions: a process whose machine or link
# went silent has its sessions ended, and their locks let go, within about ten seconds instead
# of the system's two hours (a takeover of the correlator's lead waits for the old leader's step
# in flight to end, monitord/leader.py). Ignored on a Unix socket.
SERVER_KEEPALIVES = (
    "SET tcp_keepalives_idle = 3",
    "SET tcp_keepalives_interval = 2",
    "SET tcp_keepalives_count = 3",
    "SET tcp_user_timeout = 10000",
)
# libpq's side of the same, for every session (ignored on a Unix socket): a statement in flight
# over a link that went silent fails within about ten seconds instead of waiting out TCP's
# fifteen minutes of retransmissions (a poller's batch, the leader's lock check, the roll-up
# writer that a stop waits for), and an idle session finds out by its keepalives.
CLIENT_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 3,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10000,
}
PG_MIGRATION_LOCK = 0x6D6F6E69  # pg_advisory_xact_lock key: one monitord process migrates at a time


def _numbered(sql: str) -> str:
    """PostgreSQL's own numbered placeholders ($1, $2, ...), sent as they are (psycopg's RawCursor:
    nothing to parse on each call)."""
    numbers = itertools.count(1)
    return re.sub(r"\?", lambda _: f"${next(numbers)}", re.sub(r"\s+INDEXED BY \w+", "", sql))


@functools.cache
def postgres_sql(sql: str) -> str:
    """A statement in SQLite's words (`?`, `INDEXED BY`) as PostgreSQL takes it."""
    return _numbered(sql)


@functools.cache
def postgres_insert(sql: str, rows: int) -> str | None:
    """An INSERT of `rows` rows in one statement, its VALUES row repeated; None: not an INSERT."""
    values = _VALUES.search(sql) if sql.startswith("INSERT") else None
    if values is None:
        return None
    return _numbered(f"{sql[: values.start(1)]}{', '.join([values[1]] * rows)}{sql[values.end(1) :]}")


_VALUES = re.compile(r"VALUES (\([^)]*\))")  # an INSERT's row of values
ROWS_PER_INSERT = 500


@contextmanager
def _plain_errors() -> Iterator[None]:
    """psycopg's errors as `one_line` says them, same class (and SQLSTATE): what the daemon logs
    and /health shows of a refused write quotes no row."""
    try:
        yield
    except psycopg.Error as error:
        raise type(error)(one_line(error)) from None


def migrate_postgres(db: psycopg.Connection[Any], migrations: Sequence[str], target: int | None = None) -> int:
    """Bring the schema up to `target` of `migrations` (all of them: None) in one transaction (PostgreSQL's DDL is transactional),
    one process at a time; return the old version. `db`: from `Postgres.connect` ($n placeholders). Writes even when there is nothing to do: a
    role that may not write is refused now, not at the first step."""
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock($1)", (PG_MIGRATION_LOCK,))
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL)")
        db.execute("INSERT INTO schema_version VALUES (1, 0) ON CONFLICT (id) DO NOTHING")
        row = db.execute("SELECT version FROM schema_version").fetchone()
        version = int(row[0]) if row else 0
        refuse_newer(version, len(migrations))
        target = len(migrations) if target is None else target
        for step in range(version, target):
            db.execute(migrations[step])
        db.execute("UPDATE schema_version SET version = $1", (max(version, target),))
    return version


class PgRow:
    """A row read by name (`row["id"]`) or position (`row[0]`), as sqlite3.Row is."""

    __slots__ = ("_names", "_values")

    def __init__(self, values: Sequence[Any], names: Mapping[str, int]) -> None:
        self._values = values
        self._names = names

    def __getitem__(self, key: int | str) -> Any:
        return self._values[key if isinstance(key, int) else self._names[key]]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)


def _pg_rows(cursor: Any) -> Callable[[Sequence[Any]], PgRow]:
    """psycopg's row factory for PgRow: the column names are looked up once per result."""
    names = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: PgRow(values, names)


class Postgres:
    """A session, replaced by a new one at its first use after it broke (the server restarted,
    or the link went) or after `PgSync` had to fence commits off (its `epoch` moved on: this
    session's commits could no longer be vouched for, monitord/pgsync.py). The statement that
    met the break fails as it did (the pipeline keeps its step, the outbox pauses); the next
    one runs on the new session, set up as the first was."""

    errors: tuple[type[Exception], ...] = (psycopg.Error,)

    def __init__(self, connection: psycopg.Connection[Any], server: StateServer, sync: PgSync, texts: Mapping[str, str]) -> None:
        self._connection = connection
        self.server = server
        self.sync = sync
        self.texts = texts  # the statements PostgreSQL takes in other words than SQLite's
        self.epoch = sync.epoch
        self._in_transaction = False  # never replaced inside one: its statements stay on its session

    def reopen(self) -> Postgres:
        """Another session, set up as the loop's, for another thread."""
        epoch = self.sync.epoch
        db = Postgres(Postgres.session(self.server), self.server, self.sync, self.texts)
        db.epoch = epoch
        return db

    @property
    def connection(self) -> psycopg.Connection[Any]:
        """The session, a new one if the last broke or was fenced off (psycopg.OperationalError
        while the server cannot be reached: the caller's write is refused as any other)."""
        stale = self._connection.closed or self._connection.broken or self.epoch != self.sync.epoch
        if stale and not self._in_transaction:
            self._connection.close()
            epoch = self.sync.epoch  # read before connecting: a fence meanwhile makes this session stale
            with _plain_errors():
                self._connection = Postgres.session(self.server)
            self.epoch = epoch
        return self._connection

    @staticmethod
    def session(server: StateServer) -> psycopg.Connection[Any]:
        connection = Postgres.connect(server)
        try:
            Postgres.configure(connection)
        except BaseException:
            connection.close()
            raise
        return connection

    @staticmethod
    def configure(connection: psycopg.Connection[Any]) -> None:
        connection.execute("SET lock_timeout = '5s'")
        connection.execute("SET synchronous_commit = off")
        for setting in SERVER_KEEPALIVES:
            connection.execute(setting)

    @staticmethod
    def connect(server: StateServer, **options: Any) -> psycopg.Connection[Any]:
        """An autocommitting session (the Store begins its own transactions); the URL's own
        application_name, connect_timeout and keepalives win over these, `options` (libpq's)
        over the URL."""
        params: dict[str, Any] = {
            "application_name": "monitord",
            "connect_timeout": 10,
            **CLIENT_KEEPALIVES,
            **conninfo_to_dict(server.url),
            **options,
        }
        if server.password is not None:
            params["password"] = server.password.reveal()
        return psycopg.connect(autocommit=True, row_factory=_pg_rows, cursor_factory=psycopg.RawCursor, **params)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        with _plain_errors():
            return self.connection.execute(postgres_sql(self.texts.get(sql, sql)), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        """An INSERT goes as one statement per ROWS_PER_INSERT rows, its VALUES repeated: psycopg's
        executemany costs about 25 us of this process's CPU a row, on the loop (bench/pg_store.py).
        So an INSERT ... ON CONFLICT DO UPDATE must not be handed one key twice (PostgreSQL
        refuses to update a row twice in one statement): the Store's come from mappings. The
        rest go through psycopg's executemany; no rows, no round trip. At most ROWS_PER_INSERT
        rows are held at once (a step that changed every line writes 100,000)."""
        remaining = iter(rows)
        with _plain_errors():
            if postgres_insert(sql, 1) is not None:
                changed = 0
                while chunk := list(itertools.islice(remaining, ROWS_PER_INSERT)):
                    batch = postgres_insert(sql, len(chunk))
                    changed += self.connection.execute(batch, [p for row in chunk for p in row]).rowcount  # type: ignore[arg-type]
                return changed
            first = next(remaining, None)
            if first is None:
                return 0
            with self.connection.cursor() as cursor:
                cursor.executemany(postgres_sql(self.texts.get(sql, sql)), itertools.chain((first,), remaining))
                return cursor.rowcount

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.connection.transaction():
            self._in_transaction = True
            try:
                yield
            finally:
                self._in_transaction = False

    def close(self) -> None:
        self._connection.close()


def postgres_session(server: StateServer) -> psycopg.Connection[Any]:
    """A session of its own on the state's server, as the store connects (`$1` placeholders,
    autocommit, keepalives on both ends)."""
    session = Postgres.connect(server)
    try:
        for setting in SERVER_KEEPALIVES:
            session.execute(setting)
    except BaseException:
        session.close()
        raise
    return session


def open_postgres(server: StateServer, migrations: Sequence[str], texts: Mapping[str, str]) -> tuple[Postgres, PgSync]:
    """The store's database on `server`, its schema brought up to date by `migrations`, the
    statements in `texts` sent in other words (both the Store's: monitord/store.py): two sessions, the loop's,
    whose commits do not wait for the WAL flush once the schema is there (`synchronous_commit =
    off`), and `PgSync`'s. A lock held longer than SQLite's busy_timeout fails the statement
    rather than holding the loop.

    Errors (StoreError) name the URL, which holds no password; the password is also scrubbed from
    libpq's message, should one ever quote it."""
    try:
        connection = Postgres.connect(server)
    except psycopg.Error as error:
        raise _scrubbed(StoreError.of(f"{server}: cannot connect", error), server) from None
    try:
        try:
            migrate_postgres(connection, migrations)
        except StoreError as error:
            raise StoreError(f"{server}: {error}") from None
        Postgres.configure(connection)
        sync = PgSync(lambda: Postgres.connect(server), str(server))
    except psycopg.Error as error:
        connection.close()
        raise _scrubbed(StoreError.of(server, error), server) from None
    except BaseException:
        connection.close()
        raise
    return Postgres(connection, server, sync, texts), sync


def _scrubbed(error: StoreError, server: StateServer) -> StoreError:
    """The error without the password, should libpq's message ever quote it."""
    return StoreError(str(error).replace(server.password.reveal(), "***")) if server.password else error
