"""用户中心 → 我的团体 (my groups, 参加更多团体, 加入, 退出, 团体名片), the QR join page, and
团体管理 → 入团审核 (join requests), with the read-only membership REST API.

Rules live in app/services/memberships.py; these views read the request, call the
service, flash its result and commit. Three view classes because each carries one
permission resource: reading memberships (``can_read on Membership``), joining and
leaving (``can_join on VolunteerGroup``) and deciding requests (``can_write on Membership``).
"""
from __future__ import annotations

import functools
from datetime import date

import segno
from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, ModelRestApi, expose, has_access
from flask_babel import gettext, lazy_gettext as _
from sqlalchemy import select

from app.extensions import db
from app.models import (
    GroupType, HonorLevel, JoinPolicy, Membership, MembershipOrigin, MembershipStatus, Region, VolunteerGroup,
)
from app.security.permissions import (
    ACTION_JOIN, ACTION_READ, ACTION_WRITE, MENU_JOIN_REQUESTS, MENU_MY_GROUPS, READ_ONLY,
    RESOURCE_MEMBERSHIP, RESOURCE_VOLUNTEER_GROUP,
)
from app.security.scope import current_scope
from app.security.scoped_views import ScopedApiMixin, ScopedInterface
from app.services import clock, groups, honors, memberships, volunteers
from app.services.errors import DomainError
from app.services.idcards import age_on
from app.views import decisions, menus
from app.views.formatters import local_day
from app.views.pages import flash_errors, page_arg


CARD_HONORS = 20  # the group card shows its latest honors


def _approved_group(group_id: int) -> VolunteerGroup:
    """The approved group with this id, or 404 (a pending or rejected group is not offered)."""
    group = db.session.get(VolunteerGroup, group_id)
    if not groups.is_approved(group):
        abort(404)
    return group


def _group_facts(group: VolunteerGroup) -> dict:
    """What the search results, the card and the join page show of a group (no full phone)."""
    return {
        "id": group.id,
        "name": group.name,
        "type": GroupType.labels().get(group.group_type, group.group_type),
        "region": group.region.name if group.region else group.region_code,
        "policy": group.join_policy,
        "policy_label": JoinPolicy.labels().get(group.join_policy, group.join_policy),
        "contact_name": group.contact_name or "",
        "contact_phone_masked": group.contact_phone_masked or "",
        "description": group.description or "",
    }


def _flash_joined(membership: Membership, group: VolunteerGroup) -> None:
    if membership.status == MembershipStatus.ACTIVE:
        flash(gettext("You have joined %(group)s.", group=group.name), "success")
    else:
        flash(gettext("Your request has been submitted and awaits the group's review."), "info")


def _join(group: VolunteerGroup, origin: str):
    """Call the service for the signed-in volunteer; flash and commit. Returns the
    membership, or None when refused."""
    volunteer = volunteers.volunteer_of_user(g.user)
    try:
        membership = memberships.join_group(volunteer, group, password=request.form.get("password") or None,
                                            origin=origin)
    except DomainError as err:
        flash_errors(err)
        return None
    db.session.commit()
    _flash_joined(membership, group)
    return membership


def _login_first(f):
    """Send an anonymous visitor (someone who scanned a group card) to the login page
    with a friendly word, and back here afterwards; FAB's own redirect would flash
    "access denied". ``@has_access`` still decides for signed-in users."""
    @functools.wraps(f)
    def wrapper(self, *args, **kwargs):
        if not getattr(g.user, "is_authenticated", False):
            flash(gettext("Please log in to join the group; you will come back to this page."), "info")
            return redirect(url_for(self.appbuilder.sm.auth_view.__class__.__name__ + ".login",
                                    next=request.url))
        return f(self, *args, **kwargs)
    return wrapper


def _local_redirect(default: str):
    """Back to where the form came from (a path on this site only), else ``default``."""
    target = request.form.get("next") or ""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return redirect(target)
    return redirect(default)


