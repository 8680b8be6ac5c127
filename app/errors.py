"""Error pages: translated, in the portal's layout; JSON for the API. Never a bare 500."""
from flask import current_app, g, jsonify, render_template, request
from flask_babel import gettext
from werkzeug.exceptions import HTTPException

_MESSAGES = {
    400: lambda: gettext("The request could not be understood. Please check what you entered."),
    403: lambda: gettext("You do not have permission to do this."),
    404: lambda: gettext("The page does not exist, or it lies outside your scope."),
    405: lambda: gettext("This operation is not allowed here."),
    413: lambda: gettext("What you sent is too large: at most %(mb)s MB can be sent at once.",
                         mb=(current_app.config.get("MAX_CONTENT_LENGTH") or 0) // (1024 * 1024)),
    429: lambda: gettext("Too many requests. Please wait a moment and try again."),
    500: lambda: gettext("Something went wrong on our side. Please try again later."),
}


def _respond(code: int, detail: str | None = None):
    message = _MESSAGES.get(code, _MESSAGES[500])()
    if request.path.startswith("/api/"):
        return jsonify(message=detail or message), code
    appbuilder = current_app.appbuilder
    if "user" not in g:
        # Refused before FAB's request hook set it (e.g. a missing CSRF token on a
        # signed-in POST): the navbar needs it, or the error page itself fails.
        from flask_login import current_user

        g.user = current_user
    return render_template("error.html", code=code, message=message, appbuilder=appbuilder,
                           base_template=appbuilder.base_template), code


def register(app) -> None:
    """Install the handlers on ``app``."""

    @app.errorhandler(HTTPException)
    def http_error(err):
        if err.code is None or err.code < 400:
            return err
        detail = err.description if err.code == 400 and getattr(err, "messages", None) else None
        return _respond(err.code, detail)

    @app.errorhandler(OverflowError)
    def too_large(err):
        # A number past the database's integer range in a URL or form: no such row.
        from app.extensions import db

        db.session.rollback()
        return _respond(404)

    @app.errorhandler(Exception)
    def unexpected(err):
        app.logger.exception("unhandled error")
        return _respond(500)
