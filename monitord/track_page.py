"""What a customer may see of an incident, by its tracking number, as HTML and as JSON (pure).

`public_view` keeps only what is safe to show anyone who types a tracking number: the stage,
the times, the area's name and the kind of fault in a customer's words, and the number of
affected subscribers as a rough figure. Device names, addresses, line ids, subscriber names and
phones and the engine's evidence never reach a `TrackView`, so no rendering can leak them.
The page is small, server-rendered and readable on a phone without scripts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from monitord.model import Incident, IncidentKind, Language, Phase, Topology
from monitord.stages import DEFAULT_TABLE, Stage, StageTable
from notices.plan import place

MAX_NUMBER = 40  # characters of a tracking number worth matching at all
ROUGH_FROM = 10  # fewer affected subscribers than this are not counted on the page

_MONTHS = {
    "tr": ("Ocak", "Şubat", "Mart", "Nisan", "Mayıs", "Haziran", "Temmuz", "Ağustos", "Eylül", "Ekim", "Kasım", "Aralık"),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}
_SERVICE = {  # what the fault does to the customer's service, by incident kind
    IncidentKind.OUTAGE: {"tr": "internet hizmeti kesintisi", "en": "internet service outage"},
    IncidentKind.DEGRADATION: {"tr": "internet bağlantı kalitesinde düşüş", "en": "reduced internet connection quality"},
    IncidentKind.OVERRUN: {"tr": "planlı bakım sonrası süren kesinti", "en": "outage continuing after planned maintenance"},
    IncidentKind.CPE: {"tr": "modeminize ulaşılamıyor", "en": "your modem cannot be reached"},
}
_WORDS = {
    "tr": {
        "title": "Arıza takibi",
        "number": "Takip no",
        "stage": "Durum",
        "started": "Başlangıç",
        "updated": "Son güncelleme",
        "resolved": "Çözüldüğü zaman",
        "affected": "Etkilenen",
        "area": "{area} bölgesinde {service}",
        "line": "Aboneliğinizde {service}",
        "about": "Yaklaşık {n} abone etkileniyor",
        "switch": "English",
        "not_found": "Bu takip numarasıyla bir kayıt bulamadık.",
        "malformed": "Bu bir takip numarasına benzemiyor.",
        "hint": "Takip numarası SMS'inizde yazar, örneğin {example}. Lütfen kontrol edip yeniden deneyin.",
        "limited": "Kısa sürede çok fazla sorgu geldi. Lütfen bir dakika sonra yeniden deneyin.",
        "failed": "Şu anda bilgi gösteremiyoruz. Lütfen biraz sonra yeniden deneyin.",
        "merged": "{old} numaralı kaydınız {new} numaralı genel arıza kaydına bağlandı.",
        "back": "Hizmetiniz yeniden çalışıyor. Bağlandığı {new} numaralı genel arıza başka aboneler için sürüyor.",
        "closed": "Bu kayıt ekibimiz tarafından kapatıldı. Hizmetiniz hâlâ çalışmıyorsa lütfen bizi arayın.",
    },
    "en": {
        "title": "Fault tracking",
        "number": "Tracking number",
        "stage": "Status",
        "started": "Started",
        "updated": "Last update",
        "resolved": "Resolved at",
        "affected": "Affected",
        "area": "{service} in the {area} area",
        "line": "{service} on your subscription",
        "about": "About {n} subscribers affected",
        "switch": "Türkçe",
        "not_found": "We could not find a record with this tracking number.",
        "malformed": "This does not look like a tracking number.",
        "hint": "The tracking number is in your SMS, for example {example}. Please check it and try again.",
        "limited": "Too many requests in a short time. Please try again in a minute.",
        "failed": "We cannot show this information right now. Please try again shortly.",
        "merged": "Your record {old} was joined to the wider fault {new}.",
        "back": "Your service is working again. The wider fault {new} it was joined to goes on for other subscribers.",
        "closed": "This record was closed by our team. If your service is still not working, please call us.",
    },
}


@dataclass(frozen=True, slots=True)
class TrackView:
    """The public part of an incident."""

    tracking: str
    stage: Stage
    kind: IncidentKind
    area: str | None  # None: one subscriber's line, told as "your subscription"
    started_at: float
    updated_at: float
    resolved_at: float | None
    subscribers_about: int | None  # rounded to one significant digit; None when few or one line
    merged_from: str | None = None  # the number asked for, when it was merged into this wider incident
    wider_open: str | None = None  # the wider incident this one was merged into, still open after its lines came back
    closed_by_hand: bool = False  # the NOC closed it: some lines may still be down (rules/lifecycle.py `Book.close`)
    table: StageTable = DEFAULT_TABLE  # the stages the page lists


def number_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(prefix)}-[0-9]{{4}}-[0-9]{{6}}")


def normalize(number: str, pattern: re.Pattern[str]) -> str | None:
    """The tracking number as issued (ARZ-2026-000123), or None when `number` cannot be one."""
    if len(number) > MAX_NUMBER:
        return None
    number = number.strip().upper()
    return number if pattern.fullmatch(number) else None


def rough(count: int) -> int | None:
    if count < ROUGH_FROM:
        return None
    magnitude = 10 ** (len(str(count)) - 1)
    return round(count / magnitude) * magnitude


def merged_into(incident: Incident) -> str | None:
    """The wider incident this one was merged into (rules/lifecycle.py notes it last in the evidence)."""
    last = incident.evidence[-1] if incident.evidence else ""
    return last.removeprefix("merged into ") if incident.phase is Phase.RESOLVED and last.startswith("merged into ") else None


def closed_by_hand(incident: Incident) -> bool:
    """Whether the NOC closed it by hand (rules/lifecycle.py notes it last in the evidence)."""
    return (
        incident.phase is Phase.RESOLVED and incident.evidence[-1:] != () and incident.evidence[-1].startswith("closed by hand ")
    )


def public_view(
    incident: Incident,
    topology: Topology,
    asked: Incident | None = None,
    table: StageTable = DEFAULT_TABLE,
    helpdesk: str | None = None,
) -> TrackView:
    """`asked`: the incident of the number asked for, when it was merged into `incident`; it is
    shown itself, resolved, once its lines came back while `incident` goes on for others.
    `helpdesk`: the stage the helpdesk last set (its id), shown until the engine resolves the incident."""
    asked = asked or incident
    stage = table.of_number(asked, incident, helpdesk)
    back = stage.done and incident.phase is not Phase.RESOLVED
    shown = asked if back else incident
    one_line = shown.root.level == "line" or shown.kind is IncidentKind.CPE
    area = None if one_line else place(topology, shown.root).area
    if area is not None and ":" in area:  # a node gone from the inventory is named by its reference: an internal id
        area = None
    return TrackView(
        tracking=shown.tracking,
        stage=stage,
        kind=shown.kind,
        area=area,
        started_at=shown.opened_at,
        updated_at=incident.updated_at,
        resolved_at=None if back else incident.resolved_at,  # when its lines left the wider incident is not kept
        subscribers_about=None if one_line else rough(len(shown.affected)),
        merged_from=asked.tracking if shown is not asked else None,
        wider_open=incident.tracking if back else None,
        closed_by_hand=closed_by_hand(shown),
        table=table,
    )


def when(at: float, zone: ZoneInfo, language: Language) -> str:
    t = datetime.fromtimestamp(at, zone)
    month = _MONTHS[language][t.month - 1]
    return f"{t.day} {month} {t.year} {t:%H:%M}" if language == "tr" else f"{t.day} {month} {t.year}, {t:%H:%M}"


def _count(n: int, language: Language) -> str:
    grouped = f"{n:,}"
    return _WORDS[language]["about"].format(n=grouped.replace(",", ".") if language == "tr" else grouped)


def affected_text(view: TrackView, language: Language) -> str:
    service = _SERVICE[view.kind][language]
    words = _WORDS[language]
    if view.kind is IncidentKind.CPE:
        return service[0].upper() + service[1:]
    if view.area is None:
        return words["line"].format(service=service)
    text = words["area"].format(area=view.area, service=service)
    return text[0].upper() + text[1:]


def view_json(view: TrackView, zone: ZoneInfo, language: Language) -> dict[str, Any]:
    def iso(at: float | None) -> str | None:
        return None if at is None else datetime.fromtimestamp(at, zone).isoformat(timespec="seconds")

    return {
        "tracking": view.tracking,
        "language": language,
        "stage": {"id": view.stage.id, "name": view.stage.name(language), "final": view.stage.done},
        "started_at": iso(view.started_at),
        "updated_at": iso(view.updated_at),
        "resolved_at": iso(view.resolved_at),
        "affected": affected_text(view, language),
        "area": view.area,
        "subscribers_about": view.subscribers_about,
        "merged_from": view.merged_from,
        "wider_open": view.wider_open,
        "closed_by_hand": view.closed_by_hand,
    }


_STYLE = """
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;background:#f4f6f8}
main{max-width:34rem;margin:0 auto;padding:1rem}
h1{font-size:1.25rem;margin:.5rem 0 1rem}
.card{background:#fff;border-radius:.75rem;padding:1rem 1.25rem;box-shadow:0 1px 3px #0002}
.stage{font-size:1.5rem;font-weight:700;margin:.25rem 0 1rem;color:#b3261e}
.stage.done{color:#1e7b34}
dl{margin:0}dt{font-size:.85rem;color:#57606a;margin-top:.75rem}dd{margin:0;overflow-wrap:anywhere}
ol{display:flex;gap:.25rem;list-style:none;padding:0;margin:0 0 1rem}
ol li{flex:1;font-size:.75rem;text-align:center;padding-top:.4rem;border-top:.3rem solid #d0d7de;color:#57606a}
ol li.past,ol li[aria-current]{border-color:#1f6feb;color:#1b1f24}
ol li[aria-current]{font-weight:700}
nav{margin-top:1rem;text-align:right}a{color:#0b57d0}
p{overflow-wrap:anywhere}
"""


def _page(language: Language, title: str, body: str) -> str:
    other: Language = "en" if language == "tr" else "tr"
    return (
        f'<!doctype html>\n<html lang="{language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body><main><h1>{escape(_WORDS[language]["title"])}</h1>{body}'
        f'<nav><a href="?lang={other}" hreflang="{other}">{_WORDS[language]["switch"]}</a></nav>'
        "</main></body></html>\n"
    )


def _steps(view: TrackView, language: Language) -> str:
    """The engine's own stages in order, this one marked; a helpdesk stage is shown after `detected`."""
    shown = [s for s in view.table.stages if s.phases]
    if view.stage not in shown:
        shown.insert(1, view.stage)
    at = shown.index(view.stage)
    items = []
    for n, stage in enumerate(shown):
        mark = ' aria-current="step"' if n == at else (' class="past"' if n < at else "")
        items.append(f"<li{mark}>{escape(stage.name(language))}</li>")
    return f"<ol>{''.join(items)}</ol>"


def render_page(view: TrackView, zone: ZoneInfo, language: Language) -> str:
    words = _WORDS[language]
    rows = [
        (words["number"], view.tracking),
        (words["affected"], affected_text(view, language)),
        (words["started"], when(view.started_at, zone, language)),
    ]
    if view.subscribers_about is not None:
        rows.insert(2, ("", _count(view.subscribers_about, language)))
    if view.resolved_at is not None:
        rows.append((words["resolved"], when(view.resolved_at, zone, language)))
    else:
        rows.append((words["updated"], when(view.updated_at, zone, language)))
    details = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" if k else f"<dd>{escape(v)}</dd>" for k, v in rows)
    done = " done" if view.stage.done else ""
    note = ""
    if view.merged_from is not None:
        note = f'<p id="merged">{escape(words["merged"].format(old=view.merged_from, new=view.tracking))}</p>'
    elif view.wider_open is not None:
        note = f'<p id="back">{escape(words["back"].format(new=view.wider_open))}</p>'
    if view.closed_by_hand:  # not "your service is back": a line may still be down
        note += f'<p id="closed">{escape(words["closed"])}</p>'
    body = (
        f'<section class="card">{note}<div>{escape(words["stage"])}</div>'
        f'<p class="stage{done}" id="stage">{escape(view.stage.name(language))}</p>'
        f"{_steps(view, language)}<dl>{details}</dl></section>"
    )
    return _page(language, f"{words['title']} {view.tracking}", body)


Problem = str  # "not_found", "malformed", "limited" or "failed"


def problem_text(problem: Problem, language: Language, prefix: str) -> str:
    words = _WORDS[language]
    text = words[problem]
    if problem in ("not_found", "malformed"):
        text += " " + words["hint"].format(example=f"{prefix}-2026-000123")
    return text


def render_problem(problem: Problem, language: Language, prefix: str, number: str | None = None) -> str:
    """A kind page for what cannot be shown; `number` (already checked well-formed) is repeated back."""
    shown = f"<p><strong>{escape(number)}</strong></p>" if number else ""
    body = f'<section class="card">{shown}<p id="problem">{escape(problem_text(problem, language, prefix))}</p></section>'
    return _page(language, _WORDS[language]["title"], body)
