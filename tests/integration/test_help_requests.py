"""Help requests (求助信息, issue 7 item 5 and its part of item 7), over HTTP: 发布求助 without
login (validation, rate limit, encrypted and masked phone, follow link), the public list
(never pending, closed or hidden; contact masked), 求助审核 by officers of the region,
求助认领 by group admins of the region (claim, resolve, turn into a project), scope
(out of scope 404, nothing written), the REST resource and the audit trail."""
from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEvent, HelpRequest, Project, VolunteerGroup
from app.security import pii
from tests.conftest import login, statements_of

PHONE = "13912345678"
CONTACT = "王秀梅"
COMMUNITY = "410202001001"  # 龙亭区 北书店街道 书店街社区
SHUNHE_COMMUNITY = "410203001001"  # 顺河回族区 清平街道 清平南北街社区
BOOKSTORE_TEAM = "北书店街道社区志愿服务队"  # longting_team_admin, region 410202001
CULTURE_TEAM = "龙亭区文化馆志愿服务队"  # culture_team_admin, region 410202
QINGPING_TEAM = "清平街道社区志愿服务队"  # shunhe_team_admin, region 410203001
FOLLOW = re.compile(r"/help/follow/([A-Za-z0-9_-]{20,64})")


def _form(**overrides) -> dict:
    data = {"region_code": COMMUNITY, "category": "elderly", "title": "独居老人需要助餐",
            "description": "书店街社区一位独居老人行动不便，每天中午需要有人送餐。", "contact_name": CONTACT,
            "contact_phone": PHONE}
    data.update(overrides)
    return data


def _client(app, username=None, address="10.0.0.1"):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    if username:
        login(client, username)
    return client


def _post(app, address="10.0.0.1", **overrides) -> tuple[int, str]:
    """Post a help request anonymously over HTTP; return its id and follow token."""
    resp = _client(app, address=address).post("/help/new", data=_form(**overrides))
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    token = FOLLOW.search(resp.get_data(as_text=True)).group(1)
    with app.app_context():
        return db.session.scalar(select(HelpRequest.id).where(
            HelpRequest.follow_token_hash == hashlib.sha256(token.encode()).hexdigest())), token


def _get(app, pk) -> HelpRequest:
    with app.app_context():
        item = db.session.get(HelpRequest, pk)
        db.session.expunge(item)
        return item


def _count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(HelpRequest.id)))


def _group_id(app, name) -> int:
    with app.app_context():
        return db.session.scalar(select(VolunteerGroup.id).where(VolunteerGroup.name == name))


def _published(app, **overrides) -> int:
    pk, _token = _post(app, **overrides)
    resp = _client(app, "longting_officer" if overrides.get("region_code", COMMUNITY).startswith("410202")
                   else "shunhe_officer").post(f"/help-moderation/{pk}/publish")
    assert resp.status_code == 302
    assert _get(app, pk).status == "published"
    return pk


def _claimed(app) -> int:
    pk = _published(app)
    resp = _client(app, "longting_team_admin").post(f"/group-admin/help-requests/{pk}/claim",
                                                    data={"group": _group_id(app, BOOKSTORE_TEAM)})
    assert resp.status_code == 302
    assert _get(app, pk).status == "claimed"
    return pk


def _text(resp) -> str:
    return resp.get_data(as_text=True)


# --- 发布求助 ---


def test_post_page__anonymous_sees_the_form_with_the_region_picker(app):
    resp = _client(app).get("/help/new")
    assert resp.status_code == 200
    html = _text(resp)
    assert 'id="help-form"' in html and "region-selects" in html and 'name="contact_phone"' in html


def test_post__anonymous_creates_a_pending_request_with_encrypted_phone_and_follow_link(app):
    before = _count(app)
    pk, token = _post(app)
    assert _count(app) == before + 1
    item = _get(app, pk)
    assert item.status == "pending" and not item.is_hidden and item.created_by_fk is None
    assert item.region_path == "410000/410200/410202/410202001/410202001001/"
    assert item.contact_phone_masked == "139****5678"
    with app.app_context():
        assert pii.decrypt(item.contact_phone_enc) == PHONE
        # Only the token's hash is stored, never the token; the phone only encrypted.
        row = db.session.execute(select(HelpRequest.__table__).where(HelpRequest.id == pk)).one()
        assert not any(isinstance(v, str) and (token in v or PHONE in v) for v in row)
        assert item.follow_token_hash == hashlib.sha256(token.encode()).hexdigest()


