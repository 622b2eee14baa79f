"""Simulated SNMP agents for the lab ISP: .snmprec data, live edits, and one snmpsim process;
plus the snmpsim start-up (`start_snmpsim`, `wait_for_agents`) that tests and benchmarks share.

Every value that the lab may change later is written FIXED-WIDTH, so an edit rewrites bytes in
place and no record moves; snmpsim notices the edit by the file's mtime (integer seconds, so the
mtime is moved forward explicitly). Counters and sysUpTime use the `ramp` variation module
(lab/snmpsim_ramp.py): `start + rate * (now - since)`, so a counter's rate can change live.

Column meanings follow RFC 2662 (ADSL-LINE-MIB), RFC 4546 (DOCS-IF-MIB) and RFC 2863 (IF-MIB).
In ADSL-LINE-MIB the ATU-R measures downstream and the ATU-C upstream (SNR margin, attenuation);
attainable and current rates are given by the transmitting end (ATU-C: downstream).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lab.isp import LabDevice, LabISP

SYS = "1.3.6.1.2.1.1"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
IF_NUMBER = "1.3.6.1.2.1.2.1.0"
IF_ENTRY = "1.3.6.1.2.1.2.2.1"
IFX_ENTRY = "1.3.6.1.2.1.31.1.1.1"
IF_OPER_STATUS = IF_ENTRY + ".8"
IF_LAST_CHANGE = IF_ENTRY + ".9"
ADSL = "1.3.6.1.2.1.10.94.1.1"
ADSL_LINE = ADSL + ".1.1"
ATUC_PHYS = ADSL + ".2.1"
ATUR_PHYS = ADSL + ".3.1"
ATUC_CHAN = ADSL + ".4.1"
ATUR_CHAN = ADSL + ".5.1"
ATUC_PERF = ADSL + ".6.1"
ATUR_PERF = ADSL + ".7.1"
ATUC_CHAN_PERF = ADSL + ".10.1"
ATUR_CHAN_PERF = ADSL + ".11.1"
CMTS_CM = "1.3.6.1.2.1.10.127.1.3.3.1"  # docsIfCmtsCmStatusEntry, index docsIfCmtsCmStatusIndex

CM_REGISTRATION_COMPLETE = 6  # docsIfCmtsCmStatusValue of an online modem
CM_OFFLINE = 1  # other(1): how CMTSs report a modem that has gone away
ADSL_NO_DEFECT = "80"  # adslAtu*CurrStatus BITS: noDefect(0)
ADSL_LOSS_OF_SIGNAL = "20"  # lossOfSignal(2)

INT_WIDTH = 6  # Integer32 in tenths: -99999..999999
GAUGE_WIDTH = 10  # Gauge32 / TimeTicks: up to 4294967295
COUNTER_START_WIDTH = 20

RAMP_SOURCE = Path(__file__).with_name("snmpsim_ramp.py")


class LabError(RuntimeError):
    """The simulated agents could not be started, or an edit does not fit the data file."""


# --- values, rendered fixed-width ------------------------------------------------------------

Value = tuple[str, str]  # (snmprec tag, value text)


def integer(value: int) -> Value:
    return "2", f"{value:0{INT_WIDTH}d}"


def gauge(value: int) -> Value:
    return "66", f"{value:0{GAUGE_WIDTH}d}"


def ticks(value: int) -> Value:
    return "67", f"{value:0{GAUGE_WIDTH}d}"


def text(value: str) -> Value:
    return ("4", value) if value.isascii() and value.isprintable() else ("4x", value.encode().hex())


def octets(value: bytes) -> Value:
    return "4x", value.hex()


def ramp(tag: str, start: int, rate: float, since: float) -> Value:
    """A counter (65, 70) or TimeTicks (67) answering start + rate * (now - since)."""
    return f"{tag}:ramp", f"{start:0{COUNTER_START_WIDTH}d},{rate:016.4f},{since:014.3f}"


def counter32(rate: float, since: float, start: int = 0) -> Value:
    return ramp("65", start, rate, since)


def counter64(rate: float, since: float, start: int = 0) -> Value:
    return ramp("70", start, rate, since)


def render(records: Mapping[str, Value]) -> str:
    """The .snmprec text: one `OID|TAG|VALUE` line per record, in OID order as snmpsim needs."""
    ordered = sorted(records.items(), key=lambda item: tuple(int(x) for x in item[0].split(".")))
    return "".join(f"{oid}|{tag}|{value}\n" for oid, (tag, value) in ordered)


# --- what the agents hold ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DslPort:
    """One DSLAM port in natural units; `ifindex` is the port number."""

    ifindex: int
    alias: str  # ifAlias: the subscriber id, "" for a free port
    up: bool
    snr_margin_down_db: float = 0.0
    snr_margin_up_db: float = 0.0
    attenuation_down_db: float = 0.0
    attenuation_up_db: float = 0.0
    attainable_rate_down_bps: int = 0
    attainable_rate_up_bps: int = 0
    rate_down_bps: int = 0
    rate_up_bps: int = 0
    in_octets_per_s: float = 0.0
    out_octets_per_s: float = 0.0
    resyncs: int = 0
    errored_seconds: int = 0


@dataclass(frozen=True, slots=True)
class CableModem:
    """One row of a CMTS's docsIfCmtsCmStatusTable."""

    index: int  # docsIfCmtsCmStatusIndex
    mac: str  # aa:bb:cc:dd:ee:ff
    address: str  # the modem's IPv4 address (a loopback address in the lab)
    upstream_ifindex: int
    status: int = CM_REGISTRATION_COMPLETE
    us_rx_power_dbmv: float = 0.0
    us_snr_db: float = 36.0


