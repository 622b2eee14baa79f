"""Who is told what about an incident change: a pure function from the change to outbox items.

Each item comes with `not_before` (None: send now). Urgency decides quiet hours: an outage or
a maintenance overrun is news the customer is living through, so it goes at once, day or night;
everything else (degradation, "still ongoing", "restored", maintenance notices) waits for the
end of quiet hours. Tickets and NOC e-mail are for staff and always go at once.

Keys make every notice idempotent. A customer notice is keyed by incident, recipient and phase,
so the same subscriber hears "outage" once per incident however often it is promoted, and lines
that move between incidents of one kind in one step (`plan_step`) hear nothing new. What must be
sent again carries the instant of the change that causes it (persisted with the incident, so a
replayed change yields the same key): a reopen re-announces the outage, a line that joins later
("grew") is told under that instant (it may have left with a "restored" and be hit again), and
each "restored" belongs to the resolution (or the shrink) that made it true. A subscriber with
two lines (one phone for home and shop) is one recipient: a line that joins while another of
theirs is in the incident tells them nothing new, and a line that leaves while another is still
in says nothing either (it is not over for them).

One line's own fault (an outage rooted at the line) is told as a fault on the customer's line
("line_outage", "line_update", "line_restored"), never as an outage in their area. A silent
modem on a line in sync (a `cpe` incident, docs/decisions.md) is the customer's side: by default
no ticket and no NOC e-mail (`cpe_ticket`, `cpe_noc`), and one notice about the modem
(`cpe_customers`), never during quiet hours: it is planned when the incident opens outside them,
else by `due_cpe_notices` once they end, if the modem is still silent then. It is told nothing
else: no "restored" when the modem answers again (the customer switched it back on).

Merged incidents: a subscriber only ever hears of a number they were given. When the engine
merges an incident into a wider one ("merged"), its ticket gets a "merged into X" comment and is
resolved, and the subscribers it had told are told that their fault is now followed under the
wider number, which is the number their "restored" will carry: at once, day or night, when it
opened with an urgent notice (outage, overrun); else after quiet hours, like its opening notice.
A region's incident often absorbs the DSLAM and exchange incidents of the same fault within a
second, so an area's outage notice (root below the region, above the line) is held until
`merge_hold` after its incident opened: when the wider incident absorbs it meanwhile, its
customers get the wider incident's outage notice instead of "merged", and the store drops the
held one (monitord/store.py), so they get one outage SMS, with the number they keep.

Severity: a line's own incident moves between outage and degradation under one number (the
rules engine's "severity"). The ticket gets one comment per change; an escalation to outage
tells the customers of the outage, and a de-escalation tells those who are not told of
degradations that the outage is over (so they still hear "restored" once).

A customer is told by SMS, or by e-mail when they have an address and either no phone, an SMS
opt-out or a preference for e-mail (the inventory's `sms_opt_out`, an opt-out the subscriber
texted, `sms_opted_out`, and `prefer_email`). Opting out
of SMS is not opting out of being told: it closes one channel, so a subscriber with an address
still gets e-mail; one without an address hears nothing.

An item whose text cannot be rendered (TemplateError) is still planned, with its usual key,
channel and recipient, empty text and `error` saying why: the store files it as a dead letter,
visible and never sent, and every other item of the step goes out as usual.

Longer than the other modules: the policy above is one set of decisions (who hears what, when,
under which key) and `_Planner` applies it in one place; split, the keys that make notices
idempotent would be spread over files. The NOC's alerts about held channels are apart
(notices/holds.py): they follow a channel, not an incident.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

from monitord.model import Incident, IncidentEvent, IncidentKind, Language, Line, NodeRef, Notification, Phase, Topology
from monitord.stages import Stage
from notices.sms_text import sms_body, sms_fields
from notices.templates import (
    KIND_NAMES,
    LIST_MAX,
    Rendered,
    TemplateError,
    Templates,
    evidence_lines,
    format_duration,
    format_time,
    render,
    subscriber_list,
)
from rules.engine import Closure, IncidentChange


@dataclass(frozen=True, slots=True)
class PlanSettings:
    timezone: str = "Europe/Istanbul"
    quiet_hours: tuple[time, time] | None = None  # local times; may wrap midnight, e.g. 22:00-08:00
    update_after: float = 7200.0
    notify_degradation: bool = False
    noc_emails: tuple[str, ...] = ()
    noc_routes: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (region id, its NOC e-mail instead of noc_emails)
    ticket_routes: tuple[tuple[str, str], ...] = ()  # (region id, its RT queue instead of the notifier's)
    language: Language = "tr"  # tickets and NOC e-mail
    cpe_customers: bool = True  # a silent modem on a line in sync: tell the customer about the modem
    cpe_ticket: bool = False  # ... open a ticket for it
    cpe_noc: bool = False  # ... e-mail the NOC about it
    sms_transliterate: bool = False  # Turkish letters in plain Latin, for a gateway without the Turkish tables
    merge_hold: float = 3.0  # an area's outage notice waits this long: a wider incident may absorb it first
    templates: Templates = field(kw_only=True, repr=False, hash=False)  # monitord/config/templates.py reads them
    sms_opted_out: frozenset[str] = field(default=frozenset(), kw_only=True, repr=False)  # phones that texted an opt-out
    confirm_after: float | None = None  # ask whether service works this long after a restoration SMS (notices/confirm.py)
    survey: bool = False  # a "yes" to that question is answered by the satisfaction survey, "1 to 5?"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


Planned = tuple[Notification, float | None]


@dataclass(frozen=True, slots=True)
class Place:
    """Where a node is, in the words of a helpdesk agent (label) and of a customer (area)."""

    label: str
    region: str
    exchange: str
    area: str


def place(topology: Topology, node: NodeRef) -> Place:
    """Names for `node`; a node gone from the inventory is named by its reference."""
    try:
        chain = (node, *topology.ancestors(node))
        region = next(topology.regions[n.id].name for n in chain if n.level == "region")
    except (KeyError, StopIteration):
        return Place(str(node), "-", "-", str(node))
    exchange = next((topology.exchanges[n.id].name for n in chain if n.level == "exchange"), "-")
    if node.level == "region":
        label = region
    elif node.level == "exchange":
        label = exchange
    elif node.level == "device":
        label = f"{node.id} ({topology.devices[node.id].kind})"
    elif node.level == "line":
        label = f"{topology.lines[node.id].name} ({node.id})"
    else:
        label = str(node)
    return Place(label, region, exchange, region if node.level == "region" else exchange)


def quiet_until(at: float, settings: PlanSettings) -> float | None:
    """The end of the quiet hours `at` falls in, or None when it is not quiet then."""
    if settings.quiet_hours is None:
        return None
    begin, end = settings.quiet_hours
    local = datetime.fromtimestamp(at, settings.tz)
    now = local.time()
    if begin == end:
        return None
    if begin < end:
        inside, day = begin <= now < end, local.date()
    else:
        inside = now >= begin or now < end
        day = local.date() + timedelta(days=1) if now >= begin else local.date()
    return datetime.combine(day, end, tzinfo=settings.tz).timestamp() if inside else None


def quiet_began(at: float, settings: PlanSettings) -> float | None:
    """The start of the quiet hours `at` falls in, or None when it is not quiet then."""
    if quiet_until(at, settings) is None or settings.quiet_hours is None:
        return None
    begin = settings.quiet_hours[0]
    local = datetime.fromtimestamp(at, settings.tz)
    day = local.date() if local.time() >= begin else local.date() - timedelta(days=1)
    return datetime.combine(day, begin, tzinfo=settings.tz).timestamp()


def notification(
    key: str,
    channel: Literal["sms", "email", "ticket"],
    recipient: str,
    action: str,
    incident: str | None,
    text: Callable[[], Rendered],
) -> Notification:
    """The outbox item with its rendered text, or, when the text cannot be rendered, the same item
    carrying the reason, so that one item is dead-lettered and not the whole step."""
    try:
        rendered = text()
    except TemplateError as error:
        return Notification(key, channel, recipient, action, "", "", incident, error=str(error))
    return Notification(key, channel, recipient, action, rendered.subject, rendered.body, incident)


def customer_notice(
    line: Line,
    *,
    template: str,
    phase: str,
    values: dict[str, Any],
    key: str,
    suffix: str = "",
    not_before: float | None,
    settings: PlanSettings,
    incident: str | None,
) -> Planned | None:
    """An SMS or an e-mail to the line's subscriber (which one: see the module docstring), or
    None when they cannot be reached.

    The item's key is `<key>/<channel>/<recipient>/<phase><suffix>`; `key` names the incident or window.
    """
    reached = contact(line, settings)
    if reached is None:
        return None
    channel, recipient = reached
    fields = {**values, "name": line.name}
    if channel == "sms":
        fields = sms_fields(fields)
    item = notification(
        f"{key}/{channel}/{recipient}/{phase}{suffix}",
        channel,
        recipient,
        phase,
        incident,
        lambda: _customer_text(f"{channel}.{template}", line.language, fields, settings),
    )
    return item, not_before


def contact(line: Line, settings: PlanSettings) -> tuple[Literal["sms", "email"], str] | None:
    """The channel and address a line's subscriber is told at, or None when they cannot be reached."""
    texting = line.phone and not line.sms_opt_out and line.phone not in settings.sms_opted_out
    if texting and line.phone and not (line.prefer_email and line.email):
        return "sms", line.phone
    return ("email", line.email) if line.email else None


