"""运营控制台 → 运行参数 and 节假日 over HTTP: every setting listed with its value, default
and whether overridden; a saved override changes what the portal does (minimum age,
hour-code lock, star levels and their statistics, group naming rules, review working
days); bad input is refused in Chinese with nothing written; 恢复默认 brings the default
back; each change is audited; other roles get 403; the holiday table is edited here."""
from __future__ import annotations

import re
from collections import Counter
from datetime import date

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEvent, Holiday, Region, ReviewStatus, Setting, StatTotal, Volunteer, VolunteerGroup
from app.security.scope import under
from app.services import groups, rollups, settings, volunteers, workdays
from app.services.errors import ValidationFailed
from tests.conftest import login, recorded_statements
from tests.integration._hours_helpers import acting
from tests.integration.test_group_registration import _form as group_form
from tests.integration.test_hour_codes import INVALID, _code, _redeem
from tests.integration.test_registration import GUARDIAN, field_errors, resident_id, years_ago
from tests.integration.test_registration import form as volunteer_form

URLS = ["/console/settings/", "/console/settings/edit/VOLUNTEER_MIN_AGE", "/console/holiday/",
        "/console/holiday/new/"]


def _admin(app):
    return login(app.test_client(), "admin")


def _save(client, name, text, follow=True):
    return client.post(f"/console/settings/edit/{name}", data={"value": text}, follow_redirects=follow)


def _reset(client, name):
    return client.post(f"/console/settings/reset/{name}", follow_redirects=True)


def _rows(app) -> dict[str, str]:
    with app.app_context():
        return dict(db.session.execute(select(Setting.name, Setting.value_json)).all())


def _setting_events(app) -> list[AuditEvent]:
    with app.app_context():
        rows = list(db.session.scalars(select(AuditEvent).where(AuditEvent.object_type == "setting")
                                       .order_by(AuditEvent.id)))
        db.session.expunge_all()
        return rows


# --- Who may enter ---


@pytest.mark.parametrize("username", ["kaifeng_officer", "henan_officer", "kfvf_admin", "vol_longting"])
def test_settings_pages__other_roles_get_403_and_write_nothing(app, username):
    client = login(app.test_client(), username)
    for url in URLS:
        assert client.get(url).status_code == 403, url
    assert _save(client, "VOLUNTEER_MIN_AGE", "12", follow=False).status_code == 403
    assert client.post("/console/settings/reset/VOLUNTEER_MIN_AGE").status_code == 403
    assert client.post("/console/holiday/new/", data={"day": "2027-10-01", "name": "国庆节"}).status_code == 403
    assert _rows(app) == {}
    with app.app_context():
        assert db.session.get(Holiday, date(2027, 10, 1)) is None


def test_settings_pages__anonymous_sent_to_login(app):
    for url in URLS:
        resp = app.test_client().get(url)
        assert resp.status_code == 302 and resp.headers["Location"].startswith("/login/")


# --- The list, bad input, reset ---


def test_settings_list__every_setting_with_value_default_and_overridden(app):
    client = _admin(app)
    html = client.get("/console/settings/").get_data(as_text=True)
    assert "运行参数" in html and "恢复默认" not in html
    for name in settings.REGISTRY:
        assert f'id="setting-{name}"' in html, name
    row = re.search(r'id="setting-STAR_LEVEL_HOURS".*?</tr>', html, re.S).group(0)
    assert "[100, 300, 600, 1000, 1500]" in row and "否" in row and "星级" in row

    _save(client, "STAR_LEVEL_HOURS", "[10, 20, 30, 40, 50]")
    html = client.get("/console/settings/").get_data(as_text=True)
    row = re.search(r'id="setting-STAR_LEVEL_HOURS".*?</tr>', html, re.S).group(0)
    value = re.search(r'class="setting-value">([^<]*)<', row).group(1)
    default = re.search(r'class="setting-default">([^<]*)<', row).group(1)
    assert (value, default) == ("[10, 20, 30, 40, 50]", "[100, 300, 600, 1000, 1500]")
    assert "是" in row and "恢复默认" in row


