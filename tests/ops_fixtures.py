"""`monitord run` as a real subprocess, as systemd would run it: a notify socket, signals, stderr.

`daemons` starts them and kills whatever is still running at teardown. The lab world runs in the
test process on its own loopback block, so these tests can run beside other labs.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import yaml

from lab.world import World, start_world, stop_world
from monitord.demo import until

T = TypeVar("T")

STOP_BOUND = 10.0  # seconds from SIGTERM to exit; the unit's TimeoutStopSec is 30
LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


class NotifySocket:
    """A bound AF_UNIX datagram socket standing in for systemd's $NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        path.chmod(0o666)  # like /run/systemd/notify: a daemon that dropped privileges can still notify
        self._sock.setblocking(False)
        self.received: list[dict[str, str]] = []

    def drain(self) -> list[dict[str, str]]:
        """Every datagram so far, each as its fields (READY=1 -> {"READY": "1"})."""
        while True:
            try:
                data = self._sock.recv(4096)
            except BlockingIOError:
                return self.received
            self.received.append(dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line))

    def since(self, index: int) -> list[dict[str, str]]:
        return self.drain()[index:]

    def close(self) -> None:
        self._sock.close()


@dataclass(slots=True)
class DaemonProcess:
    proc: subprocess.Popen[bytes]
    stderr: Path
    notify: NotifySocket
    port: int | None = None
    exited_after: float | None = None  # seconds from the stop signal to the exit

    def log(self) -> str:
        return self.stderr.read_text(encoding="utf-8", errors="replace")

    def log_lines(self) -> list[str]:
        return self.log().splitlines()

    async def get(self, path: str) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{self.port}{path}") as response:
                body = await response.json() if response.content_type == "application/json" else await response.text()
                return response.status, body

    def send(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    async def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then wait for the exit; `exited_after` says how long it took."""
        started = time.monotonic()
        self.send(signal.SIGTERM)
        try:
            await until(lambda: self.proc.poll() is not None, timeout, "the daemon to exit after SIGTERM")
        except TimeoutError as e:
            self.send(signal.SIGUSR1)  # its threads' stacks into its log (monitord/signals.py)
            await asyncio.sleep(1)
            raise TimeoutError(f"{e}: pid {self.proc.pid}, its log's end:\n{self.log()[-6000:]}") from None
        self.exited_after = time.monotonic() - started
        return self.proc.returncode


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """AF_UNIX paths are limited to 107 bytes: pytest's tmp_path can be longer."""
    with tempfile.TemporaryDirectory(prefix="monitord-ops-") as name:
        Path(name).chmod(0o755)
        yield Path(name)


@pytest.fixture
async def daemons(short_dir: Path) -> AsyncIterator[Callable[..., Any]]:
    """`await spawn(config, *options, watchdog_usec=...)` -> a ready DaemonProcess."""
    started: list[DaemonProcess] = []

    async def spawn(
        config: Path, *options: str, watchdog_usec: int | None = None, prefix: Sequence[str] = (), ready_within: float = 30.0
    ) -> DaemonProcess:
        """`prefix` runs the daemon through another command, e.g. setpriv to drop privileges."""
        n = len(started)
        notify = NotifySocket(short_dir / f"notify-{n}.sock")
        env = {**os.environ, "NOTIFY_SOCKET": str(notify.path), "PYTHONUNBUFFERED": "1"}
        env.pop("WATCHDOG_USEC", None)
        if watchdog_usec is not None:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        stderr = config.parent / f"daemon-{n}.log"
        with stderr.open("wb") as sink:
            proc = subprocess.Popen(
                [*prefix, sys.executable, "-m", "monitord.cli", "run", str(config), *options],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=sink,
                env=env,
            )
        daemon = DaemonProcess(proc, stderr, notify)
        started.append(daemon)
        await until(lambda: proc.poll() is not None or any("READY" in m for m in notify.drain()), ready_within, "READY=1")
        assert proc.poll() is None, f"the daemon exited with {proc.returncode}:\n{daemon.log()}"
        found = LISTENING.search(daemon.log())
        assert found, daemon.log()
        daemon.port = int(found.group(1))
        return daemon

    try:
        yield spawn
    finally:
        for daemon in started:
            if daemon.proc.poll() is None:
                daemon.proc.kill()
            daemon.proc.wait(timeout=10)
            daemon.notify.close()


@pytest.fixture
async def worlds(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """`await make(base)` -> the simulated ISP on a loopback block of its own, stopped at teardown."""
    made: list[World] = []

    async def make(base: str, **options: Any) -> World:
        made.append(await start_world(tmp_path / f"world-{len(made)}", base=base, **options))
        return made[-1]

    try:
        yield make
    finally:
        for world in made:
            await stop_world(world)


def remove_device(world: World, device_id: str) -> set[str]:
    """Take a device and its subscribers out of config.yaml and subscribers.csv; return their ids."""
    config = yaml.safe_load(world.config.read_text(encoding="utf-8"))
    for region in config["topology"]["regions"]:
        for exchange in region["exchanges"]:
            exchange["devices"] = [d for d in exchange["devices"] if d["id"] != device_id]
    world.config.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with world.isp.subscribers.open(encoding="utf-8", newline="") as file:
        reader = csv.DictReader(file)
        fields, rows = reader.fieldnames or [], [row for row in reader if row["device"] != device_id]
    with world.isp.subscribers.open("w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return {line.id for line in world.isp.lines.values() if line.device == device_id}


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line parsed as JSON; fails on the first line that is not one JSON object."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = json.loads(line)
        assert isinstance(entry, dict), f"line {number} is not an object: {line}"
        entries.append(entry)
    return entries


def first_dslam(world: World) -> tuple[str, list[str]]:
    dslam = min(d.id for d in world.isp.devices.values() if d.kind == "dslam")
    return dslam, sorted(i for i, line in world.isp.lines.items() if line.device == dslam)


async def device_ok(daemon: DaemonProcess, line: str) -> bool:
    status, body = await daemon.get(f"/api/subscribers/{line}")
    return status == 200 and body["device_state"]["status"] == "ok"


async def wait_async(check: Callable[[], Awaitable[T]], timeout: float, what: str) -> T:
    """`until` for checks that are coroutines (HTTP calls)."""
    deadline = time.monotonic() + timeout
    while not (result := await check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")
        await asyncio.sleep(0.3)
    return result


async def open_outage(daemon: DaemonProcess, device: str) -> dict[str, Any] | None:
    _, incidents = await daemon.get("/api/incidents")
    return next((i for i in incidents if i["root"] == f"device:{device}" and i["kind"] == "outage"), None)
