"""The HTTP listeners, served by aiohttp on a thread and event loop of their own.

The API cannot hurt monitoring: parsing, connections and writing cost the polling loop nothing;
the thread runs at a lower priority and paces itself to a share of one CPU, and requests are
bounded in size. What the routes answer is in monitord/http.py.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

MAX_LINE = 4096  # bytes of the request line and of one header (max_line_size, max_field_size)
MAX_HEADERS = 64
KEEPALIVE = 15.0  # seconds an idle connection is kept open
HTTP_CPU_SHARE = 0.25  # of one CPU, for the HTTP thread's parsing, handlers and writing together
HTTP_CPU_CREDIT = 0.05  # CPU seconds an idle API may spend at once before pacing starts
HTTP_NICE = 10  # the HTTP thread's priority below the polling thread's, when the machine is busy


class CpuShare:
    """A leaky bucket of CPU time: how long to wait so that what was used stays within `share`.

    `delay(wall, cpu)` takes the wall clock and the serving thread's CPU clock; while the debt is
    positive, requests wait it out (one at a time), and clients that wait for answers send
    nothing new, so the thread idles and the polling loop has the interpreter to itself.
    """

    def __init__(self, share: float = HTTP_CPU_SHARE, credit: float = HTTP_CPU_CREDIT) -> None:
        self.share = share
        self.credit = credit
        self.debt = 0.0
        self._last: tuple[float, float] | None = None

    def delay(self, wall: float, cpu: float) -> float:
        if self._last is not None:
            last_wall, last_cpu = self._last
            self.debt = max(-self.credit, self.debt + (cpu - last_cpu) - self.share * (wall - last_wall))
        self._last = (wall, cpu)
        return self.debt / self.share if self.debt > 0 else 0.0


@dataclass(slots=True)
class Pacing:
    """The HTTP thread's CPU budget, shared by its listeners."""

    budget: CpuShare = field(default_factory=CpuShare)
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)


PACING = web.AppKey("pacing", Pacing)


@web.middleware
async def paced(request: web.Request, handler: Any) -> web.StreamResponse:
    pacing = request.app.get(PACING)
    if pacing is not None:
        async with pacing.turn:
            while (wait := pacing.budget.delay(time.monotonic(), time.thread_time())) > 0:
                await asyncio.sleep(wait)
    return await handler(request)


class _ProtocolLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's log of requests it cannot parse (a 9 kB URL, a bad header, a port scan): the
    client is answered 400; here it is one debug line, never a traceback per request."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        error = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        self.debug(f"{msg}: %s", *args, repr(error)[:200])


SERVER_OPTIONS: Mapping[str, Any] = {
    "access_log": None,
    "max_line_size": MAX_LINE,
    "max_field_size": MAX_LINE,
    "max_headers": MAX_HEADERS,
    "keepalive_timeout": KEEPALIVE,
    "logger": _ProtocolLog(logging.getLogger("monitord.http.protocol")),
    "shutdown_timeout": 2.0,  # requests still running at stop get this long, well inside systemd's stop timeout
}


OPTIONS = web.AppKey("server_options", dict[str, Any])  # a listener's own SERVER_OPTIONS, e.g. a longer request line


class HttpServer:
    """The daemon's listeners, served by aiohttp on a thread and event loop of their own.

    The thread runs at HTTP_NICE below the polling thread (where the system lets it) and paces
    itself to HTTP_CPU_SHARE of one CPU (`CpuShare`, `paced`), and while it
    works the polling loop still gets the interpreter every `sys.getswitchinterval()` (the daemon
    sets 1 ms): a storm of clients slows the API down, not polling.
    """

    def __init__(self, listeners: Sequence[tuple[web.Application, str, int]]) -> None:
        self._listeners = listeners
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> list[int]:
        """The ports bound, in listener order; OSError when one cannot be bound (nothing stays open)."""
        bound: concurrent.futures.Future[list[int]] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._serve, args=(bound,), name="monitord-http", daemon=True)
        self._thread.start()
        try:
            return await asyncio.wrap_future(bound)
        except BaseException:
            await asyncio.to_thread(self._thread.join)
            raise

    async def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            await asyncio.to_thread(self._thread.join)

    def _serve(self, bound: concurrent.futures.Future[list[int]]) -> None:
        with contextlib.suppress(OSError):  # refused where a SystemCallFilter denies @resources
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HTTP_NICE)
        loop = asyncio.new_event_loop()
        runners: list[web.AppRunner] = []
        try:
            try:
                ports = loop.run_until_complete(self._open(runners))
            except BaseException as error:
                bound.set_exception(error)
                return
            self._loop = loop
            bound.set_result(ports)
            loop.run_forever()
        finally:
            for runner in runners:
                loop.run_until_complete(runner.cleanup())
            loop.close()

    async def _open(self, runners: list[web.AppRunner]) -> list[int]:
        ports = []
        pacing = Pacing()
        for app, host, port in self._listeners:
            app[PACING] = pacing
            own: dict[str, Any] | None = app.get(OPTIONS)
            runner = web.AppRunner(app, **{**SERVER_OPTIONS, **(own or {})})
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, host, port).start()
            ports.append(runner.addresses[0][1])
        return ports
