"""团体注册 (public group registration), 下级团体审核 / 团体审核 (child and root group review) and 团体信息 (a group admin's settings, card and join QR)."""
from flask_appbuilder import AppBuilder


def register(appbuilder: AppBuilder) -> None:
    """Add this module's views and menu entries (called by app.views.register_views)."""
