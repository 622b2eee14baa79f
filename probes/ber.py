"""The BER subset that SNMP v1/v2c polling needs: encode Get/GetNext/GetBulk requests, decode Responses.

pyasn1's general decoder spends about 75% of a poll's CPU; a response is a fixed shape (message,
PDU, varbind list, varbinds of OID and one primitive value), so it is decoded here with a flat
loop. Nothing recurses, every length is checked against the bytes that enclose it, and every
malformed datagram raises `BerError`, and nothing else: sizes are bounded before any number is
built (sub-identifiers at most 2**32-1, INTEGERs at most 9 octets), so no datagram costs more than
a linear pass over its octets and no number is too long to print.

Value tags are the BER identifier octets, as in .snmprec files and `Varbind`: 2
INTEGER, 4 OCTET STRING, 5 NULL, 6 OID, 64 IpAddress, 65 Counter32, 66 Gauge32, 67 TimeTicks,
68 Opaque, 70 Counter64, and the v2c exceptions 128 noSuchObject, 129 noSuchInstance, 130
endOfMibView. NULL and the exceptions decode to None; any other tag keeps its raw contents.
Values outside their type's range are rejected, as pyasn1 rejects them; so are request-ids, error
statuses and indexes outside Integer32, and OIDs of more than 128 sub-identifiers (RFC 2578 §3.5).

The poll path's per-value work is in C (probes/_ber.c, built with the package): `read_response`
checks a whole reply with the same rules without building anything per value, and a `Walk`
decodes GETBULK replies straight into per-column `Cells`. The Python decoder here is the
reference the C code is tested against (tests/test_ber_walk.py), and decodes GETs, traps and
the lab's requests.

Longer than 500 lines because it is the one v1/v2c codec: requests, responses, traps and
informs, the SNMPv3 header peek and the typed face of its C part share their checks here.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from probes import _ber

Oid = tuple[int, ...]
Value = int | bytes | Oid | None

INTEGER, OCTET_STRING, NULL, OID, SEQUENCE = 0x02, 0x04, 0x05, 0x06, 0x30
IP_ADDRESS, COUNTER32, GAUGE32, TIMETICKS, OPAQUE, COUNTER64 = 0x40, 0x41, 0x42, 0x43, 0x44, 0x46
NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW = 0x80, 0x81, 0x82
GET, GET_NEXT, RESPONSE, GET_BULK = 0xA0, 0xA1, 0xA2, 0xA5

EMPTY = frozenset({NULL, NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW})
RANGES = {
    INTEGER: (-(2**31), 2**31 - 1),
    COUNTER32: (0, 2**32 - 1),
    GAUGE32: (0, 2**32 - 1),
    TIMETICKS: (0, 2**32 - 1),
    COUNTER64: (0, 2**64 - 1),
}
INTEGER32 = RANGES[INTEGER]
MAX_INTEGER_OCTETS = 9  # a Counter64 and its sign octet; longer is padding no agent needs
MAX_SUB_IDENTIFIER = 2**32 - 1
MAX_OID_LENGTH = 128


class Varbind(NamedTuple):
    """One varbind as received: its name, tag and value (None for NULL and the exceptions).

    A NamedTuple, not a frozen dataclass: one is built per value polled, and the walk passes
    on the decoder's own rather than building another."""

    oid: Oid
    tag: int
    value: Value


class BerError(ValueError):
    """A datagram that is not a well-formed SNMP v1/v2c Response, or an OID that cannot be encoded."""


_ber.BerError = BerError  # what the C code raises


class Header(NamedTuple):
    """A Response's fields but its varbinds, which start at `varbinds_at` (their list's header)."""

    version: int
    community: bytes
    request_id: int
    error_status: int
    error_index: int
    varbinds_at: int


def read_response(data: bytes) -> Header:
    """The header of a Response datagram whose varbinds are all well-formed: `decode_response`'s
    checks, in C, without building a value; anything else raises `BerError`."""
    return Header._make(_ber.read_response(data))


def decode_varbinds(data: bytes, at: int) -> tuple[Varbind, ...]:
    """The varbinds of a datagram `read_response` accepted, from its `varbinds_at`."""
    return _varbinds(data, at, len(data))


