"""A network partition between a poller and PostgreSQL (issue 15 item 3): two `--role poller`
processes against the lab; one reaches PostgreSQL over a TCP hop in a network namespace the test
creates (tests/pg_partition.py), and nft drops that hop. The other claims its shards once their
leases run out; when the link heals, the cut-off poller's batches of the shards it lost are
refused (Fenced), no batch under a lost epoch lands after the takeover, and it re-joins with its
share. Observed from outside: the processes' logs and the database."""

from __future__ import annotations

import os
import re
import time
from collections import Counter

import pytest

from lab.isp import write_config
from monitord.config import load_config
from monitord.demo import until
from tests.ops_fixtures import daemons, short_dir, worlds  # noqa: F401
from tests.pg_partition import Link, pg_link  # noqa: F401
from tests.test_poller_failover import LEASE, TAKEOVER_BOUND, held, name, sql


@pytest.mark.xdist_group("lab-world-1")  # with test_poller_failover.py (LAB_WORLDS in tests/conftest.py)
async def test_a_poller_cut_off_from_postgresql_loses_its_shards_and_writes_nothing_stale_when_it_comes_back(
    worlds, daemons, pg_database, pg_link: Link
):
    world = await worlds(f"127.{50 + os.getpid() % 150}.201")
    write_config(world.isp.root, state=pg_database.url, state_file=None, cluster={"lease": f"{LEASE:g}s", "batch_every": "500ms"})
    exchanges = sorted(load_config(world.config).topology.exchanges)
    text = world.config.read_text(encoding="utf-8")
    assert pg_database.url in text
    cut_off_config = world.config.with_name("cut-off.yaml")
    cut_off_config.write_text(text.replace(pg_database.url, pg_link.url(pg_database.url.rpartition("/")[2])), encoding="utf-8")

    victim = await daemons(cut_off_config, "--role", "poller")
    other = await daemons(world.config, "--role", "poller")
    victim_name, other_name = name(victim), name(other)
    await until(lambda: sorted(Counter(o for o, _ in held(pg_database).values()).values()) == [2, 2], 30, "two shards each")
    assert sorted(held(pg_database)) == exchanges
    lost = {shard: epoch for shard, (owner, epoch) in held(pg_database).items() if owner == victim_name}
    await until(
        lambda: all(
            sql(pg_database, "SELECT 1 FROM sample_batches WHERE shard = %s AND epoch = %s", s, e) for s, e in lost.items()
        ),
        20,
        "the cut-off poller's batches before the cut",
    )

    pg_link.cut()
    cut = time.monotonic()

    def taken_over() -> bool:
        now = held(pg_database)
        return all(now.get(s, ("", 0))[0] == other_name and now[s][1] > e for s, e in lost.items())

    await until(taken_over, 30, "the other poller to claim the cut-off poller's shards")
    takeover = time.monotonic() - cut
    await until(lambda: "ran out: no longer polling them" in victim.log(), 10, "the cut-off poller to stop polling")
    stopped = time.monotonic() - cut
    taken_seq = sql(pg_database, "SELECT max(seq) FROM sample_batches")[0][0] or 0
    refused_before = victim.log().count("refused")

    pg_link.heal()
    healed = time.monotonic()
    await until(lambda: victim.log().count("refused") > refused_before, 20, "the cut-off poller's stale batch refused")
    fenced = time.monotonic() - healed
    await until(
        lambda: Counter(o for o, _ in held(pg_database).values()) == {victim_name: 2, other_name: 2}, 30, "a fair share again"
    )
    rejoined = time.monotonic() - healed
    print(
        f"cut: the other poller claimed {sorted(lost)} after {takeover:.1f} s (lease {LEASE:g} s), the cut-off one stopped "
        f"polling after {stopped:.1f} s; healed: its first batch refused (Fenced) after {fenced:.1f} s, "
        f"2 shards again after {rejoined:.1f} s"
    )
    assert takeover < TAKEOVER_BOUND
    assert re.search(rf"batch of shard ({'|'.join(lost)}) refused: shard \S+ is held by {re.escape(other_name)}", victim.log())

    stale = sql(
        pg_database,
        "SELECT shard, epoch, seq FROM sample_batches WHERE shard = ANY(%s) AND epoch <= %s AND seq > %s",
        list(lost),
        max(lost.values()),
        taken_seq,
    )
    stale = [(s, e, q) for s, e, q in stale if e <= lost[s]]
    assert stale == [], stale  # nothing of a lost epoch written after the takeover
    mine = sorted(s for s, (o, _) in held(pg_database).items() if o == victim_name)
    await until(
        lambda: all(
            sql(
                pg_database,
                "SELECT 1 FROM sample_batches b JOIN shards s USING (shard) WHERE shard = %s AND b.epoch = s.epoch AND s.owner = %s",
                s,
                victim_name,
            )
            for s in mine
        ),
        20,
        "the re-joined poller's batches under its new epochs",
    )
    for process in (victim, other):
        assert await process.stop() == 0, process.log()[-3000:]