def _customer_text(name: str, language: Language, fields: dict[str, Any], settings: PlanSettings) -> Rendered:
    rendered = render(name, language, fields, settings.templates)
    if name.startswith("sms."):
        return Rendered(rendered.subject, sms_body(rendered.body, settings.sms_transliterate))
    return rendered


_LINE_PHASES = ("outage", "update", "restored")  # told as the customer's line, not their area


def key_millis(at: float) -> int:
    """An instant as whole milliseconds, the form it takes in notification keys."""
    return round(at * 1000)


class _Planner:
    """The values and builders shared by one change's notices."""

    def __init__(self, incident: Incident, topology: Topology, settings: PlanSettings, now: float) -> None:
        self.incident, self.topology, self.settings, self.now = incident, topology, settings, now
        self.where = place(topology, incident.root)
        lang = settings.language
        end = incident.resolved_at or incident.updated_at
        self.values: dict[str, Any] = {
            "tracking": incident.tracking,
            "kind": KIND_NAMES[lang][incident.kind.value],
            "root": str(incident.root),
            "place": self.where.label,
            "region": self.where.region,
            "exchange": self.where.exchange,
            "area": self.where.area,
            "start": format_time(incident.opened_at, settings.tz, lang),
            "end": format_time(end, settings.tz, lang),
            "at": format_time(incident.updated_at, settings.tz, lang),
            "duration": format_duration(end - incident.opened_at, lang),
            "count": len(incident.affected),
            "evidence": evidence_lines(incident.evidence, lang),
        }
        self.customer_values: dict[Language, dict[str, Any]] = {
            language: {
                "tracking": incident.tracking,
                "area": self.where.area,
                "start": format_time(incident.opened_at, settings.tz, language),
            }
            for language in get_args(Language)
        }

    def subscribers(self, ids: Collection[str]) -> str:
        """The first LIST_MAX of `ids` by name and masked phone: a region's incident has 12,528."""
        lines = self.topology.lines
        first = heapq.nsmallest(LIST_MAX, ids)
        entries = [(i, lines[i].name, lines[i].phone) if i in lines else (i, "?", None) for i in first]
        return subscriber_list(entries, self.settings.language, len(ids))

    def alone(self, ids: Collection[str], joining: Collection[str] = ()) -> set[str]:
        """`ids` but the lines whose subscriber is told at the address of another line in the
        incident (not `joining` it now): someone with two lines in one incident hears of it when
        the first joins and that it is over when the last leaves, not once a line. Looks only
        at the addresses that more than one line has (`Topology.shared_addresses`), so a step
        of a regional incident costs nothing per line it already holds."""
        lines, settings, shared = self.topology.lines, self.settings, self.topology.shared_addresses
        affected = self.incident.affected
        kept = set()
        for i in ids:
            reached = contact(lines[i], settings) if i in lines else None
            others = shared.get(reached[1], ()) if reached else ()
            if not any(j != i and j in affected and j not in joining and contact(lines[j], settings) == reached for j in others):
                kept.add(i)
        return kept

    def with_values(self, extra: dict[str, Any] | None) -> dict[str, Any]:
        """The values of a ticket or NOC text; all the incident's subscribers unless `extra`
        names some (listed only when a text is rendered)."""
        values = {**self.values, **(extra or {})}
        if "subscribers" not in values:
            values["subscribers"] = self.subscribers(self.incident.affected)
        return values

    def render(self, name: str, values: dict[str, Any]) -> Rendered:
        return render(name, self.settings.language, values, self.settings.templates)

    def ticket(
        self,
        action: str,
        template: str,
        key: str,
        extra: dict[str, Any] | None = None,
        *,
        tracking: str | None = None,
    ) -> Planned:
        target = tracking or self.incident.tracking

        def text() -> Rendered:
            values = self.with_values(extra)
            return Rendered(self.render("ticket.create", values).subject, self.render(f"ticket.{template}", values).body)

        item = notification(key, "ticket", target, action, target, text)
        region = self.region() if self.settings.ticket_routes else None
        queue = None if region is None else dict(self.settings.ticket_routes).get(region)
        return (item if queue is None else replace(item, route=queue)), None

    def noc_recipients(self) -> tuple[str, ...]:
        """The NOC e-mail of the incident's region when it is routed (`notifiers.routes`), else `noc_emails`."""
        routes = dict(self.settings.noc_routes)
        region = self.region() if routes else None
        return routes[region] if region is not None and region in routes else self.settings.noc_emails

    def region(self) -> str | None:
        """The region the incident's root is in; None once the root left the inventory."""
        root = self.incident.root
        try:
            return next((n.id for n in (root, *self.topology.ancestors(root)) if n.level == "region"), None)
        except KeyError:
            return None

    def noc(self, event: str, suffix: str = "") -> list[Planned]:
        tracking = self.incident.tracking
        return [
            (
                notification(
                    f"{tracking}/email/{to}/noc-{event}{suffix}",
                    "email",
                    to,
                    f"noc-{event}",
                    tracking,
                    lambda: self.render(f"noc.{event}", self.with_values(None)),
                ),
                None,
            )
            for to in self.noc_recipients()
        ]

    def customers(
        self,
        ids: Iterable[str],
        phase: str | None = None,
        suffix: str = "",
        extra: dict[str, Any] | None = None,
    ) -> list[Planned]:
        """Notices to subscribers `ids`, in the incident's opening phase unless `phase` is given.

        None for incidents whose customers are not told (degradation, unless enabled): those
        get no "restored" or "update" either.
        """
        if self.opening is None:
            return []
        phase = phase or self.opening
        urgent = phase in ("outage", "overrun") or (phase == "merged" and self.opening in ("outage", "overrun"))
        not_before = None if urgent else quiet_until(self.now, self.settings)
        if phase == "outage" and _held(self.incident, self.now, self.settings):
            not_before = self.incident.opened_at + self.settings.merge_hold
        if self.incident.kind is IncidentKind.CPE:
            if phase != "modem" or not_before is not None:
                return []
            suffix = ""  # one notice about the modem per incident, a reopen included
        template = phase
        if self.incident.kind is IncidentKind.OUTAGE and self.incident.root.level == "line" and phase in _LINE_PHASES:
            template = f"line_{phase}"
        lines = self.topology.lines
        tracking = self.incident.tracking
        planned = (
            customer_notice(
                lines[i],
                template=template,
                phase=phase,
                values={**self.customer_values[lines[i].language], **(extra or {})},
                key=tracking,
                suffix=suffix,
                not_before=not_before,
                settings=self.settings,
                incident=tracking,
            )
            for i in sorted(ids)
            if i in lines
        )
        return [p for p in planned if p is not None]

    @property
    def opening(self) -> str | None:
        """The customer notice an incident of this kind opens with, or None if customers are not told."""
        kind = self.incident.kind
        if kind is IncidentKind.DEGRADATION:
            return "degradation" if self.settings.notify_degradation else None
        if kind is IncidentKind.CPE:
            return "modem" if self.settings.cpe_customers else None
        return "overrun" if kind is IncidentKind.OVERRUN else "outage"


