"""unsure answers

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 12:50:00

``annotations.unsure``: the annotator flagged their answer as unsure (the workbench's
``f`` key); the reviewer queue lists such items beside disagreements.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0011'
down_revision: Union[str, Sequence[str], None] = '0010'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('annotations') as batch:
        batch.add_column(sa.Column('unsure', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('annotations') as batch:
        batch.drop_column('unsure')
