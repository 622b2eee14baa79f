"""The decision table of docs/decisions.md, row by row: what the modem's ICMP, the head-end's row
for the line, the head-end itself and the line's siblings say -> the line's status, the incident
(kind and root) and who is told what, with the exact texts. Pure: the rules engine and the
planner, time passed in, polled every 30 s as the daemon would.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import time

import pytest
from plan_fixtures import at

from monitord.config.rules import parse_rules
from monitord.config.templates import builtin_templates
from monitord.model import (
    Device,
    Exchange,
    Incident,
    IncidentKind,
    Line,
    NodeRef,
    Outcome,
    Phase,
    Region,
    Sample,
    Status,
    Topology,
)
from notices.plan import Planned, PlanSettings, due_cpe_notices, due_updates, plan_step
from rules.engine import Engine, IncidentChange
from rules.verdict import Verdict, line_status

DAY, NIGHT = at("2026-12-01 14:00"), at("2026-12-01 23:30")
ROUND = 30.0
NOC = "noc@isp.example"
SETTINGS = PlanSettings(templates=builtin_templates(), quiet_hours=(time(22, 0), time(8, 0)), noc_emails=(NOC,))
RULES = parse_rules(None)  # shipped defaults: settle 60s, cpe_hold 15m, stable 10m

TR_PHONE, EN_PHONE, MAIL = "+905321111111", "+905322222222", "cagri@example.com"
TOPOLOGY = Topology(
    regions={"izmir": Region("izmir", "İzmir")},
    exchanges={"karsiyaka": Exchange("karsiyaka", "Karşıyaka Santrali", "izmir")},
    devices={
        "dslam-1": Device("dslam-1", "dslam", "karsiyaka", "127.0.0.1", None, ("adsl",), cabinet="k1"),
        "dslam-2": Device("dslam-2", "dslam", "karsiyaka", "127.0.0.2", None, ("adsl",), cabinet="k1"),
        "dslam-3": Device("dslam-3", "dslam", "karsiyaka", "127.0.0.3", None, ("adsl",)),
        "rtr-1": Device("rtr-1", "router", "karsiyaka", "127.0.0.4", None),  # ICMP only: no line rows
    },
    lines={
        "s1": Line("s1", "Ayşe Yılmaz", "dslam-1", phone=TR_PHONE, port=1, modem="127.0.1.1"),
        "s2": Line("s2", "John Smith", "dslam-1", phone=EN_PHONE, language="en", port=2, modem="127.0.1.2"),
        "s3": Line("s3", "Çağrı Öztürk", "dslam-1", email=MAIL, port=3, modem="127.0.1.3"),
        **{f"s{n}": Line(f"s{n}", f"Abone {n}", "dslam-1", port=n, modem=f"127.0.1.{n}") for n in range(4, 9)},
        **{f"t{n}": Line(f"t{n}", f"Abone t{n}", "dslam-2", port=n, modem=f"127.0.2.{n}") for n in range(1, 5)},
        **{f"u{n}": Line(f"u{n}", f"Abone u{n}", "dslam-3", port=n, modem=f"127.0.3.{n}") for n in range(1, 13)},
        "r1": Line("r1", "Ömer Kaya", "rtr-1", phone="+905323333333", modem="127.0.4.1"),
    },
)
HEAD_ENDS = ("dslam-1", "dslam-2", "dslam-3")
IN_SYNC = {"oper_up": 1.0, "in_sync": 1.0, "snr_margin_down_db": 12.0, "snr_margin_up_db": 12.0}
OUT_OF_SYNC = {"oper_up": 0.0}

MODEM_TR = (
    "Modeminizden sinyal alamıyoruz, Karşıyaka Santrali hattınız çalışıyor. "
    "Modemin açık, kablolarının takılı olduğunu kontrol edin."
)
MODEM_EN = (
    "We get no signal from your modem (your Karşıyaka Santrali line works). "
    "Please check it is on and its cables are plugged in."
)


def line_fault_tr(tracking: str) -> str:
    return f"Hattınızda arıza var (Karşıyaka Santrali), ekiplerimiz çalışıyor. Takip no: {tracking}"


def line_fault_en(tracking: str) -> str:
    return f"There is a fault on your line (Karşıyaka Santrali); our teams are on it. Ref: {tracking}"


def area_tr(tracking: str) -> str:
    return f"Bölgenizde (Karşıyaka Santrali) internet arızası var, ekiplerimiz çalışıyor. Takip no: {tracking}"


def area_en(tracking: str) -> str:
    return f"There is an internet outage in your area (Karşıyaka Santrali); our teams are on it. Ref: {tracking}"


@dataclass(frozen=True, slots=True)
class World:
    """What the probes see in one round: silent modems, lines out of sync or without a row,
    head-ends silent on SNMP only or on everything."""

    silent_modems: frozenset[str] = frozenset()
    out_of_sync: frozenset[str] = frozenset()
    no_row: frozenset[str] = frozenset()
    snmp_silent: frozenset[str] = frozenset()  # devices whose agent does not answer (ICMP does)
    dead: frozenset[str] = frozenset()  # devices silent on everything

    def samples(self, now: float) -> list[Sample]:
        out = []
        for device in TOPOLOGY.devices.values():
            node = NodeRef("device", device.id)
            dead = device.id in self.dead
            out.append(
                Sample(node, "icmp", now, Outcome.TIMEOUT if dead else Outcome.OK, {} if dead else {"loss": 0.0, "rtt_ms": 1.0})
            )
            if device.id in HEAD_ENDS:
                silent = dead or device.id in self.snmp_silent
                out.append(Sample(node, "snmp:adsl", now, Outcome.TIMEOUT if silent else Outcome.OK))
        for line in TOPOLOGY.lines.values():
            node = NodeRef("line", line.id)
            silent = line.id in self.silent_modems or line.device in self.dead
            out.append(
                Sample(
                    node, "icmp", now, Outcome.TIMEOUT if silent else Outcome.OK, {} if silent else {"loss": 0.0, "rtt_ms": 5.0}
                )
            )
            if line.device in HEAD_ENDS and line.device not in self.dead | self.snmp_silent:
                if line.id in self.no_row:
                    out.append(Sample(node, "snmp:adsl", now, Outcome.NOT_FOUND))
                else:
                    out.append(
                        Sample(node, "snmp:adsl", now, Outcome.OK, OUT_OF_SYNC if line.id in self.out_of_sync else IN_SYNC)
                    )
        return out


@dataclass(slots=True)
class Told:
    """Every notice planned, once per key as the outbox keeps them, in order; the incidents as
    last committed (the store's view, for the planner's lookups)."""

    settings: PlanSettings
    notices: list[tuple[str, str, str, str]] = field(default_factory=list)  # (channel, recipient, action, body)
    keys: set[str] = field(default_factory=set)
    incidents: dict[str, Incident] = field(default_factory=dict)
    changes: list[IncidentChange] = field(default_factory=list)

    def commit(self, changes: tuple[IncidentChange, ...], now: float) -> None:
        self.add(plan_step(changes, TOPOLOGY, self.settings, now, self.incidents.get))
        for change in changes:
            self.incidents[change.incident.tracking] = change.incident
        self.changes += changes

    def add(self, planned: list[Planned]) -> None:
        for item, _ in planned:
            if item.key not in self.keys:
                self.keys.add(item.key)
                self.notices.append((item.channel, item.recipient, item.action, item.body))


def run(
    world: World,
    *,
    start: float = DAY,
    minutes: float = 20,
    settings: PlanSettings = SETTINGS,
    then: World | None = None,
    then_minutes: float = 0,
) -> tuple[Engine, Told]:
    """Healthy for two rounds, then `world` for `minutes`, then `then` for `then_minutes`;
    the due notices ("still ongoing", modem) looked at every round, as the daemon's tick does."""
    engine = Engine(TOPOLOGY, RULES, "ARZ", "Europe/Istanbul")
    told = Told(settings)
    now = start
    phases = [(World(), 2 * ROUND), (world, minutes * 60), *([(then, then_minutes * 60)] if then else [])]
    for current, length in phases:
        end = now + length
        while now < end:
            told.commit(engine.observe(current.samples(now), now).incidents, now)
            told.add(due_updates(engine.incidents(), TOPOLOGY, settings, now))
            told.add(due_cpe_notices(engine.incidents(), TOPOLOGY, settings, now))
            now += ROUND
    return engine, told


