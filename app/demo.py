"""Demo data: the Kaifeng (开封市) volunteer network behind `flask --app app demo`.

``load_demo()`` builds the schema with Alembic, bootstraps security, loads the
national region list and then seeds, once, a realistic slice of Kaifeng:
streets and communities of 龙亭区 and 顺河回族区, a group tree from the
provincial federation down to community teams, about 200 volunteers with valid
resident ID numbers, memberships, projects with positions, enrollments, service
records, hour codes, honors, trainings and evaluations, plus one group in 郑州市. Finally it makes sure
the demo accounts of ``DEMO_ACCOUNTS`` exist (password ``DEMO_PASSWORD``), puts a few civil
units on the register, and counts the statistics rollups (``rollups.rebuild``).

Running it again changes nothing: a database that already holds the Kaifeng
federation is not seeded twice. Random choices use fixed seeds, so the data is
the same on every run of a given day (ages and dates are relative to today).

Volunteers, regions and accounts go through the services; groups, memberships,
projects, positions, enrollments, hour codes, service records and honors have
no service yet, so the private helpers below set every column themselves,
copying ``region_path`` and ``group_path`` the way DESIGN.md §4 requires.
"""
from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import flask_migrate
from flask import current_app
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from app.extensions import db
from app.models import (
    SERVICE_CATEGORIES,
    BindingKind,
    CivilUnit,
    Enrollment,
    EnrollmentOrigin,
    Evaluation,
    EnrollmentStatus,
    GroupType,
    Honor,
    HonorLevel,
    HourCode,
    JoinPolicy,
    Membership,
    MembershipOrigin,
    MembershipStatus,
    Position,
    Project,
    RecordSource,
    RecordStatus,
    RecruitScope,
    Region,
    RequestStatus,
    ReviewStatus,
    ServiceRecord,
    Training,
    TransferRequest,
    Volunteer,
    VolunteerDay,
    VolunteerGroup,
)
from app.security import pii
from app.security.bootstrap import bootstrap_security
from app.security.roles import ADMIN, GROUP_ADMIN, HONORS_EDITOR, OFFICER, VOLUNTEER
from app.services import accounts, groups, regions, rollups, volunteers
from app.services.clock import to_local, to_utc, today, utcnow
from app.services.idcards import age_on, credit_code_check_char, mod11_2

DEMO_PASSWORD = "Demo12345!"
SEED = 2026
RANDOM_VOLUNTEERS = 196  # plus the four volunteers behind demo accounts
PENDING_VOLUNTEERS = 10
REJECTED_VOLUNTEERS = 3
MINORS = 8
ABOLISHED_CODE_ELDERS = 5
MAX_DAY_MINUTES = 720  # the demo keeps each volunteer's day at 12 hours or less
FEDERATION_DAYS_AGO = 1500  # when the provincial federation was approved; children follow
# Days before today that volunteers registered, by outcome (never before they could).
REGISTERED_DAYS_AGO = {ReviewStatus.APPROVED: (240, 1100), ReviewStatus.PENDING: (1, 20),
                       ReviewStatus.REJECTED: (5, 60)}

# --- Regions: (code, name, population); the parent follows from the code ---

POPULATIONS = {"410200": 4_824_016, "410202": 238_500, "410203": 271_800}

SUBREGIONS = (
    ("410202001", "北书店街道", 42_000),
    ("410202001001", "书店街社区", 7_800),
    ("410202001002", "双龙巷社区", 6_900),
    ("410202002", "午朝门街道", 38_000),
    ("410202002001", "午朝门社区", 7_200),
    ("410202003", "大兴街道", 35_000),
    ("410202003001", "大兴社区", 6_400),
    ("410202003002", "河道街社区", 5_900),
    ("410203001", "清平街道", 40_000),
    ("410203001001", "清平南北街社区", 7_600),
    ("410203001002", "东大街社区", 6_800),
    ("410203002", "铁塔街道", 45_000),
    ("410203002001", "铁塔社区", 8_100),
    ("410203002002", "北门社区", 7_000),
)

LONGTING, SHUNHE = "410202", "410203"
# Other Kaifeng counties a few volunteers live in: 鼓楼区, 禹王台区, 祥符区.
OTHER_KAIFENG_COUNTIES = ("410204", "410205", "410212")
# Abolished address codes still found on older IDs, with the county that absorbed them.
ABOLISHED_CODES = {"410211": LONGTING, "410224": "410212"}  # 金明区, 开封县


# --- Groups ---


@dataclass(frozen=True)
class GroupSpec:
    """One demo group; ``parent`` names the parent group, ``region`` is a division code."""

    name: str
    parent: str | None
    region: str
    group_type: str
    join_policy: str = JoinPolicy.VERIFY
    staff_headcount: int | None = None
    org_code: str | None = None  # 8-digit organisation code body: a legal person
    description: str = ""


HENAN_FEDERATION = "河南省志愿服务联合会"
KAIFENG_FEDERATION = "开封市志愿服务联合会"
LONGTING_CORPS = "龙亭区志愿服务总队"
SHUNHE_CORPS = "顺河回族区志愿服务总队"
JINSHUI_CORPS = "郑州市金水区志愿服务总队"
BEISHUDIAN_TEAM = "北书店街道社区志愿服务队"
CULTURE_CENTRE_TEAM = "龙亭区文化馆志愿服务队"
QINGPING_TEAM = "清平街道社区志愿服务队"
TIETA_TEAM = "铁塔街道社区志愿服务队"
SCHOOL_TEAM = "顺河区第一中学志愿服务队"
TEAM_PASSWORD = "123456"
# Registrations awaiting review (团体注册 → 下级团体审核 / 团体审核), made through the service.
BEIDAOMEN_TEAM = "龙亭区北道门社区志愿服务队"
YOUTH_ASSOCIATION = "开封市青年志愿者协会"

