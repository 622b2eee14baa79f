"""Line quality roll-ups for 100,000 lines: what they cost to keep, in bytes and CPU (issue 13 item 4).

    PYTHONPATH=. .venv/bin/python bench/rollups.py [--lines 100000] [--polls 5] [--hours 1]

The daemon's own `LineHistory` (monitord/line_history.py) on a SQLite state file, fed as
`Pipeline.ingest` feeds it: each poll of a 48-port DSLAM is one list of 48 samples handed over
with `take`, `--polls` polls of every line per 5-minute period (5: a 60 s line interval), seven
metrics a line (SNR margin and attenuation in dB, rates, errored seconds and resyncs per second,
as the ADSL and VDSL2 profiles give them): margins that wander a few tenths of a dB, steady
attenuation and rates, errors on one line in twenty. Reported:

* the loop's share: the time `take` costs, per sample;
* the thread's CPU per 5-minute period for all the lines (adding up, packing, writing), split
  into its parts by timing `Accumulator` on its own, and the hourly merge;
* bytes: the state file's growth per 5-minute period and per hour, and what that makes per line
  and day and for the default retention (7 days of 5-minute rows, 90 days of hourly ones).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitord.config import HistoryConfig
from monitord.config.model import DEFAULT_HISTORY_METRICS
from monitord.daemon import SWITCH_INTERVAL
from monitord.line_history import LineHistory
from monitord.model import Device, Line, NodeRef, Outcome, Sample
from monitord.rollups import FIVE_MINUTES, HOUR, Accumulator
from monitord.store import Store

PORTS = 48
START = 1_767_225_600  # 2026-01-01 00:00 UTC, on an hour
METRICS = DEFAULT_HISTORY_METRICS[:7]  # the DSL ones: margins, attenuation, rates, errored seconds, resyncs


class Clock:
    def __init__(self) -> None:
        self.now = float(START)

    def __call__(self) -> float:
        return self.now


def lines_of(count: int) -> dict[str, Line]:
    return {f"s{n}": Line(f"s{n}", f"Abone {n}", f"d{n // PORTS}") for n in range(count)}


def polls(lines: dict[str, Line], at: float, rng: random.Random) -> list[list[Sample]]:
    """One poll of every device: a list of its lines' samples each."""
    by_device: dict[str, list[Sample]] = {}
    for n, line in enumerate(lines.values()):
        values = {
            "snr_margin_down_db": 6 + n % 90 / 10 + rng.gauss(0, 0.3),
            "snr_margin_up_db": 8 + n % 50 / 10 + rng.gauss(0, 0.2),
            "attenuation_down_db": 10 + n % 400 / 10,
            "rate_down_bps": 8_000_000.0 + (n % 64) * 256_000,
            "rate_up_bps": 1_000_000.0,
            "errored_seconds_per_s": rng.random() / 60 if n % 20 == 0 else 0.0,
            "resyncs_per_s": 0.0,
        }
        by_device.setdefault(line.device, []).append(Sample(NodeRef("line", line.id), "snmp:adsl", at, Outcome.OK, values))
    return list(by_device.values())


