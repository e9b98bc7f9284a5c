"""pre-labels as suggestions: probabilities keyed by label name

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 12:00:00

A prediction's probabilities were a list in the order of the project's labels; they become
an object keyed by label name, so that nothing reads them by position.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

CHUNK = 5000

predictions = sa.table('predictions', sa.column('id', sa.Integer),
                       sa.column('item_id', sa.Integer), sa.column('probs', sa.JSON))
items = sa.table('items', sa.column('id', sa.Integer), sa.column('project_id', sa.Integer))
projects = sa.table('projects', sa.column('id', sa.Integer), sa.column('labels', sa.JSON))


def _rewrite(convert) -> None:
    """Rewrite every prediction's probabilities with ``convert(labels, probs)``, in chunks."""
    conn = op.get_bind()
    labels = {pid: list(names) for pid, names in
              conn.execute(sa.select(projects.c.id, projects.c.labels)).all()}
    update = (predictions.update().where(predictions.c.id == sa.bindparam('pid'))
              .values(probs=sa.bindparam('new')))
    last = 0
    while True:
        rows = conn.execute(
            sa.select(predictions.c.id, items.c.project_id, predictions.c.probs)
            .join(items, items.c.id == predictions.c.item_id)
            .where(predictions.c.id > last).order_by(predictions.c.id).limit(CHUNK)).all()
        if not rows:
            return
        conn.execute(update, [{'pid': pid, 'new': convert(labels[project_id], probs)}
                              for pid, project_id, probs in rows])
        last = rows[-1][0]


def _keyed(labels: list[str], probs):  # noqa: ANN001, ANN202
    return dict(zip(labels, probs)) if isinstance(probs, list) else probs


def _listed(labels: list[str], probs):  # noqa: ANN001, ANN202
    return [probs.get(name, 0.0) for name in labels] if isinstance(probs, dict) else probs


def upgrade() -> None:
    _rewrite(_keyed)


def downgrade() -> None:
    _rewrite(_listed)
