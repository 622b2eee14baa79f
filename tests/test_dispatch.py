"""Field dispatch (issue 12 item 6): which faults need a truck, read from what the probes say,
and the dispatch ticket that sends it (notices/dispatch.py); the signatures also from a real rules
engine fed samples, and the dispatch ticket read back by the stage sync (`ticket_stage`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

import pytest
from dispatch_fixtures import CABINET_SITE, HOME, MODEM_SILENT, OPENED, PORT_DOWN, States, outage, topology

from lab.tickets import TicketDesk
from monitord.config.model import StageSyncConfig
from monitord.config.templates import builtin_templates
from monitord.model import Incident, IncidentKind, NodeRef, Notification, Outcome, Phase, Sample, Secret, Status, Topology
from monitord.rtsync import ticket_stage
from monitord.stages import DEFAULT_TABLE
from notices.dispatch import (
    DISPATCH_LIST_MAX,
    Dispatcher,
    DispatchSettings,
    dispatch_closures,
    dispatch_key,
    dispatched_incident,
    due_dispatches,
    field_signature,
)
from notices.plan import PlanSettings
from notifiers.webhook import WebhookTickets
from rules.engine import Engine, IncidentChange
from tests import rules_fixtures as rf
from tests.test_rt_stages import item as rt_stage_item

TOPO = topology()
CABINET_LINES = frozenset(line for line in TOPO.lines if line.startswith("s"))
DSLAM = NodeRef("device", "sisli-dslam-01")
SETTINGS = PlanSettings(templates=builtin_templates(), timezone="Europe/Istanbul")
FIELD = DispatchSettings(queue="Saha Ekibi", delay=600.0)
DROP = {"line:s001": (Status.DOWN, (MODEM_SILENT, PORT_DOWN))}


def signature(incident: Incident, states: Mapping[str, tuple[Status, tuple[str, ...]]], topo: Topology = TOPO) -> str | None:
    found = field_signature(incident, topo, States(states))
    return None if found is None else found.signature


# --- the signatures -----------------------------------------------------------------------------


def test_a_cabinet_dslam_answering_while_its_lines_are_down_is_a_cut_cable() -> None:
    found = field_signature(outage(DSLAM, CABINET_LINES), TOPO, States({}))
    assert found is not None and found.signature == "cable"
    assert found.facts == ("device:sisli-dslam-01: ok", "12 lines down behind device:sisli-dslam-01")


def test_a_cabinet_rooted_outage_is_a_cable_when_every_head_end_in_it_answers() -> None:
    two = replace(
        TOPO,
        devices={
            **TOPO.devices,
            "sisli-dslam-03": replace(TOPO.devices["sisli-dslam-02"], id="sisli-dslam-03", cabinet="sisli-k12"),
        },
    )
    cabinet = outage(NodeRef("cabinet", "sisli-k12"), CABINET_LINES)
    assert signature(cabinet, {}, two) == "cable"
    assert signature(cabinet, {"device:sisli-dslam-03": (Status.UNKNOWN, ("snmp:adsl: auth_failure",))}, two) is None


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        (DROP, "drop"),  # port out of sync, modem silent, DSLAM answers
        ({"line:s001": (Status.DOWN, (PORT_DOWN,))}, None),  # the modem is pinged and did not say it is silent
        ({"line:s001": (Status.DOWN, (MODEM_SILENT,))}, None),  # only the modem is silent: the port says nothing
        ({"line:s001": (Status.DOWN, (MODEM_SILENT, "snmp:adsl: no row on the device"))}, None),  # provisioning, not a cable
        ({"line:s001": (Status.CPE, (MODEM_SILENT, "snmp:adsl: line in sync on the head-end"))}, None),  # customer premises
        ({**DROP, "device:sisli-dslam-01": (Status.UNKNOWN, ("snmp:adsl: timeout",))}, None),  # the DSLAM itself unsure
        ({**DROP, "device:sisli-dslam-01": (Status.DEGRADED, ("icmp: loss 20%",))}, "drop"),  # degraded still answers
    ],
)
def test_a_single_line_is_a_drop_wire_only_when_its_port_and_its_modem_both_say_so(states: dict, expected: str | None) -> None:
    assert signature(outage(NodeRef("line", "s001"), frozenset({"s001"})), states) == expected


def test_a_line_without_a_modem_address_is_judged_by_its_port_alone() -> None:
    topo = replace(TOPO, lines={**TOPO.lines, "t001": replace(TOPO.lines["t001"], modem=None)})
    line = outage(NodeRef("line", "t001"), frozenset({"t001"}))
    assert signature(line, {"line:t001": (Status.DOWN, (PORT_DOWN,))}, topo) == "drop"


def test_a_silent_device_is_a_site_fault_only_while_another_device_of_its_exchange_answers() -> None:
    dead = {"device:sisli-dslam-01": (Status.DOWN, ("icmp: timeout", "snmp:adsl: timeout"))}
    incident = outage(DSLAM, CABINET_LINES)
    found = field_signature(incident, TOPO, States(dead))
    assert found is not None and found.signature == "site"
    assert found.facts[-1] == "device:sisli-dslam-02 of the same exchange answers"
    both_dead = {**dead, "device:sisli-dslam-02": (Status.DOWN, ("icmp: timeout",))}
    assert signature(incident, both_dead) is None, "the way to the exchange may be down: the NOC's, not a truck's"
    alone = outage(NodeRef("device", "kadikoy-olt-01"), frozenset({"k001"}))
    assert signature(alone, {"device:kadikoy-olt-01": (Status.DOWN, ("icmp: timeout",))}) is None


@pytest.mark.parametrize(
    "incident",
    [
        outage(DSLAM, CABINET_LINES, kind=IncidentKind.DEGRADATION),
        outage(DSLAM, CABINET_LINES, kind=IncidentKind.OVERRUN),
        outage(NodeRef("line", "s001"), frozenset({"s001"}), kind=IncidentKind.CPE),
        outage(DSLAM, CABINET_LINES, phase=Phase.RECOVERING),
        outage(DSLAM, CABINET_LINES, phase=Phase.RESOLVED),
        outage(NodeRef("exchange", "sisli"), CABINET_LINES),
        outage(NodeRef("region", "ist-avrupa"), CABINET_LINES),
        outage(NodeRef("device", "gone"), frozenset()),
        outage(NodeRef("line", "gone"), frozenset({"gone"})),
    ],
)
def test_what_is_never_dispatched(incident: Incident) -> None:
    assert signature(incident, DROP) is None


# --- the same signatures from a real rules engine ---------------------------------------------


def _engine_after(samples_at: Callable[[float], list[Sample]], topo: Topology, seconds: float = 700.0) -> Engine:
    engine = rf.engine(topo)
    for k in range(0, int(seconds), 30):
        t = rf.T0 + 30 + k
        engine.observe(samples_at(t), t)
    return engine


def test_the_engine_s_own_states_show_each_signature() -> None:
    topo = rf.topology({"x": {"d1": list(range(1, 11)), "d2": [1, 2]}}, {"d1": "k1"})

    def cut(t: float) -> list[Sample]:
        lines = [rf.line(f"d1-{n}", at=t, oper_up=0.0) for n in range(1, 11)]
        return [rf.device("d1", at=t), rf.device("d1", at=t, probe="icmp"), rf.device("d2", at=t), *lines]

    def drop(t: float) -> list[Sample]:
        lines = [rf.line(f"d1-{n}", at=t, oper_up=0.0 if n == 1 else 1.0) for n in range(1, 11)]
        return [rf.device("d1", at=t), rf.device("d2", at=t), *lines, rf.line("d1-1", Outcome.TIMEOUT, at=t, probe="icmp")]

    def power(t: float) -> list[Sample]:
        return [*rf.dead("d1", t), rf.device("d2", at=t)]

    for samples, root, expected in ((cut, "device:d1", "cable"), (drop, "line:d1-1", "drop"), (power, "device:d1", "site")):
        engine = _engine_after(samples, topo)
        [incident] = engine.incidents()
        found = field_signature(incident, topo, engine.node_state)
        assert str(incident.root) == root and found is not None and found.signature == expected


def test_several_lines_of_one_dslam_down_each_on_its_own_are_not_sent_a_truck_each() -> None:
    """Below the engine's correlation threshold (5 lines) a cut cable shows as line outages:
    one truck per line would go to the same cut, so none goes as a drop wire."""
    topo = rf.topology({"x": {"d1": list(range(1, 11)), "d2": [1]}})

    def three_down(t: float) -> list[Sample]:
        lines = [rf.line(f"d1-{n}", at=t, oper_up=0.0 if n <= 3 else 1.0) for n in range(1, 11)]
        return [rf.device("d1", at=t), rf.device("d2", at=t), *lines]

    engine = _engine_after(three_down, topo)
    assert [str(i.root) for i in engine.incidents()] == ["line:d1-1", "line:d1-2", "line:d1-3"]
    assert due_dispatches(engine.incidents(), topo, SETTINGS, replace(FIELD, delay=0.0), rf.T0 + 800, engine.node_state) == []


# --- the dispatch ticket ----------------------------------------------------------------------


def test_no_truck_before_the_delay_one_ticket_after_it_in_the_field_queue() -> None:
    incident = outage(DSLAM, CABINET_LINES)
    assert due_dispatches([incident], TOPO, SETTINGS, FIELD, OPENED + 599, States({})) == []
    [(item, not_before)] = due_dispatches([incident], TOPO, SETTINGS, FIELD, OPENED + 600, States({}))
    assert not_before is None, "staff are told at once, day or night"
    assert (item.key, item.channel, item.recipient, item.action) == (
        "ARZ-2026-000123/dispatch/create",
        "ticket",
        "ARZ-2026-000123/saha",
        "create",
    )
    assert (item.incident, item.route, item.error) == ("ARZ-2026-000123", "Saha Ekibi", None)
    assert item.subject == "[ARZ-2026-000123] Saha: Kablo arızası (kabin/santral ile abone arası) - sisli-dslam-01 (dslam)"
    for said in (
        "Kabin: sisli-k12",
        f"Saha adresi: {CABINET_SITE}",
        "Saha koordinatı: 41.060200, 28.987700",
        "Santral: Şişli Santrali",
    ):
        assert said in item.body
    assert "openstreetmap.org/?mlat=41.060200&mlon=28.987700" in item.body
    assert f"- s001 Abone 1, {HOME} (+90532***0001)" in item.body, "subscribers with their address, phones masked"
    assert "- device:sisli-dslam-01: ok" in item.body and "+905320000001" not in item.body


def test_a_drop_ticket_names_the_subscriber_s_address_and_coordinates_in_english_too() -> None:
    incident = outage(NodeRef("line", "s001"), frozenset({"s001"}), evidence=(f"line:s001: {MODEM_SILENT}; {PORT_DOWN}",))
    english = replace(SETTINGS, language="en")
    [(item, _)] = due_dispatches([incident], TOPO, english, FIELD, OPENED + 3600, States(DROP))
    assert item.subject.startswith("[ARZ-2026-000123] Field: Subscriber line fault")
    for said in (
        f"Subscriber address: {HOME}",
        "Subscriber coordinates: 41.061100, 28.986600",
        "Cabinet: sisli-k12",
        "port: " + PORT_DOWN,
    ):
        assert said in item.body
    assert "modem 127.0.20.1 silent" in item.body


def test_the_subscriber_list_is_bounded() -> None:
    big = topology(lines_on_cabinet=DISPATCH_LIST_MAX + 30)
    lines = frozenset(line for line in big.lines if line.startswith("s"))
    [(item, _)] = due_dispatches([outage(DSLAM, lines)], big, SETTINGS, FIELD, OPENED + 600, States({}))
    assert item.body.count("\n- s") == DISPATCH_LIST_MAX
    assert "... ve 30 abone daha" in item.body


def test_a_place_the_inventory_does_not_locate_is_written_as_a_dash_and_a_webhook_gets_no_route() -> None:
    bare = replace(
        TOPO,
        devices={**TOPO.devices, "sisli-dslam-01": replace(TOPO.devices["sisli-dslam-01"], location=None, lat=None, lon=None)},
    )
    [(item, _)] = due_dispatches(
        [outage(DSLAM, CABINET_LINES)], bare, SETTINGS, DispatchSettings(queue=None), OPENED + 600, States({})
    )
    assert "Saha adresi: -" in item.body and "Saha koordinatı: -" in item.body and item.route is None


def test_the_dispatcher_plans_each_ticket_once_and_closes_it_with_the_incident() -> None:
    queued: set[str] = set()
    dispatcher = Dispatcher(FIELD, queued.__contains__)
    incident = outage(DSLAM, CABINET_LINES)
    assert len(dispatcher.due([incident], TOPO, SETTINGS, OPENED + 600, States({}))) == 1
    assert dispatcher.due([incident], TOPO, SETTINGS, OPENED + 630, States({})) == [], "not rendered again every tick"
    resolved = replace(incident, phase=Phase.RESOLVED, resolved_at=OPENED + 5400, updated_at=OPENED + 5400)
    [(item, _)] = dispatcher.closures([IncidentChange(resolved, "resolved")], TOPO, SETTINGS, OPENED + 5400)
    assert (item.key, item.recipient, item.action, item.route) == (
        f"ARZ-2026-000123/dispatch/resolve/{round((OPENED + 5400) * 1000)}",
        "ARZ-2026-000123/saha",
        "resolve",
        "Saha Ekibi",
    )
    assert "Saha kaydı kapatıldı" in item.body and "1 sa 30 dk" in item.body
    restarted = Dispatcher(FIELD, queued.__contains__)  # after a restart it knows only what the store queued
    assert restarted.closures([IncidentChange(resolved, "resolved")], TOPO, SETTINGS, OPENED + 5400) == []
    queued.add(dispatch_key("ARZ-2026-000123"))
    assert len(restarted.closures([IncidentChange(resolved, "resolved")], TOPO, SETTINGS, OPENED + 5400)) == 1


def test_an_incident_merged_into_a_wider_one_closes_its_dispatch_ticket_saying_so() -> None:
    merged = replace(outage(DSLAM, CABINET_LINES), phase=Phase.RESOLVED, resolved_at=OPENED + 60)
    change = IncidentChange(merged, "merged", merged_into="ARZ-2026-000200")
    [(item, _)] = dispatch_closures([change], TOPO, SETTINGS, FIELD, OPENED + 60, lambda tracking: True)
    assert "ARZ-2026-000200 kaydına birleştirildi" in item.body and item.action == "resolve"
    assert dispatch_closures([IncidentChange(merged, "recovering")], TOPO, SETTINGS, FIELD, OPENED, lambda t: True) == []


# --- the dispatch ticket read back ------------------------------------------------------------


@pytest.mark.parametrize(
    ("tracking", "incident"),
    [("ARZ-2026-000123/saha", "ARZ-2026-000123"), ("ARZ-2026-000123", None), ("/saha", None), ("ARZ/saha/x", None)],
)
def test_a_dispatch_ticket_s_tracking_value_names_its_incident(tracking: str, incident: str | None) -> None:
    assert dispatched_incident(tracking) == incident


def _ticket(tracking: str, owner: str = "Nobody", status: str = "new", stage: str | None = None) -> dict:
    """test_rt_stages' ticket, tagged `tracking`."""
    ticket = rt_stage_item(stage, status, owner)
    ticket["CustomFields"][0]["values"] = [tracking]
    return ticket


