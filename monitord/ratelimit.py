"""One token bucket for every rate limit: SMS pacing, live diagnoses, trap floods."""

from __future__ import annotations


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up while idle. `reserve` paces (take one
    now, wait if it was lent); `take` drops what comes too fast (take one only if there is one)."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._at = now

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def reserve(self, now: float) -> float:
        """Take one token; return how many seconds to wait before using it."""
        self._refill(now)
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def available(self, now: float) -> bool:
        """Whether a token is there, taking none."""
        self._refill(now)
        return self._tokens >= 1.0

    def take(self, now: float) -> bool:
        """Take one token if one is there."""
        self._refill(now)
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
