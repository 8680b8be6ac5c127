"""The portal's security manager: FAB's, with the app's conventions applied."""
import hmac
import logging
from datetime import timedelta
from types import SimpleNamespace

from flask import g
from flask_appbuilder.security.sqla.manager import SecurityManager
from werkzeug.security import check_password_hash

from app.security.hardening import client_address, login_throttle
from app.services import clock

log = logging.getLogger(__name__)

# ``last_used_on`` of an API key is written at most this often: a partner polling
# every second would otherwise turn every read into a write transaction.
API_KEY_TOUCH_INTERVAL = timedelta(minutes=5)


class PortalSecurityManager(SecurityManager):
    """FAB's SQLAlchemy security manager; later issues add scoped user views here.

    Deviations: ``auth_user_db`` feeds login throttling (app/security/hardening.py),
    ``validate_api_key`` checks a key once per request and writes its last use at
    most every five minutes, and FAB's "User's Statistics" page is not registered: it loads Google Charts
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

    def validate_api_key(self, api_key_string):
        """FAB's API-key check (lookup hash, slow hash, active, not revoked, not expired,
        account active), with two deviations:

        - a request validates its key once: ``app/security/api_keys.py`` checks it before
          any view, then FAB's ``@protect`` asks again; the second call answers from
          ``g`` without hashing or touching the database;
        - ``last_used_on`` is written only when it is older than
          ``API_KEY_TOUCH_INTERVAL``, so most reads stay read-only transactions.

        Times on ``ab_api_key`` are naive UTC (``app/services/clock.py``), unlike FAB's
        naive local time: ``expires_on`` and ``revoked_on`` are written by
        ``app/services/api_tokens.py`` and compared here with ``clock.utcnow()``.
        """
        seen = g.get("_vc_api_key")
        if seen is not None and hmac.compare_digest(seen[0].encode(), api_key_string.encode()):
            g.user = seen[1]
            g._api_key_user = True
            return seen[1]
        lookup = self._compute_lookup_hash(api_key_string)
        api_key = (self.session.query(self.api_key_model)
                   .filter(self.api_key_model.lookup_hash == lookup).one_or_none())
        if api_key is None:
            return None
        if not check_password_hash(api_key.key_hash, api_key_string):
            log.warning("API key lookup hash matched but slow hash failed")
            return None
        now = clock.utcnow()
        if (not api_key.active or api_key.revoked_on is not None
                or (api_key.expires_on is not None and api_key.expires_on <= now)):
            log.warning("API key '%s' matched but is not active", api_key.name)
            return None
        user = api_key.user
        if not user or not user.is_active:
            log.warning("API key '%s' user is not active", api_key.name)
            return None
        if api_key.last_used_on is None or api_key.last_used_on <= now - API_KEY_TOUCH_INTERVAL:
            api_key.last_used_on = now
            self.session.commit()
        g.user = user
        g._api_key_user = True
        g._vc_api_key = (api_key_string, user)
        return user
