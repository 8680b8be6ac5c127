"""团体注册 (public group registration) and 团体信息 (a group admin's own settings):
every refusal names its field and writes nothing; admins change only their own groups."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from app.extensions import db
from app.models import AuditEvent, GroupAdmin, ReviewStatus, VolunteerGroup
from app.security import pii
from app.services import groups
from app.services.errors import ScopeViolation, ValidationFailed
from app.services.idcards import credit_code_check_char
from tests.conftest import login

LONGTING_CORPS = "龙亭区志愿服务总队"
KAIFENG_FEDERATION = "开封市志愿服务联合会"
BEISHUDIAN = "北书店街道社区志愿服务队"
QINGPING = "清平街道社区志愿服务队"
BEIDAOMEN = "龙亭区北道门社区志愿服务队"  # demo: pending under 龙亭区志愿服务总队
VALID_CODE = "91350100M000100Y43"  # a published example with a correct GB 32100 check


def _form(**changes) -> dict:
    data = dict(name="龙亭区测试社区志愿服务队", username="test_group_admin", password="Passw0rd1",
                password_confirm="Passw0rd1", parent_id="", parent_name=LONGTING_CORPS, region_code="410202001",
                group_type="community", is_legal_person="0", credit_code="", contact_name="张三",
                contact_phone="13912345678", staff_headcount="", description="测试团体",
                join_policy="verify", join_password="")
    data.update(changes)
    return data


def _counts(app) -> tuple[int, int, int]:
    with app.app_context():
        user_model = app.appbuilder.sm.user_model
        return tuple(db.session.scalar(select(func.count()).select_from(m))
                     for m in (VolunteerGroup, user_model, GroupAdmin))


def _group(app, name: str) -> VolunteerGroup | None:
    with app.app_context():
        group = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == name))
        if group is not None:
            db.session.expunge(group)
        return group


def _field_errors(html: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for field, message in re.findall(r'class="help-block field-error" data-field="([a-z_]+)">([^<]*)<', html):
        found.setdefault(field, []).append(message)
    return found


# --- The page ---


def test_login_page__links_to_group_registration(client):
    html = client.get("/login/").get_data(as_text=True)
    assert 'href="/groups/register/"' in html and "团体注册" in html


def test_register_page__anonymous_sees_form_and_immutability_warning(client):
    resp = client.get("/groups/register/")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "团体注册" in html
    warning = re.search(r'id="immutable-warning">(.*?)</div>', html, re.S).group(1)
    assert "用户名和志愿团体名称" in warning and "不可修改" in warning and "慎重" in warning
    assert "<script>" not in html  # CSP: scripts are files with a nonce
    assert "js/group_register.js" in html and "js/registration.js" in html
    for name in ("name", "username", "password", "parent_name", "parent_id", "region_code", "group_type",
                 "is_legal_person", "credit_code", "contact_name", "contact_phone", "staff_headcount",
                 "join_policy", "join_password"):
        assert f'name="{name}"' in html, name


def test_register__anonymous_registers_team_pending_with_bound_admin(app, client):
    resp = client.post("/groups/register/", data=_form())
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200, _field_errors(html)
    assert "龙亭区测试社区志愿服务队" in html and LONGTING_CORPS in html and "test_group_admin" in html
    with app.app_context():
        group = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == "龙亭区测试社区志愿服务队"))
        corps = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == LONGTING_CORPS))
        assert group.status == ReviewStatus.PENDING and group.parent_id == corps.id
        assert group.group_path == f"{corps.group_path}{group.id}/"
        assert group.region_path == "410000/410200/410202/410202001/"
        assert group.name_pinyin.startswith("ltqcssqzyfwd ")
        assert group.join_token and group.join_policy == "verify" and group.join_password_hash is None
        assert pii.decrypt(group.contact_phone_enc) == "13912345678" and group.contact_phone_masked == "139****5678"
        assert not group.is_legal_person and group.credit_code is None
        user = app.appbuilder.sm.find_user(username="test_group_admin")
        assert {r.name for r in user.roles} == {"GroupAdmin"}
        assert db.session.scalar(select(GroupAdmin).where(
            GroupAdmin.user_id == user.id, GroupAdmin.group_id == group.id)) is not None
    login(client, "test_group_admin", "Passw0rd1")
    profile = client.get("/group-admin/profile/").get_data(as_text=True)
    assert "龙亭区测试社区志愿服务队" in profile and "待审核" in profile


def test_register__parent_chosen_by_id_and_legal_person_with_landline(app, client):
    corps = _group(app, LONGTING_CORPS)
    resp = client.post("/groups/register/", data=_form(
        parent_id=str(corps.id), parent_name="", is_legal_person="1", credit_code=VALID_CODE.lower(),
        contact_phone="0371-2234 5678", group_type="civil_unit", staff_headcount="120",
        name="龙亭区测试文明单位志愿服务队", region_code="410202"))
    assert resp.status_code == 200, _field_errors(resp.get_data(as_text=True))
    group = _group(app, "龙亭区测试文明单位志愿服务队")
    assert group.parent_id == corps.id and group.credit_code == VALID_CODE and group.staff_headcount == 120
    assert group.contact_phone_masked == "037*****5678"


def test_register__root_group_is_reviewed_by_the_region_office(app, client):
    code = "52410200MJ0000000" + credit_code_check_char("52410200MJ0000000")
    resp = client.post("/groups/register/", data=_form(
        name="开封市测试志愿服务联合会", group_type="federation", parent_name="", region_code="410200",
        is_legal_person="1", credit_code=code))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200, _field_errors(html)
    assert "开封市文明办" in html
    assert _group(app, "开封市测试志愿服务联合会").parent_id is None


# --- Refusals: each names its field, keeps the form and writes nothing ---


def _corrupt(code: str) -> str:
    return code[:17] + ("0" if code[17] != "0" else "1")


REFUSALS = [
    ("duplicate_name", dict(name=BEISHUDIAN), "name", "已存在"),
    ("duplicate_name_spaces", dict(name=f"  {BEISHUDIAN}\u3000"), "name", "已存在"),
    ("duplicate_name_ideographic_space_inside", dict(name="北书店街道社区\u3000志愿服务队"), "name", "已存在"),
    ("duplicate_name_zero_width_space", dict(name="北书店街道社区\u200b志愿服务队"), "name", "已存在"),
    # (NUL itself is refused for the whole request before the form is read: see the service test below)
    ("duplicate_name_control_characters", dict(name=f"\x01\x1b{BEISHUDIAN}\x7f"), "name", "已存在"),
    ("missing_name_invisible_only", dict(name="\u200b\u3000\x01"), "name", "请填写团体名称"),
    ("federation_under_a_team", dict(name="北书店街道志愿者联合会", group_type="federation",
                                     parent_name=BEISHUDIAN), "parent", f"“{BEISHUDIAN}”不是"),
    ("federation_under_a_corps_anywhere", dict(name="任意名称", group_type="federation", region_code="410105",
                                               parent_name="郑州市金水区志愿服务总队"), "parent", "不是"),
    ("region_outside_the_parents", dict(name="金水区测试社区志愿服务队", region_code="410105"),
     "region_code", f"上级团体“{LONGTING_CORPS}”所在地区龙亭区"),
    ("region_outside_the_parents_without_a_rule", dict(name="金水区测试服务中心", region_code="410105",
                                                      parent_name="顺河回族区志愿服务总队"), "region_code", "顺河回族区"),
    ("corps_named_after_another_county", dict(name="顺河区志愿服务总队", group_type="county_corps",
                                              region_code="410212", parent_name=KAIFENG_FEDERATION),
     "name", "“祥符区”开头"),
    ("corps_second_in_its_county", dict(name="龙亭区第二志愿服务总队", group_type="county_corps",
                                        region_code="410202", parent_name=KAIFENG_FEDERATION),
     "group_type", f"龙亭区已有县（区）志愿服务总队“{LONGTING_CORPS}”"),
    ("corps_above_county_level", dict(name="开封市志愿服务总队", group_type="county_corps",
                                      region_code="410200", parent_name=KAIFENG_FEDERATION), "region_code", "县（区）"),
    ("team_name_rule", dict(name="龙亭区测试社区服务中心"), "name", "团体名称应为“××志愿服务队”"),
    ("corps_name_rule", dict(name="祥符区志愿者总队", group_type="county_corps", region_code="410212",
                             parent_name=KAIFENG_FEDERATION),
     "name", "团体名称应为“××县志愿服务总队”或“××区志愿服务总队”"),
    ("team_parent_rule", dict(parent_name=KAIFENG_FEDERATION), "parent", f"“{LONGTING_CORPS}”"),
    ("team_parent_other_county", dict(parent_name="顺河回族区志愿服务总队"), "parent", f"“{LONGTING_CORPS}”"),
    ("corps_parent_rule", dict(name="祥符区志愿服务总队", group_type="county_corps", region_code="410212",
                               parent_name=LONGTING_CORPS), "parent", f"“{KAIFENG_FEDERATION}”"),
    ("bad_credit_code", dict(is_legal_person="1", credit_code=_corrupt(VALID_CODE)), "credit_code", "校验位"),
    ("credit_code_letters", dict(is_legal_person="1", credit_code="91350100M000100O43"), "credit_code", "18位"),
    ("missing_credit_code", dict(is_legal_person="1", credit_code=""), "credit_code", "统一社会信用代码"),
    ("unregistered_without_parent", dict(parent_name=""), "parent", "须选择上级团体"),
    ("civil_unit_without_headcount", dict(group_type="civil_unit"), "staff_headcount", "职工人数"),
    ("bad_headcount", dict(staff_headcount="很多"), "staff_headcount", "整数"),
    ("bad_phone", dict(contact_phone="12345"), "contact_phone", "固定电话"),
    ("missing_contact", dict(contact_name=" "), "contact_name", "联系人"),
    ("username_taken", dict(username="KFVF_admin"), "username", None),
    ("bad_username", dict(username="张三"), "username", None),
    ("weak_password", dict(password="abc", password_confirm="abc"), "password", None),
    ("password_mismatch", dict(password_confirm="Passw0rd2"), "password_confirm", None),
    ("parent_not_approved", dict(parent_name=BEIDAOMEN), "parent", "尚未通过审核"),
    ("unknown_parent_name", dict(parent_name="不存在的志愿服务总队"), "parent", "不存在的志愿服务总队"),
    ("unknown_parent_id", dict(parent_id="999999"), "parent", None),
    ("unknown_region", dict(region_code="999999"), "region_code", None),
    ("missing_region", dict(region_code=""), "region_code", None),
    ("missing_type", dict(group_type="bogus"), "group_type", None),
    ("password_policy_without_password", dict(join_policy="password"), "join_password", "免审密码"),
    ("short_join_password", dict(join_policy="password", join_password="12"), "join_password", None),
    ("missing_name", dict(name="  "), "name", None),
]


@pytest.mark.parametrize("case, changes, field, fragment", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_register__refusal_names_the_field_and_writes_nothing(app, client, case, changes, field, fragment):
    before = _counts(app)
    resp = client.post("/groups/register/", data=_form(**changes))
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    errors = _field_errors(html)
    assert field in errors, errors
    if fragment:
        assert any(fragment in message for message in errors[field]), errors[field]
    assert _counts(app) == before
    assert 'value="Passw0rd1"' not in html  # passwords are never shown again
    if "name" not in changes:
        assert 'value="龙亭区测试社区志愿服务队"' in html  # the rest of the form is kept


def test_register__duplicate_credit_code_is_refused(app, client):
    with app.app_context():
        taken = db.session.scalar(select(VolunteerGroup.credit_code).where(VolunteerGroup.credit_code.is_not(None)))
    before = _counts(app)
    resp = client.post("/groups/register/", data=_form(is_legal_person="1", credit_code=taken))
    assert resp.status_code == 400
    assert "已被其他团体注册" in " ".join(_field_errors(resp.get_data(as_text=True))["credit_code"])
    assert _counts(app) == before


def test_register__names_differing_only_by_space_width_are_the_same(app, client):
    assert client.post("/groups/register/", data=_form(name="龙亭区 测试社区志愿服务队")).status_code == 200
    resp = client.post("/groups/register/", data=_form(name="龙亭区\u3000测试社区志愿服务队", username="other_admin"))
    assert resp.status_code == 400 and "name" in _field_errors(resp.get_data(as_text=True))


def test_register__name_is_stored_normalised(app, client):
    """NFKC, no control or format characters, no spaces: stored as it is compared."""
    resp = client.post("/groups/register/", data=_form(name="\x01\x02龙亭区\u200b测试 社区\u3000志愿服务队"))
    assert resp.status_code == 200, _field_errors(resp.get_data(as_text=True))
    group = _group(app, "龙亭区测试社区志愿服务队")
    assert group is not None and group.name_pinyin.startswith("ltqcssqzyfwd ")


def test_register_group__service_normalises_nul_and_control_characters(app):
    """Called directly (not through the form, whose NUL bytes never get this far), the
    service stores ``\\x00\\x01测试志愿服务队`` as ``测试志愿服务队`` and refuses the same name again."""
    fields = dict(password="Passw0rd1", password_confirm="Passw0rd1", parent_name=LONGTING_CORPS,
                  region_code="410202", group_type="community", contact_name="测试", contact_phone="13912345678")
    with app.test_request_context():
        group = groups.register_group(name="\x00\x01测试志愿服务队", username="nul_group_admin", **fields)
        assert group.name == "测试志愿服务队"
        db.session.commit()
        with pytest.raises(ValidationFailed) as err:
            groups.register_group(name="\x00\x01测试志愿服务队", username="nul_group_admin2", **fields)
        assert "已存在" in " ".join(err.value.fields["name"])
        db.session.rollback()


def test_register__names_differing_only_by_width_or_case_are_the_same(app, client):
    assert client.post("/groups/register/", data=_form(name="龙亭区abc社区志愿服务队")).status_code == 200
    for i, name in enumerate(("龙亭区ＡＢＣ社区志愿服务队", "龙亭区ABC社区志愿服务队", "龙亭区Ａbc社区志愿服务队")):
        before = _counts(app)
        resp = client.post("/groups/register/", data=_form(name=name, username=f"other_admin{i}"))
        assert resp.status_code == 400, name
        assert "已存在" in " ".join(_field_errors(resp.get_data(as_text=True))["name"])
        assert _counts(app) == before
    assert _group(app, "龙亭区ABC社区志愿服务队") is None


def test_register__federation_under_a_federation_is_accepted(app, client):
    resp = client.post("/groups/register/", data=_form(
        name="开封市测试志愿者联合会", group_type="federation", parent_name=KAIFENG_FEDERATION, region_code="410200"))
    assert resp.status_code == 200, _field_errors(resp.get_data(as_text=True))
    assert _group(app, "开封市测试志愿者联合会").parent_id == _group(app, KAIFENG_FEDERATION).id


def test_register__county_corps_named_after_its_county_one_per_county(app, client):
    """通许县 (410222) has no corps: the first, named after the county, is accepted; a second
    one is refused while the first is pending, and accepted once the first is rejected."""
    corps = dict(group_type="county_corps", region_code="410222", parent_name=KAIFENG_FEDERATION)
    resp = client.post("/groups/register/", data=_form(name="通许县志愿服务总队", **corps))
    assert resp.status_code == 200, _field_errors(resp.get_data(as_text=True))
    second = _form(name="通许县新城区志愿服务总队", username="second_corps_admin", **corps)
    resp = client.post("/groups/register/", data=second)
    assert resp.status_code == 400
    assert "“通许县志愿服务总队”" in " ".join(_field_errors(resp.get_data(as_text=True))["group_type"])
    with app.app_context():
        db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == "通许县志愿服务总队")).status = (
            ReviewStatus.REJECTED)
        db.session.commit()
    resp = client.post("/groups/register/", data=second)
    assert resp.status_code == 200, _field_errors(resp.get_data(as_text=True))


def test_register__every_bad_field_is_reported_at_once(app, client):
    resp = client.post("/groups/register/", data=_form(
        name="坏名字", username="x", password="short", contact_phone="1", parent_name="", region_code=""))
    assert resp.status_code == 400
    errors = _field_errors(resp.get_data(as_text=True))
    assert {"username", "password", "contact_phone", "parent", "region_code"} <= set(errors)


def test_register__outside_any_naming_rule_names_are_not_checked(app, client):
    """郑州 (410100) has no rule: a team named freely under 金水区's corps is accepted."""
    resp = client.post("/groups/register/", data=_form(
        name="金水区测试服务中心", parent_name="郑州市金水区志愿服务总队", region_code="410105"))
    assert resp.status_code == 200, _field_errors(resp.get_data(as_text=True))


