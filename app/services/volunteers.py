"""Volunteers: real-name registration, review and the national volunteer number."""
from __future__ import annotations

import re
from datetime import date, datetime

from flask import current_app, has_app_context
from flask_babel import gettext
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import IdType, Region, ReviewStatus, Volunteer, VolunteerNumberCounter
from app.security import pii
from app.services import reviews, rollups, settings
from app.services.clock import today, utcnow
from app.services.errors import DomainError, ScopeViolation, ValidationFailed
from app.services.idcards import age_on, mod11_2, parse_resident_id

ADULT_AGE = 18
DEFAULT_MIN_AGE = 8  # VOLUNTEER_MIN_AGE overrides it: see min_age()


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


# --- Registration (注册志愿者) ---

# Usernames are immutable (the city guide: 用户名一旦申请成功，不可修改): letters, digits
# and underscores, starting with a letter.
USERNAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,29}")
PASSWORD_MIN_LENGTH = 8
# Residence permits for people from Hong Kong, Macao and Taiwan follow GB 11643 with
# these address codes; passports and permanent residence cards carry no birth date
# we can read, so their holders enter it.
HMT_PERMIT_PREFIXES = ("810000", "820000", "830000")
PASSPORT_PATTERN = re.compile(r"[A-Z0-9]{5,20}")
FOREIGN_PR_PATTERN = re.compile(r"[A-Z]{3}\d{12}|9\d{16}[\dX]")
GENDERS = ("M", "F")


def min_age() -> int:
    """The youngest age that may register: the setting ``VOLUNTEER_MIN_AGE`` (default 8)."""
    return int(settings.value("VOLUNTEER_MIN_AGE"))


class _FieldErrors(dict):
    """Messages per input field, raised together as one ValidationFailed."""

    def add(self, field: str, message: str) -> None:
        self.setdefault(field, []).append(message)

    def raise_if_any(self) -> None:
        if self:
            raise ValidationFailed(fields=dict(self))


FieldErrors = _FieldErrors  # for other services (services.groups) that validate the same way


def _parse_date(value) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        return None


def _check_identity(errors: _FieldErrors, id_type, id_number, birth_date, gender):
    """Validate the ID number for its type; return (number, birth date, gender)."""
    number = pii.normalize_id(id_number or "")
    if id_type not in IdType.labels():
        errors.add("id_type", gettext("Please choose an ID type."))
        return number, None, None
    if not number:
        errors.add("id_number", gettext("Please enter the ID number."))
        if id_type in (IdType.RESIDENT, IdType.HMT_PERMIT):
            return number, None, None
    if id_type == IdType.RESIDENT:
        try:
            parsed = parse_resident_id(number)
        except ValidationFailed as err:
            for message in err.messages:
                errors.add("id_number", message)
            return number, None, None
        return parsed.number, parsed.birth_date, parsed.gender
    if id_type == IdType.HMT_PERMIT:
        born = None
        if len(number) == 18 and number[:6] in HMT_PERMIT_PREFIXES and number[:17].isdigit():
            try:
                born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
            except ValueError:
                born = None
        if born is None or born > today() or mod11_2(number[:17]) != number[17]:
            errors.add("id_number", gettext(
                "A residence permit number has 18 characters, starts with 810000, 820000 or 830000 "
                "and ends with a correct check digit."))
            return number, None, None
        return number, born, "M" if int(number[16]) % 2 else "F"
    pattern, message = {
        IdType.PASSPORT: (PASSPORT_PATTERN, gettext("A passport number has 5 to 20 letters or digits.")),
        IdType.FOREIGN_PR: (FOREIGN_PR_PATTERN, gettext(
            "A permanent residence card number has 3 letters and 12 digits, or 18 characters starting with 9.")),
    }[IdType(id_type)]
    if number and not pattern.fullmatch(number):
        errors.add("id_number", message)
    born = _parse_date(birth_date)
    if born is None or born.year < 1900 or born > today():
        errors.add("birth_date", gettext("Please enter a real birth date (YYYY-MM-DD)."))
        born = None
    if gender not in GENDERS:
        errors.add("gender", gettext("Please choose the gender."))
        gender = None
    return number, born, gender


