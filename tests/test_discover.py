"""`monitord discover` and `monitord check --probe` against snmpsim serving every recording of
../shared/snmprec at once (community = file name).

The profiles each recording should get are listed here (EXPECTED) and checked a second time
against what the .snmprec files hold, read without probes/: the profiles' YAML read with PyYAML,
and a profile fits a file when the file has an OID under the first column of one of its tables.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.snmp import start_snmpsim, stop_process
from monitord.builtin import PROFILES_DIR
from monitord.cli import main
from monitord.config import load_config
from monitord.model import Outcome, Secret, SnmpAuth
from probes.discovery import Slots, discover
from probes.profile_files import load_profiles
from probes.snmp import SnmpClient
from probes.snmpbase import Target
from tests.snmp_fixtures import RECORDINGS, SNMPD_AUTH_KEY, SNMPD_PRIV_KEY, Snmpd, read_snmprec, snmpd

__all__ = ["snmpd"]

# snmpsim and snmpd share the pytest-xdist group "snmp" with the other SNMP tests (tests/conftest.py)
pytestmark = pytest.mark.xdist_group("snmp")

Oid = tuple[int, ...]

EXPECTED = {  # recording -> the profiles that find rows there -> the lines each would produce
    "arris-c4": {"docsis-upstream": 96, "if-mib": 197},
    "arris-d5": {"if-mib": 48},
    "axos_e7-2": {"gpon-axos": 206, "if-mib": 249},
    "draytek_vdsl": {"adsl": 1, "adsl-wholedb": 1, "if-mib": 11, "vdsl2": 1},
    "edgeosolt": {"if-mib": 6, "ufiber-onu": 29},
    "edgeosolt_uisp-fiber": {"if-mib": 15, "ufiber-onu": 1},
    "exa_pon": {"if-mib": 893},
    "hatteras_hn4000-i": {"if-mib": 176},
    "hatteras_hn4000e": {"if-mib": 91},
    "ies5000_5005": {"if-mib": 32},
    "ies5000_5106": {"if-mib": 56},
    "ies52xxM_4206": {"if-mib": 43},
    "ies52xxM_zynos-msc1240xa-ies5206": {"if-mib": 87},
    "iosxr_asr9001": {"if-mib": 67},
    "junos_vmx": {"if-mib": 59},
    "motorola-cm": {"docsis-cm": 1, "docsis-upstream": 1, "if-mib": 6},  # a modem's signal quality row is its downstream
    "oneaccess_oneaccess-showtime": {"if-mib": 17, "oneaccess-shdsl": 4},
    "smartax": {"if-mib": 42},
    "teldat_teldatvdsl2": {"adsl": 1, "adsl-wholedb": 1, "if-mib": 23},
    "vrp_ne8000-m8": {"huawei-optics": 9, "if-mib": 19},
    "weos_ddw-225": {"if-mib": 10, "shdsl": 2},
    "zxa10_c320": {"if-mib": 11},
    "zxdsl": {"if-mib": 258},
    "zynos_ges1316": {"if-mib": 24},
}
ALSO = ("127.0.0.2", "127.0.0.3")  # the same agent on more addresses: an inventory's devices need one each


@dataclass(frozen=True)
class Agents:
    port: int


def _oid(text: str) -> Oid:
    return tuple(int(part) for part in text.strip(".").split("."))


def _sorted_records(path: Path) -> str:
    """The file's records sorted by OID, the first of duplicates kept (zxa10_c320 is out of order)."""
    records: dict[Oid, str] = {}
    for line in path.read_text(encoding="utf-8", errors="surrogateescape").splitlines():
        if line.count("|") >= 2:
            records.setdefault(_oid(line.split("|", 1)[0]), line)
    return "".join(records[oid] + "\n" for oid in sorted(records))


@pytest.fixture(scope="module")
def snmpsim_all(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agents]:
    root = tmp_path_factory.mktemp("snmprec-all")
    data = root / "data"
    data.mkdir()
    for path in sorted(RECORDINGS.glob("*.snmprec")):
        if path.stem == "zxa10_c320":
            (data / path.name).write_text(_sorted_records(path), encoding="utf-8", errors="surrogateescape")
        else:
            shutil.copy(path, data / path.name)
    process, port = start_snmpsim(data, root / "cache", "zxdsl", also=ALSO)
    try:
        yield Agents(port)
    finally:
        stop_process(process)


def test_every_recording_is_listed() -> None:
    assert sorted(path.stem for path in RECORDINGS.glob("*.snmprec")) == sorted(EXPECTED)


# --- the expectations, read from the files without probes/ --------------------------------------


def _profile_tables() -> dict[str, list[dict[str, Any]]]:
    """Profile name -> its tables, as the YAML says (`extends` takes the base's tables)."""
    documents = {}
    for path in PROFILES_DIR.glob("*.yaml"):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        documents[document["name"]] = document
    return {name: (documents[doc["extends"]] if "extends" in doc else doc)["tables"] for name, doc in documents.items()}


