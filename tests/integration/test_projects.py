"""团体管理 → 我的项目 (发布新项目, positions, 结项, 邀请, 时间补录招募) and the public
志愿项目 list and project page (issue 6 items 1, 2, 4 and the project part of 10)."""
from __future__ import annotations

import re
from datetime import datetime, time, timedelta

import pytest
from sqlalchemy import and_, event, func, select, update

from app.demo import BEISHUDIAN_TEAM, LONGTING_CORPS
from app.extensions import db
from app.models import Enrollment, Position, Project, User, Volunteer, VolunteerGroup
from app.security import pii
from app.services.clock import to_utc, today

ADMIN_LIST = "/group-admin/projects/"
NEW = "/group-admin/projects/new"
BOOKSTORE = "书店街文明劝导"  # 北书店 team (longting_team_admin), anyone, in progress
CULTURE = "龙亭公园文化讲解"  # 文化馆 team (culture_team_admin), members only
ELDERLY = "清平街道敬老助餐"  # 清平 team (shunhe_team_admin), ended
RIVER = "汴河环境清洁行动"  # 顺河 corps, anyone, starts in 7 days
BACKFILL = "龙亭区志愿服务时长补录"  # 龙亭 corps (longting_corps_admin), backfill


# --- Helpers ---


def _project_id(app, name):
    with app.app_context():
        return db.session.scalar(select(Project.id).where(Project.name == name))


def _position_id(app, project_name, index=0):
    with app.app_context():
        project = db.session.scalar(select(Project).where(Project.name == project_name))
        return project.positions[index].id


def _position(app, position_id):
    with app.app_context():
        p = db.session.get(Position, position_id)
        return {"quota": p.quota, "enrolled": p.enrolled_count, "name": p.name}


def _project(app, project_id):
    with app.app_context():
        p = db.session.get(Project, project_id)
        return {"region_path": p.region_path, "closed_on": p.closed_on, "starts_at": p.starts_at,
                "ends_at": p.ends_at, "name": p.name, "is_closed": p.is_closed()}


def _volunteer(app, username):
    """(id, real name, volunteer number, plain ID number) of a demo volunteer."""
    with app.app_context():
        v = db.session.scalar(select(Volunteer).join(User, User.id == Volunteer.user_id)
                              .where(User.username == username))
        return v.id, v.real_name, v.volunteer_no, pii.decrypt(v.id_number_enc)


def _enrollment(app, position_id, volunteer_id):
    with app.app_context():
        e = db.session.scalar(select(Enrollment).where(Enrollment.position_id == position_id,
                                                       Enrollment.volunteer_id == volunteer_id))
        return None if e is None else (e.id, e.status, e.origin)


def _count(app, model):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def _text(resp) -> str:
    return re.sub(r"\s+", " ", resp.get_data(as_text=True))


def _local(days: int, hour: int) -> str:
    return f"{today() + timedelta(days=days):%Y-%m-%d}T{hour:02d}:00"


