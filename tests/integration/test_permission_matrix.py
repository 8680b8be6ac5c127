"""Permission matrix: every scoped page and API endpoint, for every demo role, tried
over HTTP against a ground truth computed here in plain Python (``startswith`` over
the rows), independently of app/security/scope.py's SQL.

For each (account, resource): lists show exactly the rows in scope, an out-of-scope
id answers 404 (page and API), related choices never offer out-of-scope rows, and
writes naming out-of-scope ids are refused and write nothing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from app.demo import DEMO_ACCOUNTS
from app.extensions import db
from app.models import (
    AuditEvent, Enrollment, GroupAdmin, Honor, Membership, Project, RegionBinding, ServiceRecord,
    Volunteer, VolunteerGroup,
)
from tests.conftest import app_on_copy, login

ACCOUNTS = [a[0] for a in DEMO_ACCOUNTS]

# (page route, API resource or None, model)
RESOURCES = {
    "volunteer": ("/volunteers", "volunteer", Volunteer),
    "volunteer_group": ("/volunteer-groups", "volunteer_group", VolunteerGroup),
    "project": ("/projects", "project", Project),
    "service_record": ("/service-records", "service_record", ServiceRecord),
    "honor": ("/honors", "honor", Honor),
    "audit_event": ("/audit-log", None, AuditEvent),
    "membership": ("/group-admin/members", "membership", Membership),
}
# Who may open which page at all (DESIGN.md §4 table); others get 403/redirect.
READERS = {
    "volunteer": {"Admin", "Officer", "HonorsEditor", "GroupAdmin", "Volunteer"},
    "volunteer_group": {"Admin", "Officer", "HonorsEditor", "GroupAdmin", "Volunteer"},
    "project": {"Admin", "Officer", "HonorsEditor", "GroupAdmin", "Volunteer"},
    "service_record": {"Admin", "Officer", "HonorsEditor", "GroupAdmin", "Volunteer"},
    "honor": {"Admin", "Officer", "HonorsEditor", "GroupAdmin", "Volunteer"},
    "audit_event": {"Admin", "Officer", "HonorsEditor", "GroupAdmin"},
    "membership": {"Admin", "Officer", "GroupAdmin", "Volunteer"},
}


@dataclass
class Truth:
    """Who the account is, in plain data read straight from the tables."""

    is_admin: bool
    officer: list[str]
    honors: list[str]
    groups: list[str]
    volunteer_id: int | None
    roles: set[str]

    def under(self, path, prefixes):
        return path is not None and any(path.startswith(p) for p in prefixes)

    def sees(self, row) -> bool:
        if self.is_admin:
            return True
        if isinstance(row, AuditEvent):
            return (self.under(row.region_path, self.officer)
                    or (row.object_type == "honor" and self.under(row.region_path, self.honors))
                    or self.under(row.group_path, self.groups))
        if self.under(getattr(row, "region_path", None), self.officer + self.honors):
            return True
        if self.under(getattr(row, "group_path", None), self.groups):
            return True
        vid = self.volunteer_id
        if isinstance(row, Volunteer):
            if row.id == vid:
                return True
            return any(m.status in ("active", "pending") and self.under(m.group_path, self.groups)
                       for m in db.session.scalars(select(Membership).where(Membership.volunteer_id == row.id)))
        if vid is not None and getattr(row, "volunteer_id", None) == vid:
            return True
        if isinstance(row, VolunteerGroup) and vid is not None:
            return db.session.scalar(select(Membership.id).where(
                Membership.group_id == row.id, Membership.volunteer_id == vid,
                Membership.status == "active")) is not None
        if isinstance(row, Project) and vid is not None:
            return db.session.scalar(select(Enrollment.id).where(
                Enrollment.project_id == row.id, Enrollment.volunteer_id == vid).limit(1)) is not None
        return False


def truth_for(app, username) -> Truth:
    user = app.appbuilder.sm.find_user(username=username)
    bindings = db.session.scalars(select(RegionBinding).where(RegionBinding.user_id == user.id)).all()
    groups = db.session.scalars(select(VolunteerGroup.group_path).join(GroupAdmin).where(
        GroupAdmin.user_id == user.id)).all()
    return Truth(
        is_admin=any(r.name == "Admin" for r in user.roles),
        officer=[b.region_path for b in bindings if b.kind == "officer"],
        honors=[b.region_path for b in bindings if b.kind == "honors_editor"],
        groups=list(groups),
        volunteer_id=db.session.scalar(select(Volunteer.id).where(Volunteer.user_id == user.id)),
        roles={r.name for r in user.roles},
    )


def split_ids(app, username, model):
    """(ids in scope, ids out of scope) by the ground truth."""
    with app.app_context():
        truth = truth_for(app, username)
        rows = db.session.scalars(select(model)).all()
        inside = {r.id for r in rows if truth.sees(r)}
        return inside, {r.id for r in rows} - inside, truth


@pytest.fixture(scope="module")
def shared_app(template_db):
    """One app for the read-only checks of this module (they change nothing)."""
    with app_on_copy(template_db) as application:
        yield application


def page_ids(client, route, view_name):
    """Every row id a list page shows, walking its pages."""
    ids, page = [], 0
    while True:
        html = client.get(f"{route}/list/?psize_{view_name}=100&page_{view_name}={page}").get_data(as_text=True)
        found = [int(x) for x in re.findall(rf'href="{route}/show/(\d+)', html)]
        ids += found
        if len(found) < 100:
            return ids
        page += 1


VIEW_NAMES = {
    "volunteer": "VolunteerModelView", "volunteer_group": "VolunteerGroupModelView",
    "project": "ProjectModelView", "service_record": "ServiceRecordModelView",
    "honor": "HonorModelView", "audit_event": "AuditEventModelView",
    "membership": "MembershipModelView",
}


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("username", ACCOUNTS)
def test_list_and_show__every_role_sees_exactly_its_scope(shared_app, username, resource):
    route, _, model = RESOURCES[resource]
    inside, outside, truth = split_ids(shared_app, username, model)
    client = shared_app.test_client()
    login(client, username)
    resp = client.get(f"{route}/list/")
    if not truth.roles & READERS[resource]:
        assert resp.status_code in (302, 403)
        return
    assert resp.status_code == 200
    listed = page_ids(client, route, VIEW_NAMES[resource])
    assert len(listed) == len(set(listed))
    assert set(listed) == inside, f"leaked {set(listed) - inside}, missing {inside - set(listed)}"
    for pk in sorted(outside)[:3]:
        assert client.get(f"{route}/show/{pk}").status_code == 404
    for pk in sorted(inside)[:2]:
        assert client.get(f"{route}/show/{pk}").status_code == 200


@pytest.mark.parametrize("resource", [r for r, v in RESOURCES.items() if v[1]])
@pytest.mark.parametrize("username", ACCOUNTS)
def test_api__every_role_sees_exactly_its_scope(shared_app, username, resource):
    _, api, model = RESOURCES[resource]
    inside, outside, truth = split_ids(shared_app, username, model)
    client = shared_app.test_client()
    token = client.post("/api/v1/security/login", json={
        "username": username, "password": "Demo12345!", "provider": "db"}).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    ids, page = [], 0
    while True:
        resp = client.get(f"/api/v1/{api}/?q=(page:{page},page_size:100)", headers=headers)
        if not truth.roles & READERS[resource]:
            assert resp.status_code in (401, 403)
            return
        assert resp.status_code == 200, resp.data
        body = resp.get_json()
        ids += body["ids"]
        for item in body["result"]:
            assert re.fullmatch(r"\d{6}(\d{3}){0,2}", item["region_code"])
        if len(body["ids"]) < 100:
            break
        page += 1
    assert set(ids) == inside
    for pk in sorted(outside)[:3]:
        assert client.get(f"/api/v1/{api}/{pk}", headers=headers).status_code == 404
    if inside:
        item = client.get(f"/api/v1/{api}/{min(inside)}", headers=headers).get_json()["result"]
        with shared_app.app_context():
            row = db.session.get(model, min(inside))
            assert item["region_code"] == row.region_path.rstrip("/").rsplit("/", 1)[-1]


def _select_options(html, field):
    # FAB's search widget ships its selects as JSON inside a script: unescape the markup.
    html = html.replace("\\u003c", "<").replace("\\u003e", ">").replace('\\"', '"')
    match = re.search(rf'<select[^>]*(?:id|name)="{field}"[^>]*>(.*?)</select>', html, re.S)
    assert match, f"no select for {field}"
    return {int(v) for v in re.findall(r'<option[^>]*value="(\d+)"', match.group(1))}


@pytest.mark.parametrize("username", ["longting_officer", "shunhe_team_admin", "kaifeng_officer"])
def test_search_widget__related_choices_stay_in_scope(shared_app, username):
    client = shared_app.test_client()
    login(client, username)
    html = client.get("/service-records/list/").get_data(as_text=True)
    for field, model in (("project", Project), ("group", VolunteerGroup)):
        inside, outside, _ = split_ids(shared_app, username, model)
        offered = _select_options(html, field)
        assert offered <= inside and not offered & outside


def test_honor_form__group_choices_stay_in_scope(shared_app):
    client = shared_app.test_client()
    login(client, "kaifeng_honors")
    offered = _select_options(client.get("/honors/add").get_data(as_text=True), "volunteer_group")
    inside, outside, _ = split_ids(shared_app, "kaifeng_honors", VolunteerGroup)
    assert offered and offered <= inside and not offered & outside


def test_api_info__honor_choices_stay_in_scope(shared_app):
    client = shared_app.test_client()
    token = client.post("/api/v1/security/login", json={
        "username": "kaifeng_honors", "password": "Demo12345!", "provider": "db"}).get_json()["access_token"]
    info = client.get("/api/v1/honor/_info?q=(add_columns:(volunteer_group:(page_size:100)))",
                      headers={"Authorization": f"Bearer {token}"}).get_json()
    field = next(f for f in info["add_columns"] if f["name"] == "volunteer_group")
    offered = {v["id"] for v in field["values"]}
    inside, outside, _ = split_ids(shared_app, "kaifeng_honors", VolunteerGroup)
    assert offered and offered <= inside and not offered & outside


# --- Writes with out-of-scope ids ---


def _flagged_count(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(ServiceRecord).where(ServiceRecord.is_flagged))


def test_flag_action__in_scope_records_are_flagged(app):
    inside, _, _ = split_ids(app, "longting_officer", ServiceRecord)
    client = app.test_client()
    login(client, "longting_officer")
    resp = client.post("/service-records/action_post", data={"action": "flag", "rowid": sorted(inside)[:2]})
    assert resp.status_code == 302
    assert _flagged_count(app) == 2


@pytest.mark.parametrize("username", ["longting_officer", "shunhe_officer", "kaifeng_officer"])
def test_flag_action__out_of_scope_id_is_refused_and_nothing_changes(app, username):
    inside, outside, _ = split_ids(app, username, ServiceRecord)
    client = app.test_client()
    login(client, username)
    resp = client.post("/service-records/action_post",
                       data={"action": "flag", "rowid": [min(inside), min(outside)]})
    assert resp.status_code == 404
    resp = client.post(f"/service-records/action/flag/{min(outside)}")
    assert resp.status_code == 404
    assert _flagged_count(app) == 0


def test_flag_action__group_admin_may_not_flag(app):
    inside, _, _ = split_ids(app, "longting_corps_admin", ServiceRecord)
    client = app.test_client()
    login(client, "longting_corps_admin")
    resp = client.post("/service-records/action_post", data={"action": "flag", "rowid": [min(inside)]})
    assert resp.status_code == 403
    assert _flagged_count(app) == 0


def test_unknown_action__is_404_not_500(app):
    client = app.test_client()
    login(client, "admin")
    assert client.post("/service-records/action_post", data={"action": "nope", "rowid": ["1"]}).status_code == 404


def test_get_action__is_not_allowed(app):
    client = app.test_client()
    login(client, "admin")
    assert client.get("/service-records/action/flag/1").status_code == 405
    assert _flagged_count(app) == 0


def test_matrix__covers_every_registered_scoped_view_and_api(shared_app):
    """A new scoped view or API must be added to RESOURCES (and so to this matrix)."""
    from flask_appbuilder import ModelRestApi, ModelView

    from app.security.scoped_views import ScopedApiMixin, ScopedViewMixin

    routes = {v[0] for v in RESOURCES.values()}
    apis = {v[1] for v in RESOURCES.values() if v[1]}
    for view in shared_app.appbuilder.baseviews:
        if isinstance(view, ModelView) and view.__module__.startswith("app."):
            assert isinstance(view, ScopedViewMixin), type(view).__name__
            if view.route_base not in ("/regions", "/holidays"):  # national reference data
                assert view.route_base in routes, view.route_base
                assert view.base_filters, f"{type(view).__name__} has no scope filter"
        if isinstance(view, ModelRestApi) and view.__module__.startswith("app.") and view.resource_name != "region":
            assert isinstance(view, ScopedApiMixin) and view.resource_name in apis, view.resource_name


@pytest.mark.parametrize("username", [a for a in ACCOUNTS if a != "admin"])
@pytest.mark.parametrize("url", ["/users/list/", "/roles/list/", "/users/add", "/permissions/list/"])
def test_fab_user_management__only_admin(shared_app, username, url):
    client = shared_app.test_client()
    login(client, username)
    assert client.get(url).status_code in (302, 403)


def test_fab_user_management__admin_reaches_it(shared_app):
    client = shared_app.test_client()
    login(client, "admin")
    assert client.get("/users/list/").status_code == 200


@pytest.mark.parametrize("value", ["410202", "龙亭区"])
def test_region_search__by_code_or_name_stays_in_scope(shared_app, value):
    inside, _, _ = split_ids(shared_app, "kaifeng_officer", Volunteer)
    with shared_app.app_context():
        longting = {v.id for v in db.session.scalars(select(Volunteer).where(
            Volunteer.region_path.startswith("410000/410200/410202/")))}
    client = shared_app.test_client()
    login(client, "kaifeng_officer")
    html = client.get(f"/volunteers/list/?_flt_0_region_path={value}&psize_VolunteerModelView=100").get_data(as_text=True)
    found = {int(x) for x in re.findall(r'href="/volunteers/show/(\d+)', html)}
    assert found and found <= longting & inside


def test_region_search__outside_the_scope_finds_nothing(shared_app):
    client = shared_app.test_client()
    login(client, "longting_officer")
    html = client.get("/volunteers/list/?_flt_0_region_path=410203").get_data(as_text=True)
    assert not re.findall(r'href="/volunteers/show/(\d+)', html)


def test_anonymous__public_role_data_applies(shared_app):
    client = shared_app.test_client()
    assert client.get("/regions/list/").status_code == 200  # Public: region read (pickers)
    assert client.get("/volunteers/list/").status_code == 302  # no volunteer read


@pytest.mark.parametrize("api", ["volunteer_group", "project", "volunteer", "service_record", "honor"])
def test_api__anonymous_or_bad_token_sees_no_rows(shared_app, api):
    client = shared_app.test_client()
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        resp = client.get(f"/api/v1/{api}/", headers=headers)
        assert resp.status_code in (200, 401, 422)
        if resp.status_code == 200:
            assert resp.get_json()["ids"] == []
