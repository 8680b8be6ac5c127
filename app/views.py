"""Portal views and REST APIs: declarative FAB classes, registered by ``register_views``.

Every scoped view declares its scope at the top (``base_filters`` and the
related-field filters); ScopedViewMixin / ScopedApiMixin close the holes FAB
leaves (actions, page size, sorting, POSTed foreign keys).
"""
from flask import flash, redirect
from flask_appbuilder import AppBuilder, ModelRestApi, ModelView, expose, has_access
from flask_appbuilder.actions import action
from flask_babel import gettext, lazy_gettext as _
from wtforms import StringField
from wtforms.validators import Optional as OptionalValidator

from app.models import (
    AuditEvent, GroupType, Honor, HonorLevel, JoinPolicy, Project, RecordSource, RecordStatus,
    RecruitScope, Region, ReviewStatus, ServiceRecord, Volunteer, VolunteerGroup,
)
from app.security.permissions import (
    ACTION_FLAG, ACTION_REVIEW, MENU_AUDIT_LOG, MENU_HOLIDAYS, MENU_HONORS, MENU_PROJECTS,
    MENU_REGISTRATION_REVIEW,
    MENU_REGION_OVERSIGHT, MENU_REGIONS, MENU_SERVICE_RECORDS, MENU_VOLUNTEER_GROUPS, MENU_VOLUNTEERS,
    READ_ONLY, READ_WRITE, RESOURCE_AUDIT_EVENT, RESOURCE_HONOR, RESOURCE_PROJECT, RESOURCE_REGION,
    RESOURCE_SERVICE_RECORD, RESOURCE_VOLUNTEER, RESOURCE_VOLUNTEER_GROUP,
)
from app.extensions import db
from app.security.id_search import VolunteerInterface
from app.security.permissions import ACTION_VIEW_PII, MENU_MY_PROFILE, MENU_USER_CENTER, MENU_VOLUNTEER_CARD
from app.security.scope import InRegion, InScope
from app.security.scoped_views import ScopedApiMixin, ScopedInterface, ScopedViewMixin, scoped_rel_fields
from app.services import honors, hours, volunteers
from app.services.clock import to_local
from app.views_review import HolidayModelView, RegistrationReviewView, review_volunteer_api
from app.registration import RegistrationView, register_volunteer_api
from app.security.permissions import ACTION_REGISTER


def _label(choices):
    """A formatter showing a stored choice by its translated label."""
    return lambda value: choices.labels().get(value, value or "")


def _blank(value):
    return "" if value is None else value


def _hours(minutes):
    return f"{(minutes or 0) / 60:.1f}"


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
    formatters_columns = {"parent": lambda v: v or "", "population": _blank}
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
        "status": _label(ReviewStatus), "total_minutes": _hours, "email": _blank,
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
    formatters_columns = {"status": _label(ReviewStatus), "group_type": _label(GroupType),
                          "join_policy": _label(JoinPolicy), "parent": _blank}
    label_columns = {
        **COMMON_LABELS, "group_type": _("Group type"), "parent": _("Parent group"),
        "join_policy": _("Join policy"), "contact_name": _("Contact person"),
        "contact_phone_masked": _("Contact phone"), "staff_headcount": _("Staff headcount"),
        "credit_code": _("Unified social credit code"), "description": _("Description"),
        "approved_on": _("Approved on"),
    }


class ProjectModelView(ScopedViewMixin, ModelView):
    """Volunteer projects in scope."""

    datamodel = ScopedInterface(Project)
    route_base = "/projects"
    class_permission_name = RESOURCE_PROJECT
    method_permission_name = READ_ONLY
    base_permissions = ["can_read"]

    base_filters = [["id", InScope, None]]
    search_form_query_rel_fields = scoped_rel_fields("group")
    custom_search_filters = {"region_path": [InRegion]}

    list_title = show_title = _("Projects")
    list_columns = ["name", "group", "category", "region", "starts_at", "ends_at", "recruit_scope"]
    show_columns = ["name", "group", "category", "region", "address", "starts_at", "ends_at",
                    "recruit_scope", "is_backfill", "risk_notice", "description"]
    search_columns = ["name", "group", "category", "region_path", "is_backfill"]
    order_columns = ["name", "starts_at", "ends_at"]
    base_order = ("id", "desc")
    formatters_columns = {"recruit_scope": _label(RecruitScope), "address": _blank,
                          "risk_notice": _blank, "description": _blank}
    label_columns = {
        **COMMON_LABELS, "category": _("Service category"), "address": _("Address"),
        "starts_at": _("Starts at"), "ends_at": _("Ends at"), "recruit_scope": _("Recruitment scope"),
        "is_backfill": _("Backfill Recruitment"), "risk_notice": _("Risk notice"),
        "description": _("Description"),
    }


