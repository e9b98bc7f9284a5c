"""prediction_blocks: a model's pool probabilities as compact arrays

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 17:00:00
"""
from typing import Sequence, Union

from alembic import op
import numpy as np
import sqlalchemy as sa


revision: str = '0007'
down_revision: Union[str, Sequence[str], None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BLOCK = 10_000


def upgrade() -> None:
    blocks = op.create_table(
        'prediction_blocks',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('model_version_id', sa.Integer(), sa.ForeignKey('model_versions.id'),
                  nullable=False),
        sa.Column('labels', sa.JSON(), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.Column('item_ids', sa.LargeBinary(), nullable=False),
        sa.Column('probs', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False))
    op.create_index('ix_prediction_blocks_model_version_id', 'prediction_blocks',
                    ['model_version_id'])
    # Existing predictions become blocks, per model, columns in the project's label order.
    bind = op.get_bind()
    models = bind.execute(sa.text(
        'SELECT m.id, p.labels FROM model_versions m JOIN projects p ON p.id = m.project_id'
    )).all()
    for model_id, labels in models:
        labels = _json(labels)
        rows = bind.execute(sa.text(
            'SELECT item_id, probs FROM predictions WHERE model_version_id = :m ORDER BY item_id'
        ), {'m': model_id}).all()
        for start in range(0, len(rows), BLOCK):
            chunk = rows[start:start + BLOCK]
            ids = np.array([r[0] for r in chunk], dtype=np.int64)
            probs = np.array([[_json(r[1]).get(name, 0.0) for name in labels] for r in chunk],
                             dtype=np.float32).reshape(len(chunk), len(labels))
            bind.execute(blocks.insert().values(
                model_version_id=model_id, labels=labels, n=len(chunk),
                item_ids=ids.tobytes(), probs=probs.tobytes(),
                created_at=sa.func.now()))


def _json(value):
    import json

    return json.loads(value) if isinstance(value, str) else value


def downgrade() -> None:
    op.drop_index('ix_prediction_blocks_model_version_id', 'prediction_blocks')
    op.drop_table('prediction_blocks')
