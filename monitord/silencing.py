"""Silences in force in the daemon: the pipeline's helper that holds what they mute and lets it
go when they end (the decisions are notices/silences.py's; this keeps the list and does the I/O).

Only the pipeline calls it, from inside its one-step-at-a-time lock, so holding an engine step's
items, releasing the held ones and changing the silences never interleave.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence

from monitord.model import Incident, Silence, Topology
from monitord.outbox import Outbox
from monitord.store import Store
from notices.plan import Planned
from notices.silences import active, hold_silenced, release
from rules.engine import IncidentChange

log = logging.getLogger("monitord")


class Silencing:
    def __init__(self, store: Store, outbox: Outbox) -> None:
        self.store, self.outbox = store, outbox
        self.silences: list[Silence] = []  # not yet ended, as stored
        self.suppressed: Counter[str] = Counter()  # channel -> NOC-side items held or dropped
        self._seen: frozenset[str] | None = None  # the active silences' ids when held items were last looked at

    def load(self, now: float) -> None:
        """The silences not yet ended, from the store (at start, and after each change)."""
        self.silences = self.store.silences(ended_after=now)

    def hold(
        self,
        planned: list[Planned],
        changes: Sequence[IncidentChange],
        topology: Topology,
        now: float,
        remembered: Callable[[str], Incident | None],
    ) -> list[Planned]:
        """A step's items with those of silenced incidents held; `remembered`: the engine's incidents."""
        if not self.silences:
            return planned
        changed = {c.incident.tracking: c.incident for c in changes}
        kept, suppressed = hold_silenced(planned, self.silences, topology, now, lambda t: changed.get(t) or remembered(t))
        self.suppressed.update(suppressed)
        return kept

    async def release_due(self, topology: Topology, now: float) -> None:
        """Once the active silences are not those of the last look: the held items no silence
        matches any more go out (or are dropped: notices/silences.py `release`), at once."""
        live = frozenset(s.id for s in active(self.silences, now))
        if live == self._seen:
            return
        self.silences = [s for s in self.silences if s.end > now]
        try:
            held = self.store.held_items()
            freed = release(held, self.silences, topology, now, self.store.incident, self.store.was_queued)
            if freed.send or freed.drop:
                async with self.store.turn:
                    queued = self.store.release_held(freed.send, freed.drop, now)
                log.info(
                    "silences over: %d held notifications sent, %d dropped (their incidents ended unheard of)",
                    len(freed.send),
                    len(freed.drop),
                )
                if queued:
                    self.outbox.wake()
        except self.store.errors as error:
            log.warning("held notifications not released yet, tried again at the next step: %s", error)
            return
        self._seen = live

    async def add(self, silence: Silence, now: float) -> None:
        async with self.store.turn:
            self.store.put_silence(silence)
        self.load(now)

    async def expire(self, silence_id: str, by: str, topology: Topology, now: float) -> bool:
        async with self.store.turn:
            expired = self.store.expire_silence(silence_id, by, now)
        if expired:
            self.load(now)
            await self.release_due(topology, now)
        return expired
