"""The SNMP client against real agents on loopback: snmpsim recordings, net-snmp, a hostile agent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import encoder
from pysnmp.proto import api, rfc1902, rfc1905

from monitord.model import Outcome, Secret, SnmpAuth
from probes.snmp import SnmpClient, Varbind, failure_reason, parse_oid
from probes.snmpbase import Target
from probes.snmpv3 import convert, reply_of
from tests.snmp_fixtures import (
    RECORDINGS,
    SNMPD_AUTH_KEY,
    SNMPD_PRIV_KEY,
    SNMPD_USERS,
    Request,
    Snmpd,
    Snmpsim,
    column,
    read_snmprec,
    snmpd,
    snmpsim,
    start_bad_agent,
)

__all__ = ["snmpd", "snmpsim"]

IF_OPER = "1.3.6.1.2.1.2.2.1.8"
IF_HC_IN = "1.3.6.1.2.1.31.1.1.1.6"
SYS_UPTIME = parse_oid("1.3.6.1.2.1.1.3.0")
SYS_NAME = parse_oid("1.3.6.1.2.1.1.5.0")
COLUMN = parse_oid("1.3.6.1.2.1.2.2.1.8")


def v2c(community: str, name: str = "v2") -> SnmpAuth:
    return SnmpAuth(name, "2c", community=Secret(community, "test"))


def v3(user: str, auth_key: str = SNMPD_AUTH_KEY, priv_key: str = SNMPD_PRIV_KEY) -> SnmpAuth:
    auth, priv = SNMPD_USERS.get(user, ("sha", "aes"))
    return SnmpAuth(
        f"v3-{user}-{auth_key}-{priv_key}",
        "3",
        user=user,
        auth_protocol=auth,
        auth_key=Secret(auth_key, "test"),
        priv_protocol=priv,
        priv_key=Secret(priv_key, "test"),
    )


@pytest.fixture
async def client() -> AsyncIterator[SnmpClient]:
    snmp = SnmpClient(timeout=0.3, retries=0)
    yield snmp
    snmp.close()


# --- recordings ---------------------------------------------------------------------------------


async def test_walk_matches_recording_columns(snmpsim: Snmpsim, client: SnmpClient) -> None:
    records = read_snmprec(RECORDINGS / "zxdsl.snmprec")
    target = Target("127.0.0.1", snmpsim.port, v2c("zxdsl"))
    result = await client.walk(target, [parse_oid(IF_OPER), parse_oid(IF_HC_IN)], max_repetitions=20)
    assert result.outcome is Outcome.OK, result.detail
    got = {vb.oid: vb.value for vb in result.varbinds}
    for prefix in (IF_OPER, IF_HC_IN):
        expected = column(records, prefix)
        assert len(expected) >= 256
        walked = {oid[len(parse_oid(prefix)) :]: value for oid, value in got.items() if oid[:-1] == parse_oid(prefix)}
        assert walked == expected
    assert {vb.tag for vb in result.varbinds if vb.oid[:-1] == parse_oid(IF_HC_IN)} == {70}
    assert result.requests < 40  # two columns per GETBULK, 20 rows each


async def test_v1_walk_uses_getnext_and_ends_cleanly(snmpsim: Snmpsim) -> None:
    records = read_snmprec(RECORDINGS / "axos_e7-2.snmprec")
    target = Target("127.0.0.1", snmpsim.port, SnmpAuth("v1", "1", community=Secret("axos_e7-2", "test")))
    prefix = "1.3.6.1.4.1.6321.1.2.4.2.6.1.1.6"
    patient = SnmpClient(timeout=2.0, retries=0)  # 207 round trips: one slow answer from a busy snmpsim is not a failure
    try:
        result = await patient.walk(target, [parse_oid(prefix)])
    finally:
        patient.close()
    assert result.outcome is Outcome.OK, result.detail
    expected = column(records, prefix)
    assert len(expected) == 206
    assert {vb.oid[-1:]: vb.value for vb in result.varbinds} == expected
    assert result.requests == 207


async def test_get_leaves_missing_objects_out(snmpsim: Snmpsim, client: SnmpClient) -> None:
    records = read_snmprec(RECORDINGS / "motorola-cm.snmprec")
    target = Target("127.0.0.1", snmpsim.port, v2c("motorola-cm"))
    result = await client.get(target, [SYS_UPTIME, parse_oid("1.3.6.1.2.1.1.99.0")])
    assert result.outcome is Outcome.OK
    assert [(vb.oid, vb.tag, vb.value) for vb in result.varbinds] == [(SYS_UPTIME, 67, int(records[SYS_UPTIME][1]))]


# --- net-snmp: credentials and outcomes ------------------------------------------------------


async def test_snmpd_v2c_and_every_v3_user(snmpd: Snmpd, client: SnmpClient) -> None:
    for auth in [v2c("public"), *(v3(user) for user in SNMPD_USERS)]:
        result = await client.get(Target("127.0.0.1", snmpd.port, auth), [SYS_NAME])
        assert result.outcome is Outcome.OK, (auth.name, result.detail)
        assert result.varbinds[0].value == b"lab-dslam-1"


async def test_snmpd_wrong_credentials(snmpd: Snmpd, client: SnmpClient) -> None:
    wrong_key = await client.get(Target("127.0.0.1", snmpd.port, v3("monitor", auth_key="not-the-key1")), [SYS_NAME])
    assert wrong_key.outcome is Outcome.AUTH_FAILURE
    assert "not-the-key1" not in wrong_key.detail
    wrong_priv = await client.get(Target("127.0.0.1", snmpd.port, v3("monitor", priv_key="not-the-key2")), [SYS_NAME])
    assert wrong_priv.outcome is Outcome.TIMEOUT
    unknown_user = await client.get(Target("127.0.0.1", snmpd.port, v3("intruder")), [SYS_NAME])
    assert unknown_user.outcome is Outcome.AUTH_FAILURE
    started = time.monotonic()
    wrong_community = await client.get(Target("127.0.0.1", snmpd.port, v2c("private", "v2-wrong")), [SYS_NAME])
    assert wrong_community.outcome is Outcome.TIMEOUT  # agents drop unknown communities silently
    assert time.monotonic() - started < 1.0


async def test_v3_user_name_reused_with_other_keys_keeps_both_working(snmpd: Snmpd, client: SnmpClient) -> None:
    """Two auths with user `monitor` (say, two vendors' devices): the second's keys must not
    replace the first's inside pysnmp."""
    right = Target("127.0.0.1", snmpd.port, v3("monitor"))
    other = Target("127.0.0.1", snmpd.port, v3("monitor", "otherkey123", "otherpriv123"))
    assert (await client.get(right, [SYS_NAME])).outcome is Outcome.OK
    assert (await client.get(other, [SYS_NAME])).outcome is Outcome.AUTH_FAILURE
    assert (await client.get(right, [SYS_NAME])).outcome is Outcome.OK


async def test_changed_credentials_under_the_same_auth_name_are_used(snmpd: Snmpd, client: SnmpClient) -> None:
    """A reload may rotate a community under the same auth name; the client must not keep the old one."""
    target = Target("127.0.0.1", snmpd.port, v2c("private", "dslam-v2"))
    assert (await client.get(target, [SYS_NAME])).outcome is Outcome.TIMEOUT
    rotated = Target("127.0.0.1", snmpd.port, v2c("public", "dslam-v2"))
    assert (await client.get(rotated, [SYS_NAME])).outcome is Outcome.OK


async def test_silent_port_times_out_quickly(client: SnmpClient) -> None:
    agent, port = await start_bad_agent(lambda request: None)
    started = time.monotonic()
    result = await client.walk(Target("127.0.0.1", port, v2c("public")), [COLUMN])
    assert result.outcome is Outcome.TIMEOUT
    assert failure_reason(result.outcome, result.detail) == "timeout"
    assert time.monotonic() - started < 1.0
    assert len(agent.seen) == 1


async def test_datagrams_retries_and_timeouts_are_counted_per_device_class(snmpd: Snmpd) -> None:
    """What the counters say is what went on the wire: the silent agent saw every resend."""
    patient = SnmpClient(timeout=0.2, retries=2)
    try:
        agent, port = await start_bad_agent(lambda request: None)
        silent = await patient.get(Target("127.0.0.1", port, v2c("public"), "dslam"), [SYS_NAME])
        assert silent.outcome is Outcome.TIMEOUT
        assert len(agent.seen) == 3
        answered = await patient.get(Target("127.0.0.1", snmpd.port, v2c("public"), "olt"), [SYS_NAME])
        assert answered.outcome is Outcome.OK
        v3_silent = await patient.get(Target("127.0.0.1", snmpd.port, v3("monitor", priv_key="not-the-key2"), "olt"), [SYS_NAME])
        assert v3_silent.outcome is Outcome.TIMEOUT  # undecryptable: net-snmp drops it, pysnmp resends twice
        counts = {kind: (c.sent, c.retries, c.timeouts) for kind, c in patient.counts.items()}
        assert counts == {"dslam": (3, 2, 1), "olt": (1 + 3, 2, 1)}
    finally:
        patient.close()


# --- hostile agents ------------------------------------------------------------------------------


def rows(request: Request, count: int, start: int = 1) -> list[tuple[object, object]]:
    base = request.oids[0][: len(COLUMN)]
    return [(rfc1902.ObjectName(base + (i,)), rfc1902.Integer32(i)) for i in range(start, start + count)]


async def test_non_increasing_oids_stop_the_walk(client: SnmpClient) -> None:
    agent, port = await start_bad_agent(lambda request: (0, 0, rows(request, 3)))
    result = await client.walk(Target("127.0.0.1", port, v2c("public")), [COLUMN])
    assert result.outcome is Outcome.AGENT_ERROR
    assert "OID not increasing" in result.detail
    assert failure_reason(result.outcome, result.detail) == "malformed"
    assert len(agent.seen) == 2
    assert [vb.value for vb in result.varbinds] == [1, 2, 3]


async def test_too_big_halves_max_repetitions(client: SnmpClient) -> None:
    def behave(request: Request) -> tuple[int, int, list[tuple[object, object]]]:
        if request.max_repetitions > 6:
            return (1, 0, [])
        last = request.oids[0][len(COLUMN) :]
        start = last[0] + 1 if last else 1
        if start > 10:
            return (0, 0, [(rfc1902.ObjectName(parse_oid("1.3.6.1.2.1.2.2.1.9.1")), rfc1902.Integer32(0))])
        return (0, 0, rows(request, min(request.max_repetitions, 11 - start), start))

    agent, port = await start_bad_agent(behave)
    result = await client.walk(Target("127.0.0.1", port, v2c("public")), [COLUMN], max_repetitions=25)
    assert result.outcome is Outcome.OK, result.detail
    assert [vb.value for vb in result.varbinds] == list(range(1, 11))
    assert [r.max_repetitions for r in agent.seen[:3]] == [25, 12, 6]
    assert {r.max_repetitions for r in agent.seen[3:]} == {6}


async def test_too_big_at_one_repetition_is_an_agent_error(client: SnmpClient) -> None:
    agent, port = await start_bad_agent(lambda request: (1, 0, []))
    result = await client.walk(Target("127.0.0.1", port, v2c("public")), [COLUMN], max_repetitions=4)
    assert result.outcome is Outcome.AGENT_ERROR
    assert result.detail.startswith("tooBig")
    assert [r.max_repetitions for r in agent.seen] == [4, 2, 1]


async def test_error_status_names_the_oid(client: SnmpClient) -> None:
    _, port = await start_bad_agent(lambda request: (5, 2, [(rfc1902.ObjectName(o), rfc1902.Null("")) for o in request.oids]))
    result = await client.get(Target("127.0.0.1", port, v2c("public")), [SYS_UPTIME, SYS_NAME])
    assert result.outcome is Outcome.AGENT_ERROR
    assert result.detail == "genErr at 1.3.6.1.2.1.1.5.0"
    assert failure_reason(result.outcome, result.detail) == "error_status"


async def test_v1_no_such_name_on_get(client: SnmpClient) -> None:
    _, port = await start_bad_agent(lambda request: (2, 1, [(rfc1902.ObjectName(o), rfc1902.Null("")) for o in request.oids]))
    result = await client.get(Target("127.0.0.1", port, SnmpAuth("v1", "1", community=Secret("public", "t"))), [SYS_NAME])
    assert result.outcome is Outcome.AGENT_ERROR
    assert result.detail.startswith("noSuchName")


async def test_endless_table_hits_the_row_cap(client: SnmpClient) -> None:
    capped = SnmpClient(timeout=0.3, retries=0, max_varbinds=500)

    def behave(request: Request) -> tuple[int, int, list[tuple[object, object]]]:
        last = request.oids[0][len(COLUMN) :]
        return (0, 0, rows(request, request.max_repetitions, (last[0] if last else 0) + 1))

    agent, port = await start_bad_agent(behave)
    try:
        result = await capped.walk(Target("127.0.0.1", port, v2c("public")), [COLUMN], max_repetitions=50)
    finally:
        capped.close()
    assert result.outcome is Outcome.AGENT_ERROR
    assert result.detail.startswith("too many rows")
    assert failure_reason(result.outcome, result.detail) == "walk_limit"
    assert len(result.varbinds) == 500
    assert len(agent.seen) == 11


async def test_end_of_mib_and_no_such_instance_are_no_values(client: SnmpClient) -> None:
    def behave(request: Request) -> tuple[int, int, list[tuple[object, object]]]:
        if request.kind == "get":
            return (0, 0, [(rfc1902.ObjectName(request.oids[0]), rfc1905.noSuchInstance)])
        return (
            0,
            0,
            [
                (rfc1902.ObjectName(COLUMN + (1,)), rfc1902.Integer32(7)),
                (rfc1902.ObjectName(COLUMN + (2,)), rfc1905.endOfMibView),
            ],
        )

    _, port = await start_bad_agent(behave)
    target = Target("127.0.0.1", port, v2c("public"))
    assert (await client.get(target, [SYS_NAME])).varbinds == ()
    walked = await client.walk(target, [COLUMN])
    assert walked.outcome is Outcome.OK
    assert walked.varbinds == (Varbind(COLUMN + (1,), 2, 7),)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.binary(max_size=300))
