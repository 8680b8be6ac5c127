"""统计分析 over HTTP: who may open which dashboard, what each one's numbers and downloads
hold (compared with direct SQL over the fact tables after ``rollups.rebuild()``),
scope (a county officer sees only the county, a group admin only their groups, a
volunteer only themselves), plotly.min.js from the package and no other host, and a
query count that does not grow with the data.
"""
from __future__ import annotations

import calendar
import csv
import io
import json
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import delete, func, select, true

from app.charts.views import PLOTLY_PATH, PLOTLY_VERSION
from app.extensions import db
from app.models import (
    CivilUnit, GroupAdmin, Membership, Project, RecordSource, Region, RegionBinding, ServiceRecord, StatMonth,
    StatTotal, User, Volunteer, VolunteerGroup,
)
from app.security.scope import path_is_under, under
from app.services import rollups
from app.services.clock import today, utcnow
from tests.conftest import login, statements_of
from tests.integration._hours_helpers import acting

HENAN, KAIFENG, LONGTING, SHUNHE = "410000/", "410000/410200/", "410000/410200/410202/", "410000/410200/410203/"
CODES = {HENAN: "410000", KAIFENG: "410200", LONGTING: "410202", SHUNHE: "410203"}
LONGTING_NAME = "龙亭区"


# --- Direct SQL over the facts: the ground truth ---


def _volunteers(path: str) -> int:
    return db.session.scalar(select(func.count()).select_from(Volunteer).where(
        Volunteer.status == "approved", under(Volunteer.region_path, path)))


def _minutes(path: str, start: date, end: date) -> int:
    return int(db.session.scalar(select(func.coalesce(func.sum(ServiceRecord.minutes), 0)).where(
        ServiceRecord.status == "approved", under(ServiceRecord.region_path, path),
        ServiceRecord.served_on >= start, ServiceRecord.served_on <= end)))


def _minutes_by_month(where, start: date, end: date) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for day, minutes in db.session.execute(select(ServiceRecord.served_on, ServiceRecord.minutes).where(
            ServiceRecord.status == "approved", ServiceRecord.served_on >= start, ServiceRecord.served_on <= end,
            where)):
        out[day.strftime("%Y-%m")] += minutes
    return out


def _year() -> tuple[date, date]:
    return date(today().year, 1, 1), date(today().year, 12, 31)


# --- HTTP helpers ---


def _client(app, username):
    client = app.test_client()
    if username:
        login(client, username)
    return client


def _page(client, url) -> str:
    resp = client.get(url)
    assert resp.status_code == 200, (url, resp.status_code)
    return resp.get_data(as_text=True)


def _csv(client, url) -> list[list[str]]:
    resp = client.get(url)
    assert resp.status_code == 200, (url, resp.status_code, resp.get_data(as_text=True)[:300])
    assert resp.mimetype == "text/csv" and "attachment" in resp.headers["Content-Disposition"]
    return list(csv.reader(io.StringIO(resp.get_data().decode("utf-8-sig"))))


def _number(html: str, element_id: str, attribute: str) -> int:
    match = re.search(rf'id="{element_id}"[^>]*{attribute}="(-?\d+)"', html)
    assert match, element_id
    return int(match.group(1))


def _hours(value: str) -> float:
    return float(value) if value else 0.0


def _rebuild(app):
    with app.app_context():
        rollups.rebuild()
        db.session.commit()


# --- plotly.min.js and no other host ---


def test_plotly_js__served_from_the_package_with_a_year_of_cache(client):
    resp = client.get(f"/static-plotly/{PLOTLY_VERSION}/plotly.min.js")  # anonymous: a public asset
    assert resp.status_code == 200
    with open(PLOTLY_PATH, "rb") as f:
        assert resp.get_data() == f.read()
    assert resp.mimetype == "text/javascript"
    cache = resp.headers["Cache-Control"]
    assert "max-age=31536000" in cache and "immutable" in cache and "public" in cache
    assert client.get("/static-plotly/0.0.1/plotly.min.js").status_code == 404


PAGES = [("henan_officer", "/statistics/"), ("henan_officer", "/statistics/?region=410202001"),
         ("longting_officer", "/statistics/?period=month"), ("kfvf_admin", "/statistics/group/"),
         ("vol_longting", "/statistics/me/"), ("admin", "/statistics/")]


@pytest.mark.parametrize("username, url", PAGES)
def test_statistics_pages__reference_no_other_host(app, username, url):
    """Every src and href stays on this host (no CDN); every script tag carries the CSP
    header's nonce (the figure data too, though the browser never runs JSON)."""
    from tests.integration.test_security import assert_scripts_carry_nonce

    resp = _client(app, username).get(url)
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    nonce = assert_scripts_carry_nonce(resp)
    for attribute, value in re.findall(r"""\b(src|href)\s*=\s*["']([^"']*)["']""", html):
        assert not re.match(r"^(?:[a-z][a-z0-9+.-]*:)?//", value.strip(), re.I), (attribute, value)
        assert not value.strip().lower().startswith(("javascript:", "http:", "https:")), (attribute, value)
    assert f'src="/static-plotly/{PLOTLY_VERSION}/plotly.min.js" nonce="{nonce}"' in html
    assert f'src="/static/js/charts.js" nonce="{nonce}"' in html
    assert "figure-json" in html


