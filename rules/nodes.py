"""Nodes as the engine keys them, and the indexes of the topology it walks.

A node is a `NodeRef` (level and id) inside the engine as outside it: code asks
`node.level == "line"`, never a string prefix. Only a snapshot spells a node "level:id".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from monitord.model import NodeRef, Topology

_LEVELS: dict[str, Literal["region", "exchange", "cabinet", "device", "line"]] = {
    "region": "region",
    "exchange": "exchange",
    "cabinet": "cabinet",
    "device": "device",
    "line": "line",
}


def parse_node(text: str) -> NodeRef:
    """A node from its snapshot spelling, "level:id"."""
    level, _, ident = text.partition(":")
    if level not in _LEVELS:
        raise ValueError(f"not a node: {text!r}")
    return NodeRef(_LEVELS[level], ident)


def node_order(node: NodeRef) -> tuple[str, str]:
    """Sort nodes as their "level:id" spelling sorts: devices before lines, then by id."""
    return node.level, node.id


def line_ids(nodes: Iterable[NodeRef]) -> frozenset[str]:
    return frozenset(node.id for node in nodes if node.level == "line")


@dataclass(frozen=True, slots=True)
class Inventory:
    """The topology as the engine walks it, built once per (re)load."""

    chain: dict[NodeRef, tuple[NodeRef, ...]]  # each line's and device's ancestors, farthest first
    lines_of: dict[NodeRef, list[NodeRef]]  # a device's lines
    devices_under: dict[NodeRef, list[NodeRef]]  # the devices at or below each node
    total: dict[NodeRef, int]  # the lines behind each node

    @classmethod
    def of(cls, topology: Topology) -> Inventory:
        chains: dict[NodeRef, tuple[NodeRef, ...]] = {}
        lines_of: dict[NodeRef, list[NodeRef]] = {}
        devices_under: dict[NodeRef, list[NodeRef]] = {}
        total: dict[NodeRef, int] = {}
        for device_id in sorted(topology.devices):
            device = NodeRef("device", device_id)
            chain = tuple(reversed(topology.ancestors(device)))
            for i, above in enumerate((*chain, device)):
                chains[above] = chain[:i]
                devices_under.setdefault(above, []).append(device)
                total.setdefault(above, 0)
            lines_of[device] = []
        for line in topology.lines.values():
            device = NodeRef("device", line.device)
            if device not in lines_of:
                continue
            key = NodeRef("line", line.id)
            chains[key] = chain = (*chains[device], device)
            lines_of[device].append(key)
            for above in chain:
                total[above] += 1
        return cls(chains, lines_of, devices_under, total)

    def area(self, node: NodeRef) -> NodeRef:
        """The exchange a node is in (itself for an exchange or a region): where siblings are rechecked."""
        if node.level in ("exchange", "region"):
            return node
        chain = self.chain[node]
        return next((k for k in reversed(chain) if k.level == "exchange"), chain[-1] if chain else node)
