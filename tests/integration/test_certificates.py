"""Certificates (志愿服务记录证明, issue 7 item 3): 我的证明 → 申请, 团体管理 → 证明申请
(issue for the group's own records, optionally a period; refuse with a reason; withdraw),
the platform's record summary, the PDF (text extracted with pypdf), the public
/verify/<number> page, the REST ``certificate`` resource and its public verify.

Demo facts used: vol_longting (李明华) has approved records in 北书店 team (longting_team_admin),
文化馆 team (culture_team_admin) and 开封市志愿服务联合会 (kfvf_admin); vol_shunhe (王秀英)
only in 清平 team (shunhe_team_admin).
"""
from __future__ import annotations

import io
import json
import re
from datetime import date

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select, update

from app.extensions import db
from app.models import (
    AuditEvent, Certificate, CertificateRequest, Honor, HonorLevel, RecordSource, RecordStatus, ServiceRecord,
    Training, VolunteerGroup,
)
from app.services import certificates
from tests.conftest import login
from tests.integration._hours_helpers import acting, volunteer_of

BOOKSTORE_TEAM = "北书店街道社区志愿服务队"
CULTURE_TEAM = "龙亭区文化馆志愿服务队"
QINGPING_TEAM = "清平街道社区志愿服务队"


def _group_id(app, name) -> int:
    with app.app_context():
        return db.session.scalar(select(VolunteerGroup.id).where(VolunteerGroup.name == name))


def _requests(app, volunteer="vol_longting") -> list[tuple]:
    with app.app_context():
        vid = volunteer_of(volunteer).id
        return db.session.execute(select(CertificateRequest.group_id, CertificateRequest.status,
                                         CertificateRequest.reason, CertificateRequest.certificate_id)
                                  .where(CertificateRequest.volunteer_id == vid)
                                  .order_by(CertificateRequest.id)).all()


def _apply(client, group_id, **fields):
    return client.post("/my/certificates/apply", data={"group": str(group_id), **fields})


def _request_id(app, group_name=BOOKSTORE_TEAM) -> int:
    with app.app_context():
        return db.session.scalar(select(CertificateRequest.id).join(VolunteerGroup).where(
            VolunteerGroup.name == group_name, CertificateRequest.status == "pending")
            .order_by(CertificateRequest.id.desc()))


ISSUE_FORM = {"person_in_charge": "何淑芬", "handler": "王小红", "contact": "0371-22223333"}


def _issued(app, client, group_name=BOOKSTORE_TEAM, admin="longting_team_admin", **period) -> Certificate:
    """vol_longting asks ``group_name``, its admin issues; returns the certificate (detached)."""
    login(client, "vol_longting")
    assert _apply(client, _group_id(app, group_name), purpose="求职", **period).status_code == 302
    client.get("/logout/")
    login(client, admin)
    resp = client.post(f"/group-admin/certificates/requests/{_request_id(app, group_name)}/issue", data=ISSUE_FORM)
    assert resp.status_code == 302, resp.data.decode()[:2000]
    client.get("/logout/")
    with app.app_context():
        certificate = db.session.scalar(select(Certificate).order_by(Certificate.id.desc()))
        db.session.expunge(certificate)
        return certificate


def _token_of(app, certificate) -> str:
    with app.test_request_context():
        return certificates.verification_token(certificate)


def _approved_net_minutes(app, volunteer, group_name=None, start=None, end=None) -> int:
    """SUM of approved minutes (corrections included) straight from the ledger."""
    with app.app_context():
        query = select(func.coalesce(func.sum(ServiceRecord.minutes), 0)).where(
            ServiceRecord.volunteer_id == volunteer_of(volunteer).id, ServiceRecord.status == RecordStatus.APPROVED)
        if group_name:
            query = query.where(ServiceRecord.group_id == _group_id(app, group_name))
        if start:
            query = query.where(ServiceRecord.served_on >= start)
        if end:
            query = query.where(ServiceRecord.served_on <= end)
        return db.session.scalar(query)


# --- 我的证明 → 申请 ---


def test_my_certificates__volunteer_sees_page_and_menu(app, client):
    login(client, "vol_longting")
    page = client.get("/my/certificates/").get_data(as_text=True)
    assert "我的证明" in page and 'id="apply-form"' in page
    for name in (BOOKSTORE_TEAM, CULTURE_TEAM, "开封市志愿服务联合会"):
        assert name in page  # groups holding approved records of hers
    assert QINGPING_TEAM not in page


def test_request__volunteer_creates_pending_request(app, client):
    login(client, "vol_longting")
    resp = _apply(client, _group_id(app, BOOKSTORE_TEAM), purpose="求职")
    assert resp.status_code == 302
    assert _requests(app) == [(_group_id(app, BOOKSTORE_TEAM), "pending", None, None)]
    page = client.get("/my/certificates/").get_data(as_text=True)
    assert 'data-status="pending"' in page


def test_request__second_pending_to_same_group_refused(app, client):
    login(client, "vol_longting")
    assert _apply(client, _group_id(app, BOOKSTORE_TEAM)).status_code == 302
    resp = _apply(client, _group_id(app, BOOKSTORE_TEAM))
    assert resp.status_code == 400
    assert "still pending" in resp.get_data(as_text=True) or "仍在等待" in resp.get_data(as_text=True)
    assert len(_requests(app)) == 1
    assert _apply(client, _group_id(app, CULTURE_TEAM)).status_code == 302  # another group: fine
    assert len(_requests(app)) == 2


