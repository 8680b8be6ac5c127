"""Partner API tokens at the door: an ``Authorization: Bearer vc_…`` request to /api/ is
authenticated once, before any view runs, and may only read.

FAB's ``@protect`` checks API keys only where the Public role may not do the thing; on
public endpoints (regions, group cards, projects) it lets the request through without
reading the key, and the scope would be an anonymous visitor's. Here every /api/
request naming a key is settled first:

- an unknown, revoked or expired key, or one whose account is disabled → 401 (never
  read as anonymous);
- a valid key makes its partner account the request's user (``g.user``; FAB's
  ``has_access`` and our ``current_scope`` follow it); when ``@protect`` asks again,
  ``PortalSecurityManager.validate_api_key`` answers from ``g`` (no second hash or write);
- anything but GET, HEAD and OPTIONS → 403: partner tokens read, whatever the Public
  role may post (help requests).
"""
from __future__ import annotations

from flask import Flask, current_app, g, jsonify, request

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
API_PREFIX = "/api/"


def authenticate_api_key():
    """``before_request``: settle an API-key bearer (see the module docstring)."""
    if not request.path.startswith(API_PREFIX) or not current_app.config.get("FAB_API_KEY_ENABLED"):
        return None
    sm = current_app.appbuilder.sm
    raw = sm.extract_api_key_from_request()
    if raw is None:
        return None
    if sm.validate_api_key(raw) is None:  # sets g.user and g._api_key_user when valid
        return jsonify(message="Not authorized"), 401
    g.pop("vc_scope", None)
    if request.method not in READ_METHODS:
        return jsonify(message="Forbidden"), 403
    return None


def init_app(app: Flask) -> None:
    """Register the hook; after the AppBuilder's, which sets ``g.user`` from the session."""
    app.before_request(authenticate_api_key)
