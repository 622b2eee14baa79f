"""The NOC's work on an incident: acknowledge it, take it (an owner), write notes, close it by
hand with a reason. Pure: what a POSTed body means, whether the action is refused, and how the
record reads in the API.

Each action is a row of its own (`incident_events`, with who and when), never an overwrite, so
the incident's page shows who acknowledged it, every change of owner and every note in order.
Refused, with nothing recorded: an unknown incident (404); acknowledging or taking a resolved one,
or acknowledging one already acknowledged (409: the first acknowledgement stands, with its
author); closing a resolved one (409); an empty or too long `by`, owner, note or reason (400).
A note may be written on a resolved incident: the post-mortem belongs with it. What a close does
to the incident, its ticket and its customers is the rules engine's (rules/lifecycle.py
`Book.close`, docs/decisions.md). What the helpdesk did in its ticket is recorded here too, with
`source` "helpdesk" (monitord/rtsync.py): an owner set or given back (""), and a `status` event
when it ended the ticket (resolved, rejected, deleted) while the incident is open, or opened it
again after that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args
from zoneinfo import ZoneInfo

from monitord.model import EventAction, Incident, IncidentEvent, Phase

TICKET_ENDED = frozenset({"resolved", "rejected", "deleted"})  # RT's statuses that end a ticket
MAX_BY = 64  # characters of a user name
MAX_NOTE = 2000
MAX_REASON = 500
FIELDS: dict[EventAction, tuple[str, ...]] = {
    "ack": ("by",),
    "owner": ("owner", "by"),
    "note": ("note", "by"),
    "close": ("reason", "by"),
}
TEXT_FIELDS: dict[EventAction, tuple[str, int]] = {  # the field an action's text is in, and its length at most
    "owner": ("owner", MAX_BY),
    "note": ("note", MAX_NOTE),
    "close": ("reason", MAX_REASON),
}


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int  # 400, 404 or 409
    message: str


def parse_event(action: EventAction, tracking: str, body: Any, now: float) -> IncidentEvent | Refusal:
    """The event a POSTed JSON object asks for, or why it is refused (400, the field named)."""
    assert action in get_args(EventAction)
    if not isinstance(body, dict):
        return Refusal(400, f"body: expected a JSON object with {', '.join(FIELDS[action])}")
    unknown = sorted(set(body) - set(FIELDS[action]))
    if unknown:
        return Refusal(400, f"{unknown[0]}: unknown field; known: {', '.join(FIELDS[action])}")
    by = body.get("by")
    if not isinstance(by, str) or not 0 < len(by.strip()) <= MAX_BY:
        return Refusal(400, f"by: expected who does it, 1 to {MAX_BY} characters")
    text = ""
    if action != "ack":
        name, limit = TEXT_FIELDS[action]
        given = body.get(name)
        if not isinstance(given, str) or not given.strip():
            return Refusal(400, f"{name}: required, a non-empty string")
        if len(given) > limit:
            return Refusal(400, f"{name}: at most {limit} characters, not {len(given)}")
        text = given.strip()
    return IncidentEvent(tracking, action, by.strip(), now, text)


def refusal(incident: Incident | None, events: Sequence[IncidentEvent], event: IncidentEvent) -> Refusal | None:
    """Why `event` cannot be recorded on `incident` (None: unknown) given its `events`, if it cannot."""
    if incident is None:
        return Refusal(404, f"no incident {event.tracking!r}")
    if event.action == "note":
        return None
    if incident.phase is Phase.RESOLVED:
        return Refusal(409, f"incident {incident.tracking} is resolved: it can no longer be acknowledged, taken or closed")
    acked = next((e for e in events if e.action == "ack"), None)
    if event.action == "ack" and acked is not None:
        return Refusal(409, f"incident {incident.tracking} was already acknowledged by {acked.actor}")
    return None


def event_json(event: IncidentEvent, zone: str) -> dict[str, Any]:
    return {"action": event.action, "by": event.actor, "at": _iso(event.at, zone), "text": event.text, "source": event.source}


def workflow_json(events: Sequence[IncidentEvent], zone: str) -> dict[str, Any]:
    """What the incident's page shows: who acknowledged it, who owns it now, who closed it by hand
    and why, and every action."""
    acked = next((e for e in events if e.action == "ack"), None)
    owner = current_owner(events)
    closed = next((e for e in reversed(events) if e.action == "close"), None)
    ended = ticket_ended(events)
    return {
        "acknowledged": None if acked is None else {"by": acked.actor, "at": _iso(acked.at, zone)},
        "owner": None
        if owner is None
        else {"name": owner.text, "by": owner.actor, "at": _iso(owner.at, zone), "source": owner.source},
        "closed": None if closed is None else {"by": closed.actor, "at": _iso(closed.at, zone), "reason": closed.text},
        "ticket_ended": None if ended is None else {"status": ended.text, "by": ended.actor, "at": _iso(ended.at, zone)},
        "events": [event_json(e, zone) for e in events],
    }


def current_owner(events: Sequence[IncidentEvent]) -> IncidentEvent | None:
    """The last change of owner, from the NOC or the helpdesk; None: nobody (never taken, or given back)."""
    last = next((e for e in reversed(events) if e.action == "owner"), None)
    return last if last is not None and last.text else None


def ticket_ended(events: Sequence[IncidentEvent]) -> IncidentEvent | None:
    """The helpdesk's last status event, when it says the ticket was ended (resolved, rejected, deleted)."""
    last = next((e for e in reversed(events) if e.action == "status"), None)
    return last if last is not None and last.text in TICKET_ENDED else None


def _iso(at: float, zone: str) -> str:
    return datetime.fromtimestamp(at, ZoneInfo(zone)).isoformat(timespec="seconds")
