"""Journey (city guide §五, in Chinese): 登录 → 用户中心 → 我的团体 → 参加更多团体 → 搜索 → 加入,
for an open group (member at once) and a verify group (待审核); the group's admin
approves the request in 团体管理 → 入团审核; the volunteer is then a member. Then the
团体名片 with its QR code on a phone-width screen."""
from sqlalchemy import select

from app.demo import BEISHUDIAN_TEAM, CULTURE_CENTRE_TEAM
from app.extensions import db
from app.models import Membership, User, Volunteer, VolunteerGroup
from tests.e2e.conftest import browser_login


def _status(app, group_name, username):
    with app.app_context():
        return db.session.scalar(
            select(Membership.status).join(VolunteerGroup, VolunteerGroup.id == Membership.group_id)
            .join(Volunteer, Volunteer.id == Membership.volunteer_id)
            .join(User, User.id == Volunteer.user_id)
            .where(VolunteerGroup.name == group_name, User.username == username))


def _row(page, group_name):
    return page.locator("#my-groups-table tbody tr", has_text=group_name)


def _search_and_join(page, keyword, group_name):
    page.get_by_role("link", name="参加更多团体").click()
    page.wait_for_url("**/my/groups/search**")
    page.get_by_placeholder("团体名称或关键字（支持拼音首字母）").fill(keyword)
    page.get_by_role("button", name="搜索").click()
    page.wait_for_load_state()
    row = page.locator("#group-search-results tbody tr", has_text=group_name)
    row.get_by_role("button", name="加入").click()
    page.wait_for_load_state()


def test_volunteer_joins_open_and_verify_groups_and_admin_approves(page, live_server, app):
    assert _status(app, BEISHUDIAN_TEAM, "vol_shunhe") is None
    assert _status(app, CULTURE_CENTRE_TEAM, "vol_shunhe") is None

    browser_login(page, live_server, "vol_shunhe")
    page.get_by_text("用户中心").first.click()
    page.get_by_role("link", name="我的团体").first.click()
    page.wait_for_url("**/my/groups/")

    # 允许任何人加入: a member at once.
    _search_and_join(page, "北书店", BEISHUDIAN_TEAM)
    assert "已加入" in page.content()
    page.get_by_role("link", name="我的团体").last.click()
    page.wait_for_url("**/my/groups/")
    assert "已加入" in _row(page, BEISHUDIAN_TEAM).inner_text()

    # 验证信息后加入: a request awaiting the group's review.
    _search_and_join(page, "文化馆", CULTURE_CENTRE_TEAM)
    assert "申请已提交，等待团体审核" in page.content()
    page.goto(live_server + "/my/groups/")
    assert "待审核" in _row(page, CULTURE_CENTRE_TEAM).inner_text()
    assert _status(app, CULTURE_CENTRE_TEAM, "vol_shunhe") == "pending"

    # The culture centre team's own admin approves in 团体管理 → 入团审核.
    page.goto(live_server + "/logout/")
    browser_login(page, live_server, "culture_team_admin")
    page.get_by_text("团体管理").first.click()
    page.get_by_role("link", name="入团审核").first.click()
    page.wait_for_url("**/group-admin/join-requests/**")
    request_row = page.locator("#pending-join-requests tbody tr", has_text="王秀英")
    request_row.locator("input.action_check").check()
    page.click("#approve-selected")
    page.wait_for_load_state()
    assert "已通过 1 条入团申请" in page.content()
    assert _status(app, CULTURE_CENTRE_TEAM, "vol_shunhe") == "active"

    # Back as the volunteer: a member of both.
    page.goto(live_server + "/logout/")
    browser_login(page, live_server, "vol_shunhe")
    page.goto(live_server + "/my/groups/")
    assert "已加入" in _row(page, CULTURE_CENTRE_TEAM).inner_text()
    assert "已加入" in _row(page, BEISHUDIAN_TEAM).inner_text()

    # 团体名片 on a phone: the QR code shows, nothing scrolls sideways.
    page.set_viewport_size({"width": 375, "height": 740})
    _row(page, BEISHUDIAN_TEAM).get_by_role("link", name="团体名片").click()
    page.wait_for_url("**/card")
    assert page.locator("#group-card-qr svg").is_visible()
    assert BEISHUDIAN_TEAM in page.content()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375 + 1
    link = page.locator("#group-card-join-link").get_attribute("href")
    assert link.startswith(live_server + "/groups/join/")
