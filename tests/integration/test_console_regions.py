"""运营控制台 → 行政区划 (/console/region/, issue #9) over HTTP, and ``flask regions move``:
streets and communities added under the right parent only, inline name and population
edits (audited), deletes refused while anything lies below, the all-or-nothing CSV
import, the move command rewriting every stored path, and 403 for everyone but Admin."""
from __future__ import annotations

import html as html_lib
import io
import json
import re

import pytest
from sqlalchemy import func, select, update

from app.extensions import db
from app.models import (
    AuditEvent,
    Project,
    Region,
    RegionBinding,
    ServiceRecord,
    StatTotal,
    Volunteer,
    VolunteerGroup,
)
from app.security.scope import under
from app.services import rollups
from tests.conftest import login

PAGES = ["/console/region/", "/console/region/new/", "/console/region/import/"]
STREET = "410202001"  # 北书店街道, 龙亭区: groups, projects, volunteers, records below it
OLD_PATH = "410000/410200/410202/410202001/"
NEW_PATH = "410000/410200/410203/410202001/"
SHUNHE_PATH = "410000/410200/410203/"


def _admin(app):
    return login(app.test_client(), "admin")


def _region(app, code):
    with app.app_context():
        region = db.session.scalar(select(Region).where(Region.code == code))
        if region is not None:
            db.session.expunge(region)
        return region


def _text(resp) -> str:
    return html_lib.unescape(resp.get_data(as_text=True))


def _filter_index(html: str, label: str) -> int:
    match = re.search(r'<div id="filter-groups-data"[^>]*>(.*?)</div>', html, re.DOTALL)
    assert match, "no filter groups on the page"
    groups = json.loads(html_lib.unescape(match.group(1)))
    assert label in groups, list(groups)
    return groups[label][0]["index"]


def _listed_codes(html: str) -> set[str]:
    return set(re.findall(r'<td class="col-code">\s*(\d+)\s*</td>', html))


# --- Access ---


@pytest.mark.parametrize("username", ["kaifeng_officer", "longting_officer", "vol_longting"])
def test_region_pages__other_roles_get_403(app, username):
    client = login(app.test_client(), username)
    for url in PAGES:
        assert client.get(url).status_code == 403, (username, url)
    street = _region(app, STREET)
    assert client.post("/console/region/ajax/update/",
                       data={"list_form_pk": street.id, "population": "1"}).status_code == 403
    assert client.post("/console/region/delete/", data={"id": street.id}).status_code == 403
    assert client.post("/console/region/import/", data={
        "file": (io.BytesIO(b"code,name,parent_code\n410205001,x,410205\n"), "r.csv")},
        content_type="multipart/form-data").status_code == 403
    assert _region(app, "410205001") is None
    assert _region(app, STREET).population == street.population


# --- List ---


def test_region_list__in_chinese_with_search_and_filters(app):
    client = _admin(app)
    html = _text(client.get("/console/region/"))
    assert "行政区划" in html and 'href="/console/region/import/"' in html
    found = _text(client.get("/console/region/?search=北书店"))
    assert _listed_codes(found) == {STREET}
    index = _filter_index(html, "上级代码")
    children = _listed_codes(_text(client.get(f"/console/region/?flt1_{index}={STREET}")))
    assert children == {"410202001001", "410202001002"}
    index = _filter_index(html, "级别")
    streets = _listed_codes(_text(client.get(f"/console/region/?flt1_{index}={Region.STREET}&psize=100")))
    with app.app_context():
        wanted = set(db.session.scalars(select(Region.code).where(Region.level == Region.STREET)))
    assert streets == wanted and STREET in streets
    index = _filter_index(html, "所属区划（代码）")
    within = _listed_codes(_text(client.get(f"/console/region/?flt1_{index}=410203&psize=100")))
    assert "410203" in within and "410203002002" in within and STREET not in within


# --- Adding streets and communities ---


def test_add__street_under_a_county_then_a_community_under_it(app):
    client = _admin(app)
    resp = client.post("/console/region/new/", data={"parent_code": "410205", "code": "410205001",
                                                     "name": "测试街道", "population": "12000"})
    assert resp.status_code == 302, _text(resp)[:2000]
    resp = client.post("/console/region/new/", data={"parent_code": "410205001", "code": "410205001001",
                                                     "name": "测试社区", "population": ""})
    assert resp.status_code == 302
    street, community = _region(app, "410205001"), _region(app, "410205001001")
    assert (street.level, street.population, street.path) == (Region.STREET, 12000, "410000/410200/410205/410205001/")
    assert (community.level, community.population) == (Region.COMMUNITY, None)
    assert community.path == "410000/410200/410205/410205001/410205001001/"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.object_type == "region", AuditEvent.action == "create",
            AuditEvent.object_id.in_([street.id, community.id]))) == 2


