"""统计分析 pages: the officer dashboard (/statistics/), the group dashboard
(/statistics/group/), a volunteer's own statistics (/statistics/me/), every figure's
download as CSV and Excel (``/<page>/<figure>.csv|.xlsx`` with the page's query
string), and plotly.min.js served from the installed plotly package.

Glue only: the scope is checked here (``queries.resolve_area`` / ``resolve_group``:
404 outside it), labels are translated here, numbers come from app/charts/queries.py
and figures from app/charts/figures.py. One chart builder feeds both the page and
the download, and the download is ``figures.table_of`` the figure drawn (or the
chart's own table of the same rows), so a file carries exactly the numbers on screen.
"""
from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

import plotly
from flask import abort, current_app, flash, g, make_response, request, send_file, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext
from markupsafe import Markup

from app.charts import figures, queries
from app.charts.figures import Table
from app.models import GroupType, Region
from app.security.permissions import (
    ACTION_APPLY, ACTION_READ, ACTION_WRITE, RESOURCE_REPORTS, RESOURCE_SERVICE_RECORD, RESOURCE_VOLUNTEER_GROUP,
)
from app.security.scope import current_scope
from app.services import clock
from app.services import volunteers as volunteer_service
from app.services.projects import ProjectStatus
from app.services.record_exchange import csv_bytes
from app.services.rollups import quarter_key, year_key
from app.views.roster import attachment_header
from app.views.user_center import SERVICE_CATEGORY_LABELS

PLOTLY_VERSION = plotly.offline.get_plotlyjs_version()
PLOTLY_PATH = os.path.join(os.path.dirname(plotly.__file__), "package_data", "plotly.min.js")
ONE_YEAR = 31_536_000
REGISTRATION_RATE_TARGET = 0.13  # the seed city's target; config REGISTRATION_RATE_TARGET overrides it
CIVIL_UNIT_TARGET = 1.0  # every staff member of a civil unit registered
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --- plotly.min.js, from the installed package ---


def plotly_js(version: str):
    """plotly.min.js of the installed plotly package; the version in the URL lets it be
    cached for a year (a new package means a new URL)."""
    if version != PLOTLY_VERSION:
        abort(404)
    response = send_file(PLOTLY_PATH, mimetype="text/javascript", max_age=ONE_YEAR, conditional=True)
    response.headers["Cache-Control"] = f"public, max-age={ONE_YEAR}, immutable"
    return response


def plotly_url() -> str:
    return url_for("plotly_js", version=PLOTLY_VERSION)


# --- Charts: what a page shows and a download carries ---


@dataclass
class Chart:
    """One figure (or list) of a page: its table is what the downloads carry."""

    name: str
    title: str
    table: Table
    figure: figures.Figure | None = None  # Plotly's JSON form ({data, layout}), or None for a list
    links: list[tuple[str, str]] = field(default_factory=list)  # drill-down: (region name, URL)
    note: str = ""
    shown: list[list] | None = None  # a list's rows on screen (the download has all)
    total: int | None = None  # a list's full length
    below_target: list[tuple[str, float | None]] = field(default_factory=list)  # KPI: who misses it

    @property
    def screen_rows(self) -> list[list]:
        """The table under a figure, on screen: at most a list's length (a KPI of every
        civil unit of a province is long); the download has every row."""
        return self.table.rows[:queries.LIST_LIMIT]

    @property
    def figure_json(self) -> Markup | None:
        """The figure as JSON safe inside <script type="application/json">: names are
        user data, so "<", ">" and "&" are escaped (no "</script>" can close it)."""
        if self.figure is None:
            return None
        text = figures.to_json(self.figure)
        for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                              ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
            text = text.replace(char, escaped)
        return Markup(text)


def _category_label(key: str) -> str:
    return str(SERVICE_CATEGORY_LABELS.get(key, key)) if key else gettext("Unknown")


