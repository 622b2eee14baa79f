"""Which line profiles fit a device, asked of the device itself (`monitord discover`, `check --probe`).

Per device: one GET of sysDescr and sysObjectID; one GETNEXT (up to 16 columns per request) on the
first column of every table that makes lines (a table's MAC key column where lines are found by
MAC; `join` tables such as ifOperStatus never make a line and are not asked): a column has rows
when the next OID is still under it. Then, for each column that has rows, a walk of that column
alone, capped at the client's `max_varbinds` values (LINE_CAP for the CLI), counts the lines each fitting profile would produce: the row
indexes (or MAC keys) parsed as polling parses them.

Device-safe with polling's own limits: the client's timeout, retries and walk budgets, and every
request stream holds one of the `Slots` of its device (polling's `per_device_in_flight`) and one
of all devices' (`max_in_flight`). A device that does not answer the first GET costs that GET
with its retries and nothing more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TypeVar

from monitord.model import Outcome
from probes.ber import Cells
from probes.profiles import Profile, Table, parse_index
from probes.snmp import Oid, SnmpClient, Walked, format_oid
from probes.snmpbase import Target

SYS_DESCR: Oid = (1, 3, 6, 1, 2, 1, 1, 1, 0)
SYS_OBJECT_ID: Oid = (1, 3, 6, 1, 2, 1, 1, 2, 0)
SYS_NAME: Oid = (1, 3, 6, 1, 2, 1, 1, 5, 0)
PER_REQUEST = 16  # columns asked per GETNEXT
LINE_CAP = 10_000  # values walked per column at most when counting lines: the client's max_varbinds

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Fit:
    """A profile that finds rows on the device, and how many lines it would produce."""

    profile: str
    lines: int
    capped: bool = False  # the count stopped at the cap: at least `lines`
    detail: str = ""  # why the count is incomplete, when a walk failed
    keys: frozenset[str] = field(default=frozenset(), repr=False)  # the line keys found (profiles.line_key's)


@dataclass(frozen=True, slots=True)
class Discovery:
    outcome: Outcome  # OK once the device answered every request that decides a fit
    detail: str = ""
    sys_object_id: str = ""
    sys_descr: str = ""
    sys_name: str = ""
    fits: tuple[Fit, ...] = ()
    absent: tuple[str, ...] = ()  # profiles whose tables have no row here
    requests: int = 0

    def fit(self, name: str) -> Fit | None:
        return next((fit for fit in self.fits if fit.profile == name), None)


@dataclass
class Slots:
    """Polling's concurrency limits: `max_in_flight` streams of requests over all devices,
    `per_device_in_flight` on one device."""

    max_in_flight: int = 256
    per_device_in_flight: int = 2
    _all: asyncio.Semaphore | None = field(default=None, init=False)  # made in the running loop
    _devices: dict[str, asyncio.Semaphore] = field(default_factory=dict, init=False)

    async def run(self, device: str, work: Callable[[], Awaitable[T]]) -> T:
        if self._all is None:
            self._all = asyncio.Semaphore(self.max_in_flight)
        one = self._devices.setdefault(device, asyncio.Semaphore(self.per_device_in_flight))
        async with self._all, one:
            return await work()


def first_columns(profile: Profile) -> tuple[Oid, ...]:
    """The columns that tell whether the profile finds rows: per table that makes lines, its
    MAC key column if it has one, else its first column."""
    return tuple(dict.fromkeys(_first(table) for table in profile.tables if not table.join))


def _first(table: Table) -> Oid:
    return table.key_oid or table.columns[0].oid


async def discover(
    client: SnmpClient,
    target: Target,
    profiles: Mapping[str, Profile],
    *,
    slots: Slots | None = None,
) -> Discovery:
    """What `target` says it is and which of `profiles` find rows there, with their line counts.
    Every failure is an outcome on the result (timeout, auth failure, agent error), never raised."""
    slots = slots or Slots()
    device = f"{target.address}:{target.port}"
    answer = await slots.run(device, lambda: client.get(target, [SYS_DESCR, SYS_OBJECT_ID, SYS_NAME]))
    requests = answer.requests
    if answer.outcome is not Outcome.OK:
        return Discovery(answer.outcome, answer.detail, requests=requests)
    scalars = {varbind.oid: varbind.value for varbind in answer.varbinds}
    object_id = scalars.get(SYS_OBJECT_ID)
    found = Discovery(
        Outcome.OK,
        sys_object_id=format_oid(object_id) if isinstance(object_id, tuple) else "",
        sys_descr=_text(scalars.get(SYS_DESCR)),
        sys_name=_text(scalars.get(SYS_NAME)),
    )
    columns = list(dict.fromkeys(oid for profile in profiles.values() for oid in first_columns(profile)))
    batches = [columns[i : i + PER_REQUEST] for i in range(0, len(columns), PER_REQUEST)]
    asked = await asyncio.gather(*(slots.run(device, partial(client.get_next, target, batch)) for batch in batches))
    requests += sum(result.requests for result in asked)
    failed = next((result for result in asked if result.outcome is not Outcome.OK), None)
    if failed is not None:
        return replace(found, outcome=failed.outcome, detail=failed.detail, requests=requests)
    nexts = [varbind.oid for result in asked for varbind in result.varbinds]
    served = {column for column in columns if any(oid[: len(column)] == column and len(oid) > len(column) for oid in nexts)}
    fitting = {name: profile for name, profile in profiles.items() if served & set(first_columns(profile))}
    walked = sorted({column for profile in fitting.values() for column in first_columns(profile)} & served)
    repetitions = {column: max(p.max_repetitions for p in fitting.values() if column in first_columns(p)) for column in walked}

    counted = await asyncio.gather(
        *(slots.run(device, partial(client.walk, target, [column], repetitions[column])) for column in walked)
    )
    walks = dict(zip(walked, counted, strict=True))
    requests += sum(walk.requests for walk in counted)
    fits = tuple(_fit(name, profile, walks, client.max_varbinds) for name, profile in sorted(fitting.items()))
    absent = tuple(sorted(set(profiles) - set(fitting)))
    return replace(found, fits=fits, absent=absent, requests=requests)


def _fit(name: str, profile: Profile, walks: Mapping[Oid, Walked], cap: int) -> Fit:
    """`profile`'s lines from the walks of its first columns: a walk stopped at `cap` values
    (the client's max_varbinds) counts at least that many rows."""
    keys: set[str] = set()
    capped = False
    details = []
    for table in profile.tables:
        walk = walks.get(_first(table))
        if table.join or walk is None:
            continue
        for cells in walk.cells:
            keys.update(_keys(table, cells))
        if walk.outcome is not Outcome.OK and walk.count >= cap:
            capped = True
        elif walk.outcome is not Outcome.OK:
            details.append(f"counting {format_oid(_first(table))}: {walk.outcome.value} {walk.detail}".rstrip())
    if profile.match == "device":
        return Fit(name, 1 if keys else 0, False, "; ".join(details), frozenset(keys))
    return Fit(name, len(keys), capped, "; ".join(details), frozenset(keys))


def _keys(table: Table, cells: Cells) -> Iterable[str]:
    """The line keys of a column's rows, parsed as polling parses them; a MAC key column's values."""
    if table.key_oid is not None:
        for value in cells.values:
            if isinstance(value, bytes) and len(value) == 6:
                yield ":".join(f"{octet:02x}" for octet in value)
        return
    for index in cells.indexes:
        parsed = parse_index(table.index, index)
        if parsed is not None:
            yield parsed[0]  # "" for a row of a `row`-indexed table: the device's one line


def _text(value: object) -> str:
    return value.decode("utf-8", "replace").strip() if isinstance(value, bytes) else ""
