"""Field dispatch through the pipeline and the outbox (issue 12 item 6): a cut cable behind an
answering DSLAM queues one dispatch ticket once it has lasted `delay`, none before, none twice
across a restart, and its resolution once the incident resolves."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from lab.isp import build_sample_isp
from monitord.config import Config, load_config
from monitord.config.model import DispatchConfig, TicketConfig
from monitord.model import NodeRef, Outcome, Sample, Secret
from monitord.outbox import Outbox
from monitord.pipeline import Pipeline, resume
from monitord.store import Store

T0 = 1_780_000_000.0
DELAY = 600.0


def _config(tmp_path: Path) -> Config:
    config = load_config(build_sample_isp(tmp_path, base="127.6.44").config)
    tickets = TicketConfig(
        "rt", "http://127.0.0.1:9", "Network Outages", Secret("t", "test"), dispatch=DispatchConfig("Saha Ekibi", DELAY)
    )
    return replace(config, notifiers=replace(config.notifiers, tickets=tickets))


def _poll(config: Config, dslam: str, at: float, cut: bool) -> list[Sample]:
    device = [Sample(NodeRef("device", dslam), probe, at, Outcome.OK) for probe in ("icmp", "snmp:adsl")]
    lines = [line for line, spec in config.topology.lines.items() if spec.device == dslam]
    state = {"oper_up": 0.0} if cut else {"oper_up": 1.0, "snr_margin_down_db": 12.0}
    return device + [Sample(NodeRef("line", line), "snmp:adsl", at, Outcome.OK, state) for line in lines]


def _dispatch_items(store: Store) -> list[tuple[str, str, str | None]]:
    return sorted(
        (i.notification.key, i.notification.recipient, i.notification.route)
        for i in store.items("ticket")
        if "/dispatch/" in i.notification.key
    )


async def _run(pipeline: Pipeline, config: Config, dslam: str, start: float, end: float, cut: bool) -> None:
    at = start
    while at < end:
        pipeline.clock = lambda at=at: at  # type: ignore[misc]
        await pipeline.ingest(_poll(config, dslam, at, cut))
        await pipeline.tick()
        at += 30.0


def test_a_cut_cable_gets_one_dispatch_ticket_after_the_delay_and_its_resolution(tmp_path: Path) -> None:
    config = _config(tmp_path)
    dslam = min(d for d, device in config.topology.devices.items() if device.kind == "dslam")
    store = Store.open(config.state_file)
    try:
        pipeline = Pipeline(config, resume(config, store), store, Outbox(store, {}, {}), clock=lambda: T0, recheck=lambda d: None)
        asyncio.run(_run(pipeline, config, dslam, T0, T0 + 300, cut=True))
        [incident] = pipeline.engine.incidents()
        assert incident.root == NodeRef("device", dslam)
        assert _dispatch_items(store) == [], "a fault younger than the delay sends no truck"
        asyncio.run(_run(pipeline, config, dslam, T0 + 300, T0 + 120 + DELAY + 60, cut=True))
        tracking = incident.tracking
        expected = [(f"{tracking}/dispatch/create", f"{tracking}/saha", "Saha Ekibi")]
        assert _dispatch_items(store) == expected

        restarted = Pipeline(
            config, resume(config, store), store, Outbox(store, {}, {}), clock=lambda: T0, recheck=lambda d: None
        )
        asyncio.run(_run(restarted, config, dslam, T0 + DELAY + 180, T0 + DELAY + 300, cut=True))
        assert _dispatch_items(store) == expected, "after a restart: still one"

        asyncio.run(_run(restarted, config, dslam, T0 + DELAY + 300, T0 + DELAY + 1800, cut=False))
        assert restarted.engine.incidents() == []
        [create, resolve] = _dispatch_items(store)
        assert create == expected[0] and resolve[0].startswith(f"{tracking}/dispatch/resolve/") and resolve[1:] == expected[0][1:]
    finally:
        store.close()


def test_a_fault_that_clears_by_itself_within_the_delay_sends_no_truck(tmp_path: Path) -> None:
    """A DSLAM line card that resets, a cable joint that a storm shook loose for minutes: the
    outage opens, customers are told, the ticket is written, and no truck goes."""
    config = _config(tmp_path)
    dslam = min(d for d, device in config.topology.devices.items() if device.kind == "dslam")
    store = Store.open(config.state_file)
    try:
        pipeline = Pipeline(config, resume(config, store), store, Outbox(store, {}, {}), clock=lambda: T0, recheck=lambda d: None)
        asyncio.run(_run(pipeline, config, dslam, T0, T0 + 240, cut=True))
        [incident] = pipeline.engine.incidents()
        asyncio.run(_run(pipeline, config, dslam, T0 + 240, T0 + 240 + 2 * DELAY, cut=False))
        assert pipeline.engine.incidents() == [] and store.incident(incident.tracking) is not None
        assert any(i.notification.key == f"{incident.tracking}/ticket/create" for i in store.items("ticket"))
        assert _dispatch_items(store) == []
    finally:
        store.close()
