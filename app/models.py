"""All models of Volunteer Cloud, grouped by section (DESIGN.md §5).

Times are stored as naive UTC; dates ("served on", "awarded on") are calendar
dates in Asia/Shanghai. Every scoped table carries ``region_id`` and an indexed
``region_path`` copied from its region at write time, so scope is one range
predicate with no join (DESIGN.md §4).
"""
from __future__ import annotations

import enum
from datetime import date, datetime, time
from typing import Optional

from flask_appbuilder.security.sqla.models import User
from flask_babel import lazy_gettext as _
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from app.extensions import db
from app.services.clock import utcnow

Model = db.Model


def PathString(length: int = 64) -> String:
    """A materialized path column type: byte order on PostgreSQL too.

    A locale collation ignores punctuation, which breaks the range predicate
    of ``scope.under`` (DESIGN.md §4); SQLite compares bytes already.
    """
    return String(length).with_variant(String(length, collation="C"), "postgresql")


class Choices(enum.StrEnum):
    """A StrEnum whose members carry translated labels (NetBox's ChoiceSet)."""

    @classmethod
    def labels(cls) -> dict[str, str]:
        return {m.value: m.label for m in cls}

    @classmethod
    def choices(cls) -> list[tuple[str, str]]:
        """(value, label) pairs with *lazy* labels, translated when rendered: form classes
        call this at import, which may happen outside any request (a label turned into
        text there would stay English for good)."""
        return [(m.value, cls._labels().get(m.value, m.value)) for m in cls]

    @property
    def label(self) -> str:
        return str(self._labels().get(self.value, self.value))

    @classmethod
    def _labels(cls) -> dict:
        return {}


class ReviewStatus(Choices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUSPENDED = "suspended"

    @classmethod
    def _labels(cls):
        return {"pending": _("Pending"), "approved": _("Approved"),
                "rejected": _("Rejected"), "suspended": _("Suspended")}


class IdType(Choices):
    RESIDENT = "resident"
    HMT_PERMIT = "hmt_permit"
    PASSPORT = "passport"
    FOREIGN_PR = "foreign_pr"

    @classmethod
    def _labels(cls):
        return {"resident": _("Resident ID card"),
                "hmt_permit": _("HK/Macao/Taiwan residence permit"),
                "passport": _("Passport"),
                "foreign_pr": _("Foreign permanent residence card")}


class GroupType(Choices):
    FEDERATION = "federation"
    COUNTY_CORPS = "county_corps"
    CIVIL_UNIT = "civil_unit"
    COMMUNITY = "community"
    ENTERPRISE = "enterprise"
    SCHOOL = "school"
    SOCIAL_ORG = "social_org"

    @classmethod
    def _labels(cls):
        return {"federation": _("Federation"), "county_corps": _("County corps"),
                "civil_unit": _("Civil unit"), "community": _("Community"),
                "enterprise": _("Enterprise"), "school": _("School"),
                "social_org": _("Social organisation")}


class JoinPolicy(Choices):
    OPEN = "open"
    VERIFY = "verify"
    CLOSED = "closed"
    PASSWORD = "password"

    @classmethod
    def _labels(cls):
        return {"open": _("Anyone may join"), "verify": _("Join after verification"),
                "closed": _("Nobody may join"), "password": _("Join with password")}


class MembershipStatus(Choices):
    PENDING = "pending"
    ACTIVE = "active"
    REJECTED = "rejected"
    LEFT = "left"
    REMOVED = "removed"

    @classmethod
    def _labels(cls):
        return {"pending": _("Pending"), "active": _("Member"), "rejected": _("Rejected"),
                "left": _("Left"), "removed": _("Removed")}


class MembershipOrigin(Choices):
    SELF_JOIN = "self_join"
    REQUEST = "request"
    PASSWORD = "password"
    ADMIN_ADDED = "admin_added"
    INVITATION = "invitation"
    QR = "qr"

    @classmethod
    def _labels(cls):
        return {"self_join": _("Joined on their own"), "request": _("Approved request"),
                "password": _("Join password"), "admin_added": _("Added by the group"),
                "invitation": _("Invitation"), "qr": _("Group card QR code")}


class RecruitScope(Choices):
    ANYONE = "anyone"
    MEMBERS_ONLY = "members_only"

    @classmethod
    def _labels(cls):
        return {"anyone": _("Anyone"), "members_only": _("Members of this group only")}


class EnrollmentStatus(Choices):
    """Accepted enrollments hold a place (``Position.enrolled_count``); an invitation
    waits for the volunteer; cancelled and declined rows can be revived."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    INVITED = "invited"
    DECLINED = "declined"

    @classmethod
    def _labels(cls):
        return {"pending": _("Pending"), "accepted": _("Signed up"), "rejected": _("Rejected"),
                "cancelled": _("Cancelled"), "invited": _("Invited"), "declined": _("Declined")}


class EnrollmentOrigin(Choices):
    SELF = "self"  # 报名
    INVITATION = "invitation"  # 邀请, accepted by the volunteer
    ADMIN = "admin"  # added by the group admin by name + ID (时间补录招募)
    HOUR_CODE = "hour_code"  # 录入时长码: the code is the admin's consent

    @classmethod
    def _labels(cls):
        return {"self": _("Signed up"), "invitation": _("Invitation"),
                "admin": _("Added by the group"), "hour_code": _("Hour Code")}


class RecordSource(Choices):
    GROUP_ENTRY = "group_entry"
    HOUR_CODE = "hour_code"
    APPLICATION = "application"
    BACKFILL = "backfill"
    TRANSFER_IN = "transfer_in"
    CORRECTION = "correction"

    @classmethod
    def _labels(cls):
        return {"group_entry": _("Recorded by the group"), "hour_code": _("Hour Code"),
                "application": _("Application"), "backfill": _("Backfill"),
                "transfer_in": _("Transferred in"), "correction": _("Correction")}


class RecordStatus(Choices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"

    @classmethod
    def _labels(cls):
        return {"pending": _("Pending"), "approved": _("Approved"), "rejected": _("Rejected")}


class HonorLevel(Choices):
    NATIONAL = "national"
    PROVINCIAL = "provincial"
    PREFECTURE = "prefecture"

    @classmethod
    def _labels(cls):
        return {"national": _("National"), "provincial": _("Provincial"),
                "prefecture": _("Prefecture")}


class BindingKind(Choices):
    OFFICER = "officer"
    HONORS_EDITOR = "honors_editor"
    PARTNER = "partner"  # a partner system's API token: reads its region and below, nothing else


class RequestStatus(Choices):
    """Shared by transfer requests, help requests and complaints."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    PUBLISHED = "published"
    CLAIMED = "claimed"
    RESOLVED = "resolved"
    CONVERTED = "converted"
    CANCELLED = "cancelled"  # withdrawn by the person who asked (a transfer request)


# SERVICE_CATEGORIES: Henan's list of project service categories (DESIGN.md §5).
SERVICE_CATEGORIES = (
    "poverty", "elderly", "disability", "emergency", "environment", "culture_sports",
    "legal_aid", "medical_education", "military_families", "public_security",
    "science", "rural_civility", "community", "counselling", "civility", "major_events",
)


class Stamped:
    """created_on / changed_on in UTC and who made the row (nullable: CLI jobs)."""

    created_on: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    changed_on: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    @declared_attr
    def created_by_fk(cls) -> Mapped[Optional[int]]:
        return mapped_column(ForeignKey("ab_user.id"))


class Scoped:
    """A row that belongs to a region: ``region_id`` and its copied, indexed path."""

    @declared_attr
    def region_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey("region.id"), index=True)

    @declared_attr
    def region_path(cls) -> Mapped[str]:
        return mapped_column(PathString(), index=True)

    @declared_attr
    def region(cls) -> Mapped["Region"]:
        return relationship("Region", foreign_keys=lambda: [cls.region_id])

    @property
    def region_code(self) -> str:
        """The code of the row's region, read off its path (no join)."""
        return self.region_path.rstrip("/").rsplit("/", 1)[-1]


