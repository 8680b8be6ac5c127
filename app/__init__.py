"""Volunteer Cloud (志愿云): create_app() builds one app with its own AppBuilder."""
from __future__ import annotations

import os

from flask import Flask
from flask_appbuilder import AppBuilder

from app.extensions import csrf, db, init_sqlite, migrate


class ConfigError(RuntimeError):
    """The app refuses to start with this configuration."""


def _check_config(app: Flask) -> None:
    """Refuse to start in production without the secrets every node must share."""
    if app.config.get("PRODUCTION"):
        missing = [k for k in ("SECRET_KEY", "PII_KEY") if not app.config.get(k)]
        if missing:
            raise ConfigError(f"production needs {', '.join(missing)} in the environment")
        if app.config.get("RATELIMIT_STORAGE_URI", "").startswith("memory"):
            raise ConfigError("production needs RATELIMIT_STORAGE_URI (redis://...) shared by all nodes")


def create_app(config_object: str | object = "config", **overrides) -> Flask:
    """Build the portal: config, extensions, AppBuilder, views, CLI commands."""
    from app.security import hardening
    from app.security.roles import fab_roles
    from app.services import audit, hours, rollups

    app = Flask(__name__, instance_path=os.environ.get("INSTANCE_DIR") or None)
    app.config.from_object(config_object)
    app.config.update(overrides)
    app.config["FAB_ROLES"] = fab_roles()
    app.config.setdefault("FAB_SECURITY_MANAGER_CLASS", "app.security.manager.PortalSecurityManager")
    _check_config(app)

    db.init_app(app)
    init_sqlite(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(app.root_path), "migrations"))
    # Before the AppBuilder, so FAB's API blueprints get exempted (FAB-NOTES).
    csrf.init_app(app)
    hardening.init_app(app)
    audit.init_app(app)
    hours.init_app(app)  # the ledger's append-only guard
    rollups.init_app(app)  # statistics counts reach their tables at COMMIT

    with app.app_context():
        appbuilder = AppBuilder()
        appbuilder.init_app(app, db.session)
        from app.views import register_views

        register_views(appbuilder)
        appbuilder.post_init()

    from app.security import api_keys

    api_keys.init_app(app)  # after FAB's before_request, which sets g.user from the session

    from app import cli, console, errors, filters

    console.init_app(app)
    cli.register(app)
    errors.register(app)
    filters.register(app)
    return app
