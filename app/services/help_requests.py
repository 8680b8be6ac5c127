"""Help requests (求助信息, DESIGN.md §5 "Help request"): anyone posts one (发布求助,
no login needed, rate-limited per client address); officers of its region moderate it
(publish, hide, close); a group of the region claims it, resolves it or turns it into
a project; the requester follows it by a private link.

Status flow (``RequestStatus``)::

    pending ──publish──▶ published ──claim──▶ claimed ──resolve──▶ resolved
       │                    │                    └──a project is made──▶ converted
       └──────close─────────┴───────close────────┘  (closed: status "rejected")

Hiding (``is_hidden``) is apart from the status: a hidden request leaves the public
list and cannot be claimed, whatever its status. The contact phone is encrypted and
masked (``app/security/pii.py``) like a group's; the public sees the name masked
too. The follow token is shown once; only its SHA-256 is kept.
"""
from __future__ import annotations

import hashlib
import secrets

from flask import current_app
from flask_babel import gettext
from sqlalchemy import and_, false, or_, select, true
from sqlalchemy.orm import selectinload

from app.extensions import db
from app.models import SERVICE_CATEGORIES, HelpRequest, Project, Region, RequestStatus, ReviewStatus, VolunteerGroup
from app.security import pii
from app.security.scope import (
    Scope, current_scope, ensure_administers, find_region, officer_clause, oversees, path_is_under, row_id, under,
)
from app.services import audit, reviews
from app.services.clock import utcnow
from app.services.errors import DomainError, ScopeViolation
from app.services.groups import normalize_phone
from app.services.volunteers import FieldErrors

TITLE_MAX, DESCRIPTION_MAX, CONTACT_NAME_MAX = 120, 2000, 64
RESOLUTION_MAX = 1000
PAGE_SIZE = 20
REGION_SEARCH_MAX = 40
FIELDS = ("region_code", "category", "title", "description", "contact_name", "contact_phone")

PENDING, PUBLISHED, CLAIMED = RequestStatus.PENDING, RequestStatus.PUBLISHED, RequestStatus.CLAIMED
RESOLVED, CONVERTED = RequestStatus.RESOLVED, RequestStatus.CONVERTED
CLOSED = RequestStatus.REJECTED  # closed by an officer (with a note)
PUBLIC_STATUSES = (PUBLISHED, CLAIMED, RESOLVED, CONVERTED)
OPEN_STATUSES = (PENDING, PUBLISHED, CLAIMED)  # an officer may still close these
_TOKEN_BYTES = 24  # 192 random bits: 32 URL-safe characters
_LIMIT_KEY = "help-requests/address"


class RateLimited(DomainError):
    """Too many help requests from one client address (answered 429)."""

    code = 429


# --- Posting (发布求助) ---


def requests_per_hour() -> int:
    """HELP_REQUESTS_PER_ADDRESS_PER_HOUR (default 5): help requests one client address may post per hour."""
    return int(current_app.config.get("HELP_REQUESTS_PER_ADDRESS_PER_HOUR", 5))


def _limit():
    from limits import RateLimitItemPerHour

    return RateLimitItemPerHour(requests_per_hour())


def _too_many() -> RateLimited:
    return RateLimited(gettext("Too many help requests from your network: at most %(n)s an hour. "
                               "Please try again later.", n=requests_per_hour()))


def token_hash(token: str) -> str:
    """The stored form of a follow token (SHA-256, hex): the token itself is never kept."""
    return hashlib.sha256(token.encode()).hexdigest()


def _clean_text(errors: FieldErrors, field: str, value, limit: int, missing: str) -> str:
    text = " ".join(str(value or "").split()) if field in ("title", "contact_name") else str(value or "").strip()
    if not text:
        errors.add(field, missing)
    elif len(text) > limit:
        errors.add(field, gettext("At most %(n)s characters.", n=limit))
    return text


def _request_region(code) -> Region | None:
    """The region by code, at county level or below (officers of a county moderate it)."""
    code = str(code or "").strip()
    if not (code.isascii() and code.isdigit() and len(code) <= 12):
        return None
    region = db.session.scalar(select(Region).where(Region.code == code))
    return region if region is not None and region.level >= Region.COUNTY else None