# --- Regions ---


class Region(Model):
    """A GB/T 2260 division: nation, province, prefecture, county, street, community."""

    __tablename__ = "region"
    __table_args__ = (CheckConstraint("level BETWEEN 0 AND 5", name="ck_region_level"),)

    NATION, PROVINCE, PREFECTURE, COUNTY, STREET, COMMUNITY = range(6)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    level: Mapped[int] = mapped_column(SmallInteger)
    parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("region.id"), index=True)
    path: Mapped[str] = mapped_column(PathString(), unique=True)
    population: Mapped[Optional[int]] = mapped_column(BigInteger)

    parent: Mapped[Optional["Region"]] = relationship(remote_side=[id])

    LEVEL_LABELS = {
        0: _("Nation"), 1: _("Province"), 2: _("Prefecture"), 3: _("County"),
        4: _("Street"), 5: _("Community"),
    }

    @property
    def level_label(self) -> str:
        return str(self.LEVEL_LABELS[self.level])

    @property
    def province_code(self) -> str:
        return self.code[:2]

    def is_ancestor_of(self, other: "Region") -> bool:
        """True when ``other`` lies strictly below this region."""
        return other.path != self.path and other.path.startswith(self.path)

    def __repr__(self) -> str:
        return self.name


# --- Users and their bindings ---


