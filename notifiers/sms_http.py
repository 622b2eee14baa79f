"""SMS through a generic HTTP gateway: one POST per message, form-encoded or JSON.

Many Turkish operators' and aggregators' gateways work this way, each with its own field names;
they are configured (`fields`), and constant fields the gateway wants (a header name, an
encoding switch such as `encoding: TR` for the Turkish shift tables) go in `params`. The gateway
encodes the text; `encoding` says how it does (notices/segments.py), so the outbox counts the
segments it bills.

Credentials come from a secret (env or file) and go in an Authorization header (`auth: basic`
or `bearer`) or, for gateways that want them in the body, in the configured fields
(`auth: fields`); they are masked in every reason a peer's answer is quoted in.

The answer's status is read by `notifiers.base.http_failure`; a 2xx answer is sent, and its
reference is the JSON answer's `reference` key when there is one, else the answer's text.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

from monitord.model import Notification, Secret
from notices.segments import Encoding
from notifiers.base import DeliveryError, hide, http_failure, retry_after

DEFAULT_FIELDS: Mapping[str, str] = {"to": "to", "from": "from", "text": "text", "username": "username", "password": "password"}
REFERENCE_MAX = 200


@dataclass(frozen=True, slots=True)
class GatewayAuth:
    kind: Literal["none", "basic", "bearer", "fields"] = "none"
    username: str | None = None
    secret: Secret | None = None  # the password (basic, fields) or the token (bearer)


@dataclass(frozen=True, slots=True)
class Gateway:
    url: str
    from_: str
    encoding: Encoding = "gsm7-turkish"
    body: Literal["form", "json"] = "form"
    fields: Mapping[str, str] = field(default_factory=lambda: DEFAULT_FIELDS)
    params: Mapping[str, str] = field(default_factory=dict)
    reference: str | None = "id"
    auth: GatewayAuth = GatewayAuth()


class HttpSms:
    """The "sms" channel through `gateway`. Returns the gateway's message reference."""

    channel = "sms"

    def __init__(self, gateway: Gateway, timeout: float = 10.0) -> None:
        self.gateway, self.timeout = gateway, timeout
        self.encoding = gateway.encoding
        self._fields = {**DEFAULT_FIELDS, **gateway.fields}
        self._session: aiohttp.ClientSession | None = None

    def payload(self, item: Notification) -> dict[str, str]:
        g, names = self.gateway, self._fields
        data = {**g.params, names["to"]: item.recipient, names["from"]: g.from_, names["text"]: item.body}
        if g.auth.kind == "fields" and g.auth.secret is not None:
            data[names["username"]] = g.auth.username or ""
            data[names["password"]] = g.auth.secret.reveal()
        return data

    async def send(self, item: Notification) -> str:
        g = self.gateway
        headers = {"Idempotency-Key": item.key}
        basic = None
        if g.auth.kind == "bearer" and g.auth.secret is not None:
            headers["Authorization"] = f"Bearer {g.auth.secret.reveal()}"
        elif g.auth.kind == "basic" and g.auth.secret is not None:
            basic = aiohttp.BasicAuth(g.auth.username or "", g.auth.secret.reveal())
        body: dict[str, Any] = {"json": self.payload(item)} if g.body == "json" else {"data": self.payload(item)}
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        try:
            async with self._session.post(g.url, headers=headers, auth=basic, allow_redirects=False, **body) as resp:
                text = await resp.text()
                if resp.status >= 300:
                    reason = f"sms gateway answered HTTP {resp.status}: {self._hide(text)[:200]!r}"
                    if resp.status in (401, 403, 407):
                        reason += " (check the gateway credentials)"
                    raise http_failure(resp.status, reason, retry_after(resp.headers.get("Retry-After"), time.time()))
        except TimeoutError:
            raise DeliveryError(f"sms gateway: no answer within {self.timeout:g}s", retryable=True, kind="timeout") from None
        except aiohttp.ClientError as e:
            raise DeliveryError(
                f"cannot reach the sms gateway: {type(e).__name__}: {self._hide(str(e))}", retryable=True, kind="unreachable"
            ) from None
        return self._reference(text, resp.status)

    def _reference(self, text: str, status: int) -> str:
        """The gateway's id for the message: a JSON answer's `reference` key, else its text."""
        if self.gateway.reference is not None:
            try:
                found = json.loads(text)[self.gateway.reference]
            except (ValueError, KeyError, TypeError, IndexError):
                found = None
            if found is not None:
                return self._hide(str(found))[:REFERENCE_MAX]
        return self._hide(text.strip())[:REFERENCE_MAX] or f"HTTP {status}"

    def _hide(self, text: str) -> str:
        return hide(text, self.gateway.auth.secret)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
