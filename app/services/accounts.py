"""Accounts: users, their roles and the bindings that give them a scope."""
from __future__ import annotations

from flask import current_app
from flask_babel import gettext
from sqlalchemy import select

from app.extensions import db
from app.models import BindingKind, GroupAdmin, Region, RegionBinding, VolunteerGroup
from app.security.roles import GROUP_ADMIN, HONORS_EDITOR, OFFICER, PARTNER
from app.services.errors import DomainError, ValidationFailed

_KIND_ROLE = {BindingKind.OFFICER: OFFICER, BindingKind.HONORS_EDITOR: HONORS_EDITOR}


def ensure_user(username: str, password: str, *, first_name: str, last_name: str = "",
                email: str | None = None, roles: list[str] = ()):
    """Return the user ``username``, creating it with ``roles`` when missing (idempotent)."""
    sm = current_app.appbuilder.sm
    user = sm.find_user(username=username)
    role_objs = [sm.find_role(name) for name in roles]
    if any(r is None for r in role_objs):
        raise DomainError(gettext("Roles are missing: run the bootstrap first."))
    if user is None:
        user = sm.add_user(username, first_name, last_name or "-", email or f"{username}@example.invalid",
                           role_objs, password, commit=False)
        if not user:
            raise DomainError(gettext("Could not create user %(name)s.", name=username))
    else:
        for role in role_objs:
            if role not in user.roles:
                user.roles.append(role)
    return user


def _grant(user, role_name: str) -> None:
    role = current_app.appbuilder.sm.find_role(role_name)
    if role not in user.roles:
        user.roles.append(role)


def bind_region(user, region: Region, kind: str) -> RegionBinding:
    """Bind ``user`` to ``region`` as an officer or honors editor and grant the role.

    :raises ValidationFailed: an honors editor below prefecture level (DESIGN.md §4)
    """
    if kind == BindingKind.HONORS_EDITOR and region.level > Region.PREFECTURE:
        raise ValidationFailed(gettext(
            "Honors can only be recorded at prefecture level or above; %(region)s is below.",
            region=region.name))
    binding = db.session.scalar(select(RegionBinding).where(
        RegionBinding.user_id == user.id, RegionBinding.region_id == region.id,
        RegionBinding.kind == kind))
    if binding is None:
        binding = RegionBinding(user_id=user.id, region_id=region.id, region_path=region.path, kind=kind)
        db.session.add(binding)
    _grant(user, _KIND_ROLE[BindingKind(kind)])
    db.session.flush()
    return binding


def bind_group_admin(user, group: VolunteerGroup) -> GroupAdmin:
    """Make ``user`` an admin of ``group`` (and so of its children) and grant the role."""
    binding = db.session.scalar(select(GroupAdmin).where(
        GroupAdmin.user_id == user.id, GroupAdmin.group_id == group.id))
    if binding is None:
        binding = GroupAdmin(user_id=user.id, group_id=group.id)
        db.session.add(binding)
    _grant(user, GROUP_ADMIN)
    db.session.flush()
    return binding


# --- Console (运营控制台 → 用户): enable and disable accounts, add and remove bindings ---


def set_active(users, active: bool, *, actor_id: int | None) -> int:
    """停用账户 / 启用账户: set ``active`` on ``users``; return how many changed.

    A disabled user can no longer log in (FAB refuses inactive users at the form, the
    API login and on every request of an open session or JWT). The change goes through
    the session, so the audit log records ``active:true->false`` (or back).

    :raises DomainError: ``actor_id`` is among the users being disabled (nobody locks
        themselves out; nothing is changed)
    """
    users = list(users)
    if not active and actor_id is not None and any(user.id == actor_id for user in users):
        raise DomainError(gettext("You cannot disable your own account."))
    changed = 0
    for user in users:
        if bool(user.active) != active:
            user.active = active
            changed += 1
    db.session.flush()
    return changed


def _revoke_if_unused(user, role_name: str, still_bound: bool) -> None:
    role = current_app.appbuilder.sm.find_role(role_name)
    if not still_bound and role in user.roles:
        user.roles.remove(role)


def _refuse_partner(user) -> None:
    """A partner account (an API token's, ``app/services/api_tokens.py``) only reads:
    it never becomes an officer, honors editor or group admin."""
    if any(role.name == PARTNER for role in user.roles):
        raise ValidationFailed(gettext(
            "%(user)s is a partner API account: it cannot be given other roles or bindings.",
            user=user.username))


def add_region_binding(user, region: Region | None, kind: str | None) -> RegionBinding:
    """Bind ``user`` to ``region`` from the console: like ``bind_region``, but an existing
    binding is refused instead of returned.

    :raises ValidationFailed: no user or region, a partner account, an unknown kind, an
        honors editor below prefecture level, or the same binding exists
    """
    if user is None or region is None:
        raise ValidationFailed(gettext("Choose a user and a region."))
    _refuse_partner(user)
    if kind not in {k.value for k in _KIND_ROLE}:
        raise ValidationFailed(gettext("Choose officer or honors editor."))
    exists = db.session.scalar(select(RegionBinding.id).where(
        RegionBinding.user_id == user.id, RegionBinding.region_id == region.id, RegionBinding.kind == kind))
    if exists is not None:
        raise ValidationFailed(gettext("%(user)s is already bound to %(region)s in this role.",
                                       user=user.username, region=region.name))
    return bind_region(user, region, kind)


def remove_region_binding(binding: RegionBinding) -> None:
    """Delete ``binding``; the officer or honors-editor role goes with the user's last
    binding of that kind (the role alone would open pages with an empty scope).

    :raises DomainError: a partner binding (it belongs to an API token: revoke the token)
    """
    user, kind = binding.user, binding.kind
    if kind == BindingKind.PARTNER:
        raise DomainError(gettext("A partner binding belongs to its API token: revoke the token instead."))
    db.session.delete(binding)
    db.session.flush()
    still = db.session.scalar(select(RegionBinding.id).where(
        RegionBinding.user_id == user.id, RegionBinding.kind == kind).limit(1)) is not None
    if kind in {k.value for k in _KIND_ROLE}:
        _revoke_if_unused(user, _KIND_ROLE[BindingKind(kind)], still)
    db.session.flush()


def add_group_admin(user, group: VolunteerGroup | None) -> GroupAdmin:
    """Make ``user`` an admin of ``group`` from the console.

    :raises ValidationFailed: no user or group, a partner account, or the user already
        administers it
    """
    if user is None or group is None:
        raise ValidationFailed(gettext("Choose a user and a group."))
    _refuse_partner(user)
    exists = db.session.scalar(select(GroupAdmin.id).where(
        GroupAdmin.user_id == user.id, GroupAdmin.group_id == group.id))
    if exists is not None:
        raise ValidationFailed(gettext("%(user)s already administers %(group)s.",
                                       user=user.username, group=group.name))
    return bind_group_admin(user, group)


def remove_group_admin(binding: GroupAdmin) -> None:
    """Delete ``binding``; the group-admin role goes with the user's last administered group."""
    user = binding.user
    db.session.delete(binding)
    db.session.flush()
    still = db.session.scalar(select(GroupAdmin.id).where(GroupAdmin.user_id == user.id).limit(1)) is not None
    _revoke_if_unused(user, GROUP_ADMIN, still)
    db.session.flush()
