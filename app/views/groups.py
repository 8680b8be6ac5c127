"""团体注册 (public group registration), 下级团体审核 / 团体审核 (child and root group review) and 团体信息 (a group admin's settings, card and join QR).

Rules live in app/services/groups.py; these views read forms, call the services and
show the result. The registration page is public like 注册志愿者 (no ``@has_access``);
it reuses that page's region picker (``_region_chain``, /register/regions/<code> and
static/js/registration.js) and its per-address registration limit.
"""
from __future__ import annotations

from flask import abort, flash, jsonify, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose, has_access
from flask_babel import gettext, lazy_gettext as _
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import HiddenField, PasswordField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import Length

from app.extensions import db
from app.models import GroupType, JoinPolicy, Region, ReviewStatus, VolunteerGroup
from app.security.permissions import (
    ACTION_READ, ACTION_REVIEW, ACTION_WRITE, MENU_CHILD_GROUP_REVIEW, MENU_GROUP_PROFILE, MENU_GROUP_REVIEW,
    RESOURCE_VOLUNTEER_GROUP,
)
from app.security.scope import current_scope
from app.services import groups, workdays
from app.services.errors import DomainError, ScopeViolation, ValidationFailed
from app.views import decisions, menus
from app.views.registration import _region_chain, count_registration, too_many_registrations

ACCOUNT_FIELDS = ("username", "password", "password_confirm")
# Settings an approved group keeps changing on 团体信息; the rest is fixed once approved.
EDITABLE_WHEN_APPROVED = ("contact_name", "contact_phone", "staff_headcount", "description", "join_policy",
                          "join_password")
REVIEW_PAGE_SIZE = 100
SEARCH_LIMIT = 20


class GroupSettingsForm(FlaskForm):
    """A group's data (团体注册, and 团体信息 while not approved); the service judges it.

    The join password is a ``PasswordField``: a refused form never shows it again.
    """

    name = StringField(_("Group name"), validators=[Length(max=100)])
    parent_id = HiddenField()
    parent_name = StringField(_("Parent group"), validators=[Length(max=100)])
    region_code = StringField(_("Region"), validators=[Length(max=12)])
    group_type = SelectField(_("Group type"), choices=[("", "-"), *GroupType.choices()], validate_choice=False)
    is_legal_person = RadioField(_("Legal person"), default="1", validate_choice=False, choices=[
        ("1", _("Registered as a legal person")), ("0", _("Not registered (needs a parent group)"))])
    credit_code = StringField(_("Unified social credit code"), validators=[Length(max=32)])
    contact_name = StringField(_("Contact person"), validators=[Length(max=64)])
    contact_phone = StringField(_("Contact phone"), validators=[Length(max=32)])
    staff_headcount = StringField(_("Staff headcount"), validators=[Length(max=10)])
    description = TextAreaField(_("Description"), validators=[Length(max=groups.DESCRIPTION_MAX)])
    join_policy = SelectField(_("How volunteers join"), choices=JoinPolicy.choices(), default=JoinPolicy.VERIFY,
                              validate_choice=False)
    join_password = PasswordField(_("Join password"), validators=[Length(max=64)])


class GroupRegistrationForm(GroupSettingsForm):
    username = StringField(_("Username"), validators=[Length(max=64)])
    password = PasswordField(_("Password"))
    password_confirm = PasswordField(_("Confirm password"))


def show_errors(form, err: ValidationFailed) -> list[str]:
    """Put each field's messages next to the field; return those without one (the
    service's "parent" messages go to the parent name field)."""
    general = list(err.messages) if not err.fields else []
    for name, messages in err.fields.items():
        field = getattr(form, "parent_name" if name == "parent" else name, None)
        if field is None:
            general.extend(messages)
        else:
            field.errors = list(field.errors or []) + messages
    return general


def _group_fields(form, names=groups.GROUP_FIELDS) -> dict:
    return {name: getattr(form, name).data for name in names}


