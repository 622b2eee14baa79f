"""Confirmation after repair (issue 12 item 4): the question after a restoration SMS (pure), the
answers taken once through the real webhook, and a "no"'s follow-up ticket in the real RT,
linked to the incident's ticket."""

from __future__ import annotations

from dataclasses import replace
from datetime import time
from pathlib import Path

import pytest
from rt_fixtures import new_tracking, rt, rt_server, ticket_item  # noqa: F401  (fixtures)

from lab.isp import build_sample_isp, write_secret
from lab.rt import RtServer
from monitord.config import load_config
from monitord.config.templates import builtin_templates
from monitord.model import Incident, IncidentKind, Line, LineState, NodeRef, Notification, Outcome, Phase, Sample, Status
from monitord.outbox import Outbox
from monitord.pipeline import Pipeline, resume
from monitord.store import InboundRecord, Store
from notices.confirm import LineEvidence, followup, questions, unrecovered
from notices.inbound import confirms, read
from notices.plan import PlanSettings
from notifiers.base import DeliveryError
from notifiers.rt import RequestTracker
from rules.engine import IncidentChange, Step
from tests.outbox_fixtures import store  # noqa: F401  (fixture)
from tests.test_sms_inbound import CUSTOMER, NOW, STRANGER, harness, rows, settled
from tests.track_fixtures import LINE_IDS, OUTAGE, PHONES

SETTINGS = PlanSettings(templates=builtin_templates(), confirm_after=1800.0)
PHONE = "+905321112233"
TRACKING = "ARZ-2026-000123"


def restored(phone: str = PHONE, action: str = "restored", channel: str = "sms") -> tuple[Notification, None]:
    return Notification(f"{TRACKING}/{channel}/{phone}/{action}", channel, phone, action, "", "geri geldi", TRACKING), None  # type: ignore[arg-type]


def test_each_restoration_sms_is_followed_by_one_question() -> None:
    lines = {PHONE: [Line("L1", "Ayşe", "d1", PHONE, language="en")]}
    planned = [
        restored(),
        restored("+905329998877", "line_restored"),
        restored(action="outage"),
        restored("a@b.example", channel="email"),
    ]
    asked = questions(planned, lines, SETTINGS, NOW)
    assert [(n.key, n.action, n.recipient, n.incident, at) for n, at in asked] == [
        (f"{TRACKING}/sms/{PHONE}/confirm", "confirm", PHONE, TRACKING, NOW + 1800),
        (f"{TRACKING}/sms/+905329998877/confirm", "confirm", "+905329998877", TRACKING, NOW + 1800),
    ]
    assert asked[0][0].body == f"Is your service working properly? Please reply 1: Yes, 2: No. Ref: {TRACKING}"
    assert asked[1][0].body.startswith("Hizmetiniz düzgün çalışıyor mu? Lütfen 1: Evet, 2: Hayır")
    assert questions(planned, lines, replace(SETTINGS, confirm_after=None), NOW) == []


def test_a_question_falling_in_quiet_hours_waits_for_their_end() -> None:
    quiet = replace(SETTINGS, quiet_hours=(time(22, 0), time(8, 0)), confirm_after=3600.0)
    evening = 1_796_403_600.0  # 2026-12-04 20:00 in Istanbul: the question would go at 21:00, ...
    assert questions([restored()], {}, quiet, evening)[0][1] == evening + 3600
    assert questions([restored()], {}, quiet, evening + 3 * 3600)[0][1] == evening + 12 * 3600  # ... not at 23:00: at 08:00


@pytest.mark.parametrize(
    ("text", "works"),
    [
        ("1", True),
        ("Evet", True),
        ("yes!", True),
        ("2", False),
        ("Hayır", False),
        ("HAYIR", False),
        ("hayir", False),
        ("No.", False),
        ("3", None),
        ("12", None),
        ("belki", None),
    ],
)
def test_answers_in_both_languages(text: str, works: bool | None) -> None:
    assert confirms(read(text)) is works


