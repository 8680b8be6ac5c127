"""Volunteer groups (志愿团体): registration in the hierarchy, review, settings, the join token."""
from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext
from pypinyin import Style, lazy_pinyin
from sqlalchemy import func, literal, or_, select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import generate_password_hash

from app.extensions import db
from app.models import GroupType, JoinPolicy, Region, ReviewStatus, VolunteerGroup
from app.security import pii
from app.security.scope import current_scope, ensure_administers, path_is_under, row_id, under
from app.services import regions, reviews, rollups, settings
from app.services.clock import utcnow
from app.services.errors import DomainError, ScopeViolation, ValidationFailed
from app.services.idcards import parse_credit_code
from app.services.volunteers import FieldErrors, check_password, check_username

NAME_PINYIN_MAX = 400  # VolunteerGroup.name_pinyin


def name_pinyin(name: str) -> str:
    """Pinyin initials and full pinyin of a group name, lower case, for search.

    ``"龙亭区志愿服务总队"`` -> ``"ltqzyfwzd longtingquzhiyuanfuwuzongdui"``: a search for
    ``ltq`` or ``longting`` finds it with one LIKE on this column.
    """
    initials = "".join(lazy_pinyin(name, style=Style.FIRST_LETTER)).lower()
    full = "".join(lazy_pinyin(name)).lower()
    return f"{initials} {full}"[:NAME_PINYIN_MAX]


def new_join_token() -> str:
    """A fresh random token for a group's join QR code (rotating it invalidates old codes)."""
    return secrets.token_urlsafe(16)


def is_approved(group: VolunteerGroup | None) -> bool:
    return group is not None and group.status == ReviewStatus.APPROVED


SEARCH_PAGE_SIZE = 20


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_groups(keyword: str, *, page: int = 0, page_size: int = SEARCH_PAGE_SIZE,
                  region_path: str | None = None) -> tuple[list[VolunteerGroup], bool]:
    """Approved groups whose name contains ``keyword``, or whose pinyin (initials or
    full) does; the shortest names first. Returns one page and whether more follow.

    Empty keyword: no results (the search is for finding a group, not listing all).
    """
    keyword = (keyword or "").strip()[:50]
    if not keyword:
        return [], False
    pattern = f"%{_like_escape(keyword)}%"
    match = [VolunteerGroup.name.like(pattern, escape="\\")]
    if keyword.isascii() and keyword.replace(" ", "").isalpha():
        compact = _like_escape(keyword.replace(" ", "").lower())
        match.append(VolunteerGroup.name_pinyin.like(f"%{compact}%", escape="\\"))
    query = (select(VolunteerGroup)
             .where(VolunteerGroup.status == ReviewStatus.APPROVED, or_(*match))
             .order_by(func.length(VolunteerGroup.name), VolunteerGroup.name, VolunteerGroup.id)
             .offset(max(page, 0) * page_size).limit(page_size + 1))
    if region_path:
        query = query.where(under(VolunteerGroup.region_path, region_path))
    rows = list(db.session.scalars(query))
    return rows[:page_size], len(rows) > page_size


def group_for_join_token(token: str | None) -> VolunteerGroup | None:
    """The approved group whose join QR code carries ``token``, or None.

    A rotated (old) token, or a group that is not approved, finds nothing.
    """
    token = (token or "").strip()
    if not token or len(token) > 64:
        return None
    return db.session.scalar(select(VolunteerGroup).where(
        VolunteerGroup.join_token == token, VolunteerGroup.status == ReviewStatus.APPROVED))


# --- Registration (团体注册) and settings (团体信息): validation ---

# Inputs of register_group / update_group besides the account (the form's field names).
GROUP_FIELDS = ("name", "parent_id", "parent_name", "region_code", "group_type", "is_legal_person",
                "credit_code", "contact_name", "contact_phone", "staff_headcount", "description",
                "join_policy", "join_password")
