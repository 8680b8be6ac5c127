"""Statistics benchmark (issue 8 item 5): dashboards at 10k / 100k / 1M volunteers.

    . .venv/bin/activate
    python bench/stats/run.py                       # 10k, 100k and 1M; writes bench/stats/RESULTS.md
    python bench/stats/run.py --sizes 10000 --reuse # one size, keep an existing database

For every size, ``generate.py`` builds ``bench_stats_<size>`` (PostgreSQL, COPY; skipped
with ``--reuse`` when that database already holds the size), then, in a fresh process,
every dashboard of ``DASHBOARDS`` is timed through the Flask test client logged in as its
user (median of ``--runs`` requests after two warm-ups, with the number of SQL statements
one request runs), and next to it the dashboard's numbers are computed twice in the same
run: directly from the fact tables (volunteer, service_record, project, membership,
volunteer_group) and from the rollup tables (stat_*), each with its SQL time. Where the
dashboard offers a CSV download of a figure (``CSV_CHECKS``), the downloaded numbers
are compared with the fact-table numbers too. Prints a table and writes RESULTS.md.

Target (issue 8): the province dashboard under 300 ms and within 1.5× from 10,000 to
1,000,000 volunteers. Not in CI.
"""
from __future__ import annotations

import argparse
import calendar
import csv
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from generate import PASSWORD, conninfo, default_url  # noqa: E402

SIZES = (10_000, 100_000, 1_000_000)
PROVINCE_TARGET_MS = 300
FLAT_FACTOR = 1.5
LONGTING = "410000/410200/410202/"


@dataclass(frozen=True)
class Dashboard:
    """A dashboard request: who asks, the URL (period arguments are appended), and what
    it covers — a region path (officer dashboards) or the user's administered groups."""

    label: str
    username: str
    url: str
    area: str | None = None  # region path the dashboard shows
    groups_of: bool = False  # the group dashboard: the user's (first) administered group


# The dashboards timed; extend as helper "charts" adds pages.
DASHBOARDS = (
    Dashboard("province (河南省)", "henan_officer", "/statistics/", area="410000/"),
    Dashboard("prefecture drill-down (开封市)", "henan_officer", "/statistics/?region=410200",
              area="410000/410200/"),
    Dashboard("county (龙亭区)", "longting_officer", "/statistics/", area=LONGTING),
    Dashboard("group (龙亭区 corps)", "longting_corps_admin", "/statistics/group/", groups_of=True),
)
PROVINCE = DASHBOARDS[0].label

# CSV downloads (issue 8 item 4) compared with the fact numbers: check name -> (figure
# under the dashboard's path, value column, minutes per unit (hours: 60), "sum" of the
# column or its "last" value (a running total)). Extend as figures are added.
CSV_CHECKS: dict[str, tuple[str, int, int, str]] = {
    "approved volunteers": ("volunteers", 1, 1, "sum"),
    "volunteers by gender": ("gender", 1, 1, "sum"),
    "new volunteers in period": ("new_volunteers", 1, 1, "sum"),
    "minutes per month": ("hours_by_month", 1, 60, "sum"),
    "minutes per category": ("hours_by_category", 1, 60, "sum"),
    "top 10 groups by minutes": ("top_groups", 1, 60, "sum"),
    "active members": ("members", 1, 1, "last"),
    "group minutes per month": ("hours", 1, 60, "sum"),
}


# --- The numbers, from the facts and from the rollups ---


@dataclass(frozen=True)
class Check:
    """One number (or one small table) a dashboard shows: ``fact`` computes it from the
    fact tables, ``rollup`` from the stat_* tables. Each SQL returns rows of (key, value)
    or one row of one value."""

    name: str
    fact: str
    rollup: str
    applies: str = "area"  # "area" (officer dashboards) or "group"
    ordered: bool = False  # rows compared in order (a top 10), else as a set
    rollup_months: str = ""  # the rollup SQL when the period is not a calendar year (the app sums months)


