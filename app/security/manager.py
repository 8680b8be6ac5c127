"""The portal's security manager: FAB's, with the app's conventions applied."""
from flask_appbuilder.security.sqla.manager import SecurityManager


class PortalSecurityManager(SecurityManager):
    """FAB's SQLAlchemy security manager; later issues add scoped user views here."""
