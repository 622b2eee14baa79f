"""`monitord demo`: the daemon against a simulated ISP on loopback, with a fault and its repair.

It prints a timeline a NOC engineer can follow: the fault injected, the incident opened with its
tracking number, the helpdesk ticket, the SMS sent to the affected customers (one shown), the
NOC e-mail, then the repair and the verified restoration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from monitord.config import load_config
from monitord.daemon import Daemon
from monitord.model import Incident, IncidentKind, NodeRef, Phase, Status

T = TypeVar("T")


class Timeline:
    def __init__(self) -> None:
        self.start = time.monotonic()

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.start:6.1f}s] {text}", flush=True)


async def until(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")
        await asyncio.sleep(0.2)


def find_incident(daemon: Daemon, root: NodeRef, kind: IncidentKind) -> Incident | None:
    return next((i for i in daemon.open_incidents() if i.root == root and i.kind is kind), None)


async def run_demo(*, keep_running: bool = False, directory: str | None = None) -> int:
    from lab.world import NOC_EMAIL, start_world, stop_world

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with contextlib.ExitStack() as stack:
        root = Path(directory) if directory else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="monitord-demo-")))
        t = Timeline()
        world = await start_world(root)
        try:
            return await _scenario(world, t, keep_running, NOC_EMAIL)
        finally:
            await stop_world(world)


def console_greeting(port: int | None, root: Path) -> str:
    """Where the web console is and whom to sign in as (the lab's users, monitord/console.py)."""
    from lab.isp import console_password

    noc, helpdesk = console_password(root, "noc"), console_password(root, "helpdesk")
    return f"web console: http://127.0.0.1:{port}/console (sign in as noc, password {noc}; or helpdesk, password {helpdesk})"


async def _scenario(world, t: Timeline, keep_running: bool, noc_email: str) -> int:
    config = load_config(world.config)
    topo = config.topology
    t.say(
        f"simulated ISP up: {len(topo.regions)} regions, {len(topo.exchanges)} exchanges, "
        f"{len(topo.devices)} devices, {len(topo.lines)} subscribers (SNMP agents started in {world.snmp.startup_seconds:.1f} s)"
    )
    daemon = Daemon(config)
    stop = asyncio.Event()
    runner = asyncio.create_task(daemon.run(stop))
    await until(lambda: daemon.ready.is_set() or runner.done(), 30, "the daemon to start")
    if runner.done():
        runner.result()
    t.say(f"monitord running; metrics at http://127.0.0.1:{daemon.http_port}/metrics")
    t.say(
        console_greeting(daemon.http_port, world.isp.root) + ("" if keep_running else "; --keep-running keeps it up afterwards")
    )
    try:
        await until(lambda: _count(daemon, Status.OK) == len(topo.lines), 60, "every line to be seen ok")
        t.say(f"baseline: all {len(topo.lines)} lines ok")

        dslam = min((d for d in topo.devices.values() if d.kind == "dslam"), key=lambda d: d.id)
        silenced = world.isp.addresses_under("device", dslam.id)
        world.faults.silence(*silenced)
        place = topo.exchanges[dslam.exchange]
        t.say(f"FAULT: {dslam.id} ({place.name}) and its {len(silenced) - 1} modems stop answering")

        root = NodeRef("device", dslam.id)
        outage = await until(lambda: find_incident(daemon, root, IncidentKind.OUTAGE), 60, "the outage incident")
        t.say(f"incident {outage.tracking} opened: outage at {root}, {len(outage.affected)} subscribers affected")
        ticket = await until(lambda: world.tickets.tickets.get(outage.tracking), 30, "the helpdesk ticket")
        t.say(f"helpdesk ticket #{ticket.id} opened for {outage.tracking}")
        phones = {phone for i in outage.affected if (phone := topo.lines[i].phone)}
        sms = await until(lambda: _sms_to(world, phones, 0), 30, "the outage SMS")
        t.say(f"SMS sent to {len(sms)} customers, e.g. to {sms[0].to}: \"{sms[0].body}\"")
        noc = await until(lambda: next((m for m in world.smtp.messages if noc_email in m.rcpt_tos), None), 30, "the NOC e-mail")
        t.say(f"NOC e-mail sent to {noc_email}: \"{noc.message['Subject']}\"")
        others = sorted(i for i in topo.lines if topo.lines[i].device != dslam.id and topo.lines[i].port is not None)
        if others:
            line = others[0]
            world.snmp.set_line_metric(line, "snr_margin_down_db", 4.5)
            t.say(f"FAULT: subscriber {line}'s downstream SNR margin drops to 4.5 dB")
            degraded = await until(
                lambda: find_incident(daemon, NodeRef("line", line), IncidentKind.DEGRADATION), 60, "the degradation incident"
            )
            t.say(f"incident {degraded.tracking} opened: degradation on line {line} ({'; '.join(degraded.evidence)[:100]})")

        world.faults.restore(*silenced)
        if others:
            world.snmp.set_line_metric(others[0], "snr_margin_down_db", 12.0)
        t.say("REPAIR: the DSLAM answers again, the SNR margin is back to 12 dB")
        sms_before = len(world.twilio.messages)
        resolved = await until(lambda: _resolved(daemon, outage.tracking), 90, "verified restoration")
        t.say(f"incident {resolved.tracking} resolved after the lines were verified good")
        restored = await until(lambda: _sms_to(world, phones, sms_before), 30, "the restoration SMS")
        t.say(f"restoration SMS sent to {len(restored)} customers, e.g. \"{restored[0].body}\"")
        if keep_running:
            t.say(f"keeping the daemon running; console at http://127.0.0.1:{daemon.http_port}/console (Ctrl-C ends)")
            await asyncio.Event().wait()
        return 0
    finally:
        stop.set()
        await runner


def _count(daemon: Daemon, status: Status) -> int:
    return sum(n for (_, _, _, s), n in daemon.status_counts().items() if s == status.value)


def _sms_to(world, phones: set[str], start: int) -> list | None:
    """The SMS sent to `phones` since message number `start`, once every one of them has one."""
    sent = [m for m in world.twilio.messages[start:] if m.to in phones]
    return sent if {m.to for m in sent} >= phones else None


def _resolved(daemon: Daemon, tracking: str) -> Incident | None:
    incident = daemon.store.incident(tracking)
    return incident if incident and incident.phase is Phase.RESOLVED else None
