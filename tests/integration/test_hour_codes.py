"""Hour codes (时长码): 计时 → 生成时长码 by the project's own group admins, and
用户中心 → 服务时长 → 录入时长码 by volunteers — the code is the admin's consent
(enrolls past members-only and full quotas, never past the age limits), credits at
once, creates no membership, is used once per volunteer, holds its maximum uses,
and failed guesses are rate-limited per user (issue 6, item 5)."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import (
    Enrollment, HourCode, Membership, RecordSource, RecordStatus, ServiceRecord,
)
from app.services import hours
from app.services.clock import today, utcnow
from app.services.errors import DomainError, ScopeViolation
from tests.integration._hours_helpers import (
    BACKFILL, BOOKSTORE, BOOKSTORE_GUIDE, CULTURE, CULTURE_GUIDE, CULTURE_YOUTH, ELDERLY, acting,
    ledger_mismatches, position_of, project_of, volunteer_of, yesterday,
)

INVALID = "时长码无效或已过期。"


def _code(app, project=BOOKSTORE, position=BOOKSTORE_GUIDE, admin="longting_team_admin", *,
          day=None, minutes=120, max_uses=None) -> str:
    """A fresh hour code (committed), made by ``admin``."""
    with acting(app, admin):
        code = hours.generate_code(position_of(project, position), served_on=day or yesterday(),
                                   minutes=minutes, max_uses=max_uses)
        db.session.commit()
        return code.code


def _redeem(app, username: str, code: str):
    """Redeem as ``username``; return the record id, or the refusal's message."""
    with acting(app, username):
        try:
            record = hours.redeem_code(volunteer_of(username), code)
        except DomainError as err:
            db.session.rollback()
            return str(err)
        db.session.commit()
        return record.id


# --- 生成时长码 ---


def test_generate_code__group_admin_gets_12_random_digits_as_string(app, monkeypatch):
    monkeypatch.setattr(hours.secrets, "randbelow", lambda n: 42 if n == 10 ** 12 else 0)
    code = _code(app)
    assert code == "000000000042"
    with app.app_context():
        row = db.session.scalar(select(HourCode).where(HourCode.code == code))
        assert row.activity_on == yesterday() and row.minutes == 120 and row.max_uses is None and row.uses == 0
        assert row.position_id == position_of(BOOKSTORE, BOOKSTORE_GUIDE).id


def test_generate_code__collision_draws_again(app, monkeypatch):
    draws = iter([7, 7, 8])
    monkeypatch.setattr(hours.secrets, "randbelow", lambda n: next(draws))
    assert _code(app) == "000000000007"
    assert _code(app) == "000000000008"  # 7 is taken: drawn again


def test_generate_code__uses_the_secrets_module(app, monkeypatch):
    calls = []
    real = hours.secrets.randbelow
    monkeypatch.setattr(hours.secrets, "randbelow", lambda n: calls.append(n) or real(n))
    code = _code(app)
    assert calls == [10 ** 12] and re.fullmatch(r"\d{12}", code)


@pytest.mark.parametrize("username", ["longting_corps_admin", "culture_team_admin", "kaifeng_officer",
                                      "vol_longting"])
def test_generate_code__not_the_projects_own_admin_is_refused(app, username):
    """A parent group's admin, another group's admin, an officer, a volunteer: ScopeViolation."""
    with acting(app, username), pytest.raises(ScopeViolation):
        hours.generate_code(position_of(BOOKSTORE, BOOKSTORE_GUIDE), served_on=yesterday(), minutes=60)


def test_generate_code__closed_project_is_refused(app):
    with acting(app, "shunhe_team_admin"):
        project = project_of(ELDERLY)
        with pytest.raises(DomainError, match="结项"):
            hours.generate_code(project.positions[0], served_on=yesterday() - timedelta(days=20), minutes=60)


def test_generate_code__manually_closed_project_is_refused(app):
    with acting(app, "longting_team_admin"):
        project_of(BOOKSTORE).closed_on = utcnow() - timedelta(minutes=1)
        db.session.commit()
        with pytest.raises(DomainError, match="结项"):
            hours.generate_code(position_of(BOOKSTORE, BOOKSTORE_GUIDE), served_on=yesterday(), minutes=60)


def test_generate_code__backfill_project_is_refused(app):
    with acting(app, "longting_corps_admin"), pytest.raises(DomainError):
        hours.generate_code(project_of(BACKFILL).positions[0], served_on=yesterday(), minutes=60)


