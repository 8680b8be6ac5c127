"""运营控制台 (/console, Flask-Admin) over HTTP: only the Admin role gets in (anonymous →
the portal's login, every other demo role → 403), the audit log lists, filters, shows
and exports events, the console speaks Chinese, and its pages and static files do not
clash with the portal's."""
from __future__ import annotations

import csv
import io
import re

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEvent
from tests.conftest import login

OTHER_ROLES = ["henan_officer", "kaifeng_officer", "longting_officer", "shunhe_officer", "kaifeng_honors",
               "kfvf_admin", "longting_corps_admin", "longting_team_admin", "culture_team_admin",
               "shunhe_team_admin", "beidaomen_admin", "kfyouth_admin", "vol_longting", "vol_shunhe", "vol_minor",
               "vol_zhengzhou"]
CONSOLE_PAGES = ["/console/", "/console/audit/", "/console/audit/export/csv/", "/console/audit/export/xlsx/"]


def _admin(app):
    return login(app.test_client(), "admin")


@pytest.mark.parametrize("url", CONSOLE_PAGES)
def test_anonymous__sent_to_the_portal_login(app, url):
    resp = app.test_client().get(url)
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/login/?next=") and "console" in resp.headers["Location"]


@pytest.mark.parametrize("username", OTHER_ROLES)
def test_every_other_role__refused(app, username):
    client = login(app.test_client(), username)
    for url in CONSOLE_PAGES:
        resp = client.get(url)
        assert resp.status_code == 403, (username, url, resp.status_code)
        assert "/console/audit/details" not in resp.get_data(as_text=True)


def test_admin__home_in_chinese_with_the_audit_log(app):
    html = _admin(app).get("/console/").get_data(as_text=True)
    assert "运营控制台" in html and "审计日志" in html
    assert 'href="/console/audit/"' in html


def test_audit_log__lists_newest_first_and_filters_by_object_type(app):
    client = _admin(app)
    with app.app_context():
        total = db.session.scalar(select(func.count()).select_from(AuditEvent))
        newest = db.session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
        kind, count = db.session.execute(
            select(AuditEvent.object_type, func.count()).group_by(AuditEvent.object_type)
            .order_by(func.count(), AuditEvent.object_type).limit(1)).one()
    assert total > count > 0
    html = client.get("/console/audit/").get_data(as_text=True).replace("&amp;", "&")
    first = re.search(r"/console/audit/details/\?id=(\d+)", html)
    assert first and int(first.group(1)) == newest
    index = _filter_index(html, "对象类型")
    filtered = client.get(f"/console/audit/?flt1_{index}={kind}").get_data(as_text=True).replace("&amp;", "&")
    ids = set(re.findall(r"/console/audit/details/\?id=(\d+)", filtered))
    with app.app_context():
        wanted = set(map(str, db.session.scalars(select(AuditEvent.id).where(AuditEvent.object_type == kind))))
    assert ids and (ids == wanted if count <= 50 else ids < wanted)
    assert str(newest) not in ids or newest in wanted


def _filter_index(html: str, label: str) -> int:
    """The index Flask-Admin gave the "equals" filter of the column labelled ``label``."""
    import html as html_lib
    import json

    match = re.search(r'<div id="filter-groups-data"[^>]*>(.*?)</div>', html, re.S)
    assert match, "no filter groups on the page"
    groups = json.loads(html_lib.unescape(match.group(1)))
    for item in groups.get(label, []):
        if item["operation"] in ("等于", "equals"):
            return item["index"]
    raise AssertionError(f"no equals filter for {label}: {list(groups)}")


def test_audit_log__details_show_the_whole_before_and_after(app):
    client = _admin(app)
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.after_json.is_not(None))
                                  .order_by(AuditEvent.id).limit(1))
        after = event.after_json
    html = client.get(f"/console/audit/details/?id={event.id}").get_data(as_text=True)
    import html as html_lib

    assert html_lib.escape(after, quote=False)[:200] in html or after[:200] in html_lib.unescape(html)


def test_audit_log__exports_csv_and_excel_of_every_row(app):
    client = _admin(app)
    with app.app_context():
        total = db.session.scalar(select(func.count()).select_from(AuditEvent))
    resp = client.get("/console/audit/export/csv/")
    assert resp.status_code == 200 and "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    assert len(rows) == total + 1
    resp = client.get("/console/audit/export/xlsx/")
    assert resp.status_code == 200
    sheet = load_workbook(io.BytesIO(resp.get_data())).active
    assert sheet.max_row == total + 1


def test_console_and_portal__no_clash_of_pages_or_static_files(app):
    client = _admin(app)
    html = client.get("/console/").get_data(as_text=True)
    assets = set(re.findall(r'(?:src|href)="(/console/static/[^"?]+)', html))
    assert assets, "the console loads its own static files"
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert not re.search(r'(?:src|href)="https?://', html), "nothing from another host"


def _console_pages(app) -> list[str]:
    """The first page of every console view, and its create form where it has one."""
    pages = []
    for view in app.extensions["admin"][0]._views:
        pages.append(view.url.rstrip("/") + "/")
        if getattr(view, "can_create", False):
            pages.append(view.url.rstrip("/") + "/new/")
    return pages


def _portal_menu_pages(app, client) -> list[str]:
    """Every portal page the Admin's menu links to (FAB's menu, categories opened)."""
    html = client.get("/").get_data(as_text=True)
    links = set(re.findall(r'<a[^>]+href="(/[^"#]*)"', html))
    return sorted(url for url in links if not url.startswith(("/console", "/logout", "/lang/", "/static")))


def test_every_console_and_portal_page__loads_for_admin(app):
    client = _admin(app)
    console = _console_pages(app)
    assert len(console) >= 8 and "/console/region/" in console and "/console/settings/" in console
    portal = _portal_menu_pages(app, client)
    assert len(portal) >= 20 and "/statistics/" in " ".join(portal)
    for url in console + portal:
        resp = client.get(url)
        assert resp.status_code == 200, (url, resp.status_code)
        assert "Traceback" not in resp.get_data(as_text=True), url


def test_every_console_page__refused_to_an_officer(app):
    client = login(app.test_client(), "kaifeng_officer")
    for url in _console_pages(app):
        assert client.get(url).status_code == 403, url


def test_portal_menu__links_the_console_for_admin_only(app):
    assert 'href="/console/"' in _admin(app).get("/").get_data(as_text=True)
    for username in ("kaifeng_officer", "kfvf_admin", "vol_longting"):
        html = login(app.test_client(), username).get("/").get_data(as_text=True)
        assert 'href="/console/"' not in html, username
