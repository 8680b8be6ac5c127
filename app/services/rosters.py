"""The roster (团体管理 → 我的成员): 添加志愿者 by real name + ID number, removal,
Excel export (masked IDs) and Excel import with a preview and a per-row error report.

Rules:

- Changes are made only to groups the user administers directly
  (``scope.ensure_administers``); a parent group's admins read their children's
  rosters, officers read the rosters of their region (``ensure_reads_roster``).
- A volunteer is found by the blind index of the ID number AND the exact real name
  AND status approved. Every mismatch gives the same message, so neither the form
  nor the import reveals who owns a number; failed lookups, imports and import
  rows matching nobody are rate-limited per admin user.
- Memberships are created or revived through ``memberships.place_member``; a
  removed member keeps the row (status ``removed``): the roster keeps its history.
- An import stores masked ID numbers and matched volunteer ids, never a full ID
  number; applying it adds the valid rows in the caller's single transaction.
"""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field, replace
from typing import IO, Iterable, Iterator

from flask import current_app
from flask_babel import force_locale, gettext, lazy_gettext
from limits import RateLimitItemPerSecond
from sqlalchemy import select

from app.extensions import db
from app.models import (
    IdType, Membership, MembershipOrigin, MembershipStatus, ReviewStatus, RosterImport, Volunteer,
    VolunteerGroup,
)
from app.security import pii
from app.security.hardening import rate_limiter
from app.security.scope import Scope, current_scope, ensure_administers, ensure_in_scope, scope_clause
from app.services import reviews, rollups
from app.services.clock import utcnow
from app.services.errors import DomainError, ScopeViolation, ValidationFailed
from app.services.groups import is_approved
from app.services.idcards import parse_resident_id
from app.services.memberships import membership_of, place_member

CURRENT = (MembershipStatus.ACTIVE, MembershipStatus.PENDING)  # shown by default, removable

# Import limits (refused files get a clear message).
MAX_IMPORT_BYTES = 2 * 1024 * 1024
MAX_IMPORT_ROWS = 5000
# What 5000 rows of names and ID numbers unpack to, with room to spare (styles, shared strings).
MAX_UNPACKED_BYTES = 50 * 1024 * 1024
HEADER_SEARCH_ROWS = 10  # the header row may follow a title row or two
LOOKUP_CHUNK = 500  # blind indexes per IN query

# Column headers accepted in an import file. Users' Excel files carry Chinese
# headers, so these data values are Chinese (like the demo data); English ones
# match what an English-language export writes.
NAME_HEADERS = ("姓名", "真实姓名", "real name", "name")
ID_HEADERS = ("证件号码", "身份证号", "身份证号码", "证件号", "id number")
ID_TYPE_HEADERS = ("证件类型", "id type")
# Extra spellings of ID types besides the codes and the labels (zh and en).
ID_TYPE_ALIASES = {"身份证": IdType.RESIDENT, "居民身份证号": IdType.RESIDENT}


def no_match_message() -> str:
    """The one message for every failed identity lookup (no disclosure of who owns a number)."""
    return gettext("No approved volunteer matches this real name and ID number.")


class LookupThrottled(DomainError):
    """Too many failed lookups (or imports) by this user lately."""

    code = 429


# --- Scope ---


def _roster_scope(scope: Scope) -> Scope:
    """The part of ``scope`` that reads rosters: being a member lets a volunteer read
    the group, not its roster, and honors editors have no business with rosters."""
    return replace(scope, volunteer_id=None, honors_paths=())


def ensure_reads_roster(group: VolunteerGroup | None, scope: Scope | None = None) -> None:
    """Raise ScopeViolation unless the user may read ``group``'s roster: the platform
    admin, an admin of the group or of an ancestor of it, an officer of its region."""
    ensure_in_scope(group, _roster_scope(scope or current_scope()))


def administered_groups(scope: Scope | None = None, limit: int = 500) -> list[VolunteerGroup]:
    """Approved groups whose roster the user may change (administered directly), by name."""
    scope = scope or current_scope()
    query = select(VolunteerGroup).where(VolunteerGroup.status == ReviewStatus.APPROVED)
    if not scope.everything:
        if not scope.group_ids:
            return []
        query = query.where(VolunteerGroup.id.in_(sorted(scope.group_ids)))
    return list(db.session.scalars(query.order_by(VolunteerGroup.group_path).limit(limit)))