class MyGroupsView(BaseView):
    """我的团体 (/my/groups/), 参加更多团体 (/my/groups/search) and 团体名片 (/my/groups/<id>/card)."""

    route_base = "/my/groups"
    default_view = "index"
    class_permission_name = RESOURCE_MEMBERSHIP
    method_permission_name = {"index": ACTION_READ, "search": ACTION_READ, "card": ACTION_READ}
    base_permissions = [f"can_{ACTION_READ}"]

    def _no_volunteer(self, title):
        return self.render_template("user_center/no_volunteer.html", title=title)

    @expose("/")
    @has_access
    def index(self):
        """The groups I belong to or asked to join, with 团体名片 and 退出."""
        volunteer = volunteers.volunteer_of_user(g.user)
        if volunteer is None:
            return self._no_volunteer(gettext("My Groups"))
        rows = [{
            **_group_facts(m.group),
            "status": m.status,
            "status_label": gettext("Joined") if m.status == MembershipStatus.ACTIVE else gettext("Pending"),
            "since": local_day(m.decided_on if m.status == MembershipStatus.ACTIVE else m.changed_on),
        } for m in memberships.my_memberships(volunteer)]
        return self.render_template("memberships/my_groups.html", title=gettext("My Groups"), rows=rows)

    @expose("/search")
    @has_access
    def search(self):
        """参加更多团体: approved groups by name, keyword or pinyin initials, 20 a page."""
        volunteer = volunteers.volunteer_of_user(g.user)
        if volunteer is None:
            return self._no_volunteer(gettext("Join More Groups"))
        keyword = (request.args.get("q") or "").strip()[:50]
        page = page_arg()
        found, more = groups.search_groups(keyword, page=page)
        # One query for the regions (the lazy loads below then hit the identity map).
        region_ids = {grp.region_id for grp in found}
        if region_ids:
            db.session.scalars(select(Region).where(Region.id.in_(region_ids))).all()
        mine = memberships.statuses_in(volunteer, [grp.id for grp in found])
        rows = [{**_group_facts(grp), "mine": mine.get(grp.id)} for grp in found]
        return self.render_template(
            "memberships/search.html", title=gettext("Join More Groups"), q=keyword, rows=rows,
            page=page, more=more, searched=bool(keyword))

    @expose("/<int:group_id>/card")
    @has_access
    def card(self, group_id):
        """团体名片: for the group's active members and its own admins; others 404."""
        group = _approved_group(group_id)
        scope = current_scope()
        if not (scope.everything or group.id in scope.group_ids
                or memberships.is_active_member(volunteers.volunteer_of_user(g.user), group)):
            abort(404)
        join_url = (url_for("QrJoinView.join_page", token=group.join_token, _external=True)
                    if group.join_token else None)
        qr_svg = (segno.make(join_url, error="m").svg_inline(scale=4, title=gettext("Group Card"))
                  if join_url else None)
        group_honors = [{
            "id": h.id, "title": h.title, "level": HonorLevel.labels().get(h.level, h.level),
            "awarding_body": h.awarding_body, "awarded_on": h.awarded_on.isoformat(),
            # The attachment only for those who may read the honor itself (its group's admins).
            "attachment": (url_for("HonorModelView.attachment", pk=h.id)
                           if h.attachment_name and honors.may_read(h, scope) else None),
        } for h in honors.honors_of_group(group, limit=CARD_HONORS)]
        return self.render_template("memberships/card.html", title=gettext("Group Card"),
                                    group=_group_facts(group), join_url=join_url, qr_svg=qr_svg,
                                    honors=group_honors)


class JoinGroupView(BaseView):
    """加入 and 退出 from 我的团体 / 参加更多团体 (POST only)."""

    route_base = "/my/groups"
    class_permission_name = RESOURCE_VOLUNTEER_GROUP
    method_permission_name = {"join": ACTION_JOIN, "leave": ACTION_JOIN}
    base_permissions = [f"can_{ACTION_JOIN}"]

    @expose("/<int:group_id>/join", methods=["POST"])
    @has_access
    def join(self, group_id):
        group = _approved_group(group_id)
        _join(group, MembershipOrigin.SELF_JOIN)
        return _local_redirect(url_for("MyGroupsView.search", q=group.name))

    @expose("/<int:group_id>/leave", methods=["POST"])
    @has_access
    def leave(self, group_id):
        group = _approved_group(group_id)
        volunteer = volunteers.volunteer_of_user(g.user)
        was = memberships.statuses_in(volunteer, [group.id]).get(group.id)
        try:
            memberships.leave_group(volunteer, group)
        except DomainError as err:
            db.session.rollback()
            flash(str(err), "danger")
            return redirect(url_for("MyGroupsView.index"))
        db.session.commit()
        if was == MembershipStatus.PENDING:
            flash(gettext("Your request to join %(group)s has been withdrawn.", group=group.name), "success")
        else:
            flash(gettext("You have left %(group)s.", group=group.name), "success")
        return redirect(url_for("MyGroupsView.index"))


class QrJoinView(BaseView):
    """The page the group card's QR code opens: /groups/join/<token>.

    Login required (FAB sends an anonymous visitor to its login page with ``next``
    and back here afterwards). GET only shows the group; 加入 POSTs.
    An unknown or rotated token answers 404.
    """

    route_base = "/groups/join"
    class_permission_name = RESOURCE_VOLUNTEER_GROUP
    method_permission_name = {"join_page": ACTION_JOIN, "join": ACTION_JOIN}
    base_permissions = [f"can_{ACTION_JOIN}"]

    def _group(self, token):
        group = groups.group_for_join_token(token)
        if group is None:
            return None, (self.render_template("memberships/invalid_token.html",
                                               title=gettext("Group Card")), 404)
        return group, None

    @expose("/<string:token>")
    @_login_first
    @has_access
    def join_page(self, token):
        group, refused = self._group(token)
        if refused:
            return refused
        volunteer = volunteers.volunteer_of_user(g.user)
        if volunteer is None:
            return self.render_template("user_center/no_volunteer.html", title=gettext("Join"))
        mine = memberships.statuses_in(volunteer, [group.id]).get(group.id)
        return self.render_template("memberships/join.html", title=gettext("Join"), group=_group_facts(group),
                                    token=token, mine=mine)

    @expose("/<string:token>", methods=["POST"])
    @has_access
    def join(self, token):
        group, refused = self._group(token)
        if refused:
            return refused
        membership = _join(group, MembershipOrigin.QR)
        if membership is not None:
            return redirect(url_for("MyGroupsView.index"))
        return redirect(url_for(".join_page", token=token))


