"""The NOC's actions on an incident, recorded (monitord/incident_actions.py says what each means
and when it is refused), each with its ticket's side in the same transaction.

An acknowledgement and a new owner are queued for the helpdesk ticket as outbox items (notices/
plan.py `workflow_ticket`; notifiers/rt.py applies them), never sent from the API's handler: RT
down loses nothing, and a retry queues nothing twice. A close goes through the rules engine,
which owns incidents (`Pipeline.close`): its ticket is resolved by the step it makes. What the
helpdesk changed (an owner set in RT, monitord/rtsync.py) is recorded there, not here, and
queues nothing: a change that came from RT is never echoed back to it.

A stage the webhook helpdesk sets through its callback (`set_stage`) is recorded the same way:
the stage row and its customer notices in one transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitord.incident_actions import Refusal, refusal
from monitord.model import Incident, IncidentEvent
from monitord.stages import PartChange, Stage, StageChange
from notices.plan import stage_notices, workflow_ticket

if TYPE_CHECKING:
    from monitord.pipeline import Pipeline


async def record(pipeline: Pipeline, event: IncidentEvent) -> Refusal | None:
    """Record the NOC's `event`, or say why not."""
    if event.action == "close":
        return await pipeline.close(event)
    store = pipeline.store
    async with store.turn:  # checked and written in one turn: two acknowledgements never both win
        incident = store.incident(event.tracking)
        refused = refusal(incident, store.incident_events(event.tracking), event)
        if refused is not None or incident is None:
            return refused
        now = pipeline.clock()
        tickets = pipeline.config.notifiers.tickets
        set_owner = tickets is not None and tickets.kind == "rt"
        ticket = workflow_ticket(incident, event, pipeline.config.topology, pipeline.settings, now, set_owner=set_owner)
        planned = [ticket] if ticket is not None and "ticket" in pipeline.channels else []
        store.add_incident_event(event, planned, now)
    if planned:
        pipeline.outbox.wake()
    return None


async def set_stage(pipeline: Pipeline, incident: Incident, stage: Stage, actor: str, line: str | None = None) -> bool:
    """The helpdesk's stage of `incident`, or with `line` that subscriber's (their follow-up's);
    False when it was already so."""
    store, now, tracking = pipeline.store, pipeline.clock(), incident.tracking
    notices = stage_notices(incident, stage, pipeline.config.topology, pipeline.settings, now, line)
    async with store.turn:
        if line is None:
            changed = store.set_stage(StageChange(tracking, stage.id, "helpdesk", actor, now), notices, now)
        else:
            changed = store.set_subscriber_stage(PartChange(tracking, line, stage.id, "helpdesk", actor, now), notices, now)
    if changed and notices:
        pipeline.outbox.wake()
    return changed
