"""Service hours: the ledger (DESIGN.md §5 "Service record", "Hour code").

Minutes are integers. Approved records are never edited or deleted (a
``before_flush`` guard refuses it, see ``init_app``); a correction is a new record
that references the original. Every approved minute is counted twice, in the same
transaction as the record: in ``volunteer_day`` (whose CHECK keeps a volunteer's
day at 24 hours, whatever runs concurrently) and in ``Volunteer.total_minutes``
(the star level reads it); ``approve`` and ``credit`` also keep the statistics
rollups (``rollups.minutes_credited``, ``rollups.star_moved``).

Use cases: 生成时长码 (``generate_code``) and 录入时长码 (``redeem_code``), 申请时长
(``apply_for_hours``) decided on the 计时 page (``decide_records``), 录入时长 by the
group (``record_hours``), corrections by the group (``correct_record``) or asked for
by the volunteer (``request_correction``), and the volunteer's 服务时长 page
(``my_records``, ``totals``).

Lock order, the same in every use case so that PostgreSQL never deadlocks:
volunteer row → hour code → position → volunteer day. On SQLite writers queue for
the write lock up front (``extensions.begin_write``).
"""
from __future__ import annotations

import math
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation, ROUND_HALF_UP

from flask import current_app, has_app_context
from flask_babel import gettext
from limits import RateLimitItemPerSecond
from sqlalchemy import and_, event, func, inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app.extensions import begin_write, db
from app.models import (
    Enrollment, EnrollmentOrigin, EnrollmentStatus, HourCode, Position, Project, RecordSource, RecordStatus,
    ReviewStatus, ServiceRecord, Volunteer, VolunteerDay,
)
from app.security.hardening import Budget
from app.security.scope import current_scope, ensure_administers, oversees
from app.services import reviews, rollups, settings
from app.services.clock import to_local, to_utc, today, utcnow
from app.services.errors import DomainError, ScopeViolation, ValidationFailed

DAY_MINUTES = 1440
LATE_ENTRY_DAYS = 30  # entered more than this many days after the service date: flagged
CODE_DIGITS = 12
CODE_SPACE = 10 ** CODE_DIGITS
CODE_ATTEMPTS = 8  # fresh random codes tried before giving up (a collision is ~1e-6 likely)
MAX_CODE_USES = 100_000
DESCRIPTION_MAX_LENGTH = 255
RECORDS_PAGE_SIZE = 50
ENROLLMENTS_PAGE_SIZE = 200
PENDING_PAGE_SIZE = 200
HOUR_CODES_SHOWN = 100

APPROVE, REJECT = reviews.APPROVE, reviews.REJECT


# --- Input as people type it ---


def parse_day(text) -> date:
    """A date typed as YYYY-MM-DD.

    :raises DomainError: anything else
    """
    if isinstance(text, date) and not isinstance(text, datetime):
        return text
    value = (text or "").strip() if isinstance(text, str) else ""
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise DomainError(gettext("Enter the date as YYYY-MM-DD.")) from None


def parse_time(text) -> time | None:
    """An optional local start time typed as HH:MM (None when blank).

    :raises DomainError: not a time of day
    """
    value = (text or "").strip() if isinstance(text, str) else ""
    if not value:
        return None
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", value)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise DomainError(gettext("Enter the start time as HH:MM, for example 08:30."))
    return time(int(match[1]), int(match[2]))


def parse_hours(text, *, negative: bool = False) -> int:
    """Hours typed with up to two decimals (``2``, ``2.5``, ``-1`` for a correction) as
    whole minutes, rounded half up.

    :raises DomainError: not such a number
    """
    value = (text or "").strip() if isinstance(text, str) else ""
    pattern = r"-?[0-9]{1,2}(\.[0-9]{1,2})?" if negative else r"[0-9]{1,2}(\.[0-9]{1,2})?"
    try:
        if not re.fullmatch(pattern, value):
            raise InvalidOperation
        minutes = (Decimal(value) * 60).to_integral_value(rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise DomainError(gettext("Enter the hours as a number such as 2 or 2.5.")) from None
    return int(minutes)


def parse_max_uses(text) -> int | None:
    """The optional maximum number of uses of an hour code (blank: no limit).

    :raises DomainError: not a whole number from 1 to 100000
    """
    value = (text or "").strip() if isinstance(text, str) else text
    if value in (None, ""):
        return None
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit() and len(value) <= 6):
            raise DomainError(gettext("The maximum number of uses must be a whole number from 1 to %(n)s.",
                                      n=MAX_CODE_USES))
        value = int(value)
    return _check_max_uses(value)


