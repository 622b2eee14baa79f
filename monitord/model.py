"""The data that flows one way through monitord.

    inventory (Topology) + probes -> Sample -> rules -> LineState / Incident -> Notification

Everything here is small, frozen and free of I/O so that `rules/` and `notices/` can
import it without pulling in sockets or asyncio.
"""

from __future__ import annotations

import enum
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, NamedTuple

Language = Literal["tr", "en"]
DeviceKind = Literal["dslam", "olt", "cmts", "router", "switch"]
DEVICE_KINDS: tuple[str, ...] = ("dslam", "olt", "cmts", "router", "switch")


class Secret:
    """A credential read from the environment or a file; its repr never shows the value."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source  # e.g. "env:TWILIO_AUTH_TOKEN" or "file:/etc/monitord/rt.token"

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.source})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class StateServer:
    """`state: postgresql://...`: the PostgreSQL database that holds the daemon's state instead
    of a SQLite file. `url` carries no password (the config refuses one there): it is what logs
    and errors name. The password, if the server asks for one, comes from `password` or from
    libpq's own PGPASSFILE (~/.pgpass)."""

    url: str
    password: Secret | None = None

    def __str__(self) -> str:
        return self.url


# --- inventory -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SnmpAuth:
    """How to talk to one agent (snmp_exporter's "auth"): kept apart from what to walk."""

    name: str
    version: Literal["1", "2c", "3"]
    community: Secret | None = None
    user: str | None = None
    auth_protocol: Literal["md5", "sha", "sha256", "sha512"] | None = None
    auth_key: Secret | None = None
    priv_protocol: Literal["des", "aes", "aes256"] | None = None
    priv_key: Secret | None = None


@dataclass(frozen=True, slots=True)
class Region:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Exchange:
    id: str
    name: str
    region: str


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    kind: DeviceKind
    exchange: str
    address: str
    snmp: SnmpAuth | None  # None: reachability by ICMP only (e.g. a router without SNMP access)
    profiles: tuple[str, ...] = ()  # line profiles to walk, by name (monitord/builtin/profiles/*.yaml)
    port: int = 161
    cabinet: str | None = None
    location: str | None = None  # the street address of its site (its cabinet's, if it is in one): for a field team
    lat: float | None = None  # ... and its coordinates, decimal degrees (WGS 84)
    lon: float | None = None


@dataclass(frozen=True, slots=True)
class Line:
    """A subscriber line: who to tell, and where to look for it on its head-end."""

    id: str  # subscriber id
    name: str
    device: str
    phone: str | None = None  # E.164
    email: str | None = None
    language: Language = "tr"
    port: int | None = None  # index in the device's line tables (ifIndex for DSL)
    mac: str | None = None  # cable modems: docsIfCmtsCmStatusMacAddress, lower-case, colon-separated
    modem: str | None = None  # address answering ICMP, if the modem is reachable
    sms_opt_out: bool = False  # the subscriber asked not to be texted
    prefer_email: bool = False  # tell by e-mail rather than SMS when both are known
    serial: str | None = None  # ONUs found by serial number on their OLT (e.g. Ubiquiti UFiber's ubntOnusTable)
    address: str | None = None  # the subscriber's street address, for a field team
    lat: float | None = None  # ... and its coordinates, decimal degrees (WGS 84)
    lon: float | None = None
    # cable: the upstream segment (fiber node's return path) its modem, or the upstream channel
    # this line reads, is on: a level between the CMTS and its modems (docs/decisions.md)
    segment: str | None = None


NodeLevel = Literal["region", "exchange", "cabinet", "device", "segment", "line"]


@dataclass(frozen=True, slots=True)
class NodeRef:
    """A place in the topology: ("region", id), ("exchange", id), ("cabinet", id), ("device", id),
    ("segment", id) (a CMTS's upstream segment), ("line", id)."""

    level: NodeLevel
    id: str

    def __str__(self) -> str:
        return f"{self.level}:{self.id}"


