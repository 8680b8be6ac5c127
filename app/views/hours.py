"""Service hours: the 计时 page of a position (录入时长, 生成时长码, applications,
corrections) and 用户中心 → 服务时长 (records, totals, 录入时长码, 申请时长, 更正申请) — issue 6.

Rules live in app/services/hours.py; these views read the form, call the service,
flash its result and commit (or roll back and show the page again with what was
typed). Write handlers call ``extensions.begin_write()`` before reading what they
write from, so on SQLite they queue for the write lock instead of failing.
Out-of-scope ids answer 404.
"""
from __future__ import annotations

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose, has_access
from flask_babel import gettext, lazy_gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.extensions import begin_write, db
from app.models import (
    Enrollment, EnrollmentOrigin, EnrollmentStatus, RecordSource, RecordStatus, ServiceRecord, Volunteer,
)
from app.security.permissions import (
    ACTION_APPLY, ACTION_APPROVE, ACTION_READ, ACTION_WRITE, MENU_SERVICE_HOURS, RESOURCE_SERVICE_RECORD,
)
from app.security.scope import row_id
from app.services import clock, hours, volunteers
from app.services.errors import DomainError, ScopeViolation
from app.views import decisions, menus
from app.views.formatters import local_minute
from app.views.pages import flash_errors, page_arg




def _hours_value(minutes) -> str:
    """Minutes as the hours a form shows (``150`` → ``2.5``)."""
    return "" if minutes is None else f"{minutes / 60:g}"


def correction_page(view, record: ServiceRecord, *, title: str, action: str, back: str, admin: bool,
                    form=None, status: int = 200):
    """The correction form (hours/correct.html) for ``record``; ``form`` refills a refused one."""
    form = form or {}
    return view.render_template(
        "hours/correct.html", title=title, record=correction_row(record),
        current=_hours_value(hours.corrected_minutes(record)),
        form={"hours": form.get("hours", ""), "reason": form.get("reason", "")},
        action=action, back=back, admin=admin), status


def correction_row(record: ServiceRecord) -> dict:
    """What the correction form (hours/correct.html) shows of the original record."""
    return {**_record_row(record), "project": record.project_name, "position": record.position_name}


def _record_row(record: ServiceRecord) -> dict:
    """What a table shows of one record (copies on the row: no extra query)."""
    return {
        "id": record.id,
        "name": record.volunteer_name,
        "volunteer_no": record.volunteer_no or "",
        "served_on": record.served_on.isoformat(),
        "hours": _hours_value(record.minutes),
        "minutes": record.minutes,
        "source": RecordSource(record.source).label,
        "source_key": record.source,
        "status": RecordStatus(record.status).label,
        "status_key": record.status,
        "description": record.description or "",
        "reason": record.reason or "",
        "reject_reason": record.reject_reason or "",
        "times": (f"{clock.to_local(record.started_at):%H:%M}–{clock.to_local(record.ended_at):%H:%M}"
                  if record.started_at and record.ended_at else ""),
        "flag_reasons": record.flag_reasons or "" if record.is_flagged else "",
        "entered": local_minute(record.created_on),
    }


# --- 计时: the timekeeping page of one position (group admins of the project's group) ---


