"""Settings from the environment, with safe development defaults."""
import os
import secrets

from flask_appbuilder.const import AUTH_DB

basedir = os.path.abspath(os.path.dirname(__file__))
INSTANCE_DIR = os.environ.get("INSTANCE_DIR") or os.path.join(basedir, "instance")

# "production" refuses to start without real secrets; anything else is development.
ENV = os.environ.get("VC_ENV", "development")
PRODUCTION = ENV == "production"


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

# Rate-limit storage: in-process memory by default, Redis in production.
RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")

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
