"""probes/ber.py against pyasn1 (pysnmp's own encoder and decoder), against fuzzed bytes, and
against real responses from snmpsim serving the shared recordings."""

from __future__ import annotations

import ipaddress
import socket
import time
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api, rfc1902, rfc1905

from probes.ber import (
    EMPTY,
    END_OF_MIB_VIEW,
    GET,
    GET_BULK,
    GET_NEXT,
    BerError,
    Response,
    decode_oid,
    decode_response,
    encode_oid,
    encode_request,
    format_oid,
)
from probes.snmpv3 import convert
from tests.depth import examples
from tests.snmp_fixtures import RECORDINGS, SERVED, Snmpsim, read_snmprec, snmpsim

__all__ = ["snmpsim"]

INT32 = st.integers(-(2**31), 2**31 - 1)
UINT32 = st.integers(0, 2**32 - 1)
OIDS = st.one_of(
    st.tuples(st.integers(0, 1), st.integers(0, 39)),
    st.tuples(st.just(2), st.integers(0, 2**32 - 1 - 80)),
).flatmap(lambda head: st.lists(st.one_of(st.integers(0, 127), UINT32), max_size=30).map(lambda tail: head + tuple(tail)))
VALUES = st.one_of(
    INT32.map(rfc1902.Integer32),
    st.binary(max_size=300).map(rfc1902.OctetString),
    OIDS.map(rfc1902.ObjectIdentifier),
    st.binary(min_size=4, max_size=4).map(rfc1902.IpAddress),
    UINT32.map(rfc1902.Counter32),
    UINT32.map(rfc1902.Gauge32),
    UINT32.map(rfc1902.TimeTicks),
    st.binary(max_size=40).map(rfc1902.Opaque),
    st.integers(0, 2**64 - 1).map(rfc1902.Counter64),
    st.sampled_from([rfc1902.Null(""), rfc1905.noSuchObject, rfc1905.noSuchInstance, rfc1905.endOfMibView]),
)
VARBINDS = st.lists(st.tuples(OIDS, VALUES), max_size=40)


def tag_of(value: Any) -> int:
    tag = value.tagSet[-1]
    return tag.tagClass | tag.tagFormat | tag.tagId


def expected(name: tuple[int, ...], value: Any) -> tuple[tuple[int, ...], int, object]:
    """What probes/snmp.py makes of a pyasn1 varbind today, as (oid, tag, value)."""
    tag = tag_of(value)
    if tag in EMPTY:
        return (tuple(name), tag, None)
    varbind = convert(rfc1902.ObjectName(name), value)
    assert varbind is not None
    return (varbind.oid, varbind.tag, varbind.value)


def pyasn1_response(
    version: int, community: bytes, request_id: int, status: int, index: int, varbinds: list[tuple[Any, Any]]
) -> bytes:
    """pysnmp's encoding of a v2c Response; for v1 the version octet is changed (same PDU tag)."""
    module = api.v2c
    pdu = module.ResponsePDU()
    module.apiPDU.set_defaults(pdu)
    module.apiPDU.set_request_id(pdu, request_id)
    module.apiPDU.set_error_status(pdu, status)
    module.apiPDU.set_error_index(pdu, index)
    module.apiPDU.set_varbinds(pdu, [(rfc1902.ObjectName(oid), value) for oid, value in varbinds])
    message = module.Message()
    module.apiMessage.set_defaults(message)
    module.apiMessage.set_community(message, community)
    module.apiMessage.set_pdu(message, pdu)
    data = encoder.encode(message)
    header = 2 + (data[1] & 0x7F if data[1] & 0x80 else 0)
    assert data[header : header + 3] == b"\x02\x01\x01"
    return data[: header + 2] + bytes((version,)) + data[header + 3 :]


def pyasn1_decode(data: bytes) -> Response:
    """The same fields as `decode_response`, read the way pysnmp reads them."""
    message, rest = decoder.decode(data, asn1Spec=api.v2c.Message())
    assert rest == b""
    pdu = api.v2c.apiMessage.get_pdu(message)
    return Response(
        int(message["version"]),
        bytes(message["community"]),
        int(pdu[0]),
        int(pdu[1]),
        int(pdu[2]),
        tuple(expected(tuple(name), value) for name, value in api.v2c.apiPDU.get_varbinds(pdu)),
    )