def _check_max_uses(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CODE_USES:
        raise DomainError(gettext("The maximum number of uses must be a whole number from 1 to %(n)s.",
                                  n=MAX_CODE_USES))
    return value


def hours_text(minutes: int | None) -> str:
    """Minutes as hours for a message, at most two decimals: ``150`` → ``2.5``, ``76`` → ``1.27``."""
    return f"{(minutes or 0) / 60:.2f}".rstrip("0").rstrip(".")


# --- Rules ---


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


def check_open(project: Project) -> None:
    """结项: a closed project accepts nothing new.

    :raises DomainError: the project is closed (past its end, closed by hand or by an officer)
    """
    if project.is_closed():
        raise DomainError(gettext("The project %(name)s is closed (结项) and accepts nothing new.",
                                  name=project.name))


def _check_description(text, *, required: bool) -> str | None:
    value = (text or "").strip() if isinstance(text, str) else ""
    if required and not value:
        raise DomainError(gettext("Please describe what you did."))
    if len(value) > DESCRIPTION_MAX_LENGTH:
        raise DomainError(gettext("The description may have at most %(n)s characters.",
                                  n=DESCRIPTION_MAX_LENGTH))
    return value or None


def _check_reason(text) -> str:
    value = (text or "").strip() if isinstance(text, str) else ""
    if not value:
        raise DomainError(gettext("A correction needs a reason."))
    if len(value) > reviews.REASON_MAX_LENGTH:
        raise DomainError(gettext("The reason may have at most %(n)s characters.", n=reviews.REASON_MAX_LENGTH))
    return value


def day_minutes(volunteer_ids, served_on: date) -> dict[int, int]:
    """{volunteer id: approved minutes on ``served_on``} (volunteers with none are absent)."""
    ids = sorted(set(volunteer_ids))
    if not ids:
        return {}
    return dict(db.session.execute(select(VolunteerDay.volunteer_id, VolunteerDay.minutes).where(
        VolunteerDay.volunteer_id.in_(ids), VolunteerDay.served_on == served_on)).all())


def _day_full_message(name: str, used: int, served_on: date) -> str:
    return gettext("%(name)s already has %(hours)s approved hours on %(day)s: a day holds at most 24 hours.",
                   name=name, hours=hours_text(used), day=served_on.isoformat())


# --- The ledger's primitives ---


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
        status=RecordStatus.PENDING, created_by_fk=reviews.acting_user_id(), **fields)
    db.session.add(record)
    db.session.flush()
    if status == RecordStatus.APPROVED:
        approve(record)
    return record


def approve(record: ServiceRecord) -> None:
    """Approve a pending record, credit its minutes (day total and volunteer total) and
    set the officers' flags it deserves.

    :raises DomainError: the record is not pending, or the day would pass 24 hours
    """
    if record.status != RecordStatus.PENDING:
        raise DomainError(gettext("Only pending records can be approved."))
    # Read the actor first: loading an expired g.user autoflushes, and the approval's
    # columns must reach the database in one flush (the append-only guard watches).
    actor, now = reviews.acting_user_id(), utcnow()
    credit(record.volunteer_id, record.served_on, record.minutes, record.volunteer_name)
    record.status, record.approved_on, record.approved_by_fk = RecordStatus.APPROVED, now, actor
    db.session.flush()
    rollups.minutes_credited(record, record.minutes)
    add_flags(record, record_flags(record))


def credit(volunteer_id: int, served_on: date, minutes: int, name: str = "") -> None:
    """Add approved ``minutes`` (negative for a correction) to the volunteer's day and total.

    The volunteer row, then the day row, are locked (PostgreSQL; SQLite writers run
    one at a time in IMMEDIATE transactions), so two credits cannot both pass the
    24-hour check; the table's CHECK refuses what slips past the service anyway.

    :raises DomainError: the day would hold more than 24 hours, or less than nothing
    """
    status, home, before = db.session.execute(
        select(Volunteer.status, Volunteer.region_path, Volunteer.total_minutes)
        .where(Volunteer.id == volunteer_id).with_for_update()).one()
    day = db.session.scalar(select(VolunteerDay).where(
        VolunteerDay.volunteer_id == volunteer_id, VolunteerDay.served_on == served_on)
        .with_for_update().execution_options(populate_existing=True))
    if day is None:
        day = VolunteerDay(volunteer_id=volunteer_id, served_on=served_on, minutes=0)
        db.session.add(day)
    total = day.minutes + minutes
    if total > DAY_MINUTES:
        raise DomainError(_day_full_message(name, day.minutes, served_on))
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
    if status == ReviewStatus.APPROVED:  # 统计分析 counts approved volunteers by star level
        rollups.star_moved(home, before or 0, (before or 0) + minutes)
    db.session.flush()


# --- Flags for officers (set when a record enters the ledger) ---


def bulk_flag_threshold() -> int:
    """HOURS_BULK_FLAG_THRESHOLD (default 20): when a group admin credits this many or
    more volunteers of one project on a day on which an admin also enrolled them
    (added by name + ID, time backfill), those records are flagged — the pattern
    of hours handed to people who were not there."""
    config = current_app.config if has_app_context() else {}
    return int(config.get("HOURS_BULK_FLAG_THRESHOLD", 20))


