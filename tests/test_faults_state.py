"""Faults of state: merged incidents, tracking numbers across clock steps, a full disk.

The daemon runs on a settable clock and is fed samples directly (the rules are what is under
test, not the probes); what it queues is delivered through the real outbox to the lab's
Twilio endpoint and helpdesk webhook on loopback.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web

import monitord.channels
from lab.isp import build_sample_isp, write_config, write_secret
from lab.tickets import TicketDesk
from lab.twilio import TwilioLab
from lab.world import FAST_RULES
from monitord.channels import build_notifiers
from monitord.clock import AnchoredClock
from monitord.config import Config, load_config
from monitord.config.rules import parse_rules
from monitord.daemon import Daemon
from monitord.database import StoreError
from monitord.http import make_app
from monitord.metrics import register
from monitord.model import Incident, IncidentKind, NodeRef, Outcome, Phase, Sample
from monitord.outbox import Outbox
from monitord.pipeline import WRITE_RETRY_MAX
from monitord.store import MIGRATIONS, Store, migrate
from rules.engine import Engine
from tests.outbox_fixtures import FAST, drain
from tests.rules_fixtures import canonical, dead, healthy, line, topology
from tests.test_http import documented

START = 1_780_000_000.0  # 2026-05-28
IST = ZoneInfo("Europe/Istanbul")


@dataclass(slots=True)
class Clock:
    now: float = START

    def __call__(self) -> float:
        return self.now


@dataclass(slots=True)
class Peers:
    twilio: TwilioLab
    desk: TicketDesk


@pytest.fixture
async def peers() -> AsyncIterator[Peers]:
    async with TwilioLab() as twilio, TicketDesk(token="lab-helpdesk-token") as desk:
        yield Peers(twilio, desk)


def lab_config(root: Path, peers: Peers | None, state_file: Path | None = None, **overrides: object) -> Config:
    """The sample ISP with SMS and tickets pointing at `peers` (or at a closed port, to queue only)."""
    isp = build_sample_isp(root, base="127.6.40")
    twilio_url, desk_url = (peers.twilio.base_url, peers.desk.url) if peers else ("http://127.0.0.1:9", "http://127.0.0.1:9/t")
    notifiers = {
        "sms": {
            "kind": "twilio",
            "account_sid": peers.twilio.account_sid if peers else "AC" + "0" * 32,
            "auth_token": write_secret(root, "twilio.token", peers.twilio.auth_token if peers else "x" * 32),
            "from": "+908502200000",
            "base_url": twilio_url,
            "rate": 50,
        },
        "tickets": {"kind": "webhook", "url": desk_url, "token": write_secret(root, "desk.token", "lab-helpdesk-token")},
    }
    if peers is None:
        notifiers["email"] = {
            "host": "127.0.0.1",
            "port": 9,
            "starttls": False,
            "from": "monitord@isp.example",
            "noc": ["noc@isp.example"],
        }
    write_config(root, notifiers, rules=FAST_RULES, state_file=str(state_file or root / "state.db"), **overrides)
    return load_config(isp.config)


def dslam_with_sms_lines(config: Config, skip: int = 0) -> tuple[str, list[str]]:
    """A DSLAM (the `skip`-th) and its lines whose subscribers are told by SMS."""
    topo = config.topology
    dslam = sorted(d for d, device in topo.devices.items() if device.kind == "dslam")[skip]
    lines = sorted(i for i, line in topo.lines.items() if line.device == dslam)
    return dslam, [
        i
        for i in lines
        if topo.lines[i].phone and not topo.lines[i].sms_opt_out and not (topo.lines[i].prefer_email and topo.lines[i].email)
    ]


def device_up(dslam: str, lines: list[str], at: float) -> list[Sample]:
    return [
        Sample(NodeRef("device", dslam), "icmp", at, Outcome.OK, {"rtt_ms": 1.0, "loss": 0.0}),
        Sample(NodeRef("device", dslam), "snmp:adsl", at, Outcome.OK),
        *(Sample(NodeRef("line", i), "snmp:adsl", at, Outcome.OK) for i in lines),
    ]


def device_down(dslam: str, at: float) -> list[Sample]:
    return [Sample(NodeRef("device", dslam), probe, at, Outcome.TIMEOUT) for probe in ("icmp", "snmp:adsl")]


async def deliver(daemon: Daemon, clock: Clock) -> None:
    """Everything queued so far goes out through the real notifiers, as the running daemon would."""
    outbox = Outbox(daemon.store, build_notifiers(daemon.config), {c: FAST for c in daemon.pipeline.channels}, clock=clock)
    await drain(outbox, daemon.store, 20.0)


# --- 16: merged incidents ---------------------------------------------------------------------


@pytest.mark.parametrize("restart", [False, True], ids=["running", "restarted-between-steps"])
async def test_a_line_incident_absorbed_by_its_dslam_is_merged_and_every_customer_hears_numbers_they_have(
    tmp_path: Path, peers: Peers, restart: bool
) -> None:
    """A line is down (its own incident), then its DSLAM dies: the engine reports the line's
    incident "merged" into the DSLAM's, the line's ticket gets "merged into" and is resolved, and
    its subscriber learns the new number before hearing "restored" under it. A restart between
    each step (the engine restored from its snapshot) changes nothing."""
    config = lab_config(tmp_path, peers)
    topo = config.topology
    dslam, lines = dslam_with_sms_lines(config)
    all_lines = sorted(i for i, line in topo.lines.items() if line.device == dslam)
    alone = lines[0]
    clock = Clock()
    daemon = Daemon(config, clock=clock)
    changes: list[tuple[str, str, str | None, tuple[str, ...]]] = []

    async def at(offset: float, samples: list[Sample] | None = None) -> None:
        clock.now = START + offset
        step = await daemon.pipeline.ingest(samples) if samples is not None else daemon.pipeline.engine.tick(clock.now)
        if samples is None:
            await daemon.pipeline._commit(step, clock.now)
        changes.extend((c.change, c.incident.tracking, c.merged_into, c.replaces) for c in step.incidents)

    def maybe_restart() -> None:
        nonlocal daemon
        if restart:
            daemon.store.close()
            daemon = Daemon(config, clock=clock)

    try:
        await at(0, device_up(dslam, all_lines, START))
        await at(10, [Sample(NodeRef("line", alone), "snmp:adsl", START + 10, Outcome.NOT_FOUND)])
        await at(14)
        await deliver(daemon, clock)
        maybe_restart()
        await at(20, device_down(dslam, START + 20))
        for offset in (21, 22, 23, 24, 25):
            await at(offset)
        await deliver(daemon, clock)
        maybe_restart()
        await at(40, device_up(dslam, all_lines, START + 40))
        for offset in range(41, 60):
            await at(offset)
        await deliver(daemon, clock)
        old, new = "ARZ-2026-000001", "ARZ-2026-000002"
        ended = daemon.store.incident(old)
        assert (ended.phase, ended.resolved_at, ended.evidence[-1]) == (Phase.RESOLVED, START + 20, f"merged into {new}")
        assert ended.affected == {alone}
    finally:
        daemon.store.close()

    assert changes == [
        ("opened", old, None, ()),
        ("merged", old, new, ()),
        ("promoted", new, None, (old,)),
        ("grew", new, None, ()),
        ("recovering", new, None, ()),
        ("resolved", new, None, ()),
    ]
    tickets = peers.desk.tickets
    assert [e.action for e in tickets[old].history] == ["create", "resolve"]
    assert tickets[old].status == "resolved"
    assert (
        tickets[old].history[-1].body
        == f"Bu kayıt, daha geniş kapsamlı {new} numaralı arıza kaydıyla birleştirildi; takip o kayıt üzerinden yapılacak.\n"
    )
    # promoted at once; grew and recovering within comment_every: one comment before the resolve
    assert [e.action for e in tickets[new].history] == ["create", "comment", "comment", "resolve"]
    assert tickets[new].status == "resolved"

    heard: dict[str, list[str]] = {}
    for message in peers.twilio.messages:
        heard.setdefault(message.to, []).append(message.body)
    area = topo.exchanges[topo.devices[dslam].exchange].name
    phone = {i: topo.lines[i].phone for i in lines}
    english = {i for i in lines if topo.lines[i].language == "en"}

    def outage(t: str, i: str) -> str:
        return (
            f"There is an internet outage in your area ({area}); our teams are on it. Ref: {t}"
            if i in english
            else f"Bölgenizde ({area}) internet arızası var, ekiplerimiz çalışıyor. Takip no: {t}"
        )

    def restored(t: str, i: str) -> str:
        return (
            f"The outage in your area ({area}) is fixed and your service is back. Ref: {t}"
            if i in english
            else f"Bölgenizdeki ({area}) arıza giderildi, hizmetiniz yeniden çalışıyor. Takip no: {t}"
        )

    line_fault = (
        f"There is a fault on your line ({area}); our teams are on it. Ref: {old}"
        if alone in english
        else f"Hattınızda arıza var ({area}), ekiplerimiz çalışıyor. Takip no: {old}"
    )  # one line: not the area
    merged = (
        f"Your fault {old} is now part of a wider incident in {area}. New ref: {new}"
        if alone in english
        else f"Arıza kaydınız {old}, {area} genel arızasına bağlandı. Yeni takip no: {new}"
    )
    expected = {phone[alone]: [line_fault, merged, restored(new, alone)]}
    expected.update({phone[i]: [outage(new, i), restored(new, i)] for i in lines[1:]})
    assert heard == expected


def test_the_engine_reports_a_merge_even_when_the_parent_reopens() -> None:
    """The DSLAM's incident is recovering and comes back in the step that absorbs a line's
    incident: that step says "promoted" with `replaces` (it used to say "reopened", checked
    first, and the merge went unsaid), and the line's incident says "merged" into it."""
    topo = topology({"x": {"d0": [0, 1, 2], "d1": [0]}})
    e = Engine(topo, parse_rules({"settle": "1m", "stable": "5m", "reopen_window": "1h"}), "ARZ")
    e.observe(healthy(topo, START), START)
    e.observe(dead("d0", START + 10), START + 10)
    (opened,) = e.tick(START + 80).incidents
    assert [c.change for c in e.observe(healthy(topo, START + 100), START + 100).incidents] == ["recovering"]
    (_, child) = e.observe([line("d0-1", Outcome.NOT_FOUND, START + 600)], START + 600).incidents
    assert (child.change, str(child.incident.root)) == ("opened", "line:d0-1")
    parent, old = opened.incident.tracking, child.incident.tracking
    step = e.observe(dead("d0", START + 700), START + 700)
    assert [(c.change, c.incident.tracking, c.merged_into, c.replaces) for c in step.incidents] == [
        ("promoted", parent, None, (old,)),
        ("merged", old, parent, ()),
    ]
    assert e.incident(old) is None and e.incident(parent).phase is Phase.UPDATED