# --- against pyasn1 -------------------------------------------------------------------------------


@settings(max_examples=examples(300))
@given(
    version=st.sampled_from([0, 1]),
    community=st.binary(max_size=200),
    request_id=INT32,
    kind=st.sampled_from(["get", "next", "bulk"]),
    oids=st.lists(OIDS, max_size=60),
    non_repeaters=st.integers(0, 2**31 - 1),
    max_repetitions=st.integers(0, 2**31 - 1),
)
def test_requests_are_byte_identical_to_pysnmp(
    version: int,
    community: bytes,
    request_id: int,
    kind: str,
    oids: list[tuple[int, ...]],
    non_repeaters: int,
    max_repetitions: int,
) -> None:
    module = api.v2c if kind == "bulk" or version == 1 else api.v1
    version = 1 if kind == "bulk" else version
    pdu = {
        "get": module.GetRequestPDU,
        "next": module.GetNextRequestPDU,
        "bulk": getattr(module, "GetBulkRequestPDU", None),
    }[kind]()
    module.apiPDU.set_defaults(pdu)
    module.apiPDU.set_request_id(pdu, request_id)
    if kind == "bulk":
        api.v2c.apiBulkPDU.set_non_repeaters(pdu, non_repeaters)
        api.v2c.apiBulkPDU.set_max_repetitions(pdu, max_repetitions)
    module.apiPDU.set_varbinds(pdu, [(rfc1902.ObjectName(oid), rfc1902.Null("")) for oid in oids])
    message = module.Message()
    module.apiMessage.set_defaults(message)
    module.apiMessage.set_community(message, community)
    module.apiMessage.set_pdu(message, pdu)
    ours = encode_request(
        version,
        community,
        request_id,
        {"get": GET, "next": GET_NEXT, "bulk": GET_BULK}[kind],
        oids,
        *((non_repeaters, max_repetitions) if kind == "bulk" else ()),
    )
    if request_id >= 0:  # pyasn1 pads some negative numbers with a redundant octet
        assert ours == encoder.encode(message)
    decoded, rest = decoder.decode(ours, asn1Spec=module.Message())
    assert rest == b""
    assert int(module.apiPDU.get_request_id(module.apiMessage.get_pdu(decoded))) == request_id
    assert [tuple(name) for name, _ in module.apiPDU.get_varbinds(module.apiMessage.get_pdu(decoded))] == oids


@settings(max_examples=examples(300))
@given(
    version=st.sampled_from([0, 1]),
    community=st.binary(max_size=200),
    request_id=INT32,
    status=st.integers(0, 18),
    index=st.integers(0, 40),
    varbinds=VARBINDS,
)
def test_responses_decode_as_pysnmp_sees_them(
    version: int, community: bytes, request_id: int, status: int, index: int, varbinds: list[tuple[Any, Any]]
) -> None:
    data = pyasn1_response(version, community, request_id, status, index, varbinds)
    decoded = decode_response(data)
    assert decoded == pyasn1_decode(data)
    assert decoded.varbinds == tuple(expected(oid, value) for oid, value in varbinds)


def test_long_lengths_multi_octet_arcs_negative_and_64_bit_values() -> None:
    oid = (1, 3, 6, 1, 4, 1, 3902, 2**32 - 1, 0)
    varbinds = [
        (oid, rfc1902.Integer32(-(2**31))),
        (oid + (1,), rfc1902.Counter64(2**64 - 1)),
        (oid + (2,), rfc1902.OctetString(b"x" * 60_000)),
        (oid + (3,), rfc1902.Integer32(-1)),
        (oid + (4,), rfc1902.Counter32(2**32 - 1)),
    ]
    data = pyasn1_response(1, b"public", -5, 0, 0, varbinds)
    assert data[1] == 0x82  # two length octets
    decoded = decode_response(data)
    assert decoded.request_id == -5
    assert [value for _, _, value in decoded.varbinds] == [-(2**31), 2**64 - 1, b"x" * 60_000, -1, 2**32 - 1]
    assert decoded.varbinds[0][0] == oid


