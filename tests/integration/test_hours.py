"""Service hours (issue 6, items 6–10): 申请时长 and its decision on 计时, 录入时长 by
the group (and backfill), corrections by the group or asked for by the volunteer,
the ledger's rules in the service and in the database (append-only, 24 hours a day,
dates, enrollment), the officers' flags, and 用户中心 → 服务时长 — over HTTP and at
service level, each refusal leaving nothing half-written."""
from __future__ import annotations

import re
from datetime import time, timedelta

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import (
    AuditEvent, Enrollment, EnrollmentOrigin, Position, RecordSource, ServiceRecord, Volunteer,
    VolunteerDay,
)
from app.services import hours, projects
from app.services.clock import today, utcnow
from app.services.errors import DomainError, ScopeViolation, ValidationFailed
from tests.integration._hours_helpers import (
    BACKFILL, BOOKSTORE, BOOKSTORE_GUIDE, BOOKSTORE_TRAFFIC, ELDERLY, accepted_in, acting,
    adult_volunteers, free_day, ledger_mismatches, position_of, project_of, volunteer_of, yesterday,
)


def _ids(app, project=BOOKSTORE, position=BOOKSTORE_GUIDE):
    with app.app_context():
        pos = position_of(project, position)
        return pos.id, accepted_in(pos)


def _enrollment_id(app, username, project=BOOKSTORE, position=BOOKSTORE_GUIDE) -> int:
    with app.app_context():
        return db.session.scalar(select(Enrollment.id).where(
            Enrollment.position_id == position_of(project, position).id,
            Enrollment.volunteer_id == volunteer_of(username).id))


def _total(app, volunteer_id) -> int:
    with app.app_context():
        return db.session.scalar(select(Volunteer.total_minutes).where(Volunteer.id == volunteer_id))


def _count_records(app, **where) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(ServiceRecord.id)).filter_by(**where))


def _record_hours(app, username, position_id, volunteer_ids, **kw):
    with acting(app, username):
        position = db.session.get(Position, position_id)
        chosen = list(db.session.scalars(select(Volunteer).where(Volunteer.id.in_(volunteer_ids))))
        try:
            records = hours.record_hours(position, chosen, **kw)
        except DomainError:
            db.session.rollback()
            raise
        db.session.commit()
        return [r.id for r in records]


def _apply(app, username, minutes=120, day=None, description="维持秩序，劝导游客"):
    with acting(app, username):
        volunteer = volunteer_of(username)
        enrollment = db.session.get(Enrollment, _enrollment_id(app, username))
        record = hours.apply_for_hours(volunteer, enrollment, served_on=day or yesterday(), minutes=minutes,
                                       description=description)
        db.session.commit()
        return record.id


# --- 申请时长 ---


def test_apply_page__own_accepted_enrollment_shows_the_form(app, client, login_as):
    enrollment_id = _enrollment_id(app, "vol_longting")
    login_as("vol_longting")
    resp = client.get(f"/my/hours/apply/{enrollment_id}")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "申请时长" in html and BOOKSTORE in html and "提交" in html
    assert 'name="served_on"' in html and 'name="hours"' in html and 'name="description"' in html


def test_apply__volunteer_submits_a_pending_application(app, client, login_as):
    enrollment_id = _enrollment_id(app, "vol_longting")
    with app.app_context():
        volunteer_id = volunteer_of("vol_longting").id
        day = free_day([volunteer_id], project_of(BOOKSTORE), need=150)
    total = _total(app, volunteer_id)
    login_as("vol_longting")
    resp = client.post(f"/my/hours/apply/{enrollment_id}",
                       data={"served_on": day.isoformat(), "hours": "2.5", "description": "清理小广告"})
    assert resp.status_code == 302
    with app.app_context():
        record = db.session.scalar(select(ServiceRecord).where(ServiceRecord.volunteer_id == volunteer_id)
                                   .order_by(ServiceRecord.id.desc()))
        assert (record.status, record.source, record.minutes, record.served_on, record.description) == \
            ("pending", "application", 150, day, "清理小广告")
    assert _total(app, volunteer_id) == total  # nothing credited before approval
    html = client.get("/my/hours/").get_data(as_text=True)
    assert f'id="my-record-{record.id}" data-status="pending"' in html


@pytest.mark.parametrize("form, message", [
    ({"served_on": (today() + timedelta(days=1)).isoformat(), "hours": "2"}, "晚于今天"),
    ({"served_on": (today() - timedelta(days=60)).isoformat(), "hours": "2"}, "不在项目起止时间内"),
    ({"served_on": "yesterday", "hours": "2"}, "YYYY-MM-DD"),
    ({"hours": "0"}, "24"),
    ({"hours": "24.5"}, "24"),
    ({"hours": "two"}, "2.5"),
    ({"description": "  "}, "请填写服务内容"),
])
def test_apply__bad_input_is_refused_with_its_message_and_nothing_written(app, client, login_as, form, message):
    enrollment_id = _enrollment_id(app, "vol_longting")
    before = _count_records(app)
    login_as("vol_longting")
    data = {"served_on": yesterday().isoformat(), "hours": "2", "description": "劝导", **form}
    resp = client.post(f"/my/hours/apply/{enrollment_id}", data=data)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and message in html
    assert _count_records(app) == before