@dataclass(frozen=True, slots=True)
class Topology:
    """The whole inventory, indexed by id. Built once per (re)load; never mutated."""

    regions: Mapping[str, Region]
    exchanges: Mapping[str, Exchange]
    devices: Mapping[str, Device]
    lines: Mapping[str, Line]
    # the phones and e-mail addresses that more than one line has, with those lines: a
    # subscriber with two lines is told once (notices/plan.py)
    shared_addresses: Mapping[str, tuple[str, ...]] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        lines = self.lines.values()
        counts = Counter([line.phone for line in lines if line.phone])
        counts.update([line.email for line in lines if line.email])
        twice = {address for address, n in counts.items() if n > 1}
        owners: dict[str, list[str]] = {}
        for line in lines if twice else ():
            for address in (line.phone, line.email):
                if address in twice:
                    owners.setdefault(address, []).append(line.id)
        object.__setattr__(self, "shared_addresses", MappingProxyType({a: tuple(ids) for a, ids in owners.items()}))

    def ancestors(self, node: NodeRef) -> tuple[NodeRef, ...]:
        """Parents from nearest to farthest: line -> segment? -> device -> cabinet? -> exchange -> region."""
        chain: list[NodeRef] = []
        if node.level == "line":
            line = self.lines[node.id]
            if line.segment:
                chain.append(NodeRef("segment", line.segment))
            node = NodeRef("device", line.device)
            chain.append(node)
        elif node.level == "segment":
            node = NodeRef("device", next(line.device for line in self.lines.values() if line.segment == node.id))
            chain.append(node)
        if node.level == "device":
            device = self.devices[node.id]
            if device.cabinet:
                chain.append(NodeRef("cabinet", device.cabinet))
            node = NodeRef("exchange", device.exchange)
            chain.append(node)
        elif node.level == "cabinet":
            exchange = next(d.exchange for d in self.devices.values() if d.cabinet == node.id)
            node = NodeRef("exchange", exchange)
            chain.append(node)
        if node.level == "exchange":
            chain.append(NodeRef("region", self.exchanges[node.id].region))
        return tuple(chain)


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """Planned work: alerts inside `scope` are suppressed from start to end + grace."""

    id: str
    scope: tuple[NodeRef, ...]  # topology nodes and/or single lines
    start: float
    end: float
    reason: str = ""
    grace: float = 900.0


EventAction = Literal["ack", "owner", "note", "close", "status"]  # status: the helpdesk's, read from its ticket


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    """What the NOC did with an incident (monitord/incident_actions.py), kept with who and when."""

    tracking: str
    action: EventAction
    actor: str
    at: float
    text: str = ""  # the new owner ("": given back), the note, why it was closed, the ticket's status
    source: Literal["noc", "helpdesk"] = "noc"  # helpdesk: read back from the ticket (monitord/rtsync.py)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """A change made through the web console (monitord/console.py): who, with which role, when, what."""

    actor: str
    role: str
    at: float
    action: str  # ack, owner, note, silence, sign_in, sign_out, ...
    target: str  # the incident's tracking number, the silence's id, or ""
    detail: str = ""


SILENCED = math.inf  # the `not_before` of an item a silence holds (notices/silences.py): never due by itself


@dataclass(frozen=True, slots=True)
class Silence:
    """The NOC's mute (notices/silences.py): tickets, NOC e-mail and Alertmanager pushes of the
    incidents it matches are held from start to end; customers are told as usual."""

    id: str
    nodes: tuple[NodeRef, ...]  # incidents rooted at one of these or below it (empty: any)
    matchers: tuple[tuple[str, str], ...]  # (label, value): region, exchange, device, kind ids (all must match)
    start: float
    end: float
    author: str
    comment: str
    created_at: float
    expired_by: str | None = None  # who ended it early through the API


# --- probes -> rules ---------------------------------------------------------------------------


class Outcome(enum.Enum):
    """What a probe saw. A silent device is data, not an exception."""

    OK = "ok"
    TIMEOUT = "timeout"  # no answer within timeout x retries
    UNREACHABLE = "unreachable"  # the network said no (EHOSTUNREACH, EPERM, ENOBUFS)
    AUTH_FAILURE = "auth_failure"  # wrong community / v3 credentials: the device is alive
    AGENT_ERROR = "agent_error"  # error-status in the PDU, malformed or looping replies
    NOT_FOUND = "not_found"  # the agent answered but has no row for this line
    NO_TABLE = "no_table"  # the agent answered but has none of the profile's tables (wrong profile?)


NO_VALUES: Mapping[str, float] = MappingProxyType({})


