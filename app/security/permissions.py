"""Permission vocabulary. Views and roles use these names, never raw strings.

Permissions read ``can_<action> on <Resource>``; renaming a view class does not
change them (Superset/Airflow style: coarse, stable names per resource).
"""

# --- Resources (class_permission_name of views and APIs) ---
RESOURCE_REGION = "Region"
RESOURCE_VOLUNTEER = "Volunteer"
RESOURCE_VOLUNTEER_GROUP = "VolunteerGroup"
RESOURCE_MEMBERSHIP = "Membership"
RESOURCE_PROJECT = "Project"
RESOURCE_SERVICE_RECORD = "ServiceRecord"
RESOURCE_HONOR = "Honor"
RESOURCE_RECORD_BOOK = "RecordBook"  # training and evaluations
RESOURCE_CERTIFICATE = "Certificate"
RESOURCE_TRANSFER = "TransferRequest"
RESOURCE_HELP_REQUEST = "HelpRequest"
RESOURCE_COMPLAINT = "Complaint"
RESOURCE_AUDIT_EVENT = "AuditEvent"
RESOURCE_REPORTS = "Reports"
RESOURCE_CONSOLE = "Console"
RESOURCE_HOLIDAY = "Holiday"  # working-day calendar (节假日设置): Admin only
RESOURCE_CIVIL_UNIT = "CivilUnit"  # the civil-unit register (文明单位): officers keep it
RESOURCE_DATA_EXPORT = "DataExport"  # 数据导出: the scope's rows as CSV / Excel (masked)

# FAB's own views every signed-in user needs (own profile, own password).
RESOURCE_FAB_USERINFO = "UserDBModelView"
RESOURCE_FAB_RESET_MY_PASSWORD = "ResetMyPasswordView"
RESOURCE_FAB_USERINFO_EDIT = "UserInfoEditView"

# --- Actions (FAB prefixes "can_") ---
ACTION_READ = "read"
ACTION_WRITE = "write"
ACTION_REVIEW = "review"
ACTION_SUSPEND = "suspend"
ACTION_APPROVE = "approve"
ACTION_FLAG = "flag"
ACTION_VIEW_PII = "view_pii"
ACTION_JOIN = "join"
ACTION_SIGN_UP = "sign_up"
ACTION_APPLY = "apply"
ACTION_VERIFY = "verify"
ACTION_MODERATE = "moderate"
ACTION_CLAIM = "claim"
ACTION_ACCESS = "access"
ACTION_CORRECT = "correct"  # correct a record transferred from another system (officers)
ACTION_IMPORT = "import"  # import service records from another system (officers)
ACTION_REGISTER = "register"  # register a volunteer and their account (REST, officers)

READ_WRITE = {
    "list": ACTION_READ,
    "show": ACTION_READ,
    "api_read": ACTION_READ,
    "get": ACTION_READ,
    "get_list": ACTION_READ,
    "info": ACTION_READ,
    "download": ACTION_READ,
    "add": ACTION_WRITE,
    "edit": ACTION_WRITE,
    "post": ACTION_WRITE,
    "put": ACTION_WRITE,
}
READ_ONLY = {k: v for k, v in READ_WRITE.items() if v == ACTION_READ}

# --- Menus (FAB checks "menu_access on <name>") ---
MENU_REGION_OVERSIGHT = "Region Oversight"
MENU_REGIONS = "Regions"
MENU_VOLUNTEERS = "Volunteers"
MENU_VOLUNTEER_GROUPS = "Volunteer Groups"
MENU_PROJECTS = "Projects"
MENU_SERVICE_RECORDS = "Service Records"
MENU_AUDIT_LOG = "Audit Log"
MENU_USER_CENTER = "User Center"
MENU_MY_PROFILE = "My Profile"
MENU_VOLUNTEER_CARD = "Volunteer Card"
MENU_GROUP_ADMIN = "Group Admin"
MENU_STATISTICS = "Statistics"  # the 统计分析 category
MENU_REGION_STATISTICS = "Region Statistics"  # 统计分析 → 区域统计 (officers' dashboard)
MENU_GROUP_STATISTICS = "Group Statistics"  # 统计分析 → 团体统计 (group admins)
MENU_MY_STATISTICS = "My Statistics"  # 统计分析 → 我的统计 (volunteers)
MENU_HONORS = "Honors"
MENU_REGISTRATION_REVIEW = "Registration Review"
MENU_HOLIDAYS = "Holiday Settings"
MENU_MY_GROUPS = "My Groups"  # 用户中心 → 我的团体
MENU_MY_MEMBERS = "My Members"  # 团体管理 → 我的成员
MENU_JOIN_REQUESTS = "Join Requests"  # 团体管理 → 入团审核
MENU_CHILD_GROUP_REVIEW = "Child Group Review"  # 团体管理 → 下级团体审核
MENU_GROUP_PROFILE = "Group Profile"  # 团体管理 → 团体信息 (settings, card, join QR)
MENU_GROUP_REVIEW = "Group Review"  # 区域监管 → 团体审核 (root groups, officers)
MENU_GROUP_MEMBERS = "Group Members"  # 区域监管 → 团体成员 (the rosters of the region, read-only)
MENU_MY_PROJECTS = "My Projects"  # 用户中心 → 我的项目 (a volunteer's sign-ups, invitations, 申请时长)
MENU_SERVICE_HOURS = "Service Hours"  # 用户中心 → 服务时长 (records, totals, 录入时长码)
MENU_GROUP_PROJECTS = "Group Projects"  # 团体管理 → 我的项目 (发布新项目, positions, 计时)
MENU_PROJECT_SEARCH = "Volunteer Projects"  # 志愿项目: the public project list and search
MENU_CONSOLE = "Operator Console"  # 运营控制台 (/console, Flask-Admin): Admin only
MENU_MY_CERTIFICATES = "My Certificates"  # 用户中心 → 我的证明 (申请, download)
MENU_CERTIFICATE_REQUESTS = "Certificate Requests"  # 团体管理 → 证明申请 (issue, refuse)
MENU_CERTIFICATE_OVERSIGHT = "Certificate Oversight"  # 区域监管 → 证明管理 (the region's certificates, 撤回)
MENU_RECORD_BOOK = "Training and Evaluations"  # 团体管理 → 培训与评价 (members' training, evaluations)
MENU_HELP_REQUESTS = "Help Requests"  # 求助信息: the public list (发布求助 on it)
MENU_GROUP_HELP_REQUESTS = "Group Help Requests"  # 团体管理 → 求助认领 (claim, resolve, turn into a project)
MENU_HELP_MODERATION = "Help Request Moderation"  # 区域监管 → 求助审核 (hide, close)
MENU_COMPLAINTS = "Complaints"  # 区域监管 → 举报处理
MENU_MY_HELP_REQUESTS = "My Help Requests"  # 用户中心 → 我的求助
MENU_MY_REPORTS = "My Reports"  # 用户中心 → 我的举报
MENU_TRANSFERS = "Transfer Records"  # 用户中心 → 转移接续 (move home region, export own records)
MENU_TRANSFER_REVIEW = "Transfer Review"  # 区域监管 → 转移接续审核 (destination officers decide)
MENU_RECORD_IMPORT = "Record Import"  # 区域监管 → 服务记录导入 (records from another system)
MENU_CIVIL_UNITS = "Civil Units"  # 区域监管 → 文明单位 (the civil-unit register)
MENU_DATA_EXPORT = "Data Export"  # 区域监管 → 数据导出 (volunteers, groups, projects, records)
