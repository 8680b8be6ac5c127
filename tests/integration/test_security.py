"""Security hardening through real HTTP requests: CSRF, login throttling, security
headers with the CSP nonce, cookie flags, proxies and Swagger UI offline.

Throttling tests use tiny limits (config overrides) so they stay fast.
"""
from __future__ import annotations

import re
import time
from itertools import cycle, islice

import pytest

from app.demo import DEMO_ACCOUNTS, DEMO_PASSWORD
from tests.conftest import login, make_app

OFFICER = "kaifeng_officer"
THROTTLED_ZH = "登录失败次数过多"


@pytest.fixture
def build_app(template_db):
    """``build_app(**config)``: an app with its own config on its own copy of the
    template database (like the ``app`` fixture), cleaned up after the test."""
    from app.extensions import db

    built = []

    def build(**overrides):
        url = template_db.clone()
        application = make_app(url, **overrides)
        built.append((application, url))
        return application

    yield build
    for application, url in built:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()
        template_db.drop(url)


def throttled_client(build_app, per_account=3, per_address=100, window=900, **config):
    app = build_app(LOGIN_FAILURES_PER_ACCOUNT=per_account, LOGIN_FAILURES_PER_ADDRESS=per_address,
                    LOGIN_FAILURE_WINDOW_SECONDS=window, **config)
    return app, app.test_client()