def test_request__group_without_my_records_refused(app, client):
    login(client, "vol_longting")
    resp = _apply(client, _group_id(app, QINGPING_TEAM))
    assert resp.status_code == 400
    assert 'data-field="group"' in resp.get_data(as_text=True)
    assert _requests(app) == []


def test_request__period_backwards_or_without_records_refused(app, client):
    login(client, "vol_longting")
    group = _group_id(app, BOOKSTORE_TEAM)
    resp = _apply(client, group, period_from="2026-05-01", period_to="2026-04-01")
    assert resp.status_code == 400 and 'data-field="period_to"' in resp.get_data(as_text=True)
    resp = _apply(client, group, period_from="2001-01-01", period_to="2001-12-31")
    assert resp.status_code == 400
    resp = _apply(client, group, period_from="2026-13-01")
    assert resp.status_code == 400 and 'data-field="period_from"' in resp.get_data(as_text=True)
    assert _requests(app) == []


def test_request__unapproved_account_refused(app, db_session):
    from app.models import Volunteer

    with acting(app, "vol_longting"):
        volunteer = volunteer_of("vol_longting")
        group = db.session.get(VolunteerGroup, _group_id(app, BOOKSTORE_TEAM))
        db.session.execute(update(Volunteer).where(Volunteer.id == volunteer.id).values(status="suspended"))
        db.session.expire_all()
        with pytest.raises(certificates.DomainError):
            certificates.request_certificate(volunteer_of("vol_longting"), group)


# --- 团体管理 → 证明申请: issue ---


def test_issue__group_admin_issues_for_own_group_records_only(app, client):
    certificate = _issued(app, client)
    snapshot = json.loads(certificate.snapshot_json)
    groups = {r["group"] for r in snapshot["records"]}
    assert groups == {BOOKSTORE_TEAM}
    expected = _approved_net_minutes(app, "vol_longting", BOOKSTORE_TEAM)
    assert certificate.minutes == snapshot["total_minutes"] == expected > 0
    assert expected < _approved_net_minutes(app, "vol_longting")  # she has other groups' records too
    assert certificate.issuer == BOOKSTORE_TEAM and certificate.kind == "group"
    assert certificate.group_id == _group_id(app, BOOKSTORE_TEAM)
    assert (snapshot["person_in_charge"], snapshot["handler"], snapshot["contact"]) == (
        "何淑芬", "王小红", "0371-22223333")
    assert snapshot["holder"]["name"] == "李明华"
    assert "*" in snapshot["holder"]["id_number_masked"]
    assert snapshot["holder"]["volunteer_no"] and snapshot["holder"]["id_type_label"]
    assert certificate.snapshot_hash == certificates.hash_text(certificate.snapshot_json)
    assert _requests(app)[0][1] == "approved" and _requests(app)[0][3] == certificate.id


def test_issue__date_range_limits_records(app, client):
    with app.app_context():
        vid = volunteer_of("vol_longting").id
        days = sorted(db.session.scalars(select(ServiceRecord.served_on).where(
            ServiceRecord.volunteer_id == vid, ServiceRecord.status == "approved",
            ServiceRecord.group_id == _group_id(app, "开封市志愿服务联合会"))))
    assert len(set(days)) >= 2, "the demo gives her several federation records"
    start = end = days[-1]
    certificate = _issued(app, client, "开封市志愿服务联合会", "kfvf_admin",
                          period_from=start.isoformat(), period_to=end.isoformat())
    snapshot = json.loads(certificate.snapshot_json)
    assert {r["served_on"] for r in snapshot["records"]} == {start.isoformat()}
    assert certificate.minutes == _approved_net_minutes(app, "vol_longting", "开封市志愿服务联合会", start, end)
    assert certificate.minutes < _approved_net_minutes(app, "vol_longting", "开封市志愿服务联合会")
    assert (certificate.period_from, certificate.period_to) == (start, end)


def test_issue__no_records_in_period_refused_with_message(app, client):
    with app.app_context():
        volunteer = volunteer_of("vol_longting")
        group = db.session.get(VolunteerGroup, _group_id(app, BOOKSTORE_TEAM))
        row = CertificateRequest(volunteer_id=volunteer.id, group_id=group.id, group_path=group.group_path,
                                 region_id=group.region_id, region_path=group.region_path,
                                 volunteer_name=volunteer.real_name, volunteer_no=volunteer.volunteer_no,
                                 period_from=date(2001, 1, 1), period_to=date(2001, 12, 31), status="pending")
        db.session.add(row)
        db.session.commit()
        request_id = row.id
    login(client, "longting_team_admin")
    resp = client.post(f"/group-admin/certificates/requests/{request_id}/issue", data=ISSUE_FORM)
    assert resp.status_code == 400
    assert "nothing to certify" in resp.get_data(as_text=True) or "没有可证明" in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count(Certificate.id))) == 0
        assert db.session.get(CertificateRequest, request_id).status == "pending"


def test_issue__missing_person_in_charge_refused(app, client):
    login(client, "vol_longting")
    _apply(client, _group_id(app, BOOKSTORE_TEAM))
    client.get("/logout/")
    login(client, "longting_team_admin")
    rid = _request_id(app)
    page = client.get(f"/group-admin/certificates/requests/{rid}").get_data(as_text=True)
    with app.app_context():
        count = db.session.scalar(select(func.count(ServiceRecord.id)).where(
            ServiceRecord.volunteer_id == volunteer_of("vol_longting").id, ServiceRecord.status == "approved",
            ServiceRecord.group_id == _group_id(app, BOOKSTORE_TEAM)))
    assert count >= 1 and f'id="record-count">{count}<' in page
    resp = client.post(f"/group-admin/certificates/requests/{rid}/issue",
                       data={**ISSUE_FORM, "person_in_charge": "  "})
    assert resp.status_code == 400 and 'data-field="person_in_charge"' in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count(Certificate.id))) == 0


