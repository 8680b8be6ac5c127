"""Statistics queries (统计分析): scoped aggregates returning plain rows.

Every function takes what the caller has already checked against the user's scope:
an ``Area`` from ``resolve_area`` (officers), a group from ``resolve_group`` (group
admins) or the user's own volunteer id; none reads the request or the user.

The officer dashboard reads the rollup tables (app/models.py "Statistics",
app/services/rollups.py): county × day is the finest grain and a larger region reads
the sum over its path range (``scope.under``); a period of whole months reads the
monthly sums (``StatMonth``) and the days only for a custom period's partial months,
and top groups of a year or quarter read one row per group (``StatGroupPeriod``); a
province reads the prefecture rows (``Area.reads_prefectures``), its projects by status
from their days of status change and its communities with a group from the covered
counts. A few fact tables are read directly where the rollups hold nothing (each
function says so): a prefecture's or county's projects and a province's projects of
today, the pending registrations, one group's records, one volunteer's records, the
region and civil-unit registers.
"""
from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import (
    Float, String, and_, case, cast, exists, func, literal, literal_column, or_, select, true, union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.functions import FunctionElement

from app.extensions import db
from app.models import (
    CivilUnit, Project, RecordStatus, Region, ReviewStatus, ServiceRecord, StatDay, StatGroupMonth, StatGroupPeriod,
    StatMonth, StatTotal, Volunteer, VolunteerGroup,
)
from app.security.scope import Scope, path_is_under, under
from app.services import workdays
from app.services.clock import to_utc
from app.services.errors import ScopeViolation
from app.services.projects import ProjectStatus, closed_clause
from app.services.rollups import (  # the metrics, as the writers name them, and the local day in SQL
    ALL_TIME, COMMUNITY_GROUPS, COVERED, GROUPS, MEMBERS, MINUTES, PROJ_CLOSED, PROJ_STARTED, VOL_BIRTH, VOL_GENDER, VOL_NEW, VOL_STAR,
    VOLUNTEERS, local_day, local_day_sql, prefecture_metric, project_times_sql,
    quarter_key, year_key,
)

LIST_LIMIT = 50  # rows of a list shown on screen; the download has them all
TOP_LIMIT = 10
GROUP_PICKER_LIMIT = 200
MAX_PERIOD_MONTHS = 120  # a custom period spans ten years at most

# Age bands of the age-band figure: (key, lowest age, highest age or None).
AGE_BANDS = (("under_18", None, 17), ("18_35", 18, 35), ("36_59", 36, 59), ("60_plus", 60, None))
UNKNOWN = ""  # the rollups' key for an unknown gender, birth year or category


# --- Year-month in SQL: one expression per dialect, no bound parameters (GROUP BY) ---


class year_month(FunctionElement):
    """``'YYYY-MM'`` of a date column."""

    type = String()
    inherit_cache = True


@compiles(year_month)
def _year_month(element, compiler, **kw):
    return "to_char(%s, 'YYYY-MM')" % compiler.process(element.clauses, **kw)


@compiles(year_month, "sqlite")
def _year_month_sqlite(element, compiler, **kw):
    return "strftime('%%Y-%%m', %s)" % compiler.process(element.clauses, **kw)


# --- Periods ---


@dataclass(frozen=True)
class Period:
    """The period picker's choice: ``kind`` month / quarter / year / custom, its first
    and last day (local dates, both included) and the ``on`` value that named it."""

    kind: str
    start: date
    end: date
    on: str = ""

    @property
    def months(self) -> list[str]:
        """Every month of the period, ``'YYYY-MM'``, in order."""
        out, year, month = [], self.start.year, self.start.month
        while (year, month) <= (self.end.year, self.end.month):
            out.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return out

    @property
    def first_month(self) -> date:
        return self.start.replace(day=1)

    @property
    def whole_months(self) -> tuple[date, date] | None:
        """(first day of the first, first day of the last) month lying wholly inside the
        period; None when none does (a custom period within one month)."""
        first = self.first_month if self.start.day == 1 else _next_month(self.start)
        last = self.end.replace(day=1) if self.end == _month_end(self.end.year, self.end.month) \
            else _previous_month(self.end)
        return (first, last) if first <= last else None

    @property
    def partial_days(self) -> list[tuple[date, date]]:
        """The day ranges (first, last) of the period outside its whole months."""
        whole = self.whole_months
        if whole is None:
            return [(self.start, self.end)]
        ranges = []
        if self.start < whole[0]:
            ranges.append((self.start, whole[0] - timedelta(days=1)))
        last_day = _month_end(whole[1].year, whole[1].month)
        if self.end > last_day:
            ranges.append((last_day + timedelta(days=1), self.end))
        return ranges

    def args(self) -> dict[str, str]:
        """The query-string arguments that name this period."""
        if self.kind == "custom":
            return {"period": "custom", "from": self.start.isoformat(), "to": self.end.isoformat()}
        return {"period": self.kind, "on": self.on}


PERIOD_KINDS = ("month", "quarter", "year", "custom")


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _next_month(day: date) -> date:
    """The first day of the month after ``day``'s."""
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)


