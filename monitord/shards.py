"""Which shards a poller claims, keeps and lets go: pure, no database, no clock.

Every `--role poller` process runs `plan` each round with what it read from PostgreSQL (the shard
keys of the inventory, the pollers whose heartbeat is fresh, and each shard's owner while its
lease holds) and then claims and lets go through the database (monitord/shardstore.py), whose
rows decide: two pollers that both planned to take a free shard race for it in one UPDATE, and
one wins. So `plan` need not be agreed upon, only converge:

* A poller's quota is its fair share of the shards, `n // k` or one more, the first `n % k` live
  pollers by name taking the one more: the quotas add up to `n`, and no poller's exceeds
  `fair_share(n, k) = ceil(n / k)`.
* It takes free shards (no owner, or a lease that expired) up to its quota; and, when more are
  free than the other live pollers are short of, up to `fair_share` (a dead poller's shards are
  taken at once, even while it still counts as live by its last heartbeat).
* It lets go of its shards above its quota only as far as the others are short of shards that
  no free one covers (a joiner gets its share; no shard is let go that nobody will take).

Each poller prefers shards by rendezvous hashing of (poller, shard), so that pollers claiming at
the same moment mostly go for different shards, and a poller keeps the ones it prefers.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Plan:
    """What one poller does this round: `keep` (renew), `take` (claim), `release` (let go)."""

    keep: tuple[str, ...]
    take: tuple[str, ...]
    release: tuple[str, ...]


def fair_share(shards: int, pollers: int) -> int:
    """The most shards one of `pollers` live pollers holds once the shards are spread."""
    return math.ceil(shards / max(1, pollers))


def quota(poller: str, shards: int, live: Iterable[str]) -> int:
    """`poller`'s share of `shards` among `live` (which it is counted in)."""
    ranked = sorted(set(live) | {poller})
    base, extra = divmod(shards, len(ranked))
    return base + (1 if ranked.index(poller) < extra else 0)


def preference(poller: str, shard: str) -> bytes:
    """Rendezvous hashing: the lower, the more `poller` wants `shard`."""
    return hashlib.blake2b(f"{poller}\0{shard}".encode(), digest_size=8).digest()


def plan(me: str, shard_keys: Iterable[str], live_pollers: Iterable[str], owners: Mapping[str, str | None]) -> Plan:
    """`owners`: each shard's owner while its lease holds (absent or None: free to claim)."""
    keys = sorted(set(shard_keys), key=lambda shard: preference(me, shard))
    live = set(live_pollers) | {me}
    held = Counter(owner for shard in keys if (owner := owners.get(shard)) is not None)
    free = [shard for shard in keys if owners.get(shard) is None]
    mine = [shard for shard in keys if owners.get(shard) == me]
    mine_quota, most = quota(me, len(keys), live), fair_share(len(keys), len(live))
    short = sum(max(0, quota(p, len(keys), live) - held[p]) for p in live if p != me)
    take = free[: max(0, mine_quota - len(mine))]
    spare = len(free) - len(take) - short  # free shards no other live poller needs
    if spare > 0:
        take += free[len(take) : len(take) + min(spare, max(0, most - len(mine) - len(take)))]
    surplus = mine[mine_quota:]
    release = surplus[: max(0, short - len(free))]
    keep = tuple(shard for shard in mine if shard not in release)
    return Plan(keep, tuple(take), tuple(release))
