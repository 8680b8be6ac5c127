"""Audit events: one per create, update, delete and state change, written by the
session listener in app/services/audit.py, with masked before/after JSON."""
import json
import uuid
from datetime import date

import pytest
from flask import g
from flask_appbuilder.security.sqla.models import Role, User
from sqlalchemy import func, select

from app.extensions import db
from app.models import (
    AuditEvent,
    GroupAdmin,
    Holiday,
    Honor,
    HonorLevel,
    ReviewStatus,
    ServiceRecord,
    Volunteer,
    VolunteerGroup,
    VolunteerNumberCounter,
)
from app.security import pii
from app.services import audit
from app.services.idcards import mod11_2
from app.services.regions import get_region
from app.services.volunteers import approve_volunteer, register_volunteer

ID_BODY = "41020219900307123"
ID_NUMBER = ID_BODY + mod11_2(ID_BODY)
PHONE = "13812345678"
NEW_PHONE = "13998765432"


def _events(obj) -> list[AuditEvent]:
    return audit.events_for(obj).all()


def _last_id() -> int:
    return db.session.scalar(select(func.coalesce(func.max(AuditEvent.id), 0)))


def _events_since(last_id: int) -> list[AuditEvent]:
    return db.session.scalars(select(AuditEvent).where(AuditEvent.id > last_id)
                              .order_by(AuditEvent.id)).all()


def _user(username):
    return db.session.scalar(select(User).filter_by(username=username))


def _approved_volunteer() -> Volunteer:
    return db.session.scalars(select(Volunteer).where(Volunteer.status == ReviewStatus.APPROVED)
                              .order_by(Volunteer.id)).first()


def _register() -> Volunteer:
    return register_volunteer(real_name="审计测试", id_number=ID_NUMBER, email="audit@example.cn",
                              region=get_region("410202"), phone=PHONE)


def test_create__records_every_column_with_secrets_redacted(app):
    with app.app_context():
        volunteer = _register()
        db.session.commit()
        [event] = _events(volunteer)
        after = json.loads(event.after_json)
        blind = volunteer.id_blind

    assert (event.action, event.object_type, event.object_id) == ("create", "volunteer", volunteer.id)
    assert event.before_json is None
    assert event.region_path == volunteer.region_path
    assert after["real_name"] == "审计测试" and after["status"] == "pending"
    assert after["id_number_masked"] == pii.mask_id(ID_NUMBER)
    assert after["phone_masked"] == pii.mask_phone(PHONE)
    assert after["id_number_enc"] == after["phone_enc"] == after["id_blind"] == "***"
    assert after["guardian_phone_enc"] is None  # NULL stays null
    for secret in (ID_NUMBER, PHONE, blind):
        assert secret not in event.after_json
    assert "审计测试" in event.after_json  # ensure_ascii=False
    assert event.after_json == json.dumps(after, sort_keys=True, ensure_ascii=False,
                                          separators=(",", ":"))
    assert (event.actor_id, event.actor_name, event.request_id, event.ip) == (None, "system", None, None)


def test_update__records_changed_columns_masked(app):
    with app.app_context():
        volunteer = _approved_volunteer()
        old_masked = volunteer.phone_masked
        last = _last_id()
        volunteer.phone_enc = pii.encrypt(NEW_PHONE)
        volunteer.phone_masked = pii.mask_phone(NEW_PHONE)
        db.session.commit()
        [event] = _events_since(last)
        ciphertext = bytes(volunteer.phone_enc)

    assert (event.action, event.object_type, event.object_id) == ("update", "volunteer", volunteer.id)
    before, after = json.loads(event.before_json), json.loads(event.after_json)
    assert before == {"phone_enc": "***", "phone_masked": old_masked}
    assert after == {"phone_enc": "***", "phone_masked": "139****5432"}
    for blob in (event.before_json, event.after_json):
        assert NEW_PHONE not in blob and ciphertext.hex() not in blob


def test_update__paths_known_when_they_were_expired(app):
    with app.app_context():
        volunteer = _approved_volunteer()
        region_path = volunteer.region_path
        db.session.expire(volunteer, ["region_path"])
        volunteer.skills = "expired path"
        db.session.commit()
        assert _events(volunteer)[-1].region_path == region_path


def test_update__without_a_real_change_records_nothing(app):
    with app.app_context():
        volunteer = _approved_volunteer()
        last = _last_id()
        volunteer.real_name = volunteer.real_name  # same value
        volunteer.total_minutes = volunteer.total_minutes + 60  # derived counter only
        db.session.commit()
        assert _events_since(last) == []
        volunteer.total_minutes += 60
        volunteer.skills = "new skill"
        db.session.commit()
        [event] = _events_since(last)
        assert json.loads(event.after_json) == {"skills": "new skill"}  # counter left out


