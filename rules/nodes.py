"""Nodes as the engine keys them, and the indexes of the topology it walks.

A node is a `NodeKey` (level and id) inside the engine: code asks `key.level is LINE`, never
a string prefix. It is a named tuple of a `StrEnum` and a string, so hashing and comparing one
stays in C: a step over 50,000 lines looks nodes up about a million times. Keyed by `NodeRef`
(a dataclass, hashed by a Python call) and with `IncidentKind` kinds (a plain enum, the same),
the correlate step of bench/correlate.py took 60 % longer. `NodeRef` is what the engine takes
and gives; a snapshot spells a node "level:id".
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from monitord.model import NodeLevel, NodeRef, Topology


class Level(enum.StrEnum):
    REGION = "region"
    EXCHANGE = "exchange"
    CABINET = "cabinet"
    DEVICE = "device"
    SEGMENT = "segment"
    LINE = "line"


# The levels the engine tests for, as plain names: `Level.LINE` looks the member up through the
# enum's metaclass each time, which a loop over 50,000 lines notices.
LINE, SEGMENT, DEVICE, EXCHANGE, REGION = Level.LINE, Level.SEGMENT, Level.DEVICE, Level.EXCHANGE, Level.REGION

_LITERAL: dict[Level, NodeLevel] = {
    Level.REGION: "region",
    Level.EXCHANGE: "exchange",
    Level.CABINET: "cabinet",
    Level.DEVICE: "device",
    Level.SEGMENT: "segment",
    Level.LINE: "line",
}
_LEVEL = {literal: level for level, literal in _LITERAL.items()}


class NodeKey(NamedTuple):
    """A node inside the engine. Sorts as its "level:id" spelling: devices before lines, then by id."""

    level: Level
    id: str

    def __str__(self) -> str:
        return f"{self.level}:{self.id}"

    @classmethod
    def of(cls, node: NodeRef) -> NodeKey:
        return cls(_LEVEL[node.level], node.id)

    @classmethod
    def parse(cls, text: str) -> NodeKey:
        """A node from its snapshot spelling, "level:id"."""
        level, _, ident = text.partition(":")
        return cls(Level(level), ident)

    def ref(self) -> NodeRef:
        return NodeRef(_LITERAL[self.level], self.id)


def line_ids(nodes: Iterable[NodeKey]) -> frozenset[str]:
    return frozenset(node.id for node in nodes if node.level is LINE)


def device_of(chain: tuple[NodeKey, ...]) -> NodeKey:
    """The device of a line, from its chain: the last node, or the one before its segment."""
    return chain[-1] if chain[-1].level is DEVICE else chain[-2]


@dataclass(frozen=True, slots=True)
class Inventory:
    """The topology as the engine walks it, built once per (re)load.

    A line on an upstream segment (`Line.segment`) has the segment as its nearest node, between
    it and its device: it is counted at the segment, and through it at the device and above."""

    chain: dict[NodeKey, tuple[NodeKey, ...]]  # the ancestors of every node, farthest first
    lines_of: dict[NodeKey, list[NodeKey]]  # a device's lines, its segments' included
    devices_under: dict[NodeKey, list[NodeKey]]  # the devices at or below each node (a segment's: its device)
    total: dict[NodeKey, int]  # the lines behind each node
    holders: dict[NodeKey, tuple[NodeKey, ...]]  # per device, itself and its segments: where its lines are counted
    channels: dict[NodeKey, tuple[NodeKey, ...]]  # per segment, its upstream channel lines (a port on a cmts, no MAC)

    @classmethod
    def of(cls, topology: Topology) -> Inventory:
        chains: dict[NodeKey, tuple[NodeKey, ...]] = {}
        lines_of: dict[NodeKey, list[NodeKey]] = {}
        devices_under: dict[NodeKey, list[NodeKey]] = {}
        total: dict[NodeKey, int] = {}
        holders: dict[NodeKey, tuple[NodeKey, ...]] = {}
        channels: dict[NodeKey, tuple[NodeKey, ...]] = {}
        shared: dict[NodeKey, NodeKey] = {}  # one key object per node: equal keys compare by identity
        for device_id in sorted(topology.devices):
            device = NodeKey(Level.DEVICE, device_id)
            chain = tuple(shared.setdefault(k, k) for k in map(NodeKey.of, reversed(topology.ancestors(device.ref()))))
            for i, above in enumerate((*chain, device)):
                chains[above] = chain[:i]
                devices_under.setdefault(above, []).append(device)
                total.setdefault(above, 0)
            lines_of[device] = []
            holders[device] = (device,)
        above_lines = {device.id: (device, (*chains[device], device)) for device in lines_of}  # one tuple per device
        kinds = {device.id: device.kind for device in topology.devices.values()}
        on_segment: dict[str, tuple[NodeKey, ...]] = {}  # one chain tuple per segment, as per device
        for line in topology.lines.values():
            if line.device not in above_lines:
                continue
            device, chain = above_lines[line.device]
            key = NodeKey(Level.LINE, line.id)
            if line.segment:
                segment = NodeKey(Level.SEGMENT, line.segment)
                if segment not in chains:  # the config keeps a segment on one device
                    chains[segment], devices_under[segment], total[segment] = chain, [device], 0
                    holders[device] += (segment,)
                    on_segment[line.segment] = (*chain, segment)
                chain = on_segment[line.segment]
                if kinds[line.device] == "cmts" and line.port is not None and line.mac is None:
                    channels[segment] = (*channels.get(segment, ()), key)
            chains[key] = chain
            lines_of[device].append(key)
            for above in chain:
                total[above] += 1
        return cls(chains, lines_of, devices_under, total, holders, channels)

    def own(self, key: NodeKey) -> NodeKey:
        """The inventory's own object for the key of one of its lines or devices: a target keyed
        by it costs no second key (64 bytes a line). Found among its device's lines, which
        takes a scan of one device's ports, once per target."""
        if key.level is LINE:
            lines = self.lines_of[device_of(self.chain[key])]
            return lines[lines.index(key)]
        return self.devices_under[key][0] if key.level is DEVICE else key

    def area(self, node: NodeKey) -> NodeKey:
        """The exchange a node is in (itself for an exchange or a region): where siblings are rechecked."""
        if node.level in (EXCHANGE, REGION):
            return node
        chain = self.chain[node]
        return next((k for k in reversed(chain) if k.level is EXCHANGE), chain[-1] if chain else node)


