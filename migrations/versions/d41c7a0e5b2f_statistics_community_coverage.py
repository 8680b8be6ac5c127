"""statistics community coverage

stat_total rows that count the communities with a registered group without reading
every community: ``community_groups`` (approved groups at each community) and
``covered`` per county and per prefecture (``@pref``), as ``rollups.rebuild``
writes them. Data only; an upgraded database needs no rebuild.

Revision ID: d41c7a0e5b2f
Revises: 46a165608fd4
Create Date: 2026-11-29 05:15:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'd41c7a0e5b2f'
down_revision = '46a165608fd4'
branch_labels = None
depends_on = None

COMMUNITY = 5  # Region.COMMUNITY


def _cut(column, *ends):
    """SQL: ``column`` cut after the first '/' among ``ends`` (positions), else after 7."""
    whens = " ".join(f"WHEN substr({column}, {n}, 1) = '/' THEN substr({column}, 1, {n})" for n in ends)
    return f"CASE {whens} ELSE substr({column}, 1, 7) END"


def upgrade():
    op.execute(f"""INSERT INTO stat_total (region_id, metric, key, region_path, value)
        SELECT g.region_id, 'community_groups', '', g.region_path, count(*)
        FROM volunteer_group g JOIN region r ON r.id = g.region_id
        WHERE g.status = 'approved' AND r.level = {COMMUNITY}
        GROUP BY g.region_id, g.region_path""")
    for metric, cut in (("covered", _cut("t.region_path", 21, 14)), ("covered@pref", _cut("t.region_path", 14))):
        op.execute(f"""INSERT INTO stat_total (region_id, metric, key, region_path, value)
            SELECT r.id, '{metric}', '', r.path, count(*)
            FROM (SELECT {cut} AS cut FROM stat_total t WHERE t.metric = 'community_groups') c
            JOIN region r ON r.path = c.cut GROUP BY r.id, r.path""")


def downgrade():
    op.execute("DELETE FROM stat_total WHERE metric IN "
               "('community_groups', 'covered', 'covered@pref')")