def test_post__signed_in_volunteer_finds_it_in_my_help_requests(app):
    client = _client(app, "vol_longting")
    resp = client.post("/help/new", data=_form(title="楼道灯坏了需要帮忙"))
    assert resp.status_code == 200 and FOLLOW.search(_text(resp))
    html = _text(client.get("/help/mine"))
    assert "楼道灯坏了需要帮忙" in html
    assert "独居老人需要助餐" not in _text(_client(app, "vol_shunhe").get("/help/mine"))


@pytest.mark.parametrize("overrides,fields", [
    ({"region_code": "", "category": "", "title": "", "description": " ", "contact_name": "", "contact_phone": ""},
     {"region_code", "category", "title", "description", "contact_name", "contact_phone"}),
    ({"region_code": "410200", "contact_phone": "12345"}, {"region_code", "contact_phone"}),  # prefecture: too coarse
    ({"region_code": "999999", "category": "astrology"}, {"region_code", "category"}),
    ({"title": "长" * 121, "description": "字" * 2001, "contact_name": "名" * 65},
     {"title", "description", "contact_name"}),
])
def test_post__bad_input_marks_every_field_and_writes_nothing(app, overrides, fields):
    before = _count(app)
    resp = _client(app).post("/help/new", data=_form(**overrides))
    assert resp.status_code == 400
    html = _text(resp)
    marked = set(re.findall(r'class="help-block field-error" data-field="([a-z_]+)"', html))
    assert marked == fields
    assert not FOLLOW.search(html)
    assert _count(app) == before


def test_post__rate_limit_per_address_defaults_to_five_an_hour(app):
    app.config.pop("HELP_REQUESTS_PER_ADDRESS_PER_HOUR", None)
    for n in range(5):
        _post(app, address="10.9.9.9", title=f"求助 {n}")
    before = _count(app)
    resp = _client(app, address="10.9.9.9").post("/help/new", data=_form(title="第六条"))
    assert resp.status_code == 429
    assert not FOLLOW.search(_text(resp))
    assert _count(app) == before
    _post(app, address="10.8.8.8", title="另一个地址")  # another address is not limited
    assert _count(app) == before + 1


def test_post__rate_limit_reads_its_setting_and_invalid_posts_do_not_count(app):
    app.config["HELP_REQUESTS_PER_ADDRESS_PER_HOUR"] = 1
    assert _client(app, address="10.7.7.7").post("/help/new", data=_form(title="")).status_code == 400
    _post(app, address="10.7.7.7")
    assert _client(app, address="10.7.7.7").post("/help/new", data=_form()).status_code == 429


# --- The follow link ---


def test_follow__the_token_shows_the_status_and_a_wrong_token_is_404(app):
    pk, token = _post(app)
    client = _client(app, address="10.1.1.1")
    resp = client.get(f"/help/follow/{token}")
    assert resp.status_code == 200
    html = _text(resp)
    assert 'data-status="pending"' in html and "独居老人需要助餐" in html
    assert resp.headers["Cache-Control"] == "no-store"
    for wrong in (token[:-1] + ("A" if token[-1] != "A" else "B"), token[:-4], "x" * 32, "短"):
        assert client.get(f"/help/follow/{wrong}").status_code == 404
    # The status moves on: the follow page shows it.
    _client(app, "longting_officer").post(f"/help-moderation/{pk}/publish")
    assert 'data-status="published"' in _text(client.get(f"/help/follow/{token}"))


def test_follow__the_page_sends_no_referrer_and_other_pages_keep_the_site_policy(app):
    """The token is in the follow page's URL: links followed from it must not carry it
    away in a Referer header (Talisman sets the site-wide policy on every response)."""
    _pk, token = _post(app)
    client = _client(app, address="10.1.1.2")
    resp = client.get(f"/help/follow/{token}")
    assert resp.status_code == 200
    assert resp.headers.get_all("Referrer-Policy") == ["no-referrer"]
    assert "Content-Security-Policy" in resp.headers  # the rest of the hardening still applies
    assert client.get("/help/").headers.get_all("Referrer-Policy") == ["strict-origin-when-cross-origin"]
    assert client.get("/help/follow/" + "x" * 32).headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


# --- The public list ---


