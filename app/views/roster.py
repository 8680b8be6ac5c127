"""团体管理 → 我的成员 (the roster): search, 添加志愿者 by real name + ID, 移除, Excel export and import.

The list is a scoped FAB ModelView over memberships: group admins read their groups
and children, officers their region, volunteers their own memberships. Changes
(add, remove, import) go to ``app.services.rosters``, which allows them only in
groups the user administers directly; other ids answer 404 and nothing is written.
"""
from __future__ import annotations

import tempfile
from urllib.parse import quote

from flask import abort, flash, redirect, request, send_file, url_for
from flask_appbuilder import AppBuilder, ModelView, expose, has_access
from flask_appbuilder.actions import action
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_babel import gettext, lazy_gettext as _
from sqlalchemy import false
from wtforms import SelectField

from app.extensions import db
from app.models import IdType, Membership, MembershipOrigin, MembershipStatus, RosterImport, VolunteerGroup
from app.security.permissions import (
    ACTION_READ, ACTION_WRITE, MENU_GROUP_MEMBERS, MENU_MY_MEMBERS, READ_ONLY, RESOURCE_MEMBERSHIP,
)
from app.security.scope import InScope, row_id
from app.security.scoped_views import ScopedInterface, ScopedViewMixin, scoped_rel_fields
from app.services import rosters
from app.services.errors import DomainError, ScopeViolation
from app.views import menus
from app.views.formatters import label, local_minute
from app.views.pages import flash_errors


class CurrentMembers(BaseFilter):
    """The list's default: members and pending requests (history only when searched by status)."""

    name = "Current"
    arg_name = None

    def apply(self, query, value):
        return query.filter(self.model.status.in_(list(rosters.CURRENT)))


class StatusIs(BaseFilter):
    """Search by membership status (a known status; anything else finds nothing)."""

    name = _("Equal to")
    arg_name = None

    def apply(self, query, value):
        if value not in MembershipStatus.labels():
            return query.filter(false())
        return query.filter(self.model.status == value)


def attachment_header(name: str) -> str:
    """Content-Disposition for a download whose name may be Chinese (RFC 5987/6266)."""
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"


def send_xlsx(write, name: str):
    """An .xlsx download named ``name``: ``write(out)`` fills a spooled file (memory up to
    8 MB, then disk); never cached. Shared by the roster and the officers' exports."""
    out = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    write(out)
    out.seek(0)
    response = send_file(out, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                         as_attachment=False, max_age=0)
    response.headers["Content-Disposition"] = attachment_header(name)
    response.headers["Cache-Control"] = "no-store"
    return response


def _int_arg(value) -> int:
    """A row id from the request, or 404."""
    pk = row_id(value)
    if pk is None:
        abort(404)
    return pk


