"""What polled data means: real recordings (snmpsim) and a real agent (net-snmp snmpd) polled
through the line profiles, then judged by the rules engine with the default rules.

- a profile whose table the agent does not have is said on the device, not as N line outages;
- IF-MIB octet rates over SNMPv1, and on agents without 64-bit counters, come from the 32-bit
  columns;
- a DSL line out of sync (real equipment reads 0 dB everywhere) is down, never "degraded".

Expected values are read from the .snmprec files by the tests themselves.
"""

from __future__ import annotations

import asyncio
import socket
import time

from pysnmp.proto import rfc1902, rfc1905

from monitord.config.rules import parse_rules
from monitord.diagnose import Row, judge_row, read_row
from monitord.model import Device, Exchange, Line, NodeRef, Outcome, Region, Sample, Secret, SnmpAuth, Status, Topology
from probes.profile_files import load_profiles
from probes.profiles import combine, decode, poll_device
from probes.rates import RateTracker
from probes.snmp import SnmpClient, Varbind, parse_oid
from probes.snmpbase import Target
from rules.engine import Engine
from rules.verdict import verdict
from tests.snmp_fixtures import (
    RECORDINGS,
    Reply,
    Request,
    Snmpd,
    Snmpsim,
    client,
    read_snmprec,
    snmpd,
    snmpsim,
    start_bad_agent,
)

__all__ = ["client", "snmpd", "snmpsim"]

PROFILES = load_profiles()
RULES = parse_rules(None)
T0 = 1_790_000_000.0
IF_OPER = "1.3.6.1.2.1.2.2.1.8"


def device(port: int, community: str, version: str = "2c", profiles: tuple[str, ...] = ()) -> Device:
    auth = SnmpAuth(community, version, community=Secret(community, "test"))  # type: ignore[arg-type]
    return Device(community, "dslam", "lab", "127.0.0.1", auth, profiles, port=port)


def by_target(samples: list[Sample]) -> dict[NodeRef, Sample]:
    return {sample.target: sample for sample in samples}


def one_device(dev: Device, lines: dict[str, str]) -> Topology:
    """`dev` in exchange "lab" with `lines` (port -> subscriber id)."""
    return Topology(
        {"r": Region("r", "Region")},
        {"lab": Exchange("lab", "Lab", "r")},
        {dev.id: dev},
        {line: Line(line, f"Subscriber {line}", dev.id, port=int(port)) for port, line in lines.items()},
    )


def icmp_up(dev: Device, at: float) -> Sample:
    return Sample(NodeRef("device", dev.id), "icmp", at, Outcome.OK, {"rtt_ms": 1.0, "loss": 0.0})


# --- 4. a table the agent does not have --------------------------------------------------------


async def test_a_profile_whose_table_the_agent_lacks_is_said_on_the_device(snmpsim: Snmpsim, client: SnmpClient) -> None:
    """The ZTE DSLAM recording serves IF-MIB only: given the vdsl2 profile, it is a wrong profile,
    not six subscribers without a row."""
    records = read_snmprec(RECORDINGS / "zxdsl.snmprec")
    assert not any(oid[:9] == parse_oid("1.3.6.1.2.1.10.251") for oid in records)
    dev = device(snmpsim.port, "zxdsl", profiles=("vdsl2",))
    lines = {str(port): f"S{port}" for port in range(1, 7)}
    samples = by_target(await poll_device(client, dev, PROFILES["vdsl2"], lines, T0, rates=RateTracker()))
    why = "profile vdsl2: tables 1.3.6.1.2.1.10.251.1.1.1.1, 1.3.6.1.2.1.10.251.1.1.2.1 and 1 more absent on this agent (wrong profile?)"
    own = samples[NodeRef("device", dev.id)]
    assert (own.outcome, own.detail) == (Outcome.NO_TABLE, why)
    assert own.values["uptime_s"] == int(records[parse_oid("1.3.6.1.2.1.1.3.0")][1]) / 100
    assert {(s.outcome, s.detail) for s in samples.values() if s.target.level == "line"} == {(Outcome.NO_TABLE, why)}

    # The adsl profile joins ifOperStatus, which this agent serves: still no ADSL table.
    adsl = by_target(await poll_device(client, dev, PROFILES["adsl"], lines, T0, rates=RateTracker()))
    assert adsl[NodeRef("device", dev.id)].outcome is Outcome.NO_TABLE
    assert adsl[NodeRef("device", dev.id)].detail.startswith("profile adsl: tables 1.3.6.1.2.1.10.94.1.1.2.1, ")

    engine = Engine(one_device(dev, lines), RULES, "ARZ")
    for at in (T0, T0 + 60, T0 + 120, T0 + 180):
        polled = await poll_device(client, dev, PROFILES["vdsl2"], lines, at, rates=RateTracker())
        step = engine.observe([*polled, icmp_up(dev, at)], at)
        assert not step.incidents
    for line in lines.values():
        state = engine.line_state(line)
        assert (state.status, state.reasons) == (Status.UNKNOWN, (f"snmp:vdsl2: {why}",))
    head_end = engine.node_state(NodeRef("device", dev.id))
    assert (head_end.status, head_end.reasons) == (Status.UNKNOWN, (f"snmp:vdsl2: {why}",))
    assert engine.incidents() == []


