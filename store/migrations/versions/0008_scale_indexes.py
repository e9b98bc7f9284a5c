"""indexes for a million rows: dataset rows by (version, item) for streamed exports

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 18:00:00
"""
from typing import Sequence, Union

from alembic import op


revision: str = '0008'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # An export pages through a version by item id: each page is an index range scan, not
    # a scan and sort of the whole version (quadratic at 1M rows).
    op.create_index('ix_dataset_rows_version_item', 'dataset_rows', ['version_id', 'item_id'])


def downgrade() -> None:
    op.drop_index('ix_dataset_rows_version_item', 'dataset_rows')
