"""The ticket notifier against a local HTTP peer that answers as a struggling RT or a proxy would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest
from aiohttp import web
from rt_fixtures import ticket_item

from lab.rt import free_port
from monitord.model import Secret
from notifiers.base import DeliveryError, retry_after
from notifiers.rt import RequestTracker, tracking_query

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TOKEN = Secret("1-14-0123456789abcdef0123456789abcdef", "env:RT_TOKEN")


@pytest.fixture
async def peer() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    runners: list[web.AppRunner] = []

    async def serve(handler: Handler) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    yield serve
    for runner in runners:
        await runner.cleanup()


@pytest.mark.parametrize(("status", "header", "wait"), [(503, "7", 7.0), (429, "2", 2.0), (502, None, None)])
async def test_server_errors_and_throttling_are_retryable(
    peer: Callable[[Handler], Awaitable[str]], status: int, header: str | None, wait: float | None
) -> None:
    async def busy(request: web.Request) -> web.Response:
        headers = {"Retry-After": header} if header else {}
        return web.json_response({"message": "busy"}, status=status, headers=headers)

    error = await _fail(await peer(busy), "create")
    assert error.retryable and error.retry_after == wait and str(status) in error.reason
    assert error.kind == ("rate_limited" if status == 429 else "server_error")


async def test_a_custom_field_rt_dropped_is_a_permanent_error(peer: Callable[[Handler], Awaitable[str]]) -> None:
    created: list[dict] = []

    async def forgetful(request: web.Request) -> web.Response:
        if request.method == "POST" and request.path == "/REST/2.0/ticket":
            created.append(await request.json())
            return web.json_response({"id": "41", "type": "ticket"}, status=201)
        return web.json_response({"items": [], "count": 0, "pages": 0.0})

    error = await _fail(await peer(forgetful), "create")
    assert not error.retryable and "41" in error.reason and "Tracking Number" in error.reason
    assert error.kind == "config"
    assert created[0]["CustomFields"] == {"Tracking Number": "ARZ-2026-999999"}


async def test_an_update_rt_refused_with_200_is_a_permanent_error(peer: Callable[[Handler], Awaitable[str]]) -> None:
    async def stubborn(request: web.Request) -> web.Response:
        if request.path == "/REST/2.0/tickets":
            return web.json_response({"items": [{"id": 5, "Status": "open"}], "count": 1})
        if request.method == "PUT":
            return web.json_response(["Ticket 5: Permission Denied"])
        if request.path == "/REST/2.0/ticket/5":
            return web.json_response({"id": 5, "Status": "open"})
        return web.json_response({"items": []}, status=201 if request.method == "POST" else 200)

    error = await _fail(await peer(stubborn), "resolve")
    assert not error.retryable and "Permission Denied" in error.reason


async def test_an_answer_that_is_not_rt_is_permanent(peer: Callable[[Handler], Awaitable[str]]) -> None:
    async def webpage(request: web.Request) -> web.Response:
        return web.Response(text="<html>hello</html>", content_type="text/html")

    error = await _fail(await peer(webpage), "create")
    assert not error.retryable and "JSON" in error.reason and error.kind == "bad_answer"


async def test_refused_connection_and_timeout_are_retryable(peer: Callable[[Handler], Awaitable[str]]) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    refused = await _fail(f"http://127.0.0.1:{free_port()}", "create")
    assert refused.retryable and "unreachable" in refused.reason and refused.kind == "unreachable"
    late = await _fail(await peer(slow), "create", timeout=0.3)
    assert late.retryable and "no answer" in late.reason and late.kind == "timeout"


async def _fail(url: str, action: str, timeout: float = 5.0) -> DeliveryError:
    notifier = RequestTracker(url, "Network Outages", token=TOKEN, timeout=timeout)
    try:
        with pytest.raises(DeliveryError) as caught:
            await notifier.send(ticket_item("ARZ-2026-999999", action))
    finally:
        await notifier.close()
    assert TOKEN.reveal() not in str(caught.value)
    return caught.value


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC).timestamp()
    assert retry_after("120", now) == 120.0
    assert retry_after("Wed, 25 Nov 2026 12:00:30 GMT", now) == 30.0
    assert retry_after("Wed, 25 Nov 2026 11:00:00 GMT", now) == 0.0
    assert retry_after("-5", now) == 0.0
    assert retry_after("soon", now) is None
    assert retry_after(None, now) is None


def test_tracking_query_quotes_the_field_and_the_value() -> None:
    assert tracking_query("ARZ-2026-000123") == "'CF.{Tracking Number}'='ARZ-2026-000123'"
    assert tracking_query("x' OR id>'0") == "'CF.{Tracking Number}'='x\\' OR id>\\'0'"


def test_a_token_or_a_username_and_password_is_required() -> None:
    with pytest.raises(ValueError):
        RequestTracker("http://127.0.0.1:1", "Network Outages", username="monitord")
