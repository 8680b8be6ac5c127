"""转移接续, records in and out: a volunteer's service records exported in the documented
format (docs/record-format.md: "volunteer-cloud-records" version 1, JSON or CSV), and
an officer's import of records from another system (区域监管 → 服务记录导入), checked row
by row, previewed, and applied only for the valid rows.

Rules:

- Export: every record of the volunteer except correction rows; approved records carry
  their approved corrections folded in (corrected down to nothing: left out); records
  made here are named by ``RECORD_SYSTEM_ID`` and their id, imported ones keep the
  other system's name and id, so a chain of moves never duplicates a record.
- Import, step 1 (``check_record_file``): each row is OK or an error naming its
  column and reason; the checked rows are stored in a ``RecordImport`` (volunteer
  numbers and names, never ID numbers). A volunteer number is found only among the
  approved volunteers whose home region lies in the officer's regions: an absent,
  unapproved and out-of-scope volunteer read the same; the service region must lie
  there too (the platform admin: anywhere); a record counts as imported already only
  among the named volunteer's own records. Text is cleaned of control and format
  characters; ``source_system`` and ``record_id`` are NFKC-normalised without spaces
  (the system casefolded) before any comparison.
- Import, step 2 (``apply_record_import``): the OK rows become approved records
  (source ``transfer_in``, no project or group here: their names as text) that keep
  the service region of the file; each is credited through ``hours.credit`` (and
  counted by ``rollups.minutes_credited``) inside its own savepoint, so a row refused
  at that moment (a duplicate or a full day that appeared since the check) is skipped
  and reported while the others land.
"""
from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import IO, Any, Iterable, Iterator

from flask import current_app
from flask_babel import force_locale, gettext
from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app.extensions import begin_write, db
from app.models import (
    RecordImport, RecordSource, RecordStatus, Region, ReviewStatus, ServiceRecord, Volunteer, VolunteerDay,
)
from app.security.hardening import Budget
from app.security.scope import Scope, current_scope, officer_clause, oversees, under
from app.services import hours, reviews, rollups
from app.services.clock import to_local, to_utc, today, utcnow
from app.services.errors import DomainError, ScopeViolation

FORMAT = "volunteer-cloud-records"
VERSION = 1
# The row's keys, in the order of the CSV header.
FIELDS = (
    "source_system", "record_id", "volunteer_no", "real_name", "served_on", "start_time", "end_time",
    "minutes", "hours", "project", "position", "organisation", "region_code", "service_category",
    "description", "status",
)
REQUIRED_COLUMNS = ("source_system", "record_id", "volunteer_no", "served_on", "project", "organisation",
                    "region_code")
# Chinese headers (as spreadsheets from other systems name them) -> keys. Headers are
# compared after NFKC (full-width brackets) with spaces removed and in lower case.
HEADER_ALIASES = {
    "记录编号": "record_id", "记录id": "record_id",
    "来源系统": "source_system",
    "志愿者编号": "volunteer_no", "志愿服务号码": "volunteer_no", "志愿者号码": "volunteer_no",
    "姓名": "real_name", "真实姓名": "real_name",
    "服务日期": "served_on",
    "开始时间": "start_time",
    "结束时间": "end_time",
    "时长(分钟)": "minutes", "服务时长(分钟)": "minutes",
    "服务时长": "hours", "时长(小时)": "hours", "服务时长(小时)": "hours",
    "项目": "project", "项目名称": "project", "志愿项目": "project",
    "岗位": "position", "岗位名称": "position",
    "组织": "organisation", "团体": "organisation", "组织名称": "organisation", "志愿团体": "organisation",
    "区划代码": "region_code", "服务区划代码": "region_code", "行政区划代码": "region_code",
    "服务类别": "service_category",
    "服务内容": "description",
    "状态": "status",
}
# Text limits (the columns that keep them: ServiceRecord.external_* and description).
LIMITS = {
    "source_system": 64, "record_id": 64, "project": 120, "position": 120, "organisation": 120,
    "description": 255, "service_category": 64, "real_name": 64, "volunteer_no": 32, "region_code": 12,
}
DISPLAY_LIMIT = 120  # what the stored rows keep of an over-long value, for the preview

MAX_IMPORT_BYTES = 2 * 1024 * 1024
MAX_IMPORT_ROWS = 5000
LOOKUP_CHUNK = 500
RECENT_IMPORTS = 20
# A CSV cell starting with one of these is a formula to a spreadsheet: exported behind "'".
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

OK, ERROR = "ok", "error"

_IMPORT_BUDGET = Budget("record-imports/user", "RECORD_IMPORTS_PER_HOUR", 30,
                        "RECORD_IMPORT_WINDOW_SECONDS", 3600)


class ImportThrottled(DomainError):
    """Too many files checked by this user lately."""

    code = 429


def system_id() -> str:
    """This deployment's name in exported records (``RECORD_SYSTEM_ID``)."""
    return str(current_app.config.get("RECORD_SYSTEM_ID") or "volunteer-cloud")


