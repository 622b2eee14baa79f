"""The C part of probes/ber.py (probes/_ber.c) against its Python reference: `read_response`
accepts what `decode_response` accepts, a `Walk` keeps the cells the walk loop kept over
decoded varbinds, and `_ber.rates` computes what the rate formula says. Hypothesis writes the
replies, hostile ones included (values and names of every length, tags of every kind, damage
to the octets, lengths far beyond the datagram); the C code must raise `BerError` where the
reference does, and nothing else, and never read past the datagram."""

from __future__ import annotations

import math
from array import array

from hypothesis import given, settings
from hypothesis import strategies as st

from probes import _ber
from probes.ber import (
    EMPTY,
    END_OF_MIB_VIEW,
    BerError,
    Oid,
    Walk,
    decode_oid,
    decode_response,
    decode_varbinds,
    encode_oid,
    integer,
    read_response,
    tlv,
)
from probes.snmp import KNOWN
from tests.depth import examples

COLUMNS: tuple[Oid, ...] = ((1, 3, 6, 1, 2, 1, 2, 2, 1, 8), (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6), (1, 3, 6, 1, 2, 1, 2, 2, 1, 10))
TAGS = [0x02, 0x04, 0x05, 0x06, 0x40, 0x41, 0x42, 0x43, 0x44, 0x46, 0x80, 0x81, 0x82, 0x30, 0x1F, 0xA2, 0x47]

INDEXES = st.lists(st.one_of(st.integers(0, 127), st.integers(0, 2**32 - 1)), max_size=8)


@st.composite
def names(draw: st.DrawFn) -> bytes:
    """Mostly a name under one of the columns, sometimes any OID contents or any octets."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.binary(max_size=12))
    if kind == 1:
        return b"\x2b" + bytes([0x7F]) * draw(st.sampled_from([125, 126, 127, 128]))
    return encode_oid(draw(st.sampled_from(COLUMNS)) + tuple(draw(INDEXES)))


@st.composite
def values(draw: st.DrawFn) -> bytes:
    """A value element: mostly one an agent sends, else any tag with contents that fit it or not."""
    if draw(st.integers(0, 9)):
        return draw(
            st.one_of(
                st.integers(-(2**31), 2**31 - 1).map(integer),
                st.tuples(st.sampled_from([0x41, 0x42, 0x43]), st.integers(0, 2**32 - 1)).map(
                    lambda p: tlv(p[0], integer(p[1])[2:])
                ),
                st.integers(0, 2**64 - 1).map(lambda n: tlv(0x46, integer(n)[2:])),
                st.binary(max_size=20).map(lambda octets: tlv(0x04, octets)),
                st.sampled_from([b"\x05\x00", b"\x80\x00", b"\x81\x00", b"\x82\x00"]),
                st.binary(min_size=4, max_size=4).map(lambda octets: tlv(0x40, octets)),
                INDEXES.map(lambda index: tlv(0x06, encode_oid(COLUMNS[0] + tuple(index)))),
            )
        )
    tag = draw(st.sampled_from(TAGS))
    kind = draw(st.integers(0, 5))
    if kind == 0:
        contents = draw(st.binary(max_size=11))
    elif kind == 1:
        contents = encode_oid(draw(st.sampled_from(COLUMNS)) + tuple(draw(INDEXES)))
    elif kind == 2:
        contents = b""
    else:
        contents = integer(draw(st.one_of(st.integers(-(2**31), 2**32), st.integers(-(2**65), 2**65))))[2:]
    return tlv(tag, contents)


@st.composite
def replies(draw: st.DrawFn, active: tuple[int, ...] = (0, 1, 2), request_id: int = 7) -> bytes:
    """A GETBULK reply to the columns `active`: rows of them in order, mostly increasing, with
    any name now and then; then perhaps damaged."""
    rows = draw(st.lists(st.one_of(st.integers(1, 60), st.integers(0, 2**32 - 1)), max_size=6))
    if draw(st.booleans()):
        rows.sort()
    names_ = [
        draw(names()) if draw(st.integers(0, 9)) == 0 else encode_oid(COLUMNS[column] + (row,))
        for row in rows
        for column in active
    ]
    varbinds = b"".join(tlv(0x30, tlv(0x06, name) + draw(values())) for name in names_)
    body = integer(request_id) + integer(draw(st.sampled_from([0] * 8 + [1, 2**31]))) + integer(0) + tlv(0x30, varbinds)
    data = tlv(0x30, integer(draw(st.sampled_from([1, 1, 0]))) + tlv(0x04, b"public") + tlv(0xA2, body))
    return draw(damaged(data)) if draw(st.integers(0, 3)) == 0 else data


def damaged(data: bytes) -> st.SearchStrategy[bytes]:
    """`data` cut short, with an octet changed, with a length claiming far more, or with octets inserted."""
    at = st.integers(0, max(0, len(data) - 1))
    return st.one_of(
        at.map(lambda n: data[:n]),
        st.tuples(at, st.integers(0, 255)).map(lambda p: data[: p[0]] + bytes([p[1]]) + data[p[0] + 1 :]),
        st.tuples(at, st.sampled_from([b"\x84\xff\xff\xff\xff", b"\x82\xff\xff", b"\x80", b"\x85\x00\x00\x00\x00\x01"])).map(
            lambda p: data[: p[0]] + p[1] + data[p[0] + 1 :]
        ),
        st.tuples(at, st.binary(min_size=1, max_size=6)).map(lambda p: data[: p[0]] + p[1] + data[p[0] :]),
    )


def reference(data: bytes, prefixes: list[Oid], last: dict[int, Oid], active: list[int]) -> tuple[object, ...]:
    """The walk loop over `decode_response`'s varbinds, as probes/snmp.py ran it before the C walk."""
    varbinds = decode_response(data).varbinds
    cells: dict[int, list[tuple[Oid, int, object]]] = {column: [] for column in active}
    done = []
    skipped = 0
    for slot, column in enumerate(active):
        prefix, previous = prefixes[column], last[column]
        for oid, tag, value in varbinds[slot :: len(active)]:
            if tag == END_OF_MIB_VIEW or oid[: len(prefix)] != prefix:
                done.append(column)
                break
            if oid <= previous:
                return ("unordered", oid, previous, cells)
            previous = oid
            if tag in KNOWN:
                cells[column].append((oid[len(prefix) :], tag, value))
            elif tag not in EMPTY:
                skipped += 1
        last[column] = previous
    return (len(varbinds), skipped, done, cells)