def opened(told: Told) -> list[Incident]:
    return [c.incident for c in told.changes if c.change == "opened"]


def status(engine: Engine, line: str) -> Status:
    return engine.line_state(line).status


# --- the line's status (rules/verdict.py) ---------------------------------------------------------

UP, SILENT, SYNC, NO_SYNC, ERROR = (
    ("up", ""),
    ("down", "icmp: timeout"),
    ("up", ""),
    ("down", "snmp:adsl: not in sync"),
    ("error", "snmp:adsl: timeout"),
)


@pytest.mark.parametrize(
    ("line", "head_end", "expected"),
    [
        ({"icmp": UP, "snmp:adsl": SYNC}, {"icmp": UP, "snmp:adsl": UP}, Status.OK),
        ({"icmp": SILENT, "snmp:adsl": SYNC}, {"icmp": UP, "snmp:adsl": UP}, Status.CPE),
        ({"icmp": SILENT, "snmp:adsl": SYNC}, {"snmp:adsl": UP}, Status.CPE),  # a head-end nobody pings
        ({"icmp": SILENT, "snmp:adsl": NO_SYNC}, {"icmp": UP, "snmp:adsl": UP}, Status.DOWN),
        ({"icmp": UP, "snmp:adsl": NO_SYNC}, {"icmp": UP, "snmp:adsl": UP}, Status.DOWN),
        ({"icmp": SILENT}, {"icmp": UP}, Status.DOWN),  # no row source
        (
            {"icmp": SILENT, "snmp:adsl": SYNC},
            {"icmp": UP, "snmp:adsl": ("down", "snmp:adsl: timeout")},
            Status.DOWN,
        ),  # stale row
        (
            {"icmp": SILENT, "snmp:adsl": SYNC},
            {"icmp": ("down", "icmp: timeout"), "snmp:adsl": UP},
            Status.DOWN,
        ),  # head-end silent on ping
        ({"icmp": SILENT, "snmp:adsl": ERROR}, {"icmp": UP, "snmp:adsl": UP}, Status.DOWN),  # the row could not be read
        (
            {"icmp": SILENT, "snmp:adsl": SYNC, "snmp:if-mib": NO_SYNC},
            {"icmp": UP, "snmp:adsl": UP, "snmp:if-mib": UP},
            Status.DOWN,
        ),
    ],
)
def test_line_status_table(line: dict[str, Verdict], head_end: dict[str, Verdict], expected: Status) -> None:
    assert line_status(line, (), None, head_end)[0] is expected
    assert line_status(line, (), "dslam-1", head_end)[0] is Status.UNREACHABLE