def test_figure_json__cannot_close_its_script_tag():
    from app.charts.figures import bars
    from app.charts.views import Chart, Table

    name = "</script><script>alert(1)</script>&\u2028"
    fig = bars([name], [("n", [1])], title="", x_label="", y_label="")
    text = str(Chart("x", "x", Table([], []), fig).figure_json)
    assert not set(text) & {"<", ">", "&", "\u2028"}
    shown = name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert json.loads(text)["data"][0]["x"] == [shown]  # entities, which plotly.js shows as the name itself


def test_csv__formulas_guarded_numbers_kept():
    """A group named like a formula gets an apostrophe; a correction's negative hours stay a number."""
    from app.services.record_exchange import csv_bytes

    data = csv_bytes(["团体", "时长"], [["=HYPERLINK(\"x\")", -0.75], ["北书店", None]], keep_numbers=True)
    assert data.startswith(b"\xef\xbb\xbf")
    assert list(csv.reader(io.StringIO(data.decode("utf-8-sig")))) == [
        ["团体", "时长"], ["'=HYPERLINK(\"x\")", "-0.75"], ["北书店", ""]]


# --- Who may open what ---


@pytest.mark.parametrize("url", ["/statistics/", "/statistics/volunteers.csv", "/statistics/hours_by_month.xlsx"])
@pytest.mark.parametrize("username, status", [("vol_longting", 403), ("longting_team_admin", 403),
                                              ("kaifeng_honors", 403), (None, 302), ("longting_officer", 200)])
def test_officer_dashboard__only_officers(app, url, username, status):
    assert _client(app, username).get(url).status_code == status


@pytest.mark.parametrize("username, status", [("vol_longting", 403), ("longting_officer", 403), (None, 302),
                                              ("longting_team_admin", 200)])
def test_group_dashboard__only_group_admins(app, username, status):
    assert _client(app, username).get("/statistics/group/").status_code == status


@pytest.mark.parametrize("username, status", [("longting_officer", 403), (None, 302), ("vol_longting", 200)])
def test_my_statistics__only_volunteers(app, username, status):
    assert _client(app, username).get("/statistics/me/").status_code == status


@pytest.mark.parametrize("username, mine, others", [
    ("longting_officer", "/statistics/", ("/statistics/group/", "/statistics/me/")),
    ("longting_team_admin", "/statistics/group/", ("/statistics/me/", 'href="/statistics/"')),
    ("vol_longting", "/statistics/me/", ("/statistics/group/", 'href="/statistics/"')),
])
def test_menu__each_role_finds_its_entry_under_statistics(app, username, mine, others):
    html = _page(_client(app, username), mine)
    navbar = html[html.index('class="navbar'):html.index('class="container-fluid statistics-page"')]
    assert f'href="{mine}"' in navbar
    assert all(other not in navbar for other in others)


def test_routes__every_statistics_route_is_tried_here(app):
    """A new statistics page or download must be tried by a test of this module (these are)."""
    tried = {"/statistics/", "/statistics/<name>.<fmt>", "/statistics/group/", "/statistics/group/<name>.<fmt>",
             "/statistics/me/", "/statistics/me/<name>.<fmt>", "/static-plotly/<version>/plotly.min.js"}
    views = ("StatisticsView.", "GroupStatisticsView.", "MyStatisticsView.")
    routes = {re.sub(r"<(?:[^>:]+:)?([^>]+)>", r"<\1>", rule.rule) for rule in app.url_map.iter_rules()
              if rule.endpoint.startswith(views) or rule.endpoint == "plotly_js"}
    assert routes == tried


@pytest.mark.parametrize("username, region", [
    ("longting_officer", "410203"), ("longting_officer", "410200"), ("longting_officer", "410000"),
    ("longting_officer", "410203001"), ("kaifeng_officer", "410100"), ("henan_officer", "110000"),
    ("henan_officer", "999999"), ("henan_officer", "abc"), ("henan_officer", "4102021"),
])
def test_officer_dashboard__region_outside_scope_is_404(app, username, region):
    client = _client(app, username)
    assert client.get(f"/statistics/?region={region}").status_code == 404
    assert client.get(f"/statistics/volunteers.csv?region={region}").status_code == 404