def _flag_texts() -> dict[str, str]:
    return {
        "overlap": gettext("Overlaps another approved record"),
        "late": gettext("Entered more than %(n)s days after the service date", n=LATE_ENTRY_DAYS),
        "shift": gettext("Longer than the position's shift"),
        "bulk": gettext("Many volunteers enrolled by an admin and credited the same day"),
    }


def record_flags(record: ServiceRecord) -> list[str]:
    """The flag keys a newly approved record earns: ``overlap`` (its times overlap another
    approved record of the volunteer), ``late`` (entered more than 30 days after the
    service date), ``shift`` (longer than its position's shift)."""
    keys = []
    if record.started_at is not None and record.ended_at is not None:
        other = db.session.scalar(select(ServiceRecord.id).where(
            ServiceRecord.volunteer_id == record.volunteer_id,
            ServiceRecord.served_on.between(record.served_on - timedelta(days=1),
                                            record.served_on + timedelta(days=1)),
            ServiceRecord.status == RecordStatus.APPROVED, ServiceRecord.id != record.id,
            ServiceRecord.started_at < record.ended_at, ServiceRecord.ended_at > record.started_at).limit(1))
        if other is not None:
            keys.append("overlap")
    entered = to_local(record.created_on or utcnow()).date()
    if (entered - record.served_on).days > LATE_ENTRY_DAYS:
        keys.append("late")
    position = record.position
    if position is not None and position.shift_minutes and record.minutes > position.shift_minutes:
        keys.append("shift")
    return keys


def add_flags(record: ServiceRecord, keys) -> None:
    """Flag ``record`` with the translated reasons of ``keys`` (kept with earlier ones)."""
    if not keys:
        return
    texts = _flag_texts()
    reasons = [r for r in (record.flag_reasons or "").split("; ") if r]
    for key in keys:
        if texts[key] not in reasons:
            reasons.append(texts[key])
    record.is_flagged = True
    record.flag_reasons = "; ".join(reasons)[:255]


def _flag_bulk_admin_credits(project: Project) -> None:
    """Flag today's group-entry records of volunteers an admin enrolled today, once at
    least ``bulk_flag_threshold()`` such volunteers of the project were credited today."""
    start = to_utc(datetime.combine(today(), time.min))
    enrolled_today = select(Enrollment.volunteer_id).where(
        Enrollment.project_id == project.id, Enrollment.origin == EnrollmentOrigin.ADMIN,
        Enrollment.status == EnrollmentStatus.ACCEPTED, Enrollment.changed_on >= start)
    credited = and_(ServiceRecord.project_id == project.id, ServiceRecord.created_on >= start,
                    ServiceRecord.status == RecordStatus.APPROVED,
                    ServiceRecord.source.in_((RecordSource.GROUP_ENTRY, RecordSource.BACKFILL)),
                    ServiceRecord.volunteer_id.in_(enrolled_today))
    count = db.session.scalar(select(func.count(func.distinct(ServiceRecord.volunteer_id))).where(credited))
    if count < bulk_flag_threshold():
        return
    text = _flag_texts()["bulk"]
    for record in db.session.scalars(select(ServiceRecord).where(credited)):
        if text not in (record.flag_reasons or ""):
            add_flags(record, ["bulk"])
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
        if not oversees(record.region_path, scope):
            raise ScopeViolation()
    changed = 0
    for record in records:
        if record.is_flagged != flagged:
            record.is_flagged = flagged
            record.flag_reasons = (reason or gettext("Flagged by an officer")) if flagged else None
            changed += 1
    db.session.flush()
    return changed


# --- Hour codes (计时 → 生成时长码; 用户中心 → 服务时长 → 录入时长码) ---


def _random_code() -> str:
    return f"{secrets.randbelow(CODE_SPACE):0{CODE_DIGITS}d}"


def generate_code(position: Position, *, served_on: date, minutes: int, max_uses: int | None = None) -> HourCode:
    """生成时长码: a new 12-digit hour code for one activity (date, minutes) of ``position``.

    The code is ``secrets.randbelow(10**12)`` written with leading zeros (a string:
    zeros survive); a collision with an existing code draws again (the unique index
    decides, inside a savepoint, so concurrent draws of one code cannot both pass). Only admins of the project's own group; the project
    must be open and not a backfill project, the date within the project (it may lie
    ahead: codes are made before the event). ``max_uses`` None: no limit.

    :raises ScopeViolation: the user does not administer the project's group
    :raises DomainError: project closed or backfill, date outside the project, minutes
        or max uses out of range
    """
    project = position.project
    ensure_administers(project.group)
    check_open(project)
    if project.is_backfill:
        raise DomainError(gettext("A backfill project takes hours by group entry only: hour codes are not "
                                  "available."))
    check_minutes(minutes)
    max_uses = _check_max_uses(max_uses)
    first, last = project_days(project)
    if not first <= served_on <= last:
        raise DomainError(gettext("The activity date %(day)s lies outside the project (%(first)s to %(last)s).",
                                  day=served_on.isoformat(), first=first.isoformat(), last=last.isoformat()))
    actor = reviews.acting_user_id()
    for _attempt in range(CODE_ATTEMPTS):
        code = _random_code()
        hour_code = HourCode(
            code=code, position_id=position.id, project_id=project.id, group_path=project.group_path,
            region_id=project.region_id, region_path=project.region_path, activity_on=served_on,
            minutes=minutes, max_uses=max_uses, uses=0, created_by_fk=actor)
        try:
            with db.session.begin_nested():  # a taken code fails alone, not the transaction
                db.session.add(hour_code)
        except IntegrityError:  # the unique index: that code exists, draw again
            continue
        return hour_code
    raise DomainError(gettext("No free hour code could be drawn; please try again."))


