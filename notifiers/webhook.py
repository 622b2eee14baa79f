"""Tickets through a generic JSON webhook: one POST per ticket action, the ticket id comes back.

The default body is `{"action", "tracking", "subject", "body", "key"}`; every action's
`subject` is the ticket's subject with the incident's current subscriber count, for the helpdesk
to keep. A configured `body_template` is JSON with `{name}` placeholders (action, tracking,
subject, body, key), the syntax of every message text (notices/templates.py); each is replaced
by the JSON-encoded value, so the result is valid JSON whatever the text contains. It is checked
by `monitord check` and when the notifier is built, so a bad template fails at start, not at
3 a.m.; the `$name` placeholders of earlier versions are refused with the new spelling.

HTTP statuses are read by `notifiers.base.http_failure` (5xx and 429 retryable, honouring
Retry-After; 401/403 hold the channel; other 4xx permanent), except 404 on comment/resolve/reopen:
the ticket may not exist yet because its create is still queued.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import aiohttp

from monitord.model import Notification, Secret
from notices.templates import fill, placeholders
from notifiers.base import DeliveryError, connection_failure, hide, http_failure, retry_after

FIELDS = ("action", "tracking", "subject", "body", "key")
_OLD_PLACEHOLDER = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


def body_template_problem(template: str) -> str | None:
    """Why `template` cannot be used as a webhook body, or None when it can."""
    old = [m[1] for m in _OLD_PLACEHOLDER.finditer(template) if m[1] in FIELDS]
    if old:
        return f"webhook body_template: write {{{old[0]}}} instead of ${old[0]} (placeholders are {{name}} everywhere)"
    unknown = [p for p in placeholders(template) if p not in FIELDS]
    if unknown:
        return f"webhook body_template: unknown placeholder {{{unknown[0]}}} (known: {', '.join(FIELDS)})"
    try:
        json.loads(fill("body_template", template, {f: f"<{f}>" for f in FIELDS}, _json))
    except ValueError as e:
        return f"webhook body_template: not valid JSON once filled in: {e}"
    return None


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


class WebhookTickets:
    channel = "ticket"

    def __init__(self, url: str, token: Secret | None = None, body_template: str | None = None, timeout: float = 10.0) -> None:
        self.url, self.token, self.timeout = url, token, timeout
        problem = None if body_template is None else body_template_problem(body_template)
        if problem is not None:
            raise ValueError(problem)
        self.template = body_template
        self._session: aiohttp.ClientSession | None = None

    def _body(self, values: dict[str, str]) -> Any:
        if self.template is None:
            return values
        return json.loads(fill("body_template", self.template, values, _json))  # checked when built

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
                        f"helpdesk answered {resp.status} without a ticket id: {hide(text, self.token)[:200]!r}",
                        retryable=False,
                        kind="bad_answer",
                    ) from None
        except (TimeoutError, aiohttp.ClientError) as e:
            raise DeliveryError(
                f"cannot reach the helpdesk webhook: {type(e).__name__}: {e}", retryable=True, kind=connection_failure(e)
            ) from None
        return str(ticket)

    def _status_error(self, item: Notification, status: int, after: str | None, text: str) -> DeliveryError:
        reason = f"helpdesk answered HTTP {status}: {hide(text, self.token)[:200]!r}"
        if status == 404 and item.action != "create":
            return DeliveryError(f"ticket {item.recipient} not found (yet): {reason}", retryable=True, kind="not_ready")
        if status in (401, 403):
            reason += " (check the webhook token)"
        return http_failure(status, reason, retry_after(after, time.time()))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
