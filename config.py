"""Settings from the environment, with safe development defaults."""
import os
import secrets
from datetime import timedelta

from flask_appbuilder.const import AUTH_DB

basedir = os.path.abspath(os.path.dirname(__file__))
INSTANCE_DIR = os.environ.get("INSTANCE_DIR") or os.path.join(basedir, "instance")

# "production" refuses to start without real secrets; anything else is development.
ENV = os.environ.get("VC_ENV", "development")
PRODUCTION = ENV == "production"


def _env_flag(name: str, default: bool = False) -> bool:
    """Read a yes/no setting: 1, true, yes and on (any case) mean yes."""
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in ("1", "true", "yes", "on")


def _dev_secret(name: str) -> str | None:
    """Return a secret kept in instance/<name>, generating it once (development only).

    In production nothing is generated: create_app() refuses to start instead,
    since nodes with different keys would corrupt shared data.
    """
    if PRODUCTION:
        return None
    path = os.path.join(INSTANCE_DIR, name)
    if not os.path.exists(path):
        os.makedirs(INSTANCE_DIR, exist_ok=True)
        with open(path, "w", encoding="ascii") as fh:
            fh.write(secrets.token_hex(32))
    with open(path, encoding="ascii") as fh:
        return fh.read().strip()


SECRET_KEY = os.environ.get("SECRET_KEY") or _dev_secret("secret_key")
PII_KEY = os.environ.get("PII_KEY") or _dev_secret("pii_key")

SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or "sqlite:///" + os.path.join(
    INSTANCE_DIR, "volunteer_cloud.db"
)
SQLALCHEMY_TRACK_MODIFICATIONS = False
# Service hours (app/services/hours.py): wrong hour codes allowed per user and window
# (10 an hour: at most 87,600 guesses a year against 10^12 codes), and how many
# admin-enrolled volunteers credited on one day flag the records for officers.
HOUR_CODE_FAILURES = int(os.environ.get("HOUR_CODE_FAILURES", "10"))
HOUR_CODE_FAILURE_WINDOW_SECONDS = int(os.environ.get("HOUR_CODE_FAILURE_WINDOW_SECONDS", "3600"))
HOURS_BULK_FLAG_THRESHOLD = int(os.environ.get("HOURS_BULK_FLAG_THRESHOLD", "20"))
# 统计分析: the registered-volunteer target per resident (the seed city's 13 %).
REGISTRATION_RATE_TARGET = float(os.environ.get("REGISTRATION_RATE_TARGET", "0.13"))
# 转移接续: this deployment's name in exported service records (their ``source_system``).
# Set one per deployment, so records moving between two Volunteer Cloud systems keep
# distinct ids; imported rows naming this system are refused (they are here already).
RECORD_SYSTEM_ID = os.environ.get("RECORD_SYSTEM_ID", "volunteer-cloud")
# 举报: complaints one user may file per window (officers read every one).
COMPLAINT_LIMIT = int(os.environ.get("COMPLAINT_LIMIT", "10"))
COMPLAINT_LIMIT_WINDOW_SECONDS = int(os.environ.get("COMPLAINT_LIMIT_WINDOW_SECONDS", "3600"))
# The largest request body accepted; larger ones answer 413 before anything reads them.
# Uploads are at most 5 MB (honors attachments) and 2 MB (rosters), plus the form around them.
MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH", str(16 * 1024 * 1024)))
# SQLite only: how long a transaction waits for another's lock before "database is locked".
SQLITE_BUSY_TIMEOUT_MS = int(os.environ.get("SQLITE_BUSY_TIMEOUT_MS", "30000"))

# Rate-limit storage: in-process memory by default, Redis in production.
RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")

# --- Security (app/security/hardening.py) ---
# HTTPS: redirect http:// to https:// and send HSTS. Leave off when the app is
# reached over plain HTTP (development, e2e tests); turn on in production.
FORCE_HTTPS = _env_flag("FORCE_HTTPS")
# Number of reverse proxies in front of the app that set X-Forwarded-For/-Proto.
# 0 trusts no header: client addresses are the socket's. Behind one nginx, set 1
# (a wrong number lets clients fake their address and dodge login throttling).
TRUSTED_PROXIES = int(os.environ.get("TRUSTED_PROXIES", "0"))