def codes_of(position: Position) -> list[HourCode]:
    """The position's hour codes, newest activity first — only while the project is open
    (a closed project's codes are shown to nobody)."""
    if position.project.is_closed():
        return []
    return list(db.session.scalars(select(HourCode).where(HourCode.position_id == position.id)
                                   .order_by(HourCode.activity_on.desc(), HourCode.id.desc())
                                   .limit(HOUR_CODES_SHOWN)))


class _SettingBudget(Budget):
    """A Budget sized from 运行参数 (``settings.value``) rather than the config alone."""

    def _item(self) -> RateLimitItemPerSecond:
        return RateLimitItemPerSecond(int(settings.value(self.count_setting)),
                                      int(settings.value(self.window_setting)))


_FAILURE_BUDGET = _SettingBudget("hour-code-failures/user", "HOUR_CODE_FAILURES", 10,
                                 "HOUR_CODE_FAILURE_WINDOW_SECONDS", 3600)


def _invalid_code() -> DomainError:
    return DomainError(gettext("The hour code is invalid or expired."))


def normalize_code(text) -> str | None:
    """The 12 ASCII digits of a typed code (full-width digits read as digits; spaces and
    hyphens between groups are allowed), or None when it cannot be a code."""
    if not isinstance(text, str):
        return None
    value = re.sub(r"[\s-]", "", unicodedata.normalize("NFKC", text[:100]))
    return value if len(value) == CODE_DIGITS and value.isascii() and value.isdigit() else None


def redeem_code(volunteer: Volunteer, code: str) -> ServiceRecord:
    """录入时长码: credit the signed-in volunteer with the code's activity; return the record.

    The code is the group admin's consent: the volunteer is enrolled in the code's
    position (origin ``hour_code``) even if recruitment is members-only or the quota
    is full — but never outside the position's age limits — no group membership is
    created, and the record (source ``hour_code``) is approved at once. Usable from
    the activity date until the project's 结项; each volunteer uses a code once
    (checked, and unique (hour_code_id, volunteer_id)); ``max_uses`` holds under
    concurrency with ``UPDATE hour_code SET uses = uses + 1 WHERE id = :id AND
    (max_uses IS NULL OR uses < max_uses)``. One volunteer's redemptions run one at
    a time (their volunteer row is locked first, as ``memberships.join_group`` does).

    Failed guesses count against the user: not 12 digits, unknown, or of a closed
    project all read "invalid or expired" (nothing tells an unknown code from an
    expired one); a code not valid yet names its date, and counts too. After ``HOUR_CODE_FAILURES`` (default 10) in ``HOUR_CODE_FAILURE_WINDOW_SECONDS``
    (default 3600) every attempt is refused *without looking the code up*, with the
    minutes to wait. Why guessing is hopeless: a guess hits one of K live codes with
    probability K / 10^12. One account gets at most 10 guesses an hour = 240 a day
    = 87,600 a year. For a city with K = 10,000 open codes that is 87,600 × 10^-8
    ≈ 0.09% per account-year (about a thousand years to expect one hit); even with a
    million codes open nationwide, about 8% per account-year — and accounts are
    real-name volunteers approved by officers, so an attacker cannot multiply them,
    and a stolen credit lands on a project the group admin and officers can see.

    :raises DomainError: not an approved volunteer, too many failures, invalid or
        expired code, not yet valid, already used, used up, age limits
    """
    begin_write()
    if volunteer is None:
        raise DomainError(gettext("Only approved volunteers can enter hour codes."))
    user_key = str(volunteer.user_id or f"v{volunteer.id}")
    wait = _FAILURE_BUDGET.wait(user_key)
    if wait:
        raise DomainError(gettext("Too many invalid hour codes. Try again in %(minutes)s minutes.",
                                  minutes=math.ceil(wait / 60)))
    if volunteer.status != ReviewStatus.APPROVED:
        raise DomainError(gettext("Only approved volunteers can enter hour codes."))
    if not isinstance(code, str) or not code.strip():
        raise DomainError(gettext("Please enter the 12-digit hour code."))  # no guess: not counted
    value = normalize_code(code)
    if value is None:
        _FAILURE_BUDGET.spend(user_key)
        raise _invalid_code()
    # Serialise this volunteer's redemptions (PostgreSQL; SQLite runs writers one at a time).
    db.session.execute(select(Volunteer.id).where(Volunteer.id == volunteer.id).with_for_update())
    hour_code = db.session.scalar(select(HourCode).where(HourCode.code == value).options(
        selectinload(HourCode.position).selectinload(Position.project)))
    if hour_code is None or hour_code.project.is_closed() or hour_code.project.is_backfill:
        _FAILURE_BUDGET.spend(user_key)
        raise _invalid_code()
    if hour_code.activity_on > today():
        _FAILURE_BUDGET.spend(user_key)
        raise DomainError(gettext("This hour code can be used from %(day)s.", day=hour_code.activity_on.isoformat()))
    position, project = hour_code.position, hour_code.project
    if db.session.scalar(select(ServiceRecord.id).where(
            ServiceRecord.hour_code_id == hour_code.id, ServiceRecord.volunteer_id == volunteer.id)) is not None:
        raise DomainError(gettext("You have already used this hour code."))
    from app.services import projects

    projects.check_age(position, volunteer, hour_code.activity_on)
    used = db.session.execute(
        update(HourCode).where(HourCode.id == hour_code.id,
                               (HourCode.max_uses.is_(None)) | (HourCode.uses < HourCode.max_uses))
        .values(uses=HourCode.uses + 1).execution_options(synchronize_session=False))
    if used.rowcount != 1:
        raise DomainError(gettext("This hour code has been used the maximum number of times."))
    db.session.expire(hour_code, ["uses"])
    projects.enroll(position, volunteer, origin=EnrollmentOrigin.HOUR_CODE, over_quota=True)
    started_at = ended_at = None
    if position.shift_start is not None:
        started_at = to_utc(datetime.combine(hour_code.activity_on, position.shift_start))
        ended_at = started_at + timedelta(minutes=hour_code.minutes)
    try:
        return new_record(volunteer=volunteer, project=project, position=position,
                          served_on=hour_code.activity_on, minutes=hour_code.minutes,
                          source=RecordSource.HOUR_CODE, status=RecordStatus.APPROVED,
                          hour_code_id=hour_code.id, started_at=started_at, ended_at=ended_at)
    except IntegrityError:  # the unique (hour_code_id, volunteer_id): a concurrent double use
        db.session.rollback()
        raise DomainError(gettext("You have already used this hour code.")) from None


