"""Portal pages over scoped models: 区域监管 (officers read their region) and 表彰激励.

Every scoped view declares its scope at the top (``base_filters`` and the
related-field filters); ScopedViewMixin closes the holes FAB leaves (actions,
page size, sorting, POSTed foreign keys).
"""
from urllib.parse import quote

from flask import abort, flash, make_response, redirect, request, url_for
from flask_appbuilder import ModelView, expose, has_access
from flask_appbuilder.actions import action
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_babel import gettext, lazy_gettext as _
from flask_wtf.file import FileField
from wtforms import BooleanField, SelectField, StringField
from wtforms.validators import Optional as OptionalValidator

from app.extensions import begin_write, db
from app.models import (
    AuditEvent, CivilUnit, GroupType, Honor, HonorLevel, JoinPolicy, Project, RecordSource, RecordStatus,
    RecruitScope, Region, ReviewStatus, ServiceRecord, Volunteer, VolunteerGroup,
)
from app.security.id_search import VolunteerInterface
from app.security.permissions import (
    ACTION_CORRECT, ACTION_FLAG, ACTION_READ, ACTION_WRITE, ACTION_SUSPEND, ACTION_VIEW_PII, READ_ONLY, READ_WRITE, RESOURCE_AUDIT_EVENT,
    RESOURCE_CIVIL_UNIT, RESOURCE_HONOR, RESOURCE_PROJECT, RESOURCE_REGION, RESOURCE_SERVICE_RECORD, RESOURCE_VOLUNTEER,
    RESOURCE_VOLUNTEER_GROUP,
)
from app.security.scope import InRegion, InScope
from app.security.scoped_views import ScopedInterface, ScopedViewMixin, scoped_rel_fields
from app.services import civil_units, honors, hours, projects, volunteers
from app.services.clock import to_local
from app.services.errors import DomainError, ScopeViolation
from app.views.formatters import as_hours, blank, label, local_minute
from app.views.pages import flash_errors


COMMON_LABELS = {
    "region": _("Region"), "region_path": _("Region"), "region_code": _("Division code"), "status": _("Review status"),
    "name": _("Name"), "group": _("Volunteer group"), "project": _("Project"),
    "created_on": _("Created on"),
}


# --- Regions ---


class RegionModelView(ScopedViewMixin, ModelView):
    """Administrative divisions (行政区划): public reference data, read-only here."""

    datamodel = ScopedInterface(Region)
    route_base = "/regions"
    class_permission_name = RESOURCE_REGION
    method_permission_name = READ_ONLY
    base_permissions = ["can_read"]

    list_title = show_title = _("Regions")
    list_columns = ["code", "name", "level_label", "parent", "population"]
    show_columns = ["code", "name", "level_label", "parent", "population"]
    search_columns = ["code", "name", "level"]
    order_columns = ["code", "name", "population"]
    base_order = ("path", "asc")
    page_size = 50
    formatters_columns = {"parent": lambda v: v or "", "population": blank}
    label_columns = {
        "code": _("Division code"), "name": _("Name"), "level": _("Level"),
        "level_label": _("Level"), "parent": _("Parent region"), "population": _("Population"),
    }


# --- Region oversight (区域监管): officers read their region ---


