"""Closing an incident by hand (issue 13 item 1): the engine's side. The incident resolves at once
("closed") with who and why; members still failing are muted until they recover once, so the
closed incident neither reopens nor gives way to a new one while the fault lasts; restarts keep it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from lab.isp import build_sample_isp
from monitord.config import load_config
from monitord.config.templates import builtin_templates
from monitord.incident_actions import Refusal
from monitord.model import IncidentEvent, NodeRef, Outcome, Phase, Sample
from monitord.outbox import Outbox
from monitord.pipeline import Pipeline, resume
from monitord.store import Store
from notices.alerts import AlertSettings, plan_alerts
from notices.plan import PlanSettings, plan, workflow_ticket
from rules.engine import Closure, Engine, IncidentChange
from tests.plan_fixtures import TOPOLOGY, at
from tests.plan_fixtures import incident as plan_incident
from tests.rules_fixtures import T0, changes, dead, device, engine, line, rules, topology

TWO_DSLAMS = topology({"x": {"d1": list(range(10)), "d2": list(range(10))}, "y": {"d3": list(range(10))}})
TRACKING = "ARZ-2026-000001"


def _down_line(e: Engine) -> None:
    e.observe([line("d1-0", Outcome.NOT_FOUND, T0 + 60)], T0 + 60)
    assert changes(e.tick(T0 + 120)) == [("opened", TRACKING, "line:d1-0")]


def test_closing_a_failing_line_resolves_it_and_mutes_the_line_until_it_recovers() -> None:
    e = engine(TWO_DSLAMS)
    _down_line(e)
    assert e.closable(TRACKING) and not e.closable("ARZ-2026-999999")
    step = e.close(TRACKING, Closure("ayse", "customer moved out, line to be ceased"), T0 + 200)
    assert not e.closable(TRACKING)
    assert step is not None and changes(step) == [("closed", TRACKING, "line:d1-0")]
    (change,) = step.incidents
    assert change.incident.phase is Phase.RESOLVED and change.incident.resolved_at == T0 + 200
    assert change.closed == Closure("ayse", "customer moved out, line to be ceased", frozenset({"d1-0"}))
    assert change.incident.evidence[-1] == "closed by hand by ayse: customer moved out, line to be ceased"
    assert e.incidents() == [] and e.incident(TRACKING) is None  # forgotten: it never reopens

    for minute in range(4, 30):  # the line still fails: nothing opens again
        now = T0 + 60 * minute
        assert e.observe([line("d1-0", Outcome.NOT_FOUND, now)], now).incidents == ()
        assert e.tick(now + 30).incidents == ()
    assert e.close(TRACKING, Closure("ayse", "again"), T0 + 1900) is None  # no longer open

    e.observe([line("d1-0", at=T0 + 2000)], T0 + 2000)  # recovered once: unmuted
    e.observe([line("d1-0", Outcome.NOT_FOUND, T0 + 2100)], T0 + 2100)
    assert changes(e.tick(T0 + 2160)) == [("opened", "ARZ-2026-000002", "line:d1-0")]  # a new number


def test_closing_a_recovering_incident_mutes_nothing() -> None:
    e = engine(TWO_DSLAMS)
    _down_line(e)
    e.observe([line("d1-0", at=T0 + 180)], T0 + 180)  # recovering, not yet verified
    step = e.close(TRACKING, Closure("ayse", "verified by phone"), T0 + 200)
    assert step is not None and step.incidents[0].closed == Closure("ayse", "verified by phone", frozenset())
    e.observe([line("d1-0", Outcome.NOT_FOUND, T0 + 300)], T0 + 300)
    assert changes(e.tick(T0 + 360)) == [("opened", "ARZ-2026-000002", "line:d1-0")]


def test_a_closed_device_incident_stays_closed_while_the_device_is_dead_and_other_faults_still_open() -> None:
    e = engine(TWO_DSLAMS)
    e.observe(dead("d1", T0 + 60), T0 + 60)
    assert changes(e.tick(T0 + 120)) == [("opened", TRACKING, "device:d1")]
    step = e.close(TRACKING, Closure("mehmet", "DSLAM decommissioned"), T0 + 130)
    assert step is not None and len(step.incidents[0].closed.muted) == 10  # type: ignore[union-attr]
    for minute in range(3, 20):
        now = T0 + 60 * minute
        assert e.observe(dead("d1", now), now).incidents == ()
        assert e.tick(now + 30).incidents == ()
    e.observe([line("d2-3", Outcome.NOT_FOUND, T0 + 1300)], T0 + 1300)  # another fault is news, its own:
    assert changes(e.tick(T0 + 1360)) == [("opened", "ARZ-2026-000002", "line:d2-3")]  # muted lines count for no exchange fault
    e.observe([device("d1", at=T0 + 1400), *(line(f"d1-{n}", at=T0 + 1400) for n in range(10))], T0 + 1400)
    e.observe(dead("d1", T0 + 1500), T0 + 1500)  # back once, then dark again: a new incident of its own
    e.tick(T0 + 1560)  # with d2-3 down, now an exchange outage: d1 counts again
    assert {i.tracking: i.root.level for i in e.incidents() if "d1-0" in i.affected} == {"ARZ-2026-000003": "exchange"}


def test_a_restart_from_the_snapshot_keeps_the_mute() -> None:
    e = engine(TWO_DSLAMS)
    _down_line(e)
    assert e.close(TRACKING, Closure("ayse", "ceased"), T0 + 200) is not None
    rows = e.changes()
    assert rows.targets["line:d1-0"]["muted"] is True  # type: ignore[index]
    assert rows.incidents[TRACKING] is None  # the engine forgets it; the store keeps it resolved
    resumed = Engine.restore(TWO_DSLAMS, rules(), "ARZ", json.loads(json.dumps(e.snapshot())))
    for minute in range(4, 15):
        now = T0 + 60 * minute
        assert resumed.observe([line("d1-0", Outcome.NOT_FOUND, now)], now).incidents == ()
        assert resumed.tick(now + 30).incidents == ()
    resumed.observe([line("d1-0", at=T0 + 1000), device("d1", at=T0 + 1000)], T0 + 1000)
    resumed.observe([line("d1-0", Outcome.NOT_FOUND, T0 + 1100)], T0 + 1100)
    assert changes(resumed.tick(T0 + 1160)) == [("opened", "ARZ-2026-000002", "line:d1-0")]


async def test_a_close_through_the_pipeline_is_kept_by_the_store_across_a_restart(tmp_path: Path) -> None:
    """The close is recorded and its step written; a daemon started again on the same state file
    neither reopens the incident nor opens a new one while the line fails, and refuses a second close."""
    config = load_config(build_sample_isp(tmp_path, base="127.6.48").config)
    victim = min(config.topology.lines)
    clock = [1_780_000_000.0]
    store = Store.open(config.state_file)

    def pipeline() -> Pipeline:
        return Pipeline(config, resume(config, store), store, Outbox(store, {}, {}), clock=lambda: clock[0], recheck=str)

    async def fails(p: Pipeline, seconds: float) -> list[str]:
        """The line fails for `seconds`, polled every 10 s; the changes it makes."""
        told: list[str] = []
        for _ in range(int(seconds // 10)):
            clock[0] += 10
            step = await p.ingest([Sample(NodeRef("line", victim), "snmp:adsl", clock[0], Outcome.NOT_FOUND)])
            told += [c.change for c in step.incidents]
            await p.tick()
        return told

    try:
        first = pipeline()
        await fails(first, config.rules.settle + 30)
        (opened,) = first.engine.incidents()
        close = IncidentEvent(opened.tracking, "close", "ayse", clock[0], "line ceased")
        assert await first.close(close) is None
        assert store.incident(opened.tracking).phase is Phase.RESOLVED  # type: ignore[union-attr]
        assert store.incident_events(opened.tracking) == [close]
        assert await first.close(replace(close, actor="mehmet")) == Refusal(
            409, f"incident {opened.tracking} is resolved: it can no longer be acknowledged, taken or closed"
        )
        assert await fails(first, 60) == []

        second = pipeline()  # a restart on the same state file
        assert await fails(second, config.rules.settle + 120) == [] and second.engine.incidents() == []
        assert store.incident_events(opened.tracking) == [close], "the refused close recorded nothing"
        clock[0] += 10
        await second.ingest([Sample(NodeRef("line", victim), "snmp:adsl", clock[0], Outcome.OK)])
        assert "opened" in await fails(second, config.rules.settle + 30)
        (again,) = second.engine.incidents()
        assert again.tracking != opened.tracking
    finally:
        store.close()


def test_what_a_close_by_hand_says_and_to_whom() -> None:
    """The ticket resolved with who and why; "restored" only to the lines that recovered (s1 is
    still down: a false "restored" is as bad as a missed one); no NOC e-mail; the alert ends."""
    settings = PlanSettings(templates=builtin_templates(), noc_emails=("noc@isp.example",), language="en")
    closed = plan_incident(phase=Phase.RESOLVED, updated=at("2026-12-01 14:00"), resolved=at("2026-12-01 14:00"))
    change = IncidentChange(closed, "closed", closed=Closure("ayse", "cabinet rebuilt, s1 moved", frozenset({"s1"})))
    planned = plan(change, TOPOLOGY, settings, at("2026-12-01 14:00"), lambda _: plan_incident())
    by_channel = sorted((n.channel, n.recipient, n.action) for n, _ in planned)
    assert by_channel == [
        ("email", "cagri@example.com", "restored"),
        ("sms", "+905322222222", "restored"),
        ("ticket", "ARZ-2026-000123", "resolve"),
    ]
    (ticket,) = [n for n, _ in planned if n.channel == "ticket"]
    assert "Closed by hand in monitord by ayse: cabinet rebuilt, s1 moved" in ticket.body
    assert "Lines still failing then: 1" in ticket.body
    again = plan(change, TOPOLOGY, settings, at("2026-12-01 14:05"), lambda _: plan_incident())
    assert [n.key for n, _ in again] == [n.key for n, _ in planned], "the same keys: written twice, sent once"
    (alert,) = plan_alerts([change], TOPOLOGY, AlertSettings())
    assert alert[0].key.startswith("ARZ-2026-000123/alert/closed/") and '"endsAt"' in alert[0].body


def test_an_acknowledgement_and_an_owner_for_the_ticket() -> None:
    settings = PlanSettings(templates=builtin_templates(), language="en")
    acked = workflow_ticket(
        plan_incident(),
        IncidentEvent("ARZ-2026-000123", "ack", "ayse", at("2026-12-01 13:05")),
        TOPOLOGY,
        settings,
        0,
        set_owner=True,
    )
    assert acked is not None and (acked[0].action, acked[0].key) == ("comment", "ARZ-2026-000123/ticket/ack")
    owner = IncidentEvent("ARZ-2026-000123", "owner", "ayse", at("2026-12-01 13:06"), "mehmet")
    to_rt = workflow_ticket(plan_incident(), owner, TOPOLOGY, settings, 0, set_owner=True)
    to_webhook = workflow_ticket(plan_incident(), owner, TOPOLOGY, settings, 0, set_owner=False)
    assert to_rt is not None and (to_rt[0].action, to_rt[0].subject) == ("owner", "mehmet")
    assert to_webhook is not None and to_webhook[0].action == "comment" and to_webhook[0].subject != "mehmet"
    assert "mehmet took this incident (set in monitord by ayse" in to_rt[0].body
    note = IncidentEvent("ARZ-2026-000123", "note", "ayse", at("2026-12-01 13:07"), "private")
    assert workflow_ticket(plan_incident(), note, TOPOLOGY, settings, 0, set_owner=True) is None
