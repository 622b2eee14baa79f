"""Loopback address blocks that this test process alone uses.

A lab binds its agents to its addresses and silences some of them with nftables, which every
process on the machine sees: two labs that share an address break each other. So each test
process (a pytest-xdist worker, or another test run on the same machine) claims a second octet
of 127/8 for itself and builds its labs at 127.<octet>.<third>, each lab of the process on a
third octet of its own (lab/isp.py says how far a lab reaches above its base).

The claim is a UDP socket bound to 127.<octet>.0.1 on one fixed port, held until the process
ends: the kernel refuses that bind to every other process, and frees it however the holder ends.
A pid modulo the range, as used before, gave two workers the same octet now and then.
"""

from __future__ import annotations

import functools
import socket

CLAIM_PORT = 47_213
OCTETS = range(50, 250)  # 127.0-49.x are the fixed blocks of tests that only write configs


@functools.cache
def _claim() -> socket.socket:
    for octet in OCTETS:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((f"127.{octet}.0.1", CLAIM_PORT))
        except OSError:
            sock.close()
            continue
        return sock
    raise RuntimeError(f"every second octet of 127.{OCTETS.start}-{OCTETS.stop - 1}.x is claimed by another process")


def own_octet() -> int:
    """The second octet of 127/8 claimed by this process (the same on every call)."""
    return int(_claim().getsockname()[0].split(".")[1])


def own_base(third: int) -> str:
    """`127.<own octet>.<third>`: a lab base no other process uses."""
    return f"127.{own_octet()}.{third}"