RANGE = "{col} >= %(p)s AND {col} < %(q)s"
AREA_CHECKS = (
    Check("approved volunteers",
          "SELECT count(*) FROM volunteer WHERE status = 'approved' AND " + RANGE.format(col="region_path"),
          "SELECT coalesce(sum(value), 0) FROM stat_total WHERE metric = 'volunteers' || %(pref)s AND "
          + RANGE.format(col="region_path")),
    Check("volunteers per child region",
          "SELECT split_part(region_path, '/', %(depth)s), count(*) FROM volunteer WHERE status = 'approved' AND "
          + RANGE.format(col="region_path") + " GROUP BY 1",
          "SELECT split_part(region_path, '/', %(depth)s), sum(value) FROM stat_total "
          "WHERE metric = 'volunteers' || %(pref)s AND " + RANGE.format(col="region_path") + " GROUP BY 1"),
    Check("volunteers by gender",
          "SELECT coalesce(gender, ''), count(*) FROM volunteer WHERE status = 'approved' AND "
          + RANGE.format(col="region_path") + " GROUP BY 1",
          "SELECT key, sum(value) FROM stat_total WHERE metric = 'vol_gender' || %(pref)s AND " + RANGE.format(col="region_path")
          + " GROUP BY 1"),
    Check("new volunteers in period",
          "SELECT count(*) FROM volunteer WHERE approved_on IS NOT NULL AND " + RANGE.format(col="region_path")
          + " AND CAST(approved_on + interval '8 hours' AS date) BETWEEN %(start)s AND %(end)s",
          "SELECT coalesce(sum(value), 0) FROM stat_month WHERE metric = 'vol_new' || %(pref)s AND "
          + RANGE.format(col="region_path") + " AND month BETWEEN %(first_month)s AND %(end)s"),
    Check("approved minutes in period",
          "SELECT coalesce(sum(minutes), 0) FROM service_record WHERE status = 'approved' AND "
          + RANGE.format(col="region_path") + " AND served_on BETWEEN %(start)s AND %(end)s",
          "SELECT coalesce(sum(value), 0) FROM stat_month WHERE metric = 'minutes' || %(pref)s AND "
          + RANGE.format(col="region_path") + " AND month BETWEEN %(first_month)s AND %(end)s"),
    Check("minutes per month",
          "SELECT to_char(served_on, 'YYYY-MM'), sum(minutes) FROM service_record WHERE status = 'approved' AND "
          + RANGE.format(col="region_path") + " AND served_on BETWEEN %(start)s AND %(end)s GROUP BY 1",
          "SELECT to_char(month, 'YYYY-MM'), sum(value) FROM stat_month WHERE metric = 'minutes' || %(pref)s AND "
          + RANGE.format(col="region_path") + " AND month BETWEEN %(first_month)s AND %(end)s GROUP BY 1"),
    Check("minutes per category",
          "SELECT coalesce(p.category, ''), sum(r.minutes) FROM service_record r LEFT JOIN project p "
          "ON p.id = r.project_id WHERE r.status = 'approved' AND " + RANGE.format(col="r.region_path")
          + " AND r.served_on BETWEEN %(start)s AND %(end)s GROUP BY 1",
          "SELECT key, sum(value) FROM stat_month WHERE metric = 'minutes' || %(pref)s AND "
          + RANGE.format(col="region_path")
          + " AND month BETWEEN %(first_month)s AND %(end)s GROUP BY 1"),
    Check("top 10 groups by minutes",
          "SELECT g.id, sum(r.minutes) AS m FROM service_record r JOIN volunteer_group g ON g.id = r.group_id "
          "WHERE r.status = 'approved' AND " + RANGE.format(col="g.region_path")
          + " AND r.served_on BETWEEN %(start)s AND %(end)s GROUP BY 1 HAVING sum(r.minutes) > 0 "
          "ORDER BY m DESC, 1 LIMIT 10",
          "SELECT group_id, value FROM stat_group_period WHERE metric = 'minutes' AND period = %(year)s AND "
          + RANGE.format(col="region_path") + " AND value > 0 ORDER BY value DESC, 1 LIMIT 10", ordered=True,
          rollup_months="SELECT group_id, sum(value) AS m FROM stat_group_month WHERE metric = 'minutes' AND "
          + RANGE.format(col="region_path") + " AND month BETWEEN %(first_month)s AND %(end)s "
          "GROUP BY 1 HAVING sum(value) > 0 ORDER BY m DESC, 1 LIMIT 10"),
    Check("approved groups by type",
          "SELECT group_type, count(*) FROM volunteer_group WHERE status = 'approved' AND "
          + RANGE.format(col="region_path") + " GROUP BY 1",
          "SELECT split_part(key, ':', 1 + sign(length(%(pref)s))::int), sum(value) FROM stat_total "
          "WHERE metric = 'groups' || %(pref)s AND " + RANGE.format(col="region_path") + " GROUP BY 1"),
)
# The group dashboard shows one group (the one picked; by default the first administered).
GROUP_CHECKS = (
    Check("active members", "SELECT count(*) FROM membership WHERE status = 'active' AND group_id = %(group)s",
          "SELECT coalesce(sum(value), 0) FROM stat_group_period WHERE metric = 'members' AND period = 'all' "
          "AND group_id = %(group)s",
          applies="group"),
    Check("group minutes per month",
          "SELECT to_char(served_on, 'YYYY-MM'), sum(minutes) FROM service_record WHERE status = 'approved' AND "
          "group_id = %(group)s AND served_on BETWEEN %(start)s AND %(end)s GROUP BY 1",
          "SELECT to_char(month, 'YYYY-MM'), sum(value) FROM stat_group_month WHERE metric = 'minutes' AND "
          "group_id = %(group)s AND month BETWEEN %(first_month)s AND %(end)s GROUP BY 1",
          applies="group"),
)