class VolunteerModelView(ScopedViewMixin, ModelView):
    """Volunteers in scope. Personal data appears only masked; officers may press
    显示完整证件号 (an audited POST). ID numbers are searched exactly, never partially
    (app/security/id_search.py)."""

    datamodel = VolunteerInterface(Volunteer)
    route_base = "/volunteers"
    class_permission_name = RESOURCE_VOLUNTEER
    method_permission_name = {**READ_ONLY, "pii": ACTION_VIEW_PII}
    base_permissions = ["can_read", "can_view_pii"]
    show_template = "volunteers/show.html"

    base_filters = [["id", InScope, None]]
    custom_search_filters = {"region_path": [InRegion]}

    list_title = show_title = _("Volunteers")
    list_columns = ["real_name", "gender", "id_number_masked", "phone_masked", "volunteer_no",
                    "region", "total_minutes", "status"]
    show_columns = ["real_name", "gender", "birth_date", "id_type", "id_number_masked", "phone_masked",
                    "email", "volunteer_no", "region", "total_minutes", "status", "reject_reason",
                    "guardian_name", "guardian_relation", "guardian_phone_masked", "approved_on"]
    search_columns = ["real_name", "id_blind", "volunteer_no", "status", "region_path"]
    order_columns = ["real_name", "volunteer_no", "total_minutes"]
    base_order = ("id", "desc")
    formatters_columns = {
        "status": label(ReviewStatus), "total_minutes": as_hours, "email": blank,
        "gender": lambda g: {"M": gettext("Male"), "F": gettext("Female")}.get(g, ""),
    }
    label_columns = {
        **COMMON_LABELS, "real_name": _("Real name"), "gender": _("Gender"),
        "birth_date": _("Birth date"), "id_type": _("ID type"), "id_number_masked": _("ID number"),
        "phone_masked": _("Mobile phone"), "email": _("Email"), "volunteer_no": _("Volunteer number"),
        "total_minutes": _("Service hours"), "reject_reason": _("Reason"),
        "guardian_name": _("Guardian"), "guardian_relation": _("Guardian relation"),
        "guardian_phone_masked": _("Guardian phone"), "approved_on": _("Approved on"),
        "id_blind": _("ID number"),
    }

    @expose("/pii/<pk>", methods=["POST"])
    @has_access
    def pii(self, pk):
        """显示完整证件号: one in-scope volunteer's full ID number and phones, audited."""
        volunteer = self._scoped_item(pk)
        shown = volunteers.reveal_pii(volunteer, as_officer=True)
        db.session.commit()
        return self.render_template("volunteers/pii.html", volunteer=volunteer, shown=shown,
                                    title=gettext("Show full ID number"))


class VolunteerGroupModelView(ScopedViewMixin, ModelView):
    """Volunteer groups in scope (officers: their region; group admins: own and children)."""

    datamodel = ScopedInterface(VolunteerGroup)
    route_base = "/volunteer-groups"
    class_permission_name = RESOURCE_VOLUNTEER_GROUP
    method_permission_name = READ_ONLY
    base_permissions = ["can_read"]

    base_filters = [["id", InScope, None]]
    search_form_query_rel_fields = scoped_rel_fields("parent")
    custom_search_filters = {"region_path": [InRegion]}

    list_title = show_title = _("Volunteer Groups")
    list_columns = ["name", "group_type", "parent", "region", "join_policy", "contact_name", "status"]
    show_columns = ["name", "group_type", "parent", "region", "join_policy", "contact_name",
                    "contact_phone_masked", "staff_headcount", "credit_code", "description", "status",
                    "approved_on"]
    search_columns = ["name", "group_type", "status", "region_path", "parent"]
    order_columns = ["name"]
    base_order = ("id", "asc")
    formatters_columns = {"status": label(ReviewStatus), "group_type": label(GroupType),
                          "join_policy": label(JoinPolicy), "parent": blank}
    label_columns = {
        **COMMON_LABELS, "group_type": _("Group type"), "parent": _("Parent group"),
        "join_policy": _("Join policy"), "contact_name": _("Contact person"),
        "contact_phone_masked": _("Contact phone"), "staff_headcount": _("Staff headcount"),
        "credit_code": _("Unified social credit code"), "description": _("Description"),
        "approved_on": _("Approved on"),
    }


