"""The v1/v2c path of the SNMP client (one UDP socket per address family, probes/ber.py): how
replies are matched, retries, IPv6, many agents at once. The agents here read and write with
pysnmp's own pyasn1 codec, independently of probes/ber.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api, rfc1902

from monitord.model import Outcome, Secret, SnmpAuth
from probes.snmp import SnmpClient, parse_oid
from probes.snmpbase import Target

SYS_UPTIME = parse_oid("1.3.6.1.2.1.1.3.0")


def v2c(community: str = "public") -> SnmpAuth:
    return SnmpAuth(community, "2c", community=Secret(community, "test"))


def response(
    request: Any,
    value: int,
    *,
    community: bytes | None = None,
    request_id: int | None = None,
    version: int | None = None,
) -> bytes:
    """pysnmp's Response to `request` holding `value`, with any field overridden."""
    message = api.v2c.apiMessage.get_response(request)
    pdu = api.v2c.apiMessage.get_pdu(message)
    oid = api.v2c.apiPDU.get_varbinds(api.v2c.apiMessage.get_pdu(request))[0][0]
    api.v2c.apiPDU.set_varbinds(pdu, [(oid, rfc1902.TimeTicks(value))])
    if request_id is not None:
        api.v2c.apiPDU.set_request_id(pdu, request_id)
    if community is not None:
        api.v2c.apiMessage.set_community(message, community)
    data = encoder.encode(message)
    return data if version is None else data.replace(b"\x02\x01\x01", bytes((2, 1, version)), 1)


@dataclass
class Agent(asyncio.DatagramProtocol):
    """Answers the n-th request (from 0) with the datagrams `answer(n, request)` returns, after
    `delays[n]` seconds if given."""

    answer: Callable[[int, Any], list[bytes]]
    delays: dict[int, float] = field(default_factory=dict)
    seen: list[tuple[int, Any]] = field(default_factory=list)  # (request-id, client address)
    transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        request, _ = decoder.decode(data, asn1Spec=api.v2c.Message())
        self.seen.append((int(api.v2c.apiPDU.get_request_id(api.v2c.apiMessage.get_pdu(request))), addr))
        n = len(self.seen) - 1
        for datagram in self.answer(n, request):
            asyncio.get_running_loop().call_later(self.delays.get(n, 0), self.transport.sendto, datagram, addr)


async def start_agent(answer: Callable[[int, Any], list[bytes]], host: str = "127.0.0.1") -> tuple[Agent, int]:
    transport, agent = await asyncio.get_running_loop().create_datagram_endpoint(lambda: Agent(answer), local_addr=(host, 0))
    return agent, transport.get_extra_info("sockname")[1]


@pytest.fixture
async def client() -> AsyncIterator[SnmpClient]:
    snmp = SnmpClient(timeout=0.2, retries=1)
    yield snmp
    snmp.close()


async def test_a_retry_resends_the_same_request_so_a_late_reply_counts(client: SnmpClient) -> None:
    """Like net-snmp, unlike pysnmp (which gives each retry a new request-id): the reply to the
    first send arrives after the retry went out and still answers the request."""
    agent, port = await start_agent(lambda n, request: [response(request, 42)] if n == 0 else [])
    agent.delays[0] = 0.3
    started = time.monotonic()
    result = await client.get(Target("127.0.0.1", port, v2c()), [SYS_UPTIME])
    assert result.outcome is Outcome.OK, result.detail
    assert [vb.value for vb in result.varbinds] == [42]
    assert time.monotonic() - started >= 0.3
    assert len(agent.seen) == 2 and agent.seen[0] == agent.seen[1]


async def test_no_answer_times_out_after_every_retry(client: SnmpClient) -> None:
    agent, port = await start_agent(lambda n, request: [])
    started = time.monotonic()
    result = await client.get(Target("127.0.0.1", port, v2c()), [SYS_UPTIME])
    assert (result.outcome, result.detail) == (Outcome.TIMEOUT, "no response")
    assert 0.4 <= time.monotonic() - started < 1.0
    assert len(agent.seen) == 2


async def test_replies_that_do_not_match_the_request_are_dropped(client: SnmpClient) -> None:
    def answer(n: int, request: Any) -> list[bytes]:
        request_id = int(api.v2c.apiPDU.get_request_id(api.v2c.apiMessage.get_pdu(request)))
        return [
            b"\x30\x03\x02\x01\x01",
            response(request, 1, community=b"other"),
            response(request, 2, request_id=request_id + 1),
            response(request, 3, version=0),
            response(request, 42),
            response(request, 4),
        ]

    agent, port = await start_agent(answer)
    result = await client.get(Target("127.0.0.1", port, v2c()), [SYS_UPTIME])
    assert [vb.value for vb in result.varbinds] == [42]
    assert len(agent.seen) == 1


