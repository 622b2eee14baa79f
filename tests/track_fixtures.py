"""A small inventory and incidents with private details planted, for the tracking page's tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from monitord.config.model import TrackingConfig
from monitord.http_server import HttpServer
from monitord.model import Device, Exchange, Incident, IncidentKind, Line, NodeRef, Phase, Region, Topology
from monitord.stages import DEFAULT_TABLE, StageChange, StageTable
from monitord.store import Store
from monitord.track_http import make_tracking_app

ZONE = "Europe/Istanbul"
OPENED = datetime(2026, 12, 4, 12, 5, tzinfo=UTC).timestamp()  # 15:05 in Istanbul
DEVICE, ADDRESS, CABINET = "dslam-bjk-01", "10.20.30.40", "kabin-bjk-7"
LINE_IDS = [f"BJK{n:06d}" for n in range(47)]
NAMES = [f"Ayşe Yılmaz{n}" for n in range(47)]
PHONES = [f"+90532{n:07d}" for n in range(47)]


def topology(exchange_name: str = "Beşiktaş Santrali") -> Topology:
    device = Device(DEVICE, "dslam", "bjk", ADDRESS, None, cabinet=CABINET)
    lines = {i: Line(i, name, DEVICE, phone, port=n) for n, (i, name, phone) in enumerate(zip(LINE_IDS, NAMES, PHONES))}
    return Topology(
        {"ist": Region("ist", "İstanbul Avrupa")},
        {"bjk": Exchange("bjk", exchange_name, "ist")},
        {DEVICE: device},
        lines,
    )


OUTAGE = Incident(
    "ARZ-2026-000123",
    IncidentKind.OUTAGE,
    NodeRef("device", DEVICE),
    Phase.OPEN,
    OPENED,
    OPENED + 600,
    frozenset(LINE_IDS),
    (f"47/47 lines down behind device:{DEVICE}", f"device:{DEVICE}: timeout {ADDRESS}"),
)
RECOVERING = replace(OUTAGE, tracking="ARZ-2026-000124", phase=Phase.RECOVERING)
RESOLVED = replace(OUTAGE, tracking="ARZ-2026-000125", phase=Phase.RESOLVED, resolved_at=OPENED + 5400)
ONE_LINE = replace(
    OUTAGE, tracking="ARZ-2026-000126", root=NodeRef("line", LINE_IDS[3]), affected=frozenset({LINE_IDS[3]}), evidence=()
)
MERGED = replace(  # a cabinet's incident, merged into the device's OUTAGE
    RESOLVED,
    tracking="ARZ-2026-000127",
    resolved_at=OPENED + 60,
    evidence=(f"device:{DEVICE}: timeout", "merged into ARZ-2026-000123"),
)
MERGED_GONE = replace(MERGED, tracking="ARZ-2026-000128", evidence=("merged into ARZ-2026-000999",))  # pruned since
INCIDENTS = (OUTAGE, RECOVERING, RESOLVED, ONE_LINE, MERGED, MERGED_GONE)


@dataclass(frozen=True, slots=True)
class Settings:
    """The three settings the tracking page reads of `Config`."""

    topology: Topology
    tracking_prefix: str = "ARZ"
    timezone: str = ZONE
    stages: StageTable = DEFAULT_TABLE


def private_values() -> list[str]:
    """What must never be on a customer's page."""
    return [DEVICE, ADDRESS, CABINET, "dslam", *LINE_IDS, *NAMES, *PHONES, *(p[-7:] for p in PHONES), "timeout"]


@dataclass(slots=True)
class Source:
    """What the tracking page reads of a daemon: its settings and a real store, on this loop."""

    config: Settings
    store: Store
    loop: asyncio.AbstractEventLoop | None

    async def between_steps(self) -> None:
        """No rules engine here: nothing steps."""

    def incident(self, tracking: str) -> Incident | None:
        return self.store.incident(tracking)

    def helpdesk_stage(self, tracking: str) -> str | None:
        return self.store.helpdesk_stage(tracking)


@contextlib.asynccontextmanager
async def serving(
    root: Path, settings: TrackingConfig, exchange_name: str = "Beşiktaş Santrali", stages: Sequence[StageChange] = ()
) -> AsyncIterator[str]:
    """The tracking listener on the HTTP thread, as the daemon runs it, over a SQLite store
    holding INCIDENTS and the helpdesk's `stages`; yields its base URL."""
    store = Store.open(root / "state.db")
    store.commit_step(None, INCIDENTS, [], OPENED + 600)
    for change in stages:
        store.set_stage(change)
    source = Source(Settings(topology(exchange_name)), store, asyncio.get_running_loop())
    server = HttpServer([(make_tracking_app(source, settings), "127.0.0.1", 0)])
    (port,) = await server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.stop()
        store.close()