class TimekeepingView(BaseView):
    """计时 (/group-admin/positions/<id>/timekeeping): 录入时长 for ticked enrolled
    volunteers, 时长码 and 生成时长码 (while the project is open), pending applications
    and correction requests (approve / reject with a reason), and 更正 of approved
    records. Only admins of the project's own group; 404 for everyone else."""

    route_base = "/group-admin/positions"
    class_permission_name = RESOURCE_SERVICE_RECORD
    method_permission_name = {
        "index": ACTION_WRITE, "record": ACTION_WRITE, "generate": ACTION_WRITE, "decide": ACTION_APPROVE,
        "correction": ACTION_WRITE, "correct": ACTION_WRITE,
    }
    base_permissions = [f"can_{ACTION_WRITE}", f"can_{ACTION_APPROVE}"]

    def _position(self, position_id):
        try:
            return hours.position_for_admin(row_id(position_id))
        except ScopeViolation:
            abort(404)

    def _page(self, position, *, form=None, code_form=None, status=200):
        project = position.project
        first, last = hours.project_days(project)
        today = clock.today()
        default_day = min(max(today, first), last)
        page = page_arg()
        enrollments, more_enrollments = hours.enrolled_volunteers(position, page=page)
        pending, more_pending = hours.pending_records(position)
        approved, more_approved = hours.approved_records(position, page=page)
        closed = project.is_closed()
        codes = [] if closed else hours.codes_of(position)
        ticked = set(form.getlist("volunteer")) if form is not None else set()
        entry = {
            "served_on": (form.get("served_on") if form is not None else None) or min(today, last).isoformat(),
            "hours": (form.get("hours") if form is not None else None) or _hours_value(position.default_minutes),
            "start_time": (form.get("start_time") if form is not None else None)
            or (f"{position.shift_start:%H:%M}" if position.shift_start else ""),
            "description": (form.get("description") if form is not None else None) or "",
        }
        code_entry = {
            "served_on": (code_form.get("served_on") if code_form is not None else None) or default_day.isoformat(),
            "hours": (code_form.get("hours") if code_form is not None else None)
            or _hours_value(position.default_minutes),
            "max_uses": (code_form.get("max_uses") if code_form is not None else None) or "",
        }
        return self.render_template(
            "hours/timekeeping.html", title=gettext("Timekeeping"), position=position, project=project,
            first=first.isoformat(), last=last.isoformat(), closed=closed,
            shift=(f"{position.shift_start:%H:%M}–{position.shift_end:%H:%M}"
                   if position.shift_start and position.shift_end else ""),
            default_hours=_hours_value(position.default_minutes),
            enrollments=[{"volunteer_id": e.volunteer_id, "name": e.volunteer_name or "",
                          "volunteer_no": e.volunteer_no or "", "origin": EnrollmentOrigin(e.origin).label,
                          "ticked": str(e.volunteer_id) in ticked} for e in enrollments],
            more_enrollments=more_enrollments, page=page,
            pending=[{**_record_row(r), "corrects": _record_row(r.corrects) if r.corrects else None}
                     for r in pending], more_pending=more_pending,
            approved=[_record_row(r) for r in approved], more_approved=more_approved,
            codes=[{"code": c.code, "activity_on": c.activity_on.isoformat(), "hours": _hours_value(c.minutes),
                    "uses": c.uses, "max_uses": c.max_uses} for c in codes],
            show_codes=not closed and not project.is_backfill,
            entry=entry, code_entry=code_entry,
        ), status

    @expose("/<int:position_id>/timekeeping")
    @has_access
    def index(self, position_id):
        return self._page(self._position(position_id))

    @expose("/<int:position_id>/timekeeping/record", methods=["POST"])
    @has_access
    def record(self, position_id):
        """录入时长: approved records for every ticked enrolled volunteer, all or none."""
        begin_write()
        position = self._position(position_id)
        ids = {row_id(v) for v in request.form.getlist("volunteer")}
        if None in ids:
            abort(404)
        try:
            served_on = hours.parse_day(request.form.get("served_on"))
            minutes = hours.parse_hours(request.form.get("hours"))
            start_time = hours.parse_time(request.form.get("start_time"))
            chosen = list(db.session.scalars(select(Volunteer).where(Volunteer.id.in_(ids)))) if ids else []
            if len(chosen) != len(ids):
                abort(404)
            records = hours.record_hours(position, chosen, served_on=served_on, minutes=minutes,
                                         description=request.form.get("description"), start_time=start_time)
        except DomainError as err:
            flash_errors(err)
            return self._page(self._position(position_id), form=request.form, status=400)
        db.session.commit()
        flash(gettext("%(hours)s hours recorded for %(n)s volunteers on %(day)s.", hours=hours.hours_text(minutes),
                      n=len(records), day=served_on.isoformat()), "success")
        return redirect(url_for(".index", position_id=position.id))

    @expose("/<int:position_id>/timekeeping/codes", methods=["POST"])
    @has_access
    def generate(self, position_id):
        """生成时长码 for one activity of the position."""
        begin_write()
        position = self._position(position_id)
        try:
            served_on = hours.parse_day(request.form.get("served_on"))
            minutes = hours.parse_hours(request.form.get("hours"))
            max_uses = hours.parse_max_uses(request.form.get("max_uses"))
            code = hours.generate_code(position, served_on=served_on, minutes=minutes, max_uses=max_uses)
        except DomainError as err:
            flash_errors(err)
            return self._page(self._position(position_id), code_form=request.form, status=400)
        db.session.commit()
        flash(gettext("Hour code %(code)s generated for %(day)s (%(hours)s hours).", code=code.code,
                      day=code.activity_on.isoformat(), hours=hours.hours_text(code.minutes)), "success")
        return redirect(url_for(".index", position_id=position.id))

    @expose("/<int:position_id>/timekeeping/decide", methods=["POST"])
    @has_access
    def decide(self, position_id):
        """Approve or reject the ticked pending records of this position, all or none;
        an id that is not a pending record of the position answers 404."""
        begin_write()
        position = self._position(position_id)
        return decisions.decide_ticked(
            ServiceRecord, hours.pending_clause(position), hours.decide_records,
            none_selected=gettext("No records selected."),
            done=lambda decision, n: (gettext("%(n)s records approved.", n=n) if decision == hours.APPROVE
                                      else gettext("%(n)s records rejected.", n=n)),
            back=url_for(".index", position_id=position.id))

    def _approved_record(self, position, record_id):
        record = db.session.get(ServiceRecord, row_id(record_id)) if row_id(record_id) else None
        if record is None or record.position_id != position.id or record.status != RecordStatus.APPROVED \
                or record.source == RecordSource.CORRECTION:
            abort(404)
        return record

    def _correction_page(self, position, record, *, form=None, status=200):
        return correction_page(self, record, title=gettext("Correction"), form=form, status=status,
                               action=url_for(".correct", position_id=position.id, record_id=record.id),
                               back=url_for(".index", position_id=position.id), admin=True)

    @expose("/<int:position_id>/timekeeping/records/<int:record_id>/correct")
    @has_access
    def correction(self, position_id, record_id):
        """更正: the form for one approved record of the position."""
        position = self._position(position_id)
        return self._correction_page(position, self._approved_record(position, record_id))

    @expose("/<int:position_id>/timekeeping/records/<int:record_id>/correct", methods=["POST"])
    @has_access
    def correct(self, position_id, record_id):
        """更正: a new approved correction record (hours may be negative), with a reason."""
        begin_write()
        position = self._position(position_id)
        record = self._approved_record(position, record_id)
        try:
            minutes = hours.parse_hours(request.form.get("hours"), negative=True)
            hours.correct_record(record, minutes=minutes, reason=request.form.get("reason"))
        except DomainError as err:
            flash_errors(err)
            position = self._position(position_id)
            return self._correction_page(position, self._approved_record(position, record_id),
                                         form=request.form, status=400)
        db.session.commit()
        flash(gettext("The correction of %(hours)s hours has been recorded.", hours=hours.hours_text(minutes)),
              "success")
        return redirect(url_for(".index", position_id=position.id))


