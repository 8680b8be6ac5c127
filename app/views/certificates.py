"""Certificates (志愿服务记录证明): 用户中心 → 我的证明 (/my/certificates/: 申请, the
platform's record summary, downloads), 团体管理 → 证明申请 (/group-admin/certificates/:
issue or refuse, withdraw), 区域监管 → 证明管理 (/oversight/certificates/: officers list
their region's certificates and withdraw them), the public check /verify/<number>, and
the REST ``certificate`` resource with its public ``verify`` endpoint.

Rules live in app/services/certificates.py (the PDF in certificate_pdf.py); these
views read the form, call the service, flash its result and commit. Ids the user
may not reach answer 404.
"""
from __future__ import annotations

from flask import Response, abort, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, ModelRestApi, expose, has_access
from flask_appbuilder.api import expose as api_expose, protect, safe
from flask_appbuilder.models.filters import BaseFilter
from flask_babel import gettext, lazy_gettext as _

from app.extensions import begin_write, db
from app.models import Certificate
from app.security.permissions import (
    ACTION_MODERATE, ACTION_READ, ACTION_VERIFY, ACTION_WRITE, MENU_CERTIFICATE_OVERSIGHT, MENU_CERTIFICATE_REQUESTS,
    MENU_MY_CERTIFICATES, READ_ONLY, RESOURCE_CERTIFICATE,
)
from app.security.scope import current_scope, row_id
from app.security.scoped_views import ScopedApiMixin, ScopedInterface
from app.services import certificate_pdf, certificates, volunteers
from app.services.errors import DomainError, ScopeViolation, ValidationFailed
from app.views import menus
from app.views.formatters import local_day, local_minute
from app.views.pages import flash_errors, page_arg, perform


def _verify_url(certificate: Certificate) -> str:
    """The absolute URL the QR code carries: /verify/<number>?t=<token>."""
    return url_for("CertificateVerifyView.verify", number=certificate.number,
                   t=certificates.verification_token(certificate), _external=True)


def _hours(minutes) -> str:
    return f"{(minutes or 0) / 60:.2f}".rstrip("0").rstrip(".") or "0"


def _period(period_from, period_to) -> str:
    if not (period_from or period_to):
        return gettext("All")
    return f"{period_from.isoformat() if period_from else '…'} — {period_to.isoformat() if period_to else '…'}"


def _certificate_row(certificate: Certificate, *, pdf_endpoint: str) -> dict:
    return {
        "id": certificate.id,
        "number": certificate.number,
        "kind": certificates.kind_labels().get(certificate.kind, certificate.kind),
        "kind_key": certificate.kind,
        "issuer": certificate.issuer,
        "holder": certificate.volunteer.real_name if certificate.volunteer else "",
        "volunteer_no": certificate.volunteer.volunteer_no if certificate.volunteer else "",
        "hours": _hours(certificate.minutes),
        "period": _period(certificate.period_from, certificate.period_to),
        "issued_on": certificate.issued_on.isoformat(),
        "withdrawn": certificate.is_withdrawn,
        "withdrawn_on": local_day(certificate.withdrawn_on),
        "withdraw_reason": certificate.withdraw_reason or "",
        "pdf": url_for(pdf_endpoint, certificate_id=certificate.id),
        "verify_url": _verify_url(certificate),
    }


