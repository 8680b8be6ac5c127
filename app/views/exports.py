"""区域监管 → 数据导出 (/oversight/exports/): the user's scope — volunteers, groups,
projects, service records — as CSV (streamed) or Excel (a spooled temporary file).

The rows, masking and formula safety are app/services/exports.py's; these views check
the permissions (``can_read on DataExport`` and ``can_read`` on the exported resource),
take the scope of the request and send the file.
"""
from __future__ import annotations

from urllib.parse import quote

from flask import Response, abort, request, stream_with_context
from flask_appbuilder import AppBuilder, BaseView, expose, has_access
from flask_babel import gettext, lazy_gettext as _

from app.security.permissions import ACTION_READ, MENU_DATA_EXPORT, RESOURCE_DATA_EXPORT
from app.security.scope import current_scope
from app.services import exports
from app.views import menus
from app.views.roster import send_xlsx
from app.views.user_center import SERVICE_CATEGORY_LABELS


def _disposition(kind: exports.ExportKind, extension: str) -> str:
    """``志愿者-20261129.csv``, with ``volunteers-20261129.csv`` for clients that read no
    RFC 5987 name (rather than ``___-20261129.csv``)."""
    name = exports.filename(kind, extension)
    fallback = f"{kind.name}-{name.rsplit('-', 1)[-1]}"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"


class DataExportView(BaseView):
    """数据导出: a page listing the four exports (each with an optional status) and the
    downloads. Out of the user's scope nothing is exported; a kind whose list the user
    may not read answers 403, an unknown kind 404, an unknown status 400."""

    route_base = "/oversight/exports"
    default_view = "index"
    class_permission_name = RESOURCE_DATA_EXPORT
    method_permission_name = {"index": ACTION_READ, "download": ACTION_READ}
    base_permissions = [f"can_{ACTION_READ}"]

    def _readable(self, kind: exports.ExportKind) -> bool:
        return self.appbuilder.sm.has_access(f"can_{ACTION_READ}", kind.resource)

    @expose("/")
    @has_access
    def index(self):
        kinds = [{"name": kind.name, "title": str(kind.title),
                  "statuses": list(kind.statuses.labels().items()) if kind.statuses else []}
                 for kind in exports.KINDS.values() if self._readable(kind)]
        return self.render_template("exports/index.html", title=gettext("Data Export"), kinds=kinds)

    @expose("/<name>.<any(csv, xlsx):fmt>")
    @has_access
    def download(self, name, fmt):
        kind = exports.KINDS.get(name)
        if kind is None:
            abort(404)
        if not self._readable(kind):
            abort(403)
        status = request.args.get("status") or None
        if not exports.is_valid_status(kind, status):
            abort(400)
        scope = current_scope()  # the request's scope, taken before the stream starts
        options = dict(status=status, category_labels={k: str(v) for k, v in SERVICE_CATEGORY_LABELS.items()})
        if fmt == "xlsx":
            response = send_xlsx(lambda out: exports.write_xlsx(kind, scope, out, **options),
                                  exports.filename(kind, "xlsx"))
        else:
            response = Response(stream_with_context(exports.csv_stream(kind, scope, **options)),
                                mimetype="text/csv")
            response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Disposition"] = _disposition(kind, fmt)
        return response


def register(appbuilder: AppBuilder) -> None:
    """Add this module's view (called by app.views.register_views)."""
    appbuilder.add_view(DataExportView, MENU_DATA_EXPORT, href="/oversight/exports/", icon="fa-download",
                        label=_("Data Export"), **menus.REGION_OVERSIGHT)
