"""转移接续, records in and out (issue 7 item 4, second half): the volunteer's JSON/CSV
download (docs/record-format.md), 区域监管 → 服务记录导入 (upload, per-row check, preview,
确认导入, error report), the ``flask records`` commands, and the rest of the app living
with records that have no project or group here (source ``transfer_in``).

Demo facts used: vol_longting (李明华) lives in 龙亭区 (longting_officer, kaifeng_officer,
henan_officer); shunhe_officer's 顺河回族区 does not hold them; vol_zhengzhou (刘建国) has
records of a 郑州 project (region 410105, inside henan_officer's 河南省 only), one of them
pending. A record's service region must lie inside the importing officer's region.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import re
from datetime import date, datetime, time, timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from flask import g
from sqlalchemy import event, func, select, update

from app.extensions import db
from app.models import (
    AuditEvent, Certificate, RecordImport, RecordSource, RecordStatus, Region, ServiceRecord, User, Volunteer,
    VolunteerDay, VolunteerGroup,
)
from app.services import hours, record_exchange
from app.services.clock import today
from app.services.volunteers import star_level
from tests.conftest import login
from tests.integration._hours_helpers import acting, volunteer_of

IMPORT = "/oversight/record-import/"
FOREIGN = "henan-legacy"
ZHENGZHOU_JINSHUI = "410105"
LONGTING = "410202"
BOOKSTORE_TEAM = "北书店街道社区志愿服务队"
CULTURE_TEAM = "龙亭区文化馆志愿服务队"
ROOT = Path(__file__).resolve().parents[2]

_ids = itertools.count(1)


# --- Helpers ---


def _vol(app, username: str) -> SimpleNamespace:
    with app.app_context():
        v = volunteer_of(username)
        return SimpleNamespace(id=v.id, no=v.volunteer_no, name=v.real_name, birth=v.birth_date,
                               region_path=v.region_path, user_id=v.user_id)


def _free_days(app, volunteer_id: int, n: int, *, back: int = 400) -> list[date]:
    """``n`` past days on which the volunteer has no approved minutes."""
    with app.app_context():
        used = set(db.session.scalars(select(VolunteerDay.served_on).where(
            VolunteerDay.volunteer_id == volunteer_id, VolunteerDay.minutes > 0)))
    days, day = [], today() - timedelta(days=back)
    while len(days) < n:
        if day not in used:
            days.append(day)
        day -= timedelta(days=1)
    return days


def _row(vol, day: date, **changes) -> dict:
    """A valid row of the format for ``vol`` on ``day`` (60 minutes in 龙亭区)."""
    row = {"source_system": FOREIGN, "record_id": f"HN-{next(_ids):06d}", "volunteer_no": vol.no,
           "real_name": vol.name, "served_on": day.isoformat(), "start_time": "", "end_time": "",
           "minutes": 60, "hours": "", "project": "旧系统社区服务", "position": "引导员",
           "organisation": "旧系统志愿服务队", "region_code": LONGTING, "service_category": "",
           "description": "", "status": "approved"}
    row.update(changes)
    return row


def _json(rows, **envelope) -> bytes:
    document = {"format": record_exchange.FORMAT, "version": 1, "records": rows, **envelope}
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


def _json_escaped(rows, **envelope) -> bytes:
    """``_json`` with non-ASCII as \\u escapes: lone surrogates (``"\\ud800"``) survive."""
    return json.dumps({"format": record_exchange.FORMAT, "version": 1, "records": rows, **envelope}).encode("ascii")


def _csv(rows, header=record_exchange.FIELDS, encoding="utf-8-sig") -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(key, "") if isinstance(row, dict) else row[i] for i, key in
                         enumerate(record_exchange.FIELDS)])
    return out.getvalue().encode(encoding)


def _upload(client, data: bytes, name: str = "records.json"):
    return client.post(IMPORT, data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def _batch_id(resp) -> int:
    assert resp.status_code == 302, resp.get_data(as_text=True)[-3000:]
    return int(re.search(r"/oversight/record-import/(\d+)$", resp.headers["Location"]).group(1))


def _check(client, data: bytes, name: str = "records.json") -> int:
    return _batch_id(_upload(client, data, name))


def _apply(client, batch_id: int):
    return client.post(f"{IMPORT}{batch_id}/apply")


def _rows(app, batch_id: int) -> dict[int, dict]:
    with app.app_context():
        return {r["row"]: r for r in json.loads(db.session.get(RecordImport, batch_id).rows_json)}


def _reasons(row: dict) -> list[str]:
    return [e["reason"] for e in row["errors"]]


def _imported(app, volunteer_id: int) -> list[ServiceRecord]:
    with app.app_context():
        rows = db.session.scalars(select(ServiceRecord).where(
            ServiceRecord.volunteer_id == volunteer_id, ServiceRecord.source == RecordSource.TRANSFER_IN)
            .order_by(ServiceRecord.id)).all()
        for row in rows:
            db.session.expunge(row)
        return rows


def _ledger_in_step(app, volunteer_id: int) -> int:
    """Assert total_minutes and volunteer_day equal the SUMs of approved records; return the total."""
    with app.app_context():
        total = db.session.scalar(select(Volunteer.total_minutes).where(Volunteer.id == volunteer_id))
        approved = db.session.scalar(select(func.coalesce(func.sum(ServiceRecord.minutes), 0)).where(
            ServiceRecord.volunteer_id == volunteer_id, ServiceRecord.status == RecordStatus.APPROVED))
        assert total == approved
        by_day = dict(db.session.execute(select(ServiceRecord.served_on, func.sum(ServiceRecord.minutes)).where(
            ServiceRecord.volunteer_id == volunteer_id, ServiceRecord.status == RecordStatus.APPROVED)
            .group_by(ServiceRecord.served_on)).all())
        days = dict(db.session.execute(select(VolunteerDay.served_on, VolunteerDay.minutes).where(
            VolunteerDay.volunteer_id == volunteer_id, VolunteerDay.minutes != 0)).all())
        assert days == {d: m for d, m in by_day.items() if m}
        return total


def _expected(app, reason: str, **args) -> str:
    """The translated text of a reason, as the pages show it (the app's default language)."""
    with app.test_request_context():
        return record_exchange.reason_text(reason, args)


def _record_of(app, username: str, group_name: str) -> int:
    with app.app_context():
        return db.session.scalar(select(ServiceRecord.id).join(VolunteerGroup, VolunteerGroup.id == ServiceRecord.group_id)
                                 .where(ServiceRecord.volunteer_id == volunteer_of(username).id,
                                        VolunteerGroup.name == group_name,
                                        ServiceRecord.status == RecordStatus.APPROVED,
                                        ServiceRecord.source != RecordSource.CORRECTION)
                                 .order_by(ServiceRecord.id))


def _correct(app, admin: str, record_id: int, minutes: int) -> None:
    with acting(app, admin):
        record = db.session.get(ServiceRecord, record_id)
        hours.correct_record(record, minutes=minutes, reason="复核更正")
        db.session.commit()


# --- Export ---


def test_export_json__matches_the_ledger_with_corrections_folded_in(app, client):
    vol = _vol(app, "vol_longting")
    lowered = _record_of(app, "vol_longting", BOOKSTORE_TEAM)
    zeroed = _record_of(app, "vol_longting", CULTURE_TEAM)
    with app.app_context():
        lowered_minutes = db.session.get(ServiceRecord, lowered).minutes
        zeroed_minutes = db.session.get(ServiceRecord, zeroed).minutes
    _correct(app, "longting_team_admin", lowered, -60)
    _correct(app, "culture_team_admin", zeroed, -zeroed_minutes)
    login(client, "vol_longting")
    resp = client.get("/my/transfer/records.json")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and f'{vol.no}.json"' in disposition
    assert f'filename="service-records-{vol.no}.json"' in disposition  # a readable ASCII fallback
    with app.test_request_context():
        from flask_babel import gettext

        name = f"{gettext('Service records')}-{vol.no}.json"  # 服务记录-… in zh_CN
    assert disposition.endswith(f"filename*=UTF-8''{quote(name)}")
    document = json.loads(resp.data)
    assert (document["format"], document["version"], document["system"]) == ("volunteer-cloud-records", 1,
                                                                               "volunteer-cloud")
    assert document["volunteer"]["volunteer_no"] == vol.no and "*" in document["volunteer"]["id_number_masked"]
    records = {int(r["record_id"]): r for r in document["records"]}
    with app.app_context():
        rows = db.session.scalars(select(ServiceRecord).where(ServiceRecord.volunteer_id == vol.id)).all()
        originals = {r.id: r for r in rows if r.source != RecordSource.CORRECTION}
        total = db.session.scalar(select(Volunteer.total_minutes).where(Volunteer.id == vol.id))
    assert set(records) == set(originals) - {zeroed}  # no correction rows; the zeroed record left out
    assert records[lowered]["minutes"] == lowered_minutes - 60
    assert records[lowered]["hours"] == f"{(lowered_minutes - 60) / 60:.2f}"
    assert sum(r["minutes"] for r in records.values() if r["status"] == "approved") == total
    assert {r["status"] for r in records.values()} == {"approved", "pending"}
    for record_id, row in records.items():
        original = originals[record_id]
        assert row["source_system"] == "volunteer-cloud" and row["volunteer_no"] == vol.no
        assert row["served_on"] == original.served_on.isoformat()
        assert row["region_code"] == original.region_path.rstrip("/").rsplit("/", 1)[-1]
        if original.status != RecordStatus.APPROVED:
            assert row["minutes"] == original.minutes
    assert all(set(r) == set(record_exchange.FIELDS) for r in document["records"])


def test_export_csv__bom_header_and_the_same_rows_as_json(app, client):
    login(client, "vol_longting")
    resp = client.get("/my/transfer/records.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.data.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(resp.data.decode("utf-8-sig"))))
    assert tuple(lines[0]) == record_exchange.FIELDS
    document = json.loads(client.get("/my/transfer/records.json").data)
    assert [dict(zip(lines[0], line)) for line in lines[1:]] == [
        {k: str(v) for k, v in r.items()} for r in document["records"]]


def test_export__bounded_number_of_queries(app):
    """Four queries whatever the volunteer holds (records, then projects, positions, groups)."""
    vol = _vol(app, "vol_longting")

    def count():
        statements = []
        with app.test_request_context():
            listener = lambda *args: statements.append(args[2])  # noqa: E731
            event.listen(db.engine, "before_cursor_execute", listener)
            try:
                rows = record_exchange.export_records(db.session.get(Volunteer, vol.id))
            finally:
                event.remove(db.engine, "before_cursor_execute", listener)
        selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        return len(selects) - 1, len(rows)  # minus loading the volunteer

    small, before = count()
    with app.app_context():
        for day in _free_days(app, vol.id, 6):
            hours.credit(vol.id, day, 30, vol.name)
            db.session.add(ServiceRecord(
                volunteer_id=vol.id, volunteer_name=vol.name, volunteer_no=vol.no, region_id=db.session.scalar(
                    select(Region.id).where(Region.code == "410105")), region_path="410000/410100/410105/",
                external_system=FOREIGN, external_id=f"Q-{day}", external_project="项目", external_org="团体",
                served_on=day, minutes=30, source=RecordSource.TRANSFER_IN, status=RecordStatus.APPROVED))
        db.session.commit()
    large, after = count()
    assert after == before + 6
    assert large == small <= 4


@pytest.mark.parametrize("username", ["longting_officer", "admin"])
def test_export__a_user_without_volunteer_record_gets_404(app, client, username):
    """An officer (may read 转移接续) or the platform admin has no records to download: 404,
    not a 200 page that a script would save as records.json."""
    login(client, username)
    for suffix in ("json", "csv"):
        resp = client.get(f"/my/transfer/records.{suffix}")
        assert resp.status_code == 404
        assert "attachment" not in resp.headers.get("Content-Disposition", "")
    anonymous = app.test_client().get("/my/transfer/records.json")
    assert anonymous.status_code in (302, 401) and anonymous.mimetype != "application/json"


def test_export__only_the_volunteers_own_records(app, client):
    login(client, "vol_shunhe")
    document = json.loads(client.get("/my/transfer/records.json").data)
    shunhe = _vol(app, "vol_shunhe")
    with app.app_context():
        own = {str(i) for i in db.session.scalars(select(ServiceRecord.id).where(
            ServiceRecord.volunteer_id == shunhe.id, ServiceRecord.source != RecordSource.CORRECTION))}
    assert {r["record_id"] for r in document["records"]} == own
    assert {r["volunteer_no"] for r in document["records"]} == {shunhe.no}


def test_csv_formula_cells__prefixed_on_export_and_stripped_on_import(app, client):
    vol = _vol(app, "vol_longting")
    day, = _free_days(app, vol.id, 1)
    row = _row(vol, day, description="'=HYPERLINK(\"http://x\")", project="'+项目", organisation="@团体")
    login(client, "longting_officer")
    batch = _check(client, _csv([row]), "records.csv")
    assert _rows(app, batch)[2]["outcome"] == "ok"
    assert _apply(client, batch).status_code == 302
    [record] = _imported(app, vol.id)
    assert (record.description, record.external_project, record.external_org) == (
        '=HYPERLINK("http://x")', "+项目", "@团体")
    client.get("/logout/")
    login(client, "vol_longting")
    lines = list(csv.DictReader(io.StringIO(client.get("/my/transfer/records.csv").data.decode("utf-8-sig"))))
    [exported] = [line for line in lines if line["source_system"] == FOREIGN]
    assert (exported["description"], exported["project"], exported["organisation"]) == (
        "'=HYPERLINK(\"http://x\")", "'+项目", "'@团体")
    [as_json] = [r for r in json.loads(client.get("/my/transfer/records.json").data)["records"]
                 if r["source_system"] == FOREIGN]
    assert as_json["description"] == '=HYPERLINK("http://x")'


# --- Round trip ---


def _zhengzhou_export_as_longting(app) -> tuple[bytes, dict]:
    """vol_zhengzhou's JSON export, rewritten as another system's file about vol_longting."""
    client = app.test_client()
    login(client, "vol_zhengzhou")
    document = json.loads(client.get("/my/transfer/records.json").data)
    longting = _vol(app, "vol_longting")
    for record in document["records"]:
        record.update(source_system="zz-legacy", volunteer_no=longting.no, real_name=longting.name)
    return json.dumps(document, ensure_ascii=False).encode(), document


def test_round_trip__foreign_records_land_with_their_service_region(app, client):
    data, document = _zhengzhou_export_as_longting(app)
    longting = _vol(app, "vol_longting")
    before = _ledger_in_step(app, longting.id)
    login(client, "henan_officer")  # 郑州 and 龙亭区 both lie in 河南省
    batch = _check(client, data)
    rows = _rows(app, batch)
    pending = [n for n, r in rows.items() if document["records"][n - 1]["status"] == "pending"]
    assert pending and all(_reasons(rows[n]) == ["bad_status"] for n in pending)
    valid = [n for n, r in rows.items() if r["outcome"] == "ok"]
    assert len(valid) == len(document["records"]) - len(pending)
    html = client.get(f"{IMPORT}{batch}").get_data(as_text=True)
    assert re.findall(r'id="count-(\w+)">(\d+)<', html) == [
        ("total", str(len(rows))), ("valid", str(len(valid))), ("errors", str(len(pending)))]
    assert html.index("import-error") < html.index("import-ok")  # error rows first
    assert _imported(app, longting.id) == []  # nothing before 确认导入
    assert _apply(client, batch).status_code == 302
    records = _imported(app, longting.id)
    officer = _user_id(app, "henan_officer")
    expected = {r["record_id"]: r for r in document["records"] if r["status"] == "approved"}
    assert {r.external_id for r in records} == set(expected)
    for record in records:
        source = expected[record.external_id]
        assert record.region_path == "410000/410100/410105/"  # the service region, not the officer's
        assert (record.project_id, record.group_id, record.group_path, record.position_id) == (None,) * 4
        assert (record.external_system, record.external_project, record.external_position, record.external_org) == (
            "zz-legacy", source["project"], source["position"], source["organisation"])
        assert (record.status, record.approved_by_fk, record.created_by_fk) == ("approved", officer, officer)
        assert record.served_on.isoformat() == source["served_on"] and record.minutes == source["minutes"]
        assert (record.volunteer_name, record.volunteer_no) == (longting.name, longting.no)
        assert record.started_at is not None and record.approved_on is not None
    assert _ledger_in_step(app, longting.id) == before + sum(r["minutes"] for r in expected.values())
    # The volunteer's next export names the other system's records as that system did.
    client.get("/logout/")
    login(client, "vol_longting")
    exported = [r for r in json.loads(client.get("/my/transfer/records.json").data)["records"]
                if r["source_system"] == "zz-legacy"]
    assert {r["record_id"] for r in exported} == set(expected)
    assert {r["region_code"] for r in exported} == {ZHENGZHOU_JINSHUI}


def _user_id(app, username: str) -> int:
    with app.app_context():
        return db.session.scalar(select(User.id).where(User.username == username))


def test_reimport__every_row_is_a_duplicate(app, client):
    data, document = _zhengzhou_export_as_longting(app)
    login(client, "henan_officer")
    _apply(client, _check(client, data))
    count = len(_imported(app, _vol(app, "vol_longting").id))
    again = _check(client, data)
    rows = _rows(app, again)
    assert all(r["outcome"] == "error" for r in rows.values())
    approved = [n for n in rows if document["records"][n - 1]["status"] == "approved"]
    assert approved and all("duplicate_existing" in _reasons(rows[n]) for n in approved)
    _apply(client, again)
    assert len(_imported(app, _vol(app, "vol_longting").id)) == count


# --- Row rules: each refuses its row, the valid row still lands ---


def _suspend(app, username):
    with app.app_context():
        db.session.execute(update(Volunteer).where(Volunteer.id == volunteer_of(username).id)
                           .values(status="suspended"))
        db.session.commit()


RULES = [
    # (case, changes to the row, column, reason)
    ("source empty", {"source_system": ""}, "source_system", "source_missing"),
    ("source too long", {"source_system": "s" * 65}, "source_system", "too_long"),
    ("own system", {"source_system": "volunteer-cloud"}, "source_system", "own_system"),
    ("own system, upper case", {"source_system": "VOLUNTEER-CLOUD"}, "source_system", "own_system"),
    ("own system, full-width", {"source_system": "ｖｏｌｕｎｔｅｅｒ-cloud"}, "source_system", "own_system"),
    ("own system, zero-width space", {"source_system": "volunteer\u200b-cloud"}, "source_system", "own_system"),
    ("own system, spaced", {"source_system": " volunteer - cloud\t"}, "source_system", "own_system"),
    ("record id empty", {"record_id": ""}, "record_id", "record_id_missing"),
    ("record id too long", {"record_id": "r" * 65}, "record_id", "too_long"),
    ("volunteer number empty", {"volunteer_no": ""}, "volunteer_no", "volunteer_no_missing"),
    ("unknown volunteer number", {"volunteer_no": "412024999999990"}, "volunteer_no", "no_volunteer"),
    ("name does not match", {"real_name": "王五"}, "real_name", "name_mismatch"),
    ("date empty", {"served_on": ""}, "served_on", "date_missing"),
    ("date malformed", {"served_on": "2025/03/01"}, "served_on", "bad_date"),
    ("date impossible", {"served_on": "2025-02-30"}, "served_on", "bad_date"),
    ("date in the future", {"served_on": "FUTURE"}, "served_on", "future_date"),
    ("date before birth", {"served_on": "BEFORE_BIRTH"}, "served_on", "before_birth"),
    ("minutes zero", {"minutes": 0}, "minutes", "bad_minutes"),
    ("minutes past a day", {"minutes": 1441}, "minutes", "bad_minutes"),
    ("minutes fractional", {"minutes": 1.5}, "minutes", "bad_minutes"),
    ("minutes text", {"minutes": "abc"}, "minutes", "bad_minutes"),
    ("hours past a day", {"minutes": "", "hours": "24.5"}, "hours", "bad_hours"),
    ("hours zero", {"minutes": "", "hours": "0"}, "hours", "bad_hours"),
    ("hours three decimals", {"minutes": "", "hours": "1.234"}, "hours", "bad_hours"),
    ("no duration", {"minutes": "", "hours": ""}, "minutes", "duration_missing"),
    ("start time invalid", {"start_time": "25:00"}, "start_time", "bad_time"),
    ("end time invalid", {"end_time": "9.30"}, "end_time", "bad_time"),
    ("end before start", {"start_time": "10:00", "end_time": "09:00"}, "end_time", "end_before_start"),
    ("minutes longer than the times", {"start_time": "08:00", "end_time": "09:00", "minutes": 61}, "minutes",
     "longer_than_times"),
    ("hours longer than the times", {"start_time": "08:00", "end_time": "09:00", "minutes": "", "hours": "1.5"},
     "hours", "longer_than_times"),
    ("status pending", {"status": "pending"}, "status", "bad_status"),
    ("status rejected", {"status": "rejected"}, "status", "bad_status"),
    ("project empty", {"project": ""}, "project", "project_missing"),
    ("project too long", {"project": "项" * 121}, "project", "too_long"),
    ("organisation empty", {"organisation": "  "}, "organisation", "organisation_missing"),
    ("description too long", {"description": "d" * 256}, "description", "too_long"),
    ("region empty", {"region_code": ""}, "region_code", "region_missing"),
    ("region unknown", {"region_code": "999999"}, "region_code", "unknown_region"),
    ("region not a code", {"region_code": "开封"}, "region_code", "unknown_region"),
    ("region in Beijing", {"region_code": "110101"}, "region_code", "region_outside"),
    ("region in 郑州", {"region_code": ZHENGZHOU_JINSHUI}, "region_code", "region_outside"),
    ("region above the officer's", {"region_code": "4102"}, "region_code", "region_outside"),
    ("region of a neighbour", {"region_code": "410203"}, "region_code", "region_outside"),
    ("not text", {"project": {"name": "x"}}, "project", "bad_value"),
    ("suspended volunteer", {"__suspend__": True}, "volunteer_no", "no_volunteer"),
]


@pytest.mark.parametrize("case, changes, column, reason", RULES, ids=[r[0] for r in RULES])
def test_row_rule__refuses_its_row_and_the_valid_row_lands(app, client, case, changes, column, reason):
    longting = _vol(app, "vol_longting")
    good_day, bad_day = _free_days(app, longting.id, 2)
    changes = dict(changes)
    if changes.pop("__suspend__", False):
        minor = _vol(app, "vol_minor")
        _suspend(app, "vol_minor")
        changes.update(volunteer_no=minor.no, real_name=minor.name)
    if changes.get("served_on") == "FUTURE":
        changes["served_on"] = (today() + timedelta(days=1)).isoformat()
    if changes.get("served_on") == "BEFORE_BIRTH":
        changes["served_on"] = (longting.birth - timedelta(days=1)).isoformat()
    good, bad = _row(longting, good_day), _row(longting, bad_day, **changes)
    login(client, "longting_officer")
    batch = _check(client, _json([good, bad]))
    rows = _rows(app, batch)
    assert rows[1]["outcome"] == "ok", rows[1]
    assert rows[2]["outcome"] == "error"
    assert [(e["column"], e["reason"]) for e in rows[2]["errors"]] == [(column, reason)]
    html = client.get(f"{IMPORT}{batch}").get_data(as_text=True)
    args = rows[2]["errors"][0].get("args", {})
    assert f"{column}: {_expected(app, reason, **args)}".replace('"', "&#34;") in html.replace("&#39;", "'")
    assert _apply(client, batch).status_code == 302
    assert [r.external_id for r in _imported(app, longting.id)] == [good["record_id"]]
    _ledger_in_step(app, longting.id)


def test_row_rules__accepted_spellings(app, client):
    """Status 已通过 / Approved / empty, hours instead of minutes, a 4-digit region code,
    full-width digits, a name with spaces, start and end times."""
    vol = _vol(app, "vol_longting")
    days = _free_days(app, vol.id, 5)
    rows = [
        _row(vol, days[0], status="已通过", minutes="", hours="2.5"),
        _row(vol, days[1], status="Approved", region_code="4102"),
        _row(vol, days[2], status="", minutes="９０", real_name=" ".join(vol.name)),
        _row(vol, days[3], start_time="8:05", end_time="09:35", minutes=90),
        _row(vol, days[4], minutes="", hours="0.01"),
    ]
    login(client, "kaifeng_officer")  # 开封市 (4102) lies in their region
    batch = _check(client, _json(rows))
    assert all(r["outcome"] == "ok" for r in _rows(app, batch).values()), _rows(app, batch)
    _apply(client, batch)
    records = {r.external_id: r for r in _imported(app, vol.id)}
    assert [records[r["record_id"]].minutes for r in rows] == [150, 60, 90, 90, 1]
    assert records[rows[1]["record_id"]].region_path == "410000/410200/"
    with app.app_context():
        record = db.session.get(ServiceRecord, records[rows[3]["record_id"]].id)
        assert (record.ended_at - record.started_at) == timedelta(minutes=90)
        from app.services.clock import to_local
        assert to_local(record.started_at).strftime("%H:%M") == "08:05"


def test_row_rules__duplicates_in_the_file_and_in_the_ledger(app, client):
    vol = _vol(app, "vol_longting")
    days = _free_days(app, vol.id, 4)
    login(client, "longting_officer")
    first = _row(vol, days[0])
    _apply(client, _check(client, _json([first])))
    again = _row(vol, days[1], record_id=first["record_id"])  # in the ledger now
    twice = _row(vol, days[2])
    copy = _row(vol, days[3], record_id=twice["record_id"])
    batch = _check(client, _csv([again, twice, copy]), "records.csv")
    rows = _rows(app, batch)
    assert _reasons(rows[2]) == ["duplicate_existing"]
    assert rows[3]["outcome"] == "ok"
    assert rows[4]["errors"] == [{"column": "record_id", "reason": "duplicate_row", "args": {"row": 3}}]
    html = client.get(f"{IMPORT}{batch}").get_data(as_text=True)
    assert _expected(app, "duplicate_row", row=3) in html
    _apply(client, batch)
    assert [r.external_id for r in _imported(app, vol.id)] == [first["record_id"], twice["record_id"]]


def test_row_rules__the_day_limit_counts_the_ledger_and_earlier_rows(app, client):
    vol = _vol(app, "vol_longting")
    with app.app_context():
        busy_day, used = db.session.execute(select(VolunteerDay.served_on, VolunteerDay.minutes).where(
            VolunteerDay.volunteer_id == vol.id, VolunteerDay.minutes > 0).order_by(VolunteerDay.served_on)).first()
    free, = _free_days(app, vol.id, 1)
    rows = [
        _row(vol, busy_day, minutes=1440 - used),  # fills the day exactly: OK
        _row(vol, busy_day, minutes=1),  # one minute too many
        _row(vol, free, minutes=800),
        _row(vol, free, minutes=700),  # 1500 with the row before
        _row(vol, free, minutes=640),  # 1440 with the first row of that day: OK
    ]
    login(client, "longting_officer")
    batch = _check(client, _json(rows))
    got = _rows(app, batch)
    assert [got[n]["outcome"] for n in range(1, 6)] == ["ok", "error", "ok", "error", "ok"]
    assert got[2]["errors"] == [{"column": "minutes", "reason": "day_full",
                                 "args": {"hours": "24", "day": busy_day.isoformat()}}]
    _apply(client, batch)
    assert sorted(r.minutes for r in _imported(app, vol.id)) == sorted([1440 - used, 800, 640])
    with app.app_context():
        days = dict(db.session.execute(select(VolunteerDay.served_on, VolunteerDay.minutes).where(
            VolunteerDay.volunteer_id == vol.id, VolunteerDay.served_on.in_([busy_day, free]))).all())
    assert days == {busy_day: 1440, free: 1440}
    _ledger_in_step(app, vol.id)


def test_mixed_file__exactly_the_valid_rows_land_and_the_error_report_names_the_rest(app, client):
    vol = _vol(app, "vol_longting")
    days = _free_days(app, vol.id, 6)
    rows = [_row(vol, days[0]), _row(vol, days[1], minutes=2000), _row(vol, days[2]),
            _row(vol, days[3], region_code="123456"), _row(vol, days[4], status="pending"), _row(vol, days[5])]
    login(client, "longting_officer")
    batch = _check(client, _csv(rows), "mixed.csv")
    _apply(client, batch)
    assert {r.external_id for r in _imported(app, vol.id)} == {rows[i]["record_id"] for i in (0, 2, 5)}
    report = client.get(f"{IMPORT}{batch}/errors.csv")
    assert report.status_code == 200 and report.data.startswith(b"\xef\xbb\xbf")
    assert "attachment" in report.headers["Content-Disposition"]
    lines = list(csv.reader(io.StringIO(report.data.decode("utf-8-sig"))))[1:]
    assert [(line[0], line[1]) for line in lines] == [("3", "minutes"), ("5", "region_code"), ("6", "status")]
    assert lines[0][2] == _expected(app, "bad_minutes") and lines[0][3] == vol.no
    html = client.get(f"{IMPORT}{batch}").get_data(as_text=True)
    assert re.findall(r'id="count-(\w+)">(\d+)<', html)[-2:] == [("applied", "3"), ("skipped", "0")]


# --- Clean text, normalised identifiers, times, regions and duplicates per volunteer ---


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_text__control_and_format_characters_cleaned_before_limits_and_storage(app, client, fmt):
    """CR/LF/tab become spaces, other Cc and Cf characters go, spaces collapse: before the
    length checks (a value over the limit only by invisible characters passes) and storage."""
    vol = _vol(app, "vol_longting")
    days = _free_days(app, vol.id, 2)
    messy = "a\u202eb\x07c\nd"
    rows = [
        _row(vol, days[0], project=messy, position=messy, organisation=messy, description=f"  {messy}\t\r\n x",
             real_name=f"\u200b{vol.name[0]}\t{vol.name[1:]}\u202e", record_id="R\u200b-\x07 1\n",
             source_system="Legacy\u202e\r\n"),
        _row(vol, days[1], project="项" * 120 + "\u200b\u200b\x07", description="d" * 255 + "\u202e\ufeff"),
    ]
    login(client, "longting_officer")
    data = _json(rows) if fmt == "json" else _csv(rows)
    batch = _check(client, data, f"records.{fmt}")
    got = _rows(app, batch)
    assert [r["outcome"] for r in got.values()] == ["ok", "ok"], got
    _apply(client, batch)
    first, second = _imported(app, vol.id)
    assert (first.external_project, first.external_position, first.external_org) == ("abc d",) * 3
    assert first.description == "abc d x"
    assert (first.external_system, first.external_id) == ("legacy", "R-1")
    assert (second.external_project, second.description) == ("项" * 120, "d" * 255)


def test_identifiers__normalised_before_the_duplicate_checks_and_stored_casefolded(app, client):
    vol = _vol(app, "vol_longting")
    days = _free_days(app, vol.id, 5)
    login(client, "longting_officer")
    _apply(client, _check(client, _json([_row(vol, days[0], source_system="LEGACY", record_id="A-1")])))
    [record] = _imported(app, vol.id)
    assert (record.external_system, record.external_id) == ("legacy", "A-1")
    rows = [
        _row(vol, days[1], source_system="ｌｅｇａｃｙ", record_id="Ａ－１"),  # in the ledger
        _row(vol, days[2], source_system="Legacy", record_id="B\u200b-2 "),
        _row(vol, days[3], source_system="le gacy\u200b", record_id="Ｂ-2"),  # row 2 again
        _row(vol, days[4], source_system="legacy", record_id="b-2"),  # record ids keep their case
    ]
    batch = _check(client, _csv(rows), "records.csv")
    got = _rows(app, batch)
    assert _reasons(got[2]) == ["duplicate_existing"]
    assert (got[3]["outcome"], got[3]["source_system"], got[3]["record_id"]) == ("ok", "legacy", "B-2")
    assert got[4]["errors"] == [{"column": "record_id", "reason": "duplicate_row", "args": {"row": 3}}]
    assert got[5]["outcome"] == "ok"
    _apply(client, batch)
    assert [(r.external_system, r.external_id) for r in _imported(app, vol.id)] == [
        ("legacy", "A-1"), ("legacy", "B-2"), ("legacy", "b-2")]


def test_times__stored_in_utc_and_an_overlapping_record_is_flagged(app, client):
    """Like local entry: a record whose times overlap another approved record of the
    volunteer is flagged for the officers (not "late": imports are late by nature)."""
    vol = _vol(app, "vol_longting")
    day, = _free_days(app, vol.id, 1)
    rows = [_row(vol, day, start_time="08:00", end_time="10:00", minutes=120),
            _row(vol, day, start_time="09:30", end_time="11:00", minutes=90),  # overlaps the first
            _row(vol, day, start_time="11:00", end_time="12:00", minutes=45)]  # touches the second only
    login(client, "longting_officer")
    batch = _check(client, _json(rows))
    assert all(r["outcome"] == "ok" for r in _rows(app, batch).values())
    _apply(client, batch)
    first, second, third = _imported(app, vol.id)
    assert (first.started_at, first.ended_at) == (datetime.combine(day, time(0, 0)), datetime.combine(day, time(2, 0)))
    assert (third.started_at, third.ended_at) == (datetime.combine(day, time(3, 0)), datetime.combine(day, time(4, 0)))
    with app.test_request_context():
        overlap = hours._flag_texts()["overlap"]
    assert (first.is_flagged, second.is_flagged, third.is_flagged) == (False, True, False)
    assert second.flag_reasons == overlap
    _ledger_in_step(app, vol.id)


def test_export__end_time_left_out_when_the_corrected_minutes_no_longer_fit(app, client):
    """A record corrected upwards outgrows its times: the export leaves the end time out, so
    the file imports again (minutes at most end - start)."""
    vol = _vol(app, "vol_longting")
    with app.app_context():
        timed = db.session.scalars(select(ServiceRecord).where(
            ServiceRecord.volunteer_id == vol.id, ServiceRecord.status == RecordStatus.APPROVED,
            ServiceRecord.source != RecordSource.CORRECTION, ServiceRecord.started_at.is_not(None),
            ServiceRecord.ended_at.is_not(None), ServiceRecord.group_id.is_not(None))).all()
        record = next(r for r in timed if r.group.name == BOOKSTORE_TEAM)
        record_id, bookstore = record.id, {r.id for r in timed if r.group.name == BOOKSTORE_TEAM}
    _correct(app, "longting_team_admin", record_id, 30)
    login(client, "vol_longting")
    document = json.loads(client.get("/my/transfer/records.json").data)
    by_id = {int(r["record_id"]): r for r in document["records"]}
    assert by_id[record_id]["start_time"] and by_id[record_id]["end_time"] == ""
    others = [by_id[i] for i in bookstore - {record_id} if i in by_id]
    assert all(r["end_time"] for r in others)
    for row in document["records"]:
        row.update(source_system="another-system")
    officer = app.test_client()
    login(officer, "henan_officer")
    rows = _rows(app, _check(officer, json.dumps(document, ensure_ascii=False).encode()))
    assert not [r for r in rows.values() if {"longer_than_times", "end_before_start", "bad_time"} & set(_reasons(r))]


def test_region_scope__the_platform_admin_imports_a_record_served_anywhere(app, client):
    vol = _vol(app, "vol_longting")
    days = _free_days(app, vol.id, 2)
    login(client, "admin")
    batch = _check(client, _json([_row(vol, days[0], region_code="110101"),
                                  _row(vol, days[1], region_code=ZHENGZHOU_JINSHUI)]))
    assert all(r["outcome"] == "ok" for r in _rows(app, batch).values())
    _apply(client, batch)
    assert [r.region_path for r in _imported(app, vol.id)] == ["110000/110101/", "410000/410100/410105/"]


def test_apply__rechecks_the_service_region_against_the_applying_officers_region(app):
    """The creator's bindings narrowed between check and 确认导入: a row served outside
    their region now is skipped with the same reason."""
    from app.security.scope import scope_for_user

    vol = _vol(app, "vol_longting")
    days = _free_days(app, vol.id, 2)
    with app.app_context():
        kaifeng = app.appbuilder.sm.find_user(username="kaifeng_officer")
        longting = app.appbuilder.sm.find_user(username="longting_officer")
        batch = record_exchange.check_record_file(
            "r.json", io.BytesIO(_json([_row(vol, days[0], region_code="410203"), _row(vol, days[1])])),
            scope=scope_for_user(kaifeng), actor_id=kaifeng.id)
        db.session.commit()
        batch_id, valid = batch.id, batch.valid_rows
        result = record_exchange.apply_record_import(batch, scope=scope_for_user(longting), actor_id=kaifeng.id)
        db.session.commit()
    assert valid == 2 and (result.applied, result.skipped) == (1, 1)
    assert _rows(app, batch_id)[1]["apply_error"] == {"reason": "region_outside", "args": {"code": "410203"}}
    assert [r.region_path for r in _imported(app, vol.id)] == ["410000/410200/410202/"]


def test_ledger_duplicates__per_volunteer_so_they_tell_nothing_about_other_regions(app, client):
    """(source_system, record_id) held only by a volunteer outside the officer's region reads
    exactly like a fresh one, for a row naming that volunteer and for one naming their own."""
    longting, shunhe = _vol(app, "vol_longting"), _vol(app, "vol_shunhe")
    days = _free_days(app, longting.id, 2)
    shunhe_day, = _free_days(app, shunhe.id, 1)
    other = app.test_client()
    login(other, "shunhe_officer")
    _apply(other, _check(other, _json([_row(shunhe, shunhe_day, record_id="SHARED-1", region_code="410203")])))
    assert [r.external_id for r in _imported(app, shunhe.id)] == ["SHARED-1"]
    login(client, "longting_officer")
    probe = _rows(app, _check(client, _json([_row(shunhe, days[0], record_id="SHARED-1"),
                                             _row(shunhe, days[1], record_id="FRESH-1")])))
    assert probe[1]["errors"] == probe[2]["errors"] == [{"column": "volunteer_no", "reason": "no_volunteer"}]
    batch = _check(client, _json([_row(longting, days[0], record_id="SHARED-1"),
                                  _row(longting, days[1], record_id="FRESH-2")]))
    got = _rows(app, batch)
    assert got[1]["errors"] == got[2]["errors"] == []
    _apply(client, batch)
    assert sorted(r.external_id for r in _imported(app, longting.id)) == ["FRESH-2", "SHARED-1"]
    assert [r.external_id for r in _imported(app, shunhe.id)] == ["SHARED-1"]
    _ledger_in_step(app, longting.id)


def _batch_path(app, batch_id: int) -> str:
    with app.app_context():
        return db.session.get(RecordImport, batch_id).region_path


def test_admin_batches__filed_under_the_region_their_volunteers_or_service_regions_share(app, client):
    longting, minor, zhengzhou = _vol(app, "vol_longting"), _vol(app, "vol_minor"), _vol(app, "vol_zhengzhou")
    day, = _free_days(app, longting.id, 1, back=900)
    unknown = {"volunteer_no": "412024999999990", "real_name": ""}
    login(client, "admin")
    # Matched volunteers decide, wherever the service happened.
    assert _batch_path(app, _check(client, _json([_row(longting, day, region_code="110101"),
                                                  _row(minor, day)]))) == "410000/410200/410202/"
    assert _batch_path(app, _check(client, _json([_row(longting, day), _row(zhengzhou, day)]))) == "410000/"
    # None matched: the rows' service regions.
    assert _batch_path(app, _check(client, _json([_row(longting, day, region_code="410202001", **unknown),
                                                  _row(longting, day, region_code="410203", **unknown)]))) == (
        "410000/410200/")
    with app.app_context():
        stored = db.session.scalar(select(func.count(RecordImport.id)))
    # Nothing shared (two provinces) or nothing known: refused, never filed under some region.
    for rows in ([_row(longting, day, region_code="410202", **unknown),
                  _row(longting, day, region_code="110101", **unknown)],
                 [_row(longting, day, region_code="999999", **unknown)]):
        resp = _upload(client, _json(rows))
        assert resp.status_code == 400 and 'class="alert alert-danger' in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count(RecordImport.id))) == stored
    # The batch of 开封市's rows: kaifeng_officer opens it, longting_officer does not.
    officer = app.test_client()
    login(officer, "longting_officer")
    kaifeng_batch = max(_batch_ids(app))
    assert officer.get(f"{IMPORT}{kaifeng_batch}").status_code == 404
    kaifeng = app.test_client()
    login(kaifeng, "kaifeng_officer")
    assert kaifeng.get(f"{IMPORT}{kaifeng_batch}").status_code == 200


