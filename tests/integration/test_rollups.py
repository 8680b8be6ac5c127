"""Statistics rollups (issue 8, items 4 and 5): ``stat_day``, ``stat_total`` and
``stat_group_month`` kept by the services in the facts' transaction equal a fresh
``rollups.rebuild()`` and direct counts over the fact tables — on the demo, after
a random sequence of real writes (a hypothesis state machine: registrations, group
entry, backfill, 申请时长 decided either way, hour codes, corrections ± by the group
and asked for by the volunteer, records imported from another system and their
corrections, transfers, joining, leaving, removal, join requests, group review), and
after each kind of write once in a fixed order (star levels move both ways, a project
changes category, a move inside one county), and after the same kinds of write
through the HTTP pages. Also: concurrent credits on one hot row lose nothing, two
interleaved writers do not deadlock (PostgreSQL), savepoints keep or drop their
counts, the audit log holds no ``stat_*`` events, ``flask stats rebuild``, the demo
load, and the civil-unit register (区域监管 → 文明单位).

The direct counts never use ``rollups``' own SQL: the county of a path is found from
``Region.level`` (the deepest ancestor at county level or above), sums are made in
Python over plain SELECTs of the facts.
"""
from __future__ import annotations

import io
import itertools
import json
import threading
import time
from collections import Counter
from datetime import date, datetime, timedelta

import pytest
from flask import current_app, g
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from app.extensions import db
from app.models import (
    SERVICE_CATEGORIES, AuditEvent, CivilUnit, Enrollment, GroupType, Membership, MembershipStatus, Position,
    Project, RecordImport, RecordSource, RecordStatus, Region, RequestStatus, ReviewStatus, ServiceRecord, StatDay,
    StatGroupMonth, StatGroupPeriod, StatMonth, StatTotal, TransferRequest, User, Volunteer, VolunteerGroup,
)
from app.security import pii
from app.services import (
    groups, hours, memberships, projects, record_exchange, rollups, rosters, transfers, volunteers,
)
from app.services.clock import today
from app.services.errors import DomainError
from app.services.volunteers import star_level
from tests.conftest import login
from tests.integration._hours_helpers import (
    BACKFILL, BOOKSTORE, BOOKSTORE_GUIDE, accepted_in, acting, adult_volunteers, free_day, position_of, volunteer_of,
)

BOOKSTORE_TEAM = "北书店街道社区志愿服务队"  # open, 龙亭区 北书店街道 (a street)
TIETA_TEAM = "铁塔街道社区志愿服务队"  # open, 顺河回族区
QINGPING_TEAM = "清平街道社区志愿服务队"  # join password
CULTURE_TEAM = "龙亭区文化馆志愿服务队"  # verify
LONGTING_CORPS = "龙亭区志愿服务总队"
TEAM_PASSWORD = "123456"
LOW_STARS = (3, 8, 15, 30, 60)  # hours: stars move within a few steps
# Homes a transfer moves to, and service regions of imported records: community,
# street, county, prefecture and province level, in 开封 and 郑州.
DESTINATIONS = ("410202001001", "410202003", "410203", "410204", "410105")
IMPORT_REGIONS = ("410202001001", "410203002", "410203", "410200", "410105", "410000")
_ids = itertools.count(1)


# --- Comparisons ---


def _diff(kept: dict[str, set], fresh: dict[str, set], limit: int = 6) -> list[str]:
    problems = []
    for table in sorted(set(kept) | set(fresh)):
        extra = sorted(kept.get(table, set()) - fresh.get(table, set()))
        missing = sorted(fresh.get(table, set()) - kept.get(table, set()))
        problems += [f"{table}: kept {row} not in rebuild" for row in extra[:limit]]
        problems += [f"{table}: rebuild {row} not kept" for row in missing[:limit]]
    return problems


def kept_vs_rebuild() -> list[str]:
    """Differences between the rollups as kept and a fresh rebuild (rolled back after)."""
    db.session.rollback()
    kept = rollups.snapshot()
    rollups.rebuild()
    fresh = rollups.snapshot()
    db.session.rollback()
    return _diff(kept, fresh)


def _county_finder():
    """path -> the path of its deepest ancestor-or-self at county level or above (by Region.level)."""
    levels = dict(db.session.execute(select(Region.path, Region.level)).all())

    def county(path: str) -> str:
        segments = path.rstrip("/").split("/")
        best = None
        for n in range(1, len(segments) + 1):
            prefix = "/".join(segments[:n]) + "/"
            if levels[prefix] <= Region.COUNTY:
                best = prefix
        return best

    return county


def _local_month(moment: datetime) -> str:
    return (moment + timedelta(hours=8)).date().replace(day=1).isoformat()


def _sum(rows) -> dict:
    out: Counter = Counter()
    for key, value in rows:
        out[key] += value
    return {k: v for k, v in out.items() if v}


