"""transfers and record imports

Revision ID: 6782290c27b7
Revises: c804890e9e30
Create Date: 2026-11-28 22:29:14.265256

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '6782290c27b7'
down_revision = 'c804890e9e30'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('record_import',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('rows_json', sa.Text(), nullable=False),
    sa.Column('total_rows', sa.Integer(), nullable=False),
    sa.Column('valid_rows', sa.Integer(), nullable=False),
    sa.Column('applied_on', sa.DateTime(), nullable=True),
    sa.Column('applied_count', sa.Integer(), nullable=True),
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.Column('region_path', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('created_on', sa.DateTime(), nullable=False),
    sa.Column('changed_on', sa.DateTime(), nullable=False),
    sa.Column('created_by_fk', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_fk'], ['ab_user.id'], ),
    sa.ForeignKeyConstraint(['region_id'], ['region.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('record_import', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_record_import_region_id'), ['region_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_record_import_region_path'), ['region_path'], unique=False)

    with op.batch_alter_table('service_record', schema=None) as batch_op:
        batch_op.add_column(sa.Column('external_system', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('external_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('external_project', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('external_position', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('external_org', sa.String(length=120), nullable=True))
        batch_op.alter_column('project_id',
               existing_type=sa.INTEGER(),
               nullable=True)
        batch_op.alter_column('group_id',
               existing_type=sa.INTEGER(),
               nullable=True)
        batch_op.alter_column('group_path',
               existing_type=sa.VARCHAR(length=128),
               nullable=True)
        batch_op.create_unique_constraint('uq_service_record_external', ['external_system', 'external_id', 'volunteer_id'])
        batch_op.create_check_constraint(
            'ck_service_record_origin',
            "(source = 'transfer_in' AND external_system IS NOT NULL AND external_id IS NOT NULL)"
            " OR (source = 'correction' AND corrects_id IS NOT NULL)"
            " OR (source NOT IN ('transfer_in', 'correction') AND project_id IS NOT NULL"
            " AND group_id IS NOT NULL AND group_path IS NOT NULL)")

    with op.batch_alter_table('transfer_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('volunteer_name', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('volunteer_no', sa.String(length=15), nullable=True))
        batch_op.add_column(sa.Column('reject_reason', sa.String(length=255), nullable=True))
        batch_op.create_index('ix_transfer_request_status_region_path', ['status', 'region_path'], unique=False)
        batch_op.create_index('uq_transfer_request_pending', ['volunteer_id'], unique=True, postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))



def downgrade():
    with op.batch_alter_table('transfer_request', schema=None) as batch_op:
        batch_op.drop_index('uq_transfer_request_pending', postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))
        batch_op.drop_index('ix_transfer_request_status_region_path')
        batch_op.drop_column('reject_reason')
        batch_op.drop_column('volunteer_no')
        batch_op.drop_column('volunteer_name')

    # Imported records have no project or group here: they cannot survive the downgrade.
    op.execute("DELETE FROM service_record WHERE corrects_id IN "
               "(SELECT id FROM service_record WHERE source = 'transfer_in')")
    op.execute("DELETE FROM service_record WHERE source = 'transfer_in'")
    with op.batch_alter_table('service_record', schema=None) as batch_op:
        batch_op.drop_constraint('ck_service_record_origin', type_='check')
        batch_op.drop_constraint('uq_service_record_external', type_='unique')
        batch_op.alter_column('group_path',
               existing_type=sa.VARCHAR(length=128),
               nullable=False)
        batch_op.alter_column('group_id',
               existing_type=sa.INTEGER(),
               nullable=False)
        batch_op.alter_column('project_id',
               existing_type=sa.INTEGER(),
               nullable=False)
        batch_op.drop_column('external_org')
        batch_op.drop_column('external_position')
        batch_op.drop_column('external_project')
        batch_op.drop_column('external_id')
        batch_op.drop_column('external_system')

    with op.batch_alter_table('record_import', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_record_import_region_path'))
        batch_op.drop_index(batch_op.f('ix_record_import_region_id'))

    op.drop_table('record_import')
