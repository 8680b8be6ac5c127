"""The record book: training records (培训) and evaluations (评价) of volunteers,
two of the five record categories the regulations require (DESIGN.md §5), and
the volunteer's record page that shows all five.

Rules:

- A training (name, organiser, date, hours) is recorded by an admin of a group the
  user administers directly, for active members of that group (it then belongs to
  the group: its region and ``group_path``); or by an officer for a volunteer living
  in their region (no group; the volunteer's region). Its hours are kept apart from
  service hours: they never reach the ledger, ``total_minutes`` or the star level.
- An evaluation rates a member's service on one position of the group's projects:
  守时 (punctuality), 态度 (attitude), 技能 (skill), each 1–5, with a comment; the
  overall ``rating`` is their mean rounded half up. Only the project group's own
  admins write it, for an active member of that group who took the position (an
  accepted enrollment in a project that has begun, or an approved record in it);
  one evaluation per volunteer and position. It lies in the project's region.
- Ids outside the user's scope answer 404 (``ScopeViolation``); a visible volunteer
  who does not qualify gets a message naming them. Nothing is half-written.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from flask_babel import gettext
from sqlalchemy import exists, select
from sqlalchemy.orm import selectinload

from app.extensions import db
from app.models import (
    Enrollment, EnrollmentStatus, Evaluation, Membership, MembershipStatus, Position, Project, RecordStatus,
    ServiceRecord, Training, Volunteer, VolunteerGroup,
)
from app.security.scope import Scope, current_scope, ensure_administers, oversees, scope_clause
from app.services import hours
from app.services.clock import today, utcnow
from app.services.errors import DomainError, ScopeViolation, ValidationFailed

TITLE_MAX = PROVIDER_MAX = 120  # Training.title, Training.provider
COMMENT_MAX = 500
MAX_TRAINEES = 200  # volunteers ticked for one training entry
PAGE_SIZE = 50
MEMBERS_PAGE_SIZE = 100
POSITIONS_SHOWN = 100
SCORES = ("punctuality", "attitude", "skill")


# --- The contract used by certificates (and the record page) ---


def trainings_of(volunteer: Volunteer, *, limit: int | None = None) -> list[Training]:
    """The volunteer's training records, newest first (all of them, or the latest ``limit``).

    Not scoped: the caller has already decided that the volunteer may be shown.
    """
    query = (select(Training).where(Training.volunteer_id == volunteer.id)
             .order_by(Training.trained_on.desc(), Training.id.desc()))
    return list(db.session.scalars(query.limit(limit) if limit else query))


def evaluations_of(volunteer: Volunteer, *, limit: int | None = None) -> list[Evaluation]:
    """The volunteer's evaluations, newest first (all of them, or the latest ``limit``).

    Not scoped: the caller has already decided that the volunteer may be shown.
    """
    query = (select(Evaluation).where(Evaluation.volunteer_id == volunteer.id)
             .order_by(Evaluation.evaluated_on.desc(), Evaluation.id.desc()))
    return list(db.session.scalars(query.limit(limit) if limit else query))


def names_for(rows) -> dict[str, dict[int, str]]:
    """Names of the groups, projects and positions that ``rows`` (trainings and
    evaluations) refer to, three queries at most whatever their number:
    ``{"group": {id: name}, "project": {...}, "position": {...}}``."""
    wanted = {"group": set(), "project": set(), "position": set()}
    for row in rows:
        if getattr(row, "group_id", None):
            wanted["group"].add(row.group_id)
        if getattr(row, "project_id", None):
            wanted["project"].add(row.project_id)
        if getattr(row, "position_id", None):
            wanted["position"].add(row.position_id)
    models = {"group": VolunteerGroup, "project": Project, "position": Position}
    names: dict[str, dict[int, str]] = {}
    for key, ids in wanted.items():
        model = models[key]
        names[key] = {row.id: row.name for row in db.session.execute(
            select(model.id, model.name).where(model.id.in_(sorted(ids))))} if ids else {}
    return names


def rating_of(punctuality: int, attitude: int, skill: int) -> int:
    """The overall rating: the mean of the three scores, rounded half up."""
    mean = Decimal(punctuality + attitude + skill) / 3
    return int(mean.to_integral_value(rounding=ROUND_HALF_UP))


# --- Input ---


def _text(errors: dict, field: str, value, limit: int, *, required: str, too_long: str) -> str:
    text = " ".join(str(value or "").split()) if isinstance(value, str) or value is None else ""
    if not text:
        errors.setdefault(field, []).append(required)
    elif len(text) > limit:
        errors.setdefault(field, []).append(too_long)
    return text


def _score(errors: dict, field: str, value) -> int | None:
    """A score typed or sent as 1..5."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value.strip()) == 1:
        number = int(value.strip())
    else:
        number = None
    if number is None or not 1 <= number <= 5:
        errors.setdefault(field, []).append(gettext("Choose a score from 1 to 5."))
        return None
    return number


