"""Transfers (转移接续, DESIGN.md §5 "Transfer"): a volunteer who moves asks to change
their home region; an officer of the destination approves or refuses it.

Status flow (``RequestStatus``)::

    pending ──approve (destination officer)──▶ approved   (the home region changes)
       ├─────refuse with a reason────────────▶ rejected
       └─────withdrawn by the volunteer──────▶ cancelled

One pending request per volunteer (a partial unique index backs the check). The
requests stay as the volunteer's history. Service records keep the region where the
service took place; the volunteer's own row (``region_id``/``region_path``) moves,
so every count and list by home region — officers' lists, the API, statistics —
moves the volunteer from the old region to the new one in the same transaction.
The volunteer number never changes (DESIGN.md: its province is the home province
at approval). Records from another system come in through ``record_exchange``.
"""
from __future__ import annotations

from flask_babel import gettext, lazy_gettext
from sqlalchemy import select

from app.extensions import db
from app.models import Region, RequestStatus, ReviewStatus, TransferRequest, Volunteer
from app.security.scope import Scope, current_scope, officer_clause, oversees, path_is_under
from app.services import reviews, rollups
from app.services.clock import utcnow
from app.services.errors import DomainError, ScopeViolation
from app.services.volunteers import FieldErrors, home_region

REASON_MAX = 255
HISTORY_LIMIT = 50
PAGE_SIZE = 30
APPROVE, REJECT = "approve", "reject"
PENDING, APPROVED, REJECTED, CANCELLED = (RequestStatus.PENDING, RequestStatus.APPROVED, RequestStatus.REJECTED,
                                          RequestStatus.CANCELLED)


def status_labels() -> dict[str, str]:
    return {PENDING: gettext("Pending"), APPROVED: gettext("Approved"), REJECTED: gettext("Rejected"),
            CANCELLED: gettext("Withdrawn")}


# --- The volunteer (用户中心 → 转移接续) ---


def pending_request(volunteer: Volunteer) -> TransferRequest | None:
    return db.session.scalar(select(TransferRequest).where(
        TransferRequest.volunteer_id == volunteer.id, TransferRequest.status == PENDING))


def history(volunteer: Volunteer) -> list[TransferRequest]:
    """The volunteer's requests, newest first, with both regions loaded (three queries)."""
    from sqlalchemy.orm import selectinload

    return list(db.session.scalars(
        select(TransferRequest).where(TransferRequest.volunteer_id == volunteer.id)
        .options(selectinload(TransferRequest.region), selectinload(TransferRequest.from_region))
        .order_by(TransferRequest.id.desc()).limit(HISTORY_LIMIT)))


def request_transfer(volunteer: Volunteer, region_code, reason) -> TransferRequest:
    """Ask to move the home region to ``region_code`` (county level or below).

    :raises ValidationFailed: no or an unknown region, the current home region, no
        reason or one too long (every field's problem at once)
    :raises DomainError: not an approved volunteer, or a request already pending
    """
    if volunteer is None or volunteer.status != ReviewStatus.APPROVED:
        raise DomainError(gettext("Only an approved volunteer can transfer their records."))
    # Lock the volunteer row: two submissions at once make one request.
    db.session.execute(select(Volunteer.id).where(Volunteer.id == volunteer.id).with_for_update())
    if pending_request(volunteer) is not None:
        raise DomainError(gettext("You already have a transfer request waiting for a decision; withdraw it "
                                  "first to ask for another region."))
    errors = FieldErrors()
    region = home_region(region_code)
    if region is None:
        errors.add("region_code", gettext("Choose the new home region, at least down to the county."))
    elif region.id == volunteer.region_id:
        errors.add("region_code", gettext("This is already your home region."))
    elif path_is_under(volunteer.region_path, region.path):
        # A county or street containing the current home: not a move, only a vaguer address.
        errors.add("region_code", gettext("Your home region already lies in %(region)s: choose where you move to.",
                                          region=region.name))
    reason = " ".join(str(reason or "").split())
    if not reason:
        errors.add("reason", gettext("Please say why you move (for example a new job or address)."))
    elif len(reason) > REASON_MAX:
        errors.add("reason", gettext("At most %(n)s characters.", n=REASON_MAX))
    errors.raise_if_any()
    row = TransferRequest(
        volunteer_id=volunteer.id, volunteer_name=volunteer.real_name, volunteer_no=volunteer.volunteer_no,
        from_region_id=volunteer.region_id, from_region_path=volunteer.region_path,
        region_id=region.id, region_path=region.path, status=PENDING, reason=reason,
        created_by_fk=reviews.acting_user_id())
    db.session.add(row)
    db.session.flush()
    return row