def direct_mismatches() -> list[str]:
    """The rollups summed up against counts made directly from the fact tables."""
    county = _county_finder()
    problems = []

    def compare(name, kept, direct):
        kept, direct = _sum(kept), _sum(direct)
        if kept != direct:
            keys = sorted(set(kept) | set(direct), key=str)
            problems.extend(f"{name} {k}: rollup {kept.get(k)} != facts {direct.get(k)}"
                            for k in keys if kept.get(k) != direct.get(k))

    approved = list(db.session.execute(select(Volunteer.region_path, Volunteer.gender, Volunteer.birth_date,
                                              Volunteer.total_minutes).where(Volunteer.status == ReviewStatus.APPROVED)))
    totals = list(db.session.execute(select(StatTotal.metric, StatTotal.key, StatTotal.region_path, StatTotal.value)))
    compare("volunteers per home region",
            [(p, v) for m, _k, p, v in totals if m == rollups.VOLUNTEERS], [(row[0], 1) for row in approved])
    compare("volunteers per county",
            [(county(p), v) for m, _k, p, v in totals if m == rollups.VOLUNTEERS],
            [(county(row[0]), 1) for row in approved])
    compare("gender per county", [((p, k), v) for m, k, p, v in totals if m == rollups.VOL_GENDER],
            [((county(r[0]), r[1] or ""), 1) for r in approved])
    compare("birth year per county", [((p, k), v) for m, k, p, v in totals if m == rollups.VOL_BIRTH],
            [((county(r[0]), f"{r[2].year:04d}" if r[2] else ""), 1) for r in approved])
    compare("star level per county", [((p, k), v) for m, k, p, v in totals if m == rollups.VOL_STAR],
            [((county(r[0]), str(star_level(r[3]))), 1) for r in approved])
    compare("approved groups per region and type", [((p, k), v) for m, k, p, v in totals if m == rollups.GROUPS],
            [((p, t), 1) for p, t in db.session.execute(select(VolunteerGroup.region_path, VolunteerGroup.group_type)
                                                        .where(VolunteerGroup.status == ReviewStatus.APPROVED))])

    days = list(db.session.execute(select(StatDay.metric, StatDay.key, StatDay.region_path, StatDay.day,
                                          StatDay.value)))
    records = list(db.session.execute(
        select(ServiceRecord.region_path, ServiceRecord.served_on, ServiceRecord.minutes, Project.category,
               ServiceRecord.group_id)
        .outerjoin(Project, Project.id == ServiceRecord.project_id).where(ServiceRecord.status == RecordStatus.APPROVED)))
    compare("approved minutes per county and month",
            [((p, d.replace(day=1)), v) for m, _k, p, d, v in days if m == rollups.MINUTES],
            [((county(r[0]), r[1].replace(day=1)), r[2]) for r in records])
    compare("approved minutes per category", [(k, v) for m, k, _p, _d, v in days if m == rollups.MINUTES],
            [(r[3] or "", r[2]) for r in records])
    approvals = list(db.session.scalars(select(Volunteer.approved_on).where(Volunteer.approved_on.is_not(None))))
    compare("volunteers approved per local month",
            [(d.replace(day=1).isoformat(), v) for m, _k, _p, d, v in days if m == rollups.VOL_NEW],
            [(_local_month(moment), 1) for moment in approvals])

    months = list(db.session.execute(select(StatGroupMonth.metric, StatGroupMonth.group_id, StatGroupMonth.value)))
    compare("approved minutes per group", [(gid, v) for m, gid, v in months if m == rollups.MINUTES],
            [(r[4], r[2]) for r in records if r[4] is not None])
    compare("active members per group", [(gid, v) for m, gid, v in months if m == rollups.MEMBERS],
            [(gid, 1) for gid in db.session.scalars(select(Membership.group_id).where(
                Membership.status == MembershipStatus.ACTIVE))])
    month_rows = list(db.session.execute(select(StatMonth.metric, StatMonth.key, StatMonth.region_path,
                                                StatMonth.month, StatMonth.value)))
    compare("stat_month minutes per county, month and category",
            [((p, _iso(d), k), v) for m, k, p, d, v in month_rows if m == rollups.MINUTES],
            [((county(r[0]), r[1].replace(day=1).isoformat(), r[3] or ""), r[2]) for r in records])
    compare("stat_month volunteers approved per local month",
            [(_iso(d), v) for m, _k, _p, d, v in month_rows if m == rollups.VOL_NEW],
            [(_local_month(moment), 1) for moment in approvals])
    periods = list(db.session.execute(select(StatGroupPeriod.metric, StatGroupPeriod.group_id,
                                             StatGroupPeriod.period, StatGroupPeriod.value)))
    compare("approved minutes per group and year", [((g, p), v) for m, g, p, v in periods if len(p) == 4],
            [((r[4], f"{r[1].year}"), r[2]) for r in records if r[4] is not None])
    compare("active members per group (all time)",
            [(g, v) for m, g, p, v in periods if m == rollups.MEMBERS and p == rollups.ALL_TIME],
            [(gid, 1) for gid in db.session.scalars(select(Membership.group_id).where(
                Membership.status == MembershipStatus.ACTIVE))])
    compare("approved minutes per group and quarter", [((g, p), v) for m, g, p, v in periods if len(p) == 7],
            [((r[4], f"{r[1].year}-Q{(r[1].month - 1) // 3 + 1}"), r[2]) for r in records if r[4] is not None])

    # The prefecture rows (a province's dashboard reads them), each against the facts.
    prefecture, wide = _prefecture_of, rollups.prefecture_metric
    compare("prefecture rows: stat_month minutes per prefecture, month and category",
            [((p, _iso(d), k), v) for m, k, p, d, v in month_rows if m == wide(rollups.MINUTES)],
            [((prefecture(r[0]), r[1].replace(day=1).isoformat(), r[3] or ""), r[2]) for r in records])
    first_homes = _homes_at_approval()
    compare("prefecture rows: volunteers approved per prefecture and local month",
            [((p, _iso(d)), v) for m, _k, p, d, v in month_rows if m == wide(rollups.VOL_NEW)],
            [((prefecture(home), _local_month(moment)), 1) for home, moment in first_homes])
    compare("prefecture rows: volunteers per prefecture",
            [(p, v) for m, _k, p, v in totals if m == wide(rollups.VOLUNTEERS)],
            [(prefecture(row[0]), 1) for row in approved])
    compare("prefecture rows: gender, birth year and star level per prefecture",
            [((m, p, k), v) for m, k, p, v in totals
             if m in (wide(rollups.VOL_GENDER), wide(rollups.VOL_BIRTH), wide(rollups.VOL_STAR))],
            [((wide(rollups.VOL_GENDER), prefecture(r[0]), r[1] or ""), 1) for r in approved]
            + [((wide(rollups.VOL_BIRTH), prefecture(r[0]), f"{r[2].year:04d}" if r[2] else ""), 1) for r in approved]
            + [((wide(rollups.VOL_STAR), prefecture(r[0]), str(star_level(r[3]))), 1) for r in approved])
    compare("prefecture rows: approved groups per prefecture, tier and type",
            [((p, k), v) for m, k, p, v in totals if m == wide(rollups.GROUPS)],
            [((prefecture(path), f"{level}:{group_type}"), 1) for path, level, group_type in db.session.execute(
                select(VolunteerGroup.region_path, Region.level, VolunteerGroup.group_type)
                .join(Region, Region.id == VolunteerGroup.region_id)
                .where(VolunteerGroup.status == ReviewStatus.APPROVED))])
    # Communities with an approved group located there: per community, per county, per prefecture.
    at_communities = list(db.session.scalars(
        select(VolunteerGroup.region_path).join(Region, Region.id == VolunteerGroup.region_id)
        .where(VolunteerGroup.status == ReviewStatus.APPROVED, Region.level == Region.COMMUNITY)))
    compare("approved groups per community", [(p, v) for m, _k, p, v in totals if m == rollups.COMMUNITY_GROUPS],
            [(p, 1) for p in at_communities])
    compare("communities with a group per county", [(p, v) for m, _k, p, v in totals if m == rollups.COVERED],
            [(county(p), 1) for p in set(at_communities)])
    compare("communities with a group per prefecture",
            [(p, v) for m, _k, p, v in totals if m == wide(rollups.COVERED)],
            [(prefecture(p), 1) for p in set(at_communities)])

    # Projects: each counted at its province on the local days it left 未开始 and closed.
    started, closed = [], []
    for path, category, starts_at, ends_at, closed_on in db.session.execute(
            select(Project.region_path, Project.category, Project.starts_at, Project.ends_at, Project.closed_on)):
        closes = min(ends_at, closed_on) if closed_on else ends_at  # written out here, not project_times
        key = (path.split("/")[0] + "/", category or "")
        started.append(((*key, _local_day(min(starts_at, closes))), 1))
        closed.append(((*key, _local_day(closes)), 1))
    compare("projects leaving 未开始 per province, local day and category",
            [((p, k, _iso(d)), v) for m, k, p, d, v in days if m == rollups.PROJ_STARTED], started)
    compare("projects closing per province, local day and category",
            [((p, k, _iso(d)), v) for m, k, p, d, v in days if m == rollups.PROJ_CLOSED], closed)
    db.session.rollback()
    return problems


def _local_day(moment: datetime) -> str:
    return (moment + timedelta(hours=8)).date().isoformat()


def _prefecture_of(path: str) -> str:
    """The first two segments of a path (the province's child), or the province: written
    here by splitting, not with the code's cut by position."""
    segments = path.rstrip("/").split("/")
    return "/".join(segments[:2]) + "/"


def _homes_at_approval() -> list[tuple[str, datetime]]:
    """(home region path at approval, approval time) of every volunteer ever approved: the
    origin of their first approved transfer, else their home."""
    first_origin: dict[int, str] = {}
    for volunteer_id, origin in db.session.execute(
            select(TransferRequest.volunteer_id, TransferRequest.from_region_path)
            .where(TransferRequest.status == RequestStatus.APPROVED)
            .order_by(TransferRequest.decided_on.desc(), TransferRequest.id.desc())):
        first_origin[volunteer_id] = origin  # the earliest wins (written last)
    return [(first_origin.get(vid, path), moment) for vid, path, moment in db.session.execute(
        select(Volunteer.id, Volunteer.region_path, Volunteer.approved_on).where(Volunteer.approved_on.is_not(None)))]


def _iso(day) -> str:
    return day.isoformat()[:10] if hasattr(day, "isoformat") else str(day)[:10]


def _stat_audit_events() -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.object_type.like("stat%")))


# --- Paths and days ---


