"""The console's maintenance page: windows planned or under way, a form to plan one and a button
to cancel one (pure: monitord/console.py reads the windows and makes the changes).

The form asks for local times (`datetime-local`, read in the configured time zone, as the API
reads a time without an offset); what it refuses is the API's own message, shown above the form
with the values entered kept, so a typo costs one correction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from monitord.console_pages import Viewer, _csrf, _message, page, post_button, words
from monitord.model import Language

FIELDS = ("scope", "start", "end", "reason")


@dataclass(frozen=True, slots=True)
class WindowRow:
    id: str
    scope: str
    start: str  # ISO 8601 in the configured time zone
    end: str
    reason: str
    active: bool
    from_config: bool  # cancelled only by editing the config file


def maintenance_page(
    rows: Sequence[WindowRow],
    viewer: Viewer,
    language: Language,
    zone: str,
    problem: str | None = None,
    ok: str | None = None,
    entered: Mapping[str, str] | None = None,
) -> str:
    w = words(language)
    body = _message(problem) + _message(ok, ok=True)
    if viewer.can_change:
        body += _form(viewer, w, zone, entered or {})
    body += f'<section class="card">{_listing(rows, viewer, w)}</section>'
    return page(language, w["maintenance"], body, viewer)


def _form(viewer: Viewer, w: Mapping[str, str], zone: str, entered: Mapping[str, str]) -> str:
    value = lambda name: escape(entered.get(name, ""))  # noqa: E731
    return (
        f'<section class="card"><form method="post" action="/console/maintenance">{_csrf(viewer)}'
        f'<label for="scope">{escape(w["scope"])}</label>'
        f'<input id="scope" name="scope" required maxlength="2000" value="{value("scope")}">'
        f'<label for="start">{escape(w["start"])}</label>'
        f'<input id="start" name="start" type="datetime-local" required value="{value("start")}" aria-describedby="zone">'
        f'<label for="end">{escape(w["end"])}</label>'
        f'<input id="end" name="end" type="datetime-local" required value="{value("end")}" aria-describedby="zone">'
        f'<p id="zone"><small>{escape(w["zone"].format(zone=zone))}</small></p>'
        f'<label for="reason">{escape(w["reason"])}</label>'
        f'<input id="reason" name="reason" maxlength="500" value="{value("reason")}">'
        f'<p><button type="submit" id="plan">{escape(w["plan"])}</button></p></form></section>'
    )


def _listing(rows: Sequence[WindowRow], viewer: Viewer, w: Mapping[str, str]) -> str:
    if not rows:
        return f'<p id="none-planned">{escape(w["none_planned"])}</p>'
    heads = ("scope", "start", "end", "reason", "state") + (("actions",) if viewer.can_change else ())
    head = "".join(f'<th scope="col">{escape(w[h])}</th>' for h in heads)
    trs = []
    for r in rows:
        cells = (r.scope, r.start, r.end, r.reason, w["active"] if r.active else w["planned"])
        tds = "".join(f'<td data-label="{escape(w[k])}">{escape(v)}</td>' for k, v in zip(heads, cells))
        if viewer.can_change:
            action = (
                escape(w["from_config"])
                if r.from_config
                else post_button(f"/console/maintenance/{r.id}/cancel", viewer, w["cancel"], f"cancel-{r.id}")
            )
            tds += f'<td data-label="{escape(w["actions"])}">{action}</td>'
        trs.append(f'<tr id="window-{escape(r.id)}">{tds}</tr>')
    return f'<table><thead><tr>{head}</tr></thead><tbody>{"".join(trs)}</tbody></table>'
