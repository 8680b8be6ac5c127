"""Complaints (举报): a signed-in user reports a service record, a project or a group
with a reason; officers of the subject's region resolve or dismiss it (区域监管 → 举报处理).

What may be reported, by whom (anything else answers 404, as if it did not exist):

- a service record: the reporter's own, or one of the groups they administer (and
  their child groups);
- a project: one on the public list, or one in the reporter's scope;
- a group: any approved group.

The complaint copies the subject's region (``region_id``, ``region_path``): officers
of that region handle it. ``group_path`` and ``volunteer_id`` stay empty on purpose:
the audit log shows each event to the admins of the row's ``group_path`` with the
actor's name, and ``scope_clause`` lets a volunteer read rows carrying their
``volunteer_id`` — the reported group or volunteer must not learn who reported them.

A resolved complaint about a service record can lead to a correction. Corrections
belong to the group that made the record (谁记录谁证明; only its admins approve hours),
so the officer does not write the ledger: the resolution files a *pending* correction
(``hours.request_correction`` — a new record of source ``correction`` referencing the
original, with the complaint as its reason, made by the officer, audited like every
insert) that the group's admins approve or reject on 计时. ``Complaint.correction_id``
points to it. A record transferred from another system (转移接续) has no group here:
the officer's resolution corrects it at once (``hours.correct_imported_record``).
An officer never handles a complaint they filed themselves.
"""
from __future__ import annotations

import math

from flask_babel import gettext
from sqlalchemy import false, or_, select, true

from app.extensions import db
from app.models import (
    Complaint, Project, RecordSource, RecordStatus, RequestStatus, ReviewStatus, ServiceRecord, VolunteerGroup,
)
from app.security.hardening import Budget
from app.security.scope import (
    Scope, current_scope, officer_clause as officer_regions, oversees, row_id, scope_clause, under,
)
from app.services import hours, reviews
from app.services.clock import utcnow
from app.services.errors import DomainError, ScopeViolation, ValidationFailed

SERVICE_RECORD, PROJECT, GROUP = "service_record", "project", "volunteer_group"
SUBJECT_TYPES = (SERVICE_RECORD, PROJECT, GROUP)
MODELS = {SERVICE_RECORD: ServiceRecord, PROJECT: Project, GROUP: VolunteerGroup}
TEXT_MAX, RESOLUTION_MAX = 2000, 1000
PAGE_SIZE = 20

PENDING, RESOLVED, DISMISSED = RequestStatus.PENDING, RequestStatus.RESOLVED, RequestStatus.REJECTED


def status_labels() -> dict[str, str]:
    """What each status reads as, for complaints (``rejected`` reads "dismissed")."""
    return {PENDING: gettext("Awaiting handling"), RESOLVED: gettext("Resolved"), DISMISSED: gettext("Dismissed")}


def subject_labels() -> dict[str, str]:
    return {SERVICE_RECORD: gettext("Service record"), PROJECT: gettext("Project"),
            GROUP: gettext("Volunteer group")}


# --- What a user may report ---


def reportable_clause(subject_type: str, scope: Scope | None = None):
    """SQL predicate on the subject's model: the rows of ``subject_type`` the user may report."""
    from app.services.projects import public_clause

    scope = scope or current_scope()
    if subject_type == SERVICE_RECORD:
        if scope.everything:
            return true()
        parts = [under(ServiceRecord.group_path, p) for p in scope.group_paths]
        if scope.volunteer_id is not None:
            parts.append(ServiceRecord.volunteer_id == scope.volunteer_id)
        return or_(*parts) if parts else false()
    if subject_type == PROJECT:
        return or_(public_clause(), scope_clause(Project, scope))
    if subject_type == GROUP:
        return VolunteerGroup.status == ReviewStatus.APPROVED
    return false()


def reportable_subject(subject_type, subject_id):
    """The row a user means to report, if they may report it.

    :raises ScopeViolation: unknown type or id, or a row they may not report (answered 404)
    """
    model = MODELS.get(subject_type) if isinstance(subject_type, str) else None
    pk = row_id(subject_id)
    if model is None or pk is None:
        raise ScopeViolation()
    found = db.session.scalar(select(model).where(model.id == pk, reportable_clause(subject_type)))
    if found is None:
        raise ScopeViolation()
    return found


def subject_text(subject_type: str, subject) -> str:
    """One line naming a subject: the record's volunteer, date and project; the project's
    or group's name."""
    if subject is None:
        return gettext("(no longer exists)")
    if subject_type == SERVICE_RECORD:
        return gettext("%(name)s, %(day)s, %(hours)s hours (%(project)s)", name=subject.volunteer_name,
                       day=subject.served_on.isoformat(), hours=hours.hours_text(subject.minutes),
                       project=subject.project_name)
    return subject.name