# What an approved group keeps for good: its name and parent (DESIGN.md §5: immutable once
# approved), and with them the region, type and legal status its review was based on.
FROZEN_WHEN_APPROVED = ("name", "parent", "region_code", "group_type", "is_legal_person", "credit_code")
NAME_MAX = 100  # VolunteerGroup.name
DESCRIPTION_MAX = 2000
HEADCOUNT_MAX = 1_000_000
JOIN_PASSWORD_LENGTH = (4, 64)


def normalize_name(name: str | None) -> str:
    """A group name as stored and as compared, the one normalisation for both.

    Unicode NFKC (full-width ``ＡＢＣ`` and digits become ``ABC``, compatibility forms
    their plain letters), then every format or control character (categories Cf and
    Cc: zero-width spaces, BOMs, bidi marks, NUL...) and every whitespace character
    (half- or full-width, any kind) removed: Chinese group names have no spaces, so
    ``北书店街道社区　志愿服务队`` and ``北书店街道社区志愿服务队`` are one name. Duplicates
    are compared case-insensitively on top of this (``name_taken``); an empty result
    means no name was given.
    """
    text = unicodedata.normalize("NFKC", name or "")
    return "".join(ch for ch in text
                   if not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf"))


def _name_key(column_or_value):
    """SQL: a name compared case-insensitively, the spaces older rows may still hold
    ignored (``lower`` on SQLite and PostgreSQL alike)."""
    stripped = func.replace(func.replace(column_or_value, " ", ""), "\u3000", "")
    return func.lower(stripped)


def name_taken(name: str, *, exclude_id: int | None = None) -> bool:
    """Is ``name`` (``normalize_name``d) used by another group, ignoring case?"""
    query = select(VolunteerGroup.id).where(_name_key(VolunteerGroup.name) == func.lower(literal(name)))
    if exclude_id is not None:
        query = query.where(VolunteerGroup.id != exclude_id)
    return db.session.scalar(query.limit(1)) is not None


def normalize_phone(value: str | None) -> str | None:
    """A valid mobile or landline number as stored, or None.

    Mainland mobiles: 11 digits; mainland landlines: the area code with its 0 and the
    number (``037122345678``); elsewhere E.164.
    """
    import phonenumbers

    value = (value or "").strip()
    if not value or len(value) > 32:
        return None
    try:
        number = phonenumbers.parse(value, "CN")
    except phonenumbers.NumberParseException:
        return None
    kinds = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE,
             phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
    if not phonenumbers.is_valid_number(number) or phonenumbers.number_type(number) not in kinds:
        return None
    if number.country_code == 86:
        national = phonenumbers.national_significant_number(number)
        mobile = phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE
        return national if mobile else "0" + national
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# --- Naming rules (GROUP_NAMING_RULES) ---


@dataclass(frozen=True)
class NamingRule:
    """One city's tier naming rule (config.py GROUP_NAMING_RULES)."""

    region: str  # division code: the rule covers this region and below
    federation: str  # the name of the group every county corps takes as parent
    corps_suffixes: tuple[str, ...]
    team_suffixes: tuple[str, ...]

    def covers(self, region_path: str | None) -> bool:
        return bool(region_path) and self.region in region_path.rstrip("/").split("/")


def naming_rules(config=None) -> list[NamingRule]:
    """The naming rules (the setting ``GROUP_NAMING_RULES``: a list of dicts), or those of ``config``."""
    rules = config.get("GROUP_NAMING_RULES") if config is not None else settings.value("GROUP_NAMING_RULES")
    return [NamingRule(region=str(r["region"]), federation=r.get("federation") or "",
                       corps_suffixes=tuple(r.get("corps_suffixes") or ()),
                       team_suffixes=tuple(r.get("team_suffixes") or ()))
            for r in rules or ()]


def naming_rule_for(region_path: str | None, rules: list[NamingRule]) -> NamingRule | None:
    """The rule covering a group in ``region_path`` (the first that does), or None."""
    return next((rule for rule in rules if rule.covers(region_path)), None)


def name_pattern(suffixes) -> str:
    """``“××县志愿服务总队”或“××区志愿服务总队”``: the expected names, for messages."""
    return gettext(" or ").join(f"“××{suffix}”" for suffix in suffixes)


def naming_problem(rule: NamingRule | None, name: str, group_type: str, county: str | None = None) -> str | None:
    """What is wrong with ``name`` for a group of ``group_type`` under ``rule`` (None: fine).

    Federations' names are not checked; a county corps ends in a corps suffix and,
    when ``county`` (the full name of its county-level region) is given, starts with
    it (``龙亭区志愿服务总队``, ``顺河回族区志愿服务总队``); every other type ends in a team
    suffix, with something before it.
    """
    if rule is None or group_type == GroupType.FEDERATION:
        return None
    suffixes = rule.corps_suffixes if group_type == GroupType.COUNTY_CORPS else rule.team_suffixes
    if suffixes and not any(name.endswith(s) and len(name) > len(s) for s in suffixes):
        return gettext("The group name should be %(pattern)s.", pattern=name_pattern(suffixes))
    if group_type == GroupType.COUNTY_CORPS and county and not name.startswith(county):
        return gettext("The name of a county corps starts with the name of its county: “%(county)s”.",
                       county=county)
    return None


def county_of(region: Region | None) -> Region | None:
    """The county-level region (区/县) that is or contains ``region``; None above county level."""
    if region is None or region.level < Region.COUNTY:
        return None
    if region.level == Region.COUNTY:
        return region
    codes = region.path.rstrip("/").split("/")
    return db.session.scalar(select(Region).where(Region.code.in_(codes), Region.level == Region.COUNTY))


def other_county_corps(county: Region, *, exclude_id: int | None = None) -> VolunteerGroup | None:
    """A county corps in ``county`` (its region there or below) that is not rejected, or None."""
    query = select(VolunteerGroup).where(
        VolunteerGroup.group_type == GroupType.COUNTY_CORPS, VolunteerGroup.status != ReviewStatus.REJECTED,
        under(VolunteerGroup.region_path, county.path))
    if exclude_id is not None:
        query = query.where(VolunteerGroup.id != exclude_id)
    return db.session.scalar(query.order_by(VolunteerGroup.id).limit(1))


def hierarchy_problems(group_type: str, region: Region | None,
                       parent: VolunteerGroup | None) -> dict[str, str]:
    """Rules for any group with a parent, whatever the city's rules: the group's region
    lies within its parent's region, and a federation's parent is a federation.
    Returns messages by input field (empty: fine)."""
    problems: dict[str, str] = {}
    if parent is None:
        return problems
    if group_type == GroupType.FEDERATION and parent.group_type != GroupType.FEDERATION:
        problems["parent"] = gettext(
            "The parent group of a federation must be a federation: “%(parent)s” is not.", parent=parent.name)
    if region is not None and parent.region_path and not path_is_under(region.path, parent.region_path):
        parent_region = parent.region.name if parent.region is not None else parent.region_code
        problems["region_code"] = gettext(
            "The group's region must lie within %(region)s, the region of its parent group “%(parent)s”.",
            region=parent_region, parent=parent.name)
    return problems


def county_corps_for(region_path: str, rule: NamingRule) -> list[VolunteerGroup]:
    """Approved county corps whose region contains ``region_path`` (inside the rule's
    region), the nearest first."""
    parts = region_path.rstrip("/").split("/")
    ancestors = ["/".join(parts[:n]) + "/" for n in range(1, len(parts) + 1)]
    ancestors = [p for p in ancestors if rule.covers(p)]
    if not ancestors:
        return []
    rows = db.session.scalars(select(VolunteerGroup).where(
        VolunteerGroup.group_type == GroupType.COUNTY_CORPS, VolunteerGroup.status == ReviewStatus.APPROVED,
        VolunteerGroup.region_path.in_(ancestors)))
    return sorted(rows, key=lambda g: (-len(g.region_path), g.id))


def parent_problem(rule: NamingRule | None, group_type: str, region, parent: VolunteerGroup | None) -> str | None:
    """What is wrong with the parent of a new group under ``rule`` (None: fine).

    A county corps takes the rule's federation; any other type but federations takes
    the county corps whose region contains the group's region.
    """
    if rule is None or group_type == GroupType.FEDERATION or region is None:
        return None
    if group_type == GroupType.COUNTY_CORPS:
        if parent is not None and parent.name == rule.federation:
            return None
        return gettext("A county corps takes “%(parent)s” as its parent group.", parent=rule.federation)
    corps = county_corps_for(region.path, rule)
    if not corps:
        return gettext("There is no approved county corps for %(region)s yet: choose the region at county "
                       "level or below, where the county's corps has registered first.", region=region.name)
    if parent is not None and parent.id in {c.id for c in corps}:
        return None
    return gettext("The parent group should be the county corps of the group's region: “%(parent)s”.",
                   parent=corps[0].name)


# --- Registration (团体注册) and settings (团体信息) ---


def _resolve_parent(errors: FieldErrors, parent_id, parent_name) -> VolunteerGroup | None:
    """The parent group chosen by id (the search picker) or by exact name (without
    JavaScript); it must be approved. Nothing chosen: None, no error."""
    parent_id = str(parent_id or "").strip()
    parent_name = normalize_name(parent_name)
    if parent_id:
        pk = row_id(parent_id)
        parent = db.session.get(VolunteerGroup, pk) if pk is not None else None
        if parent is None:
            errors.add("parent", gettext("Unknown parent group: search and choose it from the list."))
            return None
    elif parent_name:
        parent = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == parent_name))
        if parent is None:
            errors.add("parent", gettext(
                "No approved group is named “%(name)s”: search and choose the parent group from the list.",
                name=parent_name))
            return None
    else:
        return None
    if not is_approved(parent):
        errors.add("parent", gettext("The parent group “%(name)s” is not approved.", name=parent.name))
        return None
    return parent