class MembershipModelView(ScopedViewMixin, ModelView):
    """我的成员: memberships in scope. By default members and pending requests; a search
    by status shows the history (left, rejected, removed). Removal, 添加志愿者 and
    导入 change only groups the user administers directly (the services check)."""

    datamodel = ScopedInterface(Membership)
    route_base = "/group-admin/members"
    class_permission_name = RESOURCE_MEMBERSHIP
    method_permission_name = {
        **READ_ONLY, "index": ACTION_READ, "export": ACTION_READ, "remove": ACTION_WRITE,
        "add": ACTION_WRITE, "import_file": ACTION_WRITE, "import_preview": ACTION_WRITE,
        "import_apply": ACTION_WRITE, "import_errors": ACTION_WRITE,
    }
    base_permissions = ["can_read", "can_write"]
    list_template = "roster/list.html"

    base_filters = [["id", InScope, None]]
    search_form_query_rel_fields = scoped_rel_fields("group")
    custom_search_filters = {"status": [StatusIs], "volunteer_no": [FilterEqual]}
    search_form_extra_fields = {
        "status": SelectField(_("Membership status"), choices=MembershipStatus.choices, validate_choice=False),
    }

    list_title = show_title = _("My Members")
    list_columns = ["volunteer_name", "volunteer_no", "volunteer.gender", "volunteer.id_number_masked",
                    "volunteer.phone_masked", "group", "status", "origin", "decided_on"]
    list_eager_relations = ("volunteer",)
    show_columns = ["volunteer_name", "volunteer_no", "volunteer.gender", "volunteer.id_number_masked",
                    "volunteer.phone_masked", "group", "status", "origin", "reason", "created_on",
                    "decided_on"]
    search_columns = ["volunteer_name", "volunteer_no", "status", "group"]
    order_columns = ["volunteer_name", "volunteer_no", "status", "decided_on"]
    base_order = ("id", "desc")
    page_size = 20
    formatters_columns = {
        "status": label(MembershipStatus), "origin": label(MembershipOrigin),
        "decided_on": local_minute, "created_on": local_minute,
        "volunteer.gender": lambda g: {"M": gettext("Male"), "F": gettext("Female")}.get(g, ""),
        "volunteer.phone_masked": lambda v: v or "", "reason": lambda v: v or "",
    }
    label_columns = {
        "volunteer_name": _("Real name"), "volunteer_no": _("Volunteer number"),
        "volunteer.gender": _("Gender"), "volunteer.id_number_masked": _("ID number"),
        "volunteer.phone_masked": _("Mobile phone"), "group": _("Volunteer group"),
        "status": _("Membership status"), "origin": _("Joined by"), "decided_on": _("Joined or decided on"),
        "reason": _("Reason"), "created_on": _("Created on"),
    }

    def _get_list_widget(self, filters, **kwargs):
        # Default: current members and requests, unless the user searched by status.
        if not any(f.column_name == "status" for f in filters.filters):
            filters = filters.copy().add_filter("status", CurrentMembers, None)
        return super()._get_list_widget(filters, **kwargs)

    def _list_extra(self) -> dict:
        can_write = self.appbuilder.sm.has_access(f"can_{ACTION_WRITE}", self.class_permission_name)
        return {"roster_can_write": can_write, "roster_export_groups": rosters.readable_groups()}

    def render_template(self, template, **kwargs):
        if template == self.list_template:
            kwargs.update(self._list_extra())
        return super().render_template(template, **kwargs)

    @expose("/")
    @has_access
    def index(self):
        return redirect(url_for(".list"))

    @action("remove", _("Remove"), _("Remove the selected members from the group? They stay in its history."),
            "fa-user-times", single=False)
    def remove(self, items):
        # ScopedViewMixin loaded the rows inside the scope; the service allows only
        # groups the user administers itself (a child group's row: 404, nothing written).
        try:
            count = rosters.remove_members(items if isinstance(items, list) else [items])
        except DomainError as err:
            flash_errors(err)
        else:
            db.session.commit()
            flash(gettext("%(n)s members removed.", n=count), "success")
        self.update_redirect()  # FAB's history: back to the list page the action came from
        return redirect(self.get_redirect())

    # --- 添加志愿者 ---

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self):
        """添加志愿者: group, real name, ID type and number; must match an approved volunteer."""
        groups = rosters.administered_groups()
        form = {"group": request.values.get("group", ""), "real_name": "", "id_type": IdType.RESIDENT.value}
        if len(groups) == 1 and not form["group"]:
            form["group"] = str(groups[0].id)
        status = 200
        if request.method == "POST":
            form.update(real_name=(request.form.get("real_name") or "").strip()[:64],
                        id_type=request.form.get("id_type") or IdType.RESIDENT.value)
            group = db.session.get(VolunteerGroup, _int_arg(request.form.get("group")))
            try:
                membership = rosters.add_member_by_identity(
                    group, form["real_name"], form["id_type"], (request.form.get("id_number") or "")[:32])
            except ScopeViolation:
                db.session.rollback()
                abort(404)
            except DomainError as err:
                flash_errors(err)
                status = getattr(err, "code", 400)
            else:
                db.session.commit()
                flash(gettext("%(name)s was added to %(group)s.", name=membership.volunteer_name,
                              group=group.name), "success")
                return redirect(url_for(".add", group=group.id))
        return self.render_template("roster/add.html", title=gettext("Add Volunteer"), groups=groups, form=form,
                                    id_types=IdType.choices()), status

    # --- 导出 ---

    @expose("/export.xlsx")
    @has_access
    def export(self):
        """导出: one group's roster as .xlsx, masked ID numbers and phones only."""
        group = db.session.get(VolunteerGroup, _int_arg(request.args.get("group")))
        try:
            rosters.ensure_reads_roster(group)
        except ScopeViolation:
            abort(404)
        return send_xlsx(lambda out: rosters.write_roster_xlsx(group, out),
                          gettext("%(group)s roster.xlsx", group=group.name))

    # --- 导入 ---

    @expose("/import", methods=["GET", "POST"])
    @has_access
    def import_file(self):
        """导入, step 1: upload an .xlsx; its rows are checked and shown as a preview."""
        groups = rosters.administered_groups()
        chosen = request.values.get("group", "") or (str(groups[0].id) if len(groups) == 1 else "")
        status = 200
        if request.method == "POST":
            group = db.session.get(VolunteerGroup, _int_arg(request.form.get("group")))
            upload = request.files.get("file")
            try:
                if upload is None or not upload.filename:
                    raise DomainError(gettext("Please choose an Excel file (.xlsx)."))
                batch = rosters.check_roster_file(group, upload.filename, upload.stream)
            except ScopeViolation:
                db.session.rollback()
                abort(404)
            except DomainError as err:
                flash_errors(err)
                status = getattr(err, "code", 400)
            else:
                db.session.commit()
                return redirect(url_for(".import_preview", batch_id=batch.id))
        return self.render_template("roster/import.html", title=gettext("Import from Excel"), groups=groups,
                                    chosen=chosen, max_rows=rosters.MAX_IMPORT_ROWS), status

    def _batch(self, batch_id: int) -> RosterImport:
        try:
            return rosters.ensure_import_access(db.session.get(RosterImport, batch_id))
        except ScopeViolation:
            abort(404)

    @expose("/import/<int:batch_id>")
    @has_access
    def import_preview(self, batch_id):
        """导入, step 2: counts and rows (errors first), 确认导入 and the error report."""
        batch = self._batch(batch_id)
        summary = rosters.summarize_import(batch)
        return self.render_template(
            "roster/import_preview.html", title=gettext("Import preview"), batch=batch, summary=summary,
            reason_text=rosters.reason_text, id_types=IdType.labels(),
            applied_on=local_minute(batch.applied_on))

    @expose("/import/<int:batch_id>/apply", methods=["POST"])
    @has_access
    def import_apply(self, batch_id):
        """确认导入: the valid rows are added in one transaction; a second apply is refused."""
        batch = self._batch(batch_id)
        try:
            added = rosters.apply_roster_import(batch)
        except ScopeViolation:
            db.session.rollback()
            abort(404)
        except DomainError as err:
            flash_errors(err)
            return redirect(url_for(".import_preview", batch_id=batch_id))
        db.session.commit()
        flash(gettext("%(n)s volunteers were added to %(group)s.", n=added, group=batch.group.name), "success")
        return redirect(url_for(".import_preview", batch_id=batch_id))

    @expose("/import/<int:batch_id>/errors.xlsx")
    @has_access
    def import_errors(self, batch_id):
        """The per-row error report (row, column, reason, name, masked ID number)."""
        batch = self._batch(batch_id)
        return send_xlsx(lambda out: rosters.write_error_report(batch, out),
                          gettext("Import errors %(id)s.xlsx", id=batch.id))


def register(appbuilder: AppBuilder) -> None:
    """Add this module's views and menu entries (called by app.views.register_views)."""
    appbuilder.add_view(MembershipModelView, MENU_MY_MEMBERS, icon="fa-address-book", label=_("My Members"),
                        href="/group-admin/members/list/", **menus.GROUP_ADMIN)
    # Officers read the rosters of their region (the same page, read-only for them).
    appbuilder.add_link(MENU_GROUP_MEMBERS, href="/group-admin/members/list/", icon="fa-address-book",
                        label=_("Group Members"), **menus.REGION_OVERSIGHT)
