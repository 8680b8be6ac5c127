"""REST API (/api/v1/<resource>/): FAB ModelRestApis scoped exactly like the pages."""
from flask_appbuilder import ModelRestApi

from app.models import Honor, Project, Region, ServiceRecord, Volunteer, VolunteerGroup
from app.security.permissions import (
    ACTION_REGISTER, ACTION_REVIEW, READ_ONLY, READ_WRITE, RESOURCE_HONOR, RESOURCE_PROJECT,
    RESOURCE_REGION, RESOURCE_SERVICE_RECORD, RESOURCE_VOLUNTEER, RESOURCE_VOLUNTEER_GROUP,
)
from app.security.scoped_views import ScopedApiMixin, ScopedInterface, scoped_rel_fields
from app.services import honors
from app.views.groups import review_group_api
from app.views.registration import register_volunteer_api
from app.views.review import review_volunteer_api


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

    review = review_volunteer_api  # POST /api/v1/volunteer/<id>/review (app/views/review.py)
    register = register_volunteer_api  # POST /api/v1/volunteer/ (app/views/registration.py)


class VolunteerGroupApi(_ReadOnlyScopedApi):
    resource_name = "volunteer_group"
    method_permission_name = {**READ_ONLY, "review": ACTION_REVIEW}
    include_route_methods = _ReadOnlyScopedApi.include_route_methods | {"review"}
    datamodel = ScopedInterface(VolunteerGroup)
    class_permission_name = RESOURCE_VOLUNTEER_GROUP
    list_columns = show_columns = ["id", "name", "group_type", "parent.name", "join_policy", "status",
                                   "contact_name", "contact_phone_masked", "region_code"]
    list_select_columns = show_select_columns = [c for c in list_columns if c != "region_code"] + ["region_path"]
    order_columns = ["id", "name"]
    search_columns = ["name", "group_type", "status"]

    review = review_group_api  # POST /api/v1/volunteer_group/<id>/review (app/views/groups.py)


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


