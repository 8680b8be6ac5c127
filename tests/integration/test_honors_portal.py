"""表彰激励 in the portal (issue 7 item 1): editors of a prefecture or above add, edit and
withdraw honors with an optional attachment (PDF/JPEG/PNG by content, 5 MB); county-level
users and groups cannot; officers read in scope; honors show on the volunteer's card,
the volunteer record (/my/record) and the group card."""
from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import (
    AuditEvent, BindingKind, Evaluation, Honor, Membership, MembershipStatus, Region, RegionBinding, Training,
    Volunteer, VolunteerGroup,
)
from tests.conftest import login, statements_of
from tests.integration._hours_helpers import volunteer_of

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
FORM = {"title": "河南省优秀志愿者", "level": "provincial", "awarding_body": "河南省文明办",
        "document_no": "豫文明〔2026〕3号", "awarded_on": "2026-05-04"}
BOOKSTORE_TEAM = "北书店街道社区志愿服务队"


def _count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Honor))


def _volunteer(app, username):
    with app.app_context():
        v = volunteer_of(username)
        db.session.expunge(v)
        return v


def _group(app, name):
    with app.app_context():
        return db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == name))


def _add(client, *, volunteer_no=None, group_id=None, attachment=None, **fields):
    data = {**FORM, **fields}
    if volunteer_no:
        data["recipient_volunteer_no"] = volunteer_no
    if group_id:
        data["volunteer_group"] = str(group_id)
    if attachment is not None:
        name, content = attachment
        data["attachment_file"] = (io.BytesIO(content), name)
    return client.post("/honors/add", data=data, content_type="multipart/form-data", follow_redirects=True)


def _newest(app, title=FORM["title"]) -> Honor | None:
    with app.app_context():
        honor = db.session.scalar(select(Honor).where(Honor.title == title).order_by(Honor.id.desc()).limit(1))
        if honor is not None:
            honor.attachment_data  # load the deferred column before leaving the session
            db.session.expunge(honor)
        return honor


def _switch(client, username):
    client.get("/logout/")
    login(client, username)


# --- Adding, with and without an attachment ---


def test_add_honor__editor_with_pdf_attachment_creates_it_in_the_recipients_region(app, client, login_as):
    vol = _volunteer(app, "vol_longting")
    login_as("kaifeng_honors")
    before = _count(app)
    resp = _add(client, volunteer_no=vol.volunteer_no, attachment=("表彰决定.pdf", PDF))
    assert resp.status_code == 200
    honor = _newest(app)
    assert _count(app) == before + 1
    assert (honor.volunteer_id, honor.region_path, honor.level) == (vol.id, vol.region_path, "provincial")
    assert (honor.attachment_name, honor.attachment_type, honor.attachment_data) == (
        "表彰决定.pdf", "application/pdf", PDF)


def test_add_honor__group_recipient_with_png(app, client, login_as):
    group = _group(app, BOOKSTORE_TEAM)
    login_as("kaifeng_honors")
    _add(client, group_id=group.id, title="开封市五星志愿服务队", attachment=("scan.png", PNG))
    honor = _newest(app, "开封市五星志愿服务队")
    assert (honor.volunteer_group_id, honor.group_path, honor.attachment_type) == (
        group.id, group.group_path, "image/png")


@pytest.mark.parametrize("name, content", [
    ("fake.pdf", b"<html><script>alert(1)</script></html>"),
    ("macro.pdf", b"PK\x03\x04" + b"\x00" * 40),
    ("empty.png", b""),
    ("shifted.pdf", b" %PDF-1.4 but not at the start"),
])
def test_add_honor__attachment_not_pdf_jpeg_png_by_content_is_refused(app, client, login_as, name, content):
    vol = _volunteer(app, "vol_longting")
    login_as("kaifeng_honors")
    before = _count(app)
    resp = _add(client, volunteer_no=vol.volunteer_no, attachment=(name, content))
    assert "附件必须是 PDF、JPEG 或 PNG 文件" in resp.get_data(as_text=True)
    assert _count(app) == before


