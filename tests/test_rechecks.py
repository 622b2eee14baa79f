"""The correlator's rechecks carried to the pollers over a real PostgreSQL's NOTIFY
(monitord/rechecks.py): what one step asks for goes in one notification, a long list is split
under PostgreSQL's payload limit, and a database that refuses costs a warning, never the step."""

from __future__ import annotations

import asyncio
import logging

from lab.postgres import free_port
from monitord.demo import until
from monitord.model import StateServer
from monitord.rechecks import PAYLOAD, RecheckListener, RecheckSender, payloads


def test_a_long_list_is_split_under_the_payload_limit_and_nothing_is_lost() -> None:
    devices = [f"dslam-{n:05d}.exchange-{n % 97:03d}" for n in range(3000)]
    sent = list(payloads(devices))
    assert len(sent) > 1 and all(len(p.encode()) <= PAYLOAD for p in sent)
    assert [d for p in sent for d in p.split()] == devices


async def test_what_a_step_asks_for_reaches_a_listening_poller_in_one_notification(pg_database: StateServer) -> None:
    heard: list[list[str]] = []
    listener = asyncio.create_task(RecheckListener(pg_database).run(heard.append))
    sender = RecheckSender(pg_database)
    try:
        await asyncio.sleep(0.5)  # the listener's LISTEN is in place
        for device in ("ist-dslam-02", "ist-cmts-01", "ist-dslam-01", "ist-dslam-02"):
            sender.ask(device)  # as a step does, one call per device
        await until(lambda: heard, 10, "the poller to hear the rechecks")
        await asyncio.sleep(0.3)
        assert heard == [["ist-cmts-01", "ist-dslam-01", "ist-dslam-02"]]
        assert (sender.sent, sender.failed) == (3, 0)
    finally:
        listener.cancel()
        sender.close()


async def test_a_database_that_refuses_costs_a_warning_and_the_next_asks_still_go(caplog) -> None:
    sender = RecheckSender(StateServer(f"postgresql://monitord@127.0.0.1:{free_port()}/monitord?connect_timeout=2"))
    caplog.set_level(logging.WARNING, "monitord")
    try:
        sender.ask("ist-dslam-01")
        await until(lambda: sender.failed == 1, 10, "the refused NOTIFY")
        sender.ask("ist-dslam-02")
        await until(lambda: sender.failed == 2, 10, "the second refused NOTIFY")
        assert sender.sent == 0
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "next polls answer instead" in warnings[0]  # once per failing streak
    finally:
        sender.close()