def _raise(errors: dict) -> None:
    if errors:
        raise ValidationFailed(fields=errors)


# --- Who ---


def _visible_volunteers(ids, scope: Scope) -> list[Volunteer]:
    """The volunteers with these ids, all inside the user's scope, in the given order.

    :raises ScopeViolation: an id that is unknown or outside the scope
    """
    ids = list(dict.fromkeys(ids))
    found = {v.id: v for v in db.session.scalars(
        select(Volunteer).where(Volunteer.id.in_(ids), scope_clause(Volunteer, scope)))} if ids else {}
    if len(found) != len(ids):
        raise ScopeViolation()
    return [found[i] for i in ids]


def _active_member_ids(group: VolunteerGroup, volunteer_ids) -> set[int]:
    return set(db.session.scalars(select(Membership.volunteer_id).where(
        Membership.group_id == group.id, Membership.volunteer_id.in_(list(volunteer_ids)),
        Membership.status == MembershipStatus.ACTIVE)))


def _not_member_message(volunteer: Volunteer, group: VolunteerGroup) -> str:
    return gettext("%(name)s is not a member of %(group)s.", name=volunteer.real_name, group=group.name)


# --- Training (培训) ---


def record_training(volunteer_ids, *, group: VolunteerGroup | None, title, provider, trained_on,
                    hours_text) -> list[Training]:
    """Record one training for each of the ticked volunteers, all or none.

    With ``group``: the user administers it directly and every volunteer is an active
    member. Without: the user is an officer of every volunteer's home region (or the
    platform admin).

    :raises ScopeViolation: a group the user does not administer, a volunteer outside
        the user's scope
    :raises ValidationFailed: missing or bad fields (by field), nobody ticked, a
        non-member, a training recorded twice
    """
    scope = current_scope()
    if group is not None:
        ensure_administers(group, scope)
    elif not (scope.everything or scope.officer_paths):
        raise ScopeViolation()
    errors: dict[str, list[str]] = {}
    title = _text(errors, "title", title, TITLE_MAX, required=gettext("The training's name is required."),
                  too_long=gettext("The training's name can be at most %(n)s characters long.", n=TITLE_MAX))
    provider = _text(errors, "provider", provider, PROVIDER_MAX, required=gettext("The organiser is required."),
                     too_long=gettext("The organiser can be at most %(n)s characters long.", n=PROVIDER_MAX))
    day = None
    try:
        day = hours.parse_day(trained_on)
        if day > today():
            errors.setdefault("trained_on", []).append(gettext("The training date cannot be in the future."))
    except DomainError as err:
        errors.setdefault("trained_on", []).extend(err.messages)
    minutes = None
    try:
        minutes = hours.parse_hours(hours_text)
        if minutes <= 0:
            errors.setdefault("hours", []).append(gettext("Training hours must be more than 0."))
    except DomainError as err:
        errors.setdefault("hours", []).extend(err.messages)
    ids = list(dict.fromkeys(volunteer_ids))
    if not ids:
        errors.setdefault("volunteer", []).append(gettext("Tick at least one volunteer."))
    elif len(ids) > MAX_TRAINEES:
        errors.setdefault("volunteer", []).append(
            gettext("Record at most %(n)s volunteers at a time.", n=MAX_TRAINEES))
        ids = []
    chosen = _visible_volunteers(ids, scope) if ids else []
    if group is not None:
        members = _active_member_ids(group, [v.id for v in chosen])
        for volunteer in chosen:
            if volunteer.id not in members:
                errors.setdefault("volunteer", []).append(_not_member_message(volunteer, group))
    else:
        for volunteer in chosen:
            if not oversees(volunteer.region_path, scope):
                raise ScopeViolation()
    if chosen and day is not None and title:
        twice = set(db.session.scalars(select(Training.volunteer_id).where(
            Training.volunteer_id.in_([v.id for v in chosen]), Training.title == title,
            Training.trained_on == day,
            Training.group_id == group.id if group is not None else Training.group_id.is_(None))))
        for volunteer in chosen:
            if volunteer.id in twice:
                errors.setdefault("volunteer", []).append(gettext(
                    "%(name)s already has this training on %(day)s.", name=volunteer.real_name,
                    day=day.isoformat()))
    _raise(errors)
    rows = []
    for volunteer in chosen:
        place = group if group is not None else volunteer
        row = Training(volunteer_id=volunteer.id, group_id=group.id if group is not None else None,
                       group_path=group.group_path if group is not None else None, title=title,
                       provider=provider, trained_on=day, minutes=minutes,
                       region_id=place.region_id, region_path=place.region_path)
        db.session.add(row)
        rows.append(row)
    db.session.flush()
    return rows


