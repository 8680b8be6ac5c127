"""Projects, positions and enrollments (DESIGN.md §5 "Project", "Position", "Enrollment").

A project closes (结项) at its end instant, or earlier by hand; nothing runs at
that instant — "closed" is read off the clock (``open_clause`` in SQL,
``Project.is_closed`` in Python). A position's ``enrolled_count`` counts its
ACCEPTED enrollments and is kept in step by ``enroll`` / ``cancel`` in the same
transaction, with a conditional UPDATE so that concurrent sign-ups never pass the
quota. One enrollment row per (position, volunteer): cancelled, declined and
invited rows are revived, never duplicated.
"""
from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal

from flask_babel import gettext, lazy_gettext
from sqlalchemy import and_, exists, false, or_, select, true, update
from sqlalchemy.orm import selectinload

from app.extensions import begin_write, db
from app.models import (
    SERVICE_CATEGORIES, Choices, Enrollment, EnrollmentOrigin, EnrollmentStatus, IdType, Position, Project,
    RecruitScope, ReviewStatus, ServiceRecord, Volunteer, VolunteerGroup,
)
from app.security import pii
from app.security.scope import (
    Scope, current_scope, ensure_administers, find_region, oversees, path_is_under, row_id, under,
)
from app.services import groups, memberships, regions, reviews, rollups, rosters, volunteers
from app.services.clock import to_local, to_utc, today, utcnow
from app.services.errors import DomainError, ScopeViolation
from app.services.idcards import age_on
from app.services.volunteers import ADULT_AGE, FieldErrors


# --- SQL predicates ---


def open_clause(now: datetime | None = None):
    """SQL predicate on ``Project``: the project is open (not 结项) at ``now`` (UTC, naive).

    Not suspended by an officer, not closed by hand before ``now`` (``closed_on`` null or
    later than ``now``), and its end lies after ``now``. The twin of ``Project.is_closed``.
    """
    now = now or utcnow()
    return and_(Project.is_suspended == false(),
                or_(Project.closed_on.is_(None), Project.closed_on > now),
                Project.ends_at > now)


def closed_clause(now: datetime | None = None):
    """SQL predicate on ``Project``: the project is closed (结项) at ``now``."""
    now = now or utcnow()
    return or_(Project.is_suspended == true(), Project.closed_on <= now, Project.ends_at <= now)


def public_clause(now: datetime | None = None):
    """SQL predicate on ``Project``: what the public 志愿项目 list may show — projects of
    approved groups that are not backfill projects (时间补录招募 projects are never public).

    Any status filter (recruiting, not started, closed) goes on top; ``now`` is unused
    and accepted for symmetry with ``open_clause``.
    """
    return and_(Project.is_backfill == false(),
                exists().where(VolunteerGroup.id == Project.group_id,
                               VolunteerGroup.status == ReviewStatus.APPROVED))


# --- Rules ---


def age_of(volunteer: Volunteer, on_day: date | None = None) -> int | None:
    """The volunteer's age in whole years on ``on_day`` (default today, Asia/Shanghai);
    None when the birth date is unknown."""
    if volunteer.birth_date is None:
        return None
    return age_on(volunteer.birth_date, on_day or today())


def check_age(position: Position, volunteer: Volunteer, on_day: date | None = None) -> None:
    """Refuse a volunteer outside the position's age limits, or a minor (under 18) where
    the position does not allow minors. The age is taken on ``on_day`` (the activity
    day) or today. An unknown birth date passes (it counts as an adult, as elsewhere).

    :raises DomainError: with a message naming the limit
    """
    age = age_of(volunteer, on_day)
    if age is None:
        return
    if position.min_age is not None and age < position.min_age:
        raise DomainError(gettext("This position is open to volunteers aged %(age)s and over.",
                                  age=position.min_age))
    if position.max_age is not None and age > position.max_age:
        raise DomainError(gettext("This position is open to volunteers aged %(age)s and under.",
                                  age=position.max_age))
    if age < ADULT_AGE and not position.allows_minors:
        raise DomainError(gettext("This position does not take volunteers under 18."))


def enrollment_of(position: Position, volunteer: Volunteer) -> Enrollment | None:
    """The (only) enrollment row of ``volunteer`` in ``position``, whatever its status."""
    return db.session.scalar(select(Enrollment).where(
        Enrollment.position_id == position.id, Enrollment.volunteer_id == volunteer.id))


def is_enrolled(position: Position, volunteer: Volunteer) -> bool:
    """True when the volunteer holds an ACCEPTED place in the position."""
    return db.session.scalar(select(Enrollment.id).where(
        Enrollment.position_id == position.id, Enrollment.volunteer_id == volunteer.id,
        Enrollment.status == EnrollmentStatus.ACCEPTED)) is not None


def project_region_frozen(project: Project) -> bool:
    """True once anyone has enrolled in the project: an accepted or invited enrollment,
    or any service record. Its region can no longer change then."""
    if project.id is None:
        return False
    enrolled = select(Enrollment.id).where(
        Enrollment.project_id == project.id,
        Enrollment.status.in_((EnrollmentStatus.ACCEPTED, EnrollmentStatus.INVITED))).limit(1)
    recorded = select(ServiceRecord.id).where(ServiceRecord.project_id == project.id).limit(1)
    return (db.session.scalar(enrolled) is not None) or (db.session.scalar(recorded) is not None)


def full_message() -> str:
    return gettext("This position is full.")


def lock_position(position: Position) -> None:
    """Take the position's row lock (PostgreSQL; SQLite writers are already serialised by
    ``begin_write``), so enrollments of one position happen one at a time, and reload
    its counts."""
    db.session.execute(select(Position.id).where(Position.id == position.id).with_for_update())
    db.session.refresh(position, ["enrolled_count", "quota"])