def timed(fn, runs: int) -> tuple[float, object]:
    """Median milliseconds of ``runs`` calls of ``fn``, and the last result."""
    samples, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), result


def normalise(rows: list[tuple]):
    """One number, or a {key: value} table (ordered lists stay lists, e.g. a top 10)."""
    if len(rows) == 1 and len(rows[0]) == 1:
        return int(rows[0][0] or 0)
    return [[str(k), int(v)] for k, v in rows]


def same(a, b, ordered: bool = False) -> bool:
    if isinstance(a, list) and isinstance(b, list) and not ordered:
        return sorted(map(tuple, a)) == sorted(map(tuple, b))
    return a == b


def summary(value) -> str:
    if isinstance(value, list):
        return f"{len(value)} rows, Σ {sum(v for _, v in value):,}"
    return value if isinstance(value, str) else f"{value:,}"


# --- Measuring one database ---


def measure(url: str, runs: int, period: dict[str, str], today: date) -> dict:
    """Time every dashboard on ``url`` and compute its numbers from the facts and the rollups."""
    import psycopg
    from sqlalchemy import event, select

    from app import create_app
    from app.extensions import db
    from app.models import GroupAdmin, VolunteerGroup

    start, end = date.fromisoformat(period["start"]), date.fromisoformat(period["end"])
    load = os.getloadavg()[0]
    app = create_app(SQLALCHEMY_DATABASE_URI=url, WTF_CSRF_ENABLED=False, AUDIT_ENABLED=False)
    statements = [0]
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", lambda *a: statements.__setitem__(0, statements[0] + 1))
    results = []
    sql = psycopg.connect(conninfo(url), autocommit=True)
    for dash in DASHBOARDS:
        row: dict = {"dashboard": dash.label, "user": dash.username, "url": dash.url}
        client = app.test_client()
        login = client.post("/login/", data={"username": dash.username, "password": PASSWORD})
        if login.status_code not in (200, 302):
            row["error"] = f"login {login.status_code}"
        url_with_period = dash.url + ("&" if "?" in dash.url else "?") + period["query"]
        row["request"] = url_with_period
        first = client.get(url_with_period)
        row["status"] = first.status_code
        if first.status_code == 200:
            client.get(url_with_period)
            statements[0] = 0
            client.get(url_with_period)
            row["statements"] = statements[0]
            row["page_ms"], _ = timed(lambda: client.get(url_with_period), runs)
        # The dashboard's numbers, twice.
        if dash.groups_of:
            with app.app_context():
                user = app.appbuilder.sm.find_user(username=dash.username)
                group = db.session.execute(select(VolunteerGroup.id, VolunteerGroup.group_path).join(
                    GroupAdmin, GroupAdmin.group_id == VolunteerGroup.id).where(GroupAdmin.user_id == user.id)
                    .order_by(VolunteerGroup.id)).first()
            targets, checks = [group], GROUP_CHECKS
        else:
            targets, checks = [dash.area], AREA_CHECKS
        params = {"start": start, "end": end, "first_month": start.replace(day=1), "year": str(start.year)}
        calendar_year = (start.month, start.day, end.month, end.day, start.year) == (1, 1, 12, 31, end.year)
        row["checks"] = []
        for check in checks:
            entry = {"name": check.name, "fact_ms": 0.0, "rollup_ms": 0.0, "fact": None, "rollup": None}
            for target in targets:
                group_id, path = target if dash.groups_of else (None, target)
                args = dict(params, p=path, q=path[:-1] + "0", depth=path.count("/") + 1, group=group_id,
                            pref="@pref" if path and path.count("/") == 1 else "")  # a province: prefecture rows
                fact_ms, fact_rows = timed(lambda: sql.execute(check.fact, args).fetchall(), runs)
                rollup_sql = check.rollup if calendar_year or not check.rollup_months else check.rollup_months
                rollup_ms, rollup_rows = timed(lambda: sql.execute(rollup_sql, args).fetchall(), runs)
                entry["fact_ms"] += fact_ms
                entry["rollup_ms"] += rollup_ms
                entry["fact"], entry["rollup"] = normalise(fact_rows), normalise(rollup_rows)
            entry["match"] = same(entry["fact"], entry["rollup"], check.ordered)
            if check.name in CSV_CHECKS and first.status_code == 200:
                figure, column, unit, mode = CSV_CHECKS[check.name]
                download = client.get(f"{dash.url.split('?')[0]}{figure}.csv?" + url_with_period.split("?", 1)[1])
                if download.status_code == 200:
                    rows = list(csv.reader(io.StringIO(download.get_data(as_text=True).lstrip("\ufeff"))))[1:]
                    values = [float(r[column] or 0) for r in rows if len(r) > column]
                    shown = (values[-1] if values else 0) if mode == "last" else sum(values)
                    entry["csv"] = int(round(shown * unit))
                    fact_total = entry["fact"] if isinstance(entry["fact"], int) else sum(v for _, v in entry["fact"])
                    # Hours on screen are rounded (to 0.1 h at most): allow 3 minutes a row.
                    entry["csv_match"] = abs(entry["csv"] - fact_total) <= (3 * len(values) if unit == 60 else 0)
                else:
                    entry["csv"], entry["csv_match"] = f"HTTP {download.status_code}", False
            row["checks"].append(entry)
        row["fact_ms"] = sum(c["fact_ms"] for c in row["checks"])
        row["rollup_ms"] = sum(c["rollup_ms"] for c in row["checks"])
        results.append(row)
    sizes = dict(sql.execute("""
        SELECT relname, n_live_tup FROM pg_stat_user_tables
        WHERE relname IN ('volunteer', 'service_record', 'membership', 'stat_day', 'stat_month', 'stat_total',
                          'stat_group_month', 'stat_group_period')
    """).fetchall())
    sql.close()
    return {"dashboards": results, "rows": sizes, "today": today.isoformat(), "load": round(load, 1)}