class GroupRegistrationView(BaseView):
    """团体注册 at /groups/register/ (public) and the parent-group search it uses."""

    route_base = "/groups"
    default_view = "register"

    def _page(self, form, *, general_errors=(), status=200):
        return self.render_template(
            "groups/register.html", title=gettext("Register a group"), form=form,
            general_errors=general_errors, region_chain=_region_chain(form.region_code.data),
            civil_unit=GroupType.CIVIL_UNIT, password_policy=JoinPolicy.PASSWORD), status

    @expose("/register/", methods=["GET", "POST"])
    def register(self):
        form = GroupRegistrationForm()
        if request.method == "POST" and form.validate_on_submit():
            if too_many_registrations():
                abort(429)
            try:
                group = groups.register_group(**_group_fields(form),
                                              **{name: getattr(form, name).data for name in ACCOUNT_FIELDS})
                db.session.commit()
                count_registration()
            except ValidationFailed as err:
                db.session.rollback()
                general = show_errors(form, err)
                flash(gettext("The registration was not saved: please correct the marked fields."), "danger")
                return self._page(form, general_errors=general, status=400)
            except DomainError as err:
                db.session.rollback()
                return self._page(form, general_errors=err.messages, status=400)
            return self.render_template(
                "groups/registered.html", title=gettext("Register a group"), group=group,
                reviewer=groups.reviewer_of(group), username=form.username.data.strip(),
                login_url=url_for(self.appbuilder.sm.auth_view.__class__.__name__ + ".login"))
        return self._page(form, status=400 if form.errors else 200)

    @expose("/search.json")
    def search(self):
        """Approved groups matching ``q`` (name, keyword or pinyin initials) as
        ``[{id, name, region}]``, at most 20: the parent-group picker. Public data."""
        found, _more = groups.search_groups(request.args.get("q", ""), page_size=SEARCH_LIMIT)
        names = dict(db.session.execute(select(Region.id, Region.name).where(
            Region.id.in_({group.region_id for group in found}))).all()) if found else {}
        return jsonify([{"id": group.id, "name": group.name, "region": names.get(group.region_id, "")}
                        for group in found])


def _review_row(group: VolunteerGroup) -> dict:
    """What the review page shows of one group (the contact phone masked)."""
    return {
        "id": group.id,
        "name": group.name,
        "type": GroupType(group.group_type).label if group.group_type in GroupType.labels() else group.group_type,
        "parent": group.parent.name if group.parent else None,
        "region": group.region.name if group.region else group.region_code,
        "credit_code": group.credit_code if group.is_legal_person else None,
        "contact": group.contact_name or "",
        "phone_masked": group.contact_phone_masked or "",
        "headcount": group.staff_headcount,
        "description": group.description or "",
        "submitted": workdays.local_date(group.changed_on or group.created_on).isoformat(),
    }


class GroupReviewView(BaseView):
    """下级团体审核 (group admins: pending groups whose parent they administer) and
    团体审核 (officers: pending root groups of their regions) — one page, tick rows,
    then approve, or reject with a reason."""

    route_base = "/group-review"
    default_view = "index"
    class_permission_name = RESOURCE_VOLUNTEER_GROUP
    method_permission_name = {"index": ACTION_REVIEW, "decide": ACTION_REVIEW}
    base_permissions = [f"can_{ACTION_REVIEW}"]

    @expose("/")
    @has_access
    def index(self):
        scope = current_scope()
        pending, total = groups.pending_groups(scope, limit=REVIEW_PAGE_SIZE)
        # Group admins reach it as 下级团体审核, officers as 团体审核 (区域监管).
        title = gettext("Child Group Review") if scope.group_ids else gettext("Group Review")
        return self.render_template("groups/review.html", title=title,
                                    rows=[_review_row(group) for group in pending], total=total,
                                    more=total > len(pending))

    @expose("/decide", methods=["POST"])
    @has_access
    def decide(self):
        """Approve or reject the ticked groups, all or none; an id the user may not
        review (or unknown) answers 404 and nothing is written."""
        return decisions.decide_ticked(
            VolunteerGroup, groups.reviewable_groups_clause(current_scope()), groups.review_groups,
            none_selected=gettext("No groups selected."),
            done=lambda decision, n: (gettext("%(n)s groups approved.", n=n) if decision == groups.APPROVE
                                      else gettext("%(n)s groups rejected.", n=n)))


# VolunteerGroupApi.review: POST /api/v1/volunteer_group/<id>/review.
review_group_api = decisions.review_endpoint(
    groups.review_groups, lambda g: {"id": g.id, "status": g.status, "reject_reason": g.reject_reason},
    summary="Approve or reject a pending group (its parent's admins; officers for root groups of their regions)",
    result_properties={"id": {"type": "integer"}, "status": {"type": "string"},
                       "reject_reason": {"type": "string", "nullable": True}})


