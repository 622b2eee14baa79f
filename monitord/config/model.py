"""The checked configuration: small frozen dataclasses whose field defaults are the defaults."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path

from monitord.config.problems import Problem
from monitord.model import MaintenanceWindow, Secret, SnmpAuth, StateServer, Topology
from monitord.stages import StageTable
from notices.segments import Encoding
from notices.templates import Templates
from probes.profiles import Profile
from rules.config import RulesConfig

LINE_FIELDS: tuple[str, ...] = (
    "id",
    "name",
    "phone",
    "email",
    "language",
    "device",
    "port",
    "mac",
    "modem",
    "sms_opt_out",
    "prefer_email",
    "serial",
    "address",
    "lat",
    "lon",
    "segment",
)
REQUIRED_LINE_FIELDS: tuple[str, ...] = ("id", "name", "device")
SECRET_HINT = "use {env: NAME} or {file: path}"


@dataclass(frozen=True, slots=True)
class HttpConfig:
    host: str = "127.0.0.1"
    port: int = 9177
    token: Secret | None = None  # bearer token for state-changing calls


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    name: str
    role: str  # noc, helpdesk or readonly (monitord/console_auth.py ROLES)
    password: str | None  # the scrypt line `monitord passwd` prints; None: signs in only through the proxy


@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    """The web console on the API's listener (monitord/console.py)."""

    users: Mapping[str, ConsoleUser]
    session: float = 8 * 3600.0  # seconds a session lasts from sign-in
    secure_cookie: bool = False  # the session cookie only over https (behind a TLS proxy)
    proxy_header: str | None = None  # a trusted proxy's header naming the signed-in user
    trusted_proxies: tuple[str, ...] = ()  # the addresses whose proxy_header is believed


@dataclass(frozen=True, slots=True)
class SnmpSettings:
    timeout: float = 2.0
    retries: int = 1
    auths: Mapping[str, SnmpAuth] = field(default_factory=dict)
    walk_timeout: float = 30.0  # a walk still going after this ends with AGENT_ERROR
    walk_max_requests: int = 5_000


@dataclass(frozen=True, slots=True)
class PollingConfig:
    icmp_interval: float = 30.0
    line_interval: float = 60.0
    optical_interval: float = 3600.0
    jitter: float = 0.1  # fraction of the interval
    max_in_flight: int = 256
    per_device_in_flight: int = 2
    icmp_timeout: float = 1.0
    icmp_count: int = 3
    job_timeout: float | None = None  # None: Config.job_timeout derives it from the SNMP budgets


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Per-line series multiply the scrape by the inventory: off by default, capped when on."""

    per_line: bool = False
    per_line_limit: int = 10_000
    listen: tuple[str, int] | None = None  # a listener of its own for /metrics; None: on http.listen only
    ticket_link: str | None = None  # monitord_open_incident's `ticket` label; "{tracking}" is replaced


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    """How long finished history is kept before it is pruned (seconds)."""

    sent: float = 30 * 86400.0  # delivered notifications, from when they were sent
    dead: float = 90 * 86400.0  # dead letters, from when they were queued
    resolved_incidents: float = 90 * 86400.0  # from when they were resolved


DEFAULT_HISTORY_METRICS: tuple[str, ...] = (
    "snr_margin_down_db",
    "snr_margin_up_db",
    "attenuation_down_db",
    "rate_down_bps",
    "rate_up_bps",
    "errored_seconds_per_s",
    "resyncs_per_s",
    "ds_power_dbmv",
    "ds_snr_db",
    "us_rx_power_dbmv",
    "onu_rx_power_dbm",
    "olt_rx_power_dbm",
    "rx_power_dbm",
)


@dataclass(frozen=True, slots=True)
class HistoryConfig:
    """Line quality over time (monitord/line_history.py): how long each roll-up is kept
    (seconds), which metrics, and when a line counts as drifting or flapping."""

    five_minutes: float = 7 * 86400.0
    hourly: float = 90 * 86400.0
    metrics: tuple[str, ...] = DEFAULT_HISTORY_METRICS  # empty: no roll-ups at all
    drift_margin: float = 3.0  # in the level's unit (dB): a line this close to a threshold is drifting
    flap_changes: int = 3  # a line that went bad this often in 24 h is flapping


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """How `--role poller` processes share the inventory (monitord/poller_role.py): by lease on
    shards (one per exchange, or per region), writing each shard's samples in batches."""

    shard_by: str = "exchange"  # or "region"
    lease: float = 10.0  # seconds a claim on a shard lasts unless renewed
    batch_every: float = 1.0  # seconds between a shard's batches
    batch_samples: int = 5000  # ... or a batch as soon as this many samples wait
    resend: float = 3600.0  # a line's sample that changes nothing its rules see is still written this often (rules/changes.py)
    advertise: str | None = None  # the URL the other nodes forward the API to while this process leads
    notifier_listen: tuple[str, int] | None = None  # a --role notifier worker's own listener (none by default)


