"""Incidents as alerts in a real Prometheus Alertmanager, its webhook receiver posting to a local sink."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from outbox_fixtures import FAST, drain, queue
from plan_fixtures import TOPOLOGY, Change, incident

from lab.alertmanager import AlertmanagerLab
from lab.isp import build_sample_isp, write_config
from lab.world import FAST_RULES
from monitord.channels import build_notifiers
from monitord.config import load_config
from monitord.model import IncidentKind, NodeRef, Notification, Outcome, Phase, Sample
from monitord.outbox import Outbox
from monitord.pipeline import Pipeline, resume
from monitord.store import Store
from notices.alerts import AlertSettings, due_refreshes, plan_alerts
from notifiers.alertmanager import AlertmanagerAlerts
from notifiers.base import DeliveryError
from tests.test_cable_segments import cable_plant

SETTINGS = AlertSettings(resend=60.0, ticket_link="http://rt.test/Search/Simple.html?q={tracking}")


def pushes(tracking: str, start: float, *, resolve_after: float | None = None) -> list[Notification]:
    """An incident opened `start`, pushed as planned; resolved `resolve_after` seconds later if given."""
    opened = incident(tracking, opened=start)
    items = [n for n, _ in plan_alerts([Change(opened, "opened")], TOPOLOGY, SETTINGS)]
    if resolve_after is not None:
        end = start + resolve_after
        done = replace(opened, phase=Phase.RESOLVED, updated_at=end, resolved_at=end)
        items += [n for n, _ in plan_alerts([Change(done, "resolved")], TOPOLOGY, SETTINGS)]
    return items


@pytest.fixture
async def am(tmp_path: Path) -> AsyncIterator[AlertmanagerLab]:
    async with AlertmanagerLab(tmp_path) as lab:
        yield lab


# --- planning (pure) ----------------------------------------------------------------------------


def test_an_incident_is_one_alert_with_its_place_in_the_labels() -> None:
    ((item, not_before),) = plan_alerts([Change(incident(), "opened")], TOPOLOGY, SETTINGS)
    body = json.loads(item.body)
    assert not_before is None and item.channel == "alert" and item.action == "firing"
    assert body["labels"] == {
        "alertname": "NetworkIncident",
        "tracking": "ARZ-2026-000123",
        "kind": "outage",
        "severity": "critical",
        "region": "İstanbul Avrupa",
        "exchange": "Şişli Santrali",
        "device": "sisli-dslam-01",
    }
    assert body["annotations"]["affected"] == "4"
    assert body["annotations"]["ticket"] == "http://rt.test/Search/Simple.html?q=ARZ-2026-000123"
    assert "endsAt" not in body  # the notifier gives it its lease when it sends it


def test_a_change_of_kind_resolves_the_old_alert_and_fires_the_new_one() -> None:
    now = incident(kind=IncidentKind.DEGRADATION, updated=time.time())
    items = [n for n, _ in plan_alerts([Change(now, "severity", was=IncidentKind.OUTAGE)], TOPOLOGY, SETTINGS)]
    assert [(n.action, json.loads(n.body)["labels"]["kind"]) for n in items] == [
        ("resolved", "outage"),
        ("firing", "degradation"),
    ]


def test_an_exchange_incident_has_no_device_label() -> None:
    ((item, _),) = plan_alerts([Change(incident(root=NodeRef("exchange", "sisli")), "opened")], TOPOLOGY, SETTINGS)
    assert "device" not in json.loads(item.body)["labels"]


def test_a_cable_segments_incident_names_its_cmts() -> None:
    plant = cable_plant()
    ((item, _),) = plan_alerts([Change(incident(root=NodeRef("segment", "fn-1")), "opened")], plant, SETTINGS)
    labels = json.loads(item.body)["labels"]
    assert (labels["device"], labels["exchange"]) == ("c1", "X")
    ((gone, _),) = plan_alerts([Change(incident(root=NodeRef("segment", "fn-9")), "opened")], plant, SETTINGS)
    assert "device" not in json.loads(gone.body)["labels"]  # gone from the inventory: no label, no error


def test_refreshes_come_once_per_resend_period_while_open() -> None:
    start = 1_000_000.0
    pushed: dict[str, int] = {}
    open_, closed = incident("A", opened=start), incident("B", opened=start, phase=Phase.RESOLVED)
    assert due_refreshes([open_, closed], TOPOLOGY, SETTINGS, start + 30, pushed) == []
    first = due_refreshes([open_, closed], TOPOLOGY, SETTINGS, start + 61, pushed)
    assert [n.key for n, _ in first] == ["A/alert/refresh/1"]
    assert due_refreshes([open_], TOPOLOGY, SETTINGS, start + 70, pushed) == []
    assert [n.key for n, _ in due_refreshes([open_], TOPOLOGY, SETTINGS, start + 121, {})] == ["A/alert/refresh/2"]


# --- the notifier against a real Alertmanager ---------------------------------------------------


async def test_open_then_resolve_reaches_the_webhook_with_the_labels(am: AlertmanagerLab) -> None:
    notifier = AlertmanagerAlerts(am.url, resend=30.0, timeout=5)
    try:
        firing, resolved = pushes("ARZ-2026-000201", time.time() - 5, resolve_after=4)
        await notifier.send(firing)
        (active,) = await am.alerts()
        assert active["labels"]["tracking"] == "ARZ-2026-000201" and active["labels"]["region"] == "İstanbul Avrupa"
        lease = dt.datetime.fromisoformat(active["endsAt"]).timestamp() - time.time()
        assert 115 < lease <= 120  # 4 x resend from the push
        await am.wait_for(lambda: bool(am.sunk("firing", tracking="ARZ-2026-000201")))
        got = am.sunk("firing", tracking="ARZ-2026-000201")[0]
        assert got["labels"]["device"] == "sisli-dslam-01" and got["annotations"]["affected"] == "4"
        await notifier.send(resolved)
        await am.wait_for(lambda: bool(am.sunk("resolved", tracking="ARZ-2026-000201")))
        assert await am.alerts() == []
    finally:
        await notifier.close()


async def test_an_alert_alertmanager_refuses_is_a_clear_permanent_error(am: AlertmanagerLab) -> None:
    notifier = AlertmanagerAlerts(am.url, timeout=5)
    bad = Notification("X/alert/opened", "alert", "X", "firing", "", json.dumps({"labels": {}, "annotations": {}}), "X")
    try:
        with pytest.raises(DeliveryError) as caught:
            await notifier.send(bad)
        assert not caught.value.retryable
        assert "HTTP 400" in caught.value.reason and "at least one label pair required" in caught.value.reason
    finally:
        await notifier.close()


async def test_alertmanager_down_is_retryable(tmp_path: Path) -> None:
    lab = AlertmanagerLab(tmp_path)  # never started: its port refuses
    notifier = AlertmanagerAlerts(lab.url, timeout=2)
    try:
        with pytest.raises(DeliveryError) as caught:
            await notifier.send(pushes("ARZ-2026-000202", time.time())[0])
        assert caught.value.retryable and "cannot reach Alertmanager" in caught.value.reason
        assert caught.value.kind == "unreachable"
    finally:
        await notifier.close()


# --- through the outbox: Alertmanager down for a while loses nothing -------------------------------


async def test_pushes_queued_while_alertmanager_is_down_all_arrive_in_order(am: AlertmanagerLab, tmp_path: Path) -> None:
    store = Store.open(tmp_path / "state.db")
    notifier = AlertmanagerAlerts(am.url, resend=30.0, timeout=2)
    policy = replace(FAST, outage_probe=0.3, down_after=2)
    outbox = Outbox(store, {"alert": notifier}, {"alert": policy}, rng=random.Random(3))
    try:
        await am.stop()
        now = time.time()
        queue(store, pushes("ARZ-2026-000301", now - 10, resolve_after=5) + pushes("ARZ-2026-000302", now - 2))
        runner = asyncio.create_task(outbox.run())
        await asyncio.sleep(2.0)  # down: every attempt refused, the channel held as unavailable
        assert store.depth() == 3
        await am.start()
        async with asyncio.timeout(15):
            while store.depth():
                await asyncio.sleep(0.05)
        await outbox.stop(timeout=2.0)
        await runner
        active = {a["labels"]["tracking"] for a in await am.alerts()}
        assert active == {"ARZ-2026-000302"}  # the resolve went after its firing push, never before
        await am.wait_for(lambda: bool(am.sunk("firing", tracking="ARZ-2026-000302")))
        assert outbox.counts["alert"].sent == 3 and outbox.counts["alert"].dead == 0
    finally:
        await notifier.close()
        store.close()


async def test_a_refused_alert_is_dead_lettered_and_the_rest_go(am: AlertmanagerLab, tmp_path: Path) -> None:
    store = Store.open(tmp_path / "state.db")
    notifier = AlertmanagerAlerts(am.url, timeout=2)
    outbox = Outbox(store, {"alert": notifier}, {"alert": FAST}, rng=random.Random(5))
    bad = Notification("Y/alert/opened", "alert", "Y", "firing", "", json.dumps({"labels": {}}), "Y")
    try:
        queue(store, [bad, *pushes("ARZ-2026-000401", time.time())])
        await drain(outbox, store, 10)
        assert outbox.counts["alert"].dead == 1 and outbox.counts["alert"].sent == 1
        assert [a["labels"]["tracking"] for a in await am.alerts()] == ["ARZ-2026-000401"]
    finally:
        await notifier.close()
        store.close()


# --- the pipeline plans the pushes, the outbox delivers them ----------------------------------------


async def test_a_line_outage_in_the_pipeline_fires_and_is_pushed_again_each_resend(am: AlertmanagerLab, tmp_path: Path) -> None:
    isp = build_sample_isp(tmp_path, base="127.6.42")
    write_config(tmp_path, {"alertmanager": {"url": am.url, "resend": "5s"}}, rules=FAST_RULES, state_file=str(tmp_path / "s.db"))
    config = load_config(isp.config)
    devices = config.topology.devices
    line = min(i for i, entry in config.topology.lines.items() if devices[entry.device].kind == "dslam")
    clock = [time.time() - 20]
    store = Store.open(config.state_file)
    notifiers = build_notifiers(config)
    try:
        pipeline = Pipeline(config, resume(config, store), store, Outbox(store, {}, {}), clock=lambda: clock[0], recheck=print)
        await pipeline.ingest([Sample(NodeRef("line", line), "snmp:adsl", clock[0], Outcome.NOT_FOUND)])
        for _ in range(3):  # opens, then one resend period: one refresh
            clock[0] += 4
            await pipeline.tick()
        (opened,) = pipeline.engine.incidents()
        outbox = Outbox(store, {"alert": notifiers["alert"]}, {"alert": FAST})
        await drain(outbox, store, 10)
        assert outbox.counts["alert"].sent == 2, "the opening push and one refresh"
        (active,) = await am.alerts()
        assert active["labels"]["tracking"] == opened.tracking and active["labels"]["kind"] == "outage"
        assert active["labels"]["device"] == config.topology.lines[line].device
        clock[0] = opened.opened_at + 2 * 5 + 0.5  # the next resend period: one more push
        await pipeline.tick()
        assert store.depth() == 1
        clock[0] += 1.5  # past the look-up interval (resend / 4), still the same period: nothing new
        await pipeline.tick()
        assert store.depth() == 1
    finally:
        for n in notifiers.values():
            await n.close()
        store.close()