def test_officer_dashboard__an_officer_of_two_regions_reaches_both(app):
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "longting_officer"))
        shunhe = db.session.scalar(select(Region).where(Region.code == "410203"))
        db.session.add(RegionBinding(user_id=user.id, region_id=shunhe.id, region_path=shunhe.path, kind="officer"))
        db.session.commit()
    client = _client(app, "longting_officer")
    html = _page(client, "/statistics/")
    assert '<span id="area-name">龙亭区</span>' in html
    assert re.search(r'id="own-regions".*?region=410202.*?region=410203', html, re.S)
    assert '<span id="area-name">顺河回族区</span>' in _page(client, "/statistics/?region=410203")
    assert client.get("/statistics/?region=410204").status_code == 404  # 鼓楼区: still outside


def test_platform_admin__every_region(app):
    client = _client(app, "admin")
    html = _page(client, "/statistics/")
    assert '<option value="410000">河南省</option>' in html and '<option value="110000">北京市</option>' in html
    with app.app_context():
        assert _number(html, "total-volunteers", "data-value") == db.session.scalar(
            select(func.count()).select_from(Volunteer).where(Volunteer.status == "approved"))
    assert _page(client, "/statistics/?region=110000").count('<span id="area-name">北京市</span>') == 1


def test_officer_dashboard__unknown_figure_is_404(app):
    client = _client(app, "henan_officer")
    assert client.get("/statistics/no_such_figure.csv").status_code == 404
    assert client.get("/statistics/volunteers.pdf").status_code == 404


# --- Numbers: screen and downloads against direct SQL ---


@pytest.mark.parametrize("path", [HENAN, KAIFENG, LONGTING, SHUNHE])
def test_totals__equal_direct_sql_on_the_demo(app, path):
    _rebuild(app)
    start, end = _year()
    html = _page(_client(app, "henan_officer"), f"/statistics/?region={CODES[path]}")
    with app.app_context():
        volunteers, minutes = _volunteers(path), _minutes(path, start, end)
    assert volunteers > 0 and minutes > 0
    assert _number(html, "total-volunteers", "data-value") == volunteers
    assert _number(html, "total-hours", "data-minutes") == minutes


def test_county_officer__dashboard_and_downloads_hold_only_the_county(app):
    """longting_officer: every number and name is 龙亭区's, equal to direct SQL over the facts."""
    _rebuild(app)
    start, end = _year()
    client = _client(app, "longting_officer")
    html = _page(client, "/statistics/")
    assert '<span id="area-name">龙亭区</span>' in html
    assert "顺河" not in html and "郑州" not in html and "410203" not in html

    with app.app_context():
        streets = db.session.execute(select(Region.code, Region.name, Region.path, Region.population).where(
            Region.parent_id == select(Region.id).where(Region.code == "410202").scalar_subquery())).all()
        assert streets
        per_street = {name: _volunteers(path) for _, name, path, _ in streets}
        by_month = _minutes_by_month(under(ServiceRecord.region_path, LONGTING), start, end)
        groups_here = set(db.session.scalars(select(VolunteerGroup.name).where(
            under(VolunteerGroup.region_path, LONGTING))))
        projects_here = db.session.scalar(select(func.count()).select_from(Project).where(
            under(Project.region_path, LONGTING)))
        pending_here = db.session.scalar(select(func.count()).select_from(Volunteer).where(
            Volunteer.status == "pending", under(Volunteer.region_path, LONGTING)))
        units = {u.name: u for u in db.session.scalars(select(CivilUnit).where(
            under(CivilUnit.region_path, LONGTING)))}
        communities = set(db.session.scalars(select(Region.code).where(
            Region.level == 5, under(Region.path, LONGTING))))

    # Volunteers per street (and none elsewhere), and the registration rate per street.
    rows = _csv(client, "/statistics/volunteers.csv")
    assert {r[0]: int(r[1]) for r in rows[1:]} == per_street
    rate = {r[1]: r for r in _csv(client, "/statistics/registration_rate.csv")[1:]}
    assert set(rate) == {code for code, *_ in streets}
    for code, name, path, population in streets:
        assert int(rate[code][2]) == per_street[name] and int(rate[code][3]) == population
        assert float(rate[code][4]) == round(100 * per_street[name] / population, 2)
        assert float(rate[code][5]) == 13.0

    # Hours per month, the county's records only.
    rows = _csv(client, "/statistics/hours_by_month.csv")
    assert {r[0]: _hours(r[1]) for r in rows[1:]} == {
        m: round(by_month.get(m, 0) / 60, 2) for m in (r[0] for r in rows[1:])}
    assert sum(_hours(r[1]) for r in _csv(client, "/statistics/hours_by_category.csv")[1:]) == \
        pytest.approx(sum(by_month.values()) / 60)

    # Groups, projects and the backlog: only the county's.
    assert {r[0] for r in _csv(client, "/statistics/top_groups.csv")[1:]} <= groups_here
    assert sum(int(v) for r in _csv(client, "/statistics/projects.csv")[1:] for v in r[1:]) == projects_here
    assert sum(int(r[1]) for r in _csv(client, "/statistics/review_backlog.csv")[1:]) == pending_here
    assert _number(html, "pending-registrations", "data-value") == pending_here

    # Civil units and communities of the county only (the lists and their downloads).
    assert {r[0] for r in _csv(client, "/statistics/civil_units.csv")[1:]} == \
        {name for name, u in units.items() if u.group_id is not None}
    assert {r[0] for r in _csv(client, "/statistics/civil_units_without_group.csv")[1:]} == \
        {name for name, u in units.items() if u.group_id is None}
    assert {r[1] for r in _csv(client, "/statistics/communities_without_group.csv")[1:]} <= communities


