"""SIGHUP to a `--role poller`: an invalid config is rejected with its file and line and the
poller goes on with the running one; a valid one is polled from then on (here: a new ICMP
interval, seen in the batches it writes), and what needs a restart says so."""

from __future__ import annotations

import asyncio
import re
import signal

import psycopg
import pytest

from lab.isp import write_config
from monitord import batches
from monitord.demo import until
from monitord.model import NodeRef, StateServer
from tests.blocks import own_base
from tests.ops_fixtures import daemons, short_dir, wait_async, worlds  # noqa: F401
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
    await until(lambda: icmp_polls(pg_database, dslam) == 1, 10, "the first poll of the shards")
    lines = sum(line.device == dslam for line in world.isp.lines.values())
    await wait_async(lambda: line_levels_read(poller, dslam, lines), 20, "the poller's line levels of its DSLAM")

    good = world.config.read_text(encoding="utf-8")
    lines = good.splitlines()
    lineno = next(n for n, line in enumerate(lines, 1) if "kind: dslam" in line)
    world.config.write_text(good.replace("kind: dslam", "kind: dslamm", 1), encoding="utf-8")
    poller.send(signal.SIGHUP)
    await until(lambda: "the running config stays in force" in poller.log(), 10, "the rejected reload")
    assert f"config.yaml:{lineno}" in poller.log() and "dslamm" in poller.log()
    await asyncio.sleep(3)
    assert icmp_polls(pg_database, dslam) == 1  # the running config's hour-long interval still holds
    assert (await poller.get("/health"))[0] == 200

    world.config.write_text(good, encoding="utf-8")
    write_config(world.isp.root, polling={"icmp_interval": "1s"}, cluster={"lease": "4s"})
    poller.send(signal.SIGHUP)
    await until(lambda: "reloaded " in poller.log(), 10, "the reload")
    assert "changes to cluster take effect at the next restart" in poller.log()
    await until(lambda: icmp_polls(pg_database, dslam) >= 4, 15, "ICMP polls at the new interval")
    assert await poller.stop() == 0, poller.log()[-3000:]
