"""REST API for projects, service records and hour codes (issue 6 item 10).

``project``: anyone reads the public 志愿项目 list (approved groups, never backfill);
a signed-in caller also reads the projects of their scope (officers their region's,
group admins their groups', backfill included; a volunteer the ones they enrolled
in). Items carry their positions with ``remaining`` and ``closed``, loaded without
N+1. ``service_record``: officers their region, group admins their groups, a
volunteer their own. ``hour_code``: a group admin generates a code for a position of
their own group's project; a volunteer redeems one.
"""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import (
    Enrollment, EnrollmentOrigin, EnrollmentStatus, HourCode, Membership, Position, Project,
    RecordSource, RecordStatus, ReviewStatus, ServiceRecord, Volunteer, VolunteerGroup,
)
from app.services.clock import today, utcnow
from tests.conftest import recorded_statements

BACKFILL = "龙亭区志愿服务时长补录"  # longting_corps_admin's backfill project
BOOKSTREET = "书店街文明劝导"  # longting_team_admin's open project (anyone may sign up)
CULTURE = "龙亭公园文化讲解"  # culture_team_admin's members-only project
ENDED = "清平街道敬老助餐"  # shunhe_team_admin's project, already ended


def _token(client, username):
    resp = client.post("/api/v1/security/login", json={
        "username": username, "password": "Demo12345!", "provider": "db"})
    assert resp.status_code == 200, resp.data
    return {"Authorization": f"Bearer {resp.get_json()['access_token']}"}


def _project(app, name) -> Project:
    with app.app_context():
        project = db.session.scalar(select(Project).where(Project.name == name))
        db.session.expunge(project)
        return project


def _volunteer_id(app, username) -> int:
    with app.app_context():
        user = app.appbuilder.sm.find_user(username=username)
        return db.session.scalar(select(Volunteer.id).where(Volunteer.user_id == user.id))


def _public_ids(app) -> set[int]:
    """The public list by hand: approved groups, no backfill."""
    with app.app_context():
        return {p.id for p in db.session.scalars(select(Project)) if not p.is_backfill
                and db.session.get(VolunteerGroup, p.group_id).status == ReviewStatus.APPROVED}


def _list_ids(client, resource, headers=None) -> list[int]:
    ids, page = [], 0
    while True:
        resp = client.get(f"/api/v1/{resource}/?q=(page:{page},page_size:100)", headers=headers or {})
        assert resp.status_code == 200, resp.data
        ids += resp.get_json()["ids"]
        if len(resp.get_json()["ids"]) < 100:
            return ids
        page += 1


def _pending_group_project(app) -> int:
    """A project of 北道门 team, whose registration is still pending review."""
    with app.app_context():
        group = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == "龙亭区北道门社区志愿服务队"))
        assert group.status == ReviewStatus.PENDING
        now = utcnow()
        project = Project(group_id=group.id, group_path=group.group_path, region_id=group.region_id,
                          region_path=group.region_path, name="未审核团体的项目", category="community",
                          starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=10))
        project.positions.append(Position(group_path=group.group_path, region_id=group.region_id,
                                          region_path=group.region_path, name="岗位", quota=5))
        db.session.add(project)
        db.session.commit()
        return project.id


# --- project: who reads what ---


def test_list_projects__anonymous_reads_the_public_list_only(app, client):
    pending = _pending_group_project(app)
    backfill = _project(app, BACKFILL).id
    ids = _list_ids(client, "project")
    assert set(ids) == _public_ids(app)
    assert backfill not in ids and pending not in ids
    assert client.get(f"/api/v1/project/{backfill}").status_code == 404
    assert client.get(f"/api/v1/project/{pending}").status_code == 404
    assert client.get(f"/api/v1/project/{_project(app, CULTURE).id}").status_code == 200


def test_list_projects__anonymous_filter_on_backfill_finds_nothing(app, client):
    resp = client.get("/api/v1/project/?q=(filters:!((col:is_backfill,opr:eq,value:!t)))")
    assert resp.status_code == 200
    assert resp.get_json()["ids"] == []


