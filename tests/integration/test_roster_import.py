"""我的成员 → 导入: Excel upload, preview, per-row error report, one-transaction apply (issue 5 item 4)."""
from __future__ import annotations

import io
import re

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from app.demo import BEISHUDIAN_TEAM, QINGPING_TEAM
from app.extensions import db
from app.models import Membership, ReviewStatus, RosterImport, Volunteer, VolunteerGroup
from app.security import pii
from app.services import rosters
from app.services.idcards import mod11_2
from tests.conftest import login

IMPORT = "/group-admin/members/import"


def _group_id(app, name):
    with app.app_context():
        return db.session.scalar(select(VolunteerGroup.id).where(VolunteerGroup.name == name))


def xlsx(rows, header=("姓名", "证件号码", "证件类型")) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    if header:
        sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _people(app, group_id):
    """Plain demo data for the file: approved non-members, a member, a pending volunteer."""
    with app.app_context():
        members = set(db.session.scalars(select(Membership.volunteer_id).where(Membership.group_id == group_id)))
        approved = [v for v in db.session.scalars(select(Volunteer).where(
            Volunteer.status == ReviewStatus.APPROVED, Volunteer.id_type == "resident").order_by(Volunteer.id))
            if v.id not in members]
        member = db.session.scalar(select(Volunteer).where(Volunteer.real_name == "李明华"))
        pending = db.session.scalar(select(Volunteer).where(
            Volunteer.status == ReviewStatus.PENDING, Volunteer.id_type == "resident").limit(1))

        def plain(v):
            return v.id, v.real_name, pii.decrypt(v.id_number_enc)

        return [plain(v) for v in approved[:3]], plain(member), plain(pending)


def _unknown_id(app):
    """A well-formed resident ID number nobody registered."""
    with app.app_context():
        for n in range(100, 999):
            body = f"41020219900101{n:03d}"
            number = body + mod11_2(body)
            if db.session.scalar(select(Volunteer.id).where(
                    Volunteer.id_blind == pii.blind_index("resident", number))) is None:
                return number


def _members(app, group_id):
    with app.app_context():
        return set(db.session.scalars(select(Membership.volunteer_id).where(
            Membership.group_id == group_id, Membership.status == "active")))