GROUPS = (
    GroupSpec(HENAN_FEDERATION, None, "410000", GroupType.FEDERATION, JoinPolicy.CLOSED,
              org_code="50812347", description="全省志愿服务组织的联合性社会团体。"),
    GroupSpec(KAIFENG_FEDERATION, HENAN_FEDERATION, "410200", GroupType.FEDERATION,
              JoinPolicy.CLOSED, description="开封市志愿服务组织的枢纽平台。"),
    GroupSpec(LONGTING_CORPS, KAIFENG_FEDERATION, LONGTING, GroupType.COUNTY_CORPS,
              description="龙亭区新时代文明实践志愿服务总队。"),
    GroupSpec(SHUNHE_CORPS, KAIFENG_FEDERATION, SHUNHE, GroupType.COUNTY_CORPS,
              description="顺河回族区新时代文明实践志愿服务总队。"),
    GroupSpec("鼓楼区志愿服务总队", KAIFENG_FEDERATION, "410204", GroupType.COUNTY_CORPS,
              description="鼓楼区新时代文明实践志愿服务总队。"),
    GroupSpec(BEISHUDIAN_TEAM, LONGTING_CORPS, "410202001", GroupType.COMMUNITY, JoinPolicy.OPEN,
              description="书店街、双龙巷一带的邻里互助与文明劝导。"),
    GroupSpec(CULTURE_CENTRE_TEAM, LONGTING_CORPS, LONGTING, GroupType.CIVIL_UNIT,
              JoinPolicy.VERIFY, staff_headcount=36, description="龙亭公园、文化馆的讲解与文化服务。"),
    GroupSpec(QINGPING_TEAM, SHUNHE_CORPS, "410203001", GroupType.COMMUNITY, JoinPolicy.PASSWORD,
              description="清平街道敬老助餐、上门探访。"),
    GroupSpec(TIETA_TEAM, SHUNHE_CORPS, "410203002", GroupType.COMMUNITY, JoinPolicy.OPEN,
              description="铁塔公园周边环境保护与社区服务。"),
    GroupSpec(SCHOOL_TEAM, SHUNHE_CORPS, SHUNHE, GroupType.SCHOOL, JoinPolicy.CLOSED,
              description="学生与教师组成的校园志愿服务队。"),
    GroupSpec(JINSHUI_CORPS, HENAN_FEDERATION, "410105", GroupType.COUNTY_CORPS,
              description="金水区新时代文明实践志愿服务总队。"),
)

# How a volunteer typically becomes a member, by the group's join policy.
ORIGIN_BY_POLICY = {
    JoinPolicy.OPEN: MembershipOrigin.SELF_JOIN,
    JoinPolicy.VERIFY: MembershipOrigin.REQUEST,
    JoinPolicy.PASSWORD: MembershipOrigin.PASSWORD,
    JoinPolicy.CLOSED: MembershipOrigin.ADMIN_ADDED,
}


# --- Projects and positions; days are relative to today (Asia/Shanghai) ---


@dataclass(frozen=True)
class PositionSpec:
    """One position (岗位) of a demo project."""

    name: str
    quota: int
    default_minutes: int
    min_age: int | None = None
    max_age: int | None = None
    allows_minors: bool = False
    shift: tuple[int, int] = (8, 18)  # the daily shift, local hours


@dataclass(frozen=True)
class ProjectSpec:
    """One demo project: it runs from ``start_day`` 08:00 to ``end_day`` 18:00 local time."""

    name: str
    group: str
    region: str
    category: str
    address: str
    start_day: int
    end_day: int
    positions: tuple[PositionSpec, ...]
    recruit_scope: str = RecruitScope.ANYONE
    is_backfill: bool = False
    description: str = ""


PROJECTS = (
    ProjectSpec("书店街文明劝导", BEISHUDIAN_TEAM, "410202001", "civility", "开封市龙亭区书店街",
                -45, 45, (PositionSpec("文明劝导员", 20, 180),
                          PositionSpec("交通秩序引导员", 10, 120, min_age=18, max_age=65)),
                description="周末在书店街劝导游客文明出行、垃圾分类。"),
    ProjectSpec("龙亭公园文化讲解", CULTURE_CENTRE_TEAM, LONGTING, "culture_sports",
                "开封市龙亭区中山路北段龙亭公园", -60, 120,
                (PositionSpec("文化讲解员", 15, 240, min_age=18),
                 PositionSpec("青少年讲解助理", 8, 120, min_age=14, allows_minors=True)),
                recruit_scope=RecruitScope.MEMBERS_ONLY, description="为游客讲解北宋皇城历史文化。"),
    ProjectSpec("清平街道敬老助餐", QINGPING_TEAM, "410203001", "elderly",
                "开封市顺河回族区清平街道社区食堂", -150, -10,
                (PositionSpec("助餐服务员", 20, 150),
                 PositionSpec("上门探访员", 10, 120, min_age=18, max_age=70)),
                recruit_scope=RecruitScope.MEMBERS_ONLY, description="为辖区独居老人送餐、陪伴聊天。"),
    ProjectSpec("校园周边护学岗", SCHOOL_TEAM, SHUNHE, "public_security", "开封市顺河回族区第一中学校门口",
                -30, 90, (PositionSpec("护学岗志愿者", 12, 60, min_age=14, allows_minors=True),),
                recruit_scope=RecruitScope.MEMBERS_ONLY, description="上下学时段维护校门口交通秩序。"),
    ProjectSpec("汴河环境清洁行动", SHUNHE_CORPS, "410203002", "environment", "开封市顺河回族区汴河沿岸",
                7, 37, (PositionSpec("河道清洁员", 30, 180, min_age=18, max_age=65),),
                description="清理汴河沿岸垃圾，宣传河道保护。"),
    ProjectSpec("龙亭区志愿服务时长补录", LONGTING_CORPS, LONGTING, "community", "开封市龙亭区",
                -200, 20, (PositionSpec("社区服务（补录）", 50, 240),), is_backfill=True,
                description="补录系统上线前线下开展的社区服务时长。"),
    ProjectSpec("开封市全民健身运动会志愿服务", KAIFENG_FEDERATION, "410200", "major_events",
                "开封市体育中心及各分赛场", -220, -210,
                (PositionSpec("观众引导员", 40, 240, min_age=18),
                 PositionSpec("应急救护员", 10, 300, min_age=20, max_age=60)),
                description="运动会期间的观众引导与应急救护。"),
    ProjectSpec("金水区应急救护演练", JINSHUI_CORPS, "410105", "emergency", "郑州市金水区文化路街道",
                -40, 50, (PositionSpec("应急演练志愿者", 20, 180, min_age=18),),
                description="社区应急救护培训与疏散演练。"),
)


# --- Civil units (文明单位): name, division code, staff headcount, registered group ---

CIVIL_UNITS = (
    ("开封市龙亭区文化馆", LONGTING, 36, CULTURE_CENTRE_TEAM),
    ("开封市顺河回族区第一中学", SHUNHE, 128, SCHOOL_TEAM),
    ("开封市图书馆", "410200", 85, None),
    ("开封市龙亭区北书店街道办事处", "410202001", 45, None),
    ("开封市顺河回族区税务局", SHUNHE, 60, None),
)


# --- Volunteers behind the demo accounts ---


