"""Registration review (注册审核) and the working-day calendar (节假日设置).

Officers approve or reject the pending registrations of their regions, on a page
(bulk, with a reason) and through ``POST /api/v1/volunteer/<id>/review``. Both load
the volunteers *with* the scope filter and answer 404 when any lies outside it,
writing nothing; ``volunteers.review_volunteers`` checks the officer's regions
again and refuses anything not pending. Registered by ``app.views.register_views``.
"""
from __future__ import annotations

from datetime import date

from flask import abort
from flask_appbuilder import BaseView, ModelView, expose, has_access
from flask_babel import gettext, lazy_gettext as _
from sqlalchemy import and_
from wtforms import BooleanField

from app.models import Holiday, Volunteer
from app.security.permissions import (
    ACTION_REVIEW, ACTION_WRITE, READ_WRITE, RESOURCE_HOLIDAY, RESOURCE_VOLUNTEER,
)
from app.security.scope import current_scope, scope_clause
from app.security.scoped_views import ScopedInterface, ScopedViewMixin
from app.services import clock, volunteers, workdays
from app.services.idcards import age_on
from app.views import decisions

REVIEW_PAGE_SIZE = 100


def _review_row(volunteer: Volunteer, waited: int, today: date) -> dict:
    """What the review page shows of one registration (masked personal data only)."""
    submitted = workdays.local_date(volunteer.submitted_on or volunteer.created_on)
    age = age_on(volunteer.birth_date, today) if volunteer.birth_date else None
    return {
        "id": volunteer.id,
        "name": volunteer.real_name,
        "gender": {"M": gettext("Male"), "F": gettext("Female")}.get(volunteer.gender or "", ""),
        "age": age,
        "is_minor": age is not None and age < volunteers.ADULT_AGE,
        "id_masked": volunteer.id_number_masked,
        "phone_masked": volunteer.phone_masked or "",
        "region": volunteer.region.name if volunteer.region else volunteer.region_code,
        "guardian_name": volunteer.guardian_name,
        "guardian_relation": volunteer.guardian_relation,
        "guardian_phone_masked": volunteer.guardian_phone_masked,
        "guardian_consent_on": (workdays.local_date(volunteer.guardian_consent_on).isoformat()
                                if volunteer.guardian_consent_on else None),
        "submitted": submitted.isoformat(),
        "workdays": waited,
        "urgency": workdays.review_urgency(waited),
    }


class RegistrationReviewView(BaseView):
    """注册审核: the pending registrations of the officer's regions, oldest first,
    with their age in working days; tick rows, then approve, or reject with a reason.

    A page with a form rather than a ModelView action: a bulk reject needs a reason.
    """

    route_base = "/registration-review"
    default_view = "index"
    class_permission_name = RESOURCE_VOLUNTEER
    method_permission_name = {"index": ACTION_REVIEW, "decide": ACTION_REVIEW}
    base_permissions = [f"can_{ACTION_REVIEW}"]

    @expose("/")
    @has_access
    def index(self):
        pending, total = volunteers.pending_registrations(current_scope(), limit=REVIEW_PAGE_SIZE)
        today = clock.today()
        starts = [workdays.local_date(v.submitted_on or v.created_on) for v in pending]
        ages = workdays.ages_in_workdays(starts, today)
        rows = [_review_row(v, waited, today) for v, waited in zip(pending, ages)]
        return self.render_template(
            "review/registrations.html", rows=rows, total=total, more=total > len(rows), today=today,
            target=workdays.review_target(), limit=workdays.review_limit())

    @expose("/decide", methods=["POST"])
    @has_access
    def decide(self):
        """Approve or reject the ticked registrations, all or none.

        Every id is loaded inside the scope; one outside it (or unknown) answers
        404 and nothing is written.
        """
        scope = current_scope()
        return decisions.decide_ticked(
            Volunteer, and_(scope_clause(Volunteer, scope), volunteers.reviewable_clause(scope)),
            volunteers.review_volunteers, none_selected=gettext("No registrations selected."),
            done=lambda decision, n: (
                gettext("%(n)s registrations approved; volunteer numbers issued.", n=n)
                if decision == volunteers.APPROVE else gettext("%(n)s registrations rejected.", n=n)))


# VolunteerApi.review: POST /api/v1/volunteer/<id>/review (officers, inside their regions).
review_volunteer_api = decisions.review_endpoint(
    volunteers.review_volunteers,
    lambda v: {"id": v.id, "status": v.status, "volunteer_no": v.volunteer_no, "reject_reason": v.reject_reason},
    summary="Approve or reject a pending registration (officers, inside their regions); "
            "an approval answers with the new volunteer number",
    result_properties={"id": {"type": "integer"}, "status": {"type": "string"},
                       "volunteer_no": {"type": "string", "nullable": True},
                       "reject_reason": {"type": "string", "nullable": True}})


class HolidayModelView(ScopedViewMixin, ModelView):
    """节假日设置: working-day exceptions (Admin only). A row wins over chinesecalendar:
    a make-up working day (ticked) or a day off (unticked), e.g. next year's holidays
    before the package knows them.

    Deviations: national reference data, so no scope filter (ScopedViewMixin still
    caps page size and sorting); the primary key is a date, which FAB passes on as
    the URL's text.
    """

    datamodel = ScopedInterface(Holiday)
    route_base = "/holidays"
    class_permission_name = RESOURCE_HOLIDAY
    method_permission_name = {**READ_WRITE, "delete": ACTION_WRITE}
    base_permissions = ["can_read", "can_write"]

    list_title = show_title = add_title = edit_title = _("Holiday Settings")
    list_columns = show_columns = add_columns = ["day", "is_workday", "name"]
    edit_columns = ["is_workday", "name"]
    order_columns = ["day"]
    base_order = ("day", "desc")
    label_columns = {"day": _("Date"), "is_workday": _("Working day"), "name": _("Holiday name")}
    # The column is NOT NULL, so FAB would make the checkbox required (unticked = invalid).
    add_form_extra_fields = edit_form_extra_fields = {
        "is_workday": BooleanField(_("Working day"),
                                   description=_("Ticked: a make-up working day. Unticked: a day off.")),
    }
    formatters_columns = {"name": lambda v: v or ""}

    def _deserialize_pk_if_composite(self, pk):
        if isinstance(pk, str):
            try:
                return date.fromisoformat(pk)
            except ValueError:
                abort(404)
        return pk