def subjects_of(complaints: list[Complaint]) -> dict[tuple[str, int], object]:
    """{(type, id): row} for the subjects of ``complaints``: one query per subject type."""
    from sqlalchemy.orm import selectinload

    found: dict[tuple[str, int], object] = {}
    for subject_type, model in MODELS.items():
        ids = sorted({c.subject_id for c in complaints if c.subject_type == subject_type and c.subject_id})
        if not ids:
            continue
        query = select(model).where(model.id.in_(ids))
        if model is ServiceRecord:
            query = query.options(selectinload(ServiceRecord.project))
        found.update({(subject_type, row.id): row for row in db.session.scalars(query)})
    return found


def _clean(value, *, field: str, missing: str, limit: int) -> str:
    text = str(value or "").strip() if isinstance(value, (str, type(None))) else ""
    problem = missing if not text else (gettext("At most %(n)s characters.", n=limit) if len(text) > limit else None)
    if problem:
        raise ValidationFailed(fields={field: [problem]})
    return text


# Complaints one user may file per window (config COMPLAINT_LIMIT per
# COMPLAINT_LIMIT_WINDOW_SECONDS): officers read each one, so a flood is refused.
_REPORT_BUDGET = Budget("complaints/user", "COMPLAINT_LIMIT", 10, "COMPLAINT_LIMIT_WINDOW_SECONDS", 3600)


class TooManyReports(DomainError):
    """The user filed their allowance of complaints in the window."""

    code = 429


def _too_many_reports(wait: int) -> TooManyReports:
    return TooManyReports(gettext("You are reporting too often. Please try again in %(minutes)s minutes.",
                                  minutes=math.ceil(wait / 60)))


def report(subject_type, subject_id, text) -> Complaint:
    """举报: a pending complaint by the signed-in user about a subject they may report,
    with its region copied from the subject. One pending complaint per reporter and subject;
    at most ``COMPLAINT_LIMIT`` (default 10) filed per user in
    ``COMPLAINT_LIMIT_WINDOW_SECONDS`` (default 3600) — refused ones do not count.

    :raises ScopeViolation: not signed in, or a subject they may not report (404)
    :raises TooManyReports: the user's allowance is used up (the message says how long to wait)
    :raises ValidationFailed: no reason, or too long (field ``text``)
    :raises DomainError: the same user's complaint about it is still pending
    """
    reporter = reviews.acting_user_id()
    if reporter is None:
        raise ScopeViolation()
    subject = reportable_subject(subject_type, subject_id)
    wait = _REPORT_BUDGET.wait(str(reporter))
    if wait:
        raise _too_many_reports(wait)
    text = _clean(text, field="text", missing=gettext("Please say what is wrong."), limit=TEXT_MAX)
    if db.session.scalar(select(Complaint.id).where(
            Complaint.reporter_id == reporter, Complaint.subject_type == subject_type,
            Complaint.subject_id == subject.id, Complaint.status == PENDING).limit(1)) is not None:
        raise DomainError(gettext("You have reported this already; officers are handling it."))
    complaint = Complaint(
        subject_type=subject_type, subject_id=subject.id, region_id=subject.region_id,
        region_path=subject.region_path, group_path=None, volunteer_id=None,
        reporter_id=reporter, text=text, status=PENDING, created_by_fk=reporter)
    db.session.add(complaint)
    db.session.flush()
    # Counted last, atomically: of two concurrent reports only one takes the last place.
    wait = _REPORT_BUDGET.spend(str(reporter))
    if wait:
        raise _too_many_reports(wait)
    return complaint


def _page(query, page: int, page_size: int) -> tuple[list[Complaint], bool]:
    rows = list(db.session.scalars(query.order_by(Complaint.id.desc())
                                   .offset(max(page, 0) * page_size).limit(page_size + 1)))
    return rows[:page_size], len(rows) > page_size


def my_complaints(user_id: int | None, *, page: int = 0, page_size: int = PAGE_SIZE) -> tuple[list[Complaint], bool]:
    """我的举报: the user's own complaints, newest first; and whether more follow."""
    if user_id is None:
        return [], False
    return _page(select(Complaint).where(Complaint.reporter_id == user_id), page, page_size)


# --- 举报处理 (officers) ---


def officer_clause(scope: Scope | None = None):
    """SQL predicate: complaints about subjects in the officer's regions (officer bindings only)."""
    return officer_regions(Complaint.region_path, scope)


def officer_list(*, status: str = "", page: int = 0, page_size: int = PAGE_SIZE) -> tuple[list[Complaint], bool]:
    """举报处理: complaints of the officer's regions, newest first, of one status (all when empty)."""
    query = select(Complaint).where(officer_clause())
    if status:
        query = query.where(Complaint.status == status if status in status_labels() else false())
    return _page(query, page, page_size)