def test_apply__day_already_full_is_refused(app):
    with app.app_context():
        volunteer_id = volunteer_of("vol_longting").id
        day = free_day([volunteer_id], project_of(BOOKSTORE))
        db.session.merge(VolunteerDay(volunteer_id=volunteer_id, served_on=day, minutes=1400))
        db.session.commit()
    with pytest.raises(DomainError, match="24"):
        _apply(app, "vol_longting", minutes=60, day=day)


@pytest.mark.parametrize("username", ["vol_shunhe", "vol_minor"])
def test_apply_page__someone_elses_enrollment_is_404(app, client, login_as, username):
    enrollment_id = _enrollment_id(app, "vol_longting")
    login_as(username)
    assert client.get(f"/my/hours/apply/{enrollment_id}").status_code == 404
    assert client.post(f"/my/hours/apply/{enrollment_id}",
                       data={"served_on": yesterday().isoformat(), "hours": "2", "description": "x"}).status_code == 404


def test_apply_page__enrollment_not_accepted_is_404(app, client, login_as):
    enrollment_id = _enrollment_id(app, "vol_longting")
    with app.app_context():
        db.session.get(Enrollment, enrollment_id).status = "cancelled"
        db.session.commit()
    login_as("vol_longting")
    assert client.get(f"/my/hours/apply/{enrollment_id}").status_code == 404


def test_apply__closed_project_is_refused(app):
    with app.app_context():
        project_of(BOOKSTORE).closed_on = utcnow() - timedelta(minutes=5)
        db.session.commit()
    with pytest.raises(DomainError, match="结项"):
        _apply(app, "vol_longting")


def test_apply__suspended_volunteer_is_refused(app):
    with app.app_context():
        volunteer_of("vol_longting").status = "suspended"
        db.session.commit()
    with pytest.raises(DomainError, match="审核通过"):
        _apply(app, "vol_longting")


@pytest.mark.parametrize("typed", ["１", "2.555", "٣"])
def test_parse_hours__only_ascii_digits_and_two_decimals(app, typed):
    with app.test_request_context(), pytest.raises(DomainError):
        hours.parse_hours(typed)


@pytest.mark.parametrize("minutes,text", [(150, "2.5"), (76, "1.27"), (1, "0.02"), (120, "2"), (-30, "-0.5")])
def test_hours_text__at_most_two_decimals(minutes, text):
    assert hours.hours_text(minutes) == text


def test_apply__service_level_other_volunteers_enrollment_is_scope_violation(app):
    with acting(app, "vol_shunhe"), pytest.raises(ScopeViolation):
        hours.apply_for_hours(volunteer_of("vol_shunhe"), db.session.get(Enrollment, _enrollment_id(app, "vol_longting")),
                              served_on=yesterday(), minutes=60, description="x")


# --- Deciding applications on 计时 ---


def test_timekeeping__admin_sees_pending_applications(app, client, login_as):
    record_id = _apply(app, "vol_longting")
    position_id, _ = _ids(app)
    login_as("longting_team_admin")
    html = client.get(f"/group-admin/positions/{position_id}/timekeeping").get_data(as_text=True)
    assert f'id="pending-{record_id}"' in html and "维持秩序，劝导游客" in html


def test_decide__bulk_approve_credits_every_ticked_application(app, client, login_as):
    position_id, enrolled = _ids(app)
    with app.app_context():
        day = free_day(enrolled[:2], project_of(BOOKSTORE), need=60)
        volunteers = {v.id: v for v in db.session.scalars(select(Volunteer).where(Volunteer.id.in_(enrolled[:2])))}
    totals = {vid: _total(app, vid) for vid in enrolled[:2]}
    ids = []
    with acting(app, None):
        for vid in enrolled[:2]:
            volunteer = db.session.get(Volunteer, vid)
            enrollment = db.session.scalar(select(Enrollment).where(Enrollment.position_id == position_id,
                                                                    Enrollment.volunteer_id == vid))
            ids.append(hours.apply_for_hours(volunteer, enrollment, served_on=day, minutes=60,
                                             description="巡查").id)
        db.session.commit()
    login_as("longting_team_admin")
    resp = client.post(f"/group-admin/positions/{position_id}/timekeeping/decide",
                       data={"rowid": [str(i) for i in ids], "decision": "approve"}, follow_redirects=True)
    assert "已通过 2 条记录" in resp.get_data(as_text=True)
    with app.app_context():
        assert {r.status for r in db.session.scalars(select(ServiceRecord).where(ServiceRecord.id.in_(ids)))} \
            == {"approved"}
        assert ledger_mismatches(enrolled[:2]) == []
    assert all(_total(app, vid) == totals[vid] + 60 for vid in volunteers)


