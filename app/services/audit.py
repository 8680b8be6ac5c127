"""Audit log: one event per state change, with masked before/after JSON.

Every create, update and delete of a domain row, whether it comes from a portal
page, the REST API, a service or a CLI command, is recorded in ONE place: an
``after_flush`` listener on Flask-SQLAlchemy's session class. No view or service
has to remember it. At ``after_flush`` new rows already have their ids and the
attribute history still holds the pre-flush values; the events are written with
one Core ``INSERT`` (executemany) on the session's own connection, so they commit
and roll back together with the change they describe.

What is recorded (DESIGN.md §5 "Audit event"):

- ``object_type`` is the table name (``volunteer``, ``service_record``, ``honor``…);
  ``object_id`` the row's id.
- ``action``:

  * ``create`` / ``delete``: the row was inserted / deleted;
  * ``<column>:<old>-><new>`` when a state column changed, e.g.
    ``status:pending->approved``, ``is_flagged:false->true``,
    ``is_suspended:false->true``, ``is_withdrawn:false->true``, ``active:true->false``
    (users). Booleans are spelled ``true``/``false``, NULL is ``none``. When several
    state columns change in one flush, the first of ``STATE_COLUMNS`` names the event;
    a name longer than the column (32) falls back to the bare column name (``status``);
  * ``update``: any other change;
  * ``view_pii``: a full personal-data view, recorded by ``record_view``.

- ``before_json`` / ``after_json``: compact, key-sorted JSON (``ensure_ascii=False``,
  dates ISO 8601). Create: every column in ``after_json``. Delete: every column in
  ``before_json``. Update: only the changed columns, on both sides. Secrets
  (``*_enc`` ciphertexts, ``*_blind`` indexes, passwords and password hashes,
  join tokens) never appear: their value is replaced by ``"***"`` (NULL stays
  ``null``), so the JSON shows *that* they changed but not what they hold. The
  ``*_masked`` columns carry the masked values.
- ``region_path`` / ``group_path`` come from the row (a region's own ``path``; a
  group admin's from its group), so officers and group admins read the events
  of their scope.
- actor, request id and IP come from the request when there is one (an
  unauthenticated request records actor ``anonymous``), else actor ``system``.

Tables left out: ``audit_event`` itself, pure counters (``volunteer_number_counter``,
``volunteer_day``, the statistics rollups ``stat_*``, and any model that sets
``__audit__ = False``), and FAB's ``ab_*`` tables except
``ab_user``, of which only identity, ``active``, password (as ``"***"``) and role
changes are recorded (logins, which touch ``last_login`` and counters, are not).
Updates that only touch bookkeeping columns (``changed_on``) or derived counters
(``DERIVED_COLUMNS``) record nothing.

Not covered: Core or ORM bulk statements (``session.execute(update(...))``,
``insert(...)``) bypass the unit of work and are not seen by the listener;
services that use them for counters must not use them for state changes.

The listener is process-global; ``AUDIT_ENABLED = False`` in an app's config
turns recording off for that app.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum

from flask import current_app, g, has_app_context, has_request_context, request
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import LargeBinary, event, insert, inspect, select
from sqlalchemy.orm import Query

from app.extensions import db
from app.services.clock import utcnow

VIEW_PII = "view_pii"
# State columns, in priority order: a change of one of them names the event.
STATE_COLUMNS = ("status", "is_suspended", "is_withdrawn", "is_flagged", "active")
# Tables never audited: the log itself and pure counters (the ledger's day totals and
# the statistics rollups, derived from audited rows).
EXCLUDED_TABLES = frozenset({"audit_event", "volunteer_number_counter", "volunteer_day",
                             "stat_day", "stat_month", "stat_total", "stat_group_month", "stat_group_period"})
# Columns whose change alone is no event (bookkeeping, or counters derived from
# audited rows: the service records, enrollments and redemptions behind them).
IGNORED_COLUMNS = frozenset({"changed_on"})
DERIVED_COLUMNS = frozenset({
    ("volunteer", "total_minutes"),
    ("position", "enrolled_count"),
    ("hour_code", "uses"),
})
# Columns left out of the log: a roster or record import's checked rows (up to 5,000,
# shown on its preview page; the memberships and records it creates are audited one by one).
OMITTED_COLUMNS = frozenset({("roster_import", "rows_json"), ("record_import", "rows_json")})
# ab_user: only these attributes are audited ("roles" is the role collection).
USER_COLUMNS = ("username", "first_name", "last_name", "email", "active", "password")
REDACTED = "***"
REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9-]{1,36}")
_ACTION_MAX = 32  # AuditEvent.action is String(32)
_UNKNOWN = object()  # an old value SQLAlchemy did not load


def _is_secret(key: str, column) -> bool:
    """Ciphertexts, blind indexes, password hashes and bearer tokens are never logged."""
    return (
        key.endswith(("_enc", "_blind", "_token", "_token_hash"))
        or "password" in key
        or isinstance(column.type, LargeBinary)
    )


@dataclass(frozen=True)
class _Spec:
    """How one mapped class is audited (computed once per class)."""

    table: str
    columns: tuple[str, ...]  # attribute keys recorded on create / delete
    secret: frozenset[str]
    ignored: frozenset[str]  # changes that alone make no event
    region_attr: str | None
    group_attr: str | None
    is_user: bool = False


_specs: dict[type, _Spec | None] = {}


def _user_model() -> type:
    from flask_appbuilder.security.sqla.models import User

    return User


def _spec(cls: type) -> _Spec | None:
    """Return how ``cls`` is audited, or None when it is not."""
    try:
        return _specs[cls]
    except KeyError:
        pass
    spec = None
    mapper = inspect(cls, raiseerr=False)
    user_model = _user_model()
    if mapper is not None and getattr(cls, "__audit__", True):
        table = mapper.local_table.name
        column_attrs = {prop.key: prop.columns[0] for prop in mapper.column_attrs}
        if issubclass(cls, user_model):
            keys = tuple(k for k in USER_COLUMNS if k in column_attrs)
            spec = _Spec(table=table, columns=keys,
                         secret=frozenset(k for k in keys if _is_secret(k, column_attrs[k])),
                         ignored=frozenset(), region_attr=None, group_attr=None, is_user=True)
        elif cls.__module__ == "app.models" and table not in EXCLUDED_TABLES:
            keys = tuple(k for k in column_attrs if (table, k) not in OMITTED_COLUMNS)
            region_attr = ("region_path" if "region_path" in column_attrs
                           else "path" if table == "region" else None)
            spec = _Spec(
                table=table,
                columns=keys,
                secret=frozenset(k for k, col in column_attrs.items() if _is_secret(k, col)),
                ignored=IGNORED_COLUMNS | {c for t, c in DERIVED_COLUMNS if t == table},
                region_attr=region_attr,
                group_attr="group_path" if "group_path" in column_attrs else None,
            )
    _specs[cls] = spec
    return spec


# --- Values and JSON ---


def _plain(value):
    """A JSON-ready form of a column value."""
    if isinstance(value, Enum):
        return value.value
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return REDACTED
    return str(value)


def _shown(spec: _Spec, key: str, value):
    """The value as stored in the log: secrets redacted, the rest plain."""
    if key in spec.secret:
        return None if value is None else REDACTED
    return _plain(value)


def _dumps(data: dict | None) -> str | None:
    if data is None:
        return None
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _token(value) -> str:
    """``True`` -> ``true``, ``None`` -> ``none``, strings as they are."""
    if value is _UNKNOWN:
        return "?"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    return str(_plain(value))



# --- Request context: actor, request id, IP ---


def current_request_id() -> str | None:
    """The id of the current request: a sane ``X-Request-ID`` header (at most 36
    letters, digits and dashes) or a uuid4 made once per request; None outside one."""
    if not has_request_context():
        return None
    rid = g.get("request_id")
    if rid is None:
        header = request.headers.get(REQUEST_ID_HEADER, "")
        rid = header if _REQUEST_ID_RE.fullmatch(header) else str(uuid.uuid4())
        g.request_id = rid
    return rid


def _context() -> dict:
    """actor_id, actor_name, request_id, ip and created_on shared by one flush's events."""
    actor_id, actor_name, ip = None, "system", None
    if has_request_context():
        actor_name = "anonymous"
        user = g.get("user")
        if user is not None and getattr(user, "is_authenticated", False):
            actor_id, actor_name = user.id, (user.username or "")[:64]
        ip = request.remote_addr[:45] if request.remote_addr else None
    return {"actor_id": actor_id, "actor_name": actor_name, "request_id": current_request_id(),
            "ip": ip, "created_on": utcnow()}


