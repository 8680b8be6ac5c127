"""Scoped building blocks for views and APIs: a datamodel interface with a capped
COUNT and eager loads, and mixins that close the holes FAB's row filters leave
(FAB-NOTES.md "Scope"): actions, page size, sort columns, POSTed foreign keys."""
from __future__ import annotations

from flask import abort, flash, redirect, request
from flask_appbuilder import expose
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import gettext
from marshmallow_sqlalchemy import SQLAlchemyAutoSchema
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import selectinload

from app.security.scope import InScope, is_row_id
from app.services.errors import DomainError, ScopeViolation

COUNT_CAP = 10000
MAX_PAGE_SIZE = 100
MAX_OFFSET = 10_000_000


class CappedCount(int):
    """A row count that stopped at the cap: shows as "10000+", computes as an int."""

    def __str__(self) -> str:
        return f"{COUNT_CAP}+"

    def __html__(self) -> str:
        return str(self)


class ScopedInterface(SQLAInterface):
    """SQLAInterface with a capped COUNT and eager-loaded many-to-one relations.

    FAB counts every matching row for each list page; at a million rows that
    count is most of the page's cost. Counting ``LIMIT cap+1`` keeps it bounded.
    List pages lazy-load each row's relations (N+1); ``selectinload`` makes
    that one query per relation. ``eager_relations`` names the relations to load
    (a view sets it from its list columns); by default every many-to-one relation.
    """

    eager_relations: list[str] | None = None

    def get(self, id, filters=None, *args, **kwargs):
        """The row with this primary key, or None for a key no row can have (an id
        past the database's integer range would otherwise be a 500, not a 404)."""
        if self._integer_key and not is_row_id(id):
            return None
        return super().get(id, filters, *args, **kwargs)

    @property
    def _integer_key(self) -> bool:
        return _has_integer_key(self.obj)

    def get_related_obj(self, col_name: str, value):
        """The related row a relation filter names (``rel_o_m``): an id no row can have is
        refused as bad input (400), not passed to the driver (an overflow is a 500)."""
        ids = value if isinstance(value, (list, tuple)) else [value]  # a form prefill gives ["11"]
        if _has_integer_key(self.get_related_model(col_name)) and not all(is_row_id(v) for v in ids):
            raise DomainError(gettext("%(value)s is not a valid id.", value=str(value)[:20]))
        return super().get_related_obj(col_name, value)

    def query_count(self, query, filters=None, select_columns=None) -> int:
        inner = self._apply_inner_all(query, filters, select_columns=select_columns, aliases_mapping={})
        count = inner.limit(COUNT_CAP + 1).count()
        return CappedCount(count) if count > COUNT_CAP else count

    def apply_all(self, query, filters=None, order_column="", order_direction="", page=None,
                  page_size=None, select_columns=None, outer_default_load=False):
        if page and page < 0:  # FAB passes it on: a negative OFFSET (PostgreSQL refuses it, and a
            page = 0  # huge one overflows the driver's integer) — schemathesis found the 500
        elif page and page_size and page * page_size > MAX_OFFSET:  # an OFFSET past any real list
            page = MAX_OFFSET // page_size
        query = super().apply_all(query, filters, order_column, order_direction, page, page_size,
                                  select_columns, outer_default_load)
        if select_columns:  # the REST API joins its own select columns
            return query
        names = self.eager_relations
        if names is None:
            names = [r.key for r in self.obj.__mapper__.relationships if r.direction.name == "MANYTOONE"]
        return query.options(*[selectinload(getattr(self.obj, name)) for name in names])


def _has_integer_key(model) -> bool:
    from sqlalchemy import Integer

    return isinstance(model.__mapper__.primary_key[0].type, Integer)


def scoped_rel_fields(*names: str) -> dict:
    """``{name: [["id", InScope, None]]}`` for related-field dropdowns and search widgets."""
    return {name: [["id", InScope, None]] for name in names}