class ProjectModelView(ScopedViewMixin, ModelView):
    """Volunteer projects in scope; officers may close (结项) projects of their region."""

    datamodel = ScopedInterface(Project)
    route_base = "/projects"
    class_permission_name = RESOURCE_PROJECT
    method_permission_name = {**READ_ONLY, "suspend": ACTION_SUSPEND}
    base_permissions = ["can_read", "can_suspend"]

    base_filters = [["id", InScope, None]]
    search_form_query_rel_fields = scoped_rel_fields("group")
    custom_search_filters = {"region_path": [InRegion]}

    list_title = show_title = _("Projects")
    list_columns = ["name", "group", "category", "region", "starts_at", "ends_at", "recruit_scope", "is_closed"]
    show_columns = ["name", "group", "category", "region", "address", "starts_at", "ends_at",
                    "recruit_scope", "is_backfill", "is_closed", "closed_on", "risk_notice", "description"]
    search_columns = ["name", "group", "category", "region_path", "is_backfill"]
    order_columns = ["name", "starts_at", "ends_at"]
    base_order = ("id", "desc")
    formatters_columns = {"recruit_scope": label(RecruitScope), "address": blank,
                          "risk_notice": blank, "description": blank, "closed_on": blank,
                          "is_closed": lambda closed: gettext("Project closed") if closed else ""}
    label_columns = {
        **COMMON_LABELS, "category": _("Service category"), "address": _("Address"),
        "starts_at": _("Starts at"), "ends_at": _("Ends at"), "recruit_scope": _("Recruitment scope"),
        "is_backfill": _("Backfill Recruitment"), "risk_notice": _("Risk notice"),
        "description": _("Description"), "is_closed": _("Closed"), "closed_on": _("Closed on"),
    }

    @action("suspend", _("Close Project"), _("Close the selected projects now? They will accept nothing new."),
            "fa-ban")
    def suspend(self, items):
        # ScopedViewMixin loaded the rows in scope; the service allows officers of the
        # projects' regions only (all or none).
        try:
            count = projects.suspend_projects(items if isinstance(items, list) else [items])
        except DomainError as err:
            db.session.rollback()
            flash(str(err), "danger")
        else:
            db.session.commit()
            flash(gettext("%(n)s projects closed.", n=count), "success")
        return redirect(self.get_redirect())