def hours_decimal(minutes: int) -> str:
    """Minutes as hours with exactly two decimals, rounded half up: 100 -> ``1.67``."""
    return str((Decimal(minutes) / 60).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


# --- Export ---


def export_records(volunteer: Volunteer) -> list[dict]:
    """The volunteer's records as rows of the format, by service date.

    Four queries whatever the count: the records (corrections included, to fold them
    in), then their projects, positions and groups.
    """
    rows = list(db.session.scalars(
        select(ServiceRecord).where(ServiceRecord.volunteer_id == volunteer.id)
        .options(selectinload(ServiceRecord.project), selectinload(ServiceRecord.position),
                 selectinload(ServiceRecord.group))
        .order_by(ServiceRecord.served_on, ServiceRecord.id)))
    corrections: dict[int, int] = {}
    for row in rows:
        if (row.source == RecordSource.CORRECTION and row.status == RecordStatus.APPROVED
                and row.corrects_id is not None):
            corrections[row.corrects_id] = corrections.get(row.corrects_id, 0) + row.minutes
    ours = system_id()
    result = []
    for row in rows:
        if row.source == RecordSource.CORRECTION:
            continue
        minutes = row.minutes
        if row.status == RecordStatus.APPROVED:
            minutes += corrections.get(row.id, 0)
            if minutes <= 0:
                continue
        external = row.source == RecordSource.TRANSFER_IN and row.external_system
        result.append({
            "source_system": row.external_system if external else ours,
            "record_id": row.external_id if external else str(row.id),
            "volunteer_no": volunteer.volunteer_no or "",
            "real_name": volunteer.real_name,
            "served_on": row.served_on.isoformat(),
            "start_time": _local_hhmm(row.started_at),
            "end_time": _end_hhmm(row, minutes),
            "minutes": minutes,
            "hours": hours_decimal(minutes),
            "project": row.project_name,
            "position": row.position_name,
            "organisation": row.group_name,
            "region_code": row.region_code,
            "service_category": row.project.category if row.project is not None else "",
            "description": row.description or "",
            "status": row.status,
        })
    return result


def _local_hhmm(value: datetime | None) -> str:
    return to_local(value).strftime("%H:%M") if value is not None else ""


def _end_hhmm(record: ServiceRecord, minutes: int) -> str:
    """The end time as an import takes it back: only when it lies on the start's day after
    the start, and the exported minutes (corrections folded in) fit between them."""
    if record.started_at is None or record.ended_at is None:
        return ""
    start, end = to_local(record.started_at), to_local(record.ended_at)
    span = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)  # as the import reads HH:MM
    if end.date() != start.date() or span <= 0 or minutes > span:
        return ""
    return end.strftime("%H:%M")


def export_document(volunteer: Volunteer) -> dict:
    """The JSON export: the format's envelope around ``export_records``."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": utcnow().replace(microsecond=0).isoformat() + "Z",
        "system": system_id(),
        "volunteer": {"volunteer_no": volunteer.volunteer_no or "", "real_name": volunteer.real_name,
                      "id_type": volunteer.id_type, "id_number_masked": volunteer.id_number_masked},
        "records": export_records(volunteer),
    }


def export_json(volunteer: Volunteer) -> bytes:
    """The volunteer's records as a UTF-8 JSON document."""
    return json.dumps(export_document(volunteer), ensure_ascii=False, indent=1).encode("utf-8")


