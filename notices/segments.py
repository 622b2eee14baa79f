"""What an SMS costs: exact segment counts for GSM-7 (with the Turkish shift tables) and UCS-2.

An ISP pays per segment, so a text that tips into a second segment doubles the bill for a
regional outage. The counts follow 3GPP TS 23.038 (alphabets) and TS 23.040 (user data header):

* A segment carries 140 octets of user data: 160 GSM-7 septets or 70 UCS-2 code units.
* A user data header (UDH) takes `1 + its elements` octets, and GSM-7 text after it starts on a
  septet boundary, so it costs ceil(octets * 8 / 7) septets. Concatenation (8-bit reference)
  is a 5-octet element; the Turkish national language single shift (IEI 0x24) and locking
  shift (IEI 0x25) are 3 octets each. Hence, in septets per segment:

      alone / concatenated:   no shift 160 / 153   one shift 155 / 149   both shifts 152 / 146
      UCS-2 (code units):     70 / 67

* A character never straddles two segments: an escaped character (two septets) or a surrogate
  pair (two UCS-2 units) moves whole to the next one, as handsets and gateways split them.

Encodings, as a channel declares what its gateway does:

* `gsm7`: the default alphabet and its extension table when every character has one, else
  UCS-2 (what Twilio does; ş ğ ı İ Ş Ğ ç then force UCS-2).
* `gsm7-turkish`: as `gsm7`, and also the Turkish single shift table (ş ğ ı İ Ş Ğ ç cost two
  septets each), the Turkish locking shift table (one septet each), or both; the cheapest
  representation is counted. For gateways that accept the Turkish tables.
* `ucs2`: always UCS-2.

`transliterate` writes the Turkish letters the default alphabet lacks in plain Latin (ş -> s),
for a gateway without the Turkish tables: ç ö ü Ç Ö Ü are in the default alphabet and stay.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

Encoding = Literal["gsm7", "gsm7-turkish", "ucs2"]
ENCODINGS: tuple[Encoding, ...] = get_args(Encoding)

SEGMENT_OCTETS = 140
CONCAT_IE_OCTETS = 5  # IEI 0x00, length 3: reference, count, sequence number
SHIFT_IE_OCTETS = 3  # IEI 0x24 (single shift) or 0x25 (locking shift), length 1, language 0x01 (Turkish)

DEFAULT_ALPHABET = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""TS 23.038 6.2.1: one septet each (0x1B, the escape, is not a character)."""
DEFAULT_EXTENSION = frozenset("\f^{}\\[~]|€")
"""TS 23.038 6.2.1.1: two septets each (escape + code)."""
TURKISH_LOCKING = frozenset(
    "@£$¥€éùıòÇ\nĞğ\rÅåΔ_ΦΓΛΩΠΨΣΘΞŞşßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "İABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§çabcdefghijklmnopqrstuvwxyzäöñüà"
)
"""TS 23.038 A.3.1: the Turkish locking shift table replaces the default alphabet (no è ì Ø ø
Æ æ ¡ ¿; adds ı Ğ ğ Ş ş İ ç and €)."""
TURKISH_SINGLE_SHIFT = DEFAULT_EXTENSION | frozenset("ĞİŞçğış")
"""TS 23.038 A.2.1: the default extension table plus Ğ İ Ş ç ğ ı ş, two septets each."""

TRANSLITERATION = str.maketrans({"ş": "s", "Ş": "S", "ğ": "g", "Ğ": "G", "ı": "i", "İ": "I", "ç": "c"})


@dataclass(frozen=True, slots=True)
class Scheme:
    """One way to write a text: which characters cost one unit, which two, and the header it needs."""

    name: str
    single: frozenset[str]
    double: frozenset[str]
    shift_elements: int  # national language shift elements in the UDH (0, 1 or 2)


DEFAULT = Scheme("gsm7", DEFAULT_ALPHABET, DEFAULT_EXTENSION, 0)
TURKISH_SCHEMES = (
    DEFAULT,
    Scheme("gsm7+turkish-single-shift", DEFAULT_ALPHABET, TURKISH_SINGLE_SHIFT, 1),
    Scheme("gsm7+turkish-locking-shift", TURKISH_LOCKING, DEFAULT_EXTENSION, 1),
    Scheme("gsm7+turkish-locking-and-single-shift", TURKISH_LOCKING, TURKISH_SINGLE_SHIFT, 2),
)


@dataclass(frozen=True, slots=True)
class Cost:
    segments: int
    units: int  # septets (GSM-7) or UCS-2 code units, without headers
    scheme: str  # "gsm7", "gsm7+turkish-…-shift" or "ucs2"
    per_segment: int  # units one segment holds in this scheme (the single-segment capacity when segments == 1)


def septets_per_segment(shift_elements: int, concatenated: bool) -> int:
    """GSM-7 septets left in one segment after its UDH (see the module docstring)."""
    octets = shift_elements * SHIFT_IE_OCTETS + (CONCAT_IE_OCTETS if concatenated else 0)
    header = 0 if octets == 0 else 1 + octets
    return SEGMENT_OCTETS * 8 // 7 - math.ceil(header * 8 / 7)


def _split(costs: list[int], single: int, multi: int) -> tuple[int, int]:
    """(segments, capacity of each): one segment if it all fits, else whole characters per part."""
    if sum(costs) <= single:
        return 1, single
    segments, used = 1, 0
    for cost in costs:
        if used + cost > multi:
            segments, used = segments + 1, 0
        used += cost
    return segments, multi


def _gsm(text: str, scheme: Scheme) -> Cost | None:
    costs: list[int] = []
    for c in text:
        if c in scheme.single:
            costs.append(1)
        elif c in scheme.double:
            costs.append(2)
        else:
            return None
    single, multi = septets_per_segment(scheme.shift_elements, False), septets_per_segment(scheme.shift_elements, True)
    segments, per = _split(costs, single, multi)
    return Cost(segments, sum(costs), scheme.name, per)


def _ucs2(text: str) -> Cost:
    costs = [2 if ord(c) > 0xFFFF else 1 for c in text]
    segments, per = _split(costs, SEGMENT_OCTETS // 2, (SEGMENT_OCTETS - 1 - CONCAT_IE_OCTETS) // 2)
    return Cost(segments, sum(costs), "ucs2", per)


def cost(text: str, encoding: Encoding) -> Cost:
    """The cheapest way `encoding` allows to send `text` (fewest segments, then fewest units)."""
    if encoding == "ucs2":
        return _ucs2(text)
    schemes = TURKISH_SCHEMES if encoding == "gsm7-turkish" else (DEFAULT,)
    found = [c for c in (_gsm(text, s) for s in schemes) if c is not None]
    return min(found, key=lambda c: (c.segments, c.units)) if found else _ucs2(text)


def segments(text: str, encoding: Encoding = "gsm7") -> int:
    return cost(text, encoding).segments


def transliterate(text: str) -> str:
    """Turkish letters outside the GSM-7 default alphabet in plain Latin: "Şişli" -> "Sisli"."""
    return text.translate(TRANSLITERATION)
