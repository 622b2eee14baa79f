"""Incidents as alerts in the NOC's Prometheus Alertmanager: one POST /api/v2/alerts per push.

The item's body is the alert as notices/alerts.py planned it. A firing alert gets
`endsAt = now + lease` here, at the moment it is sent (the lease is 4 x the configured resend,
and the incident is pushed again every resend while it is open), so Alertmanager keeps it
firing while pushes come and resolves it by itself if monitord goes silent. A resolved alert
keeps the resolve time it was planned with.

Alertmanager answers 200 with an empty body. Its refusals go through
`notifiers.base.http_failure`: 5xx and 429 retryable, 401/403 hold the channel (a proxy or
`--web.config.file` in front of it), 400 (an alert it cannot take) is permanent for that push
and carries Alertmanager's own words. A refused connection or a timeout is retryable: the outbox
keeps every push until Alertmanager is back, in order per incident.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import aiohttp

from monitord.model import Notification, Secret
from notices.alerts import LEASES, iso
from notifiers.base import DeliveryError, connection_failure, hide, http_failure, retry_after


class AlertmanagerAlerts:
    channel = "alert"

    def __init__(
        self,
        url: str,
        *,
        resend: float = 60.0,
        timeout: float = 10.0,
        token: Secret | None = None,
        username: str | None = None,
        password: Secret | None = None,
    ) -> None:
        self.endpoint = url.rstrip("/") + "/api/v2/alerts"
        self.lease = LEASES * resend
        self.timeout = timeout
        self.token, self.username, self.password = token, username, password
        self._session: aiohttp.ClientSession | None = None

    def _credentials(self) -> Secret | None:
        """The Authorization header's value, a secret as a whole (a peer may echo it encoded)."""
        if self.token is not None:
            return Secret(f"Bearer {self.token.reveal()}", self.token.source)
        if self.username is not None and self.password is not None:
            pair = base64.b64encode(f"{self.username}:{self.password.reveal()}".encode()).decode()
            return Secret(f"Basic {pair}", self.password.source)
        return None

    def payload(self, item: Notification, now: float) -> dict[str, Any]:
        """The alert to send: the planned one, with its lease when it fires."""
        try:
            body: dict[str, Any] = json.loads(item.body)
        except ValueError:
            raise DeliveryError(f"alert {item.key} is not JSON", retryable=False, kind="template_error") from None
        if "endsAt" not in body:
            body["endsAt"] = iso(now + self.lease)
        return body

    async def send(self, item: Notification) -> str:
        alert = self.payload(item, time.time())
        credentials = self._credentials()
        headers = {} if credentials is None else {"Authorization": credentials.reveal()}
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        try:
            async with self._session.post(self.endpoint, json=[alert], headers=headers, allow_redirects=False) as resp:
                text = await resp.text()
                if resp.status >= 300:
                    reason = f"Alertmanager answered HTTP {resp.status}: {hide(text.strip(), credentials, self.token, self.password)[:300]!r}"
                    if resp.status in (401, 403):
                        reason += " (check the alertmanager token or username and password)"
                    raise http_failure(resp.status, reason, retry_after(resp.headers.get("Retry-After"), time.time()))
        except (TimeoutError, aiohttp.ClientError) as e:
            raise DeliveryError(
                f"cannot reach Alertmanager: {type(e).__name__}: {e}", retryable=True, kind=connection_failure(e)
            ) from None
        return f"{item.action} until {alert['endsAt']}"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