def test_list_projects__bad_token_reads_as_anonymous(app, client):
    ids = _list_ids(client, "project", {"Authorization": "Bearer not-a-token"})
    assert set(ids) == _public_ids(app)


def test_list_projects__group_admin_reads_own_backfill_project(app, client):
    backfill = _project(app, BACKFILL).id
    ids = _list_ids(client, "project", _token(client, "longting_corps_admin"))
    assert set(ids) == _public_ids(app) | {backfill}
    resp = client.get(f"/api/v1/project/{backfill}", headers=_token(client, "longting_corps_admin"))
    assert resp.status_code == 200
    assert resp.get_json()["result"]["is_backfill"] is True


@pytest.mark.parametrize("username", ["longting_team_admin", "shunhe_team_admin", "shunhe_officer",
                                      "vol_longting", "vol_zhengzhou"])
def test_get_backfill_project__outside_its_scope_is_404(app, client, username):
    backfill = _project(app, BACKFILL).id
    headers = _token(client, username)
    assert client.get(f"/api/v1/project/{backfill}", headers=headers).status_code == 404
    assert backfill not in _list_ids(client, "project", headers)


@pytest.mark.parametrize("username", ["longting_officer", "kaifeng_officer", "admin"])
def test_get_backfill_project__officer_of_its_region_reads_it(app, client, username):
    backfill = _project(app, BACKFILL).id
    assert client.get(f"/api/v1/project/{backfill}", headers=_token(client, username)).status_code == 200


def test_list_projects__volunteer_reads_public_list_and_own_enrollments(app, client):
    """vol_shunhe enrolled (by the corps admin) in the backfill project reads it; others do not."""
    project = _project(app, BACKFILL)
    with app.app_context():
        from app.services import projects

        position = db.session.scalar(select(Position).where(Position.project_id == project.id))
        volunteer = db.session.get(Volunteer, _volunteer_id(app, "vol_shunhe"))
        projects.enroll(position, volunteer, origin=EnrollmentOrigin.ADMIN, over_quota=True)
        db.session.commit()
    ids = _list_ids(client, "project", _token(client, "vol_shunhe"))
    assert set(ids) == _public_ids(app) | {project.id}
    assert project.id not in _list_ids(client, "project", _token(client, "vol_longting"))


def test_list_projects__pending_group_project_reaches_its_own_admin_only(app, client):
    pending = _pending_group_project(app)
    assert client.get(f"/api/v1/project/{pending}", headers=_token(client, "beidaomen_admin")).status_code == 200
    assert client.get(f"/api/v1/project/{pending}", headers=_token(client, "vol_longting")).status_code == 404


# --- project: what an item carries ---


def test_get_project__items_carry_positions_with_remaining_places(app, client):
    project = _project(app, BOOKSTREET)
    item = client.get(f"/api/v1/project/{project.id}").get_json()["result"]
    with app.app_context():
        positions = db.session.scalars(select(Position).where(Position.project_id == project.id)
                                       .order_by(Position.id)).all()
        expected = [{"id": p.id, "name": p.name, "quota": p.quota, "remaining": p.quota - p.enrolled_count,
                     "closed": False} for p in positions]
    assert [{k: p[k] for k in ("id", "name", "quota", "remaining", "closed")} for p in item["positions"]] == expected
    assert item["status"] == "open" and item["closed"] is False
    assert item["group"]["name"] == "北书店街道社区志愿服务队"
    assert item["starts_at"].endswith("+00:00")


def test_get_project__remaining_follows_enrollments(app, client):
    project = _project(app, BOOKSTREET)
    with app.app_context():
        from app.services import projects

        position = db.session.scalar(select(Position).where(Position.project_id == project.id)
                                     .order_by(Position.id))
        before = position.quota - position.enrolled_count
        projects.enroll(position, db.session.get(Volunteer, _volunteer_id(app, "vol_shunhe")))
        db.session.commit()
        position_id = position.id
    item = client.get(f"/api/v1/project/{project.id}").get_json()["result"]
    assert next(p for p in item["positions"] if p["id"] == position_id)["remaining"] == before - 1