class Cells(NamedTuple):
    """The values a walk found under one column, as parallel lists (no object per cell): each
    cell's row index (the name less `prefix`; one tuple per row, shared by the walk's columns),
    its tag and its value (as in `Varbind`; NULL and the exceptions are left out)."""

    prefix: Oid
    indexes: list[Oid]
    tags: bytes
    values: list[Value]

    def varbinds(self) -> list[Varbind]:
        return [Varbind(self.prefix + index, tag, value) for index, tag, value in zip(self.indexes, self.tags, self.values)]


Walk = _ber.Walk
"""A walk of several columns, decoded in C as the replies come (see probes/_ber.pyi)."""


@dataclass(frozen=True, slots=True)
class Response:
    version: int
    community: bytes
    request_id: int
    error_status: int
    error_index: int
    varbinds: tuple[Varbind, ...]


@dataclass(frozen=True, slots=True)
class Request:
    version: int
    community: bytes
    pdu: int
    request_id: int
    non_repeaters: int  # error status, except in GETBULK
    max_repetitions: int  # error index, except in GETBULK
    oids: tuple[Oid, ...]


def encode_request(
    version: int,
    community: bytes,
    request_id: int,
    pdu: int,
    oids: Iterable[Oid],
    non_repeaters: int = 0,
    max_repetitions: int = 0,
) -> bytes:
    """A GET, GETNEXT or GETBULK message (`pdu`) asking for `oids` with NULL values.

    `version` is the wire number: 0 for v1, 1 for v2c. The last two fields are error status and
    error index (zero) except in GETBULK, where they are non-repeaters and max-repetitions.
    """
    return encode_names(version, community, request_id, pdu, map(encode_oid, oids), non_repeaters, max_repetitions)


def encode_names(
    version: int,
    community: bytes,
    request_id: int,
    pdu: int,
    names: Iterable[bytes],
    non_repeaters: int = 0,
    max_repetitions: int = 0,
) -> bytes:
    """`encode_request` for OIDs already encoded (`encode_oid`), as a walk keeps them."""
    if pdu not in (GET, GET_NEXT, GET_BULK):
        raise BerError(f"not a request PDU: 0x{pdu:02x}")
    varbinds = b"".join(
        [b"0%c\x06%c%s\x05\x00" % (len(name) + 4, len(name), name) if len(name) < 124 else _null_varbind(name) for name in names]
    )
    head, fields = _envelope(version, community, non_repeaters, max_repetitions)
    return tlv(SEQUENCE, head + tlv(pdu, integer(request_id) + fields + tlv(SEQUENCE, varbinds)))


@functools.lru_cache(maxsize=256)
def _envelope(version: int, community: bytes, non_repeaters: int, max_repetitions: int) -> tuple[bytes, bytes]:
    """The parts of a request that stay the same from one request to the next of a walk."""
    return integer(version) + tlv(OCTET_STRING, community), integer(non_repeaters) + integer(max_repetitions)


def _null_varbind(name: bytes) -> bytes:
    return tlv(SEQUENCE, tlv(OID, name) + b"\x05\x00")


def encode_varbinds(varbinds: Iterable[Varbind]) -> bytes:
    """A VarBindList of values as decoded (an SNMPv3 reply, to be read as a v2c one is)."""
    encoded = []
    for oid, tag, value in varbinds:
        if isinstance(value, int):
            contents = integer_contents(value)
        elif isinstance(value, tuple):
            contents = encode_oid(value)
        else:
            contents = value or b""
        encoded.append(tlv(SEQUENCE, tlv(OID, encode_oid(oid)) + tlv(tag, contents)))
    return tlv(SEQUENCE, b"".join(encoded))


def encode_oid(oid: Sequence[int]) -> bytes:
    """The contents octets of an OBJECT IDENTIFIER."""
    if not 2 <= len(oid) <= MAX_OID_LENGTH or not 0 <= oid[0] <= 2 or oid[1] < 0 or (oid[0] < 2 and oid[1] >= 40):
        raise BerError(f"cannot encode OID {format_oid(oid)}")
    tail = oid[2:]
    if oid[0] < 2 and (not tail or (min(tail) >= 0 and max(tail) < 0x80)):
        return bytes((oid[0] * 40 + oid[1], *tail))  # one octet per sub-identifier, the common case
    out = bytearray()
    for arc in (oid[0] * 40 + oid[1], *oid[2:]):
        if arc < 0x80:
            if arc < 0:
                raise BerError(f"negative sub-identifier in {format_oid(oid)}")
            out.append(arc)
            continue
        if arc > MAX_SUB_IDENTIFIER:
            raise BerError(f"sub-identifier above 2**32-1 in {format_oid(oid)}")
        septets = []
        while arc:
            septets.append(arc & 0x7F | 0x80)
            arc >>= 7
        septets[0] &= 0x7F
        out.extend(reversed(septets))
    return bytes(out)


