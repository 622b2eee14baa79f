"""The console bench (bench/console.py) in small, so that it cannot rot: 128 lines, one exchange
silenced with nftables, every page fetched twice by a signed-in noc user."""

from __future__ import annotations

import os
import shutil

import pytest

from bench.console import run, show
from lab.world import FAST_POLLING, FAST_RULES

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not (shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin")),
    reason="the fault needs nftables and root",
)


@pytest.mark.xdist_group("lab-world-1")  # see LAB_WORLDS in tests/conftest.py
async def test_a_short_console_run_fetches_every_page_whole(tmp_path):
    report = await run(
        tmp_path,
        lines=128,
        ports=8,
        repeat=2,
        agent_processes=1,
        modems=2,
        polling=FAST_POLLING,
        rules=FAST_RULES,
        warmup_timeout=60,
        settle=2,
        idle=1,
        blocks=(44, 45),
    )
    print(show(report))
    assert (report.devices, report.lines, report.not_ok) == (16, 128, 0)
    assert report.detected_s is not None and report.open_incidents >= 1
    names = [p.name for p in report.pages]
    assert names[:3] == ["board", "board rows", "tree"] and "lookup: tracking number" in names
    for page in report.pages:
        assert page.statuses == {200: 2} and page.complete == 2 and page.size > 0, page
    tree = report.pages[2]
    assert tree.wire < tree.size / 4, tree  # sent gzipped, as a browser asks
    assert report.busy_lag_s >= 0 and report.idle_lag_s >= 0
    assert report.lag_metric is not None and set(report.skipped) <= {"icmp", "line"}
