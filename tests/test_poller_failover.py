"""Two `monitord run --role poller` processes and one `--role correlator` on one PostgreSQL state
against the lab (issue 15, items 2-3): the pollers split the exchanges by lease; one is SIGKILLed
during a regional outage, the survivor claims its shards within the lease and polls them again,
and the outage is still one incident, each customer told once, the ticket opened once. Observed
from outside: the processes' logs and HTTP, the database, the lab's Twilio and helpdesk."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import signal
import time
from collections import Counter
from typing import Any

import psycopg
import pytest

from lab.isp import write_config
from monitord.config import load_config
from monitord.demo import until
from monitord.model import StateServer
from tests.ops_fixtures import DaemonProcess, daemons, device_ok, short_dir, wait_async, worlds  # noqa: F401

LEASE = 3.0  # cluster.lease in this test
TAKEOVER_BOUND = LEASE + LEASE / 3 + 4.0  # the lease, one round of the survivor, and slack for a shared 2-core machine


def sql(server: StateServer, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(server.url, autocommit=True) as db:
        cursor = db.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def held(server: StateServer) -> dict[str, tuple[str, int]]:
    """shard -> (owner, epoch), for the leases that hold now."""
    rows = sql(server, "SELECT shard, owner, epoch FROM shards WHERE expires_at > extract(epoch FROM clock_timestamp())")
    return {shard: (owner, epoch) for shard, owner, epoch in rows}


def first_batch_of(server: StateServer, shard: str, owner_name: str) -> bool:
    """Whether the shard's current owner has written a batch of it under its epoch."""
    return bool(
        sql(
            server,
            "SELECT 1 FROM sample_batches b JOIN shards s USING (shard) WHERE shard = %s AND s.owner = %s AND b.epoch = s.epoch",
            shard,
            owner_name,
        )
    )


def longest_gap(server: StateServer, shard: str, since: float) -> float:
    """The longest time between two batches of the shard written after `since` (whoever wrote them)."""
    query = "SELECT written_at FROM sample_batches WHERE shard = %s AND written_at > %s ORDER BY seq"
    times = [t for (t,) in sql(server, query, shard, since)]
    assert len(times) >= 2, f"{shard}: {len(times)} batches"
    return max(b - a for a, b in itertools.pairwise(times))


def name(daemon: DaemonProcess) -> str:
    found = re.search(r"poller (\S+/\d+): listening", daemon.log())
    assert found, daemon.log()
    return found.group(1)


async def metric(daemon: DaemonProcess, series: str) -> float | None:
    _, text = await daemon.get("/metrics")
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
    return float(found.group(1)) if found else None


