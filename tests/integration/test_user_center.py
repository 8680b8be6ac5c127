"""用户中心 (User Center): 我的资料 (own profile, own full-ID view, editable fields) and
志愿者证 (the electronic volunteer card with its public QR verification page)."""
import json
import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Volunteer
from app.security import pii
from app.services import volunteers

PASSWORD = "Demo12345!"


def _volunteer(app, username):
    from flask_appbuilder.security.sqla.models import User

    with app.app_context():
        v = db.session.scalar(select(Volunteer).join(User, User.id == Volunteer.user_id)
                              .where(User.username == username))
        db.session.expunge(v)
        return v


def _plain(app, volunteer):
    with app.app_context():
        row = db.session.get(Volunteer, volunteer.id)
        return pii.decrypt(row.id_number_enc), pii.decrypt(row.phone_enc)


def _update(app, volunteer_id, **values):
    with app.app_context():
        row = db.session.get(Volunteer, volunteer_id)
        for key, value in values.items():
            setattr(row, key, value)
        db.session.commit()


def _events(app, volunteer_id, action=None):
    with app.app_context():
        query = select(AuditEvent).where(AuditEvent.object_type == "volunteer",
                                         AuditEvent.object_id == volunteer_id)
        if action:
            query = query.where(AuditEvent.action == action)
        rows = db.session.scalars(query.order_by(AuditEvent.id)).all()
        db.session.expunge_all()
        return rows


def _form(volunteer, **changes):
    data = {"email": volunteer.email, "phone": "", "skills": volunteer.skills or "",
            "political_status": volunteer.political_status or "", "education": volunteer.education or "",
            "service_categories": [c for c in (volunteer.service_categories or "").split(",") if c]}
    data.update(changes)
    return data


# --- 我的资料 ---


def test_profile__volunteer_sees_masked_id_and_phone(app, client, login_as):
    v = _volunteer(app, "vol_longting")
    full_id, full_phone = _plain(app, v)
    login_as("vol_longting")
    resp = client.get("/my/profile")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert v.id_number_masked in html and v.phone_masked in html
    assert full_id not in html and full_phone not in html
    assert "显示完整证件号" in html and "已通过" in html and "李明华" in html


def test_reveal_own_pii__volunteer_sees_full_id_and_event_recorded(app, client, login_as):
    v = _volunteer(app, "vol_longting")
    full_id, full_phone = _plain(app, v)
    login_as("vol_longting")
    resp = client.post("/my/profile/pii")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert full_id in html and full_phone in html
    [event] = _events(app, v.id, "view_pii")
    assert event.actor_name == "vol_longting"
    assert full_id not in (event.after_json or "")


def test_reveal_own_pii__get_is_not_allowed(app, client, login_as):
    login_as("vol_longting")
    assert client.get("/my/profile/pii").status_code == 405


def test_edit_profile__volunteer_changes_email_and_mobile_audited_masked(app, client, login_as):
    v = _volunteer(app, "vol_longting")
    before = len(_events(app, v.id))
    login_as("vol_longting")
    resp = client.post("/my/profile", data=_form(v, email="li.minghua@example.cn", phone="139 1234 5678",
                                                  skills="急救,摄影", service_categories=["elderly", "civility"]))
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    with app.app_context():
        row = db.session.get(Volunteer, v.id)
        assert row.email == "li.minghua@example.cn" and row.user.email == "li.minghua@example.cn"
        assert pii.decrypt(row.phone_enc) == "13912345678" and row.phone_masked == "139****5678"
        assert row.service_categories == "elderly,civility" and row.skills == "急救,摄影"
    updates = [e for e in _events(app, v.id)[before:] if e.action == "update"]
    assert updates, "the change must be audited"
    text = " ".join((e.before_json or "") + (e.after_json or "") for e in updates)
    assert "139****5678" in text and "13912345678" not in text
    after = json.loads(updates[-1].after_json)
    assert after.get("phone_enc") == "***"
    assert "li.minghua@example.cn" in text


