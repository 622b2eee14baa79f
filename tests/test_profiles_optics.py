"""Vendor optical tables declared in YAML only: Ubiquiti UFiber ONUs (ubntOnusTable, indexed by
serial number, power in hundredths of a dBm) on the two UFiber/UISP recordings (snmpsim), and
MikroTik SFPs (mtxrOpticalTable, thousandths of a dBm) on synthetic rows, as no recording has them.

Expected values are read from the .snmprec files by the tests themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitord.config.rules import parse_rules
from monitord.model import Device, Line, Outcome, Secret, SnmpAuth
from probes.profile_files import load_profiles
from probes.profiles import decode, line_key, measure, poll_device
from probes.rates import RateTracker
from probes.snmp import SnmpClient, Varbind, parse_oid
from rules.verdict import verdict
from tests.snmp_fixtures import MIKROTIK_SFPS, RECORDINGS, Snmpsim, client, read_snmprec, snmpsim

__all__ = ["client", "snmpsim"]

PROFILES = load_profiles()
RULES = parse_rules(None)
ONU = (1, 3, 6, 1, 4, 1, 41112, 1, 5, 6, 2, 1)  # UBNT-UFIBER-MIB ubntOnuEntry


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


async def test_mikrotik_sfp_power_in_thousandths_of_a_dbm_on_synthetic_rows(snmpsim: Snmpsim, client: SnmpClient) -> None:
    """Synthetic mtxrOpticalTable rows (no recording holds one): power in thousandths of a dBm
    (scale 0.001), the cage with Rx loss down, the empty cage's zeros no reading."""
    wanted = {str(index): f"sfp-{index}" for index in MIKROTIK_SFPS}
    dev = device(snmpsim, "mikrotik-sfp-synthetic")
    polled = await poll_device(client, dev, PROFILES["mikrotik-sfp"], wanted, 0.0, rates=RateTracker())
    found = {sample.target.id: sample for sample in polled[1:]}
    rules = RULES.ruleset("mikrotik-sfp")
    for index, (loss, tx, rx) in MIKROTIK_SFPS.items():
        want = {"rx_loss": float(loss)} | {name: raw / 1000 for name, raw in (("tx_power_dbm", tx), ("rx_power_dbm", rx)) if raw}
        assert found[f"sfp-{index}"].values == pytest.approx(want), index
    assert found["sfp-2"].values["rx_power_dbm"] == pytest.approx(-17.896)
    assert verdict(found["sfp-1"], rules) == ("up", "")
    assert verdict(found["sfp-3"], rules) == ("down", "snmp:mikrotik-sfp: no light (Rx loss) (rx_loss 1)")


def test_64_bit_counters_served_as_octet_strings(tmp_path: Path) -> None:
    """Synthetic cells: Counter64 values an agent serves as OCTET STRINGs, 8 octets most significant
    first or decimal text, read as 64-bit counters (a wrap at 2**64 is one); a cell of 9 octets,
    non-digits or an integer tag is skipped and counted."""
    (tmp_path / "octets.yaml").write_text(
        "name: octet-counters\ntables:\n  - index: port\n    columns:\n"
        "      - {name: rx_octets_per_s, oid: '1.3.6.1.4.1.99999.2.1', type: counter, served_as: octets}\n"
        "      - {name: tx_octets_per_s, oid: '1.3.6.1.4.1.99999.2.2', type: counter, served_as: text}\n"
    )
    profile = load_profiles([tmp_path])["octet-counters"]
    top = 2**64 - 1_000
    before = {1: (top, b"18446744073709551000"), 2: (5, b" 1000 "), 3: (70, b"12")}
    after = {1: (top + 150, b"18446744073709551600"), 2: (6_005, b"61000"), 3: (0, b"12")}
    bad = [Varbind(parse_oid("1.3.6.1.4.1.99999.2.1.4"), 4, bytes(9)), Varbind(parse_oid("1.3.6.1.4.1.99999.2.2.4"), 4, b"1e3")]
    bad.append(Varbind(parse_oid("1.3.6.1.4.1.99999.2.1.5"), 70, 7))

    def cells(rows: dict[int, tuple[int, bytes]]) -> list[Varbind]:
        found = [
            Varbind(parse_oid(f"1.3.6.1.4.1.99999.2.1.{port}"), 4, octets.to_bytes(8, "big"))
            for port, (octets, _) in rows.items()
        ]
        return found + [Varbind(parse_oid(f"1.3.6.1.4.1.99999.2.2.{port}"), 4, text) for port, (_, text) in rows.items()]

    rates = RateTracker()
    first = decode(profile, cells(before) + bad)
    assert first.skipped == 3
    assert measure(profile, first, "dev", rates, 0.0) == {}  # no rate from one reading
    rows = measure(profile, decode(profile, cells(after) + bad), "dev", rates, 10.0)
    assert rows["1"] == {"rx_octets_per_s": 15.0, "tx_octets_per_s": 60.0}
    assert rows["2"] == {"rx_octets_per_s": 600.0, "tx_octets_per_s": 6_000.0}
    assert rows["3"] == {"tx_octets_per_s": 0.0}  # its octets went from 70 to 0: a reset, no rate


def test_an_onu_line_is_found_by_its_serial() -> None:
    """match: serial keys a line by its `serial` (a port-keyed profile does not find it)."""
    onu = Line("100009", "ONU", "olt-1", serial="UBNT20731888")
    assert line_key(PROFILES["ufiber-onu"], onu) == "UBNT20731888"
    assert line_key(PROFILES["gpon-axos"], onu) is None
    assert line_key(PROFILES["ufiber-onu"], Line("100010", "port only", "olt-1", port=7)) is None
