"""Numbers read out of text cells (`text: {pattern, unit}`): Huawei transceiver power served as
text on the NetEngine 8000 recording (snmpsim), and synthetic EPON/GPON-style optics text.

Expected values are read from the .snmprec file by the test itself."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitord.model import Device, Outcome, Secret, SnmpAuth
from probes.profile_files import BUILTIN_DIR, load_profiles
from probes.profiles import combine, decode, poll_device
from probes.rates import RateTracker
from probes.snmp import SnmpClient, Varbind, parse_oid
from tests.snmp_fixtures import RECORDINGS, Snmpsim, column, read_snmprec, snmpsim

__all__ = ["snmpsim"]

PROFILES = load_profiles()
OPTICAL = "1.3.6.1.4.1.2011.5.25.31.1.1.3.1"  # HUAWEI-ENTITY-EXTENT-MIB hwEntityOpticalEntry


@pytest.fixture
async def client() -> AsyncIterator[SnmpClient]:
    snmp = SnmpClient(timeout=2.0, retries=0)
    yield snmp
    snmp.close()


async def test_huawei_lane_power_text_on_ne8000(snmpsim: Snmpsim, client: SnmpClient) -> None:
    """hwEntityOpticalLaneRx/TxPower are OCTET STRINGs such as "-290" (0.01 dBm): the same
    numbers the integer hwEntityOpticalRx/TxPower columns serve, which the test checks too."""
    records = read_snmprec(RECORDINGS / "vrp_ne8000-m8.snmprec")
    texts = {
        name: {
            index: value
            for oid, (tag, value) in records.items()
            if tag == "4" and oid[:-1] == parse_oid(f"{OPTICAL}.{col}")
            for index in [oid[-1:]]
        }
        for name, col in (("rx_power_dbm", 32), ("tx_power_dbm", 33))
    }
    assert len(texts["rx_power_dbm"]) == 9
    assert column(records, f"{OPTICAL}.8") == {index: int(text) for index, text in texts["rx_power_dbm"].items()}
    assert column(records, f"{OPTICAL}.9") == {index: int(text) for index, text in texts["tx_power_dbm"].items()}

    auth = SnmpAuth("vrp", "2c", community=Secret("vrp_ne8000-m8", "test"))
    dev = Device("ne8000", "router", "lab", "127.0.0.1", auth, port=snmpsim.port)  # type: ignore[arg-type]
    wanted = {str(index[0]): f"optic-{index[0]}" for index in texts["rx_power_dbm"]}
    polled = await poll_device(client, dev, PROFILES["huawei-optics"], wanted, 0.0, rates=RateTracker())
    assert polled[0].outcome is Outcome.OK and polled[0].detail == ""  # no cell skipped
    found = {sample.target.id: sample.values for sample in polled[1:]}
    for index, line in ((int(port), line) for port, line in wanted.items()):
        expected = {name: int(texts[name][(index,)]) * 0.01 for name in texts}
        assert found[line] == pytest.approx(expected), line
    assert found["optic-17240324"]["rx_power_dbm"] == -40.0  # the receiver without light


def test_optics_text_in_other_formats(tmp_path: Path) -> None:
    """Synthetic cells in the formats EPON/GPON OLTs serve: a number in mW or dBm inside a
    phrase; text the pattern finds no number in gives no value (not an error, not zero)."""
    (tmp_path / "olt.yaml").write_text(
        "name: text-olt\ntables:\n  - index: port\n    columns:\n"
        "      - {name: rx_dbm, oid: '1.3.6.1.4.1.99999.1.1', text: {pattern: '\\(\\s*(-?[0-9.]+) dBm\\)', unit: dBm}}\n"
        "      - {name: rx_mw_dbm, oid: '1.3.6.1.4.1.99999.1.2', text: {pattern: '([0-9.]+) mW', unit: mW}}\n"
    )
    profile = load_profiles([BUILTIN_DIR, tmp_path])["text-olt"]
    cells = {
        1: b"0.03 mW (-14.61 dBm)",
        2: b"0.0012 mW ( -29.21 dBm)",
        3: b"N/A",
        4: b"0.00 mW (-inf dBm)",
        6: b"-- mW",  # the mW pattern finds no number
    }
    varbinds = [
        Varbind(parse_oid(f"1.3.6.1.4.1.99999.1.{col}.{port}"), 4, text) for col in (1, 2) for port, text in cells.items()
    ]
    varbinds.append(Varbind(parse_oid("1.3.6.1.4.1.99999.1.1.5"), 2, -1461))  # an INTEGER where text belongs
    decoded = decode(profile, varbinds)
    assert decoded.skipped == 1
    rows = combine(profile, decoded.runs)
    assert rows["1"] == pytest.approx({"rx_dbm": -14.61, "rx_mw_dbm": 10 * math.log10(0.03)})
    assert rows["2"] == pytest.approx({"rx_dbm": -29.21, "rx_mw_dbm": 10 * math.log10(0.0012)})
    # rows without a value: no number in "N/A"; 0 mW is no light and "-inf" is not a number
    assert {"3", "4", "6"} <= decoded.keys and not {"3", "4", "6"} & set(rows)
