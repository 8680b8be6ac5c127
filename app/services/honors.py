"""Honors (表彰激励): recorded, edited and withdrawn by honors editors of a prefecture
or above, for recipients inside their region (DESIGN.md §4); read in scope, on the
volunteer's card and record, on the group's card and on certificates.

An honor may carry one attachment (a scan of the award document): PDF, JPEG or
PNG, at most 5 MB, its type decided by the file's first bytes (never by its name
or the browser's word), kept in the row (``attachment_data``, deferred).
"""
from __future__ import annotations

import os
import unicodedata
from typing import IO

from flask_babel import gettext
from sqlalchemy import select

from app.extensions import db
from app.models import Honor, HonorLevel, Region, Volunteer, VolunteerGroup
from app.security.scope import Scope, current_scope, is_in_scope, path_is_under
from app.services.errors import ScopeViolation, ValidationFailed

TITLE_MAX = AWARDING_BODY_MAX = 120  # Honor.title, Honor.awarding_body
DOCUMENT_NO_MAX = 64  # Honor.document_no
ATTACHMENT_MAX_BYTES = 5 * 1024 * 1024
ATTACHMENT_NAME_MAX = 255  # Honor.attachment_name
# Magic bytes -> (media type, file extension). Only these three are accepted.
ATTACHMENT_TYPES = (
    (b"%PDF-", "application/pdf", ".pdf"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
)
_SAME_TYPE = {".pdf": (".pdf",), ".jpg": (".jpg", ".jpeg"), ".png": (".png",)}


def _prefecture_or_above(path: str) -> bool:
    """True when the region ending ``path`` is a prefecture, a province or the nation,
    judged from its code (DESIGN.md §4: levels come from the code)."""
    from app.services.regions import level_of

    code = (path or "").rstrip("/").rsplit("/", 1)[-1]
    try:
        return level_of(code) <= Region.PREFECTURE
    except ValueError:
        return False


def editing_paths(scope: Scope | None = None) -> tuple[str, ...]:
    """The regions in which the user may record honors: honors-editor bindings at
    prefecture level or above. A county-level binding cannot be made (accounts.bind_region
    refuses it); one that exists anyway (written around the service) grants nothing."""
    scope = scope or current_scope()
    return tuple(p for p in scope.honors_paths if _prefecture_or_above(p))


def _ensure_may_edit(region_path: str) -> None:
    """Refuse unless the user's honors-editor bindings cover ``region_path``."""
    scope = current_scope()
    if scope.everything:
        return
    paths = editing_paths(scope)
    if not paths:
        raise ValidationFailed(gettext(
            "Only honors editors of a prefecture-level city or above may record honors."))
    if not any(path_is_under(region_path, p) for p in paths):
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
    from app.services.clock import today

    errors = []
    honor.title = (honor.title or "").strip()
    honor.awarding_body = (honor.awarding_body or "").strip()
    honor.document_no = (honor.document_no or "").strip() or None
    if not honor.title:
        errors.append(gettext("Title is required."))
    elif len(honor.title) > TITLE_MAX:
        errors.append(gettext("The title can be at most %(n)s characters long.", n=TITLE_MAX))
    if honor.level not in set(HonorLevel):
        errors.append(gettext("Level must be national, provincial or prefecture."))
    if not honor.awarding_body:
        errors.append(gettext("Awarding body is required."))
    elif len(honor.awarding_body) > AWARDING_BODY_MAX:
        errors.append(gettext("The awarding body can be at most %(n)s characters long.", n=AWARDING_BODY_MAX))
    if honor.document_no and len(honor.document_no) > DOCUMENT_NO_MAX:
        errors.append(gettext("The document number can be at most %(n)s characters long.", n=DOCUMENT_NO_MAX))
    if honor.awarded_on is None:
        errors.append(gettext("Award date is required."))
    elif honor.awarded_on > today():
        errors.append(gettext("The award date cannot be in the future."))
    if errors:
        raise ValidationFailed(*errors)


def award_honor(honor: Honor, *, volunteer: Volunteer | None = None,
                group: VolunteerGroup | None = None, attachment=None) -> Honor:
    """Validate a new honor and place it in its recipient's region.

    ``attachment`` is an uploaded file (``.filename`` and ``.stream`` or ``.read``),
    or None / a file input left empty.

    :raises ValidationFailed: fields missing, no or two recipients, not an honors editor,
        an attachment of the wrong type or size
    :raises ScopeViolation: the recipient lies outside the editor's honors region
    """
    _validate_fields(honor)
    _apply_recipient(honor, volunteer, group)
    if _has_file(attachment):
        set_attachment(honor, attachment.filename, _stream(attachment))
    if honor not in db.session:
        db.session.add(honor)
    db.session.flush()
    return honor


def update_honor(honor: Honor, *, attachment=None, remove_attachment: bool = False) -> Honor:
    """Validate an edited honor; the recipient stays, the editor must cover its region.
    A new attachment replaces the old one; ``remove_attachment`` drops it."""
    _ensure_may_edit(honor.region_path)
    _validate_fields(honor)
    if _has_file(attachment):
        set_attachment(honor, attachment.filename, _stream(attachment))
    elif remove_attachment:
        clear_attachment(honor)
    db.session.flush()
    return honor


def withdraw_honors(items: list[Honor], *, withdrawn: bool = True) -> int:
    """Withdraw (撤销) honors, or restore withdrawn ones (``withdrawn=False``), all or
    none; returns how many changed (the others are left as they are). The editor must
    cover every honor's region.

    :raises ValidationFailed: not an honors editor
    :raises ScopeViolation: an honor outside the editor's honors region
    """
    for honor in items:
        _ensure_may_edit(honor.region_path)
    changed = [h for h in items if bool(h.is_withdrawn) != withdrawn]
    for honor in changed:
        honor.is_withdrawn = withdrawn
    db.session.flush()
    return len(changed)


# --- Attachments ---


def _has_file(upload) -> bool:
    return upload is not None and bool(getattr(upload, "filename", None))


def _stream(upload) -> IO[bytes]:
    return getattr(upload, "stream", upload)


def attachment_type(data: bytes) -> tuple[str, str] | None:
    """(media type, extension) of a PDF, JPEG or PNG, judged by the first bytes; else None."""
    for magic, media_type, extension in ATTACHMENT_TYPES:
        if data.startswith(magic):
            return media_type, extension
    return None


def _clean_name(filename: str, extension: str) -> str:
    """The uploaded file's own name, without folders or control characters, ending in
    the extension of its real type (a PNG called ``x.pdf`` is stored as ``x.pdf.png``)."""
    name = unicodedata.normalize("NFC", str(filename or ""))
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip().strip(".") or "attachment"
    stem, ext = os.path.splitext(name)
    if ext.lower() not in _SAME_TYPE[extension]:
        stem, ext = name, extension
    return stem[: ATTACHMENT_NAME_MAX - len(ext)] + ext


def set_attachment(honor: Honor, filename: str, stream: IO[bytes]) -> None:
    """Check and store an uploaded attachment on ``honor``.

    :raises ValidationFailed: larger than 5 MB, empty, or not a PDF, JPEG or PNG
    """
    data = stream.read(ATTACHMENT_MAX_BYTES + 1)
    if len(data) > ATTACHMENT_MAX_BYTES:
        raise ValidationFailed(fields={"attachment": [gettext(
            "The attachment is larger than %(mb)s MB.", mb=ATTACHMENT_MAX_BYTES // (1024 * 1024))]})
    kind = attachment_type(data)
    if kind is None:
        raise ValidationFailed(fields={"attachment": [gettext(
            "The attachment must be a PDF, JPEG or PNG file.")]})
    honor.attachment_type, extension = kind
    honor.attachment_name = _clean_name(filename, extension)
    honor.attachment_data = data


def clear_attachment(honor: Honor) -> None:
    honor.attachment_name = honor.attachment_type = honor.attachment_data = None


def may_read(honor: Honor, scope: Scope | None = None) -> bool:
    """Python twin of the Honor scope clause for one loaded row (no query): editors and
    officers of its region, admins of its group (or a parent), the volunteer honoured."""
    scope = scope or current_scope()
    if scope.everything:
        return True
    if any(path_is_under(honor.region_path, p) for p in scope.region_paths):
        return True
    if honor.group_path and any(path_is_under(honor.group_path, p) for p in scope.group_paths):
        return True
    return scope.volunteer_id is not None and honor.volunteer_id == scope.volunteer_id


def readable_honor(honor_id: int | None) -> Honor:
    """The honor with this id if the user may read it.

    :raises ScopeViolation: no such honor, or outside the user's scope
    """
    from app.security.scope import scope_clause

    honor = db.session.scalar(select(Honor).where(
        Honor.id == honor_id, scope_clause(Honor, current_scope()))) if honor_id else None
    if honor is None:
        raise ScopeViolation()
    return honor


# --- Reading honors (the volunteer's record, the group card, certificates) ---


def honors_of_volunteer(volunteer: Volunteer, *, limit: int | None = None) -> list[Honor]:
    """The volunteer's honors that are not withdrawn, newest first (all, or the latest ``limit``).

    Not scoped: the caller has already decided that the volunteer may be shown
    (their own record, a certificate being issued). The attachment stays unloaded.
    """
    query = (select(Honor).where(Honor.volunteer_id == volunteer.id, Honor.is_withdrawn.is_(False))
             .order_by(Honor.awarded_on.desc(), Honor.id.desc()))
    return list(db.session.scalars(query.limit(limit) if limit else query))


def honors_of_group(group: VolunteerGroup, *, limit: int | None = None) -> list[Honor]:
    """The group's honors that are not withdrawn, newest first (for its card)."""
    query = (select(Honor).where(Honor.volunteer_group_id == group.id, Honor.is_withdrawn.is_(False))
             .order_by(Honor.awarded_on.desc(), Honor.id.desc()))
    return list(db.session.scalars(query.limit(limit) if limit else query))
