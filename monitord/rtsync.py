"""The helpdesk's stages, read back from Request Tracker by polling its REST 2.0 API with a cursor.

Why polling and not an RT scrip calling monitord: docs/decisions.md. Each poll asks RT for the
queue's tickets updated at or after the cursor (the latest `LastUpdated` taken), least recent
first, at most MAX_PAGES pages of PER_PAGE tickets; the rest wait for the next poll. RT counts
in whole seconds, so the cursor's own second is read again: that is safe because recording a
stage is idempotent (`Store.set_stage` writes a row only when the helpdesk's stage of the
incident changes). A ticket's stage (`ticket_stage`, pure) is its `Stage` custom field (a
stage's id, name or helpdesk word), else what `stage_sync.status` maps its status to, else
`stage_sync.owner` when someone took it. `resolved` is the engine's to say: a helpdesk that
resolves a ticket does not tell customers their service is back.

A follow-up ticket (tracking value `<incident>/<line>`, notices/confirm.py) speaks for its one
subscriber, not for the incident (`followup_stage`): its stages are recorded by incident and line
(`Store.set_subscriber_stage`), also after the incident resolved (that is when such tickets are
opened), and its end in RT too, as "resolved", which the subscriber is shown only once the
engine sees their line up (monitord/stages.py `of_subscriber`).

The same poll reads who owns each ticket and its status (`ticket_state`), and compares them with
what the ticket had when last read (`Store.helpdesk_ticket`); what the sync records queues
nothing for the ticket, so nothing read from RT is ever sent back to it. While the incident is open:

* an owner set or given back ("Nobody") in RT is recorded as the incident's (an `owner` event,
  source "helpdesk", by RT's LastUpdatedBy; "" for nobody) when it is not already the incident's
  owner, so monitord's own change of owner (monitord/workflow.py), read back, is not recorded again;
* a ticket the helpdesk ends (resolved, rejected, deleted) is recorded as a `status` event, and so
  is opening it again after that: the NOC sees a ticket closed on a fault that goes on. The
  incident stays open (the engine alone says a line is back: customers are never told "restored"
  by a helpdesk's click). monitord sets a status only when its incident resolves or reopens, and
  its items still waiting in the outbox mean the ticket has not caught up: nothing is recorded
  from a ticket with such items (its status is read again on its next update).

A failing RT is asked again after doubling waits, up to `max_backoff`, and logged when it
starts failing and when it answers again, not on every poll; its errors come through
notifiers/rt.py, which masks the credentials. The polls run on the daemon's loop as one more
task: waiting on RT never holds the probes, and each write takes the store's `turn`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from monitord.config.model import Config, StageSyncConfig
from monitord.incident_actions import TICKET_ENDED, current_owner, ticket_ended
from monitord.model import Incident, IncidentEvent, Phase
from monitord.stages import PartChange, Stage, StageChange, StageTable
from monitord.store import Store
from notices.confirm import followed_up
from notices.dispatch import dispatched_incident
from notices.plan import Planned
from notifiers.base import DeliveryError
from notifiers.rt import TRACKING_FIELD, RequestTracker, user_id

log = logging.getLogger("monitord.rtsync")

CURSOR = "rt"  # the store's name for this sync's cursor
PER_PAGE = 100
MAX_PAGES = 5  # tickets taken per poll: at most MAX_PAGES * PER_PAGE
SAID_MAX = 50_000  # tickets whose last stage is remembered

FAILURES: tuple[type[Exception], ...] = (DeliveryError, ValueError, TypeError, AttributeError)
"""What a poll may meet but the store refusing: RT down or refusing, an answer not shaped as RT's."""
Plan = Callable[[Incident, Stage, float, str | None], list[Planned]]
"""A stage's customer notices, or with a line that subscriber's own (notices/plan.py `stage_notices`)."""


