"""The customers' tracking page, rendered (issue 12 item 2): every field in both languages,
hostile names escaped, and nothing private on it."""

from __future__ import annotations

import json
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest

from monitord.model import IncidentKind, NodeRef, Phase
from monitord.stages import DEFAULT_TABLE, ENGINE_STAGES, STAGES
from monitord.track_page import (
    affected_text,
    merged_into,
    normalize,
    number_pattern,
    public_view,
    render_page,
    render_problem,
    rough,
    view_json,
)
from tests.track_fixtures import (
    DEVICE,
    INCIDENTS,
    LINE_IDS,
    MERGED,
    ONE_LINE,
    OPENED,
    OUTAGE,
    RECOVERING,
    RESOLVED,
    ZONE,
    private_values,
    topology,
)

TZ = ZoneInfo(ZONE)


def test_every_phase_has_one_stage_and_every_stage_both_names() -> None:
    assert set(ENGINE_STAGES) == set(Phase)
    assert {DEFAULT_TABLE.of_phase(p).id for p in Phase} == {"detected", "recovering", "resolved"}
    for stage in STAGES:
        assert stage.name("tr") and stage.name("en") and stage.name("tr") != stage.name("en")
    assert len({s.id for s in STAGES}) == len(STAGES)


@pytest.mark.parametrize(
    ("incident", "tr", "en"),
    [
        (OUTAGE, "Arıza tespit edildi", "Fault detected"),
        (RECOVERING, "Onarım doğrulanıyor", "Verifying the repair"),
        (RESOLVED, "Çözüldü", "Resolved"),
    ],
)
def test_the_stage_follows_the_phase(incident, tr: str, en: str) -> None:
    view = public_view(incident, topology())
    assert f'id="stage">{tr}<' in render_page(view, TZ, "tr")
    assert f'id="stage">{en}<' in render_page(view, TZ, "en")
    assert view_json(view, TZ, "en")["stage"]["name"] == en


def test_an_area_outage_in_turkish() -> None:
    page = render_page(public_view(OUTAGE, topology()), TZ, "tr")
    assert '<html lang="tr">' in page and 'name="viewport"' in page
    assert "ARZ-2026-000123" in page
    assert "Beşiktaş Santrali bölgesinde internet hizmeti kesintisi" in page
    assert "<dd>Yaklaşık 50 abone etkileniyor</dd>" in page  # 47, rounded
    assert "4 Aralık 2026 15:05" in page  # 12:05 UTC in Istanbul
    assert "Son güncelleme" in page and "4 Aralık 2026 15:15" in page
    assert "Çözüldüğü zaman" not in page
    assert 'href="?lang=en"' in page


def test_an_area_outage_in_english_and_as_json() -> None:
    view = public_view(RESOLVED, topology())
    page = render_page(view, TZ, "en")
    assert '<html lang="en">' in page
    assert "Internet service outage in the Beşiktaş Santrali area" in page
    assert "<dd>About 50 subscribers affected</dd>" in page
    assert "4 December 2026, 15:05" in page
    assert "Resolved at" in page and "4 December 2026, 16:35" in page
    assert json.loads(json.dumps(view_json(view, TZ, "en"))) == {
        "tracking": "ARZ-2026-000125",
        "language": "en",
        "stage": {"id": "resolved", "name": "Resolved", "final": True},
        "started_at": "2026-12-04T15:05:00+03:00",
        "updated_at": "2026-12-04T15:15:00+03:00",
        "resolved_at": "2026-12-04T16:35:00+03:00",
        "affected": "Internet service outage in the Beşiktaş Santrali area",
        "area": "Beşiktaş Santrali",
        "subscribers_about": 50,
        "merged_from": None,
        "wider_open": None,
        "closed_by_hand": False,
    }


def test_one_line_is_told_as_your_subscription_without_a_count() -> None:
    view = public_view(ONE_LINE, topology())
    assert view.area is None and view.subscribers_about is None
    assert "Aboneliğinizde internet hizmeti kesintisi" in render_page(view, TZ, "tr")
    assert "abone" not in render_page(view, TZ, "tr").replace("Aboneliğinizde", "")


BJK, IST = "Beşiktaş Santrali", "İstanbul Avrupa"
KINDS = [
    (
        IncidentKind.DEGRADATION,
        NodeRef("device", DEVICE),
        f"{BJK} bölgesinde internet bağlantı kalitesinde düşüş",
        f"Reduced internet connection quality in the {BJK} area",
    ),
    (
        IncidentKind.OVERRUN,
        NodeRef("exchange", "bjk"),
        f"{BJK} bölgesinde planlı bakım sonrası süren kesinti",
        f"Outage continuing after planned maintenance in the {BJK} area",
    ),
    (IncidentKind.CPE, NodeRef("line", "BJK000003"), "Modeminize ulaşılamıyor", "Your modem cannot be reached"),
    (
        IncidentKind.OUTAGE,
        NodeRef("region", "ist"),
        f"{IST} bölgesinde internet hizmeti kesintisi",
        f"Internet service outage in the {IST} area",
    ),
]


@pytest.mark.parametrize(("kind", "root", "tr", "en"), KINDS)
def test_every_kind_in_a_customers_words(kind: IncidentKind, root: NodeRef, tr: str, en: str) -> None:
    view = public_view(replace(OUTAGE, kind=kind, root=root), topology())
    assert (affected_text(view, "tr"), affected_text(view, "en")) == (tr, en)
    assert f"<dd>{tr}</dd>" in render_page(view, TZ, "tr")


