"""Remote diagnosis of one subscriber, for the helpdesk while the customer is on the phone.

Fresh looks, all at once and within a deadline even when everything is silent: ICMP to the modem
and to its head-end, an SNMP read of the line's row on the head-end, then what monitoring already
knows (states, open incidents, maintenance windows). `verdict()` turns those facts into a cause
and human-readable evidence; it is pure, so its policy is tested as a table.

    ok           the line is in sync and the modem answers
    maintenance  a planned window covers the line right now
    outage       an open outage incident is rooted above the head-end (cabinet, exchange, region)
    device       the head-end itself does not answer
    line         the head-end has no row for the line, or the row says out of sync or degraded
    config       the head-end has none of a profile's tables (a wrong profile for the device), so
                 it cannot tell whether the line is in sync; `problems` says what to fix
    modem        the head-end sees the line in sync but the modem is silent (CPE side)
    unknown      the facts do not tell the line from the modem apart
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Literal, TypeVar
from zoneinfo import ZoneInfo

from monitord.model import Device, Incident, IncidentKind, Line, LineState, MaintenanceWindow, NodeRef, Outcome, Status
from probes.icmp import Pinger, PingResult
from probes.profiles import SYS_UPTIME, Profile, absent, combine, decode, decode_cells, line_key
from probes.snmp import Oid, SnmpClient
from probes.snmpbase import Target
from rules.checks import RuleSet, Threshold

if TYPE_CHECKING:
    from monitord.view import View

T = TypeVar("T")
Cause = Literal["ok", "maintenance", "outage", "device", "line", "config", "modem", "unknown"]

DEADLINE = 4.0  # seconds for all fresh looks together: the answer must come within 5 s
PING_COUNT = 3
PING_TIMEOUT = 1.0
_SILENT = (Outcome.TIMEOUT, Outcome.UNREACHABLE)
_OUTAGES = (IncidentKind.OUTAGE, IncidentKind.OVERRUN)


@dataclass(frozen=True, slots=True)
class Clients:
    """The daemon's own SNMP and ICMP clients: a diagnosis looks through them, sharing their limits."""

    snmp: SnmpClient
    pinger: Pinger


