"""Benchmark: officer list pages at scale, next to the raw SQL floor (DESIGN.md §6).

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench_vc \
        .venv/bin/python bench/list_pages.py --volunteers 1000000 --records 0

Seeds the demo, then bulk-inserts synthetic volunteers spread over every county of
Henan (PostgreSQL only: generate_series), and times each list page in-process
(Flask test client, logged in) against the page's own SQL run directly. Not in CI.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import text  # noqa: E402

from app import create_app  # noqa: E402
from app.demo import DEMO_PASSWORD, load_demo  # noqa: E402
from app.extensions import db  # noqa: E402

SEED_VOLUNTEERS = """
INSERT INTO volunteer (real_name, id_type, id_number_enc, id_blind, id_number_masked, email,
    status, total_minutes, region_id, region_path, created_on, changed_on, submitted_on)
SELECT '志愿者' || g, 'resident', '\\x00'::bytea, 'bench' || g, '4101**********000' || (g % 10),
    'b' || g || '@example.cn', CASE WHEN g % 50 = 0 THEN 'pending' ELSE 'approved' END, (g % 600) * 60,
    r.id, r.path, now(), now(), now()
FROM generate_series(1, :n) AS g
JOIN LATERAL (SELECT id, path FROM region WHERE level = 3 AND code LIKE '41%%'
              ORDER BY id OFFSET (g % :counties) LIMIT 1) r ON true
"""


def timed(fn, runs):
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--volunteers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--skip-seed", action="store_true")
    args = parser.parse_args()
    app = create_app(WTF_CSRF_ENABLED=False, AUDIT_ENABLED=False)
    with app.app_context():
        if not args.skip_seed:
            load_demo()
            counties = db.session.scalar(text("SELECT count(*) FROM region WHERE level = 3 AND code LIKE '41%'"))
            db.session.execute(text(SEED_VOLUNTEERS), {"n": args.volunteers, "counties": counties})
            db.session.commit()
            db.session.execute(text("ANALYZE"))
            db.session.commit()
        total = db.session.scalar(text("SELECT count(*) FROM volunteer"))
    print(f"volunteers: {total}")
    pages = [("kaifeng_officer", "/volunteers/list/", "410000/410200/"),
             ("henan_officer", "/volunteers/list/", "410000/"),
             ("longting_officer", "/volunteers/list/", "410000/410200/410202/"),
             ("admin", "/volunteers/list/", None)]
    for username, url, path in pages:
        client = app.test_client()
        client.post("/login/", data={"username": username, "password": DEMO_PASSWORD})
        assert client.get(url).status_code == 200
        page_ms = timed(lambda: client.get(url), args.runs)
        where = "TRUE" if path is None else f"region_path >= '{path}' AND region_path < '{path[:-1]}0'"
        floor_sql = text(f"SELECT * FROM volunteer WHERE {where} ORDER BY id DESC LIMIT 20")
        with app.app_context():
            floor_ms = timed(lambda: db.session.execute(floor_sql).all(), args.runs)
        print(f"{username:18s} {url:22s} page {page_ms:7.1f} ms   raw SQL floor {floor_ms:6.2f} ms")


if __name__ == "__main__":
    main()