@pytest.mark.parametrize("name, text, message", [
    ("VOLUNTEER_MIN_AGE", "{oops", "JSON"),
    ("VOLUNTEER_MIN_AGE", "19", "1 到 18"),
    ("VOLUNTEER_MIN_AGE", "\"12\"", "1 到 18"),
    ("VOLUNTEER_MIN_AGE", "true", "1 到 18"),
    ("STAR_LEVEL_HOURS", "[100, 300, 300, 1000, 1500]", "逐级升高"),
    ("STAR_LEVEL_HOURS", "[100, 300, 600, 1000]", "五个"),
    ("STAR_LEVEL_HOURS", "[0, 300, 600, 1000, 1500]", "五个"),
    ("HOUR_CODE_FAILURES", "0", "1 到 1000"),
    ("HOUR_CODE_FAILURE_WINDOW_SECONDS", "10", "60 到 604800"),
    ("REVIEW_TARGET_WORKDAYS", "6", "不能晚于"),
    ("REVIEW_LIMIT_WORKDAYS", "2", "不能早于"),
    ("GROUP_NAMING_RULES", "{\"region\": \"410200\"}", "JSON 列表"),
    ("GROUP_NAMING_RULES", "[{\"region\": \"999999\"}]", "999999"),
    ("GROUP_NAMING_RULES", "[{\"region\": \"410200\", \"team\": []}]", "未知的键"),
    ("GROUP_NAMING_RULES", "[{\"region\": \"410200\", \"team_suffixes\": \"队\"}]", "team_suffixes"),
])
def test_settings_edit__bad_input_refused_in_chinese_nothing_written(app, name, text, message):
    client = _admin(app)
    resp = _save(client, name, text)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    errors = re.findall(r'class="alert alert-danger setting-error">([^<]*)<', html)
    assert errors and message in errors[0], errors
    assert _rows(app) == {} and _setting_events(app) == []


def test_settings_edit__unknown_name_is_404(app):
    client = _admin(app)
    assert client.get("/console/settings/edit/SECRET_KEY").status_code == 404
    assert _save(client, "SECRET_KEY", "\"x\"", follow=False).status_code == 404
    assert client.post("/console/settings/reset/SECRET_KEY").status_code == 404
    assert _rows(app) == {}


def test_settings_edit__saved_audited_then_reset_to_default_audited(app):
    client = _admin(app)
    assert "未满 8 周岁" in _register_minor(app, 7)
    html = _save(client, "VOLUNTEER_MIN_AGE", " 12 ").get_data(as_text=True)
    assert "已保存" in html
    assert _rows(app) == {"VOLUNTEER_MIN_AGE": "12"}
    events = _setting_events(app)
    assert [e.action for e in events] == ["create"] and events[0].actor_name == "admin"
    assert '"VOLUNTEER_MIN_AGE"' in events[0].after_json

    _save(client, "VOLUNTEER_MIN_AGE", "13")
    assert [e.action for e in _setting_events(app)] == ["create", "update"]
    assert '"13"' in _setting_events(app)[-1].after_json

    html = _reset(client, "VOLUNTEER_MIN_AGE").get_data(as_text=True)
    assert "已恢复默认值" in html
    assert _rows(app) == {}
    assert [e.action for e in _setting_events(app)] == ["create", "update", "delete"]
    with app.app_context():
        assert volunteers.min_age() == 8


def test_settings_edit__csrf_token_required_when_csrf_is_on(app):
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', client.get("/login/").get_data(as_text=True)).group(1)
    client.post("/login/", data={"username": "admin", "password": "Demo12345!", "csrf_token": token})
    _save(client, "VOLUNTEER_MIN_AGE", "12")
    assert _rows(app) == {}
    page = client.get("/console/settings/edit/VOLUNTEER_MIN_AGE").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    client.post("/console/settings/edit/VOLUNTEER_MIN_AGE", data={"value": "12", "csrf_token": token})
    assert _rows(app) == {"VOLUNTEER_MIN_AGE": "12"}