def test_county_of__python_and_sql_cut_paths_alike(app):
    paths = ["410000/", "410000/410200/", "410000/410200/410202/", "410000/410200/410202/410202001/",
             "410000/410200/410202/410202001/410202001001/", "410000/419001/", "110000/110101/",
             "110000/110101/110101001/", "110000/110101/110101001/110101001001/"]
    expected = ["410000/", "410000/410200/", "410000/410200/410202/", "410000/410200/410202/",
                "410000/410200/410202/", "410000/419001/", "110000/110101/", "110000/110101/", "110000/110101/"]
    assert [rollups.county_of(p) for p in paths] == expected
    with app.app_context():
        from sqlalchemy import literal

        assert [db.session.scalar(select(rollups.county_sql(literal(p)))) for p in paths] == expected
        prefectures = ["410000/", "410000/410200/", "410000/410200/", "410000/410200/", "410000/410200/",
                       "410000/419001/", "110000/110101/", "110000/110101/", "110000/110101/"]
        assert [rollups.prefecture_of(p) for p in paths] == prefectures == [_prefecture_of(p) for p in paths]
        assert [db.session.scalar(select(rollups.prefecture_sql(literal(p)))) for p in paths] == prefectures
        moment = datetime(2026, 1, 31, 16, 30)  # 00:30 on 1 February in Shanghai
        assert rollups.local_day(moment) == date(2026, 2, 1)
        day = db.session.scalar(select(rollups.local_day_sql(literal(moment))))
        month = db.session.scalar(select(rollups.local_month_sql(literal(moment))))
        assert str(day)[:10] == "2026-02-01" and str(month)[:10] == "2026-02-01"


# --- The demo ---


def test_demo__rollups_equal_rebuild_and_the_facts(app):
    with app.app_context():
        kept = rollups.snapshot()
        assert all(kept.values()), "the demo load fills every rollup table"
        assert kept_vs_rebuild() == []
        assert direct_mismatches() == []
        assert _stat_audit_events() == 0
        # The demo's counts, summed over a region's path range as the charts read them.
        longting = db.session.scalar(select(Region.path).where(Region.code == "410202"))
        kept_volunteers = db.session.scalar(select(func.sum(StatTotal.value)).where(
            StatTotal.metric == rollups.VOLUNTEERS, StatTotal.region_path >= longting,
            StatTotal.region_path < longting[:-1] + "0"))
        assert kept_volunteers == db.session.scalar(select(func.count()).select_from(Volunteer).where(
            Volunteer.status == ReviewStatus.APPROVED, Volunteer.region_path.startswith(longting)))


def test_demo__rebuild_reports_rows_per_table(app):
    with app.app_context():
        counts = rollups.rebuild()
        db.session.commit()
        assert set(counts) == {"stat_day", "stat_month", "stat_total", "stat_group_month", "stat_group_period"}
        assert counts == {name: len(rows) for name, rows in rollups.snapshot().items()}


