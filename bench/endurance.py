"""The whole daemon for minutes at scale, with a regional fault: detection, CPU, RSS, loop lag, skipped polls.

    .venv/bin/python bench/endurance.py [--lines 100032] [--minutes 10] [--agent-processes 2]
        [--line-interval 60s] [--icmp-interval 30s] [--after-restore SECONDS] [--stable 60s] [--own-environment]

The real `Daemon.run` (scheduler, SNMP and ICMP clients, pipeline, store, outbox, HTTP) in this
process, against DSLAMs served by lab/table_agent.py (one loopback address per DSLAM, adsl and
IF-MIB tables of `--ports` ports, in `--agent-processes` processes of their own) and modems
answering ICMP on loopback addresses (the kernel answers all of 127.0.0.0/8). The process runs
under the environment systemd/monitord.service gives the daemon (its `Environment=`, e.g.
MALLOC_ARENA_MAX) unless `--own-environment`. The inventory is
bench/capacity.py's (8 regions, 16 exchanges each, a cabinet per DSLAM); polling and rules are
the shipped defaults unless given.

After a warm-up (every device and line OK), a window of `--minutes`: Prometheus-like scrapes of
/metrics every 15 s over HTTP, a probe task measuring the event loop's lag (sleeps of 100 ms,
overshoot recorded), CPU and RSS every 5 s. A third of the way in, nftables (lab/faults.py) drops
everything to one region's DSLAMs and modems; two thirds in, it is restored. Reported: fault to
the first incident rooted in that region opened after the fault, and its root; restore to the
last of those closing; this process's CPU share of two cores and RSS (steady = median, peak), the
responders' CPU apart, loop lag (this bench's probe, and the daemon's own
`monitord_event_loop_lag_seconds` where it exports one), and polls skipped or lagging by class
from the daemon's /metrics. Every subscriber has a phone number and notifiers.sms points at a
local Twilio endpoint (lab/twilio.py, in a process of its own as Twilio is remote, `--sms-rate`), so the region's outage
SMS go through the daemon's own outbox while polling runs: the rate they achieved is reported.

Each SMS the endpoint accepted is named by the outbox item its message id was stored with (the
notice: outage, merged, restored, ... and its incident's root), and every number of the region
is counted by the notices it got, in order, so a second SMS is told apart from a duplicate. The
restore is reported step by step: every line OK again, every incident of the region recovering,
the restoration SMS, every incident resolved. The shipped `stable` (10m) keeps a restored line
waiting ten minutes before it counts as restored: `--after-restore` runs the window long enough
after the restore to see it; `--stable` overrides the setting (then not the shipped behaviour).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import gc
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.capacity import device_address, rss_mb, under_unit_environment, write_inventory  # noqa: E402
from bench.stall_trace import StallTrace  # noqa: E402
from lab.faults import Faults  # noqa: E402
from lab.isp import write_secret  # noqa: E402
from lab.table_agent import start_table_agents  # noqa: E402
from lab.twilio import LabSms, TwilioLabProcess  # noqa: E402
from monitord.config import Config, load_config  # noqa: E402
from monitord.daemon import Daemon  # noqa: E402
from monitord.demo import until  # noqa: E402
from monitord.model import NodeRef, Phase, Status  # noqa: E402

LAG_PROBE = 0.1  # seconds the lag probe sleeps
TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Stall:
    """One overshoot over 100 ms, with what the loop's thread and the process did meanwhile: a
    stall the loop's thread spent on the CPU is its own work (or a collection it ran); one it
    spent off the CPU waited for another thread's hold on the interpreter, or for the kernel."""

    at: float  # seconds into the window when the overshooting sleep began
    overshoot: float
    loop_cpu: float  # CPU-seconds of the loop's thread during the sleep and its overshoot
    process_cpu: float  # of every thread of this process


