"""Honors (表彰激励): only prefecture-or-above honors editors write, only inside their region."""
import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Honor, Volunteer, VolunteerGroup
from tests.conftest import login


def _token(client, username):
    resp = client.post("/api/v1/security/login", json={
        "username": username, "password": "Demo12345!", "provider": "db"})
    return {"Authorization": f"Bearer {resp.get_json()['access_token']}"}


def _volunteer(app, region_prefix):
    with app.app_context():
        return db.session.scalar(select(Volunteer).where(
            Volunteer.region_path.startswith(region_prefix), Volunteer.status == "approved").limit(1))


def _group(app, region_prefix):
    with app.app_context():
        return db.session.scalar(select(VolunteerGroup).where(
            VolunteerGroup.region_path.startswith(region_prefix)).limit(1))


def _count(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Honor))


BODY = {"title": "优秀志愿者", "level": "prefecture", "awarded_on": "2026-03-05", "awarding_body": "开封市文明办"}


def test_post_honor__kaifeng_honors_editor_for_kaifeng_volunteer_is_created(app, client):
    v = _volunteer(app, "410000/410200/410202/")
    before = _count(app)
    resp = client.post("/api/v1/honor/", json={**BODY, "volunteer": v.id}, headers=_token(client, "kaifeng_honors"))
    assert resp.status_code == 201, resp.data
    with app.app_context():
        honor = db.session.get(Honor, resp.get_json()["id"])
        assert (honor.volunteer_id, honor.region_path) == (v.id, v.region_path)
    assert _count(app) == before + 1


def test_post_honor__group_recipient_carries_its_group_path(app, client):
    g = _group(app, "410000/410200/")
    resp = client.post("/api/v1/honor/", json={**BODY, "volunteer_group": g.id}, headers=_token(client, "kaifeng_honors"))
    assert resp.status_code == 201, resp.data
    with app.app_context():
        honor = db.session.get(Honor, resp.get_json()["id"])
        assert (honor.group_path, honor.region_path) == (g.group_path, g.region_path)


@pytest.mark.parametrize("recipient", ["zhengzhou_volunteer", "zhengzhou_group", "both", "none"])
def test_post_honor__bad_or_out_of_region_recipient_is_refused(app, client, recipient):
    v, zv = _volunteer(app, "410000/410200/"), _volunteer(app, "410000/410100/")
    zg = _group(app, "410000/410100/")
    body = {"zhengzhou_volunteer": {"volunteer": zv.id}, "zhengzhou_group": {"volunteer_group": zg.id},
            "both": {"volunteer": v.id, "volunteer_group": _group(app, "410000/410200/").id},
            "none": {}}[recipient]
    before = _count(app)
    resp = client.post("/api/v1/honor/", json={**BODY, **body}, headers=_token(client, "kaifeng_honors"))
    assert 400 <= resp.status_code < 500 and resp.status_code != 401
    assert _count(app) == before


@pytest.mark.parametrize("username", ["kaifeng_officer", "longting_corps_admin", "vol_longting"])
def test_post_honor__other_roles_are_refused(app, client, username):
    v = _volunteer(app, "410000/410200/")
    before = _count(app)
    resp = client.post("/api/v1/honor/", json={**BODY, "volunteer": v.id}, headers=_token(client, username))
    assert resp.status_code in (401, 403)
    assert _count(app) == before


def test_post_honor__admin_may_record_anywhere(app, client):
    zv = _volunteer(app, "410000/410100/")
    resp = client.post("/api/v1/honor/", json={**BODY, "volunteer": zv.id}, headers=_token(client, "admin"))
    assert resp.status_code == 201


def test_put_honor__editor_edits_own_region_but_not_others(app, client):
    admin = _token(client, "admin")
    zz = client.post("/api/v1/honor/", json={**BODY, "volunteer": _volunteer(app, "410000/410100/").id},
                     headers=admin).get_json()["id"]
    kf = client.post("/api/v1/honor/", json={**BODY, "volunteer": _volunteer(app, "410000/410200/").id},
                     headers=admin).get_json()["id"]
    editor = _token(client, "kaifeng_honors")
    assert client.put(f"/api/v1/honor/{kf}", json={"title": "改"}, headers=editor).status_code == 200
    assert client.put(f"/api/v1/honor/{zz}", json={"title": "改"}, headers=editor).status_code == 404
    with app.app_context():
        assert db.session.get(Honor, zz).title == BODY["title"]


def test_honor_role_without_binding__cannot_record(app, client):
    with app.app_context():
        sm = app.appbuilder.sm
        sm.add_user("loose_honors", "x", "y", "l@example.cn", [sm.find_role("HonorsEditor")], "Demo12345!")
    before = _count(app)
    resp = client.post("/api/v1/honor/", json={**BODY, "volunteer": _volunteer(app, "410000/410200/").id},
                       headers=_token(client, "loose_honors"))
    assert 400 <= resp.status_code < 500
    assert _count(app) == before


def test_add_page__editor_records_by_volunteer_number(app, client):
    v = _volunteer(app, "410000/410200/410203/")
    login(client, "kaifeng_honors")
    before = _count(app)
    resp = client.post("/honors/add", data={**BODY, "recipient_volunteer_no": v.volunteer_no})
    assert resp.status_code == 302
    assert _count(app) == before + 1


def test_add_page__out_of_region_number_is_refused_with_a_message(app, client):
    zv = _volunteer(app, "410000/410100/")
    login(client, "kaifeng_honors")
    before = _count(app)
    resp = client.post("/honors/add", data={**BODY, "recipient_volunteer_no": zv.volunteer_no},
                       follow_redirects=True)
    assert resp.status_code in (200, 400)
    assert zv.volunteer_no in resp.get_data(as_text=True) or "辖区" in resp.get_data(as_text=True)
    assert _count(app) == before


def test_add_page__officer_has_no_add(app, client):
    login(client, "kaifeng_officer")
    assert client.get("/honors/add").status_code in (302, 403)
    assert client.get("/honors/list/").status_code == 200


def test_add_page__out_of_scope_group_in_url_prefill_is_refused(app, client):
    zg = _group(app, "410000/410100/")
    login(client, "kaifeng_honors")
    before = _count(app)
    resp = client.post(f"/honors/add?_flt_0_volunteer_group={zg.id}", data=BODY, follow_redirects=True)
    assert "不在您的管辖范围" in resp.get_data(as_text=True)
    assert _count(app) == before


def test_post_honor__is_audited_and_visible_to_officers_in_scope(app, client):
    from app.models import AuditEvent

    v = _volunteer(app, "410000/410200/410202/")
    resp = client.post("/api/v1/honor/", json={**BODY, "volunteer": v.id}, headers=_token(client, "kaifeng_honors"))
    honor_id = resp.get_json()["id"]
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(
            AuditEvent.object_type == "honor", AuditEvent.object_id == honor_id))
        assert (event.action, event.actor_name, event.region_path) == ("create", "kaifeng_honors", v.region_path)
    login(client, "longting_officer")
    assert client.get(f"/audit-log/show/{event.id}").status_code == 200
    client.get("/logout/")
    login(client, "shunhe_officer")
    assert client.get(f"/audit-log/show/{event.id}").status_code == 404
