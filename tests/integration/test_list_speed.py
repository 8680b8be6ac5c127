"""List pages: constant query count (no N+1), capped COUNT, capped page size."""
import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import ServiceRecord
from app.security import scoped_views
from tests.conftest import login, statements_of

VIEWS = [("/service-records", "ServiceRecordModelView"), ("/volunteers", "VolunteerModelView"),
         ("/projects", "ProjectModelView"), ("/volunteer-groups", "VolunteerGroupModelView"),
         ("/honors", "HonorModelView"), ("/regions", "RegionModelView")]


def _view(app, name):
    return next(v for v in app.appbuilder.baseviews if type(v).__name__ == name)


def _queries(app, client, url):
    return statements_of(app, client, url)


@pytest.mark.parametrize("route, view", VIEWS)
def test_list_page__query_count_does_not_grow_with_rows(app, route, view):
    _view(app, view).max_page_size = 200
    client = app.test_client()
    login(client, "admin")
    small = _queries(app, client, f"{route}/list/?psize_{view}=10")
    large = _queries(app, client, f"{route}/list/?psize_{view}=200")
    assert len(large) == len(small), "\n".join(large)


def test_list_page__shows_capped_count(app, monkeypatch):
    monkeypatch.setattr(scoped_views, "COUNT_CAP", 50)
    client = app.test_client()
    login(client, "admin")
    page = client.get("/service-records/list/").get_data(as_text=True)
    assert "50+" in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ServiceRecord)) > 50


def test_list_page__count_query_is_bounded(app, monkeypatch):
    monkeypatch.setattr(scoped_views, "COUNT_CAP", 50)
    client = app.test_client()
    login(client, "admin")
    statements = _queries(app, client, "/service-records/list/")
    counts = [s for s in statements if "count(" in s.lower()]
    assert counts and all("LIMIT" in s.upper() for s in counts), counts


def test_list_page__page_size_is_capped(app):
    client = app.test_client()
    login(client, "admin")
    page = client.get("/volunteers/list/?psize_VolunteerModelView=100000").get_data(as_text=True)
    assert page.count('href="/volunteers/show/') == scoped_views.MAX_PAGE_SIZE


def test_list_page__sorting_by_an_unlisted_column_is_ignored(app):
    client = app.test_client()
    login(client, "admin")
    resp = client.get("/volunteers/list/?_oc_VolunteerModelView=id_blind&_od_VolunteerModelView=asc")
    assert resp.status_code == 200
    statements = _queries(app, client, "/volunteers/list/?_oc_VolunteerModelView=id_blind&_od_VolunteerModelView=asc")
    assert not any("ORDER BY volunteer.id_blind" in s for s in statements)


@pytest.mark.parametrize("query", ["psize_VolunteerModelView=abc", "page_VolunteerModelView=x",
                                   "_flt_0_birth_date=notadate"])
def test_list_page__malformed_arguments_never_500(app, query):
    client = app.test_client()
    login(client, "admin")
    assert client.get(f"/volunteers/list/?{query}").status_code in (200, 400)
