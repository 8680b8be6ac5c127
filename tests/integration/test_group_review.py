"""下级团体审核 / 团体审核: a group with a parent is decided by the admins of that parent
itself (never a grandparent's), a root group by an officer of its region; on the page
(bulk, with a reason) and through the REST API. A rejected group corrects and resubmits."""
from __future__ import annotations

import re

import pytest
from flask import g
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, GroupType, ReviewStatus, VolunteerGroup
from app.services import groups
from tests.conftest import login

LONGTING_CORPS = "龙亭区志愿服务总队"
BEIDAOMEN = "龙亭区北道门社区志愿服务队"  # demo: pending, parent 龙亭区志愿服务总队
YOUTH = "开封市青年志愿者协会"  # demo: pending root group in 开封市 (410200)
BEISHUDIAN = "北书店街道社区志愿服务队"  # approved


def _group(app, name: str) -> VolunteerGroup:
    with app.app_context():
        group = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == name))
        db.session.expunge(group)
        return group


def _register_team(app, name: str, username: str) -> int:
    """One more pending team under 龙亭区志愿服务总队, through the service."""
    with app.test_request_context():
        group = groups.register_group(
            name=name, username=username, password="Passw0rd1", password_confirm="Passw0rd1",
            parent_name=LONGTING_CORPS, region_code="410202", group_type=GroupType.COMMUNITY,
            contact_name="测试", contact_phone="13912345678")
        db.session.commit()
        return group.id


def _decide(client, ids, decision, reason=None):
    data = {"rowid": [str(i) for i in ids], "decision": decision}
    if reason is not None:
        data["reason"] = reason
    return client.post("/group-review/decide", data=data)


def _shown(client) -> set[int]:
    html = client.get("/group-review/").get_data(as_text=True)
    return {int(i) for i in re.findall(r'id="group-(\d+)"', html)}


def _token(client, username):
    resp = client.post("/api/v1/security/login", json={
        "username": username, "password": "Demo12345!", "provider": "db"})
    return {"Authorization": f"Bearer {resp.get_json()['access_token']}"}


# --- Who sees what ---


def test_review_page__parent_admin_sees_its_pending_children_only(app, client):
    child = _group(app, BEIDAOMEN)
    login(client, "longting_corps_admin")
    resp = client.get("/group-review/")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "下级团体审核" in html and BEIDAOMEN in html
    assert _shown(client) == {child.id}


@pytest.mark.parametrize("username", ["kfvf_admin", "longting_team_admin", "longting_officer"])
def test_review_page__grandparent_team_and_officer_do_not_see_a_child_team(app, client, username):
    login(client, username)
    assert _group(app, BEIDAOMEN).id not in _shown(client)


def test_review_page__officer_sees_root_groups_of_own_region(app, client):
    youth = _group(app, YOUTH)
    login(client, "kaifeng_officer")
    html = client.get("/group-review/").get_data(as_text=True)
    assert "团体审核" in html and YOUTH in html
    assert _shown(client) == {youth.id}


def test_menus__child_group_review_for_group_admins_group_review_for_officers(app):
    admin_client, officer_client = app.test_client(), app.test_client()
    login(admin_client, "longting_corps_admin")
    login(officer_client, "kaifeng_officer")
    admin_menu = admin_client.get("/group-admin/profile/").get_data(as_text=True)
    officer_menu = officer_client.get("/group-review/").get_data(as_text=True)
    assert "下级团体审核" in admin_menu and "团体信息" in admin_menu
    assert 'href="/group-review/"' in officer_menu and "团体审核" in officer_menu
    assert "下级团体审核" not in officer_menu


def test_review_page__volunteer_has_no_access(client):
    login(client, "vol_longting")
    assert client.get("/group-review/").status_code in (302, 403)


# --- Deciding ---


def test_approve__parent_admin_approves_child(app, client):
    child = _group(app, BEIDAOMEN)
    login(client, "longting_corps_admin")
    resp = _decide(client, [child.id], "approve")
    assert resp.status_code == 302
    with app.app_context():
        saved = db.session.get(VolunteerGroup, child.id)
        reviewer = app.appbuilder.sm.find_user(username="longting_corps_admin")
        assert saved.status == ReviewStatus.APPROVED and saved.approved_on and saved.reviewed_on
        assert saved.reviewed_by_fk == reviewer.id
        event = db.session.scalar(select(AuditEvent).where(
            AuditEvent.object_type == "volunteer_group", AuditEvent.object_id == child.id,
            AuditEvent.action == "status:pending->approved"))
        assert event is not None and event.actor_name == "longting_corps_admin"
        assert event.group_path == saved.group_path
    assert groups.is_approved(_group(app, BEIDAOMEN))
    with app.app_context():  # approved: its QR code now works
        assert groups.group_for_join_token(saved.join_token).id == child.id


