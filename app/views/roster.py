"""团体管理 → 我的成员 (the roster): search, 添加志愿者 by real name + ID, remove, Excel export and import."""
from flask_appbuilder import AppBuilder


def register(appbuilder: AppBuilder) -> None:
    """Add this module's views and menu entries (called by app.views.register_views)."""