def _email_taken(email: str, *, user_id: int | None = None, volunteer_id: int | None = None) -> bool:
    """Case-insensitively, is ``email`` used by another account or volunteer?"""
    user_model = current_app.appbuilder.sm.user_model
    lowered = email.lower()
    query = select(user_model.id).where(func.lower(user_model.email) == lowered)
    if user_id is not None:
        query = query.where(user_model.id != user_id)
    if db.session.scalar(query.limit(1)) is not None:
        return True
    query = select(Volunteer.id).where(func.lower(Volunteer.email) == lowered)
    if volunteer_id is not None:
        query = query.where(Volunteer.id != volunteer_id)
    return db.session.scalar(query.limit(1)) is not None


def _check_email_free(errors: _FieldErrors, email: str, volunteer: Volunteer | None = None) -> None:
    """Accounts' emails are unique, case-insensitively (a registration's own does not count)."""
    if email and "email" not in errors and _email_taken(
            email, user_id=volunteer.user_id if volunteer else None,
            volunteer_id=volunteer.id if volunteer else None):
        errors.add("email", gettext("This email address is used by another account."))


def _clean_volunteer(errors: _FieldErrors, *, region, phone, real_name=None, id_type=None,
                     id_number=None, email=None, birth_date=None, gender=None, guardian_name=None,
                     guardian_relation=None,
                     guardian_phone=None, guardian_consent=False, guardian_consent_on=None,
                     service_categories=None, skills=None, political_status=None, education=None,
                     require_phone=False, volunteer: Volunteer | None = None) -> dict:
    """Validate a registration's personal data; return the Volunteer column values.

    ``volunteer`` is the registration being corrected: its own ID and email do not
    count as taken. Errors are collected in ``errors`` under the input field names.
    """
    from email_validator import EmailNotValidError, validate_email

    from app.models import SERVICE_CATEGORIES

    real_name = (real_name or "").strip()
    if not real_name:
        errors.add("real_name", gettext("Real name is required."))
    elif len(real_name) > 64:
        errors.add("real_name", gettext("The name may have at most %(n)s characters.", n=64))
    id_type = id_type or IdType.RESIDENT
    number, born, gender = _check_identity(errors, id_type, id_number, birth_date, gender)
    blind = pii.blind_index(id_type, number) if number else ""
    if blind and "id_number" not in errors:
        query = select(Volunteer.id).where(Volunteer.id_type == id_type, Volunteer.id_blind == blind)
        if volunteer is not None:
            query = query.where(Volunteer.id != volunteer.id)
        if db.session.scalar(query.limit(1)) is not None:
            # Says nothing about the other registration (no name, no username).
            errors.add("id_number", gettext("This ID number has been registered"))
    email = (email or "").strip()
    try:
        email = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError:
        errors.add("email", gettext("A valid email address is required."))
    phone = (phone or "").strip() or None
    if phone is None:
        if require_phone:
            errors.add("mobile", gettext("Please enter a valid mobile phone number."))
    else:
        phone = normalize_mobile(phone)
        if phone is None:
            errors.add("mobile", gettext("Please enter a valid mobile phone number."))
    if region is None:
        errors.add("region_code", gettext("Please choose your home region, at least down to the county."))
    if born is not None:
        age = age_on(born, today())
        age_field = "id_number" if id_type in (IdType.RESIDENT, IdType.HMT_PERMIT) else "birth_date"
        if age < min_age():
            errors.add(age_field, gettext("Children under %(n)s cannot register.", n=min_age()))
    minor = born is not None and age_on(born, today()) < ADULT_AGE
    if minor:
        guardian_name = (guardian_name or "").strip()
        guardian_relation = (guardian_relation or "").strip()
        if not guardian_name:
            errors.add("guardian_name", gettext("Under 18: please enter the guardian's name."))
        if not guardian_relation:
            errors.add("guardian_relation", gettext("Under 18: please enter the guardian's relation to you."))
        guardian_phone = normalize_mobile(guardian_phone or "")
        if guardian_phone is None:
            errors.add("guardian_phone", gettext(
                "Under 18: please enter the guardian's valid mobile phone number."))
        if guardian_consent_on is None and not guardian_consent:
            errors.add("guardian_consent", gettext("Under 18: the guardian must consent to the registration."))
        guardian_consent_on = guardian_consent_on or utcnow()
    else:  # adults have no guardian on record
        guardian_name = guardian_relation = guardian_phone = guardian_consent_on = None
    if isinstance(service_categories, str):
        service_categories = service_categories.split(",")
    codes = [c.strip() for c in (service_categories or []) if c and c.strip()]
    if any(code not in SERVICE_CATEGORIES for code in codes):
        errors.add("service_categories", gettext("Please choose service categories from the list."))
    return dict(
        real_name=real_name, id_type=id_type, id_number_enc=pii.encrypt(number), id_blind=blind,
        id_number_masked=pii.mask_id(number) if number else "", birth_date=born, gender=gender,
        email=email, phone_enc=pii.encrypt(phone), phone_masked=pii.mask_phone(phone),
        guardian_name=guardian_name, guardian_relation=guardian_relation,
        guardian_phone_enc=pii.encrypt(guardian_phone), guardian_phone_masked=pii.mask_phone(guardian_phone),
        guardian_consent_on=guardian_consent_on,
        region_id=region.id if region else None, region_path=region.path if region else None,
        service_categories=",".join(dict.fromkeys(codes)) or None,
        skills=_clean_text(skills, 255), political_status=_clean_text(political_status, 32),
        education=_clean_text(education, 32),
    )


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

    ``profile`` may carry birth_date and gender (for passports and permanent
    residence cards), guardian_consent, service_categories, skills,
    political_status and education.

    :raises ValidationFailed: with every problem found, per field
    """
    errors = _FieldErrors()
    values = _clean_volunteer(
        errors, real_name=real_name, id_type=id_type, id_number=id_number, email=email, region=region,
        phone=phone, guardian_name=guardian_name, guardian_relation=guardian_relation,
        guardian_phone=guardian_phone, guardian_consent_on=guardian_consent_on, **profile)
    errors.raise_if_any()
    volunteer = Volunteer(user=user, status=ReviewStatus.PENDING, submitted_on=utcnow(), total_minutes=0,
                          **values)
    db.session.add(volunteer)
    db.session.flush()
    return volunteer


def check_username(errors: _FieldErrors, username: str) -> None:
    """The rules for a new login name (pattern, not taken); shared by 团体注册 (services.groups)."""
    if not USERNAME_PATTERN.fullmatch(username):
        errors.add("username", gettext(
            "A username has 4 to 30 letters, digits or underscores and starts with a letter."))
        return
    user_model = current_app.appbuilder.sm.user_model
    if db.session.scalar(select(user_model.id).where(
            func.lower(user_model.username) == username.lower()).limit(1)) is not None:
        errors.add("username", gettext("This username is taken; please choose another."))


def check_password(errors: _FieldErrors, password: str, confirm: str | None, username: str) -> None:
    """The rules for a new password (length, letters and digits, not the username, confirmed)."""
    if (len(password) < PASSWORD_MIN_LENGTH or not any(c.isalpha() for c in password)
            or not any(c.isdigit() for c in password)):
        errors.add("password", gettext(
            "A password has at least %(n)s characters, with both letters and digits.", n=PASSWORD_MIN_LENGTH))
    elif password.lower() == username.lower():
        errors.add("password", gettext("The password must differ from the username."))
    if confirm is not None and confirm != password:
        errors.add("password_confirm", gettext("The two passwords differ."))


def _home_region(region_code) -> Region | None:
    """The home region by code, if it exists at county level or below."""
    code = str(region_code or "").strip()
    if not code:
        return None
    region = db.session.scalar(select(Region).where(Region.code == code))
    return region if region is not None and region.level >= Region.COUNTY else None


home_region = _home_region  # for other services (transfers) that take a home region the same way


def register_account(*, username: str, password: str, password_confirm: str | None = None,
                     region_code: str | None = None, mobile: str | None = None, within=None,
                     **fields) -> Volunteer:
    """Self-registration (注册志愿者): a FAB user with the Volunteer role and its pending
    volunteer, both flushed in the caller's transaction (the caller commits).

    Account and personal data are validated together, so one refusal names every
    bad field. ``fields`` are ``register_volunteer``'s (real_name, id_type,
    id_number, email, birth_date, gender, guardian_*, guardian_consent, profile).
    ``within`` (a Scope) is for officers registering someone: the home region
    must lie in one of their officer regions (admins: anywhere).

    :raises ValidationFailed: ``fields`` maps each refused input to its messages
    :raises ScopeViolation: the home region lies outside ``within``
    """
    from app.security.roles import VOLUNTEER
    from app.security.scope import oversees

    errors = _FieldErrors()
    username = (username or "").strip()
    password = password or ""
    check_username(errors, username)
    check_password(errors, password, password_confirm, username)
    region = _home_region(region_code)
    if within is not None and region is not None and not oversees(region.path, within):
        raise ScopeViolation()
    values = _clean_volunteer(errors, region=region, phone=mobile, require_phone=True, **fields)
    _check_email_free(errors, values["email"])
    errors.raise_if_any()
    sm = current_app.appbuilder.sm
    role = sm.find_role(VOLUNTEER)
    if role is None:
        raise DomainError(gettext("Roles are missing: run the bootstrap first."))
    user = sm.add_user(username, values["real_name"][:64], "-", values["email"], [role], password,
                       commit=False)
    if not user:
        raise DomainError(gettext("Could not create user %(name)s.", name=username))
    volunteer = Volunteer(user=user, status=ReviewStatus.PENDING, submitted_on=utcnow(), total_minutes=0,
                          **values)
    db.session.add(volunteer)
    _flush_unique_id()
    return volunteer


def _flush_unique_id() -> None:
    """Flush; the unique blind index refuses an ID registered at the same moment."""
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise ValidationFailed(fields={"id_number": [gettext("This ID number has been registered")]}) from None


def resubmit_registration(volunteer: Volunteer, *, region_code: str | None = None, mobile: str | None = None,
                          **fields) -> Volunteer:
    """Correct a rejected registration and send it back to review (pending).

    Every field is validated as at registration; an empty ID number, mobile or
    guardian phone keeps the stored one (the form never shows them in full). The
    ID stays unique, though the registration's own row does not count. Clears
    the rejection reason and restarts the review clock (``submitted_on``).

    :raises DomainError: the registration is not rejected
    :raises ValidationFailed: ``fields`` maps each refused input to its messages
    """
    if volunteer.status != ReviewStatus.REJECTED:
        raise DomainError(gettext("Only a rejected registration can be corrected and resubmitted."))
    errors = _FieldErrors()
    id_type = fields.get("id_type") or volunteer.id_type
    if not (fields.get("id_number") or "").strip() and id_type == volunteer.id_type:
        fields["id_number"] = pii.decrypt(volunteer.id_number_enc)
        if id_type not in (IdType.RESIDENT, IdType.HMT_PERMIT):
            fields.setdefault("birth_date", volunteer.birth_date)
            fields.setdefault("gender", volunteer.gender)
    mobile = (mobile or "").strip() or pii.decrypt(volunteer.phone_enc)
    if not (fields.get("guardian_phone") or "").strip():
        fields["guardian_phone"] = pii.decrypt(volunteer.guardian_phone_enc)
    values = _clean_volunteer(errors, region=_home_region(region_code), phone=mobile, require_phone=True,
                              volunteer=volunteer, **fields)
    _check_email_free(errors, values["email"], volunteer)
    errors.raise_if_any()
    for key, value in values.items():
        if key.endswith("_enc") and pii.decrypt(getattr(volunteer, key)) == pii.decrypt(value):
            continue  # same secret: keep the ciphertext, so the audit log shows no change
        if getattr(volunteer, key) != value:
            setattr(volunteer, key, value)
    if volunteer.user is not None:
        volunteer.user.email = values["email"]
        volunteer.user.first_name = values["real_name"][:64]
    volunteer.status = ReviewStatus.PENDING
    volunteer.reject_reason = None
    volunteer.submitted_on = utcnow()
    _flush_unique_id()
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
    rollups.volunteer_counted(volunteer, +1)
    return volunteer


APPROVE, REJECT = reviews.APPROVE, reviews.REJECT


def reviewable_clause(scope):
    """SQL predicate: volunteers the scope may review — under its *officer* regions only
    (group-admin, honors-editor and own-record scope never count); everything for Admin."""
    from app.security.scope import officer_clause

    return officer_clause(Volunteer.region_path, scope)


def pending_registrations(scope, *, limit: int = 100) -> tuple[list[Volunteer], int]:
    """The oldest ``limit`` pending registrations the scope may review, and how many
    are pending in all (counted up to 10000). Oldest = earliest (re)submission; demo
    rows without ``submitted_on`` fall back to ``created_on``."""
    from sqlalchemy import func
    from sqlalchemy.orm import selectinload

    from app.security.scope import scope_clause

    where = (Volunteer.status == ReviewStatus.PENDING, scope_clause(Volunteer, scope),
             reviewable_clause(scope))
    rows = db.session.scalars(
        select(Volunteer).where(*where).options(selectinload(Volunteer.region))
        .order_by(func.coalesce(Volunteer.submitted_on, Volunteer.created_on), Volunteer.id)
        .limit(limit)).all()
    total = len(rows) if len(rows) < limit else db.session.scalar(
        select(func.count()).select_from(select(Volunteer.id).where(*where).limit(10001).subquery()))
    return rows, total


def review_volunteers(volunteers: list[Volunteer], decision: str, reason: str | None = None, *,
                      scope=None, reviewer_id: int | None = None) -> list[Volunteer]:
    """Approve or reject pending registrations (注册审核), all or none.

    Approval allocates the national volunteer number (``approve_volunteer``);
    rejection stores the reason the volunteer will read. Both stamp
    ``reviewed_on`` / ``reviewed_by_fk``. Only officers review: the registrations
    must lie under the reviewer's *officer* regions (``scope`` defaults to the
    current user's; group-admin, honors-editor and own-record scope never count).
    The rows are re-read under a row lock, so two officers deciding the same
    registration at once cannot both succeed.

    :raises ScopeViolation: a registration lies outside the reviewer's regions
    :raises DomainError: unknown decision, a reject without a reason, or a
        registration that is not pending (any more)
    """
    from app.security.scope import current_scope, oversees
    from app.services.errors import ScopeViolation

    scope = scope if scope is not None else current_scope()
    if reviewer_id is None:
        reviewer_id = reviews.acting_user_id()
    reason = reviews.clean_decision(
        decision, reason, volunteers,
        reason_required=gettext("A rejection needs a reason the volunteer can act on."),
        nothing_selected=gettext("No registrations selected."))
    locked = reviews.lock_for_decision(Volunteer, volunteers)
    for volunteer in locked:
        if not oversees(volunteer.region_path, scope):
            raise ScopeViolation()
    not_pending = [v for v in locked if v.status != ReviewStatus.PENDING]
    if not_pending:
        raise DomainError(*[gettext("%(name)s is not awaiting review (%(status)s).",
                                    name=v.real_name, status=ReviewStatus(v.status).label)
                            for v in not_pending])
    now = utcnow()
    for volunteer in locked:
        # One flush per decision, so the audit log shows one status:pending->… event
        # (the counter's UPDATE would otherwise autoflush the reviewer columns first).
        with db.session.no_autoflush:
            volunteer.reviewed_on = now
            volunteer.reviewed_by_fk = reviewer_id
            if decision == APPROVE:
                volunteer.reject_reason = None
                approve_volunteer(volunteer)
            else:
                volunteer.status = ReviewStatus.REJECTED
                volunteer.reject_reason = reason
    db.session.flush()
    return locked


# --- The volunteer's own pages (用户中心): profile, full-PII view, volunteer card ---

# Fields a volunteer may change on 我的资料. Username, real name, ID and home region
# are not among them (a new home region is a transfer, 转移接续).
EDITABLE_FIELDS = ("email", "phone", "service_categories", "skills", "political_status", "education",
                   "guardian_phone")
CARD_TOKEN_SALT = "volunteer-card"


def volunteer_of_user(user) -> Volunteer | None:
    """The volunteer record linked to a FAB user (``Volunteer.user_id``), or None."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return db.session.scalar(select(Volunteer).where(Volunteer.user_id == user.id))


