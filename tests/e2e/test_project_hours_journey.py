"""Journey (city guide §五/§六, in Chinese): a group admin publishes a project with one
position (团体管理 → 我的项目 → 发布新项目), opens it, 计时 → 生成时长码 and reads the code;
vol_longting enters it (用户中心 → 服务时长 → 录入时长码) and sees the hours; vol_shunhe
finds the project (用户中心 → 我的项目 → 参加更多项目), 报名, then 申请时长 → 提交; the
admin ticks the application on 计时 and approves it. Then the members-only refusal:
vol_shunhe 报名 on 龙亭公园文化讲解 reads exactly 报名失败，请先加入团体后再报名项目."""
import re
from datetime import timedelta

from sqlalchemy import select

from app.extensions import db
from app.models import Enrollment, Project, ServiceRecord, User, Volunteer
from app.services.clock import today
from tests.e2e.conftest import browser_login

PROJECT = "鼓楼夜市文明引导"
POSITION = "夜市引导员"


def _volunteer(app, username) -> tuple[int, int]:
    """(volunteer id, total approved minutes)."""
    with app.app_context():
        volunteer = db.session.scalar(select(Volunteer).join(User, User.id == Volunteer.user_id)
                                      .where(User.username == username))
        return volunteer.id, volunteer.total_minutes


def _records(app, username):
    vid, _ = _volunteer(app, username)
    with app.app_context():
        return [(r.source, r.status, r.minutes) for r in db.session.scalars(
            select(ServiceRecord).join(Project, Project.id == ServiceRecord.project_id)
            .where(Project.name == PROJECT, ServiceRecord.volunteer_id == vid).order_by(ServiceRecord.id))]


def _open_menu(page, category, item):
    """Click a navbar category, then its item (FAB's two-level menu)."""
    page.locator(".navbar").get_by_text(category).first.click()
    page.locator(".navbar .dropdown-menu").get_by_role("link", name=item).first.click()
    page.wait_for_load_state()


def _logout_login(page, live_server, username):
    page.goto(live_server + "/logout/")
    browser_login(page, live_server, username)


def _open_timekeeping(page):
    """团体管理 → 我的项目 → the project → 计时 on its only position."""
    _open_menu(page, "团体管理", "我的项目")
    page.wait_for_url("**/group-admin/projects/")
    page.locator("#group-project-list").get_by_role("link", name=PROJECT).click()
    page.wait_for_url(re.compile(r".*/group-admin/projects/\d+$"))
    page.locator("#position-table tr", has_text=POSITION).get_by_role("link", name="计时").click()
    page.wait_for_url("**/timekeeping")


