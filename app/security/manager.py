"""The portal's security manager: FAB's, with the app's conventions applied."""
from types import SimpleNamespace

from flask_appbuilder.security.sqla.manager import SecurityManager

from app.security.hardening import client_address, login_throttle


class PortalSecurityManager(SecurityManager):
    """FAB's SQLAlchemy security manager; later issues add scoped user views here.

    Deviations: ``auth_user_db`` feeds login throttling (app/security/hardening.py),
    and FAB's "User's Statistics" page is not registered: it loads Google Charts
    from www.gstatic.com, which the deployment may not reach and CSP blocks.
    """

    userstatschartview = None

    def is_item_public(self, permission_name, view_name):
        """Anonymous access follows the Public role's data in FAB_ROLES.

        FAB checks anonymous requests against the Public role's *database* rows
        only, so roles-as-data would grant the public nothing.
        """
        public = SimpleNamespace(name=self.auth_role_public)
        return self._has_access_builtin_roles(public, permission_name, view_name)

    def auth_user_db(self, username, password):
        """FAB's database login (used by the form and the API), counting failures.

        A blocked account or address is refused without checking the password;
        the request hook usually refuses earlier, this covers any other caller.
        """
        throttle = login_throttle()
        if throttle is None:
            return super().auth_user_db(username, password)
        address = client_address()
        if throttle.blocked_for(username, address):
            return None
        user = super().auth_user_db(username, password)
        # One account, several names: a failure under the email also counts
        # against the username and vice versa. Both lookups run on every failure,
        # so timing does not tell whether the account exists.
        names = {username}
        if user is None:
            found = [self.find_user(username=username), self.find_user(email=username)]
            names.update(n for u in found if u is not None for n in (u.username, u.email))
            throttle.record_failure(names, address)
        else:
            throttle.forget_account(names | {user.username, user.email})
        return user
