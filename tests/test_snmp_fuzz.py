"""Mutated replies through the v1/v2c datagram path: `datagram_received` -> request matching ->
decode, then the walk loop, first in process, then over real UDP sockets on loopback.

MONITORD_FUZZ_COUNT sets how many mutated replies each part feeds (3,000 by default, a few
seconds); the full run is `MONITORD_FUZZ_COUNT=100000 pytest tests/test_snmp_fuzz.py`. The
replies are written here by hand (and requests read with pyasn1), independently of probes/ber.py.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from typing import Any

from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api, rfc1902, rfc1905

from monitord.model import Outcome, Secret, SnmpAuth
from probes.snmp import SnmpClient, parse_oid
from probes.snmpbase import Target
from probes.udp import Datagrams, ReplyBudget

COUNT = int(os.environ.get("MONITORD_FUZZ_COUNT", "3000"))
SEED = int(os.environ.get("MONITORD_FUZZ_SEED", "9"))
PER_REQUEST = 20  # mutated replies an agent sends before its good one
COLUMNS = (parse_oid("1.3.6.1.2.1.2.2.1.8"), parse_oid("1.3.6.1.2.1.31.1.1.1.6"))
ROWS = 30
CPU_PER_DATAGRAM = 0.005


def tlv(tag: int, contents: bytes) -> bytes:
    size = len(contents)
    if size < 0x80:
        return bytes((tag, size)) + contents
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + contents


def integer(number: int, tag: int = 0x02) -> bytes:
    return tlv(tag, number.to_bytes(max(1, (number.bit_length() + 8) // 8), "big", signed=True))


def oid_contents(arcs: list[int]) -> bytes:
    out = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        septets = [arc & 0x7F]
        while arc > 0x7F:
            arc >>= 7
            septets.append(arc & 0x7F | 0x80)
        out.extend(reversed(septets))
    return bytes(out)


def nested(depth: int, core: bytes) -> bytes:
    for _ in range(depth):
        core = tlv(0x30, core)
    return core


class Mutator:
    """Replies shaped like an agent's, with hostile parts in their right place (so the lengths
    around them hold), then with random damage to the octets on top."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def oid(self) -> bytes:
        rng = self.rng
        if rng.random() < 0.01:
            return oid_contents([1, 3] + [rng.randrange(128)] * rng.choice((126, 127, 500)))
        arcs = list(rng.choice(COLUMNS)) + [rng.choice((rng.randrange(1, ROWS + 5), rng.randrange(2**32)))]
        return oid_contents(arcs)

    def value(self) -> bytes:
        """Mostly what agents send; one value in 20 is hostile (and spoils its whole reply)."""
        rng = self.rng
        kind = rng.randrange(7, 12) if rng.random() < 0.05 else rng.randrange(7)
        if kind == 0:
            return integer(rng.randrange(-(2**31), 2**31))
        if kind == 1:
            return integer(rng.randrange(2**32), rng.choice((0x41, 0x42, 0x43)))
        if kind == 2:
            return integer(rng.randrange(2**64), 0x46)
        if kind == 3:
            return tlv(0x04, rng.randbytes(rng.randrange(40)))
        if kind == 4:
            return bytes((rng.choice((0x05, 0x80, 0x81, 0x82)), 0))
        if kind == 5:
            return tlv(rng.randrange(256), rng.randbytes(rng.randrange(12)))  # any tag, unknown ones too
        if kind == 6:
            return nested(rng.choice((2, 50, 1_000)), b"\x05\x00")  # kept as raw contents of an unknown type
        if kind == 7:
            return integer(2 ** rng.choice((31, 32, 63, 64, 65, 15_000, 30_000)), rng.choice((0x02, 0x41, 0x42, 0x43, 0x46)))
        if kind == 8:
            return tlv(0x40, rng.randbytes(rng.choice((3, 5))))
        if kind == 9:
            return bytes((rng.choice((0x02, 0x04, 0x30)), 0x84)) + rng.randbytes(4)  # a length far beyond the end
        if kind == 10:
            return tlv(0x06, b"\x2b\x06" + b"\xff" * rng.choice((5, 300)) + b"\x01")
        return tlv(0x06, self.oid())

    def reply(self, request_id: int, community: bytes = b"public") -> bytes:
        rng = self.rng
        names = [self.oid() for _ in range(rng.randrange(1, 20))]
        if rng.random() < 0.05:
            names[rng.randrange(len(names))] = b"\x2b\x06\x01" + b"\x81" * rng.choice((5, 6, 100, 5_000, 60_000)) + b"\x01"
        varbinds = b"".join(tlv(0x30, tlv(0x06, name) + self.value()) for name in names)
        header = [integer(request_id), integer(0), integer(0)]
        if rng.random() < 0.1:
            header[rng.randrange(3)] = integer(rng.choice((2**31, -(2**31) - 1, 2**15_000, 7)))
        pdu = tlv(rng.choice((0xA2,) * 9 + (0xA0, 0xA5, 0xA8)), b"".join(header) + tlv(0x30, varbinds))
        data = tlv(0x30, integer(rng.choice((1,) * 9 + (0, 3))) + tlv(0x04, community) + pdu)
        if rng.random() < 0.05:
            data = nested(rng.choice((1, 100, 1_000)), data)
        return self.damage(bytearray(data)) if rng.random() < 0.6 else data[:65_507]

    def damage(self, data: bytearray) -> bytes:
        rng = self.rng
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(len(data) + 1)
            edit = rng.randrange(7)
            if edit == 0:
                del data[at:]
            elif edit == 1 and at < len(data):
                data[at] ^= 1 << rng.randrange(8)
            elif edit == 2 and at < len(data):
                data[at] = rng.randrange(256)
            elif edit == 3:
                data[at:at] = rng.randbytes(rng.randrange(1, 8))
            elif edit == 4:
                del data[at : at + rng.randrange(1, 16)]
            elif edit == 5 and at < len(data):
                data[at : at + 1] = rng.choice((b"\x84\xff\xff\xff\xff", b"\x82\xff\xff", b"\x80", b"\x85\x00\x00\x00\x00\x01"))
            elif edit == 6:
                data[at:at] = rng.choice((b"\x1f\x81\x00", b"\x3f\x00", b"\x9f\x22\x00"))  # multi-octet tags
        return bytes(data[:65_507])


