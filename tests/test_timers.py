"""The engine's timers (rules/timers.py): the saved head's short dump, which leaves the targets'
wake-up times out, says the same as the full dump does of the other timers, whatever was set,
loaded and taken since."""

from __future__ import annotations

import random

from rules.nodes import Level, NodeKey
from rules.timers import TimerKind, Timers


def others(timers: Timers) -> list[tuple[float, TimerKind, str]]:
    return [t for t in timers.dump() if t[1] is not TimerKind.TARGET]


def test_the_head_dump_is_the_full_dump_without_the_targets() -> None:
    rng = random.Random(7)
    timers, now = Timers(), 0.0
    for step in range(2000):
        when = now + rng.choice((1.0, 2.0, rng.uniform(0, 60)))  # shared times too: a batch holds kinds mixed
        match rng.randrange(6):
            case 0 | 1 | 2:
                timers.wake(NodeKey(Level.LINE, f"L{rng.randrange(300)}"), when)
            case 3:
                timers.window(when, f"w{step}")
            case 4:
                timers.forget(when, f"T-{step}")
            case _:
                now += rng.uniform(0, 10)
                timers.pop_due(now)
        assert timers.dump(targets=False) == others(timers)
    loaded = Timers()
    for when, kind, key in timers.dump():
        loaded.load(when, kind, key)
    assert loaded.dump(targets=False) == others(timers) != []
    loaded.pop_due(now + 30)
    assert loaded.dump(targets=False) == others(loaded)