def plan_step(
    changes: Sequence[IncidentChange],
    topology: Topology,
    settings: PlanSettings,
    now: float,
    lookup: Callable[[str], Incident | None],
) -> list[Planned]:
    """All notifications of one engine step (see plan).

    A line that leaves one incident and joins another of the same kind in the same step is
    moving (the fault was re-rooted higher up), not recovering nor newly hit: it gets neither
    "restored" nor a second opening notice. So is a line that leaves an outage for a `cpe`
    incident (its area is back, its modem is not): no "restored", the modem notice instead.
    """
    left = {(c.incident.kind, line) for c in changes for line in c.removed}
    joined = {(c.incident.kind, line) for c in changes for line in c.added}
    joined |= {(IncidentKind.OUTAGE, line) for kind, line in joined if kind is IncidentKind.CPE}
    moving = left & joined
    return [
        item
        for c in changes
        for item in plan(c, topology, settings, now, lookup, frozenset(line for kind, line in moving if kind is c.incident.kind))
    ]


def looked_up(changes: Sequence[IncidentChange]) -> set[str]:
    """The incidents `plan_step` asks its `lookup` for (see `plan`): read first where the store
    is, they let the planning run in another thread (monitord/rules_thread.py)."""
    wanted: set[str] = set()
    for change in changes:
        if change.change in ("promoted", "merged", "reopened"):
            wanted.add(change.incident.tracking)
        if change.change == "promoted":
            wanted.update(change.replaces)
    return wanted


