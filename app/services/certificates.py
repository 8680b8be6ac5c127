"""Certificates (志愿服务记录证明, DESIGN.md §5 "Certificate"): 谁组织谁记录，谁记录谁证明.

A volunteer asks a group for a certificate (我的证明 → 申请: one of their groups
that holds approved records of theirs, an optional date range, a purpose); the
group's own admins issue it for the records *that group* made (``group_id`` is the
group), or refuse it with a reason. The platform issues a record summary of all
approved records (kind ``summary``, issuer ``PLATFORM_ISSUER``) whenever the
volunteer asks.

A certificate is a snapshot: the JSON of everything it certifies is stored in
``snapshot_json`` with its SHA-256 in ``snapshot_hash``, and never changes. Its
number is random (``secrets``, 16 characters of an unambiguous alphabet), so
numbers cannot be guessed one from another. The QR code on the PDF opens
``/verify/<number>?t=<token>``, the token being an HMAC (a key derived from
SECRET_KEY) of the number and the snapshot hash: with it the public page shows
the masked holder, hours, issuer, date and whether the stored snapshot still
matches its hash; without it (or with a wrong one) only 有效 / 已撤回 / 不存在.
Public lookups are rate-limited per client address.

Who reads a certificate: its holder, the direct admins of the issuing group, and
officers whose region covers it (``readable_clause``). Who withdraws it: the
issuing group's admins, or officers in scope; withdrawn certificates verify as
withdrawn.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import date

from flask import current_app
from flask_babel import gettext
from sqlalchemy import and_, false, or_, select, true
from sqlalchemy.orm import selectinload

from app.extensions import db
from app.models import (
    Certificate, CertificateRequest, HonorLevel, IdType, RecordSource, RecordStatus, RequestStatus, ReviewStatus,
    ServiceRecord, Volunteer, VolunteerGroup,
)
from app.security import pii
from app.security.hardening import Budget, client_address
from app.security.scope import Scope, current_scope, ensure_administers, officer_clause, oversees, under
from app.services import honors as honors_service, record_book, reviews
from app.services.clock import today, utcnow
from app.services.errors import DomainError, ScopeViolation, ValidationFailed

KIND_GROUP, KIND_SUMMARY = "group", "summary"
# The issuer of the platform's record summary. Stored in the snapshot as the words the
# printed document carries, whatever language the page that asked for it was in.
PLATFORM_ISSUER = "志愿云平台"
# No 0/O, 1/I/L: a number read aloud or typed from paper cannot be mistaken.
NUMBER_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
NUMBER_LENGTH = 16  # 31**16, about 2**79 numbers
NUMBER_ATTEMPTS = 8
TOKEN_LENGTH = 24  # hex characters of the HMAC (96 bits)
FIELD_MAX_LENGTH = 64  # person in charge, handler, contact (the columns)
PURPOSE_MAX_LENGTH = 255
REASON_MAX_LENGTH = reviews.REASON_MAX_LENGTH
PAGE_SIZE = 50
SNAPSHOT_VERSION = 1

PENDING, ISSUED, REFUSED = RequestStatus.PENDING, RequestStatus.APPROVED, RequestStatus.REJECTED


def request_status_labels() -> dict[str, str]:
    """Labels of a certificate request's status as the volunteer reads them."""
    return {PENDING: gettext("Pending"), ISSUED: gettext("Issued"), REFUSED: gettext("Refused")}


def kind_labels() -> dict[str, str]:
    return {KIND_GROUP: gettext("Group certificate"), KIND_SUMMARY: gettext("Record summary")}


# --- Numbers, hashes, tokens ---


def new_number() -> str:
    """A fresh random certificate number (not derived from any other number), unused so far.

    :raises DomainError: no free number after a few tries (practically impossible)
    """
    for _ in range(NUMBER_ATTEMPTS):
        number = "".join(secrets.choice(NUMBER_ALPHABET) for _ in range(NUMBER_LENGTH))
        if db.session.scalar(select(Certificate.id).where(Certificate.number == number)) is None:
            return number
    raise DomainError(gettext("No certificate number could be allocated. Please try again."))


def normalize_number(text) -> str | None:
    """A number as people type it (spaces, dashes, lower case) in stored form, or None
    when it cannot be one (wrong length or characters)."""
    if not isinstance(text, str):
        return None
    value = "".join(ch for ch in text if ch not in " -").upper()
    if len(value) != NUMBER_LENGTH or any(ch not in NUMBER_ALPHABET for ch in value):
        return None
    return value


