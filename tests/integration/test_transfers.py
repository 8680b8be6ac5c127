"""Transfers (转移接续, issue 7 item 4, first half): 用户中心 → 转移接续 asks to move the
home region; an officer of the destination (区域监管 → 转移接续审核) approves or refuses;
the history stays; service records keep their service region; the volunteer moves
from the old region's lists and counts to the new one's.

Demo facts used: vol_longting (李明华) lives in 龙亭区 (longting_officer) and has approved
records; 东大街社区 (410203001002) lies in 顺河回族区 (shunhe_officer); both under 开封市
(kaifeng_officer).
"""
from __future__ import annotations

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import AuditEvent, RequestStatus, ServiceRecord, TransferRequest, User, Volunteer
from tests.conftest import login
from tests.integration._hours_helpers import volunteer_of

DONGDAJIE = "410203001002"  # 东大街社区, 顺河回族区
LONGTING_PATH = "410000/410200/410202/"
SHUNHE_PATH = "410000/410200/410203/"


def _ask(client, region_code=DONGDAJIE, reason="工作调动到顺河区"):
    return client.post("/my/transfer/request", data={"region_code": region_code, "reason": reason})


def _requests(app, username="vol_longting") -> list[TransferRequest]:
    with app.app_context():
        vid = volunteer_of(username).id
        rows = db.session.scalars(select(TransferRequest).where(TransferRequest.volunteer_id == vid)
                                  .order_by(TransferRequest.id)).all()
        for row in rows:
            db.session.expunge(row)
        return rows


def _home(app, username="vol_longting") -> str:
    with app.app_context():
        return volunteer_of(username).region_path


def _asked(app, client) -> int:
    login(client, "vol_longting")
    assert _ask(client).status_code == 302
    client.get("/logout/")
    return _requests(app)[-1].id


def _decide(client, request_id, decision, reason=""):
    return client.post("/oversight/transfers/decide",
                       data={"rowid": str(request_id), "decision": decision, "reason": reason})


def _token(client, username):
    resp = client.post("/api/v1/security/login", json={
        "username": username, "password": "Demo12345!", "provider": "db"})
    assert resp.status_code == 200, resp.data
    return {"Authorization": f"Bearer {resp.get_json()['access_token']}"}


def _sees_volunteer(app, officer, number) -> bool:
    """Whether ``officer`` finds the volunteer numbered ``number`` through the REST API."""
    api = app.test_client()
    resp = api.get(f"/api/v1/volunteer/?q=(filters:!((col:volunteer_no,opr:eq,value:'{number}')))",
                   headers=_token(api, officer))
    assert resp.status_code == 200, resp.data
    return [row["volunteer_no"] for row in resp.get_json()["result"]] == [number]


def db_count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


# --- Asking ---


def test_page__volunteer_sees_home_region_form_and_menu(app, client):
    login(client, "vol_longting")
    page = client.get("/my/transfer/").get_data(as_text=True)
    assert "转移接续" in page and 'href="/my/transfer/"' in page
    assert 'id="transfer-form"' in page and 'id="home-region"' in page
    assert 'href="/my/transfer/records.json"' in page and 'href="/my/transfer/records.csv"' in page
    assert "龙亭区" in page or "北书店" in page or "社区" in page


def test_ask__creates_pending_request_with_both_regions(app, client):
    login(client, "vol_longting")
    resp = _ask(client)
    assert resp.status_code == 302
    [row] = _requests(app)
    assert row.status == RequestStatus.PENDING and row.reason == "工作调动到顺河区"
    assert row.region_path.endswith(f"{DONGDAJIE}/") and row.region_path.startswith(SHUNHE_PATH)
    assert row.from_region_path.startswith(LONGTING_PATH)
    assert row.volunteer_name == "李明华" and row.volunteer_no
    page = client.get("/my/transfer/").get_data(as_text=True)
    assert 'id="pending-transfer"' in page and "东大街社区" in page
    assert _home(app).startswith(LONGTING_PATH)  # nothing moves before an officer decides