class RegionBinding(Model):
    """An officer's or honors editor's region: the user's scope covers it and below."""

    __tablename__ = "region_binding"
    __table_args__ = (UniqueConstraint("user_id", "region_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id"), index=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"))
    region_path: Mapped[str] = mapped_column(PathString(), index=True)
    kind: Mapped[str] = mapped_column(String(16))

    user: Mapped[User] = relationship()
    region: Mapped[Region] = relationship()


class GroupAdmin(Model):
    """A user who administers a volunteer group (and, through group_path, its children)."""

    __tablename__ = "group_admin"
    __table_args__ = (UniqueConstraint("user_id", "group_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id"), index=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("volunteer_group.id"), index=True)

    user: Mapped[User] = relationship()
    group: Mapped["VolunteerGroup"] = relationship()


# --- Volunteers ---


class Volunteer(Scoped, Stamped, Model):
    """A registered volunteer (志愿者): one FAB user, real name, encrypted ID and phone."""

    __tablename__ = "volunteer"
    __table_args__ = (
        UniqueConstraint("id_type", "id_blind", name="uq_volunteer_id_blind"),
        Index("ix_volunteer_region_path_id", "region_path", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"), unique=True)
    real_name: Mapped[str] = mapped_column(String(64), index=True)
    id_type: Mapped[str] = mapped_column(String(16), default=IdType.RESIDENT)
    id_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    id_blind: Mapped[str] = mapped_column(String(64))
    id_number_masked: Mapped[str] = mapped_column(String(32))
    birth_date: Mapped[Optional[date]] = mapped_column(Date)
    gender: Mapped[Optional[str]] = mapped_column(String(1))
    email: Mapped[str] = mapped_column(String(120))
    phone_enc: Mapped[Optional[bytes]] = mapped_column(LargeBinary)
    phone_masked: Mapped[Optional[str]] = mapped_column(String(20))
    service_categories: Mapped[Optional[str]] = mapped_column(String(255))
    skills: Mapped[Optional[str]] = mapped_column(String(255))
    political_status: Mapped[Optional[str]] = mapped_column(String(32))
    education: Mapped[Optional[str]] = mapped_column(String(32))
    guardian_name: Mapped[Optional[str]] = mapped_column(String(64))
    guardian_relation: Mapped[Optional[str]] = mapped_column(String(32))
    guardian_phone_enc: Mapped[Optional[bytes]] = mapped_column(LargeBinary)
    guardian_phone_masked: Mapped[Optional[str]] = mapped_column(String(20))
    guardian_consent_on: Mapped[Optional[datetime]] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16), default=ReviewStatus.PENDING, index=True)
    reject_reason: Mapped[Optional[str]] = mapped_column(String(255))
    volunteer_no: Mapped[Optional[str]] = mapped_column(String(15), unique=True)
    approved_on: Mapped[Optional[datetime]] = mapped_column(DateTime)
    # Last review decision (approve, reject or suspend): when and by whom.
    reviewed_on: Mapped[Optional[datetime]] = mapped_column(DateTime)
    reviewed_by_fk: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    # When the (re)submitted registration entered review; the working-day clock runs from here.
    submitted_on: Mapped[Optional[datetime]] = mapped_column(DateTime, index=True)
    total_minutes: Mapped[int] = mapped_column(Integer, default=0)

    user: Mapped[Optional[User]] = relationship(foreign_keys=[user_id])

    def __repr__(self) -> str:
        return self.real_name


class VolunteerNumberCounter(Model):
    """The last national volunteer-number sequence issued per (province, year)."""

    __tablename__ = "volunteer_number_counter"

    province_code: Mapped[str] = mapped_column(String(2), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)


class Holiday(Model):
    """An officer-edited working-day exception, used past chinesecalendar's last year."""

    __tablename__ = "holiday"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    is_workday: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[Optional[str]] = mapped_column(String(64))


class Setting(Stamped, Model):
    """运行参数: a console-set value that overrides config.py (``app/services/settings.py``
    says which names exist, how each is checked and where its default comes from)."""

    __tablename__ = "setting"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    value_json: Mapped[str] = mapped_column(Text)


# --- Groups and memberships ---


class VolunteerGroup(Scoped, Stamped, Model):
    """A volunteer group (志愿团体). Groups nest through ``parent``; ``group_path``
    holds the ids of the ancestors and itself (``1/5/23/``)."""

    __tablename__ = "volunteer_group"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("volunteer_group.id"), index=True)
    group_path: Mapped[Optional[str]] = mapped_column(PathString(128), index=True)
    group_type: Mapped[str] = mapped_column(String(16))
    is_legal_person: Mapped[bool] = mapped_column(Boolean, default=False)
    credit_code: Mapped[Optional[str]] = mapped_column(String(18), unique=True)
    contact_name: Mapped[Optional[str]] = mapped_column(String(64))
    contact_phone_enc: Mapped[Optional[bytes]] = mapped_column(LargeBinary)
    contact_phone_masked: Mapped[Optional[str]] = mapped_column(String(20))
    staff_headcount: Mapped[Optional[int]] = mapped_column(Integer)
    join_policy: Mapped[str] = mapped_column(String(16), default=JoinPolicy.VERIFY)
    join_password_hash: Mapped[Optional[str]] = mapped_column(String(256))
    join_token: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    # Pinyin initials and full pinyin of the name ("ltqzyfwzd longtingquzhiyuanfuwuzongdui"),
    # so 参加更多团体 finds a group by either; set by services.groups from the name.
    name_pinyin: Mapped[Optional[str]] = mapped_column(String(400))
    description: Mapped[Optional[str]] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=ReviewStatus.PENDING, index=True)
    reject_reason: Mapped[Optional[str]] = mapped_column(String(255))
    approved_on: Mapped[Optional[datetime]] = mapped_column(DateTime)
    # Last review decision: when and by whom (a parent group's admin, or an officer for a root group).
    reviewed_on: Mapped[Optional[datetime]] = mapped_column(DateTime)
    reviewed_by_fk: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))

    parent: Mapped[Optional["VolunteerGroup"]] = relationship(remote_side=[id])

    def __repr__(self) -> str:
        return self.name


class Membership(Scoped, Stamped, Model):
    """A volunteer's place in a group; ``region_path``/``group_path`` are the group's."""

    __tablename__ = "membership"
    __table_args__ = (
        UniqueConstraint("group_id", "volunteer_id"),
        Index("ix_membership_group_status_id", "group_id", "status", "id"),
        Index("ix_membership_volunteer_status", "volunteer_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("volunteer_group.id"), index=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteer.id"), index=True)
    # Copied from the volunteer (approved, so fixed), so the roster searches them by index.
    volunteer_name: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    volunteer_no: Mapped[Optional[str]] = mapped_column(String(15), index=True)
    group_path: Mapped[str] = mapped_column(PathString(128), index=True)
    status: Mapped[str] = mapped_column(String(16), default=MembershipStatus.PENDING)
    origin: Mapped[str] = mapped_column(String(16))
    decided_on: Mapped[Optional[datetime]] = mapped_column(DateTime)
    decided_by_fk: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    reason: Mapped[Optional[str]] = mapped_column(String(255))  # why a request was rejected

    group: Mapped[VolunteerGroup] = relationship()
    volunteer: Mapped[Volunteer] = relationship()