def _previous_month(day: date) -> date:
    """The first day of the month before ``day``'s."""
    return date(day.year - 1, 12, 1) if day.month == 1 else date(day.year, day.month - 1, 1)


def parse_period(args: Mapping[str, str], today: date) -> Period | None:
    """The period named by ``?period=month&on=2026-11`` (quarter: ``on=2026-Q4``, year:
    ``on=2026``, custom: ``from=2026-01-01&to=2026-03-31``); without ``period``, this
    year. None when the arguments do not name a period (the caller says so)."""
    kind = (args.get("period") or "year").strip()
    on = (args.get("on") or "").strip()
    try:
        if kind == "year":
            on = on or year_key(today)
            year = _year(on)
            return Period("year", date(year, 1, 1), date(year, 12, 31), on)
        if kind == "quarter":
            on = on or quarter_key(today)
            year_text, _, quarter_text = on.partition("-Q")
            year, quarter = _year(year_text), int(quarter_text)
            if not 1 <= quarter <= 4 or not quarter_text.isdigit():
                return None
            first = 3 * quarter - 2
            return Period("quarter", date(year, first, 1), _month_end(year, first + 2), on)
        if kind == "month":
            on = on or f"{today.year}-{today.month:02d}"
            year_text, _, month_text = on.partition("-")
            year, month = _year(year_text), int(month_text)
            if not month_text.isdigit() or not 1 <= month <= 12:
                return None
            return Period("month", date(year, month, 1), _month_end(year, month), on)
        if kind == "custom":
            start = date.fromisoformat((args.get("from") or "").strip())
            end = date.fromisoformat((args.get("to") or "").strip())
            if start > end or not 1900 <= start.year <= 9998:
                return None
            period = Period("custom", start, end)
            return period if len(period.months) <= MAX_PERIOD_MONTHS else None
    except ValueError:
        return None
    return None


def _year(text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) == 4) or not 1900 <= int(text) <= 9998:
        raise ValueError(text)
    return int(text)


# --- Areas: the region a dashboard shows, checked against the scope ---


@dataclass(frozen=True)
class Area:
    """A region the officer dashboard shows, or the whole platform (``path`` None,
    the platform admin only)."""

    id: int | None
    code: str
    name: str
    level: int
    path: str | None
    population: int | None = None

    @classmethod
    def of(cls, region: Region) -> "Area":
        return cls(region.id, region.code, region.name, region.level, region.path, region.population)

    @property
    def splits_by_child(self) -> bool:
        """Whether the figures kept per county split by child region here: the children
        are counties or larger (a county's streets have no rollups of their own)."""
        return self.level < Region.COUNTY

    @property
    def reads_prefectures(self) -> bool:
        """Whether the figures kept per county are read from their prefecture rows here
        (a province, or the whole platform: a bounded number of rows however much data
        lies below)."""
        return self.level <= Region.PROVINCE

    def metric(self, metric: str) -> str:
        """The rollup metric this area reads for ``metric`` (its prefecture rows, or not)."""
        return prefecture_metric(metric) if self.reads_prefectures else metric

    @property
    def below_county(self) -> bool:
        """Rollups by day and the volunteers' breakdowns are kept per county: a street or
        community cannot read them (DESIGN.md §6: community × day explodes)."""
        return self.level > Region.COUNTY


EVERYWHERE = Area(None, "", "", Region.NATION, None)


def in_area(column, area: Area):
    """SQL predicate: ``column`` (a region path) lies in ``area`` or below it."""
    return true() if area.path is None else under(column, area.path)


def officer_areas(scope: Scope) -> list[Area]:
    """The regions the user oversees as an officer, outermost first (a binding inside
    another is left out); the platform admin oversees everything."""
    if scope.everything:
        return [EVERYWHERE]
    if not scope.officer_paths:
        return []
    regions = db.session.scalars(select(Region).where(Region.path.in_(scope.officer_paths)).order_by(Region.path))
    areas: list[Area] = []
    for region in regions:
        if not any(path_is_under(region.path, a.path) for a in areas):
            areas.append(Area.of(region))
    return areas


def resolve_area(scope: Scope, code: str | None, roots: list[Area] | None = None) -> Area:
    """The region ``?region=<code>`` names, if the user oversees it; without a code the
    user's first region. ``roots``: ``officer_areas(scope)``, if the caller has them.

    :raises ScopeViolation: no such region, or it lies outside the user's regions (404)
    """
    roots = officer_areas(scope) if roots is None else roots
    if not roots:
        raise ScopeViolation()
    code = (code or "").strip()
    if not code:
        return roots[0]
    if not (code.isascii() and code.isdigit() and len(code) <= 12):
        raise ScopeViolation()
    region = db.session.scalar(select(Region).where(Region.code == code))
    if region is None or not (scope.everything or any(path_is_under(region.path, r.path) for r in roots)):
        raise ScopeViolation()
    return Area.of(region)


