"""REST API (/api/v1/<resource>/): FAB ModelRestApis scoped exactly like the pages,
and the hour-code endpoints of the mobile client (``HourCodeApi``)."""
from __future__ import annotations

import re
from datetime import date, datetime, timezone

from flask import g, jsonify, make_response, request
from flask_appbuilder import ModelRestApi
from flask_appbuilder.api import BaseApi, expose, protect, safe
from flask_appbuilder.models.filters import BaseFilter
from flask_babel import gettext, lazy_gettext
from marshmallow import Schema, fields
from sqlalchemy import or_
from sqlalchemy.orm import selectinload

from app.extensions import begin_write, db
from app.models import Honor, Position, Project, Region, ServiceRecord, Volunteer, VolunteerGroup
from app.security.permissions import (
    ACTION_APPLY, ACTION_REGISTER, ACTION_REVIEW, ACTION_WRITE, READ_ONLY, READ_WRITE, RESOURCE_HONOR,
    RESOURCE_PROJECT, RESOURCE_REGION, RESOURCE_SERVICE_RECORD, RESOURCE_VOLUNTEER, RESOURCE_VOLUNTEER_GROUP,
)
from app.security.scope import current_scope, is_row_id, scope_clause
from app.security.scoped_views import RestFiltersMixin, ScopedApiMixin, ScopedInterface, scoped_rel_fields
from app.services import honors, hours, projects, volunteers
from app.services.errors import DomainError, ScopeViolation, ValidationFailed
from app.views.groups import review_group_api
from app.views.registration import register_volunteer_api
from app.views.review import review_volunteer_api


# --- REST API (/api/v1/<resource>/) ---


class RegionApi(RestFiltersMixin, ModelRestApi):
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


class VisibleProject(BaseFilter):
    """FAB filter: the projects a caller may read through the API — the ones in their
    scope (DESIGN.md §4: officers their region's, group admins their groups' and
    children's, backfill included; a volunteer the projects they enrolled in) plus the
    public 志愿项目 list (approved groups, never backfill), which anyone may browse.

    So an anonymous caller reads exactly ``projects.public_clause()``, and a backfill
    project is readable only inside someone's scope. ``arg_name`` is None: not a
    user filter.
    """

    name = "Visible"

    def apply(self, query, value):
        scope = current_scope()
        if scope.everything:
            return query
        return query.filter(or_(scope_clause(Project, scope), projects.public_clause()))


class ProjectStatusFilter(BaseFilter):
    """REST filter ``(col:status,opr:project_status,value:open)``: projects in that ``ProjectStatus``
    now (upcoming, open, closed), read off the clock like the pages' status search."""

    name = lazy_gettext("Status")
    arg_name = "project_status"  # FAB maps arg names to filter classes globally: keep it unique

    def apply(self, query, value):
        return query.filter(projects.status_clause(str(value)))


class ProjectInterface(ScopedInterface):
    """Projects with their positions: one ``selectinload`` query for the positions of a
    whole page (the REST API's select columns skip ScopedInterface's eager loads)."""

    def apply_all(self, query, *args, **kwargs):
        return super().apply_all(query, *args, **kwargs).options(selectinload(Project.positions))


def _utc(value: datetime | None) -> str | None:
    """A stored (naive UTC) time as ISO 8601 with its offset, so clients need not guess."""
    return value.replace(tzinfo=timezone.utc).isoformat() if value is not None else None


def _local_time(value) -> str | None:
    return value.isoformat("minutes") if value is not None else None


_TIME = {"type": "string", "format": "date-time", "description": "UTC, ISO 8601 with offset"}


class PositionSchema(Schema):
    """A position (岗位) of a project item: its places and whether it still takes anyone."""

    id = fields.Integer()
    name = fields.String()
    quota = fields.Integer()
    remaining = fields.Integer(metadata={"description": "quota minus accepted enrollments"})
    closed = fields.Function(lambda p: p.project.is_closed(), metadata={"type": "boolean",
                             "description": "the project is closed (结项): no sign-up, no hour code"})
    enrolled = fields.Integer(attribute="enrolled_count")
    default_minutes = fields.Integer(allow_none=True)
    shift_start = fields.Function(lambda p: _local_time(p.shift_start),
                                  metadata={"type": "string", "description": "HH:MM, Asia/Shanghai"})
    shift_end = fields.Function(lambda p: _local_time(p.shift_end),
                                metadata={"type": "string", "description": "HH:MM, Asia/Shanghai"})
    min_age = fields.Integer(allow_none=True)
    max_age = fields.Integer(allow_none=True)
    allows_minors = fields.Boolean()


