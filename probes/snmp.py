"""SNMP v1/v2c/v3 GET and multi-column table walks: v1/v2c on one UDP socket per address family
with the BER codec of probes/ber.py, v3 over pysnmp.

pyasn1's decoder took about 75% of a poll's CPU, so v1/v2c messages are encoded and decoded by
probes/ber.py; v3 (USM keys, engine discovery, reports) stays with pysnmp's command generators (not
`bulk_walk_cmd`). The walk loop is ours for both: several columns per GETBULK, trimming at the end
of each column, halving max-repetitions on tooBig, a stop on non-increasing OIDs, and budgets so
that no agent can keep a walk going: a cap on values received (empty ones too), on requests and
on time. OIDs are numeric only; no MIB is ever loaded.

Every failure comes back as an `Outcome` on the `Result`, never as an exception. A wrong v1/v2c
community cannot be told from a dead agent: agents drop such requests silently (RFC 3584 §4.1.2
asks them to), so it shows up as TIMEOUT. SNMPv3 wrong auth keys and unknown users arrive as
Report PDUs and map to AUTH_FAILURE; a wrong privacy key also times out (net-snmp drops what it
cannot decrypt without a report).

A v1/v2c reply counts only if it comes from the address and port the request went to. pysnmp
matches v3 replies by msgID and security parameters, not by address (RFC 3412 §7.2.12): with
authNoPriv or authPriv a forged reply fails its HMAC, with noAuthNoPriv it would be accepted.

The v1/v2c socket, and how a burst of requests is kept from losing its own replies, are in
probes/udp.py. A walk's replies, v3's re-encoded, are decoded in C into per-column cells
(`ber.Walk`): no Python object per value but the values themselves and one index per row.

Longer than 500 lines because v1/v2c and v3 share the walk loop, the result types and the
error mapping; only the socket is apart.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pysnmp.entity.engine import SnmpEngine
from pysnmp.entity.rfc3413 import cmdgen
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    Udp6TransportTarget,
    UdpTransportTarget,
    UsmUserData,
    usmAesCfb128Protocol,
    usmAesCfb256Protocol,
    usmDESPrivProtocol,
    usmHMAC192SHA256AuthProtocol,
    usmHMAC384SHA512AuthProtocol,
    usmHMACMD5AuthProtocol,
    usmHMACSHAAuthProtocol,
)
from pysnmp.hlapi.v3arch.asyncio.cmdgen import LCD
from pysnmp.proto import errind, rfc1902

from monitord.model import Device, Outcome, SnmpAuth
from probes import ber
from probes.ber import Varbind
from probes.udp import RECEIVE_BUFFER, Datagrams, ReplyBudget, reply_cost, size_receive_buffer

log = logging.getLogger("monitord.snmp")

Oid = tuple[int, ...]
Value = int | bytes | Oid

TAGS: dict[Any, int] = {
    rfc1902.Integer32.tagSet: 2,
    rfc1902.OctetString.tagSet: 4,
    rfc1902.ObjectIdentifier.tagSet: 6,
    rfc1902.IpAddress.tagSet: 64,
    rfc1902.Counter32.tagSet: 65,
    rfc1902.Gauge32.tagSet: 66,
    rfc1902.TimeTicks.tagSet: 67,
    rfc1902.Opaque.tagSet: 68,
    rfc1902.Counter64.tagSet: 70,
}
"""BER tags as numbered in .snmprec files: 2 Integer32, 4 OCTET STRING, 6 OID, 64 IpAddress,
65 Counter32, 66 Gauge32/Unsigned32, 67 TimeTicks, 68 Opaque, 70 Counter64."""

KNOWN = frozenset(TAGS.values())

ERROR_STATUS = (
    "noError tooBig noSuchName badValue readOnly genErr noAccess wrongType wrongLength "
    "wrongEncoding wrongValue noCreation inconsistentValue resourceUnavailable commitFailed "
    "undoFailed authorizationError notWritable inconsistentName"
).split()
TOO_BIG = 1
NO_SUCH_NAME = 2

AUTH_ERRORS = (
    errind.WrongDigest,
    errind.UnknownUserName,
    errind.UnknownSecurityName,
    errind.UnsupportedSecurityLevel,
    errind.AuthenticationFailure,
    errind.AuthenticationError,
    errind.DecryptionError,
    errind.NotInTimeWindow,
    errind.UnknownEngineID,
)

AUTH_PROTOCOLS = {
    "md5": usmHMACMD5AuthProtocol,
    "sha": usmHMACSHAAuthProtocol,
    "sha256": usmHMAC192SHA256AuthProtocol,
    "sha512": usmHMAC384SHA512AuthProtocol,
}
PRIV_PROTOCOLS = {
    "des": usmDESPrivProtocol,
    "aes": usmAesCfb128Protocol,
    "aes256": usmAesCfb256Protocol,  # the key-extension variant most vendors ship (Cisco, Huawei)
}


@dataclass(frozen=True, slots=True)
class Result:
    """What one GET saw. `varbinds` holds only real values (no noSuch*/endOfMibView)."""

    outcome: Outcome
    varbinds: tuple[Varbind, ...] = ()
    detail: str = ""
    requests: int = 0

    @property
    def count(self) -> int:
        return len(self.varbinds)


@dataclass(frozen=True, slots=True)
class Walked:
    """What one walk saw: the real values of each column that had some, in the order asked."""

    outcome: Outcome
    cells: tuple[ber.Cells, ...] = ()
    detail: str = ""
    requests: int = 0

    @property
    def count(self) -> int:
        return sum(len(cells.tags) for cells in self.cells)

    @property
    def varbinds(self) -> tuple[Varbind, ...]:
        """Every value as a Varbind, column by column: an object per value, for the few callers
        that want them one by one."""
        return tuple(varbind for cells in self.cells for varbind in cells.varbinds())


@dataclass(frozen=True, slots=True)
class Target:
    address: str
    port: int
    auth: SnmpAuth
    device_class: str = ""  # what the client counts its datagrams under (`SnmpCounts`): the device's kind

    @classmethod
    def of(cls, device: Device) -> Target:
        if device.snmp is None:
            raise ValueError(f"device {device.id} has no SNMP access")
        return cls(device.address, device.port, device.snmp, device.kind)


@dataclass(slots=True)
class SnmpCounts:
    """Requests of one device class on the wire. v1/v2c: every datagram sent, each resend after
    a timeout a retry, a request unanswered after all of them a timeout. v3 resends inside
    pysnmp: an answered request counts one datagram, an unanswered one `retries + 1`."""

    sent: int = 0
    retries: int = 0
    timeouts: int = 0


@dataclass(frozen=True, slots=True)
class _Reply:
    """A reply's status and its varbinds, still encoded: a VarBindList at `at` in `data`."""

    outcome: Outcome
    error_status: int = 0
    error_index: int = 0
    data: bytes = b"\x30\x00"
    at: int = 0
    detail: str = ""


