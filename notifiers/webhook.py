"""Tickets through a generic JSON webhook: one POST per ticket action, the ticket id comes back.

The default body is `{"action", "tracking", "subject", "body", "key"}`; every action's
`subject` is the ticket's subject with the incident's current subscriber count, for the helpdesk
to keep. A configured
`body_template` is JSON with `$name` placeholders (action, tracking, subject, body, key); each
is replaced by the JSON-encoded value, so the result is valid JSON whatever the text contains.
It is checked when the notifier is built, so a bad template fails at start, not at 3 a.m.

HTTP statuses are read by `notifiers.base.http_failure` (5xx and 429 retryable, honouring
Retry-After; 401/403 hold the channel; other 4xx permanent), except 404 on comment/resolve/reopen:
the ticket may not exist yet because its create is still queued.
"""

from __future__ import annotations

import json
import string
import time
from typing import Any

import aiohttp

from monitord.model import Notification, Secret
from notifiers.base import DeliveryError, hide, http_failure, retry_after

FIELDS = ("action", "tracking", "subject", "body", "key")


class WebhookTickets:
    channel = "ticket"

    def __init__(self, url: str, token: Secret | None = None, body_template: str | None = None, timeout: float = 10.0) -> None:
        self.url, self.token, self.timeout = url, token, timeout
        self.template = string.Template(body_template) if body_template is not None else None
        if self.template is not None:
            self._body({f: f"<{f}>" for f in FIELDS})
        self._session: aiohttp.ClientSession | None = None

    def _body(self, values: dict[str, str]) -> Any:
        if self.template is None:
            return values
        try:
            return json.loads(self.template.substitute({k: json.dumps(v, ensure_ascii=False) for k, v in values.items()}))
        except KeyError as e:
            raise ValueError(f"webhook body_template: unknown placeholder ${e.args[0]} (known: {', '.join(FIELDS)})") from None
        except ValueError as e:
            raise ValueError(f"webhook body_template: not valid JSON once filled in: {e}") from None

    async def send(self, item: Notification) -> str:
        values = {"action": item.action, "tracking": item.recipient, "subject": item.subject, "body": item.body, "key": item.key}
        headers = {"Idempotency-Key": item.key}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token.reveal()}"
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        try:
            async with self._session.post(self.url, json=self._body(values), headers=headers, allow_redirects=False) as resp:
                text = await resp.text()
                if resp.status >= 300:
                    raise self._status_error(item, resp.status, resp.headers.get("Retry-After"), text)
                try:
                    ticket = json.loads(text)["id"]
                except (ValueError, KeyError, TypeError):
                    raise DeliveryError(
                        f"helpdesk answered {resp.status} without a ticket id: {hide(text, self.token)[:200]!r}", retryable=False
                    ) from None
        except (TimeoutError, aiohttp.ClientError) as e:
            raise DeliveryError(f"cannot reach the helpdesk webhook: {type(e).__name__}: {e}", retryable=True) from None
        return str(ticket)

    def _status_error(self, item: Notification, status: int, after: str | None, text: str) -> DeliveryError:
        reason = f"helpdesk answered HTTP {status}: {hide(text, self.token)[:200]!r}"
        if status == 404 and item.action != "create":
            return DeliveryError(f"ticket {item.recipient} not found (yet): {reason}", retryable=True)
        if status in (401, 403):
            reason += " (check the webhook token)"
        return http_failure(status, reason, retry_after(after, time.time()))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
