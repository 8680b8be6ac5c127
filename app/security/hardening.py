"""Security hardening: login throttling, security headers, cookie settings, proxies.

``init_app`` runs in ``create_app`` after CSRFProtect and before the AppBuilder,
so its request hooks run after the CSRF check and before FAB's views.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import math
import re
import time
from dataclasses import dataclass

from flask import Flask, current_app, flash, has_app_context, has_request_context, jsonify, redirect, request
from flask_babel import gettext
from flask_talisman import Talisman
from limits import RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

log = logging.getLogger(__name__)

EXTENSION = "vc_login_throttle"

# Content Security Policy. Scripts only from our origin or carrying the
# per-request nonce (FAB's templates print it from csp_nonce(), which Talisman
# provides). Inline styles stay allowed: FAB's widgets and Plotly set style=.
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:",
    "font-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "frame-ancestors": "'self'",
    "form-action": "'self'",
}


def init_app(app: Flask) -> None:
    """Install the hardening on ``app`` (before the AppBuilder)."""
    _trust_proxies(app)
    _secure_cookies(app)
    _security_headers(app)
    app.extensions[EXTENSION] = LoginThrottle.from_config(app.config)
    app.url_map.converters["int"] = BoundedIntConverter  # before any route is added
    app.before_request(_refuse_nul_bytes)
    app.before_request(_refuse_deep_rison)
    app.before_request(_refuse_unencodable_json)
    app.before_request(_refuse_throttled_login)


# --- Input the database cannot take ---


class BoundedIntConverter(IntegerConverter):
    """``<int:…>`` routes match INTEGER ids only: a 20-digit id is a 404 here, not an
    overflow in the database driver."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


def _refuse_nul_bytes():
    """400 for a NUL character in the path, the query or a form field: no text we store
    may hold one, and PostgreSQL refuses it with an error (a 500) rather than a match."""
    values = [request.path, *(v for vs in request.args.listvalues() for v in vs),
              *(v for vs in request.form.listvalues() for v in vs)]
    if any("\x00" in value for value in values) or (request.is_json and b"\\u0000" in request.get_data()):
        from werkzeug.exceptions import BadRequest

        raise BadRequest()


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_unencodable_json():
    """400 for a JSON body holding a lone UTF-16 surrogate (``"\\ud800"``): Python reads
    it into a str that no database driver can encode, and FAB's API would answer 500.
    Proper pairs (an emoji written as two escapes) are one character and pass."""
    if not request.is_json:
        return None
    raw = request.get_data(cache=True)
    if not _SURROGATE_ESCAPE.search(raw):
        return None
    from werkzeug.exceptions import BadRequest

    try:
        stack = [json.loads(raw)]
    except (ValueError, RecursionError):
        raise BadRequest("the body is not readable JSON") from None
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise BadRequest("the body holds text that is not valid Unicode")
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return None


MAX_RISON_DEPTH = 20  # filters nest a few levels; deeper is an attack on the parser


def _refuse_deep_rison():
    """400 for a REST ``?q=`` nested past ``MAX_RISON_DEPTH`` brackets: FAB's rison parser
    recurses once per level, and ``q=((((…`` would end in a RecursionError (a 500)."""
    value = request.args.get("q")
    if not value or not request.path.startswith("/api/"):
        return None
    depth = deepest = 0
    for char in value:
        if char in "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth -= 1
    if deepest > MAX_RISON_DEPTH:
        from werkzeug.exceptions import BadRequest

        raise BadRequest("q is nested too deeply")
    return None


# --- Proxies and cookies ---


def _trust_proxies(app: Flask) -> None:
    """Behind ``TRUSTED_PROXIES`` reverse proxies, take the client address and
    scheme from X-Forwarded-For/-Proto; with 0 (the default) headers are ignored,
    since a client could otherwise pick any address and dodge login throttling."""
    hops = int(app.config.get("TRUSTED_PROXIES") or 0)
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)


def _secure_cookies(app: Flask) -> None:
    """HTTPS-only cookies whenever the site is served over HTTPS (config.py sets
    them from the environment; this also covers FORCE_HTTPS given as an override)."""
    if app.config.get("FORCE_HTTPS") or app.config.get("PRODUCTION"):
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["REMEMBER_COOKIE_SECURE"] = True


