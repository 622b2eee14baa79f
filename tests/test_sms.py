"""The Twilio SMS notifier through the real twilio client against lab/twilio.py, and segments."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.twilio import TwilioLab
from notifiers.base import ChannelError, DeliveryError
from notifiers.sms import API_DOMAIN, GSM7_BASIC, sms_segments
from tests.outbox_fixtures import FROM, sms, sms_for, twilio  # noqa: F401  (fixture)


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # extension characters take two septets
        ("€" * 81, 2),
        ("a" * 152 + "€" + "a" * 10, 2),  # the escape pair does not split: 152 + 2 > 153
        ("a" * 151 + "€" + "a" * 154, 3),
        ("ş" * 70, 1),  # Turkish ş ğ ı are not GSM-7: UCS-2
        ("ş" * 71, 2),
        ("ş" * 134, 2),
        ("ş" * 135, 3),
        ("😀" * 35, 1),  # a surrogate pair is two UCS-2 units
        ("😀" * 36, 2),
        ("a" * 66 + "😀", 1),
        ("a" * 66 + "😀" + "a" * 4, 2),
    ],
)
def test_sms_segments(text: str, segments: int) -> None:
    assert sms_segments(text) == segments


@given(st.text(alphabet=sorted(GSM7_BASIC), max_size=1000))
def test_plain_gsm_text_costs_160_then_153_per_segment(text: str) -> None:
    assert sms_segments(text) == (1 if len(text) <= 160 else math.ceil(len(text) / 153))


@given(st.text(alphabet=st.characters(min_codepoint=0x100, max_codepoint=0xD7FF), min_size=1, max_size=700))
def test_unicode_text_costs_70_then_67_per_segment(text: str) -> None:
    assert sms_segments(text) == (1 if len(text) <= 70 else math.ceil(len(text) / 67))


async def test_send_returns_the_sid_and_the_lab_records_the_message(twilio: TwilioLab) -> None:
    notifier = sms_for(twilio)
    sid = await notifier.send(sms(1))
    await notifier.close()
    [got] = twilio.messages
    assert sid == got.sid and sid.startswith("SM") and len(sid) == 34
    assert (got.to, got.from_, got.body) == (sms(1).recipient, FROM, sms(1).body)


async def test_edge_and_region_from_the_environment_do_not_move_base_url(
    twilio: TwilioLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    notifier = sms_for(twilio)
    url = twilio.base_url + "/2010-04-01/Accounts.json"
    assert (await notifier._twilio()).get_hostname(url) == url  # checked offline: a rewritten host would be looked up in DNS
    await notifier.close()


async def test_invalid_number_is_permanent_with_twilio_code(twilio: TwilioLab) -> None:
    notifier = sms_for(twilio)
    with pytest.raises(DeliveryError) as caught:
        await notifier.send(sms(1, to="+15005550001"))
    await notifier.close()
    assert not caught.value.retryable and caught.value.kind == "rejected"
    assert "code 21211" in caught.value.reason and "+15005550001 is not a valid phone number" in caught.value.reason


async def test_wrong_token_holds_the_channel_and_is_never_shown(twilio: TwilioLab) -> None:
    notifier = sms_for(twilio, token="wrong-secret-token")
    with pytest.raises(ChannelError) as caught:
        await notifier.send(sms(1))
    await notifier.close()
    assert caught.value.cause == "credentials" and "HTTP 401 code 20003" in caught.value.reason
    assert "wrong-secret-token" not in caught.value.reason and twilio.messages == []


@pytest.mark.parametrize(("status", "retry_after"), [(429, 7.0), (503, 2.5), (500, None)])
async def test_throttling_and_server_errors_are_retryable(twilio: TwilioLab, status: int, retry_after: float | None) -> None:
    notifier = sms_for(twilio)
    twilio.fail_next(1, status=status, retry_after=retry_after)
    with pytest.raises(DeliveryError) as caught:
        await notifier.send(sms(1))
    sid = await notifier.send(sms(2))
    await notifier.close()
    assert (caught.value.retryable, caught.value.retry_after) == (True, retry_after)
    assert f"HTTP {status}" in caught.value.reason
    assert caught.value.kind == ("rate_limited" if status == 429 else "server_error")
    assert [m.sid for m in twilio.messages] == [sid]


async def test_endpoint_down_is_retryable_and_recovers(twilio: TwilioLab) -> None:
    notifier = sms_for(twilio)
    await notifier.send(sms(1))
    await twilio.down()
    for i in (2, 3):  # a pooled connection, then a refused one
        with pytest.raises(DeliveryError) as caught:
            await notifier.send(sms(i))
        assert caught.value.retryable and caught.value.kind == "unreachable"
    await twilio.up()
    await notifier.send(sms(4))
    await notifier.close()
    assert [m.body for m in twilio.messages] == [sms(1).body, sms(4).body]


async def test_slow_answer_times_out_as_retryable(twilio: TwilioLab) -> None:
    notifier = sms_for(twilio, timeout=0.2)
    twilio.delay = 1.0
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        await notifier.send(sms(1))
    await notifier.close()
    assert caught.value.retryable and "no answer within 0.2s" in caught.value.reason
    assert caught.value.kind == "timeout"
    assert time.monotonic() - started < 0.8


async def test_lookup_finds_accepted_messages_by_number_and_text(twilio: TwilioLab) -> None:
    notifier = sms_for(twilio)
    since = time.time()
    first = await notifier.send(sms(1))
    await notifier.send(sms(2))
    for _ in range(250):  # more than one page of the list for the same number
        await notifier.send(sms(3, to=sms(1).recipient))
    again = await notifier.send(sms(1))
    assert await notifier.lookup(sms(1), since) == (first, again)
    assert await notifier.lookup(sms(1), since + 3600) == ()
    assert await notifier.lookup(sms(9), since) == ()
    await notifier.close()
    assert twilio.requests["GET"] >= 3


# In a fresh interpreter, where nothing has imported twilio's API domain yet: eight first sends at once
FIRST_SENDS = """
import asyncio, gc, json, sys, threading
from lab.twilio import TwilioLab
from notifiers.sms import API_DOMAIN, _SessionClient
from tests.outbox_fixtures import sms, sms_for

imported = {}  # module -> the thread that imported it
sys.addaudithook(lambda event, args: event == "import" and imported.setdefault(args[0], threading.current_thread().name))

async def main():
    async with TwilioLab() as lab:
        notifier = sms_for(lab)
        sids = await asyncio.gather(*(notifier.send(sms(i)) for i in range(8)))
        sessions = sum(isinstance(o, _SessionClient) for o in gc.get_objects())
        await notifier.close()
        domain = {m: t for m, t in imported.items() if m.startswith("twilio.rest.api")}
        print(json.dumps({"domain": domain, "sent": len(set(sids)), "received": len(lab.messages), "sessions": sessions}))

asyncio.run(main())
"""


def test_the_first_sends_import_twilios_api_domain_off_the_loop() -> None:
    """On the loop, that import held polling for 90-100 ms as the first outage's SMS went out."""
    repo = Path(__file__).parent.parent
    done = subprocess.run([sys.executable, "-c", FIRST_SENDS], cwd=repo, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert API_DOMAIN in found["domain"] and len(found["domain"]) > 50
    assert "MainThread" not in found["domain"].values()  # the loop's thread
    assert (found["sent"], found["received"], found["sessions"]) == (8, 8, 1)
