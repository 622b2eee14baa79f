"""An inventory with sites and addresses, and probe states, for the field dispatch tests."""

from __future__ import annotations

from collections.abc import Mapping

from monitord.model import Device, Exchange, Incident, IncidentKind, Line, LineState, NodeRef, Phase, Region, Status, Topology

OPENED = 1_796_000_000.0  # 2026-11-30
CABINET_SITE = "Halaskargazi Cad. 120 önü, Şişli"
HOME = "Ergenekon Cad. 5 D:3, Şişli"


def topology(lines_on_cabinet: int = 12) -> Topology:
    """Şişli: a DSLAM in cabinet sisli-k12 (a site with an address and coordinates), another in
    the exchange; Kadıköy: one OLT alone in its exchange."""
    devices = {
        "sisli-dslam-01": Device(
            "sisli-dslam-01",
            "dslam",
            "sisli",
            "127.0.10.1",
            None,
            cabinet="sisli-k12",
            location=CABINET_SITE,
            lat=41.0602,
            lon=28.9877,
        ),
        "sisli-dslam-02": Device("sisli-dslam-02", "dslam", "sisli", "127.0.10.2", None),
        "kadikoy-olt-01": Device("kadikoy-olt-01", "olt", "kadikoy", "127.0.11.1", None),
    }
    lines = {
        f"s{n:03d}": Line(
            f"s{n:03d}",
            f"Abone {n}",
            "sisli-dslam-01",
            phone=f"+90532{n:07d}",
            port=n,
            modem=f"127.0.20.{n}",
            address=HOME if n == 1 else f"Abide-i Hürriyet Cad. {n}, Şişli",
            lat=41.0611 if n == 1 else None,
            lon=28.9866 if n == 1 else None,
        )
        for n in range(1, lines_on_cabinet + 1)
    }
    lines["t001"] = Line("t001", "Mehmet Demir", "sisli-dslam-02", phone="+905325555555", port=1)
    lines["k001"] = Line("k001", "Zeynep Kaya", "kadikoy-olt-01", port=1)
    return Topology(
        {"ist-avrupa": Region("ist-avrupa", "İstanbul Avrupa"), "ist-anadolu": Region("ist-anadolu", "İstanbul Anadolu")},
        {
            "sisli": Exchange("sisli", "Şişli Santrali", "ist-avrupa"),
            "kadikoy": Exchange("kadikoy", "Kadıköy Santrali", "ist-anadolu"),
        },
        devices,
        lines,
    )


def outage(
    root: NodeRef,
    affected: frozenset[str],
    *,
    tracking: str = "ARZ-2026-000123",
    kind: IncidentKind = IncidentKind.OUTAGE,
    phase: Phase = Phase.OPEN,
    evidence: tuple[str, ...] = ("12/12 lines down behind device:sisli-dslam-01",),
) -> Incident:
    return Incident(tracking, kind, root, phase, OPENED, OPENED, affected, evidence)


PORT_DOWN = "snmp:adsl: not in sync (interface down) (oper_up 0)"
MODEM_SILENT = "icmp: timeout"


class States:
    """The engine's `node_state` as a table: what is not listed answers (OK)."""

    def __init__(self, states: Mapping[str, tuple[Status, tuple[str, ...]]]) -> None:
        self.states = states

    def __call__(self, node: NodeRef) -> LineState:
        status, reasons = self.states.get(str(node), (Status.OK, ()))
        return LineState(node, status, OPENED, reasons)