def test_register__rate_limited_per_address(app, client):
    app.config["REGISTRATIONS_PER_ADDRESS_PER_HOUR"] = 1
    assert client.post("/groups/register/", data=_form()).status_code == 200
    before = _counts(app)
    resp = client.post("/groups/register/", data=_form(name="龙亭区另一社区志愿服务队", username="another_admin"))
    assert resp.status_code == 429
    assert _counts(app) == before


# --- Parent search ---


def test_search_json__finds_approved_groups_by_name_or_pinyin(client):
    found = client.get("/groups/search.json?q=龙亭").get_json()
    names = {g["name"] for g in found}
    assert LONGTING_CORPS in names and BEIDAOMEN not in names  # pending groups are not offered
    corps = next(g for g in found if g["name"] == LONGTING_CORPS)
    assert corps["region"] == "龙亭区" and isinstance(corps["id"], int) and set(corps) == {"id", "name", "region"}
    assert LONGTING_CORPS in {g["name"] for g in client.get("/groups/search.json?q=ltq").get_json()}
    assert client.get("/groups/search.json?q=").get_json() == []
    assert len(client.get("/groups/search.json?q=志愿").get_json()) <= 20


# --- 团体信息: own groups only ---


def test_profile__group_admin_sees_own_group_children_read_only(client):
    login(client, "longting_corps_admin")
    resp = client.get("/group-admin/profile/")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "团体信息" in html and LONGTING_CORPS in html and "更换二维码" in html
    assert BEISHUDIAN in html and BEIDAOMEN in html  # children, listed read-only
    assert "/my/groups/" in html and "/card" in html