def test_get_project__ended_project_and_its_positions_are_closed(app, client):
    item = client.get(f"/api/v1/project/{_project(app, ENDED).id}").get_json()["result"]
    assert item["status"] == "closed" and item["closed"] is True
    assert item["positions"] and all(p["closed"] is True for p in item["positions"])


def test_get_project__manual_close_closes_its_positions(app, client):
    project = _project(app, BOOKSTREET)
    with app.app_context():
        db.session.get(Project, project.id).closed_on = utcnow() - timedelta(minutes=1)
        db.session.commit()
    item = client.get(f"/api/v1/project/{project.id}").get_json()["result"]
    assert item["closed"] is True and item["status"] == "closed"
    assert all(p["closed"] is True for p in item["positions"])


@pytest.mark.parametrize("status", ["upcoming", "open", "closed"])
def test_list_projects__status_filter_reads_the_clock(app, client, status):
    from app.services import projects

    resp = client.get(f"/api/v1/project/?q=(filters:!((col:status,opr:project_status,value:{status})),page_size:100)")
    assert resp.status_code == 200
    with app.app_context():
        expected = {p.id for p in db.session.scalars(select(Project)) if projects.project_status(p) == status}
    assert set(resp.get_json()["ids"]) == expected & _public_ids(app) and expected
    assert {item["status"] for item in resp.get_json()["result"]} == {status}


def test_list_projects__asked_for_some_columns_still_answers_whole_items(app, client):
    resp = client.get("/api/v1/project/?q=(columns:!(id,name),page_size:1)")
    assert resp.status_code == 200
    assert "positions" in resp.get_json()["result"][0]


@pytest.mark.parametrize("username", [None, "admin"])
def test_list_projects__query_count_does_not_grow_with_the_page(app, client, username):
    headers = _token(client, username) if username else {}
    counts = []
    for size in (1, 3, 7):
        with recorded_statements(app) as statements:
            resp = client.get(f"/api/v1/project/?q=(page_size:{size})", headers=headers)
        assert resp.status_code == 200 and len(resp.get_json()["result"]) == size
        assert all(r["positions"] for r in resp.get_json()["result"])
        counts.append(len(statements))
    assert counts[0] == counts[1] == counts[2], counts
    position_queries = [s for s in statements if re.search(r"FROM position\b", s)]
    assert len(position_queries) == 1, position_queries


def test_get_project__one_query_for_its_positions(app, client):
    project = _project(app, BOOKSTREET)
    with recorded_statements(app) as statements:
        assert client.get(f"/api/v1/project/{project.id}").status_code == 200
    assert len([s for s in statements if re.search(r"FROM position\b", s)]) == 1


# --- service_record ---


def _record_ids(app, clause) -> set[int]:
    with app.app_context():
        return set(db.session.scalars(select(ServiceRecord.id).where(clause)))


def test_list_service_records__volunteer_reads_own_only(app, client):
    vid = _volunteer_id(app, "vol_longting")
    headers = _token(client, "vol_longting")
    ids = _list_ids(client, "service_record", headers)
    assert ids and set(ids) == _record_ids(app, ServiceRecord.volunteer_id == vid)
    item = client.get(f"/api/v1/service_record/{ids[0]}", headers=headers).get_json()["result"]
    with app.app_context():
        row = db.session.get(ServiceRecord, ids[0])
        assert (item["minutes"], item["volunteer_no"], item["source"], item["status"]) == (
            row.minutes, row.volunteer_no, row.source, row.status)
    other = min(_record_ids(app, ServiceRecord.volunteer_id != vid))
    assert client.get(f"/api/v1/service_record/{other}", headers=headers).status_code == 404


def test_list_service_records__group_admin_reads_own_groups_records(app, client):
    with app.app_context():
        group = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == "清平街道社区志愿服务队"))
        group_id = group.id
    ids = _list_ids(client, "service_record", _token(client, "shunhe_team_admin"))
    assert ids and set(ids) == _record_ids(app, ServiceRecord.group_id == group_id)