def withdraw_request(volunteer: Volunteer, request_id) -> TransferRequest:
    """The volunteer withdraws their own pending request.

    :raises ScopeViolation: not the volunteer's request
    :raises DomainError: it was decided already
    """
    row = db.session.scalar(select(TransferRequest).where(TransferRequest.id == request_id).with_for_update())
    if row is None or volunteer is None or row.volunteer_id != volunteer.id:
        raise ScopeViolation()
    if row.status != PENDING:
        raise DomainError(gettext("This request has been decided already."))
    row.status = CANCELLED
    row.decided_on, row.decided_by_fk = utcnow(), reviews.acting_user_id()
    db.session.flush()
    return row


# --- The destination's officers (区域监管 → 转移接续审核) ---


def review_clause(scope: Scope | None = None):
    """SQL predicate: requests whose destination lies in the user's officer regions
    (honors-editor and group-admin bindings do not count)."""
    return officer_clause(TransferRequest.region_path, scope)


def _reviews(row: TransferRequest, scope: Scope) -> bool:
    return oversees(row.region_path, scope)


def requests_to_review(status: str | None = PENDING, *, page: int = 0,
                       page_size: int = PAGE_SIZE) -> tuple[list[TransferRequest], bool]:
    """One page of the requests into the user's region, oldest pending first (decided:
    newest first), with both regions loaded; and whether more follow."""
    from sqlalchemy.orm import selectinload

    query = select(TransferRequest).where(review_clause())
    if status:
        query = query.where(TransferRequest.status == status)
    order = (TransferRequest.id.asc(),) if status == PENDING else (TransferRequest.id.desc(),)
    rows = list(db.session.scalars(
        query.options(selectinload(TransferRequest.region), selectinload(TransferRequest.from_region))
        .order_by(*order).offset(max(page, 0) * page_size).limit(page_size + 1)))
    return rows[:page_size], len(rows) > page_size


def decide_transfers(items: list[TransferRequest], decision: str, reason=None) -> list[TransferRequest]:
    """Approve or refuse pending requests, all or none. Approval moves each volunteer's
    home region to the destination; refusal needs a reason.

    :raises ScopeViolation: a request outside the officer's destination regions
    :raises DomainError: unknown decision, no reason to refuse, a request no longer
        pending, or a volunteer no longer approved
    """
    scope = current_scope()
    if decision not in (APPROVE, REJECT):
        raise DomainError(gettext("Unknown decision."))
    reason = " ".join(str(reason or "").split())
    if decision == REJECT and not reason:
        raise DomainError(gettext("Please give a reason for the refusal."))
    if len(reason) > REASON_MAX:
        raise DomainError(gettext("The reason may hold at most %(n)s characters.", n=REASON_MAX))
    ids = sorted({item.id for item in items})
    locked = list(db.session.scalars(select(TransferRequest).where(TransferRequest.id.in_(ids))
                                     .order_by(TransferRequest.id).with_for_update()
                                     .execution_options(populate_existing=True)))
    if len(locked) != len(ids) or not all(_reviews(row, scope) for row in locked):
        raise ScopeViolation()
    decided_already = [row for row in locked if row.status != PENDING]
    if decided_already:
        raise DomainError(gettext("The request of %(name)s has been decided already.",
                                  name=decided_already[0].volunteer_name))
    now, actor = utcnow(), reviews.acting_user_id()
    for row in locked:
        if decision == APPROVE:
            _move(row)
        else:
            row.reject_reason = reason
        row.status = APPROVED if decision == APPROVE else REJECTED
        row.decided_on, row.decided_by_fk = now, actor
    db.session.flush()
    return locked


def _move(row: TransferRequest) -> None:
    """Move the volunteer's home region to the request's destination."""
    volunteer = db.session.scalar(select(Volunteer).where(Volunteer.id == row.volunteer_id)
                                  .with_for_update().execution_options(populate_existing=True))
    if volunteer is None or volunteer.status != ReviewStatus.APPROVED:
        raise DomainError(gettext("%(name)s is no longer an approved volunteer.", name=row.volunteer_name))
    destination = db.session.get(Region, row.region_id)
    # The request remembers where the volunteer really came from at the decision.
    row.from_region_id, row.from_region_path = volunteer.region_id, volunteer.region_path
    rollups.volunteer_moved(volunteer, destination)
    volunteer.region_id, volunteer.region_path = destination.id, destination.path


def decision_message(decision: str, count: int) -> str:
    if decision == APPROVE:
        return gettext("%(n)s transfer requests approved: the volunteers now belong to your region.", n=count)
    return gettext("%(n)s transfer requests refused.", n=count)


STATUS_FILTERS = (PENDING, APPROVED, REJECTED, CANCELLED)
NONE_SELECTED = lazy_gettext("Tick at least one request first.")
