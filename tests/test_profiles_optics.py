"""Vendor optical tables declared in YAML only: Ubiquiti UFiber ONUs (ubntOnusTable, indexed by
serial number, power in hundredths of a dBm) on the two UFiber/UISP recordings (snmpsim).

Expected values are read from the .snmprec files by the tests themselves."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from monitord.config.rules import parse_rules
from monitord.model import Device, Outcome, Secret, SnmpAuth
from probes.profile_files import load_profiles
from probes.profiles import poll_device
from probes.rates import RateTracker
from probes.snmp import SnmpClient
from rules.verdict import verdict
from tests.snmp_fixtures import RECORDINGS, Snmpsim, read_snmprec, snmpsim

__all__ = ["snmpsim"]

PROFILES = load_profiles()
RULES = parse_rules(None)
ONU = (1, 3, 6, 1, 4, 1, 41112, 1, 5, 6, 2, 1)  # UBNT-UFIBER-MIB ubntOnuEntry


@pytest.fixture
async def client() -> AsyncIterator[SnmpClient]:
    snmp = SnmpClient(timeout=2.0, retries=0)
    yield snmp
    snmp.close()


def device(sim: Snmpsim, community: str) -> Device:
    auth = SnmpAuth(community, "2c", community=Secret(community, "test"))
    return Device(community, "olt", "lab", "127.0.0.1", auth, port=sim.port)  # type: ignore[arg-type]


def onus(name: str) -> dict[str, dict[int, int]]:
    """Serial (ubntOnuSN, the cell's text, not the index) -> {column: integer value}."""
    records = read_snmprec(RECORDINGS / f"{name}.snmprec")
    rows: dict[tuple[int, ...], dict[int, int | str]] = {}
    for oid, (tag, value) in records.items():
        if oid[: len(ONU)] == ONU:
            rows.setdefault(oid[len(ONU) + 1 :], {})[oid[len(ONU)]] = value if tag == "4" else int(value)
    return {str(row[1]): {k: v for k, v in row.items() if isinstance(v, int)} for row in rows.values()}


@pytest.mark.parametrize(("name", "count", "online"), [("edgeosolt", 29, 16), ("edgeosolt_uisp-fiber", 1, 1)])
async def test_ufiber_onus_by_serial(snmpsim: Snmpsim, client: SnmpClient, name: str, count: int, online: int) -> None:
    """Each ONU found by its serial; online ONUs read their power in 0.01 dBm, offline ones read 0
    for both, which gives no value: they are down by ubntOnuOnline, not judged on their optics."""
    expected = onus(name)
    assert (len(expected), sum(row[3] == 1 for row in expected.values())) == (count, online)
    wanted = {serial: f"onu-{serial}" for serial in expected}
    polled = await poll_device(client, device(snmpsim, name), PROFILES["ufiber-onu"], wanted, 0.0, rates=RateTracker())
    assert polled[0].outcome is Outcome.OK and polled[0].detail == ""
    found = {sample.target.id: sample for sample in polled[1:]}
    rules = RULES.ruleset("ufiber-onu")
    for serial, row in expected.items():
        sample = found[f"onu-{serial}"]
        want = {"onu_online": 1.0 if row[3] == 1 else 0.0}
        want |= {metric: row[col] / 100 for metric, col in (("onu_tx_power_dbm", 8), ("onu_rx_power_dbm", 9)) if row[col] != 0}
        assert sample.values == pytest.approx(want), serial
        assert (row[3] == 1) == (row[8] != 0) == (row[9] != 0)  # the recording: zeros exactly on the offline ONUs
        assert verdict(sample, rules) == (("up", "") if row[3] == 1 else ("down", "snmp:ufiber-onu: ONU offline (onu_online 0)"))
    if name == "edgeosolt":
        assert found["onu-UBNT20731888"].values["onu_rx_power_dbm"] == pytest.approx(-24.81)  # the README's example