class ServiceRecordModelView(ScopedViewMixin, ModelView):
    """Service-hour records of the scope. The ledger is append-only: no edit or
    delete here; officers may flag and unflag records."""

    datamodel = ScopedInterface(ServiceRecord)
    route_base = "/service-records"
    class_permission_name = RESOURCE_SERVICE_RECORD
    method_permission_name = {**READ_ONLY, "flag": ACTION_FLAG, "unflag": ACTION_FLAG,
                              "correction": ACTION_CORRECT, "correct": ACTION_CORRECT}
    base_permissions = ["can_read", "can_flag", f"can_{ACTION_CORRECT}"]

    base_filters = [["id", InScope, None]]
    search_form_query_rel_fields = scoped_rel_fields("project", "group")
    show_template = "service_records/show.html"  # adds 更正 for records transferred in

    list_title = show_title = _("Service Records")
    # Names, not relations: a record transferred in from another system has no project or
    # group here, only their names as that system gave them (``project_name`` falls back).
    list_columns = ["volunteer_name", "volunteer_no", "project_name", "group_name", "served_on", "minutes",
                    "source", "status", "is_flagged"]
    list_eager_relations = ("project", "group")
    show_columns = ["volunteer_name", "volunteer_no", "project_name", "position_name", "group_name", "served_on",
                    "started_at", "ended_at", "minutes", "source", "status", "approved_on",
                    "description", "reason", "is_flagged", "flag_reasons", "external_system", "external_id"]
    search_columns = ["volunteer_name", "volunteer_no", "served_on", "status", "source", "project",
                      "group", "is_flagged"]
    order_columns = ["served_on", "minutes"]
    base_order = ("id", "desc")
    formatters_columns = {"minutes": as_hours, "status": label(RecordStatus),
                          "source": label(RecordSource), "flag_reasons": blank,
                          "description": blank, "reason": blank, "external_system": blank, "external_id": blank,
                          # Local times; blank when unknown (a record transferred in may have none).
                          "started_at": local_minute, "ended_at": local_minute, "approved_on": local_minute}
    label_columns = {
        **COMMON_LABELS, "volunteer_name": _("Real name"), "volunteer_no": _("Volunteer number"),
        "position": _("Position"), "served_on": _("Served on"), "started_at": _("Start time"),
        "ended_at": _("End time"), "minutes": _("Service hours"), "source": _("Source"),
        "approved_on": _("Approved on"), "description": _("Service content"), "reason": _("Reason"),
        "is_flagged": _("Flagged"), "flag_reasons": _("Flag reasons"),
        "project_name": _("Project"), "position_name": _("Position"), "group_name": _("Volunteer group"),
        "external_system": _("Source system"), "external_id": _("Record id"),
    }

    @action("flag", _("Flag"), _("Flag the selected records for review?"), "fa-flag")
    def flag(self, items):
        return self._flag(items, True)

    @action("unflag", _("Unflag"), _("Clear the flag of the selected records?"), "fa-flag-o")
    def unflag(self, items):
        return self._flag(items, False)

    def render_template(self, template, **kwargs):
        if template == self.show_template and "pk" in kwargs:
            record = self.datamodel.get(kwargs["pk"], self._base_filters)
            kwargs["imported_correctable"] = (record is not None and record.source == RecordSource.TRANSFER_IN
                                              and record.status == RecordStatus.APPROVED)
        return super().render_template(template, **kwargs)

    def _imported_record(self, pk) -> ServiceRecord:
        """An approved record transferred in, inside the user's scope; else 404."""
        record = self.datamodel.get(pk, self._base_filters)
        if record is None or record.source != RecordSource.TRANSFER_IN or record.status != RecordStatus.APPROVED:
            abort(404)
        return record

    def _correction_page(self, record, *, form=None, status=200):
        from app.views.hours import correction_page

        return correction_page(self, record, title=gettext("Correction"), form=form, status=status,
                               action=url_for(".correct", pk=record.id), back=url_for(".show", pk=record.id),
                               admin=True)

    @expose("/correct/<int:pk>")
    @has_access
    def correction(self, pk):
        """更正 of a record transferred from another system: it has no group here, so an
        officer of its region corrects it (a new approved correction record)."""
        return self._correction_page(self._imported_record(pk))

    @expose("/correct/<int:pk>", methods=["POST"])
    @has_access
    def correct(self, pk):
        begin_write()
        record = self._imported_record(pk)
        try:
            minutes = hours.parse_hours(request.form.get("hours"), negative=True)
            hours.correct_imported_record(record, minutes=minutes, reason=request.form.get("reason"))
        except ScopeViolation:
            db.session.rollback()
            abort(404)
        except DomainError as err:
            flash_errors(err)
            return self._correction_page(self._imported_record(pk), form=request.form, status=400)
        db.session.commit()
        flash(gettext("The correction of %(hours)s hours has been recorded.", hours=hours.hours_text(minutes)),
              "success")
        return redirect(url_for(".show", pk=pk))

    def _flag(self, items, flagged):
        from app.extensions import db

        count = hours.flag_records(items if isinstance(items, list) else [items], flagged=flagged)
        db.session.commit()
        flash(gettext("%(n)s records changed.", n=count), "success")
        return redirect(self.get_redirect())


class AuditEventModelView(ScopedViewMixin, ModelView):
    """The audit log (审计日志) of the scope: who changed what, before and after (masked)."""

    datamodel = ScopedInterface(AuditEvent)
    route_base = "/audit-log"
    class_permission_name = RESOURCE_AUDIT_EVENT
    method_permission_name = READ_ONLY
    base_permissions = ["can_read"]

    base_filters = [["id", InScope, None]]

    list_title = show_title = _("Audit Log")
    list_columns = ["created_on", "actor_name", "action", "object_type", "object_id", "ip"]
    show_columns = ["created_on", "actor_name", "action", "object_type", "object_id", "region_path",
                    "before_json", "after_json", "request_id", "ip"]
    search_columns = ["actor_name", "action", "object_type", "object_id", "created_on"]
    order_columns = ["created_on"]
    base_order = ("id", "desc")
    formatters_columns = {"created_on": lambda v: to_local(v).strftime("%Y-%m-%d %H:%M:%S"),
                          "actor_name": lambda v: v or gettext("System"), "before_json": blank,
                          "after_json": blank, "object_id": blank, "ip": blank}
    label_columns = {
        "created_on": _("Time"), "actor_name": _("Actor"), "action": _("Action"),
        "object_type": _("Object type"), "object_id": _("Object ID"), "region_path": _("Region path"),
        "before_json": _("Before"), "after_json": _("After"), "request_id": _("Request ID"),
        "ip": _("IP address"),
    }


