"""data model v2: users, memberships, API tokens, audit log, label history, answers as values

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 02:30:00

Keeps every row: the names annotators went by become users (role annotator) and members of
the projects they worked in; each final label becomes the first event of its item's label
history, and ``final_labels`` becomes a view over that history.
"""
from datetime import UTC, datetime
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

TS = sa.DateTime(timezone=True)

FINAL_LABELS_VIEW = """
CREATE VIEW final_labels AS
SELECT e.item_id AS item_id, e.batch_id AS batch_id, e.to_label AS label,
       e.origin AS origin, e.annotators AS annotators, e.agreement AS agreement,
       e.posterior AS posterior, e.model_version_id AS model_version_id,
       e.guideline_version AS guideline_version, e.at AS updated_at
FROM label_events e
WHERE e.to_label IS NOT NULL
  AND e.id = (SELECT max(e2.id) FROM label_events e2 WHERE e2.item_id = e.item_id)
"""


def upgrade() -> None:
    op.create_table(
        'users',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('name', sa.String(200), nullable=False, unique=True),
        sa.Column('role', sa.String(20), nullable=False),
        sa.Column('password_hash', sa.String(300), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column('created_at', TS, nullable=False))
    op.create_table(
        'memberships',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('project_id', sa.Integer(), sa.ForeignKey('projects.id'), nullable=False,
                  index=True),
        sa.Column('user_id', sa.Integer(), sa.ForeignKey('users.id'), nullable=False,
                  index=True),
        sa.Column('role', sa.String(20), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.UniqueConstraint('project_id', 'user_id'))
    op.create_table(
        'api_tokens',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('user_id', sa.Integer(), sa.ForeignKey('users.id'), nullable=False,
                  index=True),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('secret_hash', sa.String(300), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('last_used_at', TS, nullable=True),
        sa.Column('revoked_at', TS, nullable=True))
    op.create_table(
        'audit_log',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('at', TS, nullable=False, index=True),
        sa.Column('actor', sa.String(200), nullable=False),
        sa.Column('action', sa.String(20), nullable=False),
        sa.Column('project_id', sa.Integer(), sa.ForeignKey('projects.id'), nullable=True,
                  index=True),
        sa.Column('target', sa.String(300), nullable=False),
        sa.Column('detail', sa.JSON(), nullable=False))
    op.create_table(
        'label_events',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('item_id', sa.Integer(), sa.ForeignKey('items.id'), nullable=False,
                  index=True),
        sa.Column('at', TS, nullable=False),
        sa.Column('by', sa.String(200), nullable=False),
        sa.Column('reason', sa.String(20), nullable=False),
        sa.Column('from_label', sa.String(200), nullable=True),
        sa.Column('to_label', sa.String(200), nullable=True),
        sa.Column('origin', sa.String(20), nullable=True),
        sa.Column('batch_id', sa.Integer(), sa.ForeignKey('batches.id'), nullable=True,
                  index=True),
        sa.Column('annotators', sa.JSON(), nullable=False),
        sa.Column('agreement', sa.Float(), nullable=True),
        sa.Column('posterior', sa.JSON(), nullable=False),
        sa.Column('model_version_id', sa.Integer(), sa.ForeignKey('model_versions.id'),
                  nullable=True),
        sa.Column('guideline_version', sa.Integer(), nullable=False),
        sa.Column('note', sa.Text(), nullable=False, server_default=''))
    op.create_index('ix_label_events_item_newest', 'label_events', ['item_id', 'id'])

    with op.batch_alter_table('projects') as b:
        b.add_column(sa.Column('questions', sa.JSON(), nullable=True))
    with op.batch_alter_table('items') as b:
        b.add_column(sa.Column('media', sa.Text(), nullable=True))
    with op.batch_alter_table('batches') as b:
        b.add_column(sa.Column('closed_at', TS, nullable=True))
    with op.batch_alter_table('assignments') as b:
        b.add_column(sa.Column('submitted_at', TS, nullable=True))
    with op.batch_alter_table('annotations') as b:
        b.add_column(sa.Column('value', sa.JSON(), nullable=True))
        b.add_column(sa.Column('status', sa.String(20), nullable=False,
                               server_default='submitted'))
        b.add_column(sa.Column('skip_reason', sa.Text(), nullable=True))
        b.add_column(sa.Column('idempotency_key', sa.String(100), nullable=True))
        b.add_column(sa.Column('updated_at', TS, nullable=True))
        b.create_unique_constraint('uq_annotations_annotator_idempotency_key',
                                   ['annotator', 'idempotency_key'])
    _move_data()
    with op.batch_alter_table('projects') as b:
        b.alter_column('questions', existing_type=sa.JSON(), nullable=False)
    with op.batch_alter_table('annotations') as b:
        b.alter_column('value', existing_type=sa.JSON(), nullable=False)
        b.alter_column('label', existing_type=sa.String(200), nullable=True)
    op.drop_table('final_labels')
    op.execute(FINAL_LABELS_VIEW)


def _move_data() -> None:
    conn = op.get_bind()
    now = datetime.now(UTC)
    projects = sa.table('projects', sa.column('id', sa.Integer),
                        sa.column('labels', sa.JSON), sa.column('questions', sa.JSON))
    for pid, labels in conn.execute(sa.select(projects.c.id, projects.c.labels)).all():
        conn.execute(projects.update().where(projects.c.id == pid).values(
            questions=[{"name": "label", "kind": "single-label", "labels": list(labels)}]))
    annotations = sa.table('annotations', sa.column('id', sa.Integer),
                           sa.column('label', sa.String), sa.column('value', sa.JSON),
                           sa.column('created_at', TS), sa.column('updated_at', TS))
    for aid, label in conn.execute(sa.select(annotations.c.id, annotations.c.label)).all():
        conn.execute(annotations.update().where(annotations.c.id == aid)
                     .values(value={"label": label}))
    conn.execute(sa.text("UPDATE annotations SET updated_at = created_at"))
    conn.execute(sa.text(
        "UPDATE assignments SET submitted_at = (SELECT min(a.created_at) FROM annotations a "
        "WHERE a.task_id = assignments.task_id AND a.annotator = assignments.annotator) "
        "WHERE status = 'submitted'"))
    conn.execute(sa.text(
        "UPDATE batches SET closed_at = (SELECT max(a.created_at) FROM annotations a "
        "JOIN tasks t ON t.id = a.task_id WHERE t.batch_id = batches.id) "
        "WHERE status <> 'open'"))
    # The names annotators went by become users, members of the projects they worked in.
    worked = conn.execute(sa.text(
        "SELECT DISTINCT b.project_id, a.annotator FROM assignments a "
        "JOIN tasks t ON t.id = a.task_id JOIN batches b ON b.id = t.batch_id "
        "UNION SELECT project_id, name FROM annotators")).all()
    users = sa.table('users', sa.column('id', sa.Integer), sa.column('name', sa.String),
                     sa.column('role', sa.String), sa.column('active', sa.Boolean),
                     sa.column('created_at', TS))
    members = sa.table('memberships', sa.column('project_id', sa.Integer),
                       sa.column('user_id', sa.Integer), sa.column('role', sa.String),
                       sa.column('created_at', TS))
    ids: dict[str, int] = {}
    for name in sorted({n for _, n in worked}):
        conn.execute(users.insert().values(name=name, role='annotator', active=True,
                                           created_at=now))
        ids[name] = conn.execute(sa.select(users.c.id).where(users.c.name == name)).scalar_one()
    for project_id, name in sorted(set(worked)):
        conn.execute(members.insert().values(project_id=project_id, user_id=ids[name],
                                             role='annotator', created_at=now))
    # Each current label becomes the first event of its item's history.
    conn.execute(sa.text(
        "INSERT INTO label_events (item_id, at, by, reason, from_label, to_label, origin, "
        "batch_id, annotators, agreement, posterior, model_version_id, guideline_version, "
        "note) SELECT item_id, updated_at, 'migration', 'import', NULL, label, origin, "
        "batch_id, annotators, agreement, posterior, model_version_id, guideline_version, "
        "'carried over from final_labels by migration 0004' FROM final_labels "
        "ORDER BY item_id"))


def downgrade() -> None:
    op.execute("DROP VIEW final_labels")
    op.create_table(
        'final_labels',
        sa.Column('item_id', sa.Integer(), sa.ForeignKey('items.id'), primary_key=True),
        sa.Column('batch_id', sa.Integer(), sa.ForeignKey('batches.id'), nullable=True,
                  index=True),
        sa.Column('label', sa.String(200), nullable=False),
        sa.Column('origin', sa.String(20), nullable=False),
        sa.Column('annotators', sa.JSON(), nullable=False),
        sa.Column('agreement', sa.Float(), nullable=True),
        sa.Column('posterior', sa.JSON(), nullable=False),
        sa.Column('model_version_id', sa.Integer(), sa.ForeignKey('model_versions.id'),
                  nullable=True),
        sa.Column('guideline_version', sa.Integer(), nullable=False),
        sa.Column('updated_at', TS, nullable=False))
    op.execute(
        "INSERT INTO final_labels SELECT e.item_id, e.batch_id, e.to_label, "
        "coalesce(e.origin, 'human'), e.annotators, e.agreement, e.posterior, "
        "e.model_version_id, e.guideline_version, e.at FROM label_events e "
        "WHERE e.to_label IS NOT NULL AND e.id = (SELECT max(e2.id) FROM label_events e2 "
        "WHERE e2.item_id = e.item_id)")
    with op.batch_alter_table('annotations') as b:
        b.drop_constraint('uq_annotations_annotator_idempotency_key', type_='unique')
        for col in ('updated_at', 'idempotency_key', 'skip_reason', 'status', 'value'):
            b.drop_column(col)
    for table, col in (('assignments', 'submitted_at'), ('batches', 'closed_at'),
                       ('items', 'media'), ('projects', 'questions')):
        with op.batch_alter_table(table) as b:
            b.drop_column(col)
    for table in ('label_events', 'audit_log', 'api_tokens', 'memberships', 'users'):
        op.drop_table(table)