def _pdf_response(certificate: Certificate) -> Response:
    """The PDF as a download (Content-Disposition: attachment), never cached by proxies."""
    data = certificate_pdf.render(certificate, _verify_url(certificate))
    response = Response(data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="certificate-{certificate.number}.pdf"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _certificate_or_404(certificate_id) -> Certificate:
    try:
        return certificates.certificate_for_reader(row_id(certificate_id))
    except ScopeViolation:
        abort(404)


def _field_errors(err: DomainError) -> dict[str, list[str]]:
    """Undo the refused write; field messages go next to their fields, the rest are flashed."""
    db.session.rollback()
    fields = getattr(err, "fields", None) or {}
    if not fields:
        for message in err.messages:
            flash(message, "danger")
    return fields


# --- 用户中心 → 我的证明 ---


class MyCertificatesView(BaseView):
    """我的证明 (/my/certificates/): my certificates (PDF, verification link) and
    requests with their status; 申请 to one of my groups that recorded my service;
    the platform's record summary of all my approved records."""

    route_base = "/my/certificates"
    default_view = "index"
    class_permission_name = RESOURCE_CERTIFICATE
    method_permission_name = {"index": ACTION_READ, "pdf": ACTION_READ, "apply": ACTION_WRITE,
                              "summary": ACTION_WRITE}
    base_permissions = [f"can_{ACTION_READ}", f"can_{ACTION_WRITE}"]

    def _volunteer(self):
        return volunteers.volunteer_of_user(g.user)

    def _page(self, volunteer, *, form=None, errors=None, status=200):
        page = page_arg()
        rows, more = certificates.my_certificates(volunteer, page=page)
        labels = certificates.request_status_labels()
        requests_ = [{
            "id": r.id, "group": r.group.name, "period": _period(r.period_from, r.period_to),
            "purpose": r.purpose or "", "requested": local_minute(r.created_on), "status": labels.get(r.status, r.status),
            "status_key": r.status, "reason": r.reason or "", "decided": local_minute(r.decided_on),
        } for r in certificates.my_requests(volunteer)]
        groups = certificates.certificate_groups(volunteer)
        form = form or {}
        return self.render_template(
            "certificates/my_certificates.html", title=gettext("My Certificates"),
            rows=[_certificate_row(c, pdf_endpoint="MyCertificatesView.pdf") for c in rows], page=page, more=more,
            requests=requests_, groups=[{"id": grp.id, "name": grp.name} for grp in groups],
            form={"group": form.get("group", ""), "period_from": form.get("period_from", ""),
                  "period_to": form.get("period_to", ""), "purpose": form.get("purpose", "")},
            errors=errors or {}, volunteer_no=volunteer.volunteer_no or "",
            approved_hours=_hours(volunteer.total_minutes)), status

    @expose("/")
    @has_access
    def index(self):
        volunteer = self._volunteer()
        if volunteer is None:
            return self.render_template("user_center/no_volunteer.html", title=gettext("My Certificates"))
        return self._page(volunteer)

    @expose("/apply", methods=["POST"])
    @has_access
    def apply(self):
        """申请: a pending request to the chosen group (one of those holding my records)."""
        begin_write()
        volunteer = self._volunteer()
        if volunteer is None:
            abort(404)
        chosen = row_id(request.form.get("group"))
        group = next((grp for grp in certificates.certificate_groups(volunteer) if grp.id == chosen), None)
        try:
            if request.form.get("group") and group is None:
                raise ValidationFailed(fields={"group": [gettext("Choose one of the groups that recorded your "
                                                                 "service.")]})
            start, end = certificates.parse_period(request.form.get("period_from"), request.form.get("period_to"))
            row = certificates.request_certificate(volunteer, group, period_from=start, period_to=end,
                                                   purpose=request.form.get("purpose"))
        except DomainError as err:
            errors = _field_errors(err)
            return self._page(self._volunteer(), form=request.form, errors=errors, status=400)
        db.session.commit()
        flash(gettext("Your certificate request to %(group)s has been submitted; the group will decide on it.",
                      group=row.group.name), "success")
        return redirect(url_for(".index"))

    @expose("/summary", methods=["POST"])
    @has_access
    def summary(self):
        """The platform's record summary of all my approved records (issued at once)."""
        begin_write()
        volunteer = self._volunteer()
        if volunteer is None:
            abort(404)
        try:
            certificate = certificates.issue_summary(volunteer)
        except DomainError as err:
            flash_errors(err)
            return redirect(url_for(".index"))
        db.session.commit()
        flash(gettext("Your record summary %(number)s is ready: download it below.", number=certificate.number),
              "success")
        return redirect(url_for(".index"))

    @expose("/<int:certificate_id>.pdf")
    @has_access
    def pdf(self, certificate_id):
        """The PDF, for its holder, the issuing group's admins and officers in scope; else 404."""
        return _pdf_response(_certificate_or_404(certificate_id))


# --- 团体管理 → 证明申请 ---


class GroupCertificatesView(BaseView):
    """证明申请 (/group-admin/certificates/): pending requests to the groups the user
    administers directly (出具 with person in charge, handler and contact, or 拒绝 with
    a reason), and the certificates those groups issued (PDF, 撤回 with a reason)."""

    route_base = "/group-admin/certificates"
    default_view = "index"
    class_permission_name = RESOURCE_CERTIFICATE
    method_permission_name = {"index": ACTION_WRITE, "request_page": ACTION_WRITE, "issue": ACTION_WRITE,
                              "refuse": ACTION_WRITE, "withdraw": ACTION_WRITE, "pdf": ACTION_READ}
    base_permissions = [f"can_{ACTION_READ}", f"can_{ACTION_WRITE}"]

    @expose("/")
    @has_access
    def index(self):
        scope = current_scope()
        if not (scope.everything or scope.group_ids):
            abort(404)  # volunteers hold can_write too (to ask); this page is for group admins
        page = page_arg()
        pending, more_pending = certificates.pending_requests(scope)
        issued, more_issued = certificates.issued_by(scope, page=page)
        return self.render_template(
            "certificates/group_requests.html", title=gettext("Certificate Requests"),
            pending=[{"id": r.id, "name": r.volunteer_name, "volunteer_no": r.volunteer_no or "",
                      "group": r.group.name, "period": _period(r.period_from, r.period_to),
                      "purpose": r.purpose or "", "requested": local_minute(r.created_on)} for r in pending],
            more_pending=more_pending,
            issued=[{**_certificate_row(c, pdf_endpoint="GroupCertificatesView.pdf"), "group": c.group.name}
                    for c in issued],
            page=page, more=more_issued)

    def _request(self, request_id):
        try:
            return certificates.request_for_admin(row_id(request_id))
        except ScopeViolation:
            abort(404)

    def _request_page(self, row, *, form=None, errors=None, status=200):
        records = certificates.certified_records(row.volunteer, group=row.group, period_from=row.period_from,
                                                 period_to=row.period_to)
        form = form or {}
        return self.render_template(
            "certificates/issue.html", title=gettext("Issue Certificate"),
            req={"id": row.id, "name": row.volunteer_name, "volunteer_no": row.volunteer_no or "",
                 "group": row.group.name, "period": _period(row.period_from, row.period_to),
                 "purpose": row.purpose or "", "requested": local_minute(row.created_on)},
            records=[{"project": r.project, "position": r.position, "served_on": r.served_on.isoformat(),
                      "hours": _hours(r.minutes)} for r in records[:200]],
            more_records=max(len(records) - 200, 0), record_count=len(records),
            total_hours=_hours(sum(r.minutes for r in records)),
            form={"person_in_charge": form.get("person_in_charge", ""), "handler": form.get("handler", ""),
                  "contact": form.get("contact", certificates.contact_of(row.group)),
                  "reason": form.get("reason", "")},
            errors=errors or {}), status

    @expose("/requests/<int:request_id>")
    @has_access
    def request_page(self, request_id):
        """One pending request: the records it would certify, 出具 and 拒绝."""
        return self._request_page(self._request(request_id))

    @expose("/requests/<int:request_id>/issue", methods=["POST"])
    @has_access
    def issue(self, request_id):
        begin_write()
        row = self._request(request_id)
        try:
            certificate = certificates.issue_certificate(
                row, person_in_charge=request.form.get("person_in_charge"), handler=request.form.get("handler"),
                contact=request.form.get("contact"))
        except DomainError as err:
            errors = _field_errors(err)
            return self._request_page(self._request(request_id), form=request.form, errors=errors, status=400)
        db.session.commit()
        flash(gettext("Certificate %(number)s has been issued to %(name)s.", number=certificate.number,
                      name=certificate.volunteer.real_name), "success")
        return redirect(url_for(".index"))

    @expose("/requests/<int:request_id>/refuse", methods=["POST"])
    @has_access
    def refuse(self, request_id):
        begin_write()
        row = self._request(request_id)
        try:
            certificates.refuse_request(row, request.form.get("reason"))
        except DomainError as err:
            errors = _field_errors(err)
            return self._request_page(self._request(request_id), form=request.form, errors=errors, status=400)
        db.session.commit()
        flash(gettext("The request of %(name)s has been refused.", name=row.volunteer_name), "success")
        return redirect(url_for(".index"))

    @expose("/<int:certificate_id>/withdraw", methods=["POST"])
    @has_access
    def withdraw(self, certificate_id):
        """撤回 with a reason: the certificate verifies as withdrawn from now on."""
        begin_write()
        certificate = _certificate_or_404(certificate_id)
        try:
            certificates.withdraw_certificate(certificate, request.form.get("reason"))
        except ScopeViolation:
            db.session.rollback()
            abort(404)
        except DomainError as err:
            flash_errors(err)
            return redirect(url_for(".index"))
        db.session.commit()
        flash(gettext("Certificate %(number)s has been withdrawn.", number=certificate.number), "success")
        return redirect(url_for(".index"))

    @expose("/<int:certificate_id>.pdf")
    @has_access
    def pdf(self, certificate_id):
        return _pdf_response(_certificate_or_404(certificate_id))


# --- 区域监管 → 证明管理 ---


class CertificateOversightView(BaseView):
    """证明管理 (/oversight/certificates/): the certificates of the officer's regions,
    read-only (number, masked holder, issuer, date, status), searchable by number and
    status, each valid one with 撤回 and a reason. Out-of-region ids answer 404; the
    service checks again and the audit log records the withdrawal."""

    route_base = "/oversight/certificates"
    default_view = "index"
    class_permission_name = RESOURCE_CERTIFICATE
    method_permission_name = {"index": ACTION_MODERATE, "withdraw": ACTION_MODERATE}
    base_permissions = [f"can_{ACTION_MODERATE}"]

    _STATUSES = ("", certificates.OVERSIGHT_VALID, certificates.OVERSIGHT_WITHDRAWN)

    @expose("/")
    @has_access
    def index(self):
        status = request.args.get("status", "")
        status = status if status in self._STATUSES else ""
        number = (request.args.get("number") or "").strip()[:certificates.NUMBER_LENGTH + 8]
        page = page_arg()
        rows, more = certificates.region_certificates(current_scope(), status=status, number=number, page=page)
        kinds = certificates.kind_labels()
        return self.render_template(
            "certificates/oversight.html", title=gettext("Certificate Oversight"), page=page, more=more,
            status=status, number=number,
            statuses=[("", gettext("All")), (certificates.OVERSIGHT_VALID, gettext("Valid")),
                      (certificates.OVERSIGHT_WITHDRAWN, gettext("Revoked"))],
            rows=[{"id": c.id, "number": c.number, "kind": kinds.get(c.kind, c.kind), "issuer": c.issuer,
                   "holder": volunteers.masked_name(c.volunteer.real_name if c.volunteer else ""),
                   "issued_on": c.issued_on.isoformat(), "withdrawn": c.is_withdrawn,
                   "withdrawn_on": local_day(c.withdrawn_on), "withdraw_reason": c.withdraw_reason or ""}
                  for c in rows])

    @expose("/<int:certificate_id>/withdraw", methods=["POST"])
    @has_access
    def withdraw(self, certificate_id):
        """撤回 with a reason: the certificate verifies as withdrawn from now on."""
        begin_write()

        def action():
            certificate = certificates.certificate_for_officer(row_id(certificate_id))
            certificates.withdraw_certificate(certificate, request.form.get("reason"))
            return gettext("Certificate %(number)s has been withdrawn.", number=certificate.number)

        return perform(action, url_for(".index"))


# --- Public verification ---


def _verification_context(result: certificates.Verification) -> dict:
    labels = {certificates.VALID: gettext("Valid"), certificates.WITHDRAWN: gettext("Revoked"),
              certificates.UNKNOWN: gettext("Does not exist")}
    details = dict(result.details) if result.details else None
    if details:
        details["kind"] = certificates.kind_labels().get(details["kind"], details["kind"])
    return {"number": result.number, "status": result.status, "status_label": labels[result.status],
            "details": details}


class CertificateVerifyView(BaseView):
    """/verify/<number>[?t=<token>]: the public check a certificate's QR code opens.

    Deliberately without ``@has_access`` (whoever scans it is usually not signed in;
    see CardVerifyView). Without the right token it says only 有效 / 已撤回 / 不存在;
    lookups are rate-limited per client address.
    """

    route_base = "/verify"
    base_permissions = []

    @expose("/<string:number>")
    def verify(self, number):
        try:
            result = certificates.verify(number, request.args.get("t"))
        except certificates.TooManyLookups as err:
            return self.render_template("certificates/verify.html", title=gettext("Certificate Verification"),
                                        refused=str(err)), 429
        return self.render_template("certificates/verify.html", title=gettext("Certificate Verification"),
                                    refused=None, **_verification_context(result)), \
            404 if result.status == certificates.UNKNOWN else 200


# --- REST API ---


class ReadableCertificate(BaseFilter):
    """FAB filter: certificates the caller may read (``certificates.readable_clause``).
    ``arg_name`` stays None: not offered as a user filter."""

    name = "Readable"

    def apply(self, query, value):
        return query.filter(certificates.readable_clause(current_scope()))


class CertificateApi(ScopedApiMixin, ModelRestApi):
    """/api/v1/certificate/: certificates the caller may read (holder, the issuing
    group's admins, officers in region), read-only; and the public
    ``GET /api/v1/certificate/verify/<number>?t=<token>``."""

    resource_name = "certificate"
    openapi_spec_tag = "Certificates"
    datamodel = ScopedInterface(Certificate)
    class_permission_name = RESOURCE_CERTIFICATE
    method_permission_name = {**READ_ONLY, "verify": ACTION_VERIFY}
    include_route_methods = {"get", "get_list", "info", "verify"}
    base_filters = [["id", ReadableCertificate, None]]
    list_columns = show_columns = [
        "id", "number", "kind", "volunteer.real_name", "volunteer.volunteer_no", "group.id", "group.name", "issuer",
        "person_in_charge", "handler", "contact", "minutes", "content", "period_from", "period_to", "issued_on",
        "is_withdrawn", "withdrawn_on", "withdraw_reason", "snapshot_hash", "region_code"]
    list_select_columns = show_select_columns = [c for c in list_columns if c != "region_code"] + ["region_path"]
    order_columns = ["id", "issued_on"]
    base_order = ("issued_on", "desc")
    search_columns = ["number", "kind", "issued_on", "is_withdrawn"]

    @api_expose("/verify/<string:number>", methods=["GET"])
    @protect()
    @safe
    def verify(self, number):
        """Verify a certificate by number (public; rate-limited per address).
        ---
        get:
          summary: Verify a certificate (志愿服务记录证明) by its number
          parameters:
          - in: path
            name: number
            schema: {type: string}
          - in: query
            name: t
            description: The verification token printed in the certificate's QR code
            schema: {type: string}
          responses:
            200:
              description: >-
                The status (valid or withdrawn); with the right token also what the
                certificate certifies and whether its stored snapshot still matches its hash
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      number: {type: string}
                      status: {type: string, enum: [valid, withdrawn]}
                      details:
                        type: object
                        nullable: true
                        properties:
                          holder: {type: string, description: masked name}
                          volunteer_no: {type: string, description: masked}
                          hours: {type: string}
                          issuer: {type: string}
                          issued_on: {type: string, format: date}
                          kind: {type: string, enum: [group, summary]}
                          period_from: {type: string, format: date, nullable: true}
                          period_to: {type: string, format: date, nullable: true}
                          snapshot_matches: {type: boolean}
                          withdrawn_on: {type: string, format: date, nullable: true}
            404:
              description: 'No certificate has this number: {"number": "…", "status": "unknown"}'
            429:
              description: Too many lookups from this address
        """
        try:
            result = certificates.verify(number, request.args.get("t"))
        except certificates.TooManyLookups as err:
            return self.response(429, message=str(err))
        code = 404 if result.status == certificates.UNKNOWN else 200
        return self.response(code, number=result.number, status=result.status, details=result.details)


def register(appbuilder: AppBuilder) -> None:
    """Add this area's pages and menu entries."""
    appbuilder.add_view(MyCertificatesView, MENU_MY_CERTIFICATES, href="/my/certificates/", icon="fa-certificate",
                        label=_("My Certificates"), **menus.USER_CENTER)
    appbuilder.add_view(GroupCertificatesView, MENU_CERTIFICATE_REQUESTS, href="/group-admin/certificates/",
                        icon="fa-certificate", label=_("Certificate Requests"), **menus.GROUP_ADMIN)
    appbuilder.add_view(CertificateOversightView, MENU_CERTIFICATE_OVERSIGHT, href="/oversight/certificates/",
                        icon="fa-certificate", label=_("Certificate Oversight"), **menus.REGION_OVERSIGHT)
    appbuilder.add_view_no_menu(CertificateVerifyView)
    appbuilder.add_api(CertificateApi)