def parse_oid(text: str) -> Oid:
    return tuple(int(part) for part in text.strip(".").split("."))


format_oid = ber.format_oid


def convert(oid: Any, value: Any) -> Varbind | None:
    """One pysnmp varbind as plain Python, or None for a type this probe does not read."""
    tag = TAGS.get(value.tagSet)
    if tag is None:
        return None
    if tag in (4, 64, 68):
        plain: Value = bytes(value.asOctets())
    elif tag == 6:
        plain = tuple(value)
    else:
        plain = int(value)
    return Varbind(tuple(oid), tag, plain)


def describe_error(status: int, index: int, requested: Sequence[Oid]) -> str:
    name = ERROR_STATUS[status] if 0 <= status < len(ERROR_STATUS) else f"errorStatus {status}"
    if 1 <= index <= len(requested):
        return f"{name} at {format_oid(requested[index - 1])}"
    return name


class SnmpClient:
    """Shared by every poll of the daemon: v1/v2c requests go out on one UDP socket per address
    family, v3 requests through one pysnmp engine (more only for clashing SNMPv3 users, see below).

    `timeout` and `retries` are fixed per client: pysnmp keys its per-target configuration on
    them, so varying them per poll would register each target again (about 7.5 ms of CPU each).
    A walk ends with AGENT_ERROR once it has received more than `max_varbinds` values, sent
    `walk_max_requests` requests or run for `walk_timeout` seconds (checked before each request).
    `receive_buffer` is asked for each v1/v2c socket; `receive_buffers` holds what the kernel
    granted per address family. The IPv4 socket is made here, so that a capped buffer is logged
    as the daemon starts; IPv6's on first use.
    Create it inside the running event loop; call `close()` when done.

    An engine holds one set of keys per SNMPv3 user name: configuring the same user with other
    keys replaces them for every agent already using it. So v3 auths that reuse a user name with
    different protocols or keys each get an engine of their own.
    """

    def __init__(
        self,
        *,
        timeout: float = 2.0,
        retries: int = 1,
        max_varbinds: int = 200_000,
        walk_max_requests: int = 5_000,
        walk_timeout: float = 30.0,
        receive_buffer: int = RECEIVE_BUFFER,
    ) -> None:
        self.timeout = timeout
        self.retries = retries
        self.max_varbinds = max_varbinds
        self.walk_max_requests = walk_max_requests
        self.walk_timeout = walk_timeout
        self.receive_buffer = receive_buffer
        self.receive_buffers: dict[int, int] = {}
        self.counts: dict[str, SnmpCounts] = {}  # device class -> its requests on the wire
        self._unopened: dict[int, socket.socket] = {}
        try:
            self._unopened[socket.AF_INET] = self._sized_socket(socket.AF_INET)
        except OSError:
            pass  # no IPv4 here: its first use reports UNREACHABLE, as for any family
        self._engines: list[tuple[SnmpEngine, dict[str, tuple[Any, ...]]]] = [(SnmpEngine(), {})]
        self._transports: dict[tuple[str, int], Any] = {}
        self._addresses: dict[tuple[SnmpAuth, str, int], tuple[SnmpEngine, str]] = {}
        self._sockets: dict[int, asyncio.Future[tuple[asyncio.DatagramTransport, Datagrams]]] = {}
        self._sockaddrs: dict[tuple[str, int], tuple[int, Any]] = {}
        self._request_id = random.randrange(2**31)

    def close(self) -> None:
        for sock in self._unopened.values():
            sock.close()
        self._unopened.clear()
        for engine, _users in self._engines:
            engine.close_dispatcher()
        for opening in self._sockets.values():
            if opening.done() and not opening.cancelled() and opening.exception() is None:
                opening.result()[0].close()
            opening.cancel()

    async def get(self, target: Target, oids: Iterable[Oid]) -> Result:
        """Scalars in one GET. Missing objects are simply absent from `varbinds`."""
        requested = list(oids)
        try:
            names = [ber.encode_oid(oid) for oid in requested]
        except ber.BerError as error:
            return Result(Outcome.AGENT_ERROR, detail=f"request not sent: {error}")
        reply = await self._send(target, names, None)
        if reply.outcome is not Outcome.OK:
            return Result(reply.outcome, detail=reply.detail, requests=1)
        if reply.error_status:
            detail = describe_error(reply.error_status, reply.error_index, requested)
            return Result(Outcome.AGENT_ERROR, detail=detail, requests=1)
        varbinds, skipped = _plain(ber.decode_varbinds(reply.data, reply.at))
        return Result(Outcome.OK, tuple(varbinds), _skipped(skipped), requests=1)

    async def get_next(self, target: Target, oids: Iterable[Oid]) -> Result:
        """The next object after each of `oids`, in one GETNEXT (discovery asks whether a column
        has a row). Past the end of the MIB an OID simply has no varbind; on SNMPv1, whose agents
        answer that with noSuchName for the whole request, the request is sent again without it."""
        requested = list(dict.fromkeys(oids))
        try:
            names = [ber.encode_oid(oid) for oid in requested]
        except ber.BerError as error:
            return Result(Outcome.AGENT_ERROR, detail=f"request not sent: {error}")
        requests = 0
        while names:
            reply = await self._send(target, names, 0)
            requests += 1
            if reply.outcome is not Outcome.OK:
                return Result(reply.outcome, detail=reply.detail, requests=requests)
            if target.auth.version == "1" and reply.error_status == NO_SUCH_NAME and 1 <= reply.error_index <= len(names):
                del names[reply.error_index - 1], requested[reply.error_index - 1]
                continue
            if reply.error_status:
                detail = describe_error(reply.error_status, reply.error_index, requested)
                return Result(Outcome.AGENT_ERROR, detail=detail, requests=requests)
            found = tuple(v for v in ber.decode_varbinds(reply.data, reply.at) if v.tag not in ber.EMPTY)
            return Result(Outcome.OK, found, requests=requests)  # a value of any type says that a row is there
        return Result(Outcome.OK, requests=requests)

    async def walk(self, target: Target, columns: Iterable[Oid], max_repetitions: int = 25) -> Walked:
        """Walk several table columns at once (GETBULK; GETNEXT on v1) up to the end of each.

        The result holds every cell found, column by column, or an outcome that says why the walk
        stopped: tooBig at one repetition, OID not increasing, too many rows, too many requests,
        out of time. Per reply, Python does only the bookkeeping; the values go into `ber.Walk`.
        """
        prefixes = list(dict.fromkeys(columns))
        try:
            walk = ber.Walk([ber.encode_oid(prefix) for prefix in prefixes])
        except ber.BerError as error:
            return Walked(Outcome.AGENT_ERROR, detail=f"request not sent: {error}")
        skipped = 0
        requests = 0
        received = 0
        repetitions = max(1, max_repetitions)
        v1 = target.auth.version == "1"
        active = list(range(len(prefixes)))
        clock = asyncio.get_running_loop().time
        deadline = clock() + self.walk_timeout

        def ended(outcome: Outcome, detail: str) -> Walked:
            return Walked(outcome, _cells(walk, prefixes), detail, requests)

        while active:
            if requests >= self.walk_max_requests:
                return ended(Outcome.AGENT_ERROR, f"walk unfinished after {requests} requests (walk_max_requests)")
            if clock() >= deadline:
                detail = f"walk unfinished after {self.walk_timeout:g} s and {requests} requests (walk_timeout)"
                return ended(Outcome.AGENT_ERROR, detail)
            requested = [walk.last(column) for column in active]
            reply = await self._send(target, requested, 0 if v1 else repetitions)
            requests += 1
            if reply.outcome is not Outcome.OK:
                return ended(reply.outcome, reply.detail)
            if reply.error_status == TOO_BIG and repetitions > 1:
                repetitions //= 2
                continue
            if v1 and reply.error_status == NO_SUCH_NAME and 1 <= reply.error_index <= len(active):
                del active[reply.error_index - 1]
                continue
            if reply.error_status:
                detail = describe_error(reply.error_status, reply.error_index, [ber.decode_oid(name) for name in requested])
                return ended(Outcome.AGENT_ERROR, detail)
            try:
                count, unknown, done, unordered = walk.feed(reply.data, reply.at, active)
            except ber.BerError as error:  # a v3 reply that probes/ber.py cannot read back
                return ended(Outcome.AGENT_ERROR, f"undecodable response: {error}")
            if not count:
                return ended(Outcome.AGENT_ERROR, "empty response")
            if unordered is not None:
                name, previous = map(ber.decode_oid, unordered)
                return ended(Outcome.AGENT_ERROR, f"OID not increasing: {format_oid(name)} after {format_oid(previous)}")
            received += count
            skipped += unknown
            if received > self.max_varbinds:
                detail = f"too many rows: more than {self.max_varbinds} values received"
                return Walked(Outcome.AGENT_ERROR, _cut(_cells(walk, prefixes), self.max_varbinds), detail, requests)
            if done:
                active = [column for column in active if column not in done]
        return Walked(Outcome.OK, _cells(walk, prefixes), _skipped(skipped), requests)

    async def _send(self, target: Target, names: Sequence[bytes], repetitions: int | None) -> _Reply:
        """GET (repetitions None), GETNEXT (0) or GETBULK (max-repetitions > 0) of OIDs encoded."""
        if target.auth.version in ("1", "2c"):
            return await self._exchange(target, names, repetitions)
        try:
            engine, address = await self._address(target)
        except Exception as error:  # pysnmp raises PySnmpError and OSError for bad addresses
            return _Reply(Outcome.UNREACHABLE, detail=f"{target.address}:{target.port}: {error}")
        future: asyncio.Future[_Reply] = asyncio.get_running_loop().create_future()

        def done(engine: Any, handle: Any, indication: Any, status: Any, index: Any, varbinds: Any, context: Any) -> bool:
            if not future.done():
                future.set_result(_reply(indication, status, index, varbinds))
            return False

        request = [(rfc1902.ObjectName(ber.decode_oid(name)), rfc1902.Null("")) for name in names]
        try:
            if repetitions is None:
                cmdgen.GetCommandGenerator().send_varbinds(engine, address, None, b"", request, done)
            elif repetitions == 0:
                cmdgen.NextCommandGeneratorSingleRun().send_varbinds(engine, address, None, b"", request, done)
            else:
                cmdgen.BulkCommandGeneratorSingleRun().send_varbinds(engine, address, None, b"", 0, repetitions, request, done)
        except Exception as error:  # pysnmp raises StatusInformation from its send path
            return _Reply(Outcome.AGENT_ERROR, detail=f"request not sent: {type(error).__name__}")
        reply = await future
        counts = self._counts(target)
        if reply.outcome is Outcome.TIMEOUT:
            counts.sent += self.retries + 1
            counts.retries += self.retries
            counts.timeouts += 1
        else:
            counts.sent += 1
        return reply

    def _counts(self, target: Target) -> SnmpCounts:
        counts = self.counts.get(target.device_class)
        if counts is None:
            counts = self.counts[target.device_class] = SnmpCounts()
        return counts

    async def _exchange(self, target: Target, names: Sequence[bytes], repetitions: int | None) -> _Reply:
        """A v1/v2c request on the shared socket, sent again with the same request-id after each
        timeout; a reply to any of the sends answers it."""
        try:
            family, sockaddr = await self._sockaddr(target)
            transport, datagrams = await self._socket(family)
        except OSError as error:
            return _Reply(Outcome.UNREACHABLE, detail=f"{target.address}:{target.port}: {error}")
        version = 0 if target.auth.version == "1" else 1
        community = target.auth.community.reveal().encode() if target.auth.community else b"public"
        kind = ber.GET if repetitions is None else ber.GET_BULK if repetitions else ber.GET_NEXT
        self._request_id = request_id = (self._request_id + 1) % 2**31
        try:
            message = ber.encode_names(version, community, request_id, kind, names, 0, repetitions or 0)
        except ber.BerError as error:
            return _Reply(Outcome.AGENT_ERROR, detail=f"request not sent: {error}")
        held = await datagrams.budget.take(reply_cost(message, len(names), repetitions))
        loop = asyncio.get_running_loop()
        counts = self._counts(target)
        try:
            for attempt in range(self.retries + 1):
                counts.sent += 1
                counts.retries += attempt > 0
                # A future per send, resolved by the reply or by its timer with None: a fraction
                # of what asyncio.wait costs per request. A late reply answers the next send.
                answer: asyncio.Future[tuple[ber.Header, bytes] | None] = loop.create_future()
                datagrams.waiting[request_id] = (version, community, sockaddr[:2], answer)
                transport.sendto(message, sockaddr)
                timer = loop.call_later(self.timeout, _expire, answer)
                try:
                    response = await answer
                finally:
                    timer.cancel()
                if response is not None:
                    header, data = response
                    return _Reply(Outcome.OK, header.error_status, header.error_index, data, header.varbinds_at)
        finally:
            del datagrams.waiting[request_id]
            datagrams.budget.give(held)
        counts.timeouts += 1
        return _Reply(Outcome.TIMEOUT, detail="no response")

    async def _sockaddr(self, target: Target) -> tuple[int, Any]:
        """Address family and socket address of `target`, resolved once (IPv6 if it has a colon)."""
        found = self._sockaddrs.get((target.address, target.port))
        if found is None:
            family = socket.AF_INET6 if ":" in target.address else socket.AF_INET
            resolved = await asyncio.get_running_loop().getaddrinfo(
                target.address, target.port, family=family, type=socket.SOCK_DGRAM
            )
            found = self._sockaddrs[(target.address, target.port)] = (family, resolved[0][4])
        return found

    async def _socket(self, family: int) -> tuple[asyncio.DatagramTransport, Datagrams]:
        """The family's socket, opened on first use (concurrent first uses share one opening)."""
        opening = self._sockets.get(family)
        if opening is None:
            opening = self._sockets[family] = asyncio.ensure_future(self._open(family))
        elif opening.done() and not opening.cancelled() and opening.exception() is None:
            return opening.result()  # open: no shield (a future and its callbacks) per request
        return await asyncio.shield(opening)

    def _sized_socket(self, family: int) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.receive_buffers[family] = size_receive_buffer(sock, self.receive_buffer)
        except OSError:
            sock.close()
            raise
        return sock

    async def _open(self, family: int) -> tuple[asyncio.DatagramTransport, Datagrams]:
        sock = self._unopened.pop(family, None) or self._sized_socket(family)
        budget = ReplyBudget(self.receive_buffers[family])
        try:
            return await asyncio.get_running_loop().create_datagram_endpoint(lambda: Datagrams(budget), sock=sock)
        except BaseException:
            sock.close()
            raise

    async def _address(self, target: Target) -> tuple[SnmpEngine, str]:
        """The engine to send with and its name for (auth, address, port), configured once.

        Keyed by the credentials themselves, so a reload that changes an auth's keys uses them.
        """
        key = (target.auth, target.address, target.port)
        found = self._addresses.get(key)
        if found is None:
            transport = self._transports.get((target.address, target.port))
            if transport is None:
                kind = Udp6TransportTarget if ":" in target.address else UdpTransportTarget
                transport = await kind.create((target.address, target.port), timeout=self.timeout, retries=self.retries)
                self._transports[(target.address, target.port)] = transport
            engine = self._engine_for(target.auth)
            name, _params = LCD.configure(engine, _credentials(target.auth), transport, b"")
            found = self._addresses[key] = (engine, name)
        return found

    def _engine_for(self, auth: SnmpAuth) -> SnmpEngine:
        """The first engine where `auth`'s v3 user is unknown or has the same keys."""
        if auth.version != "3":
            return self._engines[0][0]
        user = auth.user or ""
        keys = (auth.auth_protocol, auth.auth_key, auth.priv_protocol, auth.priv_key)  # Secrets compare by value
        for engine, users in self._engines:
            if users.setdefault(user, keys) == keys:
                return engine
        engine = SnmpEngine()
        self._engines.append((engine, {user: keys}))
        return engine