def submit_request(*, client: str | None, region_code=None, category=None, title=None, description=None,
                   contact_name=None, contact_phone=None) -> tuple[HelpRequest, str]:
    """发布求助: a pending help request (officers publish it) and its private follow token.

    Anyone may post, signed in or not; ``client`` is the client address the rate
    limit counts (``HELP_REQUESTS_PER_ADDRESS_PER_HOUR``, default 5). Every problem is
    reported at once and nothing is written then. Returns the request and the token
    for ``/help/follow/<token>`` (shown once; only its hash is stored).

    :raises RateLimited: the address has posted its allowance this hour (checked first)
    :raises ValidationFailed: per field (``FIELDS``)
    """
    from app.security.hardening import rate_limiter

    limiter = rate_limiter()
    key = client or "-"
    if limiter is not None and not limiter.test(_limit(), _LIMIT_KEY, key):
        raise _too_many()
    errors = FieldErrors()
    region = _request_region(region_code)
    if region is None:
        errors.add("region_code", gettext("Please choose where help is needed, at least down to the county."))
    category = str(category or "")
    if category not in SERVICE_CATEGORIES:
        errors.add("category", gettext("Please choose a service category."))
    title = _clean_text(errors, "title", title, TITLE_MAX, gettext("Please give the request a title."))
    description = _clean_text(errors, "description", description, DESCRIPTION_MAX,
                              gettext("Please describe what help is needed."))
    contact_name = _clean_text(errors, "contact_name", contact_name, CONTACT_NAME_MAX,
                               gettext("Please enter a contact name."))
    phone = normalize_phone(str(contact_phone or ""))
    if phone is None:
        errors.add("contact_phone", gettext(
            "Please enter a valid mobile or landline number (a landline with its area code)."))
    errors.raise_if_any()
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    help_request = HelpRequest(
        region_id=region.id, region_path=region.path, category=category, title=title, description=description,
        contact_name=contact_name, contact_phone_enc=pii.encrypt(phone), contact_phone_masked=pii.mask_phone(phone),
        status=PENDING, is_hidden=False, follow_token_hash=token_hash(token),
        created_by_fk=reviews.acting_user_id())
    db.session.add(help_request)
    db.session.flush()
    # Counted last, atomically: two concurrent posts cannot both take the last place.
    if limiter is not None and not limiter.hit(_limit(), _LIMIT_KEY, key):
        raise _too_many()
    return help_request, token


def followed_request(token) -> HelpRequest:
    """The request a follow link names (``/help/follow/<token>``).

    :raises ScopeViolation: no request has this token (answered 404)
    """
    if not isinstance(token, str) or not 20 <= len(token) <= 64 or not token.isascii():
        raise ScopeViolation()
    found = db.session.scalar(select(HelpRequest).where(HelpRequest.follow_token_hash == token_hash(token))
                              .options(selectinload(HelpRequest.claimed_by_group)))
    if found is None:
        raise ScopeViolation()
    return found


def my_requests(user_id: int | None, *, page: int = 0, page_size: int = PAGE_SIZE) -> tuple[list[HelpRequest], bool]:
    """我的求助: the requests the signed-in user posted, newest first; and whether more follow."""
    if user_id is None:
        return [], False
    return _page(select(HelpRequest).where(HelpRequest.created_by_fk == user_id), page, page_size)


def _page(query, page: int, page_size: int) -> tuple[list[HelpRequest], bool]:
    """One page (LIMIT one extra row, no COUNT) with regions and claiming groups loaded."""
    rows = list(db.session.scalars(
        query.options(selectinload(HelpRequest.region), selectinload(HelpRequest.claimed_by_group))
        .order_by(HelpRequest.id.desc()).offset(max(page, 0) * page_size).limit(page_size + 1)))
    return rows[:page_size], len(rows) > page_size


# --- The public list (求助信息) ---


def public_clause():
    """SQL predicate: requests the public sees — published, claimed, resolved or turned
    into a project, and not hidden by an officer."""
    return and_(HelpRequest.status.in_(PUBLIC_STATUSES), HelpRequest.is_hidden == false())


