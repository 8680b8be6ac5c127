"""运营控制台 → 运行参数 and 节假日: the settings stored over config.py's defaults
(``app/services/settings.py`` checks and writes them) and the holiday table the
working-day clock reads (``app/services/workdays.py``)."""
from __future__ import annotations

from datetime import date

from flask import abort, flash, redirect, url_for
from flask_admin import BaseView, expose
from flask_babel import gettext
from flask_babel import lazy_gettext as _
from flask_wtf import FlaskForm
from sqlalchemy.exc import IntegrityError
from wtforms import TextAreaField

from app.console import ConsoleAccess, EditView
from app.extensions import db
from app.models import Holiday
from app.services import settings
from app.services.errors import DomainError


class SettingForm(FlaskForm):
    value = TextAreaField(_("Value (JSON)"))


class ResetForm(FlaskForm):
    """Only the CSRF token: 恢复默认 is a POST."""


class SettingsView(ConsoleAccess, BaseView):
    """运行参数: every setting with its value, its default and whether it is overridden;
    编辑 checks and saves the value, 恢复默认 deletes the override."""

    def _row(self, name: str) -> dict:
        if name not in settings.REGISTRY:
            abort(404)
        return next(row for row in settings.listing() if row["name"] == name)

    @expose("/")
    def index(self):
        return self.render("console/settings.html", rows=settings.listing(), reset_form=ResetForm(),
                           as_json=settings.as_json)

    @expose("/edit/<key>", methods=("GET", "POST"))
    def edit(self, key):  # not "name": Flask-Admin passes the view's name to _handle_view
        name = key
        row = self._row(name)
        form = SettingForm()
        errors = []
        if form.validate_on_submit():
            try:
                settings.set_value(name, form.value.data)
                db.session.commit()
            except DomainError as err:
                db.session.rollback()
                errors = err.messages
            except IntegrityError:  # another operator saved the same setting at the same moment
                db.session.rollback()
                errors = [gettext("The setting was changed at the same time; please try again.")]
            else:
                flash(gettext("%(label)s saved.", label=row["label"]), "success")
                return redirect(url_for(".index"))
        elif form.is_submitted():
            errors = [message for messages in form.errors.values() for message in messages]
        else:
            form.value.data = settings.as_json(row["value"])
        return self.render("console/settings_edit.html", row=row, form=form, errors=errors,
                           as_json=settings.as_json)

    @expose("/reset/<key>", methods=("POST",))
    def reset(self, key):
        name = key
        row = self._row(name)
        if not ResetForm().validate_on_submit():
            flash(gettext("The form has expired; please try again."), "error")
            return redirect(url_for(".index"))
        try:
            restored = settings.reset(name)
        except DomainError as err:  # the default disagrees with another setting
            db.session.rollback()
            for message in err.messages:
                flash(message, "error")
            return redirect(url_for(".index"))
        if restored:
            db.session.commit()
            flash(gettext("%(label)s restored to its default.", label=row["label"]), "success")
        return redirect(url_for(".index"))


class HolidayView(EditView):
    """节假日: working-day exceptions (a holiday, or a make-up working day); a row for a
    day wins over chinesecalendar and, past its data, over Monday to Friday. A day already
    in the table is refused by Flask-Admin's unique check on the key (已经存在)."""

    column_list = ("day", "is_workday", "name")
    column_default_sort = ("day", True)
    column_filters = ("day", "is_workday")
    column_searchable_list = ("name",)
    form_columns = ("day", "is_workday", "name")
    column_labels = {"day": _("Date"), "is_workday": _("Working day"), "name": _("Name")}
    column_descriptions = {"is_workday": _("Ticked: a make-up working day; not ticked: a day off.")}

    def get_one(self, id):
        try:
            day = date.fromisoformat(str(id))
        except ValueError:
            return None
        return db.session.get(Holiday, day)


def add_views(admin, url: str) -> None:
    """Register 运行参数 and 节假日 on the console ``admin`` mounted at ``url``."""
    category = _("Settings")
    admin.add_view(SettingsView(name=_("Settings"), endpoint="console_settings", url=f"{url}/settings",
                                category=category))
    admin.add_view(HolidayView(Holiday, db, name=_("Holidays"), endpoint="console_holiday",
                               url=f"{url}/holiday", category=category))
