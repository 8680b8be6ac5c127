"""National volunteer numbers and registration rules."""
from datetime import date

import pytest

from app.models import ReviewStatus
from app.services.errors import ValidationFailed
from app.services.idcards import mod11_2
from app.services.regions import get_region
from app.services.volunteers import allocate_volunteer_no, approve_volunteer, register_volunteer


def test_allocate_volunteer_no__format_sequence_and_check(app):
    with app.app_context():
        first = allocate_volunteer_no("65", 2031)
        second = allocate_volunteer_no("65", 2031)
        other = allocate_volunteer_no("41", 2031)
    assert first == "65" + "2031" + "00000001" + mod11_2("65203100000001")
    assert len(first) == 15 and second[6:14] == "00000002"
    assert other[6:14] == "00000001"


def _id(body17):
    return body17 + mod11_2(body17)


def test_register_and_approve__numbered_by_home_province_never_from_id(app):
    with app.test_request_context():
        region = get_region("410105")
        v = register_volunteer(real_name="测试", id_number=_id("11010119900101123"),
                               email="t@example.cn", region=region)
        assert v.status == ReviewStatus.PENDING and v.volunteer_no is None
        approve_volunteer(v, on=date(2026, 5, 1))
        assert v.volunteer_no.startswith("412026")  # Henan home, Beijing ID
        assert v.id_number_masked == "1101**********" + _id("11010119900101123")[-4:]


def test_register__duplicate_id_is_refused(app):
    with app.test_request_context():
        region = get_region("410105")
        number = _id("41010519850101555")
        register_volunteer(real_name="甲", id_number=number, email="a@example.cn", region=region)
        with pytest.raises(ValidationFailed) as err:
            register_volunteer(real_name="乙", id_number=number.lower(), email="b@example.cn", region=region)
        assert "已" in str(err.value)


def test_register__minor_without_guardian_is_refused(app):
    year = date.today().year - 15
    with app.test_request_context(), pytest.raises(ValidationFailed) as err:
        register_volunteer(real_name="小明", id_number=_id(f"410202{year}0101123"),
                           email="m@example.cn", region=get_region("410202"))
    assert "监护人" in str(err.value)