# --- Each override changes behaviour ---


_minor_seq = iter(range(101, 999, 2))


def _register_minor(app, age: int) -> str:
    """Register a volunteer of ``age`` through the form; "" when accepted, else the ID field's error."""
    n = next(_minor_seq)
    data = volunteer_form(username=f"minor{n}", email=f"minor{n}@example.cn",
                          id_number=resident_id("410202", years_ago(age), f"{n:03d}"), **GUARDIAN)
    resp = app.test_client().post("/register/", data=data)
    if resp.status_code == 302:
        return ""
    return " ".join(field_errors(resp).get("id_number", ["refused"]))


def test_min_age__raised_refuses_a_registration_that_passed(app):
    assert _register_minor(app, 11) == ""
    _save(_admin(app), "VOLUNTEER_MIN_AGE", "12")
    assert "未满 12 周岁不能注册" in _register_minor(app, 11)
    _reset(_admin(app), "VOLUNTEER_MIN_AGE")
    assert _register_minor(app, 11) == ""


def test_hour_code_failures__lowered_locks_sooner(app):
    code = _code(app)
    _save(_admin(app), "HOUR_CODE_FAILURES", "2")
    assert _redeem(app, "vol_shunhe", "111111111111") == INVALID
    assert _redeem(app, "vol_shunhe", "111111111112") == INVALID
    assert "次数过多" in _redeem(app, "vol_shunhe", code)
    # The default (10) would still have let vol_longting's third try through.
    _reset(_admin(app), "HOUR_CODE_FAILURES")
    assert _redeem(app, "vol_longting", "111111111111") == INVALID
    assert _redeem(app, "vol_longting", "111111111112") == INVALID
    assert isinstance(_redeem(app, "vol_longting", code), int)


def test_hour_code_window__shown_in_the_wait(app):
    code = _code(app)
    client = _admin(app)
    _save(client, "HOUR_CODE_FAILURES", "1")
    _save(client, "HOUR_CODE_FAILURE_WINDOW_SECONDS", "120")
    assert _redeem(app, "vol_shunhe", "111111111111") == INVALID
    message = _redeem(app, "vol_shunhe", code)
    assert "次数过多" in message and "2 分钟" in message


def _star_counts_in_rollups(app) -> Counter:
    with app.app_context():
        rows = db.session.execute(select(StatTotal.key, func.sum(StatTotal.value))
                                  .where(StatTotal.metric == rollups.VOL_STAR).group_by(StatTotal.key)).all()
        return Counter({key: int(value) for key, value in rows if value})


def _star_counts_of_facts(app) -> Counter:
    with app.app_context():
        minutes = db.session.scalars(select(Volunteer.total_minutes)
                                     .where(Volunteer.status == ReviewStatus.APPROVED))
        return Counter(str(volunteers.star_level(m)) for m in minutes)