def test_issue__contact_prefilled_from_group(app, client):
    from app.security import pii

    login(client, "vol_longting")
    _apply(client, _group_id(app, BOOKSTORE_TEAM))
    client.get("/logout/")
    login(client, "longting_team_admin")
    page = client.get(f"/group-admin/certificates/requests/{_request_id(app)}").get_data(as_text=True)
    with app.app_context():
        group = db.session.get(VolunteerGroup, _group_id(app, BOOKSTORE_TEAM))
        phone = pii.decrypt(group.contact_phone_enc)
        name = group.contact_name
    assert re.search(r'name="contact" maxlength="64" value="[^"]*' + re.escape(phone), page)
    assert name in page


@pytest.mark.parametrize("admin", ["culture_team_admin", "longting_corps_admin", "shunhe_team_admin"])
def test_issue__other_groups_admin_gets_404(app, client, admin):
    """Only the request's group's own admins decide (a parent group's admin neither)."""
    login(client, "vol_longting")
    _apply(client, _group_id(app, BOOKSTORE_TEAM))
    client.get("/logout/")
    login(client, admin)
    rid = _request_id(app)
    assert client.get(f"/group-admin/certificates/requests/{rid}").status_code == 404
    assert client.post(f"/group-admin/certificates/requests/{rid}/issue", data=ISSUE_FORM).status_code == 404
    assert client.post(f"/group-admin/certificates/requests/{rid}/refuse", data={"reason": "x"}).status_code == 404
    assert f"/requests/{rid}" not in client.get("/group-admin/certificates/").get_data(as_text=True)
    assert _requests(app)[0][1] == "pending"


def test_issue__volunteer_cannot_reach_group_admin_pages(app, client):
    login(client, "vol_longting")
    _apply(client, _group_id(app, BOOKSTORE_TEAM))
    resp = client.post(f"/group-admin/certificates/requests/{_request_id(app)}/issue", data=ISSUE_FORM)
    assert resp.status_code in (302, 403, 404)
    assert _requests(app)[0][1] == "pending"


def test_issue__audited(app, client):
    certificate = _issued(app, client)
    with app.app_context():
        actions = db.session.execute(select(AuditEvent.object_type, AuditEvent.action, AuditEvent.actor_name).where(
            AuditEvent.object_type.in_(("certificate", "certificate_request")))).all()
    assert ("certificate", "create", "longting_team_admin") in actions
    assert ("certificate_request", "create", "vol_longting") in actions
    assert ("certificate_request", "status:pending->approved", "longting_team_admin") in actions
    assert certificate.number


# --- Refuse ---


def test_refuse__needs_reason_then_volunteer_reads_it(app, client):
    login(client, "vol_longting")
    _apply(client, _group_id(app, BOOKSTORE_TEAM))
    client.get("/logout/")
    login(client, "longting_team_admin")
    rid = _request_id(app)
    resp = client.post(f"/group-admin/certificates/requests/{rid}/refuse", data={"reason": " "})
    assert resp.status_code == 400 and 'data-field="reason"' in resp.get_data(as_text=True)
    assert _requests(app)[0][1] == "pending"
    assert client.post(f"/group-admin/certificates/requests/{rid}/refuse",
                       data={"reason": "该时段服务记录尚在核实中"}).status_code == 302
    assert _requests(app)[0][1:3] == ("rejected", "该时段服务记录尚在核实中")
    # Decided: the request's page is gone, and the volunteer may ask again.
    assert client.get(f"/group-admin/certificates/requests/{rid}").status_code == 404
    client.get("/logout/")
    login(client, "vol_longting")
    assert "该时段服务记录尚在核实中" in client.get("/my/certificates/").get_data(as_text=True)
    assert _apply(client, _group_id(app, BOOKSTORE_TEAM)).status_code == 302


# --- Withdraw and verify ---


def test_withdraw__verify_says_revoked(app, client):
    certificate = _issued(app, client)
    token = _token_of(app, certificate)
    anonymous = app.test_client()
    page = anonymous.get(f"/verify/{certificate.number}").get_data(as_text=True)
    assert 'data-status="valid"' in page and "有效" in page
    login(client, "longting_team_admin")
    assert client.post(f"/group-admin/certificates/{certificate.id}/withdraw", data={"reason": ""}).status_code == 302
    with app.app_context():
        assert not db.session.get(Certificate, certificate.id).is_withdrawn  # no reason: refused
    assert client.post(f"/group-admin/certificates/{certificate.id}/withdraw",
                       data={"reason": "记录有误，需重新出具"}).status_code == 302
    for url in (f"/verify/{certificate.number}", f"/verify/{certificate.number}?t={token}"):
        resp = anonymous.get(url)
        page = resp.get_data(as_text=True)
        assert resp.status_code == 200 and 'data-status="withdrawn"' in page and "已撤回" in page
        assert "有效" not in page.split('id="certificate-status">')[1][:20]
    with app.app_context():
        row = db.session.get(Certificate, certificate.id)
        assert row.withdraw_reason == "记录有误，需重新出具" and row.withdrawn_on is not None
    # Withdrawn twice: refused, nothing changes.
    assert client.post(f"/group-admin/certificates/{certificate.id}/withdraw",
                       data={"reason": "again"}).status_code == 302
    with app.app_context():
        assert db.session.get(Certificate, certificate.id).withdraw_reason == "记录有误，需重新出具"


