"""数据导出 in bounded memory: 100,000 volunteers in kaifeng_officer's scope, streamed as
CSV and written as Excel through the test client, with tracemalloc's peak far below what
holding the rows would take. Prints the measured numbers (``pytest -s`` shows them)."""
from __future__ import annotations

import gc
import io
import os
import time
import tracemalloc
import zipfile
from dataclasses import dataclass

import pytest
from sqlalchemy import func, insert, select

from app.extensions import db
from app.models import IdType, Region, ReviewStatus, User, Volunteer
from app.security.scope import scope_clause, scope_for_user
from tests.conftest import app_on_copy, login

ROWS = 100_000
BATCH = 10_000
PEAK_LIMIT = 30 * 1024 * 1024  # bytes; the CSV alone is ~10 MiB, its rows as Python objects several times more
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"


def _volunteer_rows(region: Region, start: int, count: int):
    """Approved volunteers in ``region``: masked values only (the export never decrypts, so
    the ciphertext can be a placeholder); unique blind indexes."""
    for i in range(start, start + count):
        yield {
            "real_name": SURNAMES[i % len(SURNAMES)] + "测" + str(i), "id_type": IdType.RESIDENT,
            "id_number_enc": b"\0" * 40, "id_blind": f"memtest{i:010d}",
            "id_number_masked": f"4102**********{i % 10000:04d}", "gender": "MF"[i % 2],
            "email": f"m{i}@example.org", "phone_masked": f"138****{i % 10000:04d}",
            "region_id": region.id, "region_path": region.path, "status": ReviewStatus.APPROVED,
            "total_minutes": (i % 50) * 30,
        }


@pytest.fixture(scope="module")
def big_app(template_db):
    """A copy of the demo database with 100,000 more volunteers in 龙亭区 (inside 开封市),
    inserted with Core executemany in batches."""
    with app_on_copy(template_db) as application:
        started = time.perf_counter()
        with application.app_context():
            region = db.session.scalar(select(Region).where(Region.code == "410202"))
            for start in range(0, ROWS, BATCH):
                db.session.execute(insert(Volunteer), list(_volunteer_rows(region, start, BATCH)))
            db.session.commit()
            user = db.session.scalar(select(User).where(User.username == "kaifeng_officer"))
            expected = db.session.scalar(select(func.count()).select_from(Volunteer).where(
                scope_clause(Volunteer, scope_for_user(user))))
            db.session.remove()
        print(f"\n[exports memory] inserted {ROWS:,} volunteers in {time.perf_counter() - started:.1f} s")
        assert expected >= ROWS
        application.config["EXPECTED_EXPORT_ROWS"] = expected
        yield application


def _rss_kib() -> dict[str, int] | None:
    """VmRSS and VmHWM (peak RSS) of this process in KiB; None where /proc is missing."""
    try:
        with open("/proc/self/status") as status:
            return {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in status)
                    if k in ("VmRSS", "VmHWM")}
    except OSError:
        return None


def _reset_rss_peak() -> bool:
    """Make VmHWM start again from the current RSS (Linux: write 5 to clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


@dataclass
class Measured:
    size: int = 0  # bytes received
    rows: int = 0  # lines of CSV / <row> elements of the sheet, header included
    seconds: float = 0.0
    traced_peak: int | None = None  # tracemalloc's peak above the start (bytes)
    rss_peak: int | None = None  # peak RSS growth of the whole process (bytes), C allocations included


def _measure(client, url: str, consume, *, trace: bool) -> Measured:
    """Download ``url`` chunk by chunk through ``consume`` (-> size, rows) and measure
    the peak memory: Python allocations with tracemalloc (``trace``; slows Python down
    about fourfold), else the process's peak RSS growth."""
    gc.collect()
    result = Measured()
    rss_before = _rss_kib() if not trace and _reset_rss_peak() else None
    if trace:
        tracemalloc.start()
        start_mem = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    resp = client.get(url, buffered=False)
    assert resp.status_code == 200
    result.size, result.rows = consume(resp)
    resp.close()
    result.seconds = time.perf_counter() - started
    if trace:
        result.traced_peak = tracemalloc.get_traced_memory()[1] - start_mem
        tracemalloc.stop()
    elif rss_before is not None:
        result.rss_peak = (_rss_kib()["VmHWM"] - rss_before["VmRSS"]) * 1024
    return result


def _mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.1f} MiB"


def _count_csv(resp):
    """Read the stream piece by piece, keeping only counts: data rows end with CRLF."""
    size = lines = pieces = 0
    for piece in resp.response:
        size += len(piece)
        lines += piece.count(b"\r\n")
        pieces += 1
    assert pieces > 2  # streamed in chunks, not one body
    return size, lines


def _count_xlsx(resp):
    body = io.BytesIO()
    for piece in resp.response:
        body.write(piece)
    size = body.tell()
    with zipfile.ZipFile(body) as archive:
        with archive.open("xl/worksheets/sheet1.xml") as sheet:
            rows, tail = 0, b""
            while block := sheet.read(1 << 20):
                rows += (tail + block).count(b"<row")  # a tag split over two blocks is counted once
                tail = block[-3:]
    return size, rows


def test_csv_export__100k_rows_stream_in_bounded_memory(big_app):
    client = big_app.test_client()
    login(client, "kaifeng_officer")
    expected = big_app.config["EXPECTED_EXPORT_ROWS"]
    # RSS first: a traced run leaves freed arenas behind that a second run would reuse unseen.
    rss = _measure(client, "/oversight/exports/volunteers.csv", _count_csv, trace=False)
    traced = _measure(client, "/oversight/exports/volunteers.csv", _count_csv, trace=True)
    print(f"[exports memory] CSV: {traced.rows - 1:,} rows, {_mib(traced.size)}; tracemalloc peak "
          f"{_mib(traced.traced_peak)} ({traced.seconds:.1f} s traced); peak RSS growth {_mib(rss.rss_peak)} "
          f"({rss.seconds:.1f} s)")
    assert traced.rows == rss.rows == expected + 1  # header + one line per volunteer
    assert traced.traced_peak < PEAK_LIMIT
    assert traced.traced_peak < traced.size / 2  # nothing holds all the rows (or the file)
    assert rss.rss_peak is None or rss.rss_peak < PEAK_LIMIT


def test_xlsx_export__100k_rows_in_bounded_memory(big_app):
    """Measured as the process's peak RSS: under tracemalloc openpyxl runs about four times
    slower (130 s here; ``VC_TRACE_XLSX=1`` measures that way too)."""
    client = big_app.test_client()
    login(client, "kaifeng_officer")
    expected = big_app.config["EXPECTED_EXPORT_ROWS"]
    trace = os.environ.get("VC_TRACE_XLSX") == "1" or _rss_kib() is None
    # The test keeps the received file to count its rows: it counts in the peak too.
    result = _measure(client, "/oversight/exports/volunteers.xlsx", _count_xlsx, trace=trace)
    print(f"[exports memory] Excel: {result.rows - 1:,} rows, {_mib(result.size)} in {result.seconds:.1f} s; "
          f"tracemalloc peak {_mib(result.traced_peak)}; peak RSS growth {_mib(result.rss_peak)} "
          "(the received file included)")
    assert result.rows == expected + 1
    peak = result.traced_peak if trace else result.rss_peak
    assert peak is None or peak < PEAK_LIMIT
