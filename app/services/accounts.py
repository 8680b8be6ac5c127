"""Accounts: users, their roles and the bindings that give them a scope."""
from __future__ import annotations

from flask import current_app
from flask_babel import gettext
from sqlalchemy import select

from app.extensions import db
from app.models import BindingKind, GroupAdmin, Region, RegionBinding, VolunteerGroup
from app.security.roles import GROUP_ADMIN, HONORS_EDITOR, OFFICER
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
