"""The web console's pages, in Turkish and English (pure: monitord/console.py gathers what they show).

Built the way the customers' tracking page is (monitord/track_page.py): server-rendered HTML,
every value escaped, words from one table per language, no external assets. The one script,
`BOARD_SCRIPT`, only refreshes the board's table every few seconds; without it the board is a
plain page that a reload refreshes. Every form that changes something carries the session's
CSRF token. Labels on every field, visible focus, colours of at least 4.5:1 contrast, and a
layout that narrows to a phone's width.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from monitord.model import Language

REFRESH_SECONDS = 10

_WORDS = {
    "tr": {
        "console": "NOC konsolu",
        "board": "Arıza panosu",
        "lookup": "Abone sorgula",
        "silences": "Susturmalar",
        "sign_in": "Giriş yap",
        "sign_out": "Çıkış yap",
        "user": "Kullanıcı adı",
        "password": "Parola",
        "bad_login": "Kullanıcı adı ya da parola yanlış.",
        "limited": "Çok fazla deneme. Lütfen biraz sonra yeniden deneyin.",
        "tracking": "Takip no",
        "kind": "Tür",
        "root": "Kaynak",
        "affected": "Etkilenen",
        "stage": "Aşama",
        "owner": "Sahibi / onay",
        "age": "Süre",
        "actions": "İşlemler",
        "ack": "Onayla",
        "note": "Not",
        "add_note": "Not ekle",
        "new_owner": "Sahibi (boşsa siz)",
        "take": "Üstlen",
        "none_open": "Açık arıza yok.",
        "acked_by": "{by} onayladı",
        "owned_by": "Sahibi: {name}",
        "ticket_ended": "Yardım masası kaydı kapattı ({status}, {by}); arıza sürüyor",
        "nobody": "Onaylanmadı",
        "query": "Telefon, abone no ya da takip no",
        "search": "Sorgula",
        "verdict": "Teşhis",
        "evidence": "Kanıtlar",
        "subscriber": "Abone",
        "no_match": "Bu sorguyla eşleşen abone ya da arıza yok.",
        "nodes": "Düğüm (ör. device:sisli-dslam-01)",
        "duration": "Süre (ör. 2h)",
        "comment": "Açıklama",
        "create": "Sustur",
        "none_silenced": "Susturma yok.",
        "state": "Durum",
        "ends": "Bitiş",
        "author": "Yazan",
        "switch": "English",
        "signed_in_as": "{user} ({role})",
        "done": "Kaydedildi.",
        "maintenance": "Bakım çalışmaları",
        "tree": "Bölge / santral / cihaz",
        "scope": "Kapsam (ör. exchange:sisli; virgülle birden çok)",
        "start": "Başlangıç",
        "end": "Bitiş",
        "zone": "Saatler {zone} saat dilimine göre.",
        "reason": "Gerekçe",
        "plan": "Bakım planla",
        "none_planned": "Planlanmış ya da süren bakım yok.",
        "active": "Sürüyor",
        "planned": "Planlandı",
        "from_config": "Yapılandırma dosyasından",
        "cancel": "İptal et",
        "cancelled": "İptal edildi.",
        "expire": "Sonlandır",
        "expired": "Susturma sonlandırıldı.",
        "state_down": "Arızalı",
        "state_degraded": "Kalitesi düşük",
        "state_unknown": "Bilinmiyor",
        "state_maintenance": "Bakımda",
        "state_up": "Çalışıyor",
        "state_empty": "Hat yok",
        "no_lines": "Hat yok",
        "level_region": "Bölge",
        "level_exchange": "Santral",
        "level_cabinet": "Kabin",
        "level_device": "Cihaz",
        "level_segment": "Segment",
        "map": "Santrallerin konumu ve durumu (şematik)",
        "no_map": "Aboneyi sorgulayınca hattının son 24 saatlik kalitesi de görünür.",
    },
    "en": {
        "console": "NOC console",
        "board": "Incident board",
        "lookup": "Subscriber lookup",
        "silences": "Silences",
        "sign_in": "Sign in",
        "sign_out": "Sign out",
        "user": "User name",
        "password": "Password",
        "bad_login": "Wrong user name or password.",
        "limited": "Too many attempts. Please try again later.",
        "tracking": "Tracking",
        "kind": "Kind",
        "root": "Root",
        "affected": "Affected",
        "stage": "Stage",
        "owner": "Owner / ack",
        "age": "Age",
        "actions": "Actions",
        "ack": "Acknowledge",
        "note": "Note",
        "add_note": "Add note",
        "new_owner": "Owner (empty: you)",
        "take": "Take",
        "none_open": "No open incidents.",
        "acked_by": "acknowledged by {by}",
        "owned_by": "Owner: {name}",
        "ticket_ended": "The helpdesk ended its ticket ({status}, {by}); the fault goes on",
        "nobody": "Not acknowledged",
        "query": "Phone, subscriber id or tracking number",
        "search": "Look up",
        "verdict": "Verdict",
        "evidence": "Evidence",
        "subscriber": "Subscriber",
        "no_match": "No subscriber or incident matches this query.",
        "nodes": "Node (e.g. device:sisli-dslam-01)",
        "duration": "Duration (e.g. 2h)",
        "comment": "Comment",
        "create": "Silence",
        "none_silenced": "No silences.",
        "state": "State",
        "ends": "Ends",
        "author": "Author",
        "switch": "Türkçe",
        "signed_in_as": "{user} ({role})",
        "done": "Saved.",
        "maintenance": "Maintenance",
        "tree": "Region / exchange / device",
        "scope": "Scope (e.g. exchange:sisli; several separated by commas)",
        "start": "Start",
        "end": "End",
        "zone": "Times in {zone}.",
        "reason": "Reason",
        "plan": "Plan maintenance",
        "none_planned": "No maintenance planned or under way.",
        "active": "Under way",
        "planned": "Planned",
        "from_config": "From the config file",
        "cancel": "Cancel",
        "cancelled": "Cancelled.",
        "expire": "End now",
        "expired": "Silence ended.",
        "state_down": "Down",
        "state_degraded": "Degraded",
        "state_unknown": "Unknown",
        "state_maintenance": "Maintenance",
        "state_up": "Up",
        "state_empty": "No lines",
        "no_lines": "No lines",
        "level_region": "Region",
        "level_exchange": "Exchange",
        "level_cabinet": "Cabinet",
        "level_device": "Device",
        "level_segment": "Segment",
        "map": "Exchanges by location and state (schematic)",
        "no_map": "A subscriber lookup also shows the line's quality over the last 24 hours.",
    },
}

_STYLE = """
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;background:#f4f6f8}
header{background:#1b1f24;color:#fff;padding:.5rem 1rem;display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center}
header a,header button{color:#fff;font:inherit}header button{background:none;border:1px solid #fff;border-radius:.3rem;cursor:pointer}
main{max-width:72rem;margin:0 auto;padding:1rem}
h1{font-size:1.25rem;margin:.5rem 0 1rem}
.card{background:#fff;border-radius:.75rem;padding:1rem;box-shadow:0 1px 3px #0002;margin-bottom:1rem;overflow-x:auto}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.4rem;border-bottom:1px solid #d0d7de;vertical-align:top}
label{display:block;font-size:.9rem;color:#3d444d;margin-top:.5rem}
input{font:inherit;padding:.4rem;border:1px solid #57606a;border-radius:.3rem;width:100%;max-width:28rem}
button{font:inherit;padding:.35rem .8rem;border-radius:.3rem;border:1px solid #0b57d0;background:#0b57d0;color:#fff;cursor:pointer}
:focus-visible{outline:3px solid #bf5700;outline-offset:2px}
form.inline{display:flex;flex-wrap:wrap;gap:.3rem;align-items:end;margin:.2rem 0}form.inline input{width:auto;flex:1;min-width:8rem}
.state{border-radius:.3rem;padding:0 .3rem;font-size:.85rem;font-weight:700;white-space:nowrap}
ul.tree,ul.tree ul{list-style:none;padding-left:1.2rem;margin:.2rem 0}ul.tree{padding-left:0}summary{cursor:pointer;padding:.15rem 0}
.error{color:#a40e26;font-weight:700}.ok{color:#116329;font-weight:700}
p,td{overflow-wrap:anywhere}a{color:#0b57d0}
@media (max-width:40rem){thead{display:none}tr{display:block;border-bottom:2px solid #d0d7de}td{display:block;border:0;padding:.2rem}
td[data-label]::before{content:attr(data-label) ": ";font-weight:700}}
"""

BOARD_SCRIPT = f"""
"use strict";
setInterval(function () {{
  var board = document.getElementById("board");
  if (!board || document.activeElement && board.contains(document.activeElement) && document.activeElement.tagName === "INPUT") return;
  fetch("/console/rows" + location.search, {{credentials: "same-origin"}})
    .then(function (r) {{
      if (r.redirected) {{ location.reload(); return null; }}  // signed out or expired: the sign-in page
      return r.ok ? r.text() : null;
    }})
    .then(function (html) {{ if (html !== null) board.innerHTML = html; }})
    .catch(function () {{}});
}}, {REFRESH_SECONDS * 1000});
"""


def words(language: Language) -> dict[str, str]:
    return _WORDS[language]


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who looks, and what their forms need."""

    user: str
    role: str
    csrf: str
    can_change: bool  # the noc role: acknowledge, take, notes, silences


@dataclass(frozen=True, slots=True)
class BoardRow:
    tracking: str
    kind: str
    root: str  # in words: the node, its exchange and region
    affected: int
    stage: str
    acknowledged: str | None  # who acknowledged it
    owner: str | None
    age: str  # e.g. "2h 05m"
    ticket_ended: tuple[str, str] | None = None  # the ticket's status and who ended it, while the incident is open


@dataclass(frozen=True, slots=True)
class Found:
    """What a lookup shows of one subscriber: their line and the diagnosis's verdict."""

    subscriber: str
    name: str
    tracking: str | None
    summary: str
    cause: str
    evidence: tuple[str, ...]
    chart: str = ""  # the line's quality chart, markup from monitord/console_chart.py (escaped there)


@dataclass(frozen=True, slots=True)
class SilenceRow:
    id: str
    nodes: str
    state: str
    ends: str
    author: str
    comment: str


def age(seconds: float) -> str:
    minutes = max(0, int(seconds // 60))
    return f"{minutes // 60}h {minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def page(language: Language, title: str, body: str, viewer: Viewer | None, script: bool = False) -> str:
    w = _WORDS[language]
    other: Language = "en" if language == "tr" else "tr"
    nav = ""
    if viewer is not None:
        links = "".join(
            f'<a href="/console{path}">{escape(w[key])}</a>'
            for path, key in (
                ("", "board"),
                ("/lookup", "lookup"),
                ("/tree", "tree"),
                ("/silences", "silences"),
                ("/maintenance", "maintenance"),
            )
        )
        nav = (
            f'<nav aria-label="{escape(w["console"])}" style="display:flex;gap:1rem;flex-wrap:wrap">{links}</nav>'
            f'<span>{escape(w["signed_in_as"].format(user=viewer.user, role=viewer.role))}</span>'
            f'<form method="post" action="/console/logout">{_csrf(viewer)}<button type="submit" id="sign-out">{escape(w["sign_out"])}</button></form>'
        )
    tail = '<script src="/console/board.js"></script>' if script else ""
    return (
        f'<!doctype html>\n<html lang="{language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex">'
        f"<title>{escape(title)} · {escape(w['console'])}</title><style>{_STYLE}</style></head>"
        f"<body><header><strong>{escape(w['console'])}</strong>{nav}"
        f'<a href="?lang={other}" hreflang="{other}">{w["switch"]}</a></header>'
        f"<main><h1>{escape(title)}</h1>{body}</main>{tail}</body></html>\n"
    )


def _csrf(viewer: Viewer) -> str:
    return f'<input type="hidden" name="csrf" value="{escape(viewer.csrf)}">'


def post_button(action: str, viewer: Viewer, label: str, id: str) -> str:
    """A one-button form for a change that needs no more than a click (and the CSRF token)."""
    return (
        f'<form method="post" action="{escape(action)}" class="inline">{_csrf(viewer)}'
        f'<button type="submit" id="{escape(id)}">{escape(label)}</button></form>'
    )


def _message(message: str | None, ok: bool = False) -> str:
    if not message:
        return ""
    return f'<p class="{"ok" if ok else "error"}" role="{"status" if ok else "alert"}" id="message">{escape(message)}</p>'


def login_page(language: Language, problem: str | None = None) -> str:
    w = _WORDS[language]
    body = (
        f'<section class="card">{_message(w[problem] if problem else None)}'
        '<form method="post" action="/console/login">'
        f'<label for="user">{escape(w["user"])}</label><input id="user" name="user" autocomplete="username" required maxlength="64">'
        f'<label for="password">{escape(w["password"])}</label>'
        '<input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024">'
        f'<p><button type="submit" id="sign-in">{escape(w["sign_in"])}</button></p></form></section>'
    )
    return page(language, w["sign_in"], body, None)


def board_rows(rows: Sequence[BoardRow], viewer: Viewer, language: Language) -> str:
    """The board's table: the part the script refreshes."""
    w = _WORDS[language]
    if not rows:
        return f'<p id="none-open">{escape(w["none_open"])}</p>'
    heads = ("tracking", "kind", "root", "affected", "stage", "owner", "age") + (("actions",) if viewer.can_change else ())
    head = "".join(f'<th scope="col">{escape(w[h])}</th>' for h in heads)
    body = []
    for row in rows:
        who = [w["acked_by"].format(by=row.acknowledged) if row.acknowledged else w["nobody"]]
        if row.owner:
            who.append(w["owned_by"].format(name=row.owner))
        if row.ticket_ended:
            status, by = row.ticket_ended
            who.append(w["ticket_ended"].format(status=status, by=by))
        cells = [
            ("tracking", row.tracking),
            ("kind", row.kind),
            ("root", row.root),
            ("affected", str(row.affected)),
            ("stage", row.stage),
            ("owner", "; ".join(who)),
            ("age", row.age),
        ]
        tds = "".join(f'<td data-label="{escape(w[k])}">{escape(v)}</td>' for k, v in cells)
        if viewer.can_change:
            tds += f'<td data-label="{escape(w["actions"])}">{_actions(row, viewer, w)}</td>'
        body.append(f'<tr id="incident-{escape(row.tracking)}">{tds}</tr>')
    return f'<table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _actions(row: BoardRow, viewer: Viewer, w: dict[str, str]) -> str:
    base = f"/console/incidents/{escape(row.tracking)}"
    ack = ""
    if row.acknowledged is None:
        ack = (
            f'<form method="post" action="{base}/ack" class="inline">{_csrf(viewer)}'
            f'<button type="submit" id="ack-{escape(row.tracking)}">{escape(w["ack"])}</button></form>'
        )
    taker = f"owner-{escape(row.tracking)}"
    take = (
        f'<form method="post" action="{base}/owner" class="inline">{_csrf(viewer)}'
        f'<label for="{taker}" style="margin:0">{escape(w["new_owner"])}</label>'
        f'<input id="{taker}" name="owner" maxlength="64" placeholder="{escape(viewer.user)}">'
        f'<button type="submit" id="take-{escape(row.tracking)}">{escape(w["take"])}</button></form>'
    )
    field = f"note-{escape(row.tracking)}"
    note = (
        f'<form method="post" action="{base}/note" class="inline">{_csrf(viewer)}'
        f'<label for="{field}" style="margin:0">{escape(w["note"])}</label>'
        f'<input id="{field}" name="note" required maxlength="2000">'
        f'<button type="submit">{escape(w["add_note"])}</button></form>'
    )
    return ack + take + note


def board_page(rows: Sequence[BoardRow], viewer: Viewer, language: Language, message: str | None = None) -> str:
    w = _WORDS[language]
    body = (
        f'{_message(message, ok=True)}<section class="card" aria-live="polite"><div id="board">{board_rows(rows, viewer, language)}</div></section>'
        f"<p><small>{escape(w['no_map'])}</small></p>"
    )
    return page(language, w["board"], body, viewer, script=True)


def lookup_page(query: str, found: Sequence[Found] | None, viewer: Viewer, language: Language, problem: str | None = None) -> str:
    """`found` None: nothing asked yet; `problem`: why the query was refused."""
    w = _WORDS[language]
    form = (
        '<form method="get" action="/console/lookup" role="search">'
        f'<label for="q">{escape(w["query"])}</label>'
        f'<input id="q" name="q" value="{escape(query)}" maxlength="64" required>'
        f'<p><button type="submit" id="search">{escape(w["search"])}</button></p></form>'
    )
    results = _message(problem)
    if found is not None and not found and problem is None:
        results += f'<p id="no-match">{escape(w["no_match"])}</p>'
    for one in found or ():
        evidence = "".join(f"<li>{escape(e)}</li>" for e in one.evidence)
        tracking = f"<p>{escape(w['tracking'])}: <strong>{escape(one.tracking)}</strong></p>" if one.tracking else ""
        results += (
            f'<section class="card verdict" id="subscriber-{escape(one.subscriber)}">'
            f"<h2>{escape(w['subscriber'])} {escape(one.subscriber)} · {escape(one.name)}</h2>"
            f'<p>{escape(w["verdict"])}: <strong class="summary">{escape(one.summary)}</strong> ({escape(one.cause)})</p>{tracking}'
            f"<h3>{escape(w['evidence'])}</h3><ul>{evidence}</ul>{one.chart}</section>"
        )
    return page(language, w["lookup"], f'<section class="card">{form}</section>{results}', viewer)


def silences_page(
    rows: Sequence[SilenceRow], viewer: Viewer, language: Language, problem: str | None = None, ok: str | None = None
) -> str:
    w = _WORDS[language]
    create = ""
    if viewer.can_change:
        create = (
            f'<section class="card"><form method="post" action="/console/silences">{_csrf(viewer)}'
            f'<label for="node">{escape(w["nodes"])}</label><input id="node" name="node" required maxlength="200">'
            f'<label for="duration">{escape(w["duration"])}</label><input id="duration" name="duration" required maxlength="20" value="2h">'
            f'<label for="comment">{escape(w["comment"])}</label><input id="comment" name="comment" required maxlength="2000">'
            f'<p><button type="submit" id="silence">{escape(w["create"])}</button></p></form></section>'
        )
    if rows:
        heads = ("nodes", "state", "ends", "author", "comment")
        head = "".join(f'<th scope="col">{escape(w[h])}</th>' for h in heads)
        if viewer.can_change:
            head += f'<th scope="col">{escape(w["actions"])}</th>'
        trs = "".join(
            f'<tr id="silence-{escape(r.id)}">'
            + "".join(
                f'<td data-label="{escape(w[k])}">{escape(v)}</td>'
                for k, v in zip(heads, (r.nodes, r.state, r.ends, r.author, r.comment))
            )
            + (
                f'<td data-label="{escape(w["actions"])}">'
                f"{post_button(f'/console/silences/{r.id}/expire', viewer, w['expire'], f'expire-{r.id}')}</td>"
                if viewer.can_change
                else ""
            )
            + "</tr>"
            for r in rows
        )
        listing = f"<table><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>"
    else:
        listing = f"<p>{escape(w['none_silenced'])}</p>"
    body = f'{_message(problem)}{_message(ok, ok=True)}{create}<section class="card">{listing}</section>'
    return page(language, w["silences"], body, viewer)