def test_edit_profile__crafted_post_cannot_change_username_name_id_or_region(app, client, login_as):
    v = _volunteer(app, "vol_longting")
    full_id, _ = _plain(app, v)
    login_as("vol_longting")
    resp = client.post("/my/profile", data=_form(
        v, real_name="王五", username="someone_else", id_number="410202199001011234",
        id_number_masked="0000", id_blind="x", region_id="1", region_path="410000/", volunteer_no="X",
        status="approved", total_minutes="999999", user_id="1"))
    assert resp.status_code == 302
    with app.app_context():
        row = db.session.get(Volunteer, v.id)
        assert (row.real_name, row.user.username, pii.decrypt(row.id_number_enc)) == ("李明华", "vol_longting", full_id)
        assert (row.id_number_masked, row.id_blind, row.region_id, row.region_path, row.volunteer_no,
                row.total_minutes, row.user_id) == (v.id_number_masked, v.id_blind, v.region_id, v.region_path,
                                                     v.volunteer_no, v.total_minutes, v.user_id)


def test_update_profile__service_refuses_fields_that_are_not_editable(app):
    from app.services.errors import DomainError

    v = _volunteer(app, "vol_longting")
    with app.app_context():
        row = db.session.get(Volunteer, v.id)
        with pytest.raises(DomainError):
            volunteers.update_profile(row, real_name="王五")
        with pytest.raises(DomainError):
            volunteers.update_profile(row, region_id=1)


@pytest.mark.parametrize("field, value, message", [
    ("email", "not-an-email", "请填写有效的电子邮箱地址"),
    ("phone", "12345", "请输入有效的手机号码"),
    ("phone", "010 6552 9988", "请输入有效的手机号码"),  # a landline is no mobile
])
def test_edit_profile__invalid_email_or_mobile_refused_with_chinese_field_message(app, client, login_as,
                                                                                  field, value, message):
    v = _volunteer(app, "vol_longting")
    login_as("vol_longting")
    resp = client.post("/my/profile", data=_form(v, **{field: value}))
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert message in html and "field-error" in html
    with app.app_context():
        row = db.session.get(Volunteer, v.id)
        assert (row.email, row.phone_masked) == (v.email, v.phone_masked)


def test_edit_profile__email_of_another_volunteer_refused(app, client, login_as):
    v, other = _volunteer(app, "vol_longting"), _volunteer(app, "vol_shunhe")
    login_as("vol_longting")
    resp = client.post("/my/profile", data=_form(v, email=other.email.upper()))
    assert resp.status_code == 400
    assert "该电子邮箱已被其他账号使用" in resp.get_data(as_text=True)


def test_edit_profile__minor_changes_guardian_phone_encrypted(app, client, login_as):
    v = _volunteer(app, "vol_minor")
    login_as("vol_minor")
    page = client.get("/my/profile").get_data(as_text=True)
    assert 'name="guardian_phone"' in page
    resp = client.post("/my/profile", data=_form(v, guardian_phone="13700001111"))
    assert resp.status_code == 302
    with app.app_context():
        row = db.session.get(Volunteer, v.id)
        assert pii.decrypt(row.guardian_phone_enc) == "13700001111" and row.guardian_phone_masked == "137****1111"


def test_edit_profile__adult_has_no_guardian_phone_field(app, client, login_as):
    login_as("vol_longting")
    assert 'name="guardian_phone"' not in client.get("/my/profile").get_data(as_text=True)


def test_profile__rejected_volunteer_sees_status_and_reason(app, client, login_as):
    v = _volunteer(app, "vol_shunhe")
    _update(app, v.id, status="rejected", reject_reason="所填姓名与证件不一致。")
    login_as("vol_shunhe")
    html = client.get("/my/profile").get_data(as_text=True)
    assert "未通过" in html and "所填姓名与证件不一致。" in html


