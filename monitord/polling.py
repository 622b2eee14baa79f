"""The polling jobs: what the scheduler runs per device and probe, and what each poll costs.

`Daemon` (monitord/daemon.py) is a `PollingJobs`: these are its methods, kept here by concern.
A job's samples go to the daemon's one writer (`Pipeline.ingest`); its outcome and duration are
counted in `ProbeStats` for the metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from monitord.config import Config
from monitord.metrics import duration_bucket
from monitord.model import Device, NodeRef, Outcome, Sample
from monitord.view import ProbeStats
from probes.icmp import Pinger, to_sample
from probes.profiles import SYS_UPTIME, Profile, RateTracker, line_key, poll_device
from probes.scheduler import Job, Poll
from probes.snmp import SnmpClient, Target


class PollingJobs:
    """The polling methods of `Daemon`, over the daemon's state declared here."""

    config: Config
    clock: Callable[[], float]
    profiles: Mapping[str, Profile]
    snmp: SnmpClient | None
    pinger: Pinger | None
    rates: RateTracker
    stats: ProbeStats
    job_classes: dict[str, str]
    class_intervals: dict[str, float]

    def jobs(self) -> list[Job]:
        polling = self.config.polling
        topology = self.config.topology
        lines_of: dict[str, list[str]] = {}
        for line in topology.lines.values():
            lines_of.setdefault(line.device, []).append(line.id)
        jobs: list[Job] = []
        for device in topology.devices.values():
            jobs.append(
                Job(
                    f"icmp:{device.id}",
                    device.id,
                    "icmp",
                    polling.icmp_interval,
                    self._icmp_job(device, lines_of.get(device.id, [])),
                )
            )
            if device.snmp is None:
                continue
            for name in device.profiles:
                profile = self.profiles[name]
                keys = {}
                for line_id in lines_of.get(device.id, []):
                    key = line_key(profile, topology.lines[line_id])
                    if key is not None:
                        keys[key] = line_id
                for interval in profile.intervals:
                    seconds = polling.optical_interval if interval == "optical" else polling.line_interval
                    poll, check = self._snmp_job(device, profile, keys, interval)
                    jobs.append(
                        Job(
                            f"snmp:{device.id}:{name}:{interval}",
                            device.id,
                            interval,
                            seconds,
                            poll,
                            check,
                            self._snmp_timed_out(device, profile),
                        )
                    )
        self.job_classes = {job.key: job.probe_class for job in jobs}
        self.class_intervals = {job.probe_class: job.interval for job in jobs}
        return jobs

    def _snmp_job(self, device: Device, profile: Profile, keys: dict[str, str], interval: str) -> tuple[Poll, Poll]:
        """The full table walk, and the one-GET liveness check the scheduler uses while it is silent."""
        probe = f"snmp:{profile.name}"
        target = Target.of(device)

        async def run() -> list[Sample]:
            assert self.snmp is not None
            started = time.perf_counter()
            samples = await poll_device(self.snmp, device, profile, keys, self.clock(), rates=self.rates, intervals={interval})
            self._count(device.id, probe, samples, time.perf_counter() - started)
            return samples

        async def check() -> list[Sample]:
            assert self.snmp is not None
            answer = await self.snmp.get(target, [SYS_UPTIME])
            return [Sample(NodeRef("device", device.id), probe, self.clock(), answer.outcome, detail=answer.detail)]

        return run, check

    def _snmp_timed_out(self, device: Device, profile: Profile) -> Callable[[float], list[Sample]]:
        """The device sample for a walk the scheduler cancelled at polling.job_timeout."""
        node, probe = NodeRef("device", device.id), f"snmp:{profile.name}"

        def samples(seconds: float) -> list[Sample]:
            detail = f"poll still running after {seconds:g} s (polling.job_timeout), cancelled"
            return [Sample(node, probe, self.clock(), Outcome.TIMEOUT, detail=detail)]

        return samples

    def _icmp_job(self, device: Device, line_ids: list[str]) -> Poll:
        lines = self.config.topology.lines
        targets = {device.address: NodeRef("device", device.id)}
        targets.update({modem: NodeRef("line", i) for i in line_ids if (modem := lines[i].modem)})

        async def run() -> list[Sample]:
            assert self.pinger is not None
            polling = self.config.polling
            started = time.perf_counter()
            results = await self.pinger.sweep(list(targets), count=polling.icmp_count, timeout=polling.icmp_timeout)
            now = self.clock()
            samples = [to_sample(results[address], node, now) for address, node in targets.items()]
            self._count(device.id, "icmp", samples[:1], time.perf_counter() - started)
            return samples

        return run

    def _count(self, device: str, probe: str, samples: list[Sample], seconds: float) -> None:
        for sample in samples:
            if sample.target.level == "device":
                self.stats.outcomes[(device, probe, sample.outcome.value)] += 1
        self.stats.seconds[(device, probe)] += seconds
        self.stats.polls[(device, probe)] += 1
        self.stats.durations[(probe, duration_bucket(seconds))] += 1
