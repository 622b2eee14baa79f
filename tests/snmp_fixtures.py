"""Real SNMP peers on loopback for the probe tests: snmpsim serving recordings, net-snmp's snmpd,
and a tiny hostile agent that answers what a test tells it to.

Expected values come from reading the .snmprec files here, independently of probes/.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api
from pysnmp.proto.api import verdec

from lab.snmp import free_udp_port, start_snmpsim, stop_process, wait_for_agents
from probes.snmp import SnmpClient

RECORDINGS = Path(__file__).resolve().parents[2] / "shared" / "snmprec"  # ../shared beside the checkout
SERVED = (
    "draytek_vdsl",
    "teldat_teldatvdsl2",
    "motorola-cm",
    "axos_e7-2",
    "zxdsl",
    "weos_ddw-225",
    "oneaccess_oneaccess-showtime",
    "vrp_ne8000-m8",
    "edgeosolt",
    "edgeosolt_uisp-fiber",
)


def read_snmprec(path: Path) -> dict[tuple[int, ...], tuple[str, str]]:
    """OID -> (tag, value text) exactly as written in the file."""
    table = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.count("|") < 2:
            continue
        oid, tag, value = line.split("|", 2)
        table[tuple(int(x) for x in oid.strip(".").split("."))] = (tag, value)
    return table


def column(records: dict[tuple[int, ...], tuple[str, str]], prefix: str) -> dict[tuple[int, ...], int]:
    """Integer cells of one column, by index."""
    base = tuple(int(x) for x in prefix.split("."))
    return {
        oid[len(base) :]: int(value)
        for oid, (tag, value) in records.items()
        if oid[: len(base)] == base and tag in ("2", "65", "66", "67", "70")
    }


def synthetic_cmts() -> tuple[str, list[tuple[str, int, int, int]]]:
    """A docsIfCmtsCmStatusTable with 40 modems: (mac, rx power tenths, status, snr tenths)."""
    base = "1.3.6.1.2.1.10.127.1.3.3.1"
    modems = [
        (f"00:1d:cf:{i // 256:02x}:{i % 256:02x}:{(7 * i) % 256:02x}", -50 + 3 * i, 6 if i % 9 else 2, 250 + i)
        for i in range(1, 41)
    ]
    lines = []
    for column_id in (1, 2, 6, 9, 13):
        for row, (mac, power, status, snr) in enumerate(modems, start=1):
            value = {
                1: f"2|{row}",
                2: "4x|" + mac.replace(":", ""),
                6: f"2|{power}",
                9: f"2|{status}",
                13: f"2|{snr}",
            }[column_id]
            lines.append(f"{base}.{column_id}.{row}|{value}")
    return "1.3.6.1.2.1.1.3.0|67|4242\n" + "\n".join(lines) + "\n", modems


def synthetic_vdsl2_bands() -> str:
    """Two VDSL2 lines (ifIndex 3 and 7) with per-band rows; band us0 of line 3 unavailable."""
    base = "1.3.6.1.2.1.10.251.1.1.2.1"
    bands = {  # band -> (attenuation tenths, snr tenths) for line 3; line 7 adds 10 to both
        1: (120, 61),
        2: (221, 72),
        3: (2147483646, 2147483646),
        4: (98, 95),
        5: (170, 64),
        6: (251, 58),
        7: (302, 77),
        8: (420, 81),
    }
    lines = ["1.3.6.1.2.1.1.3.0|67|100"]
    for column_id in (2, 4):
        for port, extra in ((3, 0), (7, 10)):
            for band, values in bands.items():
                raw = values[0 if column_id == 2 else 1]
                raw = raw if raw == 2147483646 else raw + extra
                tag = "66" if column_id == 2 else "2"
                lines.append(f"{base}.{column_id}.{port}.{band}|{tag}|{raw}")
    for port in (3, 7):
        for unit, rate in ((1, 98_000_000 + port), (2, 31_000_000 + port)):
            lines.append(f"1.3.6.1.2.1.10.251.1.2.2.1.2.{port}.{unit}|66|{rate}")
    for port in (3, 7):
        lines.append(f"1.3.6.1.2.1.10.251.1.1.1.1.20.{port}|66|{100_000_000 + port}")
        lines.append(f"1.3.6.1.2.1.10.251.1.1.1.1.21.{port}|66|{35_000_000 + port}")
    return "\n".join(sorted(lines, key=lambda l: tuple(int(x) for x in l.split("|")[0].split(".")))) + "\n"


VDSL2_HISTORY = {  # (ifIndex, unit: 1 xtuc, 2 xtur) -> ES, SES, LOSS, UAS, ValidInterval of interval 1 (synthetic)
    (3, 1): (4, 0, 0, 0, 1),
    (3, 2): (130, 12, 3, 0, 1),  # the far end had a bad quarter hour
    (7, 1): (900, 900, 900, 900, 2),  # not valid: no value
    (7, 2): (2, 0, 0, 0, 1),
}


def synthetic_vdsl2_history() -> str:
    """The synthetic band rows plus xdsl2PMLineHist15MinTable rows (interval 1, and an interval 2
    that must not be read) for lines 3 and 7, in the MIB's types (Counter32, TruthValue)."""
    lines = synthetic_vdsl2_bands().splitlines()
    for (port, unit), values in VDSL2_HISTORY.items():
        for interval, scale in ((1, 1), (2, 3)):
            for column_id, value in zip((5, 6, 7, 8, 9), values, strict=True):
                tag, shown = ("2", value) if column_id == 9 else ("65", value * scale)
                lines.append(f"1.3.6.1.2.1.10.251.1.4.1.3.1.{column_id}.{port}.{unit}.{interval}|{tag}|{shown}")
    return "\n".join(sorted(lines, key=lambda l: tuple(int(x) for x in l.split("|")[0].split(".")))) + "\n"


