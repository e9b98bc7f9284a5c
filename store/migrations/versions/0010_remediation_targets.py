"""remediation targets

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 08:40:00

``remediation_targets``: each evaluation finding (a class whose F1 fell, a confused pair, a
slice of the training rows with errors, suspected label errors) as a target with an owner,
an action (boost, re-review, guideline) and the times it was raised, acted on, addressed
by a dataset version and closed by an evaluation.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0010'
down_revision: Union[str, Sequence[str], None] = '0009'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'remediation_targets',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('project_id', sa.Integer(), sa.ForeignKey('projects.id'), nullable=False,
                  index=True),
        sa.Column('model_id', sa.Integer(), sa.ForeignKey('model_versions.id'),
                  nullable=False),
        sa.Column('kind', sa.String(20), nullable=False),
        sa.Column('labels', sa.JSON(), nullable=False),
        sa.Column('slice', sa.JSON(), nullable=False),
        sa.Column('figure', sa.Float(), nullable=False),
        sa.Column('baseline', sa.Float(), nullable=True),
        sa.Column('message', sa.Text(), nullable=False),
        sa.Column('evidence', sa.JSON(), nullable=False),
        sa.Column('action', sa.String(20), nullable=False),
        sa.Column('boost', sa.Float(), nullable=False),
        sa.Column('owner', sa.String(200), nullable=False),
        sa.Column('status', sa.String(20), nullable=False, index=True),
        sa.Column('rereview_batch_id', sa.Integer(), sa.ForeignKey('batches.id'),
                  nullable=True),
        sa.Column('guideline_version', sa.Integer(), nullable=True),
        sa.Column('addressed_version_id', sa.Integer(),
                  sa.ForeignKey('dataset_versions.id'), nullable=True),
        sa.Column('closed_by_model_id', sa.Integer(), sa.ForeignKey('model_versions.id'),
                  nullable=True),
        sa.Column('note', sa.Text(), nullable=False, server_default=''),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('acted_at', TS, nullable=True),
        sa.Column('addressed_at', TS, nullable=True),
        sa.Column('closed_at', TS, nullable=True))


def downgrade() -> None:
    op.drop_table('remediation_targets')