@dataclass(slots=True)
class Lag:
    """Overshoots of a 100 ms sleep on the daemon's loop: how long the loop could not run a ready task."""

    seen: list[float] = field(default_factory=list)
    stalls: list[Stall] = field(default_factory=list)
    start: float = field(default_factory=time.monotonic)

    async def watch(self) -> None:
        while True:
            began, thread0, process0 = time.perf_counter(), time.thread_time(), time.process_time()
            await asyncio.sleep(LAG_PROBE)
            overshoot = max(0.0, time.perf_counter() - began - LAG_PROBE)
            self.seen.append(overshoot)
            if overshoot > 0.1:
                at = time.monotonic() - self.start - overshoot - LAG_PROBE  # when the sleep began
                self.stalls.append(Stall(at, overshoot, time.thread_time() - thread0, time.process_time() - process0))


@dataclass(slots=True)
class Collections:
    """Garbage collections over 20 ms, wherever they ran (a pass holds the interpreter, so the loop
    too), and every full pass with what it freed (what only the GC frees: cycles)."""

    start: float = field(default_factory=time.monotonic)
    passes: list[tuple[float, int, float, str]] = field(default_factory=list)  # at, generation, seconds, thread
    full: int = 0  # passes over the oldest generation
    freed: int = 0  # ... and the objects they found unreachable
    _began: float = 0.0

    def __enter__(self) -> Collections:
        gc.callbacks.append(self._noted)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._noted)

    def _noted(self, phase: str, info: dict[str, int]) -> None:
        now = time.monotonic()
        if phase == "start":
            self._began = now
            return
        if info["generation"] == 2:
            self.full += 1
            self.freed += info["collected"]
        if now - self._began > 0.02:
            self.passes.append((self._began - self.start, info["generation"], now - self._began, threading.current_thread().name))


@dataclass(frozen=True, slots=True)
class Report:
    lines: int
    devices: int
    region: str
    region_lines: int
    warmup_s: float
    not_ok: int  # devices and lines not OK when the window began (warm-up timed out)
    window_s: float
    detected_s: float | None  # fault -> first incident rooted in the region opened after the fault
    detected_root: str | None
    cleared_s: float | None  # restore -> none of those incidents open any more
    cpu_share: float  # this process (the daemon) over the window, of two cores
    agents_cpu_share: float  # the responders' processes, of two cores
    rss_steady_mb: float
    rss_peak_mb: float
    wal_peak_mb: float  # the state file's WAL at its largest: it grows while checkpoints cannot start it over
    lag_max_s: float
    lag_p99_s: float
    lag_over_100ms: int  # probe overshoots above 100 ms
    stalls: list[Stall]
    collections: list[tuple[float, int, float, str]]  # passes over 20 ms: at, generation, seconds, thread
    full_passes: tuple[int, int]  # every pass over the oldest generation: how many, the objects they freed
    checks: list[tuple[float, float]]  # the bench's own looks at the daemon's state over 20 ms: at, seconds
    events: dict[str, float]  # the fault and the restore, seconds into the window
    began: float  # the window's start, wall clock
    lag_metric: float | None  # monitord_event_loop_lag_seconds, if the daemon exports it
    skipped: dict[str, float]  # monitord_polls_skipped_total by probe class, during the window
    poll_lag: dict[str, float]  # monitord_poll_lag_seconds by probe class
    scrape_s: float  # median wall time of a /metrics scrape
    sms_rate: float  # notifiers.sms.rate configured
    sms_sent: int  # SMS the Twilio endpoint accepted between the fault and the restore
    sms_achieved: float  # per second, first to last accepted
    sms_recipients: int  # distinct numbers among them
    sms_peak: float  # per second, the busiest 10 s
    load: str  # /proc/loadavg before and after
    stable: str  # rules.stable in force ("shipped" unless --stable overrode it)
    restore: Restore  # restore -> lines OK -> incidents recovering -> restoration SMS -> resolved
    sequences: dict[tuple[str, ...], int]  # region numbers by the notices texted to them in the window, in order
    shared_numbers: int  # region numbers also another line's, left out of `sequences`
    elsewhere: dict[str, int]  # SMS after the fault to the other numbers (outside the region, or shared), by notice
    doubles: list[str]  # a few numbers with more than one SMS before the restore, each SMS's notice and time