SHDSL_SPANS = {  # ifIndex -> (ifOperStatus, repeaters found, attainable bit/s, actual bit/s)
    10: (1, 1, 5_696_000, 4_616_000),
    11: (2, 0, 0, 0),
    12: (1, 0, 2_312_000, 2_312_000),
}
SHDSL_ENDPOINTS = {  # (ifIndex, unit, side, wire pair) -> (attenuation dB, SNR margin dB, ES, SES, CRC anomalies, LOSWS)
    (10, 1, 2, 1): (14, 9, 100, 4, 9_000, 1),  # xtuC, customer side
    (10, 1, 2, 2): (15, 8, 120, 5, 9_500, 1),
    (10, 3, 1, 1): (16, 7, 90, 3, 7_000, 0),  # xru1 (the repeater), network side
    (10, 3, 1, 2): (19, 2, 400, 60, 40_000, 6),  # the bad pair
    (10, 3, 2, 1): (13, 10, 10, 0, 100, 0),  # xru1, customer side
    (10, 3, 2, 2): (12, 11, 11, 0, 110, 0),
    (10, 2, 1, 1): (21, 6, 30, 1, 3_000, 0),  # xtuR, network side
    (10, 2, 1, 2): (22, 5, 31, 1, 3_100, 0),
    (11, 1, 2, 1): (0, 0, 7, 7, 7, 7),  # not in sync: zeros, as the Westermo recording's down port
    (12, 1, 2, 1): (20, 6, 0, 0, 0, 0),  # in sync by ifOperStatus and rates, but the far end ...
    (12, 2, 1, 1): (21, 5, 0, 0, 0, 0),
}
SHDSL_STATUS = {  # hdsl2ShdslEndpointCurrStatus (BITS) as hex octets; others read noDefect(0), "80"
    (11, 1, 2, 1): "0040",  # noNeighborPresent(9)
    (12, 2, 1, 1): "0200",  # ... reports loswFailureAlarm(6)
}
SHDSL_DELTAS = {  # counters' growth over the 60 s between the two synthetic snapshots
    (10, 3, 1, 2): (45, 30, 6_000, 12),
    (10, 2, 1, 1): (6, 0, 600, 0),
}