def _upload(client, group_id, data, name="名单.xlsx"):
    return client.post(IMPORT, data={"group": str(group_id), "file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def _batch_id(resp):
    assert resp.status_code == 302, resp.get_data(as_text=True)[-2000:]
    return int(re.search(r"/import/(\d+)$", resp.headers["Location"]).group(1))


@pytest.fixture
def roster_file(app):
    """The mixed file of the issue: good, bad, duplicate and already-member rows."""
    beishudian = _group_id(app, BEISHUDIAN_TEAM)
    (good1, good2, other), member, pending = _people(app, beishudian)
    rows = [
        (good1[1], good1[2], "居民身份证"),  # row 2: OK
        (good2[1], good2[2].lower(), ""),  # row 3: OK (x in lower case, type defaulted)
        (member[1], member[2], "resident"),  # row 4: already a member
        ("", good1[2], ""),  # row 5: empty name (and a duplicate of row 2)
        ("张三", "", ""),  # row 6: empty ID
        ("张三", "12345", ""),  # row 7: malformed
        ("错误姓名", other[2], ""),  # row 8: wrong name
        ("王五", _unknown_id(app), ""),  # row 9: unknown number
        (pending[1], pending[2], ""),  # row 10: not approved
        (good1[1], good1[2], ""),  # row 11: duplicate of row 2
        (None, None, None),  # blank: skipped
        ("李四", other[2], "驾照"),  # row 13: unknown ID type
    ]
    return {"group": beishudian, "data": xlsx(rows), "good": {good1[0], good2[0]},
            "plain": [good1[2], good2[2], member[2], other[2], pending[2]]}


def test_import__preview_counts_and_rows(app, client, login_as, roster_file):
    login_as("longting_team_admin")
    before = _members(app, roster_file["group"])
    batch = _batch_id(_upload(client, roster_file["group"], roster_file["data"]))
    html = client.get(f"{IMPORT}/{batch}").get_data(as_text=True)
    counts = {k: int(v) for k, v in re.findall(r'id="count-(\w+)">(\d+)<', html)}
    assert counts == {"total": 11, "add": 2, "members": 1, "errors": 8}
    assert "确认导入" in html and f"{IMPORT}/{batch}/errors.xlsx" in html
    first_ok = html.index("import-ok")
    assert all(m.start() < first_ok for m in re.finditer("import-error", html))  # errors first
    assert _members(app, roster_file["group"]) == before  # nothing added before confirmation
    with app.app_context():
        stored = db.session.get(RosterImport, batch).rows_json
    for plain in roster_file["plain"]:
        assert plain not in stored and plain not in html


def test_import__error_report_names_row_column_and_reason(app, client, login_as, roster_file):
    login_as("longting_team_admin")
    batch = _batch_id(_upload(client, roster_file["group"], roster_file["data"]))
    resp = client.get(f"{IMPORT}/{batch}/errors.xlsx")
    assert resp.status_code == 200 and "filename*=UTF-8''" in resp.headers["Content-Disposition"]
    sheet = load_workbook(io.BytesIO(resp.data), read_only=True).worksheets[0]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0] == ["行号", "列", "原因", "姓名", "证件号码"]
    found = {(r[0], r[1], r[2]) for r in rows[1:]}
    no_match = "没有姓名与证件号码都匹配的已审核志愿者"
    assert found == {
        (5, "姓名", "姓名为空。"), (5, "证件号码", "与第 2 行的证件号码重复。"),
        (6, "证件号码", "证件号码为空。"),
        (7, "证件号码", "证件号码与证件类型不符或格式错误。"),
        (8, "证件号码", no_match), (9, "证件号码", no_match), (10, "证件号码", no_match),
        (11, "证件号码", "与第 2 行的证件号码重复。"),
        (13, "证件类型", "无法识别的证件类型。"),
    }
    for plain in roster_file["plain"]:
        assert all(plain not in str(cell) for row in rows for cell in row)


def test_import__apply_adds_exactly_the_good_rows_once(app, client, login_as, roster_file):
    group = roster_file["group"]
    login_as("longting_team_admin")
    before = _members(app, group)
    batch = _batch_id(_upload(client, group, roster_file["data"]))
    assert client.post(f"{IMPORT}/{batch}/apply").status_code == 302
    assert _members(app, group) - before == roster_file["good"]
    with app.app_context():
        applied = db.session.get(RosterImport, batch)
        assert applied.applied_on is not None and applied.applied_count == 2
        origins = set(db.session.scalars(select(Membership.origin).where(
            Membership.group_id == group, Membership.volunteer_id.in_(roster_file["good"]))))
        assert origins == {"admin_added"}
    # Applying twice is refused.
    html = client.post(f"{IMPORT}/{batch}/apply", follow_redirects=True).get_data(as_text=True)
    assert "该批次已导入" in html
    with app.app_context():
        assert db.session.get(RosterImport, batch).applied_count == 2
    # Re-importing the same file adds nobody: they are members now.
    again = _batch_id(_upload(client, group, roster_file["data"]))
    html = client.get(f"{IMPORT}/{again}").get_data(as_text=True)
    counts = {k: int(v) for k, v in re.findall(r'id="count-(\w+)">(\d+)<', html)}
    assert counts["add"] == 0 and counts["members"] == 3
    client.post(f"{IMPORT}/{again}/apply")
    assert _members(app, group) - before == roster_file["good"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Membership).where(
            Membership.group_id == group, Membership.volunteer_id.in_(roster_file["good"]))) == 2


def test_import__apply_rechecks_rows(app, client, login_as, roster_file):
    """A volunteer who became a member between preview and apply is not added twice."""
    group = roster_file["group"]
    login_as("longting_team_admin")
    batch = _batch_id(_upload(client, group, roster_file["data"]))
    one = sorted(roster_file["good"])[0]
    with app.app_context():
        volunteer = db.session.get(Volunteer, one)
        html = client.post("/group-admin/members/add", data={
            "group": group, "real_name": volunteer.real_name, "id_type": "resident",
            "id_number": pii.decrypt(volunteer.id_number_enc)})
    assert html.status_code == 302
    client.post(f"{IMPORT}/{batch}/apply")
    with app.app_context():
        assert db.session.get(RosterImport, batch).applied_count == 1


def test_import__batch_of_another_group_is_404(app, template_db):
    qingping = _group_id(app, QINGPING_TEAM)
    (good, *_), _, _ = _people(app, qingping)
    owner = app.test_client()
    login(owner, "shunhe_team_admin")
    batch = _batch_id(_upload(owner, qingping, xlsx([(good[1], good[2], "")])))
    before = _members(app, qingping)
    for username in ("longting_team_admin", "longting_corps_admin", "kfvf_admin", "longting_officer"):
        other = app.test_client()
        login(other, username)
        assert other.get(f"{IMPORT}/{batch}").status_code in (302, 403, 404)
        assert other.post(f"{IMPORT}/{batch}/apply").status_code in (302, 403, 404)
        assert other.get(f"{IMPORT}/{batch}/errors.xlsx").status_code in (302, 403, 404)
    longting = app.test_client()
    login(longting, "longting_team_admin")
    assert longting.get(f"{IMPORT}/{batch}").status_code == 404
    assert longting.get(f"{IMPORT}/99999").status_code == 404
    assert _members(app, qingping) == before
    with app.app_context():
        assert db.session.get(RosterImport, batch).applied_on is None


