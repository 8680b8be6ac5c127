"""Full personal data (显示完整证件号) for officers in scope, encryption at rest, and
finding a volunteer by exact ID number (blind index) or volunteer number."""
import re

import pytest
from sqlalchemy import select, text

from app.extensions import db
from app.models import AuditEvent, Volunteer
from app.security import pii

DEMO_VOLUNTEERS = ["vol_longting", "vol_shunhe", "vol_minor", "vol_zhengzhou"]


def _volunteer(app, username):
    from flask_appbuilder.security.sqla.models import User

    with app.app_context():
        v = db.session.scalar(select(Volunteer).join(User, User.id == Volunteer.user_id)
                              .where(User.username == username))
        plain = {"id": pii.decrypt(v.id_number_enc), "phone": pii.decrypt(v.phone_enc),
                 "guardian_phone": pii.decrypt(v.guardian_phone_enc)}
        db.session.expunge(v)
        return v, plain


def _pii_events(app, volunteer_id):
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "view_pii", AuditEvent.object_type == "volunteer",
            AuditEvent.object_id == volunteer_id)).all()
        db.session.expunge_all()
        return rows


# --- 显示完整证件号 on the volunteer's show page ---


def test_show_page__officer_in_scope_sees_reveal_button(app, client, login_as):
    v, _ = _volunteer(app, "vol_longting")
    login_as("longting_officer")
    html = client.get(f"/volunteers/show/{v.id}").get_data(as_text=True)
    assert "显示完整证件号" in html and f"/volunteers/pii/{v.id}" in html


def test_show_page__group_admin_sees_no_reveal_button(app, client, login_as):
    v, _ = _volunteer(app, "vol_longting")
    login_as("longting_team_admin")
    resp = client.get(f"/volunteers/show/{v.id}")
    assert resp.status_code == 200
    assert "显示完整证件号" not in resp.get_data(as_text=True)


def test_reveal_pii__officer_in_scope_sees_full_id_and_event_recorded(app, client, login_as):
    v, plain = _volunteer(app, "vol_minor")
    login_as("longting_officer")
    resp = client.post(f"/volunteers/pii/{v.id}")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert plain["id"] in html and plain["phone"] in html and plain["guardian_phone"] in html
    [event] = _pii_events(app, v.id)
    assert event.actor_name == "longting_officer" and event.region_path == v.region_path
    assert plain["id"] not in (event.after_json or "")


def test_reveal_pii__officer_out_of_scope_gets_404_and_nothing_recorded(app, client, login_as):
    v, plain = _volunteer(app, "vol_longting")
    login_as("shunhe_officer")
    resp = client.post(f"/volunteers/pii/{v.id}")
    assert resp.status_code == 404
    assert plain["id"] not in resp.get_data(as_text=True)
    assert _pii_events(app, v.id) == []


def test_reveal_pii__unknown_id_is_404(client, login_as):
    login_as("longting_officer")
    assert client.post("/volunteers/pii/999999").status_code == 404


@pytest.mark.parametrize("username", ["longting_team_admin", "longting_corps_admin", "kaifeng_honors",
                                      "vol_longting", "vol_shunhe"])
def test_reveal_pii__other_roles_refused(app, client, login_as, username):
    v, plain = _volunteer(app, "vol_longting")
    login_as(username)
    resp = client.post(f"/volunteers/pii/{v.id}")
    assert resp.status_code in (403, 404)
    assert plain["id"] not in resp.get_data(as_text=True)
    assert _pii_events(app, v.id) == []


def test_reveal_pii__anonymous_sent_to_login(app, client):
    v, _ = _volunteer(app, "vol_longting")
    resp = client.post(f"/volunteers/pii/{v.id}")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_reveal_pii__get_not_allowed(app, client, login_as):
    v, _ = _volunteer(app, "vol_longting")
    login_as("longting_officer")
    assert client.get(f"/volunteers/pii/{v.id}").status_code == 405


def test_reveal_pii__without_csrf_token_refused(template_db):
    from tests.conftest import app_on_copy

    with app_on_copy(template_db) as app:
        app.config["WTF_CSRF_ENABLED"] = True
        v, plain = _volunteer(app, "vol_longting")
        client = app.test_client()
        page = client.get("/login/").get_data(as_text=True)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        resp = client.post("/login/", data={"username": "longting_officer", "password": "Demo12345!",
                                            "csrf_token": token})
        assert resp.status_code == 302
        resp = client.post(f"/volunteers/pii/{v.id}")
        assert resp.status_code == 400
        assert plain["id"] not in resp.get_data(as_text=True)
        show = client.get(f"/volunteers/show/{v.id}").get_data(as_text=True)
        token = re.search(r'id="reveal-pii-form".*?name="csrf_token" value="([^"]+)"', show, re.S).group(1)
        assert client.post(f"/volunteers/pii/{v.id}", data={"csrf_token": token}).status_code == 200