def test_ask__second_pending_request_refused(app, client):
    login(client, "vol_longting")
    assert _ask(client).status_code == 302
    resp = _ask(client, "410203002")
    assert resp.status_code == 400
    assert "等待" in resp.get_data(as_text=True) or "waiting" in resp.get_data(as_text=True)
    assert len(_requests(app)) == 1


@pytest.mark.parametrize("region_code,reason,field", [
    ("", "搬家", "region_code"),
    ("999999", "搬家", "region_code"),  # unknown
    ("410000", "搬家", "region_code"),  # a province: at least the county
    (DONGDAJIE, "", "reason"),
    (DONGDAJIE, "很" * 256, "reason"),
])
def test_ask__bad_input_names_the_field_and_writes_nothing(app, client, region_code, reason, field):
    login(client, "vol_longting")
    resp = _ask(client, region_code, reason)
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert f'data-field="{field}"' in page
    assert _requests(app) == []


def test_ask__current_home_region_refused(app, client):
    with app.app_context():
        own = volunteer_of("vol_longting").region_code
    login(client, "vol_longting")
    resp = _ask(client, own)
    assert resp.status_code == 400 and 'data-field="region_code"' in resp.get_data(as_text=True)
    assert _requests(app) == []


def test_ask__suspended_volunteer_refused(app, client):
    with app.app_context():
        db.session.execute(update(Volunteer).where(Volunteer.id == volunteer_of("vol_longting").id)
                           .values(status="suspended"))
        db.session.commit()
    login(client, "vol_longting")
    assert _ask(client).status_code == 400
    assert _requests(app) == []


def test_database__one_pending_request_per_volunteer(app):
    """The partial unique index refuses a second pending row written around the service."""
    with app.app_context():
        volunteer = volunteer_of("vol_longting")
        values = dict(volunteer_id=volunteer.id, from_region_id=volunteer.region_id,
                      from_region_path=volunteer.region_path, region_id=volunteer.region_id,
                      region_path=volunteer.region_path, status="pending")
        db.session.add(TransferRequest(**values))
        db.session.flush()
        db.session.add(TransferRequest(**values))
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()
        db.session.add(TransferRequest(**{**values, "status": "rejected"}))
        db.session.add(TransferRequest(**{**values, "status": "rejected"}))
        db.session.flush()  # decided rows are history: any number of them
        db.session.rollback()


# --- Withdrawing ---


def test_withdraw__own_pending_request(app, client):
    request_id = _asked(app, client)
    login(client, "vol_longting")
    assert client.post(f"/my/transfer/{request_id}/withdraw").status_code == 302
    [row] = _requests(app)
    assert row.status == RequestStatus.CANCELLED and row.decided_on is not None
    page = client.get("/my/transfer/").get_data(as_text=True)
    assert 'data-status="cancelled"' in page and 'id="transfer-form"' in page


def test_withdraw__someone_elses_request_is_404(app, client):
    request_id = _asked(app, client)
    login(client, "vol_shunhe")
    assert client.post(f"/my/transfer/{request_id}/withdraw").status_code == 404
    assert _requests(app)[0].status == RequestStatus.PENDING


# --- Deciding ---


def test_review__demo_requests_wait_for_longting_officer(app, client):
    login(client, "longting_officer")
    page = client.get("/oversight/transfers/").get_data(as_text=True)
    assert page.count('data-status="pending"') == 2 and "工作调动到龙亭区" in page
    client.get("/logout/")
    login(client, "shunhe_officer")
    assert 'data-status="pending"' not in client.get("/oversight/transfers/").get_data(as_text=True)