class GroupProfileView(BaseView):
    """团体信息: the groups the user administers directly, their review status and
    settings, 更换二维码 and the group card. Children are listed read-only; writing to
    any group the user does not administer itself answers 404."""

    route_base = "/group-admin/profile"
    default_view = "index"
    class_permission_name = RESOURCE_VOLUNTEER_GROUP
    method_permission_name = {"index": ACTION_READ, "edit": ACTION_WRITE, "rotate_token": ACTION_WRITE}
    base_permissions = [f"can_{ACTION_READ}", f"can_{ACTION_WRITE}"]

    @expose("/")
    @has_access
    def index(self):
        mine = groups.administered_groups()
        return self.render_template(
            "groups/profile.html", title=gettext("Group Profile"), groups=mine,
            children={group.id: groups.child_groups(group) for group in mine},
            reviewers={group.id: groups.reviewer_of(group) for group in mine},
            statuses=ReviewStatus.labels(), types=GroupType.labels(), policies=JoinPolicy.labels())

    @staticmethod
    def _administered(pk: int) -> VolunteerGroup:
        group = db.session.get(VolunteerGroup, pk)
        scope = current_scope()
        if group is None or not (scope.everything or group.id in scope.group_ids):
            abort(404)
        return group

    @staticmethod
    def _prefilled(group: VolunteerGroup) -> GroupSettingsForm:
        return GroupSettingsForm(data={
            "name": group.name, "parent_id": str(group.parent_id or ""),
            "parent_name": group.parent.name if group.parent else "", "region_code": group.region_code,
            "group_type": group.group_type, "is_legal_person": "1" if group.is_legal_person else "0",
            "credit_code": group.credit_code or "", "contact_name": group.contact_name or "",
            "staff_headcount": str(group.staff_headcount or ""), "description": group.description or "",
            "join_policy": group.join_policy,
        })

    def _edit_page(self, form, group, *, general_errors=(), status=200):
        return self.render_template(
            "groups/edit.html", title=gettext("Group Profile"), form=form, group=group,
            approved=group.status == ReviewStatus.APPROVED, general_errors=general_errors,
            region_chain=_region_chain(form.region_code.data), statuses=ReviewStatus.labels(),
            types=GroupType.labels(), civil_unit=GroupType.CIVIL_UNIT,
            password_policy=JoinPolicy.PASSWORD), status

    @expose("/<int:pk>/edit", methods=["GET", "POST"])
    @has_access
    def edit(self, pk):
        group = self._administered(pk)
        if request.method != "POST":
            return self._edit_page(self._prefilled(group), group)
        form = GroupSettingsForm()
        if not form.validate_on_submit():
            return self._edit_page(form, group, status=400)
        names = EDITABLE_WHEN_APPROVED if group.status == ReviewStatus.APPROVED else groups.GROUP_FIELDS
        resubmitted = group.status == ReviewStatus.REJECTED
        try:
            groups.update_group(group, **_group_fields(form, names))
            db.session.commit()
        except ScopeViolation:
            db.session.rollback()
            abort(404)
        except ValidationFailed as err:
            db.session.rollback()
            general = show_errors(form, err)
            flash(gettext("The changes were not saved: please correct the marked fields."), "danger")
            return self._edit_page(form, db.session.get(VolunteerGroup, pk), general_errors=general, status=400)
        except DomainError as err:
            db.session.rollback()
            return self._edit_page(form, db.session.get(VolunteerGroup, pk), general_errors=err.messages,
                                   status=400)
        if resubmitted:
            flash(gettext("The corrected registration has been submitted and awaits review again."), "success")
        else:
            flash(gettext("The group's settings have been saved."), "success")
        return redirect(url_for(".index"))

    @expose("/<int:pk>/rotate-token", methods=["POST"])
    @has_access
    def rotate_token(self, pk):
        """更换二维码: a new join token; QR codes showing the old one stop working."""
        group = self._administered(pk)
        try:
            groups.rotate_join_token(group)
        except ScopeViolation:
            db.session.rollback()
            abort(404)
        db.session.commit()
        flash(gettext("The group has a new QR code; the old one no longer works."), "success")
        return redirect(url_for(".index"))


def register(appbuilder: AppBuilder) -> None:
    """Add this module's views and menu entries (called by app.views.register_views)."""
    appbuilder.add_view_no_menu(GroupRegistrationView)  # 团体注册, public; linked from the login page
    appbuilder.add_view(GroupReviewView, MENU_CHILD_GROUP_REVIEW, icon="fa-check-square-o",
                        label=_("Child Group Review"), **menus.GROUP_ADMIN)
    appbuilder.add_view(GroupProfileView, MENU_GROUP_PROFILE, icon="fa-info-circle", label=_("Group Profile"),
                        **menus.GROUP_ADMIN)
    appbuilder.add_link(MENU_GROUP_REVIEW, href="/group-review/", icon="fa-check-square-o",
                        label=_("Group Review"), **menus.REGION_OVERSIGHT)
