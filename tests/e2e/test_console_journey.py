"""Journey: the platform admin opens 运营控制台 from the portal's menu, edits a
community's population inline in 行政区划 and finds the change in 审计日志; an
officer who types the console's address is refused."""
from sqlalchemy import select

from app.extensions import db
from app.models import Region
from tests.e2e.conftest import browser_login

COMMUNITY = "410202001001"  # 书店街社区 (demo data)


def test_admin_edits_a_population_and_sees_the_audit_event(page, live_server, app):
    browser_login(page, live_server, "admin")
    page.get_by_role("link", name="运营控制台").first.click()
    page.wait_for_url("**/console/")
    assert "审计日志" in page.content()

    page.goto(f"{live_server}/console/region/?search={COMMUNITY}")
    with app.app_context():
        before = db.session.scalar(select(Region.population).where(Region.code == COMMUNITY))
    page.locator("a.editable", has_text=str(before)).first.click()
    page.locator(".editable-input input").fill("12345")
    page.locator("button.editable-submit").click()
    page.locator("a.editable", has_text="12345").first.wait_for()
    with app.app_context():
        assert db.session.scalar(select(Region.population).where(Region.code == COMMUNITY)) == 12345

    page.goto(f"{live_server}/console/audit/?search=region")
    row = page.locator("table tbody tr").first
    assert "region" in row.inner_text()
    row.locator("a[href*='/console/audit/details/']").first.click()
    page.wait_for_url("**/console/audit/details/**")
    assert "12345" in page.content() and "admin" in page.content()


def test_officer_is_refused(page, live_server):
    browser_login(page, live_server, "kaifeng_officer")
    assert page.get_by_role("link", name="运营控制台").count() == 0
    response = page.goto(f"{live_server}/console/region/")
    assert response.status == 403
