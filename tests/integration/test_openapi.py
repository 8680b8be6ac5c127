"""The OpenAPI spec at /api/v1/_openapi describes every resource with its fields
(issue 9): each operation's success response has a schema with properties, each
ModelRestApi's list and show schemas carry exactly its list_columns / show_columns,
and partner API tokens are documented as a bearer security scheme."""
from __future__ import annotations

import pytest
from flask_appbuilder import ModelRestApi

from tests.conftest import app_on_copy, login

RESOURCES = ["volunteer", "volunteer_group", "project", "service_record", "honor", "region", "certificate",
             "help_request", "membership", "hour_code"]
FAB_OWN = ("/api/{version}/_openapi", "/api/v1/menu/")  # FAB's: the spec itself and the menu


@pytest.fixture(scope="module")
def served(template_db):
    """(app, spec) read once as the Admin (the spec is Admin only)."""
    with app_on_copy(template_db) as app:
        client = login(app.test_client(), "admin")
        resp = client.get("/api/v1/_openapi")
        assert resp.status_code == 200
        yield app, resp.get_json()


def _resolve(spec: dict, schema: dict) -> dict:
    """``schema`` with references followed (a nullable relation is ``allOf: [$ref]``)."""
    while isinstance(schema, dict) and ("$ref" in schema or len(schema.get("allOf") or ()) == 1):
        if "allOf" in schema:
            schema = schema["allOf"][0]
        else:
            schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _fields(spec: dict, schema: dict, prefix: str = "") -> set[str]:
    """The field names a schema describes, nested objects flattened as ``a.b``."""
    names = set()
    for name, prop in (_resolve(spec, schema).get("properties") or {}).items():
        prop = _resolve(spec, prop)
        if prop.get("type") == "object" and prop.get("properties"):
            names |= _fields(spec, prop, f"{prefix}{name}.")
        else:
            names.add(prefix + name)
    return names


def _success_schemas(spec: dict):
    for path, operations in spec["paths"].items():
        if path in FAB_OWN:
            continue
        for method, operation in operations.items():
            responses = operation.get("responses") or {}
            for code, response in responses.items():
                if str(code).startswith("2"):
                    if "$ref" in response:
                        response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
                    schema = ((response.get("content") or {}).get("application/json") or {}).get("schema")
                    yield f"{method.upper()} {path} {code}", schema


def test_openapi__every_resource_has_paths(served):
    _app, spec = served
    for resource in RESOURCES:
        assert any(path.startswith(f"/api/v1/{resource}/") for path in spec["paths"]), resource


def test_openapi__every_success_response_describes_its_fields(served):
    _app, spec = served
    seen = 0
    for name, schema in _success_schemas(spec):
        seen += 1
        assert schema is not None, f"{name}: no response schema"
        props = _resolve(spec, schema).get("properties") or {}
        assert props, f"{name}: the schema has no properties"
        if "result" in props:
            result = _resolve(spec, props["result"])
            item = _resolve(spec, result.get("items", {})) if result.get("type") == "array" else result
            assert item.get("properties"), f"{name}: the result has no properties"
    assert seen > 30


def _model_apis(app):
    return [view for view in app.appbuilder.baseviews if isinstance(view, ModelRestApi)]


def test_openapi__list_and_show_schemas_are_the_api_columns(served):
    app, spec = served
    schemas = spec["components"]["schemas"]
    apis = _model_apis(app)
    assert {api.resource_name for api in apis} >= set(RESOURCES) - {"hour_code"}
    for api in apis:
        name = type(api).__name__
        if "get_list" in api.include_route_methods:
            assert _fields(spec, schemas[f"{name}.get_list"]) == set(api.list_columns), name
        if "get" in api.include_route_methods:
            assert _fields(spec, schemas[f"{name}.get"]) == set(api.show_columns), name


def test_openapi__bearer_api_key_scheme_documented(served):
    _app, spec = served
    schemes = spec["components"]["securitySchemes"]
    assert schemes["api_key"]["type"] == "http" and schemes["api_key"]["scheme"] == "bearer"
    assert schemes["jwt"]["scheme"] == "bearer"
    get_list = spec["paths"]["/api/v1/volunteer/"]["get"]
    assert {"api_key": []} in get_list["security"]
