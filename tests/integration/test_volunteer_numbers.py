"""National volunteer numbers under concurrent approval (PostgreSQL: real row locks).

Several threads, each with its own app, app context and session on the same cloned
database, approve pending registrations at once. Every number must be unique, 15
characters with a correct MOD 11-2 check character, carry the home province, and
the sequences per (province, year) must be contiguous — including for a province
whose counter row does not exist yet (first-row creation race).
"""
from __future__ import annotations

import itertools
import threading
from collections import defaultdict

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Region, ReviewStatus, Volunteer, VolunteerNumberCounter
from app.security.scope import Scope
from app.services import clock, volunteers
from app.services.errors import DomainError
from app.services.idcards import mod11_2
from tests.conftest import make_app

pytestmark = pytest.mark.postgres

THREADS = 8
# 東城区 (Beijing): no counter row yet, so the first approvals race to create it;
# 龙亭区 (Henan): the demo's counter row exists.
HOMES = {"110101": 20, "410202": 20}
OFFICER = Scope(officer_paths=("110000/", "410000/"))
_serial = itertools.count(100)


@pytest.fixture
def db_url(template_db):
    url = template_db.clone()
    yield url
    template_db.drop(url)


def _register_pending(app) -> list[int]:
    ids = []
    with app.app_context():
        for code, count in HOMES.items():
            region = db.session.scalar(select(Region).where(Region.code == code))
            for _ in range(count):
                body = f"{code}19900101{next(_serial):03d}"
                ids.append(volunteers.register_volunteer(
                    real_name="并发测试", id_number=body + mod11_2(body), email="n@example.cn",
                    region=region).id)
        db.session.commit()
    return ids


def _counters(app) -> dict[tuple[str, int], int]:
    with app.app_context():
        return {(c.province_code, c.year): c.last_seq
                for c in db.session.scalars(select(VolunteerNumberCounter))}


def _run_threads(url: str, shares: list[list[int]]) -> tuple[list[int], list[int], list[BaseException]]:
    """Each thread approves its ids one transaction at a time; returns approved ids,
    refused ids (DomainError) and unexpected errors."""
    apps = [make_app(url) for _ in shares]  # built first: start-up is not part of the race
    barrier = threading.Barrier(len(shares))
    approved, refused, errors = [], [], []
    lock = threading.Lock()

    def work(app, ids):
        try:
            with app.app_context():
                barrier.wait()
                for vid in ids:
                    volunteer = db.session.get(Volunteer, vid)
                    try:
                        volunteers.review_volunteers([volunteer], volunteers.APPROVE, scope=OFFICER)
                        db.session.commit()
                        with lock:
                            approved.append(vid)
                    except DomainError:
                        db.session.rollback()
                        with lock:
                            refused.append(vid)
                db.session.remove()
        except BaseException as err:  # noqa: BLE001 - reported by the test
            errors.append(err)

    threads = [threading.Thread(target=work, args=(a, ids)) for a, ids in zip(apps, shares)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for app in apps:
        with app.app_context():
            db.engine.dispose()
    return approved, refused, errors


def test_concurrent_approvals__numbers_unique_valid_and_contiguous(db_url):
    app = make_app(db_url)
    ids = _register_pending(app)
    before = _counters(app)
    year = clock.today().year
    assert ("11", year) not in before

    shares = [ids[i::THREADS] for i in range(THREADS)]  # both provinces in every thread
    approved, refused, errors = _run_threads(db_url, shares)
    assert not errors, errors
    assert (sorted(approved), refused) == (sorted(ids), [])

    with app.app_context():
        rows = db.session.scalars(select(Volunteer).where(Volunteer.id.in_(ids))).all()
        numbers = [v.volunteer_no for v in rows]
        assert len(set(numbers)) == len(ids)
        seqs = defaultdict(list)
        for v in rows:
            no = v.volunteer_no
            assert v.status == ReviewStatus.APPROVED
            assert len(no) == 15 and no[:14].isdigit(), no
            assert no[-1] == mod11_2(no[:14]), no
            assert no[:2] == v.region_path[:2], (no, v.region_path)
            assert int(no[2:6]) == year
            seqs[no[:2]].append(int(no[6:14]))
        after = _counters(app)
        db.session.remove()
        db.engine.dispose()
    expected = {code[:2]: count for code, count in HOMES.items()}
    assert {p: len(got) for p, got in seqs.items()} == expected
    for province, got in seqs.items():
        first = before.get((province, year), 0) + 1
        assert sorted(got) == list(range(first, first + expected[province]))
        assert after[(province, year)] == first + expected[province] - 1


def test_concurrent_review__same_registration_is_decided_once(db_url):
    """Two officers approving the same registrations at once: each gets one number."""
    app = make_app(db_url)
    ids = _register_pending(app)[:10]
    before = _counters(app)
    year = clock.today().year

    approved, refused, errors = _run_threads(db_url, [ids, list(reversed(ids)), ids])
    assert not errors, errors
    assert sorted(approved) == sorted(ids)  # each approved exactly once
    assert len(refused) == 2 * len(ids)
    after = _counters(app)
    issued = sum(after[k] - before.get(k, 0) for k in after if k[1] == year)
    assert issued == len(ids)  # no number was burnt by a losing approval
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