def form_login(client, username, password=DEMO_PASSWORD, addr="127.0.0.1", **kwargs):
    """POST the HTML login form from ``addr``; return the response (not followed)."""
    return client.post("/login/", data={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": addr}, **kwargs)


def api_login(client, username, password=DEMO_PASSWORD, addr="127.0.0.1", **kwargs):
    return client.post("/api/v1/security/login",
                       json={"username": username, "password": password, "provider": "db"},
                       environ_base={"REMOTE_ADDR": addr}, **kwargs)


def logged_in(resp) -> bool:
    """A form login response that redirected away from the login page."""
    return resp.status_code == 302 and "/login" not in resp.headers["Location"]


def session_user(client):
    with client.session_transaction() as session:
        return session.get("_user_id")


def fail_login_count(app, username):
    with app.app_context():
        user = app.appbuilder.sm.find_user(username=username)
        return user.fail_login_count or 0


# --- CSRF ---


def csrf_token(client) -> str:
    page = client.get("/login/").get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page)
    assert match, "login form has no csrf_token"
    return match.group(1)


def test_login_form__anonymous_without_csrf_token_refused(build_app):
    client = build_app(WTF_CSRF_ENABLED=True).test_client()
    resp = form_login(client, OFFICER)
    assert resp.status_code == 400
    assert session_user(client) is None
    # The error page is rendered before most request hooks: it still gets a nonce.
    assert_scripts_carry_nonce(resp, require_scripts=False)


def test_login_form__anonymous_with_csrf_token_logged_in(build_app):
    client = build_app(WTF_CSRF_ENABLED=True).test_client()
    resp = client.post("/login/", data={"username": OFFICER, "password": DEMO_PASSWORD,
                                        "csrf_token": csrf_token(client)})
    assert logged_in(resp)
    assert session_user(client) is not None


def test_api_login__officer_without_csrf_token_gets_access_token(build_app):
    from flask_jwt_extended import decode_token

    app = build_app(WTF_CSRF_ENABLED=True)
    resp = api_login(app.test_client(), OFFICER)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    with app.app_context():
        user_id = app.appbuilder.sm.find_user(username=OFFICER).id
        assert decode_token(resp.get_json()["access_token"])["sub"] == str(user_id)


# --- Login throttling ---


def test_login_form__guessed_account_blocked_with_message(build_app):
    app, client = throttled_client(build_app, per_account=3)
    for _ in range(3):
        assert not logged_in(form_login(client, OFFICER, "wrong"))
    resp = form_login(client, OFFICER, "wrong-again", follow_redirects=True)
    assert THROTTLED_ZH in resp.get_data(as_text=True)
    assert "分钟后再试" in resp.get_data(as_text=True)
    # Refused before the password check: FAB's failure counter stopped at 3.
    assert fail_login_count(app, OFFICER) == 3


def test_login_form__blocked_account_refused_with_right_password(build_app):
    app, client = throttled_client(build_app, per_account=3)
    for _ in range(3):
        form_login(client, OFFICER, "wrong")
    resp = form_login(client, OFFICER)
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert resp.headers["Retry-After"].isdigit()
    assert session_user(client) is None
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert THROTTLED_ZH in page


def test_api_login__guessed_account_gets_429_even_with_right_password(build_app):
    app, client = throttled_client(build_app, per_account=3)
    for _ in range(3):
        assert api_login(client, OFFICER, "wrong").status_code == 401
    resp = api_login(client, OFFICER)
    assert resp.status_code == 429
    assert THROTTLED_ZH in resp.get_json()["message"]
    assert "access_token" not in resp.get_json()
    assert fail_login_count(app, OFFICER) == 3


def test_login__failures_through_form_and_api_add_up(build_app):
    app, client = throttled_client(build_app, per_account=4)
    for _ in range(2):
        form_login(client, OFFICER, "wrong")
        api_login(client, OFFICER, "wrong")
    assert api_login(client, OFFICER).status_code == 429
    assert not logged_in(form_login(client, OFFICER))


def test_login__account_counted_case_insensitively_and_by_email(build_app):
    app, client = throttled_client(build_app, per_account=3)
    form_login(client, OFFICER.upper(), "wrong")
    api_login(client, f"{OFFICER}@example.cn", "wrong")
    form_login(client, "Kaifeng_Officer", "wrong")
    assert api_login(client, OFFICER).status_code == 429
    assert api_login(client, f"{OFFICER}@EXAMPLE.cn").status_code == 429


def test_login__other_account_from_blocked_account_address_logged_in(build_app):
    app, client = throttled_client(build_app, per_account=3, per_address=10)
    for _ in range(3):
        form_login(client, OFFICER, "wrong")
    assert api_login(client, OFFICER).status_code == 429
    assert api_login(client, "longting_officer").status_code == 200
    assert logged_in(form_login(client, "longting_officer"))


def test_login__guessing_address_blocked_for_every_account(build_app):
    app, client = throttled_client(build_app, per_account=100, per_address=4)
    for username in ("nobody", "henan_officer", "vol_shunhe", "no-such-user"):
        assert api_login(client, username, "wrong", addr="203.0.113.7").status_code == 401
    assert api_login(client, OFFICER, addr="203.0.113.7").status_code == 429
    resp = form_login(client, OFFICER, addr="203.0.113.7", follow_redirects=True)
    assert THROTTLED_ZH in resp.get_data(as_text=True)
    # Another address is not affected.
    assert api_login(client, OFFICER, addr="203.0.113.8").status_code == 200


def test_login__nat_address_many_successful_logins_not_blocked(build_app):
    """A school behind one address: successes never count, only failures do."""
    app, client = throttled_client(build_app, per_account=3, per_address=3)
    usernames = [name for name, _role, _scope in DEMO_ACCOUNTS]
    for username in islice(cycle(usernames), 40):
        assert api_login(client, username, addr="198.51.100.1").status_code == 200, username
    form_login(client, "vol_minor", "typo", addr="198.51.100.1")
    api_login(client, "vol_shunhe", "typo", addr="198.51.100.1")
    assert logged_in(form_login(client, OFFICER, addr="198.51.100.1"))


def test_login__success_resets_account_failures(build_app):
    app, client = throttled_client(build_app, per_account=3)
    for _ in range(2):
        api_login(client, OFFICER, "wrong")
    assert api_login(client, OFFICER).status_code == 200
    for _ in range(2):
        api_login(client, OFFICER, "wrong")
    assert api_login(client, OFFICER).status_code == 200


def test_login__blocked_account_logged_in_after_window(build_app):
    app, client = throttled_client(build_app, per_account=2, window=1)
    for _ in range(2):
        api_login(client, OFFICER, "wrong")
    assert api_login(client, OFFICER).status_code == 429
    time.sleep(1.2)
    assert api_login(client, OFFICER).status_code == 200


def test_login__behind_trusted_proxy_forwarded_address_counted(build_app):
    app, client = throttled_client(build_app, per_account=100, per_address=2, TRUSTED_PROXIES=1)

    def via_proxy(username, password, client_ip):
        return api_login(client, username, password, addr="10.0.0.2",
                         headers={"X-Forwarded-For": client_ip})

    for username in ("a", "b"):
        via_proxy(username, "wrong", "203.0.113.20")
    assert via_proxy(OFFICER, DEMO_PASSWORD, "203.0.113.20").status_code == 429
    assert via_proxy(OFFICER, DEMO_PASSWORD, "203.0.113.21").status_code == 200


def test_login__without_trusted_proxy_forwarded_header_ignored(build_app):
    app, client = throttled_client(build_app, per_account=100, per_address=2)
    for n, username in enumerate(("a", "b")):
        api_login(client, username, "wrong", headers={"X-Forwarded-For": f"203.0.113.{n}"})
    resp = api_login(client, OFFICER, headers={"X-Forwarded-For": "203.0.113.99"})
    assert resp.status_code == 429


def test_config__defaults_count_failures_and_fab_limiter_off(app):
    """FAB's limiter would count successes per address (NAT lock-out): it stays off."""
    assert app.config["AUTH_RATE_LIMITED"] is False
    assert (app.config["LOGIN_FAILURES_PER_ACCOUNT"], app.config["LOGIN_FAILURES_PER_ADDRESS"],
            app.config["LOGIN_FAILURE_WINDOW_SECONDS"]) == (5, 30, 900)


# --- Security headers and the CSP nonce ---


def csp_directives(resp) -> dict[str, str]:
    header = resp.headers["Content-Security-Policy"]
    return {part.split()[0]: " ".join(part.split()[1:]) for part in header.split(";") if part.strip()}


def assert_scripts_carry_nonce(resp, require_scripts=True) -> str:
    """Every <script> tag carries the nonce that the CSP header declares."""
    directives = csp_directives(resp)
    match = re.fullmatch(r"'self' 'nonce-([A-Za-z0-9_\-]+)'", directives["script-src"])
    assert match, directives["script-src"]
    nonce = match.group(1)
    scripts = re.findall(r"<script\b[^>]*>", resp.get_data(as_text=True), flags=re.I)
    assert scripts or not require_scripts, "page has no script tags"
    missing = [tag for tag in scripts if f'nonce="{nonce}"' not in tag]
    assert not missing, f"script tags without the header's nonce: {missing}"
    return nonce


@pytest.mark.parametrize("path", ["/login/", "/", "/regions/list/"])
def test_pages__officer_every_script_tag_carries_header_nonce(client, path):
    if path != "/login/":
        login(client, OFFICER)
    first = client.get(path)
    assert first.status_code == 200
    nonce = assert_scripts_carry_nonce(first)
    assert assert_scripts_carry_nonce(client.get(path)) != nonce, "nonce must change per request"


def test_pages__anonymous_security_headers_present(client):
    resp = client.get("/login/")
    directives = csp_directives(resp)
    assert directives["default-src"] == "'self'"
    assert directives["style-src"] == "'self' 'unsafe-inline'"
    assert directives["img-src"] == "'self' data:"
    assert directives["font-src"] == "'self' data:"
    assert directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'self'"
    assert directives["frame-ancestors"] == "'self'"
    assert directives["form-action"] == "'self'"
    assert "unsafe-inline" not in directives["script-src"]
    assert "unsafe-eval" not in directives["script-src"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert resp.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "Strict-Transport-Security" not in resp.headers


def test_pages__anonymous_http_not_redirected_by_default(client):
    assert client.get("/login/").status_code == 200


def test_pages__anonymous_redirected_to_https_with_force_https(build_app):
    client = build_app(FORCE_HTTPS=True).test_client()
    resp = client.get("/login/")
    assert resp.status_code in (301, 302)
    assert resp.headers["Location"].startswith("https://")
    secure = client.get("/login/", base_url="https://localhost")
    assert secure.status_code == 200
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")


# --- Cookies ---


def test_login__officer_session_cookie_httponly_and_samesite_lax(client):
    resp = form_login(client, OFFICER)
    assert logged_in(resp)
    cookie = next(c for c in resp.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # development over plain HTTP


def test_login__officer_session_cookie_secure_with_https(build_app):
    app = build_app(FORCE_HTTPS=True)
    assert app.config["REMEMBER_COOKIE_SECURE"] is True
    client = app.test_client()
    resp = client.post("/login/", data={"username": OFFICER, "password": DEMO_PASSWORD},
                       base_url="https://localhost")
    assert logged_in(resp)
    cookie = next(c for c in resp.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_session__officer_logged_out_after_lifetime(build_app):
    from datetime import timedelta

    client = build_app(PERMANENT_SESSION_LIFETIME=timedelta(seconds=1)).test_client()
    login(client, OFFICER)
    assert client.get("/users/userinfo/").status_code == 200
    time.sleep(2.2)
    resp = client.get("/users/userinfo/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_config__session_lifetime_eight_hours(app):
    assert app.permanent_session_lifetime.total_seconds() == 8 * 3600
    assert app.config["REMEMBER_COOKIE_HTTPONLY"] is True


# --- Swagger UI ---


def test_swagger_ui__admin_gets_page_loading_nothing_from_outside(client):
    login(client, "admin")
    resp = client.get("/swagger/v1")
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    sources = re.findall(r'<(?:script|link)\b[^>]*(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("/") for s in sources), sources
    assert_scripts_carry_nonce(resp)
    spec = client.get("/api/v1/_openapi")
    assert spec.status_code == 200 and spec.get_json()["openapi"].startswith("3.")


def test_swagger_ui__officer_refused(client):
    login(client, OFFICER)
    assert client.get("/swagger/v1").status_code in (302, 403)


def test_user_statistics__admin_page_not_registered(client):
    """FAB's "User's Statistics" loads Google Charts from www.gstatic.com: not offered."""
    login(client, "admin")
    assert client.get("/userstatschartview/chart/").status_code == 404
    assert "/userstatschartview/" not in client.get("/").get_data(as_text=True)