def test_star_level_hours__star_levels_and_rollups_follow_at_once(app):
    before = _star_counts_of_facts(app)
    assert _star_counts_in_rollups(app) == before
    with app.app_context():
        most = db.session.scalar(select(func.max(Volunteer.total_minutes)))
    low = max(most // 60 // 5, 1)
    thresholds = [low, low * 2, low * 3, low * 4, low * 5]
    _save(_admin(app), "STAR_LEVEL_HOURS", str(thresholds))
    with app.app_context():
        assert volunteers.star_thresholds() == tuple(thresholds)
        assert volunteers.star_level(most) == sum(1 for h in thresholds if most / 60 >= h)
    after = _star_counts_of_facts(app)
    assert after != before, "the new thresholds move some volunteers"
    assert _star_counts_in_rollups(app) == after
    with app.app_context():
        kept = rollups.snapshot()
        rollups.rebuild()
        assert rollups.snapshot() == kept  # prefecture rows included
        db.session.rollback()

    _reset(_admin(app), "STAR_LEVEL_HOURS")
    assert _star_counts_of_facts(app) == before == _star_counts_in_rollups(app)


def test_star_level_hours__star_chart_counts_match_the_facts_at_province_and_prefecture(app):
    """The 统计分析 star chart reads the county rows (开封市) or the prefecture rows (河南省):
    after a change both give the facts' counts under the new thresholds."""
    from app.charts import queries

    _save(_admin(app), "STAR_LEVEL_HOURS", "[1, 2, 3, 4, 5]")
    with app.app_context():
        for code in ("410000", "410200"):
            region = db.session.scalar(select(Region).where(Region.code == code))
            area = queries.Area.of(region)
            minutes = db.session.scalars(select(Volunteer.total_minutes).where(
                Volunteer.status == ReviewStatus.APPROVED, under(Volunteer.region_path, region.path)))
            facts = Counter(str(volunteers.star_level(m)) for m in minutes)
            assert queries.volunteer_breakdowns(area)[queries.VOL_STAR] == dict(facts), code
            assert set(facts) - {"0"}, "some volunteers reach a star under [1..5] hours"
    html = login(app.test_client(), "kaifeng_officer").get("/statistics/").get_data(as_text=True)
    assert "star_levels" in html or "星级" in html


def test_group_naming_rules__override_accepts_a_name_the_default_refused(app):
    name = "龙亭区测试社区服务中心"
    client = app.test_client()
    resp = client.post("/groups/register/", data=group_form(name=name))
    assert "团体名称应为" in resp.get_data(as_text=True)
    rules = ('[{"region": "410200", "federation": "开封市志愿服务联合会", '
             '"corps_suffixes": ["县志愿服务总队", "区志愿服务总队"], "team_suffixes": ["志愿服务队", "服务中心"]}]')
    _save(_admin(app), "GROUP_NAMING_RULES", rules)
    with app.app_context():
        assert groups.naming_rules()[0].team_suffixes == ("志愿服务队", "服务中心")
    resp = app.test_client().post("/groups/register/", data=group_form(name=name))
    assert resp.status_code == 200 and "团体名称应为" not in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(VolunteerGroup.id).where(VolunteerGroup.name == name)) is not None


def test_review_workdays__override_moves_due_and_overdue(app):
    with app.app_context():
        assert (workdays.review_urgency(3), workdays.review_urgency(6)) == ("due", "overdue")
    client = _admin(app)
    _save(client, "REVIEW_LIMIT_WORKDAYS", "10")
    _save(client, "REVIEW_TARGET_WORKDAYS", "7")
    assert _rows(app) == {"REVIEW_LIMIT_WORKDAYS": "10", "REVIEW_TARGET_WORKDAYS": "7"}
    with acting(app, "kaifeng_officer"):
        assert (workdays.review_target(), workdays.review_limit()) == (7, 10)
        assert [workdays.review_urgency(n) for n in (3, 6, 7, 10, 11)] == [None, None, "due", "due", "overdue"]


def test_reset__refused_when_the_default_would_put_the_limit_before_the_target(app):
    """Limit 10, target 8; restoring the limit's default (5) would leave the target after
    it: refused in Chinese, nothing deleted. Restoring the target first, then the limit, works."""
    client = _admin(app)
    _save(client, "REVIEW_LIMIT_WORKDAYS", "10")
    _save(client, "REVIEW_TARGET_WORKDAYS", "8")
    assert _rows(app) == {"REVIEW_LIMIT_WORKDAYS": "10", "REVIEW_TARGET_WORKDAYS": "8"}
    html = _reset(client, "REVIEW_LIMIT_WORKDAYS").get_data(as_text=True)
    assert "不能早于" in html and "8" in html and "已恢复默认值" not in html
    assert _rows(app) == {"REVIEW_LIMIT_WORKDAYS": "10", "REVIEW_TARGET_WORKDAYS": "8"}
    with app.test_request_context():
        with pytest.raises(ValidationFailed):
            settings.reset("REVIEW_LIMIT_WORKDAYS")
        db.session.rollback()
    assert "已恢复默认值" in _reset(client, "REVIEW_TARGET_WORKDAYS").get_data(as_text=True)
    assert "已恢复默认值" in _reset(client, "REVIEW_LIMIT_WORKDAYS").get_data(as_text=True)
    assert _rows(app) == {}


