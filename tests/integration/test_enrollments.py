"""报名: 用户中心 → 我的项目 → 参加更多项目 → 报名, every refusal with its own message,
a minor's guardian confirmation, 取消报名 and the revived row, invitations accepted or
declined, and the quota under concurrent sign-ups (issue 6 items 3 and 4)."""
from __future__ import annotations

import re
import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import event, func, select

from app.extensions import db
from app.models import (
    Enrollment, Membership, MembershipStatus, Position, Project, ReviewStatus, User, Volunteer, VolunteerGroup,
)
from app.security import pii
from app.services import memberships, projects
from app.services.clock import utcnow
from app.services.errors import DomainError
from app.services.idcards import age_on

MEMBERS_ONLY = "报名失败，请先加入团体后再报名项目"  # GLOSSARY.md, verbatim
BOOKSTORE = "书店街文明劝导"  # 北书店 team, anyone, in progress; positions: 文明劝导员 (no age limit), 交通秩序引导员 (18-65)
CULTURE = "龙亭公园文化讲解"  # 文化馆 team, members only; 文化讲解员 (18+), 青少年讲解助理 (14+, minors)
ELDERLY = "清平街道敬老助餐"  # ended
RIVER = "汴河环境清洁行动"  # anyone, starts in 7 days; 河道清洁员 (18-65)
BACKFILL = "龙亭区志愿服务时长补录"


def _text(resp) -> str:
    return re.sub(r"\s+", " ", resp.get_data(as_text=True))


def _position_id(app, project_name, index=0):
    with app.app_context():
        project = db.session.scalar(select(Project).where(Project.name == project_name))
        return project.positions[index].id


def _enrolled_count(app, position_id):
    with app.app_context():
        return db.session.get(Position, position_id).enrolled_count


def _volunteer_id(app, username):
    with app.app_context():
        return db.session.scalar(select(Volunteer.id).join(User, User.id == Volunteer.user_id)
                                 .where(User.username == username))


def _enrollment(app, position_id, volunteer_id):
    with app.app_context():
        e = db.session.scalar(select(Enrollment).where(Enrollment.position_id == position_id,
                                                       Enrollment.volunteer_id == volunteer_id))
        return None if e is None else {"id": e.id, "status": e.status, "origin": e.origin,
                                       "guardian_confirmed_on": e.guardian_confirmed_on}


def _edit(app, model, pk, **values):
    with app.app_context():
        row = db.session.get(model, pk)
        for key, value in values.items():
            setattr(row, key, value)
        db.session.commit()


def _fill(app, position_id):
    with app.app_context():
        position = db.session.get(Position, position_id)
        position.quota = position.enrolled_count
        db.session.commit()


def _sign_up(client, position_id, **data):
    return client.post(f"/my/projects/sign-up/{position_id}", data=data, follow_redirects=True)


# --- 报名 through the pages ---


def test_sign_up__volunteer_signs_up_from_project_page(app, client, login_as):
    position_id = _position_id(app, BOOKSTORE)
    vid = _volunteer_id(app, "vol_shunhe")
    before = _enrolled_count(app, position_id)
    login_as("vol_shunhe")
    # 我的项目 → 参加更多项目 → the public list → the project → 报名.
    my = _text(client.get("/my/projects/"))
    assert "我的项目" in my and 'href="/public/projects/"' in my and "参加更多项目" in my
    with app.app_context():
        pid = db.session.get(Position, position_id).project_id
    page = _text(client.get(f"/public/projects/{pid}"))
    assert f'action="/my/projects/sign-up/{position_id}"' in page and "报名" in page
    resp = _sign_up(client, position_id)
    assert "您已报名" in _text(resp)
    enrollment = _enrollment(app, position_id, vid)
    assert (enrollment["status"], enrollment["origin"]) == ("accepted", "self")
    assert _enrolled_count(app, position_id) == before + 1
    my = _text(client.get("/my/projects/"))
    assert BOOKSTORE in my and f'href="/my/hours/apply/{enrollment["id"]}"' in my and "申请时长" in my
    assert 'id="enrollment-%d" data-status="accepted"' % enrollment["id"] in my