def mask_name(name: str | None) -> str:
    """A contact name as the public sees it: ``王秀英`` → ``王**``."""
    name = (name or "").strip()
    return name[:1] + "*" * min(max(len(name) - 1, 1), 3) if name else ""


def search_public(*, region: str = "", category: str = "", page: int = 0,
                  page_size: int = PAGE_SIZE) -> tuple[list[HelpRequest], bool]:
    """求助信息: public requests, newest first, in a region (code or exact name, and below)
    and a service category; an unknown region or category finds nothing. No COUNT."""
    query = select(HelpRequest).where(public_clause())
    region = (region or "").strip()[:REGION_SEARCH_MAX]
    if region:
        found = find_region(region, current_scope())
        query = query.where(under(HelpRequest.region_path, found.path) if found is not None else false())
    if category:
        query = query.where(HelpRequest.category == category if category in SERVICE_CATEGORIES else false())
    return _page(query, page, page_size)


def public_request(request_id) -> HelpRequest:
    """A request the public may see.

    :raises ScopeViolation: unknown, pending, closed or hidden (answered 404)
    """
    pk = row_id(request_id)
    found = db.session.scalar(select(HelpRequest).where(HelpRequest.id == pk, public_clause())) if pk else None
    if found is None:
        raise ScopeViolation()
    return found


# --- Who reads what ---


def moderation_clause(scope: Scope | None = None):
    """SQL predicate: requests an officer moderates — those of their officer regions and
    below (honors-editor and group-admin bindings do not count)."""
    return officer_clause(HelpRequest.region_path, scope)


def claimed_clause(scope: Scope | None = None):
    """SQL predicate: requests claimed by the user's groups (and their child groups)."""
    scope = scope or current_scope()
    if scope.everything:
        return HelpRequest.claimed_by_group_id.is_not(None)
    parts = [under(HelpRequest.group_path, p) for p in scope.group_paths]
    return or_(*parts) if parts else false()


def reader_clause(scope: Scope | None = None):
    """SQL predicate: requests a signed-in user reads in full (not masked): officers those
    of their regions, group admins those their groups claimed."""
    scope = scope or current_scope()
    return or_(moderation_clause(scope), claimed_clause(scope))


def claiming_groups(scope: Scope | None = None) -> list[VolunteerGroup]:
    """Approved groups the user administers directly: the groups that may claim requests."""
    from app.services.projects import publishing_groups

    return publishing_groups(scope)


def claimable_clause(groups: list[VolunteerGroup]):
    """SQL predicate: published, visible requests in the region of one of ``groups`` or below."""
    parts = [under(HelpRequest.region_path, g.region_path) for g in groups]
    if not parts:
        return false()
    return and_(HelpRequest.status == PUBLISHED, HelpRequest.is_hidden == false(), or_(*parts))


def _one(clause, request_id) -> HelpRequest:
    pk = row_id(request_id)
    found = db.session.scalar(select(HelpRequest).where(HelpRequest.id == pk, clause)
                              .options(selectinload(HelpRequest.claimed_by_group))) if pk else None
    if found is None:
        raise ScopeViolation()
    return found


def moderated_request(request_id) -> HelpRequest:
    """The request with this id when it lies in one of the officer's regions.

    :raises ScopeViolation: unknown, or outside the regions (answered 404)
    """
    return _one(moderation_clause(), request_id)


def group_request(request_id) -> HelpRequest:
    """A request a group admin may open: claimable by one of their groups, or claimed by one.

    :raises ScopeViolation: otherwise (answered 404)
    """
    return _one(or_(claimable_clause(claiming_groups()), claimed_clause()), request_id)


def moderation_list(*, status: str = "", hidden: bool = False, page: int = 0,
                    page_size: int = PAGE_SIZE) -> tuple[list[HelpRequest], bool]:
    """区域监管 → 求助审核: the requests of the officer's regions, newest first, of one status
    (all when empty), or only the hidden ones."""
    query = select(HelpRequest).where(moderation_clause())
    if hidden:
        query = query.where(HelpRequest.is_hidden == true())
    elif status:
        query = query.where(HelpRequest.status == status if status in RequestStatus.labels() else false())
    return _page(query, page, page_size)


