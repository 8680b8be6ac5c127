"""Approve / reject decisions, shared by every review workflow: registrations
(注册审核), groups (下级团体审核 / 团体审核) and join requests (入团审核)."""
from __future__ import annotations

from flask import g, has_request_context
from flask_babel import gettext
from sqlalchemy import select

from app.extensions import db
from app.services.errors import DomainError, ScopeViolation

APPROVE, REJECT = "approve", "reject"
REASON_MAX_LENGTH = 255  # the reject_reason / reason columns


def clean_decision(decision: str, reason: str | None, items, *, reason_required: str,
                   nothing_selected: str) -> str:
    """Check a decision before anything is read under lock; return the stripped reason.

    :raises DomainError: unknown decision, a rejection without a reason
        (``reason_required`` says who reads it), a reason too long, nothing selected
    """
    reason = (reason or "").strip()
    if decision not in (APPROVE, REJECT):
        raise DomainError(gettext("Choose to approve or to reject."))
    if decision == REJECT and not reason:
        raise DomainError(reason_required)
    if len(reason) > REASON_MAX_LENGTH:
        raise DomainError(gettext("The reason may have at most %(n)s characters.", n=REASON_MAX_LENGTH))
    if not items:
        raise DomainError(nothing_selected)
    return reason


def lock_for_decision(model, items, *options) -> list:
    """Re-read ``items`` under a row lock, in id order (PostgreSQL waits for a concurrent
    decision and then sees it, so two reviewers cannot both decide one row).

    :raises ScopeViolation: a row no longer exists
    """
    ids = sorted({item.id for item in items})
    locked = list(db.session.scalars(
        select(model).where(model.id.in_(ids)).order_by(model.id).options(*options)
        .with_for_update(of=model).execution_options(populate_existing=True)))
    if len(locked) != len(ids):
        raise ScopeViolation()
    return locked


def acting_user_id() -> int | None:
    """The id of the signed-in user acting (deciding, adding), if any (None for CLI jobs and tests without a request)."""
    user = getattr(g, "user", None) if has_request_context() else None
    return getattr(user, "id", None) if getattr(user, "is_authenticated", False) else None