class PortalTalisman(Talisman):
    """Talisman, except that a response whose view set its own ``Referrer-Policy``
    keeps it: the help-request follow page carries its token in the URL and sends
    ``no-referrer`` (Talisman 1.x has no per-view referrer option and overwrites it)."""

    def _set_referrer_policy_headers(self, headers):
        headers.setdefault("Referrer-Policy", self.referrer_policy)


def _security_headers(app: Flask) -> None:
    """CSP with a per-request script nonce, nosniff, Referrer-Policy (a view may set
    a stricter one), frame options; HTTPS redirect and HSTS only with FORCE_HTTPS."""
    force_https = bool(app.config.get("FORCE_HTTPS"))
    talisman = PortalTalisman(
        app,
        force_https=force_https,
        strict_transport_security=force_https,
        # The portal may live under a government domain whose other hosts are
        # still plain HTTP: do not pin them too.
        strict_transport_security_include_subdomains=False,
        content_security_policy=CONTENT_SECURITY_POLICY,
        content_security_policy_nonce_in=["script-src"],
        referrer_policy="strict-origin-when-cross-origin",
        x_content_type_options=True,
        # Cookie flags come from config.py: Talisman would otherwise rewrite them.
        session_cookie_secure=False,
        session_cookie_http_only=False,
        session_cookie_samesite=app.config.get("SESSION_COOKIE_SAMESITE", "Lax"),
    )
    # Run Talisman's hooks first: CSRFProtect was installed earlier, and a page
    # rendered for its 400 (our error page, FAB's layout) needs the nonce too.
    hooks = app.before_request_funcs.setdefault(None, [])
    for hook in (talisman._make_nonce, talisman._force_https):
        hooks.remove(hook)
        hooks.insert(0, hook)


# --- Login throttling ---


@dataclass
class LoginThrottle:
    """Failed logins per account and per client address, in a moving window.

    Only failures are recorded (``record_failure``, called from the security
    manager's ``auth_user_db``); ``blocked_for`` says how long a login attempt
    must wait. Storage comes from ``RATELIMIT_STORAGE_URI``: memory per process
    by default, Redis shared by every node in production.

    Checking and recording are separate steps, so a burst of parallel guesses may
    get a few more tries than the limit before the first failures are stored.
    """

    limiter: MovingWindowRateLimiter
    per_account: RateLimitItemPerSecond
    per_address: RateLimitItemPerSecond

    @classmethod
    def from_config(cls, config) -> "LoginThrottle":
        window = int(config["LOGIN_FAILURE_WINDOW_SECONDS"])
        storage = storage_from_string(config.get("RATELIMIT_STORAGE_URI") or "memory://")
        return cls(
            limiter=MovingWindowRateLimiter(storage),
            per_account=RateLimitItemPerSecond(int(config["LOGIN_FAILURES_PER_ACCOUNT"]), window),
            per_address=RateLimitItemPerSecond(int(config["LOGIN_FAILURES_PER_ADDRESS"]), window),
        )

    def _keys(self, accounts, address):
        # Names that differ only in case are one account: count it once.
        account_keys = dict.fromkeys(_account_key(a) for a in accounts if a)
        keys = [(self.per_account, "login-failures/account", key) for key in account_keys]
        if address:
            keys.append((self.per_address, "login-failures/address", address))
        return keys

    def blocked_for(self, account: str | None, address: str | None) -> int:
        """Seconds until a login for ``account`` from ``address`` may be tried; 0 if now."""
        wait = 0.0
        for item, *identifiers in self._keys([account], address):
            if not self.limiter.test(item, *identifiers):
                reset_at = self.limiter.get_window_stats(item, *identifiers).reset_time
                wait = max(wait, reset_at - time.time(), 1)
        return math.ceil(wait)

    def record_failure(self, accounts, address: str | None) -> None:
        """Count one failed login against each name of the account and the address."""
        for item, *identifiers in self._keys(accounts, address):
            self.limiter.hit(item, *identifiers)

    def forget_account(self, accounts) -> None:
        """After a successful login, the account starts afresh (the address does not:
        logging into one's own account must not buy more guesses at others)."""
        for item, *identifiers in self._keys(accounts, None):
            self.limiter.clear(item, *identifiers)


