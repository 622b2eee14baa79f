"""The NOC's look back (issue 13 item 4): a subscriber's past incidents, the subscribers an
incident touched, and the incidents of a period, for the API, the CLI and CSV exports.

Every read runs on a connection and a thread of its own (`Store.reader`), so that a year of
incidents is read without holding the loop that polls or the connection the engine's steps
commit on, and every read is bounded. Which lines an incident touched comes from
`incident_lines`, written with each step (monitord/store.py): a line that left an incident
still counts as touched by it.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from monitord.model import NodeRef, Topology
from notices.templates import mask_phone

if TYPE_CHECKING:
    from monitord.database import Database

T = TypeVar("T")

LINE_HISTORY_MAX = 1000  # a subscriber's incidents listed at most, latest first
REPORT_MAX = 100_000  # incidents in one period's report: a longer period is refused, not cut

_PAST = """SELECT i.tracking, i.kind, i.root, i.phase, i.opened_at, i.resolved_at,
    (SELECT count(*) FROM incident_lines AS c WHERE c.tracking = i.tracking) FROM incidents AS i"""


@dataclass(frozen=True, slots=True)
class PastIncident:
    """An incident as history shows it: its numbers, not its members."""

    tracking: str
    kind: str
    root: str  # e.g. "device:dslam-3"
    phase: str
    opened_at: float
    resolved_at: float | None
    affected: int  # lines it touched

    def duration(self, now: float) -> float:
        """Seconds from opening to resolution, or to `now` while open."""
        return (now if self.resolved_at is None else self.resolved_at) - self.opened_at


class History:
    """Reads of the store's history, one at a time on a thread of their own; the connection is
    opened by the first read and closed by `close`."""

    def __init__(self, connect: Callable[[], Database]) -> None:
        self._connect = connect
        self._db: Database | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="monitord-history")

    async def of_line(self, line_id: str, limit: int = LINE_HISTORY_MAX) -> list[PastIncident]:
        """The incidents that touched the line, latest first."""
        sql = f"{_PAST} JOIN incident_lines AS l ON l.tracking = i.tracking WHERE l.line = ? ORDER BY i.opened_at DESC LIMIT ?"
        return await self._read(lambda db: _past(db.execute(sql, (line_id, limit))))

    async def opened(self, since: float, until: float, limit: int = REPORT_MAX) -> list[PastIncident]:
        """The incidents opened in [since, until), in order of opening: at most `limit` + 1, so
        that the caller can tell there were more than `limit`."""
        sql = f"{_PAST} WHERE i.opened_at >= ? AND i.opened_at < ? ORDER BY i.opened_at, i.tracking LIMIT ?"
        return await self._read(lambda db: _past(db.execute(sql, (since, until, limit + 1))))

    async def touched(self, tracking: str) -> list[str] | None:
        """The lines the incident touched, in order; None for an incident not (or no longer) stored."""

        def read(db: Database) -> list[str] | None:
            if db.execute("SELECT 1 FROM incidents WHERE tracking = ?", (tracking,)).fetchone() is None:
                return None
            return [r[0] for r in db.execute("SELECT line FROM incident_lines WHERE tracking = ? ORDER BY line", (tracking,))]

        return await self._read(read)

    async def _read(self, read: Callable[[Database], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._on_thread, read)

    def _on_thread(self, read: Callable[[Database], T]) -> T:
        if self._db is None:
            self._db = self._connect()
        return read(self._db)

    def close(self) -> None:
        """Wait for a read in progress, then close the connection."""
        self._thread.submit(self._close).result()
        self._thread.shutdown()

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _past(rows: Iterable[Sequence[Any]]) -> list[PastIncident]:
    return [PastIncident(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows]


# --- CSV (pure) --------------------------------------------------------------------------------


def _when(at: float | None, zone: ZoneInfo) -> str:
    return "" if at is None else datetime.fromtimestamp(at, zone).isoformat(timespec="seconds")


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180, as spreadsheets expect
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def touched_csv(lines: Sequence[str], topology: Topology) -> str:
    """The subscribers an incident touched, where they hang in the inventory; phones masked as
    everywhere in the API (notices.templates.mask_phone). A line no longer in the inventory
    keeps its id and nothing else."""
    header = ("subscriber", "name", "phone", "device", "port", "cabinet", "exchange", "region")
    rows: list[tuple[Any, ...]] = []
    for line_id in lines:
        line = topology.lines.get(line_id)
        if line is None:
            rows.append((line_id, "", "", "", "", "", "", ""))
            continue
        device = topology.devices[line.device]
        region = topology.exchanges[device.exchange].region
        phone = mask_phone(line.phone) if line.phone else ""
        port = "" if line.port is None else line.port
        rows.append((line_id, line.name, phone, line.device, port, device.cabinet or "", device.exchange, region))
    return _csv(header, rows)


def report_csv(incidents: Sequence[PastIncident], topology: Topology, zone: str, now: float) -> str:
    """The incidents of a period, one row each: where (the root's region), when, how long (an
    open incident's duration runs to `now`), how many lines."""
    tz = ZoneInfo(zone)
    regions: dict[str, str] = {}
    header = ("tracking", "kind", "phase", "root", "region", "opened", "resolved", "duration_s", "lines")
    rows = []
    for i in incidents:
        if i.root not in regions:
            regions[i.root] = _region(i.root, topology)
        duration = round(i.duration(now))
        rows.append(
            (
                i.tracking,
                i.kind,
                i.phase,
                i.root,
                regions[i.root],
                _when(i.opened_at, tz),
                _when(i.resolved_at, tz),
                duration,
                i.affected,
            )
        )
    return _csv(header, rows)


def _region(root: str, topology: Topology) -> str:
    """The region a root lies in; empty when it has left the inventory."""
    level, _, ident = root.partition(":")
    if level == "region":
        return ident
    try:
        chain = topology.ancestors(NodeRef(level, ident))  # type: ignore[arg-type]
    except (KeyError, StopIteration):
        return ""
    return next((n.id for n in chain if n.level == "region"), "")