def _lines_in_file(records: dict[Oid, tuple[str, str]], tables: list[dict[str, Any]], per_device: bool) -> int:
    """The lines a profile's tables make from the file's rows: distinct ports (or MAC keys) under
    each table's first column, with the index as long as the table says."""
    keys: set[object] = set()
    for table in tables:
        if table.get("join"):
            continue
        column = _oid(table["key"]["oid"] if "key" in table else table["columns"][0]["oid"])
        spec = table.get("index", "port")
        parts = spec if isinstance(spec, list) else [spec]
        width = sum(6 if part == "mac" else 1 for part in parts)
        for oid, (_tag, value) in records.items():
            index = oid[len(column) :]
            if oid[: len(column)] != column or not index:
                continue
            if "key" in table:
                keys.add(value.lower())
            elif parts == ["serial"]:  # a length-prefixed text
                if index[0] == len(index) - 1:
                    keys.add(index)
            elif len(index) == width and all(
                not isinstance(part, dict) or index[i] in part["values"] for i, part in enumerate(parts)
            ):
                keys.add(index[parts.index("port")] if "port" in parts else index)
    return min(len(keys), 1) if per_device else len(keys)


def test_expected_fits_are_what_the_recordings_hold() -> None:
    tables = _profile_tables()
    device_wide = {name for name, doc in _documents().items() if doc.get("match") == "device"}
    for name, expected in EXPECTED.items():
        records = read_snmprec(RECORDINGS / f"{name}.snmprec")
        found = {profile: _lines_in_file(records, t, profile in device_wide) for profile, t in tables.items()}
        assert {profile: lines for profile, lines in found.items() if lines} == expected, name


def _documents() -> dict[str, dict[str, Any]]:
    return {doc["name"]: doc for doc in (yaml.safe_load(p.read_text(encoding="utf-8")) for p in PROFILES_DIR.glob("*.yaml"))}


# --- discovery over SNMP ------------------------------------------------------------------------


def _auth(name: str) -> SnmpAuth:
    return SnmpAuth(name, "2c", community=Secret(name, "test"))


async def test_discover_every_recording_at_once(snmpsim_all: Agents) -> None:
    """All 24 agents asked together, with polling's default limits: the fits and line counts,
    the identity read, and few requests per device."""
    client = SnmpClient(timeout=3.0, retries=1, max_varbinds=10_000)
    try:
        names = sorted(EXPECTED)
        slots = Slots()  # polling's defaults: 256 in flight, 2 per device
        found = await asyncio.gather(
            *(discover(client, Target("127.0.0.1", snmpsim_all.port, _auth(n)), load_profiles(), slots=slots) for n in names)
        )
    finally:
        client.close()
    by_name = dict(zip(names, found, strict=True))
    assert {n: d.outcome for n, d in by_name.items()} == dict.fromkeys(names, Outcome.OK)
    assert {n: {f.profile: f.lines for f in d.fits} for n, d in by_name.items()} == EXPECTED
    assert not any(f.capped or f.detail for d in found for f in d.fits)
    axos = by_name["axos_e7-2"]
    assert (axos.sys_object_id, axos.sys_descr) == ("1.3.6.1.4.1.6321.1.2.4.1.1", "Calix, Inc E7-2 XG801 none")
    # 1 GET, 1 GETNEXT, then the walks of the columns that have rows (893 ifIndexes: 36 GETBULKs of 25)
    assert by_name["weos_ddw-225"].requests <= 6
    assert max(d.requests for d in found) <= 2 + 893 // 25 + 3


async def test_the_line_cap_stops_a_count(snmpsim_all: Agents) -> None:
    client = SnmpClient(timeout=3.0, retries=1, max_varbinds=100)
    try:
        found = await discover(client, Target("127.0.0.1", snmpsim_all.port, _auth("exa_pon")), load_profiles())
    finally:
        client.close()
    fit = found.fit("if-mib")
    assert fit is not None and fit.capped and 100 <= fit.lines < 893


# --- the command line ---------------------------------------------------------------------------

DEVICE = """\
            - id: {id}
              kind: {kind}
              address: {address}
              port: {port}
              snmp: {auth}
              profiles: [{profiles}]
"""


