"""Hostile input found by probing issue 5's pages and APIs: each case once answered a
500 or leaked data. Now: 404 for ids no row can have, 400 for text the database
cannot store, no related choices outside the caller's scope, and Excel cells that
never turn into formulas."""
from __future__ import annotations

import io
import zipfile

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import select

from app.demo import BEISHUDIAN_TEAM
from app.extensions import db
from app.models import Volunteer, VolunteerGroup
from tests.conftest import login

HUGE = "99999999999999999999"
INT4_PAST = "2147483648"


def _token(client, username):
    resp = client.post("/api/v1/security/login",
                       json={"username": username, "password": "Demo12345!", "provider": "db"})
    return {"Authorization": f"Bearer {resp.get_json()['access_token']}"}


def _group_id(app, name):
    with app.app_context():
        return db.session.scalar(select(VolunteerGroup.id).where(VolunteerGroup.name == name))


# --- /_info offers nothing outside the caller's scope ---


@pytest.mark.parametrize("resource", ["membership", "volunteer_group", "volunteer", "project", "service_record"])
def test_api_info__read_only_resource_offers_no_related_choices(client, resource):
    headers = _token(client, "vol_longting")
    body = client.get(f"/api/v1/{resource}/_info", headers=headers).get_json()
    assert body["add_columns"] == [] and body["edit_columns"] == []


def test_api_info__membership_lists_no_volunteer_names(app, client):
    headers = _token(client, "vol_longting")
    text = client.get("/api/v1/membership/_info?q=(add_columns:(volunteer:(page:0,page_size:100)))",
                      headers=headers).get_data(as_text=True)
    with app.app_context():
        others = db.session.scalars(select(Volunteer.real_name).where(Volunteer.real_name != "李明华")).all()
    assert not [name for name in others if name in text]


# --- Ids no row can have: 404, never 500 ---


@pytest.mark.parametrize("url", [
    f"/group-admin/members/export.xlsx?group={HUGE}",
    f"/group-admin/members/export.xlsx?group={INT4_PAST}",
    f"/group-admin/members/show/{HUGE}",
    f"/group-admin/profile/{HUGE}/edit",
    f"/group-admin/profile/{INT4_PAST}/edit",
    f"/my/groups/{HUGE}/card",
    "/group-admin/members/download/x",
])
def test_page__impossible_id_is_404(client, url):
    login(client, "longting_team_admin")
    assert client.get(url).status_code == 404


def test_list_page__huge_page_number_is_not_an_error(client):
    login(client, "longting_team_admin")
    assert client.get(f"/group-admin/members/list/?page_MembershipModelView={HUGE}").status_code in (200, 400)


@pytest.mark.parametrize("form", [
    {"rowid": HUGE, "decision": "approve"},
    {"rowid": INT4_PAST, "decision": "approve"},
    {"rowid": "²", "decision": "approve"},
])
def test_decide__impossible_ids_are_404(client, form):
    login(client, "culture_team_admin")
    assert client.post("/group-admin/join-requests/decide", data=form).status_code == 404
    assert client.post("/group-review/decide", data=form).status_code == 404


def test_join_requests__unicode_digit_page_is_the_first_page(client):
    login(client, "culture_team_admin")
    assert client.get("/group-admin/join-requests/?page=²").status_code == 200


@pytest.mark.parametrize("path", [f"/api/v1/membership/{HUGE}", f"/api/v1/volunteer_group/{HUGE}",
                                  f"/api/v1/membership/{INT4_PAST}"])
def test_api__impossible_id_is_404(client, path):
    headers = _token(client, "longting_team_admin")
    assert client.get(path, headers=headers).status_code == 404


def test_api__impossible_page_is_not_a_500(client):
    headers = _token(client, "longting_team_admin")
    resp = client.get(f"/api/v1/membership/?q=(page:{HUGE},page_size:10)", headers=headers)
    assert resp.status_code in (200, 400) and resp.get_json().get("result", []) == []


def test_register_group__impossible_parent_id_is_a_field_error(client):
    resp = client.post("/groups/register/", data={"name": "测试志愿服务队", "parent_id": HUGE})
    assert resp.status_code == 400


# --- NUL characters: 400 before they reach the database ---


