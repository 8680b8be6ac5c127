"""Chinese working days: statutory holidays and make-up workdays (调休), for review deadlines.

Which days are working days, in this order:

1. an admin-edited ``Holiday`` row for the day (节假日设置) wins;
2. else ``chinesecalendar`` decides (holidays and make-up Saturdays/Sundays);
3. past its data (it ends with 2026 in 1.11.0), Monday to Friday are workdays.

"Today" is Asia/Shanghai (``app.services.clock.today``); every function takes the
end day as a parameter so tests can freeze it, and reads ``clock.today()`` through
the module so ``monkeypatch.setattr(clock, "today", …)`` works too.
"""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta

import chinese_calendar
from flask import has_app_context
from sqlalchemy import select

from app.extensions import db
from app.models import Holiday
from app.services import clock, settings

REVIEW_TARGET_WORKDAYS = 3  # city guide: "需3至5个工作日" — at the target: due soon
REVIEW_LIMIT_WORKDAYS = 5  # past the limit: overdue


def review_target() -> int:
    """Working days a registration may wait before it counts as due (config REVIEW_TARGET_WORKDAYS)."""
    return _setting("REVIEW_TARGET_WORKDAYS", REVIEW_TARGET_WORKDAYS)


def review_limit() -> int:
    """Working days after which a registration is overdue (config REVIEW_LIMIT_WORKDAYS)."""
    return _setting("REVIEW_LIMIT_WORKDAYS", REVIEW_LIMIT_WORKDAYS)


def _setting(name: str, default: int) -> int:
    return int(settings.value(name)) if has_app_context() else default


def calendar_is_workday(day: date) -> bool:
    """The statutory answer without admin overrides: chinesecalendar, else Monday–Friday."""
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:  # past (or before) the package's data
        return day.weekday() < 5


def overrides_between(start: date, end: date) -> dict[date, bool]:
    """Admin-edited Holiday rows with ``start <= day <= end``, as {day: is_workday}."""
    rows = db.session.execute(
        select(Holiday.day, Holiday.is_workday).where(Holiday.day >= start, Holiday.day <= end))
    return {day: bool(is_workday) for day, is_workday in rows}


def is_workday(day: date, overrides: Mapping[date, bool] | None = None) -> bool:
    """True when ``day`` is a working day; a Holiday row for the day wins.

    ``overrides`` (from ``overrides_between``) saves the query when asking about many days.
    """
    if overrides is None:
        overrides = overrides_between(day, day)
    if day in overrides:
        return overrides[day]
    return calendar_is_workday(day)


def workdays_in(start: date, end: date) -> list[date]:
    """The working days ``start < day <= end``, in order (one Holiday query)."""
    if end <= start:
        return []
    overrides = overrides_between(start + timedelta(days=1), end)
    days = (start + timedelta(days=n) for n in range(1, (end - start).days + 1))
    return [day for day in days if is_workday(day, overrides)]


def workdays_between(start_date: date, end_date: date | None = None) -> int:
    """Count the working days after ``start_date`` up to and including ``end_date``
    (default: today in Asia/Shanghai). A registration submitted on Friday has waited
    one working day on Monday."""
    return len(workdays_in(start_date, end_date or clock.today()))


def local_date(value: date | datetime) -> date:
    """A stored (naive UTC) time as its Asia/Shanghai date; a date stays as it is."""
    return clock.to_local(value).date() if isinstance(value, datetime) else value


def ages_in_workdays(starts: Iterable[date], end_date: date | None = None) -> list[int]:
    """Working days waited since each of ``starts``, up to ``end_date`` (default today).

    One Holiday query and one pass over the calendar for the whole list, so a review
    page costs the same whatever its rows.
    """
    starts = list(starts)
    end = end_date or clock.today()
    if not starts:
        return []
    days = workdays_in(min(starts), end)
    return [len(days) - bisect_right(days, start) if start < end else 0 for start in starts]


def review_urgency(age: int) -> str | None:
    """``"overdue"`` past the limit, ``"due"`` at or past the target, else None."""
    if age > review_limit():
        return "overdue"
    if age >= review_target():
        return "due"
    return None
