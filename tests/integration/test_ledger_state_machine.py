"""The ledger stays exact (issue 6, item 8): a hypothesis state machine runs random
sequences of 录入时长, 申请时长 + approve/reject, 录入时长码, corrections (positive and
negative, by the group or asked for by the volunteer) and operations that must be
refused (a day past 24 hours, a future date, a volunteer not enrolled, a correction
taking more than the record holds). After every step each volunteer's
``total_minutes`` (hence star level) and every ``volunteer_day`` row equal a fresh SUM
over approved records, and each refusal happened exactly when the rules say so."""
from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import select

from app.extensions import db
from app.models import Enrollment, Position, RecordSource, RecordStatus, ServiceRecord, Volunteer, VolunteerDay
from app.services import hours
from app.services.clock import today
from app.services.errors import DomainError
from app.services.volunteers import star_level
from tests.integration._hours_helpers import (
    BOOKSTORE, BOOKSTORE_GUIDE, accepted_in, acting, ledger_mismatches, position_of, volunteer_of,
)

MINUTES = st.sampled_from([0, 15, 60, 240, 600, 900, 1441])
DAYS = st.integers(min_value=1, max_value=4)  # days before today (the project ran then)


def _day_used(volunteer_id, day) -> int:
    return db.session.scalar(select(VolunteerDay.minutes).where(
        VolunteerDay.volunteer_id == volunteer_id, VolunteerDay.served_on == day)) or 0


class Outcome:
    """What ``_attempt`` saw: done (committed) or refused with a message."""

    def __init__(self, message: str | None = None):
        self.message = message

    def __bool__(self) -> bool:
        return self.message is None

    def __repr__(self) -> str:
        return "done" if self else f"refused: {self.message}"


def _attempt(action) -> Outcome:
    """Run ``action``; commit it, or roll back a refusal (DomainError) and say why."""
    try:
        action()
    except DomainError as err:
        db.session.rollback()
        return Outcome(str(err))
    db.session.commit()
    return Outcome()


