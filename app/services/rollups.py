"""Rollups for 统计分析 (DESIGN.md §6): the writers that keep ``stat_day`` (and its
monthly sums ``stat_month``), ``stat_total``, ``stat_group_month`` (and its yearly and
quarterly minutes ``stat_group_period``) in step with the facts, and ``rebuild()``.

The services that change a fact call a writer in the same transaction, so a
rollback takes the count back with it:

- ``volunteer_counted``: a volunteer approved (+1, and ``vol_new`` on the approval's
  local day) or leaving approved status (−1; ``vol_new`` is history and stays);
- ``volunteer_moved``: a transfer (转移接续) moves the current counts from the old
  home to the new one;
- ``star_moved``: ``hours.credit`` took a volunteer's total across a star threshold;
- ``minutes_credited``: approved minutes entered the ledger (``hours.approve`` for
  every local record and correction; ``record_exchange`` for records transferred in);
- ``project_recategorised``: an open project's service category changed, so its
  minutes move to the new category;
- ``project_counted``: a project created (+1), or changing its dates, category or region,
  closing or suspended (−1 before, +1 after): its moments of status change, per province;
- ``group_counted``: a group approved (+1) or leaving approved status (−1; call after the
  status changed); at a community, its first and last group change the county's count of
  communities with a group (``COVERED``, settled at the upsert: see ``_write``);
- ``members_changed``: a membership became active (+1) or stopped being active (−1).

A writer holds its counts on the session's current transaction (or savepoint) and
they reach the tables in that transaction, just before its COMMIT (``init_app``
installs the hooks): merged by key, after the facts' own writes, as upserts ``INSERT
… ON CONFLICT (pk) DO UPDATE SET value = value + excluded.value`` in one global key
order. A rolled-back transaction or savepoint drops its counts; a released savepoint
hands them to the enclosing transaction. Why at the end: the rollup rows are hot
(every credit in a county and day hits one row), and taking their locks in the middle
of a transaction, between the locks on volunteer rows, would let two writers on
PostgreSQL deadlock (A holds the county's row and waits for a volunteer B holds, B
waits for the row). The upsert is atomic on PostgreSQL; on SQLite writers hold the
write lock (``extensions.begin_write``). A count taken back to zero leaves a row of 0
(readers sum, so it does no harm; ``rebuild`` writes none). Counts are not visible in
the tables before the commit.

``rebuild()`` deletes every rollup row and recomputes each metric from the fact
tables with one ``INSERT … SELECT … GROUP BY`` per metric, on both databases (the
monthly, yearly, prefecture and covered-community sums from the finer rows it rebuilt).

Two choices make a rebuild equal to what the writers kept, whatever happened in
between (tests/integration/test_rollups.py checks it after every kind of write):

- ``vol_new`` counts a volunteer at the county of their home *at approval*: the
  ``from_region_path`` of their first approved transfer, else their current home.
- ``members`` counts each active membership in the month (local) it last became
  active (``Membership.decided_on``); a member who leaves or is removed takes back
  the +1 of that month. The facts keep no earlier join dates, so this is the
  history a rebuild can reproduce: the sum over all months is the current roster,
  and the running sum is the roster's growth by the month its members joined.
"""
from __future__ import annotations

import math
from datetime import date, datetime, timedelta

from sqlalchemy import (
    Date, Integer, Interval, String, case, cast, delete, event, func, literal, literal_column, select, text,
)
from sqlalchemy.orm import aliased

from app.extensions import db
from app.models import (
    Membership, MembershipStatus, Project, RecordStatus, Region, RequestStatus, ReviewStatus, ServiceRecord,
    StatDay, StatGroupMonth, StatGroupPeriod, StatMonth, StatTotal, TransferRequest, Volunteer, VolunteerGroup,
)

# StatDay metrics
VOL_NEW = "vol_new"  # key "": volunteers approved that local day, at their home county then
MINUTES = "minutes"  # key: the project's service category ("" when unknown)
# StatTotal metrics
VOLUNTEERS = "volunteers"  # key "": approved volunteers at their home region itself
VOL_GENDER = "vol_gender"  # key "M" / "F" / "", per home county
VOL_BIRTH = "vol_birth"  # key "YYYY" / "", per home county
VOL_STAR = "vol_star"  # key "0".."5", per home county
GROUPS = "groups"  # key: group type, approved groups at the group's own region
COMMUNITY_GROUPS = "community_groups"  # key "": approved groups at a community (one row each: see COVERED)
COVERED = "covered"  # key "": per county (and prefecture), communities with at least one approved group there
# StatGroupMonth metrics: MINUTES (of the records the group recorded) and
MEMBERS = "members"  # active members, in the month they became active
# StatDay / StatMonth metrics kept at the province (``province_of``), key: the project's service category.
# A project's status follows two moments (``project_times``: 未开始 until the first, 已结项 from the
# second; a closed project never reopens, and an edit before then moves them: the writers take the old
# moments back and count the new). Counting the projects whose moments have come tells a province its
# projects by status at any time, from rows bounded by categories × days.
PROJ_STARTED = "proj_started"  # on the local day the project leaves 未开始 (it starts, or closes first)
PROJ_CLOSED = "proj_closed"  # on the local day it closes (its end, or when closed or suspended)
# Prefecture rows: StatMonth ``minutes`` / ``vol_new`` and StatTotal ``volunteers`` / ``vol_*`` / ``covered``
# summed per prefecture (the region below the province) under ``prefecture_metric(metric)``; ``groups`` there
# is keyed ``"<level>:<type>"`` (the tier of the group's region); ``community_groups`` has none. A province (or the whole platform) reads these: a
# bounded number of rows however many counties, communities and months are filled below.
PREFECTURE_SUFFIX = "@pref"
PREFECTURE_METRICS = (VOL_NEW, MINUTES, VOLUNTEERS, VOL_GENDER, VOL_BIRTH, VOL_STAR, GROUPS, COVERED)

