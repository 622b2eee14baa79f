"""The store's commits do not wait on the disk; what leaves the process waits for durability
(monitord/walsync.py): real SQLite files, a real local Twilio, and os.fsync instrumented to be
slow and to record what it made durable."""

from __future__ import annotations

import asyncio
import errno
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lab.twilio import TwilioLab
from monitord.model import Notification
from monitord.outbox import Outbox
from monitord.store import Store
from tests.outbox_fixtures import FAST, drain, queue, sms, sms_for, twilio  # noqa: F401  (fixtures)
from tests.test_loop_lag import ticks_during

REAL_FSYNC = os.fsync


@dataclass
class Disk:
    """What the instrumented fsync made durable: the file's bytes as they were when each fsync
    began (a write after that moment is not counted, though the fsync may have taken it)."""

    db: Path
    delay: float
    images: list[tuple[bytes, bytes]] = field(default_factory=list)
    threads: set[str] = field(default_factory=set)

    def fsync(self, fd: int) -> None:
        self.threads.add(threading.current_thread().name)
        image = (self.db.read_bytes(), Path(f"{self.db}-wal").read_bytes())
        time.sleep(self.delay)  # a slow disk: commits go on meanwhile
        REAL_FSYNC(fd)
        self.images.append(image)

    def durable_status(self, key: str, scratch: Path) -> str | None:
        """The item's status in the file as the last completed fsync left it on disk."""
        if not self.images:
            return None
        db_bytes, wal_bytes = self.images[-1]
        scratch.mkdir(exist_ok=True)
        for leftover in scratch.iterdir():
            leftover.unlink()
        (scratch / "image.db").write_bytes(db_bytes)
        (scratch / "image.db-wal").write_bytes(wal_bytes)
        view = sqlite3.connect(scratch / "image.db")
        try:
            row = view.execute("SELECT status FROM outbox WHERE key = ?", (key,)).fetchone()
        finally:
            view.close()
        return None if row is None else str(row[0])


@pytest.fixture
def disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Disk:
    found = Disk(tmp_path / "state.db", delay=0.1)
    monkeypatch.setattr(os, "fsync", found.fsync)
    return found


@pytest.fixture
def synced_store(disk: Disk) -> Iterator[Store]:
    s = Store.open(disk.db)
    yield s
    s.close()


async def test_a_send_waits_until_its_claim_is_on_disk(
    synced_store: Store, disk: Disk, twilio: TwilioLab, tmp_path: Path
) -> None:
    """Each SMS leaves only when the file as last fsynced already holds its `sending` mark."""
    notifier = sms_for(twilio)
    send = notifier.send
    seen: dict[str, str | None] = {}

    async def checked(item: Notification) -> str:
        seen[item.key] = disk.durable_status(item.key, tmp_path / "image")
        return await send(item)

    notifier.send = checked  # type: ignore[method-assign]
    items = [sms(i) for i in range(12)]
    queue(synced_store, items)
    outbox = Outbox(synced_store, {"sms": notifier}, {"sms": FAST}, rng=random.Random(7))
    await drain(outbox, synced_store, timeout=30.0)
    assert len(twilio.messages) == len(items)
    assert seen == {n.key: "sending" for n in items}


async def test_commits_on_the_loop_never_fsync(synced_store: Store, disk: Disk) -> None:
    """The loop's connection neither syncs nor checkpoints; the fsyncs run in the worker, and
    one covers every commit made while the one before it was on the disk (group commit)."""
    db = synced_store._db
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 0  # OFF
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    assert synced_store._sync.synchronous == 2  # FULL: the checkpoints' syncs
    disk.threads.clear()
    commits = 30
    for i in range(commits):
        queue(synced_store, [sms(i)])
    await synced_store.durable()
    assert disk.threads == {"monitord-walsync"}
    assert 1 <= synced_store._sync.counts.syncs <= commits // 3  # each 0.1 s fsync covered the commits made meanwhile
    assert disk.durable_status(sms(commits - 1).key, disk.db.parent / "image") == "pending"


async def test_durable_waits_for_the_fsync_and_not_the_loop(synced_store: Store, disk: Disk) -> None:
    """While the disk is slow the loop keeps running: a commit returns at once, `durable()` later."""
    disk.delay = 0.5
    started = time.monotonic()
    queue(synced_store, [sms(1)])
    committed = time.monotonic() - started
    _, ticks = await ticks_during(synced_store.durable())
    assert committed < disk.delay  # the commit did not wait for the (0.5 s) fsync
    assert time.monotonic() - started >= disk.delay
    assert ticks >= 3  # the loop ran while the disk worked


async def test_checkpoints_keep_the_wal_bounded(tmp_path: Path) -> None:
    """Hundreds of commits, checkpointed from the worker as they come: the WAL is reused instead
    of growing with them; without checkpoints it holds every one."""
    sizes = {}
    for every in (0.0, 3600.0):
        path = tmp_path / f"every-{every:g}.db"
        store = Store.open(path, checkpoint_every=every)
        try:
            for i in range(300):
                queue(store, [sms(i, incident=f"ARZ-2026-{i:06d}")])
                await store.durable()
                await asyncio.sleep(0.002)
            sizes[every] = Path(f"{path}-wal").stat().st_size
            checkpoints = store._sync.counts.checkpoints
        finally:
            store.close()
        assert (checkpoints > 0) is (every == 0.0)
    page = 4096
    assert sizes[3600.0] > 300 * page  # every commit wrote at least a page
    assert sizes[0.0] < sizes[3600.0] / 4


async def test_close_leaves_the_file_fully_checkpointed(tmp_path: Path) -> None:
    """After close everything is in the database file itself: read with the WAL ignored."""
    path = tmp_path / "state.db"
    store = Store.open(path, checkpoint_every=3600.0)
    items = [sms(i) for i in range(50)]
    queue(store, items)
    store.close()
    wal = Path(f"{path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    view = sqlite3.connect(f"file:{path}?immutable=1", uri=True)  # the database file alone
    try:
        keys = {r[0] for r in view.execute("SELECT key FROM outbox")}
    finally:
        view.close()
    assert keys == {n.key for n in items}


async def test_a_failed_fsync_stops_everything_that_waits_for_durability(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After an fsync error nothing is known durable: `durable()` raises, now and later."""
    store = Store.open(tmp_path / "state.db")

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing)
    try:
        queue(store, [sms(1)])
        with pytest.raises(sqlite3.OperationalError, match="fsync"):
            await store.durable()
        queue(store, [sms(2)])
        with pytest.raises(sqlite3.OperationalError, match="fsync"):
            await store.durable()
    finally:
        monkeypatch.setattr(os, "fsync", REAL_FSYNC)
        store.close()