def _send_table(chart: Chart, fmt: str, title: str):
    """The chart's table as a CSV or an .xlsx (text cells written as text)."""
    name = f"{title} {chart.title}.{fmt}"
    if fmt == "csv":
        # Text that a spreadsheet would run as a formula gets an apostrophe; numbers stay
        # numbers (a correction's negative hours are no formula).
        response = make_response(csv_bytes(chart.table.columns, chart.table.rows, keep_numbers=True))
        response.mimetype = "text/csv"
    else:
        from openpyxl import Workbook

        from app.services.rosters import text_cells

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("".join(c for c in chart.title if c not in "[]:*?/\\")[:31] or "Sheet1")
        sheet.append(text_cells(sheet, chart.table.columns))
        for row in chart.table.rows:
            sheet.append(text_cells(sheet, row))
        out = io.BytesIO()
        workbook.save(out)
        response = make_response(out.getvalue())
        response.mimetype = XLSX
    response.headers["Content-Disposition"] = attachment_header(name)
    response.headers["Cache-Control"] = "no-store"
    return response


def _period_or_default(today: date) -> queries.Period:
    period = queries.parse_period(request.args, today)
    if period is None:
        flash(gettext("The period was not understood; showing this year."), "warning")
        period = queries.parse_period({}, today)
    return period


def _period_label(period: queries.Period) -> str:
    if period.kind == "custom":
        return f"{period.start.isoformat()} – {period.end.isoformat()}"
    return period.on


class Page:
    """What every statistics page shares: the period, the chart builders by name."""

    builders: dict[str, Callable] = {}

    def __init__(self, period: queries.Period):
        self.period = period
        self.full = False  # a download: lists in full, not capped for the screen

    def charts(self) -> list[Chart]:
        return [c for c in (builder(self) for builder in self.builders.values()) if c is not None]

    def chart(self, name: str) -> Chart:
        """One chart by name, for its download (lists in full); 404 for an unknown name."""
        self.full = True
        builder = self.builders.get(name)
        chart = builder(self) if builder else None
        if chart is None:
            abort(404)
        return chart


def chart(registry: dict):
    """Register a chart builder under its function's name."""
    def wrap(fn):
        registry[fn.__name__] = fn
        return fn
    return wrap


# --- The officer dashboard ---

REGION_CHARTS: dict[str, Callable] = {}


class RegionPage(Page):
    """The officer dashboard of one region and period; queries run when a chart asks."""

    builders = REGION_CHARTS

    def __init__(self, scope, area: queries.Area, period: queries.Period, roots: list[queries.Area]):
        super().__init__(period)
        self.scope, self.area, self.roots = scope, area, roots
        self.today = clock.today()
        self.now = clock.utcnow()
        self.area_name = area.name or gettext("All regions")

    @cached_property
    def kids(self) -> list[queries.Area]:
        return queries.child_areas(self.area)

    @cached_property
    def volunteers(self) -> list[queries.RegionValue]:
        return queries.volunteers_by_child(self.area, self.kids)

    @cached_property
    def breakdowns(self) -> dict[str, dict[str, int]]:
        return queries.volunteer_breakdowns(self.area)

    @cached_property
    def minutes(self) -> queries.MinuteSums:
        return queries.minute_sums(self.area, self.period, self.kids)

    @cached_property
    def backlog(self) -> list[queries.KeyValue]:
        return queries.review_backlog(self.area, self.today)

    @property
    def county_grain(self) -> bool:
        """Whether the figures kept per county can be shown here."""
        return not self.area.below_county

    def link(self, code: str) -> str:
        return url_for("StatisticsView.index", region=code, **self.period.args())

    def region_names(self, rows: list[queries.RegionValue]) -> list[str]:
        return [r.name if r.code else gettext("%(region)s itself", region=self.area_name) for r in rows]

    def region_links(self, rows: list[queries.RegionValue]) -> list[str]:
        return [self.link(r.code) if r.code else "" for r in rows]

    def drill_links(self) -> list[tuple[str, str]]:
        return [(k.name, self.link(k.code)) for k in self.kids]

    @property
    def total_volunteers(self) -> int:
        return sum(r.value for r in self.volunteers)

    @property
    def total_minutes(self) -> int | None:
        return self.minutes.total if self.county_grain else None

    @property
    def target(self) -> float:
        return float(current_app.config.get("REGISTRATION_RATE_TARGET", REGISTRATION_RATE_TARGET))


