"""Approve / reject, shared by the review pages and their REST endpoints: 注册审核,
下级团体审核 / 团体审核 and 入团审核 all decide pending rows the same way.

A page ticks rows and POSTs them with a decision and a reason; the API decides one
row. Either way every id is loaded *inside* the reviewer's clause (an id outside it,
or unknown, answers 404 and nothing is written), the service checks again and
decides all or none, and the view commits.
"""
from __future__ import annotations

import json
from typing import Callable

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder.api import expose as api_expose, protect, safe
from flask_babel import gettext
from sqlalchemy import select

from app.extensions import db
from app.security.scope import row_id
from app.services.errors import DomainError, ScopeViolation
from app.views.pages import flash_errors

APPROVE, REJECT = "approve", "reject"


def decide_ticked(model, clause, decide: Callable, *, none_selected: str,
                  done: Callable[[str, int], str], back: str | None = None):
    """Handle a review page's POST: the ticked ``rowid`` rows of ``model`` that match
    ``clause`` go to ``decide(items, decision, reason)``; flash ``done(decision, n)``.
    Redirects back to ``back`` (the page's ``index`` by default)."""
    back = back or url_for(".index")
    raw = request.form.getlist("rowid")
    if not raw:
        flash(none_selected, "warning")
        return redirect(back)
    ids = {row_id(pk) for pk in raw}
    if None in ids:
        abort(404)
    items = db.session.scalars(select(model).where(model.id.in_(ids), clause)).all()
    if len(items) != len(ids):
        abort(404)
    decision = request.form.get("decision", "")
    try:
        decided = decide(items, decision, request.form.get("reason"))
    except ScopeViolation:
        db.session.rollback()
        abort(404)
    except DomainError as err:
        flash_errors(err)
        return redirect(back)
    db.session.commit()
    flash(done(decision, len(decided)), "success")
    return redirect(back)


_REVIEW_DOC = """{summary}
    ---
    post:
      summary: {summary}
      parameters:
      - in: path
        schema:
          type: integer
        name: pk
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              properties:
                decision:
                  type: string
                  enum: [approve, reject]
                reason:
                  type: string
      responses:
        200:
          description: Decided
          content:
            application/json:
              schema: {result_schema}
        400:
          $ref: '#/components/responses/400'
        401:
          $ref: '#/components/responses/401'
        404:
          $ref: '#/components/responses/404'
    """


def review_endpoint(decide: Callable, result: Callable[[object], dict], *, summary: str,
                    result_properties: dict[str, dict]):
    """A ``POST /api/v1/<resource>/<id>/review`` method for a ModelRestApi:
    ``{"decision": "approve" | "reject", "reason": "…"}`` → ``decide([item], decision, reason)``.

    The row is loaded with the API's scope filter (404 outside it); a refusal is 400
    with the service's message; success answers ``result(item)``. Bind it as the
    API's ``review`` attribute: FAB's ``protect()`` maps the permission by the
    function's name (``can_review`` on the API's resource). ``result_properties``
    describes ``result``'s keys in the OpenAPI spec (JSON Schema per key).
    """

    def review(self, pk):
        item = self.datamodel.get(pk, self._base_filters)
        if item is None:
            return self.response_404()
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("reason") or "", str) \
                or not isinstance(body.get("decision") or "", str):
            return self.response_400(message=gettext('Send {"decision": "approve" | "reject", "reason": "…"}.'))
        try:
            decide([item], body.get("decision") or "", body.get("reason"))
        except ScopeViolation:
            db.session.rollback()
            return self.response_404()
        except DomainError as err:
            db.session.rollback()
            return self.response_400(message="; ".join(err.messages))
        db.session.commit()
        return self.response(200, **result(item))

    # FAB reads the OpenAPI spec from the docstring; JSON is YAML too.
    result_schema = json.dumps({"type": "object", "properties": result_properties})
    review.__doc__ = _REVIEW_DOC.format(summary=summary, result_schema=result_schema)
    return api_expose("/<int:pk>/review", methods=("POST",))(protect()(safe(review)))
