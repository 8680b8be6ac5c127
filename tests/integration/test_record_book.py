"""团体管理 → 培训与评价 (issue 7 item 2): training records and evaluations for the members
of the groups an admin administers directly; officers read those of their region."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import (
    Enrollment, Evaluation, Membership, MembershipStatus, Position, Training, Volunteer, VolunteerGroup,
)
from app.services import record_book
from app.services.errors import ScopeViolation
from tests.conftest import login
from tests.integration._hours_helpers import (
    BOOKSTORE, BOOKSTORE_GUIDE, CULTURE, CULTURE_GUIDE, acting, position_of, volunteer_of,
)

BOOKSTORE_TEAM = "北书店街道社区志愿服务队"  # longting_team_admin; vol_longting is a member
CULTURE_TEAM = "龙亭区文化馆志愿服务队"  # culture_team_admin; vol_longting is a member
LONGTING_CORPS = "龙亭区志愿服务总队"  # longting_corps_admin; parent of both teams
TRAINING = {"title": "应急救护培训", "provider": "开封市红十字会", "trained_on": "2026-06-01", "hours": "3.5"}


def _group(app, name) -> VolunteerGroup:
    with app.app_context():
        return db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == name))


def _ids(app, *usernames) -> list[int]:
    with app.app_context():
        return [volunteer_of(u).id for u in usernames]


def _members(app, group_name, n, *, exclude=()) -> list[int]:
    with app.app_context():
        group = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == group_name))
        return list(db.session.scalars(select(Membership.volunteer_id).where(
            Membership.group_id == group.id, Membership.status == MembershipStatus.ACTIVE,
            Membership.volunteer_id.not_in(list(exclude) or [0])).order_by(Membership.volunteer_id).limit(n)))


def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def _position_id(app, project, position) -> int:
    with app.app_context():
        return position_of(project, position).id


def _switch(client, username):
    client.get("/logout/")
    login(client, username)


def _train(client, group_id, volunteer_ids, **fields):
    return client.post(f"/group-admin/record-book/{group_id}/trainings",
                       data={**TRAINING, **fields, "volunteer": [str(v) for v in volunteer_ids]})


def _evaluate(client, group_id, volunteer_id, position_id, **fields):
    data = {"volunteer": str(volunteer_id), "position": str(position_id), "punctuality": "5", "attitude": "4",
            "skill": "4", "comment": "认真负责，准时到岗。", **fields}
    return client.post(f"/group-admin/record-book/{group_id}/evaluations", data=data)


# --- Training (培训) ---


def test_add_training__team_admin_records_it_for_ticked_members(app, client, login_as):
    team = _group(app, BOOKSTORE_TEAM)
    vol = _ids(app, "vol_longting")[0]
    other = _members(app, BOOKSTORE_TEAM, 1, exclude=[vol])[0]
    login_as("longting_team_admin")
    resp = _train(client, team.id, [vol, other])
    assert resp.status_code == 302
    with app.app_context():
        rows = db.session.scalars(select(Training).where(Training.title == TRAINING["title"])
                                  .order_by(Training.volunteer_id)).all()
        assert sorted(r.volunteer_id for r in rows) == sorted([vol, other])
        assert {(r.group_id, r.group_path, r.region_path, r.provider, r.minutes, r.trained_on) for r in rows} == {
            (team.id, team.group_path, team.region_path, "开封市红十字会", 210, date(2026, 6, 1))}
    page = client.get(f"/group-admin/record-book/?group={team.id}").get_data(as_text=True)
    assert "应急救护培训" in page and "3.5" in page


def test_add_training__is_kept_apart_from_service_hours(app, client, login_as):
    team = _group(app, BOOKSTORE_TEAM)
    vol = _ids(app, "vol_longting")[0]
    with app.app_context():
        before = db.session.get(Volunteer, vol).total_minutes
        trained = db.session.scalar(select(func.sum(Training.minutes)).where(Training.volunteer_id == vol)) or 0
    login_as("longting_team_admin")
    assert _train(client, team.id, [vol], hours="40").status_code == 302
    with app.app_context():
        assert db.session.get(Volunteer, vol).total_minutes == before
    _switch(client, "vol_longting")
    page = client.get("/my/record").get_data(as_text=True)
    total = f"{(trained + 2400) / 60:.2f}".rstrip("0").rstrip(".")
    assert "应急救护培训" in page and f'id="record-training-hours">{total}<' in page
    assert f"{before / 60:.2f}".rstrip("0").rstrip(".") in page


@pytest.mark.parametrize("field, value, message", [
    ("title", "  ", "请填写培训名称"),
    ("title", "培" * 121, "培训名称最多 120 个字"),
    ("provider", "", "请填写组织单位"),
    ("trained_on", "2026-13-01", "YYYY-MM-DD"),
    ("trained_on", (date.today() + timedelta(days=3)).isoformat(), "培训日期不能晚于今天"),
    ("hours", "0", "培训时长必须大于 0"),
    ("hours", "abc", "请填写小时数"),
    ("hours", "-2", "请填写小时数"),
])
def test_add_training__bad_field_is_refused_with_a_message_and_nothing_written(app, client, login_as,
                                                                             field, value, message):
    team = _group(app, BOOKSTORE_TEAM)
    vol = _ids(app, "vol_longting")[0]
    login_as("longting_team_admin")
    before = _count(app, Training)
    resp = _train(client, team.id, [vol], **{field: value})
    assert resp.status_code == 400
    assert message in resp.get_data(as_text=True)
    assert _count(app, Training) == before


def test_add_training__nobody_ticked_is_refused(app, client, login_as):
    team = _group(app, BOOKSTORE_TEAM)
    login_as("longting_team_admin")
    resp = _train(client, team.id, [])
    assert resp.status_code == 400 and "请至少勾选一名志愿者" in resp.get_data(as_text=True)


def test_add_training__same_training_twice_is_refused(app, client, login_as):
    team = _group(app, BOOKSTORE_TEAM)
    vol = _ids(app, "vol_longting")[0]
    login_as("longting_team_admin")
    assert _train(client, team.id, [vol]).status_code == 302
    before = _count(app, Training)
    resp = _train(client, team.id, [vol])
    assert resp.status_code == 400 and "已有这条培训记录" in resp.get_data(as_text=True)
    assert _count(app, Training) == before


def test_add_training__volunteer_outside_the_admins_groups_is_404_and_nothing_written(app, client, login_as):
    team = _group(app, BOOKSTORE_TEAM)
    vol, outsider = _ids(app, "vol_longting", "vol_shunhe")
    login_as("longting_team_admin")
    before = _count(app, Training)
    assert _train(client, team.id, [vol, outsider]).status_code == 404
    assert _train(client, team.id, ["x1"]).status_code == 404
    assert _count(app, Training) == before


def test_add_training__visible_non_member_is_refused_by_name(app, client, login_as):
    """A parent group's admin sees the children's members, but records only for members
    of the group itself: vol_longting belongs to the teams, not to the corps."""
    corps = _group(app, LONGTING_CORPS)
    vol = _ids(app, "vol_longting")[0]
    login_as("longting_corps_admin")
    before = _count(app, Training)
    resp = _train(client, corps.id, [vol])
    assert resp.status_code == 400
    assert "李明华 不是龙亭区志愿服务总队的成员" in resp.get_data(as_text=True)
    assert _count(app, Training) == before


def test_add_training__pending_member_is_refused(app, client, login_as):
    team = _group(app, BOOKSTORE_TEAM)
    vol = _ids(app, "vol_longting")[0]
    with app.app_context():
        db.session.scalar(select(Membership).where(Membership.group_id == team.id,
                                                   Membership.volunteer_id == vol)).status = MembershipStatus.PENDING
        db.session.commit()
    login_as("longting_team_admin")
    resp = _train(client, team.id, [vol])
    assert resp.status_code == 400 and "不是北书店街道社区志愿服务队的成员" in resp.get_data(as_text=True)


@pytest.mark.parametrize("username", ["culture_team_admin", "shunhe_team_admin", "longting_corps_admin"])
def test_add_training__another_groups_admin_gets_404(app, client, login_as, username):
    """Only the group's own admins write: another team's admin, and even the parent
    corps' admin (who reads the team), get 404."""
    team = _group(app, BOOKSTORE_TEAM)
    vol = _ids(app, "vol_longting")[0]
    login_as(username)
    before = _count(app, Training)
    assert _train(client, team.id, [vol]).status_code == 404
    assert client.get(f"/group-admin/record-book/?group={team.id}").status_code == 404
    assert _count(app, Training) == before