def file_bytes(path: Path) -> int:
    """The state file's size with its WAL checkpointed into it."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(db.execute("PRAGMA page_count").fetchone()[0] * db.execute("PRAGMA page_size").fetchone()[0])
    finally:
        db.close()


async def lateness(late: list[float]) -> None:
    """How late the loop wakes from 1 ms sleeps (what a poll's timer would see)."""
    while True:
        t = time.perf_counter()
        await asyncio.sleep(0.001)
        late.append(time.perf_counter() - t - 0.001)


async def thread_cpu(history: LineHistory) -> float:
    """The CPU time of the roll-ups' two threads so far (each read on itself, after what was handed to it)."""
    loop = asyncio.get_running_loop()
    return sum([await loop.run_in_executor(pool, time.thread_time) for pool in (history._adder, history._thread)])


async def run(count: int, per_period: int, hours: int) -> None:
    sys.setswitchinterval(SWITCH_INTERVAL)  # as the daemon runs: the thread hands the interpreter back within 1 ms
    rng = random.Random(13)
    lines = lines_of(count)
    devices = {line.device: Device(line.device, "dslam", "x", "127.0.0.1", None) for line in lines.values()}
    config = SimpleNamespace(history=HistoryConfig(metrics=METRICS), topology=SimpleNamespace(lines=lines, devices=devices))
    rounds = [polls(lines, START, rng) for _ in range(per_period)]  # reused: building samples is the pollers' cost
    gc.freeze()  # as the daemon freezes its inventory and state (monitord/gcfreeze.py): no GC pass rescans them
    samples = count * per_period
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state.db"
        store = Store.open(path)
        clock = Clock()
        history = LineHistory(store, lambda: config, clock)  # type: ignore[arg-type, return-value]
        base = file_bytes(path)
        idle: list[float] = []  # the same lateness with nothing to roll up: what the machine itself adds
        watch = asyncio.create_task(lateness(idle))
        await asyncio.sleep(3)
        watch.cancel()
        take_seconds = 0.0
        take_times: list[float] = []
        late: list[float] = []
        cpu_periods: list[float] = []
        hourly_cpu: list[float] = []
        for period in range(hours * 12):
            start = START + period * FIVE_MINUTES
            cpu = await thread_cpu(history)
            paced = period == 0  # the first period's polls spread out, the loop's lateness watched meanwhile
            watch = asyncio.create_task(lateness(late)) if paced else None
            for k, poll_round in enumerate(rounds):
                at = start + k * FIVE_MINUTES / per_period
                for n, poll in enumerate(poll_round):
                    moved = [s._replace(at=at) for s in poll]
                    t = time.perf_counter()
                    history.take(moved)
                    took = time.perf_counter() - t
                    take_seconds += took
                    take_times.append(took)
                    if paced and n % 20 == 0:
                        await asyncio.sleep(0.001)
            clock.now = start + FIVE_MINUTES + 61  # closed LATE after its end
            await history.write_due()
            if watch is not None:
                watch.cancel()
            cpu_periods.append(await thread_cpu(history) - cpu)
            if period % 12 == 11:  # the hour's last period is written: its roll-up comes at the next look
                cpu = await thread_cpu(history)
                await history.write_due()
                hourly_cpu.append(await thread_cpu(history) - cpu)
        five = (
            store.reader()
            .execute("SELECT count(*), sum(length(data)) FROM line_quality WHERE step = ?", (FIVE_MINUTES,))
            .fetchone()
        )
        hourly = store.reader().execute("SELECT count(*), sum(length(data)) FROM line_quality WHERE step = ?", (HOUR,)).fetchone()
        await history.stop()
        store.close()
        grown = file_bytes(path) - base
    # the parts of a period, timed on their own
    acc = Accumulator(METRICS, START)
    cpu = time.process_time()
    for poll_round in rounds:
        for poll in poll_round:
            for s in poll:
                acc.add(s.target.id, s.values)
    adding = time.process_time() - cpu
    cpu = time.process_time()
    packed = list(acc.rollups(lambda line: lines[line].device))
    packing = time.process_time() - cpu

    periods = hours * 12
    five_payload = five[1] / five[0] * len(packed) if five[0] else 0
    five_per_line_day = five[1] / periods * 288 / count
    hourly_per_line_day = hourly[1] / hours * 24 / count if hourly[0] else 0.0
    overhead = grown / (five[1] + (hourly[1] or 0))  # file bytes per payload byte (pages, indexes)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"lines {count:,}, devices {len(devices):,}, {per_period} polls a line per 5-minute period, {len(METRICS)} metrics")
    print(
        f"loop side (take, one call a poll of {PORTS} lines): {take_seconds / (samples * periods) * 1e6:.3f} us a sample, "
        f"99.9th percentile of a call {sorted(take_times)[int(len(take_times) * 0.999)] * 1e3:.2f} ms, "
        f"worst {max(take_times) * 1e3:.1f} ms"
    )
    late.sort()
    idle.sort()
    print(
        f"loop lateness idle (3 s, the baseline): median {idle[len(idle) // 2] * 1e3:.2f} ms, "
        f"99th percentile {idle[int(len(idle) * 0.99)] * 1e3:.2f} ms, worst {idle[-1] * 1e3:.1f} ms"
    )
    print(
        f"loop lateness while a period is fed ({len(rounds[0]) * per_period // 20:,} pauses of 1 ms) and written: "
        f"median {late[len(late) // 2] * 1e3:.2f} ms, 99th percentile {late[int(len(late) * 0.99)] * 1e3:.2f} ms, "
        f"worst {late[-1] * 1e3:.1f} ms"
    )
    print(
        f"roll-ups thread CPU per 5-minute period for all lines: {sorted(cpu_periods)[len(cpu_periods) // 2]:.2f} s median "
        f"(of which adding up {adding:.2f} s = {adding / samples * 1e6:.2f} us a sample, packing {packing:.2f} s, the rest writing)"
    )
    if hourly_cpu:
        print(f"hourly merge of 12 periods, all lines: {sum(hourly_cpu) / len(hourly_cpu):.2f} s CPU")
    print(
        f"payload: {five_payload / 1e6:.2f} MB per 5-minute period ({five[1] / five[0]:.0f} B a device row), "
        f"{(hourly[1] or 0) / max(1, hours) / 1e6:.2f} MB per hourly period; state file grew {grown / 1e6:.1f} MB "
        f"({overhead:.2f} bytes a payload byte)"
    )
    print(
        f"per line and day: 5-minute {five_per_line_day * overhead / 1e3:.1f} kB, hourly {hourly_per_line_day * overhead / 1e3:.2f} kB; "
        f"kept 7 d + 90 d: {(7 * five_per_line_day + 90 * hourly_per_line_day) * overhead / 1e3:.0f} kB a line, "
        f"{(7 * five_per_line_day + 90 * hourly_per_line_day) * overhead * count / 1e9:.1f} GB for {count:,} lines"
    )
    print(f"load average: {load}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--polls", type=int, default=5, help="polls of each line per 5-minute period")
    parser.add_argument("--hours", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(run(args.lines, args.polls, args.hours))


if __name__ == "__main__":
    main()