# --- 用户中心 → 服务时长 ---


class MyHoursView(BaseView):
    """服务时长 (/my/hours/): the volunteer's records and totals, 录入时长码, and the
    更正申请 link of each approved record; 申请时长 (/my/hours/apply/<enrollment id>)
    for the volunteer's own accepted enrollment. Other people's ids answer 404."""

    route_base = "/my/hours"
    default_view = "index"
    class_permission_name = RESOURCE_SERVICE_RECORD
    method_permission_name = {
        "index": ACTION_READ, "redeem": ACTION_APPLY, "apply": ACTION_APPLY, "apply_post": ACTION_APPLY,
        "correction": ACTION_APPLY, "correction_post": ACTION_APPLY,
    }
    base_permissions = [f"can_{ACTION_READ}", f"can_{ACTION_APPLY}"]

    def _volunteer(self):
        return volunteers.volunteer_of_user(g.user)

    def _no_volunteer(self, title):
        return self.render_template("user_center/no_volunteer.html", title=title)

    @expose("/")
    @has_access
    def index(self):
        volunteer = self._volunteer()
        if volunteer is None:
            return self._no_volunteer(gettext("Service Hours"))
        page = page_arg()
        records, more = hours.my_records(volunteer, page=page)
        waiting = hours.pending_corrections_of(records)
        total = hours.totals(volunteer)
        rows = [{**_record_row(r), "project": r.project_name, "position": r.position_name,
                 "group": r.group_name, "correctable": (r.status == RecordStatus.APPROVED
                                                        and r.source not in (RecordSource.CORRECTION,
                                                                             RecordSource.TRANSFER_IN)
                                                        and r.id not in waiting),
                 "correction_pending": r.id in waiting} for r in records]
        return self.render_template(
            "hours/my_hours.html", title=gettext("Service Hours"), rows=rows, page=page, more=more,
            approved_hours=_hours_value(total.approved_minutes), pending_hours=_hours_value(total.pending_minutes),
            pending_count=total.pending_count, star_level=total.star_level,
            volunteer_no=volunteer.volunteer_no or "")

    @expose("/redeem", methods=["POST"])
    @has_access
    def redeem(self):
        """录入时长码: enroll and credit at once, or say why not."""
        volunteer = self._volunteer()
        if volunteer is None:
            abort(404)
        try:
            record = hours.redeem_code(volunteer, request.form.get("code", ""))
        except DomainError as err:
            flash_errors(err)
            return redirect(url_for(".index"))
        db.session.commit()
        flash(gettext("%(hours)s hours of %(project)s (%(position)s) on %(day)s have been added to your "
                      "service hours.", hours=hours.hours_text(record.minutes), project=record.project_name,
                      position=record.position.name, day=record.served_on.isoformat()), "success")
        return redirect(url_for(".index"))

    def _own_enrollment(self, volunteer, enrollment_id) -> Enrollment:
        pk = row_id(enrollment_id)
        enrollment = db.session.scalar(select(Enrollment).where(Enrollment.id == pk).options(
            selectinload(Enrollment.project), selectinload(Enrollment.position))) if pk else None
        if volunteer is None or enrollment is None or enrollment.volunteer_id != volunteer.id \
                or enrollment.status != EnrollmentStatus.ACCEPTED:
            abort(404)
        return enrollment

    def _apply_page(self, enrollment, *, form=None, status=200):
        project = enrollment.project
        first, last = hours.project_days(project)
        today = clock.today()
        form = form or {}
        return self.render_template(
            "hours/apply.html", title=gettext("Apply for Hours"), project=project, position=enrollment.position,
            enrollment_id=enrollment.id, first=first.isoformat(), last=min(last, today).isoformat(),
            closed=project.is_closed(),
            form={"served_on": form.get("served_on") or min(max(today, first), last, today).isoformat(),
                  "hours": form.get("hours") or _hours_value(enrollment.position.default_minutes),
                  "description": form.get("description", "")}), status

    @expose("/apply/<int:enrollment_id>")
    @has_access
    def apply(self, enrollment_id):
        """申请时长: date, hours, what they did, 提交."""
        return self._apply_page(self._own_enrollment(self._volunteer(), enrollment_id))

    @expose("/apply/<int:enrollment_id>", methods=["POST"])
    @has_access
    def apply_post(self, enrollment_id):
        begin_write()
        volunteer = self._volunteer()
        enrollment = self._own_enrollment(volunteer, enrollment_id)
        try:
            record = hours.apply_for_hours(
                volunteer, enrollment, served_on=hours.parse_day(request.form.get("served_on")),
                minutes=hours.parse_hours(request.form.get("hours")),
                description=request.form.get("description"))
        except DomainError as err:
            flash_errors(err)
            return self._apply_page(self._own_enrollment(self._volunteer(), enrollment_id), form=request.form,
                                    status=400)
        db.session.commit()
        flash(gettext("Your application for %(hours)s hours on %(day)s has been submitted; the group will "
                      "review it.", hours=hours.hours_text(record.minutes), day=record.served_on.isoformat()),
              "success")
        return redirect(url_for(".index"))

    def _own_record(self, volunteer, record_id) -> ServiceRecord:
        pk = row_id(record_id)
        record = db.session.get(ServiceRecord, pk) if pk else None
        if volunteer is None or record is None or record.volunteer_id != volunteer.id \
                or record.status != RecordStatus.APPROVED \
                or record.source in (RecordSource.CORRECTION, RecordSource.TRANSFER_IN):
            abort(404)  # a record transferred in has no group here to decide a correction
        return record

    def _correction_page(self, record, *, form=None, status=200):
        return correction_page(self, record, title=gettext("Request a Correction"), form=form, status=status,
                               action=url_for(".correction_post", record_id=record.id), back=url_for(".index"),
                               admin=False)

    @expose("/records/<int:record_id>/correction")
    @has_access
    def correction(self, record_id):
        """更正申请: ask the group to correct one of my approved records."""
        return self._correction_page(self._own_record(self._volunteer(), record_id))

    @expose("/records/<int:record_id>/correction", methods=["POST"])
    @has_access
    def correction_post(self, record_id):
        begin_write()
        volunteer = self._volunteer()
        record = self._own_record(volunteer, record_id)
        try:
            hours.request_correction(volunteer, record,
                                     minutes=hours.parse_hours(request.form.get("hours"), negative=True),
                                     reason=request.form.get("reason"))
        except DomainError as err:
            flash_errors(err)
            return self._correction_page(self._own_record(self._volunteer(), record_id), form=request.form,
                                         status=400)
        db.session.commit()
        flash(gettext("Your correction request has been submitted; the group will review it."), "success")
        return redirect(url_for(".index"))


def register(appbuilder: AppBuilder) -> None:
    """Add the hours pages and their menu entries."""
    appbuilder.add_view(MyHoursView, MENU_SERVICE_HOURS, href="/my/hours/", icon="fa-clock-o",
                        label=_("Service Hours"), **menus.USER_CENTER)
    appbuilder.add_view_no_menu(TimekeepingView)
