"""Every node answers the NOC API (issue 15): a process that does not lead the correlator (a
standby, a poller) forwards each API request to the one that does, which alone holds the engine
the API reads and changes.

The leader names where its API is reached in `correlator_leader.advertise` once it listens
(`advertised_url`; each takeover clears it first: monitord/leader.py); the others read that row,
trusting what they read for LOOKUP_EVERY seconds, and pass the request on: method, path, query,
body and end-to-end headers, the Authorization header unchanged (the leader decides who may do
what), hop-by-hop headers dropped (RFC 9110 7.6.1); the answer comes back the same way, with
ANSWERED_BY and FORWARDED_BY saying who answered and who passed it on. Vault's standbys and
Consul's followers do the same (docs/decisions.md says why not a redirect, nor reads from
PostgreSQL).

Bounded as the leader's own API is: a body of at most MAX_BODY bytes, a call of at most
FORWARD_TIMEOUT seconds, the answer streamed back and never held whole. No leader, none
advertised, the database or the leader not answering: 503 with Retry-After and an error saying
which. A request that was forwarded once is never forwarded again (FORWARDED_BY is the loop
guard: the address named a node that no longer leads). All of it runs on the HTTP thread's own
loop (monitord/http_server.py), the row read from a thread of its own: nothing here waits on the
polling loop or delays a poll.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import aiohttp
import psycopg
from aiohttp import web
from multidict import CIMultiDict, MultiMapping
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from yarl import URL

from monitord.database import one_line
from monitord.http import MAX_BODY
from monitord.http_server import KEEPALIVE, paced
from monitord.model import StateServer
from monitord.shardstore import Session

FORWARDED_BY = "X-Monitord-Forwarded-By"  # the node that forwarded: on the request (the loop guard) and on its answer
ANSWERED_BY = "X-Monitord-Leader"  # on a forwarded answer: the leader that answered (host/pid, as `correlator_leader.holder`)
FORWARD_TIMEOUT = 30.0  # seconds for a whole forwarded call, the answer included (a live diagnose takes a few)
CONNECT_TIMEOUT = 3.0
LOOKUP_EVERY = 1.0  # seconds the leader's row, once read, is trusted
LOOKUP_TIMEOUT = 3.0  # seconds the database gets to say who leads
RETRY_AFTER = "2"  # seconds: about a standby's check of the lock and a new leader's start
IDLE_KEPT = KEEPALIVE / 3  # seconds a connection to the leader stays idle: well before the leader closes it
CHUNK = 64 * 1024  # bytes of the leader's answer passed on at a time
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer"}
    | {"transfer-encoding", "upgrade"}
)
_NOT_PASSED_ON = HOP_BY_HOP | {"host", "content-length"}  # the client to the leader sets these itself
RESULTS = ("answered", "no_leader", "unreachable", "no_database", "loop", "too_large")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Leader:
    """The `correlator_leader` row: under which epoch, whose API (host/pid) and where (None until it listens)."""

    epoch: int
    holder: str | None
    url: str | None


def advertised_url(advertise: str | None, host: str, port: int, hostname: str) -> str | None:
    """Where this leader's API is reached: `cluster.advertise` when set, else http.host and the
    bound port, or the machine's name (`hostname`) when http.host is a wildcard (0.0.0.0, ::),
    which names no address another node could use."""
    if advertise:
        return advertise
    address = ipaddress.ip_address(host)
    if address.is_unspecified:
        return f"http://{hostname}:{port}" if hostname else None
    return f"http://{host}:{port}" if address.version == 4 else f"http://[{host}]:{port}"


def end_to_end(headers: MultiMapping[str], dropped: frozenset[str] = HOP_BY_HOP) -> CIMultiDict[str]:
    """The headers a proxy passes on: neither `dropped` ones nor those the Connection header names."""
    named = {token.strip().lower() for value in headers.getall("Connection", ()) for token in value.split(",")}
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in dropped and k.lower() not in named)


class LeaderLookup:
    """The leader's row, read on a session and thread of its own at most every LOOKUP_EVERY seconds."""

    def __init__(self, server: StateServer) -> None:
        self._session = Session(server)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="monitord-forward")
        self._known: tuple[float, Leader | None] | None = None

    async def leader(self) -> Leader | None:
        """None if no process ever led; TimeoutError or psycopg.Error if the database cannot say."""
        known = self._known
        if known is not None and time.monotonic() - known[0] < LOOKUP_EVERY:
            return known[1]
        read = asyncio.get_running_loop().run_in_executor(self._thread, self._read)
        async with asyncio.timeout(LOOKUP_TIMEOUT):
            found = await read
        self._known = (time.monotonic(), found)
        return found

    def forget(self) -> None:
        """The leader did not answer: read the row again at the next request."""
        self._known = None

    def close(self) -> None:
        self._thread.submit(self._session.close)
        self._thread.shutdown(wait=False)

    def _read(self) -> Leader | None:
        try:
            row = self._session.db().execute("SELECT epoch, holder, advertise FROM correlator_leader").fetchone()
        except psycopg.Error:
            self._session.close()
            raise
        return Leader(int(row[0]), row[1], row[2]) if row and row[0] else None


