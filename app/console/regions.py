"""运营控制台 → 行政区划 (/console/region/): the region reference data (issue #9).

The list filters by level, parent code, code and name and searches codes and names;
names and populations are edited inline. New regions are streets (9 digits, under a
county) and communities (12 digits, under a street) only, checked by
``app/services/regions.py``; the national list keeps its codes and parents (the edit
form changes name and population only; ``flask regions move`` moves a region). A
region with anything at or below it is not deleted. ``/console/region/import/`` adds
streets and communities from a CSV file, all or nothing.
"""
from __future__ import annotations

from flask import flash, url_for
from flask_admin import expose
from flask_admin.contrib.sqla.filters import (
    BaseSQLAFilter,
    FilterEqual,
    FilterLike,
    IntEqualFilter,
)
from flask_babel import gettext
from flask_babel import lazy_gettext as _
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from wtforms import StringField
from wtforms.validators import ValidationError

from app.console import EditView
from app.extensions import db
from app.models import Region
from app.security.scope import under
from app.services import regions
from app.services.errors import DomainError

IMPORT_MAX_BYTES = 2 * 1024 * 1024


def _population_check(form, field):
    """Form validator: the population rule of ``regions.parse_population``."""
    try:
        regions.parse_population(field.data)
    except DomainError as err:
        raise ValidationError(str(err)) from None


class FilterParentCode(BaseSQLAFilter):
    """Regions directly below the region with the given code."""

    def apply(self, query, value, alias=None):
        parent = select(Region.id).where(Region.code == value.strip()).scalar_subquery()
        return query.filter(Region.parent_id == parent)

    def operation(self):
        return gettext("equals")


class FilterWithin(BaseSQLAFilter):
    """The region with the given code and everything below it (the path range)."""

    def apply(self, query, value, alias=None):
        region = regions.region_by_code(value)
        if region is None:
            return query.filter(Region.id.is_(None))
        return query.filter(under(Region.path, region.path))

    def operation(self):
        return gettext("equals")


class RegionCreateForm(FlaskForm):
    """A new street or community: its parent by code (the national list is too long for a
    drop-down); the service checks everything."""

    parent_code = StringField(_("Parent code"),
                              description=_("A county's code for a street, a street's for a community."))
    code = StringField(_("Code"), description=_("9 digits for a street, 12 for a community."))
    name = StringField(_("Name"))
    population = StringField(_("Population"), validators=[_population_check])


class RegionEditForm(FlaskForm):
    """Name and population; code and parent are shown, never written (``populate_obj``)."""

    code = StringField(_("Code"), render_kw={"readonly": True})
    parent_code = StringField(_("Parent code"), render_kw={"readonly": True})
    name = StringField(_("Name"))
    population = StringField(_("Population"), validators=[_population_check])

    def populate_obj(self, obj):
        obj.name = self.name.data
        obj.population = self.population.data


class RegionImportForm(FlaskForm):
    file = FileField(_("CSV file"), validators=[FileRequired()])


class RegionView(EditView):
    """行政区划: see the module docstring."""

    list_template = "console/region_list.html"
    column_default_sort = "code"
    column_list = ("code", "name", "level", "parent", "population", "path")
    column_details_list = ("id", "code", "name", "level", "parent", "population", "path")
    column_labels = {"code": _("Code"), "name": _("Name"), "level": _("Level"), "parent": _("Parent region"),
                     "population": _("Population"), "path": _("Region path")}
    column_formatters = {
        "level": lambda v, c, m, p: Region.LEVEL_LABELS[m.level],
        "parent": lambda v, c, m, p: f"{m.parent.name} ({m.parent.code})" if m.parent else "",
    }
    column_searchable_list = ("code", "name")
    column_filters = (
        IntEqualFilter(Region.level, _("Level"), options=[(str(k), v) for k, v in Region.LEVEL_LABELS.items()]),
        FilterParentCode(Region.parent_id, _("Parent code")),
        FilterWithin(Region.path, _("Within region (code)")),
        FilterEqual(Region.code, _("Code")),
        FilterLike(Region.name, _("Name")),
    )
    column_editable_list = ("name", "population")
    form_overrides = {"population": StringField}
    form_args = {"population": {"validators": [_population_check]}}
    page_size = 50

    def get_create_form(self):
        return RegionCreateForm

    def get_edit_form(self):
        return RegionEditForm

    def on_form_prefill(self, form, id):
        region = self.get_one(id)
        if region is not None and "parent_code" in form:
            form.parent_code.data = region.parent.code if region.parent else ""

    def handle_view_exception(self, exc):
        if isinstance(exc, DomainError):
            for message in exc.messages:
                flash(message, "error")
            return True
        return super().handle_view_exception(exc)

    def create_model(self, form):
        return self.commit_or_flash(
            lambda: regions.add_region(form.parent_code.data, form.code.data, form.name.data, form.population.data),
            # the same code added at the same moment by someone else
            conflict=gettext("Region code %(code)s exists already.", code=form.code.data))

    def on_model_change(self, form, model, is_created):
        # The inline list form and the edit form both land here; the service checks.
        regions.clean_region_details(model)

    def delete_model(self, model):
        return bool(self.commit_or_flash(
            lambda: regions.delete_region(model) or True,
            # a row that refers to the region without storing its path
            conflict=gettext("%(name)s (%(code)s) is still in use and cannot be deleted.",
                             name=model.name, code=model.code)))

    @expose("/ajax/update/", methods=("POST",))
    def ajax_update(self):
        # Flask-Admin answers a refused inline edit with 500; it is the user's input: 400.
        result = super().ajax_update()
        if isinstance(result, tuple) and result[1] == 500:
            return result[0], 400
        return result

    @expose("/import/", methods=("GET", "POST"))
    def import_view(self):
        """Upload a CSV of streets and communities; list every row's errors, or what was added."""
        form = RegionImportForm()
        result = None
        if form.validate_on_submit():
            data = form.file.data.read(IMPORT_MAX_BYTES + 1)
            if len(data) > IMPORT_MAX_BYTES:
                flash(gettext("The file is larger than %(n)s MB.", n=IMPORT_MAX_BYTES // (1024 * 1024)), "error")
            else:
                try:
                    result = regions.import_regions(data)
                    if result.ok:
                        db.session.commit()
                        flash(gettext("%(n)s regions added.", n=len(result.added)), "success")
                    else:
                        db.session.rollback()
                        flash(gettext("Nothing was added: correct the rows below and upload the file again."),
                              "error")
                except DomainError as err:
                    db.session.rollback()
                    self.handle_view_exception(err)
                except IntegrityError:  # a code of the file added meanwhile by someone else
                    db.session.rollback()
                    result = None
                    flash(gettext("Nothing was added: a region of the file was added meanwhile; "
                                  "upload the file again."), "error")
        return self.render("console/region_import.html", form=form, result=result,
                           list_url=url_for(".index_view"), columns=Markup("code,name,parent_code,population"))


def add_views(admin, url: str) -> None:
    """Register 行政区划 on the console ``admin`` mounted at ``url``."""
    admin.add_view(RegionView(Region, db, name=_("Regions"), endpoint="console_region", url=f"{url}/region"))
