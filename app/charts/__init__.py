"""Statistics (统计分析): scoped aggregate queries, pure Plotly figures, thin views (DESIGN.md §3)."""
from flask import current_app
from flask_appbuilder import AppBuilder
from flask_babel import lazy_gettext as _

from app.security.permissions import (
    MENU_GROUP_STATISTICS, MENU_MY_STATISTICS, MENU_REGION_STATISTICS, MENU_STATISTICS,
)

STATISTICS = dict(category=MENU_STATISTICS, category_label=_("Statistics"), category_icon="fa-bar-chart")


def register(appbuilder: AppBuilder) -> None:
    """统计分析: the officer, group and volunteer dashboards, and plotly.min.js."""
    from app.charts.views import GroupStatisticsView, MyStatisticsView, StatisticsView, plotly_js

    current_app.add_url_rule("/static-plotly/<string:version>/plotly.min.js", "plotly_js", plotly_js)
    appbuilder.add_view(StatisticsView, MENU_REGION_STATISTICS, href="/statistics/", icon="fa-area-chart",
                        label=_("Region Statistics"), **STATISTICS)
    appbuilder.add_view(GroupStatisticsView, MENU_GROUP_STATISTICS, href="/statistics/group/", icon="fa-users",
                        label=_("Group Statistics"), **STATISTICS)
    appbuilder.add_view(MyStatisticsView, MENU_MY_STATISTICS, href="/statistics/me/", icon="fa-user",
                        label=_("My Statistics"), **STATISTICS)