@pytest.mark.parametrize("url", ["/my/profile", "/my/card"])
def test_user_center__account_without_volunteer_gets_message_not_500(client, login_as, url):
    login_as("longting_officer")
    resp = client.get(url)
    assert resp.status_code == 200
    assert "没有关联志愿者" in resp.get_data(as_text=True)


@pytest.mark.parametrize("url", ["/my/profile", "/my/card"])
def test_user_center__anonymous_sent_to_login(client, url):
    resp = client.get(url)
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_menu__volunteer_sees_user_center_with_profile_and_card(client, login_as):
    login_as("vol_longting")
    html = client.get("/my/profile").get_data(as_text=True)
    assert "用户中心" in html and "我的资料" in html and "志愿者证" in html


# --- 志愿者证 ---


@pytest.mark.parametrize("minutes, stars", [(0, 0), (99 * 60, 0), (100 * 60, 1), (650 * 60, 3), (1500 * 60, 5),
                                            (9999 * 60, 5)])
def test_star_level__thresholds(minutes, stars):
    assert volunteers.star_level(minutes) == stars


def _verify_url(html):
    match = re.search(r'href="(?:https?://[^/"]+)?(/card/verify/[^"]+)"', html)
    assert match, "the card links its verification page"
    return match.group(1)


def test_card__approved_volunteer_sees_number_stars_and_qr(app, client, login_as):
    v = _volunteer(app, "vol_longting")
    _update(app, v.id, total_minutes=650 * 60)
    login_as("vol_longting")
    resp = client.get("/my/card")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert v.volunteer_no in html and "李明华" in html
    assert 'data-stars="3"' in html and "650.0" in html
    assert "<svg" in html  # the QR code, inline
    assert "/card/verify/" in _verify_url(html)


def test_verify__real_token_is_valid_for_anonymous_without_private_data(app, client, login_as):
    v = _volunteer(app, "vol_longting")
    _update(app, v.id, total_minutes=1000 * 60)
    full_id, full_phone = _plain(app, v)
    login_as("vol_longting")
    url = _verify_url(client.get("/my/card").get_data(as_text=True))
    client.get("/logout/")
    anonymous = app.test_client()
    resp = anonymous.get(url)
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "有效" in html and "无效" not in html and "李**" in html and "4星" in html
    for private in ("李明华", full_id, v.id_number_masked, full_phone, v.phone_masked, v.volunteer_no):
        assert private not in html


@pytest.mark.parametrize("token", ["tampered", "eyJ2IjoxfQ.AAAAAAAAAAAAAAAAAAAAAAAAAAA"])
def test_verify__tampered_or_unknown_token_is_invalid_not_500(client, token):
    resp = client.get(f"/card/verify/{token}")
    assert resp.status_code == 404
    assert "无效" in resp.get_data(as_text=True)


def test_verify__tampered_real_token_is_invalid(app, client):
    v = _volunteer(app, "vol_longting")
    with app.test_request_context():
        token = volunteers.card_token(v)
    body, sig = token.rsplit(".", 1)
    resp = client.get(f"/card/verify/{body}.{sig[::-1]}")
    assert resp.status_code == 404 and "无效" in resp.get_data(as_text=True)


@pytest.mark.parametrize("change", [{"status": "suspended"}, {"volunteer_no": "410000000000000"}])
def test_verify__suspended_or_renumbered_card_is_invalid(app, client, change):
    v = _volunteer(app, "vol_longting")
    with app.test_request_context():
        token = volunteers.card_token(v)
    assert "有效" in client.get(f"/card/verify/{token}").get_data(as_text=True)
    _update(app, v.id, **change)
    html = client.get(f"/card/verify/{token}").get_data(as_text=True)
    assert "无效" in html


def test_card__pending_volunteer_sees_status_and_no_card(app, client, login_as):
    v = _volunteer(app, "vol_shunhe")
    _update(app, v.id, status="pending")
    login_as("vol_shunhe")
    resp = client.get("/my/card")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "待审核" in html and "/card/verify/" not in html and "<svg" not in html
