"""A template that cannot be rendered dead-letters its own items; every other item goes out.

(A number the SMS gateway rejects is the other per-item dead letter: see
tests/test_outbox.py::test_invalid_number_is_dead_lettered_while_others_go_out.)
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import replace
from pathlib import Path

import pytest
from plan_fixtures import TOPOLOGY, Change, at, incident

from lab.twilio import TwilioLab
from monitord.config import load_config
from monitord.config.templates import builtin_templates
from monitord.daemon import Daemon
from monitord.model import Line, MaintenanceWindow, NodeRef, Notification, Secret
from monitord.outbox import Outbox
from monitord.pipeline import NOTICES
from monitord.store import Store
from notices.plan import Planned, PlanSettings, plan
from notices.templates import Template
from notifiers.sms import TwilioSms
from tests.outbox_fixtures import FAST, drain, sms_for, store, twilio  # noqa: F401  (fixtures)

T = "ARZ-2026-000123"
DAY = at("2026-12-01 14:00")
REASON = "template sms.outage: no value for {bolge}"
LINES = {
    f"s{i}": Line(f"s{i}", f"Abone {i}", "sisli-dslam-01", phone=f"+90532000000{i}", language=language)
    for i, language in enumerate(("tr", "en", "tr", "en", "tr"), start=1)
}
FIVE = replace(TOPOLOGY, lines=LINES)
OUTAGE = Change(incident(affected=frozenset(LINES)), "opened")
SETTINGS = PlanSettings(templates=builtin_templates(), noc_emails=("noc@isp.example",))


def broken(name: str, language: str, text: str) -> PlanSettings:
    TEMPLATES = builtin_templates()
    table = {**TEMPLATES, name: {**TEMPLATES[name], language: Template(TEMPLATES[name][language].subject, text)}}
    return replace(SETTINGS, templates=table)


BROKEN = broken("sms.outage", "tr", "Bölgenizde ({bolge}) arıza var. Takip no: {tracking}")


def customer_sms(planned: list[Planned]) -> dict[str, Notification]:
    return {n.recipient: n for n, _ in planned if n.channel == "sms"}


def test_a_broken_template_plans_its_items_dead_and_the_rest_as_usual() -> None:
    good = customer_sms(plan(OUTAGE, FIVE, SETTINGS, DAY, {}.get))
    planned = plan(OUTAGE, FIVE, BROKEN, DAY, {}.get)
    sms = customer_sms(planned)
    turkish = {line.phone for line in LINES.values() if line.language == "tr"}
    assert sorted(sms) == sorted(good) and len(sms) == 5
    for phone, item in sms.items():
        if phone in turkish:
            assert item == replace(good[phone], subject="", body="", error=REASON)
        else:
            assert item == good[phone] and item.error is None
    assert all(n.error is None for n, _ in planned if n.channel != "sms")


@pytest.mark.parametrize("name", ["ticket.create", "noc.opened"])
def test_a_broken_staff_template_only_kills_the_staff_item(name: str) -> None:
    planned = plan(OUTAGE, FIVE, broken(name, "tr", "{nonesuch}"), DAY, {}.get)
    failed = [n for n, _ in planned if n.error]
    assert [(n.channel, n.error) for n in failed] == [
        ("ticket" if name.startswith("ticket") else "email", f"template {name}: no value for {{nonesuch}}")
    ]
    assert len(customer_sms(planned)) == 5 and all(n.body for n in customer_sms(planned).values())


def test_dead_items_are_filed_dead_once_and_not_counted_as_queued(store: Store) -> None:
    planned = plan(OUTAGE, FIVE, BROKEN, DAY, {}.get)
    dead: list[Notification] = []
    assert store.commit_step(None, [], planned, DAY, dead.append) == len(planned) - 3
    assert sorted(n.recipient for n in dead) == ["+905320000001", "+905320000003", "+905320000005"]
    items = {i.notification.recipient: i for i in store.items(channel="sms")}
    assert {r: (i.status, i.last_error, i.attempts) for r, i in items.items()} == {
        "+905320000001": ("dead", REASON, 0),
        "+905320000002": ("pending", None, 0),
        "+905320000003": ("dead", REASON, 0),
        "+905320000004": ("pending", None, 0),
        "+905320000005": ("dead", REASON, 0),
    }
    assert store.counts()[("sms", "dead")] == 3 and store.depth("sms") == 2
    assert store.commit_step(None, [], planned, DAY + 60, dead.append) == 0 and len(dead) == 3


async def test_only_the_good_sms_reach_the_gateway(store: Store, twilio: TwilioLab) -> None:
    planned = plan(OUTAGE, FIVE, BROKEN, DAY, {}.get)
    store.commit_step(None, [], planned, time.time())
    box = Outbox(store, {"sms": sms_for(twilio)}, {"sms": FAST}, rng=random.Random(7))
    await drain(box, store, timeout=10, done=lambda: store.depth("sms") == 0)
    good = [n for n in customer_sms(planned).values() if n.error is None]
    assert sorted((m.to, m.body) for m in twilio.messages) == sorted((n.recipient, n.body) for n in good)
    assert len(twilio.messages) == 2
    assert {i.notification.recipient: i.status for i in store.items(channel="sms")} == {
        "+905320000001": "dead",
        "+905320000002": "sent",
        "+905320000003": "dead",
        "+905320000004": "sent",
        "+905320000005": "dead",
    }


CONFIG = """\
state_file: state.db
tracking_prefix: ARZ
timezone: Europe/Istanbul
topology:
  regions:
    - id: ist
      name: İstanbul
      exchanges:
        - id: sisli
          name: Şişli
          devices:
            - id: rtr-1
              kind: router
              address: 127.0.0.1