class ProjectSchema(Schema):
    """A project as the API shows it, with its positions (岗位) and remaining places."""

    id = fields.Integer()
    name = fields.String()
    group = fields.Function(lambda p: {"id": p.group_id, "name": p.group.name}, metadata={"type": "object"})
    category = fields.String()
    address = fields.String(allow_none=True)
    starts_at = fields.Function(lambda p: _utc(p.starts_at), metadata=_TIME)
    ends_at = fields.Function(lambda p: _utc(p.ends_at), metadata=_TIME)
    closes_at = fields.Function(lambda p: _utc(p.closes_at()), metadata=_TIME)
    status = fields.Function(projects.project_status,
                             metadata={"type": "string", "enum": [s.value for s in projects.ProjectStatus]})
    closed = fields.Function(lambda p: p.is_closed(), metadata={"type": "boolean"})
    recruit_scope = fields.String(metadata={"enum": ["anyone", "members_only"]})
    is_backfill = fields.Boolean()
    region_code = fields.String()
    positions = fields.List(fields.Nested(PositionSchema))


class ProjectApi(_ReadOnlyScopedApi):
    """Projects with their positions. Rows: scope ∪ the public list (``VisibleProject``).

    Items come from ``ProjectSchema`` whatever ``columns`` a client asks for: the
    computed fields (status, positions) have no column of their own to select.
    """

    resource_name = "project"
    datamodel = ProjectInterface(Project)
    class_permission_name = RESOURCE_PROJECT
    base_filters = [["id", VisibleProject, None]]
    list_columns = show_columns = ["id", "name", "group", "category", "address", "starts_at", "ends_at",
                                   "closes_at", "status", "closed", "recruit_scope", "is_backfill",
                                   "region_code", "positions"]
    # What ProjectSchema reads, in one query (the group joined, positions selectin-loaded).
    list_select_columns = show_select_columns = [
        "id", "name", "group_id", "group.name", "category", "address", "starts_at", "ends_at", "closed_on",
        "is_suspended", "recruit_scope", "is_backfill", "region_path"]
    list_model_schema = ProjectSchema()
    show_model_schema = type("ProjectShowSchema", (ProjectSchema,), {})()  # one class per OpenAPI schema
    order_columns = ["id", "name", "starts_at", "ends_at"]
    base_order = ("starts_at", "desc")  # newest first; FAB adds the id as a tie-breaker (stable pages)
    search_columns = ["name", "category", "group", "is_backfill", "status"]

    def _init_properties(self):
        super()._init_properties()
        # "status" is no column: FAB's search_filters cannot name it, so add its filter here.
        self._filters._search_filters["status"] = [ProjectStatusFilter]

    def _handle_columns_args(self, args, default_select_columns, default_response_columns):
        return default_select_columns, []


class ServiceRecordApi(_ReadOnlyScopedApi):
    """The ledger, read-only: officers their region's records, group admins their groups'
    (and children's), a volunteer their own (``InScope``)."""

    resource_name = "service_record"
    datamodel = ScopedInterface(ServiceRecord)
    class_permission_name = RESOURCE_SERVICE_RECORD
    list_columns = show_columns = ["id", "volunteer_name", "volunteer_no", "project.id", "project.name",
                                   "position.id", "position.name", "group.id", "group.name", "served_on",
                                   "minutes", "source", "status", "description", "reason", "reject_reason",
                                   "corrects.id", "is_flagged", "region_code",
                                   # 转移接续: records imported from another system name it and their id there,
                                   # and carry that system's project and organisation as text.
                                   "external_system", "external_id", "external_project", "external_position",
                                   "external_org"]
    list_select_columns = show_select_columns = [c for c in list_columns if c != "region_code"] + ["region_path"]
    order_columns = ["id", "served_on"]
    base_order = ("served_on", "desc")
    search_columns = ["volunteer_no", "served_on", "status", "source", "project", "group"]


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