def _bar_chart(name: str, title: str, categories: list[str], values: list, *, series: str, x_label: str,
               y_label: str, drill: list[tuple[str, str]] | None = None, note: str = "", **options) -> Chart:
    """A chart of one series of bars, and its table: the numbers drawn, by ``x_label``."""
    fig = figures.bars(categories, [(series, values)], title=title, x_label=x_label, y_label=y_label, **options)
    return Chart(name, title, figures.table_of(fig, x_label), fig, links=drill or [], note=note)


def _stacked_chart(name: str, title: str, categories: list[str], series: list, *, x_label: str,
                   y_label: str) -> Chart:
    fig = figures.bars(categories, series, title=title, x_label=x_label, y_label=y_label, stacked=True)
    return Chart(name, title, figures.table_of(fig, x_label), fig)


@chart(REGION_CHARTS)
def volunteers(page: RegionPage) -> Chart:
    rows = page.volunteers
    return _bar_chart("volunteers", gettext("Registered volunteers by region"), page.region_names(rows),
                      [r.value for r in rows], series=gettext("Registered volunteers"), x_label=gettext("Region"),
                      y_label=gettext("Volunteers"), links=page.region_links(rows), drill=page.drill_links())


@chart(REGION_CHARTS)
def registration_rate(page: RegionPage) -> Chart:
    rows = [r for r in page.volunteers if r.code]
    if not rows:
        return None
    title = gettext("Registration rate by region")
    fig = figures.rate_bars([r.name for r in rows], [r.rate for r in rows], target=page.target, title=title,
                            x_label=gettext("Region"), y_label=gettext("Registered volunteers ÷ population (%)"),
                            rate_name=gettext("Registration rate (%)"), target_name=gettext("Target (%)"),
                            links=page.region_links(rows))
    goal = figures.percent(page.target)
    table = Table([gettext("Region"), gettext("Region code"), gettext("Registered volunteers"), gettext("Population"),
                   gettext("Registration rate (%)"), gettext("Target (%)")],
                  [[r.name, r.code, r.value, r.population, figures.percent(r.rate), goal] for r in rows])
    below = [(r.name, figures.percent(r.rate)) for r in rows if r.rate is not None and r.rate < page.target]
    missing = sum(1 for r in rows if r.rate is None)
    note = gettext("%(n)s regions have no population on record.", n=missing) if missing else ""
    return Chart("registration_rate", title, table, fig, links=page.drill_links(), below_target=below, note=note)


@chart(REGION_CHARTS)
def new_volunteers(page: RegionPage) -> Chart:
    if not page.county_grain:
        return None
    rows = queries.new_volunteers_by_month(page.area, page.period)
    return _bar_chart("new_volunteers", gettext("New volunteers per month"), [r.month for r in rows],
                      [r.value for r in rows], series=gettext("New volunteers"), x_label=gettext("Month"),
                      y_label=gettext("Volunteers"))


@chart(REGION_CHARTS)
def gender(page: RegionPage) -> Chart:
    if not page.county_grain:
        return None
    counts = page.breakdowns[queries.VOL_GENDER]
    keys = ["M", "F"] + ([queries.UNKNOWN] if counts.get(queries.UNKNOWN) else [])
    labels = {"M": gettext("Male"), "F": gettext("Female"), queries.UNKNOWN: gettext("Unknown")}
    title = gettext("Volunteers by gender")
    fig = figures.pie([labels[k] for k in keys], [counts.get(k, 0) for k in keys], title=title,
                      name=gettext("Volunteers"))
    return Chart("gender", title, figures.table_of(fig, gettext("Gender")), fig)


@chart(REGION_CHARTS)
def age_bands(page: RegionPage) -> Chart:
    if not page.county_grain:
        return None
    rows = queries.age_bands(page.breakdowns[queries.VOL_BIRTH], page.period.end.year)
    labels = {"under_18": gettext("Under 18"), "18_35": "18–35", "36_59": "36–59", "60_plus": gettext("60 and over"),
              queries.UNKNOWN: gettext("Unknown")}
    rows = [r for r in rows if r.key != queries.UNKNOWN or r.value]
    return _bar_chart("age_bands", gettext("Volunteers by age (in %(year)s)", year=page.period.end.year),
                      [labels[r.key] for r in rows], [r.value for r in rows], series=gettext("Volunteers"),
                      x_label=gettext("Age"), y_label=gettext("Volunteers"))


