"""Partner API tokens (issue 9): long-lived bearer keys for partner systems, issued by an
Admin in the console, bound to one region, read-only and revocable.

A token is FAB's own API key (``ab_api_key``, checked by ``@protect`` and by
``app/security/api_keys.py`` on every /api/ request) held by a dedicated partner
account: an ``ab_user`` with an unknown random password and the read-only ``Partner``
role, bound to the region by a ``RegionBinding`` of kind ``partner``. Scope
(``app/security/scope.py``) reads that binding as "this region and below", for reading
only: officer powers come from officer bindings alone.

The raw token is returned once by ``issue`` and stored only as two hashes (FAB's slow
``key_hash`` and its keyed lookup hash). Revoking sets ``revoked_on`` and deactivates
the partner account. Both are recorded in the audit log as ``ab_api_key`` events,
without the token.

Times on ``ab_api_key`` (``created_on``, ``expires_on``, ``revoked_on``,
``last_used_on``) are naive UTC, like the rest of the database; FAB's own
``ApiKey.is_active`` would compare them with naive local time, so the portal's
``PortalSecurityManager.validate_api_key`` does the check itself, in UTC. An expiry
*date* means the end of that day in Asia/Shanghai (the product's day).
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask import current_app
from flask_appbuilder.security.sqla.models import ApiKey
from flask_babel import gettext
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from app.extensions import db
from app.models import BindingKind, Region, RegionBinding
from app.security.roles import PARTNER
from app.services import audit, clock
from app.services.errors import DomainError, ValidationFailed

NAME_MAX = 100
AUDIT_OBJECT = "ab_api_key"


@dataclass(frozen=True)
class IssuedToken:
    """A token just made: ``key`` is the raw token, shown once and stored nowhere."""

    key: str
    api_key: ApiKey
    region: Region


def _config(name: str, default):
    return current_app.config.get(name, default)


def _hash(raw: str) -> str:
    """FAB's ``key_hash``: the API-key hash method of the config (a cheap one is enough
    for 32 random bytes), falling back to the password method, as FAB does."""
    method = _config("FAB_API_KEY_HASH_METHOD", _config("FAB_PASSWORD_HASH_METHOD", "scrypt"))
    salt_length = _config("FAB_API_KEY_HASH_SALT_LENGTH", _config("FAB_PASSWORD_HASH_SALT_LENGTH", 16))
    return generate_password_hash(raw, method=method, salt_length=salt_length)


def expiry_moment(expires_on: date | datetime | None) -> datetime | None:
    """The moment (naive UTC, as stored) a token given an expiry date stops working: the
    end of that day in Asia/Shanghai. A datetime is taken as naive UTC already."""
    if expires_on is None or isinstance(expires_on, datetime):
        return expires_on
    return clock.to_utc(datetime.combine(expires_on + timedelta(days=1), time.min))


def _partner_role():
    """The Partner role, created when a database was bootstrapped before it existed."""
    sm = current_app.appbuilder.sm
    return sm.find_role(PARTNER) or sm.add_role(PARTNER, commit=False)


def _find_region(region: Region | str | None) -> Region | None:
    if not isinstance(region, str):
        return region
    code = region.strip()
    return db.session.scalar(select(Region).where(Region.code == code).limit(1)) if code else None


def issue(name: str, region: Region | str | None, expires_on: date | datetime | None = None) -> IssuedToken:
    """Make a partner account bound to ``region`` (a row or a region code) and an API
    token for it; flush, the caller commits. The returned ``key`` is the only copy of
    the raw token. ``expires_on``: the last day (Asia/Shanghai) the token works.

    :raises ValidationFailed: no name (or a longer one than 100 characters), no region
        or an unknown region code, or an expiry date in the past
    :raises DomainError: the account could not be created
    """
    name = (name or "").strip()
    errors = []
    if not name or len(name) > NAME_MAX:
        errors.append(gettext("Give the token a name of at most %(n)s characters.", n=NAME_MAX))
    code = region.strip() if isinstance(region, str) else None
    region = _find_region(region)
    if region is None:
        errors.append(gettext("No region has the code %(code)s.", code=code) if code
                      else gettext("Choose the region the token may read."))
    expires = expiry_moment(expires_on)
    if expires is not None and expires <= clock.utcnow():
        errors.append(gettext("The expiry date must lie in the future."))
    if errors:
        raise ValidationFailed(*errors)

    sm = current_app.appbuilder.sm
    username = f"partner-{secrets.token_hex(8)}"
    user = sm.add_user(username, name[:64], "Partner", f"{username}@partner.invalid", [_partner_role()],
                       hashed_password=_hash(secrets.token_urlsafe(32)), commit=False)
    if not user:
        raise DomainError(gettext("Could not create user %(name)s.", name=username))
    db.session.add(RegionBinding(user_id=user.id, region_id=region.id, region_path=region.path,
                                 kind=BindingKind.PARTNER))

    prefixes = _config("FAB_API_KEY_PREFIXES", ["sst_"])
    prefix = prefixes[0] if prefixes else "sst_"
    raw = prefix + secrets.token_urlsafe(32)
    api_key = ApiKey(name=name, key_hash=_hash(raw), lookup_hash=sm._compute_lookup_hash(raw), key_prefix=prefix,
                     user_id=user.id, active=True, expires_on=expires, created_on=clock.utcnow())
    db.session.add(api_key)
    db.session.flush()
    audit.record_event("create", AUDIT_OBJECT, api_key.id, region_path=region.path,
                       after=_description(api_key, region, username))
    return IssuedToken(key=raw, api_key=api_key, region=region)


def _description(api_key: ApiKey, region: Region | None, username: str) -> dict:
    """What the audit log says about a token: never the token or its hashes."""
    return {"name": api_key.name, "key_prefix": api_key.key_prefix, "user": username,
            "region": region.code if region is not None else None,
            "expires_on": api_key.expires_on.isoformat() if api_key.expires_on else None,
            "revoked_on": api_key.revoked_on.isoformat() if api_key.revoked_on else None}


def region_of(api_key: ApiKey) -> Region | None:
    """The region a token's partner account is bound to."""
    return db.session.scalar(
        select(Region).join(RegionBinding, RegionBinding.region_id == Region.id)
        .where(RegionBinding.user_id == api_key.user_id, RegionBinding.kind == BindingKind.PARTNER)
        .order_by(RegionBinding.id).limit(1))


