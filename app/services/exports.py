"""数据导出: the rows of the user's scope — volunteers, groups, projects and service
records — as CSV or Excel, streamed in bounded memory.

Rules:

- The rows are exactly those of the list pages: ``scope_clause(Model, scope)``, the
  filter behind every list's ``InScope``, never widened; a status narrows them.
- Personal data leaves masked only: the ``*_masked`` columns the list pages show.
  Nothing here reads a ciphertext or decrypts.
- Rows are read in keyset chunks (``id > last ORDER BY id LIMIT CHUNK``): one
  query per chunk whatever the size of the scope (relations are joined into it, no
  N+1), and only one chunk of rows in memory at a time. Columns are selected, not
  entities, so the session's identity map does not grow either.
- Cells are formula-safe: CSV text starting with = + - @ gets an apostrophe
  (``record_exchange.formula_safe``), Excel text is written as text
  (``rosters.text_cells``); numbers stay numbers. The CSV starts with a UTF-8 BOM, so
  Excel reads its Chinese.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO

from flask_babel import gettext, lazy_gettext as _
from sqlalchemy import Select, select
from sqlalchemy.orm import aliased

from app.extensions import db
from app.models import (
    Choices, GroupType, IdType, JoinPolicy, Position, Project, RecordSource, RecordStatus, RecruitScope, Region,
    ReviewStatus, ServiceRecord, Volunteer, VolunteerGroup,
)
from app.security.permissions import (
    RESOURCE_PROJECT, RESOURCE_SERVICE_RECORD, RESOURCE_VOLUNTEER, RESOURCE_VOLUNTEER_GROUP,
)
from app.security.scope import Scope, scope_clause
from app.services.clock import to_local, utcnow
from app.services.record_exchange import csv_bytes, csv_cells
from app.services.rosters import GENDERS, text_cells

CHUNK = 2000  # rows per query and per piece of the CSV stream


@dataclass(frozen=True)
class ExportKind:
    """One export: the model whose scope applies, the permission resource it needs,
    the columns (headers and a query) and how one selected row becomes cells."""

    name: str
    model: type
    resource: str
    title: object  # lazy string
    statuses: type[Choices] | None
    headers: Callable[[], list[str]]
    query: Callable[[], Select]
    cells: Callable[[object, dict], list]


# --- Cell helpers ---


def _label(choices: dict, value) -> str:
    return str(choices.get(value, value or ""))


def _minute(value: datetime | None) -> str:
    return to_local(value).strftime("%Y-%m-%d %H:%M") if value else ""


def _day(value: date | None) -> str:
    return value.isoformat() if value else ""


def _hours(minutes) -> float:
    """Integer minutes as hours (two decimals; a correction's may be negative)."""
    return round((minutes or 0) / 60, 2)


def _labels() -> dict:
    """Translated labels, looked up once per export (not per row)."""
    return {
        "gender": {k: str(v) for k, v in GENDERS.items()}, "id_type": IdType.labels(),
        "review": ReviewStatus.labels(), "group_type": GroupType.labels(), "join": JoinPolicy.labels(),
        "recruit": RecruitScope.labels(), "source": RecordSource.labels(), "record": RecordStatus.labels(),
        "closed": gettext("Project closed"), "yes": gettext("Yes"), "now": utcnow(),
    }


# --- Volunteers ---


def _volunteer_headers() -> list[str]:
    return [gettext("System id"), gettext("Volunteer number"), gettext("Real name"), gettext("Gender"),
            gettext("ID type"), gettext("ID number"), gettext("Mobile phone"), gettext("Region"),
            gettext("Division code"), gettext("Service hours"), gettext("Review status"), gettext("Approved on")]


def _volunteer_query() -> Select:
    return (select(Volunteer.id, Volunteer.volunteer_no, Volunteer.real_name, Volunteer.gender, Volunteer.id_type,
                   Volunteer.id_number_masked, Volunteer.phone_masked, Region.name.label("region_name"),
                   Region.code.label("region_code"), Volunteer.total_minutes, Volunteer.status,
                   Volunteer.approved_on)
            .outerjoin(Region, Region.id == Volunteer.region_id))


def _volunteer_cells(row, labels: dict) -> list:
    return [row.id, row.volunteer_no or "", row.real_name or "", labels["gender"].get(row.gender, ""),
            _label(labels["id_type"], row.id_type), row.id_number_masked or "", row.phone_masked or "",
            row.region_name or "", row.region_code or "", _hours(row.total_minutes),
            _label(labels["review"], row.status), _minute(row.approved_on)]


# --- Groups ---

_Parent = aliased(VolunteerGroup)


def _group_headers() -> list[str]:
    return [gettext("System id"), gettext("Group name"), gettext("Group type"), gettext("Parent group"),
            gettext("Region"), gettext("Division code"), gettext("Join policy"), gettext("Contact person"),
            gettext("Contact phone"), gettext("Unified social credit code"), gettext("Staff headcount"),
            gettext("Review status"), gettext("Approved on")]


def _group_query() -> Select:
    return (select(VolunteerGroup.id, VolunteerGroup.name, VolunteerGroup.group_type,
                   _Parent.name.label("parent_name"), Region.name.label("region_name"),
                   Region.code.label("region_code"), VolunteerGroup.join_policy, VolunteerGroup.contact_name,
                   VolunteerGroup.contact_phone_masked, VolunteerGroup.credit_code, VolunteerGroup.staff_headcount,
                   VolunteerGroup.status, VolunteerGroup.approved_on)
            .outerjoin(_Parent, _Parent.id == VolunteerGroup.parent_id)
            .outerjoin(Region, Region.id == VolunteerGroup.region_id))


def _group_cells(row, labels: dict) -> list:
    return [row.id, row.name or "", _label(labels["group_type"], row.group_type), row.parent_name or "",
            row.region_name or "", row.region_code or "", _label(labels["join"], row.join_policy),
            row.contact_name or "", row.contact_phone_masked or "", row.credit_code or "",
            row.staff_headcount if row.staff_headcount is not None else "",
            _label(labels["review"], row.status), _minute(row.approved_on)]


# --- Projects ---


def _project_headers() -> list[str]:
    return [gettext("System id"), gettext("Project name"), gettext("Volunteer group"), gettext("Service category"),
            gettext("Region"), gettext("Division code"), gettext("Starts at"), gettext("Ends at"),
            gettext("Recruitment scope"), gettext("Backfill Recruitment"), gettext("Closed")]


def _project_query() -> Select:
    return (select(Project.id, Project.name, VolunteerGroup.name.label("group_name"), Project.category,
                   Region.name.label("region_name"), Region.code.label("region_code"), Project.starts_at,
                   Project.ends_at, Project.recruit_scope, Project.is_backfill, Project.is_suspended,
                   Project.closed_on)
            .outerjoin(VolunteerGroup, VolunteerGroup.id == Project.group_id)
            .outerjoin(Region, Region.id == Project.region_id))


def _project_cells(row, labels: dict) -> list:
    closes_at = min(row.closed_on, row.ends_at) if row.closed_on else row.ends_at
    closed = row.is_suspended or closes_at <= labels["now"]  # Project.is_closed, from the selected columns
    return [row.id, row.name or "", row.group_name or "", _label(labels["category"], row.category),
            row.region_name or "", row.region_code or "", _minute(row.starts_at), _minute(row.ends_at),
            _label(labels["recruit"], row.recruit_scope), labels["yes"] if row.is_backfill else "",
            labels["closed"] if closed else ""]


# --- Service records ---


def _record_headers() -> list[str]:
    return [gettext("System id"), gettext("Real name"), gettext("Volunteer number"), gettext("Project"),
            gettext("Position"), gettext("Volunteer group"), gettext("Region"), gettext("Division code"),
            gettext("Served on"), gettext("Start time"), gettext("End time"), gettext("Service hours"),
            gettext("Source"), gettext("Review status"), gettext("Flagged"), gettext("Approved on")]


def _record_query() -> Select:
    # Names fall back to what another system called them (records transferred in).
    return (select(ServiceRecord.id, ServiceRecord.volunteer_name, ServiceRecord.volunteer_no,
                   Project.name.label("project_name"), ServiceRecord.external_project,
                   Position.name.label("position_name"), ServiceRecord.external_position,
                   VolunteerGroup.name.label("group_name"), ServiceRecord.external_org,
                   Region.name.label("region_name"), Region.code.label("region_code"), ServiceRecord.served_on,
                   ServiceRecord.started_at, ServiceRecord.ended_at, ServiceRecord.minutes, ServiceRecord.source,
                   ServiceRecord.status, ServiceRecord.is_flagged, ServiceRecord.approved_on)
            .outerjoin(Project, Project.id == ServiceRecord.project_id)
            .outerjoin(Position, Position.id == ServiceRecord.position_id)
            .outerjoin(VolunteerGroup, VolunteerGroup.id == ServiceRecord.group_id)
            .outerjoin(Region, Region.id == ServiceRecord.region_id))


def _record_cells(row, labels: dict) -> list:
    return [row.id, row.volunteer_name or "", row.volunteer_no or "", row.project_name or row.external_project or "",
            row.position_name or row.external_position or "", row.group_name or row.external_org or "",
            row.region_name or "", row.region_code or "", _day(row.served_on), _minute(row.started_at),
            _minute(row.ended_at), _hours(row.minutes), _label(labels["source"], row.source),
            _label(labels["record"], row.status), labels["yes"] if row.is_flagged else "",
            _minute(row.approved_on)]


KINDS: dict[str, ExportKind] = {kind.name: kind for kind in (
    ExportKind("volunteers", Volunteer, RESOURCE_VOLUNTEER, _("Volunteers"), ReviewStatus,
               _volunteer_headers, _volunteer_query, _volunteer_cells),
    ExportKind("groups", VolunteerGroup, RESOURCE_VOLUNTEER_GROUP, _("Volunteer Groups"), ReviewStatus,
               _group_headers, _group_query, _group_cells),
    ExportKind("projects", Project, RESOURCE_PROJECT, _("Projects"), None,
               _project_headers, _project_query, _project_cells),
    ExportKind("service_records", ServiceRecord, RESOURCE_SERVICE_RECORD, _("Service Records"), RecordStatus,
               _record_headers, _record_query, _record_cells),
)}


def is_valid_status(kind: ExportKind, status: str | None) -> bool:
    """True for no status, or one of the kind's statuses."""
    return not status or (kind.statuses is not None and status in kind.statuses.labels())


# --- Reading ---


def scoped_chunks(kind: ExportKind, scope: Scope, *, status: str | None = None,
                  chunk: int | None = None) -> Iterator[list]:
    """The rows of ``kind`` inside ``scope`` (optionally of one status), by id, as lists
    of at most ``chunk`` rows: one keyset query per chunk."""
    chunk = chunk or CHUNK
    model = kind.model
    base = kind.query().where(scope_clause(model, scope))
    if status:
        base = base.where(model.status == status)
    last = 0
    while True:
        rows = db.session.execute(base.where(model.id > last).order_by(model.id).limit(chunk)).all()
        if rows:
            yield rows
        if len(rows) < chunk:
            return
        last = rows[-1].id


def cell_rows(kind: ExportKind, scope: Scope, *, status: str | None = None,
              category_labels: dict | None = None) -> Iterator[list[list]]:
    """The export's rows as cells (text and numbers), a chunk at a time.
    ``category_labels``: service category code -> label (the views own that table)."""
    labels = {**_labels(), "category": category_labels or {}}
    for rows in scoped_chunks(kind, scope, status=status):
        yield [kind.cells(row, labels) for row in rows]


def csv_stream(kind: ExportKind, scope: Scope, *, status: str | None = None,
               category_labels: dict | None = None) -> Iterator[bytes]:
    """The export as CSV pieces: the UTF-8 BOM and header first, then one piece per chunk."""
    yield csv_bytes(kind.headers(), ())
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    for rows in cell_rows(kind, scope, status=status, category_labels=category_labels):
        out.seek(0)
        out.truncate()
        writer.writerows(csv_cells(row, keep_numbers=True) for row in rows)
        yield out.getvalue().encode("utf-8")


def write_xlsx(kind: ExportKind, scope: Scope, out: IO[bytes], *, status: str | None = None,
               category_labels: dict | None = None) -> None:
    """Write the export as an .xlsx to ``out`` (openpyxl write-only: rows go to a temporary
    file as they are appended, text cells written as text)."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(str(kind.title)[:31])
    sheet.append(text_cells(sheet, kind.headers()))
    for rows in cell_rows(kind, scope, status=status, category_labels=category_labels):
        for row in rows:
            sheet.append(text_cells(sheet, row))
    workbook.save(out)


def filename(kind: ExportKind, extension: str, *, today: date | None = None) -> str:
    """``志愿者-20261129.csv`` (the kind's translated title and the local date)."""
    day = today or to_local(utcnow()).date()
    return f"{kind.title}-{day:%Y%m%d}.{extension}"