class CivilUnitModelView(ScopedViewMixin, ModelView):
    """文明单位: the civil-unit register of the officer's regions (统计分析 reads it for the
    full-registration KPI). Officers add and edit units of their regions; the region is
    typed as a division code and the group is picked among the approved groups in scope
    (app/services/civil_units.py checks both again). Nobody deletes a unit here."""

    datamodel = ScopedInterface(CivilUnit)
    route_base = "/civil-units"
    class_permission_name = RESOURCE_CIVIL_UNIT
    method_permission_name = READ_WRITE
    base_permissions = ["can_read", "can_write"]

    base_filters = [["id", InScope, None]]
    _approved_in_scope = [["id", InScope, None], ["status", FilterEqual, ReviewStatus.APPROVED.value]]
    add_form_query_rel_fields = edit_form_query_rel_fields = {"group": _approved_in_scope}
    search_form_query_rel_fields = scoped_rel_fields("group")
    custom_search_filters = {"region_path": [InRegion]}

    list_title = show_title = add_title = edit_title = _("Civil Units")
    list_columns = ["name", "region", "staff_headcount", "group"]
    show_columns = ["name", "region", "staff_headcount", "group", "created_on"]
    add_columns = edit_columns = ["name", "division_code", "staff_headcount", "group"]
    add_form_extra_fields = edit_form_extra_fields = {
        # Not "region_code": that is the model's read-only property.
        "division_code": StringField(_("Division code"), validators=[OptionalValidator()]),
    }
    search_columns = ["name", "region_path", "group"]
    order_columns = ["name", "staff_headcount"]
    base_order = ("name", "asc")
    formatters_columns = {"group": blank, "staff_headcount": blank}
    label_columns = {**COMMON_LABELS, "staff_headcount": _("Staff headcount"), "division_code": _("Division code")}

    def prefill_form(self, form, pk):
        form.division_code.data = self._scoped_item(pk).region_code

    def pre_add(self, item):
        civil_units.save_civil_unit(item, region_code=getattr(item, "division_code", None))

    def pre_update(self, item):
        civil_units.save_civil_unit(item, region_code=getattr(item, "division_code", None))


# --- Honors (表彰激励) ---


def content_disposition(name: str) -> str:
    """Content-Disposition of a download whose name may be Chinese (RFC 6266 / 5987)."""
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"