def test_demo_load__fills_empty_rollups_of_a_database_seeded_before_them(app):
    """A database seeded before the rollups, upgraded: the later migrations fill their own
    rows (projects by day, covered communities) from the facts, the rest stay empty — the
    demo load still sees the rollups as empty and rebuilds them all."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    from app.demo import load_demo
    from tests.integration.test_migrations import _migration

    with app.app_context():
        for model in rollups.ROLLUP_MODELS:
            db.session.execute(model.__table__.delete())
        db.session.commit()
        with db.engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
            _migration("46a165608fd4_statistics_project_rows.py")._fill()
            _migration("d41c7a0e5b2f_statistics_community_coverage.py").upgrade()
        assert db.session.scalar(select(func.count()).select_from(StatDay)) > 0
        assert rollups.is_empty()
        assert "already seeded" in load_demo()
        assert not rollups.is_empty()
        assert kept_vs_rebuild() == [] and direct_mismatches() == []


def test_cli_stats_rebuild__prints_rows_and_seconds(app):
    with app.app_context():
        db.session.execute(StatDay.__table__.delete())
        db.session.commit()
        assert rollups.is_empty() is False
    result = app.test_cli_runner().invoke(args=["stats", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "stat_day: " in result.output and "stat_total: " in result.output
    assert "stat_group_month: " in result.output and "rebuilt in " in result.output
    with app.app_context():
        assert kept_vs_rebuild() == [] and direct_mismatches() == []
        assert db.session.scalar(select(func.count()).select_from(StatDay)) > 0


# --- Writers one by one ---


def test_volunteer_leaving_approved_status__takes_counts_back_but_keeps_vol_new(app):
    """No page suspends a volunteer yet; the writer is ready for it: the current counts
    drop, the history (vol_new) stays, and both still equal a rebuild."""
    with acting(app, "henan_officer"):
        volunteer = db.session.scalar(select(Volunteer).where(Volunteer.status == ReviewStatus.APPROVED,
                                                              Volunteer.total_minutes > 0).order_by(Volunteer.id))
        before = rollups.snapshot()
        volunteer.status = ReviewStatus.SUSPENDED
        db.session.flush()
        rollups.volunteer_counted(volunteer, -1)
        db.session.commit()
        after = rollups.snapshot()
        assert before["stat_day"] == after["stat_day"]
        assert before["stat_total"] != after["stat_total"]
        assert kept_vs_rebuild() == [] and direct_mismatches() == []


def test_refused_write__rolls_its_counts_back(app):
    """A day past 24 hours is refused inside credit(); nothing of the attempt stays."""
    with acting(app, "longting_team_admin"):
        position = position_of(BOOKSTORE, BOOKSTORE_GUIDE)
        volunteer = db.session.get(Volunteer, accepted_in(position)[0])
        before = rollups.snapshot()
        day = today() - timedelta(days=1)
        try:
            for _ in range(3):
                hours.record_hours(position, [volunteer], served_on=day, minutes=600)
        except DomainError:
            db.session.rollback()
        else:
            raise AssertionError("a third 10-hour record on one day must be refused")
        assert rollups.snapshot() == before


# --- Random writes through the services ---


def _attempt(action) -> bool:
    """Run ``action``; commit it, or roll back a refusal. True when it was done."""
    try:
        action()
    except DomainError:
        db.session.rollback()
        return False
    db.session.commit()
    return True


def _as(username: str) -> None:
    """Make ``username`` the signed-in user of the current request context."""
    db.session.rollback()
    g.user = current_app.appbuilder.sm.find_user(username=username)
    g.pop("vc_scope", None)


def _import_file(volunteer: Volunteer, rows: list[tuple[str, date, int]]) -> bytes:
    records = [{"source_system": "henan-legacy", "record_id": f"RB-{next(_ids):07d}",
                "volunteer_no": volunteer.volunteer_no, "real_name": volunteer.real_name,
                "served_on": day.isoformat(), "start_time": "", "end_time": "", "minutes": minutes, "hours": "",
                "project": "旧系统社区服务", "position": "", "organisation": "旧系统志愿服务队",
                "region_code": code, "service_category": "", "description": "", "status": "approved"}
               for code, day, minutes in rows]
    document = {"format": record_exchange.FORMAT, "version": 1, "records": records}
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


def test_rollups__random_writes_keep_them_equal_to_rebuild_and_the_facts(app):
    app.config.update(STAR_LEVEL_HOURS=LOW_STARS, RECORD_IMPORTS_PER_HOUR=100_000)
    with acting(app, "admin"):
        rollups.rebuild()  # the template counted stars with the default thresholds
        db.session.commit()
        bookstore = position_of(BOOKSTORE, BOOKSTORE_GUIDE)
        backfill = db.session.scalar(select(Position).join(Project).where(Project.name == BACKFILL))
        bookstore_id, backfill_id = bookstore.id, backfill.id
        pool = accepted_in(bookstore)[:4]
        backfill_pool = accepted_in(backfill)[:3]
        group_ids = {name: db.session.scalar(select(VolunteerGroup.id).where(VolunteerGroup.name == name))
                     for name in (BOOKSTORE_TEAM, TIETA_TEAM, QINGPING_TEAM, CULTURE_TEAM, LONGTING_CORPS)}
        admins = {group_ids[BOOKSTORE_TEAM]: "longting_team_admin", group_ids[LONGTING_CORPS]: "longting_corps_admin"}
        others = list(db.session.scalars(select(Volunteer.id).where(
            Volunteer.status == ReviewStatus.APPROVED, Volunteer.id.not_in(pool + backfill_pool))
            .order_by(Volunteer.id).limit(4)))
        people = sorted(set(pool + backfill_pool + others))
        pending_volunteers = list(db.session.scalars(select(Volunteer.id).where(
            Volunteer.status == ReviewStatus.PENDING).order_by(Volunteer.id)))
        pending_groups = list(db.session.scalars(select(VolunteerGroup.id).where(
            VolunteerGroup.status == ReviewStatus.PENDING).order_by(VolunteerGroup.id)))
        assert len(pool) == 4 and len(backfill_pool) == 3 and pending_volunteers and len(pending_groups) == 2
        assert kept_vs_rebuild() == [] and direct_mismatches() == []

        class Rollups(RuleBasedStateMachine):
            """One sequence of writes, each committed or refused as a whole."""

            def __init__(self):
                super().__init__()
                self.codes: list[str] = []

            def volunteers(self, ids) -> list[Volunteer]:
                return list(db.session.scalars(select(Volunteer).where(Volunteer.id.in_(ids))))

            def _records(self, pick, *where):
                records = db.session.scalars(select(ServiceRecord).where(
                    ServiceRecord.status == RecordStatus.APPROVED, ServiceRecord.source != RecordSource.CORRECTION,
                    *where).order_by(ServiceRecord.id)).all()
                return records[pick % len(records)] if records else None

            @initialize()
            def make_codes(self):
                _as("longting_team_admin")
                for back, max_uses in ((1, 2), (3, None)):
                    code = hours.generate_code(db.session.get(Position, bookstore_id),
                                               served_on=today() - timedelta(days=back), minutes=300,
                                               max_uses=max_uses)
                    self.codes.append(code.code)
                db.session.commit()

            # Registrations (注册审核)
            @rule(pick=st.integers(0, 50), approve=st.booleans())
            def review_registration(self, pick, approve):
                _as("henan_officer")
                waiting = db.session.scalars(select(Volunteer).where(
                    Volunteer.id.in_(pending_volunteers), Volunteer.status == ReviewStatus.PENDING)).all()
                if waiting:
                    volunteer = waiting[pick % len(waiting)]
                    assert _attempt(lambda: volunteers.review_volunteers(
                        [volunteer], "approve" if approve else "reject", None if approve else "证件不清晰"))

            # The ledger
            @rule(chosen=st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True),
                  back=st.integers(1, 40), minutes=st.sampled_from([60, 240, 600, 900, 1441]))
            def group_entry(self, chosen, back, minutes):
                _as("longting_team_admin")
                _attempt(lambda: hours.record_hours(db.session.get(Position, bookstore_id), self.volunteers(chosen),
                                                    served_on=today() - timedelta(days=back), minutes=minutes))

            @rule(chosen=st.lists(st.sampled_from(backfill_pool), min_size=1, max_size=2, unique=True),
                  back=st.integers(1, 190), minutes=st.sampled_from([120, 480, 1200]))
            def backfill_entry(self, chosen, back, minutes):
                _as("longting_corps_admin")
                _attempt(lambda: hours.record_hours(db.session.get(Position, backfill_id), self.volunteers(chosen),
                                                    served_on=today() - timedelta(days=back), minutes=minutes))

            @rule(volunteer=st.sampled_from(pool), back=st.integers(1, 40), minutes=st.sampled_from([90, 700]),
                  approve=st.booleans())
            def apply_and_decide(self, volunteer, back, minutes, approve):
                _as("longting_team_admin")
                enrollment = db.session.scalar(select(Enrollment).where(
                    Enrollment.position_id == bookstore_id, Enrollment.volunteer_id == volunteer))
                applied = []
                if not _attempt(lambda: applied.append(hours.apply_for_hours(
                        db.session.get(Volunteer, volunteer), enrollment, served_on=today() - timedelta(days=back),
                        minutes=minutes, description="巡查").id)):
                    return
                if not _attempt(lambda: hours.decide_records([db.session.get(ServiceRecord, applied[0])],
                                                             "approve" if approve else "reject",
                                                             None if approve else "不符")):
                    assert _attempt(lambda: hours.decide_records([db.session.get(ServiceRecord, applied[0])],
                                                                 "reject", "超过24小时"))

            @rule(which=st.integers(0, 1), volunteer=st.sampled_from(people))
            def redeem(self, which, volunteer):
                _as("vol_shunhe")
                _attempt(lambda: hours.redeem_code(db.session.get(Volunteer, volunteer), self.codes[which]))

            @rule(pick=st.integers(0, 10 ** 6), minutes=st.sampled_from([-2000, -600, -60, 30, 600]))
            def correct(self, pick, minutes):
                original = self._records(pick, ServiceRecord.position_id.in_([bookstore_id, backfill_id]))
                if original is None:
                    return
                original_id = original.id
                _as(admins[original.group_id])
                _attempt(lambda: hours.correct_record(db.session.get(ServiceRecord, original_id), minutes=minutes,
                                                      reason="核对签到表"))

            @rule(pick=st.integers(0, 10 ** 6), minutes=st.sampled_from([-600, -60, 120]), approve=st.booleans())
            def request_and_decide_correction(self, pick, minutes, approve):
                original = self._records(pick, ServiceRecord.position_id == bookstore_id)
                if original is None:
                    return
                original_id, volunteer_id = original.id, original.volunteer_id
                asked = []
                if not _attempt(lambda: asked.append(hours.request_correction(
                        db.session.get(Volunteer, volunteer_id), db.session.get(ServiceRecord, original_id),
                        minutes=minutes, reason="签到表有误").id)):
                    return
                _as("longting_team_admin")
                if not _attempt(lambda: hours.decide_records([db.session.get(ServiceRecord, asked[0])],
                                                             "approve" if approve else "reject",
                                                             None if approve else "核实无误")):
                    assert _attempt(lambda: hours.decide_records([db.session.get(ServiceRecord, asked[0])],
                                                                 "reject", "不予更正"))

            @rule(category=st.sampled_from(["civility", "community", "culture_sports"]))
            def recategorise(self, category):
                _as("longting_team_admin")
                project_id = db.session.get(Position, bookstore_id).project_id
                _attempt(lambda: projects.update_project(db.session.get(Project, project_id), category=category))

            # 转移接续: records from another system, transfers
            @rule(volunteer=st.sampled_from(people),
                  rows=st.lists(st.tuples(st.sampled_from(IMPORT_REGIONS), st.integers(100, 400),
                                          st.sampled_from([0, 60, 300, 1500])), min_size=1, max_size=3))
            def import_records(self, volunteer, rows):
                _as("henan_officer")
                person = db.session.get(Volunteer, volunteer)
                data = _import_file(person, [(code, today() - timedelta(days=back), m) for code, back, m in rows])
                batches = []
                if _attempt(lambda: batches.append(
                        record_exchange.check_record_file("records.json", io.BytesIO(data)).id)):
                    _attempt(lambda: record_exchange.apply_record_import(db.session.get(RecordImport, batches[0])))

            @rule(pick=st.integers(0, 10 ** 6), minutes=st.sampled_from([-300, -60, 45]))
            def correct_imported(self, pick, minutes):
                original = self._records(pick, ServiceRecord.source == RecordSource.TRANSFER_IN)
                if original is None:
                    return
                original_id = original.id
                _as("henan_officer")
                _attempt(lambda: hours.correct_imported_record(db.session.get(ServiceRecord, original_id),
                                                               minutes=minutes, reason="核对原系统记录"))

            @rule(volunteer=st.sampled_from(people), destination=st.sampled_from(DESTINATIONS),
                  approve=st.booleans())
            def transfer(self, volunteer, destination, approve):
                asked = []
                _as("henan_officer")
                if not _attempt(lambda: asked.append(transfers.request_transfer(
                        db.session.get(Volunteer, volunteer), destination, "工作调动").id)):
                    return
                assert _attempt(lambda: transfers.decide_transfers(
                    [db.session.get(TransferRequest, asked[0])], "approve" if approve else "reject",
                    None if approve else "材料不全"))

            @rule(pick=st.integers(0, 50))
            def approve_waiting_transfer(self, pick):
                _as("henan_officer")
                waiting = db.session.scalars(select(TransferRequest).where(
                    TransferRequest.status == RequestStatus.PENDING).order_by(TransferRequest.id)).all()
                if waiting:
                    assert _attempt(lambda: transfers.decide_transfers([waiting[pick % len(waiting)]], "approve"))

            # Groups and their members
            @rule(volunteer=st.sampled_from(people),
                  group=st.sampled_from([BOOKSTORE_TEAM, TIETA_TEAM, QINGPING_TEAM, CULTURE_TEAM]))
            def join(self, volunteer, group):
                _as("vol_shunhe")
                _attempt(lambda: memberships.join_group(db.session.get(Volunteer, volunteer),
                                                        db.session.get(VolunteerGroup, group_ids[group]),
                                                        password=TEAM_PASSWORD))

            @rule(volunteer=st.sampled_from(people),
                  group=st.sampled_from([BOOKSTORE_TEAM, TIETA_TEAM, QINGPING_TEAM, CULTURE_TEAM]))
            def leave(self, volunteer, group):
                _as("vol_shunhe")
                _attempt(lambda: memberships.leave_group(db.session.get(Volunteer, volunteer),
                                                         db.session.get(VolunteerGroup, group_ids[group])))

            @rule(pick=st.integers(0, 50), approve=st.booleans())
            def decide_join_request(self, pick, approve):
                _as("culture_team_admin")
                waiting = db.session.scalars(select(Membership).where(
                    Membership.group_id == group_ids[CULTURE_TEAM], Membership.status == MembershipStatus.PENDING)
                    .order_by(Membership.id)).all()
                if waiting:
                    assert _attempt(lambda: memberships.decide_requests(
                        [waiting[pick % len(waiting)]], "approve" if approve else "reject",
                        None if approve else "名额已满"))

            @rule(pick=st.integers(0, 10 ** 6))
            def remove_member(self, pick):
                _as("longting_team_admin")
                active = db.session.scalars(select(Membership).where(
                    Membership.group_id == group_ids[BOOKSTORE_TEAM], Membership.status == MembershipStatus.ACTIVE)
                    .order_by(Membership.id)).all()
                if active:
                    assert _attempt(lambda: rosters.remove_members([active[pick % len(active)]]))

            @rule(volunteer=st.sampled_from(people))
            def add_member_by_identity(self, volunteer):
                _as("culture_team_admin")
                person = db.session.get(Volunteer, volunteer)
                _attempt(lambda: rosters.add_member_by_identity(
                    db.session.get(VolunteerGroup, group_ids[CULTURE_TEAM]), person.real_name, person.id_type,
                    pii.decrypt(person.id_number_enc)))

            @rule(pick=st.integers(0, 1), approve=st.booleans())
            def review_group(self, pick, approve):
                _as("admin")
                group = db.session.get(VolunteerGroup, pending_groups[pick])
                if group.status == ReviewStatus.PENDING:
                    assert _attempt(lambda: groups.review_groups([group], "approve" if approve else "reject",
                                                                 None if approve else "名称不规范"))

            @invariant()
            def rollups_equal_rebuild(self):
                assert kept_vs_rebuild() == []

            @invariant()
            def rollups_equal_the_facts(self):
                assert direct_mismatches() == []

        run_state_machine_as_test(Rollups, settings=settings(
            max_examples=25, stateful_step_count=14, deadline=None, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))

        assert _stat_audit_events() == 0
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.object_type == "service_record")) > 0  # the log itself is on


# --- Every kind of write, once each, in a fixed order ---


def test_each_kind_of_write__keeps_rollups_equal_to_rebuild_and_the_facts(app):
    with acting(app, "admin"):
        position = position_of(BOOKSTORE, BOOKSTORE_GUIDE)
        position_id, project = position.id, position.project
        pool = accepted_in(position)[:2]
        starred = db.session.get(Volunteer, pool[0])
        # Star thresholds just above the first volunteer's total: 5 hours of group entry
        # take them up a level, a correction of -5 hours down again.
        first = starred.total_minutes // 60 + 2
        app.config.update(STAR_LEVEL_HOURS=(first, first + 100, first + 200, first + 300, first + 400))
        rollups.rebuild()
        db.session.commit()
        day = free_day(pool, project, need=600)

        def step(name: str, username: str, action):
            _as(username)
            result = action()
            db.session.commit()
            problems = kept_vs_rebuild() + direct_mismatches()
            assert problems == [], (name, problems)
            return result

        def get(model, id_):
            return db.session.get(model, id_)

        def people(ids):
            return list(db.session.scalars(select(Volunteer).where(Volunteer.id.in_(ids)).order_by(Volunteer.id)))

        def total(volunteer_id) -> int:
            return db.session.scalar(select(Volunteer.total_minutes).where(Volunteer.id == volunteer_id))

        def group_id(name: str) -> int:
            return db.session.scalar(select(VolunteerGroup.id).where(VolunteerGroup.name == name))

        # 注册审核
        waiting = list(db.session.scalars(select(Volunteer.id).where(Volunteer.status == ReviewStatus.PENDING)
                                          .order_by(Volunteer.id).limit(2)))
        step("approve a registration", "henan_officer",
             lambda: volunteers.review_volunteers([get(Volunteer, waiting[0])], "approve"))
        step("reject a registration", "henan_officer",
             lambda: volunteers.review_volunteers([get(Volunteer, waiting[1])], "reject", "证件照片不清晰"))

        # The ledger: group entry (a star up), backfill in another month, 申请时长 both ways, an hour code
        before = total(pool[0])
        entered = step("group entry", "longting_team_admin", lambda: hours.record_hours(
            get(Position, position_id), people(pool), served_on=day, minutes=300))
        assert star_level(total(pool[0])) == star_level(before) + 1
        backfill = db.session.scalar(select(Position).join(Project).where(Project.name == BACKFILL))
        step("backfill", "longting_corps_admin", lambda: hours.record_hours(
            get(Position, backfill.id), people(accepted_in(backfill)[:1]), served_on=today() - timedelta(days=100),
            minutes=120))
        enrollment = db.session.scalar(select(Enrollment).where(Enrollment.position_id == position_id,
                                                                Enrollment.volunteer_id == pool[1]))
        for decision in ("approve", "reject"):
            record = step("申请时长", "vol_longting", lambda: hours.apply_for_hours(
                get(Volunteer, pool[1]), enrollment, served_on=day, minutes=60, description="巡查"))
            step(f"{decision} the application", "longting_team_admin", lambda: hours.decide_records(
                [get(ServiceRecord, record.id)], decision, "不符" if decision == "reject" else None))
        code = step("hour code", "longting_team_admin", lambda: hours.generate_code(
            get(Position, position_id), served_on=today() - timedelta(days=1), minutes=60)).code
        walk_in = volunteer_of("vol_shunhe").id
        step("redeem the code", "vol_shunhe", lambda: hours.redeem_code(get(Volunteer, walk_in), code))

        # The project's admin changes its service category: its minutes move with it.
        step("change the project's category", "longting_team_admin", lambda: projects.update_project(
            get(Project, project.id), category="community" if project.category != "community" else "civility"))

        # Projects by status: published (not started), moved to start now, closed by hand; one suspended.
        start = today() + timedelta(days=2)
        fields = dict(name="周末导览", category="culture_sports", description="", risk_notice="", address="书店街",
                      region_code="", starts_at=f"{start}T08:00", ends_at=f"{start + timedelta(days=3)}T18:00",
                      recruit_scope="anyone", is_backfill=False)
        new = step("publish a project", "longting_team_admin", lambda: projects.create_project(
            get(VolunteerGroup, project.group_id), positions=[{"name": "导览员", "quota": "3", "default_hours": "2",
                                                              "shift_start": "", "shift_end": ""}], **fields)).id
        step("move its start to today", "longting_team_admin", lambda: projects.update_project(
            get(Project, new), starts_at=f"{today()}T00:00", category="civility"))
        step("close it by hand", "longting_team_admin", lambda: projects.close_project(get(Project, new)))
        running = next(p.id for p in db.session.scalars(select(Project).where(Project.id != project.id)
                                                        .order_by(Project.id)) if not p.is_closed())
        step("suspend another", "henan_officer", lambda: projects.suspend_projects([get(Project, running)]))

        # Corrections: by the group (a star down, then up a little), asked for by the volunteer
        mine = next(r.id for r in entered if r.volunteer_id == pool[0])
        step("correction -5 h", "longting_team_admin", lambda: hours.correct_record(
            get(ServiceRecord, mine), minutes=-300, reason="签到表有误"))
        assert star_level(total(pool[0])) == star_level(before)
        step("correction +30 min", "longting_team_admin", lambda: hours.correct_record(
            get(ServiceRecord, mine), minutes=30, reason="补记"))
        theirs = next(r.id for r in entered if r.volunteer_id == pool[1])
        asked = step("correction request", "vol_longting", lambda: hours.request_correction(
            get(Volunteer, pool[1]), get(ServiceRecord, theirs), minutes=-30, reason="提前离开"))
        step("approve the correction request", "longting_team_admin", lambda: hours.decide_records(
            [get(ServiceRecord, asked.id)], "approve"))

        # 转移接续: records from another system (community, prefecture and province level), a correction
        mover = get(Volunteer, pool[0])
        data = _import_file(mover, [("410202001001", today() - timedelta(days=200), 60),
                                    ("410200", today() - timedelta(days=250), 90),
                                    ("410000", today() - timedelta(days=300), 30),
                                    ("410203", today() - timedelta(days=310), 0)])
        batch = step("check an import", "henan_officer",
                     lambda: record_exchange.check_record_file("records.json", io.BytesIO(data)))
        result = step("apply the import", "henan_officer",
                      lambda: record_exchange.apply_record_import(get(RecordImport, batch.id)))
        assert (result.applied, result.skipped) == (3, 0)
        imported = db.session.scalar(select(ServiceRecord.id).where(
            ServiceRecord.volunteer_id == pool[0], ServiceRecord.source == RecordSource.TRANSFER_IN,
            ServiceRecord.minutes == 90))
        step("correct an imported record", "henan_officer", lambda: hours.correct_imported_record(
            get(ServiceRecord, imported), minutes=-30, reason="核对原系统记录"))

        # 转移接续: a transfer of the starred volunteer, and the demo's waiting one
        shunhe = db.session.scalar(select(Region.path).where(Region.code == "410203"))
        destination = "410202" if mover.region_path.startswith(shunhe) else "410203"
        request = step("ask for a transfer", "henan_officer",
                       lambda: transfers.request_transfer(get(Volunteer, pool[0]), destination, "工作调动"))
        step("approve the transfer", "henan_officer",
             lambda: transfers.decide_transfers([get(TransferRequest, request.id)], "approve"))
        # A move inside one county: the county's breakdown rows take −1 and +1 at once.
        home = get(Volunteer, pool[1]).region_path
        nearby = db.session.scalar(select(Region.code).where(
            Region.path.startswith(rollups.county_of(home)), Region.level > Region.COUNTY, Region.path != home,
            func.substr(home, 1, func.length(Region.path)) != Region.path).order_by(Region.code))
        request = step("ask for a move inside the county", "henan_officer",
                       lambda: transfers.request_transfer(get(Volunteer, pool[1]), nearby, "搬家"))
        step("approve the move", "henan_officer",
             lambda: transfers.decide_transfers([get(TransferRequest, request.id)], "approve"))
        assert rollups.county_of(get(Volunteer, pool[1]).region_path) == rollups.county_of(home)
        demo_request = db.session.scalar(select(TransferRequest.id).where(
            TransferRequest.status == RequestStatus.PENDING).order_by(TransferRequest.id))
        step("approve the demo's transfer", "longting_officer",
             lambda: transfers.decide_transfers([get(TransferRequest, demo_request)], "approve"))

        # Groups and members
        tieta, culture, bookstore = group_id(TIETA_TEAM), group_id(CULTURE_TEAM), group_id(BOOKSTORE_TEAM)
        step("join an open group", "vol_shunhe", lambda: memberships.join_group(
            get(Volunteer, walk_in), get(VolunteerGroup, tieta)))
        joining = step("ask to join", "vol_shunhe", lambda: memberships.join_group(
            get(Volunteer, walk_in), get(VolunteerGroup, culture)))
        assert joining.status == MembershipStatus.PENDING
        step("approve the request", "culture_team_admin", lambda: memberships.decide_requests(
            [get(Membership, joining.id)], "approve"))
        step("leave", "vol_shunhe", lambda: memberships.leave_group(get(Volunteer, walk_in),
                                                                    get(VolunteerGroup, culture)))
        removed = db.session.scalar(select(Membership.id).where(
            Membership.group_id == bookstore, Membership.status == MembershipStatus.ACTIVE).order_by(Membership.id))
        step("remove a member", "longting_team_admin", lambda: rosters.remove_members([get(Membership, removed)]))
        outsider = volunteer_of("vol_zhengzhou")
        step("add a member by name and ID", "culture_team_admin", lambda: rosters.add_member_by_identity(
            get(VolunteerGroup, culture), outsider.real_name, outsider.id_type, pii.decrypt(outsider.id_number_enc)))
        for name, decision in (("龙亭区北道门社区志愿服务队", "approve"), ("开封市青年志愿者协会", "reject")):
            step(f"{decision} a group", "admin", lambda: groups.review_groups(
                [get(VolunteerGroup, group_id(name))], decision, "名称不规范" if decision == "reject" else None))
        assert _stat_audit_events() == 0


# --- Concurrent writers ---


def test_concurrent_credits__upserts_lose_nothing(app):
    """Twenty volunteers redeem one hour code at the same instant: every credit lands on
    the same stat_day and stat_group_month rows (one county, day, category and group)."""
    with acting(app, "longting_team_admin"):
        code = hours.generate_code(position_of(BOOKSTORE, BOOKSTORE_GUIDE), served_on=today() - timedelta(days=1),
                                   minutes=45)
        db.session.commit()
        code_text, group = code.code, code.project.group_id
        ids = [v.id for v in adult_volunteers(20)]

        def kept_minutes() -> int:
            return db.session.scalar(select(func.sum(StatGroupMonth.value)).where(
                StatGroupMonth.group_id == group, StatGroupMonth.metric == rollups.MINUTES))

        before = kept_minutes()
        db.session.rollback()
    barrier, errors, done = threading.Barrier(len(ids)), [], []

    def run(volunteer_id):
        with app.app_context():
            try:
                volunteer = db.session.get(Volunteer, volunteer_id)
                db.session.rollback()
                barrier.wait(timeout=60)
                hours.redeem_code(volunteer, code_text)
                db.session.commit()
                done.append(volunteer_id)
            except BaseException as err:  # noqa: BLE001 - reported below
                db.session.rollback()
                errors.append(err)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(v,)) for v in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == [] and len(done) == len(ids)
    with app.app_context():
        assert kept_minutes() == before + 45 * len(ids)
        assert kept_vs_rebuild() == [] and direct_mismatches() == []


def _race(app, *writers: tuple, errors: list, refused: list | None = None) -> None:
    """Run each ``(username, work)`` in its own thread, signed in as the user, and commit
    its transaction; a refusal (DomainError) lands in ``refused`` when given, anything
    else in ``errors`` (each rolled back). Returns when every thread is done."""
    def run(username, work):
        with acting(app, username):
            try:
                work()
                db.session.commit()
            except DomainError as err:
                db.session.rollback()
                (refused if refused is not None else errors).append(err)
            except BaseException as err:  # noqa: BLE001 - reported by the caller
                db.session.rollback()
                errors.append(err)

    threads = [threading.Thread(target=run, args=writer) for writer in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)


@pytest.mark.postgres
def test_interleaved_writers__no_deadlock_on_the_hot_rollup_rows_postgres(app):
    """A records hours for v1 and v2 (locking their rows in that order); B holds v2's row
    and meanwhile credits v3 on the same county, day and category. Were rollup rows
    locked as the minutes are counted, A would hold the county's row while waiting for
    v2, and B would wait for that row: a deadlock, one of them aborted. Counted at
    COMMIT, both go through."""
    with acting(app, "longting_team_admin"):
        position = position_of(BOOKSTORE, BOOKSTORE_GUIDE)
        position_id = position.id
        v1, v2, v3 = accepted_in(position)[:3]
        day = free_day([v1, v2, v3], position.project, need=60)
        db.session.rollback()
    b_holds_v2, errors = threading.Event(), []

    def entry(volunteer_ids):
        hours.record_hours(db.session.get(Position, position_id),
                           list(db.session.scalars(select(Volunteer).where(Volunteer.id.in_(volunteer_ids)))),
                           served_on=day, minutes=30)

    def writer_b():
        db.session.execute(select(Volunteer.id).where(Volunteer.id == v2).with_for_update())
        b_holds_v2.set()
        time.sleep(1.5)  # A credits v1, then waits for v2
        entry([v3])

    def writer_a():
        b_holds_v2.wait(timeout=30)
        entry([v1, v2])

    _race(app, ("longting_team_admin", writer_b), ("longting_team_admin", writer_a), errors=errors)
    assert errors == []
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ServiceRecord).where(
            ServiceRecord.position_id == position_id, ServiceRecord.served_on == day,
            ServiceRecord.volunteer_id.in_([v1, v2, v3]), ServiceRecord.minutes == 30)) >= 3
        assert kept_vs_rebuild() == [] and direct_mismatches() == []


@pytest.mark.postgres
def test_category_edit_racing_an_approval__minutes_land_under_the_new_category_postgres(app):
    """A changes the project's category and holds its transaction open; B records (and so
    approves) hours on the project meanwhile. B's share lock on the project waits for A,
    then counts under the new category; without it B would count under the old one while
    A's move of the project's minutes never saw B's record."""
    with acting(app, "longting_team_admin"):
        position = position_of(BOOKSTORE, BOOKSTORE_GUIDE)
        position_id, project_id = position.id, position.project_id
        new_category = next(c for c in SERVICE_CATEGORIES if c != position.project.category)
        volunteer = accepted_in(position)[0]
        day = free_day([volunteer], position.project, need=60)
        db.session.rollback()
    a_edited, errors = threading.Event(), []

    def writer_a():
        try:
            projects.update_project(db.session.get(Project, project_id), category=new_category)
            a_edited.set()
            time.sleep(1.5)  # B records hours on the project now
        finally:
            a_edited.set()

    def writer_b():
        a_edited.wait(timeout=30)
        hours.record_hours(db.session.get(Position, position_id), [db.session.get(Volunteer, volunteer)],
                           served_on=day, minutes=30)

    _race(app, ("longting_team_admin", writer_a), ("longting_team_admin", writer_b), errors=errors)
    assert errors == []
    with app.app_context():
        assert db.session.get(Project, project_id).category == new_category
        assert db.session.scalar(select(func.count()).select_from(ServiceRecord).where(
            ServiceRecord.position_id == position_id, ServiceRecord.served_on == day,
            ServiceRecord.volunteer_id == volunteer, ServiceRecord.minutes == 30)) == 1
        assert kept_vs_rebuild() == [] and direct_mismatches() == []