def dump_snapshot(snapshot: dict) -> str:
    """The canonical JSON of a snapshot (sorted keys, no spaces, UTF-8 text)."""
    return json.dumps(snapshot, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def hash_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _token_key() -> bytes:
    """A key for verification tokens only, derived from SECRET_KEY."""
    secret = current_app.config["SECRET_KEY"]
    secret = secret.encode() if isinstance(secret, str) else bytes(secret)
    return hmac.new(secret, b"volunteer-cloud/certificate-verify", hashlib.sha256).digest()


def verification_token(certificate: Certificate) -> str:
    """The token the QR code carries: an HMAC of the number and the snapshot's hash."""
    message = f"{certificate.number}:{certificate.snapshot_hash}".encode()
    return hmac.new(_token_key(), message, hashlib.sha256).hexdigest()[:TOKEN_LENGTH]


def token_matches(certificate: Certificate, token) -> bool:
    """True when ``token`` is this certificate's verification token (constant time)."""
    if not isinstance(token, str) or not token or len(token) > 128:
        return False
    return hmac.compare_digest(verification_token(certificate).encode(), token.strip().lower().encode())


def snapshot_matches(certificate: Certificate) -> bool:
    """True when the stored snapshot still hashes to the stored hash."""
    return hmac.compare_digest(hash_text(certificate.snapshot_json or ""), certificate.snapshot_hash or "")


def snapshot_of(certificate: Certificate) -> dict:
    """The stored snapshot as data ({} when it is not readable JSON any more)."""
    try:
        data = json.loads(certificate.snapshot_json or "")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


# --- Input ---


def parse_period(from_text, to_text) -> tuple[date | None, date | None]:
    """An optional date range typed as YYYY-MM-DD (either end may stay blank).

    :raises ValidationFailed: a date that is not one, or the start after the end
    """
    def parse(text, field):
        value = (text or "").strip() if isinstance(text, str) else ""
        if not value:
            return None
        try:
            if len(value) != 10:
                raise ValueError
            return date.fromisoformat(value)
        except ValueError:
            problems[field] = [gettext("Enter the date as YYYY-MM-DD.")]
            return None

    problems: dict[str, list[str]] = {}
    start, end = parse(from_text, "period_from"), parse(to_text, "period_to")
    if start and end and start > end:
        problems["period_to"] = [gettext("The end of the period cannot be before its start.")]
    if problems:
        raise ValidationFailed(fields=problems)
    return start, end


def _clean(text, limit: int, *, required: str | None = None, field: str, problems: dict) -> str | None:
    value = " ".join(text.split()) if isinstance(text, str) else ""
    if not value:
        if required:
            problems[field] = [required]
        return None
    if len(value) > limit:
        problems[field] = [gettext("At most %(n)s characters.", n=limit)]
    return value


# --- The records a certificate certifies ---


@dataclass(frozen=True)
class CertifiedRecord:
    """One approved service record with its approved corrections applied."""

    id: int
    project: str
    position: str
    group: str
    served_on: date
    minutes: int


def _in_period(day: date, start: date | None, end: date | None) -> bool:
    return (start is None or day >= start) and (end is None or day <= end)


def certified_records(volunteer: Volunteer, *, group: VolunteerGroup | None = None,
                      period_from: date | None = None, period_to: date | None = None) -> list[CertifiedRecord]:
    """The volunteer's approved records — only ``group``'s own (``group_id``) when given —
    served in the period, oldest first, each with its approved corrections folded in;
    records corrected down to nothing are left out. Four queries whatever the count."""
    query = select(ServiceRecord).where(ServiceRecord.volunteer_id == volunteer.id,
                                        ServiceRecord.status == RecordStatus.APPROVED)
    if group is not None:
        query = query.where(ServiceRecord.group_id == group.id)
    if period_from is not None:
        query = query.where(ServiceRecord.served_on >= period_from)
    if period_to is not None:
        query = query.where(ServiceRecord.served_on <= period_to)
    rows = list(db.session.scalars(query.options(
        selectinload(ServiceRecord.project), selectinload(ServiceRecord.position),
        selectinload(ServiceRecord.group)).order_by(ServiceRecord.served_on, ServiceRecord.id)))
    corrections: dict[int, int] = {}
    for row in rows:
        if row.source == RecordSource.CORRECTION and row.corrects_id is not None:
            corrections[row.corrects_id] = corrections.get(row.corrects_id, 0) + row.minutes
    result = []
    for row in rows:
        if row.source == RecordSource.CORRECTION:
            continue
        minutes = row.minutes + corrections.get(row.id, 0)
        if minutes > 0:
            result.append(CertifiedRecord(
                id=row.id, project=row.project_name, position=row.position_name,
                group=row.group_name, served_on=row.served_on, minutes=minutes))
    return result


def certificate_groups(volunteer: Volunteer | None) -> list[VolunteerGroup]:
    """申请: the groups holding approved records of the volunteer, by name (two queries)."""
    if volunteer is None:
        return []
    ids = select(ServiceRecord.group_id).where(
        ServiceRecord.volunteer_id == volunteer.id, ServiceRecord.status == RecordStatus.APPROVED).distinct()
    return list(db.session.scalars(select(VolunteerGroup).where(VolunteerGroup.id.in_(ids))
                                   .order_by(VolunteerGroup.name, VolunteerGroup.id)))


# --- 我的证明 → 申请 ---


def _ensure_approved(volunteer: Volunteer | None) -> Volunteer:
    if volunteer is None or volunteer.status != ReviewStatus.APPROVED or not volunteer.volunteer_no:
        raise DomainError(gettext("Only approved volunteers with a volunteer number can ask for a certificate."))
    return volunteer


def request_certificate(volunteer: Volunteer, group: VolunteerGroup | None, *, period_from: date | None = None,
                        period_to: date | None = None, purpose: str | None = None) -> CertificateRequest:
    """申请: ask ``group`` for a certificate of the records it made of the volunteer,
    optionally for a period; one pending request per group at a time.

    :raises DomainError: not an approved volunteer, no group chosen, the group holds no
        approved records of theirs (in the period), a request to it already pending
    :raises ValidationFailed: purpose too long, the period backwards
    """
    _ensure_approved(volunteer)
    problems: dict[str, list[str]] = {}
    purpose = _clean(purpose, PURPOSE_MAX_LENGTH, field="purpose", problems=problems)
    if period_from and period_to and period_from > period_to:
        problems["period_to"] = [gettext("The end of the period cannot be before its start.")]
    if group is None:
        problems["group"] = [gettext("Choose the group that recorded your service.")]
    if problems:
        raise ValidationFailed(fields=problems)
    # Serialise requests of one volunteer (PostgreSQL), so a double click makes one request.
    db.session.scalar(select(Volunteer.id).where(Volunteer.id == volunteer.id).with_for_update())
    if not certified_records(volunteer, group=group, period_from=period_from, period_to=period_to):
        raise DomainError(gettext("%(group)s holds no approved service records of yours%(period)s.",
                                  group=group.name, period=_period_words(period_from, period_to)))
    pending = db.session.scalar(select(CertificateRequest.id).where(
        CertificateRequest.volunteer_id == volunteer.id, CertificateRequest.group_id == group.id,
        CertificateRequest.status == PENDING))
    if pending is not None:
        raise DomainError(gettext("Your certificate request to %(group)s is still pending; wait for its "
                                  "decision before asking again.", group=group.name))
    row = CertificateRequest(
        volunteer_id=volunteer.id, group_id=group.id, group_path=group.group_path, region_id=group.region_id,
        region_path=group.region_path, volunteer_name=volunteer.real_name, volunteer_no=volunteer.volunteer_no,
        period_from=period_from, period_to=period_to, purpose=purpose, status=PENDING,
        created_by_fk=reviews.acting_user_id())
    db.session.add(row)
    db.session.flush()
    return row


def _period_words(period_from: date | None, period_to: date | None) -> str:
    if period_from and period_to:
        return gettext(" from %(start)s to %(end)s", start=period_from.isoformat(), end=period_to.isoformat())
    if period_from:
        return gettext(" from %(start)s", start=period_from.isoformat())
    if period_to:
        return gettext(" until %(end)s", end=period_to.isoformat())
    return ""


def my_certificates(volunteer: Volunteer | None, *, page: int = 0,
                    page_size: int = PAGE_SIZE) -> tuple[list[Certificate], bool]:
    """One page of the volunteer's certificates, newest first (with their groups); more?"""
    if volunteer is None:
        return [], False
    page_size = max(1, min(page_size, PAGE_SIZE))
    rows = list(db.session.scalars(
        select(Certificate).where(Certificate.volunteer_id == volunteer.id)
        .order_by(Certificate.issued_on.desc(), Certificate.id.desc())
        .offset(max(page, 0) * page_size).limit(page_size + 1)))
    return rows[:page_size], len(rows) > page_size


def my_requests(volunteer: Volunteer | None, *, limit: int = PAGE_SIZE) -> list[CertificateRequest]:
    """The volunteer's latest certificate requests, newest first, with their groups."""
    if volunteer is None:
        return []
    return list(db.session.scalars(
        select(CertificateRequest).where(CertificateRequest.volunteer_id == volunteer.id)
        .options(selectinload(CertificateRequest.group))
        .order_by(CertificateRequest.created_on.desc(), CertificateRequest.id.desc()).limit(limit)))


# --- 团体管理 → 证明申请 ---


def pending_requests_clause(scope: Scope):
    """SQL predicate: pending requests to the groups ``scope`` administers *directly*."""
    if scope.everything:
        return CertificateRequest.status == PENDING
    if not scope.group_ids:
        return false()
    return and_(CertificateRequest.status == PENDING, CertificateRequest.group_id.in_(sorted(scope.group_ids)))


def pending_requests(scope: Scope, *, page: int = 0,
                     page_size: int = PAGE_SIZE) -> tuple[list[CertificateRequest], bool]:
    """One page of pending requests the scope decides, oldest first, groups loaded; more?"""
    page_size = max(1, min(page_size, PAGE_SIZE))
    rows = list(db.session.scalars(
        select(CertificateRequest).where(pending_requests_clause(scope))
        .options(selectinload(CertificateRequest.group))
        .order_by(CertificateRequest.created_on, CertificateRequest.id)
        .offset(max(page, 0) * page_size).limit(page_size + 1)))
    return rows[:page_size], len(rows) > page_size


def request_for_admin(request_id: int | None, scope: Scope | None = None) -> CertificateRequest:
    """A pending request to one of the user's own groups.

    :raises ScopeViolation: unknown, decided already, or another group's (one answer: 404)
    """
    scope = scope or current_scope()
    row = db.session.scalar(select(CertificateRequest).where(
        CertificateRequest.id == request_id, pending_requests_clause(scope))) if request_id else None
    if row is None:
        raise ScopeViolation()
    return row


def _lock_pending(request_row: CertificateRequest, scope: Scope) -> CertificateRequest:
    """Re-read the request under a row lock; it must still be pending and the user's."""
    ensure_administers(request_row.group, scope)
    locked = db.session.scalar(select(CertificateRequest).where(CertificateRequest.id == request_row.id)
                               .with_for_update().execution_options(populate_existing=True))
    if locked is None:
        raise ScopeViolation()
    if locked.status != PENDING:
        raise DomainError(gettext("This request has already been decided."))
    return locked


def contact_of(group: VolunteerGroup) -> str:
    """The group's contact person and phone, to prefill a certificate's 联系方式 (the
    group set them for people to call; a closed group's refusal names them too)."""
    phone = pii.decrypt(group.contact_phone_enc) if group.contact_phone_enc else None
    return " ".join(part for part in (group.contact_name, phone) if part)[:FIELD_MAX_LENGTH]


def issue_certificate(request_row: CertificateRequest, *, person_in_charge: str | None, handler: str | None,
                      contact: str | None, scope: Scope | None = None) -> Certificate:
    """出具: the certificate of the group's own approved records of the volunteer (in the
    request's period), signed by its person in charge and handler; the request is
    marked issued.

    :raises ScopeViolation: not an admin of the request's group
    :raises ValidationFailed: person in charge, handler or contact missing or too long
    :raises DomainError: the request was decided meanwhile, or the group holds no
        approved records of the volunteer in the period
    """
    scope = scope or current_scope()
    problems: dict[str, list[str]] = {}
    person_in_charge = _clean(person_in_charge, FIELD_MAX_LENGTH, field="person_in_charge", problems=problems,
                              required=gettext("Name the person in charge."))
    handler = _clean(handler, FIELD_MAX_LENGTH, field="handler", problems=problems,
                     required=gettext("Name the handler."))
    contact = _clean(contact, FIELD_MAX_LENGTH, field="contact", problems=problems,
                     required=gettext("Give a contact for enquiries."))
    if problems:
        raise ValidationFailed(fields=problems)
    locked = _lock_pending(request_row, scope)
    group, volunteer = locked.group, locked.volunteer
    records = certified_records(volunteer, group=group, period_from=locked.period_from, period_to=locked.period_to)
    if not records:
        raise DomainError(gettext("%(group)s holds no approved service records of %(name)s%(period)s: there is "
                                  "nothing to certify. Refuse the request with a reason instead.",
                                  group=group.name, name=locked.volunteer_name,
                                  period=_period_words(locked.period_from, locked.period_to)))
    certificate = _make_certificate(
        volunteer, records, kind=KIND_GROUP, group=group, issuer=group.name, person_in_charge=person_in_charge,
        handler=handler, contact=contact, period_from=locked.period_from, period_to=locked.period_to,
        purpose=locked.purpose)
    locked.status, locked.certificate_id = ISSUED, certificate.id
    locked.decided_on, locked.decided_by_fk, locked.reason = utcnow(), reviews.acting_user_id(), None
    db.session.flush()
    return certificate


def refuse_request(request_row: CertificateRequest, reason: str | None, *, scope: Scope | None = None
                   ) -> CertificateRequest:
    """拒绝: refuse a pending request with a reason the volunteer reads.

    :raises ScopeViolation: not an admin of the request's group
    :raises DomainError: no reason, reason too long, decided meanwhile
    """
    scope = scope or current_scope()
    reason = " ".join(reason.split()) if isinstance(reason, str) else ""
    if not reason:
        raise ValidationFailed(fields={"reason": [gettext("A refusal needs a reason the volunteer can read.")]})
    if len(reason) > REASON_MAX_LENGTH:
        raise ValidationFailed(fields={"reason": [gettext("The reason may have at most %(n)s characters.",
                                                          n=REASON_MAX_LENGTH)]})
    locked = _lock_pending(request_row, scope)
    locked.status, locked.reason = REFUSED, reason
    locked.decided_on, locked.decided_by_fk = utcnow(), reviews.acting_user_id()
    db.session.flush()
    return locked


# --- The platform's record summary ---


def issue_summary(volunteer: Volunteer) -> Certificate:
    """The platform's record summary of all the volunteer's approved records, issued at
    once by the system. Asked again the same day with nothing changed, the summary
    already issued that day is returned instead of a new one.

    :raises DomainError: not an approved volunteer, or no approved records yet
    """
    _ensure_approved(volunteer)
    db.session.scalar(select(Volunteer.id).where(Volunteer.id == volunteer.id).with_for_update())
    records = certified_records(volunteer)
    if not records:
        raise DomainError(gettext("You have no approved service records yet: there is nothing to summarise."))
    body = _snapshot(volunteer, records, kind=KIND_SUMMARY, group=None, issuer=PLATFORM_ISSUER,
                     person_in_charge=None, handler=None, contact=None, period_from=None, period_to=None,
                     purpose=None, number="", issued_on=today())
    for existing in db.session.scalars(select(Certificate).where(
            Certificate.volunteer_id == volunteer.id, Certificate.kind == KIND_SUMMARY,
            Certificate.issued_on == today(), Certificate.is_withdrawn.is_(False))):
        if {**snapshot_of(existing), "number": ""} == body and snapshot_matches(existing):
            return existing
    return _make_certificate(volunteer, records, kind=KIND_SUMMARY, group=None, issuer=PLATFORM_ISSUER,
                             person_in_charge=None, handler=None, contact=None, period_from=None, period_to=None,
                             purpose=None)


# --- Making the snapshot ---


def _hours(minutes: int) -> str:
    """Minutes as hours with up to two decimals (``150`` → ``2.5``)."""
    return f"{minutes / 60:.2f}".rstrip("0").rstrip(".") or "0"


def _snapshot(volunteer: Volunteer, records: list[CertifiedRecord], *, kind: str, group: VolunteerGroup | None,
              issuer: str, person_in_charge, handler, contact, period_from, period_to, purpose, number: str,
              issued_on: date) -> dict:
    """Everything the certificate certifies, as plain data (its text is the snapshot)."""
    trainings = [t for t in record_book.trainings_of(volunteer)
                 if (group is None or t.group_id == group.id) and _in_period(t.trained_on, period_from, period_to)]
    honors = [h for h in honors_service.honors_of_volunteer(volunteer)
              if _in_period(h.awarded_on, period_from, period_to)]
    total = sum(r.minutes for r in records)
    try:
        id_type_label = str(IdType(volunteer.id_type).label)
    except ValueError:
        id_type_label = volunteer.id_type
    return {
        "version": SNAPSHOT_VERSION,
        "kind": kind,
        "number": number,
        "issued_on": issued_on.isoformat(),
        "holder": {
            "name": volunteer.real_name,
            "id_type": volunteer.id_type,
            "id_type_label": id_type_label,
            "id_number_masked": volunteer.id_number_masked,
            "volunteer_no": volunteer.volunteer_no,
        },
        "period": {"from": period_from.isoformat() if period_from else None,
                   "to": period_to.isoformat() if period_to else None},
        "purpose": purpose,
        "total_minutes": total,
        "total_hours": _hours(total),
        "records": [{"project": r.project, "position": r.position, "group": r.group,
                     "served_on": r.served_on.isoformat(), "minutes": r.minutes, "hours": _hours(r.minutes)}
                    for r in records],
        "trainings": [{"title": t.title, "organiser": t.provider or "", "trained_on": t.trained_on.isoformat(),
                       "minutes": t.minutes or 0, "hours": _hours(t.minutes or 0)} for t in trainings],
        "honors": [{"title": h.title, "level": h.level,
                    "level_label": str(HonorLevel.labels().get(h.level, h.level)),
                    "awarding_body": h.awarding_body, "document_no": h.document_no or "",
                    "awarded_on": h.awarded_on.isoformat()} for h in honors],
        "issuer": issuer,
        "group_id": group.id if group is not None else None,
        "person_in_charge": person_in_charge,
        "handler": handler,
        "contact": contact,
    }


def _content(records: list[CertifiedRecord]) -> str:
    """A short description of the service: the projects and their hours."""
    by_project: dict[str, int] = {}
    for record in records:
        by_project[record.project] = by_project.get(record.project, 0) + record.minutes
    text = "; ".join(f"{name} {_hours(minutes)}h" for name, minutes in by_project.items())
    return text[:2000]


def _make_certificate(volunteer: Volunteer, records: list[CertifiedRecord], *, kind: str,
                      group: VolunteerGroup | None, issuer: str, person_in_charge, handler, contact,
                      period_from, period_to, purpose) -> Certificate:
    number, issued_on = new_number(), today()
    snapshot = _snapshot(volunteer, records, kind=kind, group=group, issuer=issuer,
                         person_in_charge=person_in_charge, handler=handler, contact=contact,
                         period_from=period_from, period_to=period_to, purpose=purpose, number=number,
                         issued_on=issued_on)
    text = dump_snapshot(snapshot)
    # Group certificates sit in the issuing group's region (its officers oversee it);
    # the platform's summary in the volunteer's home region.
    home = group if group is not None else volunteer
    certificate = Certificate(
        number=number, volunteer_id=volunteer.id, group_id=group.id if group is not None else None,
        group_path=group.group_path if group is not None else None, region_id=home.region_id,
        region_path=home.region_path, minutes=snapshot["total_minutes"], content=_content(records),
        issuer=issuer, person_in_charge=person_in_charge, handler=handler, contact=contact, issued_on=issued_on,
        snapshot_json=text, snapshot_hash=hash_text(text), is_withdrawn=False, kind=kind,
        period_from=period_from, period_to=period_to, created_by_fk=reviews.acting_user_id())
    db.session.add(certificate)
    db.session.flush()
    return certificate


# --- Reading and withdrawing ---


def readable_clause(scope: Scope):
    """SQL predicate: certificates the scope may read — its holder's own, those issued
    by groups it administers directly, those in its officer regions (not honors
    editors': a certificate is no honor)."""
    if scope.everything:
        return true()
    parts = [under(Certificate.region_path, path) for path in scope.officer_paths]
    if scope.group_ids:
        parts.append(Certificate.group_id.in_(sorted(scope.group_ids)))
    if scope.volunteer_id is not None:
        parts.append(Certificate.volunteer_id == scope.volunteer_id)
    return or_(*parts) if parts else false()


def certificate_for_reader(certificate_id: int | None, scope: Scope | None = None) -> Certificate:
    """The certificate with this id if the user may read it.

    :raises ScopeViolation: unknown or not theirs to read (one answer: 404)
    """
    scope = scope or current_scope()
    row = db.session.scalar(select(Certificate).where(
        Certificate.id == certificate_id, readable_clause(scope))) if certificate_id else None
    if row is None:
        raise ScopeViolation()
    return row


def issued_by(scope: Scope, *, page: int = 0, page_size: int = PAGE_SIZE) -> tuple[list[Certificate], bool]:
    """One page of the certificates issued by the groups ``scope`` administers
    directly, newest first (with their groups and holders); more?"""
    if not scope.everything and not scope.group_ids:
        return [], False
    page_size = max(1, min(page_size, PAGE_SIZE))
    query = select(Certificate).where(Certificate.kind == KIND_GROUP)
    if not scope.everything:
        query = query.where(Certificate.group_id.in_(sorted(scope.group_ids)))
    rows = list(db.session.scalars(
        query.options(selectinload(Certificate.group), selectinload(Certificate.volunteer))
        .order_by(Certificate.issued_on.desc(), Certificate.id.desc())
        .offset(max(page, 0) * page_size).limit(page_size + 1)))
    return rows[:page_size], len(rows) > page_size


def oversight_clause(scope: Scope):
    """SQL predicate: certificates in the officer's regions (区域监管 → 证明管理): group
    certificates by the issuing group's region, record summaries by the holder's home
    region. Officer bindings only; everything for the platform admin."""
    return officer_clause(Certificate.region_path, scope)


OVERSIGHT_VALID, OVERSIGHT_WITHDRAWN = "valid", "withdrawn"


def region_certificates(scope: Scope, *, status: str = "", number: str = "", page: int = 0,
                        page_size: int = PAGE_SIZE) -> tuple[list[Certificate], bool]:
    """证明管理: one page of the certificates in the officer's regions, newest first (with
    their holders); ``status`` ``valid`` or ``withdrawn`` narrows them, ``number`` (as
    people type it) finds one. Returns the rows and whether more follow."""
    page_size = max(1, min(page_size, PAGE_SIZE))
    query = select(Certificate).where(oversight_clause(scope))
    if status == OVERSIGHT_VALID:
        query = query.where(Certificate.is_withdrawn.is_(False))
    elif status == OVERSIGHT_WITHDRAWN:
        query = query.where(Certificate.is_withdrawn.is_(True))
    if number:
        wanted = normalize_number(number)
        query = query.where(Certificate.number == wanted if wanted else false())
    rows = list(db.session.scalars(
        query.options(selectinload(Certificate.volunteer))
        .order_by(Certificate.issued_on.desc(), Certificate.id.desc())
        .offset(max(page, 0) * page_size).limit(page_size + 1)))
    return rows[:page_size], len(rows) > page_size


def certificate_for_officer(certificate_id: int | None, scope: Scope | None = None) -> Certificate:
    """The certificate with this id if it lies in the officer's regions.

    :raises ScopeViolation: unknown or outside them (one answer: 404)
    """
    scope = scope or current_scope()
    row = db.session.scalar(select(Certificate).where(
        Certificate.id == certificate_id, oversight_clause(scope))) if certificate_id else None
    if row is None:
        raise ScopeViolation()
    return row


def may_withdraw(certificate: Certificate, scope: Scope | None = None) -> bool:
    """The issuing group's own admins, officers whose region covers it, the platform admin.
    Never the holder or any other volunteer (their scope reads their own certificates only)."""
    scope = scope or current_scope()
    if scope.everything:
        return True
    if certificate.group_id is not None and certificate.group_id in scope.group_ids:
        return True
    return oversees(certificate.region_path, scope)


def withdraw_certificate(certificate: Certificate, reason: str | None, *, scope: Scope | None = None
                         ) -> Certificate:
    """撤回: the certificate verifies as withdrawn from now on; the reason is kept.

    :raises ScopeViolation: neither an admin of the issuing group nor an officer in scope
    :raises DomainError: no reason, reason too long, withdrawn already
    """
    scope = scope or current_scope()
    if certificate is None or not may_withdraw(certificate, scope):
        raise ScopeViolation()
    reason = " ".join(reason.split()) if isinstance(reason, str) else ""
    if not reason:
        raise ValidationFailed(fields={"reason": [gettext("Give the reason for withdrawing the certificate.")]})
    if len(reason) > REASON_MAX_LENGTH:
        raise ValidationFailed(fields={"reason": [gettext("The reason may have at most %(n)s characters.",
                                                          n=REASON_MAX_LENGTH)]})
    locked = db.session.scalar(select(Certificate).where(Certificate.id == certificate.id)
                               .with_for_update().execution_options(populate_existing=True))
    if locked.is_withdrawn:
        raise DomainError(gettext("Certificate %(number)s has already been withdrawn.", number=locked.number))
    locked.is_withdrawn, locked.withdrawn_on, locked.withdraw_reason = True, utcnow(), reason
    db.session.flush()
    return locked


# --- Public verification (/verify/<number>) ---

VALID, WITHDRAWN, UNKNOWN = "valid", "withdrawn", "unknown"


@dataclass(frozen=True)
class Verification:
    """What the public page may say. ``details`` only with the right token."""

    number: str
    status: str  # valid / withdrawn / unknown
    details: dict | None = None


class TooManyLookups(DomainError):
    """This address looked up too many certificate numbers in the window."""

    code = 429


_LOOKUP_BUDGET = Budget("certificate-verify/address", "CERTIFICATE_VERIFY_ATTEMPTS", 30,
                        "CERTIFICATE_VERIFY_WINDOW_SECONDS", 60)


def count_lookup() -> None:
    """Count one public lookup from this client address.

    :raises TooManyLookups: the address used up its lookups (the message says how long to wait)
    """
    wait = _LOOKUP_BUDGET.spend(client_address() or "-")
    if wait:
        raise TooManyLookups(gettext("Too many certificate lookups from your address. Try again in %(seconds)s "
                                     "seconds.", seconds=wait))


def verify(number_text, token=None) -> Verification:
    """Look a certificate up by number: its status, and with the right token what it
    certifies and whether its stored snapshot still matches its hash.

    Unknown numbers, malformed ones and wrong tokens answer in the same shape as a
    bare lookup, so the page tells nothing more without the token.

    :raises TooManyLookups: rate limit reached for this address
    """
    count_lookup()
    number = normalize_number(number_text)
    certificate = db.session.scalar(select(Certificate).where(Certificate.number == number)) if number else None
    shown = number or (number_text if isinstance(number_text, str) else "")[:NUMBER_LENGTH + 8]
    if certificate is None:
        return Verification(number=shown, status=UNKNOWN)
    status = WITHDRAWN if certificate.is_withdrawn else VALID
    if not token_matches(certificate, token):
        return Verification(number=certificate.number, status=status)
    return Verification(number=certificate.number, status=status, details=_details(certificate))


def _details(certificate: Certificate) -> dict:
    """What the token shows: read from the stored snapshot, with whether it still matches
    (its hash, and the certificate's own columns)."""
    from app.services.volunteers import masked_name

    snapshot = snapshot_of(certificate)
    holder = snapshot.get("holder") if isinstance(snapshot.get("holder"), dict) else {}
    matches = (snapshot_matches(certificate) and snapshot.get("number") == certificate.number
               and snapshot.get("total_minutes") == certificate.minutes
               and snapshot.get("issuer") == certificate.issuer)
    minutes = snapshot.get("total_minutes") if isinstance(snapshot.get("total_minutes"), int) else certificate.minutes
    return {
        "holder": masked_name(holder.get("name") or ""),
        "volunteer_no": _mask_number(holder.get("volunteer_no") or ""),
        "hours": _hours(minutes),
        "issuer": certificate.issuer,
        "issued_on": certificate.issued_on.isoformat(),
        "kind": certificate.kind,
        "period_from": certificate.period_from.isoformat() if certificate.period_from else None,
        "period_to": certificate.period_to.isoformat() if certificate.period_to else None,
        "snapshot_matches": bool(matches),
        "withdrawn_on": certificate.withdrawn_on.date().isoformat() if certificate.withdrawn_on else None,
    }


def _mask_number(value: str) -> str:
    """A volunteer number with its middle hidden (``410202…0123`` style)."""
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]
