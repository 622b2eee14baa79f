"""History tables read by GET rather than walked (a profile table with `get: N`).

RFC 2662's adslAtucIntervalTable and its kind keep 96 rows per line, indexed ifIndex.interval,
1 being the last complete 15-minute interval: walking them reads 96 rows per line to use one.
A `get: 1` table asks each polled line's row 1 only, up to PER_REQUEST objects per GET, so its
values are there at the first poll (a counter's rate needs two). A row whose `skip_rows` cell
reads one of its values (the interval's ValidData false(2)) gives no value. Objects are asked column
by column, so the first GET asks the first column of up to 20 lines: when it finds none, the agent
is taken to have no such table and no more are sent. Over SNMPv1 a missing object fails the whole
request (noSuchName): a first request failing so is taken the same way, and a later one ends the
reading with a note, the rows read before it kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import product
from typing import Protocol

from monitord.model import Outcome
from probes.snmp import Oid, SnmpClient, Varbind
from probes.snmpbase import Target


class Column(Protocol):
    """What is read here of a profile's column (probes/profiles.py's Column, which imports this module)."""

    @property
    def oid(self) -> Oid: ...
    @property
    def interval(self) -> str: ...


class IndexPart(Protocol):
    """What is read here of a piece of a table's index: a label's values."""

    @property
    def labels(self) -> Mapping[int, str]: ...


class Table(Protocol):
    """What is read here of a profile's table: index [port, labels..., row]."""

    @property
    def index(self) -> Sequence[IndexPart]: ...
    @property
    def columns(self) -> Sequence[Column]: ...
    @property
    def get(self) -> int | None: ...
    @property
    def skip_rows(self) -> tuple[Oid, frozenset[int]] | None: ...


PER_REQUEST = 20  # objects per GET: well inside any agent's PDU size for integers


def get_oids(tables: Iterable[Table], keys: Iterable[str], intervals: Iterable[str] | None) -> list[Oid]:
    """The objects to GET: each `get` table's columns (and its skip_rows column) at every line
    key, once for each value of the labels between the port and the row (e.g. xtuc and xtur)."""
    wanted = None if intervals is None else set(intervals)
    ports = [int(key) for key in keys if key.isdigit()]
    oids: list[Oid] = []
    for table in tables:
        if table.get is None:
            continue
        columns = [c.oid for c in table.columns if wanted is None or c.interval in wanted]
        if not columns:
            continue
        if table.skip_rows is not None:
            columns.append(table.skip_rows[0])
        middles = list(product(*(sorted(part.labels) for part in table.index[1:-1])))
        rows = [(port, *middle, table.get) for port in ports for middle in middles]
        oids += [column + row for column in dict.fromkeys(columns) for row in rows]  # column by column
    return oids


async def get_rows(
    client: SnmpClient,
    target: Target,
    tables: Iterable[Table],
    lines: Mapping[str, str],
    intervals: Iterable[str] | None = None,
) -> tuple[list[Varbind], str]:
    """The varbinds of every `get` table's row for the polled lines, rows to skip left out, and a
    note when a GET failed (the values read before it are kept; a line without them is still polled)."""
    tables = tuple(tables)
    oids = get_oids(tables, lines, intervals)
    found: list[Varbind] = []
    note = ""
    for at in range(0, len(oids), PER_REQUEST):
        answer = await client.get(target, oids[at : at + PER_REQUEST])
        if at == 0 and answer.outcome is Outcome.AGENT_ERROR and answer.detail.startswith("noSuchName"):
            break  # SNMPv1's way of saying the first row asked is not there: taken as no table, as below
        if answer.outcome is not Outcome.OK:
            note = f"history rows not read: {answer.outcome.value} {answer.detail}".rstrip()
            break
        if at == 0 and not answer.varbinds:
            break  # none of the first 20 lines has a row: an agent without the tables costs one GET a poll
        found += answer.varbinds
    skipped: set[Oid] = set()  # the objects of rows to skip
    for table in tables:
        if table.get is not None and table.skip_rows is not None:
            column, values = table.skip_rows
            rows = {v.oid[len(column) :] for v in found if v.oid[: len(column)] == column and v.value in values}
            skipped.update(c.oid + row for c in table.columns for row in rows)
    return [v for v in found if v.oid not in skipped], note
