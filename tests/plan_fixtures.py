"""A small topology and incident builders shared by the template, planner and maintenance tests."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from monitord.model import Device, Exchange, Incident, IncidentKind, Line, NodeRef, Phase, Region, Topology
from rules.engine import IncidentChange as Change

IST = ZoneInfo("Europe/Istanbul")


def at(text: str) -> float:
    """A local Istanbul time like "2026-12-01 14:00" as a timestamp."""
    return datetime.fromisoformat(text).replace(tzinfo=IST).timestamp()


TOPOLOGY = Topology(
    regions={"ist-avrupa": Region("ist-avrupa", "İstanbul Avrupa"), "ist-anadolu": Region("ist-anadolu", "İstanbul Anadolu")},
    exchanges={
        "sisli": Exchange("sisli", "Şişli Santrali", "ist-avrupa"),
        "kadikoy": Exchange("kadikoy", "Kadıköy Santrali", "ist-anadolu"),
    },
    devices={
        "sisli-dslam-01": Device("sisli-dslam-01", "dslam", "sisli", "127.0.10.1", None, cabinet="sisli-k12"),
        "sisli-dslam-02": Device("sisli-dslam-02", "dslam", "sisli", "127.0.10.2", None),
        "kadikoy-olt-01": Device("kadikoy-olt-01", "olt", "kadikoy", "127.0.11.1", None),
    },
    lines={
        "s1": Line("s1", "Ayşe Yılmaz", "sisli-dslam-01", phone="+905321111111"),
        "s2": Line("s2", "John Smith", "sisli-dslam-01", phone="+905322222222", language="en"),
        "s3": Line("s3", "Çağrı Öztürk", "sisli-dslam-01", email="cagri@example.com"),
        "s4": Line("s4", "Nobody Reachable", "sisli-dslam-01"),
        "s5": Line("s5", "Mehmet Demir", "sisli-dslam-02", phone="+905325555555"),
        "s6": Line("s6", "Zeynep Kaya", "kadikoy-olt-01", phone="+905326666666"),
    },
)


def incident(
    tracking: str = "ARZ-2026-000123",
    *,
    kind: IncidentKind = IncidentKind.OUTAGE,
    root: NodeRef = NodeRef("device", "sisli-dslam-01"),
    phase: Phase = Phase.OPEN,
    affected: frozenset[str] = frozenset({"s1", "s2", "s3", "s4"}),
    opened: float = at("2026-12-01 13:00"),
    updated: float | None = None,
    resolved: float | None = None,
) -> Incident:
    return Incident(
        tracking,
        kind,
        root,
        phase,
        opened,
        updated if updated is not None else opened,
        affected,
        ("sisli-dslam-01 icmp timeout", "4 of 4 lines down"),
        resolved,
    )


__all__ = ["IST", "TOPOLOGY", "Change", "at", "incident"]
