"""The demo data: accounts, bindings, valid identities, consistent totals, idempotence."""
from collections import Counter

import pytest
from sqlalchemy import func, select

from app.demo import DEMO_ACCOUNTS, DEMO_PASSWORD, load_demo
from app.extensions import db
from app.models import (
    GroupAdmin, JoinPolicy, Project, RecruitScope, RegionBinding, ReviewStatus, ServiceRecord,
    Volunteer, VolunteerGroup,
)
from app.security import pii
from app.services.clock import utcnow
from app.services.idcards import age_on, mod11_2, parse_resident_id
from app.services.clock import today
from tests.conftest import login


@pytest.mark.parametrize("username", [a[0] for a in DEMO_ACCOUNTS])
def test_demo_account__can_log_in(client, username):
    login(client, username, DEMO_PASSWORD)
    assert client.get("/").status_code == 200


@pytest.mark.parametrize("username, kind, code", [
    ("henan_officer", "officer", "410000"), ("kaifeng_officer", "officer", "410200"),
    ("longting_officer", "officer", "410202"), ("shunhe_officer", "officer", "410203"),
    ("kaifeng_honors", "honors_editor", "410200"),
])
def test_demo_account__region_bindings(app, username, kind, code):
    with app.app_context():
        user = app.appbuilder.sm.find_user(username=username)
        binding = db.session.scalar(select(RegionBinding).where(RegionBinding.user_id == user.id))
        assert (binding.kind, binding.region.code) == (kind, code)


@pytest.mark.parametrize("username, group_name", [
    ("kfvf_admin", "开封市志愿服务联合会"), ("longting_corps_admin", "龙亭区志愿服务总队"),
])
def test_demo_account__group_admins(app, username, group_name):
    with app.app_context():
        user = app.appbuilder.sm.find_user(username=username)
        group = db.session.scalar(select(VolunteerGroup).join(GroupAdmin).where(GroupAdmin.user_id == user.id))
        assert group.name == group_name


def test_demo_volunteers__ids_valid_encrypted_and_masked(app):
    with app.test_request_context():
        volunteers = db.session.scalars(select(Volunteer)).all()
        assert len(volunteers) >= 190
        for v in volunteers:
            number = pii.decrypt(v.id_number_enc)
            assert parse_resident_id(number).birth_date == v.birth_date
            assert v.id_number_masked == pii.mask_id(number)
            assert pii.blind_index(v.id_type, number) == v.id_blind
            if age_on(v.birth_date, today()) < 18:
                assert v.guardian_name and v.guardian_phone_masked and v.guardian_consent_on


def test_demo_volunteers__numbers_and_statuses(app):
    with app.app_context():
        volunteers = db.session.scalars(select(Volunteer)).all()
        statuses = Counter(v.status for v in volunteers)
        assert statuses[ReviewStatus.APPROVED] > 150 and statuses[ReviewStatus.PENDING] > 0
        for v in volunteers:
            if v.status == ReviewStatus.APPROVED:
                no = v.volunteer_no
                assert len(no) == 15 and no[14] == mod11_2(no[:14]) and no[:2] == v.region_path[:2]
            else:
                assert v.volunteer_no is None


def test_demo_volunteers__total_minutes_match_approved_records(app):
    with app.app_context():
        sums = dict(db.session.execute(
            select(ServiceRecord.volunteer_id, func.sum(ServiceRecord.minutes))
            .where(ServiceRecord.status == "approved").group_by(ServiceRecord.volunteer_id)).all())
        for v in db.session.scalars(select(Volunteer)):
            assert v.total_minutes == sums.get(v.id, 0), v.real_name
        assert sums


def test_demo_groups__hierarchy_and_join_policies(app):
    with app.app_context():
        groups = {g.name: g for g in db.session.scalars(select(VolunteerGroup))}
        assert groups["开封市志愿服务联合会"].parent.name == "河南省志愿服务联合会"
        for corps in ("龙亭区志愿服务总队", "顺河回族区志愿服务总队"):
            assert groups[corps].parent.name == "开封市志愿服务联合会"
            assert groups[corps].group_path.startswith(groups["开封市志愿服务联合会"].group_path)
        assert {g.join_policy for g in groups.values()} >= set(JoinPolicy)
        assert any(g.region_path.startswith("410000/410100/") for g in groups.values())


def test_demo_projects__cover_the_recruitment_kinds(app):
    with app.app_context():
        projects = db.session.scalars(select(Project)).all()
        now = utcnow()
        assert any(p.recruit_scope == RecruitScope.MEMBERS_ONLY for p in projects)
        assert any(p.recruit_scope == RecruitScope.ANYONE and p.ends_at > now and not p.is_backfill for p in projects)
        assert any(p.is_backfill for p in projects)
        assert any(p.ends_at < now for p in projects)


def test_demo__is_idempotent(app):
    with app.app_context():
        tables = (Volunteer, VolunteerGroup, Project, ServiceRecord, RegionBinding)
        before = [db.session.scalar(select(func.count()).select_from(t)) for t in tables]
        load_demo()
        after = [db.session.scalar(select(func.count()).select_from(t)) for t in tables]
        assert before == after