async def test_ipv6_loopback(client: SnmpClient) -> None:
    agent, port = await start_agent(lambda n, request: [response(request, 6)], host="::1")
    result = await client.get(Target("::1", port, v2c()), [SYS_UPTIME])
    assert [vb.value for vb in result.varbinds] == [6]
    assert agent.seen[0][1][0] == "::1"


async def test_many_agents_at_once_share_one_socket() -> None:
    agents = [await start_agent(lambda n, request, k=k: [response(request, 1000 + k)]) for k in range(5)]
    targets = [(Target("127.0.0.1", port, v2c(f"c{k}")), 1000 + k) for k, (_, port) in enumerate(agents)]
    patient = SnmpClient(timeout=2.0, retries=1)  # 200 requests at once to five Python agents on a busy machine
    try:
        results = await asyncio.gather(*(patient.get(target, [SYS_UPTIME]) for target, _ in targets * 40))
    finally:
        patient.close()
    assert [[vb.value for vb in result.varbinds] for result in results] == [[value] for _, value in targets * 40]
    assert len({address for agent, _ in agents for _, address in agent.seen}) == 1
    assert len({request_id for agent, _ in agents for request_id, _ in agent.seen}) == 200


def tlv(tag: int, contents: bytes) -> bytes:
    size = len(contents)
    length = bytes((size,)) if size < 0x80 else bytes((0x82,)) + size.to_bytes(2, "big")
    return bytes((tag,)) + length + contents


def raw_response(request: Any, oid: bytes, status: bytes = b"\x00") -> bytes:
    """A Response to `request` written by hand, so it can carry what pyasn1 will not encode: an
    OID's contents octets `oid` (NULL value) and the error-status contents `status`."""
    request_id = int(api.v2c.apiPDU.get_request_id(api.v2c.apiMessage.get_pdu(request)))
    varbind = tlv(0x30, tlv(0x06, oid) + b"\x05\x00")
    pdu = tlv(
        0xA2, tlv(0x02, request_id.to_bytes(4, "big", signed=True)) + tlv(0x02, status) + b"\x02\x01\x01" + tlv(0x30, varbind)
    )
    return tlv(0x30, b"\x02\x01\x01" + tlv(0x04, b"public") + pdu)


@pytest.fixture
async def loop_errors() -> list[dict[str, Any]]:
    """What reaches the event loop's exception handler (an exception escaping a protocol callback)."""
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
    return errors


async def test_a_reply_too_long_to_print_is_dropped_not_raised(client: SnmpClient, loop_errors: list[Any]) -> None:
    """An error-status of 2**15000 made describe_error raise ValueError out of get/walk."""
    huge_status = b"\x01" + b"\x00" * 1875
    agent, port = await start_agent(lambda n, request: [raw_response(request, bytes.fromhex("2b06010201010300"), huge_status)])
    target = Target("127.0.0.1", port, v2c())
    assert (await client.get(target, [SYS_UPTIME])).outcome is Outcome.TIMEOUT
    assert (await client.walk(target, [SYS_UPTIME[:-1]])).outcome is Outcome.TIMEOUT
    assert len(agent.seen) == 4 and loop_errors == []


async def test_huge_sub_identifiers_in_every_reply_cost_no_cpu(client: SnmpClient, loop_errors: list[Any]) -> None:
    """Each such datagram cost 0.37 s of CPU before its request-id was even read."""
    huge = b"\x2b\x06\x01" + b"\x81" * 64_999 + b"\x01"
    agent, port = await start_agent(lambda n, request: [raw_response(request, huge)] * 3)
    started = time.process_time()
    result = await client.walk(Target("127.0.0.1", port, v2c()), [SYS_UPTIME[:-1]])
    assert result.outcome is Outcome.TIMEOUT
    assert len(agent.seen) == 2  # 6 datagrams of 65 kB answered them
    assert time.process_time() - started < 0.15
    assert loop_errors == []


async def test_a_forged_reply_from_another_address_or_port_is_ignored(client: SnmpClient) -> None:
    """An attacker who knows the request-id (and community) answers first, from 127.0.0.1 on
    another port and from 127.0.0.2; only the agent's own reply, 50 ms later, counts."""
    loop = asyncio.get_running_loop()
    forgers = [
        (await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=(host, 0)))[0]
        for host in ("127.0.0.1", "127.0.0.2")
    ]
    seen: list[tuple[int, Any]] = []

    def answer(n: int, request: Any) -> list[bytes]:
        for forger in forgers:
            forger.sendto(response(request, 666), seen[n][1])
        return [response(request, 42)]

    agent, port = await start_agent(answer)
    agent.seen = seen
    agent.delays = {0: 0.05, 1: 0.05}
    try:
        result = await client.get(Target("127.0.0.1", port, v2c()), [SYS_UPTIME])
    finally:
        for forger in forgers:
            forger.close()
    assert [vb.value for vb in result.varbinds] == [42]
    assert len(seen) == 1
