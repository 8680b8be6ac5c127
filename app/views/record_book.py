"""团体管理 → 培训与评价 (/group-admin/record-book/): a group admin lists and adds
training records (培训) and evaluations (评价) for the members of the groups they
administer directly; officers read those of their region (read-only).

Rules live in app/services/record_book.py; these views read the form, call the
service, flash its result and commit, or roll back and show the page again with
what was typed (status 400). Out-of-scope ids answer 404.
"""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose, has_access
from flask_babel import gettext, lazy_gettext as _

from app.extensions import begin_write, db
from app.models import Evaluation, Training
from app.security.permissions import ACTION_READ, ACTION_WRITE, MENU_RECORD_BOOK, RESOURCE_RECORD_BOOK
from app.security.scope import current_scope, row_id
from app.services import hours, record_book, rosters
from app.services.errors import DomainError, ScopeViolation, ValidationFailed
from app.views import menus
from app.views.pages import flash_errors, page_arg


def training_row(row: Training, names: dict) -> dict:
    """What a table shows of one training record."""
    volunteer = row.volunteer
    return {
        "id": row.id, "name": volunteer.real_name if volunteer else "",
        "volunteer_no": (volunteer.volunteer_no or "") if volunteer else "",
        "title": row.title, "provider": row.provider or "", "trained_on": row.trained_on.isoformat(),
        "hours": hours.hours_text(row.minutes), "group": names["group"].get(row.group_id, ""),
    }


def evaluation_row(row: Evaluation, names: dict) -> dict:
    """What a table shows of one evaluation."""
    volunteer = row.volunteer
    return {
        "id": row.id, "name": volunteer.real_name if volunteer else "",
        "volunteer_no": (volunteer.volunteer_no or "") if volunteer else "",
        "project": names["project"].get(row.project_id, ""), "position": names["position"].get(row.position_id, ""),
        "group": names["group"].get(row.group_id, ""),
        "punctuality": row.punctuality, "attitude": row.attitude, "skill": row.skill, "rating": row.rating,
        "comment": row.comment or "", "evaluated_on": row.evaluated_on.isoformat(),
    }


