"""A real Request Tracker for the ticket tests: one instance per session, one notifier per test."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from lab.rt import RT_SERVER, RtServer
from monitord.model import Notification
from notifiers.rt import RequestTracker

_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def rt_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RtServer]:
    if not RT_SERVER.exists():
        pytest.fail("Request Tracker 5 is not installed: run scripts/install-rt.sh as root")
    with RtServer(Path(tmp_path_factory.mktemp("rt"))) as server:
        yield server


@pytest.fixture
async def rt(rt_server: RtServer) -> AsyncIterator[RequestTracker]:
    notifier = RequestTracker(rt_server.url, rt_server.queue, token=rt_server.token)
    yield notifier
    await notifier.close()


def new_tracking() -> str:
    """A tracking number no other test in the session uses."""
    return f"ARZ-2026-{next(_numbers):06d}"


def ticket_item(tracking: str, action: str, n: int = 0, body: str = "") -> Notification:
    return Notification(
        key=f"{tracking}/ticket/{action}/{n}",
        channel="ticket",
        recipient=tracking,
        action=action,
        subject=f"{tracking} Şişli santrali kesinti",
        body=body or f"{action} {n} for {tracking}",
        incident=tracking,
    )


def comments(server: RtServer, ticket_id: str) -> list[str]:
    """Contents of a ticket's comments, oldest first, as RT stored them."""
    history = server.get(f"ticket/{ticket_id}/history?fields=Type&per_page=100")
    comment_ids = {str(t["id"]) for t in history["items"] if t["Type"] == "Comment"}
    attachments = server.get(f"ticket/{ticket_id}/attachments?fields=Content,TransactionId&per_page=100")
    return [
        a["Content"] for a in sorted(attachments["items"], key=lambda a: int(a["id"])) if str(a["TransactionId"]) in comment_ids
    ]


def tickets_tagged(server: RtServer, tracking: str) -> list[dict]:
    query = f"'CF.{{Tracking Number}}'='{tracking}'"
    page = server.get("tickets?" + urlencode({"query": query, "fields": "Status,Subject,Queue,CustomFields"}))
    return page["items"]
