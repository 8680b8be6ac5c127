"""record book: honor attachments, evaluation scores, certificate requests, help request follow-up, complaint reporters

Revision ID: c804890e9e30
Revises: 2f6567e34741
Create Date: 2026-11-28 20:15:28.253322

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c804890e9e30'
down_revision = '2f6567e34741'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('certificate_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('group_path', sa.String(length=128).with_variant(sa.String(length=128, collation='C'), 'postgresql'), nullable=False),
    sa.Column('volunteer_name', sa.String(length=64), nullable=False),
    sa.Column('volunteer_no', sa.String(length=15), nullable=True),
    sa.Column('period_from', sa.Date(), nullable=True),
    sa.Column('period_to', sa.Date(), nullable=True),
    sa.Column('purpose', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=255), nullable=True),
    sa.Column('certificate_id', sa.Integer(), nullable=True),
    sa.Column('decided_on', sa.DateTime(), nullable=True),
    sa.Column('decided_by_fk', sa.Integer(), nullable=True),
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.Column('region_path', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('created_on', sa.DateTime(), nullable=False),
    sa.Column('changed_on', sa.DateTime(), nullable=False),
    sa.Column('created_by_fk', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['certificate_id'], ['certificate.id'], ),
    sa.ForeignKeyConstraint(['created_by_fk'], ['ab_user.id'], ),
    sa.ForeignKeyConstraint(['decided_by_fk'], ['ab_user.id'], ),
    sa.ForeignKeyConstraint(['group_id'], ['volunteer_group.id'], ),
    sa.ForeignKeyConstraint(['region_id'], ['region.id'], ),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteer.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('certificate_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_certificate_request_group_path'), ['group_path'], unique=False)
        batch_op.create_index('ix_certificate_request_group_status', ['group_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_certificate_request_region_id'), ['region_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_certificate_request_region_path'), ['region_path'], unique=False)
        batch_op.create_index(batch_op.f('ix_certificate_request_volunteer_id'), ['volunteer_id'], unique=False)

    with op.batch_alter_table('certificate', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=False, server_default='group'))
        batch_op.add_column(sa.Column('group_path', sa.String(length=128).with_variant(sa.String(length=128, collation='C'), 'postgresql'), nullable=True))
        batch_op.add_column(sa.Column('period_from', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('period_to', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('withdrawn_on', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('withdraw_reason', sa.String(length=255), nullable=True))
        batch_op.create_index(batch_op.f('ix_certificate_group_path'), ['group_path'], unique=False)

    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.add_column(sa.Column('group_path', sa.String(length=128).with_variant(sa.String(length=128, collation='C'), 'postgresql'), nullable=True))
        batch_op.add_column(sa.Column('reporter_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('resolved_on', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('resolved_by_fk', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('correction_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_complaint_group_path'), ['group_path'], unique=False)
        batch_op.create_index(batch_op.f('ix_complaint_reporter_id'), ['reporter_id'], unique=False)
        batch_op.create_foreign_key('fk_complaint_resolved_by_fk_ab_user', 'ab_user', ['resolved_by_fk'], ['id'])
        batch_op.create_foreign_key('fk_complaint_reporter_id_ab_user', 'ab_user', ['reporter_id'], ['id'])
        batch_op.create_foreign_key('fk_complaint_correction_id_service_record', 'service_record', ['correction_id'], ['id'])

    with op.batch_alter_table('evaluation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('group_path', sa.String(length=128).with_variant(sa.String(length=128, collation='C'), 'postgresql'), nullable=True))
        batch_op.add_column(sa.Column('position_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('punctuality', sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column('attitude', sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column('skill', sa.SmallInteger(), nullable=True))
        batch_op.create_index(batch_op.f('ix_evaluation_group_path'), ['group_path'], unique=False)
        batch_op.create_index(batch_op.f('ix_evaluation_position_id'), ['position_id'], unique=False)
        batch_op.create_foreign_key('fk_evaluation_position_id_position', 'position', ['position_id'], ['id'])
        batch_op.create_check_constraint('ck_evaluation_scores', 'punctuality BETWEEN 1 AND 5 AND attitude BETWEEN 1 AND 5 AND skill BETWEEN 1 AND 5')

    with op.batch_alter_table('help_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('group_path', sa.String(length=128).with_variant(sa.String(length=128, collation='C'), 'postgresql'), nullable=True))
        batch_op.add_column(sa.Column('follow_token_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('is_hidden', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('moderated_by_fk', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('claimed_on', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('resolved_on', sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_help_request_group_path'), ['group_path'], unique=False)
        batch_op.create_unique_constraint('uq_help_request_follow_token_hash', ['follow_token_hash'])
        batch_op.create_foreign_key('fk_help_request_moderated_by_fk_ab_user', 'ab_user', ['moderated_by_fk'], ['id'])

    with op.batch_alter_table('honor', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attachment_name', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('attachment_type', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('attachment_data', sa.LargeBinary(), nullable=True))

    with op.batch_alter_table('training', schema=None) as batch_op:
        batch_op.add_column(sa.Column('group_path', sa.String(length=128).with_variant(sa.String(length=128, collation='C'), 'postgresql'), nullable=True))
        batch_op.create_index(batch_op.f('ix_training_group_path'), ['group_path'], unique=False)
        batch_op.create_check_constraint('ck_training_minutes', 'minutes >= 0')



def downgrade():
    with op.batch_alter_table('training', schema=None) as batch_op:
        batch_op.drop_constraint('ck_training_minutes', type_='check')
        batch_op.drop_index(batch_op.f('ix_training_group_path'))
        batch_op.drop_column('group_path')

    with op.batch_alter_table('honor', schema=None) as batch_op:
        batch_op.drop_column('attachment_data')
        batch_op.drop_column('attachment_type')
        batch_op.drop_column('attachment_name')

    with op.batch_alter_table('help_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_help_request_group_path'))
        batch_op.drop_column('resolved_on')
        batch_op.drop_column('claimed_on')
        batch_op.drop_column('moderated_by_fk')
        batch_op.drop_column('is_hidden')
        batch_op.drop_column('follow_token_hash')
        batch_op.drop_column('group_path')

    with op.batch_alter_table('evaluation', schema=None) as batch_op:
        batch_op.drop_constraint('ck_evaluation_scores', type_='check')
        batch_op.drop_index(batch_op.f('ix_evaluation_position_id'))
        batch_op.drop_index(batch_op.f('ix_evaluation_group_path'))
        batch_op.drop_column('skill')
        batch_op.drop_column('attitude')
        batch_op.drop_column('punctuality')
        batch_op.drop_column('position_id')
        batch_op.drop_column('group_path')

    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_complaint_reporter_id'))
        batch_op.drop_index(batch_op.f('ix_complaint_group_path'))
        batch_op.drop_column('correction_id')
        batch_op.drop_column('resolved_by_fk')
        batch_op.drop_column('resolved_on')
        batch_op.drop_column('reporter_id')
        batch_op.drop_column('group_path')

    with op.batch_alter_table('certificate', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_certificate_group_path'))
        batch_op.drop_column('withdraw_reason')
        batch_op.drop_column('withdrawn_on')
        batch_op.drop_column('period_to')
        batch_op.drop_column('period_from')
        batch_op.drop_column('group_path')
        batch_op.drop_column('kind')

    with op.batch_alter_table('certificate_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_certificate_request_volunteer_id'))
        batch_op.drop_index(batch_op.f('ix_certificate_request_region_path'))
        batch_op.drop_index(batch_op.f('ix_certificate_request_region_id'))
        batch_op.drop_index('ix_certificate_request_group_status')
        batch_op.drop_index(batch_op.f('ix_certificate_request_group_path'))

    op.drop_table('certificate_request')
