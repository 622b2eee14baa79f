"""ICMP echo (IPv4 and IPv6) for thousands of targets over one socket per address family.

Every echo request goes out through the same socket of its family, and a reply is matched by its
sequence to the echo in flight there, then taken only if it comes from that echo's target and
carries our identifier and an 8-byte token in the payload, so replies meant for other programs
(or forged, or garbled) are ignored. A raw socket (CAP_NET_RAW) is preferred: it also receives
the ICMP errors routers send back (destination unreachable, time exceeded). A raw socket would
receive every echo reply to the host too; a kernel filter keeps those with other identifiers off
it (`_only_ours`), so pollers sharing a box do not each read all the others' replies. Without the
capability the unprivileged ping socket (SOCK_DGRAM, `net.ipv4.ping_group_range`) is used; the
kernel then rewrites the identifier and filters replies for us.

On the raw IPv4 socket, the daemon's case, the per-echo work is in C (probes/_icmp.c): a run of
a round's IPv4 targets goes out by `sendmmsg` (16 echoes a call, the packet, checksum and slot
filled in C), replies are read by `recvmmsg` and parsed, checked and settled in place, and the
echoes in flight are C slots timed out by one scan. ICMP errors come back to Python to settle;
IPv6 and the ping socket stay here, built and parsed with `struct` (scapy: 0.6-0.9 ms to build
one echo request, `struct` 0.15 µs, `bench/icmp_sweep.py --scapy`). `parse_reply` is the
reference the C parser is tested against (tests/test_icmp_c.py).

Sending is paced by a window: at most as many echoes wait for an answer as the receive buffer
holds replies, since a reply that arrives to a full buffer is lost (the kernel's default 212,992
bytes hold 256 echo replies, 832 bytes each in its accounting). An echo to a silent address holds its place in the window
until its timeout, so the window's size is what a silent region costs: with the 200 echoes it
had before, 12,789 silent addresses x 3 echoes x 1 s took 192 s of window every 30 s, and ICMP
jobs of every region queued behind them past `polling.job_timeout`. The window is therefore sized
from the buffer the kernel granted (`window_for`), about 3,800 echoes with 8 MiB, and
`max_in_flight` only lowers it. A send that the network refuses (EPERM from a firewall,
ENOBUFS, EHOSTUNREACH) marks that target unreachable; it never raises out of `ping()` or `sweep()`.
At most `_SEND_BATCH` echoes go out per turn of the event loop, so filling a large window does not
hold the loop (a send is about 8 µs of kernel time on loopback, where the kernel answers it in
the same call).

Longer than 500 lines because the hot path is written out flat, for its cost per echo: a sweep's
targets and replies live in flat arrays that probes/_icmp.c reads and writes, and the Python
path (IPv6, ping socket) and the C path share one pump and one set of slots. Before (a `_Tally`
per target, a dict of echoes in flight) the daemon's ICMP round over 1,020,866 addresses x 3
echoes took 44.7 s of user CPU, flat Python 22.7 s. Over 204,167 addresses x 3 echoes the C
path takes 1.1-2.0 s of user CPU where flat Python took 3.5-5.0 s, and 4.3-5.6 s of system CPU
where it took 5.3-6.4 (`bench/icmp_sweep.py --daemon-lines`, docs/benchmarks.md). The user time
left is mostly per address (sweep set-up, results, the daemon's samples), the rest the kernel's
(sending, and on loopback answering).
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import math
import os
import socket
import struct
from array import array
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from time import monotonic, time
from typing import NamedTuple

from monitord.model import NodeRef, Outcome, Sample
from probes import _icmp
from probes.udp import DATAGRAM_OVERHEAD

log = logging.getLogger("monitord.icmp")

RCVBUF = 4 << 20
REPLY_COST = DATAGRAM_OVERHEAD + 2 * 36
"""Receive-buffer bytes one reply may take: a raw IPv4 echo reply is 36 bytes with its IP header
(measured: an 8 MiB buffer held 10,083 of them on loopback, 832 bytes each)."""
_SO_RCVBUFFORCE = 33
_SO_ATTACH_FILTER = 26
_BPF = struct.Struct("HBBI")  # struct sock_filter: code, jump if true, jump if false, k
_SOL_RAW = 255
_ICMP_FILTER = 1
_ICMP6_FILTER = 1
_HEADER = struct.Struct("!BBHHH")
_STAMP = struct.Struct("@ll")  # struct timespec: the kernel's stamp of a datagram's arrival (SCM_TIMESTAMPNS)
_STAMP_SPACE = socket.CMSG_SPACE(_STAMP.size)
_REAP_SLACK = 0.005  # timeouts are coalesced to this resolution (seconds)
_RECV_BATCH = 512  # replies read per wake-up, so one busy socket cannot starve the loop
_SEND_BATCH = 512  # echoes sent per turn of the loop: a full window is thousands of sends

_FAMILIES = {socket.AF_INET: "IPv4", socket.AF_INET6: "IPv6"}
_PROTO = {socket.AF_INET: socket.IPPROTO_ICMP, socket.AF_INET6: socket.IPPROTO_ICMPV6}
_REQUEST = {socket.AF_INET: 8, socket.AF_INET6: 128}
_REPLY = {socket.AF_INET: 0, socket.AF_INET6: 129}
_ERRORS = {
    socket.AF_INET: {3: "destination unreachable", 11: "time exceeded"},
    socket.AF_INET6: {1: "destination unreachable", 3: "time exceeded"},
}


class PingResult(NamedTuple):
    """One target's sweep: a NamedTuple, built once per address per sweep at 40-50% of a frozen
    dataclass's cost."""

    address: str
    sent: int
    received: int
    rtt_ms: tuple[float, ...]
    error: str | None = None  # why the target is unreachable (send refused, ICMP error)

    @property
    def loss(self) -> float:
        return 1.0 - self.received / self.sent if self.sent else 1.0


