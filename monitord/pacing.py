"""When a channel's sends may go: in waves at the channel's rate, and retries after a backoff.

At 500 SMS/s a timer and a claim per message cost the event loop more than the sends do. The
outbox instead wakes at most once a `tick`, starts every send the bucket holds tokens for (up
to its free slots) and claims them in one transaction. Tokens are only ever taken when they are
there, never lent, so over any stretch of T seconds a channel starts at most `burst + rate * T`
sends: the configured rate stays a ceiling.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

TICK = 0.02  # seconds between waves at high rates: 10 SMS a wave at 500/s


@dataclass(slots=True)
class Waves:
    """A token bucket that releases whole waves. Build with `Waves.start`; pure (times are given)."""

    rate: float  # sends per second
    burst: float  # tokens saved up at most while idle
    tick: float  # the shortest time between two waves
    tokens: float
    at: float  # when `tokens` was counted
    next_wave: float  # the earliest time the next wave may start

    @classmethod
    def start(cls, rate: float, catch_up: float, now: float, tick: float = TICK) -> Waves:
        """`catch_up`: seconds of sending lost to a stall that may be made up at once.

        Slow channels wave once per token (tick 1/rate). The burst holds at least one wave and
        one spare token, so the fraction a wave leaves behind is never capped away.
        """
        tick = max(tick, 1.0 / rate)
        burst = max(rate * catch_up, rate * tick + 1.0)
        return cls(rate, burst, tick, burst, now, now)

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.at) * self.rate)
        self.at = max(self.at, now)

    def wait(self, now: float) -> float:
        """Seconds until the next wave may start (0: now)."""
        self._refill(now)
        short = max(0.0, 1.0 - self.tokens) / self.rate
        return max(self.next_wave - now, short, 0.0)

    def allowance(self, now: float, free: int) -> int:
        """How many sends the wave starting now may hold, given `free` slots."""
        self._refill(now)
        return max(0, min(free, math.floor(self.tokens + 1e-9)))

    def take(self, started: int, now: float) -> None:
        """`started` sends went out in the wave at `now`; the next wave waits a tick."""
        self._refill(now)
        self.tokens -= started
        if started:
            self.next_wave = now + self.tick


@dataclass(frozen=True, slots=True)
class Grant:
    """What a shared bucket (a row the workers of one channel take tokens from) gives a wave."""

    granted: int
    tokens: float  # left in the bucket
    wait: float  # when it gave fewer than asked: seconds until it holds a token again (else 0)


def grant(tokens: float, at: float, now: float, want: int, rate: float, burst: float) -> Grant:
    """Take up to `want` whole tokens from a bucket that held `tokens` at `at`, refilled at
    `rate` up to `burst`. Pure: the same rule as `Waves`, for a bucket kept in the store. A clock
    that reads earlier than `at` adds nothing: tokens are never lent."""
    level = min(burst, tokens + max(0.0, now - at) * rate)
    granted = max(0, min(want, math.floor(level + 1e-9)))
    left = level - granted
    return Grant(granted, left, max(0.0, 1.0 - left) / rate if granted < want else 0.0)


def backoff(attempts: int, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2^(attempts-1))]."""
    return rng.uniform(0.0, min(cap, base * 2.0 ** min(max(attempts - 1, 0), 64)))