def test_rough_counts() -> None:
    assert [rough(n) for n in (1, 9, 10, 14, 15, 47, 230, 1234, 186_000)] == [None, None, 10, 10, 20, 50, 200, 1000, 200_000]


@pytest.mark.parametrize("incident", INCIDENTS, ids=lambda i: i.phase.value + "-" + i.root.level)
@pytest.mark.parametrize("language", ["tr", "en"])
def test_nothing_private_is_shown(incident, language) -> None:
    view = public_view(incident, topology())
    shown = render_page(view, TZ, language) + json.dumps(view_json(view, TZ, language), ensure_ascii=False)
    leaked = [v for v in private_values() if v in shown]
    assert leaked == []


def test_hostile_names_are_escaped() -> None:
    hostile = '<script>alert(1)</script><img src=x onerror=alert(2)> & "quoted" \'single\''
    view = public_view(OUTAGE, topology(exchange_name=hostile))
    page = render_page(view, TZ, "tr")
    assert "<script>" not in page and "<img" not in page
    assert (
        "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt; &amp; &quot;quoted&quot; &#x27;single&#x27;"
        in page
    )
    assert view_json(view, TZ, "tr")["area"] == hostile  # JSON carries it as data


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("ARZ-2026-000123", "ARZ-2026-000123"),
        (" arz-2026-000123 ", "ARZ-2026-000123"),
        ("ARZ-2026-00012", None),
        ("ARZ-2026-0001234", None),
        ("XYZ-2026-000123", None),
        ("ARZ-2026-000123' OR '1'='1", None),
        ("ARZ-2026-000123;DROP TABLE incidents", None),
        ("ARZ-２０２６-000123", None),  # full-width digits
        ("A" * 10_000, None),
        ("", None),
    ],
)
def test_numbers(given: str, expected: str | None) -> None:
    assert normalize(given, number_pattern("ARZ")) == expected


def test_problem_pages_are_kind_and_escape_the_number() -> None:
    page = render_problem("not_found", "tr", "ARZ", "ARZ-2026-000999")
    assert "Bu takip numarasıyla bir kayıt bulamadık." in page and "ARZ-2026-000999" in page
    assert "ARZ-2026-000123" in page  # the example of what a number looks like
    assert "could not find" in render_problem("not_found", "en", "ARZ")
    assert "<b>" not in render_problem("malformed", "en", "ARZ", "<b>x</b>")


def test_a_merged_number_shows_the_wider_incident_with_a_note() -> None:
    view = public_view(OUTAGE, topology(), MERGED)
    assert view.stage.id == "detected"  # its lines are still in the wider fault
    assert merged_into(MERGED) == "ARZ-2026-000123" and merged_into(OUTAGE) is None
    assert '<p id="merged">ARZ-2026-000127 numaralı kaydınız ARZ-2026-000123 numaralı genel arıza kaydına bağlandı.</p>' in (
        render_page(view, TZ, "tr")
    )
    assert "Your record ARZ-2026-000127 was joined to the wider fault ARZ-2026-000123." in render_page(view, TZ, "en")
    assert view_json(view, TZ, "en")["merged_from"] == "ARZ-2026-000127"


def test_a_merged_number_whose_lines_left_the_wider_fault_shows_itself_resolved() -> None:
    """Its lines came back while the wider fault goes on (they were told so by SMS): the number is
    resolved, whatever the helpdesk says of the wider incident, and says the wider one goes on."""
    repaired = replace(MERGED, affected=frozenset(LINE_IDS[:2]))
    wider = replace(OUTAGE, affected=frozenset(LINE_IDS[2:]))
    view = public_view(wider, topology(), repaired, helpdesk="field_team")
    assert (view.tracking, view.stage.id, view.merged_from, view.wider_open) == (
        repaired.tracking,
        "resolved",
        None,
        wider.tracking,
    )
    assert view.resolved_at is None and view.started_at == repaired.opened_at
    page = render_page(view, TZ, "tr")
    assert 'id="stage">Çözüldü<' in page and 'id="merged"' not in page
    assert f"Hizmetiniz yeniden çalışıyor. Bağlandığı {wider.tracking} numaralı genel arıza başka aboneler için sürüyor." in page
    assert view_json(view, TZ, "en")["wider_open"] == wider.tracking
    still = public_view(wider, topology(), replace(repaired, affected=frozenset(LINE_IDS[1:3])), helpdesk="field_team")
    assert (still.tracking, still.stage.id, still.wider_open) == (wider.tracking, "field_team", None)  # one of its lines is in it
    assert public_view(wider, topology(), helpdesk="field_team").stage.id == "field_team"  # the wider number itself
    over = public_view(replace(wider, phase=Phase.RESOLVED, resolved_at=OPENED + 900), topology(), repaired)
    assert (over.tracking, over.resolved_at, over.wider_open) == (wider.tracking, OPENED + 900, None)  # both over: the wider one


def test_an_incident_closed_by_hand_says_so_and_asks_those_still_down_to_call() -> None:
    closed = replace(RESOLVED, evidence=(*RESOLVED.evidence, "closed by hand by ayse: DSLAM replaced"))
    view = public_view(closed, topology())
    assert view.closed_by_hand and not public_view(RESOLVED, topology()).closed_by_hand
    assert '<p id="closed">Bu kayıt ekibimiz tarafından kapatıldı.' in render_page(view, TZ, "tr")
    assert "If your service is still not working, please call us." in render_page(view, TZ, "en")
    assert "ayse" not in render_page(view, TZ, "en") and "DSLAM" not in render_page(view, TZ, "en")  # who and why stay inside
    assert view_json(view, TZ, "en")["closed_by_hand"] is True