def test_sign_up__members_only_refused_with_exact_message(app, client, login_as):
    position_id = _position_id(app, CULTURE)
    vid = _volunteer_id(app, "vol_shunhe")  # not a member of 文化馆
    before = _enrolled_count(app, position_id)
    login_as("vol_shunhe")
    resp = _sign_up(client, position_id)
    assert MEMBERS_ONLY in _text(resp)
    assert _enrollment(app, position_id, vid) is None and _enrolled_count(app, position_id) == before


def test_sign_up__members_only_pending_member_refused_active_member_accepted(app, client, login_as):
    position_id = _position_id(app, CULTURE)
    vid = _volunteer_id(app, "vol_shunhe")
    with app.app_context():
        group = db.session.scalar(select(VolunteerGroup).join(Project, Project.group_id == VolunteerGroup.id)
                                  .where(Project.name == CULTURE))
        volunteer = db.session.get(Volunteer, vid)
        membership = memberships.place_member(group, volunteer, status=MembershipStatus.PENDING, origin="request")
        db.session.commit()
        membership_id = membership.id
    login_as("vol_shunhe")
    assert MEMBERS_ONLY in _text(_sign_up(client, position_id))
    _edit(app, Membership, membership_id, status=MembershipStatus.ACTIVE)
    assert MEMBERS_ONLY not in _text(_sign_up(client, position_id))
    assert _enrollment(app, position_id, vid)["status"] == "accepted"


def test_sign_up__full_position_refused(app, client, login_as):
    position_id = _position_id(app, BOOKSTORE)
    vid = _volunteer_id(app, "vol_shunhe")
    _fill(app, position_id)
    login_as("vol_shunhe")
    assert "该岗位名额已满。" in _text(_sign_up(client, position_id))
    assert _enrollment(app, position_id, vid) is None


def test_sign_up__closed_by_clock_refused(app, client, login_as):
    position_id = _position_id(app, ELDERLY, 1)  # 上门探访员 of an ended project
    vid = _volunteer_id(app, "vol_shunhe")  # a member of 清平
    login_as("vol_shunhe")
    assert "该项目已结项，不能再报名。" in _text(_sign_up(client, position_id))
    assert _enrollment(app, position_id, vid) is None


def test_sign_up__suspended_project_refused(app, client, login_as):
    position_id = _position_id(app, BOOKSTORE)
    with app.app_context():
        pid = db.session.get(Position, position_id).project_id
    _edit(app, Project, pid, is_suspended=True)
    login_as("vol_shunhe")
    assert "该项目已结项，不能再报名。" in _text(_sign_up(client, position_id))
    assert _enrollment(app, position_id, _volunteer_id(app, "vol_shunhe")) is None


def test_sign_up__backfill_project_404_and_refused_by_the_service(app, client, login_as, db_session):
    position_id = _position_id(app, BACKFILL)
    vid = _volunteer_id(app, "vol_longting")
    login_as("vol_longting")
    assert client.post(f"/my/projects/sign-up/{position_id}").status_code == 404
    volunteer, position = db.session.get(Volunteer, vid), db.session.get(Position, position_id)
    with pytest.raises(DomainError) as err:
        projects.sign_up(volunteer, position)
    assert "时间补录招募项目不能由志愿者自行报名" in str(err.value)


def test_sign_up__over_max_age_refused(app, client, login_as):
    position_id = _position_id(app, BOOKSTORE, 1)  # 交通秩序引导员: 18..65
    vid = _volunteer_id(app, "vol_shunhe")
    with app.app_context():
        born = db.session.get(Volunteer, vid).birth_date
    _edit(app, Volunteer, vid, birth_date=born.replace(year=born.year - 30))  # now 75
    login_as("vol_shunhe")
    assert "该岗位仅限65周岁及以下的志愿者报名。" in _text(_sign_up(client, position_id))
    assert _enrollment(app, position_id, vid) is None


def test_sign_up__minor_under_min_age_refused(app, client, login_as):
    position_id = _position_id(app, CULTURE, 0)  # 文化讲解员: 18+
    vid = _volunteer_id(app, "vol_minor")  # 16, a member of 文化馆
    login_as("vol_minor")
    assert "该岗位仅限18周岁及以上的志愿者报名。" in _text(_sign_up(client, position_id))
    assert _enrollment(app, position_id, vid) is None