def _count_in(position: Position, *, over_quota: bool) -> None:
    """Raise ``enrolled_count`` by one, never past the quota unless ``over_quota``.

    :raises DomainError: the position is full
    """
    stmt = update(Position).where(Position.id == position.id)
    if not over_quota:
        stmt = stmt.where(Position.enrolled_count < Position.quota)
    result = db.session.execute(stmt.values(enrolled_count=Position.enrolled_count + 1)
                                .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise DomainError(full_message())
    db.session.expire(position, ["enrolled_count"])


def count_out(position: Position) -> None:
    """Lower ``enrolled_count`` by one (an accepted enrollment left)."""
    db.session.execute(update(Position).where(Position.id == position.id, Position.enrolled_count > 0)
                       .values(enrolled_count=Position.enrolled_count - 1)
                       .execution_options(synchronize_session=False))
    db.session.expire(position, ["enrolled_count"])


def place(position: Position, volunteer: Volunteer, *, status: str, origin: str,
          existing: Enrollment | None = None) -> Enrollment:
    """Create or revive the (position, volunteer) row with ``status`` and ``origin``,
    copying the project's paths and the volunteer's name and number. Counts nothing."""
    project = position.project
    enrollment = existing if existing is not None else enrollment_of(position, volunteer)
    if enrollment is None:
        enrollment = Enrollment(position_id=position.id, project_id=project.id, volunteer_id=volunteer.id)
        db.session.add(enrollment)
    enrollment.group_path = project.group_path
    enrollment.region_id = project.region_id
    enrollment.region_path = project.region_path
    enrollment.volunteer_name = volunteer.real_name
    enrollment.volunteer_no = volunteer.volunteer_no
    enrollment.status = status
    enrollment.origin = origin
    enrollment.guardian_confirmed_on = None
    return enrollment


def enroll(position: Position, volunteer: Volunteer, *, origin: str = EnrollmentOrigin.SELF,
           over_quota: bool = False) -> Enrollment:
    """Give ``volunteer`` an ACCEPTED place in ``position`` and return the enrollment.

    Creates the (position, volunteer) row or revives it (cancelled, declined, invited),
    copies the volunteer's name and number and the project's paths, and raises
    ``enrolled_count`` with ``UPDATE position SET enrolled_count = enrolled_count + 1
    WHERE id = :id AND enrolled_count < quota`` — without the quota condition when
    ``over_quota`` (an hour code or the group admin consents). Already accepted: a no-op
    that returns the row. Enrollments of one position are serialised by its row lock
    (PostgreSQL) or the IMMEDIATE transaction (SQLite: call ``extensions.begin_write()``
    first), so the same pair cannot be inserted twice.

    It does not check who may enroll, recruitment scope, age or closed state: callers do.

    :raises DomainError: the position is full (and not ``over_quota``)
    """
    return _enroll(position, volunteer, origin=origin, over_quota=over_quota)[0]


def _enroll(position: Position, volunteer: Volunteer, *, origin: str, over_quota: bool) -> tuple[Enrollment, bool]:
    """``enroll``, also saying whether this call took the place (False: already accepted)."""
    lock_position(position)
    enrollment = db.session.scalar(
        select(Enrollment).where(Enrollment.position_id == position.id, Enrollment.volunteer_id == volunteer.id)
        .execution_options(populate_existing=True))
    if enrollment is not None and enrollment.status == EnrollmentStatus.ACCEPTED:
        return enrollment, False
    _count_in(position, over_quota=over_quota)
    enrollment = place(position, volunteer, status=EnrollmentStatus.ACCEPTED, origin=origin,
                       existing=enrollment)
    db.session.flush()
    return enrollment, True


# --- Status, derived from the clock ---


class ProjectStatus(Choices):
    """A project's status at a moment: not started, in progress, or closed (结项)."""

    NOT_STARTED = "upcoming"
    OPEN = "open"
    CLOSED = "closed"

    @classmethod
    def _labels(cls):
        return {"upcoming": lazy_gettext("Not started"), "open": lazy_gettext("In progress"), "closed": lazy_gettext("Project closed")}


def project_status(project: Project, now: datetime | None = None) -> str:
    """``ProjectStatus`` of ``project`` at ``now`` (UTC): closed (suspended, closed by
    hand, or past its end), not started (before its start), else in progress."""
    now = now or utcnow()
    if project.is_closed(now):
        return ProjectStatus.CLOSED
    if now < project.starts_at:
        return ProjectStatus.NOT_STARTED
    return ProjectStatus.OPEN


def status_clause(status: str, now: datetime | None = None):
    """SQL predicate on ``Project`` for a ``ProjectStatus`` value (unknown: matches nothing)."""
    now = now or utcnow()
    if status == ProjectStatus.CLOSED:
        return closed_clause(now)
    if status == ProjectStatus.NOT_STARTED:
        return and_(open_clause(now), Project.starts_at > now)
    if status == ProjectStatus.OPEN:
        return and_(open_clause(now), Project.starts_at <= now)
    return false()


def ensure_open(project: Project, message: str | None = None) -> None:
    """:raises DomainError: the project is closed (结项): it accepts nothing new"""
    if project.is_closed():
        raise DomainError(message or gettext("This project is closed: it accepts no changes."))


# --- 团体管理 → 我的项目: the projects of the groups the user administers ---

ADMIN_PAGE_SIZE = 20
NAME_MAX, ADDRESS_MAX, TEXT_MAX = 120, 255, 5000
POSITION_FIELDS = ("name", "quota", "shift_start", "shift_end", "default_hours", "min_age", "max_age",
                   "allows_minors")
PROJECT_FIELDS = ("name", "category", "description", "risk_notice", "address", "region_code", "starts_at",
                  "ends_at", "recruit_scope", "is_backfill")
MAX_QUOTA = 100_000
MAX_AGE_LIMIT = 120


def publishing_groups(scope: Scope | None = None) -> list[VolunteerGroup]:
    """Approved groups the user administers directly (the platform admin: none listed;
    they do not publish projects), in tree order: where 发布新项目 may publish."""
    scope = scope or current_scope()
    if not scope.group_ids:
        return []
    return list(db.session.scalars(
        select(VolunteerGroup).where(VolunteerGroup.id.in_(sorted(scope.group_ids)),
                                     VolunteerGroup.status == ReviewStatus.APPROVED)
        .order_by(VolunteerGroup.group_path)))


def administered_clause(scope: Scope | None = None):
    """SQL predicate on ``Project``: projects of the groups the user administers directly
    (the platform admin: every project)."""
    scope = scope or current_scope()
    if scope.everything:
        return true()
    if not scope.group_ids:
        return false()
    return Project.group_id.in_(sorted(scope.group_ids))


def group_projects(scope: Scope | None = None, *, page: int = 0,
                   page_size: int = ADMIN_PAGE_SIZE) -> tuple[list[Project], bool]:
    """团体管理 → 我的项目: one page of the projects of the user's own groups, newest
    first, with their group and positions loaded; and whether more follow."""
    rows = list(db.session.scalars(
        select(Project).where(administered_clause(scope))
        .options(selectinload(Project.group), selectinload(Project.positions))
        .order_by(Project.id.desc()).offset(max(page, 0) * page_size).limit(page_size + 1)))
    return rows[:page_size], len(rows) > page_size


def administered_project(project_id) -> Project:
    """The project with this id if the user administers its group directly.

    :raises ScopeViolation: unknown id, or another group's project (answered 404)
    """
    pk = row_id(project_id)
    project = db.session.get(Project, pk) if pk is not None else None
    if project is None:
        raise ScopeViolation()
    ensure_administers(project.group)
    return project


def administered_position(position_id) -> Position:
    """The position with this id if the user administers its project's group directly.

    :raises ScopeViolation: unknown id, or another group's position (answered 404)
    """
    pk = row_id(position_id)
    position = db.session.get(Position, pk) if pk is not None else None
    if position is None:
        raise ScopeViolation()
    ensure_administers(position.project.group)
    return position


# Parsing form or API values (strings from a form, typed values from code).


def _name(value) -> str:
    """A name with its whitespace runs collapsed to single spaces."""
    return " ".join(str(value or "").split())


def _int(value) -> int | None:
    """An int from ``value``; None when empty; raises ValueError when not a whole number."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text:
        return None
    if not (text.isascii() and text.lstrip("-").isdigit()) or len(text) > 9:
        raise ValueError(value)
    return int(text)


def _flag(value) -> bool:
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in ("1", "y", "yes", "true", "on")


def parse_local_datetime(value) -> datetime | None:
    """A local (Asia/Shanghai) date and time: a naive datetime, or text such as
    ``2025-05-01T08:00`` (an HTML datetime-local input) or ``2025-05-01 08:00``.
    Returns None when empty; raises ValueError when unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=None) if value.tzinfo is None else value
    text = str(value).strip()
    if not text:
        return None
    if len(text) > 25:
        raise ValueError(value)
    parsed = datetime.fromisoformat(text.replace(" ", "T", 1))
    return parsed.replace(second=0, microsecond=0)


