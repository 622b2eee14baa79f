"""Every customer SMS, in every language, counted exactly at its longest with the real inventories.

The names are those of lab/isp.py and config/example.yaml (`inventory_names`): the longest area
is "Yenimahalle Santrali", the ones with most Turkish letters "Karşıyaka Santrali" and
"Kağıthane Santrali"; tracking numbers are the longest the ARZ prefix gives. Before this change
every one of these texts cost two segments (bench/sms_segments.py prints both).
"""

from __future__ import annotations

import math
from zoneinfo import ZoneInfo

import pytest

from lab.isp import inventory_names
from monitord.config.templates import builtin_templates
from monitord.model import Language
from monitord.stages import DEFAULT_STAGES
from notices.segments import DEFAULT_ALPHABET, TURKISH_LOCKING
from notices.sms_text import sms_fields, worst_cost, worst_values
from notices.templates import FIELDS, REPLIES, SMS_NAME_MAX, render

TEXTS = builtin_templates()
SMS = sorted(name for name in FIELDS if name.startswith("sms."))
NOTICES = sorted(name for name in SMS if name.removeprefix("sms.") not in REPLIES)  # the replies are short: one UCS-2 segment
AREAS, NAMES = inventory_names()
IST = ZoneInfo("Europe/Istanbul")


def candidates(language: Language) -> list[dict[str, object]]:
    return worst_values(AREAS, NAMES, "ARZ", IST, language, [s.name(language) for s in DEFAULT_STAGES])


def test_the_candidates_are_the_inventorys_costliest_names() -> None:
    areas = {str(v["area"]) for v in candidates("tr")}
    assert max(AREAS, key=len) == "Yenimahalle Santrali" and "Yenimahalle Santrali" in areas
    assert {"Karşıyaka Santrali", "Kağıthane Santrali"} <= areas
    assert all(len(a) <= SMS_NAME_MAX for a in areas)
    assert {v["tracking"] for v in candidates("en")} == {"ARZ-2026-999999"}


@pytest.mark.parametrize("name", SMS)
@pytest.mark.parametrize("language", ["tr", "en"])
def test_one_segment_with_the_turkish_tables(name: str, language: Language) -> None:
    """Every character is in the Turkish locking shift table, so one septet each: the count is the
    length, and one segment holds 155 (a 3-octet shift element in the header); a text in the
    default alphabet alone (English with "Yenimahalle Santrali") needs no header: 160."""
    worst = worst_cost(name, language, TEXTS, candidates(language), "gsm7-turkish", False)
    assert set(worst.text) <= TURKISH_LOCKING
    plain = set(worst.text) <= DEFAULT_ALPHABET
    expected = (1, 160, "gsm7") if plain else (1, 155, "gsm7+turkish-locking-shift")
    assert worst.cost.units == len(worst.text) <= expected[1]
    assert (worst.cost.segments, worst.cost.per_segment, worst.cost.scheme) == expected
    assert plain == (language == "en")  # every Turkish text has Turkish letters


@pytest.mark.parametrize("name", SMS)
@pytest.mark.parametrize("language", ["tr", "en"])
def test_one_segment_transliterated_for_twilio(name: str, language: Language) -> None:
    worst = worst_cost(name, language, TEXTS, candidates(language), "gsm7", True)
    assert set(worst.text) <= DEFAULT_ALPHABET and not set("şğıİŞĞç") & set(worst.text)
    assert worst.cost.units == len(worst.text) <= 160
    assert (worst.cost.segments, worst.cost.scheme) == (1, "gsm7")


@pytest.mark.parametrize("name", NOTICES)
@pytest.mark.parametrize("language", ["tr", "en"])
def test_two_segments_in_ucs2_as_before(name: str, language: Language) -> None:
    """Twilio without transliteration: a Turkish letter (in the text or the area) means UCS-2."""
    worst = worst_cost(name, language, TEXTS, candidates(language), "gsm7", False)
    assert worst.cost.scheme == "ucs2" and worst.cost.units == len(worst.text)
    assert worst.cost.segments == math.ceil(len(worst.text) / 67) == 2


def test_an_ascii_area_keeps_english_texts_in_one_plain_gsm7_segment() -> None:
    text = render("sms.outage", "en", sms_fields({"area": "Ankara", "tracking": "ARZ-2026-000123"}), TEXTS).body
    assert worst_cost("sms.outage", "en", TEXTS, [{"area": "Ankara", "tracking": "ARZ-2026-000123"}], "gsm7", False).text == text
    assert worst_cost("sms.outage", "en", TEXTS, [{"area": "Ankara", "tracking": "X"}], "gsm7", False).cost.segments == 1


@pytest.mark.parametrize("name", sorted(set(SMS) - set(NOTICES)))
@pytest.mark.parametrize("language", ["tr", "en"])
def test_replies_in_ucs2_cost_what_their_length_says(name: str, language: Language) -> None:
    """Answers to a customer's SMS: one segment with the Turkish tables or transliterated (above);
    through Twilio untransliterated, a Turkish reply is UCS-2: one segment up to 70 characters."""
    worst = worst_cost(name, language, TEXTS, candidates(language), "gsm7", False)
    if language == "tr":
        expected = 1 if len(worst.text) <= 70 else math.ceil(len(worst.text) / 67)
        assert (worst.cost.scheme, worst.cost.segments) == ("ucs2", expected) and expected <= 2
    else:  # no Turkish letter, and no area or name that could bring one
        assert (worst.cost.scheme, worst.cost.segments) == ("gsm7", 1)