async def test_garbage_replies_never_raise(garbage: bytes) -> None:
    snmp = SnmpClient(timeout=0.1, retries=0)
    try:
        _, port = await start_bad_agent(lambda request: garbage)
        result = await snmp.walk(Target("127.0.0.1", port, v2c("public")), [COLUMN])
    finally:
        snmp.close()
    assert result.outcome in (Outcome.TIMEOUT, Outcome.AGENT_ERROR)


VALUES = st.one_of(
    st.integers(-(2**31), 2**31 - 1).map(rfc1902.Integer32),
    st.integers(0, 2**32 - 1).map(rfc1902.Gauge32),
    st.integers(0, 2**32 - 1).map(rfc1902.Counter32),
    st.integers(0, 2**64 - 1).map(rfc1902.Counter64),
    st.integers(0, 2**32 - 1).map(rfc1902.TimeTicks),
    st.binary(max_size=20).map(rfc1902.OctetString),
    st.binary(min_size=4, max_size=4).map(rfc1902.IpAddress),
    st.lists(st.integers(0, 2**32 - 1), min_size=2, max_size=12).map(lambda ids: rfc1902.ObjectIdentifier([1, 3] + ids)),
    st.just(rfc1902.Null("")),
    st.just(rfc1905.noSuchObject),
)