def is_minor(volunteer: Volunteer) -> bool:
    """Younger than 18 today (from the birth date; unknown birth date counts as adult)."""
    return volunteer.birth_date is not None and age_on(volunteer.birth_date, today()) < ADULT_AGE


def normalize_mobile(value: str) -> str | None:
    """A valid mobile number as stored: 11 digits for mainland China, E.164 otherwise.

    Returns None when ``value`` is not a valid mobile number.
    """
    import phonenumbers

    try:
        number = phonenumbers.parse(value.strip(), "CN")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number) or phonenumbers.number_type(number) not in (
            phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE):
        return None
    if number.country_code == 86:
        return phonenumbers.national_significant_number(number)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _clean_text(value, limit: int) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v).strip() for v in value if str(v).strip())
    value = str(value).strip()
    return value[:limit] or None


def update_profile(volunteer: Volunteer, **fields) -> Volunteer:
    """Change the volunteer's own editable fields (我的资料) and flush.

    ``email`` is validated and unique (among volunteers and accounts); ``phone`` and
    ``guardian_phone`` must be valid mobile numbers and are stored encrypted with a
    masked copy; the guardian phone exists only for minors. ``service_categories``
    takes codes from SERVICE_CATEGORIES (a list or a comma-separated string).
    The audit listener records the change with masked values only.

    :raises ValidationFailed: ``errors`` maps each refused field to its message
    :raises DomainError: a field that may not be changed here (username, name, ID…)
    """
    from email_validator import EmailNotValidError, validate_email
    from flask_appbuilder.security.sqla.models import User

    from app.models import SERVICE_CATEGORIES

    refused = sorted(set(fields) - set(EDITABLE_FIELDS))
    if refused:
        raise DomainError(gettext("These fields cannot be changed here: %(names)s", names=", ".join(refused)))
    errors: dict[str, str] = {}
    changes: dict[str, object] = {}
    if "email" in fields:
        try:
            email = validate_email((fields["email"] or "").strip(), check_deliverability=False).normalized
        except EmailNotValidError:
            errors["email"] = gettext("A valid email address is required.")
        else:
            taken = db.session.scalar(select(Volunteer.id).where(
                db.func.lower(Volunteer.email) == email.lower(), Volunteer.id != volunteer.id).limit(1))
            if taken is None and volunteer.user_id is not None:
                taken = db.session.scalar(select(User.id).where(
                    db.func.lower(User.email) == email.lower(), User.id != volunteer.user_id).limit(1))
            if taken is not None:
                errors["email"] = gettext("This email address is used by another account.")
            else:
                changes["email"] = email
    for key in ("phone", "guardian_phone"):
        if key not in fields:
            continue
        raw = (fields[key] or "").strip()
        if key == "guardian_phone" and not is_minor(volunteer):
            if raw:
                errors[key] = gettext("Only a minor's profile has a guardian phone.")
            continue
        if not raw:
            if key == "guardian_phone":
                errors[key] = gettext("A minor needs a guardian's phone.")
            else:
                changes[key] = None
            continue
        number = normalize_mobile(raw)
        if number is None:
            errors[key] = gettext("Please enter a valid mobile phone number.")
        else:
            changes[key] = number
    if "service_categories" in fields:
        value = fields["service_categories"] or []
        codes = [c.strip() for c in (value.split(",") if isinstance(value, str) else value) if c and c.strip()]
        if any(code not in SERVICE_CATEGORIES for code in codes):
            errors["service_categories"] = gettext("Please choose service categories from the list.")
        else:
            changes["service_categories"] = ",".join(dict.fromkeys(codes)) or None
    for key, limit in (("skills", 255), ("political_status", 32), ("education", 32)):
        if key in fields:
            changes[key] = _clean_text(fields[key], limit)
    if errors:
        err = ValidationFailed(*errors.values())
        err.errors = errors
        raise err
    for key, value in changes.items():
        if key in ("phone", "guardian_phone"):
            if pii.decrypt(getattr(volunteer, f"{key}_enc")) == value:
                continue  # unchanged: keep the ciphertext, so no empty audit event
            setattr(volunteer, f"{key}_enc", pii.encrypt(value))
            setattr(volunteer, f"{key}_masked", pii.mask_phone(value))
        elif getattr(volunteer, key) != value:
            setattr(volunteer, key, value)
            if key == "email" and volunteer.user is not None:
                volunteer.user.email = value
    db.session.flush()
    return volunteer