def test_list_service_records__officer_reads_own_region(app, client):
    ids = _list_ids(client, "service_record", _token(client, "shunhe_officer"))
    inside = _record_ids(app, ServiceRecord.region_path.startswith("410000/410200/410203/"))
    assert ids and set(ids) == inside


def test_list_service_records__anonymous_is_refused(app, client):
    assert client.get("/api/v1/service_record/").status_code == 401


# --- hour_code ---


def _position_id(app, project_name, index=0) -> int:
    with app.app_context():
        return db.session.scalars(select(Position.id).join(Project).where(Project.name == project_name)
                                  .order_by(Position.id)).all()[index]


def _generate(client, username, position, **body):
    payload = {"position": position, "served_on": today().isoformat(), "minutes": 90, "max_uses": None, **body}
    return client.post("/api/v1/hour_code/", json=payload, headers=_token(client, username))


def _redeem(client, username, code):
    return client.post("/api/v1/hour_code/redeem", json={"code": code}, headers=_token(client, username))


def test_generate_code__group_admin_gets_12_digits(app, client):
    position = _position_id(app, BOOKSTREET)
    resp = _generate(client, "longting_team_admin", position, minutes=150, max_uses=20)
    assert resp.status_code == 201, resp.data
    body = resp.get_json()
    assert isinstance(body["code"], str) and re.fullmatch(r"\d{12}", body["code"])
    assert (body["position"], body["minutes"], body["max_uses"], body["uses"], body["served_on"]) == (
        position, 150, 20, 0, today().isoformat())
    with app.app_context():
        row = db.session.scalar(select(HourCode).where(HourCode.code == body["code"]))
        assert (row.position_id, row.activity_on, row.minutes, row.max_uses) == (position, today(), 150, 20)


def test_generate_code__max_uses_may_be_left_out(app, client):
    resp = client.post("/api/v1/hour_code/", headers=_token(client, "longting_team_admin"), json={
        "position": _position_id(app, BOOKSTREET), "served_on": today().isoformat(), "minutes": 60})
    assert resp.status_code == 201, resp.data
    assert resp.get_json()["max_uses"] is None


@pytest.mark.parametrize("username,project", [
    ("longting_team_admin", CULTURE),  # another group's project
    ("longting_corps_admin", BOOKSTREET),  # a child team's project: its own admins make codes
    ("shunhe_team_admin", BOOKSTREET),
])
def test_generate_code__another_groups_position_is_404(app, client, username, project):
    resp = _generate(client, username, _position_id(app, project))
    assert resp.status_code == 404
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(HourCode).where(
            HourCode.created_on >= utcnow() - timedelta(minutes=5))) == 0


def test_generate_code__unknown_position_is_404(app, client):
    assert _generate(client, "longting_team_admin", 999999).status_code == 404


@pytest.mark.parametrize("username,status", [("vol_longting", 403), ("longting_officer", 403)])
def test_generate_code__volunteer_or_officer_is_refused(app, client, username, status):
    assert _generate(client, username, _position_id(app, BOOKSTREET)).status_code == status


def test_generate_code__anonymous_is_401(app, client):
    resp = client.post("/api/v1/hour_code/", json={"position": _position_id(app, BOOKSTREET),
                                                   "served_on": today().isoformat(), "minutes": 60})
    assert resp.status_code == 401


@pytest.mark.parametrize("body,field,message", [
    ({"position": "1"}, "position", "请填写岗位编号（数字）。"),
    ({"position": True}, "position", "请填写岗位编号（数字）。"),
    ({"served_on": "2026/01/01"}, "served_on", "请按 YYYY-MM-DD 格式填写服务日期。"),
    ({"served_on": "2026-02-30"}, "served_on", "请按 YYYY-MM-DD 格式填写服务日期。"),
    ({"minutes": "90"}, "minutes", "请以整数分钟填写服务时长。"),
    ({"minutes": 1.5}, "minutes", "请以整数分钟填写服务时长。"),
    ({"max_uses": 0}, "max_uses", "最多使用次数须为不小于 1 的整数；留空表示不限次数。"),
    ({"max_uses": "5"}, "max_uses", "最多使用次数须为不小于 1 的整数；留空表示不限次数。"),
])
def test_generate_code__wrong_field_is_400_naming_it(app, client, body, field, message):
    position = body.pop("position", _position_id(app, BOOKSTREET))
    resp = _generate(client, "longting_team_admin", position, **body)
    assert resp.status_code == 400
    assert resp.get_json()["message"] == {field: [message]}