LOCAL_OFFSET = timedelta(hours=8)  # Asia/Shanghai, no daylight saving since 1991
ROLLUP_MODELS = (StatDay, StatMonth, StatTotal, StatGroupMonth, StatGroupPeriod)  # also the lock order
UPSERT_CHUNK = 500  # rows per INSERT … ON CONFLICT (SQLite binds at most 32766 parameters)


# --- Paths, days and keys, in Python and in SQL alike ---


def county_of(path: str) -> str:
    """The path cut to county level: its 6-digit codes, at most three (province,
    prefecture, county). ``'410000/410200/410202/410202001/'`` → ``'410000/410200/410202/'``;
    a province or prefecture path is returned unchanged, and a street directly below a
    county-level district of a municipality (``'110000/110101/110101001/'``) is cut to the
    district (``'110000/110101/'``): levels come from the codes, not the depth."""
    for length in (21, 14):
        if len(path) >= length and path[length - 1] == "/":
            return path[:length]
    return path[:7]


def prefecture_of(path: str) -> str:
    """The path cut to the level right below the province (the prefecture rows' grain):
    ``'410000/410200/410202/…'`` → ``'410000/410200/'``; below a municipality, the district
    (``'110000/110101/…'`` → ``'110000/110101/'``); a province path is returned unchanged."""
    return path[:14] if len(path) >= 14 and path[13] == "/" else path[:7]


def province_of(path: str) -> str:
    """The path cut to the province: ``'410000/410200/…'`` → ``'410000/'``."""
    return path[:7]


def project_times(project: Project) -> tuple[datetime, datetime]:
    """(when ``project`` leaves 未开始, when it closes): it closes at its end or when closed by
    hand or suspended (``closed_on``, set by both), whichever comes first; it leaves 未开始
    when it starts or, closed before that, when it closes. ``services.projects.project_status``
    is these two compared with the clock."""
    closes = project.closes_at()
    return min(project.starts_at, closes), closes


def prefecture_metric(metric: str) -> str:
    """The name of ``metric``'s prefecture rows (``'minutes'`` → ``'minutes@pref'``)."""
    return metric + PREFECTURE_SUFFIX


def tier_key(level: int, group_type: str) -> str:
    """The key of a prefecture ``groups`` row: the level of the group's region and its type."""
    return f"{level}:{group_type}"


def local_day(moment: datetime) -> date:
    """The Asia/Shanghai calendar day of a stored (naive UTC) time."""
    return (moment + LOCAL_OFFSET).date()


def month_of(day: date) -> date:
    return day.replace(day=1)


def year_key(month: date) -> str:
    """``StatGroupPeriod.period`` of a year: ``'2026'`` (the period picker's ``on``)."""
    return f"{month.year:04d}"


ALL_TIME = "all"  # StatGroupPeriod.period of the members over all time


def quarter_key(month: date) -> str:
    """``StatGroupPeriod.period`` of a quarter: ``'2026-Q4'`` (the period picker's ``on``)."""
    return f"{month.year:04d}-Q{(month.month - 1) // 3 + 1}"


def _dialect() -> str:
    return db.session.get_bind().dialect.name


# SQL helpers write their constants inline (literal_column), not as bound parameters:
# PostgreSQL accepts an expression in SELECT under GROUP BY only when it is the same
# expression, and "$1" and "$2" are not the same even when they hold the same value.


def _text(value: str):
    """An SQL string constant (only for this module's own constants, never input)."""
    return literal_column("'" + value.replace("'", "''") + "'", String)


def _int(value: int):
    return literal_column(str(int(value)), Integer)


def county_sql(column):
    """SQL twin of ``county_of`` (``substr`` and ``CASE``: the same on SQLite and PostgreSQL).

    A segment of six digits ends with '/' at character 7, 14 or 21; a 9- or 12-digit
    segment never puts one at 14 or 21 (they start at 8 or 15 and end at 17, 24 or later).
    """
    slash, one = _text("/"), _int(1)
    return case((func.substr(column, _int(21), one) == slash, func.substr(column, one, _int(21))),
                (func.substr(column, _int(14), one) == slash, func.substr(column, one, _int(14))),
                else_=func.substr(column, one, _int(7)))


def prefecture_sql(column):
    """SQL twin of ``prefecture_of``."""
    slash, one = _text("/"), _int(1)
    return case((func.substr(column, _int(14), one) == slash, func.substr(column, one, _int(14))),
                else_=func.substr(column, one, _int(7)))


