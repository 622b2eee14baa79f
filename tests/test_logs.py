"""Logs: `--log-json` writes one JSON object per line, one line per state change (not per
timeout), and no secret ever, even when peers refuse those secrets."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from lab.isp import write_secret
from monitord import logs
from monitord.demo import until
from monitord.model import Secret
from tests.ops_fixtures import (  # noqa: F401
    STOP_BOUND, daemons, device_ok, first_dslam, json_lines, open_outage, short_dir, wait_async, worlds,
)

TWILIO_TOKEN = "twilio-S3CRET-4f0c9a7e21"
HELPDESK_TOKEN = "helpdesk-S3CRET-b81d2c"
API_TOKEN = "api-S3CRET-77e0a9d4c3b2"
CMTS_COMMUNITY = "cmts-S3CRET-5a6b"


async def test_json_logs_hold_no_secret_and_do_not_grow_with_timeouts(worlds, daemons):
    world = await worlds("127.4.10")
    secrets_dir = world.isp.root / "secrets"
    write_secret(world.isp.root, "twilio.token", TWILIO_TOKEN)  # the lab expects another: 401
    write_secret(world.isp.root, "helpdesk.token", HELPDESK_TOKEN)  # likewise
    write_secret(world.isp.root, "api.token", API_TOKEN)
    write_secret(world.isp.root, "cmts.community", CMTS_COMMUNITY)  # the CMTS agent will not answer
    dslam_community = (secrets_dir / "dslam.community").read_text().strip()
    secrets = [TWILIO_TOKEN, HELPDESK_TOKEN, API_TOKEN, CMTS_COMMUNITY, dslam_community]

    dslam, behind = first_dslam(world)
    names = (dslam, *behind)
    daemon = await daemons(world.config, "--log-json")
    await wait_async(lambda: device_ok(daemon, behind[0]), 30, f"{dslam} seen ok")
    world.faults.silence(*world.isp.addresses_under("device", dslam))
    await wait_async(lambda: open_outage(daemon, dslam), 30, "the outage")

    def held(channel: str) -> list[dict]:
        return [e for e in json_lines(daemon.log()) if e["msg"].startswith(f"channel {channel} held: ")]

    await until(lambda: held("sms") and held("ticket"), 30, "refused SMS and ticket")
    assert all(e["level"] == "error" for e in held("sms") + held("ticket"))
    assert any("401" in e["msg"] or "Authenticate" in e["msg"] for e in held("sms")), held("sms")

    await asyncio.sleep(2)
    settled = json_lines(daemon.log())
    about_dslam = [e for e in settled if any(name in e["msg"] for name in names)]
    assert len(names) <= len(about_dslam) <= 4 * len(names)  # ok, down, unreachable: a few changes each
    await asyncio.sleep(8)  # four more ICMP and SNMP intervals of a silent device: nothing new to say
    assert json_lines(daemon.log()) == settled

    assert await daemon.stop() == 0
    assert daemon.exited_after < STOP_BOUND
    text = daemon.log()
    entries = json_lines(text)
    assert {"ts", "level", "logger", "msg"} <= set(entries[0])
    assert entries[-1]["msg"].startswith("stopped")
    for secret in secrets:
        assert secret not in text


@pytest.fixture
def root_logging() -> Iterator[io.StringIO]:
    """logs.setup() on a buffer; pytest's own handlers are put back afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)
    logging.captureWarnings(False)


def setup_on(stream: io.StringIO, **options) -> None:
    logs.setup(**options)
    logging.getLogger().handlers[0].setStream(stream)


def test_a_secret_slipping_into_a_message_or_traceback_is_masked(root_logging):
    token = Secret('tok"en\\with-quotes', "env:T")
    setup_on(root_logging, json_format=True, secrets=[token])
    log = logging.getLogger("monitord.test")
    try:
        raise ValueError(f"peer said no to {token.reveal()}")
    except ValueError:
        log.exception("delivery failed with %s", token.reveal(), extra={"fields": {"auth": token.reveal()}})
    lines = root_logging.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["msg"] == "delivery failed with <redacted>" and entry["auth"] == "<redacted>"
    assert "ValueError: peer said no to <redacted>" in entry["exc"]
    assert token.reveal() not in lines[0] and json.dumps(token.reveal())[1:-1] not in lines[0]


def test_secrets_of_a_reloaded_config_are_masked_too(root_logging):
    setup_on(root_logging, secrets=[Secret("old-secret-1", "file:a")])
    log = logging.getLogger("monitord.test")
    logs.remember([Secret("new-secret-2", "file:a")])
    log.warning("seen: old-secret-1 new-secret-2 abc")
    assert root_logging.getvalue().rstrip().endswith("seen: <redacted> <redacted> abc")