# --- Orchestration ---


def generated_earlier(url: str, size: int) -> dict | None:
    """How the database was generated (``bench_generation``), when it holds ``size`` volunteers."""
    import psycopg

    try:
        with psycopg.connect(conninfo(url)) as conn:
            if conn.execute("SELECT count(*) FROM volunteer").fetchone()[0] != size:
                return None
            row = conn.execute("SELECT generated_on, info FROM bench_generation ORDER BY generated_on DESC "
                               "LIMIT 1").fetchone()
    except psycopg.Error:
        return None
    return dict(row[1], generated_on=row[0].isoformat(timespec="minutes"), reused=True) if row else None


def period_for(today: date, kind: str) -> dict[str, str]:
    """The period every dashboard is asked for, as query string and dates."""
    if kind == "year":
        return {"label": f"year {today.year}", "query": f"period=year&on={today.year}",
                "start": date(today.year, 1, 1).isoformat(), "end": date(today.year, 12, 31).isoformat()}
    year, month = (today.year, today.month - 11) if today.month == 12 else (today.year - 1, today.month + 1)
    first = date(year, month, 1)
    last = date(today.year, today.month, calendar.monthrange(today.year, today.month)[1])  # whole months
    return {"label": f"12 months {first.isoformat()} – {last.isoformat()}",
            "query": f"period=custom&from={first.isoformat()}&to={last.isoformat()}",
            "start": first.isoformat(), "end": last.isoformat()}