def fed(walk: Walk, data: bytes, active: list[int], before: dict[int, int]) -> tuple[object, ...]:
    """What the C walk made of one reply, shaped as `reference`'s answer (cells new since `before`)."""
    count, skipped, done, unordered = walk.feed(data, read_response(data).varbinds_at, active)
    cells: dict[int, list[tuple[Oid, int, object]]] = {}
    for column in active:
        indexes, tags, found = walk.cells(column)
        cells[column] = list(zip(indexes, tags, found))[before[column] :]
    if unordered is not None:
        name, previous = map(decode_oid, unordered)
        return ("unordered", name, previous, cells)
    return (count, skipped, done, cells)


@settings(max_examples=examples(600))
@given(replies())
def test_read_response_accepts_what_decode_response_accepts(data: bytes) -> None:
    try:
        expected = decode_response(data)
    except BerError:
        expected = None
    try:
        header = read_response(data)
    except BerError:
        assert expected is None
        return
    assert expected is not None
    assert header[:5] == (expected.version, expected.community, expected.request_id, expected.error_status, expected.error_index)
    assert decode_varbinds(data, header.varbinds_at) == expected.varbinds


@settings(max_examples=examples(400))
@given(st.data(), st.lists(st.integers(0, 2), min_size=1, max_size=3, unique=True))
def test_walk_keeps_the_cells_the_walk_loop_kept(data: st.DataObject, active: list[int]) -> None:
    datagrams = data.draw(st.lists(replies(tuple(active)), min_size=1, max_size=4))
    prefixes = list(COLUMNS)
    walk = Walk([encode_oid(prefix) for prefix in prefixes])
    last = {column: prefix for column, prefix in enumerate(prefixes)}
    for data in datagrams:
        try:
            expected = reference(data, prefixes, last, active)
        except BerError:
            try:
                read_response(data)
            except BerError:
                continue
            raise AssertionError("read_response accepted what decode_response refused") from None
        before = {column: len(walk.cells(column)[1]) for column in active}
        got = fed(walk, data, active, before)
        assert got == expected
        if got[0] == "unordered":
            return
        assert [walk.last(column) for column in active] == [encode_oid(last[column]) for column in active]
        active = [column for column in active if column not in expected[2]]  # type: ignore[operator]
        if not active:
            return


