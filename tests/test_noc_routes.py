"""Per-region NOC routes (`notifiers.receivers`, `notifiers.routes`): who gets a region's NOC
e-mail, and `check` refusing a route to an unknown region or receiver at its line."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from plan_fixtures import TOPOLOGY, Change, incident
from test_config import BASE, ENV, REPO, problems_of, write

from monitord.config import load_config
from monitord.config.templates import builtin_templates
from monitord.model import NodeRef
from notices.plan import PlanSettings, plan

ROUTES = """\
  receivers:
    - name: noc-marmara
      email: [noc-marmara@isp.example, nobet@isp.example]
  routes:
    - region: marmara
      receiver: noc-marmara
"""


def with_routes(section: str) -> str:
    return BASE.replace("maintenance:\n", section + "maintenance:\n", 1)


def at_line(text: str, needle: str) -> int:
    """The line of `needle`'s first occurrence after the routes begin."""
    start = text.index("  receivers:")
    return text[: text.index(needle, start)].count("\n") + 1


def test_a_routed_region_is_read(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, with_routes(ROUTES)), ENV)
    assert config.notifiers.noc_routes == (("marmara", ("noc-marmara@isp.example", "nobet@isp.example")),)


@pytest.mark.parametrize(
    ("section", "needle", "message"),
    [
        (ROUTES.replace("receiver: noc-marmara", "receiver: noc-ege"), "      receiver: noc-ege", "unknown receiver 'noc-ege'"),
        (ROUTES.replace("region: marmara", "region: ege"), "    - region: ege", "unknown region 'ege'"),
        (
            ROUTES + "    - region: marmara\n      receiver: noc-marmara\n",
            "    - region: marmara\n      receiver: noc-marmara\n    - region",
            "routed twice",
        ),
        (
            ROUTES.replace("  routes:", "    - name: noc-marmara\n      email: [x@isp.example]\n  routes:"),
            "    - name: noc-marmara\n      email: [x",
            "defined twice",
        ),
    ],
)
def test_a_bad_route_is_refused_at_its_line(tmp_path: Path, section: str, needle: str, message: str) -> None:
    text = with_routes(section)
    found = problems_of(write(tmp_path, text))
    assert len(found) == 1 and message in found[0].message, found
    line = at_line(text, needle)
    if message == "routed twice":
        line += 2  # the second route
    assert found[0].line == line, found


def test_check_refuses_a_route_to_an_unknown_receiver_and_names_file_and_line(tmp_path: Path) -> None:
    text = with_routes(ROUTES.replace("receiver: noc-marmara", "receiver: noc-ege"))
    path = write(tmp_path, text)
    done = subprocess.run(
        [sys.executable, "-m", "monitord.cli", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **ENV},
    )
    assert done.returncode != 0
    assert (
        f"{path}:{at_line(text, '      receiver: noc-ege')}: notifiers.routes[0].receiver: unknown receiver 'noc-ege'"
        in done.stderr
    )


def test_routes_without_email_are_refused(tmp_path: Path) -> None:
    text = with_routes(ROUTES)
    start, end = text.index("  email:\n    host"), text.index("  tickets:")
    found = problems_of(write(tmp_path, text[:start] + text[end:]))
    assert [(p.message, p.key) for p in found] == [
        ("NOC e-mail, but notifiers.email is not configured", "notifiers.receivers[0].email")
    ]


QUEUES = """\
  receivers:
    - name: noc-marmara
      email: [noc-marmara@isp.example]
      queue: Arizalar Marmara
    - name: ege-helpdesk
      queue: Arizalar Ege
  routes:
    - region: marmara
      receiver: noc-marmara
    - region: ege
      receiver: ege-helpdesk
"""


def test_a_region_s_tickets_go_to_its_receiver_s_queue(tmp_path: Path) -> None:
    ege = "  regions:\n    - id: ege\n      name: Ege\n      exchanges: []\n"
    config = load_config(write(tmp_path, with_routes(QUEUES).replace("  regions:\n", ege, 1)), ENV)
    assert config.notifiers.ticket_routes == (("marmara", "Arizalar Marmara"), ("ege", "Arizalar Ege"))
    assert config.notifiers.noc_routes == (("marmara", ("noc-marmara@isp.example",)),)  # ege's e-mail stays with email.noc


@pytest.mark.parametrize(
    ("edit", "path", "message"),
    [
        (
            lambda t: t.replace("      queue: Arizalar Ege\n", ""),
            "notifiers.receivers[1]",
            "receiver 'ege-helpdesk' names no one",
        ),
        (
            lambda t: t.replace("    kind: rt\n", "    kind: webhook\n").replace("    queue: Network Outages\n", ""),
            "notifiers.receivers[0].queue",
            "an RT queue, but notifiers.tickets is not Request Tracker (kind: rt)",
        ),
    ],
)
def test_a_receiver_that_cannot_be_told_is_refused(tmp_path: Path, edit: Any, path: str, message: str) -> None:
    text = edit(with_routes(QUEUES.replace("    - region: ege\n      receiver: ege-helpdesk\n", "")))
    found = problems_of(write(tmp_path, text))
    assert (path, message) in [(p.key, p.message) for p in found], found


def test_a_routed_region_s_tickets_carry_its_queue() -> None:
    settings = PlanSettings(ticket_routes=(("ist-avrupa", "Arizalar Avrupa"),), templates=builtin_templates())

    def queues(root: NodeRef) -> set[str | None]:
        items = plan(Change(incident(root=root), "opened"), TOPOLOGY, settings, 0.0, lambda _: None)
        return {n.route for n, _ in items if n.channel == "ticket"}

    assert queues(NodeRef("device", "sisli-dslam-01")) == {"Arizalar Avrupa"}
    assert queues(NodeRef("device", "kadikoy-olt-01")) == {None}  # ist-anadolu: the notifier's own queue
    assert queues(NodeRef("device", "gone")) == {None}
    assert {
        n.route for n, _ in plan(Change(incident(), "opened"), TOPOLOGY, settings, 0.0, lambda _: None) if n.channel != "ticket"
    } == {None}


def test_a_routed_region_s_noc_e_mail_goes_to_its_receiver_only() -> None:
    settings = PlanSettings(
        noc_emails=("noc@isp.example",),
        noc_routes=(("ist-avrupa", ("avrupa@isp.example",)),),
        templates=builtin_templates(),
    )

    def noc_mail(root: NodeRef) -> list[str]:
        items = plan(Change(incident(root=root), "opened"), TOPOLOGY, settings, 0.0, lambda _: None)
        return [n.recipient for n, _ in items if n.action == "noc-opened"]

    assert noc_mail(NodeRef("device", "sisli-dslam-01")) == ["avrupa@isp.example"]
    assert noc_mail(NodeRef("line", "s1")) == ["avrupa@isp.example"]
    assert noc_mail(NodeRef("device", "kadikoy-olt-01")) == ["noc@isp.example"]  # ist-anadolu: not routed
    assert noc_mail(NodeRef("device", "gone")) == ["noc@isp.example"]
    unrouted = replace(settings, noc_routes=())
    items = plan(Change(incident(), "opened"), TOPOLOGY, unrouted, 0.0, lambda _: None)
    assert [n.recipient for n, _ in items if n.action == "noc-opened"] == ["noc@isp.example"]
