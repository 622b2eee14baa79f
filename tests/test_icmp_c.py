"""The C part of probes/icmp.py (probes/_icmp.c) against its Python reference and the real kernel.

`_icmp.parse_v4`, the parser the raw IPv4 socket's replies go through, must take exactly the
packets `parse_reply` takes, with the same sequence, address and error: hypothesis writes echo
replies and ICMP errors, ours and others', and damages them (identifier, token, checksum, IP
header length, truncation, any octet). Then sweeps on loopback where the C path (raw IPv4) and
the Python path (IPv6) take turns within one sweep, sends the network refuses in the middle of
a sendmmsg batch, and forged ICMP errors."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probes import _icmp
from probes.icmp import _ERRORS, Pinger, parse_reply
from tests.depth import examples
from tests.test_icmp import echo_reply, ipv4, nft  # noqa: F401  (nft: a fixture)

IDENT, TOKEN = 0x4242, b"monitord"


def with_checksum(message: bytes) -> bytes:
    message = message[:2] + b"\0\0" + message[4:]
    padded = message + b"\0" * (len(message) % 2)
    checksum = 0xFFFF - int.from_bytes(padded, "big") % 0xFFFF
    return message[:2] + checksum.to_bytes(2, "big") + message[4:]


def ip_header(payload: bytes, src: bytes, dst: bytes, options: bytes = b"", proto: int = 1) -> bytes:
    ihl = 5 + len(options) // 4
    return bytes([0x40 | ihl, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0]) + src + dst + options + payload


ADDRESSES = st.sampled_from([bytes([127, 0, 0, 1]), bytes([127, 9, 8, 7]), bytes([10, 0, 0, 1])])
OPTIONS = st.sampled_from([b"", b"\x01" * 4, b"\x01" * 40])


@st.composite
def packets(draw: st.DrawFn) -> bytes:
    """A raw IPv4 datagram as the socket could deliver it: mostly ours, sometimes damaged."""
    ident = draw(st.sampled_from([IDENT, IDENT, IDENT, IDENT ^ 1, 0]))
    token = draw(st.sampled_from([TOKEN, TOKEN, TOKEN, b"someone!"]))
    seq = draw(st.integers(0, 0xFFFF))
    kind = draw(st.sampled_from([0, 0, 3, 11, 8, 5]))
    if kind in (3, 11, 5):
        original = with_checksum(bytes([8, 0, 0, 0]) + ident.to_bytes(2, "big") + seq.to_bytes(2, "big") + token)
        inner = ip_header(
            original[: draw(st.sampled_from([8, 16]))],
            draw(ADDRESSES),
            draw(ADDRESSES),
            draw(OPTIONS),
            draw(st.sampled_from([1, 1, 6])),
        )
        message = bytes([kind, draw(st.integers(0, 15)), 0, 0, 0, 0, 0, 0]) + inner
    else:
        message = bytes([kind, 0, 0, 0]) + ident.to_bytes(2, "big") + seq.to_bytes(2, "big") + token
        message += draw(st.sampled_from([b"", b"", b"x", b"padding!"]))
    message = with_checksum(message) if draw(st.integers(0, 5)) else message
    data = bytearray(ip_header(message, draw(ADDRESSES), bytes([127, 0, 0, 1]), draw(OPTIONS)))
    damage = draw(st.integers(0, 4))
    if damage == 1:
        data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    elif damage == 2:
        del data[draw(st.integers(0, len(data))) :]
    elif damage == 3:
        data[0] = 0x40 | draw(st.integers(0, 15))  # any header length, even beyond the datagram
    return bytes(data)


def reference(data: bytes) -> tuple[int, bytes, str | None] | None:
    """What probes/icmp.py made of a raw IPv4 datagram: (sequence, the address the echo's target
    must equal, error); the reader drops datagrams shorter than an IP header."""
    if len(data) < 20:
        return None
    parsed = parse_reply(data, socket.AF_INET, True, IDENT, TOKEN)
    if parsed is None:
        return None
    seq, destination, error = parsed
    return seq, socket.inet_aton(destination) if destination else data[12:16], error


def in_c(data: bytes) -> tuple[int, bytes, str | None] | None:
    parsed = _icmp.parse_v4(data, IDENT, TOKEN)
    if parsed is None:
        return None
    kind, seq, address, code = parsed
    return seq, address, f"{_ERRORS[socket.AF_INET][kind]} (code {code})" if kind else None


@settings(max_examples=examples(3000), deadline=None)
@given(packets())
def test_parse_v4_takes_what_parse_reply_takes(data: bytes) -> None:
    assert in_c(data) == reference(data)


@settings(max_examples=examples(1000), deadline=None)
@given(st.binary(max_size=80))
def test_parse_v4_on_any_octets(data: bytes) -> None:
    assert in_c(data) == reference(data)


def test_parse_v4_examples() -> None:
    """The property's generator reaches every outcome: these are the ones it must not miss."""
    reply = ipv4(with_checksum(echo_reply(IDENT, 7, TOKEN)), src="127.9.8.7")
    assert in_c(reply) == (7, bytes([127, 9, 8, 7]), None)
    original = ipv4(with_checksum(echo_reply(IDENT, 11, TOKEN, kind=8)), dst="127.77.1.1")
    error = ipv4(with_checksum(bytes([3, 1, 0, 0, 0, 0, 0, 0]) + original))
    assert in_c(error) == (11, socket.inet_aton("127.77.1.1"), "destination unreachable (code 1)")
    assert in_c(error[:-1]) is None  # the checksum no longer holds
    short = ipv4(with_checksum(bytes([11, 0, 0, 0, 0, 0, 0, 0]) + original[:9]))
    assert in_c(short) is None and reference(short) is None  # parse_reply raised IndexError here


