"""Partner API tokens (issue 9): issued by an Admin in the console, bound to a region,
read-only, revocable — and what the REST API shows a token compared with the database."""
from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta

import prison
import pytest
from flask_appbuilder.security.sqla import manager as fab_manager
from flask_appbuilder.security.sqla.models import ApiKey, User
from sqlalchemy import and_, or_, select

from app.extensions import db
from app.models import AuditEvent, Honor, Membership, Project, Region, ServiceRecord, Volunteer, VolunteerGroup
from app.security.permissions import ACTION_READ
from app.security.roles import PARTNER, ROLES
from app.security.scope import under
from app.security import manager
from app.services import api_tokens, clock, projects
from tests.conftest import login, recorded_statements

KAIFENG = "410200"
ZHENGZHOU = "410100"
SCOPED = [("volunteer", Volunteer), ("volunteer_group", VolunteerGroup), ("service_record", ServiceRecord),
          ("honor", Honor), ("membership", Membership)]


def _issue(app, code: str, name: str = "partner system", expires_on=None) -> str:
    with app.app_context():
        region = db.session.scalar(select(Region).where(Region.code == code))
        key = api_tokens.issue(name, region, expires_on).key
        db.session.commit()
    return key


def _headers(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _ids(client, token: str, resource: str) -> set[int]:
    """Every id the token reads from ``/api/v1/<resource>/``, page by page."""
    ids: set[int] = set()
    page = 0
    while True:
        q = prison.dumps({"page": page, "page_size": 100, "columns": ["id"]})
        resp = client.get(f"/api/v1/{resource}/?q={q}", headers=_headers(token))
        assert resp.status_code == 200, (resource, resp.status_code, resp.data[:300])
        body = resp.get_json()
        ids |= {row["id"] for row in body["result"]}
        if len(body["result"]) < 100:
            return ids
        page += 1


def _region_path(app, code: str) -> str:
    with app.app_context():
        return db.session.scalar(select(Region.path).where(Region.code == code))


def _ids_under(app, model, path: str) -> set[int]:
    with app.app_context():
        return set(db.session.scalars(select(model.id).where(under(model.region_path, path))))


def test_partner_role__reads_only():
    assert ROLES[PARTNER] and all(action == ACTION_READ for _resource, action in ROLES[PARTNER])


def test_token__reads_exactly_its_region_and_below(app):
    token = _issue(app, KAIFENG)
    client = app.test_client()
    path = _region_path(app, KAIFENG)
    for resource, model in SCOPED:
        expected = _ids_under(app, model, path)
        assert expected, f"the demo has {resource} rows in 开封市 (else this check could not fail)"
        assert _ids(client, token, resource) == expected, resource
    with app.app_context():
        wanted = set(db.session.scalars(select(Project.id).where(
            or_(under(Project.region_path, path), projects.public_clause()))))
    assert _ids(client, token, "project") == wanted


def test_token__of_another_region_sees_none_of_them(app):
    token = _issue(app, ZHENGZHOU)
    client = app.test_client()
    kaifeng = _region_path(app, KAIFENG)
    for resource, model in SCOPED:
        assert not _ids(client, token, resource) & _ids_under(app, model, kaifeng), resource
    # Projects: a token reads what anyone reads (the public 志愿项目 list), never more.
    with app.app_context():
        private = set(db.session.scalars(select(Project.id).where(
            and_(under(Project.region_path, kaifeng), ~projects.public_clause()))))
    assert private, "the demo has non-public projects in 开封市"
    assert not _ids(client, token, "project") & private


def test_token__show_of_an_out_of_region_row_is_404(app):
    token = _issue(app, ZHENGZHOU)
    with app.app_context():
        pk = db.session.scalar(select(Volunteer.id).where(under(Volunteer.region_path, _kaifeng_path())))
    resp = app.test_client().get(f"/api/v1/volunteer/{pk}", headers=_headers(token))
    assert resp.status_code == 404


def _kaifeng_path() -> str:
    return db.session.scalar(select(Region.path).where(Region.code == KAIFENG))


def test_token__revoked_expired_or_unknown_is_401(app):
    revoked = _issue(app, KAIFENG, "revoked")
    expired = _issue(app, KAIFENG, "expired", expires_on=clock.today() + timedelta(days=3))
    with app.app_context():
        assert api_tokens.revoke(revoked)
        db.session.execute(ApiKey.__table__.update().where(ApiKey.name == "expired")
                           .values(expires_on=clock.utcnow() - timedelta(minutes=1)))
        db.session.commit()
    client = app.test_client()
    for token in (revoked, expired, "vc_" + "x" * 43, "vc_"):
        for url in ("/api/v1/volunteer/", "/api/v1/volunteer_group/", "/api/v1/region/", "/api/v1/project/"):
            resp = client.get(url, headers=_headers(token))
            assert resp.status_code == 401, (token[:8], url, resp.status_code)


def test_token__expiry_date_is_the_last_valid_day(app):
    token = _issue(app, KAIFENG, expires_on=clock.today())
    assert app.test_client().get("/api/v1/volunteer/", headers=_headers(token)).status_code == 200
    with app.app_context(), pytest.raises(api_tokens.ValidationFailed):
        api_tokens.issue("late", db.session.scalar(select(Region).where(Region.code == KAIFENG)),
                         clock.today() - timedelta(days=1))


def _freeze(monkeypatch, utc: datetime) -> None:
    """Stop the clock at ``utc`` (naive UTC) for the service and the key check."""
    monkeypatch.setattr(clock, "utcnow", lambda: utc)


def test_token__expiry_date_ends_at_midnight_in_shanghai__fixed_clock(app, monkeypatch):
    # 2026-12-01 23:30 in Shanghai is 15:30 UTC: the expiry day 2026-12-01 has half an
    # hour left, and ends at 16:00 UTC (stored so, naive UTC).
    _freeze(monkeypatch, datetime(2026, 12, 1, 15, 30))
    token = _issue(app, KAIFENG, "shanghai day", expires_on=date(2026, 12, 1))
    with app.app_context():
        stored = db.session.scalar(select(ApiKey).where(ApiKey.name == "shanghai day"))
        assert stored.expires_on == datetime(2026, 12, 1, 16, 0)
        assert stored.created_on == datetime(2026, 12, 1, 15, 30)
    api = app.test_client()
    assert api.get("/api/v1/volunteer/", headers=_headers(token)).status_code == 200
    _freeze(monkeypatch, datetime(2026, 12, 1, 16, 0, 1))
    assert api.get("/api/v1/volunteer/", headers=_headers(token)).status_code == 401

    # 2026-12-01 00:30 in Shanghai while the UTC date is still 11-30: 11-30 has passed.
    _freeze(monkeypatch, datetime(2026, 11, 30, 16, 30))
    with app.app_context(), pytest.raises(api_tokens.ValidationFailed):
        api_tokens.issue("late", KAIFENG, date(2026, 11, 30))

    # The console shows the stored UTC times in Shanghai time.
    html = login(app.test_client(), "admin").get("/console/api-token/").get_data(as_text=True)
    assert "2026-12-02 00:00" in html and "2026-12-01 23:30" in html
    assert "2026-12-01 16:00" not in html and "2026-12-01 15:30" not in html


def _key_updates(statements: list[str]) -> list[str]:
    return [s for s in statements if re.match(r"\s*UPDATE\s+ab_api_key\b", s, re.I)]


def test_token__a_read_checks_the_key_once_and_writes_its_last_use_at_most_every_5_minutes(app, monkeypatch):
    token = _issue(app, KAIFENG)
    hashed = []
    check = fab_manager.check_password_hash
    for module in (manager, fab_manager):  # ours, and FAB's should it run
        monkeypatch.setattr(module, "check_password_hash",
                            lambda *a: hashed.append(a) or check(*a), raising=False)
    api = app.test_client()
    with recorded_statements(app) as statements:
        assert api.get("/api/v1/volunteer/", headers=_headers(token)).status_code == 200
    assert len(_key_updates(statements)) <= 1, _key_updates(statements)
    assert len(hashed) == 1
    with recorded_statements(app) as statements:
        assert api.get("/api/v1/volunteer/", headers=_headers(token)).status_code == 200
    assert _key_updates(statements) == []
    # Older than five minutes: the next read writes it once.
    with app.app_context():
        key = db.session.scalar(select(ApiKey).where(ApiKey.user_id.isnot(None)).order_by(ApiKey.id.desc()))
        key.last_used_on = clock.utcnow() - timedelta(minutes=6)
        key_id = key.id
        db.session.commit()
    with recorded_statements(app) as statements:
        assert api.get("/api/v1/volunteer/", headers=_headers(token)).status_code == 200
    assert len(_key_updates(statements)) == 1
    with app.app_context():
        assert db.session.get(ApiKey, key_id).last_used_on > clock.utcnow() - timedelta(minutes=1)


WRITES = [
    ("post", "/api/v1/volunteer/", {"real_name": "张三"}),
    ("post", "/api/v1/volunteer/{volunteer}/review", {"decision": "approve"}),
    ("post", "/api/v1/volunteer_group/{group}/review", {"decision": "approve"}),
    ("post", "/api/v1/membership/{membership}/review", {"decision": "approve"}),
    ("post", "/api/v1/hour_code/", {"position": 1, "served_on": "2026-01-01", "minutes": 60}),
    ("post", "/api/v1/hour_code/redeem", {"code": "012345678901"}),
    ("post", "/api/v1/honor/", {"title": "x"}),
    ("put", "/api/v1/honor/1", {"title": "x"}),
    ("post", "/api/v1/help_request/", {"title": "x"}),
    ("delete", "/api/v1/volunteer/{volunteer}", None),
]


def test_token__cannot_write(app):
    token = _issue(app, KAIFENG)
    path = _region_path(app, KAIFENG)
    with app.app_context():
        ids = {"volunteer": db.session.scalar(select(Volunteer.id).where(under(Volunteer.region_path, path))),
               "group": db.session.scalar(select(VolunteerGroup.id).where(under(VolunteerGroup.region_path, path))),
               "membership": db.session.scalar(select(Membership.id).where(under(Membership.region_path, path)))}
        events = db.session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
    client = app.test_client()
    for method, url, body in WRITES:
        resp = getattr(client, method)(url.format(**ids), json=body, headers=_headers(token))
        assert resp.status_code in (401, 403), (method, url, resp.status_code)
    with app.app_context():
        assert db.session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1)) == events


