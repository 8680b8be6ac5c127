"""Portal views: declarative FAB ModelViews, registered by ``register_views``."""
from flask_appbuilder import AppBuilder, ModelView
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import lazy_gettext as _

from app.models import Region
from app.security.permissions import (
    MENU_REGION_OVERSIGHT,
    MENU_REGIONS,
    READ_ONLY,
    RESOURCE_REGION,
)

class RegionModelView(ModelView):
    """Administrative divisions (行政区划), read-only here; officers add streets later."""

    datamodel = SQLAInterface(Region)
    route_base = "/regions"
    class_permission_name = RESOURCE_REGION
    method_permission_name = READ_ONLY
    base_permissions = ["can_read"]

    list_title = show_title = _("Regions")
    list_columns = ["code", "name", "level_label", "parent", "population"]
    show_columns = ["code", "name", "level_label", "parent", "population"]
    search_columns = ["code", "name", "level"]
    order_columns = ["code", "name", "population"]
    base_order = ("path", "asc")
    page_size = 50
    formatters_columns = {"parent": lambda v: v or "", "population": lambda v: "" if v is None else v}
    label_columns = {
        "code": _("Division code"), "name": _("Name"), "level": _("Level"),
        "level_label": _("Level"), "parent": _("Parent region"), "population": _("Population"),
    }


def register_views(appbuilder: AppBuilder) -> None:
    """Add every portal view and its menu entry."""
    appbuilder.add_view(
        RegionModelView, MENU_REGIONS, icon="fa-map-marker", label=_("Regions"),
        category=MENU_REGION_OVERSIGHT, category_label=_("Region Oversight"),
        category_icon="fa-university",
    )
