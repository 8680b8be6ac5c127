"""Registration review (注册审核): officers decide the pending registrations of their
regions, on the page (in bulk, with a reason) and through the REST API."""
from __future__ import annotations

import re
from datetime import date, datetime

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Region, Volunteer
from app.services import clock, volunteers
from app.services.idcards import mod11_2
from tests.conftest import login

LONGTING, SHUNHE, KAIFENG, ZHENGZHOU_JINSHUI = "410202", "410203", "410200", "410105"
_serial = iter(range(100, 999))


def _register(app, region_code: str, *, submitted_on: datetime | None = None, birth="19900101") -> int:
    """A new pending registration homed in ``region_code``; returns its id."""
    with app.app_context():
        region = db.session.scalar(select(Region).where(Region.code == region_code))
        body = f"{region_code}{birth}{next(_serial):03d}"
        volunteer = volunteers.register_volunteer(
            real_name="测试审核", id_number=body + mod11_2(body), email="review@example.cn", region=region,
            phone="13800138000")
        if submitted_on is not None:
            volunteer.submitted_on = submitted_on
        db.session.commit()
        return volunteer.id


def _pending_ids(app, path_prefix: str) -> set[int]:
    with app.app_context():
        return set(db.session.scalars(select(Volunteer.id).where(
            Volunteer.status == "pending", Volunteer.region_path.startswith(path_prefix))))


def _get(app, vid: int) -> Volunteer:
    with app.app_context():
        volunteer = db.session.get(Volunteer, vid)
        db.session.expunge(volunteer)
        return volunteer


def _user_id(app, username: str) -> int:
    with app.app_context():
        return app.appbuilder.sm.find_user(username=username).id


def _token(client, username):
    resp = client.post("/api/v1/security/login", json={
        "username": username, "password": "Demo12345!", "provider": "db"})
    return {"Authorization": f"Bearer {resp.get_json()['access_token']}"}


def _decide(client, ids, decision, reason=None):
    data = {"rowid": [str(i) for i in ids], "decision": decision}
    if reason is not None:
        data["reason"] = reason
    return client.post("/registration-review/decide", data=data)


# --- The page ---


def test_review_page__officer_sees_only_pending_in_own_region(app, client):
    own = _register(app, LONGTING)
    shunhe, zhengzhou = _register(app, SHUNHE), _register(app, ZHENGZHOU_JINSHUI)
    login(client, "longting_officer")
    resp = client.get("/registration-review/")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "注册审核" in html
    shown = {int(i) for i in re.findall(r'id="registration-(\d+)"', html)}
    assert own in shown
    assert shown == _pending_ids(app, "410000/410200/410202/")
    assert not shown & {shunhe, zhengzhou}


def test_review_page__kaifeng_officer_sees_every_kaifeng_pending_oldest_first(app, client):
    old = _register(app, SHUNHE, submitted_on=datetime(2020, 1, 1, 2))
    login(client, "kaifeng_officer")
    html = client.get("/registration-review/").get_data(as_text=True)
    shown = [int(i) for i in re.findall(r'id="registration-(\d+)"', html)]
    assert set(shown) == _pending_ids(app, "410000/410200/")
    assert shown[0] == old


def test_review_page__working_day_age_with_frozen_clock(app, client, monkeypatch):
    """Today frozen at Fri 2026-10-09 (after the National Day week)."""
    monkeypatch.setattr(clock, "today", lambda: date(2026, 10, 9))
    # Submission times are UTC; 02:00 UTC is 10:00 in Shanghai.
    fresh = _register(app, LONGTING, submitted_on=datetime(2026, 10, 8, 2))  # 1 working day
    due = _register(app, LONGTING, submitted_on=datetime(2026, 9, 28, 2))  # 4: 9-29, 9-30, 10-8, 10-9
    overdue = _register(app, LONGTING, submitted_on=datetime(2026, 9, 21, 2))  # 8 (Mid-Autumn, National Day off)
    # 2026-09-27 20:00 UTC is already Monday 09-28 in Shanghai: 4 working days, not 5.
    late_evening = _register(app, LONGTING, submitted_on=datetime(2026, 9, 27, 20))
    login(client, "longting_officer")
    html = client.get("/registration-review/").get_data(as_text=True)

    def row(vid):
        start = html.index(f'id="registration-{vid}"')
        return html[html.rindex("<tr", 0, start):html.index("</tr>", start)]

    def age(vid):
        cell = row(vid).split('class="workday-age">', 1)[1]
        return int(cell.split()[0].split("<")[0])

    assert (age(fresh), age(due), age(overdue), age(late_evening)) == (1, 4, 8, 4)
    assert "2026-09-28" in row(late_evening)
    assert "review-due" not in row(fresh) and "review-overdue" not in row(fresh)
    assert "review-due" in row(due) and "即将超期" in row(due)
    assert "review-overdue" in row(overdue) and "已超期" in row(overdue)