def test_civil_unit_kpi__members_over_staff_headcount(app):
    _rebuild(app)
    client = _client(app, "kaifeng_officer")
    listed = _csv(client, "/statistics/civil_units.csv")[1:]
    rates = [float(r[4]) for r in listed if r[4]]
    assert rates == sorted(rates) and all(r[4] for r in listed[:len(rates)])  # lowest first, unknown last
    rows = {r[0]: r for r in listed}
    with app.app_context():
        for unit in db.session.scalars(select(CivilUnit).where(CivilUnit.group_id.is_not(None),
                                                               under(CivilUnit.region_path, KAIFENG))):
            members = db.session.scalar(select(func.count()).select_from(Membership).where(
                Membership.group_id == unit.group_id, Membership.status == "active"))
            row = rows.pop(unit.name)
            assert (int(row[2]), int(row[3])) == (members, unit.staff_headcount)
            assert float(row[4]) == round(100 * members / unit.staff_headcount, 2) and float(row[5]) == 100.0
    assert not rows


def test_lists__capped_on_screen_complete_in_the_download(app, monkeypatch):
    from app.charts import queries

    monkeypatch.setattr(queries, "LIST_LIMIT", 2)
    client = _client(app, "kaifeng_officer")
    html = _page(client, "/statistics/")
    with app.app_context():
        bare = db.session.scalar(select(func.count()).select_from(Region).where(
            Region.level == 5, under(Region.path, KAIFENG)))  # the demo registers no group at a community
    listed = re.search(r'id="list-communities_without_group".*?</table>', html, re.S).group(0)
    assert listed.count("<tr>") == 1 + 2
    assert len(_csv(client, "/statistics/communities_without_group.csv")) == 1 + bare > 3


def test_period__month_quarter_custom_and_a_bad_one(app):
    client = _client(app, "kaifeng_officer")
    year = today().year
    assert [r[0] for r in _csv(client, f"/statistics/hours_by_month.csv?period=month&on={year}-03")[1:]] == \
        [f"{year}-03"]
    assert [r[0] for r in _csv(client, f"/statistics/new_volunteers.csv?period=quarter&on={year}-Q2")[1:]] == \
        [f"{year}-04", f"{year}-05", f"{year}-06"]
    start, end = date(year, 2, 10), date(year, 4, 5)
    rows = _csv(client, f"/statistics/hours_by_month.csv?period=custom&from={start}&to={end}")
    with app.app_context():
        expected = _minutes(KAIFENG, start, end)
    assert sum(round(_hours(r[1]) * 60) for r in rows[1:]) == expected
    html = _page(client, "/statistics/?period=month&on=2026-13")
    assert f'<span id="period-label">{year}</span>' in html  # this year instead, and a warning


def test_hours_by_region__counties_of_a_prefecture_none_for_a_county(app):
    """Hours are kept per county: a prefecture's chart splits them by county (each equal to
    SQL); a county's streets have no rollups, so a county officer gets no such chart."""
    _rebuild(app)
    start, end = _year()
    rows = _csv(_client(app, "kaifeng_officer"), "/statistics/hours_by_region.csv")[1:]
    with app.app_context():
        counties = db.session.execute(select(Region.name, Region.path).where(
            Region.parent_id == select(Region.id).where(Region.path == KAIFENG).scalar_subquery())).all()
        expected = {name: _minutes(path, start, end) for name, path in counties}
    got = {r[0]: round(_hours(r[1]) * 60) for r in rows}
    assert sum(expected.values()) > 0 and expected[LONGTING_NAME] > 0
    assert {name: got.get(name, 0) for name in expected} == expected
    county = _client(app, "longting_officer")
    assert county.get("/statistics/hours_by_region.csv").status_code == 404
    assert 'data-target="figure-hours_by_region"' not in _page(county, "/statistics/")
    assert 'data-target="figure-hours_by_region"' in _page(_client(app, "kaifeng_officer"), "/statistics/")


def test_review_backlog__ages_in_working_days_per_registration(app):
    """The backlog counts pending registrations per local day of submission in SQL and ages
    each day once: the same ages as counting registration by registration."""
    from app.services import workdays

    with app.app_context():
        pending = list(db.session.scalars(select(Volunteer).where(
            Volunteer.status == "pending", under(Volunteer.region_path, KAIFENG)).order_by(Volunteer.id)))
        assert len(pending) >= 3
        now = utcnow()
        for n, volunteer in enumerate(pending):  # several on one day, one past midnight Beijing time
            volunteer.submitted_on = now - timedelta(days=[1, 1, 4, 9, 30][n % 5], hours=n % 2 * 3)
        db.session.commit()
        ages = workdays.ages_in_workdays([workdays.local_date(v.submitted_on) for v in pending], today())
        limit = workdays.review_limit()
    expected = {str(n): 0 for n in range(limit + 1)} | {"over": 0}
    for age in ages:
        expected["over" if age > limit else str(age)] += 1
    rows = _csv(_client(app, "kaifeng_officer"), "/statistics/review_backlog.csv")[1:]
    assert [int(r[1]) for r in rows] == list(expected.values()) and sum(expected.values()) == len(pending)