def test_public_list__shows_only_published_visible_requests_with_contact_masked(app):
    shown = _published(app, title="公开的求助")
    pending, _ = _post(app, title="待审核的求助")
    hidden = _published(app, title="被隐藏的求助")
    closed, _ = _post(app, title="被关闭的求助")
    officer = _client(app, "longting_officer")
    assert officer.post(f"/help-moderation/{hidden}/hide").status_code == 302
    assert officer.post(f"/help-moderation/{closed}/close", data={"note": "重复提交"}).status_code == 302
    anonymous = _client(app)
    resp = anonymous.get("/help/")
    assert resp.status_code == 200
    html = _text(resp)
    assert f'id="help-{shown}"' in html and "公开的求助" in html
    for title in ("待审核的求助", "被隐藏的求助", "被关闭的求助"):
        assert title not in html
    assert PHONE not in html and CONTACT not in html
    assert "139****5678" in html and "王**" in html
    assert anonymous.get(f"/help/{shown}").status_code == 200
    for pk in (pending, hidden, closed, 999999):
        assert anonymous.get(f"/help/{pk}").status_code == 404


def test_public_list__searches_by_region_and_category(app):
    longting = _published(app, title="龙亭的求助", category="elderly")
    shunhe = _published(app, title="顺河的求助", category="environment", region_code=SHUNHE_COMMUNITY)
    client = _client(app)

    def ids(**args):
        return {int(x) for x in re.findall(r'id="help-(\d+)"', _text(client.get("/help/", query_string=args)))}

    assert {longting, shunhe} <= ids()
    assert longting in ids(region="410202") and shunhe not in ids(region="410202")
    assert shunhe in ids(region="顺河回族区") and longting not in ids(region="顺河回族区")
    assert shunhe in ids(category="environment") and longting not in ids(category="environment")
    assert not ids(region="不存在的地方")
    assert not ids(category="astrology")


def test_public_list__is_in_the_navbar_for_anonymous_visitors(app):
    html = _text(_client(app).get("/help/"))
    assert 'href="/help/"' in html and 'href="/help/new"' in html


# --- 区域监管 → 求助审核 ---


def test_moderation__officer_outside_the_region_gets_404_and_changes_nothing(app):
    pk, _ = _post(app)
    shunhe = _client(app, "shunhe_officer")
    assert shunhe.get(f"/help-moderation/{pk}").status_code == 404
    for action in ("publish", "hide", "close"):
        assert shunhe.post(f"/help-moderation/{pk}/{action}", data={"note": "x"}).status_code == 404
    assert f'id="help-{pk}"' not in _text(shunhe.get("/help-moderation/?status=all"))
    item = _get(app, pk)
    assert item.status == "pending" and not item.is_hidden


@pytest.mark.parametrize("username", ["longting_officer", "kaifeng_officer"])
def test_moderation__officer_of_the_region_or_above_publishes(app, username):
    pk, _ = _post(app)
    client = _client(app, username)
    assert f'id="help-{pk}"' in _text(client.get("/help-moderation/"))
    assert client.get(f"/help-moderation/{pk}").status_code == 200
    assert client.post(f"/help-moderation/{pk}/publish").status_code == 302
    item = _get(app, pk)
    assert item.status == "published"
    with app.app_context():
        assert item.moderated_by_fk == app.appbuilder.sm.find_user(username=username).id
    # Publishing twice is refused with a message, nothing changes.
    client.post(f"/help-moderation/{pk}/publish")
    assert _get(app, pk).status == "published"


@pytest.mark.parametrize("username", [None, "vol_longting", "longting_team_admin", "kaifeng_honors"])
def test_moderation__non_officers_are_refused(app, username):
    pk, _ = _post(app)
    client = _client(app, username)
    resp = client.get("/help-moderation/")
    assert resp.status_code in (302, 403)
    if username is None:
        assert "/login" in resp.headers["Location"]
    client.post(f"/help-moderation/{pk}/publish")
    assert _get(app, pk).status == "pending"


def test_moderation__close_needs_a_note_the_requester_reads(app):
    pk, token = _post(app)
    officer = _client(app, "longting_officer")
    officer.post(f"/help-moderation/{pk}/close", data={"note": "  "})
    assert _get(app, pk).status == "pending"
    officer.post(f"/help-moderation/{pk}/close", data={"note": "已转交社区居委会处理"})
    item = _get(app, pk)
    assert item.status == "rejected" and item.resolution == "已转交社区居委会处理" and item.resolved_on
    html = _text(_client(app).get(f"/help/follow/{token}"))
    assert "已转交社区居委会处理" in html and 'data-status="rejected"' in html
    officer.post(f"/help-moderation/{pk}/close", data={"note": "again"})  # finished: refused
    assert _get(app, pk).resolution == "已转交社区居委会处理"


