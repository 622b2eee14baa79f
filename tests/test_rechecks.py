"""The correlator's rechecks carried to the pollers over a real PostgreSQL's NOTIFY
(monitord/rechecks.py): what one step asks for goes in one notification, a long list is split
under PostgreSQL's payload limit, a database that refuses costs a warning, never the step, and
a trap the correlator receives has the device polled at once by the poller of its shard."""

from __future__ import annotations

import asyncio
import logging
import re

import psycopg
import pytest

from lab.isp import write_config
from lab.postgres import free_port
from monitord import batches
from monitord.demo import until
from monitord.model import NodeRef, StateServer
from monitord.rechecks import PAYLOAD, RecheckListener, RecheckSender, payloads
from tests.blocks import own_base
from tests.ops_fixtures import daemons, short_dir, wait_async, worlds  # noqa: F401
from tests.test_traps import LINK_DOWN, run


def test_a_long_list_is_split_under_the_payload_limit_and_nothing_is_lost() -> None:
    devices = [f"dslam-{n:05d}.exchange-{n % 97:03d}" for n in range(3000)]
    sent = list(payloads(devices))
    assert len(sent) > 1 and all(len(p.encode()) <= PAYLOAD for p in sent)
    assert [d for p in sent for d in p.split()] == devices


async def test_what_a_step_asks_for_reaches_a_listening_poller_in_one_notification(pg_database: StateServer) -> None:
    heard: list[list[str]] = []
    listener = asyncio.create_task(RecheckListener(pg_database).run(heard.append))
    sender = RecheckSender(pg_database)
    try:
        await asyncio.sleep(0.5)  # the listener's LISTEN is in place
        for device in ("ist-dslam-02", "ist-cmts-01", "ist-dslam-01", "ist-dslam-02"):
            sender.ask(device)  # as a step does, one call per device
        await until(lambda: heard, 10, "the poller to hear the rechecks")
        await asyncio.sleep(0.3)
        assert heard == [["ist-cmts-01", "ist-dslam-01", "ist-dslam-02"]]
        assert (sender.sent, sender.failed) == (3, 0)
    finally:
        listener.cancel()
        sender.close()


async def test_a_database_that_refuses_costs_a_warning_and_the_next_asks_still_go(caplog) -> None:
    sender = RecheckSender(StateServer(f"postgresql://monitord@127.0.0.1:{free_port()}/monitord?connect_timeout=2"))
    caplog.set_level(logging.WARNING, "monitord")
    try:
        sender.ask("ist-dslam-01")
        await until(lambda: sender.failed == 1, 10, "the refused NOTIFY")
        sender.ask("ist-dslam-02")
        await until(lambda: sender.failed == 2, 10, "the second refused NOTIFY")
        assert sender.sent == 0
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "next polls answer instead" in warnings[0]  # once per failing streak
    finally:
        sender.close()


@pytest.mark.xdist_group("lab-world-2")  # see LAB_WORLDS in tests/conftest.py
async def test_a_trap_received_by_the_correlator_is_polled_at_once_by_the_poller_of_its_shard(
    worlds, daemons, pg_database
) -> None:
    world = await worlds(own_base(230))
    write_config(
        world.isp.root,
        state=pg_database.url,
        state_file=None,
        cluster={"lease": "3s", "batch_every": "500ms"},
        traps={"listen": "127.0.0.1:0"},
        polling={"icmp_interval": "1h", "line_interval": "1h", "optical_interval": "1h"},
    )
    correlator = await daemons(world.config, "--role", "correlator")
    poller = await daemons(world.config, "--role", "poller")
    found = re.search(r"receiving SNMP traps and informs on 127\.0\.0\.1:(\d+)", correlator.log())
    assert found, correlator.log()
    await wait_async(lambda: poller_metric(poller, "monitord_poller_shards", lambda n: n > 0), 30, "the poller's shards")
    await asyncio.sleep(2)  # the first polls of its shards done: from now on nothing is due for an hour
    dslam = min(d.id for d in world.isp.devices.values() if d.kind == "dslam")
    device = world.isp.devices[dslam]
    before = batched_polls(pg_database, dslam)
    trap = ["snmptrap", "-v", "2c", "-c", device.community or "", f"--clientaddr={device.address}", f"127.0.0.1:{found.group(1)}"]
    assert await run(*trap, "", LINK_DOWN) == 0
    await wait_async(lambda: poller_metric(poller, "monitord_poller_rechecks_total", lambda n: n >= 1), 10, "the recheck")
    await until(lambda: batched_polls(pg_database, dslam) > before, 10, f"a batch with a fresh poll of {dslam}")
    for process in (poller, correlator):
        assert await process.stop() == 0, process.log()[-3000:]


async def poller_metric(poller, series: str, test) -> bool:
    _, text = await poller.get("/metrics")
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
    return found is not None and test(float(found.group(1)))


def batched_polls(server: StateServer, device: str) -> int:
    """How many of the device's own samples the pollers' batches hold."""
    with psycopg.connect(server.url, autocommit=True) as db:
        rows = db.execute("SELECT samples FROM sample_batches").fetchall()
    return sum(1 for (text,) in rows for s in batches.load(text) if s.target == NodeRef("device", device))
