"""Two-way SMS (issue 12 item 3): Twilio's webhook on the tracking listener, signed by the real
twilio library the way Twilio signs (the public URL, not the local one), answered through the
outbox to lab/twilio.py by the real Twilio client. Forged, replayed, oversized and odd requests
change nothing; nothing sent to an unknown number names anyone."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from twilio.request_validator import RequestValidator

from lab.isp import build_sample_isp
from lab.twilio import LabSms, TwilioLab
from monitord.config import load_config
from monitord.config.model import TrackingConfig
from monitord.config.templates import builtin_templates
from monitord.daemon import Daemon
from monitord.demo import until
from monitord.http_server import HttpServer
from monitord.model import Incident, LineState, NodeRef, Notification, Phase, Status
from monitord.outbox import Outbox
from monitord.sms_inbound import RefusedLog, SmsDesk
from monitord.stages import PartChange, StageChange
from monitord.store import Store
from monitord.track_http import make_tracking_app
from notices.plan import PlanSettings
from notifiers.sms import sms_segments
from tests.blocks import own_base
from tests.outbox_fixtures import FAST, sms_for, twilio_section
from tests.track_fixtures import LINE_IDS, MERGED, ONE_LINE, OPENED, OUTAGE, PHONES, Settings, private_values, topology

PUBLIC = "https://hooks.isp.example"  # what Twilio posts to, in front of a TLS-terminating proxy
STRANGER = "+905559876543"  # in no inventory
CUSTOMER = PHONES[3]  # ONE_LINE's subscriber, also affected by OUTAGE
NOW = time.time()  # the outbox ages items by the wall clock


@dataclass(slots=True)
class Daemonish:
    """What the tracking listener and the SMS desk read of a daemon, over a real store and outbox."""

    config: Settings
    store: Store
    outbox: Outbox
    loop: asyncio.AbstractEventLoop
    token: str
    clock: list[float]
    settings: PlanSettings = field(default_factory=lambda: PlanSettings(templates=builtin_templates()))
    open: list[Incident] = field(default_factory=list)

    async def between_steps(self) -> None:
        """No rules engine here: nothing steps."""

    def incident(self, tracking: str) -> Incident | None:
        return self.store.incident(tracking)

    def helpdesk_stage(self, tracking: str) -> str | None:
        return self.store.helpdesk_stage(tracking)

    def sms_token(self) -> str | None:
        return self.token

    async def inbound_sms(self, message: Any) -> bool:
        return await SmsDesk(self).take(message)

    def open_incidents(self) -> list[Incident]:
        return self.open

    def plan_settings(self) -> PlanSettings:
        return self.settings

    def set_sms_opted_out(self, phones: frozenset[str]) -> None:
        self.settings = replace(self.settings, sms_opted_out=phones)

    def wake_outbox(self) -> None:
        self.outbox.wake()

    def now(self) -> float:
        return self.clock[0]

    def line_state(self, line_id: str) -> LineState:
        return LineState(NodeRef("line", line_id), Status.DOWN, OPENED, ("no sync",))


@dataclass(slots=True)
class Harness:
    url: str  # the listener's local base URL
    lab: TwilioLab
    daemon: Daemonish

    async def post(
        self,
        body: str,
        sender: str = STRANGER,
        sid: str | None = None,
        *,
        token: str | None = None,
        signed_url: str | None = None,
    ) -> tuple[int, str]:
        """POST the form Twilio posts for an inbound SMS, signed as Twilio signs it."""
        form = twilio_form(body, sender, sid or new_sid())
        signature = RequestValidator(token or self.lab.auth_token).compute_signature(signed_url or PUBLIC + "/sms/inbound", form)
        return await post(self.url, form, {"X-Twilio-Signature": signature})

    def to(self, phone: str) -> list[LabSms]:
        return [m for m in self.lab.messages if m.to == phone]


def new_sid() -> str:
    return "SM" + secrets.token_hex(16)


def twilio_form(body: str, sender: str, sid: str) -> dict[str, str]:
    return {
        "ToCountry": "TR",
        "ToState": "",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "",
        "FromZip": "",
        "SmsSid": sid,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": body,
        "FromCountry": "TR",
        "To": "+908502200000",
        "ToZip": "",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }


async def post(url: str, form: dict[str, str] | bytes, headers: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        async with session.post(url + "/sms/inbound", data=form, headers=headers) as response:
            return response.status, await response.text()


@contextlib.asynccontextmanager
async def harness(root: Path, incidents: tuple[Incident, ...] = (OUTAGE, ONE_LINE)) -> AsyncIterator[Harness]:
    store = Store.open(root / "state.db")
    store.commit_step(None, incidents, [], OPENED + 600)
    store.set_stage(StageChange(OUTAGE.tracking, "field_team", "helpdesk", "ayse", OPENED + 700))
    async with TwilioLab() as lab:
        clock = [NOW]  # the desk's and the outbox's: a test may move it to another day
        outbox = Outbox(store, {"sms": sms_for(lab)}, {"sms": FAST}, clock=lambda: clock[0])
        loop = asyncio.get_running_loop()
        daemon = Daemonish(Settings(topology()), store, outbox, loop, lab.auth_token, clock)
        settings = TrackingConfig("127.0.0.1", 0, rate=1000.0, burst=1000, public_url=PUBLIC)
        server = HttpServer([(make_tracking_app(daemon, settings), "127.0.0.1", 0)])
        (port,) = await server.start()
        delivering = asyncio.create_task(outbox.run())
        try:
            yield Harness(f"http://127.0.0.1:{port}", lab, daemon)
        finally:
            await outbox.stop(timeout=2.0)
            await delivering
            await server.stop()
            store.close()


async def settled(h: Harness, phone: str, count: int) -> list[LabSms]:
    """The messages to `phone` once `count` arrived and a moment passed for any more."""
    await until(lambda: len(h.to(phone)) >= count, 10, f"{count} SMS to {phone}")
    await asyncio.sleep(0.3)
    return h.to(phone)


def rows(store: Store, table: str) -> int:
    return int(store._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


async def test_another_customers_number_reveals_only_its_public_stage(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        status, twiml = await h.post(f"durum {OUTAGE.tracking.lower()}")
        (reply,) = await settled(h, STRANGER, 1)
        [stored] = h.daemon.store._db.execute("SELECT sid, command FROM sms_inbound").fetchall()
    assert status == 200 and twiml.endswith("<Response/>")
    assert reply.body == f"Takip no {OUTAGE.tracking}: Saha ekibinde. Teşekkürler."
    assert not [v for v in private_values() if v in reply.body]
    assert sms_segments(reply.body) == 1
    assert stored[1] == f"status {OUTAGE.tracking}"  # what it was read as, not its text


async def test_a_merged_number_is_resolved_once_its_lines_left_the_wider_fault(tmp_path: Path) -> None:
    """The cabinet's lines came back while the DSLAM's outage it was merged into goes on: its number
    is resolved (as the restoration SMS said), not the wider fault's "field team"."""
    wider = replace(OUTAGE, affected=frozenset(LINE_IDS[2:]))
    back = replace(MERGED, affected=frozenset(LINE_IDS[:2]))
    still = replace(MERGED, tracking="ARZ-2026-000129", affected=frozenset(LINE_IDS[1:3]))
    async with harness(tmp_path, (wider, back, still)) as h:
        await h.post(f"DURUM {back.tracking}")
        await h.post(f"DURUM {still.tracking}")
        replies = sorted(m.body for m in await settled(h, STRANGER, 2))
    assert replies == [
        f"Takip no {OUTAGE.tracking}: Saha ekibinde. Teşekkürler.",
        f"Takip no {back.tracking}: Çözüldü. Teşekkürler.",
    ]