def open_for_groups(*, page: int = 0, page_size: int = PAGE_SIZE) -> tuple[list[HelpRequest], bool]:
    """团体管理 → 求助认领: published requests the user's groups may claim, newest first."""
    return _page(select(HelpRequest).where(claimable_clause(claiming_groups())), page, page_size)


def claimed_by_groups(*, page: int = 0, page_size: int = PAGE_SIZE) -> tuple[list[HelpRequest], bool]:
    """团体管理 → 求助认领: the requests the user's groups claimed (any status since), newest first."""
    return _page(select(HelpRequest).where(claimed_clause()), page, page_size)


# --- State changes (each re-reads its row under a lock) ---


def _lock(help_request: HelpRequest) -> HelpRequest:
    """Re-read the request under a row lock: two moderators or groups acting at once
    cannot both succeed (PostgreSQL waits, then sees the other's change)."""
    locked = db.session.scalar(select(HelpRequest).where(HelpRequest.id == help_request.id)
                               .with_for_update().execution_options(populate_existing=True))
    if locked is None:
        raise ScopeViolation()
    return locked


def _ensure_moderates(help_request: HelpRequest) -> None:
    if not oversees(help_request.region_path):
        raise ScopeViolation()


def _status_label(status: str) -> str:
    return str(status_labels().get(status, status))


def status_labels() -> dict[str, str]:
    """What each status reads as, for help requests (``rejected`` reads "closed")."""
    return {PENDING: gettext("Awaiting moderation"), PUBLISHED: gettext("Published"),
            CLAIMED: gettext("Claimed"), RESOLVED: gettext("Resolved"),
            CONVERTED: gettext("Turned into a project"), CLOSED: gettext("Closed")}


def _note(text, missing: str, limit: int = RESOLUTION_MAX) -> str:
    value = str(text or "").strip() if isinstance(text, str) else ""
    if not value:
        raise DomainError(missing)
    if len(value) > limit:
        raise DomainError(gettext("At most %(n)s characters.", n=limit))
    return value


def publish(help_request: HelpRequest) -> HelpRequest:
    """An officer publishes a pending request: it appears on 求助信息 and groups may claim it.

    :raises ScopeViolation: outside the officer's regions
    :raises DomainError: not pending (any more)
    """
    _ensure_moderates(help_request)
    locked = _lock(help_request)
    if locked.status != PENDING:
        raise DomainError(gettext("Only a request awaiting moderation can be published (it is %(status)s).",
                                  status=_status_label(locked.status)))
    locked.status, locked.moderated_by_fk = PUBLISHED, reviews.acting_user_id()
    db.session.flush()
    return locked


def set_hidden(help_request: HelpRequest, hidden: bool) -> HelpRequest:
    """An officer hides a request from the public list and from claiming (or shows it again).

    :raises ScopeViolation: outside the officer's regions
    :raises DomainError: already so
    """
    _ensure_moderates(help_request)
    locked = _lock(help_request)
    if bool(locked.is_hidden) == hidden:
        raise DomainError(gettext("The request is hidden already.") if hidden
                          else gettext("The request is not hidden."))
    locked.is_hidden, locked.moderated_by_fk = hidden, reviews.acting_user_id()
    db.session.flush()
    return locked


def close(help_request: HelpRequest, note) -> HelpRequest:
    """An officer closes a request that is still open (pending, published or claimed), with
    a note the requester reads on the follow page.

    :raises ScopeViolation: outside the officer's regions
    :raises DomainError: no note, or the request is finished already
    """
    _ensure_moderates(help_request)
    note = _note(note, gettext("Closing a request needs a note the requester can read."))
    locked = _lock(help_request)
    if locked.status not in OPEN_STATUSES:
        raise DomainError(gettext("The request is %(status)s already and cannot be closed.",
                                  status=_status_label(locked.status)))
    locked.status, locked.resolution = CLOSED, note
    locked.resolved_on, locked.moderated_by_fk = utcnow(), reviews.acting_user_id()
    db.session.flush()
    return locked


