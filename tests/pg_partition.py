"""A cuttable link between a poller and PostgreSQL, for tests/test_poller_partition.py.

All traffic stays on loopback and in a network namespace the test creates: the poller runs in
the root namespace (so it reaches the lab's SNMP agents and ICMP as the other poller does) and
reaches PostgreSQL through one TCP hop inside the namespace. A relay process in the namespace
listens on a Unix socket (`SOCKET_DIR/.s.PGSQL.<port>`, what libpq's `host=<dir>` opens), opens
a TCP connection over the namespace's loopback to its own listener there, which opens the
cluster's Unix socket. An nft rule in the namespace that drops that TCP port partitions the
poller from PostgreSQL (packets lost, not refused: the poller's statements hang, as over a cut
WAN link); deleting the table heals it. The relay's TCP sockets carry the poller's and the
server's TCP_USER_TIMEOUT (10 s, monitord/pgstore.py CLIENT_KEEPALIVES and
SERVER_KEEPALIVES), so a hop cut longer than that ends both sessions as those settings would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

RELAY = r"""
import asyncio, socket, sys
listen_dir, hop, upstream = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def user_timeout(writer):
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 10000)

async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()

async def splice(reader, writer, opening):
    try:
        up_reader, up_writer = await asyncio.wait_for(opening, 5)
    except (OSError, TimeoutError):
        writer.close()
        return
    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

async def from_poller(reader, writer):
    async def opening():
        r, w = await asyncio.open_connection("127.0.0.1", hop)
        user_timeout(w)
        return r, w
    await splice(reader, writer, opening())

async def from_hop(reader, writer):
    user_timeout(writer)
    await splice(reader, writer, asyncio.open_unix_connection(upstream))

async def main():
    await asyncio.start_server(from_hop, "127.0.0.1", hop)
    await asyncio.start_unix_server(from_poller, f"{listen_dir}/.s.PGSQL.{hop}")
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""

CUT = "add table inet partition\nadd chain inet partition out { type filter hook output priority 0; }\n"


class Link:
    """The namespace, its relay, and `cut()` / `heal()`."""

    def __init__(self, namespace: str, socket_dir: Path, hop: int, relay: subprocess.Popen[str]) -> None:
        self.namespace, self.socket_dir, self.hop, self.relay = namespace, socket_dir, hop, relay

    def url(self, database: str, user: str = "postgres") -> str:
        return f"postgresql://{user}@/{database}?host={self.socket_dir}&port={self.hop}"

    def _nft(self, rules: str) -> None:
        subprocess.run(["ip", "netns", "exec", self.namespace, "nft", "-f", "-"], input=rules, text=True, check=True)

    def cut(self) -> None:
        self._nft(
            CUT
            + f"add rule inet partition out tcp dport {self.hop} drop\nadd rule inet partition out tcp sport {self.hop} drop\n"
        )

    def heal(self) -> None:
        self._nft("delete table inet partition\n")


def ip_netns_usable() -> str | None:
    """None, or why a namespace cannot be made here."""
    if os.geteuid() != 0:
        return "ip netns and nft need root"
    probe = f"monitord_probe_{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], check=True)
    return None


@pytest.fixture
def pg_link(pg, short_dir: Path) -> Iterator[Link]:  # type: ignore[no-untyped-def]
    """A Link to the session's cluster (tests/pg_fixtures.py `pg`)."""
    why = ip_netns_usable()
    if why is not None:
        pytest.skip(why)
    namespace, hop = f"monitord_part_{os.getpid()}", pg.port + 1
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    relay: subprocess.Popen[str] | None = None
    try:
        subprocess.run(["ip", "-n", namespace, "link", "set", "lo", "up"], check=True)
        socket_dir = short_dir / "pglink"
        socket_dir.mkdir()
        upstream = pg.root / f".s.PGSQL.{pg.port}"
        command = ["ip", "netns", "exec", namespace, sys.executable, "-c", RELAY, str(socket_dir), str(hop), str(upstream)]
        relay = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert relay.stdout is not None and relay.stdout.readline().strip() == "ready"
        started = time.monotonic()
        while not (socket_dir / f".s.PGSQL.{hop}").exists() and time.monotonic() - started < 5:
            time.sleep(0.05)
        yield Link(namespace, socket_dir, hop, relay)
    finally:
        if relay is not None:
            relay.kill()
            relay.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", namespace], check=True)