# --- 申请时长 and its decision on 计时 ---


def apply_for_hours(volunteer: Volunteer, enrollment: Enrollment, *, served_on: date, minutes: int,
                    description: str) -> ServiceRecord:
    """申请时长: a pending record (source ``application``) for the volunteer's own
    accepted enrollment; the group's admins decide it on 计时.

    :raises ScopeViolation: not the volunteer's own enrollment
    :raises DomainError: enrollment not accepted, project closed, date outside the
        project or in the future, minutes out of range, the day already full,
        no description
    """
    if volunteer is None or enrollment is None or enrollment.volunteer_id != volunteer.id:
        raise ScopeViolation()
    if volunteer.status != ReviewStatus.APPROVED:
        raise DomainError(gettext("Only approved volunteers can apply for hours."))
    if enrollment.status != EnrollmentStatus.ACCEPTED:
        raise DomainError(gettext("You can apply for hours only in a position you are signed up for."))
    project = enrollment.project
    check_open(project)
    check_minutes(minutes)
    check_service_day(project, served_on)
    description = _check_description(description, required=True)
    used = day_minutes([volunteer.id], served_on).get(volunteer.id, 0)
    if used + minutes > DAY_MINUTES:
        raise DomainError(_day_full_message(volunteer.real_name, used, served_on))
    return new_record(volunteer=volunteer, project=project, position=enrollment.position,
                      served_on=served_on, minutes=minutes, source=RecordSource.APPLICATION,
                      status=RecordStatus.PENDING, description=description)


def pending_clause(position: Position):
    """SQL predicate: the position's pending records (applications and correction requests)."""
    return and_(ServiceRecord.position_id == position.id, ServiceRecord.status == RecordStatus.PENDING)


def decide_records(records: list[ServiceRecord], decision: str, reason: str | None = None, *,
                   scope=None) -> list[ServiceRecord]:
    """Approve (credit, 24-hour rule) or reject (with the reason the volunteer reads)
    pending records — applications and correction requests — all or none.

    Each record's group must be administered by the user directly; the rows are
    re-read under a lock, so two admins deciding at once cannot both succeed.

    :raises ScopeViolation: a record of a group the user does not administer
    :raises DomainError: unknown decision, reject without reason, nothing selected,
        a record not pending (any more), a day past 24 hours, a correction that
        would take more than its record holds
    """
    scope = scope if scope is not None else current_scope()
    reason = reviews.clean_decision(
        decision, reason, records,
        reason_required=gettext("A rejection needs a reason the volunteer can read."),
        nothing_selected=gettext("No records selected."))
    locked = reviews.lock_for_decision(ServiceRecord, records, selectinload(ServiceRecord.group))
    for record in locked:
        ensure_administers(record.group, scope)
    not_pending = [r for r in locked if r.status != RecordStatus.PENDING]
    if not_pending:
        raise DomainError(*[gettext("The record of %(name)s on %(day)s is not pending (%(status)s).",
                                    name=r.volunteer_name, day=r.served_on.isoformat(),
                                    status=RecordStatus(r.status).label) for r in not_pending])
    # Credits lock volunteer rows: take them in volunteer order, as group entry does.
    for record in sorted(locked, key=lambda r: (r.volunteer_id, r.id)):
        if decision == APPROVE:
            if record.source == RecordSource.CORRECTION:
                _check_correction(_lock_original(record.corrects_id), record.minutes)
            approve(record)
        else:
            record.status = RecordStatus.REJECTED
            record.reject_reason = reason
    db.session.flush()
    return locked