@pytest.mark.postgres
def test_leave_racing_a_removal__the_member_is_taken_back_once_postgres(app):
    """The group's admin removes vol_longting while vol_longting leaves: whoever comes second
    re-reads the membership under its lock and finds it gone (leaving is then refused), so
    the member count drops by one, not two."""
    with acting(app, "longting_team_admin"):
        group = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == BOOKSTORE_TEAM))
        volunteer = db.session.scalar(select(Volunteer).join(User, User.id == Volunteer.user_id)
                                      .where(User.username == "vol_longting"))
        membership = memberships.membership_of(group, volunteer)
        assert membership.status == MembershipStatus.ACTIVE
        group_id, volunteer_id, membership_id = group.id, volunteer.id, membership.id
        db.session.rollback()
    a_removed, errors, refused = threading.Event(), [], []

    def admin():
        try:
            rosters.remove_members([db.session.get(Membership, membership_id)])
            a_removed.set()
            time.sleep(1.5)  # the volunteer leaves now
        finally:
            a_removed.set()

    def member():
        a_removed.wait(timeout=30)
        memberships.leave_group(db.session.get(Volunteer, volunteer_id), db.session.get(VolunteerGroup, group_id))

    _race(app, ("longting_team_admin", admin), ("vol_longting", member), errors=errors, refused=refused)
    assert errors == [] and len(refused) == 1
    with app.app_context():
        assert db.session.get(Membership, membership_id).status == MembershipStatus.REMOVED
        assert kept_vs_rebuild() == [] and direct_mismatches() == []


