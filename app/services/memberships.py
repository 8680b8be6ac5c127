"""Memberships: a volunteer's place in a group — joining, requests, the roster.

One row per (group, volunteer), revived rather than duplicated: a volunteer who
left and comes back, or a rejected request made again, reuses the same row; the
audit log keeps the history of its status changes.
"""
from __future__ import annotations

import math

from flask_babel import gettext
from sqlalchemy import and_, false, select
from sqlalchemy.orm import selectinload
from werkzeug.security import check_password_hash

from app.extensions import db
from app.models import (
    JoinPolicy, Membership, MembershipOrigin, MembershipStatus, ReviewStatus, Volunteer, VolunteerGroup,
)
from app.security import pii
from app.security.hardening import Budget
from app.services import reviews, rollups
from app.services.clock import utcnow
from app.services.errors import DomainError


def membership_of(group: VolunteerGroup, volunteer: Volunteer) -> Membership | None:
    """The (only) membership row of ``volunteer`` in ``group``, whatever its status."""
    return db.session.scalar(select(Membership).where(
        Membership.group_id == group.id, Membership.volunteer_id == volunteer.id))


def place_member(group: VolunteerGroup, volunteer: Volunteer, *, status: str, origin: str,
                 existing: Membership | None = None) -> Membership:
    """Create or revive the membership of ``volunteer`` in ``group`` with ``status``.

    Copies the group's paths and the volunteer's name and number onto the row
    (roster search and scope need no join). Callers decide whether the move is
    allowed; this only writes it and flushes.
    """
    membership = existing if existing is not None else membership_of(group, volunteer)
    if membership is not None:  # re-read locked: a concurrent leave, removal or add is seen, not counted twice
        membership = reviews.lock_for_decision(Membership, [membership])[0]
    if membership is None:
        membership = Membership(group_id=group.id, volunteer_id=volunteer.id)
        db.session.add(membership)
    elif membership.status == MembershipStatus.ACTIVE:
        # 统计分析 counts a member in the month they became active: take that back
        # before decided_on moves on (re-added below if they stay active).
        rollups.members_changed(membership, -1)
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
        membership.decided_by_fk = reviews.acting_user_id()
    db.session.flush()
    if status == MembershipStatus.ACTIVE:
        rollups.members_changed(membership, +1)
    return membership


# --- Joining and leaving (用户中心 → 我的团体 → 参加更多团体 → 加入; the QR join page) ---

APPROVE, REJECT = reviews.APPROVE, reviews.REJECT
JOIN_REQUESTS_PAGE_SIZE = 100
# Still "in" the group: listed in 我的团体, and asking again changes nothing.
CURRENT_STATUSES = (MembershipStatus.ACTIVE, MembershipStatus.PENDING)


_PASSWORD_BUDGET = Budget("join-password-failures/user", "JOIN_PASSWORD_ATTEMPTS", 5,
                          "JOIN_PASSWORD_WINDOW_SECONDS", 900)


def _check_join_password(group: VolunteerGroup, volunteer: Volunteer, password: str | None) -> None:
    """Refuse a missing or wrong join password; wrong ones are counted per user, and
    once too many fall in the window, attempts are refused without checking."""
    user_key = str(volunteer.user_id or f"v{volunteer.id}")
    wait = _PASSWORD_BUDGET.wait(user_key)
    if wait:
        raise DomainError(gettext("Too many wrong join passwords. Try again in %(minutes)s minutes.",
                                  minutes=math.ceil(wait / 60)))
    if not password:
        raise DomainError(gettext("%(group)s admits members with its join password: please enter it.",
                                  group=group.name))
    if not group.join_password_hash or not check_password_hash(group.join_password_hash, password):
        _PASSWORD_BUDGET.spend(user_key)
        raise DomainError(gettext("The join password is wrong."))
    _PASSWORD_BUDGET.clear(user_key)


def _closed_message(group: VolunteerGroup) -> str:
    """Why a closed group refuses, with the full contact phone so the volunteer can call."""
    phone = pii.decrypt(group.contact_phone_enc) if group.contact_phone_enc else None
    if phone:
        return gettext("%(group)s accepts nobody by itself. Please call its contact person %(name)s "
                       "at %(phone)s to be added.", group=group.name, name=group.contact_name or "",
                       phone=phone)
    return gettext("%(group)s accepts nobody by itself. Please ask its contact person %(name)s "
                   "to add you.", group=group.name, name=group.contact_name or "")