def test_moderation__hidden_request_cannot_be_claimed_until_shown_again(app):
    pk = _published(app)
    officer = _client(app, "longting_officer")
    officer.post(f"/help-moderation/{pk}/hide")
    assert _get(app, pk).is_hidden
    admin = _client(app, "longting_team_admin")
    assert f'id="help-{pk}"' not in _text(admin.get("/group-admin/help-requests/"))
    resp = admin.post(f"/group-admin/help-requests/{pk}/claim", data={"group": _group_id(app, BOOKSTORE_TEAM)})
    assert resp.status_code == 404
    officer.post(f"/help-moderation/{pk}/unhide")
    assert not _get(app, pk).is_hidden
    assert f'id="help-{pk}"' in _text(admin.get("/group-admin/help-requests/"))


# --- 团体管理 → 求助认领 ---


def test_claim__admin_of_a_group_of_the_region_claims_it(app):
    pk = _published(app)
    admin = _client(app, "longting_team_admin")
    assert f'id="help-{pk}"' in _text(admin.get("/group-admin/help-requests/"))
    group_id = _group_id(app, BOOKSTORE_TEAM)
    assert admin.post(f"/group-admin/help-requests/{pk}/claim", data={"group": group_id}).status_code == 302
    item = _get(app, pk)
    assert item.status == "claimed" and item.claimed_by_group_id == group_id and item.claimed_on
    with app.app_context():
        assert item.group_path == db.session.get(VolunteerGroup, group_id).group_path
    assert f'id="help-{pk}"' in _text(admin.get("/group-admin/help-requests/?tab=claimed"))
    # The public sees who took it on; the contact stays masked.
    html = _text(_client(app).get(f"/help/{pk}"))
    assert BOOKSTORE_TEAM in html and PHONE not in html


def test_claim__group_outside_the_region_gets_404_and_changes_nothing(app):
    pk = _published(app)
    admin = _client(app, "shunhe_team_admin")  # 清平 team: 顺河, not 龙亭
    assert f'id="help-{pk}"' not in _text(admin.get("/group-admin/help-requests/"))
    assert admin.get(f"/group-admin/help-requests/{pk}").status_code == 404
    for group in (QINGPING_TEAM, BOOKSTORE_TEAM):  # its own group, and one it does not administer
        resp = admin.post(f"/group-admin/help-requests/{pk}/claim", data={"group": _group_id(app, group)})
        assert resp.status_code == 404
    assert _get(app, pk).status == "published"


def test_claim__a_group_whose_region_lies_below_the_request_cannot_claim_it(app):
    """A request of 龙亭区 as a whole is not in 北书店街道 team's region."""
    pk = _published(app, region_code="410202")
    admin = _client(app, "longting_team_admin")
    resp = admin.post(f"/group-admin/help-requests/{pk}/claim", data={"group": _group_id(app, BOOKSTORE_TEAM)})
    assert resp.status_code == 404
    assert _get(app, pk).status == "published"
    culture = _client(app, "culture_team_admin")  # its region is 龙亭区
    resp = culture.post(f"/group-admin/help-requests/{pk}/claim", data={"group": _group_id(app, CULTURE_TEAM)})
    assert resp.status_code == 302 and _get(app, pk).claimed_by_group_id == _group_id(app, CULTURE_TEAM)


def test_claim__pending_or_already_claimed_requests_cannot_be_claimed(app):
    pending, _ = _post(app)
    admin = _client(app, "culture_team_admin")
    resp = admin.post(f"/group-admin/help-requests/{pending}/claim", data={"group": _group_id(app, CULTURE_TEAM)})
    assert resp.status_code == 404 and _get(app, pending).status == "pending"
    claimed = _claimed(app)
    resp = admin.post(f"/group-admin/help-requests/{claimed}/claim", data={"group": _group_id(app, CULTURE_TEAM)})
    assert resp.status_code == 404
    assert _get(app, claimed).claimed_by_group_id == _group_id(app, BOOKSTORE_TEAM)


def test_claim__officers_and_volunteers_are_refused(app):
    pk = _published(app)
    for username in ("longting_officer", "vol_longting"):
        resp = _client(app, username).post(f"/group-admin/help-requests/{pk}/claim",
                                           data={"group": _group_id(app, BOOKSTORE_TEAM)})
        assert resp.status_code in (302, 403)
    assert _get(app, pk).status == "published"


