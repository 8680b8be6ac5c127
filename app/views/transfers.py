"""转移接续: 用户中心 → 转移接续 (/my/transfer/: ask to move the home region, withdraw
the request, the history, download my records) and 区域监管 → 转移接续审核
(/oversight/transfers/: the destination's officers approve or refuse).

Rules live in app/services/transfers.py (records in and out: record_exchange.py);
these views read the form, call the service, flash its result and commit.
"""
from __future__ import annotations

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose, has_access
from flask_babel import gettext, lazy_gettext as _
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField

from app.extensions import begin_write, db
from app.models import TransferRequest
from app.security.permissions import (
    ACTION_READ, ACTION_REVIEW, ACTION_WRITE, MENU_TRANSFER_REVIEW, MENU_TRANSFERS, RESOURCE_TRANSFER,
)
from app.services import hours, transfers, volunteers
from app.services.errors import DomainError, ValidationFailed
from app.views import menus
from app.views.decisions import decide_ticked
from app.views.formatters import local_minute
from app.views.pages import page_arg, perform, show_field_errors
from app.views.registration import _region_chain


class TransferForm(FlaskForm):
    """The request; no length validators: the service reports every problem at once."""

    region_code = StringField(_("New home region"))
    reason = TextAreaField(_("Reason"), render_kw={"rows": 2, "maxlength": transfers.REASON_MAX})


def _region_name(region, path: str) -> str:
    return region.name if region is not None else path.rstrip("/").rsplit("/", 1)[-1]


def _request_row(row: TransferRequest) -> dict:
    labels = transfers.status_labels()
    return {
        "id": row.id, "name": row.volunteer_name or "", "volunteer_no": row.volunteer_no or "",
        "from": _region_name(row.from_region, row.from_region_path), "to": _region_name(row.region, row.region_path),
        "reason": row.reason or "", "requested": local_minute(row.created_on), "status": labels.get(row.status, row.status),
        "status_key": row.status, "reject_reason": row.reject_reason or "", "decided": local_minute(row.decided_on),
    }


class TransferView(BaseView):
    """转移接续 (/my/transfer/): my home region, a request to move it (to a region at
    county level or below, with a reason), withdrawing a pending one, the history of
    my requests, and my service records as JSON or CSV (docs/record-format.md)."""

    route_base = "/my/transfer"
    default_view = "index"
    class_permission_name = RESOURCE_TRANSFER
    method_permission_name = {"index": ACTION_READ, "ask": ACTION_WRITE, "withdraw": ACTION_WRITE}
    base_permissions = [f"can_{ACTION_READ}", f"can_{ACTION_WRITE}"]

    def _page(self, volunteer, form=None, *, general=(), status=200):
        form = form or TransferForm(formdata=None)
        pending = transfers.pending_request(volunteer)
        return self.render_template(
            "transfers/mine.html", title=gettext("Transfer Records"), form=form, general_errors=general,
            region_chain=_region_chain(form.region_code.data), pending=_request_row(pending) if pending else None,
            history=[_request_row(r) for r in transfers.history(volunteer)],
            home_region=_region_name(volunteer.region, volunteer.region_path),
            volunteer_no=volunteer.volunteer_no or "", can_ask=volunteer.status == "approved",
            export_json=url_for("MyRecordsExportView.json"), export_csv=url_for("MyRecordsExportView.csv"),
            approved_hours=hours.hours_text(volunteer.total_minutes)), status

    @expose("/")
    @has_access
    def index(self):
        volunteer = volunteers.volunteer_of_user(g.user)
        if volunteer is None:
            return self.render_template("user_center/no_volunteer.html", title=gettext("Transfer Records"))
        return self._page(volunteer)

    @expose("/request", methods=["POST"])
    @has_access
    def ask(self):
        """Ask to move my home region; an officer of the new region decides."""
        form = TransferForm()
        begin_write()
        volunteer = volunteers.volunteer_of_user(g.user)
        if volunteer is None:
            abort(404)
        if not form.validate_on_submit():  # only the CSRF token can fail here
            return self._page(volunteer, form, status=400)
        try:
            row = transfers.request_transfer(volunteer, form.region_code.data, form.reason.data)
        except ValidationFailed as err:
            db.session.rollback()
            return self._page(volunteers.volunteer_of_user(g.user), form, general=show_field_errors(form, err),
                              status=400)
        except DomainError as err:
            db.session.rollback()
            return self._page(volunteers.volunteer_of_user(g.user), form, general=err.messages, status=400)
        db.session.commit()
        flash(gettext("Your transfer request to %(region)s has been submitted; an officer of that region will "
                      "decide on it.", region=row.region.name), "success")
        return redirect(url_for(".index"))

    @expose("/<int:request_id>/withdraw", methods=["POST"])
    @has_access
    def withdraw(self, request_id):
        begin_write()
        volunteer = volunteers.volunteer_of_user(g.user)

        def action():
            transfers.withdraw_request(volunteer, request_id)
            return gettext("Your transfer request has been withdrawn.")

        return perform(action, url_for(".index"))


class TransferReviewView(BaseView):
    """转移接续审核 (/oversight/transfers/): requests to move into the officer's region.
    Tick requests, then approve (the volunteers' home region moves here) or refuse
    with a reason. Decided requests stay listed under their status."""

    route_base = "/oversight/transfers"
    default_view = "index"
    class_permission_name = RESOURCE_TRANSFER
    method_permission_name = {"index": ACTION_REVIEW, "decide": ACTION_REVIEW}
    base_permissions = [f"can_{ACTION_REVIEW}"]

    @expose("/")
    @has_access
    def index(self):
        status = request.args.get("status", transfers.PENDING)
        if status not in transfers.STATUS_FILTERS:
            status = transfers.PENDING
        page = page_arg()
        rows, more = transfers.requests_to_review(status, page=page)
        labels = transfers.status_labels()
        return self.render_template(
            "transfers/review.html", title=gettext("Transfer Review"), rows=[_request_row(r) for r in rows],
            status=status, statuses=[(s, labels[s]) for s in transfers.STATUS_FILTERS], page=page, more=more)

    @expose("/decide", methods=["POST"])
    @has_access
    def decide(self):
        begin_write()
        return decide_ticked(TransferRequest, transfers.review_clause(), transfers.decide_transfers,
                             none_selected=str(transfers.NONE_SELECTED), done=transfers.decision_message)


def register(appbuilder: AppBuilder) -> None:
    """Add this area's pages and menu entries."""
    appbuilder.add_view(TransferView, MENU_TRANSFERS, href="/my/transfer/", icon="fa-exchange",
                        label=_("Transfer Records"), **menus.USER_CENTER)
    appbuilder.add_view(TransferReviewView, MENU_TRANSFER_REVIEW, href="/oversight/transfers/", icon="fa-exchange",
                        label=_("Transfer Review"), **menus.REGION_OVERSIGHT)