@dataclass(frozen=True)
class NamedVolunteer:
    """A fixed volunteer linked to a demo account; the email is ``<username>@example.cn``."""

    username: str
    real_name: str
    is_male: bool
    age: int
    region: str
    home: str  # where they live, for the account list
    memberships: tuple[tuple[str, str], ...]  # (group name, origin)
    enrollments: tuple[tuple[str, str], ...]  # (project name, position name)
    registered_days_ago: int
    guardian: tuple[str, str] | None = None  # (name, relation)


NAMED_VOLUNTEERS = (
    NamedVolunteer("vol_longting", "李明华", True, 34, "410202001001", "龙亭区书店街社区",
                   ((BEISHUDIAN_TEAM, MembershipOrigin.SELF_JOIN),
                    (CULTURE_CENTRE_TEAM, MembershipOrigin.REQUEST)),
                   (("书店街文明劝导", "文明劝导员"), ("龙亭公园文化讲解", "文化讲解员"),
                    ("开封市全民健身运动会志愿服务", "观众引导员")), 900),
    NamedVolunteer("vol_shunhe", "王秀英", False, 45, "410203001001", "顺河回族区清平南北街社区",
                   ((QINGPING_TEAM, MembershipOrigin.PASSWORD),),
                   (("清平街道敬老助餐", "助餐服务员"), ("汴河环境清洁行动", "河道清洁员")), 700),
    NamedVolunteer("vol_minor", "张子涵", False, 16, "410202003001", "龙亭区大兴社区",
                   ((CULTURE_CENTRE_TEAM, MembershipOrigin.REQUEST),),
                   (("龙亭公园文化讲解", "青少年讲解助理"),), 400, guardian=("张建军", "父亲")),
    NamedVolunteer("vol_zhengzhou", "刘建国", True, 52, "410105", "郑州市金水区",
                   ((JINSHUI_CORPS, MembershipOrigin.REQUEST),),
                   (("金水区应急救护演练", "应急演练志愿者"),), 500),
)


# --- Demo accounts ---


@dataclass(frozen=True)
class DemoAccount:
    """A demo login: its role, a description of its scope and what binds it there."""

    username: str
    role: str
    scope: str
    first_name: str
    last_name: str
    region: str | None = None  # division code of a region binding
    group: str | None = None  # name of an administered group


_ACCOUNTS = (
    DemoAccount("admin", ADMIN, "everything", "管理员", "志愿云平台"),
    DemoAccount("henan_officer", OFFICER, "河南省 (410000) and below", "陈志强", "河南省文明办",
                region="410000"),
    DemoAccount("kaifeng_officer", OFFICER, "开封市 (410200) and below", "周建军", "开封市文明办",
                region="410200"),
    DemoAccount("longting_officer", OFFICER, "龙亭区 (410202) and below", "孙丽娟", "龙亭区文明办",
                region=LONGTING),
    DemoAccount("shunhe_officer", OFFICER, "顺河回族区 (410203) and below", "马文斌",
                "顺河回族区文明办", region=SHUNHE),
    DemoAccount("kaifeng_honors", HONORS_EDITOR, "honors of 开封市 (410200)", "郭静", "开封市文明办",
                region="410200"),
    DemoAccount("kfvf_admin", GROUP_ADMIN, f"{KAIFENG_FEDERATION} and its child groups", "杨宏伟",
                KAIFENG_FEDERATION, group=KAIFENG_FEDERATION),
    DemoAccount("longting_corps_admin", GROUP_ADMIN, f"{LONGTING_CORPS} and its teams", "赵振华",
                LONGTING_CORPS, group=LONGTING_CORPS),
    DemoAccount("longting_team_admin", GROUP_ADMIN, BEISHUDIAN_TEAM, "何淑芬", BEISHUDIAN_TEAM,
                group=BEISHUDIAN_TEAM),
    DemoAccount("culture_team_admin", GROUP_ADMIN, CULTURE_CENTRE_TEAM, "韩雪梅", CULTURE_CENTRE_TEAM,
                group=CULTURE_CENTRE_TEAM),
    DemoAccount("shunhe_team_admin", GROUP_ADMIN, QINGPING_TEAM, "白玉兰", QINGPING_TEAM,
                group=QINGPING_TEAM),
    DemoAccount("beidaomen_admin", GROUP_ADMIN, f"{BEIDAOMEN_TEAM} (pending: {LONGTING_CORPS} reviews it)",
                BEIDAOMEN_TEAM, "-", group=BEIDAOMEN_TEAM),
    DemoAccount("kfyouth_admin", GROUP_ADMIN, f"{YOUTH_ASSOCIATION} (pending root group: 开封市 officers review it)",
                YOUTH_ASSOCIATION, "-", group=YOUTH_ASSOCIATION),
    *(DemoAccount(v.username, VOLUNTEER, f"own record: {v.real_name}, age {v.age}, {v.home}",
                  v.real_name, "志愿者") for v in NAMED_VOLUNTEERS),
)

DEMO_ACCOUNTS: list[tuple[str, str, str]] = [(a.username, a.role, a.scope) for a in _ACCOUNTS]

# Profile vocabularies (data values stay Chinese, as users see them).
POLITICAL_STATUSES = ("群众", "群众", "群众", "共青团员", "中共党员")
EDUCATIONS = ("初中", "高中", "中专", "大专", "本科", "本科", "硕士研究生")
SKILLS = ("急救", "摄影", "书法", "驾驶", "心理疏导", "外语", "文艺表演", "电脑维修", "烹饪", "讲解")
REJECT_REASONS = ("身份证照片不清晰，请重新上传。", "所填姓名与证件不一致。", "联系电话无法接通，请核实。")
PHONE_PREFIXES = ("130", "131", "132", "135", "136", "138", "139", "150", "151", "155",
                  "158", "159", "180", "182", "186", "187", "189")


def load_demo() -> str:
    """Build schema, roles and regions, seed the Kaifeng demo once, ensure the demo
    accounts, commit, and return a one-line summary. Safe to run again."""
    flask_migrate.upgrade()
    bootstrap_security()
    regions.load_regions()
    db.session.commit()
    seeded_before = _already_seeded()
    if not seeded_before:
        _DemoBuilder().build()
    _ensure_pending_groups()
    _ensure_accounts()
    _ensure_civil_units()
    db.session.commit()
    if not seeded_before or rollups.is_empty():
        # The seeding writes most facts directly (and backdates approvals), so the
        # statistics are counted afresh from them; a database seeded before the rollups
        # existed gets them here too, so that 统计分析 shows its charts.
        rollups.rebuild()
        db.session.commit()
    return _summary(seeded_before)