def regions_of(api_keys: list[ApiKey]) -> dict[int, Region]:
    """``region_of`` for a page of tokens in one query: {user_id: region} (the console
    list's region column)."""
    user_ids = {k.user_id for k in api_keys}
    if not user_ids:
        return {}
    rows = db.session.execute(
        select(RegionBinding.user_id, Region).join(Region, RegionBinding.region_id == Region.id)
        .where(RegionBinding.user_id.in_(user_ids), RegionBinding.kind == BindingKind.PARTNER)
        .order_by(RegionBinding.id.desc())).all()  # the first binding wins, as in region_of
    return {user_id: region for user_id, region in rows}


def revoke(api_key: ApiKey | str) -> bool:
    """Revoke a token (given as its row or its raw value): set ``revoked_on`` and
    deactivate its partner account; flush, the caller commits. Returns False when it
    was revoked already or no such token exists."""
    if isinstance(api_key, str):
        raw = api_key
        api_key = db.session.scalar(select(ApiKey).where(
            ApiKey.lookup_hash == current_app.appbuilder.sm._compute_lookup_hash(raw)))
        if api_key is None:
            return False
    if api_key.revoked_on is not None:
        return False
    region = region_of(api_key)
    api_key.revoked_on = clock.utcnow()
    if api_key.user is not None and region is not None:  # a partner account serves this token only
        api_key.user.active = False
    db.session.flush()
    audit.record_event("revoke", AUDIT_OBJECT, api_key.id, region_path=region.path if region else None,
                       before={"revoked_on": None},
                       after=_description(api_key, region, api_key.user.username if api_key.user else ""))
    return True