@chart(REGION_CHARTS)
def star_levels(page: RegionPage) -> Chart:
    if not page.county_grain:
        return None
    counts = page.breakdowns[queries.VOL_STAR]
    keys = [str(n) for n in range(6)]
    return _bar_chart("star_levels", gettext("Volunteers by star level"), [gettext("%(n)s stars", n=k) for k in keys],
                      [counts.get(k, 0) for k in keys], series=gettext("Volunteers"), x_label=gettext("Star level"),
                      y_label=gettext("Volunteers"))


@chart(REGION_CHARTS)
def groups(page: RegionPage) -> Chart:
    rows = queries.groups_by_type_and_tier(page.area)
    types = [t for t in GroupType if any(r.group_type == t for r in rows)]
    types += sorted({r.group_type for r in rows} - set(types))
    levels = sorted({r.level for r in rows})
    counts = {(r.group_type, r.level): r.count for r in rows}
    type_labels = GroupType.labels()
    return _stacked_chart("groups", gettext("Groups by type and tier"), [str(type_labels.get(t, t)) for t in types],
                          [(str(Region.LEVEL_LABELS.get(lv, lv)), [counts.get((t, lv), 0) for t in types])
                           for lv in levels], x_label=gettext("Group type"), y_label=gettext("Groups"))


def _projects_chart(rows: list[queries.ProjectCount], name: str) -> Chart:
    categories = sorted({r.category for r in rows}, key=lambda c: (c not in SERVICE_CATEGORY_LABELS, c))
    counts = {(r.category, r.status): r.count for r in rows}
    statuses = ProjectStatus.labels()
    return _stacked_chart(name, gettext("Projects by category and status"), [_category_label(c) for c in categories],
                          [(str(statuses[s]), [counts.get((c, s), 0) for c in categories]) for s in statuses],
                          x_label=gettext("Category"), y_label=gettext("Projects"))


@chart(REGION_CHARTS)
def projects(page: RegionPage) -> Chart:
    return _projects_chart(queries.projects_by_category_and_status(page.area, page.now), "projects")


def _monthly_hours(rows: list[queries.MonthValue], name: str, title: str) -> Chart:
    return _bar_chart(name, title, [r.month for r in rows], [figures.hours(r.value) for r in rows],
                      series=gettext("Hours"), x_label=gettext("Month"), y_label=gettext("Hours"))


def _category_hours(rows: list[queries.KeyValue], name: str, title: str) -> Chart:
    return _bar_chart(name, title, [_category_label(r.key) for r in rows], [figures.hours(r.value) for r in rows],
                      series=gettext("Hours"), x_label=gettext("Category"), y_label=gettext("Hours"))


@chart(REGION_CHARTS)
def hours_by_month(page: RegionPage) -> Chart:
    if not page.county_grain:
        return None
    return _monthly_hours(queries.minutes_by_month(page.minutes, page.period), "hours_by_month",
                          gettext("Approved service hours per month"))


@chart(REGION_CHARTS)
def hours_by_category(page: RegionPage) -> Chart:
    if not page.county_grain:
        return None
    rows = [r for r in queries.minutes_by_category(page.minutes, SERVICE_CATEGORY_LABELS) if r.value]
    return _category_hours(rows, "hours_by_category", gettext("Approved service hours by category"))


@chart(REGION_CHARTS)
def hours_by_region(page: RegionPage) -> Chart:
    if not page.kids or not page.area.splits_by_child:
        return None
    rows = queries.minutes_by_child(page.minutes, page.kids, page.area)
    return _bar_chart("hours_by_region", gettext("Approved service hours by region"), page.region_names(rows),
                      [figures.hours(r.value) for r in rows], series=gettext("Hours"), x_label=gettext("Region"),
                      y_label=gettext("Hours"), links=page.region_links(rows), drill=page.drill_links())


@chart(REGION_CHARTS)
def top_groups(page: RegionPage) -> Chart:
    rows = queries.top_groups(page.area, page.period)
    return _bar_chart("top_groups", gettext("Top %(n)s groups by service hours", n=queries.TOP_LIMIT),
                      [r.name for r in rows], [figures.hours(r.minutes) for r in rows], series=gettext("Hours"),
                      x_label=gettext("Group"), y_label=gettext("Hours"), horizontal=True,
                      note=gettext("Counted by whole months.") if page.period.kind == "custom" else "")


