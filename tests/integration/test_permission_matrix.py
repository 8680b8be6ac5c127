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
    AuditEvent, CivilUnit, Enrollment, GroupAdmin, Honor, Membership, Project, RegionBinding, ServiceRecord,
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
    "civil_unit": ("/civil-units", None, CivilUnit),
}
# Scoped APIs whose rows are not the plain "region, group or own" scope, each tried by
# actor in its own test module (who reads a certificate, a help request).
SCOPE_TESTED_ELSEWHERE = {
    "certificate": "test_certificates.py::test_api_certificate__scoped_read",
    "help_request": "test_help_requests.py (REST section)",
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
    "civil_unit": {"Admin", "Officer"},
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


def publicly_listed(row) -> bool:
    """On the public 志愿项目 list: a project of an approved group, not a backfill project."""
    return (isinstance(row, Project) and not row.is_backfill
            and db.session.get(VolunteerGroup, row.group_id).status == "approved")


def split_ids(app, username, model, *, api=False):
    """(ids in scope, ids out of scope) by the ground truth. Through the API anyone also
    reads the public project list (app/views/api.py VisibleProject)."""
    with app.app_context():
        truth = truth_for(app, username)
        rows = db.session.scalars(select(model)).all()
        inside = {r.id for r in rows if truth.sees(r) or (api and publicly_listed(r))}
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
    "membership": "MembershipModelView", "civil_unit": "CivilUnitModelView",
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
    inside, outside, truth = split_ids(shared_app, username, model, api=True)
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
            assert isinstance(view, ScopedApiMixin), view.resource_name
            assert view.resource_name in apis or view.resource_name in SCOPE_TESTED_ELSEWHERE, view.resource_name


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
    """Nothing in anyone's scope; for projects, exactly the public list (never backfill)."""
    with shared_app.app_context():
        public = {p.id for p in db.session.scalars(select(Project)) if publicly_listed(p)}
    client = shared_app.test_client()
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        resp = client.get(f"/api/v1/{api}/?q=(page_size:100)", headers=headers)
        assert resp.status_code in (200, 401, 422)
        if resp.status_code == 200:
            assert set(resp.get_json()["ids"]) == (public if api == "project" else set())


# --- 区域监管 → 证明管理: officers list their region's certificates and withdraw them ---


def _certificate_per_group(app) -> dict[int, str]:
    """One group certificate per approved group of the demo, in the group's region:
    {certificate id: region_path}."""
    from datetime import date

    from app.models import Certificate

    with app.app_context():
        volunteer = db.session.scalar(select(Volunteer).where(Volunteer.volunteer_no.is_not(None))
                                      .order_by(Volunteer.id).limit(1))
        groups = db.session.scalars(select(VolunteerGroup).where(VolunteerGroup.status == "approved")
                                    .order_by(VolunteerGroup.id)).all()
        rows = [Certificate(number=f"MATRIX{g.id:010d}", volunteer_id=volunteer.id, group_id=g.id,
                            group_path=g.group_path, region_id=g.region_id, region_path=g.region_path,
                            minutes=60, issuer=g.name, issued_on=date(2026, 1, 5), snapshot_json="{}",
                            snapshot_hash="0" * 64, is_withdrawn=False, kind="group") for g in groups]
        db.session.add_all(rows)
        db.session.commit()
        return {row.id: row.region_path for row in rows}


def test_certificate_oversight__officers_list_exactly_their_regions_others_are_refused(app):
    """Only officers (and Admin) open the page; each sees the certificates whose region
    lies in their regions, and withdrawing one outside them is 404 and writes nothing."""
    from app.models import Certificate

    certificates = _certificate_per_group(app)
    for username in ACCOUNTS:
        with app.app_context():
            truth = truth_for(app, username)
        client = app.test_client()
        login(client, username)
        resp = client.get("/oversight/certificates/")
        if not truth.roles & {"Admin", "Officer"}:
            assert resp.status_code == 403, username
            assert client.post(f"/oversight/certificates/{min(certificates)}/withdraw",
                               data={"reason": "x"}).status_code == 403
            continue
        assert resp.status_code == 200, username
        inside = {pk for pk, path in certificates.items() if truth.is_admin or truth.under(path, truth.officer)}
        listed = {int(x) for x in re.findall(r'id="certificate-(\d+)"', resp.get_data(as_text=True))}
        assert listed == inside, f"{username}: leaked {listed - inside}, missing {inside - listed}"
        for pk in sorted(set(certificates) - inside)[:3]:
            assert client.post(f"/oversight/certificates/{pk}/withdraw", data={"reason": "x"}).status_code == 404
    with app.app_context():
        assert not db.session.scalar(select(func.count()).select_from(Certificate).where(Certificate.is_withdrawn))


# --- Issue 6: project and hours pages, and the hour-code endpoints ---
#
# Who reaches which page (DESIGN.md §4): 团体管理 → 我的项目 and 计时 belong to the admins
# of the project's own group (a parent group's admin, an officer or a volunteer is
# refused; another group's id is 404); 志愿项目 is public but never shows a backfill
# project; 用户中心 → 我的项目 / 服务时长 / 申请时长 are the volunteer's own (another's id 404).

LOGIN, DENIED = "login", 403  # anonymous: 302 to the login page; signed in without the permission: 403


@pytest.fixture(scope="module")
def demo_ids(shared_app):
    """Ids of the demo rows the page matrix names, read by name."""
    from app.models import Position, RecordSource, RecordStatus

    def project(name):
        return db.session.scalar(select(Project.id).where(Project.name == name))

    def position(name):
        return db.session.scalar(select(Position.id).where(Position.project_id == project(name)).order_by(Position.id))

    with shared_app.app_context():
        vol_longting = db.session.scalar(select(Volunteer.id).join(
            shared_app.appbuilder.sm.user_model, Volunteer.user_id == shared_app.appbuilder.sm.user_model.id).where(
            shared_app.appbuilder.sm.user_model.username == "vol_longting"))
        return {
            "book": project("书店街文明劝导"), "book_pos": position("书店街文明劝导"),
            "culture": project("龙亭公园文化讲解"), "culture_pos": position("龙亭公园文化讲解"),
            "backfill": project("龙亭区志愿服务时长补录"), "backfill_pos": position("龙亭区志愿服务时长补录"),
            "enrollment": db.session.scalar(select(Enrollment.id).where(
                Enrollment.volunteer_id == vol_longting, Enrollment.project_id == project("书店街文明劝导"),
                Enrollment.status == "accepted")),
            "record": db.session.scalar(select(ServiceRecord.id).where(
                ServiceRecord.volunteer_id == vol_longting, ServiceRecord.status == RecordStatus.APPROVED,
                ServiceRecord.source != RecordSource.CORRECTION).order_by(ServiceRecord.id)),
            "book_record": db.session.scalar(select(ServiceRecord.id).where(
                ServiceRecord.position_id == position("书店街文明劝导"), ServiceRecord.status == RecordStatus.APPROVED,
                ServiceRecord.source != RecordSource.CORRECTION).order_by(ServiceRecord.id)),
            "culture_record": db.session.scalar(select(ServiceRecord.id).where(
                ServiceRecord.position_id == position("龙亭公园文化讲解"), ServiceRecord.status == RecordStatus.APPROVED,
                ServiceRecord.source != RecordSource.CORRECTION).order_by(ServiceRecord.id)),
        }


# (url template, {account or None for anonymous: expected}); "*" = every other account tried.
PAGE_CASES = [
    ("/group-admin/projects/", {None: LOGIN, "vol_longting": DENIED, "longting_officer": DENIED,
                                "longting_team_admin": 200, "admin": 200}),
    ("/group-admin/projects/new", {None: LOGIN, "vol_longting": DENIED, "longting_officer": DENIED,
                                   "longting_team_admin": 200}),
    ("/group-admin/projects/{book}", {None: LOGIN, "vol_longting": DENIED, "longting_officer": DENIED,
                                      "longting_team_admin": 200, "culture_team_admin": 404,
                                      "longting_corps_admin": 404, "shunhe_team_admin": 404, "admin": 200}),
    ("/group-admin/projects/{book}/edit", {None: LOGIN, "vol_longting": DENIED, "longting_team_admin": 200,
                                           "culture_team_admin": 404}),
    ("/group-admin/projects/{book}/positions/new", {None: LOGIN, "longting_team_admin": 200,
                                                    "culture_team_admin": 404}),
    ("/group-admin/projects/{book}/positions/{book_pos}/edit", {None: LOGIN, "longting_team_admin": 200,
                                                                "culture_team_admin": 404}),
    ("/group-admin/projects/{culture}/positions/{book_pos}/edit", {"culture_team_admin": 404}),
    ("/group-admin/projects/{backfill}", {None: LOGIN, "longting_corps_admin": 200, "longting_team_admin": 404,
                                          "longting_officer": DENIED}),
    ("/group-admin/positions/{book_pos}/timekeeping", {None: LOGIN, "vol_longting": DENIED,
                                                      "longting_officer": DENIED, "longting_team_admin": 200,
                                                      "culture_team_admin": 404, "longting_corps_admin": 404,
                                                      "admin": 200}),
    ("/group-admin/positions/{backfill_pos}/timekeeping", {"longting_corps_admin": 200, "longting_team_admin": 404}),
    ("/group-admin/positions/{book_pos}/timekeeping/records/{book_record}/correct", {
        None: LOGIN, "vol_longting": DENIED, "longting_team_admin": 200, "culture_team_admin": 404}),
    ("/group-admin/positions/{book_pos}/timekeeping/records/{culture_record}/correct", {"longting_team_admin": 404}),
    ("/public/projects/", {None: 200, "vol_longting": 200, "longting_officer": 200, "longting_team_admin": 200}),
    ("/public/projects/{book}", {None: 200, "vol_shunhe": 200, "longting_officer": 200}),
    ("/public/projects/{culture}", {None: 200, "vol_shunhe": 200}),
    ("/public/projects/{backfill}", {None: 404, "vol_longting": 404, "longting_corps_admin": 404,
                                     "longting_officer": 404}),
    ("/my/projects/", {None: LOGIN, "vol_longting": 200, "vol_minor": 200, "longting_team_admin": DENIED,
                       "longting_officer": DENIED}),
    ("/my/hours/", {None: LOGIN, "vol_longting": 200, "vol_shunhe": 200}),
    ("/my/hours/apply/{enrollment}", {None: LOGIN, "vol_longting": 200, "vol_shunhe": 404,
                                      "longting_team_admin": DENIED}),
    ("/my/hours/records/{record}/correction", {None: LOGIN, "vol_longting": 200, "vol_shunhe": 404,
                                               "longting_team_admin": DENIED}),
]


def _expect(resp, expected):
    if expected == LOGIN:
        assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    else:
        assert resp.status_code == expected, resp.get_data(as_text=True)[:300]


@pytest.mark.parametrize("template,expectations", PAGE_CASES, ids=[c[0] for c in PAGE_CASES])
def test_project_and_hours_pages__each_actor_gets_its_answer(shared_app, demo_ids, template, expectations):
    assert all(demo_ids.values()), demo_ids
    url = template.format(**demo_ids)
    for username, expected in expectations.items():
        client = shared_app.test_client()
        if username:
            login(client, username)
        resp = client.get(url)
        _expect(resp, expected)


def test_project_and_hours_pages__matrix_covers_every_get_route(shared_app):
    """A new GET page of the project or hours views must be added to PAGE_CASES."""
    views = ("GroupProjectsView.", "PublicProjectsView.", "MyProjectsView.", "TimekeepingView.", "MyHoursView.")
    covered = [re.sub(r"\{\w+\}", "[^/]+", t) for t, _ in PAGE_CASES]
    for rule in shared_app.url_map.iter_rules():
        if rule.endpoint.startswith(views) and "GET" in rule.methods:
            pattern = re.sub(r"<[^>]+>", "[^/]+", rule.rule)
            assert any(re.fullmatch(pattern, c) or c == pattern for c in covered), rule.rule


# Writes naming another group's (or another volunteer's) rows: 404 or refused, nothing written.

def _counts(app):
    from app.models import HourCode

    with app.app_context():
        return {model.__name__: db.session.scalar(select(func.count()).select_from(model))
                for model in (HourCode, ServiceRecord, Enrollment)} | {
            "closed": db.session.scalar(select(func.count()).select_from(Project).where(Project.closed_on.isnot(None))),
            "accepted": db.session.scalar(select(func.count()).select_from(Enrollment).where(
                Enrollment.status == "accepted"))}


def _pending_record_of(app, project_id):
    with app.app_context():
        return db.session.scalar(select(ServiceRecord.id).where(
            ServiceRecord.project_id == project_id, ServiceRecord.status == "pending").order_by(ServiceRecord.id))


POST_CASES = [
    # (account, url template, form, expected)
    ("longting_team_admin", "/group-admin/positions/{culture_pos}/timekeeping/codes",
     {"served_on": "{today}", "hours": "2"}, 404),
    ("longting_corps_admin", "/group-admin/positions/{book_pos}/timekeeping/codes",
     {"served_on": "{today}", "hours": "2"}, 404),
    ("vol_longting", "/group-admin/positions/{book_pos}/timekeeping/codes", {"served_on": "{today}", "hours": "2"},
     DENIED),
    (None, "/group-admin/positions/{book_pos}/timekeeping/codes", {"served_on": "{today}", "hours": "2"}, LOGIN),
    ("longting_team_admin", "/group-admin/positions/{culture_pos}/timekeeping/record",
     {"served_on": "{today}", "hours": "2", "volunteer": "{vol_longting}"}, 404),
    ("longting_team_admin", "/group-admin/positions/{book_pos}/timekeeping/decide",
     {"rowid": "{culture_pending}", "decision": "approve"}, 404),
    ("culture_team_admin", "/group-admin/positions/{book_pos}/timekeeping/decide",
     {"rowid": "{culture_pending}", "decision": "approve"}, 404),
    ("longting_officer", "/group-admin/positions/{culture_pos}/timekeeping/decide",
     {"rowid": "{culture_pending}", "decision": "approve"}, DENIED),
    ("longting_team_admin", "/group-admin/projects/{culture}/close", {}, 404),
    ("longting_officer", "/group-admin/projects/{culture}/close", {}, DENIED),
    ("vol_longting", "/my/projects/sign-up/{backfill_pos}", {}, 404),
    (None, "/my/projects/sign-up/{book_pos}", {}, LOGIN),
    ("longting_team_admin", "/my/projects/sign-up/{book_pos}", {}, DENIED),
    ("vol_shunhe", "/my/projects/{enrollment}/cancel", {}, 404),
    ("vol_shunhe", "/my/hours/apply/{enrollment}", {"served_on": "{today}", "hours": "2", "description": "x"}, 404),
    ("longting_team_admin", "/my/hours/redeem", {"code": "000000000000"}, DENIED),
    (None, "/my/hours/redeem", {"code": "000000000000"}, LOGIN),
]


@pytest.mark.parametrize("username,template,form,expected", POST_CASES,
                         ids=[f"{c[0]}:{c[1]}" for c in POST_CASES])
def test_project_and_hours_writes__out_of_scope_is_refused_and_writes_nothing(
        app, demo_ids, username, template, form, expected):
    from app.services.clock import today

    with app.app_context():
        vol_longting = db.session.scalar(select(Enrollment.volunteer_id).where(Enrollment.id == demo_ids["enrollment"]))
    values = {**demo_ids, "today": today().isoformat(), "vol_longting": vol_longting,
              "culture_pending": _pending_record_of(app, demo_ids["culture"])}
    assert all(values.values()), values
    before = _counts(app)
    client = app.test_client()
    if username:
        login(client, username)
    resp = client.post(template.format(**values), data={k: v.format(**values) for k, v in form.items()})
    _expect(resp, expected)
    assert _counts(app) == before


API_CASES = [
    # hour_code generate for 书店街文明劝导 (北书店 team): its admin only.
    (None, "generate", 401), ("vol_longting", "generate", 403), ("longting_officer", "generate", 403),
    ("culture_team_admin", "generate", 404), ("longting_corps_admin", "generate", 404),
    ("longting_team_admin", "generate", 201),
    # redeem: volunteers only.
    (None, "redeem", 401), ("longting_team_admin", "redeem", 403), ("longting_officer", "redeem", 403),
    ("vol_shunhe", "redeem", 200),
]


@pytest.mark.parametrize("username,endpoint,expected", API_CASES, ids=[f"{c[0]}:{c[1]}" for c in API_CASES])
def test_hour_code_api__each_actor_gets_its_answer(app, demo_ids, username, endpoint, expected):
    from app.services.clock import today

    client = app.test_client()

    def headers(name):
        if name is None:
            return {}
        token = client.post("/api/v1/security/login", json={
            "username": name, "password": "Demo12345!", "provider": "db"}).get_json()["access_token"]
        return {"Authorization": f"Bearer {token}"}

    body = {"position": demo_ids["book_pos"], "served_on": today().isoformat(), "minutes": 60}
    if endpoint == "generate":
        resp = client.post("/api/v1/hour_code/", json=body, headers=headers(username))
    else:
        code = client.post("/api/v1/hour_code/", json=body, headers=headers("longting_team_admin")).get_json()["code"]
        resp = client.post("/api/v1/hour_code/redeem", json={"code": code}, headers=headers(username))
    assert resp.status_code == expected, resp.data
