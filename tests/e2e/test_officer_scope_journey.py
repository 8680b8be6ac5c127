"""Journey: a county officer sees only their county's volunteers and gets the 404
page for a volunteer of the neighbouring county opened by URL."""
from sqlalchemy import select

from app.extensions import db
from app.models import Volunteer
from tests.e2e.conftest import browser_login


def _volunteer_ids(app, path):
    with app.app_context():
        return db.session.scalars(select(Volunteer.id).where(Volunteer.region_path.startswith(path))).all()


def test_longting_officer_sees_only_longting_volunteers(page, live_server, app):
    longting = set(_volunteer_ids(app, "410000/410200/410202/"))
    shunhe = _volunteer_ids(app, "410000/410200/410203/")

    browser_login(page, live_server, "longting_officer")

    page.get_by_text("区域监管").first.click()
    page.get_by_role("link", name="志愿者").first.click()
    page.wait_for_url("**/volunteers/list/**")
    assert "顺河回族区" not in page.content()
    links = page.locator("a[href*='/volunteers/show/']")
    shown = {int(href.rsplit("/", 1)[-1]) for href in links.evaluate_all("els => els.map(e => e.getAttribute('href'))")}
    assert shown and shown <= longting

    links.first.click()
    page.wait_for_url("**/volunteers/show/**")
    assert "龙亭区" in page.content() and "**********" in page.content()  # masked ID

    response = page.goto(f"{live_server}/volunteers/show/{shunhe[0]}")
    assert response.status == 404
    assert "不存在" in page.content()
