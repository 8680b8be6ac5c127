"""转移接续, records in and out: the volunteer's download of their service records
(/my/transfer/records.json and .csv, linked from 用户中心 → 转移接续) and 区域监管 →
服务记录导入 (/oversight/record-import/: upload, preview, 确认导入, error report).

Rules live in app/services/record_exchange.py; these views call it, flash its
refusals and commit. Batches the user may not open answer 404.
"""
from __future__ import annotations

from urllib.parse import quote

from flask import Response, abort, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose, has_access
from flask_babel import gettext, lazy_gettext as _

from app.extensions import db
from app.models import RecordImport
from app.security.permissions import ACTION_IMPORT, ACTION_READ, MENU_RECORD_IMPORT, RESOURCE_TRANSFER
from app.services import record_exchange, volunteers
from app.services.errors import DomainError, ScopeViolation
from app.views import menus
from app.views.formatters import local_minute
from app.views.pages import flash_errors
from app.views.roster import attachment_header


def _download(data: bytes, mimetype: str, name: str, ascii_name: str | None = None) -> Response:
    response = Response(data, mimetype=mimetype)
    if ascii_name is None:
        response.headers["Content-Disposition"] = attachment_header(name)
    else:  # a readable fallback for clients without RFC 5987, not "____-…"
        response.headers["Content-Disposition"] = (
            f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}")
    response.headers["Cache-Control"] = "no-store"
    return response


class MyRecordsExportView(BaseView):
    """The signed-in volunteer's own service records in the documented format
    (docs/record-format.md), as JSON or CSV; nobody else's. A user without a volunteer
    record (an officer, the platform admin) gets 404: there is no file to download."""

    route_base = "/my/transfer"
    class_permission_name = RESOURCE_TRANSFER
    method_permission_name = {"json": ACTION_READ, "csv": ACTION_READ}
    base_permissions = [f"can_{ACTION_READ}"]

    def _volunteer(self):
        volunteer = volunteers.volunteer_of_user(g.user)
        if volunteer is None:
            abort(404)
        return volunteer

    @expose("/records.json")
    @has_access
    def json(self):
        volunteer = self._volunteer()
        return _download(record_exchange.export_json(volunteer), "application/json",
                         record_exchange.export_filename(volunteer, "json"),
                         record_exchange.export_filename(volunteer, "json", ascii_only=True))

    @expose("/records.csv")
    @has_access
    def csv(self):
        volunteer = self._volunteer()
        return _download(record_exchange.export_csv(volunteer), "text/csv",
                         record_exchange.export_filename(volunteer, "csv"),
                         record_exchange.export_filename(volunteer, "csv", ascii_only=True))


class RecordImportView(BaseView):
    """服务记录导入: an officer uploads records from another system (.json or .csv), sees
    every row checked (errors first), applies the valid ones with 确认导入, and downloads
    the error report. Batches of other officers' regions answer 404."""

    route_base = "/oversight/record-import"
    default_view = "index"
    class_permission_name = RESOURCE_TRANSFER
    method_permission_name = {"index": ACTION_IMPORT, "preview": ACTION_IMPORT, "apply": ACTION_IMPORT,
                              "errors": ACTION_IMPORT}
    base_permissions = [f"can_{ACTION_IMPORT}"]

    def _page(self, status=200):
        rows = [{"id": b.id, "filename": b.filename, "created": local_minute(b.created_on), "total": b.total_rows,
                 "valid": b.valid_rows, "applied": local_minute(b.applied_on), "applied_count": b.applied_count}
                for b in record_exchange.recent_imports()]
        return self.render_template(
            "record_exchange/index.html", title=gettext("Record Import"), recent=rows,
            max_rows=record_exchange.MAX_IMPORT_ROWS, system_id=record_exchange.system_id()), status

    @expose("/", methods=["GET", "POST"])
    @has_access
    def index(self):
        """Step 1: the upload form and recent imports; a POSTed file is checked and stored."""
        if request.method == "GET":
            return self._page()
        upload = request.files.get("file")
        try:
            if upload is None or not upload.filename:
                raise DomainError(gettext("Please upload a .json or .csv file."))
            batch = record_exchange.check_record_file(upload.filename, upload.stream)
        except ScopeViolation:
            db.session.rollback()
            abort(404)
        except DomainError as err:
            flash_errors(err)
            return self._page(status=getattr(err, "code", 400))
        db.session.commit()
        return redirect(url_for(".preview", batch_id=batch.id))

    def _batch(self, batch_id: int) -> RecordImport:
        try:
            return record_exchange.ensure_import_access(db.session.get(RecordImport, batch_id))
        except ScopeViolation:
            abort(404)

    @expose("/<int:batch_id>")
    @has_access
    def preview(self, batch_id):
        """Step 2: counts and rows (errors first), 确认导入, the error report; after applying, the result."""
        batch = self._batch(batch_id)
        summary = record_exchange.summarize_import(batch)
        return self.render_template(
            "record_exchange/preview.html", title=gettext("Import preview"), batch=batch, summary=summary,
            error_text=record_exchange.error_text, applied_on=local_minute(batch.applied_on))

    @expose("/<int:batch_id>/apply", methods=["POST"])
    @has_access
    def apply(self, batch_id):
        """确认导入: the valid rows become approved records; a second apply is refused."""
        batch = self._batch(batch_id)
        try:
            result = record_exchange.apply_record_import(batch)
        except ScopeViolation:
            db.session.rollback()
            abort(404)
        except DomainError as err:
            flash_errors(err)
            return redirect(url_for(".preview", batch_id=batch_id))
        db.session.commit()
        flash(gettext("%(n)s records were imported.", n=result.applied), "success")
        if result.skipped:
            flash(gettext("%(n)s rows were skipped: see the result of each row.", n=result.skipped), "warning")
        return redirect(url_for(".preview", batch_id=batch_id))

    @expose("/<int:batch_id>/errors.csv")
    @has_access
    def errors(self, batch_id):
        """The per-row error report (row, column, reason, volunteer number, name, record)."""
        batch = self._batch(batch_id)
        return _download(record_exchange.error_report_csv(batch), "text/csv",
                         gettext("Import errors %(id)s.csv", id=batch.id))


def register(appbuilder: AppBuilder) -> None:
    """Add this module's views (called by app.views.register_views)."""
    appbuilder.add_view_no_menu(MyRecordsExportView)
    appbuilder.add_view(RecordImportView, MENU_RECORD_IMPORT, href="/oversight/record-import/", icon="fa-upload",
                        label=_("Record Import"), **menus.REGION_OVERSIGHT)