async def test_durum_alone_tells_a_known_phone_its_open_incidents_and_a_stranger_nothing(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        h.daemon.open = [OUTAGE, ONE_LINE]
        await h.post("Durum", sender=CUSTOMER)
        mine = await settled(h, CUSTOMER, 2)
        await h.post("STATUS", sender=STRANGER)
        (stranger,) = await settled(h, STRANGER, 1)
    assert sorted(m.body for m in mine) == [
        f"Takip no {OUTAGE.tracking}: Saha ekibinde. Teşekkürler.",
        f"Takip no {ONE_LINE.tracking}: Arıza tespit edildi. Teşekkürler.",
    ]
    # the help, the same for everyone (its example number is the template's), in the keyword's language
    assert stranger.body == "For a fault's status text STATUS and its ref (e.g. STATUS ARZ-2026-000123). Text STOP for no SMS."


async def test_durum_tells_a_subscriber_their_own_stage(tmp_path: Path) -> None:
    """Their line's follow-up ticket after a repair that did not help speaks for them (issue 12
    item 1), the incident resolved or not; a follow-up the helpdesk ended while the line still
    fails is "detected", never "resolved"; a neighbour in the same outage hears only the outage."""
    repaired = replace(ONE_LINE, phase=Phase.RESOLVED, resolved_at=OPENED + 900)
    async with harness(tmp_path, (OUTAGE, repaired)) as h:
        h.daemon.open = [OUTAGE]
        store, line = h.daemon.store, LINE_IDS[3]  # CUSTOMER's line, in both incidents
        assert store.set_subscriber_stage(PartChange(repaired.tracking, line, "at_exchange", "helpdesk", "ayse", NOW))
        await h.post("DURUM", sender=CUSTOMER)
        first = await settled(h, CUSTOMER, 2)
        assert store.set_subscriber_stage(PartChange(repaired.tracking, line, "resolved", "helpdesk", "ayse", NOW + 1))
        await h.post("DURUM", sender=CUSTOMER)
        second = await settled(h, CUSTOMER, 4)
        await h.post("DURUM", sender=PHONES[10])
        (other,) = await settled(h, PHONES[10], 1)
    assert sorted(m.body for m in first) == [
        f"Takip no {OUTAGE.tracking}: Saha ekibinde. Teşekkürler.",
        f"Takip no {repaired.tracking}: Santralde işlemde. Teşekkürler.",
    ]
    assert f"Takip no {repaired.tracking}: Arıza tespit edildi. Teşekkürler." in [m.body for m in second[2:]]
    assert other.body == f"Takip no {OUTAGE.tracking}: Saha ekibinde. Teşekkürler.", "another line's follow-up is not theirs"


async def test_a_known_phone_with_nothing_open_hears_so(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.post("DURUM", sender=PHONES[10])
        (reply,) = await settled(h, PHONES[10], 1)
    assert reply.body.startswith("Hattınızda açık bir arıza kaydı görünmüyor")


@pytest.mark.parametrize(
    ("case", "change"),
    [
        ("unsigned", {"X-Twilio-Signature": None}),
        ("forged", {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}),
        ("another token", {"token": "not-the-auth-token"}),
        ("the local URL signed", {"local": True}),
        ("a changed body", {"body": "IPTAL"}),
    ],
)
async def test_unsigned_or_forged_is_refused_and_changes_nothing(tmp_path: Path, case: str, change: dict[str, Any]) -> None:
    async with harness(tmp_path) as h:
        form = twilio_form("BASLAT", STRANGER, new_sid())
        url = (h.url if change.get("local") else PUBLIC) + "/sms/inbound"
        signature = RequestValidator(change.get("token", h.lab.auth_token)).compute_signature(url, form)
        headers = (
            {} if "X-Twilio-Signature" in change and change["X-Twilio-Signature"] is None else {"X-Twilio-Signature": signature}
        )
        if change.get("X-Twilio-Signature"):
            headers["X-Twilio-Signature"] = change["X-Twilio-Signature"]
        if "body" in change:
            form["Body"] = change["body"]
        status, text = await post(h.url, form, headers)
        await asyncio.sleep(0.3)
        assert status == 403 and "not signed" in text
        assert rows(h.daemon.store, "sms_inbound") == rows(h.daemon.store, "sms_consent") == 0
        assert h.daemon.store.depth() == 0 and h.lab.messages == []


async def test_a_replayed_message_has_no_second_effect(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        sid = new_sid()
        assert (await h.post("IPTAL", sender=CUSTOMER, sid=sid))[0] == 200
        assert (await h.post("IPTAL", sender=CUSTOMER, sid=sid))[0] == 200  # Twilio's retry, or a replay
        assert (await h.post("BASLAT", sender=CUSTOMER, sid=sid))[0] == 200  # a replay with another body is refused by its sid
        (confirmed,) = await settled(h, CUSTOMER, 1)
        assert confirmed.body == "Artık arıza SMS'i almayacaksınız. Yeniden almak için BASLAT yazın."
        assert h.daemon.store.sms_opt_outs() == {CUSTOMER} and h.daemon.settings.sms_opted_out == {CUSTOMER}
        assert rows(h.daemon.store, "sms_inbound") == 1


async def test_opted_out_phones_get_no_outage_sms_until_they_opt_in(tmp_path: Path) -> None:
    store_notice = Notification(
        f"{OUTAGE.tracking}/sms/{CUSTOMER}/update", "sms", CUSTOMER, "update", "", "still down", OUTAGE.tracking
    )
    async with harness(tmp_path) as h:
        store = h.daemon.store
        store.commit_step(None, [], [(store_notice, NOW + 3600)], NOW)  # held by quiet hours, then the opt-out
        await h.post("Iptal", sender=CUSTOMER)
        await settled(h, CUSTOMER, 1)
        later = replace(store_notice, key=store_notice.key + "/again")
        store.commit_step(None, [], [(later, None)], NOW)  # planned before the desk's opt-out reached the planner
        dead = {i.notification.key: i.last_error for i in store.items("sms", "dead")}
        assert dead == {
            store_notice.key: "the subscriber opted out of SMS by SMS",
            later.key: "the subscriber opted out of SMS by SMS",
        }
        await h.post("başlat", sender=CUSTOMER)
        await settled(h, CUSTOMER, 2)
        assert store.sms_opt_outs() == frozenset() and h.daemon.settings.sms_opted_out == frozenset()
        store.commit_step(None, [], [(replace(store_notice, key="after/opt-in"), None)], NOW)
        h.daemon.outbox.wake()
        (after,) = await until(lambda: [m for m in h.to(CUSTOMER) if m.body == "still down"], 10, "the notice after opt-in")
    assert [m.body for m in h.to(CUSTOMER)][:2] == [
        "Artık arıza SMS'i almayacaksınız. Yeniden almak için BASLAT yazın.",
        "Arıza SMS'leri yeniden açıldı. Almamak için IPTAL yazın.",
    ]


async def test_unknown_text_gets_one_help_reply_a_day(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        for text in ("merhaba", "internetim yok!!", "1"):
            assert (await h.post(text))[0] == 200
        (help_today,) = await settled(h, STRANGER, 1)
        h.daemon.clock[0] = NOW + 86400
        await h.post("hello?")
        replies = await settled(h, STRANGER, 2)
        assert rows(h.daemon.store, "sms_inbound") == 4
    assert help_today.body.startswith("Arıza durumu için DURUM ve takip no yazın")
    assert [m.body for m in replies] == [help_today.body] * 2


@pytest.mark.parametrize(
    ("text", "starts"),
    [
        ("DURUM " + "A" * 10_000, "Bu bir takip numarasına benzemiyor"),  # a 10 kB body, signed
        ("durum ARZ-2026-000123<script>alert(1)</script>", "Bu bir takip numarasına benzemiyor"),
        ("DURUM ARZ-2026-000999", "Bu takip numarasıyla bir kayıt bulamadık"),
        ("\x00\u202e\U0001f600 ş\ufeff", "Arıza durumu için DURUM"),  # NUL, RTL override, emoji, BOM
        ("ۺ" * 1600, "Arıza durumu için DURUM"),
    ],
)
async def test_odd_and_long_texts_get_a_plain_answer(tmp_path: Path, text: str, starts: str) -> None:
    async with harness(tmp_path) as h:
        status, _ = await h.post(text)
        (reply,) = await settled(h, STRANGER, 1)
    assert status == 200 and reply.body.startswith(starts) and "<" not in reply.body and "A" * 50 not in reply.body


async def test_a_body_past_the_limit_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        status, _ = await h.post("IPTAL " + "x" * 40_000)
        missing, _ = await post(h.url, twilio_form("IPTAL", STRANGER, "not-a-sid"), {})
        form = twilio_form("IPTAL", "not a phone", new_sid())
        signed = RequestValidator(h.lab.auth_token).compute_signature(PUBLIC + "/sms/inbound", form)
        bad_sender, text = await post(h.url, form, {"X-Twilio-Signature": signed})
        assert (status, missing, bad_sender) == (413, 403, 400) and "From" in text
        assert rows(h.daemon.store, "sms_inbound") == 0 and h.daemon.store.depth() == 0


async def test_the_page_listener_still_serves_pages_and_only_post_on_the_webhook(tmp_path: Path) -> None:
    async with harness(tmp_path) as h, aiohttp.ClientSession() as session:
        async with session.get(h.url + "/sms/inbound") as response:
            assert response.status == 405 and "<!doctype html>" in await response.text()
        async with session.get(h.url + f"/track/{OUTAGE.tracking}") as response:
            assert response.status == 200


def test_no_listener_route_without_a_public_url(tmp_path: Path) -> None:
    app = make_tracking_app(object(), TrackingConfig("127.0.0.1", 0))  # type: ignore[arg-type]
    assert [r.method for r in app.router.routes()] == ["GET"]


async def test_the_daemon_serves_the_webhook_with_its_configs_token_and_plans_by_the_opt_out(tmp_path: Path) -> None:
    """The whole daemon (no SNMP agents behind the sample ISP: what matters here is the listener)."""
    async with TwilioLab() as lab:
        tracking = {"listen": "127.0.0.1:0", "public_url": PUBLIC}
        build_sample_isp(
            tmp_path, base=own_base(210), extra={"tracking": tracking, "notifiers": {"sms": twilio_section(tmp_path, lab)}}
        )
        daemon = Daemon(load_config(tmp_path / "config.yaml"))
        line = next(line for line in daemon.config.topology.lines.values() if line.phone)
        phone = str(line.phone)
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        try:
            await until(lambda: daemon.ready.is_set() or task.done(), 30, "the daemon to start")
            h = Harness(f"http://127.0.0.1:{daemon.tracking_port}", lab, None)  # type: ignore[arg-type]
            assert (await h.post("IPTAL", sender=phone, token="not-the-token"))[0] == 403
            assert (await h.post("IPTAL", sender=phone))[0] == 200
            (confirmed,) = await settled(h, phone, 1)
            assert daemon.pipeline.settings.sms_opted_out == {phone} == daemon.store.sms_opt_outs()
        finally:
            stop.set()
            await task
    said = {
        "tr": "Artık arıza SMS'i almayacaksınız. Yeniden almak için BASLAT yazın.",
        "en": "You will no longer get fault SMS from us. Text START to get them again.",
    }
    assert confirmed.body == said[line.language]  # in the language of the phone's line


async def test_a_flood_of_forged_requests_is_one_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with harness(tmp_path) as h:
        for _ in range(20):
            assert (await h.post("IPTAL", token="forged"))[0] == 403
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refused == ["inbound SMS refused: no valid X-Twilio-Signature (from 127.0.0.1)"]
    assert "forged" not in caplog.text and h.lab.auth_token not in caplog.text


def test_the_refusal_line_says_how_many_were_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    refusals = RefusedLog(every=60.0)
    for at in (0.0, 1.0, 2.0, 61.0):
        refusals.refused("192.0.2.1", at)
    assert [r.getMessage() for r in caplog.records] == [
        "inbound SMS refused: no valid X-Twilio-Signature (from 192.0.2.1)",
        "inbound SMS refused: no valid X-Twilio-Signature (from 192.0.2.1; 2 more since the last such line)",
    ]
