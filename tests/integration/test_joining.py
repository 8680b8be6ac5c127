"""Joining groups (用户中心 → 我的团体 → 参加更多团体 → 搜索 → 加入), 退出, 团体名片 and the
QR join page, over HTTP as the demo accounts. Each join policy decides:
允许任何人加入 → member, 验证信息后加入 → request, 拒绝任何人加入 → refused with the
phone, 免审密码 → member with the right password (wrong ones rate-limited)."""
from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from app.demo import BEISHUDIAN_TEAM, CULTURE_CENTRE_TEAM, QINGPING_TEAM, SCHOOL_TEAM, TEAM_PASSWORD, TIETA_TEAM
from app.extensions import db
from app.models import AuditEvent, Membership, User, Volunteer, VolunteerGroup
from app.security import pii
from tests.conftest import login


def _group_id(app, name: str) -> int:
    with app.app_context():
        return db.session.scalar(select(VolunteerGroup.id).where(VolunteerGroup.name == name))


def _volunteer_id(app, username: str) -> int:
    with app.app_context():
        return db.session.scalar(select(Volunteer.id).join(User, User.id == Volunteer.user_id)
                                 .where(User.username == username))


def _rows(app, group_id: int, volunteer_id: int) -> list[tuple[int, str, str]]:
    """(id, status, origin) of every membership row of the pair."""
    with app.app_context():
        return [tuple(r) for r in db.session.execute(
            select(Membership.id, Membership.status, Membership.origin).where(
                Membership.group_id == group_id, Membership.volunteer_id == volunteer_id))]


def _membership_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Membership))


def _set(app, model, pk, **values):
    with app.app_context():
        row = db.session.get(model, pk)
        for key, value in values.items():
            setattr(row, key, value)
        db.session.commit()


def _join(client, group_id, password=None, follow=True):
    data = {"password": password} if password is not None else {}
    return client.post(f"/my/groups/{group_id}/join", data=data, follow_redirects=follow)


# --- 我的团体 and the search ---


def test_my_groups__volunteer_sees_groups_with_status_and_join_more_button(app, client, login_as):
    login_as("vol_longting")
    html = client.get("/my/groups/").get_data(as_text=True)
    assert BEISHUDIAN_TEAM in html and CULTURE_CENTRE_TEAM in html
    assert "已加入" in html and "参加更多团体" in html and "团体名片" in html and "退出" in html
    assert 'href="/my/groups/search"' in html


def test_menu__user_center_has_my_groups(client, login_as):
    login_as("vol_shunhe")
    html = client.get("/my/profile").get_data(as_text=True)
    assert "我的团体" in html and 'href="/my/groups/"' in html


def test_my_groups__account_without_volunteer_sees_not_a_volunteer_page(client, login_as):
    login_as("longting_team_admin")
    resp = client.get("/my/groups/")
    assert resp.status_code == 200 and "没有关联志愿者" in resp.get_data(as_text=True)