@pytest.mark.parametrize("username", ["longting_officer", "kaifeng_honors", "vol_longting"])
def test_add_training__officers_editors_and_volunteers_have_no_write(app, client, login_as, username):
    team = _group(app, BOOKSTORE_TEAM)
    vol = _ids(app, "vol_longting")[0]
    login_as(username)
    before = _count(app, Training)
    assert _train(client, team.id, [vol]).status_code in (302, 403)
    assert _count(app, Training) == before


def test_record_training__officer_in_scope_records_without_a_group_service_level(app):
    """Officers in scope may record trainings through the service (no group); the page
    offers it to group admins only (officers hold RecordBook read)."""
    fields = {"title": TRAINING["title"], "provider": TRAINING["provider"], "trained_on": TRAINING["trained_on"],
              "hours_text": TRAINING["hours"]}
    vol, outsider = _ids(app, "vol_longting", "vol_shunhe")
    with acting(app, "longting_officer"):
        rows = record_book.record_training([vol], group=None, **fields)
        assert (rows[0].group_id, rows[0].region_path) == (None, db.session.get(Volunteer, vol).region_path)
        with pytest.raises(ScopeViolation):
            record_book.record_training([outsider], group=None, **{**fields, "title": "另一个培训"})
        db.session.rollback()
    with acting(app, "kaifeng_honors"), pytest.raises(ScopeViolation):
        record_book.record_training([vol], group=None, **{**fields, "title": "另一个培训"})
    with acting(app, "longting_team_admin"), pytest.raises(ScopeViolation):
        record_book.record_training([vol], group=None, **{**fields, "title": "另一个培训"})