def child_areas(area: Area) -> list[Area]:
    """The regions right below ``area`` (provinces below the whole platform), by code."""
    parent = Region.parent_id.is_(None) if area.id is None else Region.parent_id == area.id
    return [Area.of(r) for r in db.session.scalars(select(Region).where(parent).order_by(Region.code))]


def breadcrumb(area: Area, roots: list[Area]) -> list[Area]:
    """The regions from the user's own region (one of ``roots``, from ``officer_areas``)
    down to ``area``, inclusive."""
    if area.path is None:
        return [area]
    everything = any(root.path is None for root in roots)
    parts = area.path.rstrip("/").split("/")
    prefixes = ["/".join(parts[:n]) + "/" for n in range(1, len(parts) + 1)]
    regions = db.session.scalars(select(Region).where(Region.path.in_(prefixes)).order_by(Region.path))
    crumbs = [Area.of(r) for r in regions
              if everything or any(path_is_under(r.path, root.path) for root in roots)]
    return ([EVERYWHERE] if everything else []) + crumbs


def _child_key(column, area: Area, kids: list[Area]):
    """SQL expression: the path of the child of ``area`` a row's ``column`` lies in.

    Children of one parent usually share a code length (prefectures and counties 6
    digits, streets 9, communities 12): then it is the path cut after that segment, one
    substring per row. Otherwise a CASE over the children's ranges. Rows at ``area``
    itself (or under no known child) come out as something no child's path equals.
    """
    lengths = {len(k.code) for k in kids}
    if len(lengths) == 1:
        return func.substr(column, 1, len(area.path or "") + lengths.pop() + 1)
    return case(*[(under(column, k.path), literal(k.path)) for k in kids], else_=literal(""))


def _by_child(rows: Iterable[tuple], kids: list[Area]) -> tuple[dict[str, int], int]:
    """(sum per child path, the rest) of ``(key, value)`` rows keyed by ``_child_key``."""
    paths = {k.path for k in kids}
    sums: dict[str, int] = defaultdict(int)
    rest = 0
    for key, value in rows:
        if key in paths:
            sums[key] += int(value or 0)
        else:
            rest += int(value or 0)
    return sums, rest


# --- Rows ---


@dataclass(frozen=True)
class RegionValue:
    """A number for one child region; ``code`` None: rows at the region itself (or
    under no listed child)."""

    code: str | None
    name: str
    value: int
    population: int | None = None

    @property
    def rate(self) -> float | None:
        """``value`` ÷ ``population``, when the population is known."""
        return self.value / self.population if self.population else None


@dataclass(frozen=True)
class MonthValue:
    month: str  # "YYYY-MM"
    value: int


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: int


@dataclass(frozen=True)
class MinuteCell:
    """Approved minutes of one month and service category, in one child region
    (``child`` its path; None when not split by child)."""

    month: str
    category: str
    child: str | None
    minutes: int


@dataclass(frozen=True)
class MinuteSums:
    """Approved minutes in a period summed per month (``'YYYY-MM'``), per service category
    (``UNKNOWN`` when none) and per child region (its path; None: the area itself, or
    not split by child)."""

    by_month: Mapping[str, int]
    by_category: Mapping[str, int]
    by_child: Mapping[str | None, int]

    @property
    def total(self) -> int:
        return sum(self.by_month.values())

    @classmethod
    def of(cls, cells: Iterable[MinuteCell]) -> "MinuteSums":
        """The sums of a few cells (a volunteer's own), added up in Python."""
        sums: tuple[dict, dict, dict] = (defaultdict(int), defaultdict(int), defaultdict(int))
        for cell in cells:
            for out, key in zip(sums, (cell.month, cell.category or UNKNOWN, cell.child)):
                out[key] += cell.minutes
        return cls(*(dict(out) for out in sums))


@dataclass(frozen=True)
class GroupCount:
    group_type: str
    level: int
    count: int


@dataclass(frozen=True)
class ProjectCount:
    category: str
    status: str
    count: int


@dataclass(frozen=True)
class NamedMinutes:
    """A group or volunteer and its approved minutes in the period."""

    id: int
    name: str
    minutes: int
    number: str = ""  # a volunteer's number


@dataclass(frozen=True)
class CivilUnitRow:
    name: str
    region: str
    members: int
    headcount: int | None

    @property
    def rate(self) -> float | None:
        return self.members / self.headcount if self.headcount else None


@dataclass(frozen=True)
class NamedPlace:
    """A community or civil unit of a list, and where it is."""

    name: str
    code: str
    place: str


# --- Officer dashboard: volunteers ---


def _rollup_sums(model, metric: str, area: Area, kids: list[Area], *where) -> tuple[dict[str, int], int]:
    """Sum ``metric`` of ``model`` over ``area``, per child (one GROUP BY over the range)."""
    conditions = [model.metric == metric, in_area(model.region_path, area), *where]
    if not kids:
        total = db.session.scalar(select(func.coalesce(func.sum(model.value), 0)).where(*conditions))
        return {}, int(total or 0)
    key = _child_key(model.region_path, area, kids).label("child")
    inner = select(key, model.value).where(*conditions).subquery()
    rows = db.session.execute(select(inner.c.child, func.sum(inner.c.value)).group_by(inner.c.child))
    return _by_child(rows, kids)


