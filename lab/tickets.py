"""A small helpdesk behind a JSON webhook (aiohttp), for tests and the demo.

`POST /tickets` takes `{"action", "tracking", "subject", "body", "key"}` as sent by
notifiers.webhook: `create` opens a ticket (or returns the one the tracking number already has),
`comment`/`resolve`/`reopen` act on the ticket of that tracking number (404 if there is none);
each sets the ticket's subject to the one it carries (monitord's says the current count).
A repeated `key` (or Idempotency-Key header) is answered with the same id and changes nothing.
Every ticket keeps its ordered history. Faults: `fail_next(status, count, retry_after)`, and
`down()`/`up()` to stop and resume listening on the same port.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Entry:
    action: str
    subject: str
    body: str
    key: str


@dataclass(slots=True)
class Ticket:
    id: str
    tracking: str
    subject: str
    status: str = "open"
    history: list[Entry] = field(default_factory=list)


@dataclass(slots=True)
class _Fault:
    status: int
    remaining: int
    retry_after: str | None


class TicketDesk:
    def __init__(self, *, token: str | None = None, host: str = "127.0.0.1") -> None:
        self.host, self.port, self.token = host, 0, token
        self.tickets: dict[str, Ticket] = {}  # by tracking number
        self.requests: list[dict[str, Any]] = []  # every body received, faults and rejects included
        self._keys: dict[str, str] = {}  # notification key -> ticket id
        self._faults: list[_Fault] = []
        app = web.Application()
        app.router.add_post("/tickets", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        self._site: web.TCPSite | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/tickets"

    async def start(self) -> TicketDesk:
        await self._runner.setup()
        await self.up()
        return self

    async def up(self) -> None:
        self._site = web.TCPSite(self._runner, self.host, self.port)
        await self._site.start()
        self.port = self._runner.addresses[0][1]

    async def down(self) -> None:
        """Stop listening (clients get connection refused); tickets and the port are kept."""
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def stop(self) -> None:
        await self._runner.cleanup()
        self._site = None

    async def __aenter__(self) -> TicketDesk:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def fail_next(self, status: int, count: int = 1, retry_after: str | None = None) -> None:
        """Answer `status` to the next `count` requests (with Retry-After if given)."""
        self._faults.append(_Fault(status, count, retry_after))

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
        except ValueError:
            data = None
        self.requests.append({"body": data, "authorization": request.headers.get("Authorization")})
        for fault in self._faults:
            if fault.remaining > 0:
                fault.remaining -= 1
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                return web.json_response({"error": "lab fault"}, status=fault.status, headers=headers)
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "unauthorized"}, status=401)
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("action", "tracking", "key")):
            return web.json_response({"error": "need action, tracking and key"}, status=400)
        key = request.headers.get("Idempotency-Key") or data["key"]
        if key in self._keys:
            return web.json_response({"id": self._keys[key], "duplicate": True})
        ticket = self.tickets.get(data["tracking"])
        action = data["action"]
        if action not in ("create", "comment", "resolve", "reopen"):
            return web.json_response({"error": f"unknown action {action!r}"}, status=400)
        if action == "create" and ticket is not None:
            return web.json_response({"id": ticket.id, "existing": True})
        if action == "create":
            ticket = Ticket(f"T{len(self.tickets) + 1}", data["tracking"], str(data.get("subject", "")))
            self.tickets[ticket.tracking] = ticket
        elif ticket is None:
            return web.json_response({"error": f"no ticket for {data['tracking']}"}, status=404)
        ticket.status = {"resolve": "resolved", "reopen": "open"}.get(action, ticket.status)
        ticket.subject = str(data.get("subject") or ticket.subject)
        ticket.history.append(Entry(action, str(data.get("subject", "")), str(data.get("body", "")), key))
        self._keys[key] = ticket.id
        return web.json_response({"id": ticket.id}, status=201 if action == "create" else 200)
