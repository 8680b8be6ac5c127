"""Small helpers shared by the custom (non-ModelView) pages: paging and error flashes."""
from __future__ import annotations

from flask import flash, request

from app.extensions import db
from app.services.errors import DomainError

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