def test_xlsx__the_same_numbers_as_the_csv(app):
    client = _client(app, "kaifeng_officer")
    resp = client.get("/statistics/volunteers.xlsx")
    assert resp.status_code == 200 and "spreadsheetml" in resp.mimetype
    sheet = load_workbook(io.BytesIO(resp.get_data())).active
    cells = [[str(c) for c in row] for row in sheet.iter_rows(values_only=True)]
    assert cells == _csv(client, "/statistics/volunteers.csv")


def test_drill_down__links_to_each_child_region_with_the_period(app):
    html = _page(_client(app, "henan_officer"), "/statistics/?period=quarter&on=2026-Q3")
    assert 'href="/statistics/?region=410200&amp;period=quarter&amp;on=2026-Q3"' in html
    figure = re.search(r'data-target="figure-volunteers"[^>]*>(.*?)</script>', html, re.S).group(1)
    links = json.loads(figure)["data"][0]["customdata"]  # a click on a bar goes there too
    assert "/statistics/?region=410200&period=quarter&on=2026-Q3" in links
    assert '<option value="410200">开封市</option>' in html  # the child-region picker


# --- After writes, transfers and corrections ---


def test_totals__follow_writes_transfers_and_corrections_after_rebuild(app):
    """Change the facts (a registration approved, a move from 顺河回族区 to 龙亭区, a record
    and a correction), rebuild the rollups: every dashboard's totals still equal SQL."""
    with app.app_context():
        day = today()
        pending = db.session.scalar(select(Volunteer).where(Volunteer.status == "pending").limit(1))
        pending.status, pending.approved_on = "approved", utcnow()
        mover = db.session.scalar(select(Volunteer).where(Volunteer.status == "approved",
                                                          under(Volunteer.region_path, SHUNHE)).limit(1))
        community = db.session.scalar(select(Region).where(Region.code == "410202001001"))
        mover.region_id, mover.region_path = community.id, community.path
        original = db.session.scalar(select(ServiceRecord).where(
            ServiceRecord.status == "approved", ServiceRecord.source != RecordSource.CORRECTION,
            ServiceRecord.group_id.is_not(None), under(ServiceRecord.region_path, LONGTING),
            ServiceRecord.served_on >= date(day.year, 1, 1)).limit(1))
        fields = dict(volunteer_id=original.volunteer_id, volunteer_name=original.volunteer_name,
                      project_id=original.project_id, position_id=original.position_id, group_id=original.group_id,
                      group_path=original.group_path, region_id=original.region_id,
                      region_path=original.region_path, served_on=original.served_on, status="approved")
        db.session.add(ServiceRecord(**fields, minutes=-45, source=RecordSource.CORRECTION, corrects_id=original.id,
                                     reason="test"))
        shunhe_record = db.session.scalar(select(ServiceRecord).where(
            ServiceRecord.status == "approved", ServiceRecord.group_id.is_not(None),
            under(ServiceRecord.region_path, SHUNHE)).limit(1))
        db.session.add(ServiceRecord(**{**fields, "volunteer_id": shunhe_record.volunteer_id,
                                        "project_id": shunhe_record.project_id,
                                        "position_id": shunhe_record.position_id,
                                        "group_id": shunhe_record.group_id, "group_path": shunhe_record.group_path,
                                        "region_id": shunhe_record.region_id,
                                        "region_path": shunhe_record.region_path,
                                        "served_on": day - timedelta(days=1)},
                                     minutes=95, source=RecordSource.GROUP_ENTRY))
        db.session.commit()
    _rebuild(app)
    start, end = _year()
    client = _client(app, "henan_officer")
    for path in (HENAN, KAIFENG, LONGTING, SHUNHE):
        html = _page(client, f"/statistics/?region={CODES[path]}")
        with app.app_context():
            assert _number(html, "total-volunteers", "data-value") == _volunteers(path), path
            assert _number(html, "total-hours", "data-minutes") == _minutes(path, start, end), path


def _top_groups(path: str, start: date, end: date) -> list[tuple[str, int]]:
    """The ten groups of ``path`` with the most approved minutes served in [start, end]."""
    total = func.sum(ServiceRecord.minutes)
    rows = db.session.execute(
        select(VolunteerGroup.name, total).join(VolunteerGroup, VolunteerGroup.id == ServiceRecord.group_id)
        .where(ServiceRecord.status == "approved", under(VolunteerGroup.region_path, path),
               ServiceRecord.served_on >= start, ServiceRecord.served_on <= end)
        .group_by(ServiceRecord.group_id, VolunteerGroup.name).having(total > 0)
        .order_by(total.desc(), ServiceRecord.group_id).limit(10))
    return [(name, int(minutes)) for name, minutes in rows]


