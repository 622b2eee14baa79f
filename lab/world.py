"""A whole simulated ISP with its outside world, for the demo and the end-to-end tests.

SNMP agents (snmpsim, one address per device), modems answering ICMP on loopback addresses,
nftables fault injection, and the peers the daemon reports to: a Twilio-compatible SMS
endpoint, an SMTP server and a helpdesk ticket endpoint. Timings are shortened so that a fault
becomes an incident, and a repair a verified restoration, within seconds.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.faults import Faults
from lab.isp import LabISP, build_sample_isp, write_config, write_secret
from lab.smtp import SmtpSink
from lab.snmp import SnmpLab
from lab.tickets import TicketDesk
from lab.twilio import TwilioLab

NOC_EMAIL = "noc@isp.example"

# Seconds, not minutes: the rules are the defaults with every duration shortened.
FAST_RULES: dict[str, Any] = {
    "settle": "3s",
    "stable": "6s",
    "reopen_window": "1m",
    "cpe_hold": "12s",
    "correlation": {"window": "10s", "min_count": 3, "min_fraction": 0.5, "close_count": 1, "close_fraction": 0.05},
    "technologies": {
        "adsl": {"snr_margin_down": {"metric": "snr_margin_down_db", "at_most": 6, "clear": 8, "for": "3s"}},
    },
}

FAST_POLLING: dict[str, Any] = {
    "icmp_interval": "2s",
    "line_interval": "2s",
    "icmp_timeout": "500ms",
    "icmp_count": 1,
    "jitter": 0.2,
}


@dataclass(slots=True)
class World:
    isp: LabISP
    snmp: SnmpLab
    faults: Faults
    twilio: TwilioLab
    smtp: SmtpSink
    tickets: TicketDesk

    @property
    def config(self) -> Path:
        return self.isp.config


async def start_world(root: Path, **isp_options: Any) -> World:
    """Build the sample ISP under `root`, start every peer, and point its config at them.

    If a peer cannot start, those already started are stopped again before the error propagates.
    """
    isp = build_sample_isp(root, **isp_options)
    twilio, smtp, tickets = TwilioLab(), SmtpSink(), TicketDesk(token="lab-helpdesk-token")
    async with contextlib.AsyncExitStack() as started:
        for peer in (twilio, smtp, tickets):
            await peer.start()
            started.push_async_callback(peer.stop)
        notifiers = {
            "sms": {
                "kind": "twilio",
                "account_sid": twilio.account_sid,
                "auth_token": write_secret(root, "twilio.token", twilio.auth_token),
                "from": "+908502200000",
                "base_url": twilio.base_url,
                "rate": 50,
                "notify_degradation": True,
            },
            "email": {
                "host": "127.0.0.1",
                "port": smtp.port,
                "starttls": False,
                "from": "monitord@isp.example",
                "noc": [NOC_EMAIL],
            },
            "tickets": {
                "kind": "webhook",
                "url": tickets.url,
                "token": write_secret(root, "helpdesk.token", "lab-helpdesk-token"),
            },
        }
        write_config(
            root,
            notifiers,
            state_file="state/monitord.db",
            snmp={"timeout": "500ms", "retries": 1},
            polling=FAST_POLLING,
            rules=FAST_RULES,
        )
        snmp = SnmpLab(isp)
        snmp.start()
        started.pop_all()
    return World(isp, snmp, Faults(), twilio, smtp, tickets)


async def stop_world(world: World) -> None:
    world.faults.close()
    world.snmp.stop()
    await world.twilio.stop()
    await world.smtp.stop()
    await world.tickets.stop()