MALFORMED = ("undecodable response", "OID not increasing", "empty response", "OID sub-identifier")
WALK_LIMITS = ("walk unfinished", "too many rows")


def failure_reason(outcome: Outcome, detail: str) -> str:
    """What went wrong, in a few words for a metric's `reason` label: the outcome, with an agent
    error told apart by the detail this module wrote (malformed, error_status, walk_limit)."""
    if outcome is not Outcome.AGENT_ERROR:
        return outcome.value
    if detail.startswith(MALFORMED):
        return "malformed"
    if detail.startswith(WALK_LIMITS):
        return "walk_limit"
    if detail.split(" ", 1)[0] in ERROR_STATUS:
        return "error_status"
    return outcome.value


def _expire(answer: asyncio.Future[tuple[ber.Header, bytes] | None]) -> None:
    if not answer.done():
        answer.set_result(None)


def _credentials(auth: SnmpAuth) -> CommunityData | UsmUserData:
    """pysnmp's view of `auth`; the only place secrets are revealed."""
    if auth.version in ("1", "2c"):
        community = auth.community.reveal() if auth.community else "public"
        return CommunityData(community, mpModel=0 if auth.version == "1" else 1)
    return UsmUserData(
        auth.user or "",
        authKey=auth.auth_key.reveal() if auth.auth_key else None,
        privKey=auth.priv_key.reveal() if auth.priv_key else None,
        authProtocol=AUTH_PROTOCOLS[auth.auth_protocol] if auth.auth_protocol else None,
        privProtocol=PRIV_PROTOCOLS[auth.priv_protocol] if auth.priv_protocol else None,
    )


