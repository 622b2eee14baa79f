"""SMS through Twilio's Messages API, with the real `twilio` client on the daemon's own loop.

The adapter keeps Twilio's quirks here: its exceptions carry no headers, so the http client
records the last response's headers per task (a ContextVar) to read `Retry-After`.

The http client is our own implementation of twilio's documented `AsyncHttpClient` interface
over one kept-alive aiohttp session. twilio's `AsyncTwilioHttpClient` costs a fifth more CPU per
message at outage rates (a BasicAuth object, an aiohttp FormData and a dozen INFO log calls per
request; docs/benchmarks.md), and its request log would print lookups' query strings, the
customer's number among them.

twilio's client imports its API domain (a hundred resource modules, about 100 ms of CPU) when first
used: that happens in a worker thread, not on the loop, which would otherwise stop polling just
as the first outage's notices go out (docs/benchmarks.md, "Twelfth pass").
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import logging
import math
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any
from urllib.parse import urlencode

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from monitord.model import Notification, Secret
from notices.segments import DEFAULT_ALPHABET, Encoding, segments
from notifiers.base import DeliveryError, hide, http_failure, retry_after

GSM7_BASIC = DEFAULT_ALPHABET
API_DOMAIN = "twilio.rest.api.v2010.account"  # what `Client.api.account.messages` imports on first use


def sms_segments(text: str) -> int:
    """How many segments Twilio bills for `text`: GSM-7 160/153 septets, else UCS-2 70/67 units
    (Twilio has no Turkish shift tables; notices/segments.py counts the others)."""
    return segments(text, "gsm7")


_last_headers: ContextVar[Mapping[str, str]] = ContextVar("twilio_last_headers", default=MappingProxyType({}))


class _SessionClient(AsyncHttpClient):
    """One aiohttp session, kept alive across sends; remembers the headers of the last response
    seen by the current task."""

    def __init__(self, timeout: float) -> None:
        super().__init__(logging.getLogger(__name__), True, timeout)
        self._session: aiohttp.ClientSession | None = None
        self._authorization: tuple[tuple[str, str], str] | None = None  # (login, password), header

    def _basic(self, auth: tuple[str, str]) -> str:
        if self._authorization is None or self._authorization[0] != auth:
            self._authorization = auth, "Basic " + base64.b64encode(":".join(auth).encode()).decode("ascii")
        return self._authorization[1]

    async def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, object] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        sent = dict(headers or {})
        if auth is not None:
            sent["Authorization"] = self._basic(auth)
        body = None
        if data:
            body = urlencode(data, doseq=True).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        async with self._session.request(
            method.upper(), url, params=params, data=body, headers=sent, allow_redirects=allow_redirects
        ) as response:
            text = await response.text()
            _last_headers.set(response.headers)
            return Response(response.status, text, response.headers)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _rest_error(exc: TwilioRestException, token: Secret) -> DeliveryError:
    reason = hide(f"twilio HTTP {exc.status} code {exc.code}: {exc.msg}", token)
    if exc.status in (401, 403):
        reason += " (check the account SID and auth token)"
    return http_failure(exc.status, reason, retry_after(_last_headers.get().get("Retry-After")))


class TwilioSms:
    """The "sms" channel. Returns Twilio's message SID as the peer reference."""

    channel = "sms"
    encoding: Encoding = "gsm7"  # Twilio has no Turkish shift tables: a Turkish letter means UCS-2

    def __init__(self, account_sid: str, auth_token: Secret, from_: str, base_url: str, timeout: float = 10.0) -> None:
        self.account_sid = account_sid
        self.from_ = from_
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._token = auth_token
        self._http: _SessionClient | None = None
        self._client: Client | None = None

    async def _twilio(self) -> Client:
        """Built lazily: the aiohttp session must be created inside the running loop.

        TWILIO_EDGE / TWILIO_REGION from the environment are ignored: they would rewrite
        `base_url`'s host name.
        """
        if self._client is None:
            await asyncio.to_thread(importlib.import_module, API_DOMAIN)
        if self._client is None:  # and not built by another send meanwhile
            self._http = _SessionClient(self.timeout)
            self._client = Client(
                self.account_sid,
                self._token.reveal(),
                http_client=self._http,
                environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""},
            )
            self._client.api.base_url = self.base_url
        return self._client

    async def send(self, item: Notification) -> str:
        client = await self._twilio()
        message = await self._call(client.messages.create_async(to=item.recipient, from_=self.from_, body=item.body))
        return str(message.sid)

    async def lookup(self, item: Notification, since: float) -> tuple[str, ...]:
        """SIDs of messages Twilio already holds with this text to this number, created since `since`.

        Twilio lists newest first, so the walk stops at the first older message.
        """
        cutoff = datetime.fromtimestamp(math.floor(since), UTC)
        client = await self._twilio()

        async def walk() -> tuple[str, ...]:
            found: list[str] = []
            stream = await client.messages.stream_async(to=item.recipient, from_=self.from_, page_size=200)
            async for message in stream:
                if message.date_created is not None and message.date_created < cutoff:
                    break
                if message.body == item.body:
                    found.append(str(message.sid))
            return tuple(reversed(found))

        return await self._call(walk())

    async def _call(self, operation: Any) -> Any:
        _last_headers.set({})
        try:
            async with asyncio.timeout(self.timeout):
                return await operation
        except TwilioRestException as exc:
            raise _rest_error(exc, self._token) from None
        except TimeoutError:
            raise DeliveryError(f"twilio: no answer within {self.timeout:g}s", retryable=True, kind="timeout") from None
        except (aiohttp.ClientError, OSError) as exc:
            reason = hide(f"twilio: {type(exc).__name__}: {exc}", self._token)
            raise DeliveryError(reason, retryable=True, kind="unreachable") from None
        except TwilioException as exc:
            raise DeliveryError(f"twilio: {type(exc).__name__}", retryable=True, kind="bad_answer") from None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        self._http = self._client = None
