"""The scale runs' snmpd (lab/fast_snmpd.py, used by bench/snmp_walk.py): its agents answer the
SNMPv3 user `bench/snmp_walk.py --v3` walks with, and the v3 walk reads what the v2c walk reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.fast_snmpd import V3_AUTH, Agent, start_snmpd
from lab.snmp import stop_process
from monitord.model import Outcome, Secret, SnmpAuth
from probes.snmp import SnmpClient, parse_oid
from probes.snmpbase import Target

PUBLIC = SnmpAuth("public", "2c", community=Secret("public", "test"))
IF_INDEX, IF_DESCR = parse_oid("1.3.6.1.2.1.2.2.1.1"), parse_oid("1.3.6.1.2.1.2.2.1.2")


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    (started,) = start_snmpd(tmp_path, 1, 2**20)
    try:
        yield started
    finally:
        stop_process(started.process)


async def test_the_v3_user_walks_what_v2c_walks(agent: Agent) -> None:
    client = SnmpClient(timeout=2.0, retries=1)
    try:
        v2c = await client.walk(Target("127.0.0.1", agent.port, PUBLIC), [IF_INDEX, IF_DESCR], 2)
        v3 = await client.walk(Target("127.0.0.1", agent.port, V3_AUTH), [IF_INDEX, IF_DESCR], 2)
        wrong = SnmpAuth("wrong", "3", user=V3_AUTH.user, auth_protocol="sha", auth_key=Secret("not-the-key", "t"))
        refused = await client.get(Target("127.0.0.1", agent.port, wrong), [IF_INDEX + (1,)])
    finally:
        client.close()
    assert (v2c.outcome, v3.outcome) == (Outcome.OK, Outcome.OK), (v2c.detail, v3.detail)
    assert len(v2c.varbinds) >= 2  # lo at least, its index and name
    assert [(vb.oid, vb.value) for vb in v3.varbinds] == [(vb.oid, vb.value) for vb in v2c.varbinds]
    assert v3.requests > 1  # max-repetitions 2: the walk went on past its first reply
    assert refused.outcome is Outcome.AUTH_FAILURE