def test_review__only_destination_officers_see_and_decide(app, client):
    request_id = _asked(app, client)
    login(client, "longting_officer")  # the old region's officer
    page = client.get("/oversight/transfers/").get_data(as_text=True)
    assert f'id="transfer-{request_id}"' not in page
    assert _decide(client, request_id, "approve").status_code == 404
    assert _requests(app)[0].status == RequestStatus.PENDING
    assert _home(app).startswith(LONGTING_PATH)
    client.get("/logout/")
    login(client, "shunhe_officer")
    page = client.get("/oversight/transfers/").get_data(as_text=True)
    assert "转移接续审核" in page and f'id="transfer-{request_id}"' in page and "李明华" in page


def test_approve__moves_home_region_keeps_records_and_number(app, client):
    with app.app_context():
        volunteer = volunteer_of("vol_longting")
        number, records_before = volunteer.volunteer_no, dict(db.session.execute(
            select(ServiceRecord.id, ServiceRecord.region_path).where(ServiceRecord.volunteer_id == volunteer.id)).all())
        total_before = volunteer.total_minutes
    assert records_before
    request_id = _asked(app, client)
    login(client, "shunhe_officer")
    resp = _decide(client, request_id, "approve")
    assert resp.status_code == 302
    [row] = _requests(app)
    assert row.status == RequestStatus.APPROVED and row.decided_by_fk is not None
    assert row.from_region_path.startswith(LONGTING_PATH)
    with app.app_context():
        volunteer = volunteer_of("vol_longting")
        assert volunteer.region_path.endswith(f"{DONGDAJIE}/") and volunteer.region.code == DONGDAJIE
        assert volunteer.volunteer_no == number and volunteer.total_minutes == total_before
        records_after = dict(db.session.execute(select(ServiceRecord.id, ServiceRecord.region_path)
                                                .where(ServiceRecord.volunteer_id == volunteer.id)).all())
    assert records_after == records_before  # the service region stays where the service was


def test_approve__statistics_move_the_volunteer(app, client):
    with app.app_context():
        number = volunteer_of("vol_longting").volunteer_no

    def counts():
        with app.app_context():
            return tuple(db.session.scalar(select(func.count(Volunteer.id)).where(
                Volunteer.region_path.startswith(path))) for path in (LONGTING_PATH, SHUNHE_PATH))

    before = counts()
    assert _sees_volunteer(app, "longting_officer", number)
    assert not _sees_volunteer(app, "shunhe_officer", number)
    request_id = _asked(app, client)
    login(client, "shunhe_officer")
    assert _decide(client, request_id, "approve").status_code == 302
    assert counts() == (before[0] - 1, before[1] + 1)
    assert not _sees_volunteer(app, "longting_officer", number)
    assert _sees_volunteer(app, "shunhe_officer", number)
    assert _sees_volunteer(app, "kaifeng_officer", number)  # still inside the prefecture


def test_refuse__needs_a_reason_then_the_volunteer_reads_it(app, client):
    request_id = _asked(app, client)
    login(client, "shunhe_officer")
    assert _decide(client, request_id, "reject", "").status_code == 302
    assert _requests(app)[0].status == RequestStatus.PENDING
    assert _decide(client, request_id, "reject", "地址不在本区").status_code == 302
    [row] = _requests(app)
    assert row.status == RequestStatus.REJECTED and row.reject_reason == "地址不在本区"
    assert _home(app).startswith(LONGTING_PATH)
    client.get("/logout/")
    login(client, "vol_longting")
    page = client.get("/my/transfer/").get_data(as_text=True)
    assert 'data-status="rejected"' in page and "地址不在本区" in page
    assert 'id="transfer-form"' in page  # may ask again


def test_decide__twice_is_refused_and_changes_nothing(app, client):
    request_id = _asked(app, client)
    login(client, "shunhe_officer")
    assert _decide(client, request_id, "approve").status_code == 302
    resp = _decide(client, request_id, "reject", "改主意")
    assert resp.status_code == 302
    [row] = _requests(app)
    assert row.status == RequestStatus.APPROVED and row.reject_reason is None


