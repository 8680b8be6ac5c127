"""The civil-unit register (文明单位): kept by officers for their region; 统计分析 reads it
for the full-registration KPI (members ÷ staff headcount) and the units with no group."""
from __future__ import annotations

from flask_babel import gettext
from sqlalchemy import select

from app.extensions import db
from app.models import CivilUnit, ReviewStatus
from app.security.scope import Scope, current_scope, oversees
from app.services import regions
from app.services.errors import ScopeViolation, ValidationFailed

NAME_MAX = 100
HEADCOUNT_MAX = 1_000_000


def save_civil_unit(unit: CivilUnit, *, region_code=None, scope: Scope | None = None) -> CivilUnit:
    """Check a new or edited civil unit and place it in its region, for an officer whose
    regions hold it (before and after the change): a name (unique), the region by
    division code (kept when left empty on an edit), a staff headcount of 1 or more, and
    optionally its registered group — approved, inside the officer's regions and not
    the group of another civil unit.

    :raises ScopeViolation: not an officer of the unit's current region
    :raises ValidationFailed: ``fields`` maps each refused input to its messages
    """
    scope = scope if scope is not None else current_scope()
    if unit.id is not None and not oversees(unit.region_path, scope):
        raise ScopeViolation()
    if not (scope.everything or scope.officer_paths):
        raise ScopeViolation()
    with db.session.no_autoflush:  # an edited row is checked before it is written
        errors, region = _check(unit, region_code, scope)
    if errors:
        raise ValidationFailed(fields=errors)
    unit.region_id, unit.region_path = region.id, region.path
    unit.group_id = unit.group.id if unit.group is not None else None
    if unit not in db.session:
        db.session.add(unit)
    db.session.flush()
    return unit


def _check(unit: CivilUnit, region_code, scope: Scope):
    """The refusals per form field, and the region the code names."""
    errors: dict[str, list[str]] = {}

    def refuse(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    unit.name = " ".join(str(unit.name or "").split())
    if not unit.name:
        refuse("name", gettext("Please enter the name."))
    elif len(unit.name) > NAME_MAX:
        refuse("name", gettext("At most %(n)s characters.", n=NAME_MAX))
    elif db.session.scalar(select(CivilUnit.id).where(CivilUnit.name == unit.name,
                                                      CivilUnit.id != (unit.id or 0))) is not None:
        refuse("name", gettext("A civil unit with this name is on the register already."))

    code = str(region_code or "").strip()
    region = regions.region_by_code(code) if code else (unit.region if unit.region_id else None)
    if region is None:
        refuse("division_code", gettext("Unknown region code %(code)s.", code=code[:12]) if code
               else gettext("Please enter the division code of the unit's region."))
    elif not oversees(region.path, scope):
        refuse("division_code", gettext("The region lies outside your regions."))

    headcount = unit.staff_headcount
    if isinstance(headcount, bool) or not isinstance(headcount, int) or not 1 <= headcount <= HEADCOUNT_MAX:
        refuse("staff_headcount", gettext("The staff headcount must be a whole number from 1 to %(n)s.",
                                          n=HEADCOUNT_MAX))

    group = unit.group
    if group is not None:
        if group.status != ReviewStatus.APPROVED or not oversees(group.region_path, scope):
            refuse("group", gettext("Choose an approved volunteer group of your regions."))
        elif db.session.scalar(select(CivilUnit.id).where(CivilUnit.group_id == group.id,
                                                          CivilUnit.id != (unit.id or 0))) is not None:
            refuse("group", gettext("This group is registered for another civil unit."))
    return errors, region
