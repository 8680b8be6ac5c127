"""运营控制台 (/console): the platform operators' console, Flask-Admin 2.2 in the portal's app.

It shares the portal's database session and FAB's login (FAB-NOTES "Flask-Admin at
/console"): only users whose role holds ``can_access on Console`` get in — the Admin
role; an anonymous visitor is sent to the portal's login page and every other role
gets 403. Bootstrap 4 pages under ``/console`` with their own static files at
``/console/static``, apart from the portal's (FAB, Bootstrap 3).
"""
from __future__ import annotations

from flask import Flask, abort, current_app, flash, g, redirect, request, url_for
from flask_admin import Admin, AdminIndexView
from flask_admin.contrib.sqla import ModelView
from flask_admin.theme import Bootstrap4Theme
from flask_babel import lazy_gettext as _
from flask_wtf import FlaskForm
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import AuditEvent
from app.security.permissions import ACTION_ACCESS, RESOURCE_CONSOLE
from app.services.errors import DomainError

CONSOLE_URL = "/console"


def may_enter() -> bool:
    """Whether the signed-in user's role holds ``can_access on Console``."""
    user = getattr(g, "user", None)
    if user is None or not user.is_authenticated:
        return False
    return current_app.appbuilder.sm.has_access(f"can_{ACTION_ACCESS}", RESOURCE_CONSOLE)


class ConsoleAccess:
    """Who may open a console page, and what the others get."""

    def is_accessible(self) -> bool:
        return may_enter()

    def inaccessible_callback(self, name, **kwargs):
        user = getattr(g, "user", None)
        if user is None or not user.is_authenticated:
            sm = current_app.appbuilder.sm
            return redirect(url_for(f"{sm.auth_view.endpoint}.login", next=request.full_path.rstrip("?")))
        abort(403)


class ConsoleHome(ConsoleAccess, AdminIndexView):
    """The console's first page."""


class ReadOnlyView(ConsoleAccess, ModelView):
    """A console list that changes nothing."""

    can_create = can_edit = can_delete = False
    can_view_details = True
    page_size = 50


class EditView(ConsoleAccess, ModelView):
    """A console list whose rows the operator may change. Forms are Flask-WTF's, so the
    portal's global CSRFProtect accepts their posts (create, edit, inline edit, delete,
    actions); every change goes through the session and so into the audit log
    (``app/services/audit.py``). Subclasses send domain rules to ``app/services``."""

    form_base_class = FlaskForm
    can_view_details = True
    page_size = 50

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        # Flask-Admin's Unique validator tells "this row" from a duplicate by form._obj,
        # which its own BaseForm sets and FlaskForm does not: without it every edit of a
        # row with a unique column (or a non-integer key) reads "已经存在".
        form._obj = obj
        return form

    def commit_or_flash(self, work, conflict=None):
        """Run ``work`` (a service call) and commit. A refusal (``DomainError``) rolls back
        and flashes each of its messages; so does a unique-key clash when ``conflict``
        (the message for it) is given. Returns what ``work`` returned, or False."""
        try:
            result = work()
            db.session.commit()
        except DomainError as err:
            db.session.rollback()
            for message in err.messages:
                flash(message, "error")
            return False
        except IntegrityError:
            if conflict is None:
                raise
            db.session.rollback()
            flash(conflict, "error")
            return False
        return result


class AuditEventView(ReadOnlyView):
    """审计日志: every state change and full-PII view, newest first, filtered by actor,
    action, object type, region and time; the before/after JSON (masked) in full on the
    details page; CSV and Excel exports of what the filters select."""

    can_export = True
    export_types = ["csv", "xlsx"]
    export_max_rows = 100_000
    column_default_sort = ("id", True)
    column_list = ("created_on", "actor_name", "action", "object_type", "object_id", "region_path", "ip")
    column_details_list = ("id", "created_on", "actor_name", "actor_id", "action", "object_type", "object_id",
                           "region_path", "group_path", "before_json", "after_json", "request_id", "ip")
    column_filters = ("actor_name", "action", "object_type", "region_path", "created_on")
    column_searchable_list = ("actor_name", "object_type")
    column_labels = {"created_on": _("Time (UTC)"), "actor_name": _("Actor"), "actor_id": _("Actor ID"),
                     "action": _("Action"), "object_type": _("Object type"), "object_id": _("Object ID"),
                     "region_path": _("Region path"), "group_path": _("Group path"),
                     "before_json": _("Before"), "after_json": _("After"), "request_id": _("Request ID"),
                     "ip": _("IP address")}


def init_app(app: Flask) -> Admin:
    """Mount the console on ``app`` (after the AppBuilder: it uses FAB's security manager)."""
    admin = Admin(app, name=_("Operator Console"), url=CONSOLE_URL, endpoint="console",
                  theme=Bootstrap4Theme(), index_view=ConsoleHome(url=CONSOLE_URL, endpoint="console"),
                  csp_nonce_generator=lambda: getattr(request, "csp_nonce", ""))
    admin.add_view(AuditEventView(AuditEvent, db, name=_("Audit Log"), endpoint="console_audit",
                                  url=f"{CONSOLE_URL}/audit"))
    from app.console import regions, settings, tokens, users  # they import EditView from here

    for module in (users, settings, regions, tokens):
        module.add_views(admin, CONSOLE_URL)
    return admin
