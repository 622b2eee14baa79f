"""SHDSL line profiles on real recordings (snmpsim) and synthesised rows, judged by the default rules.

- shdsl (RFC 4319 HDSL2-SHDSL-LINE-MIB) on the Westermo DDW-225 recording: its endpoint rows,
  worst endpoint per span, and the port that is down told apart from the one in sync;
- shdsl on synthetic rows cloned from those (span status, counters, repeaters, two wire pairs, a
  span out of sync), which the recording lacks;
- oneaccess-shdsl (oacSHDSLSpanStatusTable) on the OneAccess ONE90 recording.

Expected values are read from the .snmprec files (or the synthetic tables) by the tests themselves.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from monitord.config.rules import parse_rules
from monitord.diagnose import judge_row
from monitord.model import Device, NodeRef, Outcome, Sample, Secret, SnmpAuth
from probes.profile_files import load_profiles
from probes.profiles import decode, poll_device
from probes.rates import RateTracker
from probes.snmp import SnmpClient, Varbind, parse_oid
from rules.verdict import verdict
from tests.snmp_fixtures import (
    RECORDINGS,
    SHDSL_DELTAS,
    SHDSL_ENDPOINTS,
    SHDSL_SPANS,
    SHDSL_STATUS,
    Snmpsim,
    client,
    column,
    read_snmprec,
    snmpsim,
)

__all__ = ["client", "snmpsim"]

PROFILES = load_profiles()
RULES = parse_rules(None)
T0 = 1_790_000_000.0
ENDPOINT = "1.3.6.1.2.1.10.48.1.5.1"
IF_OPER = "1.3.6.1.2.1.2.2.1.8"


def device(sim: Snmpsim, community: str, name: str | None = None) -> Device:
    auth = SnmpAuth(community, "2c", community=Secret(community, "test"))
    return Device(name or community, "dslam", "lab", "127.0.0.1", auth, port=sim.port)  # type: ignore[arg-type]


def lines_of(samples: list[Sample]) -> dict[str, Sample]:
    return {sample.target.id: sample for sample in samples if sample.target.level == "line"}


async def test_shdsl_on_westermo_endpoint_rows(snmpsim: Snmpsim, client: SnmpClient) -> None:
    """Westermo DDW-225: endpoint rows of ifIndex 4096 (down) and 4097 (in sync), indexed with
    unit 0/1 and side 0/1, outside the MIB's enumerations: every row still counts."""
    records = read_snmprec(RECORDINGS / "weos_ddw-225.snmprec")
    attenuation, margin = column(records, f"{ENDPOINT}.1"), column(records, f"{ENDPOINT}.2")
    assert any(index[1] == 0 or index[2] == 0 for index in margin)  # the quirk this profile must take
    worst: dict[int, dict[str, float]] = defaultdict(dict)
    for index, value in margin.items():
        worst[index[0]]["snr_margin_db"] = min(value, worst[index[0]].get("snr_margin_db", value))
    for index, value in attenuation.items():
        worst[index[0]]["attenuation_db"] = max(value, worst[index[0]].get("attenuation_db", value))
    assert set(worst) == {4096, 4097}
    opers = column(records, IF_OPER)

    polled = await poll_device(
        client, device(snmpsim, "weos_ddw-225"), PROFILES["shdsl"], {"4096": "port-1", "4097": "port-2"}, T0, rates=RateTracker()
    )
    found = lines_of(polled)
    for port, line in ((4096, "port-1"), (4097, "port-2")):
        values = found[line].values
        assert found[line].outcome is Outcome.OK
        assert {k: values[k] for k in ("snr_margin_db", "attenuation_db")} == worst[port]
        assert values["oper_up"] == (1.0 if opers[(port,)] == 1 else 0.0)
    assert (found["port-2"].values["snr_margin_db"], found["port-2"].values["in_sync"]) == (26.0, 1.0)

    # 4096 is down (ifOperStatus 2) though one of its endpoints still reads a 27 dB margin: down, not bad
    rules = RULES.ruleset("shdsl")
    assert verdict(found["port-1"], rules) == ("down", "snmp:shdsl: not in sync (interface down) (oper_up 0)")
    assert verdict(found["port-2"], rules) == ("up", "")