def parse_time(value) -> time | None:
    """A wall-clock time ``HH:MM``; None when empty; raises ValueError when unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, time):
        return value.replace(second=0, microsecond=0)
    text = str(value).strip()
    if not text:
        return None
    if len(text) > 8:
        raise ValueError(value)
    return time.fromisoformat(text).replace(second=0, microsecond=0)


def parse_hours(value) -> int | None:
    """Hours as text (``3``, ``2.5``) or minutes as an int -> integer minutes (rounded to
    the minute); None when empty; raises ValueError when not a number."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value * 60
    text = str(value).strip()
    if not text:
        return None
    if len(text) > 8:
        raise ValueError(value)
    hours = Decimal(text)
    if not hours.is_finite():
        raise ValueError(value)
    return int((hours * 60).to_integral_value())


def _clean_position(errors: FieldErrors, prefix: str, fields: dict, *, position: Position | None = None) -> dict:
    """Check one position's fields; return its column values. Errors go to
    ``<prefix><field>`` (``positions-0-quota``)."""
    values: dict = {}
    name = _name(fields.get("name"))
    if not name:
        errors.add(prefix + "name", gettext("Please enter the position's name."))
    elif len(name) > NAME_MAX:
        errors.add(prefix + "name", gettext("At most %(n)s characters.", n=NAME_MAX))
    values["name"] = name
    try:
        quota = _int(fields.get("quota"))
        if quota is None:
            errors.add(prefix + "quota", gettext("Please enter how many volunteers the position takes."))
        elif not 1 <= quota <= MAX_QUOTA:
            errors.add(prefix + "quota", gettext("The quota must be at least 1."))
        elif position is not None and quota < position.enrolled_count:
            errors.add(prefix + "quota", gettext(
                "The quota cannot be below the %(n)s volunteers already signed up.", n=position.enrolled_count))
        values["quota"] = quota
    except ValueError:
        errors.add(prefix + "quota", gettext("Please enter a whole number."))
    for key in ("shift_start", "shift_end"):
        try:
            values[key] = parse_time(fields.get(key))
        except ValueError:
            errors.add(prefix + key, gettext("Please enter a time such as 08:30."))
    if (values.get("shift_start") is None) != (values.get("shift_end") is None) \
            and prefix + "shift_start" not in errors and prefix + "shift_end" not in errors:
        errors.add(prefix + "shift_end", gettext("Please enter both the start and the end of the shift, or neither."))
    elif values.get("shift_start") is not None and values["shift_start"] == values.get("shift_end"):
        errors.add(prefix + "shift_end", gettext("The shift must end at another time than it starts."))
    try:
        minutes = parse_hours(fields.get("default_hours"))
        if minutes is None:
            errors.add(prefix + "default_hours", gettext("Please enter the default hours of one shift."))
        elif not 0 < minutes <= 1440:
            errors.add(prefix + "default_hours", gettext("Service time must be more than 0 and at most 24 hours."))
        values["default_minutes"] = minutes
    except (ValueError, ArithmeticError):
        errors.add(prefix + "default_hours", gettext("Please enter a number of hours, such as 2.5."))
    for key in ("min_age", "max_age"):
        try:
            age = _int(fields.get(key))
            if age is not None and not 0 <= age <= MAX_AGE_LIMIT:
                errors.add(prefix + key, gettext("Please enter an age between 0 and %(n)s.", n=MAX_AGE_LIMIT))
            values[key] = age
        except ValueError:
            errors.add(prefix + key, gettext("Please enter a whole number."))
    low, high = values.get("min_age"), values.get("max_age")
    if low is not None and high is not None and low > high and prefix + "max_age" not in errors:
        errors.add(prefix + "max_age", gettext("The maximum age cannot be below the minimum age."))
    values["allows_minors"] = _flag(fields.get("allows_minors"))
    if high is not None and high < ADULT_AGE and not values["allows_minors"] and prefix + "max_age" not in errors:
        errors.add(prefix + "allows_minors",
                   gettext("A position for volunteers under 18 must allow minors."))
    return values