def long_form(tag: int, contents: bytes) -> bytes:
    return bytes((tag, 0x81, len(contents))) + contents


def test_non_minimal_lengths_and_integers_are_accepted() -> None:
    """BER, unlike DER, allows both; some agents send them."""
    varbind = long_form(0x30, bytes.fromhex("06 03 2b0601 42 03 00ffff"))  # Gauge32 65535, padded
    pdu = long_form(0xA2, bytes.fromhex("02 04 00000007 020100 020100") + long_form(0x30, varbind))
    message = long_form(0x30, bytes.fromhex("020101 0406") + b"public" + pdu)
    assert decoder.decode(message, asn1Spec=api.v2c.Message())[1] == b""
    decoded = decode_response(message)
    assert (decoded.request_id, decoded.varbinds) == (7, (((1, 3, 6, 1), 0x42, 65535),))


# --- malformed input ------------------------------------------------------------------------------

GOOD = pyasn1_response(1, b"public", 77, 0, 0, [((1, 3, 6, 1, 2, 1, 1, 3, 0), rfc1902.TimeTicks(42))])


def replace(old: str, new: str) -> bytes:
    assert GOOD.count(bytes.fromhex(old)) == 1
    return GOOD.replace(bytes.fromhex(old), bytes.fromhex(new))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (GOOD + b"\x00", "not one SEQUENCE"),  # a trailing octet
        (GOOD[:-1], "length beyond the enclosing element"),
        (b"\x30\x80" + GOOD[2:] + b"\x00\x00", "indefinite length"),
        (b"\x30\x85\x00\x00\x00\x00" + bytes([len(GOOD) - 2]) + GOOD[2:], "bad or indefinite length"),
        (b"\x30\x84\xff\xff\xff\xff" + GOOD[2:], "length beyond the enclosing element"),
        (b"\x3f\x01" + GOOD[2:], "multi-octet tag"),
        (replace("a21a", "a01a"), "not a Response PDU: 0xa0"),
        (replace("43012a", "430180"), "value -128 out of range for tag 67"),
        (replace("43012a", "4001ff"), "IpAddress is not 4 octets"),
        (replace("06082b06010201010300", "06082b060102010183ff"), "OID ends inside a sub-identifier"),
        (replace("06082b06010201010300", "06088006010201010300"), "leading zero septet"),
        (replace("06082b06010201010300", "04082b06010201010300"), "varbind name is not an OID"),
        (replace("43012a", "05012a"), "tag 5 with contents"),
        (replace("02014d", "02004d"), "expected an INTEGER"),  # an empty request-id, then a stray octet
        (long_form(0x30, bytes.fromhex("020101 0400 a2 0a 0200 020100 020100 3000")), "expected an INTEGER"),
    ],
)
def test_malformed_responses_raise_ber_error(data: bytes, reason: str) -> None:
    with pytest.raises(BerError, match=reason):
        decode_response(data)


def tlv(tag: int, contents: bytes) -> bytes:
    """A definite-length BER element, written out by hand (independently of probes/ber.py)."""
    size = len(contents)
    length = bytes((size,)) if size < 0x80 else bytes((0x82,)) + size.to_bytes(2, "big")
    return bytes((tag,)) + length + contents


def hand_response(oid: bytes, value: bytes = b"\x05\x00", status: bytes = b"\x00", request_id: bytes = b"\x07") -> bytes:
    """A v2c Response with one varbind: OID contents `oid`, value element `value`, header
    INTEGER contents `status` (error-status) and `request_id`."""
    varbind = tlv(0x30, tlv(0x06, oid) + value)
    pdu = tlv(0xA2, tlv(0x02, request_id) + tlv(0x02, status) + b"\x02\x01\x00" + tlv(0x30, varbind))
    return tlv(0x30, b"\x02\x01\x01" + tlv(0x04, b"public") + pdu)