def test_community_coverage__first_group_in_counts_last_group_out_takes_back(app):
    """A community with no group: its first approved group makes it covered (+1 for its
    county and prefecture), a second changes nothing; suspending them takes it back only
    with the last one. After each step the rollups equal a rebuild and the facts."""
    with acting(app, "admin"):
        pending = list(db.session.scalars(select(VolunteerGroup).where(
            VolunteerGroup.status == ReviewStatus.PENDING).order_by(VolunteerGroup.id)))
        bare = db.session.scalar(select(Region).where(
            Region.level == Region.COMMUNITY,
            ~select(VolunteerGroup.id).where(VolunteerGroup.region_id == Region.id).exists()).order_by(Region.id))
        for group in pending:
            group.region_id, group.region_path = bare.id, bare.path
        db.session.commit()
        ids, county = [g.id for g in pending], rollups.county_of(bare.path)

        def covered() -> int:
            return db.session.scalar(select(func.coalesce(func.sum(StatTotal.value), 0)).where(
                StatTotal.metric == rollups.COVERED, StatTotal.region_path == county))

        def check():
            db.session.commit()
            assert kept_vs_rebuild() == [] and direct_mismatches() == []
            return covered()

        before = covered()
        groups.review_groups([db.session.get(VolunteerGroup, ids[0])], "approve")
        assert check() == before + 1
        groups.review_groups([db.session.get(VolunteerGroup, ids[1])], "approve")
        assert check() == before + 1
        for n, group_id in enumerate(ids):  # no page suspends a group yet: its writer, called as a service would
            group = db.session.get(VolunteerGroup, group_id)
            group.status = ReviewStatus.SUSPENDED
            rollups.group_counted(group, -1)
            assert check() == (before + 1 if n == 0 else before)


