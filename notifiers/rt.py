"""Helpdesk tickets in Request Tracker 5 through its REST 2.0 API.

One ticket per incident, tagged with the custom field "Tracking Number" and found again by it,
so every action is safe to repeat: a retry after a crash or a restart opens no second ticket, and
a comment carries a marker line `[monitord:<notification key>]` that is looked for first.

RT's quirks stay in this module: a failed update still answers 200 and bad custom-field input is
dropped without a word (so what matters is read back), and an unknown queue answers 403.

A comment, resolve, reopen or follow-up (a subscriber's own ticket after a repair that did not
help them, notices/confirm.py) for a tracking number with no ticket yet fails as retryable: its
create may still be queued behind it. The outbox's attempt and age limits end that wait.

An "owner" item (an owner set in monitord, notices/plan.py `workflow_ticket`) names the user in
its subject: made the ticket's Owner when RT knows that user and lets them own tickets of the
queue, else said in a comment (the item's body), so the helpdesk still sees who took it.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import aiohttp

from monitord.model import Notification, Secret
from notifiers.base import ChannelError, DeliveryError, hide, http_failure, retry_after

TRACKING_FIELD = "Tracking Number"


@dataclass(frozen=True, slots=True)
class Ticket:
    id: str
    status: str
    subject: str = ""


def tracking_query(tracking: str) -> str:
    """TicketSQL for the ticket of one incident."""
    return f"'CF.{{{TRACKING_FIELD}}}'='{_quoted(tracking)}'"


def _quoted(value: str) -> str:
    """A value inside TicketSQL's single quotes."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def marker(key: str) -> str:
    """The line that makes a comment findable again: one per notification key."""
    return f"[monitord:{key}]"


def user_id(value: Any) -> str:
    """A user as RT's REST 2.0 gives it ({"id": "ayse", ...}, or a bare name); "" for none."""
    return str(value.get("id") or "") if isinstance(value, Mapping) else str(value or "")


def http_error(status: int, message: str, wait: float | None = None) -> DeliveryError:
    """RT's words for the statuses `http_failure` classifies; 401 says nothing worth quoting."""
    if status == 401:
        return http_failure(status, "RT HTTP 401: the token or password was not accepted")
    if status == 403:
        return http_failure(status, f"RT HTTP 403: {message} (unknown queue, or the user lacks rights on it)")
    return http_failure(status, f"RT HTTP {status}: {message}", wait)


def _message(status: int, payload: Any, text: str) -> str:
    if status == 401:
        return ""
    if isinstance(payload, Mapping) and "message" in payload:
        return str(payload["message"])
    return text[:200] or "(empty answer)"


