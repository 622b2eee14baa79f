"""The simulated ISP: generated inventory and config, live SNMP agents, edits and outages.

Agents are looked at from outside with net-snmp's CLI and ping; expected values are read from
the generated files, not from lab/ code.
"""

from __future__ import annotations

import csv
import ipaddress
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from lab_fixtures import free_udp_port, lab, lab_faults, lab_isp, ping, snmpwalk, spare_base  # noqa: F401  (fixtures)

from lab.faults import Faults
from lab.isp import LabDevice, build_sample_isp, write_config
from lab.snmp import LabError, SnmpLab, snmpget
from monitord.config import load_config
from tests.blocks import own_base

ATUR_SNR = "1.3.6.1.2.1.10.94.1.1.3.1.4"
IF_OPER = "1.3.6.1.2.1.2.2.1.8"
HC_IN_OCTETS = "1.3.6.1.2.1.31.1.1.1.6"
CM_MAC = "1.3.6.1.2.1.10.127.1.3.3.1.2"
CM_STATUS = "1.3.6.1.2.1.10.127.1.3.3.1.9"
CM_SNR = "1.3.6.1.2.1.10.127.1.3.3.1.13"
ATUC_INITS = "1.3.6.1.2.1.10.94.1.1.6.1.6"
UPTIME = "1.3.6.1.2.1.1.3.0"


def records(path: Path, prefix: str) -> dict[str, str]:
    """OID -> value text of the data file's records under `prefix`."""
    found = {}
    for line in path.read_text().splitlines():
        oid, _, value = line.split("|", 2)
        if oid.startswith(prefix + "."):
            found[oid] = value
    return found


def wait_for(read, expected, within: float = 2.0):
    deadline = time.monotonic() + within
    while (value := read()) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


def nft_tables() -> str:
    return subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout


# --- generated files ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory):
    return build_sample_isp(tmp_path_factory.mktemp("sample"))


def test_default_isp_has_about_a_hundred_subscribers_on_distinct_loopback_addresses(sample) -> None:
    kinds = sorted(d.kind for d in sample.devices.values())
    assert kinds == ["cmts"] + ["dslam"] * 4 + ["router"] * 4
    assert len({d.region for d in sample.devices.values()}) == 2
    assert len({d.exchange for d in sample.devices.values()}) == 4
    assert len(sample.lines) == 100
    addresses = [d.address for d in sample.devices.values()] + [line.modem for line in sample.lines.values()]
    assert len(set(addresses)) == len(addresses)
    assert all(ipaddress.ip_address(a).is_loopback for a in addresses)
    cable = [line for line in sample.lines.values() if line.mac]
    assert len(cable) == 20 and all(sample.devices[line.device].kind == "cmts" for line in cable)


def test_subscribers_csv_reads_like_a_real_export(sample) -> None:
    with sample.subscribers.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["id", "name", "phone", "email", "language", "device", "port", "mac", "modem"]
    assert {r["id"] for r in rows} == set(sample.lines)
    english = sum(r["language"] == "en" for r in rows)
    assert 10 <= english <= 30
    assert any(set(r["name"]) & set("çğıİöşüÇĞÖŞÜ") for r in rows)
    assert all(r["phone"] or r["email"] for r in rows)
    shapes = {re.sub(r"\d", "9", r["phone"]) for r in rows if r["phone"]}
    assert len(shapes) >= 4
    for r in rows:
        line = sample.lines[r["id"]]
        assert (r["device"], r["modem"], r["mac"] or None) == (line.device, line.modem, line.mac)
        assert r["port"] == (str(line.port) if line.port else "")


def test_config_points_at_the_agents_and_keeps_secrets_in_files(sample) -> None:
    config = yaml.safe_load(sample.config.read_text(encoding="utf-8"))
    listed = {
        d["id"]: d for region in config["topology"]["regions"] for exchange in region["exchanges"] for d in exchange["devices"]
    }
    assert set(listed) == set(sample.devices)
    for device in sample.devices.values():
        entry = listed[device.id]
        assert entry["address"] == device.address
        if device.community is None:
            assert "snmp" not in entry
            continue
        secret = config["snmp"]["auths"][entry["snmp"]]["community"]
        assert (sample.root / secret["file"]).read_text().strip() == device.community
        assert device.data_file.name == f"{device.community}.snmprec"
        assert entry["port"] == device.port
        assert device.community not in sample.config.read_text()


