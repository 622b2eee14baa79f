"""The delivery worker: drains the store's outbox through the notifiers, one pump per channel.

Retries live here and only here. Per channel: at most `concurrency` sends in flight, at most
`rate` sends per second (a token bucket read in waves, monitord/pacing.py), exponential backoff
with full jitter up to `max_backoff` (or the peer's Retry-After) for an item that fails alone,
dead letters for permanent errors and for items older than `max_age`.

Delivery guarantee (see docs/delivery.md):

* An item is marked `sending` in a committed transaction, durable on disk (`Store.durable`:
  commits do not wait for the disk, monitord/walsync.py) before its first byte goes out, and
  `sent` (with the peer's reference) after the peer accepted it. Nothing queued is ever lost:
  the item sits in the same transaction as the incident change that caused it. Items are
  claimed a wave at a time (one transaction for all the sends a wave starts); on a channel
  that can `lookup`, the `sent` marks of a wave's answers are written together at the next wave
  or before the channel idles: a crash in between leaves them `sending`, which the lookup below
  credits without a resend. Other channels mark each item `sent` as its answer comes.
* An attempt whose outcome is unknown (the process died while it was `sending`, or the call
  failed in a way that may have reached the peer) is never blindly repeated when the notifier
  can `lookup` (Twilio SMS): before any re-attempt the worker asks the peer for messages with
  the same recipient and text created since the item's first attempt, and credits the first
  one no other item holds (`Store.adopt`). Re-attempts wait at least `settle` seconds so that
  an accepted message has time to show up in the peer's list. This gives exactly-once delivery
  except when the peer accepted a message but does not list it `settle` seconds later.
* With the state in PostgreSQL, several outboxes (processes) may run on it (`lease_term`): a
  wave's claim locks its rows FOR UPDATE SKIP LOCKED, the channel's rate is a bucket row taken
  in the same transaction, and a live worker reconciles the `sending` items of one whose lease
  expired, as after a crash; a worker's marks apply only to items it still holds
  (`Store.claim_due`, `Store.reclaim`, docs/delivery.md "Several workers").
* For notifiers without `lookup` the guarantee is at-least-once: an attempt whose outcome is
  unknown is repeated (after a crash, at most the `concurrency` items in flight per channel).
* On ordered channels (tickets by default) one incident's items go out one at a time, in the
  order they were queued: a comment never overtakes its create, whatever the retries did.
* A `ChannelError` (401/403, SMTP AUTH) holds the channel: nothing is sent on it but one item
  every `probe_every` seconds, nothing on it is dead-lettered or aged out, and the NOC is told
  once through the other channels (`on_hold`). The first item that goes through (or is refused
  for itself, which proves the credentials work) releases it; `replace_notifiers` (a reload)
  probes at once.
* A peer that fails `down_after` attempts in a row (5xx, 429, refused, timeouts) holds the
  channel the same way, as `unavailable`: one item every `outage_probe` seconds (or the peer's
  Retry-After), no backoff clock per item, one log line when it starts and one when it ends.
  When the probe goes through, every waiting item is due within `settle` and goes out at `rate`.
* Age and retry timers are differences of `clock` readings. The daemon hands the outbox its
  anchored clock (monitord/clock.py: wall time read once, then carried by the monotonic clock),
  so a step of the wall clock while it runs never reaches the outbox: a step forward
  dead-letters nothing as too old and a step back stalls no retry. Timers saved before a step
  made while the daemon was stopped come out that much shorter or longer, once.

Longer than the other modules on purpose: a channel's pump, its holds and outages, its retries
and its lease are one state machine, and each of its transitions is what one clause of the
guarantee above rests on; split, the guarantee would be read across files.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
import traceback
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from monitord.model import ChannelHold, FailureReason, HoldCause, Notification
from monitord.pacing import Waves, backoff
from monitord.store import LeaseLost, OutboxItem, Store
from notices.segments import Encoding, segments
from notices.templates import mask_phone
from notifiers.base import ChannelError, DeliveryError, Notifier

log = logging.getLogger(__name__)

CLOCK_SKEW = 60.0  # seconds the peer's clock may differ from ours when matching by time
ORDERED_CHANNELS = frozenset(
    {"ticket", "alert"}
)  # each item acts on what the incident's earlier ones made (a late push never undoes a resolve)
LEASE_TERM = 10.0  # one of several workers: its lease, renewed every quarter of it; a dead one's items wait this long
IDLE_POLL = 0.5  # one of several workers: items queued by another process are seen this soon (no wake)


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    """How one channel is paced and retried."""

    concurrency: int = 4
    rate: float = 10.0  # sends per second
    catch_up: float = 0.3  # seconds of sending lost to a stall (GC, a busy loop) made up at once: at 0.1, polling 100,000 lines held 500 SMS/s to 87-91%
    max_age: float = 6 * 3600.0  # counted from creation or the end of quiet hours
    base_backoff: float = 5.0
    max_backoff: float = 60.0  # the longest an item that fails alone waits for its next attempt
    settle: float = 5.0  # the earliest re-attempt after an attempt that may have arrived
    ordered: bool | None = None  # per-incident queue order; None: only for ORDERED_CHANNELS
    probe_every: float = 60.0  # while the channel's credentials are refused: one item tried this often
    outage_probe: float = 5.0  # while the peer fails (5xx, 429, refused): one item tried this often
    down_after: int = 3  # failed attempts in a row that make the channel unavailable


@dataclass(slots=True)
class DeliveryCounts:
    """Running totals since start, for metrics; failures by their reason."""

    sent: int = 0
    failed_by: Counter[FailureReason] = field(default_factory=Counter)  # attempts that will be retried
    dead_by: Counter[FailureReason] = field(default_factory=Counter)
    adopted: int = 0  # sent, found at the peer after a lost answer
    segments: int = 0  # SMS segments of sent messages
    held: int = 0  # attempts refused by a ChannelError

    @property
    def failed(self) -> int:
        return self.failed_by.total()

    @property
    def dead(self) -> int:
        return self.dead_by.total()


@dataclass(frozen=True, slots=True)
class Hold:
    """Why a channel is held, since when (wall clock for people, monotonic for timers)."""

    cause: HoldCause
    reason: str
    since: float
    started: float
    counted_before: int  # the channel's DeliveryCounts.failed (unavailable) or .held (refused) when it began


@dataclass(frozen=True, slots=True)
class Delivery:
    """How delivery goes per channel, for metrics: running totals, holds, and what waits."""

    counts: Mapping[str, DeliveryCounts]
    holds: Mapping[str, Hold]
    backlog: Mapping[str, tuple[int, float]]  # channel -> (undelivered items, when the oldest could first go)


@dataclass(frozen=True, slots=True)
class Streak:
    """A channel's attempts failing in a row since `since` (wall) / `started` (monotonic)."""

    since: float
    started: float
    failed_before: int  # the channel's DeliveryCounts.failed before the first of them


