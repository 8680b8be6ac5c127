"""The app factory, configuration, language and login through real HTTP requests."""
import importlib

import pytest

from app import ConfigError, create_app
from tests.conftest import TEST_CONFIG, login


def test_create_app__each_app_gets_its_own_appbuilder_and_views(app, template_db):
    other = create_app(SQLALCHEMY_DATABASE_URI=template_db.url, **TEST_CONFIG)
    assert other.appbuilder is not app.appbuilder
    for application in (app, other):
        assert "/regions/list/" in {r.rule for r in application.url_map.iter_rules()}
    with other.app_context():
        from app.extensions import db

        db.engine.dispose()


@pytest.mark.parametrize("missing", ["SECRET_KEY", "PII_KEY"])
def test_production__refuses_to_start_without_secrets(template_db, missing):
    config = {**TEST_CONFIG, "PRODUCTION": True, "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
              missing: None}
    with pytest.raises(ConfigError, match=missing):
        create_app(SQLALCHEMY_DATABASE_URI=template_db.url, **config)


def test_production__refuses_in_memory_rate_limits(template_db):
    with pytest.raises(ConfigError, match="RATELIMIT_STORAGE_URI"):
        create_app(SQLALCHEMY_DATABASE_URI=template_db.url, **{**TEST_CONFIG, "PRODUCTION": True})


def test_config__development_secrets_generated_once_and_sqlite_default(monkeypatch, tmp_path):
    import config

    monkeypatch.setenv("INSTANCE_DIR", str(tmp_path))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("PII_KEY", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("VC_ENV", raising=False)
    try:
        first = importlib.reload(config)
        secret, pii_key = first.SECRET_KEY, first.PII_KEY
        assert len(secret) == 64 and secret != pii_key
        assert first.SQLALCHEMY_DATABASE_URI == f"sqlite:///{tmp_path}/volunteer_cloud.db"
        again = importlib.reload(config)
        assert (again.SECRET_KEY, again.PII_KEY) == (secret, pii_key)
        monkeypatch.setenv("VC_ENV", "production")
        assert importlib.reload(config).PII_KEY is None
    finally:
        monkeypatch.undo()
        importlib.reload(config)


def test_login_page__is_chinese_by_default(client):
    page = client.get("/login/").get_data(as_text=True)
    assert 'lang="zh' in page or "登录" in page
    for word in ("登录", "用户名", "密码"):
        assert word in page


def test_login__officer_sees_chinese_menu(client):
    login(client, "kaifeng_officer")
    page = client.get("/").get_data(as_text=True)
    assert "区域监管" in page and "行政区划" in page
    assert "Region Oversight" not in page


def test_choice_labels_taken_outside_a_request_are_translated_when_rendered(app):
    """Form classes take their choices at import, which a test collection (or any early
    import) may do outside every request: the labels must stay lazy, not turn into English
    text for good (the 发布新项目 page once showed "Members of this group only")."""
    from flask import has_app_context

    from app.models import JoinPolicy, RecruitScope
    from app.views.projects import ProjectForm

    assert not has_app_context()
    taken = dict(RecruitScope.choices()), dict(JoinPolicy.choices())
    form_choices = dict(ProjectForm.recruit_scope.kwargs["choices"])  # taken when app.views.projects was imported
    with app.test_request_context():
        assert str(taken[0]["members_only"]) == "仅限本团体志愿者"
        assert str(taken[1]["verify"]) == "验证信息后加入"
        assert str(form_choices["members_only"]) == "仅限本团体志愿者"


def test_language__english_selectable(client):
    login(client, "kaifeng_officer")
    client.get("/lang/en")
    page = client.get("/").get_data(as_text=True)
    assert "Region Oversight" in page and "区域监管" not in page


def test_login__wrong_password_is_refused_in_chinese(client):
    resp = client.post("/login/", data={"username": "kaifeng_officer", "password": "wrong"},
                       follow_redirects=True)
    page = resp.get_data(as_text=True)
    assert "/logout" not in page
    assert "登录" in page


def test_regions_page__lists_national_divisions(client):
    login(client, "kaifeng_officer")
    page = client.get("/regions/list/?_flt_0_code=410202").get_data(as_text=True)
    assert "龙亭区" in page


def test_openapi__documents_every_review_endpoint(app):
    """The three approve/reject endpoints share one implementation; each keeps its spec."""
    from tests.conftest import login

    client = app.test_client()
    login(client, "admin")
    paths = client.get("/api/v1/_openapi").get_json()["paths"]
    for resource in ("volunteer", "volunteer_group", "membership"):
        post = paths[f"/api/v1/{resource}/{{pk}}/review"]["post"]
        assert post["summary"].startswith("Approve or reject a pending")
        assert post["requestBody"]["content"]["application/json"]["schema"]["properties"]["decision"]["enum"] \
            == ["approve", "reject"]
