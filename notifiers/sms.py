"""SMS through Twilio's Messages API, with the real `twilio` client on the daemon's own loop.

The adapter keeps Twilio's quirks here: its exceptions carry no headers, so a small http client
subclass records the last response's headers per task (a ContextVar) to read `Retry-After`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from monitord.model import Notification, Secret
from notices.segments import DEFAULT_ALPHABET, Encoding, segments
from notifiers.base import DeliveryError, hide, http_failure, retry_after

GSM7_BASIC = DEFAULT_ALPHABET


def sms_segments(text: str) -> int:
    """How many segments Twilio bills for `text`: GSM-7 160/153 septets, else UCS-2 70/67 units
    (Twilio has no Turkish shift tables; notices/segments.py counts the others)."""
    return segments(text, "gsm7")


_last_headers: ContextVar[Mapping[str, str]] = ContextVar("twilio_last_headers", default=MappingProxyType({}))


class _HeaderKeepingClient(AsyncTwilioHttpClient):
    """Remembers the headers of the last response seen by the current task."""

    async def request(self, *args: Any, **kwargs: Any) -> Response:
        response = await super().request(*args, **kwargs)
        _last_headers.set(response.headers or {})
        return response


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
        self._http: _HeaderKeepingClient | None = None
        self._client: Client | None = None

    def _twilio(self) -> Client:
        """Built lazily: the aiohttp session must be created inside the running loop.

        TWILIO_EDGE / TWILIO_REGION from the environment are ignored: they would rewrite
        `base_url`'s host name.
        """
        if self._client is None:
            self._http = _HeaderKeepingClient(timeout=self.timeout)
            self._client = Client(
                self.account_sid,
                self._token.reveal(),
                http_client=self._http,
                environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""},
            )
            self._client.api.base_url = self.base_url
        return self._client

    async def send(self, item: Notification) -> str:
        message = await self._call(self._twilio().messages.create_async(to=item.recipient, from_=self.from_, body=item.body))
        return str(message.sid)

    async def lookup(self, item: Notification, since: float) -> tuple[str, ...]:
        """SIDs of messages Twilio already holds with this text to this number, created since `since`.

        Twilio lists newest first, so the walk stops at the first older message.
        """
        cutoff = datetime.fromtimestamp(math.floor(since), UTC)

        async def walk() -> tuple[str, ...]:
            found: list[str] = []
            stream = await self._twilio().messages.stream_async(to=item.recipient, from_=self.from_, page_size=200)
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
            raise DeliveryError(f"twilio: no answer within {self.timeout:g}s", retryable=True) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise DeliveryError(hide(f"twilio: {type(exc).__name__}: {exc}", self._token), retryable=True) from None
        except TwilioException as exc:
            raise DeliveryError(f"twilio: {type(exc).__name__}", retryable=True) from None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        self._http = self._client = None
