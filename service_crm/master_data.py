"""Master-data normalisation: the one place names, emails, phone numbers, country codes and VAT
ids get
their stored form, so "Acme GmbH " and "Acme GmbH", or jo@acme.de and JO@ACME.DE, are the same.

Pure functions (no database): each returns the normalised value or raises ``ValueError`` with
a message for the person who typed it; models' ``clean()`` key it by their field.

>>> normalise_name("  ACME   Kompressoren GmbH ")
'ACME Kompressoren GmbH'
>>> normalise_email(" Jo@ACME.de ")
'jo@acme.de'
>>> normalise_phone("040 1234567", region="DE")
'+49401234567'
>>> normalise_country(" de ")
'DE'
>>> normalise_vat_id("de 136 695 976")
'DE136695976'
"""

from __future__ import annotations

import re

import phonenumbers
from stdnum import vatin
from stdnum.exceptions import ValidationError as NumberError

_SPACES = re.compile(r"\s+")
# ISO 3166-1 alpha-2 codes of the regions libphonenumber knows: every country we could have a
# customer in (it also knows XK, Kosovo's widely used user-assigned code).
COUNTRIES = frozenset(phonenumbers.SUPPORTED_REGIONS)


def normalise_name(value: str) -> str:
    """Trimmed, inner runs of whitespace collapsed to one space."""
    return _SPACES.sub(" ", value).strip()


def normalise_email(value: str) -> str:
    """Trimmed and lower-cased: mail systems treat addresses case-insensitively in practice,
    and one address must not appear twice at an account in two spellings."""
    return value.strip().lower()


def normalise_country(value: str) -> str:
    """An ISO 3166-1 alpha-2 code, upper-cased."""
    code = value.strip().upper()
    if code not in COUNTRIES:
        raise ValueError(f"{value.strip()!r} is not an ISO 3166 country code (e.g. DE, AT, NL).")
    return code


def normalise_phone(value: str, *, region: str) -> str:
    """E.164 (``+49401234567``); a number without ``+`` is read as a number in ``region``.
    Empty stays empty."""
    raw = value.strip()
    if not raw:
        return ""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise ValueError(f"{raw!r} is not a phone number.") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{raw!r} is not a valid phone number"
                         f"{'' if raw.startswith('+') else f' in {region}'}; "
                         "give it with its country code, e.g. +49 40 1234567.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_vat_id(value: str) -> str:
    """A VAT identification number with its country prefix, compact and upper-cased
    (``DE136695976``), its check digits verified by python-stdnum for the countries it knows
    (the EU's, Switzerland's, the UK's and more). Empty stays empty."""
    raw = value.strip()
    if not raw:
        return ""
    try:
        return str(vatin.validate(raw))
    except NumberError:
        raise ValueError(f"{raw!r} is not a valid VAT number; give it with its country "
                         "prefix, e.g. DE136695976.") from None