@pytest.mark.parametrize("offset", [-46, 46])
def test_generate_code__activity_date_outside_the_project_is_refused(app, offset):
    """The project runs from 45 days ago to 45 days ahead: before its start or after its end is refused."""
    with acting(app, "longting_team_admin"), pytest.raises(DomainError, match="lies outside|不在项目"):
        hours.generate_code(position_of(BOOKSTORE, BOOKSTORE_GUIDE), served_on=today() + timedelta(days=offset),
                            minutes=60)


def test_generate_code__future_activity_date_within_the_project_is_allowed(app):
    code = _code(app, day=today() + timedelta(days=3))
    assert _redeem(app, "vol_shunhe", code).startswith("该时长码自")  # usable from its date


@pytest.mark.parametrize("minutes, max_uses", [(0, None), (1441, None), (60, 0), (60, -1)])
def test_generate_code__minutes_and_max_uses_out_of_range_are_refused(app, minutes, max_uses):
    with acting(app, "longting_team_admin"), pytest.raises(DomainError):
        hours.generate_code(position_of(BOOKSTORE, BOOKSTORE_GUIDE), served_on=yesterday(), minutes=minutes,
                            max_uses=max_uses)


def test_generate_code__page_button_shows_the_code(app, client, login_as):
    with app.app_context():
        pid = position_of(BOOKSTORE, BOOKSTORE_GUIDE).id
    login_as("longting_team_admin")
    resp = client.post(f"/group-admin/positions/{pid}/timekeeping/codes",
                       data={"served_on": yesterday().isoformat(), "hours": "2.5", "max_uses": "30"})
    assert resp.status_code == 302
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "生成时长码" in html and "时长码" in html
    with app.app_context():
        code = db.session.scalar(select(HourCode).where(HourCode.position_id == pid)
                                 .order_by(HourCode.id.desc()))
        assert code.minutes == 150 and code.max_uses == 30
    assert code.code in html and "0 / 30" in html