def _clean_project(errors: FieldErrors, group: VolunteerGroup, fields: dict, *,
                   project: Project | None = None) -> dict:
    """Check a project's fields (``PROJECT_FIELDS``; those omitted keep the project's
    values); return the column values to write."""
    now = utcnow()
    current = {} if project is None else {
        "name": project.name, "category": project.category, "description": project.description,
        "risk_notice": project.risk_notice, "address": project.address, "region_code": project.region_code,
        "starts_at": to_local(project.starts_at).replace(tzinfo=None),
        "ends_at": to_local(project.ends_at).replace(tzinfo=None),
        "recruit_scope": project.recruit_scope, "is_backfill": project.is_backfill}
    merged = {**current, **{k: v for k, v in fields.items() if k in PROJECT_FIELDS}}
    values: dict = {}
    name = _name(merged.get("name"))
    if not name:
        errors.add("name", gettext("Please enter the project's name."))
    elif len(name) > NAME_MAX:
        errors.add("name", gettext("At most %(n)s characters.", n=NAME_MAX))
    values["name"] = name
    category = str(merged.get("category") or "")
    if category not in SERVICE_CATEGORIES:
        errors.add("category", gettext("Please choose a service category."))
    values["category"] = category
    for key, limit in (("description", TEXT_MAX), ("risk_notice", TEXT_MAX), ("address", ADDRESS_MAX)):
        text = str(merged.get(key) or "").strip()
        if len(text) > limit:
            errors.add(key, gettext("At most %(n)s characters.", n=limit))
        values[key] = text or None
    if not values.get("address"):
        errors.add("address", gettext("Please enter where the project takes place."))
    # Region: the group's by default, and within it.
    region_code = str(merged.get("region_code") or "").strip() or group.region_code
    region = regions.region_by_code(region_code)
    if region is None:
        errors.add("region_code", gettext("Please choose the project's region."))
    elif not path_is_under(region.path, group.region_path):
        errors.add("region_code", gettext("The project's region must lie within the group's region (%(region)s).",
                                          region=group.region.name if group.region else group.region_code))
    elif project is not None and region.id != project.region_id and project_region_frozen(project):
        errors.add("region_code", gettext("The region cannot change once volunteers have signed up."))
    values["region"] = region
    scope_value = str(merged.get("recruit_scope") or "")
    if scope_value not in RecruitScope.labels():
        errors.add("recruit_scope", gettext("Please choose who may sign up."))
    values["recruit_scope"] = scope_value
    backfill = _flag(merged.get("is_backfill"))
    if project is not None and backfill != project.is_backfill and project_region_frozen(project):
        errors.add("is_backfill", gettext("Backfill Recruitment cannot change once volunteers have signed up."))
    values["is_backfill"] = backfill
    # Dates, local time: the end closes the project (结项).
    parsed = {}
    for key in ("starts_at", "ends_at"):
        try:
            parsed[key] = parse_local_datetime(merged.get(key))
            if parsed[key] is None:
                errors.add(key, gettext("Please enter a date and time."))
        except ValueError:
            errors.add(key, gettext("Please enter a date and time such as 2025-05-01 08:00."))
            parsed[key] = None
    starts, ends = parsed["starts_at"], parsed["ends_at"]
    starts_utc = to_utc(starts) if starts else None
    ends_utc = to_utc(ends) if ends else None
    if starts_utc and ends_utc:
        # A form shows times to the minute: an unchanged time round-trips without its seconds.
        start_changed = project is None or starts_utc != project.starts_at.replace(second=0, microsecond=0)
        end_changed = project is None or ends_utc != project.ends_at.replace(second=0, microsecond=0)
        if ends_utc <= starts_utc:
            errors.add("ends_at", gettext("The project must end after it starts."))
        elif end_changed and ends_utc <= now:
            errors.add("ends_at", gettext("The end lies in the past: the project would be closed at once."))
        if start_changed and not backfill and starts.date() < today() and "ends_at" not in errors:
            errors.add("starts_at", gettext(
                "The start lies before today; only a Backfill Recruitment project may start in the past."))
        if (project is not None and start_changed and starts_utc > project.starts_at
                and project.starts_at <= now and project_region_frozen(project) and "starts_at" not in errors):
            # Service hours and sign-ups of a begun project lie after its start: keep them inside.
            errors.add("starts_at", gettext("The project has begun and volunteers have signed up: "
                                            "its start can only move earlier."))
    if project is not None:  # keep the stored instants when the minute is unchanged
        if starts_utc and starts_utc == project.starts_at.replace(second=0, microsecond=0):
            starts_utc = project.starts_at
        if ends_utc and ends_utc == project.ends_at.replace(second=0, microsecond=0):
            ends_utc = project.ends_at
    values["starts_at"], values["ends_at"] = starts_utc, ends_utc
    return values