def _least(a, b):
    """SQL: the smaller of two non-null values (SQLite's two-argument ``min``)."""
    return func.least(a, b) if _dialect() == "postgresql" else func.min(a, b)


def project_times_sql():
    """SQL twin of ``project_times``: (leaves 未开始, closes) over ``Project``."""
    closes = _least(Project.ends_at, func.coalesce(Project.closed_on, Project.ends_at))
    return _least(Project.starts_at, closes), closes


def _plus_8h(column):
    return column + literal_column("INTERVAL '8 hours'", Interval)


def local_day_sql(column):
    """SQL: the local (UTC+8) date of a naive UTC timestamp column."""
    if _dialect() == "postgresql":
        return cast(_plus_8h(column), Date)
    return func.date(column, _text("+8 hours"))


def local_month_sql(column):
    """SQL: the first day of the local (UTC+8) month of a naive UTC timestamp column."""
    if _dialect() == "postgresql":
        return cast(func.date_trunc(_text("month"), _plus_8h(column)), Date)
    return func.date(column, _text("+8 hours"), _text("start of month"))


def month_sql(column):
    """SQL: the first day of the month of a date column."""
    if _dialect() == "postgresql":
        return cast(func.date_trunc(_text("month"), column), Date)
    return func.date(column, _text("start of month"))


def year_key_sql(column):
    """SQL twin of ``year_key`` over a date column."""
    if _dialect() == "postgresql":
        return func.to_char(column, _text("YYYY"))
    return func.strftime(_text("%Y"), column)


def quarter_key_sql(column):
    """SQL twin of ``quarter_key`` over a date column."""
    if _dialect() == "postgresql":
        return func.to_char(column, _text('YYYY"-Q"Q'))
    month = cast(func.strftime(_text("%m"), column), Integer)
    quarter = (month + _int(2)).self_group().op("/")(_int(3))  # integer division, not SQLAlchemy's "/"
    return func.strftime(_text("%Y"), column).op("||")(_text("-Q")).op("||")(cast(quarter, String))


def birth_key(birth_date: date | None) -> str:
    return f"{birth_date.year:04d}" if birth_date else ""


def birth_key_sql(column):
    """SQL twin of ``birth_key``: the birth year as four digits, or ''."""
    year = (func.to_char(column, _text("YYYY")) if _dialect() == "postgresql"
            else func.strftime(_text("%Y"), column))
    return func.coalesce(year, _text(""))


def _star_thresholds() -> list[int]:
    """STAR_LEVEL_HOURS as minutes, ascending (``volunteers.star_level`` counts those reached)."""
    from app.services.volunteers import star_thresholds

    return sorted(math.ceil(h * 60) for h in star_thresholds())  # whole minutes reach h hours from here


def star_key(minutes: int | None) -> str:
    from app.services.volunteers import star_level

    return str(star_level(minutes))


def star_key_sql(column):
    """SQL twin of ``star_key``: the number of thresholds reached, as text."""
    whens = [(column >= _int(threshold), _text(str(stars)))
             for stars, threshold in reversed(list(enumerate(_star_thresholds(), start=1)))]
    return case(*whens, else_=_text("0"))


# --- Upserts ---


def _insert(model):
    if _dialect() == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(model)


def _add(model, rows: list[dict]) -> None:
    """Count each row's ``value`` into the row with its key, at the commit of the current
    transaction (see ``init_app``): held per transaction, merged by key, and upserted
    just before COMMIT, after the facts' own writes, in one global key order."""
    session = db.session()
    transaction = session.get_nested_transaction() or session.get_transaction()
    if transaction is None:
        session.connection()  # begin, so the counts belong to the transaction of the facts
        transaction = session.get_transaction()
    keys = _PK[model]
    held = session.info.setdefault(_PENDING, {}).setdefault(transaction, {})
    for row in rows:
        _merge(held, (model.__tablename__, *(row[k] for k in keys)), row)


def _merge(held: dict, key: tuple, row: dict) -> None:
    if key in held:
        held[key] = {**held[key], "value": held[key]["value"] + row["value"]}
    else:
        held[key] = dict(row)


def _write(session, held: dict) -> None:
    """Upsert the held counts: ``INSERT … ON CONFLICT (pk) DO UPDATE SET value = value +
    excluded.value``, per table in a fixed order and by key within it, so concurrent
    writers lock shared rollup rows in the same order (and only after their facts).

    A community's ``community_groups`` row comes back with its new value (RETURNING,
    under the row's lock): when it crossed zero, the community's county (and prefecture)
    gains or loses a covered community (``COVERED``), upserted last, in key order too."""
    covered: list[dict] = []
    for model in ROLLUP_MODELS:
        table = model.__tablename__
        rows = [held[key] for key in sorted(k for k in held if k[0] == table) if held[key]["value"]]
        deltas = {row["region_id"]: row["value"] for row in rows
                  if model is StatTotal and row["metric"] == COMMUNITY_GROUPS}
        for start in range(0, len(rows), UPSERT_CHUNK):
            stmt = _insert(model).values(rows[start:start + UPSERT_CHUNK])
            stmt = stmt.on_conflict_do_update(index_elements=_PK[model],
                                              set_={"value": model.__table__.c.value + stmt.excluded.value})
            if not deltas:
                session.execute(stmt)
                continue
            returned = session.execute(stmt.returning(model.region_id, model.region_path, model.metric, model.value))
            for region_id, path, metric, value in returned:
                delta = deltas.get(region_id) if metric == COMMUNITY_GROUPS else None
                change = delta and int(value > 0) - int(value - delta > 0)
                if change:
                    county_id, county = _county_region(path)
                    covered.append(_total(county_id, county, COVERED, "", change))
    if covered:  # a second pass over these rows alone (none of them a community's: no third)
        merged: dict = {}
        for row in _with_prefectures(covered):
            _merge(merged, (StatTotal.__tablename__, *(row[k] for k in _PK[StatTotal])), row)
        _write(session, merged)


