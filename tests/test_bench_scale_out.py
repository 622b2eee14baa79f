"""The scale-out bench (bench/scale_out.py) in small, so that it cannot rot: 480 lines, 1 and 2
pollers and a correlator on a throw-away PostgreSQL, a region silenced with nftables and
restored, then a notifier worker's SMS; every per-unit figure is produced and sane."""

from __future__ import annotations

import math
import os
import shutil

import pytest

from bench.scale_out import measure, show

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not (shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin")),
    reason="the regional fault needs nftables and root",
)


@pytest.mark.xdist_group("lab-world-2")  # see LAB_WORLDS in tests/conftest.py; the same as test_endurance.py
async def test_the_quick_scale_out_run_splits_the_shards_and_gives_every_per_unit_cost():
    # 127.246-247.x: apart from the test workers' blocks (tests/blocks.py claims from 127.50 up) and the other benches'
    report = await measure(480, [1, 2], interval=3.0, window=6.0, sms=100, fault_runs={2}, blocks=(246, 247), warmup=60)
    print(show(report))
    one, two = report.runs
    assert (one.lines, one.devices) == (480, 10)
    assert one.shards == [10] and sorted(two.shards) == [5, 5]  # 10 exchanges hold DSLAMs: 10 shards, split in two
    for run in (one, two):
        figures = run.figures()
        assert all(math.isfinite(v) for v in figures.values()), figures
        # every line is polled by table and by echo: about 3 samples a line an interval, and devices' own;
        # the pollers leave out those that change nothing the line's rules see (rules/changes.py): in the
        # steady lab nearly all but each line's first and those written again every `resend`
        expected = run.lines * 3 / run.interval
        polled = figures["samples_per_s"] / (1 - figures["left_out_share"])
        assert 0.6 * expected < polled < 1.5 * expected, figures
        assert 0.3 < figures["left_out_share"] < 1.0, figures
        assert 0.6 < figures["of_schedule"] < 1.5, figures  # the line polls were counted, each batch read once
        # read every second: only a batch taken and pruned by the correlator within that second is missed
        assert run.samples["missed batches"] <= run.batches // 10, run.samples
        assert 0 < figures["poller_us_per_line_poll"] < 20_000 and 0 < figures["correlator_us_per_sample"] < 5_000
        assert figures["wal_bytes_per_sample"] > 0 and figures["commits_per_s"] > 0
        # each batch a row (and its deletion); the servers' statistics lag up to a second behind, so no equality
        assert run.batches > 0 and run.steady["rows:sample_batches"] > run.batches / 2
        assert len(run.load) == 4 and all(len(load.split()) == 3 for load in run.load)
    assert not one.changes and not one.fault  # the fault only where asked
    region_lines, region_devices = 96, 2  # region-0 holds DSLAMs 0 and 8 of capacity.py's round-robin
    assert two.changes == 2 * (region_lines + region_devices)
    assert 0 < two.detected_s < 60 and 0 < two.repaired_s < 90
    # the per-change figures are differences against the steady rate: in a few seconds on a shared
    # machine their sign is noise, so what is checked is that the phase was counted
    assert all(math.isfinite(two.figures()[k]) for k in ("correlator_us_per_change", "wal_bytes_per_change"))
    assert two.fault["correlator_cpu"] > 0 and two.fault["wal"] > 0 and two.fault["seconds"] > 0, two.fault
    # the repair waited for the outage's incident: each line of the region joined it
    assert two.fault.get("rows:engine_members", 0) >= region_lines and two.fault.get("rows:incidents", 0) >= 1, two.fault
    assert 0 < report.notifier_ms_per_sms < 50 and report.notifier_per_s > 0
    assert len(report.load) == 2