# --- the rows ------------------------------------------------------------------------------------


def test_row_1_modem_answers_line_in_sync_nothing_happens() -> None:
    engine, told = run(World())
    assert status(engine, "s1") is Status.OK
    assert told.changes == [] and told.notices == []


def test_row_2_silent_modem_on_a_line_in_sync_is_the_customers_side_told_once_after_the_hold() -> None:
    world = World(silent_modems=frozenset({"s1", "s2", "s3"}))
    engine, told = run(world, minutes=14)
    assert {status(engine, i) for i in ("s1", "s2", "s3")} == {Status.CPE}
    assert engine.line_state("s1").reasons == ("icmp: timeout", "snmp:adsl: line in sync on the head-end")
    assert told.changes == [] and told.notices == []  # within the 15 min hold: nothing at all

    engine, told = run(world, minutes=20)
    incidents = opened(told)
    assert [(i.kind, i.root, i.affected) for i in incidents] == [
        (IncidentKind.CPE, NodeRef("line", line), frozenset({line})) for line in ("s1", "s2", "s3")
    ]
    assert all(15 * 60 <= i.opened_at - (DAY + 2 * ROUND) <= 15 * 60 + ROUND for i in incidents)
    assert told.notices == [
        ("sms", TR_PHONE, "modem", MODEM_TR),
        ("sms", EN_PHONE, "modem", MODEM_EN),
        ("email", MAIL, "modem", told_email(told, MAIL)),
    ]
    assert "Sayın Çağrı Öztürk" in told.notices[2][3] and "modeminizden sinyal alamıyoruz" in told.notices[2][3]


