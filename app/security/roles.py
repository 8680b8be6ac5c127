"""Roles as data (DESIGN.md §4), turned into FAB_ROLES by ``fab_roles()``.

Every cell is further limited by the user's scope (app/security/scope.py):
a permission says *what kind* of thing a role may do, scope says *where*.
"""
import re

from app.security.permissions import *  # noqa: F403 - the vocabulary is the point

ADMIN, OFFICER, HONORS_EDITOR, GROUP_ADMIN, VOLUNTEER, PUBLIC = (
    "Admin", "Officer", "HonorsEditor", "GroupAdmin", "Volunteer", "Public",
)
# A partner system's account, reached only through an API token (app/services/api_tokens.py).
PARTNER = "Partner"

_SIGNED_IN = [
    (RESOURCE_FAB_USERINFO, "userinfo"),
    (RESOURCE_FAB_RESET_MY_PASSWORD, "this_form_get"),
    (RESOURCE_FAB_RESET_MY_PASSWORD, "this_form_post"),
    (RESOURCE_FAB_USERINFO_EDIT, "this_form_get"),
    (RESOURCE_FAB_USERINFO_EDIT, "this_form_post"),
]

ROLES: dict[str, list[tuple[str, str]]] = {
    OFFICER: _SIGNED_IN + [
        (RESOURCE_REGION, ACTION_READ),
        (RESOURCE_REGION, ACTION_WRITE),  # add streets/communities, set population
        (RESOURCE_VOLUNTEER, ACTION_READ),
        (RESOURCE_VOLUNTEER, ACTION_REVIEW),
        (RESOURCE_VOLUNTEER, ACTION_REGISTER),  # register someone living in their region
        (RESOURCE_VOLUNTEER, ACTION_SUSPEND),
        (RESOURCE_VOLUNTEER, ACTION_VIEW_PII),
        (RESOURCE_VOLUNTEER_GROUP, ACTION_READ),
        (RESOURCE_VOLUNTEER_GROUP, ACTION_REVIEW),
        (RESOURCE_VOLUNTEER_GROUP, ACTION_SUSPEND),
        (RESOURCE_MEMBERSHIP, ACTION_READ),
        (RESOURCE_PROJECT, ACTION_READ),
        (RESOURCE_PROJECT, ACTION_SUSPEND),
        (RESOURCE_SERVICE_RECORD, ACTION_READ),
        (RESOURCE_SERVICE_RECORD, ACTION_FLAG),
        (RESOURCE_SERVICE_RECORD, ACTION_CORRECT),  # records transferred in (转移接续)
        (RESOURCE_HONOR, ACTION_READ),
        (RESOURCE_RECORD_BOOK, ACTION_READ),
        (RESOURCE_CERTIFICATE, ACTION_READ),
        (RESOURCE_CERTIFICATE, ACTION_VERIFY),
        (RESOURCE_CERTIFICATE, ACTION_MODERATE),  # 证明管理: list the region's, 撤回
        (RESOURCE_TRANSFER, ACTION_READ),
        (RESOURCE_TRANSFER, ACTION_REVIEW),
        (RESOURCE_TRANSFER, ACTION_IMPORT),
        (RESOURCE_HELP_REQUEST, ACTION_READ),
        (RESOURCE_HELP_REQUEST, ACTION_MODERATE),
        (RESOURCE_COMPLAINT, ACTION_READ),
        (RESOURCE_COMPLAINT, ACTION_WRITE),  # report a project or group like anyone signed in
        (RESOURCE_COMPLAINT, ACTION_MODERATE),
        (RESOURCE_AUDIT_EVENT, ACTION_READ),
        (RESOURCE_REPORTS, ACTION_READ),
        (RESOURCE_CIVIL_UNIT, ACTION_READ),
        (RESOURCE_CIVIL_UNIT, ACTION_WRITE),  # 文明单位: the register of their regions
        (RESOURCE_DATA_EXPORT, ACTION_READ),  # 数据导出: what they read, masked
    ],
    HONORS_EDITOR: _SIGNED_IN + [
        (RESOURCE_REGION, ACTION_READ),
        (RESOURCE_VOLUNTEER, ACTION_READ),
        (RESOURCE_VOLUNTEER_GROUP, ACTION_READ),
        (RESOURCE_PROJECT, ACTION_READ),
        (RESOURCE_SERVICE_RECORD, ACTION_READ),
        (RESOURCE_HONOR, ACTION_READ),
        (RESOURCE_HONOR, ACTION_WRITE),
        (RESOURCE_CERTIFICATE, ACTION_READ),
        (RESOURCE_COMPLAINT, ACTION_WRITE),  # report a project or group like anyone signed in
        (RESOURCE_AUDIT_EVENT, ACTION_READ),
        (RESOURCE_DATA_EXPORT, ACTION_READ),  # 数据导出: they read the same four lists
    ],
    GROUP_ADMIN: _SIGNED_IN + [
        (RESOURCE_REGION, ACTION_READ),
        (RESOURCE_VOLUNTEER, ACTION_READ),
        (RESOURCE_VOLUNTEER_GROUP, ACTION_READ),
        (RESOURCE_VOLUNTEER_GROUP, ACTION_WRITE),
        (RESOURCE_VOLUNTEER_GROUP, ACTION_REVIEW),  # child groups
        (RESOURCE_MEMBERSHIP, ACTION_READ),
        (RESOURCE_MEMBERSHIP, ACTION_WRITE),
        (RESOURCE_PROJECT, ACTION_READ),
        (RESOURCE_PROJECT, ACTION_WRITE),
        (RESOURCE_SERVICE_RECORD, ACTION_READ),
        (RESOURCE_SERVICE_RECORD, ACTION_WRITE),
        (RESOURCE_SERVICE_RECORD, ACTION_APPROVE),
        (RESOURCE_HONOR, ACTION_READ),
        (RESOURCE_RECORD_BOOK, ACTION_READ),
        (RESOURCE_RECORD_BOOK, ACTION_WRITE),
        (RESOURCE_CERTIFICATE, ACTION_READ),
        (RESOURCE_CERTIFICATE, ACTION_WRITE),
        (RESOURCE_HELP_REQUEST, ACTION_READ),
        (RESOURCE_HELP_REQUEST, ACTION_CLAIM),
        (RESOURCE_COMPLAINT, ACTION_WRITE),  # report a record, project or group
        (RESOURCE_AUDIT_EVENT, ACTION_READ),
    ],
    VOLUNTEER: _SIGNED_IN + [
        (RESOURCE_REGION, ACTION_READ),
        (RESOURCE_VOLUNTEER, ACTION_READ),
        (RESOURCE_VOLUNTEER, ACTION_WRITE),  # own editable fields
        (RESOURCE_VOLUNTEER_GROUP, ACTION_READ),
        (RESOURCE_VOLUNTEER_GROUP, ACTION_JOIN),
        (RESOURCE_MEMBERSHIP, ACTION_READ),  # own memberships, the card of own groups
        (RESOURCE_PROJECT, ACTION_READ),
        (RESOURCE_PROJECT, ACTION_SIGN_UP),
        (RESOURCE_SERVICE_RECORD, ACTION_READ),
        (RESOURCE_SERVICE_RECORD, ACTION_APPLY),
        (RESOURCE_HONOR, ACTION_READ),
        (RESOURCE_RECORD_BOOK, ACTION_READ),
        (RESOURCE_CERTIFICATE, ACTION_READ),
        (RESOURCE_CERTIFICATE, ACTION_WRITE),  # request
        (RESOURCE_TRANSFER, ACTION_READ),
        (RESOURCE_TRANSFER, ACTION_WRITE),
        (RESOURCE_HELP_REQUEST, ACTION_READ),
        (RESOURCE_HELP_REQUEST, ACTION_WRITE),
        (RESOURCE_COMPLAINT, ACTION_WRITE),  # report a record, project or group
    ],
    # Read-only: the REST resources of its region binding and below. No menus; its
    # account has no usable password, and the token authenticates /api/ only.
    PARTNER: [
        (RESOURCE_REGION, ACTION_READ),
        (RESOURCE_VOLUNTEER, ACTION_READ),
        (RESOURCE_VOLUNTEER_GROUP, ACTION_READ),
        (RESOURCE_MEMBERSHIP, ACTION_READ),
        (RESOURCE_PROJECT, ACTION_READ),
        (RESOURCE_SERVICE_RECORD, ACTION_READ),
        (RESOURCE_HONOR, ACTION_READ),
    ],
    PUBLIC: [
        (RESOURCE_REGION, ACTION_READ),  # pickers
        (RESOURCE_VOLUNTEER_GROUP, ACTION_READ),  # public card
        (RESOURCE_PROJECT, ACTION_READ),  # public projects
        (RESOURCE_CERTIFICATE, ACTION_VERIFY),
        (RESOURCE_HELP_REQUEST, ACTION_WRITE),  # post a help request
    ],
}

