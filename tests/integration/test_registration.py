"""注册志愿者: the public registration page, resubmission after rejection, the region
picker and POST /api/v1/volunteer/ — all through the same service rules."""
from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import func, select, text

from app.extensions import db
from app.models import Volunteer
from app.security import pii
from app.services.idcards import mod11_2
from tests.conftest import login

PASSWORD = "Spring2026abc"


def resident_id(address: str = "410202", birth: str = "19900101", order: str = "123") -> str:
    """A valid GB 11643 number (odd order code: male)."""
    body = address + birth + order
    return body + mod11_2(body)


def years_ago(years: int, days: int = 0) -> str:
    today = date.today()
    born = date(today.year - years, today.month, 28 if (today.month, today.day) == (2, 29) else today.day)
    return born.fromordinal(born.toordinal() + days).strftime("%Y%m%d")


def form(**overrides) -> dict:
    data = dict(username="newvol", password=PASSWORD, password_confirm=PASSWORD, real_name="陈新民",
                id_type="resident", id_number=resident_id(), email="newvol@example.cn",
                mobile="13912345678", region_code="410202001001", service_categories=["elderly", "civility"],
                skills="急救", political_status="群众", education="本科")
    data.update(overrides)
    return data


GUARDIAN = dict(guardian_name="陈父", guardian_relation="父亲", guardian_phone="13700001111", guardian_consent="y")


def counts(app) -> tuple[int, int]:
    with app.app_context():
        user_model = app.appbuilder.sm.user_model
        return (db.session.scalar(select(func.count()).select_from(user_model)),
                db.session.scalar(select(func.count()).select_from(Volunteer)))


def field_errors(resp) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, message in re.findall(r'class="help-block field-error" data-field="(\w+)">([^<]*)<',
                                    resp.get_data(as_text=True)):
        found.setdefault(name, []).append(message)
    return found


def volunteer_of(app, username) -> Volunteer | None:
    with app.app_context():
        user = app.appbuilder.sm.find_user(username=username)
        return user and db.session.scalar(select(Volunteer).where(Volunteer.user_id == user.id))


# --- The page ---


def test_login_page__links_to_register_as_volunteer(client):
    html = client.get("/login/").get_data(as_text=True)
    assert "注册志愿者" in html and 'href="/register/"' in html


def test_register_page__anonymous_gets_the_form_with_the_username_warning(client):
    resp = client.get("/register/")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "用户名一旦申请成功，不可修改" in html and 'name="id_number"' in html
    assert "js/registration.js" in html and "<script>" not in html  # no inline script (CSP)


def test_register__anonymous_creates_user_and_pending_volunteer_with_encrypted_pii(app, client):
    before = counts(app)
    number = resident_id("410202", "19900101", "123")
    resp = client.post("/register/", data=form(id_number=number))
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login/")
    assert "3至5个工作日" in client.get("/login/").get_data(as_text=True)
    assert counts(app) == (before[0] + 1, before[1] + 1)
    with app.app_context():
        user = app.appbuilder.sm.find_user(username="newvol")
        assert [r.name for r in user.roles] == ["Volunteer"]
        volunteer = db.session.scalar(select(Volunteer).where(Volunteer.user_id == user.id))
        assert volunteer.status == "pending" and volunteer.submitted_on is not None
        assert (volunteer.birth_date, volunteer.gender) == (date(1990, 1, 1), "M")
        assert volunteer.region_path == "410000/410200/410202/410202001/410202001001/"
        assert volunteer.service_categories == "elderly,civility"
        assert pii.decrypt(volunteer.id_number_enc) == number
        raw = db.session.execute(text("SELECT * FROM volunteer WHERE id = :id"), {"id": volunteer.id}).one()
        user_raw = db.session.execute(text("SELECT * FROM ab_user WHERE id = :id"), {"id": user.id}).one()
    for value in (*raw, *user_raw):
        blob = bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode()
        for secret in (number, "13912345678", number[6:14] + number[14:]):
            assert secret.encode() not in blob, f"plaintext {secret} stored"


def test_register__new_account_can_log_in(app, client):
    assert client.post("/register/", data=form()).status_code == 302
    login(client, "newvol", PASSWORD)
    assert "等待审核" in client.get("/register/").get_data(as_text=True)


@pytest.mark.parametrize("number, message", [
    (resident_id()[:17] + str((int(resident_id()[17]) + 1) % 10 if resident_id()[17] != "X" else 0),
     "身份证号码的校验码错误"),
    (resident_id("410202", "19900230"), "身份证号码中的出生日期不存在"),
    (resident_id("999999", "19900101"), "身份证号码中的地址码无法识别"),
    ("41020219900101", "身份证号码"),
])
def test_register__bad_resident_id_is_refused_naming_the_field_and_saving_nothing(app, client, number, message):
    before = counts(app)
    resp = client.post("/register/", data=form(id_number=number))
    assert resp.status_code == 400
    errors = field_errors(resp)
    assert list(errors) == ["id_number"], errors
    assert message in errors["id_number"][0]
    assert counts(app) == before