def _write_position(position: Position, project: Project, values: dict) -> None:
    position.group_path = project.group_path
    position.region_id = project.region_id
    position.region_path = project.region_path
    for key in ("name", "quota", "shift_start", "shift_end", "default_minutes", "min_age", "max_age",
                "allows_minors"):
        setattr(position, key, values[key])


def create_project(group: VolunteerGroup, *, positions: list[dict], **fields) -> Project:
    """发布新项目: a project of ``group`` with at least one position.

    ``fields`` are ``PROJECT_FIELDS``: start and end are local (Asia/Shanghai) times,
    the region defaults to the group's and must lie within it. Each position is a dict
    of ``POSITION_FIELDS`` (``default_hours`` in hours; ages optional). Every problem is
    reported at once (``ValidationFailed.fields``: project fields by name, positions as
    ``positions-<i>-<field>``); nothing is written then.

    :raises ScopeViolation: the user does not administer ``group`` itself
    :raises DomainError: the group is not approved
    :raises ValidationFailed: per field
    """
    ensure_administers(group)
    if group.status != ReviewStatus.APPROVED:
        raise DomainError(gettext("Only an approved group can publish projects."))
    unknown = set(fields) - set(PROJECT_FIELDS)
    if unknown:
        raise TypeError(f"unknown project fields: {sorted(unknown)}")
    errors = FieldErrors()
    values = _clean_project(errors, group, fields)
    # A form's blank position rows are skipped (the minors tick alone does not make a row).
    given = [(i, p) for i, p in enumerate(positions or [])
             if any(str(p.get(k) or "").strip() for k in POSITION_FIELDS if k != "allows_minors")]
    if not given:
        errors.add("positions", gettext("Please add at least one position."))
    cleaned = [_clean_position(errors, f"positions-{i}-", p) for i, p in given]
    errors.raise_if_any()
    region = values.pop("region")
    project = Project(group_id=group.id, group_path=group.group_path, region_id=region.id,
                      region_path=region.path, created_by_fk=reviews.acting_user_id(),
                      contact_name=group.contact_name, contact_phone_masked=group.contact_phone_masked,
                      **values)
    db.session.add(project)
    db.session.flush()
    rollups.project_counted(project, +1)  # 统计分析: projects by status
    for position_values in cleaned:
        position = Position(project_id=project.id, enrolled_count=0)
        _write_position(position, project, position_values)
        db.session.add(position)
    db.session.flush()
    db.session.expire(project, ["positions"])
    return project


def update_project(project: Project, **fields) -> Project:
    """Edit a project's details (``PROJECT_FIELDS``; omitted ones keep their value).

    Refused on a closed project; the region and the backfill flag are frozen once
    anyone enrolled; a changed end may not lie in the past.

    :raises ScopeViolation: the user does not administer the project's group itself
    :raises DomainError: the project is closed
    :raises ValidationFailed: per field
    """
    ensure_administers(project.group)
    unknown = set(fields) - set(PROJECT_FIELDS)
    if unknown:
        raise TypeError(f"unknown project fields: {sorted(unknown)}")
    # Locked: an approval reads the category under a share lock (rollups.minutes_credited),
    # so its minutes are counted under the category this edit leaves, never the old one.
    reviews.lock_for_decision(Project, [project])
    ensure_open(project)
    errors = FieldErrors()
    values = _clean_project(errors, project.group, fields, project=project)
    errors.raise_if_any()
    region = values.pop("region")
    old_category = project.category
    rollups.project_counted(project, -1)  # its dates, category or region may change: counted again below
    for key, value in values.items():
        if getattr(project, key) != value:
            setattr(project, key, value)
    if region.id != project.region_id:
        project.region_id, project.region_path = region.id, region.path
        for position in project.positions:
            position.region_id, position.region_path = region.id, region.path
    db.session.flush()
    rollups.project_counted(project, +1)
    rollups.project_recategorised(project, old_category)  # 统计分析 counts minutes by category
    return project


def add_position(project: Project, **fields) -> Position:
    """Add a position (岗位) to an open project.

    :raises ScopeViolation: not the user's own group's project
    :raises DomainError: the project is closed
    :raises ValidationFailed: per field (``POSITION_FIELDS`` names)
    """
    ensure_administers(project.group)
    ensure_open(project)
    errors = FieldErrors()
    values = _clean_position(errors, "", fields)
    errors.raise_if_any()
    position = Position(project_id=project.id, enrolled_count=0)
    _write_position(position, project, values)
    db.session.add(position)
    db.session.flush()
    db.session.expire(project, ["positions"])
    return position


def update_position(position: Position, **fields) -> Position:
    """Edit a position of an open project; the quota cannot go below ``enrolled_count``
    (read under the position's lock, so a concurrent sign-up cannot slip past).

    :raises ScopeViolation: not the user's own group's position
    :raises DomainError: the project is closed
    :raises ValidationFailed: per field
    """
    project = position.project
    ensure_administers(project.group)
    ensure_open(project)
    lock_position(position)
    errors = FieldErrors()
    values = _clean_position(errors, "", fields, position=position)
    errors.raise_if_any()
    _write_position(position, project, values)
    db.session.flush()
    return position


def close_project(project: Project) -> Project:
    """结项 by hand: the project closes now (``closed_on``) and accepts nothing new.

    :raises ScopeViolation: not the user's own group's project
    :raises DomainError: already closed
    """
    ensure_administers(project.group)
    project = reviews.lock_for_decision(Project, [project])[0]  # an edit or suspension waits, then sees it
    ensure_open(project, gettext("This project is already closed."))
    rollups.project_counted(project, -1)
    project.closed_on = utcnow()
    project.closed_by_fk = reviews.acting_user_id()
    rollups.project_counted(project, +1)
    db.session.flush()
    return project