def plan(
    change: IncidentChange,
    topology: Topology,
    settings: PlanSettings,
    now: float,
    lookup: Callable[[str], Incident | None],
    moving: frozenset[str] = frozenset(),
) -> list[Planned]:
    """The notifications one incident change causes.

    `lookup` returns an incident as last committed (the store, before this step's commit): it
    tells who a promotion's and a merge's incidents already told, and whether a reopened (or a
    promoted existing) incident had been resolved (customers were told "restored", so they hear
    of the outage again) or was only recovering (they were never told otherwise: no SMS).
    A growth or shrink of devices alone (no subscriber line joined or left) says nothing.
    Every ticket item carries the subject with the current count, which the ticket takes.
    """
    incident = change.incident
    p = _Planner(incident, topology, settings, now)
    tracking, stamp = incident.tracking, key_millis(incident.updated_at)
    out: list[Planned] = []
    match change.change:
        case "opened":
            out.append(p.ticket("create", "create", f"{tracking}/ticket/create"))
            out += p.customers(incident.affected - moving)
            out += p.noc("opened")
        case "grew" if change.added:
            out.append(
                p.ticket(
                    "comment",
                    "grew",
                    f"{tracking}/ticket/grew/{stamp}",
                    {"added_count": len(change.added), "subscribers": p.subscribers(change.added)},
                )
            )
            out += p.customers(p.alone(change.added - moving, change.added), suffix=f"/{stamp}")
        case "shrank" if change.removed:
            out.append(
                p.ticket(
                    "comment",
                    "shrank",
                    f"{tracking}/ticket/shrank/{stamp}",
                    {"removed_count": len(change.removed), "subscribers": p.subscribers(change.removed)},
                )
            )
            out += p.customers(p.alone(change.removed - moving), "restored", f"/{stamp}")
        case "promoted":
            before = lookup(tracking)
            told = _told(change.replaces, incident.kind, lookup, now, settings)
            if before is not None and before.phase in (Phase.RECOVERING, Phase.RESOLVED):
                out.append(p.ticket("reopen", "reopened", f"{tracking}/ticket/reopen/{stamp}"))
            else:
                out.append(p.ticket("create", "create", f"{tracking}/ticket/create"))
            out.append(
                p.ticket(
                    "comment",
                    "promoted",
                    f"{tracking}/ticket/promoted/{stamp}",
                    {"replaces": ", ".join(change.replaces), "subscribers": p.subscribers(change.added)},
                )
            )
            if before is not None and before.phase is Phase.RESOLVED:
                out += p.customers(incident.affected - moving - told, suffix=f"/reopen-{stamp}")
                out += p.noc("reopened", f"/{stamp}")
            elif before is not None and before.phase is Phase.RECOVERING:
                out += p.customers(change.added - moving - told - before.affected, suffix=f"/{stamp}")
                out += p.noc("reopened", f"/{stamp}")
            else:
                out += p.customers(change.added - moving - told)
                out += p.noc("opened")
        case "merged":
            into = change.merged_into or "-"
            out.append(p.ticket("resolve", "merged", f"{tracking}/ticket/merged/{into}", {"into": into}))
            before = lookup(tracking)
            told = (before.affected - _held(before, now, settings)) & incident.affected if before else frozenset()
            out += p.customers(told, "merged", f"/{into}", {"into": into})
        case "recovering":
            out.append(p.ticket("comment", "recovering", f"{tracking}/ticket/recovering/{stamp}"))
        case "resolved":
            resolved = f"/{key_millis(incident.resolved_at or incident.updated_at)}"
            out.append(p.ticket("resolve", "resolved", f"{tracking}/ticket/resolve{resolved}"))
            out += p.customers(incident.affected, "restored", resolved)
            out += p.noc("resolved", resolved)
        case "reopened":
            before = lookup(tracking)
            action = "comment" if before is not None and before.phase is Phase.RECOVERING else "reopen"  # never closed
            out.append(p.ticket(action, "reopened", f"{tracking}/ticket/reopen/{stamp}"))
            if (
                before is None or before.phase is Phase.RESOLVED or change.was is not None
            ):  # told it was over, or news of another kind
                out += p.customers(incident.affected, suffix=f"/reopen-{stamp}")
            out += p.noc("reopened", f"/{stamp}")
        case "severity":
            was = change.was or incident.kind
            out.append(
                p.ticket(
                    "comment",
                    "severity",
                    f"{tracking}/ticket/severity/{stamp}",
                    {"was": KIND_NAMES[settings.language][was.value]},
                )
            )
            if incident.kind is IncidentKind.OUTAGE:
                out += p.customers(incident.affected, suffix=f"/{stamp}")
            elif p.opening is None:  # not told of degradations: for them the outage is over
                out += _Planner(replace(incident, kind=was), topology, settings, now).customers(
                    incident.affected, "restored", f"/{stamp}"
                )
        case "closed_removed":
            out.append(p.ticket("resolve", "closed_removed", f"{tracking}/ticket/closed/{stamp}"))
        case "closed":
            out += _closed_by_hand(p, change.closed or Closure("", ""))
    if incident.kind is IncidentKind.CPE:
        out = [(n, at) for n, at in out if _told_about_cpe(n, settings)]
    return out