def test_generate_code__page_refusal_keeps_the_form_and_writes_nothing(app, client, login_as):
    with app.app_context():
        pid = position_of(BOOKSTORE, BOOKSTORE_GUIDE).id
        before = db.session.scalar(select(func.count(HourCode.id)))
    login_as("longting_team_admin")
    resp = client.post(f"/group-admin/positions/{pid}/timekeeping/codes",
                       data={"served_on": "2020-01-01", "hours": "2", "max_uses": "7"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'value="2020-01-01"' in html and 'value="7"' in html
    with app.app_context():
        assert db.session.scalar(select(func.count(HourCode.id))) == before


def test_generate_code__page_of_another_groups_position_is_404(app, client, login_as):
    with app.app_context():
        pid = position_of(BOOKSTORE, BOOKSTORE_GUIDE).id
    login_as("culture_team_admin")
    assert client.post(f"/group-admin/positions/{pid}/timekeeping/codes",
                       data={"served_on": yesterday().isoformat(), "hours": "2"}).status_code == 404


def test_hour_codes__listed_only_while_the_project_is_open(app, client, login_as):
    code = _code(app)
    with app.app_context():
        pid = position_of(BOOKSTORE, BOOKSTORE_GUIDE).id
    login_as("longting_team_admin")
    assert code in client.get(f"/group-admin/positions/{pid}/timekeeping").get_data(as_text=True)
    with app.app_context():
        project_of(BOOKSTORE).closed_on = utcnow() - timedelta(minutes=1)
        db.session.commit()
        assert hours.codes_of(position_of(BOOKSTORE, BOOKSTORE_GUIDE)) == []
    html = client.get(f"/group-admin/positions/{pid}/timekeeping").get_data(as_text=True)
    assert code not in html and 'id="generate-code-form"' not in html and 'id="project-closed"' in html


# --- 录入时长码 ---


def test_redeem__enrolls_credits_at_once_and_creates_no_membership(app):
    code = _code(app, minutes=150)
    with app.app_context():
        volunteer = volunteer_of("vol_shunhe")
        position = position_of(BOOKSTORE, BOOKSTORE_GUIDE)
        total, count = volunteer.total_minutes, position.enrolled_count
        memberships = db.session.scalar(select(func.count(Membership.id)))
        assert db.session.scalar(select(Enrollment).where(Enrollment.position_id == position.id,
                                                          Enrollment.volunteer_id == volunteer.id)) is None
    record_id = _redeem(app, "vol_shunhe", code)
    assert isinstance(record_id, int), record_id
    with app.app_context():
        record = db.session.get(ServiceRecord, record_id)
        volunteer = volunteer_of("vol_shunhe")
        position = position_of(BOOKSTORE, BOOKSTORE_GUIDE)
        assert (record.status, record.source, record.minutes, record.served_on) == \
            (RecordStatus.APPROVED, RecordSource.HOUR_CODE, 150, yesterday())
        assert record.hour_code_id is not None and record.volunteer_no == volunteer.volunteer_no
        assert volunteer.total_minutes == total + 150
        enrollment = db.session.scalar(select(Enrollment).where(Enrollment.position_id == position.id,
                                                                Enrollment.volunteer_id == volunteer.id))
        assert (enrollment.status, enrollment.origin) == ("accepted", "hour_code")
        assert position.enrolled_count == count + 1
        assert db.session.scalar(select(func.count(Membership.id))) == memberships
        assert db.session.scalar(select(HourCode.uses).where(HourCode.code == code)) == 1
        assert ledger_mismatches([volunteer.id]) == []


def test_redeem__members_only_project_enrolls_a_non_member(app):
    code = _code(app, CULTURE, CULTURE_GUIDE, "culture_team_admin")
    with app.app_context():
        volunteer = volunteer_of("vol_shunhe")
        assert not db.session.scalar(select(Membership.id).where(Membership.volunteer_id == volunteer.id,
                                                                 Membership.group_id == project_of(CULTURE).group_id))
    assert isinstance(_redeem(app, "vol_shunhe", code), int)
    with app.app_context():
        volunteer = volunteer_of("vol_shunhe")
        assert not db.session.scalar(select(Membership.id).where(Membership.volunteer_id == volunteer.id,
                                                                 Membership.group_id == project_of(CULTURE).group_id))


def test_redeem__full_position_still_enrolls(app):
    with app.app_context():
        position = position_of(BOOKSTORE, BOOKSTORE_GUIDE)
        position.quota = position.enrolled_count
        db.session.commit()
        full = position.enrolled_count
    code = _code(app)
    assert isinstance(_redeem(app, "vol_shunhe", code), int)
    with app.app_context():
        assert position_of(BOOKSTORE, BOOKSTORE_GUIDE).enrolled_count == full + 1


def test_redeem__outside_the_age_limits_is_refused_and_nothing_changes(app):
    code = _code(app, CULTURE, CULTURE_GUIDE, "culture_team_admin")  # 18 and over
    with app.app_context():
        total = volunteer_of("vol_minor").total_minutes
    message = _redeem(app, "vol_minor", code)
    assert "18" in message
    with app.app_context():
        assert volunteer_of("vol_minor").total_minutes == total
        assert db.session.scalar(select(HourCode.uses).where(HourCode.code == code)) == 0


def test_redeem__minor_in_a_position_for_minors_is_credited(app):
    code = _code(app, CULTURE, CULTURE_YOUTH, "culture_team_admin")
    assert isinstance(_redeem(app, "vol_minor", code), int)


def test_redeem__same_volunteer_twice_is_refused(app):
    code = _code(app)
    assert isinstance(_redeem(app, "vol_shunhe", code), int)
    assert _redeem(app, "vol_shunhe", code) == "你已经使用过这个时长码。"
    with app.app_context():
        volunteer = volunteer_of("vol_shunhe")
        assert db.session.scalar(select(func.count(ServiceRecord.id)).where(
            ServiceRecord.volunteer_id == volunteer.id, ServiceRecord.source == "hour_code",
            ServiceRecord.hour_code_id == select(HourCode.id).where(HourCode.code == code).scalar_subquery())) == 1
        assert db.session.scalar(select(HourCode.uses).where(HourCode.code == code)) == 1


def test_redeem__database_refuses_a_second_record_of_one_code_and_volunteer(app):
    code = _code(app)
    record_id = _redeem(app, "vol_shunhe", code)
    with app.app_context():
        original = db.session.get(ServiceRecord, record_id)
        copy = ServiceRecord(**{c.key: getattr(original, c.key) for c in ServiceRecord.__table__.columns
                                if c.key not in ("id", "status")}, status="pending")
        db.session.add(copy)
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()


def test_redeem__maximum_uses_hold(app):
    code = _code(app, max_uses=1)
    assert isinstance(_redeem(app, "vol_shunhe", code), int)
    assert _redeem(app, "vol_longting", code) == "该时长码的使用次数已满。"
    with app.app_context():
        assert db.session.scalar(select(HourCode.uses).where(HourCode.code == code)) == 1


def test_redeem__before_the_activity_date_is_refused(app):
    code = _code(app, day=today() + timedelta(days=2))
    message = _redeem(app, "vol_shunhe", code)
    assert (today() + timedelta(days=2)).isoformat() in message


def test_redeem__after_the_project_closed_reads_invalid_or_expired(app):
    code = _code(app)
    with app.app_context():
        project_of(BOOKSTORE).closed_on = utcnow() - timedelta(minutes=1)
        db.session.commit()
    assert _redeem(app, "vol_shunhe", code) == INVALID


@pytest.mark.parametrize("typed", ["12345", "1234567890123", "abcdefghijkl", "１２３４５６７８９０１２",
                                   "12345678901²", "000000000000"])
def test_redeem__malformed_or_unknown_code_reads_invalid_or_expired(app, typed):
    assert _redeem(app, "vol_shunhe", typed) == INVALID


def test_redeem__spaces_and_hyphens_between_digit_groups_are_allowed(app):
    code = _code(app)
    assert isinstance(_redeem(app, "vol_shunhe", f"{code[:4]} {code[4:8]}-{code[8:]}"), int)


def test_redeem__full_width_digits_read_as_digits(app):
    code = _code(app)
    typed = "".join(chr(ord(c) - ord("0") + ord("０")) for c in code)
    assert isinstance(_redeem(app, "vol_shunhe", typed), int)


def test_redeem__empty_input_asks_for_the_code_and_is_not_counted(app):
    app.config.update(HOUR_CODE_FAILURES=2)
    code = _code(app)
    for _ in range(3):
        assert "12位时长码" in _redeem(app, "vol_shunhe", "  ")
    assert isinstance(_redeem(app, "vol_shunhe", code), int)


def test_redeem__unapproved_volunteer_is_refused(app):
    code = _code(app)
    with app.app_context():
        volunteer = volunteer_of("vol_shunhe")
        volunteer.status = "suspended"
        db.session.commit()
    assert "审核通过" in _redeem(app, "vol_shunhe", code)


def test_redeem__failures_are_rate_limited_per_user(app):
    """After 10 wrong codes in the hour even a valid code is refused without being
    looked up, with the minutes to wait; another user is not affected."""
    code = _code(app)
    for n in range(10):
        assert _redeem(app, "vol_shunhe", f"{n:012d}") == INVALID
    message = _redeem(app, "vol_shunhe", code)
    assert "次数过多" in message and "分钟" in message
    with app.app_context():
        assert db.session.scalar(select(HourCode.uses).where(HourCode.code == code)) == 0
    assert isinstance(_redeem(app, "vol_longting", code), int)


def test_redeem__limit_comes_from_config(app):
    app.config.update(HOUR_CODE_FAILURES=2, HOUR_CODE_FAILURE_WINDOW_SECONDS=120)
    code = _code(app)
    assert _redeem(app, "vol_shunhe", "111111111111") == INVALID
    assert _redeem(app, "vol_shunhe", "111111111112") == INVALID
    message = _redeem(app, "vol_shunhe", code)
    assert "次数过多" in message and "2 分钟" in message


def test_redeem__page_flow_credits_and_shows_the_record(app, client, login_as):
    code = _code(app, minutes=90)
    login_as("vol_shunhe")
    resp = client.post("/my/hours/redeem", data={"code": code}, follow_redirects=True)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "1.5" in html and BOOKSTORE in html and BOOKSTORE_GUIDE in html
    with app.app_context():
        volunteer = volunteer_of("vol_shunhe")
        record = db.session.scalar(select(ServiceRecord).where(ServiceRecord.volunteer_id == volunteer.id)
                                   .order_by(ServiceRecord.id.desc()))
        assert record.source == "hour_code" and f'id="my-record-{record.id}"' in html


def test_redeem__page_refusal_is_flashed_in_chinese(client, login_as):
    login_as("vol_shunhe")
    html = client.post("/my/hours/redeem", data={"code": "123"}, follow_redirects=True).get_data(as_text=True)
    assert INVALID in html


def test_redeem__group_admin_without_volunteer_record_is_404(client, login_as):
    login_as("kfvf_admin")
    assert client.post("/my/hours/redeem", data={"code": "123456789012"}).status_code in (302, 403, 404)


def test_hour_code__uses_never_exceed_max_uses_in_the_database(app):
    with app.app_context():
        code = db.session.scalar(select(HourCode).where(HourCode.max_uses.is_not(None)))
        code.uses = code.max_uses + 1
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()


def test_hour_codes__backfill_project_page_offers_no_codes(app, client, login_as):
    with app.app_context():
        position = project_of(BACKFILL).positions[0]
        pid = position.id
    login_as("longting_corps_admin")
    html = client.get(f"/group-admin/positions/{pid}/timekeeping").get_data(as_text=True)
    assert "录入时长" in html and 'id="generate-code-form"' not in html and 'id="hour-codes-panel"' not in html
    assert 'id="backfill-hint"' in html
    assert client.post(f"/group-admin/positions/{pid}/timekeeping/codes",
                       data={"served_on": yesterday().isoformat(), "hours": "2"}).status_code == 400
