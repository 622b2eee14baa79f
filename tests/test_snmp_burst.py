"""Bursts of v1/v2c requests against net-snmp's agent on loopback: the client's socket gets the
receive buffer it asks for (or a warning naming net.core.rmem_max), and a burst larger than that
buffer can hold queues in the client instead of losing replies in the kernel."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import pytest

from monitord.model import Outcome, Secret, SnmpAuth
from probes.snmp import SnmpClient, parse_oid
from probes.snmpbase import Target
from probes.udp import ReplyBudget, reply_cost
from tests.snmp_fixtures import Snmpd, snmpd

__all__ = ["snmpd"]

SYS_UPTIME = parse_oid("1.3.6.1.2.1.1.3.0")
PUBLIC = SnmpAuth("snmpd", "2c", community=Secret("public", "test"))
RMEM_MAX = int(Path("/proc/sys/net/core/rmem_max").read_text())


async def test_a_burst_beyond_the_receive_buffer_loses_no_reply(snmpd: Snmpd) -> None:
    # 8 KiB in the kernel's accounting holds about ten replies; 1,000 GETs go out at once.
    client = SnmpClient(timeout=1.0, retries=0, receive_buffer=4096)
    try:
        target = Target("127.0.0.1", snmpd.port, PUBLIC)
        results = await asyncio.gather(*(client.get(target, [SYS_UPTIME]) for _ in range(1000)))
        granted = client.receive_buffers[socket.AF_INET]
    finally:
        client.close()
    assert granted == 8192
    assert granted // reply_cost(b"x" * 50, 1, None) < 10  # so nearly all of the burst had to wait
    outcomes = [result.outcome for result in results]
    assert outcomes.count(Outcome.TIMEOUT) == 0
    assert outcomes == [Outcome.OK] * 1000
    assert all(result.varbinds[0].oid == SYS_UPTIME for result in results)


async def test_a_hundred_walks_at_once_through_a_small_buffer_lose_no_reply(snmpd: Snmpd) -> None:
    # Each GETBULK reply of 25 rows x 3 columns needs more than the whole 8 KiB: one at a time.
    client = SnmpClient(timeout=1.0, retries=0, receive_buffer=4096)
    columns = [parse_oid(f"1.3.6.1.2.1.2.2.1.{column}") for column in (1, 2, 8)]  # ifIndex, ifDescr, ifOperStatus
    try:
        target = Target("127.0.0.1", snmpd.port, PUBLIC)
        results = await asyncio.gather(*(client.walk(target, columns, 25) for _ in range(100)))
    finally:
        client.close()
    assert [result.outcome for result in results] == [Outcome.OK] * 100
    assert all(len(result.varbinds) >= 3 and len(result.varbinds) % 3 == 0 for result in results)  # every column whole


async def test_the_granted_receive_buffer_is_read_back(snmpd: Snmpd, caplog: pytest.LogCaptureFixture) -> None:
    target = Target("127.0.0.1", snmpd.port, PUBLIC)
    with caplog.at_level(logging.WARNING, logger="monitord.snmp"):
        client = SnmpClient(timeout=1.0, retries=0, receive_buffer=65536)
    try:
        assert client.receive_buffers == {socket.AF_INET: 131072}  # at start; Linux doubles what it grants
        assert not caplog.records
        assert (await client.get(target, [SYS_UPTIME])).outcome is Outcome.OK
        assert client.receive_buffers == {socket.AF_INET: 131072}
    finally:
        client.close()


@pytest.mark.skipif(RMEM_MAX >= 2**29, reason="net.core.rmem_max too large to exceed")
async def test_a_capped_receive_buffer_is_logged_with_the_sysctl_to_raise(snmpd: Snmpd, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="monitord.snmp"):
        client = SnmpClient(timeout=1.0, retries=0, receive_buffer=4 * RMEM_MAX)
    try:
        [warning] = caplog.records  # at start, before any request
        assert client.receive_buffers == {socket.AF_INET: 2 * RMEM_MAX}
        assert (await client.get(Target("127.0.0.1", snmpd.port, PUBLIC), [SYS_UPTIME])).outcome is Outcome.OK
    finally:
        client.close()
    assert warning.levelno == logging.WARNING
    assert "net.core.rmem_max" in warning.getMessage()
    assert f"granted {2 * RMEM_MAX}" in warning.getMessage()


async def test_a_cancelled_wait_for_the_budget_lets_the_next_request_through() -> None:
    budget = ReplyBudget(1000)
    assert await budget.take(800) == 800
    big = asyncio.ensure_future(budget.take(900))
    small = asyncio.ensure_future(budget.take(100))
    await asyncio.sleep(0)
    assert not big.done() and not small.done()  # first come, first served: small waits behind big
    big.cancel()
    await asyncio.sleep(0)
    assert big.cancelled() and await small == 100
    budget.give(800)
    budget.give(100)
    assert budget.free == 1000
    assert await budget.take(5000) == 1000  # larger than the whole buffer: goes out alone
