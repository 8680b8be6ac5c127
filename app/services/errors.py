"""The app's exceptions, mapped once: ScopeViolation -> 404, DomainError -> flash / 400.

They subclass werkzeug's HTTP exceptions because FAB's ``@safe`` turns any other
exception raised in a CRUD hook into a 500.
"""
from werkzeug.exceptions import BadRequest, NotFound


class ScopeViolation(NotFound):
    """The object lies outside the current user's scope (answered as 404: no disclosure)."""

    def __str__(self) -> str:
        # FAB flashes str(exc) of errors raised in CRUD hooks: say it in the user's words.
        from flask_babel import gettext

        return gettext("The record does not exist or lies outside your scope.")


class DomainError(BadRequest):
    """A rule refused the operation; ``messages`` are translated, user-facing."""

    def __init__(self, *messages: str):
        self.messages = [str(m) for m in messages]
        super().__init__(description="; ".join(self.messages))

    def __str__(self) -> str:
        return "; ".join(self.messages)


class ValidationFailed(DomainError):
    """Input failed validation; one message per problem.

    ``fields`` optionally maps each bad input field to its messages (forms show
    them next to the field, the API returns them as ``{"message": {field: [...]}}``);
    without positional messages, ``messages`` lists every field message.
    """

    def __init__(self, *messages: str, fields: dict[str, list[str]] | None = None):
        self.fields = {name: [str(m) for m in msgs] for name, msgs in (fields or {}).items() if msgs}
        if not messages:
            messages = tuple(m for msgs in self.fields.values() for m in msgs)
        super().__init__(*messages)
