"""The end-to-end bench (bench/endurance.py) in small: the real daemon against lab/table_agent.py
DSLAMs and loopback modems, one region silenced with nftables and restored, so the bench cannot rot.
"""

from __future__ import annotations

import os
import shutil

import pytest

from bench.endurance import run, show
from lab.world import FAST_POLLING, FAST_RULES

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not (shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin")),
    reason="the regional fault needs nftables and root",
)


@pytest.mark.xdist_group("lab-world-2")  # see LAB_WORLDS in tests/conftest.py
async def test_a_short_endurance_run_detects_the_regional_fault_and_reports_every_figure(tmp_path):
    report = await run(
        tmp_path,
        lines=128,
        ports=8,
        minutes=0.6,
        agent_processes=1,
        polling=FAST_POLLING,
        rules=FAST_RULES,
        warmup_timeout=60,
        blocks=(250, 251),
    )
    print(show(report))
    assert (report.devices, report.lines, report.region_lines, report.not_ok) == (16, 128, 16, 0)
    assert report.detected_s is not None and report.detected_s < 10, report
    assert report.detected_root is not None and report.detected_root.split(":")[0] in ("region", "exchange", "device")
    assert report.cleared_s is not None, report  # the restore closes the region's incidents within the window
    assert 0 < report.cpu_share < 1 and 0 < report.agents_cpu_share < 1
    assert 0 < report.rss_steady_mb <= report.rss_peak_mb
    assert report.lag_max_s >= report.lag_p99_s >= 0
    assert set(report.poll_lag) == {"icmp", "line"}  # the daemon's /metrics was read, per probe class
    assert set(report.skipped) <= {"icmp", "line"} and all(n >= 0 for n in report.skipped.values())
    assert report.sms_recipients == 16 and report.sms_achieved > 0  # every subscriber of the region texted
    # each SMS named by its outbox item: every number of the region heard of the outage once and of its end once
    assert sum(report.sequences.values()) == 16 - report.shared_numbers, report.sequences
    assert all([s.split("@")[0] for s in seq] == ["outage", "restored"] for seq in report.sequences), report.sequences
    restore = report.restore
    assert restore.lines_ok_s is not None and restore.recovering_s is not None and restore.resolved_s is not None, restore
    assert restore.restored_sms == 16 and restore.lines_not_ok == 0, restore
