"""Per-unit costs of the cluster roles (issue 15 item 4): pollers, the correlator, PostgreSQL, the notifier.

    PYTHONPATH=. .venv/bin/python bench/scale_out.py [--lines 24000] [--pollers 1 2 4] [--window 60]
        [--interval 15] [--icmp-interval SECONDS] [--fault-regions 1] [--sms 1000] [--quick] [--json]

A throw-away PostgreSQL 15 (lab/postgres.py, FAST: fsync and full-page writes off), the fast lab
responder of the scale-up issue (lab/table_agent.py DSLAMs of 48 ports, modems answered by the
kernel on loopback addresses) and bench/capacity.py's inventory (8 regions, 16 exchanges each: up
to 128 shards). For each poller count, on a fresh database: one `monitord run --role correlator`
and N `monitord run --role poller` processes, the line tables every `--interval` seconds and the
modems' echoes every `--icmp-interval` (by default the same; shipped icmp_count and timeouts,
lab/world.py's FAST_RULES so that a fault and its repair fit in a minute), no notifiers (the
correlator's CPU is then judging and incidents only).

Once every shard is held and every line is OK, and 1.2 table intervals more (a line is OK from its
first echo; its first table samples, which the correlator judges and saves for the first time,
must not fall in the window), a steady window of `--window` seconds: each
process's CPU (utime + stime from /proc/<pid>/stat), the PostgreSQL server's (its postmaster and
backends), the samples the pollers wrote (`sample_batches`, by level and probe), WAL bytes
(`pg_current_wal_lsn`), commits and rows (`pg_stat_database`) over it. Then a fault: nftables
drops everything to one region's DSLAMs and modems (`--fault-regions`: more) until the
correlator counts none of their lines OK and an incident is open, then lets it through until
all are OK again and the incidents resolved (FAST_RULES: stable 6 s); the same counters over
that phase, less the steady window's rate for its length, divided by the state changes (each of
the region's lines and devices going down and coming back: two each) give the cost of a state
change.

Last, the notifier: `--sms` SMS queued in a fresh database and delivered by one worker
(bench/notifier_workers.py's, the real `Outbox` under a lease) to the local Twilio in a process of
its own at 500/s: its CPU per SMS. /proc/loadavg is printed before and after every run. All on
loopback; the fault needs root and nftables.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.capacity import device_address, write_inventory  # noqa: E402
from bench.endurance import region_nodes  # noqa: E402
from bench.notifier_workers import one_run as deliver_sms  # noqa: E402
from bench.notifier_workers import server_cpu  # noqa: E402
from lab.faults import Faults  # noqa: E402
from lab.postgres import FAST, PgCluster, running_cluster  # noqa: E402
from lab.table_agent import TableAgents, start_table_agents  # noqa: E402
from lab.world import FAST_RULES  # noqa: E402
from monitord.config import load_config  # noqa: E402
from monitord.demo import until  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")
FIRST_TABLES = 1.2  # table intervals waited after every line is OK, before the steady window


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_of(pid: int) -> float:
    """CPU-seconds (user + system) of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


@dataclass(slots=True)
class Node:
    role: str
    proc: subprocess.Popen[bytes]
    log: Path
    port: int = 0

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def spawn(config: Path, role: str, n: int) -> Node:
    log = config.parent / f"{role}-{n}.log"
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    env.update(PYTHONPATH=str(ROOT), BENCH_COMMUNITY="public")
    with log.open("wb") as sink:
        command = [sys.executable, "-m", "monitord.cli", "run", str(config), "--role", role]
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, env=env, cwd=ROOT)
    return Node(role, proc, log)


async def listening(node: Node, timeout: float) -> None:
    def port() -> int | None:
        if node.proc.poll() is not None:
            raise RuntimeError(f"{node.role} exited with {node.proc.returncode}:\n{node.text()[-3000:]}")
        found = LISTENING.search(node.text())
        return int(found.group(1)) if found else None

    node.port = await until(port, timeout, f"the {node.role} to listen")


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
        text = answer.read().decode()
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def lines_ok(port: int, region: str | None = None) -> int:
    """Lines the correlator counts OK (in the region, if given)."""
    rows = scrape(port).get("monitord_lines", [])
    return int(sum(v for labels, v in rows if labels["state"] == "ok" and region in (None, labels["region"])))