# --- The counts follow their transaction (and savepoints) ---

_PENDING = "rollups.pending"  # session.info: {SessionTransaction: {(table, *pk): row}}
_COMMITTED = "rollups.committed"  # session.info: transactions whose COMMIT (or RELEASE) went through
_PK = {model: [column.name for column in model.__table__.primary_key.columns] for model in ROLLUP_MODELS}


def _before_commit(session) -> None:
    """At the outermost COMMIT: the facts' pending writes first, then the held counts."""
    if session.get_nested_transaction() is not None:
        return  # a savepoint: its counts join the enclosing transaction when it ends
    held = session.info.get(_PENDING)
    if not held:
        return
    session.flush()
    merged: dict = {}
    for rows in held.values():
        for key, row in rows.items():
            _merge(merged, key, row)
    held.clear()
    _write(session, merged)


def _after_commit(session) -> None:
    transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_COMMITTED, set()).add(transaction)


def _after_transaction_end(session, transaction) -> None:
    """A committed savepoint hands its counts to the enclosing transaction; a rolled-back
    one (or transaction) drops them."""
    held = session.info.get(_PENDING)
    rows = held.pop(transaction, None) if held else None
    committed = transaction in session.info.get(_COMMITTED, ())
    if committed:
        session.info[_COMMITTED].discard(transaction)
    if rows and committed and transaction.parent is not None:
        parent = held.setdefault(transaction.parent, {})
        for key, row in rows.items():
            _merge(parent, key, row)


def _drop_held() -> None:
    db.session().info.pop(_PENDING, None)


def init_app(app=None) -> None:
    """Install the commit hooks on the session class, once per process."""
    from flask_sqlalchemy.session import Session as FlaskSession

    for name, handler in (("before_commit", _before_commit), ("after_commit", _after_commit),
                          ("after_transaction_end", _after_transaction_end)):
        if not event.contains(FlaskSession, name, handler):
            event.listen(FlaskSession, name, handler)


def _region_at(path: str) -> tuple[int, str]:
    """(id, path) of the region with ``path`` (one indexed lookup)."""
    region_id = db.session.scalar(select(Region.id).where(Region.path == path))
    if region_id is None:
        raise LookupError(f"no region with path {path}")
    return region_id, path


def _county_region(path: str) -> tuple[int, str]:
    """(id, path) of the region at the county level of ``path``."""
    return _region_at(county_of(path))


def _with_prefectures(rows: list[dict]) -> list[dict]:
    """``rows`` and the same counts at their prefectures (``prefecture_metric``)."""
    regions = {path: _region_at(path) for path in {prefecture_of(row["region_path"]) for row in rows}}
    wide = []
    for row in rows:
        region_id, region_path = regions[prefecture_of(row["region_path"])]
        wide.append({**row, "metric": prefecture_metric(row["metric"]), "region_id": region_id,
                     "region_path": region_path})
    return rows + wide


def _total(region_id: int, region_path: str, metric: str, key: str, value: int) -> dict:
    return dict(region_id=region_id, region_path=region_path, metric=metric, key=key, value=value)


# --- Writers (called by the services, in the fact's transaction) ---


def _volunteer_totals(volunteer: Volunteer, region_id: int, region_path: str, sign: int) -> list[dict]:
    county_id, county = _county_region(region_path)
    return _with_prefectures([
        _total(region_id, region_path, VOLUNTEERS, "", sign),
        _total(county_id, county, VOL_GENDER, volunteer.gender or "", sign),
        _total(county_id, county, VOL_BIRTH, birth_key(volunteer.birth_date), sign),
        _total(county_id, county, VOL_STAR, star_key(volunteer.total_minutes), sign),
    ])


def volunteer_counted(volunteer: Volunteer, sign: int) -> None:
    """A volunteer became approved (``sign`` +1: the current counts at their home, and
    ``vol_new`` on the local day of ``approved_on`` at their home county) or left approved
    status (−1: the current counts only). Call after ``approved_on`` is set."""
    _add(StatTotal, _volunteer_totals(volunteer, volunteer.region_id, volunteer.region_path, sign))
    if sign > 0 and volunteer.approved_on is not None:
        county_id, county = _county_region(volunteer.region_path)
        _add_days([dict(region_id=county_id, region_path=county, day=local_day(volunteer.approved_on),
                            metric=VOL_NEW, key="", value=1)])


