"""What a reload cannot apply: the settings the running sockets, clients and store were built
from. `Daemon.reload` refuses a config that changes any of them, naming them (a restart applies it)."""

from __future__ import annotations

from collections.abc import Callable

from monitord.channels import channel_sections
from monitord.config import Config
from monitord.settings import configured_channels


def needs_restart(old: Config, new: Config) -> list[str]:
    """What a reload cannot apply: the settings the running sockets, clients and store were built from."""

    def channels(c: Config) -> tuple[object, ...]:
        """Addresses and credentials are reloaded (`Outbox.replace_notifiers`); the channels and pacing are not."""
        retries = tuple(s and s.retry for s in channel_sections(c).values())
        pacing = c.notifiers.sms and (c.notifiers.sms.rate, c.notifiers.sms.in_flight)
        return configured_channels(c), pacing, c.notifiers.hold_probe, retries

    parts: dict[str, Callable[[Config], object]] = {
        "state_file / state": lambda c: c.state,
        "http": lambda c: c.http,
        "metrics.listen": lambda c: c.metrics.listen,
        "snmp timeout/retries": lambda c: (c.snmp.timeout, c.snmp.retries, c.snmp.walk_timeout, c.snmp.walk_max_requests),
        "polling limits and jitter": lambda c: (
            c.polling.max_in_flight,
            c.polling.per_device_in_flight,
            c.polling.jitter,
            c.polling.job_timeout,
        ),
        "notifier channels, SMS rate, hold_probe and retry": channels,
        "traps": lambda c: c.traps,
        "tracking": lambda c: c.tracking,
        "notifiers.tickets.stage_sync and its RT": lambda c: (t := c.notifiers.tickets)
        and t.stage_sync
        and (t.stage_sync, t.url, t.queue, t.token, t.username, t.password),
    }
    return [name for name, part in parts.items() if part(old) != part(new)]
