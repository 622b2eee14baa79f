"""The polling jobs: what the scheduler runs per device and probe, and what each poll costs.

`PollingJobs` is its own object, built by `Daemon` (monitord/daemon.py) and given the config
per call, so a reload hands it the new inventory. A job's samples go back to the scheduler's
sink (the daemon's `Pipeline.ingest`); its outcome and duration are counted in `ProbeStats` for
the metrics.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from monitord.config import Config
from monitord.config.model import SnmpSettings
from monitord.metrics import duration_bucket
from monitord.model import Device, NodeRef, Outcome, Sample
from monitord.quality import Readings, level_limits, readings
from monitord.view import PollFigures, ProbeStats
from probes.icmp import Pinger, to_sample
from probes.profiles import SYS_UPTIME, Profile, line_key, poll_device
from probes.rates import RateTracker
from probes.scheduler import Job, Scheduler
from probes.snmp import SnmpClient, failure_reason
from probes.snmpbase import Target
from rules.checks import Threshold

if TYPE_CHECKING:
    from probes.traps import TrapReceiver


def snmp_client(settings: SnmpSettings, **limits: int) -> SnmpClient:
    """The SNMP client with the config's timeout, retries and walk budgets (`limits`: the
    client's other settings, such as `max_varbinds`)."""
    return SnmpClient(
        timeout=settings.timeout,
        retries=settings.retries,
        walk_max_requests=settings.walk_max_requests,
        walk_timeout=settings.walk_timeout,
        **limits,
    )


@dataclass(slots=True)
class PollingJobs:
    """Builds the scheduler's jobs, and is the one writer of what polling learns.

    It alone writes `stats` (what each poll cost and how it ended), `rates` (counters between
    walks, through `poll_device`) and `job_classes`/`class_intervals` (each time it builds the
    jobs), and `quality`: per SNMP job, the levels its last poll read on the lines
    (monitord/quality.py). `snmp` and `pinger` are the clients its jobs poll through: whoever
    opened them (the daemon's `run`) sets them and closes them; the jobs run only in between.
    """

    clock: Callable[[], float]
    snmp: SnmpClient | None = None
    pinger: Pinger | None = None
    rates: RateTracker = field(default_factory=RateTracker)
    stats: ProbeStats = field(default_factory=ProbeStats)
    job_classes: dict[str, str] = field(default_factory=dict)  # job key -> probe class
    class_intervals: dict[str, float] = field(default_factory=dict)  # probe class -> configured interval
    quality: dict[str, tuple[str, tuple[Readings, ...]]] = field(default_factory=dict)  # job key -> (device, readings)

    def figures(self, scheduler: Scheduler | None, traps: TrapReceiver | None) -> PollFigures:
        """What polling learnt so far, for /metrics: the SNMP client's counters copied, as it goes on counting."""
        snmp = {kind: replace(counts) for kind, counts in self.snmp.counts.items()} if self.snmp else {}
        return PollFigures(self.stats, self.job_classes, self.class_intervals, scheduler, traps, self.quality, snmp)

    def jobs(self, config: Config) -> list[Job]:
        """Every device's ICMP job and its SNMP jobs (one per profile and interval). A job is a
        small object (`_IcmpPoll`, `_SnmpPoll`), not closures: there are thousands of them."""
        polling = config.polling
        topology = config.topology
        lines_of: dict[str, list[str]] = {}
        for line in topology.lines.values():
            lines_of.setdefault(line.device, []).append(line.id)
        limits_of: dict[str, dict[str, tuple[Threshold, ...]]] = {}  # profile -> its rule set's level limits
        jobs: list[Job] = []
        for device in topology.devices.values():
            jobs.append(
                Job(
                    f"icmp:{device.id}",
                    device.id,
                    "icmp",
                    polling.icmp_interval,
                    _IcmpPoll(self, config, device, lines_of.get(device.id, [])),
                    asks_agent=False,
                )
            )
            if device.snmp is None:
                continue
            made: list[dict[str, str]] = []  # a device's profiles matching by port find its lines by the same keys
            for name in device.profiles:
                profile = config.profiles[name]
                if name not in limits_of:
                    limits_of[name] = level_limits(config.rules.ruleset(profile.name))
                keys = {}
                for line_id in lines_of.get(device.id, []):
                    key = line_key(profile, topology.lines[line_id])
                    if key is not None:
                        keys[key] = line_id
                keys = next((same for same in made if same == keys), keys)
                made.append(keys)
                for interval in profile.intervals:
                    seconds = polling.optical_interval if interval == "optical" else polling.line_interval
                    job_key = f"snmp:{device.id}:{name}:{interval}"
                    poll = _SnmpPoll(self, job_key, device, profile, keys, interval, limits_of[name])
                    jobs.append(Job(job_key, device.id, interval, seconds, poll, poll.check, poll.timed_out))
        self.job_classes = {job.key: job.probe_class for job in jobs}
        self.class_intervals = {job.probe_class: job.interval for job in jobs}
        return jobs

    def forget(self, devices: Iterable[str]) -> None:
        """Devices gone from the inventory (a reload): their counters' last readings are dropped."""
        gone = set(devices)
        for device in gone:
            self.rates.forget(device)
        for key in [key for key, (device, _) in self.quality.items() if device in gone]:
            del self.quality[key]

    def _count(self, of: Device, probe: str, samples: list[Sample], seconds: float) -> None:
        device = of.id
        for sample in samples:
            if sample.target.level == "device":
                self.stats.outcomes[(device, probe, sample.outcome.value)] += 1
                if sample.outcome is not Outcome.OK:
                    self.stats.failures[(probe, of.kind, failure_reason(sample.outcome, sample.detail))] += 1
        self.stats.seconds[(device, probe)] += seconds
        self.stats.polls[(device, probe)] += 1
        self.stats.durations[(probe, duration_bucket(seconds))] += 1
        self.stats.probe_seconds[probe] += seconds


