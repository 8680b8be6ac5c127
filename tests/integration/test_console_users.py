"""运营控制台 → 用户 over HTTP: the account list (search, role and active filters, no
password hashes), the details page with the user's bindings, 停用账户 / 启用账户 (a disabled
user cannot log in by form or API, nor keep using a session or a token; nobody disables
themselves; every change audited), and adding and removing region and group-admin
bindings with the service's rules."""
from __future__ import annotations

import re

import pytest
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEvent, GroupAdmin, Region, RegionBinding, Volunteer, VolunteerGroup
from tests.conftest import login

PASSWORD = "Demo12345!"
URLS = ["/console/user/", "/console/region-binding/", "/console/group-admin/",
        "/console/region-binding/new/", "/console/group-admin/new/"]


def _admin(app):
    return login(app.test_client(), "admin")


def _user_id(app, username) -> int:
    with app.app_context():
        return db.session.scalar(select(User.id).where(User.username == username))


def _active(app, username) -> bool:
    with app.app_context():
        return db.session.scalar(select(User.active).where(User.username == username))


def _events(app, object_type, object_id, action=None) -> list[AuditEvent]:
    with app.app_context():
        query = select(AuditEvent).where(AuditEvent.object_type == object_type,
                                         AuditEvent.object_id == int(object_id))
        if action is not None:
            query = query.where(AuditEvent.action == action)
        rows = list(db.session.scalars(query.order_by(AuditEvent.id)))
        db.session.expunge_all()
        return rows


def _act(client, action, *ids, follow=True):
    return client.post("/console/user/action/", data={"action": action, "rowid": [str(i) for i in ids],
                                                      "url": "/console/user/"},
                       follow_redirects=follow)


def _form_login(client, username):
    return client.post("/login/", data={"username": username, "password": PASSWORD})


def _api_token(client, username):
    return client.post("/api/v1/security/login",
                       json={"username": username, "password": PASSWORD, "provider": "db"})


# --- Who may enter ---


@pytest.mark.parametrize("username", ["kaifeng_officer", "kfvf_admin", "vol_longting", "kaifeng_honors"])
def test_user_pages__other_roles_get_403(app, username):
    client = login(app.test_client(), username)
    for url in URLS:
        assert client.get(url).status_code == 403, url
    uid = _user_id(app, "vol_longting")
    assert _act(client, "disable", uid, follow=False).status_code == 403
    assert _active(app, "vol_longting") is True


def test_user_pages__anonymous_sent_to_login(app):
    for url in URLS:
        resp = app.test_client().get(url)
        assert resp.status_code == 302 and resp.headers["Location"].startswith("/login/")


# --- List, search, filters, details ---


def test_user_list__shows_users_roles_and_no_password_hash(app):
    client = _admin(app)
    html = client.get("/console/user/").get_data(as_text=True)
    assert "kaifeng_officer" in html and "Officer" in html
    for word in ("用户名", "角色", "最近登录"):
        assert word in html, word
    with app.app_context():
        hashes = list(db.session.scalars(select(User.password)))
    uid = _user_id(app, "kaifeng_officer")
    details = client.get(f"/console/user/details/?id={uid}").get_data(as_text=True)
    for page in (html, details):
        assert "pbkdf2" not in page and "scrypt" not in page
        assert not any(h and h in page for h in hashes)


def test_user_list__search_by_username_and_name(app):
    client = _admin(app)
    html = client.get("/console/user/?search=kaifeng_off").get_data(as_text=True)
    assert "kaifeng_officer" in html and "vol_longting" not in html
    with app.app_context():
        first_name = db.session.scalar(select(User.first_name).where(User.username == "vol_longting"))
    html = client.get(f"/console/user/?search={first_name}").get_data(as_text=True)
    assert "vol_longting" in html and "kaifeng_officer" not in html


def _filter_index(html, label, operation=None):
    import html as html_lib
    import json

    match = re.search(r'<div id="filter-groups-data"[^>]*>(.*?)</div>', html, re.S)
    groups = json.loads(html_lib.unescape(match.group(1)))
    items = groups[label]
    if operation:
        items = [i for i in items if i["operation"] in operation]
    return items[0]["index"]


def _usernames(html):
    return set(re.findall(r"<td class=\"col-username\">\s*([^<\s]+)", html))


