"""Scope: which rows the current user may see and change (DESIGN.md §4).

A user's scope is the union of their bindings: officer / honors-editor regions,
administered groups (with their children) and their own volunteer record.
It is computed once per request and reused by every view, API, export and chart.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import g, has_request_context
from flask_appbuilder.models.filters import BaseFilter
from flask_babel import lazy_gettext
from sqlalchemy import and_, case, exists, false, or_, select, true

from app.extensions import db
from app.services.errors import ScopeViolation


@dataclass(frozen=True)
class Scope:
    """Everything one user may reach. ``everything`` is the platform admin."""

    everything: bool = False
    officer_paths: tuple[str, ...] = ()  # officer bindings
    honors_paths: tuple[str, ...] = ()  # honors-editor bindings (prefecture or above)
    group_paths: tuple[str, ...] = ()  # administered groups; children included
    volunteer_id: int | None = None  # the user's own volunteer record
    partner_paths: tuple[str, ...] = ()  # a partner system's API token (read-only role)

    @property
    def region_paths(self) -> tuple[str, ...]:
        """Regions whose rows the user reads: officer, honors-editor and partner bindings
        alike. Officer powers (``officer_clause``, ``oversees``) come from officer bindings
        only, so a partner token reads its region and below and acts on nothing."""
        return tuple(sorted(set(self.officer_paths) | set(self.honors_paths) | set(self.partner_paths)))

    @property
    def group_ids(self) -> frozenset[int]:
        """Ids of the groups the user administers directly (the last id of each path).

        Children are *read* through ``group_paths``; changes to a group's roster,
        requests and settings belong to its own admins only.
        """
        return frozenset(int(p.rstrip("/").rsplit("/", 1)[-1]) for p in self.group_paths)

    @property
    def is_empty(self) -> bool:
        return not (self.everything or self.region_paths or self.group_paths or self.volunteer_id)


EMPTY = Scope()

MAX_ROW_ID = 2**31 - 1  # INTEGER primary keys (PostgreSQL int4)


def is_row_id(value) -> bool:
    """True when ``value`` could be a row's integer id: ASCII digits within INTEGER range
    (``"²".isdigit()`` is True, and a 20-digit id overflows the database driver)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 < value <= MAX_ROW_ID
    text = str(value)
    return text.isascii() and text.isdigit() and len(text) <= 10 and 0 < int(text) <= MAX_ROW_ID


def row_id(value) -> int | None:
    """``value`` as a row id, or None when it cannot be one (callers answer 404)."""
    return int(value) if is_row_id(value) else None


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
        officer_paths=tuple(sorted(p for kind, p in bindings if kind == BindingKind.OFFICER)),
        honors_paths=tuple(sorted(p for kind, p in bindings if kind == BindingKind.HONORS_EDITOR)),
        partner_paths=tuple(sorted(p for kind, p in bindings if kind == BindingKind.PARTNER)),
        group_paths=tuple(sorted(p for p in group_paths if p)),
        volunteer_id=volunteer_id,
    )


def current_scope() -> Scope:
    """Return the current user's scope, computed once per request."""
    if not has_request_context():
        return EMPTY
    if "vc_scope" not in g:
        user = getattr(g, "user", None)
        if user is None or not user.is_authenticated:
            user = _jwt_user()
        g.vc_scope = scope_for_user(user)
    return g.vc_scope


def _jwt_user():
    """The API caller behind a bearer token, if any.

    FAB's ``@protect`` lets a request through without reading its token when the
    Public role may do the thing; the scope must still be the caller's own. Partner
    API tokens (``vc_…``) do not get here on /api/: ``app/security/api_keys.py`` has
    made their account ``g.user`` (or answered 401) before any view ran.
    """
    from flask_jwt_extended import get_current_user, verify_jwt_in_request

    try:
        if verify_jwt_in_request(optional=True) is None:
            return None
        return get_current_user()
    except Exception:  # an invalid or expired token reads as anonymous
        return None


class InvalidToken(Exception):
    """The request names credentials that do not identify an active user."""


def bearer_user():
    """The user a request's ``Authorization: Bearer`` token names, made the request's
    ``g.user``; None when the request carries no Authorization header.

    FAB's ``@protect`` does not read the token when the Public role may do the thing
    (posting a help request), so such endpoints call this to record who acted — and
    refuse, rather than read as anonymous, credentials that do not hold.

    :raises InvalidToken: an Authorization header that is not a valid, unexpired
        access token of an active user (malformed, wrong signature, expired, not
        "Bearer", the user deactivated)
    """
    from flask import request
    from flask_jwt_extended import get_current_user, verify_jwt_in_request
    from flask_jwt_extended.exceptions import JWTExtendedException
    from jwt.exceptions import PyJWTError

    if not request.headers.get("Authorization", "").strip():
        return None
    try:
        user = get_current_user() if verify_jwt_in_request(optional=True) is not None else None
    except (JWTExtendedException, PyJWTError, ValueError) as err:
        raise InvalidToken() from err
    if user is None or not getattr(user, "is_active", False):
        raise InvalidToken()
    g.user = user
    g.pop("vc_scope", None)  # computed before the user was known
    return user


def _any_under(column, paths) -> list:
    return [under(column, path) for path in paths]


def officer_clause(column, scope: Scope | None = None):
    """SQL predicate: ``column`` (a region path) lies in a region the user oversees as an
    officer, or below it. Officer bindings only (honors-editor and group-admin bindings
    do not count); everything for the platform admin. ``oversees`` is its twin for one
    path in Python."""
    scope = scope or current_scope()
    if scope.everything:
        return true()
    parts = _any_under(column, scope.officer_paths)
    return or_(*parts) if parts else false()