# --- 15: tracking numbers and the clock -------------------------------------------------------


def utc(text: str) -> float:
    return datetime.fromisoformat(text + "+00:00").timestamp()


@pytest.mark.parametrize("between", ["running", "restart", "snapshot lost"])
def test_a_clock_stepped_back_across_new_year_never_issues_a_number_twice(tmp_path: Path, between: str) -> None:
    """A line outage on 31 Dec, one after midnight, then the wall clock steps back into 31 Dec (and,
    in two variants, the daemon restarts; once with its engine snapshot gone): the third outage
    gets a fresh 2026 number, the first incident's row is untouched, and all three tickets and
    NOC e-mails are queued."""
    config = lab_config(tmp_path, None)
    lines = [dslam_with_sms_lines(config, n)[1][0] for n in range(3)]
    clock = Clock()
    daemon = Daemon(config, clock=clock)

    def outage(line: str, when: str) -> str:
        clock.now = utc(when)
        asyncio.run(daemon.pipeline.ingest([Sample(NodeRef("line", line), "snmp:adsl", clock.now, Outcome.NOT_FOUND)]))
        clock.now += 4
        asyncio.run(daemon.pipeline.tick())
        (found,) = [i for i in daemon.open_incidents() if i.root == NodeRef("line", line)]
        return found.tracking

    try:
        first = outage(lines[0], "2026-12-31 18:00:00")  # 21:00 in Istanbul
        opened_first = daemon.store.incident(first)
        second = outage(lines[1], "2027-01-01 00:30:00")
        if between != "running":
            daemon.store.close()
            if between == "snapshot lost":
                with sqlite3.connect(config.state_file) as db:
                    for table in ("engine_head", "engine_targets", "engine_incidents"):
                        db.execute(f"DELETE FROM {table}")
            daemon = Daemon(config, clock=clock)
        third = outage(lines[2], "2026-12-31 19:00:00")

        assert (first, second, third) == ("ARZ-2026-000001", "ARZ-2027-000001", "ARZ-2026-000002")
        assert daemon.store.incident(first) == opened_first
        queued = {(i.notification.channel, i.notification.recipient, i.notification.action) for i in daemon.store.items()}
        for tracking in (first, second, third):
            assert ("ticket", tracking, "create") in queued
        noc = [i for i in daemon.store.items() if i.notification.action == "noc-opened"]
        assert sorted(i.notification.incident for i in noc) == sorted((first, second, third))
    finally:
        daemon.store.close()