class RosterImport(Scoped, Stamped, Model):
    """One Excel upload to a group's roster (我的成员 → 导入): the checked rows, kept
    until the admin applies the valid ones. Rows hold masked ID numbers and the
    matched volunteer id, never a full ID number."""

    __tablename__ = "roster_import"

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("volunteer_group.id"), index=True)
    group_path: Mapped[str] = mapped_column(PathString(128), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    rows_json: Mapped[str] = mapped_column(Text)
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    valid_rows: Mapped[int] = mapped_column(Integer, default=0)
    applied_on: Mapped[Optional[datetime]] = mapped_column(DateTime)
    applied_count: Mapped[Optional[int]] = mapped_column(Integer)

    group: Mapped[VolunteerGroup] = relationship()


# --- Projects, positions, enrollments ---


class Project(Scoped, Stamped, Model):
    """A volunteer project (志愿项目) of a group. It closes (结项) at ``ends_at``, or
    earlier when its admin closes it by hand (``closed_on``); nothing runs at the end
    instant: "closed" is read off the clock."""

    __tablename__ = "project"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ck_project_dates"),
        Index("ix_project_region_path_ends_at", "region_path", "ends_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("volunteer_group.id"), index=True)
    group_path: Mapped[str] = mapped_column(PathString(128), index=True)
    name: Mapped[str] = mapped_column(String(120))
    category: Mapped[str] = mapped_column(String(32))
    address: Mapped[Optional[str]] = mapped_column(String(255))
    description: Mapped[Optional[str]] = mapped_column(Text)
    starts_at: Mapped[datetime] = mapped_column(DateTime, index=True)  # indexed: 统计分析 reads today's starts
    ends_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    recruit_scope: Mapped[str] = mapped_column(String(16), default=RecruitScope.ANYONE)
    risk_notice: Mapped[Optional[str]] = mapped_column(Text)
    is_backfill: Mapped[bool] = mapped_column(Boolean, default=False)
    is_suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    contact_name: Mapped[Optional[str]] = mapped_column(String(64))
    contact_phone_masked: Mapped[Optional[str]] = mapped_column(String(20))
    # Manual 结项 (by the group's admin) or an officer's close: when and by whom.
    closed_on: Mapped[Optional[datetime]] = mapped_column(DateTime, index=True)
    closed_by_fk: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))

    group: Mapped[VolunteerGroup] = relationship()
    positions: Mapped[list["Position"]] = relationship(
        back_populates="project", order_by="Position.id")

    def closes_at(self) -> datetime:
        """The instant the project closed or will close (UTC)."""
        return min(self.closed_on, self.ends_at) if self.closed_on else self.ends_at

    def is_closed(self, now: datetime | None = None) -> bool:
        """结项: past its end, closed by hand, or closed by an officer."""
        return self.is_suspended or self.closes_at() <= (now or utcnow())

    def __repr__(self) -> str:
        return self.name