def test_decide__reject_needs_a_reason_that_the_volunteer_reads(app, client, login_as):
    record_id = _apply(app, "vol_longting")
    position_id, _ = _ids(app)
    login_as("longting_team_admin")
    html = client.post(f"/group-admin/positions/{position_id}/timekeeping/decide",
                       data={"rowid": str(record_id), "decision": "reject"}, follow_redirects=True
                       ).get_data(as_text=True)
    with app.app_context():
        assert db.session.get(ServiceRecord, record_id).status == "pending"
    client.post(f"/group-admin/positions/{position_id}/timekeeping/decide",
                data={"rowid": str(record_id), "decision": "reject", "reason": "当天未到岗"})
    with app.app_context():
        record = db.session.get(ServiceRecord, record_id)
        assert (record.status, record.reject_reason) == ("rejected", "当天未到岗")
    client.get("/logout/")
    login_as("vol_longting")
    html = client.get("/my/hours/").get_data(as_text=True)
    assert "当天未到岗" in html and f'id="my-record-{record_id}" data-status="rejected"' in html


def test_decide__approval_past_24_hours_is_refused_all_or_none(app):
    position_id, enrolled = _ids(app)
    first = _apply(app, "vol_longting", minutes=60)
    with app.app_context():
        volunteer_id = volunteer_of("vol_longting").id
        other = next(v for v in enrolled if v != volunteer_id)
        enrollment = db.session.scalar(select(Enrollment).where(Enrollment.position_id == position_id,
                                                                Enrollment.volunteer_id == other))
        day = free_day([other], project_of(BOOKSTORE))
        second = hours.apply_for_hours(db.session.get(Volunteer, other), enrollment, served_on=day, minutes=60,
                                       description="x").id
        used = db.session.scalar(select(VolunteerDay.minutes).where(
            VolunteerDay.volunteer_id == volunteer_id, VolunteerDay.served_on == yesterday())) or 0
        db.session.merge(VolunteerDay(volunteer_id=volunteer_id, served_on=yesterday(), minutes=1400))
        db.session.execute(Volunteer.__table__.update().where(Volunteer.id == volunteer_id)
                           .values(total_minutes=Volunteer.total_minutes + 1400 - used))
        db.session.commit()
    with acting(app, "longting_team_admin"):
        records = list(db.session.scalars(select(ServiceRecord).where(ServiceRecord.id.in_([first, second]))))
        with pytest.raises(DomainError, match="24"):
            hours.decide_records(records, "approve")
        db.session.rollback()
        assert {r.status for r in db.session.scalars(select(ServiceRecord).where(
            ServiceRecord.id.in_([first, second])))} == {"pending"}


@pytest.mark.parametrize("username", ["culture_team_admin", "longting_corps_admin"])
def test_decide__another_groups_admin_gets_404_and_nothing_changes(app, client, login_as, username):
    record_id = _apply(app, "vol_longting")
    position_id, _ = _ids(app)
    login_as(username)
    resp = client.post(f"/group-admin/positions/{position_id}/timekeeping/decide",
                       data={"rowid": str(record_id), "decision": "approve"})
    assert resp.status_code == 404
    with app.app_context():
        assert db.session.get(ServiceRecord, record_id).status == "pending"


def test_decide__record_of_another_position_is_404(app, client, login_as):
    record_id = _apply(app, "vol_longting")
    other_position, _ = _ids(app, BOOKSTORE, BOOKSTORE_TRAFFIC)
    login_as("longting_team_admin")
    assert client.post(f"/group-admin/positions/{other_position}/timekeeping/decide",
                       data={"rowid": str(record_id), "decision": "approve"}).status_code == 404


def test_decide__service_refuses_a_group_not_administered_directly(app):
    record_id = _apply(app, "vol_longting")
    with acting(app, "longting_corps_admin"), pytest.raises(ScopeViolation):
        hours.decide_records([db.session.get(ServiceRecord, record_id)], "approve")


def test_decide__already_decided_record_is_refused(app):
    record_id = _apply(app, "vol_longting")
    with acting(app, "longting_team_admin"):
        hours.decide_records([db.session.get(ServiceRecord, record_id)], "approve")
        db.session.commit()
        with pytest.raises(DomainError):
            hours.decide_records([db.session.get(ServiceRecord, record_id)], "reject", "x")


# --- 录入时长 (group entry) ---


def test_timekeeping_page__lists_accepted_enrollments_with_tick_boxes(app, client, login_as):
    position_id, enrolled = _ids(app)
    login_as("longting_team_admin")
    resp = client.get(f"/group-admin/positions/{position_id}/timekeeping")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "计时" in html and "录入时长" in html and "生成时长码" in html
    shown = {int(v) for v in re.findall(r'name="volunteer" value="(\d+)"', html)}
    assert shown == set(enrolled)
    assert 'value="3"' in html  # default hours: 180 minutes
    assert "table-responsive" in html and "js/timekeeping.js" in html