# Menu entries each role may see ("menu_access"). Entries appear only once
# their views are registered, so later issues add pages without touching this.
_OVERSIGHT = [MENU_REGION_OVERSIGHT, MENU_VOLUNTEERS, MENU_VOLUNTEER_GROUPS, MENU_PROJECTS,
              MENU_SERVICE_RECORDS, MENU_AUDIT_LOG, MENU_REGIONS]
MENUS: dict[str, list[str]] = {
    OFFICER: _OVERSIGHT + [MENU_REGISTRATION_REVIEW, MENU_GROUP_REVIEW, MENU_GROUP_MEMBERS, MENU_HONORS,
                        MENU_STATISTICS, MENU_REGION_STATISTICS, MENU_HELP_MODERATION, MENU_COMPLAINTS,
                        MENU_HELP_REQUESTS, MENU_RECORD_BOOK, MENU_TRANSFER_REVIEW, MENU_RECORD_IMPORT,
                        MENU_CERTIFICATE_OVERSIGHT, MENU_CIVIL_UNITS, MENU_DATA_EXPORT],
    HONORS_EDITOR: _OVERSIGHT + [MENU_HONORS, MENU_DATA_EXPORT],
    GROUP_ADMIN: [MENU_GROUP_ADMIN, MENU_GROUP_PROFILE, MENU_MY_MEMBERS, MENU_JOIN_REQUESTS,
                  MENU_CHILD_GROUP_REVIEW, MENU_GROUP_PROJECTS, MENU_HONORS, MENU_PROJECT_SEARCH,
                  MENU_CERTIFICATE_REQUESTS, MENU_RECORD_BOOK, MENU_GROUP_HELP_REQUESTS, MENU_HELP_REQUESTS,
                  MENU_STATISTICS, MENU_GROUP_STATISTICS],
    VOLUNTEER: [MENU_USER_CENTER, MENU_MY_PROFILE, MENU_VOLUNTEER_CARD, MENU_MY_GROUPS, MENU_MY_PROJECTS,
                MENU_SERVICE_HOURS, MENU_PROJECT_SEARCH, MENU_MY_CERTIFICATES, MENU_HELP_REQUESTS,
                MENU_MY_HELP_REQUESTS, MENU_MY_REPORTS, MENU_TRANSFERS, MENU_STATISTICS, MENU_MY_STATISTICS],
    PUBLIC: [MENU_PROJECT_SEARCH, MENU_HELP_REQUESTS],
}

# Bindings a role needs: officers and honors editors are bound to regions,
# group admins to groups, volunteers to their own record.
REGION_ROLES = (OFFICER, HONORS_EDITOR)


def _exact(name: str) -> str:
    return re.escape(name) + "$"


def fab_roles() -> dict[str, list[list[str]]]:
    """ROLES and MENUS as FAB_ROLES.

    FAB matches with ``re.match``, anchored at the start only, so a bare
    "Volunteer" would also grant "VolunteerGroup": escape and anchor both ends.
    Admin holds every permission.
    """
    roles: dict[str, list[list[str]]] = {ADMIN: [[".*", ".*"]]}
    for role, pairs in ROLES.items():
        roles[role] = [[_exact(res), _exact(f"can_{action}")] for res, action in pairs]
        roles[role] += [[_exact(menu), _exact("menu_access")] for menu in MENUS.get(role, [])]
    return roles
