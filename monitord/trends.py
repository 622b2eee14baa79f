"""Which lines flap and which drift toward their thresholds (issue 13 item 4), pure.

Flapping: a line that went bad (down, degraded, or a silent modem) at least N times in the last
FLAP_WINDOW. What the rules engine already decides is counted, not the samples: each step's
line state changes (a handful per step, nothing per sample) pass through `Flaps.record`, which
keeps the times each line went bad, for the lines that did (a tuple of at most FLAPS_KEPT
times, replaced when it changes: a regional fault adds one to each of thousands of lines, and a
tuple of one time takes 48 bytes where a deque took about 770). Kept in memory: a restart
starts the count afresh (the incidents stay in the store).

Drifting: a line whose latest hourly average of a level (SNR margin, attenuation, optical or
cable power) is still on the good side of a threshold of its rule set but within `margin` of
it; whether it is still OK is the engine's to say (the API asks it for the few lines found).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from monitord.model import LineState, Status
from monitord.rollups import Table
from rules.checks import Threshold

FLAP_WINDOW = 86400.0
FLAPS_KEPT = 100  # times kept per line: more than any useful threshold
BAD = frozenset((Status.DOWN, Status.DEGRADED, Status.CPE))
LOW_OPS = ("below", "at_most")  # the level's bad side is below it


@dataclass(frozen=True, slots=True)
class Flapping:
    line: str
    changes: int  # times it went bad in the window
    last: float  # when it last did


class Flaps:
    """When each line went bad, over the last FLAP_WINDOW, from the engine's state changes."""

    __slots__ = ("_bad", "_went_bad")

    def __init__(self) -> None:
        self._went_bad: dict[str, tuple[float, ...]] = {}
        self._bad: set[str] = set()  # lines now bad: a change from degraded to down is not another flap

    def record(self, states: Iterable[LineState]) -> None:
        for state in states:
            node = state.node
            if node.level != "line":
                continue
            if state.status in BAD:
                if node.id not in self._bad:
                    self._bad.add(node.id)
                    times = self._went_bad.get(node.id, ())
                    self._went_bad[node.id] = (*times[1 - FLAPS_KEPT :], state.since)
            else:
                self._bad.discard(node.id)

    def flapping(self, now: float, at_least: int) -> list[Flapping]:
        """Lines that went bad at least `at_least` times in the window, most often first; lines
        with none left in it are forgotten."""
        since = now - FLAP_WINDOW
        found = []
        for line, times in list(self._went_bad.items()):
            if times[0] < since:
                times = self._went_bad[line] = tuple(t for t in times if t >= since)
            if not times:
                del self._went_bad[line]
            elif len(times) >= at_least:
                found.append(Flapping(line, len(times), times[-1]))
        found.sort(key=lambda f: (-f.changes, -f.last, f.line))
        return found


@dataclass(frozen=True, slots=True)
class Drift:
    line: str
    device: str
    metric: str
    average: float
    threshold: float  # the level the check fires at
    op: str
    headroom: float  # how far the average is from it, on the good side


def headroom(average: float, limit: Threshold) -> float:
    """Distance from the threshold's level on its good side (negative: on the bad side)."""
    return average - limit.level if limit.op in LOW_OPS else limit.level - average


def drifting(device: str, table: Table, limits: Mapping[str, tuple[Threshold, ...]], margin: float) -> list[Drift]:
    """The device's lines whose average is within `margin` of a threshold, not past it; each
    line and metric once, at its nearest threshold."""
    found = []
    for metric, thresholds in limits.items():
        stat = table.stats.get(metric)
        if stat is None:
            continue
        for line, average in zip(table.lines, stat[1], strict=True):
            if average is None:
                continue
            near = None
            for limit in thresholds:
                room = headroom(average, limit)
                on_good_side = room > 0 or (room == 0 and limit.op in ("below", "above"))
                if on_good_side and room <= margin and (near is None or room < near[0]):
                    near = (room, limit)
            if near is not None:
                room, limit = near
                found.append(Drift(line, device, metric, average, limit.level, limit.op, round(room, 3)))
    return found