def officer_complaint(complaint_id) -> Complaint:
    """The complaint with this id when it lies in one of the officer's regions.

    :raises ScopeViolation: unknown, or outside them (answered 404)
    """
    pk = row_id(complaint_id)
    found = db.session.scalar(select(Complaint).where(Complaint.id == pk, officer_clause())) if pk else None
    if found is None:
        raise ScopeViolation()
    return found


def _ensure_officer(path: str | None) -> None:
    if not oversees(path):
        raise ScopeViolation()


def _lock_pending(complaint: Complaint) -> Complaint:
    _ensure_officer(complaint.region_path)
    locked = db.session.scalar(select(Complaint).where(Complaint.id == complaint.id)
                               .with_for_update().execution_options(populate_existing=True))
    if locked is None:
        raise ScopeViolation()
    if locked.status != PENDING:
        raise DomainError(gettext("This complaint has been handled already (%(status)s).",
                                  status=status_labels().get(locked.status, locked.status)))
    if locked.reporter_id is not None and locked.reporter_id == reviews.acting_user_id():
        raise DomainError(gettext("You filed this complaint yourself: another officer of the region handles it."))
    return locked


def _request_correction(complaint: Complaint, corrected_minutes: int) -> ServiceRecord:
    """File the pending correction that brings the complained-of record to ``corrected_minutes``."""
    if complaint.subject_type != SERVICE_RECORD:
        raise DomainError(gettext("Only a complaint about a service record can lead to a correction."))
    record = db.session.get(ServiceRecord, complaint.subject_id) if complaint.subject_id else None
    if record is None:
        raise DomainError(gettext("The service record no longer exists."))
    _ensure_officer(record.region_path)
    if record.status != RecordStatus.APPROVED:
        raise DomainError(gettext("Only approved records can be corrected."))
    reason = gettext("Complaint %(id)s: %(text)s", id=complaint.id, text=complaint.resolution or "")
    if record.source == RecordSource.TRANSFER_IN:
        # Transferred from another system: no group here decides; the officer corrects it.
        delta = corrected_minutes - hours.corrected_minutes(record)
        if delta == 0:
            raise DomainError(gettext("The record holds %(hours)s hours already: no correction is needed.",
                                      hours=hours.hours_text(corrected_minutes)))
        return hours.correct_imported_record(record, minutes=delta, reason=reason[:reviews.REASON_MAX_LENGTH])
    if record.position_id is None:
        raise DomainError(gettext("This record has no position, so its group cannot decide a correction "
                                  "on the timekeeping page; ask the group to correct it."))
    delta = corrected_minutes - hours.corrected_minutes(record)
    if delta == 0:
        raise DomainError(gettext("The record holds %(hours)s hours already: no correction is needed.",
                                  hours=hours.hours_text(corrected_minutes)))
    return hours.request_correction(record.volunteer, record, minutes=delta,
                                    reason=reason[:reviews.REASON_MAX_LENGTH])


def resolve(complaint: Complaint, resolution, *, corrected_minutes: int | None = None) -> Complaint:
    """An officer resolves a pending complaint with a resolution text. For a complaint
    about an approved service record, ``corrected_minutes`` (what the record should
    hold) files a pending correction of the difference, decided by the record's group
    on 计时; the complaint keeps its id in ``correction_id``.

    :raises ScopeViolation: outside the officer's regions (the complaint's or the record's)
    :raises ValidationFailed: no resolution text, or too long
    :raises DomainError: handled already; a correction that is not possible (another
        subject, record not approved or without position, nothing to change, out of
        range, another correction of it waiting)
    """
    _ensure_officer(complaint.region_path)
    resolution = _clean(resolution, field="resolution", missing=gettext("Please say how it was resolved."),
                        limit=RESOLUTION_MAX)
    locked = _lock_pending(complaint)
    locked.resolution = resolution
    if corrected_minutes is not None:
        locked.correction_id = _request_correction(locked, corrected_minutes).id
    locked.status, locked.resolved_on, locked.resolved_by_fk = RESOLVED, utcnow(), reviews.acting_user_id()
    db.session.flush()
    return locked


def dismiss(complaint: Complaint, resolution) -> Complaint:
    """An officer dismisses a pending complaint, saying why (the reporter reads it).

    :raises ScopeViolation: outside the officer's regions
    :raises ValidationFailed: no reason given
    :raises DomainError: handled already
    """
    _ensure_officer(complaint.region_path)
    resolution = _clean(resolution, field="resolution", missing=gettext("Please say why it is dismissed."),
                        limit=RESOLUTION_MAX)
    locked = _lock_pending(complaint)
    locked.status, locked.resolution = DISMISSED, resolution
    locked.resolved_on, locked.resolved_by_fk = utcnow(), reviews.acting_user_id()
    db.session.flush()
    return locked


def correction_of(complaint: Complaint) -> ServiceRecord | None:
    """The correction record a resolution filed, if any."""
    return db.session.get(ServiceRecord, complaint.correction_id) if complaint.correction_id else None
