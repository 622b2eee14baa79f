"""A silenced incident in a real Prometheus Alertmanager: not pushed while the silence lasts (nor
re-pushed), pushed firing at the first step after it expires with the line still out."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from outbox_fixtures import FAST, drain

from lab.alertmanager import AlertmanagerLab
from lab.isp import build_sample_isp, write_config
from lab.world import FAST_RULES
from monitord.channels import build_notifiers
from monitord.config import load_config
from monitord.model import NodeRef, Outcome, Sample, Silence
from monitord.outbox import Outbox
from monitord.pipeline import Pipeline, resume
from monitord.store import Store


@pytest.fixture
async def am(tmp_path: Path) -> AsyncIterator[AlertmanagerLab]:
    async with AlertmanagerLab(tmp_path) as lab:
        yield lab


async def test_a_silenced_line_outage_reaches_alertmanager_only_once_the_silence_expires(
    am: AlertmanagerLab, tmp_path: Path
) -> None:
    isp = build_sample_isp(tmp_path, base="127.6.43")
    write_config(tmp_path, {"alertmanager": {"url": am.url, "resend": "5s"}}, rules=FAST_RULES, state_file=str(tmp_path / "s.db"))
    config = load_config(isp.config)
    devices = config.topology.devices
    line = min(i for i, entry in config.topology.lines.items() if devices[entry.device].kind == "dslam")
    clock = [time.time() - 40]
    store = Store.open(config.state_file)
    notifiers = build_notifiers(config)
    try:
        pipeline = Pipeline(config, resume(config, store), store, Outbox(store, {}, {}), clock=lambda: clock[0], recheck=print)
        await pipeline.start()
        muted = Silence(
            "silence-am", (NodeRef("line", line),), (), clock[0], clock[0] + 20, "ayse.noc", "customer's works", clock[0]
        )
        await pipeline.add_silence(muted)
        await pipeline.ingest([Sample(NodeRef("line", line), "snmp:adsl", clock[0], Outcome.NOT_FOUND)])
        for _ in range(4):  # opens, then resend periods whose re-pushes are skipped
            clock[0] += 4
            await pipeline.tick()
        (opened,) = pipeline.engine.incidents()
        outbox = Outbox(store, {"alert": notifiers["alert"]}, {"alert": FAST})
        await drain(outbox, store, 10)
        assert outbox.counts["alert"].sent == 0 and await am.alerts() == []
        assert [n.key for n in store.held_items()] == [f"{opened.tracking}/alert/opened"]
        assert pipeline.silencing.suppressed["alert"] >= 2, "the opening push held, re-pushes skipped"

        clock[0] = muted.end + 0.5  # expired by itself, the line still out
        await pipeline.tick()
        outbox = Outbox(store, {"alert": notifiers["alert"]}, {"alert": FAST})
        await drain(outbox, store, 10)
        assert outbox.counts["alert"].sent >= 1 and store.held_items() == []
        (active,) = await am.alerts()
        assert active["labels"]["tracking"] == opened.tracking and "silenced" not in active["labels"]
    finally:
        for n in notifiers.values():
            await n.close()
        store.close()