def claim(help_request: HelpRequest, group: VolunteerGroup | None) -> HelpRequest:
    """认领 for ``group``, one of the approved groups the user administers directly: only a
    published, visible request of the group's region (or below).

    :raises ScopeViolation: not an admin of the group, or the request lies outside its region
    :raises DomainError: the group is not approved, the request is not open to claiming
    """
    ensure_administers(group)
    if group.status != ReviewStatus.APPROVED:
        raise DomainError(gettext("Only an approved group can claim help requests."))
    if not path_is_under(help_request.region_path, group.region_path):
        raise ScopeViolation()
    locked = _lock(help_request)
    if locked.status != PUBLISHED or locked.is_hidden:
        raise DomainError(gettext("This request can no longer be claimed (it is %(status)s).",
                                  status=_status_label(locked.status)))
    locked.status, locked.claimed_by_group_id, locked.group_path = CLAIMED, group.id, group.group_path
    locked.claimed_on = utcnow()
    db.session.flush()
    return locked


def _claimed_by_mine(help_request: HelpRequest) -> HelpRequest:
    """Lock a request the user's own group (administered directly) claimed, still claimed."""
    group = help_request.claimed_by_group
    if group is None:
        raise ScopeViolation()
    ensure_administers(group)
    locked = _lock(help_request)
    if locked.status != CLAIMED or locked.claimed_by_group_id != group.id:
        raise DomainError(gettext("The request is %(status)s: only a claimed request can be finished.",
                                  status=_status_label(locked.status)))
    return locked


def resolve(help_request: HelpRequest, resolution) -> HelpRequest:
    """The claiming group marks its request resolved, saying how (the requester reads it).

    :raises ScopeViolation: not an admin of the claiming group itself
    :raises DomainError: no resolution text, or the request is not claimed (any more)
    """
    resolution = _note(resolution, gettext("Say how the request was resolved."))
    locked = _claimed_by_mine(help_request)
    locked.status, locked.resolution, locked.resolved_on = RESOLVED, resolution, utcnow()
    db.session.flush()
    return locked


def convertible(request_id, group: VolunteerGroup) -> HelpRequest:
    """The request ``group`` claimed and may turn into a project (发布新项目 ``from_help``).

    :raises ScopeViolation: not an admin of ``group``, or not a request it holds claimed
    """
    ensure_administers(group)
    pk = row_id(request_id)
    found = db.session.scalar(select(HelpRequest).where(
        HelpRequest.id == pk, HelpRequest.claimed_by_group_id == group.id,
        HelpRequest.status == CLAIMED)) if pk else None
    if found is None:
        raise ScopeViolation()
    return found


def project_prefill(help_request: HelpRequest) -> dict:
    """发布新项目's fields prefilled from a request: name, description, category, region."""
    return {"name": help_request.title, "description": help_request.description,
            "category": help_request.category, "region_code": help_request.region_code}


def link_project(help_request: HelpRequest, project: Project) -> HelpRequest:
    """The project made from the request exists: the request is ``converted`` and points to it.

    :raises ScopeViolation: the project's group is not the claiming group, or not the user's
    :raises DomainError: the request is not claimed (any more)
    """
    if project.group_id != help_request.claimed_by_group_id:
        raise ScopeViolation()
    locked = _claimed_by_mine(help_request)
    locked.status, locked.project_id, locked.resolved_on = CONVERTED, project.id, utcnow()
    db.session.flush()
    return locked


def reveal_contact(help_request: HelpRequest) -> str | None:
    """The full contact phone, for an officer of the request's region or an admin of the
    claiming group (or its parents); the view is recorded in the audit log (``view_pii``).
    The caller commits.

    :raises ScopeViolation: anyone else
    """
    if db.session.scalar(select(HelpRequest.id).where(HelpRequest.id == help_request.id,
                                                      reader_clause())) is None:
        raise ScopeViolation()
    phone = pii.decrypt(help_request.contact_phone_enc)
    audit.record_view(help_request, "contact_phone")
    return phone