def test_resolve__only_the_claiming_groups_own_admin_resolves_with_a_text(app):
    pk = _claimed(app)
    parent = _client(app, "longting_corps_admin")  # the team's parent group: reads, does not act
    assert parent.get(f"/group-admin/help-requests/{pk}").status_code == 200
    assert parent.post(f"/group-admin/help-requests/{pk}/resolve", data={"resolution": "x"}).status_code == 404
    other = _client(app, "culture_team_admin")
    assert other.get(f"/group-admin/help-requests/{pk}").status_code == 404
    assert other.post(f"/group-admin/help-requests/{pk}/resolve", data={"resolution": "x"}).status_code == 404
    admin = _client(app, "longting_team_admin")
    admin.post(f"/group-admin/help-requests/{pk}/resolve", data={"resolution": ""})
    assert _get(app, pk).status == "claimed"
    assert admin.post(f"/group-admin/help-requests/{pk}/resolve",
                      data={"resolution": "已安排志愿者每天送餐"}).status_code == 302
    item = _get(app, pk)
    assert item.status == "resolved" and item.resolution == "已安排志愿者每天送餐" and item.resolved_on
    assert "已安排志愿者每天送餐" in _text(_client(app).get(f"/help/{pk}"))


def test_convert__prefills_publish_new_project_and_links_the_project(app):
    pk = _claimed(app)
    group_id = _group_id(app, BOOKSTORE_TEAM)
    admin = _client(app, "longting_team_admin")
    html = _text(admin.get(f"/group-admin/help-requests/{pk}"))
    assert f"/group-admin/projects/new?group={group_id}&amp;from_help={pk}" in html
    resp = admin.get(f"/group-admin/projects/new?group={group_id}&from_help={pk}")
    assert resp.status_code == 200
    html = _text(resp)
    assert 'value="独居老人需要助餐"' in html and "每天中午需要有人送餐" in html
    assert f'name="from_help" value="{pk}"' in html
    assert re.search(r'<option selected value="elderly">|<option value="elderly" selected>', html)
    form = {"group": group_id, "from_help": pk, "name": "独居老人助餐", "category": "elderly",
            "description": "每天中午送餐", "address": "书店街社区", "region_code": COMMUNITY,
            "starts_at": "2099-01-01T08:00", "ends_at": "2099-02-01T18:00", "recruit_scope": "anyone",
            "positions-0-name": "送餐员", "positions-0-quota": "5", "positions-0-default_hours": "2"}
    resp = admin.post(f"/group-admin/projects/new?group={group_id}", data=form)
    assert resp.status_code == 302, re.findall(r'(?:field-error|alert-danger)[^>]*>([^<]*)', _text(resp))
    item = _get(app, pk)
    with app.app_context():
        project = db.session.scalar(select(Project).where(Project.name == "独居老人助餐"))
        assert project is not None and project.group_id == group_id
    assert item.status == "converted" and item.project_id == project.id
    assert f"/public/projects/{project.id}" in _text(_client(app).get(f"/help/{pk}"))


def test_convert__a_request_the_group_did_not_claim_is_404_and_nothing_is_published(app):
    pk = _claimed(app)
    published = _published(app, title="还没人认领")
    culture = _client(app, "culture_team_admin")
    culture_id = _group_id(app, CULTURE_TEAM)
    assert culture.get(f"/group-admin/projects/new?group={culture_id}&from_help={pk}").status_code == 404
    admin = _client(app, "longting_team_admin")
    team_id = _group_id(app, BOOKSTORE_TEAM)
    assert admin.get(f"/group-admin/projects/new?group={team_id}&from_help={published}").status_code == 404
    with app.app_context():
        before = db.session.scalar(select(func.count(Project.id)))
    form = {"group": culture_id, "from_help": pk, "name": "冒领的项目", "category": "elderly", "description": "x",
            "address": "x", "region_code": "410202", "starts_at": "2099-01-01T08:00", "ends_at": "2099-02-01T18:00",
            "recruit_scope": "anyone", "positions-0-name": "岗位", "positions-0-quota": "5",
            "positions-0-default_hours": "2"}
    assert culture.post(f"/group-admin/projects/new?group={culture_id}", data=form).status_code == 404
    with app.app_context():
        assert db.session.scalar(select(func.count(Project.id))) == before
    assert _get(app, pk).status == "claimed" and _get(app, pk).project_id is None


