"""Journey: a city officer opens 区域监管 → 注册审核, ticks every pending registration
(FAB's "select all" checkbox, no inline script) and approves them; the volunteers
get their numbers. A reject without a reason is refused with a message."""
from sqlalchemy import select

from app.extensions import db
from app.models import Volunteer
from tests.e2e.conftest import browser_login


def _pending(app, path):
    with app.app_context():
        return set(db.session.scalars(select(Volunteer.id).where(
            Volunteer.status == "pending", Volunteer.region_path.startswith(path))))


def test_kaifeng_officer_approves_every_pending_registration(page, live_server, app):
    pending = _pending(app, "410000/410200/")
    assert pending

    browser_login(page, live_server, "kaifeng_officer")

    page.get_by_text("区域监管").first.click()
    page.get_by_role("link", name="注册审核").first.click()
    page.wait_for_url("**/registration-review/**")
    rows = page.locator("#pending-registrations tbody tr")
    assert rows.count() == len(pending)

    # Reject without a reason: refused, nothing changes.
    page.locator("input.action_check").first.check()
    page.click("#reject-selected")
    page.wait_for_load_state()
    assert "须填写原因" in page.content()
    assert _pending(app, "410000/410200/") == pending

    page.locator("input.action_check_all").click()  # FAB's ab_actions.js ticks every row
    assert page.locator("input.action_check:checked").count() == len(pending)
    page.click("#approve-selected")
    page.wait_for_load_state()
    assert "暂无待审核的注册申请" in page.content()
    assert not _pending(app, "410000/410200/")
    with app.app_context():
        numbers = db.session.scalars(select(Volunteer.volunteer_no).where(Volunteer.id.in_(pending))).all()
    assert all(n and len(n) == 15 for n in numbers)
