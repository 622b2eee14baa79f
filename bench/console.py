"""The web console's pages at 100,000 lines: how long each takes over HTTP, how big it is, and
whether serving it held up the daemon's event loop (issue 16 items 1 and 3).

    .venv/bin/python bench/console.py [--lines 100032] [--repeat 10] [--fault exchange|region|none]
        [--modems 40] [--agent-processes 2] [--settle 30]

The real `Daemon.run` in this process, with a `console:` section (a noc user), against
bench/capacity.py's inventory served as bench/endurance.py serves it: DSLAMs by lab/table_agent.py
on loopback addresses of their own (`--blocks`), modems answering ICMP on loopback. After the
warm-up (every device and line OK), `--fault` silences with nftables (lab/faults.py) one
exchange's or one region's DSLAMs and modems, and `--modems` single modems elsewhere, so that the
board has incidents; the bench waits for the fault's incident and `--settle` seconds more.

Then one client (a thread of this process, one request at a time, plain HTTP, as a browser on the
NOC's desk) signs in as the noc user and GETs each page `--repeat` times: the board, its
refreshed rows, the tree, the silences and maintenance pages, and lookups by a healthy
subscriber's id and phone number, by the fault's tracking number (the console diagnoses its first
three lines live: SNMP and ICMP to silent devices) and by one of its subscribers' ids. A lookup's
live diagnosis is limited by the API to 2 a second (monitord/http.py `DIAGNOSE_RATE`): the bench
waits between lookups so as not to be refused, and counts any 429. Reported per page: wall time
from request to the last byte (median, p95, max), the HTML's size, statuses, and the worst lag of
the daemon's loop while that page was being served (a probe on the loop sleeping 100 ms, as in
bench/endurance.py), against the same probe over `--idle` seconds with no request; then the
daemon's own `monitord_event_loop_lag_seconds` and polls skipped while the pages were fetched.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import http.client
import statistics
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.capacity import device_address, write_inventory  # noqa: E402
from bench.endurance import by_class, region_nodes, scrape, warm_up  # noqa: E402
from lab.faults import Faults  # noqa: E402
from lab.table_agent import start_table_agents  # noqa: E402
from monitord.config import Config, load_config  # noqa: E402
from monitord.console_auth import hash_password  # noqa: E402
from monitord.daemon import Daemon  # noqa: E402
from monitord.demo import until  # noqa: E402
from monitord.model import NodeRef  # noqa: E402

LAG_PROBE = 0.1  # seconds the lag probe sleeps
PASSWORD = "bench-noc-password"
DIAGNOSE_EVERY = 0.5  # seconds a live diagnosis costs of the API's budget (2 a second)


@dataclass(slots=True)
class Lag:
    """Overshoots of a 100 ms sleep on the daemon's loop, each with when it ended (perf_counter)."""

    seen: list[tuple[float, float]] = field(default_factory=list)

    async def watch(self) -> None:
        while True:
            began = time.perf_counter()
            await asyncio.sleep(LAG_PROBE)
            ended = time.perf_counter()
            self.seen.append((ended, max(0.0, ended - began - LAG_PROBE)))

    def worst(self, spans: list[tuple[float, float]]) -> float:
        """The largest overshoot of a sleep that ended within one of `spans` (or one probe after it)."""
        return max((lag for end, lag in self.seen if any(a <= end <= b + LAG_PROBE for a, b in spans)), default=0.0)


@dataclass(frozen=True, slots=True)
class Query:
    """A page the client asks for: its name in the report, its path, what its HTML must hold, and
    how many lines it diagnoses live (a lookup)."""

    name: str
    path: str
    expect: str
    diagnosed: int = 0


@dataclass(frozen=True, slots=True)
class PageFigures:
    name: str
    path: str
    times: tuple[float, ...]  # seconds, request to last byte
    size: int  # bytes of the HTML (the last answer)
    wire: int  # ... as sent: fewer when compressed
    statuses: dict[int, int]
    complete: int  # answers holding what the page must show
    refused: int  # 429s (the diagnosis budget), asked again
    lag_s: float  # worst loop lag while this page was served

    def median(self) -> float:
        return statistics.median(self.times)

    def p95(self) -> float:
        ordered = sorted(self.times)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


