from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from plan_fixtures import TOPOLOGY, Change, at, incident

from lab.tickets import TicketDesk
from monitord.config.templates import builtin_templates
from monitord.model import Notification, Secret
from notices.plan import PlanSettings, plan
from notifiers.base import ChannelError, DeliveryError
from notifiers.webhook import WebhookTickets

TOKEN = "webhook-token-0123456789"
T = "ARZ-2026-000123"


def ticket(action: str, n: int = 0, tracking: str = T) -> Notification:
    return Notification(
        f"{tracking}/ticket/{action}/{n}",
        "ticket",
        tracking,
        action,
        f"[{tracking}] Kesinti",
        f"{action} {n}: Şişli Santrali",
        tracking,
    )


@pytest.fixture
async def desk() -> AsyncIterator[TicketDesk]:
    async with TicketDesk(token=TOKEN) as d:
        yield d


@pytest.fixture
async def hook(desk: TicketDesk) -> AsyncIterator[WebhookTickets]:
    notifier = WebhookTickets(desk.url, Secret(TOKEN, "env:HOOK"), timeout=5)
    yield notifier
    await notifier.close()


async def failure(notifier: WebhookTickets, item: Notification) -> DeliveryError:
    with pytest.raises(DeliveryError) as e:
        await notifier.send(item)
    return e.value


async def test_ticket_lifecycle_keeps_ordered_history(desk: TicketDesk, hook: WebhookTickets) -> None:
    ids = [
        await hook.send(item)
        for item in (ticket("create"), ticket("comment", 1), ticket("comment", 2), ticket("resolve"), ticket("reopen"))
    ]
    assert ids == ["T1"] * 5
    t = desk.tickets[T]
    assert [(e.action, e.body) for e in t.history] == [
        ("create", "create 0: Şişli Santrali"),
        ("comment", "comment 1: Şişli Santrali"),
        ("comment", "comment 2: Şişli Santrali"),
        ("resolve", "resolve 0: Şişli Santrali"),
        ("reopen", "reopen 0: Şişli Santrali"),
    ]
    assert t.status == "open" and t.subject == f"[{T}] Kesinti"
    assert desk.requests[0]["body"] == {
        "action": "create",
        "tracking": T,
        "subject": f"[{T}] Kesinti",
        "body": "create 0: Şişli Santrali",
        "key": f"{T}/ticket/create/0",
    }
    assert desk.requests[0]["authorization"] == f"Bearer {TOKEN}"


async def test_a_resent_item_changes_nothing(desk: TicketDesk, hook: WebhookTickets) -> None:
    await hook.send(ticket("create"))
    await hook.send(ticket("comment", 1))
    assert await hook.send(ticket("comment", 1)) == "T1"
    assert await hook.send(ticket("create")) == "T1"
    assert [e.action for e in desk.tickets[T].history] == ["create", "comment"]


@pytest.mark.parametrize(
    ("status", "after", "retryable", "wait", "kind"),
    [
        (500, None, True, None, "server_error"),
        (503, "7", True, 7.0, "server_error"),
        (429, "30", True, 30.0, "rate_limited"),
        (400, None, False, None, "rejected"),
        (409, None, False, None, "rejected"),
    ],
)
async def test_status_codes_decide_whether_to_retry(
    desk: TicketDesk, hook: WebhookTickets, status: int, after: str | None, retryable: bool, wait: float | None, kind: str
) -> None:
    desk.fail_next(status, retry_after=after)
    error = await failure(hook, ticket("create"))
    assert (error.retryable, error.retry_after, error.kind) == (retryable, wait, kind)
    assert str(status) in error.reason
    assert await hook.send(ticket("create")) == "T1"


async def test_a_wrong_token_holds_the_channel_and_is_not_shown(desk: TicketDesk) -> None:
    wrong = "wrong-token-987654321"
    notifier = WebhookTickets(desk.url, Secret(wrong, "env:HOOK"), timeout=5)
    error = await failure(notifier, ticket("create"))
    await notifier.close()
    assert isinstance(error, ChannelError) and error.cause == "credentials"
    assert "401" in error.reason and "token" in error.reason
    assert all(s not in text for s in (wrong, TOKEN) for text in (error.reason, str(error), repr(error)))


async def test_comment_before_the_ticket_exists_is_retried_but_an_unknown_action_is_not(hook: WebhookTickets) -> None:
    early = await failure(hook, ticket("comment", 1))
    assert early.retryable and early.kind == "not_ready"
    assert not (await failure(hook, ticket("escalate"))).retryable


async def test_a_helpdesk_that_is_down_is_retried_and_tickets_arrive_once_it_is_back(
    desk: TicketDesk, hook: WebhookTickets
) -> None:
    items = [ticket("create"), ticket("comment", 1), ticket("resolve")]
    await desk.down()
    errors = [await failure(hook, item) for item in items]
    assert all(e.retryable and e.kind == "unreachable" and "cannot reach" in e.reason for e in errors)
    await desk.up()
    assert [await hook.send(item) for item in items] == ["T1"] * 3
    assert [e.action for e in desk.tickets[T].history] == ["create", "comment", "resolve"]


async def test_an_answer_without_an_id_is_permanent(desk: TicketDesk, hook: WebhookTickets) -> None:
    desk.fail_next(200)
    error = await failure(hook, ticket("create"))
    assert not error.retryable and error.kind == "bad_answer" and "without a ticket id" in error.reason


async def test_a_body_template_shapes_the_json(desk: TicketDesk) -> None:
    template = '{"action": {action}, "tracking": {tracking}, "key": {key}, "title": {subject}, "text": {body}, "queue": "noc"}'
    notifier = WebhookTickets(desk.url, Secret(TOKEN, "env:HOOK"), body_template=template, timeout=5)
    item = Notification("k1", "ticket", T, "create", 'Quote " and \\ and\nnewline', "Şişli", T)
    assert await notifier.send(item) == "T1"
    await notifier.close()
    assert desk.requests[0]["body"] == {
        "action": "create",
        "tracking": T,
        "key": "k1",
        "title": item.subject,
        "text": "Şişli",
        "queue": "noc",
    }


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ('{"title": {subjet}}', r"unknown placeholder \{subjet\}"),
        ('{"title": {subject}', "not valid JSON"),
        ('{"title": $subject}', r"write \{subject\} instead of \$subject"),
    ],
)
def test_a_bad_body_template_fails_when_built(template: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WebhookTickets("http://127.0.0.1:9/", None, body_template=template)


async def test_planned_tickets_reach_the_helpdesk(desk: TicketDesk, hook: WebhookTickets) -> None:
    settings, now = PlanSettings(templates=builtin_templates()), at("2026-12-01 14:00")
    opened = plan(Change(incident(), "opened"), TOPOLOGY, settings, now, lambda _: None)
    resolved = plan(Change(incident(resolved=now, updated=now), "resolved"), TOPOLOGY, settings, now, lambda _: None)
    for item, _ in opened + resolved:
        if item.channel == "ticket":
            await hook.send(item)
    t = desk.tickets[T]
    assert t.status == "resolved" and [e.action for e in t.history] == ["create", "resolve"]
    assert "Şişli Santrali" in t.history[0].body and "Hizmet geri geldi" in t.history[1].body
