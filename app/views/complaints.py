"""Complaints (举报), issue 7 item 6: a signed-in user reports a service record, a project
or a group (/complaints/new?subject=<type>&id=<id>, linked as 举报 from 服务时长, the
public project page and the group card) and lists their own (/complaints/mine);
区域监管 → 举报处理 (/complaints/): officers of the subject's region resolve — for a
service record optionally with corrected hours, which files a correction for the
group to decide on 计时 — or dismiss.

Rules live in app/services/complaints.py; out-of-scope ids answer 404.
"""
from __future__ import annotations

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose, has_access
from flask_babel import gettext, lazy_gettext as _

from app.extensions import begin_write, db
from app.models import RecordStatus
from app.security.permissions import ACTION_MODERATE, ACTION_READ, ACTION_WRITE, MENU_COMPLAINTS, MENU_MY_REPORTS, RESOURCE_COMPLAINT
from app.services import complaints, hours
from app.services.errors import DomainError, ScopeViolation, ValidationFailed
from app.views import menus
from app.views.formatters import local_minute
from app.views.pages import flash_errors, page_arg, perform

_TABS = ("pending", "resolved", "rejected", "all")


def complaint_facts(item, subject) -> dict:
    """One complaint as the pages show it (``subject``: its row, loaded by the caller)."""
    return {
        "id": item.id, "subject_type": item.subject_type, "subject_id": item.subject_id,
        "subject_label": complaints.subject_labels().get(item.subject_type, item.subject_type),
        "subject": complaints.subject_text(item.subject_type, subject),
        "text": item.text, "status": item.status,
        "status_label": complaints.status_labels().get(item.status, item.status),
        "resolution": item.resolution or "", "created": local_minute(item.created_on),
        "resolved_on": local_minute(item.resolved_on), "correction_id": item.correction_id,
    }


def _subject_url(subject_type: str, subject_id) -> str | None:
    """Where an officer opens the subject (the oversight pages of their region)."""
    endpoint = {complaints.SERVICE_RECORD: "ServiceRecordModelView.show", complaints.PROJECT: "ProjectModelView.show",
                complaints.GROUP: "VolunteerGroupModelView.show"}.get(subject_type)
    return url_for(endpoint, pk=subject_id) if endpoint and subject_id else None