def test_top_groups__each_period_kind_equals_direct_sql(app):
    """Top groups read a year's or quarter's row per group (stat_group_period) and sum
    months otherwise: each kind's download equals the records' sums."""
    _rebuild(app)
    year = today().year
    quarter = (today().month - 1) // 3 + 1
    first = date(year, 3 * quarter - 2, 1)
    client = _client(app, "henan_officer")
    for query, start, end in (
            (f"period=year&on={year}", date(year, 1, 1), date(year, 12, 31)),
            (f"period=quarter&on={year}-Q{quarter}", first,
             date(year, 3 * quarter, calendar.monthrange(year, 3 * quarter)[1])),
            (f"period=month&on={year}-{today().month:02d}", today().replace(day=1), today())):
        rows = _csv(client, f"/statistics/top_groups.csv?{query}")[1:]
        with app.app_context():
            expected = _top_groups(HENAN, start, end)
        assert expected, query
        assert [(name, round(_hours(hours) * 60)) for name, hours in rows] == expected, query


# --- Group admins: their groups only ---


def _group_id(app, name) -> int:
    with app.app_context():
        return db.session.scalar(select(VolunteerGroup.id).where(VolunteerGroup.name == name))


def test_group_dashboard__own_group_and_children_only(app):
    _rebuild(app)
    team, corps = _group_id(app, "北书店街道社区志愿服务队"), _group_id(app, "龙亭区志愿服务总队")
    shunhe_team = _group_id(app, "清平街道社区志愿服务队")
    client = _client(app, "longting_team_admin")
    html = _page(client, "/statistics/group/")
    assert f'data-group="{team}"' in html
    picker = re.search(r'<select[^>]*id="group-select".*?</select>', html, re.S).group(0)
    assert re.findall(r'value="(\d+)"', picker) == [str(team)]
    for other in (corps, shunhe_team):  # a parent group and another county's team
        assert client.get(f"/statistics/group/?group={other}").status_code == 404
        assert client.get(f"/statistics/group/hours.csv?group={other}").status_code == 404
    assert client.get("/statistics/group/?group=x").status_code == 404

    corps_admin = _client(app, "longting_corps_admin")  # a parent reads its child team
    assert _page(corps_admin, f"/statistics/group/?group={team}").count(f'data-group="{team}"') == 1
    assert corps_admin.get(f"/statistics/group/?group={shunhe_team}").status_code == 404


def test_group_dashboard__numbers_of_the_group_equal_direct_sql(app):
    _rebuild(app)
    team = _group_id(app, "北书店街道社区志愿服务队")
    start, end = _year()
    client = _client(app, "longting_team_admin")
    html = _page(client, f"/statistics/group/?group={team}")
    with app.app_context():
        by_month = _minutes_by_month(ServiceRecord.group_id == team, start, end)
        per_volunteer: dict[str, int] = defaultdict(int)
        for name, number, minutes in db.session.execute(
                select(ServiceRecord.volunteer_name, ServiceRecord.volunteer_no, ServiceRecord.minutes).where(
                    ServiceRecord.group_id == team, ServiceRecord.status == "approved",
                    ServiceRecord.served_on >= start, ServiceRecord.served_on <= end)):
            per_volunteer[f"{name} ({number})"] += minutes
        members = db.session.scalar(select(func.count()).select_from(Membership).where(
            Membership.group_id == team, Membership.status == "active"))
        projects = db.session.scalar(select(func.count()).select_from(Project).where(Project.group_id == team))
    assert _number(html, "total-hours", "data-minutes") == sum(by_month.values()) > 0
    rows = _csv(client, f"/statistics/group/hours.csv?group={team}")
    assert {r[0]: _hours(r[1]) for r in rows[1:] if _hours(r[1])} == {m: round(v / 60, 2) for m, v in by_month.items()}
    top = _csv(client, f"/statistics/group/top_volunteers.csv?group={team}")[1:]
    assert top and all(round(per_volunteer[name] / 60, 2) == _hours(hours) for name, hours in top)
    assert min(_hours(h) for _, h in top) * 60 >= sorted(per_volunteer.values())[-len(top)] - 1
    members_rows = _csv(client, f"/statistics/group/members.csv?group={team}&period=year&on={end.year}")
    assert int(members_rows[-1][1]) == members  # the roster at the end of the year
    assert sum(int(v) for r in _csv(client, f"/statistics/group/group_projects.csv?group={team}")[1:]
               for v in r[1:]) == projects


# --- A volunteer: their own records only ---