def test_status_change__action_names_old_and_new_state(app):
    with app.app_context():
        volunteer = _register()
        approve_volunteer(volunteer, on=date(2026, 5, 1))
        db.session.commit()
        create, change = _events(volunteer)

    assert create.action == "create"
    assert change.action == "status:pending->approved"
    before, after = json.loads(change.before_json), json.loads(change.after_json)
    assert before["status"] == "pending" and after["status"] == "approved"
    assert before["volunteer_no"] is None and after["volunteer_no"] == volunteer.volunteer_no


def test_status_change__boolean_flag_is_named_true_false(app):
    with app.app_context():
        record = db.session.scalars(select(ServiceRecord).order_by(ServiceRecord.id)).first()
        record.is_flagged = True
        db.session.commit()
        record.is_flagged = False
        db.session.commit()
        actions = [e.action for e in _events(record)[-2:]]
        assert actions == ["is_flagged:false->true", "is_flagged:true->false"]
        assert _events(record)[-1].group_path == record.group_path


def test_status_change__old_value_known_on_a_row_expired_by_commit(app):
    """Setting a column of an expired row (no read first) still records its old value."""
    with app.app_context():
        volunteer = _approved_volunteer()
        db.session.commit()  # expires every attribute
        volunteer.status = ReviewStatus.SUSPENDED
        db.session.commit()
        event = _events(volunteer)[-1]
        assert event.action == "status:approved->suspended"
        assert json.loads(event.before_json) == {"status": "approved"}


def test_delete__records_every_column_before(app):
    with app.app_context():
        honor = db.session.scalars(select(Honor).order_by(Honor.id)).first()
        honor_id, region_path, title = honor.id, honor.region_path, honor.title
        db.session.commit()  # expired: the listener must load it before the DELETE
        db.session.delete(honor)
        db.session.commit()
        event = db.session.scalars(select(AuditEvent).where(
            AuditEvent.object_type == "honor", AuditEvent.object_id == honor_id)
            .order_by(AuditEvent.id.desc())).first()

    assert event.action == "delete" and event.after_json is None
    assert event.region_path == region_path
    before = json.loads(event.before_json)
    assert before["title"] == title and before["id"] == honor_id and "awarded_on" in before


def test_delete__row_expired_by_commit_still_records_its_columns(app):
    """A row without relationships is not loaded by the DELETE itself."""
    with app.app_context():
        holiday = Holiday(day=date(2031, 10, 1), is_workday=False, name="National Day")
        db.session.add(holiday)
        db.session.commit()
        db.session.delete(holiday)  # expired by the commit, not read since
        db.session.commit()
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.object_type == "holiday")
                                   .order_by(AuditEvent.id.desc())).first()
        assert event.action == "delete"
        assert json.loads(event.before_json) == {"day": "2031-10-01", "is_workday": False,
                                                 "name": "National Day"}


def test_group_admin__events_carry_the_groups_paths(app):
    with app.app_context():
        group = db.session.scalars(select(VolunteerGroup).where(VolunteerGroup.parent_id.is_not(None))
                                   .order_by(VolunteerGroup.id)).first()
        user = _user("admin")
        admin = GroupAdmin(user_id=user.id, group_id=group.id)
        db.session.add(admin)
        db.session.commit()
        db.session.expire_all()  # the group is not loaded: the listener looks it up
        db.session.delete(db.session.get(GroupAdmin, admin.id))
        db.session.commit()
        create, delete = _events(admin)
        assert (create.action, delete.action) == ("create", "delete")
        for event in (create, delete):
            assert (event.region_path, event.group_path) == (group.region_path, group.group_path)


def test_rollback__leaves_no_event(app):
    with app.app_context():
        last = _last_id()
        volunteer = _approved_volunteer()
        volunteer.skills = "rolled back"
        db.session.flush()
        assert len(_events_since(last)) == 1  # written in the same transaction…
        db.session.rollback()
        assert _events_since(last) == []  # …and gone with it


def test_request__records_actor_request_id_and_ip(app):
    with app.test_request_context("/", headers={"X-Request-ID": "req-0123-abcd"},
                                  environ_base={"REMOTE_ADDR": "203.0.113.7"}):
        g.user = _user("kaifeng_officer")
        officer_id = g.user.id
        last = _last_id()
        volunteer = _approved_volunteer()
        volunteer.skills = "changed"
        db.session.flush()
        volunteer.education = "博士研究生"
        db.session.commit()
        events = _events_since(last)

    assert len(events) == 2
    for event in events:
        assert (event.actor_id, event.actor_name) == (officer_id, "kaifeng_officer")
        assert event.request_id == "req-0123-abcd"
        assert event.ip == "203.0.113.7"