def _region_values(sums: dict[str, int], rest: int, kids: list[Area], area: Area) -> list[RegionValue]:
    rows = [RegionValue(k.code, k.name, sums.get(k.path, 0), k.population) for k in kids]
    if rest or not kids:
        rows.append(RegionValue(None, area.name, rest, None))
    return rows


def volunteers_by_child(area: Area, kids: list[Area]) -> list[RegionValue]:
    """Approved volunteers living in each child region of ``area`` (StatTotal
    ``volunteers``, kept at the home region down to the community), with the child's
    population for the registration rate; a last row for those at ``area`` itself."""
    sums, rest = _rollup_sums(StatTotal, area.metric(VOLUNTEERS), area, kids)
    return _region_values(sums, rest, kids, area)


def volunteer_breakdowns(area: Area) -> dict[str, dict[str, int]]:
    """Approved volunteers of ``area`` by gender, birth year and star level:
    ``{metric: {key: count}}`` (StatTotal, per county: ``area`` must be a county or larger)."""
    names = {area.metric(metric): metric for metric in (VOL_GENDER, VOL_BIRTH, VOL_STAR)}
    rows = db.session.execute(
        select(StatTotal.metric, StatTotal.key, func.sum(StatTotal.value))
        .where(StatTotal.metric.in_(names), in_area(StatTotal.region_path, area))
        .group_by(StatTotal.metric, StatTotal.key))
    out: dict[str, dict[str, int]] = {VOL_GENDER: {}, VOL_BIRTH: {}, VOL_STAR: {}}
    for metric, key, value in rows:
        counts = out[names[metric]]
        counts[key or UNKNOWN] = counts.get(key or UNKNOWN, 0) + int(value or 0)
    return out


def age_bands(births: Mapping[str, int], year: int) -> list[KeyValue]:
    """Volunteers per age band (``AGE_BANDS``, then unknown), the age being ``year``
    minus the birth year (``year``: the period's last year)."""
    counts = {band: 0 for band, _, _ in AGE_BANDS}
    unknown = 0
    for key, value in births.items():
        if not (key.isascii() and key.isdigit()):
            unknown += value
            continue
        age = year - int(key)
        for band, low, high in AGE_BANDS:
            if (low is None or age >= low) and (high is None or age <= high):
                counts[band] += value
                break
    return [KeyValue(band, counts[band]) for band, _, _ in AGE_BANDS] + [KeyValue(UNKNOWN, unknown)]


def _period_rows(metric: str, area: Area, period: Period):
    """Subquery of ``metric``'s rollup rows of ``area`` in ``period``: (month
    ``'YYYY-MM'``, key, region_path, value) — ``StatMonth`` for the whole months (a
    province its prefecture rows), ``StatDay`` for the days of partial months (a custom
    period's ends)."""
    parts = []
    whole = period.whole_months
    if whole is not None:
        parts.append(select(year_month(StatMonth.month).label("month"), StatMonth.key.label("key"),
                            StatMonth.region_path.label("region_path"), StatMonth.value.label("value"))
                     .where(StatMonth.metric == area.metric(metric), in_area(StatMonth.region_path, area),
                            StatMonth.month >= whole[0], StatMonth.month <= whole[1]))
    for first, last in period.partial_days:
        parts.append(select(year_month(StatDay.day).label("month"), StatDay.key.label("key"),
                            StatDay.region_path.label("region_path"), StatDay.value.label("value"))
                     .where(StatDay.metric == metric, in_area(StatDay.region_path, area),
                            StatDay.day >= first, StatDay.day <= last))
    return (parts[0] if len(parts) == 1 else union_all(*parts)).subquery()


def new_volunteers_by_month(area: Area, period: Period) -> list[MonthValue]:
    """Volunteers approved per month of ``period`` at a home in ``area`` (``vol_new``;
    county grain), every month listed."""
    inner = _period_rows(VOL_NEW, area, period)
    sums = dict(db.session.execute(select(inner.c.month, func.sum(inner.c.value)).group_by(inner.c.month)).all())
    return [MonthValue(m, int(sums.get(m) or 0)) for m in period.months]


# --- Officer dashboard: service hours ---


