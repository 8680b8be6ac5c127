"""运行参数: the settings an operator may change in the console (运营控制台 → 运行参数).

``REGISTRY`` names each one with its label, its check and what must follow a change.
A ``Setting`` row (name, JSON value) overrides the default, which comes from
``current_app.config[name]`` (config.py, the environment). Readers call
``value(name)``: during a request the rows are read once, on the first setting asked
for, and kept in ``flask.g`` (one query per request at most, none when no setting is
read); outside a request (CLI jobs, tests in an app context) the table is read on
every call. Changes go through the session, so the audit log records them.

Changing ``STAR_LEVEL_HOURS`` recounts the star-level rollups in the same transaction
(``rollups.rebuild_stars``): the stars are derived when read, and the statistics must
agree with them.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app, g, has_request_context
from flask_babel import gettext
from flask_babel import lazy_gettext as _
from sqlalchemy import select

from app.extensions import db
from app.models import Region, Setting
from app.services.errors import ValidationFailed

_G_KEY = "_vc_settings"
NAMING_RULE_KEYS = ("region", "federation", "corps_suffixes", "team_suffixes")


@dataclass(frozen=True)
class SettingSpec:
    """One configurable name: its label, help, fallback default, check and follow-up."""

    name: str
    label: Any
    help: Any
    fallback: Any  # when the app's config lacks the name
    check: Callable[[Any], Any]  # the parsed JSON -> the value to store; raises ValidationFailed
    normalise: Callable[[Any], Any] = lambda v: v  # a stored or default value -> what readers get
    after_change: Callable[[], None] | None = None
    # the value -> None; raises ValidationFailed when it disagrees with another setting.
    # Run on a new value (``set_value``) and on the default a reset would restore.
    cross_check: Callable[[Any], None] | None = None


# --- Checks ---


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_between(low: int, high: int) -> Callable[[Any], int]:
    def check(value):
        if not _is_int(value) or not low <= value <= high:
            raise ValidationFailed(gettext("Enter a whole number from %(low)s to %(high)s.", low=low, high=high))
        return value
    return check


def _star_hours(value) -> list[int]:
    if (not isinstance(value, list) or len(value) != 5 or not all(_is_int(v) and v > 0 for v in value)):
        raise ValidationFailed(gettext("Enter five positive whole numbers of hours, e.g. [100, 300, 600, 1000, 1500]."))
    if any(b <= a for a, b in zip(value, value[1:])):
        raise ValidationFailed(gettext("The star thresholds must rise from the first to the fifth."))
    return value


def _suffixes(rule_no: int, key: str, value) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(s, str) and s.strip() for s in value):
        raise ValidationFailed(gettext("Rule %(n)s: “%(key)s” must be a list of non-empty texts.", n=rule_no, key=key))
    return [s.strip() for s in value]


def _naming_rules(value) -> list[dict]:
    if not isinstance(value, list):
        raise ValidationFailed(gettext("Enter a JSON list of rules, e.g. [{\"region\": \"410200\", …}]."))
    rules = []
    for n, rule in enumerate(value, start=1):
        if not isinstance(rule, dict):
            raise ValidationFailed(gettext("Rule %(n)s is not a JSON object.", n=n))
        unknown = sorted(set(rule) - set(NAMING_RULE_KEYS))
        if unknown:
            raise ValidationFailed(gettext("Rule %(n)s has unknown keys: %(keys)s (allowed: %(allowed)s).", n=n,
                                           keys=", ".join(unknown), allowed=", ".join(NAMING_RULE_KEYS)))
        code = rule.get("region")
        if not isinstance(code, str) or not code.isdigit() or len(code) not in (6, 9, 12):
            raise ValidationFailed(gettext("Rule %(n)s: “region” must be a region code such as \"410200\".", n=n))
        if db.session.scalar(select(Region.id).where(Region.code == code)) is None:
            raise ValidationFailed(gettext("Rule %(n)s: there is no region with code %(code)s.", n=n, code=code))
        federation = rule.get("federation") or ""
        if not isinstance(federation, str):
            raise ValidationFailed(gettext("Rule %(n)s: “federation” must be a group name.", n=n))
        rules.append({"region": code, "federation": federation.strip(),
                      "corps_suffixes": _suffixes(n, "corps_suffixes", rule.get("corps_suffixes")),
                      "team_suffixes": _suffixes(n, "team_suffixes", rule.get("team_suffixes"))})
    return rules


def _target_within_limit(value) -> None:
    if value > value_of("REVIEW_LIMIT_WORKDAYS"):
        raise ValidationFailed(gettext("The target cannot lie after the limit (%(n)s working days).",
                                       n=value_of("REVIEW_LIMIT_WORKDAYS")))


def _limit_after_target(value) -> None:
    if value < value_of("REVIEW_TARGET_WORKDAYS"):
        raise ValidationFailed(gettext("The limit cannot come before the target (%(n)s working days).",
                                       n=value_of("REVIEW_TARGET_WORKDAYS")))


def _rebuild_stars() -> None:
    from app.services import rollups

    rollups.rebuild_stars()


REGISTRY: dict[str, SettingSpec] = {spec.name: spec for spec in (
    SettingSpec("GROUP_NAMING_RULES", _("Group naming rules"),
                _("JSON list, one rule per city: region code, federation (the county corps' parent), "
                  "corps_suffixes, team_suffixes."),
                [], _naming_rules),
    SettingSpec("STAR_LEVEL_HOURS", _("Star level hours"),
                _("Approved hours of stars 1 to 5, rising; the star statistics are recounted on change."),
                (100, 300, 600, 1000, 1500), _star_hours, normalise=tuple, after_change=_rebuild_stars),
    SettingSpec("VOLUNTEER_MIN_AGE", _("Minimum age to register"),
                _("Children younger than this cannot register (1 to 18)."), 8, _int_between(1, 18)),
    SettingSpec("HOUR_CODE_FAILURES", _("Wrong hour codes allowed"),
                _("Wrong hour codes a user may enter in the window before entry is locked."),
                10, _int_between(1, 1000)),
    SettingSpec("HOUR_CODE_FAILURE_WINDOW_SECONDS", _("Hour code lock window (seconds)"),
                _("The window in which wrong hour codes are counted (60 to 604800 seconds)."),
                3600, _int_between(60, 604_800)),
    SettingSpec("REVIEW_TARGET_WORKDAYS", _("Review target (working days)"),
                _("A pending registration is shown as due after this many working days."), 3,
                _int_between(1, 60), cross_check=_target_within_limit),
    SettingSpec("REVIEW_LIMIT_WORKDAYS", _("Review limit (working days)"),
                _("A pending registration is overdue after this many working days."), 5,
                _int_between(1, 60), cross_check=_limit_after_target),
)}


# --- Reading ---


def _spec(name: str) -> SettingSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown setting {name!r}: add it to app/services/settings.py REGISTRY") from None


def _load() -> dict[str, Any]:
    """Every stored override, as readers get it (a row whose JSON does not parse is ignored:
    rows are written only by ``set_value``, which checks them)."""
    overrides = {}
    with db.session.no_autoflush:
        rows = db.session.execute(select(Setting.name, Setting.value_json)).all()
    for name, text in rows:
        spec = REGISTRY.get(name)
        if spec is None:
            continue
        try:
            overrides[name] = spec.normalise(json.loads(text))
        except ValueError:
            current_app.logger.warning("setting %s holds bad JSON; the default is used", name)
    return overrides


def _overrides() -> dict[str, Any]:
    if not has_request_context():
        return _load()
    cached = g.get(_G_KEY)
    if cached is None:
        cached = _load()
        setattr(g, _G_KEY, cached)
    return cached


def default(name: str):
    """The value config.py (or the environment) gives ``name``."""
    spec = _spec(name)
    return spec.normalise(current_app.config.get(name, spec.fallback))


def value(name: str):
    """The current value of setting ``name``: the console's override, else the default."""
    overrides = _overrides()
    return overrides[name] if name in overrides else default(name)


