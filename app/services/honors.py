"""Honors (表彰激励): recorded by honors editors of a prefecture or above, for
recipients inside their region (DESIGN.md §4)."""
from __future__ import annotations

from flask_babel import gettext

from app.extensions import db
from app.models import Honor, HonorLevel, Volunteer, VolunteerGroup
from app.security.scope import current_scope, is_in_scope, path_is_under
from app.services.errors import ScopeViolation, ValidationFailed


def _ensure_may_edit(region_path: str) -> None:
    """Refuse unless the user's honors-editor bindings cover ``region_path``."""
    scope = current_scope()
    if scope.everything:
        return
    if not scope.honors_paths:
        raise ValidationFailed(gettext(
            "Only honors editors of a prefecture-level city or above may record honors."))
    if not any(path_is_under(region_path, p) for p in scope.honors_paths):
        raise ScopeViolation()


def _apply_recipient(honor: Honor, volunteer: Volunteer | None, group: VolunteerGroup | None) -> None:
    if (volunteer is None) == (group is None):
        raise ValidationFailed(gettext("An honor goes to exactly one volunteer or one group."))
    recipient = volunteer or group
    # Recipient outside the user's scope: the same answer as a missing one.
    if not is_in_scope(recipient):
        raise ScopeViolation()
    _ensure_may_edit(recipient.region_path)
    honor.volunteer, honor.volunteer_group = volunteer, group
    honor.volunteer_id = volunteer.id if volunteer else None
    honor.volunteer_group_id = group.id if group else None
    honor.region_id, honor.region_path = recipient.region_id, recipient.region_path
    honor.group_path = group.group_path if group else None


def volunteer_by_number(volunteer_no: str | None) -> Volunteer | None:
    """Return the volunteer with this national number, None for an empty one.

    :raises ValidationFailed: no such volunteer in the user's scope (one message
        for both cases: existence outside the scope is not disclosed)
    """
    from sqlalchemy import select

    from app.security.scope import scope_clause

    if not (volunteer_no or "").strip():
        return None
    volunteer = db.session.scalar(select(Volunteer).where(
        Volunteer.volunteer_no == volunteer_no.strip().upper(),
        scope_clause(Volunteer, current_scope())))
    if volunteer is None:
        raise ValidationFailed(gettext("No volunteer with number %(no)s in your region.", no=volunteer_no))
    return volunteer


def _validate_fields(honor: Honor) -> None:
    errors = []
    if not (honor.title or "").strip():
        errors.append(gettext("Title is required."))
    if honor.level not in set(HonorLevel):
        errors.append(gettext("Level must be national, provincial or prefecture."))
    if not (honor.awarding_body or "").strip():
        errors.append(gettext("Awarding body is required."))
    if honor.awarded_on is None:
        errors.append(gettext("Award date is required."))
    if errors:
        raise ValidationFailed(*errors)


def award_honor(honor: Honor, *, volunteer: Volunteer | None = None,
                group: VolunteerGroup | None = None) -> Honor:
    """Validate a new honor and place it in its recipient's region.

    :raises ValidationFailed: fields missing, no or two recipients, not an honors editor
    :raises ScopeViolation: the recipient lies outside the editor's honors region
    """
    _validate_fields(honor)
    _apply_recipient(honor, volunteer, group)
    if honor not in db.session:
        db.session.add(honor)
    db.session.flush()
    return honor


def update_honor(honor: Honor) -> Honor:
    """Validate an edited honor; the recipient stays, the editor must cover its region."""
    _validate_fields(honor)
    _ensure_may_edit(honor.region_path)
    db.session.flush()
    return honor