@pytest.mark.postgres
def test_two_first_groups_of_a_community_approved_at_once__it_is_covered_once_postgres(app):
    """The two pending groups, moved to a community with no group yet, are approved by two
    reviewers committing at the same moment: the community's ``community_groups`` row
    goes 0 → 1 → 2 under its lock, and only the upsert that took it from 0 counts the
    community as covered (a count taken before the commit would count it twice)."""
    with app.app_context():
        pending = list(db.session.scalars(select(VolunteerGroup).where(
            VolunteerGroup.status == ReviewStatus.PENDING).order_by(VolunteerGroup.id)))
        bare = db.session.scalar(select(Region).where(
            Region.level == Region.COMMUNITY, Region.path.startswith("410000/410200/"),
            ~select(VolunteerGroup.id).where(VolunteerGroup.region_id == Region.id).exists()).order_by(Region.id))
        for group in pending:
            group.region_id, group.region_path = bare.id, bare.path
        db.session.commit()
        county = rollups.county_of(bare.path)
        covered_before = db.session.scalar(select(StatTotal.value).where(
            StatTotal.metric == rollups.COVERED, StatTotal.region_path == county)) or 0
        ids = [g.id for g in pending]
        assert len(ids) == 2
    both_approved, errors = threading.Barrier(2, timeout=30), []

    def approve(group_id):
        def work():
            groups.review_groups([db.session.get(VolunteerGroup, group_id)], "approve")
            both_approved.wait()  # then both commit at once
        return work

    _race(app, ("admin", approve(ids[0])), ("admin", approve(ids[1])), errors=errors)
    assert errors == []
    with app.app_context():
        assert db.session.scalar(select(StatTotal.value).where(
            StatTotal.metric == rollups.COVERED, StatTotal.region_path == county)) == covered_before + 1
        assert kept_vs_rebuild() == [] and direct_mismatches() == []


