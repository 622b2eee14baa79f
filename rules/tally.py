"""Each device's lines by status, kept up to date as statuses change (`Engine.line_counts`).

The metrics read them at every scrape: a walk over every line would cost a million look-ups at a
million lines (about 2 CPU-s), while this costs one entry per device. A device's counts are a
tuple replaced whenever one changes, never changed in place, so a reader holding an old one
sees it is stale by identity (monitord/metrics.py re-renders only those devices).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from monitord.model import Status
from rules.judge import Target
from rules.nodes import Inventory, NodeKey

STATUSES = tuple(Status)  # the order of a device's counts
_INDEX = {status: i for i, status in enumerate(STATUSES)}
_UNKNOWN = _INDEX[Status.UNKNOWN]

LineCounts = tuple[int, ...]  # a device's lines per status, in `STATUSES` order


class LineTally:
    """Device id -> its lines per status; a line with no target yet (no data) is unknown."""

    def __init__(self) -> None:
        self.by_device: dict[str, LineCounts] = {}

    def move(self, device: NodeKey, old: Status, new: Status) -> None:
        """One line of `device` went from `old` to `new`."""
        counts = list(self.by_device[device.id])
        counts[_INDEX[old]] -= 1
        counts[_INDEX[new]] += 1
        self.by_device[device.id] = tuple(counts)

    def recount(self, inventory: Inventory, targets: Mapping[NodeKey, Target], devices: Iterable[NodeKey]) -> None:
        """Count these devices' lines again (a device gone from `inventory` is dropped): at a
        start, a restore, and for the devices a reload changed."""
        for device in devices:
            lines = inventory.lines_of.get(device)
            if lines is None:
                self.by_device.pop(device.id, None)
                continue
            counts = [0] * len(STATUSES)
            for key in lines:
                target = targets.get(key)
                counts[_UNKNOWN if target is None else _INDEX[target.status]] += 1
            self.by_device[device.id] = tuple(counts)