def synthetic_shdsl(later: bool) -> str:
    """HDSL2-SHDSL-LINE-MIB rows cloned from the Westermo recording's endpoint rows (same columns
    and types, other indexes and values) plus the span status table it lacks: span 10 in sync
    with a repeater, two wire pairs and one bad pair; span 11 down; span 12 in sync by its
    ifOperStatus and rates but with an endpoint in LOSW failure. `later`: the snapshot 60 s on."""
    lines = [f"1.3.6.1.2.1.1.3.0|67|{6100 if later else 100}"]
    for span, (oper, repeaters, attainable, actual) in SHDSL_SPANS.items():
        lines.append(f"1.3.6.1.2.1.2.2.1.8.{span}|2|{oper}")
        for column, value in ((1, repeaters), (2, attainable), (3, actual)):
            lines.append(f"1.3.6.1.2.1.10.48.1.2.1.{column}.{span}|66|{value}")
    for index, (atn, snr, *counters) in SHDSL_ENDPOINTS.items():
        grown = SHDSL_DELTAS.get(index, (0, 0, 0, 0)) if later else (0, 0, 0, 0)
        row = ".".join(map(str, index))
        lines.append(f"1.3.6.1.2.1.10.48.1.5.1.1.{row}|2|{atn}")
        lines.append(f"1.3.6.1.2.1.10.48.1.5.1.2.{row}|2|{snr}")
        lines.append(f"1.3.6.1.2.1.10.48.1.5.1.3.{row}|4x|{SHDSL_STATUS.get(index, '80')}")
        for column, value, delta in zip((4, 5, 6, 7), counters, grown, strict=True):
            lines.append(f"1.3.6.1.2.1.10.48.1.5.1.{column}.{row}|65|{value + delta}")
    return "\n".join(sorted(lines, key=lambda l: tuple(int(x) for x in l.split("|")[0].split(".")))) + "\n"


ADSL = "1.3.6.1.2.1.10.94.1.1"
ADSL_LINES = {  # ifIndex -> (ifOperStatus, ATU-C margin, atn (0.1 dB), attainable, ATU-R margin, atn, attainable, output power C, R (0.1 dBm))
    5: (1, 90, 120, 1_100_000, 75, 300, 12_000_000, 195, 124),  # in sync, clean
    6: (2, 0, 0, 0, 0, 0, 0, 0, 130),  # out of sync (as the Teldat line: the ATU-R still reads a power)
    7: (1, 95, 150, 900_000, 85, 420, 8_000_000, 200, 125),  # in sync, losing signal and frames
}
ADSL_FAILURES = {  # (ifIndex, side) -> LOFS, LOSS, LOLS, LPRS, ESs, inits (counters at t0; the ATU-R has no LOLS or inits)
    (5, "c"): (3, 4, 1, 2, 50, 3),
    (5, "r"): (1, 2, None, 7, 40, None),
    (6, "c"): (100, 5_000, 40, 0, 6_000, 80),
    (6, "r"): (90, 4_000, None, 1, 5_000, None),
    (7, "c"): (10, 20, 2, 0, 300, 4),
    (7, "r"): (11, 21, None, 5, 310, None),
}
ADSL_DELTAS = {  # counters' growth over the 60 s between the two synthetic snapshots
    (6, "c"): (0, 60, 0, 0, 60, 0),  # a line out of sync loses signal every second
    (6, "r"): (0, 60, None, 0, 60, None),
    (7, "c"): (2, 20, 1, 0, 25, 1),
    (7, "r"): (4, 6, None, 1, 30, None),
}
ADSL_INTERVALS = {  # (ifIndex, side, interval) -> LOFS, LOSS, LOLS, LPRS, ESs, inits, valid data (1 true, 2 false); 1 = last complete
    (5, "c", 1): (0, 1, 0, 0, 120, 0, 1),  # the last 15 minutes were bad, the ones before clean
    (5, "c", 2): (0, 0, 0, 0, 3, 0, 1),
    (5, "r", 1): (2, 0, None, 0, 80, None, 1),
    (5, "r", 2): (0, 0, None, 0, 1, None, 1),
    (7, "c", 1): (900, 900, 900, 0, 900, 9, 2),  # not valid (the agent restarted): no value
    (7, "r", 1): (1, 14, None, 0, 12, None, 1),
}


