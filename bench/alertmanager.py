"""Push latency into a real Alertmanager, and what an Alertmanager outage does to the pushes.

    .venv/bin/python bench/alertmanager.py [--count 200] [--outage 60] [--opened-per-second 2]

Runs Debian's prometheus-alertmanager on loopback (lab/alertmanager.py: its webhook posts to a
local sink, group_wait and group_interval 1 s) and the daemon's outbox and Alertmanager notifier
over a SQLite store, with the shipped channel policy (monitord/channels.py `channel_policies`: ALERT_RATE pushes per
second, retry defaults outage_probe 5 s, down_after 3; `--rate` to compare).

1. Latency: `count` incidents, one at a time: the firing push is queued as the pipeline queues
   it (commit, wake the outbox) and the time until the alert is listed by Alertmanager's
   GET /api/v2/alerts (polled every 5 ms) is taken; then the time until its webhook notice
   reaches the sink (which adds Alertmanager's group_wait of 1 s).
2. Outage: Alertmanager is stopped for `outage` seconds while incidents keep opening
   (`opened-per-second`), every third of them resolved 2 s after it opened; then started again.
   Reported: attempts made while it was down, the hold, the time from Alertmanager ready to the
   last push delivered, and whether every incident is where it should be (firing ones listed
   by Alertmanager, resolved ones not, and their resolve seen at the sink).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.alertmanager import AlertmanagerLab, available
from monitord.channels import ALERT_RATE
from monitord.model import Incident, IncidentKind, NodeRef, Notification, Phase
from monitord.outbox import ChannelPolicy, Outbox
from monitord.store import Store
from notices.alerts import AlertSettings, plan_alerts
from notifiers.alertmanager import AlertmanagerAlerts
from rules.engine import IncidentChange
from tests.plan_fixtures import TOPOLOGY

SETTINGS = AlertSettings(resend=60.0)


def incident(n: int, opened: float) -> Incident:
    return Incident(
        f"ARZ-2026-{n:06d}",
        IncidentKind.OUTAGE,
        NodeRef("device", "sisli-dslam-01"),
        Phase.OPEN,
        opened,
        opened,
        frozenset({"s1", "s2"}),
        ("bench",),
    )


def firing(inc: Incident) -> Notification:
    return plan_alerts([IncidentChange(inc, "opened")], TOPOLOGY, SETTINGS)[0][0]


def resolved(inc: Incident, at: float) -> Notification:
    done = replace(inc, phase=Phase.RESOLVED, updated_at=at, resolved_at=at)
    return plan_alerts([IncidentChange(done, "resolved")], TOPOLOGY, SETTINGS)[0][0]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def listed(lab: AlertmanagerLab) -> set[str]:
    return {a["labels"]["tracking"] for a in await lab.alerts()}


async def latency(lab: AlertmanagerLab, store: Store, outbox: Outbox, count: int) -> None:
    to_api, to_sink = [], []
    for n in range(1, count + 1):
        item = firing(incident(n, time.time()))
        start = time.time()
        store.commit_step(None, [], [(item, None)], start)
        outbox.wake()
        while item.recipient not in await listed(lab):
            await asyncio.sleep(0.005)
        to_api.append(time.time() - start)
        if n <= 5:  # the sink adds group_wait (1 s): a few are enough
            await lab.wait_for(lambda r=item.recipient: bool(lab.sunk("firing", tracking=r)), 10)
            to_sink.append(lab_arrival(lab, item.recipient) - start)
    ms = [v * 1000 for v in to_api]
    print(
        f"latency, queued -> listed by GET /api/v2/alerts, {count} incidents one at a time: "
        f"p50 {statistics.median(ms):.1f} ms, p95 {pct(ms, 0.95):.1f} ms, max {max(ms):.1f} ms"
    )
    print(f"latency, queued -> webhook notice at the sink (first {len(to_sink)}): " + ", ".join(f"{v:.2f} s" for v in to_sink))


def lab_arrival(lab: AlertmanagerLab, tracking: str) -> float:
    return next(r.at for r in lab.received for a in r.alerts() if a["labels"].get("tracking") == tracking)


async def outage(lab: AlertmanagerLab, store: Store, outbox: Outbox, seconds: float, per_second: float, first: int) -> None:
    failed_before = outbox.counts["alert"].failed
    await lab.stop()
    stopped = time.time()
    firing_left: set[str] = set()
    resolved_ones: set[str] = set()
    n, pending_resolves = first, []
    while time.time() - stopped < seconds:
        inc = incident(n, time.time())
        store.commit_step(None, [], [(firing(inc), None)], time.time())
        if n % 3 == 0:
            pending_resolves.append((inc, time.time() + 2))
        else:
            firing_left.add(inc.tracking)
        now = time.time()
        for inc_, at in [p for p in pending_resolves if p[1] <= now]:
            store.commit_step(None, [], [(resolved(inc_, at), None)], now)
            resolved_ones.add(inc_.tracking)
        pending_resolves = [p for p in pending_resolves if p[1] > now]
        outbox.wake()
        n += 1
        await asyncio.sleep(1 / per_second)
    for inc_, at in pending_resolves:
        store.commit_step(None, [], [(resolved(inc_, at), None)], time.time())
        resolved_ones.add(inc_.tracking)
    queued = store.depth()
    attempts = outbox.counts["alert"].failed - failed_before
    hold = outbox.holds.get("alert")
    await lab.start()
    ready = time.time()
    outbox.wake()
    while store.depth():
        await asyncio.sleep(0.01)
    drained = time.time() - ready
    await asyncio.sleep(3)  # group_wait + group_interval: the resolves' notices reach the sink
    active = await listed(lab)
    sunk_resolved = {a["labels"]["tracking"] for a in lab.sunk("resolved")}
    missing = firing_left - active
    wrongly_active = resolved_ones & active
    unseen_resolves = resolved_ones - sunk_resolved
    print(
        f"outage {seconds:.0f} s: {n - first} incidents opened meanwhile ({len(resolved_ones)} resolved), "
        f"{queued} pushes waiting at restart; {attempts} failed attempts while down; "
        f"hold: {hold.cause if hold else 'none'}"
    )
    print(
        f"after restart: all delivered {drained:.2f} s after Alertmanager was ready; "
        f"firing listed {len(firing_left) - len(missing)}/{len(firing_left)}, resolved still listed {len(wrongly_active)}, "
        f"resolves seen at the sink {len(resolved_ones) - len(unseen_resolves)}/{len(resolved_ones)}, dead {outbox.counts['alert'].dead}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--outage", type=float, default=60.0)
    parser.add_argument("--opened-per-second", type=float, default=2.0)
    parser.add_argument("--rate", type=float, default=ALERT_RATE, help="the alert channel's pushes per second")
    args = parser.parse_args()
    if not available():
        sys.exit("prometheus-alertmanager is not installed (./dev.sh test installs it)")
    with tempfile.TemporaryDirectory() as folder:
        async with AlertmanagerLab(Path(folder)) as lab:
            store = Store.open(Path(folder) / "state.db")
            notifier = AlertmanagerAlerts(lab.url, resend=SETTINGS.resend, timeout=10)
            outbox = Outbox(store, {"alert": notifier}, {"alert": ChannelPolicy(rate=args.rate)})
            runner = asyncio.create_task(outbox.run())
            try:
                await latency(lab, store, outbox, args.count)
                await outage(lab, store, outbox, args.outage, args.opened_per_second, args.count + 1)
            finally:
                await outbox.stop(timeout=5)
                await runner
                await notifier.close()
                store.close()
    print(json.dumps({"loadavg": Path("/proc/loadavg").read_text().split()[:3]}))


if __name__ == "__main__":
    asyncio.run(main())
