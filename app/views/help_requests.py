"""Help requests (求助信息), issue 7 item 5: the public list, 发布求助 and the private follow
page (no login needed), 我的求助, 区域监管 → 求助审核 (officers: publish, hide, close),
团体管理 → 求助认领 (group admins: claim, resolve, turn into a project — 发布新项目 with
``from_help``), and the REST resource ``help_request``.

Rules live in app/services/help_requests.py; these views read the request, call the
service, flash its result and commit (or roll back). Out-of-scope ids answer 404.

The public pages carry no ``@has_access``, like 注册志愿者: anyone may read the list
and post, signed in or not, whatever their role (the Public role holds no
``can_read on HelpRequest``; the REST resource's public endpoints are open the same way).
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import abort, flash, g, jsonify, make_response, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, ModelRestApi, expose, has_access
from flask_appbuilder.api import expose as api_expose, protect, safe
from flask_appbuilder.models.filters import BaseFilter
from flask_babel import gettext, lazy_gettext as _
from flask_wtf import FlaskForm
from marshmallow import Schema, fields
from wtforms import SelectField, StringField, TextAreaField

from app.extensions import begin_write, db
from app.models import HelpRequest, RequestStatus, VolunteerGroup
from app.security.hardening import client_address
from app.security.permissions import (
    ACTION_CLAIM, ACTION_MODERATE, ACTION_READ, ACTION_WRITE, MENU_GROUP_HELP_REQUESTS, MENU_HELP_MODERATION,
    MENU_HELP_REQUESTS, MENU_MY_HELP_REQUESTS, READ_ONLY, RESOURCE_HELP_REQUEST,
)
from app.security.scope import InvalidToken, bearer_user, current_scope, path_is_under, row_id
from app.security.scoped_views import ScopedApiMixin, ScopedInterface
from app.services import help_requests, projects
from app.services.errors import DomainError, ScopeViolation, ValidationFailed
from app.views import menus
from app.views.formatters import local_minute
from app.views.pages import flash_errors, page_arg, perform, show_field_errors
from app.views.registration import _region_chain
from app.views.user_center import SERVICE_CATEGORY_LABELS


class HelpRequestForm(FlaskForm):
    """发布求助. No length validators: the service reports every problem at once."""

    region_code = StringField(_("Region"))
    category = SelectField(_("Service category"), validate_choice=False,
                           choices=[("", "-"), *SERVICE_CATEGORY_LABELS.items()])
    title = StringField(_("Title"), render_kw={"maxlength": help_requests.TITLE_MAX})
    description = TextAreaField(_("Description"), render_kw={"rows": 5, "maxlength": help_requests.DESCRIPTION_MAX})
    contact_name = StringField(_("Contact person"), render_kw={"maxlength": help_requests.CONTACT_NAME_MAX})
    contact_phone = StringField(_("Contact phone"), render_kw={"type": "tel", "maxlength": 20})


def request_facts(item: HelpRequest, *, full: bool = False) -> dict:
    """One request as the pages show it. ``full``: the contact name unmasked (officers of
    its region, the claiming group); the phone is always masked here."""
    labels = help_requests.status_labels()
    group = item.claimed_by_group
    return {
        "id": item.id, "title": item.title, "description": item.description,
        "category": str(SERVICE_CATEGORY_LABELS.get(item.category, item.category)),
        "region": item.region.name if item.region else item.region_code,
        "status": item.status, "status_label": labels.get(item.status, item.status),
        "is_hidden": bool(item.is_hidden),
        "contact_name": item.contact_name if full else help_requests.mask_name(item.contact_name),
        "contact_phone": item.contact_phone_masked or "",
        "created": local_minute(item.created_on), "claimed_on": local_minute(item.claimed_on),
        "resolved_on": local_minute(item.resolved_on), "resolution": item.resolution or "",
        "group": group.name if group is not None else "", "group_id": item.claimed_by_group_id,
        "project_id": item.project_id,
    }


def _public_project_id(item: HelpRequest) -> int | None:
    """The project a converted request became, when the public may open it."""
    if item.project_id is None:
        return None
    try:
        return projects.public_project(item.project_id).id
    except ScopeViolation:
        return None


def _signed_in() -> bool:
    return bool(getattr(g.user, "is_authenticated", False))


# --- 求助信息, 发布求助, the follow page, 我的求助 ---


class HelpRequestsView(BaseView):
    """求助信息 (/help/): the public list and a request's public page, 发布求助 (/help/new),
    the requester's private follow page (/help/follow/<token>) and 我的求助 (/help/mine,
    the requests a signed-in user posted)."""

    route_base = "/help"
    default_view = "index"
    class_permission_name = RESOURCE_HELP_REQUEST
    method_permission_name = {"mine": ACTION_READ}
    base_permissions = [f"can_{ACTION_READ}"]

    @expose("/")
    def index(self):
        args = {key: (request.args.get(key) or "").strip()[:help_requests.REGION_SEARCH_MAX]
                for key in ("region", "category")}
        page = page_arg()
        rows, more = help_requests.search_public(region=args["region"], category=args["category"], page=page)
        return self.render_template(
            "help_requests/list.html", title=gettext("Help Requests"), args=args, page=page, more=more,
            rows=[request_facts(r) for r in rows], categories=list(SERVICE_CATEGORY_LABELS.items()),
            searched=any(args.values()), signed_in=_signed_in())

    @expose("/<int:request_id>")
    def show(self, request_id):
        try:
            item = help_requests.public_request(request_id)
        except ScopeViolation:
            abort(404)
        return self.render_template("help_requests/show.html", title=item.title, item=request_facts(item),
                                    project_id=_public_project_id(item), signed_in=_signed_in())

    def _form_page(self, form, *, general=(), status=200):
        return self.render_template(
            "help_requests/form.html", title=gettext("Post a Help Request"), form=form, general_errors=general,
            region_chain=_region_chain(form.region_code.data)), status

    @expose("/new", methods=["GET", "POST"])
    def new(self):
        """发布求助: anyone, signed in or not; rate-limited per client address."""
        form = HelpRequestForm()
        if request.method == "GET":
            return self._form_page(form)
        if not form.validate_on_submit():  # only the CSRF token can fail here
            return self._form_page(form, status=400)
        begin_write()
        try:
            item, token = help_requests.submit_request(
                client=client_address(), **{name: getattr(form, name).data for name in help_requests.FIELDS})
        except ValidationFailed as err:
            db.session.rollback()
            general = show_field_errors(form, err)
            flash(gettext("The help request was not posted: please correct the marked fields."), "danger")
            return self._form_page(form, general=general, status=400)
        except help_requests.RateLimited as err:
            db.session.rollback()
            return self._form_page(form, general=err.messages, status=429)
        db.session.commit()
        # The token is shown this once (the page is not cached); only its hash is stored.
        response = make_response(self.render_template(
            "help_requests/posted.html", title=gettext("Post a Help Request"), item=request_facts(item, full=True),
            follow_url=url_for(".follow", token=token, _external=True)))
        response.headers["Cache-Control"] = "no-store"
        return response

    @expose("/follow/<token>")
    def follow(self, token):
        """The requester's private page: the request's status, who claimed it, the outcome."""
        try:
            item = help_requests.followed_request(token)
        except ScopeViolation:
            abort(404)
        response = make_response(self.render_template(
            "help_requests/follow.html", title=item.title, item=request_facts(item, full=True),
            project_id=_public_project_id(item)))
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"  # the token is in this page's URL
        return response

    @expose("/mine")
    @has_access
    def mine(self):
        """我的求助: the requests the signed-in user posted (the follow link is not shown again)."""
        page = page_arg()
        rows, more = help_requests.my_requests(getattr(g.user, "id", None), page=page)
        return self.render_template("help_requests/mine.html", title=gettext("My Help Requests"),
                                    rows=[request_facts(r, full=True) for r in rows], page=page, more=more)


# --- 区域监管 → 求助审核 ---


_MODERATION_TABS = ("pending", "published", "claimed", "resolved", "converted", "rejected", "hidden", "all")


class HelpModerationView(BaseView):
    """区域监管 → 求助审核 (/help-moderation/): the requests of the officer's regions —
    publish a pending one, hide or show one, close one with a note. Others' ids 404."""

    route_base = "/help-moderation"
    default_view = "index"
    class_permission_name = RESOURCE_HELP_REQUEST
    method_permission_name = {name: ACTION_MODERATE for name in
                              ("index", "show", "publish", "hide", "unhide", "close", "contact")}
    base_permissions = [f"can_{ACTION_MODERATE}"]

    def _item(self, request_id) -> HelpRequest:
        try:
            return help_requests.moderated_request(request_id)
        except ScopeViolation:
            abort(404)

    @expose("/")
    @has_access
    def index(self):
        tab = request.args.get("status", "pending")
        tab = tab if tab in _MODERATION_TABS else "pending"
        page = page_arg()
        rows, more = help_requests.moderation_list(
            status="" if tab in ("all", "hidden") else tab, hidden=tab == "hidden", page=page)
        labels = help_requests.status_labels()
        tabs = [(t, labels.get(t) or (gettext("Hidden") if t == "hidden" else gettext("All"))) for t in _MODERATION_TABS]
        return self.render_template("help_requests/moderation.html", title=gettext("Help Request Moderation"),
                                    rows=[request_facts(r, full=True) for r in rows], tab=tab, tabs=tabs,
                                    page=page, more=more)

    @expose("/<int:request_id>")
    @has_access
    def show(self, request_id):
        item = self._item(request_id)
        return self.render_template(
            "help_requests/moderation_show.html", title=item.title, item=request_facts(item, full=True),
            can_close=item.status in help_requests.OPEN_STATUSES, project_id=_public_project_id(item))

    def _act(self, request_id, action, done: str):
        begin_write()
        item = self._item(request_id)

        def run():
            action(item)
            return done

        return perform(run, url_for(".show", request_id=request_id))

    @expose("/<int:request_id>/publish", methods=["POST"])
    @has_access
    def publish(self, request_id):
        return self._act(request_id, help_requests.publish, gettext("The help request has been published."))

    @expose("/<int:request_id>/hide", methods=["POST"])
    @has_access
    def hide(self, request_id):
        return self._act(request_id, lambda item: help_requests.set_hidden(item, True),
                         gettext("The help request is hidden from the public list."))

    @expose("/<int:request_id>/unhide", methods=["POST"])
    @has_access
    def unhide(self, request_id):
        return self._act(request_id, lambda item: help_requests.set_hidden(item, False),
                         gettext("The help request is shown again."))

    @expose("/<int:request_id>/close", methods=["POST"])
    @has_access
    def close(self, request_id):
        return self._act(request_id, lambda item: help_requests.close(item, request.form.get("note")),
                         gettext("The help request has been closed."))

    @expose("/<int:request_id>/contact", methods=["POST"])
    @has_access
    def contact(self, request_id):
        return _contact_page(self, self._item(request_id), url_for(".show", request_id=request_id))