# --- Evaluation (评价) ---


def test_add_evaluation__team_admin_rates_a_member_on_a_position_rating_is_rounded_mean(app, client, login_as):
    team = _group(app, BOOKSTORE_TEAM)
    vol = _ids(app, "vol_longting")[0]
    position = _position_id(app, BOOKSTORE, BOOKSTORE_GUIDE)
    login_as("longting_team_admin")
    resp = _evaluate(client, team.id, vol, position, punctuality="5", attitude="5", skill="4")
    assert resp.status_code == 302
    with app.app_context():
        row = db.session.scalar(select(Evaluation).where(Evaluation.volunteer_id == vol,
                                                         Evaluation.position_id == position))
        assert (row.punctuality, row.attitude, row.skill, row.rating) == (5, 5, 4, 5)
        assert (row.group_id, row.group_path, row.position_id) == (team.id, team.group_path, position)
        project = db.session.get(Position, position).project
        assert (row.project_id, row.region_path) == (project.id, project.region_path)
    page = client.get(f"/group-admin/record-book/?group={team.id}").get_data(as_text=True)
    assert "认真负责，准时到岗。" in page
    _switch(client, "vol_longting")
    assert "认真负责，准时到岗。" in client.get("/my/record").get_data(as_text=True)


@pytest.mark.parametrize("scores, rating", [((5, 4, 4), 4), ((1, 1, 2), 1), ((3, 4, 4), 4), ((2, 2, 3), 2),
                                            ((1, 5, 5), 4), ((5, 5, 5), 5)])
def test_rating_of__rounded_mean(scores, rating):
    assert record_book.rating_of(*scores) == rating


@pytest.mark.parametrize("field, value, message", [
    ("punctuality", "0", "请选择 1 到 5 分"),
    ("attitude", "6", "请选择 1 到 5 分"),
    ("skill", "x", "请选择 1 到 5 分"),
    ("skill", "", "请选择 1 到 5 分"),
    ("comment", " ", "请填写评语"),
    ("comment", "好" * 501, "评语最多 500 个字"),
])
def test_add_evaluation__bad_scores_or_comment_are_refused(app, client, login_as, field, value, message):
    team = _group(app, BOOKSTORE_TEAM)
    vol = _ids(app, "vol_longting")[0]
    position = _position_id(app, BOOKSTORE, BOOKSTORE_GUIDE)
    login_as("longting_team_admin")
    before = _count(app, Evaluation)
    resp = _evaluate(client, team.id, vol, position, **{field: value})
    assert resp.status_code == 400
    assert message in resp.get_data(as_text=True)
    assert _count(app, Evaluation) == before


def test_add_evaluation__no_position_or_volunteer_chosen_is_refused(app, client, login_as):
    team = _group(app, BOOKSTORE_TEAM)
    vol = _ids(app, "vol_longting")[0]
    position = _position_id(app, BOOKSTORE, BOOKSTORE_GUIDE)
    login_as("longting_team_admin")
    before = _count(app, Evaluation)
    resp = _evaluate(client, team.id, vol, "")
    assert resp.status_code == 400 and "请选择岗位" in resp.get_data(as_text=True)
    resp = _evaluate(client, team.id, "", position)
    assert resp.status_code == 400 and "请选择要评价的志愿者" in resp.get_data(as_text=True)
    assert _count(app, Evaluation) == before