def test_the_follow_up_ticket_carries_the_lines_evidence() -> None:
    line = Line(LINE_IDS[3], "Ayşe Yılmaz3", "dslam-bjk-01", PHONES[3])
    state = LineState(NodeRef("line", line.id), Status.DOWN, NOW, ("ifOperStatus down",))
    item, not_before = followup(
        TRACKING, LineEvidence(line, "Beşiktaş Santrali / dslam-bjk-01", state, ("47/47 lines down",)), SETTINGS
    )
    assert (item.key, item.channel, item.recipient, item.action, item.incident, not_before) == (
        f"{TRACKING}/ticket/{line.id}/followup",
        "ticket",
        f"{TRACKING}/{line.id}",
        "followup",
        TRACKING,
        None,
    )
    assert item.subject == f"[{TRACKING}] Onarım sonrası şikâyet: {line.id} Ayşe Yılmaz3"
    assert "Hat durumu: down: ifOperStatus down" in item.body and "- 47/47 lines down" in item.body
    assert PHONES[3] not in item.body and "+90532***0003" in item.body


def test_an_answer_is_taken_once_per_incident_and_phone(store: Store) -> None:  # noqa: F811
    question = Notification(f"{TRACKING}/sms/{PHONE}/confirm", "sms", PHONE, "confirm", "", "1/2?", TRACKING)
    store.commit_step(None, [], [(question, None)], NOW)
    assert store.open_question(PHONE) is None  # queued, not sent: not asked yet
    [item] = store.items("sms")
    assert store.claim(item.id, NOW)
    store.mark_sent(item.id, "SM1", NOW + 1)
    assert store.open_question(PHONE) == (TRACKING, "confirm")
    assert store.record_inbound(InboundRecord("SM" + "1" * 32, PHONE, "no", NOW + 2), None, [], NOW + 2, (TRACKING, False))
    assert store.answer(TRACKING, PHONE) is False and store.open_question(PHONE) is None
    assert store.record_inbound(InboundRecord("SM" + "2" * 32, PHONE, "yes", NOW + 3), None, [], NOW + 3, (TRACKING, True))
    assert store.answer(TRACKING, PHONE) is False  # the first answer stands


def test_a_question_twilio_took_before_a_crash_is_answered_before_the_outbox_knows(store: Store) -> None:  # noqa: F811
    """kill -9 after Twilio took the question and before its `sent` mark (found by
    tests/test_field_trial.py): the customer's "no" is an answer, not text, while the restarted
    outbox still waits `settle` seconds to ask Twilio whether it arrived."""
    question = Notification(f"{TRACKING}/sms/{PHONE}/confirm", "sms", PHONE, "confirm", "", "1/2?", TRACKING)
    failed = Notification(f"ARZ-2026-000200/sms/{PHONE}/survey", "sms", PHONE, "survey", "", "1-5?", "ARZ-2026-000200")
    store.commit_step(None, [], [(question, None), (failed, None)], NOW)
    [item, dead] = store.items("sms")
    assert store.open_question(PHONE) is None  # queued, never tried: it cannot have reached the phone
    assert store.claim(dead.id, NOW) and store.claim(item.id, NOW + 1)
    store.mark_dead(dead.id, "HTTP 400: not a mobile number")  # refused: it reached no one
    assert store.open_question(PHONE) == (TRACKING, "confirm")  # sending: Twilio may have it
    assert store.requeue_sending("sms", NOW + 10) == 1  # the restart: pending again, tried once
    assert store.open_question(PHONE) == (TRACKING, "confirm")
    assert store.record_inbound(InboundRecord("SM" + "1" * 32, PHONE, "no", NOW + 2), None, [], NOW + 2, (TRACKING, False))
    assert store.answer(TRACKING, PHONE) is False and store.open_question(PHONE) is None
    survey = Notification(f"ARZ-2026-000300/sms/{PHONE}/survey", "sms", PHONE, "survey", "", "1-5?", "ARZ-2026-000300")
    store.commit_step(None, [], [(survey, None)], NOW + 3)
    [asking] = [i for i in store.items("sms") if i.notification.key == survey.key]
    assert store.claim(asking.id, NOW + 4)
    assert store.open_question(PHONE) == ("ARZ-2026-000300", "survey")  # the survey the same way


async def asked(h: object, phone: str) -> None:
    """The question, sent through the lab's Twilio as the outbox sends it."""
    daemon = h.daemon  # type: ignore[attr-defined]
    question = Notification(f"{OUTAGE.tracking}/sms/{phone}/confirm", "sms", phone, "confirm", "", "1/2?", OUTAGE.tracking)
    daemon.store.commit_step(None, [], [(question, None)], NOW)
    daemon.outbox.wake()
    await settled(h, phone, 1)  # type: ignore[arg-type]