def _reply(indication: Any, status: Any, index: Any, varbinds: Any) -> _Reply:
    if indication is None:
        plain = [_raw(name, value) for name, value in varbinds or ()]
        if any(arc > ber.MAX_SUB_IDENTIFIER for oid, _, _ in plain for arc in oid):
            return _Reply(Outcome.AGENT_ERROR, detail="OID sub-identifier above 2**32-1")
        try:
            encoded = ber.encode_varbinds(plain)
        except ValueError as error:  # BerError, or a tag beyond one octet
            return _Reply(Outcome.AGENT_ERROR, detail=f"undecodable response: {error}")
        return _Reply(Outcome.OK, int(status or 0), int(index or 0), encoded)
    if isinstance(indication, errind.RequestTimedOut):
        return _Reply(Outcome.TIMEOUT, detail="no response")
    if isinstance(indication, AUTH_ERRORS):
        return _Reply(Outcome.AUTH_FAILURE, detail=str(indication))
    return _Reply(Outcome.AGENT_ERROR, detail=str(indication))


def _raw(name: Any, value: Any) -> Varbind:
    """A pysnmp varbind as probes/ber.py decodes one."""
    varbind = convert(name, value)
    if varbind is not None:
        return varbind
    tag = value.tagSet[-1]
    return Varbind(tuple(name), tag.tagClass | tag.tagFormat | tag.tagId, None)


def _plain(varbinds: Iterable[Varbind]) -> tuple[list[Varbind], int]:
    plain: list[Varbind] = []
    skipped = 0
    for varbind in varbinds:
        if varbind.tag in KNOWN:
            plain.append(varbind)
        elif varbind.tag not in ber.EMPTY:
            skipped += 1
    return plain, skipped


def _cells(walk: ber.Walk, prefixes: Sequence[Oid]) -> tuple[ber.Cells, ...]:
    """The walk's cells, column by column, leaving out columns without any."""
    found = (ber.Cells(prefix, *walk.cells(column)) for column, prefix in enumerate(prefixes))
    return tuple(cells for cells in found if cells.tags)


def _cut(found: tuple[ber.Cells, ...], limit: int) -> tuple[ber.Cells, ...]:
    """The first `limit` cells, column by column."""
    kept = []
    for cells in found:
        if limit <= 0:
            break
        kept.append(ber.Cells(cells.prefix, cells.indexes[:limit], cells.tags[:limit], cells.values[:limit]))
        limit -= len(cells.tags)
    return tuple(kept)


def _skipped(count: int) -> str:
    return f"{count} values of unknown type skipped" if count else ""
