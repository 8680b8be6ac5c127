"""Benchmark: list pages at scale, next to the raw SQL floor (DESIGN.md §6).

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench_vc \
        .venv/bin/python bench/list_pages.py --volunteers 1000000 --records 0

Seeds the demo, then bulk-inserts synthetic volunteers spread over every county of
Henan (PostgreSQL only: generate_series), makes every fifth of them a member of one
community team (a 200k-member roster at 1M volunteers), and times each list page
in-process (Flask test client, logged in) against the page's own SQL run directly.
Not in CI.
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

# Every fifth synthetic volunteer joins the demo's 北书店 team (its admin: longting_team_admin).
SEED_MEMBERS = """
INSERT INTO membership (group_id, volunteer_id, volunteer_name, volunteer_no, group_path, status, origin,
    region_id, region_path, created_on, changed_on, decided_on)
SELECT grp.id, v.id, v.real_name, v.volunteer_no, grp.group_path,
    CASE WHEN v.id % 100 = 0 THEN 'pending' ELSE 'active' END, 'self_join',
    grp.region_id, grp.region_path, now(), now(), now()
FROM volunteer v, volunteer_group grp
WHERE grp.name = :team AND v.id_blind LIKE 'bench%%' AND v.id % 5 = 0
"""
BIG_TEAM = "北书店街道社区志愿服务队"


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
            db.session.execute(text(SEED_MEMBERS), {"team": BIG_TEAM})
            db.session.commit()
            db.session.execute(text("ANALYZE"))
            db.session.commit()
        total = db.session.scalar(text("SELECT count(*) FROM volunteer"))
        members = db.session.scalar(text("SELECT count(*) FROM membership"))
        team_path = db.session.scalar(text("SELECT group_path FROM volunteer_group WHERE name = :n"),
                                      {"n": BIG_TEAM})
    print(f"volunteers: {total}, memberships: {members}")

    def region(path):
        return "TRUE" if path is None else f"region_path >= '{path}' AND region_path < '{path[:-1]}0'"

    roster_floor = (f"SELECT * FROM membership WHERE group_path >= '{team_path}' AND group_path < "
                    f"'{team_path[:-1]}0' AND status IN ('active', 'pending') ORDER BY id DESC LIMIT 20")
    pages = [
        ("kaifeng_officer", "/volunteers/list/", region("410000/410200/")),
        ("henan_officer", "/volunteers/list/", region("410000/")),
        ("longting_officer", "/volunteers/list/", region("410000/410200/410202/")),
        ("admin", "/volunteers/list/", region(None)),
        ("longting_team_admin", "/group-admin/members/list/", roster_floor),
        ("longting_corps_admin", "/group-admin/members/list/", roster_floor),
        ("vol_shunhe", "/my/groups/search?q=%E5%BF%97%E6%84%BF", None),
        ("longting_team_admin", "/group-admin/join-requests/", None),
    ]
    for username, url, floor in pages:
        client = app.test_client()
        client.post("/login/", data={"username": username, "password": DEMO_PASSWORD})
        assert client.get(url).status_code == 200, url
        page_ms = timed(lambda: client.get(url), args.runs)
        if floor is None:
            print(f"{username:22s} {url:40s} page {page_ms:7.1f} ms")
            continue
        floor_sql = text(floor if floor.startswith("SELECT") else
                         f"SELECT * FROM volunteer WHERE {floor} ORDER BY id DESC LIMIT 20")
        with app.app_context():
            floor_ms = timed(lambda: db.session.execute(floor_sql).all(), args.runs)
        print(f"{username:22s} {url:40s} page {page_ms:7.1f} ms   raw SQL floor {floor_ms:6.2f} ms")


if __name__ == "__main__":
    main()
