"""Planned-maintenance notices to the subscribers behind a window's scope: pure, called every tick.

Keys hold the window, the recipient and the notice (lead or completion) and no time, so calling
this every tick queues each notice once (the store ignores keys it already has).

Timing:
- advance notices at each lead time before the start (default 48 h and 2 h). A notice due in
  quiet hours is pulled back to the minute before they begin (a 2 h notice for a 01:00 window
  goes out at 21:59, not at 08:00 after the work). Only the latest due lead is sent, so a daemon
  started an hour before a window sends one notice, not two.
- completion once the window and its grace are over, for up to `max_age` after that; it waits
  for the end of quiet hours. It goes only to those whose service came back by then: the lines
  still down at that edge (the rules engine's `overran`) hear the apology and then the
  restoration from plan(), and never that the work was completed, not even after the fix.

Who hears by SMS and who by e-mail (opt-outs, preferences), and what a template error does, is
decided per subscriber by notices.plan.customer_notice, as for incident notices.
"""

from __future__ import annotations

from collections.abc import Iterable

from monitord.model import MaintenanceWindow, NodeRef, Topology
from notices.plan import Planned, PlanSettings, customer_notice, quiet_began, quiet_until
from notices.templates import format_window

LEAD_TIMES: tuple[float, ...] = (48 * 3600.0, 2 * 3600.0)


def lines_behind(topology: Topology, scope: Iterable[NodeRef]) -> list[str]:
    """Subscriber ids inside any node of `scope` (a node, anything below it, or a line itself)."""
    nodes = set(scope)
    return sorted(
        line
        for line in topology.lines
        if NodeRef("line", line) in nodes or nodes.intersection(topology.ancestors(NodeRef("line", line)))
    )


def lead_due(start: float, lead: float, settings: PlanSettings) -> float:
    """When the notice `lead` seconds before `start` goes out, moved out of quiet hours."""
    due = start - lead
    began = quiet_began(due, settings)
    return due if began is None else began - 60.0


def due_maintenance_notices(
    windows: Iterable[MaintenanceWindow],
    topology: Topology,
    now: float,
    settings: PlanSettings,
    lead_times: Iterable[float] = LEAD_TIMES,
    overrun_lines: frozenset[str] = frozenset(),
    max_age: float = 86400.0,
) -> list[Planned]:
    """Advance and completion notices due at `now`. `overrun_lines`: lines still down when their
    window closed (they get no completion notice)."""
    leads = sorted(lead_times)
    out: list[Planned] = []
    for window in windows:
        if now < window.start:
            due = [lead for lead in leads if lead_due(window.start, lead, settings) <= now]
            if due:
                late = quiet_until(now, settings)
                not_before = late if late is not None and late < window.start else None
                out += _notices(window, topology, settings, "maintenance", f"maintenance-{due[0] / 3600:g}h", not_before)
        elif window.end + window.grace <= now < window.end + window.grace + max_age:
            out += _notices(
                window, topology, settings, "maintenance_done", "maintenance-done", quiet_until(now, settings), skip=overrun_lines
            )
    return out


def _notices(
    window: MaintenanceWindow,
    topology: Topology,
    settings: PlanSettings,
    template: str,
    phase: str,
    not_before: float | None,
    skip: frozenset[str] = frozenset(),
) -> list[Planned]:
    out: list[Planned] = []
    for line_id in lines_behind(topology, window.scope):
        if line_id in skip:
            continue
        line = topology.lines[line_id]
        exchange = topology.exchanges[topology.devices[line.device].exchange]
        values = {
            "area": exchange.name,
            "window": format_window(window.start, window.end, settings.tz, line.language),
            "reason": window.reason or "-",
        }
        notice = customer_notice(
            line,
            template=template,
            phase=phase,
            values=values,
            key=window.id,
            not_before=not_before,
            settings=settings,
            incident=None,
        )
        if notice is not None:
            out.append(notice)
    return out