def _enabled() -> bool:
    return not has_app_context() or bool(current_app.config.get("AUDIT_ENABLED", True))


# --- Collecting events at flush time ---


def _paths(spec: _Spec, obj, deleted: bool) -> tuple[str | None, str | None]:
    """The row's region and group paths; a live row loads them if they were expired,
    a deleted one cannot (its row is gone) and was loaded by the DELETE anyway."""
    read = obj.__dict__.get if deleted else lambda key: getattr(obj, key)
    region = read(spec.region_attr) if spec.region_attr else None
    group = read(spec.group_attr) if spec.group_attr else None
    return region, group


def _role_names(roles) -> list[str]:
    return sorted(str(getattr(r, "name", r)) for r in roles)


def _snapshot(spec: _Spec, obj) -> dict:
    """Every audited column of ``obj`` (create / delete). Read from the instance
    dict: nothing may load after the DELETE. A DELETE of an expired row has loaded
    its columns already (SQLAlchemy reads the committed primary key, which
    refreshes every expired column)."""
    dict_ = obj.__dict__
    data = {key: _shown(spec, key, dict_.get(key)) for key in spec.columns}
    if spec.is_user and "roles" in dict_:
        data["roles"] = _role_names(dict_["roles"])
    return data


def _changes(spec: _Spec, obj) -> tuple[dict, dict, str]:
    """(before, after, action) of an updated row; empty dicts when nothing counts."""
    attrs = inspect(obj).attrs
    before, after, raw = {}, {}, {}
    meaningful = False
    for key in spec.columns:
        hist = attrs[key].history
        if not hist.has_changes():
            continue
        old = hist.deleted[0] if hist.deleted else _UNKNOWN
        new = hist.added[0] if hist.added else None
        if old is not _UNKNOWN and old == new:
            continue
        raw[key] = (old, new)
        before[key] = None if old is _UNKNOWN else _shown(spec, key, old)
        after[key] = _shown(spec, key, new)
        meaningful = meaningful or key not in spec.ignored
    if spec.is_user and "roles" in attrs.keys():
        hist = attrs["roles"].history
        if hist.added or hist.deleted:
            before["roles"] = _role_names(list(hist.unchanged) + list(hist.deleted))
            after["roles"] = _role_names(list(hist.unchanged) + list(hist.added))
            meaningful = True
    if not meaningful:
        return {}, {}, ""
    for key in spec.ignored:
        before.pop(key, None)
        after.pop(key, None)
    return before, after, _action(raw)