def test_add_evaluation__member_who_did_not_take_the_position_is_refused(app, client, login_as):
    team = _group(app, BOOKSTORE_TEAM)
    position = _position_id(app, BOOKSTORE, BOOKSTORE_GUIDE)
    with app.app_context():
        served = set(db.session.scalars(select(Enrollment.volunteer_id).where(Enrollment.position_id == position)))
    member = _members(app, BOOKSTORE_TEAM, 1, exclude=served)[0]
    login_as("longting_team_admin")
    before = _count(app, Evaluation)
    resp = _evaluate(client, team.id, member, position)
    assert resp.status_code == 400 and "未在书店街文明劝导担任文明劝导员岗位" in resp.get_data(as_text=True)
    assert _count(app, Evaluation) == before


def test_add_evaluation__enrolled_non_member_is_refused(app, client, login_as):
    """Enrolled in the position (e.g. by an hour code) but not a member: not evaluated."""
    team = _group(app, BOOKSTORE_TEAM)
    vol = _ids(app, "vol_longting")[0]
    position = _position_id(app, BOOKSTORE, BOOKSTORE_GUIDE)
    with app.app_context():
        db.session.scalar(select(Membership).where(Membership.group_id == team.id,
                                                   Membership.volunteer_id == vol)).status = MembershipStatus.LEFT
        db.session.commit()
    login_as("longting_team_admin")
    before = _count(app, Evaluation)
    resp = _evaluate(client, team.id, vol, position)
    assert resp.status_code in (400, 404)
    assert _count(app, Evaluation) == before


def test_add_evaluation__twice_on_the_same_position_is_refused(app, client, login_as):
    team = _group(app, BOOKSTORE_TEAM)
    vol = _ids(app, "vol_longting")[0]
    position = _position_id(app, BOOKSTORE, BOOKSTORE_GUIDE)
    login_as("longting_team_admin")
    assert _evaluate(client, team.id, vol, position).status_code == 302
    before = _count(app, Evaluation)
    resp = _evaluate(client, team.id, vol, position)
    assert resp.status_code == 400 and "已有评价" in resp.get_data(as_text=True)
    assert _count(app, Evaluation) == before


def test_add_evaluation__enrollment_in_a_project_not_begun_does_not_count(app, client, login_as):
    team = _group(app, BOOKSTORE_TEAM)
    vol = _ids(app, "vol_longting")[0]
    position = _position_id(app, BOOKSTORE, BOOKSTORE_GUIDE)
    with app.app_context():
        from app.models import ServiceRecord

        pos = db.session.get(Position, position)
        pos.project.ends_at = pos.project.ends_at.replace(year=2031)
        pos.project.starts_at = pos.project.starts_at.replace(year=2030)
        db.session.execute(ServiceRecord.__table__.update().where(
            ServiceRecord.position_id == position, ServiceRecord.volunteer_id == vol).values(status="rejected"))
        db.session.commit()
    login_as("longting_team_admin")
    before = _count(app, Evaluation)
    assert _evaluate(client, team.id, vol, position).status_code == 400
    assert _count(app, Evaluation) == before


@pytest.mark.parametrize("case", ["other_groups_position", "other_admin", "corps_admin", "unknown_position",
                                  "outsider_volunteer", "bad_id"])
def test_add_evaluation__out_of_scope_ids_get_404_and_nothing_written(app, client, login_as, case):
    team, culture = _group(app, BOOKSTORE_TEAM), _group(app, CULTURE_TEAM)
    vol, outsider = _ids(app, "vol_longting", "vol_shunhe")
    bookstore = _position_id(app, BOOKSTORE, BOOKSTORE_GUIDE)
    culture_position = _position_id(app, CULTURE, CULTURE_GUIDE)
    username, group_id, volunteer, position = {
        "other_groups_position": ("longting_team_admin", team.id, vol, culture_position),
        "other_admin": ("culture_team_admin", team.id, vol, bookstore),
        "corps_admin": ("longting_corps_admin", team.id, vol, bookstore),
        "unknown_position": ("longting_team_admin", team.id, vol, 987654),
        "outsider_volunteer": ("longting_team_admin", team.id, outsider, bookstore),
        "bad_id": ("longting_team_admin", team.id, "1e3", bookstore),
    }[case]
    login_as(username)
    before = _count(app, Evaluation)
    assert _evaluate(client, group_id, volunteer, position).status_code == 404
    assert _count(app, Evaluation) == before
    if case == "other_admin":
        # The culture team's own admin may rate a member who served on the culture position.
        with app.app_context():
            served = db.session.scalars(select(Enrollment.volunteer_id).join(
                Membership, Membership.volunteer_id == Enrollment.volunteer_id).where(
                Enrollment.position_id == culture_position, Enrollment.status == "accepted",
                Membership.group_id == culture.id, Membership.status == MembershipStatus.ACTIVE,
                Enrollment.volunteer_id != vol).limit(1)).first()
        assert _evaluate(client, culture.id, served, culture_position).status_code == 302