# --- 录入时长: group entry on 计时 ---


def record_hours(position: Position, volunteers: list[Volunteer], *, served_on: date, minutes: int,
                 description: str | None = None, start_time: time | None = None) -> list[ServiceRecord]:
    """录入时长: approved records for the ticked volunteers of ``position``, all or none.

    Source ``group_entry`` (``backfill`` in a 时间补录招募 project). Only admins of the
    project's own group, only while the project is open, only volunteers with an
    accepted enrollment in this position; the date lies within the project and not in
    the future; no volunteer's day may pass 24 hours. ``start_time`` (local) gives
    the records their times (checked for overlaps).

    :raises ScopeViolation: the user does not administer the project's group
    :raises ValidationFailed: nobody ticked, a volunteer not enrolled, a day past 24 hours
    :raises DomainError: closed project, date or minutes out of range
    """
    project = position.project
    ensure_administers(project.group)
    check_open(project)
    check_minutes(minutes)
    check_service_day(project, served_on)
    description = _check_description(description, required=False)
    by_id = {v.id: v for v in volunteers if v is not None}
    if not by_id:
        raise ValidationFailed(gettext("Tick the volunteers to record hours for."))
    enrolled = set(db.session.scalars(select(Enrollment.volunteer_id).where(
        Enrollment.position_id == position.id, Enrollment.volunteer_id.in_(sorted(by_id)),
        Enrollment.status == EnrollmentStatus.ACCEPTED)))
    errors = [gettext("%(name)s is not signed up for the position %(position)s.",
                      name=by_id[vid].real_name, position=position.name)
              for vid in sorted(by_id) if vid not in enrolled]
    used = day_minutes(by_id, served_on)
    errors += [_day_full_message(by_id[vid].real_name, used[vid], served_on)
               for vid in sorted(by_id) if used.get(vid, 0) + minutes > DAY_MINUTES]
    if errors:
        raise ValidationFailed(*errors)
    started_at = ended_at = None
    if start_time is not None:
        started_at = to_utc(datetime.combine(served_on, start_time))
        ended_at = started_at + timedelta(minutes=minutes)
    source = RecordSource.BACKFILL if project.is_backfill else RecordSource.GROUP_ENTRY
    records = [new_record(volunteer=by_id[vid], project=project, position=position, served_on=served_on,
                          minutes=minutes, source=source, status=RecordStatus.APPROVED,
                          description=description, started_at=started_at, ended_at=ended_at)
               for vid in sorted(by_id)]
    _flag_bulk_admin_credits(project)
    return records


def enrolled_volunteers(position: Position, *, page: int = 0,
                        page_size: int = ENROLLMENTS_PAGE_SIZE) -> tuple[list[Enrollment], bool]:
    """One page of the position's accepted enrollments (计时: the people to tick), by name."""
    rows = list(db.session.scalars(
        select(Enrollment).where(Enrollment.position_id == position.id,
                                 Enrollment.status == EnrollmentStatus.ACCEPTED)
        .order_by(Enrollment.volunteer_name, Enrollment.id)
        .offset(max(page, 0) * page_size).limit(page_size + 1)))
    return rows[:page_size], len(rows) > page_size