def run_child(args: list[str]) -> None:
    done = subprocess.run([sys.executable, *args], cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"failed: {' '.join(args)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--reuse", action="store_true", help="keep a database that already holds the size")
    parser.add_argument("--period", choices=("year", "12months"), default="year")
    parser.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one database, JSON to --out
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    today = date.today()
    period = period_for(today, args.period)
    if args.measure:
        with open(args.out, "w", encoding="utf-8") as out:
            json.dump(measure(args.measure, args.runs, period, today), out, indent=1, default=str)
        return
    started = time.perf_counter()
    report = {"period": period, "runs": args.runs, "sizes": []}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            url = default_url(size)
            gen_file, measure_file = os.path.join(tmp, f"gen{size}.json"), os.path.join(tmp, f"m{size}.json")
            generated = generated_earlier(url, size) if args.reuse else None
            if generated:
                print(f"== {size:,} volunteers: reusing {url.rsplit('/', 1)[1]} (generated "
                      f"{generated['generated_on']})", flush=True)
            else:
                print(f"== {size:,} volunteers: generating", flush=True)
                run_child([os.path.join(HERE, "generate.py"), "--volunteers", str(size), "--json", gen_file])
                with open(gen_file, encoding="utf-8") as fh:
                    generated = json.load(fh)
            print(f"== {size:,} volunteers: measuring ({args.runs} runs each)", flush=True)
            run_child([os.path.join(HERE, "run.py"), "--measure", url, "--out", measure_file, "--runs",
                       str(args.runs), "--period", args.period])
            with open(measure_file, encoding="utf-8") as fh:
                measured = json.load(fh)
            report["sizes"].append({"volunteers": size, "database": url.rsplit("/", 1)[1],
                                    "generated": generated, "measured": measured})
            print_size(report["sizes"][-1])
    report["wall_s"] = time.perf_counter() - started
    text = results_markdown(report)
    with open(args.results, "w", encoding="utf-8") as out:
        out.write(text)
    print(verdict(report))
    print(f"wrote {os.path.relpath(args.results, ROOT)} ({report['wall_s']:.0f} s in all)")


def fmt_ms(value) -> str:
    return "—" if value is None else f"{value:.1f}"


def print_size(entry: dict) -> None:
    print(f"\n{entry['volunteers']:,} volunteers ({entry['database']}); rows: "
          + ", ".join(f"{k} {v:,}" for k, v in sorted(entry["measured"]["rows"].items())))
    for dash in entry["measured"]["dashboards"]:
        page = fmt_ms(dash.get("page_ms")) + " ms" if "page_ms" in dash else f"HTTP {dash['status']}"
        print(f"  {dash['dashboard']:32s} page {page:>10s}  {dash.get('statements', '—')!s:>3s} SQL  "
              f"facts {dash['fact_ms']:8.1f} ms  rollups {dash['rollup_ms']:6.1f} ms")
        for check in dash["checks"]:
            mark = "=" if check["match"] else "≠"
            csv_note = "" if "csv" not in check else f"  csv {summary(check['csv'])} {'=' if check['csv_match'] else '≠'}"
            print(f"      {check['name']:28s} facts {summary(check['fact']):>22s} {check['fact_ms']:8.1f} ms "
                  f"{mark} rollups {summary(check['rollup']):>22s} {check['rollup_ms']:6.1f} ms{csv_note}")


def verdict(report: dict) -> str:
    """The target: province dashboard < 300 ms and within 1.5× from the smallest to the largest size."""
    times = [(s["volunteers"], d.get("page_ms")) for s in report["sizes"] for d in s["measured"]["dashboards"]
             if d["dashboard"] == PROVINCE]
    if not times or any(t is None for _, t in times):
        return "target: not measured (the province dashboard did not answer 200)"
    worst = max(t for _, t in times)
    ratio = times[-1][1] / times[0][1] if len(times) > 1 else 1.0
    ok = worst < PROVINCE_TARGET_MS and ratio <= FLAT_FACTOR
    return (f"target {'MET' if ok else 'MISSED'}: province dashboard {', '.join(f'{t:.0f} ms' for _, t in times)} "
            f"(worst {worst:.0f} ms, limit {PROVINCE_TARGET_MS}); {times[-1][0]:,}/{times[0][0]:,} volunteers = "
            f"{ratio:.2f}× (limit {FLAT_FACTOR}×)")