def _batch_ids(app) -> list[int]:
    with app.app_context():
        return list(db.session.scalars(select(RecordImport.id)))


# --- CSV encodings and headers ---


def test_csv__gb18030_with_chinese_headers(app, client):
    vol = _vol(app, "vol_longting")
    days = _free_days(app, vol.id, 2)
    header = ["记录编号", "来源系统", "志愿服务号码", "姓名", "服务日期", "时长（分钟）", "服务时长", "项目", "岗位",
              "组织", "区划代码", "服务内容", "状态", "备注"]
    lines = [[f"GB-{n}", FOREIGN, vol.no, vol.name, day.isoformat(), "", "1.5", "敬老院探访", "陪护",
              "开封市老年志愿服务队", "410202", "陪老人聊天", "已通过", "忽略"] for n, day in enumerate(days)]
    out = io.StringIO(newline="")
    csv.writer(out).writerows([header, *lines])
    data = out.getvalue().encode("gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    login(client, "longting_officer")
    batch = _check(client, data, "旧系统导出.CSV")
    assert all(r["outcome"] == "ok" for r in _rows(app, batch).values()), _rows(app, batch)
    _apply(client, batch)
    records = _imported(app, vol.id)
    assert [(r.external_id, r.minutes, r.external_project, r.external_org, r.description) for r in records] == [
        (f"GB-{n}", 90, "敬老院探访", "开封市老年志愿服务队", "陪老人聊天") for n in range(2)]


@pytest.mark.parametrize("case", ["csv, GB18030 byte order mark", "csv, doubled UTF-8 byte order mark",
                                  "json, doubled UTF-8 byte order mark", "json, GB18030 byte order mark"])
def test_decoding__byte_order_marks_are_dropped(app, client, case):
    vol = _vol(app, "vol_longting")
    day, = _free_days(app, vol.id, 1)
    row = _row(vol, day, project="敬老院探访")
    gb18030_bom, utf8_bom = b"\x84\x31\x95\x33", b"\xef\xbb\xbf"
    data = {
        "csv, GB18030 byte order mark": gb18030_bom + _csv([row], encoding="gb18030"),
        "csv, doubled UTF-8 byte order mark": utf8_bom + _csv([row], encoding="utf-8-sig"),
        "json, doubled UTF-8 byte order mark": utf8_bom * 2 + _json([row]),
        "json, GB18030 byte order mark": gb18030_bom + _json([row]).decode().encode("gb18030"),
    }[case]
    login(client, "longting_officer")
    batch = _check(client, data, "records." + case.split(",")[0])
    assert [r["outcome"] for r in _rows(app, batch).values()] == ["ok"], _rows(app, batch)
    _apply(client, batch)
    assert [r.external_project for r in _imported(app, vol.id)] == ["敬老院探访"]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8"])
def test_csv__utf8_with_and_without_bom(app, client, encoding):
    vol = _vol(app, "vol_longting")
    day, = _free_days(app, vol.id, 1)
    login(client, "longting_officer")
    batch = _check(client, _csv([_row(vol, day, project="书店街“文明”劝导")], encoding=encoding), "r.csv")
    assert _rows(app, batch)[2]["outcome"] == "ok"
    _apply(client, batch)
    assert [r.external_project for r in _imported(app, vol.id)] == ["书店街“文明”劝导"]


# --- Whole files refused ---


def _bad_files():
    row = {"source_system": FOREIGN, "record_id": "1"}
    header = ",".join(k for k in record_exchange.FIELDS if k != "region_code")
    return [
        ("wrong type", b"a,b", "records.xlsx"),
        ("empty", b"", "records.csv"),
        ("too large", b" " * (record_exchange.MAX_IMPORT_BYTES + 1), "records.json"),
        ("not json", b"{not json", "records.json"),
        ("deep json", b"[" * 100000, "records.json"),
        ("wrong format", json.dumps({"format": "other", "version": 1, "records": [row]}).encode(), "r.json"),
        ("wrong version", _json([row], version=2), "r.json"),
        ("version true", _json([row], version=True), "r.json"),
        ("version 1.0", _json([row], version=1.0), "r.json"),
        ("version as text", _json([row], version="1"), "r.json"),
        ("version missing", json.dumps({"format": record_exchange.FORMAT, "records": [row]}).encode(), "r.json"),
        ("version a lone surrogate", _json_escaped([row], version="\udc00"), "r.json"),
        ("no records", _json([]), "r.json"),
        ("missing column", (header + "\r\n" + ",".join("x" * 3 for _ in range(15))).encode(), "r.csv"),
        ("too many rows", _json([row] * (record_exchange.MAX_IMPORT_ROWS + 1)), "r.json"),
        ("not text", b"\xff\xfe\x00\xd8" * 10, "r.csv"),
        ("utf-8 coded surrogate", (",".join(record_exchange.FIELDS) + "\r\n").encode() + b"x," * 15 + b"\xed\xa0\x80",
         "r.csv"),
    ]


@pytest.mark.parametrize("case, data, name", _bad_files(), ids=[c[0] for c in _bad_files()])
def test_upload__a_refused_file_stores_nothing(app, client, case, data, name):
    login(client, "longting_officer")
    resp = _upload(client, data, name)
    assert resp.status_code == 400, resp.status_code
    assert 'class="alert alert-danger' in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count(RecordImport.id))) == 0