def incidents_open(port: int) -> int:
    return int(sum(v for _, v in scrape(port).get("monitord_incidents_open", [])))


def sql(url: str, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as db:
        return db.execute(statement, params).fetchall()


@dataclass(frozen=True, slots=True)
class Counters:
    """Everything counted at one instant; a phase's figures are the difference of two."""

    at: float
    cpu: dict[str, float]  # role-n -> CPU-seconds
    server_cpu: float
    agents_cpu: float
    wal: int  # bytes, the cluster's WAL position
    commits: int
    rows: int  # inserted + updated + deleted in the database
    seq: int  # the last sample batch
    target_rows: int  # engine_targets rows inserted or updated (the correlator's per-target state)
    tables: dict[str, int]  # rows inserted, updated or deleted, by table
    unchanged: float  # line samples the pollers left out (rules/changes.py)
    unchanged_adsl: float  # ... of them, ADSL rows (a line's table poll, read but not written)

    def minus(self, before: Counters) -> dict[str, float]:
        spent = {k: v - before.cpu[k] for k, v in self.cpu.items()}
        return {
            "seconds": self.at - before.at,
            "pollers_cpu": sum(v for k, v in spent.items() if k.startswith("poller")),
            "correlator_cpu": spent["correlator-0"],
            "server_cpu": self.server_cpu - before.server_cpu,
            "agents_cpu": self.agents_cpu - before.agents_cpu,
            "wal": self.wal - before.wal,
            "commits": self.commits - before.commits,
            "rows": self.rows - before.rows,
            "target_rows": self.target_rows - before.target_rows,
            "unchanged": self.unchanged - before.unchanged,
            "unchanged_adsl": self.unchanged_adsl - before.unchanged_adsl,
        } | {f"rows:{t}": n - before.tables.get(t, 0) for t, n in self.tables.items() if n != before.tables.get(t, 0)}


def count(cluster: PgCluster, url: str, nodes: dict[str, Node], agents: TableAgents) -> Counters:
    time.sleep(1.1)  # backends report their statistics at most once a second
    database = url.rpartition("/")[2]
    (wal,) = sql(url, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")[0]
    commits, rows = sql(
        url,
        "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted FROM pg_stat_database WHERE datname = %s",
        database,
    )[0]
    tables = dict(sql(url, "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables"))
    targets = sql(url, "SELECT coalesce(sum(n_tup_ins + n_tup_upd), 0) FROM pg_stat_user_tables WHERE relname = 'engine_targets'")
    (seq,) = sql(url, "SELECT coalesce(max(seq), 0) FROM sample_batches")[0]
    return Counters(
        at=time.monotonic(),
        cpu={name: cpu_of(node.proc.pid) for name, node in nodes.items()},
        server_cpu=server_cpu(cluster),
        agents_cpu=sum(cpu_of(pid) for pid in agents.pids()),
        wal=int(wal),
        commits=int(commits),
        rows=int(rows),
        seq=int(seq),
        target_rows=int(targets[0][0]),
        tables={str(t): int(n) for t, n in tables.items()},
        **left_out(node.port for node in nodes.values() if node.role == "poller" and node.port),
    )


def left_out(ports: Iterable[int]) -> dict[str, float]:
    """What the pollers counted in monitord_poller_unchanged_samples_total: in all (`unchanged`),
    and of ADSL rows (`unchanged_adsl`); one scrape each."""
    series = [sample for port in ports for sample in scrape(port).get("monitord_poller_unchanged_samples_total", [])]
    return {
        "unchanged": sum(v for _, v in series),
        "unchanged_adsl": sum(v for labels, v in series if labels.get("probe") == "snmp:adsl"),
    }


class Tally:
    """The samples the pollers wrote, read as they come: the correlator deletes the batches its
    steps include every 30 s (monitord/feed.py), so they are read every second from one session,
    whose backend's CPU is then taken off the server's."""

    def __init__(self, url: str, after: int) -> None:
        self.db = psycopg.connect(url, autocommit=True)
        (self.pid,) = self.db.execute("SELECT pg_backend_pid()").fetchone() or (0,)
        self.last, self.kinds, self.batches, self.bytes = after, Counter[str](), 0, 0

    def read(self, through: int | None = None) -> None:
        rows = self.db.execute(
            "SELECT seq, samples FROM sample_batches WHERE seq > %s AND seq <= coalesce(%s, seq) ORDER BY seq",
            (self.last, through),
        ).fetchall()
        for seq, text in rows:
            if seq != self.last + 1:
                self.kinds["missed batches"] += seq - self.last - 1  # deleted before they were read
            self.last = seq
            self.batches += 1
            self.bytes += len(text.encode())
            self.kinds.update(f"{level} {probe}" for level, _, probe, *_ in json.loads(text))

    def backend_cpu(self) -> float:
        return cpu_of(self.pid) if os.path.exists(f"/proc/{self.pid}/stat") else 0.0

    def close(self) -> None:
        self.db.close()


def sizes(url: str) -> dict[str, int]:
    """Bytes on disk: the database, and its largest tables with their indexes and TOAST."""
    (database,) = sql(url, "SELECT pg_database_size(current_database())")[0]
    tables = sql(
        url,
        "SELECT relname, pg_total_relation_size(relid) FROM pg_stat_user_tables ORDER BY 2 DESC LIMIT 4",
    )
    (targets,) = sql(url, "SELECT count(*) FROM engine_targets")[0]
    return {"database": int(database), "engine_targets rows": int(targets), **{str(t): int(n) for t, n in tables}}


@dataclass(slots=True)
class Run:
    pollers: int
    lines: int
    devices: int
    interval: float  # between a line's table polls
    icmp_interval: float  # between its modem's echoes
    load: list[str] = field(default_factory=list)  # /proc/loadavg at start, after warm-up, after the window, at the end
    shards: list[int] = field(default_factory=list)  # shards each poller held in the window
    steady: dict[str, float] = field(default_factory=dict)
    samples: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    batch_bytes: int = 0
    fault: dict[str, float] = field(default_factory=dict)
    changes: int = 0  # state changes in the fault phase: the region's lines and devices down, then back
    detected_s: float = 0.0
    fault_regions: int = 0  # regions silenced (region-0 up)
    not_back: int = 0  # lines not OK again 180 s after the repair (0: all were)
    resolved: bool = False  # every incident resolved within 60 s of the lines being OK
    repaired_s: float = 0.0
    sizes: dict[str, int] = field(default_factory=dict)  # bytes on disk at the window's end: database, engine_targets, ...

    def figures(self) -> dict[str, float]:
        s, f = self.steady, self.fault
        secs = s["seconds"]
        # a line's table row read (written or left out), with its if-mib row and its echoes
        line_polls = self.samples["line snmp:adsl"] + s["unchanged_adsl"]
        total = sum(n for k, n in self.samples.items() if k != "missed batches")
        figures = {
            "poller_us_per_line_poll": s["pollers_cpu"] / line_polls * 1e6,
            "poller_us_per_line_s": s["pollers_cpu"] / (self.lines * secs) * 1e6,
            "poller_us_per_sample": s["pollers_cpu"] / total * 1e6,
            "correlator_us_per_sample": s["correlator_cpu"] / total * 1e6,
            "correlator_us_per_line_s": s["correlator_cpu"] / (self.lines * secs) * 1e6,
            "left_out_share": s["unchanged"] / (s["unchanged"] + total),
            "server_us_per_sample": s["server_cpu"] / total * 1e6,
            "wal_bytes_per_sample": s["wal"] / total,
            "batch_bytes_per_sample": self.batch_bytes / total,
            "samples_per_s": total / secs,
            "of_schedule": line_polls / (self.lines * secs / self.interval),  # line table polls made / scheduled
            "wal_bytes_per_s": s["wal"] / secs,
            "commits_per_s": s["commits"] / secs,
            "rows_per_s": s["rows"] / secs,
            "agents_share": s["agents_cpu"] / secs / 2,
        }
        if f and self.changes:
            extra = {
                k: f[k] - s[k] * f["seconds"] / secs
                for k in ("correlator_cpu", "server_cpu", "wal", "rows", "target_rows", "commits")
            }
            figures |= {
                "correlator_us_per_change": extra["correlator_cpu"] / self.changes * 1e6,
                "server_us_per_change": extra["server_cpu"] / self.changes * 1e6,
                "wal_bytes_per_change": extra["wal"] / self.changes,
                "rows_per_change": extra["rows"] / self.changes,
                "target_rows_per_change": extra["target_rows"] / self.changes,
                "commits_per_change": extra["commits"] / self.changes,
            }
        return figures


async def one_run(
    cluster: PgCluster,
    folder: Path,
    agents: TableAgents,
    pollers: int,
    *,
    interval: float,
    icmp_interval: float,
    window: float,
    fault: bool,
    warmup: float,
    regions: int = 1,
    resend: float | None = None,
) -> Run:
    database = f"scale_{pollers}_{int(time.time())}"
    cluster.admin(f"CREATE DATABASE {database}")
    url = cluster.url(database)
    path = folder / "config.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw.pop("state_file", None)
    raw |= {"state": url, "cluster": {"lease": "6s", "batch_every": "1s"}, "rules": FAST_RULES}
    if resend is not None:
        raw["cluster"]["resend"] = f"{resend:g}s"
    raw["polling"] = {**raw.get("polling", {}), "line_interval": f"{interval:g}s", "icmp_interval": f"{icmp_interval:g}s"}
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    config = load_config(path, environ={"BENCH_COMMUNITY": "public"})
    topology = config.topology
    shards = {d.exchange for d in topology.devices.values()}
    run = Run(pollers, len(topology.lines), len(topology.devices), interval, icmp_interval, load=[loadavg()])
    nodes: dict[str, Node] = {"correlator-0": spawn(path, "correlator", 0)}
    faults = Faults()
    try:
        await listening(nodes["correlator-0"], 120)
        for n in range(pollers):
            nodes[f"poller-{n}"] = spawn(path, "poller", n)
        for node in nodes.values():
            await listening(node, 120)
        correlator = nodes["correlator-0"].port

        def split() -> list[int] | None:
            held = sql(
                url, "SELECT owner, count(*) FROM shards WHERE expires_at > extract(epoch FROM clock_timestamp()) GROUP BY 1"
            )
            counts = sorted(int(n) for _, n in held)
            fair = len(shards) // pollers
            return counts if len(counts) == pollers and sum(counts) == len(shards) and counts[0] >= fair - 1 else None

        await until(split, warmup, f"the {len(shards)} shards split among {pollers} pollers")
        await until(lambda: lines_ok(correlator) == run.lines, warmup, "every line OK")
        await asyncio.sleep(FIRST_TABLES * interval)
        run.load.append(loadavg())
        before = await asyncio.to_thread(count, cluster, url, nodes, agents)
        tally = Tally(url, before.seq)
        try:
            tally_cpu = tally.backend_cpu()
            ends = time.monotonic() + window
            while time.monotonic() < ends:
                await asyncio.sleep(1.0)
                await asyncio.to_thread(tally.read)
            after = await asyncio.to_thread(count, cluster, url, nodes, agents)
            await asyncio.to_thread(tally.read, after.seq)
            tally_cpu = tally.backend_cpu() - tally_cpu
        finally:
            tally.close()
        run.shards = split() or []
        run.load.append(loadavg())
        run.steady = after.minus(before)
        run.steady["server_cpu"] -= tally_cpu
        run.steady["tally_cpu"] = tally_cpu
        run.samples, run.batches, run.batch_bytes = tally.kinds, tally.batches, tally.bytes
        run.sizes = await asyncio.to_thread(sizes, url)
        if fault:
            silenced = [region_nodes(config, f"region-{r}") for r in range(regions)]
            addresses = [a for _, some in silenced for a in some]
            region_lines = sum(n.level == "line" for ns, _ in silenced for n in ns)
            region_devices = sum(n.level == "device" for ns, _ in silenced for n in ns)
            run.fault_regions = regions
            fault_before = await asyncio.to_thread(count, cluster, url, nodes, agents)
            await asyncio.to_thread(faults.silence, *addresses)
            began = time.monotonic()
            down = lambda: all(lines_ok(correlator, f"region-{r}") == 0 for r in range(regions))  # noqa: E731
            await until(down, 120, f"no line of the {regions} region(s) OK")
            run.detected_s = time.monotonic() - began
            await until(lambda: incidents_open(correlator) > 0, 60, "the outage's incident")  # then the repair
            await asyncio.to_thread(faults.restore_all)
            restored = time.monotonic()
            try:
                await until(lambda: lines_ok(correlator) == run.lines, 180, "every line OK again")
            except TimeoutError:  # a loaded machine: devices flapping; the figures still stand, marked
                run.not_back = run.lines - lines_ok(correlator)
            run.repaired_s = time.monotonic() - restored
            with contextlib.suppress(TimeoutError):  # the incidents resolved once the lines are `stable`
                await until(lambda: incidents_open(correlator) == 0, 60, "the incidents resolved")
            run.resolved = incidents_open(correlator) == 0
            run.changes = 2 * (region_lines + region_devices)
            end = await asyncio.to_thread(count, cluster, url, nodes, agents)
            run.fault = end.minus(fault_before)
        run.load.append(loadavg())
    finally:
        faults.close()
        for node in nodes.values():
            if node.proc.poll() is None:
                node.proc.terminate()
        for node in nodes.values():
            try:
                node.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()
    return run


@dataclass(slots=True)
class Report:
    runs: list[Run]
    sms: int
    notifier_ms_per_sms: float
    notifier_server_ms_per_sms: float
    notifier_per_s: float
    load: list[str]


async def measure(
    lines: int,
    poller_counts: list[int],
    *,
    interval: float = 15.0,
    icmp_interval: float | None = None,
    window: float = 60.0,
    sms: int = 1000,
    fault_runs: set[int] | None = None,
    fault_regions: int = 1,
    blocks: tuple[int, int] = (248, 249),
    warmup: float = 300.0,
    resend: float | None = None,
) -> Report:
    """`fault_runs`: the poller counts whose run ends with the regional fault (all, if None)."""
    load = [loadavg()]
    devices = -(-lines // 48)
    runs = []
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scale-out-")))
        cluster = stack.enter_context(running_cluster(FAST))
        agents = start_table_agents(folder, [device_address(n, blocks[0]) for n in range(devices)], 48, 1)
        stack.callback(agents.stop)
        write_inventory(folder, devices, 48, agents.port, None, blocks)
        for n in poller_counts:
            fault = fault_runs is None or n in fault_runs
            runs.append(
                await one_run(
                    cluster,
                    folder,
                    agents,
                    n,
                    interval=interval,
                    icmp_interval=icmp_interval or interval,
                    window=window,
                    fault=fault,
                    warmup=warmup,
                    regions=fault_regions,
                    resend=resend,
                )
            )
        notified = await one_run_notifier(cluster, sms) if sms else None
    load.append(loadavg())
    if notified is None:
        return Report(runs, 0, 0.0, 0.0, 0.0, load)
    return Report(runs, sms, notified.worker_cpu_per_sms * 1e3, notified.server_cpu_per_sms * 1e3, notified.per_second, load)


async def one_run_notifier(cluster: PgCluster, sms: int) -> Any:
    return await deliver_sms(cluster, 1, sms, 500.0, 32)


def show(report: Report) -> str:
    out = [f"loadavg before {report.load[0]}, after {report.load[-1]}"]
    for run in report.runs:
        f = run.figures()
        kinds = ", ".join(f"{k}: {n:,}" for k, n in sorted(run.samples.items()))
        out += [
            f"\n{run.pollers} poller(s), {run.lines:,} lines on {run.devices} DSLAMs, tables every {run.interval:g} s, "
            f"echoes every {run.icmp_interval:g} s; "
            f"shards held {run.shards}; loadavg {' | '.join(run.load)}",
            f"  steady {run.steady['seconds']:.0f} s: {sum(run.samples.values()):,} samples ({kinds}) in {run.batches:,} batches "
            f"({f['batch_bytes_per_sample']:.0f} B a sample), {f['samples_per_s']:,.0f} samples/s; "
            f"line table polls {f['of_schedule']:.0%} of the schedule; "
            f"{run.steady['unchanged']:,.0f} line samples left out as unchanged ({f['left_out_share']:.0%} of all)",
            f"  CPU-s: pollers {run.steady['pollers_cpu']:.1f}, correlator {run.steady['correlator_cpu']:.1f}, "
            f"PostgreSQL {run.steady['server_cpu']:.1f} (the bench's reading of the batches, {run.steady['tally_cpu']:.1f}, left out), "
            f"responders {run.steady['agents_cpu']:.1f}",
            f"  poller {f['poller_us_per_line_poll']:.0f} us per line per table poll with its echoes "
            f"({f['poller_us_per_line_s']:.1f} us per line-second, {f['poller_us_per_sample']:.0f} us a sample); "
            f"correlator {f['correlator_us_per_sample']:.0f} us a sample ({f['correlator_us_per_line_s']:.2f} us per line-second); "
            f"PostgreSQL {f['server_us_per_sample']:.0f} us a sample",
            f"  PostgreSQL: {f['wal_bytes_per_s'] / 1024:,.0f} KiB WAL/s ({f['wal_bytes_per_sample']:.0f} B a sample), "
            f"{f['commits_per_s']:.1f} commits/s, {f['rows_per_s']:.1f} rows/s ("
            + ", ".join(
                f"{k[5:]} {v / run.steady['seconds']:.1f}" for k, v in sorted(run.steady.items()) if k.startswith("rows:")
            )
            + ")",
            "  on disk: "
            + ", ".join(f"{k} {v / 2**20:.1f} MiB" if k != "engine_targets rows" else f"{k} {v:,}" for k, v in run.sizes.items()),
        ]
        if run.changes:
            out += [
                f"  fault on {run.fault_regions} of 8 regions: {run.changes:,} state changes ({run.changes // 2:,} lines and devices down and back), "
                f"all down after {run.detected_s:.1f} s, "
                + (f"{run.not_back:,} lines NOT OK" if run.not_back else f"all OK {run.repaired_s:.1f} s")
                + f" after the repair; incidents {'resolved' if run.resolved else 'NOT all resolved'}; "
                + f"phase {run.fault['seconds']:.0f} s",
                f"  per state change, above the steady rate: correlator {f['correlator_us_per_change']:.0f} us, "
                f"PostgreSQL {f['server_us_per_change']:.0f} us, WAL {f['wal_bytes_per_change']:.0f} B, "
                f"{f['rows_per_change']:.2f} rows ({f['target_rows_per_change']:.2f} engine_targets), {f['commits_per_change']:.3f} commits",
                "  rows in the fault phase: "
                + ", ".join(f"{k[5:]} {v:,.0f}" for k, v in sorted(run.fault.items()) if k.startswith("rows:")),
            ]
    out.append(
        "\nnotifier: not run (--sms 0)"
        if not report.sms
        else f"\nnotifier: {report.sms:,} SMS by one worker at 500/s: {report.notifier_ms_per_sms:.2f} ms CPU a SMS "
        f"(PostgreSQL {report.notifier_server_ms_per_sms:.2f} ms), {report.notifier_per_s:.0f} SMS/s"
    )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=24_000)
    parser.add_argument("--pollers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--window", type=float, default=60.0, help="seconds of the steady window")
    parser.add_argument("--interval", type=float, default=15.0, help="seconds between a line's polls (tables and echo)")
    parser.add_argument("--icmp-interval", type=float, help="seconds between a modem's echoes (default: --interval)")
    parser.add_argument("--fault-regions", type=int, default=1, help="regions silenced in the fault (of 8)")
    parser.add_argument("--no-fault", action="store_true", help="the steady windows only")
    parser.add_argument("--sms", type=int, default=1000, help="SMS for the notifier worker (0: no notifier run)")
    parser.add_argument("--blocks", type=int, nargs=2, default=(248, 249), help="second octets of the DSLAMs and modems")
    parser.add_argument("--resend", type=float, help="seconds: the pollers' cluster.resend (default: the config's)")
    parser.add_argument("--quick", action="store_true", help="480 lines, 1 and 2 pollers, 10 s windows, 200 SMS")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    if args.quick:
        args.lines, args.pollers, args.window, args.interval, args.sms = 480, [1, 2], 10.0, 3.0, 200
    started = time.monotonic()
    report = asyncio.run(
        measure(
            args.lines,
            args.pollers,
            interval=args.interval,
            icmp_interval=args.icmp_interval,
            window=args.window,
            sms=args.sms,
            blocks=tuple(args.blocks),
            fault_runs=set() if args.no_fault else {args.pollers[-1]} if args.quick else None,
            fault_regions=args.fault_regions,
            resend=args.resend,
        )
    )
    print(show(report))
    if args.json:
        print(json.dumps([{"pollers": r.pollers, "load": r.load, "shards": r.shards, **r.figures()} for r in report.runs]))
    print(f"took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