def _new_project(**overrides) -> dict:
    data = {
        "name": "书店街周末导览", "category": "culture_sports", "description": "周末导览。",
        "risk_notice": "注意交通安全。", "address": "开封市龙亭区书店街", "region_code": "",
        "starts_at": _local(1, 8), "ends_at": _local(10, 18), "recruit_scope": "anyone",
        "positions-0-name": "导览员", "positions-0-quota": "5", "positions-0-shift_start": "08:30",
        "positions-0-shift_end": "11:30", "positions-0-default_hours": "3", "positions-0-min_age": "16",
        "positions-0-max_age": "", "positions-0-allows_minors": "y",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def _field_errors(html) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, message in re.findall(r'class="help-block field-error" data-field="([^"]+)">([^<]*)<', html):
        found.setdefault(name, []).append(message)
    return found


# --- 团体管理 → 我的项目 ---


def test_list__group_admin_sees_own_groups_projects_with_status(app, client, login_as):
    login_as("longting_team_admin")
    html = _text(client.get(ADMIN_LIST))
    assert "我的项目" in html and "发布新项目" in html
    assert BOOKSTORE in html and CULTURE not in html and BACKFILL not in html
    assert re.search(r'data-status="open">.*?进行中', html)


def test_list__parent_admin_does_not_list_child_groups_projects(app, client, login_as):
    login_as("longting_corps_admin")
    html = _text(client.get(ADMIN_LIST))
    assert BACKFILL in html and "时间补录招募" in html
    assert BOOKSTORE not in html and CULTURE not in html


def test_list__closed_and_not_started_status(app, client, login_as):
    login_as("shunhe_team_admin")
    assert re.search(r'data-status="closed">.*?已结项', _text(client.get(ADMIN_LIST)))
    client.get("/logout/")
    login_as("admin")
    html = _text(client.get(ADMIN_LIST))
    assert re.search(r'data-status="upcoming">.*?未开始', html) and RIVER in html


def test_list__query_count_constant(app, client, login_as):
    with app.app_context():
        engine = db.engine
    login_as("admin")

    def queries(url):
        count = [0]

        def bump(*args):
            count[0] += 1
        event.listen(engine, "before_cursor_execute", bump)
        try:
            assert client.get(url).status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", bump)
        return count[0]

    few = queries(ADMIN_LIST)
    public_few = queries("/public/projects/")
    # More projects (with positions) on the page: the same number of statements.
    with app.app_context():
        source = db.session.scalar(select(Project).where(Project.name == BOOKSTORE))
        for i in range(5):
            copy = Project(**{c: getattr(source, c) for c in (
                "group_id", "group_path", "region_id", "region_path", "category", "address", "starts_at",
                "ends_at", "recruit_scope")}, name=f"复制项目{i}")
            copy.positions.append(Position(group_path=source.group_path, region_id=source.region_id,
                                           region_path=source.region_path, name="岗位", quota=3, enrolled_count=0))
            db.session.add(copy)
        db.session.commit()
    assert queries(ADMIN_LIST) == few
    assert queries("/public/projects/") == public_few


# --- 发布新项目 ---


def test_publish__group_admin_creates_project_with_positions(app, client, login_as):
    login_as("longting_team_admin")
    page = _text(client.get(NEW))
    assert "发布新项目" in page and "项目起止时间" in page and "时间补录招募" in page and "仅限本团体志愿者" in page
    assert "北书店街道社区志愿服务队" in page and 'name="positions-0-name"' in page
    resp = client.post(NEW, data=_new_project(**{
        "positions-1-name": "引导员", "positions-1-quota": "2", "positions-1-default_hours": "1.5"}))
    assert resp.status_code == 302, _text(resp)[-2000:]
    pid = int(resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
    with app.app_context():
        project = db.session.get(Project, pid)
        group = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == BEISHUDIAN_TEAM))
        assert project.group_id == group.id and project.region_path == group.region_path  # default region
        assert project.starts_at == to_utc(project.starts_at.__class__.fromisoformat(_local(1, 8)))
        assert project.starts_at.hour == 0  # 08:00 in Shanghai is 00:00 UTC
        assert (project.recruit_scope, project.is_backfill, project.closed_on) == ("anyone", False, None)
        first, second = project.positions
        assert (first.name, first.quota, first.default_minutes, first.min_age, first.allows_minors) == \
            ("导览员", 5, 180, 16, True)
        assert f"{first.shift_start:%H:%M}-{first.shift_end:%H:%M}" == "08:30-11:30"
        assert (second.name, second.default_minutes, second.shift_start, first.region_path) == \
            ("引导员", 90, None, project.region_path)
    html = _text(client.get(f"/group-admin/projects/{pid}"))
    assert "书店街周末导览" in html and "导览员" in html and "0 / 5" in html and "未开始" in html
    assert f'href="/group-admin/positions/{first.id}/timekeeping"' in html and "计时" in html


def test_publish__all_errors_at_once_nothing_written(app, client, login_as):
    login_as("longting_team_admin")
    before = (_count(app, Project), _count(app, Position))
    resp = client.post(NEW, data=_new_project(
        name="", category="nonsense", address="", starts_at="2020-13-45", ends_at=_local(-1, 8),
        recruit_scope="everyone", **{"positions-0-quota": "0", "positions-0-shift_end": "", "positions-0-min_age": "30",
                                     "positions-0-max_age": "20", "positions-0-default_hours": "x"}))
    assert resp.status_code == 400
    errors = _field_errors(resp.get_data(as_text=True))
    assert {"name", "category", "address", "starts_at", "recruit_scope", "positions-0-quota", "positions-0-shift_end",
            "positions-0-max_age", "positions-0-default_hours"} <= set(errors), errors
    assert "请填写项目名称。" in errors["name"] and "招募人数至少为1。" in errors["positions-0-quota"]
    assert (_count(app, Project), _count(app, Position)) == before


