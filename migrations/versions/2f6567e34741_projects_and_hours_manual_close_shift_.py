"""projects and hours: manual close, shift times, optional max uses, volunteer day totals

Revision ID: 2f6567e34741
Revises: d5b55393b7ff
Create Date: 2026-11-28 19:11:20.360599

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '2f6567e34741'
down_revision = 'd5b55393b7ff'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('volunteer_day',
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('served_on', sa.Date(), nullable=False),
    sa.Column('minutes', sa.Integer(), nullable=False),
    sa.CheckConstraint('minutes BETWEEN 0 AND 1440', name='ck_volunteer_day_minutes'),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteer.id'], ),
    sa.PrimaryKeyConstraint('volunteer_id', 'served_on')
    )
    with op.batch_alter_table('enrollment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('volunteer_name', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('volunteer_no', sa.String(length=15), nullable=True))

    with op.batch_alter_table('hour_code', schema=None) as batch_op:
        batch_op.alter_column('max_uses',
               existing_type=sa.INTEGER(),
               nullable=True)
        batch_op.create_check_constraint('ck_hour_code_minutes', 'minutes BETWEEN 1 AND 1440')

    # Shift times become local wall-clock times (no project set them before).
    with op.batch_alter_table('position', schema=None) as batch_op:
        batch_op.drop_column('shift_start')
        batch_op.drop_column('shift_end')
    with op.batch_alter_table('position', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shift_start', sa.Time(), nullable=True))
        batch_op.add_column(sa.Column('shift_end', sa.Time(), nullable=True))
        batch_op.create_check_constraint('ck_position_counts', 'quota > 0 AND enrolled_count >= 0')

    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.add_column(sa.Column('closed_on', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('closed_by_fk', sa.Integer(), nullable=True))
        batch_op.create_index('ix_project_region_path_ends_at', ['region_path', 'ends_at'], unique=False)
        batch_op.create_foreign_key('fk_project_closed_by_fk_ab_user', 'ab_user', ['closed_by_fk'], ['id'])
        batch_op.create_check_constraint('ck_project_dates', 'ends_at > starts_at')

    with op.batch_alter_table('service_record', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reject_reason', sa.String(length=255), nullable=True))
        batch_op.create_index(batch_op.f('ix_service_record_corrects_id'), ['corrects_id'], unique=False)
        batch_op.create_index('ix_service_record_group_status_id', ['group_id', 'status', 'id'], unique=False)



def downgrade():
    with op.batch_alter_table('service_record', schema=None) as batch_op:
        batch_op.drop_index('ix_service_record_group_status_id')
        batch_op.drop_index(batch_op.f('ix_service_record_corrects_id'))
        batch_op.drop_column('reject_reason')

    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.drop_constraint('ck_project_dates', type_='check')
        batch_op.drop_constraint('fk_project_closed_by_fk_ab_user', type_='foreignkey')
        batch_op.drop_index('ix_project_region_path_ends_at')
        batch_op.drop_column('closed_by_fk')
        batch_op.drop_column('closed_on')

    with op.batch_alter_table('position', schema=None) as batch_op:
        batch_op.drop_constraint('ck_position_counts', type_='check')
        batch_op.drop_column('shift_start')
        batch_op.drop_column('shift_end')
    with op.batch_alter_table('position', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shift_start', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('shift_end', sa.DateTime(), nullable=True))

    with op.batch_alter_table('hour_code', schema=None) as batch_op:
        batch_op.drop_constraint('ck_hour_code_minutes', type_='check')
        batch_op.alter_column('max_uses',
               existing_type=sa.INTEGER(),
               nullable=False)

    with op.batch_alter_table('enrollment', schema=None) as batch_op:
        batch_op.drop_column('volunteer_no')
        batch_op.drop_column('volunteer_name')

    op.drop_table('volunteer_day')