def test_my_groups__anonymous_sent_to_login(client):
    resp = client.get("/my/groups/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


@pytest.mark.parametrize("keyword", ["北书店", "bsd", "BSD"])
def test_search__by_chinese_keyword_or_pinyin_initials_finds_group(app, client, login_as, keyword):
    login_as("vol_shunhe")
    resp = client.get("/my/groups/search", query_string={"q": keyword})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert BEISHUDIAN_TEAM in html
    assert "允许任何人加入" in html and "加入" in html
    assert f'action="/my/groups/{_group_id(app, BEISHUDIAN_TEAM)}/join"' in html


def test_search__page_has_box_placeholder_and_search_button(client, login_as):
    login_as("vol_shunhe")
    html = client.get("/my/groups/search").get_data(as_text=True)
    assert "团体名称或关键字（支持拼音首字母）" in html and "搜索" in html


def test_search__policies_show_glossary_words_and_password_input(app, client, login_as):
    login_as("vol_longting")
    html = client.get("/my/groups/search", query_string={"q": "志愿服务队"}).get_data(as_text=True)
    for word in ("验证信息后加入", "拒绝任何人加入", "免审密码"):
        assert word in html
    qingping = _group_id(app, QINGPING_TEAM)
    row = re.search(rf'<tr id="group-{qingping}".*?</tr>', html, re.S).group(0)
    assert 'type="password"' in row


def test_search__groups_i_belong_to_show_joined_instead_of_button(app, client, login_as):
    login_as("vol_longting")
    html = client.get("/my/groups/search", query_string={"q": "北书店"}).get_data(as_text=True)
    beishudian = _group_id(app, BEISHUDIAN_TEAM)
    row = re.search(rf'<tr id="group-{beishudian}".*?</tr>', html, re.S).group(0)
    assert "已加入" in row and "/join" not in row


def test_search__pages_of_twenty_with_next_link(app, client, login_as):
    login_as("vol_shunhe")
    with app.app_context():
        approved = db.session.scalar(select(func.count()).select_from(VolunteerGroup).where(
            VolunteerGroup.status == "approved", VolunteerGroup.name.like("%志愿服务%")))
    html = client.get("/my/groups/search", query_string={"q": "志愿服务"}).get_data(as_text=True)
    shown = len(re.findall(r'<tr id="group-\d+"', html))
    assert shown == min(approved, 20)
    assert ('id="search-next"' in html) == (approved > 20)


def test_search__pending_group_is_not_offered_and_cannot_be_joined(app, client, login_as):
    tieta = _group_id(app, TIETA_TEAM)
    _set(app, VolunteerGroup, tieta, status="pending")
    login_as("vol_shunhe")
    html = client.get("/my/groups/search", query_string={"q": "铁塔"}).get_data(as_text=True)
    assert TIETA_TEAM not in html
    before = _membership_count(app)
    assert _join(client, tieta, follow=False).status_code == 404
    assert _membership_count(app) == before


# --- The four policies ---


def test_join_open__volunteer_is_member_at_once(app, client, login_as):
    group, vol = _group_id(app, BEISHUDIAN_TEAM), _volunteer_id(app, "vol_shunhe")
    login_as("vol_shunhe")
    resp = _join(client, group)
    assert "已加入" in resp.get_data(as_text=True)
    assert [(s, o) for _, s, o in _rows(app, group, vol)] == [("active", "self_join")]
    html = client.get("/my/groups/").get_data(as_text=True)
    row = re.search(rf'<tr id="my-group-{group}".*?</tr>', html, re.S).group(0)
    assert BEISHUDIAN_TEAM in row and "已加入" in row


def test_join_verify__request_pending_then_group_admin_approves_and_volunteer_is_member(app, client, login_as):
    group, vol = _group_id(app, CULTURE_CENTRE_TEAM), _volunteer_id(app, "vol_shunhe")
    login_as("vol_shunhe")
    resp = _join(client, group)
    assert "申请已提交，等待团体审核" in resp.get_data(as_text=True)
    [(mid, status, origin)] = _rows(app, group, vol)
    assert (status, origin) == ("pending", "request")
    row = re.search(rf'<tr id="my-group-{group}".*?</tr>', client.get("/my/groups/").get_data(as_text=True), re.S)
    assert "待审核" in row.group(0)

    admin = app.test_client()
    login(admin, "culture_team_admin")
    html = admin.get("/group-admin/join-requests/").get_data(as_text=True)
    assert f'id="join-request-{mid}"' in html and "王秀英" in html
    resp = admin.post("/group-admin/join-requests/decide", data={"rowid": [str(mid)], "decision": "approve"})
    assert resp.status_code == 302
    assert _rows(app, group, vol) == [(mid, "active", "request")]
    row = re.search(rf'<tr id="my-group-{group}".*?</tr>', client.get("/my/groups/").get_data(as_text=True), re.S)
    assert "已加入" in row.group(0)


def test_join_closed__refused_with_contact_phone_and_nothing_written(app, client, login_as):
    group = _group_id(app, SCHOOL_TEAM)
    with app.app_context():
        g = db.session.get(VolunteerGroup, group)
        phone, contact = pii.decrypt(g.contact_phone_enc), g.contact_name
    before = _membership_count(app)
    login_as("vol_longting")
    html = _join(client, group).get_data(as_text=True)
    assert phone in html and contact in html and "拒绝任何人自行加入" in html
    assert _membership_count(app) == before


def test_join_password__right_password_joins_wrong_one_refused(app, client, login_as):
    group, vol = _group_id(app, QINGPING_TEAM), _volunteer_id(app, "vol_longting")
    login_as("vol_longting")
    assert "免审密码错误" in _join(client, group, "654321").get_data(as_text=True)
    assert "请输入免审密码" in _join(client, group, "").get_data(as_text=True)
    assert _rows(app, group, vol) == []
    assert "已加入" in _join(client, group, TEAM_PASSWORD).get_data(as_text=True)
    assert [(s, o) for _, s, o in _rows(app, group, vol)] == [("active", "password")]


def test_join_password__sixth_attempt_refused_even_with_right_password_until_window_passes(
        app, client, login_as, monkeypatch):
    """Five wrong passwords in the window (default 15 minutes): the sixth attempt is
    refused unchecked, right password or not, until the window has passed (the
    clock of the limiter's storage is moved on, no sleeping)."""
    group, vol = _group_id(app, QINGPING_TEAM), _volunteer_id(app, "vol_longting")
    login_as("vol_longting")
    for _ in range(5):
        assert "免审密码错误" in _join(client, group, "000000").get_data(as_text=True)
    html = _join(client, group, TEAM_PASSWORD).get_data(as_text=True)
    assert "错误次数过多" in html and "分钟后再试" in html
    assert _rows(app, group, vol) == []
    # Another volunteer is not held up by these failures.
    other = app.test_client()
    login(other, "vol_minor")
    assert "已加入" in _join(other, group, TEAM_PASSWORD).get_data(as_text=True)
    # 14 minutes later: still refused.
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 14 * 60)
    assert "错误次数过多" in _join(client, group, TEAM_PASSWORD).get_data(as_text=True)
    monkeypatch.setattr(time, "time", lambda: real_time() + 15 * 60 + 5)
    assert "已加入" in _join(client, group, TEAM_PASSWORD).get_data(as_text=True)
    assert [s for _, s, _ in _rows(app, group, vol)] == ["active"]


