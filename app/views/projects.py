"""Projects and sign-up: 团体管理 → 我的项目 (发布新项目, positions, 结项, invitations,
backfill), the public 志愿项目 list and project page, 用户中心 → 我的项目 (报名, cancel,
invitations) — issue 6.

Rules live in app/services/projects.py; these views read the request, call the
service, flash its result and commit (or roll back). Three view classes, one per
audience, all on the ``Project`` resource: group admins (``can_write``), everybody
including anonymous visitors (``can_read``: the public list and project page) and
volunteers (``can_sign_up``). Out-of-scope ids answer 404.
"""
from __future__ import annotations

from datetime import datetime

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose, has_access
from flask_babel import gettext, lazy_gettext as _
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import (
    BooleanField, FieldList, Form, FormField, RadioField, SelectField, StringField, TextAreaField, widgets,
)
from wtforms.validators import Length

from app.extensions import db
from app.models import (
    EnrollmentOrigin, EnrollmentStatus, IdType, Position, Project, RecruitScope, Region,
)
from app.security.permissions import (
    ACTION_READ, ACTION_SIGN_UP, ACTION_WRITE, MENU_GROUP_PROJECTS, MENU_MY_PROJECTS, MENU_PROJECT_SEARCH,
    RESOURCE_PROJECT,
)
from app.security.scope import current_scope, row_id
from app.services import help_requests, projects, volunteers
from app.services.clock import to_local, utcnow
from app.services.errors import DomainError, ScopeViolation, ValidationFailed
from app.views import menus
from app.views.formatters import local_minute
from app.views.pages import flash_errors, page_arg, perform
from app.views.registration import _region_chain
from app.views.user_center import SERVICE_CATEGORY_LABELS

NEW_FORM_POSITIONS = 3  # blank position rows on 发布新项目; more are added on the project page


# --- Forms (the service judges the values; these only carry them) ---


def _position_fields(base):
    """The fields of one position (岗位), on ``base`` (a plain Form or a FlaskForm)."""

    class PositionFields(base):
        name = StringField(_("Position name"), validators=[Length(max=120)])
        quota = StringField(_("Quota"), widget=widgets.NumberInput(min=1), validators=[Length(max=9)])
        shift_start = StringField(_("Shift starts"), widget=widgets.TimeInput(), validators=[Length(max=8)])
        shift_end = StringField(_("Shift ends"), widget=widgets.TimeInput(), validators=[Length(max=8)])
        default_hours = StringField(_("Default hours"), widget=widgets.NumberInput(step="0.5", min=0),
                                    validators=[Length(max=8)])
        min_age = StringField(_("Minimum age"), widget=widgets.NumberInput(min=0, max=120),
                              validators=[Length(max=3)])
        max_age = StringField(_("Maximum age"), widget=widgets.NumberInput(min=0, max=120),
                              validators=[Length(max=3)])
        allows_minors = BooleanField(_("Minors (under 18) may take this position"))

    return PositionFields


PositionRow = _position_fields(Form)
PositionForm = _position_fields(FlaskForm)


class ProjectForm(FlaskForm):
    """发布新项目 / edit: a project's details; ``positions`` only on 发布新项目."""

    name = StringField(_("Project name"), validators=[Length(max=projects.NAME_MAX)])
    category = SelectField(_("Service category"), validate_choice=False,
                           choices=[("", "-"), *SERVICE_CATEGORY_LABELS.items()])
    description = TextAreaField(_("Description"), validators=[Length(max=projects.TEXT_MAX)])
    risk_notice = TextAreaField(_("Risk notice"), validators=[Length(max=projects.TEXT_MAX)])
    address = StringField(_("Address"), validators=[Length(max=projects.ADDRESS_MAX)])
    region_code = StringField(_("Region"), validators=[Length(max=12)])
    starts_at = StringField(_("Starts at"), widget=widgets.DateTimeLocalInput(), validators=[Length(max=25)])
    ends_at = StringField(_("Ends at"), widget=widgets.DateTimeLocalInput(), validators=[Length(max=25)])
    recruit_scope = RadioField(_("Recruitment scope"), choices=RecruitScope.choices(), default=RecruitScope.ANYONE,
                               validate_choice=False)
    is_backfill = BooleanField(_("Backfill Recruitment"))


