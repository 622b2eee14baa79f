"""SNMP v1/v2c/v3 GET and multi-column table walks: v1/v2c on one UDP socket per address family
with the BER codec of probes/ber.py, v3 over pysnmp (probes/snmpv3.py, imported on first use).

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

A v1/v2c reply counts only if it comes from the address and port the request went to (v3's are
matched by pysnmp: probes/snmpv3.py).

The v1/v2c socket, and how a burst of requests is kept from losing its own replies, are in
probes/udp.py. A walk's replies, v3's re-encoded, are decoded in C into per-column cells
(`ber.Walk`): no Python object per value but the values themselves and one index per row.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monitord.model import Outcome
from probes import ber
from probes.ber import Varbind
from probes.snmpbase import Reply, Target
from probes.udp import RECEIVE_BUFFER, Datagrams, ReplyBudget, reply_cost, size_receive_buffer

if TYPE_CHECKING:
    from probes.snmpv3 import V3Sender

log = logging.getLogger("monitord.snmp")

Oid = tuple[int, ...]
Value = int | bytes | Oid

KNOWN = frozenset({2, 4, 6, 64, 65, 66, 67, 68, 70})
"""The BER tags of the values read, as numbered in .snmprec files: 2 Integer32, 4 OCTET STRING,
6 OID, 64 IpAddress, 65 Counter32, 66 Gauge32/Unsigned32, 67 TimeTicks, 68 Opaque, 70 Counter64."""

ERROR_STATUS = (
    "noError tooBig noSuchName badValue readOnly genErr noAccess wrongType wrongLength "
    "wrongEncoding wrongValue noCreation inconsistentValue resourceUnavailable commitFailed "
    "undoFailed authorizationError notWritable inconsistentName"
).split()
TOO_BIG = 1
NO_SUCH_NAME = 2


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


@dataclass(slots=True)
class SnmpCounts:
    """Requests of one device class on the wire. v1/v2c: every datagram sent, each resend after
    a timeout a retry, a request unanswered after all of them a timeout. v3 resends inside
    pysnmp: an answered request counts one datagram, an unanswered one `retries + 1`."""

    sent: int = 0
    retries: int = 0
    timeouts: int = 0


def parse_oid(text: str) -> Oid:
    return tuple(int(part) for part in text.strip(".").split("."))


format_oid = ber.format_oid


def describe_error(status: int, index: int, requested: Sequence[Oid]) -> str:
    name = ERROR_STATUS[status] if 0 <= status < len(ERROR_STATUS) else f"errorStatus {status}"
    if 1 <= index <= len(requested):
        return f"{name} at {format_oid(requested[index - 1])}"
    return name


class SnmpClient:
    """Shared by every poll of the daemon: v1/v2c requests go out on one UDP socket per address
    family, v3 requests through probes/snmpv3.py's pysnmp engines (`timeout` and `retries` are
    fixed per client, as pysnmp keys its per-target configuration on them).
    A walk ends with AGENT_ERROR once it has received more than `max_varbinds` values, sent
    `walk_max_requests` requests or run for `walk_timeout` seconds (checked before each request).
    `receive_buffer` is asked for each v1/v2c socket; `receive_buffers` holds what the kernel
    granted per address family. The IPv4 socket is made here, so that a capped buffer is logged
    as the daemon starts; IPv6's on first use.
    Create it inside the running event loop; call `close()` when done.
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
        self._v3: V3Sender | None = None  # made on the first v3 request
        self._sockets: dict[int, asyncio.Future[tuple[asyncio.DatagramTransport, Datagrams]]] = {}
        self._sockaddrs: dict[tuple[str, int], tuple[int, Any]] = {}
        self._request_id = random.randrange(2**31)

    def close(self) -> None:
        for sock in self._unopened.values():
            sock.close()
        self._unopened.clear()
        if self._v3 is not None:
            self._v3.close()
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

    async def _send(self, target: Target, names: Sequence[bytes], repetitions: int | None) -> Reply:
        """GET (repetitions None), GETNEXT (0) or GETBULK (max-repetitions > 0) of OIDs encoded."""
        if target.auth.version in ("1", "2c"):
            return await self._exchange(target, names, repetitions)
        if self._v3 is None:
            from probes.snmpv3 import V3Sender  # pysnmp only where a v3 device is polled

            self._v3 = V3Sender(self.timeout, self.retries)
        reply = await self._v3.send(target, names, repetitions)
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

    async def _exchange(self, target: Target, names: Sequence[bytes], repetitions: int | None) -> Reply:
        """A v1/v2c request on the shared socket, sent again with the same request-id after each
        timeout; a reply to any of the sends answers it."""
        try:
            family, sockaddr = await self._sockaddr(target)
            transport, datagrams = await self._socket(family)
        except OSError as error:
            return Reply(Outcome.UNREACHABLE, detail=f"{target.address}:{target.port}: {error}")
        version = 0 if target.auth.version == "1" else 1
        community = target.auth.community.reveal().encode() if target.auth.community else b"public"
        kind = ber.GET if repetitions is None else ber.GET_BULK if repetitions else ber.GET_NEXT
        self._request_id = request_id = (self._request_id + 1) % 2**31
        try:
            message = ber.encode_names(version, community, request_id, kind, names, 0, repetitions or 0)
        except ber.BerError as error:
            return Reply(Outcome.AGENT_ERROR, detail=f"request not sent: {error}")
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
                    return Reply(Outcome.OK, header.error_status, header.error_index, data, header.varbinds_at)
        finally:
            del datagrams.waiting[request_id]
            datagrams.budget.give(held)
        counts.timeouts += 1
        return Reply(Outcome.TIMEOUT, detail="no response")

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
