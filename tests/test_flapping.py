"""A line whose interface toggles every poll: one incident, one number, its severity moving.

The rules engine and the planner first (ifOperStatus down, then up but flapping, every 30 s for
5 minutes at the default rules), then the whole daemon against the lab with the local peers.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from lab.isp import write_config
from lab.world import start_world, stop_world
from monitord.config import load_config
from monitord.config.rules import parse_rules
from monitord.config.templates import builtin_templates
from monitord.demo import until
from monitord.model import Incident, IncidentKind, Line, NodeRef, Notification, Outcome, Phase, Status
from notices.plan import PlanSettings, plan_step
from notices.throttle import CommentThrottle
from rules.engine import Engine, Step
from tests.blocks import own_base
from tests.rules_fixtures import T0, changes, dead, device, engine, line, topology
from tests.test_end_to_end import started

PHONE = "+905321111111"


def flap(e: Engine, line_id: str, commit=lambda step, now: None) -> list[Step]:
    """Down, up, down... every 30 s for 5 minutes, then up for three hours."""
    steps = []
    for i in range(1, 11):
        now = T0 + 30 * i
        steps.append(e.observe([line(line_id, at=now, oper_up=float(i % 2 == 0))], now))
        commit(steps[-1], now)
    for i in range(11, 360):
        now = T0 + 30 * i
        steps.append(e.observe([line(line_id, at=now, oper_up=1.0)], now))
        commit(steps[-1], now)
    return steps


def test_a_flapping_line_keeps_one_number_and_changes_severity() -> None:
    e = engine(topology({"x1": {"d1": [1, 2, 3, 4, 5, 6]}}))
    incident_changes = [c for step in flap(e, "d1-1") for c in step.incidents]
    number = "ARZ-2026-000001"
    assert [change[:2] for step in [Step(incidents=tuple(incident_changes))] for change in changes(step)] == [
        ("opened", number),
        ("severity", number),
        ("recovering", number),
        ("resolved", number),
    ]
    opened, severity, _, resolved = incident_changes
    assert opened.incident.kind is IncidentKind.OUTAGE and opened.incident.opened_at == T0 + 150
    assert severity.incident.kind is IncidentKind.DEGRADATION and severity.was is IncidentKind.OUTAGE
    assert severity.incident.updated_at == T0 + 300 + 600, "degradation only once up (flapping) for `stable`"
    assert resolved.incident.affected == {"d1-1"}


def test_a_degraded_line_that_goes_down_escalates_its_incident_at_once() -> None:
    e = engine(topology({"x1": {"d1": [1, 2, 3, 4, 5, 6]}}))
    e.observe([line("d1-1", at=T0 + 10, snr_margin_down_db=3.0)], T0 + 10)
    e.tick(T0 + 130)  # below 6 dB for 2 minutes
    e.tick(T0 + 200)  # settled
    (degraded,) = e.incidents()
    assert degraded.kind is IncidentKind.DEGRADATION
    step = e.observe([line("d1-1", at=T0 + 230, oper_up=0.0)], T0 + 230)
    assert [(c.change, c.incident.tracking, c.incident.kind, c.was) for c in step.incidents] == [
        ("severity", degraded.tracking, IncidentKind.OUTAGE, IncidentKind.DEGRADATION)
    ]


def test_an_snmp_agent_that_misses_polls_is_not_a_flapping_device() -> None:
    """A busy DSLAM agent misses a poll now and then while the DSLAM answers its ping and every
    line is fine: no incident. The same DSLAM going away (ping and SNMP) and back is flapping."""
    topo = topology({"x1": {"d1": [1, 2, 3, 4, 5, 6]}})
    e = engine(topo)
    d1 = NodeRef("device", "d1")
    for n in range(1, 21):
        now = T0 + 60 * n
        missed = n in (3, 6, 9)
        e.observe([device("d1", Outcome.TIMEOUT if missed else Outcome.OK, at=now), device("d1", at=now, probe="icmp")], now)
        e.observe([] if missed else [line(i, at=now) for i in topo.lines], now)
        e.tick(now + 1)
    assert e.incidents() == []
    assert e.node_state(d1).status is Status.OK

    for n in range(21, 27):
        now = T0 + 60 * n
        e.observe(dead("d1", now) if n % 2 else [device("d1", at=now), device("d1", at=now, probe="icmp")], now)
        e.tick(now + 1)
    state = e.node_state(d1)
    assert state.status is Status.DEGRADED and state.reasons[0].startswith("flapping"), state


def planned_for_flapping(notify_degradation: bool) -> list[tuple[str, str, str]]:
    """(channel, recipient, action) of every item the planner queues for a flapping line, in order,
    once per key as the store keeps them."""
    topo = topology({"x1": {"d1": [1, 2, 3, 4, 5, 6]}})
    topo = replace(topo, lines={**topo.lines, "d1-1": Line("d1-1", "Ayşe Yılmaz", "d1", phone=PHONE)})
    e = engine(topo)
    settings = PlanSettings(templates=builtin_templates(), timezone="UTC", notify_degradation=notify_degradation)
    committed: dict[str, Incident] = {}
    queued: dict[str, tuple[str, str, str]] = {}

    def commit(step: Step, now: float) -> None:
        for item, _ in plan_step(step.incidents, topo, settings, now, committed.get):
            queued.setdefault(item.key, (item.channel, item.recipient, item.action))
        committed.update((c.incident.tracking, c.incident) for c in step.incidents)

    flap(e, "d1-1", commit)
    return list(queued.values())


def test_the_helpdesk_and_the_customer_hear_of_a_flapping_line_once() -> None:
    number = "ARZ-2026-000001"
    assert planned_for_flapping(notify_degradation=False) == [
        ("ticket", number, "create"),
        ("sms", PHONE, "outage"),
        ("ticket", number, "comment"),
        ("sms", PHONE, "restored"),  # severity: for them the outage is over
        ("ticket", number, "comment"),  # recovering
        ("ticket", number, "resolve"),
    ]
    assert planned_for_flapping(notify_degradation=True) == [
        ("ticket", number, "create"),
        ("sms", PHONE, "outage"),
        ("ticket", number, "comment"),  # severity
        ("ticket", number, "comment"),  # recovering
        ("ticket", number, "resolve"),
        ("sms", PHONE, "restored"),
    ]


# Once the toggling stops, the severity drops after `stable` (6 s) up, and the flap clears after
# window * ln(score): the window keeps that well past 6 s even when a loaded machine's polls see
# the toggles 8 s apart (score 3, 22 s), where a 10 s window cleared first (score 1.8, 6 s)
FLAP_FAST = {"kind": "flap", "window": "20s", "above": 1.5, "clear": 1}


@pytest.mark.xdist_group("lab-world-2")  # see LAB_WORLDS in tests/conftest.py
async def test_a_flapping_line_end_to_end(tmp_path):
    """ifOperStatus toggled every poll: one tracking number, the helpdesk's ticket created,
    commented on when the severity drops and when the line recovers, resolved once stable; the
    customer gets one outage SMS and one restoration SMS, and nobody else hears anything."""
    world = await start_world(tmp_path, base=own_base(70))
    try:
        write_config(world.isp.root, rules={"technologies": {"adsl": {"flapping": FLAP_FAST}, "if-mib": {"flapping": FLAP_FAST}}})
        topo = load_config(world.config).topology
        line_id = min(
            i for i, l in topo.lines.items() if l.port is not None and l.phone and topo.devices[l.device].kind == "dslam"
        )
        phone = topo.lines[line_id].phone
        daemon, stop, task = await started(world.config)
        await until(lambda: all(daemon.line_state(i).status.value == "ok" for i in topo.lines), 60, "all lines ok")

        for toggle in range(8):  # each toggle held until a poll has seen it (line_interval 2 s), however slow the machine
            up = toggle % 2 == 1
            world.snmp.set_oper_status(line_id, up=up)
            await until(lambda: (daemon.line_state(line_id).status is Status.DOWN) is not up, 30, f"toggle {toggle} seen")
        world.snmp.set_oper_status(line_id, up=True)

        def resolved() -> Incident | None:
            found = [i for i in daemon.store.incidents(open_only=False) if str(i.root) == f"line:{line_id}"]
            return found[0] if found and found[0].phase is Phase.RESOLVED else None

        incident = await until(resolved, 120, "the flapping line's incident resolved")
        await until(lambda: len(world.twilio.messages) >= 2, 30, "the restoration SMS")
        await asyncio.sleep(3)  # anything more would be noise

        incidents = daemon.store.incidents(open_only=False)
        assert [i.tracking for i in incidents] == [incident.tracking], [(i.tracking, str(i.root), i.kind) for i in incidents]
        assert list(world.tickets.tickets) == [incident.tracking]
        history = world.tickets.tickets[incident.tracking].history
        assert [entry.action for entry in history] == ["create", "comment", "comment", "resolve"], history
        assert "Kesinti -> Kalite düşüşü" in history[1].body or "Outage -> Degradation" in history[1].body
        sms = [(m.to, m.body) for m in world.twilio.messages]
        assert [to for to, _ in sms] == [phone, phone] and all(incident.tracking in body for _, body in sms), sms
        sent = sorted((i for i in daemon.store.items(channel="sms") if i.status == "sent"), key=lambda i: i.sent_at or 0)
        assert [(i.notification.action, i.notification.body) for i in sent] == [("outage", sms[0][1]), ("restored", sms[1][1])]
        stop.set()
        await task
    finally:
        await stop_world(world)


def test_ticket_comments_are_rate_limited_per_incident_and_coalesced() -> None:
    """Without a flap rule the line alternates recovering / reopened every poll: the helpdesk gets
    the first comment at once, the rest in one comment 10 minutes later, before the resolution."""
    topo = topology({"x1": {"d1": [1, 2, 3, 4, 5, 6]}})
    e = engine(topo, replace(parse_rules({"technologies": {"adsl": {"flapping": None}}}), settle=20.0))
    settings = PlanSettings(templates=builtin_templates(), timezone="UTC")
    throttle = CommentThrottle(600.0)
    committed: dict[str, Incident] = {}
    calls: list[tuple[float, str, str]] = []
    changed: list[str] = []

    def commit(step: Step, now: float) -> None:
        changed.extend(c.change for c in step.incidents)
        planned = plan_step(step.incidents, topo, settings, now, committed.get)
        calls.extend((now - T0, n.action, n.body) for n, _ in throttle.admit(planned, now) if n.channel == "ticket")
        committed.update((c.incident.tracking, c.incident) for c in step.incidents)

    for i in range(1, 60):
        now = T0 + 30 * i
        commit(e.observe([line("d1-1", at=now, oper_up=float(i % 2 == 0 or i > 10))], now), now)
        commit(e.tick(now + 25), now + 25)
    assert changed.count("recovering") == 5 and changed.count("reopened") == 4
    assert [(at, action) for at, action, _ in calls] == [
        (55.0, "create"),
        (60.0, "comment"),
        (660.0, "comment"),
        (900.0, "resolve"),
    ]
    merged = calls[2][2]
    assert merged.count("Arıza yeniden başladı") == 4 and merged.count("Hatlar düzeliyor") == 4


def test_a_held_comment_goes_before_the_ticket_is_resolved() -> None:
    def comment(key: str, body: str) -> Notification:
        return Notification(key, "ticket", "ARZ-1", "comment", "", body, "ARZ-1")

    throttle = CommentThrottle(600.0)
    assert [n.key for n, _ in throttle.admit([(comment("a", "one"), None)], 0.0)] == ["a"]
    assert throttle.admit([(comment("b", "two"), None), (comment("c", "three"), None)], 10.0) == []
    resolve = Notification("r", "ticket", "ARZ-1", "resolve", "", "done", "ARZ-1")
    out = throttle.admit([(resolve, None)], 20.0)
    assert [(n.key, n.action, n.body) for n, _ in out] == [("b/+1", "comment", "two\n\nthree\n"), ("r", "resolve", "done")]
    assert throttle.admit([(comment("d", "four"), None)], 30.0) == [], "ten minutes after the last comment"
    assert [n.key for n, _ in throttle.admit([], 620.0)] == ["d"]


def test_comment_every_is_configured_per_helpdesk(tmp_path) -> None:
    from lab.isp import build_sample_isp
    from monitord.config import ConfigError

    isp = build_sample_isp(tmp_path)
    tickets = {"kind": "webhook", "url": "http://127.0.0.1:9/tickets"}
    write_config(tmp_path, {"tickets": tickets})
    assert load_config(isp.config).notifiers.tickets.comment_every == 600.0
    write_config(tmp_path, {"tickets": {**tickets, "comment_every": "30s"}})
    assert load_config(isp.config).notifiers.tickets.comment_every == 30.0
    write_config(tmp_path, {"tickets": {**tickets, "comment_every": "often"}})
    try:
        load_config(isp.config)
    except ConfigError as error:
        assert "notifiers.tickets.comment_every" in str(error) and "config.yaml:" in str(error)
    else:
        raise AssertionError("a bad comment_every was accepted")


def test_a_stop_releases_every_held_comment() -> None:
    """The daemon's last step before it stops runs with `every` 0: nothing stays in memory."""
    throttle = CommentThrottle(600.0)
    first = Notification("a", "ticket", "ARZ-1", "comment", "", "one", "ARZ-1")
    held = Notification("b", "ticket", "ARZ-1", "comment", "", "two", "ARZ-1")
    throttle.admit([(first, None)], 0.0)
    assert throttle.admit([(held, None)], 5.0) == []
    throttle.every = 0.0
    assert [n.key for n, _ in throttle.admit([], 6.0)] == ["b"] and throttle.held == {}


