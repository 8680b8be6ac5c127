"""用户中心 → 我的团体 (my groups, 参加更多团体, 加入, 退出, 团体名片) , the QR join page, and 团体管理 → 入团审核 (join requests)."""
from flask_appbuilder import AppBuilder


def register(appbuilder: AppBuilder) -> None:
    """Add this module's views and menu entries (called by app.views.register_views)."""
