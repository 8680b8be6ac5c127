"""用户中心 (User Center): a volunteer's own pages — 我的资料, 志愿者证 (with honors) and
the volunteer record (/my/record, the five record categories) — and the
public check of a volunteer card's QR code. Rules live in app/services/volunteers.py;
these views only read the form, call the service and show its result."""
from __future__ import annotations

import segno
from flask import flash, g, redirect, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext, lazy_gettext as _
from flask_wtf import FlaskForm
from wtforms import SelectMultipleField, StringField, widgets
from wtforms.validators import DataRequired, Length

from app.extensions import db
from app.models import SERVICE_CATEGORIES, HonorLevel, IdType, ReviewStatus
from app.security.permissions import ACTION_READ, ACTION_WRITE, RESOURCE_VOLUNTEER
from app.services import honors, hours, record_book, volunteers
from app.services.clock import to_local
from app.services.errors import DomainError, ValidationFailed
from app.views.record_book import evaluation_row, training_row

# Henan's service categories (DESIGN.md §5), in the order of SERVICE_CATEGORIES.
SERVICE_CATEGORY_LABELS = dict(zip(SERVICE_CATEGORIES, (
    _("Poverty relief"), _("Elderly and orphans"), _("Sick and disabled"), _("Emergency rescue"),
    _("Environmental protection"), _("Culture and sports"), _("Legal aid"), _("Medical and study aid"),
    _("Support for military families"), _("Public security"), _("Science popularisation"),
    _("Rural civility"), _("Community service"), _("Counselling"), _("Civility promotion"),
    _("Major events"),
)))


class ServiceProfileFields(FlaskForm):
    """The service data a volunteer gives at registration and edits in 我的资料."""

    service_categories = SelectMultipleField(
        _("Service categories"), choices=list(SERVICE_CATEGORY_LABELS.items()),
        widget=widgets.ListWidget(prefix_label=False), option_widget=widgets.CheckboxInput(),
        validate_choice=False)
    skills = StringField(_("Skills"), validators=[Length(max=255)])
    political_status = StringField(_("Political status"), validators=[Length(max=32)])
    education = StringField(_("Education"), validators=[Length(max=32)])


class ProfileForm(ServiceProfileFields):
    """我的资料: only the fields a volunteer may change (the service decides what is valid)."""

    email = StringField(_("Email"), validators=[DataRequired(message=_("A valid email address is required.")),
                                                Length(max=120)])
    phone = StringField(_("Mobile phone"), validators=[Length(max=20)])
    guardian_phone = StringField(_("Guardian phone"), validators=[Length(max=20)])


def _categories(value: str | None) -> list[str]:
    return [str(SERVICE_CATEGORY_LABELS.get(code, code)) for code in (value or "").split(",") if code]