def enrolled_by_position(project: Project) -> dict[int, list[Enrollment]]:
    """{position id: its accepted and invited enrollments, by name} for the admin's
    project page (one query)."""
    rows = db.session.scalars(
        select(Enrollment).where(Enrollment.project_id == project.id,
                                 Enrollment.status.in_((EnrollmentStatus.ACCEPTED, EnrollmentStatus.INVITED)))
        .order_by(Enrollment.position_id, Enrollment.status, Enrollment.volunteer_name, Enrollment.id))
    grouped: dict[int, list[Enrollment]] = {}
    for enrollment in rows:
        grouped.setdefault(enrollment.position_id, []).append(enrollment)
    return grouped


# --- 邀请 and adding volunteers (时间补录招募) ---


def find_volunteer(real_name: str, *, volunteer_no: str | None = None, id_type: str | None = None,
                   id_number: str | None = None) -> Volunteer:
    """The approved volunteer with this real name and volunteer number, or real name and
    ID number (as 添加志愿者 finds them). Failed lookups count against the user's lookup
    budget shared with the roster, so names and numbers cannot be guessed in bulk.

    :raises LookupThrottled: too many failed lookups lately
    :raises DomainError: no approved volunteer matches (one message whatever the cause)
    """
    limit = rosters._lookup_limit()
    rosters._check_budget(limit, "roster-lookup-failures/user")
    volunteer = None
    number = "".join(str(volunteer_no or "").split())
    if number:
        found = db.session.scalar(select(Volunteer).where(Volunteer.volunteer_no == number[:15]))
        if (found is not None and found.status == ReviewStatus.APPROVED
                and rosters._normalize_name(found.real_name) == rosters._normalize_name(real_name)):
            volunteer = found
    elif id_number:
        volunteer = rosters.find_approved_volunteer(real_name, id_type or IdType.RESIDENT, id_number)
    if volunteer is None:
        rosters._spend(limit, "roster-lookup-failures/user")
        raise DomainError(gettext("No approved volunteer matches this real name and number."))
    return volunteer


def invite(position: Position, volunteer: Volunteer) -> Enrollment:
    """邀请: invite ``volunteer`` to ``position`` (status invited, origin invitation); the
    volunteer accepts or declines in 我的项目. Only for projects whose recruitment is
    unrestricted (不限), while open; the age limits are checked now and again on accepting.

    :raises ScopeViolation: not the user's own group's position
    :raises DomainError: members-only project, closed, not approved, outside the age
        limits, already signed up or invited
    """
    project = position.project
    ensure_administers(project.group)
    ensure_open(project, gettext("This project is closed: it takes no more invitations."))
    if project.recruit_scope != RecruitScope.ANYONE:
        raise DomainError(gettext("Invitations are only possible when anyone may sign up (recruitment: Anyone)."))
    if volunteer.status != ReviewStatus.APPROVED:
        raise DomainError(gettext("Only approved volunteers can be invited."))
    check_age(position, volunteer)
    existing = enrollment_of(position, volunteer)
    if existing is not None and existing.status == EnrollmentStatus.ACCEPTED:
        raise DomainError(gettext("%(name)s has already signed up for this position.", name=volunteer.real_name))
    if existing is not None and existing.status == EnrollmentStatus.INVITED:
        raise DomainError(gettext("%(name)s has already been invited to this position.", name=volunteer.real_name))
    enrollment = place(position, volunteer, status=EnrollmentStatus.INVITED, origin=EnrollmentOrigin.INVITATION,
                       existing=existing)
    db.session.flush()
    return enrollment


def add_to_backfill(position: Position, volunteer: Volunteer) -> Enrollment:
    """时间补录招募: the group admin adds ``volunteer`` straight into a position of a
    backfill project (accepted, origin admin; the quota may be passed — the admin's
    consent). Volunteers cannot sign up to such a project themselves.

    :raises ScopeViolation: not the user's own group's position
    :raises DomainError: not a backfill project, closed, not approved, outside the age
        limits, already signed up
    """
    project = position.project
    ensure_administers(project.group)
    if not project.is_backfill:
        raise DomainError(gettext("Volunteers are added directly only to Backfill Recruitment projects."))
    ensure_open(project)
    if volunteer.status != ReviewStatus.APPROVED:
        raise DomainError(gettext("Only approved volunteers can be added."))
    check_age(position, volunteer)
    if is_enrolled(position, volunteer):
        raise DomainError(gettext("%(name)s has already signed up for this position.", name=volunteer.real_name))
    return enroll(position, volunteer, origin=EnrollmentOrigin.ADMIN, over_quota=True)


# --- 报名: sign-up, cancel, invitations (用户中心 → 我的项目) ---


def members_only_message() -> str:
    """The refusal users already know (GLOSSARY.md), verbatim in Chinese."""
    return gettext("Sign-up failed: please join the group before signing up for its projects.")


def _check_guardian(volunteer: Volunteer, guardian_phone: str | None, guardian_consent: bool) -> None:
    """A minor's sign-up: the guardian's mobile number entered must match the one on
    file, and the consent box ticked.

    :raises ValidationFailed: per field (``guardian_phone``, ``guardian_consent``)
    """
    errors = FieldErrors()
    on_file = pii.decrypt(volunteer.guardian_phone_enc) if volunteer.guardian_phone_enc else None
    entered = volunteers.normalize_mobile(guardian_phone or "") if (guardian_phone or "").strip() else None
    if not on_file:
        errors.add("guardian_phone", gettext(
            "No guardian mobile number is on file: please add it in My Profile first."))
    elif not (guardian_phone or "").strip():
        errors.add("guardian_phone", gettext("Please enter your guardian's mobile number."))
    elif entered != (volunteers.normalize_mobile(on_file) or on_file):
        errors.add("guardian_phone", gettext("This is not the guardian mobile number on file."))
    if not guardian_consent:
        errors.add("guardian_consent", gettext("Your guardian must agree to this sign-up and accompany you."))
    errors.raise_if_any()