@dataclass(frozen=True, slots=True)
class TrapsConfig:
    """SNMP traps and informs, only ever a reason to recheck their device at once. The rates bound
    the datagrams examined (per sending device and from all together), so a flood costs little."""

    host: str
    port: int
    sender_rate: float = 0.2  # per second from one device: a burst, then one every 5 s
    sender_burst: int = 5
    rate: float = 100.0  # per second from all devices together
    burst: int = 500


@dataclass(frozen=True, slots=True)
class TrackingConfig:
    """The customers' tracking page (monitord/track_http.py), rate limited per client address."""

    host: str
    port: int
    rate: float = 0.5  # pages a second per client address, after the burst
    burst: int = 10
    trusted_proxies: tuple[str, ...] = ()  # whose X-Forwarded-For names the client
    public_url: str | None = None  # the base URL Twilio posts inbound SMS to: set, POST /sms/inbound is served


@dataclass(frozen=True, slots=True)
class RetryConfig:
    """How a channel retries (`notifiers.<channel>.retry`): a notice that fails alone backs off
    up to `max_backoff`; a peer that keeps failing is probed with one notice every `probe_every`."""

    max_backoff: float = 60.0
    probe_every: float = 5.0


@dataclass(frozen=True, slots=True)
class SmsConfig:
    kind: str = "twilio"  # or "http"
    account_sid: str | None = None  # twilio
    auth_token: Secret | None = None  # twilio
    from_: str | None = None  # twilio, E.164
    base_url: str = "https://api.twilio.com"
    url: str | None = None  # http: where to POST
    sender: str | None = None  # http
    body: str = "form"  # http: or "json"
    fields: Mapping[str, str] = field(default_factory=dict)  # http: our name -> the gateway's
    params: Mapping[str, str] = field(default_factory=dict)  # http: constant fields
    reference: str | None = "id"  # http: the answer's key with the message id
    auth: str = "none"  # http: basic, bearer or fields
    username: str | None = None
    password: Secret | None = None
    token: Secret | None = None
    encoding: Encoding = "gsm7"
    transliterate: bool = False
    segments: int | None = None  # budget `check` enforces; None: warn above 1
    rate: float = 1.0  # messages per second
    in_flight: int | None = None  # None: rate x 0.25 s, at least 4 (a gateway answering in 250 ms keeps the rate)
    quiet_hours: tuple[time, time] | None = None  # local time in Config.timezone; may wrap midnight
    update_after: float = 7200.0
    confirm_after: float | None = None  # ask "does it work?" this long after a restoration SMS; None: never
    survey: bool = False  # answer a "yes" with the satisfaction survey, "1 to 5?"
    notify_degradation: bool = False
    non_mobile: str = "error"  # or "skip": a subscriber number no SMS can reach is a warning, its line gets none
    retry: RetryConfig = RetryConfig()

    @property
    def sends_in_flight(self) -> int:
        """`in_flight`, else a quarter second of the rate (at least 4)."""
        return self.in_flight or max(4, math.ceil(self.rate * 0.25))


@dataclass(frozen=True, slots=True)
class EmailConfig:
    host: str
    from_: str
    port: int = 587
    starttls: bool = True
    tls: bool = False
    username: str | None = None
    password: Secret | None = None
    noc: tuple[str, ...] = ()
    retry: RetryConfig = RetryConfig()


@dataclass(frozen=True, slots=True)
class StageSyncConfig:
    """`notifiers.tickets.stage_sync` (RT only): the helpdesk's stages read back (monitord/rtsync.py)."""

    every: float = 30.0  # one poll of RT this often
    custom_field: str = "Stage"  # the ticket custom field the helpdesk writes a stage in
    status: Mapping[str, str] = field(default_factory=dict)  # RT status -> stage id
    owner: str | None = None  # the stage of a ticket someone took (owner other than Nobody)
    max_backoff: float = 300.0  # a failing RT is asked again after 2x, 4x ... `every`, at most this


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    """`notifiers.tickets.dispatch`: a fault a field team must go to gets a ticket of its own (notices/dispatch.py)."""

    queue: str | None = None  # rt: the field team's queue; webhook: none (the webhook gets the ticket)
    delay: float = 600.0  # an incident this young sends no truck: most faults that clear by themselves do so sooner
    stage: str = "field_team"  # the stage of an incident whose dispatch ticket someone took