@dataclass(frozen=True, slots=True)
class TicketStage:
    ticket: str
    tracking: str
    stage: Stage
    actor: str  # who set it: the owner for an owner's stage, else the ticket's last updater
    updated: datetime  # RT's LastUpdated
    line: str | None = None  # a follow-up ticket's line: the stage is that subscriber's, not the incident's


def rt_time(last_updated: Any) -> datetime | None:
    """RT's LastUpdated (2026-12-04T18:42:00Z); None when it is not one."""
    try:
        return datetime.strptime(str(last_updated), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def cursor_text(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True, slots=True)
class TicketState:
    tracking: str
    owner: str  # "": nobody (RT's "Nobody")
    status: str  # RT's: new, open, stalled, resolved, rejected, deleted
    actor: str  # the ticket's last updater
    updated: datetime  # RT's LastUpdated


def _custom_fields(item: Mapping[str, Any]) -> dict[str, list[Any]]:
    fields: dict[str, list[Any]] = {}
    for custom in item.get("CustomFields") or []:
        if isinstance(custom, Mapping):
            fields[str(custom.get("name"))] = list(custom.get("values") or [])
    return fields


def _tracking(fields: Mapping[str, list[Any]]) -> str | None:
    return next((str(v).strip() for v in fields.get(TRACKING_FIELD, []) if str(v).strip()), None)


def ticket_state(item: Mapping[str, Any]) -> TicketState | None:
    """Who owns one ticket of the search and its status, or None (no tracking number, not RT's answer)."""
    tracking, updated = _tracking(_custom_fields(item)), rt_time(item.get("LastUpdated"))
    if tracking is None or updated is None:
        return None
    owner = user_id(item.get("Owner"))
    actor = user_id(item.get("LastUpdatedBy")) or "helpdesk"
    status = str(item.get("Status") or "")
    return TicketState(tracking, "" if owner == "Nobody" else owner, status, actor, updated)


def ticket_stage(
    item: Mapping[str, Any], table: StageTable, sync: StageSyncConfig, dispatch_stage: str | None = None
) -> TicketStage | None:
    """The stage one ticket of the search says its incident is in, or None (no tracking number, no stage).

    A dispatch ticket (tracking value `<number>/saha`, notices/dispatch.py) speaks for its
    incident: its Stage field if set, else `dispatch_stage` once someone took it; its status
    says nothing (the field team closing its ticket is not the incident's end)."""
    fields = _custom_fields(item)
    tracking = _tracking(fields)
    updated = rt_time(item.get("LastUpdated"))
    if tracking is None or updated is None:
        return None
    incident = dispatched_incident(tracking)
    if incident is None and followed_up(tracking) is not None:
        return None  # a follow-up ticket: `followup_stage`
    taken = dispatch_stage if incident is not None else sync.owner
    stage, actor = _said(item, fields, table, sync, incident is None, taken)
    tracking = incident or tracking
    return None if stage is None else TicketStage(str(item.get("id")), tracking, stage, actor, updated)


def followup_stage(item: Mapping[str, Any], table: StageTable, sync: StageSyncConfig) -> TicketStage | None:
    """The stage a follow-up ticket says its subscriber is in; None for any other ticket.

    Ended in RT (resolved, rejected, deleted): "resolved". Else as an incident's ticket says it
    (its Stage field, its status, `stage_sync.owner` once taken), and "detected" while it says
    nothing: the subscriber's fault is known again, nobody is on it yet."""
    fields = _custom_fields(item)
    tracking, updated = _tracking(fields), rt_time(item.get("LastUpdated"))
    if tracking is None or updated is None or dispatched_incident(tracking) is not None:
        return None
    if (part := followed_up(tracking)) is None:
        return None
    if str(item.get("Status") or "") in TICKET_ENDED:
        stage, actor = table.by_id["resolved"], user_id(item.get("LastUpdatedBy")) or "helpdesk"
    else:
        said, actor = _said(item, fields, table, sync, True, sync.owner)
        stage = said or table.by_id["detected"]
    return TicketStage(str(item.get("id")), part[0], stage, actor, updated, part[1])


def _said(
    item: Mapping[str, Any],
    fields: Mapping[str, list[Any]],
    table: StageTable,
    sync: StageSyncConfig,
    status: bool,
    taken: str | None,
) -> tuple[Stage | None, str]:
    """A ticket's stage and who set it: its Stage field, else its status (when `status` counts),
    else `taken` once someone owns it."""
    actor = user_id(item.get("LastUpdatedBy")) or "helpdesk"
    said = next((str(v) for v in fields.get(sync.custom_field, []) if str(v).strip()), None)
    stage = table.from_helpdesk(said) if said else None
    if stage is None and status and (mapped := sync.status.get(str(item.get("Status") or ""))) is not None:
        stage = table.by_id.get(mapped)
    owner = user_id(item.get("Owner"))
    if stage is None and taken is not None and owner not in ("", "Nobody"):
        stage, actor = table.by_id.get(taken), owner
    return stage, actor


class StageSync:
    """Polls RT (`run`) and records the stages its tickets set, each with the customer notices
    `plan` makes of it in the same transaction (so a crash loses neither or both); `wake`: the
    outbox, when some were queued."""

    def __init__(
        self,
        rt: RequestTracker,
        sync: StageSyncConfig,
        table: StageTable,
        store: Store,
        clock: Callable[[], float],
        plan: Plan | None = None,
        wake: Callable[[], None] | None = None,
        dispatch_stage: str | None = None,
    ) -> None:
        """`dispatch_stage`: the stage a taken dispatch ticket sets (`tickets.dispatch.stage`)."""
        self.rt, self.sync, self.table, self.store, self.clock = rt, sync, table, store, clock
        self.plan, self.wake, self.dispatch_stage = plan, wake, dispatch_stage
        self.failing: str | None = None  # the last error, while RT fails
        self.said: dict[str, str] = {}  # RT ticket id -> the stage it said when last read (see _record)

    async def poll(self) -> int:
        """One pass over what changed since the cursor; returns how many stages and owners were recorded."""
        since = self.store.cursor(CURSOR) or self._first_cursor()
        latest, recorded = since, 0
        for page in range(1, MAX_PAGES + 1):
            items, pages = await self.rt.updated_since(since, page, PER_PAGE)
            for item in items:
                found = followup_stage(item, self.table, self.sync) or ticket_stage(
                    item, self.table, self.sync, self.dispatch_stage
                )
                if found is not None:
                    recorded += await self._record(found)
                if (state := ticket_state(item)) is not None:
                    recorded += await self._record_ticket(state)
                if (updated := rt_time(item.get("LastUpdated"))) is not None:
                    latest = max(latest, cursor_text(updated))
            if page >= pages or not items:
                break
        if latest != since:
            async with self.store.turn:
                self.store.put_cursor(CURSOR, latest)
        return recorded

    def _first_cursor(self) -> str:
        """No cursor yet: from the oldest open incident (a ticket older than that has nothing to say)."""
        opened = [i.opened_at for i in self.store.incidents()]
        return cursor_text(datetime.fromtimestamp(min(opened, default=self.clock()), UTC))

    async def _record(self, found: TicketStage) -> int:
        """A ticket counts when the stage it says changes: an incident with two tickets (its own
        and its dispatch ticket) would otherwise flip back to the stage of whichever was updated
        last, and monitord's own comments update the incident's ticket."""
        if self.said.get(found.ticket) == found.stage.id:
            return 0
        incident = self.store.incident(found.tracking)
        if incident is None:
            return 0
        now, at = self.clock(), found.updated.timestamp()
        if found.line is not None:  # a follow-up: its subscriber's stage, the incident resolved or not
            notices = self.plan(incident, found.stage, now, found.line) if self.plan is not None else []
            async with self.store.turn:
                recorded = self.store.set_subscriber_stage(
                    PartChange(found.tracking, found.line, found.stage.id, "helpdesk", found.actor, at), notices, now
                )
        elif incident.phase is Phase.RESOLVED or found.stage.done:
            return 0
        else:
            notices = self.plan(incident, found.stage, now, None) if self.plan is not None else []
            async with self.store.turn:
                recorded = self.store.set_stage(
                    StageChange(found.tracking, found.stage.id, "helpdesk", found.actor, at), notices, now
                )
        self.said.pop(found.ticket, None)
        self.said[found.ticket] = found.stage.id
        while len(self.said) > SAID_MAX:
            del self.said[next(iter(self.said))]  # the ticket read longest ago
        if not recorded:
            return 0
        whose = found.tracking if found.line is None else f"{found.tracking}, line {found.line}"
        log.info("%s: stage %s, set by %s in RT ticket %s", whose, found.stage.id, found.actor, found.ticket)
        if notices and self.wake is not None:
            self.wake()
        return 1

    async def _record_ticket(self, found: TicketState) -> int:
        """The ticket's owner and status, recorded on its open incident when they changed in RT (module docstring)."""
        async with self.store.turn:
            last = self.store.helpdesk_ticket(found.tracking)
            if last == (found.owner, found.status):
                return 0
            incident = self.store.incident(found.tracking)
            if incident is None:
                return 0  # not one of ours
            last_owner, last_status = last or ("", "")
            status = found.status
            events: list[IncidentEvent] = []
            at = found.updated.timestamp()
            if incident.phase is not Phase.RESOLVED:
                earlier = self.store.incident_events(found.tracking)
                owner = current_owner(earlier)
                if found.owner != last_owner and found.owner != (owner.text if owner else ""):
                    events.append(IncidentEvent(found.tracking, "owner", found.actor, at, found.owner, "helpdesk"))
                if status != last_status and (status in TICKET_ENDED or ticket_ended(earlier) is not None):
                    if self.store.ticket_in_flight(found.tracking):
                        status = last_status  # monitord's own change may be on its way: judged on the next update
                    else:
                        events.append(IncidentEvent(found.tracking, "status", found.actor, at, status, "helpdesk"))
            self.store.put_helpdesk_ticket(found.tracking, found.owner, status, events)
        for event in events:
            log.info("%s: %s %r, set by %s in RT", found.tracking, event.action, event.text, found.actor)
        return len(events)

    async def run(self) -> None:
        wait = self.sync.every
        while True:
            try:
                await self.poll()
            except (*FAILURES, *self.store.errors) as error:
                said = str(error)
                if self.failing is None:
                    log.warning("reading stages from RT failed, tried again with a growing wait: %s", said)
                self.failing = said
                wait = min(wait * 2, max(self.sync.max_backoff, self.sync.every))
            else:
                if self.failing is not None:
                    log.info("reading stages from RT works again")
                self.failing, wait = None, self.sync.every
            await asyncio.sleep(wait)

    async def close(self) -> None:
        await self.rt.close()


def stage_sync_for(
    config: Config,
    store: Store,
    clock: Callable[[], float],
    plan: Plan | None = None,
    wake: Callable[[], None] | None = None,
) -> StageSync | None:
    """The sync `notifiers.tickets.stage_sync` asks for, with an RT client of its own; None without one."""
    t = config.notifiers.tickets
    if t is None or t.kind != "rt" or t.stage_sync is None:
        return None
    routed = config.notifiers.routed_queues  # the regions' queues and the field team's: their tickets set stages too
    rt = RequestTracker(t.url, t.queue or "General", token=t.token, username=t.username, password=t.password, routed=routed)
    dispatch_stage = t.dispatch.stage if t.dispatch is not None else None
    return StageSync(rt, t.stage_sync, config.stages, store, clock, plan, wake, dispatch_stage)
