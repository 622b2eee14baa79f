from __future__ import annotations

import pytest
from plan_fixtures import IST, at

from monitord.config.templates import builtin_templates
from monitord.model import Language
from notices.segments import Cost, cost, segments, transliterate
from notices.templates import (
    REPLIES,
    SMS_NAME_MAX,
    TRACKING_MAX,
    TemplateError,
    format_duration,
    format_time,
    format_window,
    mask_phone,
    render,
    short,
    subscriber_list,
)
from notifiers.sms import sms_segments

TEMPLATES = builtin_templates()

TURKISH_LETTERS = set("çğıöşüÇĞİÖŞÜ")
LONGEST_TRACKING = "ARIZAKAYIT-2026-999999"[:TRACKING_MAX].ljust(TRACKING_MAX, "9")
LONG_NAME = "BüyükçekmeceGüzelyurtŞubesi" * 3  # far over SMS_NAME_MAX, no space to trim

WORST = {
    "tracking": LONGEST_TRACKING,
    "area": LONG_NAME,
    "name": "Şükrü Çağlayan Öğütçü",
    "window": format_window(at("2026-12-01 23:00"), at("2026-12-02 04:00"), IST, "tr"),
    "start": "01.12.2026 13:00",
    "end": "01.12.2026 15:05",
    "at": "01.12.2026 14:00",
    "duration": "2 sa 5 dk",
    "reason": "Santral yazılım güncellemesi",
    "stage": "Being worked on at the exchange",  # the longest default stage name
    "kind": "Kesinti",
    "root": "device:sisli-dslam-01",
    "place": "sisli-dslam-01 (dslam)",
    "region": "İstanbul Avrupa",
    "exchange": "Şişli Santrali",
    "count": 4,
    "added_count": 1,
    "removed_count": 1,
    "evidence": "- sisli-dslam-01 icmp timeout",
    "subscribers": "- s1 Ayşe Yılmaz +90532***1111",
    "replaces": "ARZ-2026-000120, ARZ-2026-000121",
    "into": LONGEST_TRACKING,
    "signature": "Kablo arızası (kabin/santral ile abone arası)",  # dispatch tickets (notices/dispatch.py)
    "facts": "- device:sisli-dslam-01: ok",
    "cabinet": "sisli-k12",
    "site": "Halaskargazi Cad. 120 önü, Şişli",
    "site_coordinates": "41.060200, 28.987700",
    "address": "Ergenekon Cad. 5 D:3, Şişli",
    "coordinates": "-",
    "was": "Kalite düşüşü",
    "channel": "sms",
    "cause": "kimlik bilgileri reddedildi",
    "waiting": 20,
    "probe": "1 dk",
    "since": "01.12.2026 13:00",
    "line": "S100001",
    "phone": "+90532***1111",
    "state": "down: no sync",
    "by": "ayşe.yılmaz",
    "owner": "mehmet.öztürk",
    "muted_count": 3,
}

# the notices of an incident or a window; the answers to a customer's SMS are counted in tests/test_sms_budget.py
SMS = sorted(n for n in TEMPLATES if n.startswith("sms.") and n.removeprefix("sms.") not in REPLIES)
WITH_TRACKING = {
    "sms.outage",
    "sms.update",
    "sms.restored",
    "sms.degradation",
    "sms.overrun",
    "sms.merged",
    "email.outage",
    "email.update",
    "email.restored",
    "email.degradation",
    "email.overrun",
    "email.merged",
    "noc.opened",
    "noc.reopened",
    "noc.resolved",
    "ticket.create",
    "sms.line_outage",
    "sms.line_update",
    "sms.line_restored",
    "email.line_outage",
    "email.line_update",
    "email.line_restored",
    "email.modem",
}


@pytest.mark.parametrize("language", ["tr", "en"])
def test_no_text_about_one_line_or_one_modem_speaks_of_an_area(language: Language) -> None:
    """A single line's fault and a silent modem are not an outage in the customer's area."""
    area = {"tr": ("Bölgeniz", "bölgesinde", "genel"), "en": ("your area", "outage in")}[language]
    for name in ("line_outage", "line_update", "line_restored", "modem"):
        for channel in ("sms", "email"):
            text = render(f"{channel}.{name}", language, WORST, TEMPLATES)
            assert not any(word in text.subject + text.body for word in area), (channel, name)