class ServiceRecordModelView(ScopedViewMixin, ModelView):
    """Service-hour records of the scope. The ledger is append-only: no edit or
    delete here; officers may flag and unflag records."""

    datamodel = ScopedInterface(ServiceRecord)
    route_base = "/service-records"
    class_permission_name = RESOURCE_SERVICE_RECORD
    method_permission_name = {**READ_ONLY, "flag": ACTION_FLAG, "unflag": ACTION_FLAG}
    base_permissions = ["can_read", "can_flag"]

    base_filters = [["id", InScope, None]]
    search_form_query_rel_fields = scoped_rel_fields("project", "group")

    list_title = show_title = _("Service Records")
    list_columns = ["volunteer_name", "volunteer_no", "project", "group", "served_on", "minutes",
                    "source", "status", "is_flagged"]
    show_columns = ["volunteer_name", "volunteer_no", "project", "position", "group", "served_on",
                    "started_at", "ended_at", "minutes", "source", "status", "approved_on",
                    "description", "reason", "is_flagged", "flag_reasons"]
    search_columns = ["volunteer_name", "volunteer_no", "served_on", "status", "source", "project",
                      "group", "is_flagged"]
    order_columns = ["served_on", "minutes"]
    base_order = ("id", "desc")
    formatters_columns = {"minutes": _hours, "status": _label(RecordStatus),
                          "source": _label(RecordSource), "flag_reasons": _blank,
                          "description": _blank, "reason": _blank}
    label_columns = {
        **COMMON_LABELS, "volunteer_name": _("Real name"), "volunteer_no": _("Volunteer number"),
        "position": _("Position"), "served_on": _("Served on"), "started_at": _("Start time"),
        "ended_at": _("End time"), "minutes": _("Service hours"), "source": _("Source"),
        "approved_on": _("Approved on"), "description": _("Service content"), "reason": _("Reason"),
        "is_flagged": _("Flagged"), "flag_reasons": _("Flag reasons"),
    }

    @action("flag", _("Flag"), _("Flag the selected records for review?"), "fa-flag")
    def flag(self, items):
        return self._flag(items, True)

    @action("unflag", _("Unflag"), _("Clear the flag of the selected records?"), "fa-flag-o")
    def unflag(self, items):
        return self._flag(items, False)

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
                          "actor_name": lambda v: v or gettext("System"), "before_json": _blank,
                          "after_json": _blank, "object_id": _blank, "ip": _blank}
    label_columns = {
        "created_on": _("Time"), "actor_name": _("Actor"), "action": _("Action"),
        "object_type": _("Object type"), "object_id": _("Object ID"), "region_path": _("Region path"),
        "before_json": _("Before"), "after_json": _("After"), "request_id": _("Request ID"),
        "ip": _("IP address"),
    }


# --- Honors (表彰激励) ---


