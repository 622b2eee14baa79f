"""DOCSIS plant profiles on real recordings (snmpsim) and synthesised rows, judged by the default rules.

- docsis-upstream (docsIfSignalQualityTable on the CMTS) on the Arris C4 recording's 96 upstream
  channels, served as a slice of the recording (its sysUpTime, ifOperStatus and that table);
- docsis-upstream on synthetic rows cloned from those, with codewords growing between two
  snapshots, served with the 64-bit columns and without them (32-bit fallback);
- docsis-cm's docsIfCmStatusTable counters on the Motorola SB5101E recording, then on a synthetic
  copy of it an hour on with the counters grown.

Expected values are read from the .snmprec files (or the synthetic tables) by the tests themselves.
"""

from __future__ import annotations

import pytest

from monitord.config.rules import parse_rules
from monitord.diagnose import judge_row
from monitord.model import Device, Outcome, Sample, Secret, SnmpAuth
from probes.profile_files import load_profiles
from probes.profiles import poll_device
from probes.rates import RateTracker
from probes.snmp import SnmpClient
from rules.verdict import verdict
from tests.snmp_fixtures import (
    CM_STATUS,
    CM_STATUS_DELTAS,
    RECORDINGS,
    SIGQ,
    UPSTREAM_DELTAS,
    UPSTREAMS,
    Snmpsim,
    client,
    column,
    read_snmprec,
    snmpsim,
)

__all__ = ["client", "snmpsim"]

PROFILES = load_profiles()
RULES = parse_rules(None)
T0 = 1_790_000_000.0
IF_OPER = "1.3.6.1.2.1.2.2.1.8"


def device(sim: Snmpsim, community: str, name: str | None = None, kind: str = "cmts") -> Device:
    auth = SnmpAuth(community, "2c", community=Secret(community, "test"))
    return Device(name or community, kind, "lab", "127.0.0.1", auth, port=sim.port)  # type: ignore[arg-type]


def lines_of(samples: list[Sample]) -> dict[str, Sample]:
    return {sample.target.id: sample for sample in samples if sample.target.level == "line"}


async def test_docsis_upstream_on_arris_c4(snmpsim: Snmpsim, client: SnmpClient) -> None:
    """Arris C4: 96 upstream channels, 42 with a signal (SNR 17.2..38.1 dB); the others are
    logical channels not in use, down by their interface, never a 0 dB channel."""
    records = read_snmprec(RECORDINGS / "arris-c4.snmprec")
    snr, micro, opers = column(records, f"{SIGQ}.5"), column(records, f"{SIGQ}.6"), column(records, IF_OPER)
    assert len(snr) == 96 and sum(1 for value in snr.values() if value) == 42
    assert any(column(records, f"{SIGQ}.{c}") for c in (8, 9, 10))  # the 64-bit codeword columns are served
    wanted = {str(index[0]): f"us-{index[0]}" for index in snr}
    dev, rates, profile = device(snmpsim, "arris-c4-sigq", "c4"), RateTracker(), PROFILES["docsis-upstream"]

    first = lines_of(await poll_device(client, dev, profile, wanted, T0, rates=rates))
    assert "uncorrectable_codewords_per_s" not in first["us-721433"].values  # no rate from one reading
    found = lines_of(await poll_device(client, dev, profile, wanted, T0 + 60, rates=rates))
    rules = RULES.ruleset("docsis-upstream")
    for (port,), tenths in snr.items():
        sample = found[f"us-{port}"]
        assert sample.outcome is Outcome.OK
        assert sample.values == pytest.approx(
            {
                "us_snr_db": tenths / 10,
                "microreflections_dbc": micro[(port,)],
                "unerrored_codewords_per_s": 0.0,  # a static recording: the counters read again unchanged
                "corrected_codewords_per_s": 0.0,
                "uncorrectable_codewords_per_s": 0.0,
                "oper_up": 1.0 if opers[(port,)] == 1 else 0.0,
                "in_use": 1.0 if tenths else 0.0,
            }
        ), port
        if not tenths:
            assert verdict(sample, rules)[0] == "down"
    assert sum(1 for (p,), v in snr.items() if not v and opers[(p,)] == 1) == 2  # up, yet no signal: down by in_use
    assert sum(1 for v in snr.values() if 0 < v < 250) == 6
    worst = min((v, p) for (p,), v in snr.items() if v)
    assert worst[0] == 172
    assert judge_row(found[f"us-{worst[1]}"].values, rules, T0 + 60) == ((), ("us_snr_db 17.2 < 25",))
    assert verdict(found["us-721433"], rules) == ("up", "")  # 30.4 dB