@dataclass(frozen=True, slots=True)
class Restore:
    """Seconds from the restore to each step of the region coming back (None: not within the window)."""

    after_s: float  # how long the window ran after the restore
    lines_ok_s: float | None  # every line of the region OK again
    recovering_s: float | None  # every incident of the region recovering (verified good, waiting `stable`)
    first_restored_sms_s: float | None
    last_restored_sms_s: float | None
    restored_sms: int  # "restored" SMS the endpoint accepted after the restore
    resolved_s: float | None  # none of the region's incidents open any more
    lines_not_ok: int  # lines of the region not OK when the window ended


@dataclass(frozen=True, slots=True)
class Texted:
    """One SMS the endpoint accepted, with the outbox item it came from."""

    to: str
    at: float  # wall clock
    action: str  # the notice: outage, merged, restored, ...
    incident: str  # its tracking number
    root: str  # the level of that incident's root (region, exchange, device, line)


def texted(daemon: Daemon, messages: list[LabSms], since: float) -> list[Texted]:
    """The endpoint's messages from `since` on, each named by the outbox item its sid was stored with."""
    items = {i.peer_ref: i.notification for i in daemon.store.items("sms") if i.peer_ref}
    roots = {i.tracking: i.root.level for i in daemon.incident_history()}
    found = []
    for m in messages:
        if m.at >= since:
            n = items.get(m.sid)
            action, incident = (n.action, n.incident or "-") if n else ("unknown", "-")
            found.append(Texted(m.to, m.at, action, incident, roots.get(incident, "-")))
    return found


def sequences(texts: list[Texted], numbers: set[str], fault: float) -> dict[tuple[str, ...], int]:
    """How many of `numbers` got each sequence of notices from the fault on (`action@root level`),
    in the order sent, after those of the window before the fault (marked "before:")."""
    per: dict[str, list[str]] = {n: [] for n in numbers}
    for t in sorted(texts, key=lambda t: t.at):
        if t.to in per:
            per[t.to].append(f"{'before:' if t.at < fault else ''}{t.action}@{t.root}")
    return dict(Counter(tuple(s) for s in per.values()).most_common())


def region_numbers(config: Config, lines: set[str]) -> tuple[set[str], int]:
    """The phone numbers of `lines` that no other line of the inventory has (the bench's numbers are
    random), and how many of theirs were left out for being shared."""
    owners = Counter(line.phone for line in config.topology.lines.values() if line.phone)
    ours = {config.topology.lines[i].phone for i in lines} - {None}
    return {n for n in ours if n is not None and owners[n] == 1}, sum(owners[n] > 1 for n in ours if n is not None)


