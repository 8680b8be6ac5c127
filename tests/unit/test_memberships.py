"""Membership services without HTTP: join_group per policy, leave_group, the join
request clause (own groups only) and decide_requests' checks."""
from __future__ import annotations

import pytest
from sqlalchemy import event, func, select

from app.demo import (
    BEISHUDIAN_TEAM, CULTURE_CENTRE_TEAM, LONGTING_CORPS, QINGPING_TEAM, SCHOOL_TEAM, TEAM_PASSWORD,
)
from app.extensions import db
from app.models import Membership, User, Volunteer, VolunteerGroup
from app.security import pii
from app.security.scope import Scope
from app.services import memberships
from app.services.errors import DomainError, ScopeViolation


def _group(name):
    return db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == name))


def _volunteer(username):
    return db.session.scalar(select(Volunteer).join(User, User.id == Volunteer.user_id)
                             .where(User.username == username))


def _count():
    return db.session.scalar(select(func.count()).select_from(Membership))


def _admin_scope(*groups):
    return Scope(group_paths=tuple(g.group_path for g in groups))


def test_join_group__open_is_active(db_session):
    m = memberships.join_group(_volunteer("vol_shunhe"), _group(BEISHUDIAN_TEAM))
    assert (m.status, m.origin, m.volunteer_name) == ("active", "self_join", "王秀英")
    assert m.group_path == _group(BEISHUDIAN_TEAM).group_path and m.decided_on is not None


def test_join_group__open_by_qr_keeps_qr_origin(db_session):
    m = memberships.join_group(_volunteer("vol_shunhe"), _group(BEISHUDIAN_TEAM), origin="qr")
    assert (m.status, m.origin) == ("active", "qr")


def test_join_group__verify_is_pending_request(db_session):
    m = memberships.join_group(_volunteer("vol_shunhe"), _group(CULTURE_CENTRE_TEAM), origin="qr")
    assert (m.status, m.origin, m.decided_on) == ("pending", "request", None)


def test_join_group__closed_refused_with_full_phone(db_session):
    group = _group(SCHOOL_TEAM)
    before = _count()
    with pytest.raises(DomainError) as err:
        memberships.join_group(_volunteer("vol_longting"), group)
    assert pii.decrypt(group.contact_phone_enc) in str(err.value) and group.contact_name in str(err.value)
    assert _count() == before


def test_join_group__password_right_and_wrong(db_session):
    vol, group = _volunteer("vol_longting"), _group(QINGPING_TEAM)
    with pytest.raises(DomainError):
        memberships.join_group(vol, group, password="wrong")
    with pytest.raises(DomainError):
        memberships.join_group(vol, group)
    m = memberships.join_group(vol, group, password=TEAM_PASSWORD)
    assert (m.status, m.origin) == ("active", "password")


def test_join_group__password_attempts_limited_per_user(app, db_session):
    vol, group = _volunteer("vol_longting"), _group(QINGPING_TEAM)
    app.config["JOIN_PASSWORD_ATTEMPTS"] = 2
    for _ in range(2):
        with pytest.raises(DomainError, match="wrong|错误"):
            memberships.join_group(vol, group, password="wrong")
    with pytest.raises(DomainError) as err:
        memberships.join_group(vol, group, password=TEAM_PASSWORD)
    assert "15" in str(err.value)
    assert memberships.membership_of(group, vol) is None


@pytest.mark.parametrize("status", ["active", "pending"])
def test_join_group__existing_active_or_pending_not_duplicated(db_session, status):
    vol, group = _volunteer("vol_shunhe"), _group(CULTURE_CENTRE_TEAM if status == "pending" else BEISHUDIAN_TEAM)
    memberships.join_group(vol, group)
    before = _count()
    with pytest.raises(DomainError):
        memberships.join_group(vol, group)
    assert _count() == before


def test_join_group__removed_member_gets_pending_even_for_open_group_closed_still_refuses(db_session):
    vol = _volunteer("vol_longting")
    open_group = _group(BEISHUDIAN_TEAM)
    row = memberships.membership_of(open_group, vol)
    row.status = "removed"
    db.session.flush()
    again = memberships.join_group(vol, open_group)
    assert again.id == row.id and (again.status, again.origin) == ("pending", "request")
    closed = _group(SCHOOL_TEAM)
    memberships.place_member(closed, vol, status="removed", origin="admin_added")
    with pytest.raises(DomainError):
        memberships.join_group(vol, closed)