@pytest.mark.xdist_group("lab-world-1")  # see LAB_WORLDS in tests/conftest.py
async def test_kill_9_a_poller_during_a_regional_outage_the_other_re_polls_its_shards_and_no_one_is_told_twice(
    worlds, daemons, pg_database
):
    world = await worlds(f"127.{50 + os.getpid() % 150}.200")
    write_config(world.isp.root, state=pg_database.url, state_file=None, cluster={"lease": f"{LEASE:g}s", "batch_every": "500ms"})
    topology = load_config(world.config).topology
    region = min(d.region for d in world.isp.devices.values())
    lines = {i for i, line in world.isp.lines.items() if world.isp.devices[line.device].region == region}
    phones = {topology.lines[i].phone for i in lines if topology.lines[i].phone}
    exchanges = sorted(topology.exchanges)
    region_exchanges = {e for e in exchanges if topology.exchanges[e].region == region}

    correlator = await daemons(world.config, "--role", "correlator")
    first = await daemons(world.config, "--role", "poller")
    second = await daemons(world.config, "--role", "poller")
    pollers = {name(first): first, name(second): second}
    await until(lambda: sorted(Counter(o for o, _ in held(pg_database).values()).values()) == [2, 2], 30, "two shards each")
    assert sorted(held(pg_database)) == exchanges
    assert await metric(first, "monitord_poller_shards") == 2.0
    assert await metric(first, 'monitord_role{role="poller"}') == 1.0
    assert await metric(correlator, 'monitord_role{role="correlator"}') == 1.0
    watched = min(lines)
    await wait_async(lambda: device_ok(correlator, watched), 40, "the region seen ok through the pollers' batches")

    # echoes that say what a line's last one said are left out of the batches (rules/changes.py)
    async def leaving_out() -> bool:
        return all([await metric(p, 'monitord_poller_unchanged_samples_total{probe="icmp"}') for p in (first, second)])

    await wait_async(leaving_out, 30, "the pollers to leave out unchanged samples")

    owners = held(pg_database)
    victim_name = owners[min(region_exchanges)][0]  # a poller that holds a shard of the region
    victim, survivor = pollers[victim_name], next(p for n, p in pollers.items() if n != victim_name)
    lost = {shard: epoch for shard, (owner, epoch) in owners.items() if owner == victim_name}

    world.faults.silence(*world.isp.addresses_under("region", region))
    down = re.compile(rf"device:({'|'.join(d for d, dev in world.isp.devices.items() if dev.region == region)}) is down")
    await until(lambda: down.search(correlator.log()), 60, "the region's devices seen down")

    # the correlator's steps asked for second looks, and the pollers that hold the shards took them
    async def rechecked() -> bool:
        sent = await metric(correlator, 'monitord_rechecks_total{result="sent"}')
        return bool(sent) and sum([await metric(p, "monitord_poller_rechecks_total") or 0 for p in (first, second)]) > 0

    await wait_async(rechecked, 10, "the pollers to take the correlator's rechecks")
    victim.proc.send_signal(signal.SIGKILL)
    killed_wall, killed = time.time(), time.monotonic()
    assert victim.proc.wait(timeout=10) == -signal.SIGKILL

    survivor_name = name(survivor)

    def taken_over() -> bool:
        now = held(pg_database)
        return all(now.get(shard, ("", 0))[0] == survivor_name and now[shard][1] > epoch for shard, epoch in lost.items())

    await until(taken_over, 30, "the survivor to claim the dead poller's shards")
    takeover = time.monotonic() - killed

    def re_polled() -> list[float] | None:
        firsts = [
            sql(pg_database, "SELECT min(written_at) FROM sample_batches WHERE shard = %s AND epoch > %s", shard, epoch)[0][0]
            for shard, epoch in lost.items()
        ]
        return None if None in firsts else firsts

    await until(re_polled, 30, "a batch of each taken shard from the survivor")
    first_batches = re_polled()
    assert first_batches is not None
    re_poll = max(first_batches) - killed_wall
    print(f"shards {sorted(lost)}: claimed by the survivor {takeover:.1f} s after the kill, re-polled {re_poll:.1f} s after it")
    assert takeover < TAKEOVER_BOUND and re_poll < TAKEOVER_BOUND + 2
    assert await metric(survivor, "monitord_poller_shards") == 4.0
    assert f"took shard {sorted(lost)[0]}" in survivor.log()

    joined_wall = time.time()
    joiner = await daemons(world.config, "--role", "poller")  # a poller joins mid-outage: it is given its share
    await until(lambda: Counter(o for o, _ in held(pg_database).values()).get(name(joiner)) == 2, 30, "the joiner's share")
    rebalanced = time.time() - joined_wall
    moved = sorted(s for s, (o, _) in held(pg_database).items() if o == name(joiner))
    await until(lambda: all(first_batch_of(pg_database, s, name(joiner)) for s in moved), 30, "the joiner's first batches")
    await asyncio.sleep(2)
    gaps = [longest_gap(pg_database, shard, joined_wall - 2) for shard in moved]
    print(
        f"a poller joined: its 2 shards {moved} after {rebalanced:.1f} s; longest gap between a shard's batches {max(gaps):.1f} s"
    )
    assert max(gaps) < 2 * LEASE  # a round to let go, a round to claim, a poll: no lease-long gap

    await until(lambda: {m.to for m in world.twilio.messages} >= phones, 90, "every customer of the region told")
    await asyncio.sleep(3)  # time for a duplicate to show up
    _, incidents = await correlator.get("/api/incidents")
    outages = [i for i in incidents if i["kind"] == "outage" and set(i["affected"]) & lines]
    decided = [line for line in correlator.log_lines() if "incident " in line]
    assert len(outages) == 1 and set(outages[0]["affected"]) == lines, (
        [(i["tracking"], i["root"], len(i["affected"])) for i in outages],
        decided,
    )
    told = Counter((m.to, m.body) for m in world.twilio.messages)
    assert max(told.values()) == 1, [k for k, n in told.items() if n > 1]
    per_phone = Counter(m.to for m in world.twilio.messages if outages[0]["tracking"] in m.body)
    assert set(per_phone) == phones and set(per_phone.values()) == {1}, (phones - set(per_phone), decided)
    created = Counter(t.tracking for t in world.tickets.tickets.values() for e in t.history if e.action == "create")
    assert created[outages[0]["tracking"]] == 1 and set(created.values()) == {1}
    cursor = sql(pg_database, "SELECT seq FROM correlator_cursor")[0][0]
    assert cursor > 0 and await metric(correlator, "monitord_correlator_batch_seq") >= cursor
    for process in (survivor, joiner, correlator):
        assert await process.stop() == 0, process.log()[-3000:]
    assert held(pg_database) == {}  # a clean stop frees the shards at once
