"""Portal views and REST APIs, registered by ``register_views``.

One module per area: oversight (区域监管 and 表彰激励), registration (注册志愿者),
review (注册审核), user_center (用户中心), groups (团体注册, group review, 团体信息),
memberships (我的团体, joining, 入团审核), roster (我的成员), projects (我的项目, 发布新项目,
报名, the public 志愿项目 list), hours (计时, 服务时长), api (REST).
"""
from flask_appbuilder import AppBuilder
from flask_babel import lazy_gettext as _

from app.security.permissions import (
    MENU_AUDIT_LOG, MENU_CIVIL_UNITS, MENU_CONSOLE, MENU_HOLIDAYS, MENU_HONORS, MENU_MY_PROFILE, MENU_PROJECTS,
    MENU_REGIONS, MENU_REGISTRATION_REVIEW, MENU_SERVICE_RECORDS, MENU_VOLUNTEER_CARD,
    MENU_VOLUNTEER_GROUPS, MENU_VOLUNTEERS,
)
from app.views.api import (
    HonorApi, HourCodeApi, ProjectApi, RegionApi, ServiceRecordApi, VolunteerApi, VolunteerGroupApi,
)
from app.views.oversight import (
    AuditEventModelView, CivilUnitModelView, HonorModelView, ProjectModelView, RegionModelView,
    ServiceRecordModelView, VolunteerGroupModelView, VolunteerModelView,
)
from app.views import (
    certificates, complaints, exports, groups, help_requests, hours, memberships, menus, projects,
    record_book, record_exchange, roster, transfers,
)
from app import charts
from app.views.registration import RegistrationView
from app.views.review import HolidayModelView, RegistrationReviewView


def register_views(appbuilder: AppBuilder) -> None:
    """Add every portal view, its menu entry and the REST APIs."""
    oversight = menus.REGION_OVERSIGHT
    appbuilder.add_view(VolunteerModelView, MENU_VOLUNTEERS, icon="fa-user", label=_("Volunteers"), **oversight)
    appbuilder.add_view(RegistrationReviewView, MENU_REGISTRATION_REVIEW, icon="fa-check-square-o",
                        label=_("Registration Review"), **oversight)
    appbuilder.add_view(VolunteerGroupModelView, MENU_VOLUNTEER_GROUPS, icon="fa-users",
                        label=_("Volunteer Groups"), **oversight)
    appbuilder.add_view(ProjectModelView, MENU_PROJECTS, icon="fa-flag", label=_("Projects"), **oversight)
    appbuilder.add_view(ServiceRecordModelView, MENU_SERVICE_RECORDS, icon="fa-clock-o",
                        label=_("Service Records"), **oversight)
    appbuilder.add_view(AuditEventModelView, MENU_AUDIT_LOG, icon="fa-history", label=_("Audit Log"), **oversight)
    appbuilder.add_view(RegionModelView, MENU_REGIONS, icon="fa-map-marker", label=_("Regions"), **oversight)
    appbuilder.add_view(CivilUnitModelView, MENU_CIVIL_UNITS, icon="fa-building", label=_("Civil Units"),
                        **oversight)
    appbuilder.add_view(HolidayModelView, MENU_HOLIDAYS, icon="fa-calendar", label=_("Holiday Settings"),
                        **oversight)
    appbuilder.add_view(HonorModelView, MENU_HONORS, icon="fa-trophy", label=_("Honors"))
    _register_user_center(appbuilder)
    # 团体管理 reads in the guide's order: 我的成员, 入团审核, 下级团体审核, 团体信息.
    roster.register(appbuilder)
    memberships.register(appbuilder)
    groups.register(appbuilder)
    projects.register(appbuilder)  # 团体管理 / 用户中心 → 我的项目, the public 志愿项目 list
    hours.register(appbuilder)  # 计时, 用户中心 → 服务时长
    record_book.register(appbuilder)  # 团体管理 → 培训与评价
    certificates.register(appbuilder)  # 用户中心 → 我的证明, 团体管理 → 证明申请, /verify/<number>
    help_requests.register(appbuilder)  # 求助信息, 发布求助, 求助认领, 求助审核
    complaints.register(appbuilder)  # 举报, 区域监管 → 举报处理
    record_exchange.register(appbuilder)  # my records as JSON/CSV, 区域监管 → 服务记录导入
    transfers.register(appbuilder)  # 用户中心 → 转移接续, 区域监管 → 转移接续审核
    exports.register(appbuilder)  # 区域监管 → 数据导出 (CSV / Excel of the scope, masked)
    charts.register(appbuilder)  # 统计分析: 区域统计, 团体统计, 我的统计, /static-plotly/
    appbuilder.add_view_no_menu(RegistrationView)  # 注册志愿者, public; linked from the login page
    appbuilder.add_link(MENU_CONSOLE, href="/console/", icon="fa-cogs", label=_("Operator Console"))  # Admin only
    for api in (RegionApi, VolunteerApi, VolunteerGroupApi, ProjectApi, ServiceRecordApi, HonorApi, HourCodeApi):
        appbuilder.add_api(api)


def _register_user_center(appbuilder: AppBuilder) -> None:
    """用户中心: 我的资料 and 志愿者证 for volunteers; the card check is public."""
    from app.views.user_center import CardVerifyView, UserCenterView

    user_center = menus.USER_CENTER
    appbuilder.add_view(UserCenterView, MENU_MY_PROFILE, href="/my/profile", icon="fa-user",
                        label=_("My Profile"), **user_center)
    appbuilder.add_link(MENU_VOLUNTEER_CARD, href="/my/card", icon="fa-id-card", label=_("Volunteer Card"),
                        **user_center)
    appbuilder.add_view_no_menu(CardVerifyView)
