"""`monitord demo --cluster`: a small cluster on loopback against the simulated ISP, with a fault,
the loss of the correlator leader, and the repair.

It starts a throw-away PostgreSQL (lab/postgres.py) in a temporary folder, the lab, and five
`monitord run` processes on one config: two pollers, two correlators (one leads, one stands by)
and one notifier worker. It prints which node did what, read from the processes' logs: the shards
each poller claimed, the incident the leader opened, the SMS the lab's Twilio received, the
standby taking over once the leader is SIGKILLed, the restoration it verifies, and a poller's API
answering for the new leader (it forwards, monitord/forward.py). Everything is stopped and
removed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from monitord.demo import Timeline, until
from monitord.forward import ANSWERED_BY
from monitord.notifier_role import TICK

LEASE = "3s"  # cluster.lease: a dead poller's shards are taken over within it
STORY = (  # log line -> what the story says (the node's name goes first)
    (re.compile(r"poller \S+ took shard (\S+) \(epoch (\d+)\)"), "claimed exchange {0} (lease epoch {1})"),
    (re.compile(r"poller \S+ let go of shard (\S+) for another"), "handed exchange {0} over to the poller that joined"),
    (re.compile(r"the correlator leader now \(epoch (\d+)\)"), "leads the correlation (epoch {0})"),
    (re.compile(r"standing by: another process leads"), "stands by"),
    (re.compile(r"notifier worker delivering (.+) from"), "delivers {0} from the shared outbox"),
    (re.compile(r"incident (\S+) (opened|resolved): (\S+) at (\S+), (\d+) lines"), "{role}{1} {0}: {2} at {3}, {4} lines"),
)


@dataclass
class Node:
    name: str
    role: str
    proc: subprocess.Popen[bytes]
    log: Path
    read: int = 0
    events: list[str] = field(default_factory=list)
    leads: bool = False
    notify: socket.socket | None = None  # its $NOTIFY_SOCKET, where a notifier worker says what it sent
    status: str = ""

    def last_status(self) -> str:
        while self.notify is not None:
            try:
                data = self.notify.recv(4096).decode("utf-8", "replace")
            except BlockingIOError:
                break
            self.status = next((line[7:] for line in data.splitlines() if line.startswith("STATUS=")), self.status)
        return self.status


class Cluster:
    def __init__(self, config: Path, t: Timeline, sockets: Path) -> None:
        self.config, self.t, self.sockets = config, t, sockets
        self.nodes: list[Node] = []

    def spawn(self, name: str, role: str) -> Node:
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        notify = None
        if role == "notifier":
            notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            notify.bind(str(self.sockets / f"{name}.sock"))
            notify.setblocking(False)
            env["NOTIFY_SOCKET"] = str(self.sockets / f"{name}.sock")
        log = self.config.parent / f"{name}.log"
        with log.open("wb") as sink:
            command = [sys.executable, "-m", "monitord.cli", "run", str(self.config), "--role", role]
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, env=env)
        node = Node(name, role, proc, log, notify=notify)
        self.nodes.append(node)
        return node

    def poll(self) -> None:
        """Read what the nodes logged since the last call and tell the story of it."""
        for node in self.nodes:
            with node.log.open("rb") as f:
                f.seek(node.read)
                chunk = f.read()
            end = chunk.rfind(b"\n") + 1
            node.read += end
            for line in chunk[:end].decode("utf-8", "replace").splitlines():
                for pattern, text in STORY:
                    if found := pattern.search(line):
                        if "leads" in text:
                            node.leads = True
                        said = text.format(*found.groups(), role="(leader) " if node.leads else "")
                        node.events.append(said)
                        self.t.say(f"{node.name} {said}")

    async def watch(self) -> None:
        while True:
            self.poll()
            await asyncio.sleep(0.2)

    def said(self, node_name: str, text: str) -> str | None:
        return next((e for n in self.nodes if n.name == node_name for e in n.events if text in e), None)

    def stop(self) -> None:
        """SIGTERM every live node, SIGKILL any that has not exited 20 s later."""
        for node in self.nodes:
            if node.proc.poll() is None:
                node.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for node in self.nodes:
            try:
                node.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()
            if node.notify is not None:
                node.notify.close()


async def run_cluster_demo(*, keep_running: bool = False, directory: str | None = None, base: str | None = None) -> int:
    from lab.isp import write_config
    from lab.postgres import FAST, running_cluster
    from lab.world import start_world, stop_world

    t = Timeline()
    with contextlib.ExitStack() as stack:
        root = Path(directory) if directory else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="monitord-demo-")))
        pg = stack.enter_context(running_cluster(FAST))
        pg.admin("CREATE DATABASE monitord")
        t.say(f"PostgreSQL up on 127.0.0.1:{pg.port} (a throw-away cluster in {pg.root})")
        world = await start_world(root, **({"base": base} if base else {}))
        try:
            url = pg.url("monitord")
            write_config(world.isp.root, state=url, state_file=None, cluster={"lease": LEASE, "batch_every": "500ms"})
            sockets = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="monitord-ns-")))  # AF_UNIX: short
            cluster = Cluster(world.config, t, sockets)
            watcher = asyncio.create_task(cluster.watch())
            try:
                return await _until_signalled(_scenario(world, cluster, t, keep_running))
            finally:
                cluster.stop()
                watcher.cancel()
                cluster.poll()
                t.say(f"every node stopped: {', '.join(f'{n.name} ({n.proc.returncode})' for n in cluster.nodes)}")
        finally:
            await stop_world(world)


async def _until_signalled(scenario: Coroutine[Any, Any, int]) -> int:
    """Run the scenario; SIGINT or SIGTERM ends it early (130), and everything is still stopped."""
    loop, task = asyncio.get_running_loop(), asyncio.create_task(scenario)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise
        return 130
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _scenario(world, cluster: Cluster, t: Timeline, keep_running: bool) -> int:
    from monitord.config import load_config

    topo = load_config(world.config).topology
    t.say(
        f"simulated ISP up: {len(topo.regions)} regions, {len(topo.exchanges)} exchanges, "
        f"{len(topo.devices)} devices, {len(topo.lines)} subscribers"
    )
    first = cluster.spawn("correlator-1", "correlator")
    await until(lambda: cluster.said("correlator-1", "leads"), 30, "correlator-1 to lead")
    cluster.spawn("correlator-2", "correlator")
    await until(lambda: cluster.said("correlator-2", "stands by"), 30, "correlator-2 to stand by")
    for name in ("poller-a", "poller-b"):
        cluster.spawn(name, "poller")
    notifier = cluster.spawn("notifier-1", "notifier")
    claimed = lambda: sum("claimed" in e for n in cluster.nodes for e in n.events) >= len(topo.exchanges)  # noqa: E731
    await until(claimed, 40, "every exchange claimed by a poller")
    await asyncio.sleep(4)  # a few rounds of polls for the baseline

    dslam = min((d for d in topo.devices.values() if d.kind == "dslam"), key=lambda d: d.id)
    silenced = world.isp.addresses_under("device", dslam.id)
    phones = {line.phone for line in topo.lines.values() if line.device == dslam.id and line.phone}
    world.faults.silence(*silenced)
    t.say(f"FAULT: {dslam.id} (exchange {dslam.exchange}) and its {len(silenced) - 1} modems stop answering")
    opened = await until(lambda: cluster.said("correlator-1", "opened"), 60, "the outage incident")
    tracking = opened.split()[2].rstrip(":")
    sms = await until(lambda: _sms_to(world, phones, 0), 40, "the outage SMS")
    t.say(f"lab Twilio received {len(sms)} SMS for {tracking}, one per customer, e.g. \"{sms[0].body[:90]}\"")
    await asyncio.sleep(TICK + 0.2)
    t.say(f"{notifier.name} says: {notifier.last_status()} (the correlators' workers deliver the rest)")

    first.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    first.proc.wait(timeout=10)
    t.say("KILL -9: correlator-1, the leader")
    await until(lambda: cluster.said("correlator-2", "leads"), 60, "correlator-2 to take over")
    t.say(f"correlator-2 took over {time.monotonic() - killed:.1f} s after the kill")

    world.faults.restore(*silenced)
    sms_before = len(world.twilio.messages)
    t.say(f"REPAIR: {dslam.id} answers again")
    await until(lambda: cluster.said("correlator-2", f"resolved {tracking}"), 90, "verified restoration")
    restored = await until(lambda: _sms_to(world, phones, sms_before), 40, "the restoration SMS")
    t.say(f"lab Twilio received {len(restored)} restoration SMS, e.g. \"{restored[0].body[:90]}\"")
    await asyncio.sleep(TICK + 0.2)
    t.say(f"{notifier.name} says: {notifier.last_status()}")
    poller = next(n for n in cluster.nodes if n.name == "poller-a")
    holder, incident = await _asked(poller, f"/api/incidents/{tracking}")
    leader = next((n.name for n in cluster.nodes if holder.endswith(f"/{n.proc.pid}")), holder)
    t.say(f"{poller.name} forwarded GET /api/incidents/{tracking} to {leader}: {incident['phase']}")
    told = Counter((m.to, m.body) for m in world.twilio.messages)
    t.say(f"in all {sum(told.values())} SMS, {sum(n - 1 for n in told.values())} of them sent twice")
    if keep_running:
        t.say("keeping the cluster running; logs in " + str(world.config.parent) + " (Ctrl-C ends)")
        await asyncio.Event().wait()
    return 0


async def _asked(node: Node, path: str, timeout: float = 30.0) -> tuple[str, Any]:
    """GET `path` from `node`'s API until the leader answers it: (the leader's host/pid, the JSON)."""
    port = re.findall(r"listening on http://127\.0\.0\.1:(\d+)", node.log.read_text(encoding="utf-8", errors="replace"))[-1]
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(f"http://127.0.0.1:{port}{path}") as answer:
                if answer.status == 200:
                    return answer.headers.get(ANSWERED_BY, node.name), await answer.json()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{node.name} answered {path} with {answer.status} for {timeout:.0f} s")
            await asyncio.sleep(0.3)


def _sms_to(world, phones: set[str], start: int) -> list | None:
    sent = [m for m in world.twilio.messages[start:] if m.to in phones]
    return sent if {m.to for m in sent} >= phones else None