async def test_diagnosis_tells_a_missing_table_from_a_missing_row(snmpsim: Snmpsim, client: SnmpClient) -> None:
    zxdsl = device(snmpsim.port, "zxdsl")
    for name in ("vdsl2", "adsl"):  # a walk, and a GET by port that finds nothing
        row = await read_row(client, zxdsl, PROFILES[name], "1")
        assert (row.outcome, row.detail.split(":")[0]) == (Outcome.NO_TABLE, f"profile {name}"), row
        assert row.detail.endswith("absent on this agent (wrong profile?)")
    missing = await read_row(client, device(snmpsim.port, "draytek_vdsl"), PROFILES["adsl"], "9")
    assert missing == Row("adsl", Outcome.NOT_FOUND, detail="no row '9'")


# --- 5. 32-bit octet counters where 64-bit ones are not served ---------------------------------


async def test_if_mib_over_v1_gives_octet_rates_from_32_bit_counters(snmpd: Snmpd, client: SnmpClient) -> None:
    """net-snmp serves no Counter64 to a v1 manager; the loopback interface's own traffic (these
    polls and the datagrams below) shows as a real rate. snmpd refreshes ifTable every 3 s."""
    dev = device(snmpd.port, "public", version="1")
    rates = RateTracker()
    lo = await client.walk(Target.of(dev), [parse_oid("1.3.6.1.2.1.2.2.1.2")])
    index = next(str(v.oid[-1]) for v in lo.varbinds if v.value == b"lo")
    started = time.monotonic()
    first = by_target(await poll_device(client, dev, PROFILES["if-mib"], {index: "lo"}, started, rates=rates))
    assert "in_octets_per_s" not in first[NodeRef("line", "lo")].values  # a rate needs two readings
    sent = _send_datagrams(count=200, size=1000)
    await asyncio.sleep(3.5)
    now = time.monotonic()
    second = by_target(await poll_device(client, dev, PROFILES["if-mib"], {index: "lo"}, now, rates=rates))
    values = second[NodeRef("line", "lo")].values
    assert values["in_octets_per_s"] * (now - started) >= sent
    assert values["out_octets_per_s"] * (now - started) >= sent
    assert values["oper_up"] == 1.0
    detail = second[NodeRef("device", dev.id)].detail
    assert "in_octets_per_s, out_octets_per_s from 32-bit counters (SNMPv1 carries no 64-bit counters)" in detail


