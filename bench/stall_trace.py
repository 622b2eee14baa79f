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

A stall need not be the loop's own work: another thread may hold the interpreter (the GIL), or
a garbage collection pass may run. So for each stall it also notes the CPU every thread of the
process spent meanwhile (/proc/self/task/<tid>/stat, read when the callback has run `every`
seconds and again when it ends), samples the other threads' stacks, and times every collection
(gc.callbacks), counting the part of each that fell within a stall.

The tracing is not free: its thread wakes every `every` seconds and takes the interpreter from
the loop, and reads /proc for every thread. A traced run has more and longer stalls than the
same run untraced (17 over 100 ms against 1 on one tree, docs/benchmarks.md): compare traced runs with
traced runs only, and take the figures from untraced ones.
"""

from __future__ import annotations

import asyncio
import gc
import os
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


TICK = os.sysconf("SC_CLK_TCK")


def _thread_cpu() -> dict[int, float]:
    """CPU seconds (user + system) of each of this process's threads, by native thread id."""
    found = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        found[int(tid)] = (int(fields[11]) + int(fields[12])) / TICK
    return found


def _thread_names() -> dict[int, str]:
    return {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}


def _stack(frame: FrameType | None, depth: int = 6) -> str:
    parts: list[str] = [] if frame is None else [f"[{frame.f_code.co_name}]"]
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
    others: Counter[str] = field(default_factory=Counter)  # another thread's name and stack during a stall -> samples
    thread_cpu: Counter[str] = field(default_factory=Counter)  # thread -> CPU seconds spent during stalls
    stalled: float = 0.0  # seconds of stalls (callbacks past `after`), summed
    gc_passes: Counter[int] = field(default_factory=Counter)  # generation -> passes
    gc_time: Counter[int] = field(default_factory=Counter)  # generation -> seconds
    gc_worst: dict[int, float] = field(default_factory=dict)  # generation -> its longest pass
    gc_in_stalls: float = 0.0  # seconds of collections within stalls
    _current: tuple[float, int] | None = None
    _gc_began: float = 0.0
    _gc_passes: list[tuple[float, float]] = field(default_factory=list)  # recent passes: (start, end)
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
        gc.callbacks.append(self._collected)
        self._thread = threading.Thread(target=self._watch, name="stall-trace", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        gc.callbacks.remove(self._collected)
        asyncio.events.Handle._run = self._original  # type: ignore[method-assign]

    def _collected(self, phase: str, info: dict[str, int]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._gc_began = now
            return
        generation, took = info["generation"], now - self._gc_began
        self.gc_passes[generation] += 1
        self.gc_time[generation] += took
        self.gc_worst[generation] = max(self.gc_worst.get(generation, 0.0), took)
        if took > 0.001:
            self._gc_passes = [p for p in self._gc_passes if p[1] > now - 60] + [(self._gc_began, now)]

    def _watch(self) -> None:
        tracked: tuple[float, dict[int, float]] | None = None  # the running callback's start, threads' CPU then
        while not self._stop.wait(self.every):
            current, now = self._current, time.perf_counter()
            if tracked is not None and (current is None or current[0] != tracked[0]):
                self._ended(tracked, now)
                tracked = None
            if current is None:
                continue
            if tracked is None:
                tracked = (current[0], _thread_cpu())
            if now - current[0] < self.after:
                continue
            frames = sys._current_frames()
            self.stacks[_stack(frames.get(current[1]))] += 1
            names = _thread_names()
            for thread in threading.enumerate():
                if thread.ident not in (current[1], threading.get_ident()) and thread.ident in frames:
                    self.others[f"{names.get(thread.native_id or 0, '?')}: {_stack(frames[thread.ident])}"] += 1

    def _ended(self, tracked: tuple[float, dict[int, float]], now: float) -> None:
        """Charge a callback that ran past `after` with what every thread spent meanwhile."""
        began, before = tracked
        if now - began < self.after:
            return
        self.stalled += now - began
        names = _thread_names()
        for tid, cpu in _thread_cpu().items():
            spent = cpu - before.get(tid, cpu)
            if spent > 0:
                self.thread_cpu[names.get(tid) or Path(f"/proc/self/task/{tid}/comm").read_text().strip()] += spent
        self.gc_in_stalls += sum(max(0.0, min(end, now) - max(start, began)) for start, end in self._gc_passes)

    def report(self, top: int = 15) -> str:
        rows = ["slowest callbacks (time past the threshold, summed; longest run):"]
        rows += [f"  {secs:8.2f} s  max {self.worst[name] * 1000:6.0f} ms  {name}" for name, secs in self.slow.most_common(top)]
        rows.append(f"stacks holding the loop past {self.after * 1000:.0f} ms (samples x {self.every * 1000:.0f} ms):")
        rows += [f"  {n * self.every:8.2f} s  {stack}" for stack, n in self.stacks.most_common(top)]
        rows.append(
            f"CPU of each thread during the stalls ({self.stalled:.2f} s of stalls in all, from {self.every * 1000:.0f} ms in):"
        )
        rows += [f"  {secs:8.2f} s  {name}" for name, secs in self.thread_cpu.most_common(top)]
        rows.append("other threads' stacks during the stalls (samples):")
        rows += [f"  {n * self.every:8.2f} s  {stack}" for stack, n in self.others.most_common(top)]
        rows.append(f"garbage collections ({self.gc_in_stalls:.2f} s of them within stalls):")
        rows += [
            f"  generation {g}: {self.gc_passes[g]} passes, {self.gc_time[g]:.2f} s, longest {self.gc_worst[g] * 1000:.0f} ms"
            for g in sorted(self.gc_passes)
        ]
        return "\n".join(rows)
