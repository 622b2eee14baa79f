"""`monitord run` when Twilio answers 500 through an outage: the outage SMS wait behind one probe
every `retry.probe_every`, the log says so once each way, and at recovery each SMS goes once.
The daemon runs as a subprocess against the lab ISP, with the shipped retry defaults."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from monitord.config import RetryConfig, load_config
from monitord.demo import until
from tests.blocks import own_base
from tests.ops_fixtures import daemons, device_ok, first_dslam, open_outage, short_dir, wait_async, worlds  # noqa: F401


@pytest.mark.xdist_group("lab-world-1")  # see LAB_WORLDS in tests/conftest.py
async def test_outage_sms_wait_out_a_twilio_outage_then_go_out_once_each_soon_after_it_ends(worlds, daemons):
    world = await worlds(own_base(140))
    dslam, behind = first_dslam(world)
    config = load_config(world.config)
    phones = {config.topology.lines[i].phone for i in behind if config.topology.lines[i].phone}
    daemon = await daemons(world.config)
    await wait_async(lambda: device_ok(daemon, behind[0]), 30, f"{dslam} seen ok")

    world.twilio.fail_for(3600)
    world.faults.silence(*world.isp.addresses_under("device", dslam))
    await wait_async(lambda: open_outage(daemon, dslam), 30, "the outage")
    await until(lambda: "channel sms down" in daemon.log(), 20, "the channel down")
    down_at = time.monotonic()
    _, metrics = await daemon.get("/metrics")
    assert 'monitord_channel_held{channel="sms",reason="unavailable"} 1.0' in metrics
    await asyncio.sleep(2 * RetryConfig().probe_every)
    assert world.twilio.messages == []
    probes = (time.monotonic() - down_at) / RetryConfig().probe_every
    in_flight = config.notifiers.sms.sends_in_flight  # the sends that fail before the channel is held
    assert sum(world.twilio.requests.values()) <= in_flight + probes + 2  # not one clock per SMS

    recovered = world.twilio.fail_for(0)
    await until(lambda: {m.to for m in world.twilio.messages} >= phones, 30, "every outage SMS")
    assert max(m.at for m in world.twilio.messages) - recovered <= len(phones) / config.notifiers.sms.rate + 10
    await asyncio.sleep(2)  # time for a duplicate to show up
    assert Counter(m.to for m in world.twilio.messages) == Counter(phones)  # each exactly once
    log = daemon.log()
    assert log.count("channel sms down") == 1 and log.count("channel sms works again") == 1
    assert "dead letter" not in log and "lab-auth-token" not in log
    assert not any("sms" in m.message["Subject"] and "kanal" in m.message["Subject"] for m in world.smtp.messages)
    _, metrics = await daemon.get("/metrics")
    assert 'monitord_channel_held{channel="sms",reason=""} 0.0' in metrics
    assert await daemon.stop() == 0