def test_ledger__random_operations_keep_totals_and_days_exact(app):
    with acting(app, "longting_team_admin"):
        position_id = position_of(BOOKSTORE, BOOKSTORE_GUIDE).id
        pool = accepted_in(db.session.get(Position, position_id))[:4]
        walk_in = volunteer_of("vol_shunhe").id  # not enrolled: only an hour code brings them in
        outsider = volunteer_of("vol_zhengzhou").id  # never enrolled
        everyone = [*pool, walk_in, outsider]
        assert ledger_mismatches(everyone) == []

        class Ledger(RuleBasedStateMachine):
            """One sequence of operations on the 书店街 guide position."""

            def __init__(self):
                super().__init__()
                self.codes: list[str] = []

            def position(self) -> Position:
                return db.session.get(Position, position_id)

            def volunteers(self, ids) -> list[Volunteer]:
                return list(db.session.scalars(select(Volunteer).where(Volunteer.id.in_(ids))))

            @initialize()
            def make_codes(self):
                for back, max_uses in ((1, 2), (2, None)):
                    code = hours.generate_code(self.position(), served_on=today() - timedelta(days=back),
                                               minutes=300, max_uses=max_uses)
                    self.codes.append(code.code)
                db.session.commit()

            @rule(chosen=st.lists(st.sampled_from(pool + [outsider]), min_size=1, max_size=3, unique=True),
                  back=DAYS, minutes=MINUTES)
            def group_entry(self, chosen, back, minutes):
                day = today() - timedelta(days=back)
                should_fail = (outsider in chosen or not 0 < minutes <= 1440
                               or any(_day_used(v, day) + minutes > 1440 for v in chosen))
                done = _attempt(lambda: hours.record_hours(self.position(), self.volunteers(chosen), served_on=day,
                                                           minutes=minutes))
                assert bool(done) is not should_fail, done

            @rule(chosen=st.lists(st.sampled_from(pool), min_size=1, max_size=2, unique=True))
            def future_entry_is_refused(self, chosen):
                assert not _attempt(lambda: hours.record_hours(
                    self.position(), self.volunteers(chosen), served_on=today() + timedelta(days=1), minutes=60))

            @rule(volunteer=st.sampled_from(pool), back=DAYS, minutes=MINUTES, approve=st.booleans())
            def apply_and_decide(self, volunteer, back, minutes, approve):
                day = today() - timedelta(days=back)
                enrollment = db.session.scalar(select(Enrollment).where(
                    Enrollment.position_id == position_id, Enrollment.volunteer_id == volunteer))
                applied = []
                ok = _attempt(lambda: applied.append(hours.apply_for_hours(
                    db.session.get(Volunteer, volunteer), enrollment, served_on=day, minutes=minutes,
                    description="巡查").id))
                assert bool(ok) is (0 < minutes <= 1440 and _day_used(volunteer, day) + minutes <= 1440), ok
                if not ok:
                    return
                record = db.session.get(ServiceRecord, applied[0])
                should_fail = approve and _day_used(volunteer, day) + minutes > 1440
                done = _attempt(lambda: hours.decide_records([record], "approve" if approve else "reject",
                                                             None if approve else "不符"))
                assert bool(done) is not should_fail, done
                if not done:  # still pending: reject it so later steps start clean
                    assert _attempt(lambda: hours.decide_records([db.session.get(ServiceRecord, applied[0])],
                                                                 "reject", "超过24小时"))

            @rule(which=st.integers(min_value=0, max_value=1), volunteer=st.sampled_from(pool + [walk_in]))
            def redeem(self, which, volunteer):
                code = self.codes[which]
                hour_code = db.session.scalar(select(hours.HourCode).where(hours.HourCode.code == code))
                used_before = db.session.scalar(select(ServiceRecord.id).where(
                    ServiceRecord.hour_code_id == hour_code.id, ServiceRecord.volunteer_id == volunteer))
                should_fail = (used_before is not None
                               or (hour_code.max_uses is not None and hour_code.uses >= hour_code.max_uses)
                               or _day_used(volunteer, hour_code.activity_on) + hour_code.minutes > 1440)
                done = _attempt(lambda: hours.redeem_code(db.session.get(Volunteer, volunteer), code))
                assert bool(done) is not should_fail, done

            def _original(self, pick):
                records = db.session.scalars(select(ServiceRecord).where(
                    ServiceRecord.volunteer_id.in_(everyone), ServiceRecord.position_id == position_id,
                    ServiceRecord.status == RecordStatus.APPROVED, ServiceRecord.source != RecordSource.CORRECTION)
                    .order_by(ServiceRecord.id)).all()
                return records[pick % len(records)] if records else None

            @rule(pick=st.integers(min_value=0, max_value=10 ** 6),
                  minutes=st.sampled_from([-2000, -600, -60, -15, 0, 15, 60, 600]))
            def correct(self, pick, minutes):
                original = self._original(pick)
                if original is None:
                    return
                held = hours.corrected_minutes(original)
                should_fail = (minutes == 0 or not -1440 <= minutes <= 1440 or held + minutes < 0
                               or held + minutes > 1440
                               or _day_used(original.volunteer_id, original.served_on) + minutes > 1440)
                done = _attempt(lambda: hours.correct_record(original, minutes=minutes, reason="核对签到表"))
                assert bool(done) is not should_fail, done

            @rule(pick=st.integers(min_value=0, max_value=10 ** 6),
                  minutes=st.sampled_from([-600, -60, 30, 120]), approve=st.booleans())
            def request_and_decide_correction(self, pick, minutes, approve):
                original = self._original(pick)
                if original is None:
                    return
                asked = []
                volunteer = db.session.get(Volunteer, original.volunteer_id)
                if not _attempt(lambda: asked.append(hours.request_correction(
                        volunteer, original, minutes=minutes, reason="签到表有误").id)):
                    return
                request = db.session.get(ServiceRecord, asked[0])
                original = db.session.get(ServiceRecord, request.corrects_id)
                should_fail = approve and (
                    hours.corrected_minutes(original) + minutes < 0
                    or _day_used(original.volunteer_id, original.served_on) + minutes > 1440)
                done = _attempt(lambda: hours.decide_records([request], "approve" if approve else "reject",
                                                             None if approve else "核实无误"))
                assert bool(done) is not should_fail, done
                if not done:
                    assert _attempt(lambda: hours.decide_records([db.session.get(ServiceRecord, asked[0])],
                                                                 "reject", "不予更正"))

            @invariant()
            def ledger_is_exact(self):
                assert ledger_mismatches(everyone) == []
                for volunteer in self.volunteers(everyone):
                    summed = sum(db.session.scalars(select(ServiceRecord.minutes).where(
                        ServiceRecord.volunteer_id == volunteer.id, ServiceRecord.status == RecordStatus.APPROVED)))
                    assert star_level(volunteer.total_minutes) == star_level(summed)
                    assert volunteer.total_minutes >= 0

        run_state_machine_as_test(Ledger, settings=settings(
            max_examples=40, stateful_step_count=15, deadline=None, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
