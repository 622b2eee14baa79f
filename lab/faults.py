"""Make lab addresses go silent with nftables, as a dead device or modem would.

Each `Faults` owns one table, `inet monitord_lab_<pid>_<n>`, created on first use and deleted
on close; it changes no other table, so labs can run side by side, except a lab table whose
process is gone: one killed before its close left its drops in the kernel, and they silenced the
addresses of the next process to claim its block (tests/blocks.py). The drop sits on the INPUT
hook (an OUTPUT drop would fail sendto() with EPERM at once instead of timing out) and covers all
traffic to the address: ICMP echo and SNMP alike.
"""

from __future__ import annotations

import atexit
import ipaddress
import itertools
import os
import re
import shutil
import subprocess

_serial = itertools.count(1)


class FaultError(RuntimeError):
    """nft is missing, we are not root, or nft refused a command."""


class Faults:
    def __init__(self) -> None:
        self.table = f"monitord_lab_{os.getpid()}_{next(_serial)}"
        self._nft: str | None = None
        self._silenced: set[str] = set()

    def __enter__(self) -> Faults:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def silenced(self) -> frozenset[str]:
        return frozenset(self._silenced)

    def silence(self, *addresses: str) -> None:
        """Drop every packet to these loopback addresses until restored."""
        new = [a for a in map(_loopback, addresses) if a not in self._silenced]
        if not new:
            return
        self._ensure_table()
        self._run(_elements("add", self.table, new))
        self._silenced.update(new)

    def restore(self, *addresses: str) -> None:
        gone = [a for a in map(_loopback, addresses) if a in self._silenced]
        if gone:
            self._run(_elements("delete", self.table, gone))
            self._silenced.difference_update(gone)

    def restore_all(self) -> None:
        if self._nft is not None:
            self._run(f"flush set inet {self.table} silenced4\nflush set inet {self.table} silenced6\n")
        self._silenced.clear()

    def close(self) -> None:
        """Delete this lab's table (and with it every drop)."""
        if self._nft is None:
            return
        self._run(f"delete table inet {self.table}\n")
        self._nft = None
        self._silenced.clear()
        atexit.unregister(self.close)

    def _ensure_table(self) -> None:
        if self._nft is not None:
            return
        nft = shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin")
        if nft is None:
            raise FaultError("fault injection needs nftables: `nft` not found (apt-get install nftables)")
        if os.geteuid() != 0:
            raise FaultError("fault injection needs root (CAP_NET_ADMIN) to add nftables rules")
        self._nft = nft
        self._remove_orphans()
        t = self.table
        self._run(
            f"add table inet {t}\n"
            f"add set inet {t} silenced4 {{ type ipv4_addr; }}\n"
            f"add set inet {t} silenced6 {{ type ipv6_addr; }}\n"
            f"add chain inet {t} input {{ type filter hook input priority -10; policy accept; }}\n"
            f"add rule inet {t} input ip daddr @silenced4 drop\n"
            f"add rule inet {t} input ip6 daddr @silenced6 drop\n"
        )
        atexit.register(self.close)

    def _remove_orphans(self) -> None:
        """Delete the lab tables of processes that are gone (another lab may race us to it)."""
        assert self._nft is not None
        listed = subprocess.run([self._nft, "list", "tables"], capture_output=True, text=True, check=False).stdout
        for name, pid in re.findall(r"^table inet (monitord_lab_(\d+)_\d+)$", listed, re.MULTILINE):
            if not _alive(int(pid)):
                subprocess.run([self._nft, "delete", "table", "inet", name], capture_output=True, check=False)

    def _run(self, script: str) -> None:
        assert self._nft is not None
        done = subprocess.run([self._nft, "-f", "-"], input=script, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise FaultError(f"nft failed on table {self.table}: {done.stderr.strip()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    return True


def _loopback(address: str) -> str:
    """Only loopback addresses may be silenced: the lab never touches real traffic."""
    ip = ipaddress.ip_address(address)
    if not ip.is_loopback:
        raise ValueError(f"not a loopback address: {address}")
    return str(ip)


def _elements(verb: str, table: str, addresses: list[str]) -> str:
    lines = []
    for family, set_name in ((4, "silenced4"), (6, "silenced6")):
        chosen = [a for a in addresses if ipaddress.ip_address(a).version == family]
        if chosen:
            lines.append(f"{verb} element inet {table} {set_name} {{ {', '.join(chosen)} }}\n")
    return "".join(lines)
