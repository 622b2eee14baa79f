"""POST /sms/inbound: the SMS customers send us, through Twilio's messaging webhook (issue 12).

Served on the tracking listener (monitord/track_http.py), the one that faces the internet, when
`tracking.public_url` is set. Twilio signs each request (`X-Twilio-Signature`: an HMAC of the
URL it posted to and the form, keyed by the account's auth token); the signature is checked by
the twilio library's `RequestValidator` against `public_url` plus the path and query, since
behind a TLS-terminating proxy the URL this process sees is not the one Twilio signed. A request
without a valid signature gets 403 and nothing is read further.

A signed message is answered on the daemon's loop, where the state lives (`SmsDesk`): it is read
(notices/inbound.py), what it asks is looked up, and the message (by its MessageSid), the
sender's opt-out, opt-in, answer to "does it work?" (with the follow-up tickets a "no" opens,
notices/confirm.py) or score of the repair and the replies are written in one transaction; a
replay of the same MessageSid finds it and changes nothing. Replies go out through the outbox
like every other SMS (docs/decisions.md says why not as TwiML): Twilio gets an empty `<Response/>`.

The answers are counted per region of the subscriber's line in the same transaction (the
store's `answer_tally`, which the pruning of old answers leaves alone); the desk keeps a copy of
those few counts for /metrics, read at start and again after each answer taken, so a scrape
reads no table.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from aiohttp import web
from twilio.request_validator import RequestValidator

from monitord.model import Incident, Line, LineState, NodeRef, Topology
from monitord.phone import normalize_phone
from monitord.stages import Part, Stage, StageTable, line_back
from monitord.store import InboundRecord, Store
from monitord.track_page import merged_into, normalize, number_pattern
from notices.confirm import LineEvidence, followup
from notices.inbound import Command, Facts, Question, Told, answer, read
from notices.plan import Planned, PlanSettings, place

log = logging.getLogger("monitord.sms")

SMS_PATH = "/sms/inbound"
MAX_FORM = 32 * 1024  # bytes of a form: Twilio's 1,600 characters of Turkish, percent-encoded, and its other fields
_SID = re.compile(r"(SM|MM)[0-9a-fA-F]{32}")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


@dataclass(frozen=True, slots=True)
class InboundSms:
    sid: str  # MessageSid
    phone: str  # From, E.164
    text: str  # Body


class DeskConfig(Protocol):
    @property
    def topology(self) -> Topology: ...
    @property
    def tracking_prefix(self) -> str: ...
    @property
    def stages(self) -> StageTable: ...


class Desk(Protocol):
    """What answering an SMS needs of the daemon (`Daemon` is one)."""

    @property
    def config(self) -> DeskConfig: ...
    @property
    def store(self) -> Store: ...
    def open_incidents(self) -> list[Incident]: ...
    def plan_settings(self) -> PlanSettings: ...
    def set_sms_opted_out(self, phones: frozenset[str]) -> None: ...
    def wake_outbox(self) -> None: ...
    def line_state(self, line_id: str) -> LineState: ...
    def now(self) -> float: ...


_phones: tuple[Topology, Mapping[str, list[Line]]] | None = None


def _index(topology: Topology) -> Mapping[str, list[Line]]:
    global _phones
    if _phones is None or _phones[0] is not topology:
        index: dict[str, list[Line]] = {}
        for line in topology.lines.values():
            if line.phone:
                index.setdefault(line.phone, []).append(line)
        _phones = (topology, index)
    return _phones[1]


async def lines_by_phone(topology: Topology) -> Mapping[str, list[Line]]:
    """The inventory's lines by phone, built once per inventory (a reload makes a new one) in a
    worker thread: 82 ms for 100,000 lines, too long to hold the loop."""
    if _phones is not None and _phones[0] is topology:
        return _phones[1]
    return await asyncio.to_thread(_index, topology)


def told(incident: Incident, stage: Stage) -> Told:
    return Told(incident.tracking, {"tr": stage.name("tr"), "en": stage.name("en")})


def answer_region(incident: Incident | None, lines: Sequence[Line], topology: Topology) -> str:
    """Where an answer about `incident` is counted: the region of the phone's line it affected (of
    the phone's first line when none is known to: the incident was pruned); "" for a phone the
    inventory no longer has."""
    mine = [line for line in lines if incident is not None and line.id in incident.affected] or lines
    device = topology.devices.get(mine[0].device) if mine else None
    return topology.exchanges[device.exchange].region if device else ""


class SmsDesk:
    """Answers inbound SMS on the daemon's loop, one at a time per message."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.tally = desk.store.answer_tally()  # (region, answer) -> answers taken ever, for /metrics

    def facts(self, message: InboundSms, command: Command, now: float, phones: Mapping[str, list[Line]]) -> Facts:
        config, store = self.desk.config, self.desk.store
        lines = phones.get(message.phone, [])
        facts = Facts(message.sid, message.phone, now, lines)
        if command.kind in ("yes", "no", "number"):
            found = store.open_question(message.phone)
            question = Question(found[0], "survey" if found[1] == "survey" else "confirm") if found else None
            return replace(facts, question=question)
        if command.kind != "status":
            return facts
        if command.argument is not None:
            tracking = normalize(command.argument, number_pattern(config.tracking_prefix))
            if tracking is None:
                return facts
            incident = store.incident(tracking)
            if incident is None:
                return replace(facts, well_formed=True)
            into = merged_into(incident)
            shown = (store.incident(into) if into else None) or incident
            stage = config.stages.of_number(incident, shown, store.helpdesk_stage(shown.tracking))
            return replace(facts, well_formed=True, asked=told(incident if stage.done else shown, stage))
        return replace(facts, open=self._own(sorted(line.id for line in lines)))

    def _own(self, ids: Sequence[str]) -> list[Told]:
        """What DURUM from a known phone tells: each incident of its lines in that subscriber's own
        stage (monitord/stages.py `of_subscriber`), newest first; then the resolved incidents whose
        follow-up ticket still says their line is not right."""
        table, store = self.desk.config.stages, self.desk.store
        mine = [i for i in self.desk.open_incidents() if not i.affected.isdisjoint(ids)]
        shown = {i.tracking: (i, next(n for n in ids if n in i.affected)) for i in sorted(mine, key=lambda i: -i.opened_at)}
        for tracking, line in store.followups_of(ids):
            if tracking not in shown and (incident := store.incident(tracking)) is not None:
                shown[tracking] = (incident, line)
        result = []
        for incident, line in shown.values():
            part = Part(
                line in incident.affected,
                line_back(incident.kind, self.desk.line_state(line).status),
                store.followup_stage(incident.tracking, line),
            )
            stage = table.of_subscriber(table.current(incident, store.helpdesk_stage(incident.tracking)), part)
            if line in incident.affected or not stage.done:
                result.append(told(incident, stage))
        return result

    def followups(self, tracking: str, lines: Sequence[Line], settings: PlanSettings) -> list[Planned]:
        """A follow-up ticket for each of `lines` (the phone's) the incident affected, with what is known of it."""
        incident, topology = self.desk.store.incident(tracking), self.desk.config.topology
        if incident is None:
            return []
        mine = [line for line in lines if line.id in incident.affected]
        return [
            followup(
                tracking,
                LineEvidence(
                    line, place(topology, NodeRef("line", line.id)).label, self.desk.line_state(line.id), incident.evidence
                ),
                settings,
            )
            for line in mine
        ]

    async def take(self, message: InboundSms) -> bool:
        """Answer `message` once; False when its MessageSid was taken before (a replay)."""
        command, now = read(message.text), self.desk.now()
        settings = self.desk.plan_settings()
        facts = self.facts(message, command, now, await lines_by_phone(self.desk.config.topology))
        reply = answer(command, facts, settings)
        tickets = self.followups(reply.works[0], facts.lines, settings) if reply.works and not reply.works[1] else []
        store, answered = self.desk.store, reply.works or reply.score
        region = answer_region(store.incident(answered[0]), facts.lines, self.desk.config.topology) if answered else ""
        async with store.turn:
            record = InboundRecord(message.sid, message.phone, command.name, now)
            recorded = store.record_inbound(
                record, reply.opted_out, reply.replies + tickets, now, reply.works, reply.score, region
            )
            if recorded and answered:
                self.tally = store.answer_tally()
        if not recorded:
            log.info("inbound SMS %s again: a replay, nothing done", message.sid)
            return False
        if reply.opted_out is not None:
            self.desk.set_sms_opted_out(store.sms_opt_outs())
        log.info("inbound SMS %s read as %s; %d replies queued", message.sid, command.kind, len(reply.replies))
        self.desk.wake_outbox()
        return True