@pytest.mark.parametrize("where", ["record_id", "real_name", "key", "description"])
def test_upload__a_lone_surrogate_refuses_the_file_not_a_500(app, client, where):
    """``"record_id": "G8\\ud800"`` in an otherwise valid file: refused as unreadable (400)."""
    vol = _vol(app, "vol_longting")
    day, = _free_days(app, vol.id, 1)
    row = _row(vol, day)
    if where == "key":
        row["note\ud800"] = "x"
    else:
        row[where] = "G8\ud800" if where != "real_name" else vol.name + "\udfff"
    login(client, "longting_officer")
    resp = _upload(client, _json_escaped([_row(vol, day - timedelta(days=1)), row]))
    assert resp.status_code == 400
    assert 'class="alert alert-danger' in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count(RecordImport.id))) == 0


def test_upload__a_wrong_version_is_quoted_as_the_file_spells_it(app, client):
    from flask_babel import gettext

    login(client, "longting_officer")
    html = _upload(client, _json([{"record_id": "1"}], version="1")).get_data(as_text=True)
    with app.test_request_context():
        expected = gettext("Unsupported format version %(version)s (expected the integer %(expected)s).",
                           version='"1"', expected=1)
    assert expected in html.replace("&#34;", '"').replace("&quot;", '"')


