"""The `tracking:` section: the customers' tracking page on a listener of its own; off when absent."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from monitord.config import values
from monitord.config.decoder import Decoder
from monitord.config.fields import STRING, Listen, Parsed, Section, int_range, rate_range, shared
from monitord.config.model import TrackingConfig


class Tracking(Section):
    """GET /track/<number>: an incident's stage for customers, on a listener of its own that can face the internet; off when absent"""

    listen: Listen = Field(description="host:port, e.g. 0.0.0.0:9180 or 127.0.0.1:9180 behind a proxy (port 0: any free port)")
    rate: Annotated[float, rate_range(0.001, 1000.0)] = Field(
        default=values.default_of(TrackingConfig, "rate"),
        description="Pages a second one client address may load after its burst (default 0.5)",
    )
    burst: Annotated[int, int_range(1, 10_000)] = Field(
        default=values.default_of(TrackingConfig, "burst"), description="Pages one client address may load at once (default 10)"
    )
    trusted_proxies: list[Annotated[str, Parsed(STRING, values.ip_address)]] = Field(
        default=[],
        description="Addresses of reverse proxies whose X-Forwarded-For names the client (the last address it adds); "
        "without them every client behind a proxy shares the proxy's limit",
    )
    public_url: Annotated[str | None, Parsed(shared("url"), values.url)] = Field(
        default=None,
        description="The listener's base URL as Twilio reaches it, e.g. https://hooks.isp.example (behind a proxy it "
        "differs from the local one, and Twilio signs it): set, inbound SMS are taken at POST <public_url>/sms/inbound, "
        "signed with notifiers.sms's Twilio auth_token",
    )


def read_tracking(d: Decoder, root: dict[Any, Any]) -> TrackingConfig | None:
    """None (no tracking listener) when the section is absent or at fault."""
    if root.get("tracking") is None:
        return None
    tracking = d.validated(Tracking, root["tracking"], ("tracking",))
    if tracking is None:
        return None
    host, port = tracking.listen
    return TrackingConfig(host, port, tracking.rate, tracking.burst, tuple(tracking.trusted_proxies), tracking.public_url)