@dataclass(frozen=True, slots=True)
class TicketConfig:
    kind: str  # "rt" or "webhook"
    url: str
    queue: str | None = None  # rt only
    token: Secret | None = None
    username: str | None = None  # basic auth, instead of a token
    password: Secret | None = None
    body_template: str | None = None  # webhook only
    retry: RetryConfig = RetryConfig()
    comment_every: float = 600.0  # at most one comment per incident this often (0: no limit)
    stage_sync: StageSyncConfig | None = None  # None: the helpdesk's stages are not read back
    dispatch: DispatchConfig | None = None  # None: no dispatch tickets


@dataclass(frozen=True, slots=True)
class AlertmanagerConfig:
    url: str
    resend: float = 60.0  # an open incident's alert is pushed again this often (endsAt: 4 x this after a push)
    timeout: float = 10.0
    ticket_link: str | None = None  # "{tracking}" is replaced by the tracking number
    token: Secret | None = None
    username: str | None = None
    password: Secret | None = None
    retry: RetryConfig = RetryConfig()


@dataclass(frozen=True, slots=True)
class CpeNotices:
    """Who hears of a silent modem on a line in sync (the customer's side, docs/decisions.md)."""

    customers: bool = True  # one notice about the modem, outside quiet hours
    ticket: bool = False
    noc: bool = False  # NOC e-mail


@dataclass(frozen=True, slots=True)
class NotifiersConfig:
    sms: SmsConfig | None = None
    email: EmailConfig | None = None
    tickets: TicketConfig | None = None
    alertmanager: AlertmanagerConfig | None = None
    noc_routes: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (region id, NOC e-mail instead of email.noc)
    ticket_routes: tuple[tuple[str, str], ...] = ()  # (region id, RT queue instead of tickets.queue)
    hold_probe: float = 60.0  # a channel whose credentials are refused: one item tried this often
    cpe: CpeNotices = CpeNotices()

    @property
    def routed_queues(self) -> tuple[str, ...]:
        """The RT queues items are routed to besides `tickets.queue`: the regions' and the field team's."""
        dispatch = self.tickets.dispatch if self.tickets else None
        field_queue = (dispatch.queue,) if dispatch is not None and dispatch.queue else ()
        return tuple(dict.fromkeys((*(queue for _, queue in self.ticket_routes), *field_queue)))


@dataclass(frozen=True, slots=True)
class Config:
    source: Path
    state_file: Path | None  # the SQLite file, unless `state_server` holds the state
    tracking_prefix: str
    timezone: str
    http: HttpConfig
    snmp: SnmpSettings
    polling: PollingConfig
    topology: Topology
    rules: RulesConfig
    profiles: Mapping[str, Profile]  # the built-in line profiles and those in profiles_dir, by name
    notifiers: NotifiersConfig
    maintenance: tuple[MaintenanceWindow, ...]
    profiles_dir: Path | None = None  # extra line profiles, <name>.yaml, beside the built-in ones
    metrics: MetricsConfig = MetricsConfig()
    retention: RetentionConfig = RetentionConfig()
    history: HistoryConfig = HistoryConfig()
    traps: TrapsConfig | None = None  # None: no trap receiver
    tracking: TrackingConfig | None = None  # None: no tracking page
    console: ConsoleConfig | None = None  # None: no web console
    warnings: tuple[Problem, ...] = ()  # what `check` shows but does not refuse
    templates: Templates = field(default_factory=dict, repr=False)  # built in, with templates_dir's over them
    templates_dir: Path | None = None
    state_server: StateServer | None = None  # `state: postgresql://...`
    cluster: ClusterConfig = ClusterConfig()  # the roles of several processes on a PostgreSQL state
    stages: StageTable = StageTable()  # `stages:`, in order

    @property
    def state(self) -> Path | StateServer:
        """Where the state lives (what `Store.open` takes, and what messages name)."""
        if self.state_server is not None:
            return self.state_server
        assert self.state_file is not None  # load_config requires one of the two
        return self.state_file

    @property
    def job_timeout(self) -> float:
        """How long a polling job may run before the scheduler cancels it: as configured, or a
        walk's whole time budget plus three requests with their retries (the liveness check,
        the sysUpTime GET and a walk request sent just before the walk's deadline)."""
        if self.polling.job_timeout is not None:
            return self.polling.job_timeout
        return self.snmp.walk_timeout + 3 * self.snmp.timeout * (self.snmp.retries + 1)