@runtime_checkable
class Reconciling(Protocol):
    """A notifier that can tell whether the peer already holds a message for `item`."""

    async def lookup(self, item: Notification, since: float) -> Sequence[str]: ...


@functools.cache
def reconciles(kind: type) -> bool:
    """Whether a notifier class can `lookup`: checked once a class, a Protocol check is slow."""
    return issubclass(kind, Reconciling)


@functools.lru_cache(maxsize=256)
def billed_segments(body: str, encoding: Encoding) -> int:
    """One outage's SMS share a few texts: count each text's segments once."""
    return segments(body, encoding)


def age_start(item: OutboxItem) -> float:
    return max(item.created_at, item.not_before or item.created_at)


class Outbox:
    """Run with `await outbox.run()` inside the daemon's TaskGroup; `wake()` after queuing.

    The outbox owns the notifiers it is given: `run()` closes them when it ends.
    """

    def __init__(
        self,
        store: Store,
        notifiers: Mapping[str, Notifier],
        policies: Mapping[str, ChannelPolicy],
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        on_hold: Callable[[ChannelHold], Sequence[tuple[Notification, float | None]]] | None = None,
        lease_term: float | None = None,
    ) -> None:
        """`on_hold` says what to queue when a channel is held or released (the NOC's alerts);
        items for the channel concerned are dropped, the others are queued at once.

        `lease_term`: run as one of several workers on one PostgreSQL store, under a lease of
        that many seconds (docs/delivery.md, "Several workers"); None: the only one."""
        self._store = store
        self.store_errors = store.errors  # what its store raises when it refuses a write
        self._lease_term = lease_term
        self._notifiers = dict(notifiers)
        self._policies = {c: policies.get(c, ChannelPolicy()) for c in notifiers}
        self._clock = clock
        self._rng = rng or random.Random()
        self._on_hold = on_hold
        self.counts = {c: DeliveryCounts() for c in notifiers}
        self._wake = {c: asyncio.Event() for c in notifiers}
        self._stopping = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._busy = dict.fromkeys(notifiers, 0)  # sends in flight per channel
        self._answered: dict[str, list[tuple[int, str, float]]] = {c: [] for c in notifiers}  # sent, not yet marked
        self._holds: dict[str, Hold] = {}
        self._streaks: dict[str, Streak] = {}
        self._probe_at: dict[str, float] = {}  # monotonic: the held channel's next probe
        self._age_floor: dict[str, float] = {}  # wall: held time does not count toward max_age
        self._retiring: set[asyncio.Task[None]] = set()
        self._bugs_logged: set[tuple[str, str, str, int | None]] = set()  # (channel, exception, file, line)

    @property
    def holds(self) -> Mapping[str, Hold]:
        """Held channels, for metrics and the API."""
        return dict(self._holds)

    def delivery(self) -> Delivery:
        return Delivery(self.counts, self.holds, self._store.backlog())

    def dead_on_arrival(self, item: Notification) -> None:
        """A notice that could not even be built (a template error), filed dead by
        `Store.commit_step`: logged and counted, never sent."""
        log.warning("dead letter on arrival: %s", masked(f"{item.channel} {item.key}: {item.error}", item))
        if item.channel in self.counts:
            self.counts[item.channel].dead_by["template_error"] += 1

    def replace_notifiers(self, notifiers: Mapping[str, Notifier]) -> None:
        """A reload with new addresses or credentials: later sends use `notifiers`, and a held
        channel is probed at once. Channels that were not running are left for the next start."""
        for channel, notifier in notifiers.items():
            if channel not in self._notifiers:
                continue
            old, self._notifiers[channel] = self._notifiers[channel], notifier
            task = asyncio.get_running_loop().create_task(self._retire(old))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        self.probe_held()

    def probe_held(self) -> None:
        """Try a held channel now instead of at its next probe (a reload: the fix may be in)."""
        for channel in self._holds:
            self._probe_at[channel] = 0.0
            self._wake[channel].set()

    async def _retire(self, notifier: Notifier) -> None:
        """Close a replaced notifier once the sends that may still use it are over."""
        if self._inflight:
            await asyncio.wait(set(self._inflight))
        await notifier.close()

    def wake(self) -> None:
        """New items were queued: look at the outbox now instead of at the next due time."""
        for event in self._wake.values():
            event.set()

    async def run(self) -> None:
        """Deliver until `stop`. One of several workers enlists first (LeaseLost ends it when
        its lease expires; running it again enlists anew). Its writes take the store's `turn`
        (monitord/stepwriter.py), never waiting on the database for a step being written."""
        async with self._store.turn:
            if self._lease_term is None:
                for channel, policy in self._policies.items():
                    self._store.requeue_sending(channel, self._clock() + policy.settle)
            else:
                self._store.enlist(self._lease_term)
                self._store.reclaim(self._clock() + self._settle())
        try:
            async with asyncio.TaskGroup() as group:
                if self._lease_term is not None:
                    group.create_task(self._keep_lease(self._lease_term))
                for channel in self._notifiers:
                    group.create_task(self._pump(channel, group))
        finally:
            async with self._store.turn:
                for channel in self._notifiers:
                    self._mark_answered(channel)
                if self._lease_term is not None:
                    try:
                        self._store.leave(self._clock() + self._settle())
                    except self.store_errors as error:  # its lease expires: another worker reconciles its items
                        log.warning("outbox worker %s could not hand back its items: %s", self._store.worker, error)
            if self._retiring:
                await asyncio.wait(set(self._retiring))
            for notifier in self._notifiers.values():
                await notifier.close()

    def _settle(self) -> float:
        return max((p.settle for p in self._policies.values()), default=0.0)

    async def _keep_lease(self, term: float) -> None:
        """Renew the lease four times a term, and take over the `sending` items of workers whose
        lease expired: they are reconciled with the peer like a crashed process's."""
        while not self._stopping.is_set():
            await self._pause(term / 4, self._stopping)
            if self._stopping.is_set():
                return
            async with self._store.turn:
                taken = self._store.reclaim(self._clock() + self._settle())
            if taken:
                log.warning("outbox worker %s took over %d items a stopped worker left sending", self._store.worker, taken)
                self.wake()

    async def stop(self, timeout: float) -> None:
        """Stop taking items; give in-flight sends `timeout` seconds, then cancel them.

        A cancelled send stays `sending` and is reconciled at the next start.
        """
        self._stopping.set()
        self.wake()
        if self._inflight:
            _, late = await asyncio.wait(set(self._inflight), timeout=timeout)
            for task in late:
                task.cancel()

    async def _pause(self, seconds: float | None, event: asyncio.Event) -> None:
        if seconds == 0.0:
            return
        try:
            async with asyncio.timeout(seconds):
                await event.wait()
        except TimeoutError:
            pass

    async def _pump(self, channel: str, group: asyncio.TaskGroup) -> None:
        policy = self._policies[channel]
        loop = asyncio.get_running_loop()
        waves = Waves.start(policy.rate, policy.catch_up, loop.time())
        wake = self._wake[channel]
        ordered = channel in ORDERED_CHANNELS if policy.ordered is None else policy.ordered
        while not self._stopping.is_set():
            wake.clear()
            probing = channel in self._holds
            if probing and (wait := self._probe_at[channel] - loop.time()) > 0:
                async with self._store.turn:
                    self._mark_answered(channel)
                await self._pause(wait, wake)
                continue
            free = policy.concurrency - self._busy[channel]
            if free <= 0:
                await self._pause(None, wake)  # a send ending sets it
                continue
            if (wait := waves.wait(loop.time())) > 0:
                await self._pause(wait, self._stopping)
                continue
            now = self._clock()
            want = 1 if probing else waves.allowance(loop.time(), free)
            short = 0.0  # one of several workers: seconds until the channel's shared bucket holds a token
            if self._lease_term is None:
                items = self._store.due(channel, now, want, ordered)
            else:  # claimed at once, the kept-back marks with them
                answered, self._answered[channel] = self._answered[channel], []
                async with self._store.turn:
                    items, short = self._store.claim_due(channel, now, want, waves.rate, waves.burst, ordered, answered)
            if not items and short:
                await self._pause(short, self._stopping)
                continue
            if not items:
                async with self._store.turn:
                    self._mark_answered(channel)
                next_at = self._store.next_due(channel, ordered)
                pause = None if next_at is None else max(0.0, next_at - now)
                if self._lease_term is not None:
                    pause = min(pause if pause is not None else IDLE_POLL, IDLE_POLL)
                await self._pause(pause, wake)
                continue
            if probing:
                self._probe_at[channel] = loop.time() + self._probe_every(channel)
            async with self._store.turn:
                wave = []
                for item in items:
                    started = max(age_start(item), self._age_floor.get(channel, item.created_at))
                    if not probing and now - started > policy.max_age:
                        reason = f"older than max age {policy.max_age:g}s, last error: {item.last_error}"
                        self._dead(item, item.attempts, reason, "expired")
                    else:
                        wave.append(item)
                if self._lease_term is None:
                    answered, self._answered[channel] = self._answered[channel], []
                    claimed = self._store.claim_wave([i.id for i in wave], now, answered)
                else:
                    claimed = {i.id for i in wave}
            waves.take(len(claimed), loop.time())
            if claimed:  # one fsync a wave, off the loop: the claims, and the steps that queued them, on disk
                await self._store.durable()
            for item in wave:
                if item.id in claimed:  # else no longer pending: nothing to send
                    self._busy[channel] += 1
                    task = group.create_task(self._deliver(item, policy))
                    self._inflight.add(task)
                    task.add_done_callback(self._inflight.discard)

    def _mark_answered(self, channel: str) -> None:
        """Write the `sent` marks kept back since the last wave, in one transaction."""
        if answered := self._answered[channel]:
            self._answered[channel] = []
            self._store.mark_sent_wave(answered)

    async def _deliver(self, item: OutboxItem, policy: ChannelPolicy) -> None:
        channel = item.notification.channel
        notifier = self._notifiers[channel]
        try:
            ref, adopted = await self._attempt(notifier, item)
        except LeaseLost:
            raise
        except ChannelError as error:
            async with self._store.turn:
                self._hold(item, error)
        except DeliveryError as error:
            async with self._store.turn:
                self._failed(item, error, policy, reconciles(type(notifier)))
                if not error.retryable:
                    self._release(channel)  # refused for itself: the peer is up and took the credentials
        except Exception as error:  # a notifier bug must not stop the channel
            reason = f"unexpected {type(error).__name__} in the {channel} notifier"
            self._log_bug(item, error, reason)
            bug = DeliveryError(reason, retryable=True, kind="notifier_bug")
            async with self._store.turn:
                self._failed(item, bug, policy, reconciles(type(notifier)))
        else:
            async with self._store.turn:
                self._sent(item, ref, adopted, defer=reconciles(type(notifier)))
                self._release(channel)
        finally:
            self._busy[channel] -= 1
            self._wake[channel].set()

    def _log_bug(self, item: OutboxItem, error: Exception, reason: str) -> None:
        """The traceback someone needs to fix the notifier, once per place it is raised: a bug
        that every notice meets must not bury the log under 12,500 copies. The customer's
        address is masked in it, as in every other line about a notice."""
        where = traceback.extract_tb(error.__traceback__)[-1]
        place = (item.notification.channel, type(error).__qualname__, where.filename, where.lineno)
        if place in self._bugs_logged:
            return
        self._bugs_logged.add(place)
        n = item.notification
        told = masked("".join(traceback.format_exception(error)).rstrip(), n)
        log.error("%s (notice %s; retried; logged once per place):\n%s", reason, masked(n.key, n), told)

    async def _attempt(self, notifier: Notifier, item: OutboxItem) -> tuple[str, bool]:
        """Send, unless an earlier attempt whose answer was lost did reach the peer. One of several
        workers sends only under its lease: once it may have expired, another may hold the item."""
        self._check_lease()
        if item.first_attempt_at is not None and isinstance(notifier, Reconciling):
            ahead = max(0.0, self._clock() - time.time())  # the wall stepped back since start: the peer's times are earlier
            found = await notifier.lookup(item.notification, item.first_attempt_at - CLOCK_SKEW - ahead)
            async with self._store.turn:
                self._mark_answered(item.notification.channel)  # a reference kept back is no longer free to adopt
                ref = self._store.adopt(item.id, found, self._clock())
            if ref is not None:
                return ref, True
            self._check_lease()
        return await notifier.send(item.notification), False

    def _check_lease(self) -> None:
        if not self._store.lease_holds():
            raise LeaseLost(
                f"outbox worker {self._store.worker}: lease not renewed for {self._lease_term:g}s; sending nothing more"
            )

    def _sent(self, item: OutboxItem, ref: str, adopted: bool, defer: bool) -> None:
        """`defer`: the mark goes with the next wave's (a crash before it is reconciled by lookup)."""
        channel = item.notification.channel
        if defer and not adopted:
            self._answered[channel].append((item.id, ref, self._clock()))
        elif not adopted:
            self._store.mark_sent(item.id, ref, self._clock())
        counts = self.counts[channel]
        counts.sent += 1
        counts.adopted += adopted
        if channel == "sms":
            encoding: Encoding = getattr(self._notifiers.get("sms"), "encoding", "gsm7")  # what its gateway bills
            counts.segments += billed_segments(item.notification.body, encoding)

    def _failed(self, item: OutboxItem, error: DeliveryError, policy: ChannelPolicy, reconciling: bool) -> None:
        """A retryable failure gives the item a backoff clock of its own while its channel works;
        on a channel that fails `down_after` in a row, the channel's probe decides instead."""
        attempts = item.attempts + 1
        if not error.retryable:
            self._dead(item, attempts, error.reason, error.kind)
            return
        channel = item.notification.channel
        counts = self.counts[channel]
        counts.failed_by[error.kind] += 1
        if channel not in self._streaks:
            self._streaks[channel] = Streak(self._clock(), time.monotonic(), counts.failed - 1)
        streak = self._streaks[channel]
        if channel not in self._holds and counts.failed - streak.failed_before >= policy.down_after:
            self._down(channel, masked(error.reason, item.notification), streak)
        if channel in self._holds:
            delay = 0.0
            if error.retry_after is not None:
                wait = asyncio.get_running_loop().time() + min(error.retry_after, policy.max_backoff)
                self._probe_at[channel] = max(self._probe_at[channel], wait)
        elif error.retry_after is not None:
            delay = error.retry_after
        else:
            delay = backoff(attempts, policy.base_backoff, policy.max_backoff, self._rng)
        if reconciling:
            delay = max(delay, policy.settle)
        self._store.mark_retry(item.id, error.reason, self._clock() + delay)

    def _probe_every(self, channel: str) -> float:
        policy = self._policies[channel]
        return policy.outage_probe if self._holds[channel].cause == "unavailable" else policy.probe_every

    def _down(self, channel: str, reason: str, streak: Streak) -> None:
        """Hold a channel whose peer keeps failing: one probe at a time instead of a clock per item."""
        policy = self._policies[channel]
        self._holds[channel] = Hold("unavailable", reason, streak.since, streak.started, streak.failed_before)
        self._probe_at[channel] = asyncio.get_running_loop().time() + policy.outage_probe
        failed = self.counts[channel].failed - streak.failed_before
        log.error(
            "channel %s down: %d attempts in a row failed (the last: %s); %d notices wait, one is tried every %gs until one goes through",
            channel,
            failed,
            reason,
            self._store.depth(channel),
            policy.outage_probe,
        )

    def _hold(self, item: OutboxItem, error: ChannelError) -> None:
        """Put the item back, due at once for when the channel is released; hold the channel."""
        n = item.notification
        reason = masked(error.reason, n)
        self._store.mark_retry(item.id, reason, self._clock())
        self.counts[n.channel].held += 1
        if n.channel in self._holds and self._holds[n.channel].cause != "unavailable":
            return
        hold = Hold(error.cause, reason, self._clock(), time.monotonic(), self.counts[n.channel].held - 1)
        self._holds[n.channel] = hold
        policy = self._policies[n.channel]
        self._probe_at[n.channel] = asyncio.get_running_loop().time() + policy.probe_every
        waiting = self._store.depth(n.channel)
        log.error(
            "channel %s held: its %s %s refused (%s); %d notices wait, one is tried every %gs until it goes through or a reload",
            n.channel,
            n.channel,
            "credentials were" if error.cause == "credentials" else "settings were",
            reason,
            waiting,
            policy.probe_every,
        )
        self._announce(n.channel, hold, released=False, waiting=waiting)

    def _release(self, channel: str) -> None:
        """The peer took an item: the channel works. What waited for it is due now, or after
        `settle` for an item whose earlier answer may have been lost."""
        self._streaks.pop(channel, None)
        hold = self._holds.pop(channel, None)
        if hold is None:
            return
        self._mark_answered(channel)  # the probe that went through is no longer waiting
        self._probe_at.pop(channel, None)
        now = self._clock()
        self._age_floor[channel] = now
        policy = self._policies[channel]
        self._store.retry_by(channel, now + (policy.settle if reconciles(type(self._notifiers[channel])) else 0.0))
        waiting = self._store.depth(channel)
        if hold.cause == "unavailable":
            log.warning(
                "channel %s works again after %.0fs down: %d attempts failed, %d notices go out now at %g/s",
                channel,
                time.monotonic() - hold.started,
                self.counts[channel].failed - hold.counted_before,
                waiting,
                policy.rate,
            )
            return
        log.warning(
            "channel %s released after %.0fs held: %d attempts were refused, %d notices go out now",
            channel,
            time.monotonic() - hold.started,
            self.counts[channel].held - hold.counted_before,
            waiting,
        )
        self._announce(channel, hold, released=True, waiting=waiting)

    def _announce(self, channel: str, hold: Hold, *, released: bool, waiting: int) -> None:
        """Queue the NOC's alert on the other channels: once per hold and once per release."""
        if self._on_hold is None:
            return
        change = ChannelHold(channel, hold.cause, hold.reason, hold.since, released, waiting)
        planned = [(n, nb) for n, nb in self._on_hold(change) if n.channel != channel and n.channel in self._notifiers]
        if planned and self._store.commit_step(None, [], planned, self._clock(), self.dead_on_arrival):
            self.wake()

    def _dead(self, item: OutboxItem, attempts: int, reason: str, kind: FailureReason) -> None:
        self._store.mark_dead(item.id, reason)
        self.counts[item.notification.channel].dead_by[kind] += 1
        n = item.notification
        log.warning(
            "dead letter: %s item %d %s after %d attempts: %s",
            n.channel,
            item.id,
            masked(n.key, n),
            attempts,
            masked(reason, n),
        )


def masked(text: str, item: Notification) -> str:
    """`text` with the item's customer address masked: logs are kept longer and read more widely
    than the state file, and a gateway's error often quotes the number (Twilio 21211)."""
    if not item.recipient or item.channel not in ("sms", "email"):
        return text
    if item.channel == "sms":
        return text.replace(item.recipient, mask_phone(item.recipient))
    local, at, domain = item.recipient.rpartition("@")
    return text.replace(item.recipient, f"{local[:1]}***@{domain}" if at else "***")
