"""运营控制台 → API 令牌: partner systems' long-lived API tokens (issue 9). The Admin
issues one for a region (the raw token is shown once, on the page that answers the
form, and stored nowhere), sees when each was last used, and revokes it (吊销). The
rules live in ``app/services/api_tokens.py``; both changes are audited, the token never."""
from __future__ import annotations

from flask import flash, g, make_response, request
from flask_admin import expose
from flask_admin.actions import action
from flask_appbuilder.security.sqla.models import ApiKey
from flask_babel import gettext
from flask_babel import lazy_gettext as _
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import DateField, StringField
from wtforms.validators import DataRequired, Length, Optional

from app.console import EditView
from app.extensions import db
from app.models import BindingKind, RegionBinding
from app.security.scope import row_id
from app.services import api_tokens
from app.views.formatters import local_minute


class TokenForm(FlaskForm):
    """发放令牌: a name for the partner, the region code it may read, an optional expiry."""

    name = StringField(_("Name"), validators=[DataRequired(), Length(max=api_tokens.NAME_MAX)],
                       description=_("Who uses the token, e.g. the partner system's name."))
    region_code = StringField(_("Region code"), validators=[DataRequired(), Length(max=12)],
                              description=_("The token reads this region and everything below it, e.g. 410200."))
    expires_on = DateField(_("Expires on"), validators=[Optional()],
                           description=_("Optional: the token stops working after this day."))


def _partner_user_ids():
    return select(RegionBinding.user_id).where(RegionBinding.kind == BindingKind.PARTNER)


def _region(view, context, model, name):
    # The page's regions come in one query (ApiTokenView.get_list); a row outside that
    # page (none today) falls back to its own query.
    regions = g.get("vc_token_regions")
    if regions is None:
        regions = g.vc_token_regions = {}
    if model.user_id not in regions:
        regions[model.user_id] = api_tokens.region_of(model)
    region = regions[model.user_id]
    return f"{region.name} ({region.code})" if region is not None else "—"


def _local_time(view, context, model, name):
    """A stored (naive UTC) time of ``ab_api_key``, shown in Asia/Shanghai."""
    return local_minute(getattr(model, name))


class ApiTokenView(EditView):
    """API 令牌: the partner tokens, newest first. No edit or delete (a revoked token stays
    listed, with its last use); create issues a token through the service; the 吊销
    action revokes. Hashes are never listed, shown or searchable."""

    can_edit = can_delete = False
    can_view_details = False
    can_export = False
    column_default_sort = ("id", True)
    column_list = ("name", "region", "key_prefix", "created_on", "expires_on", "last_used_on", "revoked_on")
    column_sortable_list = ("name", "created_on", "expires_on", "last_used_on", "revoked_on")
    column_searchable_list = ("name",)
    column_filters = ()
    column_formatters = {"region": _region, "created_on": _local_time, "expires_on": _local_time,
                         "last_used_on": _local_time, "revoked_on": _local_time}
    column_labels = {"name": _("Name"), "region": _("Region"), "key_prefix": _("Prefix"),
                     "created_on": _("Created on"), "expires_on": _("Expires on"),
                     "last_used_on": _("Last used"), "revoked_on": _("Revoked on")}
    form = TokenForm

    def get_query(self):
        return super().get_query().filter(ApiKey.user_id.in_(_partner_user_ids()))

    def get_count_query(self):
        return super().get_count_query().filter(ApiKey.user_id.in_(_partner_user_ids()))

    def get_list(self, *args, **kwargs):
        """The page's rows, and their regions in one query for the region column."""
        count, rows = super().get_list(*args, **kwargs)
        if kwargs.get("execute", True) and isinstance(rows, list):
            g.vc_token_regions = api_tokens.regions_of(rows)
        return count, rows

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        """The form; on success the raw token, once, on this response (never flashed:
        the session cookie is signed, not encrypted)."""
        return_url = self.get_url(".index_view")
        form = TokenForm()
        if request.method == "POST" and form.validate():
            issued = self.commit_or_flash(
                lambda: api_tokens.issue(form.name.data, form.region_code.data, form.expires_on.data))
            if issued:
                response = make_response(self.render(
                    "console/api_token_created.html", token=issued.key, api_key=issued.api_key,
                    region=issued.region, return_url=return_url))
                response.headers["Cache-Control"] = "no-store"
                return response
        return self.render("admin/model/create.html", form=form, form_opts=None, return_url=return_url)

    @action("revoke", _("Revoke"), _("Revoke the selected tokens? Partners using them are refused at once."))
    def action_revoke(self, ids):
        wanted = [pk for pk in map(row_id, ids) if pk is not None]
        keys = self.get_query().filter(ApiKey.id.in_(wanted)).all()
        changed = sum(1 for key in keys if api_tokens.revoke(key))
        db.session.commit()
        flash(gettext("%(n)s tokens revoked.", n=changed), "success")


def add_views(admin, url: str) -> None:
    """Register the API-token view on the console ``admin`` mounted at ``url``."""
    admin.add_view(ApiTokenView(ApiKey, db, name=_("API Tokens"), endpoint="console_api_token",
                                url=f"{url}/api-token"))