def to_sample(result: PingResult, target: NodeRef, now: float) -> Sample:
    """Any reply means the target is up; an error without replies means the network said no."""
    if result.received:
        values = {"rtt_ms": _median(result.rtt_ms), "loss": result.loss}
        return Sample(target, "icmp", now, Outcome.OK, values)
    if result.error:
        return Sample(target, "icmp", now, Outcome.UNREACHABLE, {"loss": 1.0}, result.error)
    detail = f"no reply to {result.sent} echo requests"
    return Sample(target, "icmp", now, Outcome.TIMEOUT, {"loss": 1.0}, detail)


def checksum_ok(data: bytes) -> bool:
    """The Internet checksum holds when the big-endian value of the data is 0 modulo 0xFFFF.

    (2**16 is 1 modulo 0xFFFF, so the number is congruent to the sum of its 16-bit words.)
    """
    if len(data) % 2:
        data += b"\0"
    return int.from_bytes(data, "big") % 0xFFFF == 0


def parse_reply(
    data: bytes, family: socket.AddressFamily, raw: bool, ident: int, token: bytes
) -> tuple[int, str | None, str | None] | None:
    """(sequence, original destination if an ICMP error, error) for a packet of ours, else None.

    Raw IPv4 sockets deliver the IP header and we verify the ICMP checksum; on the other sockets
    the kernel has verified it (RFC 3542 for ICMPv6) and strips the IP header.
    """
    if raw and family == socket.AF_INET:
        data = data[(data[0] & 0x0F) * 4 :]
        if not checksum_ok(data):
            return None
    if len(data) < 16:
        return None
    kind, code, _, rid, seq = _HEADER.unpack_from(data)
    if kind == _REPLY[family]:
        if data[8:16] != token or (raw and rid != ident):
            return None
        return seq, None, None
    error = _ERRORS[family].get(kind)
    if error is None or not raw:
        return None
    inner = data[8:]
    offset = (inner[0] & 0x0F) * 4 if family == socket.AF_INET else 40
    if offset < 20 or len(inner) < offset + 8:  # the original header and its ICMP header
        return None
    if family == socket.AF_INET:
        proto, dst = inner[9], inner[16:20]
    else:
        proto, dst = inner[6], inner[24:40]
    if proto != _PROTO[family]:
        return None
    okind, _, _, oid, oseq = _HEADER.unpack_from(inner, offset)
    if okind != _REQUEST[family] or oid != ident:
        return None
    return oseq, socket.inet_ntop(family, dst), f"{error} (code {code})"


