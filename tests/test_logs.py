"""Logs: `--log-json` writes one JSON object per line, one line per state change (not per
timeout), and no secret ever, even when peers refuse those secrets; secrets are masked where
they are used, so a community equal to a device name leaves that device's lines readable."""

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
from tests.blocks import own_base
from tests.ops_fixtures import (  # noqa: F401
    STOP_BOUND,
    daemons,
    device_ok,
    first_dslam,
    json_lines,
    open_outage,
    short_dir,
    wait_async,
    worlds,
)

TWILIO_TOKEN = "twilio-S3CRET-4f0c9a7e21"
HELPDESK_TOKEN = "helpdesk-S3CRET-b81d2c"
API_TOKEN = "api-S3CRET-77e0a9d4c3b2"


@pytest.mark.xdist_group("lab-world-1")  # see LAB_WORLDS in tests/conftest.py
async def test_json_logs_hold_no_secret_and_do_not_grow_with_timeouts(worlds, daemons):
    world = await worlds(own_base(190))
    secrets_dir = world.isp.root / "secrets"
    write_secret(world.isp.root, "twilio.token", TWILIO_TOKEN)  # the lab expects another: 401
    write_secret(world.isp.root, "helpdesk.token", HELPDESK_TOKEN)  # likewise
    write_secret(world.isp.root, "api.token", API_TOKEN)
    dslam_community = (secrets_dir / "dslam.community").read_text().strip()
    secrets = [TWILIO_TOKEN, HELPDESK_TOKEN, API_TOKEN, dslam_community]

    dslam, behind = first_dslam(world)
    write_secret(world.isp.root, "cmts.community", dslam)  # a careless community: the CMTS agent will not answer
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

    def about_dslam() -> list[dict]:
        return [e for e in json_lines(daemon.log()) if any(name in e["msg"] for name in names)]

    await asyncio.sleep(2)
    settled = about_dslam()
    assert len(names) <= len(settled) <= 4 * len(names)  # ok, down, unreachable: a few changes each
    await asyncio.sleep(8)  # four more ICMP and SNMP intervals of a silent device: nothing new to say
    # (about the silent ones: on a busy machine a healthy agent may answer late once, a real change)
    assert about_dslam() == settled

    assert await daemon.stop() == 0
    assert daemon.exited_after < STOP_BOUND
    text = daemon.log()
    entries = json_lines(text)
    assert {"ts", "level", "logger", "msg"} <= set(entries[0])
    assert entries[-1]["msg"].startswith("stopped")
    for secret in secrets:
        assert secret not in text
    assert any(e["msg"].startswith(f"device:{dslam} is down") for e in entries), [e["msg"] for e in entries]


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


def test_credentials_are_masked_where_they_are_used_in_messages_and_tracebacks(root_logging):
    setup_on(root_logging, json_format=True)
    log = logging.getLogger("monitord.test")
    try:
        raise ValueError('cannot reach https://monitord:pa"ss@rt.example/REST/2.0/?token=tok-1&page=2')
    except ValueError:
        log.exception(
            "refused: {'Authorization': 'Bearer abc.def-123456'} %s",
            "community=cm-9 authKey=ak-12345678",
            extra={"fields": {"peer": 'said {"password": "pw 1", "device": "besiktas-dslam-01"}'}},
        )
    [line] = root_logging.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["msg"] == "refused: {'Authorization': 'Bearer <redacted>'} community=<redacted> authKey=<redacted>"
    assert entry["peer"] == 'said {"password": "<redacted>", "device": "besiktas-dslam-01"}'
    assert "ValueError: cannot reach https://monitord:<redacted>@rt.example/REST/2.0/?token=<redacted>&page=2" in entry["exc"]
    for secret in ('pa"ss', "pa\\\"ss", "tok-1", "abc.def-123456", "cm-9", "ak-12345678", "pw 1"):
        assert secret not in line


def test_a_community_equal_to_a_device_name_or_a_word_hides_nothing_else(root_logging):
    setup_on(root_logging)
    log = logging.getLogger("monitord.test")
    log.info("device:besiktas-dslam-01 is down (public holiday: no ticket)")
    log.info("pysnmp: CommunityData(communityName=besiktas-dslam-01, mpModel=1)")
    lines = [line.split(": ", 1)[1] for line in root_logging.getvalue().splitlines()]
    assert lines == [
        "device:besiktas-dslam-01 is down (public holiday: no ticket)",
        "pysnmp: CommunityData(communityName=<redacted>, mpModel=1)",
    ]