def test_user_list__filters_by_role_and_active(app):
    client = _admin(app)
    html = client.get("/console/user/").get_data(as_text=True)
    role_index = _filter_index(html, "角色")
    listed = _usernames(client.get(f"/console/user/?flt0_{role_index}=Officer").get_data(as_text=True))
    with app.app_context():
        officers = set(db.session.scalars(select(User.username).where(User.roles.any(name="Officer"))))
    assert listed == officers and "kaifeng_officer" in listed and "vol_longting" not in listed

    with app.app_context():
        db.session.get(User, _user_id(app, "vol_shunhe")).active = False
        db.session.commit()
    active_index = _filter_index(html, "启用", ("等于", "equals"))
    inactive = _usernames(client.get(f"/console/user/?flt0_{active_index}=0").get_data(as_text=True))
    assert inactive == {"vol_shunhe"}


def test_user_details__show_region_bindings_groups_and_volunteer(app):
    client = _admin(app)
    with app.app_context():
        officer = db.session.scalar(select(User).where(User.username == "kaifeng_officer"))
        region = db.session.scalar(select(Region.name).join(RegionBinding, RegionBinding.region_id == Region.id)
                                   .where(RegionBinding.user_id == officer.id))
        admin_id = _user_id(app, "kfvf_admin")
        group = db.session.scalar(select(VolunteerGroup.name).join(GroupAdmin, GroupAdmin.group_id == VolunteerGroup.id)
                                  .where(GroupAdmin.user_id == admin_id))
        vol_user = _user_id(app, "vol_longting")
        real_name = db.session.scalar(select(Volunteer.real_name).where(Volunteer.user_id == vol_user))
    html = client.get(f"/console/user/details/?id={officer.id}").get_data(as_text=True)
    assert "区域绑定" in html and "监管人员" in html
    assert region in html
    html = client.get(f"/console/user/details/?id={admin_id}").get_data(as_text=True)
    assert group in html
    html = client.get(f"/console/user/details/?id={vol_user}").get_data(as_text=True)
    assert real_name in html


# --- 停用账户 / 启用账户 ---


def test_disable__login_refused_session_and_token_dropped_and_audited(app):
    uid = _user_id(app, "kaifeng_officer")
    officer = login(app.test_client(), "kaifeng_officer")
    token = _api_token(app.test_client(), "kaifeng_officer").get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert officer.get("/volunteers/list/").status_code == 200
    assert app.test_client().get("/api/v1/volunteer/", headers=headers).status_code == 200

    html = _act(_admin(app), "disable", uid).get_data(as_text=True)
    assert "1 个账户已停用" in html
    assert _active(app, "kaifeng_officer") is False
    events = _events(app, "ab_user", uid, "active:true->false")
    assert len(events) == 1 and events[0].actor_name == "admin"

    resp = _form_login(app.test_client(), "kaifeng_officer")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert _api_token(app.test_client(), "kaifeng_officer").status_code == 401
    assert app.test_client().get("/api/v1/volunteer/", headers=headers).status_code == 401
    resp = officer.get("/volunteers/list/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_enable__the_user_logs_in_again_and_audited(app):
    uid = _user_id(app, "vol_longting")
    admin = _admin(app)
    _act(admin, "disable", uid)
    assert _active(app, "vol_longting") is False
    html = _act(admin, "enable", uid).get_data(as_text=True)
    assert "1 个账户已启用" in html
    assert _active(app, "vol_longting") is True
    assert len(_events(app, "ab_user", uid, "active:false->true")) == 1
    login(app.test_client(), "vol_longting")


def test_row_action__each_row_posts_disable_or_enable_for_itself(app):
    uid = _user_id(app, "vol_shunhe")
    client = _admin(app)
    html = client.get("/console/user/?search=vol_shunhe").get_data(as_text=True)
    form = re.search(r'<form class="icon" method="POST" action="/console/user/action/">(.*?)</form>', html, re.S)
    assert form, "a row action form"
    fields = dict(re.findall(r'name="(rowid|action|url)" value="([^"]*)"', form.group(1)))
    assert fields["rowid"] == str(uid) and fields["action"] == "disable" and 'class="user-disable"' in form.group(1)
    client.post("/console/user/action/", data=fields)
    assert _active(app, "vol_shunhe") is False
    html = client.get("/console/user/?search=vol_shunhe").get_data(as_text=True)
    assert 'name="action" value="enable"' in html and 'class="user-enable"' in html


def test_disable__own_account_refused_with_nothing_changed(app):
    admin_id, other = _user_id(app, "admin"), _user_id(app, "vol_shunhe")
    html = _act(_admin(app), "disable", admin_id, other).get_data(as_text=True)
    assert "不能停用自己的账户" in html
    assert _active(app, "admin") is True and _active(app, "vol_shunhe") is True
    assert _events(app, "ab_user", admin_id, "active:true->false") == []
    login(app.test_client(), "admin")


def test_disable__needs_the_csrf_token_when_csrf_is_on(app):
    app.config["WTF_CSRF_ENABLED"] = True
    uid = _user_id(app, "vol_shunhe")
    client = app.test_client()
    html = client.get("/login/").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)
    client.post("/login/", data={"username": "admin", "password": PASSWORD, "csrf_token": token})
    _act(client, "disable", uid)
    assert _active(app, "vol_shunhe") is True
    page = client.get("/console/user/").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    client.post("/console/user/action/", data={"action": "disable", "rowid": [str(uid)], "csrf_token": token})
    assert _active(app, "vol_shunhe") is False