class Forwarder:
    """One node's forwarding of the API to the leader; `node` names it (host/pid) in FORWARDED_BY."""

    def __init__(self, server: StateServer, node: str) -> None:
        self.node = node
        self.lookup = LeaderLookup(server)
        self.results: Counter[str] = Counter()  # RESULTS: what became of each request
        self._client: aiohttp.ClientSession | None = None

    async def open(self, _: web.Application) -> None:
        """On the HTTP thread's loop, where the client's connections live."""
        timeout = aiohttp.ClientTimeout(total=FORWARD_TIMEOUT, connect=CONNECT_TIMEOUT)
        idle = aiohttp.TCPConnector(keepalive_timeout=IDLE_KEPT)
        self._client = aiohttp.ClientSession(
            connector=idle, timeout=timeout, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
        )

    async def close(self, _: web.Application) -> None:
        if self._client is not None:
            await self._client.close()
        self.lookup.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if FORWARDED_BY in request.headers:
            return self._unavailable(
                "loop",
                f"{request.headers[FORWARDED_BY]} forwarded this request to {self.node}, which does not lead either "
                "(the leader's advertised address is out of date or names the wrong node)",
            )
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self.results["too_large"] += 1
            return web.json_response({"error": f"body: at most {MAX_BODY} bytes"}, status=413)
        try:
            leader = await self.lookup.leader()
        except (TimeoutError, psycopg.Error) as error:
            why = one_line(error) or "no answer"
            return self._unavailable("no_database", f"this node cannot read which node leads from the database ({why})")
        retried = False
        while True:
            if leader is None or leader.url is None or leader.holder == self.node:
                return self._unavailable("no_leader", f"no correlator leader answers the API: {self._who(leader)}")
            try:
                return await self._relay(request, body, leader)
            except aiohttp.ClientConnectorError as error:  # nothing was sent: safe to try a newer address once
                self.lookup.forget()
                newer = None if retried else await self._newer(leader)
                if newer is None:
                    return self._unreachable(leader, error)
                leader, retried = newer, True
            except (aiohttp.ClientError, TimeoutError) as error:
                self.lookup.forget()
                return self._unreachable(leader, error)

    def _who(self, leader: Leader | None) -> str:
        if leader is None or not leader.holder:
            return "no node leads"
        if leader.holder == self.node:
            return "this node is taking the lead"
        return f"{leader.holder} leads but its API does not listen yet"

    async def _newer(self, tried: Leader) -> Leader | None:
        """The leader's row read again, if it names another address than the one that refused."""
        try:
            found = await self.lookup.leader()
        except (TimeoutError, psycopg.Error):
            return None
        return found if found is not None and found.url != tried.url else None

    async def _relay(self, request: web.Request, body: bytes, leader: Leader) -> web.StreamResponse:
        assert self._client is not None and leader.url is not None
        headers = end_to_end(request.headers, _NOT_PASSED_ON)
        headers[FORWARDED_BY] = self.node
        client = request.remote or "unknown"
        prior = request.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{prior}, {client}" if prior else client
        headers["X-Forwarded-Host"] = request.host
        headers["X-Forwarded-Proto"] = request.scheme
        target = URL(leader.url + request.raw_path, encoded=True)
        async with self._client.request(
            request.method, target, headers=headers, data=body or None, allow_redirects=False
        ) as answer:
            response = web.StreamResponse(status=answer.status, reason=answer.reason, headers=end_to_end(answer.headers))
            response.headers[FORWARDED_BY] = self.node
            response.headers[ANSWERED_BY] = leader.holder or "unknown"
            self.results["answered"] += 1
            await response.prepare(request)
            try:
                async for chunk in answer.content.iter_chunked(CHUNK):
                    await response.write(chunk)
            except (aiohttp.ClientError, TimeoutError) as error:  # too late for a 503: the caller sees the answer cut
                raise ConnectionResetError(f"the leader's answer broke off: {error!r}") from error
            await response.write_eof()
        return response

    def _unreachable(self, leader: Leader, error: Exception) -> web.Response:
        why = str(error) or type(error).__name__
        return self._unavailable("unreachable", f"the correlator leader {leader.holder} at {leader.url} did not answer ({why})")

    def _unavailable(self, result: str, message: str) -> web.Response:
        self.results[result] += 1
        body = {"error": message, "node": self.node}
        return web.json_response(body, status=503, headers={"Retry-After": RETRY_AFTER, FORWARDED_BY: self.node})


class ForwardCollector(Collector):
    """`monitord_api_forwarded_total{result}`: this node's API requests, passed to the leader or refused (and why)."""

    def __init__(self, forwarder: Forwarder) -> None:
        self.forwarder = forwarder

    def collect(self) -> Iterator[Metric]:
        total = CounterMetricFamily(
            "monitord_api_forwarded",
            "API requests this node forwarded to the correlator leader (answered) or answered 503 or 413 itself.",
            labels=["result"],
        )
        for result in RESULTS:
            total.add_metric([result], self.forwarder.results[result])
        yield total


def metrics_handler(registry: CollectorRegistry) -> Handler:
    """A node's /metrics: its few series, rendered when asked (the leader's API caches its many)."""

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), content_type="text/plain", charset="utf-8")

    return metrics


def forwarding_app(local: Mapping[str, Handler], forwarder: Forwarder) -> web.Application:
    """A node's API listener: the `local` paths (GET) answered here, every other request forwarded."""
    app = web.Application(middlewares=[paced], client_max_size=MAX_BODY)
    for path, handler in local.items():
        app.router.add_get(path, handler, allow_head=False)
    app.router.add_route("*", "/{tail:.*}", forwarder.handle)
    app.on_startup.append(forwarder.open)
    app.on_cleanup.append(forwarder.close)
    return app