@given(value=VALUES, oid=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=20))
def test_convert_any_pyasn1_value(value: object, oid: list[int]) -> None:
    varbind = convert(rfc1902.ObjectName([1, 3] + oid), value)
    if varbind is not None:
        assert varbind.oid == (1, 3, *oid)
        assert isinstance(varbind.value, (int, bytes, tuple))


# --- walk budgets ---------------------------------------------------------------------------------

UNKNOWN_TAG = rfc1902.Opaque(b"\x9f")  # sent with tag 0x49, which no SNMP type uses


def rising(value: object, per_reply: int | None = None):
    """An agent that answers every walk request with the next `per_reply` (default: max-repetitions)
    OIDs of the column, each holding `value`, for ever."""

    def behave(request: Request) -> tuple[int, int, list[tuple[object, object]]] | bytes:
        last = request.oids[0][len(COLUMN) :]
        start = (last[0] if last else 0) + 1
        count = per_reply or request.max_repetitions
        varbinds = [(rfc1902.ObjectName(COLUMN + (i,)), value) for i in range(start, start + count)]
        if value is not UNKNOWN_TAG:
            return (0, 0, varbinds)
        pdu = api.v2c.ResponsePDU()
        api.v2c.apiPDU.set_defaults(pdu)
        api.v2c.apiPDU.set_request_id(pdu, request.request_id)
        api.v2c.apiPDU.set_varbinds(pdu, varbinds)
        message = api.v2c.Message()
        api.v2c.apiMessage.set_defaults(message)
        api.v2c.apiMessage.set_community(message, b"public")
        api.v2c.apiMessage.set_pdu(message, pdu)
        return encoder.encode(message).replace(b"\x44\x01\x9f", b"\x49\x01\x9f")

    return behave


