"""A `--role poller` keeps its shards' line quality roll-ups (monitord/line_history.py): it writes
their 5-minute rows itself, so an ADSL row whose readings change nothing the rules see is left
out of its batches like any other (rules/changes.py); before, every one went to the correlator,
which judged it only to roll it up."""

from __future__ import annotations

import psycopg
import pytest

from lab.isp import write_config
from monitord import batches
from monitord.demo import until
from monitord.model import StateServer
from tests.blocks import own_base
from tests.ops_fixtures import daemons, short_dir, wait_async, worlds  # noqa: F401
from tests.test_rechecks import poller_metric


def adsl_samples(server: StateServer, lines: set[str]) -> int:
    with psycopg.connect(server.url, autocommit=True) as db:
        rows = db.execute("SELECT samples FROM sample_batches").fetchall()
    return sum(1 for (text,) in rows for s in batches.load(text) if s.probe == "snmp:adsl" and s.target.id in lines)


def quality_rows(server: StateServer) -> set[str]:
    with psycopg.connect(server.url, autocommit=True) as db:
        return {device for (device,) in db.execute("SELECT device FROM line_quality WHERE step = 300")}


@pytest.mark.xdist_group("lab-world-2")  # see LAB_WORLDS in tests/conftest.py
async def test_a_poller_rolls_up_its_own_lines_and_leaves_unchanged_adsl_rows_out(worlds, daemons, pg_database) -> None:
    world = await worlds(own_base(241))
    polling = {"icmp_interval": "1h", "line_interval": "1s", "optical_interval": "1h"}
    write_config(
        world.isp.root,
        state=pg_database.url,
        state_file=None,
        cluster={"lease": "3s", "batch_every": "300ms", "resend": "1h"},
        polling=polling,
    )
    poller = await daemons(world.config, "--role", "poller")
    dslam = min(d.id for d in world.isp.devices.values() if d.kind == "dslam")
    lines = {line.id for line in world.isp.lines.values() if line.device == dslam}
    # a fresh process's start, its lease and first poll: 20 s was too short once on a loaded CI machine
    await until(lambda: adsl_samples(pg_database, lines) >= len(lines), 60, f"{dslam}'s first table poll")
    left_out = 'monitord_poller_unchanged_samples_total{probe="snmp:adsl"}'
    await wait_async(lambda: poller_metric(poller, left_out, lambda n: n >= 2 * len(lines)), 20, "two more polls left out")
    assert await poller.stop() == 0
    # the lab's readings do not move: the first poll's rows, the second's (the first with counter
    # rates), and the rows of the shard's first `resend` if its phase came early (a share of the
    # hour of its own), no more
    assert 2 * len(lines) <= adsl_samples(pg_database, lines) <= 3 * len(lines)
    assert dslam in quality_rows(pg_database)  # the period in progress, written as the poller stopped
