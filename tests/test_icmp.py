"""The ICMP probe against the real kernel: loopback answers, nftables makes targets silent or
refuses sends, and a network namespace lets the unprivileged ping-socket path run too."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from monitord.model import NodeRef, Outcome
from probes.icmp import REPLY_COST, Pinger, PingResult, _only_ours, _open_socket, checksum_ok, parse_reply, to_sample, window_for

ROOT = Path(__file__).resolve().parent.parent
NODE = NodeRef("device", "sisli-dslam-01")
TOKEN = b"monitord"


@pytest.fixture
async def pinger() -> AsyncIterator[Pinger]:
    async with await Pinger.open() as opened:
        yield opened


@pytest.fixture
def nft() -> Iterator[Callable[[str, str], None]]:
    """Rules in a table of our own (deleted afterwards): nft("input", "ip daddr X ... drop")."""
    table = f"monitord_test_{os.getpid()}"
    chains = "".join(
        f"add chain inet {table} {hook} {{ type filter hook {hook} priority 0; policy accept; }}\n"
        for hook in ("input", "output")
    )
    subprocess.run(["nft", "-f", "-"], input=f"add table inet {table}\n{chains}", text=True, check=True)

    def add(chain: str, rule: str) -> None:
        subprocess.run(["nft", f"add rule inet {table} {chain} {rule}"], check=True)

    try:
        yield add
    finally:
        subprocess.run(["nft", "delete", "table", "inet", table], check=True)


def echo_reply(ident: int, seq: int, token: bytes = TOKEN, kind: int = 0) -> bytes:
    header = bytes([kind, 0, 0, 0]) + ident.to_bytes(2, "big") + seq.to_bytes(2, "big") + token
    checksum = 0xFFFF - int.from_bytes(header, "big") % 0xFFFF
    return header[:2] + checksum.to_bytes(2, "big") + header[4:]


def ipv4(payload: bytes, src: str = "127.0.0.1", dst: str = "127.0.0.1") -> bytes:
    return (
        bytes([0x45, 0, 0, 20 + len(payload), 0, 0, 0, 0, 64, 1, 0, 0]) + socket.inet_aton(src) + socket.inet_aton(dst) + payload
    )


# --- parsing (pure) ----------------------------------------------------------------------------


def test_parse_accepts_our_reply_and_ignores_others() -> None:
    ours = ipv4(echo_reply(4242, 7))
    assert checksum_ok(echo_reply(4242, 7))
    assert parse_reply(ours, socket.AF_INET, True, 4242, TOKEN) == (7, None, None)
    assert parse_reply(ours, socket.AF_INET, True, 4243, TOKEN) is None
    assert parse_reply(ipv4(echo_reply(4242, 7, b"someone")), socket.AF_INET, True, 4242, TOKEN) is None
    assert parse_reply(ipv4(echo_reply(4242, 7, kind=8)), socket.AF_INET, True, 4242, TOKEN) is None
    corrupted = bytearray(ours)
    corrupted[-1] ^= 0x01
    assert parse_reply(bytes(corrupted), socket.AF_INET, True, 4242, TOKEN) is None
    assert parse_reply(ours[:30], socket.AF_INET, True, 4242, TOKEN) is None


def test_parse_datagram_reply_matches_on_sequence_only() -> None:
    rewritten = echo_reply(ident=999, seq=3)
    assert parse_reply(rewritten, socket.AF_INET, False, 4242, TOKEN) == (3, None, None)
    reply6 = echo_reply(999, 3, kind=129)
    assert parse_reply(reply6, socket.AF_INET6, False, 4242, TOKEN) == (3, None, None)


def test_parse_icmp_error_names_the_original_destination() -> None:
    original = ipv4(echo_reply(4242, 11, kind=8), src="127.0.0.1", dst="127.77.1.1")
    unreachable = bytes([3, 1, 0, 0, 0, 0, 0, 0]) + original
    checksum = 0xFFFF - int.from_bytes(unreachable, "big") % 0xFFFF
    unreachable = unreachable[:2] + checksum.to_bytes(2, "big") + unreachable[4:]
    parsed = parse_reply(ipv4(unreachable), socket.AF_INET, True, 4242, TOKEN)
    assert parsed == (11, "127.77.1.1", "destination unreachable (code 1)")
    assert parse_reply(ipv4(unreachable), socket.AF_INET, True, 1, TOKEN) is None


def test_to_sample() -> None:
    ok = to_sample(PingResult("127.0.0.1", 4, 3, (1.0, 5.0, 2.0)), NODE, 100.0)
    assert (ok.outcome, ok.probe, ok.at) == (Outcome.OK, "icmp", 100.0)
    assert ok.values == {"rtt_ms": 2.0, "loss": 0.25}
    silent = to_sample(PingResult("127.0.0.1", 3, 0, ()), NODE, 100.0)
    assert (silent.outcome, silent.values["loss"]) == (Outcome.TIMEOUT, 1.0)
    refused = to_sample(PingResult("127.0.0.1", 0, 0, (), "EPERM: Operation not permitted"), NODE, 1.0)
    assert (refused.outcome, refused.detail) == (Outcome.UNREACHABLE, "EPERM: Operation not permitted")


# --- the real kernel ---------------------------------------------------------------------------


async def test_ping_loopback_ipv4_and_ipv6(pinger: Pinger) -> None:
    assert pinger.modes == {"IPv4": "raw", "IPv6": "raw"}
    for address in ("127.0.0.1", "::1", "0:0::1"):
        result = await pinger.ping(address, count=3, interval=0.01, timeout=1.0)
        assert (result.address, result.sent, result.received, result.error) == (address, 3, 3, None)
        assert all(0 <= rtt < 1000 for rtt in result.rtt_ms)  # 0: counted from the send (tests/test_icmp_c.py)
        assert to_sample(result, NODE, 0.0).outcome is Outcome.OK


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])  # read in C (raw IPv4), and in Python
async def test_a_reply_is_timed_by_its_arrival_not_by_when_a_busy_loop_reads_it(pinger: Pinger, address: str) -> None:
    """The loop held for 300 ms (a GC pass, a long step) just after the echo went out: the reply
    waits in the socket meanwhile, and without the kernel's stamp it read as a 300 ms round trip,
    failing the latency rule of every line pinged at such a moment."""
    ping = asyncio.create_task(pinger.ping(address, count=1, timeout=2.0))
    await asyncio.sleep(0)  # the ping's first step sends its echo
    assert pinger.in_flight == 1
    time.sleep(0.3)
    result = await ping
    assert result.received == 1
    assert result.rtt_ms[0] < 100  # loopback: well under 1 ms alone


async def test_sweep_of_thousands_all_answer(pinger: Pinger) -> None:
    hosts = [f"127.2.{i // 250}.{i % 250 + 1}" for i in range(5000)] + ["::1"]
    started = time.monotonic()
    results = await pinger.sweep(hosts, count=2, timeout=2.0, interval=0.0)
    assert time.monotonic() - started < 6.0  # 0.2-0.4 s alone; 2-3 s seen at a load of 13 on 2 cores
    assert set(results) == set(hosts)
    assert all(r.sent == 2 and r.received == 2 and r.error is None for r in results.values())


async def test_silent_target_times_out_while_neighbours_answer(pinger: Pinger, nft) -> None:
    nft("input", "ip daddr 127.77.0.9 icmp type echo-request drop")
    results = await pinger.sweep(["127.77.0.9", "127.77.0.10"], count=2, timeout=0.3, interval=0.05)
    silent, alive = results["127.77.0.9"], results["127.77.0.10"]
    assert (silent.sent, silent.received, silent.error, silent.loss) == (2, 0, None, 1.0)
    assert (alive.sent, alive.received) == (2, 2)
    sample = to_sample(silent, NODE, 5.0)
    assert (sample.outcome, sample.values) == (Outcome.TIMEOUT, {"loss": 1.0})


async def test_output_drop_is_unreachable_at_once(pinger: Pinger, nft) -> None:
    nft("output", "ip daddr 127.77.0.20 icmp type echo-request drop")
    started = time.monotonic()
    result = await pinger.ping("127.77.0.20", count=3, interval=0.2, timeout=2.0)
    assert time.monotonic() - started < 0.5
    assert (result.sent, result.received) == (0, 0)
    assert result.error is not None and result.error.startswith("EPERM")
    assert to_sample(result, NODE, 0.0).outcome is Outcome.UNREACHABLE


async def test_icmp_unreachable_from_the_network(pinger: Pinger, nft) -> None:
    nft("input", "ip daddr 127.77.0.30 icmp type echo-request reject with icmp type host-unreachable")
    result = await pinger.ping("127.77.0.30", count=1, timeout=2.0)
    assert (result.sent, result.received) == (1, 0)
    assert result.error == "destination unreachable (code 1)"
    assert to_sample(result, NODE, 0.0).outcome is Outcome.UNREACHABLE


async def test_window_limits_echoes_in_flight(nft) -> None:
    nft("input", "ip daddr 127.77.1.0/24 icmp type echo-request drop")
    silent = [f"127.77.1.{i}" for i in range(1, 21)]
    async with await Pinger.open(max_in_flight=10) as narrow:
        started = time.monotonic()
        results = await narrow.sweep(silent, count=1, timeout=0.2)
        elapsed = time.monotonic() - started
    assert all(r.sent == 1 and r.received == 0 for r in results.values())
    assert 0.4 <= elapsed < 0.6


async def test_a_silent_region_ends_at_its_timeout_and_holds_up_no_answered_sweep(pinger: Pinger, nft) -> None:
    """Daemon-like: 20 device sweeps of 50 silent addresses, then 20 of 50 answering ones, all at
    once. With the old 200-echo window both took 15.5 s (measured): the silent echoes held the
    window 3,000 echo-seconds and the answering sweeps queued behind them."""
    nft("input", "ip daddr 127.78.0.0/16 icmp type echo-request drop")
    silent = [[f"127.78.{d}.{i}" for i in range(1, 51)] for d in range(20)]
    answering = [[f"127.5.{d}.{i}" for i in range(1, 51)] for d in range(20)]
    assert pinger.window >= 3 * 1000  # an 8 MiB buffer (root may force it): about 3,800

    async def timed(hosts: list[str]) -> tuple[float, dict[str, PingResult]]:
        started = time.monotonic()
        results = await pinger.sweep(hosts, count=3, timeout=1.0, interval=0.1)
        return time.monotonic() - started, results

    sweeps = [asyncio.create_task(timed(hosts)) for hosts in silent]
    await asyncio.sleep(0)
    answered = await asyncio.gather(*(timed(hosts) for hosts in answering))
    quiet = await asyncio.gather(*sweeps)
    assert all(r.sent == 3 and r.received == 3 for _, results in answered for r in results.values())
    assert max(seconds for seconds, _ in answered) < 4.0  # 0.4 s alone, 1.0 s at a load of 13
    assert all((r.sent, r.received, r.error) == (3, 0, None) for _, results in quiet for r in results.values())
    assert max(seconds for seconds, _ in quiet) < 5.0  # 1.4 s alone


async def test_a_silent_target_times_out_on_time_while_replies_keep_coming(pinger: Pinger, nft) -> None:
    """The reaper was re-armed for the same deadline at every send, so while other sweeps kept
    replies coming (a whole inventory's sweep: minutes) no echo ever timed out: the silent
    address's sweep ended only when the traffic did (3 s here) and every timed-out echo stayed in
    memory (67 MB at 100,000 lines)."""
    nft("input", "ip daddr 127.77.0.70 icmp type echo-request drop")
    busy_until = time.monotonic() + 3.0
    answering = [f"127.6.{i // 250}.{i % 250 + 1}" for i in range(500)]

    async def traffic() -> None:
        while time.monotonic() < busy_until:
            await pinger.sweep(answering, count=1, timeout=1.0, interval=0.0)

    busy = asyncio.create_task(traffic())
    await asyncio.sleep(0.05)
    started = time.monotonic()
    result = await pinger.ping("127.77.0.70", count=1, timeout=0.3)
    took = time.monotonic() - started
    await busy
    assert (result.sent, result.received) == (1, 0)
    assert took < 2.0, f"a 0.3 s timeout took {took:.2f} s"  # 0.3 s alone


async def test_a_full_window_goes_out_a_batch_per_turn_of_the_loop(pinger: Pinger, nft) -> None:
    """Thousands of sends in one callback would hold the loop: the sweep's first turn sends 512."""
    nft("input", "ip daddr 127.79.0.0/16 icmp type echo-request drop")
    hosts = [f"127.79.{i // 250}.{i % 250 + 1}" for i in range(2000)]
    sweep = asyncio.create_task(pinger.sweep(hosts, count=1, timeout=0.3))
    await asyncio.sleep(0)  # the sweep's first step runs, then this one
    assert pinger.in_flight == 512
    results = await sweep
    assert all((r.sent, r.received) == (1, 0) for r in results.values())


async def test_forged_and_garbled_replies_to_an_echo_in_flight_are_ignored(pinger: Pinger, nft) -> None:
    """A reply with the right sequence, identifier and token counts only from the echo's target and
    with a valid checksum: IP_HDRINCL lets the test forge the source address."""
    nft("input", "ip daddr 127.77.0.60 icmp type echo-request drop")
    sweep = asyncio.create_task(pinger.sweep(["127.77.0.60"], count=1, timeout=2.0))
    await asyncio.sleep(0.05)
    assert pinger.in_flight == 1
    reply = echo_reply(pinger._ident, pinger._flight.seq, pinger._token)
    garbled = reply[:2] + bytes([reply[2] ^ 0x01]) + reply[3:]
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as forger:
        forger.sendto(ipv4(reply, src="127.77.0.61"), ("127.0.0.1", 0))
        forger.sendto(ipv4(garbled, src="127.77.0.60"), ("127.0.0.1", 0))
        await asyncio.sleep(0.1)
        assert pinger.in_flight == 1 and not sweep.done()
        forger.sendto(ipv4(reply, src="127.77.0.60"), ("127.0.0.1", 0))
        result = (await asyncio.wait_for(sweep, 1.0))["127.77.0.60"]
    assert (result.sent, result.received, result.error) == (1, 1, None)


def test_window_is_what_the_receive_buffer_holds() -> None:
    assert window_for(8 * 2**20) == 8 * 2**20 // (2 * REPLY_COST) > 3000
    assert window_for(212_992) == 97  # the kernel's default buffer, without the privilege to force more
    assert window_for(100) == 1


async def test_two_pingers_each_count_only_their_own_replies() -> None:
    hosts = [f"127.3.0.{i}" for i in range(1, 201)]
    async with await Pinger.open() as first, await Pinger.open() as second:
        a, b = await asyncio.gather(first.sweep(hosts, 3, 1.0, 0.0), second.sweep(hosts, 3, 1.0, 0.0))
    assert all(r.sent == 3 and r.received == 3 for r in [*a.values(), *b.values()])


@pytest.mark.parametrize(("family", "host"), [(socket.AF_INET, "127.3.1.1"), (socket.AF_INET6, "::1")])
async def test_the_kernel_keeps_other_identifiers_replies_off_a_raw_socket(family: socket.AddressFamily, host: str) -> None:
    """Raw sockets filtered as a pinger's are: one for the pinger's identifier gets its replies,
    one for another identifier none of them (unfiltered, both would get every reply)."""

    def drained(sock: socket.socket) -> int:
        count = 0
        with contextlib.suppress(BlockingIOError):
            while sock.recv(2048):
                count += 1
        return count

    def filtered(ident: int) -> socket.socket:
        """What came before the filter stays queued (other workers' echoes meanwhile): drained."""
        sock = _open_socket(family, raw=True)
        _only_ours(sock, family, ident)
        drained(sock)
        return sock

    async with await Pinger.open() as pinger:
        with filtered(pinger._ident) as same, filtered(pinger._ident ^ 0x5A5A) as other, _open_socket(family, raw=True) as bare:
            result = (await pinger.sweep([host], 5, 1.0, 0.0))[host]
            await asyncio.sleep(0.05)
            # another process's pinger may draw the same identifier (1 in 65,536): hence `>=`
            assert result.received == 5 and drained(same) >= 5 and drained(other) == 0
            assert drained(bare) >= 5  # what the filter spares


async def test_bad_input_and_close_are_results_not_exceptions(nft) -> None:
    nft("input", "ip daddr 127.77.0.40 icmp type echo-request drop")
    pinger = await Pinger.open()
    assert (await pinger.ping("not-an-address")).error == "invalid address"
    waiting = asyncio.create_task(pinger.ping("127.77.0.40", count=3, interval=0.1, timeout=5.0))
    await asyncio.sleep(0.05)
    await pinger.close()
    result = await asyncio.wait_for(waiting, 1.0)
    assert (result.received, result.error) == (0, "pinger closed")
    assert (await pinger.ping("127.0.0.1")).error == "pinger closed"


async def test_cancelled_sweep_leaves_the_pinger_usable(pinger: Pinger, nft) -> None:
    nft("input", "ip daddr 127.77.0.50 icmp type echo-request drop")
    task = asyncio.create_task(pinger.sweep(["127.77.0.50", "127.0.0.1"], 3, 5.0, 1.0))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await pinger.ping("127.0.0.1", count=2, interval=0.0)).received == 2