def test_sign_up__minor_where_minors_not_allowed_refused(app, client, login_as):
    position_id = _position_id(app, BOOKSTORE, 0)  # no age limit, adults only
    vid = _volunteer_id(app, "vol_minor")
    login_as("vol_minor")
    assert "该岗位不接受未满18周岁的志愿者报名。" in _text(_sign_up(client, position_id))
    assert _enrollment(app, position_id, vid) is None


def test_sign_up__already_signed_up_refused(app, client, login_as):
    position_id = _position_id(app, BOOKSTORE, 0)  # vol_longting is enrolled (demo)
    before = _enrolled_count(app, position_id)
    login_as("vol_longting")
    assert "您已报名该岗位。" in _text(_sign_up(client, position_id))
    assert _enrolled_count(app, position_id) == before


def test_sign_up__unapproved_volunteer_refused(app, db_session):
    volunteer = db.session.scalar(select(Volunteer).where(Volunteer.status == ReviewStatus.PENDING).limit(1))
    position = db.session.get(Position, _position_id(app, BOOKSTORE))
    with pytest.raises(DomainError) as err:
        projects.sign_up(volunteer, position)
    assert "只有审核通过的志愿者才能报名项目" in str(err.value)
    assert projects.enrollment_of(position, volunteer) is None


def test_sign_up__officer_and_group_admin_have_no_sign_up(app, client, login_as):
    position_id = _position_id(app, BOOKSTORE)
    for username in ("kaifeng_officer", "longting_team_admin"):
        login_as(username)
        assert client.post(f"/my/projects/sign-up/{position_id}").status_code in (302, 403)
        assert "sign-up-form" not in client.get(f"/public/projects/{_project_of(app, position_id)}").get_data(as_text=True)
        client.get("/logout/")


def _project_of(app, position_id):
    with app.app_context():
        return db.session.get(Position, position_id).project_id


# --- A minor's guardian confirmation ---


def _minor_position(app) -> int:
    """A position of 书店街文明劝导 (anyone) that takes minors of 14 and over."""
    with app.app_context():
        project = db.session.scalar(select(Project).where(Project.name == BOOKSTORE))
        position = Position(project_id=project.id, group_path=project.group_path, region_id=project.region_id,
                            region_path=project.region_path, name="小小劝导员", quota=5, min_age=14,
                            allows_minors=True, default_minutes=60, enrolled_count=0)
        db.session.add(position)
        db.session.commit()
        return position.id


def test_sign_up__minor_needs_guardian_phone_on_file_and_consent(app, client, login_as):
    position_id = _minor_position(app)
    vid = _volunteer_id(app, "vol_minor")
    with app.app_context():
        guardian_phone = pii.decrypt(db.session.get(Volunteer, vid).guardian_phone_enc)
    login_as("vol_minor")
    page = _text(client.get(f"/public/projects/{_project_of(app, position_id)}"))
    assert 'id="guardian-note"' in page and 'name="guardian_phone"' in page
    assert "请填写监护人的手机号码" in _text(_sign_up(client, position_id))
    wrong = guardian_phone[:-1] + ("0" if guardian_phone[-1] != "0" else "1")
    assert "与登记的监护人手机号码不一致" in _text(_sign_up(client, position_id, guardian_phone=wrong,
                                                            guardian_consent="1"))
    assert "报名须经监护人同意" in _text(_sign_up(client, position_id, guardian_phone=guardian_phone))
    assert _enrollment(app, position_id, vid) is None and _enrolled_count(app, position_id) == 0
    resp = _sign_up(client, position_id, guardian_phone=f"+86 {guardian_phone}", guardian_consent="1")
    assert "您已报名" in _text(resp)
    enrollment = _enrollment(app, position_id, vid)
    assert enrollment["status"] == "accepted" and enrollment["guardian_confirmed_on"] is not None
    assert _enrolled_count(app, position_id) == 1