@pytest.mark.parametrize("parent, code, population, message", [
    ("410200", "410200001", "", "街道应属于区县"),  # a street under a prefecture
    ("410205", "410205001001", "", "街道应属于区县"),  # a community under a county
    ("410202001001", "410202001001001", "", "9 位数字（街道）或 12 位数字（社区）"),  # 15 digits
    ("410205", "41020500A", "", "9 位数字（街道）或 12 位数字（社区）"),
    ("410205", "410206001", "", "必须以上级区划代码 410205 开头"),
    ("999999", "999999001", "", "未知的区划代码 999999"),
    ("410205", "410205001", "-5", "人口必须是"),
    ("410205", "410205001", "many", "人口必须是"),
])
def test_add__wrong_level_or_bad_input_is_refused_with_a_message(app, parent, code, population, message):
    client = _admin(app)
    resp = client.post("/console/region/new/", data={"parent_code": parent, "code": code, "name": "错误",
                                                     "population": population})
    assert resp.status_code == 200
    assert message in _text(resp)
    assert _region(app, code) is None


def test_add__code_taken_is_refused(app):
    resp = _admin(app).post("/console/region/new/", data={"parent_code": "410202", "code": STREET, "name": "重复"})
    assert resp.status_code == 200 and f"区划代码 {STREET} 已存在" in _text(resp)
    assert _region(app, STREET).name == "北书店街道"


def test_edit__code_and_parent_are_not_written(app):
    county = _region(app, "410205")
    client = _admin(app)
    form = _text(client.get(f"/console/region/edit/?id={county.id}"))
    assert re.search(r'<input[^>]*name="code"[^>]*readonly', form)
    assert re.search(r'<input[^>]*name="parent_code"[^>]*readonly[^>]*value="410200"', form)
    resp = client.post(f"/console/region/edit/?id={county.id}",
                       data={"code": "410299", "parent_code": "410100", "name": "禹王台区（改）", "population": "300000"})
    assert resp.status_code == 302
    after = _region(app, "410205")
    assert (after.name, after.population, after.parent_id, after.path) == (
        "禹王台区（改）", 300000, county.parent_id, county.path)
    assert _region(app, "410299") is None


# --- Inline edits ---


def test_inline_edit__population_saved_and_audited(app):
    street = _region(app, STREET)
    resp = _admin(app).post("/console/region/ajax/update/", data={"list_form_pk": street.id, "population": "43210"})
    assert resp.status_code == 200, _text(resp)
    assert _region(app, STREET).population == 43210
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(
            AuditEvent.object_type == "region", AuditEvent.object_id == street.id)
            .order_by(AuditEvent.id.desc()).limit(1))
        assert event is not None and event.action == "update" and event.actor_name == "admin"
        assert json.loads(event.after_json)["population"] == 43210
        assert json.loads(event.before_json)["population"] == street.population
        assert event.region_path == OLD_PATH


def test_inline_edit__name_saved(app):
    street = _region(app, STREET)
    resp = _admin(app).post("/console/region/ajax/update/", data={"list_form_pk": street.id, "name": " 北书店 "})
    assert resp.status_code == 200
    assert _region(app, STREET).name == "北书店"


@pytest.mark.parametrize("field, value, message", [
    ("population", "-1", "人口必须是"),
    ("population", "abc", "人口必须是"),
    ("population", "1.5", "人口必须是"),
    ("name", "  ", "请填写区划名称"),
])
def test_inline_edit__bad_value_refused_with_a_message(app, field, value, message):
    street = _region(app, STREET)
    resp = _admin(app).post("/console/region/ajax/update/", data={"list_form_pk": street.id, field: value})
    assert resp.status_code == 400
    assert message in resp.get_data(as_text=True)
    after = _region(app, STREET)
    assert (after.name, after.population) == (street.name, street.population)


# --- Deletes ---