def test_profile_edit__admin_changes_contact_description_and_policy(app, client):
    group = _group(app, BEISHUDIAN)
    login(client, "longting_team_admin")
    assert client.get(f"/group-admin/profile/{group.id}/edit").status_code == 200
    resp = client.post(f"/group-admin/profile/{group.id}/edit", data=dict(
        contact_name="新联系人", contact_phone="13700001111", description="新的简介", staff_headcount="",
        join_policy="password", join_password="open-sesame", name="改名志愿服务队"))
    assert resp.status_code == 302, _field_errors(resp.get_data(as_text=True))
    with app.app_context():
        saved = db.session.get(VolunteerGroup, group.id)
        assert saved.name == BEISHUDIAN  # the name of an approved group is not taken from the form
        assert (saved.contact_name, saved.description, saved.join_policy) == ("新联系人", "新的简介", "password")
        assert pii.decrypt(saved.contact_phone_enc) == "13700001111" and saved.contact_phone_masked == "137****1111"
        assert check_password_hash(saved.join_password_hash, "open-sesame")
        events = db.session.scalars(select(AuditEvent).where(
            AuditEvent.object_type == "volunteer_group", AuditEvent.object_id == group.id)
            .order_by(AuditEvent.id.desc())).all()
        assert events[0].actor_name == "longting_team_admin" and events[0].action == "update"
        assert saved.join_password_hash not in events[0].after_json
        assert '"join_password_hash":"***"' in events[0].after_json
        assert "13700001111" not in events[0].after_json


