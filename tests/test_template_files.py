"""Message texts as files: the operator's `templates_dir` over the built-in ones, checked by
`monitord check` at file:line (unknown template or placeholder, SMS over its segment budget),
and the SMS channel's kinds (twilio, http) read from the config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from plan_fixtures import Change, at, incident

from monitord.channels import build_notifiers
from monitord.config import ConfigError, load_config
from monitord.config.templates import TEMPLATES_DIR, builtin_templates, read_templates
from monitord.model import NodeRef
from monitord.settings import plan_settings
from monitord.yamlload import load_yaml
from notices.plan import plan
from notifiers.sms import TwilioSms
from notifiers.sms_http import HttpSms

REPO = Path(__file__).resolve().parent.parent
TWILIO = (
    '  sms: {kind: twilio, account_sid: AC00000000000000000000000000000000, auth_token: {file: token}, from: "+908502200000", '
    'base_url: "http://127.0.0.1:9"TAIL}\n'
)
CONFIG = """\
state_file: state.db
tracking_prefix: ARZ
timezone: Europe/Istanbul
TEMPLATES
topology:
  regions:
    - id: ist
      name: İstanbul Avrupa
      exchanges:
        - id: sisli
          name: Kağıthane Santrali
          devices:
            - id: rtr-1
              kind: router
              address: 127.0.0.1
subscribers:
  csv: subs.csv
