"""PostgreSQL restarted (`pg_ctl restart -m fast`, as tests/test_pg_reconnect.py does) during a
regional outage, with two `--role poller` processes and a `--role correlator` on it (issue 15
item 3): every role reconnects and catches up, the outage is still one incident, no customer is
told twice, and no batch is lost: the correlator's cursor reaches the last batch written, and
the samples of the restart window were kept and written at the next try (no poller counted any
in monitord_poller_dropped_samples). Observed from outside: logs, HTTP, the database, the lab."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections import Counter
from collections.abc import Iterator

import aiohttp
import pytest

from lab.isp import write_config
from monitord.config import load_config
from monitord.demo import until
from monitord.model import StateServer
from tests.ops_fixtures import LISTENING, DaemonProcess, daemons, device_ok, short_dir, wait_async, worlds  # noqa: F401
from tests.pg_fixtures import FAST, PgCluster, running_cluster
from tests.test_poller_failover import LEASE, held, metric, name, sql


@pytest.fixture
def own_pg() -> Iterator[PgCluster]:
    """A cluster of this test's own: restarting the session's would cut every other test's sessions."""
    with running_cluster(FAST) as cluster:
        yield cluster


def last_seq(server: StateServer) -> int:
    return int(sql(server, "SELECT coalesce(max(seq), 0) FROM sample_batches")[0][0])


async def counted(daemon: DaemonProcess, series: str) -> float:
    return await metric(daemon, series) or 0.0


@pytest.mark.xdist_group("lab-world-1")  # with test_poller_failover.py (LAB_WORLDS in tests/conftest.py)
async def test_postgresql_restarted_during_an_outage_every_role_catches_up_and_no_one_is_told_twice(worlds, daemons, own_pg):
    server = own_pg.new_database()
    world = await worlds(f"127.{50 + os.getpid() % 150}.202")
    write_config(world.isp.root, state=server.url, state_file=None, cluster={"lease": f"{LEASE:g}s", "batch_every": "500ms"})
    topology = load_config(world.config).topology
    region = min(d.region for d in world.isp.devices.values())
    lines = {i for i, line in world.isp.lines.items() if world.isp.devices[line.device].region == region}
    phones = {topology.lines[i].phone for i in lines if topology.lines[i].phone}

    correlator = await daemons(world.config, "--role", "correlator")
    pollers = [await daemons(world.config, "--role", "poller") for _ in range(2)]
    await until(lambda: sorted(Counter(o for o, _ in held(server).values()).values()) == [2, 2], 30, "two shards each")
    await wait_async(lambda: device_ok(correlator, min(lines)), 40, "the region seen ok through the pollers' batches")

    world.faults.silence(*world.isp.addresses_under("region", region))
    down = re.compile(rf"device:({'|'.join(d for d, dev in world.isp.devices.items() if dev.region == region)}) is down")
    await until(lambda: down.search(correlator.log()), 60, "the region's devices seen down")
    before = last_seq(server)
    started = time.monotonic()
    await asyncio.to_thread(own_pg.ctl, "restart", "-m", "fast")
    restarted = time.monotonic()

    await until(lambda: last_seq(server) > before, 30, "a batch written after the restart")
    first_batch = time.monotonic() - restarted
    names = {name(p) for p in pollers}
    await until(
        lambda: {o for o, _ in held(server).values()} == names and len(held(server)) == 4, 30, "both pollers' leases held"
    )
    leases = time.monotonic() - restarted
    await asyncio.sleep(1.5)
    target = last_seq(server)
    seen: list[float] = []

    async def caught_up() -> bool:
        correlator.port = int(LISTENING.findall(correlator.log())[-1])  # leading again, it listens anew
        try:  # its HTTP is down while it steps down and takes the lead again (the lock's session ended)
            seen.append(await counted(correlator, "monitord_correlator_batch_seq"))
        except (aiohttp.ClientError, OSError):
            return False
        return seen[-1] >= target

    await wait_async(caught_up, 30, f"the correlator's cursor at batch {target}")
    cursor = time.monotonic() - restarted
    leads = re.findall(r"the correlator leader now \(epoch (\d+)\)", correlator.log())

    await until(lambda: {m.to for m in world.twilio.messages} >= phones, 90, "every customer of the region told")
    await asyncio.sleep(3)  # time for a duplicate to show up
    failed = [await counted(p, 'monitord_batches_total{result="failed"}') for p in pollers]
    dropped = [await counted(p, "monitord_poller_dropped_samples_total") for p in pollers]
    read_errors = await counted(correlator, 'monitord_batches_total{result="read_error"}')
    print(
        f"restart took {restarted - started:.1f} s; after it: a batch at {first_batch:.1f} s, both pollers' leases at "
        f"{leases:.1f} s, the correlator at batch {target} at {cursor:.1f} s; batches refused and kept per poller "
        f"{failed}, samples dropped {dropped}, correlator read errors {read_errors:g}, leader epochs {leads}"
    )
    assert dropped == [0.0, 0.0]  # the restart window's samples were kept, then written: none let go
    _, incidents = await correlator.get("/api/incidents")
    outages = [i for i in incidents if i["kind"] == "outage" and set(i["affected"]) & lines]
    assert len(outages) == 1 and set(outages[0]["affected"]) == lines, [
        (i["tracking"], i["root"], len(i["affected"])) for i in outages
    ]
    told = Counter((m.to, m.body) for m in world.twilio.messages)
    assert max(told.values()) == 1, [k for k, n in told.items() if n > 1]
    per_phone = Counter(m.to for m in world.twilio.messages if outages[0]["tracking"] in m.body)
    assert set(per_phone) == phones and set(per_phone.values()) == {1}
    created = Counter(t.tracking for t in world.tickets.tickets.values() for e in t.history if e.action == "create")
    assert created[outages[0]["tracking"]] == 1 and set(created.values()) == {1}
    assert int(sql(server, "SELECT seq FROM correlator_cursor")[0][0]) >= target  # and saved with a committed step
    for process in (*pollers, correlator):
        assert await process.stop() == 0, process.log()[-3000:]
