"""Line profiles: loading, pure decoding, counter rates, and polling real recordings with snmpsim.

Expected values are read from the .snmprec files by the tests themselves, not by probes/.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitord.model import Device, Line, NodeRef, Outcome, Sample, Secret, SnmpAuth
from probes.profile_files import BUILTIN_DIR, ProfileError, load_profiles
from probes.profiles import Decoded, decode, line_key, poll_device
from probes.rates import RateTracker
from probes.snmp import SnmpClient, Varbind, parse_oid
from tests.snmp_fixtures import RECORDINGS, Snmpsim, column, read_snmprec, snmpsim, synthetic_cmts

__all__ = ["snmpsim"]

PROFILES = load_profiles()


@pytest.fixture
async def client() -> AsyncIterator[SnmpClient]:
    snmp = SnmpClient(timeout=0.5, retries=0)
    yield snmp
    snmp.close()


def device(sim: Snmpsim, community: str, kind: str = "dslam") -> Device:
    auth = SnmpAuth(community, "2c", community=Secret(community, "test"))
    return Device(community, kind, "lab", "127.0.0.1", auth, port=sim.port)  # type: ignore[arg-type]


def by_target(samples: list[Sample]) -> dict[NodeRef, Sample]:
    return {sample.target: sample for sample in samples}


def raw(name: str, prefix: str, index: str) -> int:
    return column(read_snmprec(RECORDINGS / f"{name}.snmprec"), prefix)[parse_oid(index)]


# --- loading --------------------------------------------------------------------------------------


def test_builtin_profiles_load() -> None:
    assert {
        "adsl",
        "adsl-wholedb",
        "vdsl2",
        "docsis-cm",
        "docsis-cmts",
        "if-mib",
        "gpon-axos",
        "shdsl",
        "oneaccess-shdsl",
        "huawei-optics",
    } <= set(PROFILES)
    assert PROFILES["gpon-axos"].intervals == {"optical"}
    assert PROFILES["docsis-cmts"].match == "mac"
    assert all(len(column.oid) > 8 for profile in PROFILES.values() for column in profile.columns())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: x\ntables: [{index: port, columns: [{name: a, oid: '1.3.6', colour: red}]}]\n",
            "tables[0].columns[0].colour: unknown key",
        ),
        ("name: x\ntables: [{index: port, columns: [{name: a, oid: 'ifInErrors'}]}]\n", "tables[0].columns[0].oid"),
        ("name: x\nname: y\ntables: []\n", "duplicate key 'name'"),
        ("name: x\nextends: nothere\n", "extends: unknown profile 'nothere'"),
        ("name: x\ntables: [{index: port, columns: [{name: 'snr_{band}_db', oid: '1.3.6'}]}]\n", "tables[0].columns[0].name"),
        ("name: x\ntables: [{index: [port, mac], columns: [{name: a, oid: '1.3.6'}]}]\n", "tables[0].index: at most one"),
        ("name: x\nmatch: serial\ntables: [{columns: [{name: a, oid: '1.3.6'}]}]\n", "match: 'serial'"),
        ("name: x\ntables: [{columns: [{name: a, oid: '1.3.6', type: counter, scale: fast}]}]\n", "tables[0].columns[0].scale"),
        ("name: x\nextends: adsl\noverride: {snr_db: {scale: 1}}\n", "override.snr_db: no such metric"),
        ("- just\n- a list\n", "expected a mapping at the top level"),
        (
            "name: x\ntables: [{columns: [{name: a, oid: '1.3.6', fallback: '1.3.7'}]}]\n",
            "tables[0].columns[0].fallback: only a counter",
        ),
        (
            "name: x\ntables: [{columns: [{name: a, oid: '1.3.6', type: counter, fallback: ifInOctets}]}]\n",
            "tables[0].columns[0].fallback",
        ),
        (
            "name: x\ntables: [{columns: [{name: a, oid: '1.3.6', text: {pattern: '[0-9]+', unit: dBm}}]}]\n",
            "tables[0].columns[0].text.pattern: needs exactly one group",
        ),
        (
            "name: x\ntables: [{columns: [{name: a, oid: '1.3.6', text: {pattern: '([0-9]+)', unit: furlong}}]}]\n",
            "tables[0].columns[0].text.unit: 'furlong' is not one of",
        ),
        (
            "name: x\ntables: [{columns: [{name: a, oid: '1.3.6', text: {pattern: '([0-9]+)', unit: dBm}, scale: 0.1}]}]\n",
            "tables[0].columns[0].text: only on a gauge without scale",
        ),
        (
            "name: x\ntables: [{columns: [{name: a, oid: '1.3.6', bits: [1], map: {1: 1}}]}]\n",
            "tables[0].columns[0].bits: only on a gauge without scale",
        ),
        (
            "name: x\ntables: [{columns: [{name: a, oid: '1.3.6', type: counter, bits: [6]}]}]\n",
            "tables[0].columns[0].bits: a gauge's list",
        ),
        ("name: x\ntables: [{join: yes please, columns: [{name: a, oid: '1.3.6'}]}]\n", "tables[0].join: expected true or false"),
        (
            "name: x\ntables: [{columns: [{name: a, oid: '1.3.6'}]}]\naggregates: [{name: s, any_nonzero: a}]\n",
            "aggregates[0].any_nonzero",
        ),
    ],
)
def test_bad_profiles_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "broken.yaml").write_text(text)
    with pytest.raises(ProfileError) as error:
        load_profiles([BUILTIN_DIR, tmp_path])
    assert "broken.yaml" in str(error.value)
    assert message in str(error.value)


def test_a_bad_profile_names_file_and_line(tmp_path: Path) -> None:
    """The line of the key at fault, or of its nearest ancestor when the key is missing."""
    columns = "    columns:\n      - {name: a, oid: '1.3.6'}\n      - name: b\n        oid: '1.3.7'\n        scale: lots\n"
    (tmp_path / "broken.yaml").write_text("name: x\ntables:\n  - index: port\n" + columns)
    with pytest.raises(ProfileError, match=r"broken\.yaml:8: tables\[0\]\.columns\[1\]\.scale: expected a number"):
        load_profiles([BUILTIN_DIR, tmp_path])
    (tmp_path / "broken.yaml").write_text("name: x\ntables:\n  - index: port\n    columns:\n      - {oid: '1.3.6'}\n")
    with pytest.raises(ProfileError, match=r"broken\.yaml:5: tables\[0\]\.columns\[0\]\.name: expected a str"):
        load_profiles([BUILTIN_DIR, tmp_path])
    (tmp_path / "broken.yaml").write_text("name: x\nextends: adsl\noverride:\n  snr_margin_up_db: {zero: nothing}\n")
    with pytest.raises(ProfileError, match=r"broken\.yaml:4: override\.snr_margin_up_db\.zero: 'nothing' is not one of"):
        load_profiles([BUILTIN_DIR, tmp_path])


def test_a_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("name: x\ntables: []\nname: y\n")
    with pytest.raises(ProfileError, match=r"broken\.yaml:3: duplicate key 'name' \(first given on line 1\)"):
        load_profiles([BUILTIN_DIR, tmp_path])


def test_a_later_directory_replaces_a_profile(tmp_path: Path) -> None:
    (tmp_path / "if.yaml").write_text(
        "name: if-mib\ndescription: only oper status\ntables:\n"
        "  - {index: port, columns: [{name: oper_up, oid: '1.3.6.1.2.1.2.2.1.8', map: {1: 1, 2: 0}}]}\n"
    )
    profiles = load_profiles([BUILTIN_DIR, tmp_path])
    assert [c.name for c in profiles["if-mib"].columns()] == ["oper_up"]


def test_keyed_table_with_a_mapped_column_walks_its_key(tmp_path: Path) -> None:
    """A `map` makes a column unhashable; choosing the key columns must not depend on hashing."""
    (tmp_path / "cmts.yaml").write_text(
        "name: cmts-online\nmatch: mac\ntables:\n"
        "  - index: row\n    key: {oid: '1.3.6.1.2.1.10.127.1.3.3.1.2', type: mac}\n"
        "    columns: [{name: online, oid: '1.3.6.1.2.1.10.127.1.3.3.1.9', map: {6: 1, 1: 0}}]\n"
    )
    profile = load_profiles([tmp_path])["cmts-online"]
    assert profile.walk_oids() == (parse_oid("1.3.6.1.2.1.10.127.1.3.3.1.2"), parse_oid("1.3.6.1.2.1.10.127.1.3.3.1.9"))


def test_line_keys() -> None:
    line = Line("s1", "Ayşe", "dev", port=17, mac="00:1D:CF:00:01:07")
    assert line_key(PROFILES["adsl"], line) == "17"
    assert line_key(PROFILES["docsis-cmts"], line) == "00:1d:cf:00:01:07"
    assert line_key(PROFILES["docsis-cm"], line) == ""
    assert line_key(PROFILES["adsl"], Line("s2", "Ali", "dev")) is None


# --- decoding (pure) ------------------------------------------------------------------------------

SNR_DOWN = parse_oid("1.3.6.1.2.1.10.94.1.1.3.1.4")
OPER = parse_oid("1.3.6.1.2.1.2.2.1.8")
IN_ERRORS = parse_oid("1.3.6.1.2.1.2.2.1.14")


def cells_of(decoded: Decoded) -> list[tuple[str, str, float | None]]:
    """(line key, metric name, value) of every decoded cell, column by column."""
    return [cell for run in decoded.runs for cell in zip(run.keys, run.names, run.values, strict=True)]


def test_wrong_types_and_bad_indexes_are_skipped_and_counted() -> None:
    decoded = decode(
        PROFILES["if-mib"],
        [
            Varbind(OPER + (1,), 2, 1),
            Varbind(OPER + (2,), 4, b"up"),  # a string where an enum belongs
            Varbind(OPER + (3,), 2, 99),  # not in the map
            Varbind(OPER + (4, 1), 2, 1),  # index too long for `port`
            Varbind(IN_ERRORS + (1,), 66, 5),  # a gauge where a counter belongs
            Varbind(IN_ERRORS + (5,), 65, 5),
        ],
    )
    assert cells_of(decoded) == [("1", "oper_up", 1.0), ("5", "in_errors_per_s", 5)]
    assert decoded.skipped == 4
    assert decoded.keys == {"1", "2", "3", "5"}


def test_unavailable_sentinels_give_no_value() -> None:
    band_snr = parse_oid("1.3.6.1.2.1.10.251.1.1.2.1.4")
    decoded = decode(PROFILES["vdsl2"], [Varbind(band_snr + (3, 4), 2, 2147483646), Varbind(band_snr + (3, 6), 2, -12)])
    assert [(name, value) for _, name, value in cells_of(decoded)] == [("snr_margin_ds2_db", pytest.approx(-1.2))]
    assert decoded.skipped == 0


ANY_VALUE = st.one_of(
    st.integers(-(2**63), 2**64 - 1),
    st.binary(max_size=12),
    st.lists(st.integers(0, 2**32 - 1), max_size=6).map(tuple),
)


@given(
    profile=st.sampled_from(sorted(PROFILES)),
    cells=st.lists(
        st.tuples(
            st.integers(0, 40),
            st.lists(st.integers(0, 2**32 - 1), max_size=8),
            st.sampled_from([2, 4, 6, 64, 65, 66, 67, 68, 70]),
            ANY_VALUE,
        ),
        max_size=60,
    ),
)
def test_decode_never_raises_on_hostile_varbinds(profile: str, cells: list[tuple[int, list[int], int, object]]) -> None:
    chosen = PROFILES[profile]
    oids = list(chosen.walk_oids())
    varbinds = [Varbind(oids[i % len(oids)] + tuple(index), tag, value) for i, index, tag, value in cells]  # type: ignore[arg-type]
    decoded = decode(chosen, varbinds)
    assert len(cells_of(decoded)) + decoded.skipped <= len(varbinds)
    assert all(value is not None and math.isfinite(value) for _, _, value in cells_of(decoded))


# --- counters -------------------------------------------------------------------------------------


def rate(rates: RateTracker, cell: str, value: int, bits: int, now: float) -> float | None:
    """The rate of one cell: row 1 of a column named by `cell`."""
    (found,) = rates.rates("d", (1, 3, ord(cell)), [(1,)], [value], [bits], now)
    return found


def test_rates_wrap_and_reset() -> None:
    rates = RateTracker()
    assert rate(rates, "c", 1_000, 32, now=100.0) is None
    assert rate(rates, "c", 7_000, 32, now=160.0) == 100.0
    assert rate(rates, "c", 400, 32, now=220.0) is None  # fell by little: a reset, not a wrap
    assert rate(rates, "c", 700, 32, now=220.0) is None  # no time passed
    assert rate(rates, "w", 2**32 - 600, 32, now=100.0) is None
    assert rate(rates, "w", 600, 32, now=160.0) == 20.0  # Counter32 wrapped
    assert rate(rates, "h", 2**63, 64, now=100.0) is None
    assert rate(rates, "h", 5, 64, now=160.0) is None  # Counter64 never wraps in practice
    assert rate(rates, "h", 605, 64, now=220.0) == 10.0
    assert rate(rates, "h", 2**64 - 1, 64, now=230.0) == pytest.approx((2**64 - 606) / 10)  # exact, no float rounding


def test_reboot_forgets_counters() -> None:
    rates = RateTracker()
    assert rates.uptime("d", 500.0) is False
    rate(rates, "c", 1_000, 32, now=100.0)
    assert rates.uptime("d", 560.0) is False
    assert rates.uptime("d", 3.0) is True
    assert rate(rates, "c", 50, 32, now=160.0) is None
    assert rate(rates, "c", 110, 32, now=220.0) == 1.0


# --- recordings through snmpsim -------------------------------------------------------------------


async def test_adsl_on_draytek_vdsl(snmpsim: Snmpsim, client: SnmpClient) -> None:
    dev = device(snmpsim, "draytek_vdsl")
    adsl = "1.3.6.1.2.1.10.94.1.1"
    lines = {"4": "vigor", "9": "nowhere"}
    samples = by_target(await poll_device(client, dev, PROFILES["adsl"], lines, 1000.0, rates=RateTracker()))
    device_sample = samples[NodeRef("device", dev.id)]
    assert device_sample.outcome is Outcome.OK
    assert device_sample.values["uptime_s"] == raw("draytek_vdsl", "1.3.6.1.2.1.1.3", "0") / 100
    line = samples[NodeRef("line", "vigor")]
    assert line.outcome is Outcome.OK
    assert line.values["snr_margin_down_db"] == pytest.approx(raw("draytek_vdsl", f"{adsl}.3.1.4", "4") / 10)
    assert line.values["attenuation_up_db"] == pytest.approx(raw("draytek_vdsl", f"{adsl}.2.1.5", "4") / 10)
    assert line.values["attainable_rate_down_bps"] == raw("draytek_vdsl", f"{adsl}.2.1.8", "4")
    assert line.values["attainable_rate_up_bps"] == raw("draytek_vdsl", f"{adsl}.3.1.8", "4")
    assert line.values["rate_down_bps"] == 0  # this firmware leaves ChanCurrTxRate at 0
    assert samples[NodeRef("line", "nowhere")].outcome is Outcome.NOT_FOUND

    # The firmware reports whole dB: margin 5 and attenuation 13/16 on a 110 Mbit/s line.
    whole = by_target(await poll_device(client, dev, PROFILES["adsl-wholedb"], {"4": "vigor"}, 1000.0, rates=RateTracker()))
    fixed = whole[NodeRef("line", "vigor")].values
    assert fixed["snr_margin_down_db"] == raw("draytek_vdsl", f"{adsl}.3.1.4", "4")
    assert (fixed["attenuation_up_db"], fixed["attenuation_down_db"]) == (13, 16)


async def test_vdsl2_channel_rates_on_draytek(snmpsim: Snmpsim, client: SnmpClient) -> None:
    dev = device(snmpsim, "draytek_vdsl")
    samples = by_target(await poll_device(client, dev, PROFILES["vdsl2"], {"4": "vigor"}, 1.0, rates=RateTracker()))
    values = samples[NodeRef("line", "vigor")].values
    assert values["rate_down_bps"] == raw("draytek_vdsl", "1.3.6.1.2.1.10.251.1.2.2.1.2", "4.1") == 110_162_000
    assert values["rate_up_bps"] == raw("draytek_vdsl", "1.3.6.1.2.1.10.251.1.2.2.1.2", "4.2")
    assert "snr_margin_down_db" not in values  # no band table in this recording


async def test_adsl_line_down_on_teldat_with_rates(snmpsim: Snmpsim, client: SnmpClient) -> None:
    dev = device(snmpsim, "teldat_teldatvdsl2")
    rates = RateTracker()
    lines = {"17": "teldat-line", "19": "interleaved-channel"}
    first = by_target(await poll_device(client, dev, PROFILES["adsl"], lines, 1000.0, rates=rates))
    line = first[NodeRef("line", "teldat-line")].values
    assert line["snr_margin_down_db"] == line["snr_margin_up_db"] == 0
    assert line["attainable_rate_down_bps"] == 0
    assert "resyncs_per_s" not in line  # a rate needs two readings
    channel = first[NodeRef("line", "interleaved-channel")].values
    assert channel["rate_down_bps"] == raw("teldat_teldatvdsl2", "1.3.6.1.2.1.10.94.1.1.4.1.2", "19")
    second = by_target(await poll_device(client, dev, PROFILES["adsl"], lines, 1060.0, rates=rates))
    assert second[NodeRef("line", "teldat-line")].values["resyncs_per_s"] == 0.0
    assert second[NodeRef("line", "teldat-line")].values["errored_seconds_per_s"] == 0.0
    assert second[NodeRef("line", "interleaved-channel")].values["corrected_blocks_per_s"] == 0.0


async def test_docsis_cm_on_motorola(snmpsim: Snmpsim, client: SnmpClient) -> None:
    dev = device(snmpsim, "motorola-cm")
    rates = RateTracker()
    await poll_device(client, dev, PROFILES["docsis-cm"], {"": "cable-1"}, 0.0, rates=rates)
    samples = by_target(await poll_device(client, dev, PROFILES["docsis-cm"], {"": "cable-1"}, 300.0, rates=rates))
    values = samples[NodeRef("line", "cable-1")].values
    assert values["ds_power_dbmv"] == pytest.approx(raw("motorola-cm", "1.3.6.1.2.1.10.127.1.1.1.1.6", "3") / 10) == -7.3
    assert values["ds_snr_db"] == pytest.approx(raw("motorola-cm", "1.3.6.1.2.1.10.127.1.1.4.1.5", "3") / 10)
    assert values["us_tx_power_dbmv"] == pytest.approx(raw("motorola-cm", "1.3.6.1.2.1.10.127.1.2.2.1.3", "2") / 10)
    assert values["corrected_codewords_per_s"] == 0.0


async def test_gpon_axos_all_onts(snmpsim: Snmpsim, client: SnmpClient) -> None:
    records = read_snmprec(RECORDINGS / "axos_e7-2.snmprec")
    base = "1.3.6.1.4.1.6321.1.2.4.2.6.1.1"
    rx, tx, olt = (column(records, f"{base}.{c}") for c in (6, 7, 8))
    assert len(rx) == 206
    lines = {str(index[0]): f"ont-{index[0]}" for index in rx} | {"1999999": "unprovisioned"}
    samples = by_target(
        await poll_device(client, device(snmpsim, "axos_e7-2", "olt"), PROFILES["gpon-axos"], lines, 5.0, rates=RateTracker())
    )
    assert samples[NodeRef("line", "unprovisioned")].outcome is Outcome.NOT_FOUND
    for index, level in rx.items():
        values = samples[NodeRef("line", f"ont-{index[0]}")].values
        expected = {
            "onu_rx_power_dbm": level,
            "onu_tx_power_dbm": tx[index],
            "olt_rx_power_dbm": olt[index],
        }
        for name, value in expected.items():
            if value > 0:
                assert values[name] == pytest.approx(10 * math.log10(value / 10000)), (index, name)
            else:
                assert name not in values
    assert samples[NodeRef("line", "ont-2000001")].values["onu_rx_power_dbm"] == pytest.approx(-15.2, abs=0.05)


async def test_if_mib_on_zxdsl_256_ports(snmpsim: Snmpsim, client: SnmpClient) -> None:
    records = read_snmprec(RECORDINGS / "zxdsl.snmprec")
    oper = column(records, "1.3.6.1.2.1.2.2.1.8")
    assert len(oper) == 258
    lines = {str(index[0]): f"port-{index[0]}" for index in oper}
    rates = RateTracker()
    dev = device(snmpsim, "zxdsl")
    await poll_device(client, dev, PROFILES["if-mib"], lines, 0.0, rates=rates)
    samples = by_target(await poll_device(client, dev, PROFILES["if-mib"], lines, 60.0, rates=rates))
    for index, status in oper.items():
        values = samples[NodeRef("line", f"port-{index[0]}")].values
        assert values["oper_up"] == (1.0 if status == 1 else 0.0)
        assert values["in_octets_per_s"] == 0.0
    assert sum(s.values.get("oper_up", 0) for s in samples.values()) == sum(1 for v in oper.values() if v == 1)


async def test_docsis_cmts_matches_modems_by_mac(snmpsim: Snmpsim, client: SnmpClient) -> None:
    _, modems = synthetic_cmts()
    lines = {mac: f"cm-{n}" for n, (mac, *_rest) in enumerate(modems)} | {"00:00:5e:00:53:01": "gone"}
    samples = by_target(
        await poll_device(
            client, device(snmpsim, "cmts-synthetic", "cmts"), PROFILES["docsis-cmts"], lines, 1.0, rates=RateTracker()
        )
    )
    for n, (_mac, power, status, snr) in enumerate(modems):
        assert samples[NodeRef("line", f"cm-{n}")].values == {
            "us_rx_power_dbmv": pytest.approx(power / 10),
            "cm_status": status,
            "us_snr_db": pytest.approx(snr / 10),
        }
    assert samples[NodeRef("line", "gone")].outcome is Outcome.NOT_FOUND


async def test_vdsl2_bands_and_worst_band(snmpsim: Snmpsim, client: SnmpClient) -> None:
    samples = by_target(
        await poll_device(
            client, device(snmpsim, "vdsl2-bands"), PROFILES["vdsl2"], {"3": "a", "7": "b"}, 1.0, rates=RateTracker()
        )
    )
    a = samples[NodeRef("line", "a")].values
    assert a["snr_margin_ds1_db"] == pytest.approx(9.5)
    assert a["attenuation_ds3_db"] == pytest.approx(42.0)
    assert "snr_margin_us0_db" not in a  # 2147483646: not available
    assert a["snr_margin_down_db"] == pytest.approx(5.8)  # worst of down 7.2, ds1 9.5, ds2 5.8, ds3 8.1
    assert a["snr_margin_up_db"] == pytest.approx(6.1)  # worst of up 6.1, us1 6.4, us2 7.7
    assert a["attenuation_down_db"] == pytest.approx(42.0)
    assert a["rate_down_bps"] == 98_000_003 and a["attainable_rate_up_bps"] == 35_000_003
    b = samples[NodeRef("line", "b")].values
    assert b["snr_margin_down_db"] == pytest.approx(6.8)


async def test_silent_device_yields_only_its_own_sample(snmpsim: Snmpsim, client: SnmpClient) -> None:
    dev = device(snmpsim, "no-such-community")
    samples = await poll_device(client, dev, PROFILES["adsl"], {"4": "vigor"}, 1.0, rates=RateTracker())
    assert [(s.target, s.outcome, s.probe) for s in samples] == [(NodeRef("device", dev.id), Outcome.TIMEOUT, "snmp:adsl")]