class NewProjectForm(ProjectForm):
    positions = FieldList(FormField(PositionRow), min_entries=NEW_FORM_POSITIONS, max_entries=20)


def _show_errors(form, err: ValidationFailed) -> list[str]:
    """Put each field's messages next to the field (``positions-<i>-<field>`` in the
    position rows); return the messages without a field."""
    general = list(err.messages) if not err.fields else []
    for name, messages in err.fields.items():
        field = None
        if name.startswith("positions-") and hasattr(form, "positions"):
            _prefix, index, key = name.split("-", 2)
            if index.isdigit() and int(index) < len(form.positions.entries):
                field = getattr(form.positions.entries[int(index)].form, key, None)
        else:
            field = getattr(form, name, None)
        if field is None:
            general.extend(messages)
        else:
            field.errors = list(field.errors or []) + messages
    return general


def _project_values(form) -> dict:
    return {name: getattr(form, name).data for name in projects.PROJECT_FIELDS}


def _position_values(form) -> dict:
    return {name: getattr(form, name).data for name in projects.POSITION_FIELDS}


def _local_input(value: datetime | None) -> str:
    """A stored UTC time as the value of a datetime-local input."""
    return to_local(value).strftime("%Y-%m-%dT%H:%M") if value else ""




# --- What pages show of a project ---


def _shift(position: Position) -> str:
    if position.shift_start is None or position.shift_end is None:
        return ""
    return f"{position.shift_start:%H:%M}–{position.shift_end:%H:%M}"


def _ages(position: Position) -> str:
    low, high = position.min_age, position.max_age
    if low is not None and high is not None:
        text = gettext("%(low)s to %(high)s years", low=low, high=high)
    elif low is not None:
        text = gettext("%(low)s years and over", low=low)
    elif high is not None:
        text = gettext("%(high)s years and under", high=high)
    else:
        text = gettext("No limit")
    return text


def position_facts(position: Position) -> dict:
    """One position as the project pages show it."""
    return {
        "id": position.id, "name": position.name, "quota": position.quota,
        "enrolled": position.enrolled_count, "remaining": position.remaining, "shift": _shift(position),
        "hours": f"{(position.default_minutes or 0) / 60:g}" if position.default_minutes else "",
        "ages": _ages(position),
        "minors": gettext("Minors allowed") if position.allows_minors else gettext("Adults only"),
        "allows_minors": position.allows_minors,
    }


def project_facts(project: Project, now: datetime | None = None) -> dict:
    """One project as the lists and pages show it (relations loaded by the caller)."""
    status = projects.project_status(project, now)
    return {
        "id": project.id, "name": project.name, "group": project.group.name,
        "category": str(SERVICE_CATEGORY_LABELS.get(project.category, project.category)),
        "region": project.region.name if project.region else project.region_code,
        "address": project.address or "", "description": project.description or "",
        "risk_notice": project.risk_notice or "",
        "starts": local_minute(project.starts_at), "ends": local_minute(project.ends_at),
        "closed_on": local_minute(project.closed_on) if project.closed_on else "",
        "status": status, "status_label": projects.ProjectStatus(status).label,
        "recruit_scope": project.recruit_scope,
        "recruit_label": RecruitScope.labels().get(project.recruit_scope, project.recruit_scope),
        "is_backfill": project.is_backfill, "is_closed": status == projects.ProjectStatus.CLOSED,
        "remaining": sum(p.remaining for p in project.positions),
        "quota": sum(p.quota for p in project.positions),
        "contact_name": project.contact_name or "", "contact_phone": project.contact_phone_masked or "",
    }