def _describe(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return f"{name}: {exc.strerror}"


def _normalize(address: str) -> tuple[socket.AddressFamily, str, bytes]:
    """(family, canonical text, packed): a valid IPv4 text is already canonical (inet_pton takes
    no leading zeros nor short forms), so only IPv6 goes back through inet_ntop."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    packed = socket.inet_pton(family, address)
    return family, address if family == socket.AF_INET else socket.inet_ntop(family, packed), packed


def _median(values: tuple[float, ...]) -> float:
    """statistics.median's value at a fraction of its cost (it runs once per target per sweep)."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


_Target = tuple[str, socket.socket, bool]
"""(destination as canonical text, its family's socket, IPv4?)."""


class _Sweep:
    """One sweep's targets and what they have seen, in flat arrays (echo = target x count +
    round): nothing is allocated per echo, and per target only its entry in `targets`. `packed`
    (4 octets per target) and `state` are what probes/_icmp.c reads: a raw IPv4 target's address,
    and whether a target has an error (`_icmp.FAILED`) or is Python's to send (`_icmp.PYTHON`)."""

    __slots__ = ("count", "done", "errors", "left", "packed", "rtts", "sent", "state", "targets", "timeout")

    def __init__(
        self, targets: list[_Target], packed: bytes, state: bytearray, count: int, timeout: float, done: asyncio.Future[None]
    ) -> None:
        self.targets = targets
        self.packed = packed
        self.state = state
        self.count = count
        self.timeout = timeout
        self.sent = array("I", bytes(4 * len(targets)))  # echoes sent, per target
        self.rtts = array("d", [math.nan]) * (len(targets) * count)  # ms per echo, NaN: no reply
        self.errors: dict[int, str] = {}  # target -> why it is unreachable (send refused, ICMP error)
        self.left = len(targets) * count  # echoes not yet answered, timed out or given up
        self.done = done
        if self.left <= 0:
            done.set_result(None)

    def fail(self, target: int, error: str) -> None:
        """The target is unreachable (send refused, ICMP error): nothing more is sent to it."""
        self.errors.setdefault(target, error)
        self.state[target] |= _icmp.FAILED

    def finish(self, echoes: int = 1) -> None:
        self.left -= echoes
        if self.left <= 0 and not self.done.done():
            self.done.set_result(None)

    def results(self, addresses: list[str]) -> dict[str, PingResult]:
        count, rtts, sent, errors = self.count, self.rtts, self.sent, self.errors
        results = {}
        for target, address in enumerate(addresses):
            answered = tuple([rtt for rtt in rtts[target * count : target * count + count] if rtt == rtt])
            results[address] = PingResult(address, sent[target], len(answered), answered, errors.get(target))
        return results


_PACKET = struct.Struct("!BBHHH8s")
_SEQUENCES = 1 << 16
_NO_ADDRESS = bytes(4)


@dataclass(frozen=True, slots=True)
class _Socket:
    sock: socket.socket
    raw: bool


def window_for(receive_buffer: int) -> int:
    """Echoes that may wait for a reply at once: half the buffer's replies, because a raw socket
    also receives the ICMP errors meant for every other program on the host, and the replies of
    one that drew the same identifier."""
    return max(1, receive_buffer // (2 * REPLY_COST))


def _open_socket(family: socket.AddressFamily, raw: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_RAW if raw else socket.SOCK_DGRAM, _PROTO[family])
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, _icmp.SO_TIMESTAMPNS, 1)  # replies timed on arrival (`_arrival`)
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, RCVBUF)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    if raw and family == socket.AF_INET:
        wanted = 1 << 0 | 1 << 3 | 1 << 11
        sock.setsockopt(_SOL_RAW, _ICMP_FILTER, struct.pack("I", ~wanted & 0xFFFFFFFF))
    elif raw:
        blocked = [0xFFFFFFFF] * 8
        for kind in (1, 3, 129):
            blocked[kind >> 5] &= ~(1 << (kind & 31))
        sock.setsockopt(socket.IPPROTO_ICMPV6, _ICMP6_FILTER, struct.pack("8I", *blocked))
    return sock


