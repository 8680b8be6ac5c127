"""Shared fixtures: a migrated, bootstrapped, demo-seeded template database made once
per test session, copied for every test (a file copy on SQLite, ``CREATE DATABASE …
TEMPLATE`` on PostgreSQL), and an app built on the copy.

Set ``DATABASE_URL=postgresql+psycopg://…`` to run the suite on PostgreSQL; the
database named in the URL is only used to create and drop throwaway databases.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import sys
import tempfile

import pytest

_TMP = tempfile.mkdtemp(prefix="vc-tests-")
os.environ.setdefault("INSTANCE_DIR", _TMP)  # config.py writes dev secrets there

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

DATABASE_URL = os.environ.get("DATABASE_URL", "")
IS_POSTGRES = DATABASE_URL.startswith("postgresql")

TEST_CONFIG = {
    "TESTING": True,
    "WTF_CSRF_ENABLED": False,
    "SECRET_KEY": "test-secret-key-0123456789abcdef0123456789",
    "PII_KEY": "test-pii-key-0123456789abcdef0123456789abcdef",
    # Cheap hashes: scrypt costs ~0.1 s per login.
    "FAB_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
    "RATELIMIT_STORAGE_URI": "memory://",
}


_EXIT_STATUS = pytest.StashKey[int]()


def pytest_sessionfinish(session, exitstatus):
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Leave at once when pytest is done (its summary is printed, the databases dropped by
    the fixtures): the interpreter's final garbage collection over the ~2,000 apps the
    suite builds took about five minutes per database in CI. ``VC_SLOW_EXIT=1`` keeps it."""
    if _EXIT_STATUS in config.stash and os.environ.get("VC_SLOW_EXIT") != "1":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(config.stash[_EXIT_STATUS])


def pytest_collection_modifyitems(config, items):
    """PostgreSQL-only tests skip on SQLite; CI's PostgreSQL run (REQUIRE_POSTGRES=1)
    refuses to start rather than skip them."""
    if os.environ.get("REQUIRE_POSTGRES") == "1" and not IS_POSTGRES:
        raise pytest.UsageError("REQUIRE_POSTGRES=1 but DATABASE_URL is not PostgreSQL")
    for item in items:
        if "postgres" in item.keywords and not IS_POSTGRES:
            item.add_marker(pytest.mark.skip(reason="needs DATABASE_URL=postgresql+psycopg://…"))


def make_app(database_uri: str, **overrides):
    """Build an app on ``database_uri`` with the test configuration."""
    from app import create_app

    return create_app(SQLALCHEMY_DATABASE_URI=database_uri, **{**TEST_CONFIG, **overrides})


class _SqliteTemplate:
    def __init__(self):
        self.path = os.path.join(_TMP, "template.db")
        self.url = "sqlite:///" + self.path
        self._n = itertools.count()

    def clone(self) -> str:
        path = os.path.join(_TMP, f"test-{next(self._n)}.db")
        shutil.copyfile(self.path, path)
        return "sqlite:///" + path

    def drop(self, url: str) -> None:
        os.remove(make_url(url).database)

    def close(self):
        pass


class _PostgresTemplate:
    def __init__(self):
        base = make_url(DATABASE_URL)
        self.base = base
        self.prefix = f"vc_test_{os.getpid()}"
        self.template = self.prefix + "_tpl"
        self.admin = create_engine(base, isolation_level="AUTOCOMMIT")
        self._n = itertools.count()
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.template}"'))
            conn.execute(text(f'CREATE DATABASE "{self.template}"'))
        self.url = base.set(database=self.template).render_as_string(hide_password=False)

    def clone(self) -> str:
        name = f"{self.prefix}_{next(self._n)}"
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        return self.base.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self):
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def template_db():
    """Migrate, bootstrap and seed the demo once; yield the template holder."""
    from app.demo import load_demo
    from app.extensions import db

    holder = _PostgresTemplate() if IS_POSTGRES else _SqliteTemplate()
    app = make_app(holder.url)
    with app.app_context():
        load_demo()
        db.session.remove()
        db.engine.dispose()
    yield holder
    holder.close()


@contextlib.contextmanager
def app_on_copy(template_db):
    """An app on its own copy of the template database, dropped afterwards."""
    from app.extensions import db

    url = template_db.clone()
    application = make_app(url)
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
    template_db.drop(url)


@pytest.fixture
def app(template_db):
    """A fresh app on its own copy of the template database."""
    with app_on_copy(template_db) as application:
        yield application


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def db_session(app):
    """The app's session inside an app context (for service-level tests)."""
    from app.extensions import db

    with app.app_context():
        yield db.session
        db.session.rollback()


def login(client, username: str, password: str = "Demo12345!"):
    """Log ``client`` in through FAB's HTML form; assert it worked."""
    resp = client.post("/login/", data={"username": username, "password": password})
    assert resp.status_code == 302, resp.data[:500]
    assert "/login" not in resp.headers["Location"], f"login failed for {username}"
    return client


@contextlib.contextmanager
def recorded_statements(app):
    """Every SQL statement ``app``'s engine runs inside the block:
    ``with recorded_statements(app) as statements: …``."""
    from sqlalchemy import event

    from app.extensions import db

    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def statements_of(app, client, url: str) -> list[str]:
    """The SQL statements one GET of ``url`` runs (the page must answer 200)."""
    with recorded_statements(app) as statements:
        assert client.get(url).status_code == 200, url
    return statements


@pytest.fixture
def login_as(client):
    """``login_as("kaifeng_officer")`` logs the test client in as a demo account."""
    return lambda username, password="Demo12345!": login(client, username, password)
