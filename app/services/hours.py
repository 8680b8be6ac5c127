"""Service hours: the ledger (DESIGN.md §5 "Service record").

Minutes are integers. Approved records are never edited or deleted; a correction
is a new record that references the original. Every approved minute is counted
twice, in the same transaction as the record: in ``volunteer_day`` (whose CHECK
keeps a volunteer's day at 24 hours, whatever runs concurrently) and in
``Volunteer.total_minutes`` (the star level reads it).
"""
from __future__ import annotations

from datetime import date

from flask_babel import gettext
from sqlalchemy import select, update

from app.extensions import db
from app.models import (
    HourCode, Position, Project, RecordSource, RecordStatus, ServiceRecord, Volunteer, VolunteerDay,
)
from app.security.scope import current_scope, path_is_under
from app.services import reviews
from app.services.clock import to_local, today, utcnow
from app.services.errors import DomainError, ScopeViolation

DAY_MINUTES = 1440


def project_days(project: Project) -> tuple[date, date]:
    """The first and last local (Asia/Shanghai) day a project runs."""
    return to_local(project.starts_at).date(), to_local(project.closes_at()).date()


def check_service_day(project: Project, served_on: date) -> None:
    """The service date lies within the project and is not in the future.

    :raises DomainError: outside the project's days, or after today
    """
    first, last = project_days(project)
    if served_on > today():
        raise DomainError(gettext("The service date %(day)s lies in the future.", day=served_on.isoformat()))
    if not first <= served_on <= last:
        raise DomainError(gettext("The service date %(day)s lies outside the project (%(first)s to %(last)s).",
                                  day=served_on.isoformat(), first=first.isoformat(), last=last.isoformat()))


def check_minutes(minutes) -> int:
    """A record's length: a whole number of minutes, more than 0 and at most 24 hours.

    :raises DomainError: not an integer, or out of range
    """
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 0 < minutes <= DAY_MINUTES:
        raise DomainError(gettext("Service time must be more than 0 and at most 24 hours."))
    return minutes


def new_record(*, volunteer: Volunteer, project: Project, position: Position | None, served_on: date,
               minutes: int, source: str, status: str = RecordStatus.PENDING, **fields) -> ServiceRecord:
    """Write one ledger row with the copies it carries (the volunteer's name and number,
    the project's group, region and group paths); approved rows are credited at once.

    Checks the minutes and, except for corrections, the service date. Callers check
    who may write it (scope, enrollment) first.
    """
    if source != RecordSource.CORRECTION:
        check_minutes(minutes)
        check_service_day(project, served_on)
    record = ServiceRecord(
        volunteer_id=volunteer.id, volunteer_name=volunteer.real_name, volunteer_no=volunteer.volunteer_no,
        project_id=project.id, position_id=position.id if position is not None else None,
        group_id=project.group_id, group_path=project.group_path, region_id=project.region_id,
        region_path=project.region_path, served_on=served_on, minutes=minutes, source=source,
        status=RecordStatus.PENDING, **fields)
    db.session.add(record)
    db.session.flush()
    if status == RecordStatus.APPROVED:
        approve(record)
    return record


def approve(record: ServiceRecord) -> None:
    """Approve a pending record and credit its minutes (day total and volunteer total).

    :raises DomainError: the record is not pending, or the day would pass 24 hours
    """
    if record.status != RecordStatus.PENDING:
        raise DomainError(gettext("Only pending records can be approved."))
    credit(record.volunteer_id, record.served_on, record.minutes, record.volunteer_name)
    record.status = RecordStatus.APPROVED
    record.approved_on = utcnow()
    record.approved_by_fk = reviews.acting_user_id()
    db.session.flush()


def credit(volunteer_id: int, served_on: date, minutes: int, name: str = "") -> None:
    """Add approved ``minutes`` (negative for a correction) to the volunteer's day and total.

    The day row is read under a row lock (PostgreSQL; SQLite writers run one at a
    time in IMMEDIATE transactions), so two credits cannot both pass the 24-hour
    check; the table's CHECK refuses what slips past the service anyway.

    :raises DomainError: the day would hold more than 24 hours, or less than nothing
    """
    day = db.session.scalar(select(VolunteerDay).where(
        VolunteerDay.volunteer_id == volunteer_id, VolunteerDay.served_on == served_on).with_for_update())
    if day is None:
        day = VolunteerDay(volunteer_id=volunteer_id, served_on=served_on, minutes=0)
        db.session.add(day)
    total = day.minutes + minutes
    if total > DAY_MINUTES:
        raise DomainError(gettext(
            "%(name)s already has %(hours)s approved hours on %(day)s: a day holds at most 24 hours.",
            name=name, hours=f"{day.minutes / 60:g}", day=served_on.isoformat()))
    if total < 0:
        raise DomainError(gettext("A correction cannot take away more hours than %(day)s holds.",
                                  day=served_on.isoformat()))
    day.minutes = total
    db.session.execute(update(Volunteer).where(Volunteer.id == volunteer_id)
                       .values(total_minutes=Volunteer.total_minutes + minutes)
                       .execution_options(synchronize_session=False))
    loaded = db.session.identity_map.get(db.session.identity_key(Volunteer, volunteer_id))
    if loaded is not None:
        db.session.expire(loaded, ["total_minutes"])  # read the database's sum next time
    db.session.flush()


def flag_records(records: list[ServiceRecord], *, flagged: bool, reason: str | None = None) -> int:
    """Flag (or unflag) records for an officer's attention; returns how many changed.

    Only officers of the records' service region may flag; a group admin's scope
    does not count here. All records are checked before any is changed.
    """
    scope = current_scope()
    if not (scope.everything or scope.officer_paths):
        raise DomainError(gettext("Only officers may flag service records."))
    for record in records:
        if not (scope.everything or any(path_is_under(record.region_path, p) for p in scope.officer_paths)):
            raise ScopeViolation()
    changed = 0
    for record in records:
        if record.is_flagged != flagged:
            record.is_flagged = flagged
            record.flag_reasons = (reason or gettext("Flagged by an officer")) if flagged else None
            changed += 1
    db.session.flush()
    return changed