@pytest.mark.parametrize("user", ["culture_team_admin", "longting_corps_admin", "vol_longting"])
def test_withdraw__others_refused(app, client, user):
    certificate = _issued(app, client)
    login(client, user)
    resp = client.post(f"/group-admin/certificates/{certificate.id}/withdraw", data={"reason": "x"})
    assert resp.status_code in (403, 404) or (resp.status_code == 302 and "/login" in resp.headers["Location"])
    with app.app_context():
        assert not db.session.get(Certificate, certificate.id).is_withdrawn


def test_withdraw__officer_in_scope_may_withdraw_through_service(app, client):
    certificate = _issued(app, client)
    with acting(app, "shunhe_officer"), pytest.raises(certificates.ScopeViolation):
        certificates.withdraw_certificate(db.session.get(Certificate, certificate.id), "x")
    with acting(app, "longting_officer"):
        certificates.withdraw_certificate(db.session.get(Certificate, certificate.id), "核查发现问题")
        db.session.commit()
        assert db.session.get(Certificate, certificate.id).is_withdrawn



# --- 区域监管 → 证明管理 (officers: list the region's certificates, 撤回) ---


def _withdraw_events(app, certificate_id) -> list[tuple]:
    with app.app_context():
        return db.session.execute(select(AuditEvent.action, AuditEvent.actor_name).where(
            AuditEvent.object_type == "certificate", AuditEvent.object_id == certificate_id,
            AuditEvent.action != "create")).all()


@pytest.mark.parametrize("officer,sees", [("longting_officer", True), ("kaifeng_officer", True),
                                          ("henan_officer", True), ("shunhe_officer", False)])
def test_oversight_list__officer_sees_the_certificates_of_their_region_read_only(app, client, officer, sees):
    certificate = _issued(app, client)
    resp = login(app.test_client(), officer).get("/oversight/certificates/")  # no flash left from issuing
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    assert (certificate.number in page) is sees
    assert "李明华" not in page  # the holder's name only masked
    if sees:
        row = page.split(f'id="certificate-{certificate.id}"')[1].split("</tr>")[0]
        assert "李**" in row and BOOKSTORE_TEAM in row and certificate.issued_on.isoformat() in row
        assert 'data-status="valid"' in row and "有效" in row and 'withdraw-form' in row
        assert "/pdf" not in row and ".pdf" not in row  # read-only: no download, no edit


def test_oversight_list__finds_a_certificate_by_number_and_filters_by_status(app, client):
    certificate = _issued(app, client)
    login(client, "longting_officer")
    typed = certificate.number.lower()[:4] + "-" + certificate.number[4:]
    assert certificate.number in client.get(f"/oversight/certificates/?number={typed}").get_data(as_text=True)
    assert certificate.number not in client.get(
        "/oversight/certificates/?number=ABCDEFGHJKMNPQRS").get_data(as_text=True)
    assert certificate.number not in client.get(
        "/oversight/certificates/?status=withdrawn").get_data(as_text=True)