def synthetic_adsl(later: bool) -> str:
    """ADSL-LINE-MIB rows cloned from the Teldat recording's line (ifIndex 17: the same columns
    and types, other indexes and values): three lines, their failure counters and 15-minute
    interval tables. `later`: the snapshot 60 s on."""
    lines = [f"1.3.6.1.2.1.1.3.0|67|{6100 if later else 100}"]
    for port, (oper, *phys) in ADSL_LINES.items():
        lines.append(f"1.3.6.1.2.1.2.2.1.8.{port}|2|{oper}")
        snr_c, atn_c, att_c, snr_r, atn_r, att_r, pwr_c, pwr_r = phys
        for table, (snr, atn, att, pwr) in ((2, (snr_c, atn_c, att_c, pwr_c)), (3, (snr_r, atn_r, att_r, pwr_r))):
            lines += [f"{ADSL}.{table}.1.4.{port}|2|{snr}", f"{ADSL}.{table}.1.5.{port}|66|{atn}"]
            lines += [f"{ADSL}.{table}.1.7.{port}|2|{pwr}", f"{ADSL}.{table}.1.8.{port}|66|{att}"]
    layout = {"c": (6, (1, 2, 3, 4, 5, 6)), "r": (7, (1, 2, None, 3, 4, None))}  # PerfDataTable, column per counter
    for (port, side), counters in ADSL_FAILURES.items():
        grown = ADSL_DELTAS.get((port, side), (0,) * 6) if later else (0,) * 6
        table, columns = layout[side]
        for column_id, value, delta in zip(columns, counters, grown, strict=True):
            if column_id is not None and value is not None:
                lines.append(f"{ADSL}.{table}.1.{column_id}.{port}|65|{value + (delta or 0)}")
    intervals = {"c": (8, (2, 3, 4, 5, 6, 7, 8)), "r": (9, (2, 3, None, 4, 5, None, 6))}
    for (port, side, number), values in ADSL_INTERVALS.items():
        table, columns = intervals[side]
        lines.append(f"{ADSL}.{table}.1.1.{port}.{number}|2|{number}")
        for column_id, value in zip(columns, values, strict=True):
            if column_id is not None and value is not None:
                tag = "2" if column_id == columns[-1] else "66"
                lines.append(f"{ADSL}.{table}.1.{column_id}.{port}.{number}|{tag}|{value}")
    return "\n".join(sorted(lines, key=lambda l: tuple(int(x) for x in l.split("|")[0].split(".")))) + "\n"


MIKROTIK_SFPS = {  # mtxrOpticalIndex -> (RxLoss, Tx power, Rx power in thousandths of a dBm); synthetic: no recording has this table
    1: (0, -2_400, -5_100),
    2: (0, 1_234, -17_896),
    3: (1, -2_150, -40_000),  # no light: Rx loss
    4: (0, 0, 0),  # an empty cage: every column 0
}


def synthetic_mikrotik_sfp() -> str:
    """MIKROTIK-MIB mtxrOpticalTable rows in the MIB's types (Integer32), as RouterOS serves them."""
    lines = ["1.3.6.1.2.1.1.3.0|67|100"]
    for column_id, at in ((3, 0), (9, 1), (10, 2)):
        lines += [f"1.3.6.1.4.1.14988.1.1.19.1.1.{column_id}.{index}|2|{row[at]}" for index, row in MIKROTIK_SFPS.items()]
    return "\n".join(lines) + "\n"


SIGQ = "1.3.6.1.2.1.10.127.1.1.4.1"  # DOCS-IF-MIB docsIfSignalQualityTable
CM_STATUS = "1.3.6.1.2.1.10.127.1.2.2.1"  # DOCS-IF-MIB docsIfCmStatusTable


def recording_slice(name: str, prefixes: tuple[str, ...]) -> bytes:
    """The lines of a recording under these OIDs, byte for byte: a real table served without
    making snmpsim index the whole 1.9 MB file."""
    wanted = tuple(prefix.encode() for prefix in prefixes)
    lines = (RECORDINGS / f"{name}.snmprec").read_bytes().splitlines(keepends=True)
    return b"".join(line for line in lines if line.split(b"|", 1)[0].startswith(wanted))


UPSTREAMS = {  # ifIndex -> (ifOperStatus, SNR (0.1 dB), micro-reflections (dBc), unerrored, corrected, uncorrectable)
    900001: (1, 304, 0, 32_523_155_789, 9_871_051, 657_370),  # cloned from the Arris C4's ifIndex 721433
    900002: (1, 212, 12, 5_000_000_000, 3_000_000, 4_000_000),  # noisy: low SNR, uncorrectables growing
    900003: (2, 0, 0, 0, 0, 0),  # a logical channel not in use: every column 0
}
UPSTREAM_DELTAS = {900001: (600_000, 1_200, 6), 900002: (300_000, 90_000, 30_000)}  # codewords' growth over 60 s