def test_generated_config_loads_with_monitord(sample) -> None:
    config = load_config(sample.config)
    topology = config.topology
    assert set(topology.devices) == set(sample.devices)
    assert set(topology.lines) == set(sample.lines)
    for line_id, line in sample.lines.items():
        loaded = topology.lines[line_id]
        assert (loaded.device, loaded.port, loaded.mac, loaded.modem) == (line.device, line.port, line.mac, line.modem)
        assert loaded.phone is None or re.fullmatch(r"\+905\d{9}", loaded.phone)
    dslam = topology.devices["sisli-dslam-01"]
    assert dslam.profiles == ("adsl", "if-mib") and dslam.snmp is not None
    assert dslam.snmp.community.reveal() == sample.devices["sisli-dslam-01"].community


def test_write_config_adds_notifiers_and_merges_overrides(tmp_path: Path) -> None:
    isp = build_sample_isp(tmp_path, regions=1, exchanges_per_region=1, with_cmts=False)
    tickets = {"kind": "webhook", "url": "http://127.0.0.1:8080/hook"}
    write_config(tmp_path, {"tickets": tickets}, polling={"line_interval": "5s"})
    config = yaml.safe_load(isp.config.read_text(encoding="utf-8"))
    assert config["notifiers"] == {"tickets": tickets}
    assert config["polling"]["line_interval"] == "5s"
    assert config["polling"]["icmp_interval"] == "10s"
    assert config["topology"]["regions"][0]["exchanges"][0]["id"] == "sisli"


def test_same_seed_same_isp_other_seed_other_subscribers(tmp_path: Path) -> None:
    first = build_sample_isp(tmp_path / "a", seed=7)
    again = build_sample_isp(tmp_path / "b", seed=7)
    other = build_sample_isp(tmp_path / "c", seed=8)
    assert first.subscribers.read_text() == again.subscribers.read_text()
    assert first.config.read_text() == again.config.read_text()
    assert first.subscribers.read_text() != other.subscribers.read_text()


def test_addresses_under_an_exchange_cover_its_devices_and_modems(sample) -> None:
    under = set(sample.addresses_under("exchange", "besiktas"))
    devices = {d.address for d in sample.devices.values() if d.exchange == "besiktas"}
    modems = {line.modem for line in sample.lines.values() if sample.devices[line.device].exchange == "besiktas"}
    assert len(devices) == 3 and len(modems) > 20
    assert under == devices | modems
    assert sample.addresses_under("line", "S100001") == (sample.lines["S100001"].modem,)
    with pytest.raises(KeyError):
        sample.addresses_under("exchange", "nowhere")


def test_edits_keep_the_file_layout_and_move_the_mtime(tmp_path: Path) -> None:
    isp = build_sample_isp(tmp_path, regions=1, exchanges_per_region=1, with_cmts=False)
    snmp = SnmpLab(isp)
    line = next(iter(isp.lines.values()))
    path = isp.devices[line.device].data_file
    before, mtime = path.read_bytes(), int(path.stat().st_mtime)
    snmp.set_line_metric(line.id, "snr_margin_down_db", -2.5)
    first = int(path.stat().st_mtime)
    snmp.set_line_metric(line.id, "snr_margin_down_db", 31.2)
    after = path.read_bytes()
    assert len(after) == len(before)
    assert first > mtime and int(path.stat().st_mtime) > first
    assert records(path, ATUR_SNR)[f"{ATUR_SNR}.{line.row}"] == "000312"
    changed = [a for a, b in zip(before.splitlines(), after.splitlines()) if a != b]
    assert len(changed) == 1
    with pytest.raises(LabError):
        snmp.set_value(line.device, f"{ATUR_SNR}.{line.row}", 10**7)
    with pytest.raises(LabError):
        snmp.set_line_metric(line.id, "no_such_metric", 1)
    snmp.reset()
    assert path.read_bytes() == before