def test_upload__missing_column_names_it(app, client):
    header = ",".join(k for k in record_exchange.FIELDS if k != "region_code")
    login(client, "longting_officer")
    html = _upload(client, (header + "\r\n" + "x," * 14 + "x").encode(), "r.csv").get_data(as_text=True)
    assert "region_code" in html


def test_upload__rate_limited_per_officer(app, client):
    app.config["RECORD_IMPORTS_PER_HOUR"] = 2
    vol = _vol(app, "vol_longting")
    day, = _free_days(app, vol.id, 1)
    login(client, "longting_officer")
    data = _json([_row(vol, day)])
    assert _upload(client, data).status_code == 302
    assert _upload(client, b"", "r.json").status_code == 400  # a refused file counts too
    assert _upload(client, data).status_code == 429
    other = app.test_client()
    login(other, "kaifeng_officer")
    assert _upload(other, data).status_code == 302  # per officer


# --- Scope and permissions ---


def test_out_of_scope_officer__gets_the_same_no_volunteer_error_as_an_unknown_number(app, client):
    vol = _vol(app, "vol_longting")
    days = _free_days(app, vol.id, 2)
    login(client, "shunhe_officer")
    batch = _check(client, _json([_row(vol, days[0], region_code="410203"),
                                  _row(vol, days[1], region_code="410203", volunteer_no="412024999999990")]))
    rows = _rows(app, batch)
    assert rows[1]["errors"] == rows[2]["errors"] == [{"column": "volunteer_no", "reason": "no_volunteer"}]
    assert rows[1]["volunteer_id"] is None  # nothing about the volunteer is kept
    _apply(client, batch)
    assert _imported(app, vol.id) == []


