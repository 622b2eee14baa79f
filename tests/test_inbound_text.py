"""Reading a customer's SMS (notices/inbound.py): keywords in Turkish and English whatever the
case, the Turkish dotted and dotless i or other accents, and what each answer may say."""

from __future__ import annotations

import pytest

from monitord.config.templates import builtin_templates
from monitord.model import Line
from notices.inbound import Command, Facts, Told, answer, fold, read
from notices.plan import PlanSettings

SETTINGS = PlanSettings(templates=builtin_templates())
PHONE = "+905321112233"
TOLD = Told("ARZ-2026-000123", {"tr": "Saha ekibinde", "en": "With the field team"})


@pytest.mark.parametrize(
    ("text", "kind", "language"),
    [
        ("DURUM", "status", "tr"),
        ("durum", "status", "tr"),
        ("Durum?", "status", "tr"),
        ("DÜRÜM", "status", "tr"),  # a slip of the ü, or a keyboard that adds it
        ("status", "status", "en"),
        ("İPTAL", "opt_out", "tr"),  # dotted capital I
        ("iptal", "opt_out", "tr"),
        ("ıptal", "opt_out", "tr"),  # dotless small i
        ("İptal.", "opt_out", "tr"),
        ("IPTAL", "opt_out", "tr"),
        ("  Stop  ", "opt_out", "en"),
        ("unsubscribe", "opt_out", "en"),
        ("BAŞLAT", "opt_in", "tr"),
        ("başlat", "opt_in", "tr"),
        ("Baslat", "opt_in", "tr"),
        ("start", "opt_in", "en"),
        ("merhaba", "unknown", None),
        ("", "unknown", None),
        ("stopping by", "unknown", None),  # a keyword is a whole word
        ("\x00\u202e", "unknown", None),
    ],
)
def test_keywords_whatever_the_case_and_the_letters(text: str, kind: str, language: str | None) -> None:
    assert (read(text).kind, read(text).language) == (kind, language)


def test_the_tracking_number_after_durum_is_read_as_typed() -> None:
    assert read("durum arz-2026-000123 lütfen") == Command("status", "tr", "ARZ-2026-000123")
    assert read("STATUS: ARZ-2026-000123").argument == "ARZ-2026-000123"
    assert read("durum " + "9" * 10_000).name == "status " + "9" * 40  # what is stored is bounded
    assert fold("İıIiŞşĞğÇçÖöÜü") == "IIIISSGGCCOOUU"


def test_a_known_phone_is_answered_in_its_lines_language() -> None:
    line = Line("L1", "Ayşe", "dslam-1", PHONE, language="en")
    reply = answer(read("DURUM"), Facts("SM1", PHONE, 0.0, [line], open=[TOLD]), SETTINGS)
    [(item, not_before)] = reply.replies
    assert item.body == "Ref ARZ-2026-000123: With the field team. Thank you for asking."
    assert (item.key, item.action, item.recipient, item.incident, not_before) == (
        "sms-in/SM1/ARZ-2026-000123",
        "reply",
        PHONE,
        None,
        None,
    )


def test_replies_are_transliterated_for_a_gateway_without_the_turkish_tables() -> None:
    settings = PlanSettings(templates=builtin_templates(), sms_transliterate=True)
    [(item, _)] = answer(read("iptal"), Facts("SM1", PHONE, 0.0), settings).replies
    assert item.body == "Artik ariza SMS'i almayacaksiniz. Yeniden almak icin BASLAT yazin."


def test_help_is_keyed_by_the_local_day() -> None:
    evening, night = 1_796_403_600.0, 1_796_403_600.0 + 4 * 3600  # 2026-12-04 20:00 and 24:00 in Istanbul
    keys = [answer(read("?"), Facts(f"SM{n}", PHONE, at), SETTINGS).replies[0][0].key for n, at in enumerate((evening, night))]
    assert keys == [f"sms-help/{PHONE}/2026-12-04", f"sms-help/{PHONE}/2026-12-05"]


def test_opting_out_and_in_change_the_senders_choice_only() -> None:
    assert answer(read("STOP"), Facts("SM1", PHONE, 0.0), SETTINGS).opted_out is True
    assert answer(read("START"), Facts("SM1", PHONE, 0.0), SETTINGS).opted_out is False
    assert answer(read("DURUM"), Facts("SM1", PHONE, 0.0), SETTINGS).opted_out is None


def test_a_number_with_odd_characters_is_kept_whole_to_be_refused() -> None:
    assert read("durum ARZ-2026-000123<script>").argument == "ARZ-2026-000123<SCRIPT>"
    assert read("DURUM:ARZ-2026-000123.").argument == "ARZ-2026-000123"