@pytest.mark.parametrize(
    ("ticket", "expected"),
    [
        (_ticket("ARZ-2026-000123/saha", owner="saha1"), ("ARZ-2026-000123", "field_team", "saha1")),  # taken
        (_ticket("ARZ-2026-000123/saha"), None),  # nobody took it yet
        (_ticket("ARZ-2026-000123/saha", status="stalled"), None),  # its status says nothing of the incident
        (_ticket("ARZ-2026-000123/saha", stage="santral"), ("ARZ-2026-000123", "at_exchange", "ayse")),  # the field wins
        (_ticket("ARZ-2026-000123", owner="mehmet"), None),  # the incident's own ticket: stage_sync.owner unset here
        (_ticket("ARZ-2026-000123", status="stalled"), ("ARZ-2026-000123", "at_exchange", "ayse")),
    ],
)
def test_taking_a_dispatch_ticket_sets_the_field_team_stage(ticket: dict, expected: tuple | None) -> None:
    found = ticket_stage(ticket, DEFAULT_TABLE, StageSyncConfig(status={"stalled": "at_exchange"}), "field_team")
    assert (None if found is None else (found.tracking, found.stage.id, found.actor)) == expected


# --- a webhook helpdesk -----------------------------------------------------------------------


async def test_a_webhook_helpdesk_gets_the_dispatch_ticket_as_a_ticket_of_its_own() -> None:
    incident = outage(DSLAM, CABINET_LINES)
    webhook = DispatchSettings(queue=None, delay=600.0)
    [(create, _)] = due_dispatches([incident], TOPO, SETTINGS, webhook, OPENED + 600, States({}))
    resolved = replace(incident, phase=Phase.RESOLVED, resolved_at=OPENED + 3600)
    [(close, _)] = dispatch_closures(
        [IncidentChange(resolved, "resolved")], TOPO, SETTINGS, webhook, OPENED + 3600, lambda t: True
    )
    own = Notification("ARZ-2026-000123/ticket/create", "ticket", "ARZ-2026-000123", "create", "[ARZ-2026-000123] Kesinti", "x")
    async with TicketDesk(token="hook-token-0123456789") as desk:
        hook = WebhookTickets(desk.url, Secret("hook-token-0123456789", "env:HOOK"), timeout=5)
        try:
            ids = [await hook.send(item) for item in (own, create, close)]
        finally:
            await hook.close()
        assert ids[0] != ids[1] == ids[2]
        assert [e.action for e in desk.tickets["ARZ-2026-000123/saha"].history] == ["create", "resolve"]
        assert [e.action for e in desk.tickets["ARZ-2026-000123"].history] == ["create"]
        assert CABINET_SITE in desk.tickets["ARZ-2026-000123/saha"].history[0].body