def test_publish__no_position_refused(app, client, login_as):
    login_as("longting_team_admin")
    before = _count(app, Project)
    data = {k: v for k, v in _new_project().items() if not k.startswith("positions-")}
    resp = client.post(NEW, data=data)
    assert resp.status_code == 400 and "请至少添加一个岗位。" in _text(resp)
    assert _count(app, Project) == before


def test_publish__region_must_lie_in_groups_region(app, client, login_as):
    login_as("longting_team_admin")  # 北书店街道 (410202001)
    before = _count(app, Project)
    resp = client.post(NEW, data=_new_project(region_code="410203001"))  # 清平街道, 顺河区
    assert resp.status_code == 400
    assert "项目所在区域须在团体所在区域" in " ".join(_field_errors(resp.get_data(as_text=True))["region_code"])
    assert _count(app, Project) == before
    # A community inside the group's street is fine.
    assert client.post(NEW, data=_new_project(region_code="410202001001")).status_code == 302


def test_publish__end_before_start_and_past_end_refused(app, client, login_as):
    login_as("longting_team_admin")
    resp = client.post(NEW, data=_new_project(starts_at=_local(5, 8), ends_at=_local(4, 8)))
    assert resp.status_code == 400 and "ends_at" in _field_errors(resp.get_data(as_text=True))
    resp = client.post(NEW, data=_new_project(starts_at=_local(-5, 8), ends_at=_local(-1, 8), is_backfill="y"))
    assert resp.status_code == 400 and "结束时间已过" in " ".join(_field_errors(resp.get_data(as_text=True))["ends_at"])


def test_publish__start_in_past_only_for_backfill(app, client, login_as):
    login_as("longting_team_admin")
    resp = client.post(NEW, data=_new_project(starts_at=_local(-30, 8)))
    assert resp.status_code == 400 and "starts_at" in _field_errors(resp.get_data(as_text=True))
    resp = client.post(NEW, data=_new_project(starts_at=_local(-30, 8), is_backfill="y"))
    assert resp.status_code == 302
    pid = int(resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
    with app.app_context():
        assert db.session.get(Project, pid).is_backfill


def test_publish__other_groups_id_is_404_and_nothing_written(app, client, login_as):
    login_as("longting_team_admin")
    with app.app_context():
        other = db.session.scalar(select(VolunteerGroup.id).where(VolunteerGroup.name == LONGTING_CORPS))
    before = _count(app, Project)
    assert client.get(f"{NEW}?group={other}").status_code == 404
    assert client.post(f"{NEW}?group={other}", data=_new_project()).status_code == 404
    assert _count(app, Project) == before


def test_publish__admin_of_several_groups_chooses_first(app, client, login_as):
    with app.app_context():
        from app.models import GroupAdmin

        user = db.session.scalar(select(User).where(User.username == "longting_team_admin"))
        corps = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == LONGTING_CORPS))
        db.session.add(GroupAdmin(user_id=user.id, group_id=corps.id))
        db.session.commit()
        corps_id = corps.id
    login_as("longting_team_admin")
    html = _text(client.get(NEW))
    assert "由哪个团体发布该项目" in html and f"group={corps_id}" in html
    assert "龙亭区" in _text(client.get(f"{NEW}?group={corps_id}"))


# --- The admin's project page: edit, positions, 结项 ---


def test_edit__region_frozen_once_anyone_enrolled(app, client, login_as):
    pid = _project_id(app, BOOKSTORE)
    before = _project(app, pid)["region_path"]
    login_as("longting_team_admin")
    page = _text(client.get(f"/group-admin/projects/{pid}/edit"))
    assert 'id="region-frozen"' in page and 'name="region_code"' not in page
    data = {"name": BOOKSTORE, "category": "civility", "address": "书店街", "starts_at": "", "ends_at": "",
            "recruit_scope": "anyone", "region_code": "410202001001"}
    with app.app_context():
        project = db.session.get(Project, pid)
        from app.views.projects import _local_input
        data.update(starts_at=_local_input(project.starts_at), ends_at=_local_input(project.ends_at))
    assert client.post(f"/group-admin/projects/{pid}/edit", data=data).status_code == 302
    assert _project(app, pid)["region_path"] == before  # the frozen region is not taken from the form
    # The service refuses it outright.
    with app.test_request_context():
        from flask import g

        from app.services import projects
        from app.services.errors import ValidationFailed
        g.user = db.session.scalar(select(User).where(User.username == "longting_team_admin"))
        project = db.session.get(Project, pid)
        with pytest.raises(ValidationFailed) as err:
            projects.update_project(project, region_code="410202001001")
        assert "region_code" in err.value.fields