@dataclass(slots=True, eq=False)
class _SnmpPoll:
    """One SNMP job: the full table walk of a profile's interval (the call), the one-GET liveness
    check the scheduler uses while the device is silent (`check`), and the device sample for a
    walk the scheduler cancelled at polling.job_timeout (`timed_out`). The walk keeps its lines'
    levels (`limits`' metrics) as packed arrays, 8 bytes a line."""

    polling: PollingJobs
    key: str
    device: Device
    profile: Profile
    keys: dict[str, str]
    interval: str
    limits: dict[str, tuple[Threshold, ...]]
    probe: str = field(init=False)

    def __post_init__(self) -> None:
        self.probe = sys.intern(f"snmp:{self.profile.name}")

    async def __call__(self) -> list[Sample]:
        polling, device = self.polling, self.device
        assert polling.snmp is not None
        started = time.perf_counter()
        samples = await poll_device(
            polling.snmp, device, self.profile, self.keys, polling.clock(), rates=polling.rates, intervals={self.interval}
        )
        polling._count(device, self.probe, samples, time.perf_counter() - started)
        if self.limits:
            polling.quality[self.key] = (device.id, readings(samples, self.limits))
        return samples

    async def check(self) -> list[Sample]:
        snmp = self.polling.snmp
        assert snmp is not None
        answer = await snmp.get(Target.of(self.device), [SYS_UPTIME])
        return [Sample(NodeRef("device", self.device.id), self.probe, self.polling.clock(), answer.outcome, detail=answer.detail)]

    def timed_out(self, seconds: float) -> list[Sample]:
        detail = f"poll still running after {seconds:g} s (polling.job_timeout), cancelled"
        return [Sample(NodeRef("device", self.device.id), self.probe, self.polling.clock(), Outcome.TIMEOUT, detail=detail)]


class _IcmpPoll:
    """One device's ICMP job: a sweep of the device's address and its lines' modems.

    A modem's address never is its device's nor another line's (the config refuses both). Its
    line's NodeRef is made per sweep, not kept: 100,000 of them would stay for nothing; nor a
    dict of them (two tuples weigh half as much)."""

    __slots__ = ("addresses", "device", "pinged", "polling", "settings")

    def __init__(self, polling: PollingJobs, config: Config, device: Device, line_ids: list[str]) -> None:
        lines = config.topology.lines
        self.polling = polling
        self.settings = config.polling
        self.device = device
        self.pinged = tuple(i for i in line_ids if lines[i].modem)
        self.addresses = (device.address, *(lines[i].modem or "" for i in self.pinged))

    async def __call__(self) -> list[Sample]:
        polling, device, addresses = self.polling, self.device, self.addresses
        assert polling.pinger is not None
        started = time.perf_counter()
        results = await polling.pinger.sweep(addresses, count=self.settings.icmp_count, timeout=self.settings.icmp_timeout)
        now = polling.clock()
        samples = [to_sample(results[device.address], NodeRef("device", device.id), now)]
        samples += [to_sample(results[modem], NodeRef("line", line), now) for modem, line in zip(addresses[1:], self.pinged)]
        polling._count(device, "icmp", samples[:1], time.perf_counter() - started)
        return samples