async def test_an_agent_without_64_bit_counters_falls_back_over_v2c(snmpsim: Snmpsim, client: SnmpClient) -> None:
    """The Teldat recording has ifInOctets/ifOutOctets but no ifXTable octets."""
    records = read_snmprec(RECORDINGS / "teldat_teldatvdsl2.snmprec")
    assert not any(oid[:10] == parse_oid("1.3.6.1.2.1.31.1.1.1.6") for oid in records)
    assert records[parse_oid("1.3.6.1.2.1.2.2.1.10.4")][0] == "65"
    dev = device(snmpsim.port, "teldat_teldatvdsl2")
    rates = RateTracker()
    await poll_device(client, dev, PROFILES["if-mib"], {"4": "atm"}, T0, rates=rates)
    samples = by_target(await poll_device(client, dev, PROFILES["if-mib"], {"4": "atm"}, T0 + 60, rates=rates))
    values = samples[NodeRef("line", "atm")].values
    assert values["in_octets_per_s"] == values["out_octets_per_s"] == 0.0  # a recording does not move
    assert "from 32-bit counters (no 64-bit counters on this agent)" in samples[NodeRef("device", dev.id)].detail


async def test_a_failing_fallback_walk_keeps_the_rest_of_the_poll(client: SnmpClient) -> None:
    """A hostile agent: ifTable rows but no 64-bit octets, and an error for the 32-bit ones."""
    if_oper, in_octets = parse_oid(IF_OPER), parse_oid("1.3.6.1.2.1.2.2.1.10")
    beyond = parse_oid("1.3.6.1.2.1.31.1.1.1.14.1")  # ifLinkUpDownTrapEnable: past both 64-bit columns
    hc = {parse_oid("1.3.6.1.2.1.31.1.1.1.6"), parse_oid("1.3.6.1.2.1.31.1.1.1.10")}

    def behave(request: Request) -> Reply:
        if request.kind == "get":
            return 0, 0, [(rfc1902.ObjectName(o), rfc1902.TimeTicks(4242)) for o in request.oids]
        if request.oids[0][: len(in_octets)] == in_octets:
            return 5, 1, [(rfc1902.ObjectName(o), rfc1902.Null("")) for o in request.oids]
        if request.oids[0] == if_oper:  # the first request: one row of each column
            return (
                0,
                0,
                [
                    (rfc1902.ObjectName(beyond), rfc1902.Integer32(2))
                    if o in hc
                    else (rfc1902.ObjectName(o + (1,)), rfc1902.Integer32(1) if o == if_oper else rfc1902.Counter32(5))
                    for o in request.oids
                ],
            )
        return 0, 0, [(rfc1902.ObjectName(o), rfc1905.endOfMibView) for o in request.oids]

    agent, port = await start_bad_agent(behave)
    try:
        samples = by_target(
            await poll_device(client, device(port, "public"), PROFILES["if-mib"], {"1": "p1"}, T0, rates=RateTracker())
        )
    finally:
        agent.transport.close()
    own = samples[NodeRef("device", "public")]
    assert own.outcome is Outcome.OK and own.values == {"uptime_s": 42.42}
    assert own.detail.startswith(
        "no 64-bit counters for in_octets_per_s, out_octets_per_s, and their 32-bit ones failed: agent_error"
    )
    assert samples[NodeRef("line", "p1")].values == {"oper_up": 1.0}


def test_fallback_counters_are_32_bit_and_wrap() -> None:
    in_octets = parse_oid("1.3.6.1.2.1.2.2.1.10")
    profile = PROFILES["if-mib"]
    rates = RateTracker()
    found = []
    for at, raw in ((T0, 2**32 - 1_000), (T0 + 10, 1_000)):
        (run,) = decode(profile, [Varbind(in_octets + (7,), 65, raw)]).runs
        assert (run.names, list(run.bits), run.prefix) == (["in_octets_per_s"], [32], in_octets)
        found += rates.rates("d", run.prefix, run.indexes, run.values, run.bits, at)
    assert found == [None, 200.0]


# --- 6. a DSL line out of sync is down ----------------------------------------------------------