def stage_notices(
    incident: Incident, stage: Stage, topology: Topology, settings: PlanSettings, now: float, line: str | None = None
) -> list[Planned]:
    """A stage the helpdesk set, told to the incident's customers (`sms.stage`, or `email.stage`
    as their other notices), when `stage.sms` says so; keyed by incident, recipient and stage, so
    each stage is told once per incident however often the helpdesk comes back to it. Not
    urgent: it waits for the end of quiet hours. Customers who are not told of the incident (a
    degradation, unless enabled; a silent modem) hear of no stage either.

    `line`: a subscriber's own stage (their follow-up ticket's, monitord/rtsync.py), told to them
    alone, also after the incident resolved, and keyed apart (`-<line>-<stage>`): a follow-up's
    field team is told even when the incident's was. `resolved` is never told: the engine's
    restoration notice says it."""
    if not stage.sms or stage.done or (incident.phase is Phase.RESOLVED if line is None else line not in topology.lines):
        return []
    p = _Planner(incident, topology, settings, now)
    for language, values in p.customer_values.items():
        values["stage"] = stage.name(language)
    if line is None:
        return p.customers(incident.affected, phase="stage", suffix=f"-{stage.id}")
    return p.customers((line,), phase="stage", suffix=f"-{line}-{stage.id}")