class UserCenterView(BaseView):
    """我的资料 (/my/profile), 志愿者证 (/my/card) and the record (/my/record) of the
    signed-in volunteer."""

    route_base = "/my"
    default_view = "profile"
    class_permission_name = RESOURCE_VOLUNTEER
    method_permission_name = {"profile": ACTION_READ, "reveal": ACTION_READ, "card": ACTION_READ,
                              "record": ACTION_READ, "edit": ACTION_WRITE}
    base_permissions = ["can_read", "can_write"]

    def _volunteer(self):
        return volunteers.volunteer_of_user(g.user)

    def _no_volunteer(self, title):
        return self.render_template("user_center/no_volunteer.html", title=title)

    def _profile_page(self, volunteer, form=None, shown=None, status=200):
        if form is None:
            form = ProfileForm(data={
                "email": volunteer.email, "skills": volunteer.skills,
                "political_status": volunteer.political_status, "education": volunteer.education,
                "service_categories": [c for c in (volunteer.service_categories or "").split(",") if c],
            })
        minor = volunteers.is_minor(volunteer)
        if not minor:
            del form.guardian_phone
        return self.render_template(
            "user_center/profile.html", title=gettext("My Profile"), volunteer=volunteer, form=form,
            shown=shown, minor=minor, status_label=ReviewStatus.labels().get(volunteer.status, volunteer.status),
            id_type_label=IdType.labels().get(volunteer.id_type, volunteer.id_type),
            categories=_categories(volunteer.service_categories),
        ), status

    @expose("/profile")
    @has_access
    def profile(self):
        """我的资料: the volunteer's data, masked, with the edit form."""
        volunteer = self._volunteer()
        if volunteer is None:
            return self._no_volunteer(gettext("My Profile"))
        return self._profile_page(volunteer)

    @expose("/profile", methods=["POST"])
    @has_access
    def edit(self):
        """Save the editable fields; field errors come back on the form."""
        volunteer = self._volunteer()
        if volunteer is None:
            return self._no_volunteer(gettext("My Profile"))
        form = ProfileForm()
        if not volunteers.is_minor(volunteer):
            del form.guardian_phone
        if not form.validate():
            return self._profile_page(volunteer, form=form, status=400)
        fields = {name: form[name].data for name in volunteers.EDITABLE_FIELDS
                  if name in form and (name not in ("phone", "guardian_phone") or form[name].data)}
        try:
            volunteers.update_profile(volunteer, **fields)
        except ValidationFailed as err:
            db.session.rollback()
            for name, message in getattr(err, "errors", {}).items():
                if name in form:
                    form[name].errors = list(form[name].errors) + [message]
            volunteer = self._volunteer()
            return self._profile_page(volunteer, form=form, status=400)
        except DomainError as err:
            db.session.rollback()
            flash(str(err), "danger")
            return redirect(url_for(".profile"))
        db.session.commit()
        flash(gettext("Your profile has been saved."), "success")
        return redirect(url_for(".profile"))

    @expose("/profile/pii", methods=["POST"])
    @has_access
    def reveal(self):
        """显示完整证件号: the person's own full ID number and phones, audited."""
        volunteer = self._volunteer()
        if volunteer is None:
            return self._no_volunteer(gettext("My Profile"))
        shown = volunteers.reveal_pii(volunteer)
        db.session.commit()
        return self._profile_page(volunteer, shown=shown)

    @expose("/card")
    @has_access
    def card(self):
        """志愿者证: the electronic card with star level and the verification QR code."""
        volunteer = self._volunteer()
        if volunteer is None:
            return self._no_volunteer(gettext("Volunteer Card"))
        status_label = ReviewStatus.labels().get(volunteer.status, volunteer.status)
        if not volunteers.card_is_valid(volunteer):
            return self.render_template("user_center/card.html", title=gettext("Volunteer Card"),
                                        volunteer=volunteer, valid=False, status_label=status_label)
        verify_url = url_for("CardVerifyView.verify", token=volunteers.card_token(volunteer), _external=True)
        registered = volunteer.approved_on or volunteer.created_on
        return self.render_template(
            "user_center/card.html", title=gettext("Volunteer Card"), volunteer=volunteer, valid=True,
            status_label=status_label, stars=volunteers.star_level(volunteer.total_minutes),
            hours=f"{(volunteer.total_minutes or 0) / 60:.1f}",
            registered_on=to_local(registered).strftime("%Y-%m-%d") if registered else "",
            qr_svg=segno.make(verify_url, error="m").svg_inline(scale=4, title=gettext("Volunteer Card")),
            verify_url=verify_url,
            honors=[_honor_row(h) for h in honors.honors_of_volunteer(volunteer, limit=CARD_HONORS)],
        )

    @expose("/record")
    @has_access
    def record(self):
        """志愿服务档案: the five record categories of the signed-in volunteer — basic data
        (masked), service summary, training, honors and evaluations."""
        volunteer = self._volunteer()
        if volunteer is None:
            return self._no_volunteer(gettext("Volunteer Record"))
        book = record_book.record_of(volunteer)
        names = book.names
        registered = volunteer.approved_on or volunteer.created_on
        return self.render_template(
            "user_center/record.html", title=gettext("Volunteer Record"), volunteer=volunteer,
            status_label=ReviewStatus.labels().get(volunteer.status, volunteer.status),
            id_type_label=IdType.labels().get(volunteer.id_type, volunteer.id_type),
            gender={"M": gettext("Male"), "F": gettext("Female")}.get(volunteer.gender or "", ""),
            region=volunteer.region.name if volunteer.region else volunteer.region_code,
            registered_on=to_local(registered).strftime("%Y-%m-%d") if registered else "",
            categories=_categories(volunteer.service_categories),
            approved_hours=hours.hours_text(book.totals.approved_minutes),
            pending_hours=hours.hours_text(book.totals.pending_minutes), stars=book.totals.star_level,
            recent=[{"served_on": r.served_on.isoformat(), "project": r.project_name,
                     "position": r.position_name, "group": r.group_name,
                     "hours": hours.hours_text(r.minutes)} for r in book.recent],
            trainings=[training_row(t, names) for t in book.trainings],
            training_hours=hours.hours_text(book.training_minutes),
            honors=[_honor_row(h) for h in book.honors],
            evaluations=[evaluation_row(e, names) for e in book.evaluations],
        )


CARD_HONORS = 10  # the card shows the latest ones; the record page shows them all


def _honor_row(honor) -> dict:
    """What the card and the record page show of one honor (link to its attachment, if any)."""
    return {"id": honor.id, "title": honor.title, "level": HonorLevel.labels().get(honor.level, honor.level),
            "awarding_body": honor.awarding_body, "document_no": honor.document_no or "",
            "awarded_on": honor.awarded_on.isoformat(),
            "attachment": url_for("HonorModelView.attachment", pk=honor.id) if honor.attachment_name else None}


class CardVerifyView(BaseView):
    """Public check of a volunteer card's QR code: valid or not, with no private data.

    Deliberately without ``@has_access``: whoever scans the code is usually not
    signed in, and FAB only consults the Public role's *database* rows for
    anonymous users (not FAB_ROLES). The page reveals nothing private: the
    masked name, the star level and 有效/无效.
    """

    route_base = "/card"
    base_permissions = []  # nothing to grant: the one endpoint is public

    @expose("/verify/<string:token>")
    def verify(self, token):
        volunteer = volunteers.volunteer_for_card_token(token)
        valid = volunteers.card_is_valid(volunteer)
        context = {"valid": valid, "title": gettext("Volunteer Card")}
        if volunteer is not None:
            context.update(name=volunteers.masked_name(volunteer.real_name),
                           stars=volunteers.star_level(volunteer.total_minutes))
        return self.render_template("user_center/verify.html", **context), 200 if volunteer else 404
