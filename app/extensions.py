"""Flask extensions, created uninitialised; create_app() binds them to an app."""
import threading

from flask_appbuilder import Model
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import event

# Sharing FAB's declarative base puts ab_* and our tables in one metadata,
# so Alembic autogenerate sees them together.
db = SQLAlchemy(model_class=Model)
migrate = Migrate()
csrf = CSRFProtect()


# --- SQLite: wait for locks, and take the write lock up front where asked ---

_immediate = threading.local()


def init_sqlite(app) -> None:
    """On SQLite, wait ``SQLITE_BUSY_TIMEOUT_MS`` for a lock instead of failing with
    "database is locked", and let ``begin_write`` open IMMEDIATE transactions.

    pysqlite's own transaction handling is switched off and SQLAlchemy emits BEGIN
    itself (the recipe in SQLAlchemy's SQLite dialect docs), so the kind of BEGIN is ours
    to choose. A deferred transaction that reads and then writes cannot wait for a
    concurrent writer (SQLite answers BUSY at once to avoid a deadlock); an
    IMMEDIATE one queues for the write lock before it reads anything.
    """
    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "sqlite":
        return
    timeout_ms = int(app.config.get("SQLITE_BUSY_TIMEOUT_MS", 30_000))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # SQLAlchemy issues BEGIN (below)
        dbapi_connection.execute(f"PRAGMA busy_timeout = {timeout_ms}")

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE" if getattr(_immediate, "on", False) else "BEGIN")


def begin_write() -> None:
    """Start the session's transaction as a writer: on SQLite an IMMEDIATE transaction
    (it waits its turn for the write lock, up to the busy timeout); elsewhere nothing
    changes (PostgreSQL locks rows as the statements reach them).

    Call before the reads a write depends on. The request's read transaction, if
    one is open, is ended first, so it must hold no unflushed or flushed writes.
    """
    if db.session.get_bind().dialect.name != "sqlite":
        return
    if db.session.new or db.session.dirty or db.session.deleted:
        raise RuntimeError("begin_write() with unsaved changes in the session")
    if db.session().in_transaction():  # scoped_session does not proxy in_transaction
        db.session.rollback()  # a read-only transaction: nothing is lost
    _immediate.on = True
    try:
        db.session.connection()
    finally:
        _immediate.on = False