@pytest.mark.parametrize("username", ["kfvf_admin", "longting_officer", "kaifeng_officer", "shunhe_team_admin"])
def test_approve__not_the_parent_admin_is_404_and_nothing_changes(app, client, username):
    """The grandparent (kfvf_admin) reads the team but does not decide it; officers only
    decide root groups."""
    child = _group(app, BEIDAOMEN)
    login(client, username)
    assert _decide(client, [child.id], "approve").status_code == 404
    assert _group(app, BEIDAOMEN).status == ReviewStatus.PENDING


def test_approve__root_group_by_officer_of_its_region(app, client):
    youth = _group(app, YOUTH)
    login(client, "kaifeng_officer")
    assert _decide(client, [youth.id], "approve").status_code == 302
    assert _group(app, YOUTH).status == ReviewStatus.APPROVED


@pytest.mark.parametrize("username", ["longting_officer", "shunhe_officer", "kfvf_admin", "longting_corps_admin"])
def test_approve__root_group_by_officer_of_another_region_or_group_admin_is_404(app, client, username):
    youth = _group(app, YOUTH)
    login(client, username)
    assert _decide(client, [youth.id], "approve").status_code == 404
    assert _group(app, YOUTH).status == ReviewStatus.PENDING


def test_approve__mixing_a_reviewable_and_a_foreign_id_writes_nothing(app, client):
    child, youth = _group(app, BEIDAOMEN), _group(app, YOUTH)
    login(client, "longting_corps_admin")
    assert _decide(client, [child.id, youth.id], "approve").status_code == 404
    assert _group(app, BEIDAOMEN).status == _group(app, YOUTH).status == ReviewStatus.PENDING


def test_reject__needs_a_reason(app, client):
    child = _group(app, BEIDAOMEN)
    login(client, "longting_corps_admin")
    resp = _decide(client, [child.id], "reject", reason="  ")
    assert resp.status_code == 302
    assert "不通过须填写原因" in client.get("/group-review/").get_data(as_text=True)
    assert _group(app, BEIDAOMEN).status == ReviewStatus.PENDING
    assert _decide(client, [child.id], "reject", reason="长" * 256).status_code == 302
    assert _group(app, BEIDAOMEN).status == ReviewStatus.PENDING


def test_reject__stores_reason_and_admin_corrects_and_resubmits(app, client):
    child = _group(app, BEIDAOMEN)
    login(client, "longting_corps_admin")
    assert _decide(client, [child.id], "reject", reason="团体名称请使用社区全称。").status_code == 302
    rejected = _group(app, BEIDAOMEN)
    assert rejected.status == ReviewStatus.REJECTED and rejected.reject_reason == "团体名称请使用社区全称。"

    own = app.test_client()
    login(own, "beidaomen_admin")
    html = own.get("/group-admin/profile/").get_data(as_text=True)
    assert "团体名称请使用社区全称。" in html and "未通过" in html
    edit = own.get(f"/group-admin/profile/{child.id}/edit").get_data(as_text=True)
    assert 'name="name"' in edit and 'name="parent_name"' in edit  # still editable: not approved
    resp = own.post(f"/group-admin/profile/{child.id}/edit", data=dict(
        name="龙亭区北道门社区居民志愿服务队", parent_id="", parent_name=LONGTING_CORPS, region_code="410202",
        group_type="community", is_legal_person="0", credit_code="", contact_name="钱桂兰",
        contact_phone="", staff_headcount="", description="", join_policy="verify", join_password=""))
    assert resp.status_code == 302
    with app.app_context():
        saved = db.session.get(VolunteerGroup, child.id)
        assert saved.name == "龙亭区北道门社区居民志愿服务队" and saved.status == ReviewStatus.PENDING
        assert saved.reject_reason is None and saved.contact_phone_masked == rejected.contact_phone_masked
        assert saved.name_pinyin.startswith("ltqbdmsqjmzyfwd ")
    assert child.id in _shown(client)  # back in the parent's review list


def test_resubmit__naming_rule_still_applies(app, client):
    child = _group(app, BEIDAOMEN)
    login(client, "beidaomen_admin")
    resp = client.post(f"/group-admin/profile/{child.id}/edit", data=dict(
        name="北道门社区服务中心", parent_name=LONGTING_CORPS, region_code="410202", group_type="community",
        is_legal_person="0", contact_name="钱桂兰", join_policy="verify"))
    assert resp.status_code == 400 and "××志愿服务队" in resp.get_data(as_text=True)
    assert _group(app, BEIDAOMEN).name == BEIDAOMEN


def test_approve__bulk(app, client):
    ids = [_register_team(app, "龙亭区甲社区志愿服务队", "jia_admin"),
           _register_team(app, "龙亭区乙社区志愿服务队", "yi_admin"), _group(app, BEIDAOMEN).id]
    login(client, "longting_corps_admin")
    assert _shown(client) == set(ids)
    assert _decide(client, ids, "reject", reason="请补充联系人信息。").status_code == 302
    with app.app_context():
        rows = db.session.scalars(select(VolunteerGroup).where(VolunteerGroup.id.in_(ids))).all()
        assert {(r.status, r.reject_reason) for r in rows} == {("rejected", "请补充联系人信息。")}
    assert _shown(client) == set()