def test_publish_code_redeem_sign_up_apply_approve(page, live_server, app):
    # --- The 北书店 team's admin publishes a project with one position. ---
    browser_login(page, live_server, "longting_team_admin")
    _open_menu(page, "团体管理", "我的项目")
    page.wait_for_url("**/group-admin/projects/")
    page.get_by_role("link", name="发布新项目").click()
    page.wait_for_url("**/group-admin/projects/new**")
    form = page.locator("#project-form")
    form.locator("input[name=name]").fill(PROJECT)
    form.locator("select[name=category]").select_option("civility")
    form.locator("textarea[name=description]").fill("夜市高峰时段引导游客文明排队、垃圾分类。")
    form.locator("textarea[name=risk_notice]").fill("人流密集，注意防挤防踩踏。")
    form.locator("input[name=address]").fill("开封市龙亭区书店街北口")
    start, end = today(), today() + timedelta(days=7)
    form.locator("input[name=starts_at]").fill(f"{start.isoformat()}T00:00")
    form.locator("input[name=ends_at]").fill(f"{end.isoformat()}T22:00")
    form.locator("input[name='positions-0-name']").fill(POSITION)
    form.locator("input[name='positions-0-quota']").fill("10")
    form.locator("input[name='positions-0-default_hours']").fill("2")
    form.get_by_role("button", name="提交").click()
    page.wait_for_url(re.compile(r".*/group-admin/projects/\d+$"))
    assert PROJECT in page.content()
    with app.app_context():
        project = db.session.scalar(select(Project).where(Project.name == PROJECT))
        assert project is not None and [p.name for p in project.positions] == [POSITION]
        position_id = project.positions[0].id

    # 我的项目 → the project → 计时 → 生成时长码: the 12-digit code is shown.
    _open_timekeeping(page)
    page.locator("#code_served_on").fill(today().isoformat())
    page.locator("#code_hours").fill("2")
    page.get_by_role("button", name="生成时长码").click()
    page.wait_for_url("**/timekeeping")
    code = page.locator("#hour-codes .hour-code-value").first.inner_text().strip()
    assert re.fullmatch(r"\d{12}", code), code
    assert code in page.locator(".alert").first.inner_text()  # the flash names it too

    # --- vol_longting: 用户中心 → 服务时长 → 录入时长码; the hours are there at once. ---
    _, before = _volunteer(app, "vol_longting")
    _logout_login(page, live_server, "vol_longting")
    _open_menu(page, "用户中心", "服务时长")
    page.wait_for_url("**/my/hours/")
    page.locator("#code").fill(code)
    page.locator("#redeem-form").get_by_role("button", name="录入时长码").click()
    page.wait_for_url("**/my/hours/")
    row = page.locator("#my-records tbody tr", has_text=PROJECT)
    assert row.count() == 1
    assert POSITION in row.inner_text() and "2" in row.locator(".record-hours").inner_text()
    assert row.get_attribute("data-status") == "approved"
    assert _records(app, "vol_longting") == [("hour_code", "approved", 120)]
    assert _volunteer(app, "vol_longting")[1] == before + 120

    # --- vol_shunhe: 用户中心 → 我的项目 → 参加更多项目 → find it → 报名. ---
    _logout_login(page, live_server, "vol_shunhe")
    _open_menu(page, "用户中心", "我的项目")
    page.wait_for_url("**/my/projects/")
    page.get_by_role("link", name="参加更多项目").click()
    page.wait_for_url("**/public/projects/**")
    page.locator("#project-q").fill("夜市")
    page.get_by_role("button", name="搜索").click()
    page.wait_for_load_state()
    page.locator("#project-results").get_by_text(PROJECT).click()
    page.wait_for_url(re.compile(r".*/public/projects/\d+$"))
    page.locator(f"#position-{position_id}").get_by_role("button", name="报名").click()
    page.wait_for_url("**/my/projects/")
    mine = page.locator("#my-project-list tbody tr", has_text=PROJECT)
    assert mine.get_attribute("data-status") == "accepted"

    # 申请时长 after the project: date, hours, what she did → 提交.
    mine.get_by_role("link", name="申请时长").click()
    page.wait_for_url("**/my/hours/apply/**")
    page.locator("#served_on").fill(today().isoformat())
    page.locator("#hours").fill("1.5")
    page.locator("#description").fill("引导游客排队、分发垃圾袋。")
    page.get_by_role("button", name="提交").click()
    page.wait_for_url("**/my/hours/")
    assert page.locator("#my-records tbody tr", has_text=PROJECT).get_attribute("data-status") == "pending"
    assert _records(app, "vol_shunhe") == [("application", "pending", 90)]

    # --- The admin: 计时 → tick the application → 通过. ---
    _logout_login(page, live_server, "longting_team_admin")
    _open_timekeeping(page)
    pending = page.locator("#pending-records tbody tr", has_text="王秀英")
    pending.locator("input.tick").check()
    page.click("#approve-selected")
    page.wait_for_url("**/timekeeping")
    assert page.locator("#pending-records tbody tr", has_text="王秀英").count() == 0
    assert page.locator("#approved-records tbody tr", has_text="王秀英").count() == 1
    assert _records(app, "vol_shunhe") == [("application", "approved", 90)]

    # --- Members-only: vol_shunhe is no member of the culture centre team. ---
    _logout_login(page, live_server, "vol_shunhe")
    _open_menu(page, "用户中心", "我的项目")
    page.get_by_role("link", name="参加更多项目").click()
    page.locator("#project-q").fill("龙亭公园")
    page.get_by_role("button", name="搜索").click()
    page.wait_for_load_state()
    page.locator("#project-results").get_by_text("龙亭公园文化讲解").click()
    page.wait_for_url(re.compile(r".*/public/projects/\d+$"))
    # On a phone: the project page fits the screen (its positions table scrolls inside itself).
    page.set_viewport_size({"width": 375, "height": 740})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375 + 1
    page.locator("#position-table tr", has_text="文化讲解员").get_by_role("button", name="报名").click()
    page.wait_for_load_state()
    alerts = [a.strip() for a in page.locator(".alert").all_inner_texts()]
    assert any(a.lstrip("×").strip() == "报名失败，请先加入团体后再报名项目" for a in alerts), alerts
    vid_shunhe, _ = _volunteer(app, "vol_shunhe")
    with app.app_context():
        culture = db.session.scalar(select(Project.id).where(Project.name == "龙亭公园文化讲解"))
        assert db.session.scalar(select(Enrollment.id).where(
            Enrollment.project_id == culture, Enrollment.volunteer_id == vid_shunhe)) is None