@pytest.mark.parametrize("body", [None, [], "x"])
def test_generate_code__not_a_json_object_is_400(app, client, body):
    resp = client.post("/api/v1/hour_code/", json=body, headers=_token(client, "longting_team_admin"))
    assert resp.status_code == 400
    assert resp.get_json()["message"] == "请以 JSON 对象提交时长码信息。"


@pytest.mark.parametrize("minutes", [0, 1441, -5])
def test_generate_code__minutes_out_of_range_is_400(app, client, minutes):
    resp = _generate(client, "longting_team_admin", _position_id(app, BOOKSTREET), minutes=minutes)
    assert resp.status_code == 400
    assert isinstance(resp.get_json()["message"], str) and resp.get_json()["message"]


def test_generate_code__date_outside_the_project_is_400(app, client):
    resp = _generate(client, "longting_team_admin", _position_id(app, BOOKSTREET),
                     served_on=(today() - timedelta(days=400)).isoformat())
    assert resp.status_code == 400
    assert "2" in resp.get_json()["message"]  # names the dates


def test_generate_code__closed_project_is_400(app, client):
    position = _position_id(app, ENDED)
    resp = _generate(client, "shunhe_team_admin", position, served_on=(today() - timedelta(days=20)).isoformat())
    assert resp.status_code == 400 and resp.get_json()["message"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(HourCode).where(
            HourCode.position_id == position, HourCode.created_on >= utcnow() - timedelta(minutes=5))) == 0


def test_redeem_code__volunteer_is_enrolled_and_credited(app, client):
    """vol_shunhe is no member of the bookstreet team: the code enrolls and credits her."""
    position = _position_id(app, BOOKSTREET)
    code = _generate(client, "longting_team_admin", position, minutes=150).get_json()["code"]
    vid = _volunteer_id(app, "vol_shunhe")
    with app.app_context():
        before = db.session.get(Volunteer, vid).total_minutes
    resp = _redeem(client, "vol_shunhe", code)
    assert resp.status_code == 200, resp.data
    body = resp.get_json()
    assert (body["minutes"], body["served_on"], body["source"], body["status"]) == (
        150, today().isoformat(), RecordSource.HOUR_CODE, RecordStatus.APPROVED)
    assert body["position"]["id"] == position and body["project"]["name"] == BOOKSTREET
    with app.app_context():
        record = db.session.get(ServiceRecord, body["id"])
        assert (record.volunteer_id, record.minutes) == (vid, 150)
        assert db.session.get(Volunteer, vid).total_minutes == before + 150
        enrollment = db.session.scalar(select(Enrollment).where(
            Enrollment.position_id == position, Enrollment.volunteer_id == vid))
        assert (enrollment.status, enrollment.origin) == (EnrollmentStatus.ACCEPTED, EnrollmentOrigin.HOUR_CODE)
        group_id = db.session.get(Project, record.project_id).group_id
        assert db.session.scalar(select(Membership.id).where(
            Membership.volunteer_id == vid, Membership.group_id == group_id)) is None
    # The record is the volunteer's to read through the API too.
    assert body["id"] in _list_ids(client, "service_record", _token(client, "vol_shunhe"))


def test_redeem_code__second_use_by_the_same_volunteer_is_400(app, client):
    code = _generate(client, "longting_team_admin", _position_id(app, BOOKSTREET)).get_json()["code"]
    assert _redeem(client, "vol_shunhe", code).status_code == 200
    resp = _redeem(client, "vol_shunhe", code)
    assert resp.status_code == 400 and resp.get_json()["message"]
    vid = _volunteer_id(app, "vol_shunhe")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ServiceRecord).join(HourCode).where(
            HourCode.code == code, ServiceRecord.volunteer_id == vid)) == 1