@pytest.mark.parametrize("code, what", [
    (STREET, "下级区划"),  # child regions are checked first
    ("410202", "下级区划"),
    ("410202001001", "志愿者"),  # a leaf community where volunteers live
    ("410205", "志愿者"),  # a county without streets, with volunteers
])
def test_delete__region_with_something_below_is_refused(app, code, what):
    region = _region(app, code)
    resp = _admin(app).post("/console/region/delete/", data={"id": region.id}, follow_redirects=True)
    assert resp.status_code == 200
    assert f"{region.name}（{code}）下还有数据（{what}），不能删除" in _text(resp)
    assert _region(app, code) is not None


@pytest.mark.postgres
def test_delete__a_reference_the_check_missed_answers_a_message_not_a_500(app, monkeypatch):
    """The foreign keys are the last guard (PostgreSQL enforces them; SQLite here does not)."""
    from app.services import regions

    monkeypatch.setattr(regions, "data_under", lambda region: None)
    region = _region(app, "410202001001")
    resp = _admin(app).post("/console/region/delete/", data={"id": region.id}, follow_redirects=True)
    assert resp.status_code == 200 and f"{region.name}（410202001001）仍在使用中，不能删除" in _text(resp)
    assert _region(app, "410202001001") is not None


def test_delete__a_leaf_with_only_a_region_binding_is_refused(app):
    with app.app_context():
        leaf = _add("410205001", db.session.scalar(select(Region).where(Region.code == "410205")))
        user_id = db.session.scalar(select(RegionBinding.user_id).limit(1))
        db.session.add(RegionBinding(user_id=user_id, region_id=leaf.id, region_path=leaf.path, kind="officer"))
        db.session.commit()
    resp = _admin(app).post("/console/region/delete/", data={"id": leaf.id}, follow_redirects=True)
    assert "（410205001）下还有数据（区划绑定），不能删除" in _text(resp)
    assert _region(app, leaf.code) is not None


def _add(code, parent):
    from app.services.regions import add_subregion

    region = add_subregion(db.session.merge(parent), code, "新区划")
    db.session.commit()
    db.session.refresh(region)
    db.session.expunge(region)
    return region


def test_delete__an_empty_leaf_is_deleted_and_audited(app):
    with app.app_context():
        street = _add("410205001", db.session.scalar(select(Region).where(Region.code == "410205")))
    resp = _admin(app).post("/console/region/delete/", data={"id": street.id}, follow_redirects=True)
    assert resp.status_code == 200
    assert _region(app, "410205001") is None
    with app.app_context():
        assert db.session.scalar(select(AuditEvent.id).where(
            AuditEvent.object_type == "region", AuditEvent.object_id == street.id, AuditEvent.action == "delete"))


# --- CSV import ---


def _upload(client, text: str, encoding="utf-8"):
    return client.post("/console/region/import/",
                       data={"file": (io.BytesIO(text.encode(encoding)), "regions.csv")},
                       content_type="multipart/form-data")


def test_import__form_is_linked_from_the_list(app):
    client = _admin(app)
    html = _text(client.get("/console/region/import/"))
    assert 'enctype="multipart/form-data"' in html and "代码,名称,上级代码,人口" in html


def test_import__valid_file_adds_every_row_and_lists_them(app):
    text = ("代码,名称,上级代码,人口\n"
            "410205001001,新社区,410205001,3000\n"  # its parent is a later row of the file
            "410205001,新街道,410205,20000\n"
            "410205002,另一街道,410205,\n")
    resp = _upload(_admin(app), text, encoding="gb18030")
    html = _text(resp)
    assert resp.status_code == 200 and "已添加 3 个行政区划" in html
    added = html.split('id="region-import-added"', 1)[1]
    assert all(code in added for code in ("410205001001", "410205001", "410205002"))
    community = _region(app, "410205001001")
    assert community.path == "410000/410200/410205/410205001/410205001001/" and community.population == 3000
    assert _region(app, "410205002").population is None


def test_import__english_headers(app):
    resp = _upload(_admin(app), "code,name,parent_code,population\n410205001,街道甲,410205,100\n")
    assert "已添加 1 个行政区划" in _text(resp)
    assert _region(app, "410205001").name == "街道甲"


