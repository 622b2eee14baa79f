"""The simulated ISP as pytest fixtures, plus net-snmp/ping helpers to look at it from outside.

`lab_isp` (session): the default sample ISP, its snmpsim agents started, stopped at the end.
`lab` (function): the same lab, put back to its generated values after the test.
`lab_faults` (function): an nftables fault injector whose table is deleted after the test.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from lab.faults import Faults
from lab.isp import LabDevice, build_sample_isp
from lab.snmp import SnmpLab, free_udp_port
from tests.blocks import own_base

NET_SNMP_ENV = {**os.environ, "MIBS": ""}


def session_base() -> str:
    """A per-process address block, so that a lab silenced here never hides another run's lab."""
    return own_base(10)


def spare_base() -> str:
    """Another per-process block, apart from session_base(), for a second lab in the same run."""
    return own_base(200)


def snmpwalk(device: LabDevice, oid: str, timeout: float = 1.0) -> dict[str, str]:
    """OID -> value text (after the type) of a bulk walk under `oid`; {} if the agent is silent."""
    done = subprocess.run(
        [
            "snmpbulkwalk",
            "-v2c",
            "-c",
            device.community or "",
            "-t",
            str(timeout),
            "-r",
            "0",
            "-On",
            "-Ot",
            f"{device.address}:{device.port}",
            oid,
        ],
        capture_output=True,
        text=True,
        env=NET_SNMP_ENV,
        check=False,
    )
    rows = {}
    for line in done.stdout.splitlines():
        name, _, value = line.partition(" = ")
        kind, typed, shown = value.partition(": ")
        rows[name.lstrip(".")] = shown if typed else kind
    return rows


def ping(address: str) -> bool:
    """True if any of three echoes is answered: one late reply on a loaded machine is no outage."""
    done = subprocess.run(["ping", "-c3", "-i0.2", "-W1", address], capture_output=True, check=False)
    return done.returncode == 0


@pytest.fixture(scope="session")
def lab_isp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpLab]:
    base = session_base()
    isp = build_sample_isp(tmp_path_factory.mktemp("lab-isp"), base=base, snmp_port=free_udp_port(f"{base}.1"))
    with SnmpLab(isp) as running:
        yield running


@pytest.fixture
def lab(lab_isp: SnmpLab) -> Iterator[SnmpLab]:
    yield lab_isp
    lab_isp.reset()


@pytest.fixture
def lab_faults() -> Iterator[Faults]:
    with Faults() as faults:
        yield faults
