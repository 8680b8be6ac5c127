"""Memberships: a volunteer's place in a group — joining, requests, the roster.

One row per (group, volunteer), revived rather than duplicated: a volunteer who
left and comes back, or a rejected request made again, reuses the same row; the
audit log keeps the history of its status changes.
"""
from __future__ import annotations

from flask import g, has_request_context
from sqlalchemy import select

from app.extensions import db
from app.models import Membership, MembershipStatus, Volunteer, VolunteerGroup
from app.services.clock import utcnow


def membership_of(group: VolunteerGroup, volunteer: Volunteer) -> Membership | None:
    """The (only) membership row of ``volunteer`` in ``group``, whatever its status."""
    return db.session.scalar(select(Membership).where(
        Membership.group_id == group.id, Membership.volunteer_id == volunteer.id))


def _actor_id() -> int | None:
    user = getattr(g, "user", None) if has_request_context() else None
    return getattr(user, "id", None) if getattr(user, "is_authenticated", False) else None


def place_member(group: VolunteerGroup, volunteer: Volunteer, *, status: str, origin: str,
                 existing: Membership | None = None) -> Membership:
    """Create or revive the membership of ``volunteer`` in ``group`` with ``status``.

    Copies the group's paths and the volunteer's name and number onto the row
    (roster search and scope need no join). Callers decide whether the move is
    allowed; this only writes it and flushes.
    """
    membership = existing if existing is not None else membership_of(group, volunteer)
    if membership is None:
        membership = Membership(group_id=group.id, volunteer_id=volunteer.id)
        db.session.add(membership)
    membership.group_path = group.group_path
    membership.region_id = group.region_id
    membership.region_path = group.region_path
    membership.volunteer_name = volunteer.real_name
    membership.volunteer_no = volunteer.volunteer_no
    membership.status = status
    membership.origin = origin
    membership.reason = None
    if status == MembershipStatus.PENDING:
        membership.decided_on = membership.decided_by_fk = None
    else:
        membership.decided_on = utcnow()
        membership.decided_by_fk = _actor_id()
    db.session.flush()
    return membership
