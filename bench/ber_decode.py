"""Decode one realistic GETBULK response with pyasn1 (the way pysnmp does) and with probes/ber.py.

    .venv/bin/python bench/ber_decode.py [--repetitions 25] [--columns 10] [--rounds 7]

The response is what a DSLAM sends for a 10-column ADSL/IF-MIB line-table walk with
max-repetitions 25: 250 varbinds, ifIndex values above 127 (multi-octet sub-identifiers), a mix
of INTEGER, Gauge32, Counter32 and Counter64 values. Figures are the median of `--rounds`.
Last, the time to refuse a hostile datagram: one varbind whose OID holds a 65,000-octet
sub-identifier (it took 0.37 s of CPU when such numbers were decoded in full).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api, rfc1902

from probes.ber import BerError, decode_response, tlv

ADSL = (1, 3, 6, 1, 2, 1, 10, 94, 1, 1)
COLUMNS = [
    (ADSL + (2, 1, 4), rfc1902.Integer32, 200),
    (ADSL + (2, 1, 5), rfc1902.Gauge32, 600),
    (ADSL + (2, 1, 8), rfc1902.Gauge32, 20_000_000),
    (ADSL + (3, 1, 4), rfc1902.Integer32, 200),
    (ADSL + (3, 1, 5), rfc1902.Gauge32, 600),
    (ADSL + (6, 1, 5), rfc1902.Counter32, 2**32 - 1),
    (ADSL + (10, 1, 3), rfc1902.Counter32, 2**32 - 1),
    ((1, 3, 6, 1, 2, 1, 2, 2, 1, 8), rfc1902.Integer32, 2),
    ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6), rfc1902.Counter64, 2**50),
    ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 10), rfc1902.Counter64, 2**50),
]


def response(repetitions: int, columns: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    varbinds = [
        (rfc1902.ObjectName(oid + (1_000_000 + 256 * row,)), kind(rng.randrange(1, top)))
        for row in range(repetitions)
        for oid, kind, top in (COLUMNS * (columns // len(COLUMNS) + 1))[:columns]
    ]
    pdu = api.v2c.ResponsePDU()
    api.v2c.apiPDU.set_defaults(pdu)
    api.v2c.apiPDU.set_request_id(pdu, 123_456_789)
    api.v2c.apiPDU.set_varbinds(pdu, varbinds)
    message = api.v2c.Message()
    api.v2c.apiMessage.set_defaults(message)
    api.v2c.apiMessage.set_community(message, b"dslam-042")
    api.v2c.apiMessage.set_pdu(message, pdu)
    return encoder.encode(message)


def hostile() -> bytes:
    oid = b"\x2b\x06\x01" + b"\x81" * 64_999 + b"\x01"
    varbinds = tlv(0x30, tlv(0x30, tlv(0x06, oid) + b"\x05\x00"))
    pdu = tlv(0xA2, b"\x02\x01\x07\x02\x01\x00\x02\x01\x00" + varbinds)
    return tlv(0x30, b"\x02\x01\x01" + tlv(0x04, b"public") + pdu)


def refuse(data: bytes) -> None:
    try:
        decode_response(data)
    except BerError:
        return
    raise AssertionError("the hostile datagram decoded")


def per_call(function: object, rounds: int) -> float:
    """Median µs per call."""
    timer = timeit.Timer(function)  # type: ignore[arg-type]
    number, _ = timer.autorange()
    return statistics.median(timer.repeat(rounds, number)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=25)
    parser.add_argument("--columns", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    data = response(args.repetitions, args.columns)
    ours = decode_response(data)
    message, _ = decoder.decode(data, asn1Spec=api.v2c.Message())
    theirs = api.v2c.apiPDU.get_varbinds(api.v2c.apiMessage.get_pdu(message))
    assert [(oid, value) for oid, _, value in ours.varbinds] == [(tuple(oid), int(value)) for oid, value in theirs]
    slow = per_call(lambda: decoder.decode(data, asn1Spec=api.v2c.Message()), args.rounds)
    fast = per_call(lambda: decode_response(data), args.rounds)
    count = len(ours.varbinds)
    print(f"response: {len(data)} bytes, {count} varbinds ({args.repetitions} repetitions x {args.columns} columns)")
    print(f"{'decoder':<40} {'µs/response':>12} {'µs/varbind':>11}")
    print(f"{'pyasn1 decode(asn1Spec=v2c.Message())':<40} {slow:12.1f} {slow / count:11.2f}")
    print(f"{'probes.ber.decode_response':<40} {fast:12.1f} {fast / count:11.2f}")
    print(f"ratio pyasn1/ours: {slow / fast:.1f}x")
    bad = hostile()
    print(
        f"refusing a {len(bad)}-octet datagram with a 65,000-octet sub-identifier: {per_call(lambda: refuse(bad), args.rounds):.1f} µs"
    )


if __name__ == "__main__":
    main()