@pytest.mark.parametrize("served", ["upstream", "upstream32"])
async def test_docsis_upstream_synthetic_codeword_rates(snmpsim: Snmpsim, client: SnmpClient, served: str) -> None:
    """Synthetic rows: codeword rates between two snapshots 60 s apart, from the 64-bit columns or,
    on an agent without them, the 32-bit ones; the noisy channel degraded, the idle one down."""
    profile, rates = PROFILES["docsis-upstream"], RateTracker()
    wanted = {str(port): f"us-{port}" for port in UPSTREAMS}
    await poll_device(client, device(snmpsim, f"{served}-synthetic-t0", served), profile, wanted, T0, rates=rates)
    later = await poll_device(client, device(snmpsim, f"{served}-synthetic-t1", served), profile, wanted, T0 + 60, rates=rates)
    found = lines_of(later)
    for port, (oper, snr, micro, *_) in UPSTREAMS.items():
        grown = UPSTREAM_DELTAS.get(port, (0, 0, 0))
        assert found[f"us-{port}"].values == pytest.approx(
            {
                "us_snr_db": snr / 10,
                "microreflections_dbc": micro,
                "unerrored_codewords_per_s": grown[0] / 60,
                "corrected_codewords_per_s": grown[1] / 60,
                "uncorrectable_codewords_per_s": grown[2] / 60,
                "oper_up": 1.0 if oper == 1 else 0.0,
                "in_use": 1.0 if snr else 0.0,
            }
        ), port

    rules = RULES.ruleset("docsis-upstream")
    assert verdict(found["us-900001"], rules) == ("up", "")
    assert judge_row(found["us-900001"].values, rules, T0 + 60) == ((), ())
    assert judge_row(found["us-900002"].values, rules, T0 + 60) == (
        (),
        ("uncorrectable_codewords_per_s per 15m 4.5e+05 > 1000", "us_snr_db 21.2 < 25"),
    )
    assert verdict(found["us-900003"], rules) == ("down", "snmp:docsis-upstream: channel down (interface down) (oper_up 0)")


async def test_docsis_cm_status_counters_on_motorola(snmpsim: Snmpsim, client: SnmpClient) -> None:
    """Motorola SB5101E: docsIfCmStatusTable's resets, lost syncs, T3/T4 timeouts and ranging
    aborts as rates: none from the recording alone, then per second over the hour to a synthetic
    copy with the counters grown; more than the default levels per hour degrade the line."""
    records = read_snmprec(RECORDINGS / "motorola-cm.snmprec")
    counters = {c: column(records, f"{CM_STATUS}.{c}") for c in CM_STATUS_DELTAS}
    assert counters[12] == {(2,): 2759} and counters[13] == {(2,): 24}  # the recording's T3 and T4 timeouts
    names = {
        4: "resets_per_s",
        5: "lost_syncs_per_s",
        12: "t3_timeouts_per_s",
        13: "t4_timeouts_per_s",
        14: "ranging_aborts_per_s",
    }
    profile, rates = PROFILES["docsis-cm"], RateTracker()
    first = lines_of(
        await poll_device(client, device(snmpsim, "motorola-cm", "cm", "router"), profile, {"": "cable-1"}, T0, rates=rates)
    )
    assert not set(names.values()) & set(first["cable-1"].values)
    assert verdict(first["cable-1"], RULES.ruleset("docsis-cm")) == ("up", "")

    dev = device(snmpsim, "motorola-cm-synthetic-t1", "cm", "router")
    values = lines_of(await poll_device(client, dev, profile, {"": "cable-1"}, T0 + 3600, rates=rates))["cable-1"].values
    assert {name: values[name] for name in names.values()} == pytest.approx(
        {names[c]: delta / 3600 for c, delta in CM_STATUS_DELTAS.items()}
    )
    assert judge_row(values, RULES.ruleset("docsis-cm"), T0 + 3600) == (
        (),
        (
            "lost_syncs_per_s per 1h 3 > 1",
            "resets_per_s per 1h 2 > 1",
            "t3_timeouts_per_s per 1h 40 > 10",
            "t4_timeouts_per_s per 1h 4 > 1",
            "us_tx_power_dbmv 52.4 > 52",  # as recorded: the modem is short of upstream headroom
        ),  # one ranging abort an hour is not above 1
    )
