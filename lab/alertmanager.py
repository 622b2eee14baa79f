"""A real Prometheus Alertmanager (Debian's prometheus-alertmanager) on loopback, for tests and benches.

Its one route sends every group to a webhook receiver on a local aiohttp sink, with
`group_wait`/`group_interval` of 1 s and `send_resolved`, so what monitord pushed shows up at the
sink about a second later, resolved included. Gossip is off (`--cluster.listen-address=`): with
it, the first notification waits for the cluster to settle (~10 s) and a second instance cannot
bind 9094. `stop()` and `start()` take Alertmanager down and up on the same port; it keeps no
alerts across a restart (they are in memory), only silences and the notification log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

BINARY = "prometheus-alertmanager"


@dataclass(frozen=True, slots=True)
class Received:
    at: float  # time.time() when the sink got it
    payload: dict[str, Any]

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.payload.get("alerts", []))


def available() -> bool:
    return shutil.which(BINARY) is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AlertmanagerLab:
    def __init__(self, folder: Path, *, group_by: tuple[str, ...] = ("tracking",)) -> None:
        self.folder = folder
        self.group_by = group_by
        self.port = _free_port()
        self.received: list[Received] = []
        self._process: asyncio.subprocess.Process | None = None
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        self.sink_port = 0
        self._http: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _hook(self, request: web.Request) -> web.Response:
        self.received.append(Received(time.time(), await request.json()))
        return web.Response(text="ok")

    async def __aenter__(self) -> AlertmanagerLab:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.sink_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        config = {
            "route": {
                "receiver": "sink",
                "group_by": list(self.group_by),
                "group_wait": "1s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [
                {"name": "sink", "webhook_configs": [{"url": f"http://127.0.0.1:{self.sink_port}/hook", "send_resolved": True}]}
            ],
        }
        (self.folder / "am.yml").write_text(json.dumps(config))  # JSON is YAML
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        if self._http is not None:
            await self._http.close()
        await self._runner.cleanup()

    async def start(self, ready_within: float = 10.0) -> None:
        """Start Alertmanager on `port` and wait until it is ready."""
        self._process = await asyncio.create_subprocess_exec(
            BINARY,
            f"--config.file={self.folder / 'am.yml'}",
            f"--storage.path={self.folder / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            "--log.level=warn",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=open(self.folder / "am.log", "ab"),  # noqa: SIM115  (the child holds it)
        )
        deadline = time.monotonic() + ready_within
        while time.monotonic() < deadline:
            if self._process.returncode is not None:
                raise RuntimeError(f"alertmanager exited {self._process.returncode}: see {self.folder / 'am.log'}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                assert self._http is not None
                async with self._http.get(f"{self.url}/-/ready") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"alertmanager not ready after {ready_within} s: see {self.folder / 'am.log'}")

    async def stop(self) -> None:
        """SIGTERM, and wait for it to exit."""
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()

    async def alerts(self) -> list[dict[str, Any]]:
        """Alertmanager's active alerts (GET /api/v2/alerts); resolved ones are not listed."""
        assert self._http is not None
        async with self._http.get(f"{self.url}/api/v2/alerts") as resp:
            resp.raise_for_status()
            return list(await resp.json())

    def sunk(self, status: str, **labels: str) -> list[dict[str, Any]]:
        """The alerts the sink got in notifications, with `status` and these labels, oldest first."""
        return [
            a
            for r in self.received
            for a in r.alerts()
            if a.get("status") == status and all(a["labels"].get(k) == v for k, v in labels.items())
        ]

    async def wait_for(self, done: Callable[[], bool], timeout: float = 10.0) -> float:
        """Poll `done` until true; the seconds it took. TimeoutError after `timeout`."""
        start = time.monotonic()
        while not done():
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"not done after {timeout} s")
            await asyncio.sleep(0.02)
        return time.monotonic() - start
