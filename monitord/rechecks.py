"""The correlator's second looks, carried to the pollers.

A step may want devices polled at once (`Step.recheck`: a device first suspected and the others
of its exchange, a device down but not yet confirmed). `--role all` polls them itself; a
`--role correlator` polls nothing, so it NOTIFYs their ids on `monitord_recheck` and each poller
polls those of the shards it holds (`Scheduler.poll_now`). Without them a dark exchange would be
confirmed only by the devices' next scheduled polls, and its siblings' answers, which a new
incident waits for (`gather`), would come too late to count.

A hint, not a record: a recheck lost (the database down, no poller listening yet) costs time,
not state: the device's next scheduled poll answers instead, and `gather` bounds the wait. Both
sides talk to the database from a thread of their own, never from the event loop; the sender
keeps one NOTIFY in flight and merges what a step asks for meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import psycopg

from monitord.database import one_line
from monitord.model import StateServer
from monitord.shardstore import Listening, Session

log = logging.getLogger("monitord")

CHANNEL = "monitord_recheck"
PAYLOAD = 7000  # bytes of device ids per NOTIFY at most (PostgreSQL refuses 8000 and more)
RETRY = 1.0  # seconds before listening again after the database refused
HEARD_EVERY = 1.0  # seconds: how often the listener looks whether it should stop


def payloads(devices: Iterable[str]) -> Iterator[str]:
    """The device ids joined by spaces (an id holds none: monitord/config/values.py), PAYLOAD bytes at most each."""
    chunk: list[str] = []
    size = 0
    for device in devices:
        length = len(device.encode()) + 1
        if chunk and size + length > PAYLOAD:
            yield " ".join(chunk)
            chunk, size = [], 0
        chunk.append(device)
        size += length
    if chunk:
        yield " ".join(chunk)


class RecheckSender:
    """The correlator's side: `ask(device)` from the event loop; sent soon after, merged."""

    def __init__(self, server: StateServer) -> None:
        self._session = Session(server)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="monitord-recheck")
        self._pending: set[str] = set()
        self._sending: Future[None] | None = None
        self._flush_soon = False
        self.sent = 0  # device ids notified
        self.failed = 0  # NOTIFYs the database refused
        self._failing = False

    def ask(self, device: str) -> None:
        self._pending.add(device)
        if not self._flush_soon:
            self._flush_soon = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_soon = False
        if not self._pending or (self._sending is not None and not self._sending.done()):
            return  # the NOTIFY in flight sends these when it is done
        devices, self._pending = sorted(self._pending), set()
        loop = asyncio.get_running_loop()
        self._sending = self._thread.submit(self._notify, devices)
        self._sending.add_done_callback(lambda _: loop.call_soon_threadsafe(self._flush))

    def _notify(self, devices: list[str]) -> None:
        try:
            db = self._session.db()
            for payload in payloads(devices):
                db.execute("SELECT pg_notify($1, $2)", (CHANNEL, payload))
        except psycopg.Error as error:
            self.failed += 1
            self._session.close()
            if not self._failing:
                log.warning("cannot ask the pollers for rechecks (%s); their next polls answer instead", one_line(error))
            self._failing = True
        else:
            self.sent += len(devices)
            self._failing = False

    def close(self) -> None:
        self._thread.submit(self._session.close)
        self._thread.shutdown()


class RecheckListener(Listening):
    """A poller's side: `run(deliver)` hands each notified list of device ids to `deliver`
    on the event loop, until cancelled."""

    channel = CHANNEL

    async def run(self, deliver: Callable[[list[str]], None]) -> None:
        loop, stop = asyncio.get_running_loop(), threading.Event()

        def listen() -> None:
            failing = False
            while not stop.is_set():
                try:
                    heard = self.heard(HEARD_EVERY)
                except psycopg.Error as error:
                    if not failing:
                        log.warning("cannot listen for the correlator's rechecks (%s); trying again", one_line(error))
                    failing = True
                    self.close()
                    stop.wait(RETRY)
                    continue
                failing = False
                for payload in heard:
                    loop.call_soon_threadsafe(deliver, payload.split())
            self.close()

        thread = ThreadPoolExecutor(1, thread_name_prefix="monitord-rechecks")
        try:
            await loop.run_in_executor(thread, listen)
        finally:
            stop.set()  # the thread ends within HEARD_EVERY; the loop does not wait for it
            thread.shutdown(wait=False)