@dataclass(frozen=True, slots=True)
class Ping:
    address: str
    outcome: Outcome  # OK (any reply), TIMEOUT or UNREACHABLE
    sent: int
    received: int
    rtt_ms: float | None = None  # the fastest reply
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Row:
    """The line's row in one line profile on the head-end, read just now (gauges only)."""

    profile: str
    outcome: Outcome  # OK, NOT_FOUND (no row), NO_TABLE (no such table on the agent) or why the read failed
    values: Mapping[str, float] = field(default_factory=dict)
    down: tuple[str, ...] = ()  # the row itself says out of sync (oper_up 0, cm_status ...)
    degraded: tuple[str, ...] = ()  # thresholds crossed by these very values
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything the verdict looks at; built by `diagnose`, or by hand in tests."""

    line: Line
    device: Device
    chain: tuple[NodeRef, ...]  # the line's ancestors, nearest first
    modem: Ping | None  # None: no modem address in the inventory
    head_end: Ping | None
    rows: tuple[Row, ...]  # empty when the head-end has no SNMP access
    line_state: LineState
    device_state: LineState
    incidents: tuple[Incident, ...]  # open ones on the line or rooted at or above its device
    windows: tuple[MaintenanceWindow, ...]  # covering the line now
    at: float
    timezone: str = "UTC"


@dataclass(frozen=True, slots=True)
class Verdict:
    cause: Cause
    summary: str
    evidence: tuple[str, ...]
    tracking: str | None = None  # the incident the helpdesk should quote
    problems: tuple[str, ...] = ()  # configuration to fix, in the style of `monitord check`


@dataclass(frozen=True, slots=True)
class Diagnosis:
    facts: Facts
    verdict: Verdict
    timings_ms: Mapping[str, float]


# --- the verdict (pure) ------------------------------------------------------------------------


def verdict(f: Facts) -> Verdict:
    """The most likely cause, from the outside in: planned work, an area outage, the head-end,
    the line, the modem."""
    evidence = _evidence(f)
    device_ref = NodeRef("device", f.line.device)
    above = set(f.chain) - {device_ref}  # its segment, if it has one, is an area above the line too
    outage_above = next((i for i in f.incidents if i.root in above and i.kind in _OUTAGES), None)
    own = next((i for i in f.incidents if f.line.id in i.affected), None)
    at_device = next((i for i in f.incidents if i.root == device_ref and i.kind in _OUTAGES), None)
    in_sync = any(r.outcome is Outcome.OK and not r.down for r in f.rows)
    faulty = [r for r in f.rows if r.outcome is Outcome.NOT_FOUND or r.down or r.degraded]
    misfit = [r for r in f.rows if r.outcome is Outcome.NO_TABLE]
    problems = tuple(_problem(f.device.id, r) for r in misfit)
    modem_silent = f.modem is not None and f.modem.outcome is not Outcome.OK
    if f.rows:
        head_end_silent = all(r.outcome in _SILENT for r in f.rows)
    else:
        head_end_silent = f.head_end is not None and f.head_end.outcome is not Outcome.OK

    if f.windows:
        w = f.windows[0]
        why = f" ({w.reason})" if w.reason else ""
        summary = f"Planned maintenance {w.id} covers this line until {_time(w.end, f.timezone)}{why}."
        return Verdict("maintenance", summary, evidence, own.tracking if own else None, problems)
    if outage_above is not None:
        summary = f"An outage at {outage_above.root} affects this line; quote {outage_above.tracking}."
        return Verdict("outage", summary, evidence, outage_above.tracking, problems)
    if head_end_silent:
        cited = at_device or own
        summary = f"The head-end {f.device.id} does not answer: the fault is at the exchange side, not the subscriber."
        return Verdict("device", summary, evidence, cited.tracking if cited else None, problems)
    if faulty:
        summary = "The line itself is faulty at the head-end: " + _line_trouble(faulty[0]) + "."
        return Verdict("line", summary, evidence, own.tracking if own else None, problems)
    if misfit and not in_sync:
        profiles = ", ".join(r.profile for r in misfit)
        modem = "" if f.modem is None else " The modem does not answer." if modem_silent else " The modem answers."
        summary = (
            f"The head-end {f.device.id} has no {profiles} table, so it cannot tell whether the line is in sync: "
            f"the device's line profile looks wrong (see problems).{modem}"
        )
        return Verdict("config", summary, evidence, own.tracking if own else None, problems)
    if modem_silent and in_sync:
        summary = "The line is in sync at the head-end but the modem does not answer: a CPE-side problem (modem, power, cabling at home)."
        return Verdict("modem", summary, evidence, own.tracking if own else None, problems)
    if modem_silent:
        summary = (
            "The modem does not answer and no head-end row shows whether the line is in sync: line or modem cannot be told apart."
        )
        return Verdict("unknown", summary, evidence, own.tracking if own else None, problems)
    if f.line_state.status is Status.DEGRADED:
        summary = "The line answers now but monitoring sees it degraded: " + "; ".join(f.line_state.reasons) + "."
        return Verdict("line", summary, evidence, own.tracking if own else None, problems)
    if not in_sync and f.modem is None:
        summary = "Neither a modem address nor a readable head-end row: nothing fresh to judge the line by."
        return Verdict("unknown", summary, evidence, own.tracking if own else None, problems)
    return Verdict(
        "ok", "No fault found: the line is in sync and the modem answers.", evidence, own.tracking if own else None, problems
    )


def judge_row(values: Mapping[str, float], rules: RuleSet, now: float) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(down reasons, degraded reasons) of one fresh row: the `down` rules, and the thresholds as
    if their `for` hold had passed. Rates, flaps and drifts need history, so only monitoring sees
    them. A row that is down is not degraded as well: out of sync, DSL reads 0 dB everywhere."""
    down = tuple(r for rule in rules.downs if rule.metric in values and (r := rule.down(values[rule.metric])))
    if down:
        return down, ()
    degraded = []
    for check in rules.checks:
        if isinstance(check, Threshold) and check.metric in values:
            instant = replace(check, hold=0.0)
            reason = instant.firing(instant.feed(instant.initial(), values[check.metric], now))
            if reason:
                degraded.append(reason)
    return down, tuple(degraded)


