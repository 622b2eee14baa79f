"""What the HTTP API, the metrics and the live diagnosis see of the daemon: a read-only view.

They read through `View`, never the daemon's attributes, so none of them imports the daemon
(no import cycle) and every piece of state keeps its one writer. `Daemon` implements it, and
every call runs on the daemon's event loop (HTTP handlers hop there first). `Controls` adds the
changes the API may ask for, which go through their one writer, the daemon's `Pipeline`.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from monitord.config import Config
    from monitord.exposition import Exposition
    from monitord.history import History
    from monitord.incident_actions import Refusal
    from monitord.line_history import LineHistory
    from monitord.looplag import LoopLag
    from monitord.model import AuditEntry, Incident, IncidentEvent, LineState, MaintenanceWindow, NodeRef, Silence
    from monitord.outbox import Delivery
    from monitord.pipeline import Unwritten
    from monitord.quality import Readings
    from monitord.stages import Stage, StageChange
    from monitord.store import StoredWindow
    from probes.profiles import Profile
    from probes.scheduler import Scheduler
    from probes.snmp import SnmpCounts
    from probes.traps import TrapReceiver
    from rules.config import RulesConfig
    from rules.tally import LineCounts


@dataclass(slots=True)
class ProbeStats:
    """Per device and probe: how polls ended and how long they took, for metrics."""

    outcomes: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (device, probe, outcome) -> polls
    seconds: defaultdict[tuple[str, str], float] = field(
        default_factory=lambda: defaultdict(float)
    )  # (device, probe) -> seconds spent
    polls: Counter[tuple[str, str]] = field(default_factory=Counter)  # (device, probe) -> polls
    durations: Counter[tuple[str, float]] = field(default_factory=Counter)  # (probe, bucket bound) -> polls
    probe_seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))  # probe -> seconds spent
    failures: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (probe, device kind, reason) -> failed polls


@dataclass(frozen=True, slots=True)
class PollFigures:
    """How polling goes: per device and probe, per probe class, and (while polling runs) the
    scheduler's and the trap receiver's own counters."""

    probes: ProbeStats
    job_classes: Mapping[str, str]  # job key -> probe class
    class_intervals: Mapping[str, float]  # probe class -> configured interval
    scheduler: Scheduler | None
    traps: TrapReceiver | None
    quality: Mapping[str, tuple[str, tuple[Readings, ...]]] = field(default_factory=dict)  # SNMP job key -> (device, levels)
    snmp: Mapping[str, SnmpCounts] = field(default_factory=dict)  # device kind -> the SNMP client's counters


class View(Protocol):
    @property
    def config(self) -> Config: ...
    @property
    def rules(self) -> RulesConfig: ...
    @property
    def profiles(self) -> Mapping[str, Profile]: ...
    @property
    def clock(self) -> Callable[[], float]: ...
    @property
    def started(self) -> float: ...
    @property
    def ready(self) -> asyncio.Event: ...
    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """Where the state lives, once the daemon runs."""

    @property
    def exposition(self) -> Exposition: ...
    @property
    def history(self) -> History:
        """Past incidents, read off the loop (monitord/history.py)."""

    @property
    def line_history(self) -> LineHistory:
        """Line quality over time and the flapping lines (monitord/line_history.py)."""

    @property
    def lag(self) -> LoopLag:
        """How late the event loop has run what was due."""

    @property
    def unwritten(self) -> Unwritten | None:
        """What the store refused to take, while it refuses."""

    @property
    def store_errors(self) -> tuple[type[Exception], ...]:
        """What the store raises when it does not answer (sqlite3's or psycopg's errors)."""

    @property
    def write_failures(self) -> int: ...
    async def between_steps(self) -> None:
        """Returns once the rules' thread makes no engine step: the reads that follow before the
        next await find the engine's lock free, so they do not hold the loop."""

    def open_incidents(self) -> list[Incident]: ...
    def incident(self, tracking: str) -> Incident | None:
        """Open or resolved: as the engine last decided it, else as last written."""

    def incident_history(self) -> list[Incident]:
        """Every incident written, open and resolved (until pruned)."""

    def helpdesk_stage(self, tracking: str, line: str | None = None) -> str | None:
        """The stage the helpdesk last set for the incident (monitord/stages.py), or with `line`
        for that subscriber's part in it (their follow-up ticket's, monitord/rtsync.py)."""

    def stage_history(self, tracking: str) -> list[StageChange]: ...
    def incident_events(self, tracking: str) -> list[IncidentEvent]:
        """The NOC's acknowledgement, owners and notes of the incident, oldest first."""

    def line_state(self, line_id: str) -> LineState: ...
    def node_state(self, node: NodeRef) -> LineState: ...
    def status_counts(self) -> Counter[tuple[str, str, str, str]]:
        """(region, exchange, device, status) -> number of lines."""

    def answer_tally(self) -> Mapping[tuple[str, str], int]:
        """(region, answer) -> customers' answers after repairs (monitord/sms_inbound.py)."""

    def line_counts(self) -> dict[str, LineCounts]:
        """Device id -> its lines per status (`rules.tally.STATUSES` order): a copy, one entry
        per device."""

    def maintenance(self) -> list[StoredWindow]:
        """Windows in force or planned, not cancelled."""

    def silences(self) -> list[Silence]:
        """Every silence kept: planned, active and ended (until pruned)."""

    @property
    def suppressed(self) -> Counter[str]:
        """Channel -> NOC-side notifications silences held or dropped since the start."""

    def polling(self) -> PollFigures: ...
    def delivery(self) -> Delivery: ...


class Controls(View, Protocol):
    async def add_maintenance(self, window: MaintenanceWindow) -> None: ...
    async def cancel_maintenance(self, window_id: str) -> bool: ...
    async def add_silence(self, silence: Silence) -> None: ...
    async def record(self, event: IncidentEvent) -> Refusal | None:
        """Record the NOC's action on an incident, or say why not (monitord/incident_actions.py); a
        close goes through the rules engine (monitord/workflow.py)."""

    async def expire_silence(self, silence_id: str, by: str) -> bool:
        """False when no such silence is active or planned."""

    async def set_stage(self, incident: Incident, stage: Stage, actor: str, line: str | None = None) -> bool:
        """A stage from the helpdesk's callback (with `line`: that subscriber's follow-up's), told to
        the customers if `stage.sms`; False when it was its stage already."""

    def touched(self, tracking: str, line: str) -> bool:
        """Whether the incident ever counted the line among its affected ones."""

    async def audit(self, entry: AuditEntry) -> None:
        """Record a change made through the web console (monitord/console.py)."""

    async def durable(self) -> None:
        """Return once every change made so far is on disk: a change is acknowledged after it."""