@pytest.mark.parametrize(
    "value", [rfc1905.noSuchInstance, rfc1905.noSuchObject, UNKNOWN_TAG], ids=["noSuchInstance", "noSuchObject", "unknown-tag"]
)
async def test_empty_values_on_rising_oids_count_toward_the_row_cap(value: object) -> None:
    """Such a walk never ended: only real values counted toward the cap."""
    capped = SnmpClient(timeout=0.3, retries=0, max_varbinds=500)
    agent, port = await start_bad_agent(rising(value))
    try:
        result = await asyncio.wait_for(capped.walk(Target("127.0.0.1", port, v2c("public")), [COLUMN]), 10)
    finally:
        capped.close()
    assert (result.outcome, result.detail) == (Outcome.AGENT_ERROR, "too many rows: more than 500 values received")
    assert result.varbinds == () and result.requests == len(agent.seen) == 21


async def test_one_new_row_per_reply_ends_at_the_request_budget() -> None:
    """It went on for 200,000 requests, the row cap."""
    budgeted = SnmpClient(timeout=0.3, retries=0, walk_max_requests=300)
    agent, port = await start_bad_agent(rising(rfc1902.Integer32(1), per_reply=1))
    try:
        result = await budgeted.walk(Target("127.0.0.1", port, v2c("public")), [COLUMN])
    finally:
        budgeted.close()
    assert (result.outcome, result.detail) == (Outcome.AGENT_ERROR, "walk unfinished after 300 requests (walk_max_requests)")
    assert len(result.varbinds) == len(agent.seen) == 300


