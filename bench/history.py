"""A year of incidents for 100,000 lines: what the history costs to keep and to read (issue 13 item 4).

    PYTHONPATH=. .venv/bin/python bench/history.py [--lines 100000] [--cpe-per-line 2] [--regional 50]

A SQLite state file filled through `Store.commit_step`, as the engine writes it, with a year of
incidents: `--cpe-per-line` single-line incidents a line (a modem's own faults), `--regional`
incidents of 12,528 lines (a region of bench/capacity.py's inventory) and one DSLAM outage of
48 lines a day, all resolved. Reported: the state file's size with the index of lines and
without it (the same incidents written by a Store whose index statement is a no-op), the step
that writes a 12,528-line incident with and without it, and through `History` (its own
connection and thread, as the API reads): a subscriber's history (1,000 random lines: median
and 99th percentile), a month's and a year's report, the subscribers of a regional incident,
each with the CSV made of it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import monitord.store as store_module
from monitord.history import History, report_csv, touched_csv
from monitord.model import Device, Exchange, Incident, IncidentKind, Line, NodeRef, Phase, Region, Topology
from monitord.store import Store

YEAR = 365 * 86400.0
START = 1_767_225_600.0  # 2026-01-01 UTC
REGION_LINES = 12_528
PORTS = 48


def topology(lines: int) -> Topology:
    devices = {f"d{n}": Device(f"d{n}", "dslam", f"x{n // 16}", "127.0.0.1", None) for n in range(lines // PORTS + 1)}
    exchanges = {f"x{n}": Exchange(f"x{n}", f"x{n}", f"r{n // 16}") for n in range(len(devices) // 16 + 1)}
    regions = {f"r{n}": Region(f"r{n}", f"r{n}") for n in range(len(exchanges) // 16 + 1)}
    subscribers = {f"s{n}": Line(f"s{n}", f"Abone {n}", f"d{n // PORTS}", phone=f"+90532{n:07d}") for n in range(lines)}
    return Topology(regions, exchanges, devices, subscribers)


def year_of_incidents(lines: int, cpe_per_line: int, regional: int, rng: random.Random) -> Iterator[Incident]:
    serial = 0

    def resolved(kind: IncidentKind, root: NodeRef, affected: frozenset[str], opened: float, took: float) -> Incident:
        nonlocal serial
        serial += 1
        return Incident(
            f"ARZ-2026-{serial:06d}", kind, root, Phase.RESOLVED, opened, opened + took, affected, (), resolved_at=opened + took
        )

    for _ in range(cpe_per_line):
        for n in range(lines):
            yield resolved(IncidentKind.CPE, NodeRef("line", f"s{n}"), frozenset({f"s{n}"}), START + rng.random() * YEAR, 1800)
    for day in range(365):
        d = rng.randrange(lines // PORTS)
        members = frozenset(f"s{n}" for n in range(d * PORTS, min(lines, (d + 1) * PORTS)))
        yield resolved(IncidentKind.OUTAGE, NodeRef("device", f"d{d}"), members, START + day * 86400 + rng.random() * 86400, 5400)
    for k in range(regional):
        first = rng.randrange(max(1, lines - REGION_LINES))
        members = frozenset(f"s{n}" for n in range(first, min(lines, first + REGION_LINES)))
        yield resolved(IncidentKind.OUTAGE, NodeRef("region", f"r{k % 8}"), members, START + rng.random() * YEAR, 7200)


def fill(path: Path, incidents: list[Incident], batch: int = 2000) -> float:
    """Write the incidents as steps of `batch`; CPU seconds spent."""
    store = Store.open(path)
    began = time.process_time()
    for at in range(0, len(incidents), batch):
        store.commit_step(None, incidents[at : at + batch], [], START + YEAR)
    spent = time.process_time() - began
    store.close()
    return spent


def regional_step(path: Path, members: frozenset[str]) -> float:
    """CPU seconds of one step opening a regional incident, then of the step resolving it."""
    store = Store.open(path)
    opened = Incident(
        "ARZ-2027-000001", IncidentKind.OUTAGE, NodeRef("region", "r0"), Phase.OPEN, START + YEAR, START + YEAR, members, ()
    )
    began = time.process_time()
    store.commit_step(None, [opened], [], START + YEAR)
    spent = time.process_time() - began
    store.close()
    return spent


async def reads(path: Path, lines: int, topo: Topology, rng: random.Random) -> dict[str, float]:
    store = Store.open(path)
    history = History(store.reader)
    figures: dict[str, float] = {}
    try:
        times = []
        for _ in range(1000):
            began = time.perf_counter()
            await history.of_line(f"s{rng.randrange(lines)}")
            times.append(time.perf_counter() - began)
        times.sort()
        figures["line history p50 ms"] = statistics.median(times) * 1e3
        figures["line history p99 ms"] = times[989] * 1e3
        for name, since, until in (
            ("month", START + 10 * 86400 * 3, START + 10 * 86400 * 3 + 30 * 86400),
            ("year", START, START + YEAR),
        ):
            began = time.perf_counter()
            found = await history.opened(since, until)
            figures[f"{name} report rows"] = len(found)
            figures[f"{name} report read s"] = time.perf_counter() - began
            began = time.perf_counter()
            text = report_csv(found, topo, "Europe/Istanbul", START + YEAR)
            figures[f"{name} report csv s"] = time.perf_counter() - began
            figures[f"{name} report MB"] = len(text.encode()) / 1e6
        big = max((p for p in await history.opened(START, START + YEAR) if p.kind == "outage"), key=lambda p: p.affected)
        began = time.perf_counter()
        touched = await history.touched(big.tracking)
        figures["regional subscribers read s"] = time.perf_counter() - began
        assert touched is not None
        began = time.perf_counter()
        touched_csv(touched, topo)
        figures["regional subscribers csv s"] = time.perf_counter() - began
        figures["regional subscribers"] = len(touched)
    finally:
        history.close()
        store.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--cpe-per-line", type=int, default=2)
    parser.add_argument("--regional", type=int, default=50)
    args = parser.parse_args()
    rng = random.Random(7)
    incidents = sorted(year_of_incidents(args.lines, args.cpe_per_line, args.regional, rng), key=lambda i: i.opened_at)
    topo = topology(args.lines)
    region = frozenset(f"s{n}" for n in range(min(args.lines, REGION_LINES)))
    print(
        f"load before: {os.getloadavg()[0]:.2f}; {len(incidents):,} incidents, {sum(len(i.affected) for i in incidents):,} line memberships"
    )
    with tempfile.TemporaryDirectory() as folder:
        indexed, plain = Path(folder, "indexed.db"), Path(folder, "plain.db")
        fill_indexed = fill(indexed, incidents)
        step_indexed = regional_step(indexed, region)
        index_statement = store_module._INDEX_LINE
        store_module._INDEX_LINE = "DELETE FROM incident_lines WHERE line = ? AND tracking = ?"  # the same steps, no index kept
        try:
            fill_plain = fill(plain, incidents)
            step_plain = regional_step(plain, region)
        finally:
            store_module._INDEX_LINE = index_statement
        size_indexed, size_plain = indexed.stat().st_size, plain.stat().st_size
        print(
            f"state file: {size_indexed / 1e6:.0f} MB with the index of lines, {size_plain / 1e6:.0f} MB without "
            f"(+{(size_indexed - size_plain) / args.lines:,.0f} B a line for the year)"
        )
        print(f"writing the year as steps of 2,000: {fill_indexed:.1f} CPU-s with the index, {fill_plain:.1f} without")
        print(
            f"the step opening a {len(region):,}-line incident: {step_indexed * 1e3:.0f} ms CPU with the index, "
            f"{step_plain * 1e3:.0f} ms without"
        )
        for name, value in asyncio.run(reads(indexed, args.lines, topo, rng)).items():
            print(f"{name}: {value:,.3f}" if isinstance(value, float) and value < 100 else f"{name}: {value:,.0f}")
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