def volunteer_moved(volunteer: Volunteer, destination: Region) -> None:
    """转移接续: move an approved volunteer's current counts from their home (still on the
    row: call before it changes) to ``destination``. ``vol_new`` stays where it was."""
    _add(StatTotal, _volunteer_totals(volunteer, volunteer.region_id, volunteer.region_path, -1)
         + _volunteer_totals(volunteer, destination.id, destination.path, +1))


def star_moved(region_path: str, old_minutes: int, new_minutes: int) -> None:
    """An approved volunteer living at ``region_path`` went from ``old_minutes`` to
    ``new_minutes`` approved minutes: move them between star levels if a threshold lies
    between (nothing happens otherwise, not even a lookup)."""
    old, new = star_key(old_minutes), star_key(new_minutes)
    if old == new:
        return
    county_id, county = _county_region(region_path)
    _add(StatTotal, _with_prefectures([_total(county_id, county, VOL_STAR, old, -1),
                                       _total(county_id, county, VOL_STAR, new, +1)]))


def minutes_credited(record: ServiceRecord, minutes: int) -> None:
    """``minutes`` of ``record`` were approved (negative for a correction that takes
    hours away): ``minutes`` per county of the record's region, service day and the
    project's category; and per group and month when the record names a group (a
    correction copies its original's project and group)."""
    if not minutes:
        return
    county_id, county = _county_region(record.region_path)
    category = ""
    if record.project_id is not None:  # under a share lock: an edit of the category waits (projects.update_project)
        category = db.session.scalar(select(Project.category).where(Project.id == record.project_id)
                                     .with_for_update(read=True)) or ""
    _add_days([dict(region_id=county_id, region_path=county, day=record.served_on, metric=MINUTES,
                        key=category, value=minutes)])
    if record.group_id is not None:
        _group_month(record.group_id, month_of(record.served_on), MINUTES, minutes)


def project_recategorised(project: Project, old_category: str | None) -> None:
    """An open project's service category changed (its admin edited it): move the
    project's approved minutes from the old key to the new one (one grouped read of the
    project's records: a row per service region and day)."""
    old, new = old_category or "", project.category or ""
    if old == new:
        return
    rows = db.session.execute(
        select(ServiceRecord.region_path, ServiceRecord.served_on, func.sum(ServiceRecord.minutes))
        .where(ServiceRecord.project_id == project.id, ServiceRecord.status == RecordStatus.APPROVED)
        .group_by(ServiceRecord.region_path, ServiceRecord.served_on)).all()
    counties = {path: _county_region(path) for path in {row[0] for row in rows}}
    changes = []
    for path, day, minutes in rows:
        county_id, county = counties[path]
        changes += [dict(region_id=county_id, region_path=county, day=day, metric=MINUTES, key=key, value=value)
                    for key, value in ((old, -minutes), (new, minutes))]
    _add_days(changes)


def project_counted(project: Project, sign: int) -> None:
    """A project was created (+1), or its dates, category or region are about to change or
    it is about to close or be suspended (−1 before, +1 after): count its two moments
    (``project_times``) on their local days at its province (``PROJ_STARTED``,
    ``PROJ_CLOSED``), keyed by its service category. The caller holds the project's row lock."""
    province_id, province = _region_at(province_of(project.region_path))
    _add_days([dict(region_id=province_id, region_path=province, day=local_day(moment), metric=metric,
                    key=project.category or "", value=sign)
               for metric, moment in zip((PROJ_STARTED, PROJ_CLOSED), project_times(project))], prefectures=False)


def group_counted(group: VolunteerGroup, sign: int) -> None:
    """A group became approved (+1) or left approved status (−1), at its own region (and
    at its prefecture, keyed by the tier of its region and its type)."""
    level = db.session.scalar(select(Region.level).where(Region.id == group.region_id))
    prefecture_id, prefecture = _region_at(prefecture_of(group.region_path))
    rows = [_total(group.region_id, group.region_path, GROUPS, group.group_type, sign),
            _total(prefecture_id, prefecture, prefecture_metric(GROUPS), tier_key(level, group.group_type), sign)]
    if level == Region.COMMUNITY:  # its first / last group changes the communities covered (see _write)
        rows.append(_total(group.region_id, group.region_path, COMMUNITY_GROUPS, "", sign))
    _add(StatTotal, rows)


def members_changed(membership: Membership, sign: int) -> None:
    """A membership became active (+1; call after ``decided_on`` is stamped) or stops
    being active (−1; call *before* ``decided_on`` is overwritten): counted in the local
    month it became active (``decided_on``, else ``created_on``)."""
    moment = membership.decided_on or membership.created_on
    _group_month(membership.group_id, month_of(local_day(moment)), MEMBERS, sign)


def _add_days(rows: list[dict], prefectures: bool = True) -> None:
    """Count ``StatDay`` rows, and the same values into their months (``StatMonth``, and
    unless told not to at their prefectures)."""
    _add(StatDay, rows)
    months = [{**{k: v for k, v in row.items() if k != "day"}, "month": month_of(row["day"])} for row in rows]
    _add(StatMonth, _with_prefectures(months) if prefectures else months)