def _arrival(ancillary: list[tuple[int, int, bytes]], wall_ahead: float, read: float) -> float:
    """When a datagram arrived, on the monotonic clock: the kernel's stamp (wall clock) moved by
    `wall_ahead` (the wall clock's lead as the read began), at most `read`, the time it was read.
    A reply is timed by its arrival, not by when the event loop got round to reading it: a loop
    busy for 170 ms made loopback echoes look 170 ms slow (as probes/_icmp.c's `arrival`)."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == _icmp.SO_TIMESTAMPNS and len(data) >= _STAMP.size:
            sec, nsec = _STAMP.unpack_from(data)
            return min(sec + nsec * 1e-9 - wall_ahead, read)
    return read


def _only_ours(sock: socket.socket, family: socket.AddressFamily, ident: int) -> None:
    """Have the kernel drop echo replies that carry another identifier before they are queued on
    this raw socket (errors still come: they are rare, and their echo is deep inside). A raw
    socket otherwise receives every echo reply to the host: with several pollers, a correlator or
    fping on one box, each would read, parse and drop all the others' replies. A classic BPF
    program: the IPv4 socket's packet starts with the IP header, the ICMPv6 socket's after it."""
    if family == socket.AF_INET:
        header = [(0xB1, 0, 0, 0), (0x50, 0, 0, 0)]  # X = the IP header's length; A = the ICMP type at X
        echo = (0x48, 0, 0, 4)  # A = the identifier at X + 4
    else:
        header = [(0x30, 0, 0, 0)]  # A = the ICMPv6 type
        echo = (0x28, 0, 0, 4)
    reply = _REPLY[family]
    program = [
        *header,
        (0x15, 0, 2, reply),  # an echo reply? else keep it (an error)
        echo,
        (0x15, 0, 1, ident),  # ours: keep it, else drop it
        (0x06, 0, 0, 0xFFFFFFFF),
        (0x06, 0, 0, 0),
    ]
    code = ctypes.create_string_buffer(b"".join(_BPF.pack(*step) for step in program))
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, struct.pack("HL", len(program), ctypes.addressof(code)))


class Pinger:
    """One per daemon: the sockets, the echoes in flight and the rounds of echoes to send.

    An echo in flight is a slot per sequence number (`_icmp.Flight`: its sweep, which echo of the
    sweep, when it went out, its deadline): a reply finds its echo by sequence, and is taken only
    if it comes from that echo's target, carries our identifier (raw sockets) and our token. The
    raw IPv4 socket's echoes are sent, read and matched in C; IPv6 and the ping socket's here."""

    def __init__(self, sockets: dict[socket.AddressFamily, _Socket], ident: int, window: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._sockets = sockets
        self._ident = ident
        self._token = os.urandom(8)
        request = _HEADER.pack(_REQUEST[socket.AF_INET], 0, 0, ident, 0) + self._token
        self._base = int.from_bytes(request, "big") % 0xFFFF  # IPv4 checksum sum, sequence 0
        self.window = min(window, _SEQUENCES - 1)  # echoes waiting for a reply at most
        self._flight = _icmp.Flight(ident, self._token)
        raw4 = sockets.get(socket.AF_INET)
        self._raw4 = raw4.sock.fileno() if raw4 is not None and raw4.raw else -1
        self._rounds: deque[tuple[_Sweep, int]] = deque()  # (sweep, round) waiting to go out
        self._round: tuple[_Sweep, int] | None = None  # the round going out, from target `_cursor` on
        self._cursor = 0
        self._reaper: asyncio.TimerHandle | None = None
        self._reaper_at = 0.0
        self._paused = False
        self.modes = {_FAMILIES[f]: "raw" if s.raw else "datagram" for f, s in sockets.items()}
        for family, entry in sockets.items():
            self._loop.add_reader(entry.sock.fileno(), self._on_readable, family)

    @classmethod
    async def open(cls, *, prefer_raw: bool = True, max_in_flight: int | None = None) -> Pinger:
        """Open one socket per family: raw if allowed (and preferred), else a ping socket; at
        most `max_in_flight` echoes wait for a reply (default: what the receive buffers hold).

        Raises PermissionError when neither kind can be opened for any family.
        """
        sockets: dict[socket.AddressFamily, _Socket] = {}
        for family in _FAMILIES:
            for raw in (True, False) if prefer_raw else (False,):
                try:
                    sockets[family] = _Socket(_open_socket(family, raw), raw)
                    break
                except OSError:
                    continue
        if not sockets:
            raise PermissionError("cannot open an ICMP socket: needs CAP_NET_RAW, or a gid inside " "net.ipv4.ping_group_range")
        granted = min(entry.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) for entry in sockets.values())
        window = min(window_for(granted), max_in_flight or granted)
        ident = int.from_bytes(os.urandom(2), "big")
        for family, entry in sockets.items():
            if entry.raw:
                _only_ours(entry.sock, family, ident)
        pinger = cls(sockets, ident, window)
        modes = ", ".join(f"{k} {v}" for k, v in pinger.modes.items())
        log.info("ICMP echo over %s, up to %d echoes in flight (%d-byte receive buffer)", modes, pinger.window, granted)
        return pinger

    @property
    def in_flight(self) -> int:
        """Echoes sent and waiting for their reply or timeout."""
        return int(self._flight.in_flight)

    async def close(self) -> None:
        for entry in self._sockets.values():
            self._loop.remove_reader(entry.sock.fileno())
            self._loop.remove_writer(entry.sock.fileno())
            entry.sock.close()
        self._sockets = {}
        self._raw4 = -1
        if self._reaper:
            self._reaper.cancel()
            self._reaper = None
        for sweep, echo in self._flight.clear():
            sweep.fail(echo // sweep.count, "pinger closed")
            sweep.finish()
        self._abandon_rounds()

    def _abandon_rounds(self) -> None:
        """The pinger is closed: every echo not yet sent ends with that error."""
        rounds = [(*self._round, self._cursor)] if self._round else []
        rounds += [(sweep, round_, 0) for sweep, round_ in self._rounds]
        self._round, self._cursor = None, 0
        self._rounds.clear()
        for sweep, _, first in rounds:
            for target in range(first, len(sweep.targets)):
                sweep.fail(target, "pinger closed")
            sweep.finish(len(sweep.targets) - first)

    async def __aenter__(self) -> Pinger:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def ping(self, address: str, count: int = 3, timeout: float = 1.0, interval: float = 0.1) -> PingResult:
        """Send `count` echoes `interval` seconds apart; wait `timeout` for each reply."""
        return (await self.sweep([address], count, timeout, interval))[address]

    async def sweep(
        self, addresses: Iterable[str], count: int = 1, timeout: float = 1.0, interval: float = 0.1
    ) -> dict[str, PingResult]:
        """Ping many targets at once: `count` rounds, a round's echoes queued `interval` apart."""
        kept: list[str] = []
        targets: list[_Target] = []
        packed_addresses: list[bytes] = []
        state = bytearray()
        results: dict[str, PingResult] = {}
        for address in dict.fromkeys(addresses):
            try:
                family, dst, packed = _normalize(address)
            except (OSError, ValueError):
                results[address] = PingResult(address, 0, 0, (), "invalid address")
                continue
            entry = self._sockets.get(family)
            if entry is None:
                error = f"no {_FAMILIES[family]} socket" if self._sockets else "pinger closed"
                results[address] = PingResult(address, 0, 0, (), error)
                continue
            v4 = family == socket.AF_INET
            kept.append(address)
            targets.append((dst, entry.sock, v4))
            in_c = v4 and entry.raw
            packed_addresses.append(packed if in_c else _NO_ADDRESS)
            state.append(0 if in_c else _icmp.PYTHON)
        sweep = _Sweep(targets, b"".join(packed_addresses), state, count, timeout, self._loop.create_future())
        try:
            for round_ in range(count):
                if round_:
                    await asyncio.sleep(interval)
                if targets:
                    self._rounds.append((sweep, round_))
                    self._pump()
            await sweep.done
        finally:
            sweep.done.cancel()
        results.update(sweep.results(kept))
        return results

    def _pump(self) -> None:
        """Send queued echoes while the window has room, at most `_SEND_BATCH` per turn of the
        loop: runs of raw IPv4 targets in C (`Flight.send_v4`), the others one by one here."""
        if not self._sockets:
            self._abandon_rounds()
            return
        flight, window, sends, cursor = self._flight, self.window, _SEND_BATCH, self._cursor
        # The round going out and its sweep's fields; a sweep is cancelled only between callbacks.
        current, end = self._round, 0
        if current is not None:
            sweep, first_echo = current
            end = cursor if sweep.done.done() else len(sweep.targets)
        while flight.in_flight < window and not self._paused:
            if cursor >= end:
                if current is not None and cursor < len(sweep.targets):
                    sweep.finish(len(sweep.targets) - cursor)  # a cancelled sweep's unsent echoes
                if not self._rounds:
                    current = None
                    break
                current, cursor = self._rounds.popleft(), 0
                sweep, first_echo = current
                end = 0 if sweep.done.done() else len(sweep.targets)
                continue
            if not sends:
                self._paused = True
                self._loop.call_soon(self._resume)
                break
            if sweep.state[cursor] != _icmp.PYTHON:
                cursor, sent, ended, status, refused = flight.send_v4(self._raw4, sweep, cursor, end, first_echo, sends, window)
                sends -= sent
                for target, code in refused:
                    sweep.fail(target, _describe(OSError(code, os.strerror(code))))
                if ended:
                    sweep.finish(ended)
                if sent:
                    self._arm(monotonic() + sweep.timeout)
                if status == _icmp.BLOCKED:
                    self._wait_writable(self._raw4)
                    break
                continue
            if not self._send_one(sweep, cursor, first_echo):
                break
            cursor += 1
            sends -= 1
        self._round, self._cursor = current, cursor

    def _send_one(self, sweep: _Sweep, target: int, first_echo: int) -> bool:
        """An echo to an IPv6 target or over the ping socket; False if the socket is full."""
        dst, sock, v4 = sweep.targets[target]
        seq = self._flight.claim()
        if v4:
            packet = _PACKET.pack(8, 0, 0xFFFF - (self._base + seq) % 0xFFFF, self._ident, seq, self._token)
        else:
            packet = _PACKET.pack(128, 0, 0, self._ident, seq, self._token)
        sent_at = monotonic()
        try:
            sock.sendto(packet, (dst, 0))
        except BlockingIOError:
            self._wait_writable(sock.fileno())
            return False
        except OSError as exc:
            sweep.fail(target, _describe(exc))
            sweep.finish()
            return True
        sweep.sent[target] += 1
        self._flight.take(seq, sweep, target * sweep.count + first_echo, sent_at, sent_at + sweep.timeout)
        self._arm(sent_at + sweep.timeout)
        return True

    def _wait_writable(self, fd: int) -> None:
        self._paused = True
        self._loop.add_writer(fd, self._on_writable, fd)

    def _on_writable(self, fd: int) -> None:
        self._loop.remove_writer(fd)
        self._resume()

    def _resume(self) -> None:
        self._paused = False
        self._pump()

    def _arm(self, deadline: float) -> None:
        """Time echoes out at `deadline` (a new echo's, or the earliest left after a reap).

        Re-armed only for a deadline earlier than the armed one's slack: re-arming for the same
        time at every send postponed the reaper for as long as replies kept coming, so timed-out
        echoes held their slots and their memory."""
        if deadline < math.inf and (self._reaper is None or deadline + _REAP_SLACK < self._reaper_at):
            if self._reaper:
                self._reaper.cancel()
            self._reaper_at = deadline + _REAP_SLACK
            self._reaper = self._loop.call_at(self._reaper_at, self._reap)

    def _reap(self) -> None:
        self._reaper = None
        self._arm(self._flight.reap(monotonic()))
        self._pump()

    def _settle(self, seq: int, peer: str, now: float, error: str | None) -> None:
        """A reply (or an ICMP error about the echo, naming its destination) for sequence `seq`,
        from `peer`: it ends the echo in flight there if that echo's target is `peer`."""
        held = self._flight.peek(seq)
        if held is None:
            return
        sweep, echo, sent_at = held
        target = echo // sweep.count
        if sweep.targets[target][0] != peer:
            return
        self._flight.release(seq)
        if error:
            sweep.fail(target, error)
        else:
            sweep.rtts[echo] = max(0.0, now - sent_at) * 1000.0
        sweep.finish()

    def _on_readable(self, family: socket.AddressFamily) -> None:
        entry = self._sockets.get(family)
        if entry is None:
            return
        if entry.raw and family == socket.AF_INET:
            errors = _ERRORS[family]
            for seq, destination, kind, code, now in self._flight.read_v4(self._raw4, _RECV_BATCH):
                self._settle(seq, socket.inet_ntop(family, destination), now, f"{errors[kind]} (code {code})")
        else:
            self._read(entry, family)
        self._pump()

    def _read(self, entry: _Socket, family: socket.AddressFamily) -> None:
        ident, token, settle = self._ident, self._token, self._settle
        wall_ahead = time() - monotonic()
        for _ in range(_RECV_BATCH):
            try:
                data, ancillary, _, source = entry.sock.recvmsg(2048, _STAMP_SPACE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue
            parsed = parse_reply(data, family, entry.raw, ident, token)
            if parsed is not None:
                seq, destination, error = parsed
                settle(seq, destination or source[0], _arrival(ancillary, wall_ahead, monotonic()), error)