@chart(REGION_CHARTS)
def review_backlog(page: RegionPage) -> Chart:
    rows = page.backlog
    labels = [gettext("More than %(n)s", n=len(rows) - 2) if r.key == "over" else r.key for r in rows]
    return _bar_chart("review_backlog", gettext("Pending registrations by working days waited"), labels,
                      [r.value for r in rows], series=gettext("Registrations"),
                      x_label=gettext("Working days waited"), y_label=gettext("Registrations"))


@chart(REGION_CHARTS)
def civil_units(page: RegionPage) -> Chart:
    rows, total = queries.civil_units(page.area, None if page.full else queries.LIST_LIMIT)
    title = gettext("Civil units: registered staff")
    drawn = rows[:queries.LIST_LIMIT]
    fig = figures.rate_bars([r.name for r in drawn], [r.rate for r in drawn], target=CIVIL_UNIT_TARGET,
                            title=title, x_label=gettext("Civil unit"),
                            y_label=gettext("Members ÷ staff headcount (%)"),
                            rate_name=gettext("Staff registered (%)"), target_name=gettext("Target (%)"))
    goal = figures.percent(CIVIL_UNIT_TARGET)
    table = Table([gettext("Civil unit"), gettext("Region"), gettext("Members"), gettext("Staff headcount"),
                   gettext("Staff registered (%)"), gettext("Target (%)")],
                  [[r.name, r.region, r.members, r.headcount, figures.percent(r.rate), goal] for r in rows])
    note = (gettext("The %(n)s units with the lowest rate are drawn; the download lists all %(total)s.",
                    n=len(drawn), total=total) if total > len(drawn) else "")
    return Chart("civil_units", title, table, fig if rows else None, note=note, total=total,
                 shown=None if rows else [])


def _place_list(name: str, title: str, columns: list[str], rows: list[queries.NamedPlace], total: int,
                note: str) -> Chart:
    values = [[r.name, r.code, r.place] for r in rows]
    return Chart(name, title, Table(columns, values), None, shown=values[:queries.LIST_LIMIT], total=total,
                 note=note)


@chart(REGION_CHARTS)
def communities_without_group(page: RegionPage) -> Chart:
    total, bare = queries.community_counts(page.area)
    rows = queries.communities_without_group(page.area, None if page.full else queries.LIST_LIMIT)
    note = gettext("%(bare)s of %(total)s communities have no registered group.", bare=bare, total=total)
    return _place_list("communities_without_group", gettext("Communities without a registered group"),
                       [gettext("Community"), gettext("Region code"), gettext("Street")], rows, bare, note)


@chart(REGION_CHARTS)
def civil_units_without_group(page: RegionPage) -> Chart:
    total, bare = queries.civil_unit_counts(page.area)
    rows = queries.civil_units_without_group(page.area, None if page.full else queries.LIST_LIMIT)
    note = gettext("%(bare)s of %(total)s civil units have no registered group.", bare=bare, total=total)
    return _place_list("civil_units_without_group", gettext("Civil units without a registered group"),
                       [gettext("Civil unit"), gettext("Region code"), gettext("Region")], rows, bare, note)


def _period_choices(today: date) -> list[tuple[str, dict]]:
    """Quick picks: this month, quarter and year, and last year."""
    return [(gettext("This month"), {"period": "month", "on": f"{today.year}-{today.month:02d}"}),
            (gettext("This quarter"), {"period": "quarter", "on": quarter_key(today)}),
            (gettext("This year"), {"period": "year", "on": year_key(today)}),
            (gettext("Last year"), {"period": "year", "on": str(today.year - 1)})]


def _period_kinds() -> list[tuple[str, str]]:
    return [("month", gettext("Month")), ("quarter", gettext("Quarter")), ("year", gettext("Year")),
            ("custom", gettext("Custom"))]