class ScopedViewMixin:
    """For FAB ModelViews over scoped models.

    - ``base_filters`` are the scope filter (set by the view, checked here);
    - actions load their rows *with* the scope filter (FAB loads them unfiltered)
      and answer 404 when any id is out of scope, so nothing is half-done;
    - page size is capped and sorting is limited to ``order_columns``;
    - malformed paging/sorting arguments send the user back to a clean list.
    """

    max_page_size = MAX_PAGE_SIZE
    # {column: [filter classes]} that replace FAB's type-based search filters.
    custom_search_filters: dict = {}

    def _init_properties(self):
        super()._init_properties()
        for column, classes in self.custom_search_filters.items():
            filters = [cls(column, self.datamodel) for cls in classes]
            # The search widget reads _search_filters; URL arguments (_flt_*) read _all_filters.
            self._filters._search_filters[column] = filters
            self._filters._all_filters[column] = filters

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        listed = [c for c in self.list_columns if self.datamodel.is_relation(c)]
        # Properties shown in the list may read relations too (Honor.recipient_name).
        self.datamodel.eager_relations = listed + list(getattr(self, "list_eager_relations", ()))
    def _get_list_widget(self, filters, actions=None, order_column="", order_direction="",
                         page=None, page_size=None, widgets=None, **kwargs):
        if order_column and order_column not in (self.order_columns or []):
            order_column, order_direction = "", ""
        if page_size is not None and not 0 < page_size <= self.max_page_size:
            page_size = self.max_page_size
        if page is not None and page < 0:
            page = 0
        return super()._get_list_widget(filters, actions=actions, order_column=order_column,
                                        order_direction=order_direction, page=page,
                                        page_size=page_size, widgets=widgets, **kwargs)

    def _list(self, **kwargs):
        try:
            return super()._list(**kwargs)
        except ValueError:  # FAB's int() of page / psize arguments
            abort(400, gettext("Invalid page or sort parameters."))

    def _scoped_item(self, pk):
        item = self.datamodel.get(self._deserialize_pk_if_composite(pk), self._base_filters)
        if item is None:
            abort(404)
        return item

    def _permitted_action(self, name):
        action = self.actions.get(name)
        if action is None:
            abort(404)
        permission = self.get_action_permission_name(name)
        if not self.appbuilder.sm.has_access(permission, self.class_permission_name):
            abort(403)
        return action

    def _run_action(self, action, items):
        try:
            return action.func(items)
        except ScopeViolation:
            abort(404)
        except DomainError as err:
            from app.extensions import db

            db.session.rollback()
            for message in err.messages:
                flash(message, "danger")
            return redirect(self.get_redirect())

    @expose("/download/<string:filename>")
    def download(self, filename):
        """FAB's file-column download: no view here has file columns, so nothing to serve."""
        abort(404)

    @expose("/action/<string:name>/<pk>", methods=["POST"])
    def action(self, name, pk):
        """One row's action, from its show page; the row is loaded inside the scope."""
        action = self._permitted_action(name)
        return self._run_action(action, self._scoped_item(pk))

    @expose("/action_post", methods=["POST"])
    def action_post(self):
        """Bulk action from a list; every selected row is loaded inside the scope."""
        action = self._permitted_action(request.form.get("action", ""))
        pks = request.form.getlist("rowid")
        if not pks:
            flash(gettext("No records selected."), "warning")
            return redirect(self.get_redirect())
        return self._run_action(action, [self._scoped_item(pk) for pk in pks])


_INFO_RESPONSE = {
    "description": "The add and edit form fields, filters and the caller's permissions",
    "content": {"application/json": {"schema": {
        "type": "object",
        "properties": {
            # FAB's own spec says "object": they are lists of field descriptions.
            "add_columns": {"type": "array", "items": {"type": "object"}},
            "edit_columns": {"type": "array", "items": {"type": "object"}},
            "add_title": {"type": "string"},
            "edit_title": {"type": "string"},
            "filters": {"type": "object", "description": "column name -> [{name, operator}]",
                        "additionalProperties": {"type": "array", "items": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}, "operator": {"type": "string"}}}}},
            "permissions": {"type": "array", "items": {"type": "string"}},
        },
    }}},
}