def test_redeem_code__used_up_code_is_400(app, client):
    code = _generate(client, "longting_team_admin", _position_id(app, BOOKSTREET), max_uses=1).get_json()["code"]
    assert _redeem(client, "vol_shunhe", code).status_code == 200
    resp = _redeem(client, "vol_longting", code)
    assert resp.status_code == 400 and resp.get_json()["message"]


@pytest.mark.parametrize("body", [{}, {"code": 12345678901}, {"code": None}, [], None])
def test_redeem_code__malformed_body_is_400(app, client, body):
    resp = client.post("/api/v1/hour_code/redeem", json=body, headers=_token(client, "vol_shunhe"))
    assert resp.status_code == 400
    assert resp.get_json()["message"] == '请提交 {"code": "…"}，填写 12 位时长码。'


@pytest.mark.parametrize("username,status", [("longting_team_admin", 403), ("longting_officer", 403)])
def test_redeem_code__non_volunteer_role_is_refused(app, client, username, status):
    code = _generate(client, "longting_team_admin", _position_id(app, BOOKSTREET)).get_json()["code"]
    assert _redeem(client, username, code).status_code == status


def test_redeem_code__anonymous_is_401(app, client):
    assert client.post("/api/v1/hour_code/redeem", json={"code": "000000000000"}).status_code == 401


def test_redeem_code__repeated_wrong_codes_are_rate_limited(app, client):
    """After the failure budget even a valid code is refused, without crediting anything."""
    code = _generate(client, "longting_team_admin", _position_id(app, BOOKSTREET)).get_json()["code"]
    wrong = f"{(int(code) + 1) % 10**12:012d}"
    statuses = [_redeem(client, "vol_shunhe", wrong).status_code for _ in range(10)]
    assert statuses == [400] * 10
    resp = _redeem(client, "vol_shunhe", code)
    assert resp.status_code in (400, 429) and resp.get_json()["message"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ServiceRecord).join(HourCode).where(
            HourCode.code == code)) == 0
    # Another volunteer is not held back by her failures.
    assert _redeem(client, "vol_longting", code).status_code == 200


def test_openapi__documents_the_hour_code_endpoints(app, client):
    spec = client.get("/api/v1/_openapi", headers=_token(client, "admin")).get_json()
    assert "post" in spec["paths"]["/api/v1/hour_code/"] and "post" in spec["paths"]["/api/v1/hour_code/redeem"]
    listed = spec["components"]["schemas"]["ProjectApi.get_list"]["properties"]
    assert {"positions", "status", "closed"} <= set(listed)


def test_redeem_code__concurrent_api_calls_hold_max_uses_and_never_fail(app, client):
    """12 simultaneous redemptions (three volunteers, four calls each) of a code with two uses:
    exactly two credits, two volunteers, every other call a 400 — never a 500 ("database is
    locked" on SQLite, a unique violation on PostgreSQL)."""
    import threading
    from collections import Counter

    code = _generate(client, "longting_team_admin", _position_id(app, BOOKSTREET), max_uses=2).get_json()["code"]
    headers = {name: _token(client, name) for name in ("vol_longting", "vol_shunhe", "vol_zhengzhou")}
    calls = [name for name in headers for _ in range(4)]
    barrier = threading.Barrier(len(calls))
    statuses: Counter = Counter()
    lock = threading.Lock()

    def run(name):
        own = app.test_client()
        barrier.wait(timeout=60)
        status = own.post("/api/v1/hour_code/redeem", json={"code": code}, headers=headers[name]).status_code
        with lock:
            statuses[status] += 1

    threads = [threading.Thread(target=run, args=(name,)) for name in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert statuses == Counter({200: 2, 400: 10}), statuses
    with app.app_context():
        hour_code = db.session.scalar(select(HourCode).where(HourCode.code == code))
        credited = db.session.scalars(select(ServiceRecord.volunteer_id).where(
            ServiceRecord.hour_code_id == hour_code.id)).all()
        assert hour_code.uses == 2 and len(credited) == len(set(credited)) == 2
