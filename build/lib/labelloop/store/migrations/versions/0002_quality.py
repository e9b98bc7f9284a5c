"""quality: gate bars and gold knobs on projects, the annotators table

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 12:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('min_kappa', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('min_gold_accuracy', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('max_error_rate', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('gold_share', sa.Float(), nullable=False,
                                      server_default='0.1'))
        batch_op.add_column(sa.Column('gold_min_accuracy', sa.Float(), nullable=False,
                                      server_default='0.8'))

    op.create_table('annotators',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('flagged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('active_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('project_id', 'name')
    )
    with op.batch_alter_table('annotators', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_annotators_project_id'), ['project_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('annotators', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_annotators_project_id'))
    op.drop_table('annotators')
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_column('gold_min_accuracy')
        batch_op.drop_column('gold_share')
        batch_op.drop_column('max_error_rate')
        batch_op.drop_column('min_gold_accuracy')
        batch_op.drop_column('min_kappa')