@pytest.mark.parametrize("header", [None, "", "x" * 37, "bad id!", "a/b"])
def test_request__insane_or_missing_request_id_is_replaced_by_one_uuid(app, header):
    headers = {"X-Request-ID": header} if header is not None else {}
    with app.test_request_context("/", headers=headers):
        last = _last_id()
        volunteer = _approved_volunteer()
        volunteer.skills = "one"
        db.session.flush()
        volunteer.skills = "two"
        db.session.commit()
        first, second = _events_since(last)

    assert first.actor_name == "anonymous" and first.actor_id is None
    assert str(uuid.UUID(first.request_id)) == first.request_id
    assert second.request_id == first.request_id  # one id per request


def test_response__carries_x_request_id(client):
    given = client.get("/login/", headers={"X-Request-ID": "abc-123"})
    made = client.get("/login/", headers={"X-Request-ID": "no good"})
    assert given.headers["X-Request-ID"] == "abc-123"
    assert str(uuid.UUID(made.headers["X-Request-ID"])) == made.headers["X-Request-ID"]


def test_http__role_change_through_fab_user_edit_is_audited(app, login_as, client):
    """A change made through a page records the logged-in actor and the request's id,
    and ab_user role changes are recorded by role name."""
    with app.app_context():
        target = _user("vol_longting")
        roles = sorted(r.name for r in target.roles)
        officer_role = db.session.scalar(select(Role).filter_by(name="Officer"))
        form = {"first_name": target.first_name, "last_name": target.last_name,
                "username": target.username, "email": target.email, "active": "y",
                "roles": [str(r.id) for r in target.roles] + [str(officer_role.id)]}
        target_id = target.id
        last = _last_id()
    login_as("admin")
    resp = client.post(f"/users/edit/{target_id}", data=form,
                       headers={"X-Request-ID": "edit-user-1"})
    assert resp.status_code == 302, resp.data[:300]
    with app.app_context():
        events = [e for e in _events_since(last) if e.object_type == "ab_user"]
        admin = _user("admin")

    [event] = events
    assert (event.action, event.object_id) == ("update", target_id)
    assert json.loads(event.before_json) == {"roles": roles}
    assert json.loads(event.after_json) == {"roles": sorted(roles + ["Officer"])}
    assert (event.actor_id, event.actor_name) == (admin.id, "admin")
    assert event.request_id == "edit-user-1" and event.ip == "127.0.0.1"


def test_login__records_no_event(client, login_as, app):
    with app.app_context():
        last = _last_id()
    login_as("kaifeng_officer")  # touches last_login and login_count only
    with app.app_context():
        assert _events_since(last) == []


def test_audit_disabled__records_nothing(app):
    app.config["AUDIT_ENABLED"] = False
    with app.app_context():
        last = _last_id()
        volunteer = _register()
        approve_volunteer(volunteer, on=date(2026, 5, 1))
        assert audit.record_view(volunteer, "id_number") is None
        db.session.commit()
        assert _events_since(last) == []


def test_record_view__adds_a_view_pii_event(app):
    with app.test_request_context("/", headers={"X-Request-ID": "view-1"}):
        g.user = _user("kaifeng_officer")
        volunteer = _approved_volunteer()
        audit.record_view(volunteer, "id_number")
        db.session.commit()
        event = _events(volunteer)[-1]

    assert (event.action, event.object_type, event.object_id) == ("view_pii", "volunteer", volunteer.id)
    assert event.region_path == volunteer.region_path
    assert json.loads(event.after_json) == {"viewed": "id_number"}
    assert (event.actor_name, event.request_id) == ("kaifeng_officer", "view-1")


def test_listener__registered_once_however_many_apps(app):
    """Building another app (tests build dozens) must not double the events."""
    from tests.conftest import make_app

    make_app(app.config["SQLALCHEMY_DATABASE_URI"])
    audit.init_app(app)
    with app.app_context():
        last = _last_id()
        volunteer = _approved_volunteer()
        volunteer.skills = "once"
        db.session.commit()
        assert len(_events_since(last)) == 1


def test_excluded_tables__counters_and_the_log_itself_are_not_audited(app):
    with app.app_context():
        last = _last_id()
        db.session.add(VolunteerNumberCounter(province_code="65", year=2031, last_seq=1))
        db.session.add(AuditEvent(action="note", object_type="test"))
        db.session.commit()
        assert [e.action for e in _events_since(last)] == ["note"]


def test_create__honor_for_a_group_carries_group_path(app):
    with app.app_context():
        group = db.session.scalars(select(VolunteerGroup).order_by(VolunteerGroup.id.desc())).first()
        honor = Honor(title="Audit", level=HonorLevel.PREFECTURE, awarding_body="Body",
                      awarded_on=date(2026, 1, 2), volunteer_group_id=group.id,
                      region_id=group.region_id, region_path=group.region_path,
                      group_path=group.group_path)
        db.session.add(honor)
        db.session.commit()
        [event] = _events(honor)
        assert event.group_path == group.group_path and event.region_path == group.region_path
        assert json.loads(event.after_json)["awarded_on"] == "2026-01-02"