def test_decide__withdrawn_request_cannot_be_approved(app, client):
    request_id = _asked(app, client)
    login(client, "vol_longting")
    client.post(f"/my/transfer/{request_id}/withdraw")
    client.get("/logout/")
    login(client, "shunhe_officer")
    _decide(client, request_id, "approve")
    assert _requests(app)[0].status == RequestStatus.CANCELLED
    assert _home(app).startswith(LONGTING_PATH)


def test_history__moving_again_starts_from_the_new_region(app, client):
    first = _asked(app, client)
    login(client, "shunhe_officer")
    _decide(client, first, "approve")
    client.get("/logout/")
    login(client, "vol_longting")
    assert _ask(client, "410202001001", "搬回龙亭").status_code == 302
    client.get("/logout/")
    rows = _requests(app)
    assert [r.status for r in rows] == ["approved", "pending"]
    assert rows[1].from_region_path.startswith(SHUNHE_PATH) and rows[1].region_path.startswith(LONGTING_PATH)
    login(client, "longting_officer")
    assert _decide(client, rows[1].id, "approve").status_code == 302
    assert _home(app).startswith(LONGTING_PATH)
    client.get("/logout/")
    login(client, "vol_longting")
    page = client.get("/my/transfer/").get_data(as_text=True)
    assert page.count('data-status="approved"') == 2


def test_audit__request_and_move_are_recorded(app, client):
    request_id = _asked(app, client)
    login(client, "shunhe_officer")
    _decide(client, request_id, "approve")
    with app.app_context():
        volunteer_id = volunteer_of("vol_longting").id
        officer_id = db.session.scalar(select(User.id).where(User.username == "shunhe_officer"))
        events = db.session.execute(select(AuditEvent.object_type, AuditEvent.action, AuditEvent.after_json,
                                           AuditEvent.actor_id).where(
            ((AuditEvent.object_type == "transfer_request") & (AuditEvent.object_id == request_id))
            | ((AuditEvent.object_type == "volunteer") & (AuditEvent.object_id == volunteer_id)))).all()
    actions = {(t, a) for t, a, _after, _actor in events}
    assert ("transfer_request", "create") in actions and ("transfer_request", "status:pending->approved") in actions
    moved = [after for t, a, after, actor in events if t == "volunteer" and after and "region_path" in after]
    assert moved and DONGDAJIE in moved[-1]
    assert any(actor == officer_id for t, a, _after, actor in events if t == "volunteer")


# --- Who may ---


@pytest.mark.parametrize("user", ["vol_longting", "longting_team_admin", "kaifeng_honors"])
def test_review__non_officers_are_refused(app, client, user):
    request_id = _asked(app, client)
    login(client, user)
    assert client.get("/oversight/transfers/").status_code in (302, 403)
    assert _decide(client, request_id, "approve").status_code in (302, 403)
    assert _requests(app)[0].status == RequestStatus.PENDING


def test_page__user_without_volunteer_record(app, client):
    before = db_count(app, TransferRequest)
    login(client, "shunhe_officer")
    resp = client.get("/my/transfer/")
    assert resp.status_code == 200 and 'id="transfer-form"' not in resp.get_data(as_text=True)
    assert _ask(client).status_code in (302, 403, 404)
    assert db_count(app, TransferRequest) == before


def test_review__decided_tabs_list_history(app, client):
    request_id = _asked(app, client)
    login(client, "shunhe_officer")
    _decide(client, request_id, "reject", "材料不全")
    page = client.get("/oversight/transfers/?status=rejected").get_data(as_text=True)
    assert f'id="transfer-{request_id}"' in page and "材料不全" in page
    pending = client.get("/oversight/transfers/").get_data(as_text=True)
    assert f'id="transfer-{request_id}"' not in pending
    assert client.get("/oversight/transfers/?status=bogus").status_code == 200