def format_oid(oid: Sequence[int]) -> str:
    """Dotted text; a sub-identifier too long for `str` (the int digit limit) shows its size instead."""
    try:
        return ".".join(map(str, oid))
    except ValueError:
        return ".".join(str(arc) if arc.bit_length() <= 64 else f"<{arc.bit_length()}-bit number>" for arc in oid)


def decode_response(data: bytes) -> Response:
    """The Response PDU in one datagram; anything else raises `BerError`."""
    end = len(data)
    version, pos = _message(data)
    tag, start, pos = _header(data, pos, end)
    if tag != OCTET_STRING:
        raise BerError("no community")
    community = data[start:pos]
    tag, pos, stop = _header(data, pos, end)
    if tag != RESPONSE or stop != end:
        raise BerError(f"not a Response PDU: 0x{tag:02x}")
    request_id, pos = _int_at(data, pos, end)
    error_status, pos = _int_at(data, pos, end)
    error_index, pos = _int_at(data, pos, end)
    return Response(version, community, request_id, error_status, error_index, _varbinds(data, pos, end))


def decode_request(data: bytes) -> Request:
    """A GET, GETNEXT or GETBULK message in one datagram, as an agent reads it (the lab's
    responders); anything else raises `BerError`."""
    end = len(data)
    version, pos = _message(data)
    tag, start, pos = _header(data, pos, end)
    if tag != OCTET_STRING:
        raise BerError("no community")
    community = data[start:pos]
    pdu, pos, stop = _header(data, pos, end)
    if pdu not in (GET, GET_NEXT, GET_BULK) or stop != end:
        raise BerError(f"not a request PDU: 0x{pdu:02x}")
    request_id, pos = _int_at(data, pos, end)
    non_repeaters, pos = _int_at(data, pos, end)
    max_repetitions, pos = _int_at(data, pos, end)
    oids = tuple(oid for oid, _, _ in _varbinds(data, pos, end))
    return Request(version, community, pdu, request_id, non_repeaters, max_repetitions, oids)


def _message(data: bytes) -> tuple[int, int]:
    """(version, where the rest starts) of an SNMP message that fills the datagram."""
    end = len(data)
    tag, pos, stop = _header(data, 0, end)
    if tag != SEQUENCE or stop != end:
        raise BerError("not one SEQUENCE")
    return _int_at(data, pos, end)


def _varbinds(data: bytes, pos: int, end: int) -> tuple[Varbind, ...]:
    """The VarBindList that ends a PDU: (name, tag, value) per varbind."""
    tag, pos, stop = _header(data, pos, end)
    if tag != SEQUENCE or stop != end:
        raise BerError("no varbind list")
    varbinds = []
    heads = _HEADS
    ranges = RANGES
    new = tuple.__new__
    while pos < end:
        # A varbind, its name and its value usually have one-octet tags and lengths under 128:
        # read those in line, the same checks as `_header`; anything else goes through it.
        if pos + 4 <= end and data[pos] == SEQUENCE and data[pos + 1] < 0x80 and data[pos + 2] == OID and data[pos + 3] < 0x80:
            varbind_end = pos + 2 + data[pos + 1]
            start = pos + 4
            pos = start + data[pos + 3]
            if varbind_end > end or pos > varbind_end:
                raise BerError("length beyond the enclosing element")
        else:
            tag, pos, varbind_end = _header(data, pos, end)
            if tag != SEQUENCE:
                raise BerError("varbind is not a SEQUENCE")
            tag, start, pos = _header(data, pos, varbind_end)
            if tag != OID:
                raise BerError("varbind name is not an OID")
        # A name is mostly its column's OID, decoded once and remembered (`_head`), and a last
        # sub-identifier of up to 5 octets read here, with decode_oid's checks; it takes the rest.
        name = None
        cut = pos - 2  # where the head ends: the octet before the last sub-identifier
        last = data[pos - 1]
        if cut > start and last < 0x80:
            if data[cut] < 0x80:  # a last sub-identifier of one octet
                contents = data[start : pos - 1]
                head = heads.get(contents) or _head(contents)
                if head:
                    name = head + (last,)
            else:
                floor = pos - 7 if pos - 7 > start else start
                while cut > floor and data[cut] > 0x7F:
                    cut -= 1
                lead, octets = data[cut + 1], pos - 1 - cut
                if data[cut] < 0x80 and lead != 0x80 and (octets < 5 or (octets == 5 and lead <= 0x8F)):
                    contents = data[start : cut + 1]
                    head = heads.get(contents) or _head(contents)
                    if head:
                        arc = 0
                        for octet in data[cut + 1 : pos]:
                            arc = arc << 7 | octet & 0x7F
                        name = head + (arc,)
        if name is None:
            name = decode_oid(data[start:pos])
        if pos + 2 <= varbind_end and data[pos + 1] < 0x80 and data[pos] & 0x1F != 0x1F:
            tag = data[pos]
            start = pos + 2
            pos = start + data[pos + 1]
        else:
            tag, start, pos = _header(data, pos, varbind_end)
        if pos != varbind_end:
            raise BerError("varbind has more than a name and a value")
        bounds = ranges.get(tag)
        value: Value
        if bounds is not None and 0 < pos - start <= MAX_INTEGER_OCTETS:
            value = number = int.from_bytes(data[start:pos], "big", signed=True)
            if not bounds[0] <= number <= bounds[1]:
                raise BerError(f"value {number} out of range for tag {tag}")
        else:
            value = _value(tag, data[start:pos])
        varbinds.append(new(Varbind, (name, tag, value)))
    return tuple(varbinds)