async def test_mutated_replies_through_datagram_received_never_raise_and_cost_little_cpu() -> None:
    loop = asyncio.get_running_loop()
    datagrams = Datagrams(ReplyBudget(2**20))
    agent, elsewhere = ("127.0.0.1", 161), ("127.0.0.1", 1161)
    mutator = Mutator(random.Random(SEED))
    outcomes: Counter[str] = Counter()
    slowest = 0.0
    future: asyncio.Future[Any] = loop.create_future()
    for n in range(COUNT):
        request_id = n % 2**31
        datagrams.waiting = {request_id: (1, b"public", agent, future)}
        data = mutator.reply(request_id)
        sender = elsewhere if n % 10 == 0 else agent
        started = time.thread_time()
        datagrams.datagram_received(data, sender)
        slowest = max(slowest, time.thread_time() - started)
        if future.done():
            outcomes["matched" if sender == agent else "matched from elsewhere"] += 1
            future = loop.create_future()
        else:
            outcomes["dropped"] += 1
    print(f"in process: {COUNT} mutated replies, {dict(outcomes)}, slowest {slowest * 1e3:.2f} ms of CPU")
    assert slowest < CPU_PER_DATAGRAM, f"one datagram cost {slowest * 1e3:.1f} ms of CPU"
    assert outcomes["matched"] > COUNT // 20 and outcomes["dropped"] > COUNT // 2, outcomes
    assert outcomes["matched from elsewhere"] == 0


