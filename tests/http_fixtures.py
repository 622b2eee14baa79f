"""One real daemon against a small simulated ISP, shared by the HTTP API and CLI tests.

`api` (session scope, on the session's event loop): the world's peers and snmpsim agents, the
daemon serving its API on an OS-picked port, and everything the tests need to call it. Tests
that use it must run on the session loop: `@pytest.mark.asyncio(loop_scope="session")`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from lab.isp import write_config
from lab.world import World, start_world, stop_world
from monitord.config import load_config
from monitord.daemon import Daemon
from monitord.demo import until
from monitord.model import Status, Topology
from tests.blocks import own_base

TOKEN = "helpdesk-api-token-0123456789abcdef"


@dataclass(slots=True)
class Api:
    world: World
    daemon: Daemon
    root: Path
    url: str
    topology: Topology

    token: str = TOKEN

    async def call(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> tuple[int, Any]:
        headers = kwargs.pop("headers", {}) | ({"Authorization": f"Bearer {token}"} if token else {})
        async with aiohttp.ClientSession() as session:
            async with session.request(method, self.url + path, headers=headers, **kwargs) as response:
                body = await response.json() if response.content_type == "application/json" else await response.text()
                return response.status, body

    def dslams(self) -> list[str]:
        """The lab's four DSLAMs, sorted, each with its part in the tests: a DSLAM taken down twice
        turns its lines flapping (degraded), and its next outage ends merged into that degradation.
        [0] the outages of tests/test_console*.py and tests/test_http.py, and silences; [1] single
        modems silenced and its exchange's maintenance (tests/test_http.py); [2] the outage of
        tests/test_track_http.py; [3] that of tests/test_incident_actions.py."""
        return sorted(d for d, device in self.topology.devices.items() if device.kind == "dslam")

    def lines_of(self, device: str) -> list[str]:
        return sorted(i for i, line in self.topology.lines.items() if line.device == device)


def lab_base() -> str:
    """A per-process address block of its own, so a silenced address never hides another run's lab."""
    return own_base(130)


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    root = tmp_path_factory.mktemp("api")
    world = await start_world(
        root,
        regions=1,
        exchanges_per_region=2,
        dslams_per_exchange=2,  # Api.dslams: which test takes which down
        ports_per_dslam=8,
        modems_per_cmts=4,
        with_routers=False,
        base=lab_base(),
    )
    stop = asyncio.Event()
    task: asyncio.Task[None] | None = None
    try:
        (root / "secrets" / "api.token").write_text(TOKEN + "\n", encoding="utf-8")
        region = next(iter(load_config(world.config).topology.regions))
        start = datetime.now(UTC) + timedelta(days=30)
        planned = {
            "id": "mw-config-planned",
            "scope": [f"region:{region}"],
            "start": start.isoformat(),
            "end": (start + timedelta(hours=3)).isoformat(),
            "reason": "Planned in the config file",
        }
        write_config(root, None, maintenance=[planned], tracking={"listen": "127.0.0.1:0"})
        daemon = Daemon(load_config(world.config))
        task = asyncio.create_task(daemon.run(stop))
        await until(lambda: daemon.ready.is_set() or task.done(), 30, "the daemon to start")
        if task.done():
            task.result()
        topology = daemon.config.topology
        ok = lambda: all(daemon.line_state(i).status is Status.OK for i in topology.lines)  # noqa: E731
        await until(ok, 30, "every line ok")
        yield Api(world, daemon, root, f"http://127.0.0.1:{daemon.http_port}", topology)
    finally:
        stop.set()
        if task is not None:
            await task
        await stop_world(world)