def test_the_store_follows_an_incidents_severity_but_refuses_another_incident_with_its_number(tmp_path) -> None:
    from monitord.database import StoreError
    from monitord.model import NodeRef
    from monitord.store import Store

    store = Store.open(tmp_path / "state.db")
    try:
        outage = Incident(
            "ARZ-2026-000001", IncidentKind.OUTAGE, NodeRef("line", "s1"), Phase.OPEN, T0, T0, frozenset({"s1"}), ()
        )
        store.commit_step(None, [outage], [], T0)
        degraded = replace(outage, kind=IncidentKind.DEGRADATION, phase=Phase.UPDATED, updated_at=T0 + 600)
        store.commit_step(None, [degraded], [], T0 + 600)
        assert store.incident(outage.tracking) == degraded
        other = replace(outage, root=NodeRef("line", "s2"), opened_at=T0 + 700)
        try:
            store.commit_step(None, [other], [], T0 + 700)
        except StoreError as error:
            assert "already belongs to another incident" in str(error)
        else:
            raise AssertionError("another incident took a number already issued")
    finally:
        store.close()


def test_a_recovering_degradation_that_comes_back_as_an_outage_tells_the_customer() -> None:
    topo = topology({"x1": {"d1": [1, 2, 3, 4, 5, 6]}})
    topo = replace(topo, lines={**topo.lines, "d1-1": Line("d1-1", "Ayşe Yılmaz", "d1", phone=PHONE)})
    e = engine(topo)
    settings = PlanSettings(templates=builtin_templates(), timezone="UTC")
    committed: dict[str, Incident] = {}
    heard: list[tuple[str, str]] = []

    def commit(step: Step, now: float) -> None:
        heard.extend(
            (c.change, n.action)
            for c in step.incidents
            for n, _ in plan_step((c,), topo, settings, now, committed.get)
            if n.channel == "sms"
        )
        committed.update((c.incident.tracking, c.incident) for c in step.incidents)

    commit(e.observe([line("d1-1", at=T0 + 10, snr_margin_down_db=3.0)], T0 + 10), T0 + 10)
    commit(e.tick(T0 + 130), T0 + 130)
    commit(e.tick(T0 + 200), T0 + 200)  # a degradation: customers are not told
    commit(e.observe([line("d1-1", at=T0 + 230)], T0 + 230), T0 + 230)  # good again: recovering
    commit(e.observe([line("d1-1", at=T0 + 260, oper_up=0.0)], T0 + 260), T0 + 260)
    assert [i.kind for i in e.incidents()] == [IncidentKind.OUTAGE]
    assert heard == [("reopened", "outage")]