# --- Evaluation (评价) ---


def evaluable_positions(group: VolunteerGroup, *, limit: int = POSITIONS_SHOWN) -> list[Position]:
    """Positions of the group's projects that have begun, newest project first, with
    their project loaded (two queries)."""
    return list(db.session.scalars(
        select(Position).join(Project, Project.id == Position.project_id)
        .where(Project.group_id == group.id, Project.starts_at <= utcnow())
        .options(selectinload(Position.project))
        .order_by(Project.starts_at.desc(), Project.id.desc(), Position.id).limit(limit)))


def _served_in(position: Position, volunteer: Volunteer) -> bool:
    """True when the volunteer took the position: an accepted enrollment in a project
    that has begun, or an approved service record in it."""
    if position.project.starts_at <= utcnow() and db.session.scalar(select(exists().where(
            Enrollment.position_id == position.id, Enrollment.volunteer_id == volunteer.id,
            Enrollment.status == EnrollmentStatus.ACCEPTED))):
        return True
    return bool(db.session.scalar(select(exists().where(
        ServiceRecord.position_id == position.id, ServiceRecord.volunteer_id == volunteer.id,
        ServiceRecord.status == RecordStatus.APPROVED))))


def evaluate(volunteer_id, position_id, *, punctuality, attitude, skill, comment,
             group: VolunteerGroup | None = None) -> Evaluation:
    """Rate a member's service on one position of the group's projects (of ``group``
    when given: the page's group).

    :raises ScopeViolation: the position is not of a project of a group the user
        administers directly (or not of ``group``), or the volunteer lies outside the
        user's scope
    :raises ValidationFailed: bad scores or comment (by field), not a member, did not
        take the position, evaluated there already
    """
    scope = current_scope()
    position = db.session.get(Position, position_id) if position_id else None
    if position is None:
        raise ScopeViolation()
    project = position.project
    if group is not None and project.group_id != group.id:
        raise ScopeViolation()
    group = project.group
    ensure_administers(group, scope)
    errors: dict[str, list[str]] = {}
    scores = {field: _score(errors, field, value)
              for field, value in zip(SCORES, (punctuality, attitude, skill))}
    comment = _text(errors, "comment", comment, COMMENT_MAX, required=gettext("A comment is required."),
                    too_long=gettext("The comment can be at most %(n)s characters long.", n=COMMENT_MAX))
    if not volunteer_id:
        errors.setdefault("volunteer", []).append(gettext("Choose the volunteer to evaluate."))
        _raise(errors)
    volunteer = _visible_volunteers([volunteer_id], scope)[0]
    if not _active_member_ids(group, [volunteer.id]):
        errors.setdefault("volunteer", []).append(_not_member_message(volunteer, group))
    elif not _served_in(position, volunteer):
        errors.setdefault("volunteer", []).append(gettext(
            "%(name)s has not served as %(position)s in %(project)s.", name=volunteer.real_name,
            position=position.name, project=project.name))
    elif db.session.scalar(select(exists().where(
            Evaluation.volunteer_id == volunteer.id, Evaluation.position_id == position.id))):
        errors.setdefault("volunteer", []).append(gettext(
            "%(name)s has already been evaluated as %(position)s in %(project)s.", name=volunteer.real_name,
            position=position.name, project=project.name))
    _raise(errors)
    row = Evaluation(
        volunteer_id=volunteer.id, group_id=group.id, group_path=group.group_path, project_id=project.id,
        position_id=position.id, rating=rating_of(*scores.values()), comment=comment, evaluated_on=today(),
        region_id=project.region_id, region_path=project.region_path, **scores)
    db.session.add(row)
    db.session.flush()
    return row


# --- Lists for the 培训与评价 page ---


def _page(query, page: int, page_size: int):
    rows = list(db.session.scalars(query.offset(max(page, 0) * page_size).limit(page_size + 1)))
    return rows[:page_size], len(rows) > page_size