def _group_month(group_id: int, month: date, metric: str, value: int) -> None:
    """Count into the group's month; minutes also into its year and quarter, members
    into all time."""
    group = db.session.get(VolunteerGroup, group_id)  # usually in the session already
    paths = dict(group_path=group.group_path or "", region_path=group.region_path)
    _add(StatGroupMonth, [dict(group_id=group_id, month=month, metric=metric, value=value, **paths)])
    periods = (year_key(month), quarter_key(month)) if metric == MINUTES else (ALL_TIME,)
    _add(StatGroupPeriod, [dict(group_id=group_id, period=period, metric=metric, value=value, **paths)
                           for period in periods])


# --- Rebuild ---


def is_empty() -> bool:
    """True when the rollups hold none of the first counts (volunteers, groups, minutes,
    new volunteers, a group's months): a database seeded before the rollups existed. The
    migrations that came later fill their own rows from what is there (projects by day
    from the project table, covered communities from the groups), so a row of theirs does
    not mean the rest were ever counted."""
    first = ((StatTotal, StatTotal.metric.in_((VOLUNTEERS, GROUPS))), (StatDay, StatDay.metric.in_((MINUTES, VOL_NEW))),
             (StatGroupMonth, StatGroupMonth.metric.in_((MINUTES, MEMBERS))))
    return all(db.session.scalar(select(literal(1)).select_from(model).where(where).limit(1)) is None
               for model, where in first)


def _clear() -> None:
    """Delete every rollup row. PostgreSQL: one TRUNCATE, whose lock waits for writers
    that have touched a rollup table to commit (their facts are then visible to the
    rebuild) and holds back the others until the rebuild commits (their upserts then add
    to the rebuilt counts) — so a rebuild loses no concurrent write. SQLite: the rebuild
    holds the write lock."""
    if _dialect() == "postgresql":
        names = ", ".join(model.__tablename__ for model in ROLLUP_MODELS)
        db.session.execute(text(f"TRUNCATE {names}"))
    else:
        for model in ROLLUP_MODELS:
            db.session.execute(delete(model))


def _insert_from(model, columns: list[str], query) -> None:
    db.session.execute(model.__table__.insert().from_select(columns, query))


def _rebuild_vol_new() -> None:
    """``vol_new``: every volunteer ever approved, on the local day of ``approved_on``, at
    the county of their home then (the first approved transfer's origin, else their home)."""
    first_origin = (select(TransferRequest.from_region_path)
                    .where(TransferRequest.volunteer_id == Volunteer.id,
                           TransferRequest.status == RequestStatus.APPROVED)
                    .order_by(TransferRequest.decided_on, TransferRequest.id).limit(1)
                    .correlate(Volunteer).scalar_subquery())
    per_day = (select(county_sql(func.coalesce(first_origin, Volunteer.region_path)).label("county"),
                      local_day_sql(Volunteer.approved_on).label("day"))
               .where(Volunteer.approved_on.is_not(None)).subquery())
    query = (select(Region.id, per_day.c.day, _text(VOL_NEW), _text(""), Region.path, func.count())
             .join(Region, Region.path == per_day.c.county)
             .group_by(Region.id, Region.path, per_day.c.day))
    _insert_from(StatDay, ["region_id", "day", "metric", "key", "region_path", "value"], query)


def _rebuild_minutes() -> None:
    """``minutes`` per county × service day × category, and per group × month: approved
    records (corrections included, negative ones too); grouped before the joins."""
    approved = ServiceRecord.status == RecordStatus.APPROVED
    per_day = (select(county_sql(ServiceRecord.region_path).label("county"), ServiceRecord.served_on.label("day"),
                      ServiceRecord.project_id.label("project_id"), func.sum(ServiceRecord.minutes).label("minutes"))
               .where(approved)
               .group_by(county_sql(ServiceRecord.region_path), ServiceRecord.served_on, ServiceRecord.project_id)
               .subquery())
    category = func.coalesce(Project.category, _text(""))
    total = func.sum(per_day.c.minutes)
    query = (select(Region.id, per_day.c.day, _text(MINUTES), category, Region.path, total)
             .join(Region, Region.path == per_day.c.county)
             .outerjoin(Project, Project.id == per_day.c.project_id)
             .group_by(Region.id, Region.path, per_day.c.day, category)
             .having(total != 0))
    _insert_from(StatDay, ["region_id", "day", "metric", "key", "region_path", "value"], query)

    per_month = (select(ServiceRecord.group_id.label("group_id"), month_sql(ServiceRecord.served_on).label("month"),
                        func.sum(ServiceRecord.minutes).label("value"))
                 .where(approved, ServiceRecord.group_id.is_not(None))
                 .group_by(ServiceRecord.group_id, month_sql(ServiceRecord.served_on))
                 .having(func.sum(ServiceRecord.minutes) != 0).subquery())
    _insert_group_months(per_month, MINUTES)


