"""录入时长码 under concurrent load (issue 6, item 5): 50 volunteers redeeming one code
limited to 20 uses → exactly 20 credits; 20 simultaneous redemptions by one volunteer
→ exactly one credit. On PostgreSQL the conditional UPDATE and the volunteer's row
lock decide; on SQLite the IMMEDIATE transactions and the busy timeout do — and no
request fails with "database is locked".

Every thread has its own app context, hence its own session and connection.
"""
from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import HourCode, ServiceRecord, Volunteer
from app.services import hours
from app.services.errors import DomainError
from tests.conftest import IS_POSTGRES
from tests.integration._hours_helpers import (
    BOOKSTORE, BOOKSTORE_GUIDE, acting, adult_volunteers, ledger_mismatches, position_of, volunteer_of, yesterday,
)

MINUTES = 90

sqlite_only = pytest.mark.skipif(IS_POSTGRES, reason="the SQLite run of the same load")


def _make_code(app, *, max_uses):
    with acting(app, "longting_team_admin"):
        code = hours.generate_code(position_of(BOOKSTORE, BOOKSTORE_GUIDE), served_on=yesterday(),
                                   minutes=MINUTES, max_uses=max_uses)
        db.session.commit()
        return code.code, code.id


def _redeem_all(app, volunteer_ids, code) -> tuple[Counter, list[BaseException]]:
    """Start one thread per entry of ``volunteer_ids`` at the same instant; each redeems
    ``code`` for that volunteer in its own app context. Returns the outcomes
    ("ok" / the refusal message) and every unexpected exception."""
    barrier = threading.Barrier(len(volunteer_ids))
    outcomes: Counter = Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(volunteer_id):
        with app.app_context():
            try:
                volunteer = db.session.get(Volunteer, volunteer_id)
                db.session.rollback()  # start the race from a clean session
                barrier.wait(timeout=60)
                hours.redeem_code(volunteer, code)
                db.session.commit()
                outcome = "ok"
            except DomainError as err:
                db.session.rollback()
                outcome = str(err)
            except BaseException as err:  # noqa: BLE001 - the test reports it
                db.session.rollback()
                with lock:
                    errors.append(err)
                return
            finally:
                db.session.remove()
            with lock:
                outcomes[outcome] += 1

    threads = [threading.Thread(target=run, args=(v,)) for v in volunteer_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a redemption hung"
    return outcomes, errors


def _distinct_volunteers_share_a_limited_code(app):
    code, code_id = _make_code(app, max_uses=20)
    with app.app_context():
        ids = [v.id for v in adult_volunteers(50)]
        totals = dict(db.session.execute(select(Volunteer.id, Volunteer.total_minutes).where(Volunteer.id.in_(ids))).all())
    outcomes, errors = _redeem_all(app, ids, code)
    assert not errors, [repr(e) for e in errors]
    assert outcomes["ok"] == 20, outcomes
    assert sum(outcomes.values()) == 50
    with app.app_context():
        assert db.session.scalar(select(HourCode.uses).where(HourCode.id == code_id)) == 20
        credited = db.session.scalars(select(ServiceRecord.volunteer_id).where(ServiceRecord.hour_code_id == code_id)
                                      ).all()
        assert len(credited) == len(set(credited)) == 20
        after = dict(db.session.execute(select(Volunteer.id, Volunteer.total_minutes).where(Volunteer.id.in_(ids))).all())
        assert sum(after[v] - totals[v] for v in ids) == 20 * MINUTES
        assert all(after[v] - totals[v] == (MINUTES if v in credited else 0) for v in ids)
        assert ledger_mismatches(ids) == []


def _one_volunteer_many_times(app):
    code, code_id = _make_code(app, max_uses=None)
    with app.app_context():
        volunteer = volunteer_of("vol_shunhe")
        volunteer_id, total = volunteer.id, volunteer.total_minutes
    outcomes, errors = _redeem_all(app, [volunteer_id] * 20, code)
    assert not errors, [repr(e) for e in errors]
    assert outcomes["ok"] == 1, outcomes
    assert outcomes["你已经使用过这个时长码。"] == 19, outcomes
    with app.app_context():
        assert db.session.scalar(select(func.count(ServiceRecord.id)).where(ServiceRecord.hour_code_id == code_id)) == 1
        assert db.session.scalar(select(HourCode.uses).where(HourCode.id == code_id)) == 1
        assert db.session.scalar(select(Volunteer.total_minutes).where(Volunteer.id == volunteer_id)) == total + MINUTES
        assert ledger_mismatches([volunteer_id]) == []


@pytest.mark.postgres
def test_redeem_concurrently__50_volunteers_code_limited_to_20__exactly_20_credited_postgres(app):
    _distinct_volunteers_share_a_limited_code(app)


@pytest.mark.postgres
def test_redeem_concurrently__one_volunteer_20_times__credited_once_postgres(app):
    _one_volunteer_many_times(app)


@sqlite_only
def test_redeem_concurrently__50_volunteers_code_limited_to_20__exactly_20_no_locked_errors_sqlite(app):
    _distinct_volunteers_share_a_limited_code(app)


@sqlite_only
def test_redeem_concurrently__one_volunteer_20_times__credited_once_no_locked_errors_sqlite(app):
    _one_volunteer_many_times(app)
