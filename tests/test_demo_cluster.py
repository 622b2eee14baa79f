"""`monitord demo --cluster` (issue 15 item 5): the story it prints names the node that did each
thing (the pollers' claims, the incident the leader opened, the SMS, the standby's takeover after
the leader's SIGKILL, the restoration), and nothing is left behind: no process, no folder."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from monitord.config import load_config
from monitord.demo_cluster import run_cluster_demo


def processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if proc.name.isdigit() and text in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


@pytest.mark.xdist_group("lab-world-1")  # see LAB_WORLDS in tests/conftest.py; the same as test_poller_failover.py
async def test_the_cluster_demo_tells_which_node_did_what_and_leaves_nothing_behind(tmp_path, capsys):
    root = tmp_path / "lab"
    root.mkdir()
    assert await run_cluster_demo(directory=str(root), base=f"127.{50 + os.getpid() % 150}.201") == 0
    story = capsys.readouterr().out
    print(story)

    claims = re.findall(r"\] poller-[ab] claimed exchange (\S+)", story)
    assert set(claims) == set(load_config(root / "config.yaml").topology.exchanges), story
    assert "correlator-1 leads the correlation (epoch 1)" in story and "correlator-2 stands by" in story
    opened = re.findall(r"\] correlator-1 \(leader\) opened (ARZ-\S+): outage at device:(\S+), (\d+) lines", story)
    assert len(opened) == 1, story
    tracking, _, lines = opened[0]
    assert "notifier-1 delivers" in story and f"received {lines} SMS for {tracking}" in story
    worker_sent = re.findall(r"notifier-1 says: delivering email, sms, ticket: (\d+) sent", story)
    assert len(worker_sent) == 2 and int(worker_sent[0]) <= int(worker_sent[1]), story  # its share: the SKIP LOCKED race
    assert re.search(r"KILL -9: correlator-1.*\n.*correlator-2 leads the correlation \(epoch 2\)", story), story
    assert f"correlator-2 (leader) resolved {tracking}" in story
    assert f"poller-a forwarded GET /api/incidents/{tracking} to correlator-2: resolved" in story
    assert f"received {lines} restoration SMS" in story and "0 of them sent twice" in story
    assert "correlator-1 (-9), correlator-2 (0), poller-a (0), poller-b (0), notifier-1 (0)" in story

    pg_root = re.search(r"a throw-away cluster in (\S+)\)", story)
    assert pg_root and not Path(pg_root.group(1)).exists()
    assert processes_mentioning(pg_root.group(1)) == [] and processes_mentioning(str(root)) == []