def test_import__into_another_or_child_group_is_404(app, client, login_as, roster_file):
    login_as("longting_team_admin")
    assert _upload(client, _group_id(app, QINGPING_TEAM), roster_file["data"]).status_code == 404
    client.get("/logout/")
    login_as("longting_corps_admin")
    assert _upload(client, roster_file["group"], roster_file["data"]).status_code == 404
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RosterImport)) == 0


def test_import__officer_may_not_import(app, client, login_as, roster_file):
    login_as("longting_officer")
    assert client.get(IMPORT).status_code in (302, 403)
    assert _upload(client, roster_file["group"], roster_file["data"]).status_code in (302, 403)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RosterImport)) == 0


@pytest.mark.parametrize("name, data, message", [
    ("名单.csv", b"a,b\n", "请上传 Excel 文件"),
    ("名单.xlsx", b"", "文件为空"),
    ("名单.xlsx", b"not a workbook at all", "不是可读取的 Excel"),
    ("名单.xlsx", "xlsx-no-header", "未找到表头"),
    ("名单.xlsx", "xlsx-header-only", "没有数据行"),
])
def test_import__unusable_files_are_refused_clearly(app, client, login_as, name, data, message):
    if data == "xlsx-no-header":
        data = xlsx([("张三", "410202199001011234")], header=("名字", "号码"))
    elif data == "xlsx-header-only":
        data = xlsx([])
    login_as("longting_team_admin")
    resp = _upload(client, _group_id(app, BEISHUDIAN_TEAM), data, name)
    assert resp.status_code == 400 and message in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RosterImport)) == 0


def test_import__too_many_rows_or_bytes_refused(app, client, login_as, monkeypatch):
    login_as("longting_team_admin")
    group = _group_id(app, BEISHUDIAN_TEAM)
    monkeypatch.setattr(rosters, "MAX_IMPORT_ROWS", 3)
    resp = _upload(client, group, xlsx([("张三", "410202199001011234")] * 4))
    assert resp.status_code == 400 and "超过 3 行" in resp.get_data(as_text=True)
    monkeypatch.setattr(rosters, "MAX_IMPORT_BYTES", 1024)
    resp = _upload(client, group, xlsx([("张三", "410202199001011234")]))
    assert resp.status_code == 400 and "文件超过" in resp.get_data(as_text=True)


def test_import__header_aliases_and_title_row(app, client, login_as):
    beishudian = _group_id(app, BEISHUDIAN_TEAM)
    (good, *_), _, _ = _people(app, beishudian)
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["北书店街道社区志愿服务队成员名单"])
    sheet.append(["序号", "真实姓名", "身份证号"])
    sheet.append([1, good[1], good[2]])
    out = io.BytesIO()
    workbook.save(out)
    login_as("longting_team_admin")
    batch = _batch_id(_upload(client, beishudian, out.getvalue()))
    html = client.get(f"{IMPORT}/{batch}").get_data(as_text=True)
    assert 'id="count-add">1<' in html and "<td>3</td>" in html  # file row 3


def test_import__uploads_are_throttled_per_admin(app, client, login_as, roster_file):
    app.config["ROSTER_IMPORTS_PER_HOUR"] = 2
    login_as("longting_team_admin")
    for _ in range(2):
        _batch_id(_upload(client, roster_file["group"], roster_file["data"]))
    assert _upload(client, roster_file["group"], roster_file["data"]).status_code == 429


def test_import__rows_matching_nobody_are_throttled_per_admin(app, client, login_as, roster_file):
    """The file has 3 rows matching no approved volunteer; with a budget of 5 misses
    the second upload still passes the check, the third is refused."""
    app.config["ROSTER_IMPORT_MISSES_PER_HOUR"] = 5
    login_as("longting_team_admin")
    for _ in range(2):
        _batch_id(_upload(client, roster_file["group"], roster_file["data"]))
    resp = _upload(client, roster_file["group"], roster_file["data"])
    assert resp.status_code == 429 and "尝试次数过多" in resp.get_data(as_text=True)


def test_import__audit_logs_the_batch_without_its_rows(app, client, login_as, roster_file):
    """The batch's creation is audited, but not its (up to 5,000) checked rows."""
    from app.models import AuditEvent

    login_as("longting_team_admin")
    batch = _batch_id(_upload(client, roster_file["group"], roster_file["data"]))
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(
            AuditEvent.object_type == "roster_import", AuditEvent.object_id == batch))
        assert event is not None and '"filename"' in event.after_json
        assert "rows_json" not in event.after_json and "import-" not in event.after_json