def _action(raw: dict) -> str:
    for key in STATE_COLUMNS:
        if key in raw:
            old, new = raw[key]
            action = f"{key}:{_token(old)}->{_token(new)}"
            return action if len(action) <= _ACTION_MAX else key
    return "update"


def _event(spec: _Spec, obj, action: str, before: dict | None, after: dict | None,
           ctx: dict) -> dict:
    region, group = _paths(spec, obj, deleted=action == "delete")
    return {
        **ctx,
        "action": action,
        "object_type": spec.table,
        "object_id": obj.__dict__.get("id"),
        "region_path": region,
        "group_path": group,
        "before_json": _dumps(before),
        "after_json": _dumps(after),
    }


def _fill_group_admin_paths(session, pending: list[tuple[object, dict]]) -> None:
    """A group admin's events carry its group's paths (one query per flush)."""
    from app.models import VolunteerGroup

    missing = {}
    for obj, row in pending:
        group = obj.__dict__.get("group")
        if group is not None and "group_path" in group.__dict__:
            row["region_path"] = group.__dict__.get("region_path")
            row["group_path"] = group.__dict__.get("group_path")
        elif obj.__dict__.get("group_id") is not None:
            missing.setdefault(obj.__dict__["group_id"], []).append(row)
    if missing:
        found = session.connection().execute(
            select(VolunteerGroup.id, VolunteerGroup.region_path, VolunteerGroup.group_path)
            .where(VolunteerGroup.id.in_(missing))
        )
        for gid, region_path, group_path in found:
            for row in missing[gid]:
                row["region_path"], row["group_path"] = region_path, group_path


