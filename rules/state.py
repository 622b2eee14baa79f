"""Everything the engine knows, in one place its parts share (`rules.engine` owns it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rules.config import RulesConfig
from rules.correlate import Counts
from rules.judge import Device, Judge, Target
from rules.lifecycle import Book
from rules.maintenance import Maintenance
from rules.nodes import DEVICE, Inventory, NodeKey
from rules.tally import LineTally
from rules.timers import Timers


@dataclass(slots=True)
class State:
    rules: RulesConfig
    judge: Judge
    inventory: Inventory
    counts: Counts  # follow from the targets and incidents: rebuilt, never saved
    book: Book
    timers: Timers
    maintenance: Maintenance = field(default_factory=Maintenance)
    targets: dict[NodeKey, Target] = field(default_factory=dict)
    tally: LineTally = field(default_factory=LineTally)  # each device's lines by status, kept as they change
    # Devices rechecked because one of their exchange was first suspected, by when they were
    # asked, until they answer: a new incident there waits for them (`gather`). Never saved.
    asked: dict[NodeKey, float] = field(default_factory=dict)
    # What changed since the store last took the engine's rows (`Engine.changes`, `written`):
    # targets and incidents by key; one gone from the engine is a row to delete.
    dirty: set[NodeKey] = field(default_factory=set)
    dirty_incidents: set[str] = field(default_factory=set)
    # Each incident's (members, failing, waiting) as its member rows were last written; an
    # incident without an entry has all its rows written again (`rules.snapshot.rows`).
    saved_members: dict[str, tuple[frozenset[NodeKey], frozenset[NodeKey], frozenset[NodeKey]]] = field(default_factory=dict)

    def target(self, key: NodeKey) -> Target:
        """The target of a line or device of the topology, created on first use."""
        target = self.targets.get(key)
        if target is None:
            key = self.inventory.own(key)
            chain = self.inventory.chain[key]
            target = self.targets[key] = Device(key, chain) if key.level is DEVICE else Target(key, chain)
        return target