def synthetic_upstreams(later: bool, *, wide: bool = True) -> str:
    """docsIfSignalQualityTable rows cloned from the Arris C4 recording (the same columns and
    types, other indexes and values). `wide`: with the 64-bit columns, whose 32-bit twins then
    carry the low 32 bits, as an agent serves them; else the 32-bit ones only. `later`: 60 s on."""
    lines = [f"1.3.6.1.2.1.1.3.0|67|{6100 if later else 100}"]
    for port, (oper, snr, micro, *codewords) in UPSTREAMS.items():
        grown = UPSTREAM_DELTAS.get(port, (0, 0, 0)) if later else (0, 0, 0)
        counts = [value + delta for value, delta in zip(codewords, grown, strict=True)]
        lines += [f"1.3.6.1.2.1.2.2.1.8.{port}|2|{oper}", f"{SIGQ}.5.{port}|2|{snr}", f"{SIGQ}.6.{port}|2|{micro}"]
        lines += [f"{SIGQ}.{2 + i}.{port}|65|{count % 2**32}" for i, count in enumerate(counts)]
        lines += [f"{SIGQ}.{8 + i}.{port}|70|{count}" for i, count in enumerate(counts) if wide]
    return "\n".join(sorted(lines, key=lambda l: tuple(int(x) for x in l.split("|")[0].split(".")))) + "\n"


CM_STATUS_DELTAS = {4: 2, 5: 3, 12: 40, 13: 4, 14: 1}  # docsIfCmStatusTable column -> growth over the hour after the recording


def synthetic_motorola_later() -> str:
    """The Motorola SB5101E recording an hour on: its docsIfCmStatusTable counters grown by
    CM_STATUS_DELTAS, sysUpTime 3600 s later, every other line as recorded."""
    out = []
    for line in (RECORDINGS / "motorola-cm.snmprec").read_text(encoding="utf-8").splitlines():
        oid, tag, value = line.split("|", 2)
        parts = oid.split(".")
        if oid == "1.3.6.1.2.1.1.3.0":
            value = str(int(value) + 360_000)
        elif oid.startswith(CM_STATUS + ".") and int(parts[12]) in CM_STATUS_DELTAS:
            value = str(int(value) + CM_STATUS_DELTAS[int(parts[12])])
        out.append(f"{oid}|{tag}|{value}")
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class Snmpsim:
    port: int
    data: Path


@pytest.fixture(scope="session")
def snmpsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snmpsim]:
    """One snmpsim for every recording test: community = file name."""
    root = tmp_path_factory.mktemp("snmpsim")
    data = root / "data"
    data.mkdir()
    for name in SERVED:
        shutil.copy(RECORDINGS / f"{name}.snmprec", data / f"{name}.snmprec")
    (data / "cmts-synthetic.snmprec").write_text(synthetic_cmts()[0])
    (data / "vdsl2-bands.snmprec").write_text(synthetic_vdsl2_bands())
    (data / "vdsl2-history-synthetic.snmprec").write_text(synthetic_vdsl2_history())
    (data / "shdsl-synthetic-t0.snmprec").write_text(synthetic_shdsl(later=False))
    (data / "shdsl-synthetic-t1.snmprec").write_text(synthetic_shdsl(later=True))
    (data / "mikrotik-sfp-synthetic.snmprec").write_text(synthetic_mikrotik_sfp())
    (data / "adsl-synthetic-t0.snmprec").write_text(synthetic_adsl(later=False))
    (data / "adsl-synthetic-t1.snmprec").write_text(synthetic_adsl(later=True))
    sigq = ("1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.2.2.1.8.", f"{SIGQ}.")
    (data / "arris-c4-sigq.snmprec").write_bytes(recording_slice("arris-c4", sigq))
    (data / "motorola-cm-synthetic-t1.snmprec").write_text(synthetic_motorola_later())
    for later in (False, True):
        (data / f"upstream-synthetic-t{int(later)}.snmprec").write_text(synthetic_upstreams(later))
        (data / f"upstream32-synthetic-t{int(later)}.snmprec").write_text(synthetic_upstreams(later, wide=False))
    process, port = start_snmpsim(data, root / "cache", "zxdsl")
    try:
        yield Snmpsim(port, data)
    finally:
        stop_process(process)


@dataclass(frozen=True)
class Snmpd:
    port: int


SNMPD_USERS = {  # user -> (auth protocol, priv protocol) as monitord names them
    "monitor": ("sha", "aes"),
    "mon256": ("sha256", "aes256"),
    "monmd5": ("md5", "des"),
}
SNMPD_AUTH_KEY = "authpass123"
SNMPD_PRIV_KEY = "privpass123"