def pending_records(position: Position, *, limit: int = PENDING_PAGE_SIZE) -> tuple[list[ServiceRecord], bool]:
    """The position's pending applications and correction requests, oldest first, with
    the corrected records loaded; and whether more wait than are shown."""
    rows = list(db.session.scalars(
        select(ServiceRecord).where(pending_clause(position))
        .options(selectinload(ServiceRecord.corrects))
        .order_by(ServiceRecord.id).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def approved_records(position: Position, *, page: int = 0,
                     page_size: int = RECORDS_PAGE_SIZE) -> tuple[list[ServiceRecord], bool]:
    """One page of the position's approved records, newest first (计时: 更正)."""
    rows = list(db.session.scalars(
        select(ServiceRecord).where(ServiceRecord.position_id == position.id,
                                    ServiceRecord.status == RecordStatus.APPROVED)
        .order_by(ServiceRecord.served_on.desc(), ServiceRecord.id.desc())
        .offset(max(page, 0) * page_size).limit(page_size + 1)))
    return rows[:page_size], len(rows) > page_size


def position_for_admin(position_id: int | None) -> Position:
    """The position with this id when the user administers its project's group (计时).

    :raises ScopeViolation: unknown id, or not an admin of the project's own group
    """
    position = db.session.get(Position, position_id) if position_id is not None else None
    if position is None:
        raise ScopeViolation()
    ensure_administers(position.project.group)
    return position


# --- Corrections ---


def _lock_original(record_id: int | None) -> ServiceRecord:
    original = db.session.scalar(select(ServiceRecord).where(ServiceRecord.id == record_id)
                                 .with_for_update().execution_options(populate_existing=True))
    if original is None:
        raise ScopeViolation()
    return original


def corrected_minutes(record: ServiceRecord) -> int:
    """The record's minutes with its approved corrections applied."""
    return record.minutes + (db.session.scalar(select(func.coalesce(func.sum(ServiceRecord.minutes), 0)).where(
        ServiceRecord.corrects_id == record.id, ServiceRecord.status == RecordStatus.APPROVED)) or 0)


def _check_correctable(record: ServiceRecord, *, imported: bool = False) -> None:
    """``imported``: the caller corrects a record transferred from another system (an
    officer, ``correct_imported_record``); every other path refuses those."""
    if record.status != RecordStatus.APPROVED:
        raise DomainError(gettext("Only approved records can be corrected."))
    if record.source == RecordSource.CORRECTION:
        raise DomainError(gettext("Correct the original record, not a correction."))
    if (record.source == RecordSource.TRANSFER_IN) != imported:
        if imported:
            raise DomainError(gettext("Only records transferred from another system are corrected here; the "
                                      "group that made this record corrects it."))
        # 转移接续: it names no group here; officers of its region correct it.
        raise DomainError(gettext("A record transferred from another system is corrected by an officer of its "
                                  "region."))


def _check_correction(original: ServiceRecord, minutes, *, imported: bool = False) -> int:
    """A correction's minutes: a whole number, not zero, leaving the record (with its
    approved corrections) between 0 and 24 hours.

    :raises DomainError: otherwise
    """
    _check_correctable(original, imported=imported)
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes == 0 \
            or not -DAY_MINUTES <= minutes <= DAY_MINUTES:
        raise DomainError(gettext("A correction adds or takes away up to 24 hours, and not zero."))
    current = corrected_minutes(original)
    if current + minutes < 0:
        raise DomainError(gettext("A correction cannot take away more than the record's %(hours)s hours.",
                                  hours=hours_text(current)))
    if current + minutes > DAY_MINUTES:
        raise DomainError(gettext("Service time must be more than 0 and at most 24 hours."))
    return minutes


def correct_record(record: ServiceRecord, *, minutes: int, reason: str) -> ServiceRecord:
    """更正 by the group admin: a new approved record (source ``correction``) referencing
    ``record``, of ``minutes`` (negative to take hours away), with a reason. The audit
    log records it like every insert. Allowed after 结项 too: it fixes the ledger,
    it adds no new service.

    :raises ScopeViolation: not an admin of the record's group
    :raises DomainError: record not approved or itself a correction, no reason,
        minutes zero or out of range, the record or its day would leave 0..24 hours
    """
    ensure_administers(record.group)
    reason = _check_reason(reason)
    original = _lock_original(record.id)
    _check_correction(original, minutes)
    return new_record(volunteer=original.volunteer, project=original.project, position=original.position,
                      served_on=original.served_on, minutes=minutes, source=RecordSource.CORRECTION,
                      status=RecordStatus.APPROVED, corrects_id=original.id, reason=reason)


def correct_imported_record(record: ServiceRecord, *, minutes: int, reason: str) -> ServiceRecord:
    """更正 of a record transferred from another system (转移接续) by an officer whose
    regions hold its service region (where it was imported: imports stay inside the
    importer's regions): a new approved ``correction`` record referencing it, like a
    group admin's correction of the group's own record.

    :raises ScopeViolation: not an officer of the record's region
    :raises DomainError: as ``correct_record``; the record was not transferred in
    """
    scope = current_scope()
    if record is None or not oversees(record.region_path, scope):
        raise ScopeViolation()
    reason = _check_reason(reason)
    original = _lock_original(record.id)
    _check_correction(original, minutes, imported=True)
    row = ServiceRecord(
        volunteer_id=original.volunteer_id, volunteer_name=original.volunteer_name,
        volunteer_no=original.volunteer_no, region_id=original.region_id, region_path=original.region_path,
        external_project=original.external_project, external_position=original.external_position,
        external_org=original.external_org, served_on=original.served_on, minutes=minutes,
        source=RecordSource.CORRECTION, status=RecordStatus.PENDING, corrects_id=original.id, reason=reason,
        created_by_fk=reviews.acting_user_id())
    db.session.add(row)
    db.session.flush()
    approve(row)
    return row


def request_correction(volunteer: Volunteer, record: ServiceRecord, *, minutes: int, reason: str) -> ServiceRecord:
    """更正申请 by the volunteer on their own approved record: a pending correction the
    group's admins decide on 计时 (one pending request per record).

    :raises ScopeViolation: not the volunteer's own record
    :raises DomainError: as ``correct_record``, or a request already pending
    """
    if volunteer is None or record is None or record.volunteer_id != volunteer.id:
        raise ScopeViolation()
    reason = _check_reason(reason)
    _check_correction(record, minutes)
    if db.session.scalar(select(ServiceRecord.id).where(
            ServiceRecord.corrects_id == record.id, ServiceRecord.status == RecordStatus.PENDING)) is not None:
        raise DomainError(gettext("A correction of this record is already waiting for the group's decision."))
    return new_record(volunteer=volunteer, project=record.project, position=record.position,
                      served_on=record.served_on, minutes=minutes, source=RecordSource.CORRECTION,
                      status=RecordStatus.PENDING, corrects_id=record.id, reason=reason)


# --- 用户中心 → 服务时长 ---


@dataclass(frozen=True)
class Totals:
    """A volunteer's approved minutes (``Volunteer.total_minutes``), pending minutes and
    count, and star level."""

    approved_minutes: int
    pending_minutes: int
    pending_count: int
    star_level: int


def totals(volunteer: Volunteer) -> Totals:
    """The volunteer's totals, read fresh from the database (two queries)."""
    from app.services.volunteers import star_level

    approved = db.session.scalar(select(Volunteer.total_minutes).where(Volunteer.id == volunteer.id)) or 0
    pending_minutes, pending_count = db.session.execute(
        select(func.coalesce(func.sum(ServiceRecord.minutes), 0), func.count(ServiceRecord.id)).where(
            ServiceRecord.volunteer_id == volunteer.id, ServiceRecord.status == RecordStatus.PENDING)).one()
    return Totals(approved, int(pending_minutes or 0), int(pending_count or 0), star_level(approved))


def my_records(volunteer: Volunteer, *, page: int = 0,
               page_size: int = RECORDS_PAGE_SIZE) -> tuple[list[ServiceRecord], bool]:
    """One page of the volunteer's records, newest service date first, with project,
    position and group loaded (four queries whatever the page holds); and whether
    more follow."""
    if volunteer is None:
        return [], False
    page_size = max(1, min(page_size, RECORDS_PAGE_SIZE))
    rows = list(db.session.scalars(
        select(ServiceRecord).where(ServiceRecord.volunteer_id == volunteer.id)
        .options(selectinload(ServiceRecord.project), selectinload(ServiceRecord.position),
                 selectinload(ServiceRecord.group))
        .order_by(ServiceRecord.served_on.desc(), ServiceRecord.id.desc())
        .offset(max(page, 0) * page_size).limit(page_size + 1)))
    return rows[:page_size], len(rows) > page_size


def pending_corrections_of(records: list[ServiceRecord]) -> set[int]:
    """Ids among ``records`` that have a correction request pending (one query)."""
    ids = [r.id for r in records]
    if not ids:
        return set()
    return set(db.session.scalars(select(ServiceRecord.corrects_id).where(
        ServiceRecord.corrects_id.in_(ids), ServiceRecord.status == RecordStatus.PENDING)))


# --- The append-only guard ---


class LedgerViolation(DomainError):
    """An approved service record was about to be changed or deleted."""


# What may still change on an approved record: the officers' flags, bookkeeping, and
# copies rewritten when divisions or names are renumbered (paths, name, number).
MUTABLE_WHEN_APPROVED = frozenset({
    "is_flagged", "flag_reasons", "changed_on", "region_id", "region", "region_path", "group_path",
    "volunteer_name", "volunteer_no",
})


def _old_status(session, record: ServiceRecord) -> str | None:
    hist = inspect(record).attrs.status.history
    if hist.deleted:
        return hist.deleted[0]
    if hist.unchanged:
        return hist.unchanged[0]
    return session.execute(select(ServiceRecord.status).where(ServiceRecord.id == record.id)).scalar()


def _guard_ledger(session, _flush_context, _instances) -> None:
    """before_flush: refuse to UPDATE a ledger column of, or DELETE, an approved record."""
    for obj in session.deleted:
        if isinstance(obj, ServiceRecord) and _old_status(session, obj) == RecordStatus.APPROVED:
            raise LedgerViolation(gettext("Approved service records are never deleted; make a correction."))
    for obj in session.dirty:
        if not isinstance(obj, ServiceRecord):
            continue
        state = inspect(obj)
        changed = [attr.key for attr in state.attrs
                   if attr.key not in MUTABLE_WHEN_APPROVED and attr.history.has_changes()]
        if changed and _old_status(session, obj) == RecordStatus.APPROVED:
            raise LedgerViolation(gettext("Approved service records are never changed; make a correction."))


def init_app(app=None) -> None:
    """Install the append-only guard on the session class, once per process."""
    from flask_sqlalchemy.session import Session as FlaskSession

    if not event.contains(FlaskSession, "before_flush", _guard_ledger):
        event.listen(FlaskSession, "before_flush", _guard_ledger)