def covering(
    windows: list[MaintenanceWindow], line: str, chain: tuple[NodeRef, ...], now: float
) -> tuple[MaintenanceWindow, ...]:
    """The windows in force now (start to end + grace) whose scope holds the line or a node above it."""
    nodes = {NodeRef("line", line), *chain}
    return tuple(w for w in windows if w.start <= now < w.end + w.grace and nodes & set(w.scope))


def _evidence(f: Facts) -> tuple[str, ...]:
    found: list[str] = []
    for window in f.windows:
        scope = ", ".join(map(str, window.scope))
        reason = f": {window.reason}" if window.reason else ""
        found.append(f"maintenance {window.id} on {scope} until {_time(window.end, f.timezone)}{reason}")
    for inc in f.incidents:
        found.append(
            f"open incident {inc.tracking}: {inc.kind.value} at {inc.root}, {len(inc.affected)} lines, "
            f"since {_time(inc.opened_at, f.timezone)}"
        )
    if f.modem is None:
        found.append("no modem address in the inventory: the modem was not pinged")
    else:
        found.append(_ping_text(f"modem {f.modem.address}", f.modem))
    if f.head_end is not None:
        found.append(_ping_text(f"head-end {f.device.id} ({f.head_end.address})", f.head_end))
    for row in f.rows:
        found.append(_row_text(row, f.device.id))
    if not f.rows and f.device.snmp is None:
        found.append(f"head-end {f.device.id} has no SNMP access: no line row to read")
    found.append(_state_text("line", f.line_state, f.timezone))
    found.append(_state_text(f"head-end {f.device.id}", f.device_state, f.timezone))
    return tuple(found)


def _ping_text(who: str, ping: Ping) -> str:
    if ping.outcome is Outcome.OK:
        return f"{who} answered {ping.received}/{ping.sent} pings, best {ping.rtt_ms:.1f} ms"
    if ping.outcome is Outcome.UNREACHABLE:
        return f"{who} unreachable: {ping.detail}"
    return f"{who} did not answer {ping.sent} pings"


def _row_text(row: Row, device: str) -> str:
    where = f"{row.profile} on {device}"
    if row.outcome is Outcome.NOT_FOUND:
        return f"{where}: no row for this line"
    if row.outcome is Outcome.NO_TABLE:
        return f"{where}: {row.detail}: the line cannot be judged by this profile"
    if row.outcome is not Outcome.OK:
        return f"{where}: could not read the row ({row.outcome.value}{': ' + row.detail if row.detail else ''})"
    if row.down or row.degraded:
        return f"{where}: {_line_trouble(row)}"
    shown = ", ".join(f"{name} {value:.4g}" for name, value in sorted(row.values.items())[:6])
    return f"{where}: row in sync" + (f" ({shown})" if shown else "")


def _line_trouble(row: Row) -> str:
    if row.outcome is Outcome.NOT_FOUND:
        return f"{row.profile}: no row for this line"
    return f"{row.profile}: " + "; ".join(("out of sync: " + r for r in row.down) if row.down else row.degraded)


def _problem(device: str, row: Row) -> str:
    what = row.detail.removeprefix(f"profile {row.profile}: ")
    return (
        f"device {device}: profiles: {row.profile}: {what} "
        f"(hint: give {device} the profile its agent serves, or remove {row.profile}; then `monitord check` and reload)"
    )


def _state_text(who: str, state: LineState, zone: str) -> str:
    text = f"monitoring: {who} is {state.status.value}"
    if state.since:
        text += f" since {_time(state.since, zone)}"
    return text + (f" ({'; '.join(state.reasons)})" if state.reasons else "")