def readable_groups(scope: Scope | None = None, limit: int = 200) -> list[VolunteerGroup]:
    """Groups whose roster the user may read (for the export picker), in tree order."""
    clause = scope_clause(VolunteerGroup, _roster_scope(scope or current_scope()))
    return list(db.session.scalars(
        select(VolunteerGroup).where(clause).order_by(VolunteerGroup.group_path).limit(limit)))


# --- Throttling ---


def _lookup_limit() -> RateLimitItemPerSecond:
    config = current_app.config
    return RateLimitItemPerSecond(int(config.get("ROSTER_LOOKUP_FAILURES", 30)),
                                  int(config.get("ROSTER_LOOKUP_WINDOW_SECONDS", 600)))


def _import_limit() -> RateLimitItemPerSecond:
    return RateLimitItemPerSecond(int(current_app.config.get("ROSTER_IMPORTS_PER_HOUR", 20)), 3600)


def _import_miss_limit() -> RateLimitItemPerSecond:
    return RateLimitItemPerSecond(int(current_app.config.get("ROSTER_IMPORT_MISSES_PER_HOUR", 1000)), 3600)


def _check_budget(item, namespace: str) -> None:
    limiter, key = rate_limiter(), reviews.acting_user_id()
    if limiter is not None and key is not None and not limiter.test(item, namespace, str(key)):
        raise LookupThrottled(gettext("Too many attempts. Please try again in a few minutes."))


def _spend(item, namespace: str, cost: int = 1) -> None:
    """Record ``cost`` attempts (capped at what is left: ``limits`` refuses, and does
    not record, a hit larger than the remaining budget)."""
    limiter, key = rate_limiter(), reviews.acting_user_id()
    if limiter is None or key is None or cost <= 0:
        return
    remaining = limiter.get_window_stats(item, namespace, str(key)).remaining
    if min(cost, remaining) > 0:
        limiter.hit(item, namespace, str(key), cost=min(cost, remaining))


# --- Finding a volunteer by identity ---


def _normalize_name(name) -> str:
    return "".join(str(name or "").split())


def find_approved_volunteer(real_name: str, id_type: str, id_number: str) -> Volunteer | None:
    """The approved volunteer with exactly this real name and ID number, or None.

    The number is matched through the blind index only (never decrypted or searched
    partially); spaces are ignored and a final x counts as X.
    """
    number = pii.normalize_id(id_number or "")
    name = _normalize_name(real_name)
    if not number or not name or id_type not in IdType.labels():
        return None
    volunteer = db.session.scalar(select(Volunteer).where(
        Volunteer.id_type == id_type, Volunteer.id_blind == pii.blind_index(id_type, number)))
    if volunteer is None or volunteer.status != ReviewStatus.APPROVED:
        return None
    if _normalize_name(volunteer.real_name) != name:
        return None
    return volunteer


def _admit(group: VolunteerGroup, volunteer: Volunteer, existing: Membership | None) -> Membership:
    """Make ``volunteer`` an active member added by the group (a pending request, or a
    left/rejected/removed membership, is revived on the same row)."""
    return place_member(group, volunteer, status=MembershipStatus.ACTIVE,
                        origin=MembershipOrigin.ADMIN_ADDED, existing=existing)


def add_member_by_identity(group: VolunteerGroup, real_name: str, id_type: str,
                           id_number: str) -> Membership:
    """添加志愿者: add the approved volunteer with this real name and ID number to ``group``.

    :raises ScopeViolation: the user does not administer ``group`` itself
    :raises LookupThrottled: too many failed lookups by this user lately
    :raises DomainError: the group is not approved; no approved volunteer matches
        (one message whatever the cause); already an active member
    """
    ensure_administers(group)
    if not is_approved(group):
        raise DomainError(gettext("Only an approved group can take members."))
    limit = _lookup_limit()
    _check_budget(limit, "roster-lookup-failures/user")
    volunteer = find_approved_volunteer(real_name, id_type, id_number)
    if volunteer is None:
        _spend(limit, "roster-lookup-failures/user")
        raise DomainError(no_match_message())
    existing = membership_of(group, volunteer)
    if existing is not None and existing.status == MembershipStatus.ACTIVE:
        raise DomainError(gettext("%(name)s is already a member of this group.", name=volunteer.real_name))
    return _admit(group, volunteer, existing)


# --- Removal ---