def good_reply(message: Any) -> bytes:
    """The agent's real answer to a request: one row past each requested OID, the end after ROWS."""
    pdu = api.v2c.apiMessage.get_pdu(message)
    varbinds = []
    for oid, _ in api.v2c.apiPDU.get_varbinds(pdu):
        oid = tuple(oid)
        column = next((c for c in COLUMNS if oid[: len(c)] == c), None)
        row = oid[len(column)] if column and len(oid) > len(column) else 0
        if column is None or row >= ROWS:
            varbinds.append((rfc1902.ObjectName(oid), rfc1905.endOfMibView))
        else:
            varbinds.append((rfc1902.ObjectName(column + (row + 1,)), rfc1902.Counter64(row * 1000)))
    response = api.v2c.apiMessage.get_response(message)
    api.v2c.apiPDU.set_varbinds(api.v2c.apiMessage.get_pdu(response), varbinds)
    return encoder.encode(response)


class FuzzingAgent(asyncio.DatagramProtocol):
    """Answers each request with PER_REQUEST mutated replies carrying its request-id, then its
    good reply; stops mutating once `budget` mutated replies are sent. A retry (the same
    request-id: the good reply was lost when a burst overflowed the socket buffer) gets only the
    good reply."""

    def __init__(self, mutator: Mutator, budget: int) -> None:
        self.mutator = mutator
        self.budget = budget
        self.sent = 0
        self.answered: set[int] = set()
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        message, _ = decoder.decode(data, asn1Spec=api.v2c.Message())
        request_id = int(api.v2c.apiPDU.get_request_id(api.v2c.apiMessage.get_pdu(message)))
        mutated = 0 if request_id in self.answered else min(PER_REQUEST, self.budget - self.sent)
        self.answered.add(request_id)
        for _ in range(mutated):
            self.transport.sendto(self.mutator.reply(request_id), addr)
            self.sent += 1
        self.transport.sendto(good_reply(message), addr)


async def heartbeat(gaps: list[float]) -> None:
    """Ticks every 5 ms and records how late each tick was: the loop's stalls."""
    while True:
        before = time.monotonic()
        await asyncio.sleep(0.005)
        gaps.append(time.monotonic() - before - 0.005)


async def test_mutated_replies_over_udp_end_every_request_with_an_outcome() -> None:
    loop = asyncio.get_running_loop()
    escaped: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda loop, context: escaped.append(context))
    transport, agent = await loop.create_datagram_endpoint(
        lambda: FuzzingAgent(Mutator(random.Random(SEED + 1)), COUNT), local_addr=("127.0.0.1", 0)
    )
    target = Target("127.0.0.1", transport.get_extra_info("sockname")[1], SnmpAuth("v2", "2c", community=Secret("public", "t")))
    client = SnmpClient(timeout=1.0, retries=2, walk_max_requests=100, walk_timeout=10.0)
    gaps: list[float] = []
    beating = asyncio.create_task(heartbeat(gaps))
    results: Counter[Outcome] = Counter()

    async def worker(rng: random.Random) -> None:
        while agent.sent < COUNT:
            if rng.random() < 0.3:
                result = await client.get(target, [COLUMNS[0] + (rng.randrange(1, ROWS),)])
            else:
                result = await client.walk(target, COLUMNS[: rng.randrange(1, 3)], max_repetitions=rng.choice((1, 10)))
            results[result.outcome] += 1

    try:
        await asyncio.wait_for(asyncio.gather(*(worker(random.Random(SEED + k)) for k in range(2))), 60 + COUNT / 500)
        final = await client.walk(target, COLUMNS)  # the loop and the socket still work
    finally:
        beating.cancel()
        client.close()
        transport.close()
    print(
        f"over UDP: {agent.sent} mutated replies, {len(agent.answered)} requests, {dict(results)}, "
        f"worst loop stall {max(gaps) * 1e3:.0f} ms"
    )
    assert escaped == []
    assert agent.sent == COUNT
    assert set(results) <= {Outcome.OK, Outcome.AGENT_ERROR} and results[Outcome.OK] > 0, results
    assert final.outcome is Outcome.OK and len(final.varbinds) == 2 * ROWS
    assert max(gaps) < 1.0, f"the loop stalled for {max(gaps):.2f} s"  # wall time: CPU per datagram is bounded above
