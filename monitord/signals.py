"""How a monitord process answers signals, whatever its role: SIGTERM and SIGINT stop it,
SIGHUP reloads its config (monitord/daemon.py `run_daemon`, monitord/notifier_role.py), and
SIGUSR1 writes where it is to stderr (the journal), without stopping it: every thread's stack,
and each asyncio task's chain of awaits, for a process that will not stop or answer."""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


def on_signals(reload: Callable[[], Coroutine[Any, Any, bool]]) -> asyncio.Event:
    """SIGTERM and SIGINT set the event returned; SIGHUP runs `reload()`, but not once stopping."""
    stop, loop = asyncio.Event(), asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, log_tasks)
    faulthandler.register(signal.SIGUSR1, all_threads=True, chain=True)  # in C: also while the loop is stuck
    reloads: set[asyncio.Task[bool]] = set()  # held until done: the loop keeps only weak references

    def hangup() -> None:
        if not stop.is_set():
            task = loop.create_task(reload())
            reloads.add(task)
            task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, hangup)
    return stop


def log_tasks() -> None:
    """Each task and the awaits it waits in, innermost last: the threads' stacks show only the loop."""
    for task in asyncio.all_tasks():
        where: list[str] = []
        awaited: Any = task.get_coro()
        while (frame := getattr(awaited, "cr_frame", None)) is not None:
            where.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
            awaited = awaited.cr_await
        log.warning("task %s waits in:\n%s", task.get_name(), "\n".join(where) or "  (not started)")
