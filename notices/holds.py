"""The NOC's alerts that a notification channel is held, and released: pure, like notices/plan.py.

A hold follows a channel (monitord/outbox.py holds one whose credentials are refused or whose
peer is down), not an incident, so its notices are planned apart from incident changes.
"""

from __future__ import annotations

from monitord.model import ChannelHold
from notices.plan import Planned, PlanSettings, key_millis, notification
from notices.templates import HOLD_CAUSES, Rendered, format_duration, format_time, render


def hold_notices(hold: ChannelHold, settings: PlanSettings, probe_every: float) -> list[Planned]:
    """The NOC's alert that a channel is held (a NOC e-mail and a ticket), or released (the same
    e-mail, the ticket resolved). Keyed by the hold's start: once per hold, whatever the retries.
    The outbox drops the items meant for the held channel itself."""
    lang = settings.language
    hold_id = f"hold-{hold.channel}-{key_millis(hold.since)}"
    event = "released" if hold.released else "held"
    values = {
        "channel": hold.channel,
        "cause": HOLD_CAUSES[lang][hold.cause],
        "reason": hold.reason,
        "since": format_time(hold.since, settings.tz, lang),
        "waiting": hold.waiting,
        "probe": format_duration(probe_every, lang),
    }

    def text() -> Rendered:
        return render(f"noc.channel_{event}", lang, values, settings.templates)

    action = "resolve" if hold.released else "create"
    out: list[Planned] = [(notification(f"{hold_id}/ticket/{action}", "ticket", hold_id, action, hold_id, text), None)]
    out += [
        (notification(f"{hold_id}/email/{to}/noc-channel-{event}", "email", to, f"noc-channel-{event}", hold_id, text), None)
        for to in settings.noc_emails
    ]
    return out