class StatisticsView(BaseView):
    """统计分析 → 区域统计 (/statistics/): the officer's region, or a region below it
    (``?region=<code>``; outside the officer's regions: 404), for a period."""

    route_base = "/statistics"
    default_view = "index"
    class_permission_name = RESOURCE_REPORTS
    method_permission_name = {"index": ACTION_READ, "download": ACTION_READ}
    base_permissions = [f"can_{ACTION_READ}"]

    def _page(self) -> RegionPage:
        scope = current_scope()
        roots = queries.officer_areas(scope)
        area = queries.resolve_area(scope, request.args.get("region"), roots)
        return RegionPage(scope, area, _period_or_default(clock.today()), roots)

    @expose("/")
    @has_access
    def index(self):
        page = self._page()
        charts = page.charts()
        total_minutes = page.total_minutes
        rate = page.total_volunteers / page.area.population if page.area.population else None
        pending = sum(r.value for r in page.backlog)
        return self.render_template(
            "charts/dashboard.html", title=gettext("Region Statistics"), page=page, charts=charts,
            area_name=page.area_name, crumbs=[(c.name or gettext("All regions"), c.code)
                                              for c in queries.breadcrumb(page.area, page.roots)],
            roots=[(r.name, r.code) for r in page.roots] if len(page.roots) > 1 else [],
            kids=page.kids, period=page.period, period_label=_period_label(page.period),
            period_kinds=_period_kinds(), quick_periods=_period_choices(page.today),
            total_volunteers=page.total_volunteers, total_minutes=total_minutes,
            total_hours=figures.hours(total_minutes) if total_minutes is not None else None,
            rate=figures.percent(rate), target=figures.percent(page.target), pending=pending,
            keep={"region": page.area.code}, plotly_url=plotly_url(),
            download=lambda c, fmt: url_for(".download", name=c.name, fmt=fmt, region=page.area.code or None,
                                            **page.period.args()))

    @expose("/<string:name>.<any(csv, xlsx):fmt>")
    @has_access
    def download(self, name, fmt):
        page = self._page()
        chart = page.chart(name)
        return _send_table(chart, fmt, f"{page.area_name} {_period_label(page.period)}")


# --- The group dashboard ---

GROUP_CHARTS: dict[str, Callable] = {}


class GroupPage(Page):
    builders = GROUP_CHARTS

    def __init__(self, group, period: queries.Period):
        super().__init__(period)
        self.group = group

    @cached_property
    def minutes(self) -> list[queries.MonthValue]:
        return queries.group_minutes_by_month(self.group.id, self.period)


@chart(GROUP_CHARTS)
def members(page: GroupPage) -> Chart:
    rows = queries.group_members_by_month(page.group.id, page.period)
    title = gettext("Members over time")
    fig = figures.line([r.month for r in rows], [r.value for r in rows], title=title, x_label=gettext("Month"),
                       y_label=gettext("Members"), name=gettext("Members"))
    return Chart("members", title, figures.table_of(fig, gettext("Month")), fig)


@chart(GROUP_CHARTS)
def hours(page: GroupPage) -> Chart:
    return _monthly_hours(page.minutes, "hours",
                          gettext("Approved service hours per month"))


@chart(GROUP_CHARTS)
def group_projects(page: GroupPage) -> Chart:
    return _projects_chart(queries.group_projects_by_status(page.group.id, clock.utcnow()), "group_projects")


@chart(GROUP_CHARTS)
def top_volunteers(page: GroupPage) -> Chart:
    rows = queries.top_volunteers(page.group.id, page.period)
    return _bar_chart("top_volunteers", gettext("Top %(n)s volunteers by service hours", n=queries.TOP_LIMIT),
                      [f"{r.name} ({r.number})" if r.number else r.name for r in rows],
                      [figures.hours(r.minutes) for r in rows], series=gettext("Hours"),
                      x_label=gettext("Volunteer"), y_label=gettext("Hours"), horizontal=True)