def test_register__abolished_address_code_410211_is_accepted(app, client):
    resp = client.post("/register/", data=form(id_number=resident_id("410211", "19800315", "246")))
    assert resp.status_code == 302, field_errors(resp)
    volunteer = volunteer_of(app, "newvol")
    assert (volunteer.birth_date, volunteer.gender) == (date(1980, 3, 15), "F")


def test_register__refused_form_never_echoes_the_password(app, client):
    secret = "Unguessable42word"
    resp = client.post("/register/", data=form(password=secret, password_confirm=secret,
                                               id_number=resident_id("999999")))
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert secret not in html
    assert 'value="陈新民"' in html  # other fields are kept


@pytest.mark.parametrize("overrides, field", [
    (dict(username="1abc"), "username"),
    (dict(username="ab"), "username"),
    (dict(password="short1", password_confirm="short1"), "password"),
    (dict(password="onlyletters", password_confirm="onlyletters"), "password"),
    (dict(password_confirm=PASSWORD + "x"), "password_confirm"),
    (dict(email="not-an-email"), "email"),
    (dict(mobile="1234"), "mobile"),
    (dict(mobile=""), "mobile"),
    (dict(real_name=" "), "real_name"),
    (dict(region_code=""), "region_code"),
    (dict(region_code="410200"), "region_code"),  # a prefecture is not a home
    (dict(service_categories=["nonsense"]), "service_categories"),
])
def test_register__each_bad_field_is_named_in_chinese(app, client, overrides, field):
    before = counts(app)
    resp = client.post("/register/", data=form(**overrides))
    assert resp.status_code == 400
    errors = field_errors(resp)
    assert list(errors) == [field], errors
    assert re.search(r"[\u4e00-\u9fff]", errors[field][0]), errors
    assert counts(app) == before


def test_register__minor_needs_guardian_fields_and_consent(app, client):
    number = resident_id("410202", years_ago(15), "121")
    before = counts(app)
    resp = client.post("/register/", data=form(id_number=number))
    assert resp.status_code == 400
    errors = field_errors(resp)
    assert set(errors) == {"guardian_name", "guardian_relation", "guardian_phone", "guardian_consent"}
    assert all("监护人" in m[0] for m in errors.values())
    assert counts(app) == before
    resp = client.post("/register/", data=form(id_number=number, **{**GUARDIAN, "guardian_consent": ""}))
    assert list(field_errors(resp)) == ["guardian_consent"]

    resp = client.post("/register/", data=form(id_number=number, **GUARDIAN))
    assert resp.status_code == 302, field_errors(resp)
    volunteer = volunteer_of(app, "newvol")
    assert volunteer.guardian_name == "陈父" and volunteer.guardian_consent_on is not None
    assert volunteer.guardian_phone_masked == "137****1111"


def test_register__adult_guardian_fields_are_not_stored(app, client):
    assert client.post("/register/", data=form(**GUARDIAN)).status_code == 302
    volunteer = volunteer_of(app, "newvol")
    assert volunteer.guardian_name is None and volunteer.guardian_phone_enc is None


def test_register__under_eight_is_refused(app, client):
    before = counts(app)
    resp = client.post("/register/", data=form(id_number=resident_id("410202", years_ago(7), "121"), **GUARDIAN))
    assert resp.status_code == 400
    assert "未满 8 周岁不能注册" in field_errors(resp)["id_number"][0]
    assert counts(app) == before


def test_register__minimum_age_comes_from_config(app, client):
    app.config["VOLUNTEER_MIN_AGE"] = 10
    resp = client.post("/register/", data=form(id_number=resident_id("410202", years_ago(9), "121"), **GUARDIAN))
    assert "未满 10 周岁不能注册" in field_errors(resp)["id_number"][0]


def test_register__duplicate_id_is_refused_without_disclosing_the_other_account(app, client):
    with app.app_context():
        user = app.appbuilder.sm.find_user(username="vol_longting")
        other = db.session.scalar(select(Volunteer).where(Volunteer.user_id == user.id))
        number, name = pii.decrypt(other.id_number_enc), other.real_name
    before = counts(app)
    resp = client.post("/register/", data=form(id_number=number.lower()))
    assert resp.status_code == 400
    assert field_errors(resp) == {"id_number": ["该证件号码已注册"]}
    html = resp.get_data(as_text=True)
    assert "vol_longting" not in html and name not in html and other.email not in html
    assert counts(app) == before