def members_of(group: VolunteerGroup, *, q: str = "", page: int = 0,
               page_size: int = MEMBERS_PAGE_SIZE) -> tuple[list[Membership], bool]:
    """One page of the group's active members by name (an exact name or volunteer
    number narrows it), and whether more follow. One query; the copies on the
    membership rows are enough."""
    query = select(Membership).where(Membership.group_id == group.id,
                                     Membership.status == MembershipStatus.ACTIVE)
    q = (q or "").strip()[:64]
    if q:
        query = query.where((Membership.volunteer_name == q) | (Membership.volunteer_no == q.upper()))
    return _page(query.order_by(Membership.volunteer_name, Membership.id), page, page_size)


def group_trainings(group: VolunteerGroup, *, page: int = 0, page_size: int = PAGE_SIZE):
    """One page of the trainings the group recorded, newest first, volunteers loaded."""
    return _page(select(Training).where(Training.group_id == group.id)
                 .options(selectinload(Training.volunteer))
                 .order_by(Training.trained_on.desc(), Training.id.desc()), page, page_size)


def group_evaluations(group: VolunteerGroup, *, page: int = 0, page_size: int = PAGE_SIZE):
    """One page of the group's evaluations, newest first, volunteers loaded."""
    return _page(select(Evaluation).where(Evaluation.group_id == group.id)
                 .options(selectinload(Evaluation.volunteer))
                 .order_by(Evaluation.evaluated_on.desc(), Evaluation.id.desc()), page, page_size)


def _officer_scope(scope: Scope) -> Scope:
    """Only the officer bindings (and the platform admin): the region-wide list is
    theirs, not a group admin's or a volunteer's."""
    return Scope(everything=scope.everything, officer_paths=scope.officer_paths)


def region_trainings(scope: Scope | None = None, *, page: int = 0, page_size: int = PAGE_SIZE):
    """One page of the trainings in the officer's region, newest first."""
    clause = scope_clause(Training, _officer_scope(scope or current_scope()))
    return _page(select(Training).where(clause).options(selectinload(Training.volunteer))
                 .order_by(Training.trained_on.desc(), Training.id.desc()), page, page_size)


def region_evaluations(scope: Scope | None = None, *, page: int = 0, page_size: int = PAGE_SIZE):
    """One page of the evaluations in the officer's region, newest first."""
    clause = scope_clause(Evaluation, _officer_scope(scope or current_scope()))
    return _page(select(Evaluation).where(clause).options(selectinload(Evaluation.volunteer))
                 .order_by(Evaluation.evaluated_on.desc(), Evaluation.id.desc()), page, page_size)


def administered_group(group_id, scope: Scope | None = None) -> VolunteerGroup:
    """The approved group with this id that the user administers directly.

    :raises ScopeViolation: anything else
    """
    from app.services.groups import is_approved

    group = db.session.get(VolunteerGroup, group_id) if group_id else None
    if not is_approved(group):
        raise ScopeViolation()
    ensure_administers(group, scope)
    return group


# --- The volunteer's record (/my/record): the five categories ---


RECENT_RECORDS = 10
RECORD_ROWS = 50  # trainings, evaluations and honors shown on the record page


@dataclass
class VolunteerRecord:
    """What the record page shows; loaded with a fixed number of queries."""

    volunteer: Volunteer
    totals: "hours.Totals"
    recent: list[ServiceRecord]
    trainings: list[Training]
    training_minutes: int
    honors: list
    evaluations: list[Evaluation]
    names: dict[str, dict[int, str]]


def record_of(volunteer: Volunteer) -> VolunteerRecord:
    """The five record categories of one volunteer: basic data (the row itself),
    service summary (totals, star level, latest approved records), training, honors
    and evaluations. A constant number of queries, whatever the rows."""
    from sqlalchemy import func

    from app.services.honors import honors_of_volunteer

    recent = list(db.session.scalars(
        select(ServiceRecord).where(ServiceRecord.volunteer_id == volunteer.id,
                                    ServiceRecord.status == RecordStatus.APPROVED)
        .options(selectinload(ServiceRecord.project), selectinload(ServiceRecord.position),
                 selectinload(ServiceRecord.group))
        .order_by(ServiceRecord.served_on.desc(), ServiceRecord.id.desc()).limit(RECENT_RECORDS)))
    trainings = trainings_of(volunteer, limit=RECORD_ROWS)
    training_minutes = db.session.scalar(select(func.coalesce(func.sum(Training.minutes), 0)).where(
        Training.volunteer_id == volunteer.id)) or 0
    evaluations = evaluations_of(volunteer, limit=RECORD_ROWS)
    honors = honors_of_volunteer(volunteer, limit=RECORD_ROWS)
    return VolunteerRecord(
        volunteer=volunteer, totals=hours.totals(volunteer), recent=recent, trainings=trainings,
        training_minutes=int(training_minutes), honors=honors, evaluations=evaluations,
        names=names_for(trainings + evaluations))