def remove_members(items: Iterable[Membership]) -> int:
    """移除: set the selected active or pending memberships to ``removed`` (kept as
    history, never deleted). All or nothing: every row is checked before any changes.

    :raises ScopeViolation: a row belongs to a group the user does not administer itself
    :raises DomainError: a row is neither active nor pending
    """
    items = list(items)
    for membership in items:
        ensure_administers(membership.group)
    items = reviews.lock_for_decision(Membership, items)  # a concurrent leave is seen, not counted twice
    refused = [m for m in items if m.status not in CURRENT]
    if refused:
        raise DomainError(gettext(
            "Only members and pending requests can be removed: %(names)s.",
            names="、".join(m.volunteer_name or "" for m in refused)))
    actor = reviews.acting_user_id()
    for membership in items:
        if membership.status == MembershipStatus.ACTIVE:
            rollups.members_changed(membership, -1)  # before decided_on moves on
        membership.status = MembershipStatus.REMOVED
        membership.decided_on = utcnow()
        membership.decided_by_fk = actor
    db.session.flush()
    return len(items)


# --- Export ---

GENDERS = {"M": lazy_gettext("Male"), "F": lazy_gettext("Female")}
EXPORT_BATCH = 1000


def export_headers() -> list[str]:
    return [gettext("Real name"), gettext("Volunteer number"), gettext("Gender"), gettext("ID type"),
            gettext("ID number"), gettext("Mobile"), gettext("Status"), gettext("Joined by"),
            gettext("Joined on")]


def roster_rows(group: VolunteerGroup, statuses: Iterable[str] = CURRENT) -> Iterator[list]:
    """The export rows of ``group``'s roster (masked ID numbers and phones only), read
    in batches so a large roster never sits in memory at once."""
    from app.services.clock import to_local

    query = (select(Membership.volunteer_name, Membership.volunteer_no, Volunteer.gender,
                    Volunteer.id_type, Volunteer.id_number_masked, Volunteer.phone_masked,
                    Membership.status, Membership.origin, Membership.decided_on)
             .join(Volunteer, Volunteer.id == Membership.volunteer_id)
             .where(Membership.group_id == group.id, Membership.status.in_(list(statuses)))
             .order_by(Membership.id)
             .execution_options(yield_per=EXPORT_BATCH))
    id_types, statuses_l, origins = IdType.labels(), MembershipStatus.labels(), MembershipOrigin.labels()
    for row in db.session.execute(query):
        decided = to_local(row.decided_on) if row.decided_on else None
        yield [row.volunteer_name or "", row.volunteer_no or "", str(GENDERS.get(row.gender, "")),
               id_types.get(row.id_type, row.id_type), row.id_number_masked or "", row.phone_masked or "",
               statuses_l.get(row.status, row.status), origins.get(row.origin, row.origin),
               decided.strftime("%Y-%m-%d %H:%M") if decided else ""]


def text_cells(sheet, values) -> list:
    """Cells that Excel must show as typed: openpyxl writes a string starting with "=" as
    a formula, so a name like ``=HYPERLINK(…)`` would become a live link (CSV/formula
    injection). Strings are written as strings, always."""
    from openpyxl.cell import WriteOnlyCell

    cells = []
    for value in values:
        if isinstance(value, str):
            cell = WriteOnlyCell(sheet, value=value)
            cell.data_type = "s"
            cells.append(cell)
        else:
            cells.append(value)
    return cells


def write_roster_xlsx(group: VolunteerGroup, out: IO[bytes]) -> None:
    """导出: write ``group``'s roster (members and pending requests) as an .xlsx to ``out``.

    :raises ScopeViolation: the user may not read this group's roster
    """
    from openpyxl import Workbook

    ensure_reads_roster(group)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(gettext("My Members")[:31])
    sheet.append(export_headers())
    for row in roster_rows(group):
        sheet.append(text_cells(sheet, row))
    workbook.save(out)


# --- Import ---

OK, MEMBER, ERROR = "ok", "member", "error"


@dataclass
class ImportRow:
    row: int
    name: str
    id_type: str
    id_masked: str
    outcome: str = OK
    volunteer_id: int | None = None
    errors: list[dict] = field(default_factory=list)

    def error(self, column: str, reason: str) -> None:
        self.outcome = ERROR
        self.errors.append({"column": column, "reason": reason})

    def as_json(self) -> dict:
        return {"row": self.row, "name": self.name, "id_type": self.id_type, "id_masked": self.id_masked,
                "outcome": self.outcome, "volunteer_id": self.volunteer_id, "errors": self.errors}