def test_import__row_errors_listed_and_nothing_written(app):
    text = ("code,name,parent_code,population\n"
            "410205001,好街道,410205,100\n"  # row 2: valid, but not written
            "41020500X,坏代码,410205,\n"  # 3
            "410205002,无上级,999999,\n"  # 4
            "410200009,错级别,410200,\n"  # 5: a street under a prefecture
            f"{STREET},重复,410202,\n"  # 6: taken
            "410205001,文件内重复,410205,\n"  # 7
            "410205003,人口错,410205,-3\n"  # 8
            "410205004,,410205,\n")  # 9: no name
    resp = _upload(_admin(app), text)
    html = _text(resp)
    assert resp.status_code == 200 and "未添加任何行政区划" in html
    errors = html.split('id="region-import-errors"', 1)[1]
    rows = dict(re.findall(r"<tr><td>(\d+)</td><td>([^<]+)</td></tr>", errors))
    assert set(rows) == {"3", "4", "5", "6", "7", "8", "9"}
    assert "9 位数字" in rows["3"] and "未知的上级区划代码 999999" in rows["4"]
    assert "街道应属于区县" in rows["5"] and "已存在" in rows["6"] and "重复" in rows["7"]
    assert "人口必须是" in rows["8"] and "请填写区划名称" in rows["9"]
    for code in ("410205001", "410205002", "410205003", "410205004", "410200009"):
        assert _region(app, code) is None


def test_import_regions__service_adds_nothing_when_a_row_is_bad(app):
    """All or nothing in the service itself, not only by the page's rollback."""
    from app.services.regions import import_regions

    with app.test_request_context():
        result = import_regions(b"code,name,parent_code\n410205001,good,410205\n410205002,bad,410200\n")
        assert [n for n, _ in result.errors] == [3] and not result.added
        assert not db.session.new
        assert db.session.scalar(select(func.count()).select_from(Region).where(Region.code == "410205001")) == 0
        db.session.rollback()


@pytest.mark.parametrize("text, message", [
    ("编号,名字\n1,2\n", "缺少"),
    ("code,name,parent_code\n", "没有任何数据行"),
    # a cell over the csv module's field limit (131,072) raised csv.Error: a 500
    ("code,name,parent_code\n410205001," + "名" * 200_000 + ",410205\n", "第 2 行无法按 CSV 读取"),
])
def test_import__bad_file_is_refused(app, text, message):
    resp = _upload(_admin(app), text)
    assert resp.status_code == 200 and message in _text(resp)


# --- flask regions move ---


SCOPED = (Volunteer, VolunteerGroup, Project, ServiceRecord)


def _counts(path):
    return {model.__tablename__: db.session.scalar(select(func.count()).select_from(model)
                                                   .where(under(model.region_path, path)))
            for model in SCOPED}


def _volunteer_totals(path):
    return db.session.scalar(select(func.coalesce(func.sum(StatTotal.value), 0)).where(
        StatTotal.metric == rollups.VOLUNTEERS, under(StatTotal.region_path, path)))


def _path_columns() -> list[tuple]:
    """Every (table, column) of the schema named ``path``, ``region_path`` or ``*_region_path``,
    found by scanning the metadata (not ``regions._path_tables``, the code under test)."""
    return [(table, column) for table in db.metadata.tables.values() for column in table.columns
            if column.name in ("path", "region_path") or column.name.endswith("_region_path")]


def _rows_under(path: str) -> dict[str, set]:
    """{"table.column": {(primary key, path suffix)}} of every row whose path starts with
    ``path`` (a plain prefix comparison, not ``scope.under``)."""
    out = {}
    for table, column in _path_columns():
        keys = list(table.primary_key.columns)
        rows = db.session.execute(select(*keys, column).where(
            func.substr(column, 1, len(path)) == path))
        out[f"{table.name}.{column.name}"] = {(tuple(r[:-1]), r[-1][len(path):]) for r in rows}
    return out


def _assert_moved(before: dict[str, set]) -> None:
    """Nothing of any path column is left under OLD_PATH; each row that was there is under
    NEW_PATH with the same suffix (rollups and the audit log may hold more rows there)."""
    assert {key: rows for key, rows in _rows_under(OLD_PATH).items() if rows} == {}
    after = _rows_under(NEW_PATH)
    for key, rows in before.items():
        assert rows <= after[key], key
        if not key.startswith(("stat_", "audit_event.")):
            assert after[key] == rows, key