def test_sign_up__minor_without_guardian_phone_on_file_refused(app, client, login_as):
    position_id = _minor_position(app)
    vid = _volunteer_id(app, "vol_minor")
    _edit(app, Volunteer, vid, guardian_phone_enc=None, guardian_phone_masked=None)
    login_as("vol_minor")
    assert "尚未登记监护人手机号码" in _text(_sign_up(client, position_id, guardian_phone="13800000000",
                                                     guardian_consent="1"))
    assert _enrollment(app, position_id, vid) is None


def test_sign_up__adult_needs_no_guardian(app, db_session):
    position = db.session.get(Position, _minor_position(app))
    volunteer = db.session.get(Volunteer, _volunteer_id(app, "vol_shunhe"))
    enrollment = projects.sign_up(volunteer, position)
    assert enrollment.status == "accepted" and enrollment.guardian_confirmed_on is None


# --- 取消报名 and the revived row ---


def test_cancel__before_the_first_shift_frees_the_place_and_sign_up_revives_the_row(app, client, login_as):
    position_id = _position_id(app, RIVER)  # starts in 7 days
    vid = _volunteer_id(app, "vol_longting")
    before = _enrolled_count(app, position_id)
    login_as("vol_longting")
    _sign_up(client, position_id)
    first = _enrollment(app, position_id, vid)
    assert first["status"] == "accepted" and _enrolled_count(app, position_id) == before + 1
    my = _text(client.get("/my/projects/"))
    assert f'action="/my/projects/{first["id"]}/cancel"' in my and "取消报名" in my
    resp = client.post(f"/my/projects/{first['id']}/cancel", follow_redirects=True)
    assert "已取消报名" in _text(resp)
    assert _enrollment(app, position_id, vid)["status"] == "cancelled"
    assert _enrolled_count(app, position_id) == before
    assert 'data-status="cancelled"' in _text(client.get("/my/projects/"))
    # Cancelling twice changes nothing.
    client.post(f"/my/projects/{first['id']}/cancel")
    assert _enrolled_count(app, position_id) == before
    _sign_up(client, position_id)
    again = _enrollment(app, position_id, vid)
    assert again["id"] == first["id"] and again["status"] == "accepted"
    assert _enrolled_count(app, position_id) == before + 1
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Enrollment).where(
            Enrollment.position_id == position_id, Enrollment.volunteer_id == vid)) == 1


def test_cancel__after_the_first_shift_began_refused(app, client, login_as):
    position_id = _position_id(app, BOOKSTORE)  # started 45 days ago
    vid = _volunteer_id(app, "vol_longting")
    enrollment = _enrollment(app, position_id, vid)
    before = _enrolled_count(app, position_id)
    login_as("vol_longting")
    assert f'action="/my/projects/{enrollment["id"]}/cancel"' not in _text(client.get("/my/projects/"))
    resp = client.post(f"/my/projects/{enrollment['id']}/cancel", follow_redirects=True)
    assert "首个班次已开始，不能再取消报名" in _text(resp)
    assert _enrollment(app, position_id, vid)["status"] == "accepted" and _enrolled_count(app, position_id) == before


def test_cancel__deadline_is_the_first_shift(app, db_session):
    position = db.session.get(Position, _position_id(app, RIVER))
    project = position.project
    assert projects.cancel_deadline(position) == project.starts_at  # no shift: the project's start
    from datetime import time as wall

    position.shift_start = wall(9, 30)  # the project starts 08:00 local
    assert projects.cancel_deadline(position) == project.starts_at + timedelta(minutes=90)
    position.shift_start = wall(6, 0)  # before the project's start: the start counts
    assert projects.cancel_deadline(position) == project.starts_at


def test_cancel__someone_elses_enrollment_is_404(app, client, login_as):
    position_id = _position_id(app, RIVER)
    other = _enrollment(app, position_id, _volunteer_id(app, "vol_shunhe"))  # demo: vol_shunhe is enrolled
    login_as("vol_longting")
    for action in ("cancel", "accept", "decline"):
        assert client.post(f"/my/projects/{other['id']}/{action}").status_code == 404
    assert client.post("/my/projects/99999999/cancel").status_code == 404
    assert _enrollment(app, position_id, _volunteer_id(app, "vol_shunhe"))["status"] == "accepted"


