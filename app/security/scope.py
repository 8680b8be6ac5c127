"""Scope: which rows the current user may see and change (DESIGN.md §4).

A user's scope is the union of their bindings: officer / honors-editor regions,
administered groups (with their children) and their own volunteer record.
It is computed once per request and reused by every view, API, export and chart.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import g, has_request_context
from sqlalchemy import and_, select

from app.extensions import db


@dataclass(frozen=True)
class Scope:
    """Everything one user may reach. ``everything`` is the platform admin."""

    everything: bool = False
    region_paths: tuple[str, ...] = ()  # officer / honors-editor bindings
    honors_paths: tuple[str, ...] = ()  # honors-editor bindings only (prefecture or above)
    group_paths: tuple[str, ...] = ()  # administered groups; children included
    volunteer_id: int | None = None  # the user's own volunteer record

    @property
    def is_empty(self) -> bool:
        return not (self.everything or self.region_paths or self.group_paths or self.volunteer_id)


EMPTY = Scope()


def under(column, path: str):
    """SQL predicate: ``column`` lies in ``path`` or below it.

    ``'410000/410200/'`` -> ``column >= '410000/410200/' AND column < '410000/4102000'``:
    '0' is the character after '/', so the range holds exactly the descendants, and a
    plain b-tree serves it on SQLite and PostgreSQL (no LIKE, no IN-list).
    """
    return and_(column >= path, column < path[:-1] + "0")


def path_is_under(path: str | None, ancestor: str) -> bool:
    """Python twin of ``under`` for one value."""
    return path is not None and ancestor <= path < ancestor[:-1] + "0"


def scope_for_user(user) -> Scope:
    """Compute the scope of ``user`` from their roles and bindings (a few indexed queries)."""
    from app.models import BindingKind, GroupAdmin, RegionBinding, Volunteer, VolunteerGroup
    from app.security.roles import ADMIN

    if user is None or not getattr(user, "is_authenticated", False):
        return EMPTY
    if any(role.name == ADMIN for role in user.roles):
        return Scope(everything=True)
    bindings = db.session.execute(
        select(RegionBinding.kind, RegionBinding.region_path).where(RegionBinding.user_id == user.id)
    ).all()
    group_paths = db.session.scalars(
        select(VolunteerGroup.group_path)
        .join(GroupAdmin, GroupAdmin.group_id == VolunteerGroup.id)
        .where(GroupAdmin.user_id == user.id)
    ).all()
    volunteer_id = db.session.scalar(select(Volunteer.id).where(Volunteer.user_id == user.id))
    return Scope(
        region_paths=tuple(sorted({path for _, path in bindings})),
        honors_paths=tuple(sorted(p for kind, p in bindings if kind == BindingKind.HONORS_EDITOR)),
        group_paths=tuple(sorted(p for p in group_paths if p)),
        volunteer_id=volunteer_id,
    )


def current_scope() -> Scope:
    """Return the current user's scope, computed once per request."""
    if not has_request_context():
        return EMPTY
    if "vc_scope" not in g:
        g.vc_scope = scope_for_user(getattr(g, "user", None))
    return g.vc_scope
