"""The one interface every channel implements, and the errors that say whether to retry.

Retries live in one place (the outbox worker); a notifier only says what happened
(Alertmanager's `Notify(ctx, alerts) (retryable bool, err)`), in one of three classes:

* the item may succeed later (429, 5xx, timeouts): `DeliveryError(retryable=True)`;
* the item itself is refused (an invalid number, 550 for a mailbox): `DeliveryError(retryable=False)`;
* the channel itself is refused (401/403, SMTP AUTH, a TLS setting): `ChannelError`. Every item
  would fail alike until the operator fixes the config, so the outbox holds the whole channel
  instead of dead-lettering a live outage's notices one by one.

Each error also says why in a few words the metrics count (`kind`, monitord.model.FailureReason):
an adapter names the failures it recognises (a timeout, a refused connection), the rest fall
back on "other" when retryable and "rejected" when not.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Protocol

from monitord.model import ChannelCause, FailureReason, Notification, Secret


class DeliveryError(Exception):
    """Delivery failed. `retryable` says whether the same item may succeed later; `reason` is
    the peer's words for people, `kind` a bounded label for metrics."""

    def __init__(
        self, reason: str, *, retryable: bool, retry_after: float | None = None, kind: FailureReason | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after  # seconds, from a Retry-After header or an SMTP 4xx hint
        self.kind: FailureReason = kind or ("other" if retryable else "rejected")


class ChannelError(DeliveryError):
    """The peer refuses the channel, not the item: `cause` says what the operator must fix.

    Retryable, since the same item goes through once the config is right.
    """

    def __init__(self, reason: str, *, cause: ChannelCause) -> None:
        super().__init__(reason, retryable=True, kind=cause)
        self.cause = cause


def http_failure(status: int, reason: str, wait: float | None = None) -> DeliveryError:
    """What an HTTP refusal means, the same for every HTTP adapter (Alertmanager's `notify/util.go`).

    429 and 5xx are worth retrying (after `wait`, from Retry-After); 401, 403 and 407 refuse the
    channel's credentials or rights; any other status refuses this item.
    """
    if status == 429:
        return DeliveryError(reason, retryable=True, retry_after=wait, kind="rate_limited")
    if status >= 500:
        return DeliveryError(reason, retryable=True, retry_after=wait, kind="server_error")
    if status in (401, 407):
        return ChannelError(reason, cause="credentials")
    if status == 403:
        return ChannelError(reason, cause="forbidden")
    return DeliveryError(reason, retryable=False, kind="rejected")


def connection_failure(error: BaseException) -> FailureReason:
    """A timeout, or any other way the connection failed (refused, reset, no DNS name, broken off)."""
    return "timeout" if isinstance(error, TimeoutError) else "unreachable"


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