def test_another_officer__cannot_open_apply_or_download_a_batch(app, client):
    vol = _vol(app, "vol_longting")
    day, = _free_days(app, vol.id, 1)
    login(client, "longting_officer")
    batch = _check(client, _json([_row(vol, day), _row(vol, day, minutes=0)]))
    shunhe = app.test_client()
    login(shunhe, "shunhe_officer")
    for resp in (shunhe.get(f"{IMPORT}{batch}"), shunhe.post(f"{IMPORT}{batch}/apply"),
                 shunhe.get(f"{IMPORT}{batch}/errors.csv"), shunhe.get(f"{IMPORT}{batch + 1000}")):
        assert resp.status_code == 404
    assert f"{IMPORT}{batch}" not in shunhe.get(IMPORT).get_data(as_text=True)
    assert _imported(app, vol.id) == []
    # An officer of a region above the batch's may open it; so may its creator.
    kaifeng = app.test_client()
    login(kaifeng, "kaifeng_officer")
    assert kaifeng.get(f"{IMPORT}{batch}").status_code == 200
    assert f"{IMPORT}{batch}" in kaifeng.get(IMPORT).get_data(as_text=True)
    assert f"{IMPORT}{batch}" in client.get(IMPORT).get_data(as_text=True)


@pytest.mark.parametrize("username", ["vol_longting", "longting_team_admin", "kfvf_admin", "kaifeng_honors"])
def test_import_page__refused_to_volunteers_group_admins_and_honors_editors(app, client, username):
    vol = _vol(app, "vol_longting")
    day, = _free_days(app, vol.id, 1)
    officer = app.test_client()
    login(officer, "longting_officer")
    batch = _check(officer, _json([_row(vol, day)]))
    login(client, username)
    assert client.get(IMPORT).status_code == 403
    assert _upload(client, _json([_row(vol, day)])).status_code == 403
    assert client.post(f"{IMPORT}{batch}/apply").status_code == 403
    assert client.get(f"{IMPORT}{batch}").status_code == 403
    assert _imported(app, vol.id) == []
    assert IMPORT not in client.get("/my/hours/").get_data(as_text=True)