# --- live agents ------------------------------------------------------------------------------


def test_dslam_serves_the_generated_snr_column(lab_isp: SnmpLab) -> None:
    device = lab_isp.isp.devices["sisli-dslam-01"]
    walked = snmpwalk(device, ATUR_SNR)
    expected = {oid: str(int(value)) for oid, value in records(device.data_file, ATUR_SNR).items()}
    assert len(walked) == 24
    assert walked == expected
    sold = [line.row for line in lab_isp.isp.lines.values() if line.device == device.id]
    assert all(int(walked[f"{ATUR_SNR}.{row}"]) >= 85 for row in sold)
    oper = snmpwalk(device, IF_OPER)
    assert {oper[f"{IF_OPER}.{row}"] for row in sold} == {"1"}


def test_cmts_table_walks_with_every_inventory_modem(lab_isp: SnmpLab) -> None:
    device = lab_isp.isp.devices["besiktas-cmts-01"]
    macs = snmpwalk(device, CM_MAC)
    seen = {value.strip().lower().replace(" ", ":") for value in macs.values()}
    assert len(macs) == 22
    assert {line.mac for line in lab_isp.isp.lines.values() if line.device == device.id} < seen
    assert set(snmpwalk(device, CM_STATUS).values()) == {"6"}
    assert all(300 <= int(v) <= 400 for v in snmpwalk(device, CM_SNR).values())


def test_uptime_and_counters_advance(lab_isp: SnmpLab) -> None:
    device = lab_isp.isp.devices["cankaya-dslam-01"]
    line = next(line for line in lab_isp.isp.lines.values() if line.device == device.id)
    _, uptime = lab_isp.read(device.id, UPTIME)
    boot = float(uptime.split(",")[2])
    ticks = int(snmpwalk(device, UPTIME)[UPTIME])
    assert abs(ticks / 100 - (time.time() - boot)) < 5
    oid = f"{HC_IN_OCTETS}.{line.row}"
    first = int(snmpwalk(device, oid)[oid])
    time.sleep(1.1)
    assert int(snmpwalk(device, oid)[oid]) > first


def test_live_changes_are_seen_within_two_seconds(lab: SnmpLab) -> None:
    line = next(line for line in lab.isp.lines.values() if line.port)
    device = lab.isp.devices[line.device]
    snr = f"{ATUR_SNR}.{line.row}"

    def read(oid: str) -> str | None:
        return snmpget(device, oid)

    lab.set_line_metric(line.id, "snr_margin_down_db", 4.5)
    assert wait_for(lambda: read(snr), "45") == "45"
    lab.set_oper_status(line.id, False)
    assert wait_for(lambda: read(f"{IF_OPER}.{line.row}"), "2") == "2"

    inits = f"{ATUC_INITS}.{line.row}"
    lab.set_line_metric(line.id, "resyncs_per_s", 4.0)
    start = int(read(inits))
    time.sleep(1.5)
    assert 3 <= int(read(inits)) - start <= 9

    lab.reboot(device.id)
    uptime = read(UPTIME)
    assert uptime is not None and int(uptime) < 500

    lab.reset()
    assert wait_for(lambda: read(f"{IF_OPER}.{line.row}"), "1") == "1"
    assert read(snr) != "45"


def test_cable_modem_goes_offline_and_its_snr_drops(lab: SnmpLab) -> None:
    line = next(line for line in lab.isp.lines.values() if line.mac)
    device = lab.isp.devices[line.device]

    def read(oid: str) -> str | None:
        return snmpget(device, oid)

    lab.set_line_metric(line.id, "us_snr_db", 21.3)
    assert wait_for(lambda: read(f"{CM_SNR}.{line.row}"), "213") == "213"
    lab.set_oper_status(line.id, False)
    assert wait_for(lambda: read(f"{CM_STATUS}.{line.row}"), "1") == "1"