def test_edit__region_changes_while_nobody_enrolled(app, client, login_as):
    login_as("longting_team_admin")
    resp = client.post(NEW, data=_new_project())
    pid = int(resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
    data = _new_project(region_code="410202001001")
    assert client.post(f"/group-admin/projects/{pid}/edit", data=data).status_code == 302
    assert _project(app, pid)["region_path"].endswith("410202001001/")
    with app.app_context():
        assert {p.region_path for p in db.session.get(Project, pid).positions} == {_project(app, pid)["region_path"]}


def _edit_form(app, pid, **overrides) -> dict:
    """The project's edit form as the page fills it, with ``overrides``."""
    from app.views.projects import _local_input

    with app.app_context():
        project = db.session.get(Project, pid)
        data = {"name": project.name, "category": project.category, "address": project.address,
                "description": project.description or "", "risk_notice": project.risk_notice or "",
                "recruit_scope": project.recruit_scope, "region_code": project.region_code,
                "starts_at": _local_input(project.starts_at), "ends_at": _local_input(project.ends_at)}
        if project.is_backfill:
            data["is_backfill"] = "y"
    data.update(overrides)
    return data


@pytest.mark.parametrize("username,name", [("culture_team_admin", CULTURE), ("longting_corps_admin", BACKFILL)])
def test_edit__start_cannot_move_past_recorded_hours(app, client, login_as, username, name):
    """Found by review: moving a running project's start into the future left its
    approved hours outside the project (and reopened cancellation)."""
    pid = _project_id(app, name)
    before = _project(app, pid)["starts_at"]
    login_as(username)
    resp = client.post(f"/group-admin/projects/{pid}/edit", data=_edit_form(app, pid, starts_at=_local(2, 8)))
    assert resp.status_code == 400
    assert "starts_at" in _field_errors(resp.get_data(as_text=True))
    assert _project(app, pid)["starts_at"] == before


def test_edit__backfill_start_may_move_earlier(app, client, login_as):
    pid = _project_id(app, BACKFILL)
    login_as("longting_corps_admin")
    resp = client.post(f"/group-admin/projects/{pid}/edit", data=_edit_form(app, pid, starts_at=_local(-400, 8)))
    assert resp.status_code == 302
    assert _project(app, pid)["starts_at"] == to_utc(datetime.combine(today() - timedelta(days=400), time(8)))


def test_cancel__refused_once_the_volunteer_has_hours_in_the_position(app, client, login_as):
    """A volunteer with service hours in a position keeps the enrollment behind them."""
    from app.models import EnrollmentStatus, ServiceRecord

    vid = _volunteer(app, "vol_longting")[0]
    with app.app_context():
        enrollment = db.session.scalar(select(Enrollment).join(ServiceRecord, and_(
            ServiceRecord.position_id == Enrollment.position_id, ServiceRecord.volunteer_id == vid))
            .join(Project, Project.id == Enrollment.project_id)
            .where(Enrollment.volunteer_id == vid, Enrollment.status == EnrollmentStatus.ACCEPTED,
                   Project.ends_at > to_utc(datetime.combine(today() + timedelta(days=3), time(0))))
            .limit(1))
        enrollment_id, position_id = enrollment.id, enrollment.position_id
        # Let the project start tomorrow, so only the recorded hours stand in the way.
        project = enrollment.project
        project.starts_at = to_utc(datetime.combine(today() + timedelta(days=1), time(8)))
        db.session.execute(update(Position).where(Position.id == position_id).values(shift_start=None))
        db.session.commit()
    login_as("vol_longting")
    client.post(f"/my/projects/{enrollment_id}/cancel")
    assert _enrollment(app, position_id, vid)[1] == EnrollmentStatus.ACCEPTED


def test_edit_position__quota_cannot_go_below_enrolled(app, client, login_as):
    pid = _project_id(app, BOOKSTORE)
    position_id = _position_id(app, BOOKSTORE)
    enrolled = _position(app, position_id)["enrolled"]
    login_as("longting_team_admin")
    url = f"/group-admin/projects/{pid}/positions/{position_id}/edit"
    data = {"name": "文明劝导员", "quota": str(enrolled - 1), "default_hours": "3"}
    resp = client.post(url, data=data)
    assert resp.status_code == 400 and f"招募人数不能少于已报名的{enrolled}人" in _text(resp)
    assert _position(app, position_id)["quota"] == 20
    data["quota"] = str(enrolled)
    assert client.post(url, data=data).status_code == 302
    assert _position(app, position_id)["quota"] == enrolled


def test_add_position__appears_on_the_page(app, client, login_as):
    pid = _project_id(app, BOOKSTORE)
    login_as("longting_team_admin")
    resp = client.post(f"/group-admin/projects/{pid}/positions/new",
                       data={"name": "摄影记录", "quota": "2", "default_hours": "2", "allows_minors": "y"})
    assert resp.status_code == 302
    assert "摄影记录" in _text(client.get(f"/group-admin/projects/{pid}"))
    resp = client.post(f"/group-admin/projects/{pid}/positions/new", data={"name": "", "quota": "-1"})
    assert resp.status_code == 400


def test_close__manual_close_then_project_accepts_nothing_new(app, client, login_as):
    pid = _project_id(app, BOOKSTORE)
    position_id = _position_id(app, BOOKSTORE)
    login_as("longting_team_admin")
    resp = client.post(f"/group-admin/projects/{pid}/close", follow_redirects=True)
    assert "已结项" in _text(resp)
    state = _project(app, pid)
    assert state["closed_on"] is not None and state["is_closed"]
    assert 'id="close-project"' not in _text(client.get(f"/group-admin/projects/{pid}"))
    # No edits of the project or its positions, no new positions, no invitations.
    resp = client.post(f"/group-admin/projects/{pid}/edit", data=_new_project(name="改名"), follow_redirects=True)
    assert "该项目已结项" in _text(resp) and _project(app, pid)["name"] == BOOKSTORE
    resp = client.post(f"/group-admin/projects/{pid}/positions/{position_id}/edit",
                       data={"name": "x", "quota": "99", "default_hours": "1"}, follow_redirects=True)
    assert "该项目已结项" in _text(resp) and _position(app, position_id)["quota"] == 20
    before = _count(app, Position)
    client.post(f"/group-admin/projects/{pid}/positions/new", data={"name": "x", "quota": "1", "default_hours": "1"})
    assert _count(app, Position) == before
    vid, name, number, _ = _volunteer(app, "vol_shunhe")
    resp = client.post(f"/group-admin/projects/{pid}/invite",
                       data={"position": position_id, "real_name": name, "volunteer_no": number}, follow_redirects=True)
    assert "该项目已结项，不能再邀请志愿者" in _text(resp) and _enrollment(app, position_id, vid) is None
    # Closing again is refused; the public page says 已结项 and offers no 报名.
    resp = client.post(f"/group-admin/projects/{pid}/close", follow_redirects=True)
    assert "该项目已结项。" in _text(resp)
    client.get("/logout/")
    login_as("vol_shunhe")
    page = _text(client.get(f"/public/projects/{pid}"))
    assert "已结项" in page and "sign-up-form" not in page
    resp = client.post(f"/my/projects/sign-up/{position_id}", follow_redirects=True)
    assert "该项目已结项，不能再报名" in _text(resp) and _enrollment(app, position_id, vid) is None


# --- Scope ---


def _admin_urls(app):
    pid = _project_id(app, BOOKSTORE)
    position_id = _position_id(app, BOOKSTORE)
    gets = [f"/group-admin/projects/{pid}", f"/group-admin/projects/{pid}/edit",
            f"/group-admin/projects/{pid}/positions/new", f"/group-admin/projects/{pid}/positions/{position_id}/edit"]
    posts = [(f"/group-admin/projects/{pid}/edit", _new_project(name="X")),
             (f"/group-admin/projects/{pid}/positions/new", {"name": "X", "quota": "1", "default_hours": "1"}),
             (f"/group-admin/projects/{pid}/positions/{position_id}/edit", {"name": "X", "quota": "99", "default_hours": "1"}),
             (f"/group-admin/projects/{pid}/close", {}),
             (f"/group-admin/projects/{pid}/invite", {"position": position_id, "real_name": "王秀英"}),
             (f"/group-admin/projects/{pid}/add-volunteer", {"position": position_id, "real_name": "王秀英"})]
    return pid, position_id, gets, posts


@pytest.mark.parametrize("username", ["culture_team_admin", "longting_corps_admin", "kaifeng_officer"])
def test_scope__others_get_404_on_a_groups_project_pages_and_posts(app, client, login_as, username):
    """Another group's admin, the parent group's admin (read-only over children) and an
    officer (no Project write): 404 or refused, and nothing changes."""
    pid, position_id, gets, posts = _admin_urls(app)
    login_as(username)
    expected = (404,) if username != "kaifeng_officer" else (302, 403)
    for url in gets:
        assert client.get(url).status_code in expected, url
    for url, data in posts:
        assert client.post(url, data=data).status_code in expected, url
    state = _project(app, pid)
    assert state["name"] == BOOKSTORE and state["closed_on"] is None
    assert _position(app, position_id)["quota"] == 20


def test_scope__unknown_and_huge_ids_are_404(app, client, login_as):
    login_as("longting_team_admin")
    for url in ("/group-admin/projects/999999", "/group-admin/projects/99999999999999999999",
                "/group-admin/projects/abc", "/public/projects/999999", "/public/projects/²"):
        assert client.get(url).status_code == 404, url


def test_scope__volunteer_cannot_reach_admin_pages(app, client, login_as):
    pid, position_id, gets, posts = _admin_urls(app)
    login_as("vol_longting")
    assert client.get(ADMIN_LIST).status_code in (302, 403)
    assert client.get(NEW).status_code in (302, 403)
    for url in gets:
        assert client.get(url).status_code in (302, 403), url
    for url, data in posts:
        assert client.post(url, data=data).status_code in (302, 403), url
    assert _project(app, pid)["closed_on"] is None


def test_scope__anonymous_cannot_reach_admin_or_my_pages(app, client):
    assert client.get(ADMIN_LIST).status_code in (302, 403)
    assert client.get("/my/projects/").status_code in (302, 403)
    position_id = _position_id(app, BOOKSTORE)
    assert client.post(f"/my/projects/sign-up/{position_id}").status_code in (302, 403)


# --- 邀请 ---


def test_invite__group_admin_invites_by_name_and_volunteer_number(app, client, login_as):
    pid = _project_id(app, BOOKSTORE)
    position_id = _position_id(app, BOOKSTORE)
    vid, name, number, _ = _volunteer(app, "vol_shunhe")
    login_as("longting_team_admin")
    resp = client.post(f"/group-admin/projects/{pid}/invite",
                       data={"position": position_id, "real_name": name, "volunteer_no": number}, follow_redirects=True)
    assert f"已邀请 {name} 参加" in _text(resp)
    assert _enrollment(app, position_id, vid)[1:] == ("invited", "invitation")
    # Again: already invited.
    resp = client.post(f"/group-admin/projects/{pid}/invite",
                       data={"position": position_id, "real_name": name, "volunteer_no": number}, follow_redirects=True)
    assert f"已邀请过 {name}" in _text(resp)


def test_invite__by_name_and_id_number_and_wrong_name_refused(app, client, login_as):
    pid = _project_id(app, BOOKSTORE)
    position_id = _position_id(app, BOOKSTORE)
    vid, name, number, id_number = _volunteer(app, "vol_shunhe")
    login_as("longting_team_admin")
    resp = client.post(f"/group-admin/projects/{pid}/invite", follow_redirects=True,
                       data={"position": position_id, "real_name": "王秀", "volunteer_no": number})
    assert "没有姓名与号码都匹配的已审核志愿者" in _text(resp) and _enrollment(app, position_id, vid) is None
    resp = client.post(f"/group-admin/projects/{pid}/invite", follow_redirects=True,
                       data={"position": position_id, "real_name": name, "id_type": "resident", "id_number": id_number})
    assert _enrollment(app, position_id, vid)[1] == "invited"


def test_invite__refused_for_members_only_project(app, client, login_as):
    pid = _project_id(app, CULTURE)
    position_id = _position_id(app, CULTURE)
    vid, name, number, _ = _volunteer(app, "vol_shunhe")
    login_as("culture_team_admin")
    page = _text(client.get(f"/group-admin/projects/{pid}"))
    assert 'id="invite-form"' not in page and "只有招募范围为“不限”的项目才能邀请志愿者" in page
    resp = client.post(f"/group-admin/projects/{pid}/invite", follow_redirects=True,
                       data={"position": position_id, "real_name": name, "volunteer_no": number})
    assert "只有招募范围为“不限”的项目才能邀请志愿者" in _text(resp)
    assert _enrollment(app, position_id, vid) is None


def test_invite__position_of_another_project_is_404(app, client, login_as):
    pid = _project_id(app, BOOKSTORE)
    other_position = _position_id(app, CULTURE)
    vid, name, number, _ = _volunteer(app, "vol_shunhe")
    login_as("longting_team_admin")
    assert client.post(f"/group-admin/projects/{pid}/invite",
                       data={"position": other_position, "real_name": name, "volunteer_no": number}).status_code == 404
    assert _enrollment(app, other_position, vid) is None


# --- 时间补录招募 ---


def test_backfill__admin_adds_volunteer_by_name_and_id_over_quota(app, client, login_as):
    pid = _project_id(app, BACKFILL)
    position_id = _position_id(app, BACKFILL)
    with app.app_context():
        position = db.session.get(Position, position_id)
        position.quota = position.enrolled_count  # full
        db.session.commit()
    before = _position(app, position_id)["enrolled"]
    vid, name, _, id_number = _volunteer(app, "vol_shunhe")
    login_as("longting_corps_admin")
    assert 'id="add-volunteer-form"' in _text(client.get(f"/group-admin/projects/{pid}"))
    resp = client.post(f"/group-admin/projects/{pid}/add-volunteer", follow_redirects=True,
                       data={"position": position_id, "real_name": name, "id_type": "resident", "id_number": id_number})
    assert f"已将 {name} 添加到" in _text(resp)
    assert _enrollment(app, position_id, vid)[1:] == ("accepted", "admin")
    assert _position(app, position_id)["enrolled"] == before + 1
    resp = client.post(f"/group-admin/projects/{pid}/add-volunteer", follow_redirects=True,
                       data={"position": position_id, "real_name": name, "id_type": "resident", "id_number": id_number})
    assert f"{name} 已报名该岗位" in _text(resp) and _position(app, position_id)["enrolled"] == before + 1


def test_backfill__wrong_id_number_refused(app, client, login_as):
    pid = _project_id(app, BACKFILL)
    position_id = _position_id(app, BACKFILL)
    vid, name, _, id_number = _volunteer(app, "vol_shunhe")
    login_as("longting_corps_admin")
    wrong = id_number[:-2] + ("00" if id_number[-2:] != "00" else "11")
    resp = client.post(f"/group-admin/projects/{pid}/add-volunteer", follow_redirects=True,
                       data={"position": position_id, "real_name": name, "id_type": "resident", "id_number": wrong})
    assert "没有姓名与号码都匹配的已审核志愿者" in _text(resp) and _enrollment(app, position_id, vid) is None


def test_backfill__not_offered_for_ordinary_projects(app, client, login_as):
    pid = _project_id(app, BOOKSTORE)
    position_id = _position_id(app, BOOKSTORE)
    vid, name, _, id_number = _volunteer(app, "vol_shunhe")
    login_as("longting_team_admin")
    assert 'id="add-volunteer-form"' not in _text(client.get(f"/group-admin/projects/{pid}"))
    resp = client.post(f"/group-admin/projects/{pid}/add-volunteer", follow_redirects=True,
                       data={"position": position_id, "real_name": name, "id_type": "resident", "id_number": id_number})
    assert "只有时间补录招募项目可以直接添加志愿者" in _text(resp) and _enrollment(app, position_id, vid) is None


# --- The public 志愿项目 list and project page ---


def test_public_list__anonymous_sees_projects_never_backfill(app, client):
    html = _text(client.get("/public/projects/"))
    assert "志愿项目" in html and BOOKSTORE in html and CULTURE in html
    assert BACKFILL not in html
    # Not in any search either.
    for query in ("q=补录", "q=龙亭", "region=410202", "category=community", "status=open", "region=龙亭区"):
        assert BACKFILL not in _text(client.get(f"/public/projects/?{query}")), query


def test_public_list__backfill_project_page_is_404(app, client, login_as):
    pid = _project_id(app, BACKFILL)
    assert client.get(f"/public/projects/{pid}").status_code == 404
    login_as("vol_longting")
    assert client.get(f"/public/projects/{pid}").status_code == 404


def test_public_list__search_by_keyword_region_category_status(app, client):
    def names(query):
        return set(re.findall(r'class="list-group-item-heading project-name">([^<]+)<',
                              client.get(f"/public/projects/?{query}").get_data(as_text=True)))

    assert names("q=文明") == {BOOKSTORE}
    assert names("q=%25") == set()  # a literal wildcard matches nothing
    assert names("region=410203") == {ELDERLY, RIVER, "校园周边护学岗"}
    assert names("region=顺河回族区") == names("region=410203")
    assert BOOKSTORE in names("region=北书店街道") and CULTURE not in names("region=北书店街道")
    assert names("region=no-such-place") == set()
    assert names("category=elderly") == {ELDERLY}
    assert names("category=bogus") == set()
    assert ELDERLY in names("status=closed") and BOOKSTORE not in names("status=closed")
    assert names("status=upcoming") == {RIVER}
    assert BOOKSTORE in names("status=open") and RIVER not in names("status=open")
    assert names("status=open&region=410203&category=public_security") == {"校园周边护学岗"}


def test_public_list__pages_with_next_link_no_count(app, client, monkeypatch):
    from app.services import projects

    monkeypatch.setattr(projects, "PUBLIC_PAGE_SIZE", 3)
    first = client.get("/public/projects/").get_data(as_text=True)
    assert len(re.findall(r'class="list-group-item project-item"', first)) == 3 and 'id="next-page"' in first
    last = client.get("/public/projects/?page=2").get_data(as_text=True)
    assert 'id="next-page"' not in last and 'id="previous-page"' in last


def test_public_list__unapproved_groups_projects_hidden(app, client):
    pid = _project_id(app, BOOKSTORE)
    with app.app_context():
        group = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == BEISHUDIAN_TEAM))
        group.status = "suspended"
        db.session.commit()
    assert BOOKSTORE not in _text(client.get("/public/projects/"))
    assert client.get(f"/public/projects/{pid}").status_code == 404


