"""A swarm of HTTP clients against monitord's API, and a probe of the daemon loop's lag, for
`bench/api_load.py` and its short version in the tests.

The swarm runs as a process of its own (`python -m lab.api_load URL ...`), as real clients
would: its CPU is not the daemon's interpreter. It prints one JSON line of counts. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp

MIXES: dict[str, tuple[str, ...]] = {
    "metrics": ("/metrics",),
    "api": ("/api/incidents", "/api/subscribers/{line}", "/api/incidents?all=1", "/api/maintenance"),
    "mixed": (
        "/metrics",
        "/api/incidents",
        "/api/subscribers/{line}",
        "/metrics",
        "/api/subscribers/{line}/diagnose",
        "/api/incidents?all=1",
        "/health",
        "/api/maintenance",
    ),
}


@dataclass(slots=True)
class SwarmResult:
    clients: int
    seconds: float
    requests: int = 0
    statuses: Counter[str] = field(default_factory=Counter)  # "200", "429", ... and "error"
    by_path: Counter[str] = field(default_factory=Counter)  # answered 2xx, per route

    @property
    def served_per_second(self) -> float:
        ok = sum(n for status, n in self.statuses.items() if status.startswith("2"))
        return ok / self.seconds if self.seconds else 0.0


def loopback_only(url: str) -> str:
    host = urlsplit(url).hostname or ""
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"{url}: the swarm only targets loopback addresses")
    return url.rstrip("/")


async def swarm(url: str, clients: int, seconds: float, mix: str, lines: list[str], token: str | None) -> SwarmResult:
    """`clients` concurrent clients, each asking the next path of `mix` in turn until `seconds` pass."""
    base = loopback_only(url)
    paths = MIXES[mix]
    result = SwarmResult(clients, seconds)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + seconds

    async def client(n: int, session: aiohttp.ClientSession) -> None:
        turn = n
        while time.monotonic() < deadline:
            route = paths[turn % len(paths)]
            path = route.format(line=lines[turn % len(lines)] if lines else "S-none")
            turn += 1
            try:
                async with session.get(base + path, headers=headers) as response:
                    await response.read()
                    status = str(response.status)
            except (aiohttp.ClientError, TimeoutError):
                status = "error"
                await asyncio.sleep(0.1)
            result.requests += 1
            result.statuses[status] += 1
            if status.startswith("2"):
                result.by_path[route] += 1

    started = time.monotonic()
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:
        await asyncio.gather(*(client(n, session) for n in range(clients)))
    result.seconds = time.monotonic() - started
    return result


async def swarm_process(
    url: str, clients: int, seconds: float, mix: str, lines: list[str], token: str | None, nice: int = 0
) -> SwarmResult:
    """The swarm in a child process; its counts come back as one JSON line."""
    command = [
        sys.executable,
        "-m",
        "lab.api_load",
        url,
        "--clients",
        str(clients),
        "--seconds",
        str(seconds),
        "--mix",
        mix,
        "--lines",
        ",".join(lines),
        "--nice",
        str(nice),
    ]
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate((token or "").encode())
    if proc.returncode != 0:
        raise RuntimeError(f"the client swarm failed with exit code {proc.returncode}")
    data = json.loads(out)
    return SwarmResult(data["clients"], data["seconds"], data["requests"], Counter(data["statuses"]), Counter(data["by_path"]))


class LoopLag:
    """How late the loop it runs on wakes a task that sleeps `tick` seconds: the loop's lag."""

    def __init__(self, tick: float = 0.01) -> None:
        self.tick = tick
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.tick)
            self.worst = max(self.worst, time.perf_counter() - before - self.tick)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="HTTP clients against monitord (loopback only); token on stdin")
    parser.add_argument("url")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--mix", choices=sorted(MIXES), default="mixed")
    parser.add_argument("--lines", default="", help="subscriber ids to ask about, comma separated")
    parser.add_argument("--nice", type=int, default=0, help="lower the swarm's CPU priority by this much")
    args = parser.parse_args(argv)
    os.nice(args.nice)
    if not 1 <= args.clients <= 2000 or not 0 < args.seconds <= 600:
        parser.error("1..2000 clients for at most 600 seconds")
    token = sys.stdin.readline().strip() or None
    lines = [line for line in args.lines.split(",") if line]
    result = asyncio.run(swarm(args.url, args.clients, args.seconds, args.mix, lines, token))
    counts = {"statuses": dict(result.statuses), "by_path": dict(result.by_path)}
    print(json.dumps({"clients": result.clients, "seconds": result.seconds, "requests": result.requests, **counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