def test_my_statistics__own_records_only(app):
    start, end = _year()
    client = _client(app, "vol_longting")
    html = _page(client, "/statistics/me/")
    with app.app_context():
        me = db.session.scalar(select(Volunteer).join(User, User.id == Volunteer.user_id)
                               .where(User.username == "vol_longting"))
        mine = _minutes_by_month(ServiceRecord.volunteer_id == me.id, start, end)
    assert _number(html, "total-hours", "data-minutes") == sum(mine.values()) > 0
    rows = _csv(client, "/statistics/me/my_hours_by_month.csv")
    assert {r[0]: _hours(r[1]) for r in rows[1:] if _hours(r[1])} == {m: round(v / 60, 2) for m, v in mine.items()}
    assert sum(_hours(r[1]) for r in _csv(client, "/statistics/me/my_hours_by_category.csv")[1:]) == \
        pytest.approx(sum(mine.values()) / 60)
    assert client.get("/statistics/me/hours_by_month.csv").status_code == 404  # the officers' figure


# --- Speed: the query count does not grow with the data ---


def _statements(app, client, url) -> list[str]:
    return statements_of(app, client, url)


def _grow(app, copies: int) -> None:
    """Copy approved records and volunteers' memberships into more rows, then rebuild."""
    with app.app_context():
        records = db.session.scalars(select(ServiceRecord).where(
            ServiceRecord.status == "approved", ServiceRecord.source != RecordSource.CORRECTION,
            ServiceRecord.group_id.is_not(None)).limit(40)).all()
        for n in range(copies):
            for r in records:
                db.session.add(ServiceRecord(
                    volunteer_id=r.volunteer_id, volunteer_name=r.volunteer_name, project_id=r.project_id,
                    position_id=r.position_id, group_id=r.group_id, group_path=r.group_path, region_id=r.region_id,
                    region_path=r.region_path, served_on=r.served_on - timedelta(days=30 * (n + 1)), minutes=30,
                    source=RecordSource.GROUP_ENTRY, status="approved"))
        db.session.commit()
    _rebuild(app)


@pytest.mark.parametrize("username, url", [
    ("henan_officer", "/statistics/"), ("longting_officer", "/statistics/?region=410202001"),
    ("longting_team_admin", "/statistics/group/"), ("vol_longting", "/statistics/me/"),
])
def test_dashboards__query_count_does_not_grow_with_the_data(app, username, url):
    client = _client(app, username)
    before = _statements(app, client, url)
    _grow(app, 3)
    after = _statements(app, client, url)
    assert len(after) == len(before), "\n".join(after)


def test_dashboards__the_same_query_count_for_province_and_county(app):
    client = _client(app, "henan_officer")
    assert len(_statements(app, client, "/statistics/?region=410000")) == \
        len(_statements(app, client, "/statistics/?region=410202"))


def test_scope_helpers__group_admin_bindings(app):
    """The ground truth of the group tests: the demo binds longting_team_admin to one team."""
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "longting_team_admin"))
        paths = db.session.scalars(select(VolunteerGroup.group_path).join(GroupAdmin).where(
            GroupAdmin.user_id == user.id)).all()
        team = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == "北书店街道社区志愿服务队"))
        assert paths == [team.group_path]
        assert not any(path_is_under(g.group_path, team.group_path) for g in db.session.scalars(
            select(VolunteerGroup).where(VolunteerGroup.id != team.id)))