def test_token__opens_no_page_and_no_console(app):
    token = _issue(app, KAIFENG)
    client = app.test_client()
    for url in ("/volunteers/list/", "/service-records/list/", "/console/", "/console/api-token/"):
        resp = client.get(url, headers=_headers(token))
        assert resp.status_code in (302, 403), (url, resp.status_code)
        assert resp.status_code == 403 or "/login" in resp.headers["Location"]


def test_partner_account__cannot_log_in(app):
    _issue(app, KAIFENG)
    with app.app_context():
        username = db.session.scalar(select(User.username).where(User.username.like("partner-%")))
    resp = app.test_client().post("/api/v1/security/login",
                                  json={"username": username, "password": "", "provider": "db"})
    assert resp.status_code in (400, 401)


# --- Console ---


def _console_create(client, **data):
    return client.post("/console/api-token/new/", data=data)


def test_console__admin_issues_a_token_that_works(app):
    client = login(app.test_client(), "admin")
    form = client.get("/console/api-token/new/").get_data(as_text=True)
    assert "区划代码" in form and "到期日期" in form
    resp = _console_create(client, name="开封市民政系统", region_code=KAIFENG, expires_on="")
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    html = resp.get_data(as_text=True)
    match = re.search(r"(vc_[A-Za-z0-9_-]{40,})", html)
    assert match, html[:2000]
    token = match.group(1)
    api = app.test_client()
    got = _ids(api, token, "volunteer")
    assert got == _ids_under(app, Volunteer, _region_path(app, KAIFENG))

    listing = client.get("/console/api-token/").get_data(as_text=True)
    assert "开封市民政系统" in listing and "vc_" in listing and token not in listing
    assert "API 令牌" in listing and "吊销" in listing and "开封市 (410200)" in listing
    with app.app_context():
        key = db.session.scalar(select(ApiKey).where(ApiKey.name == "开封市民政系统"))
        assert key.last_used_on is not None
        key_id = key.id
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.object_type == "ab_api_key")).all()
        assert [e.action for e in events] == ["create"]
        assert events[0].actor_name == "admin" and events[0].region_path == _kaifeng_path()
        assert json.loads(events[0].after_json)["region"] == KAIFENG

    # 吊销: the action refuses the token at once and is audited.
    resp = client.post("/console/api-token/action/", data={"action": "revoke", "rowid": [str(key_id)]})
    assert resp.status_code == 302
    assert api.get("/api/v1/volunteer/", headers=_headers(token)).status_code == 401
    with app.app_context():
        key = db.session.get(ApiKey, key_id)
        assert key.revoked_on is not None and not key.user.active
        events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        assert [e.action for e in events if e.object_type == "ab_api_key"] == ["create", "revoke"]
        dumped = " ".join(f"{e.before_json} {e.after_json}" for e in events)
        assert token not in dumped and key.key_hash not in dumped and key.lookup_hash not in dumped
    assert token not in client.get("/console/api-token/").get_data(as_text=True)