# --- 团体管理 → 我的项目 ---


class GroupProjectsView(BaseView):
    """团体管理 → 我的项目 (/group-admin/projects/): the projects of the groups the user
    administers directly; 发布新项目; each project's page with its positions (计时),
    edit, 结项, 邀请 and, for 时间补录招募, adding volunteers by name + ID."""

    route_base = "/group-admin/projects"
    default_view = "index"
    class_permission_name = RESOURCE_PROJECT
    method_permission_name = {name: ACTION_WRITE for name in (
        "index", "new", "show", "edit", "add_position", "edit_position", "close", "invite", "add_volunteer")}
    base_permissions = [f"can_{ACTION_WRITE}"]

    def _project(self, project_id) -> Project:
        try:
            return projects.administered_project(project_id)
        except ScopeViolation:
            abort(404)

    def _position(self, project: Project, position_id) -> Position:
        pk = row_id(position_id)
        position = next((p for p in project.positions if p.id == pk), None)
        if position is None:
            abort(404)
        return position

    @expose("/")
    @has_access
    def index(self):
        rows, more = projects.group_projects(current_scope(), page=page_arg())
        now = utcnow()
        # Region names in one query (positions and groups are loaded by the service).
        projects_regions(rows)
        return self.render_template(
            "projects/admin_list.html", title=gettext("My Projects"),
            rows=[project_facts(p, now) for p in rows], page=page_arg(), more=more,
            can_publish=bool(projects.publishing_groups()))

    @expose("/new", methods=["GET", "POST"])
    @has_access
    def new(self):
        """发布新项目: first the group (when the user administers several), then the form."""
        groups = projects.publishing_groups()
        if not groups:
            flash(gettext("You administer no approved group: only approved groups publish projects."), "warning")
            return redirect(url_for(".index"))
        group_id = row_id(request.values.get("group")) if request.values.get("group") else None
        if group_id is None and len(groups) == 1:
            group_id = groups[0].id
        group = next((grp for grp in groups if grp.id == group_id), None)
        if group is None:
            if request.values.get("group"):
                abort(404)
            return self.render_template("projects/choose_group.html", title=gettext("Publish New Project"),
                                        groups=groups)
        # 求助认领 → turn into a project: a request this group claimed prefills the form and
        # is linked to the project (converted) in the same transaction.
        help_request = None
        if request.values.get("from_help"):
            try:
                help_request = help_requests.convertible(request.values.get("from_help"), group)
            except ScopeViolation:
                abort(404)
        form = NewProjectForm()
        status = 200
        if request.method == "GET":
            form.region_code.data = group.region_code
            for name, value in (help_requests.project_prefill(help_request) if help_request else {}).items():
                getattr(form, name).data = value
        elif form.validate_on_submit():
            try:
                project = projects.create_project(
                    group, positions=[_position_values(row.form) for row in form.positions.entries],
                    **_project_values(form))
                if help_request is not None:
                    help_requests.link_project(help_request, project)
            except ValidationFailed as err:
                db.session.rollback()
                general = _show_errors(form, err)
                flash(gettext("The project was not published: please correct the marked fields."), "danger")
                for message in general:
                    flash(message, "danger")
                status = 400
            except DomainError as err:
                flash_errors(err)
                status = 400
            else:
                db.session.commit()
                flash(gettext("The project %(name)s has been published.", name=project.name), "success")
                return redirect(url_for(".show", project_id=project.id))
        else:
            status = 400
        return self.render_template(
            "projects/form.html", title=gettext("Publish New Project"), form=form, group=group, project=None,
            region_chain=_group_region_chain(group, form.region_code.data), frozen=False,
            from_help=help_request.id if help_request else None), status

    @expose("/<project_id>")
    @has_access
    def show(self, project_id):
        project = self._project(project_id)
        enrolled = projects.enrolled_by_position(project)
        facts = project_facts(project)
        positions = [{**position_facts(p), "enrollments": [{
            "id": e.id, "name": e.volunteer_name, "volunteer_no": e.volunteer_no or "",
            "status": e.status, "status_label": EnrollmentStatus.labels().get(e.status, e.status),
            "origin_label": EnrollmentOrigin.labels().get(e.origin, e.origin),
            "since": local_minute(e.changed_on or e.created_on)} for e in enrolled.get(p.id, [])]}
            for p in project.positions]
        can_invite = not facts["is_closed"] and project.recruit_scope == RecruitScope.ANYONE
        can_add = not facts["is_closed"] and project.is_backfill
        return self.render_template(
            "projects/admin_show.html", title=project.name, project=facts, positions=positions,
            can_invite=can_invite, can_add=can_add, id_types=IdType.choices(),
            frozen=projects.project_region_frozen(project))

    @expose("/<project_id>/edit", methods=["GET", "POST"])
    @has_access
    def edit(self, project_id):
        project = self._project(project_id)
        if project.is_closed():
            flash(gettext("This project is closed: it accepts no changes."), "warning")
            return redirect(url_for(".show", project_id=project.id))
        form = ProjectForm(obj=None) if request.method == "POST" else ProjectForm(
            data={"name": project.name, "category": project.category, "description": project.description or "",
                  "risk_notice": project.risk_notice or "", "address": project.address or "",
                  "region_code": project.region_code, "starts_at": _local_input(project.starts_at),
                  "ends_at": _local_input(project.ends_at), "recruit_scope": project.recruit_scope,
                  "is_backfill": project.is_backfill})
        status = 200
        frozen = projects.project_region_frozen(project)
        if request.method == "POST":
            if form.validate_on_submit():
                values = _project_values(form)
                if frozen:  # the frozen fields are not on the form; keep them
                    values.pop("region_code")
                    values.pop("is_backfill")
                try:
                    projects.update_project(project, **values)
                except ValidationFailed as err:
                    db.session.rollback()
                    for message in _show_errors(form, err):
                        flash(message, "danger")
                    flash(gettext("The project was not saved: please correct the marked fields."), "danger")
                    status = 400
                except DomainError as err:
                    flash_errors(err)
                    status = 400
                else:
                    db.session.commit()
                    flash(gettext("The project has been saved."), "success")
                    return redirect(url_for(".show", project_id=project.id))
            else:
                status = 400
        project = self._project(project_id)  # reloaded after a rollback
        return self.render_template(
            "projects/form.html", title=gettext("Edit project"), form=form, group=project.group,
            project=project, region_chain=_group_region_chain(project.group, form.region_code.data),
            frozen=frozen), status

    def _position_page(self, project, position, form, status=200):
        return self.render_template(
            "projects/position_form.html", title=gettext("Position"), form=form, project=project,
            position=position), status

    @expose("/<project_id>/positions/new", methods=["GET", "POST"])
    @has_access
    def add_position(self, project_id):
        project = self._project(project_id)
        form = PositionForm()
        if request.method == "POST":
            if not form.validate_on_submit():
                return self._position_page(project, None, form, 400)
            try:
                projects.add_position(project, **_position_values(form))
            except ValidationFailed as err:
                db.session.rollback()
                for message in _show_errors(form, err):
                    flash(message, "danger")
                return self._position_page(self._project(project_id), None, form, 400)
            except DomainError as err:
                flash_errors(err)
                return redirect(url_for(".show", project_id=project_id))
            db.session.commit()
            flash(gettext("The position has been added."), "success")
            return redirect(url_for(".show", project_id=project.id))
        if project.is_closed():
            flash(gettext("This project is closed: it accepts no changes."), "warning")
            return redirect(url_for(".show", project_id=project.id))
        return self._position_page(project, None, form)

    @expose("/<project_id>/positions/<position_id>/edit", methods=["GET", "POST"])
    @has_access
    def edit_position(self, project_id, position_id):
        project = self._project(project_id)
        position = self._position(project, position_id)
        if request.method == "POST":
            form = PositionForm()
            if not form.validate_on_submit():
                return self._position_page(project, position, form, 400)
            try:
                projects.update_position(position, **_position_values(form))
            except ValidationFailed as err:
                db.session.rollback()
                for message in _show_errors(form, err):
                    flash(message, "danger")
                project = self._project(project_id)
                return self._position_page(project, self._position(project, position_id), form, 400)
            except DomainError as err:
                flash_errors(err)
                return redirect(url_for(".show", project_id=project_id))
            db.session.commit()
            flash(gettext("The position has been saved."), "success")
            return redirect(url_for(".show", project_id=project.id))
        if project.is_closed():
            flash(gettext("This project is closed: it accepts no changes."), "warning")
            return redirect(url_for(".show", project_id=project.id))
        form = PositionForm(data={
            "name": position.name, "quota": str(position.quota),
            "shift_start": f"{position.shift_start:%H:%M}" if position.shift_start else "",
            "shift_end": f"{position.shift_end:%H:%M}" if position.shift_end else "",
            "default_hours": f"{position.default_minutes / 60:g}" if position.default_minutes else "",
            "min_age": "" if position.min_age is None else str(position.min_age),
            "max_age": "" if position.max_age is None else str(position.max_age),
            "allows_minors": position.allows_minors})
        return self._position_page(project, position, form)

    @expose("/<project_id>/close", methods=["POST"])
    @has_access
    def close(self, project_id):
        """结项 by hand: the project accepts nothing new from now on."""
        project = self._project(project_id)
        def run():
            projects.close_project(project)
            return gettext("The project %(name)s is closed.", name=project.name)

        return perform(run, url_for(".show", project_id=project_id))

    def _volunteer_from_form(self):
        return projects.find_volunteer(
            (request.form.get("real_name") or "")[:64], volunteer_no=(request.form.get("volunteer_no") or "")[:20],
            id_type=request.form.get("id_type") or IdType.RESIDENT, id_number=(request.form.get("id_number") or "")[:32])

    @expose("/<project_id>/invite", methods=["POST"])
    @has_access
    def invite(self, project_id):
        """邀请: invite a volunteer (real name + volunteer number or ID number) to a position."""
        project = self._project(project_id)
        position = self._position(project, request.form.get("position"))
        def run():
            enrollment = projects.invite(position, self._volunteer_from_form())
            return gettext("%(name)s has been invited to %(position)s.", name=enrollment.volunteer_name,
                           position=position.name)

        return perform(run, url_for(".show", project_id=project_id) + "#invite")

    @expose("/<project_id>/add-volunteer", methods=["POST"])
    @has_access
    def add_volunteer(self, project_id):
        """时间补录招募: add a volunteer by real name + ID number straight into a position."""
        project = self._project(project_id)
        position = self._position(project, request.form.get("position"))
        def run():
            enrollment = projects.add_to_backfill(position, self._volunteer_from_form())
            return gettext("%(name)s was added to %(position)s.", name=enrollment.volunteer_name,
                           position=position.name)

        return perform(run, url_for(".show", project_id=project_id) + "#add-volunteer")