# --- Hour codes for the mobile client (时长码) ---

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _int_or_none(value) -> int | None:
    """``value`` when it is a JSON integer (not a boolean), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _hour_code_input(body: dict) -> dict:
    """The generate request's fields, typed; every wrong field is named.

    :raises ValidationFailed: with ``fields`` naming each wrong field
    """
    problems: dict[str, list[str]] = {}
    position = _int_or_none(body.get("position"))
    if position is None:
        problems["position"] = [gettext("Give the position's id as a number.")]
    served_on = None
    text = body.get("served_on")
    if isinstance(text, str) and _DAY.fullmatch(text):
        try:
            served_on = date.fromisoformat(text)
        except ValueError:
            pass
    if served_on is None:
        problems["served_on"] = [gettext("Give the service date as YYYY-MM-DD.")]
    minutes = _int_or_none(body.get("minutes"))
    if minutes is None:
        problems["minutes"] = [gettext("Give the service time as a whole number of minutes.")]
    max_uses = body.get("max_uses")
    if max_uses is not None and (_int_or_none(max_uses) is None or max_uses < 1):
        problems["max_uses"] = [gettext("Maximum uses must be a whole number of at least 1, or empty for no limit.")]
    if problems:
        raise ValidationFailed(fields=problems)
    return {"position": position, "served_on": served_on, "minutes": minutes, "max_uses": max_uses}


def _record_json(record: ServiceRecord) -> dict:
    return {
        "id": record.id, "minutes": record.minutes, "served_on": record.served_on.isoformat(),
        "project": {"id": record.project_id, "name": record.project.name},
        "position": ({"id": record.position_id, "name": record.position.name}
                     if record.position_id is not None else None),
        "group": {"id": record.group_id, "name": record.group.name},
        "volunteer_no": record.volunteer_no, "source": record.source, "status": record.status,
    }


class HourCodeApi(BaseApi):
    """时长码 for the mobile client: a group admin generates one for a position of their
    own group's project; a volunteer redeems one. The rules (who, when, how many uses,
    the rate limit on failures) are the hours service's; this maps them to HTTP:
    out of scope 404, refused 400 with the translated message (the service's refusal
    after too many wrong codes is a DomainError too, so 400 with the wait in it).
    """

    resource_name = "hour_code"
    openapi_spec_tag = "Hour Codes"
    class_permission_name = RESOURCE_SERVICE_RECORD
    # Generating a code records hours for others (group admins: can_write); redeeming one
    # credits one's own hours (volunteers: can_apply).
    method_permission_name = {"generate": ACTION_WRITE, "redeem": ACTION_APPLY}

    @expose("/", methods=["POST"])
    @protect()
    @safe
    def generate(self):
        """Generate an hour code (生成时长码) for one activity of a position.
        ---
        post:
          summary: Generate a 12-digit hour code for a position of a project of your own group
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  required: [position, served_on, minutes]
                  properties:
                    position: {type: integer, description: the position's id}
                    served_on: {type: string, format: date, description: the activity date (YYYY-MM-DD)}
                    minutes: {type: integer, minimum: 1, maximum: 1440}
                    max_uses: {type: integer, minimum: 1, nullable: true, description: empty for no limit}
          responses:
            201:
              description: The code (12 digits, a string) and the activity it is for
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      id: {type: integer}
                      code: {type: string, example: '012345678901'}
                      position: {type: integer}
                      project: {type: integer}
                      served_on: {type: string, format: date}
                      minutes: {type: integer}
                      max_uses: {type: integer, nullable: true}
                      uses: {type: integer}
            400:
              description: 'Refused: {"message": {field: [messages]}} for wrong fields, or {"message": "…"}'
            401:
              $ref: '#/components/responses/401'
            403:
              $ref: '#/components/responses/403'
            404:
              description: No such position among your own groups' projects
        """
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return self.response_400(message=gettext("Send the hour code as a JSON object."))
        try:
            fields_ = _hour_code_input(body)
        except ValidationFailed as err:
            return self.response_400(message=err.fields)
        begin_write()  # it reads (is the code free?) then writes: on SQLite take the write lock first
        position = db.session.get(Position, fields_["position"]) if is_row_id(fields_["position"]) else None
        if position is None:
            return self.response_404()
        try:
            code = hours.generate_code(position, served_on=fields_["served_on"], minutes=fields_["minutes"],
                                       max_uses=fields_["max_uses"])
        except ScopeViolation:
            db.session.rollback()
            return self.response_404()
        except DomainError as err:
            db.session.rollback()
            return self.response_400(message="; ".join(err.messages))
        db.session.commit()
        # Not self.response(201, code=…): its first parameter is named "code".
        body = {"id": code.id, "code": code.code, "position": code.position_id, "project": code.project_id,
                "served_on": code.activity_on.isoformat(), "minutes": code.minutes, "max_uses": code.max_uses,
                "uses": code.uses}
        return make_response(jsonify(body), 201)

    @expose("/redeem", methods=["POST"])
    @protect()
    @safe
    def redeem(self):
        """Redeem an hour code (录入时长码): enrol in its position and credit its hours.
        ---
        post:
          summary: Redeem a 12-digit hour code as the signed-in volunteer
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  required: [code]
                  properties:
                    code: {type: string, example: '012345678901'}
          responses:
            200:
              description: The credited service record
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      id: {type: integer}
                      minutes: {type: integer}
                      served_on: {type: string, format: date}
                      project: {type: object, properties: {id: {type: integer}, name: {type: string}}}
                      position: {type: object, properties: {id: {type: integer}, name: {type: string}}}
                      group: {type: object, properties: {id: {type: integer}, name: {type: string}}}
                      volunteer_no: {type: string}
                      source: {type: string, example: hour_code}
                      status: {type: string, example: approved}
            400:
              description: >-
                Refused, with the reason: {"message": "…"} — invalid or expired, not yet valid,
                already used, used up, outside the age limits, or too many wrong codes (the
                message says how long to wait)
            401:
              $ref: '#/components/responses/401'
            403:
              $ref: '#/components/responses/403'
        """
        body = request.get_json(silent=True)
        code = body.get("code") if isinstance(body, dict) else None
        if not isinstance(code, str):
            return self.response_400(message=gettext('Send {"code": "…"} with the 12-digit hour code.'))
        try:
            record = hours.redeem_code(volunteers.volunteer_of_user(g.user), code)
        except ScopeViolation:
            db.session.rollback()
            return self.response_404()
        except DomainError as err:
            db.session.rollback()
            # The error's own HTTP status: 400 (a subclass may carry another, e.g. 429).
            return self.response(err.code or 400, message="; ".join(err.messages))
        db.session.commit()
        return self.response(200, **_record_json(record))
