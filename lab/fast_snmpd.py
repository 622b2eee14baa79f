"""A fast SNMP responder for scale runs: net-snmp `snmpd` instances in a network namespace of
their own, serving the IF-MIB tables of a few hundred veth interfaces created there.

snmpsim answers about 3,500 values/s, too slow to load a poller; one snmpd serves a 500-row
ifTable walk in milliseconds. The namespace is the caller's process's own (`enter_own_netns`
re-executes it under `unshare --net`), so the interfaces, the agents' loopback traffic and the
UDP counters of /proc/net/snmp (`RcvbufErrors`) belong to the run alone and vanish with it.
Needs root (or CAP_SYS_ADMIN and CAP_NET_ADMIN) and `snmpd`, `snmp`, `iproute2`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from lab.snmp import LabError, free_udp_port, stop_process, wait_for_agents
from monitord.model import Secret, SnmpAuth

NETNS_MARK = "MONITORD_OWN_NETNS"
V3_USER, V3_AUTH_KEY, V3_PRIV_KEY = "bench", "bench-auth-key", "bench-priv-key"
V3_AUTH = SnmpAuth(
    "bench-v3",
    "3",
    user=V3_USER,
    auth_protocol="sha",
    auth_key=Secret(V3_AUTH_KEY, "bench"),
    priv_protocol="aes",
    priv_key=Secret(V3_PRIV_KEY, "bench"),
)
"""The agents' SNMPv3 authPriv user: SHA-1 and AES-128, as most access equipment ships it."""


def enter_own_netns() -> None:
    """Re-execute this program in a new network namespace, unless it already runs in one."""
    if os.environ.get(NETNS_MARK) == str(os.getpid()):  # unshare execs in place: same pid
        return
    if shutil.which("unshare") is None:
        raise LabError("unshare not found (apt-get install util-linux)")
    os.environ[NETNS_MARK] = str(os.getpid())
    os.execvp("unshare", ["unshare", "--net", "--", sys.executable, *sys.argv])


def add_interfaces(pairs: int) -> list[int]:
    """Bring loopback up and add `pairs` veth pairs (the kernel here has no dummy driver); the
    ifIndex of every interface, loopback's included."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    batch = "".join(f"link add va{n} type veth peer name vb{n}\n" for n in range(pairs))
    subprocess.run(["ip", "-batch", "-"], input=batch.encode(), check=True)
    listed = subprocess.run(["ip", "-o", "link", "show"], check=True, capture_output=True, text=True).stdout
    return sorted(int(line.split(":", 1)[0]) for line in listed.splitlines())  # not /sys: the host's namespace


@dataclass(frozen=True)
class Agent:
    process: subprocess.Popen[bytes]
    port: int


def start_snmpd(root: Path, instances: int, receive_buffer: int) -> list[Agent]:
    """`instances` snmpd on 127.0.0.1, community `public` and the SNMPv3 user `V3_USER`, GETBULK
    answers of up to 1,000 values and a `receive_buffer`-byte socket buffer, so that a burst of
    requests is not lost there."""
    if shutil.which("snmpd") is None:
        raise LabError("snmpd not found (apt-get install snmpd)")
    agents: list[Agent] = []
    try:
        for n in range(instances):
            port = free_udp_port()
            conf = root / f"snmpd-{n}.conf"
            conf.write_text(
                f"agentAddress udp:127.0.0.1:{port}\nrocommunity public 127.0.0.1\n"
                f'createUser {V3_USER} SHA "{V3_AUTH_KEY}" AES "{V3_PRIV_KEY}"\nrouser {V3_USER} priv\n'
                f"dontLogTCPWrappersConnects yes\nmaxGetbulkResponses 1000\n[snmp] serverRecvBuf {receive_buffer}\n"
            )
            process = subprocess.Popen(
                ["snmpd", "-f", "-I", "-smux", "-C", "-c", str(conf), "-Lf", str(root / f"snmpd-{n}.log")],
                env={**os.environ, "MIBS": "", "SNMP_PERSISTENT_DIR": str(root / f"persist-{n}")},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            agents.append(Agent(process, port))
            wait_for_agents(process, {f"snmpd-{n}": ("127.0.0.1", port, "public")}, 30, see=str(root / f"snmpd-{n}.log"))
    except BaseException:
        for agent in agents:
            stop_process(agent.process)
        raise
    return agents