SYS_UPTIME_OID = bytes.fromhex("2b06010201010300")
HUGE_SUB_IDENTIFIER = b"\x2b\x06\x01" + b"\x81" * 64_999 + b"\x01"


@pytest.mark.parametrize(
    ("sub_identifier", "value"),
    [
        ("8fffffff7f", 2**32 - 1),  # the largest: 5 octets, led by 0x8f
        ("8880808000", 2**31),
        ("ffffff7f", 2**28 - 1),  # 4 octets may use all 28 bits
    ],
)
def test_sub_identifiers_up_to_2_to_the_32_are_accepted(sub_identifier: str, value: int) -> None:
    decoded = decode_response(hand_response(bytes.fromhex("2b06") + bytes.fromhex(sub_identifier) + b"\x00"))
    assert decoded.varbinds[0][0] == (1, 3, 6, value, 0)


@pytest.mark.parametrize(
    "sub_identifier",
    ["9080808000", "ffffffff7f", "818080808000", "81" * 64_999 + "01"],  # 2**32, 2**35-1, 2**35, 65,000 octets
)
def test_sub_identifiers_above_2_to_the_32_are_refused(sub_identifier: str) -> None:
    with pytest.raises(BerError, match="above 2\\*\\*32-1"):
        decode_response(hand_response(bytes.fromhex("2b06") + bytes.fromhex(sub_identifier)))
    with pytest.raises(BerError, match="above 2\\*\\*32-1"):  # the same inside an OID value
        decode_response(hand_response(SYS_UPTIME_OID, tlv(0x06, bytes.fromhex("2b06") + bytes.fromhex(sub_identifier))))


def test_a_65000_octet_sub_identifier_costs_microseconds() -> None:
    """It cost 0.37 s of CPU (quadratic) before the request-id was even looked at."""
    data = hand_response(HUGE_SUB_IDENTIFIER)
    started = time.process_time()
    for _ in range(100):
        with pytest.raises(BerError):
            decode_response(data)
    assert (time.process_time() - started) / 100 < 0.002


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        # an error-status of 2**15000: too long to print, which made describe_error raise ValueError
        (hand_response(SYS_UPTIME_OID, status=b"\x01" + b"\x00" * 1875), "expected an INTEGER"),
        (hand_response(SYS_UPTIME_OID, request_id=b"\x00\x80\x00\x00\x00"), "header INTEGER 2147483648 out of range"),
        (hand_response(SYS_UPTIME_OID, status=b"\xff\x7f\xff\xff\xff"), "header INTEGER -2147483649 out of range"),
        (hand_response(SYS_UPTIME_OID, tlv(0x02, b"\x01" + b"\x00" * 1875)), "integer of 1876 octets for tag 2"),
        (hand_response(SYS_UPTIME_OID, tlv(0x46, b"\x01" + b"\x00" * 9)), "integer of 10 octets for tag 70"),
        (hand_response(SYS_UPTIME_OID, tlv(0x46, b"\x01" + b"\x00" * 8)), "value 18446744073709551616 out of range"),
        (hand_response(b"\x2b" + b"\x01" * 127), "OID longer than 128 sub-identifiers"),
        (hand_response(b"\x2b" + b"\x01" * 126 + b"\x81\x00"), "OID longer than 128 sub-identifiers"),
    ],
    ids=[
        "status-2**15000",
        "request-id-2**31",
        "status-below-int32",
        "integer32-1876-octets",
        "counter64-10-octets",
        "counter64-2**64",
        "oid-129-arcs",
        "oid-129-arcs-multi-octet",
    ],
)
def test_long_integers_and_oids_raise_ber_error(data: bytes, reason: str) -> None:
    with pytest.raises(BerError, match=reason):
        decode_response(data)


def test_longest_fields_that_are_still_valid_decode() -> None:
    assert decode_response(hand_response(b"\x2b" + b"\x01" * 126)).varbinds[0][0] == (1, 3) + (1,) * 126
    padded = hand_response(SYS_UPTIME_OID, tlv(0x46, b"\x00" + b"\xff" * 8), request_id=b"\x00" * 8 + b"\x07")
    decoded = decode_response(padded)
    assert (decoded.request_id, decoded.varbinds[0][2]) == (7, 2**64 - 1)


