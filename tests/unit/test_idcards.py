"""GB 11643 resident IDs and the MOD 11-2 check character."""
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.services.errors import ValidationFailed
from app.services.idcards import age_on, mod11_2, parse_resident_id


def _id(body17: str) -> str:
    return body17 + mod11_2(body17)


@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_mod11_2__matches_gb11643_weights(body):
    weights = [pow(2, 17 - i, 11) for i in range(17)]
    expected = (12 - sum(int(c) * w for c, w in zip(body, weights)) % 11) % 11
    assert mod11_2(body) == ("X" if expected == 10 else str(expected))


def test_mod11_2__known_published_example():
    # GB 11643-1999 appendix example: 11010519491231002X
    assert mod11_2("11010519491231002") == "X"


def test_parse_resident_id__gives_birth_date_and_gender(app):
    with app.test_request_context():
        male = parse_resident_id(_id("41020219900307123"))  # 17th digit 3: odd
        female = parse_resident_id(_id("41020219900307124"))
    assert male.birth_date == date(1990, 3, 7) and male.gender == "M"
    assert female.gender == "F"


def test_parse_resident_id__abolished_kaifeng_codes_are_accepted(app):
    with app.test_request_context():
        for code in ("410211", "410224"):  # 金明区, 开封县
            assert parse_resident_id(_id(code + "19650101001")).birth_date.year == 1965


@pytest.mark.parametrize("number, fragment", [
    ("4102021990030712", "17 digits"),
    (_id("41020219900230123"), "birth date"),
    (_id("99999919900307123"), "address code"),
    ("41020219900307123" + ("0" if mod11_2("41020219900307123") != "0" else "1"), "check digit"),
])
def test_parse_resident_id__bad_numbers_are_refused_with_a_reason(app, number, fragment):
    with app.test_request_context("/?_l_=en"), pytest.raises(ValidationFailed) as err:
        parse_resident_id(number)
    assert fragment in str(err.value)


def test_parse_resident_id__messages_are_chinese_by_default(app):
    with app.test_request_context(), pytest.raises(ValidationFailed) as err:
        parse_resident_id("123")
    assert "身份证" in str(err.value) or "证件" in str(err.value)


def test_age_on__counts_whole_years():
    assert age_on(date(2010, 6, 1), date(2026, 5, 31)) == 15
    assert age_on(date(2010, 6, 1), date(2026, 6, 1)) == 16


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # the app is only read
@given(order=st.integers(min_value=0, max_value=999),
       birth=st.dates(min_value=date(1930, 1, 1), max_value=date(2015, 12, 31)))
def test_parse_resident_id__only_the_computed_check_character_validates(app, order, birth):
    body = f"410202{birth:%Y%m%d}{order:03d}"
    with app.test_request_context("/?_l_=en"):
        assert parse_resident_id(body + mod11_2(body)).birth_date == birth
        for wrong in set("0123456789X") - {mod11_2(body)}:
            with pytest.raises(ValidationFailed, match="check digit"):
                parse_resident_id(body + wrong)
