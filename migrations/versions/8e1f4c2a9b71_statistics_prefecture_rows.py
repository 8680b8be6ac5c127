"""statistics prefecture rows

The county (and finer) rows of stat_month and stat_total summed per prefecture under
"<metric>@pref" (groups keyed "<level>:<type>"), as ``rollups.rebuild`` writes them: a
province's dashboard reads these. Data only; an upgraded database needs no rebuild.

Revision ID: 8e1f4c2a9b71
Revises: 571d85ab2599
Create Date: 2026-11-29 05:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '8e1f4c2a9b71'
down_revision = '571d85ab2599'
branch_labels = None
depends_on = None

METRICS = "('vol_new', 'minutes', 'volunteers', 'vol_gender', 'vol_birth', 'vol_star', 'groups')"
PREFECTURE = "CASE WHEN substr(t.region_path, 14, 1) = '/' THEN substr(t.region_path, 1, 14) ELSE substr(t.region_path, 1, 7) END"
KEY = "CASE WHEN t.metric = 'groups' THEN CAST(own.level AS VARCHAR) || ':' || t.key ELSE t.key END"


def upgrade():
    for table, month in (("stat_month", "t.month"), ("stat_total", None)):
        extra = f", {month}" if month else ""
        op.execute(f"""INSERT INTO {table} (region_id, metric, key, region_path, value{', month' if month else ''})
            SELECT p.id, t.metric || '@pref', {KEY}, p.path, sum(t.value){extra}
            FROM {table} t JOIN region p ON p.path = {PREFECTURE} JOIN region own ON own.id = t.region_id
            WHERE t.metric IN {METRICS}
            GROUP BY p.id, p.path, t.metric, {KEY}{extra} HAVING sum(t.value) <> 0""")


def downgrade():
    names = ", ".join(f"{name[:-1]}@pref'" for name in METRICS.strip("()").split(", "))
    for table in ("stat_month", "stat_total"):
        op.execute(f"DELETE FROM {table} WHERE metric IN ({names})")
