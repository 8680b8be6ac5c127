"""注册志愿者 (Register as volunteer): the public registration page, the correction of a
rejected registration, and the region picker's JSON. Rules live in
app/services/volunteers.py; these views read the form, call the service, show the result.

The page is public the way FAB's own login and registration views are: its methods
carry no ``@has_access``, so anonymous visitors can GET and POST it (FAB asks the
database, not FAB_ROLES, for the Public role's permissions).
"""
from __future__ import annotations

from flask import abort, current_app, flash, g, jsonify, redirect, request, url_for
from flask_appbuilder import BaseView, expose
from flask_appbuilder.api import expose as api_expose, protect, safe
from flask_babel import gettext, lazy_gettext as _
from sqlalchemy import select
from wtforms import BooleanField, PasswordField, SelectField, StringField
from limits import RateLimitItemPerHour
from wtforms.validators import Length

from app.extensions import db
from app.models import IdType, Region, ReviewStatus
from app.services import regions, volunteers
from app.security.hardening import client_address, rate_limiter
from app.security.scope import current_scope
from app.services.errors import DomainError, ScopeViolation, ValidationFailed
from app.views.pages import show_field_errors
from app.views.user_center import ServiceProfileFields

# Form fields handed to the services, by name (the REST API uses the same names).
PERSON_FIELDS = ("real_name", "id_type", "id_number", "birth_date", "gender", "email", "mobile",
                 "region_code", "guardian_name", "guardian_relation", "guardian_phone", "guardian_consent",
                 "service_categories", "skills", "political_status", "education")
ACCOUNT_FIELDS = ("username", "password", "password_confirm")
# ID types whose holders enter birth date and gender (the number does not carry them).
ENTERED_BIRTH_TYPES = (IdType.PASSPORT, IdType.FOREIGN_PR)


def _registration_limit() -> RateLimitItemPerHour:
    """Accounts one client address may create per hour (no captcha: this slows bulk sign-ups)."""
    return RateLimitItemPerHour(int(current_app.config.get("REGISTRATIONS_PER_ADDRESS_PER_HOUR", 20)))


def too_many_registrations() -> bool:
    """True when this address has used up its registrations (volunteer and group accounts
    alike); shares the login throttle's storage."""
    limiter = rate_limiter()
    return limiter is not None and not limiter.test(
        _registration_limit(), "registrations/address", client_address() or "-")


def count_registration() -> None:
    """Count one account created from this address (注册志愿者 and 团体注册)."""
    limiter = rate_limiter()
    if limiter is not None:
        limiter.hit(_registration_limit(), "registrations/address", client_address() or "-")


class RegistrationForm(ServiceProfileFields):
    """The registration form; the service decides what is valid, the form only reads it.

    Passwords are ``PasswordField``: a refused form never shows them again.
    """

    username = StringField(_("Username"), validators=[Length(max=64)])
    password = PasswordField(_("Password"))
    password_confirm = PasswordField(_("Confirm password"))
    real_name = StringField(_("Real name"), validators=[Length(max=64)])
    id_type = SelectField(_("ID type"), choices=IdType.choices, default=IdType.RESIDENT, validate_choice=False)
    id_number = StringField(_("ID number"), validators=[Length(max=32)])
    birth_date = StringField(_("Birth date"), render_kw={"type": "date"})
    gender = SelectField(_("Gender"), choices=[("", "-"), ("M", _("Male")), ("F", _("Female"))],
                         validate_choice=False)
    email = StringField(_("Email"), validators=[Length(max=120)])
    mobile = StringField(_("Mobile phone"), validators=[Length(max=20)])
    region_code = StringField(_("Home region"), validators=[Length(max=12)])
    guardian_name = StringField(_("Guardian"), validators=[Length(max=64)])
    guardian_relation = StringField(_("Guardian relation"), validators=[Length(max=32)])
    guardian_phone = StringField(_("Guardian phone"), validators=[Length(max=20)])
    guardian_consent = BooleanField(_("My guardian agrees to this registration"))


def _region_chain(code: str | None) -> list[tuple[list[Region], str]]:
    """The cascading selects to show: per level, the options and the chosen code.

    Re-rendering a refused form keeps the chosen home region without JavaScript.
    """
    chain: list[tuple[list[Region], str]] = [(regions.child_regions(None), "")]
    region = db.session.scalar(select(Region).where(Region.code == code)) if code else None
    if region is None:
        return chain
    codes = region.path.rstrip("/").split("/")
    for depth, chosen in enumerate(codes):
        chain[depth] = (chain[depth][0], chosen)
        children = regions.child_regions(chosen)
        if children:
            chain.append((children, ""))
    return chain


