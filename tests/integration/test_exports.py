"""区域监管 → 数据导出: each export holds exactly the rows of the list pages' scope, with
masked personal data only, Chinese headers and formula-safe cells; other roles are refused."""
from __future__ import annotations

import csv
import io
import re
import zipfile

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update

from app.extensions import db
from app.models import Project, Region, RegionBinding, ServiceRecord, User, Volunteer, VolunteerGroup
from app.security import pii
from app.security.scope import path_is_under
from app.services import exports
from app.views import exports as export_views
from app.views import roster
from tests.conftest import login, recorded_statements

KAIFENG, LONGTING = "410000/410200/", "410000/410200/410202/"
KINDS = {"volunteers": Volunteer, "groups": VolunteerGroup, "projects": Project, "service_records": ServiceRecord}
HEADERS = {  # the first columns of each export, as a Chinese reader sees them
    "volunteers": ["系统编号", "志愿者编号", "姓名", "性别", "证件类型", "证件号码", "手机号码", "行政区划"],
    "groups": ["系统编号", "团体名称", "团体类型", "上级团体", "行政区划", "区划代码", "入团方式", "联系人", "联系电话"],
    "projects": ["系统编号", "项目名称", "志愿团体", "服务类别", "行政区划"],
    "service_records": ["系统编号", "姓名", "志愿者编号", "志愿项目", "岗位", "志愿团体", "行政区划"],
}


# The region each demo account is bound to (app/demo.py): its rows are those whose path
# starts with it. Worked out here with a plain prefix test, not with ``scope_clause`` (the
# code the export itself runs), so a wrong scope fails these tests.
BOUND = {"kaifeng_officer": KAIFENG, "kaifeng_honors": KAIFENG, "longting_officer": LONGTING}


def _facts(app, username: str, model) -> list[tuple[int, str]]:
    """(id, region_path) of every row under ``username``'s bound region, by id."""
    prefix = BOUND[username]
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == username))
        bound = db.session.scalars(select(Region.path).join(RegionBinding, RegionBinding.region_id == Region.id)
                                   .where(RegionBinding.user_id == user.id))
        assert list(bound) == [prefix], username
        rows = db.session.execute(select(model.id, model.region_path).order_by(model.id)).all()
    return [(pk, path) for pk, path in rows if path.startswith(prefix)]


def _csv_rows(resp) -> list[list[str]]:
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    assert resp.mimetype == "text/csv"
    data = resp.get_data()
    assert data.startswith("\ufeff".encode())  # Excel reads the BOM as UTF-8
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def _xlsx_rows(resp) -> list[list]:
    assert resp.status_code == 200
    assert resp.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    workbook = load_workbook(io.BytesIO(resp.get_data()), read_only=True)
    return [["" if v is None else v for v in row] for row in workbook.worksheets[0].iter_rows(values_only=True)]


@pytest.fixture
def officer(app):
    client = app.test_client()
    login(client, "kaifeng_officer")
    return client


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("name", list(KINDS))
def test_export__kaifeng_officer_gets_exactly_the_scoped_rows(app, officer, name, fmt):
    facts = _facts(app, "kaifeng_officer", KINDS[name])
    assert facts and all(path_is_under(path, KAIFENG) for _, path in facts)
    resp = officer.get(f"/oversight/exports/{name}.{fmt}")
    rows = _csv_rows(resp) if fmt == "csv" else _xlsx_rows(resp)
    assert rows[0][:len(HEADERS[name])] == HEADERS[name]
    assert [int(r[0]) for r in rows[1:]] == [pk for pk, _ in facts]
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith(f'attachment; filename="{name}-') and f".{fmt}\"; filename*=UTF-8''%E" in disposition
    assert resp.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("name", list(KINDS))
def test_export__longting_officer_gets_only_longting(app, name):
    kaifeng = {pk for pk, _ in _facts(app, "kaifeng_officer", KINDS[name])}
    facts = _facts(app, "longting_officer", KINDS[name])
    assert all(path_is_under(path, LONGTING) for _, path in facts)
    client = app.test_client()
    login(client, "longting_officer")
    ids = [int(r[0]) for r in _csv_rows(client.get(f"/oversight/exports/{name}.csv"))[1:]]
    assert ids == [pk for pk, _ in facts]
    assert set(ids) < kaifeng  # strictly less than the prefecture


def test_export__volunteers_show_masked_pii_exactly_as_the_list(app, officer):
    with app.app_context():
        stored = {v.id: (v.id_number_masked, v.phone_masked or "", pii.decrypt(v.id_number_enc),
                         pii.decrypt(v.phone_enc) if v.phone_enc else None)
                  for v in db.session.scalars(select(Volunteer).where(Volunteer.region_path >= KAIFENG,
                                                                       Volunteer.region_path < KAIFENG[:-1] + "0"))}
    csv_data = officer.get("/oversight/exports/volunteers.csv").get_data().decode("utf-8-sig")
    xlsx_rows = _xlsx_rows(officer.get("/oversight/exports/volunteers.xlsx"))
    for rows in (list(csv.reader(io.StringIO(csv_data, newline=""))), xlsx_rows):
        header = rows[0]
        id_col, phone_col = header.index("证件号码"), header.index("手机号码")
        for row in rows[1:]:
            masked_id, masked_phone, _, _ = stored[int(row[0])]
            assert row[id_col] == masked_id and "*" in masked_id
            assert row[phone_col] == masked_phone
    text = csv_data + repr(xlsx_rows)
    for _, _, full_id, full_phone in stored.values():
        assert full_id not in text
        assert full_phone is None or full_phone not in text
    assert not re.search(r"\d{17}[\dX]", text)  # no full resident ID number anywhere


