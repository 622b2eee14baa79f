"""How what customers, the NOC and the helpdesk read is rendered, in Turkish (the default) and English.

The texts are data (monitord/builtin/templates/<language>.yaml, overridable by the operator:
monitord/config/templates.py reads them). Pure: a template is text with `{name}` placeholders,
the one syntax of every text and of the ticket webhook's body; FIELDS says which names each
template gets values for, so `monitord check` can refuse the others. Rendering a template whose
field has no value raises TemplateError naming the template; the planner turns it into that one
item's error, so the item is dead-lettered and the rest go out.

Names in an SMS are cut to SMS_NAME_MAX characters at a word boundary (`short`), so that every
built-in SMS is one segment with the Turkish shift tables or transliterated (notices/sms_text.py,
notices/segments.py); tracking numbers are never cut (tests render every SMS with TRACKING_MAX
characters).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from monitord.model import Language

SMS_NAME_MAX = 24
TRACKING_MAX = 24
LIST_MAX = 200  # subscribers listed by name in one ticket body; the rest are counted


class TemplateError(Exception):
    """A template could not be rendered (unknown name or a field without a value)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"template {name}: {reason}")
        self.name = name


@dataclass(frozen=True, slots=True)
class Template:
    subject: str
    body: str


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    body: str


Templates = Mapping[str, Mapping[Language, Template]]

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""`{name}`; any other brace (JSON's, a lone `{`) is text."""

_CUSTOMER = frozenset({"tracking", "area", "start", "name"})
_MAINTENANCE = frozenset({"area", "window", "reason", "name"})
_STAFF = frozenset(
    {"tracking", "kind", "root", "place", "region", "exchange", "area", "start", "end", "at", "duration", "count"}
    | {"evidence", "subscribers"}
)
_FOLLOWUP = frozenset({"tracking", "line", "name", "phone", "place", "state", "evidence"})
_HOLD = frozenset({"channel", "cause", "reason", "since", "waiting", "probe"})
_EXTRA = {
    "stage": {"stage"},
    "merged": {"into"},
    "grew": {"added_count"},
    "shrank": {"removed_count"},
    "promoted": {"replaces"},
    "severity": {"was"},
    "closed": {"by", "reason", "muted_count"},
    "acknowledged": {"by"},
    "owner": {"by", "owner"},
}
_CUSTOMER_PHASES = ("outage", "update", "restored", "merged", "degradation", "overrun", "stage")
_LINE_PHASES = ("line_outage", "line_update", "line_restored", "modem")
REPLIES: Mapping[
    str, frozenset[str]
] = {  # a customer's SMS conversation (notices/inbound.py, notices/confirm.py): no names, no area
    "reply_status": frozenset({"tracking", "stage"}),
    "confirm": frozenset({"tracking"}),
    "confirm_yes": frozenset({"tracking"}),
    "confirm_no": frozenset({"tracking"}),
    "survey": frozenset({"tracking"}),
    "survey_thanks": frozenset({"tracking"}),
    "reply_none": frozenset(),
    "reply_not_found": frozenset(),
    "reply_malformed": frozenset(),
    "opted_out": frozenset(),
    "opted_in": frozenset(),
    "help": frozenset(),
}
_STAFF_EVENTS = ("create", "grew", "shrank", "merged", "promoted", "recovering", "resolved", "reopened", "severity")


def _fields() -> dict[str, frozenset[str]]:
    fields: dict[str, frozenset[str]] = {}
    for channel in ("sms", "email"):
        for phase in _CUSTOMER_PHASES + _LINE_PHASES:
            fields[f"{channel}.{phase}"] = _CUSTOMER | _EXTRA.get(phase, set())
        for phase in ("maintenance", "maintenance_done"):
            fields[f"{channel}.{phase}"] = _MAINTENANCE - ({"reason"} if channel == "sms" else set())
    for reply, names in REPLIES.items():
        fields[f"sms.{reply}"] = names
    for event in ("opened", "reopened", "resolved"):
        fields[f"noc.{event}"] = _STAFF
    for event in _STAFF_EVENTS + ("closed_removed", "closed", "acknowledged", "owner"):
        fields[f"ticket.{event}"] = _STAFF | _EXTRA.get(event, set())
    for event in ("held", "released"):
        fields[f"noc.channel_{event}"] = _HOLD
    fields["ticket.followup"] = fields["ticket.unrecovered"] = _FOLLOWUP
    fields.update(_dispatch_fields())
    return fields


def _dispatch_fields() -> dict[str, frozenset[str]]:
    """The field team's ticket (notices/dispatch.py): where to go, and why it is theirs."""
    where = {"signature", "facts", "cabinet", "site", "site_coordinates", "address", "coordinates"}
    return {"dispatch.create": _STAFF | where, "dispatch.resolved": _STAFF, "dispatch.merged": _STAFF | {"into"}}


FIELDS: Mapping[str, frozenset[str]] = _fields()
"""Every template monitord renders and the placeholders the planner gives it values for (the
subject of `ticket.create` is every ticket's subject, so it gets only the common ones)."""
SUBJECT_ONLY_COMMON = "ticket.create"


def placeholders(text: str) -> list[str]:
    return PLACEHOLDER.findall(text)


def unknown_placeholders(name: str, template: Template) -> list[str]:
    """Placeholders in `template` that `name` never gets a value for (what `monitord check` refuses)."""
    known = FIELDS.get(name, frozenset())
    found = [p for p in placeholders(template.body) if p not in known]
    subject_known = _STAFF if name == SUBJECT_ONLY_COMMON else known
    return found + [p for p in placeholders(template.subject) if p not in subject_known]


HOLD_CAUSES: Mapping[Language, Mapping[str, str]] = {
    "tr": {"credentials": "kimlik bilgileri reddedildi", "forbidden": "yetki yok", "config": "ayar hatası"},
    "en": {"credentials": "credentials refused", "forbidden": "access forbidden", "config": "settings refused"},
}

KIND_NAMES: Mapping[Language, Mapping[str, str]] = {
    "tr": {"outage": "Kesinti", "degradation": "Kalite düşüşü", "overrun": "Bakım uzaması", "cpe": "Modem yanıt vermiyor"},
    "en": {"outage": "Outage", "degradation": "Degradation", "overrun": "Maintenance overrun", "cpe": "Silent modem"},
}


def render(name: str, language: Language, values: Mapping[str, Any], templates: Templates) -> Rendered:
    """Fill template `name` in `language`; raise TemplateError if it is unknown or a field is missing."""
    try:
        template = templates[name][language]
    except KeyError:
        raise TemplateError(name, f"no such template in language {language!r}") from None
    return Rendered(fill(name, template.subject, values), fill(name, template.body, values))


def fill(name: str, text: str, values: Mapping[str, Any], quote: Callable[[Any], str] = str) -> str:
    """`text` with each `{field}` replaced by `quote(value)` (the webhook quotes as JSON)."""

    def value(match: re.Match[str]) -> str:
        try:
            return quote(values[match[1]])
        except KeyError:
            raise TemplateError(name, f"no value for {{{match[1]}}}") from None

    return PLACEHOLDER.sub(value, text)


def short(text: str, limit: int = SMS_NAME_MAX) -> str:
    """`text` cut to at most `limit` characters at a word boundary, without a mark: an ellipsis
    is not GSM-7 and would turn the whole SMS into UCS-2. A first word longer than `limit` is cut
    inside it."""
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0] if " " in text[: limit + 1] else text[:limit]
    return cut[:limit].rstrip(" -,;:/(")