def test_savepoints__released_counts_stay_rolled_back_ones_go(app):
    """record_exchange writes each imported row in a savepoint: what a rolled-back
    savepoint counted is dropped, what a released one counted reaches the tables; and a
    rebuild inside the transaction drops what the writers held (the facts have it)."""
    with acting(app, "henan_officer"):
        record = db.session.scalar(select(ServiceRecord).where(
            ServiceRecord.status == RecordStatus.APPROVED, ServiceRecord.project_id.is_not(None))
            .order_by(ServiceRecord.id))
        county = rollups.county_of(record.region_path)
        key = (StatDay.region_path == county, StatDay.day == record.served_on, StatDay.metric == rollups.MINUTES,
               StatDay.key == record.project.category)

        def kept() -> int:
            return db.session.scalar(select(StatDay.value).where(*key))

        before = kept()
        with db.session.begin_nested():
            rollups.minutes_credited(record, 7)
        try:
            with db.session.begin_nested():
                rollups.minutes_credited(record, 1000)
                raise LookupError("refused")
        except LookupError:
            pass
        assert kept() == before  # held until COMMIT
        db.session.commit()
        assert kept() == before + 7
        rollups.minutes_credited(record, -7)
        db.session.commit()
        assert kept() == before
        rollups.minutes_credited(record, 5)
        rollups.rebuild()
        db.session.commit()
        assert kept() == before
        assert kept_vs_rebuild() == []


# --- The same kinds of write through the pages ---


def test_http_writes__keep_rollups_equal_to_rebuild_and_the_facts(app, client):
    """注册审核, 转移接续审核, 加入 and 退出 through the portal, each checked right after."""
    with app.app_context():
        kaifeng = db.session.scalar(select(Region.path).where(Region.code == "410200"))
        registration = db.session.scalar(select(Volunteer.id).where(
            Volunteer.status == ReviewStatus.PENDING, Volunteer.region_path.startswith(kaifeng)).order_by(Volunteer.id))
        request = db.session.scalar(select(TransferRequest).where(TransferRequest.status == RequestStatus.PENDING)
                                    .order_by(TransferRequest.id))
        request_id, mover, destination = request.id, request.volunteer_id, request.region_path
        tieta = db.session.scalar(select(VolunteerGroup.id).where(VolunteerGroup.name == TIETA_TEAM))
        assert registration and destination.startswith(kaifeng)

    def in_step():
        with app.app_context():
            assert kept_vs_rebuild() == []
            assert direct_mismatches() == []

    def home_count(path: str) -> int:
        with app.app_context():
            return db.session.scalar(select(func.coalesce(func.sum(StatTotal.value), 0)).where(
                StatTotal.metric == rollups.VOLUNTEERS, StatTotal.region_path == path))

    login(client, "kaifeng_officer")
    resp = client.post("/registration-review/decide", data={"rowid": [str(registration)], "decision": "approve"})
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.get(Volunteer, registration).status == ReviewStatus.APPROVED
    in_step()
    before = home_count(destination)
    resp = client.post("/oversight/transfers/decide", data={"rowid": [str(request_id)], "decision": "approve"})
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.get(Volunteer, mover).region_path == destination
    assert home_count(destination) == before + 1
    in_step()
    client.get("/logout/")
    login(client, "vol_shunhe")

    def members() -> int:
        with app.app_context():
            return db.session.scalar(select(func.coalesce(func.sum(StatGroupMonth.value), 0)).where(
                StatGroupMonth.group_id == tieta, StatGroupMonth.metric == rollups.MEMBERS))

    joined_before = members()
    assert client.post(f"/my/groups/{tieta}/join").status_code == 302
    assert members() == joined_before + 1
    in_step()
    assert client.post(f"/my/groups/{tieta}/leave").status_code == 302
    assert members() == joined_before
    in_step()


# --- 区域监管 → 文明单位 ---


def _unit_id(app, name: str) -> int:
    with app.app_context():
        return db.session.scalar(select(CivilUnit.id).where(CivilUnit.name == name))


def test_demo__civil_units_on_the_register(app):
    with app.app_context():
        units = db.session.scalars(select(CivilUnit).order_by(CivilUnit.id)).all()
        kaifeng = db.session.scalar(select(Region.path).where(Region.code == "410200"))
        assert 4 <= len(units) <= 6
        assert all(u.region_path.startswith(kaifeng) and u.staff_headcount for u in units)
        linked = [u for u in units if u.group_id is not None]
        assert len(linked) == 2
        assert any(u.group.group_type == GroupType.CIVIL_UNIT for u in linked)


def test_civil_units_list__county_officer_sees_only_own_county(app, client):
    login(client, "longting_officer")
    html = client.get("/civil-units/list/").get_data(as_text=True)
    assert "开封市龙亭区文化馆" in html and "开封市龙亭区北书店街道办事处" in html
    assert "顺河回族区" not in html and "开封市图书馆" not in html
    other = _unit_id(app, "开封市顺河回族区税务局")
    assert client.get(f"/civil-units/show/{other}").status_code == 404
    assert client.get(f"/civil-units/edit/{other}").status_code == 404
    assert client.post(f"/civil-units/edit/{other}", data={"name": "x", "division_code": "410202",
                                                           "staff_headcount": "5"}).status_code == 404
    with app.app_context():
        assert db.session.get(CivilUnit, other).name == "开封市顺河回族区税务局"


def test_civil_units_add__officer_adds_in_own_region(app, client):
    login(client, "longting_officer")
    form = client.get("/civil-units/add").get_data(as_text=True)
    assert 'name="division_code"' in form and 'name="staff_headcount"' in form
    resp = client.post("/civil-units/add", data={"name": " 龙亭区午朝门街道办事处 ", "division_code": "410202002",
                                                 "staff_headcount": "42", "group": ""})
    assert resp.status_code == 302
    with app.app_context():
        unit = db.session.scalar(select(CivilUnit).where(CivilUnit.name == "龙亭区午朝门街道办事处"))
        assert unit is not None and unit.staff_headcount == 42 and unit.group_id is None
        assert unit.region_path == db.session.scalar(select(Region.path).where(Region.code == "410202002"))
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.object_type == "civil_unit", AuditEvent.object_id == unit.id, AuditEvent.action == "create")) == 1
    # The edit form shows the unit's division code; a group joins the unit.
    unit_id = _unit_id(app, "龙亭区午朝门街道办事处")
    assert 'value="410202002"' in client.get(f"/civil-units/edit/{unit_id}").get_data(as_text=True)
    with app.app_context():
        bookstore = db.session.scalar(select(VolunteerGroup.id).where(VolunteerGroup.name == BOOKSTORE_TEAM))
    resp = client.post(f"/civil-units/edit/{unit_id}", data={"name": "龙亭区午朝门街道办事处", "division_code": "410202002",
                                                             "staff_headcount": "40", "group": str(bookstore)})
    assert resp.status_code == 302
    with app.app_context():
        unit = db.session.get(CivilUnit, unit_id)
        assert unit.group_id == bookstore and unit.staff_headcount == 40


def _refused(app, client, data: dict) -> None:
    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(CivilUnit))
    client.post("/civil-units/add", data=data)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(CivilUnit)) == before


def test_civil_units_add__refusals_write_nothing(app, client):
    with app.app_context():
        culture = db.session.scalar(select(VolunteerGroup.id).where(VolunteerGroup.name == CULTURE_TEAM))
        tieta = db.session.scalar(select(VolunteerGroup.id).where(VolunteerGroup.name == TIETA_TEAM))
    login(client, "longting_officer")
    base = {"name": "龙亭区某单位", "division_code": "410202", "staff_headcount": "10", "group": ""}
    _refused(app, client, {**base, "division_code": "410203"})  # another county
    _refused(app, client, {**base, "division_code": "999999"})  # no such region
    _refused(app, client, {**base, "division_code": ""})
    _refused(app, client, {**base, "staff_headcount": "0"})
    _refused(app, client, {**base, "name": "开封市龙亭区文化馆"})  # on the register already
    _refused(app, client, {**base, "group": str(culture)})  # the group of another unit
    _refused(app, client, {**base, "group": str(tieta)})  # a group of 顺河回族区


def test_civil_units__other_roles_have_no_access(app, client):
    for username in ("kaifeng_honors", "longting_team_admin", "vol_longting"):
        login(client, username)
        assert client.get("/civil-units/list/").status_code in (302, 403)
        assert client.get("/civil-units/add").status_code in (302, 403)
        client.get("/logout/")
