"""CPU of the profile side of a poll, without the network: decode, rates and combine of one walk.

    .venv/bin/python bench/profile_decode.py [--rows 501] [--profile if-mib]
    .venv/bin/python bench/profile_decode.py --memory 100000 [--ports 48]

A walk's cells for `--rows` rows of every column of the profile (counters and gauges of the
column's type; one index tuple per row shared by the columns, as `ber.Walk` gives them) go
through `profiles.decode_cells`, `RateTracker.rates` for the counter columns and
`profiles.combine`, as `poll_device` does. Best of 15 x 20 calls, in µs per value, to set beside bench/snmp_walk.py's
CPU per 1,000 values for the whole poll.

With `--memory LINES`, the rate state of a whole inventory instead: LINES lines on DSLAMs of
`--ports` ports, every counter column of the adsl and if-mib profiles read twice, as two polls
leave it; tracemalloc's count of the bytes the tracker holds, and the process's RSS growth.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from probes.ber import Cells  # noqa: E402
from probes.profile_files import load_profiles  # noqa: E402
from probes.profiles import Run, combine, decode_cells  # noqa: E402
from probes.rates import RateTracker  # noqa: E402


def best(work: Callable[[], object], calls: int = 20, repeats: int = 15) -> float:
    """Fewest CPU seconds per call."""
    fastest = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for _ in range(calls):
            work()
        fastest = min(fastest, (time.process_time() - started) / calls)
    return fastest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=501)
    parser.add_argument("--profile", default="if-mib")
    parser.add_argument("--memory", type=int, metavar="LINES", help="measure the rate state of LINES lines instead")
    parser.add_argument("--ports", type=int, default=48)
    args = parser.parse_args()
    if args.memory:
        rate_state(args.memory, args.ports)
        return
    profile = load_profiles()[args.profile]
    columns = [column for table in profile.tables for column in table.columns]
    rows = [(row,) for row in range(1, args.rows + 1)]
    walked = [
        Cells(
            column.oid,
            list(rows),
            bytes([70 if column.kind == "counter" else 2]) * len(rows),
            [1 if column.map else row * 1000 for (row,) in rows],
        )
        for column in columns
    ]
    values = len(rows) * len(columns)
    decoded = decode_cells(profile, walked)
    rates = RateTracker()

    def rate_all(now: float) -> list[Run]:
        return [
            run._replace(values=rates.rates("device", run.prefix, run.indexes, run.values, run.bits, now))
            if run.column.kind == "counter"
            else run
            for run in decoded.runs
        ]

    clock = iter(range(1, 10**9))
    rate_all(0.0)
    final = rate_all(1.0)
    timings = {
        "decode": best(lambda: decode_cells(profile, walked)),
        "rates": best(lambda: rate_all(float(next(clock)))),
        "combine": best(lambda: combine(profile, final)),
    }
    cells = sum(len(run.values) for run in decoded.runs)
    print(f"profile {args.profile}: {values:,} values, {cells:,} cells, {len(decoded.keys)} lines")
    for name, seconds in timings.items():
        print(f"{name:<8} {seconds * 1e3:7.2f} ms per walk, {seconds / values * 1e6:5.2f} µs per value")
    total = sum(timings.values())
    print(f"{'total':<8} {total * 1e3:7.2f} ms per walk, {total / values * 1e6:5.2f} µs per value")


def rss() -> int:
    """Resident bytes of this process."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def rate_state(lines: int, ports: int) -> None:
    profiles = load_profiles()
    counters = [c for name in ("adsl", "if-mib") for c in profiles[name].columns() if c.kind == "counter"]
    devices = -(-lines // ports)
    gc.collect()
    before = rss()
    tracemalloc.start()
    rates = RateTracker()
    for now in (0.0, 300.0):
        for device in range(devices):
            rows = [(port,) for port in range(1, ports + 1)]  # decode shares one index tuple per row
            for column in counters:
                rates.rates(f"dslam-{device}", column.oid, rows, [device + port for port in range(ports)], [64] * ports, now)
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    gc.collect()
    cells = devices * ports * len(counters)
    print(f"{devices:,} devices x {ports} ports x {len(counters)} counter columns = {cells:,} counter cells")
    print(
        f"rate state: {held / 2**20:.1f} MiB traced, {held / cells:.1f} B per cell; RSS grew {(rss() - before) / 2**20:.1f} MiB"
    )


if __name__ == "__main__":
    main()