def mask_phone(phone: str | None) -> str:
    """+905321234567 -> +90532***4567: enough for an agent to match a caller, not to copy."""
    if not phone:
        return "-"
    return phone[:-7] + "***" + phone[-4:] if len(phone) > 9 else "***" + phone[-2:]


def format_time(at: float, tz: ZoneInfo, language: Language) -> str:
    """Turkish style 01.12.2026 01:00; English 1 Dec 2026 01:00 (both in the local zone)."""
    local = datetime.fromtimestamp(at, tz)
    return local.strftime("%d.%m.%Y %H:%M") if language == "tr" else f"{local.day} {local:%b %Y %H:%M}"


def format_window(start: float, end: float, tz: ZoneInfo, language: Language) -> str:
    """A maintenance window; the end date is written only when it differs from the start date."""
    begin, finish = datetime.fromtimestamp(start, tz), datetime.fromtimestamp(end, tz)
    if begin.date() == finish.date():
        return f"{format_time(start, tz, language)}-{finish:%H:%M}"
    return f"{format_time(start, tz, language)} - {format_time(end, tz, language)}"


def format_duration(seconds: float, language: Language) -> str:
    """Hours and minutes, e.g. 2 sa 5 dk / 2 h 5 min."""
    minutes = max(0, round(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    h, m = ("sa", "dk") if language == "tr" else ("h", "min")
    return f"{hours} {h} {minutes} {m}" if hours else f"{minutes} {m}"


def subscriber_list(entries: Sequence[tuple[str, str, str | None]], language: Language, total: int | None = None) -> str:
    """One line per subscriber (id, name, masked phone), at most LIST_MAX, sorted by id; `total`:
    how many there are when `entries` holds only the first LIST_MAX."""
    rows = [f"- {sid} {name} {mask_phone(phone)}" for sid, name, phone in sorted(entries)[:LIST_MAX]]
    total = len(entries) if total is None else total
    if total > LIST_MAX:
        more = total - LIST_MAX
        rows.append(f"... ve {more} abone daha" if language == "tr" else f"... and {more} more")
    return "\n".join(rows) if rows else "-"


_LEVELS_TR = {
    "region": "bölge",
    "exchange": "santral",
    "cabinet": "kabin",
    "device": "cihaz",
    "segment": "segment",
    "line": "hat",
}
_FAULT_WORDS_TR = {"down": "kesik", "degraded": "kalitesi düşük", "still down after maintenance": "bakımdan sonra hâlâ kesik"}
_NODE = r"(region|exchange|cabinet|device|segment|line):(\S+)"
_EVIDENCE_TR: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (
        re.compile(rf"^(\d+)/(\d+) lines (.+) behind {_NODE}$"),
        lambda m: f"{_LEVELS_TR[m[4]]} {m[5]} arkasında {_FAULT_WORDS_TR.get(m[3], m[3])} hat: {m[1]}/{m[2]}",
    ),
    (
        re.compile(r"^devices (.+?): (.+?)(?: and (\d+) more)?$"),
        lambda m: f"{_FAULT_WORDS_TR.get(m[1], m[1])} cihazlar: {m[2]}" + (f" ve {m[3]} tane daha" if m[3] else ""),
    ),
    (re.compile(r"^merged into (\S+)$"), lambda m: f"{m[1]} kaydına birleştirildi"),
    (re.compile(rf"^{_NODE}: (.*)$"), lambda m: f"{_LEVELS_TR[m[1]]} {m[2]}: {m[3]}"),
)


def evidence_lines(evidence: Sequence[str], language: Language) -> str:
    """The engine's evidence as a ticket's list, in the ticket's language (the engine writes the
    English forms of rules/lifecycle.py `_evidence`; probe answers inside them stay as read)."""
    if language == "tr":
        evidence = [next((say(m) for pattern, say in _EVIDENCE_TR if (m := pattern.match(e))), e) for e in evidence]
    return "\n".join(f"- {e}" for e in evidence) or "-"
