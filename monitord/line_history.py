"""Line quality over time, off the probing path (issue 13 item 4): every poll's line samples are
rolled up into 5-minute min/avg/max per line and metric (monitord/rollups.py), written as one row
per device and period, merged into hourly rows, pruned past `history.five_minutes` and
`history.hourly`; and the lists of flapping and drifting lines (monitord/trends.py).

The loop's share is handing each poll's line readings to a thread that adds them up (`take`: one
`submit`, whatever the poll's size), as (time, line, values) tuples of atoms, not the samples: the
GC does not track the tuples, and the samples go once the engine has them. That thread does nothing
else, so polls never wait there for long: queued behind a period's close, the readings' values held
65 MB at 100,000 lines in bench/capacity.py, whose polls come about six times as fast as in real
time, and the heap kept it after they went (docs/benchmarks.md, "Fourteenth pass"). A second thread
packs the periods closed, merges the hours, writes and reads for the API, on a connection of its
own. A period's close and an hour's merge rest between devices (monitord/pace.py): half a second of
the thread's CPU at 100,000 lines must not hold the loop off the interpreter. Its writes take the
store's `turn` in batches of WRITE_BATCH rows, as the engine's steps do (monitord/stepwriter.py),
so SQLite never makes the loop or the steps wait out a long transaction.

A period is closed by the first sample of a later one, or LATE seconds after its end when no
sample came; a sample that arrives after its period was closed counts in the next. The period
in progress when the daemon stops is written as it is; after a crash it is lost; either way the
rest of that period, after the restart, is not kept (its row exists: the insert does nothing).
Hourly rows are made from the stored 5-minute rows once the hour's last one is written, and,
after a restart, for the hours missed (at most CATCH_UP back). The SQL is here, not in
monitord/store.py, because it runs on this connection only (as monitord/history.py's reads do).

In a cluster the work is split (docs/decisions.md, "Pollers sharded by lease"): each poller rolls
up the samples of the shards it holds and writes their 5-minute rows (`merges=False`), so that it
need not send every reading to the correlator; the correlator leader, fed nothing
(`fed = False`), makes the hourly rows and prunes, an hour once OTHERS_WRITE seconds have passed
after it (by then every poller has written its periods), and answers the reads. A shard taken
over mid-period keeps the part its first poller wrote (the other's row is left as it is).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from monitord.model import Outcome, Sample
from monitord.pace import paced
from monitord.quality import level_limits
from monitord.rollups import FIVE_MINUTES, HOUR, Accumulator, Point, Rollup, line_point, merge, period_start, unpack
from monitord.trends import Drift, Flaps, drifting
from rules.checks import Threshold

if TYPE_CHECKING:
    from monitord.config import Config
    from monitord.database import Database
    from monitord.store import Store

log = logging.getLogger("monitord")
T = TypeVar("T")
Reading = tuple[float, str, Mapping[str, float]]  # a line's sample as the thread adds it up: when, line id, values

WRITE_EVERY = 10.0  # seconds between looks for a closed period to write
LATE = 60.0  # a period no later sample closed is closed this long after its end
WRITE_BATCH = 200  # rows (a device's period each) per transaction
PRUNE_EVERY = 600.0
PRUNE_BATCH = 200
CATCH_UP = 48  # hours back an hourly row is made for after a restart
MAX_POINTS = 5000  # periods one series may span
OTHERS_WRITE = LATE + 2 * WRITE_EVERY + 60  # an unfed history's wait before merging an hour the pollers rolled up

_INSERT = "INSERT INTO line_quality (device, step, start, metrics, data) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
_ROWS = "SELECT device, step, start, metrics, data FROM line_quality"


def _rollup(row: Sequence[Any]) -> Rollup:
    device, step, start, metrics, data = row
    return Rollup(device, step, start, tuple(metrics.split(",")) if metrics else (), bytes(data))


class LineHistory:
    """The roll-ups' thread and the lists built on them. `current()`: the config in force (its
    topology and `history` section), read afresh each time so that a reload applies."""

    def __init__(self, store: Store, current: Callable[[], Config], clock: Callable[[], float], *, merges: bool = True) -> None:
        self.fed = True  # False: other processes (pollers) write the 5-minute rows, this one merges them
        self.merges = merges  # False: a poller's, which leaves the hourly rows and the pruning to the correlator
        self._store = store
        self._current = current
        self._clock = clock
        self._adder = ThreadPoolExecutor(1, thread_name_prefix="monitord-readings")  # owns `_period`
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="monitord-rollups")  # owns the rest
        self._db: Database | None = None
        self._period: Accumulator | None = None
        self._packed: list[Rollup] = []  # waiting for the turn
        self._written_until: int | None = None  # end of the latest 5-minute period written
        self._hours_done: int | None = None  # start of the latest hour rolled up
        self._task: asyncio.Task[None] | None = None
        self._writing = asyncio.Lock()
        self._stopping = asyncio.Event()
        self.flaps = Flaps()
        self.rows_written = 0

    # --- the loop's side ------------------------------------------------------------------------

    def take(self, samples: list[Sample]) -> None:
        """A poll's readings of its lines that answered, handed to the thread."""
        if self.fed and self._current().history.metrics:
            readings = [
                (s.at, s.target.id, s.values)
                for s in samples
                if s.outcome is Outcome.OK and s.target.level == "line" and s.values
            ]
            if readings:
                self._adder.submit(self._add, readings)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Write the period in progress and what waits, then close the connection."""
        self._stopping.set()
        if self._task is not None:
            await self._task  # not cancelled: rows it took to write would be lost
        try:
            await self.flush()
        except self._store.errors as error:
            log.warning("line quality of the last minutes not written: %s", error)
        await self._on_thread(self._close_connection)
        self._adder.shutdown()
        self._thread.shutdown()

    async def flush(self) -> int:
        """Close the period in progress now (the rest of it will not be kept) and write it, with
        every period closed before it."""
        await asyncio.get_running_loop().run_in_executor(self._adder, self._close_period)
        return await self.write_due()

    async def _run(self) -> None:
        next_prune = self._clock() + PRUNE_EVERY
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(WRITE_EVERY):
                    await self._stopping.wait()
            try:
                await self.write_due()
                if self.merges and self._clock() >= next_prune:
                    next_prune = self._clock() + PRUNE_EVERY
                    await self.prune()
            except self._store.errors as error:
                log.warning("line quality not written, tried again in %.0f s: %s", WRITE_EVERY, error)

    async def write_due(self) -> int:
        """Close the period if it is over, write the closed ones and the hours they complete."""
        async with self._writing:  # one at a time: a flush returns once all it closed is written
            await asyncio.get_running_loop().run_in_executor(self._adder, lambda: self._close_if_over(self._clock()))
            rows = await self._on_thread(lambda: self._due(self._clock()))
            await self.write(rows)
        return len(rows)

    async def write(self, rows: list[Rollup]) -> None:
        """Rows as packed, WRITE_BATCH per transaction, each in the store's turn; a row whose
        device and period are stored already is left as it is."""
        for at in range(0, len(rows), WRITE_BATCH):
            async with self._store.turn:
                await self._on_thread(functools.partial(self._write, rows[at : at + WRITE_BATCH]))

    async def prune(self) -> int:
        """Rows older than their step's retention, PRUNE_BATCH per transaction."""
        removed = 0
        while True:
            async with self._store.turn:
                batch = await self._on_thread(lambda: self._prune(self._clock()))
            removed += batch
            if batch < PRUNE_BATCH:
                return removed
            await asyncio.sleep(0.05)

    async def points(self, device: str, line: str, step: int, since: float, until: float) -> list[tuple[int, Point]]:
        """The line's periods of `step` starting in [since, until), in order, from its device's rows."""
        sql = f"{_ROWS} WHERE device = ? AND step = ? AND start >= ? AND start < ? ORDER BY start"

        def read() -> list[tuple[int, Point]]:
            rows = map(_rollup, self._connection().execute(sql, (device, step, since, until)))
            return [(row.start, point) for row in rows if (point := line_point(row, line)) is not None]

        return await self._on_thread(read)

    async def drifting(self, margin: float) -> list[Drift]:
        """Lines whose latest hourly average is within `margin` of a threshold of their rule
        set, nearest first (whether they are still OK is the engine's to say)."""
        return await self._on_thread(lambda: self._drifting(margin))

    # --- the threads' side ---------------------------------------------------------------------

    async def _on_thread(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, work)

    def _connection(self) -> Database:
        if self._db is None:
            self._db = self._store.reader()
        return self._db

    def _close_connection(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _add(self, readings: list[Reading]) -> None:
        """On the adder."""
        period = self._period
        for at, line, values in readings:
            if period is None or at >= period.end:
                self._close_period()
                period = self._period = Accumulator(self._current().history.metrics, period_start(at, FIVE_MINUTES))
            period.add(line, values)

    def _close_period(self) -> None:
        """On the adder: the period handed to the other thread, to be packed there at once."""
        period, self._period = self._period, None
        if period is not None and len(period):
            self._thread.submit(self._pack, period)

    def _close_if_over(self, now: float) -> None:
        if self._period is not None and now >= self._period.end + LATE:
            self._close_period()

    def _pack(self, period: Accumulator) -> None:
        lines = self._current().topology.lines
        self._packed += paced(period.rollups(lambda line: found.device if (found := lines.get(line)) else None))

    def _due(self, now: float) -> list[Rollup]:
        rows, self._packed = self._packed, []
        if not self.fed:
            self._written_until = int(now - OTHERS_WRITE)
        return rows + self._hourly() if self.merges else rows

    def _write(self, rows: list[Rollup]) -> None:
        db = self._connection()
        with db.transaction():
            db.executemany(_INSERT, [(r.device, r.step, r.start, ",".join(r.metrics), r.data) for r in rows])
        self.rows_written += len(rows)
        ends = [r.start + r.step for r in rows if r.step == FIVE_MINUTES]
        if ends:
            self._written_until = max(self._written_until or 0, *ends)

    def _hourly(self) -> list[Rollup]:
        """The hours whose 5-minute rows are all written and that have no hourly row yet."""
        if self._written_until is None:
            return []
        last = period_start(self._written_until, HOUR) - HOUR  # the latest hour over
        db = self._connection()
        if self._hours_done is None:
            done = db.execute("SELECT max(start) FROM line_quality WHERE step = ?", (HOUR,)).fetchone()[0]
            self._hours_done = int(done) if done is not None else last - HOUR
        rows: list[Rollup] = []
        for hour in range(max(self._hours_done + HOUR, last - (CATCH_UP - 1) * HOUR), last + HOUR, HOUR):
            sql = f"{_ROWS} WHERE step = ? AND start >= ? AND start < ? ORDER BY device, start"
            found = map(_rollup, db.execute(sql, (FIVE_MINUTES, hour, hour + HOUR)))  # a device's rows at a time
            for device, parts in paced(itertools.groupby(found, key=lambda r: r.device)):
                merged = merge(device, hour, parts)
                if merged is not None:
                    rows.append(merged)
        self._hours_done = max(self._hours_done, last)
        return rows

    def _prune(self, now: float) -> int:
        kept = self._current().history
        db = self._connection()
        removed = 0
        with db.transaction():
            for step, age in ((FIVE_MINUTES, kept.five_minutes), (HOUR, kept.hourly)):
                removed += db.execute(
                    "DELETE FROM line_quality WHERE (device, step, start) IN "
                    "(SELECT device, step, start FROM line_quality WHERE step = ? AND start < ? LIMIT ?)",
                    (step, int(now - age), PRUNE_BATCH - removed),
                ).rowcount
        return removed

    def _drifting(self, margin: float) -> list[Drift]:
        config = self._current()
        latest = self._connection().execute(
            "SELECT max(start) FROM line_quality WHERE step = ? AND start >= ?", (HOUR, int(self._clock()) - 3 * HOUR)
        )
        hour = latest.fetchone()[0]
        if hour is None:
            return []
        found: list[Drift] = []
        rows = self._connection().execute(f"{_ROWS} WHERE step = ? AND start = ?", (HOUR, hour)).fetchall()
        for row in map(_rollup, rows):
            device = config.topology.devices.get(row.device)
            if device is None:
                continue
            limits: dict[str, tuple[Threshold, ...]] = {}
            for profile in device.profiles:
                for metric, thresholds in level_limits(config.rules.ruleset(profile)).items():
                    limits[metric] = limits.get(metric, ()) + thresholds
            if limits:
                found += drifting(row.device, unpack(row), limits, margin)
        found.sort(key=lambda d: (d.headroom, d.line, d.metric))
        return found