def test_join_password__limit_defaults_to_five_in_fifteen_minutes(app, client, login_as):
    group = _group_id(app, QINGPING_TEAM)
    login_as("vol_longting")
    for _ in range(5):
        _join(client, group, "000000")
    html = _join(client, group, TEAM_PASSWORD).get_data(as_text=True)
    assert "请 15 分钟后再试" in html


# --- Rules ---


@pytest.mark.parametrize("name, message", [(BEISHUDIAN_TEAM, "已经是"), (CULTURE_CENTRE_TEAM, "正在等待审核")])
def test_join_again__no_duplicate_row(app, client, login_as, name, message):
    group, vol = _group_id(app, name), _volunteer_id(app, "vol_shunhe")
    login_as("vol_shunhe")
    _join(client, group)
    before = _membership_count(app)
    assert message in _join(client, group).get_data(as_text=True)
    assert _membership_count(app) == before and len(_rows(app, group, vol)) == 1


def test_leave_then_rejoin__same_row_revived(app, client, login_as):
    group, vol = _group_id(app, BEISHUDIAN_TEAM), _volunteer_id(app, "vol_longting")
    [(mid, _, _)] = _rows(app, group, vol)
    login_as("vol_longting")
    resp = client.post(f"/my/groups/{group}/leave", follow_redirects=True)
    assert "已退出" in resp.get_data(as_text=True)
    assert _rows(app, group, vol) == [(mid, "left", "self_join")]
    assert f'id="my-group-{group}"' not in client.get("/my/groups/").get_data(as_text=True)
    _join(client, group)
    assert _rows(app, group, vol) == [(mid, "active", "self_join")]


def test_leave_pending__withdraws_the_request(app, client, login_as):
    group, vol = _group_id(app, CULTURE_CENTRE_TEAM), _volunteer_id(app, "vol_shunhe")
    login_as("vol_shunhe")
    _join(client, group)
    html = client.post(f"/my/groups/{group}/leave", follow_redirects=True).get_data(as_text=True)
    assert "已撤回" in html
    assert [s for _, s, _ in _rows(app, group, vol)] == ["left"]


def test_leave__not_a_member_refused(app, client, login_as):
    login_as("vol_shunhe")
    html = client.post(f"/my/groups/{_group_id(app, BEISHUDIAN_TEAM)}/leave",
                       follow_redirects=True).get_data(as_text=True)
    assert "您不是该团体的成员" in html


def test_leave__get_is_not_allowed(app, client, login_as):
    login_as("vol_longting")
    assert client.get(f"/my/groups/{_group_id(app, BEISHUDIAN_TEAM)}/leave").status_code == 405