def told_email(told: Told, to: str) -> str:
    return next(body for channel, recipient, _, body in told.notices if channel == "email" and recipient == to)


def test_row_2_the_modem_comes_back_the_incident_resolves_and_nobody_hears_of_it() -> None:
    world = World(silent_modems=frozenset({"s1"}))
    _, told = run(world, minutes=20, then=World(), then_minutes=15)
    assert [c.change for c in told.changes] == ["opened", "recovering", "resolved"]
    assert told.notices == [("sms", TR_PHONE, "modem", MODEM_TR)]


def test_row_2_at_night_the_modem_notice_waits_for_the_morning_and_only_if_still_silent() -> None:
    world = World(silent_modems=frozenset({"s1"}))
    _, told = run(world, start=NIGHT, minutes=30)
    assert [c.change for c in told.changes] == ["opened"] and told.notices == []
    morning = at("2026-12-02 08:00")
    _, told = run(world, start=NIGHT, minutes=(morning - NIGHT) / 60 + 2)
    assert told.notices == [("sms", TR_PHONE, "modem", MODEM_TR)]
    _, told = run(world, start=NIGHT, minutes=30, then=World(), then_minutes=(morning - NIGHT) / 60)
    assert [c.change for c in told.changes] == ["opened", "recovering", "resolved"] and told.notices == []


@pytest.mark.parametrize(("ticket", "noc", "customers"), [(True, True, False), (True, False, True)])
def test_row_2_who_is_told_is_configurable(ticket: bool, noc: bool, customers: bool) -> None:
    settings = replace(SETTINGS, cpe_ticket=ticket, cpe_noc=noc, cpe_customers=customers)
    _, told = run(World(silent_modems=frozenset({"s1"})), settings=settings)
    tracking = opened(told)[0].tracking
    expected = [("ticket", tracking, "create")] if ticket else []
    expected += [("sms", TR_PHONE, "modem")] if customers else []
    expected += [("email", NOC, "noc-opened")] if noc else []
    assert [n[:3] for n in told.notices] == expected


@pytest.mark.parametrize(
    "fault",
    [
        World(silent_modems=frozenset({"s1", "s2"}), out_of_sync=frozenset({"s1", "s2"})),  # 3: row out of sync
        World(silent_modems=frozenset({"s1", "s2"}), no_row=frozenset({"s1", "s2"})),  # 4: no row on the head-end
        World(out_of_sync=frozenset({"s1", "s2"})),  # 3: out of sync, the modem still answers (e.g. IP over another path)
    ],
    ids=["out-of-sync", "no-row", "out-of-sync-modem-answers"],
)
def test_row_3_4_line_out_of_sync_is_a_line_fault_told_as_the_line_not_the_area(fault: World) -> None:
    engine, told = run(fault, minutes=3, then=World(), then_minutes=12)
    assert status(engine, "s1") is Status.OK
    incidents = opened(told)
    assert [(i.kind, i.root) for i in incidents] == [
        (IncidentKind.OUTAGE, NodeRef("line", "s1")),
        (IncidentKind.OUTAGE, NodeRef("line", "s2")),
    ]
    a, b = (i.tracking for i in incidents)
    assert all(60 <= i.opened_at - (DAY + 2 * ROUND) <= 60 + ROUND for i in incidents)
    assert [n[:3] for n in told.notices] == [
        ("ticket", a, "create"),
        ("sms", TR_PHONE, "outage"),
        ("email", NOC, "noc-opened"),
        ("ticket", b, "create"),
        ("sms", EN_PHONE, "outage"),
        ("email", NOC, "noc-opened"),
        ("ticket", a, "comment"),
        ("ticket", b, "comment"),  # recovering
        ("ticket", a, "resolve"),
        ("sms", TR_PHONE, "restored"),
        ("email", NOC, "noc-resolved"),
        ("ticket", b, "resolve"),
        ("sms", EN_PHONE, "restored"),
        ("email", NOC, "noc-resolved"),
    ]
    bodies = {(n[1], n[2]): n[3] for n in told.notices}
    assert bodies[TR_PHONE, "outage"] == line_fault_tr(a)
    assert bodies[EN_PHONE, "outage"] == line_fault_en(b)
    assert (
        bodies[TR_PHONE, "restored"]
        == f"Hattınızdaki arıza (Karşıyaka Santrali) giderildi, hizmetiniz yeniden çalışıyor. Takip no: {a}"
    )
    assert (
        bodies[EN_PHONE, "restored"] == f"The fault on your line (Karşıyaka Santrali) is fixed and your service is back. Ref: {b}"
    )