def projects_regions(rows: list[Project]) -> None:
    """Load the regions of ``rows`` in one query (later ``project.region`` reads hit the identity map)."""
    ids = {p.region_id for p in rows}
    if ids:
        db.session.scalars(select(Region).where(Region.id.in_(ids))).all()


def _group_region_chain(group, code: str | None):
    """The cascading region selects for a project of ``group``: rooted at the group's
    region (the only choice at its level), so the picker offers its region and below."""
    chain = _region_chain(code if code else group.region_code)
    depth = len(group.region_path.rstrip("/").split("/")) - 1
    if len(chain) <= depth or not any(r.code == group.region_code for r in chain[depth][0]):
        chain = _region_chain(group.region_code)
    rooted = chain[depth:]
    options, _chosen = rooted[0]
    rooted[0] = ([r for r in options if r.code == group.region_code], group.region_code)
    return rooted


# --- The public 志愿项目 list and project page ---


class PublicProjectsView(BaseView):
    """志愿项目 (/public/projects/): the public project list and search, and a project's
    page with its positions, remaining places and 报名 buttons. No login needed; never
    a backfill project (its page answers 404)."""

    route_base = "/public/projects"
    default_view = "index"
    class_permission_name = RESOURCE_PROJECT
    method_permission_name = {"index": ACTION_READ, "show": ACTION_READ}
    base_permissions = [f"can_{ACTION_READ}"]

    @expose("/")
    @has_access
    def index(self):
        args = {key: (request.args.get(key) or "").strip()[:50] for key in ("q", "region", "category", "status")}
        page = page_arg()
        rows, more = projects.search_public(keyword=args["q"], region=args["region"], category=args["category"],
                                            status=args["status"], page=page)
        now = utcnow()
        return self.render_template(
            "projects/public_list.html", title=gettext("Volunteer Projects"), args=args, page=page, more=more,
            rows=[project_facts(p, now) for p in rows], categories=list(SERVICE_CATEGORY_LABELS.items()),
            statuses=projects.ProjectStatus.choices(), searched=any(args.values()),
            my_projects=_is_volunteer())

    @expose("/<project_id>")
    @has_access
    def show(self, project_id):
        try:
            project = projects.public_project(project_id)
        except ScopeViolation:
            abort(404)
        volunteer = _volunteer()
        mine = {}
        if volunteer is not None:
            mine = projects.my_statuses(volunteer, project)
        facts = project_facts(project)
        return self.render_template(
            "projects/public_show.html", title=project.name, project=facts,
            positions=[{**position_facts(p), "mine": mine.get(p.id)} for p in project.positions],
            signed_in=getattr(g.user, "is_authenticated", False), can_sign_up=_can_sign_up(),
            volunteer=volunteer, minor=projects.needs_guardian(volunteer),
            guardian_masked=(volunteer.guardian_phone_masked or "") if volunteer is not None else "",
            login_url=url_for(self.appbuilder.sm.auth_view.__class__.__name__ + ".login", next=request.path))


