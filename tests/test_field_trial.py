"""The field trial of issue 12, measured: the customer's whole loop through the real daemon (a
subprocess), the real Request Tracker, the lab's Twilio and its ISP, with a kill -9 at each step.

A DSLAM goes silent -> one SMS with the tracking number to each of its customers -> the helpdesk
sets the ticket's Stage in RT -> one stage SMS each, and the tracking page says so -> the DSLAM
answers again -> one restoration SMS and one "does it work?" each -> a customer answers "Hayır"
-> one follow-up ticket in RT referring to the incident's -> two customers say yes and score the
repair -> /metrics counts it all. The daemon is SIGKILLed right after each step and started
again on the same state file: every step must still happen once, none twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp
from rt_fixtures import rt_server  # noqa: F401  (fixture)
from twilio.request_validator import RequestValidator

from lab.isp import write_config, write_secret
from lab.rt import RtServer
from lab.world import World
from monitord.config import load_config
from monitord.demo import until
from tests.blocks import own_base
from tests.ops_fixtures import DaemonProcess, daemons, device_ok, first_dslam, short_dir, wait_async, worlds  # noqa: F401
from tests.test_sms_inbound import new_sid, twilio_form

PUBLIC = "https://hooks.isp.example"  # the URL Twilio signs, in front of the tracking listener
PREFIX = "SAHA"  # tracking numbers no other test writes into the session's RT
TRACK_PORT = re.compile(r"tracking page on http://127\.0\.0\.1:(\d+)/track/")
NUMBER = re.compile(rf"{PREFIX}-\d{{4}}-\d{{6}}")
STAGES = [
    {"id": "detected", "tr": "Arıza tespit edildi", "en": "Fault detected"},
    {"id": "field_team", "tr": "Saha ekibinde", "en": "With the field team", "helpdesk": ["saha", "field"], "sms": True},
    {"id": "at_exchange", "tr": "Santralde işlemde", "en": "Being worked on at the exchange", "helpdesk": ["santral"]},
    {"id": "recovering", "tr": "Onarım doğrulanıyor", "en": "Verifying the repair"},
    {"id": "resolved", "tr": "Çözüldü", "en": "Resolved"},
]
# Each notice a customer gets, told apart by words of its text in either language.
NOTICES: dict[str, tuple[str, str]] = {
    "outage": ("internet arızası var", "There is an internet outage"),
    "stage": ("arızası: Saha ekibinde.", "fault: With the field team."),
    "restored": ("arıza giderildi", "is fixed and your service is back"),
    "confirm": ("Hizmetiniz düzgün çalışıyor mu?", "Is your service working properly?"),
    "confirm_no": ("Üzgünüz. Hattınız için yeni bir kayıt", "Sorry. We opened a new record"),
    "survey": ("Onarımdan memnuniyetinizi", "How satisfied are you with the repair?"),
    "thanks": ("Puanınız için teşekkür", "Thank you for your score"),
    "help": ("Arıza durumu için DURUM", "For a fault's status"),  # a reply not understood: never, here
}


def notice_of(body: str) -> str:
    found = [name for name, words in NOTICES.items() if any(w in body for w in words)]
    assert len(found) == 1, f"not one known notice: {body!r}"
    return found[0]


def in_flight(world: World, action: str) -> list[str]:
    """The recipients of `action` SMS left `sending` in the state file (the daemon dead): Twilio
    may have taken them, the daemon does not know yet."""
    with contextlib.closing(sqlite3.connect(world.isp.root / "state" / "monitord.db")) as db:
        rows = db.execute("SELECT recipient FROM outbox WHERE action = ? AND status = 'sending' ORDER BY id", (action,))
        return [str(r[0]) for r in rows]


class Trial:
    """The daemon of the moment, started again after each kill on the same config and state."""

    def __init__(self, world: World, spawn: Callable[..., Any], rt: RtServer) -> None:
        self.world, self.spawn, self.rt = world, spawn, rt
        self.daemon: DaemonProcess | None = None
        self.track_port = 0
        self.kills: list[tuple[str, int]] = []  # (the point, SMS sent by then)

    async def start(self) -> DaemonProcess:
        self.daemon = await self.spawn(self.world.config)
        found = TRACK_PORT.search(self.daemon.log())
        assert found, self.daemon.log()
        self.track_port = int(found.group(1))
        return self.daemon

    async def kill_and_restart(self, point: str, before: Callable[[], None] = lambda: None) -> None:
        """SIGKILL, `before` (the daemon dead), start again."""
        assert self.daemon is not None
        self.daemon.proc.send_signal(signal.SIGKILL)
        assert self.daemon.proc.wait(timeout=10) == -signal.SIGKILL
        self.kills.append((point, len(self.world.twilio.messages)))
        before()
        await self.start()

    def sms(self) -> list[tuple[str, str, str]]:
        """(phone, notice, body) of every SMS the lab's Twilio took."""
        return [(m.to, notice_of(m.body), m.body) for m in self.world.twilio.messages]

    def told(self, notice: str) -> Counter[str]:
        return Counter(phone for phone, name, _ in self.sms() if name == notice)

    async def all_told(self, notice: str, phones: set[str], timeout: float = 60) -> None:
        await until(lambda: set(self.told(notice)) >= phones, timeout, f"every {notice} SMS")
        self.assert_once_each()

    def assert_once_each(self) -> None:
        """No (phone, notice) twice, whatever was killed when."""
        twice = [k for k, n in Counter((p, name) for p, name, _ in self.sms()).items() if n > 1]
        assert not twice, f"sent twice after kills {self.kills}: {twice}"

    async def post_sms(self, sender: str, text: str) -> int:
        """An inbound SMS as Twilio posts it, signed for the public URL."""
        form = twilio_form(text, sender, new_sid())
        signature = RequestValidator(self.world.twilio.auth_token).compute_signature(PUBLIC + "/sms/inbound", form)
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{self.track_port}/sms/inbound"
            async with session.post(url, data=form, headers={"X-Twilio-Signature": signature}) as response:
                return response.status

    async def track(self, tracking: str) -> tuple[dict[str, Any], str]:
        async with aiohttp.ClientSession() as session:
            base = f"http://127.0.0.1:{self.track_port}/track/{tracking}"
            async with session.get(base + ".json") as response:
                assert response.status == 200
                page = await response.json(content_type=None)
            async with session.get(base) as response:
                assert response.status == 200
                return page, await response.text()

    def tickets(self, tracking: str) -> list[dict[str, Any]]:
        """RT's tickets tagged with exactly `tracking` (an incident's, or `<incident>/<line>`)."""
        query = f"'CF.{{Tracking Number}}'='{tracking}'"
        page = self.rt.get("tickets?" + urlencode({"query": query, "fields": "Status,Subject,Queue"}))
        return page["items"]  # type: ignore[index]

    def all_tickets(self) -> list[dict[str, Any]]:
        query = f"'CF.{{Tracking Number}}' LIKE '{PREFIX}-'"
        page = self.rt.get("tickets?" + urlencode({"query": query, "per_page": "100"}))
        return page["items"]  # type: ignore[index]

    async def metrics(self) -> str:
        assert self.daemon is not None
        status, text = await self.daemon.get("/metrics")
        assert status == 200
        return text


