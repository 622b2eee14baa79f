"""The `stages:` list: defaults when absent, the operator's list when given, each fault at its line."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from lab.isp import build_sample_isp, write_config, write_secret
from monitord.config import ConfigError, load_config
from monitord.config.model import StageSyncConfig
from monitord.model import Phase
from monitord.restart import needs_restart

ENGINE = [
    {"id": "detected", "tr": "Arıza tespit edildi", "en": "Fault detected"},
    {"id": "recovering", "tr": "Onarım doğrulanıyor", "en": "Verifying the repair"},
    {"id": "resolved", "tr": "Çözüldü", "en": "Resolved", "sms": True},
]


def test_defaults_when_absent(tmp_path: Path) -> None:
    table = load_config(build_sample_isp(tmp_path, base="127.6.13").config).stages
    assert [s.id for s in table.stages] == ["detected", "field_team", "at_exchange", "recovering", "resolved"]
    assert table.by_id["field_team"].name("tr") == "Saha ekibinde"
    assert table.from_helpdesk("SAHA") is table.by_id["field_team"]
    assert table.from_helpdesk("Santralde işlemde") is table.by_id["at_exchange"]
    assert table.from_helpdesk("nothing") is None


def test_the_operators_list_in_its_order(tmp_path: Path) -> None:
    path = build_sample_isp(tmp_path, base="127.6.13").config
    stages = [ENGINE[0], {"id": "on_the_way", "tr": "Ekip yolda", "en": "Team on the way", "sms": True, "helpdesk": ["Yolda"]}]
    write_config(tmp_path, None, stages=stages + ENGINE[1:])
    table = load_config(path).stages
    assert [s.id for s in table.stages] == ["detected", "on_the_way", "recovering", "resolved"]
    assert table.by_id["on_the_way"].sms and not table.by_id["detected"].sms
    assert table.from_helpdesk("yolda") is table.by_id["on_the_way"]
    assert table.of_phase(Phase.RESOLVED).sms


def test_every_fault_is_named_with_its_line(tmp_path: Path) -> None:
    path = build_sample_isp(tmp_path, base="127.6.13").config
    bad = [
        ENGINE[0],
        {"id": "detected", "tr": "x", "en": "y"},
        {"id": "field", "tr": "Saha", "en": "Field", "sms": "often", "colour": 1},
        {"id": "two", "tr": "İki", "en": "Two", "helpdesk": ["fault detected"]},
    ]
    write_config(tmp_path, None, stages=bad)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    said = str(caught.value)
    for key in ("stages[1].id", "stages[2].sms", "stages[2].colour", "stages[3].helpdesk"):
        assert key in said, said
    assert "duplicate stage id 'detected'" in said and "config.yaml:" in said


def test_the_engine_stages_must_stay(tmp_path: Path) -> None:
    path = build_sample_isp(tmp_path, base="127.6.13").config
    write_config(tmp_path, None, stages=ENGINE[:2])
    with pytest.raises(ConfigError, match="stage 'resolved' is missing"):
        load_config(path)


def test_the_rt_stage_sync_names_known_stages(tmp_path: Path) -> None:
    path = build_sample_isp(tmp_path, base="127.6.13").config
    token = write_secret(tmp_path, "rt.token", "t0ken")
    rt = {"kind": "rt", "url": "http://127.0.0.1:8080", "queue": "Network Outages", "token": token}
    write_config(tmp_path, {"tickets": {**rt, "stage_sync": {"every": "10s", "status": {"stalled": "at_exchange"}}}})
    config = load_config(path)
    sync = config.notifiers.tickets.stage_sync  # type: ignore[union-attr]
    assert sync == StageSyncConfig(every=10.0, status={"stalled": "at_exchange"})
    slower = replace(config.notifiers.tickets, stage_sync=replace(sync, every=60.0))  # type: ignore[type-var, arg-type]
    assert needs_restart(config, replace(config, notifiers=replace(config.notifiers, tickets=slower))) == [
        "notifiers.tickets.stage_sync and its RT"
    ]
    write_config(tmp_path, {"tickets": {**rt, "stage_sync": {"status": {"stalled": "waiting"}, "owner": "nobody_knows"}}})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    said = str(caught.value)
    assert "notifiers.tickets.stage_sync.status.stalled" in said and "no stage 'waiting'" in said
    assert "notifiers.tickets.stage_sync.owner" in said
    hook = {"kind": "webhook", "url": "http://127.0.0.1:8080/hook", "stage_sync": {}}
    write_config(tmp_path, {"tickets": hook})
    with pytest.raises(ConfigError, match="is read from RT only"):
        load_config(path)
