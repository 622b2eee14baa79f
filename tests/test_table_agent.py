"""lab/table_agent.py answers as a v2c agent must: GET, GETNEXT and GETBULK over its table, the
v2c exceptions at the ends, replies within a datagram, and silence for anything else."""

from __future__ import annotations

from lab.table_agent import MAX_REPLY, healthy_dslam, reply
from probes import ber

IF_DESCR = (1, 3, 6, 1, 2, 1, 2, 2, 1, 2)
SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
BOOT = 1_796_000_000.0  # the agent's boot instant; every request says when it is asked, so no test depends on the wall clock
TABLE = healthy_dslam(48, BOOT)


def ask(
    pdu: int, oids: list[tuple[int, ...]], repetitions: int = 0, community: bytes = b"public", at: float = BOOT + 1000
) -> ber.Response | None:
    answer = reply(TABLE, b"public", ber.encode_request(1, community, 7, pdu, oids, 0, repetitions), at)
    return None if answer is None else ber.decode_response(answer)


def test_get_answers_the_value_or_no_such_instance():
    response = ask(ber.GET, [SYS_UPTIME, (1, 3, 6, 1, 2, 1, 1, 3, 1)])
    assert response is not None and response.request_id == 7 and response.error_status == 0
    (name, tag, uptime), missing = response.varbinds
    assert (name, tag) == (SYS_UPTIME, ber.TIMETICKS) and uptime == 1000 * 100  # ramps at 100/s since boot
    assert missing[1:] == (ber.NO_SUCH_INSTANCE, None)


def test_getbulk_walks_a_column_row_by_row_then_leaves_it():
    response = ask(ber.GET_BULK, [IF_DESCR], repetitions=60)
    assert response is not None
    names = [oid for oid, _, _ in response.varbinds]
    assert names[:49] == [(*IF_DESCR, port) for port in range(1, 49)] + [(*IF_DESCR, 1001)]  # 48 ports and the uplink
    assert names[49][: len(IF_DESCR)] != IF_DESCR  # then the next column, as an agent walks on
    assert response.varbinds[0][1:] == (ber.OCTET_STRING, b"adsl-1/1/1")


def test_getbulk_past_the_end_is_end_of_mib_view_and_a_big_ask_fits_a_datagram():
    end = ask(ber.GET_BULK, [(1, 3, 6, 1, 9)], repetitions=5)
    assert end is not None and [tag for _, tag, _ in end.varbinds] == [ber.END_OF_MIB_VIEW]
    big = reply(TABLE, b"public", ber.encode_request(1, b"public", 1, ber.GET_BULK, [(1, 3)] * 20, 0, 1000), BOOT + 1000)
    assert big is not None and len(big) <= MAX_REPLY + 100 and len(ber.decode_response(big).varbinds) % 20 == 0


def test_counters_count_up_with_time():
    column = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 10)  # ifHCOutOctets, 40,000 octets/s per port
    first = ask(ber.GET_NEXT, [column], at=BOOT + 1000)
    second = ask(ber.GET_NEXT, [column], at=BOOT + 1000.05)
    assert first is not None and second is not None
    assert first.varbinds[0][1] == ber.COUNTER64 and second.varbinds[0][2] > first.varbinds[0][2]  # type: ignore[operator]


def test_a_wrong_community_or_a_broken_datagram_gets_no_answer():
    assert ask(ber.GET, [SYS_UPTIME], community=b"private") is None
    assert reply(TABLE, b"public", b"\x30\x03\x02\x01", BOOT + 1000) is None
