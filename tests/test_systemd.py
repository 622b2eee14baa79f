"""The systemd side: the unit passes `systemd-analyze verify` and `security`, the sysusers file
creates the user, sd_notify speaks the protocol, and the daemon needs no privilege but CAP_NET_RAW."""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lab.isp import build_sample_isp
from monitord import sdnotify
from tests.ops_fixtures import daemons, short_dir  # noqa: F401

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "monitord.service"
TEMPLATE = REPO / "systemd" / "monitord@.service"  # one instance per role: monitord@notifier, monitord@all
ALL_DROP_IN = REPO / "systemd" / "monitord@all.service.d" / "net-raw.conf"
PER_ROLE = {
    "Description",
    "ExecStart",
    "SyslogIdentifier",
    "RestartPreventExitStatus",
    "AmbientCapabilities",
    "CapabilityBoundingSet",
}
SYSUSERS = REPO / "systemd" / "monitord.sysusers.conf"
MONITORD = Path(sys.executable).parent / "monitord"
MAX_EXPOSURE = 2.0  # systemd-analyze security: 0 best, 10 worst; 1.4 measured (docs/operations.md)
CAP_NET_RAW = 13


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is missing: apt-get install systemd (dev.sh installs it)"
    return found


def unit_settings(text: str) -> dict[str, list[str]]:
    """`Key=value` lines by key, in order (systemd allows a key more than once)."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def analyze(tmp: Path, text: str, *command: str) -> subprocess.CompletedProcess[str]:
    """Run systemd-analyze on a copy of the unit whose commands point at this checkout's monitord."""
    return analyze_units(tmp, {UNIT.name: text}, str(tmp / UNIT.name), *command)