def _rebuild_projects() -> None:
    """``proj_started`` / ``proj_closed``: every project, on the local days of its two
    moments (``project_times_sql``), at its province, by category."""
    for metric, moment in zip((PROJ_STARTED, PROJ_CLOSED), project_times_sql()):
        per_project = (select(func.substr(Project.region_path, _int(1), _int(7)).label("province"),
                              local_day_sql(moment).label("day"),
                              func.coalesce(Project.category, _text("")).label("key")).subquery())
        query = (select(Region.id, per_project.c.day, _text(metric), per_project.c.key, Region.path, func.count())
                 .join(Region, Region.path == per_project.c.province)
                 .group_by(Region.id, Region.path, per_project.c.day, per_project.c.key))
        _insert_from(StatDay, ["region_id", "day", "metric", "key", "region_path", "value"], query)


def _rebuild_coarser() -> None:
    """``StatMonth`` from ``StatDay``, ``StatGroupPeriod`` from ``StatGroupMonth`` (after
    those are rebuilt): the same sums by month; minutes by year and quarter, members
    over all time."""
    month = month_sql(StatDay.day)
    total = func.sum(StatDay.value)
    _insert_from(StatMonth, ["region_id", "month", "metric", "key", "region_path", "value"],
                 select(StatDay.region_id, month, StatDay.metric, StatDay.key, StatDay.region_path, total)
                 .group_by(StatDay.region_id, month, StatDay.metric, StatDay.key, StatDay.region_path)
                 .having(total != 0))
    for metric, period in ((MINUTES, year_key_sql(StatGroupMonth.month)),
                           (MINUTES, quarter_key_sql(StatGroupMonth.month)), (MEMBERS, None)):
        total = func.sum(StatGroupMonth.value)
        keys = [StatGroupMonth.group_id, StatGroupMonth.metric] + ([period] if period is not None else [])
        _insert_from(StatGroupPeriod, ["group_id", "period", "metric", "group_path", "region_path", "value"],
                     select(StatGroupMonth.group_id, _text(ALL_TIME) if period is None else period,
                            StatGroupMonth.metric, func.max(StatGroupMonth.group_path),
                            func.max(StatGroupMonth.region_path), total)
                     .where(StatGroupMonth.metric == metric)
                     .group_by(*keys)  # PostgreSQL refuses a constant in GROUP BY
                     .having(total != 0))


def _rebuild_members() -> None:
    """``members``: active memberships per group, in the local month they became active."""
    activated = func.coalesce(Membership.decided_on, Membership.created_on)
    per_month = (select(Membership.group_id.label("group_id"), local_month_sql(activated).label("month"),
                        func.count().label("value"))
                 .where(Membership.status == MembershipStatus.ACTIVE)
                 .group_by(Membership.group_id, local_month_sql(activated)).subquery())
    _insert_group_months(per_month, MEMBERS)


def _insert_group_months(per_month, metric: str) -> None:
    query = (select(per_month.c.group_id, per_month.c.month, _text(metric),
                    func.coalesce(VolunteerGroup.group_path, _text("")), VolunteerGroup.region_path, per_month.c.value)
             .join(VolunteerGroup, VolunteerGroup.id == per_month.c.group_id))
    _insert_from(StatGroupMonth, ["group_id", "month", "metric", "group_path", "region_path", "value"], query)


def _rebuild_totals() -> None:
    """The current counts: approved volunteers at their home region and, per home county,
    by gender, birth year and star level; approved groups by type at their region."""
    approved = Volunteer.status == ReviewStatus.APPROVED
    columns = ["region_id", "metric", "key", "region_path", "value"]
    _insert_from(StatTotal, columns,
                 select(Volunteer.region_id, _text(VOLUNTEERS), _text(""), Volunteer.region_path, func.count())
                 .where(approved).group_by(Volunteer.region_id, Volunteer.region_path))
    for metric, key in ((VOL_GENDER, func.coalesce(Volunteer.gender, _text(""))),
                        (VOL_BIRTH, birth_key_sql(Volunteer.birth_date)),
                        (VOL_STAR, star_key_sql(Volunteer.total_minutes))):
        per_county = (select(county_sql(Volunteer.region_path).label("county"), cast(key, String).label("key"),
                             func.count().label("n"))
                      .where(approved).group_by(county_sql(Volunteer.region_path), key).subquery())
        _insert_from(StatTotal, columns,
                     select(Region.id, _text(metric), per_county.c.key, Region.path, per_county.c.n)
                     .join(Region, Region.path == per_county.c.county))
    _insert_from(StatTotal, columns,
                 select(VolunteerGroup.region_id, _text(GROUPS), VolunteerGroup.group_type,
                        VolunteerGroup.region_path, func.count())
                 .where(VolunteerGroup.status == ReviewStatus.APPROVED)
                 .group_by(VolunteerGroup.region_id, VolunteerGroup.region_path, VolunteerGroup.group_type))
    _insert_from(StatTotal, columns,
                 select(VolunteerGroup.region_id, _text(COMMUNITY_GROUPS), _text(""), VolunteerGroup.region_path,
                        func.count())
                 .join(Region, Region.id == VolunteerGroup.region_id)
                 .where(VolunteerGroup.status == ReviewStatus.APPROVED, Region.level == Region.COMMUNITY)
                 .group_by(VolunteerGroup.region_id, VolunteerGroup.region_path))
    communities = (select(county_sql(StatTotal.region_path).label("county"))
                   .where(StatTotal.metric == COMMUNITY_GROUPS).subquery())
    _insert_from(StatTotal, columns,
                 select(Region.id, _text(COVERED), _text(""), Region.path, func.count()).select_from(communities)
                 .join(Region, Region.path == communities.c.county).group_by(Region.id, Region.path))