def test_import_page__officer_sees_the_menu_entry(app, client):
    login(client, "longting_officer")
    page = client.get(IMPORT)
    assert page.status_code == 200 and 'id="record-import-form"' in page.get_data(as_text=True)
    assert f'href="{IMPORT}"' in client.get("/service-records/list/").get_data(as_text=True)


def test_apply__twice_is_refused(app, client):
    vol = _vol(app, "vol_longting")
    day, = _free_days(app, vol.id, 1)
    login(client, "longting_officer")
    batch = _check(client, _json([_row(vol, day)]))
    assert _apply(client, batch).status_code == 302
    resp = client.post(f"{IMPORT}{batch}/apply", follow_redirects=True)
    with app.test_request_context():
        from flask_babel import gettext

        refusal = gettext("This import has been applied already.")
    assert refusal in resp.get_data(as_text=True)
    assert len(_imported(app, vol.id)) == 1
    _ledger_in_step(app, vol.id)
    with app.app_context():
        assert db.session.get(RecordImport, batch).applied_count == 1


def test_apply__a_row_refused_at_that_moment_is_skipped_and_the_others_land(app, client):
    vol = _vol(app, "vol_longting")
    days = _free_days(app, vol.id, 3)
    rows = [_row(vol, days[0]), _row(vol, days[1], minutes=600), _row(vol, days[2])]
    login(client, "longting_officer")
    batch = _check(client, _json(rows))
    # Meanwhile: the first record arrives through another batch, and the second day fills up.
    _apply(client, _check(client, _json([rows[0]])))
    with app.app_context():
        hours.credit(vol.id, days[1], 1000, vol.name)
        db.session.add(ServiceRecord(
            volunteer_id=vol.id, volunteer_name=vol.name, volunteer_no=vol.no, region_id=db.session.scalar(
                select(Region.id).where(Region.code == "410202")), region_path="410000/410200/410202/",
            external_system="other", external_id="fills-the-day", external_project="p", external_org="o",
            served_on=days[1], minutes=1000, source=RecordSource.TRANSFER_IN, status=RecordStatus.APPROVED))
        db.session.commit()
    resp = client.post(f"{IMPORT}{batch}/apply", follow_redirects=True)
    assert resp.status_code == 200
    got = _rows(app, batch)
    assert got[1]["apply_error"] == {"reason": "duplicate_existing"}
    assert got[2]["apply_error"]["reason"] == "day_full"
    assert got[3]["applied"] is True
    html = resp.get_data(as_text=True)
    assert _expected(app, "day_full", **got[2]["apply_error"]["args"]) in html
    assert re.findall(r'id="count-(\w+)">(\d+)<', html)[-2:] == [("applied", "1"), ("skipped", "2")]
    ids = [r.external_id for r in _imported(app, vol.id)]
    assert ids.count(rows[0]["record_id"]) == 1 and rows[2]["record_id"] in ids and rows[1]["record_id"] not in ids
    _ledger_in_step(app, vol.id)
    report = client.get(f"{IMPORT}{batch}/errors.csv").data.decode("utf-8-sig")
    assert _expected(app, "duplicate_existing") in report


