"""CPU of the profile side of a poll, without the network: decode, rates and combine of one walk.

    .venv/bin/python bench/profile_decode.py [--rows 501] [--profile if-mib]

A walk's varbinds for `--rows` rows of every column of the profile (counters and gauges of the
column's type, in walk order: each reply's 25 rows column by column) go through
`profiles.decode`, `RateTracker.rate` for the counter cells and `profiles.combine`, as
`poll_device` does. Best of 15 x 20 calls, in µs per value, to set beside bench/snmp_walk.py's
CPU per 1,000 values for the whole poll.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from probes.profiles import Cell, RateTracker, combine, decode, load_profiles  # noqa: E402
from probes.snmp import Varbind  # noqa: E402

REPETITIONS = 25


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
    args = parser.parse_args()
    profile = load_profiles()[args.profile]
    columns = [column for table in profile.tables for column in table.columns]
    varbinds = [
        Varbind(column.oid + (row,), 70 if column.kind == "counter" else 2, 1 if column.map else row * 1000)
        for first in range(1, args.rows + 1, REPETITIONS)
        for column in columns
        for row in range(first, min(first + REPETITIONS, args.rows + 1))
    ]
    decoded = decode(profile, varbinds)
    rates = RateTracker()

    def rate_all(now: float) -> list[tuple[Cell, float]]:
        final = []
        for cell in decoded.cells:
            if cell.column.kind == "counter":
                rate = rates.rate("device", cell.ident, int(cell.value), cell.bits, now)
                if rate is not None:
                    final.append((cell, rate))
            else:
                final.append((cell, cell.value))
        return final

    clock = iter(range(1, 10**9))
    rate_all(0.0)
    final = [(cell, float(cell.value)) for cell in decoded.cells]
    timings = {
        "decode": best(lambda: decode(profile, varbinds)),
        "rates": best(lambda: rate_all(float(next(clock)))),
        "combine": best(lambda: combine(profile, final)),
    }
    print(f"profile {args.profile}: {len(varbinds):,} values, {len(decoded.cells):,} cells, {len(decoded.keys)} lines")
    for name, seconds in timings.items():
        print(f"{name:<8} {seconds * 1e3:7.2f} ms per walk, {seconds / len(varbinds) * 1e6:5.2f} µs per value")
    total = sum(timings.values())
    print(f"{'total':<8} {total * 1e3:7.2f} ms per walk, {total / len(varbinds) * 1e6:5.2f} µs per value")


if __name__ == "__main__":
    main()