@dataclass(frozen=True, slots=True)
class Reshape:
    """What a reload changes in the topology, as the engine needs it to touch only that: worked
    out from two inventories, which nothing mutates once built, so a 100,000-line reload can
    build and compare them off the event loop and leave the engine only what changed."""

    before: Inventory
    after: Inventory
    gone: frozenset[NodeKey]  # nodes of `before` not in `after`
    moved: frozenset[NodeKey]  # nodes in both whose ancestors changed
    resized: frozenset[NodeKey]  # nodes whose count of lines behind them changed (or that came or went)
    areas: frozenset[NodeKey]  # the farthest ancestors of all these, as they were and are

    @classmethod
    def between(cls, before: Inventory, after: Inventory) -> Reshape:
        old, new = before.chain, after.chain
        gone = frozenset(key for key in old if key not in new)
        moved = frozenset(key for key, chain in new.items() if old.get(key, chain) != chain)
        resized = frozenset(
            node for node in before.total.keys() | after.total.keys() if before.total.get(node) != after.total.get(node)
        )
        areas = frozenset(
            inventory.chain[key][0] if inventory.chain[key] else key
            for key in gone | moved | resized
            for inventory in (before, after)
            if key in inventory.chain
        )
        return cls(before, after, gone, moved, resized, areas)
