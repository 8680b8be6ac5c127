"""Project services without HTTP: the open/public predicates, age rules, the enroll
primitive (create, revive, quota, over quota) and the frozen region."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from app.demo import BEISHUDIAN_TEAM
from app.extensions import db
from app.models import (
    Enrollment, EnrollmentOrigin, EnrollmentStatus, Position, Project, User, Volunteer, VolunteerGroup,
)
from app.services import projects
from app.services.clock import utcnow
from app.services.errors import DomainError


def _project(name):
    return db.session.scalar(select(Project).where(Project.name == name))


def _position(project_name, position_name):
    return db.session.scalar(select(Position).join(Project).where(
        Project.name == project_name, Position.name == position_name))


def _volunteer(username):
    return db.session.scalar(select(Volunteer).join(User, User.id == Volunteer.user_id)
                             .where(User.username == username))


def _open_names(now=None):
    return set(db.session.scalars(select(Project.name).where(projects.open_clause(now))))


def test_open_clause__matches_is_closed(db_session):
    every = db.session.scalars(select(Project)).all()
    assert _open_names() == {p.name for p in every if not p.is_closed()}
    assert "清平街道敬老助餐" not in _open_names() and "书店街文明劝导" in _open_names()


def test_open_clause__manual_close_and_suspension_close(db_session):
    project = _project("书店街文明劝导")
    project.closed_on = utcnow() - timedelta(minutes=1)
    db.session.flush()
    assert project.name not in _open_names() and project.is_closed()
    project.closed_on = None
    project.is_suspended = True
    db.session.flush()
    assert project.name not in _open_names() and project.is_closed()


def test_open_clause__future_manual_close_is_still_open(db_session):
    project = _project("书店街文明劝导")
    project.closed_on = utcnow() + timedelta(days=1)
    db.session.flush()
    assert project.name in _open_names()
    assert project.name not in _open_names(utcnow() + timedelta(days=2))


def test_public_clause__hides_backfill_and_unapproved_groups(db_session):
    names = set(db.session.scalars(select(Project.name).where(projects.public_clause())))
    assert "龙亭区志愿服务时长补录" not in names and "书店街文明劝导" in names
    group = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == BEISHUDIAN_TEAM))
    group.status = "suspended"
    db.session.flush()
    names = set(db.session.scalars(select(Project.name).where(projects.public_clause())))
    assert "书店街文明劝导" not in names


def test_check_age__limits_and_minors(db_session):
    minor, adult = _volunteer("vol_minor"), _volunteer("vol_longting")
    helper = _position("龙亭公园文化讲解", "青少年讲解助理")  # 14+, minors allowed
    guide = _position("龙亭公园文化讲解", "文化讲解员")  # 18+
    traffic = _position("书店街文明劝导", "交通秩序引导员")  # 18..65
    projects.check_age(helper, minor)
    projects.check_age(guide, adult)
    with pytest.raises(DomainError, match="18"):
        projects.check_age(guide, minor)
    plain = _position("书店街文明劝导", "文明劝导员")  # no limits, minors not allowed
    with pytest.raises(DomainError):
        projects.check_age(plain, minor)
    # 18 on the activity day passes where minors are not allowed.
    birthday_18 = date(minor.birth_date.year + 18, minor.birth_date.month, 1) + timedelta(days=31)
    projects.check_age(plain, minor, on_day=birthday_18)
    with pytest.raises(DomainError, match="65"):
        projects.check_age(traffic, adult, on_day=date(adult.birth_date.year + 67, 1, 1))


def test_enroll__creates_accepted_row_with_copies_and_counts(db_session):
    position = _position("书店街文明劝导", "文明劝导员")
    volunteer = _volunteer("vol_shunhe")
    before = position.enrolled_count
    assert projects.enrollment_of(position, volunteer) is None
    enrollment = projects.enroll(position, volunteer, origin=EnrollmentOrigin.SELF)
    assert (enrollment.status, enrollment.origin, enrollment.volunteer_name) == ("accepted", "self", "王秀英")
    assert enrollment.volunteer_no == volunteer.volunteer_no
    assert enrollment.region_path == position.project.region_path
    assert enrollment.group_path == position.project.group_path
    assert position.enrolled_count == before + 1
    assert projects.is_enrolled(position, volunteer)
    # Again: a no-op.
    assert projects.enroll(position, volunteer).id == enrollment.id
    assert position.enrolled_count == before + 1


def test_enroll__full_position_refused_unless_over_quota(db_session):
    position = _position("书店街文明劝导", "文明劝导员")
    position.quota = position.enrolled_count
    db.session.flush()
    volunteer = _volunteer("vol_shunhe")
    with pytest.raises(DomainError):
        projects.enroll(position, volunteer)
    assert projects.enrollment_of(position, volunteer) is None
    enrollment = projects.enroll(position, volunteer, origin=EnrollmentOrigin.HOUR_CODE, over_quota=True)
    assert enrollment.status == "accepted" and position.enrolled_count == position.quota + 1


def test_enroll__revives_cancelled_row(db_session):
    position = _position("书店街文明劝导", "文明劝导员")
    volunteer = _volunteer("vol_shunhe")
    first = projects.enroll(position, volunteer)
    first.status = EnrollmentStatus.CANCELLED
    projects.count_out(position)
    db.session.flush()
    count = position.enrolled_count
    again = projects.enroll(position, volunteer)
    assert again.id == first.id and again.status == "accepted" and position.enrolled_count == count + 1
    assert db.session.scalar(select(db.func.count()).select_from(Enrollment).where(
        Enrollment.position_id == position.id, Enrollment.volunteer_id == volunteer.id)) == 1


def test_project_region_frozen__once_anyone_enrolled(db_session):
    assert projects.project_region_frozen(_project("书店街文明劝导"))
    project = _project("汴河环境清洁行动")
    for enrollment in db.session.scalars(select(Enrollment).where(Enrollment.project_id == project.id)):
        db.session.delete(enrollment)
    db.session.flush()
    assert not projects.project_region_frozen(project)
    projects.enroll(project.positions[0], _volunteer("vol_shunhe"))
    assert projects.project_region_frozen(project)


# --- Status ---


def test_status_clause__matches_project_status(db_session):
    from app.services.projects import ProjectStatus, project_status, status_clause

    everything = db.session.scalars(select(Project)).all()
    for status in ProjectStatus:
        names = set(db.session.scalars(select(Project.name).where(status_clause(status))))
        assert names == {p.name for p in everything if project_status(p) == status}, status
    assert {project_status(p) for p in everything} == set(ProjectStatus)
    assert db.session.scalars(select(Project.name).where(status_clause("bogus"))).all() == []


def test_project_status__manual_close_is_closed(db_session):
    from app.services.projects import project_status

    project = _project("汴河环境清洁行动")
    assert project_status(project) == "upcoming"
    project.closed_on = utcnow()
    assert project_status(project) == "closed"


# --- 发布新项目 rules, as the group's admin ---


@pytest.fixture
def as_user(app):
    """Run service code in a request signed in as ``username`` (the scope comes from g.user)."""
    import contextlib

    from flask import g

    @contextlib.contextmanager
    def signed_in(username):
        with app.test_request_context():
            g.user = db.session.scalar(select(User).where(User.username == username))
            yield
            db.session.rollback()
    return signed_in


def _fields(**overrides):
    from app.services.clock import today

    start = today() + timedelta(days=1)
    values = dict(name=" 周末 导览 ", category="culture_sports", description="", risk_notice="", address="书店街",
                  region_code="", starts_at=f"{start}T08:00", ends_at=f"{start + timedelta(days=3)}T18:00",
                  recruit_scope="anyone", is_backfill=False)
    values.update(overrides)
    return values


POSITION = {"name": "导览员", "quota": "3", "default_hours": "2.5", "shift_start": "", "shift_end": ""}


def test_create_project__writes_project_and_positions(as_user):
    with as_user("longting_team_admin"):
        group = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == BEISHUDIAN_TEAM))
        project = projects.create_project(group, positions=[POSITION, {}], **_fields())
        assert project.name == "周末 导览" and project.region_path == group.region_path
        assert [(p.name, p.quota, p.default_minutes) for p in project.positions] == [("导览员", 3, 150)]
        assert project.starts_at.hour == 0 and not project.is_closed()


def test_create_project__every_error_at_once(as_user):
    from app.services.errors import ValidationFailed

    with as_user("longting_team_admin"):
        group = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == BEISHUDIAN_TEAM))
        before = db.session.scalar(select(db.func.count()).select_from(Project))
        with pytest.raises(ValidationFailed) as err:
            projects.create_project(group, positions=[
                {"name": "a", "quota": "1", "default_hours": "25"},
                {"name": "b", "quota": "x", "default_hours": "1", "shift_start": "25:00", "max_age": "16"},
                {"name": "c", "quota": "1", "default_hours": "1", "shift_start": "08:00", "shift_end": "08:00"},
            ], **_fields(name="", category="", address="", region_code="999999", recruit_scope="",
                         starts_at="soon", ends_at=""))
        fields = err.value.fields
        assert set(fields) == {"name", "category", "address", "region_code", "recruit_scope", "starts_at",
                               "ends_at", "positions-0-default_hours", "positions-1-quota",
                               "positions-1-shift_start", "positions-1-allows_minors", "positions-2-shift_end"}
        assert db.session.scalar(select(db.func.count()).select_from(Project)) == before


def test_create_project__other_group_is_scope_violation(as_user):
    from app.services.errors import ScopeViolation

    with as_user("longting_team_admin"):
        group = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == "龙亭区志愿服务总队"))
        with pytest.raises(ScopeViolation):
            projects.create_project(group, positions=[POSITION], **_fields())


def test_create_project__unapproved_group_refused(as_user):
    with as_user("longting_team_admin"):
        group = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == BEISHUDIAN_TEAM))
        group.status = "suspended"
        with pytest.raises(DomainError):
            projects.create_project(group, positions=[POSITION], **_fields())


def test_update_position__quota_below_enrolled_refused(as_user):
    from app.services.errors import ValidationFailed

    with as_user("longting_team_admin"):
        position = _position("书店街文明劝导", "文明劝导员")
        with pytest.raises(ValidationFailed) as err:
            projects.update_position(position, name=position.name, quota=str(position.enrolled_count - 1),
                                     default_hours="3")
        assert list(err.value.fields) == ["quota"]


def test_parse_hours_and_times():
    assert projects.parse_hours("2.5") == 150 and projects.parse_hours(3) == 180 and projects.parse_hours("") is None
    for bad in ("x", "nan", "inf", "1e999999"):
        with pytest.raises((ValueError, ArithmeticError)):
            projects.parse_hours(bad)
    assert str(projects.parse_time("08:30")) == "08:30:00"
    with pytest.raises(ValueError):
        projects.parse_time("8h")
    assert projects.parse_local_datetime("2025-05-01 08:00").hour == 8
