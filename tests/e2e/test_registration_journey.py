"""Journey: from the login page to 注册志愿者, in Chinese; a wrong check digit is refused
next to the ID field, the corrected form is accepted and the login page says it awaits
review; longting_officer approves it in 注册审核; the new volunteer opens 用户中心 → 志愿者证
and sees their national volunteer number and the QR code."""
import re

from sqlalchemy import select

from app.extensions import db
from app.models import Volunteer
from app.services.clock import today
from app.services.idcards import mod11_2
from tests.e2e.conftest import browser_login

BODY = "41020219880512" + "357"
GOOD_ID = BODY + mod11_2(BODY)
BAD_ID = BODY + ("0" if GOOD_ID[-1] != "0" else "1")
HOME = ["河南省", "开封市", "龙亭区", "北书店街道", "书店街社区"]


def _choose_home(page):
    selects = page.locator(".region-selects select")
    for level, name in enumerate(HOME):
        selects.nth(level).select_option(label=name)
        if level + 1 < len(HOME):
            page.wait_for_function(
                "n => document.querySelectorAll('.region-selects select').length > n", arg=level + 1)
    assert page.input_value("#region_code") == "410202001001"


def test_visitor_registers_after_fixing_the_check_digit(page, live_server, app):
    page.goto(live_server + "/login/")
    page.get_by_text("注册志愿者").first.click()
    page.wait_for_url("**/register/")
    assert "用户名一旦申请成功，不可修改" in page.content()
    assert page.is_hidden("#birth_date")  # resident ID: the number gives the birth date

    page.fill("#username", "e2e_newbie")
    page.fill("#password", "Spring2026abc")
    page.fill("#password_confirm", "Spring2026abc")
    page.fill("#real_name", "周新月")
    page.fill("#id_number", BAD_ID)
    page.fill("#email", "e2e_newbie@example.cn")
    page.fill("#mobile", "13912345678")
    _choose_home(page)
    page.click("#register-submit")
    page.wait_for_load_state()

    error = page.locator(".field-error[data-field=id_number]")
    assert "校验码错误" in error.inner_text()
    assert page.input_value("#password") == ""  # never echoed back
    assert page.input_value("#region_code") == "410202001001"  # the home region is kept

    page.fill("#id_number", GOOD_ID)
    page.fill("#password", "Spring2026abc")
    page.fill("#password_confirm", "Spring2026abc")
    page.click("#register-submit")
    page.wait_for_url("**/login/")
    assert "3至5个工作日" in page.content()

    # The county officer approves the registration in 注册审核.
    with app.app_context():
        new_id = db.session.scalar(select(Volunteer.id).where(Volunteer.real_name == "周新月"))
    browser_login(page, live_server, "longting_officer")
    page.get_by_text("区域监管").first.click()
    page.get_by_role("link", name="注册审核").first.click()
    page.wait_for_url("**/registration-review/**")
    page.locator(f"#registration-{new_id} input.action_check").check()
    page.click("#approve-selected")
    page.wait_for_load_state()
    assert page.locator(f"#registration-{new_id}").count() == 0
    page.goto(live_server + "/logout/")

    # The volunteer shows their card: number and QR.
    browser_login(page, live_server, "e2e_newbie", "Spring2026abc")
    page.get_by_text("用户中心").first.click()
    page.get_by_role("link", name="志愿者证").first.click()
    page.wait_for_load_state()
    number = page.inner_text("#card-volunteer-no").strip()
    assert re.fullmatch(rf"41{today().year}\d{{8}}[0-9X]", number) and number[-1] == mod11_2(number[:14])
    assert page.locator("#card-qr svg").count() == 1
