"""Shared pieces for the store, outbox and SMS tests: a local Twilio and quick builders."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from lab.isp import write_secret
from lab.twilio import TwilioLab
from monitord.model import Notification, Secret, StateServer
from monitord.outbox import ChannelPolicy, Outbox
from monitord.store import Store
from notifiers.sms import TwilioSms

FROM = "+908501234567"
FAST = ChannelPolicy(concurrency=4, rate=1000.0, base_backoff=0.05, max_backoff=0.2, settle=0.05, outage_probe=0.1)


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioLab]:
    async with TwilioLab() as lab:
        yield lab


ENGINES = ("sqlite", "postgresql")


def state_at(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> Path | StateServer:
    """Where a new store of `engine` lives: a SQLite file, or a fresh database of the session's
    PostgreSQL cluster (tests/pg_fixtures.py)."""
    return tmp_path / "state.db" if engine == "sqlite" else request.getfixturevalue("pg_database")


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A new store; each test that takes it runs against both engines."""
    s = Store.open(state_at(request.param, request, tmp_path))
    yield s
    s.close()


def twilio_section(folder: Path, lab: TwilioLab, rate: float = 50) -> dict[str, Any]:
    """A config's `notifiers.sms` that sends through `lab`, its token in a secret file in `folder`."""
    return {
        "kind": "twilio",
        "account_sid": lab.account_sid,
        "auth_token": write_secret(folder, "twilio.token", lab.auth_token),
        "from": "+908502200000",
        "base_url": lab.base_url,
        "rate": rate,
    }


def sms_for(lab: TwilioLab, timeout: float = 2.0, token: str | None = None) -> TwilioSms:
    secret = Secret(token or lab.auth_token, "env:TWILIO_AUTH_TOKEN")
    return TwilioSms(lab.account_sid, secret, FROM, lab.base_url, timeout=timeout)


def sms(i: int, to: str | None = None, incident: str = "ARZ-2026-000001") -> Notification:
    to = to or f"+90532{i:07d}"
    return Notification(
        key=f"{incident}/sms/{to}/outage/{i}",
        channel="sms",
        recipient=to,
        action="outage",
        subject="",
        body=f"Bölgenizde arıza var, takip no {incident} ({i}).",
        incident=incident,
    )


def queue(store: Store, items: list[Notification], not_before: float | None = None, now: float | None = None) -> int:
    return store.commit_step(None, [], [(n, not_before) for n in items], now or time.time())


async def drain(outbox: Outbox, store: Store, timeout: float, done: Callable[[], bool] | None = None) -> None:
    """Run the outbox until nothing is left to deliver (or `done()`), then stop it."""
    runner = asyncio.create_task(outbox.run())
    try:
        async with asyncio.timeout(timeout):
            while not (done() if done else store.depth() == 0):
                await asyncio.sleep(0.02)
    finally:
        await outbox.stop(timeout=2.0)
        await runner


def version_before(migrations: Sequence[str], marker: str) -> int:
    """The schema version just before the migration holding `marker`: the state an older monitord
    left (found by content, so migrations appended later do not move it)."""
    return next(n for n, sql in enumerate(migrations) if marker in sql)
