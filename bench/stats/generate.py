"""Generate a province-sized data set for the statistics benchmark (issue 8 item 5).

    . .venv/bin/activate
    python bench/stats/generate.py --volunteers 1000000 \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_stats_1m

PostgreSQL only. The database is dropped and created again (only names starting with
``bench_stats`` are accepted), migrated, loaded with the national regions and the roles
(``flask db upgrade``, ``load-regions``, ``bootstrap``), then filled with COPY from Python
generators — no ORM loops:

- ten synthetic streets under every Henan county and ten communities under every street,
  with populations set so that about half the communities reach the 13 % registration
  target (population = expected registered volunteers ÷ a rate drawn from 5–22 %);
- N volunteers over the Henan counties (county sizes vary), homes mostly in communities,
  approved with national volunteer numbers, gender, birth dates, approval times over
  four years; a few pending (the review backlog) and rejected;
- ≈ N/50 groups (at least 400) of every type at province, prefecture, county, street
  and community level, nested under the county corps, prefecture and province
  federations, with their ``group_path``; civil-unit groups get a civil-unit register
  row, and a quarter more civil units have no group;
- per approved group a standing project plus up to four events over the three-year
  window, with categories and one or two positions each;
- memberships (every approved volunteer in one group near home, a fifth in a second
  one, some of those left or removed), the enrollments the records imply, and
  10 × N service records over three years (heavy-tailed per volunteer, at most 24 hours
  a day, mostly approved; pending and rejected ones, corrections ± and records
  transferred in), with ``volunteer_day`` and ``volunteer.total_minutes`` consistent.

Secondary indexes of the big tables are dropped before the COPY and built afterwards;
foreign-key triggers are off during the load (``session_replication_role = replica``).
At the end ``rollups.rebuild()`` runs (when app/services/rollups.py exists) and the bench
users are created: henan_officer (河南省), kaifeng_officer (开封市), longting_officer
(龙亭区) and longting_corps_admin (the 龙亭区 county corps), password ``Demo12345!``.
Every step is timed; the timings are printed and returned.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import psycopg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app.models import SERVICE_CATEGORIES  # noqa: E402
from app.services.idcards import mod11_2  # noqa: E402

PROVINCE = "410000"
PASSWORD = "Demo12345!"
WINDOW_DAYS = 3 * 365  # service records cover the last three years
STREETS_PER_COUNTY = 10
COMMUNITIES_PER_STREET = 10
RECORDS_PER_VOLUNTEER = 10
GROUPS_PER_VOLUNTEERS = 50
MIN_GROUPS = 400
# Tables loaded in bulk: their secondary indexes are dropped and built again afterwards.
BULK_TABLES = ("volunteer", "membership", "enrollment", "service_record")
NULL = "\\N"
# Category weights: community, elderly and civility work dominate, as in the city's data.
CATEGORY_WEIGHTS = {"community": 8, "elderly": 6, "civility": 6, "environment": 4, "culture_sports": 3,
                    "poverty": 3, "emergency": 2, "medical_education": 2, "legal_aid": 1,
                    "military_families": 1, "public_security": 2, "science": 1, "rural_civility": 3,
                    "counselling": 1, "disability": 2, "major_events": 1}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红建华飞鹏辉宇浩然欣怡梓涵子轩雨桐一诺思远佳琪文博俊杰晨曦"
MINUTES = (60, 90, 120, 120, 150, 180, 240, 240, 300, 360, 480)
GROUP_TYPE_SHARES = (("community", 0.45), ("street", 0.10), ("civil_unit", 0.15), ("school", 0.10),
                     ("enterprise", 0.10), ("social_org", 0.10))
GROUP_WORDS = {"community": "社区志愿服务队", "street": "街道志愿服务队", "civil_unit": "文明单位志愿服务队",
               "school": "学校志愿服务队", "enterprise": "企业志愿服务队", "social_org": "公益协会",
               "county_corps": "志愿服务总队", "federation": "志愿服务联合会"}


def log(message: str) -> None:
    print(message, flush=True)


@contextlib.contextmanager
def step(timings: dict, name: str):
    """Time one step into ``timings`` (seconds) and print it."""
    start = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - start
    log(f"  {name:34s} {timings[name]:8.1f} s")


def conninfo(url: str) -> str:
    """A psycopg connection string from a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# --- Database: drop, create, migrate, regions, roles ---