def join_group(volunteer: Volunteer, group: VolunteerGroup, *, password: str | None = None,
               origin: str = MembershipOrigin.SELF_JOIN) -> Membership:
    """加入: join ``group`` as its join policy says; return the membership (active when
    joined, pending when a request awaits the group's 入团审核).

    - 允许任何人加入 (open): active at once;
    - 验证信息后加入 (verify): a pending request (origin "request");
    - 拒绝任何人加入 (closed): refused, naming the contact person and phone;
    - 免审密码 (password): active with the right password; wrong ones are
      rate-limited per user.

    A member the group removed who asks again gets a pending request whatever the
    policy (closed still refuses). A left or rejected row is revived, never duplicated.
    ``origin`` is ``self_join`` (search page) or ``qr`` (the group card's QR code).

    :raises DomainError: the volunteer is not approved, the group is not approved,
        already a member or request pending, closed group, missing or wrong password
    """
    if volunteer is None or volunteer.status != ReviewStatus.APPROVED:
        raise DomainError(gettext("Only approved volunteers can join a group; your registration is "
                                  "not approved yet."))
    if group is None or group.status != ReviewStatus.APPROVED:
        raise DomainError(gettext("This group cannot be joined."))
    # Serialise joins by one volunteer (PostgreSQL; SQLite writes one at a time anyway),
    # so a double click cannot insert two rows for the unique (group, volunteer).
    db.session.scalar(select(Volunteer.id).where(Volunteer.id == volunteer.id).with_for_update())
    existing = membership_of(group, volunteer)
    if existing is not None and existing.status == MembershipStatus.ACTIVE:
        raise DomainError(gettext("You are already a member of %(group)s.", group=group.name))
    if existing is not None and existing.status == MembershipStatus.PENDING:
        raise DomainError(gettext("Your request to join %(group)s is already pending.", group=group.name))
    policy = group.join_policy
    if policy == JoinPolicy.CLOSED:
        raise DomainError(_closed_message(group))
    if existing is not None and existing.status == MembershipStatus.REMOVED:
        # The group removed them once: its admins decide again.
        return place_member(group, volunteer, status=MembershipStatus.PENDING,
                            origin=MembershipOrigin.REQUEST, existing=existing)
    if policy == JoinPolicy.OPEN:
        return place_member(group, volunteer, status=MembershipStatus.ACTIVE,
                            origin=origin if origin == MembershipOrigin.QR else MembershipOrigin.SELF_JOIN,
                            existing=existing)
    if policy == JoinPolicy.PASSWORD:
        _check_join_password(group, volunteer, password)
        return place_member(group, volunteer, status=MembershipStatus.ACTIVE,
                            origin=origin if origin == MembershipOrigin.QR else MembershipOrigin.PASSWORD,
                            existing=existing)
    return place_member(group, volunteer, status=MembershipStatus.PENDING,
                        origin=MembershipOrigin.REQUEST, existing=existing)


def leave_group(volunteer: Volunteer, group: VolunteerGroup) -> Membership:
    """退出: leave ``group`` (active) or withdraw the request (pending); the row stays as history.

    :raises DomainError: neither a member nor a pending request
    """
    membership = membership_of(group, volunteer) if volunteer is not None and group is not None else None
    if membership is not None:  # re-read locked: a concurrent removal is seen, not counted twice
        membership = reviews.lock_for_decision(Membership, [membership])[0]
    if membership is None or membership.status not in CURRENT_STATUSES:
        raise DomainError(gettext("You are not a member of this group."))
    if membership.status == MembershipStatus.ACTIVE:
        rollups.members_changed(membership, -1)  # before decided_on moves on
    membership.status = MembershipStatus.LEFT
    membership.decided_on = utcnow()
    membership.decided_by_fk = reviews.acting_user_id()
    db.session.flush()
    return membership


