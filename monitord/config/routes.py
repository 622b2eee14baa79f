"""`notifiers.receivers` and `notifiers.routes`: which NOC e-mail and which RT queue hear of which region's incidents.

Named receivers and routes that point at them, as Alertmanager's config keeps them: a route to a
region the topology does not declare, or to a receiver not defined, is refused at its line, and
so is a second route for one region; nothing of a config at fault is applied (a reload keeps the
running one). A region without a route goes to `email.noc` and `tickets.queue`, and so does
what its receiver does not name (a receiver with a queue only leaves its regions' e-mail to
`email.noc`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from monitord.config import layout
from monitord.config.decoder import Decoder


def read_routes(d: Decoder, notifiers: layout.Notifiers, regions: Collection[str]) -> Routes:
    """NOC e-mail and RT queue per routed region; problems reported on `d`."""
    path = ("notifiers",)
    receivers: dict[str, layout.Receiver] = {}
    for i, named in enumerate(notifiers.receivers):
        where = path + ("receivers", i)
        if named.name in receivers:
            d.report(where + ("name",), f"receiver {named.name!r} is defined twice")
        receivers[named.name] = named
        if not named.email and named.queue is None:
            d.report(where, f"receiver {named.name!r} names no one", "give it email, queue or both")
        if named.email and notifiers.email is None:
            d.report(where + ("email",), "NOC e-mail, but notifiers.email is not configured")
        if named.queue is not None and (notifiers.tickets is None or notifiers.tickets.kind != "rt"):
            d.report(where + ("queue",), "an RT queue, but notifiers.tickets is not Request Tracker (kind: rt)")
    emails: dict[str, tuple[str, ...]] = {}
    queues: dict[str, str] = {}
    routed: set[str] = set()
    for i, route in enumerate(notifiers.routes):
        where = path + ("routes", i)
        if route.region not in regions:
            known = ", ".join(sorted(regions)[:5])
            d.report(where + ("region",), f"unknown region {route.region!r}", f"a region id of the topology: {known}")
        elif route.region in routed:
            d.report(where + ("region",), f"region {route.region!r} is routed twice")
        receiver = receivers.get(route.receiver)
        if receiver is None:
            hint = f"defined: {', '.join(receivers)}" if receivers else "define it under notifiers.receivers"
            d.report(where + ("receiver",), f"unknown receiver {route.receiver!r}", hint)
        elif route.region in regions and route.region not in routed:
            if receiver.email:
                emails[route.region] = tuple(receiver.email)
            if receiver.queue is not None:
                queues[route.region] = receiver.queue
        routed.add(route.region)
    return Routes(tuple(emails.items()), tuple(queues.items()))


@dataclass(frozen=True, slots=True)
class Routes:
    emails: tuple[tuple[str, tuple[str, ...]], ...]  # (region id, its NOC e-mail)
    queues: tuple[tuple[str, str], ...]  # (region id, its RT queue)
