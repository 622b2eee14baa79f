"""The `notifiers.alertmanager` section: what loads, and each mistake named at its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_config import BASE, ENV, line_of, problems_of, write

from monitord.channels import ALERT_RATE, build_notifiers, channel_policies
from monitord.config import load_config
from notifiers.alertmanager import AlertmanagerAlerts

SECTION = """\
  alertmanager:
    url: http://127.0.0.1:9093
    resend: 2m
    ticket_link: "http://rt.test/Ticket?q={tracking}"
"""


def with_section(section: str) -> str:
    return BASE.replace("maintenance:\n", section + "maintenance:\n", 1)


def test_the_section_builds_the_alert_channel(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, with_section(SECTION)), ENV)
    am = config.notifiers.alertmanager
    assert am is not None and (am.url, am.resend, am.timeout) == ("http://127.0.0.1:9093", 120.0, 10.0)
    notifier = build_notifiers(config)["alert"]
    assert isinstance(notifier, AlertmanagerAlerts) and notifier.lease == 480.0
    assert channel_policies(config)["alert"].rate == ALERT_RATE


@pytest.mark.parametrize(
    ("section", "needle", "message"),
    [
        (SECTION.replace("    url: http://127.0.0.1:9093\n", ""), "  alertmanager:", "url"),
        (SECTION.replace("{tracking}", "1"), "    ticket_link:", "ticket_link has no {tracking}"),
        (SECTION + "    token: {env: RT_TOKEN}\n    username: noc\n", "    username:", "either token or username"),
        (SECTION + "    username: noc\n", "  alertmanager:", "username and password go together"),
        (SECTION.replace("resend: 2m", "resend: soon"), "    resend:", "resend"),
        (SECTION + "    routes: x\n", "    routes:", "routes"),
    ],
)
def test_a_bad_section_is_refused_at_its_line(tmp_path: Path, section: str, needle: str, message: str) -> None:
    text = with_section(section)
    found = problems_of(write(tmp_path, text))
    assert any(message in f"{p.key}: {p.message} {p.hint}" for p in found), found
    section_at = text.index("  alertmanager:")
    line = line_of(text, needle) if needle == "  alertmanager:" else text[: text.index(needle, section_at)].count("\n") + 1
    assert any(p.line == line and p.key.startswith("notifiers.alertmanager") for p in found), found