# Login throttling against password guessing: only FAILED logins count, per
# account (case-insensitive username or email) and per client address, in a
# moving window. Successful logins never count, so many people behind one NAT
# address are not locked out by logging in.
LOGIN_FAILURES_PER_ACCOUNT = int(os.environ.get("LOGIN_FAILURES_PER_ACCOUNT", "5"))
LOGIN_FAILURES_PER_ADDRESS = int(os.environ.get("LOGIN_FAILURES_PER_ADDRESS", "30"))
LOGIN_FAILURE_WINDOW_SECONDS = int(os.environ.get("LOGIN_FAILURE_WINDOW_SECONDS", str(15 * 60)))
# FAB's own limiter stays off: it counts every POST to /login/ (successes too) per
# address, so a school behind one NAT address would be locked out, and it does not
# cover the API login. The throttling above replaces it for both.
AUTH_RATE_LIMITED = False

# Cookies: never readable by scripts, not sent on cross-site POSTs (this also
# protects REST calls that a session cookie authenticates), HTTPS-only in production.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = PRODUCTION or FORCE_HTTPS
REMEMBER_COOKIE_HTTPONLY = True
REMEMBER_COOKIE_SAMESITE = "Lax"
REMEMBER_COOKIE_SECURE = PRODUCTION or FORCE_HTTPS
# Flask refuses a session cookie last written more than this ago: log in again
# after a working day. The cookie itself ends with the browser session.
PERMANENT_SESSION_LIFETIME = timedelta(hours=8)

# Swagger UI at /swagger/v1 and the spec at /api/v1/_openapi, both Admin only
# (FAB's default, False, removes both). FAB 5.3 serves Swagger UI from its own
# static files and its layout shows no online validator badge: it works offline.
FAB_API_SWAGGER_UI = True

# Partner API tokens (app/services/api_tokens.py): long-lived bearer keys an Admin issues
# in the console, read-only and bound to a region. FAB's own key API stays unregistered
# (FAB_ADD_SECURITY_API is off), so nobody makes keys but through the console. A key is
# 32 random bytes, so a cheap hash is enough (it is checked on every request).
FAB_API_KEY_ENABLED = True
FAB_API_KEY_PREFIXES = ["vc_"]
FAB_API_KEY_HASH_METHOD = "pbkdf2:sha256:1000"

TIMEZONE = "Asia/Shanghai"

APP_NAME = "志愿云"
AUTH_TYPE = AUTH_DB
FAB_PASSWORD_HASH_METHOD = os.environ.get("PASSWORD_HASH_METHOD", "scrypt")

# The schema comes only from Alembic; roles and permissions from `flask bootstrap`.
FAB_CREATE_DB = False
FAB_UPDATE_PERMS = False

BABEL_DEFAULT_LOCALE = "zh_CN"
BABEL_DEFAULT_TIMEZONE = TIMEZONE
# Absolute: Flask-Babel resolves relative paths against the app/ package.
BABEL_TRANSLATION_DIRECTORIES = os.path.join(basedir, "translations")
LANGUAGES = {
    "zh_CN": {"flag": "cn", "name": "简体中文"},
    "en": {"flag": "gb", "name": "English"},
}

# Registration review (注册审核): the city promises a decision in 3 to 5 working
# days. At the target a pending registration is shown as due, past the limit as overdue.
REVIEW_TARGET_WORKDAYS = int(os.environ.get("REVIEW_TARGET_WORKDAYS", "3"))
REVIEW_LIMIT_WORKDAYS = int(os.environ.get("REVIEW_LIMIT_WORKDAYS", "5"))

# Volunteer card (志愿者证): star level from approved hours, one star per threshold reached.
STAR_LEVEL_HOURS = (100, 300, 600, 1000, 1500)

# Registration (注册志愿者): children younger than this cannot register (DESIGN.md §5).
VOLUNTEER_MIN_AGE = int(os.environ.get("VOLUNTEER_MIN_AGE", "8"))
# Accounts one client address may register per hour (the page has no captcha).
REGISTRATIONS_PER_ADDRESS_PER_HOUR = int(os.environ.get("REGISTRATIONS_PER_ADDRESS_PER_HOUR", "20"))

# Group naming rules (团体注册), per city: groups registered in ``region`` or below must
# follow them. A county corps (county_corps) ends in one of ``corps_suffixes`` and takes
# the group named ``federation`` as its parent; every other type but federations ends
# in one of ``team_suffixes`` and takes the county corps of its county as parent. Groups
# outside every rule's region are not checked. The environment variable of the same
# name may hold a JSON list of rules that replaces these.
GROUP_NAMING_RULES = [
    {
        "region": "410200",  # 开封市 (汴文明办〔2016〕47号文)
        "federation": "开封市志愿服务联合会",
        "corps_suffixes": ["县志愿服务总队", "区志愿服务总队"],
        "team_suffixes": ["志愿服务队"],
    },
]
if os.environ.get("GROUP_NAMING_RULES"):
    import json

    GROUP_NAMING_RULES = json.loads(os.environ["GROUP_NAMING_RULES"])