def test_export__group_contact_phones_are_masked(app, officer):
    rows = _csv_rows(officer.get("/oversight/exports/groups.csv"))
    phones = [r[rows[0].index("联系电话")] for r in rows[1:] if r[rows[0].index("联系电话")]]
    assert phones and all(re.fullmatch(r"\d{3}\*+\d{4}", p) for p in phones)


def test_export__status_filter_narrows_the_scope(app, officer):
    with app.app_context():
        approved = set(db.session.scalars(select(Volunteer.id).where(
            Volunteer.status == "approved", Volunteer.region_path >= KAIFENG,
            Volunteer.region_path < KAIFENG[:-1] + "0")))
    rows = _csv_rows(officer.get("/oversight/exports/volunteers.csv?status=approved"))
    assert {int(r[0]) for r in rows[1:]} == approved
    assert officer.get("/oversight/exports/volunteers.csv?status=bogus").status_code == 400
    assert officer.get("/oversight/exports/projects.csv?status=approved").status_code == 400


def test_export__a_formula_is_neutralised(app, officer):
    formula = '=HYPERLINK("http://evil.example","点我")'
    with app.app_context():
        target = db.session.scalar(select(Volunteer.id).where(Volunteer.region_path >= LONGTING,
                                                              Volunteer.region_path < LONGTING[:-1] + "0"))
        db.session.execute(update(Volunteer).where(Volunteer.id == target).values(real_name=formula))
        db.session.commit()
    rows = _csv_rows(officer.get("/oversight/exports/volunteers.csv"))
    name = next(r[2] for r in rows[1:] if int(r[0]) == target)
    assert name == "'" + formula
    resp = officer.get("/oversight/exports/volunteers.xlsx")
    assert next(r[2] for r in _xlsx_rows(resp)[1:] if int(r[0]) == target) == formula  # text, not a formula
    with zipfile.ZipFile(io.BytesIO(resp.get_data())) as archive:
        sheet = next(n for n in archive.namelist() if n.startswith("xl/worksheets/"))
        assert b"<f>" not in archive.read(sheet)


def test_export_page__lists_the_four_exports(app, officer):
    page = officer.get("/oversight/exports/").get_data(as_text=True)
    assert "数据导出" in page
    for name in KINDS:
        assert f"/oversight/exports/{name}.csv" in page and f"/oversight/exports/{name}.xlsx" in page


def test_export_menu__officer_and_honors_editor_see_it_others_do_not(app):
    for username, shown in (("kaifeng_officer", True), ("kaifeng_honors", True), ("longting_team_admin", False),
                            ("vol_longting", False)):
        client = app.test_client()
        login(client, username)
        page = client.get("/", follow_redirects=True).get_data(as_text=True)
        assert ('href="/oversight/exports/"' in page) is shown, username


def test_export__honors_editor_gets_the_lists_scope(app):
    client = app.test_client()
    login(client, "kaifeng_honors")
    rows = _csv_rows(client.get("/oversight/exports/service_records.csv"))
    assert [int(r[0]) for r in rows[1:]] == [pk for pk, _ in _facts(app, "kaifeng_honors", ServiceRecord)]


@pytest.mark.parametrize("username", ["vol_longting", "longting_team_admin", "longting_corps_admin"])
@pytest.mark.parametrize("url", ["/oversight/exports/", "/oversight/exports/volunteers.csv",
                                 "/oversight/exports/service_records.xlsx"])
def test_export__volunteer_and_group_admin_are_refused(app, username, url):
    client = app.test_client()
    login(client, username)
    resp = client.get(url)
    assert resp.status_code == 403
    assert not resp.get_data().startswith("\ufeff".encode())


def test_export__anonymous_goes_to_login(client):
    resp = client.get("/oversight/exports/volunteers.csv")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_export__unknown_kind_is_404(officer):
    assert officer.get("/oversight/exports/honors.csv").status_code == 404
    assert officer.get("/oversight/exports/volunteers.json").status_code == 404


def _statements(app, client, url) -> list[str]:
    with recorded_statements(app) as statements:
        resp = client.get(url)
        resp.get_data()
        resp.close()
    assert resp.status_code == 200
    return statements


@pytest.mark.parametrize("name", list(KINDS))
def test_export__one_query_per_chunk(app, officer, monkeypatch, name):
    """No N+1: relations are joined into the chunk query; more chunks, one query each."""
    rows = len(_facts(app, "kaifeng_officer", KINDS[name]))
    assert rows > 6
    monkeypatch.setattr(exports, "CHUNK", 100_000)
    one = _statements(app, officer, f"/oversight/exports/{name}.csv")
    monkeypatch.setattr(exports, "CHUNK", 3)
    many = _statements(app, officer, f"/oversight/exports/{name}.csv")
    chunks = rows // 3 + 1  # a last, shorter (or empty) chunk ends the read
    assert len(many) - len(one) == chunks - 1, "\n".join(many)


def test_send_xlsx__one_public_helper_shared_with_the_roster():
    assert export_views.send_xlsx is roster.send_xlsx
    assert not hasattr(roster, "_send_xlsx")