# --- the unprivileged ping socket, inside a namespace of our own ---------------------------------

IN_NAMESPACE = """
import asyncio, json
from probes.icmp import Pinger

async def main():
    async with await Pinger.open(prefer_raw=False) as pinger:
        hosts = ["127.0.0.1", "::1", "127.77.0.9", "127.77.0.20"]
        hosts += [f"127.4.0.{i}" for i in range(1, 101)]
        results = await pinger.sweep(hosts, count=2, timeout=0.3, interval=0.05)
        print(json.dumps({"modes": pinger.modes,
                          "results": {a: [r.sent, r.received, r.error] for a, r in results.items()}}))

asyncio.run(main())
"""


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"monitord_icmp_{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        inside = ["ip", "netns", "exec", name]
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        subprocess.run([*inside, "sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647"], check=True)
        rules = (
            "add table inet t\n"
            "add chain inet t in { type filter hook input priority 0; }\n"
            "add chain inet t out { type filter hook output priority 0; }\n"
            "add rule inet t in ip daddr 127.77.0.9 icmp type echo-request drop\n"
            "add rule inet t out ip daddr 127.77.0.20 icmp type echo-request drop\n"
        )
        subprocess.run([*inside, "nft", "-f", "-"], input=rules, text=True, check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def test_datagram_ping_socket_without_raw(namespace: str) -> None:
    done = subprocess.run(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", IN_NAMESPACE],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    report = json.loads(done.stdout)
    assert report["modes"] == {"IPv4": "datagram", "IPv6": "datagram"}
    results = report["results"]
    assert results.pop("127.77.0.9") == [2, 0, None]
    sent, received, error = results.pop("127.77.0.20")
    assert (sent, received) == (0, 0) and error.startswith("EPERM")
    assert all(r == [2, 2, None] for r in results.values()), results
