"""A fast SNMP v2c responder for scale runs: many DSLAMs served from one precomputed table.

snmpsim answers about 3,500 values/s, too slow to load a poller at 100,000 lines; net-snmp's
`snmpd` (lab/fast_snmpd.py) serves only IF-MIB, from real interfaces. This responder serves the
lab DSLAM's whole record set (`lab.snmp.dslam_records`: SNMPv2-MIB system, IF-MIB, ADSL-LINE-MIB)
for `--ports` ports, sorted once and encoded once; only counters and sysUpTime are encoded per
reply (`start + rate * (now - since)`, as the lab's `ramp` values). Every DSLAM answers the same
rows: monitord matches adsl lines by port, so that is all a poller needs.

One UDP socket per device address (all on loopback, e.g. 127.20.x.y), so nftables can silence a
device or a region by address (lab/faults.py). Requests are decoded with probes/ber.py's own
parsers; GET, GETNEXT and GETBULK are answered (v2c semantics: noSuchInstance, endOfMibView).

    python -m lab.table_agent --port 16100 --ports 48 --community public 127.20.0.1 127.20.0.2 ...
    (or --addresses-from FILE, one address a line); prints "ready <n>" once every socket is bound.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from lab.snmp import AgentInfo, DslPort, LabError, dslam_records, free_udp_port, stop_process
from probes import ber

MAX_REPLY = 60_000  # octets: a GETBULK stops at the repetition that would pass this (RFC 3416 §4.2.3)


def unsigned(tag: int, number: int) -> bytes:
    """An application-class unsigned integer (Counter32/64, Gauge32, TimeTicks) as a TLV."""
    return ber.tlv(tag, number.to_bytes(number.bit_length() // 8 + 1, "big"))


@dataclass(frozen=True, slots=True)
class Ramp:
    tag: int
    start: int
    rate: float
    since: float

    def encode(self, now: float) -> bytes:
        bits = 32 if self.tag != ber.COUNTER64 else 64
        return unsigned(self.tag, int(self.start + self.rate * (now - self.since)) % 2**bits)


def encode_value(tag: str, text: str) -> bytes | Ramp:
    """One .snmprec value (lab/snmp.py's tags) as its encoded TLV, or a Ramp encoded per reply."""
    if tag.endswith(":ramp"):
        start, rate, since = text.split(",")
        return Ramp(int(tag.split(":")[0]), int(start), float(rate), float(since))
    if tag == "2":
        return ber.integer(int(text))
    if tag == "4":
        return ber.tlv(ber.OCTET_STRING, text.encode())
    if tag == "4x":
        return ber.tlv(ber.OCTET_STRING, bytes.fromhex(text))
    if tag == "6":
        return ber.tlv(ber.OID, ber.encode_oid(tuple(map(int, text.split(".")))))
    if tag in ("65", "66", "67", "70"):
        return unsigned(int(tag), int(text))
    raise ValueError(f"tag {tag} not served")


class Table:
    """One agent's MIB view: OIDs in order, each with its encoded name and value."""

    def __init__(self, records: dict[str, tuple[str, str]]) -> None:
        rows = sorted((tuple(map(int, oid.split("."))), value) for oid, value in records.items())
        self.oids = [oid for oid, _ in rows]
        self.names = [ber.tlv(ber.OID, ber.encode_oid(oid)) for oid in self.oids]
        self.values = [encode_value(*value) for _, value in rows]
        self.index = {oid: n for n, oid in enumerate(self.oids)}

    def varbind(self, n: int, now: float) -> bytes:
        value = self.values[n]
        encoded = value.encode(now) if isinstance(value, Ramp) else value
        return ber.tlv(ber.SEQUENCE, self.names[n] + encoded)

    def after(self, oid: ber.Oid) -> int:
        """Position of the first OID after `oid` (len(oids) past the end)."""
        return bisect.bisect_right(self.oids, oid)


def exception(oid: ber.Oid, tag: int) -> bytes:
    return ber.tlv(ber.SEQUENCE, ber.tlv(ber.OID, ber.encode_oid(oid)) + bytes((tag, 0)))


def answer(table: Table, pdu: int, oids: list[ber.Oid], non_repeaters: int, repetitions: int, now: float) -> list[bytes]:
    """The varbinds of the Response to a GET, GETNEXT or GETBULK."""
    if pdu == ber.GET:
        return [
            table.varbind(n, now) if (n := table.index.get(oid)) is not None else exception(oid, ber.NO_SUCH_INSTANCE)
            for oid in oids
        ]
    end = len(table.oids)
    out = []
    fixed = oids if pdu == ber.GET_NEXT else oids[:non_repeaters]
    for oid in fixed:
        n = table.after(oid)
        out.append(table.varbind(n, now) if n < end else exception(oid, ber.END_OF_MIB_VIEW))
    if pdu == ber.GET_NEXT:
        return out
    columns = oids[non_repeaters:]
    at = [table.after(oid) for oid in columns]
    size = sum(map(len, out))
    for _ in range(repetitions):
        row = [table.varbind(n, now) if n < end else exception(oid, ber.END_OF_MIB_VIEW) for oid, n in zip(columns, at)]
        size += sum(map(len, row))
        if size > MAX_REPLY and len(out) > len(fixed):
            break
        out += row
        if all(n >= end for n in at):
            break
        at = [n + 1 for n in at]
    return out


def reply(table: Table, community: bytes, data: bytes, now: float) -> bytes | None:
    """The Response datagram to one request, or None for anything not a v2c request with our community."""
    try:
        request = ber.decode_request(data)
    except ber.BerError:
        return None
    if request.version != 1 or request.community != community:
        return None
    varbinds = answer(table, request.pdu, list(request.oids), max(request.non_repeaters, 0), max(request.max_repetitions, 0), now)
    body = ber.integer(request.request_id) + ber.integer(0) + ber.integer(0) + ber.tlv(ber.SEQUENCE, b"".join(varbinds))
    return ber.tlv(ber.SEQUENCE, ber.integer(1) + ber.tlv(ber.OCTET_STRING, community) + ber.tlv(ber.RESPONSE, body))


class _Agent(asyncio.DatagramProtocol):
    def __init__(self, table: Table, community: bytes) -> None:
        self.table, self.community = table, community
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        out = reply(self.table, self.community, data, time.time())
        if out is not None and self.transport is not None:
            self.transport.sendto(out, addr)


def healthy_dslam(ports: int, boot: float) -> Table:
    """A DSLAM whose every port is in sync with good margins: the values the default rules call OK."""
    agent = AgentInfo("dslam", "Lab DSLAM (table_agent)", "1.3.6.1.4.1.8072.3.2.10", "lab", boot)
    rows = [
        DslPort(
            p,
            f"port-{p}",
            True,
            snr_margin_down_db=12.0,
            snr_margin_up_db=14.0,
            attenuation_down_db=30.0,
            attenuation_up_db=16.5,
            attainable_rate_down_bps=20_000_000,
            attainable_rate_up_bps=1_150_000,
            rate_down_bps=16_384_000,
            rate_up_bps=1_024_000,
            in_octets_per_s=2_000.0,
            out_octets_per_s=40_000.0,
        )
        for p in range(1, ports + 1)
    ]
    return Table(dslam_records(agent, rows, boot))


async def serve(addresses: list[str], port: int, ports: int, community: bytes) -> None:
    table = healthy_dslam(ports, time.time() - 1_000_000)
    loop = asyncio.get_running_loop()
    for address in addresses:
        await loop.create_datagram_endpoint(lambda: _Agent(table, community), local_addr=(address, port))
    print(f"ready {len(addresses)}", flush=True)
    await asyncio.Event().wait()


@dataclass(frozen=True)
class TableAgents:
    """Responder processes started by `start_table_agents`; all listen on `port`."""

    processes: list[subprocess.Popen[bytes]]
    port: int

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def stop(self) -> None:
        for process in self.processes:
            stop_process(process)


def start_table_agents(
    folder: Path, addresses: list[str], ports: int, processes: int = 1, community: str = "public", timeout: float = 60.0
) -> TableAgents:
    """`processes` responders sharing the addresses round-robin, on one free UDP port; returns once all are bound."""
    port = free_udp_port()
    started: list[subprocess.Popen[bytes]] = []
    try:
        for n in range(processes):
            listed = folder / f"table-agent-{n}.addresses"
            listed.write_text("\n".join(addresses[n::processes]) + "\n")
            command = [sys.executable, "-m", "lab.table_agent", "--port", str(port), "--ports", str(ports)]
            command += ["--community", community, "--addresses-from", str(listed)]
            started.append(subprocess.Popen(command, stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parent.parent))
        deadline = time.monotonic() + timeout
        for process in started:
            assert process.stdout is not None
            line = process.stdout.readline().decode()  # blocks until bound; a crash closes stdout
            if not line.startswith("ready") or time.monotonic() > deadline:
                raise LabError(f"table_agent did not start (said {line.strip()!r}, exit {process.poll()})")
    except BaseException:
        for process in started:
            stop_process(process)
        raise
    return TableAgents(started, port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ports", type=int, default=48, help="DSL ports per DSLAM")
    parser.add_argument("--community", default="public")
    parser.add_argument("--addresses-from", type=Path, help="a file of addresses, one a line")
    parser.add_argument("addresses", nargs="*")
    args = parser.parse_args()
    addresses = list(args.addresses)
    if args.addresses_from:
        addresses += args.addresses_from.read_text().split()
    if not all(a.startswith("127.") for a in addresses):
        sys.exit("table_agent serves loopback addresses (127.0.0.0/8) only")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, len(addresses) + 64)), hard))
    asyncio.run(serve(addresses, args.port, args.ports, args.community.encode()))


if __name__ == "__main__":
    main()
