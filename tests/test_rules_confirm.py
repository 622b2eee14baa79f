"""A device outage confirmed by an immediate recheck opens at once, with its whole exchange.

Default rules (settle 60 s, gather 10 s). Every device answers ICMP and SNMP; a poll is one
probe's samples, as the daemon feeds them.
"""

from __future__ import annotations

from monitord.model import NodeRef, Outcome, Status
from rules.engine import Engine
from tests.rules_fixtures import T0, changes, device, healthy, line, rules, topology

EXCHANGE = topology({"x": {"d1": list(range(10)), "d2": list(range(10)), "d3": list(range(4))}, "y": {"d4": list(range(10))}})


def started(topo=EXCHANGE) -> Engine:
    e = Engine(topo, rules(), "ARZ")
    e.observe([*healthy(topo), *(device(d, probe="icmp") for d in topo.devices)], T0)
    return e


def icmp_sweep(dev: str, at: float, topo=EXCHANGE, outcome: Outcome = Outcome.TIMEOUT) -> list:
    """The device's ICMP job: the device and its modems, all silent (or all answering)."""
    modems = [line(i, outcome, at, "icmp") for i, l in topo.lines.items() if l.device == dev]
    return [device(dev, outcome, at, "icmp"), *modems]


def test_a_confirmed_dslam_outage_opens_within_seconds_not_after_settle() -> None:
    e = started()
    first = e.observe(icmp_sweep("d1", T0 + 100), T0 + 100)
    assert first.recheck == ("d1", "d2", "d3")  # suspected: it and its exchange are polled at once
    assert first.incidents == ()
    for sibling, at in (("d2", 101), ("d3", 101.5)):  # the siblings answer their rechecks
        e.observe(icmp_sweep(sibling, T0 + at, outcome=Outcome.OK), T0 + at)
    down = e.observe([device("d1", Outcome.TIMEOUT, T0 + 104)], T0 + 104)
    assert e.node_state(NodeRef("device", "d1")).status is Status.DOWN
    assert down.recheck == ("d1",) and down.incidents == ()  # down but seen once by SNMP: look again
    confirmed = e.observe(icmp_sweep("d1", T0 + 105.5), T0 + 105.5)
    assert changes(confirmed) == [("opened", "ARZ-2026-000001", "device:d1")]
    assert confirmed.incidents[0].incident.affected == {f"d1-{n}" for n in range(10)}
    assert e.tick(T0 + 200).incidents == ()  # nothing grows afterwards


def test_a_device_that_answers_its_recheck_opens_nothing_while_a_confirmed_one_opens() -> None:
    e = started()
    e.observe([device("d4", Outcome.TIMEOUT, T0 + 100, "icmp")], T0 + 100)  # three echoes to the DSLAM lost
    e.observe([device("d4", Outcome.TIMEOUT, T0 + 104)], T0 + 104)  # and an SNMP timeout: down
    e.observe(icmp_sweep("d4", T0 + 105, outcome=Outcome.OK), T0 + 105)  # the recheck answers
    e.observe([device("d4", at=T0 + 106)], T0 + 106)
    assert [e.tick(T0 + t).incidents for t in (110, 170, 400)] == [(), (), ()]
    e.observe(icmp_sweep("d1", T0 + 410), T0 + 410)
    e.observe([*icmp_sweep("d2", T0 + 411, outcome=Outcome.OK), *icmp_sweep("d3", T0 + 411, outcome=Outcome.OK)], T0 + 411)
    e.observe([device("d1", Outcome.TIMEOUT, T0 + 414)], T0 + 414)
    assert changes(e.observe(icmp_sweep("d1", T0 + 415), T0 + 415)) == [("opened", "ARZ-2026-000001", "device:d1")]


def test_a_dark_exchange_opens_once_with_every_device_counted() -> None:
    e = started()
    e.observe(icmp_sweep("d1", T0 + 100), T0 + 100)
    e.observe(icmp_sweep("d2", T0 + 101), T0 + 101)  # the sibling recheck's ICMP answers first
    e.observe([device("d1", Outcome.TIMEOUT, T0 + 104)], T0 + 104)
    assert e.observe(icmp_sweep("d1", T0 + 105), T0 + 105).incidents == ()  # d1 confirmed, d2 still suspected
    e.observe(icmp_sweep("d3", T0 + 105.5), T0 + 105.5)
    e.observe([device("d2", Outcome.TIMEOUT, T0 + 106)], T0 + 106)
    assert e.observe(icmp_sweep("d2", T0 + 107), T0 + 107).incidents == ()  # d3 still suspected
    e.observe([device("d3", Outcome.TIMEOUT, T0 + 108)], T0 + 108)
    opened = e.observe(icmp_sweep("d3", T0 + 109), T0 + 109)
    assert changes(opened) == [("opened", "ARZ-2026-000001", "exchange:x")]
    assert len(opened.incidents[0].incident.affected) == 24
    assert [e.tick(T0 + t).incidents for t in (120, 200, 300)] == [(), (), ()]  # no growth after the notice