@pytest.mark.parametrize("username, status", [
    ("culture_team_admin", 404), ("longting_corps_admin", 404), ("kfvf_admin", 404), ("admin", 200),
])
def test_timekeeping_page__only_the_projects_own_admins(app, client, login_as, username, status):
    position_id, _ = _ids(app)
    login_as(username)
    assert client.get(f"/group-admin/positions/{position_id}/timekeeping").status_code == status


@pytest.mark.parametrize("username", ["vol_longting", "longting_officer"])
def test_timekeeping_page__volunteers_and_officers_have_no_access(app, client, login_as, username):
    position_id, _ = _ids(app)
    login_as(username)
    assert client.get(f"/group-admin/positions/{position_id}/timekeeping").status_code in (302, 403, 404)


def test_timekeeping_page__unknown_or_huge_position_id_is_404(client, login_as):
    login_as("longting_team_admin")
    assert client.get("/group-admin/positions/999999/timekeeping").status_code == 404
    assert client.get("/group-admin/positions/99999999999999/timekeeping").status_code == 404


def test_record_hours__ticked_volunteers_are_credited_at_once(app, client, login_as):
    position_id, enrolled = _ids(app)
    chosen = enrolled[:3]
    with app.app_context():
        day = free_day(chosen, project_of(BOOKSTORE), need=90)
    totals = {v: _total(app, v) for v in chosen}
    login_as("longting_team_admin")
    resp = client.post(f"/group-admin/positions/{position_id}/timekeeping/record", data={
        "volunteer": [str(v) for v in chosen], "served_on": day.isoformat(), "hours": "1.5",
        "start_time": "", "description": "周末劝导"}, follow_redirects=True)
    assert "已为 3 名志愿者录入" in resp.get_data(as_text=True)
    with app.app_context():
        records = db.session.scalars(select(ServiceRecord).where(
            ServiceRecord.volunteer_id.in_(chosen), ServiceRecord.served_on == day,
            ServiceRecord.description == "周末劝导")).all()
        assert len(records) == 3
        assert {(r.status, r.source, r.minutes) for r in records} == {("approved", "group_entry", 90)}
        assert all(r.approved_by_fk is not None and r.volunteer_no for r in records)
        assert ledger_mismatches(chosen) == []
    assert all(_total(app, v) == totals[v] + 90 for v in chosen)


def test_record_hours__backfill_project_writes_backfill_records(app):
    with acting(app, "longting_corps_admin"):
        position = project_of(BACKFILL).positions[0]
        enrolled = accepted_in(position)
        day = free_day(enrolled[:1], project_of(BACKFILL), need=60)
        position_id = position.id
    ids = _record_hours(app, "longting_corps_admin", position_id, enrolled[:1], served_on=day, minutes=60)
    with app.app_context():
        assert db.session.get(ServiceRecord, ids[0]).source == RecordSource.BACKFILL