value_of = value  # the checks call it by this name: ``value`` is their parameter


def is_overridden(name: str) -> bool:
    _spec(name)
    return name in _overrides()


def listing() -> list[dict]:
    """Every setting for the console: name, label, help, current value, default, overridden."""
    overrides = _overrides()
    return [dict(name=name, label=spec.label, help=spec.help, value=value(name), default=default(name),
                 overridden=name in overrides) for name, spec in REGISTRY.items()]


def as_json(data) -> str:
    """A value as the console shows and stores it."""
    return json.dumps(list(data) if isinstance(data, tuple) else data, ensure_ascii=False)


# --- Writing ---


def _forget() -> None:
    if has_request_context():
        g.pop(_G_KEY, None)


def set_value(name: str, text: str) -> Any:
    """Store ``text`` (JSON) as the value of ``name``; return the value stored.

    :raises ValidationFailed: unknown name, bad JSON, wrong type or range, thresholds
        not rising — nothing is written
    """
    spec = REGISTRY.get(name)
    if spec is None:
        raise ValidationFailed(gettext("Unknown setting %(name)s.", name=name))
    try:
        parsed = json.loads(text or "")
    except ValueError as err:
        raise ValidationFailed(gettext("The value is not valid JSON: %(error)s", error=str(err))) from None
    checked = spec.check(parsed)
    if spec.cross_check is not None:
        spec.cross_check(spec.normalise(checked))
    row = db.session.scalar(select(Setting).where(Setting.name == name))
    if row is None:
        row = Setting(name=name, value_json="")
        db.session.add(row)
    row.value_json = as_json(checked)
    db.session.flush()
    _forget()
    if spec.after_change is not None:
        spec.after_change()
    return spec.normalise(checked)


def reset(name: str) -> bool:
    """恢复默认: delete the override of ``name``; True when there was one.

    :raises ValidationFailed: unknown name, or the default disagrees with another setting
        (the checks ``set_value`` applies, e.g. a review limit below the target) — nothing
        is deleted
    """
    spec = REGISTRY.get(name)
    if spec is None:
        raise ValidationFailed(gettext("Unknown setting %(name)s.", name=name))
    row = db.session.scalar(select(Setting).where(Setting.name == name))
    if row is None:
        return False
    if spec.cross_check is not None:
        spec.cross_check(default(name))
    db.session.delete(row)
    db.session.flush()
    _forget()
    if spec.after_change is not None:
        spec.after_change()
    return True