def test_silence_makes_snmp_and_ping_fail_until_restored(lab_isp: SnmpLab, lab_faults: Faults) -> None:
    device = lab_isp.isp.devices["kecioren-dslam-01"]
    other = lab_isp.isp.devices["cankaya-dslam-01"]
    modem = next(line.modem for line in lab_isp.isp.lines.values() if line.device == device.id)

    def get(d: LabDevice) -> str | None:
        return snmpget(d, UPTIME, timeout=0.5)

    assert get(device) and ping(device.address) and ping(modem)

    lab_faults.silence(device.address, modem)
    assert lab_faults.silenced == {device.address, modem}
    assert get(device) is None
    assert not ping(device.address) and not ping(modem)
    assert get(other) and ping(other.address)

    lab_faults.restore(device.address)
    assert get(device) and ping(device.address)
    assert not ping(modem)
    lab_faults.restore_all()
    assert ping(modem)
    assert lab_faults.table in nft_tables()
    lab_faults.close()
    assert lab_faults.table not in nft_tables()


def test_faults_refuse_real_addresses_and_leave_no_table() -> None:
    with Faults() as faults:
        with pytest.raises(ValueError):
            faults.silence("192.0.2.1")
        assert faults.table not in nft_tables()
    assert Faults().table != faults.table


def test_a_killed_labs_drops_are_removed_by_the_next_lab() -> None:
    """A lab killed before its close leaves its table; the next lab to silence deletes it, so the
    addresses of the block it held answer again."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    orphan = f"monitord_lab_{int(gone.stdout)}_1"
    subprocess.run(["nft", "add", "table", "inet", orphan], check=True)
    with Faults() as faults:
        faults.silence(f"{own_base(250)}.1")  # an address of this process's own block
        assert orphan not in nft_tables() and faults.table in nft_tables()


def test_two_labs_run_side_by_side(lab_isp: SnmpLab, tmp_path: Path) -> None:
    first = lab_isp.isp.devices["sisli-dslam-01"]
    small = build_sample_isp(
        tmp_path,
        regions=1,
        exchanges_per_region=1,
        with_cmts=False,
        with_routers=False,
        base=spare_base(),
        snmp_port=first.port,
        seed=3,
    )
    second = small.devices["sisli-dslam-01"]
    assert second.address != first.address and second.community != first.community
    line = next(iter(small.lines.values()))
    with SnmpLab(small) as other, Faults() as faults_a, Faults() as faults_b:
        other.set_line_metric(line.id, "snr_margin_down_db", 1.0)
        oid = f"{ATUR_SNR}.{line.row}"
        assert wait_for(lambda: snmpget(second, oid), "10") == "10"
        assert snmpget(first, oid) == str(int(records(first.data_file, ATUR_SNR)[oid]))
        assert faults_a.table != faults_b.table
        faults_a.silence(first.address)
        faults_b.silence(second.address)
        assert snmpget(first, UPTIME, timeout=0.5) is None
        faults_a.close()
        assert snmpget(first, UPTIME, timeout=0.5)
        assert snmpget(second, UPTIME, timeout=0.5) is None
        assert faults_b.table in nft_tables()
    assert not other.running
    assert faults_b.table not in nft_tables()


def test_start_fails_clearly_when_an_agent_cannot_bind(tmp_path: Path) -> None:
    isp = build_sample_isp(
        tmp_path,
        regions=1,
        exchanges_per_region=1,
        with_cmts=False,
        with_routers=False,
        base="127.251.10",
        snmp_port=free_udp_port("127.251.10.1"),
    )
    device = next(iter(isp.devices.values()))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind((device.address, device.port))
        lab = SnmpLab(isp, ready_timeout=3)
        with pytest.raises(LabError):
            lab.start()
    assert not lab.running


def test_default_lab_starts_in_seconds(lab_isp: SnmpLab) -> None:
    assert lab_isp.running
    assert lab_isp.startup_seconds is not None and lab_isp.startup_seconds < 15


def test_faults_say_clearly_that_they_need_root() -> None:
    script = "from lab.faults import Faults\nFaults().silence('127.0.0.9')\n"
    done = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )
    assert done.returncode != 0
    assert "FaultError: fault injection needs root" in done.stderr
