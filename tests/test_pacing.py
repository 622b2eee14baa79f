"""Waves: the configured rate is a ceiling over any stretch of time, and a free channel reaches it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from monitord.pacing import TICK, Waves


@given(
    rate=st.floats(0.5, 2000.0),
    catch_up=st.floats(0.0, 1.0),
    steps=st.lists(st.tuples(st.floats(0.0, 0.5), st.integers(0, 64)), min_size=1, max_size=200),
)
def test_no_stretch_of_time_starts_more_than_burst_plus_rate(
    rate: float, catch_up: float, steps: list[tuple[float, int]]
) -> None:
    """Whenever the pump looks (any times, any free slots), what it may start stays under the ceiling."""
    waves = Waves.start(rate, catch_up, now=0.0)
    now, started = 0.0, []  # (time, sends) of each wave
    for gap, free in steps:
        now += gap
        if waves.wait(now) > 0:
            continue
        n = waves.allowance(now, free)
        waves.take(n, now)
        started.append((now, n))
    for i, (first, _) in enumerate(started):
        total = 0
        for at, n in started[i:]:
            total += n
            assert total <= waves.burst + rate * (at - first) + 1e-6


def test_burst_is_the_catch_up_or_one_wave_and_a_spare_token() -> None:
    assert Waves.start(500.0, 0.1, 0.0).burst == 50.0
    assert Waves.start(500.0, 0.0, 0.0).burst == 500.0 * TICK + 1.0
    slow = Waves.start(2.0, 0.0, 0.0)
    assert slow.tick == 0.5 and slow.burst == 2.0  # one token a wave at slow rates


def test_a_channel_that_always_has_slots_reaches_its_rate_in_waves_of_a_tick() -> None:
    """Woken exactly when `wait` says: 500/s in waves of 10, one wave per tick, nothing lost to rounding."""
    waves = Waves.start(500.0, 0.1, now=0.0)
    now, sent, wave_sizes = 0.0, 0, []
    waves.take(waves.allowance(now, 10_000), now)  # the saved-up burst goes first
    while now < 10.0:
        now += waves.wait(now)
        n = waves.allowance(now, 10_000)
        waves.take(n, now)
        sent += n
        wave_sizes.append(n)
    assert 500 * now - 11 <= sent <= 500 * now + 1e-6  # the rate, less at most one wave
    assert len(wave_sizes) <= 10.0 / TICK + 1 and max(wave_sizes) <= 11


def test_a_full_channel_waits_for_tokens_not_for_nothing() -> None:
    waves = Waves.start(100.0, 0.0, now=0.0)
    waves.take(waves.allowance(0.0, 100), 0.0)
    assert waves.tokens < 1.0
    assert 0.0 < waves.wait(0.0) <= TICK
    assert waves.allowance(0.0, 100) == 0