def _contact_page(view, item: HelpRequest, back: str):
    """The full contact phone, recorded in the audit log (POST: a deliberate action)."""
    try:
        phone = help_requests.reveal_contact(item)
    except ScopeViolation:
        db.session.rollback()
        abort(404)
    db.session.commit()
    response = make_response(view.render_template(
        "help_requests/contact.html", title=gettext("Contact phone"), item=request_facts(item, full=True),
        phone=phone, back=back))
    response.headers["Cache-Control"] = "no-store"
    return response


# --- 团体管理 → 求助认领 ---


class GroupHelpRequestsView(BaseView):
    """团体管理 → 求助认领 (/group-admin/help-requests/): published requests in the regions
    of the groups the user administers (认领 for one of them), and the requests their
    groups claimed — mark resolved, or turn into a project (发布新项目 prefilled)."""

    route_base = "/group-admin/help-requests"
    default_view = "index"
    class_permission_name = RESOURCE_HELP_REQUEST
    method_permission_name = {name: ACTION_CLAIM for name in ("index", "show", "claim", "resolve", "contact")}
    base_permissions = [f"can_{ACTION_CLAIM}"]

    def _item(self, request_id) -> HelpRequest:
        try:
            return help_requests.group_request(request_id)
        except ScopeViolation:
            abort(404)

    @expose("/")
    @has_access
    def index(self):
        tab = "claimed" if request.args.get("tab") == "claimed" else "open"
        page = page_arg()
        if tab == "claimed":
            rows, more = help_requests.claimed_by_groups(page=page)
        else:
            rows, more = help_requests.open_for_groups(page=page)
        return self.render_template(
            "help_requests/group_list.html", title=gettext("Claim Help Requests"), tab=tab, page=page, more=more,
            rows=[request_facts(r, full=tab == "claimed") for r in rows],
            has_groups=bool(help_requests.claiming_groups()))

    @expose("/<int:request_id>")
    @has_access
    def show(self, request_id):
        item = self._item(request_id)
        scope = current_scope()
        mine = item.claimed_by_group_id is not None and (scope.everything or item.claimed_by_group_id in scope.group_ids)
        groups = [grp for grp in help_requests.claiming_groups()
                  if path_is_under(item.region_path, grp.region_path)] if item.status == help_requests.PUBLISHED else []
        return self.render_template(
            "help_requests/group_show.html", title=item.title,
            item=request_facts(item, full=item.claimed_by_group_id is not None),
            groups=groups, can_finish=mine and item.status == help_requests.CLAIMED,
            claimed=item.claimed_by_group_id is not None, project_id=_public_project_id(item))

    @expose("/<int:request_id>/claim", methods=["POST"])
    @has_access
    def claim(self, request_id):
        begin_write()
        item = self._item(request_id)
        pk = row_id(request.form.get("group"))
        group = db.session.get(VolunteerGroup, pk) if pk is not None else None
        try:
            help_requests.claim(item, group)
        except ScopeViolation:
            db.session.rollback()
            abort(404)
        except DomainError as err:
            flash_errors(err)
        else:
            db.session.commit()
            flash(gettext("%(group)s has claimed the help request.", group=group.name), "success")
        return redirect(url_for(".show", request_id=request_id))

    @expose("/<int:request_id>/resolve", methods=["POST"])
    @has_access
    def resolve(self, request_id):
        begin_write()
        item = self._item(request_id)
        try:
            help_requests.resolve(item, request.form.get("resolution"))
        except ScopeViolation:
            db.session.rollback()
            abort(404)
        except DomainError as err:
            flash_errors(err)
        else:
            db.session.commit()
            flash(gettext("The help request is marked resolved."), "success")
        return redirect(url_for(".show", request_id=request_id))

    @expose("/<int:request_id>/contact", methods=["POST"])
    @has_access
    def contact(self, request_id):
        return _contact_page(self, self._item(request_id), url_for(".show", request_id=request_id))