@dataclass(frozen=True, slots=True)
class AgentInfo:
    name: str
    descr: str
    object_id: str
    location: str
    boot: float  # epoch seconds of the last (simulated) boot


def _tenths(value: float) -> int:
    return round(value * 10)


def _system(agent: AgentInfo, interfaces: int) -> dict[str, Value]:
    return {
        f"{SYS}.1.0": text(agent.descr),
        f"{SYS}.2.0": ("6", agent.object_id),
        SYS_UPTIME: ramp("67", 0, 100.0, agent.boot),
        f"{SYS}.4.0": text("noc@isp.example"),
        f"{SYS}.5.0": text(agent.name),
        f"{SYS}.6.0": text(agent.location),
        IF_NUMBER: integer(interfaces),
    }


def _interface(
    index: int,
    descr: str,
    if_type: int,
    up: bool,
    speed: int,
    in_rate: float,
    out_rate: float,
    since: float,
    alias: str = "",
) -> dict[str, Value]:
    i = str(index)
    return {
        f"{IF_ENTRY}.1.{i}": integer(index),
        f"{IF_ENTRY}.2.{i}": text(descr),
        f"{IF_ENTRY}.3.{i}": integer(if_type),
        f"{IF_ENTRY}.5.{i}": gauge(speed),
        f"{IF_ENTRY}.7.{i}": integer(1),
        f"{IF_ENTRY}.8.{i}": integer(1 if up else 2),
        f"{IF_ENTRY}.9.{i}": ticks(0),
        f"{IF_ENTRY}.10.{i}": counter32(in_rate, since),
        f"{IF_ENTRY}.14.{i}": counter32(0.0, since),
        f"{IF_ENTRY}.16.{i}": counter32(out_rate, since),
        f"{IF_ENTRY}.20.{i}": counter32(0.0, since),
        f"{IFX_ENTRY}.1.{i}": text(descr),
        f"{IFX_ENTRY}.6.{i}": counter64(in_rate, since),
        f"{IFX_ENTRY}.10.{i}": counter64(out_rate, since),
        f"{IFX_ENTRY}.15.{i}": gauge(speed // 1_000_000),
        f"{IFX_ENTRY}.18.{i}": text(alias),
    }


def dslam_records(agent: AgentInfo, ports: list[DslPort], since: float) -> dict[str, Value]:
    """SNMPv2-MIB system, IF-MIB (one adsl(94) row per port plus an uplink) and ADSL-LINE-MIB."""
    uplink = 1000 + 1
    records = _system(agent, len(ports) + 1)
    records |= _interface(uplink, "ge-0/0/1 uplink", 6, True, 1_000_000_000, 4e6, 2.5e7, since)
    for p in ports:
        i = str(p.ifindex)
        records |= _interface(
            p.ifindex,
            f"adsl-1/1/{p.ifindex}",
            94,
            p.up,
            p.rate_down_bps,
            p.in_octets_per_s,
            p.out_octets_per_s,
            since,
            p.alias,
        )
        status = ADSL_NO_DEFECT if p.up else ADSL_LOSS_OF_SIGNAL
        records |= {
            f"{ADSL_LINE}.1.{i}": integer(2),  # adslLineCoding dmt
            f"{ADSL_LINE}.2.{i}": integer(3),  # adslLineType interleavedOnly
            f"{ADSL_LINE}.4.{i}": text("ADSL2PLUS-AUTO"),
            f"{ATUC_PHYS}.4.{i}": integer(_tenths(p.snr_margin_up_db)),
            f"{ATUC_PHYS}.5.{i}": gauge(_tenths(p.attenuation_up_db)),
            f"{ATUC_PHYS}.6.{i}": ("4x", status),
            f"{ATUC_PHYS}.7.{i}": integer(195 if p.up else 0),
            f"{ATUC_PHYS}.8.{i}": gauge(p.attainable_rate_down_bps),
            f"{ATUR_PHYS}.4.{i}": integer(_tenths(p.snr_margin_down_db)),
            f"{ATUR_PHYS}.5.{i}": gauge(_tenths(p.attenuation_down_db)),
            f"{ATUR_PHYS}.6.{i}": ("4x", status),
            f"{ATUR_PHYS}.7.{i}": integer(124 if p.up else 0),
            f"{ATUR_PHYS}.8.{i}": gauge(p.attainable_rate_up_bps),
            f"{ATUC_CHAN}.1.{i}": gauge(8),
            f"{ATUC_CHAN}.2.{i}": gauge(p.rate_down_bps),
            f"{ATUC_CHAN}.3.{i}": gauge(p.rate_down_bps),
            f"{ATUC_CHAN}.4.{i}": gauge(0),
            f"{ATUR_CHAN}.1.{i}": gauge(8),
            f"{ATUR_CHAN}.2.{i}": gauge(p.rate_up_bps),
            f"{ATUR_CHAN}.3.{i}": gauge(p.rate_up_bps),
            f"{ATUR_CHAN}.4.{i}": gauge(0),
        }
        records |= {f"{ATUC_PERF}.{c}.{i}": counter32(0.0, since) for c in (1, 2, 3, 4)}
        records[f"{ATUC_PERF}.5.{i}"] = counter32(0.0, since, p.errored_seconds)
        records[f"{ATUC_PERF}.6.{i}"] = counter32(0.0, since, p.resyncs)
        records |= {f"{ATUR_PERF}.{c}.{i}": counter32(0.0, since) for c in (1, 2, 3, 4)}
        blocks = p.rate_down_bps / 8 / 60 if p.up else 0.0
        for table in (ATUC_CHAN_PERF, ATUR_CHAN_PERF):
            records |= {
                f"{table}.1.{i}": counter32(blocks, since),
                f"{table}.2.{i}": counter32(blocks, since),
                f"{table}.3.{i}": counter32(0.0, since),
                f"{table}.4.{i}": counter32(0.0, since),
            }
    return records


def cmts_records(agent: AgentInfo, upstreams: int, modems: list[CableModem], since: float) -> dict[str, Value]:
    """SNMPv2-MIB system, IF-MIB for the RF interfaces and docsIfCmtsCmStatusTable."""
    records = _system(agent, 2 + upstreams)
    records |= _interface(1, "cable-mac 1", 127, True, 0, 2e7, 8e7, since)
    records |= _interface(2, "cable-downstream 1/0", 128, True, 38_000_000, 0.0, 8e7, since)
    for u in range(upstreams):
        records |= _interface(3 + u, f"cable-upstream 1/{u}", 129, True, 10_000_000, 5e6, 0.0, since)
    for m in modems:
        i = str(m.index)
        online = m.status == CM_REGISTRATION_COMPLETE
        records |= {
            f"{CMTS_CM}.2.{i}": octets(bytes.fromhex(m.mac.replace(":", ""))),
            f"{CMTS_CM}.3.{i}": ("64", m.address),
            f"{CMTS_CM}.4.{i}": integer(2),
            f"{CMTS_CM}.5.{i}": integer(m.upstream_ifindex),
            f"{CMTS_CM}.6.{i}": integer(_tenths(m.us_rx_power_dbmv)),
            f"{CMTS_CM}.7.{i}": gauge(1234),
            f"{CMTS_CM}.9.{i}": integer(m.status),
            f"{CMTS_CM}.10.{i}": counter32(900.0 if online else 0.0, since),
            f"{CMTS_CM}.11.{i}": counter32(0.0, since),
            f"{CMTS_CM}.12.{i}": counter32(0.0, since),
            f"{CMTS_CM}.13.{i}": integer(_tenths(m.us_snr_db)),
            f"{CMTS_CM}.14.{i}": integer(0),
            f"{CMTS_CM}.20.{i}": integer(1),  # InetAddressType ipv4
            f"{CMTS_CM}.21.{i}": octets(bytes(int(x) for x in m.address.split("."))),
        }
    return records


# --- metric name -> column, for live edits --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    """Where a contract metric lives; `rate` columns are counters whose rate per second is set."""

    oids: tuple[str, ...]
    scale: float = 1.0
    rate: bool = False


DSL_COLUMNS: Mapping[str, Column] = {
    "snr_margin_down_db": Column((ATUR_PHYS + ".4",), 10),
    "snr_margin_up_db": Column((ATUC_PHYS + ".4",), 10),
    "attenuation_down_db": Column((ATUR_PHYS + ".5",), 10),
    "attenuation_up_db": Column((ATUC_PHYS + ".5",), 10),
    "attainable_rate_down_bps": Column((ATUC_PHYS + ".8",)),
    "attainable_rate_up_bps": Column((ATUR_PHYS + ".8",)),
    "rate_down_bps": Column((ATUC_CHAN + ".2",)),
    "rate_up_bps": Column((ATUR_CHAN + ".2",)),
    "resyncs_per_s": Column((ATUC_PERF + ".6",), rate=True),
    "errored_seconds_per_s": Column((ATUC_PERF + ".5",), rate=True),
    "corrected_blocks_per_s": Column((ATUC_CHAN_PERF + ".3",), rate=True),
    "uncorrectable_blocks_per_s": Column((ATUC_CHAN_PERF + ".4",), rate=True),
    "in_errors_per_s": Column((IF_ENTRY + ".14",), rate=True),
    "out_errors_per_s": Column((IF_ENTRY + ".20",), rate=True),
    "in_octets_per_s": Column((IF_ENTRY + ".10", IFX_ENTRY + ".6"), rate=True),
    "out_octets_per_s": Column((IF_ENTRY + ".16", IFX_ENTRY + ".10"), rate=True),
}

CM_COLUMNS: Mapping[str, Column] = {
    "cm_status": Column((CMTS_CM + ".9",)),
    "us_rx_power_dbmv": Column((CMTS_CM + ".6",), 10),
    "us_snr_db": Column((CMTS_CM + ".13",), 10),
    "corrected_codewords_per_s": Column((CMTS_CM + ".11",), rate=True),
    "uncorrectable_codewords_per_s": Column((CMTS_CM + ".12",), rate=True),
}


# --- editing a data file in place -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Field:
    offset: int  # of the value's first byte
    tag: str
    value: str


def _scan(data: bytes) -> dict[str, _Field]:
    fields: dict[str, _Field] = {}
    offset = 0
    for line in data.splitlines(keepends=True):
        oid, tag, value = line.decode().rstrip("\n").split("|", 2)
        fields[oid] = _Field(offset + len(oid) + len(tag) + 2, tag, value)
        offset += len(line)
    return fields


class DataFile:
    """One agent's .snmprec, changed by rewriting fixed-width values where they stand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fields = _scan(path.read_bytes())
        self._mtime = int(path.stat().st_mtime)

    def read(self, oid: str) -> Value:
        field = self._fields[oid]
        return field.tag, field.value

    def write(self, changes: Mapping[str, str]) -> None:
        """Replace the value text of each OID (same width) and move the mtime on."""
        for oid, new in changes.items():
            old = self._fields[oid]
            if len(new) != len(old.value):
                raise LabError(f"{oid}: {new!r} does not fit the {len(old.value)}-byte field")
            self._fields[oid] = _Field(old.offset, old.tag, new)
        fd = os.open(self.path, os.O_WRONLY)
        try:
            for oid in changes:
                field = self._fields[oid]
                os.pwrite(fd, field.value.encode(), field.offset)
        finally:
            os.close(fd)
        self._touch()

    def restore(self, data: bytes) -> None:
        """Put back an earlier content of the same layout, in place (see SnmpLab.reset)."""
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(fd, data, 0)
        finally:
            os.close(fd)
        self._fields = _scan(data)
        self._touch()

    def ramps(self) -> Iterator[str]:
        return (oid for oid, f in self._fields.items() if f.tag.endswith(":ramp"))

    def _touch(self) -> None:
        """snmpsim reloads a data file when its mtime changes in whole seconds, and the write
        itself may leave the second it last saw: step past the last mtime we set."""
        when = max(time.time(), self._mtime + 1.0)
        os.utime(self.path, (when, when))
        self._mtime = int(when)


def _set_number(field: Value, value: float) -> str:
    tag, old = field
    if tag.endswith(":ramp"):
        _, rate, since = old.split(",")
        return ramp(tag.split(":")[0], int(value), float(rate), float(since))[1]
    return f"{int(value):0{len(old)}d}"


def _set_rate(field: Value, rate: float, now: float) -> str:
    tag, old = field
    if not tag.endswith(":ramp") or rate < 0:
        raise LabError(f"cannot give {tag}|{old} the rate {rate}")
    start, old_rate, since = old.split(",")
    current = int(start) + int(float(old_rate) * max(0.0, now - float(since)))
    return ramp(tag.split(":")[0], current, rate, now)[1]


# --- the agents ----------------------------------------------------------------------------


def responder_executable() -> str:
    """snmpsim's responder from the running venv first, so tests need no PATH set-up."""
    beside = Path(sys.executable).with_name("snmpsim-command-responder")
    if beside.exists():
        return str(beside)
    found = shutil.which("snmpsim-command-responder")
    if not found:
        raise LabError("snmpsim-command-responder not found (pip install snmpsim pysmi)")
    return found


def _no_mibs() -> dict[str, str]:
    """The environment for net-snmp and snmpsim: numeric OIDs only, no MIB loaded."""
    return {**os.environ, "MIBS": ""}


def free_udp_port(address: str = "127.0.0.1") -> int:
    """A UDP port the OS says is free on `address` (for agents that cannot report their own)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


def snmpget(device: LabDevice, oid: str, timeout: float = 1.0) -> str | None:
    """One GET with net-snmp's CLI, as an outside observer; the value text, or None on silence."""
    done = subprocess.run(
        [
            "snmpget",
            "-v2c",
            "-c",
            device.community or "",
            "-t",
            str(timeout),
            "-r",
            "0",
            "-On",
            "-Oqvt",
            f"{device.address}:{device.port}",
            oid,
        ],
        capture_output=True,
        text=True,
        env=_no_mibs(),
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def wait_for_agents(
    process: subprocess.Popen[bytes], agents: Mapping[str, tuple[str, int, str]], timeout: float, see: str = ""
) -> None:
    """Return once every agent (name -> address, port, v2c community) answers a GET of sysUpTime.

    Raises LabError when `process` (the agents' server) exits or `timeout` passes first; `see`
    names where to look then (a log file).
    """
    deadline = time.monotonic() + timeout
    hint = f"; see {see}" if see else ""
    waiting = dict(agents)
    while waiting:
        if process.poll() is not None:
            raise LabError(f"agent process exited with {process.returncode}{hint}")
        if time.monotonic() > deadline:
            raise LabError(f"agents not answering after {timeout:g} s: {', '.join(sorted(waiting))}{hint}")
        probes = {
            name: subprocess.Popen(
                ["snmpget", "-v2c", "-c", community, "-t", "0.5", "-r", "0", "-On", f"{address}:{port}", SYS_UPTIME],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=_no_mibs(),
            )
            for name, (address, port, community) in waiting.items()
        }
        for name, probe in probes.items():
            if probe.wait() == 0:
                del waiting[name]
        if waiting:
            time.sleep(0.2)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it is still there after 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _spawn_responder(options: list[str], out: Path | None = None) -> subprocess.Popen[bytes]:
    """snmpsim's responder with `options`; its output goes to `out`, or nowhere."""
    with open(out or os.devnull, "wb") as sink:
        return subprocess.Popen(
            [responder_executable(), *options],
            env={**_no_mibs(), "SNMPSIM_ALLOW_ROOT": "true"},
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def start_snmpsim(
    data_dir: Path,
    cache_dir: Path,
    community: str,
    *,
    address: str = "127.0.0.1",
    also: Sequence[str] = (),
    ready_timeout: float = 60.0,
) -> tuple[subprocess.Popen[bytes], int]:
    """One snmpsim serving every `<community>.snmprec` of `data_dir` on a free UDP port of
    `address` (and on the same port of the addresses in `also`, for inventories whose devices
    need addresses of their own), the community choosing the file; returns (process, port) once
    `community` answers on each.

    For recordings and benchmarks; the lab ISP (`SnmpLab`) runs one engine per device address.
    """
    port = free_udp_port(address)
    process = _spawn_responder(
        [
            f"--data-dir={data_dir}",
            f"--cache-dir={cache_dir}",
            *(f"--agent-udpv4-endpoint={where}:{port}" for where in (address, *also)),
            "--logging-method=null",
        ]
    )
    try:
        wait_for_agents(process, {where: (where, port, community) for where in (address, *also)}, ready_timeout)
    except BaseException:
        stop_process(process)
        raise
    return process, port


class SnmpLab:
    """One snmpsim process serving one SNMP engine per simulated device address."""

    def __init__(self, isp: LabISP, *, ready_timeout: float = 60.0) -> None:
        self.isp = isp
        self.ready_timeout = ready_timeout
        self.work_dir = isp.data_dir / "run"
        self.log_file = self.work_dir / "snmpsim.log"
        self.startup_seconds: float | None = None
        self._files = {d.id: DataFile(d.data_file) for d in isp.devices.values() if d.data_file is not None}
        self._pristine = {i: f.path.read_bytes() for i, f in self._files.items()}
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> SnmpLab:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self._process is not None:
            return
        if any(c.isspace() for c in str(self.isp.data_dir)):
            raise LabError(f"snmpsim's args file cannot hold paths with spaces: {self.isp.data_dir}")
        modules = self.work_dir / "variation"
        modules.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(RAMP_SOURCE, modules / "ramp.py")
        devices = {i: self.isp.devices[i] for i in self._files}
        args = self.work_dir / "engines.args"
        args.write_text(
            "".join(
                f"--v3-engine-id=auto --data-dir={self._files[i].path.parent} " f"--agent-udpv4-endpoint={d.address}:{d.port}\n"
                for i, d in devices.items()
            )
        )
        began = time.monotonic()
        self._process = _spawn_responder(
            [
                f"--args-from-file={args}",
                f"--cache-dir={self.work_dir / 'cache'}",
                f"--variation-modules-dir={modules}",
                f"--logging-method=file:{self.log_file}",
                "--log-level=error",
            ],
            self.work_dir / "snmpsim.out",
        )
        try:
            wait_for_agents(
                self._process,
                {i: (d.address, d.port, d.community or "") for i, d in devices.items()},
                self.ready_timeout,
                see=str(self.work_dir / "snmpsim.out"),
            )
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_process(process)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # --- live changes (work whether or not the process runs) ---------------------------------

    def read(self, device_id: str, oid: str) -> Value:
        return self._files[device_id].read(oid)

    def set_value(self, device_id: str, oid: str, value: int) -> None:
        """Set a plain integer (or a counter's current value, keeping its rate)."""
        data = self._files[device_id]
        data.write({oid: _set_number(data.read(oid), value)})

    def set_rate(self, device_id: str, oid: str, per_second: float) -> None:
        """Make a counter grow by `per_second` from now on, continuing from its current value."""
        data = self._files[device_id]
        data.write({oid: _set_rate(data.read(oid), per_second, time.time())})

    def set_line_metric(self, line_id: str, metric: str, value: float) -> None:
        """Set a contract metric of one line, e.g. ("snr_margin_down_db", 4.5), in natural units.

        Counter metrics (`*_per_s`) set the counter's rate; the probe will compute the same rate.
        """
        line = self.isp.lines[line_id]
        columns = CM_COLUMNS if line.mac else DSL_COLUMNS
        if metric not in columns:
            raise LabError(f"{line_id}: no column for {metric!r}; known: {', '.join(columns)}")
        column, data, now = columns[metric], self._files[line.device], time.time()
        oids = [f"{oid}.{line.row}" for oid in column.oids]
        if column.rate:
            data.write({oid: _set_rate(data.read(oid), value, now) for oid in oids})
        else:
            data.write({oid: _set_number(data.read(oid), round(value * column.scale)) for oid in oids})

    def set_oper_status(self, line_id: str, up: bool) -> None:
        """A DSL port goes down or up (ifOperStatus, ifLastChange, ATU status); a cable modem
        goes offline or registers again (docsIfCmtsCmStatusValue)."""
        line = self.isp.lines[line_id]
        data, row = self._files[line.device], line.row
        if line.mac:
            data.write({f"{CMTS_CM}.9.{row}": integer(CM_REGISTRATION_COMPLETE if up else CM_OFFLINE)[1]})
            return
        _, uptime = data.read(SYS_UPTIME)
        _, _, boot = uptime.split(",")
        defects = ADSL_NO_DEFECT if up else ADSL_LOSS_OF_SIGNAL
        data.write(
            {
                f"{IF_OPER_STATUS}.{row}": integer(1 if up else 2)[1],
                f"{IF_LAST_CHANGE}.{row}": ticks(int((time.time() - float(boot)) * 100) % 2**32)[1],
                f"{ATUC_PHYS}.6.{row}": defects,
                f"{ATUR_PHYS}.6.{row}": defects,
            }
        )

    def reboot(self, device_id: str) -> None:
        """sysUpTime and every counter of the device start again from zero, keeping their rates."""
        data, now = self._files[device_id], time.time()
        changes = {}
        for oid in data.ramps():
            tag, old = data.read(oid)
            _, rate, _ = old.split(",")
            changes[oid] = ramp(tag.split(":")[0], 0, float(rate), now)[1]
        data.write(changes)

    def reset(self) -> None:
        """Every agent back to the data it was generated with."""
        for device_id, data in self._files.items():
            data.restore(self._pristine[device_id])