class HonorModelView(ScopedViewMixin, ModelView):
    """表彰激励: honors in scope; only honors editors (prefecture or above) add, edit and
    withdraw them, for recipients in their region (app/services/honors.py). An honor may
    carry one attachment (PDF/JPEG/PNG, 5 MB), downloaded by whoever reads the honor."""

    datamodel = ScopedInterface(Honor)
    route_base = "/honors"
    class_permission_name = RESOURCE_HONOR
    method_permission_name = {**READ_WRITE, "withdraw": ACTION_WRITE, "restore": ACTION_WRITE,
                              "attachment": ACTION_READ}
    base_permissions = ["can_read", "can_write"]
    show_template = "record_book/honor_show.html"

    base_filters = [["id", InScope, None]]
    add_form_query_rel_fields = edit_form_query_rel_fields = scoped_rel_fields("volunteer_group")
    search_form_query_rel_fields = scoped_rel_fields("volunteer_group")

    list_title = show_title = add_title = edit_title = _("Honors")
    list_columns = ["title", "level", "recipient_name", "awarding_body", "document_no", "awarded_on",
                    "is_withdrawn"]
    show_columns = list_columns + ["attachment_name"]
    list_eager_relations = ["volunteer", "volunteer_group"]  # recipient_name
    add_columns = ["title", "level", "awarding_body", "document_no", "awarded_on",
                   "recipient_volunteer_no", "volunteer_group", "attachment_file"]
    # Withdrawing is the 撤销 action (and 恢复 undoes it): a checkbox of a NOT NULL
    # column would be a required field in FAB's form, i.e. every edit would withdraw.
    edit_columns = ["title", "level", "awarding_body", "document_no", "awarded_on",
                    "attachment_file", "remove_attachment"]
    add_form_extra_fields = {
        "level": SelectField(_("Level"), choices=HonorLevel.choices, validate_choice=False),
        "recipient_volunteer_no": StringField(
            _("Volunteer number"), validators=[OptionalValidator()],
            description=_("For an honor to a volunteer; leave empty and choose a group otherwise.")),
        "attachment_file": FileField(_("Attachment"), description=_("Optional: PDF, JPEG or PNG, at most 5 MB.")),
    }
    edit_form_extra_fields = {
        "level": SelectField(_("Level"), choices=HonorLevel.choices, validate_choice=False),
        "attachment_file": FileField(_("Attachment"), description=_(
            "Optional: PDF, JPEG or PNG, at most 5 MB; replaces the current attachment.")),
        "remove_attachment": BooleanField(_("Remove the attachment")),
    }
    search_columns = ["title", "level", "awarded_on", "volunteer_group"]
    order_columns = ["awarded_on", "title"]
    base_order = ("awarded_on", "desc")
    formatters_columns = {"level": label(HonorLevel), "document_no": blank, "attachment_name": blank,
                          "is_withdrawn": lambda v: gettext("Withdrawn") if v else ""}
    label_columns = {
        "title": _("Title"), "level": _("Level"), "recipient_name": _("Recipient"),
        "awarding_body": _("Awarding body"), "document_no": _("Document number"),
        "awarded_on": _("Award date"), "is_withdrawn": _("Withdrawn"),
        "volunteer_group": _("Volunteer group"), "recipient_volunteer_no": _("Volunteer number"),
        "attachment_name": _("Attachment"), "attachment_file": _("Attachment"),
        "remove_attachment": _("Remove the attachment"),
    }

    def pre_add(self, item):
        honors.award_honor(item, volunteer=honors.volunteer_by_number(
            getattr(item, "recipient_volunteer_no", None)), group=item.volunteer_group,
            attachment=getattr(item, "attachment_file", None))

    def pre_update(self, item):
        honors.update_honor(item, attachment=getattr(item, "attachment_file", None),
                            remove_attachment=bool(getattr(item, "remove_attachment", False)))

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        """The honor, with its attachment's download link."""
        pk = self._deserialize_pk_if_composite(pk)
        widgets = self._show(pk)
        honor = self._scoped_item(pk)  # the same row, for the attachment link
        return self.render_template(self.show_template, pk=pk, title=self.show_title, widgets=widgets,
                                    related_views=self._related_views, honor=honor)

    @action("withdraw", _("Withdraw"), _("Withdraw the selected honors? They no longer show on cards, "
                                         "records and certificates."), "fa-ban")
    def withdraw(self, items):
        return self._set_withdrawn(items, True)

    @action("restore", _("Restore"), _("Restore the selected withdrawn honors?"), "fa-undo")
    def restore(self, items):
        return self._set_withdrawn(items, False)

    def _set_withdrawn(self, items, withdrawn: bool):
        # ScopedViewMixin loaded the rows in scope; the service allows editors covering
        # every honor's region (all or none).
        try:
            count = honors.withdraw_honors(items if isinstance(items, list) else [items], withdrawn=withdrawn)
        except DomainError as err:
            db.session.rollback()
            flash(str(err), "danger")
        else:
            db.session.commit()
            flash(gettext("%(n)s honors withdrawn.", n=count) if withdrawn
                  else gettext("%(n)s honors restored.", n=count), "success")
        return redirect(self.get_redirect())

    @expose("/<pk>/attachment", methods=["GET"])
    @has_access
    def attachment(self, pk):
        """The honor's attachment, for whoever may read the honor; 404 otherwise or when
        it has none. Always a download (never rendered inline), with the type its
        content was recognised as."""
        honor = self._scoped_item(pk)
        if not honor.attachment_name or honor.attachment_data is None:
            abort(404)
        response = make_response(honor.attachment_data)
        response.headers["Content-Type"] = honor.attachment_type or "application/octet-stream"
        response.headers["Content-Disposition"] = content_disposition(honor.attachment_name)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "private, no-store"
        return response
