"""Menu categories shared by the view modules (GLOSSARY.md: the guide's words)."""
from flask_babel import lazy_gettext as _

from app.security.permissions import MENU_GROUP_ADMIN, MENU_REGION_OVERSIGHT, MENU_USER_CENTER

REGION_OVERSIGHT = dict(category=MENU_REGION_OVERSIGHT, category_label=_("Region Oversight"),
                        category_icon="fa-university")
USER_CENTER = dict(category=MENU_USER_CENTER, category_label=_("User Center"), category_icon="fa-id-card-o")
GROUP_ADMIN = dict(category=MENU_GROUP_ADMIN, category_label=_("Group Admin"), category_icon="fa-sitemap")