def process_cpu(pids: list[int]) -> float:
    """CPU-seconds (user + system) of other processes, from /proc/<pid>/stat."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def region_nodes(config: Config, region: str) -> tuple[set[NodeRef], list[str]]:
    """Every node at or under `region` (region, exchanges, cabinets, devices, lines) and the addresses to silence."""
    topology = config.topology
    exchanges = {e.id for e in topology.exchanges.values() if e.region == region}
    devices = {d.id: d for d in topology.devices.values() if d.exchange in exchanges}
    nodes = {NodeRef("region", region)} | {NodeRef("exchange", e) for e in exchanges}
    nodes |= {NodeRef("device", d) for d in devices} | {NodeRef("cabinet", d.cabinet) for d in devices.values() if d.cabinet}
    addresses = [d.address for d in devices.values()]
    for line in topology.lines.values():
        if line.device in devices:
            nodes.add(NodeRef("line", line.id))
            if line.modem:
                addresses.append(line.modem)
    return nodes, addresses


READ = ("monitord_event_loop_lag_seconds", "monitord_polls_skipped_total", "monitord_poll_lag_seconds")


def scrape(port: int) -> tuple[float, str]:
    """One scrape of /metrics: its wall time, and the families of READ in it. The whole text (6 MB
    at 100,000 lines) is not kept: this process's RSS is reported as the daemon's."""
    started = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
        text = answer.read().decode()
    took = time.perf_counter() - started
    return took, "".join(line for line in text.splitlines(keepends=True) if _metric(line).startswith(READ))


def _metric(line: str) -> str:
    """The metric a line of the text format is about (`# HELP name ...`, `name{labels} value`)."""
    return line.split(" ", 3)[2] if line.startswith("#") else line


def by_class(text: str, name: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[sample.labels.get("probe_class", "")] = sample.value
    return found


async def warm_up(daemon: Daemon, timeout: float) -> int:
    """Wait until every device and line is OK (checked every 5 s: 100,000 node states are not
    free) or `timeout` passes; how many nodes are not OK then."""
    topology = daemon.config.topology
    nodes = [NodeRef("device", d) for d in topology.devices] + [NodeRef("line", i) for i in topology.lines]
    deadline = time.monotonic() + timeout
    while True:
        await daemon.between_steps()  # as the daemon's HTTP API reads: the engine's lock is free then
        bad = sum(daemon.node_state(n).status is not Status.OK for n in nodes)
        if not bad or time.monotonic() > deadline:
            return bad
        await asyncio.sleep(5)


async def run(
    folder: Path,
    lines: int,
    ports: int = 48,
    minutes: float = 10.0,
    agent_processes: int = 2,
    polling: dict[str, Any] | None = None,
    rules: dict[str, Any] | None = None,
    region: str = "region-0",
    warmup_timeout: float = 600.0,
    blocks: tuple[int, int] = (254, 252),
    sms_rate: float = 500.0,
    trace: StallTrace | None = None,
    after_restore: float | None = None,
) -> Report:
    """`blocks`: second octets of the DSLAMs' and modems' addresses (bench/capacity.py's `write_inventory`),
    by default apart from capacity.py's (20, 64) and the lab's 127.50-251.10.x, since a fault here silences them.
    The fault comes a third of `minutes` in, the restore two thirds; the window ends `after_restore`
    seconds after the restore (by default, the last third)."""
    devices = -(-lines // ports)
    load_before = Path("/proc/loadavg").read_text().split()[0]
    twilio = TwilioLabProcess()
    await twilio.start()
    try:
        agents = start_table_agents(folder, [device_address(n, blocks[0]) for n in range(devices)], ports, agent_processes)
    except BaseException:
        await twilio.stop()
        raise
    faults = Faults()
    try:
        path = write_inventory(folder, devices, ports, agents.port, polling, blocks)
        sms = {
            "kind": "twilio",
            "account_sid": twilio.account_sid,
            "auth_token": write_secret(folder, "twilio.token", twilio.auth_token),
            "from": "+908502200000",
            "base_url": twilio.base_url,
            "rate": sms_rate,
        }
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        raw = {**raw, "notifiers": {"sms": sms}, **({"rules": rules} if rules else {})}
        path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
        config = load_config(path, environ={"BENCH_COMMUNITY": "public"})
        nodes, addresses = region_nodes(config, region)
        daemon = Daemon(config)
        stop = asyncio.Event()
        began = time.monotonic()
        task = asyncio.create_task(daemon.run(stop))
        await until(lambda: daemon.ready.is_set() or task.done(), 300, "the daemon to start")
        if task.done():
            task.result()
        assert daemon.http_port is not None
        not_ok = await warm_up(daemon, warmup_timeout)
        warmup = time.monotonic() - began

        fault_wall, restore_wall = 0.0, 0.0
        lag, collections = Lag(), Collections().__enter__()
        prober = asyncio.create_task(lag.watch())
        tracing = contextlib.nullcontext() if trace is None else trace
        tracing.__enter__()
        window = minutes * 60
        fault_after, restore_after = window / 3, 2 * window / 3
        window = restore_after + (window / 3 if after_restore is None else after_restore)
        start, cpu0, agents0 = time.monotonic(), time.process_time(), process_cpu(agents.pids())
        start_wall = time.time()
        lag.start = collections.start = start
        checks: list[tuple[float, float]] = []  # the bench's own look at the daemon's state over 20 ms: at, seconds
        wal_path = Path(f"{daemon.config.state_file}-wal")
        rss: list[float] = []
        wal: list[float] = []
        scrapes: list[float] = []
        text = first = ""
        fault_at = restore_at = detected = cleared = lines_ok = recovering = None
        root = None
        lines = [n for n in nodes if n.level == "line"]
        next_sample = next_scrape = start
        while (now := time.monotonic()) < start + window:
            if fault_at is None and now >= start + fault_after:
                await asyncio.to_thread(faults.silence, *addresses)  # the bench's work, not on the daemon's loop
                fault_at, fault_wall = time.monotonic(), time.time()
            if restore_at is None and now >= start + restore_after:
                await asyncio.to_thread(faults.restore_all)
                restore_at, restore_wall = time.monotonic(), time.time()
            await daemon.between_steps()  # not timed: the loop polls on while the rules' thread steps
            looked = time.monotonic()
            if fault_at is not None and (detected is None or (restore_at is not None and cleared is None)):
                ours = [i for i in daemon.open_incidents() if i.root in nodes and i.opened_at >= fault_wall]
                if detected is None and ours:
                    detected, root = time.monotonic() - fault_at, f"{ours[0].root.level}:{ours[0].root.id}"
                if restore_at is not None and detected is not None:
                    since = time.monotonic() - restore_at
                    if lines_ok is None and all(daemon.node_state(n).status is Status.OK for n in lines):
                        lines_ok = since
                    if recovering is None and all(i.phase is Phase.RECOVERING for i in ours):
                        recovering = since
                    if not ours:
                        cleared = since
            if (took := time.monotonic() - looked) > 0.02:
                checks.append((looked - start, took))
            if now >= next_sample:
                rss.append(rss_mb())
                wal.append(wal_path.stat().st_size / 2**20 if wal_path.exists() else 0.0)
                next_sample += 5
            if now >= next_scrape:
                took, text = await asyncio.to_thread(scrape, daemon.http_port)
                scrapes.append(took)
                first = first or text
                next_scrape += 15
            await asyncio.sleep(0.5)
        elapsed = time.monotonic() - start
        await daemon.between_steps()
        not_ok_at_end = sum(daemon.node_state(n).status is not Status.OK for n in lines)
        cpu, agents_cpu = time.process_time() - cpu0, process_cpu(agents.pids()) - agents0
        prober.cancel()
        collections.__exit__()
        tracing.__exit__(None, None, None)
        _, text = await asyncio.to_thread(scrape, daemon.http_port)
        window_texts = texted(daemon, (await twilio.finish()).messages, start_wall)
        after = [m for m in window_texts if m.at >= fault_wall]
        stop.set()
        await task
        texts = [m for m in after if m.at < restore_wall]
        sent = sorted(m.at for m in texts)
        restored = sorted(m.at - restore_wall for m in after if m.at >= restore_wall and m.action == "restored")
        numbers, shared = region_numbers(config, {n.id for n in lines})
        elsewhere = Counter(f"{m.action}@{m.root}" for m in after if m.to not in numbers)
        counted = Counter(m.to for m in texts if m.to in numbers)
        doubles = [
            f"{to}: " + ", ".join(f"{m.action}@{m.root} {m.incident} +{m.at - fault_wall:.1f} s" for m in texts if m.to == to)
            for to in sorted(to for to, n in counted.items() if n > 1)[:5]
        ]
        restore = Restore(
            after_s=time.monotonic() - restore_at if restore_at is not None else 0.0,
            lines_ok_s=lines_ok,
            recovering_s=recovering,
            first_restored_sms_s=restored[0] if restored else None,
            last_restored_sms_s=restored[-1] if restored else None,
            restored_sms=len(restored),
            resolved_s=cleared,
            lines_not_ok=not_ok_at_end,
        )
    finally:
        faults.close()
        agents.stop()
        await twilio.stop()
    lag_metric = by_class(text, "monitord_event_loop_lag_seconds")
    skipped = by_class(text, "monitord_polls_skipped_total")
    seen = sorted(lag.seen) or [0.0]
    return Report(
        lines=len(config.topology.lines),
        devices=devices,
        region=region,
        region_lines=sum(n.level == "line" for n in nodes),
        warmup_s=warmup,
        not_ok=not_ok,
        window_s=elapsed,
        detected_s=detected,
        detected_root=root,
        cleared_s=cleared,
        cpu_share=cpu / elapsed / 2,
        agents_cpu_share=agents_cpu / elapsed / 2,
        rss_steady_mb=statistics.median(rss),
        rss_peak_mb=max(rss),
        wal_peak_mb=max(wal),
        lag_max_s=seen[-1],
        lag_p99_s=seen[int(len(seen) * 0.99)],
        lag_over_100ms=sum(x > 0.1 for x in seen),
        stalls=lag.stalls,
        collections=collections.passes,
        full_passes=(collections.full, collections.freed),
        checks=checks,
        events={"fault": (fault_at or start) - start, "restore": (restore_at or start) - start},
        began=start_wall,
        lag_metric=max(lag_metric.values()) if lag_metric else None,
        skipped={c: n - by_class(first, "monitord_polls_skipped_total").get(c, 0) for c, n in skipped.items()},
        poll_lag=by_class(text, "monitord_poll_lag_seconds"),
        scrape_s=statistics.median(scrapes),
        sms_rate=sms_rate,
        sms_sent=len(sent),
        sms_recipients=len({m.to for m in texts}),
        sms_peak=max((bisect.bisect_left(sent, t + 10) - n for n, t in enumerate(sent)), default=0) / 10,
        sms_achieved=(len(sent) - 1) / (sent[-1] - sent[0]) if len(sent) > 1 and sent[-1] > sent[0] else 0.0,
        load=f"{load_before} -> {Path('/proc/loadavg').read_text().split()[0]}",
        stable=f"{config.rules.stable:g} s",
        restore=restore,
        sequences=sequences(window_texts, numbers, fault_wall),
        shared_numbers=shared,
        elsewhere=dict(elsewhere.most_common()),
        doubles=doubles,
    )


def show(report: Report) -> str:
    r = report.restore
    detected = "not detected" if report.detected_s is None else f"{report.detected_s:.1f} s (root {report.detected_root})"
    cleared = "not within the window" if report.cleared_s is None else f"{report.cleared_s:.1f} s"
    lag_metric = "not exported" if report.lag_metric is None else f"{report.lag_metric * 1000:.0f} ms"
    classes = sorted(set(report.skipped) | set(report.poll_lag))
    polls = ", ".join(f"{c}: {report.skipped.get(c, 0):.0f} skipped, lag {report.poll_lag.get(c, 0):.1f} s" for c in classes)
    return "\n".join(
        [
            f"{report.devices:,} DSLAMs, {report.lines:,} lines; warm-up {report.warmup_s:.0f} s, "
            f"{report.not_ok:,} nodes not OK after it; "
            f"window {report.window_s / 60:.1f} min; load (1 min) {report.load}",
            f"regional fault {report.region} ({report.region_lines:,} lines): detected {detected}; "
            f"after the restore, closed {cleared}",
            f"CPU: daemon {report.cpu_share:.1%} of two cores; responders {report.agents_cpu_share:.1%}",
            f"RSS: steady {report.rss_steady_mb:.0f} MB, peak {report.rss_peak_mb:.0f} MB (5 s samples); "
            f"the state file's WAL at most {report.wal_peak_mb:.0f} MB",
            f"loop lag (bench probe): max {report.lag_max_s * 1000:.0f} ms, p99 {report.lag_p99_s * 1000:.0f} ms, "
            f"{report.lag_over_100ms} stalls over 100 ms; monitord_event_loop_lag_seconds {lag_metric}",
            *stall_rows(report),
            f"polls: {polls}",
            f"/metrics scrape: median {report.scrape_s * 1000:.0f} ms wall",
            f"outage SMS through the daemon's outbox to a local Twilio endpoint (a process of its own): {report.sms_sent:,} sent "
            f"to {report.sms_recipients:,} numbers between fault and restore, "
            f"{report.sms_achieved:.0f}/s first to last, {report.sms_peak:.0f}/s in the busiest 10 s, "
            f"{report.sms_rate:g}/s configured",
            "region's numbers by the notices texted to them in the window "
            "(action@level of the incident's root, in order; before: sent before the fault):",
            *(f"  {n:,}: [{', '.join(seq)}]" for seq, n in report.sequences.items()),
            *(f"  e.g. {d}" for d in report.doubles),
            f"  ({report.shared_numbers} numbers shared with another line left out); SMS to the other numbers: "
            + (", ".join(f"{n:,} {a}" for a, n in report.elsewhere.items()) or "none"),
            f"restore (rules.stable {report.stable}; window ran {r.after_s:.0f} s after it): lines OK {when(r.lines_ok_s)}, "
            f"incidents recovering {when(r.recovering_s)}, {r.restored_sms:,} restoration SMS "
            f"from {when(r.first_restored_sms_s)} to {when(r.last_restored_sms_s)}, resolved {when(r.resolved_s)}; {r.lines_not_ok:,} lines not OK at the end",
        ]
    )


def stall_rows(report: Report) -> list[str]:
    """Each stall, with the collections and the bench's own looks that overlapped it."""
    passes: dict[int, list[float]] = {}
    for _, generation, secs, _ in report.collections:
        passes.setdefault(generation, []).append(secs)
    rows = [
        f"window began {time.strftime('%H:%M:%S', time.gmtime(report.began))} UTC; "
        + ", ".join(f"{name} +{at:.0f} s" for name, at in report.events.items())
        + "; collections over 20 ms: "
        + (
            ", ".join(
                f"gen {g}: {len(s)}, {sum(s):.2f} s in all, longest {max(s) * 1000:.0f} ms" for g, s in sorted(passes.items())
            )
            or "none"
        )
        + f"; full passes: {report.full_passes[0]}, freeing {report.full_passes[1]:,} objects"
    ]
    for stall in report.stalls:
        began, ended = stall.at, stall.at + LAG_PROBE + stall.overshoot
        overlapping = [
            f"gen {g} pass {secs * 1000:.0f} ms in {thread}"
            for at, g, secs, thread in report.collections
            if at < ended and at + secs > began
        ]
        looked = [f"bench check {secs * 1000:.0f} ms" for at, secs in report.checks if at < ended and at + secs > began]
        rows.append(
            f"  stall +{stall.at:.1f} s: {stall.overshoot * 1000:.0f} ms; loop thread on CPU {stall.loop_cpu * 1000:.0f} ms, "
            f"process {stall.process_cpu * 1000:.0f} ms" + "".join(f"; {x}" for x in overlapping + looked)
        )
    return rows


def when(seconds: float | None) -> str:
    return "not within the window" if seconds is None else f"+{seconds:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_032)
    parser.add_argument("--ports", type=int, default=48)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--agent-processes", type=int, default=2)
    parser.add_argument("--line-interval", help="polling.line_interval (default: the shipped one)")
    parser.add_argument("--icmp-interval", help="polling.icmp_interval (default: the shipped one)")
    parser.add_argument("--region", default="region-0")
    parser.add_argument("--warmup", type=float, default=600.0, help="at most this many seconds until all is OK")
    parser.add_argument(
        "--after-restore", type=float, help="seconds the window runs after the restore (default: a third of --minutes)"
    )
    parser.add_argument(
        "--blocks", type=int, nargs=2, default=(254, 252), help="second octets of the DSLAMs' and modems' addresses"
    )
    parser.add_argument("--stable", help="rules.stable, e.g. 60s (NOT the shipped setting, 10m; for a shorter restore)")
    parser.add_argument("--sms-rate", type=float, default=500.0, help="notifiers.sms.rate, SMS/s")
    parser.add_argument(
        "--trace-stalls", action="store_true", help="sample the loop's stack during stalls (bench/stall_trace.py)"
    )
    parser.add_argument(
        "--own-environment",
        action="store_true",
        help="run under this shell's environment, not the unit's Environment= (e.g. glibc's default malloc arenas)",
    )
    args = parser.parse_args()
    if not args.own_environment:
        under_unit_environment()
    trace = StallTrace() if args.trace_stalls else None
    polling = {k: v for k, v in (("line_interval", args.line_interval), ("icmp_interval", args.icmp_interval)) if v}
    with tempfile.TemporaryDirectory(prefix="endurance-") as folder:
        report = asyncio.run(
            run(
                Path(folder),
                args.lines,
                args.ports,
                args.minutes,
                args.agent_processes,
                polling or None,
                rules={"stable": args.stable} if args.stable else None,
                region=args.region,
                blocks=tuple(args.blocks),
                sms_rate=args.sms_rate,
                warmup_timeout=args.warmup,
                trace=trace,
                after_restore=args.after_restore,
            )
        )
    print(show(report))
    if trace is not None:
        print(trace.report())


if __name__ == "__main__":
    main()