def reveal_pii(volunteer: Volunteer, *, as_officer: bool = False) -> dict[str, str | None]:
    """Decrypt the volunteer's ID number, phone and guardian phone and record the
    view (``view_pii``) in the audit log; the caller commits.

    The person themself may always see their own data (the caller passes their own
    record). ``as_officer``: only a volunteer in one of the user's *officer* regions
    (or the platform admin) — group-admin or honors-editor bindings do not count.

    :raises ScopeViolation: an officer's request for a volunteer outside their regions
    """
    from app.security.scope import current_scope, oversees
    from app.services import audit
    from app.services.errors import ScopeViolation

    if as_officer:
        scope = current_scope()
        if not oversees(volunteer.region_path, scope):
            raise ScopeViolation()

    shown = {
        "id_number": pii.decrypt(volunteer.id_number_enc),
        "phone": pii.decrypt(volunteer.phone_enc),
        "guardian_phone": pii.decrypt(volunteer.guardian_phone_enc),
    }
    audit.record_view(volunteer, ",".join(k for k, v in shown.items() if v))
    return shown


def star_thresholds() -> tuple:
    """STAR_LEVEL_HOURS: the approved hours of each star (the setting, else the city's)."""
    return (tuple(settings.value("STAR_LEVEL_HOURS")) if has_app_context() else None) \
        or (100, 300, 600, 1000, 1500)