def _closed_by_hand(p: _Planner, closure: Closure) -> list[Planned]:
    """An incident the NOC closed by hand (rules/lifecycle.py `Book.close`): its ticket is resolved
    with who and why, and "restored" goes only to the subscribers whose line had recovered: a
    line still failing (muted) hears nothing, a false "restored" being as bad as a missed one.
    No NOC e-mail: the NOC closed it."""
    incident = p.incident
    resolved = f"/{key_millis(incident.resolved_at or incident.updated_at)}"
    extra = {"by": closure.by, "reason": closure.reason, "muted_count": len(closure.muted)}
    ticket = p.ticket("resolve", "closed", f"{incident.tracking}/ticket/closed-by-hand{resolved}", extra)
    return [ticket, *p.customers(incident.affected - closure.muted, "restored", resolved)]


def workflow_ticket(
    incident: Incident, event: IncidentEvent, topology: Topology, settings: PlanSettings, now: float, *, set_owner: bool
) -> Planned | None:
    """The ticket's side of the NOC's action in monitord (monitord/incident_actions.py): an
    acknowledgement is a comment, and so is a new owner, unless the helpdesk can be told who owns
    the ticket (`set_owner`: Request Tracker), then it is an "owner" item whose subject is the
    user to make its owner (notifiers/rt.py). Notes stay in monitord; a close is the engine's
    "closed" change. Keyed by the action (an owner by its instant): a retry queues nothing new."""
    if incident.kind is IncidentKind.CPE and not settings.cpe_ticket:
        return None  # it has no ticket
    p = _Planner(incident, topology, settings, now)
    extra = {"by": event.actor, "owner": event.text, "at": format_time(event.at, settings.tz, settings.language)}
    if event.action == "ack":
        return p.ticket("comment", "acknowledged", f"{incident.tracking}/ticket/ack", extra)
    if event.action != "owner":
        return None
    key = f"{incident.tracking}/ticket/owner/{key_millis(event.at)}"
    item, at = p.ticket("owner" if set_owner else "comment", "owner", key, extra)
    return (replace(item, subject=event.text) if set_owner else item), at