def recreate_database(url: str) -> None:
    """Drop and create the benchmark database (only ``bench_stats*`` names), then migrate
    it and load the regions and roles with the project's own ``flask`` commands."""
    parsed = make_url(url)
    name = parsed.database or ""
    if not name.startswith("bench_stats"):
        raise SystemExit(f"refusing to recreate {name!r}: the benchmark database name must start with bench_stats")
    admin = conninfo(str(parsed.set(database="postgres")))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    env = dict(os.environ, DATABASE_URL=url)
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    for args in (["db", "upgrade"], ["load-regions"], ["bootstrap"]):
        done = subprocess.run(flask + args, cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


# --- COPY helpers ---


class CopyStream:
    """One ``COPY table (columns) FROM STDIN`` on its own connection; rows are lists of
    strings (``NULL`` for null), written in chunks."""

    def __init__(self, conn: psycopg.Connection, table: str, columns: str, chunk: int = 4000):
        self.conn, self.table, self.columns, self.chunk = conn, table, columns, chunk
        self.buffer: list[str] = []
        self.rows = 0

    def __enter__(self):
        self.cursor = self.conn.cursor()
        self._cm = self.cursor.copy(f"COPY {self.table} ({self.columns}) FROM STDIN")
        self.copy = self._cm.__enter__()
        return self

    def add(self, row) -> None:
        self.buffer.append("\t".join(row))
        self.rows += 1
        if len(self.buffer) >= self.chunk:
            self.copy.write("\n".join(self.buffer) + "\n")
            self.buffer.clear()

    def __exit__(self, *exc):
        if self.buffer and exc[0] is None:
            self.copy.write("\n".join(self.buffer) + "\n")
        self.buffer.clear()
        return self._cm.__exit__(*exc)


def bulk_connection(info: str) -> psycopg.Connection:
    """A connection for loading: no foreign-key triggers, no synchronous commit."""
    conn = psycopg.connect(info)
    conn.execute("SET session_replication_role = replica")
    conn.execute("SET synchronous_commit = off")
    return conn


def drop_secondary_indexes(conn: psycopg.Connection, table: str) -> list[str]:
    """Drop the non-primary indexes and unique constraints of ``table`` that no foreign
    key depends on; return the statements that create them again."""
    rows = conn.execute("""
        SELECT ic.relname, pg_get_indexdef(i.indexrelid), con.conname, pg_get_constraintdef(con.oid)
        FROM pg_index i
        JOIN pg_class ic ON ic.oid = i.indexrelid
        LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
                                    AND con.contype IN ('u', 'x')
        WHERE i.indrelid = %s::regclass AND NOT i.indisprimary
          AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = i.indexrelid)
        """, (table,)).fetchall()
    restore = []
    for index_name, index_def, con_name, con_def in rows:
        if con_name:
            conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{con_name}"')
            restore.append(f'ALTER TABLE {table} ADD CONSTRAINT "{con_name}" {con_def}')
        else:
            conn.execute(f'DROP INDEX "{index_name}"')
            restore.append(index_def)
    return restore


# --- The data set ---


@dataclass
class Region:
    id: int
    code: str
    name: str
    level: int
    path: str
    parent_id: int | None
    population: int | None = None


@dataclass
class County:
    region: Region
    weight: float
    streets: list[Region] = field(default_factory=list)
    communities: list[Region] = field(default_factory=list)
    communities_of: dict[int, list[Region]] = field(default_factory=dict)  # street id -> communities


@dataclass
class Group:
    id: int
    name: str
    type: str
    region: Region
    county: County | None
    parent: "Group | None"
    path: str
    status: str
    approved_day: int
    projects: list = field(default_factory=list)  # [standing project, *events]
    members: int = 0


@dataclass
class Project:
    id: int
    group: Group
    region: Region
    category: str
    start: int  # day index
    end: int
    positions: list = field(default_factory=list)  # [(position id, default minutes)]


class DataSet:
    """Plans and writes the data set; ``n`` volunteers, all randomness from ``seed``."""

    def __init__(self, url: str, n: int, *, seed: int = 8, records_per_volunteer: int = RECORDS_PER_VOLUNTEER,
                 volunteer_days: bool = True, today: date | None = None):
        self.url, self.info, self.n = url, conninfo(url), n
        self.rng = random.Random(seed)
        self.records_target = records_per_volunteer * n
        self.volunteer_days = volunteer_days
        self.today = today or date.today()
        self.window_start = self.today - timedelta(days=WINDOW_DAYS - 1)  # day index 0
        self.W = WINDOW_DAYS
        # Day strings for indexes from four years before the window to a year after today.
        self.day_offset = 4 * 366
        first = self.window_start - timedelta(days=self.day_offset)
        self.days = [(first + timedelta(days=i)).isoformat() for i in range(self.day_offset + self.W + 800)]
        self.timings: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def day(self, index: int) -> str:
        return self.days[index + self.day_offset]

    def stamp(self, index: int, rnd: float) -> str:
        """A naive-UTC timestamp on local day ``index`` between 09:00 and 18:00 (UTC+8)."""
        minute = int(rnd * 540)
        return f"{self.days[index + self.day_offset]} {1 + minute // 60:02d}:{minute % 60:02d}:00"

    # --- Steps ---

    def generate(self) -> dict:
        total_start = time.perf_counter()
        log(f"generating {self.n:,} volunteers, ~{self.records_target:,} service records into "
            f"{make_url(self.url).database}")
        with step(self.timings, "create + migrate + regions + roles"):
            recreate_database(self.url)
        with psycopg.connect(self.info) as conn:
            with step(self.timings, "regions (streets, communities)"):
                self.add_regions(conn)
            with step(self.timings, "groups, projects"):
                self.add_groups(conn)
                self.add_projects(conn)
            conn.commit()
            with step(self.timings, "drop secondary indexes"):
                restore = [sql for table in BULK_TABLES for sql in drop_secondary_indexes(conn, table)]
                conn.commit()
            with step(self.timings, "volunteers, members, records (COPY)"):
                self.add_people()
            with step(self.timings, "positions, civil units, counters"):
                self.add_positions(conn)
                self.add_civil_units(conn)
                self.add_counters(conn)
                self.set_sequences(conn)
                conn.commit()
            with step(self.timings, "build secondary indexes"):
                conn.execute("SET maintenance_work_mem = '1GB'")
                for sql in restore:
                    conn.execute(sql)
                conn.commit()
        with psycopg.connect(self.info, autocommit=True) as conn, step(self.timings, "vacuum analyze"):
            conn.execute("VACUUM ANALYZE")
        self.timings["generation total"] = time.perf_counter() - total_start
        log(f"  {'generation total':34s} {self.timings['generation total']:8.1f} s")
        with step(self.timings, "users (officers, group admin)"):
            self.add_users()
        self.rebuild_rollups()
        result = {"timings": self.timings, "counts": self.counts}
        self.remember(result)
        return result

    def remember(self, result: dict) -> None:
        """Keep the timings and counts in the database itself (table ``bench_generation``),
        so a later ``run.py --reuse`` reports how this data set was made."""
        info = dict(result, volunteers=self.n, today=self.today.isoformat())
        with psycopg.connect(self.info) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS bench_generation (generated_on timestamptz DEFAULT now(), "
                         "info jsonb NOT NULL)")
            conn.execute("INSERT INTO bench_generation (info) VALUES (%s)", (json.dumps(info),))

    def add_regions(self, conn) -> None:
        """Streets and communities under every Henan county that has none; populations."""
        rng = self.rng
        rows = conn.execute("SELECT id, code, name, level, path, parent_id FROM region WHERE path >= %s AND "
                            "path < %s ORDER BY code", (PROVINCE + "/", PROVINCE + "0")).fetchall()
        regions = [Region(*row) for row in rows]
        by_id = {r.id: r for r in regions}
        next_id = conn.execute("SELECT max(id) FROM region").fetchone()[0] + 1
        self.province = next(r for r in regions if r.level == 1)
        self.prefectures = [r for r in regions if r.level == 2]
        self.counties = [County(r, rng.lognormvariate(0, 0.5)) for r in regions if r.level == 3]
        county_of = {c.region.id: c for c in self.counties}
        new = []
        for county in self.counties:
            below = [r for r in regions if r.level > 3 and r.path.startswith(county.region.path)]
            if not below:
                for i in range(1, STREETS_PER_COUNTY + 1):
                    street = Region(next_id, f"{county.region.code}{i:03d}", f"{county.region.name}第{i}街道", 4,
                                    f"{county.region.path}{county.region.code}{i:03d}/", county.region.id)
                    next_id += 1
                    new.append(street)
                    for j in range(1, COMMUNITIES_PER_STREET + 1):
                        code = f"{street.code}{j:03d}"
                        new.append(Region(next_id, code, f"{county.region.name}{i}-{j}社区", 5,
                                          f"{street.path}{code}/", street.id))
                        next_id += 1
                below = [r for r in new if r.path.startswith(county.region.path)]
            county.streets = [r for r in below if r.level == 4]
            county.communities = [r for r in below if r.level == 5]
            for street in county.streets:
                county.communities_of[street.id] = [c for c in county.communities if c.parent_id == street.id]
            by_id.update({r.id: r for r in below})
        self.by_id = by_id
        # Populations: expected registered volunteers at the community ÷ a rate of 5–22 %
        # (about half the communities reach 13 %); streets, counties and up add 15 % and
        # 10 % for the people registered there rather than in a community.
        total_weight = sum(c.weight for c in self.counties)
        approved = self.n * 0.997
        for county in self.counties:
            expected = approved * county.weight / total_weight * 0.8 / max(len(county.communities), 1)
            for community in county.communities:
                community.population = max(1, round(expected / rng.uniform(0.05, 0.22)))
            for street in county.streets:
                street.population = round(sum(c.population for c in county.communities_of[street.id]) * 1.15)
            county.region.population = round(sum(s.population for s in county.streets) * 1.1) or None
        for prefecture in self.prefectures:
            prefecture.population = sum(c.region.population or 0 for c in self.counties
                                        if c.region.parent_id == prefecture.id)
        self.province.population = sum(c.region.population or 0 for c in self.counties)
        new_ids = {r.id for r in new}
        with conn.cursor() as cur, cur.copy("COPY region (id, code, name, level, parent_id, path, population) "
                                            "FROM STDIN") as copy:
            for r in new:
                copy.write_row((r.id, r.code, r.name, r.level, r.parent_id, r.path, r.population))
        with conn.cursor() as cur:
            cur.executemany("UPDATE region SET population = %s WHERE id = %s",
                            [(r.population, r.id) for r in by_id.values() if r.id not in new_ids])
        self.county_of = county_of
        self.counts["regions added"] = len(new)

    def add_groups(self, conn) -> None:
        """The federations, one corps per county, and the other groups by type."""
        rng = self.rng
        groups: list[Group] = []

        def add(name, gtype, region, county, parent, status="approved", approved_day=-1200):
            gid = len(groups) + 1
            group = Group(gid, name, gtype, region, county, parent,
                          (parent.path if parent else "") + f"{gid}/", status, approved_day)
            groups.append(group)
            return group

        province_fed = add(f"河南省{GROUP_WORDS['federation']}", "federation", self.province, None, None)
        prefecture_fed = {p.id: add(f"{p.name}{GROUP_WORDS['federation']}", "federation", p, None, province_fed)
                          for p in self.prefectures}
        self.corps = {}
        for county in self.counties:
            parent = prefecture_fed.get(county.region.parent_id, province_fed)
            self.corps[county.region.id] = add(f"{county.region.name}{GROUP_WORDS['county_corps']}",
                                               "county_corps", county.region, county, parent)
        others = max(self.n // GROUPS_PER_VOLUNTEERS, MIN_GROUPS) - len(groups)
        weights = [c.weight for c in self.counties]
        free_communities = [(county, c) for county in self.counties for c in county.communities]
        rng.shuffle(free_communities)
        for gtype, share in GROUP_TYPE_SHARES:
            for _ in range(round(others * share)):
                county = rng.choices(self.counties, weights)[0]
                if gtype == "community" and free_communities:
                    county, region = free_communities.pop()
                elif gtype in ("community", "street"):
                    region = rng.choice(county.streets)
                else:
                    u = rng.random()
                    region = (county.region if u < 0.55 else rng.choice(county.streets) if u < 0.9
                              else rng.choice(county.communities))
                corps = self.corps[county.region.id]
                parent = corps if gtype in ("community", "street") or (gtype != "civil_unit" and rng.random() < 0.5) \
                    else None
                u = rng.random()
                status = "approved" if u < 0.97 else "pending" if u < 0.99 else "suspended"
                word = GROUP_WORDS["street" if gtype == "community" and region.level == 4 else gtype]
                add(f"{region.name}{word}{len(groups) + 1}", "community" if gtype == "street" else gtype,
                    region, county, parent, status, rng.randint(-700, self.W - 30))
        self.groups = groups
        self.community_team = {g.region.id: g for g in groups if g.status == "approved" and g.region.level == 5
                               and g.type == "community"}
        self.street_teams: dict[int, list[Group]] = {}
        self.county_pool: dict[int, list[Group]] = {}
        for g in groups:
            if g.status != "approved" or g.county is None:
                continue
            if g.type == "community" and g.region.level == 4:
                self.street_teams.setdefault(g.region.id, []).append(g)
            elif not (g.type == "community" and g.region.level == 5):
                self.county_pool.setdefault(g.county.region.id, []).append(g)
        cols = ("id, name, parent_id, group_path, group_type, is_legal_person, join_policy, status, approved_on, "
                "region_id, region_path, created_on, changed_on, staff_headcount")
        with CopyStream(conn, "volunteer_group", cols) as out:
            for g in groups:
                approved = g.status != "pending"
                created = self.stamp(g.approved_day - 3, 0.5)
                out.add((str(g.id), g.name, str(g.parent.id) if g.parent else NULL, g.path, g.type,
                         "t" if g.type in ("federation", "social_org") else "f", "verify", g.status,
                         self.stamp(g.approved_day, 0.3) if approved else NULL, str(g.region.id), g.region.path,
                         created, created, NULL))
        self.counts["groups"] = len(groups)

    def add_projects(self, conn) -> None:
        """Per approved group: a standing project over the whole window and up to four events."""
        rng, W = self.rng, self.W
        categories, cat_weights = list(CATEGORY_WEIGHTS), list(CATEGORY_WEIGHTS.values())
        assert set(categories) == set(SERVICE_CATEGORIES)
        projects: list[Project] = []
        position_id = 0
        for g in self.groups:
            if g.status != "approved":
                continue
            spans = [(min(g.approved_day, -1) - rng.randint(0, 120), W + rng.randint(30, 400))]
            for _ in range(rng.randint(0, 4)):
                start = rng.randint(max(g.approved_day, -60), W - 1)
                spans.append((start, start + rng.choice((1, 2, 3, 7, 14, 30, 60, 90))))
            for k, (start, end) in enumerate(spans):
                region = g.region
                if k and g.county is not None and region.level < 5 and rng.random() < 0.3:
                    region = rng.choice(g.county.communities)
                project = Project(len(projects) + 1, g, region, rng.choices(categories, cat_weights)[0], start, end)
                for _ in range(1 if rng.random() < 0.6 else 2):
                    position_id += 1
                    project.positions.append((position_id, rng.choice(MINUTES)))
                projects.append(project)
                g.projects.append(project)
        self.projects = projects
        cols = ("id, group_id, group_path, name, category, starts_at, ends_at, recruit_scope, is_backfill, "
                "is_suspended, region_id, region_path, created_on, changed_on")
        with CopyStream(conn, "project", cols) as out:
            for p in projects:
                created = self.stamp(p.start - 5, 0.2)
                out.add((str(p.id), str(p.group.id), p.group.path, f"{p.group.name}项目{p.id}", p.category,
                         f"{self.day(p.start)} 00:00:00", f"{self.day(p.end)} 10:00:00", "anyone", "f", "f",
                         str(p.region.id), p.region.path, created, created))
        self.counts["projects"] = len(projects)
        self.counts["positions"] = position_id

    def add_people(self) -> None:
        """Volunteers with their memberships, enrollments, service records and days: one
        pass, five COPY streams on five connections (each its own transaction)."""
        rng, W, n = self.rng, self.W, self.n
        rnd, randint, choice = rng.random, rng.randint, rng.choice
        day, stamp = self.day, self.stamp
        # Approval days over four years, more in recent years; who is pending or rejected.
        undecided = rng.sample(range(n), max(5, n // 500) + n // 1000)
        pending = set(undecided[:max(5, n // 500)])
        rejected = set(undecided[max(5, n // 500):])
        approval = [-365 + int((rnd() ** 0.7) * (W + 357)) for _ in range(n)]
        join = [min(a + randint(1, 10), W - 1) for a in approval]
        activity = [min(rng.paretovariate(1.5) / 3, 10.0) for _ in range(n)]
        weight = [0.0 if i in pending or i in rejected else max(W - max(join[i], 0), 0) * activity[i]
                  for i in range(n)]
        per_weight = self.records_target / (sum(weight) or 1)  # corrections and transfers add ~1.5 %
        counties, county_weights = self.counties, [c.weight for c in self.counties]
        county_cum = list(_cumulative(county_weights))
        corps, community_team, street_teams, county_pool = (self.corps, self.community_team, self.street_teams,
                                                            self.county_pool)
        seq_by_year: dict[int, int] = {}
        self.seq_by_year = seq_by_year
        position_project = {pos: p for p in self.projects for pos, _ in p.positions}
        position_enrolled: dict[int, int] = {}
        self.position_enrolled = position_enrolled
        surnames, given = SURNAMES, GIVEN
        vol_cols = ("id, real_name, id_type, id_number_enc, id_blind, id_number_masked, birth_date, gender, email, "
                    "status, reject_reason, volunteer_no, approved_on, reviewed_on, submitted_on, total_minutes, "
                    "region_id, region_path, created_on, changed_on")
        mem_cols = ("id, group_id, volunteer_id, volunteer_name, volunteer_no, group_path, status, origin, "
                    "decided_on, region_id, region_path, created_on, changed_on")
        enr_cols = ("id, position_id, project_id, volunteer_id, group_path, status, origin, volunteer_name, "
                    "volunteer_no, region_id, region_path, created_on, changed_on")
        rec_cols = ("id, volunteer_id, volunteer_name, volunteer_no, project_id, position_id, group_id, group_path, "
                    "served_on, minutes, source, status, reason, reject_reason, corrects_id, approved_on, "
                    "is_flagged, region_id, region_path, created_on, changed_on, external_system, external_id, "
                    "external_project, external_org")
        today_ord = self.today.toordinal()
        record_id = membership_id = enrollment_id = 0
        records = approved_records = corrections = transfers = pending_records = 0
        progress = max(n // 10, 1)
        with contextlib.ExitStack() as stack:
            conns = [stack.enter_context(bulk_connection(self.info)) for _ in range(5)]
            vols = stack.enter_context(CopyStream(conns[0], "volunteer", vol_cols))
            mems = stack.enter_context(CopyStream(conns[1], "membership", mem_cols))
            enrs = stack.enter_context(CopyStream(conns[2], "enrollment", enr_cols))
            recs = stack.enter_context(CopyStream(conns[3], "service_record", rec_cols))
            days_out = (stack.enter_context(CopyStream(conns[4], "volunteer_day", "volunteer_id, served_on, minutes"))
                        if self.volunteer_days else None)
            for i in range(n):
                vid = i + 1
                # Home: a community (80 %), a street (12 %) or the county itself.
                county = counties[_pick(county_cum, rnd())]
                u = rnd()
                if u < 0.8:
                    home = choice(county.communities)
                elif u < 0.92:
                    home = choice(county.streets)
                else:
                    home = county.region
                sid = str(vid)
                name = choice(surnames) + choice(given) + (choice(given) if rnd() < 0.7 else "")
                u = rnd()
                gender = "M" if u < 0.45 else "F" if u < 0.99 else NULL
                age = rng.triangular(14, 76, 30)
                birth = date.fromordinal(today_ord - int(age * 365.25)).isoformat()
                a = approval[i]
                if i in pending or i in rejected:
                    submitted = stamp(W - 1 - randint(0, 40), rnd())
                    status = "pending" if i in pending else "rejected"
                    vols.add((sid, name, "resident", "\\\\x00", "bench" + sid,
                              home.code[:6] + "********" + f"{vid % 10000:04d}", birth, gender,
                              f"v{vid}@bench.example.cn", status,
                              "身份证照片不清晰，请重新上传。" if status == "rejected" else NULL, NULL, NULL,
                              submitted if status == "rejected" else NULL, submitted, "0",
                              str(home.id), home.path, submitted, submitted))
                    continue
                year = int(day(a)[:4])
                seq = seq_by_year[year] = seq_by_year.get(year, 0) + 1
                body = f"41{year}{seq:08d}"
                vno = body + mod11_2(body)
                approved_at = stamp(a, rnd())
                submitted = stamp(a - randint(1, 3), rnd())
                # Groups: the home community's team, a street team or a county group; a fifth join a second.
                team = community_team.get(home.id) if home.level == 5 else None
                street_id = home.parent_id if home.level == 5 else home.id if home.level == 4 else None
                pool = county_pool.get(county.region.id) or [corps[county.region.id]]
                if team is not None and rnd() < 0.7:
                    first = team
                elif street_id in street_teams and rnd() < 0.5:
                    first = choice(street_teams[street_id])
                else:
                    first = choice(pool)
                j = join[i]
                active = [first]
                first.members += 1
                membership_id += 1
                joined = stamp(j, rnd())
                mems.add((str(membership_id), str(first.id), sid, name, vno, first.path, "active", "self_join",
                          joined, str(first.region.id), first.region.path, joined, joined))
                if rnd() < 0.2:
                    second = choice(pool)
                    if second is not first:
                        u = rnd()
                        mstatus = "active" if u < 0.7 else "left" if u < 0.9 else "removed" if u < 0.95 else "pending"
                        j2 = min(j + randint(0, 400), W - 1)
                        at = stamp(j2, rnd())
                        changed = stamp(min(j2 + randint(1, 300), W - 1), rnd()) if mstatus in ("left", "removed") \
                            else at
                        membership_id += 1
                        mems.add((str(membership_id), str(second.id), sid, name, vno, second.path, mstatus,
                                  "request", at if mstatus != "pending" else NULL, str(second.region.id),
                                  second.region.path, at, changed))
                        if mstatus == "active":
                            active.append(second)
                            second.members += 1
                # Service records.
                start = max(j, 0)
                want = weight[i] * per_weight
                k = int(want) + (1 if rnd() < want - int(want) else 0)
                k = min(k, 2 * (W - start))
                total = 0
                day_minutes: dict[int, int] = {}
                enrolled: dict[int, int] = {}  # position id -> first day
                for _ in range(k):
                    d = start + int(rnd() * (W - start))
                    group = active[0] if len(active) == 1 or rnd() < 0.75 else active[1]
                    project = group.projects[0]
                    if len(group.projects) > 1 and rnd() < 0.6:
                        for event in group.projects[1:]:
                            if event.start <= d <= event.end:
                                project = event
                                break
                    pos, default = project.positions[0] if len(project.positions) == 1 or rnd() < 0.6 \
                        else project.positions[1]
                    minutes = default if rnd() < 0.7 else choice(MINUTES)
                    if day_minutes.get(d, 0) + minutes > 1440:
                        continue
                    record_id += 1
                    records += 1
                    u = rnd()
                    if d >= W - 30 and u < 0.25:
                        rstatus, approved, reject = "pending", NULL, NULL
                        pending_records += 1
                    elif u > 0.99:
                        rstatus, approved, reject = "rejected", NULL, "时长与活动安排不符。"
                    else:
                        rstatus, approved, reject = "approved", stamp(min(d + randint(0, 3), W - 1), rnd()), NULL
                    if pos not in enrolled or d < enrolled[pos]:
                        enrolled[pos] = d
                    created = stamp(d, rnd())
                    gid, gpath, region = str(group.id), group.path, project.region
                    recs.add((str(record_id), sid, name, vno, str(project.id), str(pos), gid, gpath, day(d),
                              str(minutes), "group_entry" if u < 0.7 else "application" if u < 0.97 else "backfill",
                              rstatus, NULL, reject, NULL, approved, "f", str(region.id), region.path, created,
                              approved if approved is not NULL else created, NULL, NULL, NULL, NULL))
                    if rstatus != "approved":
                        continue
                    approved_records += 1
                    day_minutes[d] = day_minutes.get(d, 0) + minutes
                    total += minutes
                    if rnd() < 0.005:  # a correction, ± by the group's admin
                        delta = -min(60, minutes - 30) if minutes > 30 and rnd() < 0.7 else 30
                        if day_minutes[d] + delta > 1440:
                            continue
                        original = record_id
                        record_id += 1
                        records += 1
                        corrections += 1
                        at = stamp(min(d + randint(3, 30), W - 1), rnd())
                        recs.add((str(record_id), sid, name, vno, str(project.id), str(pos), gid, gpath, day(d),
                                  str(delta), "correction", "approved", "时长录入有误，予以更正。", NULL, str(original),
                                  at, "f", str(region.id), region.path, at, at, NULL, NULL, NULL, NULL))
                        day_minutes[d] += delta
                        total += delta
                if rnd() < 0.03:  # service elsewhere, transferred in (转移接续): no project or group here
                    for t in range(randint(1, 5)):
                        d = max(a - randint(0, 400), 0) if a > 0 else randint(0, W - 1)
                        minutes = choice(MINUTES)
                        if day_minutes.get(d, 0) + minutes > 1440:
                            continue
                        record_id += 1
                        records += 1
                        transfers += 1
                        approved_records += 1
                        at = stamp(min(max(a, d + 1), W - 1), rnd())
                        recs.add((str(record_id), sid, name, vno, NULL, NULL, NULL, NULL, day(d), str(minutes),
                                  "transfer_in", "approved", NULL, NULL, NULL, at, "f", str(home.id), home.path, at,
                                  at, "henan-legacy", f"L{vid}-{t}", "社区志愿服务", "原志愿服务平台"))
                        day_minutes[d] = day_minutes.get(d, 0) + minutes
                        total += minutes
                for pos, first_day in enrolled.items():
                    enrollment_id += 1
                    position_enrolled[pos] = position_enrolled.get(pos, 0) + 1
                    project = position_project[pos]
                    at = stamp(max(first_day - randint(1, 5), j), rnd())
                    enrs.add((str(enrollment_id), str(pos), str(project.id), sid, project.group.path, "accepted",
                              "self", name, vno, str(project.region.id), project.region.path, at, at))
                if days_out is not None:
                    for d in sorted(day_minutes):
                        days_out.add((sid, day(d), str(day_minutes[d])))
                vols.add((sid, name, "resident", "\\\\x00", "bench" + sid,
                          home.code[:6] + "********" + f"{vid % 10000:04d}", birth, gender,
                          f"v{vid}@bench.example.cn", "approved", NULL, vno, approved_at, approved_at, submitted,
                          str(total), str(home.id), home.path, submitted, approved_at))
                if vid % progress == 0:
                    log(f"    {vid:>9,} volunteers, {records:>11,} records")
            self.counts.update(volunteers=n, volunteers_approved=n - len(pending) - len(rejected),
                               volunteers_pending=len(pending), memberships=membership_id, enrollments=enrollment_id,
                               service_records=records, records_approved=approved_records,
                               records_pending=pending_records, corrections=corrections, records_transferred_in=transfers,
                               volunteer_days=days_out.rows if days_out is not None else 0)
            # Leaving the stack ends the COPYs, then commits and closes each connection.

    def add_positions(self, conn) -> None:
        """Positions, with ``enrolled_count`` from the enrollments just written."""
        rng = self.rng
        cols = ("id, project_id, group_path, name, quota, default_minutes, allows_minors, enrolled_count, "
                "region_id, region_path")
        with CopyStream(conn, "position", cols) as out:
            for p in self.projects:
                for k, (pos, minutes) in enumerate(p.positions, 1):
                    enrolled = self.position_enrolled.get(pos, 0)
                    out.add((str(pos), str(p.id), p.group.path, f"岗位{k}", str(max(enrolled, rng.randint(10, 200))),
                             str(minutes), "t" if rng.random() < 0.2 else "f", str(enrolled), str(p.region.id),
                             p.region.path))

    def add_civil_units(self, conn) -> None:
        """A register row per civil-unit group (headcount near its member count) and a
        quarter more civil units that have registered no group."""
        rng = self.rng
        units = [g for g in self.groups if g.type == "civil_unit"]
        cols = "id, name, staff_headcount, group_id, region_id, region_path, created_on, changed_on"
        created = self.stamp(-400, 0.5)
        with CopyStream(conn, "civil_unit", cols) as out:
            uid = 0
            for g in units:
                uid += 1
                headcount = max(5, round(g.members / rng.uniform(0.6, 1.4)) if g.members else rng.randint(20, 300))
                out.add((str(uid), g.name.replace("志愿服务队", ""), str(headcount),
                         str(g.id) if g.status == "approved" else NULL, str(g.region.id), g.region.path, created,
                         created))
            for _ in range(max(len(units) // 4, 5)):
                uid += 1
                county = rng.choice(self.counties)
                region = county.region if rng.random() < 0.6 else rng.choice(county.streets)
                out.add((str(uid), f"{region.name}第{uid}文明单位", str(rng.randint(20, 300)), NULL, str(region.id),
                         region.path, created, created))
        self.counts["civil_units"] = uid

    def add_counters(self, conn) -> None:
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO volunteer_number_counter (province_code, year, last_seq) VALUES ('41', %s, %s)",
                            sorted(self.seq_by_year.items()))

    def set_sequences(self, conn) -> None:
        for table in ("region", "volunteer", "volunteer_group", "membership", "project", "position", "enrollment",
                      "service_record", "civil_unit"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                         f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)")

    # --- Through the app: users, rollups ---

    def app(self):
        if not hasattr(self, "_app"):
            from app import create_app

            self._app = create_app(SQLALCHEMY_DATABASE_URI=self.url, WTF_CSRF_ENABLED=False, AUDIT_ENABLED=False)
        return self._app

    def add_users(self) -> None:
        """The bench logins, bound like the demo's (app.services.accounts)."""
        from sqlalchemy import select

        from app.extensions import db
        from app.models import BindingKind, VolunteerGroup
        from app.security.roles import GROUP_ADMIN, OFFICER
        from app.services import accounts, regions

        with self.app().app_context():
            for username, code in (("henan_officer", "410000"), ("kaifeng_officer", "410200"),
                                   ("longting_officer", "410202")):
                user = accounts.ensure_user(username, PASSWORD, first_name=username, last_name="bench",
                                            email=f"{username}@bench.example.cn", roles=[OFFICER])
                accounts.bind_region(user, regions.get_region(code), BindingKind.OFFICER)
            corps = db.session.scalar(select(VolunteerGroup).where(VolunteerGroup.group_type == "county_corps",
                                                                   VolunteerGroup.region_path == "410000/410200/410202/"))
            user = accounts.ensure_user("longting_corps_admin", PASSWORD, first_name="longting_corps_admin",
                                        last_name="bench", email="longting_corps_admin@bench.example.cn",
                                        roles=[GROUP_ADMIN])
            accounts.bind_group_admin(user, corps)
            db.session.commit()

    def rebuild_rollups(self) -> None:
        """``rollups.rebuild()`` once, timed (skipped while app/services/rollups.py is missing)."""
        try:
            from app.services import rollups
        except ImportError:
            log("  rollups.rebuild()                  skipped: app/services/rollups.py is not there yet")
            self.counts["rollup rows"] = 0
            return
        from app.extensions import db

        with self.app().app_context():
            start = time.perf_counter()
            rows = rollups.rebuild()
            db.session.commit()
            self.timings["rollups.rebuild()"] = time.perf_counter() - start
            log(f"  {'rollups.rebuild()':34s} {self.timings['rollups.rebuild()']:8.1f} s   {rows}")
            self.counts.update({f"rollup {table}": count for table, count in (rows or {}).items()})
        with psycopg.connect(self.info, autocommit=True) as conn:
            for model in rollups.ROLLUP_MODELS:
                conn.execute(f"VACUUM ANALYZE {model.__tablename__}")


def _cumulative(weights):
    total, acc = sum(weights), 0.0
    for w in weights:
        acc += w / total
        yield acc


def _pick(cumulative: list[float], u: float) -> int:
    """Index of the first cumulative weight above ``u`` (binary search)."""
    lo, hi = 0, len(cumulative) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cumulative[mid] < u:
            lo = mid + 1
        else:
            hi = mid
    return lo


def default_url(volunteers: int) -> str:
    label = f"{volunteers // 1_000_000}m" if volunteers % 1_000_000 == 0 else \
        f"{volunteers // 1000}k" if volunteers % 1000 == 0 else str(volunteers)
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/bench_stats_{label}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--volunteers", type=int, default=10_000)
    parser.add_argument("--records-per-volunteer", type=int, default=RECORDS_PER_VOLUNTEER)
    parser.add_argument("--database-url", help="default: …/bench_stats_<size> on 127.0.0.1")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--no-volunteer-day", action="store_true", help="skip the volunteer_day rows")
    parser.add_argument("--json", help="also write the timings and counts to this file")
    args = parser.parse_args()
    url = args.database_url or default_url(args.volunteers)
    data = DataSet(url, args.volunteers, seed=args.seed, records_per_volunteer=args.records_per_volunteer,
                   volunteer_days=not args.no_volunteer_day)
    result = data.generate()
    for key, value in result["counts"].items():
        log(f"  {key:34s} {value:>12,}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(dict(result, url=url, volunteers=args.volunteers, today=data.today.isoformat()), out, indent=1)


if __name__ == "__main__":
    main()
