"""Chinese working days: chinesecalendar, make-up workdays, admin overrides, the fallback."""
from datetime import date

import pytest

from app.models import Holiday
from app.services import clock, workdays


@pytest.mark.parametrize("day", [date(2026, 10, 1), date(2026, 10, 5), date(2026, 10, 7)])
def test_is_workday__national_day_2026_is_a_holiday(db_session, day):
    assert day.weekday() < 5  # weekdays, yet days off
    assert not workdays.is_workday(day)


@pytest.mark.parametrize("day", [date(2026, 10, 10), date(2026, 9, 20), date(2026, 2, 28)])
def test_is_workday__make_up_weekend_day_2026_is_a_workday(db_session, day):
    """2026-10-10 (Saturday) and 2026-09-20 (Sunday) are National Day make-up days."""
    assert day.weekday() >= 5
    assert workdays.is_workday(day)


def test_is_workday__2027_falls_back_to_monday_to_friday(db_session):
    """chinesecalendar 1.11 has no 2027 data: 2027-10-01 (a Friday) counts as a workday."""
    assert workdays.is_workday(date(2027, 10, 1))
    assert workdays.is_workday(date(2027, 1, 4))  # Monday
    assert not workdays.is_workday(date(2027, 1, 9))  # Saturday
    assert not workdays.is_workday(date(2027, 1, 10))  # Sunday


def test_is_workday__holiday_row_overrides_calendar_and_fallback(db_session):
    db_session.add_all([
        Holiday(day=date(2027, 10, 1), is_workday=False, name="国庆节"),  # past the data
        Holiday(day=date(2026, 10, 10), is_workday=False, name="调整"),  # a make-up day cancelled
        Holiday(day=date(2026, 10, 3), is_workday=True, name="加班"),  # a holiday made a workday
    ])
    db_session.flush()
    assert not workdays.is_workday(date(2027, 10, 1))
    assert not workdays.is_workday(date(2026, 10, 10))
    assert workdays.is_workday(date(2026, 10, 3))


def test_workdays_between__across_the_national_day_week(db_session):
    # Mon 2026-09-28 → Fri 2026-10-09: 29, 30 Sep, then 1–7 Oct off, then 8, 9 Oct.
    assert workdays.workdays_between(date(2026, 9, 28), date(2026, 10, 9)) == 4
    # up to the make-up Saturday 10-10: one more
    assert workdays.workdays_between(date(2026, 9, 28), date(2026, 10, 10)) == 5
    # the holiday week itself has no working day
    assert workdays.workdays_between(date(2026, 9, 30), date(2026, 10, 7)) == 0


def test_workdays_between__counts_after_start_up_to_end(db_session):
    assert workdays.workdays_between(date(2026, 11, 27), date(2026, 11, 27)) == 0  # same day
    assert workdays.workdays_between(date(2026, 11, 27), date(2026, 11, 30)) == 1  # Fri → Mon
    assert workdays.workdays_between(date(2026, 11, 30), date(2026, 11, 27)) == 0  # end before start


def test_workdays_between__defaults_to_todays_date_in_shanghai(db_session, monkeypatch):
    monkeypatch.setattr(clock, "today", lambda: date(2026, 10, 9))
    assert workdays.workdays_between(date(2026, 9, 28)) == 4


def test_workdays_between__sees_a_holiday_row_inside_the_range(db_session):
    db_session.add(Holiday(day=date(2027, 3, 3), is_workday=False, name="测试"))
    db_session.flush()
    assert workdays.workdays_between(date(2027, 3, 1), date(2027, 3, 5)) == 3  # Tue, Thu, Fri


def test_ages_in_workdays__one_pass_matches_workdays_between(db_session):
    end = date(2026, 10, 12)
    starts = [date(2026, 9, 21), date(2026, 9, 28), date(2026, 10, 8), end, date(2026, 10, 20)]
    assert workdays.ages_in_workdays(starts, end) == [
        workdays.workdays_between(s, end) for s in starts]
    assert workdays.ages_in_workdays([], end) == []


@pytest.mark.parametrize("age, urgency", [(0, None), (2, None), (3, "due"), (5, "due"), (6, "overdue")])
def test_review_urgency__due_at_target_overdue_past_limit(app, age, urgency):
    with app.app_context():
        assert (workdays.review_target(), workdays.review_limit()) == (3, 5)
        assert workdays.review_urgency(age) == urgency
