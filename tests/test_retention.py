"""History is bounded: finished outbox rows and resolved incidents are pruned by age, in small
batches, and the outbox figures /metrics reads cost the backlog, not the history."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from lab.isp import build_sample_isp
from monitord.config import load_config
from monitord.daemon import Daemon
from monitord.model import Incident, IncidentKind, NodeRef, Phase
from monitord.store import Store
from tests.outbox_fixtures import queue, sms, store  # noqa: F401  (fixture)

NOW = 1_780_000_000.0
DAY = 86400.0
HISTORY = int(os.environ.get("MONITORD_OUTBOX_HISTORY", "200000"))  # 1000000 reproduces the issue


def incident(tracking: str, phase: Phase, resolved_at: float | None) -> Incident:
    return Incident(
        tracking,
        IncidentKind.OUTAGE,
        NodeRef("exchange", "sisli"),
        phase,
        NOW - 200 * DAY,
        resolved_at or NOW,
        frozenset({"s1"}),
        (),
        resolved_at,
    )


def bulk_history(path: Path, rows: int) -> None:
    """`rows` sent SMS of one long-resolved incident plus a few waiting ones, written straight to SQLite."""
    db = sqlite3.connect(path)
    db.executemany(
        "INSERT INTO outbox (key, channel, recipient, action, subject, body, incident, created_at,"
        " next_attempt_at, status, sent_at) VALUES (?, ?, ?, 'outage', '', 'x', 'ARZ-2025-000001', ?, ?, ?, ?)",
        (
            (
                f"k{n}",
                "sms" if n % 2 else "email",
                f"+90532{n:07d}",
                NOW - 100 * DAY,
                NOW - 100 * DAY,
                "sent" if n >= 10 else "pending",
                NOW - 100 * DAY if n >= 10 else None,
            )
            for n in range(rows)
        ),
    )
    db.commit()
    db.close()


def test_outbox_figures_cost_the_backlog_not_the_history(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    Store.open(path).close()
    bulk_history(path, HISTORY)
    s = Store.open(path)
    try:
        started = time.perf_counter()
        figures = (s.depth("sms"), s.depth("email"), s.oldest_age(NOW, "sms"), s.oldest_age(NOW, "email"))
        took = time.perf_counter() - started
        assert figures == (5, 5, 100 * DAY, 100 * DAY)
        assert took < 0.01, f"the outbox figures took {took * 1000:.0f} ms over {HISTORY:,} rows"
    finally:
        s.close()


def test_pruning_removes_old_finished_rows_and_keeps_what_matters(store: Store) -> None:  # noqa: F811
    old, recent = NOW - 40 * DAY, NOW - DAY
    store.commit_step(
        None,
        [
            incident("ARZ-2025-000001", Phase.RESOLVED, NOW - 100 * DAY),  # resolved long ago: pruned
            incident("ARZ-2025-000002", Phase.RESOLVED, NOW - 10 * DAY),  # resolved lately: kept, with its notices
            incident("ARZ-2025-000003", Phase.OPEN, None),  # open: its old notices keep their keys
        ],
        [],
        NOW,
    )
    rows = {
        "sent-old": sms(1, incident="ARZ-2025-000001"),
        "sent-recent": sms(2, incident="ARZ-2025-000001"),
        "dead-old": sms(3, incident="ARZ-2025-000001"),
        "pending-old": sms(4, incident="ARZ-2025-000001"),
        "sent-old-of-recent": sms(5, incident="ARZ-2025-000002"),
        "sent-old-of-open": sms(6, incident="ARZ-2025-000003"),
    }
    ids = {}
    for name, item in rows.items():
        queue(store, [item], now=old)
        [ids[name]] = [i.id for i in store.items() if i.notification.key == item.key]
    for name in ("sent-old", "sent-old-of-recent", "sent-old-of-open"):
        store.claim(ids[name], old)
        store.mark_sent(ids[name], f"SM{name}", old)
    store.claim(ids["sent-recent"], recent)
    store.mark_sent(ids["sent-recent"], "SMrecent", recent)
    store.mark_dead(ids["dead-old"], "unreachable number")

    cutoffs = (NOW - 30 * DAY, NOW - 30 * DAY, NOW - 90 * DAY)
    assert store.prune(*cutoffs, batch=1) == 1  # one small transaction at a time
    while store.prune(*cutoffs, batch=1):
        pass
    left = {name for name, item_id in ids.items() if store.item(item_id) is not None}
    assert left == {"sent-recent", "pending-old", "sent-old-of-recent", "sent-old-of-open"}
    assert store.incident("ARZ-2025-000001") is None
    assert store.incident("ARZ-2025-000002") is not None and store.incident("ARZ-2025-000003") is not None
    assert store.prune(*cutoffs) == 0


async def test_the_daemon_prunes_by_its_configured_retention(tmp_path: Path) -> None:
    """A daemon that is not running, its clock at NOW: what `retention:` says goes, the rest stays."""
    build_sample_isp(tmp_path, base="127.0.78", extra={"retention": {"sent": "10d", "dead": "10d", "resolved_incidents": "10d"}})
    daemon = Daemon(load_config(tmp_path / "config.yaml"), clock=lambda: NOW)
    try:
        for n, age in enumerate((20 * DAY, 5 * DAY) * 300):  # 300 rows past 10 days, 300 within
            queue(daemon.store, [sms(n, incident="ARZ-2025-000009")], now=NOW - age)
        for item in daemon.store.items():
            daemon.store.claim(item.id, item.created_at)
            daemon.store.mark_sent(item.id, f"SM{item.id}", item.created_at)
        assert await daemon.prune_history() == 300
        assert {NOW - i.sent_at for i in daemon.store.items()} == {5 * DAY}
    finally:
        daemon.store.close()
