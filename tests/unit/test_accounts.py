"""Bindings: officers and honors editors to regions, group admins to groups."""
import pytest

from app.models import BindingKind
from app.security.roles import HONORS_EDITOR, OFFICER
from app.services.accounts import bind_region, ensure_user
from app.services.errors import ValidationFailed
from app.services.regions import get_region


def _user(name):
    return ensure_user(name, "Secret123!", first_name=name)


def test_bind_region__honors_editor_below_prefecture_is_refused(app):
    with app.test_request_context():
        user = _user("county_honors")
        with pytest.raises(ValidationFailed) as err:
            bind_region(user, get_region("410202"), BindingKind.HONORS_EDITOR)
        assert "地级市" in str(err.value)
        assert HONORS_EDITOR not in [r.name for r in user.roles]


@pytest.mark.parametrize("code", ["410200", "410000"])
def test_bind_region__honors_editor_at_prefecture_or_above_gets_the_role(app, code):
    with app.test_request_context():
        user = _user("city_honors")
        binding = bind_region(user, get_region(code), BindingKind.HONORS_EDITOR)
        assert binding.region_path == get_region(code).path
        assert HONORS_EDITOR in [r.name for r in user.roles]


def test_bind_region__officer_at_county_level_is_fine_and_idempotent(app):
    with app.test_request_context():
        user = _user("county_officer")
        first = bind_region(user, get_region("410202"), BindingKind.OFFICER)
        assert bind_region(user, get_region("410202"), BindingKind.OFFICER).id == first.id
        assert [r.name for r in user.roles].count(OFFICER) == 1