def test_record_hours__a_volunteer_not_enrolled_refuses_the_whole_entry(app, client, login_as):
    position_id, enrolled = _ids(app)
    with app.app_context():
        outsider = volunteer_of("vol_shunhe")
        assert outsider.id not in enrolled
        outsider_id = outsider.id
    before = _count_records(app)
    login_as("longting_team_admin")
    resp = client.post(f"/group-admin/positions/{position_id}/timekeeping/record", data={
        "volunteer": [str(enrolled[0]), str(outsider_id)], "served_on": yesterday().isoformat(), "hours": "1"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "王秀英" in html and "未报名岗位" in html
    assert f'name="volunteer" value="{enrolled[0]}" aria-label' in html and "checked" in html  # ticks kept
    assert _count_records(app) == before


@pytest.mark.parametrize("kw, message", [
    ({"served_on": today() + timedelta(days=1)}, "晚于今天"),
    ({"served_on": today() - timedelta(days=50)}, "不在项目起止时间内"),
    ({"minutes": 0}, "24"),
    ({"minutes": 1441}, "24"),
])
def test_record_hours__date_and_minutes_rules(app, kw, message):
    position_id, enrolled = _ids(app)
    before = _count_records(app)
    args = {"served_on": yesterday(), "minutes": 60, **kw}
    with pytest.raises(DomainError, match=message):
        _record_hours(app, "longting_team_admin", position_id, enrolled[:2], **args)
    assert _count_records(app) == before


def test_record_hours__a_day_past_24_hours_refuses_everyone(app):
    position_id, enrolled = _ids(app)
    with app.app_context():
        day = free_day(enrolled[:2], project_of(BOOKSTORE))
    _record_hours(app, "longting_team_admin", position_id, enrolled[:1], served_on=day, minutes=1000)
    before = _count_records(app)
    with pytest.raises(ValidationFailed, match="24") as err:
        _record_hours(app, "longting_team_admin", position_id, enrolled[:2], served_on=day, minutes=500)
    assert len(err.value.messages) == 1
    assert _count_records(app) == before
    with app.app_context():
        assert ledger_mismatches(enrolled[:2]) == []


def test_record_hours__day_check_in_the_database(app):
    """volunteer_day's CHECK refuses a day past 24 hours even when the service is bypassed."""
    with app.app_context():
        volunteer_id = volunteer_of("vol_longting").id
        db.session.merge(VolunteerDay(volunteer_id=volunteer_id, served_on=today() - timedelta(days=400),
                                      minutes=1441))
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()


def test_record_hours__closed_project_is_refused(app):
    with acting(app, "shunhe_team_admin"):
        position = project_of(ELDERLY).positions[0]
        enrolled, position_id = accepted_in(position), position.id
    with pytest.raises(DomainError, match="结项"):
        _record_hours(app, "shunhe_team_admin", position_id, enrolled[:1], served_on=yesterday() - timedelta(days=20),
                      minutes=60)


def test_record_hours__other_groups_admin_gets_404(app, client, login_as):
    position_id, enrolled = _ids(app)
    before = _count_records(app)
    login_as("culture_team_admin")
    assert client.post(f"/group-admin/positions/{position_id}/timekeeping/record", data={
        "volunteer": [str(enrolled[0])], "served_on": yesterday().isoformat(), "hours": "1"}).status_code == 404
    assert _count_records(app) == before


def test_record_hours__nobody_ticked_is_refused(app, client, login_as):
    position_id, _ = _ids(app)
    login_as("longting_team_admin")
    resp = client.post(f"/group-admin/positions/{position_id}/timekeeping/record",
                       data={"served_on": yesterday().isoformat(), "hours": "1"})
    assert resp.status_code == 400 and "请先勾选" in resp.get_data(as_text=True)


def test_record_hours__start_time_gives_the_records_times(app):
    position_id, enrolled = _ids(app)
    with app.app_context():
        day = free_day(enrolled[:1], project_of(BOOKSTORE), need=120)
    [record_id] = _record_hours(app, "longting_team_admin", position_id, enrolled[:1], served_on=day, minutes=120,
                                start_time=time(8, 30))
    with app.app_context():
        record = db.session.get(ServiceRecord, record_id)
        assert record.ended_at - record.started_at == timedelta(minutes=120)
        from app.services.clock import to_local
        assert to_local(record.started_at).strftime("%H:%M") == "08:30"


# --- Flags for officers ---


def test_flags__overlapping_times_are_flagged(app):
    position_id, enrolled = _ids(app)
    with app.app_context():
        day = free_day(enrolled[:1], project_of(BOOKSTORE))  # no other record that day
    [first] = _record_hours(app, "longting_team_admin", position_id, enrolled[:1], served_on=day, minutes=120,
                            start_time=time(9, 0))
    [second] = _record_hours(app, "longting_team_admin", position_id, enrolled[:1], served_on=day, minutes=60,
                             start_time=time(10, 0))
    with app.app_context():
        assert not db.session.get(ServiceRecord, first).is_flagged
        record = db.session.get(ServiceRecord, second)
        assert record.is_flagged and "重叠" in record.flag_reasons


def test_flags__back_to_back_times_are_not_flagged(app):
    position_id, enrolled = _ids(app)
    with app.app_context():
        day = free_day(enrolled[:1], project_of(BOOKSTORE))  # no other record that day
    _record_hours(app, "longting_team_admin", position_id, enrolled[:1], served_on=day, minutes=60,
                  start_time=time(9, 0))
    [second] = _record_hours(app, "longting_team_admin", position_id, enrolled[:1], served_on=day, minutes=60,
                             start_time=time(10, 0))
    with app.app_context():
        assert not db.session.get(ServiceRecord, second).is_flagged


def test_flags__entry_more_than_30_days_after_the_service_date(app):
    position_id, enrolled = _ids(app)
    [late] = _record_hours(app, "longting_team_admin", position_id, enrolled[:1],
                           served_on=today() - timedelta(days=31), minutes=30)
    [timely] = _record_hours(app, "longting_team_admin", position_id, enrolled[1:2],
                             served_on=today() - timedelta(days=30), minutes=30)
    with app.app_context():
        assert "30 天之后" in db.session.get(ServiceRecord, late).flag_reasons
        assert not db.session.get(ServiceRecord, timely).is_flagged


def test_flags__hours_beyond_the_shift(app):
    position_id, enrolled = _ids(app)
    with app.app_context():
        position = db.session.get(Position, position_id)
        position.shift_start, position.shift_end = time(8, 0), time(10, 0)
        db.session.commit()
    [within] = _record_hours(app, "longting_team_admin", position_id, enrolled[:1], served_on=yesterday(),
                             minutes=120)
    [beyond] = _record_hours(app, "longting_team_admin", position_id, enrolled[1:2], served_on=yesterday(),
                             minutes=121)
    with app.app_context():
        assert not db.session.get(ServiceRecord, within).is_flagged
        assert "班次" in db.session.get(ServiceRecord, beyond).flag_reasons


def test_flags__many_admin_enrolled_volunteers_credited_the_same_day(app):
    """An admin adds volunteers (origin admin) and credits them the same day: once the
    project has HOURS_BULK_FLAG_THRESHOLD such volunteers, all their records of the day are flagged."""
    app.config["HOURS_BULK_FLAG_THRESHOLD"] = 3
    with acting(app, "longting_team_admin"):
        position = position_of(BOOKSTORE, BOOKSTORE_TRAFFIC)
        position_id = position.id
        fresh = adult_volunteers(4, exclude=accepted_in(position))
        for volunteer in fresh:
            projects.enroll(position, volunteer, origin=EnrollmentOrigin.ADMIN, over_quota=True)
        db.session.commit()
        ids = [v.id for v in fresh]
    [first, second] = _record_hours(app, "longting_team_admin", position_id, ids[:2], served_on=yesterday(),
                                    minutes=60)
    with app.app_context():
        assert not db.session.get(ServiceRecord, first).is_flagged  # two so far: below the threshold
    later = _record_hours(app, "longting_team_admin", position_id, ids[2:], served_on=yesterday(), minutes=60)
    with app.app_context():
        flagged = db.session.scalars(select(ServiceRecord).where(ServiceRecord.id.in_([first, second, *later]))).all()
        assert all(r.is_flagged and "管理员当天添加" in r.flag_reasons for r in flagged)


def test_flags__officer_sees_flag_reasons_on_the_records_page(app, client, login_as):
    position_id, enrolled = _ids(app)
    [late] = _record_hours(app, "longting_team_admin", position_id, enrolled[:1],
                           served_on=today() - timedelta(days=40), minutes=30)
    login_as("longting_officer")
    html = client.get(f"/service-records/show/{late}").get_data(as_text=True)
    assert "30 天之后" in html


# --- Corrections ---


def _approved_record(app, position_id, volunteer_id, minutes=120):
    with app.app_context():
        day = free_day([volunteer_id], project_of(BOOKSTORE), need=minutes)
    return _record_hours(app, "longting_team_admin", position_id, [volunteer_id], served_on=day,
                         minutes=minutes)[0]


def test_correct__admin_takes_hours_away_with_a_reason_audited(app, client, login_as):
    position_id, enrolled = _ids(app)
    record_id = _approved_record(app, position_id, enrolled[0])
    total = _total(app, enrolled[0])
    login_as("longting_team_admin")
    page = client.get(f"/group-admin/positions/{position_id}/timekeeping/records/{record_id}/correct")
    assert page.status_code == 200 and "更正" in page.get_data(as_text=True)
    resp = client.post(f"/group-admin/positions/{position_id}/timekeeping/records/{record_id}/correct",
                       data={"hours": "-0.5", "reason": "提前离岗半小时"})
    assert resp.status_code == 302
    with app.app_context():
        correction = db.session.scalar(select(ServiceRecord).where(ServiceRecord.corrects_id == record_id))
        assert (correction.minutes, correction.source, correction.status, correction.reason) == \
            (-30, "correction", "approved", "提前离岗半小时")
        assert db.session.get(ServiceRecord, record_id).minutes == 120  # the original is untouched
        event_ = db.session.scalar(select(AuditEvent).where(AuditEvent.object_type == "service_record",
                                                            AuditEvent.object_id == correction.id,
                                                            AuditEvent.action == "create"))
        assert event_ is not None and event_.actor_name and "提前离岗半小时" in event_.after_json
        assert ledger_mismatches([enrolled[0]]) == []
    assert _total(app, enrolled[0]) == total - 30


@pytest.mark.parametrize("hours_text, reason, message", [
    ("0", "x", "不能为 0"), ("1", "", "原因"), ("-2.5", "x", "不能超过该记录"), ("23", "x", "24"),
    ("abc", "x", "2.5"),
])
def test_correct__refusals(app, client, login_as, hours_text, reason, message):
    position_id, enrolled = _ids(app)
    record_id = _approved_record(app, position_id, enrolled[0])
    before = _count_records(app)
    login_as("longting_team_admin")
    resp = client.post(f"/group-admin/positions/{position_id}/timekeeping/records/{record_id}/correct",
                       data={"hours": hours_text, "reason": reason})
    assert resp.status_code == 400 and message in resp.get_data(as_text=True)
    assert _count_records(app) == before


def test_correct__positive_correction_counts_towards_the_day(app):
    position_id, enrolled = _ids(app)
    record_id = _approved_record(app, position_id, enrolled[0], minutes=60)
    with acting(app, "longting_team_admin"):
        correction = hours.correct_record(db.session.get(ServiceRecord, record_id), minutes=45, reason="漏记")
        db.session.commit()
        assert correction.minutes == 45 and hours.corrected_minutes(db.session.get(ServiceRecord, record_id)) == 105
        assert ledger_mismatches(enrolled[:1]) == []


def test_correct__a_correction_cannot_be_corrected(app):
    position_id, enrolled = _ids(app)
    record_id = _approved_record(app, position_id, enrolled[0])
    with acting(app, "longting_team_admin"):
        correction = hours.correct_record(db.session.get(ServiceRecord, record_id), minutes=-10, reason="x")
        db.session.commit()
        with pytest.raises(DomainError, match="原始记录"):
            hours.correct_record(correction, minutes=-10, reason="x")


def test_correct__other_groups_admin_is_refused(app, client, login_as):
    position_id, enrolled = _ids(app)
    record_id = _approved_record(app, position_id, enrolled[0])
    with acting(app, "culture_team_admin"), pytest.raises(ScopeViolation):
        hours.correct_record(db.session.get(ServiceRecord, record_id), minutes=-10, reason="x")
    login_as("culture_team_admin")
    assert client.get(f"/group-admin/positions/{position_id}/timekeeping/records/{record_id}/correct"
                      ).status_code == 404


def test_correct__pending_record_of_the_position_is_404(app, client, login_as):
    record_id = _apply(app, "vol_longting")
    position_id, _ = _ids(app)
    login_as("longting_team_admin")
    assert client.get(f"/group-admin/positions/{position_id}/timekeeping/records/{record_id}/correct"
                      ).status_code == 404


def test_request_correction__volunteer_asks_and_the_admin_approves(app, client, login_as):
    position_id, _ = _ids(app)
    with app.app_context():
        volunteer_id = volunteer_of("vol_longting").id
    record_id = _approved_record(app, position_id, volunteer_id, minutes=60)
    total = _total(app, volunteer_id)
    login_as("vol_longting")
    html = client.get("/my/hours/").get_data(as_text=True)
    assert f"/my/hours/records/{record_id}/correction" in html and "更正申请" in html
    resp = client.post(f"/my/hours/records/{record_id}/correction", data={"hours": "1", "reason": "实际服务两小时"})
    assert resp.status_code == 302
    with app.app_context():
        request_ = db.session.scalar(select(ServiceRecord).where(ServiceRecord.corrects_id == record_id))
        assert (request_.status, request_.source, request_.minutes) == ("pending", "correction", 60)
    assert _total(app, volunteer_id) == total
    assert "已申请更正" in client.get("/my/hours/").get_data(as_text=True)
    assert client.post(f"/my/hours/records/{record_id}/correction",
                       data={"hours": "1", "reason": "again"}).status_code == 400  # one at a time
    client.get("/logout/")
    login_as("longting_team_admin")
    page = client.get(f"/group-admin/positions/{position_id}/timekeeping").get_data(as_text=True)
    assert f'id="pending-{request_.id}" data-source="correction"' in page and "实际服务两小时" in page
    client.post(f"/group-admin/positions/{position_id}/timekeeping/decide",
                data={"rowid": str(request_.id), "decision": "approve"})
    assert _total(app, volunteer_id) == total + 60
    with app.app_context():
        assert ledger_mismatches([volunteer_id]) == []


def test_request_correction__someone_elses_record_is_404(app, client, login_as):
    position_id, enrolled = _ids(app)
    with app.app_context():
        mine = volunteer_of("vol_longting").id
    other = next(v for v in enrolled if v != mine)
    record_id = _approved_record(app, position_id, other)
    login_as("vol_longting")
    assert client.get(f"/my/hours/records/{record_id}/correction").status_code == 404
    assert client.post(f"/my/hours/records/{record_id}/correction",
                       data={"hours": "1", "reason": "x"}).status_code == 404
    with acting(app, "vol_longting"), pytest.raises(ScopeViolation):
        hours.request_correction(volunteer_of("vol_longting"), db.session.get(ServiceRecord, record_id),
                                 minutes=60, reason="x")


def test_request_correction__approval_rechecks_what_the_record_holds(app):
    """Two requests decided one after the other cannot take a record below zero."""
    position_id, _ = _ids(app)
    with app.app_context():
        volunteer_id = volunteer_of("vol_longting").id
    record_id = _approved_record(app, position_id, volunteer_id, minutes=60)
    with acting(app, "vol_longting"):
        request_id = hours.request_correction(volunteer_of("vol_longting"), db.session.get(ServiceRecord, record_id),
                                              minutes=-45, reason="少算").id
        db.session.commit()
    with acting(app, "longting_team_admin"):
        hours.correct_record(db.session.get(ServiceRecord, record_id), minutes=-30, reason="admin")
        db.session.commit()
        with pytest.raises(DomainError, match="不能超过该记录"):
            hours.decide_records([db.session.get(ServiceRecord, request_id)], "approve")
        db.session.rollback()
        assert ledger_mismatches([volunteer_id]) == []


# --- The ledger is append-only (before_flush guard) ---


def _some_approved(app):
    return db.session.scalar(select(ServiceRecord).where(ServiceRecord.status == "approved")
                             .order_by(ServiceRecord.id))


@pytest.mark.parametrize("column, value", [
    ("minutes", 1), ("served_on", today() - timedelta(days=300)), ("volunteer_id", 1), ("status", "rejected"),
    ("source", "application"), ("project_id", 1), ("position_id", None), ("hour_code_id", None),
])
def test_ledger__approved_record_columns_never_change(app, column, value):
    with app.app_context():
        record = _some_approved(app)
        db.session.commit()  # expired: the guard must still know it was approved
        setattr(record, column, value if value != getattr(record, column) else 2)
        with pytest.raises(hours.LedgerViolation):
            db.session.flush()
        db.session.rollback()


def test_ledger__approved_record_is_never_deleted(app):
    with app.app_context():
        db.session.delete(_some_approved(app))
        with pytest.raises(hours.LedgerViolation):
            db.session.flush()
        db.session.rollback()


def test_ledger__flags_of_an_approved_record_may_change(app):
    with app.app_context():
        record = _some_approved(app)
        record.is_flagged, record.flag_reasons = True, "x"
        db.session.commit()
        assert db.session.get(ServiceRecord, record.id).is_flagged


def test_ledger__a_pending_record_may_still_change(app):
    record_id = _apply(app, "vol_longting")
    with app.app_context():
        db.session.get(ServiceRecord, record_id).minutes = 30
        db.session.commit()
        db.session.delete(db.session.get(ServiceRecord, record_id))
        db.session.commit()


# --- 用户中心 → 服务时长 ---


def test_my_hours__every_record_with_totals(app, client, login_as):
    with app.app_context():
        volunteer = volunteer_of("vol_longting")
        records = db.session.scalars(select(ServiceRecord).where(ServiceRecord.volunteer_id == volunteer.id)).all()
        total = volunteer.total_minutes
        pending = sum(r.minutes for r in records if r.status == "pending")
        from app.services.volunteers import star_level
        stars = star_level(total)
    assert 0 < len(records) <= hours.RECORDS_PAGE_SIZE
    login_as("vol_longting")
    resp = client.get("/my/hours/")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "服务时长" in html and "录入时长码" in html
    assert {int(i) for i in re.findall(r'id="my-record-(\d+)"', html)} == {r.id for r in records}
    assert f'id="approved-hours">{total / 60:g}<' in html and f'id="pending-hours">{pending / 60:g}<' in html
    assert f'data-stars="{stars}"' in html
    for heading in ("志愿项目", "岗位", "志愿团体", "服务日期", "来源", "状态"):
        assert heading in html
    assert "table-responsive" in html


def test_my_hours__shows_only_own_records(app, client, login_as):
    with app.app_context():
        others = set(db.session.scalars(select(ServiceRecord.id).where(
            ServiceRecord.volunteer_id != volunteer_of("vol_shunhe").id)))
    login_as("vol_shunhe")
    shown = {int(i) for i in re.findall(r'id="my-record-(\d+)"', client.get("/my/hours/").get_data(as_text=True))}
    assert shown and not shown & others


def test_my_hours__menu_item_under_user_center(client, login_as):
    login_as("vol_longting")
    html = client.get("/my/hours/").get_data(as_text=True)
    assert "用户中心" in html and 'href="/my/hours/"' in html


def test_my_hours__paged_with_a_constant_number_of_queries(app, client, login_as):
    """A page of 50 records costs as many queries as a page of 3."""
    with app.app_context():
        volunteer_id = volunteer_of("vol_longting").id
    login_as("vol_longting")

    def queries() -> int:
        count = [0]
        with app.app_context():
            engine = db.engine

        def listener(*_args, **_kwargs):
            count[0] += 1

        event.listen(engine, "before_cursor_execute", listener)
        try:
            assert client.get("/my/hours/").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return count[0]

    few = queries()
    with app.app_context():
        template = db.session.scalar(select(ServiceRecord).where(ServiceRecord.volunteer_id == volunteer_id))
        for n in range(60):
            db.session.add(ServiceRecord(**{c.key: getattr(template, c.key) for c in ServiceRecord.__table__.columns
                                            if c.key not in ("id", "status", "hour_code_id", "served_on")},
                                         status="pending", served_on=today() - timedelta(days=n % 20)))
        db.session.commit()
    assert queries() == few
    html = client.get("/my/hours/").get_data(as_text=True)
    assert len(re.findall(r'id="my-record-\d+"', html)) == hours.RECORDS_PAGE_SIZE and 'id="records-next"' in html
    assert 'id="my-record-' in client.get("/my/hours/?page=1").get_data(as_text=True)


def test_my_hours__account_without_volunteer_record(client, login_as):
    login_as("kfvf_admin")
    resp = client.get("/my/hours/")
    assert resp.status_code in (200, 302, 403)
    if resp.status_code == 200:
        assert 'id="no-volunteer"' in resp.get_data(as_text=True)