class GroupStatisticsView(BaseView):
    """统计分析 → 团体统计 (/statistics/group/): one of the groups the user administers
    or a child of one (``?group=<id>``; any other: 404), for a period."""

    route_base = "/statistics/group"
    default_view = "index"
    class_permission_name = RESOURCE_VOLUNTEER_GROUP
    # Group admins edit their groups (团体信息); officers and volunteers do not.
    method_permission_name = {"index": ACTION_WRITE, "download": ACTION_WRITE}
    base_permissions = [f"can_{ACTION_WRITE}"]

    def _page(self) -> GroupPage:
        group = queries.resolve_group(current_scope(), request.args.get("group"))
        return GroupPage(group, _period_or_default(clock.today()))

    @expose("/")
    @has_access
    def index(self):
        scope = current_scope()
        if not (scope.everything or scope.group_paths):
            return self.render_template("charts/no_group.html", title=gettext("Group Statistics"))
        page = self._page()
        choices = queries.group_choices(scope)
        top = min((c.depth for c in choices), default=0)
        minutes = sum(r.value for r in page.minutes)
        return self.render_template(
            "charts/group.html", title=gettext("Group Statistics"), page=page, charts=page.charts(),
            group=page.group, choices=[(c.id, c.name, c.depth - top) for c in choices],
            more_groups=len(choices) >= queries.GROUP_PICKER_LIMIT, period=page.period,
            period_label=_period_label(page.period), period_kinds=_period_kinds(),
            quick_periods=_period_choices(clock.today()), total_minutes=minutes, total_hours=figures.hours(minutes),
            keep={"group": page.group.id}, plotly_url=plotly_url(),
            download=lambda c, fmt: url_for(".download", name=c.name, fmt=fmt, group=page.group.id,
                                            **page.period.args()))

    @expose("/<string:name>.<any(csv, xlsx):fmt>")
    @has_access
    def download(self, name, fmt):
        page = self._page()
        return _send_table(page.chart(name), fmt, f"{page.group.name} {_period_label(page.period)}")


# --- A volunteer's own statistics ---

MY_CHARTS: dict[str, Callable] = {}


class MyPage(Page):
    builders = MY_CHARTS

    def __init__(self, volunteer_id: int, period: queries.Period):
        super().__init__(period)
        self.volunteer_id = volunteer_id

    @cached_property
    def minutes(self) -> queries.MinuteSums:
        return queries.my_minute_sums(self.volunteer_id, self.period)


@chart(MY_CHARTS)
def my_hours_by_month(page: MyPage) -> Chart:
    return _monthly_hours(queries.minutes_by_month(page.minutes, page.period), "my_hours_by_month",
                          gettext("My service hours per month"))


@chart(MY_CHARTS)
def my_hours_by_category(page: MyPage) -> Chart:
    rows = [r for r in queries.minutes_by_category(page.minutes, SERVICE_CATEGORY_LABELS) if r.value]
    return _category_hours(rows, "my_hours_by_category", gettext("My service hours by category"))


class MyStatisticsView(BaseView):
    """统计分析 → 我的统计 (/statistics/me/): the volunteer's own approved hours in a
    period, per month and per service category."""

    route_base = "/statistics/me"
    default_view = "index"
    class_permission_name = RESOURCE_SERVICE_RECORD
    # Volunteers apply for hours; group admins and officers do not hold this.
    method_permission_name = {"index": ACTION_APPLY, "download": ACTION_APPLY}
    base_permissions = [f"can_{ACTION_APPLY}"]

    def _page(self) -> MyPage | None:
        volunteer = volunteer_service.volunteer_of_user(g.user)
        if volunteer is None:
            return None
        return MyPage(volunteer.id, _period_or_default(clock.today()))

    @expose("/")
    @has_access
    def index(self):
        page = self._page()
        if page is None:
            return self.render_template("user_center/no_volunteer.html", title=gettext("My Statistics"))
        minutes = page.minutes.total
        return self.render_template(
            "charts/me.html", title=gettext("My Statistics"), page=page, charts=page.charts(), period=page.period,
            period_label=_period_label(page.period), period_kinds=_period_kinds(),
            quick_periods=_period_choices(clock.today()), total_minutes=minutes, total_hours=figures.hours(minutes),
            plotly_url=plotly_url(),
            download=lambda c, fmt: url_for(".download", name=c.name, fmt=fmt, **page.period.args()))

    @expose("/<string:name>.<any(csv, xlsx):fmt>")
    @has_access
    def download(self, name, fmt):
        page = self._page()
        if page is None:
            abort(404)
        return _send_table(page.chart(name), fmt, _period_label(page.period))
