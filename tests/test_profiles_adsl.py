"""ADSL-LINE-MIB failure counters (loss of frame, signal, link, power) and output power, on the
Teldat recording (snmpsim; a real line that is down) and on synthesised rows cloned from it.

Expected values are read from the .snmprec file (or the synthetic tables) by the tests themselves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from monitord.config.rules import parse_rules
from monitord.diagnose import judge_row
from monitord.model import Device, Sample, Secret, SnmpAuth
from probes.profile_files import load_profiles
from probes.profiles import poll_device
from probes.rates import RateTracker
from probes.snmp import SnmpClient
from rules.verdict import verdict
from tests.snmp_fixtures import (
    ADSL,
    ADSL_DELTAS,
    ADSL_FAILURES,
    ADSL_LINES,
    RECORDINGS,
    Snmpsim,
    column,
    read_snmprec,
    snmpsim,
)

__all__ = ["snmpsim"]

PROFILES = load_profiles()
RULES = parse_rules(None)
T0 = 1_790_000_000.0
FAILURES = ("lof_seconds_per_s", "los_seconds_per_s", "lol_seconds_per_s", "lpr_seconds_per_s")


@pytest.fixture
async def client() -> AsyncIterator[SnmpClient]:
    snmp = SnmpClient(timeout=2.0, retries=0)
    yield snmp
    snmp.close()


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
    assert judge_row(found["line-5"].values, rules, T0 + 60) == ((), ())
    assert verdict(found["line-7"], rules) == ("up", "")
    assert judge_row(found["line-7"].values, rules, T0 + 60)[1] == (
        "errored_seconds_per_s per 15m 450 > 90",
        "lof_seconds_per_s per 15m 60 > 10",  # 4 s on the ATU-R side, the worse one
        "lol_seconds_per_s per 15m 15 > 10",
        "los_seconds_per_s per 15m 300 > 10",
        "resyncs_per_s per 15m 15 > 2",
    )
    assert found["line-6"].values["los_seconds_per_s"] == 1.0
    assert verdict(found["line-6"], rules)[0] == "down"
    assert judge_row(found["line-6"].values, rules, T0 + 60)[1] == ()