def star_level(minutes: int | None) -> int:
    """Stars 0–5 for approved service minutes: one per threshold of STAR_LEVEL_HOURS reached."""
    hours = (minutes or 0) / 60
    return sum(1 for h in star_thresholds() if hours >= h)


def _card_serializer():
    from flask import current_app
    from itsdangerous import URLSafeSerializer

    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=CARD_TOKEN_SALT)


def card_token(volunteer: Volunteer) -> str:
    """The signed token of the volunteer card's QR code: volunteer id and number,
    so a renumbered card no longer verifies."""
    return _card_serializer().dumps({"v": volunteer.id, "n": volunteer.volunteer_no})


def volunteer_for_card_token(token: str) -> Volunteer | None:
    """The volunteer a card token names, or None for a tampered, stale or unknown token."""
    from itsdangerous import BadData

    try:
        data = _card_serializer().loads(token)
        volunteer = db.session.get(Volunteer, int(data["v"]))
    except (BadData, KeyError, TypeError, ValueError):
        return None
    if volunteer is None or not volunteer.volunteer_no or volunteer.volunteer_no != data.get("n"):
        return None
    return volunteer


def card_is_valid(volunteer: Volunteer | None) -> bool:
    """A card is valid while its volunteer is approved (not pending, rejected or suspended)."""
    return volunteer is not None and volunteer.status == ReviewStatus.APPROVED and bool(volunteer.volunteer_no)


def masked_name(name: str | None) -> str:
    """``李明华`` -> ``李**``: the public card check shows no full name."""
    name = (name or "").strip()
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""