def test_row_3_a_long_line_fault_is_still_the_line_in_the_still_ongoing_notice() -> None:
    _, told = run(World(out_of_sync=frozenset({"s1"})), minutes=SETTINGS.update_after / 60 + 5)
    (incident,) = opened(told)
    t = incident.tracking
    assert [n[2:] for n in told.notices if n[1] == TR_PHONE] == [
        ("outage", line_fault_tr(t)),
        ("update", f"Hattınızdaki arıza (Karşıyaka Santrali) sürüyor, ekiplerimiz çalışıyor. Özür dileriz. Takip no: {t}"),
    ]


def test_row_2_a_long_silent_modem_hears_nothing_more() -> None:
    _, told = run(World(silent_modems=frozenset({"s1"})), minutes=SETTINGS.update_after / 60 + 20)
    assert told.notices == [("sms", TR_PHONE, "modem", MODEM_TR)]


def test_row_5_no_row_source_icmp_only_keeps_todays_outage_told_as_the_line() -> None:
    engine, told = run(World(silent_modems=frozenset({"r1"})), minutes=3)
    assert status(engine, "r1") is Status.DOWN
    (incident,) = opened(told)
    assert (incident.kind, incident.root) == (IncidentKind.OUTAGE, NodeRef("line", "r1"))
    assert told.notices == [
        ("ticket", incident.tracking, "create", told.notices[0][3]),
        ("sms", "+905323333333", "outage", line_fault_tr(incident.tracking)),
        ("email", NOC, "noc-opened", told.notices[2][3]),
    ]


def test_row_6_a_row_last_read_before_the_agent_went_quiet_does_not_count_as_in_sync() -> None:
    """The head-end answers ping but not SNMP: the line's last row is stale, so a silent modem
    cannot be told from a line fault: today's line outage."""
    engine, told = run(World(silent_modems=frozenset({"s1"}), snmp_silent=frozenset({"dslam-1"})), minutes=3)
    assert status(engine, "s1") is Status.DOWN
    (incident,) = opened(told)
    assert (incident.kind, incident.root) == (IncidentKind.OUTAGE, NodeRef("line", "s1"))
    assert [n[:3] for n in told.notices] == [
        ("ticket", incident.tracking, "create"),
        ("sms", TR_PHONE, "outage"),
        ("email", NOC, "noc-opened"),
    ]


def test_row_7_head_end_down_is_the_devices_outage_told_as_the_area() -> None:
    engine, told = run(World(dead=frozenset({"dslam-1"})), minutes=3)
    assert status(engine, "s1") is Status.UNREACHABLE
    (incident,) = opened(told)
    assert (incident.kind, incident.root) == (IncidentKind.OUTAGE, NodeRef("device", "dslam-1"))
    t = incident.tracking
    assert [n[:3] for n in told.notices] == [
        ("ticket", t, "create"),
        ("sms", TR_PHONE, "outage"),
        ("sms", EN_PHONE, "outage"),
        ("email", MAIL, "outage"),
        ("email", NOC, "noc-opened"),
    ]
    bodies = {(n[1], n[2]): n[3] for n in told.notices}
    assert bodies[TR_PHONE, "outage"] == area_tr(t) and bodies[EN_PHONE, "outage"] == area_en(t)