def test_review_page__minor_shows_guardian_masked(app, client):
    with app.app_context():
        region = db.session.scalar(select(Region).where(Region.code == LONGTING))
        body = f"{LONGTING}20120315{next(_serial):03d}"
        minor = volunteers.register_volunteer(
            real_name="张小明", id_number=body + mod11_2(body), email="minor@example.cn", region=region,
            phone="13900139000", guardian_name="张建国", guardian_relation="父亲",
            guardian_phone="13700137000", guardian_consent_on=datetime(2026, 11, 1, 2))
        db.session.commit()
        vid, masked_id = minor.id, minor.id_number_masked
    login(client, "longting_officer")
    html = client.get("/registration-review/").get_data(as_text=True)
    start = html.index(f'id="registration-{vid}"')
    row = html[start:html.index("</tr>", start)]
    assert "张建国" in row and "父亲" in row and "137****7000" in row and "未成年" in row
    assert masked_id in row and body not in html and "13700137000" not in html


def test_decide__bulk_approve_gives_numbers(app, client):
    ids = sorted(_pending_ids(app, "410000/410200/"))
    assert len(ids) >= 2
    login(client, "kaifeng_officer")
    resp = _decide(client, ids, "approve")
    assert resp.status_code == 302
    officer_id = _user_id(app, "kaifeng_officer")
    year = clock.today().year
    numbers = set()
    for vid in ids:
        v = _get(app, vid)
        assert v.status == "approved" and v.reviewed_by_fk == officer_id and v.reviewed_on is not None
        assert len(v.volunteer_no) == 15 and v.volunteer_no.startswith(f"41{year}")
        assert v.volunteer_no[-1] == mod11_2(v.volunteer_no[:14])
        numbers.add(v.volunteer_no)
    assert len(numbers) == len(ids)
    assert not _pending_ids(app, "410000/410200/")


def test_decide__reject_requires_a_reason(app, client):
    vid = _register(app, LONGTING)
    login(client, "longting_officer")
    resp = _decide(client, [vid], "reject", "  ")
    assert resp.status_code == 302
    assert _get(app, vid).status == "pending"
    page = client.get("/registration-review/").get_data(as_text=True)
    assert "须填写原因" in page


def test_decide__reject_stores_the_reason(app, client):
    ids = [_register(app, LONGTING), _register(app, LONGTING)]
    login(client, "longting_officer")
    assert _decide(client, ids, "reject", "身份证照片不清晰，请重新上传。").status_code == 302
    for vid in ids:
        v = _get(app, vid)
        assert (v.status, v.reject_reason, v.volunteer_no) == ("rejected", "身份证照片不清晰，请重新上传。", None)
        assert v.reviewed_by_fk == _user_id(app, "longting_officer")


def test_decide__out_of_scope_id_in_bulk_is_404_and_nothing_changes(app, client):
    own, shunhe, zhengzhou = _register(app, LONGTING), _register(app, SHUNHE), _register(app, ZHENGZHOU_JINSHUI)
    login(client, "longting_officer")
    for stranger in (shunhe, zhengzhou, 10**9):
        assert _decide(client, [own, stranger], "approve").status_code == 404
    assert _decide(client, [own, "x"], "approve").status_code == 404
    for vid in (own, shunhe, zhengzhou):
        assert _get(app, vid).status == "pending"
        assert _get(app, vid).volunteer_no is None


def test_decide__non_pending_is_refused_with_a_message(app, client):
    vid = _register(app, LONGTING)
    login(client, "longting_officer")
    assert _decide(client, [vid], "approve").status_code == 302
    number = _get(app, vid).volunteer_no
    other = _register(app, LONGTING)
    assert _decide(client, [other, vid], "reject", "重复").status_code == 302
    assert _get(app, vid).volunteer_no == number and _get(app, vid).status == "approved"
    assert _get(app, other).status == "pending"  # all or none


@pytest.mark.parametrize("username", ["longting_corps_admin", "kfvf_admin", "vol_longting", "kaifeng_honors"])
def test_review__other_roles_cannot_review(app, client, username):
    vid = _register(app, LONGTING)
    login(client, username)
    assert client.get("/registration-review/").status_code in (302, 403)
    assert _decide(client, [vid], "approve").status_code in (302, 403)
    resp = client.post(f"/api/v1/volunteer/{vid}/review", json={"decision": "approve"},
                       headers=_token(client, username))
    assert resp.status_code in (401, 403)
    assert _get(app, vid).status == "pending"


def test_review_service__group_admin_scope_does_not_count(app):
    """A scope that reaches the volunteer only as a group admin (or honors editor) may not decide."""
    from app.security.scope import Scope
    from app.services.errors import ScopeViolation

    vid = _register(app, LONGTING)
    with app.app_context():
        v = db.session.get(Volunteer, vid)
        for scope in (Scope(group_paths=("1/",), honors_paths=("410000/",), volunteer_id=vid),
                      Scope(officer_paths=("410000/410200/410203/",))):
            with pytest.raises(ScopeViolation):
                volunteers.review_volunteers([v], "approve", scope=scope)
        assert v.status == "pending"