def test_oids_that_cannot_be_sent_raise_ber_error_and_still_print() -> None:
    with pytest.raises(BerError, match="above 2\\*\\*32-1"):
        encode_oid((1, 3, 2**32))
    with pytest.raises(BerError, match="cannot encode"):
        encode_oid((1, 3) + (1,) * 127)
    huge = (1, 3, 2**20_000)
    with pytest.raises(BerError, match="20001-bit number"):
        encode_oid(huge)
    assert format_oid(huge) == "1.3.<20001-bit number>"


def test_every_truncation_raises_ber_error() -> None:
    data = pyasn1_response(
        1, b"public", 1, 0, 0, [((1, 3, 6, 1, 4, 1, 9999, i), rfc1902.Counter64(2**40 + i)) for i in range(30)]
    )
    for size in range(len(data)):
        with pytest.raises(BerError):
            decode_response(data[:size])


def well_formed(response: Response) -> bool:
    return all(
        isinstance(oid, tuple)
        and all(isinstance(arc, int) and arc >= 0 for arc in oid)
        and 0 <= tag <= 0xFF
        and (value is None) == (tag in EMPTY)
        and isinstance(value, (int, bytes, tuple, type(None)))
        for oid, tag, value in response.varbinds
    )


@settings(max_examples=examples(1000))
@given(data=st.binary(max_size=400))
def test_random_bytes_raise_ber_error_or_decode(data: bytes) -> None:
    try:
        assert well_formed(decode_response(data))
    except BerError:
        pass


@settings(max_examples=examples(1000))
@given(
    varbinds=VARBINDS,
    edits=st.lists(
        st.tuples(st.integers(0, 10_000), st.integers(0, 255), st.sampled_from(["set", "insert", "delete"])),
        min_size=1,
        max_size=6,
    ),
)
def test_mutated_responses_raise_ber_error_or_decode(varbinds: list[tuple[Any, Any]], edits: list[tuple[int, int, str]]) -> None:
    data = bytearray(pyasn1_response(1, b"public", 3, 0, 0, varbinds))
    for position, octet, edit in edits:
        at = position % (len(data) + 1)
        if edit == "insert":
            data.insert(at, octet)
        elif at < len(data):
            if edit == "set":
                data[at] = octet
            else:
                del data[at]
    try:
        assert well_formed(decode_response(bytes(data)))
    except BerError:
        pass


NAME_OCTETS = st.lists(
    st.one_of(st.integers(0, 0x7F), st.integers(0x80, 0xFF), st.sampled_from([0x2B, 0x06, 0x01, 0x80, 0x81, 0x8F, 0x90, 0x7F])),
    max_size=140,
).map(bytes)


@settings(max_examples=examples(2000))
@given(heads=st.lists(NAME_OCTETS, min_size=1, max_size=3), tails=st.lists(NAME_OCTETS, min_size=1, max_size=4))
@example(heads=[b"\x2b" + b"\x01" * n for n in (124, 125, 126)], tails=[b"\x05", b"\x81\x05"])  # around 128 sub-ids
@example(
    heads=[b"\x2b\x06\x01\x02\x01\x02\x02\x01\x0e", b"\x2b\x06\x81"],
    tails=[b"\x8f\xff\xff\xff\x7f", b"\x90\x80\x80\x80\x00", b"\x81\x80\x80\x80\x80\x00", b"\x80\x05", b"\x83\xff\x7f"],
)  # 2**32-1, 2**32, six octets, a leading zero septet, three octets
def test_names_decode_as_decode_oid_decodes_them(heads: list[bytes], tails: list[bytes]) -> None:
    """Names share heads (as a column's rows do), so the decoder's remembered heads are used:
    every name decodes as `decode_oid` decodes its octets alone, or both refuse it."""
    for contents in (head + tail for head in heads for tail in tails):
        try:
            wanted: object = decode_oid(contents)
        except BerError:
            wanted = BerError
        try:
            got: object = decode_response(hand_response(contents)).varbinds[0].oid
        except BerError:
            got = BerError
        assert got == wanted, contents.hex()