def test_contact__full_phone_for_the_claiming_group_and_officers_is_audited(app):
    pk = _claimed(app)
    for username, url in (("longting_team_admin", f"/group-admin/help-requests/{pk}/contact"),
                          ("longting_officer", f"/help-moderation/{pk}/contact")):
        resp = _client(app, username).post(url)
        assert resp.status_code == 200 and PHONE in _text(resp)
    with app.app_context():
        viewers = set(db.session.scalars(select(AuditEvent.actor_name).where(
            AuditEvent.object_type == "help_request", AuditEvent.object_id == pk,
            AuditEvent.action == "view_pii")))
    assert viewers == {"longting_team_admin", "longting_officer"}
    assert _client(app, "culture_team_admin").post(f"/group-admin/help-requests/{pk}/contact").status_code == 404
    assert _client(app, "shunhe_officer").post(f"/help-moderation/{pk}/contact").status_code == 404


def test_audit__each_state_change_is_an_event_without_the_phone(app):
    pk = _claimed(app)
    _client(app, "longting_officer").post(f"/help-moderation/{pk}/hide")
    _client(app, "longting_team_admin").post(f"/group-admin/help-requests/{pk}/resolve", data={"resolution": "好了"})
    with app.app_context():
        events = db.session.execute(select(AuditEvent.action, AuditEvent.actor_name, AuditEvent.after_json).where(
            AuditEvent.object_type == "help_request", AuditEvent.object_id == pk).order_by(AuditEvent.id)).all()
    actions = [(a, actor) for a, actor, _after in events]
    assert actions[0] == ("create", "anonymous")
    assert ("status:pending->published", "longting_officer") in actions
    assert ("status:published->claimed", "longting_team_admin") in actions
    assert ("update", "longting_officer") in actions  # hidden
    assert ("status:claimed->resolved", "longting_team_admin") in actions
    assert not any(PHONE in (after or "") for _a, _actor, after in events)


# --- REST: /api/v1/help_request/ ---


def _token(client, username):
    resp = client.post("/api/v1/security/login", json={"username": username, "password": "Demo12345!",
                                                       "provider": "db"})
    assert resp.status_code == 200, resp.data
    return {"Authorization": f"Bearer {resp.get_json()['access_token']}"}


def test_api_public__anyone_reads_the_public_list_masked(app):
    shown = _published(app, title="公开")
    pending, _ = _post(app, title="待审核")
    hidden = _published(app, title="隐藏")
    _client(app, "longting_officer").post(f"/help-moderation/{hidden}/hide")
    client = _client(app)
    resp = client.get("/api/v1/help_request/public/")
    assert resp.status_code == 200
    body = resp.get_json()
    ids = {r["id"] for r in body["result"]}
    assert shown in ids and pending not in ids and hidden not in ids
    row = next(r for r in body["result"] if r["id"] == shown)
    assert row["contact_name"] == "王**" and row["contact_phone_masked"] == "139****5678"
    assert PHONE not in resp.get_data(as_text=True) and CONTACT not in resp.get_data(as_text=True)
    assert client.get(f"/api/v1/help_request/public/{shown}").get_json()["result"]["title"] == "公开"
    assert client.get(f"/api/v1/help_request/public/{pending}").status_code == 404
    assert client.get(f"/api/v1/help_request/public/{hidden}").status_code == 404
    assert {r["id"] for r in client.get("/api/v1/help_request/public/?region=410203").get_json()["result"]} \
        .isdisjoint({shown})


def test_api_submit__anonymous_posts_and_gets_the_follow_token_once(app):
    client = _client(app, address="10.3.3.3")
    before = _count(app)
    resp = client.post("/api/v1/help_request/", json=_form())
    assert resp.status_code == 201, resp.data
    body = resp.get_json()
    assert body["status"] == "pending" and "/help/follow/" in body["follow_url"]
    assert client.get(f"/help/follow/{body['follow_token']}").status_code == 200
    assert _get(app, body["id"]).follow_token_hash == hashlib.sha256(body["follow_token"].encode()).hexdigest()
    resp = client.post("/api/v1/help_request/", json={**_form(), "title": "", "contact_phone": 138})
    assert resp.status_code == 400 and set(resp.get_json()["message"]) == {"contact_phone"}
    resp = client.post("/api/v1/help_request/", json={**_form(), "title": "", "category": "x"})
    assert resp.status_code == 400 and set(resp.get_json()["message"]) == {"title", "category"}
    assert client.post("/api/v1/help_request/", data="not json").status_code == 400
    assert _count(app) == before + 1