def test_add_honor__type_comes_from_content_not_extension(app, client, login_as):
    vol = _volunteer(app, "vol_longting")
    login_as("kaifeng_honors")
    _add(client, volunteer_no=vol.volunteer_no, attachment=("photo.pdf", JPEG))
    honor = _newest(app)
    assert honor.attachment_type == "image/jpeg"
    assert honor.attachment_name == "photo.pdf.jpg"


def test_add_honor__attachment_over_5_mb_is_refused_and_exactly_5_mb_accepted(app, client, login_as):
    vol = _volunteer(app, "vol_longting")
    login_as("kaifeng_honors")
    before = _count(app)
    limit = 5 * 1024 * 1024
    resp = _add(client, volunteer_no=vol.volunteer_no, attachment=("big.pdf", PDF + b"0" * (limit + 1 - len(PDF))))
    assert "附件超过 5 MB" in resp.get_data(as_text=True)
    assert _count(app) == before
    _add(client, volunteer_no=vol.volunteer_no, attachment=("max.pdf", PDF + b"0" * (limit - len(PDF))))
    assert _count(app) == before + 1
    assert len(_newest(app).attachment_data) == limit


def test_add_honor__path_in_filename_is_dropped(app, client, login_as):
    vol = _volunteer(app, "vol_longting")
    login_as("kaifeng_honors")
    _add(client, volunteer_no=vol.volunteer_no, attachment=("../../etc/pass\x00wd.png", PNG))
    assert _newest(app).attachment_name == "passwd.png"


def test_add_honor__future_date_and_missing_fields_are_refused(app, client, login_as):
    vol = _volunteer(app, "vol_longting")
    login_as("kaifeng_honors")
    before = _count(app)
    resp = _add(client, volunteer_no=vol.volunteer_no,
                awarded_on=(date.today() + timedelta(days=400)).isoformat())
    assert "表彰日期不能晚于今天" in resp.get_data(as_text=True)
    resp = _add(client, volunteer_no=vol.volunteer_no, awarding_body="  ")
    assert _count(app) == before


# --- Who may write: prefecture or above only ---


@pytest.mark.parametrize("username", ["longting_officer", "longting_corps_admin", "longting_team_admin",
                                      "vol_longting"])
def test_honors_add__county_officer_groups_and_volunteers_have_no_add_and_are_refused(app, client, login_as,
                                                                                   username):
    vol = _volunteer(app, "vol_longting")
    login_as(username)
    listing = client.get("/honors/list/")
    assert listing.status_code == 200
    assert "/honors/add" not in listing.get_data(as_text=True)
    assert client.get("/honors/add").status_code in (302, 403)
    before = _count(app)
    client.post("/honors/add", data={**FORM, "recipient_volunteer_no": vol.volunteer_no})
    assert _count(app) == before


def test_honors_add__prefecture_editor_sees_add(client, login_as):
    login_as("kaifeng_honors")
    assert "/honors/add" in client.get("/honors/list/").get_data(as_text=True)
    form = client.get("/honors/add")
    assert form.status_code == 200
    page = form.get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page and 'name="attachment_file"' in page
    assert '<option value="provincial">省级</option>' in page


def test_honors_editor__county_binding_cannot_be_granted(app):
    from app.services import accounts
    from app.services.errors import ValidationFailed

    with app.app_context():
        sm = app.appbuilder.sm
        user = sm.add_user("county_honors", "x", "y", "ch@example.cn", [sm.find_role("Officer")], "Demo12345!")
        county = db.session.scalar(select(Region).where(Region.code == "410202"))
        with pytest.raises(ValidationFailed):
            accounts.bind_region(user, county, BindingKind.HONORS_EDITOR)


