"""Subscriber contact details as operators type them, turned into the one form the notifiers use.

Pure functions; each raises ValueError with a reason a helpdesk clerk can act on.
"""

from __future__ import annotations

import re

_SEPARATORS = str.maketrans("", "", " -.()/\t")
_TURKISH_PREFIXES = "23458"  # geographic 2xx-4xx, mobile 5xx, non-geographic 8xx (444 is 4xx)
_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def normalize_phone(text: str) -> str:
    """Return `text` as E.164 ("+905321234567").

    Turkish numbers may be written the usual ways (0532 123 45 67, 5321234567, 90532...,
    +90 (532) 123-45-67, 0090...); other countries need a leading + or 00.
    """
    digits = text.strip().translate(_SEPARATORS)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    international = digits.startswith("+")
    if international:
        digits = digits[1:]
    if not digits:
        raise ValueError("is empty")
    if not digits.isascii() or not digits.isdigit():
        raise ValueError("only digits, spaces, dashes, dots, parentheses and a leading + are allowed")
    if international or (len(digits) == 12 and digits.startswith("90")):
        if digits.startswith("90"):
            return "+90" + _turkish_national(digits[2:])
        if digits.startswith("0"):
            raise ValueError("a country code never starts with 0")
        if not 8 <= len(digits) <= 15:
            raise ValueError(f"an international number has 8 to 15 digits, not {len(digits)}")
        return "+" + digits
    if digits.startswith("0"):
        if len(digits) != 11:
            raise ValueError(f"a Turkish number starting with 0 has 11 digits, not {len(digits)}")
        digits = digits[1:]
    return "+90" + _turkish_national(digits)


def _turkish_national(digits: str) -> str:
    if len(digits) != 10:
        raise ValueError(f"a Turkish number has 10 digits after 0 or +90, not {len(digits)}")
    if digits[0] not in _TURKISH_PREFIXES:
        raise ValueError(f"no Turkish area or mobile code starts with {digits[0]}")
    return digits


def normalize_email(text: str) -> str:
    """Return `text` stripped, with the domain in lower case, if it looks deliverable.

    Deliberately simple: one @, a dot-atom local part, a domain of valid labels ending in a
    letters-only top-level domain. Quoted local parts and IP-literal domains are refused.
    """
    address = text.strip()
    if _EMAIL.fullmatch(address) is None:
        raise ValueError("expected an address like name@example.com")
    local, domain = address.rsplit("@", 1)
    return f"{local}@{domain.lower()}"
