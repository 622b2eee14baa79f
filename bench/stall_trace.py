"""Where the event loop's stalls come from: a watchdog thread that samples the loop thread's stack
while one callback has held it for longer than `after` seconds.

    with StallTrace(after=0.05) as trace:   # around asyncio.run(...) or a window of it
        ...
    print(trace.report())

Every asyncio callback (a task's step, a timer) is timed by wrapping `Handle._run`; the watchdog
looks every `every` seconds and, when the current callback has run past `after`, notes the loop
thread's stack (this project's frames only), so each sample stands for about `every` seconds of
stall. The report gives the slowest callbacks (by the task's coroutine) and the stacks that held
the loop longest. For benches only: it patches asyncio for the whole process.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType

ROOT = str(Path(__file__).resolve().parent.parent)
OURS = ("monitord/", "rules/", "notices/", "probes/", "notifiers/", "lab/", "bench/")


def _name(handle: asyncio.Handle) -> str:
    callback = getattr(handle, "_callback", None)
    task = getattr(callback, "__self__", None)
    if isinstance(task, asyncio.Task):
        coro = task.get_coro()
        return getattr(coro, "__qualname__", repr(coro))
    return getattr(callback, "__qualname__", repr(callback))


def _stack(frame: FrameType | None, depth: int = 6) -> str:
    parts: list[str] = []
    while frame is not None and len(parts) < 40:
        path = frame.f_code.co_filename
        if path.startswith(ROOT) and path[len(ROOT) + 1 :].startswith(OURS):
            parts.append(f"{path[len(ROOT) + 1 :]}:{frame.f_code.co_name}")
        frame = frame.f_back
    return " < ".join(parts[:depth]) or "(outside the project)"


@dataclass
class StallTrace:
    after: float = 0.05  # a callback running this long is a stall worth sampling
    every: float = 0.005
    slow: Counter[str] = field(default_factory=Counter)  # callback -> seconds over `after`, summed
    worst: dict[str, float] = field(default_factory=dict)  # callback -> its longest run
    stacks: Counter[str] = field(default_factory=Counter)  # innermost frames -> samples
    _current: tuple[float, int] | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> StallTrace:
        self._original = asyncio.events.Handle._run
        trace, original = self, self._original

        def timed(handle: asyncio.Handle) -> None:
            began = time.perf_counter()
            trace._current = (began, threading.get_ident())
            try:
                original(handle)
            finally:
                trace._current = None
                took = time.perf_counter() - began
                if took > trace.after:
                    name = _name(handle)
                    trace.slow[name] += took
                    trace.worst[name] = max(trace.worst.get(name, 0.0), took)

        asyncio.events.Handle._run = timed  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        asyncio.events.Handle._run = self._original  # type: ignore[method-assign]

    def _watch(self) -> None:
        while not self._stop.wait(self.every):
            current = self._current
            if current is None or time.perf_counter() - current[0] < self.after:
                continue
            frame = sys._current_frames().get(current[1])
            self.stacks[_stack(frame)] += 1

    def report(self, top: int = 15) -> str:
        rows = ["slowest callbacks (time past the threshold, summed; longest run):"]
        rows += [f"  {secs:8.2f} s  max {self.worst[name] * 1000:6.0f} ms  {name}" for name, secs in self.slow.most_common(top)]
        rows.append(f"stacks holding the loop past {self.after * 1000:.0f} ms (samples x {self.every * 1000:.0f} ms):")
        rows += [f"  {n * self.every:8.2f} s  {stack}" for stack, n in self.stacks.most_common(top)]
        return "\n".join(rows)