async def test_the_field_trial_with_a_kill_9_after_every_step(worlds, daemons, rt_server: RtServer) -> None:  # noqa: F811
    started = time.monotonic()
    world = await worlds(own_base(120), regions=1, exchanges_per_region=1, with_cmts=False)
    root = world.isp.root
    # 4 in flight at once; each question 8 s after its restoration SMS, so that the last ones are
    # still to come once every restoration is out (the kill while questions go out needs one)
    sms = {"confirm_after": "8s", "survey": True, "rate": 10}
    rt = {
        "kind": "rt",
        "url": rt_server.url,
        "queue": rt_server.queue,
        "token": write_secret(root, "rt.token", rt_server.token.reveal()),
        "retry": {"max_backoff": "2s", "probe_every": "1s"},
        "stage_sync": {"every": "1s", "custom_field": "Stage"},
    }
    rules = {"stable": "3s"}
    tracking = {"listen": "127.0.0.1:0", "public_url": PUBLIC, "rate": 100, "burst": 100}
    write_config(root, {"sms": sms, "tickets": rt}, tracking=tracking, stages=STAGES, tracking_prefix=PREFIX, rules=rules)
    topology = load_config(world.config).topology
    dslam, behind = first_dslam(world)
    phones = {topology.lines[i].phone for i in behind if topology.lines[i].phone}
    turkish = sorted(i for i in behind if topology.lines[i].phone and topology.lines[i].language == "tr")
    asking: list[str] = []  # the phones whose question was in flight at a kill
    region = world.isp.devices[dslam].region
    trial = Trial(world, daemons, rt_server)
    daemon = await trial.start()
    await wait_async(lambda: device_ok(daemon, behind[0]), 60, "the DSLAM seen ok")

    # 1. The outage: killed while its SMS go out (slowly).
    world.twilio.delay = 0.2
    world.faults.silence(*world.isp.addresses_under("device", dslam))
    await until(lambda: world.twilio.messages, 60, "the first outage SMS")
    await trial.kill_and_restart("outage SMS going out")
    assert trial.kills[-1][1] < len(phones), "the kill was to land while the outage SMS went out"
    world.twilio.delay = 0.0
    await trial.all_told("outage", phones)
    (number,) = {n for _, _, body in trial.sms() for n in NUMBER.findall(body)}
    assert all(number in body for _, _, body in trial.sms())
    await until(lambda: trial.tickets(number), 30, "the incident's ticket in RT")
    (ticket,) = trial.tickets(number)
    assert number in ticket["Subject"]
    page, _ = await trial.track(number)
    assert page["stage"]["id"] == "detected"

    # 2. The helpdesk sends the field team: killed right after the change in RT.
    rt_server.put(f"ticket/{ticket['id']}", {"CustomFields": {"Stage": "Saha"}})
    await trial.kill_and_restart("stage set in RT")
    await trial.all_told("stage", phones)
    assert all(number in body for _, name, body in trial.sms() if name == "stage")
    tr_phones = {topology.lines[i].phone for i in turkish}
    assert all("Saha ekibinde" in body for p, name, body in trial.sms() if name == "stage" and p in tr_phones)
    page, html = await trial.track(number)
    assert page["stage"]["id"] == "field_team" and 'id="stage">Saha ekibinde<' in html

    # 3. The repair: killed as the first restoration SMS is out, then as the questions go out.
    world.twilio.delay = 0.2
    world.faults.restore_all()
    await until(lambda: trial.told("restored"), 90, "the first restoration SMS")
    await trial.kill_and_restart("restoration SMS going out")
    assert trial.kills[-1][1] < 3 * len(phones), "the kill was to land while the restoration SMS went out"
    await trial.all_told("restored", phones)
    world.twilio.delay = 1.0  # Twilio slow to answer: a question is taken, its answer not back at the kill
    asked_before = sum(trial.told("confirm").values())
    await until(lambda: sum(trial.told("confirm").values()) > asked_before, 30, "a question taken slowly")
    await trial.kill_and_restart(
        "questions going out", before=lambda: asking.extend(p for p in in_flight(world, "confirm") if p in trial.told("confirm"))
    )
    world.twilio.delay = 0.0
    await trial.all_told("confirm", phones, 30)
    assert all(number in body for _, name, body in trial.sms() if name in ("restored", "confirm"))
    page, html = await trial.track(number)
    assert page["stage"]["id"] == "resolved" and 'id="stage">Çözüldü<' in html
    await until(lambda: trial.tickets(number)[0]["Status"] == "resolved", 30, "the incident's ticket resolved")

    # 4. A customer whose question was in flight at the kill says it does not work, before the
    # restarted daemon has found out that Twilio took the question; killed once the webhook said 200.
    assert asking, "a question was to be in flight at the kill"
    refuser = next(topology.lines[i] for i in behind if topology.lines[i].phone == asking[0])
    assert await trial.post_sms(asking[0], "Hayır") == 200
    await trial.kill_and_restart('"Hayır" taken')
    await trial.all_told("confirm_no", {asking[0]}, 30)
    follow_up = f"{number}/{refuser.id}"
    await until(lambda: trial.tickets(follow_up), 30, "the follow-up ticket in RT")
    (child,) = trial.tickets(follow_up)
    assert child["Subject"] == f"[{number}] Onarım sonrası şikâyet: {refuser.id} {refuser.name}"
    links = rt_server.get(f"ticket/{child['id']}")["_hyperlinks"]  # type: ignore[index]
    assert any(link["ref"] == "refers-to" and link["_url"].endswith(f"/ticket/{ticket['id']}") for link in links), links

    # 5. Two say yes and score the repair. The first's survey question is in flight at a kill
    # (answered as soon as the daemon is back); each is killed right after their score was taken.
    pleased, content = [topology.lines[i] for i in turkish if topology.lines[i].phone != refuser.phone][:2]
    world.twilio.delay = 1.0
    assert await trial.post_sms(str(pleased.phone), "Evet") == 200
    await until(lambda: trial.told("survey"), 30, "the survey question taken slowly")
    surveying: list[str] = []
    await trial.kill_and_restart("survey question going out", before=lambda: surveying.extend(in_flight(world, "survey")))
    assert surveying == [pleased.phone], "the survey question was to be in flight at the kill"
    world.twilio.delay = 0.0
    assert await trial.post_sms(str(pleased.phone), "5") == 200
    await trial.kill_and_restart("score 5 taken")
    await trial.all_told("thanks", {str(pleased.phone)}, 30)
    assert await trial.post_sms(str(content.phone), "1") == 200
    await trial.all_told("survey", {str(content.phone)}, 30)
    assert await trial.post_sms(str(content.phone), "4") == 200
    await trial.kill_and_restart("score 4 taken")
    await trial.all_told("thanks", {str(content.phone)}, 30)

    # Everything once: the SMS, the tickets, the counts in /metrics after eight kills.
    await asyncio.sleep(3)  # time for a late duplicate to show
    trial.assert_once_each()
    expected = {name: phones for name in ("outage", "stage", "restored", "confirm")}
    expected |= {
        "confirm_no": {refuser.phone},
        "survey": {pleased.phone, content.phone},
        "thanks": {pleased.phone, content.phone},
    }
    expected |= {"help": set()}
    assert {name: set(trial.told(name)) for name in NOTICES} == expected
    assert len(world.twilio.messages) == 4 * len(phones) + 5
    assert sorted(t["id"] for t in trial.all_tickets()) == sorted([ticket["id"], child["id"]])
    scrape = await trial.metrics()
    for sample, value in (
        (f'monitord_repair_confirmations_total{{answer="works",region="{region}"}}', 2.0),
        (f'monitord_repair_confirmations_total{{answer="not_fixed",region="{region}"}}', 1.0),
        (f'monitord_survey_responses_total{{region="{region}",score="5"}}', 1.0),
        (f'monitord_survey_responses_total{{region="{region}",score="4"}}', 1.0),
        (f'monitord_survey_score_points_total{{region="{region}"}}', 9.0),
    ):
        assert f"{sample} {value}" in scrape, sample
    assert trial.daemon is not None and await trial.daemon.stop() == 0
    print(
        f"field trial: {time.monotonic() - started:.1f} s, {len(phones)} customers, {len(world.twilio.messages)} SMS, "
        f"tickets {[ticket['id'], child['id']]}, kills {trial.kills}"
    )
