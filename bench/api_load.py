"""Does polling keep its schedule while hundreds of clients hammer the API?

    .venv/bin/python bench/api_load.py [--clients 500] [--seconds 60] [--mix mixed|metrics|api]

The lab world (monitord/demo.py's simulated ISP: snmpsim agents, ICMP on loopback, the local
Twilio, SMTP and ticket peers) runs healthy while the daemon polls it every 2 s, in this process.
A child process (lab/api_load.py) runs `--clients` concurrent aiohttp clients for `--seconds`
against /metrics, /api/incidents, /api/subscribers/..., diagnose (with the token), /health and
/api/maintenance. Printed: requests/s served, statuses, polls skipped during the load, the worst
poll lag the scheduler saw, the daemon loop's worst lag (a 10 ms sleeper), incidents opened,
SMS sent and lines that left "ok": on a healthy network every one of the last four must be 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab.api_load import LoopLag, swarm_process  # noqa: E402
from lab.world import start_world, stop_world  # noqa: E402
from monitord.config import load_config  # noqa: E402
from monitord.daemon import Daemon  # noqa: E402
from monitord.demo import until  # noqa: E402
from monitord.model import NodeRef, Status  # noqa: E402


async def run(clients: int, seconds: float, mix: str, base: str, nice: int) -> int:
    with tempfile.TemporaryDirectory(prefix="monitord-api-load-") as folder:
        root = Path(folder)
        world = await start_world(root, base=base)
        try:
            daemon = Daemon(load_config(world.config))
            stop = asyncio.Event()
            task = asyncio.create_task(daemon.run(stop))
            try:
                await until(lambda: daemon.ready.is_set() or task.done(), 30, "the daemon to start")
                if task.done():
                    task.result()
                topology = daemon.config.topology
                await until(lambda: all(daemon.line_state(i).status is Status.OK for i in topology.lines), 60, "every line ok")
                await asyncio.sleep(5)  # a few rounds of polls in steady state
                token = daemon.config.http.token.reveal() if daemon.config.http.token else None
                url = f"http://127.0.0.1:{daemon.http_port}"
                report = await measure(daemon, world, url, token, clients, seconds, mix, nice)
            finally:
                stop.set()
                await task
        finally:
            await stop_world(world)
    print(report)
    return 0


async def measure(daemon: Daemon, world, url: str, token: str | None, clients: int, seconds: float, mix: str, nice: int) -> str:
    assert daemon.scheduler is not None
    topology = daemon.config.topology
    skipped_before = sum(daemon.scheduler.skipped.values())
    incidents_before = {i.tracking for i in daemon.store.incidents(open_only=False)}
    sms_before = len(world.twilio.messages)
    not_ok: set[str] = set()  # lines and devices
    worst_poll_lag = 0.0

    async def watch() -> None:
        nonlocal worst_poll_lag
        while True:
            await asyncio.sleep(0.5)
            nodes = [NodeRef("line", i) for i in topology.lines] + [NodeRef("device", d) for d in topology.devices]
            not_ok.update(str(n) for n in nodes if daemon.node_state(n).status is not Status.OK)
            worst_poll_lag = max([worst_poll_lag, *(s.lag or 0.0 for s in daemon.scheduler.stats.values())])

    lag = LoopLag()
    lag.start()
    watcher = asyncio.create_task(watch())
    cpu = time.process_time()
    try:
        result = await swarm_process(url, clients, seconds, mix, sorted(topology.lines)[:50], token, nice)
        await asyncio.sleep(3)  # the last polls of the load come in
    finally:
        watcher.cancel()
        await lag.stop()
    cpu = time.process_time() - cpu
    skipped = sum(daemon.scheduler.skipped.values()) - skipped_before
    opened = [
        f"{i.kind.value} at {i.root}" for i in daemon.store.incidents(open_only=False) if i.tracking not in incidents_before
    ]
    sms = len(world.twilio.messages) - sms_before
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(result.statuses.items()))
    served = ", ".join(f"{path} {n / result.seconds:.0f}/s" for path, n in sorted(result.by_path.items()))
    return "\n".join(
        [
            f"{clients} clients (nice {nice}), mix {mix}, {result.seconds:.1f} s, "
            f"{len(topology.devices)} devices / {len(topology.lines)} lines polled every 2 s",
            f"requests: {result.requests} ({statuses}); served {result.served_per_second:.0f}/s",
            f"served by route: {served}",
            f"polls skipped during the load: {skipped}; worst poll lag seen: {worst_poll_lag * 1000:.0f} ms",
            f"daemon loop: worst lag {lag.worst * 1000:.1f} ms; daemon process CPU {cpu:.1f} s",
            f"incidents opened: {len(opened)} {opened or ''}; SMS sent: {sms}; nodes that left ok: {len(not_ok)}",
            f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--mix", choices=("mixed", "metrics", "api"), default="mixed")
    parser.add_argument("--nice", type=int, default=0, help="run the clients at this lower CPU priority")
    parser.add_argument("--base", default=f"127.{50 + os.getpid() % 150}.200", help="the lab's loopback block")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return asyncio.run(run(args.clients, args.seconds, args.mix, args.base, args.nice))


if __name__ == "__main__":
    sys.exit(main())