# --- Bindings ---


def _region(app, code) -> Region:
    with app.app_context():
        region = db.session.scalar(select(Region).where(Region.code == code))
        db.session.expunge(region)
        return region


def _bindings(app, user_id) -> set[tuple[int, str]]:
    with app.app_context():
        return set(db.session.execute(select(RegionBinding.region_id, RegionBinding.kind)
                                      .where(RegionBinding.user_id == user_id)).tuples())


def _roles_of(app, username) -> set[str]:
    with app.app_context():
        return {r.name for r in db.session.scalar(select(User).where(User.username == username)).roles}


def _add_binding(client, user_id, region_id, kind):
    return client.post("/console/region-binding/new/",
                       data={"user": str(user_id), "region": str(region_id), "kind": kind},
                       follow_redirects=True)


def test_region_binding__honors_editor_at_prefecture_added_with_role_and_audit(app):
    uid = _user_id(app, "vol_shunhe")
    kaifeng = _region(app, "410200")
    assert "HonorsEditor" not in _roles_of(app, "vol_shunhe")
    resp = _add_binding(_admin(app), uid, kaifeng.id, "honors_editor")
    assert resp.status_code == 200
    assert (kaifeng.id, "honors_editor") in _bindings(app, uid)
    assert "HonorsEditor" in _roles_of(app, "vol_shunhe")
    with app.app_context():
        bid = db.session.scalar(select(RegionBinding.id).where(RegionBinding.user_id == uid))
    assert len(_events(app, "region_binding", bid, "create")) == 1


def test_region_binding__honors_editor_below_prefecture_refused(app):
    uid = _user_id(app, "vol_shunhe")
    county = _region(app, "410202")
    html = _add_binding(_admin(app), uid, county.id, "honors_editor").get_data(as_text=True)
    assert "地级市以上" in html, html[-3000:]
    assert _bindings(app, uid) == set()
    assert "HonorsEditor" not in _roles_of(app, "vol_shunhe")


def test_region_binding__duplicate_and_unknown_kind_refused(app):
    uid = _user_id(app, "kaifeng_officer")
    before = _bindings(app, uid)
    region_id = next(iter(before))[0]
    client = _admin(app)
    html = _add_binding(client, uid, region_id, "officer").get_data(as_text=True)
    assert "已绑定" in html
    html = _add_binding(client, uid, _region(app, "410202").id, "superuser").get_data(as_text=True)
    assert resp_ok(html)
    assert _bindings(app, uid) == before


def resp_ok(html: str) -> bool:
    """The page rendered (no 500) and shows the form again."""
    return "Internal Server Error" not in html and 'name="kind"' in html


def test_region_binding__delete_drops_the_role_with_the_last_binding(app):
    uid = _user_id(app, "kaifeng_officer")
    with app.app_context():
        ids = list(db.session.scalars(select(RegionBinding.id).where(RegionBinding.user_id == uid)))
    assert len(ids) == 1
    client = _admin(app)
    client.post("/console/region-binding/delete/", data={"id": str(ids[0]), "url": "/console/region-binding/"})
    assert _bindings(app, uid) == set()
    assert "Officer" not in _roles_of(app, "kaifeng_officer")
    assert len(_events(app, "region_binding", ids[0], "delete")) == 1
    assert any("Officer" in (e.before_json or "") for e in _events(app, "ab_user", uid))


