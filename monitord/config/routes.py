"""`notifiers.receivers` and `notifiers.routes`: which NOC recipients hear of which region's incidents.

Named receivers and routes that point at them, as Alertmanager's config keeps them: a route to a
region the topology does not declare, or to a receiver not defined, is refused at its line, and
so is a second route for one region; nothing of a config at fault is applied (a reload keeps the
running one). A region without a route goes to `email.noc`.
"""

from __future__ import annotations

from collections.abc import Collection

from monitord.config import layout
from monitord.config.decoder import Decoder


def read_routes(d: Decoder, notifiers: layout.Notifiers, regions: Collection[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(region id, NOC e-mail) per route; problems reported on `d`."""
    path = ("notifiers",)
    receivers: dict[str, tuple[str, ...]] = {}
    for i, receiver in enumerate(notifiers.receivers):
        if receiver.name in receivers:
            d.report(path + ("receivers", i, "name"), f"receiver {receiver.name!r} is defined twice")
        receivers[receiver.name] = tuple(receiver.email)
    if notifiers.routes and notifiers.email is None:
        d.report(path + ("routes",), "routes send NOC e-mail, but notifiers.email is not configured")
    out: dict[str, tuple[str, ...]] = {}
    for i, route in enumerate(notifiers.routes):
        where = path + ("routes", i)
        if route.region not in regions:
            known = ", ".join(sorted(regions)[:5])
            d.report(where + ("region",), f"unknown region {route.region!r}", f"a region id of the topology: {known}")
        elif route.region in out:
            d.report(where + ("region",), f"region {route.region!r} is routed twice")
        if route.receiver not in receivers:
            hint = f"defined: {', '.join(receivers)}" if receivers else "define it under notifiers.receivers"
            d.report(where + ("receiver",), f"unknown receiver {route.receiver!r}", hint)
        elif route.region in regions:
            out.setdefault(route.region, receivers[route.receiver])
    return tuple(out.items())
