"""The `tracking:` section: off when absent, strict when present, and a reload names it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from lab.isp import build_sample_isp, write_config, write_secret
from monitord.config import ConfigError, load_config
from monitord.config.model import TrackingConfig
from monitord.restart import needs_restart


def test_off_when_absent_and_read_when_present(tmp_path: Path) -> None:
    path = build_sample_isp(tmp_path, base="127.6.12").config
    assert load_config(path).tracking is None
    write_config(tmp_path, None, tracking={"listen": "0.0.0.0:9180", "trusted_proxies": ["::1", "127.0.0.1"]})
    assert load_config(path).tracking == TrackingConfig("0.0.0.0", 9180, 0.5, 10, ("::1", "127.0.0.1"))


def test_every_bad_key_is_named_with_its_line(tmp_path: Path) -> None:
    path = build_sample_isp(tmp_path, base="127.6.12").config
    write_config(tmp_path, None, tracking={"listen": "everywhere", "rate": 0, "trusted_proxies": ["proxy.example"], "colour": 1})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    said = str(caught.value)
    for key in ("tracking.listen", "tracking.rate", "tracking.trusted_proxies[0]", "tracking.colour"):
        assert key in said, said
    assert "config.yaml:" in said


def test_a_reload_that_changes_it_asks_for_a_restart(tmp_path: Path) -> None:
    config = load_config(build_sample_isp(tmp_path, base="127.6.12").config)
    assert needs_restart(config, replace(config, tracking=TrackingConfig("127.0.0.1", 9180))) == ["tracking"]


def twilio_of(folder: Path) -> dict[str, object]:
    """A `notifiers.sms` section for Twilio, its token in a secret file in `folder`."""
    token = write_secret(folder, "twilio.token", "lab-auth-token")
    return {"kind": "twilio", "account_sid": "AC" + "0" * 32, "auth_token": token, "from": "+908502200000"}


def test_a_public_url_takes_twilios_webhook_and_needs_twilio(tmp_path: Path) -> None:
    path = build_sample_isp(tmp_path, base="127.6.12").config
    twilio = twilio_of(tmp_path)
    tracking = {"listen": "127.0.0.1:9180", "public_url": "https://hooks.isp.example/"}
    write_config(tmp_path, None, tracking=tracking)  # no notifiers.sms: no auth token to check signatures with
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [problem] = caught.value.problems
    assert (problem.key, problem.message) == ("tracking.public_url", "inbound SMS need Twilio") and problem.line
    write_config(tmp_path, {"sms": twilio}, tracking=tracking)
    assert load_config(path).tracking == TrackingConfig("127.0.0.1", 9180, public_url="https://hooks.isp.example")
    write_config(tmp_path, {"sms": twilio}, tracking={**tracking, "public_url": "hooks.isp.example"})
    with pytest.raises(ConfigError, match="tracking.public_url"):
        load_config(path)
    write_config(tmp_path, {"sms": {**twilio, "confirm_after": "30m"}}, tracking={"listen": "127.0.0.1:9180", "public_url": None})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert [(p.key, p.message) for p in caught.value.problems] == [
        ("notifiers.sms.confirm_after", "no answer could reach monitord")
    ]
    write_config(tmp_path, {"sms": {**twilio, "confirm_after": "30m"}}, tracking=tracking)
    assert load_config(path).notifiers.sms.confirm_after == 1800.0  # type: ignore[union-attr]


def test_a_survey_needs_the_question_it_follows(tmp_path: Path) -> None:
    path = build_sample_isp(tmp_path, base="127.6.12").config
    twilio = {**twilio_of(tmp_path), "survey": True}
    tracking = {"listen": "127.0.0.1:9180", "public_url": "https://hooks.isp.example"}
    write_config(tmp_path, {"sms": twilio}, tracking=tracking)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [problem] = caught.value.problems
    assert (problem.key, problem.message) == ("notifiers.sms.survey", 'the survey follows a "yes" to the repair question')
    assert problem.line
    write_config(tmp_path, {"sms": {**twilio, "confirm_after": "30m"}}, tracking=tracking)
    sms = load_config(path).notifiers.sms
    assert sms is not None and sms.survey and sms.confirm_after == 1800.0