def _id_type_values() -> dict[str, str]:
    """Every accepted spelling of an ID type (code, zh and en label) -> the code."""
    values = {t.value: t.value for t in IdType}
    for locale in ("zh_CN", "en"):
        with force_locale(locale):
            values.update({str(t.label).lower(): t.value for t in IdType})
    values.update({k: v.value for k, v in ID_TYPE_ALIASES.items()})
    return values


def _cell_text(value) -> str:
    """A cell as text: Excel keeps long digit strings as numbers unless typed as text."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _find_header(rows: list[tuple]) -> tuple[int, dict[str, int], dict[str, str]] | None:
    """(index of the header row, {field: column index}, {field: header text}) or None."""
    for index, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        cells = [_cell_text(c) for c in row]
        columns, headers = {}, {}
        for col, text in enumerate(cells):
            key = "".join(text.split()).lower()
            for name, accepted in (("name", NAME_HEADERS), ("id_number", ID_HEADERS),
                                   ("id_type", ID_TYPE_HEADERS)):
                if name not in columns and key in {"".join(a.split()).lower() for a in accepted}:
                    columns[name], headers[name] = col, text
        if "name" in columns and "id_number" in columns:
            return index, columns, headers
    return None


def _refuse_zip_bomb(data: bytes) -> None:
    """Refuse an .xlsx whose parts unpack to more than MAX_UNPACKED_BYTES: a 2 MB file can
    hold gigabytes of XML, and openpyxl would read it all before finding nothing useful."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        raise DomainError(gettext("The file is not a readable Excel (.xlsx) workbook.")) from err
    if unpacked > MAX_UNPACKED_BYTES:
        raise DomainError(gettext("The file is not a readable Excel (.xlsx) workbook."))