def test_the_year_of_a_tracking_number_is_the_configured_zones() -> None:
    """23:30 UTC on 31 Dec is already 02:30 on 1 Jan in Istanbul."""
    topo = topology({"x": {"d0": [0]}})
    rules = parse_rules({"settle": "1m"})
    for zone, year in (("Europe/Istanbul", 2027), ("UTC", 2026)):
        e = Engine(topo, rules, "ARZ", zone)
        t = utc("2026-12-31 23:28:00")
        e.observe(healthy(topo, t), t)
        e.observe(dead("d0", t + 10), t + 10)
        (opened,) = e.tick(t + 120).incidents
        assert datetime.fromtimestamp(t + 120, IST).year == 2027
        assert opened.incident.tracking == f"ARZ-{year}-000001"


def test_numbers_the_helpdesk_knows_are_reserved_after_the_state_file_was_lost(tmp_path: Path) -> None:
    """`monitord reserve-tracking` on a new state file: the next outage continues after it."""
    config = lab_config(tmp_path, None)
    done = subprocess.run(
        [sys.executable, "-m", "monitord.cli", "reserve-tracking", str(config.source), "ARZ-2026-000417"],
        capture_output=True,
        text=True,
        env={**os.environ},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    clock = Clock(utc("2026-06-01 12:00:00"))
    daemon = Daemon(config, clock=clock)
    try:
        asyncio.run(daemon.pipeline.ingest(device_down(dslam_with_sms_lines(config)[0], clock.now)))
        clock.now += 4
        asyncio.run(daemon.pipeline.tick())
        assert [i.tracking for i in daemon.open_incidents()] == ["ARZ-2026-000418"]
    finally:
        daemon.store.close()


# --- 14: a full disk --------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of our own: the state file's disk, which the test can fill up."""
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mountpoint)], check=True)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=True)


