"""The one security bootstrap step: roles and permission rows, after `flask db upgrade`.

`make run`, CI and the test fixtures all call ``bootstrap_security``.
"""
from flask import current_app

from app.security.roles import ADMIN, PUBLIC, ROLES


def bootstrap_security() -> list[str]:
    """Create the roles and sync FAB's permission/view rows (idempotent); return role names.

    Role permissions themselves are data (FAB_ROLES, matched at request time), so
    there is nothing to grant per role here; the permission rows exist so that
    FAB's security pages list every resource.
    """
    appbuilder = current_app.appbuilder
    sm = appbuilder.sm
    names = [ADMIN, *ROLES]
    for name in names:
        if sm.find_role(name) is None:
            sm.add_role(name)
    assert PUBLIC in names
    appbuilder.add_permissions(update_perms=True)
    appbuilder.session.commit()
    return names