def minute_sums(area: Area, period: Period, kids: list[Area]) -> MinuteSums:
    """Approved service minutes served in ``area`` during ``period`` (``minutes``,
    corrections included) per month, per service category and per child region: one
    statement, three GROUP BYs over the same rows (a few dozen rows come back, not the
    months × categories × children cube)."""
    rows_in = _period_rows(MINUTES, area, period)
    split = bool(kids) and area.splits_by_child
    child = _child_key(rows_in.c.region_path, area, kids) if split else literal_column("''")
    cells = select(rows_in.c.month, rows_in.c.key.label("category"), child.label("child"),
                   rows_in.c.value).cte("cells")
    parts = [select(literal_column(f"'{kind}'"), column, func.sum(cells.c.value)).group_by(column)
             for kind, column in (("m", cells.c.month), ("c", cells.c.category), ("r", cells.c.child))]
    paths = {k.path for k in kids} if split else set()
    by_month: dict[str, int] = {}
    by_category: dict[str, int] = defaultdict(int)
    by_child: dict[str | None, int] = defaultdict(int)
    for kind, key, value in db.session.execute(union_all(*parts)):
        value = int(value or 0)
        if kind == "m":
            by_month[key] = value
        elif kind == "c":
            by_category[key or UNKNOWN] += value
        else:
            by_child[key if key in paths else None] += value
    return MinuteSums(by_month, dict(by_category), dict(by_child))


def minutes_by_month(sums: MinuteSums, period: Period) -> list[MonthValue]:
    return [MonthValue(m, sums.by_month.get(m, 0)) for m in period.months]


def minutes_by_category(sums: MinuteSums, categories: Iterable[str]) -> list[KeyValue]:
    """Minutes per service category, in ``categories`` order, then unknown (if any)."""
    left = dict(sums.by_category)
    rows = [KeyValue(c, left.pop(c, 0)) for c in categories]
    rest = sum(left.values())
    return rows + ([KeyValue(UNKNOWN, rest)] if rest else [])


def minutes_by_child(sums: MinuteSums, kids: list[Area], area: Area) -> list[RegionValue]:
    by_child = {k: v for k, v in sums.by_child.items() if k is not None}
    return _region_values(by_child, sums.by_child.get(None, 0), kids, area)


def top_groups(area: Area, period: Period, limit: int = TOP_LIMIT) -> list[NamedMinutes]:
    """The groups of ``area`` with the most approved minutes in ``period``: a year or
    quarter reads one ``StatGroupPeriod`` row per group, in the order of its index;
    a month or custom period sums ``StatGroupMonth`` (by month, so a custom period
    counts whole months)."""
    if period.kind in ("year", "quarter"):
        key = (year_key if period.kind == "year" else quarter_key)(period.start)
        rows = db.session.execute(
            select(StatGroupPeriod.group_id, VolunteerGroup.name, StatGroupPeriod.value)
            .join(VolunteerGroup, VolunteerGroup.id == StatGroupPeriod.group_id)
            .where(StatGroupPeriod.metric == MINUTES, StatGroupPeriod.period == key,
                   in_area(StatGroupPeriod.region_path, area), StatGroupPeriod.value > 0)
            .order_by(StatGroupPeriod.value.desc(), StatGroupPeriod.group_id).limit(limit))
        return [NamedMinutes(gid, name, int(minutes or 0)) for gid, name, minutes in rows]
    total = func.sum(StatGroupMonth.value)
    rows = db.session.execute(
        select(StatGroupMonth.group_id, VolunteerGroup.name, total)
        .join(VolunteerGroup, VolunteerGroup.id == StatGroupMonth.group_id)
        .where(StatGroupMonth.metric == MINUTES, in_area(StatGroupMonth.region_path, area),
               StatGroupMonth.month >= period.first_month, StatGroupMonth.month <= period.end)
        .group_by(StatGroupMonth.group_id, VolunteerGroup.name).having(total > 0)
        .order_by(total.desc(), StatGroupMonth.group_id).limit(limit))
    return [NamedMinutes(gid, name, int(minutes or 0)) for gid, name, minutes in rows]


# --- Officer dashboard: groups, projects, the review backlog ---


def groups_by_type_and_tier(area: Area) -> list[GroupCount]:
    """Approved groups of ``area`` by type and by the level of their region (StatTotal
    ``groups``, kept at the group's own region; a province reads its prefecture rows,
    keyed by level and type)."""
    if area.reads_prefectures:
        rows = db.session.execute(
            select(StatTotal.key, func.sum(StatTotal.value))
            .where(StatTotal.metric == area.metric(GROUPS), in_area(StatTotal.region_path, area))
            .group_by(StatTotal.key))
        counts = [(key.split(":", 1), n) for key, n in rows]
        return [GroupCount(group_type, int(level), int(n or 0)) for (level, group_type), n in counts if n]
    rows = db.session.execute(
        select(StatTotal.key, Region.level, func.sum(StatTotal.value))
        .join(Region, Region.id == StatTotal.region_id)
        .where(StatTotal.metric == GROUPS, in_area(StatTotal.region_path, area))
        .group_by(StatTotal.key, Region.level))
    return [GroupCount(key, level, int(n or 0)) for key, level, n in rows if n]


def _project_counts(where, now: datetime) -> list[ProjectCount]:
    """Projects matching ``where`` by category and status at ``now``: the status read off
    the clock in SQL, the twin of ``services.projects.project_status``."""
    status = case((closed_clause(now), literal(ProjectStatus.CLOSED.value)),
                  (Project.starts_at > now, literal(ProjectStatus.NOT_STARTED.value)),
                  else_=literal(ProjectStatus.OPEN.value)).label("status")
    inner = select(Project.category.label("category"), status).where(where).subquery()
    rows = db.session.execute(select(inner.c.category, inner.c.status, func.count())
                              .group_by(inner.c.category, inner.c.status))
    return [ProjectCount(category, st, int(n)) for category, st, n in rows]