class HonorModelView(ScopedViewMixin, ModelView):
    """Honors in scope; only honors editors (prefecture or above) add and edit, for
    recipients in their region (app/services/honors.py)."""

    datamodel = ScopedInterface(Honor)
    route_base = "/honors"
    class_permission_name = RESOURCE_HONOR
    method_permission_name = READ_WRITE
    base_permissions = ["can_read", "can_write"]

    base_filters = [["id", InScope, None]]
    add_form_query_rel_fields = edit_form_query_rel_fields = scoped_rel_fields("volunteer_group")
    search_form_query_rel_fields = scoped_rel_fields("volunteer_group")

    list_title = show_title = add_title = edit_title = _("Honors")
    list_columns = ["title", "level", "recipient_name", "awarding_body", "document_no", "awarded_on",
                    "is_withdrawn"]
    show_columns = list_columns
    list_eager_relations = ["volunteer", "volunteer_group"]  # recipient_name
    add_columns = ["title", "level", "awarding_body", "document_no", "awarded_on",
                   "recipient_volunteer_no", "volunteer_group"]
    edit_columns = ["title", "level", "awarding_body", "document_no", "awarded_on", "is_withdrawn"]
    add_form_extra_fields = {
        "recipient_volunteer_no": StringField(
            _("Volunteer number"), validators=[OptionalValidator()],
            description=_("For an honor to a volunteer; leave empty and choose a group otherwise.")),
    }
    search_columns = ["title", "level", "awarded_on", "volunteer_group"]
    order_columns = ["awarded_on", "title"]
    base_order = ("awarded_on", "desc")
    formatters_columns = {"level": _label(HonorLevel), "document_no": _blank}
    label_columns = {
        "title": _("Title"), "level": _("Level"), "recipient_name": _("Recipient"),
        "awarding_body": _("Awarding body"), "document_no": _("Document number"),
        "awarded_on": _("Award date"), "is_withdrawn": _("Withdrawn"),
        "volunteer_group": _("Volunteer group"), "recipient_volunteer_no": _("Volunteer number"),
    }

    def pre_add(self, item):
        honors.award_honor(item, volunteer=honors.volunteer_by_number(
            getattr(item, "recipient_volunteer_no", None)), group=item.volunteer_group)

    def pre_update(self, item):
        honors.update_honor(item)


# --- REST API (/api/v1/<resource>/) ---


class RegionApi(ModelRestApi):
    resource_name = "region"
    datamodel = ScopedInterface(Region)
    class_permission_name = RESOURCE_REGION
    method_permission_name = READ_ONLY
    include_route_methods = {"get", "get_list", "info"}
    list_columns = show_columns = ["id", "code", "name", "level", "population", "parent.code"]
    order_columns = ["code", "name"]
    search_columns = ["code", "name", "level"]


class _ReadOnlyScopedApi(ScopedApiMixin, ModelRestApi):
    method_permission_name = READ_ONLY
    include_route_methods = {"get", "get_list", "info"}


class VolunteerApi(_ReadOnlyScopedApi):
    resource_name = "volunteer"
    method_permission_name = {**READ_ONLY, "review": ACTION_REVIEW, "register": ACTION_REGISTER}
    include_route_methods = _ReadOnlyScopedApi.include_route_methods | {"review", "register"}
    datamodel = ScopedInterface(Volunteer)
    class_permission_name = RESOURCE_VOLUNTEER
    list_columns = show_columns = ["id", "real_name", "gender", "id_number_masked", "phone_masked",
                                   "volunteer_no", "status", "total_minutes", "region_code"]
    list_select_columns = show_select_columns = [c for c in list_columns if c != "region_code"] + ["region_path"]
    order_columns = ["id", "real_name", "volunteer_no"]
    search_columns = ["real_name", "volunteer_no", "status"]

    review = review_volunteer_api  # POST /api/v1/volunteer/<id>/review (app/views_review.py)
    register = register_volunteer_api  # POST /api/v1/volunteer/ (app/registration.py)


class VolunteerGroupApi(_ReadOnlyScopedApi):
    resource_name = "volunteer_group"
    datamodel = ScopedInterface(VolunteerGroup)
    class_permission_name = RESOURCE_VOLUNTEER_GROUP
    list_columns = show_columns = ["id", "name", "group_type", "parent.name", "join_policy", "status",
                                   "contact_name", "contact_phone_masked", "region_code"]
    list_select_columns = show_select_columns = [c for c in list_columns if c != "region_code"] + ["region_path"]
    order_columns = ["id", "name"]
    search_columns = ["name", "group_type", "status"]


class ProjectApi(_ReadOnlyScopedApi):
    resource_name = "project"
    datamodel = ScopedInterface(Project)
    class_permission_name = RESOURCE_PROJECT
    list_columns = show_columns = ["id", "name", "group.name", "category", "starts_at", "ends_at",
                                   "recruit_scope", "is_backfill", "region_code"]
    list_select_columns = show_select_columns = [c for c in list_columns if c != "region_code"] + ["region_path"]
    order_columns = ["id", "name", "starts_at"]
    search_columns = ["name", "category", "group"]


