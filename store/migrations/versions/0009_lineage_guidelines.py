"""queryable lineage and versioned guidelines

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 22:10:00

- ``dataset_rows`` get the provenance a lineage query filters on as columns (the label
  event that gave the row its label, its batch, origin, guideline version and pre-label
  model), filled from each row's lineage JSON; an index finds an item's rows.
- ``final_labels`` names the event each current label comes from (``event_id``).
- ``guidelines``: every version of a project's guideline, with a note and the labels a
  change affects; the text a project has now becomes its current version's document.
"""
from datetime import UTC, datetime
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0009'
down_revision: Union[str, Sequence[str], None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

TS = sa.DateTime(timezone=True)

VIEW = """
CREATE VIEW final_labels AS
SELECT e.item_id AS item_id, e.batch_id AS batch_id, e.to_label AS label,
       e.origin AS origin, e.annotators AS annotators, e.agreement AS agreement,
       e.posterior AS posterior, e.model_version_id AS model_version_id,
       e.guideline_version AS guideline_version, e.at AS updated_at{event}
FROM label_events e
WHERE e.to_label IS NOT NULL
  AND e.id = (SELECT max(e2.id) FROM label_events e2 WHERE e2.item_id = e.item_id)
"""
COLUMNS = (('label_event_id', sa.Integer()), ('batch_id', sa.Integer()),
           ('origin', sa.String(20)), ('guideline_version', sa.Integer()),
           ('prelabel_model_id', sa.Integer()))


def upgrade() -> None:
    bind = op.get_bind()
    pg = bind.dialect.name == 'postgresql'
    for name, kind in COLUMNS:
        op.add_column('dataset_rows', sa.Column(name, kind, nullable=True))
    op.create_index('ix_dataset_rows_item', 'dataset_rows', ['item_id'])

    def field(key: str, cast: str | None = None) -> str:
        value = f"lineage->>'{key}'" if pg else f"json_extract(lineage, '$.{key}')"
        return f"CAST({value} AS {cast})" if cast else value

    # The pre-label model is kept by name in the JSON; its id comes from model_versions.
    op.execute(f"""
        UPDATE dataset_rows SET
          batch_id = {field('batch_id', 'INTEGER')},
          origin = {field('origin')},
          guideline_version = {field('guideline_version', 'INTEGER')},
          prelabel_model_id = (
            SELECT m.id FROM model_versions m JOIN dataset_versions v
              ON v.project_id = m.project_id
            WHERE v.id = dataset_rows.version_id AND m.name = {field('prelabel_model')}
            ORDER BY m.id LIMIT 1)""")
    # The event that gave a labelled row its label: the item's newest event at the time
    # the version was frozen (rows whose label came with the data have none).
    op.execute("""
        UPDATE dataset_rows SET label_event_id = (
          SELECT max(e.id) FROM label_events e JOIN dataset_versions v
            ON v.id = dataset_rows.version_id
          WHERE e.item_id = dataset_rows.item_id AND e.at <= v.created_at
            AND e.to_label = dataset_rows.label)
        WHERE origin IS NULL OR origin <> 'given'""")

    op.execute("DROP VIEW final_labels")
    op.execute(VIEW.format(event=", e.id AS event_id"))

    op.create_table(
        'guidelines',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('project_id', sa.Integer(), sa.ForeignKey('projects.id'), nullable=False,
                  index=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('note', sa.Text(), nullable=False, server_default=''),
        sa.Column('labels', sa.JSON(), nullable=False),
        sa.Column('created_by', sa.String(200), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.UniqueConstraint('project_id', 'version'))
    guidelines = sa.table('guidelines', sa.column('project_id', sa.Integer()),
                          sa.column('version', sa.Integer()), sa.column('text', sa.Text()),
                          sa.column('note', sa.Text()), sa.column('labels', sa.JSON()),
                          sa.column('created_by', sa.String()), sa.column('created_at', TS))
    rows = bind.execute(sa.text(
        "SELECT id, guideline_version, guideline_text FROM projects")).all()
    if rows:
        op.bulk_insert(guidelines, [
            {"project_id": pid, "version": version, "text": text or "",
             "note": "the guideline as it stood when labelloop began to keep its versions",
             "labels": [], "created_by": "migration 0009",
             "created_at": datetime.now(UTC)} for pid, version, text in rows])


def downgrade() -> None:
    op.drop_table('guidelines')
    op.execute("DROP VIEW final_labels")
    op.execute(VIEW.format(event=""))
    op.drop_index('ix_dataset_rows_item', 'dataset_rows')
    with op.batch_alter_table('dataset_rows') as batch:
        for name, _ in COLUMNS:
            batch.drop_column(name)
