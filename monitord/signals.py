"""How a monitord process answers signals, whatever its role: SIGTERM and SIGINT stop it,
SIGHUP reloads its config (monitord/daemon.py `run_daemon`, monitord/notifier_role.py)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any


def on_signals(reload: Callable[[], Coroutine[Any, Any, bool]]) -> asyncio.Event:
    """SIGTERM and SIGINT set the event returned; SIGHUP runs `reload()`, but not once stopping."""
    stop, loop = asyncio.Event(), asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    reloads: set[asyncio.Task[bool]] = set()  # held until done: the loop keeps only weak references

    def hangup() -> None:
        if not stop.is_set():
            task = loop.create_task(reload())
            reloads.add(task)
            task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, hangup)
    return stop