def test_join_group__unapproved_volunteer_or_group_refused(db_session):
    vol, group = _volunteer("vol_shunhe"), _group(BEISHUDIAN_TEAM)
    vol.status = "suspended"
    with pytest.raises(DomainError):
        memberships.join_group(vol, group)
    vol.status = "approved"
    group.status = "pending"
    with pytest.raises(DomainError):
        memberships.join_group(vol, group)
    assert memberships.membership_of(group, vol) is None


def test_leave_group__active_and_pending_leave_others_refused(db_session):
    vol = _volunteer("vol_shunhe")
    assert memberships.leave_group(vol, _group(QINGPING_TEAM)).status == "left"
    memberships.join_group(vol, _group(CULTURE_CENTRE_TEAM))
    assert memberships.leave_group(vol, _group(CULTURE_CENTRE_TEAM)).status == "left"
    with pytest.raises(DomainError):
        memberships.leave_group(vol, _group(QINGPING_TEAM))
    with pytest.raises(DomainError):
        memberships.leave_group(vol, _group(BEISHUDIAN_TEAM))


def test_my_memberships__active_and_pending_only_constant_queries(app, db_session):
    vol = _volunteer("vol_shunhe")
    memberships.join_group(vol, _group(CULTURE_CENTRE_TEAM))
    memberships.join_group(vol, _group(BEISHUDIAN_TEAM))
    memberships.leave_group(vol, _group(BEISHUDIAN_TEAM))
    db.session.expunge_all()  # nothing cached: groups and regions must be loaded by the call
    statements = []
    listener = lambda *args, **kwargs: statements.append(1)  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        rows = memberships.my_memberships(vol)
        names = {(m.group.name, m.group.region.name, m.status) for m in rows}
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert {(n, s) for n, _, s in names} == {(QINGPING_TEAM, "active"), (CULTURE_CENTRE_TEAM, "pending")}
    assert len(statements) == 3


def test_pending_requests__direct_admins_only(db_session):
    culture, corps = _group(CULTURE_CENTRE_TEAM), _group(LONGTING_CORPS)
    own, _ = memberships.pending_requests(_admin_scope(culture))
    assert own and {m.group_id for m in own} == {culture.id}
    parent, _ = memberships.pending_requests(_admin_scope(corps))
    assert culture.id not in {m.group_id for m in parent}
    nobody, more = memberships.pending_requests(Scope(volunteer_id=1))
    assert nobody == [] and more is False


def test_pending_requests__paged(db_session):
    culture = _group(CULTURE_CENTRE_TEAM)
    first, more = memberships.pending_requests(_admin_scope(culture), page_size=2)
    second, _ = memberships.pending_requests(_admin_scope(culture), page=1, page_size=2)
    assert len(first) == 2 and more and not {m.id for m in first} & {m.id for m in second}


def test_decide_requests__approve_and_reject(db_session):
    culture = _group(CULTURE_CENTRE_TEAM)
    pending, _ = memberships.pending_requests(_admin_scope(culture))
    approved = memberships.decide_requests(pending[:1], "approve", scope=_admin_scope(culture))
    assert (approved[0].status, approved[0].origin, approved[0].reason) == ("active", "request", None)
    rejected = memberships.decide_requests(pending[1:2], "reject", " 名额已满 ", scope=_admin_scope(culture))
    assert (rejected[0].status, rejected[0].reason) == ("rejected", "名额已满")


@pytest.mark.parametrize("decision, reason", [("reject", ""), ("reject", "x" * 256), ("maybe", "")])
def test_decide_requests__bad_input_refused(db_session, decision, reason):
    culture = _group(CULTURE_CENTRE_TEAM)
    pending, _ = memberships.pending_requests(_admin_scope(culture))
    with pytest.raises(DomainError):
        memberships.decide_requests(pending[:1], decision, reason, scope=_admin_scope(culture))
    assert pending[0].status == "pending"


@pytest.mark.parametrize("admin_of", [LONGTING_CORPS, BEISHUDIAN_TEAM])
def test_decide_requests__not_the_groups_own_admin_is_scope_violation(db_session, admin_of):
    culture = _group(CULTURE_CENTRE_TEAM)
    pending, _ = memberships.pending_requests(_admin_scope(culture))
    with pytest.raises(ScopeViolation):
        memberships.decide_requests(pending[:1], "approve", scope=_admin_scope(_group(admin_of)))
    assert pending[0].status == "pending"


def test_decide_requests__not_pending_refused(db_session):
    culture = _group(CULTURE_CENTRE_TEAM)
    active = memberships.membership_of(culture, _volunteer("vol_longting"))
    with pytest.raises(DomainError):
        memberships.decide_requests([active], "approve", scope=_admin_scope(culture))
