"""monitord/shards.py: which shards a poller claims, keeps and lets go, in tables and properties."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from monitord.shards import Plan, fair_share, plan, quota

SHARDS = [f"ex-{i:02d}" for i in range(7)]


def settle(pollers: list[str], shards: list[str], owners: dict[str, str | None], rounds: int, rng: random.Random) -> int:
    """Every poller plans and acts in turn, in a random order each round, as the database would
    let it (a claim only of a shard still free); returns the rounds until nothing changed."""
    for done in range(1, rounds + 1):
        before = dict(owners)
        for me in rng.sample(pollers, len(pollers)):
            step = plan(me, shards, pollers, owners)
            for shard in step.release:
                owners[shard] = None
            for shard in step.take:
                if owners.get(shard) is None:
                    owners[shard] = me
        if owners == before:
            return done
    return rounds + 1


def test_fair_share_and_quotas_add_up() -> None:
    assert fair_share(7, 2) == 4 and fair_share(7, 7) == 1 and fair_share(3, 5) == 1 and fair_share(4, 0) == 4
    assert [quota(p, 7, ["a", "b", "c"]) for p in "abc"] == [3, 2, 2]
    assert quota("z", 4, ["a"]) == 2  # the planner counts itself among the live


def test_a_lone_poller_takes_every_shard() -> None:
    step = plan("a", SHARDS, [], {})
    assert sorted(step.take) == SHARDS and step.keep == () and step.release == ()


def test_a_shard_whose_lease_holds_is_never_taken() -> None:
    owners: dict[str, str | None] = dict.fromkeys(SHARDS, "b")
    assert plan("a", SHARDS, ["b"], owners) == Plan((), (), ())  # b still lives: nothing free, nothing taken


def test_a_dead_pollers_shards_are_taken_once_its_heartbeat_is_stale() -> None:
    """c died: its leases expired (None). While its heartbeat (renewed just before its leases)
    still counts it, a free shard is kept for it as for a joiner; then a and b take them."""
    owners: dict[str, str | None] = {"ex-00": "a", "ex-01": "a", "ex-02": "b", "ex-03": "b", "ex-04": None, "ex-05": None}
    shards = SHARDS[:6]
    assert plan("a", shards, ["a", "b", "c"], owners).take == ()
    taken = set(plan("a", shards, ["a", "b"], owners).take)
    assert len(taken) == 1 and taken <= {"ex-04", "ex-05"}
    for shard in taken:
        owners[shard] = "a"
    assert set(plan("b", shards, ["a", "b"], owners).take) == {"ex-04", "ex-05"} - taken


def test_a_poller_lets_go_of_its_surplus_for_a_joiner_and_the_joiner_gets_it() -> None:
    owners: dict[str, str | None] = dict.fromkeys(SHARDS[:4], "a")
    step = plan("a", SHARDS[:4], ["a", "b"], owners)
    assert len(step.release) == 2 and len(step.keep) == 2 and step.take == ()
    for shard in step.release:
        owners[shard] = None
    assert sorted(plan("b", SHARDS[:4], ["a", "b"], owners).take) == sorted(step.release)


def test_no_shard_is_let_go_that_no_one_needs() -> None:
    """b joins, but free shards cover its share: a keeps all of its own."""
    owners: dict[str, str | None] = {"ex-00": "a", "ex-01": "a", "ex-02": "a", "ex-03": None, "ex-04": None}
    assert plan("a", SHARDS[:5], ["a", "b"], owners).release == ()


@given(
    shards=st.integers(0, 30),
    pollers=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
    start=st.sampled_from(["empty", "one_holds_all", "random"]),
)
def test_any_fleet_settles_with_every_shard_held_once_and_fairly(shards: int, pollers: int, seed: int, start: str) -> None:
    rng = random.Random(seed)
    keys = [f"s{i}" for i in range(shards)]
    names = [f"p{i}" for i in range(pollers)]
    owners: dict[str, str | None] = {}
    if start == "one_holds_all":
        owners = dict.fromkeys(keys, names[0])
    elif start == "random":
        owners = {k: rng.choice([None, *names]) for k in keys}
    assert settle(names, keys, owners, 6, rng) <= 6, "settles within a few rounds"
    counts = {p: sum(1 for k in keys if owners.get(k) == p) for p in names}
    assert all(owners.get(k) in names for k in keys), "every shard has an owner"
    assert max(counts.values()) <= fair_share(shards, pollers)
    assert min(counts.values()) >= shards // pollers


@given(shards=st.integers(1, 30), pollers=st.integers(2, 6), seed=st.integers(0, 2**32 - 1))
def test_when_a_poller_dies_the_survivors_hold_everything_and_fairly(shards: int, pollers: int, seed: int) -> None:
    rng = random.Random(seed)
    keys = [f"s{i}" for i in range(shards)]
    names = [f"p{i}" for i in range(pollers)]
    owners: dict[str, str | None] = {}
    settle(names, keys, owners, 6, rng)
    dead = rng.choice(names)
    owners = {k: (None if o == dead else o) for k, o in owners.items()}  # its leases expired
    survivors = [p for p in names if p != dead]
    settle(survivors, keys, owners, 6, rng)
    assert all(owners.get(k) in survivors for k in keys)
    assert max(sum(1 for k in keys if owners.get(k) == p) for p in survivors) <= fair_share(shards, len(survivors))


@given(shards=st.integers(0, 20), pollers=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_a_plan_only_takes_free_shards_and_only_releases_its_own(shards: int, pollers: int, seed: int) -> None:
    rng = random.Random(seed)
    keys = [f"s{i}" for i in range(shards)]
    names = [f"p{i}" for i in range(pollers)]
    owners = {k: rng.choice([None, *names]) for k in keys}
    me = rng.choice(names)
    step = plan(me, keys, names, owners)
    assert all(owners[k] is None for k in step.take)
    assert all(owners[k] == me for k in (*step.release, *step.keep))
    assert set(step.keep) | set(step.release) == {k for k in keys if owners[k] == me}
    assert len(step.keep) + len(step.take) <= fair_share(shards, pollers)