def _volunteer():
    if not getattr(g.user, "is_authenticated", False):
        return None
    return volunteers.volunteer_of_user(g.user)


def _can_sign_up() -> bool:
    from flask import current_app

    return current_app.appbuilder.sm.has_access(f"can_{ACTION_SIGN_UP}", RESOURCE_PROJECT)


def _is_volunteer() -> bool:
    return getattr(g.user, "is_authenticated", False) and _can_sign_up()


# --- 用户中心 → 我的项目 and 报名 ---


class MyProjectsView(BaseView):
    """用户中心 → 我的项目 (/my/projects/): my sign-ups and invitations, 参加更多项目,
    报名 (POST from a project page), 取消报名, accepting or declining an invitation."""

    route_base = "/my/projects"
    default_view = "index"
    class_permission_name = RESOURCE_PROJECT
    method_permission_name = {name: ACTION_SIGN_UP for name in ("index", "sign_up", "cancel", "accept", "decline")}
    base_permissions = [f"can_{ACTION_SIGN_UP}"]

    @expose("/")
    @has_access
    def index(self):
        volunteer = volunteers.volunteer_of_user(g.user)
        if volunteer is None:
            return self.render_template("user_center/no_volunteer.html", title=gettext("My Projects"))
        page = page_arg()
        rows, more = projects.my_enrollments(volunteer, page=page)
        now = utcnow()
        items = []
        for e in rows:
            status = projects.project_status(e.project, now)
            items.append({
                "id": e.id, "project_id": e.project_id, "project": e.project.name, "group": e.project.group.name,
                "position": e.position.name, "shift": _shift(e.position),
                "starts": local_minute(e.project.starts_at), "ends": local_minute(e.project.ends_at),
                "status": e.status, "status_label": EnrollmentStatus.labels().get(e.status, e.status),
                "project_status": status, "project_status_label": projects.ProjectStatus(status).label,
                "can_cancel": e.status == EnrollmentStatus.ACCEPTED and now < projects.cancel_deadline(e.position),
                "public": not e.project.is_backfill,
            })
        return self.render_template(
            "projects/my_projects.html", title=gettext("My Projects"), rows=items, page=page, more=more,
            minor=projects.needs_guardian(volunteer), guardian_masked=volunteer.guardian_phone_masked or "")

    @expose("/sign-up/<position_id>", methods=["POST"])
    @has_access
    def sign_up(self, position_id):
        """报名 for one position (from the project page); a minor adds the guardian's number and consent."""
        try:
            position = projects.public_position(position_id)
        except ScopeViolation:
            abort(404)
        project_id = position.project_id
        back = url_for("PublicProjectsView.show", project_id=project_id)
        try:
            enrollment = projects.sign_up(
                volunteers.volunteer_of_user(g.user), position,
                guardian_phone=(request.form.get("guardian_phone") or "")[:20] or None,
                guardian_consent=bool(request.form.get("guardian_consent")))
        except ScopeViolation:
            db.session.rollback()
            abort(404)
        except DomainError as err:
            flash_errors(err)
            return redirect(back + f"#position-{position_id}")
        db.session.commit()
        flash(gettext("You have signed up for %(position)s of %(project)s.", position=enrollment.position.name,
                      project=enrollment.project.name), "success")
        return redirect(url_for(".index"))

    def _mine(self, enrollment_id):
        try:
            return projects.my_enrollment(volunteers.volunteer_of_user(g.user), enrollment_id)
        except ScopeViolation:
            abort(404)

    @expose("/<enrollment_id>/cancel", methods=["POST"])
    @has_access
    def cancel(self, enrollment_id):
        """取消报名: before the first shift; the place is freed."""
        enrollment = self._mine(enrollment_id)
        def run():
            projects.cancel(enrollment.volunteer, enrollment)
            return gettext("Your sign-up has been cancelled.")

        return perform(run, url_for(".index"))

    @expose("/<enrollment_id>/accept", methods=["POST"])
    @has_access
    def accept(self, enrollment_id):
        enrollment = self._mine(enrollment_id)
        try:
            projects.accept_invitation(
                enrollment.volunteer, enrollment,
                guardian_phone=(request.form.get("guardian_phone") or "")[:20] or None,
                guardian_consent=bool(request.form.get("guardian_consent")))
        except DomainError as err:
            flash_errors(err)
        else:
            db.session.commit()
            flash(gettext("You have accepted the invitation."), "success")
        return redirect(url_for(".index"))

    @expose("/<enrollment_id>/decline", methods=["POST"])
    @has_access
    def decline(self, enrollment_id):
        enrollment = self._mine(enrollment_id)
        def run():
            projects.decline_invitation(enrollment.volunteer, enrollment)
            return gettext("You have declined the invitation.")

        return perform(run, url_for(".index"))


def register(appbuilder: AppBuilder) -> None:
    """Add the project pages and their menu entries."""
    appbuilder.add_view(GroupProjectsView, MENU_GROUP_PROJECTS, href="/group-admin/projects/", icon="fa-flag",
                        label=_("My Projects"), **menus.GROUP_ADMIN)
    appbuilder.add_view(MyProjectsView, MENU_MY_PROJECTS, href="/my/projects/", icon="fa-flag",
                        label=_("My Projects"), **menus.USER_CENTER)
    appbuilder.add_view(PublicProjectsView, MENU_PROJECT_SEARCH, href="/public/projects/", icon="fa-search",
                        label=_("Volunteer Projects"))