class ServiceRecordApi(_ReadOnlyScopedApi):
    resource_name = "service_record"
    datamodel = ScopedInterface(ServiceRecord)
    class_permission_name = RESOURCE_SERVICE_RECORD
    list_columns = show_columns = ["id", "volunteer_name", "volunteer_no", "project.name", "group.name",
                                   "served_on", "minutes", "source", "status", "is_flagged", "region_code"]
    list_select_columns = show_select_columns = [c for c in list_columns if c != "region_code"] + ["region_path"]
    order_columns = ["id", "served_on"]
    search_columns = ["volunteer_no", "served_on", "status", "project", "group"]


class HonorApi(ScopedApiMixin, ModelRestApi):
    resource_name = "honor"
    datamodel = ScopedInterface(Honor)
    class_permission_name = RESOURCE_HONOR
    method_permission_name = READ_WRITE
    include_route_methods = {"get", "get_list", "info", "post", "put"}
    list_columns = show_columns = ["id", "title", "level", "awarding_body", "document_no", "awarded_on",
                                   "volunteer.real_name", "volunteer_group.name", "is_withdrawn", "region_code"]
    list_select_columns = show_select_columns = [c for c in list_columns if c != "region_code"] + ["region_path"]
    add_columns = ["title", "level", "awarded_on", "awarding_body", "document_no", "volunteer",
                   "volunteer_group"]
    edit_columns = ["title", "level", "awarded_on", "awarding_body", "document_no", "is_withdrawn"]
    add_query_rel_fields = scoped_rel_fields("volunteer", "volunteer_group")
    order_columns = ["id", "awarded_on"]
    search_columns = ["title", "level", "awarded_on"]

    def pre_add(self, item):
        self._call_service(
            lambda honor: honors.award_honor(honor, volunteer=honor.volunteer, group=honor.volunteer_group),
            item)

    def pre_update(self, item):
        self._call_service(honors.update_honor, item)


def register_views(appbuilder: AppBuilder) -> None:
    """Add every portal view, its menu entry and the REST APIs."""
    oversight = dict(category=MENU_REGION_OVERSIGHT, category_label=_("Region Oversight"),
                     category_icon="fa-university")
    appbuilder.add_view(VolunteerModelView, MENU_VOLUNTEERS, icon="fa-user", label=_("Volunteers"), **oversight)
    appbuilder.add_view(RegistrationReviewView, MENU_REGISTRATION_REVIEW, icon="fa-check-square-o",
                        label=_("Registration Review"), **oversight)
    appbuilder.add_view(VolunteerGroupModelView, MENU_VOLUNTEER_GROUPS, icon="fa-users",
                        label=_("Volunteer Groups"), **oversight)
    appbuilder.add_view(ProjectModelView, MENU_PROJECTS, icon="fa-flag", label=_("Projects"), **oversight)
    appbuilder.add_view(ServiceRecordModelView, MENU_SERVICE_RECORDS, icon="fa-clock-o",
                        label=_("Service Records"), **oversight)
    appbuilder.add_view(AuditEventModelView, MENU_AUDIT_LOG, icon="fa-history", label=_("Audit Log"), **oversight)
    appbuilder.add_view(RegionModelView, MENU_REGIONS, icon="fa-map-marker", label=_("Regions"), **oversight)
    appbuilder.add_view(HolidayModelView, MENU_HOLIDAYS, icon="fa-calendar", label=_("Holiday Settings"),
                        **oversight)
    appbuilder.add_view(HonorModelView, MENU_HONORS, icon="fa-trophy", label=_("Honors"))
    _register_user_center(appbuilder)
    appbuilder.add_view_no_menu(RegistrationView)  # 注册志愿者, public; linked from the login page
    for api in (RegionApi, VolunteerApi, VolunteerGroupApi, ProjectApi, ServiceRecordApi, HonorApi):
        appbuilder.add_api(api)


def _register_user_center(appbuilder: AppBuilder) -> None:
    """用户中心: 我的资料 and 志愿者证 for volunteers; the card check is public."""
    from app.user_center import CardVerifyView, UserCenterView

    user_center = dict(category=MENU_USER_CENTER, category_label=_("User Center"), category_icon="fa-id-card-o")
    appbuilder.add_view(UserCenterView, MENU_MY_PROFILE, href="/my/profile", icon="fa-user",
                        label=_("My Profile"), **user_center)
    appbuilder.add_link(MENU_VOLUNTEER_CARD, href="/my/card", icon="fa-id-card", label=_("Volunteer Card"),
                        **user_center)
    appbuilder.add_view_no_menu(CardVerifyView)