def test_province__reads_prefecture_rows_with_the_numbers_of_the_facts(app):
    """河南省 reads the prefecture rows (``…@pref``: a bounded number however many counties
    and communities are filled), 开封市 the county rows; both equal the facts: groups by
    type and tier, volunteers by gender, age and star level, by child region, new
    volunteers and minutes per month."""
    from app.charts import queries

    _rebuild(app)
    client = _client(app, "henan_officer")
    with app.app_context():
        for path in (HENAN, KAIFENG):
            area = queries.Area.of(db.session.scalar(select(Region).where(Region.path == path)))
            assert area.reads_prefectures == (path == HENAN)
            kids = queries.child_areas(area)
            groups = db.session.execute(
                select(VolunteerGroup.group_type, Region.level, func.count())
                .join(Region, Region.id == VolunteerGroup.region_id)
                .where(VolunteerGroup.status == "approved", under(VolunteerGroup.region_path, path))
                .group_by(VolunteerGroup.group_type, Region.level)).all()
            assert sorted((g.group_type, g.level, g.count) for g in queries.groups_by_type_and_tier(area)) == \
                sorted((t, level, n) for t, level, n in groups), path
            approved = select(Volunteer).where(Volunteer.status == "approved", under(Volunteer.region_path, path))
            people = db.session.scalars(approved).all()
            breakdowns = queries.volunteer_breakdowns(area)
            assert breakdowns[queries.VOL_GENDER] == dict(Counter(v.gender or queries.UNKNOWN for v in people))
            assert sum(breakdowns[queries.VOL_BIRTH].values()) == sum(breakdowns[queries.VOL_STAR].values()) \
                == len(people) > 0
            by_child = {r.code: r.value for r in queries.volunteers_by_child(area, kids)}
            for kid in kids:
                assert by_child[kid.code] == _volunteers(kid.path), (path, kid.code)
            period = queries.parse_period({"period": "year", "on": str(today().year)}, today())
            sums = queries.minute_sums(area, period, kids)
            start, end = _year()
            for kid in kids:
                assert sums.by_child.get(kid.path, 0) == _minutes(kid.path, start, end)
            assert {m.month: m.value for m in queries.minutes_by_month(sums, period)} == \
                {m: _minutes_by_month(under(ServiceRecord.region_path, path), start, end).get(m, 0)
                 for m in period.months}
        # The whole platform (the admin's view) reads the prefecture rows of every province.
        everywhere = queries.EVERYWHERE
        assert everywhere.reads_prefectures
        provinces = queries.child_areas(everywhere)
        assert sum(r.value for r in queries.volunteers_by_child(everywhere, provinces)) == db.session.scalar(
            select(func.count()).select_from(Volunteer).where(Volunteer.status == "approved"))
        assert sum(g.count for g in queries.groups_by_type_and_tier(everywhere)) == db.session.scalar(
            select(func.count()).select_from(VolunteerGroup).where(VolunteerGroup.status == "approved"))
        assert queries.minute_sums(everywhere, period, provinces).total == int(db.session.scalar(
            select(func.coalesce(func.sum(ServiceRecord.minutes), 0)).where(
                ServiceRecord.status == "approved", ServiceRecord.served_on >= start, ServiceRecord.served_on <= end)))
        now = utcnow()
        assert sorted(queries.projects_by_category_and_status(everywhere, now), key=repr) == \
            sorted(queries._project_counts(true(), now), key=repr)
        # Which rows each reads: without the county rows 河南省 keeps its numbers and 开封市 has none.
        henan, kaifeng = (queries.Area.of(db.session.scalar(select(Region).where(Region.path == p)))
                          for p in (HENAN, KAIFENG))
        before = queries.minute_sums(henan, period, queries.child_areas(henan))
        groups_before = queries.groups_by_type_and_tier(henan)
        for model in (StatMonth, StatTotal):
            db.session.execute(delete(model).where(model.metric.not_like("%@pref")))
        assert queries.minute_sums(henan, period, queries.child_areas(henan)) == before
        assert queries.groups_by_type_and_tier(henan) == groups_before and before.total > 0
        assert queries.minute_sums(kaifeng, period, queries.child_areas(kaifeng)).total == 0
        assert queries.groups_by_type_and_tier(kaifeng) == []
        db.session.rollback()
    assert _page(client, "/statistics/?region=410000")


def test_province_projects_by_status__equal_the_project_table_at_any_moment(app):
    """河南省 counts its projects by status from the days they left 未开始 and closed; at
    every moment tried — now, a second before and after projects start, end and are closed
    (so that some of them fall on "today"), local midnights, long ago, far ahead — the
    counts equal the status read off ``project`` directly (what a prefecture shows); and
    after an officer suspends a running project (closed from then on), now and later."""
    from app.charts import queries
    from app.services import projects

    def compare(area, now):
        kept = sorted(queries.projects_by_category_and_status(area, now), key=repr)
        assert kept == sorted(queries._project_counts(under(Project.region_path, HENAN), now), key=repr), now
        return kept

    with acting(app, "admin"):  # one project closed by hand (before its end) first
        projects.close_project(next(p for p in db.session.scalars(
            select(Project).where(under(Project.region_path, HENAN)).order_by(Project.id.desc())) if not p.is_closed()))
        db.session.commit()
    with app.app_context():
        henan = queries.Area.of(db.session.scalar(select(Region).where(Region.path == HENAN)))
        assert henan.reads_prefectures
        rows = db.session.execute(select(Project.starts_at, Project.ends_at, Project.closed_on)
                                  .where(under(Project.region_path, HENAN))).all()
        assert any(r.closed_on for r in rows) and len(rows) > 5
        second, eight = timedelta(seconds=1), timedelta(hours=8)
        moments = {utcnow(), datetime(2000, 1, 1), datetime(2100, 1, 1)}
        for row in rows:
            for moment in filter(None, row):
                midnight = datetime.combine((moment + eight).date(), datetime.min.time()) - eight  # local, in UTC
                moments |= {moment - second, moment, moment + second, midnight - second, midnight}
        for now in sorted(moments):
            compare(henan, now)
        assert {c.status for c in compare(henan, utcnow())} >= {"closed", "open"}
    with acting(app, "henan_officer"):
        running = next(p for p in db.session.scalars(select(Project).where(under(Project.region_path, HENAN))
                                                     .order_by(Project.id)) if not p.is_closed())
        projects.suspend_projects([running])
        db.session.commit()
        for now in (utcnow(), utcnow() + timedelta(days=1), utcnow() + timedelta(days=400)):
            compare(henan, now)