def test_move__rewrites_every_path_and_rebuilds_statistics(app):
    with app.app_context():
        columns = {f"{t.name}.{c.name}" for t, c in _path_columns()}
        assert {"region.path", "transfer_request.from_region_path", "audit_event.region_path",
                "stat_total.region_path", "service_record.region_path"} <= columns
        everything = _rows_under(OLD_PATH)
        assert not any(_rows_under(NEW_PATH).values())
        assert {key for key, rows in everything.items() if rows} >= {
            "region.path", "volunteer.region_path", "service_record.region_path", "stat_total.region_path"}
        before = _counts(OLD_PATH)
        volunteers = _volunteer_totals(OLD_PATH)
        county_gender = _gender(SHUNHE_PATH)
        descendants = db.session.scalar(select(func.count()).select_from(Region).where(under(Region.path, OLD_PATH)))
    assert all(before.values()) and volunteers > 0 and descendants == 3
    result = app.test_cli_runner().invoke(args=["regions", "move", STREET, "410203", "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert NEW_PATH in result.output
    with app.app_context():
        assert _counts(NEW_PATH) == before
        assert set(_counts(OLD_PATH).values()) == {0}
        street = db.session.scalar(select(Region).where(Region.code == STREET))
        assert (street.parent.code, street.path) == ("410203", NEW_PATH)
        assert db.session.scalar(select(func.count()).select_from(Region).where(under(Region.path, NEW_PATH))) == 3
        assert not db.session.scalar(select(func.count()).select_from(Region).where(under(Region.path, OLD_PATH)))
        assert db.session.scalar(select(Region.path).where(Region.code == "410202001001")) == \
            NEW_PATH + "410202001001/"
        # The rollups follow: the rows below the street, and 顺河区's own county rows.
        assert _volunteer_totals(NEW_PATH) == volunteers and _volunteer_totals(OLD_PATH) == 0
        assert _gender(SHUNHE_PATH) == county_gender + volunteers
        assert db.session.scalar(select(AuditEvent.id).where(
            AuditEvent.object_type == "region", AuditEvent.object_id == street.id, AuditEvent.action == "update"))
        _assert_moved(everything)


def test_move__a_row_written_with_the_old_path_during_the_sweep_is_moved_too(app, monkeypatch):
    """A registration in the moved region between a table's batch and the final step
    writes the old path: the final transaction sweeps every path column once more."""
    from app.services import regions

    sweep = regions._rewrite_paths

    def sweep_then_a_late_write(table, column, *args, **kwargs):
        done = sweep(table, column, *args, **kwargs)
        if table.name == "region":  # the last batched sweep: volunteers and records are done
            for model, pk in ((Volunteer, late_volunteer), (ServiceRecord, late_record)):
                db.session.execute(update(model).where(model.id == pk).values(
                    region_path=OLD_PATH + func.substr(model.region_path, len(NEW_PATH) + 1)))
            db.session.commit()
            assert _rows_under(OLD_PATH)["volunteer.region_path"]
        return done

    with app.app_context():
        everything = _rows_under(OLD_PATH)
        late_volunteer = db.session.scalar(select(Volunteer.id).where(under(Volunteer.region_path, OLD_PATH))
                                           .order_by(Volunteer.id))
        late_record = db.session.scalar(select(ServiceRecord.id).where(
            under(ServiceRecord.region_path, OLD_PATH)).order_by(ServiceRecord.id))
        paths = {model: db.session.scalar(select(model.region_path).where(model.id == pk))
                 for model, pk in ((Volunteer, late_volunteer), (ServiceRecord, late_record))}
        monkeypatch.setattr(regions, "_rewrite_paths", sweep_then_a_late_write)
        result = regions.move_region(STREET, "410203", batch=2)
        assert result.rows["volunteer.region_path"] >= 1
        db.session.expire_all()
        for model, pk in ((Volunteer, late_volunteer), (ServiceRecord, late_record)):
            assert db.session.get(model, pk).region_path == NEW_PATH + paths[model][len(OLD_PATH):]
        _assert_moved(everything)


def _gender(county_path):
    return db.session.scalar(select(func.coalesce(func.sum(StatTotal.value), 0)).where(
        StatTotal.metric == rollups.VOL_GENDER, StatTotal.region_path == county_path))


@pytest.mark.parametrize("target, message", [
    ("410202001001", "不能移到它自己或它的下级区划之下"),  # its own community
    (STREET, "不能移到它自己或它的下级区划之下"),
    ("410200", "街道应属于区县"),  # a prefecture
    ("410202", "已在"),  # where it is
    ("999999", "未知的区划代码"),
])
def test_move__refused_and_nothing_changed(app, target, message):
    with app.app_context():
        before = _counts(OLD_PATH)
    result = app.test_cli_runner().invoke(args=["regions", "move", STREET, target])
    assert result.exit_code != 0 and message in result.output, result.output
    with app.app_context():
        assert _counts(OLD_PATH) == before
        assert db.session.scalar(select(Region.path).where(Region.code == STREET)) == OLD_PATH
