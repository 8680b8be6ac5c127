"""Finding a volunteer by ID number: exact match through the blind index only.

ID numbers are stored encrypted (DESIGN.md §5); the only way to search them is to
compute ``pii.blind_index`` of the number typed in and compare it with ``id_blind``.
A partial number therefore finds nothing, by design, and no ID column is ever
searched with LIKE. The volunteer list offers exactly two searches on identity:
证件号码 (this filter on ``id_blind``) and the volunteer number, both "equal to".
"""
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.filters import FilterEqual, SQLAFilterConverter
from flask_babel import lazy_gettext as _
from sqlalchemy import and_, false, or_

from app.models import IdType
from app.security import pii
from app.security.scoped_views import ScopedInterface


class IdNumberEqual(BaseFilter):
    """``id_blind`` equals the blind index of the number searched, whatever its ID type."""

    name = _("Equal to")
    arg_name = None  # not offered as a REST filter

    def apply(self, query, value):
        value = pii.normalize_id(str(value or ""))
        if not value:
            return query.filter(false())
        model = self.model
        return query.filter(or_(*[
            and_(model.id_type == kind.value, model.id_blind == pii.blind_index(kind.value, value))
            for kind in IdType
        ]))


class VolunteerFilterConverter(SQLAFilterConverter):
    """Only exact filters on identity columns: 证件号码 through the blind index, the
    volunteer number by equality; ID and phone columns (masked or not) get none."""

    EXACT = {"id_blind": [IdNumberEqual], "volunteer_no": [FilterEqual]}
    UNSEARCHABLE = ("id_number_enc", "id_number_masked", "phone_enc", "phone_masked",
                    "guardian_phone_enc", "guardian_phone_masked")

    def convert(self, col_name):
        if col_name in self.EXACT:
            return [flt(col_name, self.datamodel) for flt in self.EXACT[col_name]]
        if col_name in self.UNSEARCHABLE:
            return None
        return super().convert(col_name)


class VolunteerInterface(ScopedInterface):
    """ScopedInterface for volunteers, with the exact-only identity filters."""

    filter_converter_class = VolunteerFilterConverter