# --- Reading: the page, officers' region list ---


def test_record_book_page__team_admin_sees_members_positions_and_menu(app, client, login_as):
    team = _group(app, BOOKSTORE_TEAM)
    login_as("longting_team_admin")
    resp = client.get("/group-admin/record-book/")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert f'data-group="{team.id}"' in page and "李明华" in page
    assert "书店街文明劝导 · 文明劝导员" in page
    assert "培训与评价" in client.get("/").get_data(as_text=True)


def test_record_book_page__officers_read_their_region_only(app, client, login_as):
    team = _group(app, BOOKSTORE_TEAM)
    qingping = _group(app, "清平街道社区志愿服务队")
    vol = _ids(app, "vol_longting")[0]
    shunhe_member = _ids(app, "vol_shunhe")[0]
    login_as("longting_team_admin")
    assert _train(client, team.id, [vol], title="龙亭区培训").status_code == 302
    _switch(client, "shunhe_team_admin")
    assert _train(client, qingping.id, [shunhe_member], title="顺河区培训").status_code == 302
    _switch(client, "longting_officer")
    page = client.get("/group-admin/record-book/").get_data(as_text=True)
    assert "龙亭区培训" in page and "顺河区培训" not in page
    assert 'id="training-form"' not in page  # read-only
    _switch(client, "kaifeng_officer")
    page = client.get("/group-admin/record-book/").get_data(as_text=True)
    assert "龙亭区培训" in page and "顺河区培训" in page


def test_record_book_page__member_search_and_malformed_arguments(app, client, login_as):
    team = _group(app, BOOKSTORE_TEAM)
    login_as("longting_team_admin")
    page = client.get(f"/group-admin/record-book/?group={team.id}&q=李明华").get_data(as_text=True)
    assert "李明华" in page
    for query in ("group=abc", "group=99999999999", "group=0", "page=-1", "page=x"):
        assert client.get(f"/group-admin/record-book/?{query}").status_code in (200, 404)


def test_record_book_page__volunteer_without_groups_gets_a_message(client, login_as):
    login_as("vol_longting")
    resp = client.get("/group-admin/record-book/")
    assert resp.status_code == 200 and 'id="no-groups"' in resp.get_data(as_text=True)


def test_record_book__changes_are_audited_in_the_groups_scope(app, client, login_as):
    from app.models import AuditEvent

    team = _group(app, BOOKSTORE_TEAM)
    vol = _ids(app, "vol_longting")[0]
    login_as("longting_team_admin")
    _train(client, team.id, [vol])
    _evaluate(client, team.id, vol, _position_id(app, BOOKSTORE, BOOKSTORE_GUIDE))
    with app.app_context():
        events = db.session.execute(select(AuditEvent.object_type, AuditEvent.actor_name, AuditEvent.group_path)
                                    .where(AuditEvent.object_type.in_(["training", "evaluation"]),
                                           AuditEvent.actor_name != "system")).all()
    assert sorted(events) == [("evaluation", "longting_team_admin", team.group_path),
                              ("training", "longting_team_admin", team.group_path)]


# --- The contract used by certificates ---


def test_contract__trainings_evaluations_and_honors_of_a_volunteer_newest_first(app):
    from app.services.honors import honors_of_group, honors_of_volunteer

    with app.app_context():
        vol = volunteer_of("vol_longting")
        team = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == BOOKSTORE_TEAM))
        for day in (date(2026, 3, 1), date(2026, 5, 1)):
            db.session.add(Training(volunteer_id=vol.id, group_id=team.id, group_path=team.group_path, title="t",
                                    provider="p", trained_on=day, minutes=60, region_id=team.region_id,
                                    region_path=team.region_path))
        db.session.commit()
        days = [t.trained_on for t in record_book.trainings_of(vol)]
        assert days == sorted(days, reverse=True) and {date(2026, 5, 1), date(2026, 3, 1)} <= set(days)
        assert [t.trained_on for t in record_book.trainings_of(vol, limit=1)] == days[:1]
        assert [e.comment for e in record_book.evaluations_of(vol)] == ["讲解生动，准时到岗，深受游客好评。"]
        assert [h.title for h in honors_of_volunteer(vol)] == ["开封市优秀志愿者"]
        assert [h.title for h in honors_of_group(team)] == ["开封市最佳志愿服务组织"]
        assert record_book.trainings_of(volunteer_of("vol_shunhe")) == []