def test_public_page__positions_with_remaining_places_and_login_link(app, client):
    pid = _project_id(app, BOOKSTORE)
    position_id = _position_id(app, BOOKSTORE)
    p = _position(app, position_id)
    html = _text(client.get(f"/public/projects/{pid}"))
    assert BOOKSTORE in html and "北书店街道社区志愿服务队" in html and "开封市龙亭区书店街" in html
    assert "风险提示" in html and "请注意人身与交通安全" in html
    assert f'<td class="position-remaining">{p["quota"] - p["enrolled"]} / {p["quota"]}</td>' in html
    assert "18至65周岁" in html and "登录后报名" in html and "sign-up-form" not in html


def test_public_page__phone_width_markup(app, client):
    """Bootstrap 3 at phone width: the viewport meta, stacking columns and a scrolling table."""
    pid = _project_id(app, BOOKSTORE)
    listing = client.get("/public/projects/").get_data(as_text=True)
    page = client.get(f"/public/projects/{pid}").get_data(as_text=True)
    assert 'name="viewport"' in listing and "col-xs-12" in listing
    assert 'class="table-responsive"' in page


def test_menu__projects_menu_for_everyone(app, client, login_as):
    assert 'href="/public/projects/"' in client.get("/public/projects/").get_data(as_text=True)
    login_as("longting_team_admin")
    html = client.get("/public/projects/").get_data(as_text=True)
    assert 'href="/group-admin/projects/"' in html
    client.get("/logout/")
    login_as("vol_longting")
    html = client.get("/public/projects/").get_data(as_text=True)
    assert 'href="/my/projects/"' in html and 'href="/group-admin/projects/"' not in html


