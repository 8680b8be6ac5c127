"""Projects and sign-up: 团体管理 → 我的项目 (发布新项目, positions, 结项, invitations,
backfill), the public 志愿项目 list and project page, 用户中心 → 我的项目 (报名, cancel,
invitations) — issue 6."""
from flask_appbuilder import AppBuilder


def register(appbuilder: AppBuilder) -> None:
    """Add the project pages and their menu entries."""