@pytest.mark.parametrize("name, password", [(BEISHUDIAN_TEAM, None), (QINGPING_TEAM, None)])
def test_join__removed_member_gets_a_pending_request_whatever_the_policy(app, client, login_as, name, password):
    vol_name = "vol_longting" if name == BEISHUDIAN_TEAM else "vol_shunhe"
    group, vol = _group_id(app, name), _volunteer_id(app, vol_name)
    [(mid, _, _)] = _rows(app, group, vol)
    _set(app, Membership, mid, status="removed")
    login_as(vol_name)
    assert "申请已提交，等待团体审核" in _join(client, group, password).get_data(as_text=True)
    assert _rows(app, group, vol) == [(mid, "pending", "request")]


def test_join__rejected_request_asked_again_is_the_same_row_pending(app, client, login_as):
    group, vol = _group_id(app, CULTURE_CENTRE_TEAM), _volunteer_id(app, "vol_shunhe")
    login_as("vol_shunhe")
    _join(client, group)
    [(mid, _, _)] = _rows(app, group, vol)
    _set(app, Membership, mid, status="rejected", reason="请先参加培训")
    _join(client, group)
    assert _rows(app, group, vol) == [(mid, "pending", "request")]


def test_join__pending_volunteer_registration_cannot_join(app, client, login_as):
    vol = _volunteer_id(app, "vol_shunhe")
    _set(app, Volunteer, vol, status="pending")
    login_as("vol_shunhe")
    before = _membership_count(app)
    assert "只有审核通过的志愿者" in _join(client, _group_id(app, BEISHUDIAN_TEAM)).get_data(as_text=True)
    assert _membership_count(app) == before


def test_join__several_groups_at_once(app, client, login_as):
    vol = _volunteer_id(app, "vol_shunhe")
    login_as("vol_shunhe")
    for name in (BEISHUDIAN_TEAM, TIETA_TEAM):
        _join(client, _group_id(app, name))
    html = client.get("/my/groups/").get_data(as_text=True)
    for name in (BEISHUDIAN_TEAM, TIETA_TEAM, QINGPING_TEAM):
        assert name in html
        assert [s for _, s, _ in _rows(app, _group_id(app, name), vol)] == ["active"]


def test_join__unknown_group_is_404(client, login_as):
    login_as("vol_shunhe")
    assert _join(client, 999999, follow=False).status_code == 404


def test_join__officer_without_join_permission_is_refused(app, client, login_as):
    login_as("longting_officer")
    before = _membership_count(app)
    assert _join(client, _group_id(app, BEISHUDIAN_TEAM), follow=False).status_code in (302, 403)
    assert _membership_count(app) == before


def test_join__audited(app, client, login_as):
    group, vol = _group_id(app, BEISHUDIAN_TEAM), _volunteer_id(app, "vol_shunhe")
    login_as("vol_shunhe")
    _join(client, group)
    [(mid, _, _)] = _rows(app, group, vol)
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(
            AuditEvent.object_type == "membership", AuditEvent.object_id == mid)).all()
        assert [e.action for e in events] == ["create"]
        assert events[0].actor_name == "vol_shunhe"


# --- 团体名片 ---


def test_card__member_sees_card_with_qr_and_join_link(app, client, login_as):
    group = _group_id(app, BEISHUDIAN_TEAM)
    with app.app_context():
        token = db.session.get(VolunteerGroup, group).join_token
    login_as("vol_longting")
    resp = client.get(f"/my/groups/{group}/card")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and BEISHUDIAN_TEAM in html
    assert re.search(r'id="group-card-qr"[^>]*>\s*<svg', html)
    link = re.search(r'id="group-card-join-link"[^>]*>([^<]+)<', html).group(1)
    assert link == f"http://localhost/groups/join/{token}"
    with app.app_context():
        phone = pii.decrypt(db.session.get(VolunteerGroup, group).contact_phone_enc)
    assert phone not in html  # the card shows the masked phone


@pytest.mark.parametrize("username, status", [
    ("longting_team_admin", 200),  # the group's own admin
    ("vol_shunhe", 404),  # a volunteer who is not a member
    ("shunhe_team_admin", 404),  # the admin of another group
])
def test_card__visible_to_members_and_own_admins_only(app, client, login_as, username, status):
    login_as(username)
    assert client.get(f"/my/groups/{_group_id(app, BEISHUDIAN_TEAM)}/card").status_code == status