def _time(at: float, zone: str) -> str:
    return datetime.fromtimestamp(at, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


# --- the fresh looks (I/O) ---------------------------------------------------------------------


async def diagnose(view: View, clients: Clients, line_id: str, deadline: float = DEADLINE) -> Diagnosis:
    """Look at one subscriber now through `clients`, and at what the daemon knows of it; every look
    gives up at `deadline` seconds, so a silent modem or head-end costs at most that."""
    topology = view.config.topology
    line = topology.lines[line_id]
    device = topology.devices[line.device]
    timings: dict[str, float] = {}
    started = time.perf_counter()
    end = started + deadline

    async def within(name: str, look: Awaitable[T], fallback: T) -> T:
        try:
            async with asyncio.timeout(max(0.0, end - time.perf_counter())):
                return await look
        except TimeoutError:
            return fallback
        finally:
            timings[name] = round((time.perf_counter() - started) * 1000, 1)

    addresses = [a for a in (line.modem, device.address) if a]
    late = {a: PingResult(a, PING_COUNT, 0, ()) for a in addresses}
    profiles = [view.profiles[name] for name in device.profiles] if device.snmp else []
    silent = f"no answer within {deadline:g} s"
    rows = [
        within(f"snmp:{p.name}", read_row(clients.snmp, device, p, key), Row(p.name, Outcome.TIMEOUT, detail=silent))
        for p in profiles
        if (key := line_key(p, line)) is not None
    ]
    pings, read = await asyncio.gather(
        within("icmp", clients.pinger.sweep(addresses, PING_COUNT, PING_TIMEOUT), late), asyncio.gather(*rows)
    )
    timings["total"] = round((time.perf_counter() - started) * 1000, 1)

    await view.between_steps()  # the engine's state below is read with its lock free
    now = view.clock()
    judged = []
    for row in read:
        down, degraded = judge_row(row.values, view.rules.ruleset(row.profile), now)
        judged.append(replace(row, down=down, degraded=degraded))
    chain = topology.ancestors(NodeRef("line", line.id))
    facts = Facts(
        line=line,
        device=device,
        chain=chain,
        modem=_ping(pings[line.modem]) if line.modem else None,
        head_end=_ping(pings[device.address]),
        rows=tuple(judged),
        line_state=view.line_state(line.id),
        device_state=view.node_state(NodeRef("device", line.device)),
        incidents=tuple(i for i in view.open_incidents() if line.id in i.affected or i.root in chain),
        windows=covering([w.window for w in view.maintenance()], line.id, chain, now),
        at=now,
        timezone=view.config.timezone,
    )
    return Diagnosis(facts, verdict(facts), timings)


async def read_row(client: SnmpClient, device: Device, profile: Profile, key: str) -> Row:
    """The row's gauges: one GET by instance OID when the table is indexed by port alone, else a
    walk of the gauge columns. Counters are left out: one reading gives no rate. A row missing
    from the GET costs a walk as well, to tell a missing row from a table the agent lacks."""
    gauges = [c for c in profile.columns() if c.kind == "gauge"]
    target = Target.of(device)
    by_get = _by_port(profile) and key.isdigit()
    if by_get:
        oids: list[Oid] = [SYS_UPTIME, *(c.oid + (int(key),) for c in gauges)]
        result = await client.get(target, oids)
        if result.outcome is not Outcome.OK:
            return Row(profile.name, result.outcome, detail=result.detail)
        decoded = decode(profile, result.varbinds)
    if not by_get or key not in decoded.keys:
        keys = [t.key_oid for t in profile.tables if t.key_oid]
        walked = await client.walk(target, list(dict.fromkeys([*keys, *(c.oid for c in gauges)])), profile.max_repetitions)
        if walked.outcome is not Outcome.OK:
            return Row(profile.name, walked.outcome, detail=walked.detail)
        decoded = decode_cells(profile, walked.cells)
    if not decoded.served:
        return Row(profile.name, Outcome.NO_TABLE, detail=absent(profile))
    if key not in decoded.keys:
        return Row(profile.name, Outcome.NOT_FOUND, detail=f"no row {key!r}")
    values = combine(profile, decoded.runs).get(key, {})
    return Row(profile.name, Outcome.OK, values)


def _by_port(profile: Profile) -> bool:
    return all(t.key_oid is None and [p.kind for p in t.index] == ["port"] for t in profile.tables)


def _ping(result: PingResult) -> Ping:
    if result.received:
        return Ping(result.address, Outcome.OK, result.sent, result.received, min(result.rtt_ms))
    outcome = Outcome.UNREACHABLE if result.error else Outcome.TIMEOUT
    return Ping(result.address, outcome, result.sent, 0, None, result.error or "")