subscribers:
  csv: subs.csv
notifiers:
  sms: {kind: twilio, account_sid: AC00000000000000000000000000000000, auth_token: {file: token}, from: "+908502200000", base_url: "http://127.0.0.1:9"}
  email: {host: 127.0.0.1, port: 9, starttls: false, from: monitord@isp.example}
"""
SUBSCRIBERS = """\
id,name,phone,email,language,device,port,mac,modem,sms_opt_out,prefer_email
1,Ayşe,0532 000 00 01,,tr,rtr-1,,,,,
2,John,0532 000 00 02,,en,rtr-1,,,,,
3,Zeynep,0532 000 00 03,zeynep@example.com,tr,rtr-1,,,,,evet
"""


def test_the_daemon_logs_each_dead_item_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "config.yaml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "subs.csv").write_text(SUBSCRIBERS, encoding="utf-8")
    (tmp_path / "token").write_text("unused", encoding="utf-8")
    now = [at("2026-12-01 00:00")]
    daemon = Daemon(load_config(tmp_path / "config.yaml"), clock=lambda: now[0])
    try:
        daemon.pipeline.settings = broken("sms.maintenance", "tr", "{area} bakım {saat}")
        idle = TwilioSms("AC" + "0" * 32, Secret("unused", "test"), "+908502200000", "http://127.0.0.1:9")
        daemon.pipeline.outbox = Outbox(daemon.store, {"sms": idle}, {})  # built, never run: it only counts
        window = MaintenanceWindow("mw-1", (NodeRef("exchange", "sisli"),), at("2026-12-01 01:00"), at("2026-12-01 02:00"))
        daemon.store.put_maintenance(window, "api")
        with caplog.at_level(logging.WARNING, logger="monitord"):
            asyncio.run(daemon.pipeline.tick())
            now[0] += NOTICES + 1
            asyncio.run(daemon.pipeline.tick())
        assert (
            [r.getMessage() for r in caplog.records]
            == [
                "dead letter on arrival: sms mw-1/sms/+90532***0001/maintenance-2h: "  # the number masked
                "template sms.maintenance: no value for {saat}"
            ]
        )
        assert daemon.pipeline.outbox.counts["sms"].dead == 1, "a dead letter on arrival is counted for metrics"
        items = {i.notification.recipient: i.status for i in daemon.store.items()}
        assert items == {"+905320000001": "dead", "+905320000002": "pending", "zeynep@example.com": "pending"}
    finally:
        daemon.store.close()