class Position(Scoped, Model):
    """A position (岗位) of a project: quota, shift, default hours, age limits."""

    __tablename__ = "position"
    __table_args__ = (
        CheckConstraint("quota > 0 AND enrolled_count >= 0", name="ck_position_counts"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id"), index=True)
    group_path: Mapped[str] = mapped_column(PathString(128), index=True)
    name: Mapped[str] = mapped_column(String(120))
    quota: Mapped[int] = mapped_column(Integer)
    # The daily shift, local (Asia/Shanghai) wall-clock times.
    shift_start: Mapped[Optional[time]] = mapped_column(Time)
    shift_end: Mapped[Optional[time]] = mapped_column(Time)
    default_minutes: Mapped[Optional[int]] = mapped_column(Integer)
    min_age: Mapped[Optional[int]] = mapped_column(SmallInteger)
    max_age: Mapped[Optional[int]] = mapped_column(SmallInteger)
    allows_minors: Mapped[bool] = mapped_column(Boolean, default=False)
    # Accepted enrollments; self sign-up stops at the quota, an hour code or the
    # admin may go past it (their consent).
    enrolled_count: Mapped[int] = mapped_column(Integer, default=0)

    project: Mapped[Project] = relationship(back_populates="positions")

    @property
    def remaining(self) -> int:
        return max(self.quota - self.enrolled_count, 0)

    @property
    def shift_minutes(self) -> int | None:
        """The shift's length in minutes, when both ends are set (a night shift wraps)."""
        if self.shift_start is None or self.shift_end is None:
            return None
        start = self.shift_start.hour * 60 + self.shift_start.minute
        end = self.shift_end.hour * 60 + self.shift_end.minute
        return (end - start) % 1440 or 1440

    def __repr__(self) -> str:
        return self.name


class Enrollment(Scoped, Stamped, Model):
    """A sign-up (报名) of a volunteer to a position; one row per pair, revivable."""

    __tablename__ = "enrollment"
    __table_args__ = (UniqueConstraint("position_id", "volunteer_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    position_id: Mapped[int] = mapped_column(ForeignKey("position.id"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id"), index=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteer.id"), index=True)
    group_path: Mapped[str] = mapped_column(PathString(128), index=True)
    status: Mapped[str] = mapped_column(String(16), default=EnrollmentStatus.PENDING)
    origin: Mapped[str] = mapped_column(String(16), default=EnrollmentOrigin.SELF)
    guardian_confirmed_on: Mapped[Optional[datetime]] = mapped_column(DateTime)
    # Copied from the volunteer, so the 计时 page lists and searches without a join.
    volunteer_name: Mapped[Optional[str]] = mapped_column(String(64))
    volunteer_no: Mapped[Optional[str]] = mapped_column(String(15))

    position: Mapped[Position] = relationship()
    project: Mapped[Project] = relationship()
    volunteer: Mapped[Volunteer] = relationship()


# --- Service hours ---


class HourCode(Scoped, Stamped, Model):
    """A 12-digit hour code (时长码) for one activity of one position."""

    __tablename__ = "hour_code"
    __table_args__ = (
        CheckConstraint("uses <= max_uses", name="ck_hour_code_uses"),
        CheckConstraint("minutes BETWEEN 1 AND 1440", name="ck_hour_code_minutes"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    position_id: Mapped[int] = mapped_column(ForeignKey("position.id"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id"), index=True)
    group_path: Mapped[str] = mapped_column(PathString(128), index=True)
    activity_on: Mapped[date] = mapped_column(Date)
    minutes: Mapped[int] = mapped_column(Integer)
    max_uses: Mapped[Optional[int]] = mapped_column(Integer)  # None: no limit
    uses: Mapped[int] = mapped_column(Integer, default=0)

    position: Mapped[Position] = relationship()
    project: Mapped[Project] = relationship()


class ServiceRecord(Scoped, Stamped, Model):
    """The ledger of service hours. Approved rows are never edited: a correction is
    a new row (source ``correction``) that references the original."""

    __tablename__ = "service_record"
    __table_args__ = (
        CheckConstraint(
            "(source = 'correction' AND corrects_id IS NOT NULL) OR minutes BETWEEN 1 AND 1440",
            name="ck_service_record_minutes",
        ),
        # A record made here belongs to a project and group; one imported from another
        # system (转移接续) names them as text and carries that system's record id; a
        # correction copies its original's (so one of an imported record has none).
        CheckConstraint(
            "(source = 'transfer_in' AND external_system IS NOT NULL AND external_id IS NOT NULL)"
            " OR (source = 'correction' AND corrects_id IS NOT NULL)"
            " OR (source NOT IN ('transfer_in', 'correction') AND project_id IS NOT NULL"
            " AND group_id IS NOT NULL AND group_path IS NOT NULL)",
            name="ck_service_record_origin",
        ),
        UniqueConstraint("hour_code_id", "volunteer_id", name="uq_service_record_hour_code"),
        UniqueConstraint("external_system", "external_id", "volunteer_id", name="uq_service_record_external"),
        Index("ix_service_record_region_path_served_on", "region_path", "served_on"),
        Index("ix_service_record_volunteer_served_on", "volunteer_id", "served_on"),
        Index("ix_service_record_group_status_id", "group_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteer.id"))
    # Copied, so an officer of the service region never loads an out-of-scope volunteer.
    volunteer_name: Mapped[str] = mapped_column(String(64))
    volunteer_no: Mapped[Optional[str]] = mapped_column(String(15))
    # Empty only on records imported from another system (source ``transfer_in``).
    project_id: Mapped[Optional[int]] = mapped_column(ForeignKey("project.id"), index=True)
    position_id: Mapped[Optional[int]] = mapped_column(ForeignKey("position.id"), index=True)
    group_id: Mapped[Optional[int]] = mapped_column(ForeignKey("volunteer_group.id"), index=True)
    group_path: Mapped[Optional[str]] = mapped_column(PathString(128), index=True)
    # Imported records: the other system's name and record id (unique together), and
    # the project, position and organisation as that system named them.
    external_system: Mapped[Optional[str]] = mapped_column(String(64))
    external_id: Mapped[Optional[str]] = mapped_column(String(64))
    external_project: Mapped[Optional[str]] = mapped_column(String(120))
    external_position: Mapped[Optional[str]] = mapped_column(String(120))
    external_org: Mapped[Optional[str]] = mapped_column(String(120))
    served_on: Mapped[date] = mapped_column(Date)
    started_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    ended_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    minutes: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=RecordStatus.PENDING, index=True)
    description: Mapped[Optional[str]] = mapped_column(String(255))
    reason: Mapped[Optional[str]] = mapped_column(String(255))  # why a correction is made
    reject_reason: Mapped[Optional[str]] = mapped_column(String(255))  # why a pending record was rejected
    corrects_id: Mapped[Optional[int]] = mapped_column(ForeignKey("service_record.id"), index=True)
    hour_code_id: Mapped[Optional[int]] = mapped_column(ForeignKey("hour_code.id"))
    approved_by_fk: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    approved_on: Mapped[Optional[datetime]] = mapped_column(DateTime)
    is_flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    flag_reasons: Mapped[Optional[str]] = mapped_column(String(255))

    volunteer: Mapped[Volunteer] = relationship()
    project: Mapped[Optional[Project]] = relationship()
    position: Mapped[Optional[Position]] = relationship()
    group: Mapped[Optional[VolunteerGroup]] = relationship()
    corrects: Mapped[Optional["ServiceRecord"]] = relationship(remote_side=[id])

    @property
    def hours(self) -> float:
        return round(self.minutes / 60, 2)

    @property
    def project_name(self) -> str:
        """The project's name, or as the system it was imported from named it."""
        return self.project.name if self.project is not None else (self.external_project or "")

    @property
    def position_name(self) -> str:
        return self.position.name if self.position is not None else (self.external_position or "")

    @property
    def group_name(self) -> str:
        """The recording group's name, or the organisation named by the other system."""
        return self.group.name if self.group is not None else (self.external_org or "")


class VolunteerDay(Model):
    """A volunteer's approved minutes on one service date, kept by the ledger in the
    same transaction as the records; the CHECK makes the 24-hour day a database rule
    that concurrent writers cannot pass."""

    __tablename__ = "volunteer_day"
    __table_args__ = (CheckConstraint("minutes BETWEEN 0 AND 1440", name="ck_volunteer_day_minutes"),)

    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteer.id"), primary_key=True)
    served_on: Mapped[date] = mapped_column(Date, primary_key=True)
    minutes: Mapped[int] = mapped_column(Integer, default=0)


# --- The volunteer's record: honors, training, evaluations, certificates ---


class Honor(Scoped, Stamped, Model):
    """An honor (表彰激励) for exactly one recipient, a volunteer or a group."""

    __tablename__ = "honor"
    __table_args__ = (
        CheckConstraint(
            "(volunteer_id IS NULL) <> (volunteer_group_id IS NULL)",
            name="ck_honor_one_recipient",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(120))
    level: Mapped[str] = mapped_column(String(16))
    awarding_body: Mapped[str] = mapped_column(String(120))
    document_no: Mapped[Optional[str]] = mapped_column(String(64))
    awarded_on: Mapped[date] = mapped_column(Date)
    volunteer_id: Mapped[Optional[int]] = mapped_column(ForeignKey("volunteer.id"), index=True)
    volunteer_group_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("volunteer_group.id"), index=True
    )
    # The recipient group's path, so its admins (and its parents' admins) read it.
    group_path: Mapped[Optional[str]] = mapped_column(PathString(128), index=True)
    is_withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)
    # An optional scan of the award document (PDF or image), kept in the row.
    attachment_name: Mapped[Optional[str]] = mapped_column(String(255))
    attachment_type: Mapped[Optional[str]] = mapped_column(String(64))
    attachment_data: Mapped[Optional[bytes]] = mapped_column(LargeBinary, deferred=True)

    volunteer: Mapped[Optional[Volunteer]] = relationship()
    volunteer_group: Mapped[Optional[VolunteerGroup]] = relationship()

    @property
    def recipient_name(self) -> str:
        return self.volunteer.real_name if self.volunteer else self.volunteer_group.name


class Training(Scoped, Stamped, Model):
    """A training (培训) a volunteer attended."""

    __tablename__ = "training"
    __table_args__ = (CheckConstraint("minutes >= 0", name="ck_training_minutes"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteer.id"), index=True)
    group_id: Mapped[Optional[int]] = mapped_column(ForeignKey("volunteer_group.id"))
    group_path: Mapped[Optional[str]] = mapped_column(PathString(128), index=True)
    title: Mapped[str] = mapped_column(String(120))
    provider: Mapped[Optional[str]] = mapped_column(String(120))
    trained_on: Mapped[date] = mapped_column(Date)
    minutes: Mapped[int] = mapped_column(Integer, default=0)

    volunteer: Mapped[Volunteer] = relationship()


class Evaluation(Scoped, Stamped, Model):
    """An evaluation (评价) of a volunteer by a group, optionally for one project."""

    __tablename__ = "evaluation"
    __table_args__ = (
        CheckConstraint("rating BETWEEN 1 AND 5", name="ck_evaluation_rating"),
        CheckConstraint("punctuality BETWEEN 1 AND 5 AND attitude BETWEEN 1 AND 5 AND skill BETWEEN 1 AND 5",
                        name="ck_evaluation_scores"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteer.id"), index=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("volunteer_group.id"))
    group_path: Mapped[Optional[str]] = mapped_column(PathString(128), index=True)
    project_id: Mapped[Optional[int]] = mapped_column(ForeignKey("project.id"))
    position_id: Mapped[Optional[int]] = mapped_column(ForeignKey("position.id"), index=True)
    # 守时 / 态度 / 技能, each 1-5; ``rating`` is their rounded mean (the overall score).
    punctuality: Mapped[Optional[int]] = mapped_column(SmallInteger)
    attitude: Mapped[Optional[int]] = mapped_column(SmallInteger)
    skill: Mapped[Optional[int]] = mapped_column(SmallInteger)
    rating: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[Optional[str]] = mapped_column(Text)
    evaluated_on: Mapped[date] = mapped_column(Date)

    volunteer: Mapped[Volunteer] = relationship()


class Certificate(Scoped, Stamped, Model):
    """A service-record certificate (志愿服务记录证明): a signed snapshot with a
    random number and a verification token derived from the snapshot's hash."""

    __tablename__ = "certificate"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteer.id"), index=True)
    group_id: Mapped[Optional[int]] = mapped_column(ForeignKey("volunteer_group.id"), index=True)
    minutes: Mapped[int] = mapped_column(Integer)
    content: Mapped[Optional[str]] = mapped_column(Text)
    issuer: Mapped[str] = mapped_column(String(120))
    person_in_charge: Mapped[Optional[str]] = mapped_column(String(64))
    handler: Mapped[Optional[str]] = mapped_column(String(64))
    contact: Mapped[Optional[str]] = mapped_column(String(64))
    issued_on: Mapped[date] = mapped_column(Date)
    snapshot_json: Mapped[str] = mapped_column(Text)
    snapshot_hash: Mapped[str] = mapped_column(String(64))
    is_withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)
    # "group": a group's certificate for the records it made; "summary": the platform's
    # summary of all approved records.
    kind: Mapped[str] = mapped_column(String(16), default="group")
    group_path: Mapped[Optional[str]] = mapped_column(PathString(128), index=True)
    period_from: Mapped[Optional[date]] = mapped_column(Date)
    period_to: Mapped[Optional[date]] = mapped_column(Date)
    withdrawn_on: Mapped[Optional[datetime]] = mapped_column(DateTime)
    withdraw_reason: Mapped[Optional[str]] = mapped_column(String(255))

    volunteer: Mapped[Volunteer] = relationship()
    group: Mapped[Optional[VolunteerGroup]] = relationship()


class CertificateRequest(Scoped, Stamped, Model):
    """A volunteer's request (我的证明 → 申请) to a group for a certificate of the
    records it made, optionally for a date range; the group's admins issue or refuse it."""

    __tablename__ = "certificate_request"
    __table_args__ = (Index("ix_certificate_request_group_status", "group_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteer.id"), index=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("volunteer_group.id"))
    group_path: Mapped[str] = mapped_column(PathString(128), index=True)
    volunteer_name: Mapped[str] = mapped_column(String(64))
    volunteer_no: Mapped[Optional[str]] = mapped_column(String(15))
    period_from: Mapped[Optional[date]] = mapped_column(Date)
    period_to: Mapped[Optional[date]] = mapped_column(Date)
    purpose: Mapped[Optional[str]] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=RequestStatus.PENDING)  # pending/approved/rejected
    reason: Mapped[Optional[str]] = mapped_column(String(255))  # why it was refused
    certificate_id: Mapped[Optional[int]] = mapped_column(ForeignKey("certificate.id"))
    decided_on: Mapped[Optional[datetime]] = mapped_column(DateTime)
    decided_by_fk: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))

    volunteer: Mapped[Volunteer] = relationship()
    group: Mapped[VolunteerGroup] = relationship()
    certificate: Mapped[Optional[Certificate]] = relationship()


# --- Transfers, help requests, complaints ---


class TransferRequest(Scoped, Stamped, Model):
    """A volunteer's move of home region (转移接续); ``region_*`` is the destination,
    whose officers approve it."""

    __tablename__ = "transfer_request"
    __table_args__ = (
        # One pending request per volunteer, as a database rule.
        Index("uq_transfer_request_pending", "volunteer_id", unique=True,
              postgresql_where=text("status = 'pending'"), sqlite_where=text("status = 'pending'")),
        Index("ix_transfer_request_status_region_path", "status", "region_path"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteer.id"), index=True)
    from_region_id: Mapped[int] = mapped_column(ForeignKey("region.id"))
    from_region_path: Mapped[str] = mapped_column(PathString(), index=True)
    # Copies, so the destination's officers never load the volunteer to list requests.
    volunteer_name: Mapped[Optional[str]] = mapped_column(String(64))
    volunteer_no: Mapped[Optional[str]] = mapped_column(String(15))
    status: Mapped[str] = mapped_column(String(16), default=RequestStatus.PENDING)
    reason: Mapped[Optional[str]] = mapped_column(String(255))  # the volunteer's: why they move
    reject_reason: Mapped[Optional[str]] = mapped_column(String(255))  # the officer's, on refusal
    decided_by_fk: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    decided_on: Mapped[Optional[datetime]] = mapped_column(DateTime)

    volunteer: Mapped[Volunteer] = relationship()
    from_region: Mapped[Region] = relationship(foreign_keys=[from_region_id])


class RecordImport(Scoped, Stamped, Model):
    """One file of service records from another system, uploaded by an officer
    (区域监管 → 服务记录导入): the checked rows, kept until the officer applies the
    valid ones. ``region_*`` is the region the batch is filed under (the officer's;
    for the platform admin, what its volunteers share); rows hold volunteer numbers
    and names, never ID numbers."""

    __tablename__ = "record_import"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    rows_json: Mapped[str] = mapped_column(Text)
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    valid_rows: Mapped[int] = mapped_column(Integer, default=0)
    applied_on: Mapped[Optional[datetime]] = mapped_column(DateTime)
    applied_count: Mapped[Optional[int]] = mapped_column(Integer)


class HelpRequest(Scoped, Stamped, Model):
    """A public help request (求助信息): moderated, claimed by a group, resolved or
    turned into a project."""

    __tablename__ = "help_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    category: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text)
    contact_name: Mapped[str] = mapped_column(String(64))
    contact_phone_enc: Mapped[Optional[bytes]] = mapped_column(LargeBinary)
    contact_phone_masked: Mapped[Optional[str]] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(16), default=RequestStatus.PENDING)
    claimed_by_group_id: Mapped[Optional[int]] = mapped_column(ForeignKey("volunteer_group.id"))
    # The claiming group's path, so its admins (and its parents') reach the request.
    group_path: Mapped[Optional[str]] = mapped_column(PathString(128), index=True)
    project_id: Mapped[Optional[int]] = mapped_column(ForeignKey("project.id"))
    resolution: Mapped[Optional[str]] = mapped_column(Text)
    # The requester follows the request at /help/follow/<token> (no account needed);
    # only its hash is stored.
    follow_token_hash: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    is_hidden: Mapped[bool] = mapped_column(Boolean, default=False)  # hidden by an officer
    moderated_by_fk: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    claimed_on: Mapped[Optional[datetime]] = mapped_column(DateTime)
    resolved_on: Mapped[Optional[datetime]] = mapped_column(DateTime)

    claimed_by_group: Mapped[Optional[VolunteerGroup]] = relationship()


class Complaint(Scoped, Stamped, Model):
    """A complaint about a volunteer, group, project or record, handled by officers."""

    __tablename__ = "complaint"

    id: Mapped[int] = mapped_column(primary_key=True)
    # service_record / project / volunteer_group; region_path and group_path are the subject's.
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[Optional[int]] = mapped_column(Integer)
    group_path: Mapped[Optional[str]] = mapped_column(PathString(128), index=True)
    volunteer_id: Mapped[Optional[int]] = mapped_column(ForeignKey("volunteer.id"))
    reporter_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=RequestStatus.PENDING)
    resolution: Mapped[Optional[str]] = mapped_column(Text)
    resolved_on: Mapped[Optional[datetime]] = mapped_column(DateTime)
    resolved_by_fk: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    # The correction record a resolution led to, if any.
    correction_id: Mapped[Optional[int]] = mapped_column(ForeignKey("service_record.id"))


# --- Statistics (统计分析): reference data and rollups (DESIGN.md §6) ---


class CivilUnit(Scoped, Stamped, Model):
    """A civil unit (文明单位) on the civil-affairs register: every one should register a
    volunteer group (``group``, empty until it does) and every staff member should
    register as a volunteer (the KPI reads the group's members ÷ ``staff_headcount``)."""

    __tablename__ = "civil_unit"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    staff_headcount: Mapped[Optional[int]] = mapped_column(Integer)
    group_id: Mapped[Optional[int]] = mapped_column(ForeignKey("volunteer_group.id"), unique=True)

    group: Mapped[Optional[VolunteerGroup]] = relationship()

    def __repr__(self) -> str:
        return self.name


class StatDay(Model):
    """Rollup: a fact summed per region × local day × metric × key, kept in step by the
    services that change the facts (app/services/rollups.py) and rebuilt by ``flask
    stats rebuild``. ``region`` is the fact's region cut to county level (a fact of a
    province or prefecture region stays there), so the finest grain is county × day;
    a larger region reads the sum over its path range. Metrics: ``vol_new`` (volunteers
    approved that day, at their home county then), ``minutes`` by service category
    (approved service minutes served that day, corrections included)."""

    __tablename__ = "stat_day"
    __table_args__ = (Index("ix_stat_day_metric_path_day", "metric", "region_path", "day"),)

    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    metric: Mapped[str] = mapped_column(String(24), primary_key=True)
    key: Mapped[str] = mapped_column(String(32), primary_key=True, default="")
    region_path: Mapped[str] = mapped_column(PathString())
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class StatMonth(Model):
    """Rollup: ``StatDay`` summed per month (its first day), kept by the same writers in
    the same transaction. A period of whole months (the period picker's month, quarter
    and year) reads these rows only — at most counties × months × keys, however many
    facts lie below — and a custom period adds its partial months from ``StatDay``.
    The same sums per prefecture sit under ``<metric>@pref`` (``rollups.prefecture_metric``):
    a province reads those, prefectures × months × keys."""

    __tablename__ = "stat_month"
    __table_args__ = (Index("ix_stat_month_metric_path_month", "metric", "region_path", "month"),)

    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    metric: Mapped[str] = mapped_column(String(24), primary_key=True)
    key: Mapped[str] = mapped_column(String(32), primary_key=True, default="")
    region_path: Mapped[str] = mapped_column(PathString())
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class StatTotal(Model):
    """Rollup: a current count per region × metric × key (no time axis), kept like
    ``StatDay``. ``volunteers`` counts approved volunteers at their home region (down to
    the community: the registration-rate KPI per community) and ``groups`` approved
    groups by type at the group's region; the breakdowns ``vol_gender``, ``vol_birth``
    (birth year) and ``vol_star`` (star level) are kept per county; ``community_groups``
    counts the approved groups at each community and ``covered`` per county the
    communities that have one. Each but ``community_groups`` is also summed per
    prefecture under ``<metric>@pref`` (``groups@pref`` keyed ``"<level>:<type>"``, the
    tier of the group's region): a province reads those rows."""

    __tablename__ = "stat_total"
    __table_args__ = (Index("ix_stat_total_metric_path", "metric", "region_path"),)

    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"), primary_key=True)
    metric: Mapped[str] = mapped_column(String(24), primary_key=True)
    key: Mapped[str] = mapped_column(String(32), primary_key=True, default="")
    region_path: Mapped[str] = mapped_column(PathString())
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class StatGroupMonth(Model):
    """Rollup: per volunteer group and month (its first day), ``minutes`` (approved
    service minutes the group recorded, by service date) and ``members`` (each active
    membership counted once, in the local month it last became active — memberships
    keep no join history — so the sum over all months is the current roster and the
    running sum its growth). Feeds top groups, the group dashboard and the civil-unit KPI."""

    __tablename__ = "stat_group_month"
    __table_args__ = (Index("ix_stat_group_month_metric_path_month", "metric", "region_path", "month"),
                      Index("ix_stat_group_month_group_path", "group_path"))

    group_id: Mapped[int] = mapped_column(ForeignKey("volunteer_group.id"), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    metric: Mapped[str] = mapped_column(String(24), primary_key=True)
    group_path: Mapped[str] = mapped_column(PathString(128))
    region_path: Mapped[str] = mapped_column(PathString())
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class StatGroupPeriod(Model):
    """Rollup: ``StatGroupMonth`` summed over longer periods, kept with it: a group's
    approved service ``minutes`` per year (``period`` ``'2026'``) and per quarter
    (``'2026-Q4'``: the period picker's names), and its ``members`` over all time
    (``'all'``: the current roster). Top groups of a year or quarter read one row per
    group, in value order (``ix_stat_group_period_top``: a province's top ten is the
    first rows of its range), and the civil-unit KPI one row per group, instead of
    summing every group's months."""

    __tablename__ = "stat_group_period"
    __table_args__ = (Index("ix_stat_group_period_top", "metric", "period", "value"),)

    group_id: Mapped[int] = mapped_column(ForeignKey("volunteer_group.id"), primary_key=True)
    period: Mapped[str] = mapped_column(String(8), primary_key=True)
    metric: Mapped[str] = mapped_column(String(24), primary_key=True)
    group_path: Mapped[str] = mapped_column(PathString(128))
    region_path: Mapped[str] = mapped_column(PathString())
    value: Mapped[int] = mapped_column(BigInteger, default=0)


# --- Audit ---


class AuditEvent(Model):
    """One state change or full-PII view: who, what, where, before/after (masked)."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_region_path_id", "region_path", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_on: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"), index=True)
    actor_name: Mapped[Optional[str]] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[Optional[int]] = mapped_column(Integer)
    region_path: Mapped[Optional[str]] = mapped_column(PathString())
    group_path: Mapped[Optional[str]] = mapped_column(PathString(128), index=True)
    before_json: Mapped[Optional[str]] = mapped_column(Text)
    after_json: Mapped[Optional[str]] = mapped_column(Text)
    request_id: Mapped[Optional[str]] = mapped_column(String(36))
    ip: Mapped[Optional[str]] = mapped_column(String(45))
