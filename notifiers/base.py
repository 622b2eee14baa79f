"""The one interface every channel implements, and the errors that say whether to retry.

Retries live in one place (the outbox worker); a notifier only says what happened
(Alertmanager's `Notify(ctx, alerts) (retryable bool, err)`).
"""

from __future__ import annotations

from typing import Protocol

from monitord.model import Notification


class DeliveryError(Exception):
    """Delivery failed. `retryable` says whether the same item may succeed later."""

    def __init__(self, reason: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after  # seconds, from a Retry-After header or an SMTP 4xx hint


class Notifier(Protocol):
    channel: str  # "sms", "email" or "ticket"

    async def send(self, item: Notification) -> str:
        """Deliver `item`; return the peer's reference (message SID, ticket id, SMTP queue id).

        Raise DeliveryError on failure. Never put a secret in the reason.
        """
        ...

    async def close(self) -> None: ...