def projects_by_category_and_status(area: Area, now: datetime) -> list[ProjectCount]:
    """Projects of ``area`` by service category and status at ``now`` (UTC).

    A prefecture or smaller reads ``project`` with one scoped GROUP BY. A province reads
    the days each project left 未开始 and closed (``rollups.project_times``, kept at the
    province): the months before this one, this month's days before today, and today's
    moments up to ``now`` read off ``project`` (three indexed ranges); every project has
    one closing day, so the sum over all of them is the total.
    """
    if not area.reads_prefectures:
        return _project_counts(in_area(Project.region_path, area), now)
    today = local_day(now)
    month, midnight = today.replace(day=1), to_utc(datetime.combine(today, time()))
    metrics = (PROJ_STARTED, PROJ_CLOSED)
    months = select(StatMonth.metric.label("metric"), StatMonth.key.label("key"),
                    case((StatMonth.month < month, StatMonth.value), else_=0).label("reached"),
                    StatMonth.value.label("total")).where(StatMonth.metric.in_(metrics),
                                                          in_area(StatMonth.region_path, area))
    days = select(StatDay.metric, StatDay.key, StatDay.value, literal(0)).where(
        StatDay.metric.in_(metrics), in_area(StatDay.region_path, area), StatDay.day >= month, StatDay.day < today)
    in_today = [and_(column >= midnight, column <= now) for column in (Project.starts_at, Project.ends_at,
                                                                       Project.closed_on)]
    moments = (select(Project.category, *project_times_sql()).where(in_area(Project.region_path, area),
                                                                    or_(*in_today)).subquery())
    today_rows = [select(literal(metric), func.coalesce(moments.c.category, ""), literal(1), literal(0))
                  .where(column >= midnight, column <= now)
                  for metric, column in zip(metrics, list(moments.c)[1:])]
    inner = union_all(months, days, *today_rows).subquery()
    rows = db.session.execute(select(inner.c.metric, inner.c.key, func.sum(inner.c.reached), func.sum(inner.c.total))
                              .group_by(inner.c.metric, inner.c.key))
    reached: dict[tuple[str, str], int] = defaultdict(int)
    totals: dict[str, int] = defaultdict(int)
    for metric, key, n, total in rows:
        reached[metric, key] += int(n or 0)
        if metric == PROJ_CLOSED:
            totals[key] += int(total or 0)
    counts = []
    for category, total in totals.items():
        started, closed = reached[PROJ_STARTED, category], reached[PROJ_CLOSED, category]
        for status, n in ((ProjectStatus.CLOSED, closed), (ProjectStatus.NOT_STARTED, total - started),
                          (ProjectStatus.OPEN, started - closed)):
            if n:
                counts.append(ProjectCount(category, status.value, n))
    return counts


def review_backlog(area: Area, today: date) -> list[KeyValue]:
    """Pending registrations of ``area`` by the working days they have waited: keys
    "0" up to the review limit, then ``"over"`` past it.

    Read directly from ``volunteer`` (status pending), counted per local day of
    submission in SQL: the backlog is short, and its age depends on today's calendar
    (``services.workdays``), which no rollup could keep.
    """
    day = local_day_sql(Volunteer.submitted_on)
    per_day = db.session.execute(select(day, func.count()).where(
        Volunteer.status == ReviewStatus.PENDING, in_area(Volunteer.region_path, area),
        Volunteer.submitted_on.is_not(None)).group_by(day)).all()  # a row per local day, not per registration
    days = [_as_date(d) for d, _n in per_day]
    limit = workdays.review_limit()
    counts = {str(n): 0 for n in range(limit + 1)}
    over = 0
    for age, (_day, n) in zip(workdays.ages_in_workdays(days, today), per_day):
        if age > limit:
            over += n
        else:
            counts[str(age)] += n
    return [KeyValue(k, v) for k, v in counts.items()] + [KeyValue("over", over)]


