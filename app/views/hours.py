"""Service hours: the 计时 page of a position (录入时长, 生成时长码, applications,
corrections) and 用户中心 → 服务时长 (records, totals, 录入时长码, 申请时长) — issue 6."""
from flask_appbuilder import AppBuilder


def register(appbuilder: AppBuilder) -> None:
    """Add the hours pages and their menu entries."""