def needs_guardian(volunteer: Volunteer | None) -> bool:
    """True when the volunteer is a minor today: their sign-up needs the guardian's confirmation."""
    age = age_of(volunteer) if volunteer is not None else None
    return age is not None and age < ADULT_AGE


def sign_up(volunteer: Volunteer | None, position: Position, *, guardian_phone: str | None = None,
            guardian_consent: bool = False) -> Enrollment:
    """报名: the volunteer takes a place in ``position`` (accepted, origin self).

    Checked in this order, each refusal with its own message: an approved volunteer;
    a public project (else 404); not a backfill project; open (not 结项); members-only
    recruitment and not an active member of the group -> exactly 报名失败，请先加入团体后再报名项目;
    the age limits; not already signed up; a minor's guardian confirmation (mobile
    number on file + consent, stored as ``guardian_confirmed_on``); a free place
    (the conditional UPDATE in ``enroll``). A cancelled, declined or invited row is
    revived. Starts with ``begin_write`` (on SQLite, an IMMEDIATE transaction).

    :raises ScopeViolation: the project is not public (unapproved group)
    :raises DomainError: as above
    :raises ValidationFailed: the guardian's number or consent
    """
    begin_write()
    position = db.session.get(Position, position.id, populate_existing=True)
    project = position.project
    if volunteer is None or volunteer.status != ReviewStatus.APPROVED:
        raise DomainError(gettext("Only approved volunteers can sign up for projects."))
    if project.group.status != ReviewStatus.APPROVED:
        raise ScopeViolation()
    if project.is_backfill:
        raise DomainError(gettext("Volunteers cannot sign up for a Backfill Recruitment project themselves."))
    if project.is_closed():
        raise DomainError(gettext("This project is closed: it takes no more sign-ups."))
    if project.recruit_scope == RecruitScope.MEMBERS_ONLY and not memberships.is_active_member(volunteer,
                                                                                              project.group):
        raise DomainError(members_only_message())
    check_age(position, volunteer)
    if is_enrolled(position, volunteer):
        raise DomainError(gettext("You have already signed up for this position."))
    minor = needs_guardian(volunteer)
    if minor:
        _check_guardian(volunteer, guardian_phone, guardian_consent)
    enrollment, took = _enroll(position, volunteer, origin=EnrollmentOrigin.SELF, over_quota=False)
    if not took:  # a concurrent sign-up of the same volunteer came first
        raise DomainError(gettext("You have already signed up for this position."))
    enrollment.guardian_confirmed_on = utcnow() if minor else None
    db.session.flush()
    return enrollment


def cancel_deadline(position: Position) -> datetime:
    """Until when (UTC) a volunteer may cancel: the start of the position's shift on the
    project's first day, or the project's start if later (or if the position has no shift)."""
    project = position.project
    starts = project.starts_at
    if position.shift_start is None:
        return starts
    first_day = to_local(starts).date()
    shift = to_utc(datetime.combine(first_day, position.shift_start))
    return max(shift, starts)


def my_enrollment(volunteer: Volunteer | None, enrollment_id) -> Enrollment:
    """The volunteer's own enrollment with this id.

    :raises ScopeViolation: unknown id, or someone else's enrollment (answered 404)
    """
    pk = row_id(enrollment_id)
    enrollment = db.session.get(Enrollment, pk) if pk is not None else None
    if enrollment is None or volunteer is None or enrollment.volunteer_id != volunteer.id:
        raise ScopeViolation()
    return enrollment


def cancel(volunteer: Volunteer, enrollment: Enrollment) -> Enrollment:
    """取消报名: give up an accepted place before ``cancel_deadline`` (the first shift);
    the place is freed (``enrolled_count`` - 1) and the row kept, cancelled, to be
    revived by a later sign-up.

    :raises ScopeViolation: not the volunteer's own enrollment
    :raises DomainError: not signed up, or too late
    """
    if enrollment.volunteer_id != volunteer.id:
        raise ScopeViolation()
    begin_write()
    enrollment = db.session.get(Enrollment, enrollment.id, populate_existing=True,
                                with_for_update=True)
    if enrollment.status != EnrollmentStatus.ACCEPTED:
        raise DomainError(gettext("You are not signed up for this position."))
    if utcnow() >= cancel_deadline(enrollment.position):
        raise DomainError(gettext(
            "The first shift has begun: a sign-up can no longer be cancelled. Please contact the group."))
    if db.session.scalar(select(ServiceRecord.id).where(
            ServiceRecord.position_id == enrollment.position_id,
            ServiceRecord.volunteer_id == volunteer.id).limit(1)) is not None:
        raise DomainError(gettext("You have service hours in this position: the sign-up can no longer be cancelled."))
    enrollment.status = EnrollmentStatus.CANCELLED
    db.session.flush()
    count_out(enrollment.position)
    return enrollment


def accept_invitation(volunteer: Volunteer, enrollment: Enrollment, *, guardian_phone: str | None = None,
                      guardian_consent: bool = False) -> Enrollment:
    """Accept an invitation (邀请) in 我的项目: the place is taken even past the quota
    (the admin invited), while the project is open and within the age limits; a
    minor confirms with the guardian's number like a sign-up.

    :raises ScopeViolation: not the volunteer's own enrollment
    :raises DomainError: no open invitation, project closed, outside the age limits
    :raises ValidationFailed: the guardian's number or consent
    """
    if enrollment.volunteer_id != volunteer.id:
        raise ScopeViolation()
    begin_write()
    enrollment = db.session.get(Enrollment, enrollment.id, populate_existing=True)
    if enrollment.status != EnrollmentStatus.INVITED:
        raise DomainError(gettext("This invitation is no longer open."))
    position = enrollment.position
    if position.project.is_closed():
        raise DomainError(gettext("This project is closed: it takes no more sign-ups."))
    check_age(position, volunteer)
    minor = needs_guardian(volunteer)
    if minor:
        _check_guardian(volunteer, guardian_phone, guardian_consent)
    enrollment = enroll(position, volunteer, origin=EnrollmentOrigin.INVITATION, over_quota=True)
    enrollment.guardian_confirmed_on = utcnow() if minor else None
    db.session.flush()
    return enrollment


