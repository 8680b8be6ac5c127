"""app/services/rosters.py without HTTP: identity lookup, header detection, scope of
reading a roster, and the all-or-nothing apply of an import."""
from __future__ import annotations

import contextlib
import io
import json

import pytest
from flask import g
from openpyxl import Workbook
from sqlalchemy import func, select

from app.demo import BEISHUDIAN_TEAM, QINGPING_TEAM
from app.extensions import db
from app.models import Membership, ReviewStatus, RosterImport, Volunteer, VolunteerGroup
from app.security import pii
from app.services import rosters
from app.services.errors import DomainError, ScopeViolation


@contextlib.contextmanager
def as_user(app, username):
    """A request context signed in as ``username`` (services read g.user)."""
    with app.test_request_context():
        g.user = app.appbuilder.sm.find_user(username=username)
        yield
        db.session.rollback()


def _group(name):
    return db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.name == name))


def _volunteer(name):
    return db.session.scalar(select(Volunteer).where(Volunteer.real_name == name))


def test_find_approved_volunteer__exact_name_and_number(app):
    with app.app_context():
        volunteer = _volunteer("李明华")
        plain = pii.decrypt(volunteer.id_number_enc)
        spaced = " ".join([plain[:6], plain[6:14], plain[14:].lower()])
        assert rosters.find_approved_volunteer("李明华", "resident", spaced) == volunteer
        assert rosters.find_approved_volunteer(" 李 明华 ", "resident", plain) == volunteer
        assert rosters.find_approved_volunteer("李明", "resident", plain) is None
        assert rosters.find_approved_volunteer("李明华", "passport", plain) is None
        assert rosters.find_approved_volunteer("李明华", "resident", plain[:-1]) is None
        assert rosters.find_approved_volunteer("", "resident", plain) is None
        volunteer.status = ReviewStatus.SUSPENDED
        assert rosters.find_approved_volunteer("李明华", "resident", plain) is None
        db.session.rollback()


@pytest.mark.parametrize("rows, expected", [
    ([("姓名", "证件号码")], (0, {"name": 0, "id_number": 1})),
    ([("名单",), (), ("序号", "真实姓名", "证件类型", "身份证号码")],
     (2, {"name": 1, "id_type": 2, "id_number": 3})),
    ([(" 姓 名 ", "身份证号")], (0, {"name": 0, "id_number": 1})),
    ([("Real name", "ID number", "ID type")], (0, {"name": 0, "id_number": 1, "id_type": 2})),
    ([("姓名", "手机")], None),
])
def test_find_header__aliases_and_title_rows(rows, expected):
    found = rosters._find_header(rows)
    assert (found[:2] if found else None) == expected


def test_cell_text__numbers_from_excel():
    assert rosters._cell_text(410202199001011234) == "410202199001011234"
    assert rosters._cell_text(12.0) == "12"
    assert rosters._cell_text(None) == ""


def test_ensure_reads_roster__member_is_not_enough(app):
    with app.app_context():
        beishudian, qingping = _group(BEISHUDIAN_TEAM), _group(QINGPING_TEAM)
    for username, group, allowed in (("vol_longting", beishudian, False),
                                     ("longting_team_admin", beishudian, True),
                                     ("longting_corps_admin", beishudian, True),
                                     ("longting_officer", beishudian, True),
                                     ("longting_officer", qingping, False),
                                     ("kaifeng_honors", beishudian, False),
                                     ("admin", qingping, True)):
        with as_user(app, username):
            group = db.session.get(VolunteerGroup, group.id)
            if allowed:
                rosters.ensure_reads_roster(group)
            else:
                with pytest.raises(ScopeViolation):
                    rosters.ensure_reads_roster(group)


def test_administered_groups__direct_only(app):
    with as_user(app, "longting_corps_admin"):
        assert [gr.name for gr in rosters.administered_groups()] == ["龙亭区志愿服务总队"]
    with as_user(app, "longting_officer"):
        assert rosters.administered_groups() == []