async def test_a_no_opens_one_follow_up_ticket_and_a_yes_closes_the_loop(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await asked(h, CUSTOMER)
        await h.post("Hayır", sender=CUSTOMER)
        await h.post("2", sender=CUSTOMER)  # answered already: changes nothing (help, once today)
        replies = await settled(h, CUSTOMER, 3)
        [ticket] = h.daemon.store.items("ticket")
        await asked(h, PHONES[5])
        await h.post("evet", sender=PHONES[5])
        yes = await settled(h, PHONES[5], 2)
        await h.post("1", sender=STRANGER)  # never asked
        (stranger,) = await settled(h, STRANGER, 1)
        store = h.daemon.store
        assert (store.answer(OUTAGE.tracking, CUSTOMER), store.answer(OUTAGE.tracking, PHONES[5])) == (False, True)
        assert rows(store, "sms_answers") == 2 and len(store.items("ticket")) == 1
    bodies = sorted(m.body for m in replies[1:])
    assert bodies[0].startswith("Arıza durumu için DURUM")  # the second "no" was text like any other
    assert bodies[1] == f"Üzgünüz. Hattınız için yeni bir kayıt açtık, ekiplerimiz inceleyecek. Takip no: {OUTAGE.tracking}"
    n = ticket.notification
    assert (n.recipient, n.action, n.incident) == (f"{OUTAGE.tracking}/{LINE_IDS[3]}", "followup", OUTAGE.tracking)
    assert f"Abone: {LINE_IDS[3]}" in n.body and "Hat durumu: down: no sync" in n.body and "47/47 lines down" in n.body
    assert yes[1].body == f"Teşekkürler, kaydınızı kapattık. Takip no: {OUTAGE.tracking}"
    assert stranger.body.startswith("Arıza durumu için DURUM")


async def test_the_follow_up_ticket_in_rt_refers_to_the_incidents_ticket(rt: RequestTracker, rt_server: RtServer) -> None:  # noqa: F811
    tracking = new_tracking()
    line = Line("S100001", "Ayşe Yılmaz", "dslam-1", PHONE)
    state = LineState(NodeRef("line", line.id), Status.DOWN, NOW, ("no sync",))
    item, _ = followup(tracking, LineEvidence(line, "Şişli", state, ("1/1 lines down",)), SETTINGS)
    with pytest.raises(DeliveryError) as caught:
        await rt.send(item)  # the incident's ticket is not there yet: its create may be queued behind
    assert caught.value.retryable
    parent = await rt.send(ticket_item(tracking, "create"))
    child = await rt.send(item)
    assert await rt.send(item) == child != parent  # again (a retry after a crash): the same ticket
    links = rt_server.get(f"ticket/{child}")["_hyperlinks"]
    assert any(link["ref"] == "refers-to" and link["_url"].endswith(f"/ticket/{parent}") for link in links), links
    assert rt_server.get(f"ticket/{child}")["Subject"] == item.subject


def test_a_waiting_question_dies_when_the_fault_comes_back_and_kills_nothing_itself(store: Store) -> None:  # noqa: F811
    later = NOW + 3600  # quiet hours: the restoration and its question both wait
    told = Notification(f"{TRACKING}/sms/{PHONE}/restored", "sms", PHONE, "restored", "", "geri geldi", TRACKING)
    question = Notification(f"{TRACKING}/sms/{PHONE}/confirm", "sms", PHONE, "confirm", "", "1/2?", TRACKING)
    store.commit_step(None, [], [(told, later), (question, later)], NOW)
    assert {i.notification.action: i.status for i in store.items("sms")} == {"restored": "pending", "confirm": "pending"}
    again = Notification(f"{TRACKING}/sms/{PHONE}/outage/2", "sms", PHONE, "outage", "", "yine arıza", TRACKING)
    store.commit_step(None, [], [(again, None)], NOW + 60)
    status = {i.notification.action: (i.status, i.last_error) for i in store.items("sms")}
    assert status["confirm"] == status["restored"] == ("dead", "superseded by a newer notice of its incident")
    assert status["outage"] == ("pending", None)


async def test_the_pipeline_asks_after_each_restoration_sms_and_follows_up_what_the_probes_see_failing(tmp_path: Path) -> None:
    twilio = {"kind": "twilio", "account_sid": "AC" + "0" * 32, "from": "+908502200000", "confirm_after": "30m"}
    twilio["auth_token"] = write_secret(tmp_path, "twilio.token", "lab-auth-token")  # type: ignore[assignment]
    notifiers = {"sms": twilio, "tickets": {"kind": "webhook", "url": "http://127.0.0.1:9/tickets"}}  # never sent here
    extra = {"tracking": {"listen": "127.0.0.1:0", "public_url": "https://hooks.isp.example"}, "notifiers": notifiers}
    config = load_config(build_sample_isp(tmp_path, base="127.6.48", extra=extra).config)
    dslam = min(d for d, device in config.topology.devices.items() if device.kind == "dslam")
    lines = frozenset(i for i, line in config.topology.lines.items() if line.device == dslam)
    phones = {config.topology.lines[i].phone for i in lines} - {None}
    noon = 1_796_374_800.0  # 2026-12-04 12:00 in Istanbul: no quiet hours
    outage = Incident(TRACKING, IncidentKind.OUTAGE, NodeRef("device", dslam), Phase.OPEN, noon, noon, lines, ("down",))
    resolved = replace(outage, phase=Phase.RESOLVED, updated_at=noon + 600, resolved_at=noon + 600)
    store, clock = Store.open(config.state_file), [noon]
    try:
        pipeline = Pipeline(config, resume(config, store), store, Outbox(store, {}, {}), clock=lambda: clock[0], recheck=print)
        await pipeline._commit(Step(incidents=(IncidentChange(outage, "opened", lines),)), noon)
        assert [i for i in store.items("sms") if i.notification.action == "confirm"] == []
        await pipeline._commit(Step(incidents=(IncidentChange(resolved, "resolved"),)), noon + 600)
        asked = [i for i in store.items("sms") if i.notification.action == "confirm"]
        told = {i.notification.recipient for i in store.items("sms") if i.notification.action == "restored"}
        failing = min(i for i in lines if config.topology.lines[i].phone)  # the probes see it out of sync again ...
        clock[0] = noon + 1200
        await pipeline.ingest([Sample(NodeRef("line", failing), "snmp:adsl", noon + 1200, Outcome.OK, {"in_sync": 0.0})])
        assert pipeline.engine.line_state(failing).status is Status.DOWN
        clock[0] = noon + 600 + 1800  # ... when its question comes due
        await pipeline.tick()
        await pipeline.tick()  # looked at once
        followups = [i.notification for i in store.items("ticket") if i.notification.action == "followup"]
    finally:
        store.close()
    assert phones and {i.notification.recipient for i in asked} == told == phones
    assert {i.not_before for i in asked} == {noon + 600 + 1800}
    assert all(i.notification.key == f"{TRACKING}/sms/{i.notification.recipient}/confirm" for i in asked)
    assert [(n.key, n.recipient) for n in followups] == [(f"{TRACKING}/ticket/{failing}/followup", f"{TRACKING}/{failing}")]
    assert (
        "problar bu hattı hâlâ arızalı görüyor" in followups[0].body
        and "Hat durumu: down: snmp:adsl: not in sync" in followups[0].body
    )


@pytest.mark.parametrize(
    ("status", "ticket"),
    [(Status.DOWN, True), (Status.UNREACHABLE, True), (Status.DEGRADED, True), (Status.CPE, True)]
    + [(Status.OK, False), (Status.UNKNOWN, False), (Status.MAINTENANCE, False)],
)
def test_a_line_the_probes_do_not_see_recovered_gets_its_ticket_unasked(status: Status, ticket: bool) -> None:
    mine, other = Line("S1", "Ayşe", "d1", PHONE), Line("S2", "Ali", "d1", PHONE)  # S2 was not in the incident
    incident = Incident(TRACKING, IncidentKind.OUTAGE, NodeRef("device", "d1"), Phase.RESOLVED, NOW, NOW, frozenset({"S1"}), ())
    tickets = unrecovered([(incident, [mine, other])], lambda line: LineState(NodeRef("line", line), status, NOW), str, SETTINGS)
    assert [n.key for n, _ in tickets] == ([f"{TRACKING}/ticket/S1/followup"] if ticket else [])
