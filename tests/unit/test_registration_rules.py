"""Registration rules at the service level: per-field errors and the configurable minimum age."""
from datetime import date

import pytest

from app.services.errors import ValidationFailed
from app.services.idcards import mod11_2
from app.services.regions import get_region
from app.services.volunteers import min_age, register_volunteer


def test_validation_failed__fields_give_the_messages_and_positional_use_still_works():
    err = ValidationFailed(fields={"email": ["坏邮箱"], "id_number": ["坏号码", "重复"], "skills": []})
    assert err.fields == {"email": ["坏邮箱"], "id_number": ["坏号码", "重复"]}
    assert err.messages == ["坏邮箱", "坏号码", "重复"] and err.code == 400
    plain = ValidationFailed("一", "二")
    assert (plain.messages, plain.fields, str(plain)) == (["一", "二"], {}, "一; 二")


def test_min_age__reads_config_with_default_8(app):
    with app.app_context():
        assert min_age() == 8
        app.config["VOLUNTEER_MIN_AGE"] = 12
        assert min_age() == 12


def test_register_volunteer__reports_every_bad_field_at_once(app):
    year = date.today().year - 15
    body = f"410202{year}0101123"
    with app.test_request_context(), pytest.raises(ValidationFailed) as err:
        register_volunteer(real_name="", id_number=body + mod11_2(body), email="x", phone="12",
                           region=get_region("410202"))
    assert set(err.value.fields) == {"real_name", "email", "mobile", "guardian_name", "guardian_relation",
                                     "guardian_phone", "guardian_consent"}
