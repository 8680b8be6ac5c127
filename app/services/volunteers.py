"""Volunteers: real-name registration, review and the national volunteer number."""
from __future__ import annotations

from datetime import date, datetime

from flask_babel import gettext
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import IdType, Region, ReviewStatus, Volunteer, VolunteerNumberCounter
from app.security import pii
from app.services.clock import today, utcnow
from app.services.errors import DomainError, ValidationFailed
from app.services.idcards import age_on, mod11_2, parse_resident_id

ADULT_AGE = 18
MIN_AGE = 8  # configurable: VOLUNTEER_MIN_AGE


def allocate_volunteer_no(province_code: str, year: int) -> str:
    """Return the next national volunteer number for (province, year).

    2-digit province + 4-digit year + 8-digit sequence + MOD 11-2 check character.
    The counter row is bumped with ``UPDATE … RETURNING``, which serialises
    concurrent approvals on the row lock (PostgreSQL) or the write lock (SQLite).
    """
    bump = (
        update(VolunteerNumberCounter)
        .where(VolunteerNumberCounter.province_code == province_code,
               VolunteerNumberCounter.year == year)
        .values(last_seq=VolunteerNumberCounter.last_seq + 1)
        .returning(VolunteerNumberCounter.last_seq)
    )
    seq = db.session.execute(bump).scalar()
    if seq is None:
        try:
            with db.session.begin_nested():
                db.session.execute(insert(VolunteerNumberCounter).values(
                    province_code=province_code, year=year, last_seq=1))
            seq = 1
        except IntegrityError:  # another approval created the row first
            seq = db.session.execute(bump).scalar()
    body = f"{province_code}{year:04d}{seq:08d}"
    return body + mod11_2(body)


def register_volunteer(
    *,
    real_name: str,
    id_number: str,
    email: str,
    region: Region,
    id_type: str = IdType.RESIDENT,
    phone: str | None = None,
    user=None,
    guardian_name: str | None = None,
    guardian_relation: str | None = None,
    guardian_phone: str | None = None,
    guardian_consent_on: datetime | None = None,
    **profile,
) -> Volunteer:
    """Create a pending volunteer after validating identity, age and guardian data.

    :raises ValidationFailed: with every problem found
    """
    errors: list[str] = []
    birth_date = gender = None
    if not real_name or not real_name.strip():
        errors.append(gettext("Real name is required."))
    if not email or "@" not in email:
        errors.append(gettext("A valid email address is required."))
    if id_type == IdType.RESIDENT:
        try:
            parsed = parse_resident_id(id_number)
            id_number, birth_date, gender = parsed.number, parsed.birth_date, parsed.gender
        except ValidationFailed as err:
            errors.extend(err.messages)
    if birth_date is not None:
        age = age_on(birth_date, today())
        if age < MIN_AGE:
            errors.append(gettext("Children under %(n)s cannot register.", n=MIN_AGE))
        elif age < ADULT_AGE and not (guardian_name and guardian_relation and guardian_phone
                                      and guardian_consent_on):
            errors.append(gettext("A minor needs a guardian's name, relation, phone and consent."))
    blind = pii.blind_index(id_type, id_number) if id_number else ""
    if blind and db.session.scalar(select(Volunteer.id).where(
            Volunteer.id_type == id_type, Volunteer.id_blind == blind)):
        errors.append(gettext("This ID number is registered already."))
    if errors:
        raise ValidationFailed(*errors)
    volunteer = Volunteer(
        user=user, real_name=real_name.strip(), id_type=id_type,
        id_number_enc=pii.encrypt(id_number), id_blind=blind, id_number_masked=pii.mask_id(id_number),
        birth_date=birth_date, gender=gender, email=email.strip(),
        phone_enc=pii.encrypt(phone), phone_masked=pii.mask_phone(phone),
        guardian_name=guardian_name, guardian_relation=guardian_relation,
        guardian_phone_enc=pii.encrypt(guardian_phone),
        guardian_phone_masked=pii.mask_phone(guardian_phone),
        guardian_consent_on=guardian_consent_on,
        region_id=region.id, region_path=region.path, status=ReviewStatus.PENDING, submitted_on=utcnow(),
        total_minutes=0, **profile,
    )
    db.session.add(volunteer)
    db.session.flush()
    return volunteer


def approve_volunteer(volunteer: Volunteer, *, on: date | None = None) -> Volunteer:
    """Approve a pending volunteer and give them a national volunteer number.

    The province is the home province at approval and never changes; a number
    kept from an import is not replaced.
    """
    if volunteer.status == ReviewStatus.APPROVED:
        raise DomainError(gettext("This volunteer is approved already."))
    if not volunteer.volunteer_no:
        year = (on or today()).year
        volunteer.volunteer_no = allocate_volunteer_no(volunteer.region_path[:2], year)
    volunteer.status = ReviewStatus.APPROVED
    volunteer.approved_on = utcnow()
    db.session.flush()
    return volunteer
