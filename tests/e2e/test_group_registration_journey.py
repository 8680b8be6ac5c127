"""Journey: from the login page to 团体注册, in Chinese; the parent group (上级团体) is found
by typing and chosen from the search list, the region from the cascading selects; the
fields that apply only sometimes appear and disappear; the success page names the
reviewer; longting_corps_admin approves the team in 团体管理 → 下级团体审核."""
from sqlalchemy import select

from app.extensions import db
from app.models import VolunteerGroup
from tests.e2e.conftest import browser_login

NAME = "龙亭区大兴社区志愿服务队"
REGION = ["河南省", "开封市", "龙亭区", "大兴街道"]


def test_visitor_registers_a_team_and_the_county_corps_approves_it(page, live_server, app):
    page.goto(live_server + "/login/")
    page.get_by_text("团体注册").first.click()
    page.wait_for_url("**/groups/register/")
    assert "慎重" in page.inner_text("#immutable-warning")

    page.fill("#name", NAME)
    page.type("#parent_name", "龙亭区志愿")
    page.wait_for_selector("#parent-choices option")
    page.select_option("#parent-choices", label="龙亭区志愿服务总队 (龙亭区)")
    assert page.input_value("#parent_name") == "龙亭区志愿服务总队"
    assert page.input_value("#parent_id").isdigit()

    selects = page.locator(".region-selects select")
    for level, name in enumerate(REGION):
        selects.nth(level).select_option(label=name)
        if level + 1 < len(REGION):
            page.wait_for_function(
                "n => document.querySelectorAll('.region-selects select').length > n", arg=level + 1)
    assert page.input_value("#region_code") == "410202003"

    page.fill("#username", "e2e_daxing")
    page.fill("#password", "Daxing2026ok")
    page.fill("#password_confirm", "Daxing2026ok")
    assert page.is_hidden("#staff_headcount")
    page.select_option("#group_type", "civil_unit")
    assert page.is_visible("#staff_headcount")
    page.select_option("#group_type", "community")
    assert page.is_hidden("#staff_headcount")
    page.check("#legal-person input[value='0']")
    assert page.is_hidden("#credit_code")
    assert page.is_hidden("#join_password")
    page.select_option("#join_policy", "password")
    assert page.is_visible("#join_password")
    page.select_option("#join_policy", "verify")
    page.fill("#contact_name", "周大兴")
    page.fill("#contact_phone", "0371-23456789")
    page.click("#group-register-submit")
    page.wait_for_selector("#registered-message")
    assert "龙亭区志愿服务总队" in page.inner_text("#registered-message")

    with app.app_context():
        group = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == NAME))
        assert group.status == "pending" and group.region_path.endswith("/410202003/")
        group_id = group.id

    browser_login(page, live_server, "longting_corps_admin")
    page.get_by_text("团体管理").first.click()
    page.get_by_text("下级团体审核").first.click()
    page.wait_for_selector(f"#group-{group_id}")
    page.check(f"#group-{group_id} input[name=rowid]")
    page.click("#approve-selected")
    page.wait_for_selector("#no-pending-groups, #pending-groups")
    with app.app_context():
        assert db.session.get(VolunteerGroup, group_id).status == "approved"
