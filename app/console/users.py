"""运营控制台 → 用户: FAB's accounts with their roles and bindings, 停用账户 / 启用账户, and
the region and group-admin bindings that give officers, honors editors and group admins
their scope. Rules live in ``app/services/accounts.py``; every change is audited."""
from __future__ import annotations

from flask import flash, g, has_app_context
from flask_admin.actions import action
from flask_admin.model.template import TemplateLinkRowAction
from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_appbuilder.security.sqla.models import Role, User
from flask_babel import gettext
from flask_babel import lazy_gettext as _
from markupsafe import Markup, escape
from sqlalchemy import select
from wtforms import SelectField

from app.console import EditView
from app.extensions import db
from app.models import (
    BindingKind,
    GroupAdmin,
    Region,
    RegionBinding,
    Volunteer,
    VolunteerGroup,
)
from app.security.roles import ADMIN, PUBLIC, ROLES
from app.security.scope import row_id
from app.services import accounts

KIND_LABELS = {BindingKind.OFFICER: _("Officer"), BindingKind.HONORS_EDITOR: _("Honors editor")}


class RoleFilter(BaseSQLAFilter):
    """Users holding the chosen role (role names as options, read when the list renders)."""

    def __init__(self, name):
        super().__init__(User.id, name, options=self._role_options)

    @staticmethod
    def _role_options():
        if not has_app_context():  # Flask-Admin reads the options once when the view is made
            return [(name, name) for name in (ADMIN, *ROLES, PUBLIC)]
        return [(name, name) for name in db.session.scalars(select(Role.name).order_by(Role.name))]

    def apply(self, query, value, alias=None):
        return query.filter(User.roles.any(Role.name == value))

    def operation(self):
        return gettext("equals")


def _names(view, context, model, name):
    return " ".join(part for part in (model.first_name, model.last_name) if part and part != "-")


def _roles(view, context, model, name):
    return ", ".join(sorted(role.name for role in model.roles))


def _list(items) -> Markup:
    if not items:
        return Markup("—")
    return Markup("<ul class='mb-0 pl-3'>") + Markup("").join(
        Markup("<li>%s</li>") % item for item in items) + Markup("</ul>")


def _region_bindings(view, context, model, name):
    rows = db.session.execute(
        select(RegionBinding.kind, Region.name, Region.code, Region.level)
        .join(Region, Region.id == RegionBinding.region_id)
        .where(RegionBinding.user_id == model.id).order_by(RegionBinding.id)).all()
    return _list([f"{KIND_LABELS.get(kind, kind)}: {region} ({code}, {Region.LEVEL_LABELS[level]})"
                  for kind, region, code, level in rows])


def _group_admins(view, context, model, name):
    rows = db.session.execute(
        select(VolunteerGroup.name, VolunteerGroup.status)
        .join(GroupAdmin, GroupAdmin.group_id == VolunteerGroup.id)
        .where(GroupAdmin.user_id == model.id).order_by(GroupAdmin.id)).all()
    return _list([f"{group} ({status})" for group, status in rows])


def _volunteer(view, context, model, name):
    row = db.session.execute(
        select(Volunteer.real_name, Volunteer.volunteer_no, Volunteer.status, Volunteer.region_path)
        .where(Volunteer.user_id == model.id)).first()
    if row is None:
        return "—"
    real_name, number, status, path = row
    return escape(f"{real_name} · {number or '-'} · {status} · {path}")