@pytest.mark.parametrize("overrides, field, message", [
    (dict(username="VOL_Longting"), "username", "该用户名已被使用"),
    (dict(email="Vol_Longting@Example.cn"), "email", "该电子邮箱已被其他账号使用"),
])
def test_register__username_and_email_are_unique_ignoring_case(app, client, overrides, field, message):
    before = counts(app)
    resp = client.post("/register/", data=form(**overrides))
    assert resp.status_code == 400
    assert message in field_errors(resp)[field][0]
    assert counts(app) == before


def test_register_page__signed_in_officer_is_told_to_log_out(client, login_as):
    login_as("longting_officer")
    resp = client.get("/register/")
    assert resp.status_code == 200
    assert "请先退出" in resp.get_data(as_text=True) and 'name="id_number"' not in resp.get_data(as_text=True)


def test_rejected_registration__is_corrected_and_resubmitted_to_pending(app, client):
    assert client.post("/register/", data=form()).status_code == 302
    with app.app_context():
        volunteer = volunteer_of(app, "newvol")
        volunteer = db.session.get(Volunteer, volunteer.id)
        volunteer.status, volunteer.reject_reason = "rejected", "所填姓名与证件不一致。"
        first_submitted = volunteer.submitted_on
        db.session.commit()
    login(client, "newvol", PASSWORD)
    html = client.get("/register/").get_data(as_text=True)
    assert "所填姓名与证件不一致。" in html and 'value="陈新民"' in html
    assert resident_id() not in html and 'name="password"' not in html  # masked; no account fields

    data = {k: v for k, v in form(real_name="陈欣民").items() if k not in ("username", "password", "password_confirm")}
    data.update(id_number="", mobile="")  # keep the numbers on file
    resp = client.post("/register/", data=data)
    assert resp.status_code == 302, field_errors(resp)
    volunteer = volunteer_of(app, "newvol")
    assert (volunteer.status, volunteer.reject_reason, volunteer.real_name) == ("pending", None, "陈欣民")
    assert volunteer.submitted_on > first_submitted
    with app.app_context():
        assert pii.decrypt(db.session.get(Volunteer, volunteer.id).phone_enc) == "13912345678"
    assert "等待审核" in client.get("/register/").get_data(as_text=True)


def test_rejected_registration__may_correct_the_id_but_not_to_another_persons(app, client):
    assert client.post("/register/", data=form(id_number=resident_id(order="133"))).status_code == 302
    with app.app_context():
        volunteer = db.session.get(Volunteer, volunteer_of(app, "newvol").id)
        volunteer.status = "rejected"
        user = app.appbuilder.sm.find_user(username="vol_longting")
        taken = pii.decrypt(db.session.scalar(select(Volunteer.id_number_enc).where(Volunteer.user_id == user.id)))
        db.session.commit()
    login(client, "newvol", PASSWORD)
    base = {k: v for k, v in form().items() if k not in ("username", "password", "password_confirm")}
    resp = client.post("/register/", data={**base, "id_number": taken})
    assert field_errors(resp) == {"id_number": ["该证件号码已注册"]}
    assert volunteer_of(app, "newvol").status == "rejected"
    corrected = resident_id(order="135")
    assert client.post("/register/", data={**base, "id_number": corrected}).status_code == 302
    volunteer = volunteer_of(app, "newvol")
    assert volunteer.status == "pending"
    with app.app_context():
        assert pii.decrypt(db.session.get(Volunteer, volunteer.id).id_number_enc) == corrected


# --- The region picker ---


def test_region_picker__children_of_longting_are_its_streets(client):
    resp = client.get("/register/regions/410202")
    assert resp.status_code == 200
    rows = resp.get_json()
    assert rows and all(len(r["code"]) == 9 and r["code"].startswith("410202") for r in rows)
    assert "北书店街道" in [r["name"] for r in rows] and set(rows[0]) == {"id", "code", "name"}


def test_region_picker__root_lists_the_provinces(client):
    rows = client.get("/register/regions/root").get_json()
    assert "河南省" in [r["name"] for r in rows]
    assert all(r["code"].endswith("0000") for r in rows)
    assert client.get("/register/regions/abc").status_code == 404


# --- REST: POST /api/v1/volunteer/ ---


def _token(client, username):
    resp = client.post("/api/v1/security/login", json={
        "username": username, "password": "Demo12345!", "provider": "db"})
    return {"Authorization": f"Bearer {resp.get_json()['access_token']}"}


def api_body(**overrides) -> dict:
    body = {k: v for k, v in form().items() if k not in ("password_confirm", "service_categories")}
    body.update(overrides)
    return body