@dataclass(frozen=True, slots=True)
class Report:
    lines: int
    devices: int
    warmup_s: float
    not_ok: int
    fault: str  # what was silenced
    detected_s: float | None
    open_incidents: int
    pages: list[PageFigures]
    idle_lag_s: float  # worst probe overshoot over the idle seconds before the pages
    busy_lag_s: float  # ... while the pages were fetched
    lag_metric: float | None  # monitord_event_loop_lag_seconds after the pages
    skipped: dict[str, float]  # polls skipped by probe class while the pages were fetched
    load: str


class Client:
    """One signed-in user over one kept-alive HTTP connection, in a thread (blocking calls)."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookie = ""

    def sign_in(self, user: str, password: str) -> None:
        form = urlencode({"user": user, "password": password})
        status, _, headers = self.request("POST", "/console/login", form, {"Content-Type": "application/x-www-form-urlencoded"})
        cookie = headers.get("Set-Cookie", "")
        if status != 303 or not cookie:
            raise RuntimeError(f"sign-in: {status}, no session cookie")
        self.cookie = cookie.split(";", 1)[0]

    def get(self, path: str) -> tuple[int, bytes, int]:
        """The status, the page (unzipped) and the bytes that came over the wire."""
        status, body, headers = self.request("GET", path, None, {"Cookie": self.cookie, "Accept-Encoding": "gzip, deflate"})
        wire = len(body)
        if headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        elif headers.get("Content-Encoding") == "deflate":
            body = zlib.decompress(body)
        return status, body, wire

    def request(self, method: str, path: str, body: str | None, headers: dict[str, str]) -> tuple[int, bytes, Any]:
        self.connection.request(method, path, body, headers)
        answer = self.connection.getresponse()
        return answer.status, answer.read(), answer.headers

    def close(self) -> None:
        self.connection.close()


def queries(config: Config, silent: set[NodeRef], lonely: list[str], tracking: str | None) -> list[Query]:
    """The pages, with lookups of a healthy subscriber (by id and by a phone no other line has)
    and, with a fault, of the fault's incident and one of its subscribers."""
    topology = config.topology
    phones = Counter(line.phone for line in topology.lines.values() if line.phone)
    healthy = [
        i for i, line in topology.lines.items() if NodeRef("line", i) not in silent and line.phone and phones[line.phone] == 1
    ]
    line = healthy[len(healthy) // 2]
    phone = topology.lines[line].phone or ""
    found = [
        Query("board", "/console", 'id="board"'),
        Query("board rows", "/console/rows", 'id="incident-' if silent or lonely else 'id="none-open"'),
        Query("tree", "/console/tree", 'id="tree"'),
        Query("silences", "/console/silences", 'action="/console/silences"'),
        Query("maintenance", "/console/maintenance", 'action="/console/maintenance"'),
        Query("lookup: subscriber id", "/console/lookup?" + urlencode({"q": line}), f'id="subscriber-{line}"', 1),
        Query("lookup: phone", "/console/lookup?" + urlencode({"q": phone}), f'id="subscriber-{line}"', 1),
    ]
    if tracking is not None:
        affected = sorted(n.id for n in silent if n.level == "line")
        found.append(Query("lookup: tracking number", "/console/lookup?" + urlencode({"q": tracking}), "subscriber-", 3))
        found.append(
            Query(
                "lookup: an affected id", "/console/lookup?" + urlencode({"q": affected[0]}), f'id="subscriber-{affected[0]}"', 1
            )
        )
    return found


def exchange_nodes(config: Config, exchange: str) -> tuple[set[NodeRef], list[str]]:
    """Every node at or under `exchange` and the addresses to silence (as `region_nodes` for a region)."""
    topology = config.topology
    devices = {d.id: d for d in topology.devices.values() if d.exchange == exchange}
    nodes = {NodeRef("exchange", exchange)} | {NodeRef("device", d) for d in devices}
    nodes |= {NodeRef("cabinet", d.cabinet) for d in devices.values() if d.cabinet}
    addresses = [d.address for d in devices.values()]
    for line in topology.lines.values():
        if line.device in devices:
            nodes.add(NodeRef("line", line.id))
            if line.modem:
                addresses.append(line.modem)
    return nodes, addresses


async def fetch(client: Client, query: Query, repeat: int, lag: Lag) -> PageFigures:
    times: list[float] = []
    spans: list[tuple[float, float]] = []
    statuses: Counter[int] = Counter()
    complete = refused = size = sent = 0
    while len(times) < repeat:
        began = time.perf_counter()
        status, body, wire = await asyncio.to_thread(client.get, query.path)
        ended = time.perf_counter()
        if status == 429:
            refused += 1
            await asyncio.sleep(1.0)
            continue
        times.append(ended - began)
        spans.append((began, ended))
        statuses[status] += 1
        complete += query.expect.encode() in body
        size, sent = len(body), wire
        if query.diagnosed:  # within the API's diagnosis budget
            await asyncio.sleep(max(0.0, query.diagnosed * DIAGNOSE_EVERY - (ended - began)))
    return PageFigures(query.name, query.path, tuple(times), size, sent, dict(statuses), complete, refused, lag.worst(spans))


async def run(
    folder: Path,
    lines: int,
    ports: int = 48,
    repeat: int = 10,
    agent_processes: int = 2,
    fault: str = "exchange",
    modems: int = 40,
    polling: dict[str, Any] | None = None,
    rules: dict[str, Any] | None = None,
    warmup_timeout: float = 600.0,
    settle: float = 30.0,
    idle: float = 10.0,
    blocks: tuple[int, int] = (40, 42),
) -> Report:
    """`blocks`: second octets of the DSLAMs' and modems' addresses (apart from the other benches'
    and the tests', since the fault silences them). `fault`: "exchange" (ex-1-00), "region"
    (region-1) or "none"."""
    devices = -(-lines // ports)
    load_before = Path("/proc/loadavg").read_text().split()[0]
    agents = start_table_agents(folder, [device_address(n, blocks[0]) for n in range(devices)], ports, agent_processes)
    faults = Faults()
    try:
        path = write_inventory(folder, devices, ports, agents.port, polling, blocks)
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        console = {"users": [{"name": "noc", "role": "noc", "password": hash_password(PASSWORD)}]}
        raw = {**raw, "console": console, **({"rules": rules} if rules else {})}
        path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
        config = load_config(path, environ={"BENCH_COMMUNITY": "public"})
        silent: set[NodeRef] = set()
        addresses: list[str] = []
        if fault == "region":
            silent, addresses = region_nodes(config, "region-1")
        elif fault == "exchange":
            silent, addresses = exchange_nodes(config, "ex-1-00")
        others = sorted(i for i, line in config.topology.lines.items() if line.modem and NodeRef("line", i) not in silent)
        lonely = [others[n * len(others) // modems] for n in range(modems)] if modems else []
        daemon = Daemon(config)
        stop = asyncio.Event()
        began = time.monotonic()
        task = asyncio.create_task(daemon.run(stop))
        try:
            await until(lambda: daemon.ready.is_set() or task.done(), 300, "the daemon to start")
            if task.done():
                task.result()
            port = daemon.http_port
            assert port is not None
            not_ok = await warm_up(daemon, warmup_timeout)
            warmup = time.monotonic() - began
            detected, tracking = None, None
            if addresses or lonely:
                await asyncio.to_thread(faults.silence, *addresses, *(config.topology.lines[i].modem or "" for i in lonely))
                silenced = time.monotonic()
                if silent:
                    await until(lambda: first_incident(daemon, silent), 300, "the fault's first incident")
                    detected = time.monotonic() - silenced
                await asyncio.sleep(settle)
                if silent:
                    tracking = await until(lambda: first_incident(daemon, silent), 300, "the fault's incident")
                    tracking = tracking.tracking  # the one the fault grew into
            lag = Lag()
            prober = asyncio.create_task(lag.watch())
            await asyncio.sleep(idle)
            idle_lag = max((x for _, x in lag.seen), default=0.0)
            _, before = await asyncio.to_thread(scrape, port)
            client = Client(port)
            try:
                await asyncio.to_thread(client.sign_in, "noc", PASSWORD)
                started = time.perf_counter()
                pages = [await fetch(client, q, repeat, lag) for q in queries(config, silent, lonely, tracking)]
            finally:
                client.close()
            busy_lag = max((x for end, x in lag.seen if end >= started), default=0.0)
            prober.cancel()
            _, after = await asyncio.to_thread(scrape, port)
            open_incidents = len(daemon.open_incidents())
        finally:
            stop.set()
            await task
    finally:
        faults.close()
        agents.stop()
    lag_metric = by_class(after, "monitord_event_loop_lag_seconds")
    first = by_class(before, "monitord_polls_skipped_total")
    what = {"exchange": "exchange ex-1-00", "region": "region region-1", "none": "nothing"}[fault]
    return Report(
        lines=len(config.topology.lines),
        devices=devices,
        warmup_s=warmup,
        not_ok=not_ok,
        fault=f"{what} ({sum(n.level == 'line' for n in silent):,} lines) and {len(lonely)} modems elsewhere",
        detected_s=detected,
        open_incidents=open_incidents,
        pages=pages,
        idle_lag_s=idle_lag,
        busy_lag_s=busy_lag,
        lag_metric=max(lag_metric.values()) if lag_metric else None,
        skipped={c: n - first.get(c, 0) for c, n in by_class(after, "monitord_polls_skipped_total").items()},
        load=f"{load_before} -> {Path('/proc/loadavg').read_text().split()[0]}",
    )


def first_incident(daemon: Daemon, nodes: set[NodeRef]) -> Any:
    """The open incident rooted highest among `nodes` (the fault's, once it has grown), or None."""
    ours = [i for i in daemon.open_incidents() if i.root in nodes]
    rank: Callable[[Any], int] = lambda i: ("region", "exchange", "cabinet", "device", "line").index(i.root.level)  # noqa: E731
    return min(ours, key=rank, default=None)


def show(report: Report) -> str:
    detected = "" if report.detected_s is None else f", its first incident after {report.detected_s:.1f} s"
    metric = "not exported" if report.lag_metric is None else f"{report.lag_metric * 1000:.0f} ms"
    skipped = ", ".join(f"{c} {n:.0f}" for c, n in sorted(report.skipped.items())) or "none"
    rows = [
        f"| {p.name} | {p.median() * 1000:,.0f} | {p.p95() * 1000:,.0f} | {max(p.times) * 1000:,.0f} | {p.size:,} | {p.wire:,} | "
        f"{'/'.join(f'{s}x{n}' for s, n in sorted(p.statuses.items()))} | {p.complete}/{len(p.times)} | {p.refused} | "
        f"{p.lag_s * 1000:,.0f} |"
        for p in report.pages
    ]
    return "\n".join(
        [
            f"{report.devices:,} DSLAMs, {report.lines:,} lines; warm-up {report.warmup_s:.0f} s, {report.not_ok:,} nodes not OK after it; "
            f"load (1 min) {report.load}",
            f"silenced: {report.fault}{detected}; {report.open_incidents} incidents open at the end",
            "",
            "| page | median ms | p95 ms | max ms | HTML bytes | sent | statuses | complete | 429s | loop lag ms |",
            "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|",
            *rows,
            "",
            f"loop lag (bench probe, 100 ms sleeps): idle {report.idle_lag_s * 1000:.0f} ms at most, "
            f"while pages were fetched {report.busy_lag_s * 1000:.0f} ms at most; "
            f"monitord_event_loop_lag_seconds after them {metric}; polls skipped meanwhile: {skipped}",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_032)
    parser.add_argument("--ports", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=10, help="requests per page")
    parser.add_argument("--agent-processes", type=int, default=2)
    parser.add_argument("--fault", choices=("exchange", "region", "none"), default="exchange")
    parser.add_argument("--modems", type=int, default=40, help="single modems silenced outside the fault")
    parser.add_argument("--warmup", type=float, default=600.0, help="at most this many seconds until all is OK")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds after the fault's first incident")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of loop lag measured with no request")
    parser.add_argument(
        "--blocks", type=int, nargs=2, default=(40, 42), help="second octets of the DSLAMs' and modems' addresses"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="console-bench-") as folder:
        report = asyncio.run(
            run(
                Path(folder),
                args.lines,
                args.ports,
                args.repeat,
                args.agent_processes,
                args.fault,
                args.modems,
                warmup_timeout=args.warmup,
                settle=args.settle,
                idle=args.idle,
                blocks=tuple(args.blocks),
            )
        )
    print(show(report))


if __name__ == "__main__":
    main()