def test_group_admin__add_duplicate_refused_and_delete(app):
    uid = _user_id(app, "vol_shunhe")
    with app.app_context():
        group_id = db.session.scalar(select(VolunteerGroup.id).where(VolunteerGroup.status == "approved")
                                     .order_by(VolunteerGroup.id).limit(1))
    client = _admin(app)
    client.post("/console/group-admin/new/", data={"user": str(uid), "group": str(group_id)})
    with app.app_context():
        bid = db.session.scalar(select(GroupAdmin.id).where(GroupAdmin.user_id == uid))
    assert bid is not None and "GroupAdmin" in _roles_of(app, "vol_shunhe")
    assert len(_events(app, "group_admin", bid, "create")) == 1
    html = client.post("/console/group-admin/new/", data={"user": str(uid), "group": str(group_id)},
                       follow_redirects=True).get_data(as_text=True)
    assert "已是" in html and "的管理员" in html
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(GroupAdmin)
                                 .where(GroupAdmin.user_id == uid)) == 1
    client.post("/console/group-admin/delete/", data={"id": str(bid), "url": "/console/group-admin/"})
    with app.app_context():
        assert db.session.get(GroupAdmin, bid) is None
    assert "GroupAdmin" not in _roles_of(app, "vol_shunhe")
    assert len(_events(app, "group_admin", bid, "delete")) == 1


# --- Malformed action ids ---


@pytest.mark.parametrize("rowid", ["²", "99999999999999999999", "-1", ""])
def test_disable__malformed_id_changes_nothing(app, rowid):
    with app.app_context():
        active = db.session.scalar(select(func.count()).select_from(User).where(User.active.is_(True)))
    resp = _admin(app).post("/console/user/action/", data={"action": "disable", "rowid": [rowid],
                                                           "url": "/console/user/"})
    assert resp.status_code in (200, 302)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User).where(User.active.is_(True))) == active


# --- Partner accounts (API tokens) get no bindings ---


def _partner(app) -> tuple[int, int]:
    """A partner account made by issuing a token: (user id, its partner binding's id)."""
    from app.services import api_tokens

    with app.app_context():
        issued = api_tokens.issue("partner system", "410200")
        db.session.commit()
        uid = issued.api_key.user_id
        bid = db.session.scalar(select(RegionBinding.id).where(RegionBinding.user_id == uid))
    return uid, bid


def test_region_binding__partner_account_refused(app):
    uid, _bid = _partner(app)
    username = db_username(app, uid)
    before, roles = _bindings(app, uid), _roles_of(app, username)
    html = _add_binding(_admin(app), uid, _region(app, "410200").id, "officer").get_data(as_text=True)
    assert "合作方" in html, html[-3000:]
    assert _bindings(app, uid) == before and _roles_of(app, username) == roles == {"Partner"}


def test_group_admin__partner_account_refused(app):
    uid, _bid = _partner(app)
    with app.app_context():
        group_id = db.session.scalar(select(VolunteerGroup.id).where(VolunteerGroup.status == "approved")
                                     .order_by(VolunteerGroup.id).limit(1))
    html = _admin(app).post("/console/group-admin/new/", data={"user": str(uid), "group": str(group_id)},
                            follow_redirects=True).get_data(as_text=True)
    assert "合作方" in html
    with app.app_context():
        assert db.session.scalar(select(GroupAdmin.id).where(GroupAdmin.user_id == uid)) is None
    assert _roles_of(app, db_username(app, uid)) == {"Partner"}


def test_region_binding__partner_binding_hidden_and_not_deletable(app):
    uid, bid = _partner(app)
    client = _admin(app)
    html = client.get("/console/region-binding/?search=410200").get_data(as_text=True)
    assert db_username(app, uid) not in html
    client.post("/console/region-binding/delete/", data={"id": str(bid), "url": "/console/region-binding/"})
    client.post("/console/region-binding/action/", data={"action": "delete", "rowid": [str(bid)]})
    with app.app_context():
        assert db.session.get(RegionBinding, bid) is not None


def test_remove_region_binding__partner_binding_refused_by_the_service(app):
    from app.services import accounts
    from app.services.errors import DomainError

    _uid, bid = _partner(app)
    with app.app_context():
        with pytest.raises(DomainError):
            accounts.remove_region_binding(db.session.get(RegionBinding, bid))


def db_username(app, user_id) -> str:
    with app.app_context():
        return db.session.scalar(select(User.username).where(User.id == user_id))