def _already_seeded() -> bool:
    """True when the Kaifeng federation exists, i.e. an earlier run seeded the demo."""
    return db.session.scalar(
        select(VolunteerGroup.id).where(VolunteerGroup.name == KAIFENG_FEDERATION)) is not None


def _summary(seeded_before: bool) -> str:
    """One line of counts for the CLI."""
    def count(model) -> int:
        return db.session.scalar(select(func.count()).select_from(model))

    approved_minutes = db.session.scalar(select(func.coalesce(func.sum(ServiceRecord.minutes), 0))
                                         .where(ServiceRecord.status == RecordStatus.APPROVED))
    state = "already seeded (kept as is)" if seeded_before else "seeded"
    return (f"demo {state}: {count(Region)} regions, {count(VolunteerGroup)} groups, "
            f"{count(Volunteer)} volunteers, {count(Project)} projects, "
            f"{count(ServiceRecord)} service records ({approved_minutes / 60:.0f} approved hours); "
            f"{len(_ACCOUNTS)} demo accounts, password {DEMO_PASSWORD}")


def _ensure_pending_groups() -> None:
    """Register, once, a pending team under 龙亭区志愿服务总队 and a pending root group in
    开封市 through the 团体注册 service, each with its first admin account."""
    registrations = (
        dict(name=BEIDAOMEN_TEAM, username="beidaomen_admin", parent_name=LONGTING_CORPS, region_code=LONGTING,
             group_type=GroupType.COMMUNITY, is_legal_person=False, contact_name="钱桂兰",
             contact_phone="13837812345", description="北道门社区的邻里守望与文明劝导。"),
        dict(name=YOUTH_ASSOCIATION, username="kfyouth_admin", region_code="410200",
             group_type=GroupType.FEDERATION, is_legal_person=True,
             credit_code=_credit_code("51", "410200", "50812399"), contact_name="韩冬梅",
             contact_phone="0371-23391234", description="共青团开封市委指导的青年志愿者组织。"),
    )
    for fields in registrations:
        exists = db.session.scalar(select(VolunteerGroup.id).where(VolunteerGroup.name == fields["name"]))
        if exists is None and current_app.appbuilder.sm.find_user(username=fields["username"]) is None:
            groups.register_group(password=DEMO_PASSWORD, password_confirm=DEMO_PASSWORD,
                                  join_policy=JoinPolicy.VERIFY, **fields)
    db.session.flush()


def _ensure_civil_units() -> None:
    """Put the demo's civil units (文明单位) on the register, once each: two have registered
    a volunteer group (the 文化馆's civil-unit team, the school's team), the others not yet."""
    for name, region_code, headcount, group_name in CIVIL_UNITS:
        if db.session.scalar(select(CivilUnit.id).where(CivilUnit.name == name)) is not None:
            continue
        region = regions.get_region(region_code)
        group = (db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == group_name))
                 if group_name else None)
        db.session.add(CivilUnit(name=name, region_id=region.id, region_path=region.path,
                                 staff_headcount=headcount, group_id=group.id if group is not None else None))
    db.session.flush()


def _ensure_accounts() -> None:
    """Create the demo users if missing and bind them to their regions, groups or volunteers."""
    for account in _ACCOUNTS:
        user = accounts.ensure_user(account.username, DEMO_PASSWORD, first_name=account.first_name,
                                    last_name=account.last_name,
                                    email=f"{account.username}@example.cn", roles=[account.role])
        if account.region:
            kind = BindingKind.HONORS_EDITOR if account.role == HONORS_EDITOR else BindingKind.OFFICER
            accounts.bind_region(user, regions.get_region(account.region), kind)
        if account.group:
            group = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == account.group))
            accounts.bind_group_admin(user, group)
        if account.role == VOLUNTEER:
            volunteer = db.session.scalar(select(Volunteer).where(Volunteer.email == user.email))
            if volunteer is not None and volunteer.user_id is None:
                volunteer.user = user
    db.session.flush()


# --- Small pure helpers ---


def _local_utc(day: date, hour: int, minute: int = 0) -> datetime:
    """Naive UTC instant of ``hour:minute`` on ``day`` in Asia/Shanghai."""
    return to_utc(datetime.combine(day, time(hour, minute)))


