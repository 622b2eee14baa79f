"""ADSL-LINE-MIB failure counters (loss of frame, signal, link, power), output power and the last
complete 15-minute interval, on the Teldat recording (snmpsim; a real line that is down) and on
synthesised rows cloned from it; VDSL2's 15-minute history on synthetic rows.

Expected values are read from the .snmprec file (or the synthetic tables) by the tests themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from monitord.config.rules import parse_rules
from monitord.diagnose import judge_row
from monitord.model import Device, Sample, Secret, SnmpAuth
from probes.history import get_rows
from probes.profile_files import ProfileError, load_profiles
from probes.profiles import poll_device
from probes.rates import RateTracker
from probes.snmp import Oid, Result, SnmpClient
from probes.snmpbase import Target
from rules.verdict import verdict
from tests.snmp_fixtures import (
    ADSL,
    ADSL_DELTAS,
    ADSL_FAILURES,
    ADSL_INTERVALS,
    ADSL_LINES,
    RECORDINGS,
    VDSL2_HISTORY,
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
FAILURES = ("lof_seconds_per_s", "los_seconds_per_s", "lol_seconds_per_s", "lpr_seconds_per_s")


def device(sim: Snmpsim, community: str, name: str | None = None) -> Device:
    auth = SnmpAuth(community, "2c", community=Secret(community, "test"))
    return Device(name or community, "dslam", "lab", "127.0.0.1", auth, port=sim.port)  # type: ignore[arg-type]


def lines_of(samples: list[Sample]) -> dict[str, Sample]:
    return {sample.target.id: sample for sample in samples if sample.target.level == "line"}


async def test_failure_counters_and_output_power_on_teldat(snmpsim: Snmpsim, client: SnmpClient) -> None:
    """Teldat ifIndex 17, out of sync: the ATU-R still reads an output power (13.0 dBm) while
    the ATU-C reads 0; every failure counter is served (Counter32) and reads the same twice."""
    records = read_snmprec(RECORDINGS / "teldat_teldatvdsl2.snmprec")
    power_c, power_r = column(records, f"{ADSL}.2.1.7"), column(records, f"{ADSL}.3.1.7")
    assert (power_c, power_r) == ({(17,): 0}, {(17,): 130})
    for table, columns in ((6, (1, 2, 3, 4)), (7, (1, 2, 3))):
        for column_id in columns:
            assert records[(1, 3, 6, 1, 2, 1, 10, 94, 1, 1, table, 1, column_id, 17)][0] == "65"
    dev, rates = device(snmpsim, "teldat_teldatvdsl2"), RateTracker()
    first = lines_of(await poll_device(client, dev, PROFILES["adsl"], {"17": "teldat"}, T0, rates=rates))
    assert not set(FAILURES) & set(first["teldat"].values)  # no rate from one reading
    found = lines_of(await poll_device(client, dev, PROFILES["adsl"], {"17": "teldat"}, T0 + 60, rates=rates))
    values = found["teldat"].values
    assert (values["output_power_down_dbm"], values["output_power_up_dbm"]) == (power_c[(17,)] / 10, power_r[(17,)] / 10)
    assert {name: values[name] for name in FAILURES} == dict.fromkeys(FAILURES, 0.0)
    assert verdict(found["teldat"], RULES.ruleset("adsl"))[0] == "down"
    assert judge_row(values, RULES.ruleset("adsl"), T0 + 60)[1] == ()  # its 13 dBm and zeros are not judged


async def test_failure_rates_on_synthetic_lines(snmpsim: Snmpsim, client: SnmpClient) -> None:
    """Synthetic rows: each failure metric is the worse side's rate; the line losing signal and
    frames is degraded by the new rules; the line out of sync counts loss of signal every second
    but is down, never also degraded."""
    profile, rates = PROFILES["adsl"], RateTracker()
    wanted = {str(port): f"line-{port}" for port in ADSL_LINES}
    await poll_device(client, device(snmpsim, "adsl-synthetic-t0", "adsl"), profile, wanted, T0, rates=rates)
    found = lines_of(
        await poll_device(client, device(snmpsim, "adsl-synthetic-t1", "adsl"), profile, wanted, T0 + 60, rates=rates)
    )
    for port, (_oper, *phys) in ADSL_LINES.items():
        values = found[f"line-{port}"].values
        assert (values["output_power_down_dbm"], values["output_power_up_dbm"]) == pytest.approx((phys[6] / 10, phys[7] / 10))
        sides = [ADSL_DELTAS.get((port, side), (0, 0, None if side == "r" else 0, 0, 0, 0)) for side in ("c", "r")]
        expected = {
            name: max(d[at] for d in sides if d[at] is not None) / 60 for name, at in zip(FAILURES, (0, 1, 2, 3), strict=True)
        }
        assert {name: values[name] for name in FAILURES} == pytest.approx(expected), port
        assert set(ADSL_FAILURES) >= {(port, "c"), (port, "r")}
    rules = RULES.ruleset("adsl")
    assert verdict(found["line-5"], rules) == ("up", "")
    assert judge_row(found["line-5"].values, rules, T0 + 60) == ((), ("errored_seconds_last_15m 120 > 90",))  # its history
    assert verdict(found["line-7"], rules) == ("up", "")
    assert judge_row(found["line-7"].values, rules, T0 + 60)[1] == (
        "errored_seconds_per_s per 15m 450 > 90",
        "lof_seconds_per_s per 15m 60 > 10",  # 4 s on the ATU-R side, the worse one
        "lol_seconds_per_s per 15m 15 > 10",
        "los_seconds_per_s per 15m 300 > 10",
        "los_seconds_last_15m 14 > 10",  # its history: the ATU-R row (the ATU-C row is not valid)
        "resyncs_per_s per 15m 15 > 2",
    )
    assert found["line-6"].values["los_seconds_per_s"] == 1.0
    assert verdict(found["line-6"], rules)[0] == "down"
    assert judge_row(found["line-6"].values, rules, T0 + 60)[1] == ()


LAST = ("lof_seconds_last_15m", "los_seconds_last_15m", "lol_seconds_last_15m", "errored_seconds_last_15m", "resyncs_last_15m")


async def test_last_complete_interval_on_teldat_at_the_first_poll(snmpsim: Snmpsim, client: SnmpClient) -> None:
    """Teldat serves 96 rows of 15-minute history per side; row 1 (the last complete interval)
    is read by GET at the first poll. Its ValidData reads 0 (not a TruthValue), not false(2): used."""
    records = read_snmprec(RECORDINGS / "teldat_teldatvdsl2.snmprec")
    c_side = {column_id: column(records, f"{ADSL}.8.1.{column_id}") for column_id in (2, 3, 4, 6, 7, 8)}
    r_side = {column_id: column(records, f"{ADSL}.9.1.{column_id}") for column_id in (2, 3, 5, 6)}
    assert len(c_side[6]) == len(r_side[5]) == 96 and c_side[8][(17, 1)] == r_side[6][(17, 1)] == 0
    expected = {
        "lof_seconds_last_15m": max(c_side[2][(17, 1)], r_side[2][(17, 1)]),
        "los_seconds_last_15m": max(c_side[3][(17, 1)], r_side[3][(17, 1)]),
        "lol_seconds_last_15m": c_side[4][(17, 1)],
        "errored_seconds_last_15m": max(c_side[6][(17, 1)], r_side[5][(17, 1)]),
        "resyncs_last_15m": c_side[7][(17, 1)],
    }
    polled = await poll_device(
        client, device(snmpsim, "teldat_teldatvdsl2"), PROFILES["adsl"], {"17": "teldat"}, T0, rates=RateTracker()
    )
    assert polled[0].detail == ""
    values = lines_of(polled)["teldat"].values
    assert {name: values[name] for name in LAST} == expected


async def test_last_complete_interval_on_synthetic_lines(snmpsim: Snmpsim, client: SnmpClient) -> None:
    """Synthetic interval rows: line 5's last interval was bad (120 ES), judged at the first
    poll; line 7's ATU-C row is marked not valid (ValidData false) and gives nothing, its ATU-R
    row still counts; line 6 has no history rows and is polled as before."""
    wanted = {str(port): f"line-{port}" for port in ADSL_LINES}
    polled = await poll_device(
        client, device(snmpsim, "adsl-synthetic-t0", "adsl"), PROFILES["adsl"], wanted, T0, rates=RateTracker()
    )
    assert polled[0].detail == ""
    found = lines_of(polled)
    for port in ADSL_LINES:
        rows = {side: values for (p, side, n), values in ADSL_INTERVALS.items() if p == port and n == 1 and values[6] != 2}
        expected: dict[str, float] = {}
        for name, at in zip(LAST, (0, 1, 2, 4, 5), strict=True):
            present = [row[at] for row in rows.values() if row[at] is not None]
            if present:
                expected[name] = max(present)
        assert {name: found[f"line-{port}"].values[name] for name in LAST if name in found[f"line-{port}"].values} == expected
    assert found["line-5"].values["errored_seconds_last_15m"] == 120
    assert "lol_seconds_last_15m" not in found["line-7"].values  # the ATU-C row was not valid
    rules = RULES.ruleset("adsl")
    assert judge_row(found["line-5"].values, rules, T0)[1] == ("errored_seconds_last_15m 120 > 90",)
    assert judge_row(found["line-7"].values, rules, T0)[1] == ("los_seconds_last_15m 14 > 10",)


def test_a_get_table_needs_port_row_and_join(tmp_path: Path) -> None:
    """A history table read by GET adds to lines the walked tables find: the loader says so, naming the file."""
    (tmp_path / "bad.yaml").write_text(
        "name: bad\ntables:\n  - index: [port, row]\n    get: 1\n"
        "    columns:\n      - {name: es, oid: '1.3.6.1.2.1.10.94.1.1.8.1.6'}\n"
    )
    with pytest.raises(
        ProfileError, match=r"bad\.yaml:4: tables\[0\]\.get: needs index \[port, row\] \(labels between\) and join: true"
    ):
        load_profiles([tmp_path])


class CountingClient(SnmpClient):
    """The SNMP client, counting the GETs it sends."""

    gets = 0

    async def get(self, target: Target, oids: Iterable[Oid]) -> Result:
        self.gets += 1
        return await super().get(target, oids)


async def test_history_rows_cost_one_get_per_20_objects_and_one_without_the_tables(snmpsim: Snmpsim) -> None:
    """29 lines ask 290 objects of the synthetic agent in 15 GETs (its 3 lines' rows found); the
    DrayTek serves no interval tables: one GET finds none of the rows and no more are sent."""
    tables = PROFILES["adsl"].tables
    wanted = {str(port): f"line-{port}" for port in range(1, 30)}
    counting = CountingClient(timeout=2.0, retries=0)
    try:
        got, note = await get_rows(counting, Target.of(device(snmpsim, "adsl-synthetic-t0")), tables, wanted)
        assert (counting.gets, note) == (15, "")
        assert {v.oid[-2] for v in got} == {5, 7}  # line 6 has no history; line 7's ATU-C row is not valid
        counting.gets = 0
        got, note = await get_rows(counting, Target.of(device(snmpsim, "draytek_vdsl")), tables, wanted)
        assert (counting.gets, got, note) == (1, [], "")
    finally:
        counting.close()


async def test_history_over_snmpv1(snmpsim: Snmpsim) -> None:
    """SNMPv1: the Teldat's row 1 read as over v2c; the DrayTek answers noSuchName to the first
    GET, taken as no tables (one GET, no note), not as a failure every poll."""
    tables = PROFILES["adsl"].tables
    counting = CountingClient(timeout=2.0, retries=0)

    def v1(community: str) -> Target:
        return Target("127.0.0.1", snmpsim.port, SnmpAuth("v1", "1", community=Secret(community, "test")))

    try:
        got, note = await get_rows(counting, v1("teldat_teldatvdsl2"), tables, {"17": "teldat"})
        assert note == "" and len(got) == 5 + 1 + 3 + 1  # ATU-C and ATU-R columns with their ValidData
        counting.gets = 0
        got, note = await get_rows(counting, v1("draytek_vdsl"), tables, {str(port): "x" for port in range(1, 30)})
        assert (counting.gets, got, note) == (1, [], "")
    finally:
        counting.close()


async def test_vdsl2_last_complete_interval_on_synthetic_rows(snmpsim: Snmpsim, client: SnmpClient) -> None:
    """VDSL2 (no recording holds xdsl2PMLineHist15MinTable): interval 1 of each unit read at the
    first poll, the worse unit counting; line 7's xtuc row is not valid. The DrayTek (VDSL2, no
    history) adds nothing."""
    wanted = {"3": "line-3", "7": "line-7"}
    dev = device(snmpsim, "vdsl2-history-synthetic", "vdsl2")
    polled = await poll_device(client, dev, PROFILES["vdsl2"], wanted, T0, rates=RateTracker())
    assert polled[0].detail == ""
    found = lines_of(polled)
    names = (
        "errored_seconds_last_15m",
        "severely_errored_seconds_last_15m",
        "los_seconds_last_15m",
        "unavailable_seconds_last_15m",
    )
    for port, line in wanted.items():
        rows = [values for (p, _unit), values in VDSL2_HISTORY.items() if p == int(port) and values[4] != 2]
        expected = {name: max(row[at] for row in rows) for at, name in enumerate(names)}
        assert {name: found[line].values[name] for name in names} == expected, line
    rules = RULES.ruleset("vdsl2")
    history = [
        [reason for reason in judge_row(found[line].values, rules, T0)[1] if "_last_15m" in reason] for line in wanted.values()
    ]
    assert history == [["errored_seconds_last_15m 130 > 90", "severely_errored_seconds_last_15m 12 > 10"], []]
    draytek = await poll_device(client, device(snmpsim, "draytek_vdsl"), PROFILES["vdsl2"], {"4": "x"}, T0, rates=RateTracker())
    assert "history" not in draytek[0].detail and not any(name.endswith("_last_15m") for name in draytek[1].values)
