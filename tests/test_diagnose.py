"""The diagnosis policy as a table: facts in, cause and evidence out (no network)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from monitord.cli_tables import show_diagnosis
from monitord.config.rules import parse_rules
from monitord.diagnose import Diagnosis, Facts, Ping, Row, covering, judge_row, verdict
from monitord.http import diagnosis_json
from monitord.model import (
    Device,
    Incident,
    IncidentKind,
    Line,
    LineState,
    MaintenanceWindow,
    NodeRef,
    Outcome,
    Phase,
    SnmpAuth,
    Status,
)

NOW = 1_800_000_000.0
LINE = Line("S1", "Ayşe Yılmaz", "dslam-1", phone="+905321234567", port=3, modem="127.0.20.3")
DEVICE = Device("dslam-1", "dslam", "sisli", "127.0.10.1", SnmpAuth("v2", "2c"), ("adsl", "if-mib"), cabinet="k12")
CHAIN = (NodeRef("device", "dslam-1"), NodeRef("cabinet", "k12"), NodeRef("exchange", "sisli"), NodeRef("region", "ist"))

UP = Ping("127.0.20.3", Outcome.OK, 3, 3, 0.4)
SILENT = Ping("127.0.20.3", Outcome.TIMEOUT, 3, 0)
HEAD_UP = Ping("127.0.10.1", Outcome.OK, 3, 3, 0.2)
HEAD_SILENT = Ping("127.0.10.1", Outcome.TIMEOUT, 3, 0)
IN_SYNC = (Row("adsl", Outcome.OK, {"snr_margin_down_db": 12.0}), Row("if-mib", Outcome.OK, {"oper_up": 1.0}))
NO_ROW = (Row("adsl", Outcome.NOT_FOUND), Row("if-mib", Outcome.NOT_FOUND))
TIMED_OUT = (Row("adsl", Outcome.TIMEOUT), Row("if-mib", Outcome.TIMEOUT))
LOW_SNR = (Row("adsl", Outcome.OK, {"snr_margin_down_db": 3.0}, degraded=("snr_margin_down_db 3 <= 6",)), IN_SYNC[1])
OUT_OF_SYNC = (IN_SYNC[0], Row("if-mib", Outcome.OK, {"oper_up": 0.0}, down=("oper_up 0 not in {1}",)))
AUTH = (Row("adsl", Outcome.AUTH_FAILURE), Row("if-mib", Outcome.AUTH_FAILURE))
ABSENT = (
    "profile adsl: tables 1.3.6.1.2.1.10.94.1.1.2.1, 1.3.6.1.2.1.10.94.1.1.3.1 and 6 more absent on this agent (wrong profile?)"
)
MISFIT = Row("adsl", Outcome.NO_TABLE, detail=ABSENT)


def incident(
    tracking: str, root: str, kind: IncidentKind = IncidentKind.OUTAGE, affected: frozenset[str] = frozenset({"S1"})
) -> Incident:
    level, _, ident = root.partition(":")
    return Incident(tracking, kind, NodeRef(level, ident), Phase.OPEN, NOW - 600, NOW - 60, affected, ("evidence",))  # type: ignore[arg-type]


WINDOW = MaintenanceWindow("mw-1", (NodeRef("exchange", "sisli"),), NOW - 60, NOW + 3600, "Santral yazılım güncellemesi")


def facts(**changes: object) -> Facts:
    base = Facts(
        line=LINE,
        device=DEVICE,
        chain=CHAIN,
        modem=UP,
        head_end=HEAD_UP,
        rows=IN_SYNC,
        line_state=LineState(NodeRef("line", "S1"), Status.OK, NOW - 3600),
        device_state=LineState(NodeRef("device", "dslam-1"), Status.OK, NOW - 3600),
        incidents=(),
        windows=(),
        at=NOW,
        timezone="Europe/Istanbul",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


ICMP_ONLY = replace(DEVICE, snmp=None, profiles=())
DEGRADED_STATE = LineState(NodeRef("line", "S1"), Status.DEGRADED, NOW - 300, ("resyncs_per_s per 15m 4 > 2",))

CASES = [
    # (name, facts, cause, tracking)
    ("all well", facts(), "ok", None),
    ("modem silent, line in sync", facts(modem=SILENT), "modem", None),
    ("modem silent, no row on the head-end", facts(modem=SILENT, rows=NO_ROW), "line", None),
    ("modem answers, but no row", facts(rows=NO_ROW), "line", None),
    ("low SNR margin", facts(rows=LOW_SNR), "line", None),
    ("row says out of sync", facts(modem=SILENT, rows=OUT_OF_SYNC), "line", None),
    ("head-end silent", facts(modem=SILENT, head_end=HEAD_SILENT, rows=TIMED_OUT), "device", None),
    (
        "head-end silent, its incident cited",
        facts(modem=SILENT, rows=TIMED_OUT, incidents=(incident("ARZ-1", "device:dslam-1"),)),
        "device",
        "ARZ-1",
    ),
    ("ICMP-only head-end silent", facts(device=ICMP_ONLY, rows=(), modem=SILENT, head_end=HEAD_SILENT), "device", None),
    (
        "outage at the exchange explains a silent head-end",
        facts(modem=SILENT, rows=TIMED_OUT, incidents=(incident("ARZ-2", "exchange:sisli"),)),
        "outage",
        "ARZ-2",
    ),
    ("outage at the cabinet", facts(modem=SILENT, incidents=(incident("ARZ-3", "cabinet:k12"),)), "outage", "ARZ-3"),
    (
        "a degradation above is not an outage",
        facts(incidents=(incident("ARZ-4", "region:ist", IncidentKind.DEGRADATION, frozenset()),)),
        "ok",
        None,
    ),
    (
        "maintenance comes first",
        facts(modem=SILENT, rows=TIMED_OUT, windows=(WINDOW,), incidents=(incident("ARZ-5", "exchange:sisli"),)),
        "maintenance",
        "ARZ-5",
    ),
    ("modem silent, row unreadable", facts(modem=SILENT, rows=AUTH), "unknown", None),
    ("modem answers, row unreadable", facts(rows=AUTH), "ok", None),
    ("one profile silent, another answers", facts(rows=(TIMED_OUT[0], IN_SYNC[1])), "ok", None),
    ("fresh looks fine, monitoring sees degradation", facts(line_state=DEGRADED_STATE), "line", None),
    (
        "a line incident is quoted",
        facts(rows=LOW_SNR, incidents=(incident("ARZ-6", "line:S1", IncidentKind.DEGRADATION),)),
        "line",
        "ARZ-6",
    ),
    ("no modem address, row in sync", facts(line=replace(LINE, modem=None), modem=None), "ok", None),
    (
        "no modem address, ICMP-only head-end",
        facts(line=replace(LINE, modem=None), modem=None, device=ICMP_ONLY, rows=()),
        "unknown",
        None,
    ),
    ("no such table: a wrong profile, modem answers", facts(rows=(MISFIT,)), "config", None),
    ("no such table: a wrong profile, modem silent", facts(modem=SILENT, rows=(MISFIT,)), "config", None),
    ("no such table, another profile in sync", facts(rows=(MISFIT, IN_SYNC[1])), "ok", None),
    ("no such table, another profile out of sync", facts(rows=(MISFIT, OUT_OF_SYNC[1])), "line", None),
]


@pytest.mark.parametrize(("name", "given", "cause", "tracking"), CASES, ids=[c[0] for c in CASES])
def test_verdict_table(name: str, given: Facts, cause: str, tracking: str | None) -> None:
    found = verdict(given)
    assert (found.cause, found.tracking) == (cause, tracking)
    assert found.summary and found.evidence


def test_evidence_names_what_was_seen() -> None:
    text = "\n".join(
        verdict(facts(modem=SILENT, rows=LOW_SNR, windows=(WINDOW,), incidents=(incident("ARZ-9", "exchange:sisli"),))).evidence
    )
    assert "modem 127.0.20.3 did not answer 3 pings" in text
    assert "adsl on dslam-1: adsl: snr_margin_down_db 3 <= 6" in text
    assert "maintenance mw-1 on exchange:sisli until" in text and "Santral yazılım güncellemesi" in text
    assert "open incident ARZ-9: outage at exchange:sisli, 1 lines" in text
    assert "monitoring: line is ok since" in text and "+03" in text  # local time of the daemon's zone
    healthy = "\n".join(verdict(facts()).evidence)
    assert "answered 3/3 pings, best 0.4 ms" in healthy and "if-mib on dslam-1: row in sync (oper_up 1)" in healthy
    assert LINE.phone not in healthy + text


def test_judge_row_with_the_default_rules() -> None:
    rules = parse_rules(None)
    assert judge_row({"snr_margin_down_db": 3.0, "attenuation_down_db": 30.0}, rules.ruleset("adsl"), NOW) == (
        (),
        ("snr_margin_down_db 3 <= 6",),
    )
    assert judge_row({"snr_margin_down_db": 12.0}, rules.ruleset("adsl"), NOW) == ((), ())
    assert judge_row({"oper_up": 0.0}, rules.ruleset("if-mib"), NOW) == (("oper_up 0 not in {1}",), ())
    out_of_sync = {"oper_up": 0.0, "in_sync": 0.0, "snr_margin_down_db": 0.0, "attenuation_down_db": 0.0}
    assert judge_row(out_of_sync, rules.ruleset("adsl"), NOW) == (
        ("not in sync (interface down) (oper_up 0)", "not in sync (margin, attenuation and rates all 0) (in_sync 0)"),
        (),
    )
    assert judge_row({"cm_status": 6.0, "us_snr_db": 20.0}, rules.ruleset("docsis-cmts"), NOW) == ((), ("us_snr_db 20 < 25",))


def test_covering_windows() -> None:
    line_window = MaintenanceWindow("mw-line", (NodeRef("line", "S1"),), NOW - 10, NOW + 10)
    other = MaintenanceWindow("mw-other", (NodeRef("exchange", "kadikoy"),), NOW - 10, NOW + 10)
    later = replace(WINDOW, id="mw-later", start=NOW + 60)
    in_grace = replace(WINDOW, id="mw-grace", start=NOW - 7200, end=NOW - 60, grace=900)
    over = replace(WINDOW, id="mw-over", start=NOW - 7200, end=NOW - 1000, grace=900)
    found = covering([WINDOW, line_window, other, later, in_grace, over], "S1", CHAIN, NOW)
    assert [w.id for w in found] == ["mw-1", "mw-line", "mw-grace"]


def test_a_wrong_profile_names_device_profile_and_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    found = verdict(facts(rows=(MISFIT, IN_SYNC[1])))
    hint = "(hint: give dslam-1 the profile its agent serves, or remove adsl; then `monitord check` and reload)"
    problem = f"device dslam-1: profiles: adsl: {ABSENT.removeprefix('profile adsl: ')} {hint}"
    assert found.problems == (problem,)
    assert f"adsl on dslam-1: {ABSENT}: the line cannot be judged by this profile" in found.evidence
    assert verdict(facts()).problems == ()
    config = verdict(facts(rows=(MISFIT,)))
    assert config.summary.startswith("The head-end dslam-1 has no adsl table, so it cannot tell whether the line is in sync")

    show_diagnosis(diagnosis_json(Diagnosis(facts(rows=(MISFIT,)), config, {"total": 120.0})))
    shown = capsys.readouterr().out.splitlines()
    assert shown[0] == "S1: CONFIG"
    assert shown[shown.index("problems:") + 1] == f"  {problem}"