def formula_safe(value) -> str:
    """A CSV cell that no spreadsheet runs as a formula: text starting with = + - @ (or a
    tab or carriage return) gets a leading apostrophe, which the import removes again."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_cells(row: Iterable, *, keep_numbers: bool = False) -> list:
    """One CSV row, formula-safe. ``keep_numbers``: ints and floats are written as numbers
    (a negative one is no formula)."""
    return [v if keep_numbers and isinstance(v, (int, float)) else formula_safe(v) for v in row]


def csv_bytes(header: Iterable[str], rows: Iterable[Iterable], *, keep_numbers: bool = False) -> bytes:
    """A UTF-8 CSV with a byte order mark (Excel reads it as UTF-8), formula-safe cells.
    ``keep_numbers``: ints and floats are written as numbers (a negative one is no formula)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(csv_cells(header))
    writer.writerows(csv_cells(row, keep_numbers=keep_numbers) for row in rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def export_csv(volunteer: Volunteer) -> bytes:
    """The volunteer's records as CSV: the format's keys as header, one record a line."""
    return csv_bytes(FIELDS, ([row[key] for key in FIELDS] for row in export_records(volunteer)))


def export_filename(volunteer: Volunteer, extension: str, *, ascii_only: bool = False) -> str:
    """``服务记录-<volunteer number>.json`` (translated); ``ascii_only``: the fallback name
    ``service-records-<number>.json`` for clients that read no RFC 5987 name."""
    number = volunteer.volunteer_no or volunteer.id
    label = "service-records" if ascii_only else gettext("Service records")  # outside the f-string: extracted
    return f"{label}-{number}.{extension}"


# --- Import: reading the file ---


@dataclass
class ImportRow:
    """One checked row; ``values`` are the normalised values the apply step needs."""

    row: int
    values: dict[str, Any] = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        return ERROR if self.errors else OK

    def error(self, column: str, reason: str, **args) -> None:
        """Record why the row is refused: one reason per column (the first found)."""
        if column and any(e["column"] == column for e in self.errors):
            return
        entry = {"column": column, "reason": reason}
        if args:
            entry["args"] = args
        self.errors.append(entry)

    def as_json(self) -> dict:
        return {"row": self.row, **self.values, "outcome": self.outcome, "errors": self.errors}


_BREAKS_AS_SPACES = str.maketrans({"\r": " ", "\n": " ", "\t": " "})


def clean_text(text: str) -> str:
    """Text as the ledger keeps it: CR, LF and tab become spaces, other control (Cc) and
    format (Cf: U+202E, U+200B, the byte order mark) characters are dropped, runs of
    spaces collapse into one, and the ends are stripped."""
    if not text.isprintable():
        text = "".join(c for c in text.translate(_BREAKS_AS_SPACES) if unicodedata.category(c) not in ("Cc", "Cf"))
    return " ".join(text.split())


def identifier(text: str, *, fold: bool = False) -> str:
    """``source_system`` / ``record_id`` as compared and stored: NFKC, without any whitespace
    or format (Cf) character; ``fold``: also casefolded (the source system)."""
    text = "".join(c for c in unicodedata.normalize("NFKC", clean_text(text)) if unicodedata.category(c) != "Cf")
    text = "".join(text.split())
    return text.casefold() if fold else text


def _header_key(text: str) -> str | None:
    """The format key a header cell names (its key, or a Chinese alias), or None."""
    key = identifier(text or "").lower()
    key = key.replace("（", "(").replace("）", ")")
    if key in FIELDS:
        return key
    return HEADER_ALIASES.get(key)


def _text(value) -> str | None:
    """A cell as clean text (``clean_text``); None when it is not text or a number (a
    JSON object or list)."""
    if value is None:
        return ""
    if isinstance(value, bool) or isinstance(value, (dict, list)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).replace("\x00", "").strip()
    if text.startswith("'") and text[1:2] in FORMULA_START:
        text = text[1:]  # our own export's guard against formulas
    return clean_text(text)


@dataclass
class ParsedFile:
    rows: list[tuple[int, dict[str, Any]]]  # (row number, {key: raw value})
    columns: dict[str, str]  # key -> the column's name as the file spells it


def _refuse_size(data: bytes) -> None:
    if not data:
        raise DomainError(gettext("The file is empty."))
    if len(data) > MAX_IMPORT_BYTES:
        raise DomainError(gettext("The file is larger than %(mb)s MB.", mb=MAX_IMPORT_BYTES // (1024 * 1024)))


def _too_many_rows() -> DomainError:
    return DomainError(gettext("The file has more than %(n)s rows; please split it.", n=MAX_IMPORT_ROWS))


def read_file(filename: str, data: bytes) -> ParsedFile:
    """The rows of an uploaded .json or .csv file (see docs/record-format.md).

    :raises DomainError: another file type, empty, too large, unreadable, not the
        format, no header or a required column missing, no rows, too many rows
    """
    name = (filename or "").lower()
    if not name.endswith((".json", ".csv")):
        raise DomainError(gettext("Please upload a .json or .csv file."))
    _refuse_size(data)
    rows = _read_json(data) if name.endswith(".json") else _read_csv(data)
    if not rows.rows:
        raise DomainError(gettext("The file holds no records."))
    if len(rows.rows) > MAX_IMPORT_ROWS:
        raise _too_many_rows()
    return rows


GB18030_BOM = b"\x84\x31\x95\x33"  # U+FEFF in GB18030


def _unreadable_text() -> DomainError:
    return DomainError(gettext("The file holds text that is not valid Unicode (a lone UTF-16 surrogate)."))


def _refuse_surrogates(document) -> None:
    """Refuse a decoded JSON document holding a string (key or value) that cannot be
    written as UTF-8: a lone surrogate from a ``\\ud800`` escape. Iterative, any depth."""
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise _unreadable_text() from None


def _shown_value(value) -> str:
    """A JSON value as the file spells it, short: ``"1"``, ``true``, ``1.0``, ``null``."""
    if isinstance(value, str):
        return json.dumps(clean_text(value)[:20], ensure_ascii=False)
    if isinstance(value, dict):
        return "{…}"
    if isinstance(value, list):
        return "[…]"
    return json.dumps(value)[:20]


def _read_json(data: bytes) -> ParsedFile:
    if data.startswith(GB18030_BOM):
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            raise DomainError(gettext("The file is not readable JSON.")) from None
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise DomainError(gettext("The file is not readable JSON.")) from None
    try:
        document = json.loads(text.lstrip("\ufeff"))
    except (ValueError, RecursionError):
        raise DomainError(gettext("The file is not readable JSON.")) from None
    _refuse_surrogates(document)
    if (not isinstance(document, dict) or document.get("format") != FORMAT
            or not isinstance(document.get("records"), list)):
        raise DomainError(gettext("The JSON file is not in the format %(format)s.", format=FORMAT))
    if "version" not in document:
        raise DomainError(gettext("The file does not name the format version (expected the integer %(expected)s).",
                                  expected=VERSION))
    version = document["version"]
    if type(version) is not int or version != VERSION:  # not true, 1.0 or "1"
        raise DomainError(gettext("Unsupported format version %(version)s (expected the integer %(expected)s).",
                                  version=_shown_value(version), expected=VERSION))
    records = document["records"]
    if len(records) > MAX_IMPORT_ROWS:
        raise _too_many_rows()
    rows = []
    for number, record in enumerate(records, start=1):
        values: dict[str, Any] = {}
        if isinstance(record, dict):
            for raw_key, value in record.items():
                key = _header_key(raw_key) if isinstance(raw_key, str) else None
                if key is not None and key not in values:
                    values[key] = value
        else:
            values = {"__invalid__": True}
        rows.append((number, values))
    return ParsedFile(rows=rows, columns={key: key for key in FIELDS})


def _decode(data: bytes) -> str:
    """UTF-8, else GB18030 (what Excel in Chinese saves); byte order marks (UTF-8, even
    doubled, or GB18030's 84 31 95 33) are dropped."""
    encodings = ("gb18030",) if data.startswith(GB18030_BOM) else ("utf-8", "gb18030")
    for encoding in encodings:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # not from these codecs, but never store what cannot be written
            raise _unreadable_text() from None
        return text.lstrip("\ufeff")
    raise DomainError(gettext("The file's text is neither UTF-8 nor GB18030."))


def _read_csv(data: bytes) -> ParsedFile:
    text = _decode(data).replace("\x00", "")
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error:
        raise DomainError(gettext("The file is not a readable CSV file.")) from None
    header_at = next((i for i, r in enumerate(records) if any(c.strip() for c in r)), None)
    if header_at is None:
        raise DomainError(gettext("The file is empty."))
    columns: dict[str, int] = {}
    names: dict[str, str] = {}
    for index, cell in enumerate(records[header_at]):
        key = _header_key(cell)
        if key is not None and key not in columns:
            columns[key], names[key] = index, clean_text(cell)
    missing = [key for key in REQUIRED_COLUMNS if key not in columns]
    if "minutes" not in columns and "hours" not in columns:
        missing.append("minutes")
    if missing:
        raise DomainError(gettext("The header row lacks the columns: %(columns)s.", columns=", ".join(missing)))
    rows = []
    for index in range(header_at + 1, len(records)):
        cells = records[index]
        if not any(c.strip() for c in cells):
            continue
        if len(rows) >= MAX_IMPORT_ROWS:
            raise _too_many_rows()
        rows.append((index + 1, {key: cells[col] if col < len(cells) else "" for key, col in columns.items()}))
    return ParsedFile(rows=rows, columns=names)


# --- Import: checking the rows ---

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_HOURS = re.compile(r"\d{1,2}(\.\d{1,2})?")


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def _approved_spellings() -> set[str]:
    """How a file may say "approved": empty, the code, the zh and en labels."""
    values = {"", RecordStatus.APPROVED.value}
    for locale in ("zh_CN", "en"):
        with force_locale(locale):
            values.add(str(RecordStatus.APPROVED.label).lower())
    return values


def _check_values(number: int, raw: dict[str, Any], columns: dict[str, str], ours: str,
                  approved: set[str]) -> ImportRow:
    """The checks one row needs no database for; fills ``values`` with what is valid."""
    item = ImportRow(row=number)
    if raw.get("__invalid__"):
        item.error("", "not_object")
        return item

    def col(key):
        return columns.get(key, key)

    texts: dict[str, str] = {}
    for key in FIELDS:
        value = _text(raw.get(key))
        if value is None:
            item.error(col(key), "bad_value")
            value = ""
        texts[key] = value
    for key in ("volunteer_no", "served_on", "start_time", "end_time", "minutes", "hours", "region_code", "status"):
        texts[key] = _nfkc(texts[key])
    texts["source_system"] = identifier(texts["source_system"], fold=True)
    texts["record_id"] = identifier(texts["record_id"])
    values = item.values
    for key in ("volunteer_no", "real_name", "source_system", "record_id", "project", "position", "organisation",
                "service_category", "description"):
        values[key] = texts[key][:DISPLAY_LIMIT] if key != "description" else texts[key][:LIMITS["description"]]

    for key, reason in (("source_system", "source_missing"), ("record_id", "record_id_missing"),
                        ("volunteer_no", "volunteer_no_missing"), ("project", "project_missing"),
                        ("organisation", "organisation_missing")):
        if not texts[key]:
            item.error(col(key), reason)
    for key, limit in LIMITS.items():
        if len(texts[key]) > limit:
            item.error(col(key), "too_long", n=limit)
    if texts["source_system"] and texts["source_system"] == identifier(ours, fold=True):
        item.error(col("source_system"), "own_system")

    values["served_on"] = texts["served_on"][:20]
    if not texts["served_on"]:
        item.error(col("served_on"), "date_missing")
    else:
        try:
            if not _DATE.fullmatch(texts["served_on"]):
                raise ValueError
            served_on = date.fromisoformat(texts["served_on"])
        except ValueError:
            item.error(col("served_on"), "bad_date")
        else:
            if served_on > today():
                item.error(col("served_on"), "future_date")

    values["minutes"] = None
    if texts["minutes"]:
        minutes = _whole_number(raw.get("minutes"), texts["minutes"])
        if minutes is None or not 0 < minutes <= hours.DAY_MINUTES:
            item.error(col("minutes"), "bad_minutes")
        else:
            values["minutes"] = minutes
    elif texts["hours"]:
        minutes = _hours_as_minutes(texts["hours"])
        if minutes is None:
            item.error(col("hours"), "bad_hours")
        else:
            values["minutes"] = minutes
    else:
        item.error(col("minutes"), "duration_missing")

    times = {}
    for key in ("start_time", "end_time"):
        values[key] = texts[key][:8]
        if texts[key]:
            match = _TIME.fullmatch(texts[key])
            if not match or int(match[1]) > 23 or int(match[2]) > 59:
                item.error(col(key), "bad_time")
            else:
                times[key] = time(int(match[1]), int(match[2]))
                values[key] = times[key].strftime("%H:%M")
    if len(times) == 2 and times["end_time"] <= times["start_time"]:
        item.error(col("end_time"), "end_before_start")
    elif len(times) == 2 and values["minutes"] is not None:
        span = (times["end_time"].hour * 60 + times["end_time"].minute
                - times["start_time"].hour * 60 - times["start_time"].minute)
        if values["minutes"] > span:
            item.error(col("minutes" if texts["minutes"] else "hours"), "longer_than_times",
                       minutes=values["minutes"], span=span)

    if texts["status"].lower() not in approved:
        item.error(col("status"), "bad_status")

    code = texts["region_code"]
    if len(code) in (2, 4) and code.isdigit():
        code = code.ljust(6, "0")  # 41 / 4102 as the six-digit 410000 / 410200
    values["region_code"] = code[:LIMITS["region_code"]]
    if not code:
        item.error(col("region_code"), "region_missing")
    elif not (code.isascii() and code.isdigit()) or len(code) > LIMITS["region_code"]:
        item.error(col("region_code"), "unknown_region")
    return item


def _whole_number(raw, text: str) -> int | None:
    if isinstance(raw, float) and not raw.is_integer():
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 6):
        return None
    return int(text)


def _hours_as_minutes(text: str) -> int | None:
    """Hours with at most two decimals, more than 0 and at most 24, as whole minutes."""
    if not _HOURS.fullmatch(text):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not 0 < value <= 24:
        return None
    return max(1, int((value * 60).to_integral_value(rounding=ROUND_HALF_UP)))


def _chunks(values: list, size: int = LOOKUP_CHUNK) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _volunteer_clause(scope: Scope):
    """Volunteers an import may name: approved, living in the officer's regions."""
    return and_(Volunteer.status == ReviewStatus.APPROVED, officer_clause(Volunteer.region_path, scope))


def _in_officer_scope(volunteer: Volunteer, scope: Scope) -> bool:
    return volunteer.status == ReviewStatus.APPROVED and _path_in_scope(volunteer.region_path, scope)


def _path_in_scope(path: str, scope: Scope) -> bool:
    """A region path inside the importer's regions (the platform admin: anywhere)."""
    return oversees(path, scope)


def _find_volunteers(numbers: list[str], scope: Scope) -> dict[str, Volunteer]:
    found = {}
    for chunk in _chunks(sorted(set(numbers))):
        for volunteer in db.session.scalars(select(Volunteer).where(
                Volunteer.volunteer_no.in_(chunk), _volunteer_clause(scope))):
            found[volunteer.volunteer_no] = volunteer
    return found


def _find_regions(codes: list[str]) -> dict[str, Region]:
    found = {}
    for chunk in _chunks(sorted(set(codes))):
        for region in db.session.scalars(select(Region).where(Region.code.in_(chunk))):
            found[region.code] = region
    return found


def _existing_keys(keys: Iterable[tuple[str, str, int]]) -> set[tuple[str, str, int]]:
    """The (external_system, external_id, volunteer_id) triples among ``keys`` already in
    the ledger. Only the volunteer's own records count (uq_service_record_external is per
    volunteer): whether another volunteer, maybe outside the officer's regions, holds the
    same record id is never told."""
    wanted = set(keys)
    by_system: dict[str, set[str]] = {}
    for system, record_id, _volunteer_id in wanted:
        by_system.setdefault(system, set()).add(record_id)
    found = set()
    for system, ids in by_system.items():
        for chunk in _chunks(sorted(ids)):
            for rid, vid in db.session.execute(select(ServiceRecord.external_id, ServiceRecord.volunteer_id).where(
                    ServiceRecord.external_system == system, ServiceRecord.external_id.in_(chunk))):
                if (system, rid, vid) in wanted:
                    found.add((system, rid, vid))
    return found


def _day_totals(pairs: set[tuple[int, date]]) -> dict[tuple[int, date], int]:
    """Approved minutes already on the ledger for each (volunteer id, date) of ``pairs``."""
    if not pairs:
        return {}
    first, last = min(d for _v, d in pairs), max(d for _v, d in pairs)
    totals = {}
    for chunk in _chunks(sorted({v for v, _d in pairs})):
        for vid, day, minutes in db.session.execute(select(
                VolunteerDay.volunteer_id, VolunteerDay.served_on, VolunteerDay.minutes).where(
                VolunteerDay.volunteer_id.in_(chunk), VolunteerDay.served_on.between(first, last))):
            if (vid, day) in pairs:
                totals[(vid, day)] = minutes
    return totals


def check_rows(parsed: ParsedFile, scope: Scope) -> list[ImportRow]:
    """Check every row: its values, then the volunteer, the region (known, inside the
    importer's regions), duplicates (earlier in the file; in the ledger: among the
    volunteer's own records) and the 24-hour day, in file order."""
    ours, approved = system_id(), _approved_spellings()
    columns = parsed.columns

    def col(key):
        return columns.get(key, key)

    checked = [_check_values(number, raw, columns, ours, approved) for number, raw in parsed.rows]
    volunteers = _find_volunteers([r.values["volunteer_no"] for r in checked if r.values.get("volunteer_no")], scope)
    regions = _find_regions([r.values["region_code"] for r in checked if r.values.get("region_code")])
    keys = [(r.values["source_system"], r.values["record_id"], volunteers[r.values["volunteer_no"]].id)
            for r in checked if r.values.get("source_system") and r.values.get("record_id")
            and r.values.get("volunteer_no") in volunteers]
    existing = _existing_keys(keys)
    first_row: dict[tuple[str, str], int] = {}
    for item in checked:
        values = item.values
        if not values:
            continue
        volunteer = volunteers.get(values["volunteer_no"]) if values["volunteer_no"] else None
        values["volunteer_id"] = None
        if values["volunteer_no"] and volunteer is None:
            item.error(col("volunteer_no"), "no_volunteer")
        elif volunteer is not None:
            values["volunteer_id"] = volunteer.id
            given = "".join(values["real_name"].split())
            if given and given != "".join(volunteer.real_name.split()):
                item.error(col("real_name"), "name_mismatch")
            served_on = _date_or_none(values["served_on"])
            if served_on and volunteer.birth_date and served_on < volunteer.birth_date:
                item.error(col("served_on"), "before_birth")
        region = regions.get(values["region_code"]) if values["region_code"] else None
        values["region_id"] = region.id if region is not None else None
        if values["region_code"] and region is None and not any(
                e["column"] == col("region_code") for e in item.errors):
            item.error(col("region_code"), "unknown_region")
        elif region is not None and not _path_in_scope(region.path, scope):
            item.error(col("region_code"), "region_outside", code=region.code)
        key = (values["source_system"], values["record_id"])
        if all(key) and len(key[0]) <= LIMITS["source_system"] and len(key[1]) <= LIMITS["record_id"]:
            if key in first_row:
                item.error(col("record_id"), "duplicate_row", row=first_row[key])
            else:
                first_row[key] = item.row
                if volunteer is not None and (*key, volunteer.id) in existing:
                    item.error(col("record_id"), "duplicate_existing")
    _check_days(checked, col)
    return checked


def _date_or_none(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if _DATE.fullmatch(text or "") else None
    except ValueError:
        return None


def _check_days(checked: list[ImportRow], col) -> None:
    """The 24-hour day: what the ledger holds plus the earlier valid rows of the file."""
    valid = [r for r in checked if r.outcome == OK]
    pairs = {(r.values["volunteer_id"], date.fromisoformat(r.values["served_on"])) for r in valid}
    used = _day_totals(pairs)
    for item in valid:
        key = (item.values["volunteer_id"], date.fromisoformat(item.values["served_on"]))
        total = used.get(key, 0)
        if total + item.values["minutes"] > hours.DAY_MINUTES:
            item.error(col("minutes"), "day_full", hours=hours.hours_text(total), day=key[1].isoformat())
        else:
            used[key] = total + item.values["minutes"]


# --- Import: the batch ---


def _common_path(paths: list[str]) -> str:
    """The deepest region path every one of ``paths`` lies in ('' when none)."""
    if not paths:
        return ""
    parts = [p.rstrip("/").split("/") for p in paths]
    common = []
    for segment in zip(*parts):
        if len(set(segment)) != 1:
            break
        common.append(segment[0])
    return "/".join(common) + "/" if common else ""


def _paths_of(column, id_column, ids: set[int]) -> list[str]:
    paths = []
    for chunk in _chunks(sorted(ids)):
        paths.extend(db.session.scalars(select(column).where(id_column.in_(chunk)).distinct()))
    return paths


def _batch_region(scope: Scope, checked: list[ImportRow]) -> Region:
    """The region a batch is filed under (who besides its creator may open it): the
    officer's region (the region every binding of theirs lies in); for the platform admin
    (or an officer whose bindings share no region) the deepest region holding the home
    regions of the file's matched volunteers, or, when none matched, the service regions
    of its rows. Never some unrelated region: files spanning provinces are refused.

    :raises DomainError: no such region (several provinces, or nothing known)
    """
    path = _common_path(list(scope.officer_paths))
    if not path:
        paths = _paths_of(Volunteer.region_path, Volunteer.id,
                          {r.values["volunteer_id"] for r in checked if r.values.get("volunteer_id")})
        if not paths:
            paths = _paths_of(Region.path, Region.id,
                              {r.values["region_id"] for r in checked if r.values.get("region_id")})
        if not paths:
            raise DomainError(gettext("No row names a volunteer or a region code known here."))
        path = _common_path(paths)
    region = db.session.scalar(select(Region).where(Region.path == path)) if path else None
    if region is None:
        raise DomainError(gettext("The file's volunteers (or, when none is found, its service regions) lie in more "
                                  "than one province: please import one province at a time."))
    return region


def _require_importer(scope: Scope) -> None:
    if not (scope.everything or scope.officer_paths):
        raise ScopeViolation()


def check_record_file(filename: str, stream: IO[bytes], *, scope: Scope | None = None,
                      actor_id: int | None = None) -> RecordImport:
    """服务记录导入, step 1: read the file, check every row, store the unapplied batch.

    :raises ScopeViolation: the user is not an officer (nor the platform admin)
    :raises ImportThrottled: more than ``RECORD_IMPORTS_PER_HOUR`` files (default 30)
        checked by this user in the last hour
    :raises DomainError: the file is refused as a whole (see ``read_file``)
    """
    scope = scope if scope is not None else current_scope()
    actor = actor_id if actor_id is not None else reviews.acting_user_id()
    _require_importer(scope)
    key = str(actor or "anonymous")
    if _IMPORT_BUDGET.wait(key):
        raise ImportThrottled(gettext("Too many attempts. Please try again in a few minutes."))
    data = stream.read(MAX_IMPORT_BYTES + 1)
    _IMPORT_BUDGET.spend(key)
    checked = check_rows(read_file(filename, data), scope)
    region = _batch_region(scope, checked)
    batch = RecordImport(
        region_id=region.id, region_path=region.path, filename=_stored_filename(filename),
        rows_json=json.dumps([r.as_json() for r in checked], ensure_ascii=False),
        total_rows=len(checked), valid_rows=sum(r.outcome == OK for r in checked), created_by_fk=actor)
    db.session.add(batch)
    db.session.flush()
    return batch


def _stored_filename(name: str | None) -> str:
    """The upload's name as text the database takes (no lone surrogates, no control characters)."""
    return clean_text((name or "").encode("utf-8", "replace").decode("utf-8"))[:255]


def ensure_import_access(batch: RecordImport | None, *, scope: Scope | None = None,
                         actor_id: int | None = None) -> RecordImport:
    """The batch, when the user may open it: the platform admin, its creator while still
    an officer, an officer whose regions cover the batch's region; else ScopeViolation."""
    scope = scope if scope is not None else current_scope()
    actor = actor_id if actor_id is not None else reviews.acting_user_id()
    if batch is None:
        raise ScopeViolation()
    if scope.everything:
        return batch
    if scope.officer_paths and (
            (actor is not None and batch.created_by_fk == actor)
            or oversees(batch.region_path, scope)):
        return batch
    raise ScopeViolation()


def recent_imports(*, scope: Scope | None = None, actor_id: int | None = None,
                   limit: int = RECENT_IMPORTS) -> list[RecordImport]:
    """The batches the user may open, newest first (their own and their regions')."""
    scope = scope if scope is not None else current_scope()
    actor = actor_id if actor_id is not None else reviews.acting_user_id()
    query = select(RecordImport).order_by(RecordImport.id.desc()).limit(limit)
    if not scope.everything:
        if not scope.officer_paths:
            return []
        parts = [under(RecordImport.region_path, p) for p in scope.officer_paths]
        if actor is not None:
            parts.append(RecordImport.created_by_fk == actor)
        query = query.where(or_(*parts))
    return list(db.session.scalars(query))


def import_rows(batch: RecordImport) -> list[dict]:
    return json.loads(batch.rows_json or "[]")


@dataclass
class ImportSummary:
    total: int
    valid: int
    errors: int
    applied: int | None
    skipped: int
    rows: list[dict]


def summarize_import(batch: RecordImport) -> ImportSummary:
    """Counts and rows of a batch for the preview: error rows first, then in file order."""
    rows = import_rows(batch)
    rows.sort(key=lambda r: (r["outcome"] != ERROR, r["row"]))
    return ImportSummary(
        total=len(rows), valid=sum(r["outcome"] == OK for r in rows), errors=sum(r["outcome"] == ERROR for r in rows),
        applied=batch.applied_count, skipped=sum(1 for r in rows if r.get("apply_error")), rows=rows)


@dataclass(frozen=True)
class ApplyResult:
    applied: int
    skipped: int


def _record_from_row(values: dict, volunteer: Volunteer, region: Region, actor: int | None,
                     now: datetime) -> ServiceRecord:
    served_on = date.fromisoformat(values["served_on"])

    def at(key):
        if not values.get(key):
            return None
        hh, mm = values[key].split(":")
        return to_utc(datetime.combine(served_on, time(int(hh), int(mm))))

    return ServiceRecord(
        volunteer_id=volunteer.id, volunteer_name=volunteer.real_name, volunteer_no=volunteer.volunteer_no,
        project_id=None, position_id=None, group_id=None, group_path=None,
        region_id=region.id, region_path=region.path,
        external_system=values["source_system"], external_id=values["record_id"],
        external_project=values["project"], external_position=values.get("position") or None,
        external_org=values["organisation"], served_on=served_on, started_at=at("start_time"),
        ended_at=at("end_time"), minutes=values["minutes"], source=RecordSource.TRANSFER_IN,
        status=RecordStatus.APPROVED, description=values.get("description") or None,
        approved_by_fk=actor, approved_on=now, created_by_fk=actor)


def apply_record_import(batch: RecordImport, *, scope: Scope | None = None,
                        actor_id: int | None = None) -> ApplyResult:
    """服务记录导入, step 2 (确认导入): write the batch's OK rows as approved records
    (source ``transfer_in``, approved by the officer) and credit them.

    The batch is locked and marked applied in the same transaction, so it is applied
    once. Each row is checked again (the volunteer still approved and in the officer's
    regions, the record not in the ledger yet, the day not past 24 hours) and written
    inside its own savepoint: a refused row is skipped and reported with its reason,
    the others land. The caller commits.

    :raises ScopeViolation: the user may not open the batch (or is no officer)
    :raises DomainError: the batch was applied already
    """
    scope = scope if scope is not None else current_scope()
    actor = actor_id if actor_id is not None else reviews.acting_user_id()
    _require_importer(scope)
    batch_id = batch.id
    begin_write()  # SQLite: take the write lock before reading what the writes depend on
    batch = db.session.execute(select(RecordImport).where(RecordImport.id == batch_id)
                               .with_for_update().execution_options(populate_existing=True)).scalar_one_or_none()
    ensure_import_access(batch, scope=scope, actor_id=actor)
    if batch.applied_on is not None:
        raise DomainError(gettext("This import has been applied already."))
    rows = import_rows(batch)
    wanted = [r for r in rows if r["outcome"] == OK]
    volunteers: dict[int, Volunteer] = {}
    for chunk in _chunks(sorted({r["volunteer_id"] for r in wanted})):
        volunteers.update((v.id, v) for v in db.session.scalars(select(Volunteer).where(Volunteer.id.in_(chunk))))
    regions: dict[int, Region] = {}
    for chunk in _chunks(sorted({r["region_id"] for r in wanted})):
        regions.update((g.id, g) for g in db.session.scalars(select(Region).where(Region.id.in_(chunk))))
    existing = _existing_keys((r["source_system"], r["record_id"], r["volunteer_id"]) for r in wanted)
    now, applied, skipped = utcnow(), 0, 0
    # Credits lock volunteer rows, then day rows: take them in volunteer order (as 录入时长 does).
    for row in sorted(wanted, key=lambda r: (r["volunteer_id"], r["row"])):
        volunteer, region = volunteers.get(row["volunteer_id"]), regions.get(row["region_id"])
        reason = None
        if volunteer is None or not _in_officer_scope(volunteer, scope):
            reason = {"reason": "no_volunteer"}
        elif region is None:
            reason = {"reason": "unknown_region"}
        elif not _path_in_scope(region.path, scope):
            reason = {"reason": "region_outside", "args": {"code": region.code}}
        elif (row["source_system"], row["record_id"], row["volunteer_id"]) in existing:
            reason = {"reason": "duplicate_existing"}
        else:
            reason = _write_row(row, volunteer, region, actor, now)
        if reason is None:
            row["applied"] = True
            applied += 1
        else:
            row["apply_error"] = reason
            skipped += 1
    batch.rows_json = json.dumps(rows, ensure_ascii=False)
    batch.applied_on, batch.applied_count = now, applied
    db.session.flush()
    return ApplyResult(applied=applied, skipped=skipped)


def _write_row(row: dict, volunteer: Volunteer, region: Region, actor: int | None, now: datetime) -> dict | None:
    """Credit and insert one row inside a savepoint; None when it landed, else why not.

    A record whose times overlap another approved record of the volunteer is flagged for
    the officers, as local entry does (``hours.record_flags``: only "overlap" here; an
    import is late by nature and has no position for "shift")."""
    served_on = date.fromisoformat(row["served_on"])
    try:
        with db.session.begin_nested():
            hours.credit(volunteer.id, served_on, row["minutes"], volunteer.real_name)
            record = _record_from_row(row, volunteer, region, actor, now)
            db.session.add(record)
            db.session.flush()
            rollups.minutes_credited(record, record.minutes)
            hours.add_flags(record, [key for key in hours.record_flags(record) if key == "overlap"])
            db.session.flush()
    except IntegrityError:  # uq_service_record_external: imported for this volunteer meanwhile
        return {"reason": "duplicate_existing"}
    except DomainError:  # the day is full now
        used = hours.day_minutes([volunteer.id], served_on).get(volunteer.id, 0)
        return {"reason": "day_full", "args": {"hours": hours.hours_text(used), "day": served_on.isoformat()}}
    return None


# --- Messages and the error report ---


def reason_text(reason: str, args: dict | None = None) -> str:
    """The translated text of a stored reason code."""
    args = args or {}
    texts = {
        "not_object": lambda: gettext("The record is not a JSON object."),
        "bad_value": lambda: gettext("This value must be text or a number."),
        "source_missing": lambda: gettext("The source system is empty."),
        "record_id_missing": lambda: gettext("The record id is empty."),
        "volunteer_no_missing": lambda: gettext("The volunteer number is empty."),
        "project_missing": lambda: gettext("The project is empty."),
        "organisation_missing": lambda: gettext("The organisation is empty."),
        "too_long": lambda: gettext("At most %(n)s characters.", n=args.get("n", "")),
        "own_system": lambda: gettext("These records are already in this system (their source system is this "
                                      "system)."),
        "no_volunteer": lambda: gettext("No approved volunteer with this number lives in your region."),
        "name_mismatch": lambda: gettext("The real name does not match the volunteer number."),
        "date_missing": lambda: gettext("The service date is empty."),
        "bad_date": lambda: gettext("Enter the date as YYYY-MM-DD."),
        "future_date": lambda: gettext("The service date lies in the future."),
        "before_birth": lambda: gettext("The service date lies before the volunteer's birth date."),
        "bad_minutes": lambda: gettext("The minutes must be a whole number from 1 to 1440."),
        "bad_hours": lambda: gettext("The hours must be more than 0 and at most 24, with at most two decimals."),
        "duration_missing": lambda: gettext("Give the minutes or the hours."),
        "bad_time": lambda: gettext("Enter the time as HH:MM, for example 08:30."),
        "end_before_start": lambda: gettext("The end time must be after the start time."),
        "longer_than_times": lambda: gettext("%(minutes)s minutes do not fit between the start and the end time "
                                             "(%(span)s minutes).", minutes=args.get("minutes", ""),
                                             span=args.get("span", "")),
        "bad_status": lambda: gettext("Only approved records can be imported."),
        "region_missing": lambda: gettext("The region code is empty."),
        "unknown_region": lambda: gettext("Unknown region code."),
        "region_outside": lambda: gettext("The service region %(code)s lies outside your region: an officer whose "
                                          "region contains it, or the platform administrator, imports this record.",
                                          code=args.get("code", "")),
        "duplicate_row": lambda: gettext("Same record as row %(row)s.", row=args.get("row", "")),
        "duplicate_existing": lambda: gettext("This record (source system and record id) has been imported "
                                              "already."),
        "day_full": lambda: gettext("The volunteer already has %(hours)s approved hours on %(day)s: a day holds at "
                                    "most 24 hours.", hours=args.get("hours", ""), day=args.get("day", "")),
    }
    text = texts.get(reason)
    return text() if text is not None else reason


def error_text(error: dict) -> str:
    return reason_text(error.get("reason", ""), error.get("args"))


def error_report_rows(batch: RecordImport) -> Iterator[list]:
    """One line per problem: the check's errors, then rows skipped when applied."""
    for row in sorted(import_rows(batch), key=lambda r: r["row"]):
        base = [row.get("volunteer_no", ""), row.get("real_name", ""), row.get("source_system", ""),
                row.get("record_id", "")]
        for error in row["errors"]:
            yield [row["row"], error["column"], error_text(error), *base]
        if row.get("apply_error"):
            yield [row["row"], "", error_text(row["apply_error"]), *base]


def error_report_csv(batch: RecordImport) -> bytes:
    """The batch's error report as a UTF-8 CSV (formula-safe)."""
    header = [gettext("Row"), gettext("Column"), gettext("Reason"), gettext("Volunteer number"),
              gettext("Real name"), gettext("Source system"), gettext("Record id")]
    return csv_bytes(header, error_report_rows(batch))