async def test_shdsl_synthetic_span_status_counters_and_a_down_span(snmpsim: Snmpsim, client: SnmpClient) -> None:
    """Synthetic rows: worst endpoint over units, sides and wire pairs; counters as rates between
    two snapshots 60 s apart; the span out of sync is down, the one with a bad pair degraded, the
    one whose endpoint status says LOSW failure down though its interface is up."""
    profile, rates = PROFILES["shdsl"], RateTracker()
    wanted = {"10": "span-10", "11": "span-11", "12": "span-12"}
    first = lines_of(await poll_device(client, device(snmpsim, "shdsl-synthetic-t0", "shdsl"), profile, wanted, T0, rates=rates))
    assert "errored_seconds_per_s" not in first["span-10"].values  # no rate from one reading
    later = await poll_device(client, device(snmpsim, "shdsl-synthetic-t1", "shdsl"), profile, wanted, T0 + 60, rates=rates)
    found = lines_of(later)

    for span, line in wanted.items():
        rows = {index: row for index, row in SHDSL_ENDPOINTS.items() if index[0] == int(span)}
        grown = [SHDSL_DELTAS.get(index, (0, 0, 0, 0)) for index in rows]
        oper, repeaters, attainable, actual = SHDSL_SPANS[int(span)]
        expected = {
            "oper_up": 1.0 if oper == 1 else 0.0,
            "repeaters": repeaters,
            "attainable_rate_bps": attainable,
            "rate_bps": actual,
            "attenuation_db": max(row[0] for row in rows.values()),
            "snr_margin_db": min(row[1] for row in rows.values()),
            "errored_seconds_per_s": max(d[0] for d in grown) / 60,
            "severely_errored_seconds_per_s": max(d[1] for d in grown) / 60,
            "crc_anomalies_per_s": sum(d[2] for d in grown) / 60,
            "losw_seconds_per_s": max(d[3] for d in grown) / 60,
            "in_sync": 1.0 if actual else 0.0,
            "sync_failure": float(any(index in SHDSL_STATUS for index in rows)),
        }
        assert found[line].values == pytest.approx(expected), line
    assert found["span-10"].values["snr_margin_db"] == 2.0  # the one bad pair of the repeater's network side

    rules = RULES.ruleset("shdsl")
    assert verdict(found["span-10"], rules) == ("up", "")
    assert judge_row(found["span-10"].values, rules, T0 + 60) == (
        (),
        (
            "errored_seconds_per_s per 15m 675 > 90",  # 45 ES in 60 s on the bad pair
            "losw_seconds_per_s per 15m 180 > 10",
            "severely_errored_seconds_per_s per 15m 450 > 10",
            "snr_margin_db 2 <= 3",
        ),
    )
    assert verdict(found["span-11"], rules) == ("down", "snmp:shdsl: not in sync (interface down) (oper_up 0)")
    assert judge_row(found["span-11"].values, rules, T0 + 60)[1] == ()  # down, never also degraded
    why = "not in sync (endpoint status: LOSW failure, init failure or no neighbour) (sync_failure 1)"
    assert (found["span-12"].values["oper_up"], found["span-12"].values["in_sync"]) == (1.0, 1.0)
    assert verdict(found["span-12"], rules) == ("down", f"snmp:shdsl: {why}")


async def test_oneaccess_shdsl_span_counters_on_one90(snmpsim: Snmpsim, client: SnmpClient) -> None:
    """OneAccess ONE90: four spans (ifIndex 201-204) in oacSHDSLSpanStatusTable, all up; the
    standard shdsl profile finds no table there (a wrong profile, said on the device)."""
    records = read_snmprec(RECORDINGS / "oneaccess_oneaccess-showtime.snmprec")
    spans = column(records, "1.3.6.1.4.1.13191.10.3.3.3.1.2.1.10")  # oacSHDSLSpanStatusCurrES
    assert sorted(index[0] for index in spans) == [201, 202, 203, 204]
    opers = column(records, IF_OPER)
    wanted = {str(index[0]): f"span-{index[0]}" for index in spans}
    dev = device(snmpsim, "oneaccess_oneaccess-showtime")
    rates = RateTracker()
    await poll_device(client, dev, PROFILES["oneaccess-shdsl"], wanted, T0, rates=rates)
    found = lines_of(await poll_device(client, dev, PROFILES["oneaccess-shdsl"], wanted, T0 + 60, rates=rates))
    rules = RULES.ruleset("oneaccess-shdsl")
    for port, line in wanted.items():
        values = found[line].values
        assert values["oper_up"] == (1.0 if opers[(int(port),)] == 1 else 0.0) == 1.0
        # a static recording: every counter the agent serves reads again unchanged
        assert {k: v for k, v in values.items() if k.endswith("_per_s")} == {
            "up_downs_per_s": 0.0,
            "crc_anomalies_per_s": 0.0,
            "errored_seconds_per_s": 0.0,
            "severely_errored_seconds_per_s": 0.0,
        }
        assert verdict(found[line], rules) == ("up", "")

    standard = await poll_device(client, dev, PROFILES["shdsl"], wanted, T0, rates=RateTracker())
    own = next(s for s in standard if s.target == NodeRef("device", dev.id))
    assert own.outcome is Outcome.NO_TABLE
    assert own.detail.startswith("profile shdsl: tables 1.3.6.1.2.1.10.48.1.2.1, 1.3.6.1.2.1.10.48.1.5.1 absent")


def test_status_bits_count_from_the_first_octets_high_bit() -> None:
    """BITS on the wire (RFC 2578): bit 0 is the first octet's high bit; octets an agent leaves
    off are clear bits; a cell that is not an OCTET STRING is skipped and counted."""
    status = parse_oid(f"{ENDPOINT}.3")
    cells = {
        (20, 1, 2, 1): (4, bytes([0x80])),  # noDefect(0) only, one octet
        (21, 1, 2, 1): (4, bytes([0x02, 0x00])),  # loswFailureAlarm(6)
        (22, 1, 2, 1): (4, bytes([0x00, 0x40])),  # noNeighborPresent(9)
        (23, 1, 2, 1): (4, bytes([0x10, 0x20])),  # snrMarginAlarm(4), loopbackActive(10): no sync failure
        (24, 1, 2, 1): (2, 512),  # an INTEGER where BITS belong
    }
    decoded = decode(PROFILES["shdsl"], [Varbind(status + index, tag, value) for index, (tag, value) in cells.items()])
    assert decoded.skipped == 1
    assert [(key, value) for run in decoded.runs for key, value in zip(run.keys, run.values, strict=True)] == [
        ("20", 0.0),
        ("21", 1.0),
        ("22", 1.0),
        ("23", 0.0),
    ]