def _request_row(membership: Membership, today: date) -> dict:
    """What 入团审核 shows of one request (masked personal data only)."""
    volunteer = membership.volunteer
    return {
        "id": membership.id,
        "name": membership.volunteer_name or volunteer.real_name,
        "volunteer_no": membership.volunteer_no or volunteer.volunteer_no or "",
        "gender": {"M": gettext("Male"), "F": gettext("Female")}.get(volunteer.gender or "", ""),
        "age": age_on(volunteer.birth_date, today) if volunteer.birth_date else "",
        "id_masked": volunteer.id_number_masked,
        "phone_masked": volunteer.phone_masked or "",
        "group": membership.group.name,
        "requested": local_day(membership.changed_on or membership.created_on),
    }


class JoinRequestsView(BaseView):
    """入团审核: pending join requests of the groups the user administers directly,
    oldest first, 100 a page; tick rows, then approve, or reject with a reason."""

    route_base = "/group-admin/join-requests"
    default_view = "index"
    class_permission_name = RESOURCE_MEMBERSHIP
    method_permission_name = {"index": ACTION_WRITE, "decide": ACTION_WRITE}
    base_permissions = [f"can_{ACTION_WRITE}"]

    @expose("/")
    @has_access
    def index(self):
        page = page_arg()
        pending, more = memberships.pending_requests(current_scope(), page=page)
        today = clock.today()
        return self.render_template(
            "memberships/join_requests.html", title=gettext("Join Requests"),
            rows=[_request_row(m, today) for m in pending], page=page, more=more,
            page_size=memberships.JOIN_REQUESTS_PAGE_SIZE)

    @expose("/decide", methods=["POST"])
    @has_access
    def decide(self):
        """Approve or reject the ticked requests, all or none; an id outside the
        user's own groups (or unknown) answers 404 and nothing is written."""
        return decisions.decide_ticked(
            Membership, memberships.pending_requests_clause(current_scope()), memberships.decide_requests,
            none_selected=gettext("No join requests selected."),
            done=lambda decision, n: (gettext("%(n)s join requests approved.", n=n)
                                      if decision == memberships.APPROVE
                                      else gettext("%(n)s join requests rejected.", n=n)))


# MembershipApi.review: POST /api/v1/membership/<id>/review (the group's own admins).
review_request_api = decisions.review_endpoint(
    memberships.decide_requests, lambda m: {"id": m.id, "status": m.status, "reason": m.reason},
    summary="Approve or reject a pending join request (the group's own admins)",
    result_properties={"id": {"type": "integer"}, "status": {"type": "string"},
                       "reason": {"type": "string", "nullable": True}})


class MembershipApi(ScopedApiMixin, ModelRestApi):
    """/api/v1/membership/: memberships in the caller's scope (read-only), and
    POST /api/v1/membership/<id>/review for a group's own admins."""

    resource_name = "membership"
    datamodel = ScopedInterface(Membership)
    class_permission_name = RESOURCE_MEMBERSHIP
    method_permission_name = {**READ_ONLY, "review": ACTION_WRITE}
    include_route_methods = {"get", "get_list", "info", "review"}
    list_columns = show_columns = ["id", "group.name", "volunteer_name", "volunteer_no", "status", "origin",
                                   "created_on", "decided_on", "region_code"]
    list_select_columns = show_select_columns = [c for c in list_columns if c != "region_code"] + ["region_path"]
    order_columns = ["id", "created_on", "volunteer_name"]
    search_columns = ["volunteer_name", "volunteer_no", "status"]

    review = review_request_api  # POST /api/v1/membership/<id>/review; @protect maps "review" -> can_write


def register(appbuilder: AppBuilder) -> None:
    """Add this module's views and menu entries (called by app.views.register_views)."""
    appbuilder.add_view(MyGroupsView, MENU_MY_GROUPS, href="/my/groups/", icon="fa-users",
                        label=_("My Groups"), **menus.USER_CENTER)
    appbuilder.add_view_no_menu(JoinGroupView)
    appbuilder.add_view_no_menu(QrJoinView)
    appbuilder.add_view(JoinRequestsView, MENU_JOIN_REQUESTS, href="/group-admin/join-requests/",
                        icon="fa-user-plus", label=_("Join Requests"), **menus.GROUP_ADMIN)
    appbuilder.add_api(MembershipApi)