def _parse_headcount(value) -> tuple[int | None, bool]:
    """(headcount, valid); an empty value is (None, True)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, True
    try:
        number = int(str(value).strip())
    except ValueError:
        return None, False
    return (number, True) if 1 <= number <= HEADCOUNT_MAX else (None, False)


def _flag(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "y")
    return bool(value)


def _clean_group(errors: FieldErrors, *, group: VolunteerGroup | None, name, parent: VolunteerGroup | None,
                 region, region_given: bool, group_type, is_legal_person, credit_code,
                 contact_name, contact_phone, staff_headcount, description, join_policy,
                 join_password) -> dict:
    """Validate a group's data (a new registration, or ``group``'s correction or edit);
    return the column values to write. Messages go into ``errors`` by input field."""
    values: dict = {}
    name = normalize_name(name)
    if not name:
        errors.add("name", gettext("Please enter the group name."))
    elif len(name) > NAME_MAX:
        errors.add("name", gettext("The name may have at most %(n)s characters.", n=NAME_MAX))
    elif name_taken(name, exclude_id=group.id if group else None):
        errors.add("name", gettext("A group named “%(name)s” exists already.", name=name))
    values.update(name=name, name_pinyin=name_pinyin(name) if name else None)

    group_type = str(group_type or "")
    if group_type not in GroupType.labels():
        errors.add("group_type", gettext("Please choose the group type."))
    values["group_type"] = group_type

    if region is None and region_given:
        errors.add("region_code", gettext("Please choose the group's region from the list."))
    elif region is None:
        errors.add("region_code", gettext("Please choose the group's region."))
    else:
        values.update(region_id=region.id, region_path=region.path)

    if group is not None and parent is not None and group.group_path and (
            parent.group_path or "").startswith(group.group_path):
        errors.add("parent", gettext("A group cannot be its own parent or lie below itself."))
        parent = None
    values["parent_id"] = parent.id if parent else None

    legal = _flag(is_legal_person)
    values["is_legal_person"] = legal
    if legal:
        code = None
        if not (credit_code or "").strip():
            errors.add("credit_code", gettext("A legal person gives its unified social credit code."))
        else:
            try:
                code = parse_credit_code(credit_code)
            except ValidationFailed as err:
                for message in err.messages:
                    errors.add("credit_code", message)
            if code is not None:
                query = select(VolunteerGroup.id).where(VolunteerGroup.credit_code == code)
                if group is not None:
                    query = query.where(VolunteerGroup.id != group.id)
                if db.session.scalar(query.limit(1)) is not None:
                    errors.add("credit_code", gettext(
                        "A group with this unified social credit code is registered already."))
        values["credit_code"] = code
    else:
        values["credit_code"] = None
        if parent is None and "parent" not in errors:
            errors.add("parent", gettext(
                "A group that is not registered as a legal person needs a parent group."))

    if group_type in GroupType.labels():
        for field, problem in hierarchy_problems(group_type, region, parent).items():
            if field not in errors:
                errors.add(field, problem)

    rule = naming_rule_for(region.path if region else None, naming_rules())
    county = None
    if rule is not None and group_type == GroupType.COUNTY_CORPS and region is not None:
        county = county_of(region)
        if county is None:
            errors.add("region_code", gettext(
                "A county corps belongs to a county or district: choose that county or district as its region."))
        else:
            other = other_county_corps(county, exclude_id=group.id if group else None)
            if other is not None:
                errors.add("group_type", gettext(
                    "%(county)s has a county corps already: “%(name)s”. Register as one of its teams instead.",
                    county=county.name, name=other.name))
    if name and "name" not in errors and group_type in GroupType.labels():
        problem = naming_problem(rule, name, group_type, county=county.name if county else None)
        if problem:
            errors.add("name", problem)
    if group_type in GroupType.labels() and "parent" not in errors and region is not None:
        problem = parent_problem(rule, group_type, region, parent)
        if problem:
            errors.add("parent", problem)

    contact_name = (contact_name or "").strip()
    if not contact_name:
        errors.add("contact_name", gettext("Please enter the contact person."))
    elif len(contact_name) > 64:
        errors.add("contact_name", gettext("The name may have at most %(n)s characters.", n=64))
    values["contact_name"] = contact_name

    raw_phone = (contact_phone or "").strip()
    if not raw_phone and group is not None and group.contact_phone_enc:
        pass  # empty on an edit: keep the number on file (the form shows it masked)
    else:
        phone = normalize_phone(raw_phone)
        if phone is None:
            errors.add("contact_phone", gettext(
                "Please enter a valid mobile or landline number (a landline with its area code)."))
        elif group is None or pii.decrypt(group.contact_phone_enc) != phone:
            values.update(contact_phone_enc=pii.encrypt(phone), contact_phone_masked=pii.mask_phone(phone))

    headcount, valid = _parse_headcount(staff_headcount)
    if not valid:
        errors.add("staff_headcount", gettext(
            "The staff headcount is a whole number from 1 to %(n)s.", n=HEADCOUNT_MAX))
    elif headcount is None and group_type == GroupType.CIVIL_UNIT:
        errors.add("staff_headcount", gettext(
            "A civil unit gives its staff headcount (for the rate of staff registered)."))
    values["staff_headcount"] = headcount

    description = (description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        errors.add("description", gettext("The description may have at most %(n)s characters.",
                                          n=DESCRIPTION_MAX))
    values["description"] = description or None

    join_policy = str(join_policy or JoinPolicy.VERIFY)
    if join_policy not in JoinPolicy.labels():
        errors.add("join_policy", gettext("Please choose how volunteers join."))
    values["join_policy"] = join_policy
    join_password = join_password or ""
    if join_policy != JoinPolicy.PASSWORD:
        values["join_password_hash"] = None
    elif join_password:
        low, high = JOIN_PASSWORD_LENGTH
        if not low <= len(join_password) <= high:
            errors.add("join_password", gettext(
                "A join password has %(low)s to %(high)s characters.", low=low, high=high))
        else:
            values["join_password_hash"] = generate_password_hash(join_password)
    elif not (group is not None and group.join_policy == JoinPolicy.PASSWORD and group.join_password_hash):
        errors.add("join_password", gettext("Joining with a password needs a join password."))
    return values


def _flush_unique(values: dict) -> None:
    """Flush; the unique name and credit code refuse a twin registered at the same moment."""
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        field = "name" if name_taken(values.get("name") or "") else "credit_code"
        raise ValidationFailed(fields={field: [gettext(
            "A group with this name or unified social credit code was registered just now.")]}) from None


def register_group(*, name: str, username: str, password: str, password_confirm: str | None = None,
                   parent_id=None, parent_name: str | None = None, region_code: str | None = None,
                   group_type: str | None = None, is_legal_person=False, credit_code: str | None = None,
                   contact_name: str | None = None, contact_phone: str | None = None, staff_headcount=None,
                   description: str | None = None, join_policy: str | None = JoinPolicy.VERIFY,
                   join_password: str | None = None) -> VolunteerGroup:
    """团体注册: a pending group and its first admin (a new user with the GroupAdmin role,
    bound to the group), flushed in the caller's transaction.

    Account and group data are validated together: one refusal names every bad field
    (``ValidationFailed.fields``), and nothing is written. Who reviews the group: its
    parent's admins, or for a root group an officer of its region.

    :raises ValidationFailed: ``fields`` maps each refused input to its messages
    """
    from app.security.roles import GROUP_ADMIN
    from app.services.accounts import bind_group_admin

    errors = FieldErrors()
    username = (username or "").strip()
    password = password or ""
    check_username(errors, username)
    check_password(errors, password, password_confirm, username)
    parent = _resolve_parent(errors, parent_id, parent_name)
    region = regions.region_by_code(region_code)
    values = _clean_group(
        errors, group=None, name=name, parent=parent, region=region,
        region_given=bool(str(region_code or "").strip()), group_type=group_type, is_legal_person=is_legal_person, credit_code=credit_code, contact_name=contact_name,
        contact_phone=contact_phone, staff_headcount=staff_headcount, description=description,
        join_policy=join_policy, join_password=join_password)
    errors.raise_if_any()
    sm = current_app.appbuilder.sm
    role = sm.find_role(GROUP_ADMIN)
    if role is None:
        raise DomainError(gettext("Roles are missing: run the bootstrap first."))
    # The account has no email of its own (the form asks for none); FAB needs a unique one.
    user = sm.add_user(username, values["name"][:64], "-", f"{username.lower()}@group.invalid", [role],
                       password, commit=False)
    if not user:
        raise DomainError(gettext("Could not create user %(name)s.", name=username))
    group = VolunteerGroup(**values, status=ReviewStatus.PENDING, join_token=new_join_token())
    db.session.add(group)
    _flush_unique(values)
    group.group_path = (parent.group_path if parent else "") + f"{group.id}/"
    bind_group_admin(user, group)
    db.session.flush()
    return group


def administered_groups(scope=None) -> list[VolunteerGroup]:
    """The groups the user administers directly (团体信息), by name; Admin: none of its own."""
    scope = scope or current_scope()
    if not scope.group_ids:
        return []
    return list(db.session.scalars(select(VolunteerGroup).where(VolunteerGroup.id.in_(sorted(scope.group_ids)))
                                   .order_by(VolunteerGroup.name, VolunteerGroup.id)))


def child_groups(group: VolunteerGroup) -> list[VolunteerGroup]:
    """The direct children of ``group`` (read-only for its admins), by name."""
    return list(db.session.scalars(select(VolunteerGroup).where(VolunteerGroup.parent_id == group.id)
                                   .order_by(VolunteerGroup.name, VolunteerGroup.id)))


def update_group(group: VolunteerGroup, **fields) -> VolunteerGroup:
    """团体信息: change a group's settings, by its own admins only.

    ``fields`` are ``GROUP_FIELDS`` (omitted ones keep their value; an empty contact
    phone or join password keeps the stored one). Once approved, the name, parent,
    region, type and legal status are fixed: changing them is refused. A rejected
    group's correction goes back to review (pending).

    :raises ScopeViolation: the user does not administer ``group`` itself
    :raises ValidationFailed: ``fields`` maps each refused input to its messages
    """
    ensure_administers(group)
    unknown = set(fields) - set(GROUP_FIELDS)
    if unknown:
        raise TypeError(f"unknown group fields: {sorted(unknown)}")
    errors = FieldErrors()
    approved = group.status == ReviewStatus.APPROVED
    parent_given = bool(fields.get("parent_id") or fields.get("parent_name"))
    if "parent_id" in fields or "parent_name" in fields:
        parent = _resolve_parent(errors, fields.get("parent_id"), fields.get("parent_name")) if parent_given else None
    else:
        parent = group.parent
    region_given = "region_code" in fields
    region = regions.region_by_code(fields["region_code"]) if region_given else group.region
    current = dict(name=group.name, group_type=group.group_type, is_legal_person=group.is_legal_person,
                   credit_code=group.credit_code, contact_name=group.contact_name, contact_phone="",
                   staff_headcount=group.staff_headcount, description=group.description,
                   join_policy=group.join_policy, join_password="")
    given = {k: v for k, v in fields.items() if k in current}
    if approved:
        frozen = gettext("This cannot be changed once the group is approved.")
        if "name" in given and normalize_name(given["name"]) != normalize_name(group.name):
            errors.add("name", gettext("The name of an approved group cannot be changed."))
        if ("parent_id" in fields or "parent_name" in fields) and (parent.id if parent else None) != group.parent_id \
                and "parent" not in errors:
            errors.add("parent", gettext("The parent group of an approved group cannot be changed."))
        if region_given and (region.id if region else None) != group.region_id:
            errors.add("region_code", frozen)
        if "group_type" in given and str(given["group_type"]) != group.group_type:
            errors.add("group_type", frozen)
        if "is_legal_person" in given and _flag(given["is_legal_person"]) != group.is_legal_person:
            errors.add("is_legal_person", frozen)
        if ("credit_code" in given and group.is_legal_person and (given["credit_code"] or "").strip()
                and "".join(given["credit_code"].split()).upper() != group.credit_code):
            errors.add("credit_code", frozen)
        errors.raise_if_any()
        for key in ("name", "group_type", "is_legal_person", "credit_code"):
            given.pop(key, None)
        parent, region = group.parent, group.region
    merged = {**current, **given}
    values = _clean_group(errors, group=group, parent=parent, region=region, region_given=region_given, **merged)
    if approved:
        # What was fixed at the review is neither re-judged (the naming rule binds new
        # groups) nor rewritten.
        for key in ("name", "parent", "region_code", "group_type", "is_legal_person", "credit_code"):
            errors.pop(key, None)
        for key in ("name", "name_pinyin", "group_type", "is_legal_person", "credit_code", "region_id",
                    "region_path"):
            values.pop(key, None)
    errors.raise_if_any()
    values.pop("parent_id", None)
    for key, value in values.items():
        if getattr(group, key) != value:
            setattr(group, key, value)
    if group.parent_id != (parent.id if parent else None):
        group.parent = parent
    new_path = (parent.group_path if parent else "") + f"{group.id}/"
    if group.group_path != new_path:
        group.group_path = new_path
    if group.status == ReviewStatus.REJECTED:
        group.status = ReviewStatus.PENDING
        group.reject_reason = None
    _flush_unique(values)
    return group


def rotate_join_token(group: VolunteerGroup) -> str:
    """更换二维码: give ``group`` a new join token; QR codes carrying the old one stop working.

    :raises ScopeViolation: the user does not administer ``group`` itself
    """
    ensure_administers(group)
    group.join_token = new_join_token()
    db.session.flush()
    return group.join_token


# --- Review (下级团体审核 / 团体审核) ---

APPROVE, REJECT = reviews.APPROVE, reviews.REJECT


def reviewable_groups_clause(scope):
    """SQL predicate: groups ``scope`` may review. A group with a parent is reviewed by
    the admins of that parent itself (Scope.group_ids: not by a grandparent's), a root
    group by an officer whose region contains the group's; Admin reviews any."""
    from sqlalchemy import and_, false, true

    if scope.everything:
        return true()
    parts = []
    if scope.group_ids:
        parts.append(VolunteerGroup.parent_id.in_(sorted(scope.group_ids)))
    parts += [and_(VolunteerGroup.parent_id.is_(None), under(VolunteerGroup.region_path, path))
              for path in scope.officer_paths]
    return or_(*parts) if parts else false()


def pending_groups(scope, *, limit: int = 100) -> tuple[list[VolunteerGroup], int]:
    """The oldest ``limit`` pending groups ``scope`` may review, and how many there are
    (counted up to 10000)."""
    from sqlalchemy.orm import selectinload

    where = (VolunteerGroup.status == ReviewStatus.PENDING, reviewable_groups_clause(scope))
    rows = db.session.scalars(
        select(VolunteerGroup).where(*where)
        .options(selectinload(VolunteerGroup.region), selectinload(VolunteerGroup.parent))
        .order_by(VolunteerGroup.changed_on, VolunteerGroup.id).limit(limit)).all()
    total = len(rows) if len(rows) < limit else db.session.scalar(
        select(func.count()).select_from(select(VolunteerGroup.id).where(*where).limit(10001).subquery()))
    return list(rows), total


def review_groups(groups: list[VolunteerGroup], decision: str, reason: str | None = None, *,
                  scope=None, reviewer_id: int | None = None) -> list[VolunteerGroup]:
    """Approve or reject pending groups, all or none.

    Each group must be reviewable by the user (``reviewable_groups_clause``: its
    parent's own admins, or for a root group an officer of its region), checked here
    on rows re-read under a row lock. Rejection stores the reason the group's admin
    reads on 团体信息. Both stamp ``reviewed_on`` / ``reviewed_by_fk``.

    :raises ScopeViolation: a group the user may not review (answered as 404)
    :raises DomainError: unknown decision, a rejection without a reason, a reason too
        long, or a group that is not pending
    """
    scope = scope if scope is not None else current_scope()
    if reviewer_id is None:
        reviewer_id = reviews.acting_user_id()
    reason = reviews.clean_decision(
        decision, reason, groups,
        reason_required=gettext("A rejection needs a reason the group can act on."),
        nothing_selected=gettext("No groups selected."))
    ids = sorted({group.id for group in groups})
    locked = reviews.lock_for_decision(VolunteerGroup, groups)
    reviewable = set(db.session.scalars(select(VolunteerGroup.id).where(
        VolunteerGroup.id.in_(ids), reviewable_groups_clause(scope))))
    if reviewable != set(ids):
        raise ScopeViolation()
    not_pending = [group for group in locked if group.status != ReviewStatus.PENDING]
    if not_pending:
        raise DomainError(*[gettext("%(name)s is not awaiting review (%(status)s).",
                                    name=group.name, status=ReviewStatus(group.status).label)
                            for group in not_pending])
    if decision == APPROVE:
        orphans = [group for group in locked if group.parent_id and not is_approved(group.parent)]
        if orphans:
            raise DomainError(*[gettext("The parent group of %(name)s is not approved.", name=group.name)
                                for group in orphans])
    now = utcnow()
    for group in locked:
        group.reviewed_on = now
        group.reviewed_by_fk = reviewer_id
        if decision == APPROVE:
            group.status = ReviewStatus.APPROVED
            group.approved_on = now
            group.reject_reason = None
            rollups.group_counted(group, +1)
        else:
            group.status = ReviewStatus.REJECTED
            group.reject_reason = reason
    db.session.flush()
    return list(locked)


def reviewer_of(group: VolunteerGroup) -> str:
    """Who reviews ``group``, in words: its parent group's name, or the civil-affairs office
    (文明办) of its region for a root group."""
    if group.parent_id and group.parent is not None:
        return group.parent.name
    region = group.region.name if group.region is not None else group.region_code
    return gettext("the civilisation office of %(region)s", region=region)