# --- the real kernel ---------------------------------------------------------------------------


@pytest.fixture
async def pinger() -> AsyncIterator[Pinger]:
    async with await Pinger.open() as opened:
        yield opened


async def test_a_sweep_mixing_raw_ipv4_and_ipv6_answers_every_echo(pinger: Pinger) -> None:
    """Runs of IPv4 targets go out in C, the IPv6 ones between them in Python, in one round."""
    hosts = []
    for i in range(3000):
        hosts.append(f"127.10.{i // 250}.{i % 250 + 1}")
        if i % 500 == 0:
            hosts.append("::1" if i % 1000 else "0:0::1")
    # 9,000 echoes at once: a late reply, not a lost one, is what a busy machine gives (the suite's
    # other workers), so the timeout leaves room for it
    results = await pinger.sweep(hosts + ["not-an-address"], count=3, timeout=10.0, interval=0.0)
    assert results.pop("not-an-address").error == "invalid address"
    assert set(results) == set(hosts)
    short = {host: (r.sent, r.received, r.error) for host, r in results.items() if (r.sent, r.received, r.error) != (3, 3, None)}
    assert short == {}
    # a reply's kernel stamp is wall-clock time, moved onto the monotonic clock as it is read: when
    # the read comes seconds later and the wall clock was slewed meanwhile, a loopback echo's few
    # microseconds can come out before its send, and are counted from the send (0 ms), not below it
    rtts = [rtt for r in results.values() for rtt in r.rtt_ms]
    assert all(0 <= rtt < 10_000 for rtt in rtts) and any(rtt > 0 for rtt in rtts)
    assert pinger.in_flight == 0


async def test_refused_sends_inside_a_batch_end_only_their_targets(pinger: Pinger, nft) -> None:
    """sendmmsg stops at a refused echo; the batch goes on after it, and that target gets no more."""
    nft("output", "ip daddr 127.11.0.0/24 icmp type echo-request drop")
    hosts = [f"127.11.{i % 2}.{i // 2 + 1}" for i in range(400)]  # refused and answered alternate
    results = await pinger.sweep(hosts, count=2, timeout=2.0, interval=0.0)
    refused = [r for a, r in results.items() if a.startswith("127.11.0.")]
    answered = [r for a, r in results.items() if a.startswith("127.11.1.")]
    assert len(refused) == len(answered) == 200
    assert all((r.sent, r.received) == (0, 0) and (r.error or "").startswith("EPERM") for r in refused)
    assert all((r.sent, r.received, r.error) == (2, 2, None) for r in answered)


async def test_forged_icmp_errors_count_only_for_the_echo_they_name(pinger: Pinger, nft: Callable[[str, str], None]) -> None:
    """An error naming another destination, or another identifier, leaves the echo in flight;
    one naming the echo's own destination ends it as unreachable."""
    nft("input", "ip daddr 127.77.0.80 icmp type echo-request drop")
    sweep = asyncio.create_task(pinger.sweep(["127.77.0.80"], count=1, timeout=3.0))
    await asyncio.sleep(0.05)
    assert pinger.in_flight == 1
    seq = pinger._flight.seq

    def error(destination: str, ident: int) -> bytes:
        original = ipv4(with_checksum(echo_reply(ident, seq, pinger._token, kind=8)), dst=destination)
        return ipv4(with_checksum(bytes([11, 0, 0, 0, 0, 0, 0, 0]) + original), src="127.12.0.1")

    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as forger:
        forger.sendto(error("127.77.0.81", pinger._ident), ("127.0.0.1", 0))
        forger.sendto(error("127.77.0.80", pinger._ident ^ 1), ("127.0.0.1", 0))
        await asyncio.sleep(0.1)
        assert pinger.in_flight == 1 and not sweep.done()
        forger.sendto(error("127.77.0.80", pinger._ident), ("127.0.0.1", 0))
        result = (await asyncio.wait_for(sweep, 1.0))["127.77.0.80"]
    assert (result.sent, result.received, result.error) == (1, 0, "time exceeded (code 0)")


def test_flight_slots_for_the_python_path() -> None:
    """claim/take/peek/release and reap, as the IPv6 and ping-socket path uses them."""

    class Sweep:
        rtts = bytearray(8 * 4)
        ended = 0

        def finish(self, echoes: int = 1) -> None:
            self.ended += echoes

    flight, sweep = _icmp.Flight(IDENT, TOKEN), Sweep()
    first, second = flight.claim(), flight.claim()
    assert second == (first + 1) & 0xFFFF
    flight.take(first, sweep, 2, 10.0, 11.0)
    flight.take(second, sweep, 3, 10.5, 12.0)
    with pytest.raises(ValueError):
        flight.take(first, sweep, 0, 0.0, 1.0)
    assert (flight.in_flight, flight.peek(first)) == (2, (sweep, 2, 10.0))
    assert flight.reap(11.5) == 12.0 and sweep.ended == 1 and flight.peek(first) is None
    flight.release(second)
    assert (flight.in_flight, flight.reap(100.0), flight.clear()) == (0, float("inf"), [])
