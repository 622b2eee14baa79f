"""A worker thread's long work rests between its parts, so that the loop gets the interpreter
(monitord/pace.py): the rests come where the pace says, whatever the items."""

from __future__ import annotations

from monitord.pace import paced


class Clock:
    """Each item's work takes `per_item` seconds; a rest takes its own length."""

    def __init__(self, per_item: float) -> None:
        self.now = 0.0
        self.per_item = per_item
        self.rests: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.rests.append(seconds)
        self.now += seconds


def test_the_worker_rests_after_each_stretch_of_work_and_only_then() -> None:
    clock = Clock(per_item=0.001)
    done = []
    for item in paced(range(10), work=0.002, rest=0.004, clock=clock, sleep=clock.sleep):
        clock.now += clock.per_item  # the item's work
        done.append((item, len(clock.rests)))
    assert [item for item, _ in done] == list(range(10)), "every item, in order"
    assert clock.rests == [0.004] * 5, "one rest per 2 ms of work"
    assert [rests for _, rests in done] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4], "a rest only after its item's work was done"


def test_quick_work_never_rests_and_slow_work_rests_after_every_item() -> None:
    quick, slow = Clock(per_item=0.0001), Clock(per_item=0.01)
    for clock in (quick, slow):
        for _ in paced(range(5), work=0.002, rest=0.004, clock=clock, sleep=clock.sleep):
            clock.now += clock.per_item
    assert quick.rests == [], "half a millisecond of work in all: no rest"
    assert slow.rests == [0.004] * 5
