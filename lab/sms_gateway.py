"""A generic HTTP SMS gateway (aiohttp on loopback), the kind Turkish operators offer, for tests.

`POST /sms` takes a form or JSON body with the gateway's own field names (`usercode`,
`password`, `gsmno`, `msgheader`, `message`, `encoding`, like several Turkish gateways); it
checks the credentials (in the body, or HTTP Basic), counts the segments it would bill with the
Turkish shift tables when `encoding` is `TR` (else GSM-7 or UCS-2, notices/segments.py), and
answers `{"id": ..., "segments": n}`. Faults: `fail_next(status, count, retry_after)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import BasicAuth, web

from notices.segments import segments


@dataclass(frozen=True, slots=True)
class Received:
    content_type: str
    fields: dict[str, str]
    authorization: str | None
    segments: int


class SmsGateway:
    def __init__(self, *, username: str, password: str, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, 0
        self.username, self.password = username, password
        self.received: list[Received] = []  # every request, faults and rejects included
        self.messages: list[Received] = []  # accepted ones
        self._faults: list[list[Any]] = []  # [status, remaining, retry_after]
        app = web.Application()
        app.router.add_post("/sms", self._handle)
        self._runner = web.AppRunner(app, access_log=None)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/sms"

    async def __aenter__(self) -> SmsGateway:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()

    def fail_next(self, status: int, count: int = 1, retry_after: str | None = None) -> None:
        self._faults.append([status, count, retry_after])

    def _authorized(self, fields: dict[str, str], header: str | None) -> bool:
        if "usercode" in fields:
            return (fields.get("usercode"), fields.get("password")) == (self.username, self.password)
        try:
            basic = BasicAuth.decode(header or "")
        except ValueError:
            return False
        return (basic.login, basic.password) == (self.username, self.password)

    async def _handle(self, request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            raw = await request.json()
            fields = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        else:
            fields = {k: str(v) for k, v in (await request.post()).items()}
        text = fields.get("message", "")
        counted = segments(text, "gsm7-turkish" if fields.get("encoding") == "TR" else "gsm7")
        got = Received(request.content_type, fields, request.headers.get("Authorization"), counted)
        self.received.append(got)
        for fault in self._faults:
            if fault[1] > 0:
                fault[1] -= 1
                headers = {"Retry-After": fault[2]} if fault[2] else {}
                return web.json_response({"error": "lab fault"}, status=fault[0], headers=headers)
        if not self._authorized(fields, got.authorization):
            return web.json_response({"error": f"bad credentials {fields.get('password', '')}"}, status=401)
        if not fields.get("gsmno", "").startswith("+90") or not text:
            return web.json_response({"error": "need gsmno (+90...) and message"}, status=400)
        self.messages.append(got)
        return web.json_response({"id": f"GW{len(self.messages):06d}", "segments": counted})