def test_rows_of_many_heads_decode_past_the_cache_bound() -> None:
    """MAC-indexed rows give a head per row; more than the decoder remembers still decode right."""
    column = (1, 3, 6, 1, 2, 1, 10, 127, 1, 3, 3, 1, 2)
    for row in range(5000):
        mac = (0, 29, 207, row >> 8, row & 0xFF, 1 + row % 200)
        assert decode_response(hand_response(encode_oid(column + mac))).varbinds[0].oid == column + mac


# --- real responses from snmpsim ------------------------------------------------------------------


def snmprec_value(tag: str, text: str) -> object:
    if tag in ("2", "65", "66", "67", "70"):
        return int(text)
    if tag == "4x" or tag == "64x":
        return bytes.fromhex(text)
    if tag == "6":
        return tuple(int(arc) for arc in text.strip(".").split("."))
    if tag == "64":
        return ipaddress.IPv4Address(text).packed
    return text.encode()


def test_whole_recordings_walked_through_snmpsim(snmpsim: Snmpsim) -> None:
    """Every recording served by snmpsim, walked with our GETBULKs (and v1 GETNEXTs for one):
    each datagram decodes as pyasn1 decodes it, and the values are the recording's."""
    seen_long_length = seen_multi_octet_arc = False
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        for name in SERVED:
            recorded = read_snmprec(RECORDINGS / f"{name}.snmprec")
            unservable = [oid for oid, record in recorded.items() if record == ("66", "<private>")]
            records = {oid: record for oid, record in recorded.items() if oid not in unservable}
            walked: dict[tuple[int, ...], tuple[int, object]] = {}
            last: tuple[int, ...] = (1, 0)  # LLDP-MIB (1.0.8802) comes before 1.3.6
            for request_id in range(1, 10_000):
                sock.sendto(encode_request(1, name.encode(), request_id, GET_BULK, [last], 0, 40), ("127.0.0.1", snmpsim.port))
                data = sock.recv(65535)
                response = decode_response(data)
                assert response == pyasn1_decode(data)
                assert (response.request_id, response.error_status) == (request_id, 0)
                seen_long_length |= data[1] & 0x80 != 0
                seen_multi_octet_arc |= any(arc > 127 for oid, _, _ in response.varbinds for arc in oid)
                walked.update((oid, (tag, value)) for oid, tag, value in response.varbinds if tag != END_OF_MIB_VIEW)
                last = response.varbinds[-1][0]
                if response.varbinds[-1][1] == END_OF_MIB_VIEW:
                    later = [oid for oid in unservable if oid > last]  # snmpsim ends a walk at these
                    if not later:
                        break
                    last = later[0]
            assert walked.keys() == records.keys(), name
            for oid, (tag, text) in records.items():
                if tag == "4" and "\ufffd" in text:
                    continue
                # snmpsim strips each line (snmpsim/grammar/snmprec.py): a text's trailing spaces are not served
                # ("Ubiquiti Inc.   " in edgeosolt_uisp-fiber)
                assert walked[oid] == (int(tag.rstrip("x")), snmprec_value(tag, text.rstrip())), (name, oid)
    assert seen_long_length and seen_multi_octet_arc


def test_v1_getnext_through_snmpsim(snmpsim: Snmpsim) -> None:
    records = read_snmprec(RECORDINGS / "axos_e7-2.snmprec")
    ordered = sorted(records)
    last = ordered[0][:-1]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        for step in range(50):
            sock.sendto(encode_request(0, b"axos_e7-2", step, GET_NEXT, [last]), ("127.0.0.1", snmpsim.port))
            data = sock.recv(65535)
            response = decode_response(data)
            assert response == pyasn1_decode(data)
            assert response.version == 0
            [(last, tag, value)] = response.varbinds
            assert last == ordered[step]
            assert (tag, value) == (int(records[last][0].rstrip("x")), snmprec_value(*records[last]))
