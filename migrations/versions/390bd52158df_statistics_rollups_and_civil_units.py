"""statistics rollups and civil units

Revision ID: 390bd52158df
Revises: 6782290c27b7
Create Date: 2026-11-28 23:29:01.457215

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '390bd52158df'
down_revision = '6782290c27b7'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('stat_day',
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('metric', sa.String(length=24), nullable=False),
    sa.Column('key', sa.String(length=32), nullable=False),
    sa.Column('region_path', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['region_id'], ['region.id'], ),
    sa.PrimaryKeyConstraint('region_id', 'day', 'metric', 'key')
    )
    with op.batch_alter_table('stat_day', schema=None) as batch_op:
        batch_op.create_index('ix_stat_day_metric_path_day', ['metric', 'region_path', 'day'], unique=False)

    op.create_table('stat_total',
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.Column('metric', sa.String(length=24), nullable=False),
    sa.Column('key', sa.String(length=32), nullable=False),
    sa.Column('region_path', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['region_id'], ['region.id'], ),
    sa.PrimaryKeyConstraint('region_id', 'metric', 'key')
    )
    with op.batch_alter_table('stat_total', schema=None) as batch_op:
        batch_op.create_index('ix_stat_total_metric_path', ['metric', 'region_path'], unique=False)

    op.create_table('civil_unit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('staff_headcount', sa.Integer(), nullable=True),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.Column('region_path', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('created_on', sa.DateTime(), nullable=False),
    sa.Column('changed_on', sa.DateTime(), nullable=False),
    sa.Column('created_by_fk', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_fk'], ['ab_user.id'], ),
    sa.ForeignKeyConstraint(['group_id'], ['volunteer_group.id'], ),
    sa.ForeignKeyConstraint(['region_id'], ['region.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('group_id'),
    sa.UniqueConstraint('name')
    )
    with op.batch_alter_table('civil_unit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_civil_unit_region_id'), ['region_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_civil_unit_region_path'), ['region_path'], unique=False)

    op.create_table('stat_group_month',
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('metric', sa.String(length=24), nullable=False),
    sa.Column('group_path', sa.String(length=128).with_variant(sa.String(length=128, collation='C'), 'postgresql'), nullable=False),
    sa.Column('region_path', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['volunteer_group.id'], ),
    sa.PrimaryKeyConstraint('group_id', 'month', 'metric')
    )
    with op.batch_alter_table('stat_group_month', schema=None) as batch_op:
        batch_op.create_index('ix_stat_group_month_group_path', ['group_path'], unique=False)
        batch_op.create_index('ix_stat_group_month_metric_path_month', ['metric', 'region_path', 'month'], unique=False)



def downgrade():
    with op.batch_alter_table('stat_group_month', schema=None) as batch_op:
        batch_op.drop_index('ix_stat_group_month_metric_path_month')
        batch_op.drop_index('ix_stat_group_month_group_path')

    op.drop_table('stat_group_month')
    with op.batch_alter_table('civil_unit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_civil_unit_region_path'))
        batch_op.drop_index(batch_op.f('ix_civil_unit_region_id'))

    op.drop_table('civil_unit')
    with op.batch_alter_table('stat_total', schema=None) as batch_op:
        batch_op.drop_index('ix_stat_total_metric_path')

    op.drop_table('stat_total')
    with op.batch_alter_table('stat_day', schema=None) as batch_op:
        batch_op.drop_index('ix_stat_day_metric_path_day')

    op.drop_table('stat_day')