def fill(disk: Path) -> Path:
    """Take every free byte of `disk`; returns the file that holds them."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


async def serve(daemon: Daemon) -> tuple[web.AppRunner, str]:
    register(daemon.registry, daemon)
    runner = web.AppRunner(make_app(daemon), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def test_a_full_disk_keeps_what_the_engine_decided_and_catches_up_once_space_returns(
    tmp_path: Path, small_disk: Path, peers: Peers
) -> None:
    """The state file's disk fills up (a real tmpfs), then a DSLAM dies: the daemon keeps
    taking polls, the incident opens in memory and /health, /ready and the metrics say the
    store is failing. Once space returns, the incident and every one of its notices are written,
    and each subscriber gets exactly one outage SMS, the helpdesk one ticket."""
    config = lab_config(tmp_path, peers, state_file=small_disk / "state.db")
    dslam, lines = dslam_with_sms_lines(config)
    all_lines = sorted(i for i, line in config.topology.lines.items() if line.device == dslam)
    clock = Clock()
    daemon = Daemon(config, clock=clock)
    daemon.ready.set()
    runner, url = await serve(daemon)
    try:
        await daemon.pipeline.ingest(device_up(dslam, all_lines, clock.now))
        daemon.store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        filler = fill(small_disk)

        clock.now += 10
        await daemon.pipeline.ingest(device_down(dslam, clock.now))
        for _ in range(6):
            clock.now += 1
            await daemon.pipeline.tick()
        (outage,) = daemon.open_incidents()
        assert daemon.store.incident(outage.tracking) is None and daemon.store.items() == []
        assert daemon.unwritten is not None and "full" in daemon.unwritten.error
        assert set(daemon.unwritten.incidents) == {outage.tracking}
        status, body = await get(f"{url}/api/incidents/{outage.tracking}")  # as the board shows it, not yet written
        assert status == 200 and set(json.loads(body)["affected"]) == set(all_lines), body
        for path in ("/health", "/ready"):
            status, body = await get(url + path)
            assert status == 503 and json.loads(body)["store"]["error"] == "database or disk is full"
            assert json.loads(body)["store"]["incidents"] == 1
            documented(path, "get", 503, json.loads(body))
        metrics = (await get(url + "/metrics"))[1]
        assert 'monitord_store_unwritten{kind="incidents"} 1.0' in metrics
        failures = re.search(r"^monitord_store_write_failures_total (\S+)$", metrics, re.M)
        assert failures and float(failures[1]) == daemon.write_failures >= 1

        clock.now += 1
        await daemon.pipeline.ingest(device_down(dslam, clock.now))  # polling goes on while the disk is full
        filler.unlink()
        clock.now += WRITE_RETRY_MAX
        await daemon.pipeline.tick()
        assert daemon.unwritten is None
        assert daemon.store.incident(outage.tracking) == daemon.pipeline.engine.incident(outage.tracking)
        saved = daemon.store.load_engine()
        assert saved is not None and canonical(saved.snapshot) == canonical(daemon.pipeline.engine.snapshot())
        assert (await get(url + "/health"))[0] == 200 and (await get(url + "/ready"))[0] == 200
        queued = sorted((i.notification.channel, i.notification.recipient) for i in daemon.store.items())
        phones = sorted(config.topology.lines[i].phone for i in lines)
        assert queued == sorted([("ticket", outage.tracking)] + [("sms", p) for p in phones])

        await deliver(daemon, clock)
        assert sorted(m.to for m in peers.twilio.messages) == phones
        assert all(outage.tracking in m.body for m in peers.twilio.messages)
        assert [e.action for e in peers.desk.tickets[outage.tracking].history] == ["create"]
    finally:
        await runner.cleanup()
        daemon.store.close()


def test_the_daemon_clock_does_not_follow_a_wall_clock_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The wall clock jumps 5 hours ahead (and then 2 back) while the daemon runs: its clock, which
    the rules and the outbox share, moves only by the time that passed, so no notice ages by 5
    hours and no timer fires early. (time.time is patched: the test cannot step the host's clock.)"""
    daemon = Daemon(lab_config(tmp_path, None))
    try:
        assert isinstance(daemon.clock, AnchoredClock)
        before, wall = daemon.clock(), time.time()
        monkeypatch.setattr(time, "time", lambda: wall + 5 * 3600)
        assert 0 <= daemon.clock() - before < 1 and daemon.clock.drift() > 5 * 3600 - 1
        monkeypatch.setattr(time, "time", lambda: wall - 2 * 3600)
        assert 0 <= daemon.clock() - before < 1
    finally:
        daemon.store.close()