def test_api_submit__a_bearer_token_records_the_caller_as_the_creator(app):
    client = _client(app, address="10.3.3.4")
    resp = client.post("/api/v1/help_request/", json=_form(title="令牌用户的求助"),
                       headers=_token(client, "vol_longting"))
    assert resp.status_code == 201, resp.data
    with app.app_context():
        user_id = app.appbuilder.sm.find_user(username="vol_longting").id
    assert _get(app, resp.get_json()["id"]).created_by_fk == user_id
    assert "令牌用户的求助" in _text(_client(app, "vol_longting").get("/help/mine"))  # 我的求助
    anonymous = client.post("/api/v1/help_request/", json=_form(title="匿名"))
    assert anonymous.status_code == 201 and _get(app, anonymous.get_json()["id"]).created_by_fk is None


def _expired_token(app, username) -> dict:
    from datetime import timedelta

    from flask_jwt_extended import create_access_token

    with app.app_context():
        user = app.appbuilder.sm.find_user(username=username)
        token = create_access_token(identity=str(user.id), expires_delta=timedelta(seconds=-60))
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("headers", [
    {"Authorization": "Bearer not-a-token"},
    {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"},
    {"Authorization": "Bearer"},
    {"Authorization": "Basic dm9sX2xvbmd0aW5nOkRlbW8xMjM0NSE="},
    "expired",
], ids=["garbage", "bad-signature", "empty", "not-bearer", "expired"])
def test_api_submit__an_invalid_or_expired_token_is_401_and_writes_nothing(app, headers):
    if headers == "expired":
        headers = _expired_token(app, "vol_longting")
    before = _count(app)
    resp = _client(app, address="10.3.3.5").post("/api/v1/help_request/", json=_form(), headers=headers)
    assert resp.status_code == 401, resp.data
    assert "follow_token" not in resp.get_data(as_text=True)
    assert _count(app) == before


def test_api_submit__a_deactivated_users_token_is_401(app):
    client = _client(app, address="10.3.3.6")
    headers = _token(client, "vol_shunhe")
    with app.app_context():
        user = app.appbuilder.sm.find_user(username="vol_shunhe")
        user.active = False
        db.session.commit()
    before = _count(app)
    assert client.post("/api/v1/help_request/", json=_form(), headers=headers).status_code == 401
    assert _count(app) == before


def test_api_submit__shares_the_rate_limit_with_the_page(app):
    app.config["HELP_REQUESTS_PER_ADDRESS_PER_HOUR"] = 2
    client = _client(app, address="10.4.4.4")
    assert client.post("/help/new", data=_form()).status_code == 200
    assert client.post("/api/v1/help_request/", json=_form()).status_code == 201
    before = _count(app)
    assert client.post("/api/v1/help_request/", json=_form()).status_code == 429
    assert _count(app) == before


def test_api_scoped__officers_read_their_region_group_admins_their_claims(app):
    claimed = _claimed(app)
    shunhe = _published(app, region_code=SHUNHE_COMMUNITY, title="顺河")
    client = app.test_client()

    def ids(username):
        resp = client.get("/api/v1/help_request/?q=(page_size:100)", headers=_token(client, username))
        assert resp.status_code == 200, resp.data
        return {r["id"] for r in resp.get_json()["result"]}, resp.get_json()["result"]

    longting, rows = ids("longting_officer")
    assert claimed in longting and shunhe not in longting
    row = next(r for r in rows if r["id"] == claimed)
    assert row["contact_name"] == CONTACT and row["contact_phone_masked"] == "139****5678"
    assert row["claimed_by_group"]["id"] == _group_id(app, BOOKSTORE_TEAM)
    assert claimed in ids("longting_team_admin")[0] and shunhe not in ids("longting_team_admin")[0]
    assert not ({claimed, shunhe} & ids("culture_team_admin")[0])
    assert shunhe in ids("shunhe_officer")[0] and claimed not in ids("shunhe_officer")[0]
    headers = _token(client, "shunhe_officer")
    assert client.get(f"/api/v1/help_request/{claimed}", headers=headers).status_code == 404
    assert client.get("/api/v1/help_request/").status_code == 401  # anonymous: the public endpoints only


@pytest.mark.parametrize("username,present,absent", [
    (None, ["/help/"], ["/help-moderation/", "/group-admin/help-requests/", "/complaints/"]),
    ("vol_longting", ["/help/"], ["/help-moderation/", "/group-admin/help-requests/", "/complaints/"]),
    ("longting_team_admin", ["/help/", "/group-admin/help-requests/"], ["/help-moderation/", "/complaints/"]),
    ("longting_officer", ["/help/", "/help-moderation/", "/complaints/"], ["/group-admin/help-requests/"]),
])
def test_menus__each_role_sees_its_entries_in_the_glossary_words(app, username, present, absent):
    words = {"/help/": "求助信息", "/help-moderation/": "求助审核", "/group-admin/help-requests/": "求助认领",
             "/complaints/": "举报处理"}
    html = _text(_client(app, username).get("/help/"))
    assert "发布求助" in html
    for href in present:
        assert re.search(rf'href="{href}"[^>]*>[^<]*(<i[^>]*></i>)?[^<]*{words[href]}\s*<', html), href
    for href in absent:
        assert f'href="{href}"' not in html and words[href] not in html, href


def test_claim_service__a_group_the_request_lies_outside_is_refused(app):
    """The service re-checks the POSTed group's region, whatever page led there."""
    from app.services import help_requests
    from app.services.errors import ScopeViolation
    from tests.integration._hours_helpers import acting

    pk = _published(app, region_code="410202")
    with acting(app, "longting_team_admin"):
        item = db.session.get(HelpRequest, pk)
        with pytest.raises(ScopeViolation):
            help_requests.claim(item, db.session.get(VolunteerGroup, _group_id(app, BOOKSTORE_TEAM)))
        with pytest.raises(ScopeViolation):  # a group the user does not administer
            help_requests.claim(item, db.session.get(VolunteerGroup, _group_id(app, CULTURE_TEAM)))
        db.session.rollback()
    assert _get(app, pk).status == "published"


def test_convert_service__only_the_claiming_groups_admin(app):
    from app.services import help_requests
    from app.services.errors import ScopeViolation
    from tests.integration._hours_helpers import acting

    pk = _claimed(app)
    with acting(app, "culture_team_admin"):
        team = db.session.get(VolunteerGroup, _group_id(app, BOOKSTORE_TEAM))
        with pytest.raises(ScopeViolation):
            help_requests.convertible(pk, team)
    with acting(app, "longting_team_admin"):
        assert help_requests.convertible(pk, db.session.get(VolunteerGroup, _group_id(app, BOOKSTORE_TEAM))).id == pk


def _statements(app, client, url) -> int:
    seen = statements_of(app, client, url)
    assert not any("count(" in s.lower() for s in seen), seen
    return len(seen)


def test_lists__query_count_does_not_grow_with_the_rows_and_no_count(app):
    """The public list, 求助审核 and 求助认领 run the same statements for 1 row as for 6:
    regions and claiming groups load in one query each, and no COUNT is run."""
    app.config["HELP_REQUESTS_PER_ADDRESS_PER_HOUR"] = 50
    first = _claimed(app)
    client, officer, admin = _client(app), _client(app, "longting_officer"), _client(app, "longting_team_admin")
    pages = [(client, "/help/"), (officer, "/help-moderation/?status=all"),
             (admin, "/group-admin/help-requests/?tab=claimed"), (client, "/api/v1/help_request/public/")]
    before = [_statements(app, c, url) for c, url in pages]
    for n in range(5):
        pk = _published(app, title=f"求助{n}", region_code=COMMUNITY if n % 2 else "410202001002")
        admin.post(f"/group-admin/help-requests/{pk}/claim", data={"group": _group_id(app, BOOKSTORE_TEAM)})
    assert _get(app, first).status == "claimed"
    after = [_statements(app, c, url) for c, url in pages]
    assert after == before
    assert len(re.findall(r'id="help-\d+"', _text(admin.get("/group-admin/help-requests/?tab=claimed")))) == 6


def test_openapi__documents_the_help_request_endpoints(app):
    client = app.test_client()
    spec = client.get("/api/v1/_openapi", headers=_token(client, "admin"))
    assert spec.status_code == 200
    paths = spec.get_json()["paths"]
    assert "post" in paths["/api/v1/help_request/"] and "get" in paths["/api/v1/help_request/"]
    assert "get" in paths["/api/v1/help_request/public/"] and "get" in paths["/api/v1/help_request/public/{pk}"]
    listed = spec.get_json()["components"]["schemas"]["HelpRequestApi.get_list"]["properties"]
    assert {"claimed_by_group", "contact_phone_masked", "region_code"} <= set(listed)
