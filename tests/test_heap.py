"""Freed heap memory handed back: glibc's malloc_trim, at most every TRIM_EVERY seconds."""

from __future__ import annotations

from pathlib import Path

from monitord.heap import Trimmer, trim


def rss_kb() -> int:
    for row in Path("/proc/self/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1])
    raise AssertionError("no VmRSS")


def test_a_trim_hands_freed_chunks_inside_the_heap_back() -> None:
    chunks = [bytes(4000) for _ in range(40_000)]  # 160 MB of glibc chunks (over pymalloc's 512 bytes)
    keep = chunks[-1:]  # the heap's top stays in use: only a trim can give back what lies below it
    del chunks
    before = rss_kb()
    assert trim()  # glibc, as Debian's
    assert rss_kb() < before - 100_000, (before, rss_kb())
    assert keep


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_the_trimmer_trims_once_per_interval() -> None:
    clock = Clock()
    trimmer = Trimmer(every=30.0, clock=clock)
    for now in (0.0, 10.0, 29.9, 30.0, 31.0, 59.9, 60.0):
        clock.now = now
        await trimmer.trim_if_due()
    assert trimmer.trims == 2  # at 30 and at 60