# --- 区域监管 → 志愿项目: officers read their region's projects and may close them ---


def test_oversight__officer_reads_region_projects_with_closed_column(app, client, login_as):
    login_as("shunhe_officer")
    html = _text(client.get("/projects/list/"))
    assert ELDERLY in html and RIVER in html and BOOKSTORE not in html
    assert "已结项" in html  # 清平街道敬老助餐 has ended


def test_oversight__officer_closes_a_project_of_the_region(app, client, login_as):
    pid = _project_id(app, RIVER)
    login_as("shunhe_officer")
    resp = client.post("/projects/action_post", data={"action": "suspend", "rowid": [pid]})
    assert resp.status_code == 302
    state = _project(app, pid)
    assert state["is_closed"] and state["closed_on"] is not None
    with app.app_context():
        assert db.session.get(Project, pid).is_suspended
    # Closed: no more sign-ups.
    client.get("/logout/")
    login_as("vol_longting")
    resp = client.post(f"/my/projects/sign-up/{_position_id(app, RIVER)}", follow_redirects=True)
    assert "该项目已结项，不能再报名" in _text(resp)


def test_oversight__officer_of_another_region_and_group_admins_cannot_close(app, client, login_as):
    pid = _project_id(app, RIVER)  # 顺河
    login_as("longting_officer")
    assert client.post("/projects/action_post", data={"action": "suspend", "rowid": [pid]}).status_code == 404
    client.get("/logout/")
    login_as("longting_team_admin")
    own = _project_id(app, BOOKSTORE)
    assert client.post("/projects/action_post", data={"action": "suspend", "rowid": [own]}).status_code in (302, 403)
    with app.app_context():
        assert not db.session.get(Project, pid).is_suspended and not db.session.get(Project, own).is_suspended