def _told_about_cpe(item: Notification, settings: PlanSettings) -> bool:
    """Which notices of a `cpe` incident go out: the customer's, and staff's only if configured."""
    if item.channel == "ticket":
        return settings.cpe_ticket
    if item.action.startswith("noc-"):
        return settings.cpe_noc
    return True


def due_cpe_notices(incidents: Iterable[Incident], topology: Topology, settings: PlanSettings, now: float) -> list[Planned]:
    """The modem notice of `cpe` incidents that opened during quiet hours, once they are over and
    while the modem is still silent; call it every tick (same keys as at opening: sent once)."""
    if quiet_until(now, settings) is not None:
        return []
    out: list[Planned] = []
    for incident in incidents:
        if incident.kind is IncidentKind.CPE and incident.phase in (Phase.OPEN, Phase.UPDATED):
            out += _Planner(incident, topology, settings, now).customers(incident.affected)
    return out


def due_updates(incidents: Iterable[Incident], topology: Topology, settings: PlanSettings, now: float) -> list[Planned]:
    """ "Still ongoing" notices for outages open longer than `update_after`; call it every tick.

    One per subscriber per incident (the key has no time in it), so repeated calls queue nothing
    new once the store has the items.
    """
    out: list[Planned] = []
    for incident in incidents:
        ongoing = incident.phase in (Phase.OPEN, Phase.UPDATED) and incident.kind is not IncidentKind.DEGRADATION
        if ongoing and now - incident.opened_at >= settings.update_after:
            out += _Planner(incident, topology, settings, now).customers(incident.affected, "update")
    return out


def _told(
    trackings: Iterable[str], kind: IncidentKind, lookup: Callable[[str], Incident | None], now: float, settings: PlanSettings
) -> frozenset[str]:
    """Subscribers already given this kind's opening notice by the replaced incidents (unknown
    ones: nobody); those whose notice is still held are told by the wider incident instead."""
    found = (lookup(t) for t in trackings)
    return frozenset().union(*(i.affected - _held(i, now, settings) for i in found if i is not None and i.kind is kind))


def _held(incident: Incident, now: float, settings: PlanSettings) -> frozenset[str]:
    """The subscribers whose outage notice of `incident` is held, not yet sent: all of them while
    an outage of an area below the region (device, cabinet, exchange) is younger than
    `merge_hold`, since every outage notice planned then waits until `opened_at + merge_hold`."""
    area = incident.kind is IncidentKind.OUTAGE and incident.root.level not in ("line", "region")
    if area and now < incident.opened_at + settings.merge_hold:
        return incident.affected
    return frozenset()
