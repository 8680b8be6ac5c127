"""Complaints (举报, issue 7 item 6), over HTTP: a signed-in user reports a service record
(their own, or of their groups), a project (public or in scope) or a group (approved)
with a reason; anything else is 404 and writes nothing. Officers of the subject's
region handle them (举报处理): resolve or dismiss, and a resolution about a service
record can file a correction — a new record referencing the original, with the
complaint as its reason, made by the officer and decided by the group on 计时."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import (
    AuditEvent, Complaint, Project, RecordSource, RecordStatus, ServiceRecord, Volunteer, VolunteerGroup,
)
from app.services import hours
from tests.conftest import login
from tests.integration._hours_helpers import BACKFILL, BOOKSTORE, ELDERLY, ledger_mismatches, volunteer_of

LONGTING_CORPS = "龙亭区志愿服务总队"
BEIDAOMEN_TEAM = "龙亭区北道门社区志愿服务队"  # pending registration


def _client(app, username=None):
    client = app.test_client()
    if username:
        login(client, username)
    return client


def _record(app, username, project=BOOKSTORE) -> ServiceRecord:
    """An approved original record of ``username`` in ``project`` (with a position)."""
    with app.app_context():
        record = db.session.scalar(select(ServiceRecord).join(Project).where(
            ServiceRecord.volunteer_id == volunteer_of(username).id, Project.name == project,
            ServiceRecord.status == RecordStatus.APPROVED, ServiceRecord.source != RecordSource.CORRECTION,
            ServiceRecord.position_id.is_not(None)).order_by(ServiceRecord.id).limit(1))
        assert record is not None, (username, project)
        db.session.expunge(record)
        return record


def _id_of(app, model, name) -> int:
    with app.app_context():
        return db.session.scalar(select(model.id).where(model.name == name))


def _count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(Complaint.id)))


def _complaint(app, pk) -> Complaint:
    with app.app_context():
        item = db.session.get(Complaint, pk)
        db.session.expunge(item)
        return item


def _report(app, username, subject, subject_id, text="时长与实际不符") -> int:
    before = _count(app)
    resp = _client(app, username).post(f"/complaints/new?subject={subject}&id={subject_id}", data={"text": text})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/complaints/mine"), resp.status_code
    assert _count(app) == before + 1
    with app.app_context():
        return db.session.scalar(select(func.max(Complaint.id)))


# --- 举报 ---


def test_report_record__volunteer_reports_their_own_record(app):
    record = _record(app, "vol_longting")
    client = _client(app, "vol_longting")
    page = client.get(f"/complaints/new?subject=service_record&id={record.id}")
    assert page.status_code == 200 and record.volunteer_name in page.get_data(as_text=True)
    pk = _report(app, "vol_longting", "service_record", record.id)
    item = _complaint(app, pk)
    with app.app_context():
        user_id = app.appbuilder.sm.find_user(username="vol_longting").id
    assert (item.subject_type, item.subject_id, item.status) == ("service_record", record.id, "pending")
    assert item.region_path == record.region_path and item.region_id == record.region_id
    assert item.reporter_id == user_id
    # Neither the reported group's admins (audit log by group_path) nor the record's
    # volunteer (scope by volunteer_id) may learn who reported.
    assert item.group_path is None and item.volunteer_id is None
    mine = client.get("/complaints/mine").get_data(as_text=True)
    assert f'id="complaint-{pk}"' in mine and "时长与实际不符" in mine


def test_report_record__someone_elses_record_is_404_and_nothing_written(app):
    other = _record(app, "vol_shunhe", ELDERLY)
    client = _client(app, "vol_longting")
    before = _count(app)
    assert client.get(f"/complaints/new?subject=service_record&id={other.id}").status_code == 404
    resp = client.post(f"/complaints/new?subject=service_record&id={other.id}", data={"text": "x"})
    assert resp.status_code == 404
    assert _count(app) == before


def test_report_record__group_admin_reports_a_record_of_their_group_only(app):
    record = _record(app, "vol_longting")  # 北书店 team's project
    _report(app, "longting_team_admin", "service_record", record.id)
    _report(app, "longting_corps_admin", "service_record", record.id)  # the team's parent group
    before = _count(app)
    for username in ("shunhe_team_admin", "culture_team_admin"):
        resp = _client(app, username).post(f"/complaints/new?subject=service_record&id={record.id}",
                                           data={"text": "x"})
        assert resp.status_code == 404
    assert _count(app) == before


def test_report_project__public_project_by_anyone_signed_in_backfill_only_in_scope(app):
    public = _id_of(app, Project, BOOKSTORE)
    pk = _report(app, "vol_shunhe", "project", public)
    with app.app_context():
        project = db.session.get(Project, public)
        assert _complaint(app, pk).region_path == project.region_path
    backfill = _id_of(app, Project, BACKFILL)  # 龙亭 corps' backfill project: never public
    before = _count(app)
    assert _client(app, "vol_shunhe").post(f"/complaints/new?subject=project&id={backfill}",
                                           data={"text": "x"}).status_code == 404
    assert _count(app) == before
    _report(app, "longting_corps_admin", "project", backfill)  # its own group's: in scope


def test_report_group__approved_group_yes_pending_group_404(app):
    corps = _id_of(app, VolunteerGroup, LONGTING_CORPS)
    pk = _report(app, "vol_shunhe", "volunteer_group", corps)
    with app.app_context():
        assert _complaint(app, pk).region_path == db.session.get(VolunteerGroup, corps).region_path
    pending = _id_of(app, VolunteerGroup, BEIDAOMEN_TEAM)
    before = _count(app)
    assert _client(app, "vol_shunhe").post(f"/complaints/new?subject=volunteer_group&id={pending}",
                                           data={"text": "x"}).status_code == 404
    assert _count(app) == before


@pytest.mark.parametrize("query", ["subject=volunteer&id=1", "subject=project&id=abc", "subject=project&id=99999999",
                                   "subject=&id=", "subject=project&id=99999999999999999999"])
def test_report__unknown_subjects_are_404(app, query):
    client = _client(app, "vol_longting")
    assert client.get(f"/complaints/new?{query}").status_code == 404
    assert client.post(f"/complaints/new?{query}", data={"text": "x"}).status_code == 404


def test_report__empty_or_long_reason_is_refused_and_a_duplicate_while_pending(app):
    record = _record(app, "vol_longting")
    client = _client(app, "vol_longting")
    url = f"/complaints/new?subject=service_record&id={record.id}"
    before = _count(app)
    for text in ("", "   ", "长" * 2001):
        resp = client.post(url, data={"text": text})
        assert resp.status_code == 400 and 'data-field="text"' in resp.get_data(as_text=True)
    assert _count(app) == before
    _report(app, "vol_longting", "service_record", record.id)
    client.post(url, data={"text": "again"})
    assert _count(app) == before + 1


def test_report__anonymous_is_sent_to_log_in(app):
    project = _id_of(app, Project, BOOKSTORE)
    for resp in (_client(app).get(f"/complaints/new?subject=project&id={project}"),
                 _client(app).post(f"/complaints/new?subject=project&id={project}", data={"text": "x"})):
        assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert _count(app) == 0


@pytest.mark.parametrize("username", ["longting_officer", "kaifeng_honors"])
def test_report__officers_and_honors_editors_report_a_project_and_a_group_they_can_see(app, username):
    """Any signed-in role may report what it can see (the issue: 'any logged-in user')."""
    project = _id_of(app, Project, BOOKSTORE)
    page = _client(app, username).get(f"/complaints/new?subject=project&id={project}")
    assert page.status_code == 200 and 'id="complaint-form"' in page.get_data(as_text=True)
    pk = _report(app, username, "project", project)
    corps = _id_of(app, VolunteerGroup, LONGTING_CORPS)
    _report(app, username, "volunteer_group", corps)
    with app.app_context():
        user_id = app.appbuilder.sm.find_user(username=username).id
        assert db.session.get(Complaint, pk).reporter_id == user_id
    assert "书店街文明劝导" in _client(app, username).get("/complaints/mine").get_data(as_text=True)


@pytest.mark.parametrize("username", ["longting_officer", "kaifeng_honors"])
def test_report__officers_and_honors_editors_keep_the_visibility_rules(app, username):
    """A pending group stays 404 and a service record outside their own records and
    groups stays 404 for them too: nothing written."""
    pending = _id_of(app, VolunteerGroup, BEIDAOMEN_TEAM)
    record = _record(app, "vol_longting")
    client = _client(app, username)
    assert client.post(f"/complaints/new?subject=volunteer_group&id={pending}", data={"text": "x"}).status_code == 404
    assert client.post(f"/complaints/new?subject=service_record&id={record.id}", data={"text": "x"}).status_code == 404
    assert _count(app) == 0


def test_report__at_most_the_hourly_limit_then_refused_in_chinese_and_nothing_written(app):
    app.config["COMPLAINT_LIMIT"] = 2
    projects = [_id_of(app, Project, name) for name in (BOOKSTORE, ELDERLY)]
    corps = _id_of(app, VolunteerGroup, LONGTING_CORPS)
    _report(app, "vol_shunhe", "project", projects[0])
    _report(app, "vol_shunhe", "project", projects[1])
    before = _count(app)
    resp = _client(app, "vol_shunhe").post(f"/complaints/new?subject=volunteer_group&id={corps}",
                                           data={"text": "第三条举报"})
    assert resp.status_code == 429
    html = resp.get_data(as_text=True)
    assert "举报过于频繁" in html and "分钟后再试" in html
    assert "第三条举报" in html  # the text typed is kept on the form
    assert _count(app) == before
    _report(app, "vol_longting", "volunteer_group", corps)  # another user is not limited


def test_report__refused_reports_do_not_count_against_the_limit(app):
    app.config["COMPLAINT_LIMIT"] = 1
    project = _id_of(app, Project, BOOKSTORE)
    client = _client(app, "vol_shunhe")
    assert client.post(f"/complaints/new?subject=project&id={project}", data={"text": ""}).status_code == 400
    _report(app, "vol_shunhe", "project", project)


def test_report__limit_defaults_to_ten_an_hour(app):
    from app.services import complaints

    app.config.pop("COMPLAINT_LIMIT", None)
    app.config.pop("COMPLAINT_LIMIT_WINDOW_SECONDS", None)
    with app.app_context():
        item = complaints._REPORT_BUDGET._item()
    assert (item.amount, item.get_expiry()) == (10, 3600)


def test_report_links__on_service_hours_the_public_project_and_the_group_card(app):
    record = _record(app, "vol_longting")
    client = _client(app, "vol_longting")
    assert f"/complaints/new?subject=service_record&amp;id={record.id}" in client.get("/my/hours/").get_data(as_text=True)
    project = _id_of(app, Project, BOOKSTORE)
    link = f"/complaints/new?subject=project&amp;id={project}"
    assert link in client.get(f"/public/projects/{project}").get_data(as_text=True)
    assert link not in _client(app).get(f"/public/projects/{project}").get_data(as_text=True)
    team = _id_of(app, VolunteerGroup, "北书店街道社区志愿服务队")
    card = client.get(f"/my/groups/{team}/card")
    assert card.status_code == 200
    assert f"/complaints/new?subject=volunteer_group&amp;id={team}" in card.get_data(as_text=True)


# --- 区域监管 → 举报处理 ---


def test_handling__officers_see_only_their_regions_complaints(app):
    record = _record(app, "vol_longting")
    pk = _report(app, "vol_longting", "service_record", record.id)
    for username in ("longting_officer", "kaifeng_officer"):
        client = _client(app, username)
        assert f'id="complaint-{pk}"' in client.get("/complaints/").get_data(as_text=True)
        assert client.get(f"/complaints/{pk}").status_code == 200
    shunhe = _client(app, "shunhe_officer")
    assert f'id="complaint-{pk}"' not in shunhe.get("/complaints/?status=all").get_data(as_text=True)
    assert shunhe.get(f"/complaints/{pk}").status_code == 404
    assert shunhe.post(f"/complaints/{pk}/resolve", data={"resolution": "x", "hours": "0"}).status_code == 404
    assert shunhe.post(f"/complaints/{pk}/dismiss", data={"resolution": "x"}).status_code == 404
    assert _complaint(app, pk).status == "pending"
    for username in ("vol_longting", "longting_team_admin"):  # reporters do not handle complaints
        assert _client(app, username).get("/complaints/").status_code in (302, 403)
        _client(app, username).post(f"/complaints/{pk}/dismiss", data={"resolution": "x"})
    assert _complaint(app, pk).status == "pending"


def test_handling__dismiss_needs_a_reason_the_reporter_reads(app):
    pk = _report(app, "vol_shunhe", "volunteer_group", _id_of(app, VolunteerGroup, LONGTING_CORPS))
    officer = _client(app, "longting_officer")
    officer.post(f"/complaints/{pk}/dismiss", data={"resolution": ""})
    assert _complaint(app, pk).status == "pending"
    assert officer.post(f"/complaints/{pk}/dismiss", data={"resolution": "经核实，情况不属实"}).status_code == 302
    item = _complaint(app, pk)
    assert item.status == "rejected" and item.resolution == "经核实，情况不属实" and item.resolved_on
    with app.app_context():
        assert item.resolved_by_fk == app.appbuilder.sm.find_user(username="longting_officer").id
    assert "经核实，情况不属实" in _client(app, "vol_shunhe").get("/complaints/mine").get_data(as_text=True)
    officer.post(f"/complaints/{pk}/resolve", data={"resolution": "again"})  # handled: refused
    assert _complaint(app, pk).status == "rejected"


def test_resolve_with_correction__files_a_pending_correction_the_group_decides_on_timekeeping(app):
    record = _record(app, "vol_longting")
    pk = _report(app, "vol_longting", "service_record", record.id, text="我只服务了1小时")
    with app.app_context():
        current = hours.corrected_minutes(db.session.get(ServiceRecord, record.id))
        total_before = db.session.scalar(select(Volunteer.total_minutes).where(Volunteer.id == record.volunteer_id))
    officer = _client(app, "longting_officer")
    page = officer.get(f"/complaints/{pk}").get_data(as_text=True)
    assert 'id="hours"' in page and hours.hours_text(current) in page
    resp = officer.post(f"/complaints/{pk}/resolve", data={"resolution": "核实后应为1小时", "hours": "1"})
    assert resp.status_code == 302
    item = _complaint(app, pk)
    assert item.status == "resolved" and item.correction_id is not None
    with app.app_context():
        correction = db.session.get(ServiceRecord, item.correction_id)
        officer_id = app.appbuilder.sm.find_user(username="longting_officer").id
        assert correction.source == RecordSource.CORRECTION and correction.corrects_id == record.id
        assert correction.status == RecordStatus.PENDING and correction.minutes == 60 - current
        assert str(pk) in correction.reason and "核实后应为1小时" in correction.reason
        assert correction.created_by_fk == officer_id
        assert db.session.scalar(select(Volunteer.total_minutes).where(
            Volunteer.id == record.volunteer_id)) == total_before  # not credited before the group decides
        audit = set(db.session.execute(select(AuditEvent.object_type, AuditEvent.action, AuditEvent.actor_name).where(
            ((AuditEvent.object_type == "complaint") & (AuditEvent.object_id == pk))
            | ((AuditEvent.object_type == "service_record") & (AuditEvent.object_id == correction.id)))).all())
        correction_id, position_id = correction.id, correction.position_id
    assert ("complaint", "status:pending->resolved", "longting_officer") in audit
    assert ("service_record", "create", "longting_officer") in audit
    # The record's group decides it on 计时, like any correction request.
    admin = _client(app, "longting_team_admin")
    page = admin.get(f"/group-admin/positions/{position_id}/timekeeping").get_data(as_text=True)
    assert f'value="{correction_id}"' in page
    resp = admin.post(f"/group-admin/positions/{position_id}/timekeeping/decide",
                      data={"rowid": str(correction_id), "decision": "approve"})
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.get(ServiceRecord, correction_id).status == RecordStatus.APPROVED
        assert hours.corrected_minutes(db.session.get(ServiceRecord, record.id)) == 60
        assert db.session.scalar(select(Volunteer.total_minutes).where(
            Volunteer.id == record.volunteer_id)) == total_before + 60 - current
        assert ledger_mismatches([record.volunteer_id]) == []
        original = db.session.get(ServiceRecord, record.id)
        assert original.minutes == record.minutes and original.status == RecordStatus.APPROVED  # never edited
    assert 'data-status="approved"' in officer.get(f"/complaints/{pk}").get_data(as_text=True)


def test_resolve_with_correction__refusals_write_nothing(app):
    record = _record(app, "vol_longting")
    group_pk = _report(app, "vol_shunhe", "volunteer_group", _id_of(app, VolunteerGroup, LONGTING_CORPS))
    record_pk = _report(app, "vol_longting", "service_record", record.id)
    with app.app_context():
        current = hours.corrected_minutes(db.session.get(ServiceRecord, record.id))
        records_before = db.session.scalar(select(func.count(ServiceRecord.id)))
    officer = _client(app, "longting_officer")
    cases = [(group_pk, {"resolution": "x", "hours": "1"}),  # not a service record
             (record_pk, {"resolution": "x", "hours": hours.hours_text(current)}),  # nothing to change
             (record_pk, {"resolution": "x", "hours": "25"}),  # past 24 hours
             (record_pk, {"resolution": "x", "hours": "abc"}),
             (record_pk, {"resolution": "", "hours": "1"})]
    messages = ["只有针对服务记录的举报可以产生更正", "无需更正", "小时", "", "请填写处理结果"]
    for (pk, data), message in zip(cases, messages):
        assert officer.post(f"/complaints/{pk}/resolve", data=data).status_code == 302
        assert _complaint(app, pk).status == "pending" and _complaint(app, pk).correction_id is None, data
        assert message in officer.get(f"/complaints/{pk}").get_data(as_text=True), data
    with app.app_context():
        assert db.session.scalar(select(func.count(ServiceRecord.id))) == records_before
    # Without hours a record complaint resolves with no correction.
    officer.post(f"/complaints/{record_pk}/resolve", data={"resolution": "已提醒团体核实", "hours": ""})
    item = _complaint(app, record_pk)
    assert item.status == "resolved" and item.correction_id is None


def test_resolve_with_correction__a_second_pending_correction_is_refused(app):
    record = _record(app, "vol_longting")
    first = _report(app, "vol_longting", "service_record", record.id)
    second = _report(app, "longting_team_admin", "service_record", record.id)
    officer = _client(app, "longting_officer")
    officer.post(f"/complaints/{first}/resolve", data={"resolution": "改为1小时", "hours": "1"})
    assert _complaint(app, first).correction_id is not None
    officer.post(f"/complaints/{second}/resolve", data={"resolution": "改为2小时", "hours": "2"})
    assert _complaint(app, second).status == "pending" and _complaint(app, second).correction_id is None
    with app.app_context():
        assert db.session.scalar(select(func.count(ServiceRecord.id)).where(
            ServiceRecord.corrects_id == record.id, ServiceRecord.status == RecordStatus.PENDING)) == 1


def test_report__the_reported_groups_admins_cannot_read_who_reported_in_the_audit_log(app):
    team = _id_of(app, VolunteerGroup, "北书店街道社区志愿服务队")
    pk = _report(app, "vol_shunhe", "volunteer_group", team)
    with app.app_context():
        events = db.session.execute(select(AuditEvent.group_path, AuditEvent.region_path).where(
            AuditEvent.object_type == "complaint", AuditEvent.object_id == pk)).all()
    assert events and all(group_path is None for group_path, _region in events)
    admin = _client(app, "longting_team_admin")
    html = admin.get("/audit-log/list/?_flt_0_object_type=complaint").get_data(as_text=True)
    assert "vol_shunhe" not in html
    officer = _client(app, "longting_officer")
    assert "vol_shunhe" in officer.get("/audit-log/list/?_flt_0_object_type=complaint").get_data(as_text=True)
