"""Journey (issue 8 item 7, in Chinese): henan_officer opens 统计分析, Plotly draws the
charts (its SVG appears, with no script refused by the CSP), a click on 开封市's bar
drills down to 开封市, and the CSV of the volunteers chart downloads with the numbers
the database holds for 开封市's counties."""
import csv
import io

from sqlalchemy import func, select

from app.extensions import db
from app.models import Region, Volunteer
from app.security.scope import under
from tests.e2e.conftest import browser_login

KAIFENG = "410200"


def _volunteers_per_county(app) -> dict[str, int]:
    """Approved volunteers living in each county of 开封市, straight from the volunteer table."""
    with app.app_context():
        counties = db.session.execute(select(Region.name, Region.path).where(
            Region.parent_id == select(Region.id).where(Region.code == KAIFENG).scalar_subquery())).all()
        return {name: db.session.scalar(select(func.count()).select_from(Volunteer).where(
            Volunteer.status == "approved", under(Volunteer.region_path, path))) for name, path in counties}


def test_henan_officer_opens_statistics_drills_down_and_downloads(page, live_server, app):
    refused = []
    page.on("console", lambda msg: refused.append(msg.text) if "Content Security Policy" in msg.text else None)
    browser_login(page, live_server, "henan_officer")

    # 统计分析 → the region dashboard (the first entry of the category).
    page.locator(".navbar").get_by_text("统计分析").first.click()
    page.locator(".navbar .dropdown-menu a[href='/statistics/']").first.click()
    page.wait_for_url("**/statistics/")
    assert page.locator("#area-name").inner_text() == "河南省"
    page.wait_for_selector("#figure-volunteers .main-svg")
    page.wait_for_selector("#figure-hours_by_month .main-svg")
    assert page.locator(".chart-figure .main-svg").count() >= 10

    # Drill down: 开封市's bar (Henan's children by code: 郑州市, 开封市, …).
    names = page.locator("#region-select option").all_inner_texts()
    bar = page.locator("#figure-volunteers .bars .point").nth(names.index("开封市")).bounding_box()
    # Plotly's drag layer takes the pointer and finds the bar under it: hover, then click.
    x, y = bar["x"] + bar["width"] / 2, bar["y"] + bar["height"] / 2
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    page.wait_for_url(f"**/statistics/?region={KAIFENG}*")
    page.wait_for_selector("#figure-volunteers .main-svg")
    assert page.locator("#area-name").inner_text() == "开封市"
    assert [a.strip() for a in page.locator("#region-crumbs li").all_inner_texts()] == ["河南省", "开封市"]

    # The CSV of the volunteers chart: one row per county, the numbers in the database.
    with page.expect_download() as download:
        page.locator("#chart-volunteers a.download-csv").click()
    assert download.value.suggested_filename.endswith(".csv")
    with open(download.value.path(), encoding="utf-8-sig") as f:
        rows = list(csv.reader(io.StringIO(f.read())))
    shown = {row[0]: int(row[1]) for row in rows[1:]}
    expected = _volunteers_per_county(app)
    assert shown == expected and sum(expected.values()) > 0
    total = int(page.locator("#total-volunteers").get_attribute("data-value"))
    assert total == sum(expected.values())
    assert not refused, refused
