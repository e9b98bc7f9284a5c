"""The store: Alembic migrations match the models, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from labelloop.access.projects import create_project
from labelloop.ingest.service import ingest_file
from labelloop.store.db import get_engine, is_table, open_session
from labelloop.store.models import Base
from tests.conftest import LABELS


def assert_schema_matches_models(url: str) -> None:
    with get_engine(url).connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": is_table})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_sqlite_migrations_match_models(settings):
    assert_schema_matches_models(settings.db_url)


@pytest.mark.postgres
def test_postgres_migrates_and_ingests(pg_url, pool_csv):
    assert_schema_matches_models(pg_url)
    with open_session(pg_url) as s:
        p = create_project(s, "bank", LABELS)
        rep = ingest_file(s, p, pool_csv, label_field="category")
        again = ingest_file(s, p, pool_csv, label_field="category")
    assert rep.n_accepted > 200 and again.n_accepted == 0


def test_downgrade_and_upgrade_round_trip(tmp_path):
    from alembic import command
    from sqlalchemy import inspect

    from labelloop.store.db import alembic_config, migrate

    url = f"sqlite:///{tmp_path / 'rt.db'}"
    migrate(url)
    command.downgrade(alembic_config(url), "base")
    assert inspect(create_engine(url)).get_table_names() == ["alembic_version"]
    migrate(url)
    assert "dataset_versions" in inspect(create_engine(url)).get_table_names()
