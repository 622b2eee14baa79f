"""Maintenance windows, whose scopes name nodes of the topology and inventory."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from monitord.config import layout
from monitord.config.decoder import Decoder
from monitord.config.fields import check_of
from monitord.config.inventory import Inventory
from monitord.config.values import suggest, timestamp
from monitord.model import MaintenanceWindow, NodeRef
from monitord.yamlload import KeyPath


def read_maintenance(
    d: Decoder, root: dict[Any, Any], zone: tzinfo, inv: Inventory, default_grace: float
) -> tuple[MaintenanceWindow, ...]:
    windows = []
    seen: dict[str, int | None] = {}
    for path, raw in d.items(root, (), "maintenance"):
        item = d.mapping(raw, path, layout.MaintenanceWindow)
        if item is None:
            continue
        before = len(d.problems)
        window_id = d.field(layout.MaintenanceWindow, item, path, "id")
        if window_id in seen:
            d.report(path + ("id",), f"duplicate maintenance window id {window_id!r}", f"first defined on line {seen[window_id]}")
        elif window_id is not None:
            seen[window_id] = d.doc.line(path + ("id",))
        if item.get("scope") in (None, []):
            d.report(
                path + ("scope",),
                "must name at least one node" if "scope" in item else "missing required key",
                "e.g. [exchange:sisli]",
            )
        scope = tuple(_scope_node(d, inv, scope_path, raw_ref) for scope_path, raw_ref in d.items(item, path, "scope"))
        start = d.get(item, path, "start", timestamp(zone))
        end = d.get(item, path, "end", timestamp(zone))
        if start is not None and end is not None and end <= start:
            d.report(path + ("end",), "the window ends before it starts")
        reason = d.field(layout.MaintenanceWindow, item, path, "reason")
        grace = d.field(layout.MaintenanceWindow, item, path, "grace", default_grace)
        if len(d.problems) == before:
            known = tuple(ref for ref in scope if ref is not None)
            windows.append(MaintenanceWindow(window_id, known, start, end, reason, grace))
    return tuple(windows)


def _scope_node(d: Decoder, inv: Inventory, path: KeyPath, raw: Any) -> NodeRef | None:
    ref = d.check(raw, path, check_of(layout.MaintenanceWindow, "scope"))
    if ref is None or ref.id in inv.declared[ref.level]:
        return ref
    if ref.level == "line":
        if inv.all_lines_read:
            d.report(path, f"unknown subscriber line {ref.id!r}")
    else:
        d.report(
            path, f"unknown {ref.level} {ref.id!r}", suggest(ref.id, sorted(inv.declared[ref.level]), f"known {ref.level}s:")
        )
    return None