# --- REST: /api/v1/help_request/ ---


class ReadableHelpRequest(BaseFilter):
    """FAB filter: requests the caller reads in full — officers their regions', group admins
    their groups' claims. ``arg_name`` is None: not a user filter."""

    name = "Readable"

    def apply(self, query, value):
        return query.filter(help_requests.reader_clause(current_scope()))


def _utc(value: datetime | None) -> str | None:
    return value.replace(tzinfo=timezone.utc).isoformat() if value is not None else None


def public_json(item: HelpRequest) -> dict:
    """A request as anyone may read it: the contact name and phone masked."""
    return {
        "id": item.id, "title": item.title, "description": item.description, "category": item.category,
        "status": item.status, "region_code": item.region_code,
        "region_name": item.region.name if item.region else None,
        "contact_name": help_requests.mask_name(item.contact_name),
        "contact_phone_masked": item.contact_phone_masked,
        "claimed_by_group": item.claimed_by_group.name if item.claimed_by_group is not None else None,
        "project_id": item.project_id, "resolution": item.resolution,
        "created_on": _utc(item.created_on), "resolved_on": _utc(item.resolved_on),
    }


_TIME = {"type": "string", "format": "date-time", "description": "UTC, ISO 8601 with offset"}


class HelpRequestSchema(Schema):
    """A help request as its officers and claiming group read it (the phone masked)."""

    id = fields.Integer()
    title = fields.String()
    description = fields.String()
    category = fields.String()
    status = fields.String(metadata={"enum": list(RequestStatus.labels())})
    is_hidden = fields.Boolean()
    region_code = fields.String()
    contact_name = fields.String()
    contact_phone_masked = fields.String(allow_none=True)
    claimed_by_group = fields.Function(
        lambda h: {"id": h.claimed_by_group_id, "name": h.claimed_by_group.name} if h.claimed_by_group_id else None,
        metadata={"type": "object", "nullable": True})
    claimed_on = fields.Function(lambda h: _utc(h.claimed_on), metadata=_TIME)
    project_id = fields.Integer(allow_none=True)
    resolution = fields.String(allow_none=True)
    resolved_on = fields.Function(lambda h: _utc(h.resolved_on), metadata=_TIME)
    created_on = fields.Function(lambda h: _utc(h.created_on), metadata=_TIME)


