"""`monitord run` when Twilio refuses the token: the outage SMS wait, the NOC is told, a reload
with the right token sends each once. The daemon runs as a subprocess against the lab ISP."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

import pytest

from lab.isp import write_secret
from monitord.config import load_config
from monitord.demo import until
from tests.blocks import own_base
from tests.ops_fixtures import daemons, device_ok, first_dslam, open_outage, short_dir, wait_async, worlds  # noqa: F401
from tests.test_config import BASE, ENV, line_of, problems_of, write


def test_hold_probe_is_a_duration_with_a_default(tmp_path: Path) -> None:
    assert load_config(write(tmp_path), ENV).notifiers.hold_probe == 60.0
    held = BASE.replace("notifiers:\n", "notifiers:\n  hold_probe: 2m\n")
    assert load_config(write(tmp_path, held), ENV).notifiers.hold_probe == 120.0
    never = BASE.replace("notifiers:\n", "notifiers:\n  hold_probe: 0s\n")
    [problem] = problems_of(write(tmp_path, never))
    assert (problem.key, problem.line) == ("notifiers.hold_probe", line_of(never, "hold_probe"))


@pytest.mark.xdist_group("lab-world-1")  # see LAB_WORLDS in tests/conftest.py
async def test_a_rotated_twilio_token_holds_the_outage_sms_until_a_reload_sends_each_once(worlds, daemons):
    world = await worlds(own_base(150))  # its own block: http_fixtures holds .130
    dslam, behind = first_dslam(world)
    topology = load_config(world.config).topology
    phones = {topology.lines[i].phone for i in behind if topology.lines[i].phone}
    world.twilio.auth_token = "rotated-at-twilio"  # the account's token changed; the daemon has the old one
    daemon = await daemons(world.config)
    await wait_async(lambda: device_ok(daemon, behind[0]), 30, f"{dslam} seen ok")

    world.faults.silence(*world.isp.addresses_under("device", dslam))
    await wait_async(lambda: open_outage(daemon, dslam), 30, "the outage")
    await until(lambda: "channel sms held" in daemon.log(), 20, "the hold")
    await until(lambda: any("sms kanalı durduruldu" in m.message["Subject"] for m in world.smtp.messages), 10, "the NOC e-mail")
    await until(lambda: any(t.startswith("hold-sms-") for t in world.tickets.tickets), 10, "the NOC's ticket")
    _, metrics = await daemon.get("/metrics")
    assert 'monitord_channel_held{channel="sms",reason="credentials"} 1.0' in metrics
    assert world.twilio.messages == [] and "dead letter" not in daemon.log()

    write_secret(world.isp.root, "twilio.token", "rotated-at-twilio")
    daemon.send(signal.SIGHUP)
    await until(lambda: {m.to for m in world.twilio.messages} >= phones, 20, "every outage SMS")
    await asyncio.sleep(2)  # time for a duplicate to show up
    assert Counter(m.to for m in world.twilio.messages) == Counter(phones)  # each exactly once
    log = daemon.log()
    assert log.count("channel sms held") == 1 and log.count("channel sms released") == 1
    assert "dead letter" not in log and "rotated-at-twilio" not in log and "lab-auth-token" not in log
    _, metrics = await daemon.get("/metrics")
    assert 'monitord_channel_held{channel="sms",reason=""} 0.0' in metrics
    assert await daemon.stop() == 0
