"""Device-safe polling: every job on time, no device or network flooded, dead devices made cheap.

Timing. Each job fires on fixed slots `phase + n * interval`; the phase is drawn uniformly over
the first interval (so 10,000 devices configured at once do not fire at once) and each firing is
delayed by a fresh random `jitter * interval` that never accumulates. A slot that arrives while
the job's previous run (or its wait for a slot) is still going is skipped and counted. Slots that
passed before `run_forever` started are dropped, not fired in a burst.

Safety. A run holds one of `max_in_flight` global slots and, if it asks the device's agent, one
of `per_device_in_flight` slots of its device for as long as it runs (a ping, answered by the
device's forwarding plane, never waits behind a slow agent's walks); `lag` is how late it
started against its slot. A run still going after `job_timeout` is cancelled and counted in
`timeouts`: a stuck poll frees its slots instead of holding them for good, and the job's
`on_timeout` samples (say, its device's sample with outcome TIMEOUT) are delivered in place of
the poll's.

Silent devices. A job whose device sample says TIMEOUT or UNREACHABLE backs off: its full poll
runs only every 2, 4, 8... intervals (up to `max_backoff`). In the slots between, the job's cheap
`check` runs instead (say, one sysUpTime GET without retries), so a dead device costs one
datagram per interval while recovery is still noticed within one interval: when the check
answers, the full poll runs at once and the backoff is reset. A job without a `check` is never
backed off, because its own poll is then the only way to notice recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from monitord.model import NodeRef, Outcome, Sample

log = logging.getLogger("monitord.scheduler")

Poll = Callable[[], Awaitable[list[Sample]]]
Sink = Callable[[list[Sample]], Awaitable[None]]
SILENT = frozenset({Outcome.TIMEOUT, Outcome.UNREACHABLE})
_NO_SLOT = contextlib.nullcontext()


@dataclass(frozen=True, slots=True)
class Job:
    key: str
    device: str
    probe_class: str  # "icmp", "line", "optical": what skipped/error counters are grouped by
    interval: float
    run: Poll
    check: Poll | None = None  # cheap liveness poll used while the device is silent
    on_timeout: Callable[[float], list[Sample]] | None = None  # samples saying the run took over n seconds
    asks_agent: bool = True  # holds one of its device's per_device_in_flight slots (SNMP does, ICMP does not)


@dataclass(frozen=True, slots=True)
class JobStats:
    last_started: float | None  # clock time
    last_duration: float | None  # seconds
    lag: float | None  # seconds the last run started after its slot
    backoff: int  # 1 when healthy; n: the full poll runs every n intervals


JobHealth = tuple[str, float | None, float | None, int]  # key, last_started, lag, backoff


def device_silent(samples: Iterable[Sample], device: str) -> bool:
    node = NodeRef("device", device)
    return any(s.target == node and s.outcome in SILENT for s in samples)


class _State:
    """The timing and health of one job; kept across `replace_jobs` while the job is unchanged."""

    __slots__ = (
        "error",
        "full_slot",
        "gone",
        "job",
        "lag",
        "last_duration",
        "last_started",
        "phase",
        "running",
        "slot",
        "streak",
    )

    def __init__(self, job: Job, phase: float) -> None:
        self.job = job
        self.phase = phase
        self.slot = 0
        self.running = False
        self.gone = False
        self.streak = 0  # consecutive full polls that found the device silent
        self.full_slot = 0  # while backing off, the slot of the next full poll
        self.error: str | None = None
        self.last_started: float | None = None
        self.last_duration: float | None = None
        self.lag: float | None = None

    def same_timing(self, job: Job) -> bool:
        old = self.job
        return (old.device, old.probe_class, old.interval) == (job.device, job.probe_class, job.interval)


class Scheduler:
    def __init__(
        self,
        jobs: Iterable[Job],
        sink: Sink,
        *,
        max_in_flight: int = 256,
        per_device_in_flight: int = 2,
        jitter: float = 0.1,
        max_backoff: int = 8,
        job_timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._sink = sink
        self._slots = asyncio.Semaphore(max_in_flight)
        self._per_device = per_device_in_flight
        self._device_slots: dict[str, asyncio.Semaphore] = {}
        self._jitter = jitter
        self._max_backoff = max_backoff
        self._job_timeout = job_timeout
        self._clock = clock
        self._rng = rng or random.Random()
        self._states: dict[str, _State] = {}
        self._by_device: dict[str, list[_State]] = {}
        # (due, order) pairs of numbers, which the GC stops tracking, and each job by its order:
        # an entry that held its job, one per job, was walked by every full GC pass
        self._heap: list[tuple[float, int]] = []
        self._queued: dict[int, _State] = {}
        self._order = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake: asyncio.Future[None] | None = None
        self._stopping = False
        self._sink_error: str | None = None
        self.skipped: Counter[str] = Counter()  # per probe class
        self.errors: Counter[str] = Counter()  # per probe class: runs that raised
        self.timeouts: Counter[str] = Counter()  # per probe class: runs cancelled after job_timeout
        self.replace_jobs(jobs)

    @property
    def stats(self) -> dict[str, JobStats]:
        return {key: JobStats(s.last_started, s.last_duration, s.lag, self._backoff(s)) for key, s in self._states.items()}

    def health_later(self) -> Callable[[], Iterator[JobHealth]]:
        """Each job's (key, last_started, lag, backoff), to read later, e.g. in a worker thread:
        the jobs are taken now (one list copy), each job's figures when read (each one a value
        it had meanwhile). Plain tuples: the metrics read 60,000 jobs at a million lines."""
        states = list(self._states.values())
        return lambda: ((s.job.key, s.last_started, s.lag, self._backoff(s)) for s in states)

    def replace_jobs(self, jobs: Iterable[Job]) -> None:
        """Swap in a new job list (config reload); unchanged jobs keep their slots and health."""
        now, old, self._states = self._clock(), self._states, {}
        for job in jobs:
            state = old.pop(job.key, None)
            if state is not None and state.same_timing(job):
                state.job = job
            else:
                if state is not None:
                    state.gone = True
                state = _State(job, now + self._rng.uniform(0.0, job.interval))
                self._push(state)
            self._states[job.key] = state
        for state in old.values():
            state.gone = True
        self._by_device = {}
        for state in self._states.values():
            self._by_device.setdefault(state.job.device, []).append(state)
        self._device_slots = {
            device: self._device_slots.get(device) or asyncio.Semaphore(self._per_device) for device in self._by_device
        }
        self._poke()

    def poll_now(self, device: str) -> None:
        """Run the device's idle jobs at once, outside their slots: the rules want fresh evidence.

        A job backing off runs its cheap check, and its full poll only if the check answers.
        Once stopping, nothing more is started (the last steps' rechecks would poll through
        closed clients and hand samples to a closed store).
        """
        if self._stopping:
            return
        now = self._clock()
        for state in self._by_device.get(device, ()):
            if not state.running:
                self._start(state, now)

    async def run_forever(self) -> None:
        """Fire jobs until `stop()`; runs in flight are cancelled then."""
        now, self._heap, self._queued = self._clock(), [], {}
        for state in self._states.values():
            state.slot = max(state.slot, math.ceil((now - state.phase) / state.job.interval))
            self._push(state)
        try:
            while not self._stopping:
                now = self._clock()
                while self._heap and self._heap[0][0] <= now:
                    due, order = heapq.heappop(self._heap)
                    state = self._queued.pop(order)
                    if state.gone:
                        continue
                    if state.running:
                        self.skipped[state.job.probe_class] += 1
                    else:
                        self._start(state, due)
                    state.slot += 1
                    self._push(state)
                await self._nap(self._heap[0][0] - now if self._heap else None)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def stop(self) -> None:
        self._stopping = True
        self._poke()

    def _push(self, state: _State) -> None:
        slot = state.phase + state.slot * state.job.interval
        due = slot + self._rng.uniform(0.0, self._jitter * state.job.interval) if state.slot else slot
        self._order += 1
        self._queued[self._order] = state
        heapq.heappush(self._heap, (due, self._order))

    async def _nap(self, seconds: float | None) -> None:
        loop = asyncio.get_running_loop()
        self._wake = wake = loop.create_future()
        timer = loop.call_later(seconds, self._poke) if seconds is not None else None
        try:
            await wake
        finally:
            if timer:
                timer.cancel()

    def _poke(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def _start(self, state: _State, due: float) -> None:
        state.running = True
        # taken now: a reload may drop the device
        device_slot = self._device_slots[state.job.device] if state.job.asks_agent else _NO_SLOT
        task = asyncio.get_running_loop().create_task(self._run(state, device_slot, state.slot, due))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _backoff(self, state: _State) -> int:
        if state.job.check is None or not state.streak:
            return 1
        return min(2**state.streak, self._max_backoff)

    async def _run(self, state: _State, device_slot: AbstractAsyncContextManager[object], slot: int, due: float) -> None:
        try:
            async with self._slots, device_slot:
                started = self._clock()
                state.last_started, state.lag = started, started - due
                try:
                    async with asyncio.timeout(self._job_timeout):
                        samples = await self._poll(state, slot)
                except TimeoutError:
                    assert self._job_timeout is not None
                    samples = self._timed_out(state, self._job_timeout)
                state.last_duration = self._clock() - started
        finally:
            state.running = False
        if samples and not state.gone:
            await self._deliver(samples)

    async def _poll(self, state: _State, slot: int) -> list[Sample]:
        """The full poll, or while backing off the cheap check (and the full poll if it answers)."""
        job = state.job
        samples: list[Sample] = []
        if job.check is not None and state.streak and slot < state.full_slot:
            samples = await self._call(state, job.check)
            if not samples or device_silent(samples, job.device):
                return samples
        samples = [*samples, *await self._call(state, job.run)]
        if device_silent(samples, job.device):
            state.streak += 1
            state.full_slot = slot + self._backoff(state)
        else:
            state.streak = 0
        return samples

    def _timed_out(self, state: _State, seconds: float) -> list[Sample]:
        self.timeouts[state.job.probe_class] += 1
        error = f"still running after {seconds:g} s, cancelled"
        if error != state.error:
            log.warning("job %s %s", state.job.key, error)
            state.error = error
        return state.job.on_timeout(seconds) if state.job.on_timeout else []

    async def _call(self, state: _State, poll: Poll) -> list[Sample]:
        """Run a poll; an exception becomes no samples, logged when it first appears or changes."""
        try:
            samples = await poll()
        except Exception as exc:  # a job's bug must not stop the others
            self.errors[state.job.probe_class] += 1
            error = f"{type(exc).__name__}: {exc}"
            if error != state.error:
                log.warning("job %s failed: %s", state.job.key, error, exc_info=exc)
                state.error = error
            return []
        if state.error is not None:
            log.info("job %s runs again", state.job.key)
            state.error = None
        return samples

    async def _deliver(self, samples: list[Sample]) -> None:
        try:
            await self._sink(samples)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if error != self._sink_error:
                log.error("sink failed: %s", error, exc_info=exc)
                self._sink_error = error
        else:
            self._sink_error = None
