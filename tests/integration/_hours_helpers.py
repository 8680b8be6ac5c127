"""Shared helpers of the service-hours tests (test_hours, test_hour_codes,
test_ledger_state_machine, test_hours_concurrency): demo lookups, acting as a user,
and the ledger's invariants recomputed from scratch."""
from __future__ import annotations

import contextlib
from datetime import date, timedelta

from flask import g
from sqlalchemy import func, select

from app.extensions import db
from app.models import (
    Enrollment, EnrollmentStatus, Position, Project, RecordStatus, ReviewStatus, ServiceRecord, User, Volunteer,
    VolunteerDay,
)
from app.services.clock import today

BOOKSTORE = "书店街文明劝导"  # 北书店 team (longting_team_admin), open, anyone may sign up
BOOKSTORE_GUIDE = "文明劝导员"  # no age limits, adults only
BOOKSTORE_TRAFFIC = "交通秩序引导员"  # 18..65
CULTURE = "龙亭公园文化讲解"  # 文化馆 team (culture_team_admin), members only
CULTURE_GUIDE = "文化讲解员"  # 18+
CULTURE_YOUTH = "青少年讲解助理"  # 14+, minors allowed
ELDERLY = "清平街道敬老助餐"  # 清平 team (shunhe_team_admin), ended
BACKFILL = "龙亭区志愿服务时长补录"  # 龙亭 corps (longting_corps_admin), backfill
RIVER = "汴河环境清洁行动"  # starts in 7 days


@contextlib.contextmanager
def acting(app, username: str | None):
    """A request context in which ``username`` is the signed-in user (None: anonymous)."""
    with app.test_request_context():
        g.user = app.appbuilder.sm.find_user(username=username) if username else None
        yield


def volunteer_of(username: str) -> Volunteer:
    return db.session.scalar(select(Volunteer).join(User, User.id == Volunteer.user_id)
                             .where(User.username == username))


def position_of(project: str, position: str) -> Position:
    return db.session.scalar(select(Position).join(Project).where(Project.name == project,
                                                                  Position.name == position))


def project_of(name: str) -> Project:
    return db.session.scalar(select(Project).where(Project.name == name))


def yesterday() -> date:
    return today() - timedelta(days=1)


def free_day(volunteer_ids, project: Project, *, need: int = 1440) -> date:
    """A past day of ``project`` on which every volunteer has at least ``need`` minutes left."""
    from app.services.hours import project_days

    first, last = project_days(project)
    day = min(last, today())
    while day >= first:
        used = dict(db.session.execute(select(VolunteerDay.volunteer_id, VolunteerDay.minutes).where(
            VolunteerDay.volunteer_id.in_(list(volunteer_ids)), VolunteerDay.served_on == day)).all())
        if all(1440 - used.get(v, 0) >= need for v in volunteer_ids):
            return day
        day -= timedelta(days=1)
    raise AssertionError("no free day")


def adult_volunteers(n: int, *, exclude=()) -> list[Volunteer]:
    """``n`` approved adult volunteers of the demo (with volunteer numbers)."""
    limit = today().replace(year=today().year - 19)
    rows = db.session.scalars(select(Volunteer).where(
        Volunteer.status == ReviewStatus.APPROVED, Volunteer.volunteer_no.is_not(None),
        Volunteer.birth_date <= limit, Volunteer.birth_date >= limit.replace(year=limit.year - 40),
        Volunteer.id.not_in(list(exclude) or [0])).order_by(Volunteer.id).limit(n)).all()
    assert len(rows) == n
    return list(rows)


def accepted_in(position: Position) -> list[int]:
    return list(db.session.scalars(select(Enrollment.volunteer_id).where(
        Enrollment.position_id == position.id, Enrollment.status == EnrollmentStatus.ACCEPTED)
        .order_by(Enrollment.volunteer_id)))


def ledger_mismatches(volunteer_ids=None) -> list[str]:
    """Differences between the kept totals (Volunteer.total_minutes, volunteer_day) and a
    fresh SUM over approved records; empty when the ledger is exact."""
    approved = ServiceRecord.status == RecordStatus.APPROVED
    totals_q = select(ServiceRecord.volunteer_id, func.sum(ServiceRecord.minutes)).where(approved) \
        .group_by(ServiceRecord.volunteer_id)
    days_q = select(ServiceRecord.volunteer_id, ServiceRecord.served_on, func.sum(ServiceRecord.minutes)) \
        .where(approved).group_by(ServiceRecord.volunteer_id, ServiceRecord.served_on)
    kept_q = select(Volunteer.id, Volunteer.total_minutes)
    kept_days_q = select(VolunteerDay.volunteer_id, VolunteerDay.served_on, VolunteerDay.minutes)
    if volunteer_ids is not None:
        ids = sorted(set(volunteer_ids))
        totals_q = totals_q.where(ServiceRecord.volunteer_id.in_(ids))
        days_q = days_q.where(ServiceRecord.volunteer_id.in_(ids))
        kept_q = kept_q.where(Volunteer.id.in_(ids))
        kept_days_q = kept_days_q.where(VolunteerDay.volunteer_id.in_(ids))
    summed = {v: m for v, m in db.session.execute(totals_q)}
    summed_days = {(v, d): m for v, d, m in db.session.execute(days_q)}
    kept = {v: m for v, m in db.session.execute(kept_q)}
    kept_days = {(v, d): m for v, d, m in db.session.execute(kept_days_q) if m}
    problems = [f"volunteer {v}: total_minutes {kept[v]} != SUM {summed.get(v, 0)}"
                for v in kept if (kept[v] or 0) != (summed.get(v) or 0)]
    problems += [f"volunteer_day {k}: {kept_days.get(k)} != SUM {summed_days.get(k)}"
                 for k in set(summed_days) | set(kept_days) if (kept_days.get(k) or 0) != (summed_days.get(k) or 0)]
    return problems