@settings(max_examples=examples(2000))
@given(st.binary(max_size=80), st.integers(0, 90))
def test_walk_feed_refuses_what_decode_varbinds_refuses(data: bytes, at: int) -> None:
    """Any octets from any position: `BerError` exactly where the reference raises it, or no error."""
    at = min(at, len(data))
    walk = Walk([encode_oid(COLUMNS[0])])
    try:
        decode_varbinds(data, at)
        refused = False
    except BerError:
        refused = True
    try:
        walk.feed(data, at, [0])
    except BerError:
        assert refused
    else:
        assert not refused


def test_huge_lengths_and_deep_names_end_cleanly() -> None:
    walk = Walk([encode_oid(COLUMNS[0])])
    name = encode_oid(COLUMNS[0] + (1,))
    for varbinds in (
        b"\x30\x84\xff\xff\xff\xff",
        b"\x30\x84\x7f\xff\xff\xff" + b"\x30\x03\x06\x01\x2b",
        tlv(0x30, tlv(0x30, tlv(0x06, name) + b"\x41\x84\xff\xff\xff\xff")),
        tlv(0x30, tlv(0x30, tlv(0x06, b"\x2b" + b"\x81" * 60_000 + b"\x01") + b"\x05\x00")),
        tlv(0x30, tlv(0x30, tlv(0x06, name) + tlv(0x46, b"\x01" + b"\x00" * 9))),
    ):
        for cut in (len(varbinds), len(varbinds) - 1, 1):
            try:
                walk.feed(varbinds[:cut], 0, [0])
            except BerError:
                continue
            raise AssertionError(f"accepted {varbinds[:40].hex()}")
    assert walk.cells(0) == ([], b"", [])


def test_a_walk_shares_one_index_tuple_per_row_between_columns() -> None:
    rows = [(n,) for n in range(1, 6)]
    varbinds = b"".join(
        tlv(0x30, tlv(0x06, encode_oid(column + row)) + tlv(0x41, integer(n)[2:]))
        for n, row in enumerate(rows)
        for column in COLUMNS[:2]
    )
    data = tlv(0x30, integer(1) + tlv(0x04, b"public") + tlv(0xA2, integer(7) + integer(0) + integer(0) + tlv(0x30, varbinds)))
    walk = Walk([encode_oid(column) for column in COLUMNS[:2]])
    assert walk.feed(data, read_response(data).varbinds_at, [0, 1]) == (10, 0, [], None)
    first, second = walk.cells(0)[0], walk.cells(1)[0]
    assert first == second == rows
    assert all(a is b for a, b in zip(first, second))
    assert walk.last(1) == encode_oid(COLUMNS[1] + (5,))


def rate(value: int, last: int, then: float, bits: int, now: float, scale: float) -> float | None:
    """probes/rates.py's formula before it moved into C."""
    if then >= now or then != then:
        return None
    delta = value - last
    if delta < 0:
        if bits != 32 or -delta <= 2**31:
            return None
        delta += 2**32
    return delta / (now - then) * scale


READINGS = st.tuples(
    st.one_of(st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1)),
    st.one_of(st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1)),
    st.one_of(st.just(math.nan), st.floats(0, 2e9)),
    st.sampled_from([32, 64]),
)


@settings(max_examples=examples(500))
@given(st.lists(READINGS, max_size=20), st.floats(0, 2e9), st.sampled_from([1.0, 8.0, 0.001]))
def test_rates_in_c_follow_the_formula(cells: list[tuple[int, int, float, int]], now: float, scale: float) -> None:
    values = [value for value, _, _, _ in cells]
    previous = array("Q", [last for _, last, _, _ in cells])
    times = array("d", [then for _, _, then, _ in cells])
    bits = bytes(width for _, _, _, width in cells)
    expected = [rate(value, last, then, width, now, scale) for value, last, then, width in cells]
    assert _ber.rates(values, bits, previous, times, now, scale) == expected