def test_apply__a_duplicate_found_only_by_the_database_undoes_its_credit(app, client, monkeypatch):
    """The record lands between the apply's duplicate check and its insert (a concurrent
    import): the unique (external_system, external_id, volunteer) refuses it, its savepoint takes the
    credit back, and the other rows still land."""
    vol = _vol(app, "vol_longting")
    days = _free_days(app, vol.id, 3)
    rows = [_row(vol, days[0]), _row(vol, days[1], minutes=300), _row(vol, days[2])]
    login(client, "longting_officer")
    batch = _check(client, _json(rows))
    _apply(client, _check(client, _json([_row(vol, days[0], record_id=rows[1]["record_id"])])))
    monkeypatch.setattr(record_exchange, "_existing_keys", lambda keys: set())
    assert _apply(client, batch).status_code == 302
    got = _rows(app, batch)
    assert got[2]["apply_error"] == {"reason": "duplicate_existing"}
    assert got[1]["applied"] is True and got[3]["applied"] is True
    with app.app_context():
        day = db.session.scalar(select(VolunteerDay.minutes).where(
            VolunteerDay.volunteer_id == vol.id, VolunteerDay.served_on == days[1]))
    assert not day  # the refused row's 300 minutes were taken back
    _ledger_in_step(app, vol.id)


def test_apply__a_volunteer_who_left_the_region_meanwhile_is_skipped(app, client):
    longting, minor = _vol(app, "vol_longting"), _vol(app, "vol_minor")
    day, = _free_days(app, longting.id, 1)
    login(client, "longting_officer")
    batch = _check(client, _json([_row(longting, day), _row(minor, day)]))
    with app.app_context():  # vol_minor moves to 顺河回族区 before the officer confirms
        shunhe = db.session.scalar(select(Region).where(Region.code == "410203"))
        db.session.execute(update(Volunteer).where(Volunteer.id == minor.id).values(
            region_id=shunhe.id, region_path=shunhe.path))
        db.session.commit()
    _apply(client, batch)
    assert _rows(app, batch)[2]["apply_error"] == {"reason": "no_volunteer"}
    assert len(_imported(app, longting.id)) == 1 and _imported(app, minor.id) == []


def test_apply__leaves_an_audit_trail(app, client):
    vol = _vol(app, "vol_longting")
    days = _free_days(app, vol.id, 2)
    login(client, "longting_officer")
    batch = _check(client, _json([_row(vol, days[0]), _row(vol, days[1])]))
    _apply(client, batch)
    records = {r.id for r in _imported(app, vol.id)}
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.object_type == "service_record",
                                                             AuditEvent.object_id.in_(records))).all()
        assert {(e.object_id, e.action, e.actor_name) for e in events} == {
            (rid, "create", "longting_officer") for rid in records}
        assert all('"transfer_in"' in e.after_json and FOREIGN in e.after_json for e in events)
        batch_events = db.session.scalars(select(AuditEvent).where(
            AuditEvent.object_type == "record_import", AuditEvent.object_id == batch)).all()
        assert [e.action for e in batch_events] == ["create", "update"]
        assert "applied_on" in batch_events[1].after_json
        assert all("rows_json" not in (e.after_json or "") for e in batch_events)


# --- The rest of the app with transferred-in records ---


@pytest.fixture
def imported(app):
    """vol_longting with three records imported by henan_officer (service region 410105),
    together enough for the first star."""
    vol = _vol(app, "vol_longting")
    days = _free_days(app, vol.id, 3)
    client = app.test_client()
    login(client, "henan_officer")
    rows = [_row(vol, day, minutes=1400, project=f"旧系统项目{n}", organisation="旧系统团体甲",
                 region_code=ZHENGZHOU_JINSHUI) for n, day in enumerate(days)]
    _apply(client, _check(client, _json(rows)))
    records = _imported(app, vol.id)
    assert len(records) == 3
    return SimpleNamespace(vol=vol, records=records, rows=rows)


def test_totals_and_star_level__equal_the_sum_of_approved_minutes(app, client, imported):
    total = _ledger_in_step(app, imported.vol.id)
    assert star_level(total) >= 1
    login(client, "vol_longting")
    html = client.get("/my/hours/").get_data(as_text=True)
    assert f'data-stars="{star_level(total)}"' in html
    assert re.search(r'id="approved-hours">%s<' % re.escape(f"{total / 60:g}"), html)


def test_my_hours__shows_the_other_systems_names_and_offers_no_correction(app, client, imported):
    login(client, "vol_longting")
    html = client.get("/my/hours/").get_data(as_text=True)
    for record in imported.records:
        match = re.search(r'<tr id="my-record-%d"[^>]*data-source="transfer_in">(.*?)</tr>' % record.id, html, re.S)
        assert match, record.id
        assert record.external_project in match.group(1) and "旧系统团体甲" in match.group(1)
        assert "correction-link" not in match.group(1)
    assert 'class="btn btn-default btn-xs correction-link"' in html  # records made here still offer it
    record = imported.records[0].id
    assert client.get(f"/my/hours/records/{record}/correction").status_code == 404
    resp = client.post(f"/my/hours/records/{record}/correction", data={"hours": "-1", "reason": "x"})
    assert resp.status_code == 404
    with app.app_context():
        assert db.session.scalar(select(func.count(ServiceRecord.id)).where(ServiceRecord.corrects_id == record)) == 0