def test_profile_edit__switching_to_password_policy_needs_a_password(app, client):
    group = _group(app, BEISHUDIAN)
    login(client, "longting_team_admin")
    resp = client.post(f"/group-admin/profile/{group.id}/edit", data=dict(
        contact_name="何淑芬", contact_phone="", join_policy="password", join_password=""))
    assert resp.status_code == 400
    assert "join_password" in _field_errors(resp.get_data(as_text=True))
    assert _group(app, BEISHUDIAN).join_policy == "open"


@pytest.mark.parametrize("username, target", [
    ("longting_team_admin", QINGPING),  # another team
    ("longting_corps_admin", BEISHUDIAN),  # a child: read-only
    ("shunhe_team_admin", BEISHUDIAN),
    ("kaifeng_officer", BEISHUDIAN),
])
def test_profile_write__not_own_group_is_404_and_nothing_changes(app, client, username, target):
    group = _group(app, target)
    login(client, username)
    assert client.get(f"/group-admin/profile/{group.id}/edit").status_code in (403, 404, 302)
    resp = client.post(f"/group-admin/profile/{group.id}/edit", data=dict(
        contact_name="入侵者", contact_phone="13700001111", join_policy="open"))
    assert resp.status_code in (403, 404, 302)
    assert client.post(f"/group-admin/profile/{group.id}/rotate-token").status_code in (403, 404, 302)
    after = _group(app, target)
    assert (after.contact_name, after.join_token, after.join_policy) == (
        group.contact_name, group.join_token, group.join_policy)


