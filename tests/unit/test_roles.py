"""Roles as data: anchored FAB_ROLES patterns and the table of DESIGN.md §4."""
import re

import pytest

from app.security import permissions as p
from app.security.roles import ADMIN, GROUP_ADMIN, HONORS_EDITOR, OFFICER, PUBLIC, ROLES, VOLUNTEER, fab_roles

RESOURCES = [v for k, v in vars(p).items() if k.startswith("RESOURCE_")]


def test_fab_roles__patterns_are_escaped_and_anchored():
    for role, pairs in fab_roles().items():
        if role == ADMIN:
            continue
        for view_re, perm_re in pairs:
            assert view_re.endswith("$") and perm_re.endswith("$")
            matched = [r for r in RESOURCES + [view_re[:-1].replace("\\", "")] if re.match(view_re, r)]
            assert len(set(matched)) == 1, (role, view_re, matched)


def _has(app, role_name, perm, view):
    with app.app_context():
        sm = app.appbuilder.sm
        return sm._has_access_builtin_roles(sm.find_role(role_name), perm, view)


def test_volunteer_permission__does_not_grant_volunteer_group(app):
    assert _has(app, VOLUNTEER, "can_write", p.RESOURCE_VOLUNTEER)
    assert not _has(app, VOLUNTEER, "can_write", p.RESOURCE_VOLUNTEER_GROUP)
    assert not _has(app, VOLUNTEER, "can_write", p.RESOURCE_VOLUNTEER + "X")
    assert not _has(app, VOLUNTEER, "can_writeX", p.RESOURCE_VOLUNTEER)


@pytest.mark.parametrize("role, perm, resource, expected", [
    (OFFICER, p.ACTION_REVIEW, p.RESOURCE_VOLUNTEER, True),
    (OFFICER, p.ACTION_REGISTER, p.RESOURCE_VOLUNTEER, True),  # POST /api/v1/volunteer/ in region
    (OFFICER, p.ACTION_WRITE, p.RESOURCE_VOLUNTEER, False),
    (GROUP_ADMIN, p.ACTION_REGISTER, p.RESOURCE_VOLUNTEER, False),
    (VOLUNTEER, p.ACTION_REGISTER, p.RESOURCE_VOLUNTEER, False),
    (PUBLIC, p.ACTION_REGISTER, p.RESOURCE_VOLUNTEER, False),
    (OFFICER, p.ACTION_WRITE, p.RESOURCE_HONOR, False),  # officers read honors only
    (OFFICER, p.ACTION_WRITE, p.RESOURCE_SERVICE_RECORD, False),  # officers never edit records
    (HONORS_EDITOR, p.ACTION_WRITE, p.RESOURCE_HONOR, True),
    (GROUP_ADMIN, p.ACTION_APPROVE, p.RESOURCE_SERVICE_RECORD, True),
    (GROUP_ADMIN, p.ACTION_WRITE, p.RESOURCE_HONOR, False),
    (VOLUNTEER, p.ACTION_APPLY, p.RESOURCE_SERVICE_RECORD, True),
    (VOLUNTEER, p.ACTION_READ, p.RESOURCE_AUDIT_EVENT, False),
    (PUBLIC, p.ACTION_READ, p.RESOURCE_VOLUNTEER, False),
    (PUBLIC, p.ACTION_VERIFY, p.RESOURCE_CERTIFICATE, True),
    (OFFICER, p.ACTION_MODERATE, p.RESOURCE_CERTIFICATE, True),  # 证明管理: list the region's, 撤回
    (OFFICER, p.ACTION_WRITE, p.RESOURCE_CERTIFICATE, False),  # never issues
    (GROUP_ADMIN, p.ACTION_MODERATE, p.RESOURCE_CERTIFICATE, False),  # withdraws its own on 证明申请
    (HONORS_EDITOR, p.ACTION_MODERATE, p.RESOURCE_CERTIFICATE, False),
    (VOLUNTEER, p.ACTION_MODERATE, p.RESOURCE_CERTIFICATE, False),
    (OFFICER, p.ACTION_WRITE, p.RESOURCE_COMPLAINT, True),  # 举报: every signed-in role
    (HONORS_EDITOR, p.ACTION_WRITE, p.RESOURCE_COMPLAINT, True),
    (GROUP_ADMIN, p.ACTION_WRITE, p.RESOURCE_COMPLAINT, True),
    (VOLUNTEER, p.ACTION_WRITE, p.RESOURCE_COMPLAINT, True),
    (PUBLIC, p.ACTION_WRITE, p.RESOURCE_COMPLAINT, False),
    (ADMIN, "anything", "AnyView", True),
])
def test_role_table__follows_design(app, role, perm, resource, expected):
    assert _has(app, role, "can_" + perm, resource) is expected


def test_nobody_but_admin_can_delete():
    for role, pairs in ROLES.items():
        assert not [pair for pair in pairs if pair[1] == "delete"], role


def test_fab_user_management__admin_only(app):
    for role in ROLES:
        assert not _has(app, role, "can_list", "UserDBModelView"), role
        assert not _has(app, role, "can_list", "RoleModelView"), role