@pytest.fixture(scope="session")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snmpd]:
    """net-snmp's agent with v2c community `public` and SNMPv3 authPriv users, and a receive buffer
    as large as net.core.rmem_max allows (up to 4 MiB)."""
    if shutil.which("snmpd") is None:
        pytest.fail("snmpd is not installed (apt-get install snmpd)")
    root = tmp_path_factory.mktemp("snmpd")
    port = free_udp_port()
    names = {"sha": "SHA", "sha256": "SHA-256", "md5": "MD5", "aes": "AES", "aes256": "AES-256", "des": "DES"}
    users = "\n".join(
        f'createUser {user} {names[a]} "{SNMPD_AUTH_KEY}" {names[p]} "{SNMPD_PRIV_KEY}"\nrouser {user} priv'
        for user, (a, p) in SNMPD_USERS.items()
    )
    (root / "snmpd.conf").write_text(
        f"agentAddress udp:127.0.0.1:{port}\nrocommunity public 127.0.0.1\n{users}\nsysName lab-dslam-1\n"
        "[snmp] serverRecvBuf 4194304\n"  # bursts of requests wait in its buffer, not dropped
    )
    process = subprocess.Popen(
        ["snmpd", "-f", "-C", "-c", str(root / "snmpd.conf"), "-Lf", str(root / "snmpd.log")],
        env={**os.environ, "MIBS": "", "SNMP_PERSISTENT_DIR": str(root / "persist")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_agents(process, {"snmpd": ("127.0.0.1", port, "public")}, 60, see=str(root / "snmpd.log"))
        yield Snmpd(port)
    finally:
        stop_process(process)


# --- a hostile agent ------------------------------------------------------------------------

Reply = tuple[int, int, list[tuple[Any, Any]]] | bytes | None
"""(error status, error index, varbinds), raw bytes to send as they are, or None for silence."""


@dataclass
class Request:
    kind: str  # "get", "next" or "bulk"
    oids: list[tuple[int, ...]]
    max_repetitions: int = 0
    request_id: int = 0


@dataclass
class BadAgent(asyncio.DatagramProtocol):
    """A v1/v2c agent whose answers come from `behave(request)`; it keeps every request it saw."""

    behave: Callable[[Request], Reply]
    seen: list[Request] = field(default_factory=list)
    transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        version = int(verdec.decode_message_version(data))
        module = api.PROTOCOL_MODULES[version]
        message, _ = decoder.decode(data, asn1Spec=module.Message())
        pdu = module.apiMessage.get_pdu(message)
        kind = {
            module.GetRequestPDU.tagSet: "get",
            module.GetNextRequestPDU.tagSet: "next",
        }.get(pdu.tagSet, "bulk")
        oids = [tuple(oid) for oid, _ in module.apiPDU.get_varbinds(pdu)]
        repetitions = int(api.v2c.apiBulkPDU.get_max_repetitions(pdu)) if kind == "bulk" else 0
        request = Request(kind, oids, repetitions, int(module.apiPDU.get_request_id(pdu)))
        self.seen.append(request)
        reply = self.behave(request)
        if reply is None:
            return
        if isinstance(reply, bytes):
            self.transport.sendto(reply, addr)
            return
        status, index, varbinds = reply
        response = module.apiMessage.get_response(message)
        answer = module.apiMessage.get_pdu(response)
        module.apiPDU.set_error_status(answer, status)
        module.apiPDU.set_error_index(answer, index)
        module.apiPDU.set_varbinds(answer, varbinds)
        self.transport.sendto(encoder.encode(response), addr)


async def start_bad_agent(behave: Callable[[Request], Reply]) -> tuple[BadAgent, int]:
    loop = asyncio.get_running_loop()
    transport, agent = await loop.create_datagram_endpoint(lambda: BadAgent(behave), local_addr=("127.0.0.1", 0))
    return agent, transport.get_extra_info("sockname")[1]


@pytest.fixture
async def client() -> AsyncIterator[SnmpClient]:
    """An SNMP client for the profile tests: snmpsim and snmpd answer late on a busy machine, and
    no test here waits for a timeout, so 2 s and no retry."""
    snmp = SnmpClient(timeout=2.0, retries=0)
    yield snmp
    snmp.close()
