"""Simulated DSLAMs for bench/capacity.py: one snmpsim process serving many devices, one
community per device (`dslam-000`...), each with the columns of the `adsl` and `if-mib` profiles.

100 devices start in seconds, where one engine per loopback address takes about 25 s. snmpsim
answers about 3,500 values/s: enough for a lab view of a few devices, too slow to load a poller
(bench/snmp_walk.py uses net-snmp agents in a network namespace for that).
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

from lab.snmp import start_snmpsim as lab_snmpsim
from probes.snmp import format_oid

ADSL = "1.3.6.1.2.1.10.94.1.1"


def snmprec(ports: int, seed: int) -> str:
    """One DSLAM with the columns of the adsl and if-mib profiles, sorted by OID."""
    rng = random.Random(seed)
    cells: list[tuple[tuple[int, ...], str]] = [((1, 3, 6, 1, 2, 1, 1, 3, 0), f"67|{rng.randrange(10**6, 10**9)}")]
    columns = {
        "1.3.6.1.2.1.2.2.1.8": lambda: f"2|{rng.choice([1, 1, 1, 2])}",
        "1.3.6.1.2.1.2.2.1.14": lambda: f"65|{rng.randrange(10**4)}",
        "1.3.6.1.2.1.2.2.1.20": lambda: f"65|{rng.randrange(10**4)}",
        "1.3.6.1.2.1.31.1.1.1.6": lambda: f"70|{rng.randrange(10**12)}",
        "1.3.6.1.2.1.31.1.1.1.10": lambda: f"70|{rng.randrange(10**12)}",
        f"{ADSL}.2.1.4": lambda: f"2|{rng.randrange(20, 200)}",
        f"{ADSL}.2.1.5": lambda: f"66|{rng.randrange(50, 600)}",
        f"{ADSL}.2.1.8": lambda: f"66|{rng.randrange(10**6, 2 * 10**7)}",
        f"{ADSL}.3.1.4": lambda: f"2|{rng.randrange(20, 200)}",
        f"{ADSL}.3.1.5": lambda: f"66|{rng.randrange(50, 600)}",
        f"{ADSL}.3.1.8": lambda: f"66|{rng.randrange(10**5, 10**6)}",
        f"{ADSL}.4.1.2": lambda: f"66|{rng.randrange(10**6, 2 * 10**7)}",
        f"{ADSL}.5.1.2": lambda: f"66|{rng.randrange(10**5, 10**6)}",
        f"{ADSL}.6.1.5": lambda: f"65|{rng.randrange(10**3)}",
        f"{ADSL}.6.1.6": lambda: f"65|{rng.randrange(50)}",
        f"{ADSL}.7.1.4": lambda: f"65|{rng.randrange(10**3)}",
        f"{ADSL}.10.1.3": lambda: f"65|{rng.randrange(10**6)}",
        f"{ADSL}.10.1.4": lambda: f"65|{rng.randrange(10**4)}",
        f"{ADSL}.11.1.3": lambda: f"65|{rng.randrange(10**6)}",
        f"{ADSL}.11.1.4": lambda: f"65|{rng.randrange(10**4)}",
    }
    for prefix, value in columns.items():
        base = tuple(int(x) for x in prefix.split("."))
        cells.extend((base + (port,), value()) for port in range(1, ports + 1))
    cells.sort()
    return "".join(f"{format_oid(oid)}|{value}\n" for oid, value in cells)


def start_snmpsim(root: Path, devices: int, ports: int) -> tuple[subprocess.Popen[bytes], int]:
    """`devices` DSLAMs of `ports` lines each in one snmpsim on 127.0.0.1 (community dslam-NNN)."""
    data = root / "data"
    data.mkdir()
    for n in range(devices):
        (data / f"dslam-{n:03d}.snmprec").write_text(snmprec(ports, n))
    return lab_snmpsim(data, root / "cache", "dslam-000", ready_timeout=120)