def oversees(path: str | None, scope: Scope | None = None) -> bool:
    """True when ``path`` lies in a region the user oversees as an officer (see
    ``officer_clause``); always for the platform admin."""
    scope = scope or current_scope()
    return scope.everything or any(path_is_under(path, p) for p in scope.officer_paths)


def scope_clause(model, scope: Scope):
    """SQL predicate: rows of ``model`` inside ``scope``. The one answer to
    "which rows may this user touch?", used by every filter, service and chart.

    Officers and honors editors reach rows by ``region_path``; group admins by
    ``group_path`` (their groups and all children); a volunteer reaches their own
    rows. A few models add a relation: group admins see their groups' members,
    volunteers see the groups they belong to and the projects they signed up for.
    """
    from app.models import AuditEvent, Enrollment, Membership, MembershipStatus, Project, Volunteer, VolunteerGroup

    if scope.everything:
        return true()
    if model is AuditEvent:
        parts = _any_under(AuditEvent.region_path, scope.officer_paths)
        parts += [and_(AuditEvent.object_type == "honor", under(AuditEvent.region_path, p))
                  for p in scope.honors_paths]
        parts += _any_under(AuditEvent.group_path, scope.group_paths)
        return or_(*parts) if parts else false()
    parts = []
    if hasattr(model, "region_path"):
        parts += _any_under(model.region_path, scope.region_paths)
    if hasattr(model, "group_path"):
        parts += _any_under(model.group_path, scope.group_paths)
    if scope.volunteer_id is not None:
        if model is Volunteer:
            parts.append(Volunteer.id == scope.volunteer_id)
        elif hasattr(model, "volunteer_id"):
            parts.append(model.volunteer_id == scope.volunteer_id)
    if model is Volunteer and scope.group_paths:
        parts.append(exists().where(
            Membership.volunteer_id == Volunteer.id,
            Membership.status.in_((MembershipStatus.ACTIVE, MembershipStatus.PENDING)),
            or_(*_any_under(Membership.group_path, scope.group_paths))))
    if model is VolunteerGroup and scope.volunteer_id is not None:
        parts.append(exists().where(
            Membership.group_id == VolunteerGroup.id, Membership.volunteer_id == scope.volunteer_id,
            Membership.status == MembershipStatus.ACTIVE))
    if model is Project and scope.volunteer_id is not None:
        parts.append(exists().where(
            Enrollment.project_id == Project.id, Enrollment.volunteer_id == scope.volunteer_id))
    return or_(*parts) if parts else false()


def region_choices_clause(scope: Scope):
    """SQL predicate for region pickers: the regions the user oversees and below."""
    from app.models import Region

    if scope.everything:
        return true()
    parts = _any_under(Region.path, scope.region_paths)
    return or_(*parts) if parts else false()


class InScope(BaseFilter):
    """FAB filter: rows the current user may see, for any scoped model.

    Use as ``base_filters = [["id", InScope, None]]``. ``arg_name`` stays None so
    the REST API does not offer it as a user filter.
    """

    name = "In scope"

    def apply(self, query, value):
        return query.filter(scope_clause(self.model, current_scope()))


def find_region(value: str, scope: Scope):
    """The region a user means by a code or an exact name, preferring their own regions."""
    from app.models import Region

    value = (value or "").strip()
    if not value:
        return None
    match = Region.code == value if value.isdigit() else Region.name == value
    order = [Region.level, Region.id]
    if scope.region_paths and not scope.everything:
        # Own regions first; a constant true()/false() would read as "ORDER BY <column number>".
        order.insert(0, case((region_choices_clause(scope), 0), else_=1))
    return db.session.scalars(select(Region).where(match).order_by(*order).limit(1)).first()


class InRegion(BaseFilter):
    """Search filter on a path column: rows in the region given by code or name, and below.

    Replaces a dropdown of every region (thousands of options rendered per page)
    with one indexed range; the view's scope filter still applies on top.
    """

    name = lazy_gettext("In region (code or name)")

    def apply(self, query, value):
        region = find_region(value, current_scope())
        if region is None:
            return query.filter(false())
        return query.filter(under(getattr(self.model, self.column_name), region.path))


def is_in_scope(obj, scope: Scope | None = None) -> bool:
    """True when ``obj`` (a persisted row) lies inside the scope; asks the database,
    so relations such as membership count exactly as in lists."""
    scope = scope or current_scope()
    if scope.everything:
        return True
    model = type(obj)
    return db.session.scalar(
        select(model.id).where(model.id == obj.id, scope_clause(model, scope))) is not None


def ensure_in_scope(obj, scope: Scope | None = None) -> None:
    """Raise ScopeViolation (answered as 404) unless ``obj`` lies inside the scope."""
    if obj is None or not is_in_scope(obj, scope):
        raise ScopeViolation()


def ensure_administers(group, scope: Scope | None = None) -> None:
    """Raise ScopeViolation unless the user administers ``group`` itself (not only a
    parent of it) or is the platform admin."""
    scope = scope or current_scope()
    if group is None or not (scope.everything or group.id in scope.group_ids):
        raise ScopeViolation()


def ensure_path_in_scope(region_path: str | None, group_path: str | None = None,
                         scope: Scope | None = None) -> None:
    """Raise ScopeViolation unless a row written with these paths would be inside the scope.

    Used before a write, so that no write lands outside the writer's scope.
    """
    scope = scope or current_scope()
    if scope.everything:
        return
    if any(path_is_under(region_path, p) for p in scope.region_paths):
        return
    if group_path and any(path_is_under(group_path, p) for p in scope.group_paths):
        return
    raise ScopeViolation()