def test_card__pending_request_does_not_show_the_card(app, client, login_as):
    group = _group_id(app, CULTURE_CENTRE_TEAM)
    login_as("vol_shunhe")
    _join(client, group)
    assert client.get(f"/my/groups/{group}/card").status_code == 404


# --- The QR join page ---


def _token(app, name):
    with app.app_context():
        return db.session.scalar(select(VolunteerGroup.join_token).where(VolunteerGroup.name == name))


def test_qr_join__anonymous_logs_in_comes_back_and_joins(app, client):
    group, vol = _group_id(app, BEISHUDIAN_TEAM), _volunteer_id(app, "vol_shunhe")
    url = f"/groups/join/{_token(app, BEISHUDIAN_TEAM)}"
    resp = client.get(url)
    assert resp.status_code == 302
    login_url = resp.headers["Location"]
    assert urlsplit(login_url).path == "/login/"
    login_page = client.get(login_url).get_data(as_text=True)
    assert "请先登录" in login_page and "无权访问" not in login_page
    # The login form posts back to its own URL, ?next=… included.
    resp = client.post(login_url, data={"username": "vol_shunhe", "password": "Demo12345!"})
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == url
    html = client.get(url).get_data(as_text=True)
    assert BEISHUDIAN_TEAM in html and 'id="qr-join"' in html
    assert _rows(app, group, vol) == []  # GET does not join
    resp = client.post(url, follow_redirects=True)
    assert "已加入" in resp.get_data(as_text=True)
    assert [(s, o) for _, s, o in _rows(app, group, vol)] == [("active", "qr")]


def test_qr_join__verify_group_makes_a_request(app, client, login_as):
    group, vol = _group_id(app, CULTURE_CENTRE_TEAM), _volunteer_id(app, "vol_shunhe")
    login_as("vol_shunhe")
    resp = client.post(f"/groups/join/{_token(app, CULTURE_CENTRE_TEAM)}", follow_redirects=True)
    assert "申请已提交，等待团体审核" in resp.get_data(as_text=True)
    assert [s for _, s, _ in _rows(app, group, vol)] == ["pending"]


def test_qr_join__password_group_asks_for_the_password(app, client, login_as):
    group, vol = _group_id(app, QINGPING_TEAM), _volunteer_id(app, "vol_longting")
    url = f"/groups/join/{_token(app, QINGPING_TEAM)}"
    login_as("vol_longting")
    assert 'name="password"' in client.get(url).get_data(as_text=True)
    assert "免审密码错误" in client.post(url, data={"password": "x"}, follow_redirects=True).get_data(as_text=True)
    client.post(url, data={"password": TEAM_PASSWORD})
    assert [(s, o) for _, s, o in _rows(app, group, vol)] == [("active", "qr")]


def test_qr_join__closed_group_refuses_with_phone(app, client, login_as):
    login_as("vol_longting")
    with app.app_context():
        phone = pii.decrypt(db.session.scalar(select(VolunteerGroup.contact_phone_enc).where(
            VolunteerGroup.name == SCHOOL_TEAM)))
    resp = client.post(f"/groups/join/{_token(app, SCHOOL_TEAM)}", follow_redirects=True)
    assert phone in resp.get_data(as_text=True)


def test_qr_join__changed_token_makes_the_old_url_404(app, client, login_as):
    group = _group_id(app, BEISHUDIAN_TEAM)
    old = _token(app, BEISHUDIAN_TEAM)
    _set(app, VolunteerGroup, group, join_token="a-brand-new-token-0123456789")
    login_as("vol_shunhe")
    resp = client.get(f"/groups/join/{old}")
    assert resp.status_code == 404 and "无效或已过期" in resp.get_data(as_text=True)
    assert client.post(f"/groups/join/{old}").status_code == 404
    assert client.get("/groups/join/a-brand-new-token-0123456789").status_code == 200


def test_qr_join__pending_group_token_is_404(app, client, login_as):
    group = _group_id(app, TIETA_TEAM)
    _set(app, VolunteerGroup, group, status="pending")
    login_as("vol_shunhe")
    assert client.get(f"/groups/join/{_token(app, TIETA_TEAM)}").status_code == 404