def results_markdown(report: dict) -> str:
    import psycopg

    sizes = report["sizes"]
    with psycopg.connect(conninfo(default_url(sizes[0]["volunteers"]))) as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]
        settings = {name: conn.execute(f"SHOW {name}").fetchone()[0]
                    for name in ("shared_buffers", "work_mem", "max_parallel_workers_per_gather")}
    lines = [
        "# Statistics benchmark (issue 8 item 5)", "",
        f"Measured {date.today().isoformat()} by `python bench/stats/run.py"
        + (f" --sizes {' '.join(str(s['volunteers']) for s in sizes)}" if len(sizes) != 3 else "")
        + "`: " + f"{os.cpu_count()} CPUs (shared), Python {platform.python_version()}, PostgreSQL {server} "
        f"(stock settings: shared_buffers {settings['shared_buffers']}, work_mem {settings['work_mem']}, "
        f"{settings['max_parallel_workers_per_gather']} parallel workers per gather). "
        f"Period asked of every dashboard: {report['period']['label']}; medians of {report['runs']} requests "
        "after two warm-ups (Flask test client, in-process: server time without the network). The machine "
        "may be shared with other work; 1-minute load average when each size was measured: "
        + ", ".join(f"{s['volunteers']:,}: {s['measured'].get('load', '?')}" for s in sizes) + ".", "",
        "**" + verdict(report) + "**", "",
        "## Dashboards: server time next to the same numbers from the fact tables", "",
        "Page = median time of one request; SQL = statements it runs; facts = the dashboard's numbers computed "
        "directly from volunteer / service_record / project / membership / volunteer_group (sum of the medians "
        "of the queries below); rollups = the same numbers from the rollup tables the page reads (stat_month / "
        "stat_total / stat_group_period / stat_group_month; the province their prefecture rows, `<metric>@pref`).",
        "",
        "| dashboard | " + " | ".join(f"{s['volunteers']:,}: page ms (SQL) | facts ms | rollups ms" for s in sizes)
        + " |",
        "|---|" + "---:|---:|---:|" * len(sizes),
    ]
    for i, dash in enumerate(DASHBOARDS):
        cells = []
        for s in sizes:
            d = s["measured"]["dashboards"][i]
            page = (f"{d['page_ms']:.1f} ({d.get('statements')})" if "page_ms" in d else f"HTTP {d['status']}")
            cells += [page, f"{d['fact_ms']:.1f}", f"{d['rollup_ms']:.1f}"]
        lines.append(f"| {dash.label} | " + " | ".join(cells) + " |")
    lines += ["", "## The numbers (largest size), facts vs rollups", "",
              "| dashboard | number | facts | ms | rollups | ms | equal |", "|---|---|---:|---:|---:|---:|---|"]
    for d in sizes[-1]["measured"]["dashboards"]:
        for c in d["checks"]:
            csv_note = "" if "csv" not in c else f"; CSV {summary(c['csv'])} {'=' if c['csv_match'] else '≠'}"
            lines.append(f"| {d['dashboard']} | {c['name']} | {summary(c['fact'])} | {c['fact_ms']:.1f} | "
                         f"{summary(c['rollup'])} | {c['rollup_ms']:.1f} | {'yes' if c['match'] else '**no**'}"
                         f"{csv_note} |")
    lines += ["", "## Generation (COPY) and rollup rebuild", "",
              "| step | " + " | ".join(f"{s['volunteers']:,} s" for s in sizes) + " |",
              "|---|" + "---:|" * len(sizes)]
    steps = []
    for s in sizes:
        for name in (s["generated"] or {}).get("timings", {}):
            if name not in steps:
                steps.append(name)
    for name in steps:
        cells = [f"{s['generated']['timings'][name]:.1f}" if s["generated"] and name in s["generated"]["timings"]
                 else "—" for s in sizes]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "| rows | " + " | ".join(f"{s['volunteers']:,}" for s in sizes) + " |",
              "|---|" + "---:|" * len(sizes)]
    counts = []
    for s in sizes:
        for name in (s["generated"] or {}).get("counts", {}):
            if name not in counts:
                counts.append(name)
    for name in counts:
        cells = [f"{s['generated']['counts'][name]:,}" if s["generated"] and name in s["generated"]["counts"]
                 else "—" for s in sizes]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    reused = [f"{s['volunteers']:,} ({s['generated']['generated_on']})" for s in sizes
              if s["generated"] and s["generated"].get("reused")]
    if reused:
        lines += ["", "Reused databases (`--reuse`), with the timings of their generation: " + ", ".join(reused) + "."]
    lines += ["",
              "Reproduce: `createdb` rights on PostgreSQL at 127.0.0.1 as postgres (the runner drops and creates "
              "`bench_stats_10k`, `bench_stats_100k`, `bench_stats_1m`), then `. .venv/bin/activate && "
              "python bench/stats/run.py`. See bench/stats/README.md.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
