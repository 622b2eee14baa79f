"""SIGHUP to a `--role poller`: an invalid config is rejected with its file and line and the
poller goes on with the running one; a valid one is polled from then on (here: a new ICMP
interval, seen in the batches it writes), and what needs a restart says so. And the order of
reloads across the cluster: lines a poller polled before the correlator knew them reach the
correlator when it reloads, not an hour later."""

from __future__ import annotations

import asyncio
import re
import signal
from dataclasses import replace

import psycopg
import pytest
from plan_fixtures import TOPOLOGY

from lab.isp import write_config
from monitord import batches
from monitord.demo import until
from monitord.model import Line, NodeRef, StateServer
from monitord.poller_role import changed_lines
from tests.blocks import own_base
from tests.ops_fixtures import daemons, remove_device, short_dir, wait_async, worlds  # noqa: F401
from tests.test_rechecks import poller_metric


def icmp_polls(server: StateServer, device: str) -> int:
    with psycopg.connect(server.url, autocommit=True) as db:
        rows = db.execute("SELECT samples FROM sample_batches").fetchall()
    return sum(1 for (text,) in rows for s in batches.load(text) if s.target == NodeRef("device", device) and s.probe == "icmp")


async def line_levels_read(poller, device: str, lines: int) -> bool:
    """The poller exports what its polls saw as the daemon does: the DSLAM's SNR margins, and its build."""
    _, text = await poller.get("/metrics")
    pattern = rf'^monitord_line_level_lines\{{device="{re.escape(device)}",[^}}]*metric="snr_margin_down_db"[^}}]*\}} (\S+)$'
    found = re.search(pattern, text, re.M)
    return found is not None and float(found.group(1)) == lines and "monitord_build_info{" in text


@pytest.mark.xdist_group("lab-world-2")  # see LAB_WORLDS in tests/conftest.py
async def test_a_poller_rejects_a_bad_config_and_polls_by_a_good_one_after_sighup(worlds, daemons, pg_database) -> None:
    world = await worlds(own_base(240))
    slow = {"icmp_interval": "1h", "line_interval": "1h", "optical_interval": "1h"}
    write_config(
        world.isp.root, state=pg_database.url, state_file=None, cluster={"lease": "3s", "batch_every": "500ms"}, polling=slow
    )
    poller = await daemons(world.config, "--role", "poller")
    await wait_async(lambda: poller_metric(poller, "monitord_poller_shards", lambda n: n > 0), 30, "the poller's shards")
    dslam = min(d.id for d in world.isp.devices.values() if d.kind == "dslam")
    await until(lambda: icmp_polls(pg_database, dslam) == 1, 30, "the first poll of the shards")
    lines = sum(line.device == dslam for line in world.isp.lines.values())
    await wait_async(lambda: line_levels_read(poller, dslam, lines), 20, "the poller's line levels of its DSLAM")

    good = world.config.read_text(encoding="utf-8")
    lines = good.splitlines()
    lineno = next(n for n, line in enumerate(lines, 1) if "kind: dslam" in line)
    world.config.write_text(good.replace("kind: dslam", "kind: dslamm", 1), encoding="utf-8")
    poller.send(signal.SIGHUP)
    await until(lambda: "the running config stays in force" in poller.log(), 30, "the rejected reload")
    assert f"config.yaml:{lineno}" in poller.log() and "dslamm" in poller.log()
    await asyncio.sleep(3)
    assert icmp_polls(pg_database, dslam) == 1  # the running config's hour-long interval still holds
    assert (await poller.get("/health"))[0] == 200

    world.config.write_text(good, encoding="utf-8")
    write_config(world.isp.root, polling={"icmp_interval": "1s"}, cluster={"lease": "4s"})
    poller.send(signal.SIGHUP)
    await until(lambda: "reloaded " in poller.log(), 30, "the reload")
    assert "changes to cluster take effect at the next restart" in poller.log()
    await until(lambda: icmp_polls(pg_database, dslam) >= 4, 30, "ICMP polls at the new interval")
    assert await poller.stop() == 0, poller.log()[-3000:]


async def line_status(daemon, line: str) -> str | None:
    status, body = await daemon.get(f"/api/subscribers/{line}")
    return body["state"]["status"] if status == 200 else None


async def line_ok(daemon, line: str) -> bool:
    return await line_status(daemon, line) == "ok"


@pytest.mark.xdist_group("lab-world-1")  # see LAB_WORLDS in tests/conftest.py
async def test_lines_a_poller_knew_first_reach_the_correlator_when_it_reloads(worlds, daemons, pg_database) -> None:
    """The poller reloads first and writes the new DSLAM's lines once, which the correlator, not
    knowing them yet, passes over; it then leaves their unchanged samples out. The correlator's
    reload tells it (the leader's reload count), and it writes them again at once: with
    `resend` an hour, nothing else would."""
    world = await worlds(own_base(160))
    fast = {"icmp_interval": "1s", "line_interval": "1s", "optical_interval": "1h"}
    write_config(
        world.isp.root,
        state=pg_database.url,
        state_file=None,
        cluster={"lease": "3s", "batch_every": "300ms", "resend": "1h"},
        polling=fast,
    )
    config, subscribers = world.config.read_text(encoding="utf-8"), world.isp.subscribers.read_text(encoding="utf-8")
    dslam = max(d.id for d in world.isp.devices.values() if d.kind == "dslam")
    new = sorted(remove_device(world, dslam))
    correlator = await daemons(world.config, "--role", "correlator")
    poller = await daemons(world.config, "--role", "poller")
    known = next(i for i, line in world.isp.lines.items() if line.device != dslam)
    await wait_async(lambda: line_ok(correlator, known), 30, "a line the correlator knew from the start OK")

    world.config.write_text(config, encoding="utf-8")
    world.isp.subscribers.write_text(subscribers, encoding="utf-8")
    poller.send(signal.SIGHUP)
    await until(lambda: "reloaded " in poller.log(), 10, "the poller's reload")
    await asyncio.sleep(3)  # the new lines polled every second, written once, left out since
    assert await line_status(correlator, new[0]) is None  # not in its inventory yet

    correlator.send(signal.SIGHUP)
    await until(lambda: "reloaded " in correlator.log(), 20, "the correlator's reload")
    told = f"the correlator reloaded its config: writing the next sample of the {len(new)} lines changed since its last reload"
    await until(lambda: told in poller.log(), 10, "the poller told of it")
    for line in new:
        await wait_async(lambda line=line: line_ok(correlator, line), 15, f"{line} OK at the correlator")
    assert await poller.stop() == 0, poller.log()[-3000:]
    assert await correlator.stop() == 0, correlator.log()[-3000:]


def test_the_lines_a_reload_changes_are_those_new_or_changed_and_those_of_a_changed_device() -> None:
    moved = replace(TOPOLOGY.lines["s1"], device="sisli-dslam-02")
    olt = replace(TOPOLOGY.devices["kadikoy-olt-01"], profiles=("gpon",))
    new = replace(
        TOPOLOGY,
        lines={**TOPOLOGY.lines, "s1": moved, "s7": Line("s7", "Yeni Abone", "sisli-dslam-01")},
        devices={**TOPOLOGY.devices, "kadikoy-olt-01": olt},
    )
    assert changed_lines(TOPOLOGY, new) == {"s1", "s6", "s7"}  # s6 is the OLT's
    assert changed_lines(TOPOLOGY, TOPOLOGY) == set()
    assert changed_lines(new, TOPOLOGY) == {"s1", "s6"}  # a line gone is nothing to write
