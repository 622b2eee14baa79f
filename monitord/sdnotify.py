"""systemd's notify protocol (READY, STATUS, WATCHDOG, RELOADING, STOPPING) without a dependency.

Like sd_notify(3), a failure to notify is reported (False), never raised: systemd notices a
missing READY or WATCHDOG by itself.
"""

from __future__ import annotations

import os
import socket
import time


def notify(*fields: str) -> bool:
    """Send `fields` (e.g. "READY=1", "STATUS=polling 120 devices") to $NOTIFY_SOCKET, if any."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall("\n".join(fields).encode())
    except OSError:
        return False
    return True


def reloading() -> bool:
    """RELOADING=1 carries MONOTONIC_USEC so that systemd (253+) can tell reloads apart."""
    return notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")


def watchdog_interval() -> float | None:
    """Half of WatchdogSec, as systemd recommends, or None when no watchdog is set for us."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and int(pid) != os.getpid()):
        return None
    return int(usec) / 2_000_000
