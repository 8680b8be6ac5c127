"""Constraints live in the database, not only in services."""
from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import Honor, HourCode, Position, ServiceRecord, Volunteer


def _approved_volunteers(n):
    return db.session.scalars(select(Volunteer).where(Volunteer.volunteer_no.is_not(None)).limit(n)).all()


def _expect_integrity_error(fn):
    with pytest.raises(IntegrityError):
        with db.session.begin_nested():
            fn()
            db.session.flush()


def test_volunteer_no__unique(app):
    with app.app_context():
        a, b = _approved_volunteers(2)
        _expect_integrity_error(lambda: setattr(b, "volunteer_no", a.volunteer_no))


def test_id_blind_index__unique_per_id_type(app):
    with app.app_context():
        a, b = _approved_volunteers(2)
        _expect_integrity_error(lambda: setattr(b, "id_blind", a.id_blind))


def _record(v, position, **kw):
    values = dict(volunteer_id=v.id, volunteer_name=v.real_name, project_id=position.project_id,
                  position_id=position.id, group_id=position.project.group_id,
                  group_path=position.group_path, region_id=position.region_id,
                  region_path=position.region_path, served_on=date(2026, 1, 5), minutes=60,
                  source="group_entry", status="pending")
    values.update(kw)
    return ServiceRecord(**values)


@pytest.mark.parametrize("minutes, source, corrects, ok", [
    (0, "group_entry", False, False), (1441, "group_entry", False, False),
    (1440, "group_entry", False, True), (-60, "correction", True, True),
    (-60, "correction", False, False),
])
def test_service_record__minutes_check(app, minutes, source, corrects, ok):
    with app.app_context():
        v = _approved_volunteers(1)[0]
        position = db.session.scalars(select(Position)).first()
        original = db.session.scalars(select(ServiceRecord)).first()
        rec = _record(v, position, minutes=minutes, source=source,
                      corrects_id=original.id if corrects else None)
        if ok:
            db.session.add(rec)
            db.session.flush()
        else:
            _expect_integrity_error(lambda: db.session.add(rec))


def _code(position, code):
    return HourCode(code=code, position_id=position.id, project_id=position.project_id,
                    group_path=position.group_path, region_id=position.region_id,
                    region_path=position.region_path, activity_on=date(2026, 1, 5),
                    minutes=120, max_uses=10, uses=0)


def test_hour_code__12_char_string_unique_and_leading_zeros_survive(app):
    with app.app_context():
        position = db.session.scalars(select(Position)).first()
        db.session.add(_code(position, "000123456789"))
        db.session.flush()
        db.session.expire_all()
        assert db.session.scalar(select(HourCode.code).where(HourCode.code == "000123456789")) == "000123456789"
        _expect_integrity_error(lambda: db.session.add(_code(position, "000123456789")))


def test_hour_code__one_use_per_volunteer(app):
    with app.app_context():
        position = db.session.scalars(select(Position)).first()
        code = _code(position, "111122223333")
        db.session.add(code)
        db.session.flush()
        v = _approved_volunteers(1)[0]
        db.session.add(_record(v, position, hour_code_id=code.id, source="hour_code"))
        db.session.flush()
        _expect_integrity_error(lambda: db.session.add(
            _record(v, position, hour_code_id=code.id, source="hour_code")))


@pytest.mark.parametrize("to_volunteer, to_group, ok", [(True, False, True), (False, True, True),
                                                          (True, True, False), (False, False, False)])
def test_honor__exactly_one_recipient(app, to_volunteer, to_group, ok):
    with app.app_context():
        v = _approved_volunteers(1)[0]
        position = db.session.scalars(select(Position)).first()
        honor = Honor(title="t", level="prefecture", awarding_body="b", awarded_on=date(2026, 1, 1),
                      volunteer_id=v.id if to_volunteer else None,
                      volunteer_group_id=position.project.group_id if to_group else None,
                      region_id=v.region_id, region_path=v.region_path)
        if ok:
            db.session.add(honor)
            db.session.flush()
        else:
            _expect_integrity_error(lambda: db.session.add(honor))


def test_enrollment__one_row_per_position_and_volunteer(app):
    from app.models import Enrollment

    with app.app_context():
        existing = db.session.scalars(select(Enrollment)).first()
        _expect_integrity_error(lambda: db.session.add(Enrollment(
            position_id=existing.position_id, project_id=existing.project_id,
            volunteer_id=existing.volunteer_id, group_path=existing.group_path,
            region_id=existing.region_id, region_path=existing.region_path, status="pending")))