def test_console__bad_input_is_refused(app):
    client = login(app.test_client(), "admin")
    html = _console_create(client, name="x", region_code="999999").get_data(as_text=True)
    assert "vc_" not in html and "999999" in html and "行政区划" in html
    html = _console_create(client, name="", region_code=KAIFENG).get_data(as_text=True)
    assert not re.search(r"vc_[A-Za-z0-9_-]{40,}", html)
    with app.app_context():
        assert db.session.scalar(select(ApiKey.id).limit(1)) is None


@pytest.mark.parametrize("username", ["kaifeng_officer", "henan_officer", "kfvf_admin", "vol_longting"])
def test_console__other_roles_get_403(app, username):
    client = login(app.test_client(), username)
    assert client.get("/console/api-token/").status_code == 403
    assert _console_create(client, name="x", region_code=KAIFENG).status_code == 403
    with app.app_context():
        assert db.session.scalar(select(ApiKey.id).limit(1)) is None


def test_issue__unknown_region_code_is_refused_by_the_service(app):
    with app.app_context():
        with pytest.raises(api_tokens.ValidationFailed) as err:
            api_tokens.issue("x", "999999")
        assert any("999999" in message for message in err.value.messages)
        assert db.session.scalar(select(ApiKey.id).limit(1)) is None
        issued = api_tokens.issue("by code", f" {KAIFENG} ")
        assert issued.region.code == KAIFENG


def test_console__token_list_reads_the_regions_in_one_query(app):
    for code in (KAIFENG, ZHENGZHOU, "410202"):
        _issue(app, code, f"partner {code}")
    client = login(app.test_client(), "admin")
    with recorded_statements(app) as statements:
        html = client.get("/console/api-token/").get_data(as_text=True)
    assert "开封市 (410200)" in html and "(410100)" in html and "(410202)" in html
    region_reads = [s for s in statements if re.search(r"\b(FROM|JOIN)\s+region\b", s, re.I)]
    assert len(region_reads) <= 1, region_reads


@pytest.mark.parametrize("rowid", ["²", "99999999999999999999", "-1", ""])
def test_console__revoke_with_a_malformed_id_changes_nothing(app, rowid):
    _issue(app, KAIFENG)
    client = login(app.test_client(), "admin")
    resp = client.post("/console/api-token/action/", data={"action": "revoke", "rowid": [rowid]})
    assert resp.status_code in (200, 302)
    with app.app_context():
        assert db.session.scalar(select(ApiKey.id).where(ApiKey.revoked_on.isnot(None)).limit(1)) is None
