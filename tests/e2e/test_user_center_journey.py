"""Journey: a volunteer opens 用户中心 → 我的资料 (masked, then 显示完整证件号), saves a new
mobile number, opens 志愿者证 on a phone-width screen and checks its QR link anonymously."""
from sqlalchemy import select

from app.extensions import db
from app.models import User, Volunteer
from app.security import pii
from tests.e2e.conftest import browser_login


def _plain_id(app, username):
    with app.app_context():
        v = db.session.scalar(select(Volunteer).join(User, User.id == Volunteer.user_id)
                              .where(User.username == username))
        return v.id_number_masked, pii.decrypt(v.id_number_enc)


def test_volunteer_profile_and_card(page, live_server, app, browser):
    masked, full = _plain_id(app, "vol_longting")
    browser_login(page, live_server, "vol_longting")

    page.get_by_text("用户中心").first.click()
    page.locator("a[href='/my/profile']").first.click()
    page.wait_for_url("**/my/profile")
    assert masked in page.content() and full not in page.content()

    page.get_by_role("button", name="显示完整证件号").click()
    page.wait_for_load_state()
    assert full in page.content()

    page.fill("input[name=phone]", "13912345678")
    page.get_by_role("button", name="保存").click()
    page.wait_for_url("**/my/profile")
    assert "资料已保存" in page.content() and "139****5678" in page.content()

    page.set_viewport_size({"width": 375, "height": 740})
    page.goto(live_server + "/my/card")
    assert page.locator("#card-qr svg").count() == 1
    assert "李明华" in page.content()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375 + 1  # no sideways scrolling
    verify = page.locator("#card-verify-link").get_attribute("href")

    anonymous = browser.new_context(locale="zh-CN")
    other = anonymous.new_page()
    other.goto(verify)
    assert "有效" in other.content() and "李**" in other.content() and "李明华" not in other.content()
    anonymous.close()