class RecordBookView(BaseView):
    """培训与评价: for a group admin, one administered group at a time (?group=<id>):
    its active members (tick them for 添加培训), the evaluation form (member, position
    of the group's projects, 守时/态度/技能 1–5, comment) and both lists. For an
    officer (or ?view=region): the trainings and evaluations of their region, read-only."""

    route_base = "/group-admin/record-book"
    default_view = "index"
    class_permission_name = RESOURCE_RECORD_BOOK
    method_permission_name = {"index": ACTION_READ, "add_training": ACTION_WRITE, "add_evaluation": ACTION_WRITE}
    base_permissions = [f"can_{ACTION_READ}", f"can_{ACTION_WRITE}"]

    def _group(self, group_id):
        try:
            return record_book.administered_group(row_id(group_id))
        except ScopeViolation:
            abort(404)

    @expose("/")
    @has_access
    def index(self):
        scope = current_scope()
        reads_region = scope.everything or bool(scope.officer_paths)
        if request.args.get("group"):
            return self._group_page(self._group(request.args.get("group")))
        groups = rosters.administered_groups(scope) if scope.group_ids else []
        if groups and request.args.get("view") != "region":
            return self._group_page(groups[0], groups=groups)
        if reads_region:
            return self._region_page(groups)
        return self.render_template("record_book/index.html", title=gettext("Training and Evaluations"),
                                    group=None, groups=[], reads_region=False)

    def _region_page(self, groups):
        page = page_arg()
        trainings, more_trainings = record_book.region_trainings(page=page)
        evaluations, more_evaluations = record_book.region_evaluations(page=page)
        names = record_book.names_for(trainings + evaluations)
        return self.render_template(
            "record_book/region.html", title=gettext("Training and Evaluations"), groups=groups, page=page,
            trainings=[training_row(t, names) for t in trainings], more_trainings=more_trainings,
            evaluations=[evaluation_row(e, names) for e in evaluations], more_evaluations=more_evaluations)

    def _group_page(self, group, *, groups=None, training_form=None, evaluation_form=None, status=200):
        scope = current_scope()
        if groups is None:
            groups = rosters.administered_groups(scope) if scope.group_ids else []
        page = page_arg()
        q = (request.args.get("q") or "").strip()[:64]
        members, more_members = record_book.members_of(group, q=q, page=page)
        trainings, more_trainings = record_book.group_trainings(group, page=page)
        evaluations, more_evaluations = record_book.group_evaluations(group, page=page)
        positions = record_book.evaluable_positions(group)
        names = record_book.names_for(trainings + evaluations)
        training_form = training_form or {}
        evaluation_form = evaluation_form or {}
        ticked = set(training_form.getlist("volunteer")) if hasattr(training_form, "getlist") else set()
        return self.render_template(
            "record_book/index.html", title=gettext("Training and Evaluations"), group=group,
            groups=groups if any(g.id != group.id for g in groups) else [],
            reads_region=scope.everything or bool(scope.officer_paths), page=page, q=q,
            members=[{"volunteer_id": m.volunteer_id, "name": m.volunteer_name or "",
                      "volunteer_no": m.volunteer_no or "", "ticked": str(m.volunteer_id) in ticked}
                     for m in members], more_members=more_members,
            positions=[{"id": p.id, "label": f"{p.project.name} · {p.name}"} for p in positions],
            trainings=[training_row(t, names) for t in trainings], more_trainings=more_trainings,
            evaluations=[evaluation_row(e, names) for e in evaluations], more_evaluations=more_evaluations,
            training={k: training_form.get(k, "") for k in ("title", "provider", "trained_on", "hours")},
            evaluation={k: evaluation_form.get(k, "") for k in
                        ("volunteer", "position", "punctuality", "attitude", "skill", "comment")},
        ), status

    @expose("/<int:group_id>/trainings", methods=["POST"])
    @has_access
    def add_training(self, group_id):
        """添加培训: one training record for every ticked member, all or none."""
        begin_write()
        group = self._group(group_id)
        ids = [row_id(v) for v in request.form.getlist("volunteer")]
        if None in ids:
            abort(404)
        try:
            rows = record_book.record_training(
                ids, group=group, title=request.form.get("title"), provider=request.form.get("provider"),
                trained_on=request.form.get("trained_on"), hours_text=request.form.get("hours"))
        except ScopeViolation:
            db.session.rollback()
            abort(404)
        except DomainError as err:
            flash_errors(err)
            return self._group_page(self._group(group_id), training_form=request.form, status=400)
        db.session.commit()
        flash(gettext("The training has been recorded for %(n)s volunteers.", n=len(rows)), "success")
        return redirect(url_for(".index", group=group.id))

    @expose("/<int:group_id>/evaluations", methods=["POST"])
    @has_access
    def add_evaluation(self, group_id):
        """添加评价: rate one member's service on one position of the group's projects."""
        begin_write()
        group = self._group(group_id)
        volunteer_id = request.form.get("volunteer") or None
        position_id = request.form.get("position") or None
        if (volunteer_id and row_id(volunteer_id) is None) or (position_id and row_id(position_id) is None):
            abort(404)
        try:
            if position_id is None:
                raise ValidationFailed(fields={"position": [gettext("Choose the position.")]})
            evaluation = record_book.evaluate(
                row_id(volunteer_id) if volunteer_id else None, row_id(position_id), group=group,
                punctuality=request.form.get("punctuality"), attitude=request.form.get("attitude"),
                skill=request.form.get("skill"), comment=request.form.get("comment"))
        except ScopeViolation:
            db.session.rollback()
            abort(404)
        except DomainError as err:
            flash_errors(err)
            return self._group_page(self._group(group_id), evaluation_form=request.form, status=400)
        db.session.commit()
        flash(gettext("The evaluation has been saved (overall %(rating)s of 5).", rating=evaluation.rating),
              "success")
        return redirect(url_for(".index", group=group.id))


def register(appbuilder: AppBuilder) -> None:
    """Add this area's pages and menu entries."""
    appbuilder.add_view(RecordBookView, MENU_RECORD_BOOK, href="/group-admin/record-book/", icon="fa-book",
                        label=_("Training and Evaluations"), **menus.GROUP_ADMIN)