def test_correction_service__refuses_a_transferred_record(app, imported):
    from app.services.errors import DomainError, ScopeViolation

    with acting(app, "vol_longting"):
        record = db.session.get(ServiceRecord, imported.records[0].id)
        with pytest.raises(DomainError):
            hours.request_correction(volunteer_of("vol_longting"), record, minutes=-30, reason="多记")
    with acting(app, "admin"):
        record = db.session.get(ServiceRecord, imported.records[0].id)
        with pytest.raises((DomainError, ScopeViolation)):
            hours.correct_record(record, minutes=-30, reason="多记")


def test_my_record_page__lists_transferred_records(app, client, imported):
    day, = _free_days(app, imported.vol.id, 1, back=1)  # recent enough for the page's latest records
    officer = app.test_client()
    login(officer, "longting_officer")
    _apply(officer, _check(officer, _json([_row(imported.vol, day, project="最近的旧系统项目")])))
    login(client, "vol_longting")
    resp = client.get("/my/record")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "最近的旧系统项目" in html
    assert f"{_ledger_in_step(app, imported.vol.id) / 60:.2f}".rstrip("0").rstrip(".") in html


def test_summary_certificate__includes_transferred_records_a_group_certificate_never(app, client, imported):
    from app.services import certificates

    login(client, "vol_longting")
    assert client.post("/my/certificates/summary").status_code == 302
    with app.app_context():
        summary = db.session.scalar(select(Certificate).where(Certificate.kind == "summary"))
        snapshot = json.loads(summary.snapshot_json)
        assert {r.external_project for r in imported.records} <= {r["project"] for r in snapshot["records"]}
        assert summary.minutes == db.session.scalar(select(Volunteer.total_minutes).where(
            Volunteer.id == imported.vol.id))
        volunteer = volunteer_of("vol_longting")
        transferred = {r.id for r in imported.records}
        for group in db.session.scalars(select(VolunteerGroup)):
            assert not transferred & {r.id for r in certificates.certified_records(volunteer, group=group)}
        assert None not in certificates.certificate_groups(volunteer)
    page = client.get("/my/certificates/")
    assert page.status_code == 200


def _token(client, username):
    resp = client.post("/api/v1/security/login", json={"username": username, "password": "Demo12345!",
                                                       "provider": "db"})
    assert resp.status_code == 200
    return {"Authorization": f"Bearer {resp.get_json()['access_token']}"}


def test_api_service_record__lists_and_shows_transferred_records(app, client, imported):
    record = imported.records[0]
    for username in ("vol_longting", "henan_officer", "admin"):
        headers = _token(client, username)
        one = client.get(f"/api/v1/service_record/{record.id}", headers=headers)
        assert one.status_code == 200, (username, one.data[:300])
        result = one.get_json()["result"]
        assert (result["external_system"], result["external_id"], result["external_project"],
                result["external_org"], result["source"], result["region_code"]) == (
            FOREIGN, record.external_id, record.external_project, "旧系统团体甲", "transfer_in", ZHENGZHOU_JINSHUI)
        listed = client.get("/api/v1/service_record/?q=(page_size:100)", headers=headers)
        assert listed.status_code == 200
        assert record.id in listed.get_json()["ids"] or username != "vol_longting"
    # The service region (郑州) is outside 龙亭区: its officer does not read it.
    assert client.get(f"/api/v1/service_record/{record.id}",
                      headers=_token(client, "longting_officer")).status_code == 404


def test_oversight_list_and_show__name_the_other_systems_project(app, client, imported):
    login(client, "henan_officer")
    html = client.get("/service-records/list/?psize_ServiceRecordModelView=100").get_data(as_text=True)
    assert imported.records[0].external_project in html and "旧系统团体甲" in html
    show = client.get(f"/service-records/show/{imported.records[0].id}")
    assert show.status_code == 200
    text = show.get_data(as_text=True)
    assert imported.records[0].external_id in text and FOREIGN in text and "None" not in re.sub(r"<[^>]+>", "", text)


# --- CLI ---


def test_cli__export_then_import_applies_the_valid_rows(app, tmp_path):
    zhengzhou, longting = _vol(app, "vol_zhengzhou"), _vol(app, "vol_longting")
    runner = app.test_cli_runner()
    out = tmp_path / "zz.csv"
    result = runner.invoke(args=["records", "export", zhengzhou.no, "--format", "csv", "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = list(csv.DictReader(io.StringIO(out.read_bytes().decode("utf-8-sig"))))
    assert lines and {line["volunteer_no"] for line in lines} == {zhengzhou.no}
    for line in lines:
        line.update(source_system="zz-legacy", volunteer_no=longting.no, real_name=longting.name)
    file = tmp_path / "in.csv"
    file.write_bytes(_csv(lines))
    dry = runner.invoke(args=["records", "import", str(file), "--user", "henan_officer", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert _imported(app, longting.id) == []
    with app.app_context():
        assert db.session.scalar(select(func.count(RecordImport.id))) == 0
    result = runner.invoke(args=["records", "import", str(file), "--user", "henan_officer"])
    assert result.exit_code == 0, result.output
    approved = [n + 2 for n, line in enumerate(lines) if line["status"] == "approved"]
    refused = [n + 2 for n, line in enumerate(lines) if line["status"] != "approved"]
    assert refused and all(f"row {n}: error: status:" in result.output for n in refused)
    assert all(f"row {n}: imported" in result.output for n in approved)
    records = _imported(app, longting.id)
    assert len(records) == len(approved)
    assert {r.created_by_fk for r in records} == {_user_id(app, "henan_officer")}
    _ledger_in_step(app, longting.id)
    json_out = runner.invoke(args=["records", "export", longting.no])
    assert json_out.exit_code == 0
    assert {r["source_system"] for r in json.loads(json_out.output)["records"]} == {"volunteer-cloud", "zz-legacy"}


def test_cli__refuses_a_user_who_is_no_officer_and_an_unknown_number(app, tmp_path):
    file = tmp_path / "r.json"
    file.write_bytes(_json([_row(_vol(app, "vol_longting"), today() - timedelta(days=500))]))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["records", "import", str(file), "--user", "vol_longting"]).exit_code != 0
    assert runner.invoke(args=["records", "import", str(file), "--user", "nobody"]).exit_code != 0
    assert runner.invoke(args=["records", "export", "000000000000000"]).exit_code != 0
    assert _imported(app, _vol(app, "vol_longting").id) == []


# --- The documented samples ---


@pytest.mark.parametrize("name", ["records.json", "records.csv"])
def test_example_files__import_cleanly_against_the_demo(app, client, name):
    """docs/examples hold a valid import for longting_officer (numbers as the demo gives them)."""
    data = (ROOT / "docs" / "examples" / name).read_bytes()
    numbers = {"李明华": _vol(app, "vol_longting").no, "张子涵": _vol(app, "vol_minor").no}
    text = data.decode("utf-8-sig")
    for sample, current in (("412024000000013", numbers["李明华"]), ("412025000000018", numbers["张子涵"])):
        text = text.replace(sample, current)
    login(client, "longting_officer")
    batch = _check(client, text.encode("utf-8-sig"), name)
    rows = _rows(app, batch)
    assert rows and all(r["outcome"] == "ok" for r in rows.values()), rows
    _apply(client, batch)
    with app.app_context():
        assert db.session.scalar(select(func.count(ServiceRecord.id)).where(
            ServiceRecord.source == RecordSource.TRANSFER_IN)) == len(rows)


def test_format_doc__names_every_field():
    doc = (ROOT / "docs" / "record-format.md").read_text(encoding="utf-8")
    assert all(f"`{key}`" in doc for key in record_exchange.FIELDS)
    assert all(alias in doc.lower() for alias in record_exchange.HEADER_ALIASES)


def test_scope_helpers__g_user_not_needed_for_cli(app):
    """The service takes scope and actor explicitly (the CLI has no request)."""
    from app.security.scope import scope_for_user

    vol = _vol(app, "vol_longting")
    with app.app_context():
        user = app.appbuilder.sm.find_user(username="longting_officer")
        scope = scope_for_user(user)
        assert not hasattr(g, "user") or g.get("user") is None
        day, = _free_days(app, vol.id, 1)
        batch = record_exchange.check_record_file(
            "r.json", io.BytesIO(_json([_row(vol, day)])), scope=scope, actor_id=user.id)
        db.session.commit()
        result = record_exchange.apply_record_import(batch, scope=scope, actor_id=user.id)
        db.session.commit()
        assert (result.applied, result.skipped) == (1, 0)