def _file(rows) -> io.BytesIO:
    workbook = Workbook()
    workbook.active.append(["姓名", "证件号码"])
    for row in rows:
        workbook.active.append(list(row))
    out = io.BytesIO()
    workbook.save(out)
    out.seek(0)
    return out


def _non_members(group, n):
    members = set(db.session.scalars(select(Membership.volunteer_id).where(Membership.group_id == group.id)))
    found = [v for v in db.session.scalars(select(Volunteer).where(
        Volunteer.status == ReviewStatus.APPROVED, Volunteer.id_type == "resident").order_by(Volunteer.id))
        if v.id not in members]
    return found[:n]


def test_check_roster_file__stores_masked_ids_and_flags_numeric_cells(app):
    with as_user(app, "longting_team_admin"):
        group = _group(BEISHUDIAN_TEAM)
        first, second = [v for v in _non_members(group, 20) if pii.decrypt(v.id_number_enc)[-1] != "X"][:2]
        plain, numeric = pii.decrypt(first.id_number_enc), pii.decrypt(second.id_number_enc)
        batch = rosters.check_roster_file(group, "a.xlsx", _file(
            [(first.real_name, plain), (second.real_name, int(numeric))]))
        rows = json.loads(batch.rows_json)
        assert rows[0] == {"row": 2, "name": first.real_name, "id_type": "resident",
                           "id_masked": pii.mask_id(plain), "outcome": "ok", "volunteer_id": first.id,
                           "errors": []}
        # Excel keeps 15 significant digits: the number cell lost its tail.
        assert rows[1]["outcome"] == "error" and rows[1]["errors"][0]["reason"] == "id_as_number"
        assert (batch.total_rows, batch.valid_rows, batch.group_path) == (2, 1, group.group_path)
        assert plain not in batch.rows_json and numeric not in batch.rows_json


def test_apply_roster_import__all_or_nothing(app, monkeypatch):
    with as_user(app, "longting_team_admin"):
        group = _group(BEISHUDIAN_TEAM)
        people = _non_members(group, 3)
        batch = rosters.check_roster_file(group, "a.xlsx", _file(
            [(v.real_name, pii.decrypt(v.id_number_enc)) for v in people]))
        db.session.commit()
        before = db.session.scalar(select(func.count()).select_from(Membership))
        calls = []
        real_admit = rosters._admit

        def failing_admit(*args):
            calls.append(args)
            if len(calls) == 3:
                raise RuntimeError("disk full")
            return real_admit(*args)

        monkeypatch.setattr(rosters, "_admit", failing_admit)
        with pytest.raises(RuntimeError):
            rosters.apply_roster_import(batch)
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(Membership)) == before
        assert db.session.get(RosterImport, batch.id).applied_on is None
        monkeypatch.setattr(rosters, "_admit", real_admit)
        assert rosters.apply_roster_import(db.session.get(RosterImport, batch.id)) == 3
        with pytest.raises(DomainError):
            rosters.apply_roster_import(db.session.get(RosterImport, batch.id))


def test_remove_members__all_checked_before_any_change(app):
    with as_user(app, "longting_team_admin"):
        own = db.session.scalar(select(Membership).where(
            Membership.group_id == _group(BEISHUDIAN_TEAM).id, Membership.status == "active").limit(1))
        other = db.session.scalar(select(Membership).where(
            Membership.group_id == _group(QINGPING_TEAM).id).limit(1))
        with pytest.raises(ScopeViolation):
            rosters.remove_members([own, other])
        assert own.status == "active"
        assert rosters.remove_members([own]) == 1
        assert own.status == "removed" and own.decided_by_fk == g.user.id


def test_reason_text__codes_translate():
    from flask import Flask
    from flask_babel import Babel

    app = Flask(__name__)
    Babel(app)
    with app.test_request_context():
        assert rosters.reason_text("duplicate:7") == "Same ID number as row 7."
        assert rosters.reason_text("no_match") == rosters.no_match_message()
