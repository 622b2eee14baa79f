"""Confirmation after repair (issue 12 item 4): the question after a restoration SMS, and the
follow-up ticket a "no" opens (pure; monitord/sms_inbound.py takes the answers).

Each subscriber told by SMS that their service is back is asked, `confirm_after` later (then
after quiet hours), whether it works: "1: Evet, 2: Hayır". The question is an outbox item (action
"confirm") keyed by incident and phone, so it is asked once per incident however often a step is
replayed, and it counts as asked once it was sent. "1"/"Evet"/"Yes" closes the loop; "2"/"Hayır"/
"No" also opens one ticket per affected line of that phone, linked to the incident's ticket
(action "followup", recipient `<incident>/<line>`: the value the new ticket is tagged and found
by) with what monitoring knows of the line. The answer is stored once per incident and phone (the
store's `sms_answers`): a second answer, or one to a question never sent, changes nothing.

With `survey` on, a "yes" is answered by the satisfaction survey (issue 12 item 5) rather than a
plain thanks: "1 to 5?" (action "survey", keyed by incident and phone like the question before
it); its score is stored once per incident and phone (`survey_scores`) and counted per region.

When a question comes due, a line of it the probes do not see recovered (down, unreachable,
degraded, its modem silent) gets the same ticket at once, answer or not (`unrecovered`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from monitord.model import Incident, Language, Line, LineState, Notification, Status
from notices.plan import Planned, PlanSettings, notification, quiet_until
from notices.sms_text import sms_body
from notices.templates import Rendered, mask_phone, render

RESTORED = ("restored", "line_restored")


def sms_text(name: str, language: Language, values: dict[str, str], settings: PlanSettings) -> Rendered:
    return Rendered("", sms_body(render(name, language, values, settings.templates).body, settings.sms_transliterate))


def questions(
    planned: Iterable[Planned], lines: Mapping[str, Sequence[Line]], settings: PlanSettings, now: float
) -> list[Planned]:
    """A question after each restoration SMS planned in this step; none without `confirm_after`.
    `lines`: the inventory's lines by phone (the question is in the first one's language)."""
    if settings.confirm_after is None:
        return []
    at = now + settings.confirm_after
    at = quiet_until(at, settings) or at
    asked: list[Planned] = []
    for item, _ in planned:
        if item.channel == "sms" and item.action in RESTORED and item.error is None and item.incident is not None:
            known = lines.get(item.recipient)
            asked.append((_question(item.incident, item.recipient, known[0].language if known else "tr", settings), at))
    return asked


def _question(tracking: str, phone: str, language: Language, settings: PlanSettings) -> Notification:
    text = lambda: sms_text("sms.confirm", language, {"tracking": tracking}, settings)  # noqa: E731
    return notification(f"{tracking}/sms/{phone}/confirm", "sms", phone, "confirm", tracking, text)


def survey_question(tracking: str, phone: str, language: Language, settings: PlanSettings) -> Notification:
    """The survey after a "yes": asked once per incident and phone, at once (the customer just wrote)."""
    text = lambda: sms_text("sms.survey", language, {"tracking": tracking}, settings)  # noqa: E731
    return notification(f"{tracking}/sms/{phone}/survey", "sms", phone, "survey", tracking, text)


@dataclass(frozen=True, slots=True)
class LineEvidence:
    """What monitoring knows of one line when its subscriber says the repair did not help."""

    line: Line
    place: str  # where it is, in a helpdesk agent's words
    state: LineState
    incident: Sequence[str]  # the incident's evidence, as the engine wrote it


def followup(tracking: str, evidence: LineEvidence, settings: PlanSettings, template: str = "ticket.followup") -> Planned:
    """The follow-up ticket of one line; its recipient links it to the incident's ticket.
    `template`: why it is opened (the subscriber said no; "ticket.unrecovered": the probes)."""
    line, state = evidence.line, evidence.state
    values = {
        "tracking": tracking,
        "line": line.id,
        "name": line.name,
        "phone": mask_phone(line.phone),
        "place": evidence.place,
        "state": f"{state.status.value}: {', '.join(state.reasons) or '-'}",
        "evidence": "\n".join(f"- {e}" for e in evidence.incident) or "-",
    }
    item = notification(
        f"{tracking}/ticket/{line.id}/followup",
        "ticket",
        f"{tracking}/{line.id}",
        "followup",
        tracking,
        lambda: render(template, settings.language, values, settings.templates),
    )
    return item, None


def followed_up(tracking: str) -> tuple[str, str] | None:
    """The incident and line a follow-up ticket's tracking value (`followup`'s recipient) names;
    None for an incident's own number. A dispatch ticket's value (`<number>/saha`) parses too: tell
    it apart first (notices/dispatch.py `dispatched_incident`)."""
    incident, _, line = tracking.partition("/")
    return (incident, line) if incident and line else None


NOT_RECOVERED = frozenset({Status.DOWN, Status.UNREACHABLE, Status.DEGRADED, Status.CPE})


def unrecovered(
    due: Iterable[tuple[Incident, Sequence[Line]]],
    state: Callable[[str], LineState],
    where: Callable[[str], str],
    settings: PlanSettings,
) -> list[Planned]:
    """When a question is due (an incident and its phone's lines), a follow-up ticket for each of
    those lines the incident affected that the probes do not see recovered (`state`), as a "no"
    would open: keyed alike, so an answer later opens nothing more. `where`: a line's place."""
    tickets = []
    for incident, lines in due:
        for line in lines:
            now = state(line.id)
            if line.id in incident.affected and now.status in NOT_RECOVERED:
                evidence = LineEvidence(line, where(line.id), now, incident.evidence)
                tickets.append(followup(incident.tracking, evidence, settings, "ticket.unrecovered"))
    return tickets
