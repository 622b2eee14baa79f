"""The v1/v2c socket: one UDP socket per address family, its replies matched to requests, and a
receive buffer that a burst cannot overflow.

A burst of requests must not lose its own replies: the kernel drops a datagram that arrives when
the socket's receive buffer is full (`RcvbufErrors` in /proc/net/snmp), and a lost reply costs a
whole timeout. So the socket asks for a large buffer, reads back what the kernel granted
(net.core.rmem_max caps it) and keeps the replies in flight within what that buffer can hold.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from probes import ber

log = logging.getLogger("monitord.snmp")

RECEIVE_BUFFER = 4 * 2**20
"""Bytes asked for the v1/v2c socket's receive buffer (SO_RCVBUF). Linux grants twice that, room
for about 7,000 GET replies or 650 five-column GETBULK replies at `reply_cost`'s worst case.
Debian's default net.core.rmem_max (212,992) caps the grant at a twentieth of that; the client
then keeps fewer requests in flight."""

DATAGRAM_OVERHEAD = 1024
"""Bytes the kernel charges a received datagram beyond twice its payload, at most (its buffer
and bookkeeping: 832 bytes for a 60-byte datagram, 16,644 for 8,000 on loopback, Linux 6)."""


@dataclass(eq=False)
class Datagrams(asyncio.DatagramProtocol):
    """One UDP socket for the v1/v2c requests of an address family. A reply is matched by
    request-id and must come from the address and port the request went to and carry its version
    and community; anything else is dropped (pysnmp checks all but the address)."""

    budget: ReplyBudget
    transport: asyncio.DatagramTransport | None = None
    waiting: dict[int, tuple[int, bytes, Any, asyncio.Future[tuple[ber.Header, bytes] | None]]] = field(default_factory=dict)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            header = ber.read_response(data)
        except ber.BerError:
            return
        waiting = self.waiting.get(header.request_id)
        if waiting is None or waiting[:3] != (header.version, header.community, addr[:2]) or waiting[3].done():
            return
        waiting[3].set_result((header, data))


class ReplyBudget:
    """The receive buffer's bytes, promised to replies not yet read: a request waits (first come,
    first served) until its reply's worst-case size fits, so a burst queues instead of overflowing
    the socket. A request larger than the whole buffer goes out alone."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.free = capacity
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def take(self, cost: int) -> int:
        """Wait until `cost` bytes (at most the whole buffer) are free and hold them; the bytes held."""
        cost = min(cost, self.capacity)
        if not self._waiting and cost <= self.free:
            self.free -= cost
            return cost
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((cost, turn))
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.give(cost)  # granted just as the caller was cancelled
            else:
                self._wake()  # a smaller request behind this one may fit now
            raise
        return cost

    def give(self, cost: int) -> None:
        self.free += cost
        self._wake()

    def _wake(self) -> None:
        while self._waiting:
            cost, turn = self._waiting[0]
            if not turn.cancelled():
                if cost > self.free:
                    return
                self.free -= cost
                turn.set_result(None)
            self._waiting.popleft()


def reply_cost(message: bytes, oids: int, repetitions: int | None) -> int:
    """Receive-buffer bytes the reply to `message` may take: a GET reply is the request with up
    to 40 bytes of value per OID; a GETBULK reply repeats the request's OIDs `repetitions` times,
    each one a sub-identifier longer and with a value (24 bytes allowed per varbind)."""
    if repetitions:
        payload = len(message) * repetitions + oids * repetitions * 24
    else:
        payload = len(message) + oids * 40
    return DATAGRAM_OVERHEAD + 2 * payload


def size_receive_buffer(sock: Any, wanted: int) -> int:
    """Ask for a `wanted`-byte receive buffer and return what the kernel granted, in its own
    accounting (Linux doubles the value asked for, see socket(7), and caps it at twice
    net.core.rmem_max). A capped buffer is logged: replies then wait in fewer numbers."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, wanted)
    granted = int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
    if granted < 2 * wanted:
        log.warning(
            "SNMP socket: asked for a %d-byte receive buffer, the kernel granted %d (capped by "
            "net.core.rmem_max); fewer requests wait in flight. Raise it: sysctl -w net.core.rmem_max=%d",
            wanted,
            granted,
            wanted,
        )
    return granted
