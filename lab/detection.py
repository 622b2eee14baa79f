"""Fault-to-ticket and fault-to-first-SMS on the simulated ISP at the shipped settings.

`shipped_defaults` takes a world's config back to the defaults an operator starts with (polling,
SNMP timeouts and rules, as monitord/config/ and config/rules/default.yaml ship them); the
peers stay the lab's. `Detection.measure` silences a node, then waits for its ticket and the
first SMS that names it. Used by tests/test_detection.py and bench/detection.py.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from lab.world import World
from monitord.config import load_config
from monitord.daemon import Daemon
from monitord.demo import until
from monitord.model import Incident, NodeRef, Status
from monitord.yamlload import load_yaml


def shipped_defaults(config: Path) -> None:
    """Drop the lab's shortened polling, SNMP timeouts and rules from the config."""
    raw = load_yaml(config.read_text(encoding="utf-8")).data
    for key in ("polling", "rules"):
        raw.pop(key, None)
    raw["snmp"] = {k: v for k, v in raw["snmp"].items() if k not in ("timeout", "retries")}
    config.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")


@dataclass(frozen=True, slots=True)
class Timing:
    to_ticket: float  # seconds from the fault to the helpdesk's ticket
    to_first_sms: float  # seconds from the fault to the first SMS naming the incident
    incident: Incident


@dataclass(slots=True)
class Detection:
    world: World
    daemon: Daemon
    stop: asyncio.Event
    task: asyncio.Task[None]

    @classmethod
    async def start(cls, world: World) -> Detection:
        daemon = Daemon(load_config(world.config))
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        await until(lambda: daemon.ready.is_set() or task.done(), 30, "the daemon to start")
        if task.done():
            task.result()
        return cls(world, daemon, stop, task)

    async def all_ok(self, timeout: float = 120.0) -> None:
        topology = self.daemon.config.topology
        nodes = [NodeRef("device", d) for d in topology.devices] + [NodeRef("line", i) for i in topology.lines]
        try:
            await until(lambda: all(self.daemon.node_state(n).status is Status.OK for n in nodes), timeout, "all OK")
        except TimeoutError as timeout_error:
            states = (self.daemon.node_state(n) for n in nodes)
            raise TimeoutError(f"{timeout_error}: {[s for s in states if s.status is not Status.OK][:5]}") from None

    async def measure(self, level: str, node_id: str, timeout: float = 120.0) -> Timing:
        """Silence everything at or below the node; time its outage's ticket and first SMS."""
        world, daemon = self.world, self.daemon
        tickets, sms = len(world.tickets.tickets), len(world.twilio.messages)
        fault = time.time()
        world.faults.silence(*world.isp.addresses_under(level, node_id))
        ticket_at: float | None = None
        found: Incident | None = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = found or next((i for i in daemon.open_incidents() if i.root == NodeRef(level, node_id)), None)  # type: ignore[arg-type]
            if ticket_at is None and found is not None and found.tracking in world.tickets.tickets:
                ticket_at = time.time()
            texts = [m for m in world.twilio.messages[sms:] if found is not None and found.tracking in m.body]
            if ticket_at is not None and texts and found is not None:
                return Timing(ticket_at - fault, min(m.at for m in texts) - fault, found)
            await asyncio.sleep(0.1)
        raise TimeoutError(
            f"{level}:{node_id}: no ticket and SMS within {timeout:.0f} s "
            f"({len(world.tickets.tickets) - tickets} new tickets, incident {found})"
        )

    async def close(self) -> None:
        self.stop.set()
        await self.task
