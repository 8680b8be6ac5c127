"""Small helpers shared by the custom (non-ModelView) pages: paging, running a POST's
service call, and showing its refusals."""
from __future__ import annotations

from typing import Callable

from flask import abort, flash, redirect, request

from app.extensions import db
from app.services.errors import DomainError, ScopeViolation, ValidationFailed

MAX_PAGE_DIGITS = 5  # ?page= beyond 99,999 reads as the first page


def page_arg() -> int:
    """The ``?page=`` number (0-based); anything but a few ASCII digits reads as 0."""
    page = request.args.get("page", "0")
    return int(page) if page.isascii() and page.isdigit() and len(page) <= MAX_PAGE_DIGITS else 0


def flash_errors(err: DomainError) -> None:
    """Undo the refused write (nothing half-written) and flash each of its messages."""
    db.session.rollback()
    for message in err.messages:
        flash(message, "danger")


def perform(action: Callable[[], str], back: str):
    """A POST handler's core: run ``action`` (a service call returning the message to
    flash); commit on success, 404 when it reaches out of scope, flash the refusal and
    write nothing when a rule says no. Redirect to ``back`` either way."""
    try:
        done = action()
    except ScopeViolation:
        db.session.rollback()
        abort(404)
    except DomainError as err:
        flash_errors(err)
    else:
        db.session.commit()
        flash(done, "success")
    return redirect(back)


def show_field_errors(form, err: ValidationFailed) -> list[str]:
    """Put each field's messages next to the WTForms field; return those without one."""
    general = list(err.messages) if not err.fields else []
    for name, messages in err.fields.items():
        field = getattr(form, name, None)
        if field is None:
            general.extend(messages)
        else:
            field.errors = list(field.errors or []) + messages
    return general