def _read_workbook(filename: str, data: bytes) -> list[tuple]:
    """The first sheet's rows as value tuples; refuses what is not a usable .xlsx."""
    from openpyxl import load_workbook

    if not (filename or "").lower().endswith(".xlsx"):
        raise DomainError(gettext("Please upload an Excel file (.xlsx)."))
    if not data:
        raise DomainError(gettext("The file is empty."))
    if len(data) > MAX_IMPORT_BYTES:
        raise DomainError(gettext("The file is larger than %(mb)s MB.", mb=MAX_IMPORT_BYTES // (1024 * 1024)))
    _refuse_zip_bomb(data)
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as err:
        raise DomainError(gettext("The file is not a readable Excel (.xlsx) workbook.")) from err
    except Exception as err:  # openpyxl raises a variety of errors on foreign files
        raise DomainError(gettext("The file is not a readable Excel (.xlsx) workbook.")) from err
    try:
        sheet = workbook.worksheets[0] if workbook.worksheets else None
        if sheet is None:
            raise DomainError(gettext("The file is empty."))
        rows = []
        for row in sheet.iter_rows(values_only=True):
            rows.append(row)
            if len(rows) > MAX_IMPORT_ROWS + HEADER_SEARCH_ROWS + 1:
                break
        return rows
    finally:
        workbook.close()


def check_roster_file(group: VolunteerGroup, filename: str, stream: IO[bytes]) -> RosterImport:
    """导入, step 1: read an uploaded .xlsx and check every row against the volunteers.

    Each row is OK (an approved volunteer matching name and ID, not yet an active
    member), already a member (skipped), or an error naming the column and reason
    (empty name or ID, malformed ID, unknown ID type, a duplicate of an earlier row,
    no matching approved volunteer). Returns the stored, unapplied batch.

    :raises ScopeViolation: the user does not administer ``group`` itself
    :raises DomainError: not an .xlsx, empty, too large, no header row, too many rows
    :raises LookupThrottled: too many imports by this user lately
    """
    ensure_administers(group)
    if not is_approved(group):
        raise DomainError(gettext("Only an approved group can take members."))
    limit, misses = _import_limit(), _import_miss_limit()
    _check_budget(limit, "roster-imports/user")
    # Rows matching nobody count too: an import must not serve to try out ID numbers.
    _check_budget(misses, "roster-import-misses/user")
    data = stream.read(MAX_IMPORT_BYTES + 1)
    rows = _read_workbook(filename, data)
    header = _find_header(rows)
    if header is None:
        raise DomainError(gettext(
            "No header row found: the first rows must name the columns 姓名 and 证件号码 (optionally 证件类型)."))
    start, columns, headers = header
    data_rows = [(start + 2 + n, row) for n, row in enumerate(rows[start + 1:])
                 if any(_cell_text(c) for c in row)]
    if not data_rows:
        raise DomainError(gettext("The file has a header row but no data rows."))
    if len(data_rows) > MAX_IMPORT_ROWS:
        raise DomainError(gettext("The file has more than %(n)s rows; please split it.", n=MAX_IMPORT_ROWS))
    _spend(limit, "roster-imports/user")

    type_values = _id_type_values()
    checked: list[ImportRow] = []
    numbers: dict[int, str] = {}  # index in checked -> normalized number (kept in memory only)
    first_row: dict[tuple[str, str], int] = {}

    def cell(row, name):
        col = columns.get(name)
        return _cell_text(row[col]) if col is not None and col < len(row) else ""

    for row_number, row in data_rows:
        name = _normalize_name(cell(row, "name"))
        number = pii.normalize_id(cell(row, "id_number"))
        raw_type = cell(row, "id_type")
        id_type = type_values.get(raw_type.lower(), None) if raw_type else IdType.RESIDENT.value
        item = ImportRow(row=row_number, name=name[:64], id_type=id_type or "",
                         id_masked=pii.mask_id(number) if number else "")
        if not name:
            item.error(headers["name"], "empty_name")
        if id_type is None:
            item.error(headers.get("id_type", ""), "unknown_id_type")
        raw_id = row[columns["id_number"]] if columns["id_number"] < len(row) else None
        if not number:
            item.error(headers["id_number"], "empty_id")
        elif isinstance(raw_id, (int, float)) and len(number) > 15:
            # Excel keeps 15 significant digits: an 18-digit number typed as a number is lost.
            item.error(headers["id_number"], "id_as_number")
        elif id_type == IdType.RESIDENT:
            try:
                number = parse_resident_id(number).number
            except ValidationFailed:
                item.error(headers["id_number"], "malformed_id")
        elif len(number) > 32 or not number.isalnum():
            item.error(headers["id_number"], "malformed_id")
        if number and id_type:
            key = (id_type, number)
            if key in first_row:
                item.error(headers["id_number"], f"duplicate:{first_row[key]}")
            else:
                first_row[key] = row_number
        if item.outcome != ERROR:
            numbers[len(checked)] = number
        checked.append(item)

    _match(group, checked, numbers, headers)
    _spend(misses, "roster-import-misses/user",
           sum(any(e["reason"] == "no_match" for e in r.errors) for r in checked))
    batch = RosterImport(
        group_id=group.id, group_path=group.group_path, region_id=group.region_id,
        region_path=group.region_path, filename=(filename or "")[:255],
        rows_json=json.dumps([r.as_json() for r in checked], ensure_ascii=False),
        total_rows=len(checked), valid_rows=sum(r.outcome == OK for r in checked),
        created_by_fk=reviews.acting_user_id(),
    )
    db.session.add(batch)
    db.session.flush()
    return batch


def _match(group: VolunteerGroup, checked: list[ImportRow], numbers: dict[int, str],
           headers: dict[str, str]) -> None:
    """Look the well-formed rows up by blind index (in chunks) and decide their outcome."""
    blinds = {i: pii.blind_index(checked[i].id_type, n) for i, n in numbers.items()}
    found: dict[tuple[str, str], Volunteer] = {}
    values = sorted(set(blinds.values()))
    for start in range(0, len(values), LOOKUP_CHUNK):
        for volunteer in db.session.scalars(select(Volunteer).where(
                Volunteer.id_blind.in_(values[start:start + LOOKUP_CHUNK]))):
            found[(volunteer.id_type, volunteer.id_blind)] = volunteer
    matched = {}
    for i, blind in blinds.items():
        item = checked[i]
        volunteer = found.get((item.id_type, blind))
        if (volunteer is None or volunteer.status != ReviewStatus.APPROVED
                or _normalize_name(volunteer.real_name) != item.name):
            item.error(headers["id_number"], "no_match")
            continue
        matched[i] = volunteer.id
    ids = sorted(set(matched.values()))
    active = set()
    for start in range(0, len(ids), LOOKUP_CHUNK):
        active.update(db.session.scalars(select(Membership.volunteer_id).where(
            Membership.group_id == group.id, Membership.status == MembershipStatus.ACTIVE,
            Membership.volunteer_id.in_(ids[start:start + LOOKUP_CHUNK]))))
    for i, volunteer_id in matched.items():
        checked[i].volunteer_id = volunteer_id
        checked[i].outcome = MEMBER if volunteer_id in active else OK


def reason_text(reason: str) -> str:
    """The translated text of a stored error reason code."""
    if reason.startswith("duplicate:"):
        return gettext("Same ID number as row %(row)s.", row=reason.split(":", 1)[1])
    return {
        "empty_name": gettext("The real name is empty."),
        "empty_id": gettext("The ID number is empty."),
        "malformed_id": gettext("The ID number is not valid for its ID type."),
        "id_as_number": gettext("The ID number was stored as a number and lost digits: format the column as text."),
        "unknown_id_type": gettext("Unknown ID type."),
        "no_match": no_match_message(),
    }.get(reason, reason)


@dataclass
class ImportSummary:
    total: int
    to_add: int
    members: int
    errors: int
    rows: list[dict]


def import_rows(batch: RosterImport) -> list[dict]:
    return json.loads(batch.rows_json or "[]")


def summarize_import(batch: RosterImport) -> ImportSummary:
    """Counts and rows of a batch for the preview: error rows first, then in file order."""
    rows = import_rows(batch)
    rows.sort(key=lambda r: (r["outcome"] != ERROR, r["row"]))
    return ImportSummary(total=len(rows), to_add=sum(r["outcome"] == OK for r in rows),
                         members=sum(r["outcome"] == MEMBER for r in rows),
                         errors=sum(r["outcome"] == ERROR for r in rows), rows=rows)


def ensure_import_access(batch: RosterImport | None) -> RosterImport:
    """The batch, if the user administers its group; else ScopeViolation (404)."""
    if batch is None:
        raise ScopeViolation()
    ensure_administers(batch.group)
    return batch


def apply_roster_import(batch: RosterImport) -> int:
    """导入, step 2 (确认导入): add the batch's OK rows to the group, all in the caller's
    one transaction, and mark the batch applied. Each row is checked again: still
    approved, still not an active member. Returns how many were added.

    :raises ScopeViolation: the user does not administer the batch's group itself
    :raises DomainError: the batch was applied already, or the group is not approved
    """
    ensure_import_access(batch)
    # Lock the batch row (PostgreSQL) so two clicks cannot both apply it.
    batch = db.session.execute(select(RosterImport).where(RosterImport.id == batch.id)
                               .with_for_update().execution_options(populate_existing=True)).scalar_one()
    if batch.applied_on is not None:
        raise DomainError(gettext("This import has been applied already."))
    group = batch.group
    if not is_approved(group):
        raise DomainError(gettext("Only an approved group can take members."))
    wanted = [r["volunteer_id"] for r in import_rows(batch) if r["outcome"] == OK and r.get("volunteer_id")]
    added = 0
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[start:start + LOOKUP_CHUNK]
        volunteers = {v.id: v for v in db.session.scalars(select(Volunteer).where(Volunteer.id.in_(chunk)))}
        existing = {m.volunteer_id: m for m in db.session.scalars(select(Membership).where(
            Membership.group_id == group.id, Membership.volunteer_id.in_(chunk)))}
        for volunteer_id in chunk:
            volunteer = volunteers.get(volunteer_id)
            if volunteer is None or volunteer.status != ReviewStatus.APPROVED:
                continue
            membership = existing.get(volunteer_id)
            if membership is not None and membership.status == MembershipStatus.ACTIVE:
                continue
            _admit(group, volunteer, membership)
            added += 1
    batch.applied_on = utcnow()
    batch.applied_count = added
    db.session.flush()
    return added


def error_report_rows(batch: RosterImport) -> Iterator[list]:
    """One line per error of the batch: row, column, reason, name, masked ID number."""
    for row in sorted(import_rows(batch), key=lambda r: r["row"]):
        for error in row["errors"]:
            yield [row["row"], error["column"], reason_text(error["reason"]), row["name"], row["id_masked"]]


def write_error_report(batch: RosterImport, out: IO[bytes]) -> None:
    """The batch's error report as an .xlsx."""
    from openpyxl import Workbook

    ensure_import_access(batch)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(gettext("Errors")[:31])
    sheet.append([gettext("Row"), gettext("Column"), gettext("Reason"), gettext("Real name"),
                  gettext("ID number")])
    for line in error_report_rows(batch):
        sheet.append(text_cells(sheet, line))
    workbook.save(out)