def test_approve__not_pending_is_refused_with_a_message(app, client):
    done = _group(app, BEISHUDIAN)  # approved child of 龙亭区志愿服务总队
    login(client, "longting_corps_admin")
    assert _decide(client, [done.id], "reject", reason="x").status_code == 302
    assert f"{BEISHUDIAN} 的注册申请不是待审核状态" in client.get("/group-review/").get_data(as_text=True)
    assert _group(app, BEISHUDIAN).status == ReviewStatus.APPROVED


def test_approve__unknown_or_garbage_ids_are_404(client):
    login(client, "admin")
    assert _decide(client, [999999], "approve").status_code == 404
    assert client.post("/group-review/decide", data={"rowid": ["x"], "decision": "approve"}).status_code == 404


def test_admin__reviews_any_pending_group(app, client):
    login(client, "admin")
    assert {_group(app, BEIDAOMEN).id, _group(app, YOUTH).id} <= _shown(client)


# --- Service level ---


def test_review_groups__service_rechecks_the_tier(app):
    """A caller that skips the page's filter still cannot decide a grandchild."""
    with app.test_request_context():
        g.user = app.appbuilder.sm.find_user(username="kfvf_admin")
        child = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == BEIDAOMEN))
        from app.services.errors import ScopeViolation

        with pytest.raises(ScopeViolation):
            groups.review_groups([child], "approve")
        db.session.rollback()
        assert db.session.get(VolunteerGroup, child.id).status == ReviewStatus.PENDING


def test_review_groups__unknown_decision_refused(app):
    with app.test_request_context():
        g.user = app.appbuilder.sm.find_user(username="longting_corps_admin")
        child = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == BEIDAOMEN))
        from app.services.errors import DomainError

        with pytest.raises(DomainError):
            groups.review_groups([child], "maybe")


# --- REST ---


def test_api_review__parent_admin_approves(app, client):
    child = _group(app, BEIDAOMEN)
    resp = client.post(f"/api/v1/volunteer_group/{child.id}/review", json={"decision": "approve"},
                       headers=_token(client, "longting_corps_admin"))
    assert resp.status_code == 200, resp.data
    assert resp.get_json()["status"] == "approved"


@pytest.mark.parametrize("username", ["kfvf_admin", "longting_officer", "shunhe_officer"])
def test_api_review__grandparent_or_officer_is_404(app, client, username):
    child = _group(app, BEIDAOMEN)
    resp = client.post(f"/api/v1/volunteer_group/{child.id}/review", json={"decision": "approve"},
                       headers=_token(client, username))
    assert resp.status_code == 404
    assert _group(app, BEIDAOMEN).status == ReviewStatus.PENDING


def test_api_review__root_group_by_officer_and_reject_needs_reason(app, client):
    youth = _group(app, YOUTH)
    headers = _token(client, "kaifeng_officer")
    resp = client.post(f"/api/v1/volunteer_group/{youth.id}/review", json={"decision": "reject"}, headers=headers)
    assert resp.status_code == 400
    resp = client.post(f"/api/v1/volunteer_group/{youth.id}/review",
                       json={"decision": "reject", "reason": "请上传登记证书。"}, headers=headers)
    assert resp.status_code == 200 and resp.get_json()["reject_reason"] == "请上传登记证书。"
    assert client.post(f"/api/v1/volunteer_group/{youth.id}/review", json=["x"], headers=headers).status_code == 400


def test_api_review__volunteer_has_no_permission(app, client):
    child = _group(app, BEIDAOMEN)
    resp = client.post(f"/api/v1/volunteer_group/{child.id}/review", json={"decision": "approve"},
                       headers=_token(client, "vol_longting"))
    assert resp.status_code in (401, 403, 404)
    assert _group(app, BEIDAOMEN).status == ReviewStatus.PENDING


# --- Demo ---


def test_demo__pending_groups_and_their_admins(app):
    with app.app_context():
        child = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == BEIDAOMEN))
        youth = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == YOUTH))
        assert child.status == youth.status == ReviewStatus.PENDING
        assert child.parent.name == LONGTING_CORPS and youth.parent_id is None
        assert youth.region_path == "410000/410200/" and youth.is_legal_person and youth.credit_code
        for username in ("beidaomen_admin", "kfyouth_admin"):
            assert {r.name for r in app.appbuilder.sm.find_user(username=username).roles} == {"GroupAdmin"}


@pytest.mark.parametrize("username, reviewer", [
    ("kfyouth_admin", "等待开封市文明办审核"), ("beidaomen_admin", f"等待{LONGTING_CORPS}审核"),
])
def test_profile__pending_group_admin_sees_who_reviews_it(client, username, reviewer):
    login(client, username)
    html = client.get("/group-admin/profile/").get_data(as_text=True)
    assert reviewer in html and "待审核" in html
    assert "更换二维码" not in html  # no join QR before approval