class Sample(NamedTuple):
    """One observation of one target (a device or a line) by one probe.

    `values` are in natural units (dB, dBm, dBmV, bit/s, ms) named as in the line profiles
    (e.g. "snr_margin_down_db"); counters arrive already turned into rates per second.
    A named tuple, not a frozen dataclass: a million lines make a million of these a round,
    and a tuple is built in less than half the time (0.7 µs, not 1.7).
    """

    target: NodeRef
    probe: str  # "icmp", or "snmp:<profile>"
    at: float
    outcome: Outcome
    values: Mapping[str, float] = NO_VALUES
    detail: str = ""


# --- rules -> store / notifiers ----------------------------------------------------------------


class Status(enum.Enum):
    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"
    UNREACHABLE = "unreachable"  # a parent is down
    CPE = "cpe"  # the modem is silent while the head-end sees the line in sync: customer premises
    UNKNOWN = "unknown"
    MAINTENANCE = "maintenance"


@dataclass(frozen=True, slots=True)
class LineState:
    node: NodeRef
    status: Status
    since: float
    reasons: tuple[str, ...] = ()  # e.g. ("snr_margin_down_db 4.2 <= 6",)


class IncidentKind(enum.Enum):
    OUTAGE = "outage"
    DEGRADATION = "degradation"
    OVERRUN = "overrun"  # still down after a maintenance window closed
    CPE = "cpe"  # a silent modem on a line in sync: the customer's side, not the network's


class Phase(enum.Enum):
    OPEN = "open"
    UPDATED = "updated"
    RECOVERING = "recovering"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Incident:
    tracking: str  # e.g. ARZ-2026-000123: what customers and the helpdesk quote
    kind: IncidentKind
    root: NodeRef
    phase: Phase
    opened_at: float
    updated_at: float
    affected: frozenset[str]  # line ids
    evidence: tuple[str, ...]
    resolved_at: float | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    """One outbox item. `key` makes it idempotent: the same key is never sent twice."""

    key: str  # e.g. "ARZ-2026-000123/sms/+905321234567/outage"
    channel: Literal["sms", "email", "ticket", "alert"]
    recipient: str  # E.164 number, e-mail address, or the tracking number for tickets and alerts
    action: str  # sms/email: the phase (outage, update, restored, maintenance...); ticket: create/comment/resolve/reopen
    subject: str
    body: str
    incident: str | None = None  # tracking number
    error: str | None = None  # why this item's text could not be built: it is dead on arrival, never sent
    route: str | None = None  # which of the channel's destinations: a ticket's RT queue (notifiers.receivers); None: the default


ChannelCause = Literal["credentials", "forbidden", "config"]  # what the operator must fix on a refused channel
HoldCause = Literal[ChannelCause, "unavailable"]  # unavailable: the peer keeps failing (5xx, 429, refused)

# Why a delivery attempt failed: the `reason` label of the outbox's failure counters, kept small
# and bounded like a poll failure's. An attempt that will be retried fails as a RetryReason, an
# item given up as a DeadReason; a refused channel's causes hold it instead (ChannelHold).
RetryReason = Literal[
    "timeout",  # no answer in time
    "unreachable",  # connection refused or reset, no DNS name, the session broke off
    "rate_limited",  # HTTP 429
    "server_error",  # HTTP 5xx, SMTP 4xx
    "not_ready",  # the ticket to update is not there yet
    "bad_answer",  # an answer that cannot be read (not JSON, no id)
    "notifier_bug",  # an unexpected exception in the notifier
    "other",
]
DeadReason = Literal[
    "rejected",  # the peer refused this item: HTTP 4xx, SMTP 5xx, an invalid number or mailbox
    "bad_answer",
    "config",  # the peer's setup lacks what monitord needs for this item (RT's tracking field)
    "expired",  # older than the channel's max_age
    "template_error",  # its text could not be built (dead on arrival), or is not what the channel takes
]
FailureReason = Literal[RetryReason, DeadReason, ChannelCause]


@dataclass(frozen=True, slots=True)
class ChannelHold:
    """A channel held by the outbox, or just released, as the NOC is told about it."""

    channel: str
    cause: HoldCause
    reason: str  # the peer's words, secrets and customer addresses removed
    since: float  # wall clock, when the hold began
    released: bool
    waiting: int  # items queued on the channel