notifiers:
SMS  tickets: {kind: webhook, url: "http://127.0.0.1:9/t", body_template: BODY}
"""
SUBSCRIBERS = "id,name,phone,email,language,device,port,mac,modem\n1,Ayşe,0532 000 00 01,,tr,rtr-1,,,\n"
OUTAGE_TR = "Bölgenizde ({area}) internet arızası var, ekiplerimiz çalışıyor. Takip no: {tracking}"


def write(
    tmp_path: Path, *, sms: str = TWILIO.replace("TAIL", ""), texts: str | None = None, body: str = "'{\"t\": {tracking}}'"
) -> Path:
    (tmp_path / "subs.csv").write_text(SUBSCRIBERS, encoding="utf-8")
    (tmp_path / "token").write_text("unused", encoding="utf-8")
    folder = ""
    if texts is not None:
        (tmp_path / "texts").mkdir(exist_ok=True)
        (tmp_path / "texts" / "tr.yaml").write_text(texts, encoding="utf-8")
        folder = "templates_dir: texts"
    config = CONFIG.replace("TEMPLATES", folder).replace("SMS", sms).replace("BODY", body)
    (tmp_path / "config.yaml").write_text(config, encoding="utf-8")
    return tmp_path / "config.yaml"


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, {"GW": "gw-secret-1"})
    return [str(p) for p in caught.value.problems]


def test_the_builtin_files_hold_every_template_in_both_languages() -> None:
    texts, found = read_templates(None)
    assert found == []
    assert {lang for by in texts.templates.values() for lang in by} == {"tr", "en"}
    assert texts.where[("sms.outage", "tr")] == (str(TEMPLATES_DIR / "tr.yaml"), 9)
    raw = load_yaml((TEMPLATES_DIR / "tr.yaml").read_text(encoding="utf-8")).data
    assert raw["sms.outage"] == OUTAGE_TR == texts.templates["sms.outage"]["tr"].body


def test_an_override_replaces_one_text_and_reaches_the_customer(tmp_path: Path) -> None:
    mine = '# ours\nsms.outage: "{area} bölgesinde arıza var. Takip: {tracking}"\n'
    config = load_config(write(tmp_path, texts=mine))
    assert config.templates["sms.outage"]["tr"].body == "{area} bölgesinde arıza var. Takip: {tracking}"
    assert config.templates["sms.outage"]["en"] == builtin_templates()["sms.outage"]["en"]
    assert config.templates["sms.restored"] == builtin_templates()["sms.restored"]
    settings = plan_settings(config)
    outage = incident(root=NodeRef("device", "rtr-1"), affected=frozenset({"1"}))
    items = plan(Change(outage, "opened"), config.topology, settings, at("2026-12-01 14:00"), {}.get)
    [sms] = [n for n, _ in items if n.channel == "sms"]
    assert sms.body == "Kağıthane Santrali bölgesinde arıza var. Takip: ARZ-2026-000123"


def test_unknown_placeholders_and_templates_are_refused_at_their_line(tmp_path: Path) -> None:
    mine = (
        "sms.outage: 'Arıza ({bolge}). Takip no: {tracking}'\n"
        "sms.outtage: Arıza\n"
        "email.outage:\n"
        "  subject: Arıza {tracking}\n"
        "  body: |\n"
        "    Sayın {name},\n"
        "\n"
        "    {area} arızası: {sebep}\n"
        "sms.maintenance: '{area} bakım {window}: {reason}'\n"
    )
    found = problems(write(tmp_path, texts=mine))
    where = str(tmp_path / "texts" / "tr.yaml")
    assert found[0].startswith(f"{where}:1: sms.outage: unknown placeholder {{bolge}} (hint: known: {{area}}, {{name}}")
    assert found[1].startswith(f"{where}:2: sms.outtage: unknown template (hint: did you mean 'sms.outage'?)")
    assert found[2].startswith(f"{where}:8: email.outage: unknown placeholder {{sebep}}")  # the body's third line
    assert found[3].startswith(f"{where}:9: sms.maintenance: unknown placeholder {{reason}}")  # free text: not in an SMS
    assert len(found) == 4


def test_an_sms_over_its_budget_is_refused_with_its_longest_rendering(tmp_path: Path) -> None:
    long = "Değerli abonemiz, " * 5 + OUTAGE_TR  # 90 more characters: over 155 septets with the longest area
    budget = TWILIO.replace("TAIL", ", transliterate: true, segments: 1")
    [found] = problems(write(tmp_path, sms=budget, texts=f'sms.outage: "{long}"\n'))
    assert found.startswith(f"{tmp_path / 'texts' / 'tr.yaml'}:1: sms.outage: costs 2 SMS segments (")
    assert "Kagithane Santrali" in found and "ARZ-2026-999999" in found  # transliterated, the longest values
    load_config(write(tmp_path, sms=budget.replace("segments: 1", "segments: 2"), texts=f'sms.outage: "{long}"\n'))


def test_the_default_budget_is_one_segment_where_turkish_stays_gsm7_else_two(tmp_path: Path) -> None:
    near = "Sayın abonemiz, " + OUTAGE_TR  # one segment with the Turkish tables; two in UCS-2, as the built-in ones
    assert load_config(write(tmp_path, texts=f'sms.outage: "{near}"\n')).notifiers.sms is not None  # twilio, UCS-2: 2
    over = "Sayın abonemiz, " * 3 + OUTAGE_TR  # three segments in UCS-2
    [found] = problems(write(tmp_path, texts=f'sms.outage: "{over}"\n'))
    assert "costs 3 SMS segments" in found and "over the budget of 2" in found and "transliterate: true" in found
    translit = TWILIO.replace("TAIL", ", transliterate: true")
    assert load_config(write(tmp_path, sms=translit)).notifiers.sms is not None  # the built-in texts: one segment


HTTP = (
    "  sms:\n    kind: http\n    url: http://127.0.0.1:9/sms\n    sender: ISPNET\n    body: json\n"
    "    fields: {to: gsmno, text: message, username: usercode, password: password}\n"
    "    params: {encoding: TR}\n    auth: fields\n    username: isp\n    password: {env: GW}\n"
)


def test_an_http_gateway_is_configured_and_built(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, sms=HTTP), {"GW": "gw-secret-1"})
    sms = config.notifiers.sms
    assert sms is not None and (sms.kind, sms.encoding, sms.transliterate, sms.body) == ("http", "gsm7-turkish", False, "json")
    assert dict(sms.fields) == {"to": "gsmno", "text": "message", "username": "usercode", "password": "password"}
    assert sms.password is not None and sms.password.reveal() == "gw-secret-1"
    notifier = build_notifiers(config)["sms"]
    assert isinstance(notifier, HttpSms) and notifier.encoding == "gsm7-turkish"
    assert notifier.gateway.url == "http://127.0.0.1:9/sms" and notifier.gateway.auth.username == "isp"
    assert isinstance(build_notifiers(load_config(write(tmp_path)))["sms"], TwilioSms)


@pytest.mark.parametrize(
    ("sms", "expected"),
    [
        (HTTP.replace("    sender: ISPNET\n", ""), "notifiers.sms.sender: missing required key"),
        (
            HTTP.replace("    password: {env: GW}\n", ""),
            "notifiers.sms.password: missing required key (hint: auth: fields needs password)",
        ),
        (
            HTTP + "    account_sid: AC00000000000000000000000000000000\n",
            "notifiers.sms.account_sid: account_sid is for kind twilio",
        ),
        (HTTP.replace("username: usercode", "user: usercode"), "notifiers.sms.fields.user: "),
        (
            HTTP.replace("    auth: fields\n", "    auth: bearer\n"),
            "notifiers.sms.password: password is not used with auth: bearer",
        ),
        (TWILIO.replace("TAIL", ", url: http://127.0.0.1:9/"), "notifiers.sms.url: url is for kind http"),
        (TWILIO.replace("TAIL", ", encoding: gsm7-turkish"), "notifiers.sms.encoding: Twilio encodes gsm7"),
        (HTTP + "    encoding: utf8\n", "notifiers.sms.encoding: "),
    ],
)
def test_sms_keys_of_the_other_kind_or_missing_are_refused(tmp_path: Path, sms: str, expected: str) -> None:
    found = problems(write(tmp_path, sms=sms))
    assert any(expected in p for p in found), found
    assert all("gw-secret-1" not in p for p in found)


def test_the_webhook_body_template_takes_the_same_placeholders(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, body="'{\"title\": {subject}, \"text\": {body}}'")).notifiers.tickets is not None
    path = write(tmp_path, body="'{\"title\": $subject}'")
    [found] = problems(path)
    line = next(n for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if "tickets:" in text)
    assert found.startswith(
        f"{tmp_path / 'config.yaml'}:{line}: notifiers.tickets.body_template: write {{subject}} instead of $subject"
    )


def test_check_prints_the_problem_with_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, texts="sms.update: '{area}: {nonesuch}'\n")
    done = subprocess.run(
        [sys.executable, "-m", "monitord.cli", "check", "--json", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 1
    [problem] = json.loads(done.stdout)["problems"]
    assert (problem["file"], problem["line"], problem["key"]) == (str(tmp_path / "texts" / "tr.yaml"), 1, "sms.update")
    assert problem["message"] == "unknown placeholder {nonesuch}"