# --- Encryption at rest ---


@pytest.mark.parametrize("username", DEMO_VOLUNTEERS)
def test_database_row__holds_no_plaintext_id_or_phone(app, username):
    v, plain = _volunteer(app, username)
    with app.app_context():
        row = db.session.execute(text("SELECT * FROM volunteer WHERE id = :id"), {"id": v.id}).mappings().one()
    dump = " ".join(
        (bytes(value).decode("latin-1") if isinstance(value, (bytes, memoryview)) else str(value))
        for value in row.values())
    secrets = [plain["id"], plain["phone"], plain["id"][6:14]]  # the birth date part too
    if plain["guardian_phone"]:
        secrets.append(plain["guardian_phone"])
    for secret in secrets:
        assert secret and secret not in dump
    assert row["id_number_masked"] == pii.mask_id(plain["id"])


# --- Finding a volunteer by ID number or volunteer number ---


def _list_ids(client, query):
    html = client.get(f"/volunteers/list/?{query}").get_data(as_text=True)
    return {int(x) for x in re.findall(r'href="/volunteers/show/(\d+)', html)}


@pytest.mark.parametrize("username", ["longting_officer", "longting_team_admin"])
def test_search_by_id_number__exact_number_finds_the_volunteer(app, client, login_as, username):
    v, plain = _volunteer(app, "vol_longting")
    login_as(username)
    assert _list_ids(client, f"_flt_0_id_blind={plain['id']}") == {v.id}
    assert _list_ids(client, f"_flt_0_id_blind={plain['id'].lower()}") == {v.id}  # check character case


@pytest.mark.parametrize("partial", [lambda n: n[:6], lambda n: n[:-1], lambda n: n[-4:], lambda n: "%"])
def test_search_by_id_number__partial_number_finds_nothing(app, client, login_as, partial):
    _, plain = _volunteer(app, "vol_longting")
    login_as("longting_officer")
    assert _list_ids(client, f"_flt_0_id_blind={partial(plain['id'])}") == set()


def test_search_by_id_number__out_of_scope_volunteer_not_found(app, client, login_as):
    _, plain = _volunteer(app, "vol_zhengzhou")
    login_as("longting_officer")
    assert _list_ids(client, f"_flt_0_id_blind={plain['id']}") == set()


def test_search_by_id_number__offered_as_equal_to_only_in_search_widget(client, login_as):
    login_as("longting_officer")
    html = client.get("/volunteers/list/").get_data(as_text=True)
    assert '"id_blind": ["\\u7b49\\u4e8e"]' in html  # ["等于"]: one filter, exact
    assert '"volunteer_no": ["\\u7b49\\u4e8e"]' in html
    for column in ("id_number_masked", "phone_masked", "id_number_enc"):
        assert f'name="{column}" class="filter"' not in html


@pytest.mark.parametrize("index", range(6))
def test_search__masked_or_encrypted_columns_are_not_searchable(app, client, login_as, index):
    v, _ = _volunteer(app, "vol_longting")
    login_as("longting_officer")
    everyone = _list_ids(client, "")
    assert len(everyone) > 1
    for column, value in (("id_number_masked", v.id_number_masked), ("phone_masked", v.phone_masked),
                          ("id_number_enc", "x")):
        # A filter on these columns is ignored, never applied as LIKE.
        assert _list_ids(client, f"_flt_{index}_{column}={value}") == everyone


def test_search_by_volunteer_number__exact_only(app, client, login_as):
    v, _ = _volunteer(app, "vol_longting")
    login_as("longting_officer")
    assert _list_ids(client, f"_flt_0_volunteer_no={v.volunteer_no}") == {v.id}
    assert _list_ids(client, f"_flt_0_volunteer_no={v.volunteer_no[:8]}") == set()


# --- REST API: masked only ---


@pytest.mark.parametrize("username", ["admin", "longting_officer", "longting_team_admin", "vol_longting"])
def test_api_volunteer_list__never_contains_full_id_or_phone(app, client, username):
    resp = client.post("/api/v1/security/login", json={"username": username, "password": "Demo12345!",
                                                         "provider": "db"})
    headers = {"Authorization": f"Bearer {resp.get_json()['access_token']}"}
    with app.app_context():
        plains = {}
        for v in db.session.scalars(select(Volunteer)):
            plains[v.id] = [pii.decrypt(v.id_number_enc), pii.decrypt(v.phone_enc)]
    body = client.get("/api/v1/volunteer/?q=(page_size:100)", headers=headers)
    assert body.status_code == 200
    items = body.get_json()["result"]
    assert items
    for item in items:
        assert "id_number_enc" not in item and "phone_enc" not in item
        for secret in plains[item["id"]]:
            if secret:
                assert secret not in str(item.values())
        one = client.get(f"/api/v1/volunteer/{item['id']}", headers=headers).get_json()["result"]
        assert all(s not in str(one.values()) for s in plains[item["id"]] if s)