def _as_date(value) -> date:
    """A date column's value (SQLite returns ``func.date()`` as text)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


# --- Officer dashboard: the city's targets ---


def civil_units(area: Area, limit: int | None = LIST_LIMIT) -> tuple[list[CivilUnitRow], int]:
    """(civil units of ``area`` with a registered group, how many there are): the group's
    current members (StatGroupPeriod ``members`` over all time) against the unit's staff
    headcount (the group's when the register has none), lowest rate first, units of
    unknown headcount last; ``limit`` None: all of them (the download).

    Ranked over ``civil_unit`` and the members rows alone (the group's headcount looked
    up only where the register has none), the region names joined to the rows kept.
    """
    group_headcount = (select(VolunteerGroup.staff_headcount).where(VolunteerGroup.id == CivilUnit.group_id)
                       .correlate(CivilUnit).scalar_subquery())
    members = func.coalesce(StatGroupPeriod.value, 0)
    headcount = func.coalesce(func.nullif(CivilUnit.staff_headcount, 0), group_headcount)
    ranked = (select(CivilUnit.id, CivilUnit.name, CivilUnit.region_id, members.label("members"),
                     headcount.label("headcount"), func.count().over().label("total"))
              .outerjoin(StatGroupPeriod, and_(StatGroupPeriod.group_id == CivilUnit.group_id,
                                               StatGroupPeriod.metric == MEMBERS, StatGroupPeriod.period == ALL_TIME))
              .where(in_area(CivilUnit.region_path, area), CivilUnit.group_id.is_not(None)).subquery())
    rate = cast(ranked.c.members, Float) / func.nullif(ranked.c.headcount, 0)
    order = [case((rate.is_(None), 1), else_=0), rate, ranked.c.name, ranked.c.id]
    kept = select(ranked, *[o.label(f"o{n}") for n, o in enumerate(order)]).order_by(*order)
    if limit is not None:
        kept = kept.limit(limit)
    kept = kept.subquery()
    rows = db.session.execute(
        select(kept.c.name, Region.name, kept.c.members, kept.c.headcount, kept.c.total)
        .join(Region, Region.id == kept.c.region_id)
        .order_by(kept.c.o0, kept.c.o1, kept.c.o2, kept.c.o3)).all()
    units = [CivilUnitRow(name, region, int(n or 0), count or None) for name, region, n, count, _total in rows]
    return units, (rows[0][-1] if rows else 0)


def _has_group():
    return exists().where(StatTotal.region_id == Region.id, StatTotal.metric == GROUPS, StatTotal.value > 0)


def community_counts(area: Area) -> tuple[int, int]:
    """(communities in ``area``, those with no approved group located there): the region
    register's communities against the communities covered (StatTotal ``covered``,
    per county and prefecture); below a county, the register anti-joined with the
    communities that have a group (one hash of those, not a probe per community)."""
    communities = and_(Region.level == Region.COMMUNITY, in_area(Region.path, area))
    if not area.below_county:
        covered = (select(func.coalesce(func.sum(StatTotal.value), 0))
                   .where(StatTotal.metric == area.metric(COVERED), in_area(StatTotal.region_path, area)))
        query = select(select(func.count()).where(communities).scalar_subquery(), covered.scalar_subquery())
    else:
        with_group = (select(StatTotal.region_id).where(StatTotal.metric == COMMUNITY_GROUPS, StatTotal.value > 0,
                                                        in_area(StatTotal.region_path, area)).subquery())
        query = (select(func.count(), func.count(with_group.c.region_id)).select_from(Region)
                 .outerjoin(with_group, with_group.c.region_id == Region.id).where(communities))
    total, covered = db.session.execute(query).one()
    return int(total or 0), int(total or 0) - int(covered or 0)


def communities_without_group(area: Area, limit: int | None = LIST_LIMIT) -> list[NamedPlace]:
    """Communities of ``area`` where no approved group is located (StatTotal ``groups``
    at the community), by code; ``limit`` None: all of them (the download)."""
    street = aliased(Region)
    query = (select(Region.name, Region.code, street.name)
             .outerjoin(street, street.id == Region.parent_id)
             .where(Region.level == Region.COMMUNITY, in_area(Region.path, area), ~_has_group())
             .order_by(Region.path))
    if limit is not None:
        query = query.limit(limit)
    return [NamedPlace(name, code, parent or "") for name, code, parent in db.session.execute(query)]


def civil_unit_counts(area: Area) -> tuple[int, int]:
    """(civil units on the register in ``area``, those with no registered group)."""
    total, bare = db.session.execute(select(
        func.count(), func.coalesce(func.sum(case((CivilUnit.group_id.is_(None), 1), else_=0)), 0))
        .where(in_area(CivilUnit.region_path, area))).one()
    return int(total or 0), int(bare or 0)


def civil_units_without_group(area: Area, limit: int | None = LIST_LIMIT) -> list[NamedPlace]:
    """Civil units of ``area`` with no registered group, by name; ``limit`` None: all."""
    query = (select(CivilUnit.name, Region.code, Region.name).join(Region, Region.id == CivilUnit.region_id)
             .where(in_area(CivilUnit.region_path, area), CivilUnit.group_id.is_(None))
             .order_by(CivilUnit.name))
    if limit is not None:
        query = query.limit(limit)
    return [NamedPlace(name, code, region) for name, code, region in db.session.execute(query)]


# --- Group dashboard ---


@dataclass(frozen=True)
class GroupChoice:
    id: int
    name: str
    depth: int  # how many groups lie above it


def group_choices(scope: Scope, limit: int = GROUP_PICKER_LIMIT) -> list[GroupChoice]:
    """The groups the user administers and their children, in tree order (the picker;
    at most ``limit``)."""
    if scope.everything:
        clause = true()
    elif scope.group_paths:
        clause = or_(*[under(VolunteerGroup.group_path, p) for p in scope.group_paths])
    else:
        return []
    rows = db.session.execute(select(VolunteerGroup.id, VolunteerGroup.name, VolunteerGroup.group_path)
                              .where(clause).order_by(VolunteerGroup.group_path).limit(limit))
    return [GroupChoice(gid, name, (path or "").count("/") - 1) for gid, name, path in rows]


def resolve_group(scope: Scope, group_id) -> VolunteerGroup:
    """The group ``?group=<id>`` names if the user administers it or a parent of it;
    without an id the first group the user administers.

    :raises ScopeViolation: no such group in the user's groups (404)
    """
    from app.security.scope import row_id

    if group_id in (None, ""):
        own = sorted(scope.group_ids)
        if not own:
            if scope.everything:
                return db.session.scalar(select(VolunteerGroup).order_by(VolunteerGroup.group_path).limit(1))
            raise ScopeViolation()
        group = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.id.in_(own))
                                  .order_by(VolunteerGroup.group_path).limit(1))
    else:
        pk = row_id(group_id)
        group = db.session.get(VolunteerGroup, pk) if pk else None
    if group is None or not (scope.everything
                             or any(path_is_under(group.group_path, p) for p in scope.group_paths)):
        raise ScopeViolation()
    return group


def _group_months(group_id: int, metric: str, since: date | None, until: date) -> dict[str, int]:
    """StatGroupMonth ``metric`` of one group per ``'YYYY-MM'`` (one group's few rows)."""
    conditions = [StatGroupMonth.group_id == group_id, StatGroupMonth.metric == metric, StatGroupMonth.month <= until]
    if since is not None:
        conditions.append(StatGroupMonth.month >= since)
    sums: dict[str, int] = defaultdict(int)
    for month, value in db.session.execute(select(StatGroupMonth.month, StatGroupMonth.value).where(*conditions)):
        sums[f"{month.year:04d}-{month.month:02d}"] += int(value or 0)
    return sums


def group_members_by_month(group_id: int, period: Period) -> list[MonthValue]:
    """The group's active members at the end of each month of ``period``: StatGroupMonth
    ``members`` (joined minus left per month) summed over every month up to it."""
    net = _group_months(group_id, MEMBERS, None, period.end)
    running = sum(v for m, v in net.items() if m < period.months[0])
    out = []
    for month in period.months:
        running += net.get(month, 0)
        out.append(MonthValue(month, running))
    return out


def group_minutes_by_month(group_id: int, period: Period) -> list[MonthValue]:
    """Approved minutes the group recorded per month of ``period`` (StatGroupMonth)."""
    sums = _group_months(group_id, MINUTES, period.first_month, period.end)
    return [MonthValue(m, sums.get(m, 0)) for m in period.months]


def group_projects_by_status(group_id: int, now: datetime) -> list[ProjectCount]:
    """The group's projects by service category and status at ``now`` (one group's
    projects, read directly)."""
    return _project_counts(Project.group_id == group_id, now)


def top_volunteers(group_id: int, period: Period, limit: int = TOP_LIMIT) -> list[NamedMinutes]:
    """The volunteers with the most approved minutes the group recorded in ``period``
    (one group's records, read directly; corrections included)."""
    total = func.sum(ServiceRecord.minutes)
    rows = db.session.execute(
        select(ServiceRecord.volunteer_id, ServiceRecord.volunteer_name, ServiceRecord.volunteer_no, total)
        .where(ServiceRecord.group_id == group_id, ServiceRecord.status == RecordStatus.APPROVED,
               ServiceRecord.served_on >= period.start, ServiceRecord.served_on <= period.end)
        .group_by(ServiceRecord.volunteer_id, ServiceRecord.volunteer_name, ServiceRecord.volunteer_no)
        .having(total > 0)
        .order_by(total.desc(), ServiceRecord.volunteer_id).limit(limit))
    return [NamedMinutes(vid, name, int(minutes or 0), number or "") for vid, name, number, minutes in rows]


# --- A volunteer's own statistics ---


def my_minute_sums(volunteer_id: int, period: Period) -> MinuteSums:
    """The volunteer's approved minutes in ``period`` per month and service category
    (their own records, read directly; a record transferred in has no category)."""
    inner = (select(year_month(ServiceRecord.served_on).label("month"),
                    func.coalesce(Project.category, literal(UNKNOWN)).label("category"), ServiceRecord.minutes)
             .outerjoin(Project, Project.id == ServiceRecord.project_id)
             .where(ServiceRecord.volunteer_id == volunteer_id, ServiceRecord.status == RecordStatus.APPROVED,
                    ServiceRecord.served_on >= period.start, ServiceRecord.served_on <= period.end)).subquery()
    rows = db.session.execute(select(inner.c.month, inner.c.category, func.sum(inner.c.minutes))
                              .group_by(inner.c.month, inner.c.category))
    return MinuteSums.of(MinuteCell(month, category or UNKNOWN, None, int(minutes or 0))
                         for month, category, minutes in rows)