# --- Invitations, accepted or declined in 我的项目 ---


def _invite(app, project_name, username, index=0):
    position_id = _position_id(app, project_name, index)
    vid = _volunteer_id(app, username)
    with app.app_context():
        position, volunteer = db.session.get(Position, position_id), db.session.get(Volunteer, vid)
        projects.place(position, volunteer, status="invited", origin="invitation")
        db.session.commit()
    return position_id, vid, _enrollment(app, position_id, vid)["id"]


def test_invitation__accepted_over_quota(app, client, login_as):
    position_id, vid, eid = _invite(app, BOOKSTORE, "vol_shunhe")
    _fill(app, position_id)
    before = _enrolled_count(app, position_id)
    login_as("vol_shunhe")
    my = _text(client.get("/my/projects/"))
    assert f'id="enrollment-{eid}" data-status="invited"' in my and "接受" in my and "拒绝" in my
    assert "您已接受邀请" in _text(client.post(f"/my/projects/{eid}/accept", follow_redirects=True))
    assert _enrollment(app, position_id, vid)["status"] == "accepted"
    assert _enrollment(app, position_id, vid)["origin"] == "invitation"
    assert _enrolled_count(app, position_id) == before + 1  # past the quota: the admin invited


def test_invitation__declined_holds_no_place(app, client, login_as):
    position_id, vid, eid = _invite(app, BOOKSTORE, "vol_shunhe")
    before = _enrolled_count(app, position_id)
    login_as("vol_shunhe")
    assert "您已拒绝邀请" in _text(client.post(f"/my/projects/{eid}/decline", follow_redirects=True))
    assert _enrollment(app, position_id, vid)["status"] == "declined"
    assert _enrolled_count(app, position_id) == before
    assert "该邀请已失效" in _text(client.post(f"/my/projects/{eid}/accept", follow_redirects=True))
    assert _enrollment(app, position_id, vid)["status"] == "declined"


def test_invitation__closed_project_cannot_be_accepted(app, client, login_as):
    position_id, vid, eid = _invite(app, BOOKSTORE, "vol_shunhe")
    _edit(app, Project, _project_of(app, position_id), closed_on=utcnow() - timedelta(minutes=1))
    login_as("vol_shunhe")
    assert "该项目已结项，不能再报名" in _text(client.post(f"/my/projects/{eid}/accept", follow_redirects=True))
    assert _enrollment(app, position_id, vid)["status"] == "invited"


def test_invitation__minor_accepts_with_guardian_confirmation(app, client, login_as):
    position_id = _minor_position(app)
    vid = _volunteer_id(app, "vol_minor")
    with app.app_context():
        projects.place(db.session.get(Position, position_id), db.session.get(Volunteer, vid),
                       status="invited", origin="invitation")
        db.session.commit()
        guardian_phone = pii.decrypt(db.session.get(Volunteer, vid).guardian_phone_enc)
    eid = _enrollment(app, position_id, vid)["id"]
    login_as("vol_minor")
    assert "请填写监护人的手机号码" in _text(client.post(f"/my/projects/{eid}/accept", follow_redirects=True))
    assert _enrollment(app, position_id, vid)["status"] == "invited"
    client.post(f"/my/projects/{eid}/accept", data={"guardian_phone": guardian_phone, "guardian_consent": "1"})
    enrollment = _enrollment(app, position_id, vid)
    assert enrollment["status"] == "accepted" and enrollment["guardian_confirmed_on"] is not None


def test_invitation__service_refuses_members_only_and_checks_age(app):
    from flask import g

    with app.test_request_context():
        g.user = db.session.scalar(select(User).where(User.username == "culture_team_admin"))
        position = db.session.get(Position, _position_id(app, CULTURE))
        with pytest.raises(DomainError, match="不限"):
            projects.invite(position, db.session.get(Volunteer, _volunteer_id(app, "vol_shunhe")))
    with app.test_request_context():
        g.user = db.session.scalar(select(User).where(User.username == "longting_team_admin"))
        position = db.session.get(Position, _position_id(app, BOOKSTORE, 1))  # 18..65
        with pytest.raises(DomainError, match="18"):
            projects.invite(position, db.session.get(Volunteer, _volunteer_id(app, "vol_minor")))
        db.session.rollback()