@pytest.mark.parametrize("name", SMS)
@pytest.mark.parametrize("language", ["tr", "en"])
def test_every_sms_fits_one_segment_with_worst_case_values(name: str, language: Language) -> None:
    """Was: two segments at most (UCS-2). With the Turkish shift tables, or transliterated for
    Twilio, one (tests/test_sms_budget.py counts them exactly with the inventory's names)."""
    window = format_window(at("2026-12-01 23:00"), at("2026-12-02 04:00"), IST, language)
    values = {**WORST, "area": short(LONG_NAME), "window": window}
    text = render(name, language, values, TEMPLATES).body
    assert segments(text, "gsm7-turkish") == 1, (name, language, len(text), text)
    assert segments(transliterate(text), "gsm7") == 1, (name, language, len(text), text)
    assert sms_segments(text) == 2, "Twilio without transliteration: UCS-2, two segments"
    assert short(LONG_NAME) in text


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_turkish_texts_carry_turkish_letters_and_both_languages_exist(name: str) -> None:
    tr, en = render(name, "tr", WORST, TEMPLATES), render(name, "en", WORST, TEMPLATES)
    assert TURKISH_LETTERS & set(TEMPLATES[name]["tr"].subject + TEMPLATES[name]["tr"].body), name
    assert tr != en


@pytest.mark.parametrize("name", sorted(WITH_TRACKING))
@pytest.mark.parametrize("language", ["tr", "en"])
def test_incident_texts_quote_the_tracking_number(name: str, language: Language) -> None:
    text = render(name, language, WORST, TEMPLATES)
    assert LONGEST_TRACKING in text.subject + text.body


def test_a_missing_value_names_the_template() -> None:
    values = {k: v for k, v in WORST.items() if k != "tracking"}
    with pytest.raises(TemplateError) as e:
        render("sms.outage", "tr", values, TEMPLATES)
    assert e.value.name == "sms.outage"
    assert "{tracking}" in str(e.value)


def test_an_unknown_template_names_itself() -> None:
    with pytest.raises(TemplateError, match="sms.nonesuch"):
        render("sms.nonesuch", "tr", WORST, TEMPLATES)


def test_rendered_outage_reads_as_expected() -> None:
    text = render("sms.outage", "tr", {"area": "Şişli Santrali", "tracking": "ARZ-2026-000123"}, TEMPLATES).body
    assert text == "Bölgenizde (Şişli Santrali) internet arızası var, ekiplerimiz çalışıyor. Takip no: ARZ-2026-000123"
    assert len(text) == 98 and sms_segments(text) == 2  # Twilio: UCS-2, 98 characters > 70
    assert cost(text, "gsm7-turkish") == Cost(1, 98, "gsm7+turkish-locking-shift", 155)  # every letter one septet
    assert (
        transliterate(text)
        == "Bölgenizde (Sisli Santrali) internet arizasi var, ekiplerimiz calisiyor. Takip no: ARZ-2026-000123"
    )
    assert cost(transliterate(text), "gsm7") == Cost(1, 98, "gsm7", 160)


@pytest.mark.parametrize(
    ("start", "end", "language", "expected"),
    [
        ("2026-12-01 01:00", "2026-12-01 04:00", "tr", "01.12.2026 01:00-04:00"),
        ("2026-11-30 23:00", "2026-12-01 02:30", "tr", "30.11.2026 23:00 - 01.12.2026 02:30"),
        ("2026-12-01 01:00", "2026-12-01 04:00", "en", "1 Dec 2026 01:00-04:00"),
    ],
)
def test_maintenance_window_in_local_time(start: str, end: str, language: Language, expected: str) -> None:
    assert format_window(at(start), at(end), IST, language) == expected


def test_times_are_shown_in_istanbul_time() -> None:
    assert format_time(at("2026-03-05 09:07"), IST, "tr") == "05.03.2026 09:07"
    assert format_duration(2 * 3600 + 5 * 60, "tr") == "2 sa 5 dk"
    assert format_duration(59 * 60, "en") == "59 min"


def test_short_cuts_long_names_at_a_word_and_without_a_mark() -> None:
    """Was: cut mid-word and marked with "…", which is not GSM-7 and made every SMS UCS-2."""
    assert short("Şişli Santrali") == "Şişli Santrali"
    assert short("Kurumsal Hat - Nişantaşı Eczanesi") == "Kurumsal Hat - Nişantaşı"
    assert short("İstanbul Anadolu Yakası Bölge Müdürlüğü") == "İstanbul Anadolu Yakası"
    assert short("Büyükçekmece Güzelyurt - Şubesi") == "Büyükçekmece Güzelyurt"  # no dangling dash
    assert short(LONG_NAME) == LONG_NAME[:SMS_NAME_MAX]  # one word longer than the limit: cut inside it
    assert all(len(short(n)) <= SMS_NAME_MAX for n in (LONG_NAME, "a " * 40, "x" * 25 + " y"))


def test_phone_masked_in_ticket_lists() -> None:
    assert mask_phone("+905321234567") == "+90532***4567"
    assert mask_phone(None) == "-"
    entries = [(f"s{i:04d}", "Ad", "+905321234567") for i in range(205)]
    listed = subscriber_list(entries, "tr")
    assert listed.count("\n") == 200 and listed.endswith("... ve 5 abone daha")
    assert "1234567" not in listed
