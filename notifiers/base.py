"""The one interface every channel implements, and the errors that say whether to retry.

Retries live in one place (the outbox worker); a notifier only says what happened
(Alertmanager's `Notify(ctx, alerts) (retryable bool, err)`).
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Protocol

from monitord.model import Notification, Secret


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


def hide(text: str, *secrets: Secret | None) -> str:
    """A peer's words with this adapter's own credentials masked: a peer may echo what it was sent."""
    for secret in secrets:
        if secret is not None and secret.reveal():
            text = text.replace(secret.reveal(), "<redacted>")
    return text


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from an HTTP Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - (time.time() if now is None else now))
    except (TypeError, ValueError):
        return None
