"""Exact SMS segment counts (notices/segments.py) at every capacity boundary of TS 23.038/23.040."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notices.segments import (
    DEFAULT_ALPHABET,
    DEFAULT_EXTENSION,
    TURKISH_LOCKING,
    TURKISH_SINGLE_SHIFT,
    cost,
    segments,
    septets_per_segment,
    transliterate,
)


@pytest.mark.parametrize(
    ("shifts", "concatenated", "septets"),
    [
        (0, False, 160),  # no header
        (0, True, 153),  # UDHL + concatenation (5 octets) = 6 octets = 7 septets with fill bits
        (1, False, 155),  # UDHL + one shift element (3) = 4 octets = 5 septets
        (1, True, 149),  # 1 + 5 + 3 = 9 octets = 11 septets
        (2, False, 152),  # 1 + 3 + 3 = 7 octets = 8 septets
        (2, True, 146),  # 1 + 5 + 3 + 3 = 12 octets = 14 septets
    ],
)
def test_septets_per_segment_follow_the_user_data_header(shifts: int, concatenated: bool, septets: int) -> None:
    assert septets_per_segment(shifts, concatenated) == septets


def test_the_turkish_tables_hold_the_turkish_letters() -> None:
    turkish = set("şğıİŞĞç")
    assert not turkish & DEFAULT_ALPHABET and not turkish & DEFAULT_EXTENSION
    assert turkish <= TURKISH_LOCKING and turkish <= TURKISH_SINGLE_SHIFT
    assert set("öüÖÜÇ") <= DEFAULT_ALPHABET and set("öüÖÜÇ") <= TURKISH_LOCKING
    assert len(DEFAULT_ALPHABET) == 127 and len(TURKISH_LOCKING) == 127  # 128 codes, 0x1B the escape
    assert not set("èìØøÆæ¡¿") & TURKISH_LOCKING  # what the Turkish locking table gives up


@pytest.mark.parametrize(
    ("text", "count", "units", "scheme"),
    [
        ("a" * 160, 1, 160, "gsm7"),
        ("a" * 161, 2, 161, "gsm7"),
        ("ş" * 155, 1, 155, "gsm7+turkish-locking-shift"),  # one septet each, a 3-octet header
        ("ş" * 156, 2, 156, "gsm7+turkish-locking-shift"),
        ("ş" * 298, 2, 298, "gsm7+turkish-locking-shift"),  # 2 x 149
        ("ş" * 299, 3, 299, "gsm7+turkish-locking-shift"),
        ("è" + "ş" * 76, 1, 153, "gsm7+turkish-single-shift"),  # è is not in the locking table: ş costs 2
        ("è" + "ş" * 77, 1, 155, "gsm7+turkish-single-shift"),
        ("è" + "ş" * 78, 2, 157, "gsm7+turkish-single-shift"),
        ("ş" * 154 + "€", 1, 155, "gsm7+turkish-locking-shift"),  # € is in the Turkish locking table itself
        ("ş" * 153 + "{", 1, 155, "gsm7+turkish-locking-shift"),  # { from the default extension: 2 septets
        ("ş" * 154 + "{", 2, 156, "gsm7+turkish-locking-shift"),  # both shifts would hold only 152
        ("ş" * 71 + "😀", 2, 73, "ucs2"),  # an emoji: UCS-2 whatever the tables
    ],
)
def test_gsm7_turkish_counts_the_cheapest_table(text: str, count: int, units: int, scheme: str) -> None:
    found = cost(text, "gsm7-turkish")
    assert (found.segments, found.units, found.scheme) == (count, units, scheme)


def test_a_single_shifted_letter_never_straddles_two_segments() -> None:
    text = "è" + "ş" * 74 + "a"  # 1 + 148 + 1 = 150 septets: one segment under the single shift
    assert cost(text, "gsm7-turkish").segments == 1
    long = "è" + "a" * 147 + "ş" + "a" * 10  # 147 + 1 + 2 > 149: the escape pair moves whole to part 2
    assert cost(long, "gsm7-turkish").segments == 2 and cost(long, "gsm7-turkish").units == 160


def test_without_the_turkish_tables_a_turkish_letter_means_ucs2() -> None:
    assert cost("ş" * 70, "gsm7").scheme == "ucs2" and segments("ş" * 70, "gsm7") == 1
    assert segments("ş" * 71, "gsm7") == 2
    assert segments("a" * 71, "ucs2") == 2 and segments("a" * 71, "gsm7") == 1


@given(st.text(alphabet=sorted(TURKISH_LOCKING), max_size=1000))
def test_locking_table_text_costs_155_then_149_per_segment(text: str) -> None:
    expected = 1 if len(text) <= 155 else math.ceil(len(text) / 149)
    assert segments(text, "gsm7-turkish") <= expected  # the default table may do better on plain text
    if set(text) & set("ıĞğŞşİç"):
        assert segments(text, "gsm7-turkish") == expected


def test_transliteration_leaves_only_the_default_alphabet() -> None:
    text = "Şişli, Kağıthane, İzmir, Çankaya, Üsküdar, Göztepe: ığüşöç İĞÜŞÖÇ"
    out = transliterate(text)
    assert out == "Sisli, Kagithane, Izmir, Çankaya, Üsküdar, Göztepe: igüsöc IGÜSÖÇ"
    assert set(out) <= DEFAULT_ALPHABET