def my_memberships(volunteer: Volunteer) -> list[Membership]:
    """我的团体: the volunteer's active and pending memberships with their groups and
    the groups' regions loaded (three queries, whatever the count); newest first."""
    if volunteer is None:
        return []
    return list(db.session.scalars(
        select(Membership)
        .where(Membership.volunteer_id == volunteer.id, Membership.status.in_(CURRENT_STATUSES))
        .options(selectinload(Membership.group).selectinload(VolunteerGroup.region))
        .order_by(Membership.changed_on.desc(), Membership.id.desc())))


def statuses_in(volunteer: Volunteer | None, group_ids) -> dict[int, str]:
    """{group id: status} of the volunteer's active or pending memberships among ``group_ids``."""
    ids = list(group_ids)
    if volunteer is None or not ids:
        return {}
    return dict(db.session.execute(select(Membership.group_id, Membership.status).where(
        Membership.volunteer_id == volunteer.id, Membership.group_id.in_(ids),
        Membership.status.in_(CURRENT_STATUSES))).all())


def is_active_member(volunteer: Volunteer | None, group: VolunteerGroup) -> bool:
    membership = membership_of(group, volunteer) if volunteer is not None else None
    return membership is not None and membership.status == MembershipStatus.ACTIVE


# --- 入团审核: join requests, decided by the group's own admins ---


def pending_requests_clause(scope):
    """SQL predicate: pending requests to the groups ``scope`` administers *directly*
    (a parent's admins read their children but do not decide for them)."""
    if scope.everything:
        return Membership.status == MembershipStatus.PENDING
    if not scope.group_ids:
        return false()
    return and_(Membership.status == MembershipStatus.PENDING,
                Membership.group_id.in_(sorted(scope.group_ids)))


def pending_requests(scope, *, page: int = 0,
                     page_size: int = JOIN_REQUESTS_PAGE_SIZE) -> tuple[list[Membership], bool]:
    """One page of pending join requests the scope decides, oldest first, with the
    volunteers and groups loaded (constant query count); and whether more follow."""
    page_size = max(1, min(page_size, JOIN_REQUESTS_PAGE_SIZE))
    rows = list(db.session.scalars(
        select(Membership).where(pending_requests_clause(scope))
        .options(selectinload(Membership.volunteer), selectinload(Membership.group))
        .order_by(Membership.changed_on, Membership.id)
        .offset(max(page, 0) * page_size).limit(page_size + 1)))
    return rows[:page_size], len(rows) > page_size


def decide_requests(memberships: list[Membership], decision: str, reason: str | None = None, *,
                    scope=None) -> list[Membership]:
    """Approve (→ active, origin kept) or reject (→ rejected, with the reason the
    volunteer reads) pending join requests, all or none.

    Each request's group must be administered by the user directly; the rows are
    re-read under a lock, so two admins deciding at once cannot both succeed.

    :raises ScopeViolation: a request belongs to a group the user does not administer
    :raises DomainError: unknown decision, reject without reason, reason too long,
        nothing selected, or a request that is not pending (any more)
    """
    from app.security.scope import current_scope, ensure_administers

    scope = scope if scope is not None else current_scope()
    reason = reviews.clean_decision(
        decision, reason, memberships,
        reason_required=gettext("A rejection needs a reason the volunteer can read."),
        nothing_selected=gettext("No join requests selected."))
    locked = reviews.lock_for_decision(Membership, memberships, selectinload(Membership.group))
    for membership in locked:
        ensure_administers(membership.group, scope)
    not_pending = [m for m in locked if m.status != MembershipStatus.PENDING]
    if not_pending:
        raise DomainError(*[gettext("%(name)s has no pending request (%(status)s).",
                                    name=m.volunteer_name, status=MembershipStatus(m.status).label)
                            for m in not_pending])
    now, actor = utcnow(), reviews.acting_user_id()
    for membership in locked:
        membership.status = MembershipStatus.ACTIVE if decision == APPROVE else MembershipStatus.REJECTED
        membership.reason = None if decision == APPROVE else reason
        membership.decided_on = now
        membership.decided_by_fk = actor
    db.session.flush()
    if decision == APPROVE:
        for membership in locked:
            rollups.members_changed(membership, +1)
    return locked