def _after_flush(session, flush_context) -> None:
    """Write one audit event per created, changed or deleted domain row."""
    if not _enabled():
        return
    ctx = None
    rows: list[dict] = []
    admins: list[tuple[object, dict]] = []

    def add(spec, obj, action, before, after):
        nonlocal ctx
        if ctx is None:
            ctx = _context()
        row = _event(spec, obj, action, before, after, ctx)
        rows.append(row)
        if spec.table == "group_admin":
            admins.append((obj, row))

    for obj in session.new:
        spec = _spec(type(obj))
        if spec is not None:
            add(spec, obj, "create", None, _snapshot(spec, obj))
    for obj in session.dirty:
        spec = _spec(type(obj))
        if spec is None or not session.is_modified(obj, include_collections=spec.is_user):
            continue
        before, after, action = _changes(spec, obj)
        if action:
            add(spec, obj, action, before, after)
    for obj in session.deleted:
        spec = _spec(type(obj))
        if spec is not None:
            add(spec, obj, "delete", _snapshot(spec, obj), None)
    if not rows:
        return
    if admins:
        _fill_group_admin_paths(session, admins)
    from app.models import AuditEvent

    rows.sort(key=lambda r: (r["object_type"], r["object_id"] or 0))
    session.connection().execute(insert(AuditEvent.__table__), rows)


# --- Registration ---


def _noop_set(target, value, oldvalue, initiator):
    """Listening with ``active_history=True`` is what matters; nothing to do here."""


def _enable_active_history() -> None:
    """Make every audited column load its old value when set on an expired row, so
    ``before_json`` (and ``status:old->new``) is known even after a commit."""
    import app.models  # noqa: F401  (map every domain class first)

    for mapper in list(db.Model.registry.mappers):
        spec = _spec(mapper.class_)
        if spec is None:
            continue
        for key in spec.columns:
            attr = getattr(mapper.class_, key)
            if not event.contains(attr, "set", _noop_set):
                event.listen(attr, "set", _noop_set, active_history=True)


def _register_listeners() -> None:
    """Listen on the session class once per process, however many apps are built."""
    if not event.contains(FlaskSession, "after_flush", _after_flush):
        event.listen(FlaskSession, "after_flush", _after_flush)
    _enable_active_history()


def _set_request_id_header(response):
    rid = current_request_id()
    if rid:
        response.headers[REQUEST_ID_HEADER] = rid
    return response


def init_app(app) -> None:
    """Start recording audit events for ``app`` and tag responses with their request id."""
    app.config.setdefault("AUDIT_ENABLED", True)
    _register_listeners()
    app.after_request(_set_request_id_header)


# --- Helpers for services and pages ---


def record_view(obj, what: str):
    """Record that the current user saw ``what`` (e.g. ``"id_number"``) of ``obj`` in
    full. Adds the event to the session and flushes; the caller commits.

    :returns: the AuditEvent, or None when auditing is off for this app
    """
    from app.models import AuditEvent, GroupAdmin

    if not _enabled():
        return None
    table = inspect(type(obj)).local_table.name
    region_path = getattr(obj, "path" if table == "region" else "region_path", None)
    audit_event = AuditEvent(
        **_context(), action=VIEW_PII, object_type=table, object_id=obj.id,
        region_path=region_path, group_path=getattr(obj, "group_path", None),
        after_json=_dumps({"viewed": what}),
    )
    if isinstance(obj, GroupAdmin) and obj.group is not None:
        audit_event.region_path, audit_event.group_path = obj.group.region_path, obj.group.group_path
    db.session.add(audit_event)
    db.session.flush()
    return audit_event


def record_event(action: str, object_type: str, object_id: int | None, *, region_path: str | None = None,
                 before: dict | None = None, after: dict | None = None):
    """Record an event the flush listener cannot see (a change to a table it does not
    audit, e.g. FAB's ``ab_api_key``). Adds it to the session and flushes; the caller
    commits. Pass no secret in ``before`` / ``after``: they are stored as given.

    :returns: the AuditEvent, or None when auditing is off for this app
    """
    from app.models import AuditEvent

    if not _enabled():
        return None
    audit_event = AuditEvent(**_context(), action=action[:_ACTION_MAX], object_type=object_type[:32],
                             object_id=object_id, region_path=region_path,
                             before_json=_dumps(before), after_json=_dumps(after))
    db.session.add(audit_event)
    db.session.flush()
    return audit_event


def events_for(obj) -> Query:
    """Query of the audit events of one row, oldest first."""
    from app.models import AuditEvent

    table = inspect(type(obj)).local_table.name
    # Rows keyed by something else than an integer id (holiday) are logged with
    # object_id NULL: their events are all the table's events.
    return (db.session.query(AuditEvent)
            .filter(AuditEvent.object_type == table,
                    AuditEvent.object_id == getattr(obj, "id", None))
            .order_by(AuditEvent.id))