async def test_adsl_line_out_of_sync_on_teldat_is_down_never_degraded(snmpsim: Snmpsim, client: SnmpClient) -> None:
    """Teldat ifIndex 17 is not in sync: ifOperStatus down(2), margins, attenuations and rates 0."""
    records = read_snmprec(RECORDINGS / "teldat_teldatvdsl2.snmprec")
    assert records[parse_oid(f"{IF_OPER}.17")] == ("2", "2")
    dev = device(snmpsim.port, "teldat_teldatvdsl2", profiles=("adsl",))
    lines = {"17": "teldat"}
    engine = Engine(one_device(dev, lines), RULES, "ARZ")
    rates = RateTracker()
    seen = []
    for minute in range(6):  # past every `for` hold of the adsl rules
        at = T0 + 60 * minute
        polled = by_target(await poll_device(client, dev, PROFILES["adsl"], lines, at, rates=rates))
        values = polled[NodeRef("line", "teldat")].values
        assert (values["oper_up"], values["in_sync"], values["snr_margin_down_db"]) == (0.0, 0.0, 0.0)
        step = engine.observe([*polled.values(), icmp_up(dev, at)], at)
        seen += [s.status for s in step.states] + [c.incident.kind.value for c in step.incidents]
    assert Status.DEGRADED not in seen and "degradation" not in seen
    state = engine.line_state("teldat")
    assert (state.status, state.reasons) == (Status.DOWN, ("snmp:adsl: not in sync (interface down) (oper_up 0)",))
    assert [(i.kind.value, str(i.root)) for i in engine.incidents()] == [("outage", "line:teldat")]


def test_all_zero_row_without_an_if_table_row_is_down() -> None:
    """The Teldat line's own ADSL cells, without its ifTable: the zeros alone say no sync."""
    records = read_snmprec(RECORDINGS / "teldat_teldatvdsl2.snmprec")
    profile = PROFILES["adsl"]
    columns = [c.oid for c in profile.columns() if c.oid != parse_oid(IF_OPER)]
    varbinds = [
        Varbind(oid, int(tag), int(value))
        for oid, (tag, value) in records.items()
        if tag in ("2", "65", "66", "67", "70") and oid[-1] == 17 and oid[:-1] in columns
    ]
    decoded = decode(profile, varbinds)
    values = combine(profile, [run for run in decoded.runs if run.column.kind == "gauge"])["17"]
    assert "oper_up" not in values and values["in_sync"] == 0.0
    sample = Sample(NodeRef("line", "teldat"), "snmp:adsl", T0, Outcome.OK, values)
    assert verdict(sample, RULES.ruleset("adsl")) == (
        "down",
        "snmp:adsl: not in sync (margin, attenuation and rates all 0) (in_sync 0)",
    )
    assert judge_row(values, RULES.ruleset("adsl"), T0) == (
        ("not in sync (margin, attenuation and rates all 0) (in_sync 0)",),
        (),
    )


async def test_lines_in_sync_stay_up(snmpsim: Snmpsim, client: SnmpClient) -> None:
    """DrayTek ifIndex 4 is in sync (ifOperStatus up, margin 5 whole dB): not down by either rule."""
    dev = device(snmpsim.port, "draytek_vdsl")
    for name in ("adsl-wholedb", "vdsl2"):
        polled = by_target(await poll_device(client, dev, PROFILES[name], {"4": "vigor"}, T0, rates=RateTracker()))
        line = polled[NodeRef("line", "vigor")]
        assert line.values["oper_up"] == 1.0 and line.values.get("in_sync", 1.0) == 1.0
        assert verdict(line, RULES.ruleset(name)) == ("up", "")


def test_every_builtin_profile_has_rules_that_judge_no_sync() -> None:
    """adsl-wholedb only rescales adsl: its lines are judged by the same rules, not by none."""
    assert RULES.ruleset("adsl-wholedb") == RULES.ruleset("adsl")
    for name in ("adsl", "adsl-wholedb", "vdsl2"):
        assert {rule.metric for rule in RULES.ruleset(name).downs} == {"oper_up", "in_sync"}
    assert {rule.metric for rule in RULES.ruleset("shdsl").downs} == {"oper_up", "in_sync", "sync_failure"}
    assert {rule.metric for rule in RULES.ruleset("oneaccess-shdsl").downs} == {"oper_up"}


def _send_datagrams(count: int, size: int) -> int:
    """Loopback traffic: `count` UDP datagrams of `size` bytes to a local socket; bytes sent."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        sink.bind(("127.0.0.1", 0))
        for _ in range(count):
            out.sendto(b"x" * size, sink.getsockname())
    return count * size
