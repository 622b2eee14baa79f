"""The console's network tree: region, exchange, cabinet and device, each with its lines counted
by state and marked by its worst one (pure: monitord/console.py reads the per-device counts).

Built from the per-device counts the engine keeps (`View.line_counts`), never from the lines, so
an inventory of 100,000 lines costs what its devices cost. Each node is a `<details>` (opened
when something under it is not up): the keyboard opens and closes it without any script. The
state is a word in a coloured badge, never the colour alone. Where devices have coordinates, a
small SVG places each exchange at its devices' mean position (no map tiles: the schematic only
shows where trouble is relative to the rest).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from monitord.console_pages import Viewer, page, words
from monitord.model import Language, Status, Topology
from rules.tally import STATUSES, LineCounts

GROUPS = ("down", "degraded", "unknown", "maintenance", "up")  # worst first
_GROUP = {
    Status.OK: "up",
    Status.DEGRADED: "degraded",
    Status.CPE: "degraded",  # the line is in sync; the customer's modem is silent
    Status.DOWN: "down",
    Status.UNREACHABLE: "down",
    Status.UNKNOWN: "unknown",
    Status.MAINTENANCE: "maintenance",
}
_SLOT = [GROUPS.index(_GROUP[status]) for status in STATUSES]
COLOURS = {  # text on background, each above 4.5:1
    "down": ("#a40e26", "#ffebe9"),
    "degraded": ("#6f4b00", "#fff8c5"),
    "unknown": ("#3d444d", "#eaeef2"),
    "maintenance": ("#0a4a8f", "#ddf4ff"),
    "up": ("#116329", "#dafbe1"),
    "empty": ("#3d444d", "#ffffff"),
}
MAP_WIDTH, MAP_HEIGHT, MAP_MARGIN = 640, 400, 24

Counts = tuple[int, int, int, int, int]  # lines per group, in GROUPS order


@dataclass(frozen=True, slots=True)
class TreeNode:
    level: str  # region, exchange, cabinet or device
    id: str
    name: str
    counts: Counts
    children: tuple[TreeNode, ...] = ()
    at: tuple[float, float] | None = None  # an exchange's (lat, lon): its devices' mean

    @property
    def worst(self) -> str:
        return next((g for g, n in zip(GROUPS, self.counts) if n), "empty")


def grouped(counts: LineCounts) -> Counts:
    """A device's counts per status, folded into the tree's five groups."""
    out = [0] * len(GROUPS)
    for slot, n in zip(_SLOT, counts):
        out[slot] += n
    return out[0], out[1], out[2], out[3], out[4]


def _sum(nodes: Sequence[TreeNode]) -> Counts:
    totals = [sum(column) for column in zip(*(n.counts for n in nodes))] if nodes else [0] * len(GROUPS)
    return totals[0], totals[1], totals[2], totals[3], totals[4]


def build_tree(topology: Topology, counts: Mapping[str, LineCounts]) -> tuple[TreeNode, ...]:
    """Regions, each with its exchanges, their cabinets and devices, counted from `counts`."""
    by_exchange: dict[str, dict[str | None, list[TreeNode]]] = {}
    places: dict[str, list[tuple[float, float]]] = {}
    for device in sorted(topology.devices.values(), key=lambda d: d.id):
        node = TreeNode("device", device.id, device.kind, grouped(counts.get(device.id, ())))
        by_exchange.setdefault(device.exchange, {}).setdefault(device.cabinet, []).append(node)
        if device.lat is not None and device.lon is not None:
            places.setdefault(device.exchange, []).append((device.lat, device.lon))
    by_region: dict[str, list[TreeNode]] = {}
    for exchange in sorted(topology.exchanges.values(), key=lambda e: e.id):
        cabinets = by_exchange.get(exchange.id, {})
        children = list(cabinets.get(None, ()))
        for cabinet in sorted(c for c in cabinets if c is not None):
            children.append(TreeNode("cabinet", cabinet, cabinet, _sum(cabinets[cabinet]), tuple(cabinets[cabinet])))
        spots = places.get(exchange.id)
        at = (sum(p[0] for p in spots) / len(spots), sum(p[1] for p in spots) / len(spots)) if spots else None
        node = TreeNode("exchange", exchange.id, exchange.name, _sum(children), tuple(children), at)
        by_region.setdefault(exchange.region, []).append(node)
    return tuple(
        TreeNode("region", r.id, r.name, _sum(by_region.get(r.id, [])), tuple(by_region.get(r.id, ())))
        for r in sorted(topology.regions.values(), key=lambda r: r.id)
    )


def _badge(group: str, w: Mapping[str, str]) -> str:
    text, background = COLOURS[group]
    return (
        f'<span class="state" style="color:{text};background:{background};border:1px solid {text}">'
        f"{escape(w['state_' + group])}</span>"
    )


def _counted(counts: Counts, w: Mapping[str, str]) -> str:
    parts = [f"{n:,} {w['state_' + g].lower()}" for g, n in zip(GROUPS, counts) if n]
    return escape(" · ".join(parts) if parts else w["no_lines"])


def _node(node: TreeNode, w: Mapping[str, str]) -> str:
    title = f"{escape(w['level_' + node.level])} <strong>{escape(node.id)}</strong>"
    if node.name != node.id:
        title += f" ({escape(node.name)})"
    line = f"{_badge(node.worst, w)} {title} <small>{_counted(node.counts, w)}</small>"
    if not node.children:
        return f'<li id="{node.level}-{escape(node.id)}">{line}</li>'
    opened = " open" if node.worst not in ("up", "empty") else ""
    inner = "".join(_node(child, w) for child in node.children)
    return f'<li><details id="{node.level}-{escape(node.id)}"{opened}><summary>{line}</summary><ul>{inner}</ul></details></li>'


def tree_map(regions: Sequence[TreeNode], w: Mapping[str, str]) -> str:
    """The exchanges with coordinates on a schematic plane (an equirectangular projection fitted
    to them), coloured by their worst state and named; "" when none has coordinates."""
    placed = [(e, e.at) for r in regions for e in r.children if e.at is not None]
    if not placed:
        return ""
    lats, lons = [at[0] for _, at in placed], [at[1] for _, at in placed]
    squeeze = math.cos(math.radians((min(lats) + max(lats)) / 2))
    span = max((max(lons) - min(lons)) * squeeze, max(lats) - min(lats), 1e-6)
    scale = min(MAP_WIDTH, MAP_HEIGHT) - 2 * MAP_MARGIN
    dots = []
    for e, (lat, lon) in placed:
        x = MAP_MARGIN + (lon - min(lons)) * squeeze / span * scale
        y = MAP_HEIGHT - MAP_MARGIN - (lat - min(lats)) / span * scale
        text, background = COLOURS[e.worst]
        label = f"{e.name}: {w['state_' + e.worst]}"
        dots.append(
            f'<g><title>{escape(label)}</title><circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="{background}" '
            f'stroke="{text}" stroke-width="3"/><text x="{x + 10:.1f}" y="{y + 4:.1f}" font-size="12" '
            f'fill="#1b1f24">{escape(label)}</text></g>'
        )
    return (
        f'<svg id="map" viewBox="0 0 {MAP_WIDTH} {MAP_HEIGHT}" role="img" aria-labelledby="map-title" '
        f'style="width:100%;max-width:{MAP_WIDTH}px;height:auto;background:#fff">'
        f'<title id="map-title">{escape(w["map"])}</title>{"".join(dots)}</svg>'
    )


def tree_page(regions: Sequence[TreeNode], viewer: Viewer, language: Language) -> str:
    w = words(language)
    total = _sum(regions)
    legend = " ".join(_badge(g, w) for g in GROUPS)
    tree = "".join(_node(region, w) for region in regions) or f"<li>{escape(w['no_lines'])}</li>"
    drawn = tree_map(regions, w)
    body = (
        f'<section class="card"><p id="totals">{_counted(total, w)}</p><p>{legend}</p>'
        f'<ul class="tree" id="tree">{tree}</ul></section>' + (f'<section class="card">{drawn}</section>' if drawn else "")
    )
    return page(language, w["tree"], body, viewer)
