from __future__ import annotations

from dataclasses import replace
from datetime import time
from typing import Any

import pytest
from plan_fixtures import TOPOLOGY, at

from monitord.config.templates import builtin_templates
from monitord.model import MaintenanceWindow, NodeRef
from notices.maintenance import due_maintenance_notices, lead_due, lines_behind
from notices.plan import Planned, PlanSettings
from notifiers.sms import sms_segments

SETTINGS = PlanSettings(templates=builtin_templates(), quiet_hours=(time(22, 0), time(8, 0)))
W = "mw-2026-12-01-sisli"
NIGHT_WORK = MaintenanceWindow(
    W, (NodeRef("exchange", "sisli"),), at("2026-12-01 01:00"), at("2026-12-01 04:00"), "Santral yazılım güncellemesi"
)
P1, P2, P3, P5 = "+905321111111", "+905322222222", "cagri@example.com", "+905325555555"


def keys(planned: list[Planned]) -> list[tuple[str, float | None]]:
    return sorted((n.key, nb) for n, nb in planned)


def notices(now: float, windows: tuple[MaintenanceWindow, ...] = (NIGHT_WORK,), **kw: Any) -> list[Planned]:
    return due_maintenance_notices(windows, TOPOLOGY, now, SETTINGS, **kw)


def expected(suffix: str, not_before: float | None = None) -> list[tuple[str, float | None]]:
    return sorted((f"{W}/{ch}/{to}/{suffix}", not_before) for ch, to in [("sms", P1), ("sms", P2), ("email", P3), ("sms", P5)])


def test_scope_covers_lines_below_the_node_and_single_lines() -> None:
    assert lines_behind(TOPOLOGY, [NodeRef("exchange", "sisli")]) == ["s1", "s2", "s3", "s4", "s5"]
    assert lines_behind(TOPOLOGY, [NodeRef("cabinet", "sisli-k12"), NodeRef("line", "s6")]) == ["s1", "s2", "s3", "s4", "s6"]


def test_leads_due_in_quiet_hours_move_to_the_evening_before() -> None:
    assert lead_due(NIGHT_WORK.start, 2 * 3600, SETTINGS) == at("2026-11-30 21:59")
    assert lead_due(NIGHT_WORK.start, 48 * 3600, SETTINGS) == at("2026-11-28 21:59")
    assert lead_due(at("2026-12-01 14:00"), 2 * 3600, SETTINGS) == at("2026-12-01 12:00")


@pytest.mark.parametrize(
    ("now", "suffix"),
    [
        ("2026-11-28 21:58", None),
        ("2026-11-28 21:59", "maintenance-48h"),
        ("2026-11-29 12:00", "maintenance-48h"),
        ("2026-11-30 21:59", "maintenance-2h"),
        ("2026-12-01 00:30", "maintenance-2h"),  # late but before the start: send even in quiet hours
        ("2026-12-01 02:00", None),
        ("2026-12-01 04:14", None),  # still inside the grace
    ],
)
def test_advance_notices_at_48h_and_2h(now: str, suffix: str | None) -> None:
    assert keys(notices(at(now))) == (expected(suffix) if suffix else [])


def test_keys_are_stable_across_ticks() -> None:
    first, again = notices(at("2026-11-29 09:00")), notices(at("2026-11-30 10:00"))
    assert first == again


def test_a_notice_due_at_night_well_before_the_work_waits_for_morning() -> None:
    later = replace(NIGHT_WORK, start=at("2026-12-05 01:00"), end=at("2026-12-05 04:00"))
    assert keys(notices(at("2026-12-03 23:30"), (later,))) == expected("maintenance-48h", at("2026-12-04 08:00"))


def test_completion_after_the_grace_waits_for_morning_and_skips_overrun_lines() -> None:
    now = at("2026-12-01 04:15")
    assert keys(notices(now)) == expected("maintenance-done", at("2026-12-01 08:00"))
    without_s1 = keys(notices(now, overrun_lines=frozenset({"s1"})))
    assert without_s1 == [k for k in expected("maintenance-done", at("2026-12-01 08:00")) if P1 not in k[0]]
    assert notices(at("2026-12-02 04:15")) == []


def test_texts_carry_the_local_window_in_each_language() -> None:
    items = {n.recipient: n for n, _ in notices(at("2026-11-30 21:59"))}
    assert (
        items[P1].body == "Şişli Santrali bölgesinde 01.12.2026 01:00-04:00 arasında planlı bakım var, internetiniz kesilebilir."
    )
    assert "1 Dec 2026 01:00-04:00" in items[P2].body
    assert items[P3].subject == "Planlı bakım: 01.12.2026 01:00-04:00" and "Santral yazılım güncellemesi" in items[P3].body
    assert all(sms_segments(n.body) <= 2 for n in items.values() if n.channel == "sms")
    assert {n.action for n in items.values()} == {"maintenance-2h"} and all(n.incident is None for n in items.values())


def test_sms_opt_out_and_email_preference_apply_to_maintenance_notices() -> None:
    lines = TOPOLOGY.lines
    topology = replace(
        TOPOLOGY,
        lines={
            **lines,
            "s1": replace(lines["s1"], email="ayse@example.com", prefer_email=True),
            "s2": replace(lines["s2"], sms_opt_out=True),
        },
    )
    planned = due_maintenance_notices([NIGHT_WORK], topology, at("2026-11-30 21:59"), SETTINGS)
    assert sorted((n.channel, n.recipient) for n, _ in planned) == [("email", "ayse@example.com"), ("email", P3), ("sms", P5)]


def test_custom_lead_times() -> None:
    planned = notices(at("2026-11-30 13:00"), lead_times=(12 * 3600,))
    assert {n.action for n, _ in planned} == {"maintenance-12h"}
