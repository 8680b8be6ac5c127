"""Service hours: the ledger's rules. (Recording and approval come with the hours issue.)"""
from __future__ import annotations

from flask_babel import gettext

from app.extensions import db
from app.models import ServiceRecord
from app.security.scope import current_scope, path_is_under
from app.services.errors import DomainError, ScopeViolation


def flag_records(records: list[ServiceRecord], *, flagged: bool, reason: str | None = None) -> int:
    """Flag (or unflag) records for an officer's attention; returns how many changed.

    Only officers of the records' service region may flag; a group admin's scope
    does not count here. All records are checked before any is changed.
    """
    scope = current_scope()
    if not (scope.everything or scope.officer_paths):
        raise DomainError(gettext("Only officers may flag service records."))
    for record in records:
        if not (scope.everything or any(path_is_under(record.region_path, p) for p in scope.officer_paths)):
            raise ScopeViolation()
    changed = 0
    for record in records:
        if record.is_flagged != flagged:
            record.is_flagged = flagged
            record.flag_reasons = (reason or gettext("Flagged by an officer")) if flagged else None
            changed += 1
    db.session.flush()
    return changed