def _years_before(day: date, years: int) -> date:
    """The same calendar day ``years`` earlier (29 February becomes the 28th)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _credit_code(registrar: str, division: str, org_body: str) -> str:
    """A unified social credit code (GB 32100) around an 8-digit organisation code body.

    The organisation code gets its GB 11714 check character, the whole code its
    GB 32100 check character.
    """
    org_sum = sum(int(c) * w for c, w in zip(org_body, (3, 7, 9, 10, 5, 8, 4, 2)))
    org_check = {10: "X", 11: "0"}.get(11 - org_sum % 11, str(11 - org_sum % 11))
    body = registrar + division + org_body + org_check
    return body + credit_code_check_char(body)


def _enrolled_at(project: Project) -> datetime:
    """When the demo's sign-ups for ``project`` happened: three days before it starts
    (or before now, for a project that has not started yet)."""
    return min(project.starts_at, utcnow()) - timedelta(days=3)


def _county_path(path: str) -> str:
    """The county part of a region path, or the whole path above county level."""
    return "/".join(path.split("/")[:-1][:3]) + "/"


class _DemoBuilder:
    """Seeds the demo in one transaction; fixed seeds keep the data reproducible."""

    def __init__(self) -> None:
        from faker import Faker  # a dev dependency: only the seeding needs it

        self.rng = random.Random(SEED)
        self.fake = Faker("zh_CN")
        self.fake.seed_instance(SEED)
        self.today = today()
        self.regions: dict[str, Region] = {}
        self.groups: dict[str, VolunteerGroup] = {}
        self.projects: dict[str, Project] = {}
        self.volunteers: list[Volunteer] = []
        self.named: dict[str, Volunteer] = {}
        self.member_of: dict[int, dict[int, datetime]] = {}  # group id -> {volunteer id: joined}
        self.enrolled: dict[int, set[int]] = {}  # project id -> enrolled volunteer ids
        self.day_minutes: dict[tuple[int, date], int] = {}
        self.approved_day_minutes: dict[tuple[int, date], int] = {}
        self.hour_codes: dict[tuple[int, date], HourCode] = {}
        self.used_ids: set[str] = set()

    def build(self) -> None:
        """Seed everything, in dependency order, and flush."""
        self.add_regions()
        self.add_groups()
        self.add_volunteers()
        self.add_memberships()
        self.add_projects()
        self.add_enrollments()
        self.add_service_records()
        self.add_honors()
        self.add_record_book()
        self.add_transfers()
        db.session.flush()

    # --- Regions ---

    def add_regions(self) -> None:
        """Add the streets and communities and set the populations of their counties."""
        for code, population in POPULATIONS.items():
            regions.get_region(code).population = population
        for code, name, population in SUBREGIONS:
            parent = regions.get_region(code[:6] if len(code) == 9 else code[:9])
            regions.add_subregion(parent, code, name, population)
        codes = [c for c, *_ in SUBREGIONS] + [LONGTING, SHUNHE, "410000", "410200", "410105",
                                               *OTHER_KAIFENG_COUNTIES]
        self.regions = {code: regions.get_region(code) for code in codes}

    # --- Groups ---

    def add_groups(self) -> None:
        """Create the group tree, approved, with paths, contacts and join tokens."""
        for spec in GROUPS:
            self.groups[spec.name] = self._add_group(spec)

    def _add_group(self, spec: GroupSpec) -> VolunteerGroup:
        """Create one approved group; a flush gives the id that ends its ``group_path``."""
        region = self.regions[spec.region]
        parent = self.groups.get(spec.parent) if spec.parent else None
        phone = self._phone()
        approved_on = (parent.approved_on + timedelta(days=self.rng.randint(5, 60)) if parent
                       else _local_utc(self.today - timedelta(days=FEDERATION_DAYS_AGO), 10))
        group = VolunteerGroup(
            name=spec.name, parent=parent, region_id=region.id, region_path=region.path,
            group_type=spec.group_type, is_legal_person=spec.org_code is not None,
            credit_code=_credit_code("51", spec.region, spec.org_code) if spec.org_code else None,
            contact_name=self.fake.name(), contact_phone_enc=pii.encrypt(phone),
            contact_phone_masked=pii.mask_phone(phone), staff_headcount=spec.staff_headcount,
            join_policy=spec.join_policy,
            join_password_hash=(generate_password_hash(TEAM_PASSWORD)
                                if spec.join_policy == JoinPolicy.PASSWORD else None),
            join_token=groups.new_join_token(), name_pinyin=groups.name_pinyin(spec.name),
            description=spec.description,
            status=ReviewStatus.APPROVED, approved_on=approved_on,
            created_on=approved_on - timedelta(days=3),
        )
        db.session.add(group)
        db.session.flush()
        group.group_path = (parent.group_path if parent else "") + f"{group.id}/"
        self.member_of[group.id] = {}
        return group

    # --- Volunteers ---

    def add_volunteers(self) -> None:
        """Register the named and the random volunteers; approve most, reject a few."""
        for spec in NAMED_VOLUNTEERS:
            volunteer = self._register(spec.real_name, spec.is_male, spec.age, self.regions[spec.region],
                                       f"{spec.username}@example.cn", spec.registered_days_ago,
                                       guardian=spec.guardian)
            self._approve(volunteer)
            self.named[spec.username] = volunteer
        undecided = self.rng.sample(range(RANDOM_VOLUNTEERS), PENDING_VOLUNTEERS + REJECTED_VOLUNTEERS)
        outcomes = {n: ReviewStatus.PENDING for n in undecided[:PENDING_VOLUNTEERS]}
        outcomes.update({n: ReviewStatus.REJECTED for n in undecided[PENDING_VOLUNTEERS:]})
        for n in range(RANDOM_VOLUNTEERS):
            outcome = outcomes.get(n, ReviewStatus.APPROVED)
            volunteer = self._random_volunteer(n, outcome)
            if outcome == ReviewStatus.APPROVED:
                self._approve(volunteer)
            elif outcome == ReviewStatus.REJECTED:
                volunteer.status = ReviewStatus.REJECTED
                volunteer.reject_reason = self.rng.choice(REJECT_REASONS)
            self.volunteers.append(volunteer)
        db.session.flush()

    def _approve(self, volunteer: Volunteer) -> None:
        """Approve through the service, then date the approval a few days after registering.

        The service stamps "now"; the demo backdates it so that history (registrations
        per month, who could enroll when) looks lived-in. The number's year follows.
        """
        day = min(volunteer.created_on.date() + timedelta(days=self.rng.randint(1, 3)), self.today)
        volunteers.approve_volunteer(volunteer, on=day)
        volunteer.approved_on = min(_local_utc(day, 10), utcnow())

    def _random_volunteer(self, n: int, outcome: str) -> Volunteer:
        """Volunteer number ``n``: the first few are minors, the next few elders with old IDs."""
        is_male = self.rng.random() < 0.45
        if n < MINORS:
            age, region, address_code = self.rng.randint(14, 17), self._home_region(), None
        elif n < MINORS + ABOLISHED_CODE_ELDERS:
            address_code = self.rng.choice(sorted(ABOLISHED_CODES))
            county = ABOLISHED_CODES[address_code]
            age, region = self.rng.randint(50, 70), self._home_region(county)
        else:
            age, region, address_code = int(self.rng.triangular(18, 70, 32)), self._home_region(), None
        surname = self.fake.last_name()
        name = surname + (self.fake.first_name_male() if is_male else self.fake.first_name_female())
        guardian = None
        if age < 18:
            guardian = ((surname + self.fake.first_name_male(), "父亲") if self.rng.random() < 0.5
                        else (self.fake.name_female(), "母亲"))
        return self._register(name, is_male, age, region, f"v{n + 1}@example.cn",
                              self._registered_days_ago(age, outcome), guardian=guardian,
                              address_code=address_code)

    def _registered_days_ago(self, age: int, outcome: str) -> int:
        """When a volunteer registered, by outcome, but not before turning 18 (14 for minors)."""
        lo, hi = REGISTERED_DAYS_AGO[outcome]
        since = _years_before(self.today, age - (18 if age >= 18 else 14))
        cap = (self.today - since).days
        return self.rng.randint(min(lo, cap), min(hi, cap))

    def _home_region(self, county: str | None = None) -> Region:
        """A home: mostly a community or street of 龙亭区 or 顺河回族区, else another county.

        With ``county``, a community or street of that county, or the county itself.
        """
        if county is None and self.rng.random() < 0.12:
            return self.regions[self.rng.choice(OTHER_KAIFENG_COUNTIES)]
        prefix = county or self.rng.choice((LONGTING, SHUNHE))
        homes = [r for code, r in self.regions.items() if len(code) > 6 and code.startswith(prefix)]
        if not homes:
            return self.regions[prefix]
        weights = [3 if len(r.code) == 12 else 1 for r in homes]
        return self.rng.choices(homes, weights)[0]

    def _register(self, name: str, is_male: bool, age: int, region: Region, email: str,
                  registered_days_ago: int, *, guardian: tuple[str, str] | None = None,
                  address_code: str | None = None) -> Volunteer:
        """Register a volunteer through the service with a valid ID, phone and profile,
        dated ``registered_days_ago`` (a guardian consents at registration)."""
        birth = self._birth_date(age)
        id_number = self._resident_id(address_code or region.code[:6], birth, is_male)
        registered_at = min(_local_utc(self.today - timedelta(days=registered_days_ago), 19), utcnow())
        guardian_fields = {}
        if guardian:
            guardian_fields = dict(guardian_name=guardian[0], guardian_relation=guardian[1],
                                   guardian_phone=self._phone(), guardian_consent_on=registered_at)
        volunteer = volunteers.register_volunteer(
            real_name=name, id_number=id_number, email=email, region=region, phone=self._phone(),
            user=None, service_categories=",".join(self.rng.sample(SERVICE_CATEGORIES, 2)),
            skills=self.rng.choice(SKILLS), political_status=self._political_status(age),
            education=self._education(age), **guardian_fields,
        )
        volunteer.created_on = volunteer.submitted_on = registered_at  # the review clock runs from here
        return volunteer

    def _birth_date(self, age: int) -> date:
        """A birth date that makes the person exactly ``age`` today."""
        latest = _years_before(self.today, age)
        earliest = _years_before(self.today, age + 1) + timedelta(days=1)
        return earliest + timedelta(days=self.rng.randrange((latest - earliest).days + 1))

    def _resident_id(self, address_code: str, birth: date, is_male: bool) -> str:
        """A GB 11643 number: address code, birth date, order code (odd = male), MOD 11-2."""
        while True:
            order = self.rng.randrange(1, 500) * 2 - (1 if is_male else 0)
            body = f"{address_code}{birth:%Y%m%d}{order:03d}"
            number = body + mod11_2(body)
            if number not in self.used_ids:
                self.used_ids.add(number)
                return number

    def _phone(self) -> str:
        """An 11-digit mainland mobile number."""
        return self.rng.choice(PHONE_PREFIXES) + f"{self.rng.randrange(10 ** 8):08d}"

    def _political_status(self, age: int) -> str:
        """Young people are mostly League members; party membership starts at 18."""
        if age < 28 and self.rng.random() < 0.7:
            return "共青团员"
        return "群众" if age < 18 else self.rng.choice(POLITICAL_STATUSES)

    def _education(self, age: int) -> str:
        """Minors are at school, young adults at most graduates; others any level."""
        if age < 18:
            return "初中" if age < 16 else "高中"
        return self.rng.choice(EDUCATIONS[1:5] if age < 23 else EDUCATIONS)

    # --- Memberships ---

    def add_memberships(self) -> None:
        """Members join teams near home; a few requests wait in the verify-policy team."""
        for spec in NAMED_VOLUNTEERS:
            for group_name, origin in spec.memberships:
                self._add_membership(self.named[spec.username], self.groups[group_name], origin)
        culture = self.groups[CULTURE_CENTRE_TEAM]
        waiting = []
        for volunteer in self._approved():
            for group in self._teams_for(volunteer):
                self._add_membership(volunteer, group, self._origin(group))
            if (volunteer.region_path.startswith(self.regions[LONGTING].path)
                    and volunteer.id not in self.member_of[culture.id]):
                waiting.append(volunteer)
        for volunteer in self.rng.sample(waiting, min(4, len(waiting))):
            self._add_membership(volunteer, culture, MembershipOrigin.REQUEST, MembershipStatus.PENDING)

    def _approved(self) -> list[Volunteer]:
        """The approved random volunteers (the named ones are handled by their specs)."""
        return [v for v in self.volunteers if v.status == ReviewStatus.APPROVED]

    def _teams_for(self, volunteer: Volunteer) -> list[VolunteerGroup]:
        """The teams a random volunteer joins: the community team of their street, or
        the district-wide one; minors of 顺河 their school; some adults a second team."""
        home = volunteer.region_path
        adult = age_on(volunteer.birth_date, self.today) >= 18
        community = [g for g in self._teams() if g.group_type == GroupType.COMMUNITY
                     and home.startswith(g.region_path)]
        if home.startswith(self.regions[SHUNHE].path):
            first = self.groups[SCHOOL_TEAM] if not adult else (community or [self.groups[QINGPING_TEAM]])[0]
            second = self.groups[SHUNHE_CORPS]
        elif home.startswith(self.regions[LONGTING].path):
            first = community[0] if community and adult else self.groups[CULTURE_CENTRE_TEAM]
            second = self.groups[CULTURE_CENTRE_TEAM]
        else:
            return [self.groups[CULTURE_CENTRE_TEAM]] if self.rng.random() < 0.5 else []
        extra = adult and second is not first and self.rng.random() < 0.2
        return [first, second] if extra else [first]

    def _teams(self) -> list[VolunteerGroup]:
        """The teams: every group that is neither a federation nor a county corps."""
        tiers = (GroupType.FEDERATION, GroupType.COUNTY_CORPS)
        return [g for g in self.groups.values() if g.group_type not in tiers]

    def _origin(self, group: VolunteerGroup) -> str:
        """How an active membership began, following the group's join policy."""
        if group.group_type == GroupType.COUNTY_CORPS:
            return MembershipOrigin.ADMIN_ADDED
        if group.join_policy == JoinPolicy.OPEN and self.rng.random() < 0.3:
            return MembershipOrigin.QR
        return ORIGIN_BY_POLICY[JoinPolicy(group.join_policy)]

    def _add_membership(self, volunteer: Volunteer, group: VolunteerGroup, origin: str,
                        status: str = MembershipStatus.ACTIVE) -> Membership:
        """A membership with the group's region and group paths copied onto it.

        An active one began within a month of the volunteer's approval; a pending
        request is new.
        """
        membership = Membership(
            group_id=group.id, volunteer_id=volunteer.id, group_path=group.group_path,
            region_id=group.region_id, region_path=group.region_path, status=status, origin=origin,
            volunteer_name=volunteer.real_name, volunteer_no=volunteer.volunteer_no,
        )
        if status == MembershipStatus.ACTIVE:
            joined = volunteer.approved_on + timedelta(days=self.rng.randint(1, 30), hours=1)
            membership.decided_on = membership.created_on = min(joined, utcnow())
            self.member_of[group.id][volunteer.id] = membership.decided_on
        db.session.add(membership)
        return membership

    # --- Projects and positions ---

    def add_projects(self) -> None:
        """Create the projects and their positions."""
        for spec in PROJECTS:
            self.projects[spec.name] = self._add_project(spec)
        db.session.flush()

    def _add_project(self, spec: ProjectSpec) -> Project:
        """One project with its positions; both carry the project's region and group paths."""
        group, region = self.groups[spec.group], self.regions[spec.region]
        starts_at = _local_utc(self.today + timedelta(days=spec.start_day), 8)
        project = Project(
            group=group, group_path=group.group_path, region_id=region.id, region_path=region.path,
            name=spec.name, category=spec.category, address=spec.address, description=spec.description,
            starts_at=starts_at, ends_at=_local_utc(self.today + timedelta(days=spec.end_day), 18),
            recruit_scope=spec.recruit_scope, is_backfill=spec.is_backfill,
            risk_notice="请注意人身与交通安全，服从现场负责人安排；身体不适请勿参加。",
            contact_name=group.contact_name, contact_phone_masked=group.contact_phone_masked,
            created_on=min(starts_at, utcnow()) - timedelta(days=10),
        )
        for position in spec.positions:
            project.positions.append(Position(
                group_path=group.group_path, region_id=region.id, region_path=region.path,
                name=position.name, quota=position.quota, default_minutes=position.default_minutes,
                shift_start=time(position.shift[0]), shift_end=time(position.shift[1]),
                min_age=position.min_age, max_age=position.max_age,
                allows_minors=position.allows_minors, enrolled_count=0,
            ))
        db.session.add(project)
        return project

    # --- Enrollments ---

    def add_enrollments(self) -> None:
        """Enroll the named volunteers where their specs say, then fill positions at random."""
        for spec in NAMED_VOLUNTEERS:
            for project_name, position_name in spec.enrollments:
                project = self.projects[project_name]
                position = next(p for p in project.positions if p.name == position_name)
                self._enroll(position, self.named[spec.username], EnrollmentStatus.ACCEPTED)
        for project in self.projects.values():
            for position in project.positions:
                self._fill_position(project, position)
        db.session.flush()

    def _fill_position(self, project: Project, position: Position) -> None:
        """Enroll eligible candidates up to about 70% of the quota, one position per project."""
        taken = self.enrolled.setdefault(project.id, set())
        candidates = [v for v in self._candidates(project)
                      if v.id not in taken and self._fits(position, v)]
        target = max(0, round(position.quota * 0.7) - position.enrolled_count)
        for volunteer in self.rng.sample(candidates, min(target, len(candidates))):
            self._enroll(position, volunteer, self._enrollment_status(project))

    def _candidates(self, project: Project) -> list[Volunteer]:
        """Members of the group (members-only), of its teams (backfill), else residents
        nearby; only people approved, and members, by the time of enrolling."""
        when = _enrolled_at(project)
        pool = [v for v in self._approved() if v.approved_on <= when]
        if project.recruit_scope == RecruitScope.MEMBERS_ONLY:
            group_ids = [project.group_id]
        elif project.is_backfill:
            group_ids = [g.id for g in self._teams() if g.group_path.startswith(project.group_path)]
        else:
            county = _county_path(project.region_path)
            return [v for v in pool if v.region_path.startswith(county)]
        return [v for v in pool
                if any(self.member_of[g].get(v.id, datetime.max) <= when for g in group_ids)]

    def _fits(self, position: Position, volunteer: Volunteer) -> bool:
        """The position's age limits, and minors only where they are allowed."""
        age = age_on(volunteer.birth_date, self.today)
        return ((age >= 18 or position.allows_minors)
                and (position.min_age is None or age >= position.min_age)
                and (position.max_age is None or age <= position.max_age))

    def _enrollment_status(self, project: Project) -> str:
        """Mostly accepted; some pending before the start, a few cancelled."""
        roll = self.rng.random()
        if project.starts_at > utcnow() and roll < 0.3:
            return EnrollmentStatus.PENDING
        if roll > 0.95:
            return EnrollmentStatus.CANCELLED
        return EnrollmentStatus.ACCEPTED

    def _enroll(self, position: Position, volunteer: Volunteer, status: str) -> Enrollment:
        """An enrollment with the project's paths; accepted ones count towards the quota."""
        project = position.project
        is_minor = age_on(volunteer.birth_date, self.today) < 18
        enrollment = Enrollment(
            position=position, project=project, volunteer_id=volunteer.id,
            group_path=project.group_path, region_id=project.region_id,
            region_path=project.region_path, status=status,
            origin=EnrollmentOrigin.ADMIN if project.is_backfill else EnrollmentOrigin.SELF,
            volunteer_name=volunteer.real_name, volunteer_no=volunteer.volunteer_no,
            guardian_confirmed_on=(_enrolled_at(project) + timedelta(days=1)
                                   if is_minor and status == EnrollmentStatus.ACCEPTED else None),
            created_on=_enrolled_at(project),
        )
        db.session.add(enrollment)
        self.enrolled.setdefault(project.id, set()).add(volunteer.id)
        if status == EnrollmentStatus.ACCEPTED:
            position.enrolled_count += 1
        return enrollment

    # --- Service records and hour codes ---

    def add_service_records(self) -> None:
        """Records for accepted enrollments of started projects, kept in step with totals."""
        volunteers_by_id = {v.id: v for v in [*self.named.values(), *self.volunteers]}
        enrollments = db.session.scalars(select(Enrollment).where(
            Enrollment.status == EnrollmentStatus.ACCEPTED).order_by(Enrollment.id)).all()
        for enrollment in enrollments:
            days = self._service_days(enrollment.project)
            count = min(len(days), self.rng.randint(2, 5) if enrollment.project.ends_at < utcnow()
                        else self.rng.randint(1, 4))
            for index, day in enumerate(sorted(self.rng.sample(days, count))):
                self._add_record(enrollment, volunteers_by_id[enrollment.volunteer_id], day,
                                 may_be_pending=index > 0)
        # The ledger's day totals (services.hours.credit keeps them from here on).
        db.session.add_all(VolunteerDay(volunteer_id=volunteer_id, served_on=day, minutes=minutes)
                           for (volunteer_id, day), minutes in sorted(self.approved_day_minutes.items()))

    def _service_days(self, project: Project) -> list[date]:
        """Days the project ran, up to yesterday (none before it starts)."""
        first_day = to_local(project.starts_at).date()
        last_day = min(to_local(project.ends_at).date(), self.today - timedelta(days=1))
        return [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]

    def _add_record(self, enrollment: Enrollment, volunteer: Volunteer, day: date, *,
                    may_be_pending: bool) -> None:
        """One record of ``volunteer`` on ``day``; skipped if the day would pass the demo cap."""
        project, position = enrollment.project, enrollment.position
        use_code = not project.is_backfill and self.rng.random() < 0.25
        code = self._hour_code(position, day) if use_code else None
        minutes = code.minutes if code else self._minutes(position)
        used = self.day_minutes.get((volunteer.id, day), 0)
        if used + minutes > MAX_DAY_MINUTES:
            return
        self.day_minutes[(volunteer.id, day)] = used + minutes
        pending = (may_be_pending and not code and project.ends_at > utcnow()
                   and self.rng.random() < 0.1)
        started_at = _local_utc(day, 8) + timedelta(minutes=used)
        created_on = utcnow() if project.is_backfill else _local_utc(day, 21)
        record = ServiceRecord(
            volunteer_id=volunteer.id, volunteer_name=volunteer.real_name,
            volunteer_no=volunteer.volunteer_no, project_id=project.id, position_id=position.id,
            group_id=project.group_id, group_path=project.group_path, region_id=project.region_id,
            region_path=project.region_path, served_on=day, started_at=started_at,
            ended_at=started_at + timedelta(minutes=minutes), minutes=minutes,
            source=RecordSource.HOUR_CODE if code else RecordSource.GROUP_ENTRY,
            status=RecordStatus.PENDING if pending else RecordStatus.APPROVED,
            description=f"{project.name}：{position.name}", hour_code_id=code.id if code else None,
            approved_on=None if pending else min(created_on + timedelta(hours=0 if code else 14),
                                                 utcnow()),
            created_on=created_on,
        )
        db.session.add(record)
        if code:
            code.uses += 1
        if not pending:
            volunteer.total_minutes += minutes
            key = (volunteer.id, day)
            self.approved_day_minutes[key] = self.approved_day_minutes.get(key, 0) + minutes

    def _minutes(self, position: Position) -> int:
        """Minutes near the position's default, within 60..480."""
        return min(480, max(60, position.default_minutes + self.rng.choice((-60, 0, 0, 30, 60))))

    def _hour_code(self, position: Position, day: date) -> HourCode:
        """The hour code of one activity (position and day), created on first use."""
        key = (position.id, day)
        if key not in self.hour_codes:
            project = position.project
            code = HourCode(
                code=f"{secrets.randbelow(10 ** 12):012d}", position_id=position.id,
                project_id=project.id, group_path=project.group_path, region_id=project.region_id,
                region_path=project.region_path, activity_on=day, minutes=position.default_minutes,
                max_uses=position.quota, uses=0, created_on=_local_utc(day, 7),
            )
            db.session.add(code)
            db.session.flush()
            self.hour_codes[key] = code
        return self.hour_codes[key]

    # --- Honors ---

    def add_honors(self) -> None:
        """A prefecture-level honor for a volunteer and one for a group."""
        awarded_on = date(self.today.year - 1, 12, 5)
        volunteer = self.named["vol_longting"]
        group = self.groups[BEISHUDIAN_TEAM]
        honors = (
            ("开封市优秀志愿者", dict(volunteer_id=volunteer.id), volunteer),
            ("开封市最佳志愿服务组织", dict(volunteer_group_id=group.id), group),
        )
        for number, (title, recipient, holder) in enumerate(honors, start=1):
            db.session.add(Honor(
                title=title, level=HonorLevel.PREFECTURE, awarding_body="开封市文明办",
                document_no=f"汴文明办〔{awarded_on.year}〕{20 + number}号", awarded_on=awarded_on,
                region_id=holder.region_id, region_path=holder.region_path,
                group_path=getattr(holder, "group_path", None), **recipient,
            ))

    # --- Training and evaluations (培训与评价) ---

    def add_record_book(self) -> None:
        """A pre-service training of the 北书店 team for vol_longting and a few other active
        members, a 文化馆 training for vol_longting, and the 文化馆 team's evaluation of
        vol_longting as 文化讲解员 (served there, approved records)."""
        db.session.flush()
        volunteer = self.named["vol_longting"]
        bookstore, culture = self.groups[BEISHUDIAN_TEAM], self.groups[CULTURE_CENTRE_TEAM]
        members = db.session.scalars(select(Membership.volunteer_id).where(
            Membership.group_id == bookstore.id, Membership.status == MembershipStatus.ACTIVE,
            Membership.volunteer_id != volunteer.id).order_by(Membership.volunteer_id).limit(4)).all()
        trainings = [(bookstore, vid, "文明劝导志愿者岗前培训", "北书店街道办事处", 45, 120)
                     for vid in [volunteer.id, *members]]
        trainings.append((culture, volunteer.id, "文化讲解员业务培训", "龙亭区文化馆", 60, 180))
        for group, volunteer_id, title, provider, days_ago, minutes in trainings:
            db.session.add(Training(
                volunteer_id=volunteer_id, group_id=group.id, group_path=group.group_path, title=title,
                provider=provider, trained_on=self.today - timedelta(days=days_ago), minutes=minutes,
                region_id=group.region_id, region_path=group.region_path))
        position = db.session.scalar(select(Position).join(Project).where(
            Project.group_id == culture.id, Position.name == "文化讲解员"))
        db.session.add(Evaluation(
            volunteer_id=volunteer.id, group_id=culture.id, group_path=culture.group_path,
            project_id=position.project_id, position_id=position.id, punctuality=5, attitude=5, skill=4,
            rating=5, comment="讲解生动，准时到岗，深受游客好评。", evaluated_on=self.today,
            region_id=position.project.region_id, region_path=position.project.region_path))

    # --- Transfers (转移接续) ---

    def add_transfers(self) -> None:
        """Two approved volunteers of 顺河回族区 ask to move to 龙亭区 (pending, for
        longting_officer's 转移接续审核); the demo accounts are left alone."""
        movers = [v for v in self.volunteers if v.status == ReviewStatus.APPROVED
                  and v.region_path.startswith(self.regions[SHUNHE].path)][:2]
        destination = self.regions[LONGTING]
        for volunteer, reason in zip(movers, ("工作调动到龙亭区", "随子女迁居龙亭区")):
            db.session.add(TransferRequest(
                volunteer_id=volunteer.id, volunteer_name=volunteer.real_name, volunteer_no=volunteer.volunteer_no,
                from_region_id=volunteer.region_id, from_region_path=volunteer.region_path,
                region_id=destination.id, region_path=destination.path, status=RequestStatus.PENDING,
                reason=reason, created_on=_local_utc(self.today - timedelta(days=2), 9)))