def _rebuild_prefectures() -> None:
    """The prefecture rows, from the county (and finer) rows of ``StatMonth`` and
    ``StatTotal`` (after those are rebuilt): summed per ``prefecture_sql(region_path)``."""
    for model, month in ((StatMonth, StatMonth.month), (StatTotal, None)):
        prefecture = aliased(Region)
        own = aliased(Region)
        tiered = model.metric == _text(GROUPS)
        key = case((tiered, cast(own.level, String).op("||")(_text(":")).op("||")(model.key)), else_=model.key)
        total = func.sum(model.value)
        keys = [prefecture.id, prefecture.path, model.metric, key] + ([month] if month is not None else [])
        columns = ["region_id", "metric", "key", "region_path", "value"] + (["month"] if month is not None else [])
        _insert_from(model, columns,
                     select(prefecture.id, model.metric.op("||")(_text(PREFECTURE_SUFFIX)), key, prefecture.path,
                            total, *([month] if month is not None else []))
                     .join(prefecture, prefecture.path == prefecture_sql(model.region_path))
                     .join(own, own.id == model.region_id)
                     .where(model.metric.in_(PREFECTURE_METRICS))
                     .group_by(*keys).having(total != 0))


def rebuild() -> dict[str, int]:
    """Delete every rollup row and recompute all metrics from the fact tables, set-based
    (one INSERT … SELECT … GROUP BY per metric, no loop over facts); return the rows
    written per table. Runs in the caller's transaction (the caller commits); on SQLite
    it first takes the write lock when no transaction is open yet."""
    from app.extensions import begin_write

    if _dialect() == "sqlite" and not db.session().in_transaction():
        begin_write()
    _drop_held()  # what the writers hold for this transaction is in the facts the rebuild reads
    _clear()
    _rebuild_vol_new()
    _rebuild_minutes()
    _rebuild_members()
    _rebuild_projects()
    _rebuild_coarser()
    _rebuild_totals()
    _rebuild_prefectures()
    db.session.flush()
    return {model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
            for model in ROLLUP_MODELS}


def rebuild_stars() -> int:
    """Recount ``vol_star`` (per home county, and its prefecture rows) from the volunteers'
    approved minutes under the current STAR_LEVEL_HOURS, in the caller's transaction;
    return the county rows written. Called when the thresholds change (运行参数): the
    other metrics do not depend on them. PostgreSQL: ``stat_total`` is locked against
    writers (readers go on) until the caller commits, so no upsert lands in between."""
    from app.extensions import begin_write

    if _dialect() == "sqlite" and not db.session().in_transaction():
        begin_write()
    elif _dialect() == "postgresql":
        db.session.execute(text("LOCK TABLE stat_total IN SHARE ROW EXCLUSIVE MODE"))
    db.session.execute(delete(StatTotal).where(StatTotal.metric.in_((VOL_STAR, prefecture_metric(VOL_STAR)))))
    key = star_key_sql(Volunteer.total_minutes)
    per_county = (select(county_sql(Volunteer.region_path).label("county"), cast(key, String).label("key"),
                         func.count().label("n"))
                  .where(Volunteer.status == ReviewStatus.APPROVED)
                  .group_by(county_sql(Volunteer.region_path), key).subquery())
    columns = ["region_id", "metric", "key", "region_path", "value"]
    _insert_from(StatTotal, columns, select(Region.id, _text(VOL_STAR), per_county.c.key, Region.path, per_county.c.n)
                 .join(Region, Region.path == per_county.c.county))
    prefecture = aliased(Region)
    total = func.sum(StatTotal.value)
    _insert_from(StatTotal, columns,
                 select(prefecture.id, _text(prefecture_metric(VOL_STAR)), StatTotal.key, prefecture.path, total)
                 .join(prefecture, prefecture.path == prefecture_sql(StatTotal.region_path))
                 .where(StatTotal.metric == VOL_STAR)
                 .group_by(prefecture.id, prefecture.path, StatTotal.key).having(total != 0))
    db.session.flush()
    return db.session.scalar(select(func.count()).select_from(StatTotal).where(StatTotal.metric == VOL_STAR))


def snapshot() -> dict[str, set[tuple]]:
    """Every non-zero rollup row as a tuple, per table (for tests and checks: compare the
    counts the writers kept with a ``rebuild``)."""
    out = {}
    for model in ROLLUP_MODELS:
        table = model.__table__
        columns = [c for c in table.columns]
        rows = db.session.execute(select(*columns).where(table.c.value != 0)).all()
        out[model.__tablename__] = {tuple(_plain(v) for v in row) for row in rows}
    return out


def _plain(value):
    """Dates as ISO text (SQLite returns what was stored, PostgreSQL a date), ints as ints."""
    if isinstance(value, (date, datetime)):
        return value.isoformat()[:10]
    return value

