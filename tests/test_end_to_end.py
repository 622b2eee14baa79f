"""The whole daemon against the simulated ISP: real SNMP and ICMP traffic on loopback, real peers.

A DSLAM and its modems go silent -> exactly one incident, one ticket, one SMS per affected
subscriber, one NOC e-mail; one line's SNR margin drops -> one line incident. Then the repair is
verified, everyone affected hears so once, and a restart announces nothing again.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from lab.isp import write_config
from lab.world import NOC_EMAIL, World, start_world, stop_world
from monitord.config import load_config
from monitord.daemon import Daemon
from monitord.demo import find_incident, until
from monitord.model import IncidentKind, NodeRef, Phase, Status
from tests.blocks import own_base


async def started(config_path: Path) -> tuple[Daemon, asyncio.Event, asyncio.Task]:
    daemon = Daemon(load_config(config_path))
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    await until(lambda: daemon.ready.is_set() or task.done(), 30, "the daemon to start")
    if task.done():
        task.result()
    return daemon, stop, task


def line_count(daemon: Daemon, status: Status) -> int:
    return sum(n for (_, _, _, s), n in daemon.status_counts().items() if s == status.value)


async def scrape(daemon: Daemon) -> str:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{daemon.http_port}/metrics") as response:
            assert response.status == 200
            return await response.text()


@pytest.mark.xdist_group("lab-world-2")  # see LAB_WORLDS in tests/conftest.py
async def test_outage_and_degradation_end_to_end(tmp_path):
    world = await start_world(tmp_path, base=own_base(60))  # no other test run uses it
    try:
        topo = load_config(world.config).topology
        daemon, stop, task = await started(world.config)
        await until(lambda: line_count(daemon, Status.OK) == len(topo.lines), 60, "all lines ok")

        dslam = min((d for d in topo.devices.values() if d.kind == "dslam"), key=lambda d: d.id)
        behind = {i for i, line in topo.lines.items() if line.device == dslam.id}
        world.tickets.fail_next(500, 3)  # the helpdesk refuses at first: retried, not lost
        world.faults.silence(*world.isp.addresses_under("device", dslam.id))

        root = NodeRef("device", dslam.id)
        outage = await until(lambda: find_incident(daemon, root, IncidentKind.OUTAGE), 60, "the outage")
        assert outage.affected == behind
        phones = {topo.lines[i].phone for i in behind if topo.lines[i].phone}
        await until(lambda: len({m.to for m in world.twilio.messages}) >= len(phones), 30, "outage SMS")
        await until(lambda: outage.tracking in world.tickets.tickets, 60, "the ticket after refusals")
        await until(lambda: any(NOC_EMAIL in m.rcpt_tos for m in world.smtp.messages), 30, "NOC e-mail")
        await asyncio.sleep(3)  # anything more would be a storm

        assert [i.tracking for i in daemon.open_incidents()] == [outage.tracking]
        assert list(world.tickets.tickets) == [outage.tracking]
        outage_sms = Counter(m.to for m in world.twilio.messages)
        assert set(outage_sms) == phones and set(outage_sms.values()) == {1}
        assert all(outage.tracking in m.body for m in world.twilio.messages)
        assert sum(NOC_EMAIL in m.rcpt_tos for m in world.smtp.messages) == 1
        assert daemon.node_state(root).status is Status.DOWN
        assert {daemon.line_state(i).status for i in behind} == {Status.UNREACHABLE}

        metrics = await scrape(daemon)
        assert 'monitord_incidents_open{kind="outage"} 1.0' in metrics
        region = topo.exchanges[dslam.exchange].region
        unreachable = f'monitord_lines{{device="{dslam.id}",exchange="{dslam.exchange}",region="{region}",state="unreachable"}} {float(len(behind))}'
        assert unreachable in metrics

        line = min(i for i, l in topo.lines.items() if l.device != dslam.id and l.port is not None)
        world.snmp.set_line_metric(line, "snr_margin_down_db", 4.5)
        degraded = await until(lambda: find_incident(daemon, NodeRef("line", line), IncidentKind.DEGRADATION), 60, "degradation")
        assert degraded.affected == {line}
        assert any("snr_margin_down_db" in e for e in degraded.evidence)
        await until(lambda: degraded.tracking in world.tickets.tickets, 30, "the degradation ticket")
        assert len(daemon.open_incidents()) == 2

        sent_before = len(world.twilio.messages)
        world.faults.restore_all()
        world.snmp.set_line_metric(line, "snr_margin_down_db", 12.0)
        for tracking in (outage.tracking, degraded.tracking):
            await until(lambda: (i := daemon.store.incident(tracking)) and i.phase is Phase.RESOLVED, 90, f"{tracking} resolved")
        await until(lambda: len(world.twilio.messages) - sent_before >= len(phones), 30, "restoration SMS")
        restored = Counter(m.to for m in world.twilio.messages[sent_before:] if m.to in phones)
        assert set(restored) == phones and set(restored.values()) == {1}
        assert world.tickets.tickets[outage.tracking].status == "resolved"
        # the degraded line's restoration SMS may still wait: it is no repeat if the restart sends it
        await until(lambda: daemon.store.depth() == 0, 30, "every notice delivered")

        stop.set()
        await task
        sent = len(world.twilio.messages)
        tickets = {t: len(v.history) for t, v in world.tickets.tickets.items()}
        daemon, stop, task = await started(world.config)
        await asyncio.sleep(5)
        assert (
            len(world.twilio.messages) == sent
        ), f"a restart must not announce anything again: {[(m.to, m.body) for m in world.twilio.messages[sent:]]}"
        assert {t: len(v.history) for t, v in world.tickets.tickets.items()} == tickets
        assert daemon.open_incidents() == []
        stop.set()
        await task
    finally:
        await stop_world(world)


def test_check_command(tmp_path):
    """`monitord check` exits 0 on a good config and 1 with file:line on a bad one."""
    from lab.isp import build_sample_isp

    isp = build_sample_isp(tmp_path)
    good = subprocess.run([sys.executable, "-m", "monitord.cli", "check", str(isp.config)], capture_output=True, text=True)
    assert good.returncode == 0, good.stderr
    assert "100 subscriber lines" in good.stdout
    text = isp.config.read_text()
    isp.config.write_text(text.replace("kind: dslam", "kind: dslamm", 1))
    bad = subprocess.run([sys.executable, "-m", "monitord.cli", "check", str(isp.config)], capture_output=True, text=True)
    assert bad.returncode == 1
    lineno = text.splitlines().index(next(l for l in text.splitlines() if "kind: dslam" in l)) + 1
    assert f"config.yaml:{lineno}:" in bad.stderr and "dslamm" in bad.stderr
    run = subprocess.run(
        [sys.executable, "-m", "monitord.cli", "run", str(isp.config)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1 and "dslamm" in run.stderr


def test_no_notice_is_queued_for_a_channel_without_a_notifier(tmp_path):
    """Only tickets configured: customer SMS and e-mail would wait forever, so none are queued."""
    from lab.isp import build_sample_isp, write_config
    from monitord.model import Incident
    from rules.engine import IncidentChange, Step

    isp = build_sample_isp(tmp_path)
    write_config(tmp_path, {"tickets": {"kind": "webhook", "url": "http://127.0.0.1:9/tickets"}})
    daemon = Daemon(load_config(isp.config))
    line = min(daemon.config.topology.lines)
    outage = Incident(
        "ARZ-2026-000001",
        IncidentKind.OUTAGE,
        NodeRef("line", line),
        Phase.OPEN,
        100.0,
        100.0,
        frozenset([line]),
        ("modem silent",),
    )
    asyncio.run(daemon.pipeline._commit(Step(incidents=(IncidentChange(outage, "opened", frozenset([line])),)), 100.0))
    assert {item.notification.channel for item in daemon.store.items()} == {"ticket"}
    daemon.store.close()


def sms_to(world: World, phone: str) -> list[str]:
    return [m.body for m in world.twilio.messages if m.to == phone]


@pytest.mark.xdist_group("lab-world-1")  # see LAB_WORLDS in tests/conftest.py
async def test_silent_modem_is_the_customers_side_end_to_end(tmp_path):
    """docs/decisions.md rows 2 and 3 on the lab's ISP. Two modems stop answering while their
    DSLAM keeps them in sync: nothing for `cpe_hold`, then one SMS about the modem each, in the
    subscriber's language; no ticket, no NOC e-mail, nothing when they answer again. Then a line
    drops out of sync: a ticket, a NOC e-mail and an SMS about the customer's line, not the area."""
    world = await start_world(tmp_path, base=own_base(80))  # apart from the test above
    try:
        local = datetime.now(ZoneInfo("Europe/Istanbul"))
        quiet = f"{(local + timedelta(hours=2)):%H:00}-{(local + timedelta(hours=3)):%H:00}"  # not now
        write_config(tmp_path, {"sms": {"quiet_hours": quiet}})  # lab rules: cpe_hold 12s
        topo = load_config(world.config).topology
        daemon, stop, task = await started(world.config)
        await until(lambda: line_count(daemon, Status.OK) == len(topo.lines), 60, "all lines ok")

        dslam = min((d for d in topo.devices.values() if d.kind == "dslam"), key=lambda d: d.id)
        exchange = topo.exchanges[dslam.exchange].name
        on_dslam = sorted(i for i, line in topo.lines.items() if line.device == dslam.id and line.phone)
        silent = [next(i for i in on_dslam if topo.lines[i].language == language) for language in ("tr", "en")]
        world.faults.silence(*(world.isp.lines[i].modem for i in silent))
        t0 = asyncio.get_running_loop().time()

        await until(lambda: all(daemon.line_state(i).status is Status.CPE for i in silent), 30, "status cpe")
        assert daemon.open_incidents() == []
        for i in silent:
            incident = await until(lambda: find_incident(daemon, NodeRef("line", i), IncidentKind.CPE), 60, "the cpe incident")
            assert incident.affected == {i}
        assert asyncio.get_running_loop().time() - t0 >= 12 - 2  # the hold, less the first round's delay
        phones = {i: topo.lines[i].phone for i in silent}
        await until(lambda: all(sms_to(world, p) for p in phones.values()), 30, "the modem SMS")
        await asyncio.sleep(3)  # anything more would be wrong

        modem = {
            "tr": f"Modeminizden sinyal alamıyoruz, {exchange} hattınız çalışıyor. Modemin açık, kablolarının takılı olduğunu kontrol edin.",
            "en": f"We get no signal from your modem (your {exchange} line works). Please check it is on and its cables are plugged in.",
        }
        assert len(world.twilio.messages) == len(silent)
        for i in silent:
            assert sms_to(world, phones[i]) == [modem[topo.lines[i].language]]
        assert world.tickets.tickets == {}
        assert world.smtp.messages == []
        assert {i.kind for i in daemon.open_incidents()} == {IncidentKind.CPE}

        world.faults.restore_all()
        for i in silent:
            await until(lambda: daemon.line_state(i).status is Status.OK, 30, "the modem answers")
        await until(lambda: daemon.open_incidents() == [], 60, "the cpe incidents resolved")
        await asyncio.sleep(2)
        assert len(world.twilio.messages) == len(silent) and world.tickets.tickets == {} and world.smtp.messages == []

        other = next(i for i in on_dslam if i not in silent and topo.lines[i].language == "tr")
        world.snmp.set_oper_status(other, False)
        fault = await until(lambda: find_incident(daemon, NodeRef("line", other), IncidentKind.OUTAGE), 60, "the line fault")
        phone = topo.lines[other].phone
        await until(lambda: sms_to(world, phone), 30, "the line fault SMS")
        await until(lambda: fault.tracking in world.tickets.tickets, 30, "the ticket")
        await until(lambda: any(NOC_EMAIL in m.rcpt_tos for m in world.smtp.messages), 30, "the NOC e-mail")
        assert sms_to(world, phone) == [f"Hattınızda arıza var ({exchange}), ekiplerimiz çalışıyor. Takip no: {fault.tracking}"]

        world.snmp.set_oper_status(other, True)
        await until(lambda: (i := daemon.store.incident(fault.tracking)) and i.phase is Phase.RESOLVED, 60, "the line fixed")
        await until(lambda: len(sms_to(world, phone)) == 2, 30, "the restored SMS")
        await asyncio.sleep(2)
        assert (
            sms_to(world, phone)[1]
            == f"Hattınızdaki arıza ({exchange}) giderildi, hizmetiniz yeniden çalışıyor. Takip no: {fault.tracking}"
        )
        assert list(world.tickets.tickets) == [fault.tracking]
        assert [e.action for e in world.tickets.tickets[fault.tracking].history] == ["create", "comment", "resolve"]
        assert world.tickets.tickets[fault.tracking].status == "resolved"
        noc = [m.message["Subject"] for m in world.smtp.messages if NOC_EMAIL in m.rcpt_tos]
        assert [subject.split(":")[0] for subject in noc] == [
            f"[{fault.tracking}] AÇILDI Kesinti",
            f"[{fault.tracking}] ÇÖZÜLDÜ Kesinti",
        ]
        assert len(world.smtp.messages) == 2
        assert len(world.twilio.messages) == len(silent) + 2
        stop.set()
        await task
    finally:
        await stop_world(world)