class UserView(EditView):
    """用户: every account, searchable by username and name, filtered by role and active.
    No create, edit or delete here (FAB's own user pages do that); the two actions set
    ``active`` through ``accounts.set_active``. Password hashes are never shown."""

    can_create = can_edit = can_delete = False
    simple_list_pager = True  # no COUNT over every account
    list_template = "console/user_list.html"
    # 停用账户 / 启用账户 on each row too: a POST of the same action for that one row.
    column_extra_row_actions = [TemplateLinkRowAction("user_row_actions.toggle_active", _("Disable or enable"))]
    column_default_sort = ("id", False)
    column_list = ("username", "names", "roles", "active", "last_login")
    column_details_list = ("id", "username", "names", "email", "roles", "active", "last_login",
                           "login_count", "fail_login_count", "created_on", "changed_on",
                           "region_bindings", "group_admins", "volunteer")
    column_export_list = ()
    column_searchable_list = ("username", "first_name", "last_name")
    column_sortable_list = ("username", "active", "last_login")
    column_filters = (RoleFilter(_("Role")), "active")
    column_formatters = {"names": _names, "roles": _roles}
    column_formatters_detail = {"names": _names, "roles": _roles, "region_bindings": _region_bindings,
                                "group_admins": _group_admins, "volunteer": _volunteer}
    column_labels = {"username": _("Username"), "names": _("Full name"), "first_name": _("First name"),
                     "last_name": _("Last name"), "email": _("Email"), "roles": _("Roles"),
                     "active": _("Active"), "last_login": _("Last login (UTC)"),
                     "login_count": _("Login count"), "fail_login_count": _("Failed logins"),
                     "created_on": _("Created on (UTC)"), "changed_on": _("Changed on (UTC)"),
                     "region_bindings": _("Region bindings"), "group_admins": _("Administered groups"),
                     "volunteer": _("Volunteer record")}

    def _get_filter_groups(self):
        self._refresh_filters_cache()  # the roles as they are now
        return super()._get_filter_groups()

    def _users(self, ids):
        wanted = [pk for pk in map(row_id, ids) if pk is not None]
        return list(db.session.scalars(select(User).where(User.id.in_(wanted))))

    def _set_active(self, ids, active: bool):
        actor = getattr(g, "user", None)
        changed = self.commit_or_flash(
            lambda: accounts.set_active(self._users(ids), active, actor_id=getattr(actor, "id", None)))
        if changed is False:
            return
        message = (gettext("%(n)s accounts enabled.", n=changed) if active
                   else gettext("%(n)s accounts disabled.", n=changed))
        flash(message, "success")

    @action("disable", _("Disable account"), _("Disable the selected accounts? They can no longer log in."))
    def action_disable(self, ids):
        self._set_active(ids, False)

    @action("enable", _("Enable account"), _("Enable the selected accounts?"))
    def action_enable(self, ids):
        self._set_active(ids, True)


class _BindingView(EditView):
    """A binding list: add (through the service) and delete (through the service), no edit."""

    can_edit = False

    def delete_model(self, model):
        return bool(self.commit_or_flash(lambda: self.remove(model) or True))


class RegionBindingView(_BindingView):
    """区域绑定: an officer's or honors editor's region. Honors editors only at prefecture
    level or above (DESIGN.md §4) — ``accounts.add_region_binding`` refuses the rest.
    A partner account's ``partner`` binding belongs to its API token: it is not listed
    here, and ``accounts.remove_region_binding`` refuses it (revoke the token instead)."""

    column_list = ("user", "kind", "region", "region_path")
    column_searchable_list = ("region_path",)
    column_filters = ("kind", "region_path")
    column_default_sort = ("id", True)
    form_columns = ("user", "region", "kind")
    form_overrides = {"kind": SelectField}
    form_args = {"kind": {"choices": [(k.value, label) for k, label in KIND_LABELS.items()], "label": _("Kind")}}
    form_ajax_refs = {"user": {"fields": ("username",), "page_size": 20},
                      "region": {"fields": ("name", "code"), "page_size": 20}}
    column_formatters = {"kind": lambda v, c, m, n: KIND_LABELS.get(m.kind, m.kind),
                         "user": lambda v, c, m, n: m.user.username}
    column_labels = {"user": _("User"), "kind": _("Kind"), "region": _("Region"), "region_path": _("Region path")}

    def get_query(self):
        return super().get_query().filter(RegionBinding.kind != BindingKind.PARTNER)

    def get_count_query(self):
        return super().get_count_query().filter(RegionBinding.kind != BindingKind.PARTNER)

    def get_one(self, id):
        binding = super().get_one(id)
        return None if binding is not None and binding.kind == BindingKind.PARTNER else binding

    def create_model(self, form):
        return self.commit_or_flash(lambda: accounts.add_region_binding(form.user.data, form.region.data, form.kind.data))

    def remove(self, model):
        accounts.remove_region_binding(model)


class GroupAdminView(_BindingView):
    """团体管理员: who administers which volunteer group (and so its children)."""

    column_list = ("user", "group")
    column_default_sort = ("id", True)
    form_columns = ("user", "group")
    form_ajax_refs = {"user": {"fields": ("username",), "page_size": 20},
                      "group": {"fields": ("name",), "page_size": 20}}
    column_formatters = {"user": lambda v, c, m, n: m.user.username, "group": lambda v, c, m, n: m.group.name}
    column_labels = {"user": _("User"), "group": _("Group")}

    def create_model(self, form):
        return self.commit_or_flash(lambda: accounts.add_group_admin(form.user.data, form.group.data))

    def remove(self, model):
        accounts.remove_group_admin(model)


def add_views(admin, url: str) -> None:
    """Register the user and binding views on the console ``admin`` mounted at ``url``."""
    category = _("Users")
    admin.add_view(UserView(User, db, name=_("Users"), endpoint="console_user", url=f"{url}/user",
                            category=category))
    admin.add_view(RegionBindingView(RegionBinding, db, name=_("Region bindings"),
                                     endpoint="console_region_binding", url=f"{url}/region-binding",
                                     category=category))
    admin.add_view(GroupAdminView(GroupAdmin, db, name=_("Group admins"), endpoint="console_group_admin",
                                  url=f"{url}/group-admin", category=category))