def test_profile_write__group_admin_of_child_gets_404_not_403(app, client):
    group = _group(app, BEISHUDIAN)
    login(client, "longting_corps_admin")
    assert client.post(f"/group-admin/profile/{group.id}/rotate-token").status_code == 404
    assert client.get(f"/group-admin/profile/{group.id}/edit").status_code == 404


def test_update_group__approved_name_parent_and_region_cannot_change(app):
    with app.test_request_context():
        group = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == BEISHUDIAN))
        from flask import g

        g.user = app.appbuilder.sm.find_user(username="longting_team_admin")
        with pytest.raises(ValidationFailed) as err:
            groups.update_group(group, name="北书店街道新志愿服务队", parent_name="顺河回族区志愿服务总队",
                                region_code="410203")
        assert {"name", "parent", "region_code"} <= set(err.value.fields)
        db.session.rollback()
        assert db.session.get(VolunteerGroup, group.id).name == BEISHUDIAN


def test_update_group__child_group_is_out_of_scope(app):
    with app.test_request_context():
        from flask import g

        g.user = app.appbuilder.sm.find_user(username="longting_corps_admin")
        group = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == BEISHUDIAN))
        with pytest.raises(ScopeViolation):
            groups.update_group(group, description="x")
        with pytest.raises(ScopeViolation):
            groups.rotate_join_token(group)


def test_rotate_join_token__old_token_stops_finding_the_group(app, client):
    group = _group(app, BEISHUDIAN)
    with app.app_context():
        assert groups.group_for_join_token(group.join_token).id == group.id
    login(client, "longting_team_admin")
    assert client.post(f"/group-admin/profile/{group.id}/rotate-token").status_code == 302
    rotated = _group(app, BEISHUDIAN)
    assert rotated.join_token and rotated.join_token != group.join_token
    with app.app_context():
        assert groups.group_for_join_token(group.join_token) is None
        assert groups.group_for_join_token(rotated.join_token).id == group.id
        assert groups.group_for_join_token(_group(app, BEIDAOMEN).join_token) is None  # pending: no joining
        assert groups.group_for_join_token("") is None
