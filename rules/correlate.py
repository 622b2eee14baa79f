"""Correlation as data: what each node counts, and whether it qualifies for an incident.

Every line counts towards each node above it (segment, device, cabinet, exchange, region) for
each fault kind it has now or had within `correlation.window`. A node *qualifies* for a kind when
its count and fraction reach `min_count` and `min_fraction`, or, while an incident is already
rooted there, `close_count` and `close_fraction` (hysteresis). A device with a fault of its own
qualifies by itself for that kind, and so does a cable upstream segment whose own upstream
channel (a line polled on the CMTS, `Inventory.channels`) has it: a noisy upstream is the
segment's incident, with its modems' faults, not one per modem. A settled fault goes to the farthest qualifying node above
it, narrowed to the nearest qualifying node that holds the same failing lines and devices (a
dead DSLAM alone in its exchange is a DSLAM incident), or else to its own line. Recently failed
lines keep counting for `window`, so when a parent recovers the lines still resyncing stay with
its incident instead of flooding out as single-line incidents.

Cost: line counts are kept per device (or segment: the line's holder) and carried up the
topology once per holder that moved, never once per line, so a cycle with 50,000 failing lines
stays well under a second.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet

from rules.config import Correlation
from rules.judge import CPE, OUTAGE, Fault, Target
from rules.nodes import DEVICE, SEGMENT, Inventory, NodeKey

KINDS = tuple(Fault)
_ALONE: dict[Fault | None, frozenset[Fault]] = {
    None: frozenset(),
    **{kind: frozenset((kind,)) for kind in KINDS},
    CPE: frozenset((CPE, OUTAGE)),
}


def counted_kinds(target: Target) -> frozenset[Fault]:
    """The kinds a target counts for: its fault, those it had within the window, and an outage
    for a silent modem (its customer has no service)."""
    if target.key.level is DEVICE or not target.last_fault:
        return _ALONE[target.fault]
    counted = frozenset(target.last_fault)
    if target.fault is not None and target.fault not in counted:
        counted = counted | {target.fault}
    if CPE in counted:
        counted = counted | {OUTAGE}
    return counted


def qualifies(count: int, total: int, rooted: bool, correlation: Correlation) -> bool:
    """Whether `count` failing lines of `total` make a node an incident's root: the opening
    thresholds, or the lower closing ones while an incident is rooted there (hysteresis)."""
    if total <= 0:
        return False
    if rooted:
        return count >= correlation.close_count and count >= correlation.close_fraction * total
    return count >= correlation.min_count and count >= correlation.min_fraction * total


class Counts:
    """The failing lines behind each node per kind, kept up to date target by target, and the
    nodes that qualify."""

    def __init__(self, inventory: Inventory, muted: AbstractSet[NodeKey] = frozenset()) -> None:
        """`muted`: targets that count for nothing (`Book.muted`), the engine's own set."""
        self._inventory = inventory
        self._muted = muted
        self._behind: dict[Fault, dict[NodeKey, set[Target]]] = {kind: {} for kind in KINDS}  # at each holder
        self._carried: dict[Fault, dict[NodeKey, int]] = {kind: {} for kind in KINDS}  # from each holder, so far
        self._count: dict[Fault, dict[NodeKey, int]] = {kind: {} for kind in KINDS}  # at each node
        self._devices_failing: dict[Fault, dict[NodeKey, set[NodeKey]]] = {kind: {} for kind in KINDS}
        self.qualified: dict[Fault, set[NodeKey]] = {kind: set() for kind in KINDS}

    def recount(self, target: Target, changed: dict[Fault, set[NodeKey]]) -> None:
        """Keep the holder's (its device's or segment's) lines with each fault now or within the
        correlation window (`requalify` carries the counts up); `changed` collects the holders
        whose count moved.
        A device is not counted: its own fault qualifies it by itself."""
        before = target.counted
        counted = frozenset() if self._muted and target.key in self._muted else counted_kinds(target)
        if target.key.level is DEVICE:
            target.counted = counted
            for kind in before ^ counted:
                changed[kind].add(target.key)
                for node in (*target.chain, target.key):
                    self._devices_failing[kind].setdefault(node, set()).symmetric_difference_update((target.key,))
            return
        if counted == before:
            return
        device = target.chain[-1]  # its holder: the device, or its segment
        for kind in before - counted:
            self._behind[kind][device].discard(target)
            changed[kind].add(device)
        for kind in counted - before:
            self._behind[kind].setdefault(device, set()).add(target)
            changed[kind].add(device)
        target.counted = counted

    def rehome(
        self, leaving: Iterable[Target], gone: Iterable[NodeKey], inventory: Inventory, changed: dict[Fault, set[NodeKey]]
    ) -> None:
        """A reload: the `leaving` targets (moved, or gone from the topology) stop counting where
        they were, those counts are carried up the old ancestors, the `gone` nodes are forgotten,
        and `inventory` is in force. `changed` collects the nodes whose count moved; `recount` the
        targets that stay to count them at their new places."""
        left: dict[Fault, set[NodeKey]] = {kind: set() for kind in KINDS}
        for target in leaving:
            device = target.key if target.key.level is DEVICE else target.chain[-1]
            for kind in target.counted:
                left[kind].add(target.key if target.key.level is DEVICE else device)
                if target.key.level is DEVICE:
                    for node in (*target.chain, target.key):
                        self._devices_failing[kind][node].discard(target.key)
                else:
                    self._behind[kind][device].discard(target)
            target.counted = frozenset()
        for kind, devices in left.items():
            changed[kind] |= self._carry(kind, devices)
        for kind in KINDS:
            for node in gone:
                for index in (self._count[kind], self._behind[kind], self._carried[kind], self._devices_failing[kind]):
                    index.pop(node, None)
        self._inventory = inventory

    def count(self, kind: Fault, node: NodeKey) -> int:
        return self._count[kind].get(node, 0)

    def behind(self, kind: Fault, devices: Iterable[NodeKey]) -> set[Target]:
        """The lines counted for `kind` at these devices (their segments' included)."""
        behind, holders = self._behind[kind], self._inventory.holders
        return set().union(*(behind.get(h, ()) for d in devices for h in holders.get(d, (d,))))

    def requalify(
        self, nodes: dict[Fault, set[NodeKey]], qualifies: Callable[[NodeKey, Fault], bool]
    ) -> dict[Fault, list[NodeKey]]:
        """Qualify these nodes again, and the nodes above a device whose count moved; returns
        those that flipped, per kind."""
        flipped: dict[Fault, list[NodeKey]] = {}
        for kind, keys in nodes.items():
            qualified = self.qualified[kind]
            for node in self._carry(kind, keys):
                if qualifies(node, kind) != (node in qualified):
                    qualified ^= {node}
                    flipped.setdefault(kind, []).append(node)
        return flipped

    def regional(self, kind: Fault, chain: tuple[NodeKey, ...]) -> NodeKey | None:
        """The farthest qualifying node of `chain`, narrowed to the nearest qualifying node that
        still holds all the same failing lines and devices (one dead DSLAM is a DSLAM incident
        even when it is half its exchange)."""
        qualified = self.qualified[kind]
        for i, node in enumerate(chain):
            if node in qualified:
                held = self._held(node, kind)
                for nearer in chain[i + 1 :]:
                    if nearer in qualified and self._held(nearer, kind) == held:
                        node = nearer
                return node
        return None

    def _carry(self, kind: Fault, nodes: set[NodeKey]) -> set[NodeKey]:
        """Carry the changed holders' line counts up their chains (once per holder, not once per
        line); returns `nodes` and the nodes above a count that moved."""
        counts, behind, carried, chains = self._count[kind], self._behind[kind], self._carried[kind], self._inventory.chain
        above: set[NodeKey] = set()
        for holder in nodes:
            if holder.level is DEVICE or holder.level is SEGMENT:
                moved = len(behind.get(holder, ())) - carried.get(holder, 0)
                if moved:
                    carried[holder] = carried.get(holder, 0) + moved
                    for node in (*chains[holder], holder):
                        counts[node] = counts.get(node, 0) + moved
                    above.update(chains[holder])
        return nodes | above

    def _held(self, node: NodeKey, kind: Fault) -> tuple[int, int]:
        return self._count[kind].get(node, 0), len(self._devices_failing[kind].get(node, ()))
