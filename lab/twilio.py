"""A local stand-in for Twilio's Messages API, for tests, benchmarks and the demo.

It speaks enough of `/2010-04-01/Accounts/{sid}/Messages.json` for the real `twilio` client:
create (form-encoded, Basic auth, 201 with a Message resource), list by To/From newest first
with paging, and Twilio's error shape. Faults: `fail_next` (5xx/429 with Retry-After), `fail_for`
(an outage: every request answered with a 5xx for a while), a reply `delay` applied after the
message is accepted, and `down()`/`up()` closing the listener so that connections are refused.
Listens on 127.0.0.1 with an OS-picked port; `TwilioLabProcess` runs it in a process of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import time
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import BasicAuth, web

from notifiers.sms import sms_segments

API = "/2010-04-01"
INVALID_NUMBERS = frozenset({"+15005550001"})  # Twilio's documented magic "invalid To" number


@dataclass(frozen=True, slots=True)
class LabSms:
    """One message the lab accepted."""

    sid: str
    to: str
    from_: str
    body: str
    at: float  # wall clock seconds

    def resource(self, account_sid: str) -> dict[str, Any]:
        uri = f"{API}/Accounts/{account_sid}/Messages/{self.sid}"
        created = formatdate(self.at, usegmt=True).replace("GMT", "+0000")
        return {
            "account_sid": account_sid,
            "api_version": "2010-04-01",
            "body": self.body,
            "date_created": created,
            "date_sent": None,
            "date_updated": created,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": self.from_,
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": str(sms_segments(self.body)),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": self.to,
            "uri": f"{uri}.json",
        }


def _error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}
    return web.json_response(body, status=status, headers=headers)


class TwilioLab:
    """Start with `await lab.start()` (or `async with`), point the client at `lab.base_url`."""

    def __init__(
        self,
        account_sid: str = "AC" + "0" * 32,
        auth_token: str = "lab-auth-token",
        invalid_numbers: frozenset[str] = INVALID_NUMBERS,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.invalid_numbers = invalid_numbers
        self.messages: list[LabSms] = []
        self.requests = {"POST": 0, "GET": 0}
        self.delay = 0.0
        self._failures: list[tuple[int, float | None]] = []
        self._outage: tuple[int, float] | None = None  # status, and the wall clock time it ends
        self._port = 0
        self._runner: web.AppRunner | None = None
        app = web.Application()
        app.router.add_post(API + "/Accounts/{sid}/Messages.json", self._create)
        app.router.add_get(API + "/Accounts/{sid}/Messages.json", self._list)
        self._app = app

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> None:
        await self.up()

    async def stop(self) -> None:
        await self.down()

    async def __aenter__(self) -> TwilioLab:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def up(self) -> None:
        """Listen again on the same port (the first call lets the OS pick it)."""
        runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self._port)
        await site.start()
        self._port = runner.addresses[0][1]
        self._runner = runner

    async def down(self) -> None:
        """Close the listener and every open connection: clients get connection refused."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def fail_next(self, n: int, status: int = 500, retry_after: float | None = None) -> None:
        """Answer the next `n` requests with `status` (429 or 5xx) instead of serving them."""
        self._failures.extend([(status, retry_after)] * n)

    def fail_for(self, seconds: float, status: int = 500) -> float:
        """Answer every request with `status` for `seconds`; returns when it recovers (wall clock)."""
        until = time.time() + seconds
        self._outage = (status, until)
        return until

    def _check(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        try:
            credentials = BasicAuth.decode(auth)
        except ValueError:
            credentials = None
        if (
            credentials is None
            or (credentials.login, credentials.password) != (self.account_sid, self.auth_token)
            or request.match_info["sid"] != self.account_sid
        ):
            return _error(401, 20003, "Authenticate")
        if self._outage is not None and time.time() < self._outage[1]:
            return _error(self._outage[0], 20500, "Internal Server Error")
        if self._failures:
            status, retry_after = self._failures.pop(0)
            headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
            if status == 429:
                return _error(429, 20429, "Too Many Requests", headers)
            return _error(status, 20500, "Internal Server Error", headers)
        return None

    async def _create(self, request: web.Request) -> web.Response:
        self.requests["POST"] += 1
        form = await request.post()
        refused = self._check(request)
        if refused is not None:
            return refused
        to, from_, body = (str(form.get(name, "")) for name in ("To", "From", "Body"))
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if to in self.invalid_numbers:
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not body:
            return _error(400, 21602, "Message body is required.")
        sms = LabSms("SM" + secrets.token_hex(16), to, from_, body, time.time())
        self.messages.append(sms)
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.json_response(sms.resource(self.account_sid), status=201)

    async def _list(self, request: web.Request) -> web.Response:
        self.requests["GET"] += 1
        refused = self._check(request)
        if refused is not None:
            return refused
        query = request.query
        found = [m for m in reversed(self.messages) if query.get("To", m.to) == m.to and query.get("From", m.from_) == m.from_]
        size = min(int(query.get("PageSize", "50")), 1000)
        page = int(query.get("Page", "0"))
        chunk = found[page * size : (page + 1) * size]
        uri = f"{API}/Accounts/{self.account_sid}/Messages.json"
        filters = {k: v for k, v in query.items() if k in ("To", "From")}

        def page_uri(n: int) -> str:
            return f"{uri}?{urlencode({'PageSize': size, 'Page': n, **filters})}"

        more = (page + 1) * size < len(found)
        return web.json_response(
            {
                "messages": [m.resource(self.account_sid) for m in chunk],
                "page": page,
                "page_size": size,
                "start": page * size,
                "end": page * size + max(len(chunk) - 1, 0),
                "uri": page_uri(page),
                "first_page_uri": page_uri(0),
                "next_page_uri": page_uri(page + 1) if more else None,
                "previous_page_uri": page_uri(page - 1) if page else None,
            }
        )


@dataclass(frozen=True, slots=True)
class LabReport:
    """What a lab in its own process accepted, and the CPU it spent doing so."""

    messages: list[LabSms]
    cpu: float  # the lab process's CPU seconds

    @property
    def times(self) -> list[float]:
        """The wall clock of each accepted message."""
        return [m.at for m in self.messages]


class TwilioLabProcess:
    """The lab in a process of its own (`python -m lab.twilio`), as Twilio is remote in production:
    a benchmark then charges the daemon's process with the daemon's work only.

    `async with TwilioLabProcess() as lab:` ... `report = await lab.finish()`.
    """

    def __init__(self, account_sid: str = "AC" + "0" * 32, auth_token: str = "lab-auth-token") -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.base_url = ""
        self._child: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> TwilioLabProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self._child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "lab.twilio",
            self.account_sid,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "TWILIO_LAB_TOKEN": self.auth_token},
            cwd=Path(__file__).resolve().parent.parent,
        )
        assert self._child.stdout is not None
        self.base_url = (await self._child.stdout.readline()).decode().strip()

    async def finish(self) -> LabReport:
        """Stop the lab; what it accepted."""
        assert self._child is not None and self._child.stdin is not None
        self._child.stdin.close()
        out, _ = await self._child.communicate()
        self._child = None
        report = json.loads(out)
        return LabReport([LabSms(*fields) for fields in report["messages"]], report["cpu"])

    async def stop(self) -> None:
        """Kill the lab, unless `finish` stopped it already."""
        if self._child is not None:
            self._child.kill()
            await self._child.wait()


async def _serve(account_sid: str, auth_token: str) -> None:
    """Serve until stdin closes, then print what was accepted as JSON."""
    async with TwilioLab(account_sid, auth_token) as lab:
        print(lab.base_url, flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)
        messages = [[m.sid, m.to, m.from_, m.body, m.at] for m in lab.messages]
        print(json.dumps({"messages": messages, "cpu": time.process_time()}), flush=True)


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], os.environ["TWILIO_LAB_TOKEN"]))