def test_api_register__admin_creates_pending_volunteer_and_user(app, client):
    before = counts(app)
    resp = client.post("/api/v1/volunteer/", json=api_body(), headers=_token(client, "admin"))
    assert resp.status_code == 201, resp.get_json()
    volunteer = volunteer_of(app, "newvol")
    assert resp.get_json()["id"] == volunteer.id and volunteer.status == "pending"
    assert counts(app) == (before[0] + 1, before[1] + 1)


def test_api_register__officer_inside_own_region_creates_a_minor_with_guardian(app, client):
    body = api_body(id_number=resident_id("410202", years_ago(12), "121"), region_code="410202003001",
                    guardian_name="陈母", guardian_relation="母亲", guardian_phone="13600002222",
                    guardian_consent=True)
    resp = client.post("/api/v1/volunteer/", json=body, headers=_token(client, "longting_officer"))
    assert resp.status_code == 201, resp.get_json()
    assert volunteer_of(app, "newvol").guardian_consent_on is not None


def test_api_register__officer_outside_own_region_is_refused_and_nothing_written(app, client):
    before = counts(app)
    resp = client.post("/api/v1/volunteer/", json=api_body(region_code="410203001001"),
                       headers=_token(client, "longting_officer"))
    assert 400 <= resp.status_code < 500
    assert counts(app) == before


@pytest.mark.parametrize("username", ["vol_longting", "longting_corps_admin", "kaifeng_honors"])
def test_api_register__other_roles_are_refused(app, client, username):
    before = counts(app)
    resp = client.post("/api/v1/volunteer/", json=api_body(), headers=_token(client, username))
    assert resp.status_code in (401, 403)
    assert counts(app) == before


def test_api_register__anonymous_is_refused(app, client):
    assert client.post("/api/v1/volunteer/", json=api_body()).status_code == 401


def test_api_register__refusal_names_every_bad_field(app, client):
    before = counts(app)
    body = api_body(id_number=resident_id()[:17] + ("0" if resident_id()[17] != "0" else "1"),
                    email="nope", username="VOL_LONGTING")
    resp = client.post("/api/v1/volunteer/", json=body, headers=_token(client, "admin"))
    assert resp.status_code == 400
    message = resp.get_json()["message"]
    assert set(message) == {"id_number", "email", "username"}
    assert all(isinstance(m, list) and m for m in message.values())
    assert counts(app) == before


def test_api_register__wrong_json_types_are_400(app, client):
    resp = client.post("/api/v1/volunteer/", json=api_body(id_number=410202), headers=_token(client, "admin"))
    assert resp.status_code == 400 and "id_number" in resp.get_json()["message"]


# --- Other ID types ---


def test_register__passport_holder_enters_birth_date_and_gender(app, client):
    resp = client.post("/register/", data=form(id_type="passport", id_number="e12345678",
                                               birth_date="1985-06-01", gender="F"))
    assert resp.status_code == 302, field_errors(resp)
    volunteer = volunteer_of(app, "newvol")
    assert (volunteer.id_type, volunteer.birth_date, volunteer.gender) == ("passport", date(1985, 6, 1), "F")
    assert volunteer.id_number_masked == "E1*****78"


def test_register__passport_without_birth_date_or_gender_is_refused(app, client):
    before = counts(app)
    resp = client.post("/register/", data=form(id_type="passport", id_number="E1", birth_date="1985-02-30"))
    assert set(field_errors(resp)) == {"id_number", "birth_date", "gender"}
    assert counts(app) == before


def test_register__residence_permit_gives_birth_date_and_checks_its_digit(app, client):
    body = "810000" + "19920704" + "224"
    resp = client.post("/register/", data=form(id_type="hmt_permit", id_number=body + "0" if mod11_2(body) != "0"
                                               else body + "1"))
    assert list(field_errors(resp)) == ["id_number"]
    resp = client.post("/register/", data=form(id_type="hmt_permit", id_number=body + mod11_2(body)))
    assert resp.status_code == 302, field_errors(resp)
    volunteer = volunteer_of(app, "newvol")
    assert (volunteer.birth_date, volunteer.gender) == (date(1992, 7, 4), "F")


def test_register__one_address_may_create_only_a_few_accounts_per_hour(app, client):
    app.config["REGISTRATIONS_PER_ADDRESS_PER_HOUR"] = 2
    for n in range(2):
        resp = client.post("/register/", data=form(username=f"batch{n}", email=f"batch{n}@example.cn",
                                                   id_number=resident_id(order=f"{n + 1}23")))
        assert resp.status_code == 302, field_errors(resp)
    before = counts(app)
    resp = client.post("/register/", data=form(username="batch9", email="batch9@example.cn",
                                               id_number=resident_id(order="923")))
    assert resp.status_code == 429
    assert counts(app) == before
