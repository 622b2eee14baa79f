"""The planner fed by the real rules engine: a DSLAM goes silent, comes back, and is verified."""

from __future__ import annotations

from plan_fixtures import TOPOLOGY, at

from monitord.config.rules import parse_rules
from monitord.config.templates import builtin_templates
from monitord.model import Incident, NodeRef, Outcome, Sample
from notices.plan import PlanSettings, plan_step
from rules.engine import Engine, Step

START = at("2026-12-01 14:00")
LINES = ("s1", "s2", "s3", "s4")


def samples(t: float, down: bool) -> list[Sample]:
    device = Sample(
        NodeRef("device", "sisli-dslam-01"),
        "icmp",
        t,
        Outcome.TIMEOUT if down else Outcome.OK,
        {} if down else {"rtt_ms": 1.0, "loss": 0.0},
    )
    lines = [Sample(NodeRef("line", line), "snmp:if-mib", t, Outcome.OK, {"oper_up": 1.0}) for line in LINES]
    return [device] if down else [device, *lines]


def test_an_outage_from_the_engine_is_announced_once_and_restored_once() -> None:
    engine = Engine(TOPOLOGY, parse_rules({}), "ARZ")
    committed: dict[str, Incident] = {}
    queued: dict[str, str] = {}  # key -> action, as the store's unique key keeps them
    settings = PlanSettings(templates=builtin_templates(), noc_emails=("noc@isp.example",))

    def commit(step: Step, now: float) -> None:
        for item, _ in plan_step(step.incidents, TOPOLOGY, settings, now, committed.get):
            queued.setdefault(item.key, f"{item.channel}:{item.recipient}:{item.action}")
        committed.update((c.incident.tracking, c.incident) for c in step.incidents)

    for i in range(0, 1800, 30):
        now = START + i
        commit(engine.observe(samples(now, down=i < 400), now), now)
        commit(engine.tick(now + 1), now + 1)

    assert sorted(queued.values()) == sorted(
        [
            "ticket:ARZ-2026-000001:create",
            "ticket:ARZ-2026-000001:comment",
            "ticket:ARZ-2026-000001:resolve",
            "email:noc@isp.example:noc-opened",
            "email:noc@isp.example:noc-resolved",
            "sms:+905321111111:outage",
            "sms:+905322222222:outage",
            "email:cagri@example.com:outage",
            "sms:+905321111111:restored",
            "sms:+905322222222:restored",
            "email:cagri@example.com:restored",
        ]
    )