# --- 我的项目 ---


def test_my_projects__lists_statuses_and_query_count_is_constant(app, client, login_as):
    with app.app_context():
        engine = db.engine
    login_as("vol_longting")

    def queries():
        count = [0]

        def bump(*args):
            count[0] += 1
        event.listen(engine, "before_cursor_execute", bump)
        try:
            html = client.get("/my/projects/").get_data(as_text=True)
        finally:
            event.remove(engine, "before_cursor_execute", bump)
        return count[0], html

    few, html = queries()
    assert BOOKSTORE in html and CULTURE in html
    _invite(app, RIVER, "vol_longting")
    _invite(app, BOOKSTORE, "vol_longting", 1)
    more, html = queries()
    assert more == few and html.count('data-status="invited"') == 2


def test_my_projects__no_volunteer_record(app, client, login_as):
    login_as("admin")
    assert client.get("/my/projects/").status_code == 200


# --- The quota under concurrency ---


def _eligible_volunteers(app, position_id, n):
    """Approved volunteers of 18..65 not in the position yet."""
    with app.app_context():
        taken = set(db.session.scalars(select(Enrollment.volunteer_id).where(Enrollment.position_id == position_id)))
        today = date.today()
        found = [v.id for v in db.session.scalars(
            select(Volunteer).where(Volunteer.status == ReviewStatus.APPROVED).order_by(Volunteer.id))
            if v.id not in taken and v.birth_date and 18 <= age_on(v.birth_date, today) <= 65]
        assert len(found) >= n
        return found[:n]


def _race(app, position_id, volunteer_ids):
    """Sign the volunteers up to the position from concurrent threads; return
    (successes, refusal messages, unexpected errors)."""
    barrier = threading.Barrier(len(volunteer_ids))
    results, errors = [], []
    lock = threading.Lock()

    def run(vid):
        with app.app_context():
            try:
                volunteer = db.session.get(Volunteer, vid)
                position = db.session.get(Position, position_id)
                db.session.rollback()  # start the race with no transaction open
                barrier.wait(timeout=30)
                projects.sign_up(volunteer, position)
                db.session.commit()
                outcome = "ok"
            except DomainError as err:
                db.session.rollback()
                outcome = str(err)
            except Exception as err:  # noqa: BLE001 - a "database is locked" would land here
                db.session.rollback()
                with lock:
                    errors.append(repr(err))
                return
            finally:
                db.session.remove()
            with lock:
                results.append(outcome)

    threads = [threading.Thread(target=run, args=(vid,)) for vid in volunteer_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return [r for r in results if r == "ok"], [r for r in results if r != "ok"], errors


def test_quota__concurrent_sign_ups_never_pass_the_quota(app):
    """On SQLite: IMMEDIATE transactions queue (no "database is locked"); on PostgreSQL
    the position's row lock and the conditional UPDATE. Either way exactly the free places."""
    position_id = _position_id(app, RIVER)
    before = _enrolled_count(app, position_id)
    with app.app_context():
        db.session.get(Position, position_id).quota = before + 3
        db.session.commit()
    volunteers = _eligible_volunteers(app, position_id, 8)
    ok, refused, errors = _race(app, position_id, volunteers)
    assert errors == []
    assert len(ok) == 3 and len(refused) == 5 and set(refused) == {"该岗位名额已满。"}
    assert _enrolled_count(app, position_id) == before + 3
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Enrollment).where(
            Enrollment.position_id == position_id, Enrollment.status == "accepted")) == before + 3


@pytest.mark.postgres
def test_quota__one_volunteer_signing_up_concurrently_gets_one_place(app):
    position_id = _position_id(app, RIVER)
    before = _enrolled_count(app, position_id)
    [vid] = _eligible_volunteers(app, position_id, 1)
    ok, refused, errors = _race(app, position_id, [vid] * 10)
    assert errors == [] and len(ok) == 1
    assert set(refused) == {"您已报名该岗位。"}
    assert _enrolled_count(app, position_id) == before + 1
