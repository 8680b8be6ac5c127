"""团体管理 → 入团审核: a group's own admins approve or reject the pending join requests
of their groups (bulk, reason to reject), on the page and through the REST API.
A parent group's admins read their children but do not decide for them."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import event, select

from app.demo import BEISHUDIAN_TEAM, CULTURE_CENTRE_TEAM, LONGTING_CORPS
from app.extensions import db
from app.models import AuditEvent, Membership, User, Volunteer, VolunteerGroup


def _group_id(app, name: str) -> int:
    with app.app_context():
        return db.session.scalar(select(VolunteerGroup.id).where(VolunteerGroup.name == name))


def _pending(app, name: str) -> list[int]:
    with app.app_context():
        return list(db.session.scalars(select(Membership.id).join(VolunteerGroup).where(
            VolunteerGroup.name == name, Membership.status == "pending").order_by(Membership.id)))


def _state(app, ids) -> dict[int, tuple[str, str | None, str]]:
    with app.app_context():
        return {m.id: (m.status, m.reason, m.origin)
                for m in db.session.scalars(select(Membership).where(Membership.id.in_(ids)))}


def _decide(client, ids, decision, reason=None):
    data = {"rowid": [str(i) for i in ids], "decision": decision}
    if reason is not None:
        data["reason"] = reason
    return client.post("/group-admin/join-requests/decide", data=data)


def _request_of(app, group_name: str, username: str) -> int:
    """A fresh pending request of ``username`` to ``group_name`` (through the service)."""
    from app.services import memberships

    with app.app_context():
        volunteer = db.session.scalar(select(Volunteer).join(User, User.id == Volunteer.user_id)
                                      .where(User.username == username))
        group = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == group_name))
        membership = memberships.place_member(group, volunteer, status="pending", origin="request")
        db.session.commit()
        return membership.id


def test_join_requests__admin_sees_own_groups_pending_with_masked_data(app, client, login_as):
    pending = _pending(app, CULTURE_CENTRE_TEAM)
    assert pending
    login_as("culture_team_admin")
    resp = client.get("/group-admin/join-requests/")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "入团审核" in html
    assert set(int(i) for i in re.findall(r'id="join-request-(\d+)"', html)) == set(pending)
    with app.app_context():
        volunteer = db.session.scalar(select(Volunteer).join(Membership).where(Membership.id == pending[0]))
        assert volunteer.id_number_masked in html and volunteer.real_name in html
        from app.security import pii
        assert pii.decrypt(volunteer.id_number_enc) not in html
    assert "action_check_all" in html and "js/review.js" in html


def test_join_requests__menu_under_group_admin(client, login_as):
    login_as("culture_team_admin")
    html = client.get("/group-admin/join-requests/").get_data(as_text=True)
    assert "团体管理" in html and 'href="/group-admin/join-requests/"' in html


def test_join_requests__parent_admin_does_not_see_child_group_requests(app, client, login_as):
    login_as("longting_corps_admin")
    html = client.get("/group-admin/join-requests/").get_data(as_text=True)
    shown = {int(i) for i in re.findall(r'id="join-request-(\d+)"', html)}
    assert not shown & set(_pending(app, CULTURE_CENTRE_TEAM))


def test_join_requests__oldest_first(app, client, login_as):
    newest = _request_of(app, CULTURE_CENTRE_TEAM, "vol_shunhe")
    login_as("culture_team_admin")
    html = client.get("/group-admin/join-requests/").get_data(as_text=True)
    ids = [int(i) for i in re.findall(r'id="join-request-(\d+)"', html)]
    assert ids[-1] == newest


@pytest.mark.parametrize("username", ["vol_longting", "longting_officer"])
def test_join_requests__others_may_not_open_the_page(client, login_as, username):
    login_as(username)
    assert client.get("/group-admin/join-requests/").status_code in (302, 403)


def test_approve__bulk_makes_members_origin_kept_and_audited(app, client, login_as):
    pending = _pending(app, CULTURE_CENTRE_TEAM)
    login_as("culture_team_admin")
    resp = _decide(client, pending, "approve")
    assert resp.status_code == 302
    assert all(state == ("active", None, "request") for state in _state(app, pending).values())
    with app.app_context():
        actions = db.session.scalars(select(AuditEvent.action).where(
            AuditEvent.object_type == "membership", AuditEvent.object_id == pending[0])).all()
        assert "status:pending->active" in actions
    html = client.get("/group-admin/join-requests/").get_data(as_text=True)
    assert "没有待审核的入团申请" in html


def test_reject__needs_a_reason_then_stores_it(app, client, login_as):
    pending = _pending(app, CULTURE_CENTRE_TEAM)[:2]
    login_as("culture_team_admin")
    resp = _decide(client, pending, "reject")
    assert resp.status_code == 302
    assert all(s == "pending" for s, _, _ in _state(app, pending).values())
    assert "不通过时必须填写原因" in client.get("/group-admin/join-requests/").get_data(as_text=True)
    _decide(client, pending, "reject", "x" * 256)
    assert all(s == "pending" for s, _, _ in _state(app, pending).values())
    _decide(client, pending, "reject", "本队只接收文化馆职工")
    assert all(state[:2] == ("rejected", "本队只接收文化馆职工") for state in _state(app, pending).values())


def test_decide__unknown_decision_refused(app, client, login_as):
    pending = _pending(app, CULTURE_CENTRE_TEAM)[:1]
    login_as("culture_team_admin")
    _decide(client, pending, "maybe")
    assert _state(app, pending)[pending[0]][0] == "pending"


def test_decide__other_groups_request_by_guessed_id_is_404_and_nothing_changes(app, client, login_as):
    own = _request_of(app, BEISHUDIAN_TEAM, "vol_shunhe")
    other = _pending(app, CULTURE_CENTRE_TEAM)
    login_as("longting_team_admin")
    assert _decide(client, [own, other[0]], "approve").status_code == 404
    assert _state(app, [own, other[0]]) == {own: ("pending", None, "request"), other[0]: ("pending", None, "request")}
    assert _decide(client, [own], "approve").status_code == 302
    assert _state(app, [own])[own][0] == "active"


def test_decide__parent_admin_cannot_decide_for_child_group(app, client, login_as):
    pending = _pending(app, CULTURE_CENTRE_TEAM)
    login_as("longting_corps_admin")
    assert _decide(client, pending[:1], "approve").status_code == 404
    assert _state(app, pending[:1])[pending[0]][0] == "pending"


def test_decide__not_pending_id_is_404(app, client, login_as):
    with app.app_context():
        active = db.session.scalar(select(Membership.id).join(VolunteerGroup).where(
            VolunteerGroup.name == CULTURE_CENTRE_TEAM, Membership.status == "active").limit(1))
    login_as("culture_team_admin")
    assert _decide(client, [active], "reject", "no").status_code == 404
    assert _state(app, [active])[active][0] == "active"


def test_decide__garbage_ids_are_404_not_500(client, login_as):
    login_as("culture_team_admin")
    assert _decide(client, ["abc"], "approve").status_code == 404


def test_join_requests__page_query_count_does_not_grow_with_rows(app, client, login_as):
    """Volunteers and groups are loaded eagerly: no query per row."""
    login_as("culture_team_admin")

    def queries():
        count = [0]

        def bump(*_args, **_kwargs):
            count[0] += 1

        with app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", bump)
        try:
            client.get("/group-admin/join-requests/")
        finally:
            event.remove(engine, "before_cursor_execute", bump)
        return count[0]

    few = queries()
    for username in ("vol_shunhe", "vol_zhengzhou"):
        _request_of(app, CULTURE_CENTRE_TEAM, username)
    assert queries() == few


# --- REST: /api/v1/membership/ ---


def _headers(client, username):
    token = client.post("/api/v1/security/login", json={
        "username": username, "password": "Demo12345!", "provider": "db"}).get_json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_api_review__own_admin_approves(app, client):
    pending = _pending(app, CULTURE_CENTRE_TEAM)
    resp = client.post(f"/api/v1/membership/{pending[0]}/review", json={"decision": "approve"},
                       headers=_headers(client, "culture_team_admin"))
    assert resp.status_code == 200, resp.data
    assert resp.get_json()["status"] == "active"
    assert _state(app, pending[:1])[pending[0]][0] == "active"


def test_api_review__reject_without_reason_is_400(app, client):
    pending = _pending(app, CULTURE_CENTRE_TEAM)
    resp = client.post(f"/api/v1/membership/{pending[0]}/review", json={"decision": "reject"},
                       headers=_headers(client, "culture_team_admin"))
    assert resp.status_code == 400
    assert _state(app, pending[:1])[pending[0]][0] == "pending"


@pytest.mark.parametrize("username, status", [
    ("longting_team_admin", 404),  # another group's admin: out of scope
    ("longting_corps_admin", 404),  # the parent's admin reads it but may not decide
    ("vol_longting", 403),  # no can_write on Membership
])
def test_api_review__others_refused_and_nothing_changes(app, client, username, status):
    pending = _pending(app, CULTURE_CENTRE_TEAM)
    resp = client.post(f"/api/v1/membership/{pending[0]}/review", json={"decision": "approve"},
                       headers=_headers(client, username))
    assert resp.status_code == status
    assert _state(app, pending[:1])[pending[0]][0] == "pending"


def test_api_list__volunteer_sees_only_own_memberships(app, client):
    resp = client.get("/api/v1/membership/", headers=_headers(client, "vol_longting"))
    assert resp.status_code == 200
    names = {item["volunteer_name"] for item in resp.get_json()["result"]}
    assert names == {"李明华"}
    groups = {item["group"]["name"] for item in resp.get_json()["result"]}
    assert groups == {BEISHUDIAN_TEAM, CULTURE_CENTRE_TEAM}


def test_api_list__group_admin_reads_own_group_and_children(app, client):
    resp = client.get("/api/v1/membership/?q=(page_size:100)", headers=_headers(client, "longting_corps_admin"))
    groups = {item["group"]["name"] for item in resp.get_json()["result"]}
    assert groups <= {LONGTING_CORPS, BEISHUDIAN_TEAM, CULTURE_CENTRE_TEAM} and CULTURE_CENTRE_TEAM in groups