class RequestTracker:
    """The "ticket" channel. Returns the RT ticket id as the peer reference.

    Authenticates with an RT auth token (`Authorization: token ...`) or, failing that, basic auth.
    """

    channel = "ticket"

    def __init__(
        self,
        url: str,
        queue: str,
        token: Secret | None = None,
        username: str | None = None,
        password: Secret | None = None,
        timeout: float = 10.0,
        routed: Iterable[str] = (),
    ) -> None:
        """`queue` takes the tickets of items without a route; `routed`: the queues items are
        routed to (notifiers.receivers), read back by `updated_since` with it."""
        if token is not None:
            self._authorization = Secret(f"token {token.reveal()}", token.source)
        elif username is not None and password is not None:
            basic = base64.b64encode(f"{username}:{password.reveal()}".encode()).decode()
            self._authorization = Secret(f"Basic {basic}", password.source)
        else:
            raise ValueError("RequestTracker needs a token, or a username and a password")
        self._credentials = (self._authorization, token, password)
        self.api = url.rstrip("/") + "/REST/2.0/"
        self.queue = queue
        self.queues = tuple(dict.fromkeys((queue, *routed)))
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._actions: Mapping[str, Callable[[Notification], Awaitable[str]]] = {
            "create": self._create,
            "comment": self._comment,
            "resolve": self._resolve,
            "reopen": self._reopen,
            "followup": self._followup,
            "owner": self._owner,
        }

    async def send(self, item: Notification) -> str:
        action = self._actions.get(item.action)
        if action is None:
            raise DeliveryError(f"RT: unknown ticket action {item.action!r}", retryable=False)
        return await action(item)

    async def find(self, tracking: str) -> Ticket | None:
        """The oldest ticket tagged with `tracking`, resolved or not."""
        page = await self._call(
            "GET",
            "tickets",
            params={
                "query": tracking_query(tracking),
                "fields": "Status,Subject",
                "orderby": "id",
                "order": "ASC",
                "per_page": "1",
            },
        )
        items = page.get("items") or []
        return Ticket(str(items[0]["id"]), str(items[0]["Status"]), str(items[0].get("Subject") or "")) if items else None

    async def updated_since(self, since: str, page: int = 1, per_page: int = 100) -> tuple[list[dict[str, Any]], int]:
        """One page of the queues' tickets updated at or after `since` (UTC, "YYYY-MM-DD HH:MM:SS"),
        least recently updated first, and how many pages there are: for the stage sync
        (monitord/rtsync.py). The "+0000" makes RT read the time as UTC whatever its own zone."""
        queues = " OR ".join(f"Queue = '{_quoted(queue)}'" for queue in self.queues)
        answer = await self._call(
            "GET",
            "tickets",
            params={
                "query": f"({queues}) AND LastUpdated >= '{since} +0000'",
                "fields": "LastUpdated,LastUpdatedBy,Status,Owner,CustomFields",
                "orderby": "LastUpdated",
                "order": "ASC",
                "page": str(page),
                "per_page": str(per_page),
            },
        )
        return [i for i in answer.get("items") or [] if isinstance(i, dict)], int(answer.get("pages") or 1)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = None

    async def _create(self, item: Notification) -> str:
        existing = await self.find(item.recipient)
        if existing is not None:
            return existing.id
        ticket_id = await self._new_ticket(item)
        if await self.find(item.recipient) is None:
            raise DeliveryError(
                f"RT ticket {ticket_id} was created without custom field {TRACKING_FIELD!r}: "
                f"apply the field to queue {item.route or self.queue!r} and let the user set it",
                retryable=False,
                kind="config",
            )
        return ticket_id

    async def _followup(self, item: Notification) -> str:
        """A ticket of its own for one subscriber (recipient `<incident>/<line>`, its tracking
        value), referring to the incident's ticket; found again by that value, so never two."""
        parent = await self._existing(item.recipient.split("/", 1)[0])
        existing = await self.find(item.recipient)
        if existing is not None:
            return existing.id
        return await self._new_ticket(item, RefersTo=parent.id)

    async def _new_ticket(self, item: Notification, **links: str) -> str:
        """A ticket in the item's queue (its route, else the notifier's) tagged with the item's
        recipient; `links`: RT's link fields."""
        created = await self._call(
            "POST",
            "ticket",
            {
                "Queue": item.route or self.queue,
                "Subject": item.subject,
                "Content": item.body,
                "ContentType": "text/plain",
                "CustomFields": {TRACKING_FIELD: item.recipient},
                **links,
            },
        )
        return str(created["id"])

    async def _comment(self, item: Notification) -> str:
        """The comment, then the ticket's subject: it carries the incident's current count."""
        ticket = await self._existing(item.recipient)
        await self._add_comment(ticket.id, item)
        if item.subject and item.subject != ticket.subject:
            await self._call("PUT", f"ticket/{ticket.id}", {"Subject": item.subject})
        return ticket.id

    async def _resolve(self, item: Notification) -> str:
        """Comment first: a comment, unlike a reply, does not reopen the resolved ticket."""
        ticket = await self._existing(item.recipient)
        await self._add_comment(ticket.id, item)
        if ticket.status != "resolved":
            await self._set_status(ticket.id, "resolved")
        return ticket.id

    async def _reopen(self, item: Notification) -> str:
        ticket = await self._existing(item.recipient)
        if ticket.status != "open":
            await self._set_status(ticket.id, "open")
        await self._add_comment(ticket.id, item)
        return ticket.id

    async def _owner(self, item: Notification) -> str:
        """RT answers 200 even when it refused the owner (the user may not own tickets of the
        queue), so the owner is read back; not set: the comment says who took it."""
        ticket = await self._existing(item.recipient)
        name = item.subject
        if await self._user_exists(name):
            await self._call("PUT", f"ticket/{ticket.id}", {"Owner": name})
            if user_id((await self._call("GET", f"ticket/{ticket.id}")).get("Owner")) == name:
                return ticket.id
        await self._add_comment(ticket.id, replace(item, subject=ticket.subject))
        return ticket.id

    async def _user_exists(self, name: str) -> bool:
        """Whether RT has a user `name`; an RT that is down or refuses monitord raises."""
        try:
            await self._call("GET", f"user/{quote(name, safe='')}")
        except DeliveryError as error:
            if error.retryable or isinstance(error, ChannelError):
                raise
            return False  # 404: no such user
        return True

    async def _existing(self, tracking: str) -> Ticket:
        ticket = await self.find(tracking)
        if ticket is None:
            raise DeliveryError(f"RT has no ticket for {tracking} yet", retryable=True, kind="not_ready")
        return ticket

    async def _add_comment(self, ticket_id: str, item: Notification) -> None:
        """Post `item` as a comment unless a comment with its marker is already there.

        RT filters on content with LIKE (where `_` and `%` are wildcards); the exact check is here.
        """
        tag = marker(item.key)
        found = await self._call(
            "POST",
            f"ticket/{ticket_id}/attachments",
            [{"field": "Content", "operator": "LIKE", "value": tag}],
            params={"fields": "Content", "per_page": "100"},
        )
        if any(tag in str(a.get("Content") or "") for a in found.get("items") or []):
            return
        await self._call(
            "POST",
            f"ticket/{ticket_id}/comment",
            {
                "Subject": item.subject,
                "Content": f"{item.body}\n\n{tag}",
                "ContentType": "text/plain",
            },
        )

    async def _set_status(self, ticket_id: str, status: str) -> None:
        """RT answers 200 even when it refused the change, so read the status back."""
        messages = await self._call("PUT", f"ticket/{ticket_id}", {"Status": status})
        stored = await self._call("GET", f"ticket/{ticket_id}")
        if stored.get("Status") != status:
            said = hide("; ".join(map(str, messages)) if isinstance(messages, list) else str(messages), *self._credentials)
            raise DeliveryError(f"RT did not set ticket {ticket_id} to {status!r}: {said}", retryable=False)

    def _http(self) -> aiohttp.ClientSession:
        """Built lazily: an aiohttp session must be created inside the running loop."""
        if self._session is None:
            self._session = aiohttp.ClientSession(headers={"Authorization": self._authorization.reveal()})
        return self._session

    async def _call(self, method: str, path: str, body: Any = None, params: Mapping[str, str] | None = None) -> Any:
        try:
            async with asyncio.timeout(self.timeout):
                async with self._http().request(method, self.api + path, json=body, params=params) as response:
                    status, text = response.status, await response.text()
                    wait = retry_after(response.headers.get("Retry-After"))
        except TimeoutError:
            raise DeliveryError(f"RT: no answer within {self.timeout:g}s", retryable=True, kind="timeout") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise DeliveryError(
                f"RT unreachable at {self.api}: {type(exc).__name__}", retryable=True, kind="unreachable"
            ) from None
        try:
            payload = json.loads(text) if text else None
        except ValueError:
            payload = None
        if status >= 400:
            raise http_error(status, hide(_message(status, payload, text), *self._credentials), wait)
        if payload is None:
            raise DeliveryError(
                f"RT {method} {path}: HTTP {status} without a JSON answer; is {self.api} RT?",
                retryable=False,
                kind="bad_answer",
            )
        return payload