def decline_invitation(volunteer: Volunteer, enrollment: Enrollment) -> Enrollment:
    """Decline an invitation: the row becomes declined (no place was held).

    :raises ScopeViolation: not the volunteer's own enrollment
    :raises DomainError: no open invitation
    """
    if enrollment.volunteer_id != volunteer.id:
        raise ScopeViolation()
    if enrollment.status != EnrollmentStatus.INVITED:
        raise DomainError(gettext("This invitation is no longer open."))
    enrollment.status = EnrollmentStatus.DECLINED
    db.session.flush()
    return enrollment


MY_PAGE_SIZE = 20
MY_STATUSES = (EnrollmentStatus.ACCEPTED, EnrollmentStatus.INVITED, EnrollmentStatus.PENDING,
               EnrollmentStatus.CANCELLED)


def my_enrollments(volunteer: Volunteer, *, page: int = 0,
                   page_size: int = MY_PAGE_SIZE) -> tuple[list[Enrollment], bool]:
    """用户中心 → 我的项目: the volunteer's enrollments (signed up, invited, pending,
    cancelled), newest first, with position, project and group loaded (constant queries)."""
    rows = list(db.session.scalars(
        select(Enrollment).where(Enrollment.volunteer_id == volunteer.id, Enrollment.status.in_(MY_STATUSES))
        .options(selectinload(Enrollment.position),
                 selectinload(Enrollment.project).selectinload(Project.group))
        .order_by(Enrollment.id.desc()).offset(max(page, 0) * page_size).limit(page_size + 1)))
    return rows[:page_size], len(rows) > page_size


# --- The public 志愿项目 list and project page ---

PUBLIC_PAGE_SIZE = 20
KEYWORD_MAX = 50


def search_public(*, keyword: str = "", region: str = "", category: str = "", status: str = "",
                  page: int = 0, page_size: int | None = None) -> tuple[list[Project], bool]:
    """The public 志愿项目 list: projects of approved groups, never backfill projects,
    newest first; filtered by a keyword in the name, a region (code or exact name, and
    below), a service category and a ``ProjectStatus``. LIMIT/OFFSET with one extra row
    to tell whether a next page exists (no COUNT). An unknown region, category or
    status finds nothing."""
    page_size = page_size or PUBLIC_PAGE_SIZE
    now = utcnow()
    query = select(Project).where(public_clause(now))
    keyword = (keyword or "").strip()[:KEYWORD_MAX]
    if keyword:
        query = query.where(Project.name.like(f"%{groups._like_escape(keyword)}%", escape="\\"))
    region = (region or "").strip()[:40]
    if region:
        found = find_region(region, current_scope())
        query = query.where(under(Project.region_path, found.path) if found is not None else false())
    if category:
        query = query.where(Project.category == category if category in SERVICE_CATEGORIES else false())
    if status:
        query = query.where(status_clause(status, now))
    rows = list(db.session.scalars(
        query.options(selectinload(Project.group), selectinload(Project.region), selectinload(Project.positions))
        .order_by(Project.id.desc()).offset(max(page, 0) * page_size).limit(page_size + 1)))
    return rows[:page_size], len(rows) > page_size


def public_project(project_id) -> Project:
    """A project the public may see (approved group, not backfill).

    :raises ScopeViolation: unknown id, backfill project, unapproved group (answered 404)
    """
    pk = row_id(project_id)
    project = db.session.scalar(select(Project).where(Project.id == pk, public_clause())) if pk else None
    if project is None:
        raise ScopeViolation()
    return project


def public_position(position_id) -> Position:
    """A position of a public project (for 报名).

    :raises ScopeViolation: unknown id, or not a public project (answered 404)
    """
    pk = row_id(position_id)
    position = db.session.get(Position, pk) if pk is not None else None
    if position is None:
        raise ScopeViolation()
    public_project(position.project_id)
    return position


def my_statuses(volunteer: Volunteer, project: Project) -> dict[int, str]:
    """{position id: enrollment status} of the volunteer's rows in ``project`` (one query)."""
    return dict(db.session.execute(select(Enrollment.position_id, Enrollment.status).where(
        Enrollment.project_id == project.id, Enrollment.volunteer_id == volunteer.id)).all())


# --- Officers: 结项 (suspend) a project of their region ---


def suspend_projects(items: list[Project]) -> int:
    """An officer closes (结项) projects of their region at once (``is_suspended``, with
    when and by whom); returns how many changed. All are checked before any changes.

    :raises DomainError: the user is not an officer
    :raises ScopeViolation: a project lies outside the officer's regions
    """
    scope = current_scope()
    if not (scope.everything or scope.officer_paths):
        raise DomainError(gettext("Only officers may close projects of their region."))
    for project in items:
        if not oversees(project.region_path, scope):
            raise ScopeViolation()
    changed = 0
    now = utcnow()
    for project in reviews.lock_for_decision(Project, items):  # an edit or closing waits, then sees it
        if not project.is_suspended:
            rollups.project_counted(project, -1)
            project.is_suspended = True
            if project.closed_on is None or project.closed_on > now:
                project.closed_on = now
            project.closed_by_fk = reviews.acting_user_id()
            rollups.project_counted(project, +1)
            changed += 1
    db.session.flush()
    return changed