async def test_a_slow_endless_walk_ends_at_the_time_budget() -> None:
    budgeted = SnmpClient(timeout=0.3, retries=0, walk_timeout=0.4)
    agent, port = await start_bad_agent(rising(rfc1902.Integer32(1), per_reply=1))
    started = time.monotonic()
    try:
        result = await budgeted.walk(Target("127.0.0.1", port, v2c("public")), [COLUMN])
    finally:
        budgeted.close()
    assert result.outcome is Outcome.AGENT_ERROR
    assert result.detail == f"walk unfinished after 0.4 s and {result.requests} requests (walk_timeout)"
    assert 0.4 <= time.monotonic() - started < 0.6
    assert len(result.varbinds) == len(agent.seen) == result.requests > 10


def test_a_v3_reply_with_a_sub_identifier_above_2_to_the_32_is_an_agent_error() -> None:
    """pyasn1 decodes any sub-identifier; the v1/v2c codec refuses them, so the v3 path does too
    (no agent here: net-snmp cannot be made to send one, so pysnmp's decoded varbinds go in)."""
    huge = rfc1902.ObjectName((1, 3, 6, 1, 2**15_000))
    reply = reply_of(None, 0, 0, [(huge, rfc1902.Integer32(1))])
    assert (reply.outcome, reply.detail) == (Outcome.AGENT_ERROR, "OID sub-identifier above 2**32-1")
    assert reply_of(None, 0, 0, [(rfc1902.ObjectName((1, 3, 2**32 - 1)), rfc1902.Integer32(1))]).outcome is Outcome.OK