class PublicHelpRequestSchema(Schema):
    """A help request as anyone reads it (``public_json``): the contact masked. Documents
    ``GET /api/v1/help_request/public/`` (an OpenAPI component; the view builds the dict)."""

    id = fields.Integer()
    title = fields.String()
    description = fields.String()
    category = fields.String()
    status = fields.String(metadata={"enum": list(RequestStatus.labels())})
    region_code = fields.String(allow_none=True)
    region_name = fields.String(allow_none=True)
    contact_name = fields.String(allow_none=True, metadata={"description": "masked"})
    contact_phone_masked = fields.String(allow_none=True)
    claimed_by_group = fields.String(allow_none=True, metadata={"description": "the claiming group's name"})
    project_id = fields.Integer(allow_none=True)
    resolution = fields.String(allow_none=True)
    created_on = fields.String(allow_none=True, metadata=_TIME)
    resolved_on = fields.String(allow_none=True, metadata=_TIME)


class HelpRequestApi(ScopedApiMixin, ModelRestApi):
    """求助信息 over REST. ``GET /public/`` and ``/public/<id>``: the public list, anyone,
    contact masked, never a pending, closed or hidden request. ``GET /`` and ``/<id>``
    (``can_read``): the requests the caller reads in full — officers their regions',
    group admins those their groups claimed (phone masked). ``POST /`` (``can_write``,
    which the Public role holds): 发布求助, rate-limited per client address like the page."""

    resource_name = "help_request"
    openapi_spec_tag = "Help Requests"
    datamodel = ScopedInterface(HelpRequest)
    class_permission_name = RESOURCE_HELP_REQUEST
    method_permission_name = {**READ_ONLY, "submit": ACTION_WRITE}
    include_route_methods = {"get", "get_list", "submit", "public_list", "public_show"}
    base_filters = [["id", ReadableHelpRequest, None]]
    list_columns = show_columns = [
        "id", "title", "description", "category", "status", "is_hidden", "region_code", "contact_name",
        "contact_phone_masked", "claimed_by_group", "claimed_on", "project_id", "resolution", "resolved_on",
        "created_on"]
    # What HelpRequestSchema reads, in one query (the claiming group joined).
    list_select_columns = show_select_columns = [
        "id", "title", "description", "category", "status", "is_hidden", "region_path", "contact_name",
        "contact_phone_masked", "claimed_by_group_id", "claimed_by_group.name", "claimed_on", "project_id",
        "resolution", "resolved_on", "created_on"]
    list_model_schema = HelpRequestSchema()
    openapi_spec_component_schemas = (PublicHelpRequestSchema,)
    show_model_schema = type("HelpRequestShowSchema", (HelpRequestSchema,), {})()  # one class per OpenAPI schema
    order_columns = ["id", "created_on"]
    base_order = ("id", "desc")
    search_columns = ["status", "category", "is_hidden"]

    def _handle_columns_args(self, args, default_select_columns, default_response_columns):
        return default_select_columns, []

    @api_expose("/public/", methods=["GET"])
    @safe
    def public_list(self):
        """The public list of help requests (求助信息).
        ---
        get:
          summary: Public help requests, newest first, contact masked (no login needed)
          parameters:
          - {in: query, name: region, schema: {type: string}, description: region code or exact name (and below)}
          - {in: query, name: category, schema: {type: string}}
          - {in: query, name: page, schema: {type: integer, minimum: 0}}
          responses:
            200:
              description: One page (20 rows) and whether more follow
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      page: {type: integer}
                      more: {type: boolean}
                      result:
                        type: array
                        items:
                          $ref: '#/components/schemas/PublicHelpRequestSchema'
        """
        page = page_arg()
        rows, more = help_requests.search_public(region=(request.args.get("region") or "")[:40],
                                                 category=(request.args.get("category") or "")[:40], page=page)
        return self.response(200, result=[public_json(r) for r in rows], page=page, more=more)

    @api_expose("/public/<int:pk>", methods=["GET"])
    @safe
    def public_show(self, pk):
        """One public help request.
        ---
        get:
          summary: One public help request, contact masked (no login needed)
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200:
              description: The request
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      result:
                        $ref: '#/components/schemas/PublicHelpRequestSchema'
            404:
              description: Unknown, awaiting moderation, closed or hidden
        """
        try:
            item = help_requests.public_request(pk)
        except ScopeViolation:
            return self.response_404()
        return self.response(200, result=public_json(item))

    @api_expose("/", methods=["POST"])
    @protect()
    @safe
    def submit(self):
        """Post a help request (发布求助).
        ---
        post:
          summary: Post a help request; officers publish it. Rate-limited per client address.
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  required: [region_code, category, title, description, contact_name, contact_phone]
                  properties:
                    region_code: {type: string, description: county level or below}
                    category: {type: string}
                    title: {type: string, maxLength: 120}
                    description: {type: string, maxLength: 2000}
                    contact_name: {type: string, maxLength: 64}
                    contact_phone: {type: string}
          responses:
            201:
              description: Posted, awaiting moderation; the follow token is given this once
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      id: {type: integer}
                      status: {type: string, example: pending}
                      follow_token: {type: string}
                      follow_url: {type: string}
            400:
              description: '{"message": {field: [messages]}} naming every refused field'
            401:
              description: >-
                An Authorization header that is not a valid, unexpired bearer token of an
                active user (without the header the request is posted anonymously; with a
                valid token the caller is recorded as its creator and finds it in 我的求助)
            429:
              description: Too many help requests from this address this hour
        """
        try:
            bearer_user()  # @protect skips the token: the Public role may post
        except InvalidToken:
            return self.response_401()
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return self.response_400(message=gettext("Send the help request as a JSON object."))
        wrong = [name for name in help_requests.FIELDS
                 if body.get(name) is not None and not isinstance(body.get(name), str)]
        if wrong:
            return self.response_400(message={name: [gettext("Wrong type.")] for name in wrong})
        begin_write()
        try:
            item, token = help_requests.submit_request(
                client=client_address(), **{name: body.get(name) for name in help_requests.FIELDS})
        except ValidationFailed as err:
            db.session.rollback()
            return self.response_400(message=err.fields or err.messages)
        except help_requests.RateLimited as err:
            db.session.rollback()
            return self.response(429, message="; ".join(err.messages))
        db.session.commit()
        return make_response(jsonify(
            id=item.id, status=item.status, follow_token=token,
            follow_url=url_for("HelpRequestsView.follow", token=token, _external=True)), 201)


def register(appbuilder: AppBuilder) -> None:
    """Add the help-request pages, their menu entries and the REST resource."""
    appbuilder.add_view(HelpRequestsView, MENU_HELP_REQUESTS, href="/help/", icon="fa-life-ring",
                        label=_("Help Requests"))
    appbuilder.add_view(HelpModerationView, MENU_HELP_MODERATION, href="/help-moderation/", icon="fa-life-ring",
                        label=_("Help Request Moderation"), **menus.REGION_OVERSIGHT)
    appbuilder.add_view(GroupHelpRequestsView, MENU_GROUP_HELP_REQUESTS, href="/group-admin/help-requests/",
                        icon="fa-life-ring", label=_("Claim Help Requests"), **menus.GROUP_ADMIN)
    appbuilder.add_link(MENU_MY_HELP_REQUESTS, href="/help/mine", icon="fa-life-ring", label=_("My Help Requests"),
                        **menus.USER_CENTER)
    appbuilder.add_api(HelpRequestApi)
