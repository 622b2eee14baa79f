"""`monitord inventory import netbox` against tests/netbox_replay.py, which replays NetBox's
documented REST responses (tests/fixtures/netbox/) on 127.0.0.1 with token auth and pagination:
the fragment it writes is included by a config that `monitord check` passes, each bad input is
refused by name with nothing written, and a NetBox that refuses or fails is said so, never with
the token in the output."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml

from monitord.cli import main
from monitord.config import load_config
from tests.netbox_replay import Replay, lists, serving

TOKEN = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c"
KEPT = "# the fragment of the last good import\n"


def run(capsys: pytest.CaptureFixture[str], url: str, token_file: Path, *more: str) -> tuple[int, str, str]:
    code = main(["inventory", "import", "netbox", "--url", url, "--token-file", str(token_file), "--timeout", "5", *more])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests honours *_PROXY from the environment: the replay is on loopback, reached directly."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "netbox.token"
    path.write_text(TOKEN + "\n")
    return path


def write_config(tmp_path: Path, auths: str = "dslam-v2 olt-v3") -> Path:
    (tmp_path / "community").write_text("public\n")
    (tmp_path / "olt.key").write_text("authpass123\n")
    (tmp_path / "subscribers.csv").write_text(  # subscribers stay in the billing export, naming NetBox's devices
        "id,name,phone,email,language,device,port,mac,modem\n100001,Ayşe Yılmaz,0532 123 45 67,,tr,sisli-dslam-01,1,,\n"
    )
    known = {
        "dslam-v2": "    dslam-v2: {version: 2c, community: {file: community}}\n",
        "olt-v3": "    olt-v3: {version: 3, user: monitor, auth_protocol: sha, auth_key: {file: olt.key},"
        " priv_protocol: aes, priv_key: {file: olt.key}}\n",
    }
    config = tmp_path / "monitord.yaml"
    config.write_text(
        "state_file: state.db\ntracking_prefix: ARZ\ntimezone: Europe/Istanbul\n"
        + "snmp:\n  auths:\n"
        + "".join(known[name] for name in auths.split())
        + "topology:\n  file: netbox-topology.yaml\nsubscribers:\n  csv: subscribers.csv\n"
    )
    return config


def test_the_fragment_is_included_by_a_config_that_check_passes(
    tmp_path: Path, token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fragment = tmp_path / "netbox-topology.yaml"
    config = write_config(tmp_path)
    with serving(Replay(TOKEN, lists())) as replay:
        code, _, err = run(
            capsys,
            replay.url,
            token_file,
            "--out",
            str(fragment),
            "--page-size",
            "2",
            "--ignore-role",
            "server",
            "--check",
            str(config),
        )
    assert code == 0, err
    assert f"wrote {fragment}: 4 device(s) mapped; passed over 1 with role server, 1 with status planned" in err
    # six devices two at a time: three pages, the later ones reached through `next`
    assert [r for r in replay.requests if r.startswith("/api/dcim/devices/")] == [
        "/api/dcim/devices/?limit=2",
        "/api/dcim/devices/?limit=2&offset=2",
        "/api/dcim/devices/?limit=2&offset=4",
    ]
    assert main(["check", str(config)]) == 0, capsys.readouterr().err
    assert "2 regions, 3 exchanges, 4 devices, 1 subscriber lines" in capsys.readouterr().out
    devices = load_config(config).topology.devices
    assert {d.id: (d.kind, d.address, d.exchange) for d in devices.values()} == {
        "sisli-dslam-01": ("dslam", "10.20.0.11", "sisli"),
        "sisli-rtr-01": ("router", "10.20.0.1", "sisli"),
        "besiktas-olt-01": ("olt", "10.20.1.13", "besiktas"),
        "cankaya-cmts-01": ("cmts", "2001:db8:20::14", "cankaya"),
    }
    assert devices["besiktas-olt-01"].profiles == ("gpon-axos",)


def test_a_fragment_the_config_refuses_is_taken_back(
    tmp_path: Path, token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """NetBox names an SNMP auth the config does not define: only the config can tell."""
    fragment = tmp_path / "netbox-topology.yaml"
    fragment.write_text(KEPT)
    config = write_config(tmp_path, auths="dslam-v2")
    with serving(Replay(TOKEN, lists())) as replay:
        code, _, err = run(
            capsys, replay.url, token_file, "--out", str(fragment), "--ignore-role", "server", "--check", str(config)
        )
    assert code == 1
    assert "refuses the new fragment, so the previous fragment is back in place" in err
    assert f"{fragment}:" in err and "unknown snmp auth 'olt-v3'" in err
    assert fragment.read_text() == KEPT


def test_a_problem_in_the_fragment_is_reported_at_the_fragments_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "topo.yaml").write_text(
        "regions:\n- id: r\n  name: R\n  exchanges:\n  - id: e\n    name: E\n    devices:\n    - {id: d, kind: bras, address: 10.0.0.1}\n"
    )
    (tmp_path / "monitord.yaml").write_text(
        "state_file: s.db\ntracking_prefix: ARZ\ntimezone: UTC\ntopology: {file: topo.yaml}\n"
    )
    assert main(["check", str(tmp_path / "monitord.yaml")]) == 1
    assert f"{tmp_path / 'topo.yaml'}:8" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("topology", "fragment", "said"),
    [
        ("{file: topo.yaml, regions: []}", "regions: []\n", "monitord.yaml:4: topology.regions: is given with topology.file"),
        ("{file: absent.yaml}", "", "monitord.yaml:4: topology.file: cannot read"),
        ("{file: topo.yaml}", "file: other.yaml\n", "topo.yaml:1: file: a topology file does not include another"),
        ("{file: topo.yaml}", "regions: [\n", "topo.yaml:2: YAML syntax error"),
    ],
)
def test_an_include_that_cannot_be_read_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], topology: str, fragment: str, said: str
) -> None:
    (tmp_path / "topo.yaml").write_text(fragment)
    (tmp_path / "monitord.yaml").write_text(f"state_file: s.db\ntracking_prefix: ARZ\ntimezone: UTC\ntopology: {topology}\n")
    assert main(["check", str(tmp_path / "monitord.yaml")]) == 1
    assert said in capsys.readouterr().err


@pytest.mark.parametrize(
    ("bad", "refusal"),
    [
        ("no_primary_ip", "NetBox device 'besiktas-dslam-01' (id 21): it has no primary IP"),
        ("unknown_role", "NetBox device 'besiktas-sw-01' (id 22): its role 'access-switch' is not in the role map"),
        (
            "duplicate_name",
            "NetBox device 'sisli-dslam-01' (id 23): its id 'sisli-dslam-01' is also that of device 'sisli-dslam-01' (id 11",
        ),
    ],
)
def test_a_bad_device_is_refused_by_name_and_nothing_is_written(
    tmp_path: Path, token_file: Path, capsys: pytest.CaptureFixture[str], bad: str, refusal: str
) -> None:
    fragment = tmp_path / "netbox-topology.yaml"
    fragment.write_text(KEPT)
    with serving(Replay(TOKEN, lists((bad,)))) as replay:
        code, out, err = run(capsys, replay.url, token_file, "--out", str(fragment), "--ignore-role", "server")
        json_code, json_out, _ = run(capsys, replay.url, token_file, "--out", str(fragment), "--ignore-role", "server", "--json")
    assert (code, json_code) == (1, 1)
    assert refusal in err and "nothing was written" in err
    report = json.loads(json_out)
    assert report["ok"] is False and report["written"] is None and len(report["problems"]) >= 1
    assert fragment.read_text() == KEPT
    assert sorted(tmp_path.iterdir()) == sorted([token_file, fragment])  # and no temporary file left


def test_skip_bad_writes_the_rest_and_still_lists_the_refused(
    tmp_path: Path, token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fragment = tmp_path / "netbox-topology.yaml"
    with serving(Replay(TOKEN, lists(("unknown_role",)))) as replay:
        code, _, err = run(capsys, replay.url, token_file, "--out", str(fragment), "--ignore-role", "server", "--skip-bad")
    assert code == 0
    assert "besiktas-sw-01" in err
    written = yaml.safe_load(fragment.read_text())
    assert "besiktas-sw-01" not in str(written) and "besiktas-olt-01" in str(written)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("token", "fail_with", "said"),
    [
        ("wrong-" + TOKEN, None, "refused the token (HTTP 403): check --token-file"),
        (TOKEN, 503, "failed (HTTP 503); nothing was written"),
        (TOKEN, "closed", "cannot reach NetBox at http://127.0.0.1:"),
    ],
)
def test_a_netbox_that_refuses_or_fails_is_said_so_without_the_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], token: str, fail_with: int | str | None, said: str
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(token)
    fragment = tmp_path / "netbox-topology.yaml"
    with serving(Replay(TOKEN, lists(), fail_with if isinstance(fail_with, int) else None)) as replay:
        url = f"http://127.0.0.1:{_closed_port()}" if fail_with == "closed" else replay.url
        code, out, err = run(capsys, url, token_file, "--out", str(fragment))
        _, json_out, _ = run(capsys, url, token_file, "--out", str(fragment), "--json")
    assert code == 3
    assert said in err and said in json.loads(json_out)["error"]
    assert TOKEN not in out + err + json_out
    assert not fragment.exists()