def _account_key(name: str) -> str:
    """Usernames compare case-insensitively; hashed so storage holds no emails."""
    return hashlib.sha256(name.strip().casefold().encode()).hexdigest()[:32]


def client_address() -> str | None:
    """The client address that throttling counts: ``request.remote_addr`` (made the
    real client's by ProxyFix when TRUSTED_PROXIES is set). IPv6 counts per /64,
    the block one subscriber usually gets."""
    address = request.remote_addr
    try:
        ip = ipaddress.ip_address(address)
    except (TypeError, ValueError):
        return address
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def rate_limiter() -> MovingWindowRateLimiter | None:
    """The moving-window limiter on the throttle's shared storage (Redis in production),
    for any per-user or per-address budget; None when the app has none. Needs only an
    app context, so services count attempts the same way in tests and CLI jobs."""
    throttle = current_app.extensions.get(EXTENSION) if has_app_context() else None
    return throttle.limiter if throttle is not None else None


@dataclass(frozen=True)
class Budget:
    """A per-key allowance of attempts in a moving window (wrong join passwords per user,
    wrong hour codes per user, certificate lookups per address), sized from the app
    config with defaults; nothing is counted when the app has no limiter."""

    namespace: str
    count_setting: str
    default_count: int
    window_setting: str
    default_window: int

    def _item(self) -> RateLimitItemPerSecond:
        config = current_app.config
        return RateLimitItemPerSecond(int(config.get(self.count_setting, self.default_count)),
                                      int(config.get(self.window_setting, self.default_window)))

    def _wait(self, limiter, item, key: str) -> int:
        reset_at = limiter.get_window_stats(item, self.namespace, key).reset_time
        return max(math.ceil(reset_at - time.time()), 1)

    def wait(self, key: str) -> int:
        """Seconds until ``key`` may try again; 0 if now."""
        limiter = rate_limiter()
        if limiter is None:
            return 0
        item = self._item()
        return 0 if limiter.test(item, self.namespace, key) else self._wait(limiter, item, key)

    def spend(self, key: str) -> int:
        """Count one attempt of ``key``; 0 when it fitted, else the seconds to wait."""
        limiter = rate_limiter()
        if limiter is None:
            return 0
        item = self._item()
        return 0 if limiter.hit(item, self.namespace, key) else self._wait(limiter, item, key)

    def clear(self, key: str) -> None:
        """Forget ``key``'s attempts (after a success)."""
        limiter = rate_limiter()
        if limiter is not None:
            limiter.clear(self._item(), self.namespace, key)


def login_throttle() -> LoginThrottle | None:
    """This app's throttle, when a request is being served (None in CLI jobs)."""
    if not has_request_context():
        return None
    return current_app.extensions.get(EXTENSION)


def _login_endpoints() -> tuple[str, str]:
    """(HTML login, API login) endpoints of the app's security manager."""
    sm = current_app.appbuilder.sm
    return f"{sm.auth_view.endpoint}.login", f"{sm.security_api.__name__}.login"


def _submitted_username(is_api: bool) -> str | None:
    if is_api:
        payload = request.get_json(silent=True)
        name = payload.get("username") if isinstance(payload, dict) else None
    else:
        name = request.form.get("username")
    return name if isinstance(name, str) and name.strip() else None


def _refuse_throttled_login():
    """Refuse a login POST while its account or address is blocked, before any
    password is checked: the form flashes the wait, the API answers 429."""
    if request.method != "POST" or request.endpoint is None:
        return None
    html_login, api_login = _login_endpoints()
    if request.endpoint not in (html_login, api_login):
        return None
    is_api = request.endpoint == api_login
    username = _submitted_username(is_api)
    address = client_address()
    wait = current_app.extensions[EXTENSION].blocked_for(username, address)
    if not wait:
        return None
    log.warning("login refused: too many failures for account %r or address %s", username, address)
    message = gettext("Too many failed logins. Try again in %(minutes)s minutes.",
                      minutes=math.ceil(wait / 60))
    if is_api:
        response = jsonify(message=message)
        response.status_code = 429
    else:
        flash(message, "danger")
        response = redirect(request.full_path if request.query_string else request.path)
    response.headers["Retry-After"] = str(wait)
    return response