def test_the_issued_numbers_are_seeded_from_an_older_state_file_and_its_snapshot(tmp_path: Path) -> None:
    """A state file from before the tracking_numbers table: the migration takes the highest
    number of each year from its incidents, and an engine snapshot of the old form (one year, one
    counter) is read too."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db, target=next(n for n, step in enumerate(MIGRATIONS) if "CREATE TABLE tracking_numbers" in step))
    for tracking in ("ARZ-2026-000007", "ARZ-2026-000012", "ARZ-2027-000001", "TST-2026-000003"):
        db.execute("INSERT INTO incidents VALUES (?, 'outage', 'line:s1', 'resolved', 1, 1, 1, '[]', '[]')", (tracking,))
    db.close()
    store = Store.open(path)
    try:
        assert store.issued("ARZ") == {2026: 12, 2027: 1} and store.issued("TST") == {2026: 3}
    finally:
        store.close()

    topo = topology({"x": {"d0": [0]}})
    old = Engine(topo, parse_rules(None), "ARZ").snapshot()
    del old["issued"]
    e = Engine.restore(topo, parse_rules({"settle": "1m"}), "ARZ", {**old, "year": 2026, "seq": 41})
    t = utc("2026-06-01 12:00:00")
    e.observe(dead("d0", t), t)
    (opened,) = e.tick(t + 120).incidents
    assert opened.incident.tracking == "ARZ-2026-000042"


async def test_delivery_pauses_while_the_disk_is_full_and_resumes_without_duplicates(
    tmp_path: Path, small_disk: Path, peers: Peers, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Notices are queued, then the disk fills: the outbox cannot mark an item `sending`, which
    used to end the daemon's task group. Delivery pauses instead; once space returns every
    subscriber gets the outage SMS once."""
    monkeypatch.setattr(monitord.channels, "WRITE_RETRY", 0.2)
    config = lab_config(tmp_path, peers, state_file=small_disk / "state.db")
    dslam, lines = dslam_with_sms_lines(config)
    clock = Clock()
    daemon = Daemon(config, clock=clock)
    stop = asyncio.Event()
    try:
        await daemon.pipeline.ingest(device_down(dslam, clock.now))
        clock.now += 10
        await daemon.pipeline.tick()
        (outage,) = daemon.open_incidents()
        assert daemon.store.depth() == len(lines) + 1
        clock.now += daemon.pipeline.settings.merge_hold  # the DSLAM's outage SMS are held that long
        daemon.store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        filler = fill(small_disk)

        daemon.outbox = Outbox(daemon.store, build_notifiers(config), {c: FAST for c in daemon.pipeline.channels}, clock=clock)
        delivering = asyncio.create_task(daemon._deliver(stop))
        await asyncio.sleep(1.0)
        assert not delivering.done(), "a refused write ended delivery"
        assert peers.twilio.messages == [] and "delivery paused: the state file refused a write" in caplog.text

        filler.unlink()
        async with asyncio.timeout(20):
            while daemon.store.depth():
                await asyncio.sleep(0.05)
        stop.set()
        await daemon.outbox.stop(timeout=2.0)
        await delivering
        phones = sorted(config.topology.lines[i].phone for i in lines)
        assert sorted(m.to for m in peers.twilio.messages) == phones
        assert [e.action for e in peers.desk.tickets[outage.tracking].history] == ["create"]
    finally:
        stop.set()
        daemon.store.close()


def test_the_store_never_lets_another_incident_take_a_stored_number(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "state.db")
    try:
        first = Incident(
            "ARZ-2026-000001",
            IncidentKind.OUTAGE,
            NodeRef("device", "d1"),
            Phase.OPEN,
            100.0,
            100.0,
            frozenset({"s1"}),
            ("d1 down",),
        )
        store.commit_step(None, [first], [], 100.0)
        later = replace(first, phase=Phase.RESOLVED, updated_at=200.0, resolved_at=200.0)
        store.commit_step(None, [later], [], 200.0)
        assert store.incident(first.tracking) == later
        other = replace(first, root=NodeRef("device", "d2"), opened_at=300.0, updated_at=300.0)
        with pytest.raises(StoreError, match="ARZ-2026-000001 already belongs to another incident"):
            store.commit_step(None, [other], [], 300.0)
        assert store.incident(first.tracking) == later
        assert store.issued("ARZ") == {2026: 1}
    finally:
        store.close()