@pytest.mark.parametrize("url", ["/groups/search.json?q=%00", "/groups/join/abc%00def",
                                 "/my/groups/search?q=a%00b", "/group-admin/members/list/?_flt_0_volunteer_name=%00"])
def test_nul_in_url__is_400(client, url):
    login(client, "vol_shunhe")
    assert client.get(url).status_code == 400


def test_nul_in_form__is_400_and_nothing_written(app, client):
    with app.app_context():
        before = db.session.query(VolunteerGroup).count()
    resp = client.post("/groups/register/", data={"name": "测试\x00志愿服务队", "username": "nul_admin"})
    assert resp.status_code == 400
    with app.app_context():
        assert db.session.query(VolunteerGroup).count() == before


def test_nul_in_json__is_400(client):
    headers = _token(client, "culture_team_admin")
    resp = client.post("/api/v1/membership/1/review", headers=headers,
                       data='{"decision": "reject", "reason": "a\\u0000b"}', content_type="application/json")
    assert resp.status_code == 400


HELP_BODY = ('{"region_code": "410202001", "category": "civility", "title": "%s", "description": "需要帮助",'
             ' "contact_name": "张先生", "contact_phone": "13800138000"}')


@pytest.mark.parametrize("url,body,token", [
    ("/api/v1/help_request/", HELP_BODY % "t\\ud800", None),  # anonymous
    ("/api/v1/help_request/", HELP_BODY % "t\\udfff\\ud800", None),  # low before high: no pair
    ("/api/v1/security/login", '{"username": "a\\ud800", "password": "x", "provider": "db"}', None),
    ("/api/v1/membership/1/review", '{"decision": "reject", "\\ud800": "x"}', "culture_team_admin"),  # a key
])
def test_lone_surrogate_in_json__is_400_and_nothing_written(app, client, url, body, token):
    from app.models import HelpRequest

    headers = _token(client, token) if token else {}
    with app.app_context():
        before = db.session.query(HelpRequest).count()
    resp = client.post(url, headers=headers, data=body, content_type="application/json")
    assert resp.status_code == 400, resp.data
    with app.app_context():
        assert db.session.query(HelpRequest).count() == before


def test_surrogate_pair_in_json__is_one_character_and_accepted(app, client):
    from app.models import HelpRequest

    resp = client.post("/api/v1/help_request/", data=HELP_BODY % "求助\\ud83d\\ude00",
                       content_type="application/json")
    assert resp.status_code == 201, resp.data
    with app.app_context():
        assert db.session.query(HelpRequest).order_by(HelpRequest.id.desc()).first().title == "求助\U0001F600"


# --- Request size (MAX_CONTENT_LENGTH) ---

OVER_LIMIT = 16 * 1024 * 1024 + 1


def test_config__requests_are_limited_to_16_mb(app):
    assert app.config["MAX_CONTENT_LENGTH"] == 16 * 1024 * 1024


def test_oversized_upload__is_413_with_a_translated_page_and_nothing_written(app, client):
    from app.models import Honor

    login(client, "kaifeng_honors")
    with app.app_context():
        before = db.session.query(Honor).count()
    resp = client.post("/honors/add", content_type="multipart/form-data", data={
        "title": "过大的附件", "level": "provincial", "awarding_body": "河南省文明办", "awarded_on": "2026-05-04",
        "attachment_file": (io.BytesIO(b"%PDF-1.4\n" + b"0" * OVER_LIMIT), "big.pdf")})
    assert resp.status_code == 413
    page = resp.get_data(as_text=True)
    assert 'id="error-page"' in page and "提交的内容过大" in page and "16 MB" in page
    with app.app_context():
        assert db.session.query(Honor).count() == before


@pytest.mark.parametrize("csrf", [False, True], ids=["test-config", "csrf-on-as-in-production"])
def test_oversized_form__anonymous_post_is_413_not_500(app, client, csrf):
    app.config["WTF_CSRF_ENABLED"] = csrf  # CSRFProtect reads the form first when on
    resp = client.post("/help/new", data={"title": "x", "description": "x" * OVER_LIMIT})
    assert resp.status_code == 413 and "提交的内容过大" in resp.get_data(as_text=True)


def test_oversized_json__api_answers_413_in_json(client):
    body = '{"title": "' + "x" * OVER_LIMIT + '"}'
    resp = client.post("/api/v1/help_request/", data=body, content_type="application/json")
    assert resp.status_code == 413
    assert "提交的内容过大" in resp.get_json()["message"]