class Inbound(Protocol):
    def sms_token(self) -> str | None: ...
    async def inbound_sms(self, message: InboundSms) -> bool: ...


@dataclass(slots=True)
class RefusedLog:
    """One line a minute about refused webhooks, with how many were not logged: a flood of forged
    requests must not flood the log."""

    every: float = 60.0
    last: float = float("-inf")
    unlogged: int = 0

    def refused(self, remote: str | None, now: float) -> None:
        if now - self.last < self.every:
            self.unlogged += 1
            return
        more = f"; {self.unlogged} more since the last such line" if self.unlogged else ""
        log.warning("inbound SMS refused: no valid X-Twilio-Signature (from %s%s)", remote, more)
        self.last, self.unlogged = now, 0


def _plain(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text + "\n", content_type="text/plain")


def inbound_handler(
    public_url: str,
    source: Callable[[web.Request], Inbound],
    on_loop: Callable[[web.Request, Callable[[], Coroutine[Any, Any, bool]]], Awaitable[bool]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The webhook's handler; `on_loop` runs the answer where the daemon's state lives."""
    refusals = RefusedLog()

    async def handle(request: web.Request) -> web.Response:
        try:
            form = await request.post()
        except web.HTTPException as error:  # 413 past MAX_FORM
            return _plain(error.status, error.reason)
        desk = source(request)
        token = desk.sms_token()
        signature = request.headers.get("X-Twilio-Signature", "")
        if not token or not signature or not RequestValidator(token).validate(public_url + request.path_qs, form, signature):
            refusals.refused(request.remote, time.monotonic())
            return _plain(403, "Forbidden: the request is not signed by Twilio for this URL")
        sid, sender, text = form.get("MessageSid", ""), form.get("From", ""), form.get("Body", "")
        if not (isinstance(sid, str) and _SID.fullmatch(sid) and isinstance(sender, str) and isinstance(text, str)):
            return _plain(400, "Bad request: MessageSid, From and Body are required")
        try:
            phone = normalize_phone(sender)
        except ValueError:
            return _plain(400, "Bad request: From is not a phone number")
        message = InboundSms(sid, phone, text)
        await on_loop(request, lambda: desk.inbound_sms(message))
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")

    return handle