def test_oversight_withdraw__officer_in_scope_withdraws_with_a_reason_and_it_is_audited(app, client):
    certificate = _issued(app, client)
    login(client, "longting_officer")
    url = f"/oversight/certificates/{certificate.id}/withdraw"
    resp = client.post(url, data={"reason": "  "})
    assert resp.status_code == 302
    with app.app_context():
        assert not db.session.get(Certificate, certificate.id).is_withdrawn  # no reason: refused
    assert "请填写撤回证明的原因。" in client.get(resp.headers["Location"]).get_data(as_text=True)
    resp = client.post(url, data={"reason": "核查发现记录不实"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/oversight/certificates/")
    with app.app_context():
        row = db.session.get(Certificate, certificate.id)
        assert row.is_withdrawn and row.withdraw_reason == "核查发现记录不实" and row.withdrawn_on is not None
    assert _withdraw_events(app, certificate.id) == [("is_withdrawn:false->true", "longting_officer")]
    page = client.get("/oversight/certificates/?status=withdrawn").get_data(as_text=True)
    row = page.split(f'id="certificate-{certificate.id}"')[1].split("</tr>")[0]
    assert 'data-status="withdrawn"' in row and "已撤回" in row and "核查发现记录不实" in row
    assert 'withdraw-form' not in row
    anonymous = app.test_client()
    assert 'data-status="withdrawn"' in anonymous.get(f"/verify/{certificate.number}").get_data(as_text=True)


def test_oversight_withdraw__officer_above_the_region_may_withdraw_too(app, client):
    certificate = _issued(app, client)
    login(client, "kaifeng_officer")
    assert client.post(f"/oversight/certificates/{certificate.id}/withdraw",
                       data={"reason": "市级核查"}).status_code == 302
    with app.app_context():
        assert db.session.get(Certificate, certificate.id).is_withdrawn


def test_oversight_withdraw__out_of_scope_officer_gets_404_and_nothing_changes(app, client):
    certificate = _issued(app, client)
    login(client, "shunhe_officer")
    assert client.post(f"/oversight/certificates/{certificate.id}/withdraw",
                       data={"reason": "越权"}).status_code == 404
    assert client.post("/oversight/certificates/99999999/withdraw", data={"reason": "x"}).status_code == 404
    with app.app_context():
        assert not db.session.get(Certificate, certificate.id).is_withdrawn
    assert _withdraw_events(app, certificate.id) == []


@pytest.mark.parametrize("user", [None, "vol_longting", "longting_team_admin", "kaifeng_honors"])
def test_oversight__volunteers_group_admins_and_honors_editors_are_refused(app, client, user):
    certificate = _issued(app, client)
    if user:
        login(client, user)
    for resp in (client.get("/oversight/certificates/"),
                 client.post(f"/oversight/certificates/{certificate.id}/withdraw", data={"reason": "x"})):
        if user is None:
            assert resp.status_code == 302 and "/login" in resp.headers["Location"]
        else:
            assert resp.status_code == 403
    with app.app_context():
        assert not db.session.get(Certificate, certificate.id).is_withdrawn
    assert _withdraw_events(app, certificate.id) == []


def test_withdraw_service__volunteers_never_even_their_own(app, client):
    certificate = _issued(app, client)
    with acting(app, "vol_longting"), pytest.raises(certificates.ScopeViolation):
        certificates.withdraw_certificate(db.session.get(Certificate, certificate.id), "不想要了")
    with acting(app, "culture_team_admin"), pytest.raises(certificates.ScopeViolation):
        certificates.withdraw_certificate(db.session.get(Certificate, certificate.id), "x")
    with app.app_context():
        assert not db.session.get(Certificate, certificate.id).is_withdrawn


def test_verify__token_required_for_details(app, client):
    certificate = _issued(app, client)
    token = _token_of(app, certificate)
    assert len(token) >= 16
    anonymous = app.test_client()
    full = anonymous.get(f"/verify/{certificate.number}?t={token}").get_data(as_text=True)
    assert 'id="certificate-details"' in full
    assert "李**" in full and BOOKSTORE_TEAM in full and certificate.issued_on.isoformat() in full
    hours = f"{certificate.minutes / 60:.2f}".rstrip("0").rstrip(".")
    assert f'id="detail-hours">{hours}<' in full
    assert 'data-matches="yes"' in full
    assert "李明华" not in full
    bare_shapes = []
    for url in (f"/verify/{certificate.number}", f"/verify/{certificate.number}?t={token[:-1]}x",
                f"/verify/{certificate.number}?t=", f"/verify/{certificate.number.lower()}?t=0000000000000000"):
        page = anonymous.get(url).get_data(as_text=True)
        assert 'id="certificate-details"' not in page and "李**" not in page and BOOKSTORE_TEAM not in page
        bare_shapes.append('data-status="valid"' in page)
    assert all(bare_shapes)
    unknown = anonymous.get("/verify/ABCDEFGHJKMNPQRS")
    assert unknown.status_code == 404
    text = unknown.get_data(as_text=True)
    assert 'data-status="unknown"' in text and "不存在" in text and 'id="certificate-details"' not in text
    assert anonymous.get("/verify/<script>").status_code == 404


def test_verify__tampered_snapshot_does_not_match(app, client):
    certificate = _issued(app, client)
    token = _token_of(app, certificate)
    anonymous = app.test_client()
    assert 'data-matches="yes"' in anonymous.get(f"/verify/{certificate.number}?t={token}").get_data(as_text=True)
    # Only the hash can tell: a served date moved, nothing the certificate's columns repeat.
    first_day = json.loads(certificate.snapshot_json)["records"][0]["served_on"]
    tampered = certificate.snapshot_json.replace(f'"served_on":"{first_day}"', '"served_on":"2020-01-01"', 1)
    assert tampered != certificate.snapshot_json
    with app.app_context():
        db.session.execute(update(Certificate).where(Certificate.id == certificate.id)
                           .values(snapshot_json=tampered))
        db.session.commit()
    page = anonymous.get(f"/verify/{certificate.number}?t={token}").get_data(as_text=True)
    assert 'data-matches="no"' in page
    assert "does not match" in page or "不一致" in page
    api = anonymous.get(f"/api/v1/certificate/verify/{certificate.number}?t={token}").get_json()
    assert api["details"]["snapshot_matches"] is False


def test_verify__rate_limited_per_address(app, client):
    certificate = _issued(app, client)
    app.config["CERTIFICATE_VERIFY_ATTEMPTS"] = 3
    anonymous = app.test_client()
    codes = [anonymous.get(f"/verify/{certificate.number}").status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    assert anonymous.get("/verify/ABCDEFGHJKMNPQRS").status_code == 429
    assert anonymous.get(f"/api/v1/certificate/verify/{certificate.number}").status_code == 429
    other = app.test_client()
    assert other.get(f"/verify/{certificate.number}", environ_base={"REMOTE_ADDR": "10.9.8.7"}).status_code == 200


def test_number__random_not_sequential(app):
    with app.app_context():
        numbers = [certificates.new_number() for _ in range(300)]
    assert len(set(numbers)) == 300
    assert all(len(n) == 16 and set(n) <= set(certificates.NUMBER_ALPHABET) for n in numbers)
    assert not set("01OIL") & set("".join(numbers))
    # Sequential numbers would share their heads and differ only at the end.
    assert len({n[0] for n in numbers}) >= 20
    assert len({n[:8] for n in numbers}) == 300
    assert numbers != sorted(numbers)


def test_number__issued_certificates_do_not_follow_each_other(app, client):
    first = _issued(app, client)
    second = _issued(app, client, CULTURE_TEAM, "culture_team_admin")
    assert first.number != second.number and first.number[:6] != second.number[:6]
    assert certificates.normalize_number(first.number.lower()) == first.number


def test_token__depends_on_number_hash_and_secret(app, client):
    certificate = _issued(app, client)
    token = _token_of(app, certificate)
    with app.test_request_context():
        assert certificates.token_matches(certificate, token)
        assert not certificates.token_matches(certificate, token[:-2])
        certificate.snapshot_hash = "0" * 64
        assert not certificates.token_matches(certificate, token)
    app.config["SECRET_KEY"] = "another-secret-key-0123456789abcdef"
    with app.test_request_context():
        certificate.snapshot_hash = certificates.hash_text(certificate.snapshot_json)
        assert not certificates.token_matches(certificate, token)


# --- PDF ---


def _pdf_text(data: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_pdf__holder_downloads_pdf_with_chinese_content(app, client):
    certificate = _issued(app, client)
    login(client, "vol_longting")
    resp = client.get(f"/my/certificates/{certificate.id}.pdf")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    assert resp.headers["Content-Disposition"].startswith("attachment")
    text = _pdf_text(resp.data)
    snapshot = json.loads(certificate.snapshot_json)
    assert "李明华" in text
    assert "志愿服务记录证明" in text
    assert snapshot["holder"]["volunteer_no"] in text
    assert snapshot["total_hours"] in text
    for fact in (BOOKSTORE_TEAM, "何淑芬", "王小红", "0371-22223333", certificate.number,
                 snapshot["holder"]["id_number_masked"], snapshot["records"][0]["project"]):
        assert fact in text, fact
    compact = re.sub(r"\s", "", text)
    assert f"/verify/{certificate.number}?t={_token_of(app, certificate)}" in compact


def test_pdf__shows_training_and_honors(app, client):
    with app.app_context():
        volunteer = volunteer_of("vol_longting")
        group = db.session.get(VolunteerGroup, _group_id(app, BOOKSTORE_TEAM))
        other = db.session.get(VolunteerGroup, _group_id(app, CULTURE_TEAM))
        for title, grp in (("文明劝导岗前培训", group), ("讲解礼仪培训", other)):
            db.session.add(Training(volunteer_id=volunteer.id, group_id=grp.id, group_path=grp.group_path,
                                    title=title, provider=grp.name, trained_on=date(2026, 5, 10), minutes=90,
                                    region_id=grp.region_id, region_path=grp.region_path))
        db.session.add(Honor(title="优秀志愿者测试荣誉", level=HonorLevel.PREFECTURE, awarding_body="开封市文明办",
                             document_no="汴文明〔2026〕9号", awarded_on=date(2026, 6, 1), volunteer_id=volunteer.id,
                             region_id=volunteer.region_id, region_path=volunteer.region_path))
        db.session.add(Honor(title="已撤销的荣誉", level=HonorLevel.PREFECTURE, awarding_body="开封市文明办",
                             awarded_on=date(2026, 6, 2), volunteer_id=volunteer.id, is_withdrawn=True,
                             region_id=volunteer.region_id, region_path=volunteer.region_path))
        db.session.commit()
    certificate = _issued(app, client)
    snapshot = json.loads(certificate.snapshot_json)
    with app.app_context():
        own = set(db.session.scalars(select(Training.title).where(
            Training.volunteer_id == volunteer_of("vol_longting").id,
            Training.group_id == _group_id(app, BOOKSTORE_TEAM))))
    titles = [t["title"] for t in snapshot["trainings"]]
    assert "文明劝导岗前培训" in titles and set(titles) == own  # this group's trainings only
    assert "讲解礼仪培训" not in titles
    assert "优秀志愿者测试荣誉" in [h["title"] for h in snapshot["honors"]]
    assert "已撤销的荣誉" not in [h["title"] for h in snapshot["honors"]]
    login(client, "vol_longting")
    text = _pdf_text(client.get(f"/my/certificates/{certificate.id}.pdf").data)
    assert "文明劝导岗前培训" in text and "优秀志愿者测试荣誉" in text and "讲解礼仪培训" not in text


@pytest.mark.parametrize("user,url,expected", [
    ("vol_longting", "/my/certificates/{id}.pdf", 200),
    ("longting_team_admin", "/group-admin/certificates/{id}.pdf", 200),
    ("longting_officer", "/my/certificates/{id}.pdf", 200),
    ("kaifeng_officer", "/group-admin/certificates/{id}.pdf", 200),
    ("vol_shunhe", "/my/certificates/{id}.pdf", 404),
    ("culture_team_admin", "/group-admin/certificates/{id}.pdf", 404),
    ("longting_corps_admin", "/group-admin/certificates/{id}.pdf", 404),
    ("shunhe_officer", "/my/certificates/{id}.pdf", 404),
    ("kaifeng_honors", "/my/certificates/{id}.pdf", 404),
])
def test_pdf__scope(app, client, user, url, expected):
    certificate = _issued(app, client)
    login(client, user)
    assert client.get(url.format(id=certificate.id)).status_code == expected
    assert client.get(url.format(id=certificate.id + 1000)).status_code in (404, 403)


def test_pdf__anonymous_refused(app, client):
    certificate = _issued(app, client)
    resp = app.test_client().get(f"/my/certificates/{certificate.id}.pdf")
    assert resp.status_code in (302, 401, 403)
    assert resp.mimetype != "application/pdf"


# --- The platform's record summary ---


def test_summary__volunteer_gets_platform_summary_of_all_records(app, client):
    login(client, "vol_longting")
    assert client.post("/my/certificates/summary").status_code == 302
    with app.app_context():
        rows = db.session.scalars(select(Certificate)).all()
        assert len(rows) == 1
        summary = rows[0]
        assert (summary.kind, summary.issuer, summary.group_id) == ("summary", "志愿云平台", None)
        assert summary.minutes == _approved_net_minutes(app, "vol_longting") == volunteer_of("vol_longting").total_minutes
        groups = {r["group"] for r in json.loads(summary.snapshot_json)["records"]}
        assert {BOOKSTORE_TEAM, CULTURE_TEAM} <= groups
        summary_id = summary.id
    # The same day, nothing changed: the same summary, no new row.
    assert client.post("/my/certificates/summary").status_code == 302
    with app.app_context():
        assert db.session.scalar(select(func.count(Certificate.id))) == 1
    page = client.get("/my/certificates/").get_data(as_text=True)
    assert f"/my/certificates/{summary_id}.pdf" in page and "志愿云平台" in page
    text = _pdf_text(client.get(f"/my/certificates/{summary_id}.pdf").data)
    assert "志愿云平台" in text and "李明华" in text


def test_summary__reflects_corrections(app, client):
    """A correction taking hours away shows in the next summary's per-record hours."""
    from app.services import hours

    with acting(app, "longting_team_admin"):
        record = db.session.scalar(select(ServiceRecord).where(
            ServiceRecord.volunteer_id == volunteer_of("vol_longting").id,
            ServiceRecord.group_id == _group_id(app, BOOKSTORE_TEAM), ServiceRecord.status == "approved",
            ServiceRecord.source != RecordSource.CORRECTION))
        before = record.minutes
        hours.correct_record(record, minutes=-60, reason="多记了一小时")
        db.session.commit()
        served_on = record.served_on.isoformat()
    certificate = _issued(app, client)
    entries = [r for r in json.loads(certificate.snapshot_json)["records"] if r["served_on"] == served_on]
    assert [r["minutes"] for r in entries] == [before - 60]


# --- REST ---


def _token(client, username):
    resp = client.post("/api/v1/security/login", json={
        "username": username, "password": "Demo12345!", "provider": "db"})
    assert resp.status_code == 200, resp.data
    return {"Authorization": f"Bearer {resp.get_json()['access_token']}"}


@pytest.mark.parametrize("user,sees", [
    ("vol_longting", True), ("longting_team_admin", True), ("longting_officer", True),
    ("vol_shunhe", False), ("culture_team_admin", False), ("shunhe_officer", False), ("kaifeng_honors", False),
])
def test_api_certificate__scoped_read(app, client, user, sees):
    certificate = _issued(app, client)
    api = app.test_client()
    headers = _token(api, user)
    listed = api.get("/api/v1/certificate/", headers=headers)
    one = api.get(f"/api/v1/certificate/{certificate.id}", headers=headers)
    if user == "kaifeng_honors":
        assert listed.status_code in (200, 403) and one.status_code in (403, 404)
        if listed.status_code == 200:
            assert listed.get_json()["count"] == 0
        return
    assert listed.status_code == 200
    numbers = [item["number"] for item in listed.get_json()["result"]]
    assert (certificate.number in numbers) is sees
    assert one.status_code == (200 if sees else 404)
    if sees:
        assert one.get_json()["result"]["snapshot_hash"] == certificate.snapshot_hash
        assert "snapshot_json" not in one.get_json()["result"]


def test_api_verify__public_and_token_gated(app, client):
    certificate = _issued(app, client)
    token = _token_of(app, certificate)
    anonymous = app.test_client()
    bare = anonymous.get(f"/api/v1/certificate/verify/{certificate.number}")
    assert bare.status_code == 200
    assert bare.get_json() == {"number": certificate.number, "status": "valid", "details": None}
    full = anonymous.get(f"/api/v1/certificate/verify/{certificate.number}?t={token}").get_json()
    assert full["status"] == "valid" and full["details"]["holder"] == "李**"
    assert full["details"]["issuer"] == BOOKSTORE_TEAM and full["details"]["snapshot_matches"] is True
    unknown = anonymous.get("/api/v1/certificate/verify/ABCDEFGHJKMNPQRS")
    assert unknown.status_code == 404 and unknown.get_json()["status"] == "unknown"
    signed_in = app.test_client()
    assert signed_in.get(f"/api/v1/certificate/verify/{certificate.number}",
                         headers=_token(signed_in, "vol_shunhe")).status_code == 200


def test_api_certificate__no_write_routes(app, client):
    certificate = _issued(app, client)
    api = app.test_client()
    headers = _token(api, "longting_team_admin")
    assert api.post("/api/v1/certificate/", json={"number": "X"}, headers=headers).status_code in (404, 405)
    assert api.put(f"/api/v1/certificate/{certificate.id}", json={"minutes": 1}, headers=headers).status_code in (404, 405)
    assert api.delete(f"/api/v1/certificate/{certificate.id}", headers=headers).status_code in (404, 405)


# --- Group admin page ---


def test_group_page__lists_pending_and_issued_of_own_groups_only(app, client):
    certificate = _issued(app, client)
    login(client, "vol_longting")
    _apply(client, _group_id(app, CULTURE_TEAM))
    client.get("/logout/")
    login(client, "longting_team_admin")
    page = client.get("/group-admin/certificates/").get_data(as_text=True)
    assert "证明申请" in page and certificate.number in page
    assert 'id="no-pending"' in page  # the 文化馆 request is not theirs
    client.get("/logout/")
    login(client, "culture_team_admin")
    page = client.get("/group-admin/certificates/").get_data(as_text=True)
    assert "李明华" in page and certificate.number not in page


def test_group_page__query_count_constant(app, client):
    """Issued certificates and pending requests load in a constant number of queries."""
    from sqlalchemy import event

    _issued(app, client)
    login(client, "longting_team_admin")

    def count_queries():
        seen = []
        with app.app_context():
            engine = db.engine
        listener = lambda *args: seen.append(1)
        event.listen(engine, "before_cursor_execute", listener)
        try:
            assert client.get("/group-admin/certificates/").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return len(seen)

    one = count_queries()
    with app.app_context():
        original = db.session.scalar(select(Certificate))
        for n in range(5):
            data = {c.key: getattr(original, c.key) for c in Certificate.__table__.columns if c.key != "id"}
            data["number"] = f"TESTNUMBER{n:06d}"
            db.session.add(Certificate(**data))
        db.session.commit()
    assert count_queries() == one


# --- Page matrix: every GET page of the certificate views, every kind of actor ---

PAGES = [
    # (url template, {actor: expected}); "login" = sent to the login page, None = anonymous
    ("/my/certificates/", {None: "login", "vol_longting": 200, "vol_shunhe": 200}),
    ("/my/certificates/{cert}.pdf", {None: "login", "vol_longting": 200, "vol_shunhe": 404,
                                     "longting_team_admin": 200, "culture_team_admin": 404,
                                     "longting_officer": 200, "shunhe_officer": 404}),
    ("/group-admin/certificates/", {None: "login", "vol_longting": 404, "longting_team_admin": 200,
                                    "culture_team_admin": 200, "longting_officer": 403}),
    ("/group-admin/certificates/requests/{req}", {None: "login", "vol_longting": 404, "longting_team_admin": 200,
                                                  "culture_team_admin": 404, "longting_corps_admin": 404,
                                                  "longting_officer": 403}),
    ("/group-admin/certificates/{cert}.pdf", {None: "login", "vol_shunhe": 404, "longting_team_admin": 200,
                                              "longting_corps_admin": 404, "kaifeng_officer": 200}),
    ("/verify/{number}", {None: 200, "vol_shunhe": 200, "longting_officer": 200}),
    ("/oversight/certificates/", {None: "login", "vol_longting": 403, "longting_team_admin": 403,
                                  "kaifeng_honors": 403, "longting_officer": 200, "shunhe_officer": 200,
                                  "admin": 200}),
]


def _expect(resp, expected):
    if expected == "login":
        assert resp.status_code == 302 and "/login" in resp.headers["Location"], resp.status_code
    else:
        assert resp.status_code == expected, resp.get_data(as_text=True)[:300]


def test_pages__each_actor_gets_its_answer(app, client):
    certificate = _issued(app, client)
    login(client, "vol_longting")
    _apply(client, _group_id(app, BOOKSTORE_TEAM))
    client.get("/logout/")
    ids = {"cert": certificate.id, "req": _request_id(app), "number": certificate.number}
    for template, expectations in PAGES:
        for username, expected in expectations.items():
            actor = app.test_client()
            if username:
                login(actor, username)
            _expect(actor.get(template.format(**ids)), expected)


def test_pages__matrix_covers_every_get_route(app):
    """A new GET page of the certificate views must be added to PAGES."""
    views = ("MyCertificatesView.", "GroupCertificatesView.", "CertificateVerifyView.", "CertificateOversightView.")
    covered = [re.sub(r"\{\w+\}", "[^/]+", t) for t, _ in PAGES]
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(views) and "GET" in rule.methods:
            pattern = re.sub(r"<[^>]+>", "[^/]+", rule.rule)
            assert any(re.fullmatch(pattern, c) or c == pattern for c in covered), rule.rule


def test_menu__volunteer_and_group_admin_see_their_entries(app):
    volunteer = login(app.test_client(), "vol_longting")
    page = volunteer.get("/my/certificates/").get_data(as_text=True)
    assert 'href="/my/certificates/"' in page and "/group-admin/certificates/" not in page
    admin = login(app.test_client(), "longting_team_admin")
    page = admin.get("/group-admin/certificates/").get_data(as_text=True)
    assert 'href="/group-admin/certificates/"' in page and 'href="/my/certificates/"' not in page
    assert 'href="/oversight/certificates/"' not in page


def test_menu__officers_find_certificate_oversight_under_region_oversight(app):
    officer = login(app.test_client(), "longting_officer")
    page = officer.get("/oversight/certificates/").get_data(as_text=True)
    assert 'href="/oversight/certificates/"' in page and "证明管理" in page
    resp = login(app.test_client(), "kaifeng_honors").get("/honors/list/")
    assert resp.status_code == 200 and 'href="/oversight/certificates/"' not in resp.get_data(as_text=True)


def test_openapi__documents_certificate_verify(app):
    client = login(app.test_client(), "admin")
    paths = client.get("/api/v1/_openapi").get_json()["paths"]
    get = paths["/api/v1/certificate/verify/{number}"]["get"]
    assert get["summary"].startswith("Verify a certificate")
    assert {p["name"] for p in get["parameters"]} == {"number", "t"}
    assert "/api/v1/certificate/" in paths and "post" not in paths["/api/v1/certificate/"]