def test_reset__refused_when_the_targets_default_would_lie_after_the_limit(app):
    client = _admin(app)
    _save(client, "REVIEW_TARGET_WORKDAYS", "2")
    _save(client, "REVIEW_LIMIT_WORKDAYS", "2")
    html = _reset(client, "REVIEW_TARGET_WORKDAYS").get_data(as_text=True)
    assert "不能晚于" in html and "已恢复默认值" not in html
    assert _rows(app) == {"REVIEW_LIMIT_WORKDAYS": "2", "REVIEW_TARGET_WORKDAYS": "2"}


def test_settings_list__reset_confirm_without_inline_handlers(app):
    """The CSP (script-src 'self' + nonce) blocks inline on* handlers: the 恢复默认 confirm
    is attached by a nonce'd script from a data attribute."""
    client = _admin(app)
    _save(client, "VOLUNTEER_MIN_AGE", "12")
    resp = client.get("/console/settings/")
    html = resp.get_data(as_text=True)
    assert "data-confirm=" in html and "恢复默认值" in html
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", html, re.IGNORECASE)
    nonce = re.search(r"'nonce-([^']+)'", resp.headers["Content-Security-Policy"]).group(1)
    script = re.search(r'<script nonce="([^"]+)">([^<]*data-confirm[^<]*)</script>', html)
    assert script and script.group(1) == nonce


# --- Reading: once per request, only when asked ---


def test_value__one_query_per_request_and_none_without_a_setting(app):
    _save(_admin(app), "VOLUNTEER_MIN_AGE", "12")
    with recorded_statements(app) as statements:
        with app.test_request_context():
            assert settings.value("VOLUNTEER_MIN_AGE") == 12
            assert settings.value("STAR_LEVEL_HOURS") == (100, 300, 600, 1000, 1500)
            assert settings.value("VOLUNTEER_MIN_AGE") == 12
    assert sum(1 for s in statements if "FROM setting" in s) == 1
    with recorded_statements(app) as statements:
        with app.test_request_context():
            pass
        assert _admin(app).get("/console/").status_code == 200
    assert not any("FROM setting" in s for s in statements)


# --- 节假日 ---


def test_holiday__add_edit_delete_audited_and_used_by_workdays(app):
    client = _admin(app)
    day = date(2027, 6, 14)  # a Monday past chinesecalendar's data
    with app.app_context():
        assert workdays.is_workday(day)
    resp = client.post("/console/holiday/new/", data={"day": day.isoformat(), "name": "端午节"},
                       follow_redirects=True)
    assert resp.status_code == 200
    with app.app_context():
        assert not workdays.is_workday(day)
        events = list(db.session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "holiday")))
    assert events == ["create"]
    html = client.post("/console/holiday/new/", data={"day": day.isoformat(), "name": "重复"},
                       follow_redirects=True).get_data(as_text=True)
    assert "已经存在" in html
    assert client.get(f"/console/holiday/edit/?id={day.isoformat()}").status_code == 200
    client.post(f"/console/holiday/edit/?id={day.isoformat()}",
                data={"day": day.isoformat(), "name": "调休上班", "is_workday": "y"})
    with app.app_context():
        assert workdays.is_workday(day) and db.session.get(Holiday, day).name == "调休上班"
    client.post("/console/holiday/delete/", data={"id": day.isoformat(), "url": "/console/holiday/"})
    with app.app_context():
        assert db.session.get(Holiday, day) is None
        events = list(db.session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "holiday")
                                         .order_by(AuditEvent.id)))
    assert events == ["create", "update", "delete"]