_HEADS: dict[bytes, Oid] = {}
"""Decoded OIDs by their contents octets, for the heads of names (a name less its last
sub-identifier: a table column, mostly). A cache of a pure function, bounded by `_head`."""
MAX_HEADS = 4096


def _head(contents: bytes) -> Oid | None:
    """The OID of a name's head, remembered; None if it is not a valid one or leaves no room
    under MAX_OID_LENGTH for one more sub-identifier (`decode_oid` then decides)."""
    try:
        head = decode_oid(contents)
    except BerError:
        return None
    if len(head) >= MAX_OID_LENGTH:
        return None
    if len(_HEADS) >= MAX_HEADS:
        _HEADS.clear()  # MAC-indexed rows give a head per row; a walk's columns come back at once
    _HEADS[contents] = head
    return head


def decode_oid(contents: bytes) -> Oid:
    """An OBJECT IDENTIFIER from its contents octets.

    A sub-identifier is refused as soon as its fourth continuation octet would take it past
    2**32-1 (more than 5 octets, or a 5-octet one led by more than 0x8f): big numbers are never
    built, which kept a 65,000-octet sub-identifier at 0.37 s of CPU, quadratic in its length.
    """
    if not contents:
        raise BerError("empty OID")
    if contents.isascii():  # every sub-identifier fits in one octet, the common case
        if len(contents) >= MAX_OID_LENGTH:
            raise BerError(f"OID longer than {MAX_OID_LENGTH} sub-identifiers")
        arcs: list[int] | bytes = contents
    else:
        if contents[-1] & 0x80:
            raise BerError("OID ends inside a sub-identifier")
        arcs = []
        arc = 0
        for octet in contents:
            if octet < 0x80:
                arcs.append(arc << 7 | octet)
                arc = 0
            elif arc >> 18:
                raise BerError("OID sub-identifier above 2**32-1")
            elif octet == 0x80 and not arc:
                raise BerError("OID sub-identifier with a leading zero septet")
            else:
                arc = arc << 7 | octet & 0x7F
        if len(arcs) >= MAX_OID_LENGTH:
            raise BerError(f"OID longer than {MAX_OID_LENGTH} sub-identifiers")
    first = arcs[0]
    head = (first // 40, first % 40) if first < 80 else (2, first - 80)
    return head + tuple(arcs[1:])


def _value(tag: int, contents: bytes) -> Value:
    bounds = RANGES.get(tag)
    if bounds is not None:
        if not 0 < len(contents) <= MAX_INTEGER_OCTETS:
            raise BerError(f"integer of {len(contents)} octets for tag {tag}")
        number = int.from_bytes(contents, "big", signed=True)
        if not bounds[0] <= number <= bounds[1]:
            raise BerError(f"value {number} out of range for tag {tag}")
        return number
    if tag == OID:
        return decode_oid(contents)
    if tag in EMPTY:
        if contents:
            raise BerError(f"tag {tag} with contents")
        return None
    if tag == IP_ADDRESS and len(contents) != 4:
        raise BerError("IpAddress is not 4 octets")
    return contents


def _int_at(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """An Integer32 header field (version, request-id, error status and index)."""
    tag, start, stop = _header(data, pos, end)
    if tag != INTEGER or not 0 < stop - start <= MAX_INTEGER_OCTETS:
        raise BerError("expected an INTEGER")
    number = int.from_bytes(data[start:stop], "big", signed=True)
    if not INTEGER32[0] <= number <= INTEGER32[1]:
        raise BerError(f"header INTEGER {number} out of range")
    return number, stop


def _header(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, start, end) of the contents of the element at `pos`, which must lie within `end`."""
    if pos + 2 > end:
        raise BerError("truncated")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise BerError("multi-octet tag")
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        octets = length & 0x7F
        if not 1 <= octets <= 4 or pos + octets > end:
            raise BerError("bad or indefinite length")
        length = int.from_bytes(data[pos : pos + octets], "big")
        pos += octets
    if pos + length > end:
        raise BerError("length beyond the enclosing element")
    return tag, pos, pos + length


def integer(number: int) -> bytes:
    return tlv(INTEGER, integer_contents(number))


def integer_contents(number: int) -> bytes:
    bits = number.bit_length() if number >= 0 else (~number).bit_length()
    return number.to_bytes(bits // 8 + 1, "big", signed=True)


def tlv(tag: int, contents: bytes) -> bytes:
    size = len(contents)
    if size < 0x80:
        return bytes((tag, size)) + contents
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + contents


INFORM, TRAP_V2 = 0xA6, 0xA7


@dataclass(frozen=True, slots=True)
class Notify:
    """A v2c SNMPv2-Trap or InformRequest; `pdu_at` is where its PDU tag sits in the datagram."""

    community: bytes
    pdu: int
    request_id: int
    varbinds: tuple[Varbind, ...]
    pdu_at: int


def decode_notify(data: bytes) -> Notify:
    """The v2c trap or inform in one datagram; anything else (v1 traps included) raises `BerError`."""
    end = len(data)
    version, pos = _message(data)
    if version != 1:
        raise BerError(f"not SNMPv2c: version {version}")
    tag, start, pos = _header(data, pos, end)
    if tag != OCTET_STRING:
        raise BerError("no community")
    community, pdu_at = data[start:pos], pos
    tag, pos, stop = _header(data, pos, end)
    if tag not in (TRAP_V2, INFORM) or stop != end:
        raise BerError(f"not a trap or inform PDU: 0x{tag:02x}")
    request_id, pos = _int_at(data, pos, end)
    for _ in range(2):
        _, pos = _int_at(data, pos, end)
    return Notify(community, tag, request_id, _varbinds(data, pos, end), pdu_at)


def inform_response(data: bytes, inform: Notify) -> bytes:
    """The Response that acknowledges an inform: the same message with the PDU tag changed
    (RFC 3416 §4.2.7: same request-id and varbinds, error-status and error-index zero)."""
    body = bytearray(data)
    body[inform.pdu_at] = RESPONSE
    return bytes(body)


def v3_engine_and_user(data: bytes) -> tuple[bytes, bytes]:
    """(msgAuthoritativeEngineID, msgUserName) of an SNMPv3 USM message, read without decrypting it."""
    end = len(data)
    version, pos = _message(data)
    if version != 3:
        raise BerError(f"not SNMPv3: version {version}")
    tag, _, pos = _header(data, pos, end)
    if tag != SEQUENCE:
        raise BerError("no header data")
    tag, pos, stop = _header(data, pos, end)
    if tag != OCTET_STRING:
        raise BerError("no security parameters")
    tag, pos, stop = _header(data, pos, stop)
    if tag != SEQUENCE:
        raise BerError("security parameters are not a SEQUENCE")
    tag, start, pos = _header(data, pos, stop)
    if tag != OCTET_STRING:
        raise BerError("no engine ID")
    engine_id = data[start:pos]
    for _ in range(2):
        _, pos = _int_at(data, pos, stop)
    tag, start, pos = _header(data, pos, stop)
    if tag != OCTET_STRING:
        raise BerError("no user name")
    return engine_id, data[start:pos]