def test_menu__officer_sees_registration_review_admin_sees_holidays(app, client):
    login(client, "kaifeng_officer")
    html = client.get("/registration-review/").get_data(as_text=True)
    assert "/registration-review/" in html and "节假日设置" not in html
    assert client.get("/holidays/list/").status_code in (302, 403)
    client.get("/logout/")
    login(client, "admin")
    html = client.get("/holidays/list/").get_data(as_text=True)
    assert "节假日设置" in html and "注册审核" in html


def test_holidays__admin_adds_edits_and_deletes_a_day(app, client):
    from app.models import Holiday

    login(client, "admin")
    resp = client.post("/holidays/add", data={"day": "2027-10-01", "name": "国庆节"})
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.get(Holiday, date(2027, 10, 1)).is_workday is False
    assert client.get("/holidays/show/2027-10-01").status_code == 200
    assert client.post("/holidays/edit/2027-10-01", data={"is_workday": "y", "name": "调休"}).status_code == 302
    with app.app_context():
        assert db.session.get(Holiday, date(2027, 10, 1)).is_workday is True
    assert client.get("/holidays/show/not-a-date").status_code == 404
    assert client.post("/holidays/delete/2027-10-01").status_code == 302
    with app.app_context():
        assert db.session.get(Holiday, date(2027, 10, 1)) is None


# --- REST API ---


def test_api_review__approve_returns_volunteer_no(app, client):
    vid = _register(app, LONGTING)
    resp = client.post(f"/api/v1/volunteer/{vid}/review", json={"decision": "approve"},
                       headers=_token(client, "longting_officer"))
    assert resp.status_code == 200, resp.data
    body = resp.get_json()
    assert body["status"] == "approved" and body["volunteer_no"] == _get(app, vid).volunteer_no
    assert len(body["volunteer_no"]) == 15


def test_api_review__reject_stores_reason_and_requires_one(app, client):
    vid = _register(app, LONGTING)
    headers = _token(client, "kaifeng_officer")
    resp = client.post(f"/api/v1/volunteer/{vid}/review", json={"decision": "reject"}, headers=headers)
    assert resp.status_code == 400 and resp.get_json()["message"]
    assert _get(app, vid).status == "pending"
    resp = client.post(f"/api/v1/volunteer/{vid}/review", json={"decision": "reject", "reason": "姓名与证件不一致"},
                       headers=headers)
    assert resp.status_code == 200
    assert resp.get_json()["volunteer_no"] is None
    v = _get(app, vid)
    assert (v.status, v.reject_reason) == ("rejected", "姓名与证件不一致")


@pytest.mark.parametrize("region", [SHUNHE, ZHENGZHOU_JINSHUI])
def test_api_review__out_of_scope_is_404(app, client, region):
    vid = _register(app, region)
    resp = client.post(f"/api/v1/volunteer/{vid}/review", json={"decision": "approve"},
                       headers=_token(client, "longting_officer"))
    assert resp.status_code == 404
    assert _get(app, vid).status == "pending"


def test_api_review__non_pending_or_bad_body_is_400(app, client):
    vid = _register(app, LONGTING)
    headers = _token(client, "longting_officer")
    assert client.post(f"/api/v1/volunteer/{vid}/review", json={"decision": "approve"},
                       headers=headers).status_code == 200
    number = _get(app, vid).volunteer_no
    for body in ({"decision": "approve"}, {"decision": "reject", "reason": "x"}):
        resp = client.post(f"/api/v1/volunteer/{vid}/review", json=body, headers=headers)
        assert resp.status_code == 400 and resp.get_json()["message"]
    other = _register(app, LONGTING)
    for body in ({"decision": "maybe"}, {"decision": "reject", "reason": 42}, ["approve"]):
        assert client.post(f"/api/v1/volunteer/{other}/review", json=body, headers=headers).status_code == 400
    assert _get(app, vid).volunteer_no == number
    assert _get(app, other).status == "pending"


def test_review__audit_events_record_the_decisions(app, client):
    approved, rejected = _register(app, LONGTING), _register(app, LONGTING)
    headers = _token(client, "longting_officer")
    client.post(f"/api/v1/volunteer/{approved}/review", json={"decision": "approve"}, headers=headers)
    login(client, "longting_officer")
    _decide(client, [rejected], "reject", "联系电话无法接通，请核实。")
    with app.app_context():
        def actions(vid):
            return [e.action for e in db.session.scalars(select(AuditEvent).where(
                AuditEvent.object_type == "volunteer", AuditEvent.object_id == vid).order_by(AuditEvent.id))]

        assert actions(approved) == ["create", "status:pending->approved"]
        assert actions(rejected) == ["create", "status:pending->rejected"]
        event = db.session.scalar(select(AuditEvent).where(
            AuditEvent.object_id == rejected, AuditEvent.action == "status:pending->rejected"))
        assert event.actor_name and "联系电话无法接通" in event.after_json