# --- Excel ---


def test_import__zip_bomb_is_refused_before_unpacking(client, app):
    """A 60 MB sheet of one repeated byte packs into a few dozen KB."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"<" + b"a" * (60 * 1024 * 1024) + b">")
    data = buffer.getvalue()
    assert len(data) < 1024 * 1024
    login(client, "longting_team_admin")
    resp = client.post("/group-admin/members/import", data={
        "group": _group_id(app, BEISHUDIAN_TEAM), "file": (io.BytesIO(data), "名单.xlsx")},
        content_type="multipart/form-data")
    assert resp.status_code == 400 and "Excel" in resp.get_data(as_text=True)


def test_export__a_name_that_looks_like_a_formula_stays_text(app, client):
    group = _group_id(app, BEISHUDIAN_TEAM)
    evil = '=HYPERLINK("http://evil.example","点我")'
    with app.app_context():
        from app.models import Membership

        membership = db.session.scalar(select(Membership).where(Membership.group_id == group,
                                                                Membership.status == "active"))
        membership.volunteer_name = evil
        db.session.commit()
    login(client, "longting_team_admin")
    resp = client.get(f"/group-admin/members/export.xlsx?group={group}")
    sheet = load_workbook(io.BytesIO(resp.data)).worksheets[0]
    cells = [cell for row in sheet.iter_rows() for cell in row if cell.value == evil]
    assert cells and all(cell.data_type == "s" for cell in cells)


def test_workbook_helper__formula_strings_are_written_as_text():
    from app.services.rosters import text_cells

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("x")
    sheet.append(text_cells(sheet, ["=1+1", "+1", "@SUM(A1)", 5, None]))
    out = io.BytesIO()
    workbook.save(out)
    row = next(load_workbook(io.BytesIO(out.getvalue())).worksheets[0].iter_rows())
    assert [c.data_type for c in row[:3]] == ["s", "s", "s"] and row[0].value == "=1+1"


# --- REST filters (found by probing issue 6's resources) ---


@pytest.mark.parametrize("path,column,auth", [
    ("/api/v1/project/", "group", None),
    ("/api/v1/service_record/", "project", "kfvf_admin"),
])
def test_api_filter__relation_id_past_integer_is_400(client, path, column, auth):
    headers = _token(client, auth) if auth else {}
    q = f"(filters:!((col:{column},opr:rel_o_m,value:{HUGE})))"
    resp = client.get(path, query_string={"q": q}, headers=headers)
    assert resp.status_code == 400, resp.data[:300]


@pytest.mark.parametrize("path,column,auth", [
    ("/api/v1/project/", "name", None),
    ("/api/v1/service_record/", "volunteer_no", "kfvf_admin"),
    ("/api/v1/region/", "code", None),
])
def test_api_filter__number_on_a_text_column_reads_as_text(client, path, column, auth):
    headers = _token(client, auth) if auth else {}
    q = f"(filters:!((col:{column},opr:sw,value:41)))"
    resp = client.get(path, query_string={"q": q}, headers=headers)
    assert resp.status_code == 200, resp.data[:300]


def test_api_filter__region_code_number_finds_the_codes(client):
    q = "(filters:!((col:code,opr:sw,value:410202)),page_size:100)"
    body = client.get("/api/v1/region/", query_string={"q": q}, headers=_token(client, "admin")).get_json()
    assert body["result"] and all(r["code"].startswith("410202") for r in body["result"])


@pytest.mark.parametrize("path", ["/api/v1/project/", "/api/v1/region/", "/api/v1/volunteer/"])
def test_api_query__deeply_nested_rison_is_400(client, path):
    resp = client.get(path, query_string={"q": "(" * 5000}, headers=_token(client, "admin"))
    assert resp.status_code == 400


def test_form_prefill__relation_id_past_integer_is_400(app, client):
    from app.models import Honor
    from tests.integration.test_honors import BODY

    login(client, "kaifeng_honors")
    with app.app_context():
        before = db.session.query(Honor).count()
    assert client.post(f"/honors/add?_flt_0_volunteer_group={HUGE}", data=BODY).status_code == 400
    with app.app_context():
        assert db.session.query(Honor).count() == before