@pytest.mark.parametrize(
    ("silent", "root"),
    [
        ({f"s{n}" for n in range(1, 9)}, NodeRef("device", "dslam-1")),
        ({f"s{n}" for n in range(1, 9)} | {f"t{n}" for n in range(1, 5)}, NodeRef("cabinet", "k1")),
    ],
    ids=["device", "cabinet"],
)
@pytest.mark.parametrize("in_sync", [True, False], ids=["in-sync", "out-of-sync"])
def test_row_8_9_many_lines_of_one_device_or_cabinet_are_its_outage(silent: set[str], root: NodeRef, in_sync: bool) -> None:
    """Silent modems on lines in sync behind one node are not each customer's modem (a BRAS or
    backhaul fault): like lines out of sync, they are the node's outage, after `settle`."""
    world = World(silent_modems=frozenset(silent), out_of_sync=frozenset() if in_sync else frozenset(silent))
    engine, told = run(world, minutes=3)
    assert status(engine, "s1") is (Status.CPE if in_sync else Status.DOWN)
    (incident,) = opened(told)
    assert (incident.kind, incident.root, incident.affected) == (IncidentKind.OUTAGE, root, frozenset(silent))
    assert incident.opened_at - (DAY + 2 * ROUND) <= 60 + ROUND
    t = incident.tracking
    assert [n[:3] for n in told.notices] == [
        ("ticket", t, "create"),
        ("sms", TR_PHONE, "outage"),
        ("sms", EN_PHONE, "outage"),
        ("email", MAIL, "outage"),
        ("email", NOC, "noc-opened"),
    ]
    bodies = {(n[1], n[2]): n[3] for n in told.notices}
    assert bodies[TR_PHONE, "outage"] == area_tr(t) and bodies[EN_PHONE, "outage"] == area_en(t)


def test_row_10_after_an_area_outage_a_modem_that_stays_silent_is_told_about_the_modem_not_restored() -> None:
    """The head-end comes back, every line syncs, one modem does not answer: the others hear
    "restored"; that customer, once the area no longer counts, hears about the modem instead."""
    engine, told = run(
        World(dead=frozenset({"dslam-1"})), minutes=3, then=World(silent_modems=frozenset({"s1"})), then_minutes=25
    )
    assert status(engine, "s1") is Status.CPE
    area, modem = opened(told)
    assert (area.root, modem.kind, modem.root) == (NodeRef("device", "dslam-1"), IncidentKind.CPE, NodeRef("line", "s1"))
    to_s1 = [n[2:] for n in told.notices if n[1] == TR_PHONE]
    assert to_s1 == [("outage", area_tr(area.tracking)), ("modem", MODEM_TR)]
    assert ("sms", EN_PHONE, "restored") in [n[:3] for n in told.notices]
    assert told.incidents[area.tracking].phase is Phase.RESOLVED


def test_row_11_a_silent_modem_whose_line_then_drops_out_of_sync_becomes_a_line_fault() -> None:
    _, told = run(
        World(silent_modems=frozenset({"s1"})),
        minutes=20,
        then=World(silent_modems=frozenset({"s1"}), out_of_sync=frozenset({"s1"})),
        then_minutes=3,
    )
    cpe = opened(told)[0]
    fault = next(c.incident for c in told.changes if c.incident.kind is IncidentKind.OUTAGE)
    assert (cpe.kind, fault.root) == (IncidentKind.CPE, NodeRef("line", "s1"))
    assert [n[:3] for n in told.notices] == [
        ("sms", TR_PHONE, "modem"),
        ("ticket", fault.tracking, "create"),
        ("ticket", fault.tracking, "comment"),
        ("sms", TR_PHONE, "outage"),
        ("email", NOC, "noc-opened"),
    ]
    assert told.notices[3][3] == line_fault_tr(fault.tracking)


def test_the_table_in_the_docs_lists_every_row_tested_here() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "decisions.md").read_text(encoding="utf-8")
    for row in range(1, 12):
        assert f"| {row} |" in text, row
    t = "ARZ-2026-000123"
    for message in (MODEM_TR, MODEM_EN, line_fault_tr(t), line_fault_en(t), area_tr(t), area_en(t)):
        assert message in text, message