class ComplaintsView(BaseView):
    """举报 (new, mine: ``can_write``, every signed-in role) and 区域监管 → 举报处理
    (index, show: ``can_read``; resolve, dismiss: ``can_moderate``; officers)."""

    route_base = "/complaints"
    default_view = "index"
    class_permission_name = RESOURCE_COMPLAINT
    method_permission_name = {"new": ACTION_WRITE, "mine": ACTION_WRITE, "index": ACTION_READ, "show": ACTION_READ,
                              "resolve": ACTION_MODERATE, "dismiss": ACTION_MODERATE}
    base_permissions = [f"can_{ACTION_READ}", f"can_{ACTION_WRITE}", f"can_{ACTION_MODERATE}"]

    # --- 举报 ---

    @expose("/new", methods=["GET", "POST"])
    @has_access
    def new(self):
        subject_type = request.values.get("subject", "")
        subject_id = request.values.get("id", "")
        try:
            subject = complaints.reportable_subject(subject_type, subject_id)
        except ScopeViolation:
            abort(404)
        text, errors, refused, status = "", [], [], 200
        if request.method == "POST":
            text = (request.form.get("text") or "")[:complaints.TEXT_MAX + 100]
            begin_write()
            try:
                complaints.report(subject_type, subject_id, text)
            except ScopeViolation:
                db.session.rollback()
                abort(404)
            except ValidationFailed as err:
                db.session.rollback()
                errors, status = err.messages, 400
            except complaints.TooManyReports as err:
                db.session.rollback()  # the form keeps the text, to send once the wait is over
                refused, status = err.messages, 429
            except DomainError as err:
                flash_errors(err)
                return redirect(url_for(".mine"))
            else:
                db.session.commit()
                flash(gettext("Thank you: your report has been passed to the officers of the region."), "success")
                return redirect(url_for(".mine"))
            subject = complaints.reportable_subject(subject_type, subject_id)
        return self.render_template(
            "complaints/form.html", title=gettext("Report"), subject_type=subject_type, subject_id=subject.id,
            subject_label=complaints.subject_labels()[subject_type],
            subject=complaints.subject_text(subject_type, subject), text=text, errors=errors,
            refused=refused), status

    @expose("/mine")
    @has_access
    def mine(self):
        """我的举报: the user's own complaints and what became of them."""
        page = page_arg()
        rows, more = complaints.my_complaints(getattr(g.user, "id", None), page=page)
        subjects = complaints.subjects_of(rows)
        return self.render_template(
            "complaints/mine.html", title=gettext("My Reports"), page=page, more=more,
            rows=[complaint_facts(c, subjects.get((c.subject_type, c.subject_id))) for c in rows])

    # --- 区域监管 → 举报处理 ---

    def _item(self, complaint_id):
        try:
            return complaints.officer_complaint(complaint_id)
        except ScopeViolation:
            abort(404)

    @expose("/")
    @has_access
    def index(self):
        tab = request.args.get("status", "pending")
        tab = tab if tab in _TABS else "pending"
        page = page_arg()
        rows, more = complaints.officer_list(status="" if tab == "all" else tab, page=page)
        subjects = complaints.subjects_of(rows)
        labels = complaints.status_labels()
        return self.render_template(
            "complaints/list.html", title=gettext("Complaint Handling"), tab=tab, page=page, more=more,
            tabs=[(t, labels.get(t, gettext("All"))) for t in _TABS],
            rows=[complaint_facts(c, subjects.get((c.subject_type, c.subject_id))) for c in rows])

    @expose("/<int:complaint_id>")
    @has_access
    def show(self, complaint_id):
        item = self._item(complaint_id)
        subject = complaints.subjects_of([item]).get((item.subject_type, item.subject_id))
        record = subject if item.subject_type == complaints.SERVICE_RECORD else None
        correction = complaints.correction_of(item)
        return self.render_template(
            "complaints/show.html", title=gettext("Complaint Handling"), item=complaint_facts(item, subject),
            subject_url=_subject_url(item.subject_type, item.subject_id) if subject is not None else None,
            current_hours=hours.hours_text(hours.corrected_minutes(record)) if record is not None else None,
            can_correct=record is not None and record.status == RecordStatus.APPROVED,
            correction=({"id": correction.id, "hours": hours.hours_text(correction.minutes),
                         "status": RecordStatus(correction.status).label, "status_key": correction.status}
                        if correction is not None else None),
            form={"resolution": "", "hours": ""})

    def _decide(self, complaint_id, action):
        """Run ``action(item)`` (it returns the message to flash), commit, back to the page."""
        begin_write()
        item = self._item(complaint_id)
        return perform(lambda: action(item), url_for(".show", complaint_id=complaint_id))

    @expose("/<int:complaint_id>/resolve", methods=["POST"])
    @has_access
    def resolve(self, complaint_id):
        """Resolve; with corrected hours (what the record should hold) a correction is filed."""
        def action(item):
            text = (request.form.get("hours") or "").strip()
            corrected = hours.parse_hours(text) if text else None
            resolved = complaints.resolve(item, request.form.get("resolution"), corrected_minutes=corrected)
            if resolved.correction_id is None:
                return gettext("The complaint is resolved.")
            if complaints.correction_of(resolved).status == RecordStatus.APPROVED:  # a record transferred in
                return gettext("The complaint is resolved and the record corrected.")
            return gettext("The complaint is resolved. The correction waits for the group's decision on its "
                           "timekeeping page.")

        return self._decide(complaint_id, action)

    @expose("/<int:complaint_id>/dismiss", methods=["POST"])
    @has_access
    def dismiss(self, complaint_id):
        def action(item):
            complaints.dismiss(item, request.form.get("resolution"))
            return gettext("The complaint is dismissed.")

        return self._decide(complaint_id, action)


def register(appbuilder: AppBuilder) -> None:
    """Add the complaint pages and 区域监管 → 举报处理."""
    appbuilder.add_view(ComplaintsView, MENU_COMPLAINTS, href="/complaints/", icon="fa-flag-o",
                        label=_("Complaint Handling"), **menus.REGION_OVERSIGHT)
    appbuilder.add_link(MENU_MY_REPORTS, href="/complaints/mine", icon="fa-flag-o", label=_("My Reports"),
                        **menus.USER_CENTER)