def test_query_count__review_page_is_constant(app, client):
    """Listing requests does not load each volunteer or region one by one."""
    from tests.integration.test_list_speed import _queries

    _asked(app, client)
    login(client, "shunhe_officer")
    one = len(_queries(app, client, "/oversight/transfers/"))
    with app.app_context():
        region_id, path = db.session.execute(text("select id, path from region where code = :c"),
                                             {"c": DONGDAJIE}).one()
        for volunteer in db.session.scalars(select(Volunteer).where(Volunteer.status == "approved")):
            if not db.session.scalar(select(TransferRequest.id).where(TransferRequest.volunteer_id == volunteer.id)):
                db.session.add(TransferRequest(
                    volunteer_id=volunteer.id, volunteer_name=volunteer.real_name, from_region_id=volunteer.region_id,
                    from_region_path=volunteer.region_path, region_id=region_id, region_path=path, status="pending"))
        db.session.commit()
        assert db.session.scalar(select(func.count(TransferRequest.id))) >= 3
    assert len(_queries(app, client, "/oversight/transfers/")) == one


def test_ask__a_region_containing_the_home_is_refused(app, client):
    """Moving to one's own county (or street) is no move, only a vaguer address."""
    login(client, "vol_longting")
    for code in ("410202", "410202001"):
        resp = _ask(client, code)
        assert resp.status_code == 400 and 'data-field="region_code"' in resp.get_data(as_text=True)
    assert _requests(app) == []
    assert _ask(client, "410202003").status_code == 302  # another street of the same county is a move


def test_refuse__an_overlong_reason_is_refused_not_cut(app, client):
    request_id = _asked(app, client)
    login(client, "shunhe_officer")
    assert _decide(client, request_id, "reject", "很" * 256).status_code == 302
    assert _requests(app)[0].status == RequestStatus.PENDING


# --- Records transferred in (转移接续) have no group here: officers of their region correct them ---


def _imported(app, minutes=120, region_code="410202001", external_id="X1") -> int:
    """An approved record imported from another system for vol_longting (credited like an import)."""
    from app.models import Region
    from app.services import hours
    from app.services.clock import today
    from datetime import timedelta

    with app.app_context():
        volunteer = volunteer_of("vol_longting")
        region = db.session.scalar(select(Region).where(Region.code == region_code))
        served_on = today() - timedelta(days=400)
        record = ServiceRecord(
            volunteer_id=volunteer.id, volunteer_name=volunteer.real_name, volunteer_no=volunteer.volunteer_no,
            region_id=region.id, region_path=region.path, served_on=served_on, minutes=minutes,
            source="transfer_in", status="approved", external_system="legacy", external_id=external_id,
            external_project="旧系统项目", external_org="旧系统组织")
        db.session.add(record)
        db.session.flush()
        hours.credit(volunteer.id, served_on, minutes, volunteer.real_name)
        db.session.commit()
        return record.id


def _total(app) -> int:
    with app.app_context():
        return db.session.scalar(select(Volunteer.total_minutes).where(Volunteer.id == volunteer_of("vol_longting").id))


def _corrections(app, record_id) -> list[tuple]:
    with app.app_context():
        return db.session.execute(select(ServiceRecord.minutes, ServiceRecord.status, ServiceRecord.project_id,
                                         ServiceRecord.region_path, ServiceRecord.external_project)
                                  .where(ServiceRecord.corrects_id == record_id)).all()


def test_imported_correction__officer_of_its_region_corrects_it(app, client):
    record_id = _imported(app)
    total = _total(app)
    login(client, "longting_officer")
    page = client.get(f"/service-records/show/{record_id}").get_data(as_text=True)
    assert 'id="correct-imported"' in page
    form = client.get(f"/service-records/correct/{record_id}")
    assert form.status_code == 200 and "旧系统项目" in form.get_data(as_text=True)
    resp = client.post(f"/service-records/correct/{record_id}", data={"hours": "-1", "reason": "旧系统重复计时"})
    assert resp.status_code == 302
    [(minutes, status, project_id, region_path, project)] = _corrections(app, record_id)
    assert (minutes, status, project_id, project) == (-60, "approved", None, "旧系统项目")
    assert region_path.endswith("410202001/")
    assert _total(app) == total - 60


