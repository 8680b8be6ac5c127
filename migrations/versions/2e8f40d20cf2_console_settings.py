"""console settings

The settings the operator console edits (naming rules, star thresholds, minimum age,
hour-code attempt limits…): one row per value set in the console; a name with no row
takes its default from config.py (app/services/settings.py).

Revision ID: 2e8f40d20cf2
Revises: d41c7a0e5b2f
Create Date: 2026-11-29 07:57:40.079445

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '2e8f40d20cf2'
down_revision = 'd41c7a0e5b2f'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('setting',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value_json', sa.Text(), nullable=False),
    sa.Column('created_on', sa.DateTime(), nullable=False),
    sa.Column('changed_on', sa.DateTime(), nullable=False),
    sa.Column('created_by_fk', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_fk'], ['ab_user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )


def downgrade():
    op.drop_table('setting')