def _config(tmp_path: Path, port: int, devices: str = "", extra: str = "") -> Path:
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    auths = ""
    for name in ("draytek_vdsl", "motorola-cm", "axos_e7-2", "zxa10_c320"):
        (secrets / name).write_text(name)
        (secrets / name).chmod(0o600)
        auths += f"    {name}:\n      version: 2c\n      community: {{file: secrets/{name}}}\n"
    if not devices:
        devices = DEVICE.format(id="rtr-1", kind="router", address="127.0.0.9", port=port, auth="axos_e7-2", profiles="if-mib")
    path = tmp_path / "monitord.yaml"
    path.write_text(
        f"state_file: state.db\ntracking_prefix: ARZ\ntimezone: Europe/Istanbul\n{extra}"
        f"snmp:\n  timeout: 1s\n  retries: 1\n  auths:\n{auths}"
        "topology:\n  regions:\n    - id: r\n      name: R\n      exchanges:\n        - id: e\n          name: E\n"
        f"          devices:\n{devices}"
    )
    return path


def test_discover_prints_a_snippet_the_inventory_takes(
    snmpsim_all: Agents, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, snmpsim_all.port)
    code = main(["discover", "127.0.0.1", "--port", str(snmpsim_all.port), "--auth", "draytek_vdsl", "--config", str(config)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "# adsl: 1 line; adsl-wholedb finds the same tables (choose one)" in out
    assert "# if-mib: 11 lines" in out
    [device] = yaml.safe_load(out)
    assert device["profiles"] == ["adsl", "if-mib", "vdsl2"]
    assert (device["address"], device["port"], device["snmp"]) == ("127.0.0.1", snmpsim_all.port, "draytek_vdsl")
    entry = "".join(f"            {line}\n" for line in out.splitlines())
    loaded = load_config(_config(tmp_path, snmpsim_all.port, entry))
    assert loaded.topology.devices[device["id"]].profiles == ("adsl", "if-mib", "vdsl2")


def test_discover_json(snmpsim_all: Agents, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, snmpsim_all.port)
    code = main(
        ["discover", "127.0.0.1", "--port", str(snmpsim_all.port), "--auth", "motorola-cm", "--config", str(config), "--json"]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["outcome"] == "ok" and report["sys_object_id"] == "1.3.6.1.4.1.1166.1.450.12.2"
    assert report["suggested"] == ["docsis-cm", "docsis-upstream", "if-mib"]  # nothing tells a modem's signal table from a CMTS's
    assert "docsis-cmts" in report["no_rows"] and "docsis-cm" not in report["no_rows"]
    assert {p["name"]: p["lines"] for p in report["profiles"]} == {"docsis-cm": 1, "docsis-upstream": 1, "if-mib": 6}


LOCAL = """\
name: zte-onu-distance
description: ZTE C320 ONU ranging distance (a local profile for the test)
match: port
tables:
  - index: [port, row]  # PON port ifIndex, ONU id
    columns:
      - {name: onu_distance_m, oid: "1.3.6.1.4.1.3902.1012.3.11.4.1.2", type: gauge}
"""


def test_discover_finds_local_profiles(snmpsim_all: Agents, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "zte-onu-distance.yaml").write_text(LOCAL)
    config = str(_config(tmp_path, snmpsim_all.port, extra="profiles_dir: profiles\n"))
    port = str(snmpsim_all.port)
    assert main(["discover", "127.0.0.1", "--port", port, "--auth", "zxa10_c320", "--config", config, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    records = read_snmprec(RECORDINGS / "zxa10_c320.snmprec")
    pon_ports = _lines_in_file(records, yaml.safe_load(LOCAL)["tables"], per_device=False)
    assert pon_ports == 7  # 125 ONUs on 7 of the 8 PON ports: the profile's line key is the port
    assert {p["name"]: p["lines"] for p in report["profiles"]} == {"if-mib": 11, "zte-onu-distance": pon_ports}


async def test_snmpv1_getnext_past_the_end(snmpsim_all: Agents) -> None:
    """SNMPv1 agents answer a GETNEXT past the last object with noSuchName for the whole request:
    the column past the end is dropped and the request sent again; discovery then walks with GETNEXT."""
    client = SnmpClient(timeout=3.0, retries=1, max_varbinds=10_000)
    target = Target("127.0.0.1", snmpsim_all.port, SnmpAuth("v1", "1", community=Secret("axos_e7-2", "test")))
    try:
        ont_rx = (1, 3, 6, 1, 4, 1, 6321, 1, 2, 4, 2, 6, 1, 1, 6)
        result = await client.get_next(target, [(2, 9), ont_rx])
        found = await discover(client, target, load_profiles())
    finally:
        client.close()
    assert (result.outcome, result.requests, len(result.varbinds)) == (Outcome.OK, 2, 1)
    assert result.varbinds[0].oid[: len(ont_rx)] == ont_rx
    assert {f.profile: f.lines for f in found.fits} == EXPECTED["axos_e7-2"]


async def test_snmpv3_discovery_and_a_refused_key(snmpd: Snmpd) -> None:
    """net-snmp's agent over SNMPv3 authPriv (GETNEXT and GETBULK through pysnmp): its interfaces
    fit if-mib and nothing else; a wrong key is told as an authentication failure."""

    def v3(auth_key: str) -> Target:
        auth = SnmpAuth("v3", "3", user="monitor", auth_protocol="sha", auth_key=Secret(auth_key, "test"), priv_protocol="aes")
        return Target("127.0.0.1", snmpd.port, replace(auth, priv_key=Secret(SNMPD_PRIV_KEY, "test")))

    client = SnmpClient(timeout=3.0, retries=1, max_varbinds=10_000)
    try:
        found = await discover(client, v3(SNMPD_AUTH_KEY), load_profiles())
        refused = await discover(client, v3("not-the-key1"), load_profiles())
    finally:
        client.close()
    assert (found.outcome, found.sys_name, [f.profile for f in found.fits]) == (Outcome.OK, "lab-dslam-1", ["if-mib"])
    assert found.fits[0].lines == len(Path("/proc/net/dev").read_text().splitlines()) - 2  # the interfaces, less 2 heading lines
    assert (refused.outcome, refused.fits) == (Outcome.AUTH_FAILURE, ())


def test_discover_bad_input(snmpsim_all: Agents, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(_config(tmp_path, snmpsim_all.port))
    port = str(snmpsim_all.port)
    assert main(["discover", "127.0.0.1", "--port", port, "--auth", "axos-e7-2", "--config", config]) == 2
    assert "unknown auth 'axos-e7-2'" in capsys.readouterr().err
    for address in ("300.1.2.3", "dslam-1.example", "224.0.0.1", "fe80::1%eth0"):
        assert main(["discover", address, "--auth", "axos_e7-2", "--config", config]) == 2
        assert f"{address!r} is not an address" in capsys.readouterr().err
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # bound, never answers
        silent.bind(("127.0.0.1", 0))
        quiet = str(silent.getsockname()[1])
        assert main(["discover", "127.0.0.1", "--port", quiet, "--auth", "axos_e7-2", "--config", config, "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["outcome"] == "timeout"
    assert f"127.0.0.1:{quiet}: no answer (timeout: 2 tries of 1 s" in captured.err


def test_check_probe_flags_a_profile_without_table(
    snmpsim_all: Agents, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = snmpsim_all.port
    devices = "".join(
        DEVICE.format(id=i, kind=k, address=a, port=port, auth=auth, profiles=p)
        for i, k, a, auth, p in (
            ("olt-1", "olt", "127.0.0.1", "axos_e7-2", "gpon-axos, if-mib"),
            ("cpe-1", "dslam", "127.0.0.2", "draytek_vdsl", "vdsl2"),
            ("cm-1", "router", "127.0.0.3", "motorola-cm", "gpon-axos"),
        )
    )
    ont = min(_oid(oid)[-1] for oid, _ in _column_rows("axos_e7-2", "1.3.6.1.4.1.6321.1.2.4.2.6.1.1.6"))
    subscribers = (
        "subscribers:\n  lines:\n"
        f'    - {{id: "s1", name: One, device: olt-1, port: {ont}}}\n'
        '    - {id: "s2", name: Two, device: olt-1, port: 999999}\n'
    )
    config = str(_config(tmp_path, port, devices + subscribers))
    assert main(["check", config]) == 0  # the config itself is fine
    capsys.readouterr()
    assert main(["check", "--probe", config]) == 1
    captured = capsys.readouterr()
    assert f"device cm-1 (127.0.0.3:{port})" in captured.err
    assert "gpon-axos: finds no table here: every line of this device would poll no_table" in captured.err
    assert "would fit too: docsis-cm (1 line), docsis-upstream (1 line), if-mib (6 lines)" in captured.err
    assert "  gpon-axos: OK, 206 lines" in captured.out and "device olt-1" not in captured.err
    assert (
        "  gpon-axos: OK, 206 lines\n    no row for 1 inventory line (would poll not_found): s2 (port 999999)\n" in captured.out
    )
    assert "would fit too: adsl (1 line), if-mib (11 lines)" in captured.out  # cpe-1: a hint, not a failure
    assert "probed 3 SNMP devices: 1 with problems" in captured.out
    assert main(["check", "--probe", "--json", config]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"]
    assert [(d["device"], d["no_table"]) for d in report["devices"]] == [("olt-1", []), ("cpe-1", []), ("cm-1", ["gpon-axos"])]
    assert report["devices"][0]["rowless_lines"]["gpon-axos"] == ["s2"]


def _column_rows(recording: str, column: str) -> list[tuple[str, str]]:
    """(OID, value) of the recording's rows under `column`, read from the file."""
    rows = []
    for line in (RECORDINGS / f"{recording}.snmprec").read_text(encoding="utf-8", errors="replace").splitlines():
        oid, _, rest = line.partition("|")
        if oid.startswith(column + "."):
            rows.append((oid, rest))
    return rows