@pytest.mark.parametrize("user", ["shunhe_officer", "kaifeng_honors"])
def test_imported_correction__others_are_refused(app, client, user):
    record_id = _imported(app)
    login(client, user)
    assert client.get(f"/service-records/correct/{record_id}").status_code in (403, 404)
    assert client.post(f"/service-records/correct/{record_id}",
                       data={"hours": "-1", "reason": "x"}).status_code in (403, 404)
    assert _corrections(app, record_id) == []


def test_imported_correction__volunteer_and_group_admin_are_refused(app, client):
    record_id = _imported(app)
    for user in ("vol_longting", "longting_team_admin"):
        other = login(app.test_client(), user)
        assert other.post(f"/service-records/correct/{record_id}",
                          data={"hours": "-1", "reason": "x"}).status_code in (302, 403, 404)
        assert other.post(f"/my/hours/records/{record_id}/correction",
                          data={"hours": "-1", "reason": "x"}).status_code in (403, 404)
    assert _corrections(app, record_id) == []


def test_imported_correction__only_records_transferred_in_and_within_range(app, client):
    record_id = _imported(app, minutes=120)
    with app.app_context():
        local = db.session.scalar(select(ServiceRecord.id).where(
            ServiceRecord.source == "group_entry", ServiceRecord.status == "approved",
            ServiceRecord.region_path.startswith(LONGTING_PATH)))
    login(client, "longting_officer")
    assert client.get(f"/service-records/correct/{local}").status_code == 404  # its group corrects it
    page = client.get(f"/service-records/show/{local}").get_data(as_text=True)
    assert 'id="correct-imported"' not in page
    resp = client.post(f"/service-records/correct/{record_id}", data={"hours": "-3", "reason": "多算"})
    assert resp.status_code == 400
    assert _corrections(app, record_id) == []


def test_imported_correction__a_complaint_resolution_corrects_it_at_once(app, client):
    record_id = _imported(app, minutes=120)
    total = _total(app)
    login(client, "vol_longting")
    resp = client.post(f"/complaints/new?subject=service_record&id={record_id}", data={"text": "旧系统多记了一小时"})
    assert resp.status_code == 302
    with app.app_context():
        from app.models import Complaint

        complaint_id = db.session.scalar(select(Complaint.id).order_by(Complaint.id.desc()))
    officer = login(app.test_client(), "longting_officer")
    resp = officer.post(f"/complaints/{complaint_id}/resolve", data={"resolution": "核实后更正", "hours": "1"})
    assert resp.status_code == 302
    [(minutes, status, *_rest)] = _corrections(app, record_id)
    assert (minutes, status) == (-60, "approved")
    assert _total(app) == total - 60


def test_complaint__an_officer_never_handles_their_own_report(app, client):
    from app.models import Complaint, Project

    with app.app_context():
        project_id = db.session.scalar(select(Project.id).where(Project.region_path.startswith(LONGTING_PATH)))
    login(client, "longting_officer")
    resp = client.post(f"/complaints/new?subject=project&id={project_id}", data={"text": "项目信息不实"})
    assert resp.status_code == 302
    with app.app_context():
        complaint_id = db.session.scalar(select(Complaint.id).order_by(Complaint.id.desc()))
    for action in ("dismiss", "resolve"):
        assert client.post(f"/complaints/{complaint_id}/{action}", data={"resolution": "自己处理"}).status_code == 302
    with app.app_context():
        assert db.session.get(Complaint, complaint_id).status == "pending"
    other = login(app.test_client(), "kaifeng_officer")
    assert other.post(f"/complaints/{complaint_id}/dismiss", data={"resolution": "经核实无误"}).status_code == 302
    with app.app_context():
        assert db.session.get(Complaint, complaint_id).status == "rejected"  # 不予受理
