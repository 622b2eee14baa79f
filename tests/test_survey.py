"""Satisfaction survey (issue 12 item 5): after a "yes" to the repair question, "1 to 5?"; the
score is kept once per incident and phone and counted per region, on both engines, through the
real webhook signed as Twilio signs, and exported to /metrics. A number is read by the last
question sent and not answered; a score out of range, a word, a second answer or an answer to a
question never asked changes nothing."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from lab.isp import build_sample_isp
from lab.twilio import TwilioLab
from monitord.config import load_config
from monitord.config.templates import builtin_templates
from monitord.daemon import Daemon
from monitord.demo import until
from monitord.model import Incident, IncidentKind, Line, NodeRef, Notification, Phase
from monitord.noc_metrics import answers
from monitord.pgstore import migrate_postgres, postgres_session
from monitord.sms_inbound import answer_region
from monitord.store import MIGRATIONS, PG_MIGRATIONS, InboundRecord, Store, migrate
from notices.inbound import Facts, Question, answer, read, score_of
from notices.plan import PlanSettings
from tests.blocks import own_base
from tests.outbox_fixtures import ENGINES, state_at, store, twilio_section, version_before  # noqa: F401  (fixture)
from tests.test_sms_inbound import CUSTOMER, NOW, PUBLIC, STRANGER, Harness, harness, rows, settled
from tests.track_fixtures import OUTAGE, topology

SETTINGS = PlanSettings(templates=builtin_templates(), confirm_after=1800.0, survey=True)
PHONE = "+905321112233"
TRACKING = "ARZ-2026-000123"
SID = "SM" + "e" * 32
SURVEY = "Teşekkürler. Onarımdan memnuniyetinizi 1 (hiç) ile 5 (çok) arası bir sayıyla puanlar mısınız? Takip no: "
THANKS = "Puanınız için teşekkür ederiz. Takip no: "
HELP = "Arıza durumu için DURUM"


def facts(question: Question | None) -> Facts:
    return Facts(SID, PHONE, NOW, [Line("L1", "Ayşe", "d1", PHONE)], question=question)


@pytest.mark.parametrize(
    ("text", "question", "survey", "works", "score", "said"),
    [
        ("1", "confirm", True, True, None, SURVEY),  # the survey, not the plain thanks
        ("Evet", "confirm", True, True, None, SURVEY),
        ("1", "confirm", False, True, None, "Teşekkürler, kaydınızı kapattık."),
        ("2", "confirm", True, False, None, "Üzgünüz."),  # no survey after a "no"
        ("1", "survey", True, None, 1, THANKS),  # "1" to the survey is a score, not a "yes"
        ("2", "survey", True, None, 2, THANKS),
        ("4", "survey", True, None, 4, THANKS),
        ("5!", "survey", True, None, 5, THANKS),
        ("4", "confirm", True, None, None, HELP),  # a score to "does it work?": text like any other
        ("7", "survey", True, None, None, HELP),
        ("0", "survey", True, None, None, HELP),
        ("45", "survey", True, None, None, HELP),
        ("abc", "survey", True, None, None, HELP),
        ("evet", "survey", True, None, None, HELP),  # a word is no score
        ("4", None, True, None, None, HELP),  # no question open
        ("1", None, True, None, None, HELP),
    ],
)
def test_a_number_is_read_by_the_question_it_answers(
    text: str, question: str | None, survey: bool, works: bool | None, score: int | None, said: str
) -> None:
    asked_now = Question(TRACKING, question) if question else None  # type: ignore[arg-type]
    reply = answer(read(text), facts(asked_now), replace(SETTINGS, survey=survey))
    assert reply.works == (None if works is None else (TRACKING, works))
    assert reply.score == (None if score is None else (TRACKING, score))
    [(item, not_before)] = reply.replies
    assert item.body.startswith(said) and not_before is None and reply.opted_out is None
    if said == SURVEY:  # asked once per incident and phone, whatever message brought it
        assert (item.key, item.action, item.incident) == (f"{TRACKING}/sms/{PHONE}/survey", "survey", TRACKING)


@pytest.mark.parametrize("text", ["6", "12", "٤", "-3", "3.5", "", "three", "dört"])
def test_only_one_digit_from_1_to_5_is_a_score(text: str) -> None:
    assert score_of(read(text)) is None


def test_a_full_width_digit_is_folded_to_its_plain_one() -> None:
    assert score_of(read("４")) == 4 and score_of(read(" 3 puan")) == 3


def test_an_answer_counts_in_the_region_of_the_line_the_incident_affected() -> None:
    place = topology()
    home, office = Line("BJK000001", "Ayşe", "dslam-bjk-01", PHONE), Line("X1", "Ayşe", "gone-device", PHONE)
    incident = Incident(
        TRACKING, IncidentKind.OUTAGE, NodeRef("line", home.id), Phase.RESOLVED, NOW, NOW, frozenset({home.id}), ()
    )
    assert answer_region(incident, [office, home], place) == "ist"
    assert answer_region(None, [home, office], place) == "ist"  # the incident was pruned: the phone's first line
    assert answer_region(None, [office], place) == answer_region(incident, [], place) == ""


def test_the_families_have_every_region_from_zero_and_the_mean_in_points() -> None:
    tally = {("ist", "works"): 3, ("ist", "not_fixed"): 1, ("ist", "4"): 2, ("ist", "5"): 1, ("gone", "works"): 1}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in answers(tally, ["ist", "ank"]) for s in f.samples}
    assert samples[("monitord_repair_confirmations_total", (("answer", "works"), ("region", "ist")))] == 3
    assert samples[("monitord_repair_confirmations_total", (("answer", "not_fixed"), ("region", "ank")))] == 0
    assert samples[("monitord_repair_confirmations_total", (("answer", "works"), ("region", "gone")))] == 1  # left the inventory
    assert samples[("monitord_survey_responses_total", (("region", "ist"), ("score", "4")))] == 2
    assert samples[("monitord_survey_score_points_total", (("region", "ist"),))] == 13
    assert samples[("monitord_survey_score_points_total", (("region", "ank"),))] == 0
    assert (
        sum(
            v
            for (name, labels), v in samples.items()
            if name == "monitord_survey_responses_total" and ("region", "ank") in labels
        )
        == 0
    )
    assert len([k for k in samples if k[0] == "monitord_survey_responses_total"]) == 3 * 5


# --- the store, both engines ---------------------------------------------------------------------


def sent(store: Store, tracking: str, action: str, at: float, phone: str = PHONE) -> None:
    """A question as the outbox leaves it once Twilio took it."""
    question = Notification(f"{tracking}/sms/{phone}/{action}", "sms", phone, action, "", "?", tracking)
    store.commit_step(None, [], [(question, None)], at)
    [item] = [i for i in store.items("sms") if i.notification.key == question.key]
    assert store.claim(item.id, at)
    store.mark_sent(item.id, f"SM{item.id}", at)


def message(n: int, command: str, at: float) -> InboundRecord:
    return InboundRecord(f"SM{n:032x}", PHONE, command, at)


def test_a_score_is_taken_once_per_incident_and_phone_and_counted(store: Store) -> None:  # noqa: F811
    sent(store, TRACKING, "confirm", NOW)
    assert store.record_inbound(message(1, "number 1", NOW + 1), None, [], NOW + 1, (TRACKING, True), None, "ist")
    assert store.open_question(PHONE) is None  # the survey is not sent yet: a "4" now is text
    sent(store, TRACKING, "survey", NOW + 2)
    assert store.open_question(PHONE) == (TRACKING, "survey")
    assert store.record_inbound(message(2, "number 4", NOW + 3), None, [], NOW + 3, None, (TRACKING, 4), "ist")
    assert store.score(TRACKING, PHONE) == 4 and store.open_question(PHONE) is None
    assert store.record_inbound(message(3, "number 2", NOW + 4), None, [], NOW + 4, None, (TRACKING, 2), "ist")  # raced
    assert not store.record_inbound(message(2, "number 5", NOW + 5), None, [], NOW + 5, None, (TRACKING, 5), "ist")  # replay
    assert store.score(TRACKING, PHONE) == 4
    assert store.answer_tally() == {("ist", "works"): 1, ("ist", "4"): 1}


def test_the_last_question_sent_is_the_one_a_number_answers(store: Store) -> None:  # noqa: F811
    other = "ARZ-2026-000200"
    sent(store, TRACKING, "confirm", NOW)
    store.record_inbound(message(1, "yes", NOW + 1), None, [], NOW + 1, (TRACKING, True), None, "ist")
    sent(store, TRACKING, "survey", NOW + 2)
    sent(store, other, "confirm", NOW + 3)  # another repair's question, after the survey
    assert store.open_question(PHONE) == (other, "confirm")
    store.record_inbound(message(2, "no", NOW + 4), None, [], NOW + 4, (other, False), None, "ist")
    assert store.open_question(PHONE) == (TRACKING, "survey")  # the survey, still unanswered
    assert store.answer_tally() == {("ist", "works"): 1, ("ist", "not_fixed"): 1}


def test_the_counts_outlive_the_answers_the_pruning_forgets(store: Store) -> None:  # noqa: F811
    gone = Incident(TRACKING, IncidentKind.OUTAGE, NodeRef("line", "L1"), Phase.RESOLVED, NOW, NOW, frozenset({"L1"}), ())
    gone = replace(gone, resolved_at=NOW)
    store.commit_step(None, [gone], [], NOW)
    sent(store, TRACKING, "confirm", NOW)
    store.record_inbound(message(1, "yes", NOW + 1), None, [], NOW + 1, (TRACKING, True), None, "ist")
    sent(store, TRACKING, "survey", NOW + 2)
    store.record_inbound(message(2, "number 5", NOW + 3), None, [], NOW + 3, None, (TRACKING, 5), "ist")
    store.prune(NOW + 10, NOW + 10, NOW + 10)
    assert store.score(TRACKING, PHONE) is None and store.answer(TRACKING, PHONE) is None
    assert store.answer_tally() == {("ist", "works"): 1, ("ist", "5"): 1}


@pytest.mark.parametrize("engine", ENGINES)
def test_a_database_of_the_version_before_takes_scores(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    where = state_at(engine, request, tmp_path)
    if isinstance(where, Path):
        with contextlib.closing(sqlite3.connect(where)) as db:
            migrate(db, version_before(MIGRATIONS, "CREATE TABLE survey_scores"))
    else:
        with contextlib.closing(postgres_session(where)) as session:
            migrate_postgres(session, PG_MIGRATIONS, target=version_before(PG_MIGRATIONS, "CREATE TABLE survey_scores"))
    with contextlib.closing(Store.open(where)) as s:
        sent(s, TRACKING, "survey", NOW)
        assert s.record_inbound(message(1, "number 3", NOW + 1), None, [], NOW + 1, None, (TRACKING, 3), "ist")
        assert s.score(TRACKING, PHONE) == 3 and s.answer_tally() == {("ist", "3"): 1}


def test_a_score_out_of_range_never_reaches_the_table(store: Store) -> None:  # noqa: F811
    with pytest.raises(Exception, match="(?i)check"):
        store.record_inbound(message(1, "number 7", NOW), None, [], NOW, None, (TRACKING, 7), "ist")
    assert store.answer_tally() == {} and store.inbound(message(1, "", NOW).sid) is None  # rolled back whole


# --- the webhook, signed as Twilio signs ---------------------------------------------------------


async def test_yes_then_a_score_through_the_webhook_and_nothing_from_bad_answers(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        h.daemon.settings = SETTINGS
        await h.post("4", sender=CUSTOMER)  # no question sent yet: text (the help, once today)
        await settled(h, CUSTOMER, 1)
        question = Notification(
            f"{OUTAGE.tracking}/sms/{CUSTOMER}/confirm", "sms", CUSTOMER, "confirm", "", "1/2?", OUTAGE.tracking
        )
        h.daemon.store.commit_step(None, [], [(question, None)], NOW)
        h.daemon.outbox.wake()
        await settled(h, CUSTOMER, 2)
        await h.post("1", sender=CUSTOMER)
        survey = (await settled(h, CUSTOMER, 3))[-1]
        for bad in ("7", "abc", "evet", "45"):  # the survey is open: none of these is a score
            await h.post(bad, sender=CUSTOMER)
        await h.post("4", sender=CUSTOMER)
        thanks = (await settled(h, CUSTOMER, 4))[-1]
        await h.post("2", sender=CUSTOMER)  # answered already: text like any other, and the help went out today
        await h.post("5", sender=STRANGER)  # never asked anything
        (stranger,) = await settled(h, STRANGER, 1)
        store = h.daemon.store
        messages = h.to(CUSTOMER)
        assert (store.answer(OUTAGE.tracking, CUSTOMER), store.score(OUTAGE.tracking, CUSTOMER)) == (True, 4)
        assert store.answer_tally() == {("ist", "works"): 1, ("ist", "4"): 1}
        assert rows(store, "sms_inbound") == 9 and rows(store, "survey_scores") == 1
    assert (survey.body, thanks.body) == (SURVEY + OUTAGE.tracking, THANKS + OUTAGE.tracking)
    assert len(messages) == 4 and messages[0].body.startswith(HELP) and stranger.body.startswith(HELP)


async def test_the_daemon_counts_the_answers_in_its_metrics_and_reads_them_back_at_start(tmp_path: Path) -> None:
    """The whole daemon (no SNMP agents behind the sample ISP: what matters is the webhook and /metrics)."""
    async with TwilioLab() as lab:
        sms = {**twilio_section(tmp_path, lab), "confirm_after": "30m", "survey": True}
        extra = {"tracking": {"listen": "127.0.0.1:0", "public_url": PUBLIC}, "notifiers": {"sms": sms}}
        build_sample_isp(tmp_path, base=own_base(211), extra=extra)
        config = load_config(tmp_path / "config.yaml")
        line = next(line for line in config.topology.lines.values() if line.phone)
        phone, region = str(line.phone), config.topology.exchanges[config.topology.devices[line.device].exchange].region
        for attempt in range(2):  # the second start reads the counts back from the store
            daemon = Daemon(config)
            stop = asyncio.Event()
            task = asyncio.create_task(daemon.run(stop))
            try:
                await until(lambda: daemon.ready.is_set() or task.done(), 30, "the daemon to start")  # noqa: B023
                h = Harness(f"http://127.0.0.1:{daemon.tracking_port}", lab, None)  # type: ignore[arg-type]
                if attempt == 0:
                    await _asked_and_scored(h, daemon, phone)
                scrape = await _metrics_once(daemon, f'monitord_survey_responses_total{{region="{region}",score="4"}} 1.0')
            finally:
                stop.set()
                await task
            assert f'monitord_repair_confirmations_total{{answer="works",region="{region}"}} 1.0' in scrape
            assert f'monitord_survey_score_points_total{{region="{region}"}} 4.0' in scrape
            assert re.search(r'monitord_survey_responses_total\{region="[^"]+",score="5"\} 0\.0', scrape)


async def _asked_and_scored(h: Harness, daemon: Daemon, phone: str) -> None:
    tracking = "ARZ-2026-900001"
    question = Notification(f"{tracking}/sms/{phone}/confirm", "sms", phone, "confirm", "", "1/2?", tracking)
    async with daemon.store.turn:
        daemon.store.commit_step(None, [], [(question, None)], daemon.clock())
    daemon.outbox.wake()
    await settled(h, phone, 1)
    await h.post("evet", sender=phone)
    await settled(h, phone, 2)
    await h.post("4", sender=phone)
    await settled(h, phone, 3)


async def _metrics_once(daemon: Daemon, expected: str) -> str:
    """/metrics once it shows `expected` (a rendering is served for a couple of seconds)."""
    async with aiohttp.ClientSession() as session:
        for _ in range(50):
            async with session.get(f"http://127.0.0.1:{daemon.http_port}/metrics") as response:
                scrape = await response.text()
            if expected in scrape:
                return scrape
            await asyncio.sleep(0.2)
    raise AssertionError(f"{expected} not in /metrics:\n{scrape}")