def analyze_instance(
    tmp: Path, role: str, *command: str, template: str | None = None, drop_in: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run systemd-analyze on monitord@`role`.service: the template and the `all` instance's
    drop-in copied (or `template`/`drop_in` instead), the instance found by name."""
    files = {
        TEMPLATE.name: TEMPLATE.read_text(encoding="utf-8") if template is None else template,
        f"{ALL_DROP_IN.parent.name}/{ALL_DROP_IN.name}": ALL_DROP_IN.read_text(encoding="utf-8") if drop_in is None else drop_in,
    }
    return analyze_units(tmp, files, f"monitord@{role}.service", *command)


def analyze_units(tmp: Path, files: dict[str, str], target: str, *command: str) -> subprocess.CompletedProcess[str]:
    """Write `files` (paths under `tmp`) with their commands pointing at this checkout's monitord,
    and run systemd-analyze `command` on `target` (a path, or a unit name looked up in `tmp`).

    Only `tmp` and the packaged units are searched: units the admin enabled on this machine
    (with their own warnings) stay out of the verdict.
    """
    for name, text in files.items():
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_text(text.replace("/usr/local/bin/monitord", str(MONITORD)), encoding="utf-8")
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{tmp}:/lib/systemd/system", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}
    return subprocess.run([tool("systemd-analyze"), *command, target], capture_output=True, text=True, env=env, timeout=60)


def test_unit_passes_systemd_analyze_verify_without_a_warning(tmp_path):
    done = analyze(tmp_path, UNIT.read_text(encoding="utf-8"), "verify")
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_verify_does_report_a_broken_unit(tmp_path):
    """The check above can fail: a typo is only a warning (rc 0), so stderr is what counts."""
    broken = UNIT.read_text(encoding="utf-8").replace("ProtectSystem=strict", "ProtectSystem=strickt")
    done = analyze(tmp_path, broken, "verify")
    assert "strickt" in done.stderr


def test_unit_asks_for_notify_watchdog_reload_and_hardening():
    unit = unit_settings(UNIT.read_text(encoding="utf-8"))
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]
    assert int(unit["WatchdogSec"][0]) > 0 and int(unit["TimeoutStopSec"][0]) > 10
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["User"] == ["monitord"] and unit["StateDirectory"] == ["monitord"]
    assert unit["AmbientCapabilities"] == unit["CapabilityBoundingSet"] == ["CAP_NET_RAW"]
    for key, value in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
    ]:
        assert unit[key] == [value], key
    assert set(unit["RestrictAddressFamilies"][0].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}


def test_the_unit_caps_malloc_arenas_and_the_end_to_end_bench_runs_under_it():
    """Two glibc arenas and a fixed mmap threshold (docs/benchmarks.md, "The whole daemon's
    memory"); bench/endurance.py and bench/capacity.py measure the daemon under the unit's own environment."""
    from bench.capacity import unit_environment

    wanted = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "131072"}
    assert unit_settings(UNIT.read_text(encoding="utf-8"))["Environment"] == [f"{k}={v}" for k, v in wanted.items()]
    assert unit_environment(UNIT) == unit_environment(TEMPLATE) == wanted


def test_security_exposure_is_low(tmp_path):
    done = analyze(tmp_path, UNIT.read_text(encoding="utf-8"), "security", "--offline=yes", "--no-pager")
    assert exposure(done, "monitord.service") <= MAX_EXPOSURE


def exposure(done: subprocess.CompletedProcess[str], unit: str) -> float:
    found = re.search(rf"Overall exposure level for {re.escape(unit)}: (\d+\.\d+)", done.stdout)
    assert found, done.stdout + done.stderr
    return float(found.group(1))


# --- the template: one instance per role ------------------------------------------------------


@pytest.mark.parametrize("role", ["notifier", "all"])
def test_template_instances_pass_systemd_analyze_verify_without_a_warning(tmp_path, role):
    done = analyze_instance(tmp_path, role, "verify")
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_verify_reads_the_all_drop_in_for_that_instance_only(tmp_path):
    """The drop-in is not dead weight: a typo there is reported for monitord@all, not monitord@notifier."""
    broken = ALL_DROP_IN.read_text(encoding="utf-8").replace("AmbientCapabilities=", "AmbientCapabilitys=")
    assert "AmbientCapabilitys" in analyze_instance(tmp_path / "all", "all", "verify", drop_in=broken).stderr
    assert analyze_instance(tmp_path / "notifier", "notifier", "verify", drop_in=broken).stderr == ""


def test_template_runs_the_role_and_differs_from_the_single_box_unit_only_per_role():
    """monitord.service and the template repeat each other (systemd has no include); this keeps
    the hardening, watchdog and reload settings from drifting apart."""
    single, template = unit_settings(UNIT.read_text(encoding="utf-8")), unit_settings(TEMPLATE.read_text(encoding="utf-8"))
    assert template["ExecStart"] == ["/usr/local/bin/monitord run --role %i /etc/monitord/monitord.yaml"]
    assert template["SyslogIdentifier"] == ["monitord-%i"] and template["RestartPreventExitStatus"] == ["2"]
    assert {k: v for k, v in template.items() if k not in PER_ROLE} == {k: v for k, v in single.items() if k not in PER_ROLE}
    assert "AmbientCapabilities" not in template and template["CapabilityBoundingSet"] == [""]  # none at all
    drop_in = unit_settings(ALL_DROP_IN.read_text(encoding="utf-8"))
    assert drop_in["AmbientCapabilities"] == drop_in["CapabilityBoundingSet"] == single["CapabilityBoundingSet"]
    assert drop_in["Conflicts"] == ["monitord.service"]


def test_the_notifier_instance_holds_no_capability_and_the_all_instance_only_cap_net_raw(tmp_path):
    notifier = analyze_instance(tmp_path / "notifier", "notifier", "security", "--offline=yes", "--no-pager")
    everything = analyze_instance(tmp_path / "all", "all", "security", "--offline=yes", "--no-pager")
    assert "Service has no elevated networking privileges" in notifier.stdout
    assert "Service process does not receive ambient capabilities" in notifier.stdout
    assert "Service has elevated networking privileges" in everything.stdout  # CAP_NET_RAW, from the drop-in
    notifier_score, all_score = exposure(notifier, "monitord@notifier.service"), exposure(everything, "monitord@all.service")
    assert notifier_score < all_score <= MAX_EXPOSURE


def test_sysusers_creates_the_system_user(tmp_path):
    (tmp_path / "etc").mkdir()
    done = subprocess.run(
        [tool("systemd-sysusers"), f"--root={tmp_path}", str(SYSUSERS)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    user = next(line.split(":") for line in (tmp_path / "etc/passwd").read_text().splitlines() if line.startswith("monitord:"))
    assert int(user[2]) < 1000, "a system user"
    assert user[5:] == ["/var/lib/monitord", "/usr/sbin/nologin"]
    assert any(line.startswith(f"monitord:x:{user[3]}:") for line in (tmp_path / "etc/group").read_text().splitlines())


# --- sd_notify -------------------------------------------------------------------------------


def receiver(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(2)
    return sock


def test_notify_sends_to_a_path_socket(short_dir, monkeypatch):
    path = str(short_dir / "notify")
    with receiver(path) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        assert sdnotify.notify("READY=1", "STATUS=polling 3 devices")
        assert sock.recv(4096) == b"READY=1\nSTATUS=polling 3 devices"
        assert sdnotify.reloading()
        fields = dict(line.split("=") for line in sock.recv(4096).decode().splitlines())
        assert fields["RELOADING"] == "1" and int(fields["MONOTONIC_USEC"]) > 0


def test_notify_sends_to_an_abstract_socket(monkeypatch):
    name = f"monitord-test-{os.getpid()}"
    with receiver("\0" + name) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.notify("WATCHDOG=1")
        assert sock.recv(4096) == b"WATCHDOG=1"


def test_notify_without_systemd_or_with_a_dead_socket_reports_false(short_dir, monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", str(short_dir / "gone"))
    assert sdnotify.notify("READY=1") is False


def test_watchdog_interval_is_half_of_watchdog_usec_and_only_for_our_pid(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert sdnotify.watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdnotify.watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert sdnotify.watchdog_interval() is None
    monkeypatch.delenv("WATCHDOG_USEC")
    assert sdnotify.watchdog_interval() is None


# --- privileges -------------------------------------------------------------------------------


def as_nobody(*caps: str) -> list[str]:
    """setpriv: the user `nobody`, no_new_privs, and only `caps` (e.g. "net_raw") left anywhere."""
    keep = "-all" + "".join(f",+{c}" for c in caps)
    return [
        tool("setpriv"),
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--no-new-privs",
        f"--inh-caps={keep}",
        f"--ambient-caps={keep}",
        f"--bounding-set={keep}",
    ]


@pytest.fixture
def nobody_isp(short_dir):
    """A small ISP config the user nobody can read and keep its state under."""
    isp = build_sample_isp(
        short_dir / "isp", base="127.7.10", regions=1, exchanges_per_region=1, ports_per_dslam=2, with_cmts=False
    )
    subprocess.run(["chown", "-R", "nobody:nogroup", str(isp.root)], check=True)
    return isp


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, value in (line.split(":", 1) for line in lines)}


async def test_only_cap_net_raw_is_needed(nobody_isp, daemons):
    """As in the unit: a system user, no_new_privs, CAP_NET_RAW alone; ICMP then uses raw sockets."""
    daemon = await daemons(nobody_isp.config, prefix=as_nobody("net_raw"))
    assert "ICMP echo over IPv4 raw" in daemon.log()
    status = proc_status(daemon.proc.pid)
    assert status["Uid"].split()[0] == str(pwd.getpwnam("nobody").pw_uid)
    assert status["NoNewPrivs"] == "1"
    assert int(status["CapEff"], 16) == int(status["CapBnd"], 16) == 1 << CAP_NET_RAW
    assert await daemon.stop() == 0


async def test_without_any_capability_it_needs_ping_group_range(nobody_isp, daemons):
    """No capability: the kernel's ping sockets if nogroup is in ping_group_range, else one clear error."""
    low, high = map(int, Path("/proc/sys/net/ipv4/ping_group_range").read_text().split())
    if low <= grp.getgrnam("nogroup").gr_gid <= high:
        daemon = await daemons(nobody_isp.config, prefix=as_nobody())
        assert "ICMP echo over IPv4 datagram" in daemon.log()
        assert await daemon.stop() == 0
        return
    done = subprocess.run(
        [*as_nobody(), sys.executable, "-m", "monitord.cli", "run", str(nobody_isp.config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "cannot start: cannot open an ICMP socket: needs CAP_NET_RAW" in done.stderr
    assert "Traceback" not in done.stderr


# --- the NetBox import on a timer -------------------------------------------------------------


@pytest.mark.parametrize("unit", ["monitord-netbox.service", "monitord-netbox.timer"])
def test_the_netbox_import_units_pass_systemd_analyze_verify_without_a_warning(tmp_path, unit):
    files = {
        name: (REPO / "systemd" / name).read_text(encoding="utf-8")
        for name in ("monitord-netbox.service", "monitord-netbox.timer")
    }
    done = analyze_units(tmp_path, files, str(tmp_path / unit), "verify")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    service = unit_settings(files["monitord-netbox.service"])
    assert "--check /etc/monitord/monitord.yaml" in files["monitord-netbox.service"] and service["User"] == ["monitord"]