def test_add_honor__county_level_binding_written_around_the_service_grants_nothing(app, client):
    """Defence in depth: an honors-editor binding at county level (not creatable through
    accounts.bind_region) still cannot record honors, by page or by API."""
    vol = _volunteer(app, "vol_longting")
    with app.app_context():
        sm = app.appbuilder.sm
        user = sm.add_user("county_honors", "x", "y", "ch@example.cn", [sm.find_role("HonorsEditor")],
                           "Demo12345!")
        county = db.session.scalar(select(Region).where(Region.code == "410202"))
        db.session.add(RegionBinding(user_id=user.id, region_id=county.id, region_path=county.path,
                                     kind=BindingKind.HONORS_EDITOR))
        db.session.commit()
    login(client, "county_honors")
    before = _count(app)
    resp = _add(client, volunteer_no=vol.volunteer_no)
    assert "只允许地级市以上的表彰编辑添加表彰激励记录" in resp.get_data(as_text=True)
    token = client.post("/api/v1/security/login", json={
        "username": "county_honors", "password": "Demo12345!", "provider": "db"}).get_json()["access_token"]
    api = client.post("/api/v1/honor/", json={**FORM, "volunteer": vol.id},
                      headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 400
    assert _count(app) == before


def test_add_honor__recipient_outside_the_editors_region_is_refused(app, client, login_as):
    outsider = _volunteer(app, "vol_zhengzhou")
    login_as("kaifeng_honors")
    before = _count(app)
    _add(client, volunteer_no=outsider.volunteer_no)
    assert _count(app) == before


# --- Edit and withdraw ---


def _seed_honor(app, username="vol_longting", *, attachment=(None, None, None), withdrawn=False,
                title="开封市志愿服务先进个人") -> int:
    with app.app_context():
        v = volunteer_of(username)
        honor = Honor(title=title, level="prefecture", awarding_body="开封市文明办", awarded_on=date(2026, 2, 1),
                      volunteer_id=v.id, region_id=v.region_id, region_path=v.region_path, is_withdrawn=withdrawn,
                      attachment_name=attachment[0], attachment_type=attachment[1], attachment_data=attachment[2])
        db.session.add(honor)
        db.session.commit()
        return honor.id


def test_edit_honor__editor_replaces_then_removes_the_attachment(app, client, login_as):
    pk = _seed_honor(app, attachment=("a.pdf", "application/pdf", PDF))
    login_as("kaifeng_honors")
    data = {k: FORM[k] for k in ("title", "level", "awarding_body", "document_no", "awarded_on")}
    assert "is_withdrawn" not in client.get(f"/honors/edit/{pk}").get_data(as_text=True)
    client.post(f"/honors/edit/{pk}", data={**data, "attachment_file": (io.BytesIO(PNG), "b.png")},
                content_type="multipart/form-data")
    with app.app_context():
        honor = db.session.get(Honor, pk)
        assert (honor.title, honor.attachment_name, honor.attachment_type) == (FORM["title"], "b.png", "image/png")
    client.post(f"/honors/edit/{pk}", data={**data, "remove_attachment": "y"}, content_type="multipart/form-data")
    with app.app_context():
        honor = db.session.get(Honor, pk)
        assert (honor.attachment_name, honor.attachment_data) == (None, None)


def test_edit_honor__bad_attachment_keeps_the_old_one(app, client, login_as):
    pk = _seed_honor(app, attachment=("a.pdf", "application/pdf", PDF))
    login_as("kaifeng_honors")
    data = {k: FORM[k] for k in ("title", "level", "awarding_body", "awarded_on")}
    resp = client.post(f"/honors/edit/{pk}", data={**data, "attachment_file": (io.BytesIO(b"MZ\x90"), "x.exe")},
                       content_type="multipart/form-data", follow_redirects=True)
    assert "附件必须是 PDF、JPEG 或 PNG 文件" in resp.get_data(as_text=True)
    with app.app_context():
        honor = db.session.get(Honor, pk)
        assert (honor.title, honor.attachment_data) == ("开封市志愿服务先进个人", PDF)


def test_withdraw_honor__editor_withdraws_it_is_audited_and_leaves_card_and_record(app, client, login_as):
    pk = _seed_honor(app)
    login_as("vol_longting")
    assert "开封市志愿服务先进个人" in client.get("/my/card").get_data(as_text=True)
    _switch(client, "kaifeng_honors")
    resp = client.post("/honors/action_post", data={"action": "withdraw", "rowid": str(pk)})
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.get(Honor, pk).is_withdrawn is True
        event_ = db.session.scalar(select(AuditEvent).where(AuditEvent.object_type == "honor",
                                                            AuditEvent.object_id == pk,
                                                            AuditEvent.action == "is_withdrawn:false->true"))
        assert event_ is not None and event_.actor_name == "kaifeng_honors"
    _switch(client, "vol_longting")
    assert "开封市志愿服务先进个人" not in client.get("/my/card").get_data(as_text=True)
    assert "开封市志愿服务先进个人" not in client.get("/my/record").get_data(as_text=True)


def test_restore_honor__editor_restores_a_withdrawn_honor(app, client, login_as):
    pk = _seed_honor(app, withdrawn=True)
    login_as("kaifeng_honors")
    page = client.get(f"/honors/show/{pk}").get_data(as_text=True)
    assert f"/honors/action/restore/{pk}" in page
    client.post(f"/honors/action/restore/{pk}")
    with app.app_context():
        assert db.session.get(Honor, pk).is_withdrawn is False
    _switch(client, "vol_longting")
    assert "开封市志愿服务先进个人" in client.get("/my/card").get_data(as_text=True)


@pytest.mark.parametrize("username", ["longting_officer", "kaifeng_officer", "longting_team_admin"])
def test_withdraw_honor__readers_cannot_withdraw(app, client, login_as, username):
    pk = _seed_honor(app)
    login_as(username)
    client.post("/honors/action_post", data={"action": "withdraw", "rowid": str(pk)})
    with app.app_context():
        assert db.session.get(Honor, pk).is_withdrawn is False


def test_withdraw_honor__editor_of_another_prefecture_gets_404(app, client):
    pk = _seed_honor(app, "vol_zhengzhou")
    with app.app_context():
        from app.services import accounts

        sm = app.appbuilder.sm
        user = sm.add_user("zz_honors", "x", "y", "zz@example.cn", [sm.find_role("HonorsEditor")], "Demo12345!")
        accounts.bind_region(user, db.session.scalar(select(Region).where(Region.code == "410100")),
                             BindingKind.HONORS_EDITOR)
        db.session.commit()
    login(client, "kaifeng_honors")
    assert client.post("/honors/action_post", data={"action": "withdraw", "rowid": str(pk)}).status_code == 404
    with app.app_context():
        assert db.session.get(Honor, pk).is_withdrawn is False
    _switch(client, "zz_honors")
    client.post("/honors/action_post", data={"action": "withdraw", "rowid": str(pk)})
    with app.app_context():
        assert db.session.get(Honor, pk).is_withdrawn is True


# --- Reading in scope, and the attachment download ---


def test_show_honor__officers_read_in_scope_only(app, client, login_as):
    longting = _seed_honor(app, "vol_longting")
    shunhe = _seed_honor(app, "vol_shunhe")
    login_as("longting_officer")
    assert client.get(f"/honors/show/{longting}").status_code == 200
    assert client.get(f"/honors/show/{shunhe}").status_code == 404
    _switch(client, "kaifeng_officer")
    assert client.get(f"/honors/show/{shunhe}").status_code == 200


@pytest.mark.parametrize("username, status", [
    ("vol_longting", 200), ("kaifeng_honors", 200), ("kaifeng_officer", 200), ("longting_officer", 200),
    ("shunhe_officer", 404), ("vol_shunhe", 404), ("longting_team_admin", 404),
])
def test_download_attachment__readers_of_the_honor_only(app, client, login_as, username, status):
    pk = _seed_honor(app, attachment=("决定.pdf", "application/pdf", PDF))
    login_as(username)
    resp = client.get(f"/honors/{pk}/attachment")
    assert resp.status_code == status
    if status == 200:
        assert resp.data == PDF
        assert resp.headers["Content-Type"] == "application/pdf"
        assert resp.headers["Content-Disposition"].startswith("attachment;")
        assert "filename*=UTF-8''%E5%86%B3%E5%AE%9A.pdf" in resp.headers["Content-Disposition"]
        assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_download_attachment__group_honor_for_its_admins_and_the_show_page_links_it(app, client, login_as):
    group = _group(app, BOOKSTORE_TEAM)
    with app.app_context():
        honor = Honor(title="组织奖", level="prefecture", awarding_body="开封市文明办", awarded_on=date(2026, 1, 5),
                      volunteer_group_id=group.id, group_path=group.group_path, region_id=group.region_id,
                      region_path=group.region_path, attachment_name="g.png", attachment_type="image/png",
                      attachment_data=PNG)
        db.session.add(honor)
        db.session.commit()
        pk = honor.id
    login_as("longting_team_admin")
    assert client.get(f"/honors/{pk}/attachment").data == PNG
    assert f"/honors/{pk}/attachment" in client.get(f"/honors/show/{pk}").get_data(as_text=True)
    _switch(client, "culture_team_admin")
    assert client.get(f"/honors/{pk}/attachment").status_code == 404


def test_download_attachment__none_unknown_or_anonymous(app, client, login_as):
    bare = _seed_honor(app)
    with_file = _seed_honor(app, attachment=("a.pdf", "application/pdf", PDF))
    assert client.get(f"/honors/{with_file}/attachment").status_code in (302, 401, 403)
    login_as("kaifeng_honors")
    assert client.get(f"/honors/{bare}/attachment").status_code == 404
    assert client.get("/honors/99999999/attachment").status_code == 404
    assert client.get("/honors/99999999999999999999/attachment").status_code == 404


# --- Honors on the volunteer card, the record and the group card ---


def test_card__volunteer_sees_own_honors_and_the_record_link(app, client, login_as):
    login_as("kaifeng_honors")
    _add(client, volunteer_no=_volunteer(app, "vol_longting").volunteer_no)
    _switch(client, "vol_longting")
    page = client.get("/my/card").get_data(as_text=True)
    assert FORM["title"] in page and "开封市优秀志愿者" in page  # new and demo honor
    assert 'id="card-honors"' in page and "/my/record" in page
    _switch(client, "vol_shunhe")
    assert FORM["title"] not in client.get("/my/card").get_data(as_text=True)


def test_record__shows_the_five_categories_with_masked_pii(app, client, login_as):
    vol = _volunteer(app, "vol_longting")
    pk = _seed_honor(app, attachment=("a.pdf", "application/pdf", PDF))
    login_as("vol_longting")
    resp = client.get("/my/record")
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    for section in ("基本信息", "服务", "培训", "表彰激励", "评价"):
        assert section in page
    assert vol.id_number_masked in page and "*" in vol.id_number_masked
    assert vol.volunteer_no in page
    assert f"{vol.total_minutes / 60:.2f}".rstrip("0").rstrip(".") in page
    assert f"/honors/{pk}/attachment" in page
    with app.app_context():
        from app.security import pii

        full = pii.decrypt(db.session.get(Volunteer, vol.id).id_number_enc)
    assert full not in page


def test_record__account_without_volunteer_and_anonymous(client, login_as):
    assert client.get("/my/record").status_code in (302, 401)
    login_as("kaifeng_officer")
    resp = client.get("/my/record")
    assert resp.status_code == 200 and "volunteer-record" not in resp.get_data(as_text=True)


def test_group_card__members_see_the_groups_honors_not_withdrawn(app, client, login_as):
    group = _group(app, BOOKSTORE_TEAM)
    with app.app_context():
        db.session.add(Honor(title="已撤销的团体表彰", level="prefecture", awarding_body="开封市文明办",
                             awarded_on=date(2026, 1, 5), volunteer_group_id=group.id, group_path=group.group_path,
                             region_id=group.region_id, region_path=group.region_path, is_withdrawn=True))
        db.session.commit()
    login_as("vol_longting")
    page = client.get(f"/my/groups/{group.id}/card").get_data(as_text=True)
    assert 'id="group-card-honors"' in page and "开封市最佳志愿服务组织" in page
    assert "已撤销的团体表彰" not in page
    culture = _group(app, "龙亭区文化馆志愿服务队")
    assert "开封市最佳志愿服务组织" not in client.get(f"/my/groups/{culture.id}/card").get_data(as_text=True)


def test_group_card__attachment_link_for_the_groups_admins_only(app, client, login_as):
    group = _group(app, BOOKSTORE_TEAM)
    with app.app_context():
        honor = Honor(title="附件表彰", level="prefecture", awarding_body="开封市文明办", awarded_on=date(2026, 1, 5),
                      volunteer_group_id=group.id, group_path=group.group_path, region_id=group.region_id,
                      region_path=group.region_path, attachment_name="g.pdf", attachment_type="application/pdf",
                      attachment_data=PDF)
        db.session.add(honor)
        db.session.commit()
        pk = honor.id
    login_as("longting_team_admin")
    assert f"/honors/{pk}/attachment" in client.get(f"/my/groups/{group.id}/card").get_data(as_text=True)
    _switch(client, "vol_longting")
    page = client.get(f"/my/groups/{group.id}/card").get_data(as_text=True)
    assert "附件表彰" in page and f"/honors/{pk}/attachment" not in page


def _queries(app, client, url):
    return statements_of(app, client, url)


def _add_rows(start: int, stop: int) -> None:
    """Trainings, evaluations and honors (with attachments) numbered start..stop-1 for vol_longting."""
    from app.models import Position, Project

    v = volunteer_of("vol_longting")
    groups = db.session.scalars(select(Membership.group_id).where(
        Membership.volunteer_id == v.id, Membership.status == MembershipStatus.ACTIVE)).all()
    positions = db.session.scalars(select(Position).join(Project).where(Project.group_id.in_(groups))).all()
    for i in range(start, stop):
        g = db.session.get(VolunteerGroup, groups[i % len(groups)])
        db.session.add(Training(volunteer_id=v.id, group_id=g.id, group_path=g.group_path, title=f"培训{i}",
                                provider="开封市志愿服务联合会", trained_on=date(2026, 1, 1 + i), minutes=120,
                                region_id=g.region_id, region_path=g.region_path))
        p = positions[i % len(positions)]
        db.session.add(Evaluation(volunteer_id=v.id, group_id=p.project.group_id, group_path=p.group_path,
                                  project_id=p.project_id, position_id=p.id, punctuality=5, attitude=4,
                                  skill=4, rating=4, comment="好", evaluated_on=date(2026, 1, 1 + i),
                                  region_id=p.project.region_id, region_path=p.project.region_path))
        db.session.add(Honor(title=f"表彰{i}", level="prefecture", awarding_body="开封市文明办",
                             awarded_on=date(2026, 1, 1 + i), volunteer_id=v.id, region_id=v.region_id,
                             region_path=v.region_path, attachment_name="a.pdf", attachment_type="application/pdf",
                             attachment_data=PDF))
    db.session.commit()


def test_record__query_count_does_not_grow_with_rows(app, client, login_as):
    with app.app_context():
        _add_rows(0, 1)
    login_as("vol_longting")
    client.get("/my/record")
    small = _queries(app, client, "/my/record")
    with app.app_context():
        _add_rows(1, 9)
    large = _queries(app, client, "/my/record")
    page = client.get("/my/record").get_data(as_text=True)
    assert "培训8" in page and "表彰8" in page
    assert len(large) == len(small), "\n".join(large)