class RegistrationView(BaseView):
    """注册志愿者 at /register/: public sign-up; a signed-in volunteer whose registration
    was rejected corrects and resubmits it here."""

    route_base = "/register"
    default_view = "register"

    def _page(self, form, *, resubmit=None, general_errors=(), status=200):
        return self.render_template(
            "registration/register.html", title=gettext("Register as volunteer"), form=form,
            resubmit=resubmit, general_errors=general_errors,
            region_chain=_region_chain(form.region_code.data),
            entered_birth_types=[str(t) for t in ENTERED_BIRTH_TYPES],
        ), status

    @staticmethod
    def _person(form) -> dict:
        return {name: getattr(form, name).data for name in PERSON_FIELDS}

    @expose("/", methods=["GET", "POST"])
    def register(self):
        user = g.user if getattr(g.user, "is_authenticated", False) else None
        if user is not None:
            return self._signed_in(user)
        form = RegistrationForm()
        if request.method == "POST" and form.validate_on_submit():
            if too_many_registrations():
                abort(429)
            try:
                volunteers.register_account(**self._person(form),
                                            **{name: getattr(form, name).data for name in ACCOUNT_FIELDS})
                db.session.commit()
                count_registration()
            except ValidationFailed as err:
                db.session.rollback()
                general = show_field_errors(form, err)
                flash(gettext("The registration was not saved: please correct the marked fields."), "danger")
                return self._page(form, general_errors=general, status=400)
            except DomainError as err:
                db.session.rollback()
                return self._page(form, general_errors=err.messages, status=400)
            flash(gettext("Your registration has been submitted and awaits review, which takes 3 to 5 "
                          "working days. You can log in meanwhile."), "success")
            return redirect(url_for(self.appbuilder.sm.auth_view.__class__.__name__ + ".login"))
        return self._page(form, status=400 if form.errors else 200)

    def _signed_in(self, user):
        """A signed-in user: a rejected volunteer corrects the registration; others see where they stand."""
        volunteer = volunteers.volunteer_of_user(user)
        if volunteer is None or volunteer.status != ReviewStatus.REJECTED:
            return self.render_template("registration/signed_in.html", title=gettext("Register as volunteer"),
                                        volunteer=volunteer, statuses=ReviewStatus.labels())
        if request.method == "POST":
            form = RegistrationForm()
            if form.validate_on_submit():
                try:
                    volunteers.resubmit_registration(volunteer, **self._person(form))
                    db.session.commit()
                except ValidationFailed as err:
                    db.session.rollback()
                    general = show_field_errors(form, err)
                    flash(gettext("The registration was not saved: please correct the marked fields."), "danger")
                    return self._page(form, resubmit=volunteer, general_errors=general, status=400)
                except DomainError as err:
                    db.session.rollback()
                    return self._page(form, resubmit=volunteer, general_errors=err.messages, status=400)
                flash(gettext("Your corrected registration has been submitted and awaits review again."),
                      "success")
                return redirect(url_for("RegistrationView.register"))
        else:
            # Prefilled with what was submitted; ID number and phones stay masked (left
            # empty, they keep the stored values).
            form = RegistrationForm(data={
                "real_name": volunteer.real_name, "id_type": volunteer.id_type,
                "birth_date": volunteer.birth_date.isoformat() if volunteer.birth_date else "",
                "gender": volunteer.gender or "", "email": volunteer.email,
                "region_code": volunteer.region_code,
                "service_categories": [c for c in (volunteer.service_categories or "").split(",") if c],
                "skills": volunteer.skills, "political_status": volunteer.political_status,
                "education": volunteer.education, "guardian_name": volunteer.guardian_name,
                "guardian_relation": volunteer.guardian_relation,
                "guardian_consent": volunteer.guardian_consent_on is not None,
            })
        return self._page(form, resubmit=volunteer, status=400 if form.errors else 200)

    @expose("/regions/<parent>")
    def regions(self, parent):
        """The cascading region picker: children of ``parent`` (a code, or "root" for the
        provinces) as ``[{id, code, name}]``. Public reference data."""
        if parent != "root" and not (parent.isdigit() and len(parent) in (6, 9, 12)):
            return jsonify(message=gettext("Unknown region code %(code)s.", code=parent)), 404
        return jsonify([{"id": r.id, "code": r.code, "name": r.name}
                        for r in regions.child_regions(None if parent == "root" else parent)])


@api_expose("/", methods=("POST",))
@protect()
@safe
def register(self):  # named as VolunteerApi's attribute: @protect maps permissions by __name__
    """Register a volunteer and their account, validated exactly like 注册志愿者.
    ---
    post:
      summary: Register a pending volunteer with a login (admins; officers for home regions in their regions)
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [username, password, real_name, id_number, email, mobile, region_code]
              properties:
                username: {type: string}
                password: {type: string}
                real_name: {type: string}
                id_type: {type: string, enum: [resident, hmt_permit, passport, foreign_pr]}
                id_number: {type: string}
                birth_date: {type: string, format: date}
                gender: {type: string, enum: [M, F]}
                email: {type: string}
                mobile: {type: string}
                region_code: {type: string}
                guardian_name: {type: string}
                guardian_relation: {type: string}
                guardian_phone: {type: string}
                guardian_consent: {type: boolean}
      responses:
        201:
          description: Registered, pending review; the body carries the volunteer id
          content:
            application/json:
              schema:
                type: object
                properties:
                  id: {type: integer, description: the new volunteer's id}
        400:
          description: '{"message": {field: [messages]}} naming every refused field'
        401:
          $ref: '#/components/responses/401'
        404:
          description: The home region lies outside the officer's regions
    """
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return self.response_400(message=gettext("Send the registration as a JSON object."))
    wrong = [name for name in (*ACCOUNT_FIELDS, *PERSON_FIELDS)
             if name in body and body[name] is not None
             and not isinstance(body[name], bool if name == "guardian_consent" else
                                (list, str) if name == "service_categories" else str)]
    if wrong:
        return self.response_400(message={name: [gettext("Wrong type.")] for name in wrong})
    fields = {name: body.get(name) for name in (*ACCOUNT_FIELDS, *PERSON_FIELDS) if name in body}
    fields.setdefault("username", "")
    fields.setdefault("password", "")
    try:
        volunteer = volunteers.register_account(**fields, within=current_scope())
    except ValidationFailed as err:
        db.session.rollback()
        return self.response_400(message=err.fields or err.messages)
    except ScopeViolation:
        db.session.rollback()
        return self.response_404()
    except DomainError as err:
        db.session.rollback()
        return self.response_400(message=err.messages)
    db.session.commit()
    return self.response(201, id=volunteer.id)


register_volunteer_api = register  # VolunteerApi.register (app/views/api.py)