class RestFiltersMixin:
    """For every ModelRestApi: filter values of the wrong JSON type answer 400 or are
    read as text instead of ending in a 500; ``/_info`` documented as it answers."""

    openapi_spec_methods = {"info": {"get": {"responses": {
        200: _INFO_RESPONSE, 400: {"$ref": "#/components/responses/400"},
        401: {"$ref": "#/components/responses/401"}, 422: {"$ref": "#/components/responses/422"},
        500: {"$ref": "#/components/responses/500"}}}}}

    def add_api_spec(self, api_spec) -> None:
        """FAB's OpenAPI spec, corrected where the answers differ from it (schemathesis found
        these): ids are integers, not strings; a relation whose foreign key may be NULL
        answers null; a DateTime column of FAB's generated schemas is naive UTC, written
        without an offset, which is no RFC 3339 ``date-time``."""
        super().add_api_spec(api_spec)
        for path, operations in api_spec._paths.items():
            if not path.startswith(self.route_base + "/"):
                continue
            for operation in operations.values():
                for response in (operation.get("responses") or {}).values():
                    schema = ((response.get("content") or {}).get("application/json") or {}).get("schema") or {}
                    props = schema.get("properties") or {}
                    if "ids" in props:
                        props["ids"]["items"] = {"type": "integer"}
                    if props.get("id", {}).get("type") == "string":
                        props["id"]["type"] = "integer"
        name = type(self).__name__
        for suffix, model_schema in (("get_list", self.list_model_schema), ("get", self.show_model_schema)):
            component = api_spec.components.schemas.get(f"{name}.{suffix}")
            if component is not None and isinstance(model_schema, SQLAlchemyAutoSchema):
                self._document_as_answered(component)

    def _document_as_answered(self, component: dict) -> None:
        mapper = sa_inspect(self.datamodel.obj)
        for key, prop in (component.get("properties") or {}).items():
            if "$ref" in prop and key in mapper.relationships:
                if any(column.nullable for column in mapper.relationships[key].local_columns):
                    component["properties"][key] = {"allOf": [prop], "nullable": True}
            elif prop.get("format") == "date-time":
                prop.pop("format")
                prop["description"] = "UTC, ISO 8601 without offset (YYYY-MM-DDTHH:MM:SS)"

    def _handle_filters_args(self, rison_args):
        """A number filtering a text column reads as text (FAB's ``sw`` adds ``"%"`` to the
        value, and PostgreSQL compares no varchar with an integer); a mapping is refused (400)."""
        for item in rison_args.get("filters") or []:
            value = item.get("value") if isinstance(item, dict) else None
            if isinstance(value, dict):
                raise DomainError(gettext("A filter value must be text, a number or a list."))
            column = item.get("col")
            if isinstance(value, (int, float)) and not isinstance(value, bool) and isinstance(column, str) \
                    and (self.datamodel.is_string(column) or self.datamodel.is_text(column)):
                item["value"] = str(value)
        return super()._handle_filters_args(rison_args)


class ScopedApiMixin(RestFiltersMixin):
    """For FAB ModelRestApis over scoped models: rows through ``InScope``, related
    choices through ``InScope``, and domain errors as 400 (FAB's ``@safe`` turns
    any non-BadRequest exception into a 500)."""

    base_filters = [["id", InScope, None]]
    max_page_size = MAX_PAGE_SIZE

    def _init_properties(self):
        super()._init_properties()
        # ``/_info`` describes the add and edit forms with the choices of every related
        # column, read unfiltered (all volunteers, all groups). An API that cannot add
        # or edit has no such form; where it can, a relation offers rows in scope only.
        if not self._exposes("post"):
            self.add_columns = []
        if not self._exposes("put"):
            self.edit_columns = []
        for columns, rel_fields in ((self.add_columns, self.add_query_rel_fields),
                                    (self.edit_columns, self.edit_query_rel_fields)):
            for name in columns:
                if self.datamodel.is_relation(name):
                    rel_fields.setdefault(name, [["id", InScope, None]])

    def _exposes(self, method: str) -> bool:
        return self.include_route_methods is None or method in self.include_route_methods

    def _call_service(self, fn, item):
        try:
            fn(item)
        except ScopeViolation:
            raise DomainError(gettext("The record does not exist or lies outside your scope.")) from None