def test_a_device_confirmed_before_its_siblings_answer_waits_for_their_answers() -> None:
    """The CMTS of a dark exchange can be confirmed before the DSLAMs' first rechecks are back:
    opened then, it would be merged into the exchange's incident moments later (two tickets)."""
    e = started()
    e.observe(icmp_sweep("d1", T0 + 100), T0 + 100)  # suspected: d2 and d3 are asked to answer
    e.observe([device("d1", Outcome.TIMEOUT, T0 + 101)], T0 + 101)
    assert e.observe(icmp_sweep("d1", T0 + 102), T0 + 102).incidents == ()  # confirmed, d2 and d3 not back yet
    assert e.observe(icmp_sweep("d2", T0 + 103, outcome=Outcome.OK), T0 + 103).incidents == ()  # d3 still out
    assert changes(e.observe(icmp_sweep("d3", T0 + 103.5), T0 + 103.5)) == []  # d3 suspected: wait on
    e.observe(icmp_sweep("d2", T0 + 104, outcome=Outcome.OK), T0 + 104)  # d2 answers d3's recheck too
    e.observe([device("d3", Outcome.TIMEOUT, T0 + 106)], T0 + 106)
    opened = e.observe(icmp_sweep("d3", T0 + 107), T0 + 107)
    assert changes(opened) == [("opened", "ARZ-2026-000001", "exchange:x")]
    assert len(opened.incidents[0].incident.affected) == 14


def test_a_healthy_siblings_answer_releases_the_waiting_outage_at_once() -> None:
    e = started()
    e.observe(icmp_sweep("d1", T0 + 100), T0 + 100)
    e.observe([device("d1", Outcome.TIMEOUT, T0 + 101)], T0 + 101)
    e.observe(icmp_sweep("d1", T0 + 102), T0 + 102)
    assert e.observe(icmp_sweep("d2", T0 + 102.5, outcome=Outcome.OK), T0 + 102.5).incidents == ()
    released = e.observe(icmp_sweep("d3", T0 + 103, outcome=Outcome.OK), T0 + 103)
    assert changes(released) == [("opened", "ARZ-2026-000001", "device:d1")]


def test_an_unanswered_recheck_holds_an_outage_for_gather_at_most() -> None:
    e = started()
    e.observe(icmp_sweep("d1", T0 + 100), T0 + 100)
    e.observe([device("d1", Outcome.TIMEOUT, T0 + 101)], T0 + 101)
    e.observe(icmp_sweep("d1", T0 + 102), T0 + 102)
    assert e.tick(T0 + 109.9).incidents == ()
    assert changes(e.tick(T0 + 110)) == [("opened", "ARZ-2026-000001", "device:d1")]


def test_gathering_is_bounded_by_gather() -> None:
    e = started()
    e.observe(icmp_sweep("d1", T0 + 100), T0 + 100)
    e.observe([device("d2", Outcome.TIMEOUT, T0 + 101)], T0 + 101)  # d2 suspected, its recheck never answers
    e.observe([device("d1", Outcome.TIMEOUT, T0 + 104)], T0 + 104)
    e.observe(icmp_sweep("d1", T0 + 105), T0 + 105)
    assert e.tick(T0 + 110.9).incidents == ()  # d2 was suspected at +101: it is given `gather`
    assert changes(e.tick(T0 + 111)) == [("opened", "ARZ-2026-000001", "device:d1")]


def test_confirmation_survives_a_restart() -> None:
    e = started()
    e.observe(icmp_sweep("d1", T0 + 100), T0 + 100)
    e.observe([device("d2", Outcome.TIMEOUT, T0 + 101)], T0 + 101)
    e.observe([device("d1", Outcome.TIMEOUT, T0 + 104)], T0 + 104)
    e.observe(icmp_sweep("d1", T0 + 105), T0 + 105)
    resumed = Engine.restore(EXCHANGE, rules(), "ARZ", e.snapshot())
    assert resumed.tick(T0 + 110).incidents == ()
    assert changes(resumed.tick(T0 + 111)) == [("opened", "ARZ-2026-000001", "device:d1")]


def test_an_exchange_incident_narrows_at_once_though_a_sibling_was_just_suspected() -> None:
    """Gathering holds a fault from opening or widening, never from narrowing: once the exchange
    no longer qualifies, keeping its incident open while a sibling is rechecked would claim the
    whole exchange on the evidence of one DSLAM (hypothesis found it in tests/test_rules_properties.py)."""
    e = started()
    e.observe(icmp_sweep("d1", T0 + 100), T0 + 100)
    e.observe(icmp_sweep("d3", T0 + 100.5), T0 + 100.5)
    e.observe(icmp_sweep("d2", T0 + 101, outcome=Outcome.OK), T0 + 101)  # d2 answers its rechecks
    e.observe([device("d1", Outcome.TIMEOUT, T0 + 104)], T0 + 104)
    e.observe([device("d3", Outcome.TIMEOUT, T0 + 104.5)], T0 + 104.5)
    e.observe(icmp_sweep("d1", T0 + 105), T0 + 105)
    opened = e.observe(icmp_sweep("d3", T0 + 105.5), T0 + 105.5)
    assert changes(opened) == [("opened", "ARZ-2026-000001", "exchange:x")]  # 14 of 24 lines
    e.observe([device("d1", at=T0 + 200), *icmp_sweep("d1", T0 + 200, outcome=Outcome.OK)], T0 + 200)
    # d1's lines count at the exchange for the correlation window (5 min); d2 misses one ping
    # just before it ends, which suspects d2 and rechecks the exchange
    assert e.observe([device("d2", Outcome.TIMEOUT, T0 + 495, "icmp")], T0 + 495).recheck == ("d1", "d2", "d3")
    narrowed = e.tick(T0 + 500)  # d3's 4 of 24 lines are below close_count and close_fraction
    assert changes(narrowed) == [("recovering", "ARZ-2026-000001", "exchange:x"), ("opened", "ARZ-2026-000002", "device:d3")]
    assert narrowed.incidents[1].incident.affected == {f"d3-{n}" for n in range(4)}
    assert e.node_state(NodeRef("exchange", "x")).status is Status.OK
