"""Subscriber contact details as operators type them, turned into the one form the notifiers use.

Pure functions; each raises ValueError with a reason a helpdesk clerk can act on.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneNumberType

_SEPARATORS = str.maketrans("", "", " -.()/\t")
_TURKISH_PREFIXES = "23458"  # geographic 2xx-4xx, mobile 5xx, non-geographic 8xx (444 is 4xx)
_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def normalize_phone(text: str, region: str = "TR") -> str:
    """Return `text` as E.164 ("+905321234567").

    Turkish numbers may be written the usual ways (0532 123 45 67, 5321234567, 90532...,
    +90 (532) 123-45-67, 0090...); other countries need a leading + or 00, unless `region` (an
    ISO 3166 code) is theirs: then their national forms are read by libphonenumber.
    """
    if region != "TR" and not text.strip().startswith(("+", "00")):
        return _national(text, region)
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


def _national(text: str, region: str) -> str:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as error:
        raise ValueError(str(error).split(") ", 1)[-1]) from None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_NOT_MOBILE = {
    PhoneNumberType.FIXED_LINE: "a landline",
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.TOLL_FREE: "a toll-free number",
    PhoneNumberType.SHARED_COST: "a shared-cost number",
    PhoneNumberType.VOIP: "a VoIP number",
    PhoneNumberType.PERSONAL_NUMBER: "a personal (forwarding) number",
    PhoneNumberType.PAGER: "a pager",
    PhoneNumberType.UAN: "a company number (UAN)",
    PhoneNumberType.VOICEMAIL: "a voicemail number",
}


def sms_unreachable(e164: str) -> str | None:
    """Why an SMS to `e164` cannot arrive (e.g. "a landline"), or None for a mobile number.

    libphonenumber's numbering plans decide; where a plan cannot tell fixed from mobile (US, CA)
    the number counts as mobile."""
    number = phonenumbers.parse(e164)
    kind = phonenumbers.number_type(number)
    if kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        return None
    if kind == PhoneNumberType.UNKNOWN or not phonenumbers.is_valid_number(number):
        return "not in use in its country's numbering plan"
    return _NOT_MOBILE.get(kind, "not a mobile number")


def known_region(code: str) -> bool:
    """Whether libphonenumber has a numbering plan for the ISO 3166 code `code`."""
    return code in phonenumbers.SUPPORTED_REGIONS


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
