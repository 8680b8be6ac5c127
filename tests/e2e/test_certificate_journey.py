"""Journey (issue 7 item 8, in Chinese): kaifeng_honors adds an honor for vol_longting
(表彰激励 → add); vol_longting sees it on her 志愿者证, then 用户中心 → 我的证明 →
申请 from 北书店街道社区志愿服务队; longting_team_admin opens 团体管理 → 证明申请 and 出具 it;
vol_longting downloads the PDF (the honor and 志愿服务记录证明 are in it) and opens the
verification link from 我的证明 in a browser that is not signed in: the public page says
有效, shows the masked holder, hours and issuer, and that the record matches the original.
Without the token the same page says only 有效."""
import io
import re

from pypdf import PdfReader
from sqlalchemy import select

from app.extensions import db
from app.models import Certificate, CertificateRequest, Honor
from app.services.clock import today
from tests.e2e.conftest import browser_login

HONOR = "开封市优秀志愿者（测试）"
TEAM = "北书店街道社区志愿服务队"


def _open_menu(page, category, item):
    """Click a navbar category, then its item (FAB's two-level menu)."""
    page.locator(".navbar").get_by_text(category).first.click()
    page.locator(".navbar .dropdown-menu").get_by_role("link", name=item).first.click()
    page.wait_for_load_state()


def _logout_login(page, live_server, username):
    page.goto(live_server + "/logout/")
    browser_login(page, live_server, username)


def _volunteer_no(app, username="vol_longting") -> str:
    from tests.integration._hours_helpers import volunteer_of

    with app.app_context():
        return volunteer_of(username).volunteer_no


def test_honor_card_request_issue_verify(page, live_server, app, browser):
    volunteer_no = _volunteer_no(app)

    # --- kaifeng_honors: 区域监管 → 表彰激励 → add an honor for vol_longting. ---
    browser_login(page, live_server, "kaifeng_honors")
    top_level = page.locator(".navbar-nav > li > a", has_text="表彰激励")
    if top_level.count():  # a navbar entry of its own
        top_level.first.click()
        page.wait_for_load_state()
    else:
        _open_menu(page, "区域监管", "表彰激励")
    page.wait_for_url("**/honors/list/**")
    page.goto(live_server + "/honors/add")  # the list's "+" button
    form = page.locator("#model_form")
    form.locator("#title").fill(HONOR)
    level = form.locator("#level")
    if level.evaluate("el => el.tagName") == "SELECT":
        level.select_option("prefecture")
    else:
        level.fill("prefecture")
    form.locator("#awarding_body").fill("开封市文明办")
    form.locator("#document_no").fill("汴文明〔2026〕18号")
    # Typed key by key: the date picker keeps what it saw typed (a bare fill() it resets on blur).
    form.locator("#awarded_on").click()
    page.keyboard.type(today().isoformat())
    form.locator("#title").click()  # leave the date field: its picker closes
    form.locator("#recipient_volunteer_no").fill(volunteer_no)
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert HONOR in page.content()
    with app.app_context():
        honor = db.session.scalar(select(Honor).where(Honor.title == HONOR))
        assert honor is not None and honor.volunteer.volunteer_no == volunteer_no

    # --- vol_longting: 用户中心 → 志愿者证 shows the honor. ---
    _logout_login(page, live_server, "vol_longting")
    _open_menu(page, "用户中心", "志愿者证")
    page.wait_for_url("**/my/card")
    assert HONOR in page.locator("#card-honors").inner_text()

    # 用户中心 → 我的证明 → 申请: 北书店 team, a purpose → 提交.
    _open_menu(page, "用户中心", "我的证明")
    page.wait_for_url("**/my/certificates/")
    apply = page.locator("#apply-form")
    apply.locator("#group").select_option(label=TEAM)
    apply.locator("#purpose").fill("求职材料")
    apply.get_by_role("button", name="提交").click()
    page.wait_for_url("**/my/certificates/")
    row = page.locator("#request-list tbody tr", has_text=TEAM)
    assert row.get_attribute("data-status") == "pending" and "待审核" in row.inner_text()

    # --- longting_team_admin: 团体管理 → 证明申请 → 出具 (contact prefilled). ---
    _logout_login(page, live_server, "longting_team_admin")
    _open_menu(page, "团体管理", "证明申请")
    page.wait_for_url("**/group-admin/certificates/")
    page.locator("#pending-requests tbody tr", has_text="李明华").get_by_role("link", name="出具或拒绝").click()
    page.wait_for_url(re.compile(r".*/group-admin/certificates/requests/\d+$"))
    assert int(page.locator("#record-count").inner_text()) >= 1
    issue = page.locator("#issue-form")
    assert issue.locator("#contact").input_value().strip()  # the group's contact
    issue.locator("#person_in_charge").fill("何淑芬")
    issue.locator("#handler").fill("王小红")
    issue.get_by_role("button", name="出具").click()
    page.wait_for_url("**/group-admin/certificates/")
    with app.app_context():
        certificate = db.session.scalar(select(Certificate).order_by(Certificate.id.desc()))
        number = certificate.number
        assert db.session.scalar(select(CertificateRequest.status).where(
            CertificateRequest.certificate_id == certificate.id)) == "approved"
    assert number in page.locator(".alert").first.inner_text()
    assert page.locator("#issued-certificates tbody tr", has_text=number).count() == 1

    # --- vol_longting: 我的证明 lists it; the PDF carries the honor; the verify link. ---
    _logout_login(page, live_server, "vol_longting")
    _open_menu(page, "用户中心", "我的证明")
    row = page.locator("#certificate-list tbody tr", has_text=number)
    assert "有效" in row.inner_text() and TEAM in row.inner_text()
    with page.expect_download() as download:
        row.get_by_role("link", name="下载PDF").click()
    with open(download.value.path(), "rb") as pdf:
        text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.read())).pages)
    for expected in ("志愿服务记录证明", "李明华", volunteer_no, HONOR, number):
        assert expected in text, expected
    verify_url = row.locator("a.verify-link").get_attribute("href")
    assert f"/verify/{number}?t=" in verify_url

    # --- Anyone (not signed in) opens the link from the QR / 我的证明. ---
    public = browser.new_context(locale="zh-CN")
    try:
        visitor = public.new_page()
        visitor.goto(verify_url)
        assert visitor.locator("#certificate-status").inner_text().strip() == "有效"
        details = visitor.locator("#certificate-details").inner_text()
        assert "李**" in details and TEAM in details and "李明华" not in details
        assert visitor.locator("#snapshot-check").get_attribute("data-matches") == "yes"
        visitor.goto(verify_url.split("?")[0])  # without the token: only the status
        assert visitor.locator("#certificate-status").inner_text().strip() == "有效"
        assert visitor.locator("#certificate-details").count() == 0
        # On a phone the page fits the screen.
        visitor.set_viewport_size({"width": 375, "height": 740})
        assert visitor.evaluate("document.documentElement.scrollWidth") <= 375 + 1
    finally:
        public.close()
